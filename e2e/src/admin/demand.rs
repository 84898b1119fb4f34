//! Ground truth for sync tests: the demand a correct importer must find in a shop's orders.
//!
//! The rule is the one the product's REST order path applies (`backend::shopify::order::order_version`),
//! so a bulk (GraphQL) import and a webhook import of the same orders must agree with it:
//! - an order's sales fall on the **shop-local day** of `processedAt` (`createdAt` when absent) in the
//!   shop's `ianaTimezone`;
//! - **test** orders and **cancelled** orders sell nothing; **gift card** lines are money, not demand;
//! - units are the line's **`currentQuantity`** (after refunds and removals);
//! - revenue is `units × (unit price − line discount / quantity)`; the simulator's discounts are whole
//!   cents per unit, so revenue is exact in cents;
//! - the key is the line's SKU (trimmed); without one `variant-{id}`, then `product-{id}`, then
//!   `line-{id}` (ids as decimal text, from the GID's number);
//! - the location is the order's POS `retailLocation` (REST `location_id`), `None` for web orders.
//!
//! Cells whose units and revenue are both zero are left out (the backend may keep zero rows for
//! refunded or voided lines).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::seed::{LineItemRow, OrderRow};

/// Where and when demand happened.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DemandKey {
    /// Shop-local day of the sale.
    pub day: NaiveDate,
    /// SKU, or the `variant-…`/`product-…`/`line-…` fallback.
    pub sku: String,
    /// POS location id; `None` for online sales.
    pub location: Option<u64>,
}

/// Units sold and money taken in one cell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// Units after refunds.
    pub units: i64,
    /// Revenue after discounts and refunds, in minor units.
    pub revenue_cents: i64,
}

/// The demand key of a line: its SKU, else `variant-{id}`, `product-{id}`, `line-{id}`.
pub fn demand_sku(line: &LineItemRow) -> String {
    let sku = line.sku.trim();
    if !sku.is_empty() {
        return sku.to_owned();
    }
    match (line.variant_id, line.product_id) {
        (Some(variant), _) => format!("variant-{variant}"),
        (None, Some(product)) => format!("product-{product}"),
        (None, None) => format!("line-{}", line.id),
    }
}

/// Expected daily demand of `orders` in `timezone` (see the module documentation for the rule).
pub fn daily_demand(
    orders: impl IntoIterator<Item = OrderRow>,
    timezone: Tz,
) -> BTreeMap<DemandKey, Demand> {
    let mut demand: BTreeMap<DemandKey, Demand> = BTreeMap::new();
    for order in orders {
        if order.test || order.cancelled_at.is_some() {
            continue;
        }
        let day = order.processed_at.with_timezone(&timezone).date_naive();
        for line in order.line_items.iter().filter(|line| !line.gift_card) {
            let units = line.current_quantity.max(0);
            let revenue_cents = units * (line.unit_price_cents - line.discount_per_unit_cents);
            if units == 0 && revenue_cents == 0 {
                continue;
            }
            let cell = demand
                .entry(DemandKey {
                    day,
                    sku: demand_sku(line),
                    location: order.location_id,
                })
                .or_default();
            cell.units += units;
            cell.revenue_cents += revenue_cents;
        }
    }
    demand
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::admin::seed::{RefundRow, ShopData};

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn line(id: u64, sku: &str, quantity: i64, current: i64) -> LineItemRow {
        LineItemRow {
            id,
            title: "Tee".into(),
            sku: sku.into(),
            quantity,
            current_quantity: current,
            variant_id: Some(44),
            product_id: Some(33),
            unit_price_cents: 2_000,
            discount_per_unit_cents: 200,
            gift_card: false,
        }
    }

    fn order(processed_at: &str, lines: Vec<LineItemRow>) -> OrderRow {
        OrderRow {
            id: 1,
            number: 1001,
            created_at: at(processed_at),
            updated_at: at(processed_at),
            processed_at: at(processed_at),
            cancelled_at: None,
            test: false,
            source_name: "web".into(),
            location_id: None,
            line_items: lines,
            refunds: Vec::<RefundRow>::new(),
        }
    }

    #[track_caller]
    fn check(orders: Vec<OrderRow>, timezone: &str, expected: &str) {
        let got = daily_demand(orders, timezone.parse().unwrap())
            .into_iter()
            .map(|(key, cell)| {
                format!(
                    "{} {} {:?} {} {}",
                    key.day, key.sku, key.location, cell.units, cell.revenue_cents
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        assert_eq!(got, expected);
    }

    #[test]
    fn sales_fall_on_the_shop_local_day_after_refunds_and_discounts() {
        let sale = order(
            "2026-03-02T03:30:00Z",
            vec![line(1, "TEE-1", 3, 2), line(2, " ", 1, 1)],
        );
        check(
            vec![sale.clone()],
            "UTC",
            "2026-03-02 TEE-1 None 2 3600; 2026-03-02 variant-44 None 1 1800",
        );
        check(
            vec![sale],
            "America/New_York",
            "2026-03-01 TEE-1 None 2 3600; 2026-03-01 variant-44 None 1 1800",
        );
    }

    #[test]
    fn test_cancelled_gift_card_and_fully_refunded_lines_count_nothing() {
        let mut test = order("2026-03-02T12:00:00Z", vec![line(1, "A", 1, 1)]);
        test.test = true;
        let mut cancelled = order("2026-03-02T12:00:00Z", vec![line(2, "B", 1, 1)]);
        cancelled.cancelled_at = Some(at("2026-03-03T12:00:00Z"));
        let mut gift = line(3, "GIFT", 1, 1);
        gift.gift_card = true;
        let rest = order("2026-03-02T12:00:00Z", vec![gift, line(4, "C", 2, 0)]);
        check(vec![test, cancelled, rest], "UTC", "");
    }

    #[test]
    fn pos_sales_are_keyed_by_location_and_custom_items_by_line() {
        let mut custom = line(9, "", 1, 1);
        custom.variant_id = None;
        custom.product_id = None;
        let mut pos = order("2026-03-02T12:00:00Z", vec![custom]);
        pos.location_id = Some(70);
        check(vec![pos], "UTC", "2026-03-02 line-9 Some(70) 1 1800");
    }

    #[test]
    fn the_hand_made_shop_has_demand_on_its_non_void_days() {
        let data = ShopData::generate(
            &crate::ShopSeed::new("acme.myshopify.com"),
            at("2026-06-01T00:00:00Z"),
        );
        let demand = daily_demand(data.orders.iter(), Tz::America__New_York);
        let units: i64 = demand.values().map(|cell| cell.units).sum();
        assert!(units > 0);
        assert!(demand.keys().all(|key| !key.sku.is_empty()));
    }
}
