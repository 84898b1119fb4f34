//! `GET /api/v1/sales` and `GET /api/v1/skus`.

use crate::helpers::TestApp;

const WEEK: &str = "date,sku,qty,store,price\n\
    2024-03-03,A,1,North,2\n\
    2024-03-04,A,2,North,2\n\
    2024-03-10,A,3,North,2\n\
    2024-03-11,A,4,North,2\n\
    2024-03-04,A,5,South,2\n\
    2024-03-05,B,6,North,1\n";

#[tokio::test]
async fn sales_filter_by_sku_location_and_dates() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    app.upload(&tenant, WEEK).await;
    assert_eq!(
        app.sales_lines(
            &tenant,
            "?sku=A&location=North&from=2024-03-04&to=2024-03-10"
        )
        .await,
        ["2024-03-04 A North 2.0 4.0", "2024-03-10 A North 3.0 6.0"]
    );
    assert_eq!(
        app.sales_lines(&tenant, "?sku=B").await,
        ["2024-03-05 B North 6.0 6.0"]
    );
    assert!(app.sales_lines(&tenant, "?sku=NOPE").await.is_empty());
}

#[tokio::test]
async fn weekly_sales_are_summed_into_monday_buckets() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    app.upload(&tenant, WEEK).await;
    assert_eq!(
        app.sales_lines(&tenant, "?sku=A&granularity=week").await,
        [
            "2024-02-26 A North 1.0 2.0",
            "2024-03-04 A North 5.0 10.0",
            "2024-03-11 A North 4.0 8.0",
            "2024-03-04 A South 5.0 10.0",
        ]
    );
}

#[tokio::test]
async fn bad_sales_parameters_name_the_field() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    for (query, field) in [
        ("?from=03/01/2024", "from"),
        ("?to=2024-13-01", "to"),
        ("?from=2024-03-02&to=2024-03-01", "from"),
        ("?granularity=month", "granularity"),
        ("?sku=%20", "sku"),
    ] {
        let (status, body) = app.get(&tenant, &format!("/api/v1/sales{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["error"]["code"], "invalid_field", "{query}");
        assert_eq!(body["error"]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn skus_list_first_and_last_sale_and_totals_over_locations() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    app.upload(&tenant, WEEK).await;
    let (status, skus) = app.get(&tenant, "/api/v1/skus").await;
    assert_eq!(status, 200);
    assert_eq!(
        skus,
        serde_json::json!([
            {"sku": "A", "product": null, "locations": ["North", "South"], "first_sale": "2024-03-03",
             "last_sale": "2024-03-11", "units": 15.0, "revenue": 30.0},
            {"sku": "B", "product": null, "locations": ["North"], "first_sale": "2024-03-05",
             "last_sale": "2024-03-05", "units": 6.0, "revenue": 6.0},
        ])
    );
}

#[tokio::test]
async fn a_later_upload_names_products_and_adds_series_without_touching_sales() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    app.upload(&tenant, "date,sku,qty\n2024-03-03,A,1\n").await;
    let (status, _) = app
        .upload(
            &tenant,
            "date,sku,qty,product\n2024-03-03,A,1,Red mug\n2024-03-04,C,2,Blue mug\n2024-03-04,A,1,Other name\n",
        )
        .await;
    assert_eq!(status, 201);
    let (_, skus) = app.get(&tenant, "/api/v1/skus").await;
    let named: Vec<(String, String, f64)> = skus
        .as_array()
        .unwrap()
        .iter()
        .map(|sku| {
            (
                sku["sku"].as_str().unwrap().to_owned(),
                sku["product"].as_str().unwrap_or("-").to_owned(),
                sku["units"].as_f64().unwrap(),
            )
        })
        .collect();
    // The first name a file gives sticks; the repeated line is a duplicate, not a second sale.
    assert_eq!(
        named,
        [
            ("A".to_owned(), "Red mug".to_owned(), 2.0),
            ("C".to_owned(), "Blue mug".to_owned(), 2.0)
        ]
    );
}
