//! Order-sync state in DynamoDB: the status item and `bulk_operations/finish` signals, both in the
//! tenant's partition (so erasing the tenant erases them), and batched order versions.

use futures_util::{StreamExt, TryStreamExt, stream};

use super::sales::apply_order;
use super::{DynamoStore, Item, s, tenant_pk, text};
use crate::domain::{OrderApplied, OrderVersion, OrdersApplied, SyncStatus, TenantId};
use crate::store::StoreError;

const SYNC_SK: &str = "SYNC";

fn finished_sk(operation_id: &str) -> String {
    format!("BULKDONE#{operation_id}")
}

/// Orders of one batch applied at once. Orders of a backfill rarely share an order id (the batch
/// keeps only the newest version of each), so their transactions touch different order items;
/// those that share a day total are retried by `apply_order` when DynamoDB cancels one.
const ORDERS_IN_FLIGHT: usize = 8;

pub(super) async fn apply_orders(
    store: &DynamoStore,
    tenant: &TenantId,
    mut orders: Vec<OrderVersion>,
) -> Result<OrdersApplied, StoreError> {
    store.tenant_item(tenant).await?;
    // The newest version of each order in the batch; the others are stale.
    orders.sort_by(|left, right| {
        (left.order_id.as_str(), right.updated_at).cmp(&(right.order_id.as_str(), left.updated_at))
    });
    let before = orders.len();
    orders.dedup_by(|later, kept| later.order_id == kept.order_id);
    let mut outcome = OrdersApplied {
        stale: (before - orders.len()) as u64,
        ..OrdersApplied::default()
    };
    let results: Vec<OrderApplied> = stream::iter(orders)
        .map(|order| async move { apply_order(store, tenant, &order).await })
        .buffer_unordered(ORDERS_IN_FLIGHT)
        .try_collect()
        .await?;
    for result in results {
        match result {
            OrderApplied::Applied { imported, updated } => {
                outcome.applied += 1;
                outcome.lines_imported += imported;
                outcome.lines_updated += updated;
            }
            OrderApplied::Stale => outcome.stale += 1,
        }
    }
    Ok(outcome)
}

pub(super) async fn sync_status(
    store: &DynamoStore,
    tenant: &TenantId,
) -> Result<Option<SyncStatus>, StoreError> {
    store.tenant_item(tenant).await?;
    let Some(item) = store.get(tenant_pk(tenant), SYNC_SK).await? else {
        return Ok(None);
    };
    serde_json::from_str(text(&item, "status")?)
        .map(Some)
        .map_err(StoreError::unavailable)
}

pub(super) async fn put_sync_status(
    store: &DynamoStore,
    tenant: &TenantId,
    status: &SyncStatus,
) -> Result<(), StoreError> {
    store.tenant_item(tenant).await?;
    let json = serde_json::to_string(status).map_err(StoreError::unavailable)?;
    let item = Item::from([
        ("PK".to_owned(), s(tenant_pk(tenant))),
        ("SK".to_owned(), s(SYNC_SK)),
        ("status".to_owned(), s(json)),
    ]);
    store.put(item).await
}

pub(super) async fn signal_bulk_finished(
    store: &DynamoStore,
    tenant: &TenantId,
    operation_id: &str,
) -> Result<(), StoreError> {
    store.tenant_item(tenant).await?;
    let item = Item::from([
        ("PK".to_owned(), s(tenant_pk(tenant))),
        ("SK".to_owned(), s(finished_sk(operation_id))),
        ("at".to_owned(), s(chrono::Utc::now().to_rfc3339())),
    ]);
    // A repeated signal leaves the first in place.
    store
        .put_if(item, "attribute_not_exists(PK)", Item::new())
        .await
        .map(|_| ())
}

pub(super) async fn bulk_finished(
    store: &DynamoStore,
    tenant: &TenantId,
    operation_id: &str,
) -> Result<bool, StoreError> {
    store.tenant_item(tenant).await?;
    Ok(store
        .get(tenant_pk(tenant), &finished_sk(operation_id))
        .await?
        .is_some())
}
