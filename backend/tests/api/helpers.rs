//! `TestApp`: a real server on `127.0.0.1:0` over a fresh store (a SQLite file, or a DynamoDB table in
//! moto), with one helper per endpoint.

use std::sync::Arc;

use ordernimbus_backend::domain::{ApiKey, NewTenant, TenantId};
use ordernimbus_backend::forecast::Refresher;
use ordernimbus_backend::http::{self, AppState};
use ordernimbus_backend::metrics::Metrics;
use ordernimbus_backend::store::Store;
use ordernimbus_backend::store::sqlite::SqliteStore;
use serde_json::Value;

pub struct TestApp {
    pub address: String,
    /// Not running in the background: tests step it with `run_once`.
    pub refresher: Arc<Refresher>,
    pub store: Arc<dyn Store>,
    pub client: reqwest::Client,
    _directory: tempfile::TempDir,
}

/// Which adapter a `TestApp` stores in.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Dynamodb,
}

/// A tenant and its API key.
pub struct TestTenant {
    pub id: TenantId,
    pub key: String,
}

pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with_limit(http::DEFAULT_MAX_UPLOAD_BYTES).await
    }

    pub async fn spawn_with_limit(max_upload_bytes: u64) -> Self {
        Self::spawn_on(Backend::Sqlite, max_upload_bytes).await
    }

    pub async fn spawn_with(backend: Backend) -> Self {
        Self::spawn_on(backend, http::DEFAULT_MAX_UPLOAD_BYTES).await
    }

    async fn spawn_on(backend: Backend, max_upload_bytes: u64) -> Self {
        let directory = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = match backend {
            Backend::Sqlite => {
                Arc::new(SqliteStore::open(directory.path().join("test.sqlite3")).unwrap())
            }
            Backend::Dynamodb => Arc::new(crate::moto::fresh_store().await),
        };
        let refresher = Refresher::new(store.clone());
        let state = AppState {
            store: store.clone(),
            metrics: Arc::new(Metrics::default()),
            max_upload_bytes,
            refresher: Arc::clone(&refresher),
            shopify: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, http::router(state)).await.unwrap();
        });
        Self {
            address,
            refresher,
            store,
            client: reqwest::Client::new(),
            _directory: directory,
        }
    }

    pub async fn tenant(&self, timezone: &str) -> TestTenant {
        let key = ApiKey::generate();
        let id = TenantId::generate();
        let new = NewTenant::parse("Test shop", timezone).unwrap();
        self.store
            .create_tenant(&id, &new, key.hash())
            .await
            .unwrap();
        TestTenant {
            id,
            key: key.expose().to_owned(),
        }
    }

    pub async fn get(&self, tenant: &TestTenant, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(&tenant.key)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub async fn upload(&self, tenant: &TestTenant, csv: impl Into<reqwest::Body>) -> (u16, Value) {
        self.upload_to(tenant, "/api/v1/uploads", csv).await
    }

    pub async fn upload_to(
        &self,
        tenant: &TestTenant,
        path: &str,
        csv: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.address))
            .bearer_auth(&tenant.key)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// `GET /api/v1/sales` as compact `date sku location units revenue` lines.
    pub async fn sales_lines(&self, tenant: &TestTenant, query: &str) -> Vec<String> {
        let (status, body) = self.get(tenant, &format!("/api/v1/sales{query}")).await;
        assert_eq!(status, 200, "{body}");
        body.as_array()
            .unwrap()
            .iter()
            .map(|day| {
                format!(
                    "{} {} {} {} {}",
                    day["date"].as_str().unwrap(),
                    day["sku"].as_str().unwrap(),
                    day["location"].as_str().unwrap(),
                    day["units"],
                    day["revenue"]
                )
            })
            .collect()
    }
}

/// Picks the counts out of an import report: `read imported duplicate updated rejected`.
pub fn counts(report: &Value) -> String {
    format!(
        "{} {} {} {} {}",
        report["rows_read"],
        report["rows_imported"],
        report["rows_duplicate"],
        report["rows_updated"],
        report["rows_rejected"]
    )
}
