//! `ordernimbus webhooks …`: the operators' view of the delivery log. Replays and redrives mark
//! deliveries pending again; the outbox of a running server publishes them within a second (or the
//! next `serve` does), and the consumers' idempotence keeps effects from counting twice.

use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use ordernimbus_backend::domain::{DeliveryFilter, DeliveryRecord, DeliveryStatus};
use ordernimbus_backend::store::Store;
use serde_json::json;

use crate::config::{Cli, DeliveryFilterArgs, DlqCommand, WebhooksCommand};
use crate::wiring::open_store;

/// Runs a webhooks command.
///
/// # Errors
/// Bad arguments (named), store failures, a failed test delivery.
pub async fn run(cli: &Cli, command: &WebhooksCommand) -> anyhow::Result<ExitCode> {
    if let WebhooksCommand::Send {
        file,
        topic,
        shop,
        url,
        secret,
        webhook_id,
    } = command
    {
        return send(file, topic, shop, url, secret, webhook_id.as_deref()).await;
    }
    let store = open_store(cli).await?;
    let result = match command {
        WebhooksCommand::List { filter, json } => {
            list(store.as_ref(), &parse_filter(filter)?, *json).await
        }
        WebhooksCommand::Show { id } => show(store.as_ref(), id).await,
        WebhooksCommand::Replay {
            filter,
            ids,
            dry_run,
        } => {
            replay(
                store.as_ref(),
                &parse_filter(filter)?,
                ids,
                *dry_run,
                "replayed",
            )
            .await
        }
        WebhooksCommand::Dlq(DlqCommand::List { shop, limit, json }) => {
            let filter = DeliveryFilter {
                shop: shop.clone(),
                status: Some(DeliveryStatus::Dead),
                limit: *limit,
                ..DeliveryFilter::default()
            };
            list(store.as_ref(), &filter, *json).await
        }
        WebhooksCommand::Dlq(DlqCommand::Redrive { ids }) => {
            let filter = DeliveryFilter {
                status: Some(DeliveryStatus::Dead),
                limit: u32::MAX,
                ..DeliveryFilter::default()
            };
            replay(store.as_ref(), &filter, ids, false, "redriven").await
        }
        WebhooksCommand::Send { .. } => Ok(()),
    };
    store.close().await;
    result.map(|()| ExitCode::SUCCESS)
}

pub(crate) fn parse_time(flag: &str, value: Option<&str>) -> anyhow::Result<Option<DateTime<Utc>>> {
    let Some(value) = value else { return Ok(None) };
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(Some(time.with_timezone(&Utc)));
    }
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).map(|time| time.and_utc()));
    }
    bail!("--{flag}: \"{value}\" is neither an RFC 3339 time nor a YYYY-MM-DD date")
}

fn parse_filter(args: &DeliveryFilterArgs) -> anyhow::Result<DeliveryFilter> {
    let status = match args.status.as_deref() {
        None => None,
        Some(text) => Some(DeliveryStatus::parse(text).with_context(|| {
            format!("--status: \"{text}\" is not one of pending, published, duplicate, dead")
        })?),
    };
    Ok(DeliveryFilter {
        shop: args.shop.clone(),
        topic: args.topic.clone(),
        since: parse_time("since", args.since.as_deref())?,
        until: parse_time("until", args.until.as_deref())?,
        status,
        after: None,
        limit: args.limit,
    })
}

fn summary_json(delivery: &DeliveryRecord) -> serde_json::Value {
    json!({
        "webhook_id": delivery.webhook_id,
        "topic": delivery.topic,
        "shop": delivery.shop,
        "received_at": delivery.received_at,
        "status": delivery.status,
        "event_id": delivery.event_id,
        "triggered_at": delivery.triggered_at,
        "api_version": delivery.api_version,
        "redeliveries": delivery.redeliveries,
        "attempts": delivery.attempts,
        "reason": delivery.reason,
    })
}

