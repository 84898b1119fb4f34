//! UI benchmark: server render time of the Overview and of a Products page for a tenant with
//! 50,000 SKUs × 2 years of daily sales (targets: p95 ≤ 100 ms), and the size of the browser
//! bundle, gzipped wasm + JS (target: < 600 KB).
//!
//! `cargo run --release -p ordernimbus --bin ui-bench -- [--skus 50000] [--days 730]
//! [--requests 200] [--data-dir DIR] [--site-dir DIR]`. The tenant is built once per data
//! directory (imported through the CSV use case, forecast by the real engine, stock for every
//! SKU); later runs with the same `--data-dir` only measure. Pages are requested over loopback
//! HTTP from the same router `ordernimbus serve` runs, signed in with a browser session.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use ordernimbus::ui;
use ordernimbus_backend::domain::{
    Backtest, BrowserSecret, ForecastPoint, Location, NewTenant, SeriesForecast, Sku, StockLevel,
    TenantId,
};
use ordernimbus_backend::forecast::{self, Refresher};
use ordernimbus_backend::http::{self, AppState};
use ordernimbus_backend::import::{self, ImportRequest};
use ordernimbus_backend::metrics::Metrics;
use ordernimbus_backend::store::Store;
use ordernimbus_backend::store::sqlite::SqliteStore;

const TENANT_NAME: &str = "UI benchmark";

/// UI benchmark: server render p95 of Overview and Products for a large tenant, and bundle size.
#[derive(Debug, clap::Parser)]
struct Args {
    /// SKUs of the benchmark tenant.
    #[arg(long, default_value_t = 50_000)]
    skus: usize,
    /// Days of daily sales per SKU.
    #[arg(long, default_value_t = 730)]
    days: usize,
    /// Renders measured per page.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Keep the tenant here for later runs (default: a scratch directory, removed after).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Forecast with the real engine (minutes for 50,000 SKUs) instead of storing seasonal-naive
    /// forecasts; rendering reads stored forecasts either way.
    #[arg(long)]
    fit: bool,
    /// The UI bundle (`scripts/build-ui.sh`).
    #[arg(long, env = "ORDERNIMBUS_SITE_DIR", default_value = "target/site")]
    site_dir: PathBuf,
}

/// Canonical CSV rows generated on the fly: every SKU sells every day, with a weekly shape and a
/// per-SKU level, so two years of 50,000 SKUs never sit in memory.
struct SalesCsv {
    skus: usize,
    days: usize,
    next: usize,
    buffer: Vec<u8>,
    position: usize,
    start: chrono::NaiveDate,
}

impl SalesCsv {
    fn new(skus: usize, days: usize) -> Self {
        Self {
            skus,
            days,
            next: 0,
            buffer: b"date,sku,quantity,unit_price,product\n".to_vec(),
            position: 0,
            start: chrono::NaiveDate::from_ymd_opt(2023, 1, 1).expect("a valid date"),
        }
    }

    fn refill(&mut self) {
        use std::fmt::Write;
        self.buffer.clear();
        self.position = 0;
        let mut text = String::with_capacity(64 * 1024);
        while text.len() < 60 * 1024 && self.next < self.skus * self.days {
            let day = self.next / self.skus;
            let sku = self.next % self.skus;
            self.next += 1;
            let level = 1 + (sku * 7919) % 23;
            let weekday = [3, 2, 2, 2, 3, 5, 4][day % 7];
            let noise = (sku * 31 + day * 17) % 5;
            let quantity = (level * weekday + noise) / 4;
            if quantity == 0 {
                continue;
            }
            let date = self.start + chrono::Days::new(day as u64);
            let _ = writeln!(
                text,
                "{date},SKU-{sku:05},{quantity},{}.{:02},Product {sku}",
                1 + sku % 40,
                sku % 100
            );
        }
        self.buffer.extend_from_slice(text.as_bytes());
    }
}

impl Read for SalesCsv {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.position >= self.buffer.len() {
            self.refill();
        }
        let available = &self.buffer[self.position..];
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.position += count;
        Ok(count)
    }
}

