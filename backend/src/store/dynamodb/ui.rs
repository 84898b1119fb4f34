//! The UI's records in DynamoDB, and its reads of many series at once.
//!
//! Layout:
//! - `T#{t}` / `SERIES#{sku}␁{location}`: the series registry item also carries the products-table
//!   figures `sales_28`, `prev_28` and `forecast_28` (set by `put_series_stats`, only on series that
//!   exist), so one Query of the registry and one of the stock levels answer every page of the
//!   products table;
//! - `T#{t}` / `OVERVIEW`: the tenant overview (JSON);
//! - `T#{t}` / `SETTINGS`: lead time, service level and horizon; the time zone stays on the tenant
//!   item, where `tenant` reads it;
//! - `SESSION#{hash}` / `SESSION`: a browser session by the SHA-256 of its cookie secret (looked up
//!   before the tenant is known, so in a partition of its own, as API key hashes are), with the
//!   tenant's copy `T#{t}` / `SESSION#{hash}` for erasure;
//! - `LINK#{hash}` / `LINK`: a one-time sign-in link, with the copy `T#{t}` / `LINK#{hash}`.
//!
//! Sessions, links and their copies carry `expires_at` (epoch seconds, rounded up) for TTL, and
//! `expires` (RFC 3339): TTL deletes within days, so reads compare `expires` with `now` themselves.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::sales::{
    date_of, forecast_of, series_sk, sku_pk, stock, stock_level_of, stock_sk, totals_pk,
};
use super::{
    CONCURRENCY, Change, DynamoStore, Item, Query, TENANT_SK, TTL_ATTRIBUTE, n, not_found, number,
    optional_number, optional_text, parse_time, s, tenant_from_item, tenant_pk, text, time_text,
};
use crate::domain::{
    BrowserSecret, BrowserSession, DayRange, DayTotal, Location, PRODUCT_WINDOW_DAYS, ProductPage,
    ProductQuery, ProductRow, ProductSort, SeriesForecast, SeriesStats, Sku, StockLevel, TenantId,
    TenantOverview, TenantSettings,
};
use crate::store::StoreError;

const OVERVIEW_SK: &str = "OVERVIEW";
const SETTINGS_SK: &str = "SETTINGS";
const SESSION: &str = "SESSION";
const LINK: &str = "LINK";

fn session_pk(secret_hash: [u8; 32]) -> String {
    format!("{SESSION}#{}", hex::encode(secret_hash))
}

fn link_pk(secret_hash: [u8; 32]) -> String {
    format!("{LINK}#{}", hex::encode(secret_hash))
}

/// The lookup item (`PK`, `SK`) that a tenant partition's copy with sort key `sk` stands for: a
/// session's or a sign-in link's, which erasure deletes with the tenant.
pub(super) fn lookup_of_copy(sk: &str) -> Option<(String, String)> {
    [SESSION, LINK].into_iter().find_map(|kind| {
        let hash = sk.strip_prefix(kind)?.strip_prefix('#')?;
        Some((format!("{kind}#{hash}"), kind.to_owned()))
    })
}

/// `series` sorted by SKU and location, each once.
fn distinct(series: &[(Sku, Location)]) -> Vec<&(Sku, Location)> {
    let mut wanted: Vec<&(Sku, Location)> = series.iter().collect();
    wanted.sort();
    wanted.dedup();
    wanted
}

// ----- Reads of many series -------------------------------------------------------------------

pub(super) async fn forecasts_of(
    store: &DynamoStore,
    tenant: &TenantId,
    series: &[(Sku, Location)],
    days: Option<usize>,
) -> Result<Vec<SeriesForecast>, StoreError> {
    store.tenant_item(tenant).await?;
    let keys = distinct(series)
        .into_iter()
        .map(|(sku, location)| {
            (
                sku_pk(tenant, sku.as_str()),
                format!("F#{}", location.as_str()),
            )
        })
        .collect();
    let mut forecasts = store
        .batch_get(keys)
        .await?
        .iter()
        .map(|item| forecast_of(item, days))
        .collect::<Result<Vec<_>, _>>()?;
    forecasts
        .sort_by(|left, right| (&left.sku, &left.location).cmp(&(&right.sku, &right.location)));
    Ok(forecasts)
}

