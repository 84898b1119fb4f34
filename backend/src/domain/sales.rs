//! Sales: SKUs, locations, the sales lines imported from CSV or orders, and daily aggregates.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::InvalidValue;

/// Longest SKU, location or product text we accept, in characters.
const MAX_TEXT_CHARS: usize = 255;

/// A stock-keeping unit code: trimmed, non-empty, at most 255 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Sku(String);

impl Sku {
    /// Checks a SKU code.
    ///
    /// # Errors
    /// When it is empty, too long or holds control characters.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        Self::check(value).map(|sku| Self(sku.to_owned()))
    }

    /// Checks a SKU code as [`Sku::parse`] does, without copying it: the trimmed code.
    ///
    /// # Errors
    /// When it is empty, too long or holds control characters.
    pub fn check(value: &str) -> Result<&str, InvalidValue> {
        checked_text(value, "SKU")
    }

    /// A SKU from text that [`Sku::check`] returned.
    pub(crate) fn from_checked(text: &str) -> Self {
        Self(text.to_owned())
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A store, warehouse or sales channel where units were sold; `default` when a file names none.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Location(String);

impl Location {
    /// The location of rows that name none.
    pub const DEFAULT: &'static str = "default";

    /// Checks a location name; an empty one means [`Location::DEFAULT`].
    ///
    /// # Errors
    /// When it is too long or holds control characters.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        Self::check(value).map(|location| Self(location.to_owned()))
    }

    /// Checks a location name as [`Location::parse`] does, without copying it: the trimmed name,
    /// or [`Location::DEFAULT`].
    ///
    /// # Errors
    /// When it is too long or holds control characters.
    pub fn check(value: &str) -> Result<&str, InvalidValue> {
        if trim(value).is_empty() {
            return Ok(Self::DEFAULT);
        }
        checked_text(value, "location")
    }

    /// A location from text that [`Location::check`] returned.
    pub(crate) fn from_checked(text: &str) -> Self {
        Self(text.to_owned())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Location {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

/// `text.trim()`, with a shortcut for text that starts and ends with a printable ASCII character
/// other than space (a CSV cell almost always): nothing to trim, and no character to decode.
pub(crate) fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

fn checked_text<'a>(value: &'a str, what: &str) -> Result<&'a str, InvalidValue> {
    let value = trim(value);
    if value.is_empty() {
        return Err(InvalidValue::new(format!("{what} must not be empty")));
    }
    // Printable ASCII (the usual case) has no control characters and a character per byte.
    if value.len() <= MAX_TEXT_CHARS && value.bytes().all(|byte| (b' '..=b'~').contains(&byte)) {
        return Ok(value);
    }
    if value.chars().count() > MAX_TEXT_CHARS {
        return Err(InvalidValue::new(format!(
            "{what} is longer than {MAX_TEXT_CHARS} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(InvalidValue::new(format!(
            "{what} must not contain control characters"
        )));
    }
    Ok(value)
}

/// How a tenant's line identities are hashed. Identities are persisted (they find a line again
/// when a file is uploaded twice), so a tenant keeps the scheme it was created with: tenants
/// created before XXH3 was introduced stay on SHA-256; new tenants get XXH3, ~4x cheaper per row
/// (a large import hashes every row). Both hash the same length-prefixed bytes into 64 bits; the
/// identity only needs to tell one tenant's lines apart, which both do equally well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IdentityScheme {
    /// SHA-256, first 8 bytes big-endian (`sha256`).
    Sha256,
    /// XXH3-64 (`xxh3`): the scheme of new tenants.
    #[default]
    Xxh3,
}

impl IdentityScheme {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Xxh3 => "xxh3",
        }
    }

    /// Reads a stored name.
    ///
    /// # Errors
    /// When the name is none of the schemes.
    pub fn parse(name: &str) -> Result<Self, InvalidValue> {
        match name {
            "sha256" => Ok(Self::Sha256),
            "xxh3" => Ok(Self::Xxh3),
            other => Err(InvalidValue::new(format!(
                "unknown line identity scheme {other:?}"
            ))),
        }
    }
}

