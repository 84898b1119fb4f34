//! The cloud path under load: the helper `bench/cloud_load.sh` runs around `ordernimbus serve
//! --store dynamodb --bus eventbridge` and `ordernimbus worker`s, all against moto on loopback.
//!
//! - `cloud_load setup` creates the EventBridge bus, an SQS queue with a dead-letter queue (redrive
//!   policy), a rule on the bus targeting the queue, and installs the test shop in the DynamoDB
//!   table (as the cloud CLI test does); it prints `export` lines for the script to `eval`.
//! - `cloud_load run` sends signed `orders/create` deliveries to the receiver: one per distinct order
//!   (known line quantities), plus exact duplicates (same `X-Shopify-Webhook-Id`), duplicate events
//!   (a new webhook id, the same `X-Shopify-Event-Id`) and resent versions (a new webhook id and
//!   event id, the same order version), half of them sent right behind their original so that they
//!   race it through the receiver and the workers. It waits until nothing is pending, queued or in
//!   flight, then checks that every accepted delivery is stored, that each order was applied exactly
//!   once (one `applied` step over all of its deliveries, and the tenant's units equal to the sum
//!   of the orders' quantities, in total and per SKU), that nothing is dead and the dead-letter
//!   queue is empty; it prints the throughput and latency figures and exits 1 when a check fails.
//!
//! Built with `cargo build -p ordernimbus --bench cloud_load` (no harness); under `cargo bench` it
//! does nothing, as it needs the processes the script starts.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::types::QueueAttributeName;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use futures_util::{StreamExt, stream};
use ordernimbus_backend::domain::{
    DeliveryFilter, DeliveryRecord, DeliveryStatus, NewInstall, SalesQuery, SealedCredentials,
    TenantId, Timezone,
};
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::store::Store;
use ordernimbus_backend::store::dynamodb::DynamoStore;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

#[derive(Debug, Parser)]
#[command(name = "cloud_load")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the bus, the queues and the rule; install the test shop; print `export` lines.
    Setup(SetupArgs),
    /// Send the deliveries, wait for the workers, check, and print the figures.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct Common {
    /// The DynamoDB table (`ordernimbus migrate` created it).
    #[arg(long, env = "ORDERNIMBUS_DYNAMODB_TABLE")]
    table: String,
    /// The test shop.
    #[arg(long, default_value = "load.myshopify.com")]
    shop: String,
}

