//! What the simulated app and shops look like: [`SimConfig`] (the app's Partner Dashboard settings) and
//! [`ShopSeed`] (one development store).

use std::time::Duration;

/// The app as Shopify knows it: client credentials, URLs and the settings that shape tokens and webhooks.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The app's client id (`client_id`, the API key).
    pub api_key: String,
    /// The app's client secret; signs session tokens, OAuth redirects and webhooks.
    pub api_secret: String,
    /// The app's `application_url`, e.g. `http://127.0.0.1:8080`.
    pub app_url: String,
    /// `[auth] redirect_urls`: an authorize request's `redirect_uri` must equal one of these exactly.
    pub redirect_urls: Vec<String>,
    /// `[access_scopes] scopes`, comma-separated; granted on token exchange and when `scope` is omitted.
    pub scopes: String,
    /// Life of an expiring offline access token (Shopify: 60 minutes).
    pub access_token_ttl: Duration,
    /// Life of a refresh token (Shopify: 90 days).
    pub refresh_token_ttl: Duration,
    /// Life of an online (per-user) access token (Shopify: about one day).
    pub online_token_ttl: Duration,
    /// Life of an authorization code before it can no longer be exchanged.
    pub code_ttl: Duration,
    /// Path appended to `app_url` for every webhook delivery.
    pub webhook_path: String,
    /// The latest stable API version; webhooks carry it in `X-Shopify-API-Version`.
    pub api_version: String,
    /// Supported stable versions, oldest first; older requests fall forward to the oldest one.
    pub supported_api_versions: Vec<String>,
    /// Waits between delivery attempts after the first one fails (Shopify: 8 retries over about 4 hours).
    pub retry_delays: Vec<Duration>,
    /// After [`crate::Simulator::rotate_secret`], webhooks keep being signed with the previous secret for
    /// this long (Shopify: "can take up to an hour"); zero signs with the new one at once.
    pub webhook_signing_lag: Duration,
    /// Simulated time a bulk query spends `RUNNING` before it completes (at least as long as writing its
    /// result takes in real time).
    pub bulk_operation_duration: Duration,
    /// Life of a bulk operation's `url` and `partialDataUrl` (Shopify: seven days).
    pub bulk_url_ttl: Duration,
    /// Topics declared in `shopify.app.toml` (`[[webhooks.subscriptions]]`), e.g.
    /// `bulk_operations/finish`: the simulator delivers them by itself to `app_url + webhook_path`.
    /// Subscriptions made through the Admin API are delivered to their own URI.
    pub app_webhook_topics: Vec<String>,
}

impl SimConfig {
    /// Settings with Shopify's defaults: 60-minute access tokens, 90-day refresh tokens, API `2026-10`,
    /// webhooks at `{app_url}/webhooks`, redirect URL `{app_url}/auth/callback`.
    pub fn new(api_key: &str, api_secret: &str, app_url: &str) -> Self {
        let app_url = app_url.trim_end_matches('/').to_owned();
        Self {
            api_key: api_key.to_owned(),
            api_secret: api_secret.to_owned(),
            redirect_urls: vec![format!("{app_url}/auth/callback")],
            app_url,
            scopes: "read_orders,read_all_orders,read_products,read_inventory,read_locations"
                .to_owned(),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(90 * 24 * 3600),
            online_token_ttl: Duration::from_secs(86_399),
            code_ttl: Duration::from_secs(60),
            webhook_path: "/webhooks".to_owned(),
            api_version: "2026-10".to_owned(),
            supported_api_versions: ["2026-01", "2026-04", "2026-07", "2026-10"]
                .map(str::to_owned)
                .to_vec(),
            retry_delays: shopify_retry_delays(),
            webhook_signing_lag: Duration::ZERO,
            bulk_operation_duration: Duration::from_secs(1),
            bulk_url_ttl: Duration::from_secs(7 * 24 * 3600),
            app_webhook_topics: Vec::new(),
        }
    }
}

/// Shopify's documented schedule, 8 retries over about 4 hours with exponential backoff; the exact steps
/// are not published, so these double from 1 minute and sum to about 4¼ hours.
pub fn shopify_retry_delays() -> Vec<Duration> {
    [60, 120, 240, 480, 960, 1920, 3840, 7680]
        .map(Duration::from_secs)
        .to_vec()
}

