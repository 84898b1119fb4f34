//! The consumers: turn a published delivery into its effect, idempotently. Orders become daily
//! sales (guarded by `updated_at`: an older version never overwrites a newer one), lifecycle and
//! compliance topics go to the install lifecycle. The same code runs inside `serve` (local bus) and
//! in `ordernimbus worker` (EventBridge → SQS).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ordernimbus_backend::bus::Event;
use ordernimbus_backend::domain::{DeliveryStatus, InstallState, OrderApplied};
use ordernimbus_backend::forecast::Refresher;
use ordernimbus_backend::shopify::install::{
    LIFECYCLE_TOPICS, Lifecycle, LifecycleError, LifecycleEvent,
};
use ordernimbus_backend::shopify::order::order_version;
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::store::{Store, StoreError};
use serde_json::Value;

use crate::bus::local::LocalBus;

/// Order topics whose payload is the order itself.
pub const ORDER_TOPICS: &[&str] = &[
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "orders/paid",
    "orders/fulfilled",
];

/// Attempts of one event before it is dead-lettered (local bus).
const ATTEMPTS: u32 = 5;
/// Name of the local bus consumer.
const CONSUMER: &str = "consumers";

/// Why an event was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ConsumeError {
    /// Try again later (the store failed).
    #[error("{0}")]
    Retryable(String),
    /// It will never apply (malformed payload); dead-letter it.
    #[error("{0}")]
    Permanent(String),
}

impl From<StoreError> for ConsumeError {
    fn from(error: StoreError) -> Self {
        Self::Retryable(error.to_string())
    }
}

/// Applies deliveries.
pub struct Consumer {
    store: Arc<dyn Store>,
    lifecycle: Option<Arc<Lifecycle>>,
    refresher: Option<Arc<Refresher>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Consumer").finish_non_exhaustive()
    }
}

impl Consumer {
    /// A consumer over the store, the install lifecycle and the forecast refresher.
    pub fn new(
        store: Arc<dyn Store>,
        lifecycle: Option<Arc<Lifecycle>>,
        refresher: Option<Arc<Refresher>>,
    ) -> Self {
        Self {
            store,
            lifecycle,
            refresher,
        }
    }

    /// Applies one event and returns what happened in a word (`applied`, `stale`, `ignored: …`).
    ///
    /// # Errors
    /// `Retryable` when the store failed; `Permanent` for a payload that can never apply.
    pub async fn handle(&self, event: &Event) -> Result<String, ConsumeError> {
        let detail = &event.detail;
        let topic = event.detail_type.as_str();
        let shop = ShopDomain::parse(&detail.shop)
            .map_err(|error| ConsumeError::Permanent(error.to_string()))?;
        let payload = self.payload(event).await?;
        if LIFECYCLE_TOPICS.contains(&topic) {
            let Some(lifecycle) = &self.lifecycle else {
                return Ok("ignored: no Shopify app configured".to_owned());
            };
            let lifecycle_event = LifecycleEvent {
                topic,
                shop: &shop,
                webhook_id: &detail.webhook_id,
                triggered_at: detail.triggered_at.unwrap_or_else(Utc::now),
                payload: &payload,
            };
            return match lifecycle.apply(&lifecycle_event).await {
                Ok(outcome) => Ok(outcome),
                Err(LifecycleError::Store(error)) => Err(error.into()),
                Err(error) => Err(ConsumeError::Permanent(error.to_string())),
            };
        }
        if ORDER_TOPICS.contains(&topic) {
            return self.apply_order(&shop, &payload).await;
        }
        Ok(match topic {
            "refunds/create" => {
                "ignored: the refund reaches sales through the order's next version"
            }
            "orders/edited" => "ignored: the edit reaches sales through orders/updated",
            _ => "ignored: topic not applied",
        }
        .to_owned())
    }

    async fn payload(&self, event: &Event) -> Result<Value, ConsumeError> {
        if let Some(payload) = &event.detail.payload {
            return Ok(payload.clone());
        }
        let stored = self
            .store
            .delivery(&event.detail.webhook_id)
            .await?
            .ok_or_else(|| {
                ConsumeError::Permanent(format!(
                    "payload of {} is by reference but the delivery is not in the log",
                    event.detail.webhook_id
                ))
            })?;
        serde_json::from_slice(&stored.body)
            .map_err(|error| ConsumeError::Permanent(format!("payload is not JSON: {error}")))
    }

    async fn apply_order(
        &self,
        shop: &ShopDomain,
        payload: &Value,
    ) -> Result<String, ConsumeError> {
        let install = self.store.shop_install(shop).await?;
        let Some(install) = install.filter(|install| install.state == InstallState::Installed)
        else {
            return Ok("ignored: shop not installed".to_owned());
        };
        let tenant = self.store.tenant(&install.tenant).await?;
        let version = order_version(payload, shop.as_str(), tenant.timezone)
            .map_err(|error| ConsumeError::Permanent(error.to_string()))?;
        match self.store.apply_order(&tenant.id, &version).await? {
            OrderApplied::Applied { imported, updated } => {
                if let Some(refresher) = &self.refresher {
                    refresher.mark_stale(&tenant.id);
                }
                Ok(format!("applied: {imported} new lines, {updated} changed"))
            }
            OrderApplied::Stale => Ok("stale: a newer version was applied".to_owned()),
        }
    }

    /// Handles one event with retries, records the outcome in the delivery log, and dead-letters
    /// it after the last failed attempt.
    ///
    /// # Errors
    /// When the outcome cannot be recorded (the store failed).
    pub async fn handle_and_record(&self, event: &Event) -> Result<(), StoreError> {
        let webhook_id = event.detail.webhook_id.as_str();
        let mut pause = Duration::from_millis(50);
        for attempt in 1..=ATTEMPTS {
            match self.handle(event).await {
                Ok(outcome) => {
                    let (word, detail) = match outcome.split_once(": ") {
                        Some((word, detail)) => (word.to_owned(), Some(detail.to_owned())),
                        None => (outcome, None),
                    };
                    self.store
                        .record_delivery(webhook_id, None, &word, detail.as_deref(), false)
                        .await?;
                    return Ok(());
                }
                Err(ConsumeError::Retryable(error)) if attempt < ATTEMPTS => {
                    tracing::warn!(%webhook_id, attempt, %error, "consumer failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(error) => {
                    tracing::error!(%webhook_id, %error, "delivery dead-lettered");
                    self.store
                        .record_delivery(
                            webhook_id,
                            Some(DeliveryStatus::Dead),
                            "dead_lettered",
                            Some(&error.to_string()),
                            true,
                        )
                        .await?;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Consumes the local bus until `shutdown` resolves: from the last committed position, each
    /// event handled (and its outcome recorded) before the position moves past it.
    pub async fn run_local(
        self: Arc<Self>,
        bus: Arc<LocalBus>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut position = match bus.resume(CONSUMER) {
            Ok(position) => position,
            Err(error) => {
                tracing::error!(%error, "cannot read the local bus position; consumers stopped");
                return;
            }
        };
        loop {
            let batch = match bus.read(position, 256) {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(%error, "cannot read the local bus");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    () = &mut shutdown => return,
                    () = bus.wait_beyond(position) => continue,
                }
            }
            for (event, next) in batch {
                while let Err(error) = self.handle_and_record(&event).await {
                    tracing::error!(%error, "cannot record a consumer outcome; retrying");
                    tokio::select! {
                        () = &mut shutdown => return,
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
                position = next;
            }
            if let Err(error) = bus.commit(CONSUMER, position) {
                tracing::error!(%error, "cannot commit the local bus position");
            }
        }
    }
}
