//! Order-sync benchmark: a synthetic shop of `--orders N` orders (default 1,000,000) in a
//! `shopify-sim` process on loopback, backfilled by the real `Syncer` (the same adapters `serve`
//! wires: `ReqwestShopify`, `SqliteStore`) into a fresh store. Prints the time from the result being
//! ready to the last order applied, lines/s, orders/s and MB/s, the peak RSS of this process, and the
//! ceiling: downloading and JSON-parsing the same file with no storage.
//!
//! Run with `bench/sync.sh` (release build).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use ordernimbus_backend::domain::{SyncPhase, SyncStatus};
use ordernimbus_backend::shopify::Secret;
use ordernimbus_backend::shopify::admin_api::ReqwestShopify;
use ordernimbus_backend::shopify::cipher::TokenCipher;
use ordernimbus_backend::shopify::client::ShopifyClient;
use ordernimbus_backend::shopify::install::{Lifecycle, ShopifyConfig};
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::shopify::sync::{BulkSignals, SyncOptions, SyncRequest, Syncer};
use ordernimbus_backend::store::Store;
use ordernimbus_backend::store::sqlite::SqliteStore;

/// The `ordernimbus` binary's allocator, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: ordernimbus::Allocator = ordernimbus::Allocator {};

const API_KEY: &str = "bench-client-id";
const API_SECRET: &str = "bench-client-secret";
const SHOP: &str = "bench.myshopify.com";

