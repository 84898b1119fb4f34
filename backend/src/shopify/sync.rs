//! The order syncer: backfills a shop's order history through a bulk operation and heals what
//! webhooks missed with an incremental pass over orders updated since a watermark.
//!
//! Backfill: `bulkOperationRunQuery` over orders (from a start date; only the last 60 days without
//! `read_all_orders`) → wait for `bulk_operations/finish` (the webhook consumer calls
//! [`BulkSignals::finished`] in this process and [`Store::signal_bulk_finished`] for others), polling
//! `bulkOperation(id:)` as a fallback → download the JSONL result streaming into a [`Spool`] of
//! bucket files (committing every few MB, so a cut-off download resumes with `Range` from the last
//! committed line) → join each bucket's line items to their orders → [`version_of`], the same
//! rules as webhooks → [`Store::apply_orders`] (newer `updatedAt` wins: a webhook and a bulk row of
//! one order version count once). Every step is recorded in the tenant's [`SyncStatus`], so a sync
//! cut off anywhere resumes where it stood. A failed, timed-out or expired operation is started
//! again (a few times); access denied, a cancelled operation or an uninstall stop the sync.
//!
//! Reconciliation: `orders(query: "updated_at:>='watermark'", sortKey: UPDATED_AT)` page by page.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use tokio::sync::Notify;

use super::Secret;
use super::bulk::{self, RunMerge, Spool, SpoolCheckpoint};
use super::client::{
    BulkOperation, BulkStart, BulkStatus, ShopifyClient, ShopifyError, SyncedOrder,
};
use super::install::{AccessError, Lifecycle};
use super::order::version_of;
use super::shop::ShopDomain;
use crate::domain::{
    InstallState, OrderVersion, ShopInstall, SyncKind, SyncPhase, SyncState, SyncStatus, Tenant,
};
use crate::store::{Store, StoreError};

/// Without `read_all_orders`, Shopify shows only the orders of the last 60 days.
pub const RECENT_ORDERS_DAYS: i64 = 60;
/// Reconciliation starts this much before the watermark: clocks differ, and an order updated
/// while a pass ran may be listed on neither side of it.
pub const WATERMARK_OVERLAP: Duration = Duration::from_secs(5 * 60);

/// Timing and sizes of a sync; tests shorten the waits.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// How often `bulkOperation(id:)` is polled while no webhook said the operation finished.
    pub poll_interval: Duration,
    /// How often the store is checked for a `bulk_operations/finish` seen by another process.
    pub signal_check: Duration,
    /// Bulk operations started in one sync (restarts after failures and expired results).
    pub max_attempts: u32,
    /// Wait between tries while another bulk operation runs for the shop.
    pub busy_wait: Duration,
    /// Tries while another bulk operation runs.
    pub busy_tries: u32,
    /// Download attempts after a broken connection (each resumes from the last commit).
    pub download_attempts: u32,
    /// Bytes downloaded between commits of the spool.
    pub commit_bytes: u64,
    /// Order versions per `Store::apply_orders` call.
    pub batch_orders: usize,
    /// A running sync silent this long was cut off: another run may take it over.
    pub stale_after: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(10),
            signal_check: Duration::from_secs(1),
            max_attempts: 3,
            busy_wait: Duration::from_secs(30),
            busy_tries: 20,
            download_attempts: 6,
            commit_bytes: 32 << 20,
            batch_orders: 8_192,
            stale_after: Duration::from_secs(120),
        }
    }
}

/// What to sync.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// The shop.
    pub shop: ShopDomain,
    /// Backfill orders created at or after this time (default: a backfill of everything on the
    /// first sync, reconciliation from the watermark after).
    pub since: Option<DateTime<Utc>>,
    /// Backfill everything again, even after a completed sync.
    pub full: bool,
}

