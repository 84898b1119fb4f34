//! Shopify's REST order payload (webhooks `orders/*`) as an [`OrderVersion`]: one daily-sales line per
//! line item, dated by `processed_at` in the shop's time zone, with units after refunds and edits.
//!
//! Follows shopify.dev "Order" (REST Admin API resource, as webhooks carry it): ids are integers
//! beyond 2^53 (read as text, never through f64), money amounts are decimal strings, `test` orders
//! and gift cards are not demand, a cancelled order sells nothing.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::id_text;

use crate::domain::{
    IdentityScheme, InvalidValue, LineIdentity, Location, OrderVersion, SalesLine, Sku, Timezone,
};

/// An order reduced to what demand needs, whichever API it came from (REST payloads here, GraphQL
/// rows in [`super::bulk`]): both become sales lines through [`version_of`], so a webhook and a bulk
/// row for the same order version give the same lines.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderParts {
    /// The order id, digits.
    pub order_id: String,
    /// Its `updated_at`.
    pub updated_at: DateTime<Utc>,
    /// When it sold: `processed_at`, else `created_at`.
    pub sold_at: DateTime<Utc>,
    /// Cancelled or test: sells nothing.
    pub void: bool,
    /// The POS location id, digits.
    pub location_id: Option<String>,
    /// Its line items.
    pub lines: Vec<LineParts>,
}

/// A line item reduced to what demand needs.
#[derive(Debug, Clone, PartialEq)]
pub struct LineParts {
    /// The line item id, digits.
    pub line_id: String,
    /// The SKU as sold (may be empty).
    pub sku: Option<String>,
    /// The variant id, digits.
    pub variant_id: Option<String>,
    /// The product id, digits.
    pub product_id: Option<String>,
    /// The line's title.
    pub title: Option<String>,
    /// Units ordered.
    pub quantity: f64,
    /// Units after refunds and edits, when the payload says.
    pub current_quantity: Option<f64>,
    /// Units refunded (used only without `current_quantity`).
    pub refunded: f64,
    /// Unit price before discounts.
    pub price: f64,
    /// Discount over the whole line.
    pub discount: f64,
    /// A gift card: not demand.
    pub gift_card: bool,
}

/// Reads an order payload.
///
/// # Errors
/// When `id`, `updated_at` or the sale time is missing or malformed.
pub fn order_version(
    payload: &Value,
    shop: &str,
    timezone: Timezone,
    identity: IdentityScheme,
) -> Result<OrderVersion, InvalidValue> {
    version_of(&order_parts(payload)?, shop, timezone, identity)
}

/// The parts of a REST order payload.
///
/// # Errors
/// As [`order_version`].
pub fn order_parts(payload: &Value) -> Result<OrderParts, InvalidValue> {
    let order_id = id_text(payload.get("id"))
        .ok_or_else(|| InvalidValue::new("order payload without an id"))?;
    let updated_at = time(payload, "updated_at")?
        .ok_or_else(|| InvalidValue::new("order payload without updated_at"))?;
    let sold_at = match time(payload, "processed_at")? {
        Some(time) => time,
        None => time(payload, "created_at")?
            .ok_or_else(|| InvalidValue::new("order payload without processed_at or created_at"))?,
    };
    let void = payload.get("test").and_then(Value::as_bool) == Some(true)
        || payload
            .get("cancelled_at")
            .is_some_and(|value| !value.is_null());
    let refunded = refunded_quantities(payload);
    let mut lines = Vec::new();
    for item in payload
        .get("line_items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(line_id) = id_text(item.get("id")) else {
            return Err(InvalidValue::new("line item without an id"));
        };
        lines.push(LineParts {
            sku: item.get("sku").and_then(Value::as_str).map(str::to_owned),
            variant_id: id_text(item.get("variant_id")),
            product_id: id_text(item.get("product_id")),
            title: item.get("title").and_then(Value::as_str).map(str::to_owned),
            quantity: item.get("quantity").and_then(Value::as_f64).unwrap_or(0.0),
            current_quantity: item.get("current_quantity").and_then(Value::as_f64),
            refunded: refunded.get(&line_id).copied().unwrap_or(0.0),
            price: money(item.get("price")),
            discount: money(item.get("total_discount")),
            gift_card: item.get("gift_card").and_then(Value::as_bool) == Some(true),
            line_id,
        });
    }
    Ok(OrderParts {
        order_id,
        updated_at,
        sold_at,
        void,
        location_id: id_text(payload.get("location_id")),
        lines,
    })
}

/// The sales lines of an order: one per line item but gift cards, dated by the sale time in the
/// shop's zone, with units after refunds and edits (none when void) and revenue after discounts.
///
/// # Errors
/// When a SKU or location cannot be named.
pub fn version_of(
    parts: &OrderParts,
    shop: &str,
    timezone: Timezone,
    identity: IdentityScheme,
) -> Result<OrderVersion, InvalidValue> {
    let date = parts.sold_at.with_timezone(&timezone.tz()).date_naive();
    let location = match &parts.location_id {
        Some(id) => super::catalogue::location_of(id)?,
        None => Location::default(),
    };
    let mut lines = Vec::with_capacity(parts.lines.len());
    for item in &parts.lines {
        if item.gift_card {
            continue;
        }
        let units = if parts.void {
            0.0
        } else {
            item.current_quantity
                .unwrap_or(item.quantity - item.refunded)
                .max(0.0)
        };
        let discount_per_unit = if item.quantity > 0.0 {
            item.discount / item.quantity
        } else {
            0.0
        };
        lines.push(SalesLine {
            identity: LineIdentity::of(
                identity,
                &[b"shopify-line", shop.as_bytes(), item.line_id.as_bytes()],
            ),
            date,
            sku: sku_of(item)?,
            location: location.clone(),
            product: item.title.clone(),
            units,
            revenue: units * (item.price - discount_per_unit),
        });
    }
    Ok(OrderVersion {
        order_id: parts.order_id.clone(),
        updated_at: parts.updated_at,
        lines,
    })
}

