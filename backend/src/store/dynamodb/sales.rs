//! Uploads, sales lines, daily sales, forecasts, stock and the Shopify catalogue in DynamoDB.
//!
//! Layout (all under the tenant's `T#{tenant}` prefix):
//! - `T#{t}` / `SERIES#{sku}␁{location}`: one item per series with its running totals, first and
//!   last sales day, product name and when its forecast was made (the series registry);
//! - `T#{t}#SKU#{sku}` / `D#{location}␁{date}`: net units and revenue of one day (a cell), and
//!   `F#{location}`: the series' forecast; one Query reads a SKU's sales and forecasts;
//! - `T#{t}#TOT#{year}` / `A#{date}` and `L#{location}␁{date}`: net units (and, over all series,
//!   revenue) per day over all series and per location, so that the tenant's daily totals are one
//!   Query per year;
//! - `T#{t}#L#{year-month}` / `{date}#{line key}`: one item per stored sales line (dedupe);
//! - `T#{t}#O#{bucket}` / `{order id}`: the last applied version of a Shopify order;
//! - `T#{t}` / `UPLOAD#{id}` and `UPLOADS#{started}#{id}`: an upload's report, by id and by time;
//! - `T#{t}` / `STOCK#{sku}␁{location}`, `PRODUCT#{id}`, `ITEM#{inventory item}␁{variant}`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};

use super::{
    CONCURRENCY, Change, DynamoStore, Item, MAX_TRANSACTION_ITEMS, Query, SEP, TENANT_SK,
    Transaction, b, corrupt, n, not_found, number, optional_bytes, optional_number, optional_text,
    parse_time, s, tenant_pk, text, time_text,
};
use crate::domain::{
    CatalogueVariant, DayRange, Granularity, LineIdentity, Location, OrderApplied, OrderLineRef,
    OrderVersion, SalesDay, SalesLine, SalesQuery, SeriesForecast, SeriesHistory, Sku, SkuSummary,
    StockLevel, TenantId,
};
use crate::store::{ImportReport, SalesWrite, StoreError, UploadId};

/// Buckets a tenant's orders are spread over.
const ORDER_BUCKETS: u8 = 16;
/// The `seen` mark of lines written from Shopify orders rather than an upload.
const ORDER_LINES: &str = "order";

pub(super) fn sku_pk(tenant: &TenantId, sku: &str) -> String {
    format!("T#{tenant}#SKU#{sku}")
}

fn lines_pk(tenant: &TenantId, date: NaiveDate) -> String {
    format!("T#{tenant}#L#{:04}-{:02}", date.year(), date.month())
}

pub(super) fn totals_pk(tenant: &TenantId, year: i32) -> String {
    format!("T#{tenant}#TOT#{year:04}")
}

fn orders_pk(tenant: &TenantId, order_id: &str) -> String {
    format!("T#{tenant}#O#{}", super::shard_of(order_id, ORDER_BUCKETS))
}

pub(super) fn series_sk(sku: &str, location: &str) -> String {
    format!("SERIES#{sku}{SEP}{location}")
}

fn cell_sk(location: &str, date: NaiveDate) -> String {
    format!("D#{location}{SEP}{date}")
}

fn line_sk(date: NaiveDate, key: i64) -> String {
    format!("{date}#{:016x}", u64::from_ne_bytes(key.to_ne_bytes()))
}

fn upload_sk(upload: &str) -> String {
    format!("UPLOAD#{upload}")
}

pub(super) fn date_of(text: &str) -> Result<NaiveDate, StoreError> {
    text.parse()
        .map_err(|_| corrupt(format!("stored day {text:?} is not a date")))
}

pub(super) fn sku_of(text: &str) -> Result<Sku, StoreError> {
    Sku::parse(text).map_err(StoreError::unavailable)
}

pub(super) fn location_of(text: &str) -> Result<Location, StoreError> {
    Location::parse(text).map_err(StoreError::unavailable)
}

// ----- Uploads --------------------------------------------------------------------------------

fn report_json(report: &ImportReport) -> Result<String, StoreError> {
    serde_json::to_string(report).map_err(StoreError::unavailable)
}

fn report_of(item: &Item) -> Result<ImportReport, StoreError> {
    serde_json::from_str(text(item, "report")?).map_err(StoreError::unavailable)
}

pub(super) async fn begin_upload(
    store: &DynamoStore,
    tenant: &TenantId,
    report: &ImportReport,
) -> Result<(), StoreError> {
    let listing = format!(
        "UPLOADS#{}#{}",
        time_text(report.started_at),
        report.upload_id
    );
    let json = report_json(report)?;
    let by_id = HashMap::from([
        ("PK".to_owned(), s(tenant_pk(tenant))),
        ("SK".to_owned(), s(upload_sk(&report.upload_id))),
        ("report".to_owned(), s(json.clone())),
        ("listing".to_owned(), s(listing.clone())),
    ]);
    let by_time = HashMap::from([
        ("PK".to_owned(), s(tenant_pk(tenant))),
        ("SK".to_owned(), s(listing)),
        ("report".to_owned(), s(json)),
    ]);
    let items = vec![
        store.check_item(tenant_pk(tenant), TENANT_SK, "attribute_exists(PK)")?,
        store.put_item(by_id, Some("attribute_not_exists(PK)"), Item::new())?,
        store.put_item(by_time, None, Item::new())?,
    ];
    store.transact(items).await.map_err(|outcome| {
        if outcome.failed_at(0) {
            not_found("tenant", tenant.as_str())
        } else {
            outcome.into_store_error(|| StoreError::Conflict {
                entity: "upload",
                id: report.upload_id.clone(),
            })
        }
    })
}

pub(super) async fn finish_upload(
    store: &DynamoStore,
    tenant: &TenantId,
    report: &ImportReport,
) -> Result<(), StoreError> {
    let missing = || not_found("upload", &report.upload_id);
    let stored = store
        .get(tenant_pk(tenant), &upload_sk(&report.upload_id))
        .await?
        .ok_or_else(missing)?;
    let listing = text(&stored, "listing")?.to_owned();
    let json = report_json(report)?;
    let change = |sk: String| {
        Change::new(tenant_pk(tenant), sk, "SET #report = :report")
            .when("attribute_exists(PK)")
            .value(":report", s(json.clone()))
    };
    // The report by id and its copy in the time-ordered listing change together.
    let items = vec![
        store.update_item(change(upload_sk(&report.upload_id)))?,
        store.update_item(change(listing))?,
    ];
    store
        .transact(items)
        .await
        .map_err(|outcome| outcome.into_store_error(missing))
}

pub(super) async fn upload(
    store: &DynamoStore,
    tenant: &TenantId,
    upload: &UploadId,
) -> Result<ImportReport, StoreError> {
    let item = store
        .get(tenant_pk(tenant), &upload_sk(upload))
        .await?
        .ok_or_else(|| not_found("upload", upload))?;
    report_of(&item)
}

pub(super) async fn uploads(
    store: &DynamoStore,
    tenant: &TenantId,
    limit: u32,
) -> Result<Vec<ImportReport>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let query = Query::prefix(tenant_pk(tenant), "UPLOADS#")
        .backward()
        .page(limit.min(1000));
    let items = store.query_all(&query, Some(limit)).await?;
    items.iter().map(report_of).collect()
}

