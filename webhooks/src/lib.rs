//! The webhook pipeline of OrderNimbus: `verify` (Shopify's HMAC over the raw body, checked in
//! constant time against the current and previous app secret before anything else is read), the
//! `receiver` (`POST /webhooks`: verify, store the delivery durably, then 200), the `outbox`
//! (publishes stored deliveries to the bus and records each outcome), the bus adapters
//! (`bus::local::LocalBus`, the durable in-process bus; `eventbridge::EventBridgeBus`), the SQS
//! `Worker` that consumes EventBridge's rule target in the cloud (`sqs`), and the `consumer` that
//! applies a delivery (orders → daily sales, catalogue and stock, lifecycle and compliance). It never
//! talks to a database driver directly: storage goes through `ordernimbus_backend::store::Store`.

pub mod bus;
pub mod consumer;
pub mod eventbridge;
pub mod outbox;
pub mod receiver;
pub mod sqs;
pub mod verify;
