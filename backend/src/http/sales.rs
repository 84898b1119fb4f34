//! `GET /api/v1/sales` and `GET /api/v1/skus`.

use axum::Json;
use axum::extract::State;
use chrono::NaiveDate;
use serde::Deserialize;

use super::{ApiError, ApiQuery, AppState, Authenticated};
use crate::domain::{DayRange, Granularity, Location, SalesDay, SalesQuery, Sku, SkuSummary};

/// Query parameters of `GET /api/v1/sales`.
#[derive(Debug, Deserialize)]
pub(super) struct SalesParams {
    sku: Option<String>,
    location: Option<String>,
    from: Option<String>,
    to: Option<String>,
    granularity: Option<String>,
}

fn date_param(field: &str, value: Option<&str>) -> Result<Option<NaiveDate>, ApiError> {
    value
        .filter(|value| !value.is_empty())
        .map(|value| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| {
                ApiError::invalid_field(field, format!("\"{value}\" is not a date (YYYY-MM-DD)"))
            })
        })
        .transpose()
}

impl SalesParams {
    fn parse(&self) -> Result<SalesQuery, ApiError> {
        let sku = self
            .sku
            .as_deref()
            .map(|sku| Sku::parse(sku).map_err(|error| ApiError::invalid_field("sku", error)))
            .transpose()?;
        let location = self
            .location
            .as_deref()
            .map(|location| {
                Location::parse(location)
                    .map_err(|error| ApiError::invalid_field("location", error))
            })
            .transpose()?;
        let from = date_param("from", self.from.as_deref())?;
        let to = date_param("to", self.to.as_deref())?;
        let days =
            DayRange::new(from, to).map_err(|error| ApiError::invalid_field("from", error))?;
        let granularity = self
            .granularity
            .as_deref()
            .map(|value| {
                Granularity::parse(value)
                    .map_err(|error| ApiError::invalid_field("granularity", error))
            })
            .transpose()?
            .unwrap_or_default();
        Ok(SalesQuery {
            sku,
            location,
            days,
            granularity,
        })
    }
}

/// `GET /api/v1/sales?sku=&location=&from=&to=&granularity=day|week`: net units and revenue.
pub(super) async fn list_sales(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    ApiQuery(params): ApiQuery<SalesParams>,
) -> Result<Json<Vec<SalesDay>>, ApiError> {
    let query = params.parse()?;
    Ok(Json(state.store.sales(&tenant.id, &query).await?))
}

/// `GET /api/v1/skus`: every SKU with first and last sale and totals.
pub(super) async fn list_skus(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
) -> Result<Json<Vec<SkuSummary>>, ApiError> {
    Ok(Json(state.store.skus(&tenant.id).await?))
}
