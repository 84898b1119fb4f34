//! Refresh of expiring offline tokens: rotation and Shopify's retry window for a lost response.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{API_KEY, Harness, SECRET, SHOP};

async fn refresh(harness: &Harness, refresh_token: &str) -> (u16, Value) {
    harness
        .post_token(json!({
            "client_id": API_KEY,
            "client_secret": SECRET,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        }))
        .await
}

fn refresh_token_of(body: &Value) -> String {
    body["refresh_token"]
        .as_str()
        .expect("an expiring token response has refresh_token")
        .to_owned()
}

#[tokio::test]
async fn refreshing_returns_a_new_pair_and_the_old_refresh_token_dies_once_the_new_one_is_used() {
    let harness = Harness::start().await;
    let first = refresh_token_of(&harness.install().await);
    let (status, second) = refresh(&harness, &first).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(refresh_token_of(&second), first);
    assert_eq!(second["expires_in"], 3600);
    assert_eq!(second["refresh_token_expires_in"], 7_776_000);
    assert_eq!(refresh(&harness, &refresh_token_of(&second)).await.0, 200);
    let (status, body) = refresh(&harness, &first).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        harness.sim.token_requests(SHOP),
        [
            "urn:ietf:params:oauth:grant-type:token-exchange",
            "refresh_token",
            "refresh_token",
            "refresh_token"
        ]
    );
}

#[tokio::test]
async fn a_used_refresh_token_can_be_retried_until_its_replacement_is_used() {
    let harness = Harness::start().await;
    let first = refresh_token_of(&harness.install().await);
    let (status, _lost) = refresh(&harness, &first).await;
    assert_eq!(status, 200);
    let (status, retried) = refresh(&harness, &first).await;
    assert_eq!(status, 200, "{retried}");
    let (status, _) = refresh(&harness, &refresh_token_of(&retried)).await;
    assert_eq!(status, 200);
    assert_eq!(refresh(&harness, &first).await.0, 400);
}

#[tokio::test]
async fn the_new_access_token_works_on_the_admin_api() {
    let harness = Harness::start().await;
    let first = refresh_token_of(&harness.install().await);
    let (_, second) = refresh(&harness, &first).await;
    let (status, _) = harness
        .graphql(
            second["access_token"].as_str().unwrap(),
            "{ shop { name } }",
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_refresh_token_expires_after_ninety_days() {
    let harness = Harness::start().await;
    let first = refresh_token_of(&harness.install().await);
    harness
        .sim
        .clock()
        .advance(Duration::from_secs(90 * 24 * 3600 + 1));
    assert_eq!(refresh(&harness, &first).await.0, 400);
}

#[tokio::test]
async fn uninstalling_kills_the_refresh_token() {
    let harness = Harness::start().await;
    let first = refresh_token_of(&harness.install().await);
    harness.sim.uninstall(SHOP).await;
    assert_eq!(refresh(&harness, &first).await.0, 400);
}
