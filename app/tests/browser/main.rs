//! Browser tests: headless Chromium, driven through chromedriver with fantoccini, against the real
//! `ordernimbus serve --demo` binary (pointed at the Shopify simulator for the embedded path).
//! They sign in with the demo's one-time link, read the overview, page through products, open a
//! product chart, upload a CSV and read its report, save settings, and open the app embedded with
//! a simulator-minted session token. Any console error fails them. Screenshots of every page go to
//! `<cargo target dir>/ui-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium`, `chromium-driver`) and the browser
//! bundle (`scripts/build-ui.sh`), so a plain `cargo test` lists it as ignored; `scripts/test.sh`
//! installs both and runs it with `--ignored`, where a missing one fails with how to get it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use ordernimbus_e2e::{ShopSeed, SimConfig, Simulator};
use serde_json::{Value, json};

const API_KEY: &str = "browser-client-id";
const API_SECRET: &str = "browser-client-secret";
const SHOP: &str = "acme.myshopify.com";
const WAIT: Duration = Duration::from_secs(30);

/// Kills a child process when dropped (a failed assertion must not leave servers running).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `target/` (or `CARGO_TARGET_DIR`), from this test binary's own path (`target/debug/deps/…`).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        })
        .expect("the test binary lives in the target directory")
}

fn site_dir() -> PathBuf {
    let site = std::env::var_os("ORDERNIMBUS_SITE_DIR")
        .map_or_else(|| target_dir().join("site"), PathBuf::from);
    assert!(
        site.join("pkg/ordernimbus_ui_bg.wasm").is_file(),
        "the UI bundle is not built in {}: run scripts/build-ui.sh (scripts/test.sh does)",
        site.display()
    );
    site
}

fn program(name: &str, variable: &str) -> String {
    #[allow(
        clippy::disallowed_methods,
        reason = "the test lets a machine point it at its Chromium or chromedriver"
    )]
    let program = std::env::var(variable).unwrap_or_else(|_| {
        // chromedriver wants a path, not a name to look up.
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
            .map_or_else(|| name.to_owned(), |path| path.display().to_string())
    });
    let found = Command::new(&program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "{program} is missing: apt-get install chromium chromium-driver (scripts/test.sh does), or set {variable}"
    );
    program
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("binding a loopback port")
}

/// Starts `ordernimbus serve --demo` and returns it with the one-time sign-in link it prints.
fn start_server(port: u16, sim: &Simulator, data_dir: &Path) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ordernimbus"))
        .args(["--data-dir"])
        .arg(data_dir)
        .args(["--log-format", "json", "serve", "--demo", "--addr"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--site-dir")
        .arg(site_dir())
        .args([
            "--shopify-api-key",
            API_KEY,
            "--shopify-api-secret",
            API_SECRET,
        ])
        .arg("--shopify-app-url")
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--shopify-admin-url")
        .arg(sim.admin_url_template())
        .arg("--shopify-app-bridge-url")
        .arg(sim.app_bridge_url())
        .env("ORDERNIMBUS_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting ordernimbus serve");
    let stdout = child.stdout.take().expect("stdout is piped");
    let process = Process(child);
    // Keep reading after the link: the server prints more lines, and a closed pipe would make
    // its next `println!` fail and stop it.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(link) = line
                .split_whitespace()
                .find(|word| word.contains("/app/sign-in?link="))
            {
                let _ = sender.send(link.to_owned());
            }
        }
    });
    let link = receiver
        .recv_timeout(Duration::from_secs(300))
        .expect("serve --demo prints a sign-in link");
    (process, link)
}

fn start_chromedriver() -> (Process, String) {
    let driver = program("chromedriver", "CHROMEDRIVER");
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting chromedriver");
    (Process(child), format!("http://127.0.0.1:{port}"))
}

