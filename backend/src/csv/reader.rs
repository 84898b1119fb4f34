//! The streaming row reader: bytes in, `SalesLine`s or `RowError`s out.

use std::borrow::Cow;
use std::io::Read;

use chrono::NaiveDate;

use super::batch::{BatchBuilder, RowParts};
use super::format::{self, HeaderError, Layout, SalesFormat};
use super::records::{Record, RecordReader};
use super::value::{self, DateOrder};
use crate::domain::{IdentityScheme, LineIdentity, Location, SalesLine, Sku, Timezone, trim};
use crate::store::RowError;

/// How to read a file.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOptions {
    /// The tenant's zone: instants become local dates in it.
    pub timezone: Timezone,
    /// How to read all-numeric dates.
    pub date_order: DateOrder,
    /// How the tenant's line identities are hashed.
    pub identity: IdentityScheme,
}

/// Why a file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The header matched no format.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// The file is empty.
    #[error("the file is empty: expected a header row")]
    Empty,
    /// Reading the bytes failed (a broken connection or file).
    #[error("reading the file failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Order-level values that Shopify writes only on an order's first row.
#[derive(Default)]
struct ShopifyOrder {
    name: String,
    created_at: String,
    cancelled_at: String,
    financial_status: String,
    location: String,
}

/// Where a reader's CSV records come from.
enum Records<R: Read> {
    /// Parsed on the reader's own thread.
    Inline(Box<RecordReader<R>>),
    /// Parsed ahead on a thread of their own (see [`SalesReader::parsing_ahead`]).
    Ahead(Ahead),
}

/// Records parsed on another thread, in chunks, handed over in file order.
struct Ahead {
    chunks: std::sync::mpsc::Receiver<Parsed>,
    /// Chunks used up, back to the parsing thread to be filled again (their buffers reused).
    used: std::sync::mpsc::SyncSender<Vec<Record>>,
    current: Vec<Record>,
    next: usize,
}

/// What the parsing thread hands over.
enum Parsed {
    /// The next non-blank records.
    Records(Vec<Record>),
    /// Reading failed: the file ends here.
    Failed(std::io::Error),
}

/// Records per chunk handed from the parsing thread to the reader.
const CHUNK_RECORDS: usize = 1024;
/// Chunks the parsing thread may be ahead of the reader.
const CHUNKS_AHEAD: usize = 8;

/// Reads sales rows from a CSV stream.
pub struct SalesReader<R: Read> {
    records: Records<R>,
    layout: Layout,
    options: ReadOptions,
    record: Record,
    order: ShopifyOrder,
    /// The last date cell read and its date: exports list a day's rows together, so most rows
    /// repeat the date of the row before.
    last_date: std::cell::RefCell<(String, Option<NaiveDate>)>,
    /// The current record's fields, joined, when they are valid UTF-8 together; else empty (a
    /// non-empty cell then finds nothing in it, and an empty one reads "" either way).
    text: String,
}

impl<R: Read> std::fmt::Debug for SalesReader<R> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SalesReader")
            .field("format", &self.layout.format)
            .finish_non_exhaustive()
    }
}

/// Picks `,`, `;` or tab by counting them in the first line.
fn sniff_delimiter(head: &[u8]) -> u8 {
    let line = head.split(|byte| *byte == b'\n').next().unwrap_or(head);
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|delimiter| line.iter().filter(|byte| *byte == delimiter).count())
        .unwrap_or(b',')
}

/// Decodes a cell: UTF-8 when it is, Latin-1 (every byte a code point) otherwise.
fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(bytes.iter().map(|byte| char::from(*byte)).collect()),
    }
}

impl<R: Read> SalesReader<R> {
    /// Reads the header and recognises the format.
    ///
    /// # Errors
    /// When the file is empty, unreadable or its header matches no format.
    pub fn new(input: R, options: ReadOptions) -> Result<Self, ReadError> {
        let mut records = RecordReader::sniffing(input, sniff_delimiter)?;
        let mut header = Record::default();
        if !records.read(&mut header)? {
            return Err(ReadError::Empty);
        }
        let names = header.iter().map(|cell| text(cell).into_owned()).collect();
        let layout = format::detect(names)?;
        Ok(Self {
            records: Records::Inline(Box::new(records)),
            layout,
            options,
            record: Record::default(),
            order: ShopifyOrder::default(),
            last_date: std::cell::RefCell::default(),
            text: String::new(),
        })
    }

