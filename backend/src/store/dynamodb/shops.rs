//! Shopify installs, the compliance audit log and customer data requests in DynamoDB.
//!
//! - `SHOP#{domain}` / `INSTALL`: the install (tenant, state, scopes, sealed tokens);
//! - `SHOP#{domain}` / `COMPLIANCE#{webhook id}`: one audit entry per compliance delivery;
//! - `SHOP#{domain}` / `REQUEST#{request id}`: a pending customer data request;
//! - `T#{tenant}` / `SHOP`: the shop owning a tenant.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{
    Change, DynamoStore, Item, Query, TENANT_SK, b, optional_bytes, optional_text, optional_time,
    parse_time, s, tenant_pk, text, time_text,
};
use crate::domain::{
    ComplianceEntry, DataRequest, EraseOutcome, InstallState, NewInstall, SealedCredentials,
    ShopInstall, TenantId, UninstallOutcome,
};
use crate::shopify::shop::ShopDomain;
use crate::store::StoreError;

const INSTALL_SK: &str = "INSTALL";
const SHOP_POINTER_SK: &str = "SHOP";
/// Attempts at an install change that raced with another.
const ATTEMPTS: u32 = 4;

fn shop_pk(shop: &ShopDomain) -> String {
    format!("SHOP#{}", shop.as_str())
}

fn install_of(item: &Item) -> Result<ShopInstall, StoreError> {
    let state = text(item, "state")?;
    let credentials = match optional_bytes(item, "access_token")? {
        Some(access_token) => Some(SealedCredentials {
            access_token,
            access_expires_at: optional_time(item, "access_expires_at")?,
            refresh_token: optional_bytes(item, "refresh_token")?,
            refresh_expires_at: optional_time(item, "refresh_expires_at")?,
        }),
        None => None,
    };
    Ok(ShopInstall {
        shop: ShopDomain::parse(text(item, "shop")?).map_err(StoreError::unavailable)?,
        tenant: TenantId::parse(text(item, "tenant")?).map_err(StoreError::unavailable)?,
        state: InstallState::parse(state)
            .ok_or_else(|| StoreError::Unavailable(format!("unknown state {state}").into()))?,
        scopes: optional_text(item, "scopes")?
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|scope| !scope.is_empty())
            .map(str::to_owned)
            .collect(),
        installed_at: parse_time(text(item, "installed_at")?)?,
        uninstalled_at: optional_time(item, "uninstalled_at")?,
        credentials,
    })
}

pub(super) async fn shop_install(
    store: &DynamoStore,
    shop: &ShopDomain,
) -> Result<Option<ShopInstall>, StoreError> {
    store
        .get(shop_pk(shop), INSTALL_SK)
        .await?
        .map(|item| install_of(&item))
        .transpose()
}

pub(super) async fn shop_of_tenant(
    store: &DynamoStore,
    tenant: &TenantId,
) -> Result<Option<ShopInstall>, StoreError> {
    let Some(pointer) = store.get(tenant_pk(tenant), SHOP_POINTER_SK).await? else {
        return Ok(None);
    };
    let shop = ShopDomain::parse(text(&pointer, "shop")?).map_err(StoreError::unavailable)?;
    Ok(shop_install(store, &shop)
        .await?
        .filter(|install| install.tenant == *tenant))
}

fn install_item(install: &NewInstall, tenant: &TenantId) -> Item {
    let credentials = &install.credentials;
    let mut item = HashMap::from([
        ("PK".to_owned(), s(shop_pk(&install.shop))),
        ("SK".to_owned(), s(INSTALL_SK)),
        ("shop".to_owned(), s(install.shop.as_str())),
        ("tenant".to_owned(), s(tenant.as_str())),
        ("state".to_owned(), s(InstallState::Installed.as_str())),
        ("scopes".to_owned(), s(install.scopes.join(","))),
        ("installed_at".to_owned(), s(time_text(install.at))),
        (
            "access_token".to_owned(),
            b(credentials.access_token.clone()),
        ),
    ]);
    if let Some(at) = credentials.access_expires_at {
        item.insert("access_expires_at".to_owned(), s(time_text(at)));
    }
    if let Some(token) = &credentials.refresh_token {
        item.insert("refresh_token".to_owned(), b(token.clone()));
    }
    if let Some(at) = credentials.refresh_expires_at {
        item.insert("refresh_expires_at".to_owned(), s(time_text(at)));
    }
    item
}

