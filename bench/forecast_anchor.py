#!/usr/bin/env python3
"""Forecast benchmark, anchor side: statsforecast on a real retail panel, metrics as JSON.

Runs statsforecast per-SKU models (and a few models on the tenant-total series) on a daily
`unique_id,ds,y` panel, holds out the last 28 calendar days, and writes the metrics that the Rust
benchmark binary compares against. The Rust side implements the same protocol:

  * h = 28. Test = the global last 28 dates of the panel; train = every row before the first test
    date. SKUs with no training row are dropped. `cutoff` in the JSON is the last training date.
  * Forecasts are clipped at 0 before scoring: f = max(f, 0). Interval bounds are not clipped.
  * RMSSE per series = sqrt(mean_t (y_t - f_t)^2 / scale), scale = mean of (y[i] - y[i-1])^2 over the
    training series after dropping its leading zeros (M5). Series with no such difference or with
    scale == 0 are skipped; `rmsse` is the mean over the series scored, `rmsse_series` their count.
  * bias per series = (sum f - sum y) / sum y over the test days (skipped when sum y == 0);
    `bias_mean` is the mean over series, `bias_pooled` = sum over all series of (f - y) / sum of y.
  * `total28_wape` = sum over series |sum f - sum y| / sum over series of sum y (28-day totals).
  * coverage80/95 = share of all (series, test day) actuals with lo <= y <= hi, pooled. Native
    intervals where statsforecast has them, else ConformalIntervals(h=28, n_windows=2).
  * Tenant total = sum over SKUs per day. Models fitted on that one series are scored with the same
    RMSSE; `bias` and `total28_error` are both the signed (F - A) / A over the 28 test days (for one
    series they coincide). `bottom_up_total` scores the per-day sum of a per-SKU model's clipped
    forecasts against the same total.
  * `seconds` = wall time of StatsForecast(models=[model], freq="D", n_jobs=k).forecast(df=train,
    h=28) for point forecasts only, each model run on its own, after a warm-up on 3 series.
    Intervals come from one separate run (at the largest --threads value), timed as
    `interval_seconds`.

On the full 2,000-SKU panel (statsforecast 2.1.1) this gives per-SKU RMSSE ADIDA 0.735, AutoETS 0.736,
CrostonSBA 0.738. At tenant-total level, MSTL 0.52 and AutoETS 0.58 are the *bottom-up* totals of
the per-SKU models (`sku_models.*.bottom_up_total`); fitting on the total series itself
(`total_models`) gives MSTL 0.513 and AutoETS 0.551. SeasonalNaive gives 0.570 either way.

usage:
  python3 bench/forecast_anchor.py --panel PANEL.csv.gz --out anchor.json
      [--models ADIDA,CrostonSBA,...] [--threads 1,2] [--limit N] [--mstl-per-sku] [--no-intervals]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings

H = 28
LEVELS = [80, 95]
DEFAULT_MODELS = [
    "ADIDA",
    "AutoETS",
    "CrostonSBA",
    "CrostonOptimized",
    "TSB",
    "IMAPA",
    "SeasonalNaive",
    "WindowAverage",
]
ALL_MODELS = DEFAULT_MODELS + ["MSTL"]
TOTAL_MODELS = ["MSTL", "MSTL_7", "SeasonalNaive", "AutoETS"]
WANTED_STATSFORECAST = "2.1.1"


def ensure_statsforecast():
    try:
        import statsforecast  # noqa: F401
    except ImportError:
        pinned = [sys.executable, "-m", "pip", "install", "--quiet", f"statsforecast=={WANTED_STATSFORECAST}"]
        if subprocess.run(pinned).returncode != 0:
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "statsforecast"], check=True)
    import statsforecast

    return statsforecast


def sku_model(name, conformal=None):
    """A fresh per-SKU model, aliased to its benchmark name."""
    from statsforecast import models as m

    kw = {"alias": name, "prediction_intervals": conformal}
    if name == "ADIDA":
        return m.ADIDA(**kw)
    if name == "AutoETS":
        return m.AutoETS(season_length=7, **kw)
    if name == "CrostonSBA":
        return m.CrostonSBA(**kw)
    if name == "CrostonOptimized":
        return m.CrostonOptimized(**kw)
    if name == "TSB":
        return m.TSB(alpha_d=0.1, alpha_p=0.1, **kw)
    if name == "IMAPA":
        return m.IMAPA(**kw)
    if name == "SeasonalNaive":
        return m.SeasonalNaive(season_length=7, **kw)
    if name == "WindowAverage":
        return m.WindowAverage(window_size=28, **kw)
    if name == "MSTL":
        return m.MSTL(season_length=[7], **kw)
    raise ValueError(name)


def total_model(name, season_lengths):
    from statsforecast import models as m

    if name == "MSTL":
        return m.MSTL(season_length=season_lengths, alias=name)
    if name == "MSTL_7":
        return m.MSTL(season_length=[7], alias=name)
    if name == "SeasonalNaive":
        return m.SeasonalNaive(season_length=7, alias=name)
    if name == "AutoETS":
        return m.AutoETS(season_length=7, alias=name)
    raise ValueError(name)


def run_sf(models, train, n_jobs, level=None):
    """StatsForecast fit + forecast; returns (seconds, forecast frame)."""
    from statsforecast import StatsForecast

    sf = StatsForecast(models=models, freq="D", n_jobs=n_jobs)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if level is None:
            fc = sf.forecast(df=train, h=H)
        else:
            fc = sf.forecast(df=train, h=H, level=level)
    return time.perf_counter() - started, fc


# ---------------------------------------------------------------------------------------------
# Metrics


def m5_scales(train):
    """Per-series mean squared one-step difference after leading zeros; NaN when undefined."""
    import numpy as np

    ids = train["unique_id"].to_numpy()
    y = train["y"].to_numpy(dtype=float)
    started = train.groupby("unique_id", sort=False)["y"].transform(lambda s: (s != 0).cummax()).to_numpy()
    same = np.zeros(len(y), dtype=bool)
    same[1:] = ids[1:] == ids[:-1]
    prev_started = np.zeros(len(y), dtype=bool)
    prev_started[1:] = started[:-1]
    use = same & prev_started  # row i and row i-1 both after the first non-zero of the same series
    d2 = np.zeros(len(y))
    d2[1:] = (y[1:] - y[:-1]) ** 2
    frame = train[["unique_id"]].assign(d2=np.where(use, d2, np.nan))
    return frame.groupby("unique_id", sort=True)["d2"].mean()  # mean skips NaN; all-NaN -> NaN


def rmsse(y, f, scale):
    import numpy as np

    if not np.isfinite(scale) or scale <= 0:
        return None
    return float(np.sqrt(np.mean((y - f) ** 2) / scale))


def score_total(actual, forecast, scale):
    import numpy as np

    f = np.maximum(forecast, 0.0)
    a_sum, f_sum = float(actual.sum()), float(f.sum())
    signed = (f_sum - a_sum) / a_sum if a_sum != 0 else None
    return {"rmsse": rmsse(actual, f, scale), "bias": signed, "total28_error": signed}


def score_skus(Y, F, scales, lo=None, hi=None):
    """Y, F: (series, H) arrays of actuals and raw forecasts; scales: per-series M5 scale."""
    import numpy as np

    F = np.maximum(F, 0.0)
    r = np.sqrt(np.mean((Y - F) ** 2, axis=1) / np.where(scales > 0, scales, np.nan))
    ok = np.isfinite(r) & np.isfinite(scales) & (scales > 0)
    ys, fs = Y.sum(axis=1), F.sum(axis=1)
    has = ys != 0
    out = {
        "rmsse": float(r[ok].mean()) if ok.any() else None,
        "rmsse_series": int(ok.sum()),
        "bias_mean": float(((fs[has] - ys[has]) / ys[has]).mean()) if has.any() else None,
        "bias_series": int(has.sum()),
        "bias_pooled": float((fs - ys).sum() / ys.sum()) if ys.sum() != 0 else None,
        "total28_wape": float(np.abs(fs - ys).sum() / ys.sum()) if ys.sum() != 0 else None,
        "coverage80": None,
        "coverage95": None,
    }
    if lo is not None:
        for level in LEVELS:
            inside = (lo[level] <= Y) & (Y <= hi[level])
            out[f"coverage{level}"] = float(inside.mean())
    return out


def to_matrix(fc, column, ids, dates):
    import numpy as np

    wide = fc.pivot(index="unique_id", columns="ds", values=column).reindex(index=ids, columns=dates)
    values = wide.to_numpy(dtype=float)
    if np.isnan(values).any():
        raise RuntimeError(f"{column}: forecast missing for some (series, test date)")
    return values


# ---------------------------------------------------------------------------------------------


def fmt(v, width=8, digits=3):
    if v is None:
        return "-".rjust(width)
    if isinstance(v, float):
        return f"{v:{width}.{digits}f}"
    return str(v).rjust(width)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--panel", required=True, help="gzip/plain CSV with unique_id,ds,y")
    parser.add_argument("--out", required=True, help="JSON output path")
    parser.add_argument("--models", default=None, help=f"comma list from {','.join(ALL_MODELS)} (default: all but MSTL)")
    parser.add_argument("--threads", default="1,2", help="comma list of n_jobs values to time (default 1,2)")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N SKUs sorted by unique_id")
    parser.add_argument("--mstl-per-sku", action="store_true", help="also run MSTL(season_length=[7]) per SKU (slow)")
    parser.add_argument("--no-intervals", action="store_true", help="skip the prediction-interval run (coverage = null)")
    parser.add_argument("--no-total", action="store_true", help="skip the models fitted on the tenant total")
    args = parser.parse_args()

    statsforecast = ensure_statsforecast()
    import numpy as np
    import pandas as pd
    from statsforecast.utils import ConformalIntervals

    by_lower = {n.lower(): n for n in ALL_MODELS}
    if args.models:
        try:
            names = [by_lower[n.strip().lower()] for n in args.models.split(",") if n.strip()]
        except KeyError as e:
            parser.error(f"unknown model {e}; choose from {','.join(ALL_MODELS)}")
    else:
        names = list(DEFAULT_MODELS)
    if args.mstl_per_sku and "MSTL" not in names:
        names.append("MSTL")
    threads = [int(t) for t in args.threads.split(",") if t.strip()]
    if not threads or min(threads) < 1:
        parser.error("--threads needs positive integers")

    print(f"statsforecast {statsforecast.__version__} (wanted {WANTED_STATSFORECAST}), numpy {np.__version__}, "
          f"pandas {pd.__version__}, python {platform.python_version()}, cpus {os.cpu_count()}", flush=True)

    # ---- data and split
    t0 = time.perf_counter()
    panel = pd.read_csv(args.panel, dtype={"unique_id": str, "y": float}, parse_dates=["ds"])
    panel = panel.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    all_ids = np.sort(panel["unique_id"].unique())
    if args.limit is not None:
        panel = panel[panel["unique_id"].isin(set(all_ids[: args.limit]))].reset_index(drop=True)
    last = panel["ds"].max()
    test_dates = pd.date_range(end=last, periods=H, freq="D")
    first_test = test_dates[0]
    train = panel[panel["ds"] < first_test].reset_index(drop=True)
    test = panel[panel["ds"] >= first_test]
    ids = np.sort(train["unique_id"].unique())  # SKUs with >= 1 training row
    dropped = int(panel["unique_id"].nunique() - len(ids))
    test = test[test["unique_id"].isin(set(ids))]
    Y = (test.pivot(index="unique_id", columns="ds", values="y")
         .reindex(index=ids, columns=test_dates).fillna(0.0).to_numpy(dtype=float))
    scales = m5_scales(train).reindex(ids).to_numpy(dtype=float)
    print(f"panel {len(panel):,} rows, {len(ids):,} series used ({dropped} dropped: no training row), "
          f"train {train['ds'].min().date()}..{train['ds'].max().date()} ({len(train):,} rows), "
          f"test {first_test.date()}..{last.date()}; loaded in {time.perf_counter() - t0:.1f} s", flush=True)

    # tenant total (sum over the SKUs present each day; missing SKU-days count as 0)
    total_train = train.groupby("ds")["y"].sum().reindex(
        pd.date_range(train["ds"].min(), train["ds"].max(), freq="D"), fill_value=0.0)
    total_test = Y.sum(axis=0)
    tt = total_train.to_numpy(dtype=float)
    nz = np.flatnonzero(tt != 0)
    total_scale = float(np.mean(np.diff(tt[nz[0]:]) ** 2)) if len(nz) and len(tt) - nz[0] >= 2 else float("nan")
    total_df = pd.DataFrame({"unique_id": "total", "ds": total_train.index, "y": tt})

    result = {
        "statsforecast_version": statsforecast.__version__,
        "horizon": H,
        "series": int(len(ids)),
        "series_dropped": dropped,
        "cutoff": str(train["ds"].max().date()),
        "test_start": str(first_test.date()),
        "test_end": str(last.date()),
        "limit": args.limit,
        "threads": threads,
        "levels": LEVELS,
        "timing_note": (
            "seconds = wall time of StatsForecast(models=[model], freq='D', n_jobs=k).forecast(df=train, h=28), "
            "point forecasts only, one model per run, after a warm-up fit+forecast on 3 series per model so "
            "one-time JIT/first-call costs are not counted (statsforecast 2.x has no numba; its core is C++). "
            "interval_seconds = the separate run with level=[80,95] at the largest n_jobs."
        ),
        "sku_models": {},
        "total_models": {},
    }

    warm_ids = set(ids[:3])
    warm = train[train["unique_id"].isin(warm_ids)]
    conformal = ConformalIntervals(h=H, n_windows=2)

    # ---- per-SKU models
    for name in names:
        entry = {"seconds": {}}
        try:
            # warm-up (also finds whether the model has native intervals)
            run_sf([sku_model(name)], warm, 1)
            interval_kind = None
            if not args.no_intervals:
                try:
                    run_sf([sku_model(name)], warm, 1, level=LEVELS)
                    interval_kind = "native"
                except Exception:
                    try:
                        run_sf([sku_model(name, conformal)], warm, 1, level=LEVELS)
                        interval_kind = "conformal(h=28,n_windows=2)"
                    except Exception as e:  # noqa: BLE001
                        print(f"  {name}: no intervals ({e})", flush=True)
            fc = None
            for k in threads:
                seconds, fc_k = run_sf([sku_model(name)], train, k)
                entry["seconds"][str(k)] = round(seconds, 3)
                print(f"  {name:<17} n_jobs={k}: {seconds:8.2f} s", flush=True)
                if fc is None:
                    fc = fc_k
            F = to_matrix(fc, name, ids, test_dates)
            lo = hi = None
            if interval_kind is not None:
                model = sku_model(name, conformal if interval_kind.startswith("conformal") else None)
                try:
                    seconds, fci = run_sf([model], train, max(threads), level=LEVELS)
                    entry["interval_seconds"] = round(seconds, 3)
                    lo = {lv: to_matrix(fci, f"{name}-lo-{lv}", ids, test_dates) for lv in LEVELS}
                    hi = {lv: to_matrix(fci, f"{name}-hi-{lv}", ids, test_dates) for lv in LEVELS}
                    print(f"  {name:<17} intervals ({interval_kind}, n_jobs={max(threads)}): {seconds:8.2f} s", flush=True)
                except Exception as e:  # noqa: BLE001
                    print(f"  {name}: interval run failed ({e})", flush=True)
                    interval_kind = None
            entry.update(score_skus(Y, F, scales, lo, hi))
            entry["intervals"] = interval_kind
            entry["bottom_up_total"] = score_total(total_test, np.maximum(F, 0.0).sum(axis=0), total_scale)
        except Exception as e:  # noqa: BLE001
            print(f"  {name}: FAILED: {e!r}", flush=True)
            entry["error"] = repr(e)
        # stable key order for readers
        order = ["rmsse", "rmsse_series", "bias_mean", "bias_series", "bias_pooled", "total28_wape",
                 "coverage80", "coverage95", "intervals", "seconds", "interval_seconds", "bottom_up_total", "error"]
        result["sku_models"][name] = {k: entry[k] for k in order if k in entry}

    # ---- tenant-total models
    if not args.no_total:
        two_years = len(tt) >= 730
        seasons = [7, 365] if two_years else [7]
        result["total_train_days"] = int(len(tt))
        result["total_mstl_season_lengths"] = seasons
        for name in TOTAL_MODELS:
            try:
                run_sf([total_model(name, seasons)], total_df.iloc[-min(len(total_df), 120):], 1)  # warm-up
                seconds, fc = run_sf([total_model(name, seasons)], total_df, 1)
                f = fc.set_index("ds")[name].reindex(test_dates).to_numpy(dtype=float)
                entry = score_total(total_test, f, total_scale)
                entry["seconds"] = round(seconds, 3)
                if name == "MSTL":
                    entry["season_lengths"] = seasons
            except Exception as e:  # noqa: BLE001
                print(f"  total {name}: FAILED: {e!r}", flush=True)
                entry = {"error": repr(e)}
            result["total_models"][name] = entry

    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=2)
        fh.write("\n")

    # ---- readable tables
    print()
    print(f"statsforecast {result['statsforecast_version']}  h={H}  series={result['series']}  "
          f"cutoff={result['cutoff']}  test {result['test_start']}..{result['test_end']}")
    print("per-SKU models (forecasts clipped at 0; seconds after warm-up, point forecasts only)")
    secs_head = "".join(f"{'s@' + str(k):>9}" for k in threads)
    print(f"{'model':<17}{'RMSSE':>8}{'n':>6}{'bias':>8}{'poolbias':>9}{'tot28':>8}{'cov80':>7}{'cov95':>7}"
          f"{secs_head}  {'BU-RMSSE':>8}{'BU-bias':>8}")
    for name, e in result["sku_models"].items():
        if "error" in e:
            print(f"{name:<17} failed: {e['error']}")
            continue
        secs = "".join(fmt(e["seconds"].get(str(k)), 9, 2) for k in threads)
        bu = e["bottom_up_total"]
        print(f"{name:<17}{fmt(e['rmsse'])}{fmt(e['rmsse_series'], 6)}{fmt(e['bias_mean'])}{fmt(e['bias_pooled'], 9)}"
              f"{fmt(e['total28_wape'])}{fmt(e['coverage80'], 7)}{fmt(e['coverage95'], 7)}{secs}  "
              f"{fmt(bu['rmsse'])}{fmt(bu['bias'])}")
    if result["total_models"]:
        print(f"tenant-total models ({result['total_train_days']} training days; "
              f"MSTL season lengths {result['total_mstl_season_lengths']})")
        print(f"{'model':<17}{'RMSSE':>8}{'bias':>8}{'tot28':>8}{'seconds':>9}")
        for name, e in result["total_models"].items():
            if "error" in e:
                print(f"{name:<17} failed: {e['error']}")
                continue
            print(f"{name:<17}{fmt(e['rmsse'])}{fmt(e['bias'])}{fmt(e['total28_error'])}{fmt(e['seconds'], 9, 2)}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
