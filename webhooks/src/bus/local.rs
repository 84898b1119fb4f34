//! `LocalBus`: a durable, in-process event bus for one machine. Published events are appended to a
//! log file (`events.log` in its directory: a 4-byte little-endian length, then the event's JSON)
//! and flushed to disk before `publish` returns; each consumer keeps its committed position in its
//! own file, written atomically. A crash loses nothing published: consumers resume from their last
//! committed position (so an event may be handled twice, and consumers are idempotent). Once every
//! event has been consumed the log is truncated, so it stays small.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ordernimbus_backend::bus::{BusError, Event, EventBus};
use tokio::sync::Notify;

/// The log is truncated once fully consumed and larger than this.
const COMPACT_BYTES: u64 = 8 * 1024 * 1024;
/// Largest record accepted when reading (a guard against a corrupt length).
const MAX_RECORD_BYTES: u32 = 64 * 1024 * 1024;

/// A durable in-process bus with one consumer position per consumer name.
pub struct LocalBus {
    dir: PathBuf,
    log: Arc<Mutex<Log>>,
    appended: Notify,
}

impl std::fmt::Debug for LocalBus {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LocalBus")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

struct Log {
    file: File,
    /// Bytes of whole records; a torn tail from a crash is cut off at open.
    len: u64,
    /// Bumped on every truncation so that readers holding old positions start again from zero.
    generation: u64,
}

impl Log {
    /// Where `position` reads from: a position from before a truncation stands for the new
    /// beginning.
    fn offset_of(&self, position: Position) -> u64 {
        if position.generation == self.generation {
            position.offset
        } else {
            0
        }
    }
}

/// A consumer's place in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Byte offset of the next unread record.
    pub offset: u64,
    generation: u64,
}

impl LocalBus {
    /// Opens (or creates) the bus in `dir`, cutting off a record torn by a crash.
    ///
    /// # Errors
    /// When the directory or log cannot be created or read.
    pub fn open(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join("events.log"))?;
        let len = whole_records_len(&mut file)?;
        if file.metadata()?.len() != len {
            file.set_len(len)?;
            file.sync_all()?;
        }
        Ok(Self {
            dir,
            log: Arc::new(Mutex::new(Log {
                file,
                len,
                generation: 0,
            })),
            appended: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        lock(&self.log)
    }

    fn offset_path(&self, consumer: &str) -> PathBuf {
        self.dir.join(format!("{consumer}.offset"))
    }

    /// Where `consumer` resumes: its last committed position (zero for a new consumer, or when
    /// the log was truncated since).
    ///
    /// # Errors
    /// When the position file cannot be read.
    pub fn resume(&self, consumer: &str) -> std::io::Result<Position> {
        let log = self.lock();
        let offset = match std::fs::read(self.offset_path(consumer)) {
            Ok(bytes) if bytes.len() == 8 => u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])),
            Ok(_) => 0,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error),
        };
        // A truncation after the position was written (crash between the two) starts over.
        let offset = if offset > log.len { 0 } else { offset };
        Ok(Position {
            offset,
            generation: log.generation,
        })
    }

    /// Up to `max` events from `position`, each with the position after it.
    ///
    /// # Errors
    /// When the log cannot be read or holds a corrupt record.
    pub fn read(&self, position: Position, max: usize) -> std::io::Result<Vec<(Event, Position)>> {
        let mut log = self.lock();
        let mut offset = log.offset_of(position);
        let generation = log.generation;
        let end = log.len;
        let mut events = Vec::new();
        log.file.seek(SeekFrom::Start(offset))?;
        while offset < end && events.len() < max {
            let mut length = [0u8; 4];
            log.file.read_exact(&mut length)?;
            let length = u32::from_le_bytes(length);
            let mut record = vec![0u8; length as usize];
            log.file.read_exact(&mut record)?;
            offset += 4 + u64::from(length);
            let event: Event = serde_json::from_slice(&record).map_err(std::io::Error::other)?;
            events.push((event, Position { offset, generation }));
        }
        Ok(events)
    }

    /// Records that `consumer` handled everything before `position` (written atomically and
    /// durably), and truncates the log when it is large and this consumer has read all of it.
    ///
    /// # Errors
    /// When the position cannot be written.
    pub fn commit(&self, consumer: &str, position: Position) -> std::io::Result<()> {
        let mut log = self.lock();
        if position.generation != log.generation {
            return Ok(());
        }
        let mut offset = position.offset;
        if offset == log.len && log.len > COMPACT_BYTES {
            log.file.set_len(0)?;
            log.file.sync_all()?;
            log.len = 0;
            log.generation += 1;
            offset = 0;
        }
        let path = self.offset_path(consumer);
        let temporary = path.with_extension("offset.tmp");
        let mut file = File::create(&temporary)?;
        file.write_all(&offset.to_le_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        File::open(&self.dir)?.sync_all()
    }

    /// Waits until something is published after `position` (or returns at once if it was). A
    /// position from before a truncation stands for the new beginning, as in `read`: an empty
    /// truncated log is waited on, not reported as news.
    pub async fn wait_beyond(&self, position: Position) {
        let notified = self.appended.notified();
        {
            let log = self.lock();
            if log.len > log.offset_of(position) {
                return;
            }
        }
        notified.await;
    }
}