// ----- Sales lines ----------------------------------------------------------------------------

/// A stored sales line.
#[derive(Debug, Clone, PartialEq)]
struct StoredLine {
    sku: String,
    location: String,
    units: f64,
    revenue: f64,
    upload: String,
    seen: String,
}

impl StoredLine {
    fn from_item(item: &Item) -> Result<Self, StoreError> {
        Ok(Self {
            sku: text(item, "sku")?.to_owned(),
            location: text(item, "location")?.to_owned(),
            units: number(item, "units")?,
            revenue: number(item, "revenue")?,
            upload: text(item, "upload")?.to_owned(),
            seen: text(item, "seen")?.to_owned(),
        })
    }
}

/// A line as read before this write (`version` guards the conditional put) and as it is now.
#[derive(Debug)]
struct Slot {
    version: Option<u64>,
    current: Option<StoredLine>,
    dirty: bool,
}

/// A change to the daily sales: `units` and `revenue` added to one series on one day.
#[derive(Debug, Clone)]
struct Delta {
    date: NaiveDate,
    sku: String,
    location: String,
    units: f64,
    revenue: f64,
}

/// Why writing lines stopped.
#[derive(Debug)]
pub(super) enum LinesError {
    /// The order claim (first in each transaction of an order version) failed its condition: the
    /// order item changed since it was read.
    ClaimFailed,
    /// Another writer changed one of the lines first.
    Conflict,
    /// Anything else.
    Store(StoreError),
}

impl From<StoreError> for LinesError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

pub(super) async fn write_sales(
    store: &DynamoStore,
    tenant: &TenantId,
    upload: &UploadId,
    lines: &[SalesLine],
) -> Result<SalesWrite, StoreError> {
    // The upload is the tenant's: this also refuses another tenant's upload id.
    if store
        .get(tenant_pk(tenant), &upload_sk(upload))
        .await?
        .is_none()
    {
        return Err(not_found("upload", upload));
    }
    write_lines(store, tenant, upload, lines, None)
        .await
        .map_err(|error| match error {
            LinesError::Store(error) => error,
            LinesError::ClaimFailed | LinesError::Conflict => StoreError::Conflict {
                entity: "sales line",
                id: upload.clone(),
            },
        })
}

/// Reads the lines under `keys` into `slots`.
async fn load_lines(
    store: &DynamoStore,
    tenant: &TenantId,
    keys: Vec<(NaiveDate, i64)>,
    slots: &mut HashMap<(NaiveDate, i64), Slot>,
) -> Result<(), StoreError> {
    let wanted: Vec<(String, String)> = keys
        .iter()
        .map(|(date, key)| (lines_pk(tenant, *date), line_sk(*date, *key)))
        .collect();
    let mut found: HashMap<String, Item> = HashMap::new();
    for item in store.batch_get(wanted).await? {
        found.insert(
            format!("{}|{}", text(&item, "PK")?, text(&item, "SK")?),
            item,
        );
    }
    for (date, key) in keys {
        let id = format!("{}|{}", lines_pk(tenant, date), line_sk(date, key));
        let slot = match found.get(&id) {
            Some(item) => Slot {
                version: Some(number(item, "v")?),
                current: Some(StoredLine::from_item(item)?),
                dirty: false,
            },
            None => Slot {
                version: None,
                current: None,
                dirty: false,
            },
        };
        slots.insert((date, key), slot);
    }
    Ok(())
}

/// Merges `lines` into the stored lines and the daily sales. For an order version (`claim`), a
/// stored line with the same identity always takes the new values, and the order claim goes with
/// the lines (see [`OrderClaim`]); otherwise a line this same upload stored already makes this one
/// another sale (CSV rows).
///
/// Each transaction holds whole lines together with every daily-sales item they change, so a
/// line and the sales it counts for are never written one without the other: every change to the
/// daily sales is the difference between a line's stored state and its new one, made on the
/// condition that the stored state is still the one read. Writing the same lines again therefore
/// adds nothing twice.
pub(super) async fn write_lines(
    store: &DynamoStore,
    tenant: &TenantId,
    upload: &str,
    lines: &[SalesLine],
    claim: Option<OrderClaim>,
) -> Result<SalesWrite, LinesError> {
    let replace = claim.is_some();
    let no_drops = HashSet::new();
    let dropped = claim.as_ref().map_or(&no_drops, |claim| &claim.dropped);
    let widen_all = claim.as_ref().is_some_and(|claim| claim.widen_all);
    let mut order: Vec<&SalesLine> = lines.iter().collect();
    order.sort_by_key(|line| (line.date, line.identity.key(0)));

    // Read every line this write may touch at once: each identity's first occurrences.
    let mut repeats: HashMap<(NaiveDate, LineIdentity), u32> = HashMap::new();
    for line in &order {
        *repeats.entry((line.date, line.identity)).or_default() += 1;
    }
    let mut wanted = Vec::new();
    for ((date, identity), count) in &repeats {
        let count = if replace { 1 } else { *count };
        wanted.extend((0..count).map(|occurrence| (*date, identity.key(occurrence))));
    }
    let mut slots: HashMap<(NaiveDate, i64), Slot> = HashMap::new();
    load_lines(store, tenant, wanted, &mut slots).await?;

    let mut outcome = SalesWrite::default();
    let mut deltas: HashMap<(NaiveDate, i64), Vec<Delta>> = HashMap::new();
    let mut guards: Vec<(NaiveDate, i64)> = Vec::new();
    let mut products: HashMap<(String, String), String> = HashMap::new();
    for line in order {
        let (sku, location) = (line.sku.as_str(), line.location.as_str());
        if let Some(product) = &line.product {
            products
                .entry((sku.to_owned(), location.to_owned()))
                .or_insert_with(|| product.clone());
        }
        let delta = |units: f64, revenue: f64, sku: &str, location: &str| Delta {
            date: line.date,
            sku: sku.to_owned(),
            location: location.to_owned(),
            units,
            revenue,
        };
        let mut occurrence = 0u32;
        loop {
            let key = (line.date, line.identity.key(occurrence));
            if !slots.contains_key(&key) {
                // An earlier batch of this upload holds more repeats than this one: read on.
                load_lines(store, tenant, vec![key], &mut slots).await?;
            }
            let slot = slots
                .get_mut(&key)
                .ok_or_else(|| corrupt("line slot vanished".to_owned()))?;
            let next = StoredLine {
                sku: sku.to_owned(),
                location: location.to_owned(),
                units: line.units,
                revenue: line.revenue,
                upload: upload.to_owned(),
                seen: upload.to_owned(),
            };
            match &slot.current {
                None if dropped.contains(&key) => {
                    // Cancels a line no version stored: there is nothing to change, but the line
                    // must stay absent until this version is applied (a writer of an earlier
                    // version may still be at work).
                    guards.push(key);
                    break;
                }
                None => {
                    outcome.imported += 1;
                    deltas.entry(key).or_default().push(delta(
                        line.units,
                        line.revenue,
                        sku,
                        location,
                    ));
                }
                Some(stored) if stored.seen == upload && !replace => {
                    // An earlier row of this same upload holds this occurrence: another sale.
                    occurrence += 1;
                    continue;
                }
                Some(stored) => {
                    let next_upload = stored.upload.clone();
                    if stored.sku == sku
                        && stored.location == location
                        && stored.units == line.units
                        && stored.revenue == line.revenue
                    {
                        outcome.duplicate += 1;
                    } else {
                        outcome.updated += 1;
                        let entry = deltas.entry(key).or_default();
                        entry.push(delta(
                            -stored.units,
                            -stored.revenue,
                            &stored.sku,
                            &stored.location,
                        ));
                        entry.push(delta(line.units, line.revenue, sku, location));
                    }
                    slot.current = Some(StoredLine {
                        upload: next_upload,
                        ..next
                    });
                    slot.dirty = true;
                    break;
                }
            }
            slot.current = Some(next);
            slot.dirty = true;
            break;
        }
    }

    // Lines in (date, series) order, so that consecutive lines share daily-sales items.
    let mut dirty: Vec<((NaiveDate, i64), &Slot)> = slots
        .iter()
        .filter(|(_, slot)| slot.dirty)
        .map(|(key, slot)| (*key, slot))
        .collect();
    dirty.sort_by(|(left_key, left), (right_key, right)| {
        let series = |slot: &Slot| {
            slot.current
                .as_ref()
                .map(|line| (line.sku.clone(), line.location.clone()))
        };
        (left_key.0, series(left), left_key.1).cmp(&(right_key.0, series(right), right_key.1))
    });

    let mut batch = Batch::new(replace);
    let mut extents: HashMap<(String, String), (NaiveDate, NaiveDate)> = HashMap::new();
    let mut widen = |sku: &str, location: &str, date: NaiveDate| {
        let extent = extents
            .entry((sku.to_owned(), location.to_owned()))
            .or_insert((date, date));
        extent.0 = extent.0.min(date);
        extent.1 = extent.1.max(date);
    };
    for (key, slot) in dirty {
        let Some(line) = &slot.current else { continue };
        let line_deltas = deltas.remove(&key).unwrap_or_default();
        let mut aggregates = Vec::new();
        for delta in &line_deltas {
            aggregates.extend(delta_aggregates(tenant, delta));
            widen(&delta.sku, &delta.location, delta.date);
        }
        if widen_all {
            // An earlier attempt may have written this line and stopped before widening.
            widen(&line.sku, &line.location, key.0);
        }
        if let Some(product) = products.get(&(line.sku.clone(), line.location.clone())) {
            aggregates.push(
                Aggregate::series(tenant, &line.sku, &line.location, 0.0, 0.0)
                    .with_product(product),
            );
        }
        let put = line_put(store, tenant, key, slot, line)?;
        if !batch.fits(&aggregates) {
            batch.flush(store).await?;
        }
        batch.add(put, aggregates);
    }
    for (date, key) in guards {
        let guard = store.check_item(
            lines_pk(tenant, date),
            &line_sk(date, key),
            "attribute_not_exists(PK)",
        )?;
        if !batch.fits(&[]) {
            batch.flush(store).await?;
        }
        batch.add(guard, Vec::new());
    }
    batch.flush(store).await?;
    if let Some(claim) = claim {
        run_order_transactions(store, claim, batch.held.take().unwrap_or_default()).await?;
    }
    widen_extents(store, tenant, extents).await?;
    Ok(outcome)
}

