//! The consumers: turn a published delivery into its effect, idempotently. Orders become daily
//! sales (guarded by `updated_at`: an older version never overwrites a newer one), products feed the
//! catalogue (variant → SKU), inventory levels become stock levels (newer `updated_at` wins),
//! lifecycle and compliance topics go to the install lifecycle. The same code runs inside `serve` (local bus) and
//! in `ordernimbus worker` (EventBridge → SQS).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
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

use crate::bus::local::{LocalBus, Position};

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

/// Order events of one local-bus batch handled at once: their writes share commits.
const CONCURRENT_ORDERS: usize = 16;

/// Shops resolved to their tenant (`None`: unknown or uninstalled), each looked up once for a run
/// of events among which no lifecycle event changes an install.
#[derive(Default)]
struct Tenants(tokio::sync::Mutex<HashMap<ShopDomain, Option<Tenant>>>);

impl Tenants {
    async fn of(
        &self,
        store: &dyn Store,
        shop: &ShopDomain,
    ) -> Result<Option<Tenant>, ConsumeError> {
        // Held across the lookup: handlers of one shop at once wait for the first one's answer.
        let mut known = self.0.lock().await;
        if let Some(tenant) = known.get(shop) {
            return Ok(tenant.clone());
        }
        let install = store.shop_install(shop).await?;
        let tenant = match install.filter(|install| install.state == InstallState::Installed) {
            Some(install) => Some(store.tenant(&install.tenant).await?),
            None => None,
        };
        known.insert(shop.clone(), tenant.clone());
        Ok(tenant)
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
        self.handle_with(event, &Tenants::default()).await
    }

