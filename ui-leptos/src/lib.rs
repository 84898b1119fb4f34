//! The Leptos UI of OrderNimbus (not built yet; issue #8 delivers it). This crate will own the pages
//! merchants see (overview, products, product detail, data, settings), server-rendered by
//! `ordernimbus serve` at `/app` and hydrated in the browser from wasm, embedded in Shopify Admin
//! through App Bridge or standalone for CSV tenants. It depends on no crate of ours: like the CLI's
//! HTTP commands, it knows the server only through the JSON API under `/api/v1/`.
