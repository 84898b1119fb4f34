//! `GET /api/v1/forecasts` and `GET /api/v1/forecasts/summary`: stored forecasts, never a fit.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiQuery, AppState, Authenticated};
use crate::domain::{
    Backtest, ForecastPoint, Location, MAX_HORIZON_DAYS, REVIEW_PERIOD_DAYS, ReorderHint,
    SeriesForecast, Sku,
};
use crate::forecast::reorder::reorder_hint;

/// Days returned when the request names no horizon.
const DEFAULT_HORIZON: usize = 28;

/// Query parameters of `GET /api/v1/forecasts`.
#[derive(Debug, Deserialize)]
pub(super) struct ForecastParams {
    sku: Option<String>,
    location: Option<String>,
    horizon: Option<String>,
}

/// Query parameters of `GET /api/v1/forecasts/summary`.
#[derive(Debug, Deserialize)]
pub(super) struct SummaryParams {
    horizon: Option<String>,
    location: Option<String>,
}

/// One forecast as the API shows it.
#[derive(Debug, Serialize)]
pub(super) struct ForecastView {
    sku: String,
    location: String,
    model: String,
    demand_class: Option<String>,
    generated_at: DateTime<Utc>,
    points: Vec<ForecastPoint>,
    backtest: Backtest,
    candidates: Vec<crate::domain::CandidateScore>,
    /// Present when the stock of this SKU at this location is known.
    reorder: Option<ReorderHint>,
}

/// A SKU × location whose stock runs short.
#[derive(Debug, Serialize)]
pub(super) struct AtRisk {
    sku: String,
    location: String,
    #[serde(flatten)]
    hint: ReorderHint,
}

/// Units sold on one day.
#[derive(Debug, Serialize)]
pub(super) struct DayUnits {
    date: chrono::NaiveDate,
    units: f64,
}

/// Days of actual sales the summary shows before its forecast.
const HISTORY_DAYS: u64 = 91;

/// SKUs at risk listed in the summary, soonest stock-out first.
const MAX_AT_RISK: usize = 100;

/// The tenant total.
#[derive(Debug, Serialize)]
pub(super) struct SummaryView {
    /// The location summed, or `null` for the whole tenant.
    location: Option<String>,
    generated_at: Option<DateTime<Utc>>,
    series: usize,
    points: Vec<ForecastPoint>,
    /// Actual daily units of the tenant over the `HISTORY_DAYS` days before the forecast starts.
    history: Vec<DayUnits>,
    /// SKU × locations with known stock that run out within their lead time or are at or below
    /// their reorder point, soonest stock-out first.
    at_risk: Vec<AtRisk>,
}

fn horizon(value: Option<&str>) -> Result<usize, ApiError> {
    let Some(value) = value else {
        return Ok(DEFAULT_HORIZON);
    };
    value
        .parse::<usize>()
        .ok()
        .filter(|days| (1..=MAX_HORIZON_DAYS).contains(days))
        .ok_or_else(|| {
            ApiError::invalid_field(
                "horizon",
                format!("horizon must be a whole number of days from 1 to {MAX_HORIZON_DAYS}, not \"{value}\""),
            )
        })
}

/// The `location` query parameter, when given.
fn location_param(value: Option<&str>) -> Result<Option<Location>, ApiError> {
    value
        .map(|location| {
            Location::parse(location).map_err(|error| ApiError::invalid_field("location", error))
        })
        .transpose()
}

/// Adds forecasts of several series day by day: means add up; band half-widths add in quadrature
/// (independent errors), which keeps the total's bands narrower than the sum of the parts' bands.
fn bottom_up(forecasts: &[SeriesForecast], horizon: usize) -> Vec<ForecastPoint> {
    let Some(first) = forecasts.first() else {
        return Vec::new();
    };
    (0..horizon.min(first.points.len()))
        .map(|step| {
            let mut mean = 0.0;
            let mut spread = [0.0f64; 4];
            for forecast in forecasts {
                let Some(point) = forecast.points.get(step) else {
                    continue;
                };
                let [point_mean, lo80, hi80, lo95, hi95] = point.values();
                mean += point_mean;
                for (total, half_width) in spread.iter_mut().zip([
                    point_mean - lo80,
                    hi80 - point_mean,
                    point_mean - lo95,
                    hi95 - point_mean,
                ]) {
                    *total += half_width * half_width;
                }
            }
            let [lo80, hi80, lo95, hi95] = spread.map(f64::sqrt);
            ForecastPoint::new(
                first.points[step].date,
                mean,
                (mean - lo80).max(0.0),
                mean + hi80,
                (mean - lo95).max(0.0),
                mean + hi95,
            )
        })
        .collect()
}

