//! Schema migrations, applied in order at open; `PRAGMA user_version` records how many ran.

use rusqlite::Connection;

/// One schema step: SQL, or SQL followed by a data conversion in Rust.
enum Migration {
    Sql(&'static str),
    Convert(
        &'static str,
        fn(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ),
}

/// Each entry is one migration; never edit a released one, append a new one.
const MIGRATIONS: &[Migration] = &[
    // 1: tenants, API keys, uploads, sales lines and daily sales.
    Migration::Sql(
        r"
    CREATE TABLE tenants (
        id          INTEGER PRIMARY KEY,
        public_id   TEXT NOT NULL UNIQUE,
        name        TEXT NOT NULL,
        timezone    TEXT NOT NULL,
        created_at  TEXT NOT NULL
    );
    CREATE TABLE api_keys (
        key_hash    BLOB PRIMARY KEY,
        tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
        created_at  TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE series (
        id          INTEGER PRIMARY KEY,
        tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
        sku         TEXT NOT NULL,
        location    TEXT NOT NULL,
        product     TEXT,
        UNIQUE (tenant_id, sku, location)
    );
    CREATE TABLE uploads (
        id          INTEGER PRIMARY KEY,
        tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
        public_id   TEXT NOT NULL UNIQUE,
        status      TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        report      TEXT NOT NULL
    );
    CREATE INDEX uploads_by_tenant ON uploads (tenant_id, id);
    -- One row per stored sales line, clustered by local day so that imports of chronological
    -- exports append instead of rewriting the whole tree. The key is the line identity's hash (see
    -- LineIdentity); seen_upload_id is the last upload that presented the line: it tells repeats
    -- within one upload (distinct sales) from lines an earlier upload brought (duplicates).
    CREATE TABLE sales_lines (
        tenant_id       INTEGER NOT NULL,
        day             INTEGER NOT NULL,
        line_key        INTEGER NOT NULL,
        series_id       INTEGER NOT NULL,
        units           REAL NOT NULL,
        revenue         REAL NOT NULL,
        upload_id       INTEGER NOT NULL,
        seen_upload_id  INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, day, line_key)
    ) WITHOUT ROWID;
    -- Net units and revenue per local day and series, kept exact with every write of sales lines;
    -- day-major for the same reason. One series' history is read by point lookups per day.
    CREATE TABLE daily_sales (
        tenant_id   INTEGER NOT NULL,
        day         INTEGER NOT NULL,
        series_id   INTEGER NOT NULL,
        units       REAL NOT NULL,
        revenue     REAL NOT NULL,
        PRIMARY KEY (tenant_id, day, series_id)
    ) WITHOUT ROWID;
    ",
    ),
    // 2: stored forecasts, one row per series: metadata as JSON, points as little-endian f32
    // quintuples (mean, lo80, hi80, lo95, hi95) per day from `start`.
    Migration::Sql(
        r"
    CREATE TABLE forecasts (
        tenant_id   INTEGER NOT NULL,
        series_id   INTEGER NOT NULL,
        start       INTEGER NOT NULL,
        meta        TEXT NOT NULL,
        points      BLOB NOT NULL,
        PRIMARY KEY (tenant_id, series_id)
    ) WITHOUT ROWID;
    ",
    ),
    // 3: stock on hand and replenishment settings per SKU x location.
    Migration::Sql(
        r"
    CREATE TABLE stock_levels (
        tenant_id       INTEGER NOT NULL,
        sku             TEXT NOT NULL,
        location        TEXT NOT NULL,
        on_hand         REAL NOT NULL,
        lead_time_days  INTEGER NOT NULL,
        service_level   REAL NOT NULL,
        updated_at      TEXT NOT NULL,
        PRIMARY KEY (tenant_id, sku, location)
    ) WITHOUT ROWID;
    ",
    ),
    // 4: sales lines and daily sales packed into pages (see `pages`): many records per row.
    Migration::Convert(
        r"
    CREATE TABLE line_pages (
        tenant_id   INTEGER NOT NULL,
        day         INTEGER NOT NULL,
        bucket      INTEGER NOT NULL,
        lines       BLOB NOT NULL,
        PRIMARY KEY (tenant_id, day, bucket)
    ) WITHOUT ROWID;
    CREATE TABLE day_pages (
        tenant_id   INTEGER NOT NULL,
        day         INTEGER NOT NULL,
        bucket      INTEGER NOT NULL,
        cells       BLOB NOT NULL,
        PRIMARY KEY (tenant_id, day, bucket)
    ) WITHOUT ROWID;
    ",
        pack_sales_into_pages,
    ),
    // 5: Shopify installs (one per shop, owning one tenant; tokens sealed with AES-256-GCM), the
    // compliance audit log (no personal data) and pending customer data requests.
    Migration::Sql(
        r"
    CREATE TABLE shops (
        domain              TEXT PRIMARY KEY,
        tenant_id           INTEGER NOT NULL UNIQUE REFERENCES tenants(id),
        state               TEXT NOT NULL,
        scopes              TEXT NOT NULL,
        installed_at        TEXT NOT NULL,
        uninstalled_at      TEXT,
        access_token        BLOB,
        access_expires_at   TEXT,
        refresh_token       BLOB,
        refresh_expires_at  TEXT
    ) WITHOUT ROWID;
    CREATE TABLE compliance_log (
        id          INTEGER PRIMARY KEY,
        shop        TEXT NOT NULL,
        topic       TEXT NOT NULL,
        webhook_id  TEXT NOT NULL UNIQUE,
        handled_at  TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        detail      TEXT NOT NULL
    );
    CREATE INDEX compliance_log_by_shop ON compliance_log (shop, id);
    CREATE TABLE data_requests (
        shop                TEXT NOT NULL,
        request_id          TEXT NOT NULL,
        customer_id         TEXT NOT NULL,
        orders_requested    TEXT NOT NULL,
        received_at         TEXT NOT NULL,
        PRIMARY KEY (shop, request_id)
    ) WITHOUT ROWID;
    ",
    ),
    // 6: the webhook delivery log: every verified delivery, stored before it is answered 200, with
    // its outbox state (pending until published) and final outcome.
    Migration::Sql(
        r"
    CREATE TABLE webhook_deliveries (
        id              INTEGER PRIMARY KEY,
        webhook_id      TEXT NOT NULL UNIQUE,
        shop            TEXT NOT NULL,
        topic           TEXT NOT NULL,
        api_version     TEXT NOT NULL,
        event_id        TEXT,
        triggered_at    TEXT,
        received_at     TEXT NOT NULL,
        status          TEXT NOT NULL,
        redeliveries    INTEGER NOT NULL DEFAULT 0,
        attempts        INTEGER NOT NULL DEFAULT 0,
        reason          TEXT
    );
    CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (id) WHERE status = 'pending';
    CREATE INDEX webhook_deliveries_by_shop ON webhook_deliveries (shop, id);
    CREATE INDEX webhook_deliveries_by_event ON webhook_deliveries (shop, topic, event_id)
        WHERE event_id IS NOT NULL;
    -- The raw delivery, written once (redaction aside), apart from the state that changes.
    CREATE TABLE webhook_bodies (
        delivery_id     INTEGER PRIMARY KEY,
        headers         TEXT NOT NULL,
        body            BLOB NOT NULL
    );
    -- What happened to a delivery after it was stored, appended.
    CREATE TABLE delivery_steps (
        delivery_id     INTEGER NOT NULL,
        step            INTEGER NOT NULL,
        at              TEXT NOT NULL,
        outcome         TEXT NOT NULL,
        detail          TEXT,
        PRIMARY KEY (delivery_id, step)
    ) WITHOUT ROWID;
    CREATE TABLE shopify_orders (
        tenant_id   INTEGER NOT NULL,
        order_id    TEXT NOT NULL,
        updated_at  TEXT NOT NULL,
        lines       TEXT NOT NULL,
        PRIMARY KEY (tenant_id, order_id)
    ) WITHOUT ROWID;
    CREATE TABLE shopify_variants (
        tenant_id           INTEGER NOT NULL,
        variant_id          TEXT NOT NULL,
        product_id          TEXT NOT NULL,
        inventory_item_id   TEXT,
        sku                 TEXT NOT NULL,
        PRIMARY KEY (tenant_id, variant_id)
    ) WITHOUT ROWID;
    CREATE INDEX shopify_variants_by_item ON shopify_variants (tenant_id, inventory_item_id);
    CREATE INDEX shopify_variants_by_product ON shopify_variants (tenant_id, product_id);
    ",
    ),
    // 7: order sync (bulk backfill, reconciliation) status per tenant, and bulk operations
    // Shopify said finished (`bulk_operations/finish`), which a syncer in another process polls.
    Migration::Sql(
        r"
    CREATE TABLE shopify_syncs (
        tenant_id       INTEGER PRIMARY KEY,
        state           TEXT NOT NULL,
        status          TEXT NOT NULL
    );
    CREATE TABLE shopify_bulk_finished (
        tenant_id       INTEGER NOT NULL,
        operation_id    TEXT NOT NULL,
        at              TEXT NOT NULL,
        PRIMARY KEY (tenant_id, operation_id)
    ) WITHOUT ROWID;
    ",
    ),
    // 8: the UI: products-table figures per series, tenant settings, browser sessions of standalone
    // tenants and their one-time sign-in links (secrets stored as SHA-256 only).
    Migration::Sql(
        r"
    CREATE TABLE series_stats (
        tenant_id   INTEGER NOT NULL,
        series_id   INTEGER NOT NULL,
        sales_28    REAL NOT NULL,
        prev_28     REAL NOT NULL,
        forecast_28 REAL NOT NULL,
        PRIMARY KEY (tenant_id, series_id)
    ) WITHOUT ROWID;
    CREATE TABLE tenant_overview (
        tenant_id   INTEGER PRIMARY KEY REFERENCES tenants(id),
        body        TEXT NOT NULL
    );
    CREATE TABLE tenant_settings (
        tenant_id               INTEGER PRIMARY KEY REFERENCES tenants(id),
        default_lead_time_days  INTEGER NOT NULL,
        service_level           REAL NOT NULL,
        horizon_days            INTEGER NOT NULL
    );
    CREATE TABLE sessions (
        secret_hash BLOB PRIMARY KEY,
        tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
        csrf_token  TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        expires_at  TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE sign_in_links (
        secret_hash BLOB PRIMARY KEY,
        tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
        expires_at  TEXT NOT NULL
    ) WITHOUT ROWID;
    ",
    ),
    // 9: outbox claims: which outbox (several processes may open one data directory) is publishing
    // a pending delivery, and until when (fixed-width RFC 3339 in UTC, so text order is time order).
    Migration::Sql(
        r"
    ALTER TABLE webhook_deliveries ADD COLUMN claimed_by TEXT;
    ALTER TABLE webhook_deliveries ADD COLUMN claim_until TEXT;
    ",
    ),
    // 10: pages re-encoded from fixed-size records (40 bytes a line, 24 a cell) to packed ones.
    Migration::Convert("", repack_pages),
    // 11: a delivery body may be stored compressed; `codec` says how (0: as received, 1: LZ4
    // block with its length first). Existing bodies stay as they are.
    Migration::Sql(
        r"
    ALTER TABLE webhook_bodies ADD COLUMN codec INTEGER NOT NULL DEFAULT 0;
    ",
    ),
    // 12: deliveries found by 8-byte hashes of their webhook id and of their event, indexed,
    // instead of indexes of the texts (a UNIQUE webhook id and shop, topic, event id): receipts
    // insert into both at random places, and small keys split and write far fewer pages. The
    // table is rebuilt (a UNIQUE column's index cannot be dropped) and the keys computed.
    Migration::Convert(
        r"
    CREATE TABLE webhook_deliveries_keyed (
        id              INTEGER PRIMARY KEY,
        webhook_key     INTEGER NOT NULL DEFAULT 0,
        event_key       INTEGER,
        webhook_id      TEXT NOT NULL,
        shop            TEXT NOT NULL,
        topic           TEXT NOT NULL,
        api_version     TEXT NOT NULL,
        event_id        TEXT,
        triggered_at    TEXT,
        received_at     TEXT NOT NULL,
        status          TEXT NOT NULL,
        redeliveries    INTEGER NOT NULL DEFAULT 0,
        attempts        INTEGER NOT NULL DEFAULT 0,
        reason          TEXT,
        claimed_by      TEXT,
        claim_until     TEXT
    );
    INSERT INTO webhook_deliveries_keyed (id, webhook_id, shop, topic, api_version, event_id,
        triggered_at, received_at, status, redeliveries, attempts, reason, claimed_by, claim_until)
    SELECT id, webhook_id, shop, topic, api_version, event_id, triggered_at, received_at, status,
        redeliveries, attempts, reason, claimed_by, claim_until
    FROM webhook_deliveries;
    DROP TABLE webhook_deliveries;
    ALTER TABLE webhook_deliveries_keyed RENAME TO webhook_deliveries;
    ",
        key_deliveries,
    ),
    // 13: how each tenant's line identities are hashed (see `IdentityScheme`): the tenants that
    // exist keep SHA-256, with which their stored lines were found; new ones are created with XXH3.
    Migration::Sql(
        r"
    ALTER TABLE tenants ADD COLUMN identity_scheme TEXT NOT NULL DEFAULT 'sha256';
    ",
    ),
    // 14: line and day pages in rowid tables, found through a UNIQUE index of their key, instead
    // of WITHOUT ROWID tables keyed by it. A page (kilobytes) is far larger than a WITHOUT ROWID
    // row should be: its cell spilled onto overflow pages, a B-tree page held only a few keys, and
    // a lookup copied the whole record of every key it compared on the way down (overflow pages
    // included). Now the index holds the small keys and the table is reached by rowid. Same
    // columns, same order; `id` is new.
    Migration::Sql(
        r"
    CREATE TABLE line_pages_by_id (
        id          INTEGER PRIMARY KEY,
        tenant_id   INTEGER NOT NULL,
        day         INTEGER NOT NULL,
        bucket      INTEGER NOT NULL,
        lines       BLOB NOT NULL,
        UNIQUE (tenant_id, day, bucket)
    );
    INSERT INTO line_pages_by_id (tenant_id, day, bucket, lines)
    SELECT tenant_id, day, bucket, lines FROM line_pages ORDER BY tenant_id, day, bucket;
    DROP TABLE line_pages;
    ALTER TABLE line_pages_by_id RENAME TO line_pages;
    CREATE TABLE day_pages_by_id (
        id          INTEGER PRIMARY KEY,
        tenant_id   INTEGER NOT NULL,
        day         INTEGER NOT NULL,
        bucket      INTEGER NOT NULL,
        cells       BLOB NOT NULL,
        UNIQUE (tenant_id, day, bucket)
    );
    INSERT INTO day_pages_by_id (tenant_id, day, bucket, cells)
    SELECT tenant_id, day, bucket, cells FROM day_pages ORDER BY tenant_id, day, bucket;
    DROP TABLE day_pages;
    ALTER TABLE day_pages_by_id RENAME TO day_pages;
    ",
    ),
    // 15: forecasts likewise: a row (metadata and 20 bytes a day of points) is over a kilobyte,
    // too large for a WITHOUT ROWID table. 100,000 forecasts took 446 MB that way and 197 MB as a
    // rowid table, and were written 2.3x and read 3.5x faster (measured with Python's sqlite3).
    Migration::Sql(
        r"
    CREATE TABLE forecasts_by_id (
        id          INTEGER PRIMARY KEY,
        tenant_id   INTEGER NOT NULL,
        series_id   INTEGER NOT NULL,
        start       INTEGER NOT NULL,
        meta        TEXT NOT NULL,
        points      BLOB NOT NULL,
        UNIQUE (tenant_id, series_id)
    );
    INSERT INTO forecasts_by_id (tenant_id, series_id, start, meta, points)
    SELECT tenant_id, series_id, start, meta, points FROM forecasts ORDER BY tenant_id, series_id;
    DROP TABLE forecasts;
    ALTER TABLE forecasts_by_id RENAME TO forecasts;
    ",
    ),
    // 16: how far the receipt journal has been copied into the delivery log (one row). Written in
    // the same transaction as the deliveries it covers, so that after a crash the journal's
    // records past it, and only those, are copied again.
    Migration::Sql(
        r"
    CREATE TABLE receipt_journal (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        ingested    INTEGER NOT NULL
    );
    INSERT INTO receipt_journal (id, ingested) VALUES (1, 0);
    ",
    ),
];

/// Applies the migrations this database has not seen yet, each in its own transaction.
///
/// # Errors
/// When a migration fails; the database stays at the last good version.
pub(super) fn run(connection: &mut Connection) -> rusqlite::Result<()> {
    run_until(connection, MIGRATIONS.len())
}

/// Applies the migrations this database has not seen yet, up to the first `count`.
pub(super) fn run_until(connection: &mut Connection, count: usize) -> rusqlite::Result<()> {
    let applied: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(0);
    for (index, migration) in MIGRATIONS.iter().enumerate().take(count).skip(applied) {
        let transaction = connection.transaction()?;
        match migration {
            Migration::Sql(sql) => transaction.execute_batch(sql)?,
            Migration::Convert(sql, convert) => {
                transaction.execute_batch(sql)?;
                convert(&transaction)?;
            }
        }
        transaction.pragma_update(
            None,
            "user_version",
            i64::try_from(index + 1).unwrap_or(i64::MAX),
        )?;
        transaction.commit()?;
        tracing::info!(version = index + 1, "sqlite: migration applied");
    }
    Ok(())
}

/// Migration 12: computes the keys of every delivery (a few hundred rows at a time, by id), then
/// indexes them and restores the other indexes.
fn key_deliveries(transaction: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    use super::deliveries::{event_key, webhook_key};

    let mut select = transaction.prepare(
        "SELECT id, webhook_id, shop, topic, event_id FROM webhook_deliveries
         WHERE id > ?1 ORDER BY id LIMIT 256",
    )?;
    let mut update = transaction
        .prepare("UPDATE webhook_deliveries SET webhook_key = ?2, event_key = ?3 WHERE id = ?1")?;
    let mut after = i64::MIN;
    loop {
        let chunk: Vec<(i64, i64, Option<i64>)> = select
            .query_map([after], |row| {
                let webhook_id: String = row.get(1)?;
                let shop: String = row.get(2)?;
                let topic: String = row.get(3)?;
                let event_id: Option<String> = row.get(4)?;
                Ok((
                    row.get(0)?,
                    webhook_key(&webhook_id),
                    event_id.map(|event_id| event_key(&shop, &topic, &event_id)),
                ))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let Some(last) = chunk.last() else {
            break;
        };
        after = last.0;
        for (id, webhook, event) in chunk {
            update.execute(rusqlite::params![id, webhook, event])?;
        }
    }
    transaction.execute_batch(
        "CREATE INDEX webhook_deliveries_by_key ON webhook_deliveries (webhook_key);
         CREATE INDEX webhook_deliveries_by_event_key ON webhook_deliveries (event_key)
             WHERE event_key IS NOT NULL;
         CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (id)
             WHERE status = 'pending';
         CREATE INDEX webhook_deliveries_by_shop ON webhook_deliveries (shop, id);",
    )
}

/// Migration 4: moves every row of `sales_lines` and `daily_sales` into pages, then drops them.
fn pack_sales_into_pages(transaction: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    use super::pages::fixed::{encode_cells, encode_lines};
    use super::pages::{Cell, LineRecord, line_bucket, series_bucket};

    let upload = |row: &rusqlite::Row<'_>, index: usize| -> rusqlite::Result<u32> {
        let value: i64 = row.get(index)?;
        u32::try_from(value).map_err(|_| {
            rusqlite::Error::ToSqlConversionFailure(
                format!("upload id {value} exceeds 32 bits").into(),
            )
        })
    };
    pack_rows(
        transaction,
        "SELECT tenant_id, day, line_key, series_id, units, revenue, upload_id, seen_upload_id
         FROM sales_lines ORDER BY tenant_id, day, line_key",
        "INSERT INTO line_pages (tenant_id, day, bucket, lines) VALUES (?1, ?2, ?3, ?4)",
        |row| {
            let key: i64 = row.get(2)?;
            let record = LineRecord {
                key,
                series: row.get(3)?,
                units: row.get(4)?,
                revenue: row.get(5)?,
                upload: upload(row, 6)?,
                seen: upload(row, 7)?,
            };
            Ok(((row.get(0)?, row.get(1)?, line_bucket(key)), record))
        },
        encode_lines,
    )?;
    pack_rows(
        transaction,
        "SELECT tenant_id, day, series_id, units, revenue FROM daily_sales
         ORDER BY tenant_id, day, series_id",
        "INSERT INTO day_pages (tenant_id, day, bucket, cells) VALUES (?1, ?2, ?3, ?4)",
        |row| {
            let series: i64 = row.get(2)?;
            let cell = Cell {
                series,
                units: row.get(3)?,
                revenue: row.get(4)?,
            };
            Ok(((row.get(0)?, row.get(1)?, series_bucket(series)), cell))
        },
        encode_cells,
    )?;
    transaction.execute_batch("DROP TABLE sales_lines; DROP TABLE daily_sales;")
}

/// Migration 10: rewrites every line and daily-sales page in the packed format.
fn repack_pages(transaction: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    use super::pages::{encode_cells, encode_lines, fixed};

    let corrupt = |error: crate::store::StoreError| {
        rusqlite::Error::ToSqlConversionFailure(error.to_string().into())
    };
    repack(transaction, "line_pages", "lines", |bytes| {
        Ok(encode_lines(&fixed::decode_lines(bytes).map_err(corrupt)?))
    })?;
    repack(transaction, "day_pages", "cells", |bytes| {
        Ok(encode_cells(&fixed::decode_cells(bytes).map_err(corrupt)?))
    })
}

/// Replaces the blob in `column` of every row of `table` (keyed by tenant, day and bucket) with
/// its `convert`ed bytes, a few hundred rows at a time: no cursor is open on the table while it
/// changes, and memory stays bounded whatever the table's size.
fn repack(
    transaction: &rusqlite::Transaction<'_>,
    table: &str,
    column: &str,
    convert: impl Fn(&[u8]) -> rusqlite::Result<Vec<u8>>,
) -> rusqlite::Result<()> {
    let mut select = transaction.prepare(&format!(
        "SELECT tenant_id, day, bucket, {column} FROM {table}
         WHERE (tenant_id, day, bucket) > (?1, ?2, ?3) ORDER BY 1, 2, 3 LIMIT 256"
    ))?;
    let mut update = transaction.prepare(&format!(
        "UPDATE {table} SET {column} = ?4 WHERE tenant_id = ?1 AND day = ?2 AND bucket = ?3"
    ))?;
    let mut after: (i64, i64, i64) = (i64::MIN, i64::MIN, i64::MIN);
    loop {
        let mut chunk = Vec::new();
        let mut rows = select.query(rusqlite::params![after.0, after.1, after.2])?;
        while let Some(row) = rows.next()? {
            let key: (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
            chunk.push((key, convert(row.get_ref(3)?.as_blob()?)?));
        }
        drop(rows);
        let Some(&(last, _)) = chunk.last() else {
            return Ok(());
        };
        for ((tenant, day, bucket), bytes) in chunk {
            update.execute(rusqlite::params![tenant, day, bucket, bytes])?;
        }
        after = last;
    }
}

/// Reads the rows of `select` (ordered so that each page's rows are consecutive), groups them by
/// their `(tenant, day, bucket)` page and inserts each page, encoded, with `insert`.
fn pack_rows<T>(
    transaction: &rusqlite::Transaction<'_>,
    select: &str,
    insert: &str,
    record: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<((i64, i32, i64), T)>,
    encode: impl Fn(&[T]) -> Vec<u8>,
) -> rusqlite::Result<()> {
    let mut insert = transaction.prepare(insert)?;
    let mut select = transaction.prepare(select)?;
    let mut rows = select.query([])?;
    let mut page: Option<((i64, i32, i64), Vec<T>)> = None;
    let mut write = |((tenant, day, bucket), records): ((i64, i32, i64), Vec<T>)| {
        insert
            .execute(rusqlite::params![tenant, day, bucket, encode(&records)])
            .map(drop)
    };
    while let Some(row) = rows.next()? {
        let (slot, item) = record(row)?;
        match &mut page {
            Some((current, items)) if *current == slot => items.push(item),
            _ => {
                if let Some(full) = page.replace((slot, vec![item])) {
                    write(full)?;
                }
            }
        }
    }
    page.map_or(Ok(()), write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::pages::{LineRecord, decode_lines, for_each_cell, line_bucket};

    #[test]
    fn row_per_line_databases_are_packed_into_pages_losing_nothing() {
        let mut connection = Connection::open_in_memory().unwrap();
        run_until(&mut connection, 3).unwrap();
        connection
            .execute_batch(
                "INSERT INTO tenants VALUES (1, 'tn_a', 'A', 'UTC', 'now'), (2, 'tn_b', 'B', 'UTC', 'now');
                 INSERT INTO series VALUES (1, 1, 'S', '', NULL), (2000, 2, 'T', '', NULL);
                 INSERT INTO uploads VALUES (5, 1, 'up_a', 'complete', 'now', '{}');
                 INSERT INTO sales_lines VALUES
                    (1, 738000, -9, 1, 2.0, 5.0, 5, 5),
                    (1, 738000, 7, 1, 1.0, 2.5, 5, 6),
                    (1, 738001, 7, 1, 3.0, 0.0, 5, 5),
                    (2, 738000, 7, 2000, -1.0, -4.0, 5, 5);
                 INSERT INTO daily_sales VALUES
                    (1, 738000, 1, 3.0, 7.5), (1, 738001, 1, 3.0, 0.0), (2, 738000, 2000, -1.0, -4.0);",
            )
            .unwrap();
        run(&mut connection).unwrap();

        let pages: Vec<(i64, i32, i64, Vec<u8>)> = connection
            .prepare("SELECT tenant_id, day, bucket, lines FROM line_pages ORDER BY 1, 2, 3")
            .unwrap()
            .query_map([], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let summary: Vec<(i64, i32, i64, Vec<LineRecord>)> = pages
            .into_iter()
            .map(|(tenant, day, bucket, bytes)| {
                (tenant, day, bucket, decode_lines(&bytes).unwrap())
            })
            .collect();
        assert_eq!(summary.len(), 4);
        assert_eq!((summary[0].0, summary[0].1, summary[0].2), (1, 738000, 0));
        assert_eq!(summary[0].3[0].key, 7);
        assert_eq!(summary[0].3[0].seen, 6);
        assert_eq!((summary[1].1, summary[1].2), (738000, line_bucket(-9)));
        assert_eq!(summary[1].3[0].units, 2.0);
        assert_eq!(summary[3].3[0].series, 2000);

        let mut cells = Vec::new();
        let mut statement = connection
            .prepare("SELECT tenant_id, day, bucket, cells FROM day_pages ORDER BY 1, 2, 3")
            .unwrap();
        let mut rows = statement.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let key: (i64, i32, i64) = (
                row.get(0).unwrap(),
                row.get(1).unwrap(),
                row.get(2).unwrap(),
            );
            let bytes: Vec<u8> = row.get(3).unwrap();
            for_each_cell(&bytes, |cell| {
                cells.push((key, cell.series, cell.units, cell.revenue))
            })
            .unwrap();
        }
        assert_eq!(
            cells,
            [
                ((1, 738000, 0), 1, 3.0, 7.5),
                ((1, 738001, 0), 1, 3.0, 0.0),
                ((2, 738000, 1), 2000, -1.0, -4.0)
            ]
        );
        let old: i64 = connection
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('sales_lines', 'daily_sales')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(old, 0);
    }

    #[test]
    fn fixed_size_pages_are_repacked_losing_nothing() {
        use crate::store::sqlite::pages::{Cell, encode_cells, encode_lines, fixed};

        let mut connection = Connection::open_in_memory().unwrap();
        run_until(&mut connection, 9).unwrap();
        let line = |key: i64| LineRecord {
            key,
            series: key % 977,
            units: (key % 5) as f64,
            revenue: (key % 5) as f64 * 19.99,
            upload: 3,
            seen: (key % 4) as u32,
        };
        // More pages than one chunk of the conversion.
        let mut lines = Vec::new();
        let mut cells = Vec::new();
        for page in 0i64..600 {
            let records: Vec<LineRecord> = (0..3).map(|at| line(page * 10 + at)).collect();
            let page_cells = vec![Cell {
                series: page,
                units: page as f64,
                revenue: page as f64 / 3.0,
            }];
            connection
                .execute(
                    "INSERT INTO line_pages VALUES (1, ?1, 0, ?2)",
                    rusqlite::params![page, fixed::encode_lines(&records)],
                )
                .unwrap();
            connection
                .execute(
                    "INSERT INTO day_pages VALUES (1, ?1, 0, ?2)",
                    rusqlite::params![page, fixed::encode_cells(&page_cells)],
                )
                .unwrap();
            lines.push(records);
            cells.push(page_cells);
        }
        run(&mut connection).unwrap();

        for (page, (records, page_cells)) in (0i64..).zip(lines.iter().zip(&cells)) {
            let (stored_lines, stored_cells): (Vec<u8>, Vec<u8>) = connection
                .query_row(
                    "SELECT lines, cells FROM line_pages JOIN day_pages USING (tenant_id, day, bucket)
                     WHERE day = ?1",
                    [page],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .unwrap();
            assert_eq!(stored_lines, encode_lines(records));
            assert_eq!(decode_lines(&stored_lines).unwrap(), *records);
            assert_eq!(stored_cells, encode_cells(page_cells));
        }
    }

    /// The query plan of `query` on `connection`, one detail line per step.
    fn plan(connection: &Connection, query: &str) -> Vec<String> {
        connection
            .prepare(&format!("EXPLAIN QUERY PLAN {query}"))
            .unwrap()
            .query_map([], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn forecasts_move_to_a_rowid_table_losing_nothing_and_are_found_by_their_key_index() {
        let mut connection = Connection::open_in_memory().unwrap();
        run_until(&mut connection, 14).unwrap();
        connection
            .execute_batch(
                "INSERT INTO tenants (id, public_id, name, timezone, created_at)
                 VALUES (1, 'tn_a', 'A', 'UTC', 'now'), (2, 'tn_b', 'B', 'UTC', 'now');
                 INSERT INTO series (id, tenant_id, sku, location) VALUES
                    (1, 1, 'A', ''), (2, 1, 'B', ''), (3, 2, 'A', '');",
            )
            .unwrap();
        let mut rows = Vec::new();
        for (tenant, series, size) in [(2_i64, 3_i64, 3_000_usize), (1, 2, 20), (1, 1, 1_200)] {
            let points: Vec<u8> = (0..size).map(|at| (at as i64 * 7 + series) as u8).collect();
            let meta = format!("{{\"model\":\"m{series}\"}}");
            connection
                .execute(
                    "INSERT INTO forecasts VALUES (?1, ?2, ?3, ?4, ?5)",
                    rusqlite::params![tenant, series, 738_000 + series, meta, points],
                )
                .unwrap();
            rows.push((tenant, series, 738_000 + series, meta, points));
        }
        run(&mut connection).unwrap();

        rows.sort();
        let stored: Vec<(i64, i64, i64, String, Vec<u8>)> = connection
            .prepare("SELECT tenant_id, series_id, start, meta, points FROM forecasts ORDER BY id")
            .unwrap()
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, rows);
        let sql: String = connection
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'forecasts'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(!sql.contains("WITHOUT ROWID"), "{sql}");
        let lookup = plan(
            &connection,
            "SELECT points FROM forecasts WHERE tenant_id = 1 AND series_id = 2",
        );
        assert!(
            lookup.len() == 1 && lookup[0].contains("USING INDEX sqlite_autoindex_forecasts"),
            "{lookup:?}"
        );
        let joined = plan(
            &connection,
            "SELECT s.sku, f.points FROM series s JOIN forecasts f
             ON f.tenant_id = s.tenant_id AND f.series_id = s.id WHERE s.tenant_id = 1",
        );
        assert!(
            joined
                .iter()
                .any(|step| step.contains("USING INDEX sqlite_autoindex_forecasts")),
            "{joined:?}"
        );
        // The store's upsert replaces a series' forecast in place.
        connection
            .execute(
                "INSERT INTO forecasts (tenant_id, series_id, start, meta, points)
                 VALUES (1, 2, 5, '{}', x'01')
                 ON CONFLICT (tenant_id, series_id) DO UPDATE SET start = excluded.start,
                 meta = excluded.meta, points = excluded.points",
                [],
            )
            .unwrap();
        let (count, start): (i64, i64) = connection
            .query_row(
                "SELECT count(*), max(start) FROM forecasts WHERE tenant_id = 1 AND series_id = 2",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!((count, start), (1, 5));
    }

    #[test]
    fn pages_move_to_rowid_tables_losing_nothing_and_are_found_by_their_key_index() {
        let mut connection = Connection::open_in_memory().unwrap();
        run_until(&mut connection, 13).unwrap();
        connection
            .execute_batch(
                "INSERT INTO tenants (id, public_id, name, timezone, created_at)
                 VALUES (1, 'tn_a', 'A', 'UTC', 'now'), (2, 'tn_b', 'B', 'UTC', 'now');",
            )
            .unwrap();
        // Pages of several kilobytes (the ones that overflowed) and tiny ones, two tenants,
        // inserted out of key order.
        let mut pages = Vec::new();
        for (tenant, day, bucket, size) in [
            (2_i64, 738_001_i64, 0_i64, 9_000_usize),
            (1, 738_001, 3, 12),
            (1, 738_000, 0, 40_000),
            (1, 738_000, 1, 5),
            (2, 737_999, 7, 4_096),
        ] {
            let bytes: Vec<u8> = (0..size)
                .map(|at| (at as i64 * 31 + day + bucket) as u8)
                .collect();
            for table in ["line_pages", "day_pages"] {
                connection
                    .execute(
                        &format!("INSERT INTO {table} VALUES (?1, ?2, ?3, ?4)"),
                        rusqlite::params![tenant, day, bucket, bytes],
                    )
                    .unwrap();
            }
            pages.push(((tenant, day, bucket), bytes));
        }
        run(&mut connection).unwrap();

        pages.sort();
        for (table, column) in [("line_pages", "lines"), ("day_pages", "cells")] {
            let stored: Vec<((i64, i64, i64), Vec<u8>)> = connection
                .prepare(&format!(
                    "SELECT tenant_id, day, bucket, {column} FROM {table} ORDER BY id"
                ))
                .unwrap()
                .query_map([], |row| {
                    Ok(((row.get(0)?, row.get(1)?, row.get(2)?), row.get(3)?))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            // Copied in key order, every byte kept.
            assert_eq!(stored, pages, "{table}");
            let without_rowid: i64 = connection
                .query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name = ?1 AND sql LIKE '%WITHOUT ROWID%'",
                    [table],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(without_rowid, 0, "{table}");
            // The lookups and scans the store makes go through the key's index.
            for query in [
                format!(
                    "SELECT {column} FROM {table} WHERE tenant_id = 1 AND day = 738000 AND bucket = 1"
                ),
                format!(
                    "SELECT day, bucket, {column} FROM {table}
                     WHERE tenant_id = 1 AND day BETWEEN 0 AND 800000 ORDER BY day, bucket"
                ),
            ] {
                let plan = plan(&connection, &query);
                assert!(
                    plan.len() == 1 && plan[0].contains("USING INDEX sqlite_autoindex_"),
                    "{query}: {plan:?}"
                );
            }
        }
        // A second page for the same key is refused; the upsert the writer uses replaces it.
        assert!(
            connection
                .execute(
                    "INSERT INTO day_pages (tenant_id, day, bucket, cells) VALUES (1, 738000, 1, x'00')",
                    [],
                )
                .is_err()
        );
        connection
            .execute(
                "INSERT INTO day_pages (tenant_id, day, bucket, cells) VALUES (1, 738000, 1, x'01')
                 ON CONFLICT (tenant_id, day, bucket) DO UPDATE SET cells = excluded.cells",
                [],
            )
            .unwrap();
        let (count, cells): (i64, Vec<u8>) = connection
            .query_row(
                "SELECT count(*), max(cells) FROM day_pages WHERE tenant_id = 1 AND day = 738000 AND bucket = 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!((count, cells), (1, vec![1]));
    }
}
