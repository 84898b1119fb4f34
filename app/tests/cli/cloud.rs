//! The cloud path with real processes: `ordernimbus migrate` creates a DynamoDB table, `serve --store
//! dynamodb --bus eventbridge` stores a delivery in it and publishes it with PutEvents, a rule
//! targets an SQS queue, and `ordernimbus worker --store dynamodb` applies it to the same table.
//! AWS is moto's server on loopback (`eval "$(scripts/moto.sh)"`; scripts/test.sh starts it).

use std::process::{Command, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use aws_sdk_eventbridge::types::Target;
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::store::Store;
use ordernimbus_backend::store::dynamodb::DynamoStore;

use crate::serve::Server;
use crate::webhooks::{SHOP, install_shop, order, shopify_flags, sign, total_units};

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
    let table = unique("on-cloud-table");
    let store_flags = ["--store", "dynamodb", "--dynamodb-table", table.as_str()];

    // `migrate` creates the table (with its indexes and TTL) once; a second run finds it.
    for expected in ["created", "exists already"] {
        let output =
            crate::ordernimbus(directory.path(), &[&store_flags[..], &["migrate"]].concat());
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains(&format!("DynamoDB table {table} {expected}")),
            "{stdout}"
        );
    }
    let store = DynamoStore::from_env(table.clone()).await;
    install_shop(&store).await;

    let mut flags: Vec<String> = store_flags.iter().map(|flag| (*flag).to_owned()).collect();
    flags.extend(shopify_flags(directory.path()));
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
        .args(store_flags)
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
        "stored in DynamoDB, published to EventBridge, consumed by the worker"
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
    // The CLI reads the same table.
    let output = crate::ordernimbus(
        directory.path(),
        &[&store_flags[..], &["webhooks", "show", "cloud-1"]].concat(),
    );
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("applied"));
    worker.kill().unwrap();
    worker.wait().unwrap();
    drop(server);
}

#[test]
fn a_missing_dynamodb_table_is_named_with_the_command_that_creates_it() {
    let directory = tempfile::tempdir().unwrap();
    let table = unique("never-created");
    let output = crate::ordernimbus(
        directory.path(),
        &[
            "--store",
            "dynamodb",
            "--dynamodb-table",
            &table,
            "tenants",
            "list",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("DynamoDB table {table} does not exist"))
            && stderr.contains("ordernimbus migrate"),
        "{stderr}"
    );
}
