//! Recognising a sales export from its header row: our canonical format, Shopify's "Export orders"
//! CSV and Square's item-sales export.

use serde::Serialize;

/// The export formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SalesFormat {
    /// `date,sku,quantity` plus optional columns.
    Canonical,
    /// Shopify Admin → Orders → Export.
    ShopifyOrders,
    /// Square Dashboard → Reports → Item sales → Export.
    SquareItems,
}

impl SalesFormat {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Canonical => "canonical",
            Self::ShopifyOrders => "shopify_orders",
            Self::SquareItems => "square_items",
        }
    }
}

/// Where each field sits in a row, found from the header.
#[derive(Debug, Clone, Default)]
pub struct Columns {
    /// Sale date or date-time.
    pub date: usize,
    /// Separate local time (Square).
    pub time: Option<usize>,
    /// SKU code.
    pub sku: Option<usize>,
    /// Units.
    pub quantity: usize,
    /// Store or location.
    pub location: Option<usize>,
    /// Price of one unit.
    pub unit_price: Option<usize>,
    /// Line revenue, when the file gives it (Square's Net or Gross Sales).
    pub revenue: Option<usize>,
    /// Line discount (Shopify).
    pub discount: Option<usize>,
    /// Order, invoice or transaction id.
    pub order_id: Option<usize>,
    /// Line id within the order.
    pub line_id: Option<usize>,
    /// Product or item name.
    pub product: Option<usize>,
    /// Variant / price point name (Square).
    pub variant: Option<usize>,
    /// ISO currency code.
    pub currency: Option<usize>,
    /// Cancellation time (Shopify).
    pub cancelled_at: Option<usize>,
    /// Payment status (Shopify).
    pub financial_status: Option<usize>,
    /// `Payment` or `Refund` (Square).
    pub event_type: Option<usize>,
}

/// A recognised header: the format and its column positions, with the header names for errors.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The format.
    pub format: SalesFormat,
    /// Column positions.
    pub columns: Columns,
    /// Header names as written in the file.
    pub names: Vec<String>,
}

/// The header matched no format; lists what was looked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no recognisable header: found columns [{found}]; expected a canonical header with {canonical}, Shopify's order export ({shopify}) or Square's item sales export ({square})", found = found.join(", "), canonical = CANONICAL_REQUIRED.join(", "), shopify = SHOPIFY_REQUIRED.join(", "), square = SQUARE_REQUIRED.join(", "))]
pub struct HeaderError {
    /// Header cells as found.
    pub found: Vec<String>,
}

impl HeaderError {
    /// Every column name the recognisers looked for, per format.
    pub fn looked_for() -> Vec<(&'static str, Vec<&'static str>)> {
        vec![
            (
                SalesFormat::Canonical.name(),
                [CANONICAL_REQUIRED.as_slice(), CANONICAL_OPTIONAL.as_slice()].concat(),
            ),
            (SalesFormat::ShopifyOrders.name(), SHOPIFY_REQUIRED.to_vec()),
            (SalesFormat::SquareItems.name(), SQUARE_REQUIRED.to_vec()),
        ]
    }
}

const CANONICAL_REQUIRED: [&str; 3] = ["date", "sku", "quantity"];
const CANONICAL_OPTIONAL: [&str; 6] = [
    "location",
    "unit_price",
    "order_id",
    "line_id",
    "product",
    "currency",
];
const SHOPIFY_REQUIRED: [&str; 4] = ["Name", "Created at", "Lineitem quantity", "Lineitem sku"];
const SQUARE_REQUIRED: [&str; 4] = ["Date", "Item", "Qty", "SKU"];

const DATE_ALIASES: &[&str] = &[
    "date",
    "day",
    "sale_date",
    "sales_date",
    "order_date",
    "sold_at",
    "sold_on",
    "created_at",
    "timestamp",
    "ts",
    "datetime",
    "transaction_date",
    "invoice_date",
    "invoicedate",
];
const SKU_ALIASES: &[&str] = &[
    "sku",
    "product_sku",
    "item_sku",
    "variant_sku",
    "product_code",
    "item_code",
    "stockcode",
    "stock_code",
    "article",
    "article_number",
    "upc",
    "barcode",
];
const QUANTITY_ALIASES: &[&str] = &[
    "quantity",
    "qty",
    "units",
    "units_sold",
    "quantity_sold",
    "sold",
    "unit_count",
];
const LOCATION_ALIASES: &[&str] = &[
    "location",
    "store",
    "shop",
    "branch",
    "outlet",
    "warehouse",
    "location_name",
    "store_name",
    "store_id",
    "location_id",
];
const PRICE_ALIASES: &[&str] = &[
    "unit_price",
    "price",
    "unitprice",
    "price_per_unit",
    "sale_price",
];
const ORDER_ALIASES: &[&str] = &[
    "order_id",
    "order",
    "order_number",
    "order_no",
    "invoice",
    "invoice_no",
    "invoice_id",
    "invoiceno",
    "transaction_id",
    "receipt",
    "receipt_number",
];
const LINE_ALIASES: &[&str] = &["line_id", "line", "line_number", "line_no", "line_item_id"];
const PRODUCT_ALIASES: &[&str] = &[
    "product",
    "product_name",
    "name",
    "description",
    "title",
    "item_name",
    "product_title",
];
const CURRENCY_ALIASES: &[&str] = &["currency", "currency_code"];

