//! The receipt journal: where a server's webhook receipts become durable before they are answered.
//!
//! Writing a receipt straight into the delivery log costs the SQLite writer a transaction of
//! random index pages and a sync per group of receipts, and every other write (outbox, consumers,
//! imports, checkpoints) waits in the same line: at a few thousand deliveries a second the writer
//! was busy ~93 % of the time and a receipt's latency followed its queue. The journal takes that
//! off the answer's path. One thread appends each group of receipts to a file beside the database
//! (`<database>-receipts`) with one write and one `fdatasync`, answers them, and hands them to the
//! writer, which copies them into the log in large groups and records, in the same transaction,
//! the last record it copied (`receipt_journal.ingested`).
//!
//! - **Answers stay exact.** The journal thread classifies each receipt (new, redelivery of a
//!   webhook id, duplicate of an event) against the receipts it holds that are not in the log yet,
//!   then against the log itself; it is the only place receipts enter, so the classification is the
//!   one the writer's copy makes (see [`super::deliveries::put_delivery`]). Only an erasure or a
//!   retention purge removing the first delivery between the answer and the copy makes them
//!   differ: the answer said redelivery, the copy stores it anew, as the log then requires.
//! - **Reads see every answered receipt.** The store's reads and writes wait until the writer has
//!   copied every receipt answered before they began ([`Journal::settled`]).
//! - **Nothing answered is lost.** A record is `magic, length, sequence number, checksum,
//!   receipt`; numbers run on by one. After a crash, whoever opens the database next copies the
//!   records past `ingested` (stopping at the first record that is torn, fails its checksum or
//!   breaks the sequence) before anything else, in one transaction.
//! - **The file stays small.** Once the writer has copied everything, the next group is written
//!   at the start of the file again, over blocks already allocated (an overwrite's sync needs no
//!   metadata: p50 ~170 µs on this kind of disk against ~250 µs for an append). Older records
//!   past the new ones never continue the sequence, so recovery stops before them. A clean stop
//!   empties the file.
//! - **One owner.** The journal holds an exclusive lock on its file for its lifetime. Another
//!   process (the CLI beside a running server) copies nothing and leaves it alone; without the
//!   lock the server would write receipts straight into the log, as before.
//! - **Bounded.** When the writer falls `MAX_LAG` receipts behind (its disk failing, or a flood
//!   far beyond what it can copy), new receipts are refused (503: Shopify retries) before any is
//!   journaled.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::{oneshot, watch};

use super::deliveries::{self, Receipt};
use super::{Command, Writer};
use crate::domain::DeliveryReceipt;
use crate::store::StoreError;

/// Marks the start of a record.
const MAGIC: u32 = 0x4A52_4E4F;
/// Magic, payload length, sequence number, checksum.
const HEADER: usize = 4 + 4 + 8 + 8;
/// Receipts answered but not yet in the log, past which new ones are refused.
const MAX_LAG: usize = 262_144;
/// Most receipts the writer copies in one transaction.
const MAX_INGEST: usize = 2_048;
/// Most receipts written to the file with one sync.
const MAX_GROUP: usize = 512;
/// The file is cut back to this length when it starts over past it (a flood let it grow).
const KEEP_BYTES: u64 = 16 * 1024 * 1024;
/// Largest payload a record may announce: a corrupt length ends recovery instead of allocating.
const MAX_PAYLOAD: usize = 64 * 1024 * 1024;
/// How long a failed copy waits before it is tried again.
const RETRY: Duration = Duration::from_millis(200);
/// How long a read waits for the writer to copy what was answered before it reads anyway.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);

/// The journal file of the database at `database`.
pub(super) fn path_of(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-receipts");
    PathBuf::from(name)
}

/// Opens the journal file, creating it, and takes its lock; `None` when another process holds it.
pub(super) fn lock(path: &Path) -> std::io::Result<Option<File>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(error)) => Err(error),
    }
}

