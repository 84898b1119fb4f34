//! The `ordernimbus` binary's library half: the command line (`config`), the operator commands
//! (`cli`), the demo data (`demo`), the server wiring (`wiring`), the only place that picks
//! adapters, and the mounting of the Leptos UI behind its gate (`ui`). A library so that end-to-end tests start the very server the binary runs.

pub mod cli;
pub mod config;
pub mod demo;
pub mod ui;
pub mod wiring;
