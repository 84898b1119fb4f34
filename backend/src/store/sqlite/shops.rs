//! Shopify installs, the compliance audit log and customer data requests in SQLite.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Writer, insert_tenant, parse_time};
use crate::domain::{
    ComplianceEntry, DataRequest, EraseOutcome, InstallState, NewInstall, SealedCredentials,
    ShopInstall, TenantId, UninstallOutcome,
};
use crate::shopify::shop::ShopDomain;
use crate::store::StoreError;

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::unavailable(error)
}

fn time(value: Option<DateTime<Utc>>) -> Option<String> {
    value.map(|time| time.to_rfc3339())
}

fn optional_time(text: Option<String>) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.as_deref().map(parse_time).transpose()
}

const INSTALL_COLUMNS: &str = "s.domain, t.public_id, s.state, s.scopes, s.installed_at, \
     s.uninstalled_at, s.access_token, s.access_expires_at, s.refresh_token, s.refresh_expires_at";

type InstallRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
);

fn install_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<InstallRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

fn install_from_row(row: InstallRow) -> Result<ShopInstall, StoreError> {
    let (
        domain,
        tenant,
        state,
        scopes,
        installed_at,
        uninstalled_at,
        access_token,
        access_expires_at,
        refresh_token,
        refresh_expires_at,
    ) = row;
    let credentials = match access_token {
        Some(access_token) => Some(SealedCredentials {
            access_token,
            access_expires_at: optional_time(access_expires_at)?,
            refresh_token,
            refresh_expires_at: optional_time(refresh_expires_at)?,
        }),
        None => None,
    };
    Ok(ShopInstall {
        shop: ShopDomain::parse(&domain).map_err(StoreError::unavailable)?,
        tenant: TenantId::parse(&tenant).map_err(StoreError::unavailable)?,
        state: InstallState::parse(&state)
            .ok_or_else(|| StoreError::Unavailable(format!("unknown state {state}").into()))?,
        scopes: split_scopes(&scopes),
        installed_at: parse_time(&installed_at)?,
        uninstalled_at: optional_time(uninstalled_at)?,
        credentials,
    })
}

fn split_scopes(scopes: &str) -> Vec<String> {
    scopes
        .split(',')
        .map(str::trim)
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned)
        .collect()
}

pub(super) fn shop_install(
    connection: &Connection,
    shop: &ShopDomain,
) -> Result<Option<ShopInstall>, StoreError> {
    connection
        .prepare_cached(&format!(
            "SELECT {INSTALL_COLUMNS} FROM shops s JOIN tenants t ON t.id = s.tenant_id
             WHERE s.domain = ?1"
        ))
        .and_then(|mut statement| statement.query_row([shop.as_str()], install_row).optional())
        .map_err(unavailable)?
        .map(install_from_row)
        .transpose()
}

