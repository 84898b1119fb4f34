//! Building `SalesBatch`es row by row: each SKU and location pair is listed once per upload (the
//! batches share the list; each adds the pairs first met in it), so a row costs one hash lookup of
//! borrowed text instead of two heap strings, and a pair is copied and resolved once, not once per
//! batch.

use std::borrow::Cow;
use std::hash::BuildHasher;

use chrono::NaiveDate;

use crate::domain::{
    BatchLine, BatchSeries, LineIdentity, Location, SalesBatch, SalesLine, SeriesList, Sku,
};

/// One read row, borrowing its texts from the reader's record.
#[derive(Debug)]
pub struct RowParts<'a> {
    /// Dedupe identity.
    pub identity: LineIdentity,
    /// Local date of the sale.
    pub date: NaiveDate,
    /// The SKU, as [`Sku::check`] returned it.
    pub sku: Cow<'a, str>,
    /// The location, as [`Location::check`] returned it.
    pub location: Cow<'a, str>,
    /// The trimmed product name, if any.
    pub product: Option<Cow<'a, str>>,
    /// Units sold.
    pub units: f64,
    /// Revenue of the line.
    pub revenue: f64,
}

impl RowParts<'_> {
    /// The row as a `SalesLine`, its texts copied.
    pub fn into_line(self) -> SalesLine {
        SalesLine {
            identity: self.identity,
            date: self.date,
            sku: Sku::from_checked(&self.sku),
            location: Location::from_checked(&self.location),
            product: self.product.map(Cow::into_owned),
            units: self.units,
            revenue: self.revenue,
        }
    }
}

/// Bytes of a series' key (`sku NUL location`) its index slot holds in place: a lookup of a
/// series whose key fits reads one slot and nothing else.
const INLINE_KEY: usize = 48;

/// Listed series' bytes (with their index slots) after which a builder starts a new list: a file
/// of very many SKU and location pairs lists them again as it meets them instead of holding them
/// all, so memory stays bounded whatever the file.
const MAX_LISTED_BYTES: usize = 32 << 20;

/// The key of one series, by the series' number: 64 bytes, one cache line.
#[derive(Debug)]
struct Slot {
    hash: u64,
    /// Length of the key ([`SUPERSEDED`]: the series was listed again under another number);
    /// only the first `INLINE_KEY` bytes are held here.
    length: u32,
    key: [u8; INLINE_KEY],
}

/// The length of a slot whose series was listed again: it matches no key.
const SUPERSEDED: u32 = u32::MAX;

impl Slot {
    fn new(hash: u64, key: &str) -> Self {
        let mut slot = Self {
            hash,
            length: u32::try_from(key.len()).expect("SKUs and locations are checked short"),
            key: [0; INLINE_KEY],
        };
        let inline = key.len().min(INLINE_KEY);
        slot.key[..inline].copy_from_slice(&key.as_bytes()[..inline]);
        slot
    }

    /// Whether this slot, the series numbered `number`, is the series of `key`.
    fn holds(&self, number: u32, key: &str, listed: &SeriesList, fresh: &[BatchSeries]) -> bool {
        if self.length as usize != key.len() {
            return false;
        }
        if key.len() <= INLINE_KEY {
            return &self.key[..key.len()] == key.as_bytes();
        }
        let Some(known) = series_at(listed, fresh, number) else {
            return false;
        };
        let (sku, location) = key.split_once('\0').unwrap_or((key, ""));
        known.sku.as_str() == sku && known.location.as_str() == location
    }
}

/// The series numbered `index`: listed by an earlier batch, or fresh in this one.
fn series_at<'a>(
    listed: &'a SeriesList,
    fresh: &'a [BatchSeries],
    index: u32,
) -> Option<&'a BatchSeries> {
    match index.checked_sub(listed_len(listed)) {
        Some(fresh_index) => fresh.get(fresh_index as usize),
        None => listed.get(index),
    }
}

fn listed_len(listed: &SeriesList) -> u32 {
    u32::try_from(listed.len()).expect("a list numbers its series with u32")
}

