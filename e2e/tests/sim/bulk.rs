//! Bulk queries over HTTP: the mutation and its checks, the JSONL result and its `__parentId` joins,
//! completion, the finish webhook, the result URL (expiry, `Range`), concurrency and faults.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use ordernimbus_e2e::{BulkFault, BulkOperationStatus, OrderRow, SyntheticOrders};
use serde_json::{Value, json};

use crate::support::{Harness, SHOP, Setup};
use crate::webhooks::Receiver;

/// Orders with everything demand needs; `lineItems` is the nested connection.
pub const ORDERS_QUERY: &str = r#"{ orders { edges { node { id name createdAt updatedAt processedAt cancelledAt test sourceName retailLocation { id } refunds { id createdAt } lineItems { edges { node { id sku quantity currentQuantity isGiftCard variant { id } product { id } originalUnitPriceSet { shopMoney { amount currencyCode } } totalDiscountSet { shopMoney { amount } } } } } } } } }"#;

const RUN: &str = r#"mutation($query: String!, $group: Boolean) { bulkOperationRunQuery(query: $query, groupObjects: $group) { bulkOperation { id status createdAt query } userErrors { field message code } } }"#;

const POLL: &str = r#"query($id: ID!) { bulkOperation(id: $id) { id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl query type } }"#;

/// A started simulator whose shop has `n_orders` synthetic orders, and an access token.
pub async fn synthetic_shop(n_orders: u64) -> (Harness, String) {
    let mut setup = Setup::new();
    setup.seed.synthetic_orders = Some(SyntheticOrders {
        ends_at: Some(
            "2026-06-01T00:00:00Z"
                .parse()
                .expect("a literal RFC 3339 time parses"),
        ),
        ..SyntheticOrders::new(42, n_orders)
    });
    let harness = setup.start().await;
    let token = harness.access_token().await;
    (harness, token)
}

/// Starts a bulk query at `version`; returns the mutation's payload.
async fn start_at(
    harness: &Harness,
    token: &str,
    version: &str,
    query: &str,
    group: Option<bool>,
) -> Value {
    let (status, body, _) = harness
        .graphql_at(version, token, RUN, json!({"query": query, "group": group}))
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["bulkOperationRunQuery"].clone()
}

/// Starts a bulk query on the current version and returns its GID.
async fn start(harness: &Harness, token: &str, query: &str, group: Option<bool>) -> String {
    let payload = start_at(harness, token, "2026-10", query, group).await;
    assert_eq!(payload["userErrors"], json!([]), "{payload}");
    assert_eq!(payload["bulkOperation"]["status"], "CREATED");
    payload["bulkOperation"]["id"]
        .as_str()
        .expect("a created operation has an id")
        .to_owned()
}

fn numeric(gid: &str) -> u64 {
    gid.rsplit('/')
        .next()
        .and_then(|number| number.parse().ok())
        .expect("a GID ends with its number")
}

/// Lets the operation's simulated running time pass and waits until it ends; returns `bulkOperation`.
async fn finish(harness: &Harness, token: &str, gid: &str) -> Value {
    harness.sim.clock().advance(Duration::from_secs(5));
    harness
        .sim
        .wait_for_bulk_operation(numeric(gid), Duration::from_secs(60))
        .await
        .expect("the operation exists");
    poll(harness, token, gid).await
}

async fn poll(harness: &Harness, token: &str, gid: &str) -> Value {
    let (status, body, _) = harness
        .graphql_at("2026-10", token, POLL, json!({"id": gid}))
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["bulkOperation"].clone()
}

async fn download(harness: &Harness, url: &str) -> (u16, HashMap<String, String>, String) {
    let response = harness
        .http
        .get(url)
        .send()
        .await
        .expect("the storage URL answers");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_owned()))
        .collect();
    (
        status,
        headers,
        response.text().await.expect("the whole body arrives"),
    )
}

fn lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect()
}

