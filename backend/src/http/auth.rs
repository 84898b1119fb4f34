//! API-key authentication: `Authorization: Bearer <key>` → the key's tenant.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::domain::{ApiKey, Tenant};

/// The tenant that owns the presented API key; the only source of a tenant id in handlers.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Tenant);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized("missing Authorization: Bearer <api key> header")
        })?;
        let key = value
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("Authorization header must be \"Bearer <api key>\"")
            })?;
        let tenant = state
            .store
            .tenant_by_api_key(ApiKey::from_presented(key).hash())
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
        Ok(Self(tenant))
    }
}

/// `GET /api/v1/tenant`: who the key belongs to.
pub(super) async fn show_tenant(Authenticated(tenant): Authenticated) -> Json<Value> {
    Json(json!({
        "tenant_id": tenant.id.as_str(),
        "name": tenant.name,
        "timezone": tenant.timezone.name(),
        "created_at": tenant.created_at,
    }))
}
