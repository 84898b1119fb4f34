//! Webhook deliveries over HTTPS (here HTTP on loopback) with Shopify's headers, signature, timeouts and
//! retries, plus payload builders with the shapes of the lifecycle and compliance topics.
//!
//! Follows <https://shopify.dev/docs/apps/build/webhooks/delivery-structure> (headers),
//! <https://shopify.dev/docs/apps/build/webhooks/verify-deliveries> (HMAC, secret rotation),
//! <https://shopify.dev/docs/apps/build/webhooks/troubleshooting-webhooks> (1 s connect, 5 s total, 2xx only,
//! 8 retries over 4 hours; <https://shopify.dev/changelog/updates-to-webhook-retry-mechanism>) and
//! <https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance> (compliance payloads).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::config::ShopSeed;
use crate::crypto::{uuid_v4, webhook_hmac};
use crate::state::Shared;

/// Which secret signs a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signature {
    /// The secret Shopify would use now (the previous one during the configured signing lag).
    #[default]
    Current,
    /// The secret replaced by the last rotation (the current one when none was rotated).
    Previous,
    /// A secret the app never had.
    Wrong,
    /// No HMAC header at all.
    Missing,
}

/// Header names of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderFamily {
    /// `X-Shopify-Topic`, `X-Shopify-Hmac-Sha256`, … (webhooks).
    #[default]
    XShopify,
    /// `shopify-topic`, `shopify-hmac-sha256`, … (Events).
    Shopify,
}

/// How to deliver one webhook.
#[derive(Debug, Clone, Default)]
pub struct DeliveryOptions {
    /// `X-Shopify-Webhook-Id`; a fresh UUID when absent.
    pub webhook_id: Option<String>,
    /// `X-Shopify-Triggered-At`; now when absent.
    pub triggered_at: Option<DateTime<Utc>>,
    /// The signature to send.
    pub signature: Signature,
    /// After the delivery sequence ends, send the same webhook (same id, same body) once more, as
    /// at-least-once delivery allows.
    pub duplicate: bool,
    /// Header names to use.
    pub header_family: HeaderFamily,
    /// Where to deliver; `app_url + webhook_path` when absent (an API subscription's URI otherwise).
    pub url: Option<String>,
}

/// One HTTP attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Response status, absent when no response arrived in time.
    pub status: Option<u16>,
    /// Time from sending to the response or the failure.
    pub elapsed: Duration,
    /// Transport error or timeout, when there was one.
    pub error: Option<String>,
}

impl Attempt {
    /// Whether Shopify would count this attempt as delivered (any 2xx; redirects are failures).
    pub fn succeeded(&self) -> bool {
        self.status
            .is_some_and(|status| (200..300).contains(&status))
    }
}

/// What happened to a delivery.
#[derive(Debug, Clone)]
pub struct DeliveryReport {
    /// `X-Shopify-Webhook-Id` of every attempt.
    pub webhook_id: String,
    /// Every attempt in order, including a duplicate when asked for.
    pub attempts: Vec<Attempt>,
    /// Whether an attempt of the (first) delivery sequence succeeded.
    pub delivered: bool,
}

/// Delivers `payload` on `topic` for `shop` to `app_url + webhook_path`, retrying per `retry_delays`.
pub(crate) async fn deliver(
    shared: &Arc<Shared>,
    shop: &str,
    topic: &str,
    payload: &Value,
    options: DeliveryOptions,
) -> DeliveryReport {
    let now = shared.clock.now();
    let webhook_id = options.webhook_id.clone().unwrap_or_else(uuid_v4);
    let event_id = uuid_v4();
    let triggered_at = options.triggered_at.unwrap_or(now);
    let body = serde_json::to_vec(payload).unwrap_or_default();
    let (url, api_version, retry_delays, secret) = {
        let state = shared.lock();
        let secret = match options.signature {
            Signature::Current => Some(state.webhook_secret(now)),
            Signature::Previous => Some(state.previous_secret.as_ref().map_or_else(
                || state.config.api_secret.clone(),
                |previous| previous.secret.clone(),
            )),
            Signature::Wrong => Some(format!("wrong-{}", state.config.api_secret)),
            Signature::Missing => None,
        };
        (
            options.url.clone().unwrap_or_else(|| {
                format!("{}{}", state.config.app_url, state.config.webhook_path)
            }),
            state.config.api_version.clone(),
            state.config.retry_delays.clone(),
            secret,
        )
    };
    let prefix = match options.header_family {
        HeaderFamily::XShopify => "x-shopify-",
        HeaderFamily::Shopify => "shopify-",
    };
    let mut headers = vec![
        (format!("{prefix}topic"), topic.to_owned()),
        (format!("{prefix}shop-domain"), shop.to_owned()),
        (format!("{prefix}api-version"), api_version),
        (format!("{prefix}webhook-id"), webhook_id.clone()),
        (format!("{prefix}event-id"), event_id),
        (
            format!("{prefix}triggered-at"),
            triggered_at.to_rfc3339_opts(SecondsFormat::Nanos, true),
        ),
    ];
    if let Some(secret) = secret {
        headers.push((format!("{prefix}hmac-sha256"), webhook_hmac(&secret, &body)));
    }
    let mut attempts = Vec::new();
    let mut delivered = false;
    for attempt_index in 0..=retry_delays.len() {
        if attempt_index > 0 {
            tokio::time::sleep(retry_delays[attempt_index - 1]).await;
        }
        let attempt = send(&shared.http, &url, &headers, &body).await;
        tracing::debug!(%shop, topic, %webhook_id, status = ?attempt.status, "webhook attempt");
        let succeeded = attempt.succeeded();
        attempts.push(attempt);
        if succeeded {
            delivered = true;
            break;
        }
    }
    if options.duplicate {
        attempts.push(send(&shared.http, &url, &headers, &body).await);
    }
    DeliveryReport {
        webhook_id,
        attempts,
        delivered,
    }
}

