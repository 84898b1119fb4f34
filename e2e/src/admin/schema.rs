//! An honest subset of the GraphQL Admin API schema: the types, names and shapes Shopify documents at
//! <https://shopify.dev/docs/api/admin-graphql>, backed by a shop's [`ShopData`].

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{
    ComplexObject, Context, EmptySubscription, Enum, Error, ErrorExtensions, ID, InputObject,
    InputValueError, InputValueResult, Object, Result, Scalar, ScalarType, Schema, SimpleObject,
    Value,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::seed::{
    LineItemRow, LocationRow, OrderRow, ProductRow, RefundLineRow, RefundRow, RestockType,
    ShopData, VariantRow, decimal,
};
use crate::bulk::{
    self, BulkOperationErrorCode, BulkOperationStatus, BulkOperationType,
    BulkOperationUserErrorCode, BulkOperationView,
};
use crate::config::ShopSeed;
use crate::state::{Shared, WebhookSubscriptionRecord};

/// The executable Admin schema.
pub type AdminSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Builds the schema.
pub fn build() -> AdminSchema {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription).finish()
}

/// What one request's resolvers may see: the shop, its data and the caller's scopes.
pub(crate) struct RequestContext {
    /// The shop's seed.
    pub(crate) seed: ShopSeed,
    /// The shop's data.
    pub(crate) data: Arc<ShopData>,
    /// Scopes granted to the access token.
    pub(crate) scopes: Vec<String>,
    /// Webhook subscriptions at the start of the request.
    pub(crate) subscriptions: Vec<WebhookSubscriptionRecord>,
    /// Simulated time.
    pub(crate) now: DateTime<Utc>,
    pub(crate) shared: Arc<Shared>,
    /// The API version serving the request (after fall-forward).
    pub(crate) api_version: String,
    /// Set when a bulk operation runs the query: connections are not limited to 250 items.
    pub(crate) bulk: Option<BulkPaging>,
}

/// How a bulk operation pages through its top-level connection; nested connections return everything.
pub(crate) struct BulkPaging {
    /// Items per page of the top-level connection.
    pub(crate) page_size: usize,
    /// Cursor of the last item already written.
    pub(crate) after: Option<String>,
    /// Set by the top-level connection: whether more follows, and the cursor of its last item.
    pub(crate) outcome: PageOutcome,
}

/// Where a bulk page's top-level connection stopped: whether more follows, and its last cursor.
pub(crate) type PageOutcome = Arc<std::sync::Mutex<Option<(bool, Option<String>)>>>;

/// Whether `version` is at least `2026-01` (`unstable` counts as the newest).
pub(crate) fn from_2026_01(version: &str) -> bool {
    version == "unstable" || version >= "2026-01"
}

macro_rules! string_scalar {
    ($rust:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $rust(pub String);

        #[Scalar(name = $name)]
        impl ScalarType for $rust {
            fn parse(value: Value) -> InputValueResult<Self> {
                match value {
                    Value::String(text) => Ok(Self(text)),
                    other => Err(InputValueError::expected_type(other)),
                }
            }

            fn to_value(&self) -> Value {
                Value::String(self.0.clone())
            }
        }
    };
}

string_scalar!(
    DateTimeScalar,
    "DateTime",
    "An ISO-8601 UTC time such as `2019-09-07T15:50:00Z`."
);
string_scalar!(
    Decimal,
    "Decimal",
    "A decimal number serialised as a string in its shortest form."
);
string_scalar!(
    Money,
    "Money",
    "A monetary value serialised as a decimal string."
);
string_scalar!(Url, "URL", "An RFC 3986 URL.");
string_scalar!(
    UnsignedInt64,
    "UnsignedInt64",
    "An unsigned 64-bit integer serialised as a string."
);
string_scalar!(
    CurrencyCode,
    "CurrencyCode",
    "ISO 4217 currency code (an enum in Shopify's schema; a string scalar here)."
);

fn time(at: DateTime<Utc>) -> DateTimeScalar {
    DateTimeScalar(at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

fn gid(kind: &str, id: u64) -> ID {
    ID(format!("gid://shopify/{kind}/{id}"))
}

fn parse_gid(id: &ID, kind: &str) -> Option<u64> {
    id.0.strip_prefix(&format!("gid://shopify/{kind}/"))?
        .parse()
        .ok()
}

fn request<'a>(ctx: &Context<'a>) -> Result<&'a RequestContext> {
    ctx.data::<RequestContext>()
}

/// Refuses with Shopify's `ACCESS_DENIED` unless `scope` (or its `write_` form) was granted.
fn require_scope(ctx: &Context<'_>, field: &str, scope: &str) -> Result<()> {
    let scopes = &request(ctx)?.scopes;
    let write = scope.replacen("read_", "write_", 1);
    if scopes
        .iter()
        .any(|granted| granted == scope || *granted == write)
    {
        return Ok(());
    }
    Err(Error::new(format!(
        "Access denied for {field} field. Required access: `{scope}` access scope."
    ))
    .extend_with(|_, extensions| {
        extensions.set("code", "ACCESS_DENIED");
        extensions.set(
            "documentation",
            "https://shopify.dev/api/usage/access-scopes",
        );
    }))
}

/// The page size and cursor a connection serves: the arguments, checked as Shopify does (`first` required,
/// at most 250), or under a bulk operation the bulk page for the top-level connection and everything for
/// nested ones.
fn window(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    top: bool,
) -> Result<(usize, Option<String>)> {
    if let Some(bulk) = &request(ctx)?.bulk {
        return Ok(if top {
            (bulk.page_size, bulk.after.clone())
        } else {
            (usize::MAX, None)
        });
    }
    let Some(first) = first else {
        return Err(Error::new("you must provide one of first or last"));
    };
    let first =
        usize::try_from(first).map_err(|_| Error::new("first must be a non-negative integer"))?;
    if first > 250 {
        return Err(Error::new(
            "The 'first' argument must be between 0 and 250.",
        ));
    }
    Ok((first, after))
}

