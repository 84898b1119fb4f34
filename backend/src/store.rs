//! The storage port: `Store`, the durable home of everything a tenant owns, and `StoreError`. The
//! adapters are [`sqlite::SqliteStore`] (embedded) and [`dynamodb::DynamoStore`] (Amazon DynamoDB).

pub mod dynamodb;
mod forecast_codec;
pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    BrowserSession, DayTotal, ProductPage, ProductQuery, SeriesStats, TenantOverview,
    TenantSettings,
};
use crate::domain::{
    CatalogueVariant, ComplianceEntry, DataRequest, DayRange, DeliveryFilter, DeliveryLease,
    DeliveryOutcome, DeliveryReceipt, DeliveryRecord, DeliveryStatus, EraseOutcome, Location,
    NewDelivery, NewInstall, NewTenant, OrderApplied, OrderVersion, OrdersApplied, SalesBatch,
    SalesDay, SalesQuery, SealedCredentials, SeriesForecast, SeriesHistory, ShopInstall, Sku,
    SkuSummary, StockLevel, SyncStatus, Tenant, TenantId, UninstallOutcome,
};
use crate::shopify::shop::ShopDomain;

/// Failures of a `Store`, already translated from the driver's own errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The record does not exist for this tenant.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Kind of record.
        entity: &'static str,
        /// Its id.
        id: String,
    },
    /// Another writer changed the record first.
    #[error("concurrent write to {entity} {id}; reload and retry")]
    Conflict {
        /// Kind of record.
        entity: &'static str,
        /// Its id.
        id: String,
    },
    /// The store cannot be reached or failed; the cause is kept for the log.
    #[error("store unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Wraps any driver error as `Unavailable`.
    pub fn unavailable(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(error))
    }
}

/// Public id of an upload (`up_` + 20 hex digits).
pub type UploadId = String;

/// What one batch of sales lines did to the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesWrite {
    /// Lines stored for the first time.
    pub imported: u64,
    /// Lines identical to one stored by an earlier upload.
    pub duplicate: u64,
    /// Lines whose identity was stored before with other values (say, an order cancelled since);
    /// the stored line and the daily sales now carry the new values.
    pub updated: u64,
}

/// Lifecycle of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    /// Rows are being read.
    Running,
    /// Every row was read; rejected rows are listed in the report.
    Complete,
    /// The file was refused as a whole (no recognisable header); nothing was imported.
    Refused,
    /// Reading stopped part way (the connection or file broke); the batches committed before stay.
    Failed,
}

/// One error in an uploaded file, pointing at its line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// Column name as written in the header, when one column is at fault.
    pub column: Option<String>,
    /// What is wrong.
    pub message: String,
}

/// The report of one CSV upload, returned by the API and printed by the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Public id of the upload.
    pub upload_id: UploadId,
    /// Recognised format: `canonical`, `shopify_orders` or `square_items`.
    pub format: Option<String>,
    /// File name given by the client, if any.
    pub filename: Option<String>,
    /// Lifecycle state.
    pub status: UploadStatus,
    /// Data rows read (the header is not counted).
    pub rows_read: u64,
    /// Rows stored for the first time.
    pub rows_imported: u64,
    /// Rows already stored by an earlier upload.
    pub rows_duplicate: u64,
    /// Rows that replaced an earlier version of the same order line.
    pub rows_updated: u64,
    /// Rows refused; see `errors`.
    pub rows_rejected: u64,
    /// The first 100 row errors.
    pub errors: Vec<RowError>,
    /// Earliest sale date among accepted rows.
    pub first_date: Option<NaiveDate>,
    /// Latest sale date among accepted rows.
    pub last_date: Option<NaiveDate>,
    /// When the upload started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

impl ImportReport {
    /// The report of upload `upload_id` starting now: running, nothing read yet.
    pub fn running(upload_id: UploadId, filename: Option<String>) -> Self {
        Self {
            upload_id,
            format: None,
            filename,
            status: UploadStatus::Running,
            rows_read: 0,
            rows_imported: 0,
            rows_duplicate: 0,
            rows_updated: 0,
            rows_rejected: 0,
            errors: Vec::new(),
            first_date: None,
            last_date: None,
            started_at: Utc::now(),
            finished_at: None,
        }
    }
}

