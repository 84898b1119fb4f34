//! Webhook deliveries as kept in the delivery log, and order versions applied from them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::SalesLine;
use crate::shopify::shop::ShopDomain;

/// A verified delivery, as the receiver stores it before answering 200.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// `X-Shopify-Webhook-Id`, unique per delivery.
    pub webhook_id: String,
    /// The shop it came from (verified header).
    pub shop: ShopDomain,
    /// The topic.
    pub topic: String,
    /// `X-Shopify-API-Version`.
    pub api_version: String,
    /// `X-Shopify-Event-Id`, shared by every delivery of one merchant action.
    pub event_id: Option<String>,
    /// `X-Shopify-Triggered-At`.
    pub triggered_at: Option<DateTime<Utc>>,
    /// When the receiver got it.
    pub received_at: DateTime<Utc>,
    /// The delivery's Shopify headers (the HMAC excluded), for operators.
    pub headers: Vec<(String, String)>,
    /// The raw body, byte for byte.
    pub body: Vec<u8>,
}

/// Where a stored delivery stands; every delivery ends in `Published`, `Duplicate` or `Dead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Stored, waiting for the outbox to publish it.
    Pending,
    /// Published to the event bus.
    Published,
    /// Another delivery of the same event (same topic and event id) was stored first: kept, not
    /// published.
    Duplicate,
    /// Dead-lettered with a reason (the bus refused it, or its consumer failed for good).
    Dead,
}

impl DeliveryStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Published => "published",
            Self::Duplicate => "duplicate",
            Self::Dead => "dead",
        }
    }

    /// Parses a stored or typed name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(Self::Pending),
            "published" => Some(Self::Published),
            "duplicate" => Some(Self::Duplicate),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }

    /// Whether this status ends the delivery's way (only a replay or redrive reopens it), so that
    /// the delivery may be removed once older than the log's retention.
    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

/// How long the delivery log keeps a delivery in a final status, counted from its receipt; a
/// pending delivery is kept however old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryRetention {
    days: Option<u32>,
}

impl DeliveryRetention {
    /// Keeps every delivery.
    pub const FOREVER: Self = Self { days: None };

    /// Keeps final deliveries `days` days after their receipt; `0` keeps them forever.
    pub fn days(days: u32) -> Self {
        Self {
            days: (days > 0).then_some(days),
        }
    }

    /// The retention as a duration; `None` when deliveries are kept forever.
    pub fn duration(self) -> Option<chrono::Duration> {
        self.days
            .map(|days| chrono::Duration::days(i64::from(days)))
    }

    /// When a delivery received at `received_at` may go once final; `None` when kept forever.
    pub fn expires_at(self, received_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.duration().map(|retention| received_at + retention)
    }

    /// Receipts before this, at `now`, are past the retention; `None` when kept forever.
    pub fn cutoff(self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.duration().map(|retention| now - retention)
    }
}

/// What storing a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryReceipt {
    /// Stored for the first time, pending publication.
    Stored,
    /// The same webhook id was stored before (Shopify retried): counted on the stored row.
    Redelivery,
    /// A new webhook id for an event already stored: kept as a duplicate, not published.
    DuplicateEvent,
}

/// One step in a delivery's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStep {
    /// When.
    pub at: DateTime<Utc>,
    /// `stored`, `redelivered`, `published`, `publish_failed`, `applied`, `ignored`,
    /// `consume_failed`, `dead_lettered`, `replayed`, `redriven`, …
    pub outcome: String,
    /// Details (an error, what was applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A stored delivery with its state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    /// Position in the log.
    pub sequence: i64,
    /// `X-Shopify-Webhook-Id`.
    pub webhook_id: String,
    /// The shop domain.
    pub shop: String,
    /// The topic.
    pub topic: String,
    /// `X-Shopify-API-Version`.
    pub api_version: String,
    /// `X-Shopify-Event-Id`.
    pub event_id: Option<String>,
    /// `X-Shopify-Triggered-At`.
    pub triggered_at: Option<DateTime<Utc>>,
    /// When it was first received.
    pub received_at: DateTime<Utc>,
    /// Current status.
    pub status: DeliveryStatus,
    /// How many times Shopify delivered the same webhook id again.
    pub redeliveries: u32,
    /// Failed publish or consume attempts.
    pub attempts: u32,
    /// Why it is dead, when it is.
    pub reason: Option<String>,
    /// Its headers (HMAC excluded); empty in listings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// The raw body; empty in listings.
    #[serde(skip)]
    pub body: Vec<u8>,
    /// What happened to it, oldest first; empty in listings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<DeliveryStep>,
}

