//! Packed pages of sales lines and daily sales: many records per SQLite row, so an import of a
//! million lines writes a few thousand rows instead of two million.
//!
//! - `line_pages(tenant_id, day, bucket, lines)`: the stored sales lines of one local day whose
//!   key's top 8 bits are `bucket`, sorted by key.
//! - `day_pages(tenant_id, day, bucket, cells)`: net units and revenue of one local day for the
//!   series whose id shifted right by [`SERIES_BUCKET_BITS`] is `bucket`, sorted by series.
//!
//! Both are rowid tables with a `UNIQUE (tenant_id, day, bucket)` index, not `WITHOUT ROWID`
//! tables keyed by those columns: a page is kilobytes, and a `WITHOUT ROWID` B-tree keeps whole
//! rows in its cells, so each page spilled onto overflow pages and every key a lookup compared was
//! copied out with its page (migration 14; a 1M-row import's writer ran ~7 % fewer instructions).
//!
//! A page is a format byte followed by variable-length records: keys and series as distances
//! from the previous record's, whole numbers and hundredths as varints, any other number as its
//! raw bits, so every value reads back bit for bit (a typical line takes ~17 bytes, a cell ~7).
//! A page that ends inside a record, or holds an unknown tag, is reported as corrupt, never
//! guessed at.

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

/// The first byte of every page in the packed format.
const PACKED: u8 = 2;

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

/// Net sales of one series on one day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Cell {
    pub series: i64,
    pub units: f64,
    pub revenue: f64,
}

/// How a number is stored: a whole number, a number of hundredths (revenue in cents), a line's
/// units times a price in hundredths (how revenue is computed from a unit price), or its raw
/// bits. The first three are taken only when they give back the very same bits.
const WHOLE: u8 = 0;
const HUNDREDTHS: u8 = 1;
const RAW: u8 = 2;
const PRICED: u8 = 3;
/// Whole numbers and hundredths beyond this are not all exact in an `f64`.
const EXACT_LIMIT: u64 = 1 << 53;

fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// The integer nearest `value` (halves away from zero), as a candidate payload: every mode
/// checks that its payload gives the very same bits back, so a candidate that is off in the last
/// place (`value + 0.5` rounds past the next integer) only makes a number take the next mode. A
/// cast truncates in one instruction; `f64::round` is a call to the C library on this target.
fn nearest(value: f64) -> i64 {
    (value + 0.5_f64.copysign(value)) as i64
}

/// A number's storage mode and payload.
fn number_mode(value: f64) -> (u8, u64) {
    let whole = value as i64;
    if (whole as f64).to_bits() == value.to_bits() && whole.unsigned_abs() < EXACT_LIMIT {
        return (WHOLE, zigzag(whole));
    }
    let hundredths = nearest(value * 100.0);
    if (hundredths as f64 / 100.0).to_bits() == value.to_bits()
        && hundredths.unsigned_abs() < EXACT_LIMIT
    {
        return (HUNDREDTHS, zigzag(hundredths));
    }
    (RAW, value.to_bits())
}

/// A revenue's storage mode and payload, given the units it is the revenue of.
fn revenue_mode(revenue: f64, units: f64) -> (u8, u64) {
    let (mode, payload) = number_mode(revenue);
    if mode != RAW {
        return (mode, payload);
    }
    let price = nearest(revenue / units * 100.0);
    if (units * (price as f64 / 100.0)).to_bits() == revenue.to_bits()
        && price.unsigned_abs() < EXACT_LIMIT
    {
        return (PRICED, zigzag(price));
    }
    (RAW, payload)
}

fn put_varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn put_number(bytes: &mut Vec<u8>, (mode, payload): (u8, u64)) {
    if mode == RAW {
        bytes.extend_from_slice(&payload.to_le_bytes());
    } else {
        put_varint(bytes, payload);
    }
}