    /// [`Consumer::handle`] with shops resolved through `tenants`. The shop's install is looked
    /// up before the payload is read, so a delivery for an unknown or uninstalled shop is
    /// recorded without reading or parsing its body.
    async fn handle_with(&self, event: &Event, tenants: &Tenants) -> Result<String, ConsumeError> {
        let detail = &event.detail;
        let topic = event.detail_type.as_str();
        let shop = ShopDomain::parse(&detail.shop)
            .map_err(|error| ConsumeError::Permanent(error.to_string()))?;
        if LIFECYCLE_TOPICS.contains(&topic) {
            let Some(lifecycle) = &self.lifecycle else {
                return Ok("ignored: no Shopify app configured".to_owned());
            };
            let payload = self.payload(event).await?;
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
        match topic {
            "refunds/create" => {
                return Ok(
                    "ignored: the refund reaches sales through the order's next version".to_owned(),
                );
            }
            "orders/edited" => {
                return Ok("ignored: the edit reaches sales through orders/updated".to_owned());
            }
            "products/create"
            | "products/update"
            | "products/delete"
            | "inventory_levels/update"
            | "bulk_operations/finish" => {}
            _ if ORDER_TOPICS.contains(&topic) => {}
            _ => return Ok("ignored: topic not applied".to_owned()),
        }
        let Some(tenant) = tenants.of(self.store.as_ref(), &shop).await? else {
            return Ok("ignored: shop not installed".to_owned());
        };
        let payload = self.payload(event).await?;
        match topic {
            "products/create" | "products/update" | "products/delete" => {
                self.apply_product(&tenant, topic, &payload).await
            }
            "inventory_levels/update" => self.apply_inventory_level(&tenant, &payload).await,
            "bulk_operations/finish" => self.bulk_finished(&tenant, &payload).await,
            _ => self.apply_order(&tenant, &shop, &payload).await,
        }
    }

    async fn payload(&self, event: &Event) -> Result<Value, ConsumeError> {
        if let Some(payload) = &event.detail.payload {
            return Ok(payload.clone());
        }
        let body = self
            .store
            .delivery_body(&event.detail.webhook_id)
            .await?
            .ok_or_else(|| {
                ConsumeError::Permanent(format!(
                    "payload of {} is by reference but the delivery is not in the log",
                    event.detail.webhook_id
                ))
            })?;
        serde_json::from_slice(&body)
            .map_err(|error| ConsumeError::Permanent(format!("payload is not JSON: {error}")))
    }

    async fn apply_product(
        &self,
        tenant: &Tenant,
        topic: &str,
        payload: &Value,
    ) -> Result<String, ConsumeError> {
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
        tenant: &Tenant,
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
        tenant: &Tenant,
        payload: &Value,
    ) -> Result<String, ConsumeError> {
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
        tenant: &Tenant,
        shop: &ShopDomain,
        payload: &Value,
    ) -> Result<String, ConsumeError> {
        let version = order_version(payload, shop.as_str(), tenant.timezone, tenant.identity)
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
        self.retrying(event, &Tenants::default()).await
    }

    async fn retrying(&self, event: &Event, tenants: &Tenants) -> DeliveryOutcome {
        let webhook_id = event.detail.webhook_id.as_str();
        let mut pause = Duration::from_millis(50);
        let mut attempt = 1;
        loop {
            match self.handle_with(event, tenants).await {
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

    /// Handles a batch of events and returns their outcomes in order. Consecutive order events
    /// are handled together ([`CONCURRENT_ORDERS`] at once), since versions of orders apply in any
    /// order (newer `updated_at` wins); other events one at a time, in order, so that a product
    /// is in the catalogue before a later stock level names it, and an install changed by a
    /// lifecycle event is looked up again for the events after it.
    async fn handle_batch(&self, events: &[Event]) -> Vec<DeliveryOutcome> {
        let mut outcomes = Vec::with_capacity(events.len());
        let mut tenants = Tenants::default();
        let mut rest = events;
        while let Some(first) = rest.first() {
            let orders = rest
                .iter()
                .take_while(|event| ORDER_TOPICS.contains(&event.detail_type.as_str()))
                .count();
            if orders > 0 {
                // In order, at most CONCURRENT_ORDERS at once (no stream combinator with a
                // closure: its future would not be `Send` for every lifetime, as spawning needs).
                let mut handling = FuturesOrdered::new();
                for event in &rest[..orders] {
                    if handling.len() == CONCURRENT_ORDERS
                        && let Some(outcome) = handling.next().await
                    {
                        outcomes.push(outcome);
                    }
                    handling.push_back(self.retrying(event, &tenants));
                }
                while let Some(outcome) = handling.next().await {
                    outcomes.push(outcome);
                }
                rest = &rest[orders..];
                continue;
            }
            outcomes.push(self.retrying(first, &tenants).await);
            if LIFECYCLE_TOPICS.contains(&first.detail_type.as_str()) {
                tenants = Tenants::default();
            }
            rest = &rest[1..];
        }
        outcomes
    }

    /// Consumes the local bus until `shutdown` resolves: from the last committed position, each
    /// event handled (and its outcome recorded) before the position moves past it. The position
    /// is written to disk at most every [`POSITION_COMMIT_INTERVAL`] and at shutdown; after a
    /// crash the events since are handled again, to the same effect.
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
        // The position last written to disk; the one in memory may be ahead of it.
        let mut committed = position;
        let mut last_commit = Instant::now();
        loop {
            // A backlog does not hold shutdown up: the next start resumes from the committed
            // position.
            if (&mut shutdown).now_or_never().is_some() {
                commit_position(&bus, position, &mut committed).await;
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
                    () = &mut shutdown => {
                        commit_position(&bus, position, &mut committed).await;
                        return;
                    }
                    () = bus.wait_beyond(position) => continue,
                }
            }
            let next_position = batch.last().map_or(position, |(_, next)| *next);
            let events: Vec<Event> = batch.into_iter().map(|(event, _)| event).collect();
            let outcomes = self.handle_batch(&events).await;
            // The outcomes are recorded before the position moves past their events.
            while let Err(error) = self.store.record_deliveries(outcomes.clone()).await {
                tracing::error!(%error, "cannot record consumer outcomes; retrying");
                tokio::select! {
                    () = &mut shutdown => {
                        commit_position(&bus, position, &mut committed).await;
                        return;
                    }
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            position = next_position;
            if last_commit.elapsed() >= POSITION_COMMIT_INTERVAL {
                commit_position(&bus, position, &mut committed).await;
                last_commit = Instant::now();
            }
        }
    }
}

/// Least time between two writes of the consumer's position to disk. The position only saves
/// work at a restart (events after it are handled again, and handling is idempotent), while each
/// write costs two fsyncs; under a stream of deliveries a write per batch was most of the bus's
/// disk traffic.
const POSITION_COMMIT_INTERVAL: Duration = Duration::from_millis(200);

/// Writes `position` to disk (on a blocking thread: it syncs) unless it is already there.
async fn commit_position(bus: &Arc<LocalBus>, position: Position, committed: &mut Position) {
    if position == *committed {
        return;
    }
    let writer = Arc::clone(bus);
    match tokio::task::spawn_blocking(move || writer.commit(CONSUMER, position)).await {
        Ok(Ok(())) => *committed = position,
        Ok(Err(error)) => tracing::error!(%error, "cannot commit the local bus position"),
        Err(error) => tracing::error!(%error, "the local bus position commit did not finish"),
    }
}

/// The outcome to record for a handled event: `word: detail` becomes step `word` with `detail`.
fn outcome_of(webhook_id: &str, outcome: &str) -> DeliveryOutcome {
    match outcome.split_once(": ") {
        Some((word, detail)) => DeliveryOutcome::new(webhook_id, None, word, Some(detail), false),
        None => DeliveryOutcome::new(webhook_id, None, outcome, None, false),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Duration as Span;
    use ordernimbus_backend::bus::{EventBus, EventDetail};
    use ordernimbus_backend::domain::{
        NewInstall, SalesQuery, SealedCredentials, TenantId, Timezone,
    };
    use ordernimbus_backend::store::sqlite::SqliteStore;
    use serde_json::json;

    use super::*;

    const SHOP: &str = "acme.myshopify.com";

    async fn installed_store() -> (tempfile::TempDir, Arc<SqliteStore>, TenantId) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(dir.path().join("store.sqlite3")).unwrap());
        let at = Utc::now();
        let install = NewInstall {
            shop: ShopDomain::parse(SHOP).unwrap(),
            name: "Acme".into(),
            timezone: Timezone::parse("UTC").unwrap(),
            scopes: vec!["read_orders".into(), "read_products".into()],
            credentials: SealedCredentials {
                access_token: b"sealed".to_vec(),
                access_expires_at: Some(at + Span::hours(1)),
                refresh_token: None,
                refresh_expires_at: None,
            },
            at,
        };
        let tenant = store
            .install_shop(&install, &TenantId::generate())
            .await
            .unwrap()
            .tenant;
        (dir, store, tenant)
    }

    fn event(shop: &str, topic: &str, webhook_id: &str, payload: &Value) -> Event {
        let detail = EventDetail {
            shop: shop.to_owned(),
            webhook_id: webhook_id.to_owned(),
            event_id: None,
            triggered_at: None,
            api_version: "2026-10".to_owned(),
            payload: None,
            payload_by_reference: false,
        };
        Event::for_delivery(topic, detail, payload.to_string().as_bytes())
    }

    /// Order `id` selling `quantity` of SKU-`id % 3` on 2026-03-01.
    fn order(id: u64, quantity: u32) -> Value {
        json!({
            "id": 5_100_000_000_000_000_u64 + id, "name": format!("#{id}"),
            "created_at": "2026-03-01T09:00:00Z", "processed_at": "2026-03-01T09:00:00Z",
            "updated_at": "2026-03-01T09:00:00Z", "cancelled_at": null, "test": false,
            "currency": "EUR", "source_name": "web", "location_id": null,
            "line_items": [{
                "id": 9_100_000_000_000_000_u64 + id, "variant_id": 44, "product_id": 33,
                "sku": format!("SKU-{}", id % 3), "title": "Tee", "quantity": quantity,
                "current_quantity": quantity, "price": "10.00", "total_discount": "0.00",
                "gift_card": false
            }],
            "refunds": []
        })
    }

    #[tokio::test]
    async fn a_batch_applies_its_orders_together_and_other_topics_in_order() {
        let (_dir, store, tenant) = installed_store().await;
        let consumer = Consumer::new(store.clone(), None, None);
        let mut events = Vec::new();
        for id in 0..40 {
            events.push(event(
                SHOP,
                "orders/create",
                &format!("o-{id}"),
                &order(id, 2),
            ));
        }
        // A repeat of order 0 (a redelivery under a new webhook id) counts once.
        events.push(event(SHOP, "orders/updated", "o-0-again", &order(0, 2)));
        // The product, then a stock level naming its inventory item: the second must see the first.
        events.push(event(
            SHOP,
            "products/create",
            "p-1",
            &json!({"id": 33, "title": "Tee", "variants": [
                {"id": 44, "sku": "SKU-0", "inventory_item_id": 77}]}),
        ));
        events.push(event(
            SHOP,
            "inventory_levels/update",
            "i-1",
            &json!({"inventory_item_id": 77, "location_id": 5, "available": 9,
                    "updated_at": "2026-03-02T10:00:00Z"}),
        ));
        events.push(event(SHOP, "orders/create", "o-40", &order(40, 1)));
        events.push(event(SHOP, "refunds/create", "r-1", &json!({"id": 1})));

        let outcomes = consumer.handle_batch(&events).await;
        let ids: Vec<&str> = outcomes.iter().map(|o| o.webhook_id.as_str()).collect();
        let expected: Vec<&str> = events
            .iter()
            .map(|e| e.detail.webhook_id.as_str())
            .collect();
        assert_eq!(ids, expected, "outcomes come back in the events' order");
        let words: Vec<&str> = outcomes.iter().map(|o| o.outcome.as_str()).collect();
        assert!(
            words[..40].iter().all(|word| *word == "applied"),
            "{words:?}"
        );
        assert_eq!(words[40], "stale");
        assert_eq!(&words[41..], ["applied", "applied", "applied", "ignored"]);

        let units: f64 = store
            .skus(&tenant)
            .await
            .unwrap()
            .iter()
            .map(|sku| sku.units)
            .sum();
        assert_eq!(units, 40.0 * 2.0 + 1.0);
    }

    #[tokio::test]
    async fn a_delivery_for_a_shop_without_an_install_is_ignored_before_its_payload_is_read() {
        let (_dir, store, _tenant) = installed_store().await;
        let consumer = Consumer::new(store.clone(), None, None);
        let detail = |shop: &str| EventDetail {
            shop: shop.to_owned(),
            webhook_id: "not-in-the-log".to_owned(),
            event_id: None,
            triggered_at: None,
            api_version: "2026-10".to_owned(),
            payload: None,
            payload_by_reference: true,
        };
        // Its payload would be read from the log, where it is not: never looked for.
        let stranger = Event::by_reference("orders/create", detail("other.myshopify.com"));
        assert_eq!(
            consumer.handle(&stranger).await.unwrap(),
            "ignored: shop not installed"
        );
        // For an installed shop the missing payload is a permanent failure.
        let missing = Event::by_reference("orders/create", detail(SHOP));
        assert!(matches!(
            consumer.handle(&missing).await,
            Err(ConsumeError::Permanent(_))
        ));
    }

    #[tokio::test]
    async fn the_local_consumer_writes_its_position_at_shutdown_and_a_restart_resumes_after_it() {
        let (dir, store, tenant) = installed_store().await;
        let bus = Arc::new(LocalBus::open(dir.path().join("bus")).unwrap());
        let events: Vec<Event> = (0..3)
            .map(|n| event(SHOP, "orders/create", &format!("w{n}"), &order(n, 1)))
            .collect();
        bus.publish(&events).await.unwrap();
        let end = bus.read(bus.resume(CONSUMER).unwrap(), 10).unwrap()[2].1;

        let consumer = Arc::new(Consumer::new(store.clone(), None, None));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(Arc::clone(&consumer).run_local(Arc::clone(&bus), async {
            let _ = stopped.await;
        }));
        // Handled: the three orders' units are in the tenant's sales.
        let mut units = 0.0;
        for _ in 0..500 {
            let sales = store.sales(&tenant, &SalesQuery::default()).await.unwrap();
            units = sales.iter().map(|day| day.units).sum::<f64>();
            if units >= 3.0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!((units - 3.0).abs() < 1e-9, "units applied: {units}");
        // Well within the commit interval: the position is only in memory until shutdown.
        stop.send(()).unwrap();
        running.await.unwrap();

        let reopened = LocalBus::open(dir.path().join("bus")).unwrap();
        assert_eq!(reopened.resume(CONSUMER).unwrap(), end);
        assert!(reopened.read(end, 10).unwrap().is_empty());
    }
}
