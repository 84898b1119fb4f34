//! The core of OrderNimbus: domain types and rules (`domain`), the storage port (`store::Store`) with its
//! embedded SQLite adapter, the sales-CSV reader (`csv`), the import use case (`import`), Shopify's
//! platform rules (`shopify`: shop domains, OAuth and session-token verification, token encryption)
//! and the thin axum HTTP API (`http`). It never reads the environment and never picks an adapter:
//! the `app` crate wires concrete adapters in; everything here holds `Arc<dyn Store>`.

pub mod bus;
pub mod csv;
pub mod domain;
pub mod forecast;
pub mod http;
pub mod import;
pub mod metrics;
pub mod product;
pub mod shopify;
pub mod stock;
pub mod store;
