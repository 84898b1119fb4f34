//! `ordernimbus serve`: health, the demo, the CLI next to a running server, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{create_tenant, ordernimbus};

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) address: String,
    stdout: Vec<String>,
}

impl Server {
    /// Starts `serve` on a free port and waits for its "serving" log line.
    pub(crate) fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ordernimbus"))
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--log-format", "json", "serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .env("ORDERNIMBUS_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut address = None;
        for line in stderr.by_ref() {
            let line = line.unwrap();
            let event: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if event["message"] == "serving" {
                address = Some(format!("http://{}", event["addr"].as_str().unwrap()));
                break;
            }
        }
        let address = address.expect("the server logs its address before serving");
        // Keep draining the log so the server never writes into a closed pipe.
        std::thread::spawn(move || stderr.for_each(drop));
        let stdout = if extra.contains(&"--demo") {
            let mut reader = BufReader::new(child.stdout.take().unwrap());
            let mut lines = Vec::new();
            for _ in 0..4 {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                lines.push(line.trim_end().to_owned());
            }
            std::thread::spawn(move || reader.lines().for_each(drop));
            lines
        } else {
            Vec::new()
        };
        Self {
            child,
            address,
            stdout,
        }
    }

    /// `GET path` with the API key, as JSON.
    async fn get_json(&self, key: &str, path: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.address))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sigterm_finishes_an_upload_in_flight_and_loses_nothing() {
    let directory = tempfile::tempdir().unwrap();
    let (_, api_key) = create_tenant(directory.path(), "UTC");
    let mut server = Server::start(directory.path(), &[]);
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{}/healthz", server.address))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A slow, chunked upload: the signal arrives while its body is still streaming.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    let upload = tokio::spawn({
        let client = client.clone();
        let api_key = api_key.clone();
        let url = format!("{}/api/v1/uploads", server.address);
        let body = reqwest::Body::wrap_stream(tokio_stream_from(receiver));
        async move {
            client
                .post(url)
                .bearer_auth(api_key)
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    });
    sender.send(Ok("date,sku,qty\n".into())).await.unwrap();
    for day in 1..=10 {
        sender
            .send(Ok(format!("2024-03-{day:02},A,1\n")))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let terminate = std::thread::spawn({
        let pid = server.child.id().to_string();
        move || Command::new("kill").args(["-TERM", &pid]).status().unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for day in 11..=20 {
        sender
            .send(Ok(format!("2024-03-{day:02},A,1\n")))
            .await
            .unwrap();
    }
    drop(sender);
    let response = upload.await.unwrap();
    assert_eq!(response.status(), 201);
    let report: serde_json::Value = response.json().await.unwrap();
    assert_eq!(report["rows_imported"], 20);
    terminate.join().unwrap();
    assert!(server.child.wait().unwrap().success());

    // The data survived the shutdown: a fresh server reads all 20 days.
    let server = Server::start(directory.path(), &[]);
    let sales: serde_json::Value = client
        .get(format!("{}/api/v1/sales", server.address))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sales.as_array().unwrap().len(), 20);
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<String, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<String, std::io::Error>> {
    futures_util::stream::poll_fn(move |context| receiver.poll_recv(context))
}

#[tokio::test]
async fn demo_prints_a_working_key_for_bundled_sales() {
    let directory = tempfile::tempdir().unwrap();
    let mut server = Server::start(directory.path(), &["--demo"]);
    let key_line = server
        .stdout
        .iter()
        .find(|line| line.contains("API key:"))
        .unwrap();
    let key = key_line.split_whitespace().last().unwrap().to_owned();
    let skus: serde_json::Value = server.get_json(&key, "/api/v1/skus").await;
    assert_eq!(skus.as_array().unwrap().len(), 40);
    // Forecasts are ready at once, and the demo's stock makes some SKUs run short.
    let summary: serde_json::Value = server.get_json(&key, "/api/v1/forecasts/summary").await;
    let stocked: serde_json::Value = server.get_json(&key, "/api/v1/inventory").await;
    let at_risk = summary["at_risk"].as_array().unwrap();
    assert!(!at_risk.is_empty(), "{summary}");
    assert!(
        at_risk.len() < stocked.as_array().unwrap().len(),
        "{stocked}"
    );
    assert!(server.terminate().success());
    let listed = ordernimbus(directory.path(), &["tenants", "list"]);
    assert!(
        String::from_utf8(listed.stdout)
            .unwrap()
            .contains("Demo Retail")
    );
}

#[tokio::test]
async fn cli_imports_into_the_data_dir_of_a_running_server() {
    let directory = tempfile::tempdir().unwrap();
    let (tenant_id, api_key) = create_tenant(directory.path(), "UTC");
    let mut server = Server::start(directory.path(), &[]);
    let file = directory.path().join("sales.csv");
    std::fs::write(&file, "date,sku,qty\n2024-03-01,A,2\n2024-03-02,A,3\n").unwrap();
    let output = ordernimbus(
        directory.path(),
        &["import", "--tenant", &tenant_id, file.to_str().unwrap()],
    );
    assert!(output.status.success(), "{output:?}");
    let sales: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/sales?sku=A", server.address))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let units: Vec<f64> = sales
        .as_array()
        .unwrap()
        .iter()
        .map(|day| day["units"].as_f64().unwrap())
        .collect();
    assert_eq!(units, [2.0, 3.0]);
    assert!(server.terminate().success());
}

/// `generated_at` of SKU A's forecast, once there is one (waits up to 20 s for `newer_than`).
async fn forecast_time(server: &Server, key: &str, newer_than: Option<&str>) -> String {
    for _ in 0..200 {
        let response = reqwest::Client::new()
            .get(format!("{}/api/v1/forecasts?sku=A", server.address))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            let body: serde_json::Value = response.json().await.unwrap();
            let generated = body["generated_at"].as_str().unwrap().to_owned();
            if newer_than.is_none_or(|old| generated.as_str() > old) {
                return generated;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no forecast newer than {newer_than:?}");
}

#[tokio::test]
async fn a_restart_refits_only_tenants_whose_sales_changed_while_it_was_down() {
    let directory = tempfile::tempdir().unwrap();
    let (tenant_id, key) = create_tenant(directory.path(), "UTC");
    let import = |name: &str, csv: String| {
        let file = directory.path().join(name);
        std::fs::write(&file, csv).unwrap();
        let output = ordernimbus(
            directory.path(),
            &["import", "--tenant", &tenant_id, file.to_str().unwrap()],
        );
        assert!(output.status.success(), "{output:?}");
    };
    let days = |from: u32, to: u32| {
        let mut csv = String::from("date,sku,qty\n");
        for day in from..=to {
            csv.push_str(&format!("2024-03-{day:02},A,{}\n", day % 7 + 1));
        }
        csv
    };
    import("first.csv", days(1, 20));
    let mut server = Server::start(directory.path(), &[]);
    let first = forecast_time(&server, &key, None).await;
    assert!(server.terminate().success());

    // Nothing changed: after the debounce the forecast is still the one made before.
    let mut server = Server::start(directory.path(), &[]);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(forecast_time(&server, &key, None).await, first);
    assert!(server.terminate().success());

    // New sales while the server was down: the restart refits.
    import("second.csv", days(21, 28));
    let mut server = Server::start(directory.path(), &[]);
    forecast_time(&server, &key, Some(&first)).await;
    assert!(server.terminate().success());
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

/// The browser hydrates `<body>` from its first node, which must be the app's own: anything the
/// server writes before it (once an empty `Option`'s `<!>` marker) makes hydration panic in the
/// browser. Checked on the server's HTML, with a (dummy) bundle so the page asks to hydrate.
#[tokio::test]
async fn a_page_that_hydrates_starts_its_body_with_the_app() {
    let directory = tempfile::tempdir().unwrap();
    let site = directory.path().join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    for file in ["ordernimbus_ui.js", "ordernimbus_ui_bg.wasm"] {
        std::fs::write(site.join("pkg").join(file), b"").unwrap();
    }
    let (_, key) = create_tenant(directory.path(), "UTC");
    let server = Server::start(
        directory.path(),
        &["--site-dir", site.to_str().expect("a UTF-8 temporary path")],
    );
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = browser
        .get(format!("{}/app/sign-in", server.address))
        .send()
        .await
        .unwrap();
    let sign_in_cookie = set_cookie(&form, "ordernimbus_sign_in").unwrap();
    let html = form.text().await.unwrap();
    let csrf = html
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let signed_in = browser
        .post(format!("{}/app/sign-in", server.address))
        .header("cookie", format!("ordernimbus_sign_in={sign_in_cookie}"))
        .form(&[("csrf_token", csrf.as_str()), ("api_key", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let session = set_cookie(&signed_in, "ordernimbus_session").unwrap();
    for path in ["/app", "/app/products", "/app/data", "/app/settings"] {
        let page = browser
            .get(format!("{}{path}", server.address))
            .header("cookie", format!("ordernimbus_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{path}");
        let html = page.text().await.unwrap();
        assert!(
            html.contains("/pkg/ordernimbus_ui.js"),
            "{path} loads the bundle"
        );
        let body = html
            .split_once("<body>")
            .map(|(_, body)| body)
            .unwrap_or_else(|| panic!("{path} has a <body>"));
        assert!(
            body.starts_with("<header class=\"TopBar\">"),
            "{path}: the body starts with the app's top bar, not {}",
            &body[..body.len().min(120)]
        );
    }
    // A path under /app that is no page: the app's own "Page not found", answered 404.
    let missing = browser
        .get(format!("{}/app/no-such-page", server.address))
        .header("cookie", format!("ordernimbus_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let html = missing.text().await.unwrap();
    assert!(html.contains("Page not found"), "{html}");
    assert!(html.contains("<header class=\"TopBar\">"), "{html}");
}

#[tokio::test]
async fn serve_purges_final_deliveries_past_the_retention_at_start() {
    use ordernimbus_backend::domain::{DeliveryFilter, DeliveryStatus, NewDelivery};
    use ordernimbus_backend::shopify::shop::ShopDomain;
    use ordernimbus_backend::store::Store;
    use ordernimbus_backend::store::sqlite::SqliteStore;

    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("ordernimbus.sqlite3");
    let store = SqliteStore::open(&path).unwrap();
    // Pending deliveries are left out: this server's outbox would publish them. That a purge keeps
    // them is checked on both stores by the store conformance suite.
    for (webhook_id, days_ago) in [("old-published", 40), ("recent", 20)] {
        let delivery = NewDelivery {
            webhook_id: webhook_id.into(),
            shop: ShopDomain::parse("purged.myshopify.com").unwrap(),
            topic: "orders/create".into(),
            api_version: "2026-01".into(),
            event_id: None,
            triggered_at: None,
            received_at: chrono::Utc::now() - chrono::Duration::days(days_ago),
            headers: Vec::new(),
            body: b"{}".to_vec(),
        };
        store.put_delivery(&delivery).await.unwrap();
        let published = Some(DeliveryStatus::Published);
        store
            .record_delivery(webhook_id, published, "published", None, false)
            .await
            .unwrap();
    }
    store.close().await;
    let mut server = Server::start(directory.path(), &["--delivery-retention-days", "30"]);
    let store = SqliteStore::open(&path).unwrap();
    let listed = || async {
        let filter = DeliveryFilter {
            limit: 10,
            ..DeliveryFilter::default()
        };
        let records = store.deliveries(&filter).await.unwrap();
        records
            .into_iter()
            .map(|record| record.webhook_id)
            .collect::<Vec<_>>()
    };
    let mut left = listed().await;
    for _ in 0..200 {
        if left.len() < 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        left = listed().await;
    }
    assert_eq!(left, ["recent"]);
    store.close().await;
    assert!(server.terminate().success());
}
