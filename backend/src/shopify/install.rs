//! The install lifecycle: authorization-code installs, embedded requests authenticated by App Bridge
//! session tokens (token exchange on first sight of a shop), expiring offline tokens refreshed before
//! they expire (one refresh at a time per shop), and the lifecycle and compliance webhooks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Secret;
use super::cipher::TokenCipher;
use super::client::{ShopifyClient, ShopifyError, TokenGrant};
use super::session_token::{self, SessionTokenError};
use super::shop::ShopDomain;
use crate::domain::{
    ComplianceEntry, DataRequest, InstallState, NewInstall, SealedCredentials, ShopInstall, Tenant,
    TenantId, Timezone, UninstallOutcome,
};
use crate::store::{Store, StoreError};

/// Access tokens expiring within this margin are refreshed before use.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The app's Shopify settings (`SHOPIFY_API_KEY`, `SHOPIFY_API_SECRET`, `SHOPIFY_APP_URL`, …).
#[derive(Debug, Clone)]
pub struct ShopifyConfig {
    /// The app's client id.
    pub api_key: String,
    /// The client secret, and during a rotation the previous one (accepted, never used to sign).
    pub api_secret: Secret,
    /// The previous client secret while a rotation is in progress.
    pub previous_api_secret: Option<Secret>,
    /// Public base URL of the app, without a trailing slash (`https://ordernimbus.example.com`).
    pub app_url: String,
    /// Scopes requested at install.
    pub scopes: Vec<String>,
    /// Where a shop's Admin lives, `{shop}` replaced by the shop domain (`https://{shop}`).
    pub admin_url_template: String,
    /// The App Bridge script URL embedded pages load (Shopify's CDN; tests use the simulator's).
    pub app_bridge_url: String,
}

impl ShopifyConfig {
    /// The secrets that may have signed a request: current first.
    pub fn secrets(&self) -> Vec<&[u8]> {
        self.signing_secrets()
            .map(|secret| secret.expose().as_bytes())
            .collect()
    }

    /// The current secret, then the previous one during a rotation.
    pub fn signing_secrets(&self) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.api_secret).chain(self.previous_api_secret.as_ref())
    }

    /// The OAuth callback URL registered in `shopify.app.toml`.
    pub fn callback_url(&self) -> String {
        format!("{}/auth/callback", self.app_url)
    }
}

/// Why a request carrying a session token was not served.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The session token is missing, malformed, expired or not ours: App Bridge should retry.
    #[error("invalid session token: {0}")]
    InvalidToken(#[from] SessionTokenError),
    /// The token was valid but Shopify could not be reached or refused the token exchange.
    #[error(transparent)]
    Shopify(#[from] ShopifyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an Admin API access token cannot be had for a shop.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The app is not installed on the shop (or never was).
    #[error("the app is not installed on {0}")]
    NotInstalled(String),
    /// The credentials are gone (a refresh was refused): the next Admin load exchanges new ones.
    #[error("the credentials of {0} need to be renewed: open the app in Shopify Admin")]
    ReauthorizeNeeded(String),
    /// Shopify could not be reached.
    #[error(transparent)]
    Shopify(#[from] ShopifyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Stored credentials cannot be decrypted (wrong `ORDERNIMBUS_ENCRYPTION_KEY`).
    #[error("stored credentials cannot be decrypted with this encryption key")]
    Undecryptable,
}

impl From<InstallError> for SessionError {
    fn from(error: InstallError) -> Self {
        match error {
            InstallError::Shopify(error) => Self::Shopify(error),
            InstallError::Store(error) => Self::Store(error),
        }
    }
}

/// Why an install failed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Shopify refused or could not be reached.
    #[error(transparent)]
    Shopify(#[from] ShopifyError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A verified lifecycle or compliance webhook, ready to apply.
#[derive(Debug, Clone)]
pub struct LifecycleEvent<'a> {
    /// `app/uninstalled`, `app/scopes_update`, `customers/data_request`, `customers/redact` or
    /// `shop/redact`.
    pub topic: &'a str,
    /// The shop from the verified headers.
    pub shop: &'a ShopDomain,
    /// `X-Shopify-Webhook-Id`.
    pub webhook_id: &'a str,
    /// `X-Shopify-Triggered-At`, or when it arrived.
    pub triggered_at: DateTime<Utc>,
    /// The JSON body.
    pub payload: &'a Value,
}

/// Why a lifecycle webhook could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// The body is not what Shopify documents for the topic (a 400).
    #[error("{0}")]
    BadPayload(String),
    /// The topic is not a lifecycle topic.
    #[error("topic {0} is not a lifecycle topic")]
    NotLifecycle(String),
    /// The store failed (a 5xx: Shopify retries).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Topics handled by [`Lifecycle::apply`].
pub const LIFECYCLE_TOPICS: &[&str] = &[
    "app/uninstalled",
    "app/scopes_update",
    "customers/data_request",
    "customers/redact",
    "shop/redact",
];

/// The install lifecycle of the app on Shopify shops.
pub struct Lifecycle {
    config: ShopifyConfig,
    store: Arc<dyn Store>,
    client: Arc<dyn ShopifyClient>,
    cipher: TokenCipher,
    /// One lock per shop: a refresh or token exchange runs once while other requests wait for it.
    in_flight: Mutex<HashMap<ShopDomain, Arc<tokio::sync::Mutex<()>>>>,
    /// Called after each install (the first order sync starts there).
    on_install: std::sync::OnceLock<InstallHook>,
}

/// What runs after a shop is installed (or reinstalled); it must not block.
pub type InstallHook = Arc<dyn Fn(&ShopDomain) + Send + Sync>;

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Lifecycle")
            .field("api_key", &self.config.api_key)
            .finish_non_exhaustive()
    }
}

