//! `EventBridgeBus`: PutEvents through a rule into SQS.

use std::time::Duration;

use ordernimbus_backend::bus::{EventBus, MAX_INLINE_PAYLOAD_BYTES};
use ordernimbus_webhooks::eventbridge::{EventBridgeBus, MAX_ENTRY_BYTES, RetryPolicy};

use crate::support::{Pipeline, by_webhook_id, drain, order_event, sdk_config, unique};

#[tokio::test]
async fn events_published_in_batches_over_ten_reach_the_queue_unchanged() {
    let pipeline = Pipeline::create(Duration::from_secs(30), 5).await;
    let events = (0..23).map(|n| order_event(n, 100)).collect::<Vec<_>>();

    let results = pipeline.bus.publish(&events).await.unwrap();

    assert_eq!(results.len(), 23);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let received = drain(&pipeline.queue, 23).await;
    let received = received.into_iter().map(|message| message.event).collect();
    assert_eq!(by_webhook_id(received), by_webhook_id(events));
}

#[tokio::test]
async fn an_oversize_payload_arrives_by_reference_and_its_neighbours_inline() {
    let pipeline = Pipeline::create(Duration::from_secs(30), 5).await;
    // Built by hand: `Event::for_delivery` would already have chosen a reference at 200 KB.
    let oversize = order_event(1, MAX_ENTRY_BYTES);
    let small = order_event(2, 100);
    let just_under_inline_limit = order_event(3, MAX_INLINE_PAYLOAD_BYTES);

    let results = pipeline
        .bus
        .publish(&[
            oversize.clone(),
            small.clone(),
            just_under_inline_limit.clone(),
        ])
        .await
        .unwrap();

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let mut expected_oversize = oversize;
    expected_oversize.detail.payload = None;
    expected_oversize.detail.payload_by_reference = true;
    let received = drain(&pipeline.queue, 3).await;
    let received = received.into_iter().map(|message| message.event).collect();
    assert_eq!(
        by_webhook_id(received),
        vec![expected_oversize, small, just_under_inline_limit]
    );
}

#[tokio::test]
async fn publishing_nothing_sends_nothing() {
    let pipeline = Pipeline::create(Duration::from_secs(30), 5).await;
    assert!(pipeline.bus.publish(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_bus_that_does_not_exist_is_unavailable_not_rejected() {
    let pipeline = Pipeline::create(Duration::from_secs(30), 5).await;
    let client = aws_sdk_eventbridge::Client::new(&crate::support::moto().await);
    let missing = EventBridgeBus::new(client, unique("no-such-bus"));

    // A configuration mistake must not dead-letter deliveries: either the whole batch or every
    // event fails as retryable.
    match missing
        .publish(&[order_event(1, 10), order_event(2, 10)])
        .await
    {
        Err(error) => assert!(error.is_retryable(), "{error}"),
        Ok(results) => {
            for result in results {
                let error = result.expect_err("published to a bus that does not exist");
                assert!(error.is_retryable(), "{error}");
            }
        }
    }
    assert!(drain(&pipeline.queue, 1).await.is_empty());
}

#[tokio::test]
async fn an_unreachable_endpoint_fails_the_whole_batch_as_unavailable() {
    // Port 1 on loopback refuses connections.
    let config = sdk_config("http://127.0.0.1:1").await;
    let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&config), unique("bus"))
        .with_retry(RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        });

    let error = bus.publish(&[order_event(1, 10)]).await.unwrap_err();

    assert!(error.is_retryable(), "{error}");
}