/// Tells a running bulk operation where its top-level connection stopped.
fn record_page(ctx: &Context<'_>, top: bool, has_next: bool, end_cursor: Option<String>) {
    if let (true, Ok(Some(bulk))) = (top, request(ctx).map(|request| request.bulk.as_ref())) {
        *bulk
            .outcome
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((has_next, end_cursor));
    }
}

/// Pages `items` like a Relay connection (see [`window`]); `top` marks a field of `QueryRoot`.
fn paginate<T: async_graphql::OutputType>(
    ctx: &Context<'_>,
    items: Vec<T>,
    first: Option<i32>,
    after: Option<String>,
    top: bool,
) -> Result<Connection<String, T>> {
    let (first, after) = window(ctx, first, after, top)?;
    let start = match after {
        Some(cursor) => {
            decode_cursor(&cursor)
                .ok_or_else(|| Error::new("Invalid cursor for current pagination."))?
                + 1
        }
        None => 0,
    };
    let total = items.len();
    let end = start.saturating_add(first).min(total);
    let mut connection = Connection::new(start > 0, end < total);
    for (index, item) in items
        .into_iter()
        .enumerate()
        .skip(start)
        .take(end.saturating_sub(start))
    {
        connection.edges.push(Edge::new(encode_cursor(index), item));
    }
    let end_cursor = connection.edges.last().map(|edge| edge.cursor.clone());
    record_page(ctx, top, end < total, end_cursor);
    Ok(connection)
}

fn encode_cursor(index: usize) -> String {
    STANDARD.encode(format!(r#"{{"offset":{index}}}"#))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let bytes = STANDARD.decode(cursor).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    usize::try_from(value.get("offset")?.as_u64()?).ok()
}

/// The root query type.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The shop the access token belongs to.
    async fn shop(&self, ctx: &Context<'_>) -> Result<Shop> {
        let request = request(ctx)?;
        let seed = &request.seed;
        Ok(Shop {
            id: gid("Shop", seed.shop_id),
            name: seed.name.clone(),
            myshopify_domain: seed.domain.clone(),
            iana_timezone: seed.iana_timezone.clone(),
            currency_code: CurrencyCode(seed.currency.clone()),
            url: Url(format!("https://{}", seed.domain)),
            plan: ShopPlan {
                display_name: seed.plan.display_name().to_owned(),
                partner_development: false,
                shopify_plus: matches!(
                    seed.plan,
                    crate::config::Plan::Plus | crate::config::Plan::Enterprise
                ),
            },
        })
    }

    /// Webhook subscriptions this app created on the shop through the API.
    async fn webhook_subscriptions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, WebhookSubscription>> {
        let items = request(ctx)?
            .subscriptions
            .iter()
            .map(WebhookSubscription::from)
            .collect();
        paginate(ctx, items, first, after, true)
    }

    /// The shop's locations.
    async fn locations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, Location>> {
        require_scope(ctx, "locations", "read_locations")?;
        let items = request(ctx)?
            .data
            .locations
            .iter()
            .map(Location::from)
            .collect();
        paginate(ctx, items, first, after, true)
    }

    /// One location by GID.
    async fn location(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Location>> {
        require_scope(ctx, "location", "read_locations")?;
        let wanted = parse_gid(&id, "Location");
        Ok(request(ctx)?
            .data
            .locations
            .iter()
            .find(|location| Some(location.id) == wanted)
            .map(Location::from))
    }

    /// The shop's products (the `query` argument is accepted and ignored).
    async fn products(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(name = "query")] _search: Option<String>,
    ) -> Result<Connection<String, Product>> {
        require_scope(ctx, "products", "read_products")?;
        let items = request(ctx)?
            .data
            .products
            .iter()
            .map(Product::from)
            .collect();
        paginate(ctx, items, first, after, true)
    }

    /// One product by GID.
    async fn product(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Product>> {
        require_scope(ctx, "product", "read_products")?;
        let wanted = parse_gid(&id, "Product");
        Ok(request(ctx)?
            .data
            .products
            .iter()
            .find(|product| Some(product.id) == wanted)
            .map(Product::from))
    }

    /// Orders; without `read_all_orders` only the last 60 days are visible, as on Shopify. Cursors hold
    /// the last item's sort value and id (as Shopify's do), so an order updated between two pages is
    /// neither skipped nor repeated when sorting by `ID`.
    async fn orders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        query: Option<String>,
        sort_key: Option<OrderSortKeys>,
        reverse: Option<bool>,
    ) -> Result<Connection<String, Order>> {
        require_scope(ctx, "orders", "read_orders")?;
        let request = request(ctx)?;
        let had_cursor = after.is_some();
        let (limit, after) = window(ctx, first, after, true)?;
        let cursor = match after {
            Some(text) => Some(
                OrderCursor::decode(&text)
                    .ok_or_else(|| Error::new("Invalid cursor for current pagination."))?,
            ),
            None => None,
        };
        let filter = OrderFilter::parse(query.as_deref().unwrap_or_default());
        let sort_key = sort_key.unwrap_or(OrderSortKeys::Id);
        let reverse = reverse.unwrap_or(false);
        let wanted = |order: &OrderRow| is_visible(request, order) && filter.matches(order);
        let mut rows: Vec<OrderRow> = if sort_key == OrderSortKeys::Id {
            request
                .data
                .orders
                .iter_from(cursor.as_ref().map(|cursor| cursor.last_id), reverse)
                .filter(|order| wanted(order))
                .take(limit.saturating_add(1))
                .collect()
        } else {
            // Only keys are kept while sorting, so a large shop is never all in memory.
            let mut keys: Vec<(DateTime<Utc>, u64)> = request
                .data
                .orders
                .iter()
                .filter(|order| wanted(order))
                .map(|order| (sort_key.value(&order), order.id))
                .collect();
            keys.sort_unstable();
            if reverse {
                keys.reverse();
            }
            let bound = cursor
                .as_ref()
                .map(|cursor| (cursor.time().unwrap_or_default(), cursor.last_id));
            keys.into_iter()
                .filter(|key| match bound {
                    None => true,
                    Some(bound) if reverse => *key < bound,
                    Some(bound) => *key > bound,
                })
                .take(limit.saturating_add(1))
                .filter_map(|(_, id)| request.data.orders.get(id))
                .collect()
        };
        let has_next = rows.len() > limit;
        rows.truncate(limit);
        let mut connection = Connection::new(had_cursor, has_next);
        for row in rows {
            let cursor = OrderCursor {
                last_id: row.id,
                last_value: sort_key.text(&row),
            }
            .encode();
            connection.edges.push(Edge::new(cursor, Order::from(&row)));
        }
        let end_cursor = connection.edges.last().map(|edge| edge.cursor.clone());
        record_page(ctx, true, has_next, end_cursor);
        Ok(connection)
    }

    /// One order by GID.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        require_scope(ctx, "order", "read_orders")?;
        let request = request(ctx)?;
        Ok(parse_gid(&id, "Order")
            .and_then(|wanted| request.data.orders.get(wanted))
            .filter(|order| is_visible(request, order))
            .map(|order| Order::from(&order)))
    }

    /// A bulk operation of this app by GID (API 2026-01 and later).
    async fn bulk_operation(&self, ctx: &Context<'_>, id: ID) -> Result<Option<BulkOperation>> {
        let request = request(ctx)?;
        require_version(request, "bulkOperation")?;
        Ok(parse_gid(&id, "BulkOperation")
            .and_then(|wanted| bulk::view(request, wanted))
            .map(BulkOperation::from))
    }

    /// The app's most recent bulk operation of `type` on this shop.
    async fn current_bulk_operation(
        &self,
        ctx: &Context<'_>,
        #[graphql(name = "type", default_with = "BulkOperationType::Query")]
        operation_type: BulkOperationType,
    ) -> Result<Option<BulkOperation>> {
        Ok(bulk::current(request(ctx)?, operation_type).map(BulkOperation::from))
    }

    /// The app's bulk operations on this shop, oldest first (API 2026-01 and later). `query` understands
    /// `status:RUNNING` and `operation_type:QUERY`.
    async fn bulk_operations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        query: Option<String>,
        reverse: Option<bool>,
    ) -> Result<Connection<String, BulkOperation>> {
        let request = request(ctx)?;
        require_version(request, "bulkOperations")?;
        let mut items: Vec<BulkOperation> = bulk::list(request, query.as_deref().unwrap_or(""))
            .into_iter()
            .map(BulkOperation::from)
            .collect();
        if reverse.unwrap_or(false) {
            items.reverse();
        }
        paginate(ctx, items, first, after, true)
    }
}

