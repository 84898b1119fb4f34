//! The webhook pipeline of OrderNimbus (not built yet; issue #5 delivers it). This crate will own the
//! verification of Shopify's `X-Shopify-Hmac-Sha256` signatures against the current and previous app
//! secret, the receiver that stores every verified delivery durably before answering 200, the event
//! envelope published to the bus, the transactional outbox, the `EventBus` adapters (the local durable
//! bus and Amazon EventBridge), the consumers that turn deliveries into order history through the
//! backend's `Store` port, and the operators' replay tooling. It will never talk to a database driver
//! directly: storage goes through `ordernimbus_backend::store::Store`.
