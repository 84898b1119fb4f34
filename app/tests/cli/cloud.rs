//! The cloud path with real processes: `ordernimbus migrate` creates a DynamoDB table, `serve --store
//! dynamodb --bus eventbridge` stores a delivery in it and publishes it with PutEvents, the orders
//! rule of infra/template.yaml targets an SQS queue, and `ordernimbus worker --store dynamodb`
//! applies it to the same table. The template's EventBridge rules are also checked on their own:
//! every topic, in our envelope and in Shopify's, reaches the one queue its group names.
//! AWS is moto's server on loopback (`eval "$(scripts/moto.sh)"`; scripts/test.sh starts it).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use aws_sdk_sqs::config::Credentials;
use aws_sdk_sqs::types::QueueAttributeName;
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::store::Store;
use ordernimbus_backend::store::dynamodb::DynamoStore;
use serde_json::json;

use crate::serve::Server;
use crate::webhooks::{SHOP, install_shop, order, shopify_flags, sign, total_units};

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// The SDK configuration for moto at `AWS_ENDPOINT_URL`; panics with how to start it when unset.
async fn moto() -> (SdkConfig, String) {
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
    (config, endpoint)
}

/// An `AWS::Events::Rule` of infra/template.yaml.
#[derive(Debug)]
struct TemplateRule {
    /// Logical id of the bus it is on (`!Ref` of `EventBusName`).
    bus: String,
    /// Its `EventPattern`, as EventBridge receives it.
    pattern: serde_json::Value,
    /// Logical ids of its targets (`!GetAtt {id}.Arn`).
    targets: Vec<String>,
}

/// The EventBridge rules of infra/template.yaml by logical id.
fn template_rules() -> BTreeMap<String, TemplateRule> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let template: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let resources = template["Resources"].as_mapping().unwrap();
    let mut rules = BTreeMap::new();
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Events::Rule") {
            continue;
        }
        let id = id.as_str().unwrap().to_owned();
        let properties = &resource["Properties"];
        let bus = match &properties["EventBusName"] {
            serde_norway::Value::Tagged(tagged) if tagged.tag == "Ref" => {
                tagged.value.as_str().unwrap().to_owned()
            }
            other => panic!("{id}: EventBusName {other:?} is not a !Ref"),
        };
        let pattern = serde_json::to_value(&properties["EventPattern"]).unwrap();
        // A tagged node (`!Ref`, `!Sub`, ...) serializes as a one-key map named after its tag.
        assert!(
            !pattern.to_string().contains("\"!"),
            "{id}: the EventPattern uses an intrinsic function; EventBridge would see its result, \
             which this test cannot compute: {pattern}"
        );
        let targets = properties["Targets"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|target| match &target["Arn"] {
                serde_norway::Value::Tagged(tagged) if tagged.tag == "GetAtt" => {
                    let attribute = tagged.value.as_str().unwrap();
                    attribute.strip_suffix(".Arn").unwrap().to_owned()
                }
                other => panic!("{id}: target Arn {other:?} is not a !GetAtt of an Arn"),
            })
            .collect();
        rules.insert(
            id,
            TemplateRule {
                bus,
                pattern,
                targets,
            },
        );
    }
    rules
}

