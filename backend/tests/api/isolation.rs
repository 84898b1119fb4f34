//! Authentication and tenant isolation: every endpoint, as another tenant, sees nothing.

use crate::helpers::{Backend, TestApp};

const ENDPOINTS: [&str; 8] = [
    "/api/v1/tenant",
    "/api/v1/uploads",
    "/api/v1/uploads/up_00000000000000000000",
    "/api/v1/sales",
    "/api/v1/skus",
    "/api/v1/forecasts?sku=A",
    "/api/v1/forecasts/summary",
    "/api/v1/inventory",
];

/// Each check runs on both adapters.
macro_rules! on_both_stores {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(super::TestApp::spawn_with(super::Backend::Sqlite).await).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $check() {
                    super::$check(super::TestApp::spawn_with(super::Backend::Dynamodb).await).await;
                }
            )*
        }
    };
}

on_both_stores!(
    every_api_endpoint_needs_a_valid_key,
    another_tenant_sees_none_of_a_tenants_data,
);

async fn every_api_endpoint_needs_a_valid_key(app: TestApp) {
    for path in ENDPOINTS {
        for authorization in [
            None,
            Some("Bearer onk_wrong"),
            Some("Basic dXNlcjpwYXNz"),
            Some("Bearer "),
        ] {
            let mut request = app.client.get(format!("{}{path}", app.address));
            if let Some(value) = authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{path} {authorization:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unauthorized", "{path}");
        }
    }
    let response = app
        .client
        .post(format!("{}/api/v1/uploads", app.address))
        .body("date,sku,qty\n2024-03-01,A,1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn another_tenant_sees_none_of_a_tenants_data(app: TestApp) {
    let owner = app.tenant("UTC").await;
    let other = app.tenant("UTC").await;
    let (_, report) = app
        .upload(&owner, "date,sku,qty,store\n2024-03-01,SECRET,5,North\n")
        .await;
    let upload_id = report["upload_id"].as_str().unwrap();

    let (_, me) = app.get(&other, "/api/v1/tenant").await;
    assert_eq!(me["tenant_id"], other.id.as_str());
    let (status, uploads) = app.get(&other, "/api/v1/uploads").await;
    assert_eq!((status, uploads), (200, serde_json::json!([])));
    let (status, body) = app
        .get(&other, &format!("/api/v1/uploads/{upload_id}"))
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    assert!(app.sales_lines(&other, "").await.is_empty());
    assert!(app.sales_lines(&other, "?sku=SECRET").await.is_empty());
    let (_, skus) = app.get(&other, "/api/v1/skus").await;
    assert_eq!(skus, serde_json::json!([]));

    // The same rows uploaded by the other tenant are new for it, not duplicates of the owner's.
    let (_, report) = app
        .upload(&other, "date,sku,qty,store\n2024-03-01,SECRET,5,North\n")
        .await;
    assert_eq!(report["rows_imported"], 1);
    assert_eq!(
        app.sales_lines(&owner, "").await,
        ["2024-03-01 SECRET North 5.0 0.0"]
    );
}
