//! The browser side of `/app`: who may see a UI document (`document_access`: a verified session
//! token when embedded in Shopify Admin, a session cookie when standalone), and the standalone
//! sign-in (`GET|POST /app/sign-in` with an API key or a one-time link, `POST /app/sign-out`).
//!
//! Standalone sessions live in an HttpOnly, SameSite=Strict cookie. Every form carries a CSRF
//! token: the sign-in form a double-submit one (cookie and field must match, there is no session
//! yet), the others the session's own, which API calls send in `X-CSRF-Token`.

use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{Duration, Utc};
use serde::Deserialize;

use super::shopify::{bounce_target, html_attribute, param, params, parse_shop};
use super::{ApiError, AppState};
use crate::domain::{ApiKey, BrowserSecret, BrowserSession, TenantId};
use crate::shopify::install::SessionError;

/// Cookie holding a standalone browser session's secret.
pub const SESSION_COOKIE: &str = "ordernimbus_session";
/// Header API calls from a cookie session carry the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Cookie of the sign-in form's double-submit CSRF token.
const SIGN_IN_CSRF_COOKIE: &str = "ordernimbus_sign_in";
/// How long a browser session lasts.
const SESSION_LIFETIME: Duration = Duration::days(7);
/// How long a one-time sign-in link may wait to be used.
pub const SIGN_IN_LINK_LIFETIME: Duration = Duration::minutes(15);
/// Standalone pages may not be framed at all.
const STANDALONE_FRAMES: &str = "frame-ancestors 'none'";

/// Who may see a UI document, and how the page reaches the JSON API on their behalf.
#[derive(Debug, Clone)]
pub enum DocumentAccess {
    /// Inside Shopify Admin, with a verified session token.
    Embedded {
        /// The shop (`acme.myshopify.com`).
        shop: String,
        /// The app's client id, for `<meta name="shopify-api-key">`.
        api_key: String,
        /// The App Bridge script to load.
        app_bridge_url: String,
        /// The verified session token, good for the API calls rendering this page.
        session_token: String,
        /// The `Content-Security-Policy` the document must carry.
        frame_policy: String,
    },
    /// A standalone (CSV) tenant signed in with a session cookie.
    Standalone {
        /// The tenant's display name.
        tenant_name: String,
        /// The session cookie's secret, for the API calls rendering this page.
        session_secret: String,
        /// The session's CSRF token, for the page's forms and API calls.
        csrf_token: String,
    },
}

impl DocumentAccess {
    /// The `Content-Security-Policy` of the document.
    pub fn frame_policy(&self) -> &str {
        match self {
            Self::Embedded { frame_policy, .. } => frame_policy,
            Self::Standalone { .. } => STANDALONE_FRAMES,
        }
    }

    /// Headers that authenticate an API request made on behalf of this document's viewer.
    pub fn api_headers(&self) -> Vec<(String, String)> {
        match self {
            Self::Embedded { session_token, .. } => vec![(
                header::AUTHORIZATION.as_str().to_owned(),
                format!("Bearer {session_token}"),
            )],
            Self::Standalone {
                session_secret,
                csrf_token,
                ..
            } => vec![
                (
                    header::COOKIE.as_str().to_owned(),
                    format!("{SESSION_COOKIE}={session_secret}"),
                ),
                (CSRF_HEADER.to_owned(), csrf_token.clone()),
            ],
        }
    }
}

