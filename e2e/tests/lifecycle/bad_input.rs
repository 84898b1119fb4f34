//! Hostile and broken inputs: shops, signed queries, nonces, timestamps, session tokens, webhooks.

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{API_SECRET, Harness, SHOP};

async fn get(app: &Harness, path_and_query: &str, cookie: Option<&str>) -> (StatusCode, Value) {
    let mut request = app.http.get(app.url(path_and_query));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn hostile_shop_values_are_refused_with_a_json_error() {
    let app = Harness::start().await;
    for shop in [
        "evil.com",
        "a.myshopify.com.evil.com",
        "-a.myshopify.com",
        "acme.myshopify.com%2Fadmin",
        "acme.myshopify.com/admin",
        "https%3A%2F%2Fevil.com",
        "acme%252Emyshopify.com",
        "acme.myshopify.com%3A443",
        "",
    ] {
        let (status, body) = get(&app, &format!("/auth?shop={shop}"), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{shop}: {body}");
        assert_eq!(body["error"]["field"], "shop", "{shop}: {body}");
    }
    // Upper case and a trailing slash are normalised, the admin.shopify.com form mapped.
    for shop in [
        "ACME.myshopify.com",
        "acme.myshopify.com/",
        "admin.shopify.com%2Fstore%2Facme",
    ] {
        let response = app
            .http
            .get(app.url(&format!("/auth?shop={shop}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FOUND, "{shop}");
        let location = response.headers()["location"].to_str().unwrap();
        assert!(
            location.starts_with(&app.sim.admin_url(SHOP)),
            "{shop}: {location}"
        );
    }
    app.stop().await;
}

/// Starts an install and returns the callback URL Shopify would redirect to, and the nonce cookie.
async fn pending_install(app: &Harness) -> (String, String) {
    let begin = app
        .http
        .get(app.url(&format!("/auth?shop={SHOP}")))
        .send()
        .await
        .unwrap();
    let cookie = begin.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let authorize = begin.headers()["location"].to_str().unwrap().to_owned();
    let callback = app.sim.follow_authorize(&authorize).await.unwrap();
    let path = callback.strip_prefix(&app.app_url).unwrap().to_owned();
    (path, cookie)
}

fn replace_param(path: &str, name: &str, value: &str) -> String {
    let (route, query) = path.split_once('?').unwrap();
    let query: Vec<String> = query
        .split('&')
        .map(|pair| {
            if pair.starts_with(&format!("{name}=")) {
                format!("{name}={value}")
            } else {
                pair.to_owned()
            }
        })
        .collect();
    format!("{route}?{}", query.join("&"))
}

fn sign(query_without_hmac: &[(&str, String)]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut sorted = query_without_hmac.to_vec();
    sorted.sort();
    let message = sorted
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(API_SECRET.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn tampered_or_unsigned_callbacks_and_bad_nonces_are_refused_and_install_nothing() {
    let app = Harness::start().await;
    let (callback, cookie) = pending_install(&app).await;

    let tampered = replace_param(&callback, "code", "forged");
    let (status, body) = get(&app, &tampered, Some(&cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["code"], "invalid_hmac");

    let unsigned = callback.split("&hmac=").next().unwrap().to_owned()
        + &callback
            .split("&hmac=")
            .nth(1)
            .and_then(|rest| rest.split_once('&'))
            .map(|(_, tail)| format!("&{tail}"))
            .unwrap_or_default();
    let (status, _) = get(&app, &unsigned, Some(&cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Without this browser's nonce cookie (a replay from elsewhere), or with another nonce.
    let (status, body) = get(&app, &callback, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (_, other_cookie) = pending_install(&app).await;
    let (status, _) = get(&app, &callback, Some(&other_cookie)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A correctly signed but stale callback (timestamp 10 minutes old).
    let stale_time = (chrono::Utc::now().timestamp() - 600).to_string();
    let params = [
        ("code", "abc".to_owned()),
        ("shop", SHOP.to_owned()),
        ("state", "x".to_owned()),
        ("timestamp", stale_time.clone()),
    ];
    let stale = format!(
        "/auth/callback?code=abc&shop={SHOP}&state=x&timestamp={stale_time}&hmac={}",
        sign(&params)
    );
    let (status, body) = get(&app, &stale, Some(&cookie)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("timestamp"),
        "{body}"
    );

    assert!(
        app.sim.token_requests(SHOP).is_empty(),
        "no code was exchanged"
    );
    // The genuine callback still works.
    let done = app
        .http
        .get(app.url(&callback))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::FOUND);
    app.stop().await;
}

#[tokio::test]
async fn bad_session_tokens_get_401_with_the_retry_header_and_no_exchange() {
    let app = Harness::start().await;
    let now = chrono::Utc::now().timestamp();
    let cases: Vec<(&str, String)> = vec![
        (
            "expired",
            app.sim.session_token_with(SHOP, |claims| {
                claims.insert("exp".into(), (now - 30).into());
            }),
        ),
        (
            "not yet valid",
            app.sim.session_token_with(SHOP, |claims| {
                claims.insert("nbf".into(), (now + 60).into());
            }),
        ),
        (
            "wrong audience",
            app.sim.session_token_with(SHOP, |claims| {
                claims.insert("aud".into(), "another-app".into());
            }),
        ),
        (
            "other shop in iss",
            app.sim.session_token_with(SHOP, |claims| {
                claims.insert("iss".into(), "https://evil.myshopify.com/admin".into());
            }),
        ),
        (
            "dest not a shop",
            app.sim.session_token_with(SHOP, |claims| {
                claims.insert("dest".into(), "https://evil.com".into());
            }),
        ),
        ("wrong signature", {
            let token = app.session_token(SHOP);
            let (head, _) = token.rsplit_once('.').unwrap();
            format!("{head}.AAAA")
        }),
        ("alg none", {
            let token = app.session_token(SHOP);
            let mut parts = token.split('.');
            parts.next();
            let claims = parts.next().unwrap();
            use base64::Engine;
            let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(br#"{"alg":"none","typ":"JWT"}"#);
            format!("{header}.{claims}.")
        }),
        ("malformed", "eyJhbGciOiJIUzI1NiJ9.not-json.x".to_owned()),
    ];
    for (case, token) in cases {
        let (status, headers, body) = app.get_as(&token, "/api/v1/tenant").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert_eq!(
            headers["x-shopify-retry-invalid-session-request"], "1",
            "{case}"
        );
        assert_eq!(body["error"]["code"], "unauthorized", "{case}");
    }
    assert!(app.sim.token_requests(SHOP).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_valid_session_token_whose_exchange_cannot_reach_shopify_gets_503_not_401() {
    let app = Harness::start().await;
    app.sim.faults().fail_token_requests(1, 503);
    let (status, headers, body) = app.get_as(&app.session_token(SHOP), "/api/v1/tenant").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        headers
            .get("x-shopify-retry-invalid-session-request")
            .is_none()
    );
    assert_eq!(body["error"]["code"], "shopify_unavailable");
    // Once Shopify answers again, the same flow installs.
    app.tenant_of(SHOP).await;
    app.stop().await;
}

#[tokio::test]
async fn webhooks_without_valid_signature_or_headers_are_refused() {
    let app = Harness::start().await;
    let body = br#"{"shop_domain":"acme.myshopify.com","shop_id":1}"#;
    let signed = {
        use base64::Engine;
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(API_SECRET.as_bytes()).unwrap();
        mac.update(body);
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    };
    let post = |hmac: Option<&str>, topic: Option<&str>| {
        let mut request = app
            .http
            .post(app.url("/webhooks"))
            .body(body.to_vec())
            .header("x-shopify-shop-domain", SHOP)
            .header("x-shopify-api-version", "2026-10")
            .header("x-shopify-webhook-id", "wh-bad-1");
        if let Some(hmac) = hmac {
            request = request.header("x-shopify-hmac-sha256", hmac);
        }
        if let Some(topic) = topic {
            request = request.header("x-shopify-topic", topic);
        }
        request.send()
    };
    let missing = post(None, Some("shop/redact")).await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let wrong = post(Some("bm90IHRoZSBobWFj"), Some("shop/redact"))
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let no_topic = post(Some(&signed), None).await.unwrap();
    assert_eq!(no_topic.status(), StatusCode::BAD_REQUEST);
    let error: Value = no_topic.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("topic"),
        "{error}"
    );
    // A correctly signed delivery is stored, then answered 200.
    let orders = post(Some(&signed), Some("orders/create")).await.unwrap();
    assert_eq!(orders.status(), StatusCode::OK);
    let stored = app.answered_delivery("wh-bad-1").await;
    assert_eq!(stored.topic, "orders/create");
    assert_eq!(stored.body, body);
    app.stop().await;
}

#[tokio::test]
async fn an_oversized_delivery_and_bad_listing_parameters_get_json_errors() {
    let app = Harness::start().await;
    let response = app
        .http
        .post(app.url("/webhooks"))
        .header("x-shopify-topic", "orders/create")
        .body(vec![b'x'; 6 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large");
    app.tenant_of(SHOP).await;
    let token = app.session_token(SHOP);
    for (query, field) in [("status=bogus", "status"), ("limit=0", "limit")] {
        let (status, _, body) = app
            .get_as(&token, &format!("/api/v1/webhooks?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert_eq!(body["error"]["field"], field, "{query}: {body}");
    }
    app.stop().await;
}