/// A batch being filled, with the index of the upload's series by SKU and location.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    lines: Vec<BatchLine>,
    /// Room for lines a batch starts with.
    line_capacity: usize,
    /// Series listed by the batches taken so far, shared with them.
    listed: SeriesList,
    /// Series first met since the last `take`: numbered after the listed ones.
    fresh: Vec<BatchSeries>,
    /// The key of each listed and fresh series, by number.
    slots: Vec<Slot>,
    /// Series numbers by the hash of their key, `sku NUL location` (neither may hold a control
    /// character).
    index: hashbrown::HashTable<u32>,
    /// The series of the last row added.
    last: Option<u32>,
    hasher: foldhash::fast::RandomState,
    key: String,
    /// Bytes the fresh series and their index slots hold, roughly.
    series_bytes: usize,
    /// Bytes the listed series and their index slots hold, roughly.
    listed_bytes: usize,
}

impl BatchBuilder {
    /// An empty builder with room for `lines` lines.
    pub fn with_capacity(lines: usize) -> Self {
        Self {
            lines: Vec::with_capacity(lines),
            line_capacity: lines,
            listed: SeriesList::shared(),
            ..Self::default()
        }
    }

    /// Lines added since the last `take`.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Memory the batch adds, roughly: its lines, and the series it lists first with their texts.
    pub fn size_bytes(&self) -> usize {
        self.lines.len() * std::mem::size_of::<BatchLine>() + self.series_bytes
    }

    /// Whether the listed series and the batch's fresh ones fill the list's budget: the next
    /// `take` starts a new list. Ending the batch there keeps a list (and the hash slots sized for
    /// it) within the budget, instead of overshooting it by one batch's fresh series.
    pub fn list_full(&self) -> bool {
        self.listed_bytes + self.series_bytes >= MAX_LISTED_BYTES
    }

    /// Whether no line was added since the last `take`.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Adds a row; its SKU and location are copied only when no batch of the list names them yet.
    pub fn push(&mut self, row: RowParts<'_>) {
        self.key.clear();
        self.key.push_str(&row.sku);
        self.key.push('\0');
        self.key.push_str(&row.location);
        let (slots, listed, fresh, key) = (&self.slots, &self.listed, &self.fresh, &self.key);
        // Files repeat their series in one order day after day, so the series listed after the
        // last row's is usually this row's: checked first, it reads memory next to the last
        // row's instead of hashing the key and probing a random place.
        let predicted = self
            .last
            .and_then(|last| last.checked_add(1))
            .filter(|next| {
                slots
                    .get(*next as usize)
                    .is_some_and(|slot| slot.holds(*next, key, listed, fresh))
            });
        let mut hash = None;
        let known = predicted.or_else(|| {
            let hashed = self.hasher.hash_one(key.as_bytes());
            hash = Some(hashed);
            self.index
                .find(hashed, |number| {
                    let slot = &slots[*number as usize];
                    slot.hash == hashed && slot.holds(*number, key, listed, fresh)
                })
                .copied()
        });
        let listed_len = listed_len(&self.listed);
        let series = match known {
            Some(series) if series >= listed_len => {
                let known = &mut self.fresh[(series - listed_len) as usize];
                if known.product.is_none() {
                    known.product = row.product.map(Cow::into_owned);
                }
                series
            }
            Some(series)
                if row.product.is_some()
                    && self
                        .listed
                        .get(series)
                        .is_some_and(|known| known.product.is_none()) =>
            {
                // An earlier batch listed the series without a product name and this row has
                // one: list the series again, named, and give it to this and later rows.
                let hash = hash.unwrap_or_else(|| self.hasher.hash_one(self.key.as_bytes()));
                let named = self.add_fresh(&row, hash);
                self.slots[series as usize].length = SUPERSEDED;
                if let Some(number) = self.index.find_mut(hash, |number| *number == series) {
                    *number = named;
                }
                named
            }
            Some(series) => series,
            None => {
                let hash = hash.unwrap_or_else(|| self.hasher.hash_one(self.key.as_bytes()));
                let series = self.add_fresh(&row, hash);
                let slots = &self.slots;
                self.index
                    .insert_unique(hash, series, |number| slots[*number as usize].hash);
                series
            }
        };
        self.last = Some(series);
        if self.lines.capacity() == 0 {
            // Neither `with_capacity` nor `recycle` gave this batch its room.
            self.lines.reserve_exact(self.line_capacity);
        }
        self.lines.push(BatchLine {
            identity: row.identity,
            date: row.date,
            series,
            units: row.units,
            revenue: row.revenue,
        });
    }

