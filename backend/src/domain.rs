//! Domain types of OrderNimbus: tenants, shop installs, SKUs, locations, sales lines and daily sales. Data and rules
//! only: nothing here does IO, spawns tasks or knows about HTTP or SQL.

mod delivery;
mod forecast;
mod install;
mod inventory;
mod product;
mod sales;
mod session;
mod sync;
mod tenant;

pub use delivery::{
    CatalogueVariant, DeliveryFilter, DeliveryLease, DeliveryOutcome, DeliveryReceipt,
    DeliveryRecord, DeliveryRetention, DeliveryStatus, DeliveryStep, NewDelivery, OrderApplied,
    OrderLineRef, OrderVersion,
};
pub use forecast::{
    Backtest, CandidateScore, ForecastPoint, MAX_HORIZON_DAYS, SeriesForecast, SeriesHistory,
};
pub use install::{
    ComplianceEntry, DataRequest, EraseOutcome, InstallState, NewInstall, SealedCredentials,
    ShopInstall, UninstallOutcome,
};
pub use inventory::{
    DEFAULT_LEAD_TIME_DAYS, DEFAULT_SERVICE_LEVEL, REVIEW_PERIOD_DAYS, ReorderHint, StockLevel,
};
pub use product::{
    DayTotal, OVERVIEW_HISTORY_DAYS, PRODUCT_WINDOW_DAYS, ProductPage, ProductQuery, ProductRow,
    ProductSort, SeriesStats, TenantOverview,
};
pub(crate) use sales::trim;
pub use sales::{
    BatchLine, BatchSeries, DayRange, Granularity, IdentityScheme, LineIdentity, LineSorter,
    Location, SalesBatch, SalesDay, SalesLine, SalesQuery, SeriesList, Sku, SkuSummary,
};
pub use session::{BrowserSecret, BrowserSession, TenantSettings};
pub use sync::{OrdersApplied, SyncKind, SyncPhase, SyncState, SyncStatus};
pub use tenant::{ApiKey, NewTenant, Tenant, TenantId, Timezone};

/// A value that failed validation, with a message that names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl InvalidValue {
    /// Builds the error from anything printable.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
