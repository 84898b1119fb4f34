//! The webhook delivery log in SQLite: `webhook_deliveries` (one small row per webhook id: its
//! identity and state, and while an outbox publishes it, its claim), `webhook_bodies` (the raw
//! delivery, written once) and `delivery_steps` (what happened to it, appended). State changes
//! touch only the small row and add a step, so the body is never rewritten. A purge removes final
//! deliveries past their retention from all three: candidates found on a reader, deleted on the
//! writer in one transaction per batch after checking again that each is still final.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Writer, parse_time};
use crate::domain::{
    DeliveryFilter, DeliveryLease, DeliveryOutcome, DeliveryReceipt, DeliveryRecord,
    DeliveryStatus, DeliveryStep, NewDelivery,
};
use crate::store::StoreError;

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::unavailable(error)
}

fn add_step(
    connection: &Connection,
    delivery_id: i64,
    outcome: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    // The next step number read first, then a plain insert: an `INSERT … SELECT` from the table
    // it inserts into copies the selected rows into a temporary table first.
    let step: i64 = connection
        .prepare_cached(
            "SELECT COALESCE(MAX(step), 0) + 1 FROM delivery_steps WHERE delivery_id = ?1",
        )
        .and_then(|mut statement| statement.query_row([delivery_id], |row| row.get(0)))
        .map_err(unavailable)?;
    connection
        .prepare_cached(
            "INSERT INTO delivery_steps (delivery_id, step, at, outcome, detail)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                delivery_id,
                step,
                Utc::now().to_rfc3339(),
                outcome,
                detail
            ])
        })
        .map_err(unavailable)?;
    Ok(())
}

/// Adds a step to the history of the delivery `webhook_id`; 1 when it is stored, else 0.
fn add_step_of(
    connection: &Connection,
    webhook_id: &str,
    outcome: &str,
    detail: Option<&str>,
) -> Result<u64, StoreError> {
    let Some(id) = delivery_id(connection, webhook_id)? else {
        return Ok(0);
    };
    add_step(connection, id, outcome, detail)?;
    Ok(1)
}

/// A delivery as its receipt writes it: text fields formatted before it reaches the writer, whose
/// thread is the receiver's bottleneck.
pub(super) struct Receipt {
    webhook_key: i64,
    event_key: Option<i64>,
    webhook_id: String,
    shop: String,
    topic: String,
    api_version: String,
    event_id: Option<String>,
    triggered_at: Option<String>,
    received_at: String,
    headers: String,
    body: StoredBody,
}

impl Receipt {
    pub(super) fn of(delivery: &NewDelivery) -> Result<Self, StoreError> {
        Ok(Self {
            webhook_key: webhook_key(&delivery.webhook_id),
            event_key: delivery
                .event_id
                .as_deref()
                .map(|event_id| event_key(delivery.shop.as_str(), &delivery.topic, event_id)),
            webhook_id: delivery.webhook_id.clone(),
            shop: delivery.shop.as_str().to_owned(),
            topic: delivery.topic.clone(),
            api_version: delivery.api_version.clone(),
            event_id: delivery.event_id.clone(),
            triggered_at: delivery.triggered_at.map(|time| time.to_rfc3339()),
            received_at: delivery.received_at.to_rfc3339(),
            headers: serde_json::to_string(&delivery.headers).map_err(StoreError::unavailable)?,
            body: StoredBody::pack(&delivery.body),
        })
    }
}

impl Receipt {
    /// The webhook id.
    pub(super) fn webhook_id(&self) -> &str {
        &self.webhook_id
    }

    /// The event it delivers (shop, topic and event id on one line), when it names one.
    pub(super) fn event(&self) -> Option<String> {
        self.event_id
            .as_deref()
            .map(|event_id| format!("{}\n{}\n{event_id}", self.shop, self.topic))
    }