pub(super) async fn stock_of(
    store: &DynamoStore,
    tenant: &TenantId,
    series: &[(Sku, Location)],
) -> Result<Vec<StockLevel>, StoreError> {
    store.tenant_item(tenant).await?;
    let keys = distinct(series)
        .into_iter()
        .map(|(sku, location)| (tenant_pk(tenant), stock_sk(sku.as_str(), location.as_str())))
        .collect();
    let mut levels = store
        .batch_get(keys)
        .await?
        .iter()
        .map(stock_level_of)
        .collect::<Result<Vec<_>, _>>()?;
    levels.sort_by(|left, right| (&left.sku, &left.location).cmp(&(&right.sku, &right.location)));
    Ok(levels)
}

pub(super) async fn daily_totals(
    store: &DynamoStore,
    tenant: &TenantId,
    days: DayRange,
) -> Result<Vec<DayTotal>, StoreError> {
    let Some((from, to)) = super::sales::sales_span(&store.tenant_item(tenant).await?, days)?
    else {
        return Ok(Vec::new());
    };
    let mut totals = Vec::new();
    for year in from.year()..=to.year() {
        let query = Query::between(
            totals_pk(tenant, year),
            format!("A#{from}"),
            format!("A#{to}"),
        );
        store
            .query_each(&query, |item| {
                totals.push(DayTotal {
                    date: date_of(text(&item, "day")?)?,
                    units: number(&item, "units")?,
                    revenue: number(&item, "revenue")?,
                });
                Ok(true)
            })
            .await?;
    }
    Ok(totals)
}

// ----- Overview and products table --------------------------------------------------------------

pub(super) async fn put_overview(
    store: &DynamoStore,
    tenant: &TenantId,
    overview: &TenantOverview,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(overview).map_err(StoreError::unavailable)?;
    let item = HashMap::from([
        ("PK".to_owned(), s(tenant_pk(tenant))),
        ("SK".to_owned(), s(OVERVIEW_SK)),
        ("body".to_owned(), s(body)),
    ]);
    put_for_tenant(store, tenant, item).await
}

/// Puts `item` on the condition that the tenant exists (one transaction).
async fn put_for_tenant(
    store: &DynamoStore,
    tenant: &TenantId,
    item: Item,
) -> Result<(), StoreError> {
    let items = vec![
        store.check_item(tenant_pk(tenant), TENANT_SK, "attribute_exists(PK)")?,
        store.put_item(item, None, Item::new())?,
    ];
    store
        .transact(items)
        .await
        .map_err(|outcome| outcome.into_store_error(|| not_found("tenant", tenant.as_str())))
}

pub(super) async fn overview(
    store: &DynamoStore,
    tenant: &TenantId,
) -> Result<Option<TenantOverview>, StoreError> {
    store.tenant_item(tenant).await?;
    let Some(item) = store.get(tenant_pk(tenant), OVERVIEW_SK).await? else {
        return Ok(None);
    };
    serde_json::from_str(text(&item, "body")?)
        .map(Some)
        .map_err(StoreError::unavailable)
}

pub(super) async fn put_series_stats(
    store: &DynamoStore,
    tenant: &TenantId,
    stats: Vec<SeriesStats>,
) -> Result<(), StoreError> {
    store.tenant_item(tenant).await?;
    // The last figures of a series listed twice win, as if written one after another.
    let mut latest: BTreeMap<(Sku, Location), SeriesStats> = BTreeMap::new();
    for row in stats {
        latest.insert((row.sku.clone(), row.location.clone()), row);
    }
    let changes: Vec<Change> = latest
        .into_values()
        .map(|row| {
            // Only on a series the registry holds: figures of unknown series are dropped.
            Change::new(
                tenant_pk(tenant),
                series_sk(row.sku.as_str(), row.location.as_str()),
                "SET #sales_28 = :sales, #prev_28 = :prev, #forecast_28 = :forecast",
            )
            .when("attribute_exists(PK)")
            .value(":sales", n(row.sales_28))
            .value(":prev", n(row.prev_28))
            .value(":forecast", n(row.forecast_28))
        })
        .collect();
    stream::iter(changes)
        .map(|change| store.update(change))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .map(drop)
}

/// A series of the registry with its products-table figures (absent until computed).
struct Listed {
    sku: String,
    location: String,
    product: Option<String>,
    sales_28: Option<f64>,
    prev_28: Option<f64>,
    forecast_28: Option<f64>,
}

