//! The webhook pipeline of OrderNimbus. Today: verification (`verify`: Shopify's HMAC over the raw
//! body, checked in constant time against the current and previous app secret before anything else,
//! then the headers that identify the delivery) and the receiver (`receiver`: `POST /webhooks`),
//! which applies the lifecycle and compliance topics through the backend's install lifecycle and
//! refuses the others with a 503 so that Shopify retries them. Issue #5 adds the durable delivery
//! log written before every 200, the event envelope, the transactional outbox, the `EventBus`
//! adapters (the local durable bus and Amazon EventBridge), the consumers that turn deliveries into
//! order history, and the operators' replay tooling. It never talks to a database driver directly:
//! storage goes through `ordernimbus_backend::store::Store`.

pub mod eventbridge;
pub mod receiver;
pub mod sqs;
pub mod verify;
