//! `GET /api/v1/settings` and `PUT /api/v1/settings`: the tenant's time zone, default lead time,
//! service level and forecast horizon.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;

use super::{ApiError, AppState, Authenticated};
use crate::domain::TenantSettings;

/// `GET /api/v1/settings`.
pub(super) async fn show_settings(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
) -> Result<Json<TenantSettings>, ApiError> {
    Ok(Json(state.store.settings(&tenant.id).await?))
}

/// `PUT /api/v1/settings`: a JSON body with every field; 400 names the first bad one.
pub(super) async fn put_settings(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    body: Bytes,
) -> Result<Json<TenantSettings>, ApiError> {
    let settings: TenantSettings = serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the body must be settings as JSON: {error}"),
        )
    })?;
    settings
        .validate()
        .map_err(|(field, error)| ApiError::invalid_field(field, error))?;
    state.store.put_settings(&tenant.id, &settings).await?;
    Ok(Json(settings))
}