/// A shop's Shopify plan; it picks the GraphQL bucket size and restore rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// "Basic": standard limits.
    Basic,
    /// "Shopify": standard limits.
    Shopify,
    /// "Advanced": twice the standard limits.
    Advanced,
    /// "Shopify Plus": ten times the standard limits.
    Plus,
    /// Commerce Components: twenty times the standard limits.
    Enterprise,
}

impl Plan {
    /// The plan's `displayName` in the Admin API.
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Basic => "Basic",
            Self::Shopify => "Shopify",
            Self::Advanced => "Advanced",
            Self::Plus => "Shopify Plus",
            Self::Enterprise => "Commerce Components",
        }
    }

    /// Restore rate from shopify.dev's GraphQL Admin API rate-limit table (100/200/1000/2000 points per
    /// second); the bucket holds twenty seconds' worth (2,000 points on standard plans), which is what
    /// Shopify reports as `maximumAvailable` but is not in that table.
    pub fn throttle(self) -> ThrottleLimits {
        let restore_rate = match self {
            Self::Basic | Self::Shopify => 100.0,
            Self::Advanced => 200.0,
            Self::Plus => 1000.0,
            Self::Enterprise => 2000.0,
        };
        ThrottleLimits {
            maximum_available: restore_rate * 20.0,
            restore_rate,
        }
    }
}

/// A leaky bucket's shape: `maximumAvailable` points, refilled at `restoreRate` points per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThrottleLimits {
    /// Bucket size in cost points.
    pub maximum_available: f64,
    /// Points restored per second.
    pub restore_rate: f64,
}

/// One development store to simulate.
#[derive(Debug, Clone)]
pub struct ShopSeed {
    /// `{handle}.myshopify.com`.
    pub domain: String,
    /// The shop's display name.
    pub name: String,
    /// IANA time zone, e.g. `America/New_York`.
    pub iana_timezone: String,
    /// ISO 4217 currency code of the shop.
    pub currency: String,
    /// Numeric shop id (webhook payloads' `shop_id`, GraphQL `gid://shopify/Shop/N`).
    pub shop_id: u64,
    /// The shop's plan.
    pub plan: Plan,
    /// Overrides the plan's throttle limits (tests use tiny buckets).
    pub throttle: Option<ThrottleLimits>,
    /// Orders generated from a seed instead of the 14 hand-made ones.
    pub synthetic_orders: Option<SyntheticOrders>,
}

/// A shop history generated lazily from `(seed, index)`: any size (a million orders are never all in
/// memory), the same orders on every run for the same settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticOrders {
    /// Random seed; the same seed gives the same orders.
    pub seed: u64,
    /// How many orders.
    pub n_orders: u64,
    /// Days of history the orders spread over, ending at `ends_at`.
    pub days: u32,
    /// When the history ends; `None` means when the shop is added to the simulator (use a fixed time
    /// for orders that do not depend on the wall clock).
    pub ends_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl SyntheticOrders {
    /// `n_orders` orders over the last 365 days.
    pub fn new(seed: u64, n_orders: u64) -> Self {
        Self {
            seed,
            n_orders,
            days: 365,
            ends_at: None,
        }
    }
}

impl ShopSeed {
    /// A Basic-plan shop named after its handle, in New York time and US dollars, with a shop id
    /// derived from the domain so it is stable across runs.
    pub fn new(domain: &str) -> Self {
        let domain = domain.trim().to_ascii_lowercase();
        let handle = handle_of(&domain).to_owned();
        let mut name = String::new();
        for (index, word) in handle.split('-').enumerate() {
            if index > 0 {
                name.push(' ');
            }
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                name.extend(first.to_uppercase());
                name.push_str(chars.as_str());
            }
        }
        let shop_id = 60_000_000_000 + stable_hash(&domain) % 10_000_000_000;
        Self {
            domain,
            name,
            iana_timezone: "America/New_York".to_owned(),
            currency: "USD".to_owned(),
            shop_id,
            plan: Plan::Basic,
            throttle: None,
            synthetic_orders: None,
        }
    }

    /// The GraphQL throttle limits in force for this shop.
    pub fn throttle_limits(&self) -> ThrottleLimits {
        self.throttle.unwrap_or_else(|| self.plan.throttle())
    }

    /// The store handle: `acme` for `acme.myshopify.com`.
    pub fn handle(&self) -> &str {
        handle_of(&self.domain)
    }
}

fn handle_of(domain: &str) -> &str {
    domain.split('.').next().unwrap_or(domain)
}

/// FNV-1a, so seeds do not change between runs or Rust versions.
pub(crate) fn stable_hash(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
