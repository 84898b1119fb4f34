//! `DynamoStore`: the `Store` adapter for Amazon DynamoDB, on one table (single-table design).
//!
//! Every item has a string partition key `PK` and sort key `SK`; two global secondary indexes
//! (`GSI1PK`/`GSI1SK`, `GSI2PK`/`GSI2SK`, all attributes projected) serve the few cross-partition
//! listings. A tenant's records live in partitions whose key starts with `T#{tenant}`, so one
//! tenant's data never shares a partition with another's, and a large tenant spreads over one
//! partition per SKU (daily sales and forecasts), per month (sales lines), per year (daily totals)
//! and per order bucket. Lookups that happen before a tenant is known (API key hash, browser session
//! and sign-in link secret hashes, shop domain, webhook id) have partitions of their own.
//! infra/README.md lists every access pattern with its key condition and index.
//!
//! Writes that must agree go through `TransactWriteItems` (a batch of sales lines with the daily
//! sales they change, an order version with its lines); bulk writes of independent items go through
//! `BatchWriteItem`, whose unprocessed items are sent again with backoff. Throttled requests are
//! retried by the SDK's standard retry mode and, for transactions cancelled by a conflict or
//! throttling, here. Every `Query` follows `LastEvaluatedKey` to the end. SDK errors stop here:
//! callers see [`StoreError`] only.
//! Numbers are DynamoDB decimals: `ADD` sums daily sales exactly, where SQLite's pages add f64s.

mod deliveries;
mod sales;
mod shops;
mod sync;
mod ui;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, DeleteRequest,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType,
    Put, PutRequest, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TransactWriteItem,
    Update, WriteRequest,
};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{StreamExt, TryStreamExt, stream};
use rand::Rng;

use super::{ImportReport, SalesWrite, Store, StoreError, UploadId};
use crate::domain::{
    BrowserSession, DayTotal, ProductPage, ProductQuery, SeriesStats, TenantOverview,
    TenantSettings,
};
use crate::domain::{
    CatalogueVariant, ComplianceEntry, DataRequest, DayRange, DeliveryFilter, DeliveryLease,
    DeliveryOutcome, DeliveryReceipt, DeliveryRecord, DeliveryRetention, EraseOutcome,
    IdentityScheme, Location, NewDelivery, NewInstall, NewTenant, OrderApplied, OrderVersion,
    OrdersApplied, SalesBatch, SalesDay, SalesQuery, SealedCredentials, SeriesForecast,
    SeriesHistory, ShopInstall, Sku, SkuSummary, StockLevel, SyncStatus, Tenant, TenantId,
    Timezone, UninstallOutcome,
};
use crate::shopify::shop::ShopDomain;

/// The table's first global secondary index (tenant listing, deliveries by status).
pub const GSI1: &str = "GSI1";
/// The second global secondary index (deliveries by shop).
pub const GSI2: &str = "GSI2";
/// The attribute DynamoDB's TTL deletes expired items by (epoch seconds).
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// Separates the parts of a composite sort key. SKUs and locations never hold control characters,
/// so it sorts before every character they can hold: `sku ␁ location` orders as the pair does.
const SEP: char = '\u{1}';
/// Most items in one `TransactWriteItems`.
const MAX_TRANSACTION_ITEMS: usize = 100;
/// Most requests in one `BatchWriteItem`.
const MAX_BATCH_WRITE: usize = 25;
/// Most keys in one `BatchGetItem`.
const MAX_BATCH_GET: usize = 100;
/// Requests of one call kept in flight at once.
const CONCURRENCY: usize = 8;
/// Attempts at a transaction cancelled by a conflict or throttling, or at unprocessed items.
const MAX_ATTEMPTS: u32 = 8;
/// Attempts the SDK makes at one request (throttling and transient errors are retried with
/// exponential backoff and jitter by its standard retry mode).
const SDK_MAX_ATTEMPTS: u32 = 8;

/// One DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// The DynamoDB store: one table, reached through an SDK client.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Numbers stored deliveries (shared by clones: one process, one tag).
    sequencer: std::sync::Arc<deliveries::Sequencer>,
    /// How long final deliveries are kept (their TTL); forever unless set.
    delivery_retention: DeliveryRetention,
}

