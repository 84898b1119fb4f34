//! `SqliteStore`: the embedded `Store` adapter. One SQLite file in WAL mode; one writer thread owns
//! the only write connection and commits queued jobs in groups (one transaction, one fsync, each job in
//! its own savepoint so one failing job does not undo the others); reads run on a small pool of
//! read-only connections on tokio's blocking threads. Other processes (the CLI next to a running
//! server) may write the same file: SQLite's locking and a busy timeout serialise them.

mod browser;
mod deliveries;
mod forecasts;
mod journal;
mod migrations;
mod pages;
mod sales;
mod shops;
mod stock;

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::{ImportReport, SalesWrite, Store, StoreError, UploadId};
use crate::domain::{
    BrowserSession, DayRange, DayTotal, IdentityScheme, ProductPage, ProductQuery, SeriesStats,
    TenantOverview, TenantSettings,
};
use crate::domain::{
    CatalogueVariant, ComplianceEntry, DataRequest, DeliveryFilter, DeliveryLease, DeliveryOutcome,
    DeliveryReceipt, DeliveryRecord, EraseOutcome, Location, NewDelivery, NewInstall, NewTenant,
    OrderApplied, OrderVersion, OrdersApplied, SalesBatch, SalesDay, SalesQuery, SealedCredentials,
    SeriesForecast, SeriesHistory, ShopInstall, Sku, SkuSummary, StockLevel, SyncStatus, Tenant,
    TenantId, Timezone, UninstallOutcome,
};
use crate::shopify::shop::ShopDomain;

/// How long a connection waits for another process's write lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// Jobs waiting for the writer; senders wait (backpressure) when it is full.
const WRITE_QUEUE: usize = 256;
/// Most jobs committed in one transaction.
const MAX_GROUP: usize = 128;
/// Read connections kept open between reads.
const MAX_IDLE_READERS: usize = 8;

type Reply = Box<dyn FnOnce(Option<String>) + Send>;
type Job = Box<dyn FnOnce(&mut Writer) -> (bool, Reply) + Send>;

/// Which writes go first: a webhook receiver answers Shopify only once its delivery is committed,
/// so those commits never wait behind background work (outbox rounds, consumers, imports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Receive,
    Background,
}

enum Command {
    /// A job: grouped with others, or alone in its own transaction.
    Run {
        job: Job,
        mode: Mode,
        lane: Lane,
    },
    Stop(oneshot::Sender<()>),
}

/// How a job shares transactions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// In a group of jobs, one commit (synced) for all.
    Grouped,
    /// Alone in its own transaction, without a savepoint (bulk writes: a savepoint would make
    /// SQLite journal every statement against all dirty pages).
    Alone(Durability),
    /// Alone and synced as above, with the WAL kept as small as for grouped writes: copies of
    /// journaled receipts, which come all the time while webhooks arrive. (A 64 MB WAL's
    /// checkpoint syncs enough of the database to hold the journal's own syncs up for tens of ms.)
    Copy,
}

/// When a commit reaches the disk.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Durability {
    /// Synced before the job is answered (`synchronous = FULL`): it survives power loss.
    Synced,
    /// Written to the WAL without a sync of its own (`synchronous = NORMAL`): it survives a crash
    /// of the process at once, and power loss from the next synced commit on, whose sync of the
    /// WAL file covers every frame before it (frames a checkpoint has moved were synced by the
    /// checkpoint). For a run of bulk writes that one synced write closes: an import's batches,
    /// then its report. A power loss in between loses the run's last commits, never half of one.
    Deferred,
}

/// The embedded store: a SQLite database file with a dedicated writer thread.
pub struct SqliteStore {
    path: PathBuf,
    commands: mpsc::Sender<Command>,
    readers: Arc<Mutex<Vec<Connection>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    /// A server's receipt journal, once started ([`SqliteStore::start_receipt_journal`]).
    journal: std::sync::OnceLock<journal::Journal>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// State owned by the writer thread.
pub(crate) struct Writer {
    pub(crate) connection: Connection,
    tenant_keys: HashMap<TenantId, i64>,
    /// Series by tenant (all of a tenant's, once it has been written to), SKU and location.
    pub(crate) series_keys: foldhash::HashMap<i64, sales::SeriesCache>,
    /// Series ids of the shared series lists of uploads being written.
    pub(crate) listed_series: sales::ListedSeries,
    /// Buffers one write of sales lines leaves for the next (an import's batches are alike).
    pub(crate) sales_scratch: sales::Scratch,
    /// The id the next created series gets: the writer creates every series.
    pub(crate) next_series_id: Option<i64>,
    /// The sync level of the connection's commits now.
    durability: Durability,
    /// `PRAGMA data_version` when the writer last looked: it changes when another connection (the
    /// CLI beside a server) commits, and then every cache above is forgotten.
    data_version: Option<i64>,
    /// Wakes the checkpointer after a commit; holds at most one wake-up.
    checkpoints: std::sync::mpsc::SyncSender<()>,
    /// WAL pages past which the writer checkpoints by itself outside bulk jobs (see [`Role`]).
    small_wal: i64,
}

impl Writer {
    /// Sets the sync level of the next commits (outside a transaction only).
    fn set_durability(&mut self, durability: Durability) -> rusqlite::Result<()> {
        if self.durability != durability {
            run_fixed(
                &self.connection,
                match durability {
                    Durability::Synced => "PRAGMA synchronous = FULL",
                    Durability::Deferred => "PRAGMA synchronous = NORMAL",
                },
            )?;
            self.durability = durability;
        }
        Ok(())
    }

    /// Forgets the caches when another connection has committed since the writer last looked.
    /// Called with the write lock held, so nobody else commits until the writer's own commit.
    fn check_data_version(&mut self) -> rusqlite::Result<()> {
        let version: i64 = self
            .connection
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |row| row.get(0))?;
        if self.data_version != Some(version) {
            self.forget_caches();
            self.data_version = Some(version);
        }
        Ok(())
    }

    fn forget_caches(&mut self) {
        self.tenant_keys.clear();
        self.series_keys.clear();
        self.next_series_id = None;
        // A rolled back transaction may have created some of these series.
        self.listed_series.clear();
    }

    pub(crate) fn tenant_key(&mut self, tenant: &TenantId) -> Result<i64, StoreError> {
        if let Some(key) = self.tenant_keys.get(tenant) {
            return Ok(*key);
        }
        let key = read_tenant_key(&self.connection, tenant)?;
        self.tenant_keys.insert(tenant.clone(), key);
        Ok(key)
    }
}

/// Looks up the internal key of a tenant by its public id.
fn read_tenant_key(connection: &Connection, tenant: &TenantId) -> Result<i64, StoreError> {
    connection
        .prepare_cached("SELECT id FROM tenants WHERE public_id = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([tenant.as_str()], |row| row.get(0))
                .optional()
        })
        .map_err(StoreError::unavailable)?
        .ok_or_else(|| not_found("tenant", tenant.as_str()))
}

fn not_found(entity: &'static str, id: &str) -> StoreError {
    StoreError::NotFound {
        entity,
        id: id.to_owned(),
    }
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    // FULL: a committed transaction survives power loss, not only a crash. Writes are batched, so
    // the extra fsync is paid once per group, not once per row. The writer lowers it for an
    // import's batches, whose run a synced commit closes (see `Durability::Deferred`).
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "temp_store", "MEMORY")?;
    // Plans never depend on bound values here (no ANALYZE statistics), so binding new values must
    // not re-prepare a cached statement; SQLite would otherwise re-parse hot statements per call.
    connection.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// What the process opening the store does with it, which decides when the WAL is copied into
