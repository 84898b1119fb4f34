//! Uploads, sales lines and daily sales in SQLite.

use std::collections::HashMap;
use std::hash::BuildHasher;

use chrono::{Datelike, NaiveDate};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Writer, not_found, pages, read_tenant_key};
use crate::domain::{
    BatchLine, BatchSeries, Granularity, Location, SalesBatch, SalesDay, SalesLine, SalesQuery,
    SeriesList, Sku, SkuSummary, TenantId,
};
use crate::store::{ImportReport, SalesWrite, StoreError, UploadId};

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::unavailable(error)
}

fn day_number(date: NaiveDate) -> i32 {
    date.num_days_from_ce()
}

fn day_from_number(number: i32) -> Result<NaiveDate, StoreError> {
    NaiveDate::from_num_days_from_ce_opt(number).ok_or_else(|| {
        StoreError::Unavailable(format!("stored day {number} is out of range").into())
    })
}

fn report_json(report: &ImportReport) -> Result<String, StoreError> {
    serde_json::to_string(report).map_err(StoreError::unavailable)
}

pub(super) fn begin_upload(
    writer: &mut Writer,
    tenant: &TenantId,
    report: &ImportReport,
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    writer
        .connection
        .execute(
            "INSERT INTO uploads (tenant_id, public_id, status, started_at, report)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                tenant_key,
                report.upload_id,
                status_text(report),
                report.started_at.to_rfc3339(),
                report_json(report)?
            ],
        )
        .map_err(unavailable)?;
    Ok(())
}

fn status_text(report: &ImportReport) -> String {
    serde_json::to_value(report.status)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(super) fn finish_upload(
    writer: &mut Writer,
    tenant: &TenantId,
    report: &ImportReport,
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let changed = writer
        .connection
        .execute(
            "UPDATE uploads SET status = ?3, report = ?4 WHERE tenant_id = ?1 AND public_id = ?2",
            params![
                tenant_key,
                report.upload_id,
                status_text(report),
                report_json(report)?
            ],
        )
        .map_err(unavailable)?;
    if changed == 0 {
        return Err(not_found("upload", &report.upload_id));
    }
    // The upload's batches are written: give their buffers back.
    writer.sales_scratch = Scratch::default();
    Ok(())
}

fn upload_key(
    connection: &Connection,
    tenant_key: i64,
    upload: &UploadId,
) -> Result<i64, StoreError> {
    connection
        .prepare_cached("SELECT id FROM uploads WHERE tenant_id = ?1 AND public_id = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![tenant_key, upload], |row| row.get(0))
                .optional()
        })
        .map_err(unavailable)?
        .ok_or_else(|| not_found("upload", upload))
}

/// Series ids of a tenant by SKU and location, each with whether its product name is known.
///
/// Compact, and bounded: the keys (`sku NUL location`; neither holds a control character) lie one
/// after another in one buffer, and the hash table holds 16-byte entries pointing into it, about
/// 45 bytes a series where a map of boxed keys took ~85. It holds at most [`MAX_CACHED_SERIES`]
/// series and [`MAX_CACHED_KEY_BYTES`] of keys; a tenant with more has its cache marked
/// incomplete, and a series not found in it is then inserted without failing on a conflict
/// (the tenant's existing series, if any, stays, and its id is read back).
pub(crate) struct SeriesCache {
    keys: Vec<u8>,
    entries: hashbrown::HashTable<CachedSeries>,
    hasher: foldhash::fast::RandomState,
    /// Whether every series of the tenant is here, so that a miss means a new series.
    complete: bool,
}

#[derive(Debug, Clone, Copy)]
struct CachedSeries {
    start: u32,
    len: u16,
    named: bool,
    id: i64,
}

/// The key of a cached series.
fn stored_key<'k>(keys: &'k [u8], entry: &CachedSeries) -> &'k [u8] {
    &keys[entry.start as usize..entry.start as usize + usize::from(entry.len)]
}

/// Most series one tenant's cache holds: 7/8 of 2^19, the most a hash table of 2^19 slots takes
/// before doubling (its slots and control bytes then take ~9 MB). Unit tests use a few dozen, so
/// that their tenants go past it.
const MAX_CACHED_SERIES: usize = if cfg!(test) { 48 } else { (1 << 19) / 8 * 7 };
/// Most bytes of keys one tenant's cache holds.
const MAX_CACHED_KEY_BYTES: usize = 16 << 20;

impl SeriesCache {
    /// An empty cache, complete until an insert finds it full.
    fn new() -> Self {
        Self {
            keys: Vec::new(),
            entries: hashbrown::HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            complete: true,
        }
    }

    /// The id of the series of `key`, and whether its product name is known.
    fn get(&self, key: &str) -> Option<(i64, bool)> {
        let hash = self.hasher.hash_one(key.as_bytes());
        self.entries
            .find(hash, |entry| {
                stored_key(&self.keys, entry) == key.as_bytes()
            })
            .map(|entry| (entry.id, entry.named))
    }

    /// Notes that the series of `key`, if cached, has its product name now.
    fn set_named(&mut self, key: &str) {
        let hash = self.hasher.hash_one(key.as_bytes());
        let keys = &self.keys;
        if let Some(entry) = self
            .entries
            .find_mut(hash, |entry| stored_key(keys, entry) == key.as_bytes())
        {
            entry.named = true;
        }
    }

    /// Caches a series the cache does not hold; when full, forgets it and is incomplete from
    /// then on.
    fn insert(&mut self, key: &str, id: i64, named: bool) {
        let (Ok(start), Ok(len)) = (u32::try_from(self.keys.len()), u16::try_from(key.len()))
        else {
            self.complete = false;
            return;
        };
        if self.entries.len() >= MAX_CACHED_SERIES
            || self.keys.len() + key.len() > MAX_CACHED_KEY_BYTES
        {
            self.complete = false;
            return;
        }
        self.keys.extend_from_slice(key.as_bytes());
        let hash = self.hasher.hash_one(key.as_bytes());
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.entries.insert_unique(
            hash,
            CachedSeries {
                start,
                len,
                named,
                id,
            },
            |entry| hasher.hash_one(stored_key(keys, entry)),
        );
    }

    /// Series cached.
    fn len(&self) -> usize {
        self.entries.len()
    }

    /// Makes room for `more` series without rehashing on the way, as far as the bound allows.
    fn reserve(&mut self, more: usize) {
        let room = MAX_CACHED_SERIES.saturating_sub(self.entries.len());
        let (keys, hasher) = (&self.keys, &self.hasher);
        self.entries.reserve(more.min(room), |entry| {
            hasher.hash_one(stored_key(keys, entry))
        });
    }
}

