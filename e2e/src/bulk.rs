//! Bulk queries (<https://shopify.dev/docs/api/usage/bulk-operations/queries>): `bulkOperationRunQuery`
//! checks the query, the operation runs in the background by executing the query against the same
//! schema one page of its top-level connection at a time (nested connections unlimited), writes JSONL
//! to a result file, stays `RUNNING` for `SimConfig::bulk_operation_duration` of simulated time, then
//! completes and sends `bulk_operations/finish`. The result is served at a URL shaped like a signed
//! cloud-storage URL: it expires, answers `Range` requests, and does not depend on the access token.
//!
//! Versions: from API 2026-01 five bulk queries may run at once per shop and `groupObjects` defaults to
//! `false` (children may come before or long after their parents); before, one at a time, grouped.

mod jsonl;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_graphql::Enum;
use axum::body::Body;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _};

use crate::admin::orders::Draw;
use crate::admin::schema::{BulkPaging, RequestContext, from_2026_01};
use crate::state::Shared;
use crate::webhook::{self, DeliveryOptions};

pub(crate) use jsonl::Shape;

/// Top-level items per executed page of a bulk query.
const PAGE_SIZE: usize = 250;
/// Where the simulated cloud storage keeps results (a bucket name, as in Shopify's URLs).
const BUCKET: &str = "shopify-sim-bulk";

/// `BulkOperationStatus`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOperationStatus {
    /// Cancelled.
    Canceled,
    /// Cancellation asked for, not yet done.
    Canceling,
    /// Finished; `url` holds the result.
    Completed,
    /// Accepted, not started.
    Created,
    /// Finished more than the URL's life ago: the result is gone.
    Expired,
    /// Failed; see `errorCode`.
    Failed,
    /// Running.
    Running,
}

impl BulkOperationStatus {
    fn is_active(self) -> bool {
        matches!(self, Self::Created | Self::Running | Self::Canceling)
    }
}

/// `BulkOperationErrorCode`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOperationErrorCode {
    /// The query reached data the token's scopes do not cover.
    AccessDenied,
    /// Shopify failed; `partialDataUrl` may hold what was written.
    InternalServerError,
    /// The query took too long; `partialDataUrl` may hold what was written.
    Timeout,
}

/// `BulkOperationType`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOperationType {
    /// `bulkOperationRunMutation` (not simulated).
    Mutation,
    /// `bulkOperationRunQuery`.
    Query,
}

/// `BulkOperationUserErrorCode`.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkOperationUserErrorCode {
    /// The input is invalid.
    Invalid,
    /// Too many bulk operations are running (2026-01 and later).
    LimitReached,
    /// A bulk operation is already running (before 2026-01).
    OperationInProgress,
}

/// A way to make the next bulk query go wrong, armed with [`crate::Faults::fail_next_bulk_query`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkFault {
    /// `FAILED` with `INTERNAL_SERVER_ERROR` once at least `after_root_objects` root objects were
    /// written; those are served at `partialDataUrl`.
    InternalServerError {
        /// Root objects written before the failure (whole pages of 250).
        after_root_objects: u64,
    },
    /// `FAILED` with `ACCESS_DENIED` and no data.
    AccessDenied,
    /// `FAILED` with `TIMEOUT` once at least `after_root_objects` root objects were written; those are
    /// served at `partialDataUrl`.
    Timeout {
        /// Root objects written before the timeout (whole pages of 250).
        after_root_objects: u64,
    },
    /// Completes, but its `url` has already expired (a client that downloads late).
    UrlExpired,
}

