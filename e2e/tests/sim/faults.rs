//! Fault injection on the token and GraphQL endpoints.

use std::time::{Duration, Instant};

use crate::support::{Harness, SHOP};

#[tokio::test]
async fn failed_token_requests_answer_the_armed_status_then_recover() {
    let harness = Harness::start().await;
    harness.sim.faults().fail_token_requests(2, 503);
    let body = serde_json::json!({"client_id": "x"});
    assert_eq!(harness.post_token(body.clone()).await.0, 503);
    assert_eq!(harness.post_token(body).await.0, 503);
    harness.install().await;
    assert_eq!(harness.sim.token_requests(SHOP).len(), 3);
}

#[tokio::test]
async fn delayed_token_requests_take_at_least_the_delay() {
    let harness = Harness::start().await;
    harness
        .sim
        .faults()
        .delay_token_requests(Duration::from_millis(200));
    let started = Instant::now();
    harness.install().await;
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn failed_graphql_requests_answer_the_armed_status_then_recover() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    harness.sim.faults().fail_graphql(1, 502);
    assert_eq!(harness.graphql(&token, "{ shop { name } }").await.0, 502);
    assert_eq!(harness.graphql(&token, "{ shop { name } }").await.0, 200);
}

#[tokio::test]
async fn revoked_tokens_are_refused_and_reported_revoked() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    harness.sim.faults().revoke_tokens(SHOP);
    assert_eq!(harness.graphql(&token, "{ shop { name } }").await.0, 401);
    assert!(harness.sim.tokens(SHOP).iter().all(|token| token.revoked));
}

#[tokio::test]
async fn an_emptied_bucket_throttles_the_next_query() {
    let harness = Harness::start().await;
    let token = harness.access_token().await;
    harness.sim.faults().set_available_points(SHOP, 0.0);
    let (_, body) = harness.graphql(&token, "{ shop { name } }").await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "THROTTLED");
}
