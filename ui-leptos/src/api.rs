//! The typed client of the JSON API under `/api/v1/`: the response shapes the UI reads, and
//! `Api`, which calls the server in process while rendering and with `fetch` in the browser.

use leptos::prelude::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// An API call that failed: the HTTP status (0 when the server was not reached) and its message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiFailure {
    /// HTTP status.
    pub status: u16,
    /// The error's `code`, when the server sent one.
    pub code: String,
    /// What went wrong, in the server's words.
    pub message: String,
}

/// What every API call returns.
pub type ApiResult<T> = Result<T, ApiFailure>;

/// One forecast day with its 80 % and 95 % bands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastPoint {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Expected units.
    pub mean: f64,
    /// 80 % band.
    pub lo80: f64,
    /// 80 % band.
    pub hi80: f64,
    /// 95 % band.
    pub lo95: f64,
    /// 95 % band.
    pub hi95: f64,
}

/// Backtest accuracy of a model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Backtest {
    /// Root mean squared scaled error.
    pub rmsse: Option<f64>,
    /// Mean error over mean actual (positive: over-forecasting).
    pub bias: Option<f64>,
    /// Share of actuals inside the 80 % band.
    pub coverage80: Option<f64>,
    /// Share of actuals inside the 95 % band.
    pub coverage95: Option<f64>,
    /// Mean absolute scaled error.
    pub mase: Option<f64>,
}

/// The tenant's units and revenue on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayTotal {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Net units.
    pub units: f64,
    /// Net revenue.
    pub revenue: f64,
}

/// The tenant-wide forecast of `GET /api/v1/overview`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantForecast {
    /// When the forecasts were made (RFC 3339).
    pub generated_at: String,
    /// Series forecast.
    pub series: usize,
    /// The total's model.
    pub model: String,
    /// Its backtest.
    pub backtest: Backtest,
    /// Forecast days.
    pub points: Vec<ForecastPoint>,
    /// The 91 days before the forecast.
    pub history: Vec<DayTotal>,
}

/// `GET /api/v1/overview`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// `None` until forecasts exist.
    pub forecast: Option<TenantForecast>,
    /// SKUs at risk of stocking out, soonest first.
    pub at_risk: Vec<ProductRow>,
}

/// One SKU × location of the products table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRow {
    /// SKU.
    pub sku: String,
    /// Location.
    pub location: String,
    /// Product name.
    pub product: Option<String>,
    /// Units sold in the last 28 days.
    pub sales_28: f64,
    /// Forecast units in the next 28 days.
    pub forecast_28: f64,
    /// Change against the 28 days before.
    pub trend: Option<f64>,
    /// Units on hand.
    pub on_hand: Option<f64>,
    /// Days the stock lasts.
    pub days_of_cover: Option<f64>,
    /// Lead time.
    pub lead_time_days: Option<u32>,
    /// Units to order now.
    pub suggested_order: Option<f64>,
    /// Runs short.
    pub at_risk: bool,
}

/// `GET /api/v1/products`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductPage {
    /// Matching rows over all pages.
    pub total: u64,
    /// Rows skipped.
    pub offset: u64,
    /// Page size.
    pub limit: u32,
    /// This page.
    pub rows: Vec<ProductRow>,
}

/// A candidate model's backtest score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    /// Model name.
    pub model: String,
    /// Backtest RMSSE.
    pub rmsse: f64,
    /// Backtest bias.
    pub bias: f64,
}

/// Reorder hint of a stocked SKU × location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReorderHint {
    /// Units on hand.
    pub on_hand: f64,
    /// Lead time in days.
    pub lead_time_days: u32,
    /// Service level.
    pub service_level: f64,
    /// Days the stock lasts.
    pub days_of_cover: Option<f64>,
    /// Expected stock-out day.
    pub expected_stockout_date: Option<String>,
    /// Reorder point.
    pub reorder_point: f64,
    /// Safety stock.
    pub safety_stock: f64,
    /// Units to order now.
    pub suggested_order_quantity: f64,
    /// Runs short.
    pub at_risk: bool,
}

/// `GET /api/v1/forecasts?sku=&location=`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// SKU.
    pub sku: String,
    /// Location.
    pub location: String,
    /// Chosen model.
    pub model: String,
    /// Demand class.
    pub demand_class: Option<String>,
    /// When it was made.
    pub generated_at: String,
    /// Forecast days.
    pub points: Vec<ForecastPoint>,
    /// Backtest of the chosen model.
    pub backtest: Backtest,
    /// Candidates, best first.
    pub candidates: Vec<CandidateScore>,
    /// Present when stock is known.
    pub reorder: Option<ReorderHint>,
}

/// One row of `GET /api/v1/sales`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SalesDay {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// Net units.
    pub units: f64,
    /// Net revenue.
    pub revenue: f64,
}

/// An error in an uploaded file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowError {
    /// Line in the file (header is 1).
    pub line: u64,
    /// Column at fault.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The report of one CSV upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Upload id.
    pub upload_id: String,
    /// Recognised format.
    pub format: Option<String>,
    /// File name.
    pub filename: Option<String>,
    /// running, complete, refused, interrupted.
    pub status: String,
    /// Rows read.
    pub rows_read: u64,
    /// Rows new.
    pub rows_imported: u64,
    /// Rows seen before.
    pub rows_duplicate: u64,
    /// Rows replacing earlier versions.
    pub rows_updated: u64,
    /// Rows refused.
    pub rows_rejected: u64,
    /// First 100 row errors.
    pub errors: Vec<RowError>,
    /// Earliest sale.
    pub first_date: Option<String>,
    /// Latest sale.
    pub last_date: Option<String>,
    /// Started (RFC 3339).
    pub started_at: String,
    /// Finished.
    pub finished_at: Option<String>,
}

