//! Integration tests of the HTTP API against a real server on loopback with a fresh store, and the
//! `Store` conformance suite. SQLite always; DynamoDB through moto (`eval "$(scripts/moto.sh)"`).

#![allow(clippy::unwrap_used)]

mod forecasts;
mod helpers;
mod isolation;
mod moto;
mod ops;
mod sales;
mod store_conformance;
mod ui;
mod uploads;
