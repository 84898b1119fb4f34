//! A shop's orders: stored rows (hand-made, added or edited ones) over an optional lazy generator, so a
//! shop can hold a million orders while only its edits sit in memory.
//!
//! Generated orders follow the shapes Shopify documents for `Order`, `LineItem` and `Refund`: POS orders
//! carry a retail location and web orders none; some lines have no SKU, some no variant or product
//! (custom items), some are gift cards; discounts are per unit; refunds lower `currentQuantity`; a
//! cancelled order has its lines removed (`currentQuantity` 0) and a refund with restock type `CANCEL`;
//! about one order in a hundred is a test order.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

use super::seed::{
    ABOVE_F64_INTEGERS, LineItemRow, OrderRow, RefundLineRow, RefundRow, RestockType, VariantRow,
};
use crate::config::SyntheticOrders;

/// Generated order ids are `base + 1 + STRIDE × index`: increasing, but not consecutive, like Shopify's.
const STRIDE: u64 = 3;
/// Line items (and refund lines) per order reserve this many ids.
const LINES_PER_ORDER: u64 = 8;

/// Every order of a shop, by id.
#[derive(Debug, Clone, Default)]
pub struct Orders {
    generator: Option<Arc<OrderGenerator>>,
    /// Hand-made, added and edited orders; an entry replaces the generated order with the same id.
    rows: BTreeMap<u64, OrderRow>,
}

impl Orders {
    /// Orders produced by `generator` on demand.
    pub(crate) fn generated(generator: OrderGenerator) -> Self {
        Self {
            generator: Some(Arc::new(generator)),
            rows: BTreeMap::new(),
        }
    }

    /// Stores `order`, replacing any order with its id.
    pub fn insert(&mut self, order: OrderRow) {
        self.rows.insert(order.id, order);
    }

    /// How many orders there are.
    pub fn len(&self) -> u64 {
        let generated = self
            .generator
            .as_ref()
            .map_or(0, |generator| generator.n_orders);
        let extra = self
            .rows
            .keys()
            .filter(|id| !self.is_generated(**id))
            .count() as u64;
        generated + extra
    }

    /// Whether the shop has no orders.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn is_generated(&self, id: u64) -> bool {
        self.generator
            .as_ref()
            .is_some_and(|generator| generator.index_of(id).is_some())
    }

    /// The order with `id`.
    pub fn get(&self, id: u64) -> Option<OrderRow> {
        if let Some(row) = self.rows.get(&id) {
            return Some(row.clone());
        }
        let generator = self.generator.as_ref()?;
        generator.index_of(id).map(|index| generator.order(index))
    }

    /// Every order, ascending id.
    pub fn iter(&self) -> impl Iterator<Item = OrderRow> + '_ {
        self.iter_from(None, false)
    }

    /// Orders with ids after `after` (before it when `descending`), in id order.
    pub fn iter_from(
        &self,
        after: Option<u64>,
        descending: bool,
    ) -> Box<dyn Iterator<Item = OrderRow> + '_> {
        let generated: Box<dyn Iterator<Item = u64> + '_> = match &self.generator {
            None => Box::new(std::iter::empty()),
            Some(generator) => {
                let range = generator.index_range(after, descending);
                let generator = Arc::clone(generator);
                if descending {
                    Box::new(range.rev().map(move |index| generator.id(index)))
                } else {
                    Box::new(range.map(move |index| generator.id(index)))
                }
            }
        };
        let stored: Box<dyn Iterator<Item = u64> + '_> = match (after, descending) {
            (None, false) => Box::new(self.rows.keys().copied()),
            (None, true) => Box::new(self.rows.keys().rev().copied()),
            (Some(after), false) => Box::new(
                self.rows
                    .range(after.saturating_add(1)..)
                    .map(|(id, _)| *id),
            ),
            (Some(after), true) => Box::new(self.rows.range(..after).rev().map(|(id, _)| *id)),
        };
        let ids = merge_ids(generated, stored, descending);
        Box::new(ids.filter_map(move |id| self.get(id)))
    }

    /// The id a newly placed order gets: above every existing one.
    pub fn next_id(&self) -> u64 {
        let generated = self
            .generator
            .as_ref()
            .map_or(0, |generator| generator.id(generator.n_orders));
        let stored = self.rows.keys().next_back().map_or(0, |id| id + STRIDE);
        generated
            .max(stored)
            .max(ABOVE_F64_INTEGERS + 900_000_000_001)
    }

    /// A new order placed at `now`, numbered after the others: a copy of the last generated order's lines
    /// (new ids, nothing refunded), or no lines without a generator.
    pub fn template(&self, now: DateTime<Utc>) -> OrderRow {
        let id = self.next_id();
        let number = 1001 + self.len();
        let mut order = match &self.generator {
            Some(generator) => {
                let mut order = generator.order(generator.n_orders.saturating_sub(1));
                order.cancelled_at = None;
                order.test = false;
                order.refunds.clear();
                for (line, row) in order.line_items.iter_mut().enumerate() {
                    row.id = ABOVE_F64_INTEGERS * 4
                        + (id - ABOVE_F64_INTEGERS) * LINES_PER_ORDER
                        + line as u64;
                    row.current_quantity = row.quantity;
                }
                order
            }
            None => OrderRow {
                id,
                number,
                created_at: now,
                updated_at: now,
                processed_at: now,
                cancelled_at: None,
                test: false,
                source_name: "web".into(),
                location_id: None,
                line_items: Vec::new(),
                refunds: Vec::new(),
            },
        };
        order.id = id;
        order.number = number;
        order.created_at = now;
        order.updated_at = now;
        order.processed_at = now;
        order
    }
}