impl DynamoStore {
    /// A store on `table` through `client` (the table must exist: see [`DynamoStore::create_table`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            sequencer: std::sync::Arc::default(),
            delivery_retention: DeliveryRetention::FOREVER,
        }
    }

    /// The store keeping final deliveries for `retention`: a delivery reaching a final status
    /// gets a TTL (`expires_at`: its receipt plus the retention) on its items, which a replay
    /// removes again. Deliveries are kept forever unless this is set.
    #[must_use]
    pub fn with_delivery_retention(mut self, retention: DeliveryRetention) -> Self {
        self.delivery_retention = retention;
        self
    }

    /// A store on `table` with the SDK configuration `config` (region, credentials, endpoint),
    /// retrying throttled requests up to 8 times with backoff.
    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        let client_config = aws_sdk_dynamodb::config::Builder::from(config)
            .retry_config(
                aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                    .with_max_attempts(SDK_MAX_ATTEMPTS),
            )
            .build();
        Self::new(Client::from_conf(client_config), table)
    }

    /// A store on `table` configured by the standard AWS chain (`AWS_REGION`, credentials,
    /// `AWS_ENDPOINT_URL`, profiles).
    pub async fn from_env(table: impl Into<String>) -> Self {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        Self::from_config(&config, table)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table with its indexes and TTL (on-demand capacity) and waits until it is
    /// active; `Ok(false)` when it existed already. For development against an emulator: in AWS
    /// the infrastructure template creates it.
    ///
    /// # Errors
    /// When DynamoDB refuses or cannot be reached.
    pub async fn create_table(&self) -> Result<bool, StoreError> {
        let string = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(StoreError::unavailable)
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(StoreError::unavailable)
        };
        let index = |name: &str, hash: &str, range: &str| -> Result<_, StoreError> {
            GlobalSecondaryIndex::builder()
                .index_name(name)
                .key_schema(key(hash, KeyType::Hash)?)
                .key_schema(key(range, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(StoreError::unavailable)
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(string("PK")?)
            .attribute_definitions(string("SK")?)
            .attribute_definitions(string("GSI1PK")?)
            .attribute_definitions(string("GSI1SK")?)
            .attribute_definitions(string("GSI2PK")?)
            .attribute_definitions(string("GSI2SK")?)
            .key_schema(key("PK", KeyType::Hash)?)
            .key_schema(key("SK", KeyType::Range)?)
            .global_secondary_indexes(index(GSI1, "GSI1PK", "GSI1SK")?)
            .global_secondary_indexes(index(GSI2, "GSI2PK", "GSI2SK")?)
            .send()
            .await;
        let fresh = match created {
            Ok(_) => true,
            Err(error) if error.code() == Some("ResourceInUseException") => false,
            Err(error) => return Err(self.sdk("CreateTable", error)),
        };
        for attempt in 0.. {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|error| self.sdk("DescribeTable", error))?;
            let status = described.table().and_then(|table| table.table_status());
            if status == Some(&TableStatus::Active) {
                break;
            }
            if attempt > 600 {
                return Err(StoreError::Unavailable(
                    format!("table {} did not become active", self.table).into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if fresh {
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .enabled(true)
                        .attribute_name(TTL_ATTRIBUTE)
                        .build()
                        .map_err(StoreError::unavailable)?,
                )
                .send()
                .await
                .map_err(|error| self.sdk("UpdateTimeToLive", error))?;
        }
        Ok(fresh)
    }

    /// Translates an SDK error, naming the operation and, when the table is missing, the fix.
    fn sdk<E, R>(&self, operation: &str, error: SdkError<E, R>) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        if error.code() == Some("ResourceNotFoundException") {
            return StoreError::Unavailable(
                format!(
                    "DynamoDB table {} does not exist (create it with `ordernimbus migrate`, or \
                     deploy infra/): {operation} failed",
                    self.table
                )
                .into(),
            );
        }
        StoreError::Unavailable(
            format!(
                "DynamoDB {operation} on table {}: {}",
                self.table,
                DisplayErrorContext(&error)
            )
            .into(),
        )
    }

    // ----- Requests -------------------------------------------------------------------------

    /// Reads one item, strongly consistent.
    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("PK", s(pk))
            .key("SK", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| self.sdk("GetItem", error))?;
        Ok(output.item)
    }

    /// Runs a query to its end (or until `visit` returns `false`), page by page.
    async fn query_each(
        &self,
        query: &Query,
        mut visit: impl FnMut(Item) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let mut start: Option<Item> = None;
        loop {
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&query.condition)
                .set_expression_attribute_names(names(&[
                    &query.condition,
                    query.filter.as_deref().unwrap_or_default(),
                    query.projection.as_deref().unwrap_or_default(),
                ]))
                .set_expression_attribute_values(Some(query.values.clone()))
                .scan_index_forward(query.forward)
                .set_exclusive_start_key(start.take());
            if let Some(index) = query.index {
                request = request.index_name(index);
            } else {
                request = request.consistent_read(true);
            }
            if let Some(filter) = &query.filter {
                request = request.filter_expression(filter);
            }
            if let Some(projection) = &query.projection {
                request = request.projection_expression(projection);
            }
            if let Some(page) = query.page {
                request = request.limit(page);
            }
            let output = request
                .send()
                .await
                .map_err(|error| self.sdk("Query", error))?;
            for item in output.items.unwrap_or_default() {
                if !visit(item)? {
                    return Ok(());
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(()),
            }
        }
    }

    /// Every item a query matches, at most `limit`.
    async fn query_all(
        &self,
        query: &Query,
        limit: Option<usize>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        self.query_each(query, |item| {
            items.push(item);
            Ok(limit.is_none_or(|limit| items.len() < limit))
        })
        .await?;
        Ok(items)
    }

    /// Puts one item; `Ok(false)` when `condition` failed.
    async fn put_if(&self, item: Item, condition: &str, values: Item) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(names(&[condition]))
            .set_expression_attribute_values(non_empty(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(error) => Err(self.sdk("PutItem", error)),
        }
    }

    /// Puts one item, replacing any item with its key.
    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(|error| self.sdk("PutItem", error))
    }

    /// Updates one item; `Ok(None)` when the condition failed, else its new attributes. Sent again
    /// with backoff while a transaction on the item is in progress (`TransactionConflict`, which
    /// the SDK does not retry).
    async fn update(&self, update: Change) -> Result<Option<Item>, StoreError> {
        let mut attempt = 0;
        loop {
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(update.key.clone()))
                .update_expression(&update.expression)
                .set_condition_expression(update.condition.clone())
                .set_expression_attribute_names(names(&[
                    &update.expression,
                    update.condition.as_deref().unwrap_or_default(),
                ]))
                .set_expression_attribute_values(non_empty(update.values.clone()))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(output) => return Ok(Some(output.attributes.unwrap_or_default())),
                Err(error) if error.code() == Some("ConditionalCheckFailedException") => {
                    return Ok(None);
                }
                Err(error)
                    if error.code() == Some("TransactionConflictException")
                        && attempt + 1 < MAX_ATTEMPTS =>
                {
                    attempt += 1;
                    backoff(attempt).await;
                }
                Err(error) => return Err(self.sdk("UpdateItem", error)),
            }
        }
    }

    /// Deletes one item if it exists and returns it as it was; `Ok(None)` when there was none. Of
    /// two concurrent takes of one item, exactly one gets it (one-time use).
    async fn take(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(pk))
            .key("SK", s(sk))
            .condition_expression("attribute_exists(PK)")
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.attributes.filter(|item| !item.is_empty())),
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(None),
            Err(error) => Err(self.sdk("DeleteItem", error)),
        }
    }

    /// Deletes one item; `Ok(false)` when `condition` failed.
    async fn delete_if(
        &self,
        pk: String,
        sk: String,
        condition: &str,
        values: Item,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("PK", s(pk))
            .key("SK", s(sk))
            .condition_expression(condition)
            .set_expression_attribute_names(names(&[condition]))
            .set_expression_attribute_values(non_empty(values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(error) => Err(self.sdk("DeleteItem", error)),
        }
    }

    /// Writes `requests` with `BatchWriteItem`, 25 at a time, several requests in flight; sends
    /// unprocessed items again with backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        let chunks: Vec<Vec<WriteRequest>> = requests
            .chunks(MAX_BATCH_WRITE)
            .map(<[WriteRequest]>::to_vec)
            .collect();
        stream::iter(chunks)
            .map(|chunk| self.batch_write_chunk(chunk))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }

    async fn batch_write_chunk(&self, mut chunk: Vec<WriteRequest>) -> Result<(), StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            if chunk.is_empty() {
                return Ok(());
            }
            if attempt > 0 {
                backoff(attempt).await;
            }
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, std::mem::take(&mut chunk))
                .send()
                .await
                .map_err(|error| self.sdk("BatchWriteItem", error))?;
            chunk = output
                .unprocessed_items
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .unwrap_or_default();
        }
        if chunk.is_empty() {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                format!(
                    "DynamoDB BatchWriteItem on table {}: {} items still unprocessed after {MAX_ATTEMPTS} attempts",
                    self.table,
                    chunk.len()
                )
                .into(),
            ))
        }
    }

    /// Puts `items` (replacing any stored under the same keys).
    async fn put_all(&self, items: Vec<Item>) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
                    .map_err(StoreError::unavailable)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await
    }

    /// Deletes the items under `keys` (`PK`, `SK`).
    async fn delete_all(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        let requests = keys
            .into_iter()
            .map(|(pk, sk)| {
                DeleteRequest::builder()
                    .set_key(Some(key(pk, sk)))
                    .build()
                    .map(|delete| WriteRequest::builder().delete_request(delete).build())
                    .map_err(StoreError::unavailable)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await
    }

    /// Deletes every item of a partition.
    async fn delete_partition(&self, pk: String) -> Result<u64, StoreError> {
        let query = Query::partition(pk).project("PK, SK");
        let items = self.query_all(&query, None).await?;
        let keys = items
            .iter()
            .map(|item| Ok((text(item, "PK")?.to_owned(), text(item, "SK")?.to_owned())))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let count = keys.len() as u64;
        self.delete_all(keys).await?;
        Ok(count)
    }

    /// Reads the items under `keys` (strongly consistent), in no particular order; missing ones
    /// are left out.
    async fn batch_get(&self, keys: Vec<(String, String)>) -> Result<Vec<Item>, StoreError> {
        let chunks: Vec<Vec<(String, String)>> = keys
            .chunks(MAX_BATCH_GET)
            .map(<[(String, String)]>::to_vec)
            .collect();
        let pages: Vec<Vec<Item>> = stream::iter(chunks)
            .map(|chunk| self.batch_get_chunk(chunk))
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(pages.into_iter().flatten().collect())
    }

    async fn batch_get_chunk(&self, chunk: Vec<(String, String)>) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(chunk.len());
        let mut wanted: Vec<Item> = chunk.into_iter().map(|(pk, sk)| key(pk, sk)).collect();
        for attempt in 0..MAX_ATTEMPTS {
            if wanted.is_empty() {
                return Ok(found);
            }
            if attempt > 0 {
                backoff(attempt).await;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut wanted)))
                .consistent_read(true)
                .build()
                .map_err(StoreError::unavailable)?;
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|error| self.sdk("BatchGetItem", error))?;
            if let Some(mut responses) = output.responses
                && let Some(items) = responses.remove(&self.table)
            {
                found.extend(items);
            }
            wanted = output
                .unprocessed_keys
                .and_then(|mut unprocessed| unprocessed.remove(&self.table))
                .map(|keys| keys.keys)
                .unwrap_or_default();
        }
        if wanted.is_empty() {
            Ok(found)
        } else {
            Err(StoreError::Unavailable(
                format!(
                    "DynamoDB BatchGetItem on table {}: keys still unprocessed after {MAX_ATTEMPTS} attempts",
                    self.table
                )
                .into(),
            ))
        }
    }

    /// Runs one transaction, again with backoff while it is cancelled by a conflicting
    /// transaction or throttling. `Err(Cancelled)` carries each item's cancellation code when a
    /// condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), Transaction> {
        for attempt in 0..MAX_ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(()),
                Err(error) => error,
            };
            let retryable = error.code() == Some("TransactionInProgressException")
                || error.code() == Some("ThrottlingException");
            if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
                error.as_service_error()
            {
                let codes: Vec<String> = cancelled
                    .cancellation_reasons()
                    .iter()
                    .map(|reason| reason.code().unwrap_or("None").to_owned())
                    .collect();
                if codes.iter().any(|code| code == "ConditionalCheckFailed") {
                    return Err(Transaction::Cancelled(codes));
                }
                let transient = codes.iter().all(|code| {
                    matches!(
                        code.as_str(),
                        "None"
                            | "TransactionConflict"
                            | "ThrottlingError"
                            | "ProvisionedThroughputExceeded"
                    )
                });
                if transient {
                    continue;
                }
                return Err(Transaction::Failed(self.sdk("TransactWriteItems", error)));
            }
            if !retryable {
                return Err(Transaction::Failed(self.sdk("TransactWriteItems", error)));
            }
        }
        Err(Transaction::Failed(StoreError::Unavailable(
            format!(
                "DynamoDB TransactWriteItems on table {}: still conflicting after {MAX_ATTEMPTS} attempts",
                self.table
            )
            .into(),
        )))
    }

    // ----- Transaction items ----------------------------------------------------------------

    fn put_item(
        &self,
        item: Item,
        condition: Option<&str>,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_names(condition.and_then(|condition| names(&[condition])))
            .set_expression_attribute_values(non_empty(values))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn update_item(&self, change: Change) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(change.key))
            .update_expression(&change.expression)
            .set_condition_expression(change.condition.clone())
            .set_expression_attribute_names(names(&[
                &change.expression,
                change.condition.as_deref().unwrap_or_default(),
            ]))
            .set_expression_attribute_values(non_empty(change.values))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    fn check_item(
        &self,
        pk: String,
        sk: &str,
        condition: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        self.check_item_with(pk, sk, condition, Item::new())
    }

    /// A condition check whose condition refers to `values`.
    fn check_item_with(
        &self,
        pk: String,
        sk: &str,
        condition: &str,
        values: Item,
    ) -> Result<TransactWriteItem, StoreError> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk.to_owned())))
            .condition_expression(condition)
            .set_expression_attribute_names(names(&[condition]))
            .set_expression_attribute_values(non_empty(values))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    fn delete_item(&self, pk: String, sk: String) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    // ----- Tenants --------------------------------------------------------------------------

    /// The tenant's item, or `NotFound`.
    async fn tenant_item(&self, tenant: &TenantId) -> Result<Item, StoreError> {
        self.get(tenant_pk(tenant), TENANT_SK)
            .await?
            .ok_or_else(|| not_found("tenant", tenant.as_str()))
    }

    /// The item of a new tenant (listed through `GSI1`, in one of eight shards).
    fn new_tenant_item(tenant: &Tenant) -> Item {
        let created = time_text(tenant.created_at);
        let shard = shard_of(tenant.id.as_str(), TENANT_SHARDS);
        HashMap::from([
            ("PK".to_owned(), s(tenant_pk(&tenant.id))),
            ("SK".to_owned(), s(TENANT_SK)),
            ("tenant".to_owned(), s(tenant.id.as_str())),
            ("name".to_owned(), s(tenant.name.clone())),
            ("timezone".to_owned(), s(tenant.timezone.name())),
            ("identity_scheme".to_owned(), s(tenant.identity.as_str())),
            ("created_at".to_owned(), s(created.clone())),
            ("GSI1PK".to_owned(), s(format!("TENANTS#{shard}"))),
            ("GSI1SK".to_owned(), s(format!("{created}#{}", tenant.id))),
        ])
    }

    /// The two items of an API key: the lookup by hash and the tenant's own copy (for erasure).
    fn api_key_items(
        &self,
        tenant: &TenantId,
        api_key_hash: [u8; 32],
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let hash = hex::encode(api_key_hash);
        let now = time_text(Utc::now());
        let lookup = HashMap::from([
            ("PK".to_owned(), s(format!("KEY#{hash}"))),
            ("SK".to_owned(), s("KEY")),
            ("tenant".to_owned(), s(tenant.as_str())),
            ("created_at".to_owned(), s(now.clone())),
        ]);
        let copy = HashMap::from([
            ("PK".to_owned(), s(tenant_pk(tenant))),
            ("SK".to_owned(), s(format!("APIKEY#{hash}"))),
            ("created_at".to_owned(), s(now)),
        ]);
        Ok(vec![
            self.put_item(lookup, Some("attribute_not_exists(PK)"), Item::new())?,
            self.put_item(copy, None, Item::new())?,
        ])
    }
}

