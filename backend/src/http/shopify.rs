//! Shopify install and embedded entry points: `GET /auth`, `GET /auth/callback`,
//! `GET /auth/session-token` (the bounce page), `GET /api/v1/shop` and `GET /api/v1/sync`; the
//! embedded `/app` documents are admitted by `browser::document_access`.
//!
//! Follows shopify.dev: "Implement authorization code grant manually" (query HMAC, nonce, shop
//! validation), "Set up embedded app authorization" / "Session tokens" (bounce page,
//! `X-Shopify-Retry-Invalid-Session-Request`), "Exchange a session token for an access token", and
//! "Set up iframe protection" (`Content-Security-Policy: frame-ancestors`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};

use super::auth::session_error;
use super::browser::cookie;
use super::{ApiError, AppState, Authenticated};
use crate::domain::{ShopInstall, Tenant};
use crate::shopify::install::{AccessError, Lifecycle, SessionError};
use crate::shopify::oauth::{self, OAuthError, SignedQuery};
use crate::shopify::shop::ShopDomain;

/// Cookie holding the signed OAuth nonce between `/auth` and `/auth/callback`.
const STATE_COOKIE: &str = "ordernimbus_oauth_state";
/// Life of the nonce cookie: the merchant approves within this time.
const STATE_COOKIE_SECONDS: u32 = 300;

fn lifecycle(state: &AppState) -> Result<&Arc<Lifecycle>, ApiError> {
    state.shopify.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "shopify_not_configured",
            "this server has no Shopify app configured (SHOPIFY_API_KEY, SHOPIFY_API_SECRET, SHOPIFY_APP_URL)",
        )
    })
}

/// Decoded query parameters (as `URLSearchParams` decodes them).
pub(super) fn params(raw: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    oauth::parse_query(raw.unwrap_or_default()).map_err(|error| oauth_error(&error))
}

/// A parameter's value, the last one winning as in Shopify's libraries.
pub(super) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

pub(super) fn parse_shop(shop: Option<&str>) -> Result<ShopDomain, ApiError> {
    let shop =
        shop.ok_or_else(|| ApiError::invalid_field("shop", "the shop parameter is required"))?;
    ShopDomain::parse(shop).map_err(|error| ApiError::invalid_field("shop", error))
}

fn oauth_error(error: &OAuthError) -> ApiError {
    match error {
        OAuthError::MissingHmac | OAuthError::BadHmac => {
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_hmac", error.to_string())
        }
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            error.to_string(),
        ),
    }
}

/// Checks the HMAC and timestamp of a request signed by Shopify; returns its signed parameters.
fn verify_signed(lifecycle: &Lifecycle, raw: &str) -> Result<SignedQuery, ApiError> {
    let secrets = lifecycle.config().secrets();
    let signed = oauth::verify_query(raw, &secrets).map_err(|error| oauth_error(&error))?;
    let timestamp = signed.get("timestamp").ok_or_else(|| {
        ApiError::invalid_field("timestamp", "a signed request must carry a timestamp")
    })?;
    oauth::check_timestamp(timestamp, Utc::now()).map_err(|error| oauth_error(&error))?;
    Ok(signed)
}

/// `GET /auth?shop=…`: starts an authorization-code install. Shopify's install link carries
/// `hmac` and `timestamp` (verified); a merchant typing a shop name into the install form does not.
pub(super) async fn begin_install(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let lifecycle = lifecycle(&state)?;
    let pairs = params(raw.as_deref())?;
    let shop = parse_shop(param(&pairs, "shop"))?;
    if param(&pairs, "hmac").is_some() {
        verify_signed(lifecycle, raw.as_deref().unwrap_or_default())?;
    }
    let nonce = oauth::new_nonce();
    let secret = lifecycle.config().api_secret.expose().as_bytes();
    let cookie_value = oauth::sign_cookie_value(&format!("{nonce}|{shop}"), secret);
    let secure = if lifecycle.config().app_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{STATE_COOKIE}={cookie_value}; Path=/auth/callback; Max-Age={STATE_COOKIE_SECONDS}; HttpOnly; SameSite=Lax{secure}"
    );
    tracing::info!(shop = %shop, "install started");
    Ok(redirect(
        &lifecycle.authorize_url(&shop, &nonce),
        Some(&cookie),
    ))
}