/// Why a sync did not run or did not finish (the status records the same as `last_error`).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The app is not installed on the shop.
    #[error("the app is not installed on {0}")]
    NotInstalled(String),
    /// Another sync of the shop is running.
    #[error("{0}")]
    AlreadyRunning(String),
    /// The app was uninstalled during the sync; it stopped.
    #[error("the app was uninstalled from {0} during the sync; it stopped")]
    Uninstalled(String),
    /// The sync failed.
    #[error("{0}")]
    Failed(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `bulk_operations/finish` as it reaches this process: wakes the sync waiting for it.
#[derive(Debug, Default)]
pub struct BulkSignals {
    waiters: Mutex<HashMap<String, Arc<Notify>>>,
}

impl BulkSignals {
    fn waiter(&self, operation_id: &str) -> Arc<Notify> {
        let mut waiters = self
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(waiters.entry(operation_id.to_owned()).or_default())
    }

    fn forget(&self, operation_id: &str) {
        let mut waiters = self
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        waiters.remove(operation_id);
    }

    /// Says that Shopify finished `operation_id` (a waiting sync wakes; one that starts waiting
    /// later sees it at once).
    pub fn finished(&self, operation_id: &str) {
        self.waiter(operation_id).notify_one();
    }
}

/// Reports each recorded step of a sync.
pub type Progress<'a> = &'a (dyn Fn(&SyncStatus) + Send + Sync);

/// Why a step stopped the sync.
enum Stop {
    Uninstalled,
    /// Shopify refused the shop's credentials (and a renewal).
    CredentialsRefused(String),
    /// The result URL expired: start the operation again.
    Expired,
    Failed(String),
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

fn io_stop(what: &str) -> impl FnOnce(std::io::Error) -> Stop + '_ {
    move |error| Stop::Failed(format!("{what}: {error}"))
}

/// The syncer of every shop of this process.
pub struct Syncer {
    store: Arc<dyn Store>,
    client: Arc<dyn ShopifyClient>,
    lifecycle: Arc<Lifecycle>,
    spool_root: PathBuf,
    signals: Arc<BulkSignals>,
    options: SyncOptions,
    running: Mutex<HashSet<ShopDomain>>,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Syncer")
            .field("spool_root", &self.spool_root)
            .finish_non_exhaustive()
    }
}

/// One sync under way.
struct Run<'a> {
    shop: ShopDomain,
    tenant: Tenant,
    status: SyncStatus,
    progress: Progress<'a>,
}

/// Removes the shop from the running set when the sync ends, however it ends.
struct RunningGuard<'a> {
    running: &'a Mutex<HashSet<ShopDomain>>,
    shop: ShopDomain,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.shop);
    }
}

impl Syncer {
    /// A syncer over the store and Shopify client, spooling results under `spool_root`.
    pub fn new(
        store: Arc<dyn Store>,
        client: Arc<dyn ShopifyClient>,
        lifecycle: Arc<Lifecycle>,
        spool_root: PathBuf,
        signals: Arc<BulkSignals>,
        options: SyncOptions,
    ) -> Self {
        Self {
            store,
            client,
            lifecycle,
            spool_root,
            signals,
            options,
            running: Mutex::new(HashSet::new()),
        }
    }

    /// The store it writes to.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The signals `bulk_operations/finish` deliveries go to.
    pub fn signals(&self) -> &Arc<BulkSignals> {
        &self.signals
    }

