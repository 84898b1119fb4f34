//! The webhook pipeline of OrderNimbus. Verification exists now (`verify`): Shopify's HMAC over the
//! raw body, checked in constant time against the current and previous app secret before anything
//! else, then the headers that identify the delivery; the rest is issue #5. This crate will also
//! own the receiver that stores every verified delivery durably before answering 200, the event
//! envelope published to the bus, the transactional outbox, the `EventBus` adapters (the local
//! durable bus and Amazon EventBridge), the consumers that turn deliveries into order history
//! through the backend's `Store` port, and the operators' replay tooling. It will never talk to a
//! database driver directly: storage goes through `ordernimbus_backend::store::Store`.

pub mod verify;
