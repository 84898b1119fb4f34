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

use super::seed::{LineItemRow, LocationRow, OrderRow, ProductRow, ShopData, VariantRow, decimal};
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

/// Pages `items` like a Relay connection; Shopify requires `first` or `last` and caps them at 250.
fn paginate<T: async_graphql::OutputType>(
    items: Vec<T>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, T>> {
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
    let start = match after {
        Some(cursor) => {
            decode_cursor(&cursor)
                .ok_or_else(|| Error::new("Invalid cursor for current pagination."))?
                + 1
        }
        None => 0,
    };
    let total = items.len();
    let end = (start + first).min(total);
    let mut connection = Connection::new(start > 0, end < total);
    for (index, item) in items
        .into_iter()
        .enumerate()
        .skip(start)
        .take(end.saturating_sub(start))
    {
        connection.edges.push(Edge::new(encode_cursor(index), item));
    }
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
        paginate(items, first, after)
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
        paginate(items, first, after)
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
        paginate(items, first, after)
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

    /// Orders; without `read_all_orders` only the last 60 days are visible, as on Shopify.
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
        let filter = OrderFilter::parse(query.as_deref().unwrap_or_default());
        let mut rows: Vec<&OrderRow> = visible_orders(request)
            .filter(|order| filter.matches(order))
            .collect();
        match sort_key.unwrap_or(OrderSortKeys::Id) {
            OrderSortKeys::Id => rows.sort_by_key(|order| order.id),
            OrderSortKeys::CreatedAt => rows.sort_by_key(|order| (order.created_at, order.id)),
            OrderSortKeys::UpdatedAt => rows.sort_by_key(|order| (order.updated_at, order.id)),
            OrderSortKeys::ProcessedAt => rows.sort_by_key(|order| (order.processed_at, order.id)),
        }
        if reverse.unwrap_or(false) {
            rows.reverse();
        }
        paginate(rows.into_iter().map(Order::from).collect(), first, after)
    }

    /// One order by GID.
    async fn order(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Order>> {
        require_scope(ctx, "order", "read_orders")?;
        let wanted = parse_gid(&id, "Order");
        Ok(visible_orders(request(ctx)?)
            .find(|order| Some(order.id) == wanted)
            .map(Order::from))
    }
}

fn visible_orders(request: &RequestContext) -> impl Iterator<Item = &OrderRow> {
    let all = request
        .scopes
        .iter()
        .any(|scope| scope == "read_all_orders");
    let since = request.now - Duration::days(60);
    request
        .data
        .orders
        .iter()
        .filter(move |order| all || order.created_at >= since)
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
        paginate(items, first, after)
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
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, ProductVariant>> {
        paginate(
            self.row.variants.iter().map(ProductVariant::from).collect(),
            first,
            after,
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
        paginate(items, first, after)
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
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, LineItem>> {
        paginate(
            self.row.line_items.iter().map(LineItem::from).collect(),
            first,
            after,
        )
    }
}

/// A line of an order.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct LineItem {
    id: ID,
    title: String,
    sku: Option<String>,
    quantity: i64,
    current_quantity: i64,
    #[graphql(skip)]
    row: LineItemRow,
}

impl From<&LineItemRow> for LineItem {
    fn from(row: &LineItemRow) -> Self {
        Self {
            id: gid("LineItem", row.id),
            title: row.title.clone(),
            sku: (!row.sku.is_empty()).then(|| row.sku.clone()),
            quantity: row.quantity,
            current_quantity: row.current_quantity,
            row: row.clone(),
        }
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
}