/// Tenants whose series the writer keeps in memory at once.
const MAX_CACHED_TENANTS: usize = 8;

/// The cache key of a series.
fn series_key(key: &mut String, sku: &str, location: &str) {
    key.clear();
    key.push_str(sku);
    key.push('\0');
    key.push_str(location);
}

/// Adds rows of `id, sku, location, product IS NOT NULL` to `cache`, as many as it holds.
fn cache_series(cache: &mut SeriesCache, rows: &mut rusqlite::Rows<'_>) -> Result<(), StoreError> {
    let mut key = String::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let (id, sku, location, named): (i64, &str, &str, bool) = (
            row.get(0).map_err(unavailable)?,
            row.get_ref(1)
                .and_then(|value| value.as_str().map_err(Into::into))
                .map_err(unavailable)?,
            row.get_ref(2)
                .and_then(|value| value.as_str().map_err(Into::into))
                .map_err(unavailable)?,
            row.get(3).map_err(unavailable)?,
        );
        series_key(&mut key, sku, location);
        cache.insert(&key, id, named);
        if !cache.complete {
            break;
        }
    }
    Ok(())
}

/// Series per multi-row insert.
const SERIES_PER_STATEMENT: usize = 200;

/// The series id of each of the batch's series (one lookup each, however many lines name it),
/// creating the series the tenant does not have yet (several per statement) and filling in
/// product names still unknown.
///
/// The writer creates every series, so the tenant's cache (all its series, read once, up to the
/// cache's bound) and the next free id are exact while the writer holds the write lock: new series
/// are inserted with their ids, without asking the database which exist. Past the bound, a series
/// the cache lacks may exist: it is inserted letting the tenant's own row win (`insert_series`).
/// The caches are forgotten on rollback and when another connection has committed (see
/// `Writer::check_data_version`).
fn series_keys(
    writer: &mut Writer,
    tenant_key: i64,
    listed: &[&BatchSeries],
) -> Result<Vec<i64>, StoreError> {
    if !writer.series_keys.contains_key(&tenant_key) {
        // Bound the memory of a server writing for many tenants: forget the others' series.
        if writer.series_keys.len() >= MAX_CACHED_TENANTS
            || writer
                .series_keys
                .values()
                .map(SeriesCache::len)
                .sum::<usize>()
                >= MAX_CACHED_SERIES
        {
            writer.series_keys.clear();
        }
        let mut cache = SeriesCache::new();
        let mut statement = writer
            .connection
            .prepare_cached(
                "SELECT id, sku, location, product IS NOT NULL FROM series WHERE tenant_id = ?1",
            )
            .map_err(unavailable)?;
        let mut rows = statement.query([tenant_key]).map_err(unavailable)?;
        cache_series(&mut cache, &mut rows)?;
        drop(rows);
        drop(statement);
        writer.series_keys.insert(tenant_key, cache);
    }
    let next_id = match writer.next_series_id {
        Some(next) => next,
        None => writer
            .connection
            .query_row("SELECT coalesce(max(id), 0) + 1 FROM series", [], |row| {
                row.get(0)
            })
            .map_err(unavailable)?,
    };
    let cache = writer
        .series_keys
        .get_mut(&tenant_key)
        .ok_or_else(|| StoreError::Unavailable("series cache vanished".into()))?;
    let mut key = String::new();
    // Series that are new, or whose first product name this batch brings, with their places in
    // `listed`.
    let mut ids = Vec::with_capacity(listed.len());
    let mut wanted: Vec<(usize, &BatchSeries)> = Vec::new();
    for (place, &series) in listed.iter().enumerate() {
        series_key(&mut key, series.sku.as_str(), series.location.as_str());
        // Not cached: new, or (the cache past its bound) found when inserted.
        let known = cache.get(&key);
        let needed = match known {
            None => true,
            Some((_, named)) => !named && series.product.is_some(),
        };
        if needed {
            wanted.push((place, series));
        }
        ids.push(known.map(|(id, _)| id));
    }
    if wanted.is_empty() {
        writer.next_series_id = Some(next_id);
    } else {
        // New series get ids in SKU and location order, whatever order the file has. A series
        // listed twice (the second time with its product name) is one series: the last of its
        // run has the name if any has.
        sort_series(&mut wanted);
        cache.reserve(wanted.len());
        // New series (as far as the cache knows), each with its run in `wanted`.
        let mut created: Vec<(i64, &BatchSeries)> = Vec::with_capacity(wanted.len());
        let mut runs: Vec<&[(usize, &BatchSeries)]> = Vec::with_capacity(wanted.len());
        let mut named: Vec<(i64, &str)> = Vec::new();
        let mut next = next_id;
        for run in wanted.chunk_by(|(_, left), (_, right)| {
            left.sku == right.sku && left.location == right.location
        }) {
            let Some(&(_, series)) = run.last() else {
                continue;
            };
            // The series is known when its first listing found it in the cache.
            if let Some(id) = ids[run[0].0] {
                if let Some(product) = &series.product {
                    series_key(&mut key, series.sku.as_str(), series.location.as_str());
                    named.push((id, product));
                    cache.set_named(&key);
                }
                for &(place, _) in run {
                    ids[place] = Some(id);
                }
            } else {
                created.push((next, series));
                runs.push(run);
                next += 1;
            }
        }
        // A cache past its bound does not know every series: those the tenant has already keep
        // their ids (and the ones given here go unused).
        insert_series(
            &writer.connection,
            tenant_key,
            &mut created,
            !cache.complete,
        )?;
        for (&(id, series), run) in created.iter().zip(runs) {
            series_key(&mut key, series.sku.as_str(), series.location.as_str());
            cache.insert(&key, id, series.product.is_some());
            if let Some(product) = &series.product
                && id < next_id
            {
                // The tenant had it (under an id given before this batch's): name it if unnamed.
                named.push((id, product));
            }
            for &(place, _) in run {
                ids[place] = Some(id);
            }
        }
        let mut name = writer
            .connection
            .prepare_cached("UPDATE series SET product = ?2 WHERE id = ?1 AND product IS NULL")
            .map_err(unavailable)?;
        for (id, product) in named {
            name.execute(params![id, product]).map_err(unavailable)?;
        }
        writer.next_series_id = Some(next);
    }
    listed
        .iter()
        .zip(ids)
        .map(|(series, id)| {
            id.ok_or_else(|| {
                StoreError::Unavailable(
                    format!("series {} was not created", series.sku.as_str()).into(),
                )
            })
        })
        .collect()
}

