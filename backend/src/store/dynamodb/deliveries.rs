//! The webhook delivery log in DynamoDB.
//!
//! - `WH#{webhook id}` / `STATE`: identity, status, counters, headers and history (appended with
//!   `list_append`), and while an outbox publishes it, its claim (`claimed_by`, `claim_until`);
//!   listed by status through `GSI1` (`DST#{status}#{shard}`, by sequence) and by shop through
//!   `GSI2` (`DSHOP#{shop}`, by sequence);
//! - `WH#{webhook id}` / `BODY#{n}`: the raw body in chunks of at most 300 KB (a delivery may be
//!   larger than one item), written once (redaction aside), apart from the state that changes;
//! - on both, once the delivery is final (published, duplicate, dead) and the store has a
//!   [`DeliveryRetention`], `expires_at` (TTL, epoch seconds: receipt plus retention), set on all
//!   of them in one transaction conditioned on the state's status, and removed in one by a replay
//!   (which refuses an expired delivery). TTL deletes up to ~48 hours late, so reads treat an
//!   expired delivery as absent;
//! - `EVENT#{shop}␁{topic}␁{event id}` / `EVENT`: which webhook id stored an event first
//!   (dedupe of Shopify's duplicate deliveries); expires through TTL after two weeks;
//! - `SEQUENCE` / `DELIVERIES`: a counter that gives each process its tag once (see
//!   [`Sequencer`]); deliveries are numbered from the clock, so no item is written per delivery.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::{
    CONCURRENCY, Change, DynamoStore, GSI1, GSI2, Item, MAX_TRANSACTION_ITEMS, Query, SEP,
    TTL_ATTRIBUTE, Transaction, b, corrupt, n, number, optional_bytes, optional_number,
    optional_text, optional_time, parse_time, s, shard_of, text, time_text,
};
use crate::domain::{
    DeliveryFilter, DeliveryLease, DeliveryOutcome, DeliveryReceipt, DeliveryRecord,
    DeliveryRetention, DeliveryStatus, DeliveryStep, NewDelivery,
};
use crate::store::StoreError;

const STATE_SK: &str = "STATE";
/// Shards of each status listing in `GSI1`, so that a busy outbox spreads its writes.
const STATUS_SHARDS: u8 = 8;
/// Largest body chunk (items are limited to 400 KB).
const BODY_CHUNK_BYTES: usize = 300 * 1024;
/// How long an event's dedupe record is kept: Shopify retries a delivery for up to 48 hours.
const EVENT_DEDUPE_TTL: chrono::Duration = chrono::Duration::days(14);
/// Largest body replaced in one transaction with the state (transactions hold at most 4 MB).
const MAX_TRANSACTION_BODY_BYTES: usize = 3 * 1024 * 1024;
const ALL_STATUSES: [DeliveryStatus; 4] = [
    DeliveryStatus::Pending,
    DeliveryStatus::Published,
    DeliveryStatus::Duplicate,
    DeliveryStatus::Dead,
];

fn delivery_pk(webhook_id: &str) -> String {
    format!("WH#{webhook_id}")
}

fn body_sk(index: usize) -> String {
    format!("BODY#{index:04}")
}

fn status_pk(status: DeliveryStatus, webhook_id: &str) -> String {
    status_shard_pk(status, shard_of(webhook_id, STATUS_SHARDS))
}

fn status_shard_pk(status: DeliveryStatus, shard: u8) -> String {
    format!("DST#{}#{shard}", status.as_str())
}

fn shop_log_pk(shop: &str) -> String {
    format!("DSHOP#{shop}")
}

/// Sequence numbers as fixed-width text, so that text order is number order.
fn sequence_key(sequence: i64) -> String {
    format!("{:020}", sequence.max(0))
}

fn step(outcome: &str, detail: Option<&str>) -> AttributeValue {
    let mut step = HashMap::from([
        ("at".to_owned(), s(time_text(Utc::now()))),
        ("outcome".to_owned(), s(outcome)),
    ]);
    if let Some(detail) = detail {
        step.insert("detail".to_owned(), s(detail));
    }
    AttributeValue::M(step)
}