#[derive(Debug, Args)]
struct SetupArgs {
    #[command(flatten)]
    common: Common,
    /// Name of the EventBridge bus, and prefix of the rule and queue names.
    #[arg(long, default_value = "ordernimbus-load")]
    bus: String,
    /// The queue's visibility timeout, in seconds.
    #[arg(long, default_value_t = 30)]
    visibility_timeout: u32,
    /// Receives of one message before SQS moves it to the dead-letter queue.
    #[arg(long, default_value_t = 5)]
    max_receive_count: u32,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    /// The receiver (`http://127.0.0.1:PORT/webhooks`).
    #[arg(long)]
    url: String,
    /// The Shopify API secret `serve` verifies with.
    #[arg(long)]
    secret: String,
    /// The queue the workers consume.
    #[arg(long, env = "ORDERNIMBUS_QUEUE_URL")]
    queue_url: String,
    /// Its dead-letter queue.
    #[arg(long, env = "LOAD_DLQ_URL")]
    dlq_url: String,
    /// Distinct orders, one delivery each.
    #[arg(long, default_value_t = 1000)]
    orders: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Fraction of orders delivered again with the same webhook id (Shopify's retry).
    #[arg(long, default_value_t = 0.05)]
    duplicates: f64,
    /// Fraction of orders delivered again with a new webhook id and the same event id.
    #[arg(long, default_value_t = 0.05)]
    same_event: f64,
    /// Fraction of orders delivered again as a new event carrying the same order version.
    #[arg(long, default_value_t = 0.05)]
    same_version: f64,
    /// Longest wait for the workers after the last send, in seconds.
    #[arg(long, default_value_t = 1800)]
    wait_timeout: u64,
    /// Seed of the order in which deliveries are sent.
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    // `cargo bench` runs every bench target with `--bench`: this one needs the script's processes.
    if std::env::args().any(|arg| arg == "--bench") {
        println!("cloud_load: run it through bench/cloud_load.sh");
        return ExitCode::SUCCESS;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Setup(args)) => setup(&args).await.map(|()| true),
        Some(Command::Run(args)) => run(&args).await,
        None => {
            eprintln!("usage: cloud_load setup|run … (bench/cloud_load.sh runs it)");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("cloud_load: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn aws() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<String> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .context("GetQueueAttributes")?
        .attributes
        .unwrap_or_default();
    attributes
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .context("the queue has no ARN")
}

async fn setup(args: &SetupArgs) -> anyhow::Result<()> {
    let config = aws().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    events
        .create_event_bus()
        .name(&args.bus)
        .send()
        .await
        .context("CreateEventBus (is moto running? `eval \"$(scripts/moto.sh)\"`)")?;
    let dlq_url = sqs
        .create_queue()
        .queue_name(format!("{}-dlq", args.bus))
        .send()
        .await
        .context("CreateQueue (dead letters)")?
        .queue_url
        .context("CreateQueue returned no URL")?;
    let dlq_arn = queue_arn(&sqs, &dlq_url).await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": args.max_receive_count.to_string(),
    });
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{}-orders", args.bus))
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            args.visibility_timeout.to_string(),
        )
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .context("CreateQueue")?
        .queue_url
        .context("CreateQueue returned no URL")?;
    let queue_arn = queue_arn(&sqs, &queue_url).await?;
    let rule = format!("{}-orders", args.bus);
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&args.bus)
        .event_pattern(r#"{"source": ["ordernimbus.webhooks"]}"#)
        .send()
        .await
        .context("PutRule")?;
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&args.bus)
        .targets(Target::builder().id("worker").arn(queue_arn).build()?)
        .send()
        .await
        .context("PutTargets")?;

    let store = DynamoStore::from_env(args.common.table.clone()).await;
    let install = store
        .install_shop(
            &NewInstall {
                shop: ShopDomain::parse(&args.common.shop)?,
                name: "Load".into(),
                timezone: Timezone::default(),
                scopes: vec!["read_orders".into()],
                credentials: SealedCredentials {
                    access_token: b"sealed".to_vec(),
                    access_expires_at: None,
                    refresh_token: None,
                    refresh_expires_at: None,
                },
                at: Utc::now() - chrono::Duration::hours(1),
            },
            &TenantId::generate(),
        )
        .await
        .context("installing the test shop")?;
    eprintln!(
        "bus {}, rule {rule} → {queue_url} (dead letters: {dlq_url} after {} receives); shop {} installed as tenant {}",
        args.bus, args.max_receive_count, args.common.shop, install.tenant
    );
    println!("export ORDERNIMBUS_EVENT_BUS_NAME={}", args.bus);
    println!("export ORDERNIMBUS_QUEUE_URL={queue_url}");
    println!("export LOAD_DLQ_URL={dlq_url}");
    Ok(())
}

// ----- The load ----------------------------------------------------------------------------------

/// Distinct SKUs the orders' lines are spread over (few: the daily-sales items are contended).
const SKUS: usize = 10;
/// Days the orders are spread over.
const DAYS: usize = 5;

/// How a delivery relates to its order's first one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The order's own delivery.
    Original,
    /// The same delivery again: same webhook id (Shopify retrying).
    Duplicate,
    /// A new webhook id for the same event.
    SameEvent,
    /// A new event (new webhook id and event id) with the same order version.
    SameVersion,
}

/// One request to send.
struct Delivery {
    order: usize,
    kind: Kind,
    webhook_id: String,
    event_id: String,
    body: Arc<String>,
    hmac: Arc<String>,
}

/// One order: its body and its units per SKU.
struct Order {
    body: Arc<String>,
    hmac: Arc<String>,
    units: BTreeMap<String, f64>,
}

fn order(number: usize, secret: &str) -> Order {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default()
        + chrono::Duration::days(i64::try_from(number % DAYS).unwrap_or(0));
    let at = format!("{day}T10:00:00Z");
    let mut units = BTreeMap::new();
    let lines: Vec<serde_json::Value> = (0..1 + number % 3)
        .map(|line| {
            let sku = format!("LOAD-{}", (number * 7 + line) % SKUS);
            let quantity = 1 + (number + line) % 4;
            *units.entry(sku.clone()).or_insert(0.0) += quantity as f64;
            serde_json::json!({
                "id": 7_000_000_000_000_000_u64 + (number * 10 + line) as u64,
                "sku": sku, "quantity": quantity, "price": "12.50", "gift_card": false,
                "title": "Load test product",
            })
        })
        .collect();
    let body = serde_json::json!({
        "id": 6_000_000_000_000_000_u64 + number as u64,
        "created_at": at, "processed_at": at, "updated_at": at,
        "cancelled_at": null, "test": false,
        "line_items": lines,
        "note": "x".repeat(1500),
    })
    .to_string();
    let hmac = ordernimbus_webhooks::verify::sign_body(body.as_bytes(), secret.as_bytes());
    Order {
        body: Arc::new(body),
        hmac: Arc::new(hmac),
        units,
    }
}