/// Copies `source` into `target` (as long): parts of up to 16 bytes (dates, most SKUs and
/// locations, numbers) with two fixed-size moves that may overlap instead of a call to `memcpy`,
/// which costs more than the copy at these lengths (a third of the identity's time per row).
fn copy_short(target: &mut [u8], source: &[u8]) {
    let length = source.len();
    match length {
        8..=16 => {
            target[..8].copy_from_slice(&source[..8]);
            target[length - 8..].copy_from_slice(&source[length - 8..]);
        }
        4..=7 => {
            target[..4].copy_from_slice(&source[..4]);
            target[length - 4..].copy_from_slice(&source[length - 4..]);
        }
        _ => target.copy_from_slice(source),
    }
}

/// What makes a sales line the same line when a file is uploaded again: the order id and line, or,
/// for files without ids, the row's whole content. Repeats of one identity within one upload are
/// distinct sales and get successive occurrence numbers (see [`LineIdentity::key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineIdentity(u64);

/// Bytes of identity parts hashed from the stack (a row's parts: ~80 bytes besides its SKU and
/// location); longer ones go through the heap. The buffer is zeroed per line: no larger.
const IDENTITY_STACK_BYTES: usize = 160;

impl LineIdentity {
    /// Hashes identity parts, each preceded by its length (8 bytes big-endian) so that no two lists
    /// of parts give the same bytes, into a stable 64-bit identity with `scheme`. The hash is
    /// persisted, so neither scheme may ever change.
    pub fn of(scheme: IdentityScheme, parts: &[&[u8]]) -> Self {
        match scheme {
            IdentityScheme::Sha256 => {
                let mut hasher = Sha256::new();
                for part in parts {
                    hasher.update((part.len() as u64).to_be_bytes());
                    hasher.update(part);
                }
                let digest = hasher.finalize();
                let mut first = [0u8; 8];
                first.copy_from_slice(&digest[..8]);
                Self(u64::from_be_bytes(first))
            }
            IdentityScheme::Xxh3 => {
                let length: usize = parts.iter().map(|part| 8 + part.len()).sum();
                let mut stack = [0u8; IDENTITY_STACK_BYTES];
                let mut heap = Vec::new();
                let bytes: &mut [u8] = if length <= IDENTITY_STACK_BYTES {
                    &mut stack[..length]
                } else {
                    heap.resize(length, 0);
                    &mut heap
                };
                let mut at = 0;
                for part in parts {
                    bytes[at..at + 8].copy_from_slice(&(part.len() as u64).to_be_bytes());
                    copy_short(&mut bytes[at + 8..at + 8 + part.len()], part);
                    at += 8 + part.len();
                }
                Self(xxhash_rust::xxh3::xxh3_64(bytes))
            }
        }
    }

    /// The identity whose first storage key (`key(0)`) is `key`, as kept beside a stored order.
    pub fn from_key(key: i64) -> Self {
        Self(u64::from_ne_bytes(key.to_ne_bytes()))
    }

    /// The storage key of the `occurrence`-th line with this identity in one upload (0 for the first).
    pub fn key(self, occurrence: u32) -> i64 {
        let mut mixed = self.0;
        if occurrence > 0 {
            // splitmix64 finaliser over the identity and occurrence: stable and well spread.
            mixed ^= u64::from(occurrence).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            mixed ^= mixed >> 31;
        }
        i64::from_ne_bytes(mixed.to_ne_bytes())
    }
}

/// One sold (or refunded, when `units` is negative) line, dated in the tenant's local calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct SalesLine {
    /// Dedupe identity.
    pub identity: LineIdentity,
    /// Local date of the sale.
    pub date: NaiveDate,
    /// What was sold.
    pub sku: Sku,
    /// Where it was sold.
    pub location: Location,
    /// Product name, when the file has one.
    pub product: Option<String>,
    /// Units sold; negative for refunds, zero for cancelled lines.
    pub units: f64,
    /// Revenue of the line in the file's currency; negative for refunds.
    pub revenue: f64,
}

/// A SKU at a location, as a batch of lines names it once.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchSeries {
    /// What was sold.
    pub sku: Sku,
    /// Where it was sold.
    pub location: Location,
    /// The first product name the batch's lines of this series give, if any.
    pub product: Option<String>,
}