fn chunks(body: &[u8]) -> Vec<&[u8]> {
    if body.is_empty() {
        vec![body]
    } else {
        body.chunks(BODY_CHUNK_BYTES).collect()
    }
}

/// The body's items, expiring at `expires` (epoch seconds) when given.
fn body_items(pk: &str, body: &[u8], expires: Option<i64>) -> Vec<Item> {
    chunks(body)
        .into_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let mut item = HashMap::from([
                ("PK".to_owned(), s(pk)),
                ("SK".to_owned(), s(body_sk(index))),
                ("body".to_owned(), b(chunk.to_vec())),
            ]);
            if let Some(expires) = expires {
                item.insert(TTL_ATTRIBUTE.to_owned(), n(expires));
            }
            item
        })
        .collect()
}

/// Whether `item`'s TTL has passed at `now` (DynamoDB may not have deleted it yet).
fn expired(item: &Item, now: DateTime<Utc>) -> Result<bool, StoreError> {
    Ok(optional_number::<i64>(item, TTL_ATTRIBUTE)?.is_some_and(|at| at <= now.timestamp()))
}

/// When a delivery received at `received_at` expires once final (epoch seconds).
fn expiry(retention: DeliveryRetention, received_at: DateTime<Utc>) -> Option<i64> {
    retention
        .expires_at(received_at)
        .map(|expires| expires.timestamp())
}

/// Processes told apart in a sequence number (its lowest three decimal digits).
const PROCESS_TAGS: i64 = 1_000;

/// Numbers deliveries in the order they were stored without a hot item: a number is the store
/// time in microseconds, strictly increasing within the process, times [`PROCESS_TAGS`], plus the
/// process's tag, taken once from the `SEQUENCE` counter. One counter item written per delivery
/// would cap the whole deployment at DynamoDB's ~1,000 writes per second per key; this writes it
/// once per process. Numbers of two processes interleave by time; they collide only if two
/// processes whose tags are equal modulo 1,000 store a delivery in the same microsecond.
/// Numbers from the former per-delivery counter are small, so they sort before these.
#[derive(Debug, Default)]
pub(crate) struct Sequencer {
    tag: tokio::sync::OnceCell<i64>,
    last_micros: std::sync::atomic::AtomicI64,
}

impl Sequencer {
    async fn next(&self, store: &DynamoStore) -> Result<i64, StoreError> {
        let tag = *self
            .tag
            .get_or_try_init(|| async {
                let change = Change::new("SEQUENCE".to_owned(), "DELIVERIES", "ADD #next :one")
                    .value(":one", n(1));
                let updated = store
                    .update(change)
                    .await?
                    .ok_or_else(|| corrupt("the delivery counter did not update".to_owned()))?;
                Ok::<_, StoreError>(number::<i64>(&updated, "next")?.rem_euclid(PROCESS_TAGS))
            })
            .await?;
        let now = Utc::now().timestamp_micros();
        let previous = self
            .last_micros
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |last| Some(now.max(last + 1)),
            )
            .unwrap_or(now);
        Ok(now.max(previous + 1) * PROCESS_TAGS + tag)
    }
}

/// Counts a redelivery of a stored webhook id.
async fn redelivered(store: &DynamoStore, webhook_id: &str) -> Result<DeliveryReceipt, StoreError> {
    let change = Change::new(
        delivery_pk(webhook_id),
        STATE_SK,
        "ADD #redeliveries :one SET #history = list_append(#history, :step)",
    )
    .when("attribute_exists(PK)")
    .value(":one", n(1))
    .value(":step", AttributeValue::L(vec![step("redelivered", None)]));
    store.update(change).await?;
    Ok(DeliveryReceipt::Redelivery)
}