/// Refuses a field that only exists from API 2026-01 on, as an older schema would.
fn require_version(request: &RequestContext, field: &str) -> Result<()> {
    if from_2026_01(&request.api_version) {
        Ok(())
    } else {
        Err(
            Error::new(format!("Field '{field}' doesn't exist on type 'QueryRoot'"))
                .extend_with(|_, extensions| extensions.set("code", "undefinedField")),
        )
    }
}

fn is_visible(request: &RequestContext, order: &OrderRow) -> bool {
    request
        .scopes
        .iter()
        .any(|scope| scope == "read_all_orders")
        || order.created_at >= request.now - Duration::days(60)
}

/// An order cursor: base64 of `{"last_id":…,"last_value":"…"}`, the shape Shopify's cursors decode to.
struct OrderCursor {
    last_id: u64,
    last_value: String,
}

impl OrderCursor {
    fn encode(&self) -> String {
        STANDARD.encode(
            serde_json::json!({"last_id": self.last_id, "last_value": self.last_value}).to_string(),
        )
    }

    fn decode(text: &str) -> Option<Self> {
        let bytes = STANDARD.decode(text).ok()?;
        let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Some(Self {
            last_id: value.get("last_id")?.as_u64()?,
            last_value: value.get("last_value")?.as_str()?.to_owned(),
        })
    }

    fn time(&self) -> Option<DateTime<Utc>> {
        DateTime::parse_from_rfc3339(&self.last_value)
            .ok()
            .map(|at| at.to_utc())
    }
}

/// Order sort keys (a subset of Shopify's `OrderSortKeys`).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum OrderSortKeys {
    /// By id.
    Id,
    /// By creation time.
    CreatedAt,
    /// By last update.
    UpdatedAt,
    /// By sale time.
    ProcessedAt,
}

impl OrderSortKeys {
    fn value(self, order: &OrderRow) -> DateTime<Utc> {
        match self {
            Self::Id | Self::CreatedAt => order.created_at,
            Self::UpdatedAt => order.updated_at,
            Self::ProcessedAt => order.processed_at,
        }
    }

    fn text(self, order: &OrderRow) -> String {
        match self {
            Self::Id => order.id.to_string(),
            _ => self
                .value(order)
                .to_rfc3339_opts(SecondsFormat::Nanos, true),
        }
    }
}

/// The supported part of Shopify's order search syntax: `created_at`, `updated_at`, `processed_at` with
/// `>`, `>=`, `<`, `<=` (or `:` for "on or after"), and `test:true|false`; other terms are ignored.
#[derive(Default)]
struct OrderFilter {
    bounds: Vec<(String, String, DateTime<Utc>)>,
    test: Option<bool>,
}