async fn listed_series(store: &DynamoStore, tenant: &TenantId) -> Result<Vec<Listed>, StoreError> {
    let query = Query::prefix(tenant_pk(tenant), "SERIES#")
        .project("#sku, #location, #product, #sales_28, #prev_28, #forecast_28");
    let mut listed = Vec::new();
    store
        .query_each(&query, |item| {
            listed.push(Listed {
                sku: text(&item, "sku")?.to_owned(),
                location: text(&item, "location")?.to_owned(),
                product: optional_text(&item, "product")?.map(str::to_owned),
                sales_28: optional_number(&item, "sales_28")?,
                prev_28: optional_number(&item, "prev_28")?,
                forecast_28: optional_number(&item, "forecast_28")?,
            });
            Ok(true)
        })
        .await?;
    Ok(listed)
}

/// Whether `haystack` contains `needle` (already ASCII-lowercased), ASCII letters matched without
/// case, as SQLite's `LIKE` does.
fn contains(haystack: &str, needle: &str) -> bool {
    haystack.to_ascii_lowercase().contains(needle)
}

/// Orders two optional figures, absent ones last in either direction.
fn nulls_last(left: Option<f64>, right: Option<f64>, descending: bool) -> Ordering {
    match (left, right) {
        (Some(left), Some(right)) => directed(figure_order(left, right), descending),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn figure_order(left: f64, right: f64) -> Ordering {
    left.partial_cmp(&right).unwrap_or(Ordering::Equal)
}

fn directed(order: Ordering, descending: bool) -> Ordering {
    if descending { order.reverse() } else { order }
}

pub(super) async fn products(
    store: &DynamoStore,
    tenant: &TenantId,
    query: &ProductQuery,
) -> Result<ProductPage, StoreError> {
    store.tenant_item(tenant).await?;
    let (listed, levels) =
        futures_util::future::try_join(listed_series(store, tenant), stock(store, tenant, None))
            .await?;
    let levels: HashMap<(String, String), StockLevel> = levels
        .into_iter()
        .map(|level| {
            let key = (
                level.sku.as_str().to_owned(),
                level.location.as_str().to_owned(),
            );
            (key, level)
        })
        .collect();
    let needle = query
        .search
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_ascii_lowercase);
    let window = PRODUCT_WINDOW_DAYS as f64;
    let mut rows: Vec<ProductRow> = listed
        .into_iter()
        .filter(|series| {
            needle.as_deref().is_none_or(|needle| {
                contains(&series.sku, needle)
                    || series
                        .product
                        .as_deref()
                        .is_some_and(|product| contains(product, needle))
            })
        })
        .map(|series| {
            let level = levels.get(&(series.sku.clone(), series.location.clone()));
            let trend = match (series.sales_28, series.prev_28) {
                (Some(sales), Some(prev)) if prev > 0.0 => Some(sales / prev - 1.0),
                _ => None,
            };
            let on_hand = level.map(|level| level.on_hand);
            let days_of_cover = match (on_hand, series.forecast_28) {
                (Some(on_hand), Some(forecast)) if forecast > 0.0 => {
                    Some(on_hand * window / forecast)
                }
                _ => None,
            };
            ProductRow {
                sku: series.sku,
                location: series.location,
                product: series.product,
                sales_28: series.sales_28.unwrap_or(0.0),
                forecast_28: series.forecast_28.unwrap_or(0.0),
                trend,
                on_hand,
                days_of_cover,
                lead_time_days: level.map(|level| level.lead_time_days),
                suggested_order: None,
                at_risk: false,
            }
        })
        .collect();
    let descending = query.descending;
    let by_series = |left: &ProductRow, right: &ProductRow| {
        (&left.sku, &left.location).cmp(&(&right.sku, &right.location))
    };
    rows.sort_by(|left, right| match query.sort {
        ProductSort::Sku => directed(by_series(left, right), descending),
        ProductSort::Location => directed(
            (&left.location, &left.sku).cmp(&(&right.location, &right.sku)),
            descending,
        ),
        ProductSort::Sales => directed(figure_order(left.sales_28, right.sales_28), descending)
            .then_with(|| by_series(left, right)),
        ProductSort::Forecast => directed(
            figure_order(left.forecast_28, right.forecast_28),
            descending,
        )
        .then_with(|| by_series(left, right)),
        ProductSort::Trend => {
            nulls_last(left.trend, right.trend, descending).then_with(|| by_series(left, right))
        }
        ProductSort::Cover => nulls_last(left.days_of_cover, right.days_of_cover, descending)
            .then_with(|| by_series(left, right)),
    });
    let total = rows.len() as u64;
    let offset = usize::try_from(query.offset).unwrap_or(usize::MAX);
    let limit = usize::try_from(query.limit).unwrap_or(usize::MAX);
    let rows = rows.into_iter().skip(offset).take(limit).collect();
    Ok(ProductPage {
        total,
        offset: query.offset,
        limit: query.limit,
        rows,
    })
}

// ----- Settings -------------------------------------------------------------------------------

pub(super) async fn settings(
    store: &DynamoStore,
    tenant: &TenantId,
) -> Result<TenantSettings, StoreError> {
    let (tenant_item, stored) = futures_util::future::try_join(
        store.tenant_item(tenant),
        store.get(tenant_pk(tenant), SETTINGS_SK),
    )
    .await?;
    let mut settings = TenantSettings::defaults(text(&tenant_item, "timezone")?);
    if let Some(stored) = stored {
        settings.default_lead_time_days = number(&stored, "default_lead_time_days")?;
        settings.service_level = number(&stored, "service_level")?;
        settings.horizon_days = number(&stored, "horizon_days")?;
    }
    Ok(settings)
}

pub(super) async fn put_settings(
    store: &DynamoStore,
    tenant: &TenantId,
    settings: &TenantSettings,
) -> Result<(), StoreError> {
    // The time zone lives on the tenant item; it and the rest change together.
    let timezone = Change::new(tenant_pk(tenant), TENANT_SK, "SET #timezone = :timezone")
        .when("attribute_exists(PK)")
        .value(":timezone", s(settings.timezone.clone()));
    let item = HashMap::from([
        ("PK".to_owned(), s(tenant_pk(tenant))),
        ("SK".to_owned(), s(SETTINGS_SK)),
        (
            "default_lead_time_days".to_owned(),
            n(settings.default_lead_time_days),
        ),
        ("service_level".to_owned(), n(settings.service_level)),
        ("horizon_days".to_owned(), n(settings.horizon_days)),
    ]);
    let items = vec![
        store.update_item(timezone)?,
        store.put_item(item, None, Item::new())?,
    ];
    store
        .transact(items)
        .await
        .map_err(|outcome| outcome.into_store_error(|| not_found("tenant", tenant.as_str())))
}

// ----- Sessions and sign-in links ---------------------------------------------------------------

/// Epoch seconds for TTL, rounded up: DynamoDB never deletes an item before it expired.
fn ttl_seconds(expires_at: DateTime<Utc>) -> i64 {
    let seconds = expires_at.timestamp();
    if expires_at.timestamp_subsec_nanos() > 0 {
        seconds + 1
    } else {
        seconds
    }
}

/// Stores a lookup item under `lookup_pk` / `kind` (absent before) with `attributes`, and the
/// tenant's copy, on the condition that the tenant exists: one transaction.
async fn put_lookup(
    store: &DynamoStore,
    tenant: &TenantId,
    kind: &'static str,
    lookup_pk: String,
    expires_at: DateTime<Utc>,
    attributes: Vec<(&str, String)>,
) -> Result<(), StoreError> {
    let expiry = [
        ("expires".to_owned(), s(time_text(expires_at))),
        (TTL_ATTRIBUTE.to_owned(), n(ttl_seconds(expires_at))),
    ];
    let mut lookup = HashMap::from([
        ("PK".to_owned(), s(lookup_pk.clone())),
        ("SK".to_owned(), s(kind)),
        ("tenant".to_owned(), s(tenant.as_str())),
        ("created_at".to_owned(), s(time_text(Utc::now()))),
    ]);
    lookup.extend(expiry.clone());
    lookup.extend(
        attributes
            .into_iter()
            .map(|(name, value)| (name.to_owned(), s(value))),
    );
    let mut copy = HashMap::from([
        ("PK".to_owned(), s(tenant_pk(tenant))),
        ("SK".to_owned(), s(lookup_pk.clone())),
    ]);
    copy.extend(expiry);
    let items = vec![
        store.check_item(tenant_pk(tenant), TENANT_SK, "attribute_exists(PK)")?,
        store.put_item(lookup, Some("attribute_not_exists(PK)"), Item::new())?,
        store.put_item(copy, None, Item::new())?,
    ];
    store.transact(items).await.map_err(|outcome| {
        if outcome.failed_at(0) {
            not_found("tenant", tenant.as_str())
        } else {
            outcome.into_store_error(|| StoreError::Conflict {
                entity: if kind == SESSION {
                    "session"
                } else {
                    "sign-in link"
                },
                id: tenant.to_string(),
            })
        }
    })
}

/// Whether a lookup item has expired at `now`.
fn expired(item: &Item, now: DateTime<Utc>) -> Result<bool, StoreError> {
    Ok(parse_time(text(item, "expires")?)? <= now)
}

pub(super) async fn create_session(
    store: &DynamoStore,
    tenant: &TenantId,
    secret_hash: [u8; 32],
    csrf_token: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    put_lookup(
        store,
        tenant,
        SESSION,
        session_pk(secret_hash),
        expires_at,
        vec![("csrf_token", csrf_token.to_owned())],
    )
    .await
}

pub(super) async fn session(
    store: &DynamoStore,
    secret_hash: [u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<BrowserSession>, StoreError> {
    let Some(item) = store.get(session_pk(secret_hash), SESSION).await? else {
        return Ok(None);
    };
    if expired(&item, now)? {
        return Ok(None);
    }
    let tenant = TenantId::parse(text(&item, "tenant")?).map_err(StoreError::unavailable)?;
    // A session whose tenant was erased (erasure deletes sessions first, but may be cut short).
    let Some(tenant_item) = store.get(tenant_pk(&tenant), TENANT_SK).await? else {
        return Ok(None);
    };
    Ok(Some(BrowserSession {
        tenant: tenant_from_item(&tenant_item)?,
        csrf_token: BrowserSecret::from_presented(text(&item, "csrf_token")?),
        expires_at: parse_time(text(&item, "expires")?)?,
    }))
}

/// Deletes a lookup item and then its tenant's copy; `None` when there was none.
async fn take_lookup(
    store: &DynamoStore,
    lookup_pk: String,
    kind: &str,
) -> Result<Option<(Item, TenantId)>, StoreError> {
    let Some(item) = store.take(lookup_pk.clone(), kind).await? else {
        return Ok(None);
    };
    let tenant = TenantId::parse(text(&item, "tenant")?).map_err(StoreError::unavailable)?;
    // A copy left behind by a failure here expires with TTL.
    store
        .delete_all(vec![(tenant_pk(&tenant), lookup_pk)])
        .await?;
    Ok(Some((item, tenant)))
}

pub(super) async fn delete_session(
    store: &DynamoStore,
    secret_hash: [u8; 32],
) -> Result<(), StoreError> {
    take_lookup(store, session_pk(secret_hash), SESSION)
        .await
        .map(drop)
}

pub(super) async fn create_sign_in_link(
    store: &DynamoStore,
    tenant: &TenantId,
    secret_hash: [u8; 32],
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    put_lookup(
        store,
        tenant,
        LINK,
        link_pk(secret_hash),
        expires_at,
        Vec::new(),
    )
    .await
}

pub(super) async fn consume_sign_in_link(
    store: &DynamoStore,
    secret_hash: [u8; 32],
    now: DateTime<Utc>,
) -> Result<Option<TenantId>, StoreError> {
    // A conditional delete: of two uses at once, one finds the link and the other nothing. An
    // expired link is used up all the same.
    let Some((item, tenant)) = take_lookup(store, link_pk(secret_hash), LINK).await? else {
        return Ok(None);
    };
    if expired(&item, now)? {
        return Ok(None);
    }
    if store.get(tenant_pk(&tenant), TENANT_SK).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(tenant))
}

#[cfg(test)]
mod tests {
    use super::super::SEP;
    use super::*;

    #[test]
    fn copies_name_their_lookups_and_nothing_else() {
        let hash = [7u8; 32];
        let copy = session_pk(hash);
        assert_eq!(
            lookup_of_copy(&copy),
            Some((session_pk(hash), SESSION.to_owned()))
        );
        assert_eq!(
            lookup_of_copy(&link_pk(hash)),
            Some((link_pk(hash), LINK.to_owned()))
        );
        assert_eq!(lookup_of_copy(&format!("SERIES#A{SEP}")), None);
        assert_eq!(lookup_of_copy("SETTINGS"), None);
        assert_eq!(lookup_of_copy("SESSIONS"), None);
    }

    #[test]
    fn ttl_is_never_before_expiry() {
        let whole = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let later = DateTime::parse_from_rfc3339("2026-01-01T00:00:00.2Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(ttl_seconds(whole), whole.timestamp());
        assert_eq!(ttl_seconds(later), whole.timestamp() + 1);
    }

    #[test]
    fn absent_figures_sort_last_both_ways() {
        assert_eq!(nulls_last(Some(1.0), None, false), Ordering::Less);
        assert_eq!(nulls_last(Some(1.0), None, true), Ordering::Less);
        assert_eq!(nulls_last(Some(1.0), Some(2.0), true), Ordering::Greater);
        assert_eq!(nulls_last(None, None, true), Ordering::Equal);
    }
}