/// A bulk operation as a client or a test sees it now.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperationView {
    /// Numeric id (`gid://shopify/BulkOperation/{id}`).
    pub id: u64,
    /// The shop it runs on.
    pub shop: String,
    /// Status now (`EXPIRED` once the result's life is over).
    pub status: BulkOperationStatus,
    /// Why it failed.
    pub error_code: Option<BulkOperationErrorCode>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When it completed successfully.
    pub completed_at: Option<DateTime<Utc>>,
    /// Lines written so far.
    pub object_count: u64,
    /// Lines without `__parentId` written so far.
    pub root_object_count: u64,
    /// Size of the result file once finished.
    pub file_size: Option<u64>,
    /// The signed result URL (completed operations).
    pub url: Option<String>,
    /// The signed URL of what a failed operation wrote.
    pub partial_data_url: Option<String>,
    /// The bulk query.
    pub query: String,
    /// Whether children follow their parents directly.
    pub group_objects: bool,
}

/// Why `bulkOperationRunQuery` refused.
#[derive(Debug, Clone)]
pub(crate) struct BulkUserError {
    pub(crate) field: Option<&'static str>,
    pub(crate) message: String,
    pub(crate) code: Option<BulkOperationUserErrorCode>,
}

/// Every bulk operation of the simulator, plus armed faults and the result files' home.
#[derive(Debug)]
pub(crate) struct BulkState {
    operations: BTreeMap<u64, Record>,
    next_id: u64,
    faults: Vec<BulkFault>,
    download_cuts: Vec<u64>,
    storage_key: String,
    directory: ResultDirectory,
}

impl BulkState {
    pub(crate) fn new() -> Self {
        let storage_key = crate::crypto::uuid_v4();
        let directory = std::env::temp_dir().join(format!(
            "shopify-sim-{}-{}",
            std::process::id(),
            &storage_key[..8]
        ));
        Self {
            operations: BTreeMap::new(),
            next_id: 4_470_000_000_001,
            faults: Vec::new(),
            download_cuts: Vec::new(),
            storage_key,
            directory: ResultDirectory(directory),
        }
    }

    /// Arms `fault` for the next bulk query started on any shop.
    pub(crate) fn arm(&mut self, fault: BulkFault) {
        self.faults.push(fault);
    }

    /// The next `n` result downloads close the connection after `after_bytes` bytes of body.
    pub(crate) fn cut_downloads(&mut self, n: usize, after_bytes: u64) {
        self.download_cuts
            .extend(std::iter::repeat_n(after_bytes, n));
    }

    pub(crate) fn clear_faults(&mut self) {
        self.faults.clear();
        self.download_cuts.clear();
    }
}

/// Removes the result files when the simulator goes away.
#[derive(Debug)]
struct ResultDirectory(PathBuf);

impl Drop for ResultDirectory {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug, Clone)]
struct Record {
    id: u64,
    shop: String,
    query: String,
    group_objects: bool,
    api_version: String,
    scopes: Vec<String>,
    status: BulkOperationStatus,
    error_code: Option<BulkOperationErrorCode>,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    object_count: u64,
    root_object_count: u64,
    file_size: Option<u64>,
    /// Object name of the result (or partial result) in the simulated storage.
    object: Option<String>,
    url_expires_at: Option<DateTime<Utc>>,
    fault: Option<BulkFault>,
    started: bool,
}

fn gid(id: u64) -> String {
    format!("gid://shopify/BulkOperation/{id}")
}