/// the database file (checkpointed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A server, or a command with small writes: the writer keeps the WAL small (a checkpoint
    /// of its own past `WRITER_CHECKPOINT_PAGES`, outside bulk jobs) and closing copies all of
    /// it and truncates it.
    Server,
    /// A command that runs one bulk job and exits (`ordernimbus import`): the WAL may grow to
    /// `BULK_CHECKPOINT_PAGES` throughout, and closing leaves it as it is. What was committed is
    /// durable in the synced WAL; copying the run's tens of MB into the database, syncing that
    /// and truncating the WAL took ~40 ms at the end of a 1M-row import, work that the next
    /// process to write (the server's checkpointer, in the background) does anyway.
    Batch,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, runs pending migrations and starts the
    /// writer thread.
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_as(path.as_ref(), Role::Server)
    }

    /// Opens the store for a process that runs one bulk job and exits: as [`SqliteStore::open`],
    /// except that the WAL is left for the next process to copy into the database (see
    /// [`Role::Batch`]).
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub fn open_for_batch(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_as(path.as_ref(), Role::Batch)
    }

    fn open_as(path: &Path, role: Role) -> Result<Self, StoreError> {
        let path = path.to_path_buf();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(StoreError::unavailable)?;
        }
        let mut connection = Connection::open(&path).map_err(StoreError::unavailable)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(StoreError::unavailable)?;
        configure(&connection).map_err(StoreError::unavailable)?;
        connection
            .pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(StoreError::unavailable)?;
        migrations::run(&mut connection).map_err(StoreError::unavailable)?;
        // Multi-row statements come in a few sizes; keep them all prepared.
        connection.set_prepared_statement_cache_capacity(64);

        // Checkpoints (copying the WAL into the database) run on their own thread and connection,
        // so the writer goes on with the next transaction meanwhile. The writer still checkpoints
        // by itself past `WRITER_CHECKPOINT_PAGES`, which bounds the WAL if the other falls behind.
        let small_wal = match role {
            Role::Server => WRITER_CHECKPOINT_PAGES,
            Role::Batch => BULK_CHECKPOINT_PAGES,
        };
        connection
            .pragma_update(None, "wal_autocheckpoint", small_wal)
            .map_err(StoreError::unavailable)?;
        let checkpointer = Connection::open(&path).map_err(StoreError::unavailable)?;
        configure(&checkpointer).map_err(StoreError::unavailable)?;
        if role == Role::Batch {
            // Nor does SQLite copy it when the last connection closes.
            for connection in [&connection, &checkpointer] {
                connection
                    .set_db_config(
                        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                        true,
                    )
                    .map_err(StoreError::unavailable)?;
            }
        }
        let (checkpoints, wake) = std::sync::mpsc::sync_channel(1);
        let checkpoint_thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run_checkpointer(&checkpointer, &wake, role))
            .map_err(StoreError::unavailable)?;

        let (commands, receiver) = mpsc::channel(WRITE_QUEUE);
        let mut writer = Writer {
            connection,
            tenant_keys: HashMap::new(),
            series_keys: foldhash::HashMap::default(),
            listed_series: sales::ListedSeries::default(),
            sales_scratch: sales::Scratch::default(),
            next_series_id: None,
            durability: Durability::Synced,
            data_version: None,
            checkpoints,
            small_wal,
        };
        // Receipts a server journaled and answered before it crashed reach the log before
        // anything else is read or written.
        recover_journal(&mut writer, &path)?;
        let writer_thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                run_writer(writer, receiver);
                // The writer (and with it the checkpointer's wake-up sender) is gone: the
                // checkpointer makes its final checkpoint and ends.
                let _ = checkpoint_thread.join();
            })
            .map_err(StoreError::unavailable)?;
        Ok(Self {
            path,
            commands,
            readers: Arc::new(Mutex::new(Vec::new())),
            writer_thread: Mutex::new(Some(writer_thread)),
            journal: std::sync::OnceLock::new(),
        })
    }

    /// Makes webhook receipts durable in a journal file beside the database instead of in the
    /// delivery log itself, which the writer then fills from the journal in large groups (see
    /// the `journal` module): a receipt is answered after one append and one sync of that file,
    /// not after the writer's turn. For the process that receives webhooks (`serve`): holding the
    /// journal makes it the data directory's server, so it also releases outbox claims left by a
    /// server that stopped before publishing them (they would wait out their lease). Returns
    /// `false`, and receipts go on to the log directly, when another process holds the journal.
    ///
    /// # Errors
    /// When the journal cannot be opened, or what it holds from a crash cannot be copied.
    pub async fn start_receipt_journal(&self) -> Result<bool, StoreError> {
        if self.journal.get().is_some() {
            return Ok(true);
        }
        let path = journal::path_of(&self.path);
        let mut file = None;
        // A command beside the server may hold it for a moment (recovering it at open).
        for _ in 0..50 {
            let path = path.clone();
            file = tokio::task::spawn_blocking(move || journal::lock(&path))
                .await
                .map_err(StoreError::unavailable)?
                .map_err(StoreError::unavailable)?;
            if file.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let Some(file) = file else {
            tracing::warn!(
                "receipt journal: another process holds it; receipts are written to the log directly"
            );
            return Ok(false);
        };
        let (file, last) = self
            .write_exclusive(move |writer| {
                let last = journal::recover(writer, &file)?;
                let released = deliveries::release_claims(&writer.connection)?;
                if released > 0 {
                    tracing::info!(
                        released,
                        "receipt journal: released the outbox claims a stopped server left"
                    );
                }
                Ok((file, last))
            })
            .await?;
        journal::empty(&file).map_err(StoreError::unavailable)?;
        let reader = open_reader(&self.path)?;
        let started = journal::Journal::start(file, last, reader, self.commands.clone(), ingest)?;
        if self.journal.set(started).is_err() {
            // Started twice at once: the other one stands.
            tracing::warn!("receipt journal: started twice");
        }
        Ok(true)
    }

    /// Writes the receipt journal's progress in Prometheus' text format (nothing without one):
    /// receipts answered from it and copied into the log (sequence numbers, which go on across
    /// restarts), and how many are answered but not yet copied.
    pub fn write_journal_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let Some((answered, copied)) = self.journal.get().map(journal::Journal::progress) else {
            return;
        };
        let _ = write!(
            out,
            "# HELP ordernimbus_webhook_receipts_journaled_total Webhook receipts answered from the receipt journal (a sequence that goes on across restarts).\n\
             # TYPE ordernimbus_webhook_receipts_journaled_total counter\n\
             ordernimbus_webhook_receipts_journaled_total {answered}\n\
             # HELP ordernimbus_webhook_receipts_copied_total Journaled receipts the writer has copied into the delivery log.\n\
             # TYPE ordernimbus_webhook_receipts_copied_total counter\n\
             ordernimbus_webhook_receipts_copied_total {copied}\n\
             # HELP ordernimbus_webhook_receipts_uncopied Receipts answered but not yet in the delivery log (new ones get 503 past 262144).\n\
             # TYPE ordernimbus_webhook_receipts_uncopied gauge\n\
             ordernimbus_webhook_receipts_uncopied {}\n",
            answered.saturating_sub(copied)
        );
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Commits everything queued, then stops the writer thread. Later writes fail as unavailable.
    pub async fn close(&self) {
        // The journal's receipts reach the log before the writer stops.
        if let Some(journal) = self.journal.get() {
            journal.stop().await;
        }
        let (done, finished) = oneshot::channel();
        if self.commands.send(Command::Stop(done)).await.is_ok() {
            let _ = finished.await;
        }
        join_thread(&self.writer_thread).await;
    }

    /// Runs `job` on the writer thread inside the current group transaction.
    async fn write<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    {
        self.run_on_writer(job, Mode::Grouped, Lane::Background)
            .await
    }

    /// Runs `job` in the receive lane: committed before any waiting background write.
    async fn write_receipt<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    {
        self.run_on_writer(job, Mode::Grouped, Lane::Receive).await
    }

    /// Runs a bulk `job` alone in its own transaction.
    async fn write_exclusive<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    {
        self.run_on_writer(job, Mode::Alone(Durability::Synced), Lane::Background)
            .await
    }

    /// Runs a bulk `job` alone in its own transaction, committed without a sync of its own (see
    /// [`Durability::Deferred`]): the caller ends the run with a synced write.
    async fn write_exclusive_deferred<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    {
        self.run_on_writer(job, Mode::Alone(Durability::Deferred), Lane::Background)
            .await
    }

    async fn run_on_writer<T, F>(&self, job: F, mode: Mode, lane: Lane) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Writer) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel::<Result<T, StoreError>>();
        let job: Job = Box::new(move |writer| {
            let result = job(writer);
            let ok = result.is_ok();
            let reply: Reply = Box::new(move |commit_error| {
                let result = match commit_error {
                    Some(message) => Err(StoreError::Unavailable(message.into())),
                    None => result,
                };
                let _ = reply.send(result);
            });
            (ok, reply)
        });
        self.commands
            .send(Command::Run { job, mode, lane })
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Unavailable("the writer stopped".into()))?
    }

    /// Waits until the delivery log holds every receipt the journal answered so far: reads of
    /// deliveries, and writes that may name one (an outcome, a replay, an erasure), call it first.
    /// Other reads and writes never wait for the journal.
    async fn settle(&self) {
        if let Some(journal) = self.journal.get() {
            journal.settled().await;
        }
    }

    /// After an erasure in the log: empties the receipt journal's file, which keeps copied
    /// receipts' bodies until they are overwritten (see `Journal::scrub`).
    async fn scrub_journal(&self) {
        if let Some(journal) = self.journal.get() {
            journal.scrub().await;
        }
    }

    /// Runs `read` on a pooled read-only connection on a blocking thread.
    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = readers.lock().ok().and_then(|mut pool| pool.pop());
            let connection = match pooled {
                Some(connection) => connection,
                None => open_reader(&path)?,
            };
            let result = read(&connection);
            if let Ok(mut pool) = readers.lock()
                && pool.len() < MAX_IDLE_READERS
            {
                pool.push(connection);
            }
            result
        })
        .await
        .map_err(StoreError::unavailable)?
    }
}

