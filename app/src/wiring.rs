//! Server wiring: picks the adapters, builds the router, serves until SIGTERM/SIGINT, then drains.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use ordernimbus_backend::domain::{DeliveryRetention, TenantId};
use ordernimbus_backend::forecast::Refresher;
use ordernimbus_backend::http::{self, AppState};
use ordernimbus_backend::metrics::Metrics;
use ordernimbus_backend::store::dynamodb::DynamoStore;
use ordernimbus_backend::store::sqlite::SqliteStore;
use ordernimbus_backend::store::{Store, StoreError, UploadStatus};

use ordernimbus_backend::bus::EventBus;
use ordernimbus_backend::shopify::Secret;
use ordernimbus_backend::shopify::admin_api::ReqwestShopify;
use ordernimbus_backend::shopify::cipher::TokenCipher;
use ordernimbus_backend::shopify::client::ShopifyClient;
use ordernimbus_backend::shopify::install::{Lifecycle, ShopifyConfig};
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::shopify::sync::{BulkSignals, SyncOptions, SyncRequest, Syncer};
use ordernimbus_webhooks::bus::local::LocalBus;
use ordernimbus_webhooks::consumer::{ConsumeError, Consumer};
use ordernimbus_webhooks::eventbridge::EventBridgeBus;
use ordernimbus_webhooks::outbox::Outbox;
use ordernimbus_webhooks::receiver::{self, ReceiverState};
use ordernimbus_webhooks::sqs::{HandlerError, SqsQueue, Worker};
use tokio::sync::{Notify, Semaphore};

use crate::config::{BusKind, Cli, ServeArgs, ShopifyArgs, StoreKind, WorkerArgs};
use crate::demo;

/// How often `serve` purges the delivery log of deliveries past their retention.
const DELIVERY_PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Deliveries removed per transaction by a purge, so that webhook receipts wait little.
const DELIVERY_PURGE_BATCH: u32 = 1_000;

/// Quiet time after new sales before forecasts are recomputed, so a burst of uploads costs one refit.
const FORECAST_DEBOUNCE: std::time::Duration = std::time::Duration::from_secs(2);

/// The store the commands use, chosen by `--store`; closed with [`OpenStore::close`].
pub struct OpenStore {
    store: Arc<dyn Store>,
    /// The SQLite adapter, which commits what its writer holds on close.
    sqlite: Option<Arc<SqliteStore>>,
}

impl OpenStore {
    /// The store, shareable.
    pub fn shared(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Finishes pending writes (SQLite) and lets go of the store.
    pub async fn close(&self) {
        if let Some(sqlite) = &self.sqlite {
            sqlite.close().await;
        }
    }
}

impl AsRef<dyn Store> for OpenStore {
    fn as_ref(&self) -> &(dyn Store + 'static) {
        self.store.as_ref()
    }
}

impl std::ops::Deref for OpenStore {
    type Target = dyn Store;