/// How a transaction ended when it did not commit.
#[derive(Debug)]
enum Transaction {
    /// A condition failed; the cancellation code of each item, in order.
    Cancelled(Vec<String>),
    /// Anything else.
    Failed(StoreError),
}

impl Transaction {
    /// Whether the condition on item `index` failed.
    fn failed_at(&self, index: usize) -> bool {
        matches!(self, Self::Cancelled(codes) if codes.get(index).is_some_and(|code| code == "ConditionalCheckFailed"))
    }

    /// As a store error: a failed condition is `conflict`.
    fn into_store_error(self, conflict: impl FnOnce() -> StoreError) -> StoreError {
        match self {
            Self::Cancelled(_) => conflict(),
            Self::Failed(error) => error,
        }
    }
}

/// A query: key condition, optional filter and projection, direction and page size.
#[derive(Debug, Clone)]
pub(crate) struct Query {
    index: Option<&'static str>,
    condition: String,
    values: Item,
    filter: Option<String>,
    projection: Option<String>,
    forward: bool,
    page: Option<i32>,
}

impl Query {
    /// Every item of the partition `pk` of the table.
    fn partition(pk: impl Into<String>) -> Self {
        Self {
            index: None,
            condition: "PK = :pk".to_owned(),
            values: HashMap::from([(":pk".to_owned(), s(pk))]),
            filter: None,
            projection: None,
            forward: true,
            page: None,
        }
    }