/// The first 16 bytes of `text`, zero-padded, as a number: two texts' numbers order as the texts
/// do, or are equal (no SKU or location holds a NUL).
fn text_prefix(text: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let length = text.len().min(16);
    bytes[..length].copy_from_slice(&text.as_bytes()[..length]);
    u128::from_be_bytes(bytes)
}

/// Sorts series by SKU, location and product name (a listing without a name first). Compared by
/// their SKUs' first 16 bytes as a number first: the texts themselves only for one SKU's
/// locations (a sort of 100,000 new series by the texts alone took ~9 % of a 1M-row import's
/// writer).
fn sort_series(series: &mut Vec<(usize, &BatchSeries)>) {
    fn full<'a>(&(_, series): &(usize, &'a BatchSeries)) -> (&'a str, &'a str, Option<&'a str>) {
        series.parts()
    }
    let mut keyed: Vec<(u128, (usize, &BatchSeries))> = series
        .iter()
        .map(|&entry| (text_prefix(entry.1.sku.as_str()), entry))
        .collect();
    keyed.sort_unstable_by(|(left_prefix, left), (right_prefix, right)| {
        left_prefix
            .cmp(right_prefix)
            .then_with(|| full(left).cmp(&full(right)))
    });
    series.clear();
    series.extend(keyed.into_iter().map(|(_, entry)| entry));
}

/// Inserts new series with the ids the writer gave them, several per statement. With
/// `maybe_known` (the writer's cache does not hold all the tenant's series), a series the tenant
/// has already is left as it is and its id replaces the one given.
fn insert_series(
    connection: &Connection,
    tenant_key: i64,
    created: &mut [(i64, &BatchSeries)],
    maybe_known: bool,
) -> Result<(), StoreError> {
    for chunk in created.chunks_mut(SERIES_PER_STATEMENT) {
        let mut sql =
            String::from("INSERT INTO series (id, tenant_id, sku, location, product) VALUES ");
        for row in 0..chunk.len() {
            sql.push_str(if row == 0 {
                "(?,?,?,?,?)"
            } else {
                ",(?,?,?,?,?)"
            });
        }
        if maybe_known {
            sql.push_str(" ON CONFLICT (tenant_id, sku, location) DO NOTHING");
        }
        let mut statement = connection.prepare_cached(&sql).map_err(unavailable)?;
        for (row, (id, series)) in chunk.iter().enumerate() {
            let (sku, location, product) = series.parts();
            let first = row * 5 + 1;
            statement
                .raw_bind_parameter(first, id)
                .and_then(|()| statement.raw_bind_parameter(first + 1, tenant_key))
                .and_then(|()| statement.raw_bind_parameter(first + 2, sku))
                .and_then(|()| statement.raw_bind_parameter(first + 3, location))
                .and_then(|()| statement.raw_bind_parameter(first + 4, product))
                .map_err(unavailable)?;
        }
        let inserted = statement.raw_execute().map_err(unavailable)?;
        if inserted < chunk.len() {
            let mut existing = connection
                .prepare_cached(
                    "SELECT id FROM series WHERE tenant_id = ?1 AND sku = ?2 AND location = ?3",
                )
                .map_err(unavailable)?;
            for (id, series) in chunk.iter_mut() {
                *id = existing
                    .query_row(
                        params![tenant_key, series.sku.as_str(), series.location.as_str()],
                        |row| row.get(0),
                    )
                    .map_err(unavailable)?;
            }
        }
    }
    Ok(())
}

/// Series ids the writer resolved for shared series lists, by tenant and [`SeriesList::id`]: each
/// batch of an upload resolves only the series it adds to its list.
pub(crate) type ListedSeries = foldhash::HashMap<(i64, u64), Vec<i64>>;

/// Shared lists whose ids the writer keeps at once (uploads written at the same time).
pub(super) const MAX_LISTS: usize = 4;

/// The series id of each series of `list`, by number: those resolved for the list's earlier
/// batches, then the ones it adds (resolved now). Taken out of the writer's keeping; give them
/// back with [`keep_series_ids`].
fn series_ids(
    writer: &mut Writer,
    tenant_key: i64,
    list: &SeriesList,
) -> Result<Vec<i64>, StoreError> {
    let mut ids = match list.id() {
        0 => Vec::new(),
        id => writer
            .listed_series
            .remove(&(tenant_key, id))
            .unwrap_or_default(),
    };
    if ids.len() > list.len() {
        ids.clear();
    }
    let added: Vec<&BatchSeries> = list.iter_from(ids.len()).collect();
    ids.extend(series_keys(writer, tenant_key, &added)?);
    Ok(ids)
}

/// Keeps the ids of a shared list for its next batch.
fn keep_series_ids(writer: &mut Writer, tenant_key: i64, list: &SeriesList, ids: Vec<i64>) {
    if list.id() == 0 {
        return;
    }
    if writer.listed_series.len() >= MAX_LISTS {
        writer.listed_series.clear();
    }
    writer.listed_series.insert((tenant_key, list.id()), ids);
}

/// Net change of one day and series within a batch.
#[derive(Default, Clone, Copy)]
struct Delta {
    units: f64,
    revenue: f64,
}

/// Line pages held in memory by one write before they are flushed: bounds memory however many
/// lines one day holds. A batch's lines come in page order, so a flush in the middle of a batch
/// writes pages it is done with and reads nothing twice.
const MAX_PAGE_BYTES: usize = 16 << 20;

/// The line pages one write has read or changed, by `(day, bucket)`.
struct LinePages<'a> {
    connection: &'a Connection,
    tenant_key: i64,
    pages: Vec<((i32, i64), pages::LinePage)>,
    /// Where each slot's page is in `pages`.
    index: foldhash::HashMap<(i32, i64), usize>,
    /// The page asked for last: lines come in page order, so most asks are for it again.
    last: Option<usize>,
    bytes: usize,
}

impl<'a> LinePages<'a> {
    fn new(connection: &'a Connection, tenant_key: i64) -> Self {
        Self {
            connection,
            tenant_key,
            pages: Vec::new(),
            index: foldhash::HashMap::default(),
            last: None,
            bytes: 0,
        }
    }

    /// The page holding `key` on `day`, read from the store the first time.
    fn page(&mut self, day: i32, key: i64) -> Result<&mut pages::LinePage, StoreError> {
        let slot = (day, pages::line_bucket(key));
        let position = match self.last {
            Some(last) if self.pages[last].0 == slot => last,
            _ => match self.index.get(&slot) {
                Some(&position) => position,
                None => self.read(slot)?,
            },
        };
        self.last = Some(position);
        Ok(&mut self.pages[position].1)
    }

