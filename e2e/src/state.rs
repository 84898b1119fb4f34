//! Everything the simulator remembers: shops, codes, tokens, secrets and armed faults.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::admin::seed::ShopData;
use crate::clock::Clock;
use crate::config::{ShopSeed, SimConfig, ThrottleLimits};

/// State shared by the HTTP handlers, the [`crate::Simulator`] handle and [`crate::Faults`].
pub(crate) struct Shared {
    pub state: Mutex<SimState>,
    pub clock: Clock,
    pub base_url: String,
    pub admin: crate::admin::Admin,
    pub http: reqwest::Client,
}

impl Shared {
    /// Locks the state; a panic in another holder leaves data that is still usable for a simulator.
    pub fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The mutable part of the simulator.
pub(crate) struct SimState {
    pub config: SimConfig,
    pub previous_secret: Option<PreviousSecret>,
    pub shops: BTreeMap<String, ShopRecord>,
    pub codes: HashMap<String, AuthCode>,
    pub tokens: Vec<TokenRecord>,
    pub token_requests: Vec<(String, String)>,
    pub faults: FaultState,
    pub bulk: crate::bulk::BulkState,
}

impl SimState {
    /// Client secrets Shopify accepts right now: the current one, then the one it replaced (until revoked).
    pub fn accepted_secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.config.api_secret.clone()];
        if let Some(previous) = &self.previous_secret {
            secrets.push(previous.secret.clone());
        }
        secrets
    }

    /// The secret that signs a webhook delivered at `now`: the previous one within the signing lag.
    pub fn webhook_secret(&self, now: DateTime<Utc>) -> String {
        if let Some(previous) = &self.previous_secret {
            let lag =
                chrono::Duration::from_std(self.config.webhook_signing_lag).unwrap_or_default();
            if now < previous.rotated_at + lag {
                return previous.secret.clone();
            }
        }
        self.config.api_secret.clone()
    }
}

/// A client secret that was rotated out but still works.
pub(crate) struct PreviousSecret {
    pub secret: String,
    pub rotated_at: DateTime<Utc>,
}

/// One simulated store.
pub(crate) struct ShopRecord {
    pub seed: ShopSeed,
    pub data: Arc<ShopData>,
    pub installed: bool,
    pub installed_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
    pub bucket: Bucket,
    pub webhook_subscriptions: Vec<WebhookSubscriptionRecord>,
    pub next_subscription_id: u64,
}

impl ShopRecord {
    pub fn new(seed: ShopSeed, now: DateTime<Utc>) -> Self {
        let data = Arc::new(ShopData::generate(&seed, now));
        let limits = seed.throttle_limits();
        Self {
            seed,
            data,
            installed: false,
            installed_at: None,
            scopes: Vec::new(),
            bucket: Bucket::full(limits, now),
            webhook_subscriptions: Vec::new(),
            next_subscription_id: 1_000_000_000_001,
        }
    }
}

/// A webhook subscription created through the Admin API.
#[derive(Debug, Clone)]
pub(crate) struct WebhookSubscriptionRecord {
    pub id: u64,
    pub topic: String,
    pub uri: String,
    pub created_at: DateTime<Utc>,
}

/// The GraphQL leaky bucket of one app on one shop.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    pub limits: ThrottleLimits,
    pub available: f64,
    pub updated_at: DateTime<Utc>,
}

impl Bucket {
    pub fn full(limits: ThrottleLimits, now: DateTime<Utc>) -> Self {
        Self {
            limits,
            available: limits.maximum_available,
            updated_at: now,
        }
    }

    /// Adds what leaked back since the last look, up to the bucket size.
    pub fn refill(&mut self, now: DateTime<Utc>) {
        let elapsed = (now - self.updated_at).num_milliseconds().max(0) as f64 / 1000.0;
        self.available = (self.available + elapsed * self.limits.restore_rate)
            .min(self.limits.maximum_available);
        self.updated_at = now;
    }
}

/// An authorization code waiting to be exchanged.
pub(crate) struct AuthCode {
    pub shop: String,
    pub scopes: Vec<String>,
    pub online: bool,
    pub expires_at: DateTime<Utc>,
    pub used: bool,
}

/// What a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An offline access token (`shpat_…`), expiring or not.
    OfflineAccess,
    /// An online, per-user access token (`shpua_…`).
    OnlineAccess,
    /// A refresh token for an expiring offline token (`shprt_…`).
    Refresh,
}

/// Every token the simulator issued, with the bookkeeping Shopify's rules need.
#[derive(Debug, Clone)]
pub(crate) struct TokenRecord {
    pub shop: String,
    pub token: String,
    pub kind: TokenKind,
    pub grant_type: String,
    pub issued_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked: bool,
    pub scopes: Vec<String>,
    /// For refresh tokens: the refresh token whose use produced this one.
    pub parent: Option<String>,
    /// For refresh tokens: when it was first used.
    pub first_used_at: Option<DateTime<Utc>>,
    /// For refresh tokens: retired because its replacement was used.
    pub retired: bool,
}

impl TokenRecord {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        !self.revoked && !self.retired && self.expires_at.is_none_or(|expires_at| now < expires_at)
    }
}

/// Faults armed through [`crate::Faults`].
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    pub token_failures: Vec<u16>,
    pub token_delay: Option<Duration>,
    pub graphql_failures: Vec<u16>,
    pub graphql_delay: Option<Duration>,
    /// HTTP statuses (200 or 429) of the next `THROTTLED` answers.
    pub graphql_throttles: Vec<u16>,
}

/// Splits a comma-separated scope list.
pub(crate) fn split_scopes(scopes: &str) -> Vec<String> {
    scopes
        .split(',')
        .map(str::trim)
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned)
        .collect()
}