    /// The recognised format.
    pub fn format(&self) -> SalesFormat {
        self.layout.format
    }

    /// Reads the next data row: `None` at the end, a line or row error otherwise.
    ///
    /// # Errors
    /// An IO error ends the file (the caller stops); a `RowError` concerns only its row.
    pub fn next_row(&mut self) -> Option<Result<Result<SalesLine, RowError>, std::io::Error>> {
        let line = match self.next_record()? {
            Ok(line) => line,
            Err(error) => return Some(Err(error)),
        };
        Some(Ok(self.parse_row(line)))
    }

    /// Reads the next data row into `batch`: `None` at the end, the line's date or the row error
    /// otherwise.
    /// Canonical rows go in without copying their texts when the batch lists their series already.
    ///
    /// # Errors
    /// An IO error ends the file (the caller stops); a `RowError` concerns only its row.
    pub fn read_into(
        &mut self,
        batch: &mut BatchBuilder,
    ) -> Option<Result<Result<NaiveDate, RowError>, std::io::Error>> {
        let line = match self.next_record()? {
            Ok(line) => line,
            Err(error) => return Some(Err(error)),
        };
        let row = match self.layout.format {
            SalesFormat::Canonical => self.canonical_parts(line).map(|row| {
                let date = row.date;
                batch.push(row);
                date
            }),
            _ => self.parse_row(line).map(|line| {
                let date = line.date;
                batch.push_line(line);
                date
            }),
        };
        Some(Ok(row))
    }

    /// Reads the next non-blank record: its line number. Keeps the record's text when the
    /// whole record is valid UTF-8 (see [`Self::cell`]).
    fn next_record(&mut self) -> Option<Result<u64, std::io::Error>> {
        let next = self.next_raw_record();
        self.text.clear();
        if let Some(Ok(_)) = next
            && let Ok(text) = std::str::from_utf8(self.record.as_slice())
        {
            self.text.push_str(text);
        }
        next
    }

    fn next_raw_record(&mut self) -> Option<Result<u64, std::io::Error>> {
        match &mut self.records {
            Records::Inline(records) => loop {
                match records.read(&mut self.record) {
                    Ok(false) => return None,
                    Err(error) => return Some(Err(error)),
                    Ok(true) if is_blank(&self.record) => {}
                    Ok(true) => return Some(Ok(self.record.line())),
                }
            },
            Records::Ahead(ahead) => loop {
                if let Some(record) = ahead.current.get_mut(ahead.next) {
                    // The parsed record in, the last one out (its buffers go back for reuse).
                    std::mem::swap(&mut self.record, record);
                    ahead.next += 1;
                    return Some(Ok(self.record.line()));
                }
                let used = std::mem::take(&mut ahead.current);
                ahead.next = 0;
                // A full return channel only means the parser has chunks enough.
                let _ = ahead.used.try_send(used);
                match ahead.chunks.recv() {
                    Ok(Parsed::Records(chunk)) => ahead.current = chunk,
                    Ok(Parsed::Failed(error)) => return Some(Err(error)),
                    Err(_) => return None,
                }
            },
        }
    }

