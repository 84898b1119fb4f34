//! The cloud path with real processes: `serve --bus eventbridge` publishes a stored delivery with
//! PutEvents, a rule targets an SQS queue, and `ordernimbus worker` applies it. AWS is moto's server
//! on loopback (`eval "$(scripts/moto.sh)"`; scripts/test.sh starts it).

use std::process::{Command, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::store::Store;
use ordernimbus_backend::store::sqlite::SqliteStore;

use crate::serve::Server;
use crate::webhooks::{SHOP, installed_store, order, shopify_flags, sign, total_units};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// Creates a bus and a queue, and a rule on the bus targeting the queue; returns their names/URL.
async fn bus_rule_queue() -> (String, String) {
    #[allow(
        clippy::disallowed_methods,
        reason = "the test finds moto through the same variable the SDK reads"
    )]
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("AWS_ENDPOINT_URL is not set: start moto with `eval \"$(scripts/moto.sh)\"`")
    });
    let config = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .endpoint_url(&endpoint)
        .load()
        .await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let bus = unique("on-cloud-bus");
    events
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap_or_else(|error| panic!("moto is not answering at {endpoint}: {error:?}"));
    let queue_url = sqs
        .create_queue()
        .queue_name(unique("on-cloud-queue"))
        .attributes(QueueAttributeName::VisibilityTimeout, "5")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone();
    let rule = unique("on-cloud-rule");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source": ["ordernimbus.webhooks"]}"#)
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(Target::builder().id("worker").arn(arn).build().unwrap())
        .send()
        .await
        .unwrap();
    (bus, queue_url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_goes_through_eventbridge_and_sqs_to_the_worker_and_becomes_sales() {
    let (bus, queue_url) = bus_rule_queue().await;
    let directory = tempfile::tempdir().unwrap();
    installed_store(directory.path()).await;
    let mut flags = shopify_flags(directory.path());
    flags.extend([
        "--bus".into(),
        "eventbridge".into(),
        "--event-bus-name".into(),
        bus,
    ]);
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start(directory.path(), &flag_refs);
    let mut worker = Command::new(env!("CARGO_BIN_EXE_ordernimbus"))
        .arg("--data-dir")
        .arg(directory.path())
        .args(["worker", "--queue-url", &queue_url])
        .args(shopify_flags(directory.path()))
        .env("ORDERNIMBUS_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let body = order(1);
    let response = reqwest::Client::new()
        .post(format!("{}/webhooks", server.address))
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-hmac-sha256", sign(&body))
        .header("x-shopify-shop-domain", SHOP)
        .header("x-shopify-api-version", "2026-10")
        .header("x-shopify-webhook-id", "cloud-1")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let store = SqliteStore::open(directory.path().join("ordernimbus.sqlite3")).unwrap();
    let shop = ShopDomain::parse(SHOP).unwrap();
    let tenant = store.shop_install(&shop).await.unwrap().unwrap().tenant;
    let mut outcome = String::new();
    for _ in 0..1500 {
        let delivery = store.delivery("cloud-1").await.unwrap().unwrap();
        outcome = delivery
            .history
            .last()
            .map(|step| step.outcome.clone())
            .unwrap_or_default();
        if outcome == "applied" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        outcome, "applied",
        "published to EventBridge, consumed by the worker"
    );
    let units = total_units(&store, &tenant).await;
    assert_eq!(units, 1.0);
    // The worker refits the tenant's forecasts after its debounce, as `serve` does locally.
    let mut forecast = None;
    for _ in 0..1500 {
        forecast = store.oldest_forecast(&tenant).await.unwrap();
        if forecast.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(forecast.is_some(), "the worker refreshed the forecasts");
    worker.kill().unwrap();
    worker.wait().unwrap();
    drop(server);
    store.close().await;
}