    /// The items of partition `pk` whose sort key starts with `prefix`.
    fn prefix(pk: impl Into<String>, prefix: impl Into<String>) -> Self {
        let mut query = Self::partition(pk);
        query.condition = "PK = :pk AND begins_with(SK, :prefix)".to_owned();
        query.values.insert(":prefix".to_owned(), s(prefix));
        query
    }

    /// The items of partition `pk` whose sort key is between `low` and `high` (inclusive).
    fn between(pk: impl Into<String>, low: impl Into<String>, high: impl Into<String>) -> Self {
        let mut query = Self::partition(pk);
        query.condition = "PK = :pk AND SK BETWEEN :low AND :high".to_owned();
        query.values.insert(":low".to_owned(), s(low));
        query.values.insert(":high".to_owned(), s(high));
        query
    }

    /// The items of an index partition, optionally with a condition on the index sort key
    /// (`GSI1SK > :after`, written with `#sk` for the sort key and `:sk` for `sort_value`).
    fn index(
        index: &'static str,
        pk: impl Into<String>,
        sort_condition: Option<(&str, String)>,
    ) -> Self {
        let (hash, range) = if index == GSI1 {
            ("GSI1PK", "GSI1SK")
        } else {
            ("GSI2PK", "GSI2SK")
        };
        let mut values = HashMap::from([(":pk".to_owned(), s(pk))]);
        let mut condition = format!("{hash} = :pk");
        if let Some((operator, value)) = sort_condition {
            condition.push_str(&format!(" AND {range} {operator} :sk"));
            values.insert(":sk".to_owned(), s(value));
        }
        Self {
            index: Some(index),
            condition,
            values,
            filter: None,
            projection: None,
            forward: true,
            page: None,
        }
    }