/// Creates the shop's tenant on first install; on a reinstall reactivates the same tenant (its
/// history is kept) with fresh credentials, scopes, name and time zone. One transaction either way.
pub(super) async fn install_shop(
    store: &DynamoStore,
    install: &NewInstall,
    new_tenant: &TenantId,
) -> Result<ShopInstall, StoreError> {
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            super::backoff(attempt).await;
        }
        let existing = shop_install(store, &install.shop).await?;
        let items = match &existing {
            Some(existing) => {
                let tenant = &existing.tenant;
                let rename = Change::new(
                    tenant_pk(tenant),
                    TENANT_SK,
                    "SET #name = :name, #timezone = :timezone",
                )
                .when("attribute_exists(PK)")
                .value(":name", s(install.name.clone()))
                .value(":timezone", s(install.timezone.name()));
                vec![
                    store.update_item(rename)?,
                    store.put_item(
                        install_item(install, tenant),
                        Some("#tenant = :tenant"),
                        HashMap::from([(":tenant".to_owned(), s(tenant.as_str()))]),
                    )?,
                ]
            }
            None => {
                let tenant = install.tenant(new_tenant);
                let pointer = HashMap::from([
                    ("PK".to_owned(), s(tenant_pk(new_tenant))),
                    ("SK".to_owned(), s(SHOP_POINTER_SK)),
                    ("shop".to_owned(), s(install.shop.as_str())),
                ]);
                vec![
                    store.put_item(
                        DynamoStore::new_tenant_item(&tenant),
                        Some("attribute_not_exists(PK)"),
                        Item::new(),
                    )?,
                    store.put_item(
                        install_item(install, new_tenant),
                        Some("attribute_not_exists(PK)"),
                        Item::new(),
                    )?,
                    store.put_item(pointer, None, Item::new())?,
                ]
            }
        };
        match store.transact(items).await {
            Ok(()) => {
                let tenant =
                    existing.map_or_else(|| new_tenant.clone(), |existing| existing.tenant);
                let mut item = install_item(install, &tenant);
                item.insert("tenant".to_owned(), s(tenant.as_str()));
                return install_of(&item);
            }
            // Another install of the same shop won the race: read it and go again.
            Err(super::Transaction::Cancelled(_)) => {}
            Err(super::Transaction::Failed(error)) => return Err(error),
        }
    }
    Err(StoreError::Conflict {
        entity: "shop",
        id: install.shop.to_string(),
    })
}

/// Replaces the credentials only while the stored access token is still `previous_access_token`,
/// so that two processes refreshing at once cannot overwrite a newer pair with an older one.
pub(super) async fn replace_credentials(
    store: &DynamoStore,
    shop: &ShopDomain,
    previous_access_token: &[u8],
    credentials: Option<SealedCredentials>,
) -> Result<(), StoreError> {
    let mut sets = Vec::new();
    let mut removes = Vec::new();
    let mut change = Change::new(shop_pk(shop), INSTALL_SK, "")
        .when("#state = :installed AND #access_token = :previous")
        .value(":installed", s(InstallState::Installed.as_str()))
        .value(":previous", b(previous_access_token.to_vec()));
    match &credentials {
        Some(credentials) => {
            sets.push("#access_token = :access");
            change = change.value(":access", b(credentials.access_token.clone()));
            let optional = [
                (
                    "access_expires_at",
                    credentials.access_expires_at.map(|at| s(time_text(at))),
                ),
                ("refresh_token", credentials.refresh_token.clone().map(b)),
                (
                    "refresh_expires_at",
                    credentials.refresh_expires_at.map(|at| s(time_text(at))),
                ),
            ];
            for (name, value) in optional {
                match value {
                    Some(value) => {
                        sets.push(match name {
                            "access_expires_at" => "#access_expires_at = :access_expires_at",
                            "refresh_token" => "#refresh_token = :refresh_token",
                            _ => "#refresh_expires_at = :refresh_expires_at",
                        });
                        change = change.value(&format!(":{name}"), value);
                    }
                    None => removes.push(name),
                }
            }
        }
        None => removes.extend([
            "access_token",
            "access_expires_at",
            "refresh_token",
            "refresh_expires_at",
        ]),
    }
    let mut expression = String::new();
    if !sets.is_empty() {
        expression.push_str("SET ");
        expression.push_str(&sets.join(", "));
    }
    if !removes.is_empty() {
        expression.push_str(" REMOVE ");
        let removes: Vec<String> = removes.iter().map(|name| format!("#{name}")).collect();
        expression.push_str(&removes.join(", "));
    }
    change.expression = expression.trim().to_owned();
    match store.update(change).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::Conflict {
            entity: "shop credentials",
            id: shop.to_string(),
        }),
    }
}