pub(super) fn shop_of_tenant(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Option<ShopInstall>, StoreError> {
    connection
        .prepare_cached(&format!(
            "SELECT {INSTALL_COLUMNS} FROM shops s JOIN tenants t ON t.id = s.tenant_id
             WHERE t.public_id = ?1"
        ))
        .and_then(|mut statement| {
            statement
                .query_row([tenant.as_str()], install_row)
                .optional()
        })
        .map_err(unavailable)?
        .map(install_from_row)
        .transpose()
}

/// Creates the shop's tenant on first install; on a reinstall reactivates the same tenant (its
/// history is kept) with fresh credentials, scopes, name and time zone.
pub(super) fn install_shop(
    writer: &mut Writer,
    install: &NewInstall,
    new_tenant: &TenantId,
) -> Result<ShopInstall, StoreError> {
    let connection = &writer.connection;
    let existing: Option<i64> = connection
        .query_row(
            "SELECT tenant_id FROM shops WHERE domain = ?1",
            [install.shop.as_str()],
            |row| row.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    let tenant_key = match existing {
        Some(key) => {
            connection
                .execute(
                    "UPDATE tenants SET name = ?2, timezone = ?3 WHERE id = ?1",
                    params![key, install.name, install.timezone.name()],
                )
                .map_err(unavailable)?;
            key
        }
        None => {
            let tenant = install.tenant(new_tenant);
            insert_tenant(connection, &tenant).map_err(unavailable)?
        }
    };
    let credentials = &install.credentials;
    connection
        .execute(
            "INSERT INTO shops (domain, tenant_id, state, scopes, installed_at, uninstalled_at,
                 access_token, access_expires_at, refresh_token, refresh_expires_at)
             VALUES (?1, ?2, 'installed', ?3, ?4, NULL, ?5, ?6, ?7, ?8)
             ON CONFLICT (domain) DO UPDATE SET state = 'installed', scopes = excluded.scopes,
                 installed_at = excluded.installed_at, uninstalled_at = NULL,
                 access_token = excluded.access_token,
                 access_expires_at = excluded.access_expires_at,
                 refresh_token = excluded.refresh_token,
                 refresh_expires_at = excluded.refresh_expires_at",
            params![
                install.shop.as_str(),
                tenant_key,
                install.scopes.join(","),
                install.at.to_rfc3339(),
                credentials.access_token,
                time(credentials.access_expires_at),
                credentials.refresh_token,
                time(credentials.refresh_expires_at),
            ],
        )
        .map_err(unavailable)?;
    shop_install(connection, &install.shop)?.ok_or_else(|| StoreError::NotFound {
        entity: "shop",
        id: install.shop.to_string(),
    })
}

/// Replaces the credentials only while the stored access token is still `previous_access_token`,
/// so that two processes refreshing at once cannot overwrite a newer pair with an older one.
pub(super) fn replace_credentials(
    writer: &mut Writer,
    shop: &ShopDomain,
    previous_access_token: &[u8],
    credentials: Option<&SealedCredentials>,
) -> Result<(), StoreError> {
    let changed = writer
        .connection
        .execute(
            "UPDATE shops SET access_token = ?3, access_expires_at = ?4, refresh_token = ?5,
                 refresh_expires_at = ?6
             WHERE domain = ?1 AND state = 'installed' AND access_token = ?2",
            params![
                shop.as_str(),
                previous_access_token,
                credentials.map(|credentials| credentials.access_token.clone()),
                time(credentials.and_then(|credentials| credentials.access_expires_at)),
                credentials.and_then(|credentials| credentials.refresh_token.clone()),
                time(credentials.and_then(|credentials| credentials.refresh_expires_at)),
            ],
        )
        .map_err(unavailable)?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict {
            entity: "shop credentials",
            id: shop.to_string(),
        })
    }
}

pub(super) fn uninstall_shop(
    writer: &mut Writer,
    shop: &ShopDomain,
    triggered_at: DateTime<Utc>,
) -> Result<UninstallOutcome, StoreError> {
    let Some(install) = shop_install(&writer.connection, shop)? else {
        return Ok(UninstallOutcome::UnknownShop);
    };
    if install.state == InstallState::Uninstalled {
        return Ok(UninstallOutcome::AlreadyUninstalled);
    }
    // Shopify may deliver app/uninstalled minutes late: one triggered before the current install
    // belongs to an earlier install and must not undo this one.
    if triggered_at < install.installed_at {
        return Ok(UninstallOutcome::StaleAfterReinstall);
    }
    writer
        .connection
        .execute(
            "UPDATE shops SET state = 'uninstalled', uninstalled_at = ?2, access_token = NULL,
                 access_expires_at = NULL, refresh_token = NULL, refresh_expires_at = NULL
             WHERE domain = ?1",
            params![shop.as_str(), Utc::now().to_rfc3339()],
        )
        .map_err(unavailable)?;
    Ok(UninstallOutcome::Uninstalled)
}

pub(super) fn set_shop_scopes(
    writer: &mut Writer,
    shop: &ShopDomain,
    scopes: &[String],
) -> Result<bool, StoreError> {
    let changed = writer
        .connection
        .execute(
            "UPDATE shops SET scopes = ?2 WHERE domain = ?1",
            params![shop.as_str(), scopes.join(",")],
        )
        .map_err(unavailable)?;
    Ok(changed == 1)
}

/// Tables holding a tenant's records, by internal tenant key; `tenants` itself goes last.
const TENANT_TABLES: &[&str] = &[
    "api_keys",
    "uploads",
    "line_pages",
    "day_pages",
    "forecasts",
    "stock_levels",
    "shopify_orders",
    "shopify_variants",
    "shopify_syncs",
    "shopify_bulk_finished",
    "series_stats",
    "tenant_overview",
    "tenant_settings",
    "sessions",
    "sign_in_links",
    "series",
];

