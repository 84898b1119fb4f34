//! The `Store` conformance suite, written once against `&dyn Store`. Each adapter runs every check on
//! a fresh store: a new SQLite file, or a new DynamoDB table in moto (see `crate::moto`).

use chrono::{NaiveDate, Utc};
use ordernimbus_backend::domain::{
    ApiKey, Backtest, CatalogueVariant, ComplianceEntry, DataRequest, DayRange, DeliveryFilter,
    DeliveryLease, DeliveryOutcome, DeliveryReceipt, DeliveryStatus, EraseOutcome, ForecastPoint,
    Granularity, IdentityScheme, InstallState, LineIdentity, Location, NewDelivery, NewInstall,
    NewTenant, OrderApplied, OrderVersion, SalesLine, SalesQuery, SealedCredentials,
    SeriesForecast, Sku, StockLevel, TenantId, Timezone, UninstallOutcome,
};
use ordernimbus_backend::domain::{
    BrowserSecret, DayTotal, ProductQuery, ProductRow, ProductSort, SeriesStats, TenantOverview,
    TenantSettings,
};
use ordernimbus_backend::shopify::shop::ShopDomain;
use ordernimbus_backend::store::sqlite::SqliteStore;
use ordernimbus_backend::store::{ImportReport, SalesWrite, Store, StoreError, UploadStatus};

fn report(upload_id: &str) -> ImportReport {
    ImportReport {
        format: Some("canonical".into()),
        ..ImportReport::running(upload_id.to_owned(), None)
    }
}

