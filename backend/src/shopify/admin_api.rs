//! `ReqwestShopify`: the `ShopifyClient` adapter over HTTPS (reqwest with rustls).
//!
//! Follows shopify.dev: "Authorization code grant" and "Exchange a session token for an access
//! token" (`POST https://{shop}/admin/oauth/access_token`), "Refresh an expiring offline access
//! token" (`grant_type=refresh_token`), and "GraphQL Admin API rate limits" (cost-based throttle).

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{ShopInfo, ShopifyClient, ShopifyError, TokenGrant};
use super::shop::ShopDomain;
use super::{API_VERSION, Secret};

/// How long to wait for Shopify to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of one GraphQL call when Shopify answers `THROTTLED`.
const THROTTLED_ATTEMPTS: u32 = 4;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const OFFLINE_TOKEN: &str = "urn:shopify:params:oauth:token-type:offline-access-token";

/// Calls a shop's OAuth and Admin API endpoints.
pub struct ReqwestShopify {
    http: reqwest::Client,
    api_key: String,
    api_secret: Secret,
    admin_url_template: String,
}

impl std::fmt::Debug for ReqwestShopify {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ReqwestShopify")
            .field("admin_url_template", &self.admin_url_template)
            .finish_non_exhaustive()
    }
}

impl ReqwestShopify {
    /// A client for the app `api_key`; each shop's Admin lives at `admin_url_template` with
    /// `{shop}` replaced (`https://{shop}` in production).
    ///
    /// # Errors
    /// When the TLS stack cannot be initialised.
    pub fn new(
        api_key: &str,
        api_secret: Secret,
        admin_url_template: &str,
    ) -> Result<Self, ShopifyError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("OrderNimbus/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                ShopifyError::Protocol(format!("building the HTTP client: {error}"))
            })?;
        Ok(Self {
            http,
            api_key: api_key.to_owned(),
            api_secret,
            admin_url_template: admin_url_template.to_owned(),
        })
    }

    async fn token_request(
        &self,
        shop: &ShopDomain,
        mut body: Value,
    ) -> Result<TokenGrant, ShopifyError> {
        body["client_id"] = json!(self.api_key);
        body["client_secret"] = json!(self.api_secret.expose());
        let url = format!(
            "{}/admin/oauth/access_token",
            shop.admin_base_url(&self.admin_url_template)
        );
        let response = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let text = response.text().await.map_err(unreachable)?;
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(ShopifyError::Unreachable(format!("HTTP {status}")));
        }
        if !status.is_success() {
            return Err(ShopifyError::Refused {
                status: status.as_u16(),
                error: oauth_error(&text),
            });
        }
        let grant: GrantBody = serde_json::from_str(&text).map_err(|error| {
            ShopifyError::Protocol(format!(
                "access token response is not as documented: {error}"
            ))
        })?;
        Ok(TokenGrant {
            access_token: Secret::new(grant.access_token),
            scopes: grant
                .scope
                .split(',')
                .map(str::trim)
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect(),
            expires_in: grant.expires_in.map(Duration::from_secs),
            refresh_token: grant.refresh_token.map(Secret::new),
            refresh_token_expires_in: grant.refresh_token_expires_in.map(Duration::from_secs),
        })
    }

    /// Runs one GraphQL query, waiting out `THROTTLED` answers as the throttle status says.
    async fn graphql(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        query: &str,
    ) -> Result<Value, ShopifyError> {
        let url = format!(
            "{}/admin/api/{API_VERSION}/graphql.json",
            shop.admin_base_url(&self.admin_url_template)
        );
        for attempt in 1..=THROTTLED_ATTEMPTS {
            let response = self
                .http
                .post(&url)
                .header("X-Shopify-Access-Token", access_token.expose())
                .json(&json!({ "query": query }))
                .send()
                .await
                .map_err(unreachable)?;
            let status = response.status().as_u16();
            if status == 401 || status == 403 {
                return Err(ShopifyError::InvalidToken);
            }
            if status >= 500 {
                return Err(ShopifyError::Unreachable(format!("HTTP {status}")));
            }
            let body: Value = response.json().await.map_err(|error| {
                ShopifyError::Protocol(format!("GraphQL response is not JSON: {error}"))
            })?;
            if let Some(wait) = throttled_wait(&body) {
                if attempt == THROTTLED_ATTEMPTS {
                    break;
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if status != 200 {
                return Err(ShopifyError::Refused {
                    status,
                    error: body.to_string(),
                });
            }
            if let Some(errors) = body.get("errors") {
                return Err(ShopifyError::Protocol(format!("GraphQL errors: {errors}")));
            }
            return Ok(body);
        }
        Err(ShopifyError::Unreachable(
            "throttled by Shopify; try again later".into(),
        ))
    }
}

#[derive(Deserialize)]
struct GrantBody {
    access_token: String,
    #[serde(default)]
    scope: String,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
    refresh_token_expires_in: Option<u64>,
}

fn unreachable(error: reqwest::Error) -> ShopifyError {
    // The URL can carry nothing secret (tokens travel in bodies and headers), but keep it out anyway.
    ShopifyError::Unreachable(error.without_url().to_string())
}

/// Shopify's OAuth errors come as `{"error": "...", "error_description": "..."}` or as
/// `{"errors": "..."}`; keep the code and description, never the request.
fn oauth_error(text: &str) -> String {
    let Ok(body) = serde_json::from_str::<Value>(text) else {
        return text.chars().take(200).collect();
    };
    let code = body
        .get("error")
        .or_else(|| body.get("errors"))
        .map(|value| {
            value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned)
        })
        .unwrap_or_default();
    match body.get("error_description").and_then(Value::as_str) {
        Some(description) => format!("{code}: {description}"),
        None => code,
    }
}