    /// Reads the page of `slot` into memory: its position.
    fn read(&mut self, slot: (i32, i64)) -> Result<usize, StoreError> {
        if self.bytes > MAX_PAGE_BYTES {
            self.flush()?;
        }
        let stored: Option<Vec<u8>> = self
            .connection
            .prepare_cached(
                "SELECT lines FROM line_pages WHERE tenant_id = ?1 AND day = ?2 AND bucket = ?3",
            )
            .and_then(|mut statement| {
                statement
                    .query_row(params![self.tenant_key, slot.0, slot.1], |row| row.get(0))
                    .optional()
            })
            .map_err(unavailable)?;
        let page = pages::LinePage::new(match stored {
            Some(bytes) => pages::decode_lines(&bytes)?,
            None => Vec::new(),
        });
        self.bytes += page.size();
        self.pages.push((slot, page));
        self.index.insert(slot, self.pages.len() - 1);
        Ok(self.pages.len() - 1)
    }

    /// Writes the changed pages, in key order, and forgets every page.
    fn flush(&mut self) -> Result<(), StoreError> {
        self.index.clear();
        self.last = None;
        let mut dirty: Vec<((i32, i64), pages::LinePage)> = self
            .pages
            .drain(..)
            .filter(|(_, page)| page.dirty)
            .collect();
        dirty.sort_unstable_by_key(|(slot, _)| *slot);
        let mut upsert = self
            .connection
            .prepare_cached(
                "INSERT INTO line_pages (tenant_id, day, bucket, lines) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant_id, day, bucket) DO UPDATE SET lines = excluded.lines",
            )
            .map_err(unavailable)?;
        let encoded = pages::encode_shared(
            dirty,
            |(_, page)| page.records(),
            |(slot, page)| (slot, page.encode()),
        );
        for ((day, bucket), bytes) in encoded {
            upsert
                .execute(params![self.tenant_key, day, bucket, bytes])
                .map_err(unavailable)?;
        }
        self.bytes = 0;
        Ok(())
    }
}

/// Buffers of `write_lines`, kept between writes so that an import's batches do not each
/// allocate (and fault in) their own.
#[derive(Default)]
pub(crate) struct Scratch {
    /// The batch's lines as sort keys (`SalesBatch::merge_order_keys`), when it must be sorted,
    /// and the sort's scratch buffer.
    keys: Vec<u128>,
    spread: Vec<u128>,
    deltas: Vec<(i32, i64, Delta)>,
    /// `deltas` added up by day and series, in that order.
    summed: Vec<(i32, i64, Delta)>,
    /// A day's sums indexed by series (see [`sum_by_series`]).
    table: Vec<Option<Delta>>,
}

fn small_key(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value)
        .map_err(|_| StoreError::Unavailable(format!("{what} id {value} exceeds 32 bits").into()))
}

pub(super) fn write_sales(
    writer: &mut Writer,
    tenant: &TenantId,
    upload: &UploadId,
    lines: &SalesBatch,
) -> Result<SalesWrite, StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let upload_key = small_key(
        upload_key(&writer.connection, tenant_key, upload)?,
        "upload",
    )?;
    write_lines(writer, tenant_key, upload_key, lines, false)
}

/// Upload key of lines that come from Shopify orders rather than an upload.
const ORDER_LINES: u32 = 0;

/// Merges `lines` into the line and day pages. With `replace`, a stored line with the same
/// identity always takes the new values (order versions); otherwise a line seen earlier in the same
/// upload makes this one another sale (CSV rows).
fn write_lines(
    writer: &mut Writer,
    tenant_key: i64,
    upload_key: u32,
    batch: &SalesBatch,
    replace: bool,
) -> Result<SalesWrite, StoreError> {
    let series_ids = series_ids(writer, tenant_key, &batch.series)?;
    let Scratch {
        mut keys,
        mut spread,
        mut deltas,
        mut summed,
        mut table,
    } = std::mem::take(&mut writer.sales_scratch);
    deltas.clear();
    // A delta per line, or two for a line that moves to another series: room for the usual case
    // at once, instead of doubling (each step a copy into fresh pages).
    deltas.reserve(batch.lines.len());
    let mut merge = Merge {
        pages: LinePages::new(&writer.connection, tenant_key),
        series_ids: &series_ids,
        upload_key,
        replace,
        outcome: SalesWrite::default(),
        deltas: &mut deltas,
        previous: None,
    };
    // Lines are visited in (day, key) order: pages are read and written once each, in key order;
    // repeats of one identity keep their file order. An import's batches come in that order
    // (`SalesBatch::sort_lines`) and are merged as they are; other batches are visited through
    // their sorted keys (`SalesBatch::merge_order_keys`).
    if batch.in_merge_order() {
        batch.lines.iter().try_for_each(|line| merge.line(line))?;
    } else {
        batch.merge_order_keys(&mut keys, &mut spread);
        keys.iter()
            .try_for_each(|&key| merge.line(batch.line_at(key)))?;
    }
    let Merge {
        mut pages, outcome, ..
    } = merge;
    pages.flush()?;
    keep_series_ids(writer, tenant_key, &batch.series, series_ids);
    sum_by_series(&mut deltas, &mut summed, &mut table);
    write_deltas(&writer.connection, tenant_key, &summed)?;
    writer.sales_scratch = Scratch {
        keys,
        spread,
        deltas,
        summed,
        table,
    };
    Ok(outcome)
}

/// The merge of a batch's lines, one at a time, in (day, key) order.
struct Merge<'a> {
    pages: LinePages<'a>,
    /// Series id of each series of the batch, by number.
    series_ids: &'a [i64],
    upload_key: u32,
    replace: bool,
    outcome: SalesWrite,
    /// Changes to daily sales: (day, series, change).
    deltas: &'a mut Vec<(i32, i64, Delta)>,
    /// The day, identity and occurrence of the line before: repeats of one identity are adjacent,
    /// and every occurrence up to the last one's is this upload's by then, so the next repeat
    /// starts after it instead of probing them all again (n repeats: n probes, not n²/2).
    previous: Option<(i32, crate::domain::LineIdentity, u32)>,
}

