//! `Worker`: delete on success, redeliver retryable failures, dead-letter the rest, keep long
//! handlers' messages hidden; and Shopify's own EventBridge deliveries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ordernimbus_backend::bus::{Event, EventBus};
use ordernimbus_webhooks::sqs::{
    HandlerError, HandlerFuture, Message, Worker, WorkerConfig, WorkerStats,
};
use serde_json::json;

use crate::support::{Pipeline, by_webhook_id, order_event};

const SHOPIFY_ORDERS_CREATE: &str = include_str!("../data/eventbridge-shopify-orders-create.json");

/// Polls long enough to see a message whose 1-second visibility timeout is running out.
fn config() -> WorkerConfig {
    WorkerConfig {
        batch_size: 10,
        wait: Duration::from_secs(3),
        visibility: Duration::from_secs(30),
        extend_every: Duration::from_secs(60),
    }
}

/// A handler that records each event and answers with `outcome`.
fn recording(
    outcome: Option<HandlerError>,
) -> (
    impl Fn(Event) -> HandlerFuture + Send + Sync,
    Arc<Mutex<Vec<Event>>>,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let handler = move |event: Event| -> HandlerFuture {
        record.lock().unwrap().push(event);
        let outcome = outcome.clone();
        Box::pin(async move { outcome.map_or(Ok(()), Err) })
    };
    (handler, seen)
}

fn stats(
    received: usize,
    handled: usize,
    retryable: usize,
    permanent: usize,
    malformed: usize,
) -> WorkerStats {
    WorkerStats {
        received,
        handled,
        retryable_failures: retryable,
        permanent_failures: permanent,
        malformed,
        delete_failures: 0,
    }
}