/// Waits (off the async workers) for the thread in `slot` to end, once.
async fn join_thread(slot: &Mutex<Option<JoinHandle<()>>>) {
    let handle = slot.lock().map(|mut slot| slot.take()).unwrap_or_default();
    if let Some(handle) = handle {
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
}

/// The writer's command that copies journaled receipts into the log (see [`journal::Done`]).
fn ingest(receipts: Vec<Arc<deliveries::Receipt>>, upto: u64, done: journal::Done) -> Command {
    let job: Job = Box::new(move |writer| {
        let result = deliveries::ingest(writer, &receipts, upto);
        let ok = result.is_ok();
        let reply: Reply = Box::new(move |commit_error| {
            done.finish(match (commit_error, result) {
                (Some(error), _) => Err(error),
                (None, result) => result.map_err(|error| error.to_string()),
            });
        });
        (ok, reply)
    });
    Command::Run {
        job,
        // Alone: no savepoint copying the pages of thousands of receipts.
        mode: Mode::Copy,
        lane: Lane::Background,
    }
}

/// Copies into the log what a journal left by a crashed server holds, unless a running server
/// holds it (and with it the duty).
fn recover_journal(writer: &mut Writer, database: &Path) -> Result<(), StoreError> {
    let path = journal::path_of(database);
    if !path.exists() {
        return Ok(());
    }
    let Some(file) = journal::lock(&path).map_err(StoreError::unavailable)? else {
        return Ok(());
    };
    if file.metadata().map_err(StoreError::unavailable)?.len() == 0 {
        return Ok(());
    }
    run_fixed(&writer.connection, "BEGIN IMMEDIATE").map_err(StoreError::unavailable)?;
    let recovered = journal::recover(writer, &file)
        .and_then(|_| run_fixed(&writer.connection, "COMMIT").map_err(StoreError::unavailable));
    if let Err(error) = recovered {
        let _ = writer.connection.execute_batch("ROLLBACK");
        return Err(error);
    }
    journal::empty(&file).map_err(StoreError::unavailable)
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(StoreError::unavailable)?;
    configure(&connection).map_err(StoreError::unavailable)?;
    Ok(connection)
}

/// The writer's page cache size, as `PRAGMA cache_size` takes it (negative: KiB); small on
/// purpose. When a B-tree split reorders sibling pages, SQLite renumbers one through the lock-byte
/// page (page 262,145 at 4 KB pages), so the cache's highest page number lies past the end of the
/// database and every commit that follows scans the cache's whole hash table to drop pages past the
/// end. That table grows with the cache: at 32 MB the scan took ~5 % of the server's CPU under a
/// webhook flood. Missed pages come from the OS page cache; imports measured no slower at 4 MB.
const WRITER_CACHE_KIB: i64 = -4_096;

/// WAL pages after which the writer checkpoints by itself (4 MB of 4 KB pages). The checkpointer
/// thread copies most of the WAL into the database meanwhile, but with reads and commits going on
/// all the time it never finds the WAL wholly copied and unused, so only the writer's checkpoint
/// (no commit can come in while it runs) lets the WAL start over. A small WAL keeps that
/// checkpoint short: at 64 MB, under a flood of webhooks, each one held receipts up for 60–70 ms;
/// at 4 MB, a few ms (p99 at a fixed rate halved).
const WRITER_CHECKPOINT_PAGES: i64 = 1_024;
/// The same during a bulk job (an import batch): its many pages are written once, and a larger
/// WAL spares it checkpoints in the middle.
const BULK_CHECKPOINT_PAGES: i64 = 16_384;

/// Pause after a wake-up, so that one checkpoint covers the commits of a busy stretch.
const CHECKPOINT_COALESCE: Duration = Duration::from_millis(50);

/// Checkpoints after each wake-up, without blocking the writer or readers, until the writer is
/// gone; then a server's store copies everything and truncates the WAL, a batch's leaves it.
fn run_checkpointer(connection: &Connection, wake: &std::sync::mpsc::Receiver<()>, role: Role) {
    use std::sync::mpsc::RecvTimeoutError;

    'wakes: while wake.recv().is_ok() {
        // Let the commits of the next moment arrive first.
        let deadline = std::time::Instant::now() + CHECKPOINT_COALESCE;
        loop {
            match wake.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
                Ok(()) => {}
                Err(RecvTimeoutError::Timeout) => break,
                // The writer is gone: the last checkpoint (or none) is decided below.
                Err(RecvTimeoutError::Disconnected) => break 'wakes,
            }
        }
        if let Err(error) = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(%error, "sqlite: background checkpoint failed");
        }
    }
    if role == Role::Server
        && let Err(error) = connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
    {
        tracing::warn!(%error, "sqlite: final checkpoint failed");
    }
}

/// Most background jobs in one transaction: what a receipt may wait behind.
const MAX_BACKGROUND_GROUP: usize = 16;
/// Receive-lane groups committed in a row before a waiting background group gets its turn.
const RECEIVE_STREAK: usize = 4;

fn run_writer(mut writer: Writer, mut commands: mpsc::Receiver<Command>) {
    // Commands taken off the channel, by lane. Each lane keeps its order; a receipt never depends
    // on a background job queued before it (callers await commits), so lanes may overtake each
    // other. Both stay bounded: the channel is only drained while they hold less than its size.
    let mut receive: VecDeque<Job> = VecDeque::new();
    let mut background: VecDeque<Command> = VecDeque::new();
    let mut streak = 0;
    loop {
        if receive.is_empty() && background.is_empty() {
            match commands.blocking_recv() {
                Some(command) => route(command, &mut receive, &mut background),
                None => break,
            }
        }
        while receive.len() + background.len() < WRITE_QUEUE {
            match commands.try_recv() {
                Ok(command) => route(command, &mut receive, &mut background),
                Err(_) => break,
            }
        }
        if !receive.is_empty() && (streak < RECEIVE_STREAK || background.is_empty()) {
            let take = receive.len().min(MAX_GROUP);
            commit_group(
                &mut writer,
                receive.drain(..take).collect(),
                Isolation::AllOrNothing,
                Durability::Synced,
            );
            streak += 1;
            continue;
        }
        streak = 0;
        match background.pop_front() {
            Some(Command::Stop(done)) => {
                // Receipts accepted before the stop are committed first.
                while !receive.is_empty() {
                    let take = receive.len().min(MAX_GROUP);
                    commit_group(
                        &mut writer,
                        receive.drain(..take).collect(),
                        Isolation::AllOrNothing,
                        Durability::Synced,
                    );
                }
                let _ = done.send(());
                break;
            }
            Some(Command::Run {
                job,
                mode: Mode::Alone(durability),
                ..
            }) => {
                set_autocheckpoint(&writer.connection, BULK_CHECKPOINT_PAGES);
                commit_group(&mut writer, vec![job], Isolation::AllOrNothing, durability);
                set_autocheckpoint(&writer.connection, writer.small_wal);
            }
            Some(Command::Run {
                job,
                mode: Mode::Copy,
                ..
            }) => {
                commit_group(
                    &mut writer,
                    vec![job],
                    Isolation::AllOrNothing,
                    Durability::Synced,
                );
            }
            Some(Command::Run { job, .. }) => {
                let mut jobs = vec![job];
                while jobs.len() < MAX_BACKGROUND_GROUP
                    && matches!(
                        background.front(),
                        Some(Command::Run {
                            mode: Mode::Grouped,
                            ..
                        })
                    )
                {
                    if let Some(Command::Run { job, .. }) = background.pop_front() {
                        jobs.push(job);
                    }
                }
                commit_group(&mut writer, jobs, Isolation::Savepoints, Durability::Synced);
            }
            None => {}
        }
    }
    // Jobs queued after a stop are answered with an error when their senders are dropped here.
}

/// Puts a command taken off the channel into its lane.
fn route(command: Command, receive: &mut VecDeque<Job>, background: &mut VecDeque<Command>) {
    match command {
        Command::Run {
            job,
            mode: Mode::Grouped,
            lane: Lane::Receive,
        } => receive.push_back(job),
        other => background.push_back(other),
    }
}

fn set_autocheckpoint(connection: &Connection, pages: i64) {
    if let Err(error) = connection.pragma_update(None, "wal_autocheckpoint", pages) {
        tracing::warn!(%error, "sqlite: could not set the WAL's checkpoint size");
    }
}

/// Runs a fixed statement through the statement cache (no parsing per transaction or job).
fn run_fixed(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(drop)
}

/// How a group's jobs share its transaction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// Each job in its own savepoint: a failing job leaves the others committed.
    Savepoints,
    /// No savepoints: a failing job rolls the whole group back and every job is answered with an
    /// error. For jobs that fail only when the database does (I/O, a full disk), where the others
    /// would fail as well: receipts (Shopify retries them) and a bulk job alone in its group. A
    /// savepoint copies each page a job first touches into the statement journal; receipts touch
    /// fresh pages all the time.
    AllOrNothing,
}

