//! Operator commands that work on the data directory directly (safe next to a running server).

pub mod webhooks;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use ordernimbus_backend::csv::DateOrder;
use ordernimbus_backend::domain::{ApiKey, BrowserSecret, NewTenant, Sku, Tenant, TenantId};
use ordernimbus_backend::forecast;
use ordernimbus_backend::import::{self, ImportError, ImportRequest};
use ordernimbus_backend::store::{ImportReport, Store};
use serde_json::json;

use ordernimbus_backend::shopify::compliance;
use ordernimbus_backend::shopify::shop::ShopDomain;

use crate::config::{
    Cli, ComplianceCommand, ForecastArgs, ForecastFormat, ImportArgs, InventoryArgs, SyncArgs,
    TenantsCommand,
};
use crate::wiring::{open_store, open_store_for_batch, shopify_lifecycle};

/// `ordernimbus tenants …`.
pub async fn tenants(cli: &Cli, command: &TenantsCommand) -> anyhow::Result<ExitCode> {
    let store = open_store(cli).await?;
    let result = match command {
        TenantsCommand::Create {
            name,
            timezone,
            json,
        } => create_tenant(store.as_ref(), name, timezone, *json).await,
        TenantsCommand::List { json } => list_tenants(store.as_ref(), *json).await,
        TenantsCommand::SignInLink { tenant, base_url } => {
            let tenant = TenantId::parse(tenant).context("invalid tenant id")?;
            store.tenant(&tenant).await.context("finding the tenant")?;
            let link = sign_in_link(store.as_ref(), &tenant, base_url).await?;
            println!("{link}");
            eprintln!("Open it within 15 minutes; it works once.");
            Ok(())
        }
    };
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

/// Stores a fresh one-time sign-in link for `tenant` and returns its URL under `base_url`.
pub async fn sign_in_link(
    store: &dyn Store,
    tenant: &TenantId,
    base_url: &str,
) -> anyhow::Result<String> {
    let secret = BrowserSecret::generate();
    store
        .create_sign_in_link(
            tenant,
            secret.hash(),
            chrono::Utc::now() + ordernimbus_backend::http::SIGN_IN_LINK_LIFETIME,
        )
        .await
        .context("storing the sign-in link")?;
    Ok(format!(
        "{}/app/sign-in?link={}",
        base_url.trim_end_matches('/'),
        secret.expose()
    ))
}

async fn create_tenant(
    store: &dyn Store,
    name: &str,
    timezone: &str,
    json: bool,
) -> anyhow::Result<()> {
    let new = NewTenant::parse(name, timezone).context("invalid tenant")?;
    let key = ApiKey::generate();
    let tenant = store
        .create_tenant(&TenantId::generate(), &new, key.hash())
        .await
        .context("storing the tenant")?;
    if json {
        println!(
            "{}",
            json!({ "tenant_id": tenant.id.as_str(), "api_key": key.expose() })
        );
    } else {
        println!("tenant_id: {}", tenant.id);
        println!("api_key:   {}", key.expose());
        eprintln!("The API key is shown only this once; store it now.");
    }
    Ok(())
}

async fn list_tenants(store: &dyn Store, json: bool) -> anyhow::Result<()> {
    let tenants = store.tenants().await?;
    for tenant in tenants {
        if json {
            println!(
                "{}",
                json!({
                    "tenant_id": tenant.id.as_str(),
                    "name": tenant.name,
                    "timezone": tenant.timezone.name(),
                    "created_at": tenant.created_at,
                })
            );
        } else {
            println!("{}\t{}\t{}", tenant.id, tenant.timezone.name(), tenant.name);
        }
    }
    Ok(())
}

/// `ordernimbus import --tenant ID FILE...`: prints one JSON report per file on stdout and each row
/// error as `file:line: column "name": message` on stderr. Exits 1 if any file was refused or broke.
pub async fn import(cli: &Cli, args: &ImportArgs) -> anyhow::Result<ExitCode> {
    let tenant_id = TenantId::parse(&args.tenant).context("--tenant")?;
    let date_order = DateOrder::parse(&args.date_order)
        .map_err(anyhow::Error::msg)
        .context("--date-order")?;
    small_pages();
    let store = open_store_for_batch(cli).await?;
    let dyn_store: Arc<dyn Store> = store.shared();
    let result = import_files(dyn_store, &tenant_id, date_order, &args.files).await;
    store.close().await;
    result
}

/// Turns transparent huge pages off for this process (Linux), for a command that lives as long as
/// one bulk job. The allocator asks for huge pages on its memory, which suits the long-running
/// server; but each first touch of a huge page makes the kernel find and clear 2 MB (compacting
/// memory first when none is free), and an import's memory is nearly all first touches: a 1M-row
/// import spent a third of its CPU time there (0.2-0.6 s of system time) and peaked ~35 MB higher.
fn small_pages() {
    #[cfg(target_os = "linux")]
    if let Err(error) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(%error, "could not turn transparent huge pages off");
    }
}

