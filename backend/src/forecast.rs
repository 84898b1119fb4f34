//! Forecasting: the models (each behind the small `Model` trait), demand classification, accuracy
//! metrics, interval helpers, per-series model selection (`engine`) and the use case that refreshes a
//! tenant's stored forecasts. Models and the engine do no IO; `refresh_tenant` reads histories from
//! and writes forecasts to the `Store`.

pub mod demand;
pub mod engine;
pub mod intervals;
pub mod metrics;
pub mod model;
pub mod models;
pub mod optimize;
pub mod refresher;
pub mod reorder;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, NaiveDate, Utc};

pub use model::{Model, ModelError, ModelForecast};
pub use refresher::Refresher;

use crate::domain::{
    DayRange, DayTotal, ForecastPoint, Location, MAX_HORIZON_DAYS, OVERVIEW_HISTORY_DAYS,
    PRODUCT_WINDOW_DAYS, SeriesForecast, SeriesHistory, SeriesStats, Sku, TenantId, TenantOverview,
};
use crate::store::{Store, StoreError};

/// Forecasts stored per write.
const FORECASTS_PER_WRITE: usize = 1_000;

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresh {
    /// Series forecast.
    pub series: usize,
}

/// Largest factor reconciliation scales a day's series forecasts by: a total model that expects a
/// surge the series cannot explain moves them only so far.
const MAX_RECONCILE_FACTOR: f64 = 5.0;

/// Every series of a tenant forecast and reconciled with the tenant total.
#[derive(Debug, Clone)]
pub struct TenantForecast {
    /// One per SKU × location; day by day they add up to `total`.
    pub series: Vec<SeriesForecast>,
    /// The model fitted on the tenant's total demand, which sets the total's daily shape.
    pub total: engine::Fit,
    /// Band scale factors (80 %, 95 %) that made older backtest windows' bands cover the most
    /// recent window's actuals at their nominal rates, pooled over the tenant's series.
    pub band_factors: (f64, f64),
}

/// Daily total over `histories`, from the earliest first sale to `last_day`.
pub fn total_history(histories: &[SeriesHistory], last_day: NaiveDate) -> Vec<f64> {
    let Some(start) = histories.iter().map(|series| series.start).min() else {
        return Vec::new();
    };
    let days = usize::try_from((last_day - start).num_days() + 1).unwrap_or(0);
    let mut total = vec![0.0; days];
    for series in histories {
        let offset = usize::try_from((series.start - start).num_days()).unwrap_or(0);
        for (slot, units) in total[offset..].iter_mut().zip(&series.units) {
            *slot += units.max(0.0);
        }
    }
    total
}

