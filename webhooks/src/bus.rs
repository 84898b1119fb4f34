//! Bus adapters: `local::LocalBus`, the durable in-process bus used on one machine. (The EventBridge
//! adapter and the SQS worker that consumes it live in `eventbridge` and `sqs`.)

pub mod local;