    /// Appends the receipt as a journal record's payload (see [`Receipt::decode`]).
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        fn text(out: &mut Vec<u8>, text: Option<&str>) {
            match text {
                None => out.push(0),
                Some(text) => bytes(out, text.as_bytes()),
            }
        }
        fn bytes(out: &mut Vec<u8>, bytes: &[u8]) {
            out.push(1);
            // Receipts are far under 4 GB (the receiver's body limit).
            out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out.extend_from_slice(&self.webhook_key.to_le_bytes());
        out.extend_from_slice(&self.event_key.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(&self.body.codec.to_le_bytes());
        for field in [
            Some(self.webhook_id.as_str()),
            Some(&self.shop),
            Some(&self.topic),
            Some(&self.api_version),
            self.event_id.as_deref(),
            self.triggered_at.as_deref(),
            Some(&self.received_at),
            Some(&self.headers),
        ] {
            text(out, field);
        }
        bytes(out, &self.body.bytes);
    }

    /// A receipt from a journal record's payload; `None` when the bytes are not one.
    pub(super) fn decode(mut input: &[u8]) -> Option<Self> {
        fn number(input: &mut &[u8]) -> Option<i64> {
            let (head, rest) = input.split_first_chunk::<8>()?;
            *input = rest;
            Some(i64::from_le_bytes(*head))
        }
        fn bytes(input: &mut &[u8]) -> Option<Option<Vec<u8>>> {
            let (flag, rest) = input.split_first()?;
            *input = rest;
            if *flag == 0 {
                return Some(None);
            }
            let (length, rest) = input.split_first_chunk::<4>()?;
            let length = usize::try_from(u32::from_le_bytes(*length)).ok()?;
            if rest.len() < length {
                return None;
            }
            let (value, rest) = rest.split_at(length);
            *input = rest;
            Some(Some(value.to_vec()))
        }
        fn text(input: &mut &[u8]) -> Option<Option<String>> {
            bytes(input)?.map(String::from_utf8).transpose().ok()
        }
        let input = &mut input;
        let webhook_key = number(input)?;
        let event_key = number(input)?;
        let codec = number(input)?;
        let webhook_id = text(input)??;
        let shop = text(input)??;
        let topic = text(input)??;
        let api_version = text(input)??;
        let event_id = text(input)?;
        let triggered_at = text(input)?;
        let received_at = text(input)??;
        let headers = text(input)??;
        let body = bytes(input)??;
        if !input.is_empty() || ![RAW, LZ4].contains(&codec) {
            return None;
        }
        Some(Self {
            webhook_key,
            event_key: event_id.as_ref().map(|_| event_key),
            webhook_id,
            shop,
            topic,
            api_version,
            event_id,
            triggered_at,
            received_at,
            headers,
            body: StoredBody { bytes: body, codec },
        })
    }
}

/// The id of the stored delivery with `delivery`'s webhook id.
pub(super) fn stored_id(
    connection: &Connection,
    delivery: &Receipt,
) -> Result<Option<i64>, StoreError> {
    connection
        .prepare_cached(
            "SELECT id FROM webhook_deliveries WHERE webhook_key = ?1 AND webhook_id = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![delivery.webhook_key, delivery.webhook_id], |row| {
                    row.get(0)
                })
                .optional()
        })
        .map_err(unavailable)
}

/// Whether a delivery of `delivery`'s event (same shop, topic and event id) is stored.
pub(super) fn event_stored(
    connection: &Connection,
    delivery: &Receipt,
) -> Result<bool, StoreError> {
    match (&delivery.event_id, delivery.event_key) {
        (Some(event_id), Some(event_key)) => connection
            .prepare_cached(
                "SELECT 1 FROM webhook_deliveries
                 WHERE event_key = ?1 AND shop = ?2 AND topic = ?3 AND event_id = ?4 LIMIT 1",
            )
            .and_then(|mut statement| {
                statement.exists(params![event_key, delivery.shop, delivery.topic, event_id])
            })
            .map_err(unavailable),
        _ => Ok(false),
    }
}

/// Writes receipts the journal holds into the log and records that the journal's records up to
/// `upto` are in it, in the writer's current transaction.
pub(super) fn ingest<R: std::borrow::Borrow<Receipt>>(
    writer: &mut Writer,
    receipts: &[R],
    upto: u64,
) -> Result<(), StoreError> {
    for receipt in receipts {
        put_delivery(writer, receipt.borrow())?;
    }
    writer
        .connection
        .prepare_cached("UPDATE receipt_journal SET ingested = ?1 WHERE id = 1")
        .and_then(|mut statement| statement.execute([i64::try_from(upto).unwrap_or(i64::MAX)]))
        .map_err(unavailable)?;
    Ok(())
}

/// Releases every outbox claim on pending deliveries; the number released. For a server that
/// has just taken the receipt journal, and with it the data directory: the claims are those of a
/// server that stopped (crashed) before publishing them, which would otherwise wait out their
/// lease. (Publishing one twice would be harmless: consumers are idempotent.)
pub(super) fn release_claims(connection: &Connection) -> Result<usize, StoreError> {
    connection
        .execute(
            "UPDATE webhook_deliveries SET claimed_by = NULL, claim_until = NULL
             WHERE status = 'pending' AND claimed_by IS NOT NULL",
            [],
        )
        .map_err(unavailable)
}

