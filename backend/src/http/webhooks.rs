//! `GET /api/v1/webhooks` and `POST /api/v1/webhooks/{webhook_id}/replay`: a Shopify tenant's own
//! deliveries, for the UI's data page (operators have the same through `ordernimbus webhooks`).

use axum::Json;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, ApiQuery, AppState, Authenticated};
use crate::domain::{DeliveryFilter, DeliveryStatus, Tenant};

/// Query of `GET /api/v1/webhooks`.
#[derive(Debug, Deserialize)]
pub(super) struct DeliveryQuery {
    topic: Option<String>,
    status: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    limit: Option<u32>,
}

async fn shop_of(state: &AppState, tenant: &Tenant) -> Result<String, ApiError> {
    Ok(super::shopify::install_of(state, tenant)
        .await?
        .shop
        .to_string())
}

/// `GET /api/v1/webhooks`: the tenant's deliveries, newest first.
pub(super) async fn list_deliveries(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    ApiQuery(query): ApiQuery<DeliveryQuery>,
) -> Result<Json<Value>, ApiError> {
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(DeliveryStatus::parse(text).ok_or_else(|| {
            ApiError::invalid_field(
                "status",
                format!("\"{text}\" is not one of pending, published, duplicate, dead"),
            )
        })?),
    };
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field("limit", "limit must be 1 to 1000"));
    }
    let filter = DeliveryFilter {
        shop: Some(shop_of(&state, &tenant).await?),
        topic: query.topic,
        since: query.since,
        until: query.until,
        status,
        after: None,
        limit,
    };
    let deliveries = state.store.deliveries(&filter).await?;
    Ok(Json(json!(deliveries)))
}

/// `POST /api/v1/webhooks/{webhook_id}/replay`: publishes one of the tenant's deliveries again.
pub(super) async fn replay_delivery(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    Path(webhook_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let shop = shop_of(&state, &tenant).await?;
    let delivery = state
        .store
        .delivery(&webhook_id)
        .await?
        .filter(|delivery| delivery.shop == shop)
        .ok_or_else(|| ApiError::not_found("delivery", &webhook_id))?;
    if delivery.status != DeliveryStatus::Pending {
        state
            .store
            .record_delivery(
                &webhook_id,
                Some(DeliveryStatus::Pending),
                "replayed",
                None,
                false,
            )
            .await?;
    }
    Ok(Json(
        json!({ "webhook_id": webhook_id, "status": "pending" }),
    ))
}
