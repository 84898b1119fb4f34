//! `ReqwestShopify`: the `ShopifyClient` adapter over HTTPS (reqwest with rustls).
//!
//! Follows shopify.dev: "Authorization code grant" and "Exchange a session token for an access
//! token" (`POST https://{shop}/admin/oauth/access_token`), "Refresh an expiring offline access
//! token" (`grant_type=refresh_token`), "GraphQL Admin API rate limits" (cost-based throttle:
//! every GraphQL call goes through [`ReqwestShopify::graphql`], which waits on the shop's leaky
//! bucket, waits out `THROTTLED` whether it comes with HTTP 200 or 429, and retries 5xx answers and
//! network errors with jittered backoff), and "Perform bulk operations with the GraphQL Admin API"
//! (`bulkOperationRunQuery`, `bulkOperation(id:)`, the JSONL result by its signed URL).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use graphql_client::GraphQLQuery;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{
    BulkOperation, BulkStart, BulkStatus, OrdersPage, ResultDownload, ShopInfo, ShopifyClient,
    ShopifyError, SyncedOrder, TokenGrant,
};
use super::graphql::{self, cost};
use super::order::{LineParts, OrderParts};
use super::shop::ShopDomain;
use super::throttle::{Throttle, ThrottleStatus, backoff, throttled_wait};
use super::{API_VERSION, Secret, gid_number};

/// How long to wait for Shopify to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take in all.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of one GraphQL call when Shopify answers `THROTTLED`.
const THROTTLED_ATTEMPTS: u32 = 8;
/// Attempts of one call after 5xx answers or network errors.
const FAILED_ATTEMPTS: u32 = 5;
/// First backoff after a failure; doubled each time up to [`BACKOFF_CAP`], with full jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// Longest backoff.
const BACKOFF_CAP: Duration = Duration::from_secs(8);
/// A download waits this long for the next bytes before giving up (and resuming later).
const DOWNLOAD_READ_TIMEOUT: Duration = Duration::from_secs(60);

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
const OFFLINE_TOKEN: &str = "urn:shopify:params:oauth:token-type:offline-access-token";

