//! The `Store` conformance suite, written once against `&dyn Store`. Each adapter runs every check on
//! a fresh store (SQLite here; DynamoDB joins in issue #7).

use chrono::{NaiveDate, Utc};
use ordernimbus_backend::domain::{
    ApiKey, Backtest, ComplianceEntry, DataRequest, DayRange, EraseOutcome, ForecastPoint,
    InstallState, LineIdentity, Location, NewInstall, NewTenant, SalesLine, SalesQuery,
    SealedCredentials, SeriesForecast, Sku, StockLevel, TenantId, Timezone, UninstallOutcome,
};
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::store::sqlite::SqliteStore;
use ordernimbus_backend::store::{ImportReport, SalesWrite, Store, StoreError, UploadStatus};

fn report(upload_id: &str) -> ImportReport {
    ImportReport {
        upload_id: upload_id.to_owned(),
        format: Some("canonical".into()),
        filename: None,
        status: UploadStatus::Running,
        rows_read: 0,
        rows_imported: 0,
        rows_duplicate: 0,
        rows_updated: 0,
        rows_rejected: 0,
        errors: vec![],
        first_date: None,
        last_date: None,
        started_at: Utc::now(),
        finished_at: None,
    }
}

fn line(identity: &str, day: u32, sku: &str, units: f64) -> SalesLine {
    SalesLine {
        identity: LineIdentity::of(&[identity.as_bytes()]),
        date: NaiveDate::from_ymd_opt(2024, 3, day).unwrap(),
        sku: Sku::parse(sku).unwrap(),
        location: Location::default(),
        product: None,
        units,
        revenue: units * 2.0,
    }
}

async fn tenant(store: &dyn Store) -> TenantId {
    let id = TenantId::generate();
    let new = NewTenant::parse("Conformance", "UTC").unwrap();
    store
        .create_tenant(&id, &new, ApiKey::generate().hash())
        .await
        .unwrap();
    id
}

async fn units(store: &dyn Store, tenant: &TenantId) -> Vec<(String, f64)> {
    store
        .sales(tenant, &SalesQuery::default())
        .await
        .unwrap()
        .into_iter()
        .map(|day| (format!("{} {}", day.date, day.sku.as_str()), day.units))
        .collect()
}

fn written(imported: u64, duplicate: u64, updated: u64) -> SalesWrite {
    SalesWrite {
        imported,
        duplicate,
        updated,
    }
}

pub async fn tenants_and_api_keys_round_trip(store: &dyn Store) {
    let key = ApiKey::generate();
    let id = TenantId::generate();
    let new = NewTenant::parse("Acme", "Europe/Berlin").unwrap();
    let created = store.create_tenant(&id, &new, key.hash()).await.unwrap();
    assert_eq!(store.tenant(&id).await.unwrap(), created);
    assert_eq!(
        store.tenant_by_api_key(key.hash()).await.unwrap(),
        Some(created.clone())
    );
    assert_eq!(
        store
            .tenant_by_api_key(ApiKey::generate().hash())
            .await
            .unwrap(),
        None
    );
    let second = ApiKey::generate();
    store.add_api_key(&id, second.hash()).await.unwrap();
    assert_eq!(
        store.tenant_by_api_key(second.hash()).await.unwrap(),
        Some(created)
    );
    assert!(matches!(
        store
            .create_tenant(&id, &new, ApiKey::generate().hash())
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.tenant(&TenantId::generate()).await,
        Err(StoreError::NotFound {
            entity: "tenant",
            ..
        })
    ));
}

pub async fn sales_lines_are_deduplicated_updated_and_repeated(store: &dyn Store) {
    let tenant = tenant(store).await;
    store.begin_upload(&tenant, &report("up_1")).await.unwrap();
    let first = vec![
        line("a", 1, "X", 1.0),
        line("a", 1, "X", 1.0),
        line("b", 2, "X", 3.0),
    ];
    assert_eq!(
        store
            .write_sales(&tenant, &"up_1".into(), first.clone())
            .await
            .unwrap(),
        written(3, 0, 0)
    );
    assert_eq!(
        units(store, &tenant).await,
        [("2024-03-01 X".into(), 2.0), ("2024-03-02 X".into(), 3.0)]
    );

    store.begin_upload(&tenant, &report("up_2")).await.unwrap();
    let mut second = first;
    second[2].units = 5.0;
    second.push(line("a", 1, "X", 1.0));
    assert_eq!(
        store
            .write_sales(&tenant, &"up_2".into(), second)
            .await
            .unwrap(),
        written(1, 2, 1)
    );
    assert_eq!(
        units(store, &tenant).await,
        [("2024-03-01 X".into(), 3.0), ("2024-03-02 X".into(), 5.0)]
    );
}

