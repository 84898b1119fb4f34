"""Regenerates the MSTL parity fixtures in this folder from statsforecast 2.1.1 / statsmodels.

Usage:
    python make_fixtures.py PANEL_CSV_GZ M5_TRAIN_CSV OUT_DIR

PANEL_CSV_GZ  the daily units panel (unique_id,ds,y), e.g.
              shared/data/online_retail_ii_daily_units_2000sku_panel.csv.gz
M5_TRAIN_CSV  backend/tests/data/m5/m5_real_10_series_sales_train_validation.csv (wide, d_1..d_1913)
OUT_DIR       where the fixtures are written (this folder)

Needs `pip install statsforecast==2.1.1 statsmodels` (generated with statsmodels 0.15.0).

Writes:
- tenant_total_daily_units.csv: the panel's tenant total (sum of y by ds over all SKUs), all 739
  days; the parity test holds out the last 28.
- mstl_statsforecast_2.1.1_h28.csv: statsforecast `MSTL(season_length=...)` point forecasts
  (h = 28) for the tenant total ([7] and [7, 365]) and the 10 M5 series ([7] and [7, 365]).
- mstl_statsforecast_2.1.1_trend_models.csv: the ETS model statsforecast's trend forecaster
  (AutoETS(model='ZZN')) selected for each of those fits, with its parameters.
- mstl_statsforecast_2.1.1_fitted_tenant_total.csv: statsforecast's in-sample fitted values
  (`forecast(..., fitted=True)`) of MSTL([7]) on the tenant total.
- mstl_decomposition_statsforecast_2.1.1.csv: decomposition components (trend, seasonal per
  period, remainder) from statsforecast's `mstl` for the tenant total ([7] and [7, 365]) and
  FOODS_2_034_TX_1 ([7, 365]), plus plain statsmodels `STL(period=7).fit()` (its defaults:
  seasonal=7, seasonal_deg=1) for the tenant total, labelled `stl7`.
"""

import os
import sys

import numpy as np
import pandas as pd
import statsforecast
import statsmodels
from statsforecast.models import MSTL
from statsforecast.mstl import mstl
from statsmodels.tsa.seasonal import STL

HORIZON = 28
TENANT = "tenant_total"
DECOMPOSED_M5 = "FOODS_2_034_TX_1_validation"


def number(value):
    return repr(float(value))


def short(value):
    """12 significant digits: ample for the decomposition's 1e-6 tolerance, half the size."""
    return f"{float(value):.12g}"


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    panel_path, m5_path, out_dir = sys.argv[1:]
    print(f"statsforecast {statsforecast.__version__}, statsmodels {statsmodels.__version__}")
    os.makedirs(out_dir, exist_ok=True)

    panel = pd.read_csv(panel_path, dtype={"unique_id": str}, parse_dates=["ds"])
    total = panel.groupby("ds")["y"].sum().sort_index()
    days = pd.date_range(total.index.min(), total.index.max(), freq="D")
    total = total.reindex(days, fill_value=0.0)
    with open(os.path.join(out_dir, "tenant_total_daily_units.csv"), "w") as out:
        out.write("ds,y\n")
        for day, value in total.items():
            out.write(f"{day.date()},{number(value)}\n")

    series = {TENANT: total.to_numpy(dtype=float)[:-HORIZON]}
    m5 = pd.read_csv(m5_path)
    for _, row in m5.iterrows():
        series[row["id"]] = row.iloc[6:].to_numpy(dtype=float)

    configs = [[7], [7, 365]]
    forecast_lines = ["unique_id,season_lengths,step,mstl"]
    model_lines = ["unique_id,season_lengths,method,alpha,beta,phi,aicc"]
    for unique_id, values in series.items():
        for season_lengths in configs:
            label = ";".join(map(str, season_lengths))
            forecast = MSTL(season_length=season_lengths).forecast(values, HORIZON)["mean"]
            for step, value in enumerate(forecast):
                forecast_lines.append(f"{unique_id},{label},{step},{number(value)}")
            fit = MSTL(season_length=season_lengths).fit(values).trend_forecaster.model_
            alpha, beta, _gamma, phi = fit["par"][:4]
            model_lines.append(
                f"{unique_id},{label},{fit['method']},{number(alpha)},{number(beta)},"
                f"{number(phi)},{number(fit['aicc'])}"
            )
    with open(os.path.join(out_dir, "mstl_statsforecast_2.1.1_h28.csv"), "w") as out:
        out.write("\n".join(forecast_lines) + "\n")
    with open(os.path.join(out_dir, "mstl_statsforecast_2.1.1_trend_models.csv"), "w") as out:
        out.write("\n".join(model_lines) + "\n")

    fitted = MSTL(season_length=[7]).forecast(series[TENANT], HORIZON, fitted=True)["fitted"]
    with open(os.path.join(out_dir, "mstl_statsforecast_2.1.1_fitted_tenant_total.csv"), "w") as out:
        out.write("t,fitted\n")
        for t, value in enumerate(fitted):
            out.write(f"{t},{number(value)}\n")

    decomposition_lines = ["unique_id,season_lengths,t,trend,seasonal7,seasonal365,remainder"]

    def add(unique_id, label, trend, seasonal7, seasonal365, remainder):
        for t in range(len(trend)):
            decomposition_lines.append(
                f"{unique_id},{label},{t},{short(trend[t])},{short(seasonal7[t])},"
                f"{'' if seasonal365 is None else short(seasonal365[t])},{short(remainder[t])}"
            )

    for unique_id, season_lengths in [(TENANT, [7]), (TENANT, [7, 365]), (DECOMPOSED_M5, [7, 365])]:
        frame = mstl(series[unique_id], season_lengths)
        label = ";".join(map(str, season_lengths))
        if len(season_lengths) == 1:
            add(unique_id, label, frame["trend"], frame["seasonal"], None, frame["remainder"])
        else:
            add(
                unique_id,
                label,
                frame["trend"],
                frame["seasonal7"],
                frame["seasonal365"],
                frame["remainder"],
            )
    stl = STL(series[TENANT], period=7).fit()
    add(TENANT, "stl7", stl.trend, stl.seasonal, None, stl.resid)
    with open(os.path.join(out_dir, "mstl_decomposition_statsforecast_2.1.1.csv"), "w") as out:
        out.write("\n".join(decomposition_lines) + "\n")


if __name__ == "__main__":
    main()