/// Calls a shop's OAuth and Admin API endpoints.
pub struct ReqwestShopify {
    http: reqwest::Client,
    /// Bulk results: no overall timeout (a result can take minutes), a read timeout instead; never
    /// sends the access token (the URL is signed).
    downloads: reqwest::Client,
    throttle: Throttle,
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
        let downloads = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(DOWNLOAD_READ_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("OrderNimbus/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                ShopifyError::Protocol(format!("building the HTTP client: {error}"))
            })?;
        Ok(Self {
            http,
            downloads,
            throttle: Throttle::default(),
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

    /// Runs one typed GraphQL operation of requested cost `cost` and decodes its `data`.
    async fn query<Q: GraphQLQuery>(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        variables: Q::Variables,
        cost: u32,
    ) -> Result<Q::ResponseData, ShopifyError> {
        let body = Q::build_query(variables);
        let mut answer = self.graphql(shop, access_token, &body, cost).await?;
        let data = answer
            .get_mut("data")
            .map(Value::take)
            .ok_or_else(|| ShopifyError::Protocol("GraphQL answer without data".into()))?;
        serde_json::from_value(data).map_err(|error| {
            ShopifyError::Protocol(format!(
                "{} answer is not as documented: {error}",
                body.operation_name
            ))
        })
    }

    /// Posts one GraphQL request: waits until the shop's bucket holds `cost` points, waits out
    /// `THROTTLED` (HTTP 200 or 429), retries 5xx answers and network errors with jittered
    /// exponential backoff. A 401 or 403 is `InvalidToken` (the caller refreshes and retries once).
    async fn graphql(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        body: &impl serde::Serialize,
        cost: u32,
    ) -> Result<Value, ShopifyError> {
        let url = format!(
            "{}/admin/api/{API_VERSION}/graphql.json",
            shop.admin_base_url(&self.admin_url_template)
        );
        let (mut throttled, mut failed) = (0, 0);
        loop {
            self.throttle.acquire(shop, f64::from(cost)).await;
            let outcome = self
                .http
                .post(&url)
                .header("X-Shopify-Access-Token", access_token.expose())
                .json(body)
                .send()
                .await;
            let response = match outcome {
                Ok(response) => response,
                Err(error) => {
                    failed += 1;
                    if failed >= FAILED_ATTEMPTS {
                        return Err(unreachable(error));
                    }
                    tracing::warn!(shop = %shop, error = %error.without_url(), failed, "GraphQL call failed; retrying");
                    tokio::time::sleep(jittered(failed)).await;
                    continue;
                }
            };
            let status = response.status().as_u16();
            if status == 401 || status == 403 {
                return Err(ShopifyError::InvalidToken);
            }
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<f64>().ok())
                .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
                .map(|seconds| Duration::from_secs_f64(seconds.min(60.0)));
            let text = match response.bytes().await {
                Ok(text) => text,
                Err(error) => {
                    failed += 1;
                    if failed >= FAILED_ATTEMPTS {
                        return Err(unreachable(error));
                    }
                    tokio::time::sleep(jittered(failed)).await;
                    continue;
                }
            };
            if status >= 500 {
                failed += 1;
                if failed >= FAILED_ATTEMPTS {
                    return Err(ShopifyError::Unreachable(format!("HTTP {status}")));
                }
                tracing::warn!(shop = %shop, status, failed, "GraphQL call failed; retrying");
                tokio::time::sleep(jittered(failed)).await;
                continue;
            }
            let answer: Option<Value> = serde_json::from_slice(&text).ok();
            let throttle_status = answer.as_ref().and_then(ThrottleStatus::from_response);
            if let Some(throttle_status) = throttle_status {
                self.throttle.observe(shop, throttle_status, Instant::now());
            }
            if status == 429 || answer.as_ref().is_some_and(is_throttled) {
                throttled += 1;
                if throttled >= THROTTLED_ATTEMPTS {
                    return Err(ShopifyError::Unreachable(
                        "throttled by Shopify; try again later".into(),
                    ));
                }
                let requested = answer
                    .as_ref()
                    .and_then(|answer| answer.pointer("/extensions/cost/requestedQueryCost"))
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::from(cost));
                let wait =
                    retry_after.unwrap_or_else(|| throttled_wait(requested, throttle_status));
                tracing::info!(shop = %shop, wait_ms = wait.as_millis() as u64, "throttled by Shopify; waiting");
                tokio::time::sleep(wait).await;
                continue;
            }
            let Some(answer) = answer else {
                return Err(ShopifyError::Protocol(format!(
                    "GraphQL answer (HTTP {status}) is not JSON"
                )));
            };
            if status != 200 {
                return Err(ShopifyError::Refused {
                    status,
                    error: answer.to_string().chars().take(500).collect(),
                });
            }
            if let Some(errors) = answer.get("errors").filter(|errors| !errors.is_null()) {
                let denied = errors.as_array().into_iter().flatten().any(|error| {
                    error.pointer("/extensions/code") == Some(&json!("ACCESS_DENIED"))
                });
                if denied {
                    return Err(ShopifyError::Refused {
                        status: 403,
                        error: format!("access denied (missing access scope?): {errors}"),
                    });
                }
                return Err(ShopifyError::Protocol(format!("GraphQL errors: {errors}")));
            }
            return Ok(answer);
        }
    }

    /// The rest of an order's line items past the first page.
    async fn more_line_items(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        order_gid: &str,
        mut after: Option<String>,
        lines: &mut Vec<LineParts>,
    ) -> Result<(), ShopifyError> {
        use graphql::order_line_items::{ResponseData, Variables};
        while let Some(cursor) = after.take() {
            let data: ResponseData = self
                .query::<graphql::OrderLineItems>(
                    shop,
                    access_token,
                    Variables {
                        id: order_gid.to_owned(),
                        after: Some(cursor),
                    },
                    cost::ORDER_LINE_ITEMS,
                )
                .await?;
            let Some(order) = data.order else {
                // The order was deleted meanwhile: keep what was read.
                return Ok(());
            };
            for item in &order.line_items.nodes {
                lines.push(line_parts!(item)?);
            }
            let page = &order.line_items.page_info;
            if page.has_next_page {
                after = page.end_cursor.clone();
            }
        }
        Ok(())
    }
}

/// A GraphQL line item (any generated type with the `SyncedLineItem` fields) as [`LineParts`].
macro_rules! line_parts {
    ($item:expr) => {{
        let item = $item;
        match gid_number(&item.id, "LineItem") {
            None => Err(ShopifyError::Protocol(format!(
                "line item id {} is not a LineItem GID",
                item.id
            ))),
            Some(line_id) => Ok(LineParts {
                line_id: line_id.to_owned(),
                sku: item.sku.clone(),
                variant_id: item
                    .variant
                    .as_ref()
                    .and_then(|variant| gid_number(&variant.id, "ProductVariant"))
                    .map(str::to_owned),
                product_id: item
                    .product
                    .as_ref()
                    .and_then(|product| gid_number(&product.id, "Product"))
                    .map(str::to_owned),
                title: Some(item.title.clone()),
                quantity: item.quantity as f64,
                current_quantity: Some(item.current_quantity as f64),
                refunded: 0.0,
                price: decimal(&item.original_unit_price_set.shop_money.amount),
                discount: decimal(&item.total_discount_set.shop_money.amount),
                gift_card: item.is_gift_card,
            }),
        }
    }};
}
use line_parts;

