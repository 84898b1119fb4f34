//! Packed pages of sales lines and daily sales: many records per SQLite row, so an import of a
//! million lines writes a few thousand rows instead of two million.
//!
//! - `line_pages(tenant_id, day, bucket, lines)`: the stored sales lines of one local day whose
//!   key's top 8 bits are `bucket`, sorted by key; 40 bytes a line.
//! - `day_pages(tenant_id, day, bucket, cells)`: net units and revenue of one local day for the
//!   series whose id shifted right by [`SERIES_BUCKET_BITS`] is `bucket`, sorted by series; 24 bytes
//!   a series-day.
//!
//! Records are little-endian and fixed-size; a page whose length is not a whole number of records
//! is reported as corrupt, never guessed at.

use crate::store::StoreError;

/// Series per daily-sales page: `series_id >> SERIES_BUCKET_BITS` is the page's bucket.
pub(super) const SERIES_BUCKET_BITS: u32 = 10;

/// The page bucket of a line key: its top 8 bits (256 pages per day at most).
pub(super) fn line_bucket(key: i64) -> i64 {
    i64::from((key as u64 >> 56) as u8)
}

/// The page bucket of a series.
pub(super) fn series_bucket(series: i64) -> i64 {
    series >> SERIES_BUCKET_BITS
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Unavailable(format!("stored {what} page is corrupt").into())
}

fn i64_at(bytes: &[u8], at: usize) -> i64 {
    let mut buffer = [0u8; 8];
    buffer.copy_from_slice(&bytes[at..at + 8]);
    i64::from_le_bytes(buffer)
}

fn f64_at(bytes: &[u8], at: usize) -> f64 {
    f64::from_bits(i64_at(bytes, at) as u64)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut buffer = [0u8; 4];
    buffer.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(buffer)
}

/// One stored sales line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct LineRecord {
    /// The line identity's key for its occurrence (see `LineIdentity::key`).
    pub key: i64,
    pub series: i64,
    pub units: f64,
    pub revenue: f64,
    /// The upload that first stored the line.
    pub upload: u32,
    /// The last upload that presented it: tells repeats within one upload (separate sales) from
    /// lines an earlier upload brought (duplicates).
    pub seen: u32,
}

const LINE_BYTES: usize = 40;

pub(super) fn decode_lines(bytes: &[u8]) -> Result<Vec<LineRecord>, StoreError> {
    if !bytes.len().is_multiple_of(LINE_BYTES) {
        return Err(corrupt("sales line"));
    }
    Ok(bytes
        .chunks_exact(LINE_BYTES)
        .map(|record| LineRecord {
            key: i64_at(record, 0),
            series: i64_at(record, 8),
            units: f64_at(record, 16),
            revenue: f64_at(record, 24),
            upload: u32_at(record, 32),
            seen: u32_at(record, 36),
        })
        .collect())
}

pub(super) fn encode_lines(records: &[LineRecord]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(records.len() * LINE_BYTES);
    for record in records {
        bytes.extend_from_slice(&record.key.to_le_bytes());
        bytes.extend_from_slice(&record.series.to_le_bytes());
        bytes.extend_from_slice(&record.units.to_le_bytes());
        bytes.extend_from_slice(&record.revenue.to_le_bytes());
        bytes.extend_from_slice(&record.upload.to_le_bytes());
        bytes.extend_from_slice(&record.seen.to_le_bytes());
    }
    bytes
}

/// Net sales of one series on one day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cell {
    pub series: i64,
    pub units: f64,
    pub revenue: f64,
}

const CELL_BYTES: usize = 24;

/// Calls `visit` for each cell of a daily-sales page, in series order.
pub(super) fn for_each_cell(bytes: &[u8], mut visit: impl FnMut(Cell)) -> Result<(), StoreError> {
    if !bytes.len().is_multiple_of(CELL_BYTES) {
        return Err(corrupt("daily sales"));
    }
    for record in bytes.chunks_exact(CELL_BYTES) {
        visit(Cell {
            series: i64_at(record, 0),
            units: f64_at(record, 8),
            revenue: f64_at(record, 16),
        });
    }
    Ok(())
}

fn push_cell(bytes: &mut Vec<u8>, cell: Cell) {
    bytes.extend_from_slice(&cell.series.to_le_bytes());
    bytes.extend_from_slice(&cell.units.to_le_bytes());
    bytes.extend_from_slice(&cell.revenue.to_le_bytes());
}

/// A daily-sales page of `cells` (sorted by series).
pub(super) fn encode_cells(cells: &[Cell]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(cells.len() * CELL_BYTES);
    for cell in cells {
        push_cell(&mut bytes, *cell);
    }
    bytes
}