/// The deliveries in sending order: originals shuffled, each copy either right behind its
/// original (racing it) or anywhere.
fn plan(args: &RunArgs, orders: &[Order]) -> Vec<Delivery> {
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut positions: Vec<usize> = (0..orders.len()).collect();
    positions.shuffle(&mut rng);
    let mut keyed: Vec<(f64, Delivery)> = Vec::new();
    let delivery = |number: usize, kind: Kind, webhook_id: String, event_id: String| Delivery {
        order: number,
        kind,
        webhook_id,
        event_id,
        body: Arc::clone(&orders[number].body),
        hmac: Arc::clone(&orders[number].hmac),
    };
    for (number, position) in positions.iter().enumerate() {
        keyed.push((
            *position as f64,
            delivery(
                number,
                Kind::Original,
                format!("load-{number}"),
                format!("event-{number}"),
            ),
        ));
    }
    let all: Vec<usize> = (0..orders.len()).collect();
    for (kind, fraction) in [
        (Kind::Duplicate, args.duplicates),
        (Kind::SameEvent, args.same_event),
        (Kind::SameVersion, args.same_version),
    ] {
        let count = ((orders.len() as f64) * fraction.clamp(0.0, 1.0)).round() as usize;
        for &number in all.choose_multiple(&mut rng, count) {
            let (webhook_id, event_id) = match kind {
                Kind::Duplicate => (format!("load-{number}"), format!("event-{number}")),
                Kind::SameEvent => (format!("load-{number}-e"), format!("event-{number}")),
                _ => (format!("load-{number}-v"), format!("event-{number}-v")),
            };
            let key = if rng.random_bool(0.5) {
                positions[number] as f64 + rng.random_range(0.1..0.9)
            } else {
                rng.random_range(0.0..orders.len() as f64)
            };
            keyed.push((key, delivery(number, kind, webhook_id, event_id)));
        }
    }
    keyed.sort_by(|left, right| left.0.total_cmp(&right.0));
    keyed.into_iter().map(|(_, delivery)| delivery).collect()
}

/// How often the wait reports progress.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// What sending one delivery came to.
struct Sent {
    index: usize,
    /// The answer's `receipt` when it was 200.
    receipt: Option<String>,
    /// Time to the 200.
    latency: Duration,
    /// Answers other than 200 (and transport errors) before it, each retried.
    refused: u32,
    answered: Instant,
}

