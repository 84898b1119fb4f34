//! The cloud consumer's source: `SqsQueue` reads the SQS queue an EventBridge rule targets, and
//! `Worker` runs a handler on each event with at-least-once semantics.
//!
//! Messages are EventBridge envelopes (`{"version","id","detail-type","source","account","time",
//! "region","resources","detail"}`) of two kinds: ours (`source` `ordernimbus.webhooks`, `detail` an
//! [`EventDetail`]) and Shopify's own EventBridge deliveries (`detail-type` `shopifyWebhook`,
//! `detail.payload` the body, `detail.metadata` the `X-Shopify-*` headers), which become the same
//! [`Event`]. A body that is neither is a [`Malformed`] message.
//!
//! The worker's rule, per message:
//! - handled: deleted;
//! - retryable failure: left alone; SQS delivers it again once its visibility timeout expires,
//!   and after the queue's `maxReceiveCount` its redrive policy moves it to the dead-letter queue;
//! - permanent failure or malformed body: logged, never deleted, and made visible again at once so
//!   that it reaches the dead-letter queue after `maxReceiveCount` quick receives instead of
//!   `maxReceiveCount` timeouts. Nothing is dropped: the dead-letter queue holds it for an operator.
//!
//! While a handler runs, the worker extends its message's visibility every
//! [`WorkerConfig::extend_every`], so a long handler is not raced by a second delivery.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use chrono::{DateTime, Utc};
use futures_util::future::{BoxFuture, join_all};
use ordernimbus_backend::bus::{Event, EventDetail, WEBHOOK_SOURCE};
use serde::Deserialize;
use serde_json::Value;
use tokio::task::JoinHandle;

/// `detail-type` of the events Shopify delivers to an EventBridge partner event source.
pub const SHOPIFY_DETAIL_TYPE: &str = "shopifyWebhook";

/// Most messages one `ReceiveMessage` returns.
pub const MAX_RECEIVE_BATCH: i32 = 10;

/// Longest long poll SQS allows.
pub const MAX_WAIT: Duration = Duration::from_secs(20);

/// Failures of the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// SQS could not be reached, timed out or throttled us: try again later.
    #[error("SQS {operation} failed, try again later: {reason}")]
    Unavailable {
        /// The SQS operation (`ReceiveMessage`, …).
        operation: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// SQS refused the request for good: no such queue, no permission, an expired receipt.
    #[error("SQS refused {operation}: {reason}")]
    Refused {
        /// The SQS operation.
        operation: &'static str,
        /// What SQS said.
        reason: String,
    },
}

impl QueueError {
    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

/// The handle that deletes a received message or changes its visibility; valid for one receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt(String);

impl AsRef<Receipt> for Receipt {
    fn as_ref(&self) -> &Receipt {
        self
    }
}

/// A message whose body is an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The event, ours or mapped from Shopify's EventBridge delivery.
    pub event: Event,
    /// SQS's message id (the same on every delivery of the message).
    pub message_id: String,
    /// `ApproximateReceiveCount`: 1 on the first delivery.
    pub receive_count: u32,
    receipt: Receipt,
}

impl AsRef<Receipt> for Received {
    fn as_ref(&self) -> &Receipt {
        &self.receipt
    }
}

/// A message whose body is not an event we understand; it belongs in the dead-letter queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    /// SQS's message id.
    pub message_id: String,
    /// `ApproximateReceiveCount`.
    pub receive_count: u32,
    /// Why the body was refused (never the body itself: it may hold customers' data).
    pub reason: String,
    receipt: Receipt,
}

impl AsRef<Receipt> for Malformed {
    fn as_ref(&self) -> &Receipt {
        &self.receipt
    }
}

/// One received message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// An event to handle.
    Event(Received),
    /// A body that is not an event.
    Malformed(Malformed),
}

