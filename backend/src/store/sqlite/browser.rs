//! The UI's records in SQLite: products-table figures per series, tenant settings, browser sessions
//! and one-time sign-in links.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Writer, parse_time, read_tenant_key, tenant_from_parts, tenant_from_row};
use crate::domain::{
    BrowserSecret, BrowserSession, PRODUCT_WINDOW_DAYS, ProductPage, ProductQuery, ProductRow,
    ProductSort, SeriesStats, TenantId, TenantOverview, TenantSettings,
};
use crate::store::StoreError;

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::unavailable(error)
}

pub(super) fn put_series_stats(
    writer: &mut Writer,
    tenant: &TenantId,
    stats: &[SeriesStats],
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let mut statement = writer
        .connection
        .prepare_cached(
            "INSERT INTO series_stats (tenant_id, series_id, sales_28, prev_28, forecast_28)
             SELECT ?1, id, ?4, ?5, ?6 FROM series WHERE tenant_id = ?1 AND sku = ?2 AND location = ?3
             ON CONFLICT (tenant_id, series_id) DO UPDATE SET sales_28 = excluded.sales_28,
             prev_28 = excluded.prev_28, forecast_28 = excluded.forecast_28",
        )
        .map_err(unavailable)?;
    for row in stats {
        statement
            .execute(params![
                tenant_key,
                row.sku.as_str(),
                row.location.as_str(),
                row.sales_28,
                row.prev_28,
                row.forecast_28
            ])
            .map_err(unavailable)?;
    }
    Ok(())
}

/// `LIKE` pattern for "contains `text`", wildcards in `text` taken literally.
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

pub(super) fn products(
    connection: &Connection,
    tenant: &TenantId,
    query: &ProductQuery,
) -> Result<ProductPage, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let pattern = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(contains_pattern);
    let filter = "s.tenant_id = ?1 AND (?2 IS NULL OR s.sku LIKE ?2 ESCAPE '\\' OR s.product LIKE ?2 ESCAPE '\\')";
    let total: i64 = connection
        .prepare_cached(&format!("SELECT count(*) FROM series s WHERE {filter}"))
        .and_then(|mut statement| {
            statement.query_row(params![tenant_key, pattern], |row| row.get(0))
        })
        .map_err(unavailable)?;
    let direction = if query.descending { "DESC" } else { "ASC" };
    let window = PRODUCT_WINDOW_DAYS as f64;
    // Days of cover at the next window's average forecast rate, so SQL can sort by it.
    let cover = format!(
        "CASE WHEN k.on_hand IS NOT NULL AND st.forecast_28 > 0 THEN k.on_hand * {window:.1} / st.forecast_28 END"
    );
    let trend = "CASE WHEN st.prev_28 > 0 THEN st.sales_28 / st.prev_28 - 1.0 END";
    let order = match query.sort {
        ProductSort::Sku => format!("s.sku {direction}, s.location {direction}"),
        ProductSort::Location => format!("s.location {direction}, s.sku {direction}"),
        ProductSort::Sales => format!("coalesce(st.sales_28, 0) {direction}, s.sku, s.location"),
        ProductSort::Forecast => {
            format!("coalesce(st.forecast_28, 0) {direction}, s.sku, s.location")
        }
        ProductSort::Trend => format!("{trend} {direction} NULLS LAST, s.sku, s.location"),
        ProductSort::Cover => format!("{cover} {direction} NULLS LAST, s.sku, s.location"),
    };
    let sql = format!(
        "SELECT s.sku, s.location, s.product, coalesce(st.sales_28, 0), coalesce(st.forecast_28, 0),
                {trend}, k.on_hand, {cover}, k.lead_time_days
         FROM series s
         LEFT JOIN series_stats st ON st.tenant_id = s.tenant_id AND st.series_id = s.id
         LEFT JOIN stock_levels k ON k.tenant_id = s.tenant_id AND k.sku = s.sku AND k.location = s.location
         WHERE {filter}
         ORDER BY {order} LIMIT ?3 OFFSET ?4"
    );
    let mut statement = connection.prepare_cached(&sql).map_err(unavailable)?;
    let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
    let rows = statement
        .query_map(params![tenant_key, pattern, query.limit, offset], |row| {
            Ok(ProductRow {
                sku: row.get(0)?,
                location: row.get(1)?,
                product: row.get(2)?,
                sales_28: row.get(3)?,
                forecast_28: row.get(4)?,
                trend: row.get(5)?,
                on_hand: row.get(6)?,
                days_of_cover: row.get(7)?,
                lead_time_days: row.get(8)?,
                suggested_order: None,
                at_risk: false,
            })
        })
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    Ok(ProductPage {
        total: u64::try_from(total).unwrap_or(0),
        offset: query.offset,
        limit: query.limit,
        rows,
    })
}

pub(super) fn put_overview(
    writer: &mut Writer,
    tenant: &TenantId,
    overview: &TenantOverview,
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let body = serde_json::to_string(overview).map_err(StoreError::unavailable)?;
    writer
        .connection
        .execute(
            "INSERT INTO tenant_overview (tenant_id, body) VALUES (?1, ?2)
             ON CONFLICT (tenant_id) DO UPDATE SET body = excluded.body",
            params![tenant_key, body],
        )
        .map_err(unavailable)?;
    Ok(())
}