impl Merge<'_> {
    fn line(&mut self, line: &BatchLine) -> Result<(), StoreError> {
        let day = day_number(line.date);
        let series = *self.series_ids.get(line.series as usize).ok_or_else(|| {
            StoreError::Unavailable(
                format!("a batch line names series {} it does not list", line.series).into(),
            )
        })?;
        let delta = Delta {
            units: line.units,
            revenue: line.revenue,
        };
        let mut occurrence = match self.previous {
            Some((previous_day, identity, last))
                if !self.replace && (previous_day, identity) == (day, line.identity) =>
            {
                last + 1
            }
            _ => 0,
        };
        loop {
            let key = line.identity.key(occurrence);
            let page = self.pages.page(day, key)?;
            let Some(stored) = page.get_mut(key) else {
                page.insert(pages::LineRecord {
                    key,
                    series,
                    units: line.units,
                    revenue: line.revenue,
                    upload: self.upload_key,
                    seen: self.upload_key,
                });
                self.outcome.imported += 1;
                self.deltas.push((day, series, delta));
                break;
            };
            if stored.seen == self.upload_key && !self.replace {
                // An earlier row of this same upload holds this occurrence: this row is another sale.
                occurrence += 1;
                continue;
            }
            let before = *stored;
            stored.series = series;
            stored.units = line.units;
            stored.revenue = line.revenue;
            stored.seen = self.upload_key;
            page.dirty = true;
            if before.series == series
                && before.units == line.units
                && before.revenue == line.revenue
            {
                self.outcome.duplicate += 1;
            } else {
                self.outcome.updated += 1;
                let undo = Delta {
                    units: -before.units,
                    revenue: -before.revenue,
                };
                self.deltas.push((day, before.series, undo));
                self.deltas.push((day, series, delta));
            }
            break;
        }
        self.previous = Some((day, line.identity, occurrence));
        Ok(())
    }
}

/// Series ids a day's deltas may span, per delta, for them to be added up in a table indexed by
/// series instead of sorted.
const DENSE_SPAN_PER_DELTA: usize = 2;

/// Puts into `summed` the sum of `deltas` per day and series, in (day, series) order. The lines
/// come in day order and a day's deltas usually name series whose ids lie close together (a
/// tenant's series are numbered as they first appear): those are added up in `table`, indexed by
/// series, in one pass; other days (and deltas out of day order) are sorted first.
fn sum_by_series(
    deltas: &mut [(i32, i64, Delta)],
    summed: &mut Vec<(i32, i64, Delta)>,
    table: &mut Vec<Option<Delta>>,
) {
    summed.clear();
    summed.reserve(deltas.len());
    if !deltas.is_sorted_by_key(|(day, _, _)| *day) {
        deltas.sort_unstable_by_key(|(day, series, _)| (*day, *series));
    }
    for run in deltas.chunk_by_mut(|left, right| left.0 == right.0) {
        let day = run[0].0;
        let (low, high) = run.iter().fold((i64::MAX, i64::MIN), |(low, high), delta| {
            (low.min(delta.1), high.max(delta.1))
        });
        let span = usize::try_from(high.saturating_sub(low))
            .ok()
            .and_then(|span| span.checked_add(1))
            .filter(|span| *span <= run.len().saturating_mul(DENSE_SPAN_PER_DELTA));
        let Some(span) = span else {
            run.sort_unstable_by_key(|(_, series, _)| *series);
            for (_, series, delta) in run.iter() {
                match summed.last_mut() {
                    Some(last) if last.0 == day && last.1 == *series => {
                        last.2.units += delta.units;
                        last.2.revenue += delta.revenue;
                    }
                    _ => summed.push((day, *series, *delta)),
                }
            }
            continue;
        };
        table.clear();
        table.resize(span, None);
        for (_, series, delta) in run.iter() {
            // `low <= series <= high`, and the table spans them.
            if let Some(slot) = usize::try_from(series - low)
                .ok()
                .and_then(|at| table.get_mut(at))
            {
                let sum = slot.get_or_insert_with(Delta::default);
                sum.units += delta.units;
                sum.revenue += delta.revenue;
            }
        }
        summed.extend(
            (low..)
                .zip(table.iter())
                .filter_map(|(series, sum)| sum.map(|sum| (day, series, sum))),
        );
    }
}

/// Adds `deltas` to the daily sales, one page read and write per day and series bucket touched.
fn write_deltas(
    connection: &Connection,
    tenant_key: i64,
    deltas: &[(i32, i64, Delta)],
) -> Result<(), StoreError> {
    let mut read = connection
        .prepare_cached(
            "SELECT cells FROM day_pages WHERE tenant_id = ?1 AND day = ?2 AND bucket = ?3",
        )
        .map_err(unavailable)?;
    let mut upsert = connection
        .prepare_cached(
            "INSERT INTO day_pages (tenant_id, day, bucket, cells) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id, day, bucket) DO UPDATE SET cells = excluded.cells",
        )
        .map_err(unavailable)?;
    // The stored page of each (day, bucket) the deltas touch, with its run of deltas; then the
    // merged pages, encoded on two threads when there are many.
    let mut groups = Vec::new();
    let mut start = 0;
    while start < deltas.len() {
        let (day, first_series, _) = deltas[start];
        let bucket = pages::series_bucket(first_series);
        let run = deltas[start..]
            .iter()
            .take_while(|(other_day, series, _)| {
                *other_day == day && pages::series_bucket(*series) == bucket
            })
            .count();
        let stored: Option<Vec<u8>> = read
            .query_row(params![tenant_key, day, bucket], |row| row.get(0))
            .optional()
            .map_err(unavailable)?;
        groups.push((day, bucket, start..start + run, stored));
        start += run;
    }
    let merged = pages::encode_shared(
        groups,
        |(_, _, run, stored)| run.len() + stored.as_ref().map_or(0, |bytes| bytes.len() / 8),
        |(day, bucket, run, stored)| {
            // One delta per day and series (`sum_by_series`).
            let cells: Vec<pages::Cell> = deltas[run]
                .iter()
                .map(|&(_, series, delta)| pages::Cell {
                    series,
                    units: delta.units,
                    revenue: delta.revenue,
                })
                .collect();
            pages::merge_cells(stored.as_deref(), &cells).map(|bytes| (day, bucket, bytes))
        },
    );
    for page in merged {
        let (day, bucket, bytes) = page?;
        upsert
            .execute(params![tenant_key, day, bucket, bytes])
            .map_err(unavailable)?;
    }
    Ok(())
}

fn parse_report(text: &str) -> Result<ImportReport, StoreError> {
    serde_json::from_str(text).map_err(StoreError::unavailable)
}

pub(super) fn upload(
    connection: &Connection,
    tenant: &TenantId,
    upload: &UploadId,
) -> Result<ImportReport, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let text: String = connection
        .prepare_cached("SELECT report FROM uploads WHERE tenant_id = ?1 AND public_id = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![tenant_key, upload], |row| row.get(0))
                .optional()
        })
        .map_err(unavailable)?
        .ok_or_else(|| not_found("upload", upload))?;
    parse_report(&text)
}