    /// Syncs a shop's orders: resumes a sync that was cut off, else backfills (first sync,
    /// `since`, `full`) or reconciles since the watermark. Returns the final status.
    ///
    /// # Errors
    /// `NotInstalled`, `AlreadyRunning`; the others after recording them in the status.
    pub async fn sync(
        &self,
        request: &SyncRequest,
        progress: Progress<'_>,
    ) -> Result<SyncStatus, SyncError> {
        let shop = request.shop.clone();
        let install = self
            .store
            .shop_install(&shop)
            .await?
            .filter(|install| install.state == InstallState::Installed)
            .ok_or_else(|| SyncError::NotInstalled(shop.to_string()))?;
        let tenant = self.store.tenant(&install.tenant).await?;
        {
            let mut running = self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !running.insert(shop.clone()) {
                return Err(SyncError::AlreadyRunning(format!(
                    "a sync of {shop} is already running in this process"
                )));
            }
        }
        let _guard = RunningGuard {
            running: &self.running,
            shop: shop.clone(),
        };
        let previous = self.store.sync_status(&tenant.id).await?;
        let now = Utc::now();
        if let Some(previous) = &previous
            && previous.state == SyncState::Running
            && previous.updated_at.is_some_and(|at| {
                now - at < chrono::Duration::from_std(self.options.stale_after).unwrap_or_default()
            })
        {
            return Err(SyncError::AlreadyRunning(format!(
                "another sync of {shop} recorded progress at {}; if it was interrupted, run again after {} s",
                previous
                    .updated_at
                    .map(|at| at.to_rfc3339())
                    .unwrap_or_default(),
                self.options.stale_after.as_secs()
            )));
        }
        let resumable = previous.as_ref().filter(|previous| {
            previous.state == SyncState::Running
                && previous.kind == SyncKind::Backfill
                && !request.full
                && (request.since.is_none() || request.since == previous.since)
        });
        let watermark = previous.as_ref().and_then(|previous| previous.watermark);
        let status = match resumable {
            Some(previous) => {
                tracing::info!(shop = %shop, phase = ?previous.phase, "resuming the order sync");
                previous.clone()
            }
            None => {
                let reconcile = !request.full && request.since.is_none() && watermark.is_some();
                let mut status = SyncStatus {
                    shop: shop.to_string(),
                    state: SyncState::Running,
                    kind: if reconcile {
                        SyncKind::Reconcile
                    } else {
                        SyncKind::Backfill
                    },
                    phase: if reconcile {
                        SyncPhase::Reconciling
                    } else {
                        SyncPhase::Starting
                    },
                    since: if reconcile { watermark } else { request.since },
                    watermark,
                    started_at: Some(now),
                    ..SyncStatus::default()
                };
                if !reconcile
                    && !install
                        .scopes
                        .iter()
                        .any(|scope| scope == "read_all_orders")
                {
                    let floor = now - chrono::Duration::days(RECENT_ORDERS_DAYS);
                    if status.since.is_none_or(|since| since < floor) {
                        status.since = Some(floor);
                        status.notice = Some(format!(
                            "without the read_all_orders scope Shopify shows only the last {RECENT_ORDERS_DAYS} days: syncing orders created since {}",
                            floor.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                        ));
                    }
                }
                status
            }
        };
        let mut run = Run {
            shop: shop.clone(),
            tenant,
            status,
            progress,
        };
        self.save(&mut run).await?;
        let outcome = match run.status.kind {
            SyncKind::Backfill => self.backfill(&mut run).await,
            SyncKind::Reconcile => self.reconcile(&mut run).await,
        };
        let error = match outcome {
            Ok(()) => {
                run.status.state = SyncState::Completed;
                run.status.phase = SyncPhase::Done;
                run.status.last_error = None;
                run.status.finished_at = Some(Utc::now());
                self.save(&mut run).await?;
                tracing::info!(shop = %shop, orders = run.status.orders, lines = run.status.lines, "order sync completed");
                return Ok(run.status);
            }
            Err(Stop::Uninstalled) => SyncError::Uninstalled(shop.to_string()),
            Err(Stop::Expired) => {
                SyncError::Failed("the bulk operation result expired too many times".into())
            }
            Err(Stop::Failed(message)) => SyncError::Failed(message),
            Err(Stop::CredentialsRefused(message)) => {
                run.status.credentials_refused = true;
                SyncError::Failed(message)
            }
            Err(Stop::Store(error)) => SyncError::Store(error),
        };
        run.status.state = SyncState::Failed;
        run.status.last_error = Some(error.to_string());
        run.status.finished_at = Some(Utc::now());
        // The spool of a failed sync is of no use to the next one (which starts afresh).
        if let Some(id) = &run.status.bulk_operation_id {
            let _ = tokio::fs::remove_dir_all(self.spool_dir(&shop, id)).await;
        }
        self.save(&mut run).await?;
        // An uninstall revokes the credentials before its webhook arrives; whichever of this
        // check and the webhook's comes second names the uninstall as the cause.
        let error = if run.status.credentials_refused
            && matches!(self.check_installed(&shop).await, Err(Stop::Uninstalled))
        {
            let error = SyncError::Uninstalled(shop.to_string());
            run.status.last_error = Some(error.to_string());
            self.save(&mut run).await?;
            error
        } else {
            error
        };
        tracing::warn!(shop = %shop, %error, "order sync stopped");
        Err(error)
    }

    async fn save(&self, run: &mut Run<'_>) -> Result<(), StoreError> {
        run.status.updated_at = Some(Utc::now());
        self.store
            .put_sync_status(&run.tenant.id, &run.status)
            .await?;
        (run.progress)(&run.status);
        Ok(())
    }

    /// Stops when the app was uninstalled (its token is revoked: no more Admin API calls).
    async fn check_installed(&self, shop: &ShopDomain) -> Result<(), Stop> {
        let installed = self
            .store
            .shop_install(shop)
            .await?
            .is_some_and(|install| install.state == InstallState::Installed);
        if installed {
            Ok(())
        } else {
            Err(Stop::Uninstalled)
        }
    }