#[tokio::test]
async fn worker_handles_published_events_and_deletes_them() {
    let pipeline = Pipeline::create(Duration::from_secs(1), 2).await;
    let events = (0..12).map(|n| order_event(n, 50)).collect::<Vec<_>>();
    pipeline.bus.publish(&events).await.unwrap();
    let (handler, seen) = recording(None);
    let worker = Worker::new(pipeline.queue.clone(), handler).with_config(config());

    let mut total = WorkerStats::default();
    while total.received < 12 {
        let once = worker.run_once().await.unwrap();
        assert!(once.received > 0, "the queue ran dry after {total:?}");
        total.received += once.received;
        total.handled += once.handled;
    }

    assert_eq!((total.received, total.handled), (12, 12));
    assert_eq!(
        by_webhook_id(seen.lock().unwrap().clone()),
        by_webhook_id(events)
    );
    // Deleted, so nothing comes back once the 1-second visibility timeout has passed.
    assert_eq!(worker.run_once().await.unwrap(), WorkerStats::default());
    assert!(
        pipeline
            .dead_letters
            .receive(10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn retryable_failure_is_redelivered_until_the_redrive_policy_dead_letters_it() {
    let pipeline = Pipeline::create(Duration::from_secs(1), 2).await;
    let event = order_event(7, 50);
    pipeline
        .bus
        .publish(std::slice::from_ref(&event))
        .await
        .unwrap();
    let (handler, seen) = recording(Some(HandlerError::retryable("store unavailable")));
    let worker = Worker::new(pipeline.queue.clone(), handler).with_config(config());

    assert_eq!(worker.run_once().await.unwrap(), stats(1, 0, 1, 0, 0));
    // Visible again after its 1-second timeout: the second (and last allowed) delivery.
    assert_eq!(worker.run_once().await.unwrap(), stats(1, 0, 1, 0, 0));
    // maxReceiveCount 2 reached: SQS moves it to the dead-letter queue instead of a third delivery.
    assert_eq!(worker.run_once().await.unwrap(), WorkerStats::default());

    assert_eq!(
        seen.lock().unwrap().clone(),
        vec![event.clone(), event.clone()]
    );
    let dead = pipeline
        .dead_letters
        .receive(10, Duration::from_secs(2))
        .await
        .unwrap();
    match dead.as_slice() {
        [Message::Event(dead)] => assert_eq!(dead.event, event),
        other => panic!("expected the event in the dead-letter queue, got {other:?}"),
    }
}

#[tokio::test]
async fn permanent_failure_reaches_the_dead_letter_queue_without_waiting_for_timeouts() {
    // A 30-second visibility timeout: only the worker's release makes the second delivery quick.
    let pipeline = Pipeline::create(Duration::from_secs(30), 2).await;
    let event = order_event(3, 50);
    pipeline
        .bus
        .publish(std::slice::from_ref(&event))
        .await
        .unwrap();
    let (handler, _) = recording(Some(HandlerError::permanent("unknown topic")));
    let worker = Worker::new(pipeline.queue.clone(), handler).with_config(config());

    assert_eq!(worker.run_once().await.unwrap(), stats(1, 0, 0, 1, 0));
    assert_eq!(worker.run_once().await.unwrap(), stats(1, 0, 0, 1, 0));
    assert_eq!(worker.run_once().await.unwrap(), WorkerStats::default());

    let dead = pipeline
        .dead_letters
        .receive(10, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        matches!(dead.as_slice(), [Message::Event(dead)] if dead.event == event),
        "{dead:?}"
    );
}

#[tokio::test]
async fn malformed_message_is_never_handled_and_ends_in_the_dead_letter_queue() {
    let pipeline = Pipeline::create(Duration::from_secs(30), 2).await;
    pipeline
        .send_raw(r#"{"hello": "not an EventBridge event"}"#)
        .await;
    let (handler, seen) = recording(None);
    let worker = Worker::new(pipeline.queue.clone(), handler).with_config(config());

    assert_eq!(worker.run_once().await.unwrap(), stats(1, 0, 0, 0, 1));
    assert_eq!(worker.run_once().await.unwrap(), stats(1, 0, 0, 0, 1));
    assert_eq!(worker.run_once().await.unwrap(), WorkerStats::default());

    assert!(seen.lock().unwrap().is_empty());
    let dead = pipeline
        .dead_letters
        .receive(10, Duration::from_secs(2))
        .await
        .unwrap();
    match dead.as_slice() {
        [Message::Malformed(malformed)] => {
            assert_eq!(
                malformed.reason,
                "not an EventBridge envelope: missing field `source` at line 1 column 37"
            );
        }
        other => panic!("expected the malformed message in the dead-letter queue, got {other:?}"),
    }
}

#[tokio::test]
async fn shopify_eventbridge_delivery_is_handled_as_our_event() {
    let pipeline = Pipeline::create(Duration::from_secs(1), 2).await;
    pipeline.send_raw(SHOPIFY_ORDERS_CREATE).await;
    let (handler, seen) = recording(None);
    let worker = Worker::new(pipeline.queue.clone(), handler).with_config(config());

    assert_eq!(worker.run_once().await.unwrap(), stats(1, 1, 0, 0, 0));

    let seen = seen.lock().unwrap().clone();
    let [event] = seen.as_slice() else {
        panic!("expected one event, got {seen:?}");
    };
    assert_eq!(
        (
            event.source.as_str(),
            event.detail_type.as_str(),
            event.detail.shop.as_str()
        ),
        (
            "ordernimbus.webhooks",
            "orders/create",
            "acme-outfitters.myshopify.com"
        )
    );
    assert_eq!(
        event.detail.webhook_id,
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
    );
    assert_eq!(
        event.detail.event_id.as_deref(),
        Some("98880550-7158-44d4-b7cd-2c97c8a091b5")
    );
    assert_eq!(event.detail.api_version, "2026-01");
    assert_eq!(
        event
            .detail
            .triggered_at
            .map(|time| time.to_rfc3339())
            .as_deref(),
        Some("2026-03-02T10:15:29.123456789+00:00")
    );
    let payload = event.detail.payload.as_ref().unwrap();
    assert_eq!(payload["id"], json!(820_982_911_946_154_508_u64));
    assert_eq!(payload["line_items"][0]["sku"], "TEE-BLK-M");
    assert!(!event.detail.payload_by_reference);
}

#[tokio::test]
async fn a_long_handler_keeps_its_message_hidden_from_other_consumers() {
    let pipeline = Pipeline::create(Duration::from_secs(1), 5).await;
    pipeline.bus.publish(&[order_event(1, 50)]).await.unwrap();
    // Takes 3 visibility timeouts; the worker extends visibility every 400 ms.
    let handler = |_event: Event| -> HandlerFuture {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok(())
        })
    };
    let worker = Worker::new(pipeline.queue.clone(), handler).with_config(WorkerConfig {
        visibility: Duration::from_secs(1),
        extend_every: Duration::from_millis(400),
        ..config()
    });

    let other_consumer = async {
        // Let the worker receive first, then poll for as long as its handler runs.
        tokio::time::sleep(Duration::from_millis(500)).await;
        pipeline
            .queue
            .receive(10, Duration::from_secs(2))
            .await
            .unwrap()
    };
    let (stats_once, stolen) = tokio::join!(worker.run_once(), other_consumer);

    assert_eq!(stats_once.unwrap(), stats(1, 1, 0, 0, 0));
    assert!(stolen.is_empty(), "another consumer received {stolen:?}");
}

#[tokio::test]
async fn run_stops_at_shutdown_after_finishing_its_batch() {
    let pipeline = Pipeline::create(Duration::from_secs(1), 2).await;
    pipeline
        .bus
        .publish(&[order_event(1, 50), order_event(2, 50)])
        .await
        .unwrap();
    let (handled_tx, handled_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let handler = move |_event: Event| -> HandlerFuture {
        let handled_tx = handled_tx.clone();
        Box::pin(async move {
            let _ = handled_tx.send(());
            Ok(())
        })
    };
    let worker = Worker::new(pipeline.queue.clone(), handler).with_config(config());

    // Shut down once both events were handled.
    let shutdown = async move {
        let mut handled_rx = handled_rx;
        for _ in 0..2 {
            handled_rx.recv().await;
        }
    };
    let total = worker.run(shutdown).await.unwrap();

    assert_eq!((total.received, total.handled), (2, 2));
}
