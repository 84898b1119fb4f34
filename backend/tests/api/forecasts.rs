//! `GET /api/v1/forecasts` and `/api/v1/forecasts/summary`: stored forecasts after a refresh, the
//! pending state before it, validation, short histories and tenant isolation.

use chrono::{Days, NaiveDate};
use serde_json::Value;

use crate::helpers::{TestApp, TestTenant};

/// 140 days of two SKUs: `WEEKLY` sells with a weekly shape at two stores, `NEW` only on the last
/// three days at North.
fn history_csv() -> String {
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let shape = [8, 9, 10, 9, 12, 20, 2];
    let mut csv = String::from("date,sku,qty,store\n");
    for day in 0..140u64 {
        let date = start + Days::new(day);
        let units = shape[(day % 7) as usize];
        csv.push_str(&format!("{date},WEEKLY,{units},North\n"));
        csv.push_str(&format!("{date},WEEKLY,{},South\n", units / 2));
        if day >= 137 {
            csv.push_str(&format!("{date},NEW,{},North\n", day - 135));
        }
    }
    csv
}

async fn refreshed_tenant(app: &TestApp) -> TestTenant {
    let tenant = app.tenant("UTC").await;
    let (status, report) = app.upload(&tenant, history_csv()).await;
    assert_eq!(status, 201, "{report}");
    let refreshed = app.refresher.run_once().await;
    assert_eq!(refreshed, std::slice::from_ref(&tenant.id));
    tenant
}

fn means(body: &Value) -> Vec<f64> {
    body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|point| point["mean"].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_forecast_is_pending_until_the_refresher_has_run() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    app.upload(&tenant, history_csv()).await;
    let (status, body) = app.get(&tenant, "/api/v1/forecasts?sku=WEEKLY").await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "forecast_pending");
    assert_eq!(
        app.refresher.run_once().await,
        std::slice::from_ref(&tenant.id)
    );
    // Nothing new: the next pass has nothing to do.
    assert!(app.refresher.run_once().await.is_empty());
    let (status, _) = app.get(&tenant, "/api/v1/forecasts?sku=WEEKLY").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn one_series_has_dated_points_bands_and_backtest_accuracy() {
    let app = TestApp::spawn().await;
    let tenant = refreshed_tenant(&app).await;
    let (status, body) = app
        .get(&tenant, "/api/v1/forecasts?sku=WEEKLY&location=North")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sku"], "WEEKLY");
    assert_eq!(body["location"], "North");
    assert!(body["model"].as_str().unwrap().len() > 2);
    assert!(body["generated_at"].is_string());
    let points = body["points"].as_array().unwrap();
    assert_eq!(points.len(), 28);
    // The day after the last sale (2024-01-01 + 139 days = 2024-05-19).
    assert_eq!(points[0]["date"], "2024-05-20");
    assert_eq!(points[27]["date"], "2024-06-16");
    for point in points {
        let value = |name: &str| point[name].as_f64().unwrap();
        assert!(value("lo95") >= 0.0);
        assert!(value("lo95") <= value("lo80") && value("lo80") <= value("mean"));
        assert!(value("mean") <= value("hi80") && value("hi80") <= value("hi95"));
    }
    // A clean weekly pattern is learned: Saturdays (20 units) stay far above Sundays (2 units).
    let by_weekday = |weekday: &str| {
        points
            .iter()
            .find(|point| {
                let date: NaiveDate = point["date"].as_str().unwrap().parse().unwrap();
                date.format("%a").to_string() == weekday
            })
            .unwrap()["mean"]
            .as_f64()
            .unwrap()
    };
    assert!(
        by_weekday("Sat") > 15.0 && by_weekday("Sun") < 5.0,
        "{body}"
    );
    let backtest = &body["backtest"];
    assert!(backtest["rmsse"].as_f64().unwrap() < 0.5, "{backtest}");
    for field in ["bias", "coverage80", "coverage95"] {
        assert!(backtest[field].is_number(), "{field}: {backtest}");
    }
}

#[tokio::test]
async fn horizon_is_one_to_365_days() {
    let app = TestApp::spawn().await;
    let tenant = refreshed_tenant(&app).await;
    for (horizon, days) in [("1", 1), ("365", 365), ("90", 90)] {
        let (status, body) = app
            .get(
                &tenant,
                &format!("/api/v1/forecasts?sku=WEEKLY&location=South&horizon={horizon}"),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(body["points"].as_array().unwrap().len(), days);
    }
    for bad in ["0", "366", "abc", "-3"] {
        let (status, body) = app
            .get(
                &tenant,
                &format!("/api/v1/forecasts?sku=WEEKLY&horizon={bad}"),
            )
            .await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(body["error"]["field"], "horizon", "{body}");
    }
    let (status, body) = app
        .get(&tenant, "/api/v1/forecasts/summary?horizon=400")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "horizon");
}