pub(super) async fn put_delivery(
    store: &DynamoStore,
    delivery: &NewDelivery,
) -> Result<DeliveryReceipt, StoreError> {
    let pk = delivery_pk(&delivery.webhook_id);
    if store.get(pk.clone(), STATE_SK).await?.is_some() {
        return redelivered(store, &delivery.webhook_id).await;
    }
    // The first webhook id to claim an event owns it; claiming again with the same id is a no-op.
    let duplicate = match &delivery.event_id {
        Some(event_id) => {
            let expires = (delivery.received_at + EVENT_DEDUPE_TTL).timestamp();
            let claim = HashMap::from([
                (
                    "PK".to_owned(),
                    s(format!(
                        "EVENT#{}{SEP}{}{SEP}{event_id}",
                        delivery.shop.as_str(),
                        delivery.topic
                    )),
                ),
                ("SK".to_owned(), s("EVENT")),
                ("webhook_id".to_owned(), s(delivery.webhook_id.clone())),
                (TTL_ATTRIBUTE.to_owned(), n(expires)),
            ]);
            !store
                .put_if(
                    claim,
                    "attribute_not_exists(PK) OR #webhook_id = :webhook",
                    HashMap::from([(":webhook".to_owned(), s(delivery.webhook_id.clone()))]),
                )
                .await?
        }
        None => false,
    };
    let sequence = store.sequencer.next(store).await?;
    // A duplicate is final from the start: its items expire with the retention.
    let expires = if duplicate {
        expiry(store.delivery_retention, delivery.received_at)
    } else {
        None
    };
    // The body first: the state item is what makes the delivery exist.
    store
        .put_all(body_items(&pk, &delivery.body, expires))
        .await?;
    let status = if duplicate {
        DeliveryStatus::Duplicate
    } else {
        DeliveryStatus::Pending
    };
    let history = if duplicate {
        vec![step(
            "duplicate",
            Some("another delivery of this event was stored first"),
        )]
    } else {
        Vec::new()
    };
    let mut item = HashMap::from([
        ("PK".to_owned(), s(pk)),
        ("SK".to_owned(), s(STATE_SK)),
        ("webhook_id".to_owned(), s(delivery.webhook_id.clone())),
        ("shop".to_owned(), s(delivery.shop.as_str())),
        ("topic".to_owned(), s(delivery.topic.clone())),
        ("api_version".to_owned(), s(delivery.api_version.clone())),
        ("received_at".to_owned(), s(time_text(delivery.received_at))),
        ("status".to_owned(), s(status.as_str())),
        ("redeliveries".to_owned(), n(0)),
        ("attempts".to_owned(), n(0)),
        ("sequence".to_owned(), n(sequence)),
        ("chunks".to_owned(), n(chunks(&delivery.body).len())),
        (
            "headers".to_owned(),
            s(serde_json::to_string(&delivery.headers).map_err(StoreError::unavailable)?),
        ),
        ("history".to_owned(), AttributeValue::L(history)),
        (
            "GSI1PK".to_owned(),
            s(status_pk(status, &delivery.webhook_id)),
        ),
        ("GSI1SK".to_owned(), s(sequence_key(sequence))),
        ("GSI2PK".to_owned(), s(shop_log_pk(delivery.shop.as_str()))),
        ("GSI2SK".to_owned(), s(sequence_key(sequence))),
    ]);
    if let Some(event_id) = &delivery.event_id {
        item.insert("event_id".to_owned(), s(event_id.clone()));
    }
    if let Some(at) = delivery.triggered_at {
        item.insert("triggered_at".to_owned(), s(time_text(at)));
    }
    if let Some(expires) = expires {
        item.insert(TTL_ATTRIBUTE.to_owned(), n(expires));
    }
    if !store
        .put_if(item, "attribute_not_exists(PK)", Item::new())
        .await?
    {
        // The same webhook id was stored concurrently (Shopify retried while we were storing).
        return redelivered(store, &delivery.webhook_id).await;
    }
    Ok(if duplicate {
        DeliveryReceipt::DuplicateEvent
    } else {
        DeliveryReceipt::Stored
    })
}

