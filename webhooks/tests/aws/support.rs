//! Moto's endpoint, SDK clients, and a pipeline (bus → rule → queue → dead-letter queue) per test.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{TimeZone, Utc};
use ordernimbus_backend::bus::{Event, EventDetail, WEBHOOK_SOURCE};
use ordernimbus_webhooks::eventbridge::EventBridgeBus;
use ordernimbus_webhooks::sqs::{Message, Received, SqsQueue};
use serde_json::json;

const HOW_TO_START: &str = "start moto and export its endpoint with `eval \"$(scripts/moto.sh)\"` \
    (or run scripts/test.sh, which does it); see docs in scripts/moto.sh";

/// SDK configuration for moto at `AWS_ENDPOINT_URL`; panics, saying how to start moto, when it is
/// unset or not answering.
pub async fn moto() -> SdkConfig {
    #[allow(
        clippy::disallowed_methods,
        reason = "the tests find moto through the same variable the SDK reads"
    )]
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .unwrap_or_else(|_| panic!("AWS_ENDPOINT_URL is not set: {HOW_TO_START}"));
    let config = sdk_config(&endpoint).await;
    if let Err(error) = aws_sdk_sqs::Client::new(&config).list_queues().send().await {
        panic!(
            "moto is not answering at {endpoint} ({}): {HOW_TO_START}",
            DisplayErrorContext(&error)
        );
    }
    config
}

/// SDK configuration for `endpoint` with moto's region and static test credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// A bus whose rule (`source` = `ordernimbus.webhooks`) targets a queue with a dead-letter queue.
pub struct Pipeline {
    pub bus: EventBridgeBus,
    pub queue: SqsQueue,
    pub dead_letters: SqsQueue,
    pub sqs: aws_sdk_sqs::Client,
}

impl Pipeline {
    /// Creates the bus, both queues, the rule and its target. The queue hides a received message
    /// for `visibility` and dead-letters it on the receive after the `max_receive_count`th.
    pub async fn create(visibility: Duration, max_receive_count: u32) -> Self {
        let config = moto().await;
        let events = aws_sdk_eventbridge::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);

        let bus_name = unique("ordernimbus-bus");
        events
            .create_event_bus()
            .name(&bus_name)
            .send()
            .await
            .unwrap();

        let dead_letter_url = create_queue(&sqs, &unique("ordernimbus-dlq"), &[]).await;
        let dead_letter_arn = queue_arn(&sqs, &dead_letter_url).await;
        let redrive = json!({
            "deadLetterTargetArn": dead_letter_arn,
            "maxReceiveCount": max_receive_count.to_string(),
        });
        let queue_url = create_queue(
            &sqs,
            &unique("ordernimbus-events"),
            &[
                (
                    QueueAttributeName::VisibilityTimeout,
                    visibility.as_secs().to_string(),
                ),
                (QueueAttributeName::RedrivePolicy, redrive.to_string()),
            ],
        )
        .await;

        let rule = unique("ordernimbus-webhooks");
        events
            .put_rule()
            .name(&rule)
            .event_bus_name(&bus_name)
            .event_pattern(json!({"source": [WEBHOOK_SOURCE]}).to_string())
            .send()
            .await
            .unwrap();
        let target = Target::builder()
            .id("worker-queue")
            .arn(queue_arn(&sqs, &queue_url).await)
            .build()
            .unwrap();
        let put = events
            .put_targets()
            .rule(&rule)
            .event_bus_name(&bus_name)
            .targets(target)
            .send()
            .await
            .unwrap();
        assert_eq!(put.failed_entry_count(), 0, "{put:?}");

        Self {
            bus: EventBridgeBus::new(events, bus_name),
            queue: SqsQueue::new(sqs.clone(), queue_url),
            dead_letters: SqsQueue::new(sqs.clone(), dead_letter_url),
            sqs,
        }
    }

    /// Puts `body` on the queue directly, as EventBridge (or anything else) would.
    pub async fn send_raw(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(self.queue.queue_url())
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
}

async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> String {
    let mut request = sqs.create_queue().queue_name(name);
    for (name, value) in attributes {
        request = request.attributes(name.clone(), value);
    }
    request
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|attributes| attributes.get(&QueueAttributeName::QueueArn))
        .unwrap()
        .clone()
}

/// Receives until `n` events arrived (deleting each) or a poll comes back empty.
pub async fn drain(queue: &SqsQueue, n: usize) -> Vec<Received> {
    let mut received = Vec::new();
    while received.len() < n {
        let batch = queue.receive(10, Duration::from_secs(2)).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for message in batch {
            match message {
                Message::Event(event) => {
                    queue.delete(&event).await.unwrap();
                    received.push(event);
                }
                Message::Malformed(malformed) => panic!("malformed message: {malformed:?}"),
            }
        }
    }
    received
}

/// An `orders/create` event for delivery number `n`, inline payload of ~`payload_bytes`.
pub fn order_event(n: usize, payload_bytes: usize) -> Event {
    Event {
        source: WEBHOOK_SOURCE.to_owned(),
        detail_type: if n.is_multiple_of(3) {
            "orders/updated"
        } else {
            "orders/create"
        }
        .to_owned(),
        detail: EventDetail {
            shop: format!("shop-{}.myshopify.com", n % 4),
            webhook_id: format!("webhook-{n:04}"),
            event_id: n.is_multiple_of(2).then(|| format!("event-{n}")),
            triggered_at: (!n.is_multiple_of(2))
                .then(|| Utc.with_ymd_and_hms(2026, 3, 2, 10, 15, 29).unwrap()),
            api_version: "2026-01".to_owned(),
            payload: Some(json!({
                "id": 820_982_911_946_154_508_u64 + n as u64,
                "note": "x".repeat(payload_bytes),
                "line_items": [{"sku": "TEE-BLK-M", "quantity": 2, "price": "19.90"}],
            })),
            payload_by_reference: false,
        },
    }
}

/// The same events, ordered by webhook id (SQS keeps no order).
pub fn by_webhook_id(mut events: Vec<Event>) -> Vec<Event> {
    events.sort_by(|left, right| left.detail.webhook_id.cmp(&right.detail.webhook_id));
    events
}