async fn connect(driver_url: &str, profile: &Path) -> Client {
    let chromium = program("chromium", "CHROME_BIN");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".to_owned(),
        json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    capabilities.insert("goog:loggingPrefs".to_owned(), json!({ "browser": "ALL" }));
    // chromedriver may take a moment to listen.
    let mut last_error = None;
    for _ in 0..100 {
        match ClientBuilder::rustls()
            .expect("rustls client")
            .capabilities(capabilities.clone())
            .connect(driver_url)
            .await
        {
            Ok(client) => return client,
            Err(error) => {
                last_error = Some(error);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    panic!("cannot reach chromedriver at {driver_url}: {last_error:?}");
}

/// The browser, the chromedriver it talks to, and where screenshots go.
struct Browser {
    client: Client,
    driver_url: String,
    shots: PathBuf,
    http: reqwest::Client,
}

impl Browser {
    /// Console messages logged since the last call.
    async fn console(&self) -> Vec<Value> {
        let session = self
            .client
            .session_id()
            .await
            .expect("chromedriver answers")
            .expect("a WebDriver session");
        let reply: Value = self
            .http
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .expect("chromedriver returns the console log")
            .json()
            .await
            .expect("the console log is JSON");
        reply["value"].as_array().cloned().unwrap_or_default()
    }

    /// Fails on any console error (or a failed request) since the last check.
    async fn assert_no_console_errors(&self, page: &str) {
        let errors: Vec<Value> = self
            .console()
            .await
            .into_iter()
            .filter(|entry| entry["level"] == "SEVERE")
            .collect();
        assert!(errors.is_empty(), "console errors on {page}: {errors:#?}");
    }

    async fn wait_for_hydration(&self) {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css("body[data-hydrated=\"true\"]"))
            .await
            .expect("the page hydrates");
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{css} never appeared: {error}"))
    }

    async fn text(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .expect("an element's text")
    }

    /// Waits until `css` holds `needle`.
    async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css} never showed {needle:?}; it shows {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("saving a screenshot");
    }

    async fn script(&self, source: &str) -> Value {
        self.client
            .execute(source, vec![])
            .await
            .unwrap_or_else(|error| panic!("running {source}: {error}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium and the UI bundle: scripts/test.sh runs it with --ignored"]
async fn merchants_see_their_forecasts_in_chromium_standalone_and_embedded() {
    let port = free_port();
    let sim = Simulator::start(SimConfig::new(
        API_KEY,
        API_SECRET,
        &format!("http://127.0.0.1:{port}"),
    ))
    .await
    .unwrap();
    let mut seed = ShopSeed::new(SHOP);
    seed.name = "Acme Outfitters".into();
    sim.add_shop(seed);
    let data_dir = tempfile::tempdir().unwrap();
    let (_server, sign_in_link) = start_server(port, &sim, data_dir.path());
    let base = format!("http://127.0.0.1:{port}");
    let (_driver, driver_url) = start_chromedriver();
    let profile = tempfile::tempdir().unwrap();
    let shots = target_dir().join("ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let browser = Browser {
        client: connect(&driver_url, profile.path()).await,
        driver_url,
        shots,
        http: reqwest::Client::new(),
    };

    // Standalone: the one-time link, then the overview with the demo data.
    browser.client.goto(&sign_in_link).await.unwrap();
    browser
        .find("button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_for_hydration().await;
    assert_eq!(browser.client.current_url().await.unwrap().path(), "/app");
    let total = browser.text("[data-testid=forecast-total]").await;
    assert!(
        total.chars().any(|c| c.is_ascii_digit()) && total != "0",
        "a forecast total: {total}"
    );
    assert!(
        browser
            .text("[data-testid=accuracy]")
            .await
            .contains("MASE")
    );
    let at_risk = browser
        .client
        .find_all(Locator::Css("[data-testid=at-risk] li"))
        .await
        .unwrap();
    assert!(
        !at_risk.is_empty(),
        "the demo stock leaves some SKUs at risk"
    );
    assert!(
        browser
            .text("[data-testid=freshness]")
            .await
            .contains("online_retail_top40.csv")
    );
    browser.screenshot("overview").await;
    browser.assert_no_console_errors("the overview").await;

    // 320 px wide: nothing overflows the viewport sideways.
    browser.client.set_window_size(320, 900).await.unwrap();
    let overflow = browser
        .script("return document.documentElement.scrollWidth - window.innerWidth;")
        .await;
    browser.screenshot("overview-320px").await;
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "overflow at 320 px: {overflow}"
    );
    browser.client.set_window_size(1280, 900).await.unwrap();

    // Products: page through, server-side.
    browser
        .find("a[href=\"/app/products\"]")
        .await
        .click()
        .await
        .unwrap();
    let status = browser
        .wait_for_text("[data-testid=page-status]", "page 1 of")
        .await;
    assert!(status.starts_with("1–25 of "), "{status}");
    let first_sku = browser.text("[data-testid=products] tbody tr td a").await;
    browser.find("a[rel=next]").await.click().await.unwrap();
    let status = browser
        .wait_for_text("[data-testid=page-status]", "page 2 of")
        .await;
    assert!(status.starts_with("26–"), "{status}");
    let second_page_sku = browser.text("[data-testid=products] tbody tr td a").await;
    assert_ne!(first_sku, second_page_sku, "page 2 shows other SKUs");
    browser.screenshot("products").await;
    browser.assert_no_console_errors("products").await;

    // A product's chart, model choice and stock.
    browser
        .find("[data-testid=products] tbody tr td a")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_for_text("[data-testid=model]", "chosen").await;
    let title = browser
        .script("return document.querySelector('.Chart-svg').getAttribute('aria-label');")
        .await;
    assert!(
        title
            .as_str()
            .is_some_and(|title| title.contains(&second_page_sku)),
        "{title}"
    );
    browser.screenshot("product").await;
    browser.assert_no_console_errors("the product page").await;

    // A search that matches nothing says so, in the table and under it.
    browser
        .client
        .goto(&format!("{base}/app/products"))
        .await
        .unwrap();
    browser.wait_for_hydration().await;
    let search = browser.find("#product-search").await;
    search.send_keys("no-such-sku").await.unwrap();
    browser
        .find("form[role=search] button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .wait_for_text("[data-testid=no-match]", "no-such-sku")
        .await;
    assert_eq!(
        browser.text("[data-testid=page-status]").await,
        "No SKU matches your search."
    );
    assert!(
        browser
            .client
            .current_url()
            .await
            .unwrap()
            .query()
            .is_some_and(|query| query.contains("q=no-such-sku")),
        "the search is in the URL"
    );
    browser.screenshot("products-no-match").await;
    browser
        .assert_no_console_errors("a search without results")
        .await;

    // Data: upload a CSV with one bad row and read the report.
    let csv = data_dir.path().join("week.csv");
    std::fs::write(
        &csv,
        "date,sku,quantity\n2011-12-05,BROWSER-1,3\n2011-12-06,BROWSER-1,abc\n2011-12-07,BROWSER-1,4\n",
    )
    .unwrap();
    browser
        .client
        .goto(&format!("{base}/app/data"))
        .await
        .unwrap();
    browser.wait_for_hydration().await;
    browser
        .find("[data-testid=upload-input]")
        .await
        .send_keys(csv.to_str().unwrap())
        .await
        .unwrap();
    let report = browser
        .wait_for_text("[data-testid=upload-report]", "rejected")
        .await;
    assert!(report.contains("3 rows read, 2 new"), "{report}");
    let errors = browser.text("[data-testid=row-errors]").await;
    assert!(
        errors.contains("quantity") && errors.contains('3'),
        "{errors}"
    );
    browser
        .wait_for_text("[data-testid=upload-history]", "week.csv")
        .await;
    browser.screenshot("data").await;
    browser.assert_no_console_errors("the data page").await;

    // Settings: save a change through the API (with the session's CSRF token).
    browser
        .find("a[href=\"/app/settings\"]")
        .await
        .click()
        .await
        .unwrap();
    let lead_time = browser.find("input[type=number]").await;
    lead_time.clear().await.unwrap();
    lead_time.send_keys("10").await.unwrap();
    browser
        .find("button[type=submit].Button--primary")
        .await
        .click()
        .await
        .unwrap();
    browser
        .wait_for_text("[role=status]", "Settings saved")
        .await;
    browser.screenshot("settings").await;
    browser.assert_no_console_errors("settings").await;

    // Embedded: Admin opens /app with a session token; API calls use App Bridge's fresh tokens.
    let token = sim.session_token(SHOP, 1);
    browser
        .client
        .goto(&format!(
            "{base}/app?embedded=1&shop={SHOP}&host=YWRtaW4&id_token={token}"
        ))
        .await
        .unwrap();
    browser.wait_for_hydration().await;
    let nav = browser
        .script("return document.querySelectorAll('ui-nav-menu a').length;")
        .await;
    assert_eq!(nav, json!(4), "App Bridge's nav menu has the four pages");
    assert!(browser.text("main").await.contains("No forecast yet"));
    browser.screenshot("embedded-overview").await;
    // A client-side navigation: the data page's calls carry App Bridge session tokens.
    browser
        .find("main a[href=\"/app/data\"]")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_for_text("main", "No dead letters").await;
    // A shop's data page shows its order sync (the first one started at install).
    let sync = browser.text("[data-testid=sync-summary]").await;
    assert!(
        sync.starts_with("Syncing order history") || sync.starts_with("Up to date"),
        "{sync}"
    );
    browser.screenshot("embedded-data").await;
    browser.assert_no_console_errors("the embedded app").await;

    browser.client.goto(&format!("{base}/app")).await.unwrap();
    browser.wait_for_hydration().await;
    // Back on the overview: hovering the chart shows the day's details (hydrated behaviour, not in the server HTML).
    browser
        .script(
            "const svg = document.querySelector('.Chart-svg'); const r = svg.getBoundingClientRect();
             svg.dispatchEvent(new MouseEvent('mousemove', {clientX: r.left + r.width * 0.9, clientY: r.top + 40, bubbles: true}));",
        )
        .await;
    // SVG text has no WebDriver "visible text": read its textContent.
    let deadline = tokio::time::Instant::now() + WAIT;
    let tip = loop {
        let tip = browser
            .script("const tip = document.querySelector('.Chart-tooltip'); return tip ? tip.textContent : '';")
            .await;
        let tip = tip.as_str().unwrap_or_default().to_owned();
        if tip.contains("expected") || tokio::time::Instant::now() > deadline {
            break tip;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        tip.contains("expected") && tip.contains("80 %"),
        "the chart's hover details: {tip:?}"
    );
    browser.assert_no_console_errors("the overview chart").await;

    browser.client.close().await.unwrap();
}