fn lock(log: &Mutex<Log>) -> std::sync::MutexGuard<'_, Log> {
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Appends `events` after the last whole record and flushes them to disk.
fn append(log: &Mutex<Log>, events: &[Event]) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    for event in events {
        let json = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        let length = u32::try_from(json.len())
            .ok()
            .filter(|length| *length <= MAX_RECORD_BYTES)
            .ok_or_else(|| std::io::Error::other("event too large for the local bus"))?;
        buffer.extend_from_slice(&length.to_le_bytes());
        buffer.extend_from_slice(&json);
    }
    let mut log = lock(log);
    let end = log.len;
    log.file.seek(SeekFrom::Start(end))?;
    if let Err(error) = log
        .file
        .write_all(&buffer)
        .and_then(|()| log.file.sync_data())
    {
        // Leave no half-written records behind for readers.
        let _ = log.file.set_len(end);
        return Err(error);
    }
    log.len = end + buffer.len() as u64;
    Ok(())
}

/// The length of the whole records at the start of `file`.
fn whole_records_len(file: &mut File) -> std::io::Result<u64> {
    let total = file.metadata()?.len();
    file.seek(SeekFrom::Start(0))?;
    let mut offset = 0u64;
    loop {
        let mut length = [0u8; 4];
        if offset + 4 > total || file.read_exact(&mut length).is_err() {
            return Ok(offset);
        }
        let length = u32::from_le_bytes(length);
        let next = offset + 4 + u64::from(length);
        if length > MAX_RECORD_BYTES || next > total {
            return Ok(offset);
        }
        let mut record = vec![0u8; length as usize];
        file.read_exact(&mut record)?;
        if serde_json::from_slice::<serde_json::Value>(&record).is_err() {
            return Ok(offset);
        }
        offset = next;
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, events: &[Event]) -> Result<Vec<Result<(), BusError>>, BusError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let count = events.len();
        let owned = events.to_vec();
        let log = Arc::clone(&self.log);
        tokio::task::spawn_blocking(move || append(&log, &owned))
            .await
            .map_err(|error| BusError::Unavailable(error.to_string()))?
            .map_err(|error| BusError::Unavailable(format!("local bus log: {error}")))?;
        self.appended.notify_waiters();
        Ok((0..count).map(|_| Ok(())).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use ordernimbus_backend::bus::EventDetail;

    use super::*;

    fn event(id: &str) -> Event {
        Event::for_delivery(
            "orders/create",
            EventDetail {
                shop: "acme.myshopify.com".into(),
                webhook_id: id.into(),
                event_id: None,
                triggered_at: None,
                api_version: "2026-10".into(),
                payload: None,
                payload_by_reference: false,
            },
            br#"{"id": 1}"#,
        )
    }

    fn ids(events: &[(Event, Position)]) -> Vec<String> {
        events
            .iter()
            .map(|(event, _)| event.detail.webhook_id.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_consumer_resumes_after_its_last_committed_event_across_reopen() {
        let directory = tempfile::tempdir().unwrap();
        let bus = LocalBus::open(directory.path()).unwrap();
        bus.publish(&[event("a"), event("b"), event("c")])
            .await
            .unwrap();
        let start = bus.resume("consumers").unwrap();
        let read = bus.read(start, 2).unwrap();
        assert_eq!(ids(&read), ["a", "b"]);
        bus.commit("consumers", read[0].1).unwrap();
        drop(bus);
        let bus = LocalBus::open(directory.path()).unwrap();
        let resumed = bus.resume("consumers").unwrap();
        assert_eq!(ids(&bus.read(resumed, 10).unwrap()), ["b", "c"]);
        // Another consumer starts from the beginning.
        let other = bus.resume("audit").unwrap();
        assert_eq!(bus.read(other, 10).unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_record_torn_by_a_crash_is_cut_off_and_the_ones_before_survive() {
        let directory = tempfile::tempdir().unwrap();
        let bus = LocalBus::open(directory.path()).unwrap();
        bus.publish(&[event("a"), event("b")]).await.unwrap();
        drop(bus);
        let log = directory.path().join("events.log");
        let mut bytes = std::fs::read(&log).unwrap();
        let whole = bytes.len();
        bytes.extend_from_slice(&200u32.to_le_bytes());
        bytes.extend_from_slice(b"{\"source\":");
        std::fs::write(&log, &bytes).unwrap();
        let bus = LocalBus::open(directory.path()).unwrap();
        assert_eq!(std::fs::metadata(&log).unwrap().len(), whole as u64);
        let start = bus.resume("consumers").unwrap();
        assert_eq!(ids(&bus.read(start, 10).unwrap()), ["a", "b"]);
        bus.publish(&[event("c")]).await.unwrap();
        assert_eq!(ids(&bus.read(start, 10).unwrap()), ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn a_fully_consumed_large_log_is_truncated_and_reading_goes_on() {
        let directory = tempfile::tempdir().unwrap();
        let bus = Arc::new(LocalBus::open(directory.path()).unwrap());
        let big: Vec<Event> = (0..60)
            .map(|number| {
                let mut event = event(&format!("e{number}"));
                event.detail.payload = Some(serde_json::json!({ "note": "x".repeat(150_000) }));
                event
            })
            .collect();
        bus.publish(&big).await.unwrap();
        let start = bus.resume("consumers").unwrap();
        let read = bus.read(start, 100).unwrap();
        assert_eq!(read.len(), 60);
        let end = read.last().unwrap().1;
        bus.commit("consumers", end).unwrap();
        assert_eq!(
            std::fs::metadata(directory.path().join("events.log"))
                .unwrap()
                .len(),
            0
        );
        // Nothing new: a consumer holding the old position waits instead of spinning on an
        // empty log.
        let waiting = tokio::time::timeout(Duration::from_millis(200), bus.wait_beyond(end));
        assert!(waiting.await.is_err(), "woke with nothing published");
        let woken = tokio::spawn({
            let bus = Arc::clone(&bus);
            async move { bus.wait_beyond(end).await }
        });
        tokio::task::yield_now().await;
        bus.publish(&[event("after")]).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), woken)
            .await
            .expect("a publish wakes the waiting consumer")
            .unwrap();
        // A reader still holding the old position starts again from the new beginning.
        assert_eq!(ids(&bus.read(end, 10).unwrap()), ["after"]);
        assert_eq!(
            ids(&bus.read(bus.resume("consumers").unwrap(), 10).unwrap()),
            ["after"]
        );
    }
}
