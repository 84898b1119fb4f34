//! Order sync against the simulator: the first sync after install backfills every order through a
//! bulk operation, reconciliation heals what webhooks missed, and each failure Shopify can produce
//! ends in either the exact ground truth or a clear, recorded error.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::Parser;
use ordernimbus::config::{Cli, Command};
use ordernimbus_backend::domain::{
    DayRange, Granularity, SalesQuery, SyncState, SyncStatus, TenantId,
};
use ordernimbus_backend::store::Store;
use ordernimbus_e2e::{BulkFault, DeliveryOptions, Demand, DemandKey, ShopSeed, SyntheticOrders};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{API_KEY, API_SECRET, Harness};

const BULK_SHOP: &str = "bulk-outfitters.myshopify.com";

/// The app with fast polling, and a shop of `n_orders` synthetic orders (not installed yet).
async fn app_with_shop(n_orders: u64) -> Harness {
    let app = Harness::start_with_args(
        |config| config.bulk_operation_duration = Duration::from_millis(300),
        &["--sync-poll-seconds", "1"],
    )
    .await;
    let mut seed = ShopSeed::new(BULK_SHOP);
    seed.iana_timezone = "America/Los_Angeles".into();
    seed.synthetic_orders = Some(SyntheticOrders {
        ends_at: Some("2026-06-01T00:00:00Z".parse().unwrap()),
        ..SyntheticOrders::new(7, n_orders)
    });
    app.sim.add_shop(seed);
    app
}

