//! The data a simulated shop starts with: a few locations, products with variants, inventory levels and
//! orders. By default 14 hand-made orders spread over four months (some older than the 60 days
//! `read_all_orders` guards); with [`crate::SyntheticOrders`] any number of orders generated lazily from
//! a seed (see [`super::orders`]).

use chrono::{DateTime, Duration, Utc};

use super::orders::{OrderGenerator, Orders};
use crate::config::ShopSeed;

/// A shop's catalogue, stock and order history.
#[derive(Debug, Clone)]
pub struct ShopData {
    /// Physical and virtual locations.
    pub locations: Vec<LocationRow>,
    /// Products with their variants.
    pub products: Vec<ProductRow>,
    /// Stock of each inventory item at each location.
    pub inventory_levels: Vec<InventoryLevelRow>,
    /// Orders by id (ascending id is oldest first).
    pub orders: Orders,
    /// ISO 4217 currency of every amount.
    pub currency: String,
}

/// A location.
#[derive(Debug, Clone)]
pub struct LocationRow {
    /// Numeric id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// Whether the location is active.
    pub active: bool,
}

/// A product.
#[derive(Debug, Clone)]
pub struct ProductRow {
    /// Numeric id.
    pub id: u64,
    /// Title.
    pub title: String,
    /// URL handle.
    pub handle: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update.
    pub updated_at: DateTime<Utc>,
    /// Variants.
    pub variants: Vec<VariantRow>,
}

/// A product variant.
#[derive(Debug, Clone)]
pub struct VariantRow {
    /// Numeric id.
    pub id: u64,
    /// Owning product.
    pub product_id: u64,
    /// Title, e.g. `Small`.
    pub title: String,
    /// SKU, possibly empty.
    pub sku: String,
    /// Price in minor units.
    pub price_cents: i64,
    /// Inventory item id.
    pub inventory_item_id: u64,
}

/// Stock of one item at one location.
#[derive(Debug, Clone)]
pub struct InventoryLevelRow {
    /// Inventory item id.
    pub inventory_item_id: u64,
    /// Location id.
    pub location_id: u64,
    /// Available quantity.
    pub available: i64,
    /// On-hand quantity.
    pub on_hand: i64,
    /// Last update.
    pub updated_at: DateTime<Utc>,
}

/// An order.
#[derive(Debug, Clone)]
pub struct OrderRow {
    /// Numeric id (above 2^53 on purpose: clients must not go through f64).
    pub id: u64,
    /// Order number, e.g. 1001.
    pub number: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last update.
    pub updated_at: DateTime<Utc>,
    /// Sale time.
    pub processed_at: DateTime<Utc>,
    /// Cancellation time.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Test order.
    pub test: bool,
    /// `web`, `pos`, …
    pub source_name: String,
    /// POS location.
    pub location_id: Option<u64>,
    /// Line items.
    pub line_items: Vec<LineItemRow>,
    /// Refunds, oldest first (a cancellation's refund included).
    pub refunds: Vec<RefundRow>,
}

/// A line item.
#[derive(Debug, Clone)]
pub struct LineItemRow {
    /// Numeric id.
    pub id: u64,
    /// Title.
    pub title: String,
    /// SKU, possibly empty.
    pub sku: String,
    /// Ordered quantity.
    pub quantity: i64,
    /// Quantity after refunds and removals.
    pub current_quantity: i64,
    /// Variant, absent for custom items.
    pub variant_id: Option<u64>,
    /// Product, absent for custom items.
    pub product_id: Option<u64>,
    /// Unit price in minor units, before discounts.
    pub unit_price_cents: i64,
    /// Discount on each unit in minor units (the line's total discount is this times `quantity`, so
    /// every amount stays a whole number of cents).
    pub discount_per_unit_cents: i64,
    /// A gift card sale: money, not demand.
    pub gift_card: bool,
}

impl LineItemRow {
    /// The line's whole discount in minor units.
    pub fn total_discount_cents(&self) -> i64 {
        self.discount_per_unit_cents * self.quantity
    }
}

/// A refund of some units of an order.
#[derive(Debug, Clone)]
pub struct RefundRow {
    /// Numeric id.
    pub id: u64,
    /// When the refund was made.
    pub created_at: DateTime<Utc>,
    /// Refunded lines.
    pub lines: Vec<RefundLineRow>,
}

impl RefundRow {
    /// Money refunded in minor units.
    pub fn total_cents(&self) -> i64 {
        self.lines.iter().map(|line| line.subtotal_cents).sum()
    }
}