/// An SQS queue carrying EventBridge events.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    /// The queue at `queue_url`, read through `client`.
    pub fn new(client: Client, queue_url: String) -> Self {
        Self { client, queue_url }
    }

    /// The queue at `queue_url` with a client configured by the standard AWS chain
    /// (`AWS_ENDPOINT_URL` points it elsewhere, e.g. at moto).
    pub async fn from_env(queue_url: String) -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(Client::new(&config), queue_url)
    }

    /// The queue's URL.
    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// Receives up to `max` messages (1 to 10), waiting up to `wait` (whole seconds, at most 20)
    /// for the first.
    ///
    /// # Errors
    /// When SQS cannot be reached or refuses the request; a body we cannot parse is not an error
    /// but a [`Message::Malformed`].
    pub async fn receive(&self, max: i32, wait: Duration) -> Result<Vec<Message>, QueueError> {
        let wait_seconds = i32::try_from(wait.min(MAX_WAIT).as_secs()).unwrap_or(20);
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max.clamp(1, MAX_RECEIVE_BATCH))
            .wait_time_seconds(wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|error| translate("ReceiveMessage", &error))?;
        let mut messages = Vec::with_capacity(output.messages().len());
        for message in output.messages() {
            let (Some(message_id), Some(receipt)) =
                (message.message_id(), message.receipt_handle())
            else {
                tracing::warn!("SQS returned a message without an id or receipt handle; skipped");
                continue;
            };
            let receive_count = message
                .attributes()
                .and_then(|attributes| {
                    attributes.get(&MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .and_then(|count| count.parse().ok())
                .unwrap_or(1);
            let receipt = Receipt(receipt.to_owned());
            let message_id = message_id.to_owned();
            messages.push(match parse_body(message.body().unwrap_or_default()) {
                Ok(event) => Message::Event(Received {
                    event,
                    message_id,
                    receive_count,
                    receipt,
                }),
                Err(reason) => Message::Malformed(Malformed {
                    message_id,
                    receive_count,
                    reason,
                    receipt,
                }),
            });
        }
        Ok(messages)
    }

    /// Deletes a received message: it has been handled.
    ///
    /// # Errors
    /// When SQS cannot be reached or refuses (the message then comes back; consumers dedupe).
    pub async fn delete(&self, message: &impl AsRef<Receipt>) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(&message.as_ref().0)
            .send()
            .await
            .map_err(|error| translate("DeleteMessage", &error))?;
        Ok(())
    }

    /// Keeps a received message hidden from other consumers for `visibility` from now.
    ///
    /// # Errors
    /// When SQS cannot be reached, or refuses (the receipt is stale or the message was deleted).
    pub async fn extend_visibility(
        &self,
        message: &impl AsRef<Receipt>,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        let seconds = i32::try_from(visibility.as_secs()).unwrap_or(i32::MAX);
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(&message.as_ref().0)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|error| translate("ChangeMessageVisibility", &error))?;
        Ok(())
    }

    /// Makes a received message visible again at once (its receive count still grows).
    ///
    /// # Errors
    /// As [`SqsQueue::extend_visibility`].
    pub async fn release(&self, message: &impl AsRef<Receipt>) -> Result<(), QueueError> {
        self.extend_visibility(message, Duration::ZERO).await
    }
}

/// Translates an SQS SDK failure: a server-side or throttling error is passing, any other answer
/// from SQS is a refusal, and everything that never got an answer is passing.
fn translate<E>(operation: &'static str, error: &SdkError<E>) -> QueueError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let reason = DisplayErrorContext(error).to_string();
    match error {
        SdkError::ServiceError(context) => {
            let throttled = context.err().code().is_some_and(|code| {
                code.contains("Throttl") || code == "RequestThrottled" || code == "KmsThrottled"
            });
            if throttled || context.raw().status().is_server_error() {
                QueueError::Unavailable { operation, reason }
            } else {
                QueueError::Refused { operation, reason }
            }
        }
        _ => QueueError::Unavailable { operation, reason },
    }
}

/// The EventBridge envelope, as an SQS target receives it (moto leaves out `account`).
#[derive(Deserialize)]
struct Envelope {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: Value,
}

/// `detail` of Shopify's EventBridge delivery.
#[derive(Deserialize)]
struct ShopifyDetail {
    payload: Option<Value>,
    metadata: HashMap<String, Value>,
}

