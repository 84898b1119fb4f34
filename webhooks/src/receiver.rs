//! The webhook receiver: `POST /webhooks` and `POST /webhooks/{topic path}`.
//!
//! Every delivery is verified (HMAC over the raw body, current or previous secret) before anything
//! else is read, then stored in the delivery log, durably, and only then answered 200; the outbox
//! publishes it from there. When too many deliveries are already waiting for the store, the answer
//! is 503 before anything is stored: Shopify retries, and nothing is accepted and then dropped.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use ordernimbus_backend::domain::{DeliveryReceipt, NewDelivery};
use ordernimbus_backend::shopify::Secret;
use ordernimbus_backend::store::Store;
use serde_json::json;
use tokio::sync::{Notify, Semaphore};

use crate::verify::verify_delivery;

/// Largest delivery body accepted, in bytes (Shopify's payloads stay well under it).
pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// Deliveries waiting for the store at once before new ones are answered 503.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 2048;

/// What the receiver needs.
#[derive(Clone)]
pub struct ReceiverState {
    /// The delivery log.
    pub store: Arc<dyn Store>,
    /// The app's secrets that may sign a delivery: current first, then the previous one.
    pub secrets: Arc<Vec<Secret>>,
    /// Woken after each stored delivery (the outbox).
    pub stored: Arc<Notify>,
    /// Bounds the deliveries waiting for the store.
    pub in_flight: Arc<Semaphore>,
    /// Largest body accepted.
    pub max_body_bytes: usize,
}

impl std::fmt::Debug for ReceiverState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ReceiverState")
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// The receiver's routes.
pub fn router(state: ReceiverState) -> Router {
    Router::new()
        .route("/webhooks", post(receive))
        .route("/webhooks/{*topic}", post(receive))
        .with_state(state)
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "error": { "code": code, "message": message.into() } })),
    )
        .into_response()
}

async fn receive(State(state): State<ReceiverState>, headers: HeaderMap, body: Body) -> Response {
    let Ok(body) = axum::body::to_bytes(body, state.max_body_bytes).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("delivery body over {} bytes", state.max_body_bytes),
        );
    };
    let secrets: Vec<&[u8]> = state
        .secrets
        .iter()
        .map(|secret| secret.expose().as_bytes())
        .collect();
    let delivery = match verify_delivery(&headers, &body, &secrets) {
        Ok(delivery) => delivery,
        Err(rejection) => {
            tracing::warn!(reason = %rejection, "webhook delivery rejected");
            let status =
                StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return error(status, rejection.code(), rejection.to_string());
        }
    };
    let Ok(_permit) = state.in_flight.try_acquire() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many deliveries in flight; retry later",
        );
    };
    let kept_headers = headers
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            (name.starts_with("x-shopify-") || name.starts_with("shopify-"))
                && !name.ends_with("hmac-sha256")
        })
        .filter_map(|(name, value)| {
            Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
        })
        .collect();
    let new = NewDelivery {
        webhook_id: delivery.webhook_id,
        shop: delivery.shop,
        topic: delivery.topic,
        api_version: delivery.api_version,
        event_id: delivery.event_id,
        triggered_at: delivery.triggered_at,
        received_at: Utc::now(),
        headers: kept_headers,
        body: body.to_vec(),
    };
    match state.store.put_delivery(&new).await {
        Ok(receipt) => {
            if receipt == DeliveryReceipt::Stored {
                state.stored.notify_one();
            }
            tracing::debug!(shop = %new.shop, webhook_id = %new.webhook_id, topic = %new.topic, ?receipt, "delivery stored");
            (StatusCode::OK, Json(json!({ "receipt": receipt }))).into_response()
        }
        Err(cause) => {
            tracing::error!(error = %cause, webhook_id = %new.webhook_id, "delivery not stored; Shopify will retry");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the delivery log is unavailable; retry later",
            )
        }
    }
}
