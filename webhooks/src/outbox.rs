//! The transactional outbox: publishes stored deliveries to the bus, oldest first, and records each
//! outcome. A bus outage delays publication (the delivery stays pending), it never loses one.
//!
//! Every `serve` process runs one, all over the same delivery log: each round claims the deliveries
//! it publishes (for [`LEASE`]), so two outboxes never publish one delivery twice, and records
//! outcomes only of deliveries it still holds, so a status another process recorded stays. Should
//! an outbox stop between publishing and recording, its claims run out and another publishes those
//! deliveries again (consumers dedupe on the webhook id).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures_util::FutureExt;
use ordernimbus_backend::bus::{Event, EventBus, EventDetail};
use ordernimbus_backend::domain::{DeliveryLease, DeliveryOutcome, DeliveryRecord, DeliveryStatus};
use ordernimbus_backend::store::{Store, StoreError};
use tokio::sync::Notify;

/// Deliveries published per round.
const BATCH: u32 = 64;
/// Least time from the start of one round to the start of the next while receipts arrive, full
/// or not: then at most `BATCH` deliveries per interval (6,400 a second) are published. Each
/// round costs the store a claim and a record transaction and the bus a write; without a pause, a
/// steady stream of receipts made a round of a few deliveries every millisecond. And during a
/// flood the receiver keeps the cores: publishing (and the consumers it feeds) at full speed took
/// them from it (webhook closed loops 3–12 % slower in five alternated pairs). Once no receipt
/// came during a full round, the backlog goes at full speed. Publication waits at most this long
/// more.
const ROUND_INTERVAL: Duration = Duration::from_millis(10);
/// Longest pause between rounds while the bus is failing.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a round's claims hold: far longer than publishing a batch takes (well under a second,
/// a few seconds while the bus client retries), and the longest that the deliveries of an outbox
/// that stopped mid-round wait for another outbox, or for the same server restarted.
pub const LEASE: Duration = Duration::from_secs(30);

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxRound {
    /// Deliveries published.
    pub published: usize,
    /// Deliveries left pending after a retryable failure.
    pub retried: usize,
    /// Deliveries the bus refused for good (dead-lettered).
    pub dead: usize,
}

/// Publishes pending deliveries.
pub struct Outbox {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    wake: Arc<Notify>,
    inline_payloads: bool,
    /// Names this outbox's claims (random, one per outbox).
    owner: String,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Outbox").finish_non_exhaustive()
    }
}

/// The event published for a stored delivery: with its payload inline (for buses whose consumers
/// may not share the store), or by reference to the delivery log.
pub fn event_of(delivery: &DeliveryRecord, inline_payload: bool) -> Event {
    let detail = EventDetail {
        shop: delivery.shop.clone(),
        webhook_id: delivery.webhook_id.clone(),
        event_id: delivery.event_id.clone(),
        triggered_at: delivery.triggered_at,
        api_version: delivery.api_version.clone(),
        payload: None,
        payload_by_reference: false,
    };
    if inline_payload {
        Event::for_delivery(&delivery.topic, detail, &delivery.body)
    } else {
        Event::by_reference(&delivery.topic, detail)
    }
}

