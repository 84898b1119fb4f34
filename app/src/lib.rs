//! The `ordernimbus` binary's library half: the command line (`config`), the operator commands
//! (`cli`), the demo data (`demo`), the server wiring (`wiring`), the only place that picks
//! adapters, and the mounting of the Leptos UI behind its gate (`ui`). A library so that end-to-end tests start the very server the binary runs.

pub mod cli;
pub mod config;
pub mod demo;
pub mod ui;
pub mod wiring;

/// The memory allocator of the `ordernimbus` binary (and of the benchmarks that measure its code):
/// mimalloc. Bulk sync, CSV import and the webhook receiver allocate many small short-lived
/// buffers from several threads, where glibc's malloc spent a quarter of the sync's CPU time.
pub type Allocator = mimalloc::MiMalloc;
