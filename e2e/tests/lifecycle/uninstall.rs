//! Uninstall, a late uninstall after a reinstall, and shop/redact.

use chrono::{Duration, Utc};
use ordernimbus_e2e::DeliveryOptions;
use reqwest::StatusCode;

use crate::harness::{Harness, SHOP};

async fn upload_sales(app: &Harness) {
    let csv = "date,sku,quantity\n2026-03-01,TEE-1,3\n2026-03-02,TEE-1,4\n";
    let response = app
        .http
        .post(app.url("/api/v1/uploads"))
        .bearer_auth(app.session_token(SHOP))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn units(app: &Harness) -> usize {
    let (status, _, body) = app.get_as(&app.session_token(SHOP), "/api/v1/sales").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().len()
}

#[tokio::test]
async fn uninstall_keeps_data_a_late_uninstall_cannot_undo_a_reinstall_and_shop_redact_erases() {
    let app = Harness::start().await;
    let first = app.tenant_of(SHOP).await;
    upload_sales(&app).await;
    assert_eq!(units(&app).await, 2);

    // Uninstall: Shopify revokes the token and tells the app.
    let uninstalled_at = Utc::now();
    let report = app.sim.uninstall(SHOP).await;
    assert_eq!(app.processed(&report).await, "uninstalled");
    let store = app.store();
    let install = store_install(&store).await;
    assert_eq!(
        install.state,
        ordernimbus_backend::domain::InstallState::Uninstalled
    );
    assert!(
        install.credentials.is_none(),
        "tokens are deleted at uninstall"
    );

    // Reinstall (the merchant opens the app again): same tenant, data kept.
    let again = app.tenant_of(SHOP).await;
    assert_eq!(again["tenant_id"], first["tenant_id"]);
    assert_eq!(units(&app).await, 2);

    // The first uninstall's delivery arrives again, late: it must not undo the reinstall.
    let late = app
        .sim
        .deliver(
            SHOP,
            "app/uninstalled",
            app.sim.app_uninstalled_payload(SHOP),
            DeliveryOptions {
                triggered_at: Some(uninstalled_at - Duration::seconds(1)),
                ..DeliveryOptions::default()
            },
        )
        .await;
    assert_eq!(app.processed(&late).await, "stale_after_reinstall");
    let install = store_install(&store).await;
    assert_eq!(
        install.state,
        ordernimbus_backend::domain::InstallState::Installed
    );
    let (status, _, body) = app.get_as(&app.session_token(SHOP), "/api/v1/shop").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A real uninstall, then shop/redact 48 hours later: everything of the shop goes.
    let report = app.sim.uninstall(SHOP).await;
    assert_eq!(app.processed(&report).await, "uninstalled");
    let redact = app
        .sim
        .deliver(
            SHOP,
            "shop/redact",
            app.sim.shop_redact_payload(SHOP),
            DeliveryOptions::default(),
        )
        .await;
    // The erasure takes the shop's deliveries with it, this one included: wait on the audit log.
    assert!(redact.delivered);
    wait_for_log(&store, 4).await;
    use ordernimbus_backend::store::Store;
    let shop = ordernimbus_backend::shopify::shop::ShopDomain::parse(SHOP).unwrap();
    assert!(store.shop_install(&shop).await.unwrap().is_none());
    let tenant_id =
        ordernimbus_backend::domain::TenantId::parse(first["tenant_id"].as_str().unwrap()).unwrap();
    assert!(
        store.tenant(&tenant_id).await.is_err(),
        "the tenant is erased"
    );
    let outcomes: Vec<String> = store
        .compliance_log(&shop)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| format!("{} {}", entry.topic, entry.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            "app/uninstalled uninstalled",
            "app/uninstalled stale_after_reinstall",
            "app/uninstalled uninstalled",
            "shop/redact erased"
        ]
    );

    // Installing again starts from nothing.
    let fresh = app.tenant_of(SHOP).await;
    assert_ne!(fresh["tenant_id"], first["tenant_id"]);
    assert_eq!(units(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn shop_redact_for_a_reinstalled_shop_erases_nothing() {
    let app = Harness::start().await;
    app.tenant_of(SHOP).await;
    upload_sales(&app).await;
    let redact = app
        .sim
        .deliver(
            SHOP,
            "shop/redact",
            app.sim.shop_redact_payload(SHOP),
            DeliveryOptions::default(),
        )
        .await;
    assert_eq!(app.processed(&redact).await, "skipped_reinstalled");
    assert_eq!(units(&app).await, 2);
    app.stop().await;
}

#[tokio::test]
async fn scopes_update_records_the_granted_scopes() {
    let app = Harness::start().await;
    app.tenant_of(SHOP).await;
    let payload = app.sim.scopes_update_payload(
        SHOP,
        &["read_orders", "read_products"],
        &["read_orders", "read_products", "read_locations"],
    );
    let report = app
        .sim
        .deliver(
            SHOP,
            "app/scopes_update",
            payload,
            DeliveryOptions::default(),
        )
        .await;
    assert_eq!(app.processed(&report).await, "scopes_recorded");
    let install = store_install(&app.store()).await;
    assert_eq!(
        install.scopes,
        ["read_orders", "read_products", "read_locations"]
    );
    app.stop().await;
}

async fn store_install(
    store: &ordernimbus_backend::store::sqlite::SqliteStore,
) -> ordernimbus_backend::domain::ShopInstall {
    use ordernimbus_backend::store::Store;
    let shop = ordernimbus_backend::shopify::shop::ShopDomain::parse(SHOP).unwrap();
    store.shop_install(&shop).await.unwrap().unwrap()
}

async fn wait_for_log(store: &ordernimbus_backend::store::sqlite::SqliteStore, entries: usize) {
    use ordernimbus_backend::store::Store;
    let shop = ordernimbus_backend::shopify::shop::ShopDomain::parse(SHOP).unwrap();
    for _ in 0..500 {
        if store.compliance_log(&shop).await.unwrap().len() >= entries {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the compliance log did not reach {entries} entries");
}