impl OrderFilter {
    fn parse(query: &str) -> Self {
        let mut filter = Self::default();
        for term in query.split_whitespace() {
            let Some((field, rest)) = term.split_once(':') else {
                continue;
            };
            if field == "test" {
                filter.test = rest.parse().ok();
                continue;
            }
            if !matches!(field, "created_at" | "updated_at" | "processed_at") {
                continue;
            }
            let (operator, value) = [">=", "<=", ">", "<"]
                .iter()
                .find_map(|operator| rest.strip_prefix(operator).map(|value| (*operator, value)))
                .unwrap_or((">=", rest));
            let value = value.trim_matches(|c| c == '\'' || c == '"');
            let parsed = DateTime::parse_from_rfc3339(value)
                .map(|at| at.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
                        .ok()
                        .and_then(|date| date.and_hms_opt(0, 0, 0))
                        .map(|at| at.and_utc())
                });
            if let Some(at) = parsed {
                filter
                    .bounds
                    .push((field.to_owned(), operator.to_owned(), at));
            }
        }
        filter
    }

    fn matches(&self, order: &OrderRow) -> bool {
        if self.test.is_some_and(|test| test != order.test) {
            return false;
        }
        self.bounds.iter().all(|(field, operator, bound)| {
            let value = match field.as_str() {
                "created_at" => order.created_at,
                "updated_at" => order.updated_at,
                _ => order.processed_at,
            };
            match operator.as_str() {
                ">" => value > *bound,
                ">=" => value >= *bound,
                "<" => value < *bound,
                _ => value <= *bound,
            }
        })
    }
}

/// The shop.
#[derive(SimpleObject)]
pub struct Shop {
    id: ID,
    name: String,
    myshopify_domain: String,
    iana_timezone: String,
    currency_code: CurrencyCode,
    url: Url,
    plan: ShopPlan,
}

/// The shop's plan.
#[derive(SimpleObject)]
pub struct ShopPlan {
    display_name: String,
    partner_development: bool,
    shopify_plus: bool,
}

/// Webhook topics this simulator knows (a subset of `WebhookSubscriptionTopic`).
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
pub enum WebhookSubscriptionTopic {
    /// `app/uninstalled`.
    AppUninstalled,
    /// `app/scopes_update`.
    AppScopesUpdate,
    /// `bulk_operations/finish`.
    BulkOperationsFinish,
    /// `inventory_levels/update`.
    InventoryLevelsUpdate,
    /// `orders/create`.
    OrdersCreate,
    /// `orders/updated`.
    OrdersUpdated,
    /// `orders/cancelled`.
    OrdersCancelled,
    /// `orders/delete`.
    OrdersDelete,
    /// `products/update`.
    ProductsUpdate,
    /// `refunds/create`.
    RefundsCreate,
    /// `shop/update`.
    ShopUpdate,
}

impl WebhookSubscriptionTopic {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "APP_UNINSTALLED" => Self::AppUninstalled,
            "APP_SCOPES_UPDATE" => Self::AppScopesUpdate,
            "BULK_OPERATIONS_FINISH" => Self::BulkOperationsFinish,
            "INVENTORY_LEVELS_UPDATE" => Self::InventoryLevelsUpdate,
            "ORDERS_CREATE" => Self::OrdersCreate,
            "ORDERS_UPDATED" => Self::OrdersUpdated,
            "ORDERS_CANCELLED" => Self::OrdersCancelled,
            "ORDERS_DELETE" => Self::OrdersDelete,
            "PRODUCTS_UPDATE" => Self::ProductsUpdate,
            "REFUNDS_CREATE" => Self::RefundsCreate,
            "SHOP_UPDATE" => Self::ShopUpdate,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::AppUninstalled => "APP_UNINSTALLED",
            Self::AppScopesUpdate => "APP_SCOPES_UPDATE",
            Self::BulkOperationsFinish => "BULK_OPERATIONS_FINISH",
            Self::InventoryLevelsUpdate => "INVENTORY_LEVELS_UPDATE",
            Self::OrdersCreate => "ORDERS_CREATE",
            Self::OrdersUpdated => "ORDERS_UPDATED",
            Self::OrdersCancelled => "ORDERS_CANCELLED",
            Self::OrdersDelete => "ORDERS_DELETE",
            Self::ProductsUpdate => "PRODUCTS_UPDATE",
            Self::RefundsCreate => "REFUNDS_CREATE",
            Self::ShopUpdate => "SHOP_UPDATE",
        }
    }
}

/// Payload format of a subscription.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum WebhookSubscriptionFormat {
    /// JSON bodies.
    Json,
}

/// A webhook subscription.
#[derive(SimpleObject)]
pub struct WebhookSubscription {
    id: ID,
    topic: WebhookSubscriptionTopic,
    uri: String,
    format: WebhookSubscriptionFormat,
    created_at: DateTimeScalar,
    updated_at: DateTimeScalar,
}

impl From<&WebhookSubscriptionRecord> for WebhookSubscription {
    fn from(record: &WebhookSubscriptionRecord) -> Self {
        Self {
            id: gid("WebhookSubscription", record.id),
            topic: WebhookSubscriptionTopic::from_name(&record.topic)
                .unwrap_or(WebhookSubscriptionTopic::ShopUpdate),
            uri: record.uri.clone(),
            format: WebhookSubscriptionFormat::Json,
            created_at: time(record.created_at),
            updated_at: time(record.created_at),
        }
    }
}

/// A location.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Location {
    id: ID,
    legacy_resource_id: UnsignedInt64,
    name: String,
    is_active: bool,
    #[graphql(skip)]
    row_id: u64,
}

