//! Forecast benchmark on a real retail panel (`unique_id,ds,y`, gzip CSV): holds out the last 28
//! days, forecasts every series with the engine (1 and 2 threads), reconciles with the tenant total,
//! and prints accuracy, interval coverage and wall time next to statsforecast's figures from
//! `bench/forecast_anchor.py` (same protocol) when `--anchor FILE` is given.
//!
//! `--scale N` instead replicates the panel's series up to N and reports the peak RSS of
//! forecasting them all 365 days ahead, as `refresh_tenant` does.
//!
//! Run through `bash bench/forecast.sh`, which runs both sides.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Instant;

use chrono::{Days, NaiveDate, Utc};
use ordernimbus_backend::domain::{ForecastPoint, Location, SeriesForecast, SeriesHistory, Sku};
use ordernimbus_backend::forecast::metrics::rmsse;
use ordernimbus_backend::forecast::{
    calibrate_and_reconcile, forecast_tenant, forecast_unreconciled, total_history,
};
use serde_json::Value;

const HORIZON: usize = 28;

struct Args {
    panel: String,
    anchor: Option<String>,
    limit: Option<usize>,
    threads: Vec<usize>,
    scale: Option<usize>,
}

fn parse_args() -> Args {
    let mut args = Args {
        panel: String::new(),
        anchor: None,
        limit: None,
        threads: vec![1, 2],
        scale: None,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let mut value = || {
            iter.next()
                .unwrap_or_else(|| panic!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--panel" => args.panel = value(),
            "--anchor" => args.anchor = Some(value()),
            "--limit" => args.limit = Some(value().parse().expect("--limit N")),
            "--threads" => {
                args.threads = value()
                    .split(',')
                    .map(|part| part.parse().expect("--threads 1,2"))
                    .collect();
            }
            "--scale" => args.scale = Some(value().parse().expect("--scale N")),
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!args.panel.is_empty(), "--panel PATH is required");
    args
}

/// Daily units per SKU, zero-filled, ending on the panel's last date.
fn read_panel(path: &str, limit: Option<usize>) -> (Vec<SeriesHistory>, NaiveDate) {
    let file = std::fs::File::open(path).unwrap_or_else(|error| panic!("{path}: {error}"));
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(file));
    let mut by_sku: BTreeMap<String, BTreeMap<NaiveDate, f64>> = BTreeMap::new();
    for line in reader.lines().skip(1) {
        let line = line.unwrap();
        let mut fields = line.split(',');
        let (Some(sku), Some(date), Some(units)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let date: NaiveDate = date.parse().unwrap();
        let units: f64 = units.parse().unwrap();
        *by_sku
            .entry(sku.to_owned())
            .or_default()
            .entry(date)
            .or_default() += units;
    }
    let last = by_sku
        .values()
        .filter_map(|days| days.keys().next_back().copied())
        .max()
        .expect("empty panel");
    let histories = by_sku
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(|(sku, days)| {
            let start = *days.keys().next().unwrap();
            let mut units = vec![0.0; (last - start).num_days() as usize + 1];
            for (date, value) in days {
                units[(date - start).num_days() as usize] = value;
            }
            SeriesHistory {
                sku: Sku::parse(&sku).unwrap(),
                location: Location::default(),
                start,
                units,
            }
        })
        .collect();
    (histories, last)
}

/// Splits each history at `cutoff` (the last training day): training histories and the 28 actuals.
fn split(histories: &[SeriesHistory], cutoff: NaiveDate) -> (Vec<SeriesHistory>, Vec<Vec<f64>>) {
    let mut train = Vec::new();
    let mut test = Vec::new();
    for history in histories {
        if history.start > cutoff {
            continue;
        }
        let keep = (cutoff - history.start).num_days() as usize + 1;
        train.push(SeriesHistory {
            units: history.units[..keep].to_vec(),
            ..history.clone()
        });
        test.push(history.units[keep..keep + HORIZON].to_vec());
    }
    (train, test)
}

#[derive(Default)]
struct Accuracy {
    rmsse: f64,
    rmsse_series: usize,
    bias_mean: f64,
    bias_pooled: f64,
    total28_wape: f64,
    coverage80: f64,
    coverage95: f64,
}

fn score(forecasts: &[SeriesForecast], train: &[SeriesHistory], test: &[Vec<f64>]) -> Accuracy {
    let mut accuracy = Accuracy::default();
    let (mut biases, mut bias_count) = (0.0, 0usize);
    let (mut error_sum, mut actual_sum, mut total_abs) = (0.0, 0.0, 0.0);
    let (mut inside80, mut inside95, mut points) = (0usize, 0usize, 0usize);
    for ((forecast, history), actual) in forecasts.iter().zip(train).zip(test) {
        let mean: Vec<f64> = forecast
            .points
            .iter()
            .map(ForecastPoint::expected)
            .collect();
        if let Some(value) = rmsse(actual, &mean, &history.units, 1) {
            accuracy.rmsse += value;
            accuracy.rmsse_series += 1;
        }
        let actual_total: f64 = actual.iter().sum();
        let forecast_total: f64 = mean.iter().sum();
        if actual_total > 0.0 {
            biases += (forecast_total - actual_total) / actual_total;
            bias_count += 1;
        }
        error_sum += forecast_total - actual_total;
        actual_sum += actual_total;
        total_abs += (forecast_total - actual_total).abs();
        for (point, value) in forecast.points.iter().zip(actual) {
            let [_, lo80, hi80, lo95, hi95] = point.values();
            inside80 += usize::from(lo80 <= *value && *value <= hi80);
            inside95 += usize::from(lo95 <= *value && *value <= hi95);
            points += 1;
        }
    }
    accuracy.rmsse /= accuracy.rmsse_series.max(1) as f64;
    accuracy.bias_mean = biases / bias_count.max(1) as f64;
    accuracy.bias_pooled = error_sum / actual_sum;
    accuracy.total28_wape = total_abs / actual_sum;
    accuracy.coverage80 = inside80 as f64 / points.max(1) as f64;
    accuracy.coverage95 = inside95 as f64 / points.max(1) as f64;
    accuracy
}

/// RMSSE, bias and signed 28-day-total error of a total forecast.
fn score_total(mean: &[f64], train: &[f64], actual: &[f64]) -> (f64, f64) {
    let value = rmsse(actual, mean, train, 1).unwrap_or(f64::NAN);
    let forecast_total: f64 = mean.iter().sum();
    let actual_total: f64 = actual.iter().sum();
    (value, (forecast_total - actual_total) / actual_total)
}

fn summed(forecasts: &[SeriesForecast]) -> Vec<f64> {
    (0..HORIZON)
        .map(|step| {
            forecasts
                .iter()
                .map(|forecast| forecast.points[step].expected())
                .sum()
        })
        .collect()
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn scale_run(histories: Vec<SeriesHistory>, last: NaiveDate, count: usize) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let base = histories.len();
    let series: Vec<SeriesHistory> = (0..count)
        .map(|index| {
            let source = &histories[index % base];
            SeriesHistory {
                sku: Sku::parse(&format!("{}-{}", source.sku.as_str(), index / base)).unwrap(),
                ..source.clone()
            }
        })
        .collect();
    drop(histories);
    let started = Instant::now();
    let forecast = forecast_tenant(&series, last, 365, threads, Utc::now(), &|_, _| {});
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "scale: {} series x 365 days forecast on {threads} threads in {seconds:.1} s; peak RSS {:.0} MB (target <= 2048 MB)",
        forecast.series.len(),
        peak_rss_mb()
    );
}

fn anchor_number(anchor: &Value, path: &[&str]) -> Option<f64> {
    path.iter()
        .try_fold(anchor, |value, key| value.get(key))?
        .as_f64()
}

fn main() {
    let args = parse_args();
    let (histories, last) = read_panel(&args.panel, args.limit);
    if let Some(count) = args.scale {
        scale_run(histories, last, count);
        return;
    }
    let cutoff = last - Days::new(HORIZON as u64);
    let (train, test) = split(&histories, cutoff);
    let total_train = total_history(&train, cutoff);
    let total_test: Vec<f64> = (0..HORIZON)
        .map(|step| test.iter().map(|actual| actual[step]).sum())
        .collect();
    println!(
        "panel: {} series, train to {cutoff}, test {} .. {last} (h = {HORIZON})",
        train.len(),
        cutoff + Days::new(1)
    );

    let mut seconds = Vec::new();
    let mut result = None;
    for &threads in &args.threads {
        let started = Instant::now();
        let mut forecast =
            forecast_unreconciled(&train, cutoff, HORIZON, threads, Utc::now(), &|_, _| {});
        let base = forecast.series.clone();
        calibrate_and_reconcile(&mut forecast);
        seconds.push((threads, started.elapsed().as_secs_f64()));
        result = Some((base, forecast));
    }
    let (base, forecast) = result.expect("--threads names at least one count");
    let base_accuracy = score(&base, &train, &test);
    let ours = score(&forecast.series, &train, &test);
    let (total_rmsse, total_error) =
        score_total(&summed(&forecast.series), &total_train, &total_test);
    let (base_total_rmsse, base_total_error) =
        score_total(&summed(&base), &total_train, &total_test);
    let total_model: Vec<f64> = forecast
        .total
        .points
        .iter()
        .map(ForecastPoint::expected)
        .collect();
    let (model_total_rmsse, _) = score_total(&total_model, &total_train, &total_test);

    let mut models: BTreeMap<&str, usize> = BTreeMap::new();
    for series in &base {
        let name = if series.model.starts_with("Combination") {
            "Combination"
        } else {
            series.model.as_str()
        };
        *models.entry(name).or_default() += 1;
    }
    println!(
        "models chosen: {models:?}; total model: {}; band factors 80 %/95 %: {:?}",
        forecast.total.model, forecast.band_factors
    );
    println!();
    println!(
        "{:<34} {:>7} {:>9} {:>9} {:>9} {:>7} {:>7} {:>8} {:>8} {:>8}",
        "OrderNimbus",
        "RMSSE",
        "bias",
        "pooled",
        "28d WAPE",
        "cov80",
        "cov95",
        "totRMSSE",
        "tot28err",
        "seconds"
    );
    for (name, accuracy, (rmsse_total, error_total)) in [
        (
            "per-series models (bottom-up)",
            &base_accuracy,
            (base_total_rmsse, base_total_error),
        ),
        ("calibrated, reconciled", &ours, (total_rmsse, total_error)),
    ] {
        println!(
            "{name:<34} {:>7.4} {:>9.4} {:>9.4} {:>9.4} {:>7.3} {:>7.3} {:>8.4} {:>8.4} {:>8}",
            accuracy.rmsse,
            accuracy.bias_mean,
            accuracy.bias_pooled,
            accuracy.total28_wape,
            accuracy.coverage80,
            accuracy.coverage95,
            rmsse_total,
            error_total,
            seconds
                .iter()
                .map(|(threads, value)| format!("{threads}t:{value:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    println!(
        "total model alone ({}): RMSSE {model_total_rmsse:.4}",
        forecast.total.model
    );
    println!("series scored for RMSSE: {}", ours.rmsse_series);
    println!("total candidates by backtest (what selection saw):");
    for candidate in &forecast.total.candidates {
        println!(
            "  {:<40} backtest RMSSE {:.4}  bias {:+.4}",
            candidate.model, candidate.rmsse, candidate.bias
        );
    }
    // Each candidate of the total, fitted on the same training days, scored on the held-out month.
    let mut total_forecasts = Vec::new();
    for model in ordernimbus_backend::forecast::engine::aggregate_candidates() {
        if let Ok(forecast) = model.forecast(&total_train, HORIZON) {
            let mean: Vec<f64> = forecast.mean.iter().map(|value| value.max(0.0)).collect();
            let (value, error) = score_total(&mean, &total_train, &total_test);
            println!(
                "  total by {:<14} RMSSE {value:.4}  28d error {error:+.4}",
                model.name()
            );
            total_forecasts.push((model.name(), mean));
        }
    }
    for (index, (left, left_mean)) in total_forecasts.iter().enumerate() {
        for (right, right_mean) in &total_forecasts[index + 1..] {
            let mean: Vec<f64> = left_mean
                .iter()
                .zip(right_mean)
                .map(|(a, b)| (a + b) / 2.0)
                .collect();
            let (value, _) = score_total(&mean, &total_train, &total_test);
            println!("  total by mean of {left} + {right}: RMSSE {value:.4}");
        }
    }

    let Some(path) = args.anchor else {
        return;
    };
    let anchor: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    println!();
    println!(
        "statsforecast {} (same protocol):",
        anchor["statsforecast_version"]
    );
    let mut best_sku: Option<(String, f64)> = None;
    // The reference for the tenant total: MSTL, fitted on the total itself or summed bottom-up
    // from per-SKU MSTL forecasts, whichever scores better.
    let mut best_total: Option<(String, f64)> = None;
    let mut consider_total = |name: String, value: f64| {
        if value.is_finite() && best_total.as_ref().is_none_or(|(_, best)| value < *best) {
            best_total = Some((name, value));
        }
    };
    let mut autoets_single = None;
    if let Some(sku_models) = anchor["sku_models"].as_object() {
        for (name, figures) in sku_models {
            let value = anchor_number(figures, &["rmsse"]).unwrap_or(f64::NAN);
            println!(
                "  {name:<20} per-SKU RMSSE {value:.4}  bias {:.4}  28d WAPE {:.4}  cov80 {}  bottom-up total RMSSE {:.4}  seconds {}",
                anchor_number(figures, &["bias_mean"]).unwrap_or(f64::NAN),
                anchor_number(figures, &["total28_wape"]).unwrap_or(f64::NAN),
                figures["coverage80"],
                anchor_number(figures, &["bottom_up_total", "rmsse"]).unwrap_or(f64::NAN),
                figures["seconds"],
            );
            if best_sku.as_ref().is_none_or(|(_, best)| value < *best) {
                best_sku = Some((name.clone(), value));
            }
            if name == "AutoETS" {
                autoets_single = anchor_number(figures, &["seconds", "1"]);
            }
            if name == "MSTL" {
                consider_total(
                    "MSTL per SKU, summed".to_owned(),
                    anchor_number(figures, &["bottom_up_total", "rmsse"]).unwrap_or(f64::NAN),
                );
            }
        }
    }
    if let Some(total_models) = anchor["total_models"].as_object() {
        for (name, figures) in total_models {
            let value = anchor_number(figures, &["rmsse"]).unwrap_or(f64::NAN);
            println!(
                "  total {name:<18} RMSSE {value:.4}  28d error {:.4}",
                anchor_number(figures, &["total28_error"]).unwrap_or(f64::NAN)
            );
            if name.starts_with("MSTL") {
                consider_total(format!("{name} on the total"), value);
            }
        }
    }
    println!();
    if let Some((name, value)) = best_sku {
        println!(
            "per-SKU RMSSE: ours {:.4} vs best statsforecast {name} {value:.4} -> ratio {:.3} (target < 1) {}",
            ours.rmsse,
            ours.rmsse / value,
            if ours.rmsse < value { "MET" } else { "MISSED" }
        );
    }
    if let Some((name, value)) = best_total {
        println!(
            "tenant-total RMSSE: ours {total_rmsse:.4} vs {name} {value:.4} -> ratio {:.3} (target < 1) {}",
            total_rmsse / value,
            if total_rmsse < value { "MET" } else { "MISSED" }
        );
    }
    println!(
        "80 % interval coverage on the held-out days: {:.3} (target 0.75-0.85) {}",
        ours.coverage80,
        if (0.75..=0.85).contains(&ours.coverage80) {
            "MET"
        } else {
            "MISSED"
        }
    );
    if let Some(reference) = autoets_single {
        for (threads, value) in &seconds {
            println!(
                "wall time, {threads} thread(s): ours {value:.1} s vs statsforecast AutoETS(7) 1 thread {reference:.1} s -> ratio {:.3} (target <= 0.1) {}",
                value / reference,
                if value / reference <= 0.1 {
                    "MET"
                } else {
                    "MISSED"
                }
            );
        }
    }
}