    /// Calls Shopify with the shop's access token; when Shopify refuses the token, renews it
    /// and calls once more.
    async fn call<T, F, Fut>(&self, shop: &ShopDomain, call: F) -> Result<T, Stop>
    where
        F: Fn(Secret) -> Fut,
        Fut: Future<Output = Result<T, ShopifyError>>,
    {
        let token = self
            .lifecycle
            .access_token(shop)
            .await
            .map_err(access_stop)?;
        match call(token.clone()).await {
            Err(ShopifyError::InvalidToken) => {
                self.check_installed(shop).await?;
                let token = self
                    .lifecycle
                    .renew_access_token(shop, &token)
                    .await
                    .map_err(access_stop)?;
                call(token).await.map_err(shopify_stop)
            }
            other => other.map_err(shopify_stop),
        }
    }

    fn spool_dir(&self, shop: &ShopDomain, operation_id: &str) -> PathBuf {
        let name: String = operation_id
            .rsplit('/')
            .next()
            .unwrap_or(operation_id)
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        self.spool_root.join(shop.as_str()).join(name)
    }

    async fn backfill(&self, run: &mut Run<'_>) -> Result<(), Stop> {
        let shop = run.shop.clone();
        let mut busy_tries = 0;
        loop {
            self.check_installed(&shop).await?;
            if run.status.phase == SyncPhase::Starting {
                let since = run.status.since;
                let started_at = Utc::now();
                let start = self
                    .call(&shop, |token| {
                        let shop = &shop;
                        async move { self.client.start_bulk_orders(shop, &token, since).await }
                    })
                    .await?;
                match start {
                    BulkStart::Started { id } => {
                        tracing::info!(shop = %shop, operation = %id, "bulk operation started");
                        run.status.bulk_operation_id = Some(id);
                        run.status.attempts += 1;
                        run.status.phase = SyncPhase::Waiting;
                        run.status.watermark = Some(
                            started_at
                                - chrono::Duration::from_std(WATERMARK_OVERLAP).unwrap_or_default(),
                        );
                        self.save(run).await?;
                    }
                    BulkStart::Busy(message) => {
                        busy_tries += 1;
                        if busy_tries >= self.options.busy_tries {
                            return Err(Stop::Failed(format!(
                                "another bulk operation is running for {shop} ({message}); try again when it has finished"
                            )));
                        }
                        tracing::info!(shop = %shop, %message, "another bulk operation is running; waiting");
                        tokio::time::sleep(self.options.busy_wait).await;
                        continue;
                    }
                    BulkStart::Refused(message) => {
                        return Err(Stop::Failed(format!(
                            "Shopify refused the bulk query: {message}"
                        )));
                    }
                }
            }
            let Some(id) = run.status.bulk_operation_id.clone() else {
                run.status.phase = SyncPhase::Starting;
                continue;
            };
            let outcome = if run.status.phase == SyncPhase::Applying {
                self.apply_spool(run, &id).await
            } else {
                self.finish_operation(run, &id).await
            };
            match outcome {
                Ok(()) => {
                    self.signals.forget(&id);
                    let _ = tokio::fs::remove_dir_all(self.spool_dir(&shop, &id)).await;
                    return Ok(());
                }
                Err(Stop::Expired) => {
                    self.signals.forget(&id);
                    let _ = tokio::fs::remove_dir_all(self.spool_dir(&shop, &id)).await;
                    if run.status.attempts >= self.options.max_attempts {
                        return Err(Stop::Failed(format!(
                            "bulk operation {id} failed or expired, {} operations tried",
                            run.status.attempts
                        )));
                    }
                    tracing::warn!(shop = %shop, operation = %id, "bulk operation failed or its result expired; starting again");
                    run.status.bulk_operation_id = None;
                    run.status.phase = SyncPhase::Starting;
                    run.status.bytes_total = None;
                    run.status.bytes_committed = 0;
                    run.status.lines_committed = 0;
                    run.status.spool_lengths.clear();
                    run.status.buckets_sorted = 0;
                    run.status.applied_through = None;
                    self.save(run).await?;
                }
                Err(stop) => return Err(stop),
            }
        }
    }

