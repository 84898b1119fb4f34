//! The webhook delivery log in SQLite: one row per webhook id, its outbox status and history.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Writer, parse_time};
use crate::domain::{
    DeliveryFilter, DeliveryReceipt, DeliveryRecord, DeliveryStatus, DeliveryStep, NewDelivery,
};
use crate::store::StoreError;

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::unavailable(error)
}

fn step(outcome: &str, detail: Option<&str>) -> String {
    serde_json::to_string(&DeliveryStep {
        at: Utc::now(),
        outcome: outcome.to_owned(),
        detail: detail.map(str::to_owned),
    })
    .unwrap_or_else(|_| "{}".to_owned())
}

pub(super) fn put_delivery(
    writer: &mut Writer,
    delivery: &NewDelivery,
) -> Result<DeliveryReceipt, StoreError> {
    let connection = &writer.connection;
    let redelivered = connection
        .prepare_cached(
            "UPDATE webhook_deliveries SET redeliveries = redeliveries + 1,
                 history = json_insert(history, '$[#]', json(?2))
             WHERE webhook_id = ?1",
        )
        .and_then(|mut statement| {
            statement.execute(params![delivery.webhook_id, step("redelivered", None)])
        })
        .map_err(unavailable)?;
    if redelivered > 0 {
        return Ok(DeliveryReceipt::Redelivery);
    }
    let duplicate = match &delivery.event_id {
        Some(event_id) => connection
            .prepare_cached(
                "SELECT webhook_id FROM webhook_deliveries
                 WHERE shop = ?1 AND topic = ?2 AND event_id = ?3 LIMIT 1",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(
                        params![delivery.shop.as_str(), delivery.topic, event_id],
                        |row| row.get::<_, String>(0),
                    )
                    .optional()
            })
            .map_err(unavailable)?,
        None => None,
    };
    let (status, first_step) = match &duplicate {
        Some(original) => (
            DeliveryStatus::Duplicate,
            step("duplicate", Some(&format!("same event as {original}"))),
        ),
        None => (DeliveryStatus::Pending, step("stored", None)),
    };
    let headers = serde_json::to_string(&delivery.headers).map_err(StoreError::unavailable)?;
    connection
        .prepare_cached(
            "INSERT INTO webhook_deliveries (webhook_id, shop, topic, api_version, event_id,
                 triggered_at, received_at, headers, body, status, history)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, json_array(json(?11)))",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                delivery.webhook_id,
                delivery.shop.as_str(),
                delivery.topic,
                delivery.api_version,
                delivery.event_id,
                delivery.triggered_at.map(|time| time.to_rfc3339()),
                delivery.received_at.to_rfc3339(),
                headers,
                delivery.body,
                status.as_str(),
                first_step,
            ])
        })
        .map_err(unavailable)?;
    Ok(match status {
        DeliveryStatus::Duplicate => DeliveryReceipt::DuplicateEvent,
        _ => DeliveryReceipt::Stored,
    })
}

pub(super) fn record_delivery(
    writer: &mut Writer,
    webhook_id: &str,
    status: Option<DeliveryStatus>,
    outcome: &str,
    detail: Option<&str>,
    failed_attempt: bool,
) -> Result<bool, StoreError> {
    let changed = writer
        .connection
        .prepare_cached(
            "UPDATE webhook_deliveries SET status = COALESCE(?2, status),
                 attempts = attempts + ?3,
                 reason = CASE WHEN ?2 = 'dead' THEN ?4 WHEN ?2 IS NULL THEN reason ELSE NULL END,
                 history = json_insert(history, '$[#]', json(?5))
             WHERE webhook_id = ?1",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                webhook_id,
                status.map(DeliveryStatus::as_str),
                i64::from(failed_attempt),
                detail,
                step(outcome, detail),
            ])
        })
        .map_err(unavailable)?;
    Ok(changed == 1)
}

pub(super) fn replace_body(
    writer: &mut Writer,
    webhook_id: &str,
    body: &[u8],
) -> Result<bool, StoreError> {
    let changed = writer
        .connection
        .execute(
            "UPDATE webhook_deliveries SET body = ?2,
                 history = json_insert(history, '$[#]', json(?3))
             WHERE webhook_id = ?1",
            params![webhook_id, body, step("redacted", None)],
        )
        .map_err(unavailable)?;
    Ok(changed == 1)
}

const SUMMARY_COLUMNS: &str = "id, webhook_id, shop, topic, api_version, event_id, triggered_at, \
     received_at, status, redeliveries, attempts, reason";

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
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS}, body FROM webhook_deliveries WHERE status = 'pending'
             ORDER BY id LIMIT ?1"
        ))
        .map_err(unavailable)?;
    let mut rows = statement.query([limit]).map_err(unavailable)?;
    let mut records = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let mut record = summary(row).map_err(unavailable)?.into_record()?;
        record.body = row.get(12).map_err(unavailable)?;
        records.push(record);
    }
    Ok(records)
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
            "SELECT {SUMMARY_COLUMNS} FROM webhook_deliveries
             WHERE (?1 IS NULL OR shop = ?1) AND (?2 IS NULL OR topic = ?2)
               AND (?3 IS NULL OR received_at >= ?3) AND (?4 IS NULL OR received_at < ?4)
               AND (?5 IS NULL OR status = ?5) AND (?6 IS NULL OR id > ?6)
             ORDER BY id {order} LIMIT ?7"
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
            "SELECT {SUMMARY_COLUMNS}, headers, body, history FROM webhook_deliveries
             WHERE webhook_id = ?1"
        ))
        .and_then(|mut statement| {
            statement
                .query_row([webhook_id], |row| {
                    Ok((
                        summary(row)?,
                        row.get::<_, String>(12)?,
                        row.get::<_, Vec<u8>>(13)?,
                        row.get::<_, String>(14)?,
                    ))
                })
                .optional()
        })
        .map_err(unavailable)?;
    let Some((row, headers, body, history)) = found else {
        return Ok(None);
    };
    let mut record = row.into_record()?;
    record.headers = serde_json::from_str(&headers).map_err(StoreError::unavailable)?;
    record.body = body;
    record.history = serde_json::from_str(&history).map_err(StoreError::unavailable)?;
    Ok(Some(record))
}
