//! The state of a shop's order sync (bulk backfill and reconciliation), as stored and as the JSON
//! API shows it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a shop's sync stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncState {
    /// Never synced.
    #[default]
    Idle,
    /// A sync is under way (or was cut off and resumes at the next run).
    Running,
    /// The last sync failed; `last_error` says why.
    Failed,
    /// The last sync completed.
    Completed,
}

/// What a sync does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    /// A bulk operation over the shop's orders (all, or from `since`).
    #[default]
    Backfill,
    /// `orders(query: "updated_at:>=watermark")` pages since the last watermark.
    Reconcile,
}

/// The step a running sync is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    /// Starting the bulk operation.
    #[default]
    Starting,
    /// Waiting for Shopify to finish the bulk operation.
    Waiting,
    /// Downloading the result.
    Downloading,
    /// Applying orders to sales.
    Applying,
    /// Paging through orders updated since the watermark.
    Reconciling,
    /// Nothing left to do.
    Done,
}

/// A shop's sync status: one per tenant, replaced as the sync advances. Fields missing from a
/// status stored by an older version read as their defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncStatus {
    /// The shop domain.
    pub shop: String,
    /// Where it stands.
    pub state: SyncState,
    /// What the current (or last) sync does.
    pub kind: SyncKind,
    /// The step it is at.
    pub phase: SyncPhase,
    /// Orders created at or after this time (a backfill); `None` for all.
    pub since: Option<DateTime<Utc>>,
    /// The bulk operation (`gid://shopify/BulkOperation/…`).
    pub bulk_operation_id: Option<String>,
    /// Bulk operations started by this sync (restarts after a failure or an expired result).
    pub attempts: u32,
    /// Orders applied (newer than what was stored).
    pub orders: u64,
    /// Orders skipped because a version at least as new was stored (webhooks got there first).
    pub orders_stale: u64,
    /// Sales lines written.
    pub lines: u64,
    /// Size of the bulk result, when Shopify said.
    pub bytes_total: Option<u64>,
    /// Bytes of the result downloaded and committed (whole lines only): a cut-off download
    /// resumes from here.
    pub bytes_committed: u64,
    /// Lines of the result committed.
    pub lines_committed: u64,
    /// Length of each spool bucket file at the last commit (resume point).
    pub spool_lengths: Vec<u64>,
    /// Spool buckets sorted into runs by order id.
    pub buckets_sorted: u32,
    /// Orders are applied in ascending id from the merged runs: every order up to this id is
    /// applied (a resumed sync continues after it).
    pub applied_through: Option<String>,
    /// Result lines that could not be read (each also logged).
    pub rows_rejected: u64,
    /// Why the last sync failed.
    pub last_error: Option<String>,
    /// The last sync failed because Shopify refused the shop's credentials: what an uninstall
    /// does to them before its `app/uninstalled` webhook arrives.
    pub credentials_refused: bool,
    /// Orders updated at or after this time may not be synced yet: the next reconciliation starts
    /// here.
    pub watermark: Option<DateTime<Utc>>,
    /// A note for the merchant (say, the 60-day limit without `read_all_orders`).
    pub notice: Option<String>,
    /// When the sync started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it last recorded progress (a running sync silent for long was cut off).
    pub updated_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl SyncStatus {
    /// The status as the API and the CLI show it: without the spool's resume bookkeeping.
    pub fn public_view(&self) -> serde_json::Value {
        let mut view = serde_json::to_value(self).unwrap_or_default();
        if let Some(fields) = view.as_object_mut() {
            fields.remove("spool_lengths");
        }
        view
    }
}

/// What applying a batch of order versions did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrdersApplied {
    /// Versions newer than what was stored (or first seen).
    pub applied: u64,
    /// Versions no newer than the stored one: nothing changed.
    pub stale: u64,
    /// Lines new to the store.
    pub lines_imported: u64,
    /// Lines whose units or revenue changed.
    pub lines_updated: u64,
}
