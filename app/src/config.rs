//! The command line and configuration: every flag can also come from an `ORDERNIMBUS_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// OrderNimbus: sales forecasting for Shopify merchants and POS retailers.
#[derive(Debug, Parser)]
#[command(name = "ordernimbus", version, about, args_override_self = true)]
pub struct Cli {
    /// Directory holding the embedded database (created if missing).
    #[arg(
        long,
        global = true,
        env = "ORDERNIMBUS_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,

    /// Where state is kept: the embedded SQLite database in the data directory, or a DynamoDB table
    /// (reached through the standard AWS configuration: `AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL`).
    #[arg(long, global = true, env = "ORDERNIMBUS_STORE", value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,

    /// The DynamoDB table (with `--store dynamodb`).
    #[arg(
        long,
        global = true,
        env = "ORDERNIMBUS_DYNAMODB_TABLE",
        default_value = "ordernimbus"
    )]
    pub dynamodb_table: String,

    /// Log format: `auto` is JSON when stderr is not a terminal.
    #[arg(long, global = true, env = "ORDERNIMBUS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Which `Store` adapter the commands use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// The embedded SQLite database in the data directory.
    Sqlite,
    /// One Amazon DynamoDB table (`ORDERNIMBUS_DYNAMODB_TABLE`).
    Dynamodb,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// JSON unless the log stream (stderr) is a terminal.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server.
    Serve(ServeArgs),
    /// Manage tenants (shops and retailers).
    #[command(subcommand)]
    Tenants(TenantsCommand),
    /// Import sales CSV files (canonical, Shopify order export or Square item sales) for a tenant.
    Import(ImportArgs),
    /// Recompute a tenant's forecasts and print them.
    Forecast(ForecastArgs),
    /// Set stock levels from a CSV (sku, on_hand, optional location, lead_time_days, service_level).
    Inventory(InventoryArgs),
    /// Shopify compliance requests: export a customer's data, read the audit log.
    #[command(subcommand)]
    Compliance(ComplianceCommand),
    /// The webhook delivery log: list, inspect, replay, dead letters, signed test deliveries.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Consume deliveries from the SQS queue an EventBridge rule feeds (the cloud's consumers).
    Worker(WorkerArgs),
    /// Create or upgrade the store's schema: the SQLite database, or the DynamoDB table with its
    /// indexes and TTL (for development against an emulator; in AWS, infra/ creates the table).
    Migrate,
    /// Sync a shop's Shopify orders: backfill through a bulk operation (first sync, `--since`,
    /// `--full`), else reconcile the orders updated since the last sync; prints a JSON report.
    Sync(SyncArgs),
}

/// `ordernimbus sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// The shop (`acme.myshopify.com`).
    #[arg(long)]
    pub shop: String,
    /// Backfill the orders created on or after this date (YYYY-MM-DD, midnight UTC, or RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Backfill every order again, even after a completed sync.
    #[arg(long, conflicts_with = "since")]
    pub full: bool,
    /// Seconds between `bulkOperation(id:)` polls while no `bulk_operations/finish` arrived.
    #[arg(long, env = "ORDERNIMBUS_SYNC_POLL_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub poll_seconds: u64,
    /// The Shopify app.
    #[command(flatten)]
    pub shopify: ShopifyArgs,
}

/// Where `serve` publishes stored deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BusKind {
    /// The durable in-process bus; `serve` runs the consumers itself.
    Local,
    /// Amazon EventBridge (`ORDERNIMBUS_EVENT_BUS_NAME`); `ordernimbus worker` consumes.
    Eventbridge,
}

