//! The endpoints the UI reads: `GET /api/v1/overview`, `GET /api/v1/products[/export]`,
//! `GET|PUT /api/v1/settings`; and the standalone browser session (sign-in with a key or a
//! one-time link, the session cookie, CSRF on unsafe requests, sign-out).

use chrono::{Days, NaiveDate, Utc};
use ordernimbus_backend::domain::BrowserSecret;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestTenant};

/// 70 days of three SKUs at two stores; `FALLING` sells less in the last four weeks.
fn sales_csv() -> String {
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let mut csv = String::from("date,sku,qty,store,unit_price,product\n");
    for day in 0..70u64 {
        let date = start + Days::new(day);
        csv.push_str(&format!("{date},STEADY,10,North,2.5,Steady mug\n"));
        csv.push_str(&format!("{date},STEADY,5,South,2.5,Steady mug\n"));
        let falling = if day < 42 { 8 } else { 4 };
        csv.push_str(&format!("{date},FALLING,{falling},North,4,Falling vase\n"));
        csv.push_str(&format!(
            "{date},RARE,{},North,9,Rare lamp\n",
            u64::from(day % 10 == 0)
        ));
    }
    csv
}

async fn refreshed(app: &TestApp) -> TestTenant {
    let tenant = app.tenant("UTC").await;
    let (status, report) = app.upload(&tenant, sales_csv()).await;
    assert_eq!(status, 201, "{report}");
    app.refresher.run_once().await;
    tenant
}

