//! Bulk-operation results (JSONL, API 2026-01 and later: `groupObjects` false): the rows of
//! `graphql/bulk_orders.graphql` read into [`OrderParts`], with each line item joined to its order
//! through `__parentId` wherever it sits in the file (before or after its parent, far away).
//!
//! Memory stays bounded whatever the file size: the download is partitioned, line by line as it
//! arrives, into bucket files by a hash of the order id (the row's own id, or its `__parentId`), so
//! an order and all its line items land in the same bucket; each bucket (a few MB) is then read and
//! sorted by order id into a run of its own ([`sort_bucket`]). The runs are then merged
//! ([`RunMerge`]): orders come out in ascending id, which is creation order, in batches that are
//! joined and applied one after another. Applying in creation order keeps each batch's writes on a
//! few days of sales pages and at the end of the orders table, where a hash-ordered batch would
//! touch pages all over the shop's history. This costs two extra sequential writes and reads of the
//! file (page cache, not the network), where staging rows in SQLite would cost an index insert per
//! row, and it makes a resumed download simple: bucket files are append-only, so a commit point is
//! their lengths; a run replaces its bucket only once written whole.
//!
//! Follows shopify.dev "Perform bulk operations with the GraphQL Admin API" (JSONL format, no
//! `edges`/`node`, `__parentId` on connection children) and the `Order`/`LineItem` objects: GIDs
//! (`gid://shopify/Order/…`), UTC `Z` times, `MoneyV2` amounts with the shortest decimals.

use std::borrow::Cow;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::IgnoredAny;

use super::client::SyncedOrder;
use super::gid_number;
use super::order::{LineParts, OrderParts};

/// Target size of one bucket: what one join holds in memory (plus its parsed orders).
pub const BUCKET_BYTES: u64 = 16 << 20;
/// Buckets when the result's size is unknown.
pub const DEFAULT_BUCKETS: usize = 64;
/// Most buckets (open files) of one spool.
pub const MAX_BUCKETS: usize = 512;
/// Write buffer of each bucket file.
const BUCKET_BUFFER: usize = 32 << 10;

/// Buckets for a result of `size` bytes.
pub fn buckets_for(size: Option<u64>) -> usize {
    size.map_or(DEFAULT_BUCKETS, |size| {
        usize::try_from(size.div_ceil(BUCKET_BYTES))
            .unwrap_or(MAX_BUCKETS)
            .clamp(1, MAX_BUCKETS)
    })
}

/// A result line that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BadLine {
    /// 1-based line number in the result file.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

/// The order a row belongs to: its `__parentId`, else its own id. Children carry `__parentId`
/// as a top-level key, found without parsing (inside a JSON string a quote is escaped, so the
/// pattern cannot match there); other rows are parsed for their `id`.
pub fn order_of(line: &[u8]) -> Result<&[u8], String> {
    const PARENT: &[u8] = b"\"__parentId\":\"";
    // Built once: building a searcher costs more than searching one row.
    static PARENT_FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(PARENT));
    if let Some(at) = PARENT_FINDER.find(line) {
        let rest = &line[at + PARENT.len()..];
        let end = memchr::memchr(b'"', rest).ok_or("unterminated __parentId")?;
        return Ok(&rest[..end]);
    }
    // Rows as Shopify writes them start with their id: read it without parsing the row.
    const ID: &[u8] = b"{\"id\":\"";
    if let Some(rest) = line.strip_prefix(ID)
        && let Some(end) = memchr::memchr2(b'"', b'\\', rest)
        && rest[end] == b'"'
    {
        return Ok(&rest[..end]);
    }
    #[derive(Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: Option<&'a str>,
    }
    let row: Id<'_> =
        serde_json::from_slice(line).map_err(|error| format!("not a JSON object: {error}"))?;
    let id = row.id.ok_or("a row without an id")?;
    // `id` borrowed from `line`: recover its position to return a slice of `line` itself.
    let start = id.as_ptr() as usize - line.as_ptr() as usize;
    Ok(&line[start..start + id.len()])
}

/// FNV-1a: stable across processes and versions, so a resumed download partitions as before.
fn bucket_of(key: &[u8], buckets: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % buckets as u64) as usize
}

/// Where a spool stands at a commit: everything up to `offset` is in the bucket files, whose
/// lengths are `lengths`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolCheckpoint {
    /// Bytes of the result consumed (whole lines only).
    pub offset: u64,
    /// Lines consumed.
    pub lines: u64,
    /// Length of each bucket file.
    pub lengths: Vec<u64>,
}