    /// Lists the row's series (key hash `hash`) in this batch; its number.
    fn add_fresh(&mut self, row: &RowParts<'_>, hash: u64) -> u32 {
        let series = listed_len(&self.listed)
            .checked_add(
                u32::try_from(self.fresh.len())
                    .expect("a batch holds fewer series than lines, and lines fit in memory"),
            )
            .expect("a list holds fewer than 2^32 series");
        self.fresh.push(BatchSeries {
            sku: Sku::from_checked(&row.sku),
            location: Location::from_checked(&row.location),
            product: row.product.as_deref().map(str::to_owned),
        });
        self.slots.push(Slot::new(hash, &self.key));
        self.series_bytes += std::mem::size_of::<BatchSeries>()
            + std::mem::size_of::<Slot>()
            + std::mem::size_of::<u32>()
            + self.key.len();
        series
    }

    /// Gives the builder a buffer for the lines of the batch it starts after [`Self::take`] (such
    /// as the one a sort moved a taken batch's lines out of): memory touched before, where a new
    /// buffer would fault in fresh pages. Ignored once the batch has lines.
    pub fn recycle(&mut self, mut lines: Vec<BatchLine>) {
        if self.lines.is_empty() && lines.capacity() > self.lines.capacity() {
            lines.clear();
            self.lines = lines;
        }
    }

    /// Adds a line read as a `SalesLine`.
    pub fn push_line(&mut self, line: SalesLine) {
        self.push(RowParts {
            identity: line.identity,
            date: line.date,
            sku: Cow::Borrowed(line.sku.as_str()),
            location: Cow::Borrowed(line.location.as_str()),
            product: line.product.map(Cow::Owned),
            units: line.units,
            revenue: line.revenue,
        });
    }