impl BatchSeries {
    /// SKU, location and product name as text.
    pub fn parts(&self) -> (&str, &str, Option<&str>) {
        (
            self.sku.as_str(),
            self.location.as_str(),
            self.product.as_deref(),
        )
    }
}

impl BatchLine {
    /// The line's place in the order stores merge lines in, for the line at `position` of its
    /// batch (see [`line_order_key`]).
    fn order_key(&self, position: u32) -> u128 {
        line_order_key(self.date.num_days_from_ce(), self.identity.key(0), position)
    }
}

/// A line's place in the order lines are merged in, as one integer: day (days from the common
/// era), then identity key, then position in the batch (repeats of one identity keep their file
/// order). Each part is mapped to an unsigned number of the same order (sign bit flipped), so
/// integer order is that tuple order.
fn line_order_key(day: i32, key: i64, position: u32) -> u128 {
    let day = day.cast_unsigned() ^ (1 << 31);
    let key = key.cast_unsigned() ^ (1 << 63);
    (u128::from(day) << 96) | (u128::from(key) << 32) | u128::from(position)
}

/// Keys at least this many are sorted by [`sort_spread_keys`]'s buckets; fewer by a plain sort.
const SPREAD_SORT_MIN: usize = 4096;
/// Keys per bucket [`sort_spread_keys`] aims at.
const SPREAD_BUCKET_KEYS: usize = 8;
/// Most buckets: 2^16 (their counts stay in the cache).
const SPREAD_MAX_BUCKET_BITS: u32 = 16;

/// Sorts `keys` (as `sort_unstable` does). From `min` keys on, in two steps: one pass spreads them
/// into buckets by their bits below those all keys share (a counting sort), then each bucket, a
/// few keys, is sorted alone. Line order keys spread evenly: below the day (the top bits, few
/// distinct in a batch) comes a hash. Keys bunched in a few buckets are still sorted right, by
/// those buckets' sorts.
fn sort_spread_keys(keys: &mut Vec<u128>, spread: &mut Vec<u128>, min: usize) {
    if keys.len() < min.max(2) {
        keys.sort_unstable();
        return;
    }
    let (low, high) = keys
        .iter()
        .fold((u128::MAX, u128::MIN), |(low, high), &key| {
            (low.min(key), high.max(key))
        });
    let span_bits = u128::BITS - (high - low).leading_zeros();
    let bucket_bits = (usize::BITS - (keys.len() / SPREAD_BUCKET_KEYS).leading_zeros())
        .clamp(1, SPREAD_MAX_BUCKET_BITS);
    let shift = span_bits.saturating_sub(bucket_bits);
    // `(key - low) >> shift` < 2^bucket_bits, as `key - low` < 2^span_bits.
    let bucket = |key: u128| ((key - low) >> shift) as usize;
    let mut starts = vec![0usize; (1 << bucket_bits) + 1];
    for &key in keys.iter() {
        starts[bucket(key) + 1] += 1;
    }
    for at in 1..starts.len() {
        starts[at] += starts[at - 1];
    }
    // Each bucket's start moves along as its keys are placed, ending where the next begins.
    spread.clear();
    spread.resize(keys.len(), 0);
    for &key in keys.iter() {
        let slot = &mut starts[bucket(key)];
        spread[*slot] = key;
        *slot += 1;
    }
    let mut begin = 0;
    for &end in &starts[..1 << bucket_bits] {
        spread[begin..end].sort_unstable();
        begin = end;
    }
    std::mem::swap(keys, spread);
}

/// The buffers [`SalesBatch::sort_lines_with`] sorts with, kept from one batch to the next.
#[derive(Debug, Default)]
pub struct LineSorter {
    keys: Vec<u128>,
    spread: Vec<u128>,
}

/// The day and position [`line_order_key`] packed (the casts keep exactly their bits).
fn day_and_position(packed: u128) -> (i32, u32) {
    let day = ((packed >> 96) as u32 ^ (1 << 31)).cast_signed();
    (day, packed as u32)
}

/// A sales line whose SKU and location are an index into its batch's series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchLine {
    /// Dedupe identity.
    pub identity: LineIdentity,
    /// Local date of the sale.
    pub date: NaiveDate,
    /// Index into [`SalesBatch::series`].
    pub series: u32,
    /// Units sold; negative for refunds, zero for cancelled lines.
    pub units: f64,
    /// Revenue of the line; negative for refunds.
    pub revenue: f64,
}