impl Record {
    fn view(
        &self,
        shared: &Shared,
        storage_key: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> BulkOperationView {
        let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let expired = self
            .finished_at
            .is_some_and(|finished| now >= finished + ttl);
        let status = match self.status {
            BulkOperationStatus::Completed if expired => BulkOperationStatus::Expired,
            status => status,
        };
        let signed = |object: &str| {
            self.url_expires_at
                .map(|expires| signed_url(&shared.base_url, storage_key, object, self.id, expires))
        };
        // An operation that found nothing has no file to point at: `url` stays null (as developers
        // report from Shopify), so a client must treat a null `url` on COMPLETED as "no data".
        let (url, partial_data_url) = match (&self.object, status) {
            (Some(object), BulkOperationStatus::Completed) if self.object_count > 0 => {
                (signed(object), None)
            }
            (Some(object), BulkOperationStatus::Failed) if self.object_count > 0 && !expired => {
                (None, signed(object))
            }
            _ => (None, None),
        };
        BulkOperationView {
            id: self.id,
            shop: self.shop.clone(),
            status,
            error_code: self.error_code,
            created_at: self.created_at,
            completed_at: self.completed_at,
            object_count: self.object_count,
            root_object_count: self.root_object_count,
            file_size: self.file_size,
            url,
            partial_data_url,
            query: self.query.clone(),
            group_objects: self.group_objects,
        }
    }
}

/// Views of `shop`'s operations matching `keep`, oldest first.
pub(crate) fn views(
    shared: &Shared,
    keep: impl Fn(&BulkOperationView) -> bool,
) -> Vec<BulkOperationView> {
    let now = shared.clock.now();
    let state = shared.lock();
    state
        .bulk
        .operations
        .values()
        .map(|record| {
            record.view(
                shared,
                &state.bulk.storage_key,
                now,
                state.config.bulk_url_ttl,
            )
        })
        .filter(|view| keep(view))
        .collect()
}

/// `bulkOperation(id:)`.
pub(crate) fn view(request: &RequestContext, id: u64) -> Option<BulkOperationView> {
    let shop = &request.seed.domain;
    views(&request.shared, |view| view.id == id && view.shop == *shop)
        .into_iter()
        .next()
}

/// `currentBulkOperation(type:)`: the newest query operation of the shop.
pub(crate) fn current(
    request: &RequestContext,
    operation_type: BulkOperationType,
) -> Option<BulkOperationView> {
    if operation_type == BulkOperationType::Mutation {
        return None;
    }
    let shop = &request.seed.domain;
    views(&request.shared, |view| view.shop == *shop).pop()
}

/// `bulkOperations(query:)`: `status:…` and `operation_type:…` terms are understood.
pub(crate) fn list(request: &RequestContext, query: &str) -> Vec<BulkOperationView> {
    let shop = &request.seed.domain;
    let mut status = None;
    let mut mutations = false;
    for term in query.split_whitespace() {
        match term.split_once(':') {
            Some(("status", value)) => status = Some(value.to_ascii_uppercase()),
            Some(("operation_type", value)) => mutations = value.eq_ignore_ascii_case("mutation"),
            _ => {}
        }
    }
    views(&request.shared, |view| {
        view.shop == *shop
            && !mutations
            && status
                .as_deref()
                .is_none_or(|wanted| status_name(view.status) == wanted)
    })
}

fn status_name(status: BulkOperationStatus) -> &'static str {
    match status {
        BulkOperationStatus::Canceled => "CANCELED",
        BulkOperationStatus::Canceling => "CANCELING",
        BulkOperationStatus::Completed => "COMPLETED",
        BulkOperationStatus::Created => "CREATED",
        BulkOperationStatus::Expired => "EXPIRED",
        BulkOperationStatus::Failed => "FAILED",
        BulkOperationStatus::Running => "RUNNING",
    }
}

fn error_code_name(code: BulkOperationErrorCode) -> &'static str {
    match code {
        BulkOperationErrorCode::AccessDenied => "ACCESS_DENIED",
        BulkOperationErrorCode::InternalServerError => "INTERNAL_SERVER_ERROR",
        BulkOperationErrorCode::Timeout => "TIMEOUT",
    }
}

