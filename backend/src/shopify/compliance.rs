//! The answers to Shopify's compliance requests: what is held about a customer (the raw order
//! deliveries that name them or their orders) for `customers/data_request`, and the erasure of their
//! personal data from those deliveries for `customers/redact`.

use chrono::Utc;
use serde_json::{Value, json};

use super::id_text;

use super::shop::ShopDomain;
use crate::domain::{DeliveryFilter, DeliveryRecord};
use crate::store::{Store, StoreError};

/// What OrderNimbus holds about a customer, stated in every export.
const HELD: &str = "OrderNimbus keeps Shopify's order webhooks as delivered (they may carry the \
customer's contact details) until the customer is redacted, and daily units and revenue per SKU and \
location, which do not identify a customer. The deliveries below are everything held about this \
customer's orders.";

/// Order fields that identify a person; a redaction removes them from stored deliveries.
const PERSONAL_FIELDS: &[&str] = &[
    "customer",
    "email",
    "contact_email",
    "phone",
    "billing_address",
    "shipping_address",
    "browser_ip",
    "client_details",
    "note",
    "note_attributes",
    "customer_locale",
    "landing_site",
    "referring_site",
];

/// The shop's stored order and refund deliveries about `customer_id` or one of `orders`, with
/// their parsed payloads.
async fn deliveries_about(
    store: &dyn Store,
    shop: &ShopDomain,
    customer_id: &str,
    orders: &[String],
) -> Result<Vec<(DeliveryRecord, Value)>, StoreError> {
    let filter = DeliveryFilter {
        shop: Some(shop.to_string()),
        limit: u32::MAX,
        ..DeliveryFilter::default()
    };
    let mut found = Vec::new();
    for summary in store.deliveries(&filter).await? {
        if !(summary.topic.starts_with("orders/") || summary.topic == "refunds/create") {
            continue;
        }
        let Some(delivery) = store.delivery(&summary.webhook_id).await? else {
            continue;
        };
        let Ok(payload) = serde_json::from_slice::<Value>(&delivery.body) else {
            continue;
        };
        let customer = id_text(payload.pointer("/customer/id"));
        let order = id_text(payload.get("order_id")).or_else(|| id_text(payload.get("id")));
        let about = customer.as_deref() == Some(customer_id)
            || order.is_some_and(|order| orders.contains(&order));
        if about {
            found.push((delivery, payload));
        }
    }
    Ok(found)
}

/// Removes the customer's personal data from the stored deliveries about them or their orders;
/// returns how many deliveries were rewritten. (The rewritten body no longer matches its HMAC; it
/// was verified when it arrived.)
///
/// # Errors
/// Store failures.
pub async fn redact_deliveries(
    store: &dyn Store,
    shop: &ShopDomain,
    customer_id: &str,
    orders: &[String],
) -> Result<u64, StoreError> {
    let mut rewritten = 0;
    for (delivery, mut payload) in deliveries_about(store, shop, customer_id, orders).await? {
        if let Some(object) = payload.as_object_mut() {
            let before = object.len();
            for field in PERSONAL_FIELDS {
                object.remove(*field);
            }
            if object.len() == before {
                continue;
            }
        }
        let body = serde_json::to_vec(&payload).map_err(StoreError::unavailable)?;
        if store
            .replace_delivery_body(&delivery.webhook_id, &body)
            .await?
        {
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// The JSON export answering a shop's `customers/data_request`s (all of them, or the one with
/// `request_id`): each request with the stored deliveries about the customer or their orders.
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
    let mut answered = Vec::new();
    for request in requests {
        let held: Vec<Value> =
            deliveries_about(store, shop, &request.customer_id, &request.orders_requested)
                .await?
                .into_iter()
                .map(|(delivery, payload)| {
                    json!({
                        "webhook_id": delivery.webhook_id,
                        "topic": delivery.topic,
                        "received_at": delivery.received_at,
                        "payload": payload,
                    })
                })
                .collect();
        answered.push(json!({
            "data_request_id": request.request_id,
            "customer_id": request.customer_id,
            "orders_requested": request.orders_requested,
            "received_at": request.received_at,
            "data_held": { "statement": HELD, "order_deliveries": held },
        }));
    }
    Ok(json!({
        "shop": shop.as_str(),
        "generated_at": Utc::now(),
        "requests": answered,
    }))
}
