//! Schema migrations, applied in order at open; `PRAGMA user_version` records how many ran.

use rusqlite::Connection;

/// Each entry is one migration; never edit a released one, append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: tenants, API keys, uploads, sales lines and daily sales.
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
    // 2: stored forecasts, one row per series: metadata as JSON, points as little-endian f32
    // quintuples (mean, lo80, hi80, lo95, hi95) per day from `start`.
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
    // 3: stock on hand and replenishment settings per SKU x location.
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
];

/// Applies the migrations this database has not seen yet, each in its own transaction.
///
/// # Errors
/// When a migration fails; the database stays at the last good version.
pub(super) fn run(connection: &mut Connection) -> rusqlite::Result<()> {
    let applied: i64 = connection.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let applied = usize::try_from(applied).unwrap_or(0);
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        let transaction = connection.transaction()?;
        transaction.execute_batch(migration)?;
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
