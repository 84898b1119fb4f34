//! The webhook receiver under a flood, killed with SIGKILL part way: every delivery answered 200 is
//! in the delivery log after a restart, and applied to sales exactly once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use ordernimbus_backend::domain::{NewInstall, SalesQuery, SealedCredentials, Timezone};
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::store::Store;
use ordernimbus_backend::store::sqlite::SqliteStore;

use crate::serve::Server;

pub(crate) const SECRET: &str = "flood-secret";
pub(crate) const SHOP: &str = "flood.myshopify.com";

pub(crate) fn shopify_flags(data_dir: &std::path::Path) -> Vec<String> {
    let _ = data_dir;
    [
        "--shopify-api-key",
        "flood-key",
        "--shopify-api-secret",
        SECRET,
        "--shopify-app-url",
        "http://127.0.0.1:1",
    ]
    .iter()
    .map(|flag| (*flag).to_owned())
    .collect()
}

pub(crate) fn order(number: u64) -> String {
    serde_json::json!({
        "id": 6_000_000_000_000_000_u64 + number,
        "created_at": "2026-03-01T09:00:00Z",
        "processed_at": "2026-03-01T09:00:00Z",
        "updated_at": "2026-03-01T09:00:00Z",
        "cancelled_at": null,
        "test": false,
        "line_items": [{"id": 7_000_000_000_000_000_u64 + number, "sku": "FLOOD-1", "quantity": 1,
                        "price": "10.00", "gift_card": false}],
        "note": "x".repeat(2000),
    })
    .to_string()
}

pub(crate) fn sign(body: &str) -> String {
    ordernimbus_webhooks::verify::sign_body(body.as_bytes(), SECRET.as_bytes())
}

pub(crate) async fn installed_store(path: &std::path::Path) {
    let store = SqliteStore::open(path.join("ordernimbus.sqlite3")).unwrap();
    install_shop(&store).await;
    store.close().await;
}

/// Installs the test shop (`SHOP`) in `store`.
pub(crate) async fn install_shop(store: &dyn Store) {
    let now = Utc::now();
    store
        .install_shop(
            &NewInstall {
                shop: ShopDomain::parse(SHOP).unwrap(),
                name: "Flood".into(),
                timezone: Timezone::default(),
                scopes: vec!["read_orders".into()],
                credentials: SealedCredentials {
                    access_token: b"sealed".to_vec(),
                    access_expires_at: None,
                    refresh_token: None,
                    refresh_expires_at: None,
                },
                at: now - chrono::Duration::hours(1),
            },
            &ordernimbus_backend::domain::TenantId::generate(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_flood_loses_no_accepted_delivery_and_applies_each_once() {
    let directory = tempfile::tempdir().unwrap();
    installed_store(directory.path()).await;
    let flags = shopify_flags(directory.path());
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut server = Server::start(directory.path(), &flag_refs);
    let url = format!("{}/webhooks", server.address);
    // A request cut off by the kill must end (in an error), whatever the socket does after.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let accepted = Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    let mut senders = Vec::new();
    for sender in 0..8u64 {
        let (client, url, accepted) = (client.clone(), url.clone(), Arc::clone(&accepted));
        senders.push(tokio::spawn(async move {
            for number in 0..10_000u64 {
                let number = sender * 100_000 + number;
                let body = order(number);
                let webhook_id = format!("flood-{number}");
                let sent = client
                    .post(&url)
                    .header("x-shopify-topic", "orders/create")
                    .header("x-shopify-hmac-sha256", sign(&body))
                    .header("x-shopify-shop-domain", SHOP)
                    .header("x-shopify-api-version", "2026-10")
                    .header("x-shopify-webhook-id", &webhook_id)
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(response) if response.status().is_success() => {
                        accepted.lock().unwrap().insert(webhook_id);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        }));
    }
    // Let the flood run, then kill the server without warning.
    while accepted.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for sender in senders {
        tokio::time::timeout(Duration::from_secs(120), sender)
            .await
            .expect("a sender still waits for the killed server")
            .unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 300);

    // Restart: the outbox and consumers finish what was stored.
    let restarted = Server::start(directory.path(), &flag_refs);
    let store = SqliteStore::open(directory.path().join("ordernimbus.sqlite3")).unwrap();
    let shop = ShopDomain::parse(SHOP).unwrap();
    let tenant = store.shop_install(&shop).await.unwrap().unwrap().tenant;
    let mut stored = 0;
    for _ in 0..3000 {
        let deliveries = store
            .deliveries(&ordernimbus_backend::domain::DeliveryFilter {
                limit: u32::MAX,
                ..Default::default()
            })
            .await
            .unwrap();
        stored = deliveries.len();
        let settled = deliveries.iter().all(|delivery| {
            delivery.status == ordernimbus_backend::domain::DeliveryStatus::Published
        });
        let units = total_units(&store, &tenant).await;
        if settled && units == stored as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logged: BTreeSet<String> = store
        .deliveries(&ordernimbus_backend::domain::DeliveryFilter {
            limit: u32::MAX,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|delivery| delivery.webhook_id)
        .collect();
    let lost: Vec<_> = accepted.difference(&logged).collect();
    assert!(lost.is_empty(), "accepted but not in the log: {lost:?}");
    // Every stored delivery (answered or cut off before its answer) is applied once: one unit each.
    let units = total_units(&store, &tenant).await;
    assert_eq!(
        units,
        stored as f64,
        "{} accepted, {stored} stored",
        accepted.len()
    );
    drop(restarted);
    store.close().await;
}

/// Net units over all of a tenant's sales.
pub(crate) async fn total_units(
    store: &dyn Store,
    tenant: &ordernimbus_backend::domain::TenantId,
) -> f64 {
    store
        .sales(tenant, &SalesQuery::default())
        .await
        .unwrap()
        .iter()
        .map(|day| day.units)
        .sum()
}

#[test]
fn webhooks_commands_name_the_bad_flag_or_the_missing_delivery() {
    let directory = tempfile::tempdir().unwrap();
    let output = crate::ordernimbus(directory.path(), &["webhooks", "list", "--status", "bogus"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--status: \"bogus\""), "{stderr}");
    let output = crate::ordernimbus(
        directory.path(),
        &["webhooks", "list", "--since", "yesterday"],
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("--since: \"yesterday\""));
    let output = crate::ordernimbus(directory.path(), &["webhooks", "show", "nope"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no delivery with webhook id nope"));
}