/// The bucket files of one result download.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    files: Vec<BufWriter<File>>,
    lengths: Vec<u64>,
    /// The start of a line whose end has not arrived.
    carry: Vec<u8>,
    offset: u64,
    lines: u64,
    /// Lines that could not be partitioned.
    pub rejected: Vec<BadLine>,
}

/// The path of bucket `index` in `dir`.
pub fn bucket_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("bucket-{index:03}.jsonl"))
}

/// Bad lines kept for the report; the others are counted only.
const MAX_KEPT_ERRORS: usize = 20;

impl Spool {
    /// Opens `buckets` bucket files in `dir`: empty, or (resuming) cut back to the lengths of the
    /// last checkpoint, whose `offset` and `lines` the spool continues from.
    ///
    /// # Errors
    /// When a file cannot be created, or a resumed one is shorter than its checkpoint (the
    /// machine lost writes: start the download again).
    pub fn open(
        dir: &Path,
        buckets: usize,
        resume: Option<&SpoolCheckpoint>,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut files = Vec::with_capacity(buckets);
        let mut lengths = Vec::with_capacity(buckets);
        for index in 0..buckets {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(bucket_path(dir, index))?;
            let length = match resume {
                Some(checkpoint) => {
                    let wanted = checkpoint.lengths.get(index).copied().unwrap_or(0);
                    if file.metadata()?.len() < wanted {
                        return Err(std::io::Error::other(format!(
                            "spool bucket {index} is shorter than its last checkpoint"
                        )));
                    }
                    wanted
                }
                None => 0,
            };
            file.set_len(length)?;
            file.seek(SeekFrom::Start(length))?;
            files.push(BufWriter::with_capacity(BUCKET_BUFFER, file));
            lengths.push(length);
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
            lengths,
            carry: Vec::new(),
            offset: resume.map_or(0, |checkpoint| checkpoint.offset),
            lines: resume.map_or(0, |checkpoint| checkpoint.lines),
            rejected: Vec::new(),
        })
    }

    /// The directory holding the bucket files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes consumed into whole lines.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Partitions the whole lines of `chunk` (with the partial line of the previous chunk); keeps
    /// its trailing partial line for the next.
    ///
    /// # Errors
    /// When a bucket file cannot be written.
    pub fn push(&mut self, chunk: &[u8]) -> std::io::Result<u64> {
        let mut rejected = 0;
        let mut rest = chunk;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let (line, after) = rest.split_at(end);
            rest = &after[1..];
            if self.carry.is_empty() {
                rejected += self.route(line)?;
            } else {
                let mut whole = std::mem::take(&mut self.carry);
                whole.extend_from_slice(line);
                rejected += self.route(&whole)?;
                whole.clear();
                self.carry = whole;
            }
            self.offset += 1;
        }
        self.carry.extend_from_slice(rest);
        Ok(rejected)
    }

    /// Routes one line (without its newline) to its bucket.
    fn route(&mut self, line: &[u8]) -> std::io::Result<u64> {
        self.offset += line.len() as u64;
        self.lines += 1;
        let trimmed = line.strip_suffix(b"\r").unwrap_or(line);
        if trimmed.iter().all(u8::is_ascii_whitespace) {
            return Ok(0);
        }
        match order_of(trimmed) {
            Ok(order) => {
                let bucket = bucket_of(order, self.files.len());
                self.files[bucket].write_all(trimmed)?;
                self.files[bucket].write_all(b"\n")?;
                self.lengths[bucket] += trimmed.len() as u64 + 1;
                Ok(0)
            }
            Err(message) => {
                if self.rejected.len() < MAX_KEPT_ERRORS {
                    self.rejected.push(BadLine {
                        line: self.lines,
                        message,
                    });
                }
                Ok(1)
            }
        }
    }

    /// Forgets the partial line (the download breaks off and resumes at [`Self::offset`]).
    pub fn discard_partial_line(&mut self) {
        self.carry.clear();
    }

    /// Bytes of a partial line held.
    pub fn partial_line_bytes(&self) -> usize {
        self.carry.len()
    }

    /// Writes the buffered lines to the bucket files and says where the spool stands.
    ///
    /// # Errors
    /// When a bucket file cannot be written.
    pub fn checkpoint(&mut self) -> std::io::Result<SpoolCheckpoint> {
        for file in &mut self.files {
            file.flush()?;
        }
        Ok(SpoolCheckpoint {
            offset: self.offset,
            lines: self.lines,
            lengths: self.lengths.clone(),
        })
    }

    /// Ends the download: a last line without a newline is a line too.
    ///
    /// # Errors
    /// When a bucket file cannot be written.
    pub fn finish(&mut self) -> std::io::Result<(SpoolCheckpoint, u64)> {
        let mut rejected = 0;
        if !self.carry.is_empty() {
            let last = std::mem::take(&mut self.carry);
            rejected = self.route(&last)?;
        }
        Ok((self.checkpoint()?, rejected))
    }
}