async fn list(store: &dyn Store, filter: &DeliveryFilter, json: bool) -> anyhow::Result<()> {
    let deliveries = store
        .deliveries(filter)
        .await
        .context("reading the delivery log")?;
    for delivery in &deliveries {
        if json {
            println!("{}", summary_json(delivery));
        } else {
            println!(
                "{}\t{}\t{}\t{}\t{}{}",
                delivery.received_at.format("%Y-%m-%dT%H:%M:%SZ"),
                delivery.status.as_str(),
                delivery.topic,
                delivery.shop,
                delivery.webhook_id,
                delivery
                    .reason
                    .as_deref()
                    .map(|reason| format!("\t{reason}"))
                    .unwrap_or_default()
            );
        }
    }
    if !json {
        eprintln!("{} deliveries", deliveries.len());
    }
    Ok(())
}

async fn show(store: &dyn Store, id: &str) -> anyhow::Result<()> {
    let delivery = store
        .delivery(id)
        .await
        .context("reading the delivery log")?
        .with_context(|| format!("no delivery with webhook id {id}"))?;
    let payload = serde_json::from_slice::<serde_json::Value>(&delivery.body)
        .unwrap_or_else(|_| json!(String::from_utf8_lossy(&delivery.body)));
    let mut shown = summary_json(&delivery);
    shown["headers"] = json!(delivery.headers);
    shown["payload"] = payload;
    shown["history"] = json!(delivery.history);
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}

async fn replay(
    store: &dyn Store,
    filter: &DeliveryFilter,
    ids: &[String],
    dry_run: bool,
    step: &str,
) -> anyhow::Result<()> {
    let mut chosen = Vec::new();
    if ids.is_empty() {
        chosen = store
            .deliveries(filter)
            .await
            .context("reading the delivery log")?;
    } else {
        for id in ids {
            let delivery = store
                .delivery(id)
                .await?
                .with_context(|| format!("no delivery with webhook id {id}"))?;
            chosen.push(delivery);
        }
    }
    // A pending delivery is about to be published anyway.
    chosen.retain(|delivery| delivery.status != DeliveryStatus::Pending);
    for delivery in &chosen {
        if dry_run {
            println!("{}", summary_json(delivery));
        } else {
            store
                .record_delivery(
                    &delivery.webhook_id,
                    Some(DeliveryStatus::Pending),
                    step,
                    None,
                    false,
                )
                .await
                .context("marking a delivery for replay")?;
        }
    }
    let verb = if dry_run { "would be" } else { "were" };
    eprintln!(
        "{} deliveries {verb} {step}; a running server publishes them within a second, otherwise the next start does",
        chosen.len()
    );
    Ok(())
}

async fn send(
    file: &std::path::Path,
    topic: &str,
    shop: &str,
    url: &str,
    secret: &str,
    webhook_id: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let body = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    serde_json::from_slice::<serde_json::Value>(&body)
        .with_context(|| format!("{}: the payload is not JSON", file.display()))?;
    let webhook_id = webhook_id.map_or_else(
        || format!("cli-{}", hex::encode(rand::random::<[u8; 12]>())),
        str::to_owned,
    );
    let signature = ordernimbus_webhooks::verify::sign_body(&body, secret.as_bytes());
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-shopify-topic", topic)
        .header("x-shopify-hmac-sha256", signature)
        .header("x-shopify-shop-domain", shop)
        .header(
            "x-shopify-api-version",
            ordernimbus_backend::shopify::API_VERSION,
        )
        .header("x-shopify-webhook-id", &webhook_id)
        .header("x-shopify-event-id", format!("evt-{webhook_id}"))
        .header("x-shopify-triggered-at", Utc::now().to_rfc3339())
        .body(body)
        .send()
        .await
        .with_context(|| format!("sending to {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!(
        "{}",
        json!({ "webhook_id": webhook_id, "status": status.as_u16(), "body": text })
    );
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
