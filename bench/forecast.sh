#!/usr/bin/env bash
# Forecast benchmark, both sides in one run: statsforecast 2.1.1 (bench/forecast_anchor.py, installed
# with pip when missing) and the OrderNimbus engine (cargo bench --bench forecast) on the same panel,
# cutoff and horizon (28 days); prints accuracy, interval coverage, wall time and the ratios.
#
#   bash bench/forecast.sh [PANEL.csv.gz]      # the 2,000-SKU Online Retail II panel by default
#
# Environment: QUICK=1 skips statsforecast's AutoETS and per-SKU MSTL (about 30 s instead of about
# 30 min; no wall-time ratio then); SCALE=50000 also measures peak RSS forecasting that many series.
set -euo pipefail
cd "$(dirname "$0")/.."

panel="${1:-../shared/data/online_retail_ii_daily_units_2000sku_panel.csv.gz}"
if [ ! -f "$panel" ]; then
  echo "panel not found: $panel (a gzip CSV with unique_id,ds,y)" >&2
  exit 1
fi
# cargo runs the bench binary from the package directory: pass an absolute path.
panel="$(cd "$(dirname "$panel")" && pwd)/$(basename "$panel")"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

if [ "${QUICK:-0}" = 1 ]; then
  python3 bench/forecast_anchor.py --panel "$panel" --out "$out/anchor.json" \
    --models ADIDA,CrostonSBA,CrostonOptimized,TSB,IMAPA,SeasonalNaive,WindowAverage
else
  python3 bench/forecast_anchor.py --panel "$panel" --out "$out/anchor.json" --mstl-per-sku
fi

cargo bench -p ordernimbus-backend --bench forecast -- \
  --panel "$panel" --anchor "$out/anchor.json" --threads 1,2

if [ -n "${SCALE:-}" ]; then
  cargo bench -p ordernimbus-backend --bench forecast -- --panel "$panel" --scale "$SCALE" --threads 2
fi