/// `GET /api/v1/forecasts?sku=&location=&horizon=`: one SKU at one location, or summed over its
/// locations when none is named.
pub(super) async fn show_forecast(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    ApiQuery(params): ApiQuery<ForecastParams>,
) -> Result<Json<ForecastView>, ApiError> {
    let sku = params
        .sku
        .as_deref()
        .ok_or_else(|| ApiError::invalid_field("sku", "sku is required"))
        .and_then(|sku| Sku::parse(sku).map_err(|error| ApiError::invalid_field("sku", error)))?;
    let location = location_param(params.location.as_deref())?;
    let horizon = horizon(params.horizon.as_deref())?;
    let mut forecasts = state
        .store
        .forecasts(&tenant.id, Some(&sku), location.as_ref(), None)
        .await?;
    if forecasts.is_empty() {
        let query = crate::domain::SalesQuery {
            sku: Some(sku.clone()),
            location: location.clone(),
            ..Default::default()
        };
        let has_sales = !state.store.sales(&tenant.id, &query).await?.is_empty();
        return Err(if has_sales {
            ApiError::new(
                StatusCode::CONFLICT,
                "forecast_pending",
                format!(
                    "the forecast of {} is being computed; try again shortly",
                    sku.as_str()
                ),
            )
        } else {
            let what = match &location {
                Some(location) => format!("{} at {}", sku.as_str(), location.as_str()),
                None => sku.as_str().to_owned(),
            };
            ApiError::not_found("SKU", &what)
        });
    }
    let view = if forecasts.len() == 1 {
        let mut forecast = forecasts.remove(0);
        let stock = state.store.stock(&tenant.id, Some(&forecast.sku)).await?;
        let reorder = stock
            .iter()
            .find(|level| level.location == forecast.location)
            .map(|level| reorder_hint(&forecast.points, level));
        forecast.points.truncate(horizon);
        ForecastView {
            sku: forecast.sku.as_str().to_owned(),
            location: forecast.location.as_str().to_owned(),
            model: forecast.model,
            demand_class: forecast.demand_class,
            generated_at: forecast.generated_at,
            points: forecast.points,
            backtest: forecast.backtest,
            candidates: forecast.candidates,
            reorder,
        }
    } else {
        ForecastView {
            sku: sku.as_str().to_owned(),
            location: "all".to_owned(),
            model: format!("bottom-up over {} locations", forecasts.len()),
            demand_class: None,
            generated_at: forecasts
                .iter()
                .map(|forecast| forecast.generated_at)
                .min()
                .unwrap_or_else(Utc::now),
            points: bottom_up(&forecasts, horizon),
            backtest: Backtest::default(),
            candidates: Vec::new(),
            reorder: None,
        }
    };
    Ok(Json(view))
}

/// The stocked SKU × locations (of one location, if given) that run short, soonest stock-out
/// first. Forecasts are read for a batch of stocked series at a time (one store call per batch)
/// and only as far as the reorder policy looks (lead time plus review period), so memory stays
/// small however many series the tenant has.
async fn at_risk(
    state: &AppState,
    tenant: &crate::domain::TenantId,
    location: Option<&Location>,
) -> Result<Vec<AtRisk>, ApiError> {
    /// Stocked series whose forecasts one store call reads.
    const BATCH: usize = 1_000;
    let mut stock = state.store.stock(tenant, None).await?;
    if let Some(location) = location {
        stock.retain(|level| level.location == *location);
    }
    let mut at_risk = Vec::new();
    for levels in stock.chunks(BATCH) {
        let series: Vec<(Sku, Location)> = levels
            .iter()
            .map(|level| (level.sku.clone(), level.location.clone()))
            .collect();
        let days = levels
            .iter()
            .map(|level| level.lead_time_days + REVIEW_PERIOD_DAYS)
            .max()
            .unwrap_or(REVIEW_PERIOD_DAYS) as usize;
        let forecasts: std::collections::HashMap<(Sku, Location), SeriesForecast> = state
            .store
            .forecasts_of(tenant, &series, Some(days))
            .await?
            .into_iter()
            .map(|forecast| ((forecast.sku.clone(), forecast.location.clone()), forecast))
            .collect();
        for level in levels {
            let Some(forecast) = forecasts.get(&(level.sku.clone(), level.location.clone())) else {
                continue;
            };
            // Each row as far as its own policy looks, as on the products page.
            let days = (level.lead_time_days + REVIEW_PERIOD_DAYS) as usize;
            let hint = reorder_hint(&forecast.points[..days.min(forecast.points.len())], level);
            if hint.at_risk {
                at_risk.push(AtRisk {
                    sku: level.sku.as_str().to_owned(),
                    location: level.location.as_str().to_owned(),
                    hint,
                });
            }
        }
    }
    at_risk.sort_by(|left, right| {
        let cover = |risk: &AtRisk| risk.hint.days_of_cover.unwrap_or(f64::INFINITY);
        cover(left).total_cmp(&cover(right))
    });
    at_risk.truncate(MAX_AT_RISK);
    Ok(at_risk)
}