/// How far the receipt journal has been written into the log.
pub(super) fn ingested(connection: &Connection) -> Result<u64, StoreError> {
    let ingested: i64 = connection
        .query_row(
            "SELECT ingested FROM receipt_journal WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    Ok(u64::try_from(ingested).unwrap_or(0))
}

pub(super) fn put_delivery(
    writer: &mut Writer,
    delivery: &Receipt,
) -> Result<DeliveryReceipt, StoreError> {
    let connection = &writer.connection;
    // A redelivery of a stored webhook id is counted, and nothing else changes. (Looked up with
    // a read first: most receipts are new, and a write statement that changes nothing still
    // opens a statement journal.)
    if let Some(id) = stored_id(connection, delivery)? {
        connection
            .prepare_cached(
                "UPDATE webhook_deliveries SET redeliveries = redeliveries + 1 WHERE id = ?1",
            )
            .and_then(|mut statement| statement.execute([id]))
            .map_err(unavailable)?;
        add_step(connection, id, "redelivered", None)?;
        return Ok(DeliveryReceipt::Redelivery);
    }
    let duplicate_event = event_stored(connection, delivery)?;
    let status = if duplicate_event {
        DeliveryStatus::Duplicate
    } else {
        DeliveryStatus::Pending
    };
    // The new row's id is the connection's last insert rowid: cheaper than `RETURNING`, which
    // runs the statement to its end into a temporary table before the first row comes back.
    connection
        .prepare_cached(
            "INSERT INTO webhook_deliveries (webhook_key, event_key, webhook_id, shop, topic,
                 api_version, event_id, triggered_at, received_at, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                delivery.webhook_key,
                delivery.event_key,
                delivery.webhook_id,
                delivery.shop,
                delivery.topic,
                delivery.api_version,
                delivery.event_id,
                delivery.triggered_at,
                delivery.received_at,
                status.as_str(),
            ])
        })
        .map_err(unavailable)?;
    let id = connection.last_insert_rowid();
    connection
        .prepare_cached(
            "INSERT INTO webhook_bodies (delivery_id, headers, body, codec) VALUES (?1, ?2, ?3, ?4)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                id,
                delivery.headers,
                delivery.body.bytes,
                delivery.body.codec
            ])
        })
        .map_err(unavailable)?;
    if status == DeliveryStatus::Duplicate {
        add_step(
            connection,
            id,
            "duplicate",
            Some("another delivery of this event was stored first"),
        )?;
        return Ok(DeliveryReceipt::DuplicateEvent);
    }
    Ok(DeliveryReceipt::Stored)
}

/// The indexed key of a webhook id: the id's FNV-1a hash. Lookups compare the id itself too, so
/// a collision costs a second row read, never a wrong answer. An index of these 8-byte keys is a
/// fraction of one of the ids (36-character UUIDs), so a receipt's insert, at a random place in
/// it, splits fewer pages and the index stays in the page cache. Stored: never change it.
pub(super) fn webhook_key(webhook_id: &str) -> i64 {
    fnv1a(&[webhook_id.as_bytes()])
}

/// `body` compressed as LZ4's block format with its length prepended (little-endian u32), as
/// `lz4_flex::block::decompress_size_prepended` reads it. Each receiving thread keeps a hash
/// table and output buffer for the bodies under 64 KB (nearly all): allocating and zeroing them
/// per delivery cost as much as compressing. Larger bodies get their own, so that the thread's
/// stay small. `None` for a body whose length the format cannot hold (4 GB and more).
fn compress(body: &[u8]) -> Option<Vec<u8>> {
    use lz4_flex::block::{CompressTable, compress_into_with_table, get_maximum_output_size};
    thread_local! {
        static SCRATCH: std::cell::RefCell<(CompressTable, Vec<u8>)> =
            std::cell::RefCell::new((CompressTable::small(), Vec::new()));
    }
    let length = u32::try_from(body.len()).ok()?;
    if body.len() >= usize::from(u16::MAX) {
        return Some(lz4_flex::block::compress_prepend_size(body));
    }
    SCRATCH.with_borrow_mut(|(table, output)| {
        let room = get_maximum_output_size(body.len());
        if output.len() < room {
            output.resize(room, 0);
        }
        // The buffer has room for the worst case, so compressing cannot fail for want of it.
        let written = compress_into_with_table(body, output, table).ok()?;
        let mut packed = Vec::with_capacity(4 + written);
        packed.extend_from_slice(&length.to_le_bytes());
        packed.extend_from_slice(&output[..written]);
        Some(packed)
    })
}