fn redirect(location: &str, cookie: Option<&str>) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(value) = cookie.and_then(|cookie| HeaderValue::from_str(cookie).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /auth/callback`: Shopify's redirect after the merchant approved. Verifies the HMAC (constant
/// time), the timestamp, the shop and the nonce, trades the code, installs, and redirects into Admin.
pub(super) async fn complete_install(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let lifecycle = lifecycle(&state)?;
    let raw = raw.unwrap_or_default();
    let signed = verify_signed(lifecycle, &raw)?;
    let shop = parse_shop(signed.get("shop"))?;
    let nonce = signed
        .get("state")
        .ok_or_else(|| ApiError::invalid_field("state", "the state parameter is required"))?;
    let secret = lifecycle.config().api_secret.expose().as_bytes();
    let expected = cookie(&headers, STATE_COOKIE)
        .and_then(|value| oauth::verify_cookie_value(value, secret))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_state",
                "no install in progress in this browser (the nonce cookie is missing or expired): start again from /auth",
            )
        })?;
    if expected != format!("{nonce}|{shop}") {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "invalid_state",
            "the state parameter does not match this browser's install nonce",
        ));
    }
    let code = signed
        .get("code")
        .filter(|code| !code.is_empty())
        .ok_or_else(|| ApiError::invalid_field("code", "the code parameter is required"))?;
    let install = lifecycle
        .install_with_code(&shop, code)
        .await
        .map_err(|error| session_error(SessionError::from(error)))?;
    tracing::info!(shop = %shop, tenant_id = %install.tenant, "install completed by authorization code");
    let clear = format!("{STATE_COOKIE}=; Path=/auth/callback; Max-Age=0; HttpOnly; SameSite=Lax");
    Ok(redirect(&lifecycle.admin_app_url(&shop), Some(&clear)))
}

/// `GET /auth/session-token`: the bounce page. App Bridge fetches a fresh session token and reloads
/// the URL in `shopify-reload` with it.
pub(super) async fn bounce(State(state): State<AppState>) -> Result<Response, ApiError> {
    let lifecycle = lifecycle(&state)?;
    Ok(Html(bounce_page(
        &lifecycle.config().api_key,
        &lifecycle.config().app_bridge_url,
    ))
    .into_response())
}

fn bounce_page(api_key: &str, app_bridge_url: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta name=\"shopify-api-key\" content=\"{}\">\n<script src=\"{}\"></script>\n</head><body></body></html>\n",
        html_attribute(api_key),
        html_attribute(app_bridge_url)
    )
}

pub(super) fn html_attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Redirects a document request without a usable session token to the bounce page, which reloads
/// `/app` (without the stale `id_token`) once App Bridge has a fresh one.
pub(super) fn bounce_target(pairs: &[(String, String)]) -> Response {
    let kept: Vec<(String, String)> = pairs
        .iter()
        .filter(|(name, _)| name != "id_token" && name != "shopify-reload")
        .cloned()
        .collect();
    let query = |pairs: &[(String, String)]| {
        pairs
            .iter()
            .map(|(name, value)| format!("{}={}", encode(name), encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let reload = format!("/app?{}", query(&kept));
    let mut bounce = kept;
    bounce.push(("shopify-reload".to_owned(), reload));
    redirect(&format!("/auth/session-token?{}", query(&bounce)), None)
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, crate::shopify::install::QUERY_VALUE).to_string()
}

/// `GET /api/v1/shop`: the shop's details read live from the Admin API (refreshing the access
/// token when due); 404 for a tenant that is not a Shopify shop.
pub(super) async fn show_shop(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let lifecycle = lifecycle(&state)?;
    let install = install_of(&state, &tenant).await?;
    let info = lifecycle
        .shop_info(&install.shop)
        .await
        .map_err(access_error)?;
    Ok(Json(json!({
        "shop": install.shop.as_str(),
        "name": info.name,
        "iana_timezone": info.iana_timezone,
        "currency": info.currency,
        "scopes": install.scopes,
        "installed_at": install.installed_at,
    })))
}

/// `GET /api/v1/sync`: the shop's order sync (state, phase, counts, last error, watermark).
pub(super) async fn show_sync(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
) -> Result<Json<Value>, ApiError> {
    let install = install_of(&state, &tenant).await?;
    let status = state
        .store
        .sync_status(&tenant.id)
        .await?
        .unwrap_or_else(|| crate::domain::SyncStatus {
            shop: install.shop.to_string(),
            ..crate::domain::SyncStatus::default()
        });
    Ok(Json(status.public_view()))
}

/// The Shopify install owning the tenant; 404 for a tenant that is not a shop (a CSV retailer).
pub(super) async fn install_of(state: &AppState, tenant: &Tenant) -> Result<ShopInstall, ApiError> {
    state
        .store
        .shop_of_tenant(&tenant.id)
        .await?
        .ok_or_else(|| ApiError::not_found("shop of tenant", tenant.id.as_str()))
}

fn access_error(error: AccessError) -> ApiError {
    match error {
        AccessError::NotInstalled(_) => {
            ApiError::new(StatusCode::CONFLICT, "not_installed", error.to_string())
        }
        AccessError::ReauthorizeNeeded(_) => {
            ApiError::new(StatusCode::CONFLICT, "reauthorize", error.to_string())
        }
        AccessError::Shopify(error) => session_error(SessionError::Shopify(error)),
        AccessError::Store(error) => error.into(),
        AccessError::Undecryptable => ApiError::internal(&error),
    }
}