/// Rebuilds nested orders from JSONL lines by `__parentId`, whatever their order.
fn join(lines: &[Value]) -> BTreeMap<String, (Value, Vec<Value>)> {
    let mut orders: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
    let mut children = Vec::new();
    for line in lines {
        match line.get("__parentId") {
            None => {
                orders.insert(
                    line["id"]
                        .as_str()
                        .expect("a root line has an id")
                        .to_owned(),
                    (line.clone(), Vec::new()),
                );
            }
            Some(_) => children.push(line.clone()),
        }
    }
    for child in children {
        let parent = child["__parentId"]
            .as_str()
            .expect("__parentId is a string")
            .to_owned();
        orders
            .get_mut(&parent)
            .expect("every child's parent is in the file")
            .1
            .push(child);
    }
    orders
}

fn money(cents: i64) -> String {
    let text = format!("{}.{:02}", cents / 100, cents % 100);
    let trimmed = text.trim_end_matches('0');
    if trimmed.ends_with('.') {
        format!("{trimmed}0")
    } else {
        trimmed.to_owned()
    }
}

/// What the JSONL must say about a seeded order.
fn expected(order: &OrderRow) -> (Value, Vec<Value>) {
    let time = |at: chrono::DateTime<chrono::Utc>| at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let parent = format!("gid://shopify/Order/{}", order.id);
    let root = json!({
        "id": parent,
        "name": format!("#{}", order.number),
        "createdAt": time(order.created_at),
        "updatedAt": time(order.updated_at),
        "processedAt": time(order.processed_at),
        "cancelledAt": order.cancelled_at.map(time),
        "test": order.test,
        "sourceName": order.source_name,
        "retailLocation": order.location_id.map(|id| json!({"id": format!("gid://shopify/Location/{id}")})),
        "refunds": order.refunds.iter().map(|refund| json!({"id": format!("gid://shopify/Refund/{}", refund.id), "createdAt": time(refund.created_at)})).collect::<Vec<_>>(),
    });
    let children = order
        .line_items
        .iter()
        .map(|line| {
            json!({
                "id": format!("gid://shopify/LineItem/{}", line.id),
                "sku": (!line.sku.is_empty()).then(|| line.sku.clone()),
                "quantity": line.quantity,
                "currentQuantity": line.current_quantity,
                "isGiftCard": line.gift_card,
                "variant": line.variant_id.map(|id| json!({"id": format!("gid://shopify/ProductVariant/{id}")})),
                "product": line.product_id.map(|id| json!({"id": format!("gid://shopify/Product/{id}")})),
                "originalUnitPriceSet": {"shopMoney": {"amount": money(line.unit_price_cents), "currencyCode": "USD"}},
                "totalDiscountSet": {"shopMoney": {"amount": money(line.total_discount_cents())}},
                "__parentId": parent,
            })
        })
        .collect();
    (root, children)
}