#[tokio::test]
async fn a_malformed_location_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let tenant = refreshed_tenant(&app).await;
    let long = "x".repeat(300);
    for path in [
        format!("/api/v1/forecasts/summary?location={long}"),
        format!("/api/v1/forecasts?sku=WEEKLY&location={long}"),
        "/api/v1/forecasts/summary?location=North%07".to_owned(),
    ] {
        let (status, body) = app.get(&tenant, &path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["field"], "location", "{body}");
    }
}

#[tokio::test]
async fn sku_is_required_and_unknown_skus_are_404() {
    let app = TestApp::spawn().await;
    let tenant = refreshed_tenant(&app).await;
    let (status, body) = app.get(&tenant, "/api/v1/forecasts").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "sku");
    let (status, body) = app.get(&tenant, "/api/v1/forecasts?sku=NOPE").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"].as_str().unwrap().contains("NOPE"));
    let (status, _) = app
        .get(&tenant, "/api/v1/forecasts?sku=NEW&location=South")
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_short_history_gets_a_labelled_simple_forecast() {
    let app = TestApp::spawn().await;
    let tenant = refreshed_tenant(&app).await;
    let (status, body) = app.get(&tenant, "/api/v1/forecasts?sku=NEW").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["model"].as_str().unwrap().contains("short history"),
        "{body}"
    );
    // Sold 2, 3, 4 on its three days: a level of 3 a day, shaped by the tenant's weekly pattern
    // when reconciled with the total, so a week still adds up to about 21.
    let means = means(&body);
    let week: f64 = means[..7].iter().sum();
    assert!((14.0..28.0).contains(&week), "{week}: {body}");
    assert!(means.iter().all(|mean| *mean >= 0.0));
    assert!(body["backtest"]["rmsse"].is_null());
}

#[tokio::test]
async fn locations_and_the_tenant_total_add_up() {
    let app = TestApp::spawn().await;
    let tenant = refreshed_tenant(&app).await;
    let (_, north) = app
        .get(&tenant, "/api/v1/forecasts?sku=WEEKLY&location=North")
        .await;
    let (_, south) = app
        .get(&tenant, "/api/v1/forecasts?sku=WEEKLY&location=South")
        .await;
    let (status, all) = app.get(&tenant, "/api/v1/forecasts?sku=WEEKLY").await;
    assert_eq!(status, 200);
    assert_eq!(all["location"], "all");
    let (_, new) = app.get(&tenant, "/api/v1/forecasts?sku=NEW").await;
    let (status, summary) = app.get(&tenant, "/api/v1/forecasts/summary").await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["series"], 3);
    // The last 91 days of actual totals lead up to the forecast: on the last day (day 139, a
    // "2" day in the weekly shape) North sold 2, South 1 and NEW 4.
    let history = summary["history"].as_array().unwrap();
    assert_eq!(history.len(), 91);
    assert_eq!(history[90]["date"], "2024-05-19");
    assert_eq!(history[90]["units"], 7.0);
    assert_eq!(history[89]["units"], 20.0 + 10.0 + 3.0);
    let total = means(&summary);
    assert_eq!(total.len(), 28);
    for (day, sum) in total.iter().enumerate() {
        let parts = means(&north)[day] + means(&south)[day];
        // Points are single precision: sums agree to its rounding.
        assert!((means(&all)[day] - parts).abs() < 1e-4);
        assert!((sum - parts - means(&new)[day]).abs() < 1e-4, "day {day}");
    }
    // One location's summary: its series, its sales, its share of the total.
    let (status, store) = app
        .get(&tenant, "/api/v1/forecasts/summary?location=North")
        .await;
    assert_eq!(status, 200, "{store}");
    assert_eq!(store["location"], "North");
    assert_eq!(store["series"], 2);
    assert_eq!(store["history"][90]["units"], 2.0 + 4.0);
    for (day, sum) in means(&store).iter().enumerate() {
        assert!((sum - means(&north)[day] - means(&new)[day]).abs() < 1e-4);
    }
    let (status, body) = app
        .get(&tenant, "/api/v1/forecasts/summary?location=Nowhere")
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn another_tenant_sees_no_forecasts() {
    let app = TestApp::spawn().await;
    let _owner = refreshed_tenant(&app).await;
    let other = app.tenant("UTC").await;
    let (status, body) = app.get(&other, "/api/v1/forecasts?sku=WEEKLY").await;
    assert_eq!(status, 404, "{body}");
    let (status, summary) = app.get(&other, "/api/v1/forecasts/summary").await;
    assert_eq!(status, 200);
    assert_eq!(summary["series"], 0);
    assert_eq!(summary["points"], serde_json::json!([]));
}

