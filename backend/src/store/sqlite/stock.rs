//! Stock levels and the Shopify catalogue (variant → SKU, inventory item → SKU) in SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Writer, read_tenant_key};
use crate::domain::{CatalogueVariant, Location, Sku, StockLevel, TenantId};
use crate::store::StoreError;

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::unavailable(error)
}

/// Stores the levels not older than the stored ones; returns how many.
pub(super) fn put_stock(
    writer: &mut Writer,
    tenant: &TenantId,
    levels: &[StockLevel],
) -> Result<u64, StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    // `updated_at` is RFC 3339 in UTC from one formatter (`to_rfc3339`: 0, 3, 6 or 9 fraction
    // digits, the shortest exact one, then `+00:00`), so text order is time order.
    let mut statement = writer
        .connection
        .prepare_cached(
            "INSERT INTO stock_levels
             (tenant_id, sku, location, on_hand, lead_time_days, service_level, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (tenant_id, sku, location) DO UPDATE SET on_hand = excluded.on_hand,
             lead_time_days = excluded.lead_time_days, service_level = excluded.service_level,
             updated_at = excluded.updated_at
             WHERE excluded.updated_at >= stock_levels.updated_at",
        )
        .map_err(unavailable)?;
    let mut stored = 0;
    for level in levels {
        stored += statement
            .execute(params![
                tenant_key,
                level.sku.as_str(),
                level.location.as_str(),
                level.on_hand,
                level.lead_time_days,
                level.service_level,
                level.updated_at.to_rfc3339(),
            ])
            .map_err(unavailable)? as u64;
    }
    Ok(stored)
}

pub(super) fn stock(
    connection: &Connection,
    tenant: &TenantId,
    sku: Option<&Sku>,
) -> Result<Vec<StockLevel>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let mut statement = connection
        .prepare_cached(
            "SELECT sku, location, on_hand, lead_time_days, service_level, updated_at
             FROM stock_levels WHERE tenant_id = ?1 AND (?2 IS NULL OR sku = ?2)
             ORDER BY sku, location",
        )
        .map_err(unavailable)?;
    let mut rows = statement
        .query(params![tenant_key, sku.map(Sku::as_str)])
        .map_err(unavailable)?;
    let mut levels = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        levels.push(stock_row(row)?);
    }
    Ok(levels)
}

/// A stock level from a row of `sku, location, on_hand, lead_time_days, service_level,
/// updated_at`.
fn stock_row(row: &rusqlite::Row<'_>) -> Result<StockLevel, StoreError> {
    let sku: String = row.get(0).map_err(unavailable)?;
    let location: String = row.get(1).map_err(unavailable)?;
    let updated_at: String = row.get(5).map_err(unavailable)?;
    Ok(StockLevel {
        sku: Sku::parse(&sku).map_err(StoreError::unavailable)?,
        location: Location::parse(&location).map_err(StoreError::unavailable)?,
        on_hand: row.get(2).map_err(unavailable)?,
        lead_time_days: row.get(3).map_err(unavailable)?,
        service_level: row.get(4).map_err(unavailable)?,
        updated_at: DateTime::parse_from_rfc3339(&updated_at)
            .map_err(StoreError::unavailable)?
            .with_timezone(&Utc),
    })
}

/// The stock levels of the listed series (one primary-key lookup each, on one connection),
/// ordered by SKU and location; series without one are left out.
pub(super) fn stock_of(
    connection: &Connection,
    tenant: &TenantId,
    series: &[(Sku, Location)],
) -> Result<Vec<StockLevel>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let mut statement = connection
        .prepare_cached(
            "SELECT sku, location, on_hand, lead_time_days, service_level, updated_at
             FROM stock_levels WHERE tenant_id = ?1 AND sku = ?2 AND location = ?3",
        )
        .map_err(unavailable)?;
    let mut wanted: Vec<&(Sku, Location)> = series.iter().collect();
    wanted.sort();
    wanted.dedup();
    let mut levels = Vec::new();
    for (sku, location) in wanted {
        let mut rows = statement
            .query(params![tenant_key, sku.as_str(), location.as_str()])
            .map_err(unavailable)?;
        if let Some(row) = rows.next().map_err(unavailable)? {
            levels.push(stock_row(row)?);
        }
    }
    Ok(levels)
}

pub(super) fn put_product(
    writer: &mut Writer,
    tenant: &TenantId,
    product_id: &str,
    variants: &[CatalogueVariant],
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let connection = &writer.connection;
    connection
        .execute(
            "DELETE FROM shopify_variants WHERE tenant_id = ?1 AND product_id = ?2",
            params![tenant_key, product_id],
        )
        .map_err(unavailable)?;
    let mut insert = connection
        .prepare_cached(
            "INSERT INTO shopify_variants (tenant_id, variant_id, product_id, inventory_item_id, sku)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant_id, variant_id) DO UPDATE SET product_id = excluded.product_id,
                 inventory_item_id = excluded.inventory_item_id, sku = excluded.sku",
        )
        .map_err(unavailable)?;
    for variant in variants {
        insert
            .execute(params![
                tenant_key,
                variant.variant_id,
                product_id,
                variant.inventory_item_id,
                variant.sku.as_str()
            ])
            .map_err(unavailable)?;
    }
    Ok(())
}

pub(super) fn sku_of_inventory_item(
    connection: &Connection,
    tenant: &TenantId,
    inventory_item_id: &str,
) -> Result<Option<Sku>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let sku: Option<String> = connection
        .prepare_cached(
            "SELECT sku FROM shopify_variants WHERE tenant_id = ?1 AND inventory_item_id = ?2",
        )
        .and_then(|mut statement| {
            statement
                .query_row(params![tenant_key, inventory_item_id], |row| row.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    sku.map(|sku| Sku::parse(&sku).map_err(StoreError::unavailable))
        .transpose()
}