impl Outbox {
    /// An outbox over the delivery log and a bus; `wake` is notified when a delivery is stored.
    /// With `inline_payloads` events carry the body (EventBridge, whose consumers may be anything);
    /// without, they refer to the log (the local bus, whose consumers share the store).
    pub fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn EventBus>,
        wake: Arc<Notify>,
        inline_payloads: bool,
    ) -> Self {
        Self {
            store,
            bus,
            wake,
            inline_payloads,
            owner: format!("outbox-{:016x}", rand::random::<u64>()),
        }
    }

    /// Claims one batch of pending deliveries, publishes them and records each outcome.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn run_once(&self) -> Result<OutboxRound, StoreError> {
        let now = Utc::now();
        let lease = DeliveryLease {
            owner: self.owner.clone(),
            until: now + LEASE,
        };
        let pending = self
            .store
            .claim_deliveries(&lease, now, BATCH, self.inline_payloads)
            .await?;
        let mut round = OutboxRound::default();
        if pending.is_empty() {
            return Ok(round);
        }
        let events: Vec<Event> = pending
            .iter()
            .map(|delivery| event_of(delivery, self.inline_payloads))
            .collect();
        let results = match self.bus.publish(&events).await {
            Ok(results) => results,
            Err(error) => {
                // The claims stay: the next round of this outbox renews them and tries again.
                tracing::warn!(%error, deliveries = pending.len(), "publishing failed; will retry");
                round.retried = pending.len();
                return Ok(round);
            }
        };
        let mut outcomes = Vec::with_capacity(pending.len());
        for (delivery, result) in pending.iter().zip(results) {
            let webhook_id = delivery.webhook_id.as_str();
            outcomes.push(match result {
                Ok(()) => {
                    round.published += 1;
                    DeliveryOutcome::new(
                        webhook_id,
                        Some(DeliveryStatus::Published),
                        "published",
                        None,
                        false,
                    )
                }
                Err(error) if error.is_retryable() => {
                    round.retried += 1;
                    DeliveryOutcome::new(
                        webhook_id,
                        None,
                        "publish_failed",
                        Some(&error.to_string()),
                        true,
                    )
                }
                Err(error) => {
                    round.dead += 1;
                    DeliveryOutcome::new(
                        webhook_id,
                        Some(DeliveryStatus::Dead),
                        "dead_lettered",
                        Some(&error.to_string()),
                        true,
                    )
                }
            });
        }
        let expected = outcomes.len() as u64;
        let recorded = self
            .store
            .record_claimed_deliveries(&self.owner, outcomes)
            .await?;
        if recorded < expected {
            tracing::warn!(
                dropped = expected - recorded,
                "outcomes not recorded: meanwhile another process recorded their deliveries' \
                 status, or claimed them after this round's claims ran out"
            );
        }
        Ok(round)
    }

    /// Publishes until `shutdown` resolves: at once when woken, every second otherwise, backing off
    /// while the bus or store fails.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(100);
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            let started = tokio::time::Instant::now();
            let failing = match self.run_once().await {
                Ok(round) if round.retried == 0 && round.published + round.dead > 0 => {
                    backoff = Duration::from_millis(100);
                    // Woken since the last look: receipts are still coming in (the receiver
                    // wakes the outbox after each), so this round's pause applies.
                    let receiving = notified.as_mut().now_or_never().is_some();
                    // A backlog does not hold shutdown up: what is still pending stays pending
                    // and is published at the next start.
                    if receiving || round.published + round.dead < BATCH as usize {
                        tokio::select! {
                            () = &mut shutdown => return,
                            () = tokio::time::sleep_until(started + ROUND_INTERVAL) => {}
                        }
                    } else if (&mut shutdown).now_or_never().is_some() {
                        return;
                    }
                    continue;
                }
                Ok(round) => round.retried > 0,
                Err(error) => {
                    tracing::error!(%error, "outbox cannot read the delivery log");
                    true
                }
            };
            if failing {
                // New deliveries do not cut a backoff short: the bus gets time to recover.
                backoff = (backoff * 2).min(MAX_BACKOFF);
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(backoff) => {}
                }
            } else {
                backoff = Duration::from_millis(100);
                tokio::select! {
                    () = &mut shutdown => return,
                    () = notified => {}
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use chrono::Utc;
    use ordernimbus_backend::bus::BusError;
    use ordernimbus_backend::domain::NewDelivery;
    use ordernimbus_backend::shopify::shop::ShopDomain;
    use ordernimbus_backend::store::sqlite::SqliteStore;

    use super::*;

    /// A bus that is down for its first `outages` calls, then refuses entries whose webhook id
    /// starts with `bad`, and keeps what it accepted.
    #[derive(Default)]
    struct FlakyBus {
        outages: AtomicUsize,
        accepted: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl EventBus for FlakyBus {
        async fn publish(&self, events: &[Event]) -> Result<Vec<Result<(), BusError>>, BusError> {
            if self
                .outages
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok()
            {
                return Err(BusError::Unavailable("connection refused".into()));
            }
            Ok(events
                .iter()
                .map(|event| {
                    if event.detail.webhook_id.starts_with("bad") {
                        Err(BusError::Rejected("entry too large".into()))
                    } else {
                        self.accepted
                            .lock()
                            .unwrap()
                            .push(event.detail.webhook_id.clone());
                        Ok(())
                    }
                })
                .collect())
        }
    }

    fn delivery(id: &str) -> NewDelivery {
        NewDelivery {
            webhook_id: id.into(),
            shop: ShopDomain::parse("acme.myshopify.com").unwrap(),
            topic: "orders/create".into(),
            api_version: "2026-10".into(),
            event_id: None,
            triggered_at: None,
            received_at: Utc::now(),
            headers: vec![],
            body: br#"{"id": 1}"#.to_vec(),
        }
    }

    #[tokio::test]
    async fn a_backlog_does_not_hold_up_shutdown() {
        let directory = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(directory.path().join("s.sqlite3")).unwrap());
        for index in 0..(BATCH * 3) {
            store
                .put_delivery(&delivery(&format!("w{index}")))
                .await
                .unwrap();
        }
        let bus = Arc::new(FlakyBus::default());
        let outbox = Arc::new(Outbox::new(
            Arc::clone(&store),
            bus.clone(),
            Arc::new(Notify::new()),
            true,
        ));
        // Shutdown was asked for before the loop started: it stops after the round in progress.
        tokio::time::timeout(Duration::from_secs(10), outbox.run(std::future::ready(())))
            .await
            .unwrap();
        assert_eq!(bus.accepted.lock().unwrap().len(), BATCH as usize);
        assert_eq!(
            store
                .pending_deliveries(u32::MAX, false)
                .await
                .unwrap()
                .len(),
            (BATCH * 2) as usize,
            "the rest stays pending for the next start"
        );
    }

    #[tokio::test]
    async fn two_outboxes_on_one_log_never_publish_a_delivery_twice() {
        let directory = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(directory.path().join("s.sqlite3")).unwrap());
        let count = BATCH * 3 + 5;
        for index in 0..count {
            store
                .put_delivery(&delivery(&format!("w{index}")))
                .await
                .unwrap();
        }
        let bus = Arc::new(FlakyBus::default());
        let outbox = || {
            Outbox::new(
                Arc::clone(&store),
                bus.clone(),
                Arc::new(Notify::new()),
                true,
            )
        };
        let (first, second) = (outbox(), outbox());
        loop {
            let (one, other) = tokio::join!(first.run_once(), second.run_once());
            if one.unwrap().published + other.unwrap().published == 0 {
                break;
            }
        }
        let mut accepted = bus.accepted.lock().unwrap().clone();
        accepted.sort();
        accepted.dedup();
        assert_eq!(
            accepted.len(),
            bus.accepted.lock().unwrap().len(),
            "published twice"
        );
        assert_eq!(accepted.len(), count as usize);
        assert!(
            store
                .pending_deliveries(10, false)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_bus_outage_delays_publication_and_a_refused_event_is_dead_lettered() {
        let directory = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(directory.path().join("s.sqlite3")).unwrap());
        for id in ["w1", "bad-2", "w3"] {
            store.put_delivery(&delivery(id)).await.unwrap();
        }
        let bus = Arc::new(FlakyBus::default());
        bus.outages.store(2, Ordering::SeqCst);
        let outbox = Outbox::new(
            Arc::clone(&store),
            bus.clone(),
            Arc::new(Notify::new()),
            true,
        );
        for _ in 0..2 {
            let round = outbox.run_once().await.unwrap();
            assert_eq!(
                round,
                OutboxRound {
                    retried: 3,
                    ..OutboxRound::default()
                }
            );
            assert_eq!(
                store.pending_deliveries(10, false).await.unwrap().len(),
                3,
                "nothing is lost"
            );
        }
        let round = outbox.run_once().await.unwrap();
        assert_eq!(
            round,
            OutboxRound {
                published: 2,
                dead: 1,
                retried: 0
            }
        );
        assert_eq!(*bus.accepted.lock().unwrap(), ["w1", "w3"]);
        let dead = store.delivery("bad-2").await.unwrap().unwrap();
        assert_eq!(dead.status, DeliveryStatus::Dead);
        assert_eq!(
            dead.reason.as_deref(),
            Some("event bus refused the event: entry too large")
        );
        assert_eq!(
            store.delivery("w1").await.unwrap().unwrap().status,
            DeliveryStatus::Published
        );
        assert_eq!(outbox.run_once().await.unwrap(), OutboxRound::default());
    }
}
