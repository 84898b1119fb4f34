//! OAuth: the authorize page (merchant approval) and the token endpoint with its three grants.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};

use crate::crypto::{host_param, query_hmac, query_string, random_hex};
use crate::session_token;
use crate::state::Shared;
use crate::state::{AuthCode, SimState, TokenKind, TokenRecord, split_scopes};

/// `grant_type` of token exchange.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// `subject_token_type` of a session token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// `requested_token_type` for an offline token.
pub const OFFLINE_TOKEN_TYPE: &str = "urn:shopify:params:oauth:token-type:offline-access-token";
/// `requested_token_type` for an online token.
pub const ONLINE_TOKEN_TYPE: &str = "urn:shopify:params:oauth:token-type:online-access-token";
/// Name recorded for the authorization-code grant (its request carries no `grant_type`).
pub const AUTHORIZATION_CODE: &str = "authorization_code";
/// `grant_type` of a refresh.
pub const REFRESH_TOKEN: &str = "refresh_token";

/// How long a used refresh token may be retried before its replacement is used
/// (<https://shopify.dev/changelog/more-resilient-refreshes-for-expiring-offline-access-tokens>).
const REFRESH_RETRY_WINDOW_DAYS: i64 = 30;

/// Signed query parameters Shopify appends to a redirect, in the order it sends them.
pub(crate) fn signed_params(secret: &str, mut params: Vec<(&'static str, String)>) -> String {
    let hmac = query_hmac(secret, &params);
    params.push(("hmac", hmac));
    params.sort_by(|left, right| left.0.cmp(right.0));
    query_string(&params)
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html><head><title>Oauth error</title></head><body><h1>Oauth error {}</h1><p>{message}</p></body></html>",
        if status == StatusCode::NOT_FOUND {
            "not_found"
        } else {
            "invalid_request"
        },
    );
    (status, Html(body)).into_response()
}

/// Last value wins for repeated parameters, as Shopify reads them.
fn last_values(pairs: &[(String, String)]) -> HashMap<&str, &str> {
    pairs
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// `GET /shops/{shop}/admin/oauth/authorize`: the merchant approves at once; Shopify redirects to the app.
///
/// Follows <https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant>
/// (steps 2–3: ask for permission, confirm installation).
pub(crate) async fn authorize(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    let params = last_values(&pairs);
    let now = shared.clock.now();
    let mut state = shared.lock();
    let Some(record) = state.shops.get(&shop) else {
        return error_page(StatusCode::NOT_FOUND, "There is no store at this address.");
    };
    let handle = record.seed.handle().to_owned();
    if params.get("client_id").copied() != Some(state.config.api_key.as_str()) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Oauth error invalid_request: The client_id is missing or invalid.",
        );
    }
    let Some(redirect_uri) = params.get("redirect_uri").copied() else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Oauth error invalid_request: The redirect_uri is missing.",
        );
    };
    if !state
        .config
        .redirect_urls
        .iter()
        .any(|allowed| allowed == redirect_uri)
    {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Oauth error invalid_request: The redirect_uri is not whitelisted in the app configuration.",
        );
    }
    let scopes = match params.get("scope") {
        Some(scope) => split_scopes(scope),
        None => split_scopes(&state.config.scopes),
    };
    let online = pairs
        .iter()
        .any(|(name, value)| name == "grant_options[]" && value == "per-user");
    let code = random_hex(16);
    let expires_at = now + chrono::Duration::from_std(state.config.code_ttl).unwrap_or_default();
    state.codes.insert(
        code.clone(),
        AuthCode {
            shop: shop.clone(),
            scopes,
            online,
            expires_at,
            used: false,
        },
    );
    let mut signed = vec![
        ("code", code),
        ("host", host_param(&handle)),
        ("shop", shop.clone()),
        ("timestamp", now.timestamp().to_string()),
    ];
    if let Some(nonce) = params.get("state") {
        signed.push(("state", (*nonce).to_owned()));
    }
    let query = signed_params(&state.config.api_secret, signed);
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{separator}{query}");
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// Parses a JSON object or an `application/x-www-form-urlencoded` body into string values.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Option<HashMap<String, String>> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    if is_json {
        let Value::Object(object) = serde_json::from_slice(body).ok()? else {
            return None;
        };
        return Some(
            object
                .into_iter()
                .map(|(name, value)| {
                    let text = match value {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    (name, text)
                })
                .collect(),
        );
    }
    let text = std::str::from_utf8(body).ok()?;
    let decode = |part: &str| {
        percent_decode_str(&part.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Some(
        text.split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(name), decode(value))
            })
            .collect(),
    )
}