fn decimal(text: &str) -> f64 {
    text.parse().unwrap_or(0.0)
}

fn jittered(attempt: u32) -> Duration {
    backoff(attempt, BACKOFF_BASE, BACKOFF_CAP, rand::random::<f64>())
}

fn is_throttled(answer: &Value) -> bool {
    answer
        .get("errors")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|error| error.pointer("/extensions/code") == Some(&json!("THROTTLED")))
}

fn graphql_time(text: &str, field: &str) -> Result<DateTime<Utc>, ShopifyError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| ShopifyError::Protocol(format!("{field} \"{text}\" is not an ISO 8601 time")))
}

/// `Content-Range: bytes 100-199/1000` (or `bytes */1000`) → (100, Some(1000)).
fn content_range(value: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = total.trim().parse().ok();
    let start = match range.trim() {
        "*" => None,
        range => Some(range.split_once('-')?.0.trim().parse().ok()?),
    };
    Some((start, total))
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
        let data = self
            .query::<graphql::ShopInfo>(
                shop,
                access_token,
                graphql::shop_info::Variables,
                cost::SHOP_INFO,
            )
            .await?;
        let currency = serde_json::to_value(&data.shop.currency_code)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .ok_or_else(|| ShopifyError::Protocol("shop.currencyCode missing".into()))?;
        Ok(ShopInfo {
            name: data.shop.name,
            iana_timezone: data.shop.iana_timezone,
            currency,
        })
    }

    async fn start_bulk_orders(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        since: Option<DateTime<Utc>>,
    ) -> Result<BulkStart, ShopifyError> {
        use graphql::bulk_orders_run::{BulkOperationUserErrorCode as Code, Variables};
        let data = self
            .query::<graphql::BulkOrdersRun>(
                shop,
                access_token,
                Variables {
                    query: graphql::bulk_orders_query(since),
                },
                cost::BULK_ORDERS_RUN,
            )
            .await?;
        let payload = data
            .bulk_operation_run_query
            .ok_or_else(|| ShopifyError::Protocol("bulkOperationRunQuery answered null".into()))?;
        if let Some(error) = payload.user_errors.first() {
            let message = error.message.clone();
            return Ok(match &error.code {
                Some(Code::OPERATION_IN_PROGRESS | Code::LIMIT_REACHED) => BulkStart::Busy(message),
                _ => BulkStart::Refused(message),
            });
        }
        let operation = payload.bulk_operation.ok_or_else(|| {
            ShopifyError::Protocol(
                "bulkOperationRunQuery gave neither an operation nor errors".into(),
            )
        })?;
        Ok(BulkStart::Started { id: operation.id })
    }

    async fn bulk_operation(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        id: &str,
    ) -> Result<Option<BulkOperation>, ShopifyError> {
        use graphql::bulk_operation_by_id::{BulkOperationStatus as Status, Variables};
        let data = self
            .query::<graphql::BulkOperationById>(
                shop,
                access_token,
                Variables { id: id.to_owned() },
                cost::BULK_OPERATION,
            )
            .await?;
        let Some(operation) = data.bulk_operation else {
            return Ok(None);
        };
        let status = match operation.status {
            Status::CREATED => BulkStatus::Created,
            Status::RUNNING => BulkStatus::Running,
            Status::COMPLETED => BulkStatus::Completed,
            Status::FAILED => BulkStatus::Failed,
            Status::CANCELING => BulkStatus::Canceling,
            Status::CANCELED => BulkStatus::Canceled,
            Status::EXPIRED => BulkStatus::Expired,
            Status::Other(other) => BulkStatus::Other(other),
        };
        let error_code = operation.error_code.map(|code| {
            serde_json::to_value(&code)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default()
        });
        let number = |text: &str, field: &str| {
            text.parse::<u64>().map_err(|_| {
                ShopifyError::Protocol(format!("bulkOperation.{field} \"{text}\" is not a count"))
            })
        };
        Ok(Some(BulkOperation {
            id: operation.id,
            status,
            error_code,
            object_count: number(&operation.object_count, "objectCount")?,
            file_size: operation
                .file_size
                .as_deref()
                .map(|size| number(size, "fileSize"))
                .transpose()?,
            url: operation.url,
            partial_data_url: operation.partial_data_url,
        }))
    }

    async fn download(&self, url: &str, from: u64) -> Result<ResultDownload, ShopifyError> {
        let mut request = self.downloads.get(url);
        if from > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={from}-"));
        }
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let range = header(reqwest::header::CONTENT_RANGE)
            .as_deref()
            .and_then(content_range);
        let (offset, total) = match status {
            206 => {
                let (start, total) = range.ok_or_else(|| {
                    ShopifyError::Protocol("a partial download without Content-Range".into())
                })?;
                let start = start.ok_or_else(|| {
                    ShopifyError::Protocol("a partial download without a byte range".into())
                })?;
                (start, total)
            }
            200 => (0, response.content_length()),
            // Asked from the end of the file: nothing left to read.
            416 => {
                let total = range.and_then(|(_, total)| total);
                if total.is_some_and(|total| total == from) {
                    return Ok(ResultDownload {
                        offset: from,
                        total,
                        body: Box::pin(futures_util::stream::empty()),
                    });
                }
                return Err(ShopifyError::Protocol(format!(
                    "the result is not {from} bytes or more long"
                )));
            }
            // Signed storage URLs answer 400, 403, 404 or 410 once expired.
            400 | 403 | 404 | 410 => return Err(ShopifyError::ResultExpired(status)),
            status if status >= 500 || status == 429 => {
                return Err(ShopifyError::Unreachable(format!(
                    "download: HTTP {status}"
                )));
            }
            status => {
                return Err(ShopifyError::Refused {
                    status,
                    error: "the bulk result download was refused".into(),
                });
            }
        };
        Ok(ResultDownload {
            offset,
            total,
            body: Box::pin(response.bytes_stream().map_err(unreachable)),
        })
    }

    async fn orders_updated_since(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        since: DateTime<Utc>,
        after: Option<&str>,
    ) -> Result<OrdersPage, ShopifyError> {
        use graphql::orders_updated_since::Variables;
        let data = self
            .query::<graphql::OrdersUpdatedSince>(
                shop,
                access_token,
                Variables {
                    query: graphql::search_time("updated_at", since),
                    after: after.map(str::to_owned),
                },
                cost::ORDERS_UPDATED_SINCE,
            )
            .await?;
        let mut orders = Vec::with_capacity(data.orders.nodes.len());
        for node in data.orders.nodes {
            let order_id = gid_number(&node.id, "Order")
                .ok_or_else(|| {
                    ShopifyError::Protocol(format!("order id {} is not an Order GID", node.id))
                })?
                .to_owned();
            let mut lines = Vec::with_capacity(node.line_items.nodes.len());
            for item in &node.line_items.nodes {
                lines.push(line_parts!(item)?);
            }
            let page = &node.line_items.page_info;
            if page.has_next_page {
                self.more_line_items(
                    shop,
                    access_token,
                    &node.id,
                    page.end_cursor.clone(),
                    &mut lines,
                )
                .await?;
            }
            let location_id = node
                .retail_location
                .as_ref()
                .and_then(|location| gid_number(&location.id, "Location"))
                .map(str::to_owned);
            orders.push(SyncedOrder {
                parts: OrderParts {
                    order_id,
                    updated_at: graphql_time(&node.updated_at, "updatedAt")?,
                    sold_at: graphql_time(&node.processed_at, "processedAt")?,
                    void: node.test || node.cancelled_at.is_some(),
                    location_id,
                    lines,
                },
                // Refund line items only matter for lines without currentQuantity, which this
                // query always reads.
                refunded: false,
            });
        }
        let page = data.orders.page_info;
        Ok(OrdersPage {
            orders,
            next: page.has_next_page.then_some(page.end_cursor).flatten(),
        })
    }

    async fn order_refunds(
        &self,
        shop: &ShopDomain,
        access_token: &Secret,
        order_id: &str,
    ) -> Result<HashMap<String, f64>, ShopifyError> {
        use graphql::order_refunds::Variables;
        let data = self
            .query::<graphql::OrderRefunds>(
                shop,
                access_token,
                Variables {
                    id: format!("gid://shopify/Order/{order_id}"),
                },
                cost::ORDER_REFUNDS,
            )
            .await?;
        let mut refunded = HashMap::new();
        for refund in data.order.into_iter().flat_map(|order| order.refunds) {
            for item in refund.refund_line_items.nodes {
                if let Some(line_id) = gid_number(&item.line_item.id, "LineItem") {
                    *refunded.entry(line_id.to_owned()).or_insert(0.0) += item.quantity as f64;
                }
            }
        }
        Ok(refunded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_give_start_and_total() {
        assert_eq!(
            content_range("bytes 100-199/1000"),
            Some((Some(100), Some(1000)))
        );
        assert_eq!(content_range("bytes */1000"), Some((None, Some(1000))));
        assert_eq!(content_range("bytes 0-9/*"), Some((Some(0), None)));
        assert_eq!(content_range("items 1-2/3"), None);
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