/// `GET /api/v1/forecasts/summary?horizon=&location=`: the tenant's (or one location's) total
/// demand, bottom-up over its series, its recent actual sales and its SKUs at risk.
pub(super) async fn show_summary(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    ApiQuery(params): ApiQuery<SummaryParams>,
) -> Result<Json<SummaryView>, ApiError> {
    let horizon = horizon(params.horizon.as_deref())?;
    let location = location_param(params.location.as_deref())?;
    // Only the days shown: a tenant's whole forecast set would be hundreds of MB.
    let forecasts = state
        .store
        .forecasts(&tenant.id, None, location.as_ref(), Some(horizon))
        .await?;
    if let Some(location) = &location
        && forecasts.is_empty()
    {
        return Err(ApiError::not_found("location", location.as_str()));
    }
    let at_risk = at_risk(&state, &tenant.id, location.as_ref()).await?;
    let history = match forecasts
        .first()
        .and_then(|forecast| forecast.points.first())
    {
        Some(first) => {
            let last_day = first.date.pred_opt().unwrap_or(first.date);
            let from = last_day
                .checked_sub_days(chrono::Days::new(HISTORY_DAYS - 1))
                .unwrap_or(last_day);
            let days = crate::domain::DayRange {
                from: Some(from),
                to: Some(last_day),
            };
            let totals: std::collections::HashMap<chrono::NaiveDate, f64> = state
                .store
                .daily_units(&tenant.id, location.as_ref(), days)
                .await?
                .into_iter()
                .collect();
            from.iter_days()
                .take_while(|date| *date <= last_day)
                .map(|date| DayUnits {
                    date,
                    units: totals.get(&date).copied().unwrap_or(0.0),
                })
                .collect()
        }
        None => Vec::new(),
    };
    Ok(Json(SummaryView {
        location: location.map(|location| location.as_str().to_owned()),
        generated_at: forecasts.iter().map(|forecast| forecast.generated_at).min(),
        history,
        series: forecasts.len(),
        points: bottom_up(&forecasts, horizon),
        at_risk,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn horizon_outside_one_to_365_is_named() {
        assert_eq!(horizon(None).unwrap(), 28);
        assert_eq!(horizon(Some("365")).unwrap(), 365);
        for bad in ["0", "366", "-1", "abc"] {
            assert!(horizon(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn bottom_up_adds_means_and_combines_bands_in_quadrature() {
        let point = |mean: f64| {
            ForecastPoint::new(
                chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
                mean,
                mean - 3.0,
                mean + 3.0,
                mean - 4.0,
                mean + 4.0,
            )
        };
        let forecast = |mean: f64| SeriesForecast {
            sku: Sku::parse("A").unwrap(),
            location: Location::default(),
            model: "m".into(),
            demand_class: None,
            generated_at: Utc::now(),
            points: vec![point(mean)],
            backtest: Backtest::default(),
            candidates: vec![],
        };
        let total = bottom_up(&[forecast(10.0), forecast(20.0)], 28);
        assert_eq!(total.len(), 1);
        let [mean, _, hi80, lo95, _] = total[0].values();
        assert!((mean - 30.0).abs() < 1e-5);
        assert!((hi80 - (30.0 + 18f64.sqrt())).abs() < 1e-5);
        assert!((lo95 - (30.0 - 32f64.sqrt())).abs() < 1e-5);
    }
}