/// The indexed key of an event of a shop and topic (see [`webhook_key`]).
pub(super) fn event_key(shop: &str, topic: &str, event_id: &str) -> i64 {
    fnv1a(&[
        shop.as_bytes(),
        b"\n",
        topic.as_bytes(),
        b"\n",
        event_id.as_bytes(),
    ])
}

fn fnv1a(parts: &[&[u8]]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// A delivery body as `webhook_bodies` holds it: as received (codec 0), or LZ4-compressed with
/// its length first (codec 1) when that saves at least an eighth. Order payloads are JSON with
/// many repeated keys; compressed, more of them share a page, and the writer (the receiver's
/// bottleneck) writes fewer pages to the WAL and, later, to the database.
struct StoredBody {
    bytes: Vec<u8>,
    codec: i64,
}

const RAW: i64 = 0;
const LZ4: i64 = 1;
/// Largest body a stored length may announce (far above any delivery the receiver accepts): a
/// corrupt length is refused instead of allocated.
const MAX_UNPACKED_BYTES: usize = 256 * 1024 * 1024;

impl StoredBody {
    /// The body in columns `at` (bytes) and `at + 1` (codec) of `row`.
    fn read(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Self> {
        Ok(Self {
            bytes: row.get(at)?,
            codec: row.get(at + 1)?,
        })
    }

    fn pack(body: &[u8]) -> Self {
        if let Some(packed) = compress(body)
            && packed.len() + body.len() / 8 <= body.len()
        {
            Self {
                bytes: packed,
                codec: LZ4,
            }
        } else {
            Self {
                bytes: body.to_vec(),
                codec: RAW,
            }
        }
    }

    fn unpack(self) -> Result<Vec<u8>, StoreError> {
        match self.codec {
            RAW => Ok(self.bytes),
            LZ4 => {
                let announced = self
                    .bytes
                    .first_chunk::<4>()
                    .map(|length| u32::from_le_bytes(*length) as usize);
                if announced.is_none_or(|length| length > MAX_UNPACKED_BYTES) {
                    return Err(StoreError::Unavailable(
                        "a stored delivery body is corrupt (impossible length)".into(),
                    ));
                }
                lz4_flex::block::decompress_size_prepended(&self.bytes).map_err(|error| {
                    StoreError::Unavailable(
                        format!("a stored delivery body is corrupt: {error}").into(),
                    )
                })
            }
            other => Err(StoreError::Unavailable(
                format!("a stored delivery body has an unknown codec {other}").into(),
            )),
        }
    }
}

/// A claim's end as stored: fixed-width, so that text order is time order.
fn claim_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Claims up to `limit` pending deliveries for the lease's owner, oldest first: those unclaimed,
/// whose claim ran out by `now`, or the owner's own. One statement on the writer (whose
/// transactions take the database's write lock), so of two claimers, even in two processes, one
/// wins each delivery.
pub(super) fn claim(
    writer: &mut Writer,
    lease: &DeliveryLease,
    now: DateTime<Utc>,
    limit: u32,
    with_bodies: bool,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    // Read, then claimed one by one by id: the writer holds the write lock throughout, so nobody
    // claims them in between (an `UPDATE … RETURNING` of them all ran through a temporary table).
    let body = if with_bodies {
        ", b.body, b.codec FROM webhook_deliveries d LEFT JOIN webhook_bodies b ON b.delivery_id = d.id"
    } else {
        " FROM webhook_deliveries d"
    };
    let connection = &writer.connection;
    let mut select = connection
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS}{body}
             WHERE d.status = 'pending'
               AND (d.claim_until IS NULL OR d.claim_until <= ?2 OR d.claimed_by = ?1)
             ORDER BY d.id LIMIT ?3"
        ))
        .map_err(unavailable)?;
    let mut rows = select
        .query(params![lease.owner, claim_time(now), limit])
        .map_err(unavailable)?;
    let records = records_of(&mut rows, with_bodies)?;
    drop(rows);
    let mut update = connection
        .prepare_cached(
            "UPDATE webhook_deliveries SET claimed_by = ?1, claim_until = ?2 WHERE id = ?3",
        )
        .map_err(unavailable)?;
    let until = claim_time(lease.until);
    for record in &records {
        update
            .execute(params![lease.owner, until, record.sequence])
            .map_err(unavailable)?;
    }
    Ok(records)
}

