//! `GET /api/v1/overview`: what the UI's overview shows — the tenant's recent daily units and
//! revenue, the total's forecast with its bands and backtest accuracy, and the SKUs at risk —
//! read from records kept at forecast time, so its cost does not grow with the number of SKUs.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::{ApiError, ApiQuery, AppState, Authenticated};
use crate::domain::{MAX_HORIZON_DAYS, ProductRow, TenantOverview};
use crate::product;

/// SKUs at risk listed.
const AT_RISK_SHOWN: usize = 20;

/// Query parameters of `GET /api/v1/overview`.
#[derive(Debug, Deserialize)]
pub(super) struct OverviewParams {
    horizon: Option<usize>,
}

/// The reply.
#[derive(Debug, Serialize)]
pub(super) struct OverviewView {
    /// `null` until the first forecasts are computed.
    forecast: Option<TenantOverview>,
    /// Stocked SKU × locations running short, soonest first.
    at_risk: Vec<ProductRow>,
}

/// `GET /api/v1/overview?horizon=` (days of forecast, default 28).
pub(super) async fn show_overview(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    ApiQuery(params): ApiQuery<OverviewParams>,
) -> Result<Json<OverviewView>, ApiError> {
    let horizon = params.horizon.unwrap_or(28);
    if !(1..=MAX_HORIZON_DAYS).contains(&horizon) {
        return Err(ApiError::invalid_field(
            "horizon",
            format!("horizon must be 1 to {MAX_HORIZON_DAYS} days"),
        ));
    }
    let mut forecast = state.store.overview(&tenant.id).await?;
    if let Some(forecast) = &mut forecast {
        forecast.points.truncate(horizon);
    }
    let at_risk = product::at_risk(state.store.as_ref(), &tenant.id, AT_RISK_SHOWN).await?;
    Ok(Json(OverviewView { forecast, at_risk }))
}