async fn send(
    app: &TestApp,
    tenant: &TestTenant,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, Value) {
    let response = app
        .client
        .request(method.parse().unwrap(), format!("{}{path}", app.address))
        .bearer_auth(&tenant.key)
        .header(
            "content-type",
            if path.contains("inventory") {
                "text/csv"
            } else {
                "application/json"
            },
        )
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn skus(page: &Value) -> Vec<String> {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            format!(
                "{}@{}",
                row["sku"].as_str().unwrap(),
                row["location"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test]
async fn products_are_sorted_searched_and_paged_by_the_server() {
    let app = TestApp::spawn().await;
    let tenant = refreshed(&app).await;
    let (status, page) = app
        .get(&tenant, "/api/v1/products?sort=sales&order=desc&limit=2")
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 4);
    assert_eq!(skus(&page), ["STEADY@North", "STEADY@South"]);
    let steady = &page["rows"][0];
    assert_eq!(steady["sales_28"], 280.0);
    assert_eq!(steady["product"], "Steady mug");
    assert!(
        (steady["forecast_28"].as_f64().unwrap() - 280.0).abs() < 30.0,
        "{steady}"
    );
    assert_eq!(steady["trend"], 0.0);

    let (_, next) = app
        .get(
            &tenant,
            "/api/v1/products?sort=sales&order=desc&limit=2&offset=2",
        )
        .await;
    assert_eq!(skus(&next), ["FALLING@North", "RARE@North"]);
    let falling = &next["rows"][0];
    assert_eq!(falling["trend"], -0.5, "{falling}");
    let (_, by_sku) = app.get(&tenant, "/api/v1/products?sort=sku").await;
    assert_eq!(
        skus(&by_sku),
        [
            "FALLING@North",
            "RARE@North",
            "STEADY@North",
            "STEADY@South"
        ]
    );
    let (_, found) = app.get(&tenant, "/api/v1/products?search=vase").await;
    assert_eq!(skus(&found), ["FALLING@North"]);
    assert_eq!(found["total"], 1);
    // LIKE wildcards in the search are taken literally.
    let (_, none) = app.get(&tenant, "/api/v1/products?search=%25").await;
    assert_eq!(none["total"], 0);

    let (status, error) = app.get(&tenant, "/api/v1/products?sort=price").await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["field"], "sort");
    let (status, _) = app.get(&tenant, "/api/v1/products?limit=0").await;
    assert_eq!(status, 400);
    let (status, _) = app.get(&tenant, "/api/v1/products?order=up").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn stocked_products_get_cover_and_a_suggested_order_and_sort_by_cover() {
    let app = TestApp::spawn().await;
    let tenant = refreshed(&app).await;
    let (status, _) = send(
        &app,
        &tenant,
        "POST",
        "/api/v1/inventory",
        "sku,location,on_hand,lead_time_days\nSTEADY,North,30,7\nFALLING,North,2000,7\n",
    )
    .await;
    assert_eq!(status, 200);
    let (_, page) = app
        .get(&tenant, "/api/v1/products?sort=cover&order=asc")
        .await;
    assert_eq!(skus(&page)[..2], ["STEADY@North", "FALLING@North"]);
    let steady = &page["rows"][0];
    assert!(
        (steady["days_of_cover"].as_f64().unwrap() - 3.0).abs() < 0.5,
        "{steady}"
    );
    assert_eq!(steady["at_risk"], true);
    assert!(
        steady["suggested_order"].as_f64().unwrap() > 70.0,
        "{steady}"
    );
    assert_eq!(page["rows"][1]["at_risk"], false);
    assert_eq!(page["rows"][1]["suggested_order"], 0.0);
    // Unstocked series have no cover and come last.
    assert!(page["rows"][3]["days_of_cover"].is_null());

    let (_, overview) = app.get(&tenant, "/api/v1/overview").await;
    let at_risk: Vec<&str> = overview["at_risk"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["sku"].as_str().unwrap())
        .collect();
    assert_eq!(at_risk, ["STEADY"]);

    let response = app
        .client
        .get(format!("{}/api/v1/products/export?sort=sku", app.address))
        .bearer_auth(&tenant.key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("sku,location,product,sales_last_28_days"));
    assert!(
        lines[3].starts_with("STEADY,North,Steady mug,280,"),
        "{csv}"
    );
    assert!(lines[3].ends_with(",true"), "{csv}");
}

#[tokio::test]
async fn the_overview_has_13_weeks_of_units_and_revenue_and_the_totals_forecast() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    let (_, empty) = app.get(&tenant, "/api/v1/overview").await;
    assert_eq!(empty, json!({ "forecast": null, "at_risk": [] }));

    app.upload(&tenant, sales_csv()).await;
    app.refresher.run_once().await;
    let (status, overview) = app.get(&tenant, "/api/v1/overview?horizon=14").await;
    assert_eq!(status, 200, "{overview}");
    let forecast = &overview["forecast"];
    assert_eq!(forecast["series"], 4);
    let history = forecast["history"].as_array().unwrap();
    assert_eq!(history.len(), 91);
    assert_eq!(history[90]["date"], "2024-03-10");
    // Days before the first sale are zeros; the last day has every SKU.
    assert_eq!(history[0]["units"], 0.0);
    assert_eq!(history[90]["units"], 10.0 + 5.0 + 4.0);
    assert_eq!(history[90]["revenue"], 15.0 * 2.5 + 16.0);
    let points = forecast["points"].as_array().unwrap();
    assert_eq!(points.len(), 14);
    assert_eq!(points[0]["date"], "2024-03-11");
    // 70 days are too short to backtest the total: its forecast says so.
    assert_eq!(forecast["model"], "WindowAverage (short history)");
    assert!(forecast["backtest"]["mase"].is_null(), "{forecast}");
    let (status, _) = app.get(&tenant, "/api/v1/overview?horizon=0").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn settings_are_validated_stored_and_become_the_stock_defaults() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Europe/Berlin").await;
    let (status, settings) = app.get(&tenant, "/api/v1/settings").await;
    assert_eq!(status, 200);
    assert_eq!(
        settings,
        json!({"timezone": "Europe/Berlin", "default_lead_time_days": 7, "service_level": 0.95, "horizon_days": 28})
    );
    let changed = json!({"timezone": "America/Chicago", "default_lead_time_days": 12, "service_level": 0.99, "horizon_days": 56});
    let (status, saved) = send(
        &app,
        &tenant,
        "PUT",
        "/api/v1/settings",
        &changed.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    let (_, settings) = app.get(&tenant, "/api/v1/settings").await;
    assert_eq!(settings, changed);
    let (_, tenant_view) = app.get(&tenant, "/api/v1/tenant").await;
    assert_eq!(tenant_view["timezone"], "America/Chicago");

    let (status, error) = send(
        &app,
        &tenant,
        "PUT",
        "/api/v1/settings",
        &json!({"timezone": "Mars/Base", "default_lead_time_days": 12, "service_level": 0.99, "horizon_days": 56}).to_string(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["error"]["field"], "timezone");
    let (status, error) = send(&app, &tenant, "PUT", "/api/v1/settings", "{").await;
    assert_eq!(status, 400, "{error}");

    send(
        &app,
        &tenant,
        "POST",
        "/api/v1/inventory",
        "sku,on_hand\nA,5\n",
    )
    .await;
    let (_, levels) = app.get(&tenant, "/api/v1/inventory").await;
    assert_eq!(levels[0]["lead_time_days"], 12);
    assert_eq!(levels[0]["service_level"], 0.99);

    // Another tenant keeps its own settings.
    let other = app.tenant("UTC").await;
    let (_, theirs) = app.get(&other, "/api/v1/settings").await;
    assert_eq!(theirs["default_lead_time_days"], 7);
    let (_, page) = app.get(&other, "/api/v1/products").await;
    assert_eq!(page["total"], 0);
}

/// A browser that keeps no cookies itself and follows no redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value `Set-Cookie` gives `name`.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|cookie| cookie.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
}

/// The sign-in form's CSRF cookie and field.
async fn sign_in_form(app: &TestApp, query: &str) -> (String, String) {
    let page = browser()
        .get(format!("{}/app/sign-in{query}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.headers()["content-security-policy"],
        "frame-ancestors 'none'"
    );
    let cookie = set_cookie(&page, "ordernimbus_sign_in").unwrap();
    let html = page.text().await.unwrap();
    let field = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    (cookie, field)
}

async fn post_sign_in(app: &TestApp, cookie: &str, form: &[(&str, &str)]) -> reqwest::Response {
    browser()
        .post(format!("{}/app/sign-in", app.address))
        .header("cookie", format!("ordernimbus_sign_in={cookie}"))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_api_key_signs_a_browser_in_and_unsafe_calls_need_the_csrf_token() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;

    let (cookie, field) = sign_in_form(&app, "").await;
    // Without the matching CSRF pair, or with a wrong key, there is no session.
    let forged = post_sign_in(
        &app,
        &cookie,
        &[("csrf_token", "forged"), ("api_key", &tenant.key)],
    )
    .await;
    assert_eq!(forged.status(), 403);
    assert!(set_cookie(&forged, "ordernimbus_session").is_none());
    let wrong = post_sign_in(
        &app,
        &cookie,
        &[("csrf_token", &field), ("api_key", "onk_wrong")],
    )
    .await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("That API key is not valid.")
    );

    let signed_in = post_sign_in(
        &app,
        &cookie,
        &[("csrf_token", &field), ("api_key", &tenant.key)],
    )
    .await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/app");
    let session_header = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|cookie| cookie.starts_with("ordernimbus_session="))
        .unwrap();
    assert!(session_header.contains("HttpOnly") && session_header.contains("SameSite=Strict"));
    let session = set_cookie(&signed_in, "ordernimbus_session").unwrap();
    let cookie_header = format!("ordernimbus_session={session}");

    // Reads need only the cookie.
    let me = browser()
        .get(format!("{}/api/v1/tenant", app.address))
        .header("cookie", &cookie_header)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(
        me.json::<Value>().await.unwrap()["tenant_id"],
        tenant.id.as_str()
    );

    // A write without the CSRF token is refused; with it, it goes through.
    let settings = json!({"timezone": "UTC", "default_lead_time_days": 9, "service_level": 0.9, "horizon_days": 28});
    let refused = browser()
        .put(format!("{}/api/v1/settings", app.address))
        .header("cookie", &cookie_header)
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"]["code"],
        "csrf"
    );
    let stored = app
        .store
        .session(BrowserSecret::from_presented(&session).hash(), Utc::now())
        .await
        .unwrap()
        .unwrap();
    let accepted = browser()
        .put(format!("{}/api/v1/settings", app.address))
        .header("cookie", &cookie_header)
        .header("x-csrf-token", stored.csrf_token.expose())
        .json(&settings)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);

    // Sign-out needs the token too, then the cookie opens nothing.
    let out = browser()
        .post(format!("{}/app/sign-out", app.address))
        .header("cookie", &cookie_header)
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 403);
    let out = browser()
        .post(format!("{}/app/sign-out", app.address))
        .header("cookie", &cookie_header)
        .form(&[("csrf_token", stored.csrf_token.expose())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    let after = browser()
        .get(format!("{}/api/v1/tenant", app.address))
        .header("cookie", &cookie_header)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn a_sign_in_link_works_once_and_not_after_it_expires() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    let link = BrowserSecret::generate();
    app.store
        .create_sign_in_link(
            &tenant.id,
            link.hash(),
            Utc::now() + chrono::Duration::minutes(15),
        )
        .await
        .unwrap();
    let (cookie, field) = sign_in_form(&app, &format!("?link={}", link.expose())).await;
    let first = post_sign_in(
        &app,
        &cookie,
        &[("csrf_token", &field), ("link", link.expose())],
    )
    .await;
    assert_eq!(first.status(), 303);
    assert!(set_cookie(&first, "ordernimbus_session").is_some());
    let again = post_sign_in(
        &app,
        &cookie,
        &[("csrf_token", &field), ("link", link.expose())],
    )
    .await;
    assert_eq!(again.status(), 401);
    assert!(
        again
            .text()
            .await
            .unwrap()
            .contains("already used or has expired")
    );

    let expired = BrowserSecret::generate();
    app.store
        .create_sign_in_link(
            &tenant.id,
            expired.hash(),
            Utc::now() - chrono::Duration::seconds(1),
        )
        .await
        .unwrap();
    let late = post_sign_in(
        &app,
        &cookie,
        &[("csrf_token", &field), ("link", expired.expose())],
    )
    .await;
    assert_eq!(late.status(), 401);
}