/// How a job of a group ended, before the group's commit.
enum JobEnd {
    /// It ran and its changes wait for the commit.
    Ran,
    /// It failed by itself (its reply carries its own error); its changes were undone.
    Failed,
    /// Its savepoint could not be taken or released.
    Error(String),
}

/// Runs `jobs` in one transaction and answers each after the commit (see [`Isolation`]).
fn commit_group(writer: &mut Writer, jobs: Vec<Job>, isolation: Isolation, durability: Durability) {
    // SQLite changes the sync level only outside a transaction. A synced group never commits at
    // the deferred level: if the level cannot be restored, the group is answered with errors.
    if let Err(error) = writer.set_durability(durability) {
        tracing::error!(%error, ?durability, "sqlite: could not set the commit's sync level");
        if durability == Durability::Synced {
            return;
        }
    }
    if let Err(error) = run_fixed(&writer.connection, "BEGIN IMMEDIATE") {
        tracing::error!(%error, "sqlite: could not begin a write transaction");
        // Dropping the jobs answers each with an error.
        return;
    }
    if let Err(error) = writer.check_data_version() {
        tracing::error!(%error, "sqlite: could not read the data version");
        let _ = writer.connection.execute_batch("ROLLBACK");
        return;
    }
    let savepoints = isolation == Isolation::Savepoints;
    let mut replies = Vec::with_capacity(jobs.len());
    // All or nothing, and a job failed: the rest are dropped unrun (each caller gets an error).
    let mut failed = false;
    for job in jobs {
        if failed {
            drop(job);
            continue;
        }
        if savepoints && let Err(error) = run_fixed(&writer.connection, "SAVEPOINT job") {
            let (_, reply) = noop_reply(job);
            replies.push((reply, JobEnd::Error(error.to_string())));
            continue;
        }
        let (ok, reply) = job(writer);
        let end = match (ok, savepoints) {
            (true, true) => run_fixed(&writer.connection, "RELEASE job")
                .map_or_else(|error| JobEnd::Error(error.to_string()), |()| JobEnd::Ran),
            (false, true) => {
                writer.forget_caches();
                writer
                    .connection
                    .execute_batch("ROLLBACK TO job; RELEASE job")
                    .map_or_else(
                        |error| JobEnd::Error(error.to_string()),
                        |()| JobEnd::Failed,
                    )
            }
            (true, false) => JobEnd::Ran,
            (false, false) => {
                failed = true;
                JobEnd::Failed
            }
        };
        replies.push((reply, end));
    }
    let commit_error = if failed {
        let _ = writer.connection.execute_batch("ROLLBACK");
        writer.forget_caches();
        Some("another write in the same transaction failed; nothing was stored".to_owned())
    } else {
        let commit = run_fixed(&writer.connection, "COMMIT");
        let error = commit.err().map(|error| error.to_string());
        if error.is_some() {
            let _ = writer.connection.execute_batch("ROLLBACK");
            writer.forget_caches();
        } else {
            // Full means a wake-up is already pending; it will cover this commit too.
            let _ = writer.checkpoints.try_send(());
        }
        error
    };
    for (reply, end) in replies {
        match end {
            JobEnd::Ran => reply(commit_error.clone()),
            // The job's own error, unless the commit of what the others did failed.
            JobEnd::Failed => reply(if failed { None } else { commit_error.clone() }),
            JobEnd::Error(error) => reply(Some(commit_error.clone().unwrap_or(error))),
        }
    }
}

/// Turns a job that will not run into a reply for it, without running its body.
fn noop_reply(job: Job) -> (bool, Reply) {
    drop(job);
    (false, Box::new(|_| {}))
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(StoreError::unavailable)
}

/// A tenant row's columns ([`TENANT_COLUMNS`]), read out of the row.
struct TenantRow {
    id: String,
    name: String,
    timezone: String,
    created_at: String,
    identity: String,
}

fn tenant_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<TenantRow> {
    Ok(TenantRow {
        id: row.get(0)?,
        name: row.get(1)?,
        timezone: row.get(2)?,
        created_at: row.get(3)?,
        identity: row.get(4)?,
    })
}

fn tenant_from_parts(row: TenantRow) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId::parse(&row.id).map_err(StoreError::unavailable)?,
        name: row.name,
        timezone: Timezone::parse(&row.timezone).map_err(StoreError::unavailable)?,
        identity: IdentityScheme::parse(&row.identity).map_err(StoreError::unavailable)?,
        created_at: parse_time(&row.created_at)?,
    })
}

const TENANT_COLUMNS: &str = "public_id, name, timezone, created_at, identity_scheme";