/// Adds `deltas` (sorted by series, one per series) into the page `bytes`; returns the new page.
pub(super) fn merge_cells(bytes: &[u8], deltas: &[Cell]) -> Result<Vec<u8>, StoreError> {
    let mut stored = Vec::with_capacity(bytes.len() / CELL_BYTES);
    for_each_cell(bytes, |cell| stored.push(cell))?;
    let mut merged = Vec::with_capacity((stored.len() + deltas.len()) * CELL_BYTES);
    let mut push = |cell: Cell| push_cell(&mut merged, cell);
    let (mut left, mut right) = (stored.into_iter().peekable(), deltas.iter().peekable());
    loop {
        match (left.peek(), right.peek()) {
            (Some(old), Some(new)) if old.series == new.series => {
                push(Cell {
                    series: old.series,
                    units: old.units + new.units,
                    revenue: old.revenue + new.revenue,
                });
                left.next();
                right.next();
            }
            (Some(old), Some(new)) if old.series < new.series => {
                push(*old);
                left.next();
            }
            (_, Some(new)) => {
                push(**new);
                right.next();
            }
            (Some(old), None) => {
                push(*old);
                left.next();
            }
            (None, None) => break,
        }
    }
    Ok(merged)
}

/// A line page being changed by one write: the stored records (sorted by key) plus the ones
/// added since it was read.
#[derive(Debug, Default)]
pub(super) struct LinePage {
    stored: Vec<LineRecord>,
    added: foldhash::HashMap<i64, LineRecord>,
    pub dirty: bool,
}

impl LinePage {
    pub fn new(stored: Vec<LineRecord>) -> Self {
        Self {
            stored,
            added: foldhash::HashMap::default(),
            dirty: false,
        }
    }

    /// The record with `key`, if stored or added.
    pub fn get_mut(&mut self, key: i64) -> Option<&mut LineRecord> {
        match self.stored.binary_search_by_key(&key, |record| record.key) {
            Ok(position) => Some(&mut self.stored[position]),
            Err(_) => self.added.get_mut(&key),
        }
    }

    /// Adds a record whose key is in neither part.
    pub fn insert(&mut self, record: LineRecord) {
        self.added.insert(record.key, record);
        self.dirty = true;
    }

    /// Bytes this page holds in memory, roughly.
    pub fn size(&self) -> usize {
        (self.stored.len() + self.added.len() * 2) * LINE_BYTES
    }

    /// The page's records, sorted by key, encoded.
    pub fn encode(self) -> Vec<u8> {
        let mut added: Vec<LineRecord> = self.added.into_values().collect();
        added.sort_unstable_by_key(|record| record.key);
        let mut all = Vec::with_capacity(self.stored.len() + added.len());
        let (mut left, mut right) = (
            self.stored.into_iter().peekable(),
            added.into_iter().peekable(),
        );
        loop {
            let take_left = match (left.peek(), right.peek()) {
                (Some(old), Some(new)) => old.key < new.key,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let next = if take_left { left.next() } else { right.next() };
            all.extend(next);
        }
        encode_lines(&all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(key: i64, units: f64) -> LineRecord {
        LineRecord {
            key,
            series: 7,
            units,
            revenue: units * 2.5,
            upload: 1,
            seen: 3,
        }
    }

    #[test]
    fn line_pages_round_trip_sorted_whatever_the_insert_order() {
        let mut page = LinePage::new(vec![line(-5, 1.0), line(10, 2.0)]);
        page.insert(line(i64::MAX, 3.0));
        page.insert(line(0, 4.0));
        page.insert(line(i64::MIN, 5.0));
        page.get_mut(10).unwrap().units = 6.0;
        page.get_mut(0).unwrap().seen = 9;
        assert!(page.get_mut(1).is_none());
        let decoded = decode_lines(&page.encode()).unwrap();
        let keys: Vec<i64> = decoded.iter().map(|record| record.key).collect();
        assert_eq!(keys, [i64::MIN, -5, 0, 10, i64::MAX]);
        assert_eq!(decoded[3].units, 6.0);
        assert_eq!(decoded[2].seen, 9);
        assert_eq!(decoded[4], line(i64::MAX, 3.0));
    }

    #[test]
    fn cells_merge_by_series_and_keep_both_sides() {
        let cell = |series, units| Cell {
            series,
            units,
            revenue: units * 10.0,
        };
        let first = merge_cells(&[], &[cell(2, 1.0), cell(5, 2.0)]).unwrap();
        let second = merge_cells(&first, &[cell(1, 1.0), cell(5, -0.5), cell(9, 4.0)]).unwrap();
        let mut cells = Vec::new();
        for_each_cell(&second, |cell| cells.push(cell)).unwrap();
        assert_eq!(
            cells,
            [cell(1, 1.0), cell(2, 1.0), cell(5, 1.5), cell(9, 4.0)]
        );
    }

    #[test]
    fn torn_pages_are_corrupt_not_misread() {
        assert!(decode_lines(&[0u8; 41]).is_err());
        assert!(for_each_cell(&[0u8; 23], |_| {}).is_err());
    }

    #[test]
    fn buckets_use_the_top_bits() {
        assert_eq!(line_bucket(0), 0);
        assert_eq!(line_bucket(-1), 255);
        assert_eq!(line_bucket(i64::MAX), 127);
        assert_eq!(series_bucket(1023), 0);
        assert_eq!(series_bucket(1024), 1);
    }
}