/// Applies outcomes in order; returns how many named a stored delivery (with an `owner`: a
/// delivery still pending and claimed by `owner`, whose claim is then released). Setting a status
/// clears any claim.
pub(super) fn record_deliveries(
    writer: &mut Writer,
    outcomes: &[DeliveryOutcome],
    owner: Option<&str>,
) -> Result<u64, StoreError> {
    let connection = &writer.connection;
    // Found first, then changed by id: an `UPDATE … RETURNING` runs into a temporary table
    // before its row comes back, which cost more than the change itself.
    let mut update = connection
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = COALESCE(?2, status),
                 attempts = attempts + ?3,
                 reason = CASE WHEN ?2 = 'dead' THEN ?4 WHEN ?2 IS NULL THEN reason ELSE NULL END,
                 claimed_by = CASE WHEN ?2 IS NULL AND ?5 IS NULL THEN claimed_by END,
                 claim_until = CASE WHEN ?2 IS NULL AND ?5 IS NULL THEN claim_until END
             WHERE id = ?1
               AND (?5 IS NULL OR (status = 'pending' AND claimed_by = ?5))",
        )
        .map_err(unavailable)?;
    let mut known = 0;
    for outcome in outcomes {
        if outcome.status.is_none() && !outcome.failed_attempt && owner.is_none() {
            // Nothing of the delivery changes (a consumer's outcome): only a step is added.
            known += add_step_of(
                connection,
                &outcome.webhook_id,
                &outcome.outcome,
                outcome.detail.as_deref(),
            )?;
            continue;
        }
        let Some(id) = delivery_id(connection, &outcome.webhook_id)? else {
            continue;
        };
        let changed = update
            .execute(params![
                id,
                outcome.status.map(DeliveryStatus::as_str),
                i64::from(outcome.failed_attempt),
                outcome.detail,
                owner,
            ])
            .map_err(unavailable)?;
        if changed > 0 {
            add_step(connection, id, &outcome.outcome, outcome.detail.as_deref())?;
            known += 1;
        }
    }
    Ok(known)
}

pub(super) fn body(
    connection: &Connection,
    webhook_id: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    connection
        .prepare_cached(
            "SELECT b.body, b.codec FROM webhook_deliveries d
             JOIN webhook_bodies b ON b.delivery_id = d.id
             WHERE d.webhook_key = ?1 AND d.webhook_id = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![webhook_key(webhook_id), webhook_id], |row| {
                    StoredBody::read(row, 0)
                })
                .optional()
        })
        .map_err(unavailable)?
        .map(StoredBody::unpack)
        .transpose()
}

pub(super) fn replace_body(
    writer: &mut Writer,
    webhook_id: &str,
    body: &[u8],
) -> Result<bool, StoreError> {
    let connection = &writer.connection;
    let Some(id) = delivery_id(connection, webhook_id)? else {
        return Ok(false);
    };
    let stored = StoredBody::pack(body);
    connection
        .execute(
            "UPDATE webhook_bodies SET body = ?2, codec = ?3 WHERE delivery_id = ?1",
            params![id, stored.bytes, stored.codec],
        )
        .map_err(unavailable)?;
    add_step(connection, id, "redacted", None)?;
    Ok(true)
}

/// Ids of up to `limit` final deliveries received before `before`, oldest first. Ids grow with
/// receipt, so the scan in id order meets the old ones first.
pub(super) fn purge_candidates(
    connection: &Connection,
    before: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<i64>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT id FROM webhook_deliveries
             WHERE status <> 'pending' AND received_at < ?1 ORDER BY id LIMIT ?2",
        )
        .map_err(unavailable)?;
    let ids = statement
        .query_map(params![before.to_rfc3339(), limit], |row| row.get(0))
        .map_err(unavailable)?;
    ids.collect::<Result<_, _>>().map_err(unavailable)
}

/// Deletes the deliveries `ids` that are still final and received before `before`, with their
/// bodies and steps; returns how many went.
pub(super) fn purge(
    writer: &mut Writer,
    ids: &[i64],
    before: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let connection = &writer.connection;
    let before = before.to_rfc3339();
    let mut removed = 0;
    for id in ids {
        let deleted = connection
            .prepare_cached(
                "DELETE FROM webhook_deliveries
                 WHERE id = ?1 AND status <> 'pending' AND received_at < ?2",
            )
            .and_then(|mut statement| statement.execute(params![id, before]))
            .map_err(unavailable)?;
        if deleted == 0 {
            continue;
        }
        for sql in [
            "DELETE FROM webhook_bodies WHERE delivery_id = ?1",
            "DELETE FROM delivery_steps WHERE delivery_id = ?1",
        ] {
            connection
                .prepare_cached(sql)
                .and_then(|mut statement| statement.execute([id]))
                .map_err(unavailable)?;
        }
        removed += 1;
    }
    Ok(removed)
}