impl From<&LocationRow> for Location {
    fn from(row: &LocationRow) -> Self {
        Self {
            id: gid("Location", row.id),
            legacy_resource_id: UnsignedInt64(row.id.to_string()),
            name: row.name.clone(),
            is_active: row.active,
            row_id: row.id,
        }
    }
}

#[ComplexObject]
impl Location {
    /// Stock held at this location.
    async fn inventory_levels(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, InventoryLevel>> {
        require_scope(ctx, "inventoryLevels", "read_inventory")?;
        let data = &request(ctx)?.data;
        let items = data
            .inventory_levels
            .iter()
            .filter(|level| level.location_id == self.row_id)
            .map(InventoryLevel::from)
            .collect();
        paginate(ctx, items, first, after, false)
    }
}

/// Product status.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ProductStatus {
    /// Sellable.
    Active,
    /// No longer sold.
    Archived,
    /// Not yet published.
    Draft,
}

/// A product.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Product {
    id: ID,
    legacy_resource_id: UnsignedInt64,
    title: String,
    handle: String,
    status: ProductStatus,
    created_at: DateTimeScalar,
    updated_at: DateTimeScalar,
    #[graphql(skip)]
    row: ProductRow,
}

impl From<&ProductRow> for Product {
    fn from(row: &ProductRow) -> Self {
        Self {
            id: gid("Product", row.id),
            legacy_resource_id: UnsignedInt64(row.id.to_string()),
            title: row.title.clone(),
            handle: row.handle.clone(),
            status: ProductStatus::Active,
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
            row: row.clone(),
        }
    }
}

#[ComplexObject]
impl Product {
    /// The product's variants.
    async fn variants(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ProductVariant>> {
        paginate(
            ctx,
            self.row.variants.iter().map(ProductVariant::from).collect(),
            first,
            after,
            false,
        )
    }
}

/// A product variant.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ProductVariant {
    id: ID,
    legacy_resource_id: UnsignedInt64,
    title: String,
    sku: Option<String>,
    price: Money,
    #[graphql(skip)]
    row: VariantRow,
}

impl From<&VariantRow> for ProductVariant {
    fn from(row: &VariantRow) -> Self {
        Self {
            id: gid("ProductVariant", row.id),
            legacy_resource_id: UnsignedInt64(row.id.to_string()),
            title: row.title.clone(),
            sku: Some(row.sku.clone()),
            price: Money(decimal(row.price_cents)),
            row: row.clone(),
        }
    }
}

#[ComplexObject]
impl ProductVariant {
    /// The variant's inventory item.
    async fn inventory_item(&self) -> InventoryItem {
        InventoryItem::new(&self.row)
    }

    /// The product the variant belongs to.
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        Ok(request(ctx)?
            .data
            .products
            .iter()
            .find(|product| product.id == self.row.product_id)
            .map(Product::from))
    }
}

/// A stocked item.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct InventoryItem {
    id: ID,
    legacy_resource_id: UnsignedInt64,
    sku: Option<String>,
    tracked: bool,
    #[graphql(skip)]
    row_id: u64,
}

impl InventoryItem {
    fn new(variant: &VariantRow) -> Self {
        Self {
            id: gid("InventoryItem", variant.inventory_item_id),
            legacy_resource_id: UnsignedInt64(variant.inventory_item_id.to_string()),
            sku: Some(variant.sku.clone()),
            tracked: true,
            row_id: variant.inventory_item_id,
        }
    }
}

#[ComplexObject]
impl InventoryItem {
    /// Stock of this item at each location.
    async fn inventory_levels(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, InventoryLevel>> {
        require_scope(ctx, "inventoryLevels", "read_inventory")?;
        let items = request(ctx)?
            .data
            .inventory_levels
            .iter()
            .filter(|level| level.inventory_item_id == self.row_id)
            .map(InventoryLevel::from)
            .collect();
        paginate(ctx, items, first, after, false)
    }
}

/// Stock of one item at one location.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct InventoryLevel {
    id: ID,
    updated_at: DateTimeScalar,
    #[graphql(skip)]
    row: super::seed::InventoryLevelRow,
}

impl From<&super::seed::InventoryLevelRow> for InventoryLevel {
    fn from(row: &super::seed::InventoryLevelRow) -> Self {
        Self {
            id: ID(format!(
                "gid://shopify/InventoryLevel/{}?inventory_item_id={}",
                row.location_id, row.inventory_item_id
            )),
            updated_at: time(row.updated_at),
            row: row.clone(),
        }
    }
}

/// A named quantity of an inventory level.
#[derive(SimpleObject)]
pub struct InventoryQuantity {
    name: String,
    quantity: i64,
}

#[ComplexObject]
impl InventoryLevel {
    /// Quantities by name (`available`, `on_hand`, `committed`, …).
    async fn quantities(&self, names: Vec<String>) -> Vec<InventoryQuantity> {
        names
            .into_iter()
            .map(|name| {
                let quantity = match name.as_str() {
                    "available" => self.row.available,
                    "on_hand" => self.row.on_hand,
                    "committed" => self.row.on_hand - self.row.available,
                    _ => 0,
                };
                InventoryQuantity { name, quantity }
            })
            .collect()
    }

    /// The location holding the stock.
    async fn location(&self, ctx: &Context<'_>) -> Result<Option<Location>> {
        Ok(request(ctx)?
            .data
            .locations
            .iter()
            .find(|location| location.id == self.row.location_id)
            .map(Location::from))
    }

    /// The stocked item.
    async fn item(&self, ctx: &Context<'_>) -> Result<Option<InventoryItem>> {
        Ok(request(ctx)?
            .data
            .variant_by_inventory_item(self.row.inventory_item_id)
            .map(InventoryItem::new))
    }
}