async fn import_files(
    store: Arc<dyn Store>,
    tenant_id: &TenantId,
    date_order: DateOrder,
    files: &[std::path::PathBuf],
) -> anyhow::Result<ExitCode> {
    let tenant = store
        .tenant(tenant_id)
        .await
        .with_context(|| format!("looking up tenant {tenant_id}"))?;
    let mut code = ExitCode::SUCCESS;
    for path in files {
        match import_file(Arc::clone(&store), &tenant, date_order, path).await {
            Ok(report) => print_report(path, &report),
            Err(FileError::Refused(report, reason)) => {
                eprintln!("{}: refused: {reason}", path.display());
                println!("{}", serde_json::to_string(&report)?);
                code = ExitCode::FAILURE;
            }
            Err(FileError::Other(error)) => {
                eprintln!("{}: {error:#}", path.display());
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

enum FileError {
    Refused(Box<ImportReport>, String),
    Other(anyhow::Error),
}

async fn import_file(
    store: Arc<dyn Store>,
    tenant: &Tenant,
    date_order: DateOrder,
    path: &Path,
) -> Result<ImportReport, FileError> {
    let file = std::fs::File::open(path)
        .with_context(|| "opening the file".to_owned())
        .map_err(FileError::Other)?;
    let size = file.metadata().map(|metadata| metadata.len()).unwrap_or(0);
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(size);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(path.display().to_string());
        bar
    } else {
        ProgressBar::hidden()
    };
    let input = bar.wrap_read(file);
    let request = ImportRequest {
        filename: path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned()),
        date_order,
    };
    let result = import::import_sales(store, tenant, input, request).await;
    bar.finish_and_clear();
    match result {
        Ok(report) => Ok(report),
        Err(ImportError::Refused { report, reason, .. }) => Err(FileError::Refused(report, reason)),
        Err(ImportError::Interrupted { report, reason }) => {
            print_report(path, &report);
            Err(FileError::Other(anyhow::anyhow!(
                "reading stopped after {} rows: {reason}",
                report.rows_read
            )))
        }
        Err(ImportError::Store(error)) => Err(FileError::Other(error.into())),
    }
}

fn print_report(path: &Path, report: &ImportReport) {
    for error in &report.errors {
        match &error.column {
            Some(column) => eprintln!(
                "{}:{}: column \"{column}\": {}",
                path.display(),
                error.line,
                error.message
            ),
            None => eprintln!("{}:{}: {}", path.display(), error.line, error.message),
        }
    }
    let unlisted = report
        .rows_rejected
        .saturating_sub(report.errors.len() as u64);
    if unlisted > 0 {
        eprintln!("{}: … and {unlisted} more rejected rows", path.display());
    }
    match serde_json::to_string(report) {
        Ok(text) => println!("{text}"),
        Err(error) => eprintln!("{}: cannot print the report: {error}", path.display()),
    }
}

/// `ordernimbus inventory --tenant ID FILE`: stores the file's valid stock levels, prints the JSON
/// report on stdout and each bad row as `file:line: column "name": message` on stderr. Exits 1 if
/// the file was refused or none of its rows was valid.
pub async fn inventory(cli: &Cli, args: &InventoryArgs) -> anyhow::Result<ExitCode> {
    let tenant_id = TenantId::parse(&args.tenant).context("--tenant")?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("opening {}", args.file.display()))?;
    let store = open_store(cli).await?;
    let result = async {
        store
            .tenant(&tenant_id)
            .await
            .with_context(|| format!("looking up tenant {tenant_id}"))?;
        ordernimbus_backend::stock::import_stock(store.as_ref(), &tenant_id, file)
            .await
            .with_context(|| format!("{}: refused", args.file.display()))
    }
    .await;
    store.close().await;
    let report = result?;
    for error in &report.errors {
        let column = error
            .column
            .as_ref()
            .map(|column| format!(" column \"{column}\":"))
            .unwrap_or_default();
        eprintln!(
            "{}:{}:{column} {}",
            args.file.display(),
            error.line,
            error.message
        );
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(if report.rows_imported > 0 || report.rows_rejected == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `ordernimbus forecast`: recomputes the tenant's forecasts (a progress bar on a terminal), then
/// prints them as JSON or CSV.
pub async fn forecast(cli: &Cli, args: &ForecastArgs) -> anyhow::Result<ExitCode> {
    let tenant_id = TenantId::parse(&args.tenant).context("--tenant")?;
    let sku = args
        .sku
        .as_deref()
        .map(Sku::parse)
        .transpose()
        .context("--sku")?;
    let store = open_store(cli).await?;
    let dyn_store: Arc<dyn Store> = store.shared();
    let result = print_forecasts(dyn_store, &tenant_id, sku.as_ref(), args).await;
    store.close().await;
    result
}

async fn print_forecasts(
    store: Arc<dyn Store>,
    tenant_id: &TenantId,
    sku: Option<&Sku>,
    args: &ForecastArgs,
) -> anyhow::Result<ExitCode> {
    store
        .tenant(tenant_id)
        .await
        .with_context(|| format!("looking up tenant {tenant_id}"))?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("forecasting [{bar:40}] {pos}/{len} series eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let progress_bar = bar.clone();
    let progress = Arc::new(move |done: usize, total: usize| {
        progress_bar.set_length(total as u64);
        progress_bar.set_position(done as u64);
    });
    forecast::refresh_tenant(Arc::clone(&store), tenant_id, progress)
        .await
        .context("forecasting")?;
    bar.finish_and_clear();
    let mut forecasts = store
        .forecasts(tenant_id, sku, None, Some(usize::from(args.horizon)))
        .await?;
    if let Some(sku) = sku
        && forecasts.is_empty()
    {
        anyhow::bail!("SKU {} has no sales for this tenant", sku.as_str());
    }
    for forecast in &mut forecasts {
        forecast.points.truncate(usize::from(args.horizon));
    }
    match args.format {
        ForecastFormat::Json => println!("{}", serde_json::to_string(&forecasts)?),
        ForecastFormat::Csv => {
            let mut out = String::from("sku,location,date,mean,lo80,hi80,lo95,hi95,model\n");
            for forecast in &forecasts {
                for point in &forecast.points {
                    out.push_str(&format!(
                        "{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3},{}\n",
                        csv_cell(forecast.sku.as_str()),
                        csv_cell(forecast.location.as_str()),
                        point.date,
                        point.mean,
                        point.lo80,
                        point.hi80,
                        point.lo95,
                        point.hi95,
                        csv_cell(&forecast.model)
                    ));
                }
            }
            print!("{out}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Quotes a CSV cell when it holds a comma, quote or line break.
fn csv_cell(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// `ordernimbus compliance …`: prints JSON for an operator to hand over or inspect.
pub async fn compliance(cli: &Cli, command: &ComplianceCommand) -> anyhow::Result<ExitCode> {
    let (ComplianceCommand::Export { shop, .. } | ComplianceCommand::Log { shop }) = command;
    let shop = ShopDomain::parse(shop).context("--shop")?;
    let store = open_store(cli).await?;
    let result = match command {
        ComplianceCommand::Export { request, .. } => {
            compliance::data_request_export(store.as_ref(), &shop, request.as_deref())
                .await
                .context("exporting the data requests")
        }
        ComplianceCommand::Log { .. } => store
            .compliance_log(&shop)
            .await
            .context("reading the compliance log")
            .and_then(|entries| Ok(serde_json::to_value(entries)?)),
    };
    store.close().await;
    println!("{}", serde_json::to_string_pretty(&result?)?);
    Ok(ExitCode::SUCCESS)
}

/// `ordernimbus sync --shop SHOP [--since DATE] [--full]`: syncs the shop's orders (a progress bar
/// on a terminal) and prints the final status as JSON. Exits 1 when the sync failed.
pub async fn sync(cli: &Cli, args: &SyncArgs) -> anyhow::Result<ExitCode> {
    use ordernimbus_backend::domain::SyncStatus;
    use ordernimbus_backend::shopify::sync::{
        BulkSignals, SyncError, SyncOptions, SyncRequest, Syncer,
    };

    let shop = ShopDomain::parse(&args.shop).context("--shop")?;
    let since = webhooks::parse_time("since", args.since.as_deref())?;
    let store = open_store(cli).await?;
    let dyn_store: Arc<dyn Store> = store.shared();
    let result = async {
        let (lifecycle, client) = shopify_lifecycle(cli, &args.shopify, Arc::clone(&dyn_store))?
            .context("syncing needs the Shopify app: set SHOPIFY_API_KEY, SHOPIFY_API_SECRET and SHOPIFY_APP_URL")?;
        let options = SyncOptions {
            poll_interval: std::time::Duration::from_secs(args.poll_seconds),
            ..SyncOptions::default()
        };
        let syncer = Syncer::new(
            Arc::clone(&dyn_store),
            client,
            lifecycle,
            cli.sync_spool_path(),
            Arc::new(BulkSignals::default()),
            options,
        );
        let bar = if std::io::stderr().is_terminal() {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::hidden()
        };
        let progress_bar = bar.clone();
        let progress = move |status: &SyncStatus| show_sync_progress(&progress_bar, status);
        let request = SyncRequest {
            shop: shop.clone(),
            since,
            full: args.full,
        };
        let outcome = syncer.sync(&request, &progress).await;
        bar.finish_and_clear();
        match outcome {
            Ok(status) => Ok((status, ExitCode::SUCCESS)),
            Err(SyncError::NotInstalled(shop)) => {
                anyhow::bail!("the app is not installed on {shop}: install it from Shopify Admin first")
            }
            Err(SyncError::AlreadyRunning(message)) => anyhow::bail!(message),
            Err(SyncError::Store(error)) => Err(anyhow::Error::from(error).context("the store failed")),
            Err(error) => {
                eprintln!("{shop}: {error}");
                let tenant = dyn_store
                    .shop_install(&shop)
                    .await?
                    .map(|install| install.tenant)
                    .context("the shop's install vanished")?;
                let status = dyn_store
                    .sync_status(&tenant)
                    .await?
                    .context("the sync recorded no status")?;
                Ok((status, ExitCode::FAILURE))
            }
        }
    }
    .await;
    store.close().await;
    let (status, code) = result?;
    println!("{}", serde_json::to_string(&status.public_view())?);
    Ok(code)
}

fn show_sync_progress(bar: &ProgressBar, status: &ordernimbus_backend::domain::SyncStatus) {
    use ordernimbus_backend::domain::SyncPhase;
    match status.phase {
        SyncPhase::Downloading => {
            if let Some(total) = status.bytes_total {
                if bar.length() != Some(total) {
                    bar.set_style(
                        ProgressStyle::with_template(
                            "downloading [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    bar.set_length(total);
                }
                bar.set_position(status.bytes_committed);
            } else {
                bar.set_message(format!("downloading: {} bytes", status.bytes_committed));
            }
        }
        SyncPhase::Applying
            if u64::from(status.buckets_sorted) < status.spool_lengths.len() as u64 =>
        {
            let buckets = status.spool_lengths.len() as u64;
            if bar.length() != Some(buckets) {
                bar.set_style(
                    ProgressStyle::with_template("sorting [{bar:40}] {pos}/{len} buckets")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_length(buckets);
            }
            bar.set_position(u64::from(status.buckets_sorted));
        }
        SyncPhase::Applying => {
            bar.set_style(
                ProgressStyle::with_template("{spinner} applying: {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(format!("{} orders, {} lines", status.orders, status.lines));
            bar.tick();
        }
        phase => {
            bar.set_message(format!(
                "{phase:?}: {} orders, {} lines",
                status.orders, status.lines
            ));
            bar.tick();
        }
    }
}
