//! `ordernimbus tenants create` and `ordernimbus import`.

use crate::{create_tenant, ordernimbus};

#[test]
fn tenants_create_prints_an_id_and_a_key_once_and_lists_the_tenant() {
    let directory = tempfile::tempdir().unwrap();
    let (tenant_id, api_key) = create_tenant(directory.path(), "Europe/Berlin");
    assert!(tenant_id.starts_with("tn_"));
    assert!(api_key.starts_with("onk_"));
    let listed = ordernimbus(directory.path(), &["tenants", "list", "--json"]);
    let text = String::from_utf8(listed.stdout).unwrap();
    assert!(text.contains(&tenant_id));
    assert!(text.contains("Europe/Berlin"));
    assert!(!text.contains(&api_key), "the key is never shown again");
}

#[test]
fn tenants_create_refuses_an_unknown_zone() {
    let directory = tempfile::tempdir().unwrap();
    let output = ordernimbus(
        directory.path(),
        &[
            "tenants",
            "create",
            "--name",
            "X",
            "--timezone",
            "Mars/Base",
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("\"Mars/Base\" is not an IANA time zone"),
        "{stderr}"
    );
}

#[test]
fn import_prints_a_report_per_file_and_points_at_bad_rows() {
    let directory = tempfile::tempdir().unwrap();
    let (tenant_id, _) = create_tenant(directory.path(), "UTC");
    let good = directory.path().join("sales.csv");
    std::fs::write(&good, "date,sku,qty\n2024-03-01,A,1\n2024-03-01,B,abc\n").unwrap();
    let again = directory.path().join("again.csv");
    std::fs::write(&again, "date,sku,qty\n2024-03-01,A,1\n").unwrap();
    let output = ordernimbus(
        directory.path(),
        &[
            "import",
            "--tenant",
            &tenant_id,
            good.to_str().unwrap(),
            again.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let reports: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0]["rows_imported"], 1);
    assert_eq!(reports[0]["rows_rejected"], 1);
    assert_eq!(reports[1]["rows_duplicate"], 1);
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "{}:3: column \"qty\": \"abc\" is not a number",
            good.display()
        )),
        "{stderr}"
    );
}

#[test]
fn import_of_an_unrecognised_file_fails_naming_the_file_and_columns() {
    let directory = tempfile::tempdir().unwrap();
    let (tenant_id, _) = create_tenant(directory.path(), "UTC");
    let bad = directory.path().join("bad.csv");
    std::fs::write(&bad, "a,b\n1,2\n").unwrap();
    let output = ordernimbus(
        directory.path(),
        &["import", "--tenant", &tenant_id, bad.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("bad.csv: refused: no recognisable header"),
        "{stderr}"
    );
    assert!(stderr.contains("date, sku, quantity"), "{stderr}");
}

#[test]
fn import_names_a_bad_or_unknown_tenant_and_a_missing_file() {
    let directory = tempfile::tempdir().unwrap();
    let output = ordernimbus(directory.path(), &["import", "--tenant", "acme", "x.csv"]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("--tenant")
    );
    let output = ordernimbus(
        directory.path(),
        &["import", "--tenant", "tn_00000000000000000000", "x.csv"],
    );
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("tenant tn_00000000000000000000 not found")
    );
    let (tenant_id, _) = create_tenant(directory.path(), "UTC");
    let output = ordernimbus(
        directory.path(),
        &["import", "--tenant", &tenant_id, "missing.csv"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8(output.stderr)
            .unwrap()
            .contains("missing.csv: opening the file")
    );
}