/// What ties the lines of one order version to its order item, which records the version applied
/// (`updated_at`, with its lines) and, while a version's lines take several transactions, the
/// version in progress (`pending`, with `pending_lines`: every line the versions in progress since
/// the last applied one may have written).
///
/// Lines that fit one transaction go with `finish_as_read`. More lines go in several: `start` first,
/// alone, then each transaction with `in_progress`, the last with `finish_in_progress`. A version
/// in progress stops the writers of older versions (their next transaction fails its check), and a
/// writer that stopped part way (a crash, a conflict) leaves the version in progress, so that
/// applying it again writes the lines still missing instead of finding the version applied.
pub(super) struct OrderClaim {
    /// The order item's new state, on the condition that the item is as it was read.
    finish_as_read: aws_sdk_dynamodb::types::TransactWriteItem,
    /// Marks the version in progress, on the condition that the item is as it was read.
    start: aws_sdk_dynamodb::types::TransactWriteItem,
    /// Checks that the version is still in progress.
    in_progress: aws_sdk_dynamodb::types::TransactWriteItem,
    /// The order item's new state, on the condition that the version is still in progress.
    finish_in_progress: aws_sdk_dynamodb::types::TransactWriteItem,
    /// The lines (day, key) that only cancel what earlier versions wrote: where none was stored,
    /// nothing is written, but the line is checked to be still absent.
    dropped: HashSet<(NaiveDate, i64)>,
    /// Whether an earlier attempt may have stopped part way: the sales days of every line are
    /// widened, not only of those that change.
    widen_all: bool,
}

/// Runs the transactions of an order version's lines with its claim (see [`OrderClaim`]).
async fn run_order_transactions(
    store: &DynamoStore,
    claim: OrderClaim,
    mut transactions: Vec<Vec<aws_sdk_dynamodb::types::TransactWriteItem>>,
) -> Result<(), LinesError> {
    let with = |head, items: Vec<_>| {
        let mut all = vec![head];
        all.extend(items);
        all
    };
    if transactions.len() <= 1 {
        // A version without lines still records itself.
        let items = with(claim.finish_as_read, transactions.pop().unwrap_or_default());
        return run_lines_transaction(store, items, true).await;
    }
    run_lines_transaction(store, vec![claim.start], true).await?;
    let last = transactions.pop().unwrap_or_default();
    for items in transactions {
        run_lines_transaction(store, with(claim.in_progress.clone(), items), true).await?;
    }
    run_lines_transaction(store, with(claim.finish_in_progress, last), true).await
}

/// The conditional put of one line: new lines must still be absent, changed ones unchanged since
/// they were read (version).
fn line_put(
    store: &DynamoStore,
    tenant: &TenantId,
    (date, key): (NaiveDate, i64),
    slot: &Slot,
    line: &StoredLine,
) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, StoreError> {
    let item = HashMap::from([
        ("PK".to_owned(), s(lines_pk(tenant, date))),
        ("SK".to_owned(), s(line_sk(date, key))),
        ("sku".to_owned(), s(line.sku.clone())),
        ("location".to_owned(), s(line.location.clone())),
        ("units".to_owned(), n(line.units)),
        ("revenue".to_owned(), n(line.revenue)),
        ("upload".to_owned(), s(line.upload.clone())),
        ("seen".to_owned(), s(line.seen.clone())),
        (
            "v".to_owned(),
            n(slot.version.map_or(1, |version| version + 1)),
        ),
    ]);
    match slot.version {
        None => store.put_item(item, Some("attribute_not_exists(PK)"), Item::new()),
        Some(version) => store.put_item(
            item,
            Some("#v = :v"),
            HashMap::from([(":v".to_owned(), n(version))]),
        ),
    }
}