    /// Waits for the operation to end, then downloads and applies its result.
    async fn finish_operation(&self, run: &mut Run<'_>, id: &str) -> Result<(), Stop> {
        let operation = self.wait(run, id).await?;
        match operation.status {
            BulkStatus::Completed => {}
            BulkStatus::Failed => {
                let code = operation.error_code.unwrap_or_default();
                if code == "ACCESS_DENIED" {
                    return Err(Stop::Failed(format!(
                        "bulk operation {id} was denied access: the app lacks an access scope (read_orders, and read_all_orders for orders older than {RECENT_ORDERS_DAYS} days)"
                    )));
                }
                // A partial result can hold an order without all its line items; applied, its
                // version would block the complete one (same updatedAt). Start again instead.
                tracing::warn!(
                    shop = %run.shop, operation = %id, %code,
                    partial_data = operation.partial_data_url.is_some(),
                    "bulk operation failed; its partial data is not applied"
                );
                return Err(Stop::Expired);
            }
            BulkStatus::Expired => return Err(Stop::Expired),
            BulkStatus::Canceled => {
                return Err(Stop::Failed(format!("bulk operation {id} was canceled")));
            }
            other => {
                return Err(Stop::Failed(format!(
                    "bulk operation {id} ended with status {other:?}"
                )));
            }
        }
        let Some(url) = operation.url else {
            // Completed without a file: no order matched.
            tracing::info!(shop = %run.shop, operation = %id, "bulk operation matched no orders");
            return Ok(());
        };
        if run.status.phase != SyncPhase::Downloading {
            run.status.phase = SyncPhase::Downloading;
            run.status.bytes_total = operation.file_size;
            self.save(run).await?;
        }
        self.download(run, id, &url).await?;
        run.status.phase = SyncPhase::Applying;
        self.save(run).await?;
        self.apply_spool(run, id).await
    }

    /// Waits until the operation is final: woken by `bulk_operations/finish` (this process or the
    /// store), polling `bulkOperation(id:)` meanwhile.
    async fn wait(&self, run: &mut Run<'_>, id: &str) -> Result<BulkOperation, Stop> {
        let shop = run.shop.clone();
        let notify = self.signals.waiter(id);
        let mut next_poll = Instant::now();
        let mut signalled = false;
        loop {
            self.check_installed(&shop).await?;
            if !signalled {
                signalled = self.store.bulk_finished(&run.tenant.id, id).await?;
            }
            if signalled || Instant::now() >= next_poll {
                let operation = self
                    .call(&shop, |token| {
                        let shop = &shop;
                        async move { self.client.bulk_operation(shop, &token, id).await }
                    })
                    .await?
                    .ok_or_else(|| {
                        Stop::Failed(format!("Shopify does not know bulk operation {id}"))
                    })?;
                if operation.status.is_final() {
                    return Ok(operation);
                }
                // The webhook may arrive before the status reads final: poll again soon.
                signalled = false;
                next_poll = Instant::now() + self.options.poll_interval;
            }
            tokio::select! {
                () = notify.notified() => signalled = true,
                () = tokio::time::sleep(self.options.signal_check) => {}
            }
        }
    }

