//! The mandatory compliance topics: customers/data_request, customers/redact, shop/redact.

use ordernimbus_backend::shopify::compliance::data_request_export;
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::store::Store;
use ordernimbus_e2e::{DeliveryOptions, Signature};

use crate::harness::{Harness, SHOP};

#[tokio::test]
async fn a_data_request_is_exported_and_a_customer_redact_erases_it_without_logging_personal_data()
{
    let app = Harness::start().await;
    app.tenant_of(SHOP).await;
    let customer = 7_305_209_442_112_u64;
    // An order of this customer arrived earlier, with their contact details.
    let order = serde_json::json!({
        "id": 5_001_122_334_455_u64, "updated_at": "2026-03-01T09:00:00Z",
        "processed_at": "2026-03-01T09:00:00Z", "email": "jane@example.com",
        "customer": {"id": customer, "email": "jane@example.com", "first_name": "Jane"},
        "shipping_address": {"address1": "1 Main St"},
        "line_items": [{"id": 1, "sku": "TEE-1", "quantity": 1, "price": "20.00"}]
    });
    let delivered = app
        .sim
        .deliver(SHOP, "orders/create", order, DeliveryOptions::default())
        .await;
    assert_eq!(app.processed(&delivered).await, "applied");
    let request = app
        .sim
        .customers_data_request_payload(SHOP, customer, &[5_001_122_334_455]);
    let request_id = request["data_request"]["id"].to_string();
    let report = app
        .sim
        .deliver(
            SHOP,
            "customers/data_request",
            request,
            DeliveryOptions {
                duplicate: true,
                ..DeliveryOptions::default()
            },
        )
        .await;
    assert_eq!(app.processed(&report).await, "export_ready");

    let store = app.store();
    let shop = ShopDomain::parse(SHOP).unwrap();
    let export = data_request_export(&store, &shop, Some(&request_id))
        .await
        .unwrap();
    let answered = &export["requests"][0];
    assert_eq!(answered["customer_id"], customer.to_string());
    assert_eq!(answered["orders_requested"][0], "5001122334455");
    let held = &answered["data_held"]["order_deliveries"];
    assert_eq!(held[0]["webhook_id"], delivered.webhook_id.as_str());
    assert_eq!(held[0]["payload"]["customer"]["email"], "jane@example.com");

    let redact = app
        .sim
        .customers_redact_payload(SHOP, customer, &[5_001_122_334_455]);
    let report = app
        .sim
        .deliver(SHOP, "customers/redact", redact, DeliveryOptions::default())
        .await;
    assert_eq!(app.processed(&report).await, "redacted");
    let export = data_request_export(&store, &shop, None).await.unwrap();
    assert_eq!(export["requests"].as_array().unwrap().len(), 0, "{export}");

    let log = store.compliance_log(&shop).await.unwrap();
    let topics: Vec<_> = log
        .iter()
        .map(|entry| format!("{} {}", entry.topic, entry.outcome))
        .collect();
    // The duplicate delivery of the data request is logged once.
    assert_eq!(
        topics,
        [
            "customers/data_request export_ready",
            "customers/redact redacted"
        ]
    );
    assert_eq!(log[1].detail["records_erased"], 1);
    assert_eq!(log[1].detail["deliveries_redacted"], 1);
    let scrubbed = store
        .delivery(&delivered.webhook_id)
        .await
        .unwrap()
        .unwrap();
    let body = String::from_utf8(scrubbed.body).unwrap();
    assert!(
        !body.contains("jane") && !body.contains("Main St"),
        "{body}"
    );
    assert!(body.contains("TEE-1"), "the sale itself stays: {body}");
    let text = serde_json::to_string(&log).unwrap();
    assert!(
        !text.contains(&customer.to_string()),
        "the audit log holds no customer id: {text}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_compliance_delivery_with_a_bad_hmac_is_refused_and_not_recorded() {
    let app = Harness::start().await;
    app.tenant_of(SHOP).await;
    let payload = app.sim.shop_redact_payload(SHOP);
    let report = app
        .sim
        .deliver(
            SHOP,
            "shop/redact",
            payload,
            DeliveryOptions {
                signature: Signature::Wrong,
                ..DeliveryOptions::default()
            },
        )
        .await;
    assert!(!report.delivered);
    assert_eq!(report.attempts[0].status, Some(401));
    let shop = ShopDomain::parse(SHOP).unwrap();
    assert!(app.store().compliance_log(&shop).await.unwrap().is_empty());
    assert!(
        app.store()
            .delivery(&report.webhook_id)
            .await
            .unwrap()
            .is_none(),
        "nothing unverified is stored"
    );
    app.stop().await;
}

#[tokio::test]
async fn during_a_secret_rotation_deliveries_signed_with_either_secret_are_accepted() {
    // The app has rotated to a new secret and still accepts the old one, which Shopify may keep
    // using for up to an hour.
    let app = Harness::start_with_args(
        |_| {},
        &[
            "--shopify-api-secret",
            "rotated-secret",
            "--shopify-previous-api-secret",
            crate::harness::API_SECRET,
        ],
    )
    .await;
    let old = app.sim.customers_redact_payload(SHOP, 1, &[]);
    let report = app
        .sim
        .deliver(SHOP, "customers/redact", old, DeliveryOptions::default())
        .await;
    assert_eq!(app.processed(&report).await, "redacted");
    app.sim.rotate_secret("rotated-secret");
    let new = app.sim.customers_redact_payload(SHOP, 2, &[]);
    let report = app
        .sim
        .deliver(SHOP, "customers/redact", new, DeliveryOptions::default())
        .await;
    assert_eq!(app.processed(&report).await, "redacted");
    let wrong = app.sim.customers_redact_payload(SHOP, 3, &[]);
    let report = app
        .sim
        .deliver(
            SHOP,
            "customers/redact",
            wrong,
            DeliveryOptions {
                signature: Signature::Wrong,
                ..DeliveryOptions::default()
            },
        )
        .await;
    assert_eq!(report.attempts[0].status, Some(401));
    app.stop().await;
}