/// Compares order ids (`gid://shopify/Order/{digits}`) as their numbers: shorter first, then
/// byte by byte.
pub fn order_id_cmp(left: &[u8], right: &[u8]) -> Ordering {
    left.len().cmp(&right.len()).then_with(|| left.cmp(right))
}

/// The path of run `index` (bucket `index` sorted by order id) in `dir`.
pub fn run_path(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("run-{index:03}.jsonl"))
}

/// Rewrites bucket `index` of `dir` as a run: its rows ordered by order id, the rows of one order
/// together and in the order they came. The run replaces the bucket only once written whole; a run
/// already there (a resumed sync) is kept when it has the bucket's `length`.
///
/// # Errors
/// When the bucket cannot be read or the run written.
pub fn sort_bucket(dir: &Path, index: usize, length: u64) -> std::io::Result<()> {
    let run = run_path(dir, index);
    let bucket = bucket_path(dir, index);
    if std::fs::metadata(&run).is_ok_and(|meta| meta.len() == length) {
        let _ = std::fs::remove_file(&bucket);
        return Ok(());
    }
    let bytes = std::fs::read(&bucket)?;
    let mut rows: Vec<(&[u8], &[u8])> = bytes
        .split(|byte| *byte == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .map(|line| (order_of(line).unwrap_or_default(), line))
        .collect();
    // Stable: an order's rows keep their order.
    rows.sort_by(|left, right| order_id_cmp(left.0, right.0));
    let partial = dir.join(format!("run-{index:03}.partial"));
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&partial)?);
    for (_, line) in rows {
        out.write_all(line)?;
        out.write_all(b"\n")?;
    }
    out.into_inner()
        .map_err(std::io::IntoInnerError::into_error)?;
    std::fs::rename(&partial, &run)?;
    std::fs::remove_file(&bucket)
}

/// Read buffer of each run while merging.
const RUN_BUFFER: usize = 64 << 10;

/// One run being merged: its next row and that row's order id.
struct RunCursor {
    reader: BufReader<File>,
    row: Vec<u8>,
    order: Vec<u8>,
    done: bool,
}

impl RunCursor {
    fn advance(&mut self) -> std::io::Result<()> {
        loop {
            self.row.clear();
            if self.reader.read_until(b'\n', &mut self.row)? == 0 {
                self.done = true;
                return Ok(());
            }
            if self.row.last() == Some(&b'\n') {
                self.row.pop();
            }
            if !self.row.iter().all(u8::is_ascii_whitespace) {
                self.order.clear();
                self.order
                    .extend_from_slice(order_of(&self.row).unwrap_or_default());
                return Ok(());
            }
        }
    }
}

/// A batch of whole orders from [`RunMerge::next_batch`], as JSONL rows for [`join_bucket`].
#[derive(Debug)]
pub struct MergedBatch {
    /// The rows, each followed by a newline.
    pub rows: Vec<u8>,
    /// Orders in it.
    pub orders: usize,
    /// The id of its last order: the next batch starts after it.
    pub last_order: String,
}

/// The runs of a spool merged into one sequence of orders, ascending by id. Every row of an
/// order sits in one run (one bucket), so an order comes out whole.
pub struct RunMerge {
    runs: Vec<RunCursor>,
    /// The runs by the id of their next order (length first: ids compare as numbers).
    heap: BinaryHeap<Reverse<(usize, Vec<u8>, usize)>>,
}

impl RunMerge {
    /// Opens runs `0..lengths.len()` of `dir`, each of which must have its bucket's length.
    ///
    /// # Errors
    /// When a run is missing, has another length (a machine stop lost writes), or cannot be read.
    pub fn open(dir: &Path, lengths: &[u64]) -> std::io::Result<Self> {
        let mut merge = Self {
            runs: Vec::with_capacity(lengths.len()),
            heap: BinaryHeap::with_capacity(lengths.len()),
        };
        for (index, length) in lengths.iter().enumerate() {
            let file = File::open(run_path(dir, index))?;
            if file.metadata()?.len() != *length {
                return Err(std::io::Error::other(format!(
                    "spool run {index} does not hold its bucket's {length} bytes"
                )));
            }
            let mut cursor = RunCursor {
                reader: BufReader::with_capacity(RUN_BUFFER, file),
                row: Vec::new(),
                order: Vec::new(),
                done: false,
            };
            cursor.advance()?;
            if !cursor.done {
                merge
                    .heap
                    .push(Reverse((cursor.order.len(), cursor.order.clone(), index)));
            }
            merge.runs.push(cursor);
        }
        Ok(merge)
    }