/// Copies the records of `file` that the log does not have yet into it, in the writer's current
/// transaction; returns the last sequence number used (in the file or the log). The caller
/// commits, then empties the file.
pub(super) fn recover(writer: &mut Writer, file: &File) -> Result<u64, StoreError> {
    let ingested = deliveries::ingested(&writer.connection)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut last = ingested;
    let mut expected: Option<u64> = None;
    let mut copied = 0_u64;
    let mut chunk: Vec<Receipt> = Vec::new();
    while let Some((seq, payload)) = read_record(&mut reader)? {
        if expected.is_some_and(|expected| expected != seq) {
            break;
        }
        expected = Some(seq + 1);
        if seq <= ingested {
            continue;
        }
        let Some(receipt) = Receipt::decode(&payload) else {
            tracing::error!(
                seq,
                "receipt journal: a record with a valid checksum does not decode; recovery stops there"
            );
            break;
        };
        chunk.push(receipt);
        last = seq;
        if chunk.len() == MAX_INGEST {
            deliveries::ingest(writer, &chunk, last)?;
            copied += chunk.len() as u64;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        deliveries::ingest(writer, &chunk, last)?;
        copied += chunk.len() as u64;
    }
    if copied > 0 {
        tracing::warn!(
            copied,
            last,
            "receipt journal: copied receipts answered before a crash into the delivery log"
        );
    }
    Ok(last.max(ingested))
}

/// The next record: `None` at the end of the file or at the first record that is not whole.
fn read_record(reader: &mut impl Read) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let mut header = [0_u8; HEADER];
    if !read_exactly(reader, &mut header)? {
        return Ok(None);
    }
    let word = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().unwrap_or_default());
    let long = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or_default());
    let (magic, length, seq, checksum) = (word(0), word(4), long(8), long(16));
    let Ok(length) = usize::try_from(length) else {
        return Ok(None);
    };
    if magic != MAGIC || length > MAX_PAYLOAD {
        return Ok(None);
    }
    let mut payload = vec![0_u8; length];
    if !read_exactly(reader, &mut payload)? || checksum_of(seq, &payload) != checksum {
        return Ok(None);
    }
    Ok(Some((seq, payload)))
}

/// Fills `buffer`; `false` at the end of the file.
fn read_exactly(reader: &mut impl Read, buffer: &mut [u8]) -> Result<bool, StoreError> {
    match reader.read_exact(buffer) {
        Ok(()) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(error) => Err(StoreError::unavailable(error)),
    }
}

fn checksum_of(seq: u64, payload: &[u8]) -> u64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(&seq.to_le_bytes());
    hasher.update(payload);
    hasher.digest()
}

/// Empties the journal file, once the log has everything it held.
pub(super) fn empty(file: &File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.sync_all()
}

/// Appends one record to `out`.
fn put_record(out: &mut Vec<u8>, seq: u64, receipt: &Receipt) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    receipt.encode(out);
    let payload = &out[start + HEADER..];
    let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let checksum = checksum_of(seq, payload);
    out[start..start + 4].copy_from_slice(&MAGIC.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&length.to_le_bytes());
    out[start + 8..start + 16].copy_from_slice(&seq.to_le_bytes());
    out[start + 16..start + 24].copy_from_slice(&checksum.to_le_bytes());
}

/// Builds the writer's command that copies `receipts` (the records up to `upto`) into the log;
/// `done` hears how it ended, after the commit.
pub(super) type IngestCommand = fn(Vec<Arc<Receipt>>, u64, Done) -> Command;

/// Tells the journal how a copy ended; a copy dropped unrun (the writer stopping, a transaction
/// that could not begin) tells it so when dropped.
pub(super) struct Done {
    upto: u64,
    messages: Sender<Message>,
    published: Arc<watch::Sender<u64>>,
    told: bool,
}

impl Done {
    /// After the copy's commit (or its failure).
    pub(super) fn finish(mut self, outcome: Result<(), String>) {
        self.tell(outcome);
    }

    fn tell(&mut self, outcome: Result<(), String>) {
        if self.told {
            return;
        }
        self.told = true;
        let upto = self.upto;
        if outcome.is_ok() {
            // Readers waiting for these receipts go on at once.
            self.published.send_if_modified(|ingested| {
                let newer = *ingested < upto;
                *ingested = (*ingested).max(upto);
                newer
            });
        }
        let _ = self.messages.send(Message::Ingested(upto, outcome));
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        self.tell(Err("the writer dropped the copy unrun".into()));
    }
}

/// Where a receipt's answer goes.
type Answer = oneshot::Sender<Result<DeliveryReceipt, StoreError>>;