/// Decides whether the request may see a UI document under `/app`. Embedded (Shopify Admin passes
/// `shop`, `host`, `id_token`): a valid session token; a missing or bad one goes to the bounce
/// page. Standalone: a live session cookie; otherwise the sign-in page. The error is the response
/// to send instead.
pub async fn document_access(
    state: &AppState,
    raw_query: Option<&str>,
    headers: &HeaderMap,
) -> Result<DocumentAccess, Response> {
    let pairs = params(raw_query).map_err(IntoResponse::into_response)?;
    if let Some(lifecycle) = state
        .shopify
        .as_ref()
        .filter(|_| param(&pairs, "shop").is_some())
    {
        let shop = parse_shop(param(&pairs, "shop")).map_err(IntoResponse::into_response)?;
        let Some(id_token) = param(&pairs, "id_token").filter(|token| !token.is_empty()) else {
            return Err(bounce_target(&pairs));
        };
        return match lifecycle.authenticate(id_token).await {
            Ok(tenant) => {
                tracing::debug!(shop = %shop, tenant_id = %tenant.id, "embedded page served");
                Ok(DocumentAccess::Embedded {
                    shop: shop.to_string(),
                    api_key: lifecycle.config().api_key.clone(),
                    app_bridge_url: lifecycle.config().app_bridge_url.clone(),
                    session_token: id_token.to_owned(),
                    frame_policy: format!(
                        "frame-ancestors {} https://admin.shopify.com",
                        shop.origin()
                    ),
                })
            }
            Err(SessionError::InvalidToken(_)) => Err(bounce_target(&pairs)),
            Err(error) => Err(super::auth::session_error(error).into_response()),
        };
    }
    match browser_session(state, headers).await {
        Ok(Some((secret, session))) => Ok(DocumentAccess::Standalone {
            tenant_name: session.tenant.name,
            session_secret: secret,
            csrf_token: session.csrf_token.expose().to_owned(),
        }),
        Ok(None) => Err(with_frames(
            see_other("/app/sign-in", None),
            STANDALONE_FRAMES,
        )),
        Err(error) => Err(error.into_response()),
    }
}

/// Adds the document's frame policy to a response.
pub fn with_frames(mut response: Response, frame_policy: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(frame_policy) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The live session the request's cookie opens, with the cookie's secret.
pub(super) async fn browser_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, BrowserSession)>, ApiError> {
    let Some(secret) = cookie(headers, SESSION_COOKIE).filter(|value| !value.is_empty()) else {
        return Ok(None);
    };
    let presented = BrowserSecret::from_presented(secret);
    Ok(state
        .store
        .session(presented.hash(), Utc::now())
        .await?
        .map(|session| (secret.to_owned(), session)))
}

/// A cookie's value.
pub(super) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn see_other(location: &str, cookies: Option<Vec<String>>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    for cookie in cookies.unwrap_or_default() {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `; Secure` when the request reached us over HTTPS (directly or through a proxy saying so).
fn secure_flag(headers: &HeaderMap) -> &'static str {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    if https { "; Secure" } else { "" }
}

/// Form fields of `POST /app/sign-in`.
#[derive(Debug, Deserialize)]
pub(super) struct SignInForm {
    csrf_token: Option<String>,
    api_key: Option<String>,
    link: Option<String>,
}

/// `GET /app/sign-in[?link=…]`: the sign-in form (API key), or for a one-time link a button that
/// posts it (a GET never uses a link up, so link previews cannot spend it).
pub(super) async fn show_sign_in(RawQuery(raw): RawQuery, headers: HeaderMap) -> Response {
    let pairs = params(raw.as_deref()).unwrap_or_default();
    let link = param(&pairs, "link").filter(|link| !link.is_empty());
    sign_in_page(StatusCode::OK, link, None, &headers)
}

/// `POST /app/sign-in`: checks the CSRF pair, then the API key or the one-time link; starts a
/// session and goes to `/app`.
pub(super) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignInForm>,
) -> Result<Response, ApiError> {
    let expected = cookie(&headers, SIGN_IN_CSRF_COOKIE).unwrap_or_default();
    let presented = form.csrf_token.as_deref().unwrap_or_default();
    if expected.is_empty() || !BrowserSecret::from_presented(expected).matches(presented) {
        return Ok(sign_in_page(
            StatusCode::FORBIDDEN,
            form.link.as_deref(),
            Some("This form expired. Please try again."),
            &headers,
        ));
    }
    let tenant: Option<TenantId> = match (form.link.as_deref(), form.api_key.as_deref()) {
        (Some(link), _) if !link.is_empty() => {
            state
                .store
                .consume_sign_in_link(BrowserSecret::from_presented(link).hash(), Utc::now())
                .await?
        }
        (_, Some(key)) if !key.trim().is_empty() => state
            .store
            .tenant_by_api_key(ApiKey::from_presented(key).hash())
            .await?
            .map(|tenant| tenant.id),
        _ => None,
    };
    let Some(tenant) = tenant else {
        let message = if form.link.as_deref().is_some_and(|link| !link.is_empty()) {
            "This sign-in link was already used or has expired. Ask for a new one (ordernimbus tenants sign-in-link)."
        } else {
            "That API key is not valid."
        };
        return Ok(sign_in_page(
            StatusCode::UNAUTHORIZED,
            None,
            Some(message),
            &headers,
        ));
    };
    let secret = BrowserSecret::generate();
    let csrf = BrowserSecret::generate();
    state
        .store
        .create_session(
            &tenant,
            secret.hash(),
            csrf.expose(),
            Utc::now() + SESSION_LIFETIME,
        )
        .await?;
    tracing::info!(tenant_id = %tenant, "browser session started");
    let secure = secure_flag(&headers);
    let cookies = vec![
        format!(
            "{SESSION_COOKIE}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
            secret.expose(),
            SESSION_LIFETIME.num_seconds()
        ),
        format!("{SIGN_IN_CSRF_COOKIE}=; Path=/app/sign-in; Max-Age=0; HttpOnly; SameSite=Strict"),
    ];
    Ok(with_frames(
        see_other("/app", Some(cookies)),
        STANDALONE_FRAMES,
    ))
}

