//! The storage port: `Store`, the durable home of everything a tenant owns, and `StoreError`. The
//! embedded adapter is [`sqlite::SqliteStore`]; the DynamoDB adapter follows in issue #7.

pub mod sqlite;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{
    DayRange, Location, NewTenant, SalesDay, SalesLine, SalesQuery, SeriesForecast, SeriesHistory,
    Sku, SkuSummary, StockLevel, Tenant, TenantId,
};

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

/// Durable home of everything a tenant owns; adapters are `SqliteStore` and (issue #7) `DynamoStore`.
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
    async fn write_sales(
        &self,
        tenant: &TenantId,
        upload: &UploadId,
        lines: Vec<SalesLine>,
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

    /// Sets stock levels (replacing the rows of the same SKU and location).
    async fn put_stock(&self, tenant: &TenantId, levels: Vec<StockLevel>)
    -> Result<(), StoreError>;

    /// Stock levels, optionally of one SKU, ordered by SKU and location.
    async fn stock(
        &self,
        tenant: &TenantId,
        sku: Option<&Sku>,
    ) -> Result<Vec<StockLevel>, StoreError>;
}