    /// A cell as text: UTF-8, else Latin-1. A cell of a record that is valid UTF-8 as a whole is
    /// cut from the record's text, validated once for all its cells; one whose ends fall inside a
    /// character (so not valid on its own) is read as the other cells of invalid records are.
    fn cell(&self, index: usize) -> Cow<'_, str> {
        if let Some(cell) = self
            .record
            .range(index)
            .and_then(|range| self.text.get(range))
        {
            return Cow::Borrowed(cell);
        }
        self.record.get(index).map_or(Cow::Borrowed(""), text)
    }

    fn optional(&self, index: Option<usize>) -> Option<Cow<'_, str>> {
        index
            .map(|index| self.cell(index))
            .filter(|value| !trim(value).is_empty())
    }

    fn error(&self, line: u64, index: Option<usize>, message: impl Into<String>) -> RowError {
        RowError {
            line,
            column: index.and_then(|index| self.layout.names.get(index).cloned()),
            message: message.into(),
        }
    }

    fn parse_row(&mut self, line: u64) -> Result<SalesLine, RowError> {
        match self.layout.format {
            SalesFormat::Canonical => self.canonical_parts(line).map(RowParts::into_line),
            SalesFormat::ShopifyOrders => self.shopify_row(line),
            SalesFormat::SquareItems => self.square_row(line),
        }
    }

    fn required_number(&self, line: u64, index: usize) -> Result<f64, RowError> {
        let cell = self.cell(index);
        if trim(&cell).is_empty() {
            return Err(self.error(line, Some(index), "value is missing"));
        }
        value::number(&cell).map_err(|message| self.error(line, Some(index), message))
    }

    fn optional_number(&self, line: u64, index: Option<usize>) -> Result<Option<f64>, RowError> {
        match self.optional(index) {
            None => Ok(None),
            Some(cell) => value::number(&cell)
                .map(Some)
                .map_err(|message| self.error(line, index, message)),
        }
    }

    /// The local date of a date cell; the same cell text as the row before gives the same date.
    fn date(&self, line: u64, index: usize, cell: &str) -> Result<chrono::NaiveDate, RowError> {
        let mut last = self.last_date.borrow_mut();
        if let (text, Some(date)) = &*last
            && text == cell
        {
            return Ok(*date);
        }
        let date = value::local_date(cell, self.options.timezone.tz(), self.options.date_order)
            .map_err(|message| self.error(line, Some(index), message))?;
        last.0.clear();
        last.0.push_str(cell);
        last.1 = Some(date);
        Ok(date)
    }

    fn sku_and_location(
        &self,
        line: u64,
        sku: &str,
        location: Option<&str>,
    ) -> Result<(Sku, Location), RowError> {
        let sku_index = self.layout.columns.sku.or(self.layout.columns.product);
        let sku = Sku::parse(sku).map_err(|error| self.error(line, sku_index, error.0))?;
        let location = Location::parse(location.unwrap_or(""))
            .map_err(|error| self.error(line, self.layout.columns.location, error.0))?;
        Ok((sku, location))
    }

    fn canonical_parts(&self, line: u64) -> Result<RowParts<'_>, RowError> {
        let columns = &self.layout.columns;
        let date_cell = self.cell(columns.date);
        let date = self.date(line, columns.date, &date_cell)?;
        let sku_index = columns
            .sku
            .expect("canonical layouts always have a SKU column");
        let sku = checked(self.cell(sku_index), Sku::check)
            .map_err(|error| self.error(line, Some(sku_index), error.0))?;
        let location = checked(
            self.optional(columns.location).unwrap_or(Cow::Borrowed("")),
            Location::check,
        )
        .map_err(|error| self.error(line, columns.location, error.0))?;
        let units = self.required_number(line, columns.quantity)?;
        let price = self.optional_number(line, columns.unit_price)?;
        if let Some(currency) = self.optional(columns.currency) {
            let currency = currency.trim();
            if currency.len() != 3 || !currency.bytes().all(|byte| byte.is_ascii_alphabetic()) {
                return Err(self.error(
                    line,
                    columns.currency,
                    format!("\"{currency}\" is not a three-letter currency code"),
                ));
            }
        }
        let revenue = price.map_or(0.0, |price| units * price);
        let kind: &[u8] = if units < 0.0 { b"refund" } else { b"sale" };
        let identity = match self.optional(columns.order_id) {
            Some(order) => {
                let line_part = self.optional(columns.line_id);
                match line_part {
                    Some(line_id) => LineIdentity::of(
                        self.options.identity,
                        &[
                            b"order",
                            order.trim().as_bytes(),
                            line_id.trim().as_bytes(),
                            kind,
                        ],
                    ),
                    None => LineIdentity::of(
                        self.options.identity,
                        &[
                            b"order",
                            order.trim().as_bytes(),
                            sku.as_bytes(),
                            location.as_bytes(),
                            kind,
                        ],
                    ),
                }
            }
            None => LineIdentity::of(
                self.options.identity,
                &[
                    b"row",
                    trim(&date_cell).as_bytes(),
                    sku.as_bytes(),
                    location.as_bytes(),
                    &units.to_bits().to_be_bytes(),
                    &revenue.to_bits().to_be_bytes(),
                ],
            ),
        };
        Ok(RowParts {
            identity,
            date,
            sku,
            location,
            product: self.optional(columns.product).map(|product| match product {
                Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
                Cow::Owned(text) => Cow::Owned(text.trim().to_owned()),
            }),
            units,
            revenue,
        })
    }

    fn shopify_row(&mut self, line: u64) -> Result<SalesLine, RowError> {
        let columns = self.layout.columns.clone();
        let order_index = columns
            .order_id
            .expect("Shopify layouts always have a Name column");
        let name = self.cell(order_index).trim().to_owned();
        if name.is_empty() {
            return Err(self.error(line, Some(order_index), "order name is missing"));
        }
        let own = |reader: &Self, index: Option<usize>| {
            reader.optional(index).map(|value| value.trim().to_owned())
        };
        let created_at = own(self, Some(columns.date));
        let cancelled_at = own(self, columns.cancelled_at);
        let financial_status = own(self, columns.financial_status);
        let location = own(self, columns.location);
        if name != self.order.name {
            // A new order: its first row carries the order-level columns.
            self.order = ShopifyOrder {
                name: name.clone(),
                created_at: created_at.unwrap_or_default(),
                cancelled_at: cancelled_at.unwrap_or_default(),
                financial_status: financial_status.unwrap_or_default(),
                location: location.unwrap_or_default(),
            };
        } else {
            // Later rows of the same order: fill what Shopify left blank.
            if let Some(created_at) = created_at {
                self.order.created_at = created_at;
            }
            if let Some(cancelled_at) = cancelled_at {
                self.order.cancelled_at = cancelled_at;
            }
            if let Some(status) = financial_status {
                self.order.financial_status = status;
            }
            if let Some(location) = location {
                self.order.location = location;
            }
        }
        if self.order.created_at.is_empty() {
            return Err(self.error(
                line,
                Some(columns.date),
                "date is empty (and no earlier row of this order has one)",
            ));
        }
        let date = self.date(line, columns.date, &self.order.created_at)?;
        let sku_text = self
            .optional(columns.sku)
            .or_else(|| self.optional(columns.product))
            .map(|value| value.trim().to_owned())
            .ok_or_else(|| {
                self.error(
                    line,
                    columns.sku.or(columns.product),
                    "line item has neither a SKU nor a name",
                )
            })?;
        let location_text = (!self.order.location.is_empty()).then(|| self.order.location.clone());
        let (sku, location) = self.sku_and_location(line, &sku_text, location_text.as_deref())?;
        let quantity = self.required_number(line, columns.quantity)?;
        let price = self
            .optional_number(line, columns.unit_price)?
            .unwrap_or(0.0);
        let discount = self.optional_number(line, columns.discount)?.unwrap_or(0.0);
        let status = self.order.financial_status.to_ascii_lowercase();
        // A cancelled, fully refunded or voided order sold nothing.
        let void =
            !self.order.cancelled_at.is_empty() || status == "refunded" || status == "voided";
        let (units, revenue) = if void {
            (0.0, 0.0)
        } else {
            (quantity, quantity * price - discount)
        };
        Ok(SalesLine {
            identity: LineIdentity::of(
                self.options.identity,
                &[b"shopify", name.as_bytes(), sku.as_str().as_bytes()],
            ),
            date,
            sku,
            location,
            product: own(self, columns.product),
            units,
            revenue,
        })
    }

    fn square_row(&self, line: u64) -> Result<SalesLine, RowError> {
        let columns = &self.layout.columns;
        // Square writes the seller's local date and time; no conversion.
        let date_cell = self.cell(columns.date);
        let date = self.date(line, columns.date, &date_cell)?;
        let item = self
            .optional(columns.product)
            .map(|item| item.trim().to_owned());
        let variant = self
            .optional(columns.variant)
            .map(|variant| variant.trim().to_owned())
            .filter(|variant| !variant.eq_ignore_ascii_case("regular"));
        let sku_text = match (self.optional(columns.sku), &item) {
            (Some(sku), _) => sku.trim().to_owned(),
            (None, Some(item)) => match &variant {
                Some(variant) => format!("{item} - {variant}"),
                None => item.clone(),
            },
            (None, None) => {
                return Err(self.error(
                    line,
                    columns.sku.or(columns.product),
                    "row has neither a SKU nor an item name",
                ));
            }
        };
        let location_cell = self.optional(columns.location);
        let (sku, location) = self.sku_and_location(line, &sku_text, location_cell.as_deref())?;
        let mut units = self.required_number(line, columns.quantity)?;
        let mut revenue = self.optional_number(line, columns.revenue)?.unwrap_or(0.0);
        let event = self
            .optional(columns.event_type)
            .map(|event| event.trim().to_ascii_lowercase());
        if event.as_deref() == Some("refund") {
            // Refund rows reduce sales whether Square printed their quantity signed or not.
            units = -units.abs();
            revenue = -revenue.abs();
        }
        let kind: &[u8] = if units < 0.0 { b"refund" } else { b"sale" };
        let time_cell = columns
            .time
            .map(|index| self.cell(index))
            .unwrap_or_default();
        let identity = match self.optional(columns.order_id) {
            Some(transaction) => LineIdentity::of(
                self.options.identity,
                &[
                    b"square",
                    transaction.trim().as_bytes(),
                    kind,
                    sku.as_str().as_bytes(),
                    item.as_deref().unwrap_or("").as_bytes(),
                ],
            ),
            None => LineIdentity::of(
                self.options.identity,
                &[
                    b"square-row",
                    date_cell.trim().as_bytes(),
                    time_cell.trim().as_bytes(),
                    sku.as_str().as_bytes(),
                    location.as_str().as_bytes(),
                    &units.to_bits().to_be_bytes(),
                    &revenue.to_bits().to_be_bytes(),
                ],
            ),
        };
        Ok(SalesLine {
            identity,
            date,
            sku,
            location,
            product: item,
            units,
            revenue,
        })
    }
}

