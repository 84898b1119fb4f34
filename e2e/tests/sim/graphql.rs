//! The GraphQL Admin API: authentication, data, cost, throttling, versions and scopes.

use std::time::Duration;

use serde_json::json;

use crate::support::{Harness, SHOP, Setup};

const INVALID_TOKEN: &str =
    "[API] Invalid API key or access token (unrecognized login or wrong password)";

#[tokio::test]
async fn a_missing_or_unknown_token_is_a_401_with_shopifys_body() {
    let harness = Harness::start().await;
    let (status, body) = harness.graphql("shpat_nope", "{ shop { name } }").await;
    assert_eq!((status, body), (401, json!({"errors": INVALID_TOKEN})));
}

#[tokio::test]
async fn an_expired_access_token_is_a_401() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    assert_eq!(harness.graphql(&token, "{ shop { name } }").await.0, 200);
    harness.sim.clock().advance(Duration::from_secs(3600));
    let (status, body) = harness.graphql(&token, "{ shop { name } }").await;
    assert_eq!((status, body), (401, json!({"errors": INVALID_TOKEN})));
}

#[tokio::test]
async fn the_shop_query_returns_the_seed_and_its_cost() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    let (status, body) = harness
        .graphql(
            &token,
            "{ shop { id name myshopifyDomain ianaTimezone currencyCode plan { displayName } } }",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let seed = harness.sim.shop(SHOP).unwrap();
    assert_eq!(
        body["data"]["shop"],
        json!({
            "id": format!("gid://shopify/Shop/{}", seed.shop_id),
            "name": "Acme",
            "myshopifyDomain": SHOP,
            "ianaTimezone": "America/New_York",
            "currencyCode": "USD",
            "plan": {"displayName": "Basic"},
        })
    );
    assert_eq!(
        body["extensions"]["cost"],
        json!({
            "requestedQueryCost": 2,
            "actualQueryCost": 2,
            "throttleStatus": {"maximumAvailable": 2000.0, "currentlyAvailable": 1998, "restoreRate": 100.0},
        })
    );
}

#[tokio::test]
async fn orders_page_with_cursors_and_keep_ids_beyond_f64() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    let query = "query($after: String) { orders(first: 5, after: $after) { edges { cursor node { id name lineItems(first: 3) { nodes { quantity currentQuantity variant { id } } } } } pageInfo { hasNextPage endCursor } } }";
    let (_, first_page, _) = harness
        .graphql_at("2026-10", &token, query, json!({}))
        .await;
    let orders = &first_page["data"]["orders"];
    assert_eq!(orders["edges"].as_array().unwrap().len(), 5, "{first_page}");
    assert_eq!(orders["pageInfo"]["hasNextPage"], true);
    let id = orders["edges"][0]["node"]["id"].as_str().unwrap();
    let numeric: u64 = id
        .strip_prefix("gid://shopify/Order/")
        .unwrap()
        .parse()
        .unwrap();
    assert!(numeric > 1 << 53);
    assert_eq!(numeric, harness.sim.order_ids(SHOP)[0]);
    let after = orders["pageInfo"]["endCursor"].clone();
    let (_, second_page, _) = harness
        .graphql_at("2026-10", &token, query, json!({"after": after}))
        .await;
    let second_first = second_page["data"]["orders"]["edges"][0]["node"]["id"]
        .as_str()
        .unwrap();
    assert_eq!(
        second_first,
        format!("gid://shopify/Order/{}", harness.sim.order_ids(SHOP)[5])
    );
}

#[tokio::test]
async fn without_read_all_orders_only_the_last_sixty_days_are_visible() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    let count = |body: serde_json::Value| body["data"]["orders"]["nodes"].as_array().unwrap().len();
    let query = "{ orders(first: 50) { nodes { id } } }";
    assert_eq!(count(harness.graphql(&token, query).await.1), 14);
    harness.sim.update_scopes(SHOP, &["read_orders"]).await;
    assert_eq!(count(harness.graphql(&token, query).await.1), 7);
}

#[tokio::test]
async fn an_order_search_query_filters_by_update_time() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    let since =
        (harness.sim.clock().now() - chrono::Duration::days(20)).format("%Y-%m-%dT%H:%M:%SZ");
    let query =
        format!("{{ orders(first: 50, query: \"updated_at:>'{since}'\") {{ nodes {{ id }} }} }}");
    let (_, body) = harness.graphql(&token, &query).await;
    assert_eq!(
        body["data"]["orders"]["nodes"].as_array().unwrap().len(),
        3,
        "{body}"
    );
}

