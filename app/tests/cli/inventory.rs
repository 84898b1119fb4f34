//! `ordernimbus inventory`: stock levels from a CSV, row errors with line and column, refusals.

use crate::{create_tenant, ordernimbus};

#[tokio::test]
async fn inventory_stores_valid_rows_and_names_the_bad_ones() {
    let directory = tempfile::tempdir().unwrap();
    let (tenant, _) = create_tenant(directory.path(), "UTC");
    let file = directory.path().join("stock.csv");
    std::fs::write(
        &file,
        "SKU,Store,On Hand,Lead Time\nMUG,North,12,5\nCUP,North,-3,\nPLATE,,7,\n",
    )
    .unwrap();
    let output = ordernimbus(
        directory.path(),
        &["inventory", "--tenant", &tenant, file.to_str().unwrap()],
    );
    assert!(output.status.success(), "{output:?}");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["rows_read"], 3);
    assert_eq!(report["rows_imported"], 2);
    assert_eq!(report["rows_rejected"], 1);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("stock.csv:3: column \"on_hand\": on_hand must be"),
        "{stderr}"
    );
    // A later file replaces the level of the same SKU and location.
    std::fs::write(&file, "sku,location,on_hand\nMUG,North,4\n").unwrap();
    let output = ordernimbus(
        directory.path(),
        &["inventory", "--tenant", &tenant, file.to_str().unwrap()],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stock_levels(directory.path(), &tenant).await,
        ["MUG North 4", "PLATE default 7"]
    );
}

#[tokio::test]
async fn inventory_refuses_files_without_the_columns_it_needs() {
    let directory = tempfile::tempdir().unwrap();
    let (tenant, _) = create_tenant(directory.path(), "UTC");
    let file = directory.path().join("stock.csv");
    std::fs::write(&file, "item,count\nMUG,3\n").unwrap();
    let output = ordernimbus(
        directory.path(),
        &["inventory", "--tenant", &tenant, file.to_str().unwrap()],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("needs a sku column"), "{stderr}");
    // Only bad rows: nothing stored, and the exit code says so.
    std::fs::write(&file, "sku,on_hand\nMUG,lots\n").unwrap();
    let output = ordernimbus(
        directory.path(),
        &["inventory", "--tenant", &tenant, file.to_str().unwrap()],
    );
    assert!(!output.status.success());
    assert!(stock_levels(directory.path(), &tenant).await.is_empty());
}

/// The tenant's stock levels as `sku location on_hand`, read through the store.
async fn stock_levels(directory: &std::path::Path, tenant: &str) -> Vec<String> {
    use ordernimbus_backend::store::Store;
    let store = ordernimbus_backend::store::sqlite::SqliteStore::open(
        directory.join("ordernimbus.sqlite3"),
    )
    .unwrap();
    let tenant = ordernimbus_backend::domain::TenantId::parse(tenant).unwrap();
    let levels = store.stock(&tenant, None).await.unwrap();
    store.close().await;
    levels
        .iter()
        .map(|level| {
            format!(
                "{} {} {}",
                level.sku.as_str(),
                level.location.as_str(),
                level.on_hand
            )
        })
        .collect()
}

#[test]
fn inventory_names_a_missing_file_or_unknown_tenant() {
    let directory = tempfile::tempdir().unwrap();
    let (tenant, _) = create_tenant(directory.path(), "UTC");
    let missing = directory.path().join("nope.csv");
    let output = ordernimbus(
        directory.path(),
        &["inventory", "--tenant", &tenant, missing.to_str().unwrap()],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("nope.csv"), "{stderr}");

    let file = directory.path().join("stock.csv");
    std::fs::write(&file, "sku,on_hand\nMUG,3\n").unwrap();
    let output = ordernimbus(
        directory.path(),
        &[
            "inventory",
            "--tenant",
            "tn_00000000000000000000",
            file.to_str().unwrap(),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("tn_00000000000000000000"), "{stderr}");
}