/// An amount in one currency.
#[derive(SimpleObject, Clone)]
#[graphql(name = "MoneyV2")]
pub struct MoneyV2 {
    amount: Decimal,
    currency_code: CurrencyCode,
}

/// An amount in shop and presentment currencies.
#[derive(SimpleObject)]
pub struct MoneyBag {
    shop_money: MoneyV2,
    presentment_money: MoneyV2,
}

impl MoneyBag {
    fn new(cents: i64, currency: &str) -> Self {
        let money = MoneyV2 {
            amount: Decimal(decimal(cents)),
            currency_code: CurrencyCode(currency.to_owned()),
        };
        Self {
            shop_money: money.clone(),
            presentment_money: money,
        }
    }
}

/// An order.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Order {
    id: ID,
    legacy_resource_id: UnsignedInt64,
    name: String,
    created_at: DateTimeScalar,
    updated_at: DateTimeScalar,
    processed_at: DateTimeScalar,
    cancelled_at: Option<DateTimeScalar>,
    test: bool,
    source_name: Option<String>,
    #[graphql(skip)]
    row: OrderRow,
}

impl From<&OrderRow> for Order {
    fn from(row: &OrderRow) -> Self {
        Self {
            id: gid("Order", row.id),
            legacy_resource_id: UnsignedInt64(row.id.to_string()),
            name: format!("#{}", row.number),
            created_at: time(row.created_at),
            updated_at: time(row.updated_at),
            processed_at: time(row.processed_at),
            cancelled_at: row.cancelled_at.map(time),
            test: row.test,
            source_name: Some(row.source_name.clone()),
            row: row.clone(),
        }
    }
}

#[ComplexObject]
impl Order {
    /// Shop currency of the order.
    async fn currency_code(&self, ctx: &Context<'_>) -> Result<CurrencyCode> {
        Ok(CurrencyCode(request(ctx)?.data.currency.clone()))
    }

    /// Current total after refunds.
    async fn total_price_set(&self, ctx: &Context<'_>) -> Result<MoneyBag> {
        Ok(MoneyBag::new(
            self.row.total_cents(),
            &request(ctx)?.data.currency,
        ))
    }

    /// Current total after refunds and removals.
    async fn current_total_price_set(&self, ctx: &Context<'_>) -> Result<MoneyBag> {
        Ok(MoneyBag::new(
            self.row.total_cents(),
            &request(ctx)?.data.currency,
        ))
    }

    /// Money refunded so far.
    async fn total_refunded_set(&self, ctx: &Context<'_>) -> Result<MoneyBag> {
        Ok(MoneyBag::new(
            self.row.refunded_cents(),
            &request(ctx)?.data.currency,
        ))
    }

    /// Discounts on the order's lines.
    async fn total_discounts_set(&self, ctx: &Context<'_>) -> Result<MoneyBag> {
        let cents = self
            .row
            .line_items
            .iter()
            .map(LineItemRow::total_discount_cents)
            .sum();
        Ok(MoneyBag::new(cents, &request(ctx)?.data.currency))
    }

    /// The order's refunds: a list, not a connection (so a bulk query cannot reach `refundLineItems`).
    async fn refunds(&self, first: Option<i32>) -> Vec<Refund> {
        let limit = first.and_then(|first| usize::try_from(first).ok());
        self.row
            .refunds
            .iter()
            .take(limit.unwrap_or(usize::MAX))
            .map(|refund| Refund {
                id: gid("Refund", refund.id),
                created_at: time(refund.created_at),
                row: refund.clone(),
                lines: self.row.line_items.clone(),
            })
            .collect()
    }

    /// The POS location where the sale happened.
    async fn retail_location(&self, ctx: &Context<'_>) -> Result<Option<Location>> {
        let data = &request(ctx)?.data;
        Ok(self
            .row
            .location_id
            .and_then(|id| data.locations.iter().find(|location| location.id == id))
            .map(Location::from))
    }

    /// The order's line items.
    async fn line_items(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, LineItem>> {
        paginate(
            ctx,
            self.row.line_items.iter().map(LineItem::from).collect(),
            first,
            after,
            false,
        )
    }
}

/// A line of an order.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct LineItem {
    id: ID,
    title: String,
    name: String,
    sku: Option<String>,
    quantity: i64,
    current_quantity: i64,
    is_gift_card: bool,
    #[graphql(skip)]
    row: LineItemRow,
}

impl From<&LineItemRow> for LineItem {
    fn from(row: &LineItemRow) -> Self {
        Self {
            id: gid("LineItem", row.id),
            title: row.title.clone(),
            name: row.title.clone(),
            sku: (!row.sku.is_empty()).then(|| row.sku.clone()),
            quantity: row.quantity,
            current_quantity: row.current_quantity,
            is_gift_card: row.gift_card,
            row: row.clone(),
        }
    }
}

/// A discount's share of a line.
#[derive(SimpleObject)]
pub struct DiscountAllocation {
    allocated_amount_set: MoneyBag,
}

/// A refund.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Refund {
    id: ID,
    created_at: DateTimeScalar,
    #[graphql(skip)]
    row: RefundRow,
    #[graphql(skip)]
    lines: Vec<LineItemRow>,
}

#[ComplexObject]
impl Refund {
    /// Money refunded.
    async fn total_refunded_set(&self, ctx: &Context<'_>) -> Result<MoneyBag> {
        Ok(MoneyBag::new(
            self.row.total_cents(),
            &request(ctx)?.data.currency,
        ))
    }