/// Units of one line item given back in a refund.
#[derive(Debug, Clone)]
pub struct RefundLineRow {
    /// Numeric id.
    pub id: u64,
    /// The refunded line item.
    pub line_item_id: u64,
    /// Units refunded.
    pub quantity: i64,
    /// What happened to the stock.
    pub restock_type: RestockType,
    /// Money refunded for these units in minor units (after the line's discount).
    pub subtotal_cents: i64,
}

/// Shopify's `RefundLineItemRestockType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestockType {
    /// Returned to stock.
    Return,
    /// Cancelled before fulfilment; back in stock.
    Cancel,
    /// Not restocked.
    NoRestock,
}

impl OrderRow {
    /// Sum of the current lines' discounted prices in minor units (after refunds and removals).
    pub fn total_cents(&self) -> i64 {
        self.line_items
            .iter()
            .map(|line| {
                (line.unit_price_cents - line.discount_per_unit_cents) * line.current_quantity
            })
            .sum()
    }

    /// Money refunded in minor units.
    pub fn refunded_cents(&self) -> i64 {
        self.refunds.iter().map(RefundRow::total_cents).sum()
    }
}

const N_ORDERS: u64 = 14;
/// 2^53: order and line-item ids start above it.
pub(crate) const ABOVE_F64_INTEGERS: u64 = 9_007_199_254_740_992;

impl ShopData {
    /// Deterministic data for `seed`, with orders placed relative to `now` (synthetic orders end at
    /// their `ends_at`, or `now` when it is not set).
    pub fn generate(seed: &ShopSeed, now: DateTime<Utc>) -> Self {
        let mut data = Self::classic(seed, now);
        if let Some(synthetic) = &seed.synthetic_orders {
            let offset = (seed.shop_id % 997) * 10_000;
            data.locations.push(LocationRow {
                id: 70_000_000_000 + offset + 3,
                name: "Harbour kiosk".into(),
                active: true,
            });
            let variants = data
                .products
                .iter()
                .flat_map(|product| product.variants.iter().cloned())
                .collect();
            let retail_locations = vec![data.locations[1].id, data.locations[2].id];
            let generator = OrderGenerator::new(
                synthetic,
                seed.shop_id,
                synthetic.ends_at.unwrap_or(now),
                variants,
                retail_locations,
            );
            data.orders = Orders::generated(generator);
        }
        data
    }

