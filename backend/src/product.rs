//! The products table use case: a page of SKU × locations from the store, with the reorder
//! suggestion of each stocked row computed from its stored forecast.

use crate::domain::{ProductPage, ProductQuery, REVIEW_PERIOD_DAYS, Sku, TenantId};
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
    for row in &mut page.rows {
        let Some(lead_time_days) = row.lead_time_days else {
            continue;
        };
        let Ok(sku) = Sku::parse(&row.sku) else {
            continue;
        };
        let Ok(location) = crate::domain::Location::parse(&row.location) else {
            continue;
        };
        // Only the days the reorder policy looks at: lead time plus review period.
        let days = (lead_time_days + REVIEW_PERIOD_DAYS) as usize;
        let forecasts = store
            .forecasts(tenant, Some(&sku), Some(&location), Some(days.max(1)))
            .await?;
        let Some(forecast) = forecasts.first() else {
            continue;
        };
        let stock = store.stock(tenant, Some(&sku)).await?;
        if let Some(level) = stock.iter().find(|level| level.location == location) {
            let hint = reorder_hint(&forecast.points, level);
            row.suggested_order = Some(hint.suggested_order_quantity);
            row.at_risk = hint.at_risk;
        }
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
