//! `POST /api/v1/uploads` and the upload history.

use serde_json::json;

use crate::helpers::{TestApp, counts, data};

#[tokio::test]
async fn canonical_upload_imports_good_rows_and_names_each_bad_one() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Europe/Berlin").await;
    let (status, report) = app.upload(&tenant, data("canonical_sales.csv")).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["format"], "canonical");
    assert_eq!(counts(&report), "8 5 0 0 3");
    assert_eq!(report["first_date"], "2024-03-01");
    assert_eq!(report["last_date"], "2024-03-02");
    assert_eq!(
        report["errors"],
        json!([
            {"line": 7, "column": "sku", "message": "SKU must not be empty"},
            {"line": 8, "column": "quantity", "message": "\"two\" is not a number"},
            {"line": 9, "column": "currency", "message": "\"EURO\" is not a three-letter currency code"},
        ])
    );
    assert_eq!(
        app.sales_lines(&tenant, "").await,
        [
            "2024-03-01 A-100 Berlin 3.0 7.5",
            "2024-03-02 A-100 Berlin 3.0 7.5",
            "2024-03-01 A-100 Hamburg 2.0 5.0",
            "2024-03-01 B-200 Berlin 1.0 10.0",
        ]
    );
}

#[tokio::test]
async fn uploading_the_same_file_again_imports_nothing_twice() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Europe/Berlin").await;
    app.upload(&tenant, data("canonical_sales.csv")).await;
    let before = app.sales_lines(&tenant, "").await;
    let (status, report) = app.upload(&tenant, data("canonical_sales.csv")).await;
    assert_eq!(status, 201);
    assert_eq!(counts(&report), "8 0 5 0 3");
    assert_eq!(app.sales_lines(&tenant, "").await, before);
}

#[tokio::test]
async fn identical_rows_without_ids_are_separate_sales_but_never_counted_twice_across_uploads() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    let twice = "date,sku,qty\n2024-03-01,A,1\n2024-03-01,A,1\n";
    let (_, report) = app.upload(&tenant, twice).await;
    assert_eq!(counts(&report), "2 2 0 0 0");
    let (_, report) = app.upload(&tenant, twice).await;
    assert_eq!(counts(&report), "2 0 2 0 0");
    let thrice = "date,sku,qty\n2024-03-01,A,1\n2024-03-01,A,1\n2024-03-01,A,1\n";
    let (_, report) = app.upload(&tenant, thrice).await;
    assert_eq!(counts(&report), "3 1 2 0 0");
    assert_eq!(
        app.sales_lines(&tenant, "").await,
        ["2024-03-01 A default 3.0 0.0"]
    );
}

#[tokio::test]
async fn a_changed_order_line_replaces_the_stored_one_and_daily_sales_follow() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    app.upload(
        &tenant,
        "date,sku,qty,order_id,line_id,store\n2024-03-01,A,3,O-1,1,North\n",
    )
    .await;
    let (_, report) = app
        .upload(
            &tenant,
            "date,sku,qty,order_id,line_id,store\n2024-03-01,A,5,O-1,1,South\n",
        )
        .await;
    assert_eq!(counts(&report), "1 0 0 1 0");
    assert_eq!(
        app.sales_lines(&tenant, "").await,
        ["2024-03-01 A North 0.0 0.0", "2024-03-01 A South 5.0 0.0"]
    );
}

#[tokio::test]
async fn shopify_export_carries_order_columns_and_zeroes_cancelled_orders() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("America/New_York").await;
    let (status, report) = app.upload(&tenant, data("shopify_orders_export.csv")).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["format"], "shopify_orders");
    assert_eq!(counts(&report), "6 5 0 0 1");
    assert_eq!(
        report["errors"],
        json!([{"line": 7, "column": "Lineitem quantity", "message": "\"abc\" is not a number"}])
    );
    assert_eq!(
        app.sales_lines(&tenant, "").await,
        [
            "2024-03-01 Gift card Warehouse 1.0 25.0",
            "2024-03-01 MUG-CER Main Street 0.0 0.0",
            "2024-03-02 MUG-CER Main Street 2.0 24.0",
            "2024-03-02 TOWEL-1 Main Street 1.0 10.0",
            "2024-03-01 TOWEL-1 Warehouse 3.0 27.0",
        ]
    );
}