/// `bulkOperationRunQuery`: checks the query and the concurrency limit, then records the operation as
/// `CREATED`; [`start_pending`] runs it once the request is answered.
pub(crate) fn run_query(
    request: &RequestContext,
    query: String,
    group_objects: Option<bool>,
) -> Result<BulkOperationView, BulkUserError> {
    jsonl::validate(&request.shared.admin.shape, &query).map_err(|message| BulkUserError {
        field: Some("query"),
        message,
        code: Some(BulkOperationUserErrorCode::Invalid),
    })?;
    let current_rules = from_2026_01(&request.api_version);
    let shop = &request.seed.domain;
    let now = request.now;
    let shared = &request.shared;
    let mut state = shared.lock();
    let active: Vec<u64> = state
        .bulk
        .operations
        .values()
        .filter(|record| record.shop == *shop && record.status.is_active())
        .map(|record| record.id)
        .collect();
    let limit = if current_rules { 5 } else { 1 };
    if active.len() >= limit {
        return Err(if current_rules {
            BulkUserError {
                field: None,
                message: format!(
                    "A maximum of {limit} bulk queries can run at the same time per shop; wait for one of them to finish."
                ),
                code: Some(BulkOperationUserErrorCode::LimitReached),
            }
        } else {
            BulkUserError {
                field: None,
                message: format!(
                    "A bulk query operation for this app and shop is already in progress: {}.",
                    gid(active[0])
                ),
                code: Some(BulkOperationUserErrorCode::OperationInProgress),
            }
        });
    }
    let id = state.bulk.next_id;
    state.bulk.next_id += 1;
    let fault = (!state.bulk.faults.is_empty()).then(|| state.bulk.faults.remove(0));
    let record = Record {
        id,
        shop: shop.clone(),
        query,
        group_objects: group_objects.unwrap_or(!current_rules),
        api_version: request.api_version.clone(),
        scopes: request.scopes.clone(),
        status: BulkOperationStatus::Created,
        error_code: None,
        created_at: now,
        completed_at: None,
        finished_at: None,
        object_count: 0,
        root_object_count: 0,
        file_size: None,
        object: None,
        url_expires_at: None,
        fault,
        started: false,
    };
    let view = record.view(
        shared,
        &state.bulk.storage_key,
        now,
        state.config.bulk_url_ttl,
    );
    state.bulk.operations.insert(id, record);
    Ok(view)
}

/// Why `bulkOperationCancel` refused.
#[derive(Debug)]
pub(crate) struct CancelError {
    pub(crate) message: String,
}

/// `bulkOperationCancel`: a running operation goes `CANCELING`; its runner makes it `CANCELED`.
pub(crate) fn cancel(request: &RequestContext, id: u64) -> Result<BulkOperationView, CancelError> {
    {
        let mut state = request.shared.lock();
        let Some(record) = state
            .bulk
            .operations
            .get_mut(&id)
            .filter(|record| record.shop == request.seed.domain)
        else {
            return Err(CancelError {
                message: "Bulk operation does not exist".into(),
            });
        };
        if !matches!(
            record.status,
            BulkOperationStatus::Created | BulkOperationStatus::Running
        ) {
            return Err(CancelError {
                message: format!(
                    "A bulk operation cannot be canceled when it is {}",
                    status_name(record.status).to_ascii_lowercase()
                ),
            });
        }
        record.status = BulkOperationStatus::Canceling;
    }
    view(request, id).ok_or_else(|| CancelError {
        message: "Bulk operation does not exist".into(),
    })
}

/// Starts a runner for every operation accepted but not yet started.
pub(crate) fn start_pending(shared: &Arc<Shared>) {
    let pending: Vec<u64> = {
        let mut state = shared.lock();
        state
            .bulk
            .operations
            .values_mut()
            .filter(|record| !record.started)
            .map(|record| {
                record.started = true;
                record.id
            })
            .collect()
    };
    for id in pending {
        let weak = Arc::downgrade(shared);
        tokio::spawn(async move {
            if let Err(error) = run(weak, id).await {
                tracing::warn!(%error, id, "bulk operation stopped");
            }
        });
    }
}

/// How a run ended.
enum Ending {
    Completed,
    Failed(BulkOperationErrorCode),
    Canceled,
}

