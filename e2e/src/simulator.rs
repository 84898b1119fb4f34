//! The [`Simulator`] handle: starts the HTTP server and lets tests drive and inspect it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::task::JoinHandle;

use crate::admin::demand::{self, Demand, DemandKey};
use crate::admin::seed::{OrderRow, ShopData};
use crate::admin::{self, Admin};
use crate::bulk::{self, BulkOperationStatus, BulkOperationView};
use crate::clock::Clock;
use crate::config::{ShopSeed, SimConfig};
use crate::crypto::host_param;
use crate::fault::Faults;
use crate::oauth::{self, signed_params};
use crate::session_token;
use crate::state::{FaultState, PreviousSecret, Shared, ShopRecord, SimState, TokenKind};
use crate::webhook::{self, DeliveryOptions, DeliveryReport};

/// One token the simulator issued, for introspection.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedToken {
    /// The token itself.
    pub token: String,
    /// Offline, online or refresh.
    pub kind: TokenKind,
    /// The grant that produced it (`authorization_code`, the token-exchange URN or `refresh_token`).
    pub grant_type: String,
    /// When it was issued (simulated time).
    pub issued_at: DateTime<Utc>,
    /// When it expires; `None` for non-expiring offline tokens.
    pub expires_at: Option<DateTime<Utc>>,
    /// Revoked (uninstall or fault) or, for a refresh token, retired by the use of its replacement.
    pub revoked: bool,
    /// Scopes it grants.
    pub scopes: Vec<String>,
}

