//! The GraphQL Admin API endpoint: access-token check, version fall-forward, cost throttling.

pub mod cost;
pub mod demand;
pub mod orders;
pub mod schema;
pub mod seed;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::state::{Shared, TokenKind};
use cost::{CostModel, MAX_QUERY_COST};
use schema::{AdminSchema, RequestContext};

/// The schema plus the cost model derived from it.
pub(crate) struct Admin {
    pub schema: AdminSchema,
    pub cost: CostModel,
    pub shape: crate::bulk::Shape,
}

impl Admin {
    pub fn new() -> Self {
        let schema = schema::build();
        let sdl = schema.sdl();
        let cost = CostModel::from_sdl(&sdl);
        let shape = crate::bulk::Shape::from_sdl(&sdl);
        Self {
            schema,
            cost,
            shape,
        }
    }
}

/// The body Shopify answers with for a missing, unknown, expired or revoked access token.
pub const INVALID_TOKEN_BODY: &str =
    "[API] Invalid API key or access token (unrecognized login or wrong password)";

/// Which version serves a request for `requested`: supported versions and `unstable` as asked, newer
/// well-formed versions as the latest, older ones fall forward to the oldest supported version
/// (<https://shopify.dev/docs/api/usage/versioning>); malformed ones are not found.
pub fn served_version(requested: &str, supported: &[String]) -> Option<String> {
    if requested == "unstable" || supported.iter().any(|version| version == requested) {
        return Some(requested.to_owned());
    }
    let well_formed = requested.len() == 7
        && requested.as_bytes()[4] == b'-'
        && requested[..4].bytes().all(|byte| byte.is_ascii_digit())
        && matches!(&requested[5..], "01" | "04" | "07" | "10");
    if !well_formed {
        return None;
    }
    let oldest = supported.first()?;
    let newest = supported.last()?;
    if requested < oldest.as_str() {
        Some(oldest.clone())
    } else if requested > newest.as_str() {
        Some(newest.clone())
    } else {
        Some(oldest.clone())
    }
}

/// `POST /shops/{shop}/admin/api/{version}/graphql.json`: the GraphQL Admin API.
///
/// Follows <https://shopify.dev/docs/api/admin-graphql> (endpoint and `X-Shopify-Access-Token`),
/// <https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits> (cost, bucket, `THROTTLED`,
/// `MAX_COST_EXCEEDED`) and <https://shopify.dev/docs/api/usage/versioning> (fall-forward).
pub(crate) async fn graphql(
    State(shared): State<Arc<Shared>>,
    Path((shop, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (delay, failure, throttled) = {
        let mut state = shared.lock();
        let failure = (!state.faults.graphql_failures.is_empty())
            .then(|| state.faults.graphql_failures.remove(0));
        let throttled = (failure.is_none() && !state.faults.graphql_throttles.is_empty())
            .then(|| state.faults.graphql_throttles.remove(0));
        (state.faults.graphql_delay, failure, throttled)
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
    let now = shared.clock.now();
    let prepared = {
        let state = shared.lock();
        let Some(record) = state.shops.get(&shop) else {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"errors": "Not Found"})),
            )
                .into_response();
        };
        let Some(served) = served_version(&version, &state.config.supported_api_versions) else {
            return (
                StatusCode::NOT_FOUND,
                axum::Json(json!({"errors": "Not Found"})),
            )
                .into_response();
        };
        let presented = headers
            .get("x-shopify-access-token")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let token = state.tokens.iter().find(|token| {
            token.token == presented
                && token.shop == shop
                && token.kind != TokenKind::Refresh
                && token.is_live(now)
        });
        let Some(token) = token else {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"errors": INVALID_TOKEN_BODY})),
            )
                .into_response();
        };
        let context = RequestContext {
            seed: record.seed.clone(),
            data: Arc::clone(&record.data),
            scopes: token.scopes.clone(),
            subscriptions: record.webhook_subscriptions.clone(),
            now,
            shared: Arc::clone(&shared),
            api_version: served.clone(),
            bulk: None,
        };
        (context, served)
    };
    let (context, served) = prepared;
    let mut response = match throttled {
        Some(status) => throttled_response(&shared, &shop, now, status),
        None => {
            let response = run(&shared, &shop, context, &headers, &body).await;
            // Bulk queries accepted by this request start once it is answered.
            crate::bulk::start_pending(&shared);
            response.into_response()
        }
    };
    if let Ok(value) = HeaderValue::from_str(&served) {
        response
            .headers_mut()
            .insert("x-shopify-api-version", value);
    }
    response
}

