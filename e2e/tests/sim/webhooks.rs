//! Webhook deliveries against a tiny axum receiver that records what arrives.

use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use ordernimbus_e2e::{DeliveryOptions, HeaderFamily, Signature};
use serde_json::{Value, json};

use crate::support::{Harness, SECRET, SHOP, Setup};

#[derive(Clone, Default)]
pub struct Receiver {
    statuses: Arc<Mutex<Vec<u16>>>,
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Receiver {
    /// Answers `statuses` in turn, then 200; returns the app URL.
    pub async fn start(statuses: &[u16]) -> (Self, String) {
        let receiver = Self {
            statuses: Arc::new(Mutex::new(statuses.to_vec())),
            ..Self::default()
        };
        let router = axum::Router::new()
            .route("/webhooks", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port is free");
        let url = format!(
            "http://{}",
            listener
                .local_addr()
                .expect("a bound listener has an address")
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        (receiver, url)
    }

    pub fn received(&self) -> Vec<(HeaderMap, Bytes)> {
        self.received
            .lock()
            .expect("the receiver lock is not poisoned")
            .clone()
    }
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    receiver
        .received
        .lock()
        .expect("the receiver lock is not poisoned")
        .push((headers, body));
    let mut statuses = receiver
        .statuses
        .lock()
        .expect("the receiver lock is not poisoned");
    let status = if statuses.is_empty() {
        200
    } else {
        statuses.remove(0)
    };
    StatusCode::from_u16(status).expect("tests script valid statuses")
}

async fn harness_with_receiver(statuses: &[u16]) -> (Harness, Receiver) {
    let harness = Setup::new().start().await;
    let (receiver, url) = Receiver::start(statuses).await;
    harness.sim.set_app_url(&url);
    (harness, receiver)
}

pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[tokio::test]
async fn a_failing_receiver_is_retried_until_it_answers_2xx() {
    let (harness, receiver) = harness_with_receiver(&[500, 503]).await;
    let payload = harness.sim.shop_redact_payload(SHOP);
    let report = harness
        .sim
        .deliver(
            SHOP,
            "shop/redact",
            payload.clone(),
            DeliveryOptions::default(),
        )
        .await;
    assert!(report.delivered);
    let statuses: Vec<Option<u16>> = report
        .attempts
        .iter()
        .map(|attempt| attempt.status)
        .collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    let received = receiver.received();
    assert_eq!(received.len(), 3);
    for (headers, body) in &received {
        assert_eq!(header(headers, "x-shopify-topic"), Some("shop/redact"));
        assert_eq!(header(headers, "x-shopify-shop-domain"), Some(SHOP));
        assert_eq!(header(headers, "x-shopify-api-version"), Some("2026-10"));
        assert_eq!(
            header(headers, "x-shopify-webhook-id"),
            Some(report.webhook_id.as_str())
        );
        assert_eq!(header(headers, "content-type"), Some("application/json"));
        assert!(header(headers, "x-shopify-event-id").is_some());
        assert!(header(headers, "x-shopify-triggered-at").is_some_and(|at| at.ends_with('Z')));
        assert_eq!(
            header(headers, "x-shopify-hmac-sha256"),
            Some(signature(SECRET, body).as_str())
        );
        assert_eq!(serde_json::from_slice::<Value>(body).unwrap(), payload);
    }
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_retries_run_out() {
    let (harness, receiver) = harness_with_receiver(&[302, 302, 302, 302]).await;
    let report = harness
        .sim
        .deliver(SHOP, "shop/redact", json!({}), DeliveryOptions::default())
        .await;
    assert!(!report.delivered);
    assert_eq!(report.attempts.len(), 4);
    assert_eq!(receiver.received().len(), 4);
}

#[tokio::test]
async fn an_unreachable_app_is_a_failed_attempt_with_an_error() {
    let harness = Harness::start().await;
    let report = harness
        .sim
        .deliver(SHOP, "shop/redact", json!({}), DeliveryOptions::default())
        .await;
    assert!(!report.delivered);
    assert!(
        report
            .attempts
            .iter()
            .all(|attempt| attempt.status.is_none() && attempt.error.is_some())
    );
}

#[tokio::test]
async fn a_duplicate_arrives_with_the_same_webhook_id() {
    let (harness, receiver) = harness_with_receiver(&[]).await;
    let options = DeliveryOptions {
        webhook_id: Some("fixed-id".into()),
        duplicate: true,
        ..DeliveryOptions::default()
    };
    let report = harness
        .sim
        .deliver(SHOP, "orders/create", json!({"id": 1}), options)
        .await;
    assert_eq!(report.attempts.len(), 2);
    let ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|(headers, _)| header(headers, "x-shopify-webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["fixed-id", "fixed-id"]);
}

#[tokio::test]
async fn wrong_missing_and_previous_signatures_are_sent_as_asked() {
    let (harness, receiver) = harness_with_receiver(&[]).await;
    harness.sim.rotate_secret("rotated-secret");
    for signature_kind in [
        Signature::Wrong,
        Signature::Missing,
        Signature::Previous,
        Signature::Current,
    ] {
        let options = DeliveryOptions {
            signature: signature_kind,
            ..DeliveryOptions::default()
        };
        harness
            .sim
            .deliver(SHOP, "shop/redact", json!({"n": 1}), options)
            .await;
    }
    let received = receiver.received();
    let hmac =
        |index: usize| header(&received[index].0, "x-shopify-hmac-sha256").map(str::to_owned);
    let body = &received[0].1;
    assert!(hmac(0).is_some_and(
        |sent| sent != signature(SECRET, body) && sent != signature("rotated-secret", body)
    ));
    assert_eq!(hmac(1), None);
    assert_eq!(hmac(2), Some(signature(SECRET, body)));
    assert_eq!(hmac(3), Some(signature("rotated-secret", body)));
}

#[tokio::test]
async fn within_the_signing_lag_current_deliveries_use_the_previous_secret() {
    let mut setup = Setup::new();
    setup.config.webhook_signing_lag = std::time::Duration::from_secs(3600);
    let harness = setup.start().await;
    let (receiver, url) = Receiver::start(&[]).await;
    harness.sim.set_app_url(&url);
    harness.sim.rotate_secret("rotated-secret");
    harness
        .sim
        .deliver(SHOP, "shop/redact", json!({}), DeliveryOptions::default())
        .await;
    harness
        .sim
        .clock()
        .advance(std::time::Duration::from_secs(3601));
    harness
        .sim
        .deliver(SHOP, "shop/redact", json!({}), DeliveryOptions::default())
        .await;
    let received = receiver.received();
    assert_eq!(
        header(&received[0].0, "x-shopify-hmac-sha256"),
        Some(signature(SECRET, &received[0].1).as_str())
    );
    assert_eq!(
        header(&received[1].0, "x-shopify-hmac-sha256"),
        Some(signature("rotated-secret", &received[1].1).as_str())
    );
}

#[tokio::test]
async fn the_events_family_uses_unprefixed_header_names() {
    let (harness, receiver) = harness_with_receiver(&[]).await;
    let options = DeliveryOptions {
        header_family: HeaderFamily::Shopify,
        ..DeliveryOptions::default()
    };
    harness
        .sim
        .deliver(SHOP, "shop/redact", json!({}), options)
        .await;
    let (headers, body) = &receiver.received()[0];
    assert_eq!(header(headers, "shopify-topic"), Some("shop/redact"));
    assert_eq!(
        header(headers, "shopify-hmac-sha256"),
        Some(signature(SECRET, body).as_str())
    );
    assert!(headers.get("x-shopify-topic").is_none());
}

#[tokio::test]
async fn uninstalling_revokes_the_token_before_app_uninstalled_arrives() {
    let (harness, receiver) = harness_with_receiver(&[]).await;
    let token = harness.access_token().await;
    let report = harness.sim.uninstall(SHOP).await;
    assert!(report.delivered);
    assert!(!harness.sim.installed(SHOP));
    assert_eq!(harness.graphql(&token, "{ shop { name } }").await.0, 401);
    let (headers, body) = &receiver.received()[0];
    assert_eq!(header(headers, "x-shopify-topic"), Some("app/uninstalled"));
    let body: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(body["myshopify_domain"], SHOP);
    assert!(body["id"].is_u64());
}

#[tokio::test]
async fn compliance_payloads_have_shopifys_shapes() {
    let harness = Harness::start().await;
    let seed = harness.sim.shop(SHOP).unwrap();
    let request = harness
        .sim
        .customers_data_request_payload(SHOP, 191_167, &[299_938, 280_263]);
    assert_eq!(request["shop_id"], seed.shop_id);
    assert_eq!(request["shop_domain"], SHOP);
    assert_eq!(request["orders_requested"], json!([299_938, 280_263]));
    assert_eq!(request["customer"]["id"], 191_167);
    assert!(request["data_request"]["id"].is_u64());
    let redact = harness
        .sim
        .customers_redact_payload(SHOP, 191_167, &[299_938]);
    assert_eq!(redact["orders_to_redact"], json!([299_938]));
    assert_eq!(
        harness.sim.shop_redact_payload(SHOP),
        json!({"shop_id": seed.shop_id, "shop_domain": SHOP})
    );
    let scopes = harness.sim.scopes_update_payload(
        SHOP,
        &["read_orders"],
        &["read_orders", "read_products"],
    );
    assert_eq!(scopes["current"], json!(["read_orders", "read_products"]));
    assert_eq!(scopes["previous"], json!(["read_orders"]));
}