/// Parses a message body into an [`Event`]; the error says why it is not one.
pub fn parse_body(body: &str) -> Result<Event, String> {
    let envelope: Envelope = serde_json::from_str(body)
        .map_err(|error| format!("not an EventBridge envelope: {error}"))?;
    if envelope.detail_type == SHOPIFY_DETAIL_TYPE {
        return shopify_event(envelope.detail);
    }
    let detail: EventDetail = serde_json::from_value(envelope.detail)
        .map_err(|error| format!("detail of {}: {error}", envelope.detail_type))?;
    Ok(Event {
        source: envelope.source,
        detail_type: envelope.detail_type,
        detail,
    })
}

/// Maps Shopify's EventBridge delivery to our event: the topic and identity come from the
/// `X-Shopify-*` headers in `metadata` (names compared case-insensitively), the body is inline.
fn shopify_event(detail: Value) -> Result<Event, String> {
    let detail: ShopifyDetail = serde_json::from_value(detail)
        .map_err(|error| format!("detail of {SHOPIFY_DETAIL_TYPE}: {error}"))?;
    let headers = detail
        .metadata
        .into_iter()
        .filter_map(|(name, value)| {
            let value = match value {
                Value::String(text) => text,
                Value::Number(number) => number.to_string(),
                _ => return None,
            };
            Some((name.to_ascii_lowercase(), value))
        })
        .collect::<HashMap<_, _>>();
    let header = |name: &str| headers.get(name).filter(|value| !value.is_empty()).cloned();
    let required = |name: &'static str| {
        header(name).ok_or_else(|| format!("{SHOPIFY_DETAIL_TYPE} without metadata {name}"))
    };
    let topic = required("x-shopify-topic")?;
    let shop = required("x-shopify-shop-domain")?;
    let webhook_id = required("x-shopify-webhook-id")?;
    let api_version = required("x-shopify-api-version")?;
    // Shopify's EventBridge events are not in our delivery log, so there is nothing to refer to.
    let payload = detail
        .payload
        .ok_or_else(|| format!("{SHOPIFY_DETAIL_TYPE} without a payload"))?;
    let triggered_at = header("x-shopify-triggered-at").and_then(|text| {
        DateTime::parse_from_rfc3339(&text)
            .ok()
            .map(|time| time.with_timezone(&Utc))
    });
    Ok(Event {
        source: WEBHOOK_SOURCE.to_owned(),
        detail_type: topic,
        detail: EventDetail {
            shop,
            webhook_id,
            event_id: header("x-shopify-event-id"),
            triggered_at,
            api_version,
            payload: Some(payload),
            payload_by_reference: false,
        },
    })
}

/// A handler's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// Whether handling the same event again later may succeed.
    pub retryable: bool,
    /// What went wrong (logged; no customers' data).
    pub message: String,
}

impl HandlerError {
    /// A failure that may pass (a store that is down, a throttled API).
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            message: message.into(),
        }
    }

    /// A failure that will not pass by retrying (an event the handler cannot accept).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            message: message.into(),
        }
    }
}

/// What a handler returns.
pub type HandlerFuture = BoxFuture<'static, Result<(), HandlerError>>;

/// How a [`Worker`] polls and how long it keeps messages hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Messages per receive, 1 to 10.
    pub batch_size: i32,
    /// Long-poll wait per receive, at most 20 s.
    pub wait: Duration,
    /// Visibility set on each extension while a handler runs; longer than `extend_every`.
    pub visibility: Duration,
    /// How often a running handler's message gets its visibility extended.
    pub extend_every: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch_size: MAX_RECEIVE_BATCH,
            wait: MAX_WAIT,
            visibility: Duration::from_secs(60),
            extend_every: Duration::from_secs(20),
        }
    }
}