#[tokio::test]
async fn inventory_levels_are_reachable_from_locations_and_variants() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    let (status, body) = harness
        .graphql(
            &token,
            r#"{ locations(first: 5) { nodes { id name inventoryLevels(first: 10) { nodes { quantities(names: ["available", "on_hand"]) { name quantity } item { sku } } } } }
                 products(first: 1) { nodes { variants(first: 2) { nodes { sku price inventoryItem { inventoryLevels(first: 5) { nodes { location { name } } } } } } } } }"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let locations = body["data"]["locations"]["nodes"].as_array().unwrap();
    assert_eq!(locations.len(), 2);
    assert_eq!(
        locations[0]["inventoryLevels"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        locations[0]["inventoryLevels"]["nodes"][0]["quantities"][0]["name"],
        "available"
    );
    let variant = &body["data"]["products"]["nodes"][0]["variants"]["nodes"][0];
    assert_eq!(variant["price"], "45.0");
    assert_eq!(
        variant["inventoryItem"]["inventoryLevels"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn draining_the_bucket_throttles_until_it_refills() {
    let harness = Setup::new().tiny_bucket(30.0, 1.0).start().await;
    let token = harness.access_token().await;
    // Requested 2 + 10 × 1 = 12; only two locations exist, so the actual cost is 2 + 2 × 1 = 4.
    let query = "{ locations(first: 10) { nodes { name } } }";
    let mut available = 30;
    for _ in 0..5 {
        let (status, body) = harness.graphql(&token, query).await;
        assert_eq!(status, 200);
        let cost = &body["extensions"]["cost"];
        assert_eq!(cost["requestedQueryCost"], 12);
        assert_eq!(cost["actualQueryCost"], 4);
        available -= 4;
        assert_eq!(
            cost["throttleStatus"]["currentlyAvailable"], available,
            "{body}"
        );
    }
    let (status, body) = harness.graphql(&token, query).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "THROTTLED",
        "{body}"
    );
    assert!(body.get("data").is_none());
    assert_eq!(
        body["extensions"]["cost"]["actualQueryCost"],
        serde_json::Value::Null
    );
    assert_eq!(
        body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"],
        10
    );
    harness.sim.clock().advance(Duration::from_secs(2));
    let (_, body) = harness.graphql(&token, query).await;
    assert_eq!(
        body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"], 8,
        "{body}"
    );
}

#[tokio::test]
async fn a_query_over_a_thousand_points_is_max_cost_exceeded_and_charges_nothing() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    let (status, body) = harness
        .graphql(
            &token,
            "{ orders(first: 250) { nodes { lineItems(first: 250) { nodes { id } } } } }",
        )
        .await;
    assert_eq!(status, 200);
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "MAX_COST_EXCEEDED", "{body}");
    assert_eq!(error["extensions"]["maxCost"], 1000);
    assert_eq!(
        body["extensions"]["cost"]["requestedQueryCost"],
        2 + 250 * (1 + 2 + 250)
    );
    assert_eq!(
        body["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"],
        2000
    );
}

#[tokio::test]
async fn a_retired_version_falls_forward_and_a_malformed_one_is_not_found() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    let (status, _, version) = harness
        .graphql_at("2024-07", &token, "{ shop { name } }", json!({}))
        .await;
    assert_eq!((status, version.as_deref()), (200, Some("2026-01")));
    let (status, _, _) = harness
        .graphql_at("2026-13", &token, "{ shop { name } }", json!({}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_field_outside_the_granted_scopes_is_access_denied() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    harness.sim.update_scopes(SHOP, &["read_orders"]).await;
    let (status, body) = harness
        .graphql(&token, "{ products(first: 1) { nodes { id } } }")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "ACCESS_DENIED",
        "{body}"
    );
}

#[tokio::test]
async fn a_mutation_costs_ten_and_its_subscription_is_listed() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    let (_, created) = harness
        .graphql(
            &token,
            r#"mutation { webhookSubscriptionCreate(topic: ORDERS_CREATE, webhookSubscription: {uri: "https://app.example/webhooks", format: JSON}) { webhookSubscription { id topic } userErrors { message } } }"#,
        )
        .await;
    assert_eq!(
        created["extensions"]["cost"]["requestedQueryCost"], 10,
        "{created}"
    );
    assert_eq!(
        created["data"]["webhookSubscriptionCreate"]["webhookSubscription"]["topic"],
        "ORDERS_CREATE"
    );
    let (_, listed) = harness
        .graphql(
            &token,
            "{ webhookSubscriptions(first: 10) { nodes { topic uri } } }",
        )
        .await;
    assert_eq!(
        listed["data"]["webhookSubscriptions"]["nodes"],
        json!([{"topic": "ORDERS_CREATE", "uri": "https://app.example/webhooks"}])
    );
}
