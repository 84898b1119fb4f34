//! Reconciliation reads: orders updated since a time, paged by cursor; one order's refunds; edits and new
//! orders in a running simulator; throttling as 200 or 429.

use std::time::Duration;

use ordernimbus_e2e::{RefundLineRow, RefundRow, RestockType};
use serde_json::{Value, json};

use crate::bulk::synthetic_shop;
use crate::support::{Harness, SHOP};

const SINCE: &str = r#"query($after: String, $query: String) { orders(first: 50, after: $after, query: $query, sortKey: UPDATED_AT) { edges { cursor node { id updatedAt } } pageInfo { hasNextPage endCursor } } }"#;

/// Every order updated at or after `since`, page by page; returns ids and the last page's cost.
async fn updated_since(harness: &Harness, token: &str, since: &str) -> (Vec<String>, Value) {
    let mut ids = Vec::new();
    let mut after = Value::Null;
    loop {
        let (status, body, _) = harness
            .graphql_at(
                "2026-10",
                token,
                SINCE,
                json!({"after": after, "query": format!("updated_at:>={since}")}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let orders = &body["data"]["orders"];
        for edge in orders["edges"].as_array().expect("edges is a list") {
            ids.push(
                edge["node"]["id"]
                    .as_str()
                    .expect("an order has an id")
                    .to_owned(),
            );
        }
        if orders["pageInfo"]["hasNextPage"] != true {
            return (ids, body["extensions"]["cost"].clone());
        }
        after = orders["pageInfo"]["endCursor"].clone();
    }
}

fn gid(id: u64) -> String {
    format!("gid://shopify/Order/{id}")
}

#[tokio::test]
async fn orders_updated_since_a_time_come_in_update_order_across_pages() {
    let (harness, token) = synthetic_shop(400).await;
    let since = "2026-03-01T00:00:00Z";
    let (ids, cost) = updated_since(&harness, &token, since).await;
    let mut expected: Vec<_> = harness
        .sim
        .orders(SHOP)
        .into_iter()
        .filter(|order| order.updated_at >= since.parse::<chrono::DateTime<chrono::Utc>>().unwrap())
        .map(|order| (order.updated_at, order.id))
        .collect();
    expected.sort();
    assert!(expected.len() > 100);
    assert_eq!(
        ids,
        expected.iter().map(|(_, id)| gid(*id)).collect::<Vec<_>>()
    );
    assert_eq!(cost["requestedQueryCost"], 2 + 50);
}

#[tokio::test]
async fn an_edited_order_is_found_again_by_update_time_with_its_refund_lines() {
    let (harness, token) = synthetic_shop(100).await;
    let order = harness
        .sim
        .orders(SHOP)
        .into_iter()
        .find(|order| {
            order.refunds.is_empty()
                && order.cancelled_at.is_none()
                && !order.line_items[0].gift_card
        })
        .unwrap();
    harness.sim.clock().advance(Duration::from_secs(60));
    let before_edit = harness
        .sim
        .clock()
        .now()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let line_id = order.line_items[0].id;
    let edited = harness
        .sim
        .update_order(SHOP, order.id, |order| {
            order.line_items[0].current_quantity -= 1;
            order.refunds.push(RefundRow {
                id: 777,
                created_at: order.updated_at,
                lines: vec![RefundLineRow {
                    id: 778,
                    line_item_id: line_id,
                    quantity: 1,
                    restock_type: RestockType::Return,
                    subtotal_cents: 100,
                }],
            });
        })
        .unwrap();
    assert!(edited.updated_at > order.updated_at);
    let (ids, _) = updated_since(&harness, &token, &before_edit).await;
    assert_eq!(ids, [gid(order.id)]);
    let (_, body) = harness
        .graphql(
            &token,
            &format!(
                r#"{{ order(id: "{}") {{ updatedAt lineItems(first: 10) {{ nodes {{ id currentQuantity }} }} refunds {{ refundLineItems(first: 10) {{ edges {{ node {{ lineItem {{ id }} quantity restockType }} }} }} }} }} }}"#,
                gid(order.id)
            ),
        )
        .await;
    let found = &body["data"]["order"];
    assert_eq!(
        found["refunds"][0]["refundLineItems"]["edges"][0]["node"],
        json!({"lineItem": {"id": format!("gid://shopify/LineItem/{line_id}")}, "quantity": 1, "restockType": "RETURN"}),
        "{body}"
    );
    assert_eq!(
        found["lineItems"]["nodes"][0]["currentQuantity"],
        order.line_items[0].current_quantity - 1
    );
}

#[tokio::test]
async fn a_new_order_gets_an_id_above_the_rest_and_is_found_by_reconciliation() {
    let (harness, token) = synthetic_shop(50).await;
    let highest = harness
        .sim
        .orders(SHOP)
        .iter()
        .map(|order| order.id)
        .max()
        .unwrap();
    harness.sim.clock().advance(Duration::from_secs(60));
    let since = harness
        .sim
        .clock()
        .now()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let added = harness
        .sim
        .add_order(SHOP, |order| order.source_name = "pos".into())
        .unwrap();
    assert!(added.id > highest);
    assert!(!added.line_items.is_empty());
    let (ids, _) = updated_since(&harness, &token, &since).await;
    assert_eq!(ids, [gid(added.id)]);
    assert_eq!(harness.sim.orders(SHOP).len(), 51);
}

#[tokio::test]
async fn throttled_answers_come_with_http_200_or_429() {
    let (harness, token) = synthetic_shop(5).await;
    harness.sim.faults().throttle_graphql(1, 200);
    harness.sim.faults().throttle_graphql(1, 429);
    for expected in [200, 429] {
        let (status, body) = harness.graphql(&token, "{ shop { name } }").await;
        assert_eq!(status, expected);
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "THROTTLED",
            "{body}"
        );
        assert!(body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"].is_number());
    }
    assert_eq!(harness.graphql(&token, "{ shop { name } }").await.0, 200);
}
