//! Token exchange of App Bridge session tokens.

use serde_json::{Value, json};

use crate::support::{API_KEY, Harness, SECRET, SHOP};

async fn exchange(harness: &Harness, subject_token: &str, requested: &str) -> (u16, Value) {
    harness
        .post_token(json!({
            "client_id": API_KEY,
            "client_secret": SECRET,
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "requested_token_type": format!("urn:shopify:params:oauth:token-type:{requested}"),
            "expiring": "1",
        }))
        .await
}

#[tokio::test]
async fn an_offline_exchange_installs_the_app_with_the_configured_scopes() {
    let harness = Harness::start().await;
    let (status, body) = exchange(
        &harness,
        &harness.sim.session_token(SHOP, 7),
        "offline-access-token",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 3600);
    assert!(
        body["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("shprt_")
    );
    assert!(harness.sim.installed(SHOP));
    assert_eq!(body["scope"], harness.sim.config().scopes);
    let tokens = harness.sim.tokens(SHOP);
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens
            .iter()
            .all(|token| token.grant_type == "urn:ietf:params:oauth:grant-type:token-exchange")
    );
}

#[tokio::test]
async fn an_online_exchange_names_the_session_tokens_user() {
    let harness = Harness::start().await;
    let (status, body) = exchange(
        &harness,
        &harness.sim.session_token(SHOP, 7),
        "online-access-token",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["associated_user"]["id"], 7);
    assert!(body["associated_user_scope"].is_string());
    assert!(body["expires_in"].is_u64());
}

#[tokio::test]
async fn an_expired_session_token_is_an_invalid_subject_token() {
    let harness = Harness::start().await;
    let now = chrono::Utc::now().timestamp();
    let token = harness.sim.session_token_with(SHOP, |claims| {
        claims.insert("exp".into(), json!(now - 60));
    });
    let (status, body) = exchange(&harness, &token, "offline-access-token").await;
    assert_eq!(
        (status, body),
        (400, json!({"error": "invalid_subject_token"}))
    );
    assert!(!harness.sim.installed(SHOP));
}

#[tokio::test]
async fn a_session_token_for_another_shop_is_an_invalid_subject_token() {
    let harness = Harness::start().await;
    let token = harness.sim.session_token("other.myshopify.com", 7);
    let (status, body) = exchange(&harness, &token, "offline-access-token").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_subject_token"))
    );
}

#[tokio::test]
async fn a_session_token_for_another_app_is_an_invalid_subject_token() {
    let harness = Harness::start().await;
    let token = harness.sim.session_token_with(SHOP, |claims| {
        claims.insert("aud".into(), json!("another-app"));
    });
    assert_eq!(
        exchange(&harness, &token, "offline-access-token").await.0,
        400
    );
}

#[tokio::test]
async fn after_rotation_tokens_signed_with_the_previous_secret_still_exchange() {
    let harness = Harness::start().await;
    let old = harness.sim.session_token(SHOP, 7);
    harness.sim.rotate_secret("new-secret");
    assert_eq!(
        exchange(&harness, &old, "offline-access-token").await.0,
        200
    );
    harness.sim.revoke_previous_secret();
    assert_eq!(
        exchange(&harness, &old, "offline-access-token").await.0,
        400
    );
}
