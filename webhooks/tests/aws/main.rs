//! The AWS adapters (`EventBridgeBus`, `SqsQueue`, `Worker`) against moto on loopback.
//!
//! Start moto and export its endpoint first: `eval "$(scripts/moto.sh)"` (scripts/test.sh does it).
//! Each test creates its own bus, queues and rule under unique names, so tests run in parallel.

#![allow(clippy::unwrap_used)]

mod eventbridge;
mod support;
mod worker;