/// Peak resident set of this process (`VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmHWM:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; ours is `--orders N`.
    let mut n_orders: u64 = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--orders" {
            let value = args.next().unwrap_or_default();
            n_orders = value
                .parse()
                .map_err(|_| anyhow::anyhow!("--orders: \"{value}\" is not a whole number"))?;
        }
    }
    // The simulator keeps bulk results (a GB at 1M orders) in its temporary directory; a killed
    // process cannot remove them, so they go in one this process removes.
    let sim_tmp = tempfile::tempdir()?;
    let mut sim = Command::new(env!("CARGO_BIN_EXE_shopify-sim"))
        .env("TMPDIR", sim_tmp.path())
        .args([
            "--addr",
            "127.0.0.1:0",
            "--api-key",
            API_KEY,
            "--api-secret",
            API_SECRET,
            "--shop",
            SHOP,
            "--orders",
            &n_orders.to_string(),
            "--bulk-seconds",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = sim.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut template = None;
    for line in lines.by_ref() {
        let line = line?;
        if let Some(found) = line.strip_prefix("admin URL template: ") {
            template = Some(found.to_owned());
            break;
        }
    }
    // Keep reading: a closed pipe would end the simulator at its next line of output.
    std::thread::spawn(move || lines.for_each(drop));
    let template = template.ok_or_else(|| anyhow::anyhow!("shopify-sim printed no admin URL"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(n_orders, &template));
    let _ = sim.kill();
    let _ = sim.wait();
    drop(sim_tmp);
    result
}

async fn run(n_orders: u64, template: &str) -> anyhow::Result<()> {
    let data_dir = tempfile::tempdir()?;
    let sqlite = Arc::new(SqliteStore::open(
        data_dir.path().join("ordernimbus.sqlite3"),
    )?);
    let store: Arc<dyn Store> = sqlite.clone();
    let client: Arc<dyn ShopifyClient> = Arc::new(ReqwestShopify::new(
        API_KEY,
        Secret::new(API_SECRET),
        template,
    )?);
    let config = ShopifyConfig {
        api_key: API_KEY.into(),
        api_secret: Secret::new(API_SECRET),
        previous_api_secret: None,
        app_url: "http://127.0.0.1:9".into(),
        scopes: vec!["read_orders".into(), "read_all_orders".into()],
        admin_url_template: template.into(),
        app_bridge_url: "https://cdn.shopify.com/shopifycloud/app-bridge.js".into(),
    };
    let cipher = TokenCipher::from_base64(&TokenCipher::generate_key_base64())?;
    let lifecycle = Arc::new(Lifecycle::new(
        config,
        Arc::clone(&store),
        Arc::clone(&client),
        cipher,
    ));
    let claims =
        ordernimbus_e2e::session_token::standard_claims(API_KEY, SHOP, 1, chrono::Utc::now());
    let session = ordernimbus_e2e::session_token::sign(API_SECRET, &claims);
    lifecycle.authenticate(&session).await?;
    let syncer = Syncer::new(
        Arc::clone(&store),
        Arc::clone(&client),
        Arc::clone(&lifecycle),
        data_dir.path().join("sync"),
        Arc::new(BulkSignals::default()),
        SyncOptions {
            poll_interval: Duration::from_millis(100),
            signal_check: Duration::from_millis(50),
            ..SyncOptions::default()
        },
    );
    let ready_at: Mutex<Option<Instant>> = Mutex::new(None);
    let applying_at: Mutex<Option<Instant>> = Mutex::new(None);
    let sorted_at: Mutex<Option<Instant>> = Mutex::new(None);
    let progress = |status: &SyncStatus| {
        if status.phase == SyncPhase::Downloading {
            ready_at.lock().unwrap().get_or_insert_with(Instant::now);
        }
        if status.phase == SyncPhase::Applying {
            applying_at.lock().unwrap().get_or_insert_with(Instant::now);
            if status.buckets_sorted as usize == status.spool_lengths.len() {
                sorted_at.lock().unwrap().get_or_insert_with(Instant::now);
            }
        }
    };
    let shop = ShopDomain::parse(SHOP)?;
    let request = SyncRequest {
        shop: shop.clone(),
        since: None,
        full: true,
    };
    let started = Instant::now();
    let status = syncer.sync(&request, &progress).await?;
    let finished = Instant::now();
    let rss = peak_rss_mb();
    let ready = ready_at.lock().unwrap().unwrap_or(started);
    let applying = applying_at.lock().unwrap().unwrap_or(ready);
    let sorted = sorted_at.lock().unwrap().unwrap_or(applying);
    let wait = ready - started;
    let ingest = finished - ready;
    let bytes = status.bytes_committed as f64;
    let lines = status.lines_committed as f64;
    let orders = status.orders as f64;

    // The ceiling: the same file downloaded and JSON-parsed line by line, nothing stored.
    let token = lifecycle.access_token(&shop).await?;
    let operation = client
        .bulk_operation(&shop, &token, status.bulk_operation_id.as_deref().unwrap())
        .await?
        .unwrap();
    let url = operation.url.unwrap();
    let raw_started = Instant::now();
    let mut download = client.download(&url, 0).await?;
    let (mut carry, mut raw_lines, mut raw_bytes) = (Vec::new(), 0u64, 0u64);
    while let Some(chunk) = download.body.next().await {
        let chunk = chunk?;
        raw_bytes += chunk.len() as u64;
        carry.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = memchr_newline(&carry[start..]) {
            let line = &carry[start..start + end];
            serde_json::from_slice::<serde::de::IgnoredAny>(line)?;
            raw_lines += 1;
            start += end + 1;
        }
        carry.drain(..start);
    }
    if !carry.is_empty() {
        serde_json::from_slice::<serde::de::IgnoredAny>(&carry)?;
        raw_lines += 1;
    }
    let raw = raw_started.elapsed();
    sqlite.close().await;

    let mb = bytes / 1e6;
    let secs = ingest.as_secs_f64();
    println!("orders in the shop        {n_orders}");
    println!(
        "result                    {:.1} MB, {} lines, {} orders applied, {} lines of sales",
        mb, lines, orders, status.lines
    );
    println!(
        "bulk operation (sim)      {:.2} s from the mutation to the result being ready",
        wait.as_secs_f64()
    );
    println!(
        "ingest (ours)             {secs:.2} s: {:.0} lines/s, {:.0} orders/s, {:.1} MB/s",
        lines / secs,
        orders / secs,
        mb / secs
    );
    println!(
        "  of which                {:.2} s download + partition, {:.2} s sort by order id, {:.2} s merge + join + apply",
        (applying - ready).as_secs_f64(),
        (sorted - applying).as_secs_f64(),
        (finished - sorted).as_secs_f64()
    );
    println!(
        "mutation to last applied  {:.2} s (the simulator's bulk run included); peak RSS {rss:.0} MB",
        (finished - started).as_secs_f64()
    );
    let raw_secs = raw.as_secs_f64();
    println!(
        "ceiling (download+parse)  {raw_secs:.2} s: {:.0} lines/s, {:.1} MB/s ({} lines, {:.1} MB)",
        raw_lines as f64 / raw_secs,
        raw_bytes as f64 / 1e6 / raw_secs,
        raw_lines,
        raw_bytes as f64 / 1e6
    );
    println!("ratio ingest / ceiling    {:.1}x", secs / raw_secs);
    Ok(())
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|byte| *byte == b'\n')
}
