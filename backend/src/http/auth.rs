//! Authentication: `Authorization: Bearer <API key>` (CSV tenants, scripts), `Bearer <App Bridge
//! session token>` (Shopify Admin, embedded) or a standalone browser's session cookie (with
//! `X-CSRF-Token` on unsafe methods) → the tenant.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use serde_json::{Value, json};

use axum::http::StatusCode;

use super::{ApiError, AppState};
use crate::domain::{ApiKey, Tenant};
use crate::shopify::client::ShopifyError;
use crate::shopify::install::SessionError;

/// The tenant that owns the presented API key; the only source of a tenant id in handlers.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Tenant);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return from_browser_session(parts, state).await;
        };
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
        if let (Some(lifecycle), true) = (&state.shopify, looks_like_jwt(key)) {
            return lifecycle
                .authenticate(key)
                .await
                .map(Self)
                .map_err(session_error);
        }
        let tenant = state
            .store
            .tenant_by_api_key(ApiKey::from_presented(key).hash())
            .await?
            .ok_or_else(|| ApiError::unauthorized("invalid API key"))?;
        Ok(Self(tenant))
    }
}

/// A standalone browser's session cookie; a request that may change something must also carry
/// the session's CSRF token.
async fn from_browser_session(parts: &Parts, state: &AppState) -> Result<Authenticated, ApiError> {
    let Some((_, session)) = super::browser::browser_session(state, &parts.headers).await? else {
        return Err(ApiError::unauthorized(
            "missing Authorization: Bearer <api key> header (or a signed-in session)",
        ));
    };
    if !parts.method.is_safe() {
        let presented = parts
            .headers
            .get(super::browser::CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !session.csrf_token.matches(presented) {
            return Err(super::browser::csrf_error());
        }
    }
    Ok(Authenticated(session.tenant))
}

/// API keys are `onk_` + hex; a session token is a JWT (`header.claims.signature`, base64url).
fn looks_like_jwt(value: &str) -> bool {
    value.starts_with("eyJ") && value.bytes().filter(|byte| *byte == b'.').count() == 2
}

/// Only a bad session token is a 401 (App Bridge then fetches a new one and retries once); a failed
/// token exchange is a 502/503, or App Bridge would retry forever.
pub(super) fn session_error(error: SessionError) -> ApiError {
    match error {
        SessionError::InvalidToken(error) => {
            ApiError::unauthorized(format!("invalid session token: {error}"))
                .with_header(RETRY_INVALID_SESSION, "1")
        }
        SessionError::Shopify(ShopifyError::Unreachable(message)) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shopify_unavailable",
            format!("Shopify could not be reached for the token exchange: {message}"),
        ),
        SessionError::Shopify(error) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "token_exchange_failed",
            format!("the token exchange with Shopify failed: {error}"),
        ),
        SessionError::Store(error) => error.into(),
    }
}

/// Header telling App Bridge to fetch a fresh session token and retry the request.
pub(super) const RETRY_INVALID_SESSION: &str = "x-shopify-retry-invalid-session-request";

/// `GET /api/v1/tenant`: who the key belongs to.
pub(super) async fn show_tenant(Authenticated(tenant): Authenticated) -> Json<Value> {
    Json(json!({
        "tenant_id": tenant.id.as_str(),
        "name": tenant.name,
        "timezone": tenant.timezone.name(),
        "created_at": tenant.created_at,
    }))
}
