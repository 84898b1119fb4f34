//! Authorization code grant: authorize redirect, its HMAC, code exchange and the error shapes.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{API_KEY, Harness, SECRET, SHOP, expected_query_hmac, param, query_pairs};

fn authorize_url(harness: &Harness, redirect_uri: &str, extra: &str) -> String {
    format!(
        "{}/admin/oauth/authorize?client_id={API_KEY}&scope=read_orders,read_products&redirect_uri={redirect_uri}&state=nonce%20123{extra}",
        harness.sim.admin_url(SHOP)
    )
}

async fn authorize(harness: &Harness) -> Vec<(String, String)> {
    let location = harness
        .sim
        .follow_authorize(&authorize_url(
            harness,
            "http://127.0.0.1:9/auth/callback",
            "",
        ))
        .await
        .expect("the simulator approves a valid authorize request");
    assert!(
        location.starts_with("http://127.0.0.1:9/auth/callback?"),
        "{location}"
    );
    query_pairs(&location)
}

async fn exchange(harness: &Harness, code: &str, secret: &str) -> (u16, Value) {
    harness
        .post_token(
            json!({"client_id": API_KEY, "client_secret": secret, "code": code, "expiring": "1"}),
        )
        .await
}

#[tokio::test]
async fn approving_redirects_to_the_callback_with_a_verifiable_hmac() {
    let harness = Harness::start().await;
    let pairs = authorize(&harness).await;
    let names: Vec<&str> = pairs.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["code", "hmac", "host", "shop", "state", "timestamp"]
    );
    assert_eq!(param(&pairs, "state").unwrap(), "nonce 123");
    assert_eq!(param(&pairs, "shop").unwrap(), SHOP);
    assert_eq!(
        param(&pairs, "hmac").unwrap(),
        expected_query_hmac(SECRET, &pairs)
    );
    let host = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(param(&pairs, "host").unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(host).unwrap(),
        "admin.shopify.com/store/acme"
    );
    let timestamp: i64 = param(&pairs, "timestamp").unwrap().parse().unwrap();
    assert!((timestamp - chrono::Utc::now().timestamp()).abs() < 5);
}

#[tokio::test]
async fn exchanging_the_code_installs_the_app_with_an_expiring_offline_token() {
    let harness = Harness::start().await;
    assert!(!harness.sim.installed(SHOP));
    let code = param(&authorize(&harness).await, "code").unwrap();
    let (status, body) = exchange(&harness, &code, SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().unwrap().starts_with("shpat_"));
    assert_eq!(body["scope"], "read_orders,read_products");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["refresh_token_expires_in"], 7_776_000);
    assert!(body["refresh_token"].is_string());
    assert!(harness.sim.installed(SHOP));
    assert_eq!(
        harness.sim.granted_scopes(SHOP),
        ["read_orders", "read_products"]
    );
    assert_eq!(harness.sim.token_requests(SHOP), ["authorization_code"]);
    let (status, shop) = harness
        .graphql(
            body["access_token"].as_str().unwrap(),
            "{ shop { myshopifyDomain } }",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(shop["data"]["shop"]["myshopifyDomain"], SHOP);
}

#[tokio::test]
async fn a_code_works_once() {
    let harness = Harness::start().await;
    let code = param(&authorize(&harness).await, "code").unwrap();
    assert_eq!(exchange(&harness, &code, SECRET).await.0, 200);
    let (status, body) = exchange(&harness, &code, SECRET).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"error": "invalid_request", "error_description": "The authorization code was not found or was already used"})
    );
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let harness = Harness::start().await;
    let code = param(&authorize(&harness).await, "code").unwrap();
    harness.sim.clock().advance(Duration::from_secs(61));
    let (status, body) = exchange(&harness, &code, SECRET).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_request");
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_and_the_code_survives() {
    let harness = Harness::start().await;
    let code = param(&authorize(&harness).await, "code").unwrap();
    let (status, body) = exchange(&harness, &code, "not-the-secret").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(exchange(&harness, &code, SECRET).await.0, 200);
}

#[tokio::test]
async fn a_redirect_uri_outside_the_allowed_list_gets_an_error_page() {
    let harness = Harness::start().await;
    let error = harness
        .sim
        .follow_authorize(&authorize_url(
            &harness,
            "http://127.0.0.1:9/auth/callback/evil",
            "",
        ))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("400"), "{error}");
    assert!(error.to_string().contains("redirect_uri"), "{error}");
}

#[tokio::test]
async fn an_unknown_client_id_gets_an_error_page() {
    let harness = Harness::start().await;
    let url = authorize_url(&harness, "http://127.0.0.1:9/auth/callback", "")
        .replace(API_KEY, "someone-else");
    let error = harness.sim.follow_authorize(&url).await.unwrap_err();
    assert!(error.to_string().contains("400"), "{error}");
}

#[tokio::test]
async fn the_per_user_grant_option_yields_an_online_token() {
    let harness = Harness::start().await;
    let url = authorize_url(
        &harness,
        "http://127.0.0.1:9/auth/callback",
        "&grant_options[]=per-user",
    );
    let code = param(
        &query_pairs(&harness.sim.follow_authorize(&url).await.unwrap()),
        "code",
    )
    .unwrap();
    let (status, body) = exchange(&harness, &code, SECRET).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().unwrap().starts_with("shpua_"));
    assert!(body["associated_user"]["id"].is_u64());
    assert_eq!(body["associated_user_scope"], "read_orders,read_products");
    assert!(body.get("refresh_token").is_none());
}

#[tokio::test]
async fn a_form_encoded_exchange_without_expiring_gets_a_non_expiring_token() {
    let harness = Harness::start().await;
    let code = param(&authorize(&harness).await, "code").unwrap();
    let response = harness
        .http
        .post(harness.token_url())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "client_id={API_KEY}&client_secret={SECRET}&code={code}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(
        body.get("expires_in").is_none() && body.get("refresh_token").is_none(),
        "{body}"
    );
    assert_eq!(harness.sim.tokens(SHOP)[0].expires_at, None);
}

#[tokio::test]
async fn the_install_link_carries_a_verifiable_hmac() {
    let harness = Harness::start().await;
    let link = harness.sim.install_link(SHOP);
    assert!(link.starts_with("http://127.0.0.1:9/auth?"), "{link}");
    let pairs = query_pairs(&link);
    assert_eq!(param(&pairs, "embedded").unwrap(), "1");
    assert_eq!(param(&pairs, "shop").unwrap(), SHOP);
    assert_eq!(
        param(&pairs, "hmac").unwrap(),
        expected_query_hmac(SECRET, &pairs)
    );
}
