//! Integration tests of the HTTP API against a real server on loopback with a fresh SQLite store.

#![allow(clippy::unwrap_used)]

mod forecasts;
mod helpers;
mod isolation;
mod ops;
mod sales;
mod store_conformance;
mod ui;
mod uploads;