/// Erases every record of an uninstalled shop: its tenant's sales, uploads, forecasts, stock, keys,
/// the install itself and pending data requests. The compliance log keeps its (personal-data-free)
/// entries.
pub(super) fn erase_shop(
    writer: &mut Writer,
    shop: &ShopDomain,
) -> Result<EraseOutcome, StoreError> {
    let Some(install) = shop_install(&writer.connection, shop)? else {
        return Ok(EraseOutcome::UnknownShop);
    };
    if install.state == InstallState::Installed {
        return Ok(EraseOutcome::SkippedReinstalled);
    }
    let tenant_key = super::read_tenant_key(&writer.connection, &install.tenant)?;
    let connection = &writer.connection;
    connection
        .execute("DELETE FROM shops WHERE domain = ?1", [shop.as_str()])
        .map_err(unavailable)?;
    connection
        .execute("DELETE FROM data_requests WHERE shop = ?1", [shop.as_str()])
        .map_err(unavailable)?;
    super::deliveries::erase_shop(connection, shop.as_str())?;
    for table in TENANT_TABLES {
        connection
            .execute(
                &format!("DELETE FROM {table} WHERE tenant_id = ?1"),
                [tenant_key],
            )
            .map_err(unavailable)?;
    }
    connection
        .execute("DELETE FROM tenants WHERE id = ?1", [tenant_key])
        .map_err(unavailable)?;
    writer.forget_caches();
    Ok(EraseOutcome::Erased)
}

/// Adds an entry; a second entry for the same delivery is ignored (`Ok(false)`).
pub(super) fn record_compliance(
    writer: &mut Writer,
    entry: &ComplianceEntry,
) -> Result<bool, StoreError> {
    let inserted = writer
        .connection
        .execute(
            "INSERT INTO compliance_log (shop, topic, webhook_id, handled_at, outcome, detail)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (webhook_id) DO NOTHING",
            params![
                entry.shop.as_str(),
                entry.topic,
                entry.webhook_id,
                entry.handled_at.to_rfc3339(),
                entry.outcome,
                entry.detail.to_string(),
            ],
        )
        .map_err(unavailable)?;
    Ok(inserted == 1)
}

pub(super) fn compliance_log(
    connection: &Connection,
    shop: &ShopDomain,
) -> Result<Vec<ComplianceEntry>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT topic, webhook_id, handled_at, outcome, detail FROM compliance_log
             WHERE shop = ?1 ORDER BY id",
        )
        .map_err(unavailable)?;
    let mut rows = statement.query([shop.as_str()]).map_err(unavailable)?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let handled_at: String = row.get(2).map_err(unavailable)?;
        let detail: String = row.get(4).map_err(unavailable)?;
        entries.push(ComplianceEntry {
            shop: shop.clone(),
            topic: row.get(0).map_err(unavailable)?,
            webhook_id: row.get(1).map_err(unavailable)?,
            handled_at: parse_time(&handled_at)?,
            outcome: row.get(3).map_err(unavailable)?,
            detail: serde_json::from_str(&detail).map_err(StoreError::unavailable)?,
        });
    }
    Ok(entries)
}

pub(super) fn put_data_request(
    writer: &mut Writer,
    request: &DataRequest,
) -> Result<(), StoreError> {
    let orders =
        serde_json::to_string(&request.orders_requested).map_err(StoreError::unavailable)?;
    writer
        .connection
        .execute(
            "INSERT INTO data_requests (shop, request_id, customer_id, orders_requested, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (shop, request_id) DO NOTHING",
            params![
                request.shop.as_str(),
                request.request_id,
                request.customer_id,
                orders,
                request.received_at.to_rfc3339(),
            ],
        )
        .map_err(unavailable)?;
    Ok(())
}

pub(super) fn data_requests(
    connection: &Connection,
    shop: &ShopDomain,
) -> Result<Vec<DataRequest>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT request_id, customer_id, orders_requested, received_at FROM data_requests
             WHERE shop = ?1 ORDER BY received_at, request_id",
        )
        .map_err(unavailable)?;
    let mut rows = statement.query([shop.as_str()]).map_err(unavailable)?;
    let mut requests = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let orders: String = row.get(2).map_err(unavailable)?;
        let received_at: String = row.get(3).map_err(unavailable)?;
        requests.push(DataRequest {
            shop: shop.clone(),
            request_id: row.get(0).map_err(unavailable)?,
            customer_id: row.get(1).map_err(unavailable)?,
            orders_requested: serde_json::from_str(&orders).map_err(StoreError::unavailable)?,
            received_at: parse_time(&received_at)?,
        });
    }
    Ok(requests)
}

/// Erases what is held about one customer of a shop; returns how many records went.
pub(super) fn redact_customer(
    writer: &mut Writer,
    shop: &ShopDomain,
    customer_id: &str,
) -> Result<u64, StoreError> {
    let erased = writer
        .connection
        .execute(
            "DELETE FROM data_requests WHERE shop = ?1 AND customer_id = ?2",
            params![shop.as_str(), customer_id],
        )
        .map_err(unavailable)?;
    Ok(erased as u64)
}
