//! The consumers: turn a published delivery into its effect, idempotently. Orders become daily
//! sales (guarded by `updated_at`: an older version never overwrites a newer one), products feed the
//! catalogue (variant → SKU), inventory levels become stock levels (newer `updated_at` wins),
//! lifecycle and compliance topics go to the install lifecycle. The same code runs inside `serve` (local bus) and
//! in `ordernimbus worker` (EventBridge → SQS).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;
use ordernimbus_backend::bus::Event;
use ordernimbus_backend::domain::{
    DEFAULT_LEAD_TIME_DAYS, DEFAULT_SERVICE_LEVEL, DeliveryOutcome, DeliveryStatus, InstallState,
    OrderApplied, StockLevel, Tenant,
};
use ordernimbus_backend::forecast::Refresher;
use ordernimbus_backend::shopify::catalogue::{inventory_level, product_variants};
use ordernimbus_backend::shopify::id_text;
use ordernimbus_backend::shopify::install::{
    LIFECYCLE_TOPICS, Lifecycle, LifecycleError, LifecycleEvent,
};
use ordernimbus_backend::shopify::order::order_version;
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::shopify::sync::BulkSignals;
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
    bulk_signals: Option<Arc<BulkSignals>>,
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
            bulk_signals: None,
        }
    }

    /// Also wakes this process's order syncs when `bulk_operations/finish` arrives.
    #[must_use]
    pub fn with_bulk_signals(mut self, signals: Arc<BulkSignals>) -> Self {
        self.bulk_signals = Some(signals);
        self
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
        match topic {
            "products/create" | "products/update" | "products/delete" => {
                self.apply_product(&shop, topic, &payload).await
            }
            "inventory_levels/update" => self.apply_inventory_level(&shop, &payload).await,
            "bulk_operations/finish" => self.bulk_finished(&shop, &payload).await,
            "refunds/create" => {
                Ok("ignored: the refund reaches sales through the order's next version".to_owned())
            }
            "orders/edited" => {
                Ok("ignored: the edit reaches sales through orders/updated".to_owned())
            }
            _ => Ok("ignored: topic not applied".to_owned()),
        }
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

    /// The tenant of an installed shop; `None` for an unknown or uninstalled one.
    async fn tenant_of(&self, shop: &ShopDomain) -> Result<Option<Tenant>, ConsumeError> {
        let install = self.store.shop_install(shop).await?;
        match install.filter(|install| install.state == InstallState::Installed) {
            Some(install) => Ok(Some(self.store.tenant(&install.tenant).await?)),
            None => Ok(None),
        }
    }

    async fn apply_product(
        &self,
        shop: &ShopDomain,
        topic: &str,
        payload: &Value,
    ) -> Result<String, ConsumeError> {
        let Some(tenant) = self.tenant_of(shop).await? else {
            return Ok("ignored: shop not installed".to_owned());
        };
        let (product_id, variants) = if topic == "products/delete" {
            let id = id_text(payload.get("id"))
                .ok_or_else(|| ConsumeError::Permanent("products/delete without an id".into()))?;
            (id, Vec::new())
        } else {
            product_variants(payload).map_err(|error| ConsumeError::Permanent(error.to_string()))?
        };
        let count = variants.len();
        self.store
            .put_product(&tenant.id, &product_id, variants)
            .await?;
        Ok(format!(
            "applied: product {product_id} with {count} variants"
        ))
    }

    /// Records that a bulk operation finished, for the syncer waiting on it (here or in another
    /// process); the syncer reads the operation's status and URL itself.
    async fn bulk_finished(
        &self,
        shop: &ShopDomain,
        payload: &Value,
    ) -> Result<String, ConsumeError> {
        let operation_id = payload
            .get("admin_graphql_api_id")
            .and_then(Value::as_str)
            .filter(|id| id.starts_with("gid://shopify/BulkOperation/"))
            .ok_or_else(|| {
                ConsumeError::Permanent(
                    "bulk_operations/finish without a BulkOperation admin_graphql_api_id".into(),
                )
            })?;
        let Some(tenant) = self.tenant_of(shop).await? else {
            return Ok("ignored: shop not installed".to_owned());
        };
        self.store
            .signal_bulk_finished(&tenant.id, operation_id)
            .await?;
        if let Some(signals) = &self.bulk_signals {
            signals.finished(operation_id);
        }
        let status = payload
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        Ok(format!("signalled: bulk operation {operation_id} {status}"))
    }

    async fn apply_inventory_level(
        &self,
        shop: &ShopDomain,
        payload: &Value,
    ) -> Result<String, ConsumeError> {
        let Some(tenant) = self.tenant_of(shop).await? else {
            return Ok("ignored: shop not installed".to_owned());
        };
        let level =
            inventory_level(payload).map_err(|error| ConsumeError::Permanent(error.to_string()))?;
        let Some(sku) = self
            .store
            .sku_of_inventory_item(&tenant.id, &level.inventory_item_id)
            .await?
        else {
            return Ok(format!(
                "ignored: inventory item {} is not in the catalogue yet",
                level.inventory_item_id
            ));
        };
        let current = self
            .store
            .stock(&tenant.id, Some(&sku))
            .await?
            .into_iter()
            .find(|stock| stock.location == level.location);
        if current
            .as_ref()
            .is_some_and(|stock| stock.updated_at >= level.updated_at)
        {
            return Ok("stale: a newer stock level was applied".to_owned());
        }
        let stock = StockLevel {
            sku: sku.clone(),
            location: level.location.clone(),
            on_hand: level.available,
            lead_time_days: current
                .as_ref()
                .map_or(DEFAULT_LEAD_TIME_DAYS, |stock| stock.lead_time_days),
            service_level: current
                .as_ref()
                .map_or(DEFAULT_SERVICE_LEVEL, |stock| stock.service_level),
            updated_at: level.updated_at,
        };
        // The store compares again as it writes: a newer level stored meanwhile (a concurrent
        // handler) is kept.
        if self.store.put_stock(&tenant.id, vec![stock]).await? == 0 {
            return Ok("stale: a newer stock level was applied".to_owned());
        }
        Ok(format!(
            "applied: {} on hand of {} at {}",
            level.available,
            sku.as_str(),
            level.location.as_str()
        ))
    }

    async fn apply_order(
        &self,
        shop: &ShopDomain,
        payload: &Value,
    ) -> Result<String, ConsumeError> {
        let Some(tenant) = self.tenant_of(shop).await? else {
            return Ok("ignored: shop not installed".to_owned());
        };
        let version = order_version(payload, shop.as_str(), tenant.timezone)
            .map_err(|error| ConsumeError::Permanent(error.to_string()))?;
        match self.store.apply_order(&tenant.id, &version).await? {
            OrderApplied::Applied { imported, updated } => {
                if let Some(refresher) = &self.refresher {
                    refresher.mark_new_orders(&tenant.id);
                }
                Ok(format!("applied: {imported} new lines, {updated} changed"))
            }
            OrderApplied::Stale => Ok("stale: a newer version was applied".to_owned()),
        }
    }

    /// Handles one event, retrying a retryable failure a few times, and returns the outcome to
    /// record: what happened, or dead-lettered after the last failed attempt.
    pub async fn handle_with_retries(&self, event: &Event) -> DeliveryOutcome {
        let webhook_id = event.detail.webhook_id.as_str();
        let mut pause = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            match self.handle(event).await {
                Ok(outcome) => return outcome_of(webhook_id, &outcome),
                Err(ConsumeError::Retryable(error)) if attempt < ATTEMPTS => {
                    tracing::warn!(%webhook_id, attempt, %error, "consumer failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    attempt += 1;
                }
                Err(error) => {
                    tracing::error!(%webhook_id, %error, "delivery dead-lettered");
                    return DeliveryOutcome::new(
                        webhook_id,
                        Some(DeliveryStatus::Dead),
                        "dead_lettered",
                        Some(&error.to_string()),
                        true,
                    );
                }
            }
        }
    }

    /// Handles one event once (the queue redelivers on failure) and records the outcome; a
    /// permanent failure is recorded as dead before the error is returned.
    ///
    /// # Errors
    /// The handler's error, or `Retryable` when the outcome cannot be recorded.
    pub async fn handle_once_and_record(&self, event: &Event) -> Result<(), ConsumeError> {
        let webhook_id = event.detail.webhook_id.as_str();
        match self.handle(event).await {
            Ok(outcome) => {
                self.store
                    .record_deliveries(vec![outcome_of(webhook_id, &outcome)])
                    .await?;
                Ok(())
            }
            Err(ConsumeError::Retryable(error)) => {
                let _ = self
                    .store
                    .record_delivery(webhook_id, None, "consume_failed", Some(&error), true)
                    .await;
                Err(ConsumeError::Retryable(error))
            }
            Err(ConsumeError::Permanent(error)) => {
                self.store
                    .record_delivery(
                        webhook_id,
                        Some(DeliveryStatus::Dead),
                        "dead_lettered",
                        Some(&error),
                        true,
                    )
                    .await?;
                Err(ConsumeError::Permanent(error))
            }
        }
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
            // A backlog does not hold shutdown up: the next start resumes from the committed
            // position.
            if (&mut shutdown).now_or_never().is_some() {
                return;
            }
            let batch = match bus.read(position, 64) {
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
            let mut outcomes = Vec::with_capacity(batch.len());
            let mut next_position = position;
            for (event, next) in batch {
                outcomes.push(self.handle_with_retries(&event).await);
                next_position = next;
            }
            // The outcomes are recorded before the position moves past their events.
            while let Err(error) = self.store.record_deliveries(outcomes.clone()).await {
                tracing::error!(%error, "cannot record consumer outcomes; retrying");
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            position = next_position;
            if let Err(error) = bus.commit(CONSUMER, position) {
                tracing::error!(%error, "cannot commit the local bus position");
            }
        }
    }
}

/// The outcome to record for a handled event: `word: detail` becomes step `word` with `detail`.
fn outcome_of(webhook_id: &str, outcome: &str) -> DeliveryOutcome {
    match outcome.split_once(": ") {
        Some((word, detail)) => DeliveryOutcome::new(webhook_id, None, word, Some(detail), false),
        None => DeliveryOutcome::new(webhook_id, None, outcome, None, false),
    }
}