    /// The hand-made shop: two locations, three products, five variants, 14 orders.
    fn classic(seed: &ShopSeed, now: DateTime<Utc>) -> Self {
        let offset = (seed.shop_id % 997) * 10_000;
        let created = now - Duration::days(400);
        let locations = vec![
            LocationRow {
                id: 70_000_000_000 + offset + 1,
                name: "Warehouse".into(),
                active: true,
            },
            LocationRow {
                id: 70_000_000_000 + offset + 2,
                name: "Downtown store".into(),
                active: true,
            },
        ];
        let catalogue = [
            (
                "Linen shirt",
                "linen-shirt",
                &[("Small", "LS-S", 4_500), ("Large", "LS-L", 4_500)][..],
            ),
            (
                "Canvas tote",
                "canvas-tote",
                &[("Default Title", "CT-1", 1_999)][..],
            ),
            (
                "Wool socks",
                "wool-socks",
                &[("Grey", "WS-G", 1_250), ("Navy", "", 1_250)][..],
            ),
        ];
        let mut products = Vec::new();
        for (product_index, (title, handle, variants)) in catalogue.iter().enumerate() {
            let product_id = 8_000_000_000_000 + offset + product_index as u64 + 1;
            let variants = variants
                .iter()
                .enumerate()
                .map(|(variant_index, (variant_title, sku, price))| {
                    let serial = offset + (product_index as u64) * 10 + variant_index as u64 + 1;
                    VariantRow {
                        id: 40_000_000_000_000 + serial,
                        product_id,
                        title: (*variant_title).into(),
                        sku: (*sku).into(),
                        price_cents: *price,
                        inventory_item_id: 45_000_000_000_000 + serial,
                    }
                })
                .collect();
            products.push(ProductRow {
                id: product_id,
                title: (*title).into(),
                handle: (*handle).into(),
                created_at: created,
                updated_at: now - Duration::days(3),
                variants,
            });
        }
        let all_variants: Vec<&VariantRow> = products
            .iter()
            .flat_map(|product| &product.variants)
            .collect();
        let mut inventory_levels = Vec::new();
        for (variant_index, variant) in all_variants.iter().enumerate() {
            for (location_index, location) in locations.iter().enumerate() {
                let available = ((variant_index * 7 + location_index * 5) % 23) as i64;
                inventory_levels.push(InventoryLevelRow {
                    inventory_item_id: variant.inventory_item_id,
                    location_id: location.id,
                    available,
                    on_hand: available + 1,
                    updated_at: now - Duration::hours(6),
                });
            }
        }
        let mut orders = Orders::default();
        for index in 0..N_ORDERS {
            // Oldest first: order 0 is about 117 days old, the last one a few hours.
            let processed_at =
                now - Duration::days(((N_ORDERS - 1 - index) * 9) as i64) - Duration::hours(3);
            let order_id = ABOVE_F64_INTEGERS + offset + index + 1;
            let pos = index % 3 == 0;
            let n_lines = 1 + (index % 2);
            let mut line_items = Vec::new();
            for line in 0..n_lines {
                let line_id = ABOVE_F64_INTEGERS + 5_000_000 + offset + index * 10 + line + 1;
                let quantity = 1 + ((index + line) % 3) as i64;
                if index == 9 && line == 1 {
                    line_items.push(LineItemRow {
                        id: line_id,
                        title: "Gift wrapping".into(),
                        sku: String::new(),
                        quantity: 1,
                        current_quantity: 1,
                        variant_id: None,
                        product_id: None,
                        unit_price_cents: 300,
                        discount_per_unit_cents: 0,
                        gift_card: false,
                    });
                    continue;
                }
                let variant = all_variants[((index + line * 2) as usize) % all_variants.len()];
                let refunded = if index == 4 && line == 0 {
                    1.min(quantity)
                } else {
                    0
                };
                line_items.push(LineItemRow {
                    id: line_id,
                    title: variant.title.clone(),
                    sku: variant.sku.clone(),
                    quantity,
                    current_quantity: quantity - refunded,
                    variant_id: Some(variant.id),
                    product_id: Some(variant.product_id),
                    unit_price_cents: variant.price_cents,
                    discount_per_unit_cents: 0,
                    gift_card: false,
                });
            }
            let refunds = line_items
                .iter()
                .filter(|line| line.current_quantity < line.quantity)
                .map(|line| RefundRow {
                    id: ABOVE_F64_INTEGERS + 7_000_000 + offset + index * 10,
                    created_at: processed_at + Duration::minutes(30),
                    lines: vec![RefundLineRow {
                        id: ABOVE_F64_INTEGERS + 8_000_000 + offset + index * 10,
                        line_item_id: line.id,
                        quantity: line.quantity - line.current_quantity,
                        restock_type: RestockType::Return,
                        subtotal_cents: line.unit_price_cents
                            * (line.quantity - line.current_quantity),
                    }],
                })
                .collect();
            orders.insert(OrderRow {
                id: order_id,
                number: 1001 + index,
                created_at: processed_at,
                updated_at: processed_at + Duration::hours(1),
                processed_at,
                cancelled_at: (index == 5).then(|| processed_at + Duration::hours(2)),
                test: index == 7,
                source_name: if pos { "pos".into() } else { "web".into() },
                location_id: pos.then_some(locations[1].id),
                line_items,
                refunds,
            });
        }
        Self {
            locations,
            products,
            inventory_levels,
            orders,
            currency: seed.currency.clone(),
        }
    }

    /// Finds a variant by id.
    pub fn variant(&self, id: u64) -> Option<&VariantRow> {
        self.products
            .iter()
            .flat_map(|product| &product.variants)
            .find(|variant| variant.id == id)
    }

    /// Finds the variant owning an inventory item.
    pub fn variant_by_inventory_item(&self, inventory_item_id: u64) -> Option<&VariantRow> {
        self.products
            .iter()
            .flat_map(|product| &product.variants)
            .find(|variant| variant.inventory_item_id == inventory_item_id)
    }
}

/// Formats minor units as Shopify's `Decimal`: shortest form with at least one decimal (`81.3`, `12.0`).
pub fn decimal(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    let (units, fraction) = (cents / 100, cents % 100);
    let fraction = if fraction % 10 == 0 {
        format!("{}", fraction / 10)
    } else {
        format!("{fraction:02}")
    };
    format!("{sign}{units}.{fraction}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_shortest_with_one_fraction_digit_at_least() {
        assert_eq!(decimal(8130), "81.3");
        assert_eq!(decimal(1200), "12.0");
        assert_eq!(decimal(1999), "19.99");
        assert_eq!(decimal(5), "0.05");
    }

    #[test]
    fn order_ids_exceed_the_integers_an_f64_holds_exactly() {
        let data = ShopData::generate(&ShopSeed::new("acme.myshopify.com"), Utc::now());
        assert!(
            data.orders
                .iter()
                .all(|order| order.id > ABOVE_F64_INTEGERS)
        );
    }
}