impl Lifecycle {
    /// Builds the lifecycle over the store, a Shopify client and the token cipher.
    pub fn new(
        config: ShopifyConfig,
        store: Arc<dyn Store>,
        client: Arc<dyn ShopifyClient>,
        cipher: TokenCipher,
    ) -> Self {
        Self {
            config,
            store,
            client,
            cipher,
            in_flight: Mutex::new(HashMap::new()),
            on_install: std::sync::OnceLock::new(),
        }
    }

    /// Sets what runs after each install (once; later calls are ignored).
    pub fn set_install_hook(&self, hook: InstallHook) {
        let _ = self.on_install.set(hook);
    }

    /// The app's settings.
    pub fn config(&self) -> &ShopifyConfig {
        &self.config
    }

    /// Where to send a merchant to approve the install (offline access: no `grant_options[]`).
    pub fn authorize_url(&self, shop: &ShopDomain, state: &str) -> String {
        let query = [
            ("client_id", self.config.api_key.as_str()),
            ("scope", &self.config.scopes.join(",")),
            ("redirect_uri", &self.config.callback_url()),
            ("state", state),
        ]
        .iter()
        .map(|(name, value)| format!("{name}={}", encode(value)))
        .collect::<Vec<_>>()
        .join("&");
        format!(
            "{}/admin/oauth/authorize?{query}",
            shop.admin_base_url(&self.config.admin_url_template)
        )
    }

    /// Where to send the merchant after an install: the app inside Shopify Admin.
    pub fn admin_app_url(&self, shop: &ShopDomain) -> String {
        format!(
            "https://admin.shopify.com/store/{}/apps/{}",
            shop.handle(),
            self.config.api_key
        )
    }

    /// Completes an authorization-code install whose callback was verified: trades the code,
    /// reads the shop's name and time zone, creates or reactivates its tenant.
    ///
    /// # Errors
    /// When Shopify refuses the code or cannot be reached, or the store fails.
    pub async fn install_with_code(
        &self,
        shop: &ShopDomain,
        code: &str,
    ) -> Result<ShopInstall, InstallError> {
        let grant = self.client.exchange_code(shop, code).await?;
        self.install(shop, grant).await
    }

    async fn install(
        &self,
        shop: &ShopDomain,
        grant: TokenGrant,
    ) -> Result<ShopInstall, InstallError> {
        let info = self.client.shop_info(shop, &grant.access_token).await?;
        let timezone = Timezone::parse(&info.iana_timezone).unwrap_or_default();
        let now = Utc::now();
        let install = NewInstall {
            shop: shop.clone(),
            name: info.name,
            timezone,
            scopes: grant.scopes.clone(),
            credentials: self.seal(shop, &grant, now),
            at: now,
        };
        let stored = self
            .store
            .install_shop(&install, &TenantId::generate())
            .await?;
        tracing::info!(shop = %shop, tenant_id = %stored.tenant, "installed");
        if let Some(hook) = self.on_install.get() {
            hook(shop);
        }
        Ok(stored)
    }