    /// Downloads the result into the spool, resuming from the last committed line after a
    /// broken connection.
    async fn download(&self, run: &mut Run<'_>, id: &str, url: &str) -> Result<(), Stop> {
        let dir = self.spool_dir(&run.shop, id);
        let resume = (!run.status.spool_lengths.is_empty()).then(|| SpoolCheckpoint {
            offset: run.status.bytes_committed,
            lines: run.status.lines_committed,
            lengths: run.status.spool_lengths.clone(),
        });
        let buckets = resume.as_ref().map_or_else(
            || bulk::buckets_for(run.status.bytes_total),
            |resume| resume.lengths.len(),
        );
        let mut spool = match Spool::open(&dir, buckets, resume.as_ref()) {
            Ok(spool) => spool,
            Err(error) => {
                // Bucket files lost writes (the machine stopped): download from the start.
                tracing::warn!(shop = %run.shop, %error, "spool unusable; downloading from the start");
                let _ = std::fs::remove_dir_all(&dir);
                run.status.bytes_committed = 0;
                run.status.lines_committed = 0;
                Spool::open(&dir, buckets, None).map_err(io_stop("opening the spool"))?
            }
        };
        let mut failures = 0;
        loop {
            let from = spool.offset();
            let download = match self.client.download(url, from).await {
                Ok(download) => download,
                Err(ShopifyError::ResultExpired(_)) => return Err(Stop::Expired),
                Err(error) => {
                    failures += 1;
                    if failures >= self.options.download_attempts {
                        return Err(Stop::Failed(format!(
                            "downloading the bulk result failed {failures} times: {error}"
                        )));
                    }
                    tokio::time::sleep(Duration::from_millis(250 * (1 << failures.min(5)))).await;
                    continue;
                }
            };
            if download.offset > from {
                return Err(Stop::Failed(format!(
                    "asked for the bulk result from byte {from}, got it from byte {}",
                    download.offset
                )));
            }
            // A server that ignores `Range` sends the file from the start: skip what we have.
            let mut skip = from - download.offset;
            let total = download.total.or(run.status.bytes_total);
            let mut body = download.body;
            let mut since_commit = 0u64;
            let mut broken = None;
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        broken = Some(error.to_string());
                        break;
                    }
                };
                let mut bytes = &chunk[..];
                if skip > 0 {
                    let skipped = skip.min(bytes.len() as u64);
                    bytes = &bytes[skipped as usize..];
                    skip -= skipped;
                }
                let rejected = spool.push(bytes).map_err(io_stop("writing the spool"))?;
                run.status.rows_rejected += rejected;
                since_commit += bytes.len() as u64;
                if since_commit >= self.options.commit_bytes {
                    since_commit = 0;
                    self.commit(run, &mut spool).await?;
                }
            }
            let received = spool.offset() + spool.partial_line_bytes() as u64;
            if broken.is_none() && total.is_some_and(|total| received < total) {
                broken = Some(format!(
                    "the connection closed after {received} of {} bytes",
                    total.unwrap_or_default()
                ));
            }
            if let Some(reason) = broken {
                // Keep every whole line; the partial one comes again with the resumed range.
                spool.discard_partial_line();
                self.commit(run, &mut spool).await?;
                failures += 1;
                if failures >= self.options.download_attempts {
                    return Err(Stop::Failed(format!(
                        "downloading the bulk result broke off {failures} times: {reason}"
                    )));
                }
                tracing::warn!(shop = %run.shop, %reason, from = spool.offset(), "bulk result download broke off; resuming");
                tokio::time::sleep(Duration::from_millis(100 * (1 << failures.min(5)))).await;
                continue;
            }
            let (checkpoint, rejected) = spool.finish().map_err(io_stop("writing the spool"))?;
            run.status.rows_rejected += rejected;
            self.record_checkpoint(run, &spool, checkpoint);
            self.save(run).await?;
            return Ok(());
        }
    }

    async fn commit(&self, run: &mut Run<'_>, spool: &mut Spool) -> Result<(), Stop> {
        let checkpoint = spool.checkpoint().map_err(io_stop("writing the spool"))?;
        self.record_checkpoint(run, spool, checkpoint);
        self.save(run).await?;
        self.check_installed(&run.shop).await
    }

    fn record_checkpoint(&self, run: &mut Run<'_>, spool: &Spool, checkpoint: SpoolCheckpoint) {
        for bad in &spool.rejected {
            tracing::warn!(shop = %run.shop, line = bad.line, message = %bad.message, "bulk result line rejected");
        }
        run.status.bytes_committed = checkpoint.offset;
        run.status.lines_committed = checkpoint.lines;
        run.status.spool_lengths = checkpoint.lengths;
    }

    /// Sorts the spooled buckets into runs by order id, then applies the orders of the merged runs
    /// in ascending id (creation order), batch after batch: the next batch is merged, joined and
    /// converted on a blocking thread while the store writes the current one.
    async fn apply_spool(&self, run: &mut Run<'_>, id: &str) -> Result<(), Stop> {
        let dir = self.spool_dir(&run.shop, id);
        let lengths = run.status.spool_lengths.clone();
        let start = usize::try_from(run.status.buckets_sorted).unwrap_or(usize::MAX);
        // Two buckets at a time: one per core.
        let pending: Vec<usize> = (start..lengths.len()).collect();
        for pair in pending.chunks(2) {
            let sorting: Vec<_> = pair
                .iter()
                .map(|&index| {
                    let (dir, length) = (dir.clone(), lengths[index]);
                    tokio::task::spawn_blocking(move || bulk::sort_bucket(&dir, index, length))
                })
                .collect();
            for sorted in sorting {
                sorted
                    .await
                    .map_err(|error| Stop::Failed(format!("sorting a spool bucket: {error}")))?
                    .map_err(io_stop("sorting the spool"))?;
            }
            let done = pair.last().map_or(start, |index| index + 1);
            run.status.buckets_sorted = u32::try_from(done).unwrap_or(u32::MAX);
            self.save(run).await?;
        }
        let merge = match RunMerge::open(&dir, &lengths) {
            Ok(merge) => merge,
            Err(error) => {
                // Runs lost writes (the machine stopped): the result's download starts again.
                tracing::warn!(shop = %run.shop, %error, "spool runs unusable; fetching the result again");
                return Err(Stop::Expired);
            }
        };
        // Merging the runs, joining and converting (two threads, batches dealt alternately), and
        // writing run at once; batches are applied in order.
        let (rows, joining): (Vec<_>, Vec<_>) = (0..JOINERS)
            .map(|_| std::sync::mpsc::sync_channel(1))
            .unzip();
        let merging = {
            let after = run.status.applied_through.clone();
            let batch_orders = self.options.batch_orders;
            tokio::task::spawn_blocking(move || read_merged(merge, &rows, batch_orders, after))
        };
        let mut merged = Vec::with_capacity(JOINERS);
        for joining in joining {
            let (batches, receiver) = tokio::sync::mpsc::channel(1);
            let (shop, tenant) = (run.shop.to_string(), run.tenant.clone());
            tokio::task::spawn_blocking(move || join_merged(&joining, &batches, &shop, &tenant));
            merged.push(receiver);
        }
        for turn in (0..JOINERS).cycle() {
            let Some(batch) = merged[turn].recv().await else {
                break;
            };
            let MergedOrders {
                joined,
                converted,
                last_order,
            } = batch;
            self.check_installed(&run.shop).await?;
            for message in &joined.errors {
                tracing::warn!(shop = %run.shop, %message, "bulk result row rejected");
            }
            if joined.orphan_lines > 0 {
                tracing::warn!(
                    shop = %run.shop, lines = joined.orphan_lines,
                    orders = ?joined.orphan_orders.iter().take(5).collect::<Vec<_>>(),
                    "bulk result line items without their order"
                );
            }
            run.status.rows_rejected += joined.rejected + joined.orphan_lines;
            self.apply(run, converted).await?;
            run.status.applied_through = Some(last_order);
            self.save(run).await?;
        }
        merging
            .await
            .map_err(|error| Stop::Failed(format!("merging the spool: {error}")))?
            .map_err(io_stop("reading the spool"))
    }

    /// Completes refunded orders whose lines lack `currentQuantity` with their refund line items,
    /// then applies every version in batches.
    async fn apply(&self, run: &mut Run<'_>, converted: Converted) -> Result<(), Stop> {
        let shop = run.shop.clone();
        let Converted {
            mut versions,
            incomplete,
            mut rejected,
        } = converted;
        for mut order in incomplete {
            let order_id = order.parts.order_id.clone();
            let refunded = self
                .call(&shop, |token| {
                    let (shop, order_id) = (&shop, &order_id);
                    async move { self.client.order_refunds(shop, &token, order_id).await }
                })
                .await?;
            for line in &mut order.parts.lines {
                line.refunded = refunded.get(&line.line_id).copied().unwrap_or(0.0);
            }
            match version_of(
                &order.parts,
                shop.as_str(),
                run.tenant.timezone,
                run.tenant.identity,
            ) {
                Ok(version) => versions.push(version),
                Err(error) => rejected.push(format!("order {order_id}: {error}")),
            }
        }
        for message in &rejected {
            tracing::warn!(shop = %shop, %message, "order rejected");
        }
        run.status.rows_rejected += rejected.len() as u64;
        while !versions.is_empty() {
            let rest = versions.split_off(versions.len().min(self.options.batch_orders));
            let lines: u64 = versions
                .iter()
                .map(|version| version.lines.len() as u64)
                .sum();
            let applied = self.store.apply_orders(&run.tenant.id, versions).await?;
            run.status.orders += applied.applied;
            run.status.orders_stale += applied.stale;
            run.status.lines += lines;
            versions = rest;
        }
        Ok(())
    }

    async fn reconcile(&self, run: &mut Run<'_>) -> Result<(), Stop> {
        let shop = run.shop.clone();
        let pass_started = Utc::now();
        let overlap = chrono::Duration::from_std(WATERMARK_OVERLAP).unwrap_or_default();
        let since = run.status.since.unwrap_or(pass_started) - overlap;
        let mut cursor: Option<String> = None;
        loop {
            self.check_installed(&shop).await?;
            let after = cursor.clone();
            let page = self
                .call(&shop, |token| {
                    let (shop, after) = (&shop, after.as_deref());
                    async move {
                        self.client
                            .orders_updated_since(shop, &token, since, after)
                            .await
                    }
                })
                .await?;
            let converted = convert(page.orders, run.shop.as_str(), &run.tenant);
            self.apply(run, converted).await?;
            self.save(run).await?;
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        run.status.watermark = Some(pass_started - overlap);
        Ok(())
    }
}