/// One item of the daily sales that a write adds to.
#[derive(Debug, Clone)]
struct Aggregate {
    pk: String,
    sk: String,
    /// `(units, revenue)` added; revenue for cells, series and the day over all series.
    units: f64,
    revenue: Option<f64>,
    /// Attributes set alongside (what the item describes).
    set: Vec<(&'static str, String)>,
    product: Option<String>,
}

impl Aggregate {
    fn series(tenant: &TenantId, sku: &str, location: &str, units: f64, revenue: f64) -> Self {
        Self {
            pk: tenant_pk(tenant),
            sk: series_sk(sku, location),
            units,
            revenue: Some(revenue),
            set: vec![("sku", sku.to_owned()), ("location", location.to_owned())],
            product: None,
        }
    }

    fn with_product(mut self, product: &str) -> Self {
        self.product = Some(product.to_owned());
        self
    }

    fn id(&self) -> (String, String) {
        (self.pk.clone(), self.sk.clone())
    }

    fn merge(&mut self, other: &Self) {
        self.units += other.units;
        if let (Some(revenue), Some(more)) = (&mut self.revenue, other.revenue) {
            *revenue += more;
        }
        if self.product.is_none() {
            self.product.clone_from(&other.product);
        }
    }

    fn change(&self) -> Change {
        let mut expression = String::from("ADD #units :units");
        let mut change = Change::new(self.pk.clone(), self.sk.clone(), "");
        change = change.value(":units", n(self.units));
        if let Some(revenue) = self.revenue {
            expression.push_str(", #revenue :revenue");
            change = change.value(":revenue", n(revenue));
        }
        let mut sets = Vec::new();
        for (index, (name, value)) in self.set.iter().enumerate() {
            sets.push(format!("#{name} = :set{index}"));
            change = change.value(&format!(":set{index}"), s(value.clone()));
        }
        if let Some(product) = &self.product {
            sets.push("#product = if_not_exists(#product, :product)".to_owned());
            change = change.value(":product", s(product.clone()));
        }
        if !sets.is_empty() {
            expression.push_str(" SET ");
            expression.push_str(&sets.join(", "));
        }
        change.expression = expression;
        change
    }
}

/// The daily-sales items one delta adds to: the cell, the series totals, the day's totals over
/// all series and over the location's.
fn delta_aggregates(tenant: &TenantId, delta: &Delta) -> Vec<Aggregate> {
    let day = delta.date.to_string();
    let totals = totals_pk(tenant, delta.date.year());
    vec![
        Aggregate {
            pk: sku_pk(tenant, &delta.sku),
            sk: cell_sk(&delta.location, delta.date),
            units: delta.units,
            revenue: Some(delta.revenue),
            set: vec![("location", delta.location.clone()), ("day", day.clone())],
            product: None,
        },
        Aggregate::series(
            tenant,
            &delta.sku,
            &delta.location,
            delta.units,
            delta.revenue,
        ),
        Aggregate {
            pk: totals.clone(),
            sk: format!("A#{day}"),
            units: delta.units,
            revenue: Some(delta.revenue),
            set: vec![("day", day.clone())],
            product: None,
        },
        Aggregate {
            pk: totals,
            sk: format!("L#{}{SEP}{day}", delta.location),
            units: delta.units,
            revenue: None,
            set: vec![("day", day)],
            product: None,
        },
    ]
}

/// The transaction being filled: line puts (and checks) and the aggregates they add to.
struct Batch {
    /// Transactions of an order version, held until all are known (each leaves one item for the
    /// order claim); `None`: each transaction runs as soon as it is full.
    held: Option<Vec<Vec<aws_sdk_dynamodb::types::TransactWriteItem>>>,
    puts: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    aggregates: BTreeMap<(String, String), Aggregate>,
}

impl Batch {
    fn new(hold: bool) -> Self {
        Self {
            held: hold.then(Vec::new),
            puts: Vec::new(),
            aggregates: BTreeMap::new(),
        }
    }

    fn size(&self) -> usize {
        usize::from(self.held.is_some()) + self.puts.len() + self.aggregates.len()
    }

    fn fits(&self, aggregates: &[Aggregate]) -> bool {
        let new: HashSet<(String, String)> = aggregates
            .iter()
            .map(Aggregate::id)
            .filter(|id| !self.aggregates.contains_key(id))
            .collect();
        self.size() + 1 + new.len() <= MAX_TRANSACTION_ITEMS
    }

    fn add(&mut self, put: aws_sdk_dynamodb::types::TransactWriteItem, aggregates: Vec<Aggregate>) {
        self.puts.push(put);
        for aggregate in aggregates {
            match self.aggregates.get_mut(&aggregate.id()) {
                Some(existing) => existing.merge(&aggregate),
                None => {
                    self.aggregates.insert(aggregate.id(), aggregate);
                }
            }
        }
    }