#[tokio::test]
async fn shopify_times_become_dates_in_the_tenants_zone() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Europe/Berlin").await;
    app.upload(&tenant, data("shopify_orders_export.csv")).await;
    // #1002 was placed at 23:58 in New York: already March 2 in Berlin.
    let lines = app.sales_lines(&tenant, "?sku=MUG-CER").await;
    assert_eq!(lines, ["2024-03-02 MUG-CER Main Street 2.0 24.0"]);
}

#[tokio::test]
async fn square_export_reads_refunds_and_items_without_skus() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("America/New_York").await;
    let (status, report) = app.upload(&tenant, data("square_item_sales.csv")).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(report["format"], "square_items");
    assert_eq!(counts(&report), "6 5 0 0 1");
    assert_eq!(report["errors"][0]["line"], 7);
    assert_eq!(report["errors"][0]["column"], "Date");
    assert_eq!(
        app.sales_lines(&tenant, "").await,
        [
            "2024-03-01 LAT-12 Harbor Kiosk 1.0 4.0",
            "2024-03-01 LAT-12 Main St Cafe 2.0 9.0",
            "2024-03-02 LAT-12 Main St Cafe 1.0 4.5",
            "2024-03-01 Scone - Large Main St Cafe 1.0 3.5",
        ]
    );
}

#[tokio::test]
async fn real_retail_export_imports_every_line() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Europe/London").await;
    let (status, report) = app.upload(&tenant, data("online_retail_slice.csv")).await;
    assert_eq!(status, 201);
    assert_eq!(counts(&report), "3000 3000 0 0 0");
    let text = String::from_utf8(data("online_retail_slice.csv")).unwrap();
    let distinct: std::collections::BTreeSet<&str> = text
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(2).unwrap())
        .collect();
    let (_, skus) = app.get(&tenant, "/api/v1/skus").await;
    assert_eq!(skus.as_array().unwrap().len(), distinct.len());
    let total: f64 = skus
        .as_array()
        .unwrap()
        .iter()
        .map(|sku| sku["units"].as_f64().unwrap())
        .sum();
    let expected: f64 = text
        .lines()
        .skip(1)
        .map(|line| line.rsplit(',').nth(3).unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, expected);
}

#[tokio::test]
async fn unrecognised_header_is_refused_with_the_columns_looked_for() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    let (status, body) = app
        .upload(&tenant, "when,what,howmany\n2024-03-01,A,1\n")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "unrecognised_file");
    assert_eq!(
        body["error"]["looked_for"]["canonical"].as_array().unwrap()[..3],
        json!(["date", "sku", "quantity"]).as_array().unwrap()[..]
    );
    let (_, history) = app.get(&tenant, "/api/v1/uploads").await;
    assert_eq!(history[0]["status"], "refused");
    assert_eq!(history[0]["rows_imported"], 0);
}

#[tokio::test]
async fn empty_body_is_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    let (status, body) = app.upload(&tenant, "").await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"]["message"],
        "the file is empty: expected a header row"
    );
}

#[tokio::test]
async fn json_body_is_refused_as_unsupported_media_type() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    let response = app
        .client
        .post(format!("{}/api/v1/uploads", app.address))
        .bearer_auth(&tenant.key)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
}

#[tokio::test]
async fn upload_over_the_size_limit_is_refused_with_413_and_keeps_earlier_data() {
    let app = TestApp::spawn_with_limit(10_000).await;
    let tenant = app.tenant("UTC").await;
    app.upload(&tenant, "date,sku,qty\n2024-03-01,A,1\n").await;
    let mut big = String::from("date,sku,qty\n");
    for day in 1..=28 {
        for sku in 0..40 {
            big.push_str(&format!("2024-02-{day:02},SKU-{sku},1\n"));
        }
    }
    let (status, body) = app.upload(&tenant, big.clone()).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    // A chunked body without Content-Length is cut off by the stream counter instead.
    let chunks: Vec<Result<String, std::io::Error>> =
        big.lines().map(|line| Ok(format!("{line}\n"))).collect();
    let stream = futures_util::stream::iter(chunks);
    let (status, _) = app
        .upload(&tenant, reqwest::Body::wrap_stream(stream))
        .await;
    assert_eq!(status, 413);
    let lines = app.sales_lines(&tenant, "?sku=A").await;
    assert_eq!(lines, ["2024-03-01 A default 1.0 0.0"]);
}