    fn deref(&self) -> &Self::Target {
        self.store.as_ref()
    }
}

/// Opens the chosen store: the SQLite database in the data directory, or the DynamoDB table
/// (checked to answer, so that a missing table or endpoint is reported before any work). Final
/// deliveries it records are kept forever (see [`open_store_retaining`]).
pub async fn open_store(cli: &Cli) -> anyhow::Result<OpenStore> {
    open_store_retaining(cli, DeliveryRetention::FOREVER).await
}

/// Opens the chosen store as [`open_store`] does; on DynamoDB, deliveries it records as final
/// expire after `retention` (SQLite's are purged by [`purge_deliveries`]).
pub async fn open_store_retaining(
    cli: &Cli,
    retention: DeliveryRetention,
) -> anyhow::Result<OpenStore> {
    open_store_as(cli, retention, |path: &Path| SqliteStore::open(path)).await
}

/// Opens the chosen store as [`open_store`] does, for a command that runs one bulk job and
/// exits: SQLite's WAL is left for the next process to copy into the database (see
/// [`SqliteStore::open_for_batch`]).
pub async fn open_store_for_batch(cli: &Cli) -> anyhow::Result<OpenStore> {
    open_store_as(cli, DeliveryRetention::FOREVER, |path: &Path| {
        SqliteStore::open_for_batch(path)
    })
    .await
}

async fn open_store_as(
    cli: &Cli,
    retention: DeliveryRetention,
    open_sqlite: fn(&Path) -> Result<SqliteStore, StoreError>,
) -> anyhow::Result<OpenStore> {
    match cli.store {
        StoreKind::Sqlite => {
            let path = cli.database_path();
            let store = Arc::new(
                open_sqlite(&path)
                    .with_context(|| format!("opening the database {}", path.display()))?,
            );
            Ok(OpenStore {
                store: store.clone(),
                sqlite: Some(store),
            })
        }
        StoreKind::Dynamodb => {
            let store = DynamoStore::from_env(cli.dynamodb_table.clone())
                .await
                .with_delivery_retention(retention);
            store
                .ping()
                .await
                .with_context(|| format!("reaching the DynamoDB table {}", cli.dynamodb_table))?;
            Ok(OpenStore {
                store: Arc::new(store),
                sqlite: None,
            })
        }
    }
}

/// `ordernimbus migrate`: brings the chosen store's schema up to date.
pub async fn migrate(cli: &Cli) -> anyhow::Result<ExitCode> {
    match cli.store {
        StoreKind::Sqlite => {
            let store = open_store(cli).await?;
            store.close().await;
            println!(
                "SQLite database {} is up to date",
                cli.database_path().display()
            );
        }
        StoreKind::Dynamodb => {
            let store = DynamoStore::from_env(cli.dynamodb_table.clone()).await;
            let created = store
                .create_table()
                .await
                .with_context(|| format!("creating the DynamoDB table {}", store.table()))?;
            if created {
                println!("DynamoDB table {} created", store.table());
            } else {
                println!("DynamoDB table {} exists already", store.table());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
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
    let retention = DeliveryRetention::days(args.delivery_retention_days);
    let store = open_store_retaining(cli, retention).await?;
    if let Some(sqlite) = &store.sqlite {
        // Receipts are made durable in the journal and answered without waiting for the writer.
        sqlite
            .start_receipt_journal()
            .await
            .context("starting the receipt journal")?;
    }
    let local = listener.local_addr().context("reading the bound address")?;
    let dyn_store: Arc<dyn Store> = store.shared();
    let refresher = Refresher::with_min_interval(
        Arc::clone(&dyn_store),
        std::time::Duration::from_secs(args.refit_interval_seconds),
    );
    if args.demo {
        demo::load(Arc::clone(&dyn_store), &refresher, local).await?;
    }
    // Sales may have arrived while no server ran (CLI imports): refresh those tenants at start.
    for tenant in stale_tenants(dyn_store.as_ref()).await? {
        refresher.mark_stale(&tenant);
    }
    let shopify_parts = shopify_lifecycle(cli, &args.shopify, Arc::clone(&dyn_store))?;
    let shopify = shopify_parts
        .as_ref()
        .map(|(lifecycle, _)| Arc::clone(lifecycle));
    let refresh_loop = tokio::spawn(Arc::clone(&refresher).run(FORECAST_DEBOUNCE));
    let purge_loop = tokio::spawn(purge_loop(
        Arc::clone(&dyn_store),
        retention,
        DELIVERY_PURGE_INTERVAL,
    ));
    // Order syncs: the first after each install, then reconciliation on a schedule.
    let signals = Arc::new(BulkSignals::default());
    let syncer = shopify_parts.map(|(lifecycle, client)| {
        let options = SyncOptions {
            poll_interval: std::time::Duration::from_secs(args.sync_poll_seconds),
            ..SyncOptions::default()
        };
        let syncer = Arc::new(Syncer::new(
            Arc::clone(&dyn_store),
            client,
            Arc::clone(&lifecycle),
            cli.sync_spool_path(),
            Arc::clone(&signals),
            options,
        ));
        if args.sync_on_install {
            lifecycle.set_install_hook(install_hook(&syncer, &refresher));
        }
        syncer
    });
    let sync_loop = syncer.clone().map(|syncer| {
        tokio::spawn(reconcile_loop(
            syncer,
            Arc::clone(&dyn_store),
            Arc::clone(&refresher),
            std::time::Duration::from_secs(args.sync_interval_seconds),
        ))
    });
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
                let consumer = Arc::new(
                    Consumer::new(
                        Arc::clone(&dyn_store),
                        shopify.clone(),
                        Some(Arc::clone(&refresher)),
                    )
                    .with_bulk_signals(Arc::clone(&signals)),
                );
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
    let metrics = Arc::new(Metrics::default());
    if let Some(sqlite) = &store.sqlite {
        let sqlite = Arc::clone(sqlite);
        metrics.add_source(move |out| sqlite.write_journal_metrics(out));
    }
    let state = AppState {
        store: Arc::clone(&dyn_store),
        metrics,
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
    tracing::info!(addr = %local, data_dir = %cli.data_dir.display(), store = ?cli.store, "serving");
    // A client that keeps its connection open (a stalled upload, an unread response) must not
    // hold the shutdown up: after the grace period the server stops waiting for it.
    let (shutting_down, mut shutdown_asked) = tokio::sync::watch::channel(false);
    let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = shutting_down.send(true);
    });
    let grace = std::time::Duration::from_secs(args.shutdown_grace_seconds);
    tokio::select! {
        served = async { serving.await } => served.context("serving HTTP")?,
        // (The sender goes only with `serving`, which then wins the race anyway.)
        () = async {
            let _ = shutdown_asked.wait_for(|asked| *asked).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!(
            grace_seconds = args.shutdown_grace_seconds,
            "requests still open after the shutdown grace period; closing them"
        ),
    }
    // In-flight requests have finished (every 200 was stored first); stop publishing and
    // consuming, then commit whatever the writer still holds. Deliveries not yet published stay
    // pending and are published at the next start; a refresh cut short loses nothing either.
    let _ = stop_pipeline.send(true);
    // Each loop ends at its next await point; one stuck in a call that never returns must not
    // hold the process up (what it had not recorded stays pending, and is done again at the next
    // start), so each gets the grace period, then is cut off.
    finish_or_abort("outbox", outbox_loop, grace).await;
    if let Some(consumer_loop) = consumer_loop {
        finish_or_abort("consumer", consumer_loop, grace).await;
    }
    refresh_loop.abort();
    purge_loop.abort();
    if let Some(sync_loop) = sync_loop {
        sync_loop.abort();
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Waits up to `grace` for a background loop that was told to stop, then aborts it.
async fn finish_or_abort(
    name: &str,
    mut task: tokio::task::JoinHandle<()>,
    grace: std::time::Duration,
) {
    if tokio::time::timeout(grace, &mut task).await.is_err() {
        tracing::warn!(
            loop_name = name,
            grace_seconds = grace.as_secs(),
            "a background loop did not stop within the grace period; cutting it off"
        );
        task.abort();
    }
}

/// `ordernimbus worker`: consumes the SQS queue an EventBridge rule feeds, applying each delivery
/// with the same consumers `serve` runs on the local bus, until SIGTERM/SIGINT.
pub async fn worker(cli: &Cli, args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let retention = DeliveryRetention::days(args.delivery_retention_days);
    let store = open_store_retaining(cli, retention).await?;
    let dyn_store: Arc<dyn Store> = store.shared();
    let shopify = shopify_lifecycle(cli, &args.shopify, Arc::clone(&dyn_store))?
        .map(|(lifecycle, _)| lifecycle);
    // Orders the worker applies make their tenant's forecasts stale: it refits them itself, after
    // the same debounce as `serve`, so the cloud path keeps forecasts as fresh as the local one.
    let refresher = Refresher::with_min_interval(
        Arc::clone(&dyn_store),
        std::time::Duration::from_secs(args.refit_interval_seconds),
    );
    let refresh_loop = tokio::spawn(Arc::clone(&refresher).run(FORECAST_DEBOUNCE));
    let consumer = Arc::new(Consumer::new(
        Arc::clone(&dyn_store),
        shopify,
        Some(refresher),
    ));
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
    refresh_loop.abort();
    store.close().await;
    let stats = stats.context("consuming the queue")?;
    tracing::info!(?stats, "worker stopped");
    Ok(ExitCode::SUCCESS)
}

/// The install lifecycle and the Admin API client of the configured Shopify app.
pub type ShopifyParts = (Arc<Lifecycle>, Arc<dyn ShopifyClient>);

/// The Shopify lifecycle and client when `SHOPIFY_API_KEY` is set (with its secret and app URL).
pub fn shopify_lifecycle(
    cli: &Cli,
    args: &ShopifyArgs,
    store: Arc<dyn Store>,
) -> anyhow::Result<Option<ShopifyParts>> {
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
    let client: Arc<dyn ShopifyClient> = Arc::new(client);
    let lifecycle = Arc::new(Lifecycle::new(config, store, Arc::clone(&client), cipher));
    Ok(Some((lifecycle, client)))
}

/// After an install, the shop's first order sync runs in the background.
fn install_hook(
    syncer: &Arc<Syncer>,
    refresher: &Arc<Refresher>,
) -> ordernimbus_backend::shopify::install::InstallHook {
    // Weak: the lifecycle holds the hook, and the syncer holds the lifecycle.
    let syncer = Arc::downgrade(syncer);
    let refresher = Arc::clone(refresher);
    let runtime = tokio::runtime::Handle::current();
    Arc::new(move |shop: &ShopDomain| {
        let Some(syncer) = syncer.upgrade() else {
            return;
        };
        let refresher = Arc::clone(&refresher);
        let request = SyncRequest {
            shop: shop.clone(),
            since: None,
            full: false,
        };
        runtime.spawn(async move {
            match syncer.sync(&request, &|_| {}).await {
                Ok(status) if status.orders > 0 => {
                    if let Ok(Some(install)) = syncer_store_install(&syncer, &request.shop).await {
                        refresher.mark_stale(&install);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(shop = %request.shop, %error, "first order sync failed");
                }
            }
        });
    })
}

async fn syncer_store_install(
    syncer: &Syncer,
    shop: &ShopDomain,
) -> Result<Option<TenantId>, ordernimbus_backend::store::StoreError> {
    Ok(syncer
        .store()
        .shop_install(shop)
        .await?
        .map(|install| install.tenant))
}

/// Removes the deliveries `retention` no longer keeps at `now` (final, received before the
/// cutoff), in batches of [`DELIVERY_PURGE_BATCH`], each its own transaction; returns how many
/// went. Nothing goes when deliveries are kept forever, and nothing on DynamoDB, where a TTL
/// removes them.
///
/// # Errors
/// The store's, after the batches removed before it.
pub async fn purge_deliveries(
    store: &dyn Store,
    retention: DeliveryRetention,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, StoreError> {
    let Some(before) = retention.cutoff(now) else {
        return Ok(0);
    };
    let mut removed = 0;
    loop {
        let batch = store.purge_deliveries(before, DELIVERY_PURGE_BATCH).await?;
        removed += batch;
        if batch < u64::from(DELIVERY_PURGE_BATCH) {
            return Ok(removed);
        }
    }
}

/// Purges the delivery log at start and every `interval`.
async fn purge_loop(
    store: Arc<dyn Store>,
    retention: DeliveryRetention,
    interval: std::time::Duration,
) {
    if retention.duration().is_none() {
        return;
    }
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match purge_deliveries(store.as_ref(), retention, chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "old deliveries purged from the delivery log"),
            Err(error) => tracing::warn!(%error, "purging the delivery log failed"),
        }
    }
}

/// Reconciles the orders of every synced shop every `interval` (never when zero).
async fn reconcile_loop(
    syncer: Arc<Syncer>,
    store: Arc<dyn Store>,
    refresher: Arc<Refresher>,
    interval: std::time::Duration,
) {
    if interval.is_zero() {
        return;
    }
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: a restart after an outage reconciles at once.
    loop {
        ticks.tick().await;
        let shops = match synced_shops(store.as_ref()).await {
            Ok(shops) => shops,
            Err(error) => {
                tracing::warn!(%error, "listing synced shops failed");
                continue;
            }
        };
        for (shop, tenant) in shops {
            let request = SyncRequest {
                shop: shop.clone(),
                since: None,
                full: false,
            };
            match syncer.sync(&request, &|_| {}).await {
                Ok(status) if status.orders > 0 => refresher.mark_stale(&tenant),
                Ok(_) => {}
                Err(error) => tracing::warn!(shop = %shop, %error, "scheduled order sync failed"),
            }
        }
    }
}

/// Installed shops that completed a sync before (so reconciliation has a watermark).
async fn synced_shops(
    store: &dyn Store,
) -> Result<Vec<(ShopDomain, TenantId)>, ordernimbus_backend::store::StoreError> {
    let mut shops = Vec::new();
    for tenant in store.tenants().await? {
        let Some(install) = store.shop_of_tenant(&tenant.id).await? else {
            continue;
        };
        if install.state != ordernimbus_backend::domain::InstallState::Installed {
            continue;
        }
        let synced = store
            .sync_status(&tenant.id)
            .await?
            .is_some_and(|status| status.watermark.is_some());
        if synced {
            shops.push((install.shop, tenant.id));
        }
    }
    Ok(shops)
}

/// The key sealing access tokens: `ORDERNIMBUS_ENCRYPTION_KEY`, else the data directory's own key
/// file, created (readable by the owner only) on first start.
fn token_cipher(cli: &Cli, args: &ShopifyArgs) -> anyhow::Result<TokenCipher> {
    if let Some(key) = args.encryption_key.as_deref() {
        return TokenCipher::from_base64(key).context("reading ORDERNIMBUS_ENCRYPTION_KEY");
    }
    let path = cli.encryption_key_path();
    let text = read_or_create_key(&path, TokenCipher::generate_key_base64)
        .with_context(|| format!("reading the encryption key {}", path.display()))?;
    TokenCipher::from_base64(text.trim())
        .with_context(|| format!("reading the encryption key {}", path.display()))
}

/// The key text in `path`; when there is none, `generate()`'s, written first (readable by the
/// owner only). Processes starting together on one data directory (`serve` and workers) agree on
/// one key: each writes a whole private temporary file, and a hard link, which fails when `path`
/// exists, publishes one of them; the others read it. A reader never sees a half-written key.
fn read_or_create_key(
    path: &std::path::Path,
    generate: impl FnOnce() -> String,
) -> std::io::Result<String> {
    use std::io::Write;
    match std::fs::read_to_string(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        read => return read,
    }
    let key = generate();
    let temporary = path.with_extension(format!(
        "tmp-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(key.as_bytes())?;
        file.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&temporary, path));
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {
            tracing::info!(path = %path.display(), "generated a token encryption key");
            Ok(key)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::read_to_string(path)
        }
        Err(error) => Err(error),
    }
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

/// Tenants with sales newer than their forecasts: an upload or an order sync (`ordernimbus sync`)
/// that changed (or may have changed) sales ended after the oldest stored forecast was made, or
/// sales exist and no forecast does. The others keep their forecasts across restarts instead of
/// all being refitted at once.
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
        let synced = store
            .sync_status(&tenant.id)
            .await?
            .filter(|status| status.orders > 0)
            .and_then(|status| status.finished_at.or(status.updated_at));
        let Some(changed) = changed.max(synced) else {
            continue;
        };
        let generated = store.oldest_forecast(&tenant.id).await?;
        if generated.is_none_or(|generated| generated < changed) {
            stale.push(tenant.id);
        }
    }
    Ok(stale)
}

#[cfg(test)]
mod tests {
    use super::{
        DELIVERY_PURGE_BATCH, finish_or_abort, purge_deliveries, read_or_create_key, stale_tenants,
    };
    use ordernimbus_backend::domain::{
        DeliveryFilter, DeliveryOutcome, DeliveryRetention, DeliveryStatus, NewDelivery, NewTenant,
        SyncStatus, TenantId,
    };
    use ordernimbus_backend::shopify::shop::ShopDomain;
    use ordernimbus_backend::store::Store;
    use ordernimbus_backend::store::sqlite::SqliteStore;

    fn delivery(webhook_id: &str, days_ago: i64) -> NewDelivery {
        NewDelivery {
            webhook_id: webhook_id.to_owned(),
            shop: ShopDomain::parse("purged.myshopify.com").unwrap(),
            topic: "orders/create".into(),
            api_version: "2026-01".into(),
            event_id: None,
            triggered_at: None,
            received_at: chrono::Utc::now() - chrono::Duration::days(days_ago),
            headers: Vec::new(),
            body: b"{}".to_vec(),
        }
    }

    #[tokio::test]
    async fn a_stopping_loop_is_awaited_and_one_that_hangs_is_cut_off_after_the_grace() {
        let grace = std::time::Duration::from_millis(50);
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let stopping = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            let _ = done.send(());
        });
        finish_or_abort("stopping", stopping, grace).await;
        assert!(finished.await.is_ok(), "the loop ran to its end");

        let (_keep, hanging_on) = tokio::sync::oneshot::channel::<()>();
        let (dropped, gone) = tokio::sync::oneshot::channel::<()>();
        let hanging = tokio::spawn(async move {
            let _dropped_with_the_task = dropped;
            let _ = hanging_on.await;
        });
        let started = std::time::Instant::now();
        finish_or_abort("hanging", hanging, grace).await;
        assert!(started.elapsed() >= grace);
        // Aborted: the task is dropped, and with it its end of the channel.
        let gone = tokio::time::timeout(std::time::Duration::from_secs(5), gone).await;
        assert!(
            matches!(gone, Ok(Err(_))),
            "the hanging loop was not aborted"
        );
    }

    #[tokio::test]
    async fn a_purge_removes_final_deliveries_past_the_retention_in_batches_and_keeps_pending_ones()
    {
        let directory = tempfile::tempdir().unwrap();
        let store =
            std::sync::Arc::new(SqliteStore::open(directory.path().join("store.sqlite3")).unwrap());
        let n_old = u64::from(DELIVERY_PURGE_BATCH) + 3;
        let mut new = vec![delivery("old-pending", 200), delivery("recent", 10)];
        new.extend((0..n_old).map(|index| delivery(&format!("old-{index}"), 100)));
        let stores = new.iter().map(|delivery| {
            let store = std::sync::Arc::clone(&store);
            let delivery = delivery.clone();
            tokio::spawn(async move { store.put_delivery(&delivery).await.unwrap() })
        });
        for stored in stores.collect::<Vec<_>>() {
            stored.await.unwrap();
        }
        let published = new
            .iter()
            .filter(|delivery| delivery.webhook_id != "old-pending")
            .map(|delivery| {
                DeliveryOutcome::new(
                    &delivery.webhook_id,
                    Some(DeliveryStatus::Published),
                    "published",
                    None,
                    false,
                )
            })
            .collect();
        store.record_deliveries(published).await.unwrap();
        let now = chrono::Utc::now();
        let forever = purge_deliveries(store.as_ref(), DeliveryRetention::days(0), now);
        assert_eq!(forever.await.unwrap(), 0);
        let removed = purge_deliveries(store.as_ref(), DeliveryRetention::days(90), now);
        assert_eq!(removed.await.unwrap(), n_old);
        let left = store
            .deliveries(&DeliveryFilter {
                limit: 10,
                ..DeliveryFilter::default()
            })
            .await
            .unwrap();
        let mut left: Vec<&str> = left
            .iter()
            .map(|record| record.webhook_id.as_str())
            .collect();
        left.sort_unstable();
        assert_eq!(left, ["old-pending", "recent"]);
        store.close().await;
    }

    #[tokio::test]
    async fn an_order_sync_that_applied_orders_makes_a_tenant_without_newer_forecasts_stale() {
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(directory.path().join("store.sqlite3")).unwrap();
        let tenant = TenantId::generate();
        let new = NewTenant::parse("Synced shop", "UTC").unwrap();
        store.create_tenant(&tenant, &new, [7; 32]).await.unwrap();
        assert!(stale_tenants(&store).await.unwrap().is_empty());
        let mut status = SyncStatus {
            shop: "synced.myshopify.com".into(),
            finished_at: Some(chrono::Utc::now()),
            ..SyncStatus::default()
        };
        // A sync that applied nothing changed no sales.
        store.put_sync_status(&tenant, &status).await.unwrap();
        assert!(stale_tenants(&store).await.unwrap().is_empty());
        status.orders = 12;
        store.put_sync_status(&tenant, &status).await.unwrap();
        assert_eq!(stale_tenants(&store).await.unwrap(), vec![tenant]);
    }

    #[test]
    fn processes_starting_together_agree_on_one_encryption_key() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("encryption.key");
        let keys: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|index| {
                    let path = path.clone();
                    scope.spawn(move || {
                        read_or_create_key(&path, || format!("key-{index}")).unwrap()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect()
        });
        let stored = std::fs::read_to_string(&path).unwrap();
        assert!(stored.starts_with("key-"), "{stored}");
        assert!(
            keys.iter().all(|key| *key == stored),
            "{keys:?} vs {stored}"
        );
        // Nothing temporary is left behind, and a later start reads the same key.
        assert_eq!(std::fs::read_dir(directory.path()).unwrap().count(), 1);
        assert_eq!(
            read_or_create_key(&path, || "other".into()).unwrap(),
            stored
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is readable by its owner only");
        }
    }
}
