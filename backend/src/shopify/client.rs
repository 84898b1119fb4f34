//! The `ShopifyClient` port: the calls OrderNimbus makes to a shop's OAuth and Admin API endpoints.
//! The adapter is [`super::admin_api::ReqwestShopify`]; tests run it against the Shopify simulator.

use std::time::Duration;

use async_trait::async_trait;

use super::Secret;
use super::shop::ShopDomain;

/// Tokens Shopify granted: an access token and, for an expiring offline token, its refresh token.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The access token (`X-Shopify-Access-Token`).
    pub access_token: Secret,
    /// Scopes granted, as Shopify listed them.
    pub scopes: Vec<String>,
    /// Life of the access token; `None` for a non-expiring token.
    pub expires_in: Option<Duration>,
    /// The refresh token of an expiring offline token.
    pub refresh_token: Option<Secret>,
    /// Life of the refresh token.
    pub refresh_token_expires_in: Option<Duration>,
}

/// What a shop says about itself (GraphQL `shop`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopInfo {
    /// The shop's name.
    pub name: String,
    /// IANA time zone (`ianaTimezone`), in which its sales days are counted.
    pub iana_timezone: String,
    /// Currency code.
    pub currency: String,
}

/// Failures of calls to Shopify.
#[derive(Debug, thiserror::Error)]
pub enum ShopifyError {
    /// Shopify could not be reached or failed (network error, timeout, 5xx): try again later.
    #[error("Shopify could not be reached: {0}")]
    Unreachable(String),
    /// Shopify refused the request (a 4xx from the OAuth endpoint, such as `invalid_subject_token`).
    #[error("Shopify refused the request (HTTP {status}): {error}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Shopify's error code or message.
        error: String,
    },
    /// The Admin API refused the access token (revoked, expired or uninstalled).
    #[error("Shopify refused the access token")]
    InvalidToken,
    /// Shopify answered something that does not follow its documented shape.
    #[error("unexpected answer from Shopify: {0}")]
    Protocol(String),
}

/// The calls OrderNimbus makes to Shopify for a shop.
#[async_trait]
pub trait ShopifyClient: Send + Sync + 'static {
    /// Authorization-code grant: trades the callback's `code` for an expiring offline token.
    async fn exchange_code(
        &self,
        shop: &ShopDomain,
        code: &str,
    ) -> Result<TokenGrant, ShopifyError>;

    /// Token exchange: trades an App Bridge session token for an expiring offline token.
    async fn exchange_session_token(
        &self,
        shop: &ShopDomain,
        session_token: &str,
    ) -> Result<TokenGrant, ShopifyError>;

    /// Trades a refresh token for a new token pair (the old refresh token stops working).
    async fn refresh_token(
        &self,
        shop: &ShopDomain,
        refresh_token: &Secret,
    ) -> Result<TokenGrant, ShopifyError>;

    /// Reads the shop's name, time zone and currency through the GraphQL Admin API.
    async fn shop_info(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
    ) -> Result<ShopInfo, ShopifyError>;
}
