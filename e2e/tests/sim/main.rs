//! The simulator exercised against itself over HTTP: one test binary, one module per area.

mod faults;
mod graphql;
mod oauth;
mod refresh;
mod support;
mod token_exchange;
mod webhooks;
