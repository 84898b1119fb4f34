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

use ordernimbus_backend::bus::EventBus;
use ordernimbus_backend::shopify::Secret;
use ordernimbus_backend::shopify::admin_api::ReqwestShopify;
use ordernimbus_backend::shopify::cipher::TokenCipher;
use ordernimbus_backend::shopify::install::{Lifecycle, ShopifyConfig};
use ordernimbus_webhooks::bus::local::LocalBus;
use ordernimbus_webhooks::consumer::{ConsumeError, Consumer};
use ordernimbus_webhooks::eventbridge::EventBridgeBus;
use ordernimbus_webhooks::outbox::Outbox;
use ordernimbus_webhooks::receiver::{self, ReceiverState};
use ordernimbus_webhooks::sqs::{HandlerError, SqsQueue, Worker};
use tokio::sync::{Notify, Semaphore};

use crate::config::{BusKind, Cli, ServeArgs, ShopifyArgs, WorkerArgs};
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
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("listening on {}", args.addr))?;
    serve_on(cli, args, listener, shutdown_signal()).await
}

/// Serves on a bound listener until `shutdown` completes, then drains in-flight requests and
/// closes the store.
pub async fn serve_on(
    cli: &Cli,
    args: &ServeArgs,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    let store = open_store(cli)?;
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
    let shopify = shopify_lifecycle(cli, &args.shopify, Arc::clone(&dyn_store))?;
    let refresh_loop = tokio::spawn(Arc::clone(&refresher).run(FORECAST_DEBOUNCE));
    // The webhook pipeline: receiver → delivery log → outbox → bus → consumers. On the local bus
    // the consumers run here; on EventBridge, `ordernimbus worker` runs them.
    let stored = Arc::new(Notify::new());
    let (stop_pipeline, pipeline_stopped) = tokio::sync::watch::channel(false);
    let stopped = |mut receiver: tokio::sync::watch::Receiver<bool>| async move {
        let _ = receiver.wait_for(|stop| *stop).await;
    };
    let inline_payloads = args.bus == BusKind::Eventbridge;
    let (bus, consumer_loop): (Arc<dyn EventBus>, Option<tokio::task::JoinHandle<()>>) =
        match args.bus {
            BusKind::Local => {
                let bus_dir = cli.data_dir.join("bus");
                let bus = Arc::new(LocalBus::open(&bus_dir).with_context(|| {
                    format!("opening the local event bus {}", bus_dir.display())
                })?);
                let consumer = Arc::new(Consumer::new(
                    Arc::clone(&dyn_store),
                    shopify.clone(),
                    Some(Arc::clone(&refresher)),
                ));
                let consumer_loop = tokio::spawn(
                    consumer.run_local(Arc::clone(&bus), stopped(pipeline_stopped.clone())),
                );
                (bus, Some(consumer_loop))
            }
            BusKind::Eventbridge => {
                let bus = EventBridgeBus::from_env(args.event_bus_name.clone()).await;
                tracing::info!(bus = %args.event_bus_name, "publishing deliveries to EventBridge");
                (Arc::new(bus), None)
            }
        };
    let outbox = Arc::new(Outbox::new(
        Arc::clone(&dyn_store),
        bus,
        Arc::clone(&stored),
        inline_payloads,
    ));
    let outbox_loop = tokio::spawn(outbox.run(stopped(pipeline_stopped)));
    let state = AppState {
        store: Arc::clone(&dyn_store),
        metrics: Arc::new(Metrics::default()),
        max_upload_bytes: args.max_upload_bytes,
        refresher,
        shopify: shopify.clone(),
    };
    let mut router = http::router(state.clone()).merge(crate::ui::router(state, &args.site_dir));
    if let Some(lifecycle) = &shopify {
        let secrets = lifecycle.config().signing_secrets().cloned().collect();
        router = router.merge(receiver::router(ReceiverState {
            store: dyn_store,
            secrets: Arc::new(secrets),
            stored,
            in_flight: Arc::new(Semaphore::new(receiver::DEFAULT_MAX_IN_FLIGHT)),
            max_body_bytes: receiver::DEFAULT_MAX_BODY_BYTES,
        }));
    }
    tracing::info!(addr = %local, data_dir = %cli.data_dir.display(), "serving");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving HTTP")?;
    // In-flight requests have finished (every 200 was stored first); stop publishing and
    // consuming, then commit whatever the writer still holds. Deliveries not yet published stay
    // pending and are published at the next start; a refresh cut short loses nothing either.
    let _ = stop_pipeline.send(true);
    let _ = outbox_loop.await;
    if let Some(consumer_loop) = consumer_loop {
        let _ = consumer_loop.await;
    }
    refresh_loop.abort();
    store.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// `ordernimbus worker`: consumes the SQS queue an EventBridge rule feeds, applying each delivery
/// with the same consumers `serve` runs on the local bus, until SIGTERM/SIGINT.
pub async fn worker(cli: &Cli, args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let store = open_store(cli)?;
    let dyn_store: Arc<dyn Store> = store.clone();
    let shopify = shopify_lifecycle(cli, &args.shopify, Arc::clone(&dyn_store))?;
    let consumer = Arc::new(Consumer::new(Arc::clone(&dyn_store), shopify, None));
    let queue = SqsQueue::from_env(args.queue_url.clone()).await;
    let worker = Worker::new(queue, move |event| {
        let consumer = Arc::clone(&consumer);
        Box::pin(async move {
            match consumer.handle_once_and_record(&event).await {
                Ok(()) => Ok(()),
                Err(ConsumeError::Retryable(message)) => Err(HandlerError::retryable(message)),
                Err(ConsumeError::Permanent(message)) => Err(HandlerError::permanent(message)),
            }
        }) as ordernimbus_webhooks::sqs::HandlerFuture
    });
    tracing::info!(queue = %args.queue_url, "worker consuming");
    let stats = worker.run(shutdown_signal()).await;
    store.close().await;
    let stats = stats.context("consuming the queue")?;
    tracing::info!(?stats, "worker stopped");
    Ok(ExitCode::SUCCESS)
}

/// The Shopify lifecycle when `SHOPIFY_API_KEY` is set (with its secret and app URL).
fn shopify_lifecycle(
    cli: &Cli,
    args: &ShopifyArgs,
    store: Arc<dyn Store>,
) -> anyhow::Result<Option<Arc<Lifecycle>>> {
    let Some(api_key) = args.api_key.as_deref().filter(|key| !key.is_empty()) else {
        return Ok(None);
    };
    let api_secret = args
        .api_secret
        .clone()
        .filter(|secret| !secret.is_empty())
        .context("SHOPIFY_API_KEY is set but SHOPIFY_API_SECRET is missing")?;
    let app_url = args
        .app_url
        .as_deref()
        .map(|url| url.trim_end_matches('/').to_owned())
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
        .context("SHOPIFY_API_KEY is set but SHOPIFY_APP_URL is missing or not an http(s) URL")?;
    anyhow::ensure!(
        args.admin_url_template.contains("{shop}"),
        "ORDERNIMBUS_SHOPIFY_ADMIN_URL must contain {{shop}}"
    );
    let config = ShopifyConfig {
        api_key: api_key.to_owned(),
        api_secret: Secret::new(api_secret.clone()),
        previous_api_secret: args
            .previous_api_secret
            .clone()
            .filter(|secret| !secret.is_empty())
            .map(Secret::new),
        app_url,
        scopes: args
            .scopes
            .split(',')
            .map(str::trim)
            .filter(|scope| !scope.is_empty())
            .map(str::to_owned)
            .collect(),
        admin_url_template: args.admin_url_template.clone(),
        app_bridge_url: args.app_bridge_url.clone(),
    };
    let client = ReqwestShopify::new(api_key, Secret::new(api_secret), &args.admin_url_template)
        .context("building the Shopify client")?;
    let cipher = token_cipher(cli, args)?;
    Ok(Some(Arc::new(Lifecycle::new(
        config,
        store,
        Arc::new(client),
        cipher,
    ))))
}

/// The key sealing access tokens: `ORDERNIMBUS_ENCRYPTION_KEY`, else the data directory's own key
/// file, created (readable by the owner only) on first start.
fn token_cipher(cli: &Cli, args: &ShopifyArgs) -> anyhow::Result<TokenCipher> {
    if let Some(key) = args.encryption_key.as_deref() {
        return TokenCipher::from_base64(key).context("reading ORDERNIMBUS_ENCRYPTION_KEY");
    }
    let path = cli.encryption_key_path();
    match std::fs::read_to_string(&path) {
        Ok(text) => TokenCipher::from_base64(text.trim())
            .with_context(|| format!("reading the encryption key {}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = TokenCipher::generate_key_base64();
            write_private(&path, &key)
                .with_context(|| format!("writing the encryption key {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a token encryption key");
            TokenCipher::from_base64(&key).context("reading the generated encryption key")
        }
        Err(error) => {
            Err(error).with_context(|| format!("reading the encryption key {}", path.display()))
        }
    }
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
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