    async fn flush(&mut self, store: &DynamoStore) -> Result<(), LinesError> {
        if self.puts.is_empty() {
            return Ok(());
        }
        let mut items = std::mem::take(&mut self.puts);
        for aggregate in std::mem::take(&mut self.aggregates).into_values() {
            items.push(store.update_item(aggregate.change())?);
        }
        match &mut self.held {
            Some(held) => {
                held.push(items);
                Ok(())
            }
            None => run_lines_transaction(store, items, false).await,
        }
    }
}

async fn run_lines_transaction(
    store: &DynamoStore,
    items: Vec<aws_sdk_dynamodb::types::TransactWriteItem>,
    claimed: bool,
) -> Result<(), LinesError> {
    match store.transact(items).await {
        Ok(()) => Ok(()),
        Err(outcome) if claimed && outcome.failed_at(0) => Err(LinesError::ClaimFailed),
        Err(Transaction::Cancelled(_)) => Err(LinesError::Conflict),
        Err(Transaction::Failed(error)) => Err(LinesError::Store(error)),
    }
}

/// Moves the first and last sales days of the series (and of the tenant) out to cover what was
/// written. Each is a conditional update that fails harmlessly when the stored day is wider.
async fn widen_extents(
    store: &DynamoStore,
    tenant: &TenantId,
    extents: HashMap<(String, String), (NaiveDate, NaiveDate)>,
) -> Result<(), StoreError> {
    let Some(first) = extents.values().map(|extent| extent.0).min() else {
        return Ok(());
    };
    let last = extents
        .values()
        .map(|extent| extent.1)
        .max()
        .unwrap_or(first);
    let mut changes = Vec::new();
    let mut widen = |sk: String, first: NaiveDate, last: NaiveDate| {
        for (name, day, operator) in [("first", first, ">"), ("last", last, "<")] {
            changes.push(
                Change::new(tenant_pk(tenant), sk.clone(), format!("SET #{name} = :day"))
                    .when(format!(
                        "attribute_exists(PK) AND (attribute_not_exists(#{name}) OR #{name} {operator} :day)"
                    ))
                    .value(":day", s(day.to_string())),
            );
        }
    };
    widen(TENANT_SK.to_owned(), first, last);
    for ((sku, location), (first, last)) in extents {
        widen(series_sk(&sku, &location), first, last);
    }
    stream::iter(changes)
        .map(|change| store.update(change))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .map(drop)
}

// ----- Reads of daily sales -------------------------------------------------------------------

/// A series as the registry holds it.
#[derive(Debug, Clone)]
struct Series {
    sku: String,
    location: String,
    product: Option<String>,
    units: f64,
    revenue: f64,
    first: Option<NaiveDate>,
    last: Option<NaiveDate>,
    forecast_at: Option<DateTime<Utc>>,
}

/// The tenant's series (of one SKU), ordered by SKU and location.
async fn registry(
    store: &DynamoStore,
    tenant: &TenantId,
    sku: Option<&str>,
) -> Result<Vec<Series>, StoreError> {
    let prefix = match sku {
        Some(sku) => format!("SERIES#{sku}{SEP}"),
        None => "SERIES#".to_owned(),
    };
    let items = store
        .query_all(&Query::prefix(tenant_pk(tenant), prefix), None)
        .await?;
    items
        .iter()
        .map(|item| {
            Ok(Series {
                sku: text(item, "sku")?.to_owned(),
                location: text(item, "location")?.to_owned(),
                product: optional_text(item, "product")?.map(str::to_owned),
                units: optional_number(item, "units")?.unwrap_or(0.0),
                revenue: optional_number(item, "revenue")?.unwrap_or(0.0),
                first: optional_text(item, "first")?.map(date_of).transpose()?,
                last: optional_text(item, "last")?.map(date_of).transpose()?,
                forecast_at: super::optional_time(item, "forecast_at")?,
            })
        })
        .collect()
}

/// Distinct SKUs of `series`, in order.
fn distinct_skus(series: &[Series]) -> Vec<String> {
    let mut skus: Vec<String> = series.iter().map(|series| series.sku.clone()).collect();
    skus.dedup();
    skus
}

/// One day of one series: `(location, date, units, revenue)`.
type Cell = (String, NaiveDate, f64, f64);

/// The cells of one SKU (one location's when given) in `days`, ordered by location and date:
/// one Query of the SKU's partition.
async fn cells(
    store: &DynamoStore,
    tenant: &TenantId,
    sku: &str,
    location: Option<&str>,
    days: DayRange,
) -> Result<Vec<Cell>, StoreError> {
    let (from, to) = day_bounds(days);
    let query = match location {
        Some(location) => Query::between(
            sku_pk(tenant, sku),
            format!("D#{location}{SEP}{from}"),
            format!("D#{location}{SEP}{to}"),
        ),
        None => {
            let query = Query::prefix(sku_pk(tenant, sku), "D#");
            if days == DayRange::default() {
                query
            } else {
                query.filter(
                    "#day BETWEEN :from AND :to".to_owned(),
                    HashMap::from([(":from".to_owned(), s(from)), (":to".to_owned(), s(to))]),
                )
            }
        }
    };
    let mut cells = Vec::new();
    store
        .query_each(&query, |item| {
            cells.push((
                text(&item, "location")?.to_owned(),
                date_of(text(&item, "day")?)?,
                number(&item, "units")?,
                number(&item, "revenue")?,
            ));
            Ok(true)
        })
        .await?;
    Ok(cells)
}

/// Day keys bounding `days` (open ends become the extremes of the key space).
fn day_bounds(days: DayRange) -> (String, String) {
    (
        days.from
            .map_or_else(|| "0000-00-00".to_owned(), |day| day.to_string()),
        days.to
            .map_or_else(|| "9999-99-99".to_owned(), |day| day.to_string()),
    )
}

pub(super) async fn sales(
    store: &DynamoStore,
    tenant: &TenantId,
    query: &SalesQuery,
) -> Result<Vec<SalesDay>, StoreError> {
    if let (Some(from), Some(to)) = (query.days.from, query.days.to)
        && from > to
    {
        return Ok(Vec::new());
    }
    let location = query.location.as_ref().map(Location::as_str);
    // One SKU: a single Query of its partition. All: the registry names the SKUs to read.
    let skus = match &query.sku {
        Some(sku) => vec![sku.as_str().to_owned()],
        None => {
            let series = registry(store, tenant, None).await?;
            distinct_skus(
                &series
                    .into_iter()
                    .filter(|series| location.is_none_or(|location| series.location == location))
                    .collect::<Vec<_>>(),
            )
        }
    };
    let per_sku: Vec<(String, Vec<Cell>)> = stream::iter(skus)
        .map(|sku| async move {
            let cells = cells(store, tenant, &sku, location, query.days).await?;
            Ok::<_, StoreError>((sku, cells))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut result: Vec<SalesDay> = Vec::new();
    for (sku, cells) in per_sku {
        let sku = sku_of(&sku)?;
        let mut series_start = result.len();
        let mut current_location: Option<String> = None;
        for (location, mut date, units, revenue) in cells {
            if current_location.as_deref() != Some(location.as_str()) {
                series_start = result.len();
                current_location = Some(location.clone());
            }
            if query.granularity == Granularity::Week {
                let back = chrono::Days::new(u64::from(date.weekday().num_days_from_monday()));
                date = date.checked_sub_days(back).unwrap_or(date);
                if let Some(last) = result
                    .get_mut(series_start..)
                    .and_then(<[SalesDay]>::last_mut)
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
                location: location_of(&location)?,
                units,
                revenue,
            });
        }
    }
    Ok(result)
}

pub(super) async fn skus(
    store: &DynamoStore,
    tenant: &TenantId,
) -> Result<Vec<SkuSummary>, StoreError> {
    let mut summaries: Vec<SkuSummary> = Vec::new();
    for series in registry(store, tenant, None).await? {
        let (Some(first), Some(last)) = (series.first, series.last) else {
            continue;
        };
        let sku = sku_of(&series.sku)?;
        let location = location_of(&series.location)?;
        match summaries.last_mut() {
            Some(summary) if summary.sku == sku => {
                summary.locations.push(location);
                summary.first_sale = summary.first_sale.min(first);
                summary.last_sale = summary.last_sale.max(last);
                summary.units += series.units;
                summary.revenue += series.revenue;
                if summary.product.is_none() {
                    summary.product = series.product;
                }
            }
            _ => summaries.push(SkuSummary {
                sku,
                product: series.product,
                locations: vec![location],
                first_sale: first,
                last_sale: last,
                units: series.units,
                revenue: series.revenue,
            }),
        }
    }
    Ok(summaries)
}

pub(super) async fn sales_history(
    store: &DynamoStore,
    tenant: &TenantId,
) -> Result<Vec<SeriesHistory>, StoreError> {
    let series = registry(store, tenant, None).await?;
    let Some(last_day) = series.iter().filter_map(|series| series.last).max() else {
        return Ok(Vec::new());
    };
    let per_sku: Vec<(String, Vec<Cell>)> = stream::iter(distinct_skus(&series))
        .map(|sku| async move {
            let cells = cells(store, tenant, &sku, None, DayRange::default()).await?;
            Ok::<_, StoreError>((sku, cells))
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    let mut histories: Vec<SeriesHistory> = Vec::new();
    for (sku, cells) in per_sku {
        let sku = sku_of(&sku)?;
        for (location, date, units, _) in cells {
            let same = histories
                .last()
                .is_some_and(|last| last.sku == sku && last.location.as_str() == location);
            if !same {
                histories.push(SeriesHistory {
                    sku: sku.clone(),
                    location: location_of(&location)?,
                    start: date,
                    units: Vec::new(),
                });
            }
            let history = histories
                .last_mut()
                .ok_or_else(|| corrupt("history vanished".to_owned()))?;
            let offset = usize::try_from((date - history.start).num_days())
                .map_err(|_| corrupt("daily sales out of order".to_owned()))?;
            if history.units.len() <= offset {
                history.units.resize(offset + 1, 0.0);
            }
            history.units[offset] += units;
        }
    }
    for history in &mut histories {
        let length = usize::try_from((last_day - history.start).num_days() + 1)
            .map_err(|_| corrupt("series starts after the last day".to_owned()))?;
        history.units.resize(length, 0.0);
    }
    Ok(histories)
}

/// The part of `days` within the tenant's first and last day of sales (kept on its tenant item);
/// `None` when it has no sales there.
pub(super) fn sales_span(
    tenant_item: &Item,
    days: DayRange,
) -> Result<Option<(NaiveDate, NaiveDate)>, StoreError> {
    let (Some(first), Some(last)) = (
        optional_text(tenant_item, "first")?
            .map(date_of)
            .transpose()?,
        optional_text(tenant_item, "last")?
            .map(date_of)
            .transpose()?,
    ) else {
        return Ok(None);
    };
    let from = days.from.map_or(first, |from| from.max(first));
    let to = days.to.map_or(last, |to| to.min(last));
    Ok((from <= to).then_some((from, to)))
}

pub(super) async fn daily_units(
    store: &DynamoStore,
    tenant: &TenantId,
    location: Option<&Location>,
    days: DayRange,
) -> Result<Vec<(NaiveDate, f64)>, StoreError> {
    let Some((from, to)) = sales_span(&store.tenant_item(tenant).await?, days)? else {
        return Ok(Vec::new());
    };
    let (low, high) = match location {
        Some(location) => (
            format!("L#{}{SEP}{from}", location.as_str()),
            format!("L#{}{SEP}{to}", location.as_str()),
        ),
        None => (format!("A#{from}"), format!("A#{to}")),
    };
    let mut totals = Vec::new();
    for year in from.year()..=to.year() {
        let query = Query::between(totals_pk(tenant, year), low.clone(), high.clone());
        store
            .query_each(&query, |item| {
                totals.push((date_of(text(&item, "day")?)?, number(&item, "units")?));
                Ok(true)
            })
            .await?;
    }
    Ok(totals)
}

// ----- Forecasts ------------------------------------------------------------------------------

use crate::store::forecast_codec::{Meta, decode_points, encode_points};

pub(super) async fn put_forecasts(
    store: &DynamoStore,
    tenant: &TenantId,
    forecasts: Vec<SeriesForecast>,
) -> Result<(), StoreError> {
    // Only series with sales get forecasts (as in the SQLite adapter).
    let known: HashSet<(String, String)> = registry(store, tenant, None)
        .await?
        .into_iter()
        .map(|series| (series.sku, series.location))
        .collect();
    let mut transactions = Vec::new();
    for forecast in forecasts {
        let (sku, location) = (forecast.sku.as_str(), forecast.location.as_str());
        if !known.contains(&(sku.to_owned(), location.to_owned())) {
            continue;
        }
        let meta = Meta {
            model: forecast.model.clone(),
            demand_class: forecast.demand_class.clone(),
            generated_at: forecast.generated_at,
            backtest: forecast.backtest,
            candidates: forecast.candidates.clone(),
        };
        let start = forecast
            .points
            .first()
            .map_or_else(String::new, |point| point.date.to_string());
        let item = HashMap::from([
            ("PK".to_owned(), s(sku_pk(tenant, sku))),
            ("SK".to_owned(), s(format!("F#{location}"))),
            ("sku".to_owned(), s(sku)),
            ("location".to_owned(), s(location)),
            ("start".to_owned(), s(start)),
            (
                "meta".to_owned(),
                s(serde_json::to_string(&meta).map_err(StoreError::unavailable)?),
            ),
            ("points".to_owned(), b(encode_points(&forecast.points))),
        ]);
        // The forecast and its time in the registry (read by `oldest_forecast`) change together.
        let stamp = Change::new(
            tenant_pk(tenant),
            series_sk(sku, location),
            "SET #forecast_at = :at",
        )
        .when("attribute_exists(PK)")
        .value(":at", s(time_text(forecast.generated_at)));
        transactions.push(vec![
            store.put_item(item, None, Item::new())?,
            store.update_item(stamp)?,
        ]);
    }
    stream::iter(transactions)
        .map(|items| async move {
            match store.transact(items).await {
                // The series was erased meanwhile: nothing to forecast.
                Ok(()) | Err(Transaction::Cancelled(_)) => Ok(()),
                Err(Transaction::Failed(error)) => Err(error),
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .map(drop)
}

pub(super) fn forecast_of(item: &Item, days: Option<usize>) -> Result<SeriesForecast, StoreError> {
    let meta: Meta = serde_json::from_str(text(item, "meta")?).map_err(StoreError::unavailable)?;
    let start = text(item, "start")?;
    let points = if start.is_empty() {
        Vec::new()
    } else {
        decode_points(
            date_of(start)?,
            &optional_bytes(item, "points")?.unwrap_or_default(),
            days,
        )
    };
    Ok(SeriesForecast {
        sku: sku_of(text(item, "sku")?)?,
        location: location_of(text(item, "location")?)?,
        model: meta.model,
        demand_class: meta.demand_class,
        generated_at: meta.generated_at,
        points,
        backtest: meta.backtest,
        candidates: meta.candidates,
    })
}

pub(super) async fn forecasts(
    store: &DynamoStore,
    tenant: &TenantId,
    sku: Option<&Sku>,
    location: Option<&Location>,
    days: Option<usize>,
) -> Result<Vec<SeriesForecast>, StoreError> {
    let skus = match sku {
        Some(sku) => vec![sku.as_str().to_owned()],
        None => distinct_skus(
            &registry(store, tenant, None)
                .await?
                .into_iter()
                .filter(|series| series.forecast_at.is_some())
                .filter(|series| {
                    location.is_none_or(|location| series.location == location.as_str())
                })
                .collect::<Vec<_>>(),
        ),
    };
    let per_sku: Vec<Vec<SeriesForecast>> = stream::iter(skus)
        .map(|sku| async move {
            let items = match location {
                Some(location) => store
                    .get(sku_pk(tenant, &sku), &format!("F#{}", location.as_str()))
                    .await?
                    .into_iter()
                    .collect(),
                None => {
                    store
                        .query_all(&Query::prefix(sku_pk(tenant, &sku), "F#"), None)
                        .await?
                }
            };
            items
                .iter()
                .map(|item| forecast_of(item, days))
                .collect::<Result<Vec<_>, _>>()
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(per_sku.into_iter().flatten().collect())
}

pub(super) async fn oldest_forecast(
    store: &DynamoStore,
    tenant: &TenantId,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    Ok(registry(store, tenant, None)
        .await?
        .into_iter()
        .filter_map(|series| series.forecast_at)
        .min())
}

// ----- Stock and catalogue --------------------------------------------------------------------

pub(super) async fn put_stock(
    store: &DynamoStore,
    tenant: &TenantId,
    mut levels: Vec<StockLevel>,
) -> Result<u64, StoreError> {
    store.tenant_item(tenant).await?;
    // One write per SKU and location (the newest; of equal times the last): two conditional
    // writes of one item at once would race each other.
    levels.reverse();
    levels.sort_by(|left, right| {
        (&left.sku, &left.location, right.updated_at).cmp(&(
            &right.sku,
            &right.location,
            left.updated_at,
        ))
    });
    levels.dedup_by(|later, kept| later.sku == kept.sku && later.location == kept.location);
    // A conditional put each (a batch write cannot be conditional). Times are fixed-width text in
    // UTC, so text order is time order.
    let stored: Vec<bool> = stream::iter(levels)
        .map(|level| {
            let updated_at = s(time_text(level.updated_at));
            let item = HashMap::from([
                ("PK".to_owned(), s(tenant_pk(tenant))),
                (
                    "SK".to_owned(),
                    s(stock_sk(level.sku.as_str(), level.location.as_str())),
                ),
                ("sku".to_owned(), s(level.sku.as_str())),
                ("location".to_owned(), s(level.location.as_str())),
                ("on_hand".to_owned(), n(level.on_hand)),
                ("lead_time_days".to_owned(), n(level.lead_time_days)),
                ("service_level".to_owned(), n(level.service_level)),
                ("updated_at".to_owned(), updated_at.clone()),
            ]);
            store.put_if(
                item,
                "attribute_not_exists(PK) OR #updated_at <= :updated_at",
                HashMap::from([(":updated_at".to_owned(), updated_at)]),
            )
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(stored.into_iter().filter(|stored| *stored).count() as u64)
}

pub(super) async fn stock(
    store: &DynamoStore,
    tenant: &TenantId,
    sku: Option<&Sku>,
) -> Result<Vec<StockLevel>, StoreError> {
    let prefix = match sku {
        Some(sku) => format!("STOCK#{}{SEP}", sku.as_str()),
        None => "STOCK#".to_owned(),
    };
    let items = store
        .query_all(&Query::prefix(tenant_pk(tenant), prefix), None)
        .await?;
    items.iter().map(stock_level_of).collect()
}

/// A stock level from its `STOCK#` item.
pub(super) fn stock_level_of(item: &Item) -> Result<StockLevel, StoreError> {
    Ok(StockLevel {
        sku: sku_of(text(item, "sku")?)?,
        location: location_of(text(item, "location")?)?,
        on_hand: number(item, "on_hand")?,
        lead_time_days: number(item, "lead_time_days")?,
        service_level: number(item, "service_level")?,
        updated_at: parse_time(text(item, "updated_at")?)?,
    })
}

/// The sort key of a stock level.
pub(super) fn stock_sk(sku: &str, location: &str) -> String {
    format!("STOCK#{sku}{SEP}{location}")
}

/// A product's variants as kept on its item: `(variant id, inventory item id)`.
type ProductVariants = Vec<(String, Option<String>)>;

fn item_pointer_sk(inventory_item: &str, variant: &str) -> String {
    format!("ITEM#{inventory_item}{SEP}{variant}")
}

pub(super) async fn put_product(
    store: &DynamoStore,
    tenant: &TenantId,
    product_id: &str,
    variants: Vec<CatalogueVariant>,
) -> Result<(), StoreError> {
    store.tenant_item(tenant).await?;
    let product_sk = format!("PRODUCT#{product_id}");
    // Forget the product's previous variants (unless another product has claimed one since).
    if let Some(previous) = store.get(tenant_pk(tenant), &product_sk).await? {
        let old: ProductVariants =
            serde_json::from_str(text(&previous, "variants")?).map_err(StoreError::unavailable)?;
        for (variant, inventory_item) in old {
            if let Some(inventory_item) = inventory_item {
                store
                    .delete_if(
                        tenant_pk(tenant),
                        item_pointer_sk(&inventory_item, &variant),
                        "#product = :product",
                        HashMap::from([(":product".to_owned(), s(product_id))]),
                    )
                    .await?;
            }
        }
    }
    let pointers = variants
        .iter()
        .filter_map(|variant| {
            let inventory_item = variant.inventory_item_id.as_deref()?;
            Some(HashMap::from([
                ("PK".to_owned(), s(tenant_pk(tenant))),
                (
                    "SK".to_owned(),
                    s(item_pointer_sk(inventory_item, &variant.variant_id)),
                ),
                ("sku".to_owned(), s(variant.sku.as_str())),
                ("product".to_owned(), s(product_id)),
            ]))
        })
        .collect();
    store.put_all(pointers).await?;
    if variants.is_empty() {
        store
            .delete_all(vec![(tenant_pk(tenant), product_sk)])
            .await
    } else {
        let listed: ProductVariants = variants
            .iter()
            .map(|variant| {
                (
                    variant.variant_id.clone(),
                    variant.inventory_item_id.clone(),
                )
            })
            .collect();
        store
            .put_all(vec![HashMap::from([
                ("PK".to_owned(), s(tenant_pk(tenant))),
                ("SK".to_owned(), s(product_sk)),
                (
                    "variants".to_owned(),
                    s(serde_json::to_string(&listed).map_err(StoreError::unavailable)?),
                ),
            ])])
            .await
    }
}

pub(super) async fn sku_of_inventory_item(
    store: &DynamoStore,
    tenant: &TenantId,
    inventory_item_id: &str,
) -> Result<Option<Sku>, StoreError> {
    let query = Query::prefix(tenant_pk(tenant), format!("ITEM#{inventory_item_id}{SEP}")).page(1);
    let items = store.query_all(&query, Some(1)).await?;
    items
        .first()
        .map(|item| sku_of(text(item, "sku")?))
        .transpose()
}

// ----- Shopify orders -------------------------------------------------------------------------

/// Attempts at applying one order version while other writers change its lines.
const ORDER_ATTEMPTS: u32 = 4;

pub(super) async fn apply_order(
    store: &DynamoStore,
    tenant: &TenantId,
    order: &OrderVersion,
) -> Result<OrderApplied, StoreError> {
    store.tenant_item(tenant).await?;
    let pk = orders_pk(tenant, &order.order_id);
    for attempt in 0..ORDER_ATTEMPTS {
        if attempt > 0 {
            super::backoff(attempt).await;
        }
        let stored = store.get(pk.clone(), &order.order_id).await?;
        let state = OrderState::of(stored.as_ref())?;
        // A version at least as new was applied, or a newer one is in progress (its writer, or a
        // retry of its delivery, finishes it).
        if state
            .applied
            .is_some_and(|applied| applied >= order.updated_at)
            || state
                .pending
                .is_some_and(|pending| pending > order.updated_at)
        {
            return Ok(OrderApplied::Stale);
        }
        let mut previous = state.lines.clone();
        previous.extend(state.pending_lines.iter().cloned());
        let dropped_lines = order
            .dropped_lines(distinct_refs(previous))
            .map_err(StoreError::unavailable)?;
        let claim = order_claim(store, &pk, order, &state, &dropped_lines)?;
        let mut lines = order.lines.clone();
        lines.extend(dropped_lines);
        match write_lines(store, tenant, ORDER_LINES, &lines, Some(claim)).await {
            Ok(written) => {
                return Ok(OrderApplied::Applied {
                    imported: written.imported,
                    updated: written.updated,
                });
            }
            // Another writer got there first: read the order again.
            Err(LinesError::ClaimFailed | LinesError::Conflict) => {}
            Err(LinesError::Store(error)) => return Err(error),
        }
    }
    Err(StoreError::Conflict {
        entity: "order",
        id: order.order_id.clone(),
    })
}

/// An order item as read: the version applied and the version in progress, each with its lines,
/// and the condition that the item is still so.
#[derive(Debug, Default)]
struct OrderState {
    applied: Option<DateTime<Utc>>,
    lines: Vec<OrderLineRef>,
    pending: Option<DateTime<Utc>>,
    pending_lines: Vec<OrderLineRef>,
    /// `(condition, values)` holding while the item is unchanged.
    unchanged: (String, Item),
}

impl OrderState {
    fn of(item: Option<&Item>) -> Result<Self, StoreError> {
        let Some(item) = item else {
            return Ok(Self {
                unchanged: ("attribute_not_exists(PK)".to_owned(), Item::new()),
                ..Self::default()
            });
        };
        let refs = |name: &str| -> Result<Vec<OrderLineRef>, StoreError> {
            optional_text(item, name)?
                .map(|json| serde_json::from_str(json).map_err(StoreError::unavailable))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        let mut conditions = Vec::new();
        let mut values = Item::new();
        for (name, placeholder) in [
            ("updated_at", ":read_applied"),
            ("pending", ":read_pending"),
        ] {
            match optional_text(item, name)? {
                Some(value) => {
                    conditions.push(format!("#{name} = {placeholder}"));
                    values.insert(placeholder.to_owned(), s(value));
                }
                None => conditions.push(format!("attribute_not_exists(#{name})")),
            }
        }
        Ok(Self {
            applied: super::optional_time(item, "updated_at")?,
            lines: refs("lines")?,
            pending: super::optional_time(item, "pending")?,
            pending_lines: refs("pending_lines")?,
            unchanged: (conditions.join(" AND "), values),
        })
    }
}

/// `refs` without repeats of a line (same key and day), in order.
fn distinct_refs(refs: Vec<OrderLineRef>) -> Vec<OrderLineRef> {
    let mut seen = HashSet::new();
    refs.into_iter()
        .filter(|line| seen.insert((line.key, line.date)))
        .collect()
}

/// The claim items of applying `order` over the order item as read (`state`); `dropped` are the
/// lines cancelling what earlier versions wrote.
fn order_claim(
    store: &DynamoStore,
    pk: &str,
    order: &OrderVersion,
    state: &OrderState,
    dropped: &[SalesLine],
) -> Result<OrderClaim, StoreError> {
    let version = time_text(order.updated_at);
    let refs = order.line_refs();
    let json = |refs: &[OrderLineRef]| serde_json::to_string(refs).map_err(StoreError::unavailable);
    let applied = HashMap::from([
        ("PK".to_owned(), s(pk)),
        ("SK".to_owned(), s(order.order_id.clone())),
        ("updated_at".to_owned(), s(version.clone())),
        ("lines".to_owned(), s(json(&refs)?)),
    ]);
    let (unchanged, read) = &state.unchanged;
    let in_progress = HashMap::from([(":version".to_owned(), s(version.clone()))]);
    // Every line this version or one in progress before it may write, for a later version to
    // cancel should this one stop part way.
    let mut pending_lines = state.pending_lines.clone();
    pending_lines.extend(refs);
    let mut start = Change::new(
        pk.to_owned(),
        order.order_id.clone(),
        "SET #pending = :version, #pending_lines = :pending_lines",
    )
    .when(unchanged.clone())
    .value(":version", s(version.clone()))
    .value(":pending_lines", s(json(&distinct_refs(pending_lines))?));
    start.values.extend(read.clone());
    Ok(OrderClaim {
        finish_as_read: store.put_item(applied.clone(), Some(unchanged), read.clone())?,
        start: store.update_item(start)?,
        in_progress: store.check_item_with(
            pk.to_owned(),
            &order.order_id,
            "#pending = :version",
            in_progress.clone(),
        )?,
        finish_in_progress: store.put_item(applied, Some("#pending = :version"), in_progress)?,
        dropped: dropped
            .iter()
            .map(|line| (line.date, line.identity.key(0)))
            .collect(),
        widen_all: state.pending.is_some(),
    })
}

// ----- Erasure --------------------------------------------------------------------------------

/// Deletes every record of a tenant: its SKU partitions, sales lines, daily totals, orders, and
/// the tenant partition (API keys, sessions, sign-in links, uploads, stock, catalogue, registry with
/// its products-table figures, overview, settings), the tenant item last.
pub(super) async fn erase_tenant(store: &DynamoStore, tenant: &TenantId) -> Result<(), StoreError> {
    let item = store.get(tenant_pk(tenant), TENANT_SK).await?;
    let series = registry(store, tenant, None).await?;
    let mut partitions: Vec<String> = distinct_skus(&series)
        .iter()
        .map(|sku| sku_pk(tenant, sku))
        .collect();
    let first = series.iter().filter_map(|series| series.first).min();
    let last = series.iter().filter_map(|series| series.last).max();
    let tenant_first = item
        .as_ref()
        .map(|item| optional_text(item, "first"))
        .transpose()?
        .flatten()
        .map(date_of)
        .transpose()?;
    let tenant_last = item
        .as_ref()
        .map(|item| optional_text(item, "last"))
        .transpose()?
        .flatten()
        .map(date_of)
        .transpose()?;
    let first = first.into_iter().chain(tenant_first).min();
    let last = last.into_iter().chain(tenant_last).max();
    if let (Some(first), Some(last)) = (first, last) {
        let mut month = NaiveDate::from_ymd_opt(first.year(), first.month(), 1).unwrap_or(first);
        while month <= last {
            partitions.push(lines_pk(tenant, month));
            month = month
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(chrono::NaiveDate::MAX);
        }
        for year in first.year()..=last.year() {
            partitions.push(totals_pk(tenant, year));
        }
    }
    for bucket in 0..ORDER_BUCKETS {
        partitions.push(format!("T#{tenant}#O#{bucket}"));
    }
    stream::iter(partitions)
        .map(|pk| store.delete_partition(pk))
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<u64>>()
        .await?;
    // The tenant partition: API key, session and sign-in link lookups first (none may outlive its
    // tenant's data), then everything but the tenant item, then the tenant item.
    let items = store
        .query_all(&Query::partition(tenant_pk(tenant)).project("PK, SK"), None)
        .await?;
    let mut keys = Vec::new();
    let mut own = Vec::new();
    for item in &items {
        let sk = text(item, "SK")?;
        if let Some(hash) = sk.strip_prefix("APIKEY#") {
            keys.push((format!("KEY#{hash}"), "KEY".to_owned()));
        }
        keys.extend(super::ui::lookup_of_copy(sk));
        if sk != TENANT_SK {
            own.push((tenant_pk(tenant), sk.to_owned()));
        }
    }
    store.delete_all(keys).await?;
    store.delete_all(own).await?;
    store
        .delete_all(vec![(tenant_pk(tenant), TENANT_SK.to_owned())])
        .await
}
