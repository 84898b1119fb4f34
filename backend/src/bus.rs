//! The event-bus port: `EventBus`, the `Event` published for every stored webhook delivery, and
//! `BusError`. Adapters live in the `webhooks` crate: the local durable bus (one machine) and Amazon
//! EventBridge (the cloud), where an SQS queue targeted by a rule feeds `ordernimbus worker`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `source` of every event OrderNimbus publishes for a webhook delivery.
pub const WEBHOOK_SOURCE: &str = "ordernimbus.webhooks";

/// Largest payload carried inline; a bigger one travels by reference to the delivery log
/// (EventBridge refuses entries over 256 KB).
pub const MAX_INLINE_PAYLOAD_BYTES: usize = 200 * 1024;

/// One stored webhook delivery as published on the bus.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Always [`WEBHOOK_SOURCE`].
    pub source: String,
    /// The webhook topic (`orders/create`), EventBridge's `detail-type`.
    pub detail_type: String,
    /// The delivery.
    pub detail: EventDetail,
}

/// EventBridge's `detail`: who sent what, and the payload or where to fetch it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDetail {
    /// The shop domain.
    pub shop: String,
    /// `X-Shopify-Webhook-Id`: consumers dedupe on it.
    pub webhook_id: String,
    /// `X-Shopify-Event-Id`, shared by the deliveries of one merchant action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `X-Shopify-Triggered-At`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggered_at: Option<DateTime<Utc>>,
    /// `X-Shopify-API-Version`.
    pub api_version: String,
    /// The JSON body, when small enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
    /// Set instead of `payload` for a large body: read it from the delivery log by webhook id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub payload_by_reference: bool,
}

impl Event {
    /// The event for a delivery: the payload inline, or by reference when over
    /// [`MAX_INLINE_PAYLOAD_BYTES`] (or not JSON).
    pub fn for_delivery(topic: &str, detail: EventDetail, body: &[u8]) -> Self {
        let mut detail = detail;
        let inline = (body.len() <= MAX_INLINE_PAYLOAD_BYTES)
            .then(|| serde_json::from_slice::<Value>(body).ok())
            .flatten();
        detail.payload_by_reference = inline.is_none();
        detail.payload = inline;
        Self {
            source: WEBHOOK_SOURCE.to_owned(),
            detail_type: topic.to_owned(),
            detail,
        }
    }
}

impl Event {
    /// The event for a delivery whose payload stays in the delivery log (consumers that share the
    /// store read it from there: no JSON is parsed or copied on the way).
    pub fn by_reference(topic: &str, detail: EventDetail) -> Self {
        let mut detail = detail;
        detail.payload = None;
        detail.payload_by_reference = true;
        Self {
            source: WEBHOOK_SOURCE.to_owned(),
            detail_type: topic.to_owned(),
            detail,
        }
    }
}

/// Failures of a bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The bus cannot be reached or throttled us: try again later.
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    /// The bus refused the event for good (malformed, too large, not allowed).
    #[error("event bus refused the event: {0}")]
    Rejected(String),
}

impl BusError {
    /// Whether publishing again later may succeed (decided once, here).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Where stored deliveries are published; adapters are `LocalBus` and `EventBridgeBus`.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    /// Publishes `events` in order; returns one result per event (a batch may partly fail).
    ///
    /// # Errors
    /// When the whole batch failed.
    async fn publish(&self, events: &[Event]) -> Result<Vec<Result<(), BusError>>, BusError>;
}