    fn project(mut self, projection: &str) -> Self {
        self.projection = Some(projection.to_owned());
        self
    }

    fn backward(mut self) -> Self {
        self.forward = false;
        self
    }

    fn page(mut self, size: usize) -> Self {
        self.page = Some(i32::try_from(size.max(1)).unwrap_or(i32::MAX));
        self
    }

    fn filter(mut self, filter: String, values: Item) -> Self {
        if !filter.is_empty() {
            self.filter = Some(filter);
            self.values.extend(values);
        }
        self
    }
}

/// One `UpdateItem`: key, update expression, optional condition and values. Attribute names are
/// written `#name` in expressions (DynamoDB reserves hundreds of words).
#[derive(Debug, Clone)]
pub(crate) struct Change {
    key: Item,
    expression: String,
    condition: Option<String>,
    values: Item,
}

impl Change {
    fn new(pk: String, sk: impl Into<String>, expression: impl Into<String>) -> Self {
        Self {
            key: key(pk, sk.into()),
            expression: expression.into(),
            condition: None,
            values: Item::new(),
        }
    }

    fn when(mut self, condition: impl Into<String>) -> Self {
        self.condition = Some(condition.into());
        self
    }

    fn value(mut self, name: &str, value: AttributeValue) -> Self {
        self.values.insert(name.to_owned(), value);
        self
    }
}

// ----- Keys and attributes ----------------------------------------------------------------------

const TENANT_SK: &str = "TENANT";
/// Shards of the tenant listing in `GSI1`.
const TENANT_SHARDS: u8 = 8;

fn tenant_pk(tenant: &TenantId) -> String {
    format!("T#{tenant}")
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("PK".to_owned(), s(pk)), ("SK".to_owned(), s(sk))])
}

/// A stable shard in `0..shards` for `value` (first byte of its SHA-256).
fn shard_of(value: &str, shards: u8) -> u8 {
    use sha2::Digest;
    sha2::Sha256::digest(value.as_bytes())[0] % shards
}

/// Expression attribute names for every `#name` in `expressions` (`#name` → `name`).
fn names(expressions: &[&str]) -> Option<HashMap<String, String>> {
    let mut names = HashMap::new();
    for expression in expressions {
        let mut rest = *expression;
        while let Some(start) = rest.find('#') {
            let tail = &rest[start + 1..];
            let end = tail
                .find(|character: char| !(character.is_ascii_alphanumeric() || character == '_'))
                .unwrap_or(tail.len());
            if end > 0 {
                names.insert(format!("#{}", &tail[..end]), tail[..end].to_owned());
            }
            rest = &tail[end..];
        }
    }
    (!names.is_empty()).then_some(names)
}

fn non_empty(values: Item) -> Option<Item> {
    (!values.is_empty()).then_some(values)
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn b(bytes: impl Into<Vec<u8>>) -> AttributeValue {
    AttributeValue::B(Blob::new(bytes))
}

/// Times as fixed-width RFC 3339 in UTC with nanoseconds: text order is time order.
fn time_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn corrupt(message: String) -> StoreError {
    StoreError::Unavailable(message.into())
}

fn not_found(entity: &'static str, id: &str) -> StoreError {
    StoreError::NotFound {
        entity,
        id: id.to_owned(),
    }
}

fn text<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    optional_text(item, name)?.ok_or_else(|| corrupt(format!("item lacks attribute {name}")))
}

fn optional_text<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(value)) => Ok(Some(value)),
        Some(_) => Err(corrupt(format!("attribute {name} is not a string"))),
    }
}

fn number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    optional_number(item, name)?.ok_or_else(|| corrupt(format!("item lacks attribute {name}")))
}

fn optional_number<T: std::str::FromStr>(item: &Item, name: &str) -> Result<Option<T>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(value)) => value
            .parse()
            .map(Some)
            .map_err(|_| corrupt(format!("attribute {name} is not a number: {value}"))),
        Some(_) => Err(corrupt(format!("attribute {name} is not a number"))),
    }
}

fn optional_bytes(item: &Item, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::B(value)) => Ok(Some(value.as_ref().to_vec())),
        Some(_) => Err(corrupt(format!("attribute {name} is not binary"))),
    }
}

fn parse_time(value: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(value)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| corrupt(format!("stored time {value:?} is not RFC 3339")))
}

fn optional_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    optional_text(item, name)?.map(parse_time).transpose()
}

