//! Building `SalesBatch`es row by row: a batch lists each SKU and location pair once, so a row
//! costs one hash lookup of borrowed text instead of two heap strings.

use std::borrow::Cow;
use std::hash::BuildHasher;

use chrono::NaiveDate;

use crate::domain::{BatchLine, BatchSeries, LineIdentity, Location, SalesBatch, SalesLine, Sku};

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

/// One series in a batch's index: 64 bytes, one cache line.
#[derive(Debug)]
struct Slot {
    hash: u64,
    /// Index into the batch's series.
    series: u32,
    /// Length of the key; only the first `INLINE_KEY` bytes are held here.
    length: u32,
    key: [u8; INLINE_KEY],
}

impl Slot {
    fn holds(&self, hash: u64, key: &str, series: &[BatchSeries]) -> bool {
        if self.hash != hash || self.length as usize != key.len() {
            return false;
        }
        if key.len() <= INLINE_KEY {
            return &self.key[..key.len()] == key.as_bytes();
        }
        let known = &series[self.series as usize];
        let (sku, location) = key.split_once('\0').unwrap_or((key, ""));
        known.sku.as_str() == sku && known.location.as_str() == location
    }
}

/// A batch being filled, with the index of its series by SKU and location.
#[derive(Debug, Default)]
pub struct BatchBuilder {
    batch: SalesBatch,
    /// The batch's series by `sku NUL location` (neither may hold a control character).
    index: hashbrown::HashTable<Slot>,
    hasher: foldhash::fast::RandomState,
    key: String,
    /// Bytes the series and their index hold, roughly.
    series_bytes: usize,
}

impl BatchBuilder {
    /// An empty builder with room for `lines` lines.
    pub fn with_capacity(lines: usize) -> Self {
        Self {
            batch: SalesBatch {
                series: Vec::new(),
                lines: Vec::with_capacity(lines),
            },
            ..Self::default()
        }
    }

    /// Lines added since the last `take`.
    pub fn len(&self) -> usize {
        self.batch.lines.len()
    }

    /// Memory the batch holds, roughly: its lines, and its series with their texts.
    pub fn size_bytes(&self) -> usize {
        self.batch.lines.len() * std::mem::size_of::<BatchLine>() + self.series_bytes
    }

    /// Whether no line was added since the last `take`.
    pub fn is_empty(&self) -> bool {
        self.batch.lines.is_empty()
    }

    /// Adds a row; its SKU and location are copied only when the batch does not list them yet.
    pub fn push(&mut self, row: RowParts<'_>) {
        self.key.clear();
        self.key.push_str(&row.sku);
        self.key.push('\0');
        self.key.push_str(&row.location);
        let hash = self.hasher.hash_one(self.key.as_bytes());
        let known = self
            .index
            .find(hash, |slot| slot.holds(hash, &self.key, &self.batch.series))
            .map(|slot| slot.series);
        let series = match known {
            Some(series) => {
                let known = &mut self.batch.series[series as usize];
                if known.product.is_none() {
                    known.product = row.product.map(Cow::into_owned);
                }
                series
            }
            None => {
                let series = u32::try_from(self.batch.series.len())
                    .expect("a batch holds fewer series than lines, and lines fit in memory");
                self.batch.series.push(BatchSeries {
                    sku: Sku::from_checked(&row.sku),
                    location: Location::from_checked(&row.location),
                    product: row.product.map(Cow::into_owned),
                });
                let mut slot = Slot {
                    hash,
                    series,
                    length: u32::try_from(self.key.len())
                        .expect("SKUs and locations are checked short"),
                    key: [0; INLINE_KEY],
                };
                let inline = self.key.len().min(INLINE_KEY);
                slot.key[..inline].copy_from_slice(&self.key.as_bytes()[..inline]);
                self.index.insert_unique(hash, slot, |slot| slot.hash);
                // The series record with its texts, and its index slot.
                self.series_bytes += std::mem::size_of::<BatchSeries>()
                    + std::mem::size_of::<Slot>()
                    + self.key.len();
                series
            }
        };
        self.batch.lines.push(BatchLine {
            identity: row.identity,
            date: row.date,
            series,
            units: row.units,
            revenue: row.revenue,
        });
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

    /// The batch so far; the builder starts a new one with room for as many lines and series.
    /// Files repeat their series from batch to batch (every SKU and location sells most days), so
    /// the next batch's series list starts at the size of this one's instead of growing by doubling
    /// (each step copying the list and faulting in fresh memory).
    pub fn take(&mut self) -> SalesBatch {
        self.index.clear();
        self.series_bytes = 0;
        let lines = self.batch.lines.capacity();
        let series = self.batch.series.len();
        std::mem::replace(
            &mut self.batch,
            SalesBatch {
                series: Vec::with_capacity(series),
                lines: Vec::with_capacity(lines),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row<'a>(sku: &'a str, location: &'a str, product: Option<&'a str>) -> RowParts<'a> {
        RowParts {
            identity: LineIdentity::of(&[sku.as_bytes()]),
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
    fn sku_and_location_texts_cannot_run_into_each_other() {
        let mut builder = BatchBuilder::with_capacity(2);
        builder.push(row("AB", "C", None));
        builder.push(row("A", "BC", None));
        assert_eq!(builder.take().series.len(), 2);
    }

    #[test]
    fn a_new_batch_lists_its_series_again() {
        let mut builder = BatchBuilder::with_capacity(2);
        builder.push(row("A", "X", None));
        builder.take();
        builder.push(row("A", "X", None));
        let batch = builder.take();
        assert_eq!(batch.series.len(), 1);
        assert_eq!(batch.lines[0].series, 0);
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
        assert_eq!(batch.series[2].parts(), (first.as_str(), "Y", None));
    }
}