#[tokio::test]
async fn a_bulk_query_of_orders_reconstructs_every_seeded_order_through_parent_ids() {
    let (harness, token) = synthetic_shop(600).await;
    let gid = start(&harness, &token, ORDERS_QUERY, None).await;
    assert!(gid.starts_with("gid://shopify/BulkOperation/"));
    let done = finish(&harness, &token, &gid).await;
    assert_eq!(done["status"], "COMPLETED", "{done}");
    assert_eq!(done["type"], "QUERY");
    assert_eq!(done["errorCode"], Value::Null);
    assert_eq!(done["partialDataUrl"], Value::Null);
    assert_eq!(done["query"], ORDERS_QUERY);
    let (status, headers, body) = download(&harness, done["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "application/jsonl");
    let lines = lines(&body);
    assert_eq!(done["objectCount"], lines.len().to_string());
    assert_eq!(done["fileSize"], body.len().to_string());
    let seeded = harness.sim.orders(SHOP);
    assert_eq!(done["rootObjectCount"], seeded.len().to_string());
    assert!(
        lines
            .iter()
            .all(|line| line.get("edges").is_none() && line.get("lineItems").is_none())
    );
    let joined = join(&lines);
    assert_eq!(joined.len(), seeded.len());
    for order in &seeded {
        let (root, mut children) = joined[&format!("gid://shopify/Order/{}", order.id)].clone();
        children.sort_by_key(|child| child["id"].as_str().unwrap().to_owned());
        let (expected_root, mut expected_children) = expected(order);
        expected_children.sort_by_key(|child| child["id"].as_str().unwrap().to_owned());
        assert_eq!(root, expected_root);
        assert_eq!(children, expected_children);
    }
    // groupObjects defaults to false from 2026-01: some children come before their parent.
    let mut seen = std::collections::HashSet::new();
    let mut early_children = 0;
    for line in &lines {
        match line.get("__parentId") {
            None => {
                seen.insert(line["id"].as_str().unwrap().to_owned());
            }
            Some(parent) => early_children += usize::from(!seen.contains(parent.as_str().unwrap())),
        }
    }
    assert!(early_children > 0);
}

#[tokio::test]
async fn the_seeded_history_has_every_shape_a_syncer_must_handle() {
    let (harness, _) = synthetic_shop(2_000).await;
    let orders = harness.sim.orders(SHOP);
    let lines: Vec<_> = orders.iter().flat_map(|order| &order.line_items).collect();
    assert!(orders.iter().any(|order| order.test));
    assert!(orders.iter().any(|order| order.cancelled_at.is_some()));
    assert!(
        orders
            .iter()
            .any(|order| order.location_id.is_some() && order.source_name == "pos")
    );
    assert!(
        orders
            .iter()
            .any(|order| order.location_id.is_none() && order.source_name == "web")
    );
    assert!(orders.iter().any(|order| order.refunds.len() > 1));
    assert!(orders.iter().all(|order| order.id > 1 << 53));
    assert!(lines.iter().any(|line| line.gift_card));
    assert!(
        lines
            .iter()
            .any(|line| line.sku.is_empty() && line.variant_id.is_some())
    );
    assert!(
        lines
            .iter()
            .any(|line| line.variant_id.is_none() && !line.gift_card)
    );
    assert!(lines.iter().any(|line| line.discount_per_unit_cents > 0));
    assert!(
        lines
            .iter()
            .any(|line| line.current_quantity < line.quantity)
    );
    // The same seed gives the same shop.
    let (again, _) = synthetic_shop(2_000).await;
    assert_eq!(
        format!("{:?}", again.sim.orders(SHOP)),
        format!("{orders:?}")
    );
}

#[tokio::test]
async fn grouped_output_puts_each_child_right_after_its_parent() {
    let (harness, token) = synthetic_shop(300).await;
    let gid = start(&harness, &token, ORDERS_QUERY, Some(true)).await;
    let done = finish(&harness, &token, &gid).await;
    let (_, _, body) = download(&harness, done["url"].as_str().unwrap()).await;
    let mut current = String::new();
    for line in lines(&body) {
        match line.get("__parentId") {
            None => current = line["id"].as_str().unwrap().to_owned(),
            Some(parent) => assert_eq!(parent.as_str().unwrap(), current),
        }
    }
}

#[tokio::test]
async fn bulk_queries_are_checked_and_refused_with_user_errors() {
    let (harness, token) = synthetic_shop(10).await;
    let refused = |payload: Value| {
        assert_eq!(payload["bulkOperation"], Value::Null, "{payload}");
        let error = &payload["userErrors"][0];
        assert_eq!(error["code"], "INVALID");
        assert_eq!(error["field"], json!(["query"]));
        error["message"].as_str().unwrap().to_owned()
    };
    let list = start_at(
        &harness,
        &token,
        "2026-10",
        "{ orders { edges { node { id refunds { refundLineItems { edges { node { quantity } } } } } } } }",
        None,
    )
    .await;
    assert_eq!(
        refused(list),
        "Queries that contain a connection field within a list field are not currently supported."
    );
    let none = start_at(&harness, &token, "2026-10", "{ shop { name } }", None).await;
    assert_eq!(
        refused(none),
        "Bulk queries must contain at least one connection."
    );
    let broken = start_at(&harness, &token, "2026-10", "{ orders { ", None).await;
    assert!(refused(broken).starts_with("Invalid bulk query"));
    assert!(harness.sim.bulk_operations(SHOP).is_empty());
}

#[tokio::test]
async fn five_bulk_queries_may_run_at_once_from_2026_01_and_one_before() {
    let mut setup = Setup::new();
    setup
        .config
        .supported_api_versions
        .insert(0, "2025-10".into());
    let harness = setup.start().await;
    let token = harness.access_token().await;
    let query = "{ orders { edges { node { id } } } }";
    for _ in 0..5 {
        let payload = start_at(&harness, &token, "2026-01", query, None).await;
        assert_eq!(payload["userErrors"], json!([]), "{payload}");
    }
    let sixth = start_at(&harness, &token, "2026-01", query, None).await;
    assert_eq!(sixth["bulkOperation"], Value::Null);
    assert_eq!(sixth["userErrors"][0]["code"], "LIMIT_REACHED", "{sixth}");
    let older = start_at(&harness, &token, "2025-10", query, None).await;
    assert_eq!(
        older["userErrors"][0]["code"], "OPERATION_IN_PROGRESS",
        "{older}"
    );
    let (_, listed, _) = harness
        .graphql_at(
            "2026-10",
            &token,
            r#"{ bulkOperations(first: 10, query: "status:RUNNING") { nodes { id status } } }"#,
            json!({}),
        )
        .await;
    let running = listed["data"]["bulkOperations"]["nodes"]
        .as_array()
        .unwrap()
        .len();
    let (_, current, _) = harness
        .graphql_at(
            "2026-10",
            &token,
            "{ currentBulkOperation { id status } }",
            json!({}),
        )
        .await;
    assert_eq!(
        current["data"]["currentBulkOperation"]["id"],
        format!(
            "gid://shopify/BulkOperation/{}",
            harness.sim.bulk_operations(SHOP)[4].id
        )
    );
    // Started ones may still be CREATED for an instant; all five are active.
    assert!(running <= 5);
    assert_eq!(
        harness
            .sim
            .bulk_operations(SHOP)
            .iter()
            .filter(|operation| matches!(
                operation.status,
                BulkOperationStatus::Created | BulkOperationStatus::Running
            ))
            .count(),
        5
    );
    // From 2026-01 objects are not grouped unless asked.
    assert!(
        harness
            .sim
            .bulk_operations(SHOP)
            .iter()
            .all(|operation| !operation.group_objects)
    );
}

#[tokio::test]
async fn an_operation_stays_running_until_its_time_has_passed_and_then_announces_itself_signed() {
    let (harness, token) = synthetic_shop(50).await;
    let (receiver, url) = Receiver::start(&[]).await;
    let (_, created) = harness
        .graphql(
            &token,
            &format!(r#"mutation {{ webhookSubscriptionCreate(topic: BULK_OPERATIONS_FINISH, webhookSubscription: {{uri: "{url}/webhooks", format: JSON}}) {{ userErrors {{ message }} }} }}"#),
        )
        .await;
    assert_eq!(
        created["data"]["webhookSubscriptionCreate"]["userErrors"],
        json!([])
    );
    let gid = start(&harness, &token, ORDERS_QUERY, None).await;
    // Writing the result takes a moment of real time, but the operation runs for a simulated second
    // and the clock is frozen.
    let still = harness
        .sim
        .wait_for_bulk_operation(numeric(&gid), Duration::from_millis(300))
        .await
        .unwrap();
    assert_eq!(still.status, BulkOperationStatus::Running);
    assert_eq!(poll(&harness, &token, &gid).await["status"], "RUNNING");
    assert!(receiver.received().is_empty());
    let done = finish(&harness, &token, &gid).await;
    assert_eq!(done["status"], "COMPLETED");
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let (headers, body) = &received[0];
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(header("x-shopify-topic"), "bulk_operations/finish");
    assert_eq!(header("x-shopify-shop-domain"), SHOP);
    assert_eq!(
        header("x-shopify-hmac-sha256"),
        crate::webhooks::signature(crate::support::SECRET, body)
    );
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["admin_graphql_api_id"], gid);
    assert_eq!(payload["status"], "completed");
    assert_eq!(payload["type"], "query");
    assert_eq!(payload["error_code"], Value::Null);
    // Shop-local times, as webhooks carry them.
    assert!(
        payload["created_at"].as_str().unwrap().ends_with("-04:00")
            || payload["created_at"].as_str().unwrap().ends_with("-05:00"),
        "{payload}"
    );
    assert!(payload["completed_at"].as_str().is_some());
}

/// GETs `url` from byte `from` on (`Range: bytes={from}-`).
async fn get_from(harness: &Harness, url: &str, from: usize) -> reqwest::Response {
    harness
        .http
        .get(url)
        .header("Range", format!("bytes={from}-"))
        .send()
        .await
        .expect("the simulator answers on loopback")
}

#[tokio::test]
async fn a_download_resumes_with_a_range_request_after_the_connection_is_cut() {
    let (harness, token) = synthetic_shop(200).await;
    let gid = start(&harness, &token, ORDERS_QUERY, None).await;
    let done = finish(&harness, &token, &gid).await;
    let url = done["url"].as_str().unwrap();
    let (_, _, whole) = download(&harness, url).await;
    harness.sim.faults().cut_bulk_downloads(1, 1_000);
    let response = harness.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-length"].to_str().unwrap(),
        whole.len().to_string()
    );
    let mut received = Vec::new();
    let mut stream = response.bytes_stream();
    let mut failed = false;
    use futures_util::StreamExt as _;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => received.extend_from_slice(&bytes),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed,
        "the cut connection is an error, not a short success"
    );
    assert_eq!(received.len(), 1_000);
    let rest = get_from(&harness, url, received.len()).await;
    assert_eq!(rest.status(), 206);
    assert_eq!(
        rest.headers()["content-range"].to_str().unwrap(),
        format!("bytes 1000-{}/{}", whole.len() - 1, whole.len())
    );
    received.extend_from_slice(&rest.bytes().await.unwrap());
    assert_eq!(String::from_utf8(received).unwrap(), whole);
    let past_end = get_from(&harness, url, whole.len()).await;
    assert_eq!(past_end.status(), 416);
}