async fn send(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Attempt {
    let started = Instant::now();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            // Shopify only needs the status; draining the body lets the connection be reused.
            let _ = response.bytes().await;
            Attempt {
                status: Some(status),
                elapsed: started.elapsed(),
                error: None,
            }
        }
        Err(error) => Attempt {
            status: None,
            elapsed: started.elapsed(),
            error: Some(if error.is_timeout() {
                format!("timeout: {error}")
            } else {
                error.to_string()
            }),
        },
    }
}

/// The HTTP client Shopify delivers with: 1 s to connect, 5 s in all, redirects not followed.
pub(crate) fn delivery_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

fn shop_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// `app/uninstalled`: the REST shop resource.
pub fn app_uninstalled_payload(seed: &ShopSeed, now: DateTime<Utc>) -> Value {
    json!({
        "id": seed.shop_id,
        "name": seed.name,
        "email": format!("owner@{}", seed.domain),
        "domain": seed.domain,
        "province": "New York",
        "country": "US",
        "address1": "1 Main Street",
        "zip": "10001",
        "city": "New York",
        "source": null,
        "phone": "",
        "latitude": 40.7128,
        "longitude": -74.006,
        "primary_locale": "en",
        "address2": "",
        "created_at": shop_time(now - chrono::Duration::days(400)),
        "updated_at": shop_time(now),
        "country_code": "US",
        "country_name": "United States",
        "currency": seed.currency,
        "customer_email": format!("owner@{}", seed.domain),
        "timezone": format!("(GMT-05:00) {}", seed.iana_timezone),
        "iana_timezone": seed.iana_timezone,
        "shop_owner": "Sim Owner",
        "money_format": "${{amount}}",
        "money_with_currency_format": format!("${{{{amount}}}} {}", seed.currency),
        "weight_unit": "kg",
        "province_code": "NY",
        "taxes_included": false,
        "auto_configure_tax_inclusivity": null,
        "tax_shipping": null,
        "county_taxes": true,
        "plan_display_name": seed.plan.display_name(),
        "plan_name": "basic",
        "has_discounts": false,
        "has_gift_cards": false,
        "myshopify_domain": seed.domain,
        "google_apps_domain": null,
        "google_apps_login_enabled": null,
        "money_in_emails_format": "${{amount}}",
        "money_with_currency_in_emails_format": format!("${{{{amount}}}} {}", seed.currency),
        "eligible_for_payments": true,
        "requires_extra_payments_agreement": false,
        "password_enabled": false,
        "has_storefront": true,
        "finances": true,
        "primary_location_id": 70_000_000_000_u64 + (seed.shop_id % 997) * 10_000 + 1,
        "checkout_api_supported": true,
        "multi_location_enabled": true,
        "setup_required": false,
        "pre_launch_enabled": false,
        "enabled_presentment_currencies": [seed.currency],
        "marketing_sms_consent_enabled_at_checkout": false,
        "transactional_sms_disabled": false,
    })
}

/// `app/scopes_update`: previous and current scopes.
pub fn scopes_update_payload(
    seed: &ShopSeed,
    previous: &[&str],
    current: &[&str],
    now: DateTime<Utc>,
) -> Value {
    json!({
        "id": seed.shop_id,
        "previous": previous,
        "current": current,
        "updated_at": shop_time(now),
    })
}

fn customer(customer_id: u64) -> Value {
    json!({
        "id": customer_id,
        "email": format!("customer{customer_id}@example.com"),
        "phone": "555-625-1199",
    })
}

/// `customers/data_request`.
pub fn customers_data_request_payload(
    seed: &ShopSeed,
    customer_id: u64,
    order_ids: &[u64],
) -> Value {
    json!({
        "shop_id": seed.shop_id,
        "shop_domain": seed.domain,
        "orders_requested": order_ids,
        "customer": customer(customer_id),
        "data_request": {"id": 9_999 + customer_id % 1000},
    })
}

/// `customers/redact`.
pub fn customers_redact_payload(seed: &ShopSeed, customer_id: u64, order_ids: &[u64]) -> Value {
    json!({
        "shop_id": seed.shop_id,
        "shop_domain": seed.domain,
        "customer": customer(customer_id),
        "orders_to_redact": order_ids,
    })
}

/// `shop/redact` (sent 48 hours after uninstall).
pub fn shop_redact_payload(seed: &ShopSeed) -> Value {
    json!({"shop_id": seed.shop_id, "shop_domain": seed.domain})
}