    /// The refunded lines.
    async fn refund_line_items(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, RefundLineItem>> {
        let items = self
            .row
            .lines
            .iter()
            .filter_map(|refund_line| {
                self.lines
                    .iter()
                    .find(|line| line.id == refund_line.line_item_id)
                    .map(|line| RefundLineItem {
                        id: gid("RefundLineItem", refund_line.id),
                        quantity: refund_line.quantity,
                        restock_type: refund_line.restock_type.into(),
                        restocked: refund_line.restock_type != RestockType::NoRestock,
                        row: refund_line.clone(),
                        line: line.clone(),
                    })
            })
            .collect();
        paginate(ctx, items, first, after, false)
    }
}

/// What happened to refunded stock.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum RefundLineItemRestockType {
    /// Returned.
    Return,
    /// Cancelled.
    Cancel,
    /// Restocked the old way.
    LegacyRestock,
    /// Not restocked.
    NoRestock,
}

impl From<RestockType> for RefundLineItemRestockType {
    fn from(restock: RestockType) -> Self {
        match restock {
            RestockType::Return => Self::Return,
            RestockType::Cancel => Self::Cancel,
            RestockType::NoRestock => Self::NoRestock,
        }
    }
}

/// Units of a line given back in a refund.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct RefundLineItem {
    id: ID,
    quantity: i64,
    restock_type: RefundLineItemRestockType,
    restocked: bool,
    #[graphql(skip)]
    row: RefundLineRow,
    #[graphql(skip)]
    line: LineItemRow,
}

#[ComplexObject]
impl RefundLineItem {
    /// The refunded line.
    async fn line_item(&self) -> LineItem {
        LineItem::from(&self.line)
    }

    /// Money refunded for these units.
    async fn subtotal_set(&self, ctx: &Context<'_>) -> Result<MoneyBag> {
        Ok(MoneyBag::new(
            self.row.subtotal_cents,
            &request(ctx)?.data.currency,
        ))
    }

    /// Unit price refunded.
    async fn price_set(&self, ctx: &Context<'_>) -> Result<MoneyBag> {
        Ok(MoneyBag::new(
            self.line.unit_price_cents - self.line.discount_per_unit_cents,
            &request(ctx)?.data.currency,
        ))
    }
}

#[ComplexObject]
impl LineItem {
    /// The variant sold, absent for custom items.
    async fn variant(&self, ctx: &Context<'_>) -> Result<Option<ProductVariant>> {
        let data = &request(ctx)?.data;
        Ok(self
            .row
            .variant_id
            .and_then(|id| data.variant(id))
            .map(ProductVariant::from))
    }

    /// The product sold, absent for custom items.
    async fn product(&self, ctx: &Context<'_>) -> Result<Option<Product>> {
        let data = &request(ctx)?.data;
        Ok(self
            .row
            .product_id
            .and_then(|id| data.products.iter().find(|product| product.id == id))
            .map(Product::from))
    }

    /// Unit price before discounts.
    async fn original_unit_price_set(&self, ctx: &Context<'_>) -> Result<MoneyBag> {
        Ok(MoneyBag::new(
            self.row.unit_price_cents,
            &request(ctx)?.data.currency,
        ))
    }

    /// Unit price after the line's discounts.
    async fn discounted_unit_price_set(&self, ctx: &Context<'_>) -> Result<MoneyBag> {
        Ok(MoneyBag::new(
            self.row.unit_price_cents - self.row.discount_per_unit_cents,
            &request(ctx)?.data.currency,
        ))
    }

    /// The line's whole discount.
    async fn total_discount_set(&self, ctx: &Context<'_>) -> Result<MoneyBag> {
        Ok(MoneyBag::new(
            self.row.total_discount_cents(),
            &request(ctx)?.data.currency,
        ))
    }

    /// Discounts applied to the line (one allocation here).
    async fn discount_allocations(&self, ctx: &Context<'_>) -> Result<Vec<DiscountAllocation>> {
        let currency = &request(ctx)?.data.currency;
        Ok((self.row.discount_per_unit_cents > 0)
            .then(|| DiscountAllocation {
                allocated_amount_set: MoneyBag::new(self.row.total_discount_cents(), currency),
            })
            .into_iter()
            .collect())
    }
}

/// Input of `webhookSubscriptionCreate`.
#[derive(InputObject)]
pub struct WebhookSubscriptionInput {
    /// Where deliveries go.
    uri: String,
    /// Payload format.
    format: Option<WebhookSubscriptionFormat>,
}

/// A problem with a mutation's input.
#[derive(SimpleObject)]
pub struct UserError {
    field: Option<Vec<String>>,
    message: String,
}

/// Payload of `webhookSubscriptionCreate`.
#[derive(SimpleObject)]
pub struct WebhookSubscriptionCreatePayload {
    webhook_subscription: Option<WebhookSubscription>,
    user_errors: Vec<UserError>,
}

/// Payload of `webhookSubscriptionDelete`.
#[derive(SimpleObject)]
pub struct WebhookSubscriptionDeletePayload {
    deleted_webhook_subscription_id: Option<ID>,
    user_errors: Vec<UserError>,
}

