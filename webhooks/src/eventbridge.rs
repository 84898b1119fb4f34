//! `EventBridgeBus`: the `EventBus` adapter for Amazon EventBridge (`PutEvents`).
//!
//! Events go out in requests of at most [`MAX_ENTRIES_PER_REQUEST`]. Entries that EventBridge fails
//! for a transient reason (throttling, internal failure) are sent again with jittered exponential
//! backoff a bounded number of times; whatever still fails is reported per event. An entry over
//! EventBridge's size limit is never sent: an inline payload is swapped for a reference to the
//! delivery log, and an entry still too large is rejected. SDK errors stop here: callers only see
//! [`BusError`].

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use ordernimbus_backend::bus::{BusError, Event, EventBus};
use rand::Rng;

/// Most entries EventBridge accepts in one `PutEvents` request.
pub const MAX_ENTRIES_PER_REQUEST: usize = 10;

/// EventBridge's limit on one entry (256 KB), counted as it counts: the UTF-8 bytes of `Source`,
/// `DetailType` and `Detail` (we set no `Time` and no `Resources`).
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;

/// How often and how patiently entries that failed for a transient reason are sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Further attempts after the first one.
    pub max_retries: u32,
    /// Backoff before the first retry; doubles on each further one.
    pub base_delay: Duration,
    /// Longest backoff between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (0-based): exponential, capped, with "equal jitter"
    /// (uniform in the upper half) so that publishers throttled together do not retry together.
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2_u32.saturating_pow(retry))
            .min(self.max_delay);
        let half = ceiling / 2;
        let jitter_nanos = rand::rng().random_range(0..=half.as_nanos().min(u128::from(u64::MAX)));
        let jitter = Duration::from_nanos(u64::try_from(jitter_nanos).unwrap_or(u64::MAX));
        half + jitter
    }
}

/// Publishes events to one EventBridge event bus; a rule on that bus routes them (to the SQS queue
/// read by `ordernimbus worker`, see [`crate::sqs`]).
#[derive(Debug, Clone)]
pub struct EventBridgeBus {
    client: Client,
    bus_name: String,
    retry: RetryPolicy,
}

impl EventBridgeBus {
    /// A bus publishing through `client` to the event bus named `bus_name` (a name or an ARN).
    pub fn new(client: Client, bus_name: String) -> Self {
        Self {
            client,
            bus_name,
            retry: RetryPolicy::default(),
        }
    }

    /// A bus configured by the standard AWS chain (environment, profile, instance or task role;
    /// `AWS_ENDPOINT_URL` points it elsewhere, e.g. at moto).
    pub async fn from_env(bus_name: String) -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::new(Client::new(&config), bus_name)
    }

    /// The same bus with another retry policy for entries that failed transiently.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The event bus this publishes to.
    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    fn entry(&self, prepared: &Prepared) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(&prepared.source)
            .detail_type(&prepared.detail_type)
            .detail(&prepared.detail)
            .build()
    }

    /// Sends `pending` (indices into `prepared`) in requests of at most ten and records every
    /// outcome that is final in `results`.
    async fn send_round(
        &self,
        prepared: &[Option<Prepared>],
        pending: &[usize],
        results: &mut [Option<Result<(), BusError>>],
    ) -> Round {
        let mut round = Round::default();
        for chunk in pending.chunks(MAX_ENTRIES_PER_REQUEST) {
            // `pending` only holds prepared events, so entries line up with `chunk`.
            let entries = chunk
                .iter()
                .filter_map(|&index| prepared[index].as_ref().map(|entry| self.entry(entry)))
                .collect::<Vec<_>>();
            let output = match self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
            {
                Ok(output) => output,
                Err(error) => {
                    // The SDK has already retried transient request failures (standard retry
                    // mode), so a failed request is final for this call.
                    let error = translate_request_error(&error);
                    tracing::warn!(bus = %self.bus_name, %error, n_events = chunk.len(), "PutEvents failed");
                    for &index in chunk {
                        results[index] = Some(Err(same_error(&error)));
                    }
                    round.request_error.get_or_insert(error);
                    continue;
                }
            };
            round.n_answered += 1;
            for (position, &index) in chunk.iter().enumerate() {
                let Some(entry) = output.entries().get(position) else {
                    results[index] = Some(Err(BusError::Unavailable(
                        "PutEvents answered without a result for this entry".to_owned(),
                    )));
                    continue;
                };
                let Some(code) = entry.error_code() else {
                    results[index] = Some(Ok(()));
                    continue;
                };
                let reason = format!("{code}: {}", entry.error_message().unwrap_or_default());
                match classify_error_code(code) {
                    ErrorClass::Transient => round.failed.push(index),
                    ErrorClass::Configuration => {
                        results[index] = Some(Err(BusError::Unavailable(reason)));
                    }
                    ErrorClass::Invalid => results[index] = Some(Err(BusError::Rejected(reason))),
                }
            }
        }
        round
    }
}

/// What one round of requests left to do.
#[derive(Default)]
struct Round {
    /// Entries EventBridge failed transiently: send again after a backoff.
    failed: Vec<usize>,
    /// Requests EventBridge answered.
    n_answered: usize,
    /// The first request that failed as a whole.
    request_error: Option<BusError>,
}