#[tokio::test]
async fn result_urls_expire_like_signed_storage_urls_and_the_operation_becomes_expired() {
    let (harness, token) = synthetic_shop(20).await;
    let gid = start(&harness, &token, ORDERS_QUERY, None).await;
    let done = finish(&harness, &token, &gid).await;
    let url = done["url"].as_str().unwrap().to_owned();
    assert!(url.contains("Expires=") && url.contains("Signature="));
    let tampered = url.replace("Expires=", "Expires=9");
    let (status, _, body) = download(&harness, &tampered).await;
    assert_eq!(status, 403);
    assert!(
        body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{body}"
    );
    harness
        .sim
        .clock()
        .advance(Duration::from_secs(7 * 24 * 3600 + 1));
    let (status, headers, body) = download(&harness, &url).await;
    assert_eq!(status, 403);
    assert!(headers["content-type"].starts_with("application/xml"));
    assert!(
        body.contains("<Code>AccessDenied</Code>") && body.contains("Request has expired"),
        "{body}"
    );
    // A week later the old access token is long dead; a fresh one sees the operation expired.
    let fresh = harness.access_token().await;
    assert_ne!(fresh, token);
    let expired = poll(&harness, &fresh, &gid).await;
    assert_eq!(expired["status"], "EXPIRED");
    assert_eq!(expired["url"], Value::Null);
}