/// One webhook delivery of `GET /api/v1/webhooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Webhook id.
    pub webhook_id: String,
    /// Topic.
    pub topic: String,
    /// Received (RFC 3339).
    pub received_at: String,
    /// pending, published, duplicate, dead.
    pub status: String,
    /// Why it is dead.
    pub reason: Option<String>,
    /// Publish attempts.
    pub attempts: u32,
}

/// `GET|PUT /api/v1/settings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// IANA time zone.
    pub timezone: String,
    /// Default lead time.
    pub default_lead_time_days: u32,
    /// Default service level.
    pub service_level: f64,
    /// Days of forecast shown.
    pub horizon_days: u32,
}

/// The stock-levels import report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StockReport {
    /// Rows read.
    pub rows_read: u64,
    /// Rows stored.
    pub rows_imported: u64,
    /// Rows refused.
    pub rows_rejected: u64,
    /// Why.
    pub errors: Vec<RowError>,
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Turns a reply into a value or a failure naming the server's message.
pub fn decode<T: DeserializeOwned>(status: u16, body: &str) -> ApiResult<T> {
    if (200..300).contains(&status) {
        return serde_json::from_str(body).map_err(|error| ApiFailure {
            status,
            code: "unreadable".to_owned(),
            message: format!("the server's answer could not be read: {error}"),
        });
    }
    let error: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let field = |name: &str| {
        error
            .as_ref()
            .and_then(|value| value.get("error"))
            .and_then(|error| error.get(name))
            .and_then(|text| text.as_str())
            .map(str::to_owned)
    };
    Err(ApiFailure {
        status,
        code: field("code").unwrap_or_else(|| "http".to_owned()),
        message: field("message").unwrap_or_else(|| format!("the server answered {status}")),
    })
}

/// The API as the current viewer: captured in a component (synchronously), used in async code.
#[derive(Clone)]
pub struct Api {
    #[cfg(feature = "ssr")]
    server: Option<crate::server::ServerApi>,
    #[cfg(not(feature = "ssr"))]
    mode: crate::context::Mode,
}

impl Api {
    /// The API for the page being rendered or shown.
    pub fn current() -> Self {
        #[cfg(feature = "ssr")]
        {
            Self {
                server: crate::server::request_context().map(|context| context.api),
            }
        }
        #[cfg(not(feature = "ssr"))]
        {
            Self {
                mode: use_context::<crate::PageContext>()
                    .unwrap_or_else(crate::context::page_context)
                    .mode,
            }
        }
    }

    /// Sends one request; `body` is `(content type, text)`. Returns status and body text.
    ///
    /// # Errors
    /// A failure with status 0 when the server could not be reached.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(String, String)>,
    ) -> ApiResult<(u16, String)> {
        #[cfg(feature = "ssr")]
        {
            match &self.server {
                Some(server) => server.call(method, path, body).await,
                None => Err(unreachable_failure("no request to render for")),
            }
        }
        #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
        {
            crate::browser::fetch(&self.mode, method, path, body)
                .await
                .map_err(|message| unreachable_failure(&message))
        }
        #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
        {
            let _ = (method, path, body, &self.mode);
            Err(unreachable_failure("built without ssr or hydrate"))
        }
    }

    /// `GET` a JSON value.
    ///
    /// # Errors
    /// The server's error, or status 0 when it could not be reached.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> ApiResult<T> {
        let (status, body) = self.call("GET", path, None).await?;
        decode(status, &body)
    }

    /// Sends a body and reads a JSON reply.
    ///
    /// # Errors
    /// The server's error, or status 0 when it could not be reached.
    pub async fn send<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: String,
    ) -> ApiResult<T> {
        let (status, text) = self
            .call(method, path, Some((content_type.to_owned(), body)))
            .await?;
        decode(status, &text)
    }
}

fn unreachable_failure(message: &str) -> ApiFailure {
    ApiFailure {
        status: 0,
        code: "unreachable".to_owned(),
        message: format!("the server could not be reached: {message}"),
    }
}

/// Makes a browser future `Send` for `Resource` (the browser is single-threaded; `fetch`
/// futures are not `Send`, and are only ever polled on that one thread).
#[cfg(feature = "hydrate")]
pub fn sendable<F: std::future::Future + 'static>(future: F) -> send_wrapper::SendWrapper<F> {
    send_wrapper::SendWrapper::new(future)
}

/// On the server every future is `Send` already.
#[cfg(not(feature = "hydrate"))]
pub fn sendable<F: std::future::Future + Send + 'static>(future: F) -> F {
    future
}

/// A resource read from the API at the path `path(source())`, refetched when the source changes.
pub fn resource<T, S>(
    source: impl Fn() -> S + Send + Sync + 'static,
    path: impl Fn(S) -> String + Send + Sync + 'static,
) -> Resource<ApiResult<T>>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: PartialEq + Clone + Send + Sync + 'static,
{
    let api = Api::current();
    Resource::new(source, move |key| {
        let api = api.clone();
        let path = path(key);
        sendable(async move { api.get::<T>(&path).await })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("A-1 blue/large&x"), "A-1%20blue%2Flarge%26x");
    }

    #[test]
    fn errors_carry_the_servers_code_and_message() {
        let failure = decode::<Settings>(
            400,
            r#"{"error":{"code":"invalid_field","field":"timezone","message":"bad zone"}}"#,
        )
        .unwrap_err();
        assert_eq!(
            (
                failure.status,
                failure.code.as_str(),
                failure.message.as_str()
            ),
            (400, "invalid_field", "bad zone")
        );
        let failure = decode::<Settings>(502, "<html>").unwrap_err();
        assert_eq!(failure.message, "the server answered 502");
    }
}