/// Series numbered in the order they were listed, shared by the batches of one upload: a file
/// names the same SKU and location pairs day after day, so each batch adds only the pairs no
/// earlier batch listed (a chunk), and the earlier chunks are shared, not copied. The list's `id`
/// (unique in the process) lets a store keep what it resolved for the list between batches.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SeriesList {
    id: u64,
    chunks: Vec<std::sync::Arc<[BatchSeries]>>,
    /// Index of each chunk's first series.
    starts: Vec<u32>,
    len: u32,
}

impl SeriesList {
    /// An empty list that batches will share (a fresh `id`).
    pub fn shared() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ..Self::default()
        }
    }

    /// The list's id; 0 for a list of one batch alone (nothing to keep for it).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the list holds no series.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `series` as a new chunk, numbered after the ones listed.
    ///
    /// # Panics
    /// When the list would hold 2^32 series or more.
    pub fn push(&mut self, series: Vec<BatchSeries>) {
        if series.is_empty() {
            return;
        }
        self.starts.push(self.len);
        self.len = u32::try_from(series.len())
            .ok()
            .and_then(|added| self.len.checked_add(added))
            .expect("a list holds fewer series than lines, and lines fit in memory");
        self.chunks.push(series.into());
    }

    /// The series numbered `index`, if listed.
    pub fn get(&self, index: u32) -> Option<&BatchSeries> {
        let chunk = self
            .starts
            .partition_point(|start| *start <= index)
            .checked_sub(1)?;
        self.chunks[chunk].get((index - self.starts[chunk]) as usize)
    }

    /// The series from number `from` on, in order.
    pub fn iter_from(&self, from: usize) -> impl Iterator<Item = &BatchSeries> {
        let from = u32::try_from(from).unwrap_or(u32::MAX);
        let chunk = self
            .starts
            .partition_point(|start| *start <= from)
            .saturating_sub(1);
        let skip = from.saturating_sub(self.starts.get(chunk).copied().unwrap_or(0));
        // `chunk` is 0 for an empty list, else the index of a chunk.
        self.chunks[chunk..]
            .iter()
            .flat_map(|chunk| chunk.iter())
            .skip(skip as usize)
    }

    /// Every series, in order.
    pub fn iter(&self) -> impl Iterator<Item = &BatchSeries> {
        self.iter_from(0)
    }
}

/// Sales lines with each SKU and location pair listed once: what an import hands the store, one
/// 32-byte record per row instead of two heap strings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SalesBatch {
    /// The series the lines name: those the upload's earlier batches listed, then the ones this
    /// batch adds.
    pub series: SeriesList,
    /// The lines, in file order.
    pub lines: Vec<BatchLine>,
}

impl SalesBatch {
    /// Puts the lines in the order a store merges them in: by day, then identity, lines of one
    /// day and identity in the order they had (a stable sort). Stores sort what they are given
    /// anyway; a sorted batch only costs them a check that it is. An import sorts each batch on
    /// the thread that parsed it, so that the store's single writer does not have to.
    pub fn sort_lines(&mut self) {
        self.sort_lines_with(&mut LineSorter::default());
    }

    /// [`Self::sort_lines`] with `sorter`'s buffers. When the lines were moved, gives back the
    /// buffer that held them, emptied, for the next batch to be built in: a thread that sorts
    /// batch after batch then writes into memory it has touched before instead of fresh pages.
    pub fn sort_lines_with(&mut self, sorter: &mut LineSorter) -> Option<Vec<BatchLine>> {
        if self.in_merge_order() || u32::try_from(self.lines.len()).is_err() {
            return None;
        }
        self.merge_order_keys(&mut sorter.keys, &mut sorter.spread);
        let sorted = sorter.keys.iter().map(|&key| *self.line_at(key)).collect();
        let mut unsorted = std::mem::replace(&mut self.lines, sorted);
        unsorted.clear();
        Some(unsorted)
    }