/// Demand is keyed by SKU; a line without one falls back to its variant, then product, then line.
fn sku_of(item: &LineParts) -> Result<Sku, InvalidValue> {
    if let Some(sku) = item
        .sku
        .as_deref()
        .map(str::trim)
        .filter(|sku| !sku.is_empty())
    {
        return Sku::parse(sku);
    }
    let fallback = item
        .variant_id
        .as_ref()
        .map(|id| format!("variant-{id}"))
        .or_else(|| item.product_id.as_ref().map(|id| format!("product-{id}")))
        .unwrap_or_else(|| format!("line-{}", item.line_id));
    Sku::parse(&fallback)
}

/// Units refunded per line item id over the order's `refunds`.
fn refunded_quantities(payload: &Value) -> std::collections::HashMap<String, f64> {
    let mut refunded = std::collections::HashMap::new();
    for refund in payload
        .get("refunds")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for item in refund
            .get("refund_line_items")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(line_id) = id_text(item.get("line_item_id")) {
                *refunded.entry(line_id).or_insert(0.0) +=
                    item.get("quantity").and_then(Value::as_f64).unwrap_or(0.0);
            }
        }
    }
    refunded
}

/// A money amount: REST's `"81.30"`, GraphQL's `"81.3"` or a bare number.
pub fn money(value: Option<&Value>) -> f64 {
    match value {
        Some(Value::String(text)) => text.parse().unwrap_or(0.0),
        Some(Value::Number(number)) => number.as_f64().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn time(payload: &Value, field: &str) -> Result<Option<DateTime<Utc>>, InvalidValue> {
    match payload.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => DateTime::parse_from_rfc3339(text)
            .map(|time| Some(time.with_timezone(&Utc)))
            .map_err(|_| InvalidValue::new(format!("{field} \"{text}\" is not an RFC 3339 time"))),
        Some(other) => Err(InvalidValue::new(format!("{field} {other} is not a time"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn order(extra: Value) -> Value {
        let mut base = json!({
            "id": 5_001_122_334_455_667_u64,
            "updated_at": "2026-03-02T10:00:00-05:00",
            "processed_at": "2026-03-01T23:30:00-05:00",
            "test": false,
            "cancelled_at": null,
            "line_items": [
                {"id": 9_007_199_254_740_993_u64, "sku": "TEE-1", "quantity": 3, "price": "20.00",
                 "total_discount": "6.00", "title": "Tee", "gift_card": false},
                {"id": 2, "sku": "", "variant_id": 77, "quantity": 1, "price": "5.00", "gift_card": false},
                {"id": 3, "sku": "CARD", "quantity": 1, "price": "50.00", "gift_card": true}
            ]
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        base
    }

    #[track_caller]
    fn check(payload: Value, timezone: &str, expected: &str) {
        let got = match order_version(
            &payload,
            "acme.myshopify.com",
            Timezone::parse(timezone).unwrap(),
            IdentityScheme::default(),
        ) {
            Ok(version) => version
                .lines
                .iter()
                .map(|line| {
                    format!(
                        "{} {} {} {}",
                        line.date,
                        line.sku.as_str(),
                        line.units,
                        line.revenue
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            Err(error) => error.to_string(),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn lines_are_dated_in_the_shop_zone_with_discounts_and_sku_fallbacks() {
        check(
            order(json!({})),
            "UTC",
            "2026-03-02 TEE-1 3 54; 2026-03-02 variant-77 1 5",
        );
        check(
            order(json!({})),
            "America/New_York",
            "2026-03-01 TEE-1 3 54; 2026-03-01 variant-77 1 5",
        );
    }

    #[test]
    fn refunds_and_current_quantity_reduce_units() {
        let refunded = json!({"refunds": [{"refund_line_items": [{"line_item_id": 9_007_199_254_740_993_u64, "quantity": 2}]}]});
        check(
            order(refunded),
            "UTC",
            "2026-03-02 TEE-1 1 18; 2026-03-02 variant-77 1 5",
        );
        let mut edited = order(json!({}));
        edited["line_items"][1]["current_quantity"] = json!(0);
        check(
            edited,
            "UTC",
            "2026-03-02 TEE-1 3 54; 2026-03-02 variant-77 0 0",
        );
    }

    #[test]
    fn cancelled_and_test_orders_sell_nothing() {
        check(
            order(json!({"cancelled_at": "2026-03-03T00:00:00Z"})),
            "UTC",
            "2026-03-02 TEE-1 0 0; 2026-03-02 variant-77 0 0",
        );
        check(
            order(json!({"test": true})),
            "UTC",
            "2026-03-02 TEE-1 0 0; 2026-03-02 variant-77 0 0",
        );
    }

    #[test]
    fn big_ids_are_read_exactly_and_bad_payloads_name_the_field() {
        let version = order_version(
            &order(json!({})),
            "s",
            Timezone::default(),
            IdentityScheme::default(),
        )
        .unwrap();
        assert_eq!(version.order_id, "5001122334455667");
        check(
            json!({"updated_at": "2026-03-02T10:00:00Z"}),
            "UTC",
            "order payload without an id",
        );
        check(
            order(json!({"updated_at": "yesterday"})),
            "UTC",
            "updated_at \"yesterday\" is not an RFC 3339 time",
        );
    }
}