enum Message {
    Receipt(Box<Receipt>, Answer),
    Ingested(u64, Result<(), String>),
    Scrub(oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

/// A running journal (see the module's documentation).
pub(super) struct Journal {
    messages: Sender<Message>,
    /// The last sequence number answered.
    answered: Arc<AtomicU64>,
    /// The last sequence number the writer has committed to the log.
    ingested: watch::Receiver<u64>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Journal")
            .field("answered", &self.answered.load(Ordering::Relaxed))
            .field("ingested", &*self.ingested.borrow())
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Starts the journal's thread on `file` (locked, emptied by recovery) after sequence number
    /// `last`. `reader` reads the log to classify receipts; `commands` reach the writer.
    pub(super) fn start(
        file: File,
        last: u64,
        reader: Connection,
        commands: tokio::sync::mpsc::Sender<Command>,
        ingest: IngestCommand,
    ) -> Result<Self, StoreError> {
        let (messages, inbox) = std::sync::mpsc::channel();
        let answered = Arc::new(AtomicU64::new(last));
        let (published, ingested) = watch::channel(last);
        let state = State {
            file,
            offset: 0,
            next_seq: last + 1,
            waiting: VecDeque::new(),
            sent: 0,
            webhooks: HashMap::new(),
            events: HashMap::new(),
            in_flight: false,
            retry_at: None,
            reader,
            commands,
            ingest,
            messages: messages.clone(),
            published: Arc::new(published),
            answered: Arc::clone(&answered),
            buffer: Vec::new(),
            scrubs: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("receipt-journal".into())
            .spawn(move || state.run(&inbox))
            .map_err(StoreError::unavailable)?;
        Ok(Self {
            messages,
            answered,
            ingested,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The last sequence number answered, and the last the writer has copied into the log.
    pub(super) fn progress(&self) -> (u64, u64) {
        (
            self.answered.load(Ordering::Acquire),
            *self.ingested.borrow(),
        )
    }

    /// Journals `receipt` and answers how it was received, once it is on disk.
    pub(super) async fn append(&self, receipt: Receipt) -> Result<DeliveryReceipt, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.messages
            .send(Message::Receipt(Box::new(receipt), reply))
            .map_err(|_| StoreError::Unavailable("the receipt journal is stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the receipt journal stopped".into()))?
    }

    /// Waits until every receipt answered so far is in the log (at most `SETTLE_LIMIT`: a read
    /// during an outage of the writer goes on without the newest receipts).
    pub(super) async fn settled(&self) {
        let target = self.answered.load(Ordering::Acquire);
        if *self.ingested.borrow() >= target {
            return;
        }
        let mut ingested = self.ingested.clone();
        let wait = ingested.wait_for(|ingested| *ingested >= target);
        if tokio::time::timeout(SETTLE_LIMIT, wait).await.is_err() {
            tracing::warn!(
                target,
                "receipt journal: the log is behind the answered receipts; reading without them"
            );
        }
    }

    /// Empties the file once every receipt journaled so far is in the log (at most
    /// `SETTLE_LIMIT`; the file is emptied anyway the next time nothing is left to copy). The
    /// file keeps the bodies of copied receipts until they are overwritten: an erasure in the log
    /// (`shop/redact`, `customers/redact`) calls this so that no copy of what it erased stays
    /// behind in the journal.
    pub(super) async fn scrub(&self) {
        let (done, finished) = oneshot::channel();
        if self.messages.send(Message::Scrub(done)).is_err() {
            return;
        }
        if tokio::time::timeout(SETTLE_LIMIT, finished).await.is_err() {
            tracing::warn!(
                "receipt journal: receipts are still being copied; the file is emptied once they are"
            );
        }
    }

    /// Stops taking receipts, waits until the writer has every journaled one, then empties the
    /// file and releases it. (If the writer fails meanwhile, the records stay for recovery.)
    pub(super) async fn stop(&self) {
        let (done, finished) = oneshot::channel();
        if self.messages.send(Message::Stop(done)).is_ok() {
            let _ = finished.await;
        }
        super::join_thread(&self.thread).await;
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // A store dropped without `close`: the thread still hands the writer what it holds, then
        // ends (and with it its hold on the writer's queue).
        let (done, _) = oneshot::channel();
        let _ = self.messages.send(Message::Stop(done));
    }
}

/// A journaled receipt the writer has not committed yet.
struct Waiting {
    seq: u64,
    receipt: Arc<Receipt>,
    /// Its event ([`Receipt::event`]), as the journal's map holds it.
    event: Option<String>,
}

/// The journal thread's state.
struct State {
    file: File,
    /// Where the next group is written.
    offset: u64,
    next_seq: u64,
    /// Journaled receipts the writer has not committed, in order.
    waiting: VecDeque<Waiting>,
    /// How many of `waiting` (from the front) the writer has been given.
    sent: usize,
    /// Webhook ids and events of `waiting`, with their last sequence number.
    webhooks: HashMap<String, u64>,
    events: HashMap<String, u64>,
    in_flight: bool,
    retry_at: Option<Instant>,
    reader: Connection,
    commands: tokio::sync::mpsc::Sender<Command>,
    ingest: IngestCommand,
    messages: Sender<Message>,
    published: Arc<watch::Sender<u64>>,
    answered: Arc<AtomicU64>,
    buffer: Vec<u8>,
    /// Callers waiting for the file to be emptied (see [`Journal::scrub`]).
    scrubs: Vec<oneshot::Sender<()>>,
}

impl State {
    fn run(mut self, inbox: &Receiver<Message>) {
        let mut stopping: Option<oneshot::Sender<()>> = None;
        let mut group = Vec::with_capacity(MAX_GROUP);
        loop {
            if stopping.is_some() && self.waiting.is_empty() {
                break;
            }
            // Block until something happens; wake on time while a copy waits for the writer's
            // queue to have room or for its retry.
            let first = if self.sent < self.waiting.len() && !self.in_flight {
                let wait = self
                    .retry_at
                    .map_or(Duration::from_millis(1), |at| {
                        at.saturating_duration_since(Instant::now())
                    })
                    .max(Duration::from_micros(100));
                match inbox.recv_timeout(wait) {
                    Ok(message) => Some(message),
                    Err(RecvTimeoutError::Timeout) => None,
                    // The thread holds a sender itself, and a dropped `Journal` sends a stop.
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match inbox.recv() {
                    Ok(message) => Some(message),
                    Err(_) => break,
                }
            };
            let mut next = first;
            while let Some(message) = next.take() {
                match message {
                    Message::Receipt(receipt, reply) => {
                        if stopping.is_some() {
                            let _ = reply.send(Err(StoreError::Unavailable(
                                "the receipt journal is stopping".into(),
                            )));
                        } else {
                            group.push((receipt, reply));
                        }
                    }
                    Message::Ingested(upto, outcome) => self.ingested(upto, outcome, &stopping),
                    Message::Scrub(done) => self.scrubs.push(done),
                    Message::Stop(done) => stopping = Some(done),
                }
                if group.len() < MAX_GROUP {
                    next = inbox.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.write_group(&mut group);
            }
            self.dispatch();
            self.scrub_if_copied();
            if stopping.is_some() && self.retry_at.is_some() {
                // The writer failed while stopping: leave the rest for recovery.
                break;
            }
        }
        if self.waiting.is_empty() {
            self.empty_file();
        } else {
            tracing::error!(
                left = self.waiting.len(),
                "receipt journal: stopped with receipts not yet in the log; the next start copies them"
            );
        }
        if let Some(done) = stopping {
            let _ = done.send(());
        }
    }

    /// Classifies, journals and answers a group of receipts.
    fn write_group(&mut self, group: &mut Vec<(Box<Receipt>, Answer)>) {
        self.buffer.clear();
        let first_seq = self.next_seq;
        let mut accepted: Vec<(Waiting, DeliveryReceipt, Answer)> = Vec::with_capacity(group.len());
        // The group's lookups share one read transaction: SQLite drops a connection's page cache
        // whenever a read transaction starts after another connection committed, so one per
        // lookup read the index's upper pages afresh every time. (Still exact: the maps lose
        // entries only in `ingested`, after their commit, never during a group.)
        let snapshot = self.reader.execute_batch("BEGIN");
        for (receipt, reply) in group.drain(..) {
            if self.waiting.len() + accepted.len() >= MAX_LAG {
                let _ = reply.send(Err(StoreError::Unavailable(
                    "the delivery log is behind; retry later".into(),
                )));
                continue;
            }
            let seq = first_seq + accepted.len() as u64;
            let event = receipt.event();
            let class = match self.classify(&receipt, event.as_deref()) {
                Ok(class) => class,
                Err(error) => {
                    let _ = reply.send(Err(error));
                    continue;
                }
            };
            if class != DeliveryReceipt::Redelivery {
                if let Some(event) = &event {
                    self.events.entry(event.clone()).or_insert(seq);
                }
                self.webhooks.insert(receipt.webhook_id().to_owned(), seq);
            }
            put_record(&mut self.buffer, seq, &receipt);
            let receipt = Arc::from(receipt);
            accepted.push((
                Waiting {
                    seq,
                    receipt,
                    event,
                },
                class,
                reply,
            ));
        }
        if snapshot.is_ok()
            && let Err(error) = self.reader.execute_batch("COMMIT")
        {
            tracing::warn!(%error, "receipt journal: could not end a read transaction");
        }
        if accepted.is_empty() {
            return;
        }
        let written = self
            .file
            .write_all_at(&self.buffer, self.offset)
            .and_then(|()| self.file.sync_data());
        if let Err(error) = written {
            tracing::error!(%error, "receipt journal: write failed; the group is refused");
            for (waiting, _, reply) in accepted {
                self.forget(&waiting);
                let _ = reply.send(Err(StoreError::Unavailable(
                    "the receipt journal could not be written".into(),
                )));
            }
            return;
        }
        self.offset += self.buffer.len() as u64;
        self.next_seq += accepted.len() as u64;
        self.answered.store(self.next_seq - 1, Ordering::Release);
        for (waiting, class, reply) in accepted {
            self.waiting.push_back(waiting);
            let _ = reply.send(Ok(class));
        }
    }

    /// Takes a receipt's entries out of the maps, where they are its own (its sequence number).
    fn forget(&mut self, waiting: &Waiting) {
        let webhook_id = waiting.receipt.webhook_id();
        if self.webhooks.get(webhook_id) == Some(&waiting.seq) {
            self.webhooks.remove(webhook_id);
        }
        if let Some(event) = &waiting.event
            && self.events.get(event) == Some(&waiting.seq)
        {
            self.events.remove(event);
        }
    }

    /// How a receipt is received: against the journaled receipts first, then the log. (In this
    /// order: a receipt leaves the maps only after the writer committed it, so one that is not in
    /// the maps any more is seen by the read that follows.)
    fn classify(
        &self,
        receipt: &Receipt,
        event: Option<&str>,
    ) -> Result<DeliveryReceipt, StoreError> {
        if self.webhooks.contains_key(receipt.webhook_id())
            || deliveries::stored_id(&self.reader, receipt)?.is_some()
        {
            return Ok(DeliveryReceipt::Redelivery);
        }
        let Some(event) = event else {
            return Ok(DeliveryReceipt::Stored);
        };
        if self.events.contains_key(event) || deliveries::event_stored(&self.reader, receipt)? {
            return Ok(DeliveryReceipt::DuplicateEvent);
        }
        Ok(DeliveryReceipt::Stored)
    }

    /// The writer's answer to a copy.
    fn ingested(
        &mut self,
        upto: u64,
        outcome: Result<(), String>,
        stopping: &Option<oneshot::Sender<()>>,
    ) {
        self.in_flight = false;
        match outcome {
            Ok(()) => {
                self.retry_at = None;
                while let Some(waiting) = self.waiting.pop_front_if(|waiting| waiting.seq <= upto) {
                    self.forget(&waiting);
                    self.sent -= 1;
                }
                if self.waiting.is_empty() && self.offset > 0 {
                    self.start_over();
                }
            }
            Err(error) => {
                tracing::error!(%error, stopping = stopping.is_some(), "receipt journal: copying receipts into the log failed; retrying");
                self.sent = 0;
                self.retry_at = Some(Instant::now() + RETRY);
            }
        }
    }

    /// Empties the file for the callers of [`Journal::scrub`], once nothing in it waits to be
    /// copied.
    fn scrub_if_copied(&mut self) {
        if !self.scrubs.is_empty() && self.waiting.is_empty() {
            self.empty_file();
        }
    }

    /// Empties the file (nothing in it waits to be copied): the next group goes to its start, and
    /// the callers of [`Journal::scrub`] are answered.
    fn empty_file(&mut self) {
        if let Err(error) = empty(&self.file) {
            tracing::warn!(%error, "receipt journal: could not empty the file");
        }
        self.offset = 0;
        for done in self.scrubs.drain(..) {
            let _ = done.send(());
        }
    }

    /// Everything is in the log: the next group goes to the start of the file.
    fn start_over(&mut self) {
        if self.offset > KEEP_BYTES
            && let Err(error) = self.file.set_len(KEEP_BYTES)
        {
            tracing::warn!(%error, "receipt journal: could not shorten the file");
        }
        self.offset = 0;
    }

    /// Gives the writer the next receipts to copy, when it has none in hand.
    fn dispatch(&mut self) {
        if self.in_flight
            || self.sent == self.waiting.len()
            || self.retry_at.is_some_and(|at| Instant::now() < at)
            || self.commands.capacity() == 0
        {
            return;
        }
        let take = (self.waiting.len() - self.sent).min(MAX_INGEST);
        let receipts: Vec<Arc<Receipt>> = self
            .waiting
            .range(self.sent..self.sent + take)
            .map(|waiting| Arc::clone(&waiting.receipt))
            .collect();
        let upto = self.waiting[self.sent + take - 1].seq;
        let done = Done {
            upto,
            messages: self.messages.clone(),
            published: Arc::clone(&self.published),
            told: false,
        };
        let command = (self.ingest)(receipts, upto, done);
        // A command handed back (and dropped) tells the journal it failed, which retries it.
        match self.commands.try_send(command) {
            Ok(()) => {
                self.sent += take;
                self.in_flight = true;
            }
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                tracing::debug!("receipt journal: the writer's queue is full; the copy waits");
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
                tracing::error!(
                    "receipt journal: the writer is gone; the next start copies what is left"
                );
                self.retry_at = Some(Instant::now() + RETRY);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use chrono::Utc;

    use super::*;
    use crate::domain::{DeliveryFilter, DeliveryStatus, NewDelivery};
    use crate::shopify::shop::ShopDomain;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    fn delivery(webhook_id: &str, event_id: Option<&str>) -> NewDelivery {
        NewDelivery {
            webhook_id: webhook_id.into(),
            shop: ShopDomain::parse("journal.myshopify.com").unwrap(),
            topic: "orders/create".into(),
            api_version: "2026-01".into(),
            event_id: event_id.map(str::to_owned),
            triggered_at: event_id.map(|_| Utc::now()),
            received_at: Utc::now(),
            headers: vec![("x-shopify-topic".into(), "orders/create".into())],
            body: format!(r#"{{"id":"{webhook_id}","note":"{}"}}"#, "x".repeat(300)).into_bytes(),
        }
    }

    fn records(first_seq: u64, deliveries: &[NewDelivery]) -> Vec<u8> {
        let mut out = Vec::new();
        for (seq, delivery) in (first_seq..).zip(deliveries) {
            put_record(&mut out, seq, &Receipt::of(delivery).unwrap());
        }
        out
    }

    async fn stored(store: &SqliteStore) -> Vec<(String, DeliveryStatus, u32)> {
        let mut rows: Vec<_> = store
            .deliveries(&DeliveryFilter {
                limit: 1000,
                ..DeliveryFilter::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|record| (record.webhook_id, record.status, record.redeliveries))
            .collect();
        rows.sort_by(|left, right| left.0.cmp(&right.0));
        rows
    }

    #[test]
    fn a_receipt_round_trips_through_its_record_and_damage_is_refused() {
        let original = delivery("w-1", Some("e-1"));
        let mut out = records(7, std::slice::from_ref(&original));
        let (seq, payload) = read_record(&mut out.as_slice()).unwrap().unwrap();
        assert_eq!(seq, 7);
        let decoded = Receipt::decode(&payload).unwrap();
        let mut again = Vec::new();
        decoded.encode(&mut again);
        assert_eq!(again, payload);
        assert_eq!(decoded.webhook_id(), "w-1");
        assert_eq!(
            decoded.event().as_deref(),
            Some("journal.myshopify.com\norders/create\ne-1")
        );
        // A flipped payload byte fails the checksum; a cut record is not read.
        let last = out.len() - 1;
        out[last] ^= 1;
        assert!(read_record(&mut out.as_slice()).unwrap().is_none());
        out[last] ^= 1;
        assert!(read_record(&mut &out[..out.len() - 1]).unwrap().is_none());
        assert!(Receipt::decode(&payload[..payload.len() - 1]).is_none());
    }

    #[tokio::test]
    async fn records_a_crash_left_are_copied_once_up_to_the_first_torn_or_stale_one() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("store.sqlite3");
        // A server answered five receipts (a redelivery and a duplicate event among them) and
        // died before its writer copied any: the file holds them, then a torn sixth record, then
        // bytes of an older round.
        let answered = [
            delivery("w-1", Some("e-1")),
            delivery("w-2", Some("e-2")),
            delivery("w-1", Some("e-1")),
            delivery("w-3", Some("e-2")),
            delivery("w-4", None),
        ];
        let mut file = records(1, &answered);
        let torn = records(6, &[delivery("w-torn", None)]);
        file.extend_from_slice(&torn[..torn.len() / 2]);
        let mut stale = records(1, &[delivery("w-stale", None)]);
        stale.extend(records(2, &[delivery("w-stale-2", None)]));
        let mut whole = records(1, &answered);
        whole.extend(records(6, &[delivery("w-old", None)]));
        std::fs::File::create(path_of(&path))
            .unwrap()
            .write_all(&file)
            .unwrap();
        {
            let store = SqliteStore::open(&path).unwrap();
            let expected = vec![
                ("w-1".to_owned(), DeliveryStatus::Pending, 1),
                ("w-2".to_owned(), DeliveryStatus::Pending, 0),
                ("w-3".to_owned(), DeliveryStatus::Duplicate, 0),
                ("w-4".to_owned(), DeliveryStatus::Pending, 0),
            ];
            assert_eq!(stored(&store).await, expected);
            store.close().await;
        }
        // Emptied after the copy.
        assert_eq!(std::fs::metadata(path_of(&path)).unwrap().len(), 0);

        // The same five again (a copy of the file put back) plus records that break the sequence:
        // nothing is copied twice, nothing past the break is copied at all.
        let mut again = records(1, &answered);
        again.extend(records(9, &[delivery("w-after-gap", None)]));
        again.extend(stale);
        std::fs::write(path_of(&path), &again).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        let rows = stored(&store).await;
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert_eq!(rows[0], ("w-1".to_owned(), DeliveryStatus::Pending, 1));
        // A server starting on it goes on after the last number used.
        assert!(store.start_receipt_journal().await.unwrap());
        store.put_delivery(&delivery("w-5", None)).await.unwrap();
        store.close().await;
        drop(store);
        std::fs::write(path_of(&path), &whole).unwrap();
        let store = SqliteStore::open(&path).unwrap();
        let rows = stored(&store).await;
        // Record 6 of that older round is at or below what the log has: not copied.
        assert!(rows.iter().all(|(id, _, _)| id != "w-old"), "{rows:?}");
        assert_eq!(rows.len(), 5, "{rows:?}");
        store.close().await;
    }

    #[tokio::test]
    async fn the_server_that_takes_the_journal_releases_claims_a_stopped_one_left() {
        use crate::domain::DeliveryLease;
        let directory = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(directory.path().join("store.sqlite3")).unwrap();
        store
            .put_delivery(&delivery("w-claimed", None))
            .await
            .unwrap();
        let lease = |owner: &str| DeliveryLease {
            owner: owner.into(),
            until: Utc::now() + chrono::Duration::seconds(30),
        };
        let claim = |owner: &'static str| {
            let store = &store;
            async move {
                store
                    .claim_deliveries(&lease(owner), Utc::now(), 10, false)
                    .await
                    .unwrap()
                    .len()
            }
        };
        assert_eq!(claim("stopped").await, 1);
        assert_eq!(claim("next").await, 0, "claimed until the lease runs out");
        assert!(store.start_receipt_journal().await.unwrap());
        assert_eq!(claim("next").await, 1);
        store.close().await;
    }

    #[tokio::test]
    async fn an_erasure_leaves_no_copy_of_a_receipt_in_the_journal_file() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("store.sqlite3");
        let store = SqliteStore::open(&path).unwrap();
        assert!(store.start_receipt_journal().await.unwrap());
        let journal_bytes = || std::fs::read(path_of(&path)).unwrap();
        let holds = |bytes: &[u8], marker: &str| {
            bytes
                .windows(marker.len())
                .any(|window| window == marker.as_bytes())
        };
        let put = async |id: &str| store.put_delivery(&delivery(id, None)).await.unwrap();
        for id in ["w-erased-1", "w-erased-2"] {
            assert_eq!(put(id).await, DeliveryReceipt::Stored);
        }
        // Copied into the log, and still in the file until overwritten.
        assert_eq!(stored(&store).await.len(), 2);
        assert!(holds(&journal_bytes(), "w-erased-1"));
        let shop = ShopDomain::parse("journal.myshopify.com").unwrap();
        store.redact_customer(&shop, "42").await.unwrap();
        assert!(journal_bytes().is_empty());
        // The journal goes on from the start of the file.
        assert_eq!(put("w-after").await, DeliveryReceipt::Stored);
        let after = journal_bytes();
        assert!(holds(&after, "w-after") && !holds(&after, "w-erased-2"));
        store.erase_shop(&shop).await.unwrap();
        assert!(journal_bytes().is_empty());
        // Answers still come from the log after the file is emptied.
        assert_eq!(put("w-after").await, DeliveryReceipt::Redelivery);
        store.close().await;
    }

    #[tokio::test]
    async fn receipts_are_answered_exactly_and_read_back_at_once_while_the_writer_copies() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("store.sqlite3");
        let store = Arc::new(SqliteStore::open(&path).unwrap());
        assert!(store.start_receipt_journal().await.unwrap());
        // Another store on the same file (a command beside the server) neither copies nor takes
        // the journal.
        let beside = SqliteStore::open(&path).unwrap();
        let mut tasks = Vec::new();
        for round in 0..4 {
            for index in 0..200 {
                let store = Arc::clone(&store);
                // Rounds 1 and 3 resend round 0's webhook ids; round 2 sends new webhook ids for
                // round 0's events.
                let (webhook, event) = match round {
                    0 | 1 | 3 => (format!("w-{index}"), format!("e-{index}")),
                    _ => (format!("w2-{index}"), format!("e-{index}")),
                };
                tasks.push(tokio::spawn(async move {
                    (
                        round,
                        store
                            .put_delivery(&delivery(&webhook, Some(&event)))
                            .await
                            .unwrap(),
                    )
                }));
            }
            if round == 0 {
                // The first round answered before any other starts.
                for task in tasks.drain(..) {
                    assert_eq!(task.await.unwrap().1, DeliveryReceipt::Stored);
                }
            }
        }
        for task in tasks {
            let (round, receipt) = task.await.unwrap();
            let expected = if round == 2 {
                DeliveryReceipt::DuplicateEvent
            } else {
                DeliveryReceipt::Redelivery
            };
            assert_eq!(receipt, expected, "round {round}");
        }
        let rows = stored(&store).await;
        assert_eq!(rows.len(), 400);
        assert!(
            rows.iter()
                .all(|(id, status, redeliveries)| if id.starts_with("w2-") {
                    *status == DeliveryStatus::Duplicate && *redeliveries == 0
                } else {
                    *status == DeliveryStatus::Pending && *redeliveries == 2
                })
        );
        assert_eq!(stored(&beside).await.len(), 400);
        // Its metrics: 800 answered and copied (the listing above waited for the copies); the
        // store beside it has no journal and reports none.
        let mut metrics = String::new();
        store.write_journal_metrics(&mut metrics);
        for line in [
            "ordernimbus_webhook_receipts_journaled_total 800\n",
            "ordernimbus_webhook_receipts_copied_total 800\n",
            "ordernimbus_webhook_receipts_uncopied 0\n",
        ] {
            assert!(metrics.contains(line), "{metrics}");
        }
        let mut none = String::new();
        beside.write_journal_metrics(&mut none);
        assert!(none.is_empty());
        beside.close().await;
        store.close().await;
        assert_eq!(std::fs::metadata(path_of(&path)).unwrap().len(), 0);
    }
}