    /// The batch so far: its lines, and the list of series with the ones it met first added. The
    /// builder starts a new batch, sharing the list, with room for as many lines: the buffer given
    /// to [`Self::recycle`] before the next line, else a new one made at that line (made here and
    /// then replaced, it raised a 1M import's peak RSS by ~10 MB).
    pub fn take(&mut self) -> SalesBatch {
        self.line_capacity = self.line_capacity.max(self.lines.capacity());
        self.listed.push(std::mem::take(&mut self.fresh));
        self.listed_bytes += std::mem::take(&mut self.series_bytes);
        let batch = SalesBatch {
            series: self.listed.clone(),
            lines: std::mem::take(&mut self.lines),
        };
        if self.listed_bytes >= MAX_LISTED_BYTES {
            self.index.clear();
            self.slots.clear();
            self.last = None;
            self.listed = SeriesList::shared();
            self.listed_bytes = 0;
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IdentityScheme, LineSorter};

    fn row<'a>(sku: &'a str, location: &'a str, product: Option<&'a str>) -> RowParts<'a> {
        RowParts {
            identity: LineIdentity::of(IdentityScheme::default(), &[sku.as_bytes()]),
            date: NaiveDate::from_ymd_opt(2024, 3, 1).unwrap(),
            sku: Cow::Borrowed(sku),
            location: Cow::Borrowed(location),
            product: product.map(Cow::Borrowed),
            units: 1.0,
            revenue: 2.0,
        }
    }

    #[test]
    fn a_batch_lists_each_series_once_with_its_first_product_name() {
        let mut builder = BatchBuilder::with_capacity(4);
        builder.push(row("A", "X", None));
        builder.push(row("A", "Y", Some("Mug")));
        builder.push(row("A", "X", Some("Cup")));
        builder.push(row("A", "X", Some("Bowl")));
        let batch = builder.take();
        let series: Vec<(&str, &str, Option<&str>)> =
            batch.series.iter().map(BatchSeries::parts).collect();
        assert_eq!(series, [("A", "X", Some("Cup")), ("A", "Y", Some("Mug"))]);
        let indexes: Vec<u32> = batch.lines.iter().map(|line| line.series).collect();
        assert_eq!(indexes, [0, 1, 0, 0]);
        assert!(builder.is_empty());
    }

    #[test]
    fn a_taken_batch_sorted_out_of_its_buffer_gives_the_buffer_to_the_next_batch() {
        let mut builder = BatchBuilder::with_capacity(4);
        // Identities hash the SKU: these three are out of merge order in one order or the other.
        let skus = ["a", "b", "c"];
        for sku in skus {
            builder.push(row(sku, "", None));
        }
        let mut first = builder.take();
        if first.in_merge_order() {
            first.lines.reverse();
        }
        let unsorted = first
            .sort_lines_with(&mut LineSorter::default())
            .expect("unsorted lines move to a new buffer");
        assert!(first.in_merge_order());
        assert!(unsorted.is_empty());
        let recycled = unsorted.as_ptr();
        builder.recycle(unsorted);
        builder.push(row("d", "", None));
        builder.push(row("a", "", None));
        let second = builder.take();
        assert_eq!(
            second.lines.as_ptr(),
            recycled,
            "the next batch is built in it"
        );
        let names: Vec<&str> = second
            .lines
            .iter()
            .map(|line| second.series_of(line).sku.as_str())
            .collect();
        assert_eq!(names, ["d", "a"]);
        // A sorted batch keeps its buffer, and the builder starts a new one.
        let mut sorted = second;
        sorted.sort_lines();
        assert!(sorted.sort_lines_with(&mut LineSorter::default()).is_none());
        builder.push(row("e", "", None));
        assert_eq!(builder.take().lines.len(), 1);
    }

    #[test]
    fn sku_and_location_texts_cannot_run_into_each_other() {
        let mut builder = BatchBuilder::with_capacity(2);
        builder.push(row("AB", "C", None));
        builder.push(row("A", "BC", None));
        assert_eq!(builder.take().series.len(), 2);
    }

    #[test]
    fn a_later_batch_lists_only_the_series_it_meets_first_and_shares_the_others() {
        let mut builder = BatchBuilder::with_capacity(4);
        builder.push(row("A", "X", None));
        builder.push(row("B", "X", None));
        let first = builder.take();
        builder.push(row("B", "X", None));
        builder.push(row("C", "X", None));
        builder.push(row("A", "X", None));
        let second = builder.take();
        assert_eq!(second.series.id(), first.series.id());
        assert_ne!(second.series.id(), 0);
        let series: Vec<&str> = second.series.iter().map(|one| one.sku.as_str()).collect();
        assert_eq!(series, ["A", "B", "C"]);
        let indexes: Vec<u32> = second.lines.iter().map(|line| line.series).collect();
        assert_eq!(indexes, [1, 2, 0]);
        // The first batch still reads as it was sent.
        assert_eq!(first.series.len(), 2);
        let skus: Vec<String> = second
            .to_lines()
            .into_iter()
            .map(|line| line.sku.as_str().to_owned())
            .collect();
        assert_eq!(skus, ["B", "C", "A"]);
    }

    #[test]
    fn a_product_name_met_after_its_series_was_listed_lists_it_again_named() {
        let mut builder = BatchBuilder::with_capacity(4);
        builder.push(row("A", "X", None));
        builder.take();
        builder.push(row("A", "X", None));
        builder.push(row("A", "X", Some("Mug")));
        builder.push(row("A", "X", Some("Cup")));
        let second = builder.take();
        let products: Vec<Option<String>> = second
            .to_lines()
            .into_iter()
            .map(|line| line.product)
            .collect();
        assert_eq!(
            products,
            [None, Some("Mug".to_owned()), Some("Mug".to_owned())]
        );
        builder.push(row("A", "X", None));
        let third = builder.take();
        assert_eq!(third.to_lines()[0].product.as_deref(), Some("Mug"));
        assert_eq!(third.series.len(), 2);
    }

    #[test]
    fn rows_in_the_order_of_the_day_before_find_their_series_and_a_renamed_one_is_not_predicted() {
        let mut builder = BatchBuilder::with_capacity(16);
        for sku in ["A", "B", "C"] {
            builder.push(row(sku, "X", None));
        }
        builder.take();
        builder.push(row("A", "X", None));
        builder.push(row("B", "X", Some("Mug")));
        builder.push(row("C", "X", None));
        builder.push(row("A", "X", None));
        // After A comes B's old, unnamed number: not B any more.
        builder.push(row("B", "X", None));
        builder.push(row("C", "X", None));
        builder.push(row("D", "X", None));
        let batch = builder.take();
        let numbers: Vec<u32> = batch.lines.iter().map(|line| line.series).collect();
        assert_eq!(numbers, [0, 3, 2, 0, 3, 2, 4]);
        let lines = batch.to_lines();
        assert_eq!(lines[4].product.as_deref(), Some("Mug"));
        assert_eq!(lines[6].sku.as_str(), "D");
    }

    #[test]
    fn a_builder_says_when_one_batch_of_fresh_series_fills_the_list() {
        let mut builder = BatchBuilder::with_capacity(1024);
        let long = "L".repeat(200);
        let mut sku = 0;
        while !builder.list_full() {
            builder.push(row(&format!("{long}{sku}"), "X", None));
            sku += 1;
            assert!(sku < MAX_LISTED_BYTES / 200, "never full");
        }
        // Full within one series of the budget.
        let per_series = std::mem::size_of::<BatchSeries>() + std::mem::size_of::<Slot>() + 206;
        assert!((sku - 1) * per_series < MAX_LISTED_BYTES + 4 * per_series);
        let full = builder.take();
        assert_eq!(full.series.len(), sku);
        builder.push(row(&format!("{long}0"), "X", None));
        assert!(!builder.list_full());
        let next = builder.take();
        assert_ne!(next.series.id(), full.series.id());
        assert_eq!(next.series.len(), 1);
    }

    #[test]
    fn a_builder_starts_a_new_list_once_the_listed_series_fill_their_budget() {
        let mut builder = BatchBuilder::with_capacity(1024);
        let long = "L".repeat(200);
        let per_series = std::mem::size_of::<BatchSeries>() + std::mem::size_of::<Slot>() + 206;
        let mut first = None;
        let mut sku = 0;
        // Enough distinct series, a batch at a time, to pass the budget once.
        while sku * per_series < MAX_LISTED_BYTES + 4 * 1024 * per_series {
            for _ in 0..1024 {
                builder.push(row(&format!("{long}{sku}"), "X", None));
                sku += 1;
            }
            let batch = builder.take();
            first.get_or_insert(batch.series.id());
        }
        builder.push(row("A", "X", None));
        assert!(!builder.list_full());
        let last = builder.take();
        assert_ne!(Some(last.series.id()), first);
        assert!(last.series.len() < sku, "the list kept every series");
        assert_eq!(last.to_lines()[0].sku.as_str(), "A");
    }

    #[test]
    fn long_series_texts_that_share_a_beginning_stay_apart() {
        let long = "S".repeat(INLINE_KEY + 10);
        let (first, second) = (format!("{long}1"), format!("{long}2"));
        let mut builder = BatchBuilder::with_capacity(8);
        for (sku, location) in [
            (first.as_str(), "X"),
            (second.as_str(), "X"),
            (first.as_str(), "X"),
            (first.as_str(), "Y"),
            (second.as_str(), "X"),
            (long.as_str(), "1\u{1}X"),
        ] {
            builder.push(row(sku, location, None));
        }
        let batch = builder.take();
        let indexes: Vec<u32> = batch.lines.iter().map(|line| line.series).collect();
        assert_eq!(indexes, [0, 1, 0, 2, 1, 3]);
        assert_eq!(
            batch.series.get(2).map(BatchSeries::parts),
            Some((first.as_str(), "Y", None))
        );
    }
}