/// Reads a packed page front to back; every read fails on a page that ends too soon.
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader past the page's format byte.
    fn new(bytes: &'a [u8], what: &'static str) -> Result<Self, StoreError> {
        match bytes.split_first() {
            Some((&PACKED, rest)) => Ok(Self { bytes: rest, what }),
            _ => Err(corrupt(what)),
        }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn byte(&mut self) -> Result<u8, StoreError> {
        let (&first, rest) = self.bytes.split_first().ok_or_else(|| corrupt(self.what))?;
        self.bytes = rest;
        Ok(first)
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt(self.what))
    }

    fn small(&mut self) -> Result<u32, StoreError> {
        u32::try_from(self.varint()?).map_err(|_| corrupt(self.what))
    }

    /// A number stored in `mode`; `units` is the line's, for a revenue stored as a price.
    fn number(&mut self, mode: u8, units: f64) -> Result<f64, StoreError> {
        match mode {
            PRICED => Ok(units * (unzigzag(self.varint()?) as f64 / 100.0)),
            WHOLE => Ok(unzigzag(self.varint()?) as f64),
            HUNDREDTHS => Ok(unzigzag(self.varint()?) as f64 / 100.0),
            RAW => {
                let (raw, rest) = self
                    .bytes
                    .split_first_chunk::<8>()
                    .ok_or_else(|| corrupt(self.what))?;
                self.bytes = rest;
                Ok(f64::from_bits(u64::from_le_bytes(*raw)))
            }
            _ => Err(corrupt(self.what)),
        }
    }

    /// A record's tag: the modes of its units and revenue.
    fn modes(&mut self) -> Result<(u8, u8), StoreError> {
        let tag = self.byte()?;
        // Units are never stored as a price.
        if tag >> 4 != 0 || tag & 3 == PRICED {
            return Err(corrupt(self.what));
        }
        Ok((tag & 3, tag >> 2))
    }
}

/// A record's units and revenue, each with its storage mode and payload.
struct Amounts([(u8, u64); 2]);

impl Amounts {
    fn of(units: f64, revenue: f64) -> Self {
        Self([number_mode(units), revenue_mode(revenue, units)])
    }

    /// The record's tag: the modes of its units and revenue.
    fn tag(&self) -> u8 {
        self.0[0].0 | (self.0[1].0 << 2)
    }

    fn put(self, bytes: &mut Vec<u8>) {
        for amount in self.0 {
            put_number(bytes, amount);
        }
    }
}

/// Decodes a line page (records sorted by key).
///
/// Each record: a tag (the modes of units and revenue), the key's distance from the previous
/// key (varint), the series (zigzag varint), units, revenue, upload and seen (varints): ~17 bytes
/// for a typical line instead of 40.
pub(super) fn decode_lines(bytes: &[u8]) -> Result<Vec<LineRecord>, StoreError> {
    let mut reader = Reader::new(bytes, "sales line")?;
    let mut records = Vec::with_capacity(bytes.len() / 16);
    let mut key = i64::MIN;
    while !reader.is_empty() {
        let (units_mode, revenue_mode) = reader.modes()?;
        key = key.wrapping_add_unsigned(reader.varint()?);
        let series = unzigzag(reader.varint()?);
        let units = reader.number(units_mode, f64::NAN)?;
        records.push(LineRecord {
            key,
            series,
            units,
            revenue: reader.number(revenue_mode, units)?,
            upload: reader.small()?,
            seen: reader.small()?,
        });
    }
    Ok(records)
}

/// Encodes `records` (sorted by key) as a line page.
pub(super) fn encode_lines(records: &[LineRecord]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + records.len() * 20);
    bytes.push(PACKED);
    let mut previous = i64::MIN;
    for record in records {
        let amounts = Amounts::of(record.units, record.revenue);
        bytes.push(amounts.tag());
        put_varint(&mut bytes, record.key.wrapping_sub(previous) as u64);
        previous = record.key;
        put_varint(&mut bytes, zigzag(record.series));
        amounts.put(&mut bytes);
        put_varint(&mut bytes, u64::from(record.upload));
        put_varint(&mut bytes, u64::from(record.seen));
    }
    bytes
}

/// Calls `visit` for each cell of a daily-sales page, in series order.
///
/// Each cell: a tag (the modes of units and revenue), the series' distance from the previous
/// cell's (zigzag varint), units and revenue.
pub(super) fn for_each_cell(bytes: &[u8], mut visit: impl FnMut(Cell)) -> Result<(), StoreError> {
    let mut reader = Reader::new(bytes, "daily sales")?;
    let mut series = 0i64;
    while !reader.is_empty() {
        let (units_mode, revenue_mode) = reader.modes()?;
        series = series.wrapping_add(unzigzag(reader.varint()?));
        let units = reader.number(units_mode, f64::NAN)?;
        visit(Cell {
            series,
            units,
            revenue: reader.number(revenue_mode, units)?,
        });
    }
    Ok(())
}