pub(super) fn uploads(
    connection: &Connection,
    tenant: &TenantId,
    limit: u32,
) -> Result<Vec<ImportReport>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let mut statement = connection
        .prepare_cached("SELECT report FROM uploads WHERE tenant_id = ?1 ORDER BY id DESC LIMIT ?2")
        .map_err(unavailable)?;
    let rows = statement
        .query_map(params![tenant_key, limit], |row| row.get::<_, String>(0))
        .map_err(unavailable)?;
    rows.map(|row| parse_report(&row.map_err(unavailable)?))
        .collect()
}

/// The days with sales of one series: `(day, units, revenue)`, ascending.
type SeriesDays = Vec<(i32, f64, f64)>;

/// Every day a scan can cover.
pub(super) const ALL_DAYS: (i32, i32) = (i32::MIN, i32::MAX);

/// Calls `visit(day, cell)` for each cell of the tenant's daily-sales pages from `from` to `to`,
/// in day order; `wanted(bucket)` says which pages to decode.
pub(super) fn scan_day_pages(
    connection: &Connection,
    tenant_key: i64,
    (from, to): (i32, i32),
    wanted: impl Fn(i64) -> bool,
    mut visit: impl FnMut(i32, pages::Cell),
) -> Result<(), StoreError> {
    let mut scan = connection
        .prepare_cached(
            "SELECT day, bucket, cells FROM day_pages
             WHERE tenant_id = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day, bucket",
        )
        .map_err(unavailable)?;
    let mut rows = scan
        .query(params![tenant_key, from, to])
        .map_err(unavailable)?;
    while let Some(row) = rows.next().map_err(unavailable)? {
        let day: i32 = row.get(0).map_err(unavailable)?;
        if !wanted(row.get(1).map_err(unavailable)?) {
            continue;
        }
        let cells = row
            .get_ref(2)
            .and_then(|value| value.as_blob().map_err(Into::into))
            .map_err(unavailable)?;
        pages::for_each_cell(cells, |cell| visit(day, cell))?;
    }
    Ok(())
}

/// `(id, sku, location)` of the tenant's series, optionally of one SKU and/or location, ordered
/// by SKU and location.
fn series_named(
    connection: &Connection,
    tenant_key: i64,
    sku: Option<&Sku>,
    location: Option<&Location>,
) -> Result<Vec<(i64, String, String)>, StoreError> {
    connection
        .prepare_cached(
            "SELECT id, sku, location FROM series
             WHERE tenant_id = ?1 AND (?2 IS NULL OR sku = ?2) AND (?3 IS NULL OR location = ?3)
             ORDER BY sku, location",
        )
        .and_then(|mut statement| {
            statement
                .query_map(
                    params![
                        tenant_key,
                        sku.map(Sku::as_str),
                        location.map(Location::as_str)
                    ],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )?
                .collect()
        })
        .map_err(unavailable)
}

pub(super) fn sales(
    connection: &Connection,
    tenant: &TenantId,
    query: &SalesQuery,
) -> Result<Vec<SalesDay>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let series = series_named(
        connection,
        tenant_key,
        query.sku.as_ref(),
        query.location.as_ref(),
    )?;
    if series.is_empty() {
        return Ok(Vec::new());
    }
    let from = query.days.from.map_or(i32::MIN, day_number);
    let to = query.days.to.map_or(i32::MAX, day_number);
    if from > to {
        return Ok(Vec::new());
    }
    let mut days_by_series: HashMap<i64, SeriesDays> = series
        .iter()
        .map(|(key, _, _)| (*key, Vec::new()))
        .collect();
    let buckets: std::collections::HashSet<i64> = series
        .iter()
        .map(|(key, _, _)| pages::series_bucket(*key))
        .collect();
    scan_day_pages(
        connection,
        tenant_key,
        (from, to),
        |bucket| buckets.contains(&bucket),
        |day, cell| {
            if let Some(days) = days_by_series.get_mut(&cell.series) {
                days.push((day, cell.units, cell.revenue));
            }
        },
    )?;
    let mut result = Vec::new();
    for (series_key, sku, location) in series {
        let Some(days) = days_by_series
            .remove(&series_key)
            .filter(|days| !days.is_empty())
        else {
            continue;
        };
        let sku = Sku::parse(&sku).map_err(StoreError::unavailable)?;
        let location = Location::parse(&location).map_err(StoreError::unavailable)?;
        let start = result.len();
        for (day, units, revenue) in days {
            let mut date = day_from_number(day)?;
            if query.granularity == Granularity::Week {
                let back = chrono::Days::new(u64::from(date.weekday().num_days_from_monday()));
                date = date.checked_sub_days(back).unwrap_or(date);
                if let Some(last) = result.get_mut(start..).and_then(<[SalesDay]>::last_mut)
                    && last.date == date
                {
                    last.units += units;
                    last.revenue += revenue;
                    continue;
                }
            }
            result.push(SalesDay {
                date,
                sku: sku.clone(),
                location: location.clone(),
                units,
                revenue,
            });
        }
    }
    Ok(result)
}

pub(super) fn daily_units(
    connection: &Connection,
    tenant: &TenantId,
    location: Option<&Location>,
    days: crate::domain::DayRange,
) -> Result<Vec<(NaiveDate, f64)>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    // One location: its series, and the pages that can hold them.
    let series: Option<std::collections::HashSet<i64>> = location
        .map(|location| {
            series_named(connection, tenant_key, None, Some(location))
                .map(|series| series.into_iter().map(|(id, _, _)| id).collect())
        })
        .transpose()?;
    let buckets: Option<std::collections::HashSet<i64>> = series.as_ref().map(|series| {
        series
            .iter()
            .map(|key| pages::series_bucket(*key))
            .collect()
    });
    let from = days.from.map_or(i32::MIN, day_number);
    let to = days.to.map_or(i32::MAX, day_number);
    let mut totals: Vec<(i32, f64)> = Vec::new();
    scan_day_pages(
        connection,
        tenant_key,
        (from, to),
        |bucket| {
            buckets
                .as_ref()
                .is_none_or(|buckets| buckets.contains(&bucket))
        },
        |day, cell| {
            if series
                .as_ref()
                .is_some_and(|series| !series.contains(&cell.series))
            {
                return;
            }
            match totals.last_mut() {
                Some((last, units)) if *last == day => *units += cell.units,
                _ => totals.push((day, cell.units)),
            }
        },
    )?;
    totals
        .into_iter()
        .map(|(day, units)| Ok((day_from_number(day)?, units)))
        .collect()
}

