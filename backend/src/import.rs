//! The CSV import use case, shared by the HTTP API and the CLI: a reader thread parses rows into
//! batches while the store commits the previous batch, so parsing and writing overlap and memory
//! stays bounded by a few batches whatever the file size.

use std::io::Read;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use rand::RngCore;
use tokio::sync::mpsc;

use crate::csv::reader::ReadError;
use crate::csv::{BatchBuilder, DateOrder, ReadOptions, SalesReader};
use crate::domain::{LineSorter, SalesBatch, Tenant};
use crate::store::{ImportReport, RowError, Store, StoreError, UploadStatus};

/// How the reader cuts a file into batches (store writes).
#[derive(Debug, Clone, Copy)]
struct BatchLimits {
    /// Most lines per batch: large enough that commits are rare and a day's pages are rewritten
    /// by few batches (files are usually in date order), small enough to bound memory.
    lines: usize,
    /// Most memory one batch holds (lines, series and their texts): bounds files of many series.
    bytes: usize,
    /// Lines in the first batch; each next batch doubles until `lines`. The writer starts on a
    /// small batch after a few milliseconds instead of waiting for a full one, which matters for
    /// the files of a few hundred thousand lines where one full batch is a large part of the whole.
    first_lines: usize,
    /// Lines per day a batch must average, at least, to end early at a day's start (see
    /// [`BatchLimits::ends_days`]).
    day_run_lines: usize,
}

impl BatchLimits {
    const IMPORT: Self = Self {
        lines: 262_144,
        bytes: 24 << 20,
        first_lines: 16_384,
        day_run_lines: 1024,
    };

    /// Whether a batch of `lines` whose last line is the first of a later day is sent already: in
    /// a file in date order, a batch that ends where a day begins leaves every earlier day's pages
    /// written once, instead of a day split between two batches being read, decoded and written
    /// again by the second (the batch holds one line of the new day, whose few pages are cheap to
    /// redo). Only past half the batch size, and only when the date changed rarely in the batch
    /// (at most once per `day_run_lines`): files out of date order keep full batches.
    fn ends_days(&self, lines: usize, batch_lines: usize, date_changes: usize) -> bool {
        lines >= batch_lines / 2 && date_changes.saturating_mul(self.day_run_lines) <= lines
    }
}

/// Batches parsed ahead of the writer, at most. A file's first batches bring most of its new
/// series, which the writer is slow to create, so the parser runs ahead then, and the writer
/// catches up on the later batches; with one batch ahead, the parser stalled early and the writer
/// waited later (a 1M-row import's median 0.43 → 0.39 s with four).
const BATCHES_AHEAD: usize = 4;
/// Bytes the batches waiting for the writer may hold (lines and the series they list first), at
/// most; one larger batch still goes, alone. The first batches of a file are small (16,384 lines,
/// doubling), so four of them fit; a file of very many series makes batches of ~24 MB of series,
/// and one waits at a time, as before: with four, 2M distinct series peaked at 251 MB instead of 207.
const AHEAD_BYTES: usize = 32 << 20;
/// Row errors kept in a report.
pub const MAX_REPORTED_ERRORS: usize = 100;

/// Bytes of batches parsed but not yet taken by the writer (see [`AHEAD_BYTES`]).
struct Budget {
    held: std::sync::Mutex<usize>,
    freed: std::sync::Condvar,
    limit: usize,
}

/// A batch's share of the [`Budget`], given back when dropped.
struct Held {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Budget {
    fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            held: std::sync::Mutex::new(0),
            freed: std::sync::Condvar::new(),
            limit,
        })
    }

    /// Takes `bytes` (at most the whole budget) once they fit, waiting for batches to be taken.
    fn hold(self: &Arc<Self>, bytes: usize) -> Held {
        let bytes = bytes.min(self.limit);
        let mut held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while *held + bytes > self.limit {
            held = self
                .freed
                .wait(held)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *held += bytes;
        Held {
            budget: Arc::clone(self),
            bytes,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self
            .budget
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *held -= self.bytes;
        self.budget.freed.notify_all();
    }
}

/// The parser's end of the batch channel: a batch waits for room in the budget, then for a place
/// in the channel.
struct Ahead {
    sender: mpsc::Sender<(SalesBatch, Held)>,
    budget: Arc<Budget>,
}

impl Ahead {
    /// Sends `batch`, which held `bytes` while it was built; `false` when the writer side is gone.
    fn send(&self, batch: SalesBatch, bytes: usize) -> bool {
        let held = self.budget.hold(bytes);
        self.sender.blocking_send((batch, held)).is_ok()
    }
}

/// What the client says about the file.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// The file's name, for the upload history.
    pub filename: Option<String>,
    /// How to read all-numeric dates.
    pub date_order: DateOrder,
}