/// `ordernimbus worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The SQS queue an EventBridge rule targets.
    #[arg(long, env = "ORDERNIMBUS_QUEUE_URL")]
    pub queue_url: String,
    /// Least seconds between two forecast refits of one shop for orders arriving by webhook
    /// (uploads, imports and syncs refit at once). Forecasts are daily: refitting per order only
    /// rewrites them.
    #[arg(
        long,
        env = "ORDERNIMBUS_REFIT_INTERVAL_SECONDS",
        default_value_t = 3600
    )]
    pub refit_interval_seconds: u64,
    /// Days a delivery in a final status (published, duplicate, dead) stays in the delivery log
    /// after its receipt (0: forever); a pending delivery is never removed. SQLite purges hourly;
    /// on DynamoDB, final deliveries get a TTL.
    #[arg(
        long,
        env = "ORDERNIMBUS_DELIVERY_RETENTION_DAYS",
        default_value_t = 90
    )]
    pub delivery_retention_days: u32,
    /// The Shopify app (lifecycle topics need its settings).
    #[command(flatten)]
    pub shopify: ShopifyArgs,
}

/// Which stored deliveries a webhooks command looks at.
#[derive(Debug, Clone, Args)]
pub struct DeliveryFilterArgs {
    /// Only this shop (`acme.myshopify.com`).
    #[arg(long)]
    pub shop: Option<String>,
    /// Only this topic (`orders/create`).
    #[arg(long)]
    pub topic: Option<String>,
    /// Received at or after (RFC 3339, or a date: midnight UTC).
    #[arg(long)]
    pub since: Option<String>,
    /// Received before (RFC 3339, or a date).
    #[arg(long)]
    pub until: Option<String>,
    /// Only this status: pending, published, duplicate or dead.
    #[arg(long)]
    pub status: Option<String>,
    /// At most this many, newest first.
    #[arg(long, default_value_t = 100)]
    pub limit: u32,
}

/// `ordernimbus webhooks …`.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// List stored deliveries, newest first (one row per webhook id).
    List {
        /// Filters.
        #[command(flatten)]
        filter: DeliveryFilterArgs,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Show one delivery: headers, payload and outcome history.
    Show {
        /// The webhook id.
        id: String,
    },
    /// Publish stored deliveries again (consumers are idempotent: nothing is counted twice).
    Replay {
        /// Filters (`--limit` caps how many are replayed).
        #[command(flatten)]
        filter: DeliveryFilterArgs,
        /// Only these webhook ids.
        #[arg(long = "id")]
        ids: Vec<String>,
        /// Print what would be replayed, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Dead-lettered deliveries.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Send a correctly signed test delivery to any receiver.
    Send {
        /// The JSON payload.
        #[arg(long)]
        file: PathBuf,
        /// The topic.
        #[arg(long)]
        topic: String,
        /// The shop domain.
        #[arg(long)]
        shop: String,
        /// The receiver (`http://127.0.0.1:8080/webhooks`).
        #[arg(long)]
        url: String,
        /// The secret to sign with.
        #[arg(long, env = "SHOPIFY_API_SECRET", hide_env_values = true)]
        secret: String,
        /// The webhook id (a fresh one when absent).
        #[arg(long)]
        webhook_id: Option<String>,
    },
}

/// `ordernimbus webhooks dlq …`.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List dead-lettered deliveries with their reasons.
    List {
        /// Only this shop.
        #[arg(long)]
        shop: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Publish dead-lettered deliveries again (all of them, or the given ids).
    Redrive {
        /// Webhook ids; all dead letters when none is given.
        ids: Vec<String>,
    },
}

/// `ordernimbus compliance …`.
#[derive(Debug, Subcommand)]
pub enum ComplianceCommand {
    /// Print the JSON export answering a shop's `customers/data_request`s (all, or one).
    Export {
        /// The shop (`acme.myshopify.com`).
        #[arg(long)]
        shop: String,
        /// Only this data request id.
        #[arg(long)]
        request: Option<String>,
    },
    /// Print the shop's compliance audit log as JSON.
    Log {
        /// The shop (`acme.myshopify.com`).
        #[arg(long)]
        shop: String,
    },
}

/// The Shopify app's settings, named as Shopify's own app templates name them.
#[derive(Debug, Clone, Args)]
pub struct ShopifyArgs {
    /// The app's client id; Shopify installs are served only when it is set.
    #[arg(long = "shopify-api-key", env = "SHOPIFY_API_KEY")]
    pub api_key: Option<String>,
    /// The app's client secret.
    #[arg(
        long = "shopify-api-secret",
        env = "SHOPIFY_API_SECRET",
        hide_env_values = true
    )]
    pub api_secret: Option<String>,
    /// The previous client secret while a rotation is in progress (still accepted).
    #[arg(
        long = "shopify-previous-api-secret",
        env = "ORDERNIMBUS_SHOPIFY_PREVIOUS_API_SECRET",
        hide_env_values = true
    )]
    pub previous_api_secret: Option<String>,
    /// Public HTTPS URL of this app (`application_url` without `/app`).
    #[arg(long = "shopify-app-url", env = "SHOPIFY_APP_URL")]
    pub app_url: Option<String>,
    /// Scopes requested at install.
    #[arg(
        long = "shopify-scopes",
        env = "SCOPES",
        default_value = "read_orders,read_all_orders,read_products,read_inventory,read_locations"
    )]
    pub scopes: String,
    /// Where a shop's Admin lives; `{shop}` is replaced by the shop domain. Only tests and the
    /// simulator change it.
    #[arg(
        long = "shopify-admin-url",
        env = "ORDERNIMBUS_SHOPIFY_ADMIN_URL",
        default_value = "https://{shop}"
    )]
    pub admin_url_template: String,
    /// The App Bridge script embedded pages load. Only tests change it (the simulator serves a
    /// stand-in, as a test browser cannot reach Shopify's CDN).
    #[arg(
        long = "shopify-app-bridge-url",
        env = "ORDERNIMBUS_SHOPIFY_APP_BRIDGE_URL",
        default_value = "https://cdn.shopify.com/shopifycloud/app-bridge.js"
    )]
    pub app_bridge_url: String,
    /// Base64 of the 32-byte key sealing Shopify access tokens at rest; generated into the data
    /// directory on first start when not given.
    #[arg(long, env = "ORDERNIMBUS_ENCRYPTION_KEY", hide_env_values = true)]
    pub encryption_key: Option<String>,
}

