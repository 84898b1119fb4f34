//! The webhook receiver: `POST /webhooks` and `POST /webhooks/{topic path}`.
//!
//! Every delivery is verified (HMAC over the raw body, current or previous secret) before anything
//! else is read. Lifecycle and compliance topics are applied at once and recorded in the store
//! before the 200. Other topics are answered 503 until the durable delivery log takes them: Shopify
//! then retries, so nothing is acknowledged and lost.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::Utc;
use ordernimbus_backend::shopify::install::{
    LIFECYCLE_TOPICS, Lifecycle, LifecycleError, LifecycleEvent,
};
use serde_json::{Value, json};

use crate::verify::verify_delivery;

/// Largest delivery body accepted, in bytes (Shopify's payloads stay well under it).
pub const DEFAULT_MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// What the receiver needs.
#[derive(Clone)]
pub struct ReceiverState {
    /// Applies lifecycle and compliance topics; holds the app secrets.
    pub lifecycle: Arc<Lifecycle>,
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
    let config = state.lifecycle.config();
    let secrets = config.secrets();
    let delivery = match verify_delivery(&headers, &body, &secrets) {
        Ok(delivery) => delivery,
        Err(rejection) => {
            tracing::warn!(reason = %rejection, "webhook delivery rejected");
            let status =
                StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return error(status, rejection.code(), rejection.to_string());
        }
    };
    if !LIFECYCLE_TOPICS.contains(&delivery.topic.as_str()) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "topic_not_accepted",
            format!(
                "deliveries of {} are not accepted yet; Shopify will retry",
                delivery.topic
            ),
        );
    }
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(parse) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("delivery body is not JSON: {parse}"),
            );
        }
    };
    let event = LifecycleEvent {
        topic: &delivery.topic,
        shop: &delivery.shop,
        webhook_id: &delivery.webhook_id,
        triggered_at: delivery.triggered_at.unwrap_or_else(Utc::now),
        payload: &payload,
    };
    match state.lifecycle.apply(&event).await {
        Ok(outcome) => {
            tracing::info!(shop = %delivery.shop, webhook_id = %delivery.webhook_id, topic = %delivery.topic, %outcome, "lifecycle delivery applied");
            (StatusCode::OK, Json(json!({ "outcome": outcome }))).into_response()
        }
        Err(LifecycleError::BadPayload(message)) => {
            error(StatusCode::BAD_REQUEST, "invalid_payload", message)
        }
        Err(LifecycleError::NotLifecycle(topic)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "topic_not_accepted",
            format!("deliveries of {topic} are not accepted yet"),
        ),
        Err(LifecycleError::Store(cause)) => {
            tracing::error!(error = %cause, webhook_id = %delivery.webhook_id, "lifecycle delivery failed; Shopify will retry");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the store is unavailable; retry later",
            )
        }
    }
}