/// Why an import did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file was refused as a whole; nothing was imported.
    #[error("{reason}")]
    Refused {
        /// The stored report of the refused upload.
        report: Box<ImportReport>,
        /// What was wrong.
        reason: String,
        /// Header columns looked for, per format (empty when the file was empty).
        looked_for: Vec<(&'static str, Vec<&'static str>)>,
    },
    /// Reading stopped part way; batches committed before stay imported.
    #[error("the upload broke off after {} rows: {reason}", report.rows_read)]
    Interrupted {
        /// The stored report, status `failed`.
        report: Box<ImportReport>,
        /// What broke.
        reason: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes a fresh upload id (`up_` + 20 hex digits).
pub(crate) fn new_upload_id() -> String {
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    format!("up_{}", hex::encode(bytes))
}

/// What the reader thread found besides the lines it sent.
#[derive(Default)]
struct Tally {
    format: Option<&'static str>,
    rows_read: u64,
    rows_rejected: u64,
    errors: Vec<RowError>,
    first_date: Option<NaiveDate>,
    last_date: Option<NaiveDate>,
}

impl Tally {
    fn reject(&mut self, error: RowError) {
        self.rows_rejected += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(error);
        }
    }

    fn accept(&mut self, date: NaiveDate) {
        self.first_date = Some(self.first_date.map_or(date, |first| first.min(date)));
        self.last_date = Some(self.last_date.map_or(date, |last| last.max(date)));
    }
}

/// Imports one sales file for `tenant`, recording the upload and its report in the store.
///
/// # Errors
/// `Refused` when the header matches no format (or the file is empty), `Interrupted` when the input
/// breaks part way, `Store` when storage fails. In every case the upload's report is stored.
pub async fn import_sales<R>(
    store: Arc<dyn Store>,
    tenant: &Tenant,
    input: R,
    request: ImportRequest,
) -> Result<ImportReport, ImportError>
where
    R: Read + Send + 'static,
{
    let mut report = ImportReport::running(new_upload_id(), request.filename.clone());
    store.begin_upload(&tenant.id, &report).await?;

    let options = ReadOptions {
        timezone: tenant.timezone,
        date_order: request.date_order,
        identity: tenant.identity,
    };
    let (sender, mut received) = mpsc::channel(BATCHES_AHEAD);
    let batches = Ahead {
        sender,
        budget: Budget::new(AHEAD_BYTES),
    };
    let reader = tokio::task::spawn_blocking(move || {
        read_batches(input, options, &batches, BatchLimits::IMPORT)
    });

    let mut store_error = None;
    while let Some((batch, held)) = received.recv().await {
        // Taken: the parser may fill the room it held.
        drop(held);
        match store
            .write_sales(&tenant.id, &report.upload_id, batch)
            .await
        {
            Ok(written) => {
                report.rows_imported += written.imported;
                report.rows_duplicate += written.duplicate;
                report.rows_updated += written.updated;
            }
            Err(error) => {
                store_error = Some(error);
                break;
            }
        }
    }
    // Dropping the receiver stops the reader at its next batch if we stopped early.
    drop(received);
    let (tally, read_result) = reader
        .await
        .map_err(|error| StoreError::Unavailable(Box::new(error)))?;

    report.format = tally.format.map(str::to_owned);
    report.rows_read = tally.rows_read;
    report.rows_rejected = tally.rows_rejected;
    report.errors = tally.errors;
    report.first_date = tally.first_date;
    report.last_date = tally.last_date;
    report.finished_at = Some(Utc::now());

    if let Some(error) = store_error {
        report.status = UploadStatus::Failed;
        let _ = store.finish_upload(&tenant.id, &report).await;
        return Err(ImportError::Store(error));
    }
    match read_result {
        Ok(()) => {
            report.status = UploadStatus::Complete;
            store.finish_upload(&tenant.id, &report).await?;
            tracing::info!(
                tenant_id = %tenant.id,
                upload_id = %report.upload_id,
                rows_read = report.rows_read,
                rows_imported = report.rows_imported,
                rows_rejected = report.rows_rejected,
                "upload imported"
            );
            Ok(report)
        }
        Err(ReadError::Io(error)) => {
            report.status = UploadStatus::Failed;
            store.finish_upload(&tenant.id, &report).await?;
            Err(ImportError::Interrupted {
                report: Box::new(report),
                reason: error.to_string(),
            })
        }
        Err(error) => {
            let looked_for = match &error {
                ReadError::Header(_) => crate::csv::HeaderError::looked_for(),
                _ => Vec::new(),
            };
            report.status = UploadStatus::Refused;
            report.errors = vec![RowError {
                line: 1,
                column: None,
                message: error.to_string(),
            }];
            store.finish_upload(&tenant.id, &report).await?;
            Err(ImportError::Refused {
                report: Box::new(report),
                reason: error.to_string(),
                looked_for,
            })
        }
    }
}