    /// Fills `keys` with one key per line, in merge order (see [`line_order_key`]), with `spread`
    /// as the sort's scratch buffer; each key names its line ([`Self::line_at`]). How a store
    /// visits a batch that is not sorted yet.
    pub(crate) fn merge_order_keys(&self, keys: &mut Vec<u128>, spread: &mut Vec<u128>) {
        keys.clear();
        keys.extend(
            (0u32..)
                .zip(&self.lines)
                .map(|(position, line)| line.order_key(position)),
        );
        sort_spread_keys(keys, spread, SPREAD_SORT_MIN);
    }

    /// The line a key of [`Self::merge_order_keys`] names.
    pub(crate) fn line_at(&self, key: u128) -> &BatchLine {
        &self.lines[day_and_position(key).1 as usize]
    }

    /// Whether the lines are in the order [`Self::sort_lines`] puts them in.
    pub fn in_merge_order(&self) -> bool {
        self.lines
            .is_sorted_by_key(|line| (line.date, line.identity.key(0)))
    }

    /// Number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the batch holds no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The series `line` names.
    ///
    /// # Panics
    /// When the line names a series the batch does not list (a batch built wrong).
    pub fn series_of(&self, line: &BatchLine) -> &BatchSeries {
        self.series
            .get(line.series)
            .expect("a batch lists every series its lines name")
    }

    /// The lines as `SalesLine`s, each with its series' SKU, location and product name.
    pub fn to_lines(&self) -> Vec<SalesLine> {
        self.lines
            .iter()
            .map(|line| {
                let series = self.series_of(line);
                SalesLine {
                    identity: line.identity,
                    date: line.date,
                    sku: series.sku.clone(),
                    location: series.location.clone(),
                    product: series.product.clone(),
                    units: line.units,
                    revenue: line.revenue,
                }
            })
            .collect()
    }
}

impl From<Vec<SalesLine>> for SalesBatch {
    fn from(lines: Vec<SalesLine>) -> Self {
        let mut series: Vec<BatchSeries> = Vec::new();
        let mut batch_lines = Vec::with_capacity(lines.len());
        let mut index: std::collections::HashMap<(Sku, Location), u32> =
            std::collections::HashMap::new();
        for line in lines {
            let next = u32::try_from(series.len()).expect("a batch holds under 2^32 series");
            let named = *index
                .entry((line.sku.clone(), line.location.clone()))
                .or_insert(next);
            if named == next {
                series.push(BatchSeries {
                    sku: line.sku,
                    location: line.location,
                    product: line.product,
                });
            } else if series[named as usize].product.is_none() {
                series[named as usize].product = line.product;
            }
            batch_lines.push(BatchLine {
                identity: line.identity,
                date: line.date,
                series: named,
                units: line.units,
                revenue: line.revenue,
            });
        }
        let mut list = SeriesList::default();
        list.push(series);
        Self {
            series: list,
            lines: batch_lines,
        }
    }
}

/// Units and revenue of one SKU at one location on one day (or week, starting Monday).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SalesDay {
    /// The day, or the Monday of the week.
    pub date: NaiveDate,
    /// SKU.
    pub sku: Sku,
    /// Location.
    pub location: Location,
    /// Net units.
    pub units: f64,
    /// Net revenue.
    pub revenue: f64,
}

/// An inclusive range of local dates; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayRange {
    /// First day included.
    pub from: Option<NaiveDate>,
    /// Last day included.
    pub to: Option<NaiveDate>,
}

impl DayRange {
    /// Checks that the range is not reversed.
    ///
    /// # Errors
    /// When `from` is after `to`.
    pub fn new(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Self, InvalidValue> {
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(InvalidValue::new(format!(
                "from ({from}) is after to ({to})"
            )));
        }
        Ok(Self { from, to })
    }
}

/// Day or ISO week (Monday-based) buckets for sales reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    /// One row per day.
    #[default]
    Day,
    /// One row per week, dated by its Monday.
    Week,
}

impl Granularity {
    /// Parses `day` or `week`.
    ///
    /// # Errors
    /// For anything else.
    pub fn parse(value: &str) -> Result<Self, InvalidValue> {
        match value {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            other => Err(InvalidValue::new(format!(
                "\"{other}\" is not a granularity (use day or week)"
            ))),
        }
    }
}