/// Merges two id streams sorted the same way, an id present in both once.
fn merge_ids<'a>(
    left: Box<dyn Iterator<Item = u64> + 'a>,
    right: Box<dyn Iterator<Item = u64> + 'a>,
    descending: bool,
) -> impl Iterator<Item = u64> + 'a {
    let mut left = left.peekable();
    let mut right = right.peekable();
    std::iter::from_fn(
        move || match (left.peek().copied(), right.peek().copied()) {
            (Some(a), Some(b)) if a == b => {
                left.next();
                right.next()
            }
            (Some(a), Some(b)) => {
                if (a < b) != descending {
                    left.next()
                } else {
                    right.next()
                }
            }
            (Some(_), None) => left.next(),
            (None, _) => right.next(),
        },
    )
}

/// SplitMix64: a tiny, stable generator, so the same seed gives the same orders on every platform and
/// with every version of our dependencies.
#[derive(Debug, Clone)]
pub(crate) struct Draw(u64);

impl Draw {
    pub(crate) fn new(seed: u64, index: u64, salt: u64) -> Self {
        let mut draw = Self(
            seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03),
        );
        draw.next();
        draw
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// True `per_mille` times in a thousand.
    pub(crate) fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// Makes order `index` of a synthetic shop from `(seed, index)` alone.
#[derive(Debug)]
pub(crate) struct OrderGenerator {
    seed: u64,
    n_orders: u64,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    span_seconds: i64,
    id_base: u64,
    line_base: u64,
    refund_base: u64,
    refund_line_base: u64,
    variants: Vec<VariantRow>,
    retail_locations: Vec<u64>,
}

impl OrderGenerator {
    pub(crate) fn new(
        settings: &SyntheticOrders,
        shop_id: u64,
        ends_at: DateTime<Utc>,
        variants: Vec<VariantRow>,
        retail_locations: Vec<u64>,
    ) -> Self {
        let span_seconds = i64::from(settings.days.max(1)) * 86_400;
        // Ids differ between shops and stay well apart for up to 10^9 orders; all exceed 2^53.
        let shop = (shop_id % 997) * 10_000_000_000_000;
        Self {
            seed: settings.seed,
            n_orders: settings.n_orders,
            starts_at: ends_at - Duration::seconds(span_seconds),
            ends_at,
            span_seconds,
            id_base: ABOVE_F64_INTEGERS + shop,
            line_base: ABOVE_F64_INTEGERS * 2 + shop * LINES_PER_ORDER,
            refund_base: ABOVE_F64_INTEGERS + 5_000_000_000_000_000 + shop,
            refund_line_base: ABOVE_F64_INTEGERS * 3 + shop * LINES_PER_ORDER,
            variants,
            retail_locations,
        }
    }

    pub(crate) fn id(&self, index: u64) -> u64 {
        self.id_base + 1 + STRIDE * index
    }

    pub(crate) fn index_of(&self, id: u64) -> Option<u64> {
        let offset = id.checked_sub(self.id_base + 1)?;
        (offset % STRIDE == 0 && offset / STRIDE < self.n_orders).then_some(offset / STRIDE)
    }