/// Runs operation `id` to its end and announces it.
async fn run(weak: Weak<Shared>, id: u64) -> anyhow::Result<()> {
    let Some(shared) = weak.upgrade() else {
        return Ok(());
    };
    let (record, data, seed, directory) = {
        let mut state = shared.lock();
        let directory = state.bulk.directory.0.clone();
        let Some(record) = state.bulk.operations.get_mut(&id) else {
            return Ok(());
        };
        if record.status == BulkOperationStatus::Created {
            record.status = BulkOperationStatus::Running;
        }
        let record = record.clone();
        let Some(shop) = state.shops.get(&record.shop) else {
            return Ok(());
        };
        (record, Arc::clone(&shop.data), shop.seed.clone(), directory)
    };
    tokio::fs::create_dir_all(&directory).await?;
    let object = format!(
        "bulk-operation-outputs/{id}-{}.jsonl",
        &crate::crypto::uuid_v4()[..8]
    );
    let path = directory.join(object.replace('/', "_"));
    let ending = write_result(&shared, &record, &data, &seed, &path).await?;
    let ending = match ending {
        Ending::Completed => {
            drop(shared);
            wait_until_due(&weak, id).await
        }
        other => other,
    };
    let Some(shared) = weak.upgrade() else {
        return Ok(());
    };
    let file_size = tokio::fs::metadata(&path).await.map(|meta| meta.len()).ok();
    let now = shared.clock.now();
    let finished = {
        let mut state = shared.lock();
        let ttl =
            chrono::Duration::from_std(state.config.bulk_url_ttl).unwrap_or(chrono::Duration::MAX);
        let Some(record) = state.bulk.operations.get_mut(&id) else {
            return Ok(());
        };
        record.finished_at = Some(now);
        record.object = Some(object);
        match ending {
            Ending::Completed => {
                record.status = BulkOperationStatus::Completed;
                record.completed_at = Some(now);
                record.file_size = file_size.filter(|_| record.object_count > 0);
                record.url_expires_at = Some(if record.fault == Some(BulkFault::UrlExpired) {
                    now - chrono::Duration::seconds(1)
                } else {
                    now + ttl
                });
            }
            Ending::Failed(code) => {
                record.status = BulkOperationStatus::Failed;
                record.error_code = Some(code);
                record.url_expires_at = Some(now + ttl);
            }
            Ending::Canceled => record.status = BulkOperationStatus::Canceled,
        }
        record.clone()
    };
    announce(&shared, &finished).await;
    Ok(())
}

/// Executes the query page by page into `path`; stops early on a fault, an error or a cancellation.
async fn write_result(
    shared: &Arc<Shared>,
    record: &Record,
    data: &Arc<crate::admin::seed::ShopData>,
    seed: &crate::ShopSeed,
    path: &Path,
) -> anyhow::Result<Ending> {
    let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(path).await?);
    if record.fault == Some(BulkFault::AccessDenied) {
        file.flush().await?;
        return Ok(Ending::Failed(BulkOperationErrorCode::AccessDenied));
    }
    let Ok(document) = jsonl::validate(&shared.admin.shape, &record.query) else {
        return Ok(Ending::Failed(BulkOperationErrorCode::InternalServerError));
    };
    let mut after: Option<String> = None;
    let mut carry: Vec<jsonl::Line> = Vec::new();
    let (mut n_objects, mut n_roots) = (0_u64, 0_u64);
    for page in 0_u64.. {
        if is_canceling(shared, record.id) {
            file.flush().await?;
            return Ok(Ending::Canceled);
        }
        let outcome = Arc::new(Mutex::new(None));
        let context = RequestContext {
            seed: seed.clone(),
            data: Arc::clone(data),
            scopes: record.scopes.clone(),
            subscriptions: Vec::new(),
            now: shared.clock.now(),
            shared: Arc::clone(shared),
            api_version: record.api_version.clone(),
            bulk: Some(BulkPaging {
                page_size: PAGE_SIZE,
                after: after.clone(),
                outcome: Arc::clone(&outcome),
            }),
        };
        let response = shared
            .admin
            .schema
            .execute(async_graphql::Request::new(record.query.clone()).data(context))
            .await;
        if !response.errors.is_empty() {
            let denied = response.errors.iter().any(|error| {
                error
                    .extensions
                    .as_ref()
                    .and_then(|extensions| extensions.get("code"))
                    .is_some_and(|code| {
                        *code == async_graphql::Value::String("ACCESS_DENIED".into())
                    })
            });
            file.flush().await?;
            return Ok(Ending::Failed(if denied {
                BulkOperationErrorCode::AccessDenied
            } else {
                BulkOperationErrorCode::InternalServerError
            }));
        }
        let lines = jsonl::flatten(&shared.admin.shape, &document, &response.data);
        let lines = if record.group_objects {
            lines
        } else {
            scatter(lines, record.id ^ page, &mut carry)
        };
        let mut text = String::new();
        for line in &lines {
            text.push_str(&line.text);
            text.push('\n');
            n_objects += 1;
            n_roots += u64::from(line.parent.is_none());
        }
        file.write_all(text.as_bytes()).await?;
        {
            let mut state = shared.lock();
            if let Some(stored) = state.bulk.operations.get_mut(&record.id) {
                stored.object_count = n_objects;
                stored.root_object_count = n_roots;
            }
        }
        let failure = match record.fault {
            Some(BulkFault::Timeout { after_root_objects }) if n_roots >= after_root_objects => {
                Some(BulkOperationErrorCode::Timeout)
            }
            Some(BulkFault::InternalServerError { after_root_objects })
                if n_roots >= after_root_objects =>
            {
                Some(BulkOperationErrorCode::InternalServerError)
            }
            _ => None,
        };
        if let Some(code) = failure {
            file.flush().await?;
            return Ok(Ending::Failed(code));
        }
        let next = outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match next {
            Some((true, Some(cursor))) => after = Some(cursor),
            _ => break,
        }
        tokio::task::yield_now().await;
    }
    let mut text = String::new();
    for line in carry.drain(..) {
        text.push_str(&line.text);
        text.push('\n');
        n_objects += 1;
    }
    file.write_all(text.as_bytes()).await?;
    file.flush().await?;
    if let Some(stored) = shared.lock().bulk.operations.get_mut(&record.id) {
        stored.object_count = n_objects;
    }
    Ok(Ending::Completed)
}