/// Which daily sales to read.
#[derive(Debug, Clone, Default)]
pub struct SalesQuery {
    /// Only this SKU.
    pub sku: Option<Sku>,
    /// Only this location.
    pub location: Option<Location>,
    /// Only these days.
    pub days: DayRange,
    /// Bucket size.
    pub granularity: Granularity,
}

/// A SKU with its first and last sale and totals over all locations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkuSummary {
    /// SKU.
    pub sku: Sku,
    /// Product name, when known.
    pub product: Option<String>,
    /// Locations where it sold.
    pub locations: Vec<Location>,
    /// First day with a recorded line.
    pub first_sale: NaiveDate,
    /// Last day with a recorded line.
    pub last_sale: NaiveDate,
    /// Net units over all time.
    pub units: f64,
    /// Net revenue over all time.
    pub revenue: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    #[test]
    fn sorted_lines_are_in_day_and_identity_order_with_repeats_in_file_order() {
        let line = |day: u32, identity: &str, units: f64| BatchLine {
            identity: LineIdentity::of(IdentityScheme::default(), &[identity.as_bytes()]),
            date: NaiveDate::from_ymd_opt(2024, 3, day).unwrap(),
            series: 0,
            units,
            revenue: 0.0,
        };
        let lines = vec![
            line(2, "b", 1.0),
            line(1, "a", 2.0),
            line(2, "b", 3.0),
            line(1, "c", 4.0),
            line(2, "a", 5.0),
            line(1, "a", 6.0),
        ];
        let mut batch = SalesBatch {
            lines: lines.clone(),
            ..SalesBatch::default()
        };
        assert!(!batch.in_merge_order());
        batch.sort_lines();
        assert!(batch.in_merge_order());
        let mut expected = lines;
        expected.sort_by_key(|line| (line.date, line.identity.key(0)));
        assert_eq!(batch.lines, expected);
        let keys: Vec<u128> = (0u32..)
            .zip(&batch.lines)
            .map(|(position, line)| line.order_key(position))
            .collect();
        assert!(keys.is_sorted());
    }

    proptest::proptest! {
        #[test]
        fn spread_sort_sorts_as_a_plain_sort(
            keys in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u128::ANY,
                    // Line order keys: a few days, hashed identities, positions.
                    (0u32..3, proptest::num::i64::ANY, 0u32..1000)
                        .prop_map(|(day, key, position)| {
                            line_order_key(738_000 + day.cast_signed(), key, position)
                        }),
                    // Bunched: all but the low bits equal.
                    (0u128..64).prop_map(|low| (7u128 << 100) | low),
                ],
                0..300,
            ),
            min in 0usize..8,
            stale in 0usize..400,
        ) {
            let mut expected = keys.clone();
            expected.sort_unstable();
            let mut sorted = keys;
            // The scratch buffer may hold an earlier sort's keys.
            sort_spread_keys(&mut sorted, &mut vec![u128::MAX; stale], min);
            proptest::prop_assert_eq!(sorted, expected);
        }

        #[test]
        fn line_order_keys_sort_as_day_identity_position_and_give_day_and_position_back(
            lines in proptest::collection::vec(
                (
                    proptest::prop_oneof![proptest::num::i32::ANY, -3i32..3],
                    proptest::prop_oneof![proptest::num::i64::ANY, -3i64..3],
                    proptest::num::u32::ANY,
                ),
                0..64,
            )
        ) {
            let mut by_tuple = lines.clone();
            by_tuple.sort_unstable();
            let mut keys: Vec<u128> = lines
                .iter()
                .map(|&(day, key, position)| line_order_key(day, key, position))
                .collect();
            keys.sort_unstable();
            for (&key, &(day, identity, position)) in keys.iter().zip(&by_tuple) {
                proptest::prop_assert_eq!(key, line_order_key(day, identity, position));
                proptest::prop_assert_eq!(day_and_position(key), (day, position));
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn trim_is_str_trim(text in "[ \t\u{a0}\u{2003}a-zA-Z0-9é.,-]{0,12}") {
            proptest::prop_assert_eq!(trim(&text), text.trim());
        }
    }

    #[track_caller]
    fn check_sku(input: &str, expected: &str) {
        let got = match Sku::parse(input) {
            Ok(sku) => sku.as_str().to_owned(),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn sku_is_trimmed() {
        check_sku("  A-1 ", "A-1");
    }

    #[test]
    fn empty_sku_is_refused() {
        check_sku("   ", "SKU must not be empty");
    }

    #[test]
    fn sku_with_control_characters_is_refused() {
        check_sku("A\u{7}B", "SKU must not contain control characters");
    }

    #[test]
    fn overlong_sku_is_refused() {
        check_sku(&"x".repeat(256), "SKU is longer than 255 characters");
    }

    #[test]
    fn empty_location_is_the_default_location() {
        assert_eq!(Location::parse(" ").unwrap().as_str(), "default");
    }

    #[test]
    fn identity_separates_parts_unambiguously() {
        for scheme in [IdentityScheme::Sha256, IdentityScheme::Xxh3] {
            assert_ne!(
                LineIdentity::of(scheme, &[b"ab", b"c"]),
                LineIdentity::of(scheme, &[b"a", b"bc"])
            );
            assert_eq!(
                LineIdentity::of(scheme, &[b"ab", b"c"]),
                LineIdentity::of(scheme, &[b"ab", b"c"])
            );
        }
        assert_ne!(
            LineIdentity::of(IdentityScheme::Sha256, &[b"ab", b"c"]),
            LineIdentity::of(IdentityScheme::Xxh3, &[b"ab", b"c"])
        );
    }

    #[test]
    fn short_copies_copy_every_length_exactly() {
        let source: Vec<u8> = (1..=40).collect();
        for length in 0..=source.len() {
            let mut target = vec![0u8; length];
            copy_short(&mut target, &source[..length]);
            assert_eq!(target, source[..length], "length {length}");
        }
    }

    #[test]
    fn identities_are_the_persisted_hashes_of_the_length_prefixed_parts() {
        // Stored identities must find their lines again in every later version: both schemes are
        // pinned to the hash of the same bytes, computed here independently.
        let parts: [&[u8]; 3] = [b"row", b"2024-01-01", b"SKU-1"];
        let mut message = Vec::new();
        for part in parts {
            message.extend_from_slice(&(part.len() as u64).to_be_bytes());
            message.extend_from_slice(part);
        }
        let digest = Sha256::digest(&message);
        let sha = u64::from_be_bytes(digest[..8].try_into().unwrap());
        assert_eq!(
            LineIdentity::of(IdentityScheme::Sha256, &parts).key(0),
            sha as i64
        );
        let xxh3 = xxhash_rust::xxh3::xxh3_64(&message);
        assert_eq!(
            LineIdentity::of(IdentityScheme::Xxh3, &parts).key(0),
            xxh3 as i64
        );
        // Parts up to, at and beyond the stack buffer's end hash the same way.
        for length in [
            1000,
            IDENTITY_STACK_BYTES - 9,
            IDENTITY_STACK_BYTES - 8,
            IDENTITY_STACK_BYTES - 7,
        ] {
            let long = vec![b'x'; length];
            let mut message = (length as u64).to_be_bytes().to_vec();
            message.extend_from_slice(&long);
            assert_eq!(
                LineIdentity::of(IdentityScheme::Xxh3, &[&long]).key(0),
                xxhash_rust::xxh3::xxh3_64(&message) as i64
            );
        }
    }

    #[test]
    fn schemes_round_trip_by_name() {
        for scheme in [IdentityScheme::Sha256, IdentityScheme::Xxh3] {
            assert_eq!(IdentityScheme::parse(scheme.as_str()).unwrap(), scheme);
        }
        assert!(IdentityScheme::parse("md5").is_err());
    }

    #[test]
    fn occurrences_of_one_identity_get_distinct_keys() {
        let identity = LineIdentity::of(IdentityScheme::Xxh3, &[b"x"]);
        let keys: std::collections::HashSet<i64> = (0..1000).map(|n| identity.key(n)).collect();
        assert_eq!(keys.len(), 1000);
    }

    #[test]
    fn reversed_day_range_is_refused() {
        let day = |d| NaiveDate::from_ymd_opt(2024, 3, d);
        assert!(DayRange::new(day(2), day(1)).is_err());
        assert!(DayRange::new(day(1), day(1)).is_ok());
    }
}