    /// The next `max_orders` orders whose id is above `after` (all, without it); `None` once
    /// every run is read.
    ///
    /// # Errors
    /// When a run cannot be read.
    pub fn next_batch(
        &mut self,
        max_orders: usize,
        after: Option<&[u8]>,
    ) -> std::io::Result<Option<MergedBatch>> {
        let mut batch = MergedBatch {
            rows: Vec::new(),
            orders: 0,
            last_order: String::new(),
        };
        while batch.orders < max_orders {
            let Some(Reverse((_, order, index))) = self.heap.pop() else {
                break;
            };
            let skip = after.is_some_and(|after| order_id_cmp(&order, after) != Ordering::Greater);
            let run = &mut self.runs[index];
            while !run.done && run.order == order {
                if !skip {
                    batch.rows.extend_from_slice(&run.row);
                    batch.rows.push(b'\n');
                }
                run.advance()?;
            }
            if !run.done {
                self.heap
                    .push(Reverse((run.order.len(), run.order.clone(), index)));
            }
            if !skip {
                batch.orders += 1;
                batch.last_order = String::from_utf8_lossy(&order).into_owned();
            }
        }
        Ok((batch.orders > 0).then_some(batch))
    }
}

#[derive(Deserialize)]
struct IdRef<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Money<'a> {
    #[serde(borrow)]
    amount: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MoneyBag<'a> {
    #[serde(borrow)]
    shop_money: Money<'a>,
}

/// A row of the orders bulk result: an order, or (with `__parentId`) one of its line items.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Row<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(rename = "__parentId", borrow, default)]
    parent_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    created_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    processed_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    updated_at: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    cancelled_at: Option<Cow<'a, str>>,
    #[serde(default)]
    test: Option<bool>,
    #[serde(borrow, default)]
    retail_location: Option<IdRef<'a>>,
    #[serde(default)]
    refunds: Option<Vec<IgnoredAny>>,
    #[serde(borrow, default)]
    title: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sku: Option<Cow<'a, str>>,
    #[serde(default)]
    quantity: Option<f64>,
    #[serde(default)]
    current_quantity: Option<f64>,
    #[serde(default)]
    is_gift_card: Option<bool>,
    #[serde(borrow, default)]
    product: Option<IdRef<'a>>,
    #[serde(borrow, default)]
    variant: Option<IdRef<'a>>,
    #[serde(borrow, default)]
    original_unit_price_set: Option<MoneyBag<'a>>,
    #[serde(borrow, default)]
    total_discount_set: Option<MoneyBag<'a>>,
}

/// One row read.
#[derive(Debug, Clone, PartialEq)]
pub enum BulkRow {
    /// An order (its `lines` empty: they are rows of their own).
    Order(SyncedOrder),
    /// A line item of the order with id `order_id` (digits).
    LineItem {
        /// The parent order's id.
        order_id: String,
        /// The line.
        line: LineParts,
    },
    /// A child row of another kind (not in our query): skipped.
    Other,
}

fn time(value: Option<&Cow<'_, str>>, field: &str) -> Result<Option<DateTime<Utc>>, String> {
    value
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|_| format!("{field} \"{text}\" is not an ISO 8601 time"))
        })
        .transpose()
}

fn amount(value: Option<&MoneyBag<'_>>, field: &str) -> Result<f64, String> {
    match value {
        None => Ok(0.0),
        Some(bag) => bag
            .shop_money
            .amount
            .parse()
            .map_err(|_| format!("{field} \"{}\" is not a decimal", bag.shop_money.amount)),
    }
}

