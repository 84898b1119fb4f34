//! Server wiring: picks the adapters, builds the router, serves until SIGTERM/SIGINT, then drains.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use ordernimbus_backend::domain::TenantId;
use ordernimbus_backend::forecast::Refresher;
use ordernimbus_backend::http::{self, AppState};
use ordernimbus_backend::metrics::Metrics;
use ordernimbus_backend::store::sqlite::SqliteStore;
use ordernimbus_backend::store::{Store, UploadStatus};

use crate::config::{Cli, ServeArgs};
use crate::demo;

/// Quiet time after new sales before forecasts are recomputed, so a burst of uploads costs one refit.
const FORECAST_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Opens the embedded store in the data directory.
pub fn open_store(cli: &Cli) -> anyhow::Result<Arc<SqliteStore>> {
    let path = cli.database_path();
    let store = SqliteStore::open(&path)
        .with_context(|| format!("opening the database {}", path.display()))?;
    Ok(Arc::new(store))
}

/// `ordernimbus serve`.
pub async fn serve(cli: &Cli, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(cli)?;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let dyn_store: Arc<dyn Store> = store.clone();
    let refresher = Refresher::new(Arc::clone(&dyn_store));
    if args.demo {
        demo::load(Arc::clone(&dyn_store), &refresher, local).await?;
    }
    // Sales may have arrived while no server ran (CLI imports): refresh those tenants at start.
    for tenant in stale_tenants(dyn_store.as_ref()).await? {
        refresher.mark_stale(&tenant);
    }
    let refresh_loop = tokio::spawn(Arc::clone(&refresher).run(FORECAST_DEBOUNCE));
    let state = AppState {
        store: dyn_store,
        metrics: Arc::new(Metrics::default()),
        max_upload_bytes: args.max_upload_bytes,
        refresher,
    };
    tracing::info!(addr = %local, data_dir = %cli.data_dir.display(), "serving");
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    // In-flight requests have finished; commit whatever the writer still holds. A refresh cut short
    // loses nothing: the next start marks every tenant stale again.
    refresh_loop.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// Uploads looked at per tenant when deciding whether its forecasts are stale.
const RECENT_UPLOADS: u32 = 50;

/// Tenants with sales newer than their forecasts: an upload that changed (or may have changed)
/// sales finished after the oldest stored forecast was made, or sales exist and no forecast does. The others keep
/// their forecasts across restarts instead of all being refitted at once.
async fn stale_tenants(store: &dyn Store) -> anyhow::Result<Vec<TenantId>> {
    let mut stale = Vec::new();
    for tenant in store.tenants().await? {
        let changed = store
            .uploads(&tenant.id, RECENT_UPLOADS)
            .await?
            .into_iter()
            // An upload cut off part way may have committed batches its report does not count.
            .filter(|upload| {
                upload.rows_imported + upload.rows_updated > 0
                    || upload.status != UploadStatus::Complete
            })
            .map(|upload| upload.finished_at.unwrap_or(upload.started_at))
            .max();
        let Some(changed) = changed else {
            continue;
        };
        let generated = store.oldest_forecast(&tenant.id).await?;
        if generated.is_none_or(|generated| generated < changed) {
            stale.push(tenant.id);
        }
    }
    Ok(stale)
}
