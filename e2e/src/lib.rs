//! End-to-end test support for OrderNimbus: a simulator of the Shopify Admin that follows Shopify's
//! documented behaviour (shopify.dev), not our app's code, and depends on no other crate of this
//! workspace. Nothing here is linked into the product binary.
//!
//! The [`Simulator`] serves shops at `http://127.0.0.1:PORT/shops/{shop}` standing in for
//! `https://{shop}`:
//! - OAuth: the authorize page (merchant approval, signed redirect), the token endpoint with the
//!   authorization-code grant, token exchange of App Bridge session tokens, and refresh of expiring
//!   offline tokens with rotation ([`oauth`], [`session_token`]);
//! - the GraphQL Admin API: an honest subset of the schema over seeded locations, products, inventory
//!   and orders, with Shopify's cost calculation, per-shop leaky bucket, `THROTTLED` and
//!   `MAX_COST_EXCEEDED`, and version fall-forward ([`admin`]);
//! - signed webhook deliveries with Shopify's headers, timeouts and retries, and payload builders for the
//!   lifecycle and compliance topics ([`webhook`]);
//! - an App Bridge stand-in (`/app-bridge.js`, `window.shopify.idToken()`) for browser tests, which
//!   cannot reach Shopify's CDN;
//! - fault injection ([`Faults`]), a freezable clock ([`Clock`]) and introspection of issued tokens.
//!
//! - bulk queries ([`bulk`]): `bulkOperationRunQuery` over the same schema, JSONL results with
//!   `__parentId`, `bulk_operations/finish`, result URLs that expire and resume with `Range`, and faults;
//! - synthetic order histories of any size generated from a seed ([`SyntheticOrders`]) and the demand a
//!   correct import must find in them ([`admin::demand`]).
//!
//! It is used as a library by tests and as the `shopify-sim` binary. It never talks to the real Shopify.

// The `app/uninstalled` payload is one large `json!` literal.
#![recursion_limit = "256"]

pub mod admin;
mod app_bridge;
pub mod bulk;
mod clock;
mod config;
pub mod crypto;
mod fault;
pub mod oauth;
pub mod session_token;
mod simulator;
mod state;
pub mod webhook;

pub use admin::demand::{Demand, DemandKey};
pub use admin::seed::{LineItemRow, OrderRow, RefundLineRow, RefundRow, RestockType};
pub use bulk::{BulkFault, BulkOperationStatus, BulkOperationView};
pub use clock::Clock;
pub use config::{
    Plan, ShopSeed, SimConfig, SyntheticOrders, ThrottleLimits, shopify_retry_delays,
};
pub use fault::Faults;
pub use simulator::{IssuedToken, Simulator};
pub use state::TokenKind;
pub use webhook::{Attempt, DeliveryOptions, DeliveryReport, HeaderFamily, Signature};