pub(super) async fn uninstall_shop(
    store: &DynamoStore,
    shop: &ShopDomain,
    triggered_at: DateTime<Utc>,
) -> Result<UninstallOutcome, StoreError> {
    for _ in 0..ATTEMPTS {
        let Some(install) = shop_install(store, shop).await? else {
            return Ok(UninstallOutcome::UnknownShop);
        };
        if install.state == InstallState::Uninstalled {
            return Ok(UninstallOutcome::AlreadyUninstalled);
        }
        // Shopify may deliver app/uninstalled minutes late: one triggered before the current
        // install belongs to an earlier install and must not undo this one.
        if triggered_at < install.installed_at {
            return Ok(UninstallOutcome::StaleAfterReinstall);
        }
        let change = Change::new(
            shop_pk(shop),
            INSTALL_SK,
            "SET #state = :uninstalled, #uninstalled_at = :now \
             REMOVE #access_token, #access_expires_at, #refresh_token, #refresh_expires_at",
        )
        .when("#state = :installed AND #installed_at = :installed_at")
        .value(":uninstalled", s(InstallState::Uninstalled.as_str()))
        .value(":installed", s(InstallState::Installed.as_str()))
        .value(":installed_at", s(time_text(install.installed_at)))
        .value(":now", s(time_text(Utc::now())));
        if store.update(change).await?.is_some() {
            return Ok(UninstallOutcome::Uninstalled);
        }
        // A reinstall or another uninstall got there first: decide again on what is stored now.
    }
    Err(StoreError::Conflict {
        entity: "shop",
        id: shop.to_string(),
    })
}

pub(super) async fn set_shop_scopes(
    store: &DynamoStore,
    shop: &ShopDomain,
    scopes: &[String],
) -> Result<bool, StoreError> {
    let change = Change::new(shop_pk(shop), INSTALL_SK, "SET #scopes = :scopes")
        .when("attribute_exists(PK)")
        .value(":scopes", s(scopes.join(",")));
    Ok(store.update(change).await?.is_some())
}

/// Erases every record of an uninstalled shop: its tenant's data, the install and pending data
/// requests, its webhook deliveries. The compliance log keeps its (personal-data-free) entries.
pub(super) async fn erase_shop(
    store: &DynamoStore,
    shop: &ShopDomain,
) -> Result<EraseOutcome, StoreError> {
    let Some(install) = shop_install(store, shop).await? else {
        return Ok(EraseOutcome::UnknownShop);
    };
    if install.state == InstallState::Installed {
        return Ok(EraseOutcome::SkippedReinstalled);
    }
    super::deliveries::erase_shop(store, shop.as_str()).await?;
    super::sales::erase_tenant(store, &install.tenant).await?;
    let items = store
        .query_all(&Query::partition(shop_pk(shop)).project("PK, SK"), None)
        .await?;
    let mut keys = Vec::new();
    for item in &items {
        let sk = text(item, "SK")?;
        if !sk.starts_with("COMPLIANCE#") && sk != INSTALL_SK {
            keys.push((shop_pk(shop), sk.to_owned()));
        }
    }
    store.delete_all(keys).await?;
    // The install goes last: an erasure cut short is found and finished by the next one.
    let removed = store
        .delete_if(
            shop_pk(shop),
            INSTALL_SK.to_owned(),
            "#state = :uninstalled",
            HashMap::from([(
                ":uninstalled".to_owned(),
                s(InstallState::Uninstalled.as_str()),
            )]),
        )
        .await?;
    if !removed {
        return Err(StoreError::Conflict {
            entity: "shop",
            id: shop.to_string(),
        });
    }
    Ok(EraseOutcome::Erased)
}