fn line(identity: &str, day: u32, sku: &str, units: f64) -> SalesLine {
    SalesLine {
        identity: LineIdentity::of(IdentityScheme::default(), &[identity.as_bytes()]),
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
            .write_sales(&tenant, &"up_1".into(), first.clone().into())
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
            .write_sales(&tenant, &"up_2".into(), second.into())
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
                vec![line("same", 1, "X", 1.0)].into(),
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
            .write_sales(
                &two,
                &format!("up_{one}"),
                vec![line("z", 1, "Z", 1.0)].into()
            )
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
        .write_sales(&tenant, &"up_d".into(), lines.into())
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
        .write_sales(&tenant, &"up_o".into(), vec![line("o", 1, "A", 9.0)].into())
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
            vec![line("a", 1, "A", 1.0), line("b", 1, "B", 1.0)].into(),
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
        .write_sales(
            &install.tenant,
            &upload,
            vec![line("x", 1, "A", 2.0)].into(),
        )
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

fn sale(identity: &str, date: &str, sku: &str, location: &str, units: f64) -> SalesLine {
    SalesLine {
        identity: LineIdentity::of(IdentityScheme::default(), &[identity.as_bytes()]),
        date: date.parse().unwrap(),
        sku: Sku::parse(sku).unwrap(),
        location: Location::parse(location).unwrap(),
        product: None,
        units,
        revenue: units * 2.0,
    }
}

async fn sales_text(store: &dyn Store, tenant: &TenantId, query: SalesQuery) -> Vec<String> {
    store
        .sales(tenant, &query)
        .await
        .unwrap()
        .into_iter()
        .map(|day| {
            format!(
                "{} {} {} {}",
                day.date,
                day.sku.as_str(),
                day.location.as_str(),
                day.units
            )
        })
        .collect()
}

pub async fn sales_are_read_by_sku_location_days_and_week_with_summaries_and_histories(
    store: &dyn Store,
) {
    let tenant = tenant(store).await;
    let _neighbour = tenant_with_sales(store).await;
    store.begin_upload(&tenant, &report("up_s")).await.unwrap();
    let mut tee = sale("a4", "2024-03-06", "A", "North", 4.0);
    tee.product = Some("Tee".into());
    let lines = vec![
        sale("a1", "2024-03-04", "A", "", 1.0),
        sale("a2", "2024-03-05", "A", "", 2.0),
        sale("a3", "2024-03-10", "A", "", 1.0),
        tee,
        sale("b1", "2024-03-11", "B", "", 3.0),
    ];
    store
        .write_sales(&tenant, &"up_s".into(), lines.into())
        .await
        .unwrap();
    let a = Sku::parse("A").unwrap();
    let north = Location::parse("North").unwrap();
    let day = |text: &str| Some(text.parse::<NaiveDate>().unwrap());
    assert_eq!(
        sales_text(
            store,
            &tenant,
            SalesQuery {
                sku: Some(a.clone()),
                ..SalesQuery::default()
            }
        )
        .await,
        [
            "2024-03-06 A North 4",
            "2024-03-04 A default 1",
            "2024-03-05 A default 2",
            "2024-03-10 A default 1"
        ]
    );
    assert_eq!(
        sales_text(
            store,
            &tenant,
            SalesQuery {
                location: Some(north.clone()),
                ..SalesQuery::default()
            }
        )
        .await,
        ["2024-03-06 A North 4"]
    );
    let days = DayRange::new(day("2024-03-05"), day("2024-03-10")).unwrap();
    assert_eq!(
        sales_text(
            store,
            &tenant,
            SalesQuery {
                days,
                ..SalesQuery::default()
            }
        )
        .await,
        [
            "2024-03-06 A North 4",
            "2024-03-05 A default 2",
            "2024-03-10 A default 1"
        ]
    );
    assert_eq!(
        sales_text(
            store,
            &tenant,
            SalesQuery {
                sku: Some(a),
                location: Some(north),
                days,
                ..SalesQuery::default()
            }
        )
        .await,
        ["2024-03-06 A North 4"]
    );
    assert_eq!(
        sales_text(
            store,
            &tenant,
            SalesQuery {
                granularity: Granularity::Week,
                ..SalesQuery::default()
            }
        )
        .await,
        [
            "2024-03-04 A North 4",
            "2024-03-04 A default 4",
            "2024-03-11 B default 3"
        ]
    );

    let summaries: Vec<String> = store
        .skus(&tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|summary| {
            let locations: Vec<&str> = summary.locations.iter().map(Location::as_str).collect();
            format!(
                "{} {:?} {} {}..{} {} {}",
                summary.sku.as_str(),
                summary.product,
                locations.join("+"),
                summary.first_sale,
                summary.last_sale,
                summary.units,
                summary.revenue
            )
        })
        .collect();
    assert_eq!(
        summaries,
        [
            "A Some(\"Tee\") North+default 2024-03-04..2024-03-10 8 16",
            "B None default 2024-03-11..2024-03-11 3 6"
        ]
    );

    let histories: Vec<String> = store
        .sales_history(&tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|history| {
            format!(
                "{} {} {} {:?}",
                history.sku.as_str(),
                history.location.as_str(),
                history.start,
                history.units
            )
        })
        .collect();
    assert_eq!(
        histories,
        [
            "A North 2024-03-06 [4.0, 0.0, 0.0, 0.0, 0.0, 0.0]",
            "A default 2024-03-04 [1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]",
            "B default 2024-03-11 [3.0]"
        ]
    );
}

pub async fn tenants_are_listed_oldest_first_and_unknown_tenants_are_not_found(store: &dyn Store) {
    let mut created = Vec::new();
    for _ in 0..3 {
        created.push(tenant(store).await);
    }
    let listed: Vec<TenantId> = store
        .tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|tenant| tenant.id)
        .collect();
    assert_eq!(listed, created);
    let unknown = TenantId::generate();
    assert!(matches!(
        store.begin_upload(&unknown, &report("up_x")).await,
        Err(StoreError::NotFound {
            entity: "tenant",
            ..
        })
    ));
    assert!(matches!(
        store.add_api_key(&unknown, ApiKey::generate().hash()).await,
        Err(StoreError::NotFound {
            entity: "tenant",
            ..
        })
    ));
    assert!(matches!(
        store.daily_units(&unknown, None, DayRange::default()).await,
        Err(StoreError::NotFound {
            entity: "tenant",
            ..
        })
    ));
    assert!(matches!(
        store
            .finish_upload(&created[0], &report("up_never_begun"))
            .await,
        Err(StoreError::NotFound {
            entity: "upload",
            ..
        })
    ));
}

fn order_line(order: &str, line: &str, sku: &str, units: f64) -> SalesLine {
    SalesLine {
        identity: LineIdentity::of(
            IdentityScheme::default(),
            &[order.as_bytes(), line.as_bytes()],
        ),
        ..sale("unused", "2024-03-01", sku, "", units)
    }
}

pub async fn order_versions_apply_newest_first_and_drop_missing_lines(store: &dyn Store) {
    let tenant = tenant(store).await;
    let at =
        |minutes: i64| Utc::now() - chrono::Duration::hours(1) + chrono::Duration::minutes(minutes);
    let version = |minutes: i64, lines: Vec<SalesLine>| OrderVersion {
        order_id: "1001".into(),
        updated_at: at(minutes),
        lines,
    };
    let first = version(
        10,
        vec![
            order_line("1001", "1", "A", 2.0),
            order_line("1001", "2", "B", 1.0),
        ],
    );
    assert_eq!(
        store.apply_order(&tenant, &first).await.unwrap(),
        OrderApplied::Applied {
            imported: 2,
            updated: 0
        }
    );
    assert_eq!(
        store.apply_order(&tenant, &first).await.unwrap(),
        OrderApplied::Stale
    );
    let older = version(5, vec![order_line("1001", "1", "A", 9.0)]);
    assert_eq!(
        store.apply_order(&tenant, &older).await.unwrap(),
        OrderApplied::Stale
    );
    assert_eq!(
        units(store, &tenant).await,
        [("2024-03-01 A".into(), 2.0), ("2024-03-01 B".into(), 1.0)]
    );
    // An edit: line 1 down to one unit, line 2 removed (its units drop to zero).
    let edited = version(20, vec![order_line("1001", "1", "A", 1.0)]);
    assert_eq!(
        store.apply_order(&tenant, &edited).await.unwrap(),
        OrderApplied::Applied {
            imported: 0,
            updated: 2
        }
    );
    assert_eq!(
        units(store, &tenant).await,
        [("2024-03-01 A".into(), 1.0), ("2024-03-01 B".into(), 0.0)]
    );
    // The same order id is another tenant's own order.
    let other = tenant_with_sales(store).await;
    assert_eq!(
        store.apply_order(&other, &first).await.unwrap(),
        OrderApplied::Applied {
            imported: 2,
            updated: 0
        }
    );
    assert_eq!(
        units(store, &tenant).await,
        [("2024-03-01 A".into(), 1.0), ("2024-03-01 B".into(), 0.0)]
    );
}

pub async fn order_batches_sync_status_and_bulk_signals_are_per_tenant(store: &dyn Store) {
    use ordernimbus_backend::domain::{OrdersApplied, SyncState, SyncStatus};
    let tenant = tenant(store).await;
    let base = Utc::now() - chrono::Duration::hours(1);
    let at = |minutes: i64| base + chrono::Duration::minutes(minutes);
    let version = |id: &str, minutes: i64, units: f64| OrderVersion {
        order_id: id.into(),
        updated_at: at(minutes),
        lines: vec![order_line(id, "1", "A", units)],
    };
    // One batch: order 1 twice (the newer counts, the older is stale) and order 2.
    let batch = vec![
        version("1", 10, 5.0),
        version("2", 10, 1.0),
        version("1", 20, 3.0),
    ];
    assert_eq!(
        store.apply_orders(&tenant, batch).await.unwrap(),
        OrdersApplied {
            applied: 2,
            stale: 1,
            lines_imported: 2,
            lines_updated: 0
        }
    );
    assert_eq!(units(store, &tenant).await, [("2024-03-01 A".into(), 4.0)]);
    // A webhook's version of order 2 no newer than the batch's changes nothing; a newer one wins.
    assert_eq!(
        store
            .apply_order(&tenant, &version("2", 10, 9.0))
            .await
            .unwrap(),
        OrderApplied::Stale
    );
    let again = vec![version("1", 15, 7.0), version("2", 30, 2.0)];
    assert_eq!(
        store.apply_orders(&tenant, again).await.unwrap(),
        OrdersApplied {
            applied: 1,
            stale: 1,
            lines_imported: 0,
            lines_updated: 1
        }
    );
    assert_eq!(units(store, &tenant).await, [("2024-03-01 A".into(), 5.0)]);

    // Sync status: none until written, then the last one written, per tenant.
    let other = tenant_with_sales(store).await;
    assert_eq!(store.sync_status(&tenant).await.unwrap(), None);
    let mut status = SyncStatus {
        shop: "acme.myshopify.com".into(),
        state: SyncState::default(),
        orders: 12,
        bulk_operation_id: Some("gid://shopify/BulkOperation/1".into()),
        watermark: Some(at(0)),
        ..SyncStatus::default()
    };
    store.put_sync_status(&tenant, &status).await.unwrap();
    status.orders = 40;
    status.last_error = Some("THROTTLED".into());
    store.put_sync_status(&tenant, &status).await.unwrap();
    assert_eq!(store.sync_status(&tenant).await.unwrap(), Some(status));
    assert_eq!(store.sync_status(&other).await.unwrap(), None);

    // Bulk-finished signals: idempotent, per tenant and operation.
    let operation = "gid://shopify/BulkOperation/7";
    assert!(!store.bulk_finished(&tenant, operation).await.unwrap());
    store
        .signal_bulk_finished(&tenant, operation)
        .await
        .unwrap();
    store
        .signal_bulk_finished(&tenant, operation)
        .await
        .unwrap();
    assert!(store.bulk_finished(&tenant, operation).await.unwrap());
    assert!(!store.bulk_finished(&other, operation).await.unwrap());
    assert!(
        !store
            .bulk_finished(&tenant, "gid://shopify/BulkOperation/8")
            .await
            .unwrap()
    );
    // Unknown tenants are refused.
    let unknown = TenantId::generate();
    assert!(matches!(
        store
            .put_sync_status(&unknown, &SyncStatus::default())
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

fn level(sku: &str, location: &str, on_hand: f64) -> StockLevel {
    StockLevel::new(
        Sku::parse(sku).unwrap(),
        Location::parse(location).unwrap(),
        on_hand,
        None,
        None,
        Utc::now(),
    )
    .unwrap()
}

fn variant(id: &str, item: Option<&str>, sku: &str) -> CatalogueVariant {
    CatalogueVariant {
        variant_id: id.into(),
        inventory_item_id: item.map(str::to_owned),
        sku: Sku::parse(sku).unwrap(),
    }
}

pub async fn stock_levels_and_catalogue_lookups_are_replaced_per_key(store: &dyn Store) {
    let other = tenant(store).await;
    let tenant = tenant(store).await;
    store
        .put_stock(&tenant, vec![level("A", "", 5.0), level("B", "North", 2.0)])
        .await
        .unwrap();
    let newer = level("A", "", 7.0);
    store.put_stock(&tenant, vec![newer.clone()]).await.unwrap();
    let stock = store.stock(&tenant, None).await.unwrap();
    assert_eq!(stock.len(), 2);
    assert_eq!(stock[0], newer);
    assert_eq!((stock[1].sku.as_str(), stock[1].on_hand), ("B", 2.0));
    let b = store
        .stock(&tenant, Some(&Sku::parse("B").unwrap()))
        .await
        .unwrap();
    assert_eq!(b, stock[1..]);
    assert!(store.stock(&other, None).await.unwrap().is_empty());

    let sku_of = |item: &'static str, tenant: TenantId| async move {
        store
            .sku_of_inventory_item(&tenant, item)
            .await
            .unwrap()
            .map(|sku| sku.as_str().to_owned())
    };
    store
        .put_product(
            &tenant,
            "p1",
            vec![variant("v1", Some("i1"), "A"), variant("v2", None, "B")],
        )
        .await
        .unwrap();
    assert_eq!(sku_of("i1", tenant.clone()).await.as_deref(), Some("A"));
    assert_eq!(sku_of("i9", tenant.clone()).await, None);
    assert_eq!(sku_of("i1", other.clone()).await, None);
    store
        .put_product(&tenant, "p1", vec![variant("v1", Some("i2"), "A2")])
        .await
        .unwrap();
    assert_eq!(sku_of("i1", tenant.clone()).await, None);
    assert_eq!(sku_of("i2", tenant.clone()).await.as_deref(), Some("A2"));
    store.put_product(&tenant, "p1", vec![]).await.unwrap();
    assert_eq!(sku_of("i2", tenant.clone()).await, None);
}

pub async fn an_older_stock_level_never_replaces_a_newer_one(store: &dyn Store) {
    let tenant = tenant(store).await;
    let base = Utc::now() - chrono::Duration::hours(1);
    let at = |seconds: i64, sku: &str, on_hand: f64| StockLevel {
        updated_at: base + chrono::Duration::seconds(seconds),
        ..level(sku, "North", on_hand)
    };
    let on_hand = || async {
        store
            .stock(&tenant, None)
            .await
            .unwrap()
            .into_iter()
            .map(|level| (level.sku.as_str().to_owned(), level.on_hand))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        store
            .put_stock(&tenant, vec![at(10, "A", 5.0)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .put_stock(&tenant, vec![at(5, "A", 9.0)])
            .await
            .unwrap(),
        0,
        "an older level is not stored"
    );
    assert_eq!(
        store.stock(&tenant, None).await.unwrap(),
        [at(10, "A", 5.0)]
    );
    // Per SKU and location: an older A is left out, a first B stored.
    assert_eq!(
        store
            .put_stock(&tenant, vec![at(9, "A", 1.0), at(1, "B", 2.0)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(on_hand().await, [("A".into(), 5.0), ("B".into(), 2.0)]);
    // A newer level replaces the stored one; of repeats in one call, the newest wins.
    store
        .put_stock(
            &tenant,
            vec![at(40, "B", 3.0), at(20, "A", 7.0), at(30, "B", 4.0)],
        )
        .await
        .unwrap();
    assert_eq!(on_hand().await, [("A".into(), 7.0), ("B".into(), 3.0)]);
    // Writers racing with levels of one SKU and location: the newest is kept, whichever arrives
    // last.
    let racing = [(103, 3.0), (101, 1.0), (105, 5.0), (102, 2.0), (104, 4.0)];
    let writes = racing
        .iter()
        .map(|(seconds, units)| store.put_stock(&tenant, vec![at(*seconds, "C", *units)]));
    for stored in futures_util::future::join_all(writes).await {
        stored.unwrap();
    }
    assert_eq!(
        store
            .stock(&tenant, Some(&Sku::parse("C").unwrap()))
            .await
            .unwrap(),
        [at(105, "C", 5.0)]
    );
}

fn delivery(webhook_id: &str, shop: &str, event_id: Option<&str>, body: &[u8]) -> NewDelivery {
    NewDelivery {
        webhook_id: webhook_id.into(),
        shop: ShopDomain::parse(shop).unwrap(),
        topic: "orders/create".into(),
        api_version: "2026-01".into(),
        event_id: event_id.map(str::to_owned),
        triggered_at: Some(Utc::now()),
        received_at: Utc::now(),
        headers: vec![("X-Shopify-Topic".into(), "orders/create".into())],
        body: body.to_vec(),
    }
}

fn ids(records: &[ordernimbus_backend::domain::DeliveryRecord]) -> Vec<&str> {
    records
        .iter()
        .map(|record| record.webhook_id.as_str())
        .collect()
}

fn outcomes(record: &ordernimbus_backend::domain::DeliveryRecord) -> Vec<&str> {
    record
        .history
        .iter()
        .map(|step| step.outcome.as_str())
        .collect()
}

fn lease(owner: &str, until: chrono::DateTime<Utc>) -> DeliveryLease {
    DeliveryLease {
        owner: owner.into(),
        until,
    }
}

fn published(webhook_id: &str) -> DeliveryOutcome {
    DeliveryOutcome::new(
        webhook_id,
        Some(DeliveryStatus::Published),
        "published",
        None,
        false,
    )
}

pub async fn pending_deliveries_are_claimed_by_one_outbox_at_a_time(store: &dyn Store) {
    let now = Utc::now();
    let (later, after) = (
        now + chrono::Duration::minutes(1),
        now + chrono::Duration::minutes(2),
    );
    let shop = "claims.myshopify.com";
    let mut all = Vec::new();
    for round in 0..3 {
        let stored: Vec<String> = (0..6).map(|index| format!("c{round}-{index}")).collect();
        for webhook_id in &stored {
            store
                .put_delivery(&delivery(webhook_id, shop, None, webhook_id.as_bytes()))
                .await
                .unwrap();
        }
        all.extend(stored.clone());
        // Two outboxes claim at once, a third takes what is left: no delivery is claimed twice.
        let (a, b) = (
            lease(&format!("a{round}"), later),
            lease(&format!("b{round}"), later),
        );
        let (first, second) = tokio::join!(
            store.claim_deliveries(&a, now, 4, false),
            store.claim_deliveries(&b, now, 4, false),
        );
        let rest = store
            .claim_deliveries(&lease(&format!("c{round}"), later), now, 100, false)
            .await
            .unwrap();
        let mut claimed: Vec<String> = [first.unwrap(), second.unwrap(), rest]
            .iter()
            .flat_map(|records| ids(records))
            .map(str::to_owned)
            .collect();
        claimed.sort();
        assert_eq!(claimed, stored, "round {round}");
    }
    // Claims that still hold keep others out; once they ran out, anyone may claim.
    let other = lease("d", after + chrono::Duration::minutes(1));
    assert!(
        store
            .claim_deliveries(&other, now, 100, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.pending_deliveries(100, false).await.unwrap().len(),
        18
    );
    let taken = store
        .claim_deliveries(&other, after, 100, true)
        .await
        .unwrap();
    assert_eq!(
        ids(&taken),
        all.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(taken[0].body, b"c0-0");
    // An owner renews its own claims.
    assert_eq!(
        store
            .claim_deliveries(&other, after, 2, false)
            .await
            .unwrap()
            .len(),
        2
    );
}

pub async fn a_claimed_outcome_never_overwrites_a_recorded_status(store: &dyn Store) {
    let now = Utc::now();
    let (later, after) = (
        now + chrono::Duration::minutes(1),
        now + chrono::Duration::minutes(2),
    );
    let shop = "outcomes.myshopify.com";
    for webhook_id in ["w1", "w2", "w3", "w4", "w5"] {
        store
            .put_delivery(&delivery(webhook_id, shop, None, b"{}"))
            .await
            .unwrap();
    }
    let status = |webhook_id: &'static str| async move {
        store.delivery(webhook_id).await.unwrap().unwrap().status
    };
    let claimed = store
        .claim_deliveries(&lease("a", later), now, 4, false)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["w1", "w2", "w3", "w4"]);
    // Only the owner records; a retryable failure releases the claim for anyone.
    assert_eq!(
        store
            .record_claimed_deliveries("b", vec![published("w1")])
            .await
            .unwrap(),
        0
    );
    assert_eq!(status("w1").await, DeliveryStatus::Pending);
    let failed = DeliveryOutcome::new("w2", None, "publish_failed", Some("timeout"), true);
    assert_eq!(
        store
            .record_claimed_deliveries("a", vec![published("w1"), failed])
            .await
            .unwrap(),
        2
    );
    assert_eq!(status("w1").await, DeliveryStatus::Published);
    let second = store
        .claim_deliveries(&lease("b", later), now, 10, false)
        .await
        .unwrap();
    assert_eq!(ids(&second), ["w2", "w5"]);
    assert_eq!(second[0].attempts, 1);
    // A recorded status stays: neither a later outcome of its owner nor of another replaces it.
    let dead = DeliveryOutcome::new(
        "w1",
        Some(DeliveryStatus::Dead),
        "dead_lettered",
        Some("refused"),
        true,
    );
    assert_eq!(
        store
            .record_claimed_deliveries("a", vec![dead.clone()])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .record_claimed_deliveries("b", vec![dead])
            .await
            .unwrap(),
        0
    );
    let w1 = store.delivery("w1").await.unwrap().unwrap();
    assert_eq!(
        (w1.status, w1.reason.as_deref()),
        (DeliveryStatus::Published, None)
    );
    assert_eq!(outcomes(&w1), ["stored", "published"]);
    // A claim that ran out and was taken: the first owner's outcome is dropped.
    let third = store
        .claim_deliveries(
            &lease("c", after + chrono::Duration::minutes(1)),
            after,
            10,
            false,
        )
        .await
        .unwrap();
    assert_eq!(ids(&third), ["w2", "w3", "w4", "w5"]);
    assert_eq!(
        store
            .record_claimed_deliveries("a", vec![published("w3")])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .record_claimed_deliveries("c", vec![published("w3"), published("w4")])
            .await
            .unwrap(),
        2
    );
    // Replaying clears claims: a published delivery, and a pending one still claimed.
    for webhook_id in ["w4", "w5"] {
        assert!(
            store
                .record_delivery(
                    webhook_id,
                    Some(DeliveryStatus::Pending),
                    "replayed",
                    None,
                    false
                )
                .await
                .unwrap()
        );
    }
    let replayed = store
        .claim_deliveries(&lease("d", later), now, 10, false)
        .await
        .unwrap();
    assert_eq!(ids(&replayed), ["w4", "w5"]);
    assert_eq!(
        store
            .record_claimed_deliveries("d", vec![published("w4"), published("unknown")])
            .await
            .unwrap(),
        1
    );
}

pub async fn webhook_deliveries_are_stored_once_counted_listed_and_recorded(store: &dyn Store) {
    let acme = "acme.myshopify.com";
    let first = delivery("wh-1", acme, Some("e-1"), br#"{"id":1}"#);
    assert_eq!(
        store.put_delivery(&first).await.unwrap(),
        DeliveryReceipt::Stored
    );
    assert_eq!(
        store.put_delivery(&first).await.unwrap(),
        DeliveryReceipt::Redelivery
    );
    let twin = delivery("wh-2", acme, Some("e-1"), br#"{"id":1}"#);
    assert_eq!(
        store.put_delivery(&twin).await.unwrap(),
        DeliveryReceipt::DuplicateEvent
    );
    // Larger than one DynamoDB item: stored and read back byte for byte.
    let large: Vec<u8> = (0..700_000u32).map(|index| (index % 251) as u8).collect();
    let other = delivery("wh-3", "other.myshopify.com", None, &large);
    assert_eq!(
        store.put_delivery(&other).await.unwrap(),
        DeliveryReceipt::Stored
    );

    let pending = store.pending_deliveries(10, true).await.unwrap();
    assert_eq!(ids(&pending), ["wh-1", "wh-3"]);
    assert_eq!(pending[0].body, first.body);
    assert_eq!(pending[1].body, large);
    assert!(
        store.pending_deliveries(1, false).await.unwrap()[0]
            .body
            .is_empty()
    );

    let published = DeliveryOutcome::new(
        "wh-1",
        Some(DeliveryStatus::Published),
        "published",
        None,
        false,
    );
    let unknown = DeliveryOutcome::new(
        "wh-none",
        Some(DeliveryStatus::Published),
        "published",
        None,
        false,
    );
    assert_eq!(
        store
            .record_deliveries(vec![published, unknown])
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .record_delivery(
                "wh-3",
                Some(DeliveryStatus::Dead),
                "dead_lettered",
                Some("bus refused"),
                true
            )
            .await
            .unwrap()
    );
    // A consumer's outcome: a step added, the status kept.
    assert!(
        store
            .record_delivery("wh-1", None, "applied", Some("2 new lines"), false)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_delivery("wh-none", None, "applied", None, false)
            .await
            .unwrap()
    );
    assert!(store.pending_deliveries(10, true).await.unwrap().is_empty());

    let one = store.delivery("wh-1").await.unwrap().unwrap();
    assert_eq!(one.status, DeliveryStatus::Published);
    assert_eq!((one.redeliveries, one.attempts), (1, 0));
    assert_eq!(
        outcomes(&one),
        ["stored", "redelivered", "published", "applied"]
    );
    assert_eq!(one.history[3].detail.as_deref(), Some("2 new lines"));
    assert_eq!(one.headers, first.headers);
    assert_eq!(one.body, first.body);
    assert_eq!(one.event_id.as_deref(), Some("e-1"));
    let duplicate = store.delivery("wh-2").await.unwrap().unwrap();
    assert_eq!(duplicate.status, DeliveryStatus::Duplicate);
    assert_eq!(outcomes(&duplicate), ["stored", "duplicate"]);
    let dead = store.delivery("wh-3").await.unwrap().unwrap();
    assert_eq!(dead.status, DeliveryStatus::Dead);
    assert_eq!(
        (dead.reason.as_deref(), dead.attempts),
        (Some("bus refused"), 1)
    );
    assert_eq!(dead.body, large);
    assert!(store.delivery("wh-none").await.unwrap().is_none());
    // What a consumer of an event by reference reads: the body alone.
    assert_eq!(
        store.delivery_body("wh-1").await.unwrap(),
        Some(first.body.clone())
    );
    assert_eq!(store.delivery_body("wh-3").await.unwrap(), Some(large));
    assert_eq!(store.delivery_body("wh-none").await.unwrap(), None);

    let list = |filter: DeliveryFilter| async move { store.deliveries(&filter).await.unwrap() };
    let all = DeliveryFilter {
        limit: 10,
        ..DeliveryFilter::default()
    };
    let newest = list(all.clone()).await;
    assert_eq!(ids(&newest), ["wh-3", "wh-2", "wh-1"]);
    assert!(
        newest
            .iter()
            .all(|record| record.history.is_empty() && record.body.is_empty())
    );
    assert_eq!(
        ids(&list(DeliveryFilter {
            limit: 2,
            ..all.clone()
        })
        .await),
        ["wh-3", "wh-2"]
    );
    assert_eq!(
        ids(&list(DeliveryFilter {
            shop: Some(acme.into()),
            ..all.clone()
        })
        .await),
        ["wh-2", "wh-1"]
    );
    assert_eq!(
        ids(&list(DeliveryFilter {
            status: Some(DeliveryStatus::Dead),
            ..all.clone()
        })
        .await),
        ["wh-3"]
    );
    assert_eq!(
        ids(&list(DeliveryFilter {
            after: Some(one.sequence),
            ..all.clone()
        })
        .await),
        ["wh-2", "wh-3"]
    );
    assert!(
        list(DeliveryFilter {
            topic: Some("products/update".into()),
            ..all.clone()
        })
        .await
        .is_empty()
    );
    assert!(
        list(DeliveryFilter {
            since: Some(Utc::now()),
            ..all.clone()
        })
        .await
        .is_empty()
    );

    // Leaving the dead letters clears the reason; redaction replaces the body.
    assert!(
        store
            .record_delivery(
                "wh-3",
                Some(DeliveryStatus::Published),
                "redriven",
                None,
                false
            )
            .await
            .unwrap()
    );
    assert_eq!(store.delivery("wh-3").await.unwrap().unwrap().reason, None);
    assert!(store.replace_delivery_body("wh-3", b"{}").await.unwrap());
    let redacted = store.delivery("wh-3").await.unwrap().unwrap();
    assert_eq!(redacted.body, b"{}");
    assert_eq!(outcomes(&redacted).last(), Some(&"redacted"));
    assert!(!store.replace_delivery_body("wh-none", b"{}").await.unwrap());
}

pub async fn erasure_takes_the_shops_keys_and_deliveries_but_keeps_its_compliance_log(
    store: &dyn Store,
) {
    let shop = ShopDomain::parse("leaving.myshopify.com").unwrap();
    let install = store
        .install_shop(
            &install_of(shop.as_str(), b"t", Utc::now()),
            &TenantId::generate(),
        )
        .await
        .unwrap();
    let key = ApiKey::generate();
    store
        .add_api_key(&install.tenant, key.hash())
        .await
        .unwrap();
    store
        .put_delivery(&delivery("wh-leaving", shop.as_str(), None, b"{}"))
        .await
        .unwrap();
    store
        .put_delivery(&delivery(
            "wh-staying",
            "staying.myshopify.com",
            None,
            b"{}",
        ))
        .await
        .unwrap();
    store
        .put_stock(&install.tenant, vec![level("A", "", 1.0)])
        .await
        .unwrap();
    store
        .apply_order(
            &install.tenant,
            &OrderVersion {
                order_id: "7".into(),
                updated_at: Utc::now(),
                lines: vec![order_line("7", "1", "A", 1.0)],
            },
        )
        .await
        .unwrap();
    let entry = ComplianceEntry {
        shop: shop.clone(),
        topic: "shop/redact".into(),
        webhook_id: "wh-redact".into(),
        handled_at: Utc::now(),
        outcome: "erased".into(),
        detail: serde_json::json!({}),
    };
    store.record_compliance(&entry).await.unwrap();
    // The UI's records of the tenant: a session, a sign-in link, settings, overview, figures.
    let later = Utc::now() + chrono::Duration::hours(1);
    let (session, link) = (BrowserSecret::generate(), BrowserSecret::generate());
    store
        .create_session(&install.tenant, session.hash(), "csrf", later)
        .await
        .unwrap();
    store
        .create_sign_in_link(&install.tenant, link.hash(), later)
        .await
        .unwrap();
    let mut settings = TenantSettings::defaults("Europe/Berlin");
    settings.horizon_days = 7;
    store
        .put_settings(&install.tenant, &settings)
        .await
        .unwrap();
    store
        .put_overview(&install.tenant, &overview_of(1, "ETS"))
        .await
        .unwrap();
    store
        .put_series_stats(&install.tenant, vec![stats("A", "", 1.0, 1.0, 1.0)])
        .await
        .unwrap();
    store.uninstall_shop(&shop, Utc::now()).await.unwrap();
    assert_eq!(store.erase_shop(&shop).await.unwrap(), EraseOutcome::Erased);
    assert!(
        store
            .session(session.hash(), Utc::now())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store
            .consume_sign_in_link(link.hash(), Utc::now())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.tenant_by_api_key(key.hash()).await.unwrap(), None);
    assert!(store.delivery("wh-leaving").await.unwrap().is_none());
    assert!(store.delivery("wh-staying").await.unwrap().is_some());
    // Reads of the erased tenant find nothing (an adapter may also say the tenant is unknown).
    let nothing = |result: Result<usize, StoreError>| {
        matches!(
            result,
            Ok(0)
                | Err(StoreError::NotFound {
                    entity: "tenant",
                    ..
                })
        )
    };
    let stock = store.stock(&install.tenant, None).await;
    assert!(nothing(stock.map(|levels| levels.len())));
    let sales = store.sales(&install.tenant, &SalesQuery::default()).await;
    assert!(nothing(sales.map(|days| days.len())));
    let skus = store.skus(&install.tenant).await;
    assert!(nothing(skus.map(|skus| skus.len())));
    let products = store
        .products(
            &install.tenant,
            &ProductQuery {
                limit: 10,
                ..ProductQuery::default()
            },
        )
        .await;
    assert!(nothing(products.map(|page| page.rows.len())));
    let overview = store.overview(&install.tenant).await;
    assert!(nothing(
        overview.map(|overview| usize::from(overview.is_some()))
    ));
    // Settings are the defaults of a tenant that never changed them, if readable at all.
    match store.settings(&install.tenant).await {
        Ok(read) => assert_ne!(read, settings),
        Err(error) => assert!(matches!(
            error,
            StoreError::NotFound {
                entity: "tenant",
                ..
            }
        )),
    }
    assert!(
        store
            .shop_of_tenant(&install.tenant)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.compliance_log(&shop).await.unwrap(), [entry]);
}

pub async fn daily_totals_sum_units_and_revenue_over_the_tenants_series(store: &dyn Store) {
    let tenant = tenant(store).await;
    let other = tenant_with_sales(store).await;
    store.begin_upload(&tenant, &report("up_t")).await.unwrap();
    let lines = vec![
        sale("a1", "2024-03-01", "A", "", 1.0),
        sale("b1", "2024-03-01", "B", "North", 2.0),
        sale("a5", "2024-03-05", "A", "", -1.0),
        sale("y", "2023-12-31", "A", "", 3.0),
    ];
    store
        .write_sales(&tenant, &"up_t".into(), lines.into())
        .await
        .unwrap();
    let total = |date: &str, units: f64| DayTotal {
        date: date.parse().unwrap(),
        units,
        revenue: units * 2.0,
    };
    // Ascending over both years, every location summed, days without sales left out.
    assert_eq!(
        store
            .daily_totals(&tenant, DayRange::default())
            .await
            .unwrap(),
        [
            total("2023-12-31", 3.0),
            total("2024-03-01", 3.0),
            total("2024-03-05", -1.0)
        ]
    );
    let range = |from: &str, to: &str| DayRange {
        from: Some(from.parse().unwrap()),
        to: Some(to.parse().unwrap()),
    };
    assert_eq!(
        store
            .daily_totals(&tenant, range("2024-01-01", "2024-03-04"))
            .await
            .unwrap(),
        [total("2024-03-01", 3.0)]
    );
    assert!(
        store
            .daily_totals(&tenant, range("2024-03-02", "2024-03-04"))
            .await
            .unwrap()
            .is_empty()
    );
    // The other tenant's sales on the same day count only for it.
    assert_eq!(
        store
            .daily_totals(&other, DayRange::default())
            .await
            .unwrap(),
        [total("2024-03-01", 9.0)]
    );
    assert!(matches!(
        store
            .daily_totals(&TenantId::generate(), DayRange::default())
            .await,
        Err(StoreError::NotFound {
            entity: "tenant",
            ..
        })
    ));
}

fn overview_of(series: usize, model: &str) -> TenantOverview {
    let start = NaiveDate::from_ymd_opt(2024, 4, 1).unwrap();
    TenantOverview {
        generated_at: Utc::now(),
        series,
        model: model.into(),
        backtest: Backtest {
            rmsse: Some(0.75),
            ..Backtest::default()
        },
        points: start
            .iter_days()
            .take(3)
            .map(|date| ForecastPoint::new(date, 2.0, 1.0, 3.0, 0.5, 3.5))
            .collect(),
        history: vec![DayTotal {
            date: NaiveDate::from_ymd_opt(2024, 3, 31).unwrap(),
            units: 4.0,
            revenue: 10.5,
        }],
    }
}

pub async fn overview_and_settings_read_defaults_until_replaced(store: &dyn Store) {
    let other = tenant(store).await;
    let tenant = tenant(store).await;
    assert_eq!(store.overview(&tenant).await.unwrap(), None);
    let first = overview_of(3, "ETS");
    store.put_overview(&tenant, &first).await.unwrap();
    assert_eq!(store.overview(&tenant).await.unwrap(), Some(first));
    let second = overview_of(5, "ADIDA");
    store.put_overview(&tenant, &second).await.unwrap();
    assert_eq!(store.overview(&tenant).await.unwrap(), Some(second.clone()));
    assert_eq!(store.overview(&other).await.unwrap(), None);

    let defaults = TenantSettings::defaults("UTC");
    assert_eq!(store.settings(&tenant).await.unwrap(), defaults);
    let changed = TenantSettings {
        timezone: "Europe/Berlin".into(),
        default_lead_time_days: 9,
        service_level: 0.9,
        horizon_days: 60,
    };
    store.put_settings(&tenant, &changed).await.unwrap();
    assert_eq!(store.settings(&tenant).await.unwrap(), changed);
    // The time zone is the tenant's own.
    assert_eq!(
        store.tenant(&tenant).await.unwrap().timezone.name(),
        "Europe/Berlin"
    );
    let again = TenantSettings {
        timezone: "America/New_York".into(),
        service_level: 0.99,
        horizon_days: 14,
        ..changed
    };
    store.put_settings(&tenant, &again).await.unwrap();
    assert_eq!(store.settings(&tenant).await.unwrap(), again);
    assert_eq!(store.settings(&other).await.unwrap(), defaults);
    assert_eq!(store.tenant(&other).await.unwrap().timezone.name(), "UTC");

    let unknown = TenantId::generate();
    let not_found = |result: Result<(), StoreError>| {
        matches!(
            result,
            Err(StoreError::NotFound {
                entity: "tenant",
                ..
            })
        )
    };
    assert!(not_found(store.put_overview(&unknown, &second).await));
    assert!(not_found(store.put_settings(&unknown, &again).await));
    assert!(not_found(store.settings(&unknown).await.map(drop)));
    assert!(not_found(store.overview(&unknown).await.map(drop)));
}

fn stats(sku: &str, location: &str, sales_28: f64, prev_28: f64, forecast_28: f64) -> SeriesStats {
    SeriesStats {
        sku: Sku::parse(sku).unwrap(),
        location: Location::parse(location).unwrap(),
        sales_28,
        prev_28,
        forecast_28,
    }
}

async fn product_rows(
    store: &dyn Store,
    tenant: &TenantId,
    query: ProductQuery,
) -> (u64, Vec<String>) {
    let page = store.products(tenant, &query).await.unwrap();
    assert_eq!((page.offset, page.limit), (query.offset, query.limit));
    let rows = page
        .rows
        .iter()
        .map(|row| format!("{}/{}", row.sku, row.location))
        .collect();
    (page.total, rows)
}

pub async fn products_are_searched_sorted_and_paged_with_zeros_until_computed(store: &dyn Store) {
    let other = tenant_with_sales(store).await;
    let tenant = tenant(store).await;
    store.begin_upload(&tenant, &report("up_p")).await.unwrap();
    let named = |line: SalesLine, product: &str| SalesLine {
        product: Some(product.into()),
        ..line
    };
    let lines = vec![
        named(sale("a", "2024-03-01", "A-1", "", 1.0), "Blue Mug"),
        named(sale("an", "2024-03-01", "A-1", "west", 1.0), "Blue Mug"),
        named(sale("b", "2024-03-01", "B-2", "", 1.0), "red plate"),
        sale("c", "2024-03-01", "C-3", "", 1.0),
    ];
    store
        .write_sales(&tenant, &"up_p".into(), lines.into())
        .await
        .unwrap();
    store
        .put_series_stats(&tenant, vec![stats("A-1", "", 1.0, 1.0, 1.0)])
        .await
        .unwrap();
    store
        .put_series_stats(
            &tenant,
            vec![
                // Replaces the figures written before.
                stats("A-1", "", 10.0, 5.0, 28.0),
                stats("A-1", "west", 4.0, 0.0, 56.0),
                stats("B-2", "", 20.0, 40.0, 0.0),
                // Series without sales (here: the other tenant's) get no figures.
                stats("A", "", 7.0, 7.0, 7.0),
                stats("Z", "", 7.0, 7.0, 7.0),
            ],
        )
        .await
        .unwrap();
    let levels = vec![
        level("A-1", "", 14.0),
        level("A-1", "west", 2.0),
        level("B-2", "", 5.0),
        // Stock of a series without sales is not a product row.
        level("A", "", 3.0),
    ];
    let lead_time = levels[0].lead_time_days;
    store.put_stock(&tenant, levels).await.unwrap();

    let query = |sort: ProductSort, descending: bool| ProductQuery {
        search: None,
        sort,
        descending,
        offset: 0,
        limit: 10,
    };
    let page = store
        .products(&tenant, &query(ProductSort::Sku, false))
        .await
        .unwrap();
    assert_eq!(page.total, 4);
    assert_eq!(
        page.rows[0],
        ProductRow {
            sku: "A-1".into(),
            location: "default".into(),
            product: Some("Blue Mug".into()),
            sales_28: 10.0,
            forecast_28: 28.0,
            trend: Some(1.0),
            on_hand: Some(14.0),
            days_of_cover: Some(14.0),
            lead_time_days: Some(lead_time),
            suggested_order: None,
            at_risk: false,
        }
    );
    assert_eq!(page.rows[1].trend, None, "no sales in the 28 days before");
    assert_eq!(page.rows[1].days_of_cover, Some(1.0));
    assert_eq!(page.rows[2].trend, Some(-0.5));
    assert_eq!(page.rows[2].days_of_cover, None, "no forecast demand");
    // A series whose figures are not computed yet shows zeros, and no stock it does not have.
    assert_eq!(
        page.rows[3],
        ProductRow {
            sku: "C-3".into(),
            location: "default".into(),
            product: None,
            sales_28: 0.0,
            forecast_28: 0.0,
            trend: None,
            on_hand: None,
            days_of_cover: None,
            lead_time_days: None,
            suggested_order: None,
            at_risk: false,
        }
    );

    let tenant_ref = &tenant;
    let order = |sort, descending| async move {
        product_rows(store, tenant_ref, query(sort, descending))
            .await
            .1
    };
    assert_eq!(
        order(ProductSort::Sku, false).await,
        ["A-1/default", "A-1/west", "B-2/default", "C-3/default"]
    );
    assert_eq!(
        order(ProductSort::Sku, true).await,
        ["C-3/default", "B-2/default", "A-1/west", "A-1/default"]
    );
    assert_eq!(
        order(ProductSort::Location, false).await,
        ["A-1/default", "B-2/default", "C-3/default", "A-1/west"]
    );
    assert_eq!(
        order(ProductSort::Sales, true).await,
        ["B-2/default", "A-1/default", "A-1/west", "C-3/default"]
    );
    assert_eq!(
        order(ProductSort::Sales, false).await,
        ["C-3/default", "A-1/west", "A-1/default", "B-2/default"]
    );
    // Ties go by SKU and location, ascending whatever the direction.
    assert_eq!(
        order(ProductSort::Forecast, true).await,
        ["A-1/west", "A-1/default", "B-2/default", "C-3/default"]
    );
    // Rows without a trend or a cover come last either way.
    assert_eq!(
        order(ProductSort::Trend, true).await,
        ["A-1/default", "B-2/default", "A-1/west", "C-3/default"]
    );
    assert_eq!(
        order(ProductSort::Trend, false).await,
        ["B-2/default", "A-1/default", "A-1/west", "C-3/default"]
    );
    assert_eq!(
        order(ProductSort::Cover, false).await,
        ["A-1/west", "A-1/default", "B-2/default", "C-3/default"]
    );
    assert_eq!(
        order(ProductSort::Cover, true).await,
        ["A-1/default", "A-1/west", "B-2/default", "C-3/default"]
    );

    // Search: SKU or product name, ignoring case and surrounding space, wildcards literal.
    let search = |text: &str| ProductQuery {
        search: Some(text.into()),
        ..query(ProductSort::Sku, false)
    };
    assert_eq!(
        product_rows(store, &tenant, search("mug")).await,
        (2, vec!["A-1/default".into(), "A-1/west".into()])
    );
    assert_eq!(
        product_rows(store, &tenant, search("  RED ")).await,
        (1, vec!["B-2/default".into()])
    );
    assert_eq!(
        product_rows(store, &tenant, search("c-3")).await,
        (1, vec!["C-3/default".into()])
    );
    assert_eq!(
        product_rows(store, &tenant, search("-")).await.0,
        4,
        "every SKU holds a dash"
    );
    assert_eq!(product_rows(store, &tenant, search("%")).await, (0, vec![]));
    assert_eq!(product_rows(store, &tenant, search("_")).await, (0, vec![]));
    assert_eq!(product_rows(store, &tenant, search("   ")).await.0, 4);

    // Pages: the total counts every match; rows past the end are none.
    let page = |offset: u64, limit: u32| ProductQuery {
        offset,
        limit,
        ..query(ProductSort::Sku, false)
    };
    assert_eq!(
        product_rows(store, &tenant, page(1, 2)).await,
        (4, vec!["A-1/west".into(), "B-2/default".into()])
    );
    assert_eq!(
        product_rows(store, &tenant, page(3, 2)).await,
        (4, vec!["C-3/default".into()])
    );
    assert_eq!(product_rows(store, &tenant, page(4, 2)).await, (4, vec![]));
    assert_eq!(
        product_rows(
            store,
            &tenant,
            ProductQuery {
                search: Some("mug".into()),
                ..page(1, 1)
            }
        )
        .await,
        (2, vec!["A-1/west".into()])
    );

    // The other tenant sees its own series only, without this tenant's figures or stock.
    let theirs = store
        .products(&other, &query(ProductSort::Sku, false))
        .await
        .unwrap();
    assert_eq!(theirs.total, 1);
    assert_eq!(
        (
            theirs.rows[0].sku.as_str(),
            theirs.rows[0].sales_28,
            theirs.rows[0].on_hand
        ),
        ("A", 0.0, None)
    );
    assert!(matches!(
        store
            .products(&TenantId::generate(), &query(ProductSort::Sku, false))
            .await,
        Err(StoreError::NotFound {
            entity: "tenant",
            ..
        })
    ));
}

pub async fn sessions_open_until_they_expire_or_end(store: &dyn Store) {
    let other = tenant(store).await;
    let tenant = tenant(store).await;
    let now = Utc::now();
    let expires = now + chrono::Duration::hours(1);
    let (secret, csrf) = (BrowserSecret::generate(), BrowserSecret::generate());
    store
        .create_session(&tenant, secret.hash(), csrf.expose(), expires)
        .await
        .unwrap();
    let theirs = BrowserSecret::generate();
    store
        .create_session(&other, theirs.hash(), "their-csrf", expires)
        .await
        .unwrap();

    let open = store.session(secret.hash(), now).await.unwrap().unwrap();
    assert_eq!(open.tenant, store.tenant(&tenant).await.unwrap());
    assert!(open.csrf_token.matches(csrf.expose()));
    assert_eq!(open.expires_at, expires);
    let open = store.session(theirs.hash(), now).await.unwrap().unwrap();
    assert_eq!(open.tenant.id, other);
    assert!(open.csrf_token.matches("their-csrf"));
    // Expiry is checked at the `now` given, to the instant (TTL deletes much later).
    let just_before = expires - chrono::Duration::milliseconds(1);
    assert!(
        store
            .session(secret.hash(), just_before)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session(secret.hash(), expires)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .session(BrowserSecret::generate().hash(), now)
            .await
            .unwrap()
            .is_none()
    );
    // A second session with the same secret is refused.
    assert!(
        store
            .create_session(&tenant, secret.hash(), "x", expires)
            .await
            .is_err()
    );

    store.delete_session(secret.hash()).await.unwrap();
    assert!(store.session(secret.hash(), now).await.unwrap().is_none());
    assert!(store.session(theirs.hash(), now).await.unwrap().is_some());
    // Unknown secrets are ignored.
    store.delete_session(secret.hash()).await.unwrap();
    assert!(matches!(
        store
            .create_session(
                &TenantId::generate(),
                BrowserSecret::generate().hash(),
                "x",
                expires
            )
            .await,
        Err(StoreError::NotFound {
            entity: "tenant",
            ..
        })
    ));
}

pub async fn sign_in_links_work_once_and_only_before_they_expire(store: &dyn Store) {
    let other = tenant(store).await;
    let tenant = tenant(store).await;
    let now = Utc::now();
    let expires = now + chrono::Duration::minutes(15);
    let link = BrowserSecret::generate();
    store
        .create_sign_in_link(&tenant, link.hash(), expires)
        .await
        .unwrap();
    let theirs = BrowserSecret::generate();
    store
        .create_sign_in_link(&other, theirs.hash(), expires)
        .await
        .unwrap();
    assert_eq!(
        store.consume_sign_in_link(link.hash(), now).await.unwrap(),
        Some(tenant.clone())
    );
    assert_eq!(
        store.consume_sign_in_link(link.hash(), now).await.unwrap(),
        None
    );
    assert_eq!(
        store
            .consume_sign_in_link(theirs.hash(), now)
            .await
            .unwrap(),
        Some(other)
    );

    // An expired link opens nothing, and is used up all the same.
    let stale = BrowserSecret::generate();
    store
        .create_sign_in_link(&tenant, stale.hash(), expires)
        .await
        .unwrap();
    assert_eq!(
        store
            .consume_sign_in_link(stale.hash(), expires)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.consume_sign_in_link(stale.hash(), now).await.unwrap(),
        None
    );

    // Two uses at once: exactly one succeeds.
    for _ in 0..3 {
        let raced = BrowserSecret::generate();
        store
            .create_sign_in_link(&tenant, raced.hash(), expires)
            .await
            .unwrap();
        let (first, second) = tokio::join!(
            store.consume_sign_in_link(raced.hash(), now),
            store.consume_sign_in_link(raced.hash(), now)
        );
        let opened: Vec<TenantId> = [first.unwrap(), second.unwrap()]
            .into_iter()
            .flatten()
            .collect();
        assert_eq!(opened, std::slice::from_ref(&tenant));
    }
    assert_eq!(
        store
            .consume_sign_in_link(BrowserSecret::generate().hash(), now)
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store
            .create_sign_in_link(
                &TenantId::generate(),
                BrowserSecret::generate().hash(),
                expires
            )
            .await,
        Err(StoreError::NotFound {
            entity: "tenant",
            ..
        })
    ));
}

/// How long the stores under test keep final deliveries: the DynamoDB store is built with this
/// retention (see `crate::moto`), the SQLite store is purged with it.
pub const RETENTION_DAYS: u32 = 90;

fn received_days_ago(mut delivery: NewDelivery, days: i64) -> NewDelivery {
    delivery.received_at = Utc::now() - chrono::Duration::days(days);
    delivery
}

pub async fn old_final_deliveries_go_while_pending_and_recent_ones_stay(store: &dyn Store) {
    let shop = "retained.myshopify.com";
    let old = |id: &str, event: &str| {
        received_days_ago(delivery(id, shop, Some(event), b"{\"old\":true}"), 100)
    };
    for new in [
        old("old-published", "e1"),
        old("old-duplicate", "e1"),
        old("old-dead", "e2"),
        old("old-pending", "e3"),
        received_days_ago(delivery("recent-published", shop, Some("e4"), b"{}"), 80),
        delivery("new-dead", shop, Some("e5"), b"{}"),
    ] {
        store.put_delivery(&new).await.unwrap();
    }
    let final_outcomes = vec![
        DeliveryOutcome::new(
            "old-published",
            Some(DeliveryStatus::Published),
            "published",
            None,
            false,
        ),
        DeliveryOutcome::new(
            "old-dead",
            Some(DeliveryStatus::Dead),
            "dead",
            Some("refused"),
            true,
        ),
        DeliveryOutcome::new(
            "recent-published",
            Some(DeliveryStatus::Published),
            "published",
            None,
            false,
        ),
        DeliveryOutcome::new(
            "new-dead",
            Some(DeliveryStatus::Dead),
            "dead",
            Some("refused"),
            true,
        ),
    ];
    assert_eq!(store.record_deliveries(final_outcomes).await.unwrap(), 4);
    // SQLite purges in batches (here of 2) until one comes back short; DynamoDB's TTL has done it.
    let before = Utc::now() - chrono::Duration::days(RETENTION_DAYS.into());
    let mut purged = 0;
    loop {
        let batch = store.purge_deliveries(before, 2).await.unwrap();
        purged += batch;
        if batch < 2 {
            break;
        }
    }
    assert!(purged == 3 || purged == 0, "purged {purged}");
    let listed = store
        .deliveries(&DeliveryFilter {
            limit: 100,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(
        ids(&listed),
        ["new-dead", "recent-published", "old-pending"]
    );
    for gone in ["old-published", "old-duplicate", "old-dead"] {
        assert!(store.delivery(gone).await.unwrap().is_none(), "{gone}");
        // A removed delivery cannot be replayed.
        assert!(
            !store
                .record_delivery(gone, Some(DeliveryStatus::Pending), "replayed", None, false)
                .await
                .unwrap(),
            "{gone} replayed"
        );
    }
    let pending = store.delivery("old-pending").await.unwrap().unwrap();
    assert_eq!(pending.status, DeliveryStatus::Pending);
    assert_eq!(pending.body, b"{\"old\":true}");
    assert_eq!(
        ids(&store.pending_deliveries(10, true).await.unwrap()),
        ["old-pending"]
    );
    // The pending one, published at last, goes too (its receipt is past the retention).
    store
        .record_delivery(
            "old-pending",
            Some(DeliveryStatus::Published),
            "published",
            None,
            false,
        )
        .await
        .unwrap();
    store.purge_deliveries(before, 10).await.unwrap();
    assert!(store.delivery("old-pending").await.unwrap().is_none());
    assert_eq!(
        ids(&store
            .deliveries(&DeliveryFilter {
                limit: 100,
                ..DeliveryFilter::default()
            })
            .await
            .unwrap()),
        ["new-dead", "recent-published"]
    );
}

macro_rules! conformance {
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
        // The same with the receipt journal a server runs: receipts answered from the journal,
        // reads and writes seeing them.
        mod sqlite_journal {
            $(
                #[tokio::test]
                async fn $check() {
                    let directory = tempfile::tempdir().unwrap();
                    let store = super::SqliteStore::open(directory.path().join("store.sqlite3")).unwrap();
                    assert!(store.start_receipt_journal().await.unwrap());
                    super::$check(&store).await;
                    store.close().await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $check() {
                    let store = crate::moto::fresh_store().await;
                    super::$check(&store).await;
                }
            )*
        }
    };
}

conformance!(
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
    sales_are_read_by_sku_location_days_and_week_with_summaries_and_histories,
    tenants_are_listed_oldest_first_and_unknown_tenants_are_not_found,
    order_versions_apply_newest_first_and_drop_missing_lines,
    order_batches_sync_status_and_bulk_signals_are_per_tenant,
    stock_levels_and_catalogue_lookups_are_replaced_per_key,
    an_older_stock_level_never_replaces_a_newer_one,
    webhook_deliveries_are_stored_once_counted_listed_and_recorded,
    pending_deliveries_are_claimed_by_one_outbox_at_a_time,
    old_final_deliveries_go_while_pending_and_recent_ones_stay,
    a_claimed_outcome_never_overwrites_a_recorded_status,
    erasure_takes_the_shops_keys_and_deliveries_but_keeps_its_compliance_log,
    daily_totals_sum_units_and_revenue_over_the_tenants_series,
    overview_and_settings_read_defaults_until_replaced,
    products_are_searched_sorted_and_paged_with_zeros_until_computed,
    sessions_open_until_they_expire_or_end,
    sign_in_links_work_once_and_only_before_they_expire,
);

/// DynamoDB only: after a shop's erasure no item of its tenant is left in the table, the lookup
/// partitions of its API keys, sessions and sign-in links included (reads alone cannot tell a
/// deleted lookup from one whose tenant is gone).
#[tokio::test]
async fn dynamodb_erasure_leaves_no_item_of_the_tenant() {
    let (store, client) = crate::moto::fresh_store_and_client().await;
    let shop = ShopDomain::parse("gone.myshopify.com").unwrap();
    let install = store
        .install_shop(
            &install_of(shop.as_str(), b"t", Utc::now()),
            &TenantId::generate(),
        )
        .await
        .unwrap();
    let tenant = &install.tenant;
    store
        .add_api_key(tenant, ApiKey::generate().hash())
        .await
        .unwrap();
    store
        .apply_order(
            tenant,
            &OrderVersion {
                order_id: "7".into(),
                updated_at: Utc::now(),
                lines: vec![order_line("7", "1", "A", 1.0)],
            },
        )
        .await
        .unwrap();
    store
        .put_stock(tenant, vec![level("A", "", 1.0)])
        .await
        .unwrap();
    let later = Utc::now() + chrono::Duration::hours(1);
    store
        .create_session(tenant, BrowserSecret::generate().hash(), "csrf", later)
        .await
        .unwrap();
    store
        .create_sign_in_link(tenant, BrowserSecret::generate().hash(), later)
        .await
        .unwrap();
    store
        .put_settings(tenant, &TenantSettings::defaults("Europe/Berlin"))
        .await
        .unwrap();
    store
        .put_overview(tenant, &overview_of(1, "ETS"))
        .await
        .unwrap();
    store
        .put_series_stats(tenant, vec![stats("A", "", 1.0, 1.0, 1.0)])
        .await
        .unwrap();
    let keys = || async {
        let mut keys = Vec::new();
        let mut start = None;
        loop {
            let page = client
                .scan()
                .table_name(store.table())
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .unwrap();
            for item in page.items() {
                let part = |name: &str| item[name].as_s().unwrap().clone();
                keys.push((part("PK"), part("SK")));
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return keys,
            }
        }
    };
    let of_tenant = |keys: &[(String, String)]| -> Vec<(String, String)> {
        keys.iter()
            .filter(|(pk, _)| {
                pk.starts_with(&format!("T#{tenant}"))
                    || ["KEY#", "SESSION#", "LINK#"]
                        .iter()
                        .any(|prefix| pk.starts_with(prefix))
            })
            .cloned()
            .collect()
    };
    let before = of_tenant(&keys().await);
    for sk in ["SESSION", "LINK", "KEY", "SETTINGS", "OVERVIEW"] {
        assert!(
            before.iter().any(|(_, key)| key == sk),
            "{sk} missing before erasure: {before:?}"
        );
    }
    store.uninstall_shop(&shop, Utc::now()).await.unwrap();
    assert_eq!(store.erase_shop(&shop).await.unwrap(), EraseOutcome::Erased);
    let left = of_tenant(&keys().await);
    assert!(left.is_empty(), "left after erasure: {left:?}");
}

/// Fails every DynamoDB `TransactWriteItems` request after the first `allowed`, as a process that
/// stopped there would leave the table.
#[derive(Debug)]
struct StopAfterTransactions {
    allowed: usize,
    seen: std::sync::atomic::AtomicUsize,
}

impl aws_sdk_dynamodb::config::Intercept for StopAfterTransactions {
    fn name(&self) -> &'static str {
        "StopAfterTransactions"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        _config: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        let target = context.request().headers().get("x-amz-target");
        if target.is_some_and(|target| target.ends_with(".TransactWriteItems"))
            && self.seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= self.allowed
        {
            return Err("the process stopped".into());
        }
        Ok(())
    }
}

/// A store on `store`'s table whose transactions after the first `allowed` fail.
async fn stopping_after(
    store: &ordernimbus_backend::store::dynamodb::DynamoStore,
    allowed: usize,
) -> ordernimbus_backend::store::dynamodb::DynamoStore {
    let config = aws_sdk_dynamodb::config::Builder::from(&crate::moto::config().await)
        .interceptor(StopAfterTransactions {
            allowed,
            seen: std::sync::atomic::AtomicUsize::new(0),
        })
        .build();
    ordernimbus_backend::store::dynamodb::DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        store.table(),
    )
}

/// An order version of order 500 at `minutes` past an hour ago: `units` for SKU `S{n}` per line.
fn large_order(minutes: i64, lines: &[(usize, f64)]) -> OrderVersion {
    OrderVersion {
        order_id: "500".into(),
        updated_at: Utc::now() - chrono::Duration::hours(1) + chrono::Duration::minutes(minutes),
        lines: lines
            .iter()
            .map(|(n, units)| order_line("500", &n.to_string(), &format!("S{n:03}"), *units))
            .collect(),
    }
}

/// Units per SKU as `skus` lists them (only series with their sales days recorded), and the day's
/// total over all series.
async fn order_units(store: &dyn Store, tenant: &TenantId) -> (Vec<(String, f64)>, f64) {
    let skus = store
        .skus(tenant)
        .await
        .unwrap()
        .into_iter()
        .map(|summary| (summary.sku.as_str().to_owned(), summary.units))
        .collect();
    let total = store
        .daily_totals(tenant, DayRange::default())
        .await
        .unwrap()
        .iter()
        .map(|day| day.units)
        .sum();
    (skus, total)
}

/// What `order_units` reads once exactly `lines` are counted (SKUs without a line at zero).
fn expected_units(lines: &[(usize, f64)], zero: &[usize]) -> (Vec<(String, f64)>, f64) {
    let mut skus: Vec<(String, f64)> = lines
        .iter()
        .map(|(n, units)| (format!("S{n:03}"), *units))
        .chain(zero.iter().map(|n| (format!("S{n:03}"), 0.0)))
        .collect();
    skus.sort_by(|left, right| left.0.cmp(&right.0));
    (skus, lines.iter().map(|(_, units)| units).sum())
}

/// DynamoDB only: an order version with more lines than one transaction holds is written in
/// several; when the writer stops between two of them, applying the version again finishes it
/// (it is not taken for applied), and daily sales count every line exactly once.
#[tokio::test]
async fn dynamodb_an_order_stopped_between_transactions_is_finished_exactly_by_its_retry() {
    let store = crate::moto::fresh_store().await;
    // Version 1: 40 lines of one unit. Version 2: 30 of them at two units, 10 removed, 30 new
    // lines at three units (70 line writes, each with its SKU's daily-sales items: 3 transactions
    // after the one marking the version in progress).
    let first: Vec<(usize, f64)> = (0..40).map(|n| (n, 1.0)).collect();
    let second: Vec<(usize, f64)> = (0..30)
        .map(|n| (n, 2.0))
        .chain((40..70).map(|n| (n, 3.0)))
        .collect();
    let removed: Vec<usize> = (30..40).collect();
    for allowed in 1..=3 {
        let tenant = tenant(&store).await;
        store
            .apply_order(&tenant, &large_order(10, &first))
            .await
            .unwrap();
        assert_eq!(
            order_units(&store, &tenant).await,
            expected_units(&first, &[])
        );
        let version = large_order(20, &second);
        let stopping = stopping_after(&store, allowed).await;
        assert!(
            stopping.apply_order(&tenant, &version).await.is_err(),
            "stopping after {allowed} transactions"
        );
        if allowed == 2 {
            let (_, partial) = order_units(&store, &tenant).await;
            assert!(
                partial != 40.0 && partial != 150.0,
                "half applied: {partial}"
            );
        }
        assert!(matches!(
            store.apply_order(&tenant, &version).await.unwrap(),
            OrderApplied::Applied { .. }
        ));
        assert_eq!(
            order_units(&store, &tenant).await,
            expected_units(&second, &removed),
            "stopped after {allowed} transactions, then applied again"
        );
        assert_eq!(
            store.apply_order(&tenant, &version).await.unwrap(),
            OrderApplied::Stale
        );
        assert_eq!(
            store
                .apply_order(&tenant, &large_order(15, &first))
                .await
                .unwrap(),
            OrderApplied::Stale
        );
        assert_eq!(order_units(&store, &tenant).await.1, 150.0);
    }
}

/// DynamoDB only: a newer version applied over one that stopped part way counts only its own lines:
/// the lines the stopped version wrote (even those no other version has) are cancelled, those it
/// did not write leave no trace, and the stopped version, applied again later, is stale.
#[tokio::test]
async fn dynamodb_a_newer_version_replaces_an_order_version_stopped_part_way() {
    let store = crate::moto::fresh_store().await;
    let first: Vec<(usize, f64)> = (0..10).map(|n| (n, 1.0)).collect();
    let second: Vec<(usize, f64)> = (0..70).map(|n| (n, 2.0)).collect();
    let third: Vec<(usize, f64)> = (0..5)
        .map(|n| (n, 4.0))
        .chain((100..130).map(|n| (n, 1.0)))
        .collect();
    // Version 2 adds 60 lines but stops after marking itself in progress (1), or after its first
    // transaction of lines (2).
    for allowed in 1..=2 {
        let tenant = tenant(&store).await;
        store
            .apply_order(&tenant, &large_order(10, &first))
            .await
            .unwrap();
        let stopped = large_order(20, &second);
        assert!(
            stopping_after(&store, allowed)
                .await
                .apply_order(&tenant, &stopped)
                .await
                .is_err()
        );
        // An older version than the one in progress is stale; a newer one takes over.
        assert_eq!(
            store
                .apply_order(&tenant, &large_order(15, &first))
                .await
                .unwrap(),
            OrderApplied::Stale
        );
        assert!(matches!(
            store
                .apply_order(&tenant, &large_order(30, &third))
                .await
                .unwrap(),
            OrderApplied::Applied { .. }
        ));
        let (skus, total) = order_units(&store, &tenant).await;
        assert_eq!(
            total, 50.0,
            "version 2 stopped after {allowed} transactions"
        );
        if allowed == 1 {
            // Version 2 wrote nothing: only version 1's removed lines are left, at zero.
            assert_eq!((skus, total), expected_units(&third, &[5, 6, 7, 8, 9]));
        } else {
            let counted: Vec<(String, f64)> = skus
                .into_iter()
                .filter(|(_, units)| *units != 0.0)
                .collect();
            assert_eq!(counted, expected_units(&third, &[]).0);
        }
        assert_eq!(
            store.apply_order(&tenant, &stopped).await.unwrap(),
            OrderApplied::Stale
        );
        assert_eq!(order_units(&store, &tenant).await.1, 50.0);
    }
}

/// DynamoDB only: two processes on one table number their deliveries from the clock, each with its
/// own tag taken once from the `SEQUENCE` counter, so the counter item is written once per process
/// (not once per delivery) and the numbers are unique and follow the order the deliveries were
/// stored in, whichever process stored them.
#[tokio::test]
async fn dynamodb_deliveries_are_numbered_in_store_order_without_a_write_per_delivery() {
    use ordernimbus_backend::store::dynamodb::DynamoStore;
    let (first, client) = crate::moto::fresh_store_and_client().await;
    let second = DynamoStore::from_config(&crate::moto::config().await, first.table());
    let shop = "numbered.myshopify.com";
    let mut stored = Vec::new();
    for index in 0..30 {
        let store = if index % 3 == 0 { &second } else { &first };
        let id = format!("seq-{index:02}");
        store
            .put_delivery(&delivery(&id, shop, None, b"{}"))
            .await
            .unwrap();
        stored.push(id);
    }
    let mut listed = first
        .deliveries(&DeliveryFilter {
            shop: Some(shop.to_owned()),
            limit: 100,
            ..DeliveryFilter::default()
        })
        .await
        .unwrap();
    listed.sort_by_key(|record| record.sequence);
    assert_eq!(
        ids(&listed),
        stored.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let mut sequences: Vec<i64> = listed.iter().map(|record| record.sequence).collect();
    sequences.dedup();
    assert_eq!(sequences.len(), 30, "sequence numbers are unique");
    let tags: std::collections::BTreeSet<i64> = listed
        .iter()
        .map(|record| record.sequence % 1_000)
        .collect();
    assert_eq!(tags.len(), 2, "one tag per process: {tags:?}");
    let counter = client
        .get_item()
        .table_name(first.table())
        .key(
            "PK",
            aws_sdk_dynamodb::types::AttributeValue::S("SEQUENCE".into()),
        )
        .key(
            "SK",
            aws_sdk_dynamodb::types::AttributeValue::S("DELIVERIES".into()),
        )
        .send()
        .await
        .unwrap();
    let next = counter.item().and_then(|item| item.get("next")).cloned();
    assert_eq!(
        next,
        Some(aws_sdk_dynamodb::types::AttributeValue::N("2".into())),
        "the counter is written once per process"
    );
}

/// DynamoDB only: a delivery's state and body items carry the TTL `expires_at` (receipt plus the
/// retention) once it is final, lose it when a replay makes it pending again, and get it back when
/// it is final again; a duplicate is final, so expires, from the start.
#[tokio::test]
async fn dynamodb_final_deliveries_expire_and_replayed_ones_do_not() {
    let (store, client) = crate::moto::fresh_store_and_client().await;
    let shop = "expiring.myshopify.com";
    // Three body chunks.
    let body = vec![b'x'; 700 * 1024];
    let first = delivery("ttl-1", shop, Some("e1"), &body);
    let expected = (first.received_at + chrono::Duration::days(RETENTION_DAYS.into())).timestamp();
    store.put_delivery(&first).await.unwrap();
    let duplicate = delivery("ttl-2", shop, Some("e1"), b"{}");
    let duplicate_expires =
        (duplicate.received_at + chrono::Duration::days(RETENTION_DAYS.into())).timestamp();
    store.put_delivery(&duplicate).await.unwrap();
    let expiries = |webhook_id: &'static str| {
        let client = client.clone();
        let table = store.table().to_owned();
        async move {
            let items = client
                .query()
                .table_name(table)
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(
                    ":pk",
                    aws_sdk_dynamodb::types::AttributeValue::S(format!("WH#{webhook_id}")),
                )
                .send()
                .await
                .unwrap()
                .items
                .unwrap_or_default();
            items
                .iter()
                .map(|item| {
                    let sk = item["SK"].as_s().unwrap().clone();
                    let expires = item
                        .get("expires_at")
                        .map(|value| value.as_n().unwrap().parse::<i64>().unwrap());
                    (sk, expires)
                })
                .collect::<Vec<_>>()
        }
    };
    let keys = ["BODY#0000", "BODY#0001", "BODY#0002", "STATE"];
    let all = |expires: Option<i64>| {
        keys.iter()
            .map(|sk| ((*sk).to_owned(), expires))
            .collect::<Vec<_>>()
    };
    assert_eq!(expiries("ttl-1").await, all(None), "pending");
    assert_eq!(
        expiries("ttl-2").await,
        [
            ("BODY#0000".to_owned(), Some(duplicate_expires)),
            ("STATE".to_owned(), Some(duplicate_expires))
        ],
        "duplicate"
    );
    let record = |status: DeliveryStatus, outcome: &'static str| {
        let store = &store;
        async move {
            assert!(
                store
                    .record_delivery("ttl-1", Some(status), outcome, None, false)
                    .await
                    .unwrap()
            );
        }
    };
    record(DeliveryStatus::Published, "published").await;
    assert_eq!(expiries("ttl-1").await, all(Some(expected)), "published");
    record(DeliveryStatus::Pending, "replayed").await;
    assert_eq!(expiries("ttl-1").await, all(None), "replayed");
    // The outbox's path records through its claim.
    let lease = DeliveryLease {
        owner: "outbox-1".into(),
        until: Utc::now() + chrono::Duration::seconds(30),
    };
    assert_eq!(
        ids(&store
            .claim_deliveries(&lease, Utc::now(), 10, false)
            .await
            .unwrap()),
        ["ttl-1"]
    );
    let dead = DeliveryOutcome::new(
        "ttl-1",
        Some(DeliveryStatus::Dead),
        "dead",
        Some("refused"),
        true,
    );
    assert_eq!(
        store
            .record_claimed_deliveries("outbox-1", vec![dead])
            .await
            .unwrap(),
        1
    );
    assert_eq!(expiries("ttl-1").await, all(Some(expected)), "dead");
    // A step without a status keeps the TTL.
    store
        .record_delivery("ttl-1", None, "applied", None, false)
        .await
        .unwrap();
    assert_eq!(expiries("ttl-1").await, all(Some(expected)), "step");
}