fn oauth_error(status: StatusCode, error: &str, description: Option<&str>) -> Response {
    let body = match description {
        Some(description) => json!({"error": error, "error_description": description}),
        None => json!({"error": error}),
    };
    (status, axum::Json(body)).into_response()
}

/// `POST /shops/{shop}/admin/oauth/access_token`: authorization code, token exchange or refresh.
///
/// Follows <https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant>,
/// <https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/token-exchange> and
/// <https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens>
/// (expiring tokens, refresh with rotation, and the retry window of
/// <https://shopify.dev/changelog/more-resilient-refreshes-for-expiring-offline-access-tokens>).
pub(crate) async fn access_token(
    State(shared): State<Arc<Shared>>,
    Path(shop): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_body(&headers, &body);
    let grant = params
        .as_ref()
        .and_then(|params| params.get("grant_type").cloned())
        .unwrap_or_else(|| AUTHORIZATION_CODE.to_owned());
    let (delay, failure) = {
        let mut state = shared.lock();
        state.token_requests.push((shop.clone(), grant.clone()));
        let failure = (!state.faults.token_failures.is_empty())
            .then(|| state.faults.token_failures.remove(0));
        (state.faults.token_delay, failure)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = failure {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            status,
            axum::Json(json!({"errors": status.canonical_reason().unwrap_or("Error")})),
        )
            .into_response();
    }
    let Some(params) = params else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("The request body could not be parsed."),
        );
    };
    let now = shared.clock.now();
    let mut state = shared.lock();
    if !state.shops.contains_key(&shop) {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"errors": "Not Found"})),
        )
            .into_response();
    }
    let client_ok = params.get("client_id") == Some(&state.config.api_key)
        && params
            .get("client_secret")
            .is_some_and(|secret| state.accepted_secrets().contains(secret));
    if !client_ok {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            Some(
                "Client authentication failed due to unknown client, no client authentication included, or unsupported authentication method.",
            ),
        );
    }
    let expiring = params.get("expiring").is_some_and(|value| value == "1");
    match grant.as_str() {
        AUTHORIZATION_CODE => authorization_code(&mut state, &shop, &params, expiring, now),
        TOKEN_EXCHANGE => token_exchange(&mut state, &shop, &params, expiring, now),
        REFRESH_TOKEN => refresh(&mut state, &shop, &params, now),
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", None),
    }
}

fn authorization_code(
    state: &mut SimState,
    shop: &str,
    params: &HashMap<String, String>,
    expiring: bool,
    now: DateTime<Utc>,
) -> Response {
    let code = params
        .get("code")
        .and_then(|code| state.codes.get_mut(code));
    let Some(code) = code.filter(|code| !code.used && code.shop == shop && now < code.expires_at)
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("The authorization code was not found or was already used"),
        );
    };
    code.used = true;
    let (scopes, online) = (code.scopes.clone(), code.online);
    install(state, shop, &scopes, now);
    if online {
        issue_online(state, shop, &scopes, AUTHORIZATION_CODE, 1, now)
    } else {
        issue_offline(
            state,
            shop,
            &scopes,
            AUTHORIZATION_CODE,
            expiring,
            None,
            now,
        )
    }
}

fn token_exchange(
    state: &mut SimState,
    shop: &str,
    params: &HashMap<String, String>,
    expiring: bool,
    now: DateTime<Utc>,
) -> Response {
    if params.get("subject_token_type").map(String::as_str) != Some(ID_TOKEN_TYPE) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("subject_token_type is not supported"),
        );
    }
    let secrets = state.accepted_secrets();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let subject = params
        .get("subject_token")
        .map(String::as_str)
        .unwrap_or_default();
    let claims = match session_token::verify(subject, &secrets, &state.config.api_key, shop, now) {
        Ok(claims) => claims,
        Err(error) => {
            tracing::debug!(%shop, %error, "token exchange refused the subject token");
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_subject_token", None);
        }
    };
    let user_id = claims
        .get("sub")
        .and_then(Value::as_str)
        .and_then(|sub| sub.parse().ok())
        .unwrap_or(0);
    let scopes = split_scopes(&state.config.scopes);
    match params.get("requested_token_type").map(String::as_str) {
        Some(OFFLINE_TOKEN_TYPE) => {
            install(state, shop, &scopes, now);
            issue_offline(state, shop, &scopes, TOKEN_EXCHANGE, expiring, None, now)
        }
        Some(ONLINE_TOKEN_TYPE) => {
            install(state, shop, &scopes, now);
            issue_online(state, shop, &scopes, TOKEN_EXCHANGE, user_id, now)
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            Some("requested_token_type is not supported"),
        ),
    }
}

