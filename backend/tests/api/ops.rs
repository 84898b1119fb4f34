//! Health, metrics and unknown routes.

use crate::helpers::TestApp;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = TestApp::spawn().await;
    let body: serde_json::Value = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn metrics_count_requests_and_imported_rows() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("UTC").await;
    app.upload(&tenant, "date,sku,qty\n2024-03-01,A,1\n2024-03-01,B,x\n")
        .await;
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains(
        "ordernimbus_http_requests_total{route=\"/api/v1/uploads\",method=\"POST\",status=\"201\"} 1"
    ), "{text}");
    assert!(text.contains("ordernimbus_import_rows_total{outcome=\"imported\"} 1"));
    assert!(text.contains("ordernimbus_import_rows_total{outcome=\"rejected\"} 1"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json_errors() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(format!("{}/nope", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let response = app
        .client
        .delete(format!("{}/api/v1/sales", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "method_not_allowed");
}
