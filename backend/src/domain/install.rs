//! A Shopify shop's install of the app: its state, granted scopes and sealed credentials, and the
//! records that compliance webhooks leave behind.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{IdentityScheme, Tenant, TenantId, Timezone};
use crate::shopify::shop::ShopDomain;

/// Whether the app is currently installed on a shop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstallState {
    /// Installed: the shop's requests are served and its credentials may be used.
    Installed,
    /// Uninstalled: credentials are deleted, data is kept until `shop/redact`.
    Uninstalled,
}

impl InstallState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Installed => "installed",
            Self::Uninstalled => "uninstalled",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "installed" => Some(Self::Installed),
            "uninstalled" => Some(Self::Uninstalled),
            _ => None,
        }
    }
}

/// Admin API credentials as stored: both tokens sealed with AES-256-GCM (never plaintext at rest).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCredentials {
    /// The sealed access token.
    pub access_token: Vec<u8>,
    /// When the access token expires; `None` for a non-expiring token.
    pub access_expires_at: Option<DateTime<Utc>>,
    /// The sealed refresh token of an expiring offline token.
    pub refresh_token: Option<Vec<u8>>,
    /// When the refresh token expires.
    pub refresh_expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for SealedCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SealedCredentials")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

/// What an install (or a reinstall) stores.
#[derive(Debug, Clone)]
pub struct NewInstall {
    /// The shop.
    pub shop: ShopDomain,
    /// The shop's name, as the tenant's display name.
    pub name: String,
    /// The shop's time zone, in which its sales days are counted.
    pub timezone: Timezone,
    /// Scopes Shopify granted.
    pub scopes: Vec<String>,
    /// The offline token pair.
    pub credentials: SealedCredentials,
    /// When the install happened.
    pub at: DateTime<Utc>,
}

impl NewInstall {
    /// The tenant a first install of the shop creates, as `id`.
    pub fn tenant(&self, id: &TenantId) -> Tenant {
        Tenant {
            id: id.clone(),
            name: self.name.clone(),
            timezone: self.timezone,
            identity: IdentityScheme::default(),
            created_at: self.at,
        }
    }
}

/// A shop's install as stored.
#[derive(Debug, Clone)]
pub struct ShopInstall {
    /// The shop.
    pub shop: ShopDomain,
    /// The tenant that owns the shop's data.
    pub tenant: TenantId,
    /// Installed or not.
    pub state: InstallState,
    /// Scopes granted at install or by the last `app/scopes_update`.
    pub scopes: Vec<String>,
    /// When the app was (last) installed.
    pub installed_at: DateTime<Utc>,
    /// When the app was uninstalled, if it is.
    pub uninstalled_at: Option<DateTime<Utc>>,
    /// Admin API credentials; `None` after uninstall or when a refresh failed (the next Admin load
    /// exchanges a session token for new ones).
    pub credentials: Option<SealedCredentials>,
}

/// What an `app/uninstalled` delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UninstallOutcome {
    /// The shop is now uninstalled and its credentials are deleted.
    Uninstalled,
    /// The shop was already uninstalled.
    AlreadyUninstalled,
    /// The delivery was triggered before the current install: a late one, ignored.
    StaleAfterReinstall,
    /// No install of that shop is known.
    UnknownShop,
}

/// What a `shop/redact` delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EraseOutcome {
    /// Every record of the shop's tenant was erased.
    Erased,
    /// The shop is installed again; nothing was erased.
    SkippedReinstalled,
    /// No data of that shop is held.
    UnknownShop,
}

/// One line of the compliance audit log. It never holds personal data: customers appear only as
/// a SHA-256 digest of their Shopify id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplianceEntry {
    /// The shop the request concerns.
    pub shop: ShopDomain,
    /// `customers/data_request`, `customers/redact`, `shop/redact`, `app/uninstalled`, …
    pub topic: String,
    /// The delivery's `X-Shopify-Webhook-Id` (the log keeps one entry per delivery).
    pub webhook_id: String,
    /// When it was handled.
    pub handled_at: DateTime<Utc>,
    /// What was done, in a word (`erased`, `export_ready`, `nothing_held`, …).
    pub outcome: String,
    /// Counts and ids without personal data.
    pub detail: Value,
}

/// A `customers/data_request` waiting for an operator to export and hand over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataRequest {
    /// The shop.
    pub shop: ShopDomain,
    /// Shopify's `data_request.id`.
    pub request_id: String,
    /// Shopify's customer id.
    pub customer_id: String,
    /// Order ids the merchant asked about.
    pub orders_requested: Vec<String>,
    /// When the request arrived.
    pub received_at: DateTime<Utc>,
}