fn refresh(
    state: &mut SimState,
    shop: &str,
    params: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> Response {
    let presented = params
        .get("refresh_token")
        .map(String::as_str)
        .unwrap_or_default();
    let window = chrono::Duration::days(REFRESH_RETRY_WINDOW_DAYS);
    let index = state.tokens.iter().position(|token| {
        token.kind == TokenKind::Refresh
            && token.token == presented
            && token.shop == shop
            && token.is_live(now)
            && token
                .first_used_at
                .is_none_or(|first_used| now < first_used + window)
    });
    let Some(index) = index else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            Some("Token has been expired or revoked."),
        );
    };
    let used = &mut state.tokens[index];
    used.first_used_at.get_or_insert(now);
    let scopes = used.scopes.clone();
    // Using a replacement retires the refresh token it replaced; until then that one may be retried.
    if let Some(parent) = used.parent.clone() {
        for token in state
            .tokens
            .iter_mut()
            .filter(|token| token.token == parent)
        {
            token.retired = true;
        }
    }
    issue_offline(
        state,
        shop,
        &scopes,
        REFRESH_TOKEN,
        true,
        Some(presented.to_owned()),
        now,
    )
}

/// Marks the shop installed with `scopes`.
fn install(state: &mut SimState, shop: &str, scopes: &[String], now: DateTime<Utc>) {
    if let Some(record) = state.shops.get_mut(shop) {
        if !record.installed {
            record.installed_at = Some(now);
        }
        record.installed = true;
        record.scopes = scopes.to_vec();
    }
}

fn expiry(now: DateTime<Utc>, ttl: std::time::Duration) -> DateTime<Utc> {
    now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

fn issue_offline(
    state: &mut SimState,
    shop: &str,
    scopes: &[String],
    grant: &str,
    expiring: bool,
    parent: Option<String>,
    now: DateTime<Utc>,
) -> Response {
    let access = TokenRecord {
        shop: shop.to_owned(),
        token: format!("shpat_{}", random_hex(16)),
        kind: TokenKind::OfflineAccess,
        grant_type: grant.to_owned(),
        issued_at: now,
        expires_at: expiring.then(|| expiry(now, state.config.access_token_ttl)),
        revoked: false,
        scopes: scopes.to_vec(),
        parent: None,
        first_used_at: None,
        retired: false,
    };
    let mut body = json!({"access_token": access.token, "scope": scopes.join(",")});
    if expiring {
        let refresh = TokenRecord {
            token: format!("shprt_{}", random_hex(16)),
            kind: TokenKind::Refresh,
            expires_at: Some(expiry(now, state.config.refresh_token_ttl)),
            parent,
            ..access.clone()
        };
        body["expires_in"] = json!(state.config.access_token_ttl.as_secs());
        body["refresh_token"] = json!(refresh.token);
        body["refresh_token_expires_in"] = json!(state.config.refresh_token_ttl.as_secs());
        state.tokens.push(access);
        state.tokens.push(refresh);
    } else {
        state.tokens.push(access);
    }
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn issue_online(
    state: &mut SimState,
    shop: &str,
    scopes: &[String],
    grant: &str,
    user_id: u64,
    now: DateTime<Utc>,
) -> Response {
    let ttl = state.config.online_token_ttl;
    let access = TokenRecord {
        shop: shop.to_owned(),
        token: format!("shpua_{}", random_hex(16)),
        kind: TokenKind::OnlineAccess,
        grant_type: grant.to_owned(),
        issued_at: now,
        expires_at: Some(expiry(now, ttl)),
        revoked: false,
        scopes: scopes.to_vec(),
        parent: None,
        first_used_at: None,
        retired: false,
    };
    let body = json!({
        "access_token": access.token,
        "scope": scopes.join(","),
        "expires_in": ttl.as_secs(),
        "associated_user_scope": scopes.join(","),
        "associated_user": {
            "id": user_id,
            "first_name": "Sim",
            "last_name": format!("User {user_id}"),
            "email": format!("user{user_id}@example.com"),
            "email_verified": true,
            "account_owner": user_id == 1,
            "locale": "en",
            "collaborator": false,
        },
    });
    state.tokens.push(access);
    (StatusCode::OK, axum::Json(body)).into_response()
}