/// Form fields of `POST /app/sign-out`.
#[derive(Debug, Deserialize)]
pub(super) struct SignOutForm {
    csrf_token: Option<String>,
}

/// `POST /app/sign-out`: ends the session (the form must carry the session's CSRF token).
pub(super) async fn sign_out(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<SignOutForm>,
) -> Result<Response, ApiError> {
    if let Some((secret, session)) = browser_session(&state, &headers).await? {
        if !session
            .csrf_token
            .matches(form.csrf_token.as_deref().unwrap_or_default())
        {
            return Err(csrf_error());
        }
        state
            .store
            .delete_session(BrowserSecret::from_presented(&secret).hash())
            .await?;
    }
    let clear = format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    Ok(see_other("/app/sign-in", Some(vec![clear])))
}

/// 403 for an unsafe request from a cookie session without its CSRF token.
pub(super) fn csrf_error() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "this request needs the session's CSRF token (X-CSRF-Token header or csrf_token field)",
    )
}

fn sign_in_page(
    status: StatusCode,
    link: Option<&str>,
    error: Option<&str>,
    headers: &HeaderMap,
) -> Response {
    let csrf = BrowserSecret::generate();
    let error = error
        .map(|message| {
            format!(
                "<div class=\"Banner Banner--critical\" role=\"alert\">{}</div>",
                html_attribute(message)
            )
        })
        .unwrap_or_default();
    let fields = match link {
        Some(link) => format!(
            "<input type=\"hidden\" name=\"link\" value=\"{}\">\n<p>Use your one-time link to sign in on this browser.</p>",
            html_attribute(link)
        ),
        None => "<label class=\"Field\" for=\"api_key\">API key</label>\n<input class=\"TextField\" id=\"api_key\" name=\"api_key\" type=\"password\" autocomplete=\"off\" required placeholder=\"onk_…\">\n<p class=\"Subdued\">Or run <code>ordernimbus tenants sign-in-link --tenant ID</code> for a one-time link.</p>".to_owned(),
    };
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>Sign in · OrderNimbus</title><link rel=\"stylesheet\" href=\"/app/assets/app.css\"></head>\n<body class=\"SignIn\"><main class=\"Card SignIn-card\"><h1 class=\"Heading\">Sign in to OrderNimbus</h1>\n{error}<form method=\"post\" action=\"/app/sign-in\">\n<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">\n{fields}\n<button class=\"Button Button--primary\" type=\"submit\">Sign in</button></form></main></body></html>\n",
        csrf.expose()
    );
    let mut response = (status, Html(html)).into_response();
    let cookie = format!(
        "{SIGN_IN_CSRF_COOKIE}={}; Path=/app/sign-in; Max-Age=3600; HttpOnly; SameSite=Strict{}",
        csrf.expose(),
        secure_flag(headers)
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    with_frames(response, STANDALONE_FRAMES)
}