#[tokio::test]
async fn large_upload_is_streamed_in_chunks_and_counted_exactly() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    let n_days = 100;
    let n_skus = 500;
    let chunks = (0..=n_days).map(move |day| -> Result<String, std::io::Error> {
        if day == 0 {
            return Ok("date,sku,quantity,location\n".to_owned());
        }
        let date =
            chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Days::new(day - 1);
        let mut chunk = String::new();
        for sku in 0..n_skus {
            chunk.push_str(&format!(
                "{date},SKU-{sku},{},Store {}\n",
                sku % 7 + 1,
                sku % 3
            ));
        }
        Ok(chunk)
    });
    let (status, report) = app
        .upload(
            &tenant,
            reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)),
        )
        .await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(counts(&report), "50000 50000 0 0 0");
    let (_, skus) = app.get(&tenant, "/api/v1/skus").await;
    let total: f64 = skus
        .as_array()
        .unwrap()
        .iter()
        .map(|sku| sku["units"].as_f64().unwrap())
        .sum();
    let expected: u64 = (0..n_skus).map(|sku| sku % 7 + 1).sum::<u64>() * n_days;
    assert_eq!(total, expected as f64);
}

#[tokio::test]
async fn many_identical_rows_across_batches_are_each_a_sale_and_never_counted_twice() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    // More rows than the first two batches hold, all one identity (no ids, same content), with
    // a second identity in between.
    let mut csv = String::from("date,sku,qty,price\n");
    for row in 0..60_000 {
        csv.push_str(if row % 1000 == 999 {
            "2024-03-01,B,2,1.25\n"
        } else {
            "2024-03-01,A,1,0.5\n"
        });
    }
    let (status, report) = app.upload(&tenant, csv.clone()).await;
    assert_eq!(status, 201, "{report}");
    assert_eq!(counts(&report), "60000 60000 0 0 0");
    let (_, report) = app.upload(&tenant, csv).await;
    assert_eq!(counts(&report), "60000 0 60000 0 0");
    assert_eq!(
        app.sales_lines(&tenant, "").await,
        [
            "2024-03-01 A default 59940.0 29970.0",
            "2024-03-01 B default 120.0 150.0"
        ]
    );
}

#[tokio::test]
async fn bad_date_order_parameter_is_named() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    let (status, body) = app
        .upload_to(&tenant, "/api/v1/uploads?date_order=ymd", "date,sku,qty\n")
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "date_order");
}

#[tokio::test]
async fn day_first_date_order_reads_ambiguous_dates_as_european() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    app.upload_to(
        &tenant,
        "/api/v1/uploads?date_order=dmy",
        "date,sku,qty\n03/04/2024,A,1\n",
    )
    .await;
    assert_eq!(
        app.sales_lines(&tenant, "").await,
        ["2024-04-03 A default 1.0 0.0"]
    );
}

#[tokio::test]
async fn upload_history_lists_reports_newest_first_and_shows_one() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    let (_, first) = app
        .upload_to(
            &tenant,
            "/api/v1/uploads?filename=first.csv",
            "date,sku,qty\n2024-03-01,A,1\n",
        )
        .await;
    let (_, second) = app.upload(&tenant, "date,sku,qty\n2024-03-02,A,1\n").await;
    let (status, history) = app.get(&tenant, "/api/v1/uploads").await;
    assert_eq!(status, 200);
    assert_eq!(history[0]["upload_id"], second["upload_id"]);
    assert_eq!(history[1]["upload_id"], first["upload_id"]);
    assert_eq!(history[1]["filename"], "first.csv");
    let id = first["upload_id"].as_str().unwrap();
    let (status, shown) = app.get(&tenant, &format!("/api/v1/uploads/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(shown, first);
    let (status, body) = app.get(&tenant, "/api/v1/uploads?limit=0").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["field"], "limit");
}