/// Creates a bus and a queue, and on the bus the template's orders rule targeting the queue;
/// returns the bus name and queue URL.
async fn bus_rule_queue() -> (String, String) {
    let (config, endpoint) = moto().await;
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
    let arn = queue_arn(&sqs, &queue_url).await;
    let rule = unique("on-cloud-rule");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(template_rules()["OrdersRule"].pattern.to_string())
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

async fn queue_arn(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&QueueAttributeName::QueueArn]
        .clone()
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

/// Where each topic should go (infra/README.md, "Topic groups"): orders and refunds to the orders
/// queue, products and inventory to the catalogue queue, everything else to the lifecycle queue.
const TOPIC_QUEUES: &[(&str, &str)] = &[
    ("orders/create", "OrdersQueue"),
    ("orders/updated", "OrdersQueue"),
    ("orders/cancelled", "OrdersQueue"),
    ("orders/paid", "OrdersQueue"),
    ("orders/fulfilled", "OrdersQueue"),
    ("orders/partially_fulfilled", "OrdersQueue"),
    ("orders/edited", "OrdersQueue"),
    ("orders/delete", "OrdersQueue"),
    ("refunds/create", "OrdersQueue"),
    ("products/create", "CatalogueQueue"),
    ("products/update", "CatalogueQueue"),
    ("products/delete", "CatalogueQueue"),
    ("inventory_levels/update", "CatalogueQueue"),
    ("inventory_levels/connect", "CatalogueQueue"),
    ("inventory_levels/disconnect", "CatalogueQueue"),
    ("inventory_items/create", "CatalogueQueue"),
    ("inventory_items/update", "CatalogueQueue"),
    ("inventory_items/delete", "CatalogueQueue"),
    ("app/uninstalled", "LifecycleQueue"),
    ("app/scopes_update", "LifecycleQueue"),
    ("customers/data_request", "LifecycleQueue"),
    ("customers/redact", "LifecycleQueue"),
    ("shop/redact", "LifecycleQueue"),
    ("bulk_operations/finish", "LifecycleQueue"),
    ("shop/update", "LifecycleQueue"),
    // A topic no group names (subscribed later) must not be dropped.
    ("collections/create", "LifecycleQueue"),
    // Prefixes are not groups: only the listed order topics are orders.
    ("orders/risk_assessment_changed", "LifecycleQueue"),
];

/// Every message in the queue, deleted as read (moto delivers a rule's targets within PutEvents,
/// so nothing is still on its way when this runs).
async fn drain(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<serde_json::Value> {
    let mut bodies = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for message in messages {
            bodies.push(serde_json::from_str(message.body().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(message.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn the_template_rules_route_every_topic_to_its_group_queue_and_only_there() {
    let rules = template_rules();
    assert_eq!(
        rules.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "CatalogueRule",
            "LifecycleRule",
            "OrdersRule",
            "PartnerForwardRule"
        ],
        "a rule was added or renamed: route it here too"
    );
    let (config, endpoint) = moto().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);

    // The template's buses: ours, and a plain bus standing in for Shopify's partner event bus
    // (moto cannot create a bus for a partner event source).
    let mut buses: BTreeMap<&str, (String, String)> = BTreeMap::new();
    for logical in ["EventBus", "PartnerEventBus"] {
        let name = unique("rules-bus");
        let arn = events
            .create_event_bus()
            .name(&name)
            .send()
            .await
            .unwrap_or_else(|error| panic!("moto is not answering at {endpoint}: {error:?}"))
            .event_bus_arn
            .unwrap();
        buses.insert(logical, (name, arn));
    }
    let mut queues: BTreeMap<String, String> = BTreeMap::new();
    for (id, rule) in &rules {
        let (bus_name, _) = &buses[rule.bus.as_str()];
        let name = unique(&format!("rules-{}", id.to_lowercase()));
        events
            .put_rule()
            .name(&name)
            .event_bus_name(bus_name)
            .event_pattern(rule.pattern.to_string())
            .send()
            .await
            .unwrap_or_else(|error| panic!("moto refused the pattern of {id}: {error:?}"));
        for target in &rule.targets {
            let arn = match buses.get(target.as_str()) {
                Some((_, bus_arn)) => bus_arn.clone(),
                None => {
                    let queue_url = sqs
                        .create_queue()
                        .queue_name(unique(&format!("rules-{}", target.to_lowercase())))
                        .send()
                        .await
                        .unwrap()
                        .queue_url
                        .unwrap();
                    let arn = queue_arn(&sqs, &queue_url).await;
                    queues.insert(target.clone(), queue_url);
                    arn
                }
            };
            let mut built = Target::builder().id(target.to_lowercase()).arn(arn);
            if buses.contains_key(target.as_str()) {
                built = built.role_arn("arn:aws:iam::123456789012:role/partner-forward");
            }
            events
                .put_targets()
                .rule(&name)
                .event_bus_name(bus_name)
                .targets(built.build().unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    assert_eq!(
        queues.keys().map(String::as_str).collect::<Vec<_>>(),
        ["CatalogueQueue", "LifecycleQueue", "OrdersQueue"]
    );

    // Each topic twice: as `serve` publishes it on our bus, and as Shopify delivers it to the
    // partner bus (forwarded to ours by the partner rule). `id` marks where each one came from.
    let (ours, _) = &buses["EventBus"];
    let (partner, _) = &buses["PartnerEventBus"];
    let mut entries = Vec::new();
    for (topic, _) in TOPIC_QUEUES {
        entries.push(
            PutEventsRequestEntry::builder()
                .event_bus_name(ours)
                .source("ordernimbus.webhooks")
                .detail_type(*topic)
                .detail(
                    json!({"shop": SHOP, "webhook_id": format!("ours {topic}"), "api_version": "2026-10"})
                        .to_string(),
                )
                .build(),
        );
        entries.push(
            PutEventsRequestEntry::builder()
                .event_bus_name(partner)
                .source("aws.partner/shopify.com/8675309/ordernimbus")
                .detail_type("shopifyWebhook")
                .detail(
                    json!({
                        "payload": {"id": 1},
                        "metadata": {
                            "Content-Type": "application/json",
                            "X-Shopify-Topic": topic,
                            "X-Shopify-Shop-Domain": SHOP,
                            "X-Shopify-Webhook-Id": format!("shopify {topic}"),
                            "X-Shopify-API-Version": "2026-10",
                        },
                    })
                    .to_string(),
                )
                .build(),
        );
    }
    // What must reach no queue: another source on our bus, another detail-type on the partner bus.
    entries.push(
        PutEventsRequestEntry::builder()
            .event_bus_name(ours)
            .source("someone.else")
            .detail_type("orders/create")
            .detail(json!({"webhook_id": "foreign orders/create"}).to_string())
            .build(),
    );
    entries.push(
        PutEventsRequestEntry::builder()
            .event_bus_name(partner)
            .source("aws.partner/shopify.com/8675309/ordernimbus")
            .detail_type("somethingElse")
            .detail(json!({"metadata": {"X-Shopify-Webhook-Id": "foreign partner"}}).to_string())
            .build(),
    );
    for chunk in entries.chunks(10) {
        let output = events
            .put_events()
            .set_entries(Some(chunk.to_vec()))
            .send()
            .await
            .unwrap();
        assert_eq!(output.failed_entry_count, 0, "{output:?}");
    }

    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (queue, queue_url) in &queues {
        for body in drain(&sqs, queue_url).await {
            let detail = &body["detail"];
            let mark = detail["webhook_id"]
                .as_str()
                .or_else(|| detail["metadata"]["X-Shopify-Webhook-Id"].as_str())
                .unwrap_or_else(|| panic!("an event without a mark reached {queue}: {body}"));
            got.entry(mark.to_owned()).or_default().push(queue.clone());
        }
    }
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (topic, queue) in TOPIC_QUEUES {
        for shape in ["ours", "shopify"] {
            expected.insert(format!("{shape} {topic}"), vec![(*queue).to_owned()]);
        }
    }
    let marks: std::collections::BTreeSet<&String> = got.keys().chain(expected.keys()).collect();
    let wrong: Vec<String> = marks
        .into_iter()
        .filter(|mark| got.get(*mark) != expected.get(*mark))
        .map(|mark| {
            format!(
                "{mark}: reached {:?}, should reach {:?}",
                got.get(mark).cloned().unwrap_or_default(),
                expected.get(mark).cloned().unwrap_or_default()
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