/// The reader thread: parses rows, sends full batches, and returns what it counted.
fn read_batches<R: Read + Send + 'static>(
    input: R,
    options: ReadOptions,
    batches: &Ahead,
    limits: BatchLimits,
) -> (Tally, Result<(), ReadError>) {
    let mut tally = Tally::default();
    let mut reader = match SalesReader::new(input, options).and_then(SalesReader::parsing_ahead) {
        Ok(reader) => reader,
        Err(error) => return (tally, Err(error)),
    };
    tally.format = Some(reader.format().name());
    let mut batch = BatchBuilder::with_capacity(limits.lines);
    // Each batch leaves in the store's merge order (see `SalesBatch::sort_lines`); the buffer its
    // lines were parsed into holds the next batch's.
    let mut sorter = LineSorter::default();
    let mut send = |batch: &mut BatchBuilder| {
        let bytes = batch.size_bytes();
        let mut taken = batch.take();
        if let Some(unsorted) = taken.sort_lines_with(&mut sorter) {
            batch.recycle(unsorted);
        }
        batches.send(taken, bytes)
    };
    let mut batch_lines = limits.first_lines;
    // The date of the row before, and how often the date changed within this batch.
    let mut last_date = None;
    let mut date_changes = 0usize;
    while let Some(row) = reader.read_into(&mut batch) {
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                // What was parsed before the break is still worth storing.
                send(&mut batch);
                return (tally, Err(ReadError::Io(error)));
            }
        };
        tally.rows_read += 1;
        match row {
            Ok(date) => {
                tally.accept(date);
                let next_day = last_date.is_some_and(|last| date > last);
                if last_date != Some(date) {
                    date_changes += 1;
                    last_date = Some(date);
                }
                let full = batch.len() >= batch_lines
                    || batch.size_bytes() >= limits.bytes
                    || batch.list_full()
                    || (next_day && limits.ends_days(batch.len(), batch_lines, date_changes));
                if full {
                    date_changes = 0;
                    if !send(&mut batch) {
                        return (tally, Ok(()));
                    }
                    batch_lines = (batch_lines * 2).min(limits.lines);
                }
            }
            Err(error) => tally.reject(error),
        }
    }
    if !batch.is_empty() {
        send(&mut batch);
    }
    (tally, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes of the batches `csv` is cut into with small limits, and each batch's dates.
    fn batches_of(csv: String) -> Vec<Vec<NaiveDate>> {
        let limits = BatchLimits {
            lines: 32,
            bytes: 1 << 20,
            first_lines: 32,
            day_run_lines: 4,
        };
        let (sender, mut receiver) = mpsc::channel(64);
        let ahead = Ahead {
            sender,
            budget: Budget::new(usize::MAX / 2),
        };
        let (tally, result) = read_batches(
            std::io::Cursor::new(csv.into_bytes()),
            ReadOptions::default(),
            &ahead,
            limits,
        );
        result.unwrap();
        assert_eq!(tally.rows_rejected, 0);
        drop(ahead);
        let mut batches = Vec::new();
        while let Ok((batch, _)) = receiver.try_recv() {
            batches.push(batch.lines.iter().map(|line| line.date).collect());
        }
        batches
    }

    fn csv(days: impl Iterator<Item = u32>) -> String {
        let mut csv = String::from("date,sku,qty\n");
        for (row, day) in days.enumerate() {
            csv.push_str(&format!("2024-01-{day:02},S{row},1\n"));
        }
        csv
    }

    #[test]
    fn a_file_in_date_order_is_cut_where_days_begin_past_half_a_batch() {
        // Five days of ten rows: a batch ends with the first row of the day that starts after
        // its 16th line, so no day but that first row's is split between batches.
        let batches = batches_of(csv((1..=5).flat_map(|day| std::iter::repeat_n(day, 10))));
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [21, 20, 9]);
        for pair in batches.windows(2) {
            let (before, after) = (&pair[0], &pair[1]);
            let boundary = *before.last().unwrap();
            assert!(before[..before.len() - 1].iter().all(|day| *day < boundary));
            assert!(after.iter().all(|day| *day >= boundary));
        }
    }

    #[test]
    fn batches_wait_for_room_in_the_budget_and_one_larger_batch_goes_alone() {
        let budget = Budget::new(100);
        let first = budget.hold(60);
        let (taken, held) = std::sync::mpsc::channel();
        let waiter = {
            let budget = Arc::clone(&budget);
            std::thread::spawn(move || {
                let second = budget.hold(50);
                taken.send(()).unwrap();
                // Larger than the whole budget: it waits for everything else to be given back.
                drop(second);
                let large = budget.hold(1_000);
                assert_eq!(large.bytes, 100);
            })
        };
        assert!(
            held.recv_timeout(std::time::Duration::from_millis(50))
                .is_err(),
            "60 + 50 bytes do not fit in 100"
        );
        drop(first);
        held.recv_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        waiter.join().unwrap();
        assert_eq!(*budget.held.lock().unwrap(), 0);
    }

    #[test]
    fn a_file_out_of_date_order_keeps_full_batches() {
        let batches = batches_of(csv((0..50).map(|row| row % 5 + 1)));
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [32, 18]);
    }
}