    /// Authenticates an embedded request by its App Bridge session token and returns the shop's
    /// tenant. On first sight of a shop (or after an uninstall or a refused refresh) it exchanges
    /// the session token for an offline token and installs the shop.
    ///
    /// # Errors
    /// `InvalidToken` for a bad session token (answer 401); `Shopify` when the exchange failed
    /// (answer 502/503, never 401, or App Bridge would retry forever).
    pub async fn authenticate(&self, session_token: &str) -> Result<Tenant, SessionError> {
        let secrets = self.config.secrets();
        let session = session_token::verify(
            session_token,
            &self.config.api_key,
            &secrets,
            Utc::now().timestamp(),
        )?;
        let shop = session.shop;
        if let Some(install) = self.usable_install(&shop).await? {
            return Ok(self.store.tenant(&install.tenant).await?);
        }
        let lock = self.lock_for(&shop);
        let _guard = lock.lock().await;
        // Another request may have installed the shop while this one waited.
        if let Some(install) = self.usable_install(&shop).await? {
            return Ok(self.store.tenant(&install.tenant).await?);
        }
        let grant = self
            .client
            .exchange_session_token(&shop, session_token)
            .await?;
        let install = self.install(&shop, grant).await?;
        Ok(self.store.tenant(&install.tenant).await?)
    }

    async fn usable_install(&self, shop: &ShopDomain) -> Result<Option<ShopInstall>, StoreError> {
        Ok(self.store.shop_install(shop).await?.filter(|install| {
            install.state == InstallState::Installed && install.credentials.is_some()
        }))
    }