/// One batch of merged orders: the join's counts and the converted versions.
struct MergedOrders {
    joined: bulk::JoinedBucket,
    converted: Converted,
    /// The id of the batch's last order.
    last_order: String,
}

/// Threads joining and converting merged batches (one per core of the machines we measure on).
const JOINERS: usize = 2;

/// Reads the merged runs in batches of `batch_orders` orders after `after` and deals them to the
/// joiners in turn; stops early when a joiner is gone (the sync stopped).
fn read_merged(
    mut merge: RunMerge,
    rows: &[std::sync::mpsc::SyncSender<bulk::MergedBatch>],
    batch_orders: usize,
    mut after: Option<String>,
) -> std::io::Result<()> {
    for joiner in rows.iter().cycle() {
        let skip = after.take();
        let Some(batch) = merge.next_batch(batch_orders, skip.as_deref().map(str::as_bytes))?
        else {
            break;
        };
        if joiner.send(batch).is_err() {
            break;
        }
    }
    Ok(())
}

/// Joins and converts each batch it is dealt and sends it on, until the batches end or the
/// receiver is gone.
fn join_merged(
    rows: &std::sync::mpsc::Receiver<bulk::MergedBatch>,
    batches: &tokio::sync::mpsc::Sender<MergedOrders>,
    shop: &str,
    tenant: &Tenant,
) {
    for batch in rows {
        let mut joined = bulk::join_merged(&batch.rows);
        drop(batch.rows);
        let converted = convert(std::mem::take(&mut joined.orders), shop, tenant);
        let merged = MergedOrders {
            joined,
            converted,
            last_order: batch.last_order,
        };
        if batches.blocking_send(merged).is_err() {
            return;
        }
    }
}