/// What one [`Worker::run_once`] (or a whole [`Worker::run`]) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Messages received.
    pub received: usize,
    /// Events handled and their messages deleted.
    pub handled: usize,
    /// Events whose handler failed retryably: left for redelivery.
    pub retryable_failures: usize,
    /// Events whose handler failed permanently (or panicked): left for the dead-letter queue.
    pub permanent_failures: usize,
    /// Messages that were not events: left for the dead-letter queue.
    pub malformed: usize,
    /// Handled events whose delete failed: they will be delivered again (consumers dedupe).
    pub delete_failures: usize,
}

impl WorkerStats {
    fn add(&mut self, other: Self) {
        self.received += other.received;
        self.handled += other.handled;
        self.retryable_failures += other.retryable_failures;
        self.permanent_failures += other.permanent_failures;
        self.malformed += other.malformed;
        self.delete_failures += other.delete_failures;
    }
}

/// Runs a handler on every event of an [`SqsQueue`] (see the module docs for the rule).
pub struct Worker<H> {
    queue: SqsQueue,
    handler: H,
    config: WorkerConfig,
}

impl<H> Worker<H>
where
    H: Fn(Event) -> HandlerFuture + Send + Sync,
{
    /// A worker for `queue` with the default [`WorkerConfig`].
    pub fn new(queue: SqsQueue, handler: H) -> Self {
        Self {
            queue,
            handler,
            config: WorkerConfig::default(),
        }
    }

    /// The same worker with `config`.
    #[must_use]
    pub fn with_config(mut self, config: WorkerConfig) -> Self {
        self.config = config;
        self
    }

    /// Receives one batch (waiting up to [`WorkerConfig::wait`]) and handles it; its messages are
    /// handled concurrently.
    ///
    /// # Errors
    /// When the receive fails; failures of single messages are counted in the stats instead.
    pub async fn run_once(&self) -> Result<WorkerStats, QueueError> {
        let messages = self
            .queue
            .receive(self.config.batch_size, self.config.wait)
            .await?;
        Ok(self.process(messages).await)
    }

    /// Runs batches until `shutdown` completes; a batch already received is finished first.
    /// Passing receive failures are logged and retried with backoff.
    ///
    /// # Errors
    /// When SQS refuses to receive (no such queue, no permission): retrying will not help.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<WorkerStats, QueueError> {
        let mut total = WorkerStats::default();
        let mut backoff = Duration::from_secs(1);
        tokio::pin!(shutdown);
        loop {
            let received = tokio::select! {
                () = &mut shutdown => return Ok(total),
                received = self.queue.receive(self.config.batch_size, self.config.wait) => received,
            };
            match received {
                Ok(messages) => {
                    backoff = Duration::from_secs(1);
                    total.add(self.process(messages).await);
                }
                Err(error) if error.is_retryable() => {
                    tracing::warn!(%error, ?backoff, "receiving from SQS failed; retrying");
                    tokio::select! {
                        () = &mut shutdown => return Ok(total),
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn process(&self, messages: Vec<Message>) -> WorkerStats {
        let outcomes = join_all(
            messages
                .into_iter()
                .map(|message| self.process_one(message)),
        )
        .await;
        let mut stats = WorkerStats::default();
        for outcome in outcomes {
            stats.received += 1;
            match outcome {
                Outcome::Handled { deleted: true } => stats.handled += 1,
                Outcome::Handled { deleted: false } => {
                    stats.handled += 1;
                    stats.delete_failures += 1;
                }
                Outcome::Retryable => stats.retryable_failures += 1,
                Outcome::Permanent => stats.permanent_failures += 1,
                Outcome::Malformed => stats.malformed += 1,
            }
        }
        stats
    }

    async fn process_one(&self, message: Message) -> Outcome {
        let received = match message {
            Message::Event(received) => received,
            Message::Malformed(malformed) => {
                tracing::error!(
                    message_id = %malformed.message_id,
                    receive_count = malformed.receive_count,
                    reason = %malformed.reason,
                    "malformed message left for the dead-letter queue"
                );
                self.release(&malformed).await;
                return Outcome::Malformed;
            }
        };
        // Spawned so that a panicking handler fails its message, not the worker.
        let mut handler = AbortOnDrop(tokio::spawn((self.handler)(received.event.clone())));
        let result = tokio::select! {
            joined = &mut handler.0 => joined,
            never = self.keep_hidden(&received) => match never {},
        };
        let webhook_id = &received.event.detail.webhook_id;
        let topic = &received.event.detail_type;
        match result {
            Ok(Ok(())) => match self.queue.delete(&received).await {
                Ok(()) => Outcome::Handled { deleted: true },
                Err(error) => {
                    tracing::warn!(%webhook_id, %error, "handled event not deleted; it will come again");
                    Outcome::Handled { deleted: false }
                }
            },
            Ok(Err(error)) if error.retryable => {
                tracing::warn!(
                    %webhook_id, %topic, receive_count = received.receive_count, %error,
                    "handler failed; left for redelivery"
                );
                Outcome::Retryable
            }
            Ok(Err(error)) => {
                tracing::error!(
                    %webhook_id, %topic, receive_count = received.receive_count, %error,
                    "handler refused the event; left for the dead-letter queue"
                );
                self.release(&received).await;
                Outcome::Permanent
            }
            Err(join_error) => {
                tracing::error!(
                    %webhook_id, %topic, error = %join_error,
                    "handler panicked; left for the dead-letter queue"
                );
                self.release(&received).await;
                Outcome::Permanent
            }
        }
    }

    /// Extends the message's visibility every `extend_every`, for as long as it is polled.
    async fn keep_hidden(&self, received: &Received) -> Infallible {
        loop {
            tokio::time::sleep(self.config.extend_every).await;
            if let Err(error) = self
                .queue
                .extend_visibility(received, self.config.visibility)
                .await
            {
                tracing::warn!(message_id = %received.message_id, %error, "could not extend visibility");
            }
        }
    }

    /// Makes a message visible again so that it reaches the dead-letter queue sooner; should that
    /// fail, its visibility timeout does the same, later.
    async fn release(&self, message: &impl AsRef<Receipt>) {
        if let Err(error) = self.queue.release(message).await {
            tracing::warn!(%error, "could not release a message for the dead-letter queue");
        }
    }
}

/// How one message ended.
enum Outcome {
    Handled { deleted: bool },
    Retryable,
    Permanent,
    Malformed,
}

/// Aborts the spawned handler when processing is dropped (the worker's future cancelled).
struct AbortOnDrop(JoinHandle<Result<(), HandlerError>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SHOPIFY_ORDERS_CREATE: &str =
        include_str!("../tests/data/eventbridge-shopify-orders-create.json");

    /// Parses `body` and describes the event (or the refusal) in one line.
    #[track_caller]
    fn check(body: &Value, expected: &str) {
        let got = match parse_body(&body.to_string()) {
            Ok(event) => format!(
                "{} {} shop={} webhook={} event={:?} api={} at={:?} inline={} by_ref={}",
                event.source,
                event.detail_type,
                event.detail.shop,
                event.detail.webhook_id,
                event.detail.event_id,
                event.detail.api_version,
                event.detail.triggered_at.map(|time| time.to_rfc3339()),
                event.detail.payload.is_some(),
                event.detail.payload_by_reference,
            ),
            Err(reason) => reason,
        };
        assert_eq!(got, expected);
    }

    fn ours(detail: Value) -> Value {
        json!({
            "version": "0", "id": "1", "detail-type": "orders/create",
            "source": "ordernimbus.webhooks", "account": "123456789012",
            "time": "2026-03-02T10:15:30Z", "region": "us-east-1", "resources": [],
            "detail": detail,
        })
    }

    fn shopify() -> Value {
        serde_json::from_str(SHOPIFY_ORDERS_CREATE).unwrap()
    }

    fn shopify_without(header: &str) -> Value {
        let mut body = shopify();
        body["detail"]["metadata"]
            .as_object_mut()
            .unwrap()
            .remove(header);
        body
    }

    #[test]
    fn our_envelope_becomes_our_event() {
        check(
            &ours(json!({
                "shop": "acme.myshopify.com", "webhook_id": "w1", "api_version": "2026-01",
                "payload": {"id": 1},
            })),
            "ordernimbus.webhooks orders/create shop=acme.myshopify.com webhook=w1 event=None api=2026-01 at=None inline=true by_ref=false",
        );
    }

    #[test]
    fn our_envelope_without_account_as_moto_sends_it_is_accepted() {
        let mut body = ours(json!({
            "shop": "acme.myshopify.com", "webhook_id": "w1", "api_version": "2026-01",
            "payload_by_reference": true,
        }));
        body.as_object_mut().unwrap().remove("account");
        check(
            &body,
            "ordernimbus.webhooks orders/create shop=acme.myshopify.com webhook=w1 event=None api=2026-01 at=None inline=false by_ref=true",
        );
    }

    #[test]
    fn our_envelope_without_a_shop_is_malformed() {
        check(
            &ours(json!({"webhook_id": "w1", "api_version": "2026-01"})),
            "detail of orders/create: missing field `shop`",
        );
    }

    #[test]
    fn a_body_that_is_not_an_envelope_is_malformed() {
        check(
            &json!({"Message": "hello"}),
            "not an EventBridge envelope: missing field `source` at line 1 column 19",
        );
        assert_eq!(
            parse_body("not json").unwrap_err(),
            "not an EventBridge envelope: expected ident at line 1 column 2"
        );
    }

    #[test]
    fn shopify_eventbridge_delivery_becomes_our_event() {
        check(
            &shopify(),
            "ordernimbus.webhooks orders/create shop=acme-outfitters.myshopify.com webhook=b54557e4-bdd9-4b37-8a5f-bf7d70bcd043 event=Some(\"98880550-7158-44d4-b7cd-2c97c8a091b5\") api=2026-01 at=Some(\"2026-03-02T10:15:29.123456789+00:00\") inline=true by_ref=false",
        );
    }

    #[test]
    fn shopify_metadata_names_are_case_insensitive() {
        let mut body = shopify();
        let metadata = body["detail"]["metadata"].as_object_mut().unwrap();
        let topic = metadata.remove("X-Shopify-Topic").unwrap();
        metadata.insert("x-shopify-topic".to_owned(), topic);
        assert_eq!(
            parse_body(&body.to_string()).unwrap().detail_type,
            "orders/create"
        );
    }

    #[test]
    fn shopify_delivery_keeps_the_body_exactly() {
        let event = parse_body(SHOPIFY_ORDERS_CREATE).unwrap();
        assert_eq!(
            event.detail.payload,
            Some(shopify()["detail"]["payload"].clone())
        );
        assert_eq!(
            event.detail.payload.unwrap()["id"],
            json!(820_982_911_946_154_508_u64)
        );
    }

    #[test]
    fn shopify_delivery_without_required_headers_is_malformed() {
        for (header, expected) in [
            (
                "X-Shopify-Topic",
                "shopifyWebhook without metadata x-shopify-topic",
            ),
            (
                "X-Shopify-Shop-Domain",
                "shopifyWebhook without metadata x-shopify-shop-domain",
            ),
            (
                "X-Shopify-Webhook-Id",
                "shopifyWebhook without metadata x-shopify-webhook-id",
            ),
            (
                "X-Shopify-API-Version",
                "shopifyWebhook without metadata x-shopify-api-version",
            ),
        ] {
            check(&shopify_without(header), expected);
        }
    }

    #[test]
    fn shopify_delivery_without_optional_headers_is_accepted() {
        let mut body = shopify_without("X-Shopify-Event-Id");
        body["detail"]["metadata"]["X-Shopify-Triggered-At"] = json!("yesterday");
        let event = parse_body(&body.to_string()).unwrap();
        assert_eq!(
            (event.detail.event_id, event.detail.triggered_at),
            (None, None)
        );
    }

    #[test]
    fn shopify_delivery_without_a_payload_is_malformed() {
        let mut body = shopify();
        body["detail"].as_object_mut().unwrap().remove("payload");
        check(&body, "shopifyWebhook without a payload");
    }
}