fn tenant_from_item(item: &Item) -> Result<Tenant, StoreError> {
    Ok(Tenant {
        id: TenantId::parse(text(item, "tenant")?).map_err(StoreError::unavailable)?,
        name: text(item, "name")?.to_owned(),
        timezone: Timezone::parse(text(item, "timezone")?).map_err(StoreError::unavailable)?,
        // Tenants stored before schemes were recorded hash with SHA-256.
        identity: optional_text(item, "identity_scheme")?
            .map_or(Ok(IdentityScheme::Sha256), IdentityScheme::parse)
            .map_err(StoreError::unavailable)?,
        created_at: parse_time(text(item, "created_at")?)?,
    })
}

/// Waits before retry number `attempt` (1-based): exponential from 25 ms, capped at 2 s, with
/// jitter in the upper half so that writers throttled together do not retry together.
async fn backoff(attempt: u32) {
    let ceiling = Duration::from_millis(25)
        .saturating_mul(2_u32.saturating_pow(attempt))
        .min(Duration::from_secs(2));
    let half = ceiling / 2;
    let jitter = rand::rng().random_range(0..=u64::try_from(half.as_millis()).unwrap_or(1000));
    tokio::time::sleep(half + Duration::from_millis(jitter)).await;
}

#[async_trait]
impl Store for DynamoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.get("PING".to_owned(), "PING").await.map(drop)
    }

    async fn create_tenant(
        &self,
        id: &TenantId,
        tenant: &NewTenant,
        api_key_hash: [u8; 32],
    ) -> Result<Tenant, StoreError> {
        let created = tenant.created(id);
        let mut items = vec![self.put_item(
            Self::new_tenant_item(&created),
            Some("attribute_not_exists(PK)"),
            Item::new(),
        )?];
        items.extend(self.api_key_items(id, api_key_hash)?);
        self.transact(items).await.map_err(|outcome| {
            let entity = if outcome.failed_at(0) {
                "tenant"
            } else {
                "api key"
            };
            outcome.into_store_error(|| StoreError::Conflict {
                entity,
                id: id.to_string(),
            })
        })?;
        Ok(created)
    }

    async fn add_api_key(
        &self,
        tenant: &TenantId,
        api_key_hash: [u8; 32],
    ) -> Result<(), StoreError> {
        let mut items =
            vec![self.check_item(tenant_pk(tenant), TENANT_SK, "attribute_exists(PK)")?];
        items.extend(self.api_key_items(tenant, api_key_hash)?);
        self.transact(items).await.map_err(|outcome| {
            if outcome.failed_at(0) {
                not_found("tenant", tenant.as_str())
            } else {
                outcome.into_store_error(|| StoreError::Conflict {
                    entity: "api key",
                    id: tenant.to_string(),
                })
            }
        })
    }

    async fn tenant(&self, tenant: &TenantId) -> Result<Tenant, StoreError> {
        tenant_from_item(&self.tenant_item(tenant).await?)
    }

    async fn tenants(&self) -> Result<Vec<Tenant>, StoreError> {
        let shards: Vec<Vec<Item>> = stream::iter(0..TENANT_SHARDS)
            .map(|shard| {
                let query = Query::index(GSI1, format!("TENANTS#{shard}"), None);
                async move { self.query_all(&query, None).await }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await?;
        let mut items: Vec<Item> = shards.into_iter().flatten().collect();
        items.sort_by(|left, right| {
            let order = |item: &Item| {
                optional_text(item, "GSI1SK")
                    .ok()
                    .flatten()
                    .map(str::to_owned)
            };
            order(left).cmp(&order(right))
        });
        items.iter().map(tenant_from_item).collect()
    }

    async fn tenant_by_api_key(
        &self,
        api_key_hash: [u8; 32],
    ) -> Result<Option<Tenant>, StoreError> {
        let Some(lookup) = self
            .get(format!("KEY#{}", hex::encode(api_key_hash)), "KEY")
            .await?
        else {
            return Ok(None);
        };
        let tenant = TenantId::parse(text(&lookup, "tenant")?).map_err(StoreError::unavailable)?;
        match self.get(tenant_pk(&tenant), TENANT_SK).await? {
            Some(item) => tenant_from_item(&item).map(Some),
            // A key whose tenant was erased (erasure deletes keys first, but may be cut short).
            None => Ok(None),
        }
    }

    async fn begin_upload(
        &self,
        tenant: &TenantId,
        report: &ImportReport,
    ) -> Result<(), StoreError> {
        sales::begin_upload(self, tenant, report).await
    }

    async fn write_sales(
        &self,
        tenant: &TenantId,
        upload: &UploadId,
        batch: SalesBatch,
    ) -> Result<SalesWrite, StoreError> {
        sales::write_sales(self, tenant, upload, &batch.to_lines()).await
    }

    async fn finish_upload(
        &self,
        tenant: &TenantId,
        report: &ImportReport,
    ) -> Result<(), StoreError> {
        sales::finish_upload(self, tenant, report).await
    }

    async fn upload(
        &self,
        tenant: &TenantId,
        upload: &UploadId,
    ) -> Result<ImportReport, StoreError> {
        sales::upload(self, tenant, upload).await
    }

    async fn uploads(
        &self,
        tenant: &TenantId,
        limit: u32,
    ) -> Result<Vec<ImportReport>, StoreError> {
        sales::uploads(self, tenant, limit).await
    }

    async fn sales(
        &self,
        tenant: &TenantId,
        query: &SalesQuery,
    ) -> Result<Vec<SalesDay>, StoreError> {
        sales::sales(self, tenant, query).await
    }

    async fn skus(&self, tenant: &TenantId) -> Result<Vec<SkuSummary>, StoreError> {
        sales::skus(self, tenant).await
    }

    async fn sales_history(&self, tenant: &TenantId) -> Result<Vec<SeriesHistory>, StoreError> {
        sales::sales_history(self, tenant).await
    }

    async fn put_forecasts(
        &self,
        tenant: &TenantId,
        forecasts: Vec<SeriesForecast>,
    ) -> Result<(), StoreError> {
        sales::put_forecasts(self, tenant, forecasts).await
    }

    async fn forecasts(
        &self,
        tenant: &TenantId,
        sku: Option<&Sku>,
        location: Option<&Location>,
        days: Option<usize>,
    ) -> Result<Vec<SeriesForecast>, StoreError> {
        sales::forecasts(self, tenant, sku, location, days).await
    }

    async fn oldest_forecast(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        sales::oldest_forecast(self, tenant).await
    }

    async fn daily_units(
        &self,
        tenant: &TenantId,
        location: Option<&Location>,
        days: DayRange,
    ) -> Result<Vec<(chrono::NaiveDate, f64)>, StoreError> {
        sales::daily_units(self, tenant, location, days).await
    }

    async fn put_stock(
        &self,
        tenant: &TenantId,
        levels: Vec<StockLevel>,
    ) -> Result<u64, StoreError> {
        sales::put_stock(self, tenant, levels).await
    }

    async fn stock(
        &self,
        tenant: &TenantId,
        sku: Option<&Sku>,
    ) -> Result<Vec<StockLevel>, StoreError> {
        sales::stock(self, tenant, sku).await
    }

    async fn install_shop(
        &self,
        install: &NewInstall,
        new_tenant: &TenantId,
    ) -> Result<ShopInstall, StoreError> {
        shops::install_shop(self, install, new_tenant).await
    }

    async fn shop_install(&self, shop: &ShopDomain) -> Result<Option<ShopInstall>, StoreError> {
        shops::shop_install(self, shop).await
    }

    async fn shop_of_tenant(&self, tenant: &TenantId) -> Result<Option<ShopInstall>, StoreError> {
        shops::shop_of_tenant(self, tenant).await
    }

    async fn replace_credentials(
        &self,
        shop: &ShopDomain,
        previous_access_token: &[u8],
        credentials: Option<SealedCredentials>,
    ) -> Result<(), StoreError> {
        shops::replace_credentials(self, shop, previous_access_token, credentials).await
    }

    async fn uninstall_shop(
        &self,
        shop: &ShopDomain,
        triggered_at: DateTime<Utc>,
    ) -> Result<UninstallOutcome, StoreError> {
        shops::uninstall_shop(self, shop, triggered_at).await
    }

    async fn set_shop_scopes(
        &self,
        shop: &ShopDomain,
        scopes: &[String],
    ) -> Result<bool, StoreError> {
        shops::set_shop_scopes(self, shop, scopes).await
    }

    async fn erase_shop(&self, shop: &ShopDomain) -> Result<EraseOutcome, StoreError> {
        shops::erase_shop(self, shop).await
    }

    async fn record_compliance(&self, entry: &ComplianceEntry) -> Result<bool, StoreError> {
        shops::record_compliance(self, entry).await
    }

    async fn compliance_log(&self, shop: &ShopDomain) -> Result<Vec<ComplianceEntry>, StoreError> {
        shops::compliance_log(self, shop).await
    }

    async fn put_data_request(&self, request: &DataRequest) -> Result<(), StoreError> {
        shops::put_data_request(self, request).await
    }

    async fn data_requests(&self, shop: &ShopDomain) -> Result<Vec<DataRequest>, StoreError> {
        shops::data_requests(self, shop).await
    }

    async fn redact_customer(
        &self,
        shop: &ShopDomain,
        customer_id: &str,
    ) -> Result<u64, StoreError> {
        shops::redact_customer(self, shop, customer_id).await
    }

    async fn put_delivery(&self, delivery: &NewDelivery) -> Result<DeliveryReceipt, StoreError> {
        deliveries::put_delivery(self, delivery).await
    }

    async fn pending_deliveries(
        &self,
        limit: u32,
        with_bodies: bool,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        deliveries::pending(self, limit, with_bodies).await
    }

    async fn claim_deliveries(
        &self,
        lease: &DeliveryLease,
        now: DateTime<Utc>,
        limit: u32,
        with_bodies: bool,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        deliveries::claim(self, lease, now, limit, with_bodies).await
    }

    async fn record_claimed_deliveries(
        &self,
        owner: &str,
        outcomes: Vec<DeliveryOutcome>,
    ) -> Result<u64, StoreError> {
        deliveries::record_deliveries(self, outcomes, Some(owner)).await
    }

    async fn record_deliveries(&self, outcomes: Vec<DeliveryOutcome>) -> Result<u64, StoreError> {
        deliveries::record_deliveries(self, outcomes, None).await
    }

    async fn deliveries(&self, filter: &DeliveryFilter) -> Result<Vec<DeliveryRecord>, StoreError> {
        deliveries::list(self, filter).await
    }

    async fn delivery(&self, webhook_id: &str) -> Result<Option<DeliveryRecord>, StoreError> {
        deliveries::one(self, webhook_id).await
    }

    async fn replace_delivery_body(
        &self,
        webhook_id: &str,
        body: &[u8],
    ) -> Result<bool, StoreError> {
        deliveries::replace_body(self, webhook_id, body).await
    }

    async fn purge_deliveries(
        &self,
        _before: DateTime<Utc>,
        _limit: u32,
    ) -> Result<u64, StoreError> {
        // DynamoDB's TTL deletes final deliveries (see `with_delivery_retention`).
        Ok(0)
    }

    async fn apply_order(
        &self,
        tenant: &TenantId,
        order: &OrderVersion,
    ) -> Result<OrderApplied, StoreError> {
        sales::apply_order(self, tenant, order).await
    }

    async fn apply_orders(
        &self,
        tenant: &TenantId,
        orders: Vec<OrderVersion>,
    ) -> Result<OrdersApplied, StoreError> {
        sync::apply_orders(self, tenant, orders).await
    }

    async fn sync_status(&self, tenant: &TenantId) -> Result<Option<SyncStatus>, StoreError> {
        sync::sync_status(self, tenant).await
    }

    async fn put_sync_status(
        &self,
        tenant: &TenantId,
        status: &SyncStatus,
    ) -> Result<(), StoreError> {
        sync::put_sync_status(self, tenant, status).await
    }

    async fn signal_bulk_finished(
        &self,
        tenant: &TenantId,
        operation_id: &str,
    ) -> Result<(), StoreError> {
        sync::signal_bulk_finished(self, tenant, operation_id).await
    }

    async fn bulk_finished(
        &self,
        tenant: &TenantId,
        operation_id: &str,
    ) -> Result<bool, StoreError> {
        sync::bulk_finished(self, tenant, operation_id).await
    }

    async fn put_product(
        &self,
        tenant: &TenantId,
        product_id: &str,
        variants: Vec<CatalogueVariant>,
    ) -> Result<(), StoreError> {
        sales::put_product(self, tenant, product_id, variants).await
    }

    async fn sku_of_inventory_item(
        &self,
        tenant: &TenantId,
        inventory_item_id: &str,
    ) -> Result<Option<Sku>, StoreError> {
        sales::sku_of_inventory_item(self, tenant, inventory_item_id).await
    }

    async fn forecasts_of(
        &self,
        tenant: &TenantId,
        series: &[(Sku, Location)],
        days: Option<usize>,
    ) -> Result<Vec<SeriesForecast>, StoreError> {
        ui::forecasts_of(self, tenant, series, days).await
    }

    async fn stock_of(
        &self,
        tenant: &TenantId,
        series: &[(Sku, Location)],
    ) -> Result<Vec<StockLevel>, StoreError> {
        ui::stock_of(self, tenant, series).await
    }

    async fn daily_totals(
        &self,
        tenant: &TenantId,
        days: DayRange,
    ) -> Result<Vec<DayTotal>, StoreError> {
        ui::daily_totals(self, tenant, days).await
    }

    async fn put_overview(
        &self,
        tenant: &TenantId,
        overview: &TenantOverview,
    ) -> Result<(), StoreError> {
        ui::put_overview(self, tenant, overview).await
    }

    async fn overview(&self, tenant: &TenantId) -> Result<Option<TenantOverview>, StoreError> {
        ui::overview(self, tenant).await
    }

    async fn put_series_stats(
        &self,
        tenant: &TenantId,
        stats: Vec<SeriesStats>,
    ) -> Result<(), StoreError> {
        ui::put_series_stats(self, tenant, stats).await
    }

    async fn products(
        &self,
        tenant: &TenantId,
        query: &ProductQuery,
    ) -> Result<ProductPage, StoreError> {
        ui::products(self, tenant, query).await
    }

    async fn settings(&self, tenant: &TenantId) -> Result<TenantSettings, StoreError> {
        ui::settings(self, tenant).await
    }

    async fn put_settings(
        &self,
        tenant: &TenantId,
        settings: &TenantSettings,
    ) -> Result<(), StoreError> {
        ui::put_settings(self, tenant, settings).await
    }

    async fn create_session(
        &self,
        tenant: &TenantId,
        secret_hash: [u8; 32],
        csrf_token: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        ui::create_session(self, tenant, secret_hash, csrf_token, expires_at).await
    }

    async fn session(
        &self,
        secret_hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<BrowserSession>, StoreError> {
        ui::session(self, secret_hash, now).await
    }

    async fn delete_session(&self, secret_hash: [u8; 32]) -> Result<(), StoreError> {
        ui::delete_session(self, secret_hash).await
    }

    async fn create_sign_in_link(
        &self,
        tenant: &TenantId,
        secret_hash: [u8; 32],
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        ui::create_sign_in_link(self, tenant, secret_hash, expires_at).await
    }

    async fn consume_sign_in_link(
        &self,
        secret_hash: [u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<TenantId>, StoreError> {
        ui::consume_sign_in_link(self, secret_hash, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_stored_before_identity_schemes_hash_with_sha256_and_new_ones_keep_theirs() {
        let tenant = crate::domain::NewTenant::parse("Shop", "UTC")
            .unwrap()
            .created(&TenantId::generate());
        assert_eq!(tenant.identity, IdentityScheme::Xxh3);
        let mut item = DynamoStore::new_tenant_item(&tenant);
        assert_eq!(tenant_from_item(&item).unwrap(), tenant);
        item.remove("identity_scheme");
        assert_eq!(
            tenant_from_item(&item).unwrap().identity,
            IdentityScheme::Sha256
        );
        item.insert("identity_scheme".to_owned(), s("md5"));
        assert!(tenant_from_item(&item).is_err());
    }

    #[test]
    fn expression_names_are_collected_from_every_expression() {
        let names = names(&["SET #units = :u, #a_b = :x", "attribute_exists(#units)"]).unwrap();
        assert_eq!(names.len(), 2);
        assert_eq!(names["#units"], "units");
        assert_eq!(names["#a_b"], "a_b");
        assert!(super::names(&["PK = :pk"]).is_none());
    }

    #[test]
    fn composite_sort_keys_order_as_their_parts() {
        let sort_key = |sku: &str, location: &str| format!("{sku}{SEP}{location}");
        assert!(sort_key("A", "z") < sort_key("A-1", "a"));
        assert!(sort_key("A", "North") < sort_key("A", "North 2"));
    }

    #[test]
    fn times_sort_as_text() {
        let early = DateTime::parse_from_rfc3339("2024-03-01T10:00:00.5Z").unwrap();
        let late = DateTime::parse_from_rfc3339("2024-03-01T10:00:01Z").unwrap();
        assert!(time_text(early.with_timezone(&Utc)) < time_text(late.with_timezone(&Utc)));
    }
}