/// Forecasts every series in `histories` `horizon` days past `last_day` on `threads` threads, fits
/// the tenant total, calibrates the series' bands and reconciles: each day, the series forecasts
/// are scaled so they add up to the total model's forecast (top-down by forecast proportions).
/// The series keep their relative sizes; the total keeps the weekly shape and level that per-SKU
/// models cannot see.
/// `progress(done, total)` is called as series finish.
pub fn forecast_tenant(
    histories: &[SeriesHistory],
    last_day: NaiveDate,
    horizon: usize,
    threads: usize,
    generated_at: DateTime<Utc>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> TenantForecast {
    let mut forecast = forecast_unreconciled(
        histories,
        last_day,
        horizon,
        threads,
        generated_at,
        progress,
    );
    calibrate_and_reconcile(&mut forecast);
    forecast
}

/// Widens or narrows every series' bands by the tenant's calibration factors, then reconciles the
/// series with the total: what [`forecast_tenant`] does after fitting.
pub fn calibrate_and_reconcile(forecast: &mut TenantForecast) {
    for series in &mut forecast.series {
        engine::calibrate(&mut series.points, forecast.band_factors);
    }
    reconcile(&mut forecast.series, &forecast.total.points);
}

/// [`forecast_tenant`] before calibration and reconciliation: each series by its own model, the
/// total's, and the calibration factors.
pub fn forecast_unreconciled(
    histories: &[SeriesHistory],
    last_day: NaiveDate,
    horizon: usize,
    threads: usize,
    generated_at: DateTime<Utc>,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> TenantForecast {
    let count = histories.len();
    let chunk = count.div_ceil(threads.max(1)).max(1);
    let done = AtomicUsize::new(0);
    let (series, total, band_factors) = std::thread::scope(|scope| {
        let total = scope.spawn(|| {
            let units = total_history(histories, last_day);
            engine::fit(&units, last_day, horizon, engine::Level::Aggregate)
        });
        let workers: Vec<_> = histories
            .chunks(chunk)
            .map(|part| {
                let done = &done;
                scope.spawn(move || {
                    part.iter()
                        .map(|history| {
                            let forecast =
                                engine::forecast_series(history, last_day, horizon, generated_at);
                            progress(done.fetch_add(1, Ordering::Relaxed) + 1, count);
                            forecast
                        })
                        .collect::<Vec<(SeriesForecast, engine::Calibration)>>()
                })
            })
            .collect();
        let mut calibration = engine::Calibration::default();
        let series: Vec<SeriesForecast> = workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap_or_default())
            .map(|(forecast, evidence)| {
                calibration.add(&evidence);
                forecast
            })
            .collect();
        let total = total.join().ok();
        (series, total, calibration.factors())
    });
    let total =
        total.unwrap_or_else(|| engine::fit(&[], last_day, horizon, engine::Level::Aggregate));
    TenantForecast {
        series,
        total,
        band_factors,
    }
}

/// Scales each day's series forecasts (means and bands) so their means add up to `total`'s mean.
/// Days where the series expect nothing stay as they are: there is nothing to distribute.
pub fn reconcile(series: &mut [SeriesForecast], total: &[ForecastPoint]) {
    for (step, target) in total.iter().enumerate() {
        let sum: f64 = series
            .iter()
            .filter_map(|forecast| forecast.points.get(step))
            .map(ForecastPoint::expected)
            .sum();
        if sum <= 0.0 {
            continue;
        }
        let factor = (target.expected() / sum).clamp(0.0, MAX_RECONCILE_FACTOR);
        for point in series
            .iter_mut()
            .filter_map(|forecast| forecast.points.get_mut(step))
        {
            let [mean, lo80, hi80, lo95, hi95] = point.values().map(|value| value * factor);
            *point = ForecastPoint::new(point.date, mean, lo80, hi80, lo95, hi95);
        }
    }
}

/// The complete days of `histories`, given that `today` (the tenant's local date) is not over yet:
/// today's sales so far (webhook orders arrive all day) would read as a slump in demand, so the days
/// from `today` on are left out, and a series with only those days waits for tomorrow. A tenant
/// with no sales before today keeps them all: a partial day is better than no forecast.
pub fn complete_days(mut histories: Vec<SeriesHistory>, today: NaiveDate) -> Vec<SeriesHistory> {
    if !histories.iter().any(|series| series.start < today) {
        return histories;
    }
    histories.retain_mut(|series| {
        let complete = usize::try_from((today - series.start).num_days()).unwrap_or(0);
        series.units.truncate(complete);
        !series.units.is_empty()
    });
    histories
}

/// Recomputes and stores the forecasts of every series of `tenant`, `MAX_HORIZON_DAYS` ahead of its
/// last complete sales day ([`complete_days`]), on all cores. `progress(done, total)` is called as
/// series finish.
///
/// # Errors
/// When the store fails.
pub async fn refresh_tenant(
    store: Arc<dyn Store>,
    tenant: &TenantId,
    progress: Arc<dyn Fn(usize, usize) + Send + Sync>,
) -> Result<Refresh, StoreError> {
    let timezone = store.tenant(tenant).await?.timezone;
    let today = Utc::now().with_timezone(&timezone.tz()).date_naive();
    let histories = complete_days(store.sales_history(tenant).await?, today);
    let Some(last_day) = histories
        .iter()
        .map(|series| series.start + chrono::Days::new(series.units.len().saturating_sub(1) as u64))
        .max()
    else {
        return Ok(Refresh { series: 0 });
    };
    let generated_at = Utc::now();
    let recent = recent_sales(&histories);
    let forecast = tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        forecast_tenant(
            &histories,
            last_day,
            MAX_HORIZON_DAYS,
            threads,
            generated_at,
            &*progress,
        )
    })
    .await
    .map_err(StoreError::unavailable)?;
    let total = TenantTotal {
        model: forecast.total.model,
        backtest: forecast.total.backtest,
        points: forecast.total.points,
    };
    store_forecasts(
        store.as_ref(),
        tenant,
        forecast.series,
        total,
        &recent,
        last_day,
        generated_at,
    )
    .await
}