/// Checks a cell with `check` (`Sku::check`, `Location::check`), keeping it borrowed when it was.
fn checked<'a>(
    cell: Cow<'a, str>,
    check: impl for<'b> Fn(&'b str) -> Result<&'b str, crate::domain::InvalidValue>,
) -> Result<Cow<'a, str>, crate::domain::InvalidValue> {
    match cell {
        Cow::Borrowed(text) => check(text).map(Cow::Borrowed),
        Cow::Owned(text) => check(&text).map(|text| Cow::Owned(text.to_owned())),
    }
}

impl<R: Read + Send + 'static> SalesReader<R> {
    /// Moves the CSV parsing (splitting the bytes into records, quotes and all) to a thread of
    /// its own, a few chunks ahead of this reader, which then only checks and converts rows: on a
    /// large file the reader's thread is an import's busiest, and this lends it part of another
    /// core. Rows, line numbers and errors come out exactly as before.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn parsing_ahead(mut self) -> Result<Self, ReadError> {
        let Records::Inline(records) = self.records else {
            return Ok(self);
        };
        let (chunks, received) = std::sync::mpsc::sync_channel(CHUNKS_AHEAD);
        let (used, returned) = std::sync::mpsc::sync_channel(CHUNKS_AHEAD + 2);
        std::thread::Builder::new()
            .name("csv-parse".into())
            .spawn(move || parse_ahead(*records, &chunks, &returned))?;
        self.records = Records::Ahead(Ahead {
            chunks: received,
            used,
            current: Vec::new(),
            next: 0,
        });
        Ok(self)
    }
}