#[tokio::test]
async fn an_already_expired_url_is_refused_while_the_operation_says_completed() {
    let (harness, token) = synthetic_shop(20).await;
    harness
        .sim
        .faults()
        .fail_next_bulk_query(BulkFault::UrlExpired);
    let gid = start(&harness, &token, ORDERS_QUERY, None).await;
    let done = finish(&harness, &token, &gid).await;
    assert_eq!(done["status"], "COMPLETED");
    let (status, _, body) = download(&harness, done["url"].as_str().unwrap()).await;
    assert_eq!(status, 403);
    assert!(body.contains("Request has expired"));
}

#[tokio::test]
async fn internal_errors_and_timeouts_fail_with_partial_data() {
    for (fault, code) in [
        (
            BulkFault::InternalServerError {
                after_root_objects: 250,
            },
            "INTERNAL_SERVER_ERROR",
        ),
        (
            BulkFault::Timeout {
                after_root_objects: 250,
            },
            "TIMEOUT",
        ),
    ] {
        let (harness, token) = synthetic_shop(600).await;
        harness.sim.faults().fail_next_bulk_query(fault);
        let gid = start(
            &harness,
            &token,
            "{ orders { edges { node { id } } } }",
            None,
        )
        .await;
        let failed = finish(&harness, &token, &gid).await;
        assert_eq!(failed["status"], "FAILED", "{failed}");
        assert_eq!(failed["errorCode"], code);
        assert_eq!(failed["url"], Value::Null);
        assert_eq!(failed["completedAt"], Value::Null);
        let (status, _, body) =
            download(&harness, failed["partialDataUrl"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(lines(&body).len(), 250);
        assert_eq!(failed["rootObjectCount"], "250");
    }
}

#[tokio::test]
async fn access_denied_fails_without_data_whether_armed_or_from_missing_scopes() {
    let (harness, token) = synthetic_shop(20).await;
    harness
        .sim
        .faults()
        .fail_next_bulk_query(BulkFault::AccessDenied);
    let gid = start(&harness, &token, ORDERS_QUERY, None).await;
    let failed = finish(&harness, &token, &gid).await;
    assert_eq!(
        (failed["status"].clone(), failed["errorCode"].clone()),
        (json!("FAILED"), json!("ACCESS_DENIED"))
    );
    assert_eq!(failed["partialDataUrl"], Value::Null);
    harness.sim.update_scopes(SHOP, &["read_orders"]).await;
    let gid = start(
        &harness,
        &token,
        "{ products { edges { node { id } } } }",
        None,
    )
    .await;
    let denied = finish(&harness, &token, &gid).await;
    assert_eq!(denied["errorCode"], "ACCESS_DENIED", "{denied}");
}

#[tokio::test]
async fn an_uninstall_mid_sync_revokes_the_token_but_not_the_signed_result_url() {
    let (harness, token) = synthetic_shop(50).await;
    let (receiver, url) = Receiver::start(&[]).await;
    harness.sim.set_app_url(&url);
    let gid = start(&harness, &token, ORDERS_QUERY, None).await;
    harness.sim.uninstall(SHOP).await;
    assert_eq!(poll_status(&harness, &token, &gid).await, 401);
    harness.sim.clock().advance(Duration::from_secs(5));
    let done = harness
        .sim
        .wait_for_bulk_operation(numeric(&gid), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, BulkOperationStatus::Completed);
    let (status, _, body) = download(&harness, done.url.as_deref().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(lines(&body).len() as u64, done.object_count);
    // Only app/uninstalled reached the app: no finish webhook for an uninstalled app.
    let topics: Vec<String> = receiver
        .received()
        .iter()
        .map(|(headers, _)| headers["x-shopify-topic"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(topics, ["app/uninstalled"]);
}

async fn poll_status(harness: &Harness, token: &str, gid: &str) -> u16 {
    harness
        .graphql_at("2026-10", token, POLL, json!({"id": gid}))
        .await
        .0
}

#[tokio::test]
async fn a_cancelled_operation_ends_canceled_and_frees_its_slot() {
    let (harness, token) = synthetic_shop(20).await;
    let gid = start(&harness, &token, ORDERS_QUERY, None).await;
    let (_, body) = harness
        .graphql(
            &token,
            &format!(r#"mutation {{ bulkOperationCancel(id: "{gid}") {{ bulkOperation {{ status }} userErrors {{ message }} }} }}"#),
        )
        .await;
    assert_eq!(
        body["data"]["bulkOperationCancel"]["bulkOperation"]["status"], "CANCELING",
        "{body}"
    );
    let done = harness
        .sim
        .wait_for_bulk_operation(numeric(&gid), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, BulkOperationStatus::Canceled);
    assert_eq!(done.url, None);
}

#[tokio::test]
async fn a_bulk_query_config_subscription_gets_the_finish_webhook_at_the_app_url() {
    let mut setup = Setup::new();
    setup.config.app_webhook_topics = vec!["bulk_operations/finish".into()];
    let harness = setup.start().await;
    let (receiver, url) = Receiver::start(&[]).await;
    harness.sim.set_app_url(&url);
    let token = harness.access_token().await;
    let gid = start(
        &harness,
        &token,
        "{ orders { edges { node { id } } } }",
        None,
    )
    .await;
    finish(&harness, &token, &gid).await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let payload: Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(payload["admin_graphql_api_id"], gid);
}

#[tokio::test]
async fn a_bulk_query_that_finds_nothing_completes_without_a_url() {
    let (harness, token) = synthetic_shop(20).await;
    let gid = start(
        &harness,
        &token,
        r#"{ orders(query: "updated_at:>=2030-01-01T00:00:00Z") { edges { node { id } } } }"#,
        None,
    )
    .await;
    let done = finish(&harness, &token, &gid).await;
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["objectCount"], "0");
    assert_eq!(done["url"], Value::Null);
    assert_eq!(done["fileSize"], Value::Null);
}

#[tokio::test]
async fn a_failed_operation_is_announced_with_its_error_code() {
    let mut setup = Setup::new();
    setup.config.app_webhook_topics = vec!["bulk_operations/finish".into()];
    let harness = setup.start().await;
    let (receiver, url) = Receiver::start(&[]).await;
    harness.sim.set_app_url(&url);
    let token = harness.access_token().await;
    harness
        .sim
        .faults()
        .fail_next_bulk_query(BulkFault::Timeout {
            after_root_objects: 1,
        });
    let gid = start(
        &harness,
        &token,
        "{ orders { edges { node { id } } } }",
        None,
    )
    .await;
    let failed = finish(&harness, &token, &gid).await;
    assert_eq!(failed["status"], "FAILED");
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let payload: Value = serde_json::from_slice(&received[0].1).unwrap();
    assert_eq!(payload["status"], "failed");
    assert_eq!(payload["error_code"], "timeout");
}

/// A large shop streams through the same path: pages of 250 orders, never the whole shop in memory.
/// Run with `--ignored`; about 11 s for 20,000 orders in a debug build, so a million take minutes.
#[tokio::test]
#[ignore = "slow: a large shop"]
async fn a_large_shop_streams_its_bulk_result() {
    let n_orders = 20_000;
    let (harness, token) = synthetic_shop(n_orders).await;
    let started = std::time::Instant::now();
    let gid = start(&harness, &token, ORDERS_QUERY, None).await;
    harness.sim.clock().advance(Duration::from_secs(5));
    let done = harness
        .sim
        .wait_for_bulk_operation(numeric(&gid), Duration::from_secs(3_600))
        .await
        .expect("the operation exists");
    eprintln!(
        "{n_orders} orders: {:?}, {:?} bytes, {} lines",
        started.elapsed(),
        done.file_size,
        done.object_count
    );
    assert_eq!(done.status, BulkOperationStatus::Completed);
    assert_eq!(done.root_object_count, n_orders);
}