/// `ordernimbus inventory`.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Tenant id (`tn_…`).
    #[arg(long, env = "ORDERNIMBUS_TENANT")]
    pub tenant: String,
    /// The stock-levels CSV file.
    pub file: PathBuf,
}

/// Output format of `ordernimbus forecast`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ForecastFormat {
    /// A JSON array, one object per SKU × location.
    Json,
    /// `sku,location,date,mean,lo80,hi80,lo95,hi95,model`.
    Csv,
}

/// `ordernimbus forecast`.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// Tenant id (`tn_…`).
    #[arg(long, env = "ORDERNIMBUS_TENANT")]
    pub tenant: String,
    /// Days ahead, 1 to 365.
    #[arg(long, default_value_t = 28, value_parser = clap::value_parser!(u16).range(1..=365))]
    pub horizon: u16,
    /// Only this SKU.
    #[arg(long)]
    pub sku: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ForecastFormat::Json)]
    pub format: ForecastFormat,
}

/// `ordernimbus serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "ORDERNIMBUS_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Load a demo tenant with bundled sample sales and print its API key.
    #[arg(long, env = "ORDERNIMBUS_DEMO")]
    pub demo: bool,
    /// Largest CSV upload accepted, in bytes.
    #[arg(long, env = "ORDERNIMBUS_MAX_UPLOAD_BYTES", default_value_t = ordernimbus_backend::http::DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: u64,
    /// Where stored deliveries are published.
    #[arg(long, env = "ORDERNIMBUS_BUS", value_enum, default_value_t = BusKind::Local)]
    pub bus: BusKind,
    /// The EventBridge bus (with `--bus eventbridge`).
    #[arg(
        long,
        env = "ORDERNIMBUS_EVENT_BUS_NAME",
        default_value = "ordernimbus"
    )]
    pub event_bus_name: String,
    /// Seconds between scheduled order reconciliations of synced shops (0: never).
    #[arg(
        long,
        env = "ORDERNIMBUS_SYNC_INTERVAL_SECONDS",
        default_value_t = 3600
    )]
    pub sync_interval_seconds: u64,
    /// Backfill a shop's order history right after it installs (`false`: leave the backfill to
    /// `ordernimbus sync`).
    #[arg(
        long,
        env = "ORDERNIMBUS_SYNC_ON_INSTALL",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub sync_on_install: bool,
    /// Least seconds between two forecast refits of one shop for orders arriving by webhook
    /// (uploads, imports and syncs refit at once). Forecasts are daily: refitting per order only
    /// rewrites them.
    #[arg(
        long,
        env = "ORDERNIMBUS_REFIT_INTERVAL_SECONDS",
        default_value_t = 3600
    )]
    pub refit_interval_seconds: u64,
    /// Days a delivery in a final status (published, duplicate, dead) stays in the delivery log
    /// after its receipt (0: forever); a pending delivery is never removed. SQLite purges hourly;
    /// on DynamoDB, final deliveries get a TTL.
    #[arg(
        long,
        env = "ORDERNIMBUS_DELIVERY_RETENTION_DAYS",
        default_value_t = 90
    )]
    pub delivery_retention_days: u32,
    /// Seconds that in-flight requests get to finish after SIGTERM/SIGINT; connections still open
    /// then are closed (a request not yet answered was not acknowledged, so nothing accepted is
    /// lost). Below the usual 30 s before a container is killed.
    #[arg(long, env = "ORDERNIMBUS_SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
    /// Seconds between `bulkOperation(id:)` polls while no `bulk_operations/finish` arrived.
    #[arg(long, env = "ORDERNIMBUS_SYNC_POLL_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub sync_poll_seconds: u64,
    /// The UI's browser bundle (`pkg/ordernimbus_ui.js` and `_bg.wasm`, built by
    /// `scripts/build-ui.sh`); without it pages are served server-rendered only.
    #[arg(long, env = "ORDERNIMBUS_SITE_DIR", default_value = "target/site")]
    pub site_dir: PathBuf,
    /// The Shopify app.
    #[command(flatten)]
    pub shopify: ShopifyArgs,
}

