//! The `ShopifyClient` port: the calls OrderNimbus makes to a shop's OAuth and Admin API endpoints.
//! The adapter is [`super::admin_api::ReqwestShopify`]; tests run it against the Shopify simulator.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;

use super::Secret;
use super::order::OrderParts;
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
    /// A bulk operation's result URL no longer serves the file (URLs expire after 7 days).
    #[error("the bulk operation result has expired (HTTP {0})")]
    ResultExpired(u16),
}

/// Status of a bulk operation (`BulkOperationStatus`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkStatus {
    /// Created, not running yet.
    Created,
    /// Running.
    Running,
    /// Completed: `url` holds the result (none when nothing matched).
    Completed,
    /// Failed: see `error_code`.
    Failed,
    /// Being canceled.
    Canceling,
    /// Canceled.
    Canceled,
    /// The result URL expired.
    Expired,
    /// A status this version does not know.
    Other(String),
}

impl BulkStatus {
    /// Whether the operation will change no more.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Created | Self::Running | Self::Canceling)
    }
}

/// A bulk operation as `bulkOperation(id:)` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkOperation {
    /// `gid://shopify/BulkOperation/…`.
    pub id: String,
    /// Its status.
    pub status: BulkStatus,
    /// Why it failed: `ACCESS_DENIED`, `INTERNAL_SERVER_ERROR`, `TIMEOUT`.
    pub error_code: Option<String>,
    /// Objects processed so far.
    pub object_count: u64,
    /// Size of the result file.
    pub file_size: Option<u64>,
    /// The JSONL result of a completed operation.
    pub url: Option<String>,
    /// The partial JSONL result of a failed one.
    pub partial_data_url: Option<String>,
}

/// What `bulkOperationRunQuery` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BulkStart {
    /// The operation was created.
    Started {
        /// Its id.
        id: String,
    },
    /// Another bulk query runs for this app and shop (`OPERATION_IN_PROGRESS`, `LIMIT_REACHED`).
    Busy(String),
    /// Shopify refused the query (`INVALID` and others): the message says why.
    Refused(String),
}

/// A result file being downloaded.
pub struct ResultDownload {
    /// Byte offset of the first byte of `body` in the file (the `Range` asked for, or zero when
    /// the server sent the whole file).
    pub offset: u64,
    /// Size of the whole file, when the server said.
    pub total: Option<u64>,
    /// The bytes, as they arrive.
    pub body: BoxStream<'static, Result<bytes::Bytes, ShopifyError>>,
}

impl std::fmt::Debug for ResultDownload {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ResultDownload")
            .field("offset", &self.offset)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

/// One page of orders updated since a time.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdersPage {
    /// The orders, oldest change first, each with all its line items.
    pub orders: Vec<SyncedOrder>,
    /// The cursor of the next page, if any.
    pub next: Option<String>,
}

/// An order read through GraphQL, reduced to what demand needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncedOrder {
    /// The order.
    pub parts: OrderParts,
    /// Whether it has refunds (whose line items [`ShopifyClient::order_refunds`] reads).
    pub refunded: bool,
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

    /// Starts the orders bulk query (`bulkOperationRunQuery`, `groupObjects: false`) over orders
    /// created at or after `since` (all when `None`).
    async fn start_bulk_orders(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        since: Option<DateTime<Utc>>,
    ) -> Result<BulkStart, ShopifyError>;

    /// Reads a bulk operation (`bulkOperation(id:)`); `None` when Shopify does not know it.
    async fn bulk_operation(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        id: &str,
    ) -> Result<Option<BulkOperation>, ShopifyError>;

    /// Downloads a bulk result from byte `from` on (HTTP `Range`), streaming.
    ///
    /// # Errors
    /// `ResultExpired` when the URL no longer serves the file.
    async fn download(&self, url: &str, from: u64) -> Result<ResultDownload, ShopifyError>;

    /// One page of orders updated at or after `since` (`orders(query:, sortKey: UPDATED_AT)`),
    /// each with all its line items.
    async fn orders_updated_since(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        since: DateTime<Utc>,
        after: Option<&str>,
    ) -> Result<OrdersPage, ShopifyError>;

    /// Units refunded per line item id (digits) over an order's refunds.
    async fn order_refunds(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        order_id: &str,
    ) -> Result<std::collections::HashMap<String, f64>, ShopifyError>;
}
