//! The products table use case: a page of SKU × locations from the store, with the reorder
//! suggestion of each stocked row computed from its stored forecast.

use std::collections::HashMap;

use crate::domain::{
    Location, ProductPage, ProductQuery, REVIEW_PERIOD_DAYS, SeriesForecast, Sku, StockLevel,
    TenantId,
};
use crate::forecast::reorder::reorder_hint;
use crate::store::{Store, StoreError};

/// Most rows one page may hold.
pub const MAX_PAGE_ROWS: u32 = 1_000;

/// One page of the products table, each stocked row with its suggested order and risk.
///
/// # Errors
/// When the store fails.
pub async fn page(
    store: &dyn Store,
    tenant: &TenantId,
    query: &ProductQuery,
) -> Result<ProductPage, StoreError> {
    let mut page = store.products(tenant, query).await?;
    // The stocked rows, with the days their reorder policy looks at: lead time plus review
    // period. Their forecasts and stock are read in one store call each, not row by row.
    let stocked: Vec<(usize, Sku, Location, usize)> = page
        .rows
        .iter()
        .enumerate()
        .filter_map(|(index, row)| {
            let days = (row.lead_time_days? + REVIEW_PERIOD_DAYS) as usize;
            let sku = Sku::parse(&row.sku).ok()?;
            let location = Location::parse(&row.location).ok()?;
            Some((index, sku, location, days.max(1)))
        })
        .collect();
    if stocked.is_empty() {
        return Ok(page);
    }
    let series: Vec<(Sku, Location)> = stocked
        .iter()
        .map(|(_, sku, location, _)| (sku.clone(), location.clone()))
        .collect();
    let longest = stocked.iter().map(|(.., days)| *days).max();
    let forecasts: HashMap<(Sku, Location), SeriesForecast> = store
        .forecasts_of(tenant, &series, longest)
        .await?
        .into_iter()
        .map(|forecast| ((forecast.sku.clone(), forecast.location.clone()), forecast))
        .collect();
    let stock: HashMap<(Sku, Location), StockLevel> = store
        .stock_of(tenant, &series)
        .await?
        .into_iter()
        .map(|level| ((level.sku.clone(), level.location.clone()), level))
        .collect();
    for (index, sku, location, days) in stocked {
        let key = (sku, location);
        let (Some(forecast), Some(level)) = (forecasts.get(&key), stock.get(&key)) else {
            continue;
        };
        let points = &forecast.points[..days.min(forecast.points.len())];
        let hint = reorder_hint(points, level);
        let row = &mut page.rows[index];
        row.suggested_order = Some(hint.suggested_order_quantity);
        row.at_risk = hint.at_risk;
    }
    Ok(page)
}

/// Rows looked at when listing SKUs at risk: the lowest days of cover first, so the list is
/// exact whenever fewer SKUs are stocked, and the soonest stock-outs otherwise.
const AT_RISK_CANDIDATES: u32 = 300;

/// Up to `limit` stocked SKU × locations that run short, soonest stock-out first.
///
/// # Errors
/// When the store fails.
pub async fn at_risk(
    store: &dyn Store,
    tenant: &TenantId,
    limit: usize,
) -> Result<Vec<crate::domain::ProductRow>, StoreError> {
    let query = ProductQuery {
        search: None,
        sort: crate::domain::ProductSort::Cover,
        descending: false,
        offset: 0,
        limit: AT_RISK_CANDIDATES,
    };
    let candidates = page(store, tenant, &query).await?;
    Ok(candidates
        .rows
        .into_iter()
        .filter(|row| row.at_risk)
        .take(limit)
        .collect())
}