/// The root mutation type.
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Subscribes the app to a topic on this shop.
    async fn webhook_subscription_create(
        &self,
        ctx: &Context<'_>,
        topic: WebhookSubscriptionTopic,
        webhook_subscription: WebhookSubscriptionInput,
    ) -> Result<WebhookSubscriptionCreatePayload> {
        let request = request(ctx)?;
        let uri = webhook_subscription.uri;
        if !(uri.starts_with("https://")
            || uri.starts_with("http://")
            || uri.starts_with("pubsub://")
            || uri.starts_with("arn:aws:events:"))
        {
            return Ok(WebhookSubscriptionCreatePayload {
                webhook_subscription: None,
                user_errors: vec![UserError {
                    field: Some(vec!["webhookSubscription".into(), "callbackUrl".into()]),
                    message: "Address is invalid".into(),
                }],
            });
        }
        let mut state = request.shared.lock();
        let Some(shop) = state.shops.get_mut(&request.seed.domain) else {
            return Err(Error::new("shop not found"));
        };
        if shop
            .webhook_subscriptions
            .iter()
            .any(|existing| existing.topic == topic.name() && existing.uri == uri)
        {
            return Ok(WebhookSubscriptionCreatePayload {
                webhook_subscription: None,
                user_errors: vec![UserError {
                    field: Some(vec!["webhookSubscription".into(), "callbackUrl".into()]),
                    message: "Address for this topic has already been taken".into(),
                }],
            });
        }
        let record = WebhookSubscriptionRecord {
            id: shop.next_subscription_id,
            topic: topic.name().to_owned(),
            uri,
            created_at: request.now,
        };
        shop.next_subscription_id += 1;
        shop.webhook_subscriptions.push(record.clone());
        Ok(WebhookSubscriptionCreatePayload {
            webhook_subscription: Some(WebhookSubscription::from(&record)),
            user_errors: Vec::new(),
        })
    }

    /// Removes a subscription.
    async fn webhook_subscription_delete(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<WebhookSubscriptionDeletePayload> {
        let request = request(ctx)?;
        let wanted = parse_gid(&id, "WebhookSubscription");
        let mut state = request.shared.lock();
        let Some(shop) = state.shops.get_mut(&request.seed.domain) else {
            return Err(Error::new("shop not found"));
        };
        let before = shop.webhook_subscriptions.len();
        shop.webhook_subscriptions
            .retain(|subscription| Some(subscription.id) != wanted);
        if shop.webhook_subscriptions.len() == before {
            return Ok(WebhookSubscriptionDeletePayload {
                deleted_webhook_subscription_id: None,
                user_errors: vec![UserError {
                    field: Some(vec!["id".into()]),
                    message: "Webhook subscription does not exist".into(),
                }],
            });
        }
        Ok(WebhookSubscriptionDeletePayload {
            deleted_webhook_subscription_id: Some(id),
            user_errors: Vec::new(),
        })
    }

    /// Starts a bulk query (<https://shopify.dev/docs/api/usage/bulk-operations/queries>). `groupObjects`
    /// defaults to `false` from API 2026-01 and to `true` before.
    async fn bulk_operation_run_query(
        &self,
        ctx: &Context<'_>,
        query: String,
        group_objects: Option<bool>,
    ) -> Result<BulkOperationRunQueryPayload> {
        Ok(match bulk::run_query(request(ctx)?, query, group_objects) {
            Ok(view) => BulkOperationRunQueryPayload {
                bulk_operation: Some(BulkOperation::from(view)),
                user_errors: Vec::new(),
            },
            Err(error) => BulkOperationRunQueryPayload {
                bulk_operation: None,
                user_errors: vec![error.into()],
            },
        })
    }

    /// Asks a running bulk operation to stop (`CANCELING`, then `CANCELED`).
    async fn bulk_operation_cancel(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<BulkOperationCancelPayload> {
        let request = request(ctx)?;
        let wanted = parse_gid(&id, "BulkOperation").unwrap_or_default();
        Ok(match bulk::cancel(request, wanted) {
            Ok(view) => BulkOperationCancelPayload {
                bulk_operation: Some(BulkOperation::from(view)),
                user_errors: Vec::new(),
            },
            Err(error) => BulkOperationCancelPayload {
                bulk_operation: bulk::view(request, wanted).map(BulkOperation::from),
                user_errors: vec![UserError {
                    field: Some(vec!["id".into()]),
                    message: error.message,
                }],
            },
        })
    }
}

/// An asynchronous bulk query and its result.
#[derive(SimpleObject)]
pub struct BulkOperation {
    id: ID,
    status: BulkOperationStatus,
    error_code: Option<BulkOperationErrorCode>,
    created_at: DateTimeScalar,
    completed_at: Option<DateTimeScalar>,
    object_count: UnsignedInt64,
    root_object_count: UnsignedInt64,
    file_size: Option<UnsignedInt64>,
    url: Option<Url>,
    partial_data_url: Option<Url>,
    query: String,
    #[graphql(name = "type")]
    operation_type: BulkOperationType,
}

impl From<BulkOperationView> for BulkOperation {
    fn from(view: BulkOperationView) -> Self {
        Self {
            id: gid("BulkOperation", view.id),
            status: view.status,
            error_code: view.error_code,
            created_at: time(view.created_at),
            completed_at: view.completed_at.map(time),
            object_count: UnsignedInt64(view.object_count.to_string()),
            root_object_count: UnsignedInt64(view.root_object_count.to_string()),
            file_size: view.file_size.map(|size| UnsignedInt64(size.to_string())),
            url: view.url.map(Url),
            partial_data_url: view.partial_data_url.map(Url),
            query: view.query,
            operation_type: BulkOperationType::Query,
        }
    }
}

/// A problem with a bulk operation's input.
#[derive(SimpleObject)]
pub struct BulkOperationUserError {
    field: Option<Vec<String>>,
    message: String,
    code: Option<BulkOperationUserErrorCode>,
}

impl From<bulk::BulkUserError> for BulkOperationUserError {
    fn from(error: bulk::BulkUserError) -> Self {
        Self {
            field: error.field.map(|field| vec![field.to_owned()]),
            message: error.message,
            code: error.code,
        }
    }
}

/// Payload of `bulkOperationRunQuery`.
#[derive(SimpleObject)]
pub struct BulkOperationRunQueryPayload {
    bulk_operation: Option<BulkOperation>,
    user_errors: Vec<BulkOperationUserError>,
}

/// Payload of `bulkOperationCancel`.
#[derive(SimpleObject)]
pub struct BulkOperationCancelPayload {
    bulk_operation: Option<BulkOperation>,
    user_errors: Vec<UserError>,
}