#[async_trait]
impl EventBus for EventBridgeBus {
    async fn publish(&self, events: &[Event]) -> Result<Vec<Result<(), BusError>>, BusError> {
        let mut results: Vec<Option<Result<(), BusError>>> = Vec::with_capacity(events.len());
        let mut prepared = Vec::with_capacity(events.len());
        let mut pending = Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            match prepare(event) {
                Ok(entry) => {
                    if entry.by_reference {
                        tracing::info!(
                            webhook_id = %event.detail.webhook_id,
                            topic = %event.detail_type,
                            "event over EventBridge's size limit: publishing its payload by reference"
                        );
                    }
                    prepared.push(Some(entry));
                    results.push(None);
                    pending.push(index);
                }
                Err(error) => {
                    tracing::warn!(webhook_id = %event.detail.webhook_id, %error, "event not published");
                    prepared.push(None);
                    results.push(Some(Err(error)));
                }
            }
        }
        let all_sent = pending.len() == events.len();

        let mut n_answered = 0;
        let mut first_request_error = None;
        let mut retry = 0;
        while !pending.is_empty() {
            let round = self.send_round(&prepared, &pending, &mut results).await;
            n_answered += round.n_answered;
            if let Some(error) = round.request_error {
                first_request_error.get_or_insert(error);
            }
            if round.failed.is_empty() {
                break;
            }
            if retry >= self.retry.max_retries {
                tracing::warn!(
                    n_events = round.failed.len(),
                    attempts = retry + 1,
                    "EventBridge kept failing entries"
                );
                for &index in &round.failed {
                    results[index] = Some(Err(BusError::Unavailable(format!(
                        "EventBridge still throttling or failing the entry after {} attempts",
                        retry + 1
                    ))));
                }
                break;
            }
            tokio::time::sleep(self.retry.delay(retry)).await;
            retry += 1;
            pending = round.failed;
        }

        // The batch as a whole failed only when every event was sent and no request got through.
        if all_sent
            && n_answered == 0
            && let Some(error) = first_request_error
        {
            return Err(error);
        }
        Ok(results
            .into_iter()
            .map(|result| {
                // Every index is either refused before sending or given an outcome by a round.
                result.unwrap_or_else(|| {
                    Err(BusError::Unavailable(
                        "event left without an outcome".to_owned(),
                    ))
                })
            })
            .collect())
    }
}

/// One event as EventBridge will see it.
#[derive(Debug, Clone, PartialEq)]
struct Prepared {
    source: String,
    detail_type: String,
    detail: String,
    /// Whether the payload was taken out to fit the size limit.
    by_reference: bool,
}

impl Prepared {
    fn size_bytes(&self) -> usize {
        entry_size_bytes(&self.source, &self.detail_type, &self.detail)
    }
}

/// The size EventBridge counts for an entry with these fields and no `Time` or `Resources`.
pub fn entry_size_bytes(source: &str, detail_type: &str, detail: &str) -> usize {
    source.len() + detail_type.len() + detail.len()
}

/// Serialises `event` for `PutEvents`, moving an inline payload out when the entry would exceed
/// [`MAX_ENTRY_BYTES`].
fn prepare(event: &Event) -> Result<Prepared, BusError> {
    let serialize = |detail| {
        serde_json::to_string(detail).map_err(|error| {
            BusError::Rejected(format!("event detail is not serialisable: {error}"))
        })
    };
    let mut prepared = Prepared {
        source: event.source.clone(),
        detail_type: event.detail_type.clone(),
        detail: serialize(&event.detail)?,
        by_reference: false,
    };
    if prepared.size_bytes() <= MAX_ENTRY_BYTES {
        return Ok(prepared);
    }
    if event.detail.payload.is_some() {
        let mut detail = event.detail.clone();
        detail.payload = None;
        detail.payload_by_reference = true;
        prepared.detail = serialize(&detail)?;
        prepared.by_reference = true;
        if prepared.size_bytes() <= MAX_ENTRY_BYTES {
            return Ok(prepared);
        }
    }
    Err(BusError::Rejected(format!(
        "event of {} bytes exceeds EventBridge's {MAX_ENTRY_BYTES}-byte limit even without its payload",
        prepared.size_bytes()
    )))
}

/// How an EventBridge error code is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorClass {
    /// Passing: try the entry again after a backoff, then report it `Unavailable`.
    Transient,
    /// Our setup, not the event (permissions, a missing bus, an unknown code): `Unavailable` at
    /// once, so nothing is dead-lettered while an operator fixes it.
    Configuration,
    /// The event itself is wrong: `Rejected`, never retried.
    Invalid,
}

fn classify_error_code(code: &str) -> ErrorClass {
    match code {
        "ThrottlingException"
        | "InternalFailure"
        | "InternalException"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "RequestTimeout"
        | "RequestTimeoutException" => ErrorClass::Transient,
        "InvalidArgument"
        | "MalformedDetail"
        | "ValidationException"
        | "InvalidAccountIdException"
        | "RedactionFailure"
        | "RequestEntityTooLarge"
        | "SerializationException" => ErrorClass::Invalid,
        _ => ErrorClass::Configuration,
    }
}