fn record_of(item: &Item) -> Result<DeliveryRecord, StoreError> {
    let status = text(item, "status")?;
    Ok(DeliveryRecord {
        sequence: number(item, "sequence")?,
        webhook_id: text(item, "webhook_id")?.to_owned(),
        shop: text(item, "shop")?.to_owned(),
        topic: text(item, "topic")?.to_owned(),
        api_version: text(item, "api_version")?.to_owned(),
        event_id: optional_text(item, "event_id")?.map(str::to_owned),
        triggered_at: optional_time(item, "triggered_at")?,
        received_at: parse_time(text(item, "received_at")?)?,
        status: DeliveryStatus::parse(status)
            .ok_or_else(|| corrupt(format!("unknown delivery status {status}")))?,
        redeliveries: number(item, "redeliveries")?,
        attempts: number(item, "attempts")?,
        reason: optional_text(item, "reason")?.map(str::to_owned),
        headers: Vec::new(),
        body: Vec::new(),
        history: Vec::new(),
    })
}

fn history_of(item: &Item) -> Result<Vec<DeliveryStep>, StoreError> {
    let Some(AttributeValue::L(steps)) = item.get("history") else {
        return Ok(Vec::new());
    };
    steps
        .iter()
        .map(|step| {
            let AttributeValue::M(step) = step else {
                return Err(corrupt("a delivery step is not a map".to_owned()));
            };
            Ok(DeliveryStep {
                at: parse_time(text(step, "at")?)?,
                outcome: text(step, "outcome")?.to_owned(),
                detail: optional_text(step, "detail")?.map(str::to_owned),
            })
        })
        .collect()
}

/// The bodies of `records` (by webhook id), read in as few requests as their chunks allow.
async fn bodies(
    store: &DynamoStore,
    records: &[(String, usize)],
) -> Result<HashMap<String, Vec<u8>>, StoreError> {
    let keys: Vec<(String, String)> = records
        .iter()
        .flat_map(|(webhook_id, chunks)| {
            (0..*chunks).map(move |index| (delivery_pk(webhook_id), body_sk(index)))
        })
        .collect();
    let mut parts: Vec<(String, String, Vec<u8>)> = Vec::new();
    for item in store.batch_get(keys).await? {
        parts.push((
            text(&item, "PK")?.to_owned(),
            text(&item, "SK")?.to_owned(),
            optional_bytes(&item, "body")?.unwrap_or_default(),
        ));
    }
    parts.sort_by(|left, right| (&left.0, &left.1).cmp(&(&right.0, &right.1)));
    let mut bodies: HashMap<String, Vec<u8>> = HashMap::new();
    for (pk, _, chunk) in parts {
        let webhook_id = pk.strip_prefix("WH#").unwrap_or(&pk).to_owned();
        bodies.entry(webhook_id).or_default().extend(chunk);
    }
    Ok(bodies)
}