/// Adds an entry; a second entry for the same delivery is ignored (`Ok(false)`).
pub(super) async fn record_compliance(
    store: &DynamoStore,
    entry: &ComplianceEntry,
) -> Result<bool, StoreError> {
    let item = HashMap::from([
        ("PK".to_owned(), s(shop_pk(&entry.shop))),
        (
            "SK".to_owned(),
            s(format!("COMPLIANCE#{}", entry.webhook_id)),
        ),
        ("topic".to_owned(), s(entry.topic.clone())),
        ("webhook_id".to_owned(), s(entry.webhook_id.clone())),
        ("handled_at".to_owned(), s(time_text(entry.handled_at))),
        ("outcome".to_owned(), s(entry.outcome.clone())),
        ("detail".to_owned(), s(entry.detail.to_string())),
        ("recorded_at".to_owned(), s(time_text(Utc::now()))),
    ]);
    store
        .put_if(item, "attribute_not_exists(PK)", Item::new())
        .await
}

pub(super) async fn compliance_log(
    store: &DynamoStore,
    shop: &ShopDomain,
) -> Result<Vec<ComplianceEntry>, StoreError> {
    let items = store
        .query_all(&Query::prefix(shop_pk(shop), "COMPLIANCE#"), None)
        .await?;
    let mut entries = items
        .iter()
        .map(|item| {
            Ok((
                text(item, "recorded_at")?.to_owned(),
                ComplianceEntry {
                    shop: shop.clone(),
                    topic: text(item, "topic")?.to_owned(),
                    webhook_id: text(item, "webhook_id")?.to_owned(),
                    handled_at: parse_time(text(item, "handled_at")?)?,
                    outcome: text(item, "outcome")?.to_owned(),
                    detail: serde_json::from_str(text(item, "detail")?)
                        .map_err(StoreError::unavailable)?,
                },
            ))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    // Oldest first, as recorded.
    entries.sort_by(|left, right| left.0.cmp(&right.0));
    Ok(entries.into_iter().map(|(_, entry)| entry).collect())
}

pub(super) async fn put_data_request(
    store: &DynamoStore,
    request: &DataRequest,
) -> Result<(), StoreError> {
    let orders =
        serde_json::to_string(&request.orders_requested).map_err(StoreError::unavailable)?;
    let item = HashMap::from([
        ("PK".to_owned(), s(shop_pk(&request.shop))),
        (
            "SK".to_owned(),
            s(format!("REQUEST#{}", request.request_id)),
        ),
        ("request_id".to_owned(), s(request.request_id.clone())),
        ("customer_id".to_owned(), s(request.customer_id.clone())),
        ("orders_requested".to_owned(), s(orders)),
        ("received_at".to_owned(), s(time_text(request.received_at))),
    ]);
    // Idempotent by request id: a second put of the same request changes nothing.
    store
        .put_if(item, "attribute_not_exists(PK)", Item::new())
        .await
        .map(drop)
}

pub(super) async fn data_requests(
    store: &DynamoStore,
    shop: &ShopDomain,
) -> Result<Vec<DataRequest>, StoreError> {
    let items = store
        .query_all(&Query::prefix(shop_pk(shop), "REQUEST#"), None)
        .await?;
    let mut requests = items
        .iter()
        .map(|item| {
            Ok(DataRequest {
                shop: shop.clone(),
                request_id: text(item, "request_id")?.to_owned(),
                customer_id: text(item, "customer_id")?.to_owned(),
                orders_requested: serde_json::from_str(text(item, "orders_requested")?)
                    .map_err(StoreError::unavailable)?,
                received_at: parse_time(text(item, "received_at")?)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    requests.sort_by(|left, right| {
        (left.received_at, &left.request_id).cmp(&(right.received_at, &right.request_id))
    });
    Ok(requests)
}

/// Erases what is held about one customer of a shop; returns how many records went.
pub(super) async fn redact_customer(
    store: &DynamoStore,
    shop: &ShopDomain,
    customer_id: &str,
) -> Result<u64, StoreError> {
    let mut erased = 0;
    for request in data_requests(store, shop).await? {
        if request.customer_id != customer_id {
            continue;
        }
        let deleted = store
            .delete_if(
                shop_pk(shop),
                format!("REQUEST#{}", request.request_id),
                "#customer_id = :customer",
                HashMap::from([(":customer".to_owned(), s(customer_id))]),
            )
            .await?;
        erased += u64::from(deleted);
    }
    Ok(erased)
}