/// Stores a new tenant row: its internal key.
fn insert_tenant(connection: &Connection, tenant: &Tenant) -> rusqlite::Result<i64> {
    connection.execute(
        &format!("INSERT INTO tenants ({TENANT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
        params![
            tenant.id.as_str(),
            tenant.name,
            tenant.timezone.name(),
            tenant.created_at.to_rfc3339(),
            tenant.identity.as_str()
        ],
    )?;
    Ok(connection.last_insert_rowid())
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|connection| {
            connection
                .query_row("SELECT 1", [], |_| Ok(()))
                .map_err(StoreError::unavailable)
        })
        .await
    }

    async fn create_tenant(
        &self,
        id: &TenantId,
        tenant: &NewTenant,
        api_key_hash: [u8; 32],
    ) -> Result<Tenant, StoreError> {
        let created = tenant.created(id);
        let stored = created.clone();
        self.write(move |writer| {
            let connection = &writer.connection;
            let key = insert_tenant(connection, &stored).map_err(|error| {
                match error.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict {
                        entity: "tenant",
                        id: stored.id.to_string(),
                    },
                    _ => StoreError::unavailable(error),
                }
            })?;
            connection
                .execute(
                    "INSERT INTO api_keys (key_hash, tenant_id, created_at) VALUES (?1, ?2, ?3)",
                    params![&api_key_hash[..], key, stored.created_at.to_rfc3339()],
                )
                .map_err(StoreError::unavailable)?;
            Ok(())
        })
        .await?;
        Ok(created)
    }

    async fn add_api_key(
        &self,
        tenant: &TenantId,
        api_key_hash: [u8; 32],
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        self.write(move |writer| {
            let key = writer.tenant_key(&tenant)?;
            writer
                .connection
                .execute(
                    "INSERT INTO api_keys (key_hash, tenant_id, created_at) VALUES (?1, ?2, ?3)",
                    params![&api_key_hash[..], key, Utc::now().to_rfc3339()],
                )
                .map_err(StoreError::unavailable)?;
            Ok(())
        })
        .await
    }

    async fn tenant(&self, tenant: &TenantId) -> Result<Tenant, StoreError> {
        let tenant = tenant.clone();
        self.read(move |connection| {
            let parts = connection
                .prepare_cached(&format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants WHERE public_id = ?1"
                ))
                .and_then(|mut statement| {
                    statement
                        .query_row([tenant.as_str()], tenant_from_row)
                        .optional()
                })
                .map_err(StoreError::unavailable)?
                .ok_or_else(|| not_found("tenant", tenant.as_str()))?;
            tenant_from_parts(parts)
        })
        .await
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        self.read(|connection| {
            let mut statement = connection
                .prepare(&format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY id"))
                .map_err(StoreError::unavailable)?;
            let rows = statement
                .query_map([], tenant_from_row)
                .map_err(StoreError::unavailable)?;
            rows.map(|row| tenant_from_parts(row.map_err(StoreError::unavailable)?))
                .collect()
        })
        .await
    }

    async fn tenant_by_api_key(
        &self,
        api_key_hash: [u8; 32],
    ) -> Result<Option<Tenant>, StoreError> {
        self.read(move |connection| {
            let parts = connection
                .prepare_cached(
                    "SELECT t.public_id, t.name, t.timezone, t.created_at, t.identity_scheme
                     FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = ?1",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row([&api_key_hash[..]], tenant_from_row)
                        .optional()
                })
                .map_err(StoreError::unavailable)?;
            parts.map(tenant_from_parts).transpose()
        })
        .await
    }

    async fn begin_upload(
        &self,
        tenant: &TenantId,
        report: &ImportReport,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let report = report.clone();
        self.write(move |writer| sales::begin_upload(writer, &tenant, &report))
            .await
    }

    async fn write_sales(
        &self,
        tenant: &TenantId,
        upload: &UploadId,
        batch: SalesBatch,
    ) -> Result<SalesWrite, StoreError> {
        let tenant = tenant.clone();
        let upload = upload.clone();
        let (written, batch) = self
            .write_exclusive_deferred(move |writer| {
                sales::write_sales(writer, &tenant, &upload, &batch).map(|written| (written, batch))
            })
            .await?;
        // Freed here, not on the writer thread, which has the next batch to write.
        drop(batch);
        Ok(written)
    }

    async fn finish_upload(
        &self,
        tenant: &TenantId,
        report: &ImportReport,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let report = report.clone();
        self.write(move |writer| sales::finish_upload(writer, &tenant, &report))
            .await
    }

    async fn upload(
        &self,
        tenant: &TenantId,
        upload: &UploadId,
    ) -> Result<ImportReport, StoreError> {
        let tenant = tenant.clone();
        let upload = upload.clone();
        self.read(move |connection| sales::upload(connection, &tenant, &upload))
            .await
    }

    async fn uploads(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<ImportReport>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |connection| sales::uploads(connection, &tenant, limit))
            .await
    }

    async fn sales(
        &self,
        tenant: &TenantId,
        query: &SalesQuery,
    ) -> Result<Vec<SalesDay>, StoreError> {
        let tenant = tenant.clone();
        let query = query.clone();
        self.read(move |connection| sales::sales(connection, &tenant, &query))
            .await
    }

    async fn skus(&self, tenant: &TenantId) -> Result<Vec<SkuSummary>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |connection| sales::skus(connection, &tenant))
            .await
    }

    async fn sales_history(&self, tenant: &TenantId) -> Result<Vec<SeriesHistory>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |connection| forecasts::sales_history(connection, &tenant))
            .await
    }

    async fn put_forecasts(
        &self,
        tenant: &TenantId,
        forecasts: Vec<SeriesForecast>,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        self.write_exclusive(move |writer| forecasts::put_forecasts(writer, &tenant, &forecasts))
            .await
    }

    async fn forecasts(
        &self,
        tenant: &TenantId,
        sku: Option<&Sku>,
        location: Option<&Location>,
        days: Option<usize>,
    ) -> Result<Vec<SeriesForecast>, StoreError> {
        let tenant = tenant.clone();
        let sku = sku.cloned();
        let location = location.cloned();
        self.read(move |connection| {
            forecasts::forecasts(connection, &tenant, sku.as_ref(), location.as_ref(), days)
        })
        .await
    }

    async fn forecasts_of(
        &self,
        tenant: &TenantId,
        series: &[(Sku, Location)],
        days: Option<usize>,
    ) -> Result<Vec<SeriesForecast>, StoreError> {
        let tenant = tenant.clone();
        let series = series.to_vec();
        self.read(move |connection| forecasts::forecasts_of(connection, &tenant, &series, days))
            .await
    }

    async fn oldest_forecast(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |connection| forecasts::oldest_forecast(connection, &tenant))
            .await
    }

    async fn daily_units(
        &self,
        tenant: &TenantId,
        location: Option<&Location>,
        days: crate::domain::DayRange,
    ) -> Result<Vec<(chrono::NaiveDate, f64)>, StoreError> {
        let tenant = tenant.clone();
        let location = location.cloned();
        self.read(move |connection| {
            sales::daily_units(connection, &tenant, location.as_ref(), days)
        })
        .await
    }

    async fn put_stock(
        &self,
        tenant: &TenantId,
        levels: Vec<StockLevel>,
    ) -> Result<u64, StoreError> {
        let tenant = tenant.clone();
        self.write(move |writer| stock::put_stock(writer, &tenant, &levels))
            .await
    }

    async fn stock(
        &self,
        tenant: &TenantId,
        sku: Option<&Sku>,
    ) -> Result<Vec<StockLevel>, StoreError> {
        let tenant = tenant.clone();
        let sku = sku.cloned();
        self.read(move |connection| stock::stock(connection, &tenant, sku.as_ref()))
            .await
    }

    async fn stock_of(
        &self,
        tenant: &TenantId,
        series: &[(Sku, Location)],
    ) -> Result<Vec<StockLevel>, StoreError> {
        let tenant = tenant.clone();
        let series = series.to_vec();
        self.read(move |connection| stock::stock_of(connection, &tenant, &series))
            .await
    }

    async fn install_shop(
        &self,
        install: &NewInstall,
        new_tenant: &TenantId,
    ) -> Result<ShopInstall, StoreError> {
        let install = install.clone();
        let new_tenant = new_tenant.clone();
        self.write(move |writer| shops::install_shop(writer, &install, &new_tenant))
            .await
    }

    async fn shop_install(&self, shop: &ShopDomain) -> Result<Option<ShopInstall>, StoreError> {
        let shop = shop.clone();
        self.read(move |connection| shops::shop_install(connection, &shop))
            .await
    }

    async fn shop_of_tenant(&self, tenant: &TenantId) -> Result<Option<ShopInstall>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |connection| shops::shop_of_tenant(connection, &tenant))
            .await
    }

    async fn replace_credentials(
        &self,
        shop: &ShopDomain,
        previous_access_token: &[u8],
        credentials: Option<SealedCredentials>,
    ) -> Result<(), StoreError> {
        let shop = shop.clone();
        let previous = previous_access_token.to_vec();
        self.write(move |writer| {
            shops::replace_credentials(writer, &shop, &previous, credentials.as_ref())
        })
        .await
    }

    async fn uninstall_shop(
        &self,
        shop: &ShopDomain,
        triggered_at: DateTime<Utc>,
    ) -> Result<UninstallOutcome, StoreError> {
        let shop = shop.clone();
        self.write(move |writer| shops::uninstall_shop(writer, &shop, triggered_at))
            .await
    }

    async fn set_shop_scopes(
        &self,
        shop: &ShopDomain,
        scopes: &[String],
    ) -> Result<bool, StoreError> {
        let shop = shop.clone();
        let scopes = scopes.to_vec();
        self.write(move |writer| shops::set_shop_scopes(writer, &shop, &scopes))
            .await
    }

    async fn erase_shop(&self, shop: &ShopDomain) -> Result<EraseOutcome, StoreError> {
        self.settle().await;
        let shop = shop.clone();
        let outcome = self
            .write_exclusive(move |writer| shops::erase_shop(writer, &shop))
            .await?;
        self.scrub_journal().await;
        Ok(outcome)
    }

    async fn record_compliance(&self, entry: &ComplianceEntry) -> Result<bool, StoreError> {
        let entry = entry.clone();
        self.write(move |writer| shops::record_compliance(writer, &entry))
            .await
    }

    async fn compliance_log(&self, shop: &ShopDomain) -> Result<Vec<ComplianceEntry>, StoreError> {
        let shop = shop.clone();
        self.read(move |connection| shops::compliance_log(connection, &shop))
            .await
    }

    async fn put_data_request(&self, request: &DataRequest) -> Result<(), StoreError> {
        let request = request.clone();
        self.write(move |writer| shops::put_data_request(writer, &request))
            .await
    }

    async fn data_requests(&self, shop: &ShopDomain) -> Result<Vec<DataRequest>, StoreError> {
        let shop = shop.clone();
        self.read(move |connection| shops::data_requests(connection, &shop))
            .await
    }

    async fn redact_customer(
        &self,
        shop: &ShopDomain,
        customer_id: &str,
    ) -> Result<u64, StoreError> {
        self.settle().await;
        let shop = shop.clone();
        let customer_id = customer_id.to_owned();
        let redacted = self
            .write(move |writer| shops::redact_customer(writer, &shop, &customer_id))
            .await?;
        self.scrub_journal().await;
        Ok(redacted)
    }

    async fn put_delivery(&self, delivery: &NewDelivery) -> Result<DeliveryReceipt, StoreError> {
        let receipt = deliveries::Receipt::of(delivery)?;
        if let Some(journal) = self.journal.get() {
            return journal.append(receipt).await;
        }
        self.write_receipt(move |writer| deliveries::put_delivery(writer, &receipt))
            .await
    }

    async fn pending_deliveries(
        &self,
        limit: u32,
        with_bodies: bool,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.settle().await;
        self.read(move |connection| deliveries::pending(connection, limit, with_bodies))
            .await
    }

    async fn claim_deliveries(
        &self,
        lease: &DeliveryLease,
        now: DateTime<Utc>,
        limit: u32,
        with_bodies: bool,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.settle().await;
        let lease = lease.clone();
        self.write(move |writer| deliveries::claim(writer, &lease, now, limit, with_bodies))
            .await
    }

    async fn record_claimed_deliveries(
        &self,
        owner: &str,
        outcomes: Vec<DeliveryOutcome>,
    ) -> Result<u64, StoreError> {
        self.settle().await;
        if outcomes.is_empty() {
            return Ok(0);
        }
        let owner = owner.to_owned();
        self.write(move |writer| deliveries::record_deliveries(writer, &outcomes, Some(&owner)))
            .await
    }

    async fn record_deliveries(&self, outcomes: Vec<DeliveryOutcome>) -> Result<u64, StoreError> {
        self.settle().await;
        if outcomes.is_empty() {
            return Ok(0);
        }
        self.write(move |writer| deliveries::record_deliveries(writer, &outcomes, None))
            .await
    }

    async fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError> {
        self.settle().await;
        let filter = filter.clone();
        self.read(move |connection| deliveries::list(connection, &filter))
            .await
    }

    async fn delivery(&self, webhook_id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        self.settle().await;
        let webhook_id = webhook_id.to_owned();
        self.read(move |connection| deliveries::one(connection, &webhook_id))
            .await
    }

    async fn delivery_body(&self, webhook_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.settle().await;
        let webhook_id = webhook_id.to_owned();
        self.read(move |connection| deliveries::body(connection, &webhook_id))
            .await
    }

    async fn replace_delivery_body(
        &self,
        webhook_id: &str,
        body: &[u8],
    ) -> Result<bool, StoreError> {
        self.settle().await;
        let webhook_id = webhook_id.to_owned();
        let body = body.to_vec();
        self.write(move |writer| deliveries::replace_body(writer, &webhook_id, &body))
            .await
    }

    async fn purge_deliveries(&self, before: DateTime<Utc>, limit: u32) -> Result<u64, StoreError> {
        self.settle().await;
        // Candidates are found on a reader, so that the writer (which commits webhook receipts)
        // never scans the log; the writer deletes them in one transaction, checking again that
        // each is still final (a replay may have reopened it since).
        let candidates = self
            .read(move |connection| deliveries::purge_candidates(connection, before, limit))
            .await?;
        if candidates.is_empty() {
            return Ok(0);
        }
        self.write_exclusive(move |writer| deliveries::purge(writer, &candidates, before))
            .await
    }

    async fn apply_order(
        &self,
        tenant: &TenantId,
        order: &OrderVersion,
    ) -> Result<OrderApplied, StoreError> {
        let tenant = tenant.clone();
        let order = order.clone();
        self.write(move |writer| sales::apply_order(writer, &tenant, &order))
            .await
    }

    async fn apply_orders(
        &self,
        tenant: &TenantId,
        orders: Vec<OrderVersion>,
    ) -> Result<OrdersApplied, StoreError> {
        let tenant = tenant.clone();
        // A batch of a backfill is a bulk write: alone in its transaction, like a CSV batch.
        self.write_exclusive(move |writer| sales::apply_orders(writer, &tenant, orders))
            .await
    }

    async fn sync_status(&self, tenant: &TenantId) -> Result<Option<SyncStatus>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |connection| sales::sync_status(connection, &tenant))
            .await
    }

    async fn put_sync_status(
        &self,
        tenant: &TenantId,
        status: &SyncStatus,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let status = status.clone();
        self.write(move |writer| sales::put_sync_status(writer, &tenant, &status))
            .await
    }

    async fn signal_bulk_finished(
        &self,
        tenant: &TenantId,
        operation_id: &str,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let operation_id = operation_id.to_owned();
        self.write(move |writer| sales::signal_bulk_finished(writer, &tenant, &operation_id))
            .await
    }

    async fn bulk_finished(
        &self,
        tenant: &TenantId,
        operation_id: &str,
    ) -> Result<bool, StoreError> {
        let tenant = tenant.clone();
        let operation_id = operation_id.to_owned();
        self.read(move |connection| sales::bulk_finished(connection, &tenant, &operation_id))
            .await
    }

    async fn put_product(
        &self,
        tenant: &TenantId,
        product_id: &str,
        variants: Vec<CatalogueVariant>,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let product_id = product_id.to_owned();
        self.write(move |writer| stock::put_product(writer, &tenant, &product_id, &variants))
            .await
    }

    async fn sku_of_inventory_item(
        &self,
        tenant: &TenantId,
        inventory_item_id: &str,
    ) -> Result<Option<Sku>, StoreError> {
        let tenant = tenant.clone();
        let item = inventory_item_id.to_owned();
        self.read(move |connection| stock::sku_of_inventory_item(connection, &tenant, &item))
            .await
    }

    async fn daily_totals(
        &self,
        tenant: &TenantId,
        days: DayRange,
    ) -> Result<Vec<DayTotal>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |connection| sales::daily_totals(connection, &tenant, days))
            .await
    }

    async fn put_overview(
        &self,
        tenant: &TenantId,
        overview: &TenantOverview,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let overview = overview.clone();
        self.write(move |writer| browser::put_overview(writer, &tenant, &overview))
            .await
    }

    async fn overview(&self, tenant: &TenantId) -> Result<Option<TenantOverview>, StoreError> {
        let tenant = tenant.clone();
        self.read(move |connection| browser::overview(connection, &tenant))
            .await
    }

    async fn put_series_stats(
        &self,
        tenant: &TenantId,
        stats: Vec<SeriesStats>,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        self.write(move |writer| browser::put_series_stats(writer, &tenant, &stats))
            .await
    }

    async fn products(
        &self,
        tenant: &TenantId,
        query: &ProductQuery,
    ) -> Result<ProductPage, StoreError> {
        let tenant = tenant.clone();
        let query = query.clone();
        self.read(move |connection| browser::products(connection, &tenant, &query))
            .await
    }

    async fn settings(&self, tenant: &TenantId) -> Result<TenantSettings, StoreError> {
        let tenant = tenant.clone();
        self.read(move |connection| browser::settings(connection, &tenant))
            .await
    }

    async fn put_settings(
        &self,
        tenant: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let settings = settings.clone();
        self.write(move |writer| browser::put_settings(writer, &tenant, &settings))
            .await
    }

    async fn create_session(
        &self,
        tenant: &TenantId,
        secret_hash: [u8; 32],
        csrf_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        let csrf_token = csrf_token.to_owned();
        self.write(move |writer| {
            browser::create_session(writer, &tenant, secret_hash, &csrf_token, expires_at)
        })
        .await
    }

    async fn session(
        &self,
        secret_hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<BrowserSession>, StoreError> {
        self.read(move |connection| browser::session(connection, secret_hash, now))
            .await
    }

    async fn delete_session(&self, secret_hash: [u8; 32]) -> Result<(), StoreError> {
        self.write(move |writer| browser::delete_session(writer, secret_hash))
            .await
    }

    async fn create_sign_in_link(
        &self,
        tenant: &TenantId,
        secret_hash: [u8; 32],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let tenant = tenant.clone();
        self.write(move |writer| {
            browser::create_sign_in_link(writer, &tenant, secret_hash, expires_at)
        })
        .await
    }

    async fn consume_sign_in_link(
        &self,
        secret_hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<TenantId>, StoreError> {
        self.write(move |writer| browser::consume_sign_in_link(writer, secret_hash, now))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApiKey, NewTenant};
    use crate::import::{ImportRequest, import_sales};

    async fn import(
        store: &Arc<SqliteStore>,
        tenant: &Tenant,
        csv: String,
    ) -> crate::store::ImportReport {
        import_sales(
            Arc::clone(store) as Arc<dyn Store>,
            tenant,
            std::io::Cursor::new(csv.into_bytes()),
            ImportRequest::default(),
        )
        .await
        .unwrap()
    }

    async fn shop(store: &SqliteStore, name: &str) -> Tenant {
        store
            .create_tenant(
                &TenantId::generate(),
                &NewTenant::parse(name, "UTC").unwrap(),
                ApiKey::generate().hash(),
            )
            .await
            .unwrap()
    }

    /// Runs of the writer, in the order it ran them.
    type Ran = Arc<Mutex<Vec<&'static str>>>;

    async fn record(store: &SqliteStore, ran: &Ran, name: &'static str, lane: Lane) {
        let ran = Arc::clone(ran);
        store
            .run_on_writer(
                move |_| {
                    ran.lock().unwrap().push(name);
                    Ok(())
                },
                Mode::Grouped,
                lane,
            )
            .await
            .unwrap();
    }

    /// The connection's sync level (`PRAGMA synchronous`: 1 NORMAL, 2 FULL) inside a job run in
    /// `mode`.
    async fn sync_level_in(store: &SqliteStore, mode: Mode) -> i64 {
        store
            .run_on_writer(
                |writer| {
                    writer
                        .connection
                        .query_row("PRAGMA synchronous", [], |row| row.get(0))
                        .map_err(StoreError::unavailable)
                },
                mode,
                Lane::Background,
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn only_deferred_bulk_writes_commit_without_a_sync_and_the_next_write_syncs_again() {
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(directory.path().join("store.sqlite3")).unwrap();
        let deferred = Mode::Alone(Durability::Deferred);
        let synced = Mode::Alone(Durability::Synced);
        assert_eq!(sync_level_in(&store, Mode::Grouped).await, 2);
        assert_eq!(sync_level_in(&store, deferred).await, 1);
        assert_eq!(sync_level_in(&store, deferred).await, 1);
        // The write after a deferred one (an import's report after its batches) syncs the WAL.
        assert_eq!(sync_level_in(&store, Mode::Grouped).await, 2);
        assert_eq!(sync_level_in(&store, deferred).await, 1);
        assert_eq!(sync_level_in(&store, synced).await, 2);
        let ran = Arc::new(Mutex::new(Vec::new()));
        store
            .run_on_writer(|_| Ok(()), deferred, Lane::Background)
            .await
            .unwrap();
        record(&store, &ran, "receipt", Lane::Receive).await;
        assert_eq!(sync_level_in(&store, Mode::Grouped).await, 2);
        store.close().await;
    }

    fn wal_bytes(database: &Path) -> u64 {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).map_or(0, |metadata| metadata.len())
    }

    #[tokio::test]
    async fn a_batch_leaves_its_wal_to_the_next_writer_and_a_server_copies_and_truncates_it() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("store.sqlite3");
        let store = Arc::new(SqliteStore::open_for_batch(&path).unwrap());
        let tenant = shop(&store, "Batch").await;
        let csv: String = std::iter::once("date,sku,location,quantity\n".to_owned())
            .chain((0..2_000).map(|row| {
                format!(
                    "2024-03-0{},S{},L{},{}\n",
                    1 + row % 7,
                    row % 250,
                    row % 3,
                    1 + row % 5
                )
            }))
            .collect();
        let report = import(&store, &tenant, csv).await;
        assert_eq!(report.rows_imported, 2_000);
        let sales = store
            .sales(&tenant.id, &crate::domain::SalesQuery::default())
            .await
            .unwrap();
        store.close().await;
        drop(store);
        // Closed, the batch left its commits in the WAL (neither it nor SQLite copied them).
        assert!(
            wal_bytes(&path) > 0,
            "the batch checkpointed its WAL on close"
        );

        // The next process reads everything, and a server's store copies the WAL into the
        // database when it closes, then truncates it.
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(
            store
                .sales(&tenant.id, &crate::domain::SalesQuery::default())
                .await
                .unwrap(),
            sales
        );
        let units: f64 = sales.iter().map(|day| day.units).sum();
        assert_eq!(
            units,
            (0..2_000).map(|row| f64::from(1 + row % 5)).sum::<f64>()
        );
        store.close().await;
        drop(store);
        assert_eq!(wal_bytes(&path), 0, "the server left its WAL behind");
        let copied = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let series: i64 = copied
            .query_row("SELECT count(*) FROM series", [], |row| row.get(0))
            .unwrap();
        assert_eq!(series, 750);
    }

    #[tokio::test]
    async fn a_receipt_is_committed_before_background_writes_queued_ahead_of_it() {
        let directory = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(directory.path().join("store.sqlite3")).unwrap());
        let ran: Ran = Arc::default();
        // The first background job holds the writer until released, so the rest queue behind it.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let held = {
            let store = Arc::clone(&store);
            let ran = Arc::clone(&ran);
            tokio::spawn(async move {
                store
                    .run_on_writer(
                        move |_| {
                            let _ = gate.lock().unwrap().recv();
                            ran.lock().unwrap().push("gate");
                            Ok(())
                        },
                        Mode::Grouped,
                        Lane::Background,
                    )
                    .await
                    .unwrap();
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let store = Arc::clone(&store);
            let ran = Arc::clone(&ran);
            tasks.push(tokio::spawn(async move {
                record(&store, &ran, "background", Lane::Background).await;
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        let receipt = {
            let store = Arc::clone(&store);
            let ran = Arc::clone(&ran);
            tokio::spawn(async move { record(&store, &ran, "receipt", Lane::Receive).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.send(()).unwrap();
        held.await.unwrap();
        receipt.await.unwrap();
        for task in tasks {
            task.await.unwrap();
        }
        let ran = ran.lock().unwrap().clone();
        assert_eq!(ran.len(), 102);
        let at = ran.iter().position(|name| *name == "receipt").unwrap();
        // At most one background group (the gate's) runs before it.
        assert!(
            at <= MAX_BACKGROUND_GROUP,
            "the receipt ran {at}th, behind the background writes queued before it"
        );
        store.close().await;
    }

    #[tokio::test]
    async fn a_failing_receipt_rolls_back_its_whole_group_and_every_caller_hears_of_it() {
        let directory = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(directory.path().join("store.sqlite3")).unwrap());
        store
            .write(|writer| {
                writer
                    .connection
                    .execute_batch("CREATE TABLE scratch (name TEXT NOT NULL)")
                    .map_err(StoreError::unavailable)
            })
            .await
            .unwrap();
        // Hold the writer so that the receipts below queue up and commit as one group.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Mutex::new(gate);
        let held = {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .run_on_writer(
                        move |_| {
                            let _ = gate.lock().unwrap().recv();
                            Ok(())
                        },
                        Mode::Grouped,
                        Lane::Background,
                    )
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let receipt = |name: &'static str| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .run_on_writer(
                        move |writer| {
                            writer
                                .connection
                                .execute("INSERT INTO scratch (name) VALUES (?1)", [name])
                                .map_err(StoreError::unavailable)?;
                            if name == "bad" {
                                return Err(StoreError::Unavailable("the bad one".into()));
                            }
                            Ok(name)
                        },
                        Mode::Grouped,
                        Lane::Receive,
                    )
                    .await
            })
        };
        let first = receipt("first");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let bad = receipt("bad");
        tokio::time::sleep(Duration::from_millis(20)).await;
        let last = receipt("last");
        tokio::time::sleep(Duration::from_millis(50)).await;
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        let first = format!("{:?}", first.await.unwrap().unwrap_err());
        assert!(first.contains("another write"), "{first}");
        let bad = format!("{:?}", bad.await.unwrap().unwrap_err());
        assert!(bad.contains("the bad one"), "{bad}");
        assert!(last.await.unwrap().is_err());
        let stored: i64 = store
            .write(|writer| {
                writer
                    .connection
                    .query_row("SELECT COUNT(*) FROM scratch", [], |row| row.get(0))
                    .map_err(StoreError::unavailable)
            })
            .await
            .unwrap();
        assert_eq!(stored, 0, "a receipt of a rolled back group was stored");
        // The writer goes on: the next receipt commits.
        assert_eq!(receipt("next").await.unwrap().unwrap(), "next");
        store.close().await;
    }

    #[tokio::test]
    async fn commits_reach_the_database_file_while_the_store_is_open() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("store.sqlite3");
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let tenant = shop(&store, "Shop").await;
        let mut csv = String::from("date,sku,location,quantity\n");
        for line in 0..30_000 {
            csv.push_str(&format!(
                "2024-01-{:02},SKU-{line},Store,1\n",
                line % 28 + 1
            ));
        }
        let before = std::fs::metadata(&path).unwrap().len();
        import(&store, &tenant, csv).await;
        // Well under the writer's own checkpoint threshold: only the background checkpointer
        // moves these pages from the WAL into the database file.
        let mut grown = false;
        for _ in 0..100 {
            if std::fs::metadata(&path).unwrap().len() > before + 1_000_000 {
                grown = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(grown, "the database file stayed at {before} bytes");
        store.close().await;
        let wal = path.with_extension("sqlite3-wal");
        assert_eq!(std::fs::metadata(&wal).map_or(0, |file| file.len()), 0);
    }

    #[tokio::test]
    async fn batches_of_more_uploads_than_the_writer_keeps_lists_for_name_the_right_series() {
        use crate::csv::{BatchBuilder, RowParts};
        use crate::domain::LineIdentity;
        use std::borrow::Cow;

        let directory = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(directory.path().join("s.sqlite3")).unwrap());
        let tenant = shop(&store, "Shop").await;
        let uploads = sales::MAX_LISTS + 2;
        let mut builders = Vec::new();
        for _ in 0..uploads {
            let report = crate::store::ImportReport::running(crate::import::new_upload_id(), None);
            store.begin_upload(&tenant.id, &report).await.unwrap();
            builders.push((report.upload_id, BatchBuilder::with_capacity(8)));
        }
        // Each upload sells its own SKU "U{n}" and a shared one, over three batches written in
        // turn, so the writer keeps dropping the lists it resolved and must resolve them again.
        let mut line = 0u32;
        for round in 0..3u32 {
            for (upload, (upload_id, builder)) in builders.iter_mut().enumerate() {
                for sku in [
                    format!("U{upload}"),
                    "Shared".to_owned(),
                    format!("R{round}"),
                ] {
                    line += 1;
                    builder.push(RowParts {
                        identity: LineIdentity::of(
                            IdentityScheme::default(),
                            &[&line.to_le_bytes()],
                        ),
                        date: chrono::NaiveDate::from_ymd_opt(2024, 1, 1 + round).unwrap(),
                        sku: Cow::Borrowed(&sku),
                        location: Cow::Borrowed("Store"),
                        product: None,
                        units: f64::from(upload as u32 + 1),
                        revenue: 0.0,
                    });
                }
                let batch = builder.take();
                store
                    .write_sales(&tenant.id, upload_id, batch)
                    .await
                    .unwrap();
            }
        }
        let skus = store.skus(&tenant.id).await.unwrap();
        let units = |name: &str| {
            skus.iter()
                .find(|sku| sku.sku.as_str() == name)
                .map(|sku| sku.units)
        };
        for upload in 0..uploads {
            assert_eq!(
                units(&format!("U{upload}")),
                Some(3.0 * (upload as f64 + 1.0))
            );
        }
        let all: f64 = (1..=uploads).map(|units| units as f64).sum();
        assert_eq!(units("Shared"), Some(3.0 * all));
        for round in 0..3 {
            assert_eq!(units(&format!("R{round}")), Some(all));
        }
        assert_eq!(skus.len(), uploads + 4);
        store.close().await;
    }

    #[tokio::test]
    async fn writes_stay_right_when_the_series_cache_forgets_tenants() {
        let directory = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(directory.path().join("s.sqlite3")).unwrap());
        let mut tenants = Vec::new();
        for index in 0..12 {
            let tenant = shop(&store, &format!("Shop {index}")).await;
            let csv = format!("date,sku,qty,store\n2024-01-01,A,{},North\n", index + 1);
            import(&store, &tenant, csv).await;
            tenants.push(tenant);
        }
        // The first tenant's series were forgotten by now: the same line is still a duplicate,
        // and a new one lands on the right series.
        let again = "date,sku,qty,store\n2024-01-01,A,1,North\n2024-01-02,A,5,North\n";
        let report = import(&store, &tenants[0], again.to_owned()).await;
        assert_eq!((report.rows_imported, report.rows_duplicate), (1, 1));
        let skus = store.skus(&tenants[0].id).await.unwrap();
        assert_eq!(skus.len(), 1);
        assert_eq!(skus[0].units, 6.0);
        assert_eq!(store.skus(&tenants[11].id).await.unwrap()[0].units, 12.0);
        store.close().await;
    }

    #[tokio::test]
    async fn series_created_by_another_store_on_the_same_file_are_seen_by_the_writer() {
        // The CLI imports into the data directory of a running server: each has its own writer,
        // and each must notice the series the other created.
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("s.sqlite3");
        let server = Arc::new(SqliteStore::open(&path).unwrap());
        let tenant = shop(&server, "Shop").await;
        import(
            &server,
            &tenant,
            "date,sku,qty\n2024-01-01,A,1\n".to_owned(),
        )
        .await;
        let cli = Arc::new(SqliteStore::open(&path).unwrap());
        import(&cli, &tenant, "date,sku,qty\n2024-01-01,B,2\n".to_owned()).await;
        cli.close().await;
        // The server's writer had cached the tenant's series and the next free id: both stale.
        let report = import(
            &server,
            &tenant,
            "date,sku,qty,product\n2024-01-02,B,3,Bee\n2024-01-02,C,4,\n".to_owned(),
        )
        .await;
        assert_eq!(report.rows_imported, 2);
        let skus = server.skus(&tenant.id).await.unwrap();
        let units: Vec<(&str, f64)> = skus
            .iter()
            .map(|sku| (sku.sku.as_str(), sku.units))
            .collect();
        assert_eq!(units, [("A", 1.0), ("B", 5.0), ("C", 4.0)]);
        let names: Vec<(String, Option<String>)> = server
            .write(|writer| {
                let mut statement = writer
                    .connection
                    .prepare("SELECT sku, product FROM series ORDER BY sku")
                    .map_err(StoreError::unavailable)?;
                let rows = statement
                    .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                    .map_err(StoreError::unavailable)?;
                rows.collect::<Result<_, _>>()
                    .map_err(StoreError::unavailable)
            })
            .await
            .unwrap();
        assert_eq!(
            names,
            [
                ("A".to_owned(), None),
                ("B".to_owned(), Some("Bee".to_owned())),
                ("C".to_owned(), None)
            ]
        );
        server.close().await;
    }

    #[tokio::test]
    async fn series_past_the_writers_cache_are_found_in_the_database_and_never_made_twice() {
        // Unit tests cache a few dozen series a tenant (`MAX_CACHED_SERIES`): these tenants have
        // more, created in one writer and loaded by the next.
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("s.sqlite3");
        let csv = |skus: std::ops::Range<u32>, day: u32, units: u32, named: bool| {
            let mut csv = String::from("date,sku,qty,product\n");
            for sku in skus {
                let product = if named {
                    format!("P-{sku}")
                } else {
                    String::new()
                };
                csv.push_str(&format!("2024-01-{day:02},S-{sku:03},{units},{product}\n"));
            }
            csv
        };
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let tenant = shop(&store, "Shop").await;
        let other = shop(&store, "Other").await;
        assert_eq!(
            import(&store, &tenant, csv(0..100, 1, 1, false))
                .await
                .rows_imported,
            100
        );
        // Half known (some cached, some not), half new, names for all.
        assert_eq!(
            import(&store, &tenant, csv(50..150, 2, 2, true))
                .await
                .rows_imported,
            100
        );
        assert_eq!(
            import(&store, &other, csv(0..60, 1, 5, false))
                .await
                .rows_imported,
            60
        );
        store.close().await;

        let store = Arc::new(SqliteStore::open(&path).unwrap());
        // A new writer loads as many as it caches; the rest come from the database.
        let again = import(&store, &tenant, csv(50..150, 2, 2, true)).await;
        assert_eq!((again.rows_imported, again.rows_duplicate), (0, 100));
        assert_eq!(
            import(&store, &tenant, csv(120..170, 3, 4, false))
                .await
                .rows_imported,
            50
        );
        let skus = store.skus(&tenant.id).await.unwrap();
        assert_eq!(skus.len(), 170);
        for sku in &skus {
            let n: u32 = sku.sku.as_str()[2..].parse().unwrap();
            let units = [(0..100, 1), (50..150, 2), (120..170, 4)]
                .iter()
                .filter(|(range, _)| range.contains(&n))
                .map(|(_, units)| f64::from(*units))
                .sum::<f64>();
            assert_eq!(sku.units, units, "{}", sku.sku.as_str());
            let product = (50..150).contains(&n).then(|| format!("P-{n}"));
            assert_eq!(sku.product, product, "{}", sku.sku.as_str());
        }
        assert_eq!(store.skus(&other.id).await.unwrap().len(), 60);
        let series: i64 = Connection::open(&path)
            .unwrap()
            .query_row("SELECT count(*) FROM series", [], |row| row.get(0))
            .unwrap();
        assert_eq!(series, 170 + 60);
        store.close().await;
    }

    #[tokio::test]
    async fn a_series_listed_again_with_its_name_in_one_batch_is_one_named_series() {
        let directory = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(directory.path().join("s.sqlite3")).unwrap());
        let tenant = shop(&store, "Shop").await;
        let csv = "date,sku,qty,product\n2024-01-01,A,1,\n2024-01-02,A,2,Apple\n2024-01-03,A,3,\n";
        assert_eq!(
            import(&store, &tenant, csv.to_owned()).await.rows_imported,
            3
        );
        let skus = store.skus(&tenant.id).await.unwrap();
        assert_eq!(skus.len(), 1);
        assert_eq!(skus[0].units, 6.0);
        assert_eq!(skus[0].product.as_deref(), Some("Apple"));
        store.close().await;
    }

    #[tokio::test]
    async fn tenants_keep_their_identity_scheme_and_imports_hash_with_it() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("s.sqlite3");
        // A database of the version before schemes were recorded, with a tenant in it.
        {
            let mut connection = Connection::open(&path).unwrap();
            migrations::run_until(&mut connection, 12).unwrap();
            connection
                .execute(
                    "INSERT INTO tenants (public_id, name, timezone, created_at)
                     VALUES ('tn_0123456789abcdef0123', 'Old', 'UTC', '2024-01-01T00:00:00Z')",
                    [],
                )
                .unwrap();
        }
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let old = store
            .tenant(&TenantId::parse("tn_0123456789abcdef0123").unwrap())
            .await
            .unwrap();
        assert_eq!(old.identity, IdentityScheme::Sha256);
        let new = shop(&store, "New").await;
        assert_eq!(new.identity, IdentityScheme::Xxh3);
        assert_eq!(store.tenant(&new.id).await.unwrap(), new);
        // The old tenant's lines were found with SHA-256: a re-upload is all duplicates only
        // when it is hashed the same way.
        let csv = "date,sku,qty\n2024-01-01,A,1\n2024-01-02,B,2\n".to_owned();
        assert_eq!(import(&store, &old, csv.clone()).await.rows_imported, 2);
        assert_eq!(import(&store, &old, csv.clone()).await.rows_duplicate, 2);
        let misread = Tenant {
            identity: IdentityScheme::Xxh3,
            ..old.clone()
        };
        assert_eq!(import(&store, &misread, csv).await.rows_imported, 2);
        store.close().await;
    }
}