/// `GET /api/v1/sync` as the shop.
async fn sync_status(app: &Harness) -> Value {
    let (status, _, body) = app
        .get_as(&app.session_token(BULK_SHOP), "/api/v1/sync")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Waits until the shop's sync is no longer running; returns its status.
async fn settled(app: &Harness) -> Value {
    for _ in 0..600 {
        let status = sync_status(app).await;
        if status["state"] == "completed" || status["state"] == "failed" {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sync did not finish: {}", sync_status(app).await);
}

async fn tenant(app: &Harness) -> TenantId {
    app.store()
        .shop_install(&ordernimbus_backend::shopify::shop::ShopDomain::parse(BULK_SHOP).unwrap())
        .await
        .unwrap()
        .unwrap()
        .tenant
}

/// Stored daily sales as the ground truth counts them (zero cells left out).
async fn stored_demand(app: &Harness) -> BTreeMap<DemandKey, Demand> {
    let query = SalesQuery {
        sku: None,
        location: None,
        days: DayRange::default(),
        granularity: Granularity::Day,
    };
    let days = app.store().sales(&tenant(app).await, &query).await.unwrap();
    let mut demand: BTreeMap<DemandKey, Demand> = BTreeMap::new();
    for day in days {
        let key = DemandKey {
            day: day.date,
            sku: day.sku.as_str().to_owned(),
            location: day
                .location
                .as_str()
                .strip_prefix("shopify-location-")
                .map(|id| id.parse().unwrap()),
        };
        let cell = demand.entry(key).or_default();
        cell.units += day.units.round() as i64;
        cell.revenue_cents += (day.revenue * 100.0).round() as i64;
    }
    demand
        .into_iter()
        .filter(|(_, cell)| *cell != Demand::default())
        .collect()
}

/// Runs `ordernimbus sync` in process on the server's data directory, as an operator would.
async fn run_sync_cli(app: &Harness, extra: &[&str]) -> std::process::ExitCode {
    let mut args = vec![
        "ordernimbus".to_owned(),
        "--data-dir".to_owned(),
        app.data_dir.path().to_str().unwrap().to_owned(),
        "sync".to_owned(),
        "--shop".to_owned(),
        BULK_SHOP.to_owned(),
        "--poll-seconds".to_owned(),
        "1".to_owned(),
        "--shopify-api-key".to_owned(),
        API_KEY.to_owned(),
        "--shopify-api-secret".to_owned(),
        API_SECRET.to_owned(),
        "--shopify-app-url".to_owned(),
        app.app_url.clone(),
        "--shopify-admin-url".to_owned(),
        app.sim.admin_url_template(),
    ];
    args.extend(extra.iter().map(|arg| (*arg).to_owned()));
    let cli = Cli::parse_from(args);
    let Command::Sync(args) = &cli.command else {
        unreachable!("parsed a sync command")
    };
    ordernimbus::cli::sync(&cli, args).await.unwrap()
}

#[tokio::test]
async fn the_first_sync_after_install_backfills_every_order_exactly() {
    let app = app_with_shop(1_500).await;
    app.tenant_of(BULK_SHOP).await;
    let status = settled(&app).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["kind"], "backfill");
    assert_eq!(status["orders"], 1_500, "{status}");
    assert_eq!(status["rows_rejected"], 0, "{status}");
    assert!(status["watermark"].is_string(), "{status}");
    assert!(status.get("spool_lengths").is_none());
    let truth = app.sim.ground_truth(BULK_SHOP);
    assert!(truth.len() > 300, "{}", truth.len());
    assert_eq!(stored_demand(&app).await, truth);
    // One bulk operation, and its spool is gone.
    assert_eq!(app.sim.bulk_operations(BULK_SHOP).len(), 1);
    let spool = app.data_dir.path().join("sync").join(BULK_SHOP);
    assert_eq!(std::fs::read_dir(&spool).map_or(0, Iterator::count), 0);
    app.stop().await;
}

#[tokio::test]
async fn reconciliation_heals_orders_changed_after_the_backfill_and_counts_nothing_twice() {
    let app = app_with_shop(400).await;
    app.tenant_of(BULK_SHOP).await;
    assert_eq!(settled(&app).await["state"], "completed");
    // Changes no webhook told us about: a cancellation and a refund of every unit of a line.
    let ids = app.sim.order_ids(BULK_SHOP);
    app.sim
        .update_order(BULK_SHOP, ids[10], |order| {
            order.cancelled_at = Some(order.processed_at + chrono::Duration::hours(1));
        })
        .unwrap();
    app.sim
        .update_order(BULK_SHOP, ids[20], |order| {
            for line in &mut order.line_items {
                line.current_quantity = 0;
            }
        })
        .unwrap();
    assert_ne!(stored_demand(&app).await, app.sim.ground_truth(BULK_SHOP));
    assert_eq!(
        run_sync_cli(&app, &[]).await,
        std::process::ExitCode::SUCCESS
    );
    let status = sync_status(&app).await;
    assert_eq!(status["kind"], "reconcile", "{status}");
    assert_eq!(status["state"], "completed", "{status}");
    assert!(status["orders"].as_u64().unwrap() >= 2, "{status}");
    assert_eq!(stored_demand(&app).await, app.sim.ground_truth(BULK_SHOP));
    // A full backfill again: every order version is already stored, nothing changes.
    assert_eq!(
        run_sync_cli(&app, &["--full"]).await,
        std::process::ExitCode::SUCCESS
    );
    let status = sync_status(&app).await;
    assert_eq!(status["kind"], "backfill");
    assert_eq!(status["orders"], 0, "{status}");
    assert_eq!(status["orders_stale"], 400, "{status}");
    assert_eq!(stored_demand(&app).await, app.sim.ground_truth(BULK_SHOP));
    app.stop().await;
}

#[tokio::test]
async fn a_download_cut_off_half_way_resumes_from_the_last_committed_line() {
    let app = app_with_shop(800).await;
    app.sim.faults().cut_bulk_downloads(2, 100_000);
    app.tenant_of(BULK_SHOP).await;
    let status = settled(&app).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["attempts"], 1, "{status}");
    assert_eq!(stored_demand(&app).await, app.sim.ground_truth(BULK_SHOP));
    app.stop().await;
}

#[tokio::test]
async fn failed_timed_out_and_expired_operations_are_started_again() {
    for fault in [
        BulkFault::Timeout {
            after_root_objects: 250,
        },
        BulkFault::InternalServerError {
            after_root_objects: 250,
        },
        BulkFault::UrlExpired,
    ] {
        let app = app_with_shop(600).await;
        app.sim.faults().fail_next_bulk_query(fault);
        app.tenant_of(BULK_SHOP).await;
        let status = settled(&app).await;
        assert_eq!(status["state"], "completed", "{fault:?}: {status}");
        assert_eq!(status["attempts"], 2, "{fault:?}: {status}");
        assert_eq!(
            stored_demand(&app).await,
            app.sim.ground_truth(BULK_SHOP),
            "{fault:?}"
        );
        app.stop().await;
    }
}

#[tokio::test]
async fn access_denied_fails_the_sync_with_a_clear_error() {
    let app = app_with_shop(100).await;
    app.sim
        .faults()
        .fail_next_bulk_query(BulkFault::AccessDenied);
    app.tenant_of(BULK_SHOP).await;
    let status = settled(&app).await;
    assert_eq!(status["state"], "failed", "{status}");
    let error = status["last_error"].as_str().unwrap();
    assert!(error.contains("denied access"), "{error}");
    assert!(error.contains("read_all_orders"), "{error}");
    assert!(stored_demand(&app).await.is_empty());
    app.stop().await;
}

/// A shop whose first sync is waiting for a bulk operation that runs far longer than the test.
async fn app_waiting_on_a_sync() -> Harness {
    let app = Harness::start_with_args(
        |config| config.bulk_operation_duration = Duration::from_secs(3600),
        &["--sync-poll-seconds", "1"],
    )
    .await;
    let mut seed = ShopSeed::new(BULK_SHOP);
    seed.synthetic_orders = Some(SyntheticOrders::new(7, 100));
    app.sim.add_shop(seed);
    app.tenant_of(BULK_SHOP).await;
    for _ in 0..200 {
        if sync_status(&app).await["phase"] == "waiting" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app
}

/// The stored sync status once it is no longer running.
async fn stopped_sync(app: &Harness) -> SyncStatus {
    let store = app.store();
    let tenant = tenant(app).await;
    for _ in 0..200 {
        let current = store.sync_status(&tenant).await.unwrap().unwrap();
        if current.state != SyncState::Running {
            return current;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sync did not stop");
}

/// The sync failed, and its status says the uninstall was why.
fn assert_stopped_by_uninstall(status: &SyncStatus) {
    assert_eq!(status.state, SyncState::Failed);
    let error = status.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("uninstalled"), "{status:?}");
}

#[tokio::test]
async fn an_uninstall_mid_sync_stops_it_cleanly() {
    let app = app_waiting_on_a_sync().await;
    // The token is revoked at once and the webhook follows: the sync may notice either first.
    let report = app.sim.uninstall(BULK_SHOP).await;
    app.processed(&report).await;
    let status = stopped_sync(&app).await;
    assert_stopped_by_uninstall(&status);
    app.stop().await;
}

#[tokio::test]
async fn a_sync_refused_credentials_before_the_uninstall_webhook_names_the_uninstall_once_it_comes()
{
    let app = app_waiting_on_a_sync().await;
    let payload = app.sim.remove_app(BULK_SHOP).expect("the shop is known");
    // The next poll meets the revoked token, and its renewal is refused: the app cannot know why yet.
    let status = stopped_sync(&app).await;
    assert_eq!(status.state, SyncState::Failed);
    assert!(status.credentials_refused, "{status:?}");
    assert!(
        status.last_error.as_deref().unwrap().contains("renewed"),
        "{status:?}"
    );
    let report = app
        .sim
        .deliver(
            BULK_SHOP,
            "app/uninstalled",
            payload,
            DeliveryOptions::default(),
        )
        .await;
    app.processed(&report).await;
    let status = app
        .store()
        .sync_status(&tenant(&app).await)
        .await
        .unwrap()
        .unwrap();
    assert_stopped_by_uninstall(&status);
    app.stop().await;
}

#[tokio::test]
async fn throttled_calls_during_a_sync_are_waited_out_and_every_order_counts_once() {
    let app = Harness::start_with_args(
        |config| config.bulk_operation_duration = Duration::from_millis(300),
        &["--sync-poll-seconds", "1", "--sync-on-install", "false"],
    )
    .await;
    let mut seed = ShopSeed::new(BULK_SHOP);
    seed.iana_timezone = "America/Los_Angeles".into();
    seed.synthetic_orders = Some(SyntheticOrders {
        ends_at: Some("2026-06-01T00:00:00Z".parse().unwrap()),
        ..SyntheticOrders::new(11, 300)
    });
    app.sim.add_shop(seed);
    app.tenant_of(BULK_SHOP).await;
    // The sync's first GraphQL calls are refused as THROTTLED: twice on HTTP 200, then twice on
    // 429 with Retry-After, as Shopify sends both.
    app.sim.faults().throttle_graphql(2, 200);
    app.sim.faults().throttle_graphql(2, 429);
    assert_eq!(
        run_sync_cli(&app, &["--full"]).await,
        std::process::ExitCode::SUCCESS
    );
    assert_eq!(app.sim.faults().pending_graphql_throttles(), 0);
    let status = sync_status(&app).await;
    assert_eq!(status["state"], "completed", "{status}");
    assert_eq!(status["orders"], 300, "{status}");
    assert_eq!(stored_demand(&app).await, app.sim.ground_truth(BULK_SHOP));
    // Throttled calls were retried, not answered by starting another operation.
    assert_eq!(app.sim.bulk_operations(BULK_SHOP).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_cli_names_bad_input() {
    let app = app_with_shop(10).await;
    let cli = |args: &[&str]| {
        let mut all = vec![
            "ordernimbus",
            "--data-dir",
            app.data_dir.path().to_str().unwrap(),
            "sync",
        ];
        all.extend_from_slice(args);
        Cli::try_parse_from(all)
    };
    assert!(cli(&["--shop", BULK_SHOP, "--since", "2026-01-01", "--full"]).is_err());
    let parsed = cli(&["--shop", "not a shop", "--shopify-api-key", API_KEY]).unwrap();
    let Command::Sync(args) = &parsed.command else {
        unreachable!()
    };
    let error = ordernimbus::cli::sync(&parsed, args).await.unwrap_err();
    assert!(format!("{error:#}").starts_with("--shop"), "{error:#}");
    let parsed = cli(&["--shop", BULK_SHOP, "--since", "last tuesday"]).unwrap();
    let Command::Sync(args) = &parsed.command else {
        unreachable!()
    };
    let error = ordernimbus::cli::sync(&parsed, args).await.unwrap_err();
    assert_eq!(
        format!("{error:#}"),
        "--since: \"last tuesday\" is neither an RFC 3339 time nor a YYYY-MM-DD date"
    );
    // Not installed yet.
    let parsed = cli(&[
        "--shop",
        BULK_SHOP,
        "--shopify-api-key",
        API_KEY,
        "--shopify-api-secret",
        API_SECRET,
        "--shopify-app-url",
        &app.app_url,
    ])
    .unwrap();
    let Command::Sync(args) = &parsed.command else {
        unreachable!()
    };
    let error = ordernimbus::cli::sync(&parsed, args).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("the app is not installed on bulk-outfitters.myshopify.com"),
        "{error:#}"
    );
    app.stop().await;
}