/// Parses the request, charges the bucket, executes and reports the cost.
async fn run(
    shared: &Arc<Shared>,
    shop: &str,
    context: RequestContext,
    headers: &HeaderMap,
    body: &[u8],
) -> axum::Json<Value> {
    let is_graphql_body = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/graphql"));
    let (query, variables, operation_name) = if is_graphql_body {
        (String::from_utf8_lossy(body).into_owned(), json!({}), None)
    } else {
        let Ok(request) = serde_json::from_slice::<Value>(body) else {
            return axum::Json(json!({"errors": [{"message": "Invalid JSON in request body"}]}));
        };
        (
            request
                .get("query")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            request
                .get("variables")
                .filter(|value| value.is_object())
                .cloned()
                .unwrap_or_else(|| json!({})),
            request
                .get("operationName")
                .and_then(Value::as_str)
                .map(str::to_owned),
        )
    };
    let document = match async_graphql::parser::parse_query(&query) {
        Ok(document) => document,
        Err(error) => return axum::Json(json!({"errors": [{"message": error.to_string()}]})),
    };
    let requested =
        match shared
            .admin
            .cost
            .requested(&document, operation_name.as_deref(), &variables)
        {
            Ok((requested, _)) => requested,
            Err(error) => return axum::Json(json!({"errors": [{"message": error.to_string()}]})),
        };
    let now = context.now;
    if requested > MAX_QUERY_COST {
        let status = throttle_status(shared, shop, now, 0.0);
        return axum::Json(json!({
            "errors": [{
                "message": format!(
                    "Query cost is {requested}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\nSee https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\ncost of a query is calculated.\n\nTo query larger amounts of data with fewer limits, bulk operations should be used instead.\nSee https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n"
                ),
                "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST, "documentation": "https://shopify.dev/api/usage/rate-limits"},
            }],
            "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": null, "throttleStatus": status}},
        }));
    }
    // Before execution the bucket must hold the requested cost; it is charged in full, then refunded
    // the difference once the actual cost is known.
    let admitted = {
        let mut state = shared.lock();
        match state.shops.get_mut(shop) {
            Some(record) => {
                record.bucket.refill(now);
                if record.bucket.available >= requested as f64 {
                    record.bucket.available -= requested as f64;
                    true
                } else {
                    false
                }
            }
            None => false,
        }
    };
    if !admitted {
        let status = throttle_status(shared, shop, now, 0.0);
        return axum::Json(json!({
            "errors": [{
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
            }],
            "extensions": {"cost": {"requestedQueryCost": requested, "actualQueryCost": null, "throttleStatus": status}},
        }));
    }
    let mut request = async_graphql::Request::new(query).data(context);
    if let Some(name) = &operation_name {
        request = request.operation_name(name);
    }
    request = request.variables(async_graphql::Variables::from_json(variables.clone()));
    let response = shared.admin.schema.execute(request).await;
    let mut body = serde_json::to_value(&response).unwrap_or_else(|_| json!({}));
    let data = body.get("data").cloned().unwrap_or(Value::Null);
    let actual = if response.errors.is_empty() || !data.is_null() {
        shared
            .admin
            .cost
            .actual(&document, operation_name.as_deref(), &variables, &data)
            .min(requested)
    } else {
        0
    };
    let refund = (requested - actual) as f64;
    let status = throttle_status(shared, shop, now, refund);
    if let Value::Object(object) = &mut body {
        object.insert(
            "extensions".into(),
            json!({"cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}}),
        );
        if object
            .get("errors")
            .is_some_and(|errors| errors.as_array().is_some_and(Vec::is_empty))
        {
            object.remove("errors");
        }
    }
    axum::Json(body)
}

/// A `THROTTLED` answer armed by [`crate::Faults::throttle_graphql`], with HTTP 200 or 429 as Shopify
/// may send either.
fn throttled_response(
    shared: &Shared,
    shop: &str,
    now: chrono::DateTime<chrono::Utc>,
    status: u16,
) -> Response {
    let throttle = throttle_status(shared, shop, now, 0.0);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    let mut response = (
        status,
        axum::Json(json!({
            "errors": [{
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
            }],
            "extensions": {"cost": {"requestedQueryCost": null, "actualQueryCost": null, "throttleStatus": throttle}},
        })),
    )
        .into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    response
}

/// Refunds `refund` points and reports `throttleStatus`.
fn throttle_status(
    shared: &Shared,
    shop: &str,
    now: chrono::DateTime<chrono::Utc>,
    refund: f64,
) -> Value {
    let mut state = shared.lock();
    let Some(record) = state.shops.get_mut(shop) else {
        return Value::Null;
    };
    record.bucket.refill(now);
    record.bucket.available =
        (record.bucket.available + refund).min(record.bucket.limits.maximum_available);
    json!({
        "maximumAvailable": record.bucket.limits.maximum_available,
        "currentlyAvailable": record.bucket.available.floor() as i64,
        "restoreRate": record.bucket.limits.restore_rate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(requested: &str, expected: Option<&str>) {
        let supported = ["2026-01", "2026-04", "2026-07", "2026-10"].map(str::to_owned);
        assert_eq!(
            served_version(requested, &supported).as_deref(),
            expected,
            "{requested}"
        );
    }

    #[test]
    fn a_supported_version_is_served_as_asked() {
        check("2026-04", Some("2026-04"));
    }

    #[test]
    fn a_retired_version_falls_forward_to_the_oldest_supported() {
        check("2024-07", Some("2026-01"));
    }

    #[test]
    fn unstable_is_served_as_asked() {
        check("unstable", Some("unstable"));
    }

    #[test]
    fn a_malformed_version_is_not_found() {
        check("2026-02", None);
        check("latest", None);
    }
}