async fn build_tenant(store: &Arc<dyn Store>, args: &Args) -> anyhow::Result<TenantId> {
    if let Some(tenant) = store
        .tenants()
        .await?
        .into_iter()
        .find(|tenant| tenant.name == TENANT_NAME)
    {
        println!("reusing the benchmark tenant {}", tenant.id);
        return Ok(tenant.id);
    }
    let new = NewTenant::parse(TENANT_NAME, "UTC")?;
    let tenant = store
        .create_tenant(
            &TenantId::generate(),
            &new,
            ordernimbus_backend::domain::ApiKey::generate().hash(),
        )
        .await?;
    let started = Instant::now();
    let report = import::import_sales(
        Arc::clone(store),
        &tenant,
        SalesCsv::new(args.skus, args.days),
        ImportRequest {
            filename: Some("bench.csv".to_owned()),
            ..ImportRequest::default()
        },
    )
    .await
    .context("importing the benchmark sales")?;
    println!(
        "imported {} rows ({} SKUs × {} days) in {:.1} s",
        report.rows_imported,
        args.skus,
        args.days,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let refresh = if args.fit {
        forecast::refresh_tenant(Arc::clone(store), &tenant.id, Arc::new(|_, _| {}))
            .await
            .context("forecasting")?
    } else {
        seasonal_naive(store.as_ref(), &tenant.id).await?
    };
    println!(
        "forecast {} series in {:.1} s",
        refresh.series,
        started.elapsed().as_secs_f64()
    );
    let now = chrono::Utc::now();
    let levels = (0..args.skus)
        .map(|sku| {
            StockLevel::new(
                Sku::parse(&format!("SKU-{sku:05}")).expect("a valid SKU"),
                Location::default(),
                (sku % 300) as f64,
                Some(7 + (sku % 3) as u32 * 7),
                None,
                now,
            )
            .map_err(|(field, error)| anyhow::anyhow!("{field}: {error}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    store.put_stock(&tenant.id, levels).await?;
    Ok(tenant.id)
}

/// Stores next-week-repeats-last-week forecasts with ±20 % / ±35 % bands for every series, and
/// their sum as the total, through the same `store_forecasts` a refresh uses.
async fn seasonal_naive(store: &dyn Store, tenant: &TenantId) -> anyhow::Result<forecast::Refresh> {
    let histories = store.sales_history(tenant).await?;
    let last_day = histories
        .iter()
        .map(|series| series.start + chrono::Days::new(series.units.len() as u64 - 1))
        .max()
        .context("the tenant has no sales")?;
    let recent = forecast::recent_sales(&histories);
    let generated_at = chrono::Utc::now();
    let horizon = ordernimbus_backend::domain::MAX_HORIZON_DAYS;
    let mut total = vec![0.0; horizon];
    let point = |day: usize, mean: f64| {
        ForecastPoint::new(
            last_day + chrono::Days::new(day as u64 + 1),
            mean,
            mean * 0.8,
            mean * 1.2,
            mean * 0.65,
            mean * 1.35,
        )
    };
    let series: Vec<SeriesForecast> = histories
        .iter()
        .map(|history| {
            let week = &history.units[history.units.len().saturating_sub(7)..];
            let points = (0..horizon)
                .map(|day| {
                    let mean = week.get(day % week.len().max(1)).copied().unwrap_or(0.0);
                    total[day] += mean;
                    point(day, mean)
                })
                .collect();
            SeriesForecast {
                sku: history.sku.clone(),
                location: history.location.clone(),
                model: "SeasonalNaive".to_owned(),
                demand_class: Some("smooth".to_owned()),
                generated_at,
                points,
                backtest: Backtest::default(),
                candidates: Vec::new(),
            }
        })
        .collect();
    let total = forecast::TenantTotal {
        model: "SeasonalNaive".to_owned(),
        backtest: Backtest {
            mase: Some(0.8),
            bias: Some(0.02),
            ..Backtest::default()
        },
        points: total
            .iter()
            .enumerate()
            .map(|(day, mean)| point(day, *mean))
            .collect(),
    };
    Ok(forecast::store_forecasts(
        store,
        tenant,
        series,
        total,
        &recent,
        last_day,
        generated_at,
    )
    .await?)
}

fn percentile(sorted: &[Duration], share: f64) -> Duration {
    let index = ((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

async fn measure(
    client: &reqwest::Client,
    url: &str,
    cookie: &str,
    requests: usize,
    expect: &str,
) -> anyhow::Result<()> {
    let mut times = Vec::with_capacity(requests);
    let mut size = 0;
    // Two warm-up requests fill SQLite's page cache and the statement caches.
    for round in 0..requests + 2 {
        let started = Instant::now();
        let response = client
            .get(url)
            .header("cookie", cookie)
            .send()
            .await
            .with_context(|| format!("requesting {url}"))?;
        let status = response.status();
        let body = response.text().await?;
        let elapsed = started.elapsed();
        anyhow::ensure!(status.is_success(), "{url} answered {status}");
        anyhow::ensure!(body.contains(expect), "{url} does not show {expect:?}");
        size = body.len();
        if round >= 2 {
            times.push(elapsed);
        }
    }
    times.sort();
    let ms = |duration: Duration| duration.as_secs_f64() * 1000.0;
    println!(
        "{url}: {requests} renders, {size} bytes: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
        ms(percentile(&times, 0.50)),
        ms(percentile(&times, 0.95)),
        ms(percentile(&times, 0.99)),
        ms(percentile(&times, 1.0)),
        if percentile(&times, 0.95) <= Duration::from_millis(100) {
            " (target p95 ≤ 100 ms: met)"
        } else {
            " (target p95 ≤ 100 ms: missed)"
        }
    );
    Ok(())
}

fn bundle_size(site_dir: &std::path::Path) {
    let pkg = site_dir.join("pkg");
    let gzipped = |name: &str| -> Option<u64> {
        let bytes = std::fs::read(pkg.join(name)).ok()?;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut encoder, &bytes).ok()?;
        Some(encoder.finish().ok()?.len() as u64)
    };
    match (
        gzipped("ordernimbus_ui_bg.wasm"),
        gzipped("ordernimbus_ui.js"),
    ) {
        (Some(wasm), Some(js)) => println!(
            "browser bundle, gzipped: wasm {:.1} KB + JS {:.1} KB = {:.1} KB (target < 600 KB: {})",
            wasm as f64 / 1024.0,
            js as f64 / 1024.0,
            (wasm + js) as f64 / 1024.0,
            if wasm + js < 600 * 1024 {
                "met"
            } else {
                "missed"
            }
        ),
        _ => println!(
            "browser bundle: not built in {} (run scripts/build-ui.sh)",
            pkg.display()
        ),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let scratch = tempfile_dir()?;
    let data_dir = args.data_dir.clone().unwrap_or_else(|| scratch.clone());
    std::fs::create_dir_all(&data_dir)?;
    let sqlite = Arc::new(SqliteStore::open(data_dir.join("ordernimbus.db"))?);
    let store: Arc<dyn Store> = sqlite.clone();
    let tenant = build_tenant(&store, &args).await?;

    let secret = BrowserSecret::generate();
    let csrf = BrowserSecret::generate();
    store
        .create_session(
            &tenant,
            secret.hash(),
            csrf.expose(),
            chrono::Utc::now() + chrono::Duration::hours(1),
        )
        .await?;
    let state = AppState {
        store: Arc::clone(&store),
        metrics: Arc::new(Metrics::default()),
        max_upload_bytes: http::DEFAULT_MAX_UPLOAD_BYTES,
        refresher: Refresher::new(Arc::clone(&store)),
        shopify: None,
    };
    let router = http::router(state.clone()).merge(ui::router(state, &args.site_dir));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::new();
    let cookie = format!("ordernimbus_session={}", secret.expose());
    measure(
        &client,
        &format!("{base}/app"),
        &cookie,
        args.requests,
        "Expected units",
    )
    .await?;
    measure(
        &client,
        &format!("{base}/app/products?sort=sales&order=desc&page=3"),
        &cookie,
        args.requests,
        "page 3 of",
    )
    .await?;
    measure(
        &client,
        &format!("{base}/app/products?sort=cover&order=asc&page=1&q=SKU-1"),
        &cookie,
        args.requests,
        "page 1 of",
    )
    .await?;
    bundle_size(&args.site_dir);
    server.abort();
    sqlite.close().await;
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    Ok(())
}

/// A fresh scratch directory under the system's temporary directory.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "ordernimbus-ui-bench-{}",
        BrowserSecret::generate()
            .expose()
            .get(..12)
            .unwrap_or("run")
    ));
    Ok(dir)
}