/// The tenant total's forecast as the overview shows it.
#[derive(Debug, Clone)]
pub struct TenantTotal {
    /// Model fitted on the total.
    pub model: String,
    /// Its backtest accuracy.
    pub backtest: crate::domain::Backtest,
    /// Its daily points from the day after `last_day`.
    pub points: Vec<ForecastPoint>,
}

/// Stores freshly computed forecasts and what the UI reads beside them: each series' products-table
/// figures and the tenant's overview. `recent` is [`recent_sales`] of the histories the forecasts
/// were computed from, which end on `last_day`.
///
/// # Errors
/// When the store fails.
pub async fn store_forecasts(
    store: &dyn Store,
    tenant: &TenantId,
    mut forecasts: Vec<SeriesForecast>,
    total: TenantTotal,
    recent: &RecentSales,
    last_day: NaiveDate,
    generated_at: DateTime<Utc>,
) -> Result<Refresh, StoreError> {
    let series = forecasts.len();
    let stats = series_stats(&forecasts, recent);
    while !forecasts.is_empty() {
        let rest = forecasts.split_off(forecasts.len().min(FORECASTS_PER_WRITE));
        store.put_forecasts(tenant, forecasts).await?;
        forecasts = rest;
    }
    store.put_series_stats(tenant, stats).await?;
    let first_day = last_day + chrono::Days::new(1);
    let history_from = first_day - chrono::Days::new(OVERVIEW_HISTORY_DAYS);
    let totals = store
        .daily_totals(
            tenant,
            DayRange {
                from: Some(history_from),
                to: Some(last_day),
            },
        )
        .await?;
    tracing::info!(tenant_id = %tenant, series, total_model = %total.model, "forecasts refreshed");
    let overview = TenantOverview {
        generated_at,
        series,
        model: total.model,
        backtest: total.backtest,
        points: total.points,
        history: zero_filled(&totals, history_from, last_day),
    };
    store.put_overview(tenant, &overview).await?;
    Ok(Refresh { series })
}

/// Daily totals from `from` to `to`, days without sales as zeros.
fn zero_filled(totals: &[DayTotal], from: NaiveDate, to: NaiveDate) -> Vec<DayTotal> {
    let known: HashMap<NaiveDate, &DayTotal> =
        totals.iter().map(|total| (total.date, total)).collect();
    from.iter_days()
        .take_while(|date| *date <= to)
        .map(|date| {
            known.get(&date).map_or_else(
                || DayTotal {
                    date,
                    units: 0.0,
                    revenue: 0.0,
                },
                |total| (*total).clone(),
            )
        })
        .collect()
}

/// Units of each series over the last `PRODUCT_WINDOW_DAYS` days and the window before, by SKU
/// and location.
pub type RecentSales = HashMap<(Sku, Location), (f64, f64)>;

/// [`RecentSales`] of histories that end on the tenant's last sales day.
pub fn recent_sales(histories: &[SeriesHistory]) -> RecentSales {
    histories
        .iter()
        .map(|history| {
            let units = &history.units;
            let split = units.len().saturating_sub(PRODUCT_WINDOW_DAYS);
            let before = split.saturating_sub(PRODUCT_WINDOW_DAYS);
            let last: f64 = units[split..].iter().sum();
            let previous: f64 = units[before..split].iter().sum();
            (
                (history.sku.clone(), history.location.clone()),
                (last, previous),
            )
        })
        .collect()
}