/// An outcome to record for a stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryOutcome {
    /// Which delivery.
    pub webhook_id: String,
    /// The new status, when it changes.
    pub status: Option<DeliveryStatus>,
    /// The step's name (`published`, `applied`, `dead_lettered`, …).
    pub outcome: String,
    /// Details (an error, what was applied); the reason when the status becomes `Dead`.
    pub detail: Option<String>,
    /// Whether this was a failed publish or consume attempt.
    pub failed_attempt: bool,
}

impl DeliveryOutcome {
    /// An outcome from a step word and an optional detail.
    pub fn new(
        webhook_id: &str,
        status: Option<DeliveryStatus>,
        outcome: &str,
        detail: Option<&str>,
        failed_attempt: bool,
    ) -> Self {
        Self {
            webhook_id: webhook_id.to_owned(),
            status,
            outcome: outcome.to_owned(),
            detail: detail.map(str::to_owned),
            failed_attempt,
        }
    }
}

/// An outbox's claim on the pending deliveries it is publishing: no other outbox takes them until
/// `until`, when the claims of an outbox that stopped run out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryLease {
    /// Who holds the claims (one outbox, in one process).
    pub owner: String,
    /// When they run out.
    pub until: DateTime<Utc>,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only this shop.
    pub shop: Option<String>,
    /// Only this topic.
    pub topic: Option<String>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
    /// Received before.
    pub until: Option<DateTime<Utc>>,
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Only after this sequence number (paging).
    pub after: Option<i64>,
    /// At most this many (newest first when `after` is not set, else oldest first).
    pub limit: u32,
}

/// One version of a Shopify order, as daily-sales lines.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderVersion {
    /// Shopify's order id (digits).
    pub order_id: String,
    /// The order's `updated_at`: an older version never overwrites a newer one.
    pub updated_at: DateTime<Utc>,
    /// One line per line item (units after refunds and edits; zero for a cancelled or test order).
    pub lines: Vec<SalesLine>,
}

/// What a store keeps of each line of the last applied order version: enough to cancel the lines
/// a newer version no longer has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderLineRef {
    /// The line identity's key.
    pub key: i64,
    /// The local day it counted on.
    pub date: chrono::NaiveDate,
    /// Its SKU.
    pub sku: String,
    /// Its location.
    pub location: String,
}

impl OrderVersion {
    /// What a store keeps of this version's lines.
    pub fn line_refs(&self) -> Vec<OrderLineRef> {
        self.lines
            .iter()
            .map(|line| OrderLineRef {
                key: line.identity.key(0),
                date: line.date,
                sku: line.sku.as_str().to_owned(),
                location: line.location.as_str().to_owned(),
            })
            .collect()
    }

    /// Zero-unit lines cancelling what the stored version (`previous`) counted and this version
    /// no longer has on the same day (a removed line item, or an order whose day moved).
    ///
    /// # Errors
    /// A stored SKU or location that no longer reads as one.
    pub fn dropped_lines(
        &self,
        previous: Vec<OrderLineRef>,
    ) -> Result<Vec<SalesLine>, super::InvalidValue> {
        let mut dropped = Vec::new();
        for old in previous {
            let kept = self
                .lines
                .iter()
                .any(|line| line.identity.key(0) == old.key && line.date == old.date);
            if !kept {
                dropped.push(SalesLine {
                    identity: super::LineIdentity::from_key(old.key),
                    date: old.date,
                    sku: super::Sku::parse(&old.sku)?,
                    location: super::Location::parse(&old.location)?,
                    product: None,
                    units: 0.0,
                    revenue: 0.0,
                });
            }
        }
        Ok(dropped)
    }
}

/// What applying an order version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum OrderApplied {
    /// The version was newer (or first): sales now reflect it.
    Applied {
        /// Lines new to the store.
        imported: u64,
        /// Lines whose units or revenue changed.
        updated: u64,
    },
    /// A version at least as new was applied (or a newer one is being applied) before: nothing
    /// changed.
    Stale,
}

/// A product variant from Shopify's catalogue: what a stock level or an order line is keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueVariant {
    /// Shopify's variant id.
    pub variant_id: String,
    /// The inventory item whose stock levels belong to this variant.
    pub inventory_item_id: Option<String>,
    /// The SKU (or `variant-{id}` when the variant has none, as order lines fall back to).
    pub sku: super::Sku,
}
