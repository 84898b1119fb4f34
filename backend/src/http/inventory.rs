//! `POST /api/v1/inventory` (CSV of stock levels) and `GET /api/v1/inventory`: the stock on hand,
//! lead time and service level that reorder hints are computed from.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;

use super::{ApiError, AppState, Authenticated};
use crate::domain::StockLevel;
use crate::stock::{StockError, StockReport, import_stock};

/// Largest inventory file accepted; stock files have one row per SKU and location.
pub(super) const MAX_INVENTORY_BYTES: usize = 32 * 1024 * 1024;

/// `POST /api/v1/inventory`: a CSV with `sku,on_hand` and optional `location`, `lead_time_days`,
/// `service_level`. Valid rows are stored even when others are rejected; the report lists why.
pub(super) async fn put_inventory(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    body: Bytes,
) -> Result<(StatusCode, Json<StockReport>), ApiError> {
    if body.len() > MAX_INVENTORY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("inventory files are limited to {MAX_INVENTORY_BYTES} bytes"),
        ));
    }
    let report = import_stock(state.store.as_ref(), &tenant.id, body.as_ref())
        .await
        .map_err(|error| match error {
            StockError::Header(message) => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_csv", message)
            }
            StockError::Store(error) => error.into(),
        })?;
    let status = if report.rows_imported > 0 || report.rows_rejected == 0 {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(report)))
}

/// `GET /api/v1/inventory`: the tenant's stock levels.
pub(super) async fn list_inventory(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
) -> Result<Json<Vec<StockLevel>>, ApiError> {
    Ok(Json(state.store.stock(&tenant.id, None).await?))
}