/// Durable home of everything a tenant owns; adapters are `SqliteStore` and `DynamoStore`.
/// Every method is scoped by `tenant`: returning or changing another tenant's rows is a bug.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Checks that the store answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Creates a tenant with its first API key (stored as `api_key_hash` only).
    async fn create_tenant(
        &self,
        id: &TenantId,
        tenant: &NewTenant,
        api_key_hash: [u8; 32],
    ) -> Result<Tenant, StoreError>;

    /// Adds another API key to a tenant.
    async fn add_api_key(
        &self,
        tenant: &TenantId,
        api_key_hash: [u8; 32],
    ) -> Result<(), StoreError>;

    /// Reads a tenant.
    async fn tenant(&self, tenant: &TenantId) -> Result<Tenant, StoreError>;

    /// Lists all tenants, oldest first (operators' CLI only, never the API).
    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError>;

    /// Finds the tenant owning an API key, by the key's hash.
    async fn tenant_by_api_key(&self, api_key_hash: [u8; 32])
    -> Result<Option<Tenant>, StoreError>;

    /// Records the start of an upload (status `running`), so that history shows it even if it breaks.
    async fn begin_upload(
        &self,
        tenant: &TenantId,
        report: &ImportReport,
    ) -> Result<(), StoreError>;

    /// Stores a batch of sales lines from `upload` and adds them to daily sales, atomically.
    /// A line whose identity was stored by an earlier upload is a duplicate (same values) or an
    /// update (new values replace the old, daily sales adjusted by the difference); repeats of one
    /// identity within one upload are distinct lines.
    ///
    /// A batch is one of a run that [`Store::finish_upload`] closes: a store may make it durable
    /// against power loss only with that (or any later) write, never half of it. A crash of the
    /// process alone loses nothing that was answered.
    async fn write_sales(
        &self,
        tenant: &TenantId,
        upload: &UploadId,
        batch: SalesBatch,
    ) -> Result<SalesWrite, StoreError>;

    /// Stores the final report of an upload.
    async fn finish_upload(
        &self,
        tenant: &TenantId,
        report: &ImportReport,
    ) -> Result<(), StoreError>;

    /// One upload's report.
    async fn upload(
        &self,
        tenant: &TenantId,
        upload: &UploadId,
    ) -> Result<ImportReport, StoreError>;

    /// The tenant's uploads, newest first, at most `limit`.
    async fn uploads(&self, tenant: &TenantId, limit: u32)
    -> Result<Vec<ImportReport>, StoreError>;

    /// Net daily (or weekly) sales per SKU and location, ordered by SKU, location, date.
    async fn sales(
        &self,
        tenant: &TenantId,
        query: &SalesQuery,
    ) -> Result<Vec<SalesDay>, StoreError>;

    /// Every SKU with sales, ordered by SKU.
    async fn skus(&self, tenant: &TenantId) -> Result<Vec<SkuSummary>, StoreError>;

    /// Daily net units of every series of the tenant, zero-filled from the series' first sale to the
    /// tenant's last sales day, ordered by SKU and location.
    async fn sales_history(&self, tenant: &TenantId) -> Result<Vec<SeriesHistory>, StoreError>;

    /// Replaces the stored forecasts of the series in `forecasts`.
    async fn put_forecasts(
        &self,
        tenant: &TenantId,
        forecasts: Vec<SeriesForecast>,
    ) -> Result<(), StoreError>;

    /// Stored forecasts, optionally only one SKU and/or location, ordered by SKU and location,
    /// each with its first `days` points (all of them when `None`).
    async fn forecasts(
        &self,
        tenant: &TenantId,
        sku: Option<&Sku>,
        location: Option<&Location>,
        days: Option<usize>,
    ) -> Result<Vec<SeriesForecast>, StoreError>;

    /// The stored forecasts of the listed series (SKU × location), each with its first `days`
    /// points (all of them when `None`), ordered by SKU and location; series without a forecast
    /// are left out. One call for many series: pages read their rows' forecasts through it.
    async fn forecasts_of(
        &self,
        tenant: &TenantId,
        series: &[(Sku, Location)],
        days: Option<usize>,
    ) -> Result<Vec<SeriesForecast>, StoreError>;

    /// When the oldest of the tenant's stored forecasts was made; `None` when it has none.
    async fn oldest_forecast(&self, tenant: &TenantId)
    -> Result<Option<DateTime<Utc>>, StoreError>;

    /// Net units per day over all the tenant's series (or one location's) in `days`, ascending;
    /// days without sales are left out.
    async fn daily_units(
        &self,
        tenant: &TenantId,
        location: Option<&Location>,
        days: DayRange,
    ) -> Result<Vec<(NaiveDate, f64)>, StoreError>;

    /// Sets stock levels, each replacing the stored level of its SKU and location unless that one
    /// is newer (`updated_at`): an older level never replaces a newer one, whatever the order in
    /// which concurrent writers arrive (the comparison and the write are one conditional write).
    /// Of repeats of one SKU and location in `levels`, the newest wins. Returns how many levels
    /// were stored.
    async fn put_stock(
        &self,
        tenant: &TenantId,
        levels: Vec<StockLevel>,
    ) -> Result<u64, StoreError>;

    /// Stock levels, optionally of one SKU, ordered by SKU and location.
    async fn stock(
        &self,
        tenant: &TenantId,
        sku: Option<&Sku>,
    ) -> Result<Vec<StockLevel>, StoreError>;

    /// The stock levels of the listed series (SKU × location), ordered by SKU and location;
    /// series without one are left out.
    async fn stock_of(
        &self,
        tenant: &TenantId,
        series: &[(Sku, Location)],
    ) -> Result<Vec<StockLevel>, StoreError>;

    /// Installs the app on a shop: the first install creates the shop's tenant (with id
    /// `new_tenant`), a reinstall reactivates the same tenant with the new credentials. Atomic.
    async fn install_shop(
        &self,
        install: &NewInstall,
        new_tenant: &TenantId,
    ) -> Result<ShopInstall, StoreError>;

    /// The shop's install, if the app was ever installed there.
    async fn shop_install(&self, shop: &ShopDomain) -> Result<Option<ShopInstall>, StoreError>;

    /// The install owning a tenant, if the tenant is a Shopify shop.
    async fn shop_of_tenant(&self, tenant: &TenantId) -> Result<Option<ShopInstall>, StoreError>;

    /// Replaces an installed shop's credentials (`None` deletes them) if the stored access token is
    /// still `previous_access_token`.
    ///
    /// # Errors
    /// `Conflict` when another writer replaced them first or the shop is not installed.
    async fn replace_credentials(
        &self,
        shop: &ShopDomain,
        previous_access_token: &[u8],
        credentials: Option<SealedCredentials>,
    ) -> Result<(), StoreError>;

    /// Marks the shop uninstalled and deletes its credentials, unless the uninstall was triggered
    /// before the current install (a late delivery after a reinstall). Data is kept.
    async fn uninstall_shop(
        &self,
        shop: &ShopDomain,
        triggered_at: DateTime<Utc>,
    ) -> Result<UninstallOutcome, StoreError>;

    /// Records the scopes currently granted; `false` when the shop is unknown.
    async fn set_shop_scopes(
        &self,
        shop: &ShopDomain,
        scopes: &[String],
    ) -> Result<bool, StoreError>;

    /// Erases every record of an uninstalled shop and its tenant (`shop/redact`); an installed
    /// shop is left alone.
    async fn erase_shop(&self, shop: &ShopDomain) -> Result<EraseOutcome, StoreError>;

    /// Appends to the compliance audit log; `false` when this delivery was already recorded.
    async fn record_compliance(&self, entry: &ComplianceEntry) -> Result<bool, StoreError>;

    /// The shop's compliance log, oldest first.
    async fn compliance_log(&self, shop: &ShopDomain) -> Result<Vec<ComplianceEntry>, StoreError>;

    /// Keeps a customer data request until an operator exports it (idempotent by request id).
    async fn put_data_request(&self, request: &DataRequest) -> Result<(), StoreError>;

    /// The shop's data requests, oldest first.
    async fn data_requests(&self, shop: &ShopDomain) -> Result<Vec<DataRequest>, StoreError>;

    /// Erases what is held about one customer of a shop; returns how many records went.
    async fn redact_customer(
        &self,
        shop: &ShopDomain,
        customer_id: &str,
    ) -> Result<u64, StoreError>;

    /// Stores a verified webhook delivery (durably, before it is answered 200). A webhook id seen
    /// before is counted as a redelivery; a new webhook id for a stored event (same shop, topic and
    /// event id) is kept as a duplicate, not published.
    async fn put_delivery(&self, delivery: &NewDelivery) -> Result<DeliveryReceipt, StoreError>;

    /// Deliveries waiting to be published (claimed or not), oldest first; their bodies only
    /// `with_bodies`.
    async fn pending_deliveries(
        &self,
        limit: u32,
        with_bodies: bool,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Claims up to `limit` pending deliveries for `lease.owner` until `lease.until`, oldest first,
    /// and returns them; their bodies only `with_bodies` (a bus whose events refer to the log does
    /// not need them). A delivery another owner's claim holds past `now` is left out (the owner's
    /// own claims are renewed), and of several claimers at once at most one gets any delivery, so
    /// that outboxes in several processes never publish one delivery twice while their claims
    /// hold. Recording a status (a replay included) clears a delivery's claim.
    async fn claim_deliveries(
        &self,
        lease: &DeliveryLease,
        now: DateTime<Utc>,
        limit: u32,
        with_bodies: bool,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// Records outcomes of deliveries claimed by `owner`, as [`Store::record_deliveries`] does, and
    /// releases their claims; each only while its delivery is still pending and claimed by `owner`.
    /// An outcome for a delivery whose status was recorded, or which another owner claimed, since
    /// is dropped: a final status is never overwritten from here. Returns how many were recorded.
    async fn record_claimed_deliveries(
        &self,
        owner: &str,
        outcomes: Vec<DeliveryOutcome>,
    ) -> Result<u64, StoreError>;

    /// Records outcomes of stored deliveries in one write: each appends a step to the delivery's
    /// history and, when it carries a status, sets it (and clears any claim). Returns how many
    /// named a stored delivery. For consumers and operators (a replay sets `Pending` again); the
    /// outbox records through [`Store::record_claimed_deliveries`].
    async fn record_deliveries(&self, outcomes: Vec<DeliveryOutcome>) -> Result<u64, StoreError>;

    /// Records one outcome (see [`Store::record_deliveries`]); `Ok(false)` for an unknown id.
    async fn record_delivery(
        &self,
        webhook_id: &str,
        status: Option<DeliveryStatus>,
        outcome: &str,
        detail: Option<&str>,
        failed_attempt: bool,
    ) -> Result<bool, StoreError> {
        let outcome = DeliveryOutcome::new(webhook_id, status, outcome, detail, failed_attempt);
        Ok(self.record_deliveries(vec![outcome]).await? == 1)
    }

    /// Stored deliveries matching `filter`, without bodies, headers or history.
    async fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError>;

    /// One stored delivery with its headers, body and history.
    async fn delivery(&self, webhook_id: &str) -> Result<Option<DeliveryRecord>, StoreError>;

    /// The raw body of one stored delivery: what a consumer of an event that refers to the log
    /// reads.
    async fn delivery_body(&self, webhook_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .delivery(webhook_id)
            .await?
            .map(|delivery| delivery.body))
    }

    /// Replaces a stored delivery's body (compliance redaction); `Ok(false)` for an unknown id.
    async fn replace_delivery_body(
        &self,
        webhook_id: &str,
        body: &[u8],
    ) -> Result<bool, StoreError>;

    /// Removes up to `limit` deliveries in a final status (published, duplicate, dead) received
    /// before `before`, with their bodies and history, oldest first; returns how many went. A
    /// pending delivery is never removed. Callers repeat while a full `limit` went. On DynamoDB
    /// this is a no-op returning 0: the store's
    /// [`DeliveryRetention`](crate::domain::DeliveryRetention) sets a TTL on final deliveries,
    /// and DynamoDB deletes them (up to ~48 hours late; reads skip expired ones meanwhile).
    async fn purge_deliveries(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError>;

    /// Applies one version of a Shopify order to daily sales unless a version at least as new was
    /// applied (or a newer one is being applied) before. Lines of the previous version missing from
    /// this one drop to zero. A call that fails leaves the version not applied, even when some of
    /// its lines were written: applying it again, or a newer version, counts every line once.
    async fn apply_order(
        &self,
        tenant: &TenantId,
        order: &OrderVersion,
    ) -> Result<OrderApplied, StoreError>;

    /// Applies many order versions at once, each as [`Store::apply_order`] would (newer
    /// `updated_at` wins; a repeated order in the batch counts once, its newest version). For
    /// backfills: the adapter may write them in one transaction.
    async fn apply_orders(
        &self,
        tenant: &TenantId,
        orders: Vec<OrderVersion>,
    ) -> Result<OrdersApplied, StoreError>;

    /// The tenant's order-sync status, if it ever synced.
    async fn sync_status(&self, tenant: &TenantId) -> Result<Option<SyncStatus>, StoreError>;

    /// Replaces the tenant's order-sync status.
    async fn put_sync_status(
        &self,
        tenant: &TenantId,
        status: &SyncStatus,
    ) -> Result<(), StoreError>;

    /// Records that Shopify said bulk operation `operation_id` finished (`bulk_operations/finish`),
    /// for a syncer in another process to see; see [`Store::bulk_finished`].
    async fn signal_bulk_finished(
        &self,
        tenant: &TenantId,
        operation_id: &str,
    ) -> Result<(), StoreError>;

    /// Whether `bulk_operations/finish` arrived for `operation_id`.
    async fn bulk_finished(
        &self,
        tenant: &TenantId,
        operation_id: &str,
    ) -> Result<bool, StoreError>;

    /// Replaces a product's variants in the tenant's catalogue (none: the product is gone).
    async fn put_product(
        &self,
        tenant: &TenantId,
        product_id: &str,
        variants: Vec<CatalogueVariant>,
    ) -> Result<(), StoreError>;

    /// The SKU whose stock an inventory item holds, if the catalogue knows it.
    async fn sku_of_inventory_item(
        &self,
        tenant: &TenantId,
        inventory_item_id: &str,
    ) -> Result<Option<Sku>, StoreError>;

    /// Net units and revenue per day over all the tenant's series in `days`, ascending; days
    /// without sales are left out.
    async fn daily_totals(
        &self,
        tenant: &TenantId,
        days: DayRange,
    ) -> Result<Vec<DayTotal>, StoreError>;

    /// Replaces the tenant's overview (written with its forecasts).
    async fn put_overview(
        &self,
        tenant: &TenantId,
        overview: &TenantOverview,
    ) -> Result<(), StoreError>;

    /// The tenant's overview, once forecasts were computed.
    async fn overview(&self, tenant: &TenantId) -> Result<Option<TenantOverview>, StoreError>;

    /// Replaces the products-table figures of the series in `stats` (written with their forecasts).
    async fn put_series_stats(
        &self,
        tenant: &TenantId,
        stats: Vec<SeriesStats>,
    ) -> Result<(), StoreError>;

    /// One page of the tenant's SKU × locations with their figures and stock, searched and sorted;
    /// series whose forecast is not computed yet show zeros. Reorder hints are left for the caller.
    async fn products(
        &self,
        tenant: &TenantId,
        query: &ProductQuery,
    ) -> Result<ProductPage, StoreError>;

    /// The tenant's UI settings (defaults until changed).
    async fn settings(&self, tenant: &TenantId) -> Result<TenantSettings, StoreError>;

    /// Replaces the tenant's settings, its time zone included; `settings` must be valid.
    async fn put_settings(
        &self,
        tenant: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError>;

    /// Starts a browser session, stored by the hash of its cookie secret.
    async fn create_session(
        &self,
        tenant: &TenantId,
        secret_hash: [u8; 32],
        csrf_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The session a cookie secret opens, if it exists and has not expired at `now`.
    async fn session(
        &self,
        secret_hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<BrowserSession>, StoreError>;

    /// Ends a session (signing out); unknown secrets are ignored.
    async fn delete_session(&self, secret_hash: [u8; 32]) -> Result<(), StoreError>;

    /// Stores a one-time sign-in link by the hash of its secret.
    async fn create_sign_in_link(
        &self,
        tenant: &TenantId,
        secret_hash: [u8; 32],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Uses up a sign-in link: its tenant when it existed and had not expired at `now`; a second
    /// use finds nothing.
    async fn consume_sign_in_link(
        &self,
        secret_hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<TenantId>, StoreError>;
}