fn delivery_id(connection: &Connection, webhook_id: &str) -> Result<Option<i64>, StoreError> {
    connection
        .prepare_cached(
            "SELECT id FROM webhook_deliveries WHERE webhook_key = ?1 AND webhook_id = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![webhook_key(webhook_id), webhook_id], |row| {
                    row.get(0)
                })
                .optional()
        })
        .map_err(unavailable)
}

/// Erases a shop's deliveries with their bodies and steps.
pub(super) fn erase_shop(connection: &Connection, shop: &str) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM webhook_bodies WHERE delivery_id IN
             (SELECT id FROM webhook_deliveries WHERE shop = ?1)",
        "DELETE FROM delivery_steps WHERE delivery_id IN
             (SELECT id FROM webhook_deliveries WHERE shop = ?1)",
        "DELETE FROM webhook_deliveries WHERE shop = ?1",
    ] {
        connection.execute(sql, [shop]).map_err(unavailable)?;
    }
    Ok(())
}

/// Records of rows of [`SUMMARY_COLUMNS`], followed by the body and its codec `with_bodies`.
fn records_of(
    rows: &mut rusqlite::Rows<'_>,
    with_bodies: bool,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let mut record = summary(row).map_err(unavailable)?.into_record()?;
        if with_bodies {
            record.body = StoredBody::read(row, 12).map_err(unavailable)?.unpack()?;
        }
        records.push(record);
    }
    Ok(records)
}

const SUMMARY_COLUMNS: &str = "d.id, d.webhook_id, d.shop, d.topic, d.api_version, d.event_id, \
     d.triggered_at, d.received_at, d.status, d.redeliveries, d.attempts, d.reason";

struct SummaryRow {
    sequence: i64,
    webhook_id: String,
    shop: String,
    topic: String,
    api_version: String,
    event_id: Option<String>,
    triggered_at: Option<String>,
    received_at: String,
    status: String,
    redeliveries: u32,
    attempts: u32,
    reason: Option<String>,
}

fn summary(row: &rusqlite::Row<'_>) -> rusqlite::Result<SummaryRow> {
    Ok(SummaryRow {
        sequence: row.get(0)?,
        webhook_id: row.get(1)?,
        shop: row.get(2)?,
        topic: row.get(3)?,
        api_version: row.get(4)?,
        event_id: row.get(5)?,
        triggered_at: row.get(6)?,
        received_at: row.get(7)?,
        status: row.get(8)?,
        redeliveries: row.get(9)?,
        attempts: row.get(10)?,
        reason: row.get(11)?,
    })
}

impl SummaryRow {
    fn into_record(self) -> Result<DeliveryRecord, StoreError> {
        Ok(DeliveryRecord {
            sequence: self.sequence,
            webhook_id: self.webhook_id,
            shop: self.shop,
            topic: self.topic,
            api_version: self.api_version,
            event_id: self.event_id,
            triggered_at: self.triggered_at.as_deref().map(parse_time).transpose()?,
            received_at: parse_time(&self.received_at)?,
            status: DeliveryStatus::parse(&self.status).ok_or_else(|| {
                StoreError::Unavailable(format!("unknown delivery status {}", self.status).into())
            })?,
            redeliveries: self.redeliveries,
            attempts: self.attempts,
            reason: self.reason,
            headers: Vec::new(),
            body: Vec::new(),
            history: Vec::new(),
        })
    }
}

pub(super) fn pending(
    connection: &Connection,
    limit: u32,
    with_bodies: bool,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let sql = if with_bodies {
        format!(
            "SELECT {SUMMARY_COLUMNS}, b.body, b.codec FROM webhook_deliveries d
             JOIN webhook_bodies b ON b.delivery_id = d.id
             WHERE d.status = 'pending' ORDER BY d.id LIMIT ?1"
        )
    } else {
        format!(
            "SELECT {SUMMARY_COLUMNS} FROM webhook_deliveries d
             WHERE d.status = 'pending' ORDER BY d.id LIMIT ?1"
        )
    };
    let mut statement = connection.prepare_cached(&sql).map_err(unavailable)?;
    let mut rows = statement.query([limit]).map_err(unavailable)?;
    records_of(&mut rows, with_bodies)
}

fn time_text(time: Option<DateTime<Utc>>) -> Option<String> {
    time.map(|time| time.to_rfc3339())
}