/// Ungrouped output (`groupObjects: false`): the page's lines in a deterministic shuffle, and one child
/// in eight held back until after the next page, so children come before or long after their parents.
fn scatter(lines: Vec<jsonl::Line>, seed: u64, carry: &mut Vec<jsonl::Line>) -> Vec<jsonl::Line> {
    let mut draw = Draw::new(seed, 0, 7);
    let (mut now, mut later): (Vec<jsonl::Line>, Vec<jsonl::Line>) = (Vec::new(), Vec::new());
    for line in lines {
        if line.parent.is_some() && draw.chance(125) {
            later.push(line);
        } else {
            now.push(line);
        }
    }
    for index in (1..now.len()).rev() {
        let other = draw.below(index as u64 + 1) as usize;
        now.swap(index, other);
    }
    now.append(carry);
    *carry = later;
    now
}

fn is_canceling(shared: &Shared, id: u64) -> bool {
    shared
        .lock()
        .bulk
        .operations
        .get(&id)
        .is_some_and(|record| record.status == BulkOperationStatus::Canceling)
}

/// Waits (polling the simulated clock) until the operation has run for `bulk_operation_duration`.
async fn wait_until_due(weak: &Weak<Shared>, id: u64) -> Ending {
    loop {
        let Some(shared) = weak.upgrade() else {
            return Ending::Canceled;
        };
        let now = shared.clock.now();
        {
            let state = shared.lock();
            let Some(record) = state.bulk.operations.get(&id) else {
                return Ending::Canceled;
            };
            if record.status == BulkOperationStatus::Canceling {
                return Ending::Canceled;
            }
            let duration = chrono::Duration::from_std(state.config.bulk_operation_duration)
                .unwrap_or(chrono::Duration::MAX);
            if now >= record.created_at + duration {
                return Ending::Completed;
            }
        }
        drop(shared);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `bulk_operations/finish` payload.
pub fn finish_payload(
    view: &BulkOperationView,
    finished_at: DateTime<Utc>,
    timezone: &str,
) -> Value {
    let zone: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::UTC);
    let local = |at: DateTime<Utc>| {
        at.with_timezone(&zone)
            .to_rfc3339_opts(SecondsFormat::Secs, false)
    };
    json!({
        "admin_graphql_api_id": gid(view.id),
        "completed_at": local(view.completed_at.unwrap_or(finished_at)),
        "created_at": local(view.created_at),
        "error_code": view.error_code.map(|code| error_code_name(code).to_ascii_lowercase()),
        "status": status_name(view.status).to_ascii_lowercase(),
        "type": "query",
    })
}

/// Sends `bulk_operations/finish` to each subscription of an installed shop: API subscriptions to their
/// URI, a topic in `app_webhook_topics` to the app's webhook URL.
async fn announce(shared: &Arc<Shared>, record: &Record) {
    let (targets, payload) = {
        let state = shared.lock();
        let Some(shop) = state.shops.get(&record.shop) else {
            return;
        };
        if !shop.installed {
            return;
        }
        let mut targets: Vec<String> = shop
            .webhook_subscriptions
            .iter()
            .filter(|subscription| subscription.topic == "BULK_OPERATIONS_FINISH")
            .map(|subscription| subscription.uri.clone())
            .collect();
        if state
            .config
            .app_webhook_topics
            .iter()
            .any(|topic| topic == "bulk_operations/finish")
        {
            targets.push(format!(
                "{}{}",
                state.config.app_url, state.config.webhook_path
            ));
        }
        let view = record.view(
            shared,
            &state.bulk.storage_key,
            shared.clock.now(),
            state.config.bulk_url_ttl,
        );
        let finished_at = record.finished_at.unwrap_or_else(|| shared.clock.now());
        (
            targets,
            finish_payload(&view, finished_at, &shop.seed.iana_timezone),
        )
    };
    for url in targets {
        let options = DeliveryOptions {
            url: Some(url),
            ..DeliveryOptions::default()
        };
        webhook::deliver(
            shared,
            &record.shop,
            "bulk_operations/finish",
            &payload,
            options,
        )
        .await;
    }
}

fn signature(storage_key: &str, object: &str, expires: i64) -> String {
    use hmac::{Hmac, KeyInit as _, Mac as _};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(storage_key.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("GET\n\n\n{expires}\n/{BUCKET}/{object}").as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A URL shaped like Shopify's result URLs (a V2-signed cloud-storage URL with `Expires`).
fn signed_url(
    base_url: &str,
    storage_key: &str,
    object: &str,
    id: u64,
    expires_at: DateTime<Utc>,
) -> String {
    let expires = expires_at.timestamp();
    let disposition =
        format!("attachment; filename=\"bulk-{id}.jsonl\"; filename*=UTF-8''bulk-{id}.jsonl");
    format!(
        "{base_url}/storage/{BUCKET}/{object}?GoogleAccessId={}&Expires={expires}&Signature={}&response-content-disposition={}&response-content-type={}",
        encode("bulk-results@shopify-sim.iam.gserviceaccount.com"),
        encode(&signature(storage_key, object, expires)),
        encode(&disposition),
        encode("application/jsonl"),
    )
}

fn storage_error(status: StatusCode, code: &str, message: &str, details: &str) -> Response {
    let body = format!(
        "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message><Details>{details}</Details></Error>"
    );
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=UTF-8")],
        body,
    )
        .into_response()
}

/// `GET /storage/{bucket}/{object}`: the result file, as cloud storage serves a signed URL: 403 with an
/// XML error for a bad or expired signature, `Range: bytes=N-` (or `N-M`) answered with 206.
pub(crate) async fn download(
    State(shared): State<Arc<Shared>>,
    UrlPath((bucket, folder, name)): UrlPath<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let object = format!("{folder}/{name}");
    let params: Vec<(String, String)> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| {
            (
                name.to_owned(),
                percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
        .collect();
    let param = |name: &str| {
        params
            .iter()
            .find(|(candidate, _)| candidate == name)
            .map(|(_, value)| value.as_str())
    };
    let (Some(expires), Some(given)) = (param("Expires"), param("Signature")) else {
        return storage_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Access denied.",
            "Anonymous caller does not have storage.objects.get access to the Google Cloud Storage object.",
        );
    };
    let (path, cut) = {
        let mut state = shared.lock();
        let expected = expires
            .parse::<i64>()
            .map(|expires| signature(&state.bulk.storage_key, &object, expires));
        if bucket != BUCKET || expected.as_deref() != Ok(given) {
            return storage_error(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided. Check your Google secret key and signing method.",
                "",
            );
        }
        let cut =
            (!state.bulk.download_cuts.is_empty()).then(|| state.bulk.download_cuts.remove(0));
        (state.bulk.directory.0.join(object.replace('/', "_")), cut)
    };
    let expires: i64 = expires.parse().unwrap_or_default();
    if shared.clock.now().timestamp() > expires {
        return storage_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Access denied.",
            &format!("Request has expired: {expires}"),
        );
    }
    let Ok(mut file) = tokio::fs::File::open(&path).await else {
        return storage_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
            "",
        );
    };
    let size = file.metadata().await.map(|meta| meta.len()).unwrap_or(0);
    let range = headers
        .get(header::RANGE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_range(value, size));
    let (status, start, end) = match range {
        None => (StatusCode::OK, 0, size),
        Some(Ok((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end),
        Some(Err(())) => {
            let mut response = storage_error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range cannot be satisfied.",
                "",
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };
    if file.seek(std::io::SeekFrom::Start(start)).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let length = end - start;
    let sent = cut.map_or(length, |cut| cut.min(length));
    let reader = tokio::io::AsyncReadExt::take(file, sent);
    // Large reads: tokio's file reads are each a blocking-pool round trip, and the 4 KB default
    // would make the simulator, not the network, the limit of a GB download.
    let stream = tokio_util::io::ReaderStream::with_capacity(reader, 256 << 10);
    let body = if sent < length {
        // The promised length never arrives: the server closes the connection mid-body. The pause lets
        // the status line and the bytes before the cut reach the client first, as on a real network.
        let failure = futures_util::stream::once(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(std::io::Error::other(
                "connection closed by fault injection",
            ))
        });
        Body::from_stream(stream.chain(failure))
    } else {
        Body::from_stream(stream)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jsonl"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(value) = HeaderValue::from_str(&length.to_string()) {
        headers.insert(header::CONTENT_LENGTH, value);
    }
    if let Ok(value) = HeaderValue::from_str(&size.to_string()) {
        headers.insert("x-goog-stored-content-length", value);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(value) =
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end.saturating_sub(1)))
    {
        headers.insert(header::CONTENT_RANGE, value);
    }
    if let Some(value) = param("response-content-disposition")
        .and_then(|disposition| HeaderValue::from_str(disposition).ok())
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// `bytes=N-` or `bytes=N-M` → `Ok((start, end_exclusive))`; `Err` when it starts past the end; `None`
/// for headers this server ignores (as storage does: it then sends the whole object).
fn parse_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end = match end.trim() {
        "" => size,
        text => text.parse::<u64>().ok()?.saturating_add(1).min(size),
    };
    if start >= size || start >= end {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=10-", 100), Some(Ok((10, 100))));
        assert_eq!(parse_range("bytes=10-19", 100), Some(Ok((10, 20))));
        assert_eq!(parse_range("bytes=10-500", 100), Some(Ok((10, 100))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("items=1-", 100), None);
    }

    #[test]
    fn scattering_keeps_every_line_once() {
        let lines: Vec<jsonl::Line> = (0..100)
            .map(|index| jsonl::Line {
                text: index.to_string(),
                parent: (index % 4 != 0).then(|| "p".to_owned()),
            })
            .collect();
        let mut carry = Vec::new();
        let mut out = scatter(lines, 9, &mut carry);
        out.append(&mut carry);
        let mut texts: Vec<u64> = out.iter().map(|line| line.text.parse().unwrap()).collect();
        texts.sort_unstable();
        assert_eq!(texts, (0..100).collect::<Vec<_>>());
    }
}
