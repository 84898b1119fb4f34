//! The command line and configuration: every flag can also come from an `ORDERNIMBUS_*` variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// OrderNimbus: sales forecasting for Shopify merchants and POS retailers.
#[derive(Debug, Parser)]
#[command(name = "ordernimbus", version, about)]
pub struct Cli {
    /// Directory holding the embedded database (created if missing).
    #[arg(
        long,
        global = true,
        env = "ORDERNIMBUS_DATA_DIR",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,

    /// Log format: `auto` is JSON when stderr is not a terminal.
    #[arg(long, global = true, env = "ORDERNIMBUS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
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
    /// The database file inside the data directory.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("ordernimbus.sqlite3")
    }
}