/// Lower-cases and turns spaces and dashes into underscores: `Unit Price` → `unit_price`.
fn normalise(name: &str) -> String {
    name.trim()
        .trim_start_matches('\u{feff}')
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect()
}

struct Header {
    normalised: Vec<String>,
}

impl Header {
    fn find(&self, aliases: &[&str]) -> Option<usize> {
        aliases
            .iter()
            .find_map(|alias| self.normalised.iter().position(|name| name == alias))
    }

    fn exact(&self, name: &str) -> Option<usize> {
        let wanted = normalise(name);
        self.normalised.iter().position(|found| *found == wanted)
    }
}

/// Recognises the format from the header cells.
///
/// # Errors
/// When no format's required columns are all present.
pub fn detect(names: Vec<String>) -> Result<Layout, HeaderError> {
    let header = Header {
        normalised: names.iter().map(|name| normalise(name)).collect(),
    };
    let columns = shopify(&header)
        .map(|columns| (SalesFormat::ShopifyOrders, columns))
        .or_else(|| square(&header).map(|columns| (SalesFormat::SquareItems, columns)))
        .or_else(|| canonical(&header).map(|columns| (SalesFormat::Canonical, columns)));
    match columns {
        Some((format, columns)) => Ok(Layout {
            format,
            columns,
            names: names
                .iter()
                .map(|name| name.trim().trim_start_matches('\u{feff}').to_owned())
                .collect(),
        }),
        None => Err(HeaderError {
            found: names.iter().map(|name| name.trim().to_owned()).collect(),
        }),
    }
}

fn shopify(header: &Header) -> Option<Columns> {
    let order_id = header.exact("Name")?;
    let date = header.exact("Created at")?;
    let quantity = header.exact("Lineitem quantity")?;
    let sku = header.exact("Lineitem sku");
    let product = header.exact("Lineitem name");
    sku.or(product)?;
    Some(Columns {
        date,
        quantity,
        sku,
        product,
        order_id: Some(order_id),
        location: header.exact("Location"),
        unit_price: header.exact("Lineitem price"),
        discount: header.exact("Lineitem discount"),
        currency: header.exact("Currency"),
        cancelled_at: header.exact("Cancelled at"),
        financial_status: header.exact("Financial Status"),
        ..Columns::default()
    })
}

fn square(header: &Header) -> Option<Columns> {
    let date = header.exact("Date")?;
    let product = header.exact("Item")?;
    let quantity = header.exact("Qty")?;
    // Square's export always has these two; requiring them keeps a canonical `date,item,qty` file
    // from being mistaken for Square's.
    let time = header.exact("Time")?;
    let revenue = header.exact("Net Sales").or(header.exact("Gross Sales"))?;
    Some(Columns {
        date,
        time: Some(time),
        quantity,
        product: Some(product),
        revenue: Some(revenue),
        sku: header.exact("SKU"),
        variant: header.exact("Price Point Name"),
        location: header.exact("Location"),
        order_id: header.exact("Transaction ID"),
        event_type: header.exact("Event Type"),
        ..Columns::default()
    })
}

fn canonical(header: &Header) -> Option<Columns> {
    Some(Columns {
        date: header.find(DATE_ALIASES)?,
        sku: Some(header.find(SKU_ALIASES)?),
        quantity: header.find(QUANTITY_ALIASES)?,
        location: header.find(LOCATION_ALIASES),
        unit_price: header.find(PRICE_ALIASES),
        order_id: header.find(ORDER_ALIASES),
        line_id: header.find(LINE_ALIASES),
        product: header.find(PRODUCT_ALIASES),
        currency: header.find(CURRENCY_ALIASES),
        ..Columns::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(header: &str, expected: &str) {
        let names = header.split(',').map(str::to_owned).collect();
        let got = match detect(names) {
            Ok(layout) => layout.format.name().to_owned(),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn canonical_header_is_recognised_with_aliases_in_any_case() {
        check("date,sku,quantity", "canonical");
        check("\u{feff}Day,SKU,Qty,Store,Price", "canonical");
        check(
            "invoice,ts,sku,description,quantity,unit_price,customer_id,country",
            "canonical",
        );
    }

    #[test]
    fn shopify_order_export_is_recognised() {
        check(
            "Name,Email,Financial Status,Created at,Lineitem quantity,Lineitem name,Lineitem price,Lineitem sku,Cancelled at,Location",
            "shopify_orders",
        );
    }

    #[test]
    fn square_item_sales_export_is_recognised() {
        check(
            "Date,Time,Time Zone,Category,Item,Qty,Price Point Name,SKU,Gross Sales,Net Sales,Transaction ID,Event Type,Location",
            "square_items",
        );
    }

    #[test]
    fn unknown_header_lists_what_was_looked_for() {
        check(
            "foo,bar",
            "no recognisable header: found columns [foo, bar]; expected a canonical header with date, sku, quantity, Shopify's order export (Name, Created at, Lineitem quantity, Lineitem sku) or Square's item sales export (Date, Item, Qty, SKU)",
        );
    }
}