async fn send(client: &reqwest::Client, args: &RunArgs, index: usize, delivery: &Delivery) -> Sent {
    let mut refused = 0;
    let mut last = Instant::now();
    for attempt in 0..8u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100) * attempt).await;
        }
        let started = Instant::now();
        let answer = client
            .post(&args.url)
            .header("content-type", "application/json")
            .header("x-shopify-topic", "orders/create")
            .header("x-shopify-hmac-sha256", delivery.hmac.as_str())
            .header("x-shopify-shop-domain", &args.common.shop)
            .header("x-shopify-api-version", "2026-01")
            .header("x-shopify-webhook-id", &delivery.webhook_id)
            .header("x-shopify-event-id", &delivery.event_id)
            .body(delivery.body.as_bytes().to_vec())
            .send()
            .await;
        last = Instant::now();
        match answer {
            Ok(response) if response.status() == reqwest::StatusCode::OK => {
                let receipt = response
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|body| body["receipt"].as_str().map(str::to_owned))
                    .unwrap_or_default();
                return Sent {
                    index,
                    receipt: Some(receipt),
                    latency: last - started,
                    refused,
                    answered: last,
                };
            }
            Ok(response) => {
                refused += 1;
                eprintln!(
                    "  {} answered {} (retrying)",
                    delivery.webhook_id,
                    response.status()
                );
            }
            Err(error) => {
                refused += 1;
                eprintln!("  {} failed: {error} (retrying)", delivery.webhook_id);
            }
        }
    }
    Sent {
        index,
        receipt: None,
        latency: Duration::ZERO,
        refused,
        answered: last,
    }
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64) * fraction).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> anyhow::Result<(u64, u64)> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await
        .context("GetQueueAttributes")?
        .attributes
        .unwrap_or_default();
    let count = |name: QueueAttributeName| -> u64 {
        attributes
            .get(&name)
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    Ok((
        count(QueueAttributeName::ApproximateNumberOfMessages)
            + count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

async fn units_by_sku(
    store: &dyn Store,
    tenant: &TenantId,
) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut units = BTreeMap::new();
    for day in store.sales(tenant, &SalesQuery::default()).await? {
        *units.entry(day.sku.as_str().to_owned()).or_insert(0.0) += day.units;
    }
    Ok(units)
}

/// Prints a check's result; returns whether it passed.
fn check(passed: bool, what: &str) -> bool {
    println!("  [{}] {what}", if passed { " ok " } else { "FAIL" });
    passed
}

#[allow(
    clippy::too_many_lines,
    reason = "one straight run: send, wait, check, report"
)]
async fn run(args: &RunArgs) -> anyhow::Result<bool> {
    let config = aws().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let store = DynamoStore::from_env(args.common.table.clone()).await;
    let shop = ShopDomain::parse(&args.common.shop)?;
    let tenant = store
        .shop_install(&shop)
        .await?
        .context("the test shop is not installed (run `cloud_load setup` first)")?
        .tenant;

    let orders: Vec<Order> = (0..args.orders)
        .map(|number| order(number, &args.secret))
        .collect();
    let mut expected: BTreeMap<String, f64> = BTreeMap::new();
    for order in &orders {
        for (sku, units) in &order.units {
            *expected.entry(sku.clone()).or_insert(0.0) += units;
        }
    }
    let expected_total: f64 = expected.values().sum();
    let deliveries = plan(args, &orders);
    let count_of = |kind: Kind| {
        deliveries
            .iter()
            .filter(|delivery| delivery.kind == kind)
            .count()
    };
    println!(
        "sending {} deliveries ({} orders, {} exact duplicates, {} duplicate events, {} resent versions; {expected_total} units) to {}, {} in flight",
        deliveries.len(),
        orders.len(),
        count_of(Kind::Duplicate),
        count_of(Kind::SameEvent),
        count_of(Kind::SameVersion),
        args.url,
        args.concurrency
    );

    // ---- send
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let first_send = Utc::now();
    let started = Instant::now();
    let sent: Vec<Sent> = stream::iter(deliveries.iter().enumerate())
        .map(|(index, delivery)| send(&client, args, index, delivery))
        .buffer_unordered(args.concurrency.max(1))
        .collect()
        .await;
    let last_answer = sent
        .iter()
        .map(|sent| sent.answered)
        .max()
        .unwrap_or(started);
    let send_seconds = (last_answer - started).as_secs_f64();
    let accepted: Vec<&Sent> = sent.iter().filter(|sent| sent.receipt.is_some()).collect();
    let refused: u32 = sent.iter().map(|sent| sent.refused).sum();
    let mut latencies: Vec<Duration> = accepted.iter().map(|sent| sent.latency).collect();
    latencies.sort();
    let mut receipts: BTreeMap<String, usize> = BTreeMap::new();
    for sent in &accepted {
        *receipts
            .entry(sent.receipt.clone().unwrap_or_default())
            .or_default() += 1;
    }
    println!(
        "serve accepted {} of {} in {send_seconds:.1} s: {:.0} deliveries/s; receive latency p50 {:.1} ms, p99 {:.1} ms; {refused} non-200 answers retried; receipts {receipts:?}",
        accepted.len(),
        deliveries.len(),
        accepted.len() as f64 / send_seconds.max(1e-9),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
    );

    // ---- wait: nothing pending in the log, nothing queued or in flight, twice in a row
    let deadline = Instant::now() + Duration::from_secs(args.wait_timeout);
    let mut quiet = 0;
    let mut last_report = Instant::now();
    loop {
        // The queue first (one cheap request); the log's pending listing only once it is empty.
        let (queued, in_flight) = queue_depth(&sqs, &args.queue_url).await?;
        let pending = if queued + in_flight == 0 || last_report.elapsed() >= REPORT_EVERY {
            store
                .deliveries(&DeliveryFilter {
                    status: Some(DeliveryStatus::Pending),
                    limit: u32::MAX,
                    ..DeliveryFilter::default()
                })
                .await?
                .len()
        } else {
            usize::MAX
        };
        let idle = pending == 0 && queued == 0 && in_flight == 0;
        quiet = if idle { quiet + 1 } else { 0 };
        if quiet >= 2 {
            break;
        }
        if last_report.elapsed() >= REPORT_EVERY {
            let units: f64 = units_by_sku(&store, &tenant).await?.values().sum();
            eprintln!(
                "  waiting: {pending} pending in the log, {queued} queued, {in_flight} in flight; {units} of {expected_total} units applied"
            );
            last_report = Instant::now();
        }
        if Instant::now() >= deadline {
            println!(
                "gave up after {} s: {queued} queued, {in_flight} in flight",
                args.wait_timeout
            );
            break;
        }
        // moto's GetQueueAttributes walks every message: ask no more often than this.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let settled = Instant::now();

    // ---- read back every accepted delivery with its history
    let mut accepted_ids: Vec<&str> = accepted
        .iter()
        .map(|sent| deliveries[sent.index].webhook_id.as_str())
        .collect();
    accepted_ids.sort_unstable();
    accepted_ids.dedup();
    let store_ref = &store;
    let records: Vec<(String, Option<DeliveryRecord>)> = stream::iter(accepted_ids.iter())
        .map(|webhook_id| async move {
            let record = store_ref.delivery(webhook_id).await?;
            Ok::<_, anyhow::Error>(((*webhook_id).to_owned(), record))
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let records: HashMap<String, Option<DeliveryRecord>> = records.into_iter().collect();
    let steps = |record: &DeliveryRecord, outcome: &str| {
        record
            .history
            .iter()
            .filter(|step| step.outcome == outcome)
            .count()
    };

    let mut ok = true;
    println!("checks:");
    ok &= check(
        accepted.len() == deliveries.len(),
        &format!(
            "every delivery answered 200 in the end ({} of {})",
            accepted.len(),
            deliveries.len()
        ),
    );
    let missing: Vec<&str> = accepted_ids
        .iter()
        .copied()
        .filter(|id| records.get(*id).is_none_or(Option::is_none))
        .collect();
    ok &= check(
        missing.is_empty(),
        &format!(
            "every accepted delivery is stored ({} webhook ids, {} missing{})",
            accepted_ids.len(),
            missing.len(),
            sample(&missing)
        ),
    );
    let stored: Vec<&DeliveryRecord> = records.values().flatten().collect();
    let with_status = |status: DeliveryStatus| {
        stored
            .iter()
            .filter(|record| record.status == status)
            .count()
    };
    let (pending, published, duplicate, dead) = (
        with_status(DeliveryStatus::Pending),
        with_status(DeliveryStatus::Published),
        with_status(DeliveryStatus::Duplicate),
        with_status(DeliveryStatus::Dead),
    );
    let stored_receipts = receipts.get("stored").copied().unwrap_or(0);
    let distinct_events = orders.len() + count_of(Kind::SameVersion);
    ok &= check(
        stored_receipts == distinct_events && published == distinct_events,
        &format!(
            "one delivery stored and published per event ({distinct_events} events: {stored_receipts} `stored` receipts, {published} published)"
        ),
    );
    ok &= check(
        duplicate == count_of(Kind::SameEvent),
        &format!(
            "each duplicate event kept as a duplicate, not published ({duplicate} of {})",
            count_of(Kind::SameEvent)
        ),
    );
    let mut answers: HashMap<&str, usize> = HashMap::new();
    for sent in &accepted {
        *answers
            .entry(deliveries[sent.index].webhook_id.as_str())
            .or_default() += 1;
    }
    let miscounted: Vec<&str> = stored
        .iter()
        .filter(|record| {
            let answered = answers
                .get(record.webhook_id.as_str())
                .copied()
                .unwrap_or(0);
            record.redeliveries as usize + 1 != answered
        })
        .map(|record| record.webhook_id.as_str())
        .collect();
    let redeliveries: usize = stored
        .iter()
        .map(|record| record.redeliveries as usize)
        .sum();
    ok &= check(
        miscounted.is_empty(),
        &format!(
            "exact duplicates counted as redeliveries on the stored delivery ({redeliveries}; {} miscounted{})",
            miscounted.len(),
            sample(&miscounted)
        ),
    );
    ok &= check(
        pending == 0 && dead == 0,
        &format!("nothing pending or dead ({pending} pending, {dead} dead)"),
    );
    // Each order: exactly one `applied` step over all of its deliveries; the others `stale`
    // (a resent version) or never published (duplicates).
    let mut applied_per_order: HashMap<usize, usize> = HashMap::new();
    let mut unsettled = Vec::new();
    let (mut applied, mut stale) = (0, 0);
    for delivery in &deliveries {
        if delivery.kind == Kind::Duplicate || delivery.kind == Kind::SameEvent {
            continue;
        }
        let Some(Some(record)) = records.get(&delivery.webhook_id) else {
            continue;
        };
        let (applies, stales) = (steps(record, "applied"), steps(record, "stale"));
        applied += applies;
        stale += stales;
        *applied_per_order.entry(delivery.order).or_default() += applies;
        if record.status == DeliveryStatus::Published && applies + stales == 0 {
            unsettled.push(delivery.webhook_id.as_str());
        }
    }
    for delivery in &deliveries {
        if delivery.kind == Kind::SameEvent
            && let Some(Some(record)) = records.get(&delivery.webhook_id)
            && record.status == DeliveryStatus::Published
        {
            // The duplicate event won the race to be stored: its original is the duplicate.
            *applied_per_order.entry(delivery.order).or_default() += steps(record, "applied");
            applied += steps(record, "applied");
        }
    }
    ok &= check(
        unsettled.is_empty(),
        &format!(
            "every published delivery has its consumer outcome ({} without{})",
            unsettled.len(),
            sample(&unsettled)
        ),
    );
    let twice: Vec<usize> = applied_per_order
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(order, _)| *order)
        .collect();
    let never = (0..orders.len())
        .filter(|order| applied_per_order.get(order).copied().unwrap_or(0) == 0)
        .count();
    ok &= check(
        twice.is_empty() && never == 0,
        &format!(
            "each order applied exactly once ({applied} applied steps, {stale} stale; {} orders applied twice or more, {never} never)",
            twice.len()
        ),
    );
    let units = units_by_sku(&store, &tenant).await?;
    let total: f64 = units.values().sum();
    ok &= check(
        total == expected_total,
        &format!("the tenant's units equal the orders' quantities ({total} of {expected_total})"),
    );
    ok &= check(
        units == expected,
        &format!("per SKU as well ({} SKUs)", expected.len()),
    );
    let summaries = store.skus(&tenant).await?;
    let summary_total: f64 = summaries.iter().map(|summary| summary.units).sum();
    ok &= check(
        summary_total == expected_total,
        &format!("the SKU summaries agree ({summary_total})"),
    );
    let (dlq_visible, dlq_in_flight) = queue_depth(&sqs, &args.dlq_url).await?;
    ok &= check(
        dlq_visible + dlq_in_flight == 0,
        &format!(
            "the dead-letter queue is empty ({} messages)",
            dlq_visible + dlq_in_flight
        ),
    );

    // ---- figures
    let last_applied: Option<DateTime<Utc>> = stored
        .iter()
        .flat_map(|record| record.history.iter())
        .filter(|step| step.outcome == "applied" || step.outcome == "stale")
        .map(|step| step.at)
        .max();
    println!("figures:");
    println!(
        "  serve: {} deliveries accepted in {send_seconds:.1} s = {:.0}/s; receive latency p50 {:.1} ms, p99 {:.1} ms ({} in flight)",
        accepted.len(),
        accepted.len() as f64 / send_seconds.max(1e-9),
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        args.concurrency
    );
    if let Some(last_applied) = last_applied {
        let seconds = (last_applied - first_send).as_seconds_f64();
        println!(
            "  end to end (first send → last consumer outcome): {seconds:.1} s = {:.0} deliveries/s, {:.0} orders/s",
            accepted.len() as f64 / seconds.max(1e-9),
            orders.len() as f64 / seconds.max(1e-9)
        );
    }
    println!(
        "  outcomes: {applied} applied, {stale} stale (resent versions), {duplicate} duplicate events, {redeliveries} redeliveries, {dead} dead; settled {:.1} s after the last send",
        (settled - last_answer).as_secs_f64()
    );
    println!("{}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}

fn sample(ids: &[impl std::fmt::Display]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = ids.iter().take(5).map(ToString::to_string).collect();
    format!(": {}", shown.join(", "))
}
