//! Installs by token exchange and by authorization code, and token refresh.

use reqwest::StatusCode;
use std::time::Duration;

use crate::harness::{Harness, SHOP};

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

#[tokio::test]
async fn first_session_token_installs_the_shop_by_token_exchange_once() {
    let app = Harness::start().await;
    let tenant = app.tenant_of(SHOP).await;
    assert_eq!(tenant["name"], "Acme Outfitters");
    assert_eq!(tenant["timezone"], "Europe/Berlin");
    // Later requests reuse the stored offline token: no second exchange.
    let again = app.tenant_of(SHOP).await;
    assert_eq!(again["tenant_id"], tenant["tenant_id"]);
    assert_eq!(
        app.sim.token_requests(SHOP),
        vec![TOKEN_EXCHANGE.to_owned()]
    );
    assert!(app.sim.installed(SHOP));
    // The offline token works against the Admin API.
    let (status, _, shop) = app.get_as(&app.session_token(SHOP), "/api/v1/shop").await;
    assert_eq!(status, StatusCode::OK, "{shop}");
    assert_eq!(shop["shop"], SHOP);
    assert_eq!(shop["currency"], "EUR");
    app.stop().await;
}

#[tokio::test]
async fn concurrent_first_requests_share_one_token_exchange() {
    let app = Harness::start().await;
    let token = app.session_token(SHOP);
    let requests = (0..6).map(|_| app.get_as(&token, "/api/v1/tenant"));
    let answers = futures_util::future::join_all(requests).await;
    let tenants: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, _, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            body["tenant_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(tenants.len(), 1);
    assert_eq!(app.sim.token_requests(SHOP).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn authorization_code_install_verifies_the_callback_and_redirects_into_admin() {
    let app = Harness::start().await;
    // The install link Shopify sends carries hmac and timestamp; /auth verifies them.
    let begin = app
        .http
        .get(app.sim.install_link(SHOP))
        .send()
        .await
        .unwrap();
    assert_eq!(begin.status(), StatusCode::FOUND);
    let authorize = begin.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.starts_with(&app.sim.admin_url(SHOP)),
        "{authorize}"
    );
    let cookie = begin.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let nonce_cookie = cookie.split(';').next().unwrap().to_owned();

    let callback = app.sim.follow_authorize(&authorize).await.unwrap();
    assert!(
        callback.starts_with(&app.url("/auth/callback?")),
        "{callback}"
    );
    let done = app
        .http
        .get(&callback)
        .header("cookie", &nonce_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::FOUND);
    assert_eq!(
        done.headers()["location"],
        format!(
            "https://admin.shopify.com/store/acme/apps/{}",
            crate::harness::API_KEY
        )
        .as_str()
    );
    assert_eq!(
        app.sim.token_requests(SHOP),
        vec!["authorization_code".to_owned()]
    );

    // The embedded app now finds the install: no token exchange needed.
    let tenant = app.tenant_of(SHOP).await;
    assert_eq!(tenant["name"], "Acme Outfitters");
    assert_eq!(app.sim.token_requests(SHOP).len(), 1);

    // Replaying the callback (the code is spent, the nonce cookie was cleared) is refused.
    let replay = app.http.get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_once_for_concurrent_requests_with_rotation() {
    // Tokens live 60 s: inside the app's 5-minute refresh margin from the start.
    let app = Harness::start_with(|config| config.access_token_ttl = Duration::from_secs(60)).await;
    app.tenant_of(SHOP).await;
    app.sim.set_access_token_ttl(Duration::from_secs(3600));
    let token = app.session_token(SHOP);
    let requests = (0..5).map(|_| app.get_as(&token, "/api/v1/shop"));
    for (status, _, body) in futures_util::future::join_all(requests).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let grants = app.sim.token_requests(SHOP);
    assert_eq!(
        grants,
        vec![TOKEN_EXCHANGE.to_owned(), "refresh_token".to_owned()]
    );
    // Rotation: a new refresh token came with the new access token. (Shopify retires the old one
    // only once the new one is used, so that a lost refresh response can be retried.)
    let refresh_tokens: Vec<_> = app
        .sim
        .tokens(SHOP)
        .into_iter()
        .filter(|token| token.kind == ordernimbus_e2e::TokenKind::Refresh)
        .collect();
    assert_eq!(refresh_tokens.len(), 2);
    assert_ne!(refresh_tokens[0].token, refresh_tokens[1].token);
    assert!(!refresh_tokens[1].revoked);
    app.stop().await;
}

#[tokio::test]
async fn a_refused_refresh_asks_for_a_new_exchange_instead_of_looping() {
    // No first sync in the background: its own token refresh would interleave with this test's.
    let app = Harness::start_with_args(
        |config| config.access_token_ttl = Duration::from_secs(60),
        &["--sync-on-install", "false"],
    )
    .await;
    app.tenant_of(SHOP).await;
    app.sim.faults().revoke_tokens(SHOP);
    app.sim.set_access_token_ttl(Duration::from_secs(3600));
    let (status, _, body) = app.get_as(&app.session_token(SHOP), "/api/v1/shop").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "reauthorize");
    // The next Admin load exchanges its session token for new credentials.
    let (status, _, body) = app.get_as(&app.session_token(SHOP), "/api/v1/shop").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The first exchange, the one refused refresh, then one exchange: no loop.
    assert_eq!(
        app.sim.token_requests(SHOP),
        vec![
            TOKEN_EXCHANGE.to_owned(),
            "refresh_token".to_owned(),
            TOKEN_EXCHANGE.to_owned()
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn embedded_document_gets_frame_ancestors_and_a_bad_token_gets_the_bounce_page() {
    let app = Harness::start().await;
    let token = app.session_token(SHOP);
    let page = app
        .http
        .get(app.url(&format!(
            "/app?embedded=1&shop={SHOP}&host=YWRtaW4&id_token={token}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(
        page.headers()["content-security-policy"],
        format!("frame-ancestors https://{SHOP} https://admin.shopify.com").as_str()
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<meta name="shopify-api-key" content="e2e-client-id">"#));
    assert!(html.contains("https://cdn.shopify.com/shopifycloud/app-bridge.js"));

    let expired = app.sim.session_token_with(SHOP, |claims| {
        let now = chrono::Utc::now().timestamp();
        claims.insert("exp".into(), (now - 60).into());
        claims.insert("nbf".into(), (now - 120).into());
    });
    let bounce = app
        .http
        .get(app.url(&format!(
            "/app?embedded=1&shop={SHOP}&host=YWRtaW4&id_token={expired}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(bounce.status(), StatusCode::FOUND);
    let location = bounce.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/auth/session-token?"), "{location}");
    assert!(
        location.contains("shopify-reload=") && !location.contains("id_token"),
        "{location}"
    );
    let page = app.http.get(app.url(&location)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("app-bridge.js"));

    // The standalone page (CSV tenants) may not be framed at all.
    let standalone = app.http.get(app.url("/app")).send().await.unwrap();
    assert_eq!(
        standalone.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    // Responses whose bodies were not read still hold their connections, and a graceful
    // shutdown waits for every connection: let them go first.
    drop((bounce, standalone));
    app.stop().await;
}