    /// Indexes of the orders after `after` in the given direction.
    fn index_range(&self, after: Option<u64>, descending: bool) -> std::ops::Range<u64> {
        let Some(after) = after else {
            return 0..self.n_orders;
        };
        let first = self.id_base + 1;
        if descending {
            // Indexes whose id is below `after`.
            let end = if after <= first {
                0
            } else {
                (after - first).div_ceil(STRIDE).min(self.n_orders)
            };
            0..end
        } else {
            let start = if after < first {
                0
            } else {
                ((after - first) / STRIDE + 1).min(self.n_orders)
            };
            start..self.n_orders
        }
    }

    pub(crate) fn order(&self, index: u64) -> OrderRow {
        let mut draw = Draw::new(self.seed, index, 1);
        // Sale times grow with the index (so id order is time order), with jitter inside each step.
        let step = (self.span_seconds / self.n_orders.max(1) as i64).max(1);
        let processed_at = self.starts_at
            + Duration::seconds(
                (i128::from(index) * i128::from(self.span_seconds)
                    / i128::from(self.n_orders.max(1))) as i64
                    + draw.below(step as u64) as i64,
            );
        let created_at = processed_at + Duration::seconds(draw.below(90) as i64);
        let pos = draw.chance(250) && !self.retail_locations.is_empty();
        let location_id = pos.then(|| {
            self.retail_locations[draw.below(self.retail_locations.len() as u64) as usize]
        });
        let test = draw.chance(10);
        let cancelled = !test && draw.chance(30);
        let n_lines = match draw.below(10) {
            0..=4 => 1,
            5..=7 => 2,
            8 => 3,
            _ => 4,
        };
        let mut line_items = Vec::new();
        for line in 0..n_lines {
            let id = self.line_base + index * LINES_PER_ORDER + line;
            let quantity = match draw.below(20) {
                0..=11 => 1,
                12..=16 => 2,
                17 | 18 => 3,
                _ => 4 + draw.below(3) as i64,
            };
            let kind = draw.below(100);
            let row = if kind < 2 {
                LineItemRow {
                    id,
                    title: "Gift card".into(),
                    sku: String::new(),
                    quantity,
                    current_quantity: quantity,
                    variant_id: None,
                    product_id: None,
                    unit_price_cents: [2_500, 5_000, 10_000][draw.below(3) as usize],
                    discount_per_unit_cents: 0,
                    gift_card: true,
                }
            } else if kind < 5 || self.variants.is_empty() {
                LineItemRow {
                    id,
                    title: "Custom engraving".into(),
                    sku: String::new(),
                    quantity,
                    current_quantity: quantity,
                    variant_id: None,
                    product_id: None,
                    unit_price_cents: 500 + 50 * draw.below(20) as i64,
                    discount_per_unit_cents: 0,
                    gift_card: false,
                }
            } else {
                let variant = &self.variants[draw.below(self.variants.len() as u64) as usize];
                let discount_per_unit_cents = if draw.chance(200) {
                    variant.price_cents * [10, 15, 20][draw.below(3) as usize] / 100
                } else {
                    0
                };
                LineItemRow {
                    id,
                    title: variant.title.clone(),
                    sku: variant.sku.clone(),
                    quantity,
                    current_quantity: quantity,
                    variant_id: Some(variant.id),
                    product_id: Some(variant.product_id),
                    unit_price_cents: variant.price_cents,
                    discount_per_unit_cents,
                    gift_card: false,
                }
            };
            line_items.push(row);
        }
        let mut updated_at = created_at + Duration::minutes(1 + draw.below(120) as i64);
        let mut refunds = Vec::new();
        let mut refund_lines = 0;
        let cancelled_at =
            cancelled.then(|| created_at + Duration::minutes(10 + draw.below(48 * 60) as i64));
        if let Some(cancelled_at) = cancelled_at {
            let lines = line_items
                .iter_mut()
                .map(|line| {
                    let quantity = line.current_quantity;
                    line.current_quantity = 0;
                    refund_lines += 1;
                    RefundLineRow {
                        id: self.refund_line_base + index * LINES_PER_ORDER + refund_lines,
                        line_item_id: line.id,
                        quantity,
                        restock_type: RestockType::Cancel,
                        subtotal_cents: (line.unit_price_cents - line.discount_per_unit_cents)
                            * quantity,
                    }
                })
                .collect();
            refunds.push(RefundRow {
                id: self.refund_base + index * 2,
                created_at: cancelled_at,
                lines,
            });
            updated_at = updated_at.max(cancelled_at);
        } else {
            let n_refunds = match draw.below(1000) {
                0..=79 => 1,
                80..=99 => 2,
                _ => 0,
            };
            for refund in 0..n_refunds {
                let candidates: Vec<usize> = line_items
                    .iter()
                    .enumerate()
                    .filter(|(_, line)| !line.gift_card && line.current_quantity > 0)
                    .map(|(position, _)| position)
                    .collect();
                if candidates.is_empty() {
                    break;
                }
                let line =
                    &mut line_items[candidates[draw.below(candidates.len() as u64) as usize]];
                let quantity = 1 + draw.below(line.current_quantity as u64) as i64;
                line.current_quantity -= quantity;
                refund_lines += 1;
                let created = (processed_at + Duration::hours(2 + draw.below(20 * 24) as i64))
                    .min(self.ends_at - Duration::seconds(1))
                    .max(created_at);
                refunds.push(RefundRow {
                    id: self.refund_base + index * 2 + refund,
                    created_at: created,
                    lines: vec![RefundLineRow {
                        id: self.refund_line_base + index * LINES_PER_ORDER + refund_lines,
                        line_item_id: line.id,
                        quantity,
                        restock_type: if draw.chance(700) {
                            RestockType::Return
                        } else {
                            RestockType::NoRestock
                        },
                        subtotal_cents: (line.unit_price_cents - line.discount_per_unit_cents)
                            * quantity,
                    }],
                });
                updated_at = updated_at.max(created);
            }
        }
        OrderRow {
            id: self.id(index),
            number: 1001 + index,
            created_at,
            updated_at,
            processed_at,
            cancelled_at,
            test,
            source_name: if pos { "pos".into() } else { "web".into() },
            location_id,
            line_items,
            refunds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(n_orders: u64) -> OrderGenerator {
        let variant = VariantRow {
            id: 1,
            product_id: 2,
            title: "Small".into(),
            sku: "S".into(),
            price_cents: 1_000,
            inventory_item_id: 3,
        };
        OrderGenerator::new(
            &SyntheticOrders::new(7, n_orders),
            60_000_000_001,
            DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z")
                .unwrap()
                .to_utc(),
            vec![variant],
            vec![10, 11],
        )
    }

    #[test]
    fn the_same_index_gives_the_same_order() {
        let generator = generator(1_000);
        let first = generator.order(123);
        let again = generator.order(123);
        assert_eq!(format!("{first:?}"), format!("{again:?}"));
    }

    #[test]
    fn ids_round_trip_and_exceed_f64_integers() {
        let generator = generator(1_000);
        for index in [0, 1, 999] {
            let id = generator.id(index);
            assert!(id > ABOVE_F64_INTEGERS);
            assert_eq!(generator.index_of(id), Some(index));
        }
        assert_eq!(generator.index_of(generator.id(0) + 1), None);
        assert_eq!(generator.index_of(generator.id(1_000)), None);
    }

    #[test]
    fn paging_by_id_in_both_directions_visits_every_order_once() {
        let mut orders = Orders::generated(generator(50));
        let mut edited = orders.get(generator(50).id(10)).unwrap();
        edited.test = true;
        orders.insert(edited);
        let forward: Vec<u64> = orders.iter().map(|order| order.id).collect();
        assert_eq!(forward.len(), 50);
        assert!(forward.windows(2).all(|pair| pair[0] < pair[1]));
        let mut backward: Vec<u64> = orders
            .iter_from(Some(u64::MAX), true)
            .map(|order| order.id)
            .collect();
        backward.reverse();
        assert_eq!(forward, backward);
        let after: Vec<u64> = orders
            .iter_from(Some(forward[9]), false)
            .map(|order| order.id)
            .collect();
        assert_eq!(after, forward[10..]);
        assert!(orders.get(forward[10]).unwrap().test);
    }

    #[test]
    fn refunds_and_cancellations_lower_current_quantity_to_match() {
        let generator = generator(5_000);
        let (mut n_refunded, mut n_cancelled) = (0, 0);
        for index in 0..5_000 {
            let order = generator.order(index);
            for line in &order.line_items {
                let refunded: i64 = order
                    .refunds
                    .iter()
                    .flat_map(|refund| &refund.lines)
                    .filter(|refund_line| refund_line.line_item_id == line.id)
                    .map(|refund_line| refund_line.quantity)
                    .sum();
                assert_eq!(line.quantity - refunded, line.current_quantity);
            }
            n_refunded += usize::from(!order.refunds.is_empty() && order.cancelled_at.is_none());
            n_cancelled += usize::from(order.cancelled_at.is_some());
            assert!(order.updated_at >= order.created_at);
        }
        assert!(
            n_refunded > 100 && n_cancelled > 50,
            "{n_refunded} {n_cancelled}"
        );
    }
}
