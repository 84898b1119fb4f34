//! The answers to Shopify's compliance requests that an operator hands over.

use chrono::Utc;
use serde_json::{Value, json};

use super::shop::ShopDomain;
use crate::store::{Store, StoreError};

/// What OrderNimbus holds about a customer, stated in every export.
const HELD: &str = "OrderNimbus stores no customer names, emails, phone numbers or addresses. \
Sales are kept as units and revenue per day, SKU and location, which do not identify a customer.";

/// The JSON export answering a shop's `customers/data_request`s (all of them, or the one with
/// `request_id`).
///
/// # Errors
/// `NotFound` when the shop has no such request; store failures.
pub async fn data_request_export(
    store: &dyn Store,
    shop: &ShopDomain,
    request_id: Option<&str>,
) -> Result<Value, StoreError> {
    let requests: Vec<_> = store
        .data_requests(shop)
        .await?
        .into_iter()
        .filter(|request| request_id.is_none_or(|id| request.request_id == id))
        .collect();
    if let (Some(id), true) = (request_id, requests.is_empty()) {
        return Err(StoreError::NotFound {
            entity: "data request",
            id: id.to_owned(),
        });
    }
    let requests: Vec<Value> = requests
        .into_iter()
        .map(|request| {
            json!({
                "data_request_id": request.request_id,
                "customer_id": request.customer_id,
                "orders_requested": request.orders_requested,
                "received_at": request.received_at,
                "data_held": { "customer_records": [], "statement": HELD },
            })
        })
        .collect();
    Ok(json!({
        "shop": shop.as_str(),
        "generated_at": Utc::now(),
        "requests": requests,
    }))
}