/// The oldest `limit` pending deliveries as the status index lists them (`filter` with `values`
/// leaving some out; empty for none): `(sequence key, PK)`, oldest first, merged over the shards.
async fn pending_candidates(
    store: &DynamoStore,
    limit: usize,
    filter: String,
    values: Item,
) -> Result<Vec<(String, String)>, StoreError> {
    let shards: Vec<Vec<Item>> = stream::iter(0..STATUS_SHARDS)
        .map(|shard| {
            let query = Query::index(GSI1, status_shard_pk(DeliveryStatus::Pending, shard), None)
                .filter(filter.clone(), values.clone())
                .project("PK, GSI1SK")
                .page(limit.min(1000));
            async move { store.query_all(&query, Some(limit)).await }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut candidates: Vec<(String, String)> = shards
        .into_iter()
        .flatten()
        .map(|item| {
            Ok((
                text(&item, "GSI1SK")?.to_owned(),
                text(&item, "PK")?.to_owned(),
            ))
        })
        .collect::<Result<_, StoreError>>()?;
    candidates.sort();
    candidates.truncate(limit);
    Ok(candidates)
}

pub(super) async fn pending(
    store: &DynamoStore,
    limit: u32,
    with_bodies: bool,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let candidates = pending_candidates(store, limit, String::new(), Item::new()).await?;
    // The index lags the table a little: confirm each candidate on its (consistent) state item.
    let states = store
        .batch_get(
            candidates
                .into_iter()
                .map(|(_, pk)| (pk, STATE_SK.to_owned()))
                .collect(),
        )
        .await?;
    let mut records = Vec::new();
    let mut chunk_counts = Vec::new();
    for item in &states {
        let record = record_of(item)?;
        if record.status != DeliveryStatus::Pending {
            continue;
        }
        chunk_counts.push((record.webhook_id.clone(), number::<usize>(item, "chunks")?));
        records.push(record);
    }
    records.sort_by_key(|record| record.sequence);
    if with_bodies {
        let mut found = bodies(store, &chunk_counts).await?;
        for record in &mut records {
            record.body = found.remove(&record.webhook_id).unwrap_or_default();
        }
    }
    Ok(records)
}

/// Claims up to `limit` pending deliveries for the lease's owner: the oldest candidates the status
/// index lists without a live claim of another owner, each taken by a conditional update of its
/// state item (still pending, and unclaimed, its claim run out, or the owner's own), so that of
/// two claimers one wins.
pub(super) async fn claim(
    store: &DynamoStore,
    lease: &DeliveryLease,
    now: DateTime<Utc>,
    limit: u32,
    with_bodies: bool,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let free = "attribute_not_exists(#claim_until) OR #claim_until <= :now OR #claimed_by = :owner";
    let values = HashMap::from([
        (":now".to_owned(), s(time_text(now))),
        (":owner".to_owned(), s(lease.owner.clone())),
    ]);
    let candidates = pending_candidates(store, limit, free.to_owned(), values.clone()).await?;
    // The index lags the table a little: the conditional update on the (consistent) state item is
    // what decides.
    let claimed: Vec<Option<Item>> = stream::iter(candidates)
        .map(|(_, pk)| {
            let mut change = Change::new(
                pk,
                STATE_SK,
                "SET #claimed_by = :owner, #claim_until = :until",
            )
            .when(format!("#status = :pending AND ({free})"))
            .value(":pending", s(DeliveryStatus::Pending.as_str()))
            .value(":until", s(time_text(lease.until)));
            change.values.extend(values.clone());
            store.update(change)
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut records = Vec::new();
    let mut chunk_counts = Vec::new();
    for item in claimed.iter().flatten() {
        let record = record_of(item)?;
        chunk_counts.push((record.webhook_id.clone(), number::<usize>(item, "chunks")?));
        records.push(record);
    }
    records.sort_by_key(|record| record.sequence);
    if with_bodies {
        let mut found = bodies(store, &chunk_counts).await?;
        for record in &mut records {
            record.body = found.remove(&record.webhook_id).unwrap_or_default();
        }
    }
    Ok(records)
}

/// Records one outcome; `false` when the webhook id is unknown or, with an `owner`, when the
/// delivery is no longer pending and claimed by `owner`.
async fn record_one(
    store: &DynamoStore,
    outcome: &DeliveryOutcome,
    owner: Option<&str>,
) -> Result<bool, StoreError> {
    let mut sets = vec!["#history = list_append(#history, :step)"];
    let mut removes = Vec::new();
    let mut change = Change::new(delivery_pk(&outcome.webhook_id), STATE_SK, "")
        .when("attribute_exists(PK)")
        .value(
            ":step",
            AttributeValue::L(vec![step(&outcome.outcome, outcome.detail.as_deref())]),
        )
        .value(":failed", n(u8::from(outcome.failed_attempt)));
    if let Some(owner) = owner {
        change = change
            .when("#status = :pending AND #claimed_by = :owner")
            .value(":pending", s(DeliveryStatus::Pending.as_str()))
            .value(":owner", s(owner));
    }
    if owner.is_some() || outcome.status.is_some() {
        removes.extend(["#claimed_by", "#claim_until"]);
    }
    if let Some(status) = outcome.status {
        sets.push("#status = :status");
        sets.push("#GSI1PK = :listing");
        change = change
            .value(":status", s(status.as_str()))
            .value(":listing", s(status_pk(status, &outcome.webhook_id)));
        match (status, &outcome.detail) {
            (DeliveryStatus::Dead, Some(reason)) => {
                sets.push("#reason = :reason");
                change = change.value(":reason", s(reason.clone()));
            }
            _ => removes.push("#reason"),
        }
    }
    let reopens = outcome.status == Some(DeliveryStatus::Pending);
    if reopens {
        // A replay keeps the delivery until it is final again; an expired one is gone already.
        removes.push("#expires_at");
        let condition = change.condition.take().unwrap_or_default();
        change = change
            .when(format!(
                "{condition} AND (attribute_not_exists(#expires_at) OR #expires_at > :now)"
            ))
            .value(":now", n(Utc::now().timestamp()));
    }
    let mut expression = format!("SET {} ADD #attempts :failed", sets.join(", "));
    if !removes.is_empty() {
        expression.push_str(&format!(" REMOVE {}", removes.join(", ")));
    }
    change.expression = expression;
    if reopens {
        return reopen(store, change).await;
    }
    let Some(state) = store.update(change).await? else {
        return Ok(false);
    };
    if let Some(status) = outcome.status.filter(|status| status.is_final()) {
        expire(store, &state, status).await?;
    }
    Ok(true)
}

/// Applies `change` (which sets a delivery pending and removes its TTL) to the state item and
/// removes the TTL from the body items in one transaction, so that no body of a pending delivery
/// keeps one; `false` when the delivery is unknown or expired.
async fn reopen(store: &DynamoStore, change: Change) -> Result<bool, StoreError> {
    let pk = text(&change.key, "PK")?.to_owned();
    let Some(state) = store.get(pk.clone(), STATE_SK).await? else {
        return Ok(false);
    };
    let chunks: usize = number(&state, "chunks")?;
    if chunks >= MAX_TRANSACTION_ITEMS {
        // Too many chunks for one transaction (never under the receiver's body limit): the state
        // first, so that a concurrent final outcome can no longer set a TTL, then the bodies.
        if store.update(change).await?.is_none() {
            return Ok(false);
        }
        for index in 0..chunks {
            let unexpire = Change::new(pk.clone(), body_sk(index), "REMOVE #expires_at")
                .when("attribute_exists(PK)");
            store.update(unexpire).await?;
        }
        return Ok(true);
    }
    let mut items = vec![store.update_item(change)?];
    for index in 0..chunks {
        let unexpire = Change::new(pk.clone(), body_sk(index), "REMOVE #expires_at")
            .when("attribute_exists(PK)");
        items.push(store.update_item(unexpire)?);
    }
    match store.transact(items).await {
        Ok(()) => Ok(true),
        Err(Transaction::Cancelled(_)) => Ok(false),
        Err(Transaction::Failed(error)) => Err(error),
    }
}

/// Sets the TTL of a delivery that reached the final `status` (as its new `state` says) on its
/// state and body items, in one transaction that holds only while the state still has `status`:
/// a replay in between wins, and its bodies never keep a TTL. Nothing happens without a retention.
async fn expire(
    store: &DynamoStore,
    state: &Item,
    status: DeliveryStatus,
) -> Result<(), StoreError> {
    let received_at = parse_time(text(state, "received_at")?)?;
    let Some(expires) = expiry(store.delivery_retention, received_at) else {
        return Ok(());
    };
    if optional_number::<i64>(state, TTL_ATTRIBUTE)? == Some(expires) {
        return Ok(());
    }
    let pk = text(state, "PK")?.to_owned();
    let chunks: usize = number(state, "chunks")?;
    if chunks >= MAX_TRANSACTION_ITEMS {
        // Kept forever rather than risk a TTL on the body of a delivery replayed meanwhile.
        return Ok(());
    }
    let mut items = vec![
        store.update_item(
            Change::new(pk.clone(), STATE_SK, "SET #expires_at = :expires")
                .when("#status = :status")
                .value(":status", s(status.as_str()))
                .value(":expires", n(expires)),
        )?,
    ];
    for index in 0..chunks {
        items.push(
            store.update_item(
                Change::new(pk.clone(), body_sk(index), "SET #expires_at = :expires")
                    .when("attribute_exists(PK)")
                    .value(":expires", n(expires)),
            )?,
        );
    }
    match store.transact(items).await {
        // Cancelled: the status changed since (a replay); the delivery is not final any more.
        Ok(()) | Err(Transaction::Cancelled(_)) => Ok(()),
        Err(Transaction::Failed(error)) => Err(error),
    }
}

/// Records outcomes in order per delivery (of those claimed by `owner`, when given).
pub(super) async fn record_deliveries(
    store: &DynamoStore,
    outcomes: Vec<DeliveryOutcome>,
    owner: Option<&str>,
) -> Result<u64, StoreError> {
    // One delivery's outcomes apply in order; different deliveries' run side by side.
    let mut groups: Vec<Vec<DeliveryOutcome>> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for outcome in outcomes {
        match index.get(&outcome.webhook_id) {
            Some(&group) => groups[group].push(outcome),
            None => {
                index.insert(outcome.webhook_id.clone(), groups.len());
                groups.push(vec![outcome]);
            }
        }
    }
    stream::iter(groups)
        .map(|group| async move {
            let mut known = 0u64;
            for outcome in &group {
                known += u64::from(record_one(store, outcome, owner).await?);
            }
            Ok::<_, StoreError>(known)
        })
        .buffer_unordered(CONCURRENCY)
        .try_fold(0u64, |total, known| async move { Ok(total + known) })
        .await
}

pub(super) async fn list(
    store: &DynamoStore,
    filter: &DeliveryFilter,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let limit = usize::try_from(filter.limit).unwrap_or(usize::MAX);
    if limit == 0 {
        return Ok(Vec::new());
    }
    let ascending = filter.after.is_some();
    let mut conditions = Vec::new();
    let mut values = Item::new();
    if let Some(topic) = &filter.topic {
        conditions.push("#topic = :topic");
        values.insert(":topic".to_owned(), s(topic.clone()));
    }
    if let Some(since) = filter.since {
        conditions.push("#received_at >= :since");
        values.insert(":since".to_owned(), s(time_text(since)));
    }
    if let Some(until) = filter.until {
        conditions.push("#received_at < :until");
        values.insert(":until".to_owned(), s(time_text(until)));
    }
    if let Some(status) = filter.status {
        conditions.push("#status = :status");
        values.insert(":status".to_owned(), s(status.as_str()));
    }
    // Expired deliveries are gone, whether or not DynamoDB has deleted them yet.
    conditions.push("(attribute_not_exists(#expires_at) OR #expires_at > :now)");
    values.insert(":now".to_owned(), n(Utc::now().timestamp()));
    let partitions: Vec<(&'static str, String)> = match (&filter.shop, filter.status) {
        (Some(shop), _) => vec![(GSI2, shop_log_pk(shop))],
        (None, Some(status)) => (0..STATUS_SHARDS)
            .map(|shard| (GSI1, status_shard_pk(status, shard)))
            .collect(),
        (None, None) => ALL_STATUSES
            .iter()
            .flat_map(|status| {
                (0..STATUS_SHARDS).map(move |shard| (GSI1, status_shard_pk(*status, shard)))
            })
            .collect(),
    };
    let filter_expression = conditions.join(" AND ");
    let after = filter.after.map(|after| (">", sequence_key(after)));
    // Pages of the items wanted, not of 1 MB: without a filter the first `limit` items are the
    // answer (the overview's newest delivery reads one item); with one, pages of at least 100 keep
    // the round trips few while the filter leaves items out.
    let page = if filter_expression.is_empty() {
        limit
    } else {
        limit.max(100)
    }
    .min(1000);
    let queries: Vec<Query> = partitions
        .into_iter()
        .map(|(index, pk)| {
            let query = Query::index(index, pk, after.clone())
                .filter(filter_expression.clone(), values.clone())
                .page(page);
            if ascending { query } else { query.backward() }
        })
        .collect();
    let found: Vec<Vec<Item>> = stream::iter(queries)
        .map(|query| async move { store.query_all(&query, Some(limit)).await })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut records = found
        .iter()
        .flatten()
        .map(record_of)
        .collect::<Result<Vec<_>, _>>()?;
    if ascending {
        records.sort_by_key(|record| record.sequence);
    } else {
        records.sort_by_key(|record| std::cmp::Reverse(record.sequence));
    }
    records.truncate(limit);
    Ok(records)
}

pub(super) async fn one(
    store: &DynamoStore,
    webhook_id: &str,
) -> Result<Option<DeliveryRecord>, StoreError> {
    // One Query reads the state and every body chunk.
    let items = store
        .query_all(&Query::partition(delivery_pk(webhook_id)), None)
        .await?;
    let Some(state) = items
        .iter()
        .find(|item| optional_text(item, "SK").ok().flatten() == Some(STATE_SK))
    else {
        return Ok(None);
    };
    if expired(state, Utc::now())? {
        return Ok(None);
    }
    let mut record = record_of(state)?;
    record.headers =
        serde_json::from_str(text(state, "headers")?).map_err(StoreError::unavailable)?;
    let chunks: usize = number(state, "chunks")?;
    for index in 0..chunks {
        let sk = body_sk(index);
        let chunk = items
            .iter()
            .find(|item| optional_text(item, "SK").ok().flatten() == Some(sk.as_str()))
            .ok_or_else(|| corrupt(format!("delivery {webhook_id} lacks body chunk {index}")))?;
        record
            .body
            .extend(optional_bytes(chunk, "body")?.unwrap_or_default());
    }
    // The log's first step is the store itself; later ones were appended.
    record.history.push(DeliveryStep {
        at: record.received_at,
        outcome: "stored".to_owned(),
        detail: None,
    });
    record.history.extend(history_of(state)?);
    Ok(Some(record))
}

pub(super) async fn replace_body(
    store: &DynamoStore,
    webhook_id: &str,
    body: &[u8],
) -> Result<bool, StoreError> {
    let pk = delivery_pk(webhook_id);
    let Some(state) = store.get(pk.clone(), STATE_SK).await? else {
        return Ok(false);
    };
    let old_chunks: usize = number(&state, "chunks")?;
    // The new body expires with the state.
    let expires = optional_number::<i64>(&state, TTL_ATTRIBUTE)?;
    let new_items = body_items(&pk, body, expires);
    let new_chunks = new_items.len();
    let change = Change::new(
        pk.clone(),
        STATE_SK,
        "SET #chunks = :chunks, #history = list_append(#history, :step)",
    )
    .when("attribute_exists(PK)")
    .value(":chunks", n(new_chunks))
    .value(":step", AttributeValue::L(vec![step("redacted", None)]));
    let surplus: Vec<(String, String)> = (new_chunks..old_chunks)
        .map(|index| (pk.clone(), body_sk(index)))
        .collect();
    if body.len() <= MAX_TRANSACTION_BODY_BYTES
        && new_chunks + surplus.len() < MAX_TRANSACTION_ITEMS
    {
        // The new body and the step recording it change together.
        let mut items = Vec::new();
        for item in new_items {
            items.push(store.put_item(item, None, Item::new())?);
        }
        for (pk, sk) in surplus {
            items.push(store.delete_item(pk, sk)?);
        }
        items.push(store.update_item(change)?);
        return match store.transact(items).await {
            Ok(()) => Ok(true),
            Err(Transaction::Cancelled(_)) => Ok(false),
            Err(Transaction::Failed(error)) => Err(error),
        };
    }
    store.put_all(new_items).await?;
    if store.update(change).await?.is_none() {
        return Ok(false);
    }
    store.delete_all(surplus).await?;
    Ok(true)
}

/// Erases a shop's deliveries with their bodies.
pub(super) async fn erase_shop(store: &DynamoStore, shop: &str) -> Result<(), StoreError> {
    let query = Query::index(GSI2, shop_log_pk(shop), None).project("PK");
    let items = store.query_all(&query, None).await?;
    let partitions = items
        .iter()
        .map(|item| Ok(text(item, "PK")?.to_owned()))
        .collect::<Result<Vec<_>, StoreError>>()?;
    stream::iter(partitions)
        .map(|pk| store.delete_partition(pk))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<u64>>()
        .await
        .map(drop)
}