/// A daily-sales page of `cells` (sorted by series).
pub(super) fn encode_cells(cells: &[Cell]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + cells.len() * 12);
    bytes.push(PACKED);
    let mut previous = 0i64;
    for cell in cells {
        let amounts = Amounts::of(cell.units, cell.revenue);
        bytes.push(amounts.tag());
        put_varint(&mut bytes, zigzag(cell.series.wrapping_sub(previous)));
        previous = cell.series;
        amounts.put(&mut bytes);
    }
    bytes
}

/// Adds `deltas` (sorted by series, one per series) into the stored page, if there is one;
/// returns the new page.
pub(super) fn merge_cells(stored: Option<&[u8]>, deltas: &[Cell]) -> Result<Vec<u8>, StoreError> {
    let mut cells = Vec::new();
    if let Some(bytes) = stored {
        for_each_cell(bytes, |cell| cells.push(cell))?;
    }
    let mut merged = Vec::with_capacity(cells.len() + deltas.len());
    let (mut left, mut right) = (cells.into_iter().peekable(), deltas.iter().peekable());
    loop {
        match (left.peek(), right.peek()) {
            (Some(old), Some(new)) if old.series == new.series => {
                merged.push(Cell {
                    series: old.series,
                    units: old.units + new.units,
                    revenue: old.revenue + new.revenue,
                });
                left.next();
                right.next();
            }
            (Some(old), Some(new)) if old.series < new.series => {
                merged.push(*old);
                left.next();
            }
            (_, Some(new)) => {
                merged.push(**new);
                right.next();
            }
            (Some(old), None) => {
                merged.push(*old);
                left.next();
            }
            (None, None) => break,
        }
    }
    Ok(encode_cells(&merged))
}

/// Records (lines or cells) a write must encode, at least, for a second thread to take half of
/// them: below this, starting the thread costs more than it saves.
const SHARED_ENCODE_RECORDS: usize = 32_768;

/// Maps `items` with `encode`, in order, sharing the work with a second thread when their
/// `records` add up to [`SHARED_ENCODE_RECORDS`] or more. An import's writer is its critical
/// path, and encoding pages is a third of its work; the other core, running the CSV parser, has
/// time to spare. Each half is about as many records as the other. Without a thread (the system
/// refused one), the writer encodes everything itself.
pub(super) fn encode_shared<T: Send, U: Send>(
    items: Vec<T>,
    records: impl Fn(&T) -> usize,
    encode: impl Fn(T) -> U + Sync,
) -> Vec<U> {
    let total: usize = items.iter().map(&records).sum();
    if total < SHARED_ENCODE_RECORDS {
        return items.into_iter().map(encode).collect();
    }
    // The first items up to half the records stay here; the rest go to the helper.
    let mut counted = 0;
    let split = items
        .iter()
        .position(|item| {
            counted += records(item);
            counted >= total / 2
        })
        .map_or(items.len(), |at| at + 1);
    let mut mine = items;
    // Taken by the helper, or back here if no helper could be started.
    let theirs = std::sync::Mutex::new(Some(mine.split_off(split)));
    let take = || {
        theirs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .unwrap_or_default()
    };
    let encode = &encode;
    std::thread::scope(|scope| {
        let helper = std::thread::Builder::new()
            .name("page-encode".into())
            .spawn_scoped(scope, || take().into_iter().map(encode).collect::<Vec<U>>());
        let mut encoded: Vec<U> = mine.into_iter().map(encode).collect();
        match helper {
            Ok(helper) => match helper.join() {
                Ok(rest) => encoded.extend(rest),
                Err(panic) => std::panic::resume_unwind(panic),
            },
            Err(_) => encoded.extend(take().into_iter().map(encode)),
        }
        encoded
    })
}

/// The fixed-size format pages had before they were packed (40 bytes a line, 24 a cell, all
/// little-endian): written by migration 4, read only by the migration that packs them.
pub(super) mod fixed {
    use super::{Cell, LineRecord, corrupt};
    use crate::store::StoreError;