/// The parsing thread: fills chunks (reusing those given back) with non-blank records and hands
/// them over in order, until the file ends, reading fails or the reader is gone.
fn parse_ahead<R: Read>(
    mut records: RecordReader<R>,
    chunks: &std::sync::mpsc::SyncSender<Parsed>,
    returned: &std::sync::mpsc::Receiver<Vec<Record>>,
) {
    loop {
        let mut chunk = returned
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK_RECORDS));
        let mut filled = 0;
        // Ok(true): the chunk is full and more may follow; Ok(false): the file ended.
        let read = loop {
            if filled == chunk.len() {
                chunk.push(Record::default());
            }
            match records.read(&mut chunk[filled]) {
                Ok(true) if is_blank(&chunk[filled]) => {}
                Ok(true) => {
                    filled += 1;
                    if filled == CHUNK_RECORDS {
                        break Ok(true);
                    }
                }
                other => break other,
            }
        };
        chunk.truncate(filled);
        if !chunk.is_empty() && chunks.send(Parsed::Records(chunk)).is_err() {
            return;
        }
        match read {
            Ok(true) => {}
            Ok(false) => return,
            Err(error) => {
                let _ = chunks.send(Parsed::Failed(error));
                return;
            }
        }
    }
}

/// Whether a record is blank (a lone CR, trailing newlines): not a row.
fn is_blank(record: &Record) -> bool {
    record
        .iter()
        .all(|cell| cell.iter().all(u8::is_ascii_whitespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of `input` as text, read with the records parsed inline and parsed ahead on
    /// their own thread: both must read the same.
    fn read_all(input: &[u8]) -> Vec<String> {
        let inline = read_rows(input.to_vec(), false);
        let ahead = read_rows(input.to_vec(), true);
        assert_eq!(inline, ahead, "parsing ahead read something else");
        inline
    }

    fn read_rows(input: Vec<u8>, ahead: bool) -> Vec<String> {
        let options = ReadOptions {
            timezone: Timezone::parse("Europe/Berlin").unwrap(),
            date_order: DateOrder::Auto,
            identity: IdentityScheme::default(),
        };
        let reader = SalesReader::new(std::io::Cursor::new(input), options);
        let reader = if ahead {
            reader.and_then(SalesReader::parsing_ahead)
        } else {
            reader
        };
        let mut reader = match reader {
            Ok(reader) => reader,
            Err(error) => return vec![error.to_string()],
        };
        let mut rows = vec![reader.format().name().to_owned()];
        while let Some(row) = reader.next_row() {
            rows.push(match row.unwrap() {
                Ok(line) => format!(
                    "{} {} {} {} {}",
                    line.date,
                    line.sku.as_str(),
                    line.location.as_str(),
                    line.units,
                    line.revenue
                ),
                Err(error) => format!(
                    "line {}: column {:?}: {}",
                    error.line,
                    error.column.unwrap_or_default(),
                    error.message
                ),
            });
        }
        rows
    }

    /// Reads `input` into batches of `batch_lines`, as an import does: each line with its series'
    /// SKU, location and product name, and each row error, in file order.
    fn read_batched(input: &[u8], batch_lines: usize) -> Vec<String> {
        let options = ReadOptions {
            timezone: Timezone::parse("Europe/Berlin").unwrap(),
            date_order: DateOrder::Auto,
            identity: IdentityScheme::default(),
        };
        let mut reader = SalesReader::new(input, options).unwrap();
        let mut batch = BatchBuilder::with_capacity(batch_lines);
        let mut rows = Vec::new();
        let flush = |batch: &mut BatchBuilder, rows: &mut Vec<String>| {
            for line in batch.take().to_lines() {
                rows.push(described(&line));
            }
        };
        while let Some(row) = reader.read_into(&mut batch) {
            if let Err(error) = row.unwrap() {
                flush(&mut batch, &mut rows);
                rows.push(format!("{error:?}"));
            }
            if batch.len() == batch_lines {
                flush(&mut batch, &mut rows);
            }
        }
        flush(&mut batch, &mut rows);
        rows
    }

    #[track_caller]
    fn check(input: &str, expected: &[&str]) {
        assert_eq!(read_all(input.as_bytes()), expected);
        // Batches name series by index; unfolded, they hold exactly the rows read one by one.
        let options = ReadOptions {
            timezone: Timezone::parse("Europe/Berlin").unwrap(),
            date_order: DateOrder::Auto,
            identity: IdentityScheme::default(),
        };
        let Ok(mut reader) = SalesReader::new(input.as_bytes(), options) else {
            return;
        };
        let mut one_by_one = Vec::new();
        while let Some(row) = reader.next_row() {
            one_by_one.push(match row.unwrap() {
                Ok(line) => described(&line),
                Err(error) => format!("{error:?}"),
            });
        }
        for batch_lines in [1, 2, 1000] {
            let batched = read_batched(input.as_bytes(), batch_lines);
            assert_eq!(batched, one_by_one, "batches of {batch_lines}");
        }
    }

    /// A line without its product name (a batch names a series' product once; see `batch`).
    fn described(line: &SalesLine) -> String {
        format!(
            "{:?} {} {} {} {} {}",
            line.identity,
            line.date,
            line.sku.as_str(),
            line.location.as_str(),
            line.units,
            line.revenue
        )
    }

    /// Gives `data` in small pieces, then fails.
    struct BreaksAfter {
        data: std::io::Cursor<Vec<u8>>,
    }

    impl Read for BreaksAfter {
        fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
            let small = buffer.len().min(7);
            match self.data.read(&mut buffer[..small])? {
                0 => Err(std::io::Error::other("connection reset")),
                read => Ok(read),
            }
        }
    }

    #[test]
    fn a_read_that_breaks_ends_the_rows_after_those_before_it_whether_parsed_ahead_or_not() {
        let mut csv = String::from("date,sku,qty,product\n");
        for day in 1..=20 {
            csv.push_str(&format!("2024-01-{day:02},A,1,\"Big\nMug\"\n"));
        }
        for ahead in [false, true] {
            let input = BreaksAfter {
                data: std::io::Cursor::new(csv.clone().into_bytes()),
            };
            let reader = SalesReader::new(input, ReadOptions::default()).unwrap();
            let mut reader = if ahead {
                reader.parsing_ahead().unwrap()
            } else {
                reader
            };
            let mut lines = Vec::new();
            let mut broke = false;
            while let Some(row) = reader.next_row() {
                match row {
                    Ok(Ok(_)) => lines.push(Some(reader.record.line())),
                    Ok(Err(error)) => panic!("row error {error:?}"),
                    Err(error) => {
                        assert!(error.to_string().contains("connection reset"), "{error}");
                        broke = true;
                    }
                }
            }
            assert!(broke, "the broken read went unnoticed (ahead: {ahead})");
            // Every complete row before the break, each starting two lines after the one before.
            assert!(lines.len() >= 19, "{} rows (ahead: {ahead})", lines.len());
            for (index, line) in lines.iter().enumerate() {
                assert_eq!(*line, Some(2 + 2 * index as u64), "ahead: {ahead}");
            }
        }
    }

    #[test]
    fn canonical_rows_are_read_with_defaults() {
        check(
            "date,sku,quantity\n2024-03-01,A-1,3\n",
            &["canonical", "2024-03-01 A-1 default 3 0"],
        );
    }

    #[test]
    fn canonical_rows_with_price_and_location_have_revenue() {
        check(
            "Day;SKU;Qty;Store;Price\r\n01.03.2024;A-1;2;Berlin;\"2,50\"\r\n",
            &["canonical", "2024-03-01 A-1 Berlin 2 5"],
        );
    }

    #[test]
    fn non_numeric_quantity_names_line_and_column() {
        check(
            "sku,day,qty\nA-1,2024-03-01,x\nA-2,2024-03-01,1\n",
            &[
                "canonical",
                "line 2: column \"qty\": \"x\" is not a number",
                "2024-03-01 A-2 default 1 0",
            ],
        );
    }

    #[test]
    fn errors_in_crlf_files_name_the_line_a_text_editor_shows() {
        // Windows exports end lines with CRLF; an empty line is a line too.
        check(
            "sku,day,qty\r\nA-1,2024-03-01,1\r\n\r\nA-2,2024-03-01,x\r\nA-3,2024-03-01,\"y\"\r\n",
            &[
                "canonical",
                "2024-03-01 A-1 default 1 0",
                "line 4: column \"qty\": \"x\" is not a number",
                "line 5: column \"qty\": \"y\" is not a number",
            ],
        );
    }

    #[test]
    fn missing_fields_are_row_errors() {
        check(
            "date,sku,quantity\n2024-03-01,A-1\n",
            &["canonical", "line 2: column \"quantity\": value is missing"],
        );
    }

    #[test]
    fn quoted_fields_with_commas_and_newlines_are_one_cell() {
        check(
            "date,sku,product,quantity\n2024-03-01,A-1,\"Mug, large\nblue\",1\n2024-03-02,A-2,x,2\n",
            &[
                "canonical",
                "2024-03-01 A-1 default 1 0",
                "2024-03-02 A-2 default 2 0",
            ],
        );
    }

    #[test]
    fn repeated_series_in_a_batch_keep_their_own_values_and_identities() {
        check(
            "date,sku,store,quantity,price,product\n\
             2024-03-01,A-1,Berlin,2,1.50,Cup\n\
             2024-03-01, A-1 ,Berlin ,2,1.50,\n\
             2024-03-02,A-1,,x,1,\n\
             2024-03-02,A-1,,3,,\n\
             2024-03-02,B-1,Berlin,-1,2,Plate\n",
            &[
                "canonical",
                "2024-03-01 A-1 Berlin 2 3",
                "2024-03-01 A-1 Berlin 2 3",
                "line 4: column \"quantity\": \"x\" is not a number",
                "2024-03-02 A-1 default 3 0",
                "2024-03-02 B-1 Berlin -1 -2",
            ],
        );
    }

    #[test]
    fn latin1_cells_are_decoded() {
        let mut input = b"date,sku,quantity,store\n2024-03-01,A-1,1,K".to_vec();
        input.extend_from_slice(&[0xF6, b'l', b'n', b'\n']);
        assert_eq!(
            read_all(&input),
            vec!["canonical", "2024-03-01 A-1 Köln 1 0"]
        );
    }

    #[test]
    fn cells_that_split_a_character_are_latin1_even_when_the_record_joined_is_utf8() {
        // "A\xC3" and "\xA9B" are each invalid UTF-8, but joined they are "AéB": each cell is
        // still read on its own, as Latin-1. The next row, valid UTF-8 throughout, reads as UTF-8.
        let mut input = b"date,sku,store,quantity\n2024-03-01,A".to_vec();
        input.extend_from_slice(&[0xC3, b',', 0xA9]);
        input.extend_from_slice("B,1\n2024-03-01,Ä-1,Köln,2\n".as_bytes());
        assert_eq!(
            read_all(&input),
            vec![
                "canonical",
                "2024-03-01 A\u{c3} \u{a9}B 1 0",
                "2024-03-01 Ä-1 Köln 2 0"
            ]
        );
    }

    #[test]
    fn a_date_repeated_row_after_row_is_read_again_after_a_bad_one_and_when_it_changes() {
        check(
            "date,sku,quantity\n01.03.2024,A,1\n01.03.2024,B,1\n31.02.2024,C,1\n01.03.2024,D,1\n\
             02.03.2024,E,1\n01.03.2024,F,1\n",
            &[
                "canonical",
                "2024-03-01 A default 1 0",
                "2024-03-01 B default 1 0",
                "line 4: column \"date\": \"31.02.2024\" is not a date (expected e.g. 2024-03-01, 03/01/2024 or 01.03.2024)",
                "2024-03-01 D default 1 0",
                "2024-03-02 E default 1 0",
                "2024-03-01 F default 1 0",
            ],
        );
    }

    #[test]
    fn utf8_bom_is_ignored() {
        check(
            "\u{feff}date,sku,quantity\n2024-03-01,Ä-1,1\n",
            &["canonical", "2024-03-01 Ä-1 default 1 0"],
        );
    }

    #[test]
    fn blank_lines_are_skipped() {
        check(
            "date,sku,quantity\n\n2024-03-01,A,1\n\n",
            &["canonical", "2024-03-01 A default 1 0"],
        );
    }

    #[test]
    fn empty_file_is_refused() {
        check("", &["the file is empty: expected a header row"]);
    }

    #[test]
    fn shopify_order_level_columns_carry_to_later_line_items() {
        check(
            "Name,Financial Status,Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku,Cancelled at,Location\n\
             #1001,paid,2024-03-01 23:30:00 +0000,2,Mug,5.00,MUG-1,,Berlin\n\
             #1001,,,1,Cup,3.00,CUP-1,,\n\
             #1002,paid,2024-03-02 10:00:00 +0000,4,Mug,5.00,MUG-1,2024-03-03 10:00:00 +0000,Berlin\n",
            &[
                "shopify_orders",
                "2024-03-02 MUG-1 Berlin 2 10",
                "2024-03-02 CUP-1 Berlin 1 3",
                "2024-03-02 MUG-1 Berlin 0 0",
            ],
        );
    }

    #[test]
    fn square_refunds_reduce_sales() {
        check(
            "Date,Time,Time Zone,Item,Qty,Price Point Name,SKU,Gross Sales,Net Sales,Transaction ID,Event Type,Location\n\
             2024-03-01,13:45:12,Eastern Time (US & Canada),Latte,2,Regular,LAT-1,$9.00,$9.00,T1,Payment,Main St\n\
             2024-03-02,09:00:00,Eastern Time (US & Canada),Latte,1,Regular,LAT-1,$4.50,$4.50,T2,Refund,Main St\n\
             2024-03-02,09:05:00,Eastern Time (US & Canada),Scone,1,Large,,$3.00,$3.00,T3,Payment,Main St\n",
            &[
                "square_items",
                "2024-03-01 LAT-1 Main St 2 9",
                "2024-03-02 LAT-1 Main St -1 -4.5",
                "2024-03-02 Scone - Large Main St 1 3",
            ],
        );
    }
}