/// Translates a failed `PutEvents` request into a [`BusError`].
fn translate_request_error<E, R>(error: &SdkError<E, R>) -> BusError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let described = DisplayErrorContext(error).to_string();
    match error {
        SdkError::ServiceError(context) => match context.err().code() {
            Some(code) if classify_error_code(code) == ErrorClass::Invalid => {
                BusError::Rejected(described)
            }
            _ => BusError::Unavailable(described),
        },
        // Timeouts, connection failures, unreadable responses, and requests the SDK could not build.
        _ => BusError::Unavailable(described),
    }
}

/// A copy of `error` (`BusError` is not `Clone`): one failed request fails each of its events.
fn same_error(error: &BusError) -> BusError {
    match error {
        BusError::Unavailable(reason) => BusError::Unavailable(reason.clone()),
        BusError::Rejected(reason) => BusError::Rejected(reason.clone()),
    }
}

#[cfg(test)]
mod tests {
    use ordernimbus_backend::bus::{EventDetail, WEBHOOK_SOURCE};
    use serde_json::json;

    use super::*;

    fn event(payload: Option<serde_json::Value>, shop: &str) -> Event {
        Event {
            source: WEBHOOK_SOURCE.to_owned(),
            detail_type: "orders/create".to_owned(),
            detail: EventDetail {
                shop: shop.to_owned(),
                webhook_id: "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".to_owned(),
                event_id: None,
                triggered_at: None,
                api_version: "2026-01".to_owned(),
                payload_by_reference: payload.is_none(),
                payload,
            },
        }
    }

    #[track_caller]
    fn check_prepare(event: &Event, expected: &str) {
        let got = match prepare(event) {
            Ok(prepared) if prepared.by_reference => {
                let detail: EventDetail = serde_json::from_str(&prepared.detail).unwrap();
                format!(
                    "by reference (payload {:?}, flag {})",
                    detail.payload, detail.payload_by_reference
                )
            }
            Ok(prepared) => format!("inline, {} bytes", prepared.size_bytes()),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn a_small_event_is_sent_as_it_is() {
        let small = event(Some(json!({"id": 1})), "acme.myshopify.com");
        let expected_size = WEBHOOK_SOURCE.len()
            + "orders/create".len()
            + serde_json::to_string(&small.detail).unwrap().len();
        check_prepare(&small, &format!("inline, {expected_size} bytes"));
    }

    #[test]
    fn an_event_over_the_limit_sends_its_payload_by_reference() {
        let large = event(
            Some(json!({"note": "x".repeat(MAX_ENTRY_BYTES)})),
            "acme.myshopify.com",
        );
        check_prepare(&large, "by reference (payload None, flag true)");
    }

    #[test]
    fn an_event_exactly_at_the_limit_stays_inline() {
        let mut exact = event(Some(json!({"note": ""})), "acme.myshopify.com");
        let overhead = prepare(&exact).unwrap().size_bytes();
        exact.detail.payload = Some(json!({"note": "x".repeat(MAX_ENTRY_BYTES - overhead)}));
        check_prepare(&exact, &format!("inline, {MAX_ENTRY_BYTES} bytes"));
    }

    #[test]
    fn an_event_too_large_without_its_payload_is_rejected() {
        let absurd = event(None, &"a".repeat(MAX_ENTRY_BYTES));
        let size = prepare(&event(None, "")).unwrap().size_bytes() + MAX_ENTRY_BYTES;
        check_prepare(
            &absurd,
            &format!(
                "event bus refused the event: event of {size} bytes exceeds EventBridge's 262144-byte limit even without its payload"
            ),
        );
    }

    #[test]
    fn error_codes_are_transient_invalid_or_about_our_setup() {
        for (code, expected) in [
            ("ThrottlingException", ErrorClass::Transient),
            ("InternalFailure", ErrorClass::Transient),
            ("MalformedDetail", ErrorClass::Invalid),
            ("InvalidArgument", ErrorClass::Invalid),
            ("ValidationException", ErrorClass::Invalid),
            ("AccessDeniedException", ErrorClass::Configuration),
            ("NotAuthorizedForSourceException", ErrorClass::Configuration),
            ("ResourceNotFoundException", ErrorClass::Configuration),
            ("SomethingNew", ErrorClass::Configuration),
        ] {
            assert_eq!(classify_error_code(code), expected, "{code}");
        }
    }

    #[test]
    fn backoff_doubles_within_its_cap_and_jitters_in_the_upper_half() {
        let policy = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for (retry, ceiling_ms) in [
            (0, 100),
            (1, 200),
            (2, 400),
            (3, 800),
            (4, 1000),
            (30, 1000),
        ] {
            for _ in 0..50 {
                let delay = policy.delay(retry);
                let ceiling = Duration::from_millis(ceiling_ms);
                assert!(
                    delay >= ceiling / 2 && delay <= ceiling,
                    "retry {retry}: {delay:?} outside [{:?}, {ceiling:?}]",
                    ceiling / 2
                );
            }
        }
    }
}