async fn put_inventory(app: &TestApp, tenant: &TestTenant, csv: &str) -> (u16, Value) {
    app.upload_to(tenant, "/api/v1/inventory", csv.to_owned())
        .await
}

#[tokio::test]
async fn stock_levels_are_stored_row_by_row_with_named_errors() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    let csv = "SKU,Store,On Hand,Lead Time,Service Level\n\
               WEEKLY,North,40,5,97%\n\
               WEEKLY,South,-2,5,0.9\n\
               NEW,North,abc,,\n\
               NEW,North,12,,\n\
               OTHER,,3,0,\n";
    let (status, report) = put_inventory(&app, &tenant, csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rows_read"], 5);
    assert_eq!(report["rows_imported"], 2);
    assert_eq!(report["rows_rejected"], 3);
    let errors: Vec<(u64, &str)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| {
            (
                error["line"].as_u64().unwrap(),
                error["column"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        [(3, "on_hand"), (4, "on_hand"), (6, "lead_time_days")]
    );
    let (status, levels) = app.get(&tenant, "/api/v1/inventory").await;
    assert_eq!(status, 200);
    let rows: Vec<String> = levels
        .as_array()
        .unwrap()
        .iter()
        .map(|level| {
            format!(
                "{} {} {} {} {}",
                level["sku"].as_str().unwrap(),
                level["location"].as_str().unwrap(),
                level["on_hand"],
                level["lead_time_days"],
                level["service_level"]
            )
        })
        .collect();
    assert_eq!(rows, ["NEW North 12.0 7 0.95", "WEEKLY North 40.0 5 0.97"]);

    let (status, body) = put_inventory(&app, &tenant, "sku,location\nA,North\n").await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("on_hand"),
        "{body}"
    );
    // Another tenant sees none of it.
    let other = app.tenant("UTC").await;
    let (_, levels) = app.get(&other, "/api/v1/inventory").await;
    assert_eq!(levels, serde_json::json!([]));
}

#[tokio::test]
async fn forecasts_carry_reorder_hints_and_the_summary_lists_skus_at_risk() {
    let app = TestApp::spawn().await;
    let tenant = refreshed_tenant(&app).await;
    // North sells about 70 a week: 40 units run out within the 5-day lead time; South sells
    // about 35 a week and 1,000 units last beyond the horizon of interest.
    put_inventory(
        &app,
        &tenant,
        "sku,location,on_hand,lead_time_days\nWEEKLY,North,40,5\nWEEKLY,South,1000,5\n",
    )
    .await;
    let (_, north) = app
        .get(&tenant, "/api/v1/forecasts?sku=WEEKLY&location=North")
        .await;
    let hint = &north["reorder"];
    assert_eq!(hint["on_hand"], 40.0);
    assert_eq!(hint["at_risk"], true, "{hint}");
    let cover = hint["days_of_cover"].as_f64().unwrap();
    assert!((2.0..6.0).contains(&cover), "{hint}");
    assert!(hint["expected_stockout_date"].as_str().unwrap() < "2024-05-27");
    // Order up to lead time + a week of demand (12 days, ~105 units) plus safety stock, less 40.
    let order = hint["suggested_order_quantity"].as_f64().unwrap();
    assert!((40.0..250.0).contains(&order), "{hint}");
    assert!(hint["reorder_point"].as_f64().unwrap() > hint["safety_stock"].as_f64().unwrap());

    let (_, south) = app
        .get(&tenant, "/api/v1/forecasts?sku=WEEKLY&location=South")
        .await;
    assert_eq!(south["reorder"]["at_risk"], false);
    assert_eq!(south["reorder"]["suggested_order_quantity"], 0.0);
    let (_, new) = app.get(&tenant, "/api/v1/forecasts?sku=NEW").await;
    assert!(new["reorder"].is_null());

    let (_, summary) = app.get(&tenant, "/api/v1/forecasts/summary").await;
    let at_risk = summary["at_risk"].as_array().unwrap();
    assert_eq!(at_risk.len(), 1, "{summary}");
    assert_eq!(at_risk[0]["sku"], "WEEKLY");
    assert_eq!(at_risk[0]["location"], "North");
    assert_eq!(
        at_risk[0]["suggested_order_quantity"],
        hint["suggested_order_quantity"]
    );
}