pub(super) fn overview(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Option<TenantOverview>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let body: Option<String> = connection
        .prepare_cached("SELECT body FROM tenant_overview WHERE tenant_id = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([tenant_key], |row| row.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    body.map(|body| serde_json::from_str(&body).map_err(StoreError::unavailable))
        .transpose()
}

pub(super) fn settings(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<TenantSettings, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let timezone: String = connection
        .prepare_cached("SELECT timezone FROM tenants WHERE id = ?1")
        .and_then(|mut statement| statement.query_row([tenant_key], |row| row.get(0)))
        .map_err(unavailable)?;
    let stored = connection
        .prepare_cached(
            "SELECT default_lead_time_days, service_level, horizon_days
             FROM tenant_settings WHERE tenant_id = ?1",
        )
        .and_then(|mut statement| {
            statement
                .query_row([tenant_key], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
                .optional()
        })
        .map_err(unavailable)?;
    let mut settings = TenantSettings::defaults(&timezone);
    if let Some((lead, service_level, horizon)) = stored {
        settings.default_lead_time_days = lead;
        settings.service_level = service_level;
        settings.horizon_days = horizon;
    }
    Ok(settings)
}

pub(super) fn put_settings(
    writer: &mut Writer,
    tenant: &TenantId,
    settings: &TenantSettings,
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let connection = &writer.connection;
    connection
        .execute(
            "UPDATE tenants SET timezone = ?2 WHERE id = ?1",
            params![tenant_key, settings.timezone],
        )
        .map_err(unavailable)?;
    connection
        .execute(
            "INSERT INTO tenant_settings (tenant_id, default_lead_time_days, service_level, horizon_days)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id) DO UPDATE SET default_lead_time_days = excluded.default_lead_time_days,
             service_level = excluded.service_level, horizon_days = excluded.horizon_days",
            params![
                tenant_key,
                settings.default_lead_time_days,
                settings.service_level,
                settings.horizon_days
            ],
        )
        .map_err(unavailable)?;
    Ok(())
}

pub(super) fn create_session(
    writer: &mut Writer,
    tenant: &TenantId,
    secret_hash: [u8; 32],
    csrf_token: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let now = Utc::now();
    // Expired sessions go as new ones come, so the table never grows without bound.
    writer
        .connection
        .execute(
            "DELETE FROM sessions WHERE expires_at < ?1",
            [now.to_rfc3339()],
        )
        .map_err(unavailable)?;
    writer
        .connection
        .execute(
            "INSERT INTO sessions (secret_hash, tenant_id, csrf_token, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                &secret_hash[..],
                tenant_key,
                csrf_token,
                now.to_rfc3339(),
                expires_at.to_rfc3339()
            ],
        )
        .map_err(unavailable)?;
    Ok(())
}

pub(super) fn session(
    connection: &Connection,
    secret_hash: [u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<BrowserSession>, StoreError> {
    let row = connection
        .prepare_cached(
            "SELECT t.public_id, t.name, t.timezone, t.created_at, t.identity_scheme,
                    s.csrf_token, s.expires_at
             FROM sessions s JOIN tenants t ON t.id = s.tenant_id WHERE s.secret_hash = ?1",
        )
        .and_then(|mut statement| {
            statement
                .query_row([&secret_hash[..]], |row| {
                    Ok((
                        tenant_from_row(row)?,
                        row.get::<_, String>(5)?,
                        row.get::<_, String>(6)?,
                    ))
                })
                .optional()
        })
        .map_err(unavailable)?;
    let Some((tenant, csrf_token, expires_at)) = row else {
        return Ok(None);
    };
    let expires_at = parse_time(&expires_at)?;
    if expires_at <= now {
        return Ok(None);
    }
    Ok(Some(BrowserSession {
        tenant: tenant_from_parts(tenant)?,
        csrf_token: BrowserSecret::from_presented(&csrf_token),
        expires_at,
    }))
}

pub(super) fn delete_session(writer: &mut Writer, secret_hash: [u8; 32]) -> Result<(), StoreError> {
    writer
        .connection
        .execute(
            "DELETE FROM sessions WHERE secret_hash = ?1",
            [&secret_hash[..]],
        )
        .map_err(unavailable)?;
    Ok(())
}

pub(super) fn create_sign_in_link(
    writer: &mut Writer,
    tenant: &TenantId,
    secret_hash: [u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    writer
        .connection
        .execute(
            "DELETE FROM sign_in_links WHERE expires_at < ?1",
            [Utc::now().to_rfc3339()],
        )
        .map_err(unavailable)?;
    writer
        .connection
        .execute(
            "INSERT INTO sign_in_links (secret_hash, tenant_id, expires_at) VALUES (?1, ?2, ?3)",
            params![&secret_hash[..], tenant_key, expires_at.to_rfc3339()],
        )
        .map_err(unavailable)?;
    Ok(())
}

pub(super) fn consume_sign_in_link(
    writer: &mut Writer,
    secret_hash: [u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<TenantId>, StoreError> {
    let row: Option<(i64, String)> = writer
        .connection
        .prepare_cached(
            "DELETE FROM sign_in_links WHERE secret_hash = ?1 RETURNING tenant_id, expires_at",
        )
        .and_then(|mut statement| {
            statement
                .query_row([&secret_hash[..]], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(unavailable)?;
    let Some((tenant_key, expires_at)) = row else {
        return Ok(None);
    };
    if parse_time(&expires_at)? <= now {
        return Ok(None);
    }
    let tenant: String = writer
        .connection
        .prepare_cached("SELECT public_id FROM tenants WHERE id = ?1")
        .and_then(|mut statement| statement.query_row([tenant_key], |row| row.get(0)))
        .map_err(unavailable)?;
    Ok(Some(
        TenantId::parse(&tenant).map_err(StoreError::unavailable)?,
    ))
}