/// When a GraphQL answer says `THROTTLED`, how long until the bucket holds the requested cost.
fn throttled_wait(body: &Value) -> Option<Duration> {
    let throttled = body
        .get("errors")?
        .as_array()?
        .iter()
        .any(|error| error.pointer("/extensions/code") == Some(&json!("THROTTLED")));
    if !throttled {
        return None;
    }
    let cost = body.pointer("/extensions/cost");
    let requested = cost
        .and_then(|cost| cost.get("requestedQueryCost"))
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    let status = cost.and_then(|cost| cost.get("throttleStatus"));
    let available = status
        .and_then(|status| status.get("currentlyAvailable"))
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let restore = status
        .and_then(|status| status.get("restoreRate"))
        .and_then(Value::as_f64)
        .filter(|rate| *rate > 0.0)
        .unwrap_or(50.0);
    let seconds = ((requested - available).max(0.0) / restore).clamp(0.05, 10.0);
    Some(Duration::from_secs_f64(seconds))
}

#[async_trait]
impl ShopifyClient for ReqwestShopify {
    async fn exchange_code(
        &self,
        shop: &ShopDomain,
        code: &str,
    ) -> Result<TokenGrant, ShopifyError> {
        self.token_request(shop, json!({ "code": code, "expiring": "1" }))
            .await
    }

    async fn exchange_session_token(
        &self,
        shop: &ShopDomain,
        session_token: &str,
    ) -> Result<TokenGrant, ShopifyError> {
        self.token_request(
            shop,
            json!({
                "grant_type": TOKEN_EXCHANGE,
                "subject_token": session_token,
                "subject_token_type": ID_TOKEN,
                "requested_token_type": OFFLINE_TOKEN,
                "expiring": "1",
            }),
        )
        .await
    }

    async fn refresh_token(
        &self,
        shop: &ShopDomain,
        refresh_token: &Secret,
    ) -> Result<TokenGrant, ShopifyError> {
        self.token_request(
            shop,
            json!({ "grant_type": "refresh_token", "refresh_token": refresh_token.expose() }),
        )
        .await
    }

    async fn shop_info(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
    ) -> Result<ShopInfo, ShopifyError> {
        let body = self
            .graphql(
                shop,
                access_token,
                "query ShopInfo { shop { name ianaTimezone currencyCode } }",
            )
            .await?;
        let field = |name: &str| {
            body.pointer(&format!("/data/shop/{name}"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| ShopifyError::Protocol(format!("shop.{name} missing")))
        };
        Ok(ShopInfo {
            name: field("name")?,
            iana_timezone: field("ianaTimezone")?,
            currency: field("currencyCode")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_answers_wait_until_the_bucket_holds_the_requested_cost() {
        let body = json!({
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {"requestedQueryCost": 152, "throttleStatus":
                {"maximumAvailable": 2000.0, "currentlyAvailable": 52, "restoreRate": 100.0}}}
        });
        assert_eq!(throttled_wait(&body), Some(Duration::from_secs(1)));
        assert_eq!(throttled_wait(&json!({"data": {"shop": {}}})), None);
    }

    #[test]
    fn oauth_errors_keep_code_and_description() {
        assert_eq!(
            oauth_error(r#"{"error":"invalid_subject_token","error_description":"expired"}"#),
            "invalid_subject_token: expired"
        );
        assert_eq!(oauth_error(r#"{"errors":"bad"}"#), "bad");
        assert_eq!(oauth_error("<html>"), "<html>");
    }
}