    const LINE_BYTES: usize = 40;
    const CELL_BYTES: usize = 24;

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

    pub(in crate::store::sqlite) fn decode_lines(
        bytes: &[u8],
    ) -> Result<Vec<LineRecord>, StoreError> {
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

    pub(in crate::store::sqlite) fn encode_lines(records: &[LineRecord]) -> Vec<u8> {
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

    pub(in crate::store::sqlite) fn decode_cells(bytes: &[u8]) -> Result<Vec<Cell>, StoreError> {
        if !bytes.len().is_multiple_of(CELL_BYTES) {
            return Err(corrupt("daily sales"));
        }
        Ok(bytes
            .chunks_exact(CELL_BYTES)
            .map(|record| Cell {
                series: i64_at(record, 0),
                units: f64_at(record, 8),
                revenue: f64_at(record, 16),
            })
            .collect())
    }

    pub(in crate::store::sqlite) fn encode_cells(cells: &[Cell]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(cells.len() * CELL_BYTES);
        for cell in cells {
            bytes.extend_from_slice(&cell.series.to_le_bytes());
            bytes.extend_from_slice(&cell.units.to_le_bytes());
            bytes.extend_from_slice(&cell.revenue.to_le_bytes());
        }
        bytes
    }
}

/// A line page being changed by one write: the stored records (sorted by key) plus the ones
/// added since it was read. Writes visit a page's lines in key order, so added records mostly
/// come in key order too: those are appended to a sorted list; the others (a repeated line's
/// later occurrences, whose keys are scattered) go to a map.
#[derive(Debug, Default)]
pub(super) struct LinePage {
    stored: Vec<LineRecord>,
    /// Added records in key order, each with a key above every earlier one's.
    appended: Vec<LineRecord>,
    /// Added records that came out of key order.
    scattered: foldhash::HashMap<i64, LineRecord>,
    pub dirty: bool,
}

impl LinePage {
    pub fn new(stored: Vec<LineRecord>) -> Self {
        Self {
            stored,
            ..Self::default()
        }
    }

    /// The record with `key`, if stored or added.
    pub fn get_mut(&mut self, key: i64) -> Option<&mut LineRecord> {
        if let Ok(position) = self.stored.binary_search_by_key(&key, |record| record.key) {
            return Some(&mut self.stored[position]);
        }
        // Lines come in key order: a new one's key is usually past every appended key, where
        // there is nothing to search.
        if self.appended.last().is_some_and(|last| last.key >= key)
            && let Ok(position) = self
                .appended
                .binary_search_by_key(&key, |record| record.key)
        {
            return Some(&mut self.appended[position]);
        }
        if self.scattered.is_empty() {
            return None;
        }
        self.scattered.get_mut(&key)
    }

    /// Adds a record whose key is in no part.
    pub fn insert(&mut self, record: LineRecord) {
        match self.appended.last() {
            Some(last) if last.key > record.key => {
                self.scattered.insert(record.key, record);
            }
            _ => self.appended.push(record),
        }
        self.dirty = true;
    }

    /// Records the page holds.
    pub fn records(&self) -> usize {
        self.stored.len() + self.appended.len() + self.scattered.len()
    }

    /// Bytes this page holds in memory, roughly.
    pub fn size(&self) -> usize {
        (self.stored.len() + self.appended.len() + self.scattered.len() * 2)
            * std::mem::size_of::<LineRecord>()
    }

    /// The page's records, sorted by key, encoded.
    pub fn encode(self) -> Vec<u8> {
        let mut added = self.appended;
        if !self.scattered.is_empty() {
            added.extend(self.scattered.into_values());
            added.sort_unstable_by_key(|record| record.key);
        }
        if self.stored.is_empty() {
            return encode_lines(&added);
        }
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
        page.insert(line(20, 7.0));
        page.insert(line(i64::MAX, 3.0));
        page.insert(line(0, 4.0));
        page.insert(line(i64::MIN, 5.0));
        page.insert(line(15, 8.0));
        page.get_mut(10).unwrap().units = 6.0;
        page.get_mut(0).unwrap().seen = 9;
        page.get_mut(20).unwrap().seen = 4;
        assert!(page.get_mut(1).is_none());
        assert!(page.get_mut(16).is_none());
        assert_eq!(page.get_mut(i64::MAX).map(|record| record.units), Some(3.0));
        let decoded = decode_lines(&page.encode()).unwrap();
        let keys: Vec<i64> = decoded.iter().map(|record| record.key).collect();
        assert_eq!(keys, [i64::MIN, -5, 0, 10, 15, 20, i64::MAX]);
        assert_eq!(decoded[3].units, 6.0);
        assert_eq!(decoded[2].seen, 9);
        assert_eq!(decoded[5].seen, 4);
        assert_eq!(decoded[4], line(15, 8.0));
        assert_eq!(decoded[6], line(i64::MAX, 3.0));
    }

    #[test]
    fn records_added_in_key_order_are_found_and_keys_past_them_are_not() {
        let mut page = LinePage::new(Vec::new());
        assert!(page.get_mut(0).is_none());
        for key in [-3, 4, 9] {
            page.insert(line(key, key as f64));
        }
        for key in [-3, 4, 9] {
            assert_eq!(page.get_mut(key).map(|record| record.key), Some(key));
        }
        for key in [i64::MIN, -4, 0, 5, 10, i64::MAX] {
            assert!(page.get_mut(key).is_none(), "{key}");
        }
    }

    #[test]
    fn a_new_page_added_in_key_order_encodes_as_added() {
        let mut page = LinePage::new(Vec::new());
        for key in [3, 8, 12] {
            page.insert(line(key, 1.0));
        }
        assert!(page.dirty);
        let keys: Vec<i64> = decode_lines(&page.encode())
            .unwrap()
            .iter()
            .map(|record| record.key)
            .collect();
        assert_eq!(keys, [3, 8, 12]);
    }

    #[test]
    fn shared_encoding_keeps_the_order_and_splits_only_large_work() {
        let on_helper = |item: (usize, usize)| {
            let name = std::thread::current().name().map(str::to_owned);
            (item.0, name.as_deref() == Some("page-encode"))
        };
        // Small: everything here, in order.
        let small: Vec<(usize, usize)> = (0..10).map(|at| (at, 100)).collect();
        let encoded = encode_shared(small, |item| item.1, on_helper);
        assert_eq!(encoded, (0..10).map(|at| (at, false)).collect::<Vec<_>>());
        // Large: the first half of the records here, the rest on the helper, still in order.
        let large: Vec<(usize, usize)> =
            (0..10).map(|at| (at, SHARED_ENCODE_RECORDS / 5)).collect();
        let encoded = encode_shared(large, |item| item.1, on_helper);
        assert_eq!(encoded, (0..10).map(|at| (at, at >= 5)).collect::<Vec<_>>());
        assert!(encode_shared(Vec::<(usize, usize)>::new(), |item| item.1, on_helper).is_empty());
    }

    #[test]
    fn cells_merge_by_series_and_keep_both_sides() {
        let cell = |series, units| Cell {
            series,
            units,
            revenue: units * 10.0,
        };
        let first = merge_cells(None, &[cell(2, 1.0), cell(5, 2.0)]).unwrap();
        let second =
            merge_cells(Some(&first), &[cell(1, 1.0), cell(5, -0.5), cell(9, 4.0)]).unwrap();
        let mut cells = Vec::new();
        for_each_cell(&second, |cell| cells.push(cell)).unwrap();
        assert_eq!(
            cells,
            [cell(1, 1.0), cell(2, 1.0), cell(5, 1.5), cell(9, 4.0)]
        );
    }

    #[test]
    fn every_number_reads_back_bit_for_bit() {
        let awkward = [
            0.0,
            -0.0,
            1.0,
            -3.0,
            0.5,
            19.99,
            3.0 * 41.37,
            -124.11,
            1e300,
            -1e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
            9_007_199_254_740_993.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ];
        let records: Vec<LineRecord> = (0i64..)
            .zip(awkward.iter().zip(awkward.iter().rev()))
            .map(|(index, (&units, &revenue))| LineRecord {
                key: i64::MIN + index * 1_000_003,
                series: index * 7 - 3,
                units,
                revenue,
                upload: u32::MAX - index as u32,
                seen: index as u32,
            })
            .collect();
        let decoded = decode_lines(&encode_lines(&records)).unwrap();
        assert_eq!(decoded.len(), records.len());
        for (got, want) in decoded.iter().zip(&records) {
            assert_eq!((got.key, got.series), (want.key, want.series));
            assert_eq!(got.units.to_bits(), want.units.to_bits());
            assert_eq!(got.revenue.to_bits(), want.revenue.to_bits());
            assert_eq!((got.upload, got.seen), (want.upload, want.seen));
        }
        // The longest record: every varint at its longest, both numbers raw.
        let longest = LineRecord {
            key: i64::MAX,
            series: i64::MIN,
            units: f64::NAN,
            revenue: -f64::NAN,
            upload: u32::MAX,
            seen: u32::MAX,
        };
        let decoded = decode_lines(&encode_lines(&[longest])).unwrap();
        assert_eq!((decoded[0].key, decoded[0].series), (i64::MAX, i64::MIN));
        assert_eq!(decoded[0].revenue.to_bits(), (-f64::NAN).to_bits());
        assert_eq!((decoded[0].upload, decoded[0].seen), (u32::MAX, u32::MAX));
        let cells: Vec<Cell> = (0i64..)
            .zip(&awkward)
            .map(|(index, &value)| Cell {
                series: index * index * 1000 - 5,
                units: value,
                revenue: -value,
            })
            .collect();
        let mut decoded = Vec::new();
        for_each_cell(&encode_cells(&cells), |cell| decoded.push(cell)).unwrap();
        for (got, want) in decoded.iter().zip(&cells) {
            assert_eq!(got.series, want.series);
            assert_eq!(got.units.to_bits(), want.units.to_bits());
            assert_eq!(got.revenue.to_bits(), want.revenue.to_bits());
        }
        assert_eq!(decoded.len(), cells.len());
    }

    #[test]
    fn nearest_is_round_for_prices_and_quantities() {
        for cents in -100_000i64..100_000 {
            let value = cents as f64 / 100.0 * 100.0;
            assert_eq!(nearest(value), value.round() as i64, "{value}");
        }
        for value in [0.5, -0.5, 2.5, -2.5, 1e15 + 0.5, 0.499_999_999_999_999_94] {
            assert!(
                (nearest(value) - value.round() as i64).abs() <= 1,
                "{value}"
            );
        }
        assert_eq!(nearest(f64::NAN), 0);
        assert_eq!(nearest(f64::INFINITY), i64::MAX);
    }

    #[test]
    fn typical_lines_and_cells_pack_small() {
        let records: Vec<LineRecord> = (0..1000)
            .map(|index| LineRecord {
                key: index * (1 << 44),
                series: 50_000 + index,
                units: 3.0,
                revenue: 3.0 * 41.37,
                upload: 4,
                seen: 4,
            })
            .collect();
        let bytes = encode_lines(&records);
        assert!(bytes.len() < records.len() * 20, "{} bytes", bytes.len());
        let cells: Vec<Cell> = (0..1000)
            .map(|series| Cell {
                series,
                units: 2.0,
                revenue: 41.5,
            })
            .collect();
        let bytes = encode_cells(&cells);
        assert!(bytes.len() < cells.len() * 8, "{} bytes", bytes.len());
    }

    #[test]
    fn torn_pages_are_corrupt_not_misread() {
        let page = encode_lines(&[line(5, 1.5), line(9, 1e300)]);
        let first = encode_lines(&[line(5, 1.5)]).len();
        for cut in 0..page.len() {
            if cut != 1 && cut != first {
                assert!(decode_lines(&page[..cut]).is_err(), "cut at {cut}");
            }
        }
        assert_eq!(decode_lines(&page[..1]).unwrap(), []);
        let cells = encode_cells(&[Cell {
            series: 3,
            units: 1.0,
            revenue: 0.1,
        }]);
        assert!(for_each_cell(&cells[..cells.len() - 1], |_| {}).is_err());
        // A fixed-size page, or an unknown tag, is not read as packed.
        assert!(decode_lines(&fixed::encode_lines(&[line(5, 1.0)])).is_err());
        assert!(for_each_cell(&[PACKED, 0x30, 0], |_| {}).is_err());
        assert!(for_each_cell(&[PACKED, 0x03, 0, 0, 0], |_| {}).is_err());
        // A varint longer than 64 bits.
        let mut long = vec![PACKED, 0];
        long.extend([0xff; 10]);
        long.push(1);
        assert!(decode_lines(&long).is_err());
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
