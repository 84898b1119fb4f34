//! DynamoDB served by moto on loopback: a fresh table per test, so tests run in parallel and never
//! see each other's items. Start moto and export its endpoint first: `eval "$(scripts/moto.sh)"`
//! (scripts/test.sh does it). Without it these tests fail, saying so; they never skip.

use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::config::Credentials;
use ordernimbus_backend::domain::DeliveryRetention;
use ordernimbus_backend::store::Store;
use ordernimbus_backend::store::dynamodb::DynamoStore;

const HOW_TO_START: &str = "start moto and export its endpoint with `eval \"$(scripts/moto.sh)\"` \
    (or run scripts/test.sh, which does it)";

/// A `DynamoStore` on a new table of its own in moto at `AWS_ENDPOINT_URL`, keeping final
/// deliveries for the conformance suite's retention; panics, saying how to start moto, when the
/// variable is unset or moto does not answer.
pub async fn fresh_store() -> DynamoStore {
    fresh_store_and_client().await.0
}

/// A fresh store as [`fresh_store`] makes, and an SDK client on the same moto, for tests that look
/// at the table's items themselves.
pub async fn fresh_store_and_client() -> (DynamoStore, aws_sdk_dynamodb::Client) {
    let config = config().await;
    let table = format!("ordernimbus-test-{:016x}", rand::random::<u64>());
    let store = DynamoStore::from_config(&config, table).with_delivery_retention(
        DeliveryRetention::days(crate::store_conformance::RETENTION_DAYS),
    );
    if let Err(error) = store.create_table().await {
        panic!(
            "moto is not answering at {:?} ({error:?}): {HOW_TO_START}",
            config.endpoint_url()
        );
    }
    store.ping().await.unwrap();
    (store, aws_sdk_dynamodb::Client::new(&config))
}

/// The SDK configuration reaching moto at `AWS_ENDPOINT_URL`; panics, saying how to start moto,
/// when the variable is unset.
pub async fn config() -> aws_config::SdkConfig {
    #[allow(
        clippy::disallowed_methods,
        reason = "the tests find moto through the same variable the SDK reads"
    )]
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .unwrap_or_else(|_| panic!("AWS_ENDPOINT_URL is not set: {HOW_TO_START}"));
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .endpoint_url(&endpoint)
        .load()
        .await
}