pub(super) fn list(
    connection: &Connection,
    filter: &DeliveryFilter,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    // received_at is RFC 3339 in UTC from one formatter, so text order is time order.
    let order = if filter.after.is_some() {
        "ASC"
    } else {
        "DESC"
    };
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS} FROM webhook_deliveries d
             WHERE (?1 IS NULL OR d.shop = ?1) AND (?2 IS NULL OR d.topic = ?2)
               AND (?3 IS NULL OR d.received_at >= ?3) AND (?4 IS NULL OR d.received_at < ?4)
               AND (?5 IS NULL OR d.status = ?5) AND (?6 IS NULL OR d.id > ?6)
             ORDER BY d.id {order} LIMIT ?7"
        ))
        .map_err(unavailable)?;
    let rows = statement
        .query_map(
            params![
                filter.shop,
                filter.topic,
                time_text(filter.since),
                time_text(filter.until),
                filter.status.map(DeliveryStatus::as_str),
                filter.after,
                filter.limit,
            ],
            summary,
        )
        .map_err(unavailable)?;
    rows.map(|row| row.map_err(unavailable)?.into_record())
        .collect()
}

pub(super) fn one(
    connection: &Connection,
    webhook_id: &str,
) -> Result<Option<DeliveryRecord>, StoreError> {
    let found = connection
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS}, b.headers, b.body, b.codec FROM webhook_deliveries d
             JOIN webhook_bodies b ON b.delivery_id = d.id
             WHERE d.webhook_key = ?1 AND d.webhook_id = ?2"
        ))
        .and_then(|mut statement| {
            statement
                .query_row(params![webhook_key(webhook_id), webhook_id], |row| {
                    Ok((
                        summary(row)?,
                        row.get::<_, String>(12)?,
                        StoredBody::read(row, 13)?,
                    ))
                })
                .optional()
        })
        .map_err(unavailable)?;
    let Some((row, headers, body)) = found else {
        return Ok(None);
    };
    let mut record = row.into_record()?;
    record.headers = serde_json::from_str(&headers).map_err(StoreError::unavailable)?;
    record.body = body.unpack()?;
    // The log's first step is the store itself; later ones were appended.
    record.history.push(DeliveryStep {
        at: record.received_at,
        outcome: "stored".to_owned(),
        detail: None,
    });
    let mut statement = connection
        .prepare_cached(
            "SELECT at, outcome, detail FROM delivery_steps WHERE delivery_id = ?1 ORDER BY step",
        )
        .map_err(unavailable)?;
    let mut rows = statement.query([record.sequence]).map_err(unavailable)?;
    while let Some(row) = rows.next().map_err(unavailable)? {
        let at: String = row.get(0).map_err(unavailable)?;
        record.history.push(DeliveryStep {
            at: parse_time(&at)?,
            outcome: row.get(1).map_err(unavailable)?,
            detail: row.get(2).map_err(unavailable)?,
        });
    }
    Ok(Some(record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::migrations;

    fn order_json(lines: usize) -> Vec<u8> {
        let items: Vec<String> = (0..lines)
            .map(|n| {
                format!(
                    r#"{{"id":{n},"sku":"SKU-{n}","quantity":{q},"price":"19.90","title":"Tee {n}","vendor":"Acme","taxable":true}}"#,
                    q = n % 4 + 1
                )
            })
            .collect();
        format!(r#"{{"id":1,"line_items":[{}]}}"#, items.join(",")).into_bytes()
    }

    #[test]
    fn json_bodies_are_stored_compressed_and_read_back_byte_for_byte() {
        let body = order_json(30);
        let stored = StoredBody::pack(&body);
        assert_eq!(stored.codec, LZ4);
        assert!(
            stored.bytes.len() * 2 < body.len(),
            "{} of {}",
            stored.bytes.len(),
            body.len()
        );
        assert_eq!(stored.unpack().unwrap(), body);
    }

    #[test]
    fn one_thread_packing_bodies_of_every_size_in_turn_reads_each_back() {
        // The thread's table and buffer are reused for small bodies, and a large one (past 64 KB,
        // the small table's reach) between them takes the other path: none may leak matches
        // from one body into the next.
        let bodies = [
            order_json(30),
            order_json(2_000),
            order_json(5),
            order_json(30),
            order_json(400),
        ];
        assert!(bodies[1].len() > usize::from(u16::MAX));
        for body in &bodies {
            let stored = StoredBody::pack(body);
            assert_eq!(stored.codec, LZ4);
            assert_eq!(
                lz4_flex::block::decompress_size_prepended(&stored.bytes).unwrap(),
                *body
            );
            assert_eq!(stored.unpack().unwrap(), *body);
        }
    }

    #[test]
    fn bodies_that_do_not_compress_are_stored_as_received() {
        // A short body and bytes without repetition: compression would not save an eighth.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[3]
            })
            .collect();
        for body in [b"{}".to_vec(), noise, Vec::new()] {
            let stored = StoredBody::pack(&body);
            assert_eq!(stored.codec, RAW);
            assert_eq!(stored.bytes, body);
            assert_eq!(stored.unpack().unwrap(), body);
        }
    }

    #[test]
    fn a_corrupt_or_unknown_stored_body_is_an_error_not_a_guess() {
        let packed = StoredBody::pack(&order_json(30)).bytes;
        let cases = [
            // A length far beyond any delivery.
            (vec![0xff, 0xff, 0xff, 0x7f, 0x00], LZ4),
            // Too short to hold a length.
            (vec![1, 0], LZ4),
            // The compressed data cut short.
            (packed[..packed.len() / 2].to_vec(), LZ4),
            (packed.clone(), 7),
        ];
        for (bytes, codec) in cases {
            assert!(StoredBody { bytes, codec }.unpack().is_err());
        }
    }

    #[test]
    fn bodies_stored_before_compression_read_back_unchanged() {
        let mut connection = Connection::open_in_memory().unwrap();
        migrations::run_until(&mut connection, 10).unwrap();
        connection
            .execute_batch(
                "INSERT INTO webhook_deliveries (id, webhook_id, shop, topic, api_version,
                     received_at, status)
                 VALUES (1, 'w1', 'a.myshopify.com', 'orders/create', '2026-10',
                     '2026-12-01T00:00:00+00:00', 'published');
                 INSERT INTO webhook_bodies (delivery_id, headers, body)
                     VALUES (1, '[]', CAST('{\"id\":1}' AS BLOB));",
            )
            .unwrap();
        migrations::run(&mut connection).unwrap();
        assert_eq!(body(&connection, "w1").unwrap().unwrap(), br#"{"id":1}"#);
        assert_eq!(
            one(&connection, "w1").unwrap().unwrap().body,
            br#"{"id":1}"#
        );
    }

    #[tokio::test]
    async fn deliveries_stored_before_their_keys_are_found_counted_and_deduplicated_after() {
        use crate::domain::NewDelivery;
        use crate::shopify::shop::ShopDomain;
        use crate::store::Store;
        use crate::store::sqlite::SqliteStore;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        {
            let mut connection = Connection::open(&path).unwrap();
            migrations::run_until(&mut connection, 11).unwrap();
            connection
                .execute_batch(
                    "INSERT INTO webhook_deliveries (id, webhook_id, shop, topic, api_version,
                         event_id, received_at, status)
                     VALUES
                       (1, 'w1', 'a.myshopify.com', 'orders/create', '2026-10', 'e1',
                        '2026-12-01T00:00:00+00:00', 'published'),
                       (2, 'w2', 'a.myshopify.com', 'orders/create', '2026-10', NULL,
                        '2026-12-01T00:00:01+00:00', 'pending');
                     INSERT INTO webhook_bodies (delivery_id, headers, body)
                       VALUES (1, '[]', CAST('{\"id\":1}' AS BLOB)),
                              (2, '[]', CAST('{\"id\":2}' AS BLOB));",
                )
                .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let delivery = |webhook_id: &str, event_id: Option<&str>| NewDelivery {
            webhook_id: webhook_id.to_owned(),
            shop: ShopDomain::parse("a.myshopify.com").unwrap(),
            topic: "orders/create".to_owned(),
            api_version: "2026-10".to_owned(),
            event_id: event_id.map(str::to_owned),
            triggered_at: None,
            received_at: Utc::now(),
            headers: Vec::new(),
            body: br#"{"id":9}"#.to_vec(),
        };
        assert_eq!(
            store
                .put_delivery(&delivery("w1", Some("e1")))
                .await
                .unwrap(),
            DeliveryReceipt::Redelivery
        );
        assert_eq!(
            store.put_delivery(&delivery("w2", None)).await.unwrap(),
            DeliveryReceipt::Redelivery
        );
        assert_eq!(
            store
                .put_delivery(&delivery("w3", Some("e1")))
                .await
                .unwrap(),
            DeliveryReceipt::DuplicateEvent
        );
        // The same event id of another topic is another event.
        let mut other_topic = delivery("w4", Some("e1"));
        other_topic.topic = "orders/updated".to_owned();
        assert_eq!(
            store.put_delivery(&other_topic).await.unwrap(),
            DeliveryReceipt::Stored
        );
        let first = store.delivery("w1").await.unwrap().unwrap();
        assert_eq!(first.body, br#"{"id":1}"#);
        assert_eq!(first.redeliveries, 1);
        assert_eq!(
            store.delivery_body("w2").await.unwrap().unwrap(),
            br#"{"id":2}"#
        );
        assert!(store.delivery("w5").await.unwrap().is_none());
        store.close().await;
    }
}