/// `ordernimbus tenants …`.
#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create a tenant and print its id and an API key (shown once).
    Create {
        /// Display name.
        #[arg(long)]
        name: String,
        /// IANA time zone for local dates.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Print `{"tenant_id": …, "api_key": …}`.
        #[arg(long)]
        json: bool,
    },
    /// List tenants.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time link that signs a browser in to the tenant's UI (valid 15 minutes).
    SignInLink {
        /// Tenant id (`tn_…`).
        #[arg(long, env = "ORDERNIMBUS_TENANT")]
        tenant: String,
        /// Where the server is reached.
        #[arg(
            long,
            env = "ORDERNIMBUS_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        base_url: String,
    },
}

/// `ordernimbus import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Tenant id (`tn_…`).
    #[arg(long, env = "ORDERNIMBUS_TENANT")]
    pub tenant: String,
    /// How to read all-numeric dates: auto, mdy or dmy.
    #[arg(long, default_value = "auto")]
    pub date_order: String,
    /// CSV files to import, in order.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

impl Cli {
    /// The generated token-encryption key inside the data directory.
    pub fn encryption_key_path(&self) -> PathBuf {
        self.data_dir.join("encryption.key")
    }

    /// Where order syncs spool bulk results (inside the data directory).
    pub fn sync_spool_path(&self) -> PathBuf {
        self.data_dir.join("sync")
    }

    /// The database file inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("ordernimbus.sqlite3")
    }
}