/// Reads one result line.
///
/// # Errors
/// When it is not JSON, or not an order or line item as our query selects them.
pub fn parse_row(line: &[u8]) -> Result<BulkRow, String> {
    let row: Row<'_> =
        serde_json::from_slice(line).map_err(|error| format!("not a result row: {error}"))?;
    if let Some(parent) = &row.parent_id {
        let Some(line_id) = gid_number(&row.id, "LineItem") else {
            return Ok(BulkRow::Other);
        };
        let order_id = gid_number(parent, "Order").ok_or_else(|| {
            format!("line item {line_id}: __parentId \"{parent}\" is not an order")
        })?;
        let id_of = |reference: Option<&IdRef<'_>>, kind: &str| {
            reference
                .and_then(|reference| gid_number(&reference.id, kind))
                .map(str::to_owned)
        };
        let line = LineParts {
            line_id: line_id.to_owned(),
            sku: row.sku.map(Cow::into_owned),
            variant_id: id_of(row.variant.as_ref(), "ProductVariant"),
            product_id: id_of(row.product.as_ref(), "Product"),
            title: row.title.map(Cow::into_owned),
            quantity: row.quantity.unwrap_or(0.0),
            current_quantity: row.current_quantity,
            refunded: 0.0,
            price: amount(row.original_unit_price_set.as_ref(), "originalUnitPriceSet")?,
            discount: amount(row.total_discount_set.as_ref(), "totalDiscountSet")?,
            gift_card: row.is_gift_card == Some(true),
        };
        return Ok(BulkRow::LineItem {
            order_id: order_id.to_owned(),
            line,
        });
    }
    let order_id = gid_number(&row.id, "Order")
        .ok_or_else(|| format!("row id \"{}\" is neither an order nor a child row", row.id))?;
    let updated_at = time(row.updated_at.as_ref(), "updatedAt")?
        .ok_or_else(|| format!("order {order_id} without updatedAt"))?;
    let sold_at = match time(row.processed_at.as_ref(), "processedAt")? {
        Some(time) => time,
        None => time(row.created_at.as_ref(), "createdAt")?
            .ok_or_else(|| format!("order {order_id} without processedAt or createdAt"))?,
    };
    let location_id = match &row.retail_location {
        Some(location) => Some(
            gid_number(&location.id, "Location")
                .ok_or_else(|| {
                    format!(
                        "order {order_id}: retailLocation \"{}\" is not a location",
                        location.id
                    )
                })?
                .to_owned(),
        ),
        None => None,
    };
    Ok(BulkRow::Order(SyncedOrder {
        parts: OrderParts {
            order_id: order_id.to_owned(),
            updated_at,
            sold_at,
            void: row.test == Some(true) || row.cancelled_at.is_some(),
            location_id,
            lines: Vec::new(),
        },
        refunded: row.refunds.is_some_and(|refunds| !refunds.is_empty()),
    }))
}

/// The orders of one bucket, each with its line items.
#[derive(Debug, Default)]
pub struct JoinedBucket {
    /// Orders with all their line items.
    pub orders: Vec<SyncedOrder>,
    /// Line items whose order is not in the result (each order id logged once).
    pub orphan_lines: u64,
    /// Orders whose line items are missing from the result.
    pub orphan_orders: Vec<String>,
    /// Rows that could not be read.
    pub rejected: u64,
    /// The first few of them.
    pub errors: Vec<String>,
}

/// Joins the rows of one bucket: each line item to its order, in whatever order they come.
pub fn join_bucket(bytes: &[u8]) -> JoinedBucket {
    let mut joined = JoinedBucket::default();
    let mut orders: HashMap<String, (Option<SyncedOrder>, Vec<LineParts>)> = HashMap::new();
    for line in bytes.split(|byte| *byte == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match parse_row(line) {
            Ok(BulkRow::Order(order)) => {
                let slot = orders.entry(order.parts.order_id.clone()).or_default();
                slot.0 = Some(order);
            }
            Ok(BulkRow::LineItem { order_id, line }) => {
                orders.entry(order_id).or_default().1.push(line);
            }
            Ok(BulkRow::Other) => {}
            Err(message) => {
                joined.rejected += 1;
                if joined.errors.len() < MAX_KEPT_ERRORS {
                    joined.errors.push(message);
                }
            }
        }
    }
    joined.orders.reserve(orders.len());
    for (order_id, (order, lines)) in orders {
        match order {
            Some(mut order) => {
                order.parts.lines = lines;
                joined.orders.push(order);
            }
            None => {
                joined.orphan_lines += lines.len() as u64;
                joined.orphan_orders.push(order_id);
            }
        }
    }
    // Stable output whatever the hash map did: ascending order id (as a number).
    joined.orders.sort_by(|left, right| {
        let (left, right) = (&left.parts.order_id, &right.parts.order_id);
        (left.len(), left).cmp(&(right.len(), right))
    });
    joined
}