/// A running Shopify Admin simulator bound to `127.0.0.1`; dropping it stops the server.
pub struct Simulator {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Simulator")
            .field("base_url", &self.shared.base_url)
            .finish()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Simulator {
    /// Binds `127.0.0.1:0` and serves in a background task.
    ///
    /// # Errors
    /// When the port cannot be bound.
    pub async fn start(config: SimConfig) -> anyhow::Result<Simulator> {
        Self::start_on("127.0.0.1:0", config).await
    }

    /// Binds `addr` and serves in a background task.
    ///
    /// # Errors
    /// When `addr` cannot be bound.
    pub async fn start_on(addr: &str, config: SimConfig) -> anyhow::Result<Simulator> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the simulator to {addr}"))?;
        let local = listener
            .local_addr()
            .context("reading the simulator's address")?;
        let shared = Arc::new(Shared {
            state: Mutex::new(SimState {
                config,
                previous_secret: None,
                shops: Default::default(),
                codes: Default::default(),
                tokens: Vec::new(),
                token_requests: Vec::new(),
                faults: FaultState::default(),
                bulk: crate::bulk::BulkState::new(),
            }),
            clock: Clock::default(),
            base_url: format!("http://{local}"),
            admin: Admin::new(),
            http: webhook::delivery_client(),
        });
        let router = Router::new()
            .route("/", get(index))
            .route("/app-bridge.js", get(crate::app_bridge::script))
            .route(
                "/app-bridge/session-token",
                get(crate::app_bridge::session_token),
            )
            .route("/shops/{shop}/admin/oauth/authorize", get(oauth::authorize))
            .route(
                "/shops/{shop}/admin/oauth/access_token",
                post(oauth::access_token),
            )
            .route(
                "/shops/{shop}/admin/api/{version}/graphql.json",
                post(admin::graphql),
            )
            .route(
                "/storage/{bucket}/{folder}/{name}",
                get(crate::bulk::download),
            )
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "simulator server stopped");
            }
        });
        Ok(Simulator { shared, server })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `{base}/shops/{shop}`: where `https://{shop}` is served.
    pub fn admin_url_template(&self) -> String {
        format!("{}/shops/{{shop}}", self.shared.base_url)
    }

    /// The App Bridge stand-in (`serve --shopify-app-bridge-url`), for browsers in tests.
    pub fn app_bridge_url(&self) -> String {
        format!("{}/app-bridge.js", self.shared.base_url)
    }

    /// The stand-in for `https://{shop}`.
    pub fn admin_url(&self, shop: &str) -> String {
        format!("{}/shops/{shop}", self.shared.base_url)
    }

    /// The simulated clock (freeze it and advance it instead of sleeping).
    pub fn clock(&self) -> Clock {
        self.shared.clock.clone()
    }

    /// Adds a shop (replacing one with the same domain), not installed.
    pub fn add_shop(&self, seed: ShopSeed) {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        state
            .shops
            .insert(seed.domain.clone(), ShopRecord::new(seed, now));
    }

    /// The seed of `shop`, if it exists.
    pub fn shop(&self, shop: &str) -> Option<ShopSeed> {
        self.shared
            .lock()
            .shops
            .get(shop)
            .map(|record| record.seed.clone())
    }

    /// Changes the app URL (webhooks, install links, default redirect URL) once the app's port is known.
    pub fn set_app_url(&self, app_url: &str) {
        let app_url = app_url.trim_end_matches('/').to_owned();
        let mut state = self.shared.lock();
        let old_callback = format!("{}/auth/callback", state.config.app_url);
        let new_callback = format!("{app_url}/auth/callback");
        for url in &mut state.config.redirect_urls {
            if *url == old_callback {
                url.clone_from(&new_callback);
            }
        }
        state.config.app_url = app_url;
    }

    /// Changes the life of access tokens issued from now on (tests issue a short-lived token, then
    /// long-lived ones, to see exactly one refresh).
    pub fn set_access_token_ttl(&self, ttl: std::time::Duration) {
        self.shared.lock().config.access_token_ttl = ttl;
    }

    /// A copy of the current configuration.
    pub fn config(&self) -> SimConfig {
        self.shared.lock().config.clone()
    }

    /// A valid App Bridge session token for `user_id` on `shop`, living 60 seconds.
    pub fn session_token(&self, shop: &str, user_id: u64) -> String {
        let (api_key, secret) = self.key_and_secret();
        let claims =
            session_token::standard_claims(&api_key, shop, user_id, self.shared.clock.now());
        session_token::sign(&secret, &claims)
    }

    /// A session token for user 1 on `shop` whose claims `edit` may change, signed HS256 with the
    /// current secret.
    pub fn session_token_with(
        &self,
        shop: &str,
        edit: impl FnOnce(&mut Map<String, Value>),
    ) -> String {
        let (api_key, secret) = self.key_and_secret();
        let mut claims = session_token::standard_claims(&api_key, shop, 1, self.shared.clock.now());
        edit(&mut claims);
        session_token::sign(&secret, &claims)
    }

    fn key_and_secret(&self) -> (String, String) {
        let state = self.shared.lock();
        (
            state.config.api_key.clone(),
            state.config.api_secret.clone(),
        )
    }

    /// The request Shopify sends to the app when a merchant installs or opens it from the admin:
    /// `{app_url}/auth?embedded=1&hmac=…&host=…&shop=…&timestamp=…`.
    pub fn install_link(&self, shop: &str) -> String {
        let now = self.shared.clock.now();
        let state = self.shared.lock();
        let handle = shop.split('.').next().unwrap_or(shop);
        let query = signed_params(
            &state.config.api_secret,
            vec![
                ("embedded", "1".to_owned()),
                ("host", host_param(handle)),
                ("shop", shop.to_owned()),
                ("timestamp", now.timestamp().to_string()),
            ],
        );
        format!("{}/auth?{query}", state.config.app_url)
    }

    /// GETs `authorize_url` without following redirects, as the merchant's browser would after
    /// approving, and returns the `Location` (the app's callback with `code`, `hmac`, `host`, `shop`,
    /// `state`, `timestamp`).
    ///
    /// # Errors
    /// When the request fails or the simulator refuses (the error carries its status and page).
    pub async fn follow_authorize(&self, authorize_url: &str) -> anyhow::Result<String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building an HTTP client")?;
        let response = client
            .get(authorize_url)
            .send()
            .await
            .with_context(|| format!("requesting {authorize_url}"))?;
        let status = response.status();
        if let Some(location) = response.headers().get("location") {
            return Ok(location
                .to_str()
                .context("reading the Location header")?
                .to_owned());
        }
        let body = response.text().await.unwrap_or_default();
        anyhow::bail!("authorize answered {status} without a redirect: {body}")
    }

    /// Rotates the client secret: `new_secret` signs everything from now on; the previous one is still
    /// accepted (client authentication, session tokens) until [`Simulator::revoke_previous_secret`],
    /// and signs webhooks for `webhook_signing_lag`.
    pub fn rotate_secret(&self, new_secret: &str) {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        let old = std::mem::replace(&mut state.config.api_secret, new_secret.to_owned());
        state.previous_secret = Some(PreviousSecret {
            secret: old,
            rotated_at: now,
        });
    }

    /// Stops accepting the secret replaced by the last rotation.
    pub fn revoke_previous_secret(&self) {
        self.shared.lock().previous_secret = None;
    }

    /// A handle to arm faults.
    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Every access and refresh token issued for `shop`, oldest first.
    pub fn tokens(&self, shop: &str) -> Vec<IssuedToken> {
        self.shared
            .lock()
            .tokens
            .iter()
            .filter(|token| token.shop == shop)
            .map(|token| IssuedToken {
                token: token.token.clone(),
                kind: token.kind,
                grant_type: token.grant_type.clone(),
                issued_at: token.issued_at,
                expires_at: token.expires_at,
                revoked: token.revoked || token.retired,
                scopes: token.scopes.clone(),
            })
            .collect()
    }

    /// The `grant_type` of every request the token endpoint received for `shop`, in order (failed and
    /// fault-injected ones included; the code grant is recorded as `authorization_code`).
    pub fn token_requests(&self, shop: &str) -> Vec<String> {
        self.shared
            .lock()
            .token_requests
            .iter()
            .filter(|(requested_shop, _)| requested_shop == shop)
            .map(|(_, grant)| grant.clone())
            .collect()
    }

    /// Whether the app is installed on `shop`.
    pub fn installed(&self, shop: &str) -> bool {
        self.shared
            .lock()
            .shops
            .get(shop)
            .is_some_and(|record| record.installed)
    }

    /// Scopes the merchant granted on `shop` (empty when not installed).
    pub fn granted_scopes(&self, shop: &str) -> Vec<String> {
        self.shared
            .lock()
            .shops
            .get(shop)
            .filter(|record| record.installed)
            .map(|record| record.scopes.clone())
            .unwrap_or_default()
    }

    /// Changes the granted scopes of an installed shop (as a merchant approving new scopes does) and
    /// delivers `app/scopes_update`.
    pub async fn update_scopes(&self, shop: &str, scopes: &[&str]) -> DeliveryReport {
        let (seed, previous) = {
            let mut state = self.shared.lock();
            let Some(record) = state.shops.get_mut(shop) else {
                return DeliveryReport {
                    webhook_id: String::new(),
                    attempts: Vec::new(),
                    delivered: false,
                };
            };
            let previous = std::mem::replace(
                &mut record.scopes,
                scopes.iter().map(|scope| (*scope).to_owned()).collect(),
            );
            let seed = record.seed.clone();
            for token in state.tokens.iter_mut().filter(|token| token.shop == shop) {
                token.scopes = scopes.iter().map(|scope| (*scope).to_owned()).collect();
            }
            (seed, previous)
        };
        let previous: Vec<&str> = previous.iter().map(String::as_str).collect();
        let payload =
            webhook::scopes_update_payload(&seed, &previous, scopes, self.shared.clock.now());
        self.deliver(
            shop,
            "app/scopes_update",
            payload,
            DeliveryOptions::default(),
        )
        .await
    }

    /// Uninstalls the app from `shop` (<https://shopify.dev/docs/apps/build/authentication-authorization/app-installation/uninstallations>):
    /// revokes its tokens, marks it uninstalled, then delivers
    /// `app/uninstalled` (so the token is already dead when the webhook arrives, as on Shopify).
    pub async fn uninstall(&self, shop: &str) -> DeliveryReport {
        let Some(payload) = self.remove_app(shop) else {
            return DeliveryReport {
                webhook_id: String::new(),
                attempts: Vec::new(),
                delivered: false,
            };
        };
        self.deliver(shop, "app/uninstalled", payload, DeliveryOptions::default())
            .await
    }

    /// What an uninstall does at once, before its webhook goes out: revokes the shop's tokens
    /// and marks it uninstalled. Returns the `app/uninstalled` payload to deliver later, or
    /// `None` for an unknown shop.
    pub fn remove_app(&self, shop: &str) -> Option<Value> {
        let seed = {
            let mut state = self.shared.lock();
            let record = state.shops.get_mut(shop)?;
            record.installed = false;
            record.installed_at = None;
            record.scopes.clear();
            record.webhook_subscriptions.clear();
            let seed = record.seed.clone();
            for token in state.tokens.iter_mut().filter(|token| token.shop == shop) {
                token.revoked = true;
            }
            seed
        };
        Some(webhook::app_uninstalled_payload(
            &seed,
            self.shared.clock.now(),
        ))
    }

    /// Delivers `payload` on `topic` to `app_url + webhook_path`, retrying per `retry_delays`
    /// (<https://shopify.dev/docs/apps/build/webhooks/delivery-structure>, see [`crate::webhook`]).
    pub async fn deliver(
        &self,
        shop: &str,
        topic: &str,
        payload: Value,
        options: DeliveryOptions,
    ) -> DeliveryReport {
        webhook::deliver(&self.shared, shop, topic, &payload, options).await
    }

    fn seed_or_default(&self, shop: &str) -> ShopSeed {
        self.shop(shop).unwrap_or_else(|| ShopSeed::new(shop))
    }

    /// The `app/uninstalled` body for `shop` (the REST shop resource).
    pub fn app_uninstalled_payload(&self, shop: &str) -> Value {
        webhook::app_uninstalled_payload(&self.seed_or_default(shop), self.shared.clock.now())
    }

    /// The `app/scopes_update` body for `shop`.
    pub fn scopes_update_payload(&self, shop: &str, previous: &[&str], current: &[&str]) -> Value {
        webhook::scopes_update_payload(
            &self.seed_or_default(shop),
            previous,
            current,
            self.shared.clock.now(),
        )
    }

    /// The `customers/data_request` body for `shop`.
    pub fn customers_data_request_payload(
        &self,
        shop: &str,
        customer_id: u64,
        order_ids: &[u64],
    ) -> Value {
        webhook::customers_data_request_payload(&self.seed_or_default(shop), customer_id, order_ids)
    }

    /// The `customers/redact` body for `shop`.
    pub fn customers_redact_payload(
        &self,
        shop: &str,
        customer_id: u64,
        order_ids: &[u64],
    ) -> Value {
        webhook::customers_redact_payload(&self.seed_or_default(shop), customer_id, order_ids)
    }

    /// The `shop/redact` body for `shop`.
    pub fn shop_redact_payload(&self, shop: &str) -> Value {
        webhook::shop_redact_payload(&self.seed_or_default(shop))
    }

    /// The seeded orders' numeric ids of `shop`, oldest first.
    pub fn order_ids(&self, shop: &str) -> Vec<u64> {
        self.shared
            .lock()
            .shops
            .get(shop)
            .map(|record| record.data.orders.iter().map(|order| order.id).collect())
            .unwrap_or_default()
    }

    /// Every order of `shop`, ascending id (generated ones included: keep this to small shops).
    pub fn orders(&self, shop: &str) -> Vec<OrderRow> {
        self.shop_data(shop)
            .map(|data| data.orders.iter().collect())
            .unwrap_or_default()
    }

    /// One order of `shop` by numeric id.
    pub fn order(&self, shop: &str, id: u64) -> Option<OrderRow> {
        self.shop_data(shop)?.orders.get(id)
    }

    fn shop_data(&self, shop: &str) -> Option<Arc<ShopData>> {
        self.shared
            .lock()
            .shops
            .get(shop)
            .map(|record| Arc::clone(&record.data))
    }

    /// Changes an order of a running shop as a merchant's edit, refund or cancellation would, and bumps
    /// its `updatedAt` to now (later than before), so reconciliation by `updated_at` finds it. Bulk
    /// operations already running keep the data they started with. Returns the new version.
    pub fn update_order(
        &self,
        shop: &str,
        id: u64,
        edit: impl FnOnce(&mut OrderRow),
    ) -> Option<OrderRow> {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        let record = state.shops.get_mut(shop)?;
        let mut order = record.data.orders.get(id)?;
        let previous = order.updated_at;
        edit(&mut order);
        order.id = id;
        order.updated_at = now.max(previous + chrono::Duration::seconds(1));
        Arc::make_mut(&mut record.data).orders.insert(order.clone());
        Some(order)
    }

    /// Places a new order on `shop` now (the next id and number; for a synthetic shop a copy of the last
    /// generated order's lines, otherwise no lines) after `edit` shapes it. Returns it.
    pub fn add_order(&self, shop: &str, edit: impl FnOnce(&mut OrderRow)) -> Option<OrderRow> {
        let now = self.shared.clock.now();
        let mut state = self.shared.lock();
        let record = state.shops.get_mut(shop)?;
        let mut order = record.data.orders.template(now);
        let id = order.id;
        edit(&mut order);
        order.id = id;
        Arc::make_mut(&mut record.data).orders.insert(order.clone());
        Some(order)
    }

    /// The demand a correct import of `shop`'s orders must find, by shop-local day, SKU and location
    /// (the rule is documented in [`crate::admin::demand`]).
    pub fn ground_truth(&self, shop: &str) -> BTreeMap<DemandKey, Demand> {
        let Some(seed) = self.shop(shop) else {
            return BTreeMap::new();
        };
        let Some(data) = self.shop_data(shop) else {
            return BTreeMap::new();
        };
        let timezone = seed.iana_timezone.parse().unwrap_or(chrono_tz::UTC);
        demand::daily_demand(data.orders.iter(), timezone)
    }

    /// The bulk operations of `shop`, oldest first, as they are now.
    pub fn bulk_operations(&self, shop: &str) -> Vec<BulkOperationView> {
        bulk::views(&self.shared, |view| view.shop == shop)
    }

    /// Waits (real time, at most `limit`) until bulk operation `id` is no longer created, running or
    /// cancelling; returns it as it is then. Advance the simulated clock past
    /// `SimConfig::bulk_operation_duration` first when it is frozen.
    pub async fn wait_for_bulk_operation(
        &self,
        id: u64,
        limit: std::time::Duration,
    ) -> Option<BulkOperationView> {
        let started = std::time::Instant::now();
        loop {
            let view = bulk::views(&self.shared, |view| view.id == id)
                .into_iter()
                .next()?;
            let active = matches!(
                view.status,
                BulkOperationStatus::Created
                    | BulkOperationStatus::Running
                    | BulkOperationStatus::Canceling
            );
            if !active || started.elapsed() >= limit {
                return Some(view);
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Serves until the server task ends (it runs until the process stops).
    pub async fn wait(mut self) {
        // Dropping `self` aborts whatever task it holds, so hand it a finished one and keep the server.
        let server = std::mem::replace(&mut self.server, tokio::spawn(async {}));
        drop(self);
        let _ = server.await;
    }
}

/// `GET /`: what this simulator serves.
async fn index(axum::extract::State(shared): axum::extract::State<Arc<Shared>>) -> String {
    let state = shared.lock();
    let mut text = format!(
        "Shopify Admin simulator\nadmin URL template: {}/shops/{{shop}}\nshops:\n",
        shared.base_url
    );
    for (domain, record) in &state.shops {
        text.push_str(&format!(
            "  {domain} installed={} scopes={}\n",
            record.installed,
            record.scopes.join(",")
        ));
    }
    text
}