    fn lock_for(&self, shop: &ShopDomain) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(shop.clone()).or_default())
    }

    /// A valid Admin API access token for the shop, refreshed first when it expires within
    /// [`REFRESH_MARGIN`]. Concurrent callers share one refresh.
    ///
    /// # Errors
    /// `ReauthorizeNeeded` when Shopify refused the refresh (credentials are then deleted so that
    /// the next Admin load exchanges new ones instead of retrying in a loop).
    pub async fn access_token(&self, shop: &ShopDomain) -> Result<Secret, AccessError> {
        let fresh = |credentials: &SealedCredentials| {
            credentials.access_expires_at.is_none_or(|expires| {
                expires - Utc::now()
                    > chrono::Duration::from_std(REFRESH_MARGIN).unwrap_or_default()
            })
        };
        let credentials = self.credentials(shop).await?;
        if fresh(&credentials) {
            return self.open(shop, "access", &credentials.access_token);
        }
        let lock = self.lock_for(shop);
        let _guard = lock.lock().await;
        let credentials = self.credentials(shop).await?;
        if fresh(&credentials) {
            return self.open(shop, "access", &credentials.access_token);
        }
        self.refresh_locked(shop, &credentials, true).await
    }

    /// A new access token after Shopify refused `rejected` (revoked or expired early): refreshes
    /// unless another caller already replaced it. The caller retries its call once with it.
    ///
    /// # Errors
    /// As [`Self::access_token`]; `ReauthorizeNeeded` when the token cannot be refreshed.
    pub async fn renew_access_token(
        &self,
        shop: &ShopDomain,
        rejected: &Secret,
    ) -> Result<Secret, AccessError> {
        let lock = self.lock_for(shop);
        let _guard = lock.lock().await;
        let credentials = self.credentials(shop).await?;
        let current = self.open(shop, "access", &credentials.access_token)?;
        if current.expose() != rejected.expose() {
            return Ok(current);
        }
        self.refresh_locked(shop, &credentials, false).await
    }

    /// Refreshes the token pair while holding the shop's lock. With `fallback`, a refresh that
    /// cannot reach Shopify returns the current token while it has not expired.
    async fn refresh_locked(
        &self,
        shop: &ShopDomain,
        credentials: &SealedCredentials,
        fallback: bool,
    ) -> Result<Secret, AccessError> {
        let refresh_usable = credentials.refresh_token.is_some()
            && credentials
                .refresh_expires_at
                .is_none_or(|expires| expires > Utc::now());
        let Some(sealed_refresh) = credentials
            .refresh_token
            .as_ref()
            .filter(|_| refresh_usable)
        else {
            self.store
                .replace_credentials(shop, &credentials.access_token, None)
                .await?;
            return Err(AccessError::ReauthorizeNeeded(shop.to_string()));
        };
        let refresh = self.open(shop, "refresh", sealed_refresh)?;
        match self.client.refresh_token(shop, &refresh).await {
            Ok(grant) => {
                let sealed = self.seal(shop, &grant, Utc::now());
                self.store
                    .replace_credentials(shop, &credentials.access_token, Some(sealed))
                    .await?;
                tracing::info!(shop = %shop, "access token refreshed");
                Ok(grant.access_token)
            }
            Err(ShopifyError::Refused { status, error }) => {
                tracing::warn!(shop = %shop, status, %error, "refresh refused; re-exchange on next Admin load");
                self.store
                    .replace_credentials(shop, &credentials.access_token, None)
                    .await?;
                Err(AccessError::ReauthorizeNeeded(shop.to_string()))
            }
            Err(error) => {
                // Shopify is unreachable: the current token may still have a few minutes left.
                let still_valid = fallback
                    && credentials
                        .access_expires_at
                        .is_none_or(|expires| expires > Utc::now());
                if still_valid {
                    self.open(shop, "access", &credentials.access_token)
                } else {
                    Err(error.into())
                }
            }
        }
    }

    async fn credentials(&self, shop: &ShopDomain) -> Result<SealedCredentials, AccessError> {
        let install = self
            .store
            .shop_install(shop)
            .await?
            .filter(|install| install.state == InstallState::Installed)
            .ok_or_else(|| AccessError::NotInstalled(shop.to_string()))?;
        install
            .credentials
            .ok_or_else(|| AccessError::ReauthorizeNeeded(shop.to_string()))
    }

    /// Reads the shop's details live from the Admin API (refreshing the token when due).
    ///
    /// # Errors
    /// As [`Self::access_token`], and when Shopify fails.
    pub async fn shop_info(
        &self,
        shop: &ShopDomain,
    ) -> Result<super::client::ShopInfo, AccessError> {
        let token = self.access_token(shop).await?;
        match self.client.shop_info(shop, &token).await {
            Err(ShopifyError::InvalidToken) => {
                Err(AccessError::ReauthorizeNeeded(shop.to_string()))
            }
            other => Ok(other?),
        }
    }

    fn seal(&self, shop: &ShopDomain, grant: &TokenGrant, now: DateTime<Utc>) -> SealedCredentials {
        let after = |duration: Option<Duration>| {
            duration
                .and_then(|duration| chrono::Duration::from_std(duration).ok())
                .map(|duration| now + duration)
        };
        SealedCredentials {
            access_token: self
                .cipher
                .encrypt(grant.access_token.expose().as_bytes(), &aad(shop, "access")),
            access_expires_at: after(grant.expires_in),
            refresh_token: grant.refresh_token.as_ref().map(|token| {
                self.cipher
                    .encrypt(token.expose().as_bytes(), &aad(shop, "refresh"))
            }),
            refresh_expires_at: after(grant.refresh_token_expires_in),
        }
    }

    fn open(&self, shop: &ShopDomain, kind: &str, sealed: &[u8]) -> Result<Secret, AccessError> {
        let plain = self
            .cipher
            .decrypt(sealed, &aad(shop, kind))
            .map_err(|_| AccessError::Undecryptable)?;
        String::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| AccessError::Undecryptable)
    }

    /// Applies a verified lifecycle or compliance webhook; returns the outcome for the log.
    ///
    /// # Errors
    /// `BadPayload` when the body does not have the documented shape or names another shop.
    pub async fn apply(&self, event: &LifecycleEvent<'_>) -> Result<String, LifecycleError> {
        let shop = event.shop;
        // The shop-domain header is not covered by the HMAC: where the body names the shop, they
        // must agree.
        if let Some(domain) = event
            .payload
            .get("shop_domain")
            .or_else(|| event.payload.get("myshopify_domain"))
            .and_then(Value::as_str)
            && !domain.eq_ignore_ascii_case(shop.as_str())
        {
            return Err(LifecycleError::BadPayload(format!(
                "body names shop {domain} but the delivery came for {shop}"
            )));
        }
        let (outcome, detail) = match event.topic {
            "app/uninstalled" => {
                let outcome = self.store.uninstall_shop(shop, event.triggered_at).await?;
                tracing::info!(shop = %shop, ?outcome, "app/uninstalled");
                if outcome == UninstallOutcome::Uninstalled
                    && let Some(install) = self.store.shop_install(shop).await?
                {
                    super::sync::note_uninstall(self.store.as_ref(), &install).await?;
                }
                (json_word(&outcome), json!({}))
            }
            "app/scopes_update" => {
                let current = string_list(event.payload.get("current")).ok_or_else(|| {
                    LifecycleError::BadPayload(
                        "app/scopes_update without \"current\" scopes".into(),
                    )
                })?;
                let known = self.store.set_shop_scopes(shop, &current).await?;
                let word = if known {
                    "scopes_recorded"
                } else {
                    "unknown_shop"
                };
                (word.to_owned(), json!({ "current": current }))
            }
            "customers/data_request" => {
                let customer_id = customer_id(event.payload)?;
                let request_id = super::id_text(event.payload.pointer("/data_request/id"))
                    .ok_or_else(|| LifecycleError::BadPayload("data_request.id missing".into()))?;
                let orders = id_list(event.payload.get("orders_requested"));
                self.store
                    .put_data_request(&DataRequest {
                        shop: shop.clone(),
                        request_id: request_id.clone(),
                        customer_id: customer_id.clone(),
                        orders_requested: orders.clone(),
                        received_at: Utc::now(),
                    })
                    .await?;
                (
                    "export_ready".to_owned(),
                    json!({ "data_request_id": request_id, "customer": digest(&customer_id), "orders_requested": orders.len() }),
                )
            }
            "customers/redact" => {
                let customer_id = customer_id(event.payload)?;
                let erased = self.store.redact_customer(shop, &customer_id).await?;
                let orders = id_list(event.payload.get("orders_to_redact"));
                let rewritten = super::compliance::redact_deliveries(
                    self.store.as_ref(),
                    shop,
                    &customer_id,
                    &orders,
                )
                .await?;
                (
                    "redacted".to_owned(),
                    json!({ "customer": digest(&customer_id), "records_erased": erased, "deliveries_redacted": rewritten, "orders_to_redact": orders.len() }),
                )
            }
            "shop/redact" => {
                let outcome = self.store.erase_shop(shop).await?;
                tracing::info!(shop = %shop, ?outcome, "shop/redact");
                (json_word(&outcome), json!({}))
            }
            other => return Err(LifecycleError::NotLifecycle(other.to_owned())),
        };
        self.store
            .record_compliance(&ComplianceEntry {
                shop: shop.clone(),
                topic: event.topic.to_owned(),
                webhook_id: event.webhook_id.to_owned(),
                handled_at: Utc::now(),
                outcome: outcome.clone(),
                detail,
            })
            .await?;
        Ok(outcome)
    }
}

/// Binds a sealed token to its shop and kind, so a ciphertext moved to another row fails to open.
fn aad(shop: &ShopDomain, kind: &str) -> Vec<u8> {
    format!("{}:{kind}", shop.as_str()).into_bytes()
}

/// Characters percent-encoded in query values we build: all but RFC 3986's unreserved ones.
pub const QUERY_VALUE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_VALUE).to_string()
}

fn json_word(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A customer id for the log: a digest, never the id itself.
fn digest(customer_id: &str) -> String {
    hex::encode(&Sha256::digest(customer_id.as_bytes())[..8])
}

fn id_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(|id| super::id_text(Some(id)))
                .collect()
        })
        .unwrap_or_default()
}

fn string_list(value: Option<&Value>) -> Option<Vec<String>> {
    value?
        .as_array()?
        .iter()
        .map(|scope| scope.as_str().map(str::to_owned))
        .collect()
}

fn customer_id(payload: &Value) -> Result<String, LifecycleError> {
    super::id_text(payload.pointer("/customer/id"))
        .ok_or_else(|| LifecycleError::BadPayload("customer.id missing".into()))
}