/// Joins the rows of a [`RunMerge`] batch, where each order's rows sit next to each other (its
/// own row anywhere among its line items) and orders come in ascending id: one pass, no map.
pub fn join_merged(bytes: &[u8]) -> JoinedBucket {
    /// The order being read: its id, its own row once seen, its line items.
    type Group = (String, Option<SyncedOrder>, Vec<LineParts>);
    fn close(group: Option<Group>, joined: &mut JoinedBucket) {
        match group {
            Some((_, Some(mut order), lines)) => {
                order.parts.lines = lines;
                joined.orders.push(order);
            }
            Some((order_id, None, lines)) => {
                joined.orphan_lines += lines.len() as u64;
                joined.orphan_orders.push(order_id);
            }
            None => {}
        }
    }
    let mut joined = JoinedBucket::default();
    let mut group: Option<Group> = None;
    for line in bytes.split(|byte| *byte == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (order_id, order, item) = match parse_row(line) {
            Ok(BulkRow::Order(order)) => (order.parts.order_id.clone(), Some(order), None),
            Ok(BulkRow::LineItem { order_id, line }) => (order_id, None, Some(line)),
            Ok(BulkRow::Other) => continue,
            Err(message) => {
                joined.rejected += 1;
                if joined.errors.len() < MAX_KEPT_ERRORS {
                    joined.errors.push(message);
                }
                continue;
            }
        };
        if group.as_ref().is_none_or(|group| group.0 != order_id) {
            close(group.take(), &mut joined);
            group = Some((order_id, None, Vec::new()));
        }
        if let Some(group) = group.as_mut() {
            if order.is_some() {
                group.1 = order;
            }
            group.2.extend(item);
        }
    }
    close(group, &mut joined);
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: &str = r##"{"id":"gid://shopify/Order/9007199254740993","name":"#1001","createdAt":"2026-03-01T04:10:00Z","processedAt":"2026-03-01T04:00:00Z","updatedAt":"2026-03-02T15:00:00Z","cancelledAt":null,"test":false,"currencyCode":"USD","sourceName":"pos","retailLocation":{"id":"gid://shopify/Location/77"},"totalPriceSet":{"shopMoney":{"amount":"81.3"}},"refunds":[]}"##;
    const LINE: &str = r#"{"id":"gid://shopify/LineItem/501","title":"Tee","sku":"TEE-1","quantity":3,"currentQuantity":2,"isGiftCard":false,"product":{"id":"gid://shopify/Product/3"},"variant":{"id":"gid://shopify/ProductVariant/4"},"originalUnitPriceSet":{"shopMoney":{"amount":"20.0"}},"totalDiscountSet":{"shopMoney":{"amount":"6"}},"__parentId":"gid://shopify/Order/9007199254740993"}"#;

    #[track_caller]
    fn check_row(line: &str, expected: &str) {
        let got = match parse_row(line.as_bytes()) {
            Ok(BulkRow::Order(order)) => format!(
                "order {} sold {} void {} location {:?} refunded {}",
                order.parts.order_id,
                order.parts.sold_at,
                order.parts.void,
                order.parts.location_id,
                order.refunded
            ),
            Ok(BulkRow::LineItem { order_id, line }) => format!(
                "line {} of {order_id}: {:?} {}/{:?} at {} less {} variant {:?} product {:?}",
                line.line_id,
                line.sku,
                line.quantity,
                line.current_quantity,
                line.price,
                line.discount,
                line.variant_id,
                line.product_id
            ),
            Ok(BulkRow::Other) => "other".to_owned(),
            Err(error) => error,
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn rows_read_gids_z_times_and_shortest_decimals() {
        check_row(
            ORDER,
            "order 9007199254740993 sold 2026-03-01 04:00:00 UTC void false location Some(\"77\") refunded false",
        );
        check_row(
            LINE,
            "line 501 of 9007199254740993: Some(\"TEE-1\") 3/Some(2.0) at 20 less 6 variant Some(\"4\") product Some(\"3\")",
        );
        check_row(
            &ORDER
                .replace(
                    r#""cancelledAt":null"#,
                    r#""cancelledAt":"2026-03-03T00:00:00Z""#,
                )
                .replace(
                    r#""refunds":[]"#,
                    r#""refunds":[{"id":"gid://shopify/Refund/1"}]"#,
                ),
            "order 9007199254740993 sold 2026-03-01 04:00:00 UTC void true location Some(\"77\") refunded true",
        );
        check_row(
            r#"{"id":"gid://shopify/Refund/1","__parentId":"gid://shopify/Order/1"}"#,
            "other",
        );
    }

    #[test]
    fn bad_rows_name_what_is_wrong() {
        check_row(
            "{",
            "not a result row: EOF while parsing an object at line 1 column 1",
        );
        check_row(
            r#"{"id":"gid://shopify/Order/1","processedAt":"2026-03-01T04:00:00Z"}"#,
            "order 1 without updatedAt",
        );
        check_row(
            &ORDER.replace("2026-03-02T15:00:00Z", "yesterday"),
            "updatedAt \"yesterday\" is not an ISO 8601 time",
        );
        check_row(
            &LINE.replace(r#""amount":"20.0""#, r#""amount":"twenty""#),
            "originalUnitPriceSet \"twenty\" is not a decimal",
        );
        check_row(
            r#"{"id":"gid://shopify/Customer/1"}"#,
            "row id \"gid://shopify/Customer/1\" is neither an order nor a child row",
        );
    }

    #[test]
    fn every_row_of_an_order_goes_to_the_same_bucket() {
        assert_eq!(
            order_of(ORDER.as_bytes()).unwrap(),
            b"gid://shopify/Order/9007199254740993"
        );
        assert_eq!(
            order_of(LINE.as_bytes()).unwrap(),
            b"gid://shopify/Order/9007199254740993"
        );
        // A title that mentions the key, escaped inside its string, is not a parent.
        let tricky = r#"{"id":"gid://shopify/Order/5","title":"\"__parentId\":\"x"}"#;
        assert_eq!(
            order_of(tricky.as_bytes()).unwrap(),
            b"gid://shopify/Order/5"
        );
        assert!(order_of(b"nonsense").is_err());
    }

    #[test]
    fn children_join_their_parent_before_or_after_it() {
        let second_line = LINE.replace("LineItem/501", "LineItem/502");
        let other_order = ORDER.replace("9007199254740993", "12");
        let file = format!("{LINE}\n{other_order}\n{ORDER}\n\n{second_line}\n");
        let joined = join_bucket(file.as_bytes());
        assert_eq!(joined.orders.len(), 2);
        assert_eq!(joined.orders[0].parts.order_id, "12");
        assert!(joined.orders[0].parts.lines.is_empty());
        let lines: Vec<&str> = joined.orders[1]
            .parts
            .lines
            .iter()
            .map(|line| line.line_id.as_str())
            .collect();
        assert_eq!(lines, ["501", "502"]);
        assert_eq!(joined.rejected, 0);
    }

    #[test]
    fn lines_without_their_order_are_counted_not_applied() {
        let joined = join_bucket(format!("{LINE}\nnot json\n").as_bytes());
        assert!(joined.orders.is_empty());
        assert_eq!(joined.orphan_lines, 1);
        assert_eq!(joined.orphan_orders, ["9007199254740993"]);
        assert_eq!(joined.rejected, 1);
    }

    #[test]
    fn a_spool_partitions_lines_split_across_chunks_and_resumes_from_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let other_order = ORDER.replace("9007199254740993", "12");
        let file = format!("{LINE}\n{other_order}\n{ORDER}\n");
        let (head, tail) = file.as_bytes().split_at(LINE.len() + 20);
        let mut spool = Spool::open(dir.path(), 4, None).unwrap();
        spool.push(head).unwrap();
        let checkpoint = spool.checkpoint().unwrap();
        assert_eq!(checkpoint.offset, LINE.len() as u64 + 1);
        assert_eq!(checkpoint.lines, 1);
        // The download breaks off; bytes after the checkpoint are written again on resume.
        spool.push(b"garbage that never reached a newline").unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), 4, Some(&checkpoint)).unwrap();
        spool
            .push(&file.as_bytes()[checkpoint.offset as usize..])
            .unwrap();
        let (done, rejected) = spool.finish().unwrap();
        assert_eq!(
            (done.offset, done.lines, rejected),
            (file.len() as u64, 3, 0)
        );
        assert_eq!(done.lengths.iter().sum::<u64>(), file.len() as u64);
        let _ = tail;
        let mut orders = 0;
        for index in 0..4 {
            let bytes = std::fs::read(bucket_path(dir.path(), index)).unwrap();
            let joined = join_bucket(&bytes);
            assert_eq!(joined.orphan_lines, 0);
            orders += joined.orders.len();
        }
        assert_eq!(orders, 2);
    }

    /// Order `id` and its `lines` line items, as result rows.
    fn order_rows(id: u64, lines: u64) -> Vec<String> {
        let mut rows = vec![ORDER.replace("9007199254740993", &id.to_string())];
        for line in 0..lines {
            rows.push(
                LINE.replace("9007199254740993", &id.to_string())
                    .replace("LineItem/501", &format!("LineItem/{id}0{line}")),
            );
        }
        rows
    }

    #[test]
    fn runs_merge_into_whole_orders_by_ascending_id_and_resume_after_an_order() {
        let dir = tempfile::tempdir().unwrap();
        // Ids of different lengths (numeric order is not text order); children before parents.
        let ids = [9_u64, 120, 7, 1_000, 45, 3, 88, 1_001, 10, 2];
        let mut file = String::new();
        for (position, id) in ids.iter().enumerate() {
            let mut rows = order_rows(*id, (position % 3) as u64);
            rows.rotate_left(1);
            for row in rows {
                file.push_str(&row);
                file.push('\n');
            }
        }
        let mut spool = Spool::open(dir.path(), 3, None).unwrap();
        spool.push(file.as_bytes()).unwrap();
        let (done, _) = spool.finish().unwrap();
        for (index, length) in done.lengths.iter().enumerate() {
            sort_bucket(dir.path(), index, *length).unwrap();
            assert!(!bucket_path(dir.path(), index).exists());
            // Sorting again (a resumed sync) keeps the run.
            sort_bucket(dir.path(), index, *length).unwrap();
        }
        let mut sorted = ids;
        sorted.sort_unstable();
        let gid = |id: u64| format!("gid://shopify/Order/{id}");

        let mut merge = RunMerge::open(dir.path(), &done.lengths).unwrap();
        let mut seen = Vec::new();
        while let Some(batch) = merge.next_batch(4, None).unwrap() {
            assert!(batch.orders <= 4);
            let joined = join_merged(&batch.rows);
            assert_eq!(joined.orders, join_bucket(&batch.rows).orders);
            assert_eq!(joined.orphan_lines, 0);
            assert_eq!(joined.orders.len(), batch.orders);
            for order in &joined.orders {
                let position = ids
                    .iter()
                    .position(|id| id.to_string() == order.parts.order_id);
                assert_eq!(order.parts.lines.len(), position.unwrap() % 3);
            }
            assert_eq!(
                batch.last_order,
                gid(joined
                    .orders
                    .last()
                    .unwrap()
                    .parts
                    .order_id
                    .parse()
                    .unwrap())
            );
            seen.extend(joined.orders.into_iter().map(|order| order.parts.order_id));
        }
        assert_eq!(seen, sorted.map(|id| id.to_string()));

        // A resumed merge starts after the last order applied.
        let mut merge = RunMerge::open(dir.path(), &done.lengths).unwrap();
        let rest = merge
            .next_batch(100, Some(gid(45).as_bytes()))
            .unwrap()
            .unwrap();
        let joined = join_bucket(&rest.rows);
        let rest_ids: Vec<String> = joined
            .orders
            .into_iter()
            .map(|o| o.parts.order_id)
            .collect();
        assert_eq!(rest_ids, ["88", "120", "1000", "1001"]);
        assert!(merge.next_batch(100, None).unwrap().is_none());
    }

    #[test]
    fn a_run_that_lost_writes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1, None).unwrap();
        spool.push(format!("{ORDER}\n{LINE}\n").as_bytes()).unwrap();
        let (done, _) = spool.finish().unwrap();
        sort_bucket(dir.path(), 0, done.lengths[0]).unwrap();
        let run = run_path(dir.path(), 0);
        let bytes = std::fs::read(&run).unwrap();
        std::fs::write(&run, &bytes[..bytes.len() / 2]).unwrap();
        let error = RunMerge::open(dir.path(), &done.lengths).err().unwrap();
        assert!(error.to_string().contains("spool run 0"), "{error}");
    }

    #[test]
    fn order_ids_compare_as_numbers_and_rows_out_of_key_order_are_parsed() {
        assert_eq!(
            order_id_cmp(b"gid://shopify/Order/9", b"gid://shopify/Order/10"),
            Ordering::Less
        );
        assert_eq!(
            order_id_cmp(b"gid://shopify/Order/21", b"gid://shopify/Order/12"),
            Ordering::Greater
        );
        // Not in Shopify's key order: read by parsing.
        let reordered = r##"{"name":"#1","id":"gid://shopify/Order/5"}"##;
        assert_eq!(
            order_of(reordered.as_bytes()).unwrap(),
            b"gid://shopify/Order/5"
        );
        // An escaped id is left to the parser, which unescapes it (and so cannot borrow it).
        assert!(order_of(br#"{"id":"gid://shopify/Order/\u0035"}"#).is_err());
    }

    #[test]
    fn a_last_line_without_newline_counts_and_bucket_counts_follow_size() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1, None).unwrap();
        spool.push(ORDER.as_bytes()).unwrap();
        assert_eq!(spool.partial_line_bytes(), ORDER.len());
        let (done, _) = spool.finish().unwrap();
        assert_eq!(done.lines, 1);
        assert_eq!(buckets_for(None), DEFAULT_BUCKETS);
        assert_eq!(buckets_for(Some(0)), 1);
        assert_eq!(buckets_for(Some(BUCKET_BYTES * 10 + 1)), 11);
        assert_eq!(buckets_for(Some(u64::MAX)), MAX_BUCKETS);
    }
}