pub async fn a_tenants_lines_never_collide_with_anothers(store: &dyn Store) {
    let one = tenant(store).await;
    let two = tenant(store).await;
    for tenant in [&one, &two] {
        store
            .begin_upload(tenant, &report(&format!("up_{tenant}")))
            .await
            .unwrap();
        let outcome = store
            .write_sales(
                tenant,
                &format!("up_{tenant}"),
                vec![line("same", 1, "X", 1.0)],
            )
            .await
            .unwrap();
        assert_eq!(outcome, written(1, 0, 0));
    }
    assert!(matches!(
        store.upload(&two, &format!("up_{one}")).await,
        Err(StoreError::NotFound {
            entity: "upload",
            ..
        })
    ));
    assert!(matches!(
        store
            .write_sales(&two, &format!("up_{one}"), vec![line("z", 1, "Z", 1.0)])
            .await,
        Err(StoreError::NotFound {
            entity: "upload",
            ..
        })
    ));
    assert_eq!(units(store, &one).await, [("2024-03-01 X".into(), 1.0)]);
}

pub async fn uploads_are_listed_newest_first_with_their_final_report(store: &dyn Store) {
    let tenant = tenant(store).await;
    for id in ["up_a", "up_b", "up_c"] {
        store.begin_upload(&tenant, &report(id)).await.unwrap();
    }
    let mut done = report("up_b");
    done.status = UploadStatus::Complete;
    done.rows_read = 7;
    store.finish_upload(&tenant, &done).await.unwrap();
    let listed: Vec<String> = store
        .uploads(&tenant, 2)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.upload_id)
        .collect();
    assert_eq!(listed, ["up_c", "up_b"]);
    assert_eq!(store.upload(&tenant, &"up_b".into()).await.unwrap(), done);
}

pub async fn daily_units_sum_series_per_day_and_location(store: &dyn Store) {
    let tenant = tenant(store).await;
    let other = tenant_with_sales(store).await;
    store.begin_upload(&tenant, &report("up_d")).await.unwrap();
    let mut north = line("n", 2, "A", 4.0);
    north.location = Location::parse("North").unwrap();
    let lines = vec![
        line("a1", 1, "A", 1.0),
        line("b1", 1, "B", 2.0),
        line("a3", 3, "A", -1.0),
        north,
    ];
    store
        .write_sales(&tenant, &"up_d".into(), lines)
        .await
        .unwrap();
    let day = |d| NaiveDate::from_ymd_opt(2024, 3, d).unwrap();
    let all = store
        .daily_units(&tenant, None, DayRange::default())
        .await
        .unwrap();
    assert_eq!(all, [(day(1), 3.0), (day(2), 4.0), (day(3), -1.0)]);
    let window = DayRange {
        from: Some(day(2)),
        to: Some(day(2)),
    };
    assert_eq!(
        store.daily_units(&tenant, None, window).await.unwrap(),
        [(day(2), 4.0)]
    );
    let north = Location::parse("North").unwrap();
    assert_eq!(
        store
            .daily_units(&tenant, Some(&north), DayRange::default())
            .await
            .unwrap(),
        [(day(2), 4.0)]
    );
    // The other tenant's sales on the same days count only for it.
    assert_eq!(
        store
            .daily_units(&other, None, DayRange::default())
            .await
            .unwrap(),
        [(day(1), 9.0)]
    );
}

async fn tenant_with_sales(store: &dyn Store) -> TenantId {
    let tenant = tenant(store).await;
    store.begin_upload(&tenant, &report("up_o")).await.unwrap();
    store
        .write_sales(&tenant, &"up_o".into(), vec![line("o", 1, "A", 9.0)])
        .await
        .unwrap();
    tenant
}