pub(super) fn daily_totals(
    connection: &Connection,
    tenant: &TenantId,
    days: crate::domain::DayRange,
) -> Result<Vec<crate::domain::DayTotal>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let from = days.from.map_or(i32::MIN, day_number);
    let to = days.to.map_or(i32::MAX, day_number);
    let mut totals: Vec<(i32, f64, f64)> = Vec::new();
    scan_day_pages(
        connection,
        tenant_key,
        (from, to),
        |_| true,
        |day, cell| match totals.last_mut() {
            Some((last, units, revenue)) if *last == day => {
                *units += cell.units;
                *revenue += cell.revenue;
            }
            _ => totals.push((day, cell.units, cell.revenue)),
        },
    )?;
    totals
        .into_iter()
        .map(|(day, units, revenue)| {
            Ok(crate::domain::DayTotal {
                date: day_from_number(day)?,
                units,
                revenue,
            })
        })
        .collect()
}

pub(super) fn skus(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Vec<SkuSummary>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let mut totals: HashMap<i64, (i32, i32, f64, f64)> = HashMap::new();
    scan_day_pages(
        connection,
        tenant_key,
        ALL_DAYS,
        |_| true,
        |day, cell| {
            let entry = totals.entry(cell.series).or_insert((day, day, 0.0, 0.0));
            entry.1 = day;
            entry.2 += cell.units;
            entry.3 += cell.revenue;
        },
    )?;
    let mut statement = connection
        .prepare_cached("SELECT id, sku, location, product FROM series WHERE tenant_id = ?1 ORDER BY sku, location")
        .map_err(unavailable)?;
    let mut rows = statement.query([tenant_key]).map_err(unavailable)?;
    let mut summaries: Vec<SkuSummary> = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let series_key: i64 = row.get(0).map_err(unavailable)?;
        let Some((first, last, units, revenue)) = totals.get(&series_key).copied() else {
            continue;
        };
        let sku = Sku::parse(&row.get::<_, String>(1).map_err(unavailable)?)
            .map_err(StoreError::unavailable)?;
        let location = Location::parse(&row.get::<_, String>(2).map_err(unavailable)?)
            .map_err(StoreError::unavailable)?;
        let product: Option<String> = row.get(3).map_err(unavailable)?;
        let (first, last) = (day_from_number(first)?, day_from_number(last)?);
        match summaries.last_mut() {
            Some(summary) if summary.sku == sku => {
                summary.locations.push(location);
                summary.first_sale = summary.first_sale.min(first);
                summary.last_sale = summary.last_sale.max(last);
                summary.units += units;
                summary.revenue += revenue;
                if summary.product.is_none() {
                    summary.product = product;
                }
            }
            _ => summaries.push(SkuSummary {
                sku,
                product,
                locations: vec![location],
                first_sale: first,
                last_sale: last,
                units,
                revenue,
            }),
        }
    }
    Ok(summaries)
}

/// Applies an order version to the pages unless a version at least as new was applied: its lines
/// replace the previous version's, and lines that disappeared (or moved day) drop to zero.
pub(super) fn apply_order(
    writer: &mut Writer,
    tenant: &TenantId,
    order: &crate::domain::OrderVersion,
) -> Result<crate::domain::OrderApplied, StoreError> {
    let outcome = apply_orders(writer, tenant, vec![order.clone()])?;
    Ok(if outcome.applied == 0 {
        crate::domain::OrderApplied::Stale
    } else {
        crate::domain::OrderApplied::Applied {
            imported: outcome.lines_imported,
            updated: outcome.lines_updated,
        }
    })
}

/// Applies many order versions in one transaction: each is looked up once, the lines of all the
/// newer ones are merged into the pages in one pass.
pub(super) fn apply_orders(
    writer: &mut Writer,
    tenant: &TenantId,
    mut orders: Vec<crate::domain::OrderVersion>,
) -> Result<crate::domain::OrdersApplied, StoreError> {
    use crate::domain::OrdersApplied;
    let tenant_key = writer.tenant_key(tenant)?;
    // The newest version of each order in the batch, the others are stale.
    orders.sort_by(|left, right| {
        (left.order_id.as_str(), right.updated_at).cmp(&(right.order_id.as_str(), left.updated_at))
    });
    let before = orders.len();
    orders.dedup_by(|later, kept| later.order_id == kept.order_id);
    let mut outcome = OrdersApplied {
        stale: (before - orders.len()) as u64,
        ..OrdersApplied::default()
    };
    let mut lines: Vec<SalesLine> = Vec::new();
    let mut rows: Vec<(String, String, String)> = Vec::with_capacity(orders.len());
    {
        let mut lookup = writer
            .connection
            .prepare_cached(
                "SELECT updated_at, lines FROM shopify_orders WHERE tenant_id = ?1 AND order_id = ?2",
            )
            .map_err(unavailable)?;
        for order in orders {
            let stored: Option<(String, String)> = lookup
                .query_row(params![tenant_key, order.order_id], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
                .map_err(unavailable)?;
            if let Some((updated_at, previous)) = stored {
                if super::parse_time(&updated_at)? >= order.updated_at {
                    outcome.stale += 1;
                    continue;
                }
                let previous: Vec<crate::domain::OrderLineRef> =
                    serde_json::from_str(&previous).map_err(StoreError::unavailable)?;
                lines.extend(
                    order
                        .dropped_lines(previous)
                        .map_err(StoreError::unavailable)?,
                );
            }
            rows.push((
                order.order_id.clone(),
                order.updated_at.to_rfc3339(),
                serde_json::to_string(&order.line_refs()).map_err(StoreError::unavailable)?,
            ));
            lines.extend(order.lines);
            outcome.applied += 1;
        }
    }
    let written = write_lines(
        writer,
        tenant_key,
        ORDER_LINES,
        &SalesBatch::from(lines),
        true,
    )?;
    outcome.lines_imported = written.imported;
    outcome.lines_updated = written.updated;
    let mut upsert = writer
        .connection
        .prepare_cached(
            "INSERT INTO shopify_orders (tenant_id, order_id, updated_at, lines) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id, order_id) DO UPDATE SET updated_at = excluded.updated_at,
                 lines = excluded.lines",
        )
        .map_err(unavailable)?;
    for (order_id, updated_at, refs) in rows {
        upsert
            .execute(params![tenant_key, order_id, updated_at, refs])
            .map_err(unavailable)?;
    }
    Ok(outcome)
}

pub(super) fn put_sync_status(
    writer: &mut Writer,
    tenant: &TenantId,
    status: &crate::domain::SyncStatus,
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let text = serde_json::to_string(status).map_err(StoreError::unavailable)?;
    let state = serde_json::to_value(status.state)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default();
    writer
        .connection
        .prepare_cached(
            "INSERT INTO shopify_syncs (tenant_id, state, status) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant_id) DO UPDATE SET state = excluded.state, status = excluded.status",
        )
        .and_then(|mut statement| statement.execute(params![tenant_key, state, text]))
        .map_err(unavailable)?;
    Ok(())
}

pub(super) fn sync_status(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Option<crate::domain::SyncStatus>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let text: Option<String> = connection
        .prepare_cached("SELECT status FROM shopify_syncs WHERE tenant_id = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([tenant_key], |row| row.get(0))
                .optional()
        })
        .map_err(unavailable)?;
    text.map(|text| serde_json::from_str(&text).map_err(StoreError::unavailable))
        .transpose()
}

