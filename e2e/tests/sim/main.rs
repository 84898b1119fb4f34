//! The simulator exercised against itself over HTTP: one test binary, one module per area.

mod bulk;
mod faults;
mod graphql;
mod ground_truth;
mod oauth;
mod reconcile;
mod refresh;
mod support;
mod token_exchange;
mod webhooks;
