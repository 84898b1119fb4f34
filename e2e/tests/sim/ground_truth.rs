//! The ground truth agrees with the product's REST order reading and can be rebuilt from a bulk download.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use ordernimbus_backend::domain::{IdentityScheme, Timezone};
use ordernimbus_backend::shopify::order::order_version;
use ordernimbus_e2e::{Demand, DemandKey, OrderRow};
use serde_json::{Value, json};

use crate::bulk::{ORDERS_QUERY, synthetic_shop};
use crate::support::SHOP;

fn two_decimals(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The order as an `orders/updated` webhook carries it (REST shape).
fn rest_payload(order: &OrderRow) -> Value {
    let shop_time = |at: chrono::DateTime<chrono::Utc>| {
        at.with_timezone(&chrono_tz::America::New_York).to_rfc3339()
    };
    json!({
        "id": order.id,
        "name": format!("#{}", order.number),
        "created_at": shop_time(order.created_at),
        "updated_at": shop_time(order.updated_at),
        "processed_at": shop_time(order.processed_at),
        "cancelled_at": order.cancelled_at.map(shop_time),
        "test": order.test,
        "source_name": order.source_name,
        "location_id": order.location_id,
        "line_items": order.line_items.iter().map(|line| json!({
            "id": line.id,
            "variant_id": line.variant_id,
            "product_id": line.product_id,
            "sku": line.sku,
            "title": line.title,
            "quantity": line.quantity,
            "current_quantity": line.current_quantity,
            "price": two_decimals(line.unit_price_cents),
            "total_discount": two_decimals(line.total_discount_cents()),
            "gift_card": line.gift_card,
        })).collect::<Vec<_>>(),
        "refunds": order.refunds.iter().map(|refund| json!({
            "id": refund.id,
            "refund_line_items": refund.lines.iter().map(|line| json!({
                "line_item_id": line.line_item_id, "quantity": line.quantity,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn add(
    demand: &mut BTreeMap<DemandKey, Demand>,
    day: NaiveDate,
    sku: String,
    location: Option<u64>,
    units: i64,
    revenue_cents: i64,
) {
    let cell = demand.entry(DemandKey { day, sku, location }).or_default();
    cell.units += units;
    cell.revenue_cents += revenue_cents;
}

fn without_zeros(demand: BTreeMap<DemandKey, Demand>) -> BTreeMap<DemandKey, Demand> {
    demand
        .into_iter()
        .filter(|(_, cell)| *cell != Demand::default())
        .collect()
}

#[tokio::test]
async fn the_ground_truth_agrees_with_the_backends_rest_order_reading() {
    let (harness, _) = synthetic_shop(3_000).await;
    let timezone = Timezone::parse("America/New_York").unwrap();
    let mut backend = BTreeMap::new();
    for order in harness.sim.orders(SHOP) {
        let version = order_version(
            &rest_payload(&order),
            SHOP,
            timezone,
            IdentityScheme::default(),
        )
        .unwrap();
        for line in version.lines {
            let location = line
                .location
                .as_str()
                .strip_prefix("shopify-location-")
                .map(|id| id.parse().unwrap());
            add(
                &mut backend,
                line.date,
                line.sku.as_str().to_owned(),
                location,
                line.units as i64,
                (line.revenue * 100.0).round() as i64,
            );
        }
    }
    let truth = harness.sim.ground_truth(SHOP);
    assert!(truth.len() > 500, "{}", truth.len());
    assert_eq!(without_zeros(backend), truth);
}

fn cents(amount: &Value) -> i64 {
    let text = amount.as_str().expect("amounts are decimal strings");
    let (units, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let units: i64 = units.parse().expect("whole units are digits");
    let fraction: i64 = format!("{fraction:0<2}")[..2]
        .parse()
        .expect("fractions are digits");
    units * 100 + fraction
}

fn gid_number(value: &Value) -> Option<String> {
    value
        .as_str()
        .and_then(|gid| gid.rsplit('/').next())
        .map(str::to_owned)
}

#[tokio::test]
async fn the_ground_truth_can_be_rebuilt_from_a_bulk_download() {
    let (harness, token) = synthetic_shop(1_000).await;
    let (_, body) = harness
        .graphql(
            &token,
            &format!(
                "mutation {{ bulkOperationRunQuery(query: {}) {{ bulkOperation {{ id }} }} }}",
                serde_json::to_string(ORDERS_QUERY).unwrap()
            ),
        )
        .await;
    let gid = body["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    harness.sim.clock().advance(Duration::from_secs(5));
    let done = harness
        .sim
        .wait_for_bulk_operation(
            gid.rsplit('/').next().unwrap().parse().unwrap(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let text = harness
        .http
        .get(done.url.unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let orders: BTreeMap<&str, &Value> = lines
        .iter()
        .filter(|line| line.get("__parentId").is_none())
        .map(|line| (line["id"].as_str().unwrap(), line))
        .collect();
    let mut demand = BTreeMap::new();
    for line in lines.iter().filter(|line| line.get("__parentId").is_some()) {
        let order = orders[line["__parentId"].as_str().unwrap()];
        if order["test"] == true || !order["cancelledAt"].is_null() || line["isGiftCard"] == true {
            continue;
        }
        let processed: chrono::DateTime<chrono::Utc> =
            order["processedAt"].as_str().unwrap().parse().unwrap();
        let day = processed
            .with_timezone(&chrono_tz::America::New_York)
            .date_naive();
        let units = line["currentQuantity"].as_i64().unwrap();
        let quantity = line["quantity"].as_i64().unwrap();
        let price = cents(&line["originalUnitPriceSet"]["shopMoney"]["amount"]);
        let discount = cents(&line["totalDiscountSet"]["shopMoney"]["amount"]);
        let sku = line["sku"]
            .as_str()
            .filter(|sku| !sku.trim().is_empty())
            .map(str::to_owned)
            .or_else(|| gid_number(&line["variant"]["id"]).map(|id| format!("variant-{id}")))
            .or_else(|| gid_number(&line["product"]["id"]).map(|id| format!("product-{id}")))
            .unwrap_or_else(|| format!("line-{}", gid_number(&line["id"]).unwrap()));
        let location = gid_number(&order["retailLocation"]["id"]).map(|id| id.parse().unwrap());
        add(
            &mut demand,
            day,
            sku,
            location,
            units,
            units * (price - discount / quantity),
        );
    }
    assert_eq!(without_zeros(demand), harness.sim.ground_truth(SHOP));
}
