//! End-to-end tests of the Shopify install lifecycle: a real `ordernimbus serve` against the Shopify
//! Admin simulator on loopback.

#![allow(clippy::unwrap_used)]

mod bad_input;
mod compliance;
mod harness;
mod install;
mod orders;
mod shutdown;
mod sync;
mod uninstall;