/// The products-table figures of each forecast series.
fn series_stats(forecasts: &[SeriesForecast], recent: &RecentSales) -> Vec<SeriesStats> {
    forecasts
        .iter()
        .map(|forecast| {
            let (sales_28, prev_28) = recent
                .get(&(forecast.sku.clone(), forecast.location.clone()))
                .copied()
                .unwrap_or_default();
            SeriesStats {
                sku: forecast.sku.clone(),
                location: forecast.location.clone(),
                sales_28,
                prev_28,
                forecast_28: forecast
                    .points
                    .iter()
                    .take(PRODUCT_WINDOW_DAYS)
                    .map(ForecastPoint::expected)
                    .sum(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Backtest, Location, Sku};

    fn history(sku: &str, start: NaiveDate, units: &[f64]) -> SeriesHistory {
        SeriesHistory {
            sku: Sku::parse(sku).unwrap(),
            location: Location::default(),
            start,
            units: units.to_vec(),
        }
    }

    #[test]
    fn todays_partial_sales_are_left_out_of_the_fit_unless_they_are_all_there_is() {
        let today = NaiveDate::from_ymd_opt(2026, 12, 2).unwrap();
        let days_ago = |days: u64| today - chrono::Days::new(days);
        let kept = complete_days(
            vec![
                // Ten complete days, then today's first hours.
                history("A", days_ago(10), &[5.0; 11]),
                // Sold for the first time today: forecast from tomorrow on.
                history("B", today, &[2.0]),
                // Ended a week ago: unchanged.
                history("C", days_ago(20), &[1.0; 14]),
            ],
            today,
        );
        let summary: Vec<(&str, NaiveDate, usize)> = kept
            .iter()
            .map(|series| (series.sku.as_str(), series.start, series.units.len()))
            .collect();
        assert_eq!(summary, [("A", days_ago(10), 10), ("C", days_ago(20), 14)]);

        // A shop whose first sales are today still gets a forecast from them.
        let first_day = complete_days(vec![history("B", today, &[2.0])], today);
        assert_eq!(first_day.len(), 1);
        assert_eq!(first_day[0].units, [2.0]);
    }

    fn point(mean: f64) -> ForecastPoint {
        ForecastPoint::new(
            NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            mean,
            mean / 2.0,
            mean * 2.0,
            0.0,
            mean * 3.0,
        )
    }

    fn series(means: &[f64]) -> SeriesForecast {
        SeriesForecast {
            sku: Sku::parse("A").unwrap(),
            location: Location::default(),
            model: "m".into(),
            demand_class: None,
            generated_at: Utc::now(),
            points: means.iter().copied().map(point).collect(),
            backtest: Backtest::default(),
            candidates: vec![],
        }
    }

    #[test]
    fn reconciled_series_add_up_to_the_total_and_keep_their_shares() {
        let mut parts = vec![series(&[1.0, 2.0, 0.0]), series(&[3.0, 2.0, 0.0])];
        // Day 0 doubles, day 1 is a closed day, day 2 has nothing to distribute, so stays zero.
        reconcile(&mut parts, &[point(8.0), point(0.0), point(5.0)]);
        assert_eq!(parts[0].points[0].mean, 2.0);
        assert_eq!(parts[1].points[0].mean, 6.0);
        assert_eq!(parts[1].points[0].hi95, 18.0);
        assert_eq!(parts[0].points[1].mean + parts[1].points[1].mean, 0.0);
        assert_eq!(parts[0].points[2].mean, 0.0);
        // A total far above the parts moves them at most MAX_RECONCILE_FACTOR.
        let mut parts = vec![series(&[1.0])];
        reconcile(&mut parts, &[point(100.0)]);
        assert_eq!(parts[0].points[0].expected(), MAX_RECONCILE_FACTOR);
    }

    #[test]
    fn total_history_aligns_series_that_start_on_different_days() {
        let day = |d: u32| NaiveDate::from_ymd_opt(2024, 1, d).unwrap();
        let history = |start: NaiveDate, units: Vec<f64>| SeriesHistory {
            sku: Sku::parse("A").unwrap(),
            location: Location::default(),
            start,
            units,
        };
        let total = total_history(
            &[
                history(day(1), vec![1.0, 2.0, -1.0]),
                history(day(2), vec![5.0, 5.0]),
            ],
            day(3),
        );
        // Refunds do not make demand negative.
        assert_eq!(total, [1.0, 7.0, 5.0]);
    }

    #[test]
    fn tenant_forecasts_are_calibrated_before_they_are_reconciled() {
        let total = engine::Fit {
            model: "m".into(),
            demand_class: None,
            points: vec![point(20.0)],
            backtest: Backtest::default(),
            candidates: vec![],
            calibration: engine::Calibration::default(),
        };
        let mut forecast = TenantForecast {
            series: vec![series(&[10.0])],
            total,
            band_factors: (1.5, 0.5),
        };
        calibrate_and_reconcile(&mut forecast);
        let point = &forecast.series[0].points[0];
        // Bands first scaled around the mean (80 %: 5..20 -> 2.5..25; 95 %: 0..30 -> 5..20), then
        // everything doubled to meet the total.
        assert_eq!(point.mean, 20.0);
        assert_eq!((point.lo80, point.hi80), (5.0, 50.0));
        assert_eq!((point.lo95, point.hi95), (10.0, 40.0));
    }
}
