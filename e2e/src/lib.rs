//! End-to-end tests and the Shopify Admin simulator of OrderNimbus (not built yet; issues #4 and #6
//! deliver it). This crate will own a simulator that follows Shopify's documented behaviour (OAuth
//! authorization-code grant and token exchange, App Bridge session tokens, the GraphQL Admin API with
//! cost throttling, bulk operations with JSONL results, signed webhook deliveries with retries and fault
//! injection), usable as a library by tests and as the `shopify-sim` binary, and the tests that drive a
//! real `ordernimbus serve` against it. Nothing here is linked into the product binary.