pub(super) fn signal_bulk_finished(
    writer: &mut Writer,
    tenant: &TenantId,
    operation_id: &str,
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    writer
        .connection
        .prepare_cached(
            "INSERT INTO shopify_bulk_finished (tenant_id, operation_id, at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                tenant_key,
                operation_id,
                chrono::Utc::now().to_rfc3339()
            ])
        })
        .map_err(unavailable)?;
    Ok(())
}

pub(super) fn bulk_finished(
    connection: &Connection,
    tenant: &TenantId,
    operation_id: &str,
) -> Result<bool, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    connection
        .prepare_cached(
            "SELECT 1 FROM shopify_bulk_finished WHERE tenant_id = ?1 AND operation_id = ?2",
        )
        .and_then(|mut statement| statement.exists(params![tenant_key, operation_id]))
        .map_err(unavailable)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sum_by_series` must give: the sums per (day, series), in that order.
    fn expected(deltas: &[(i32, i64, Delta)]) -> Vec<(i32, i64, f64, f64)> {
        let mut sums: std::collections::BTreeMap<(i32, i64), (f64, f64)> = Default::default();
        for (day, series, delta) in deltas {
            let sum = sums.entry((*day, *series)).or_default();
            sum.0 += delta.units;
            sum.1 += delta.revenue;
        }
        sums.into_iter()
            .map(|((day, series), (units, revenue))| (day, series, units, revenue))
            .collect()
    }

    fn summed(mut deltas: Vec<(i32, i64, Delta)>) -> Vec<(i32, i64, f64, f64)> {
        let (mut summed, mut table) = (Vec::new(), Vec::new());
        sum_by_series(&mut deltas, &mut summed, &mut table);
        summed
            .into_iter()
            .map(|(day, series, sum)| (day, series, sum.units, sum.revenue))
            .collect()
    }

    fn delta(day: i32, series: i64, units: f64) -> (i32, i64, Delta) {
        (
            day,
            series,
            Delta {
                units,
                revenue: units * 2.0,
            },
        )
    }

    #[test]
    fn series_sort_by_sku_location_and_name_whatever_their_lengths() {
        let skus = [
            "B",
            "A",
            "AB",
            "A-0000000000000001",
            "A-0000000000000000",
            "A-000000000000000",
            "A-0000000000000000X",
            "é-sku",
        ];
        let mut all = Vec::new();
        for (at, sku) in skus.iter().enumerate() {
            for location in ["Store 2", "Store 10", "default"] {
                for product in [None, Some("Mug"), Some("Cup")] {
                    all.push(BatchSeries {
                        sku: Sku::from_checked(sku),
                        location: Location::from_checked(location),
                        product: product.map(str::to_owned),
                    });
                    // Interleave: the input order must not matter.
                    all.rotate_left(at % 3);
                }
            }
        }
        let mut sorted: Vec<(usize, &BatchSeries)> = all.iter().enumerate().collect();
        sort_series(&mut sorted);
        let got: Vec<_> = sorted.iter().map(|(_, series)| series.parts()).collect();
        let mut expected: Vec<_> = all.iter().map(BatchSeries::parts).collect();
        expected.sort();
        assert_eq!(got, expected);
    }

    #[test]
    fn the_series_cache_finds_what_it_holds_and_is_incomplete_once_full() {
        let mut cache = SeriesCache::new();
        let mut key = String::new();
        for n in 0..MAX_CACHED_SERIES + 5 {
            series_key(
                &mut key,
                &format!("SKU-{n}"),
                if n % 2 == 0 { "" } else { "Store" },
            );
            assert_eq!(cache.get(&key), None);
            cache.insert(&key, n as i64 + 100, n % 3 == 0);
        }
        assert!(!cache.complete);
        assert_eq!(cache.len(), MAX_CACHED_SERIES);
        for n in 0..MAX_CACHED_SERIES + 5 {
            series_key(
                &mut key,
                &format!("SKU-{n}"),
                if n % 2 == 0 { "" } else { "Store" },
            );
            let expected = (n < MAX_CACHED_SERIES).then_some((n as i64 + 100, n % 3 == 0));
            assert_eq!(cache.get(&key), expected, "{key}");
        }
        // Same SKU, other location; a key that is a prefix of another.
        series_key(&mut key, "SKU-1", "");
        assert_eq!(cache.get(&key), None);
        series_key(&mut key, "SKU-1", "Store");
        cache.set_named(&key);
        assert_eq!(cache.get(&key), Some((101, true)));
        series_key(&mut key, "SKU-1", "Stor");
        assert_eq!(cache.get(&key), None);
    }

    #[test]
    fn deltas_are_summed_per_day_and_series_in_order_whether_their_series_lie_close_or_not() {
        // Day 1: close series (summed in a table), repeats included; day 2: series far apart
        // (sorted); day 3: a single delta.
        let close: Vec<_> = [5, 3, 4, 5, 3, 7, 6, 5]
            .into_iter()
            .enumerate()
            .map(|(at, series)| delta(1, series, at as f64 + 1.0))
            .collect();
        let far = vec![
            delta(2, 1_000_000, 1.0),
            delta(2, 3, -2.0),
            delta(2, 1_000_000, 4.0),
        ];
        let all: Vec<_> = close
            .iter()
            .chain(&far)
            .copied()
            .chain([delta(3, 9, 1.5)])
            .collect();
        assert_eq!(summed(all.clone()), expected(&all));
        assert_eq!(summed(close.clone()).len(), 5);
        // Out of day order (a file not sorted by date): the same sums.
        let mut shuffled = all.clone();
        shuffled.reverse();
        assert_eq!(summed(shuffled), expected(&all));
        assert!(summed(Vec::new()).is_empty());
    }
}