/// Orders converted to versions, apart from those that need their refund line items first.
struct Converted {
    versions: Vec<OrderVersion>,
    incomplete: Vec<SyncedOrder>,
    rejected: Vec<String>,
}

/// Converts orders by the REST path's rules; a refunded order with a line lacking
/// `currentQuantity` waits for its refund line items.
fn convert(orders: Vec<SyncedOrder>, shop: &str, tenant: &Tenant) -> Converted {
    let mut converted = Converted {
        versions: Vec::with_capacity(orders.len()),
        incomplete: Vec::new(),
        rejected: Vec::new(),
    };
    for order in orders {
        let incomplete = order.refunded
            && order
                .parts
                .lines
                .iter()
                .any(|line| line.current_quantity.is_none());
        if incomplete {
            converted.incomplete.push(order);
            continue;
        }
        match version_of(&order.parts, shop, tenant.timezone, tenant.identity) {
            Ok(version) => converted.versions.push(version),
            Err(error) => converted
                .rejected
                .push(format!("order {}: {error}", order.parts.order_id)),
        }
    }
    converted
}

/// How long before an uninstall a sync's credentials refusal is put down to it (Shopify revokes
/// the credentials at once; its clock and ours may differ a little).
const UNINSTALL_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// After `app/uninstalled`: a sync of the shop that failed because Shopify refused its
/// credentials — which the uninstall revoked before its webhook arrived — failed because of the
/// uninstall, and its status says so. Returns whether the status was rewritten.
///
/// # Errors
/// The store's.
pub async fn note_uninstall(store: &dyn Store, install: &ShopInstall) -> Result<bool, StoreError> {
    let Some(uninstalled_at) = install
        .uninstalled_at
        .filter(|_| install.state == InstallState::Uninstalled)
    else {
        return Ok(false);
    };
    let Some(mut status) = store.sync_status(&install.tenant).await? else {
        return Ok(false);
    };
    let caused = status.state == SyncState::Failed
        && status.credentials_refused
        && status
            .finished_at
            .is_some_and(|finished| finished >= uninstalled_at - UNINSTALL_SKEW);
    let message = SyncError::Uninstalled(install.shop.to_string()).to_string();
    if !caused || status.last_error.as_deref() == Some(message.as_str()) {
        return Ok(false);
    }
    status.last_error = Some(message);
    status.updated_at = Some(Utc::now());
    store.put_sync_status(&install.tenant, &status).await?;
    Ok(true)
}

fn access_stop(error: AccessError) -> Stop {
    match error {
        AccessError::NotInstalled(_) => Stop::Uninstalled,
        AccessError::Store(error) => Stop::Store(error),
        AccessError::ReauthorizeNeeded(_) => Stop::CredentialsRefused(error.to_string()),
        other => Stop::Failed(other.to_string()),
    }
}

fn shopify_stop(error: ShopifyError) -> Stop {
    match error {
        ShopifyError::InvalidToken => {
            Stop::CredentialsRefused("Shopify refused the access token, even renewed".into())
        }
        ShopifyError::ResultExpired(_) => Stop::Expired,
        other => Stop::Failed(other.to_string()),
    }
}