pub async fn forecasts_are_read_as_far_as_asked(store: &dyn Store) {
    let tenant = tenant(store).await;
    let start = NaiveDate::from_ymd_opt(2024, 4, 1).unwrap();
    let forecast = |sku: &str| SeriesForecast {
        sku: Sku::parse(sku).unwrap(),
        location: Location::default(),
        model: "ADIDA".into(),
        demand_class: None,
        generated_at: Utc::now(),
        points: start
            .iter_days()
            .take(30)
            .enumerate()
            .map(|(step, date)| {
                let step = step as f64;
                ForecastPoint::new(date, step, 0.0, 2.0 * step, 0.0, 3.0 * step)
            })
            .collect(),
        backtest: Backtest::default(),
        candidates: vec![],
    };
    store.begin_upload(&tenant, &report("up_f")).await.unwrap();
    store
        .write_sales(
            &tenant,
            &"up_f".into(),
            vec![line("a", 1, "A", 1.0), line("b", 1, "B", 1.0)],
        )
        .await
        .unwrap();
    assert_eq!(store.oldest_forecast(&tenant).await.unwrap(), None);
    let (a, b) = (forecast("A"), forecast("B"));
    let oldest = a.generated_at.min(b.generated_at);
    store.put_forecasts(&tenant, vec![a, b]).await.unwrap();
    assert_eq!(store.oldest_forecast(&tenant).await.unwrap(), Some(oldest));
    let all = store.forecasts(&tenant, None, None, None).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].points.len(), 30);
    assert_eq!(all[0].points[29].hi95, 87.0);
    let short = store
        .forecasts(&tenant, Some(&Sku::parse("B").unwrap()), None, Some(7))
        .await
        .unwrap();
    assert_eq!(short.len(), 1);
    assert_eq!(short[0].sku.as_str(), "B");
    assert_eq!(short[0].points, all[1].points[..7]);
    // Many series in one call: those with a forecast, in order, each as far as asked.
    let series = |names: &[&str]| -> Vec<(Sku, Location)> {
        names
            .iter()
            .map(|sku| (Sku::parse(sku).unwrap(), Location::default()))
            .collect()
    };
    let listed = store
        .forecasts_of(&tenant, &series(&["B", "NONE", "A", "B"]), Some(7))
        .await
        .unwrap();
    let skus: Vec<&str> = listed
        .iter()
        .map(|forecast| forecast.sku.as_str())
        .collect();
    assert_eq!(skus, ["A", "B"]);
    assert_eq!(listed[1].points, all[1].points[..7]);
    let whole = store
        .forecasts_of(&tenant, &series(&["A"]), None)
        .await
        .unwrap();
    assert_eq!(whole[0].points, all[0].points);
    let elsewhere = [(
        Sku::parse("A").unwrap(),
        Location::parse("Elsewhere").unwrap(),
    )];
    assert!(
        store
            .forecasts_of(&tenant, &elsewhere, None)
            .await
            .unwrap()
            .is_empty()
    );
    let other = tenant_with_sales(store).await;
    assert!(
        store
            .forecasts(&other, None, None, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .forecasts_of(&other, &series(&["A", "B"]), None)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn stock_is_read_for_the_listed_series(store: &dyn Store) {
    let tenant = tenant(store).await;
    let level = |sku: &str, location: &str, on_hand: f64| StockLevel {
        sku: Sku::parse(sku).unwrap(),
        location: Location::parse(location).unwrap(),
        on_hand,
        lead_time_days: 7,
        service_level: 0.95,
        updated_at: Utc::now(),
    };
    store
        .put_stock(
            &tenant,
            vec![
                level("A", "North", 5.0),
                level("A", "South", 6.0),
                level("B", "North", 7.0),
            ],
        )
        .await
        .unwrap();
    let key =
        |sku: &str, location: &str| (Sku::parse(sku).unwrap(), Location::parse(location).unwrap());
    let levels = store
        .stock_of(
            &tenant,
            &[key("B", "North"), key("A", "South"), key("C", "North")],
        )
        .await
        .unwrap();
    let read: Vec<(&str, &str, f64)> = levels
        .iter()
        .map(|level| (level.sku.as_str(), level.location.as_str(), level.on_hand))
        .collect();
    assert_eq!(read, [("A", "South", 6.0), ("B", "North", 7.0)]);
    let other = tenant_with_sales(store).await;
    assert!(
        store
            .stock_of(&other, &[key("A", "North")])
            .await
            .unwrap()
            .is_empty()
    );
}

fn install_of(shop: &str, access: &[u8], at: chrono::DateTime<Utc>) -> NewInstall {
    NewInstall {
        shop: ShopDomain::parse(shop).unwrap(),
        name: "Acme".into(),
        timezone: Timezone::parse("Europe/Berlin").unwrap(),
        scopes: vec!["read_orders".into(), "read_products".into()],
        credentials: SealedCredentials {
            access_token: access.to_vec(),
            access_expires_at: Some(at + chrono::Duration::hours(1)),
            refresh_token: Some(b"sealed-refresh".to_vec()),
            refresh_expires_at: Some(at + chrono::Duration::days(90)),
        },
        at,
    }
}

pub async fn installs_reinstalls_and_credentials_follow_the_lifecycle(store: &dyn Store) {
    let shop = ShopDomain::parse("acme.myshopify.com").unwrap();
    assert!(store.shop_install(&shop).await.unwrap().is_none());
    let first_at = Utc::now() - chrono::Duration::minutes(10);
    let installed = store
        .install_shop(
            &install_of("acme.myshopify.com", b"one", first_at),
            &TenantId::generate(),
        )
        .await
        .unwrap();
    assert_eq!(installed.state, InstallState::Installed);
    assert_eq!(installed.scopes, ["read_orders", "read_products"]);
    assert_eq!(
        store
            .tenant(&installed.tenant)
            .await
            .unwrap()
            .timezone
            .name(),
        "Europe/Berlin"
    );
    let by_tenant = store
        .shop_of_tenant(&installed.tenant)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_tenant.shop, shop);

    // A refresh replaces the pair only over the token it was made from.
    let newer = SealedCredentials {
        access_token: b"two".to_vec(),
        ..installed.credentials.clone().unwrap()
    };
    store
        .replace_credentials(&shop, b"one", Some(newer.clone()))
        .await
        .unwrap();
    assert!(matches!(
        store.replace_credentials(&shop, b"one", Some(newer)).await,
        Err(StoreError::Conflict { .. })
    ));
    let stored = store.shop_install(&shop).await.unwrap().unwrap();
    assert_eq!(stored.credentials.unwrap().access_token, b"two");

    // An uninstall triggered before the install is stale; a later one uninstalls.
    assert_eq!(
        store
            .uninstall_shop(&shop, first_at - chrono::Duration::seconds(1))
            .await
            .unwrap(),
        UninstallOutcome::StaleAfterReinstall
    );
    assert_eq!(
        store.uninstall_shop(&shop, Utc::now()).await.unwrap(),
        UninstallOutcome::Uninstalled
    );
    assert_eq!(
        store.uninstall_shop(&shop, Utc::now()).await.unwrap(),
        UninstallOutcome::AlreadyUninstalled
    );
    let gone = store.shop_install(&shop).await.unwrap().unwrap();
    assert_eq!(gone.state, InstallState::Uninstalled);
    assert!(gone.credentials.is_none());
    assert!(
        store
            .replace_credentials(&shop, b"two", None)
            .await
            .is_err()
    );

    // Reinstall: the same tenant again, with new credentials.
    let again = store
        .install_shop(
            &install_of("acme.myshopify.com", b"three", Utc::now()),
            &TenantId::generate(),
        )
        .await
        .unwrap();
    assert_eq!(again.tenant, installed.tenant);
    assert!(
        store
            .set_shop_scopes(&shop, &["read_orders".to_owned()])
            .await
            .unwrap()
    );
    assert_eq!(
        store.shop_install(&shop).await.unwrap().unwrap().scopes,
        ["read_orders"]
    );
    let unknown = ShopDomain::parse("nobody.myshopify.com").unwrap();
    assert!(!store.set_shop_scopes(&unknown, &[]).await.unwrap());
    assert_eq!(
        store.uninstall_shop(&unknown, Utc::now()).await.unwrap(),
        UninstallOutcome::UnknownShop
    );
}

pub async fn shop_erasure_removes_every_record_of_the_shop_and_no_other(store: &dyn Store) {
    let shop = ShopDomain::parse("gone.myshopify.com").unwrap();
    let install = store
        .install_shop(
            &install_of("gone.myshopify.com", b"t", Utc::now()),
            &TenantId::generate(),
        )
        .await
        .unwrap();
    let neighbour = tenant_with_sales(store).await;
    let upload = "up_00000000000000000077".to_owned();
    store
        .begin_upload(&install.tenant, &report(&upload))
        .await
        .unwrap();
    store
        .write_sales(&install.tenant, &upload, vec![line("x", 1, "A", 2.0)])
        .await
        .unwrap();
    assert_eq!(
        store.erase_shop(&shop).await.unwrap(),
        EraseOutcome::SkippedReinstalled
    );
    assert_eq!(units(store, &install.tenant).await.len(), 1);
    store.uninstall_shop(&shop, Utc::now()).await.unwrap();
    assert_eq!(store.erase_shop(&shop).await.unwrap(), EraseOutcome::Erased);
    assert!(store.shop_install(&shop).await.unwrap().is_none());
    assert!(matches!(
        store.tenant(&install.tenant).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        !units(store, &neighbour).await.is_empty(),
        "another tenant's sales stay"
    );
    assert_eq!(
        store.erase_shop(&shop).await.unwrap(),
        EraseOutcome::UnknownShop
    );
    // A reinstall after erasure starts a new tenant from nothing.
    let fresh = store
        .install_shop(
            &install_of("gone.myshopify.com", b"u", Utc::now()),
            &TenantId::generate(),
        )
        .await
        .unwrap();
    assert_ne!(fresh.tenant, install.tenant);
    assert!(units(store, &fresh.tenant).await.is_empty());
}

pub async fn compliance_log_and_data_requests_are_per_shop_and_idempotent(store: &dyn Store) {
    let shop = ShopDomain::parse("acme.myshopify.com").unwrap();
    let other = ShopDomain::parse("other.myshopify.com").unwrap();
    let entry = ComplianceEntry {
        shop: shop.clone(),
        topic: "customers/redact".into(),
        webhook_id: "wh-1".into(),
        handled_at: Utc::now(),
        outcome: "redacted".into(),
        detail: serde_json::json!({ "records_erased": 1 }),
    };
    assert!(store.record_compliance(&entry).await.unwrap());
    assert!(
        !store.record_compliance(&entry).await.unwrap(),
        "one entry per delivery"
    );
    assert_eq!(store.compliance_log(&shop).await.unwrap(), [entry]);
    assert!(store.compliance_log(&other).await.unwrap().is_empty());
    let request = DataRequest {
        shop: shop.clone(),
        request_id: "9999".into(),
        customer_id: "207119551".into(),
        orders_requested: vec!["299938".into()],
        received_at: Utc::now(),
    };
    store.put_data_request(&request).await.unwrap();
    store.put_data_request(&request).await.unwrap();
    assert_eq!(store.data_requests(&shop).await.unwrap().len(), 1);
    assert!(store.data_requests(&other).await.unwrap().is_empty());
    assert_eq!(store.redact_customer(&other, "207119551").await.unwrap(), 0);
    assert_eq!(store.redact_customer(&shop, "207119551").await.unwrap(), 1);
    assert!(store.data_requests(&shop).await.unwrap().is_empty());
}

macro_rules! conformance_on_sqlite {
    ($($check:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    let directory = tempfile::tempdir().unwrap();
                    let store = super::SqliteStore::open(directory.path().join("store.sqlite3")).unwrap();
                    super::$check(&store).await;
                    store.close().await;
                }
            )*
        }
    };
}

conformance_on_sqlite!(
    tenants_and_api_keys_round_trip,
    sales_lines_are_deduplicated_updated_and_repeated,
    a_tenants_lines_never_collide_with_anothers,
    uploads_are_listed_newest_first_with_their_final_report,
    daily_units_sum_series_per_day_and_location,
    forecasts_are_read_as_far_as_asked,
    stock_is_read_for_the_listed_series,
    installs_reinstalls_and_credentials_follow_the_lifecycle,
    shop_erasure_removes_every_record_of_the_shop_and_no_other,
    compliance_log_and_data_requests_are_per_shop_and_idempotent,
);
