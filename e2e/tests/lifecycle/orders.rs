//! Orders through the webhook pipeline: stored, published, applied to daily sales exactly once.

use ordernimbus_e2e::DeliveryOptions;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Harness, SHOP};

fn order(updated_at: &str, current_quantity: u32, cancelled: bool) -> Value {
    json!({
        "id": 5_100_000_000_000_001_u64,
        "name": "#1001",
        "created_at": "2026-03-01T09:00:00+01:00",
        "processed_at": "2026-03-01T09:00:00+01:00",
        "updated_at": updated_at,
        "cancelled_at": if cancelled { json!("2026-03-02T09:00:00+01:00") } else { Value::Null },
        "test": false,
        "currency": "EUR",
        "source_name": "web",
        "location_id": null,
        "line_items": [{
            "id": 9_100_000_000_000_001_u64, "variant_id": 44, "product_id": 33, "sku": "TEE-1",
            "title": "Tee", "quantity": 3, "current_quantity": current_quantity, "price": "20.00",
            "total_discount": "0.00", "gift_card": false
        }],
        "refunds": []
    })
}

async fn tee_units(app: &Harness) -> Vec<f64> {
    let (status, _, body) = app
        .get_as(&app.session_token(SHOP), "/api/v1/sales?sku=TEE-1")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|day| day["units"].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn orders_become_sales_once_and_an_older_version_never_overwrites_a_newer_one() {
    let app = Harness::start().await;
    app.tenant_of(SHOP).await;
    let created = app
        .sim
        .deliver(
            SHOP,
            "orders/create",
            order("2026-03-01T09:00:00+01:00", 3, false),
            DeliveryOptions {
                duplicate: true,
                ..DeliveryOptions::default()
            },
        )
        .await;
    assert_eq!(app.processed(&created).await, "applied");
    assert_eq!(tee_units(&app).await, [3.0]);

    // A refund of two: the order's next version.
    let refunded = app
        .sim
        .deliver(
            SHOP,
            "orders/updated",
            order("2026-03-03T10:00:00+01:00", 1, false),
            DeliveryOptions::default(),
        )
        .await;
    assert_eq!(app.processed(&refunded).await, "applied");
    assert_eq!(tee_units(&app).await, [1.0]);

    // The create's retry (same webhook id) is one row, counted as a redelivery, applied once.
    use ordernimbus_backend::store::Store;
    let stored = app
        .store()
        .delivery(&created.webhook_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.redeliveries, 1);

    // An older version arriving late changes nothing.
    let late = app
        .sim
        .deliver(
            SHOP,
            "orders/paid",
            order("2026-03-02T10:00:00+01:00", 3, false),
            DeliveryOptions::default(),
        )
        .await;
    assert_eq!(app.processed(&late).await, "stale");
    assert_eq!(tee_units(&app).await, [1.0]);

    // Replaying everything through the API counts nothing twice.
    for report in [&created, &refunded] {
        let response = app
            .http
            .post(app.url(&format!("/api/v1/webhooks/{}/replay", report.webhook_id)))
            .bearer_auth(app.session_token(SHOP))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(app.processed(report).await, "stale");
    }
    assert_eq!(tee_units(&app).await, [1.0]);

    // Cancelled: the order sells nothing.
    let cancelled = app
        .sim
        .deliver(
            SHOP,
            "orders/cancelled",
            order("2026-03-04T10:00:00+01:00", 1, true),
            DeliveryOptions::default(),
        )
        .await;
    assert_eq!(app.processed(&cancelled).await, "applied");
    assert_eq!(tee_units(&app).await, [0.0]);

    // The tenant sees its own deliveries, newest first.
    let (status, _, listed) = app
        .get_as(
            &app.session_token(SHOP),
            "/api/v1/webhooks?topic=orders/updated",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["webhook_id"], refunded.webhook_id.as_str());
    assert_eq!(listed[0]["status"], "published");
    app.stop().await;
}

#[tokio::test]
async fn deliveries_for_a_shop_without_an_install_are_recorded_not_applied_and_not_shown_to_others()
{
    let app = Harness::start().await;
    app.tenant_of(SHOP).await;
    let stranger = "stranger.myshopify.com";
    app.sim.add_shop(ordernimbus_e2e::ShopSeed::new(stranger));
    let report = app
        .sim
        .deliver(
            stranger,
            "orders/create",
            order("2026-03-01T09:00:00+01:00", 3, false),
            DeliveryOptions::default(),
        )
        .await;
    assert_eq!(app.processed(&report).await, "ignored");
    let (_, _, listed) = app
        .get_as(&app.session_token(SHOP), "/api/v1/webhooks")
        .await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|delivery| delivery["shop"] == SHOP),
        "{listed}"
    );
    let replay = app
        .http
        .post(app.url(&format!("/api/v1/webhooks/{}/replay", report.webhook_id)))
        .bearer_auth(app.session_token(SHOP))
        .send()
        .await
        .unwrap();
    assert_eq!(
        replay.status(),
        StatusCode::NOT_FOUND,
        "another shop's delivery is not replayable"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_second_delivery_of_one_event_is_kept_as_duplicate_and_not_applied() {
    let app = Harness::start().await;
    app.tenant_of(SHOP).await;
    let options = |id: &str| DeliveryOptions {
        webhook_id: Some(id.to_owned()),
        ..DeliveryOptions::default()
    };
    let first = app
        .sim
        .deliver(
            SHOP,
            "orders/create",
            order("2026-03-01T09:00:00+01:00", 3, false),
            options("wh-a"),
        )
        .await;
    assert_eq!(app.processed(&first).await, "applied");
    // Shopify sends one delivery per subscription: same event id, another webhook id.
    let event_id = {
        use ordernimbus_backend::store::Store;
        app.store()
            .delivery("wh-a")
            .await
            .unwrap()
            .unwrap()
            .event_id
            .unwrap()
    };
    let body = order("2026-03-01T09:00:00+01:00", 3, false).to_string();
    let response = app
        .http
        .post(app.url("/webhooks"))
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-hmac-sha256", ordernimbus_webhooks_sign(&body))
        .header("x-shopify-shop-domain", SHOP)
        .header("x-shopify-api-version", "2026-10")
        .header("x-shopify-webhook-id", "wh-b")
        .header("x-shopify-event-id", &event_id)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let second = app.answered_delivery("wh-b").await;
    assert_eq!(
        second.status,
        ordernimbus_backend::domain::DeliveryStatus::Duplicate
    );
    assert_eq!(tee_units(&app).await, [3.0]);
    app.stop().await;
}

fn ordernimbus_webhooks_sign(body: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(crate::harness::API_SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn products_feed_the_catalogue_and_inventory_levels_become_stock_newest_first() {
    let app = Harness::start().await;
    app.tenant_of(SHOP).await;
    let product = json!({"id": 632_910_392_u64, "title": "Tee", "variants": [
        {"id": 808_950_810_u64, "sku": "TEE-1", "inventory_item_id": 271_878_346_596_884_015_u64}
    ]});
    let report = app
        .sim
        .deliver(SHOP, "products/create", product, DeliveryOptions::default())
        .await;
    assert_eq!(app.processed(&report).await, "applied");
    let level = |available: u32, at: &str| {
        json!({"inventory_item_id": 271_878_346_596_884_015_u64, "location_id": 24_826_418,
               "available": available, "updated_at": at})
    };
    let newer = app
        .sim
        .deliver(
            SHOP,
            "inventory_levels/update",
            level(6, "2026-03-02T10:00:00Z"),
            DeliveryOptions::default(),
        )
        .await;
    assert_eq!(app.processed(&newer).await, "applied");
    let older = app
        .sim
        .deliver(
            SHOP,
            "inventory_levels/update",
            level(9, "2026-03-01T10:00:00Z"),
            DeliveryOptions::default(),
        )
        .await;
    assert_eq!(app.processed(&older).await, "stale");
    let (status, _, stock) = app
        .get_as(&app.session_token(SHOP), "/api/v1/inventory")
        .await;
    assert_eq!(status, StatusCode::OK, "{stock}");
    let row = &stock.as_array().unwrap()[0];
    assert_eq!(row["sku"], "TEE-1");
    assert_eq!(row["location"], "shopify-location-24826418");
    assert_eq!(row["on_hand"], 6.0);
    // An item the catalogue does not know is recorded, not applied.
    let unknown = app
        .sim
        .deliver(
            SHOP,
            "inventory_levels/update",
            json!({"inventory_item_id": 1, "location_id": 2, "available": 3, "updated_at": "2026-03-02T10:00:00Z"}),
            DeliveryOptions::default(),
        )
        .await;
    assert_eq!(app.processed(&unknown).await, "ignored");
    app.stop().await;
}

#[tokio::test]
async fn an_order_too_large_to_travel_inline_is_applied_from_the_delivery_log() {
    let app = Harness::start().await;
    app.tenant_of(SHOP).await;
    let mut big = order("2026-03-01T09:00:00+01:00", 2, false);
    big["note"] = json!("n".repeat(300 * 1024));
    let report = app
        .sim
        .deliver(SHOP, "orders/create", big, DeliveryOptions::default())
        .await;
    assert_eq!(app.processed(&report).await, "applied");
    assert_eq!(tee_units(&app).await, [2.0]);
    app.stop().await;
}
