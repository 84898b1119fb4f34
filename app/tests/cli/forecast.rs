//! `ordernimbus forecast`: JSON and CSV output, horizon and SKU validation.

use crate::{create_tenant, ordernimbus};

fn import_history(directory: &std::path::Path, tenant: &str) {
    let mut csv = String::from("date,sku,qty,store\n");
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    for day in 0..120u64 {
        let date = start + chrono::Days::new(day);
        csv.push_str(&format!("{date},MUG,{},North\n", 3 + day % 7));
        csv.push_str(&format!("{date},\"CUP, BLUE\",{},South\n", day % 3));
    }
    let file = directory.join("sales.csv");
    std::fs::write(&file, csv).unwrap();
    let output = ordernimbus(
        directory,
        &["import", "--tenant", tenant, file.to_str().unwrap()],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn forecast_prints_csv_rows_per_series_and_day() {
    let directory = tempfile::tempdir().unwrap();
    let (tenant, _) = create_tenant(directory.path(), "UTC");
    import_history(directory.path(), &tenant);
    let output = ordernimbus(
        directory.path(),
        &[
            "forecast",
            "--tenant",
            &tenant,
            "--horizon",
            "7",
            "--format",
            "csv",
        ],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "sku", "location", "date", "mean", "lo80", "hi80", "lo95", "hi95", "model"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 14);
    // Ordered by SKU then location; the quoted SKU survives; dates start the day after the last sale.
    assert_eq!(&rows[0][0], "CUP, BLUE");
    assert_eq!(&rows[0][2], "2024-04-30");
    assert_eq!(&rows[7][0], "MUG");
    assert_eq!(&rows[13][2], "2024-05-06");
    for row in &rows {
        let value = |index: usize| row[index].parse::<f64>().unwrap();
        assert!(
            value(6) <= value(4)
                && value(4) <= value(3)
                && value(3) <= value(5)
                && value(5) <= value(7),
            "{row:?}"
        );
        assert!(!row[8].is_empty());
    }
}

#[test]
fn forecast_json_for_one_sku_and_bad_arguments() {
    let directory = tempfile::tempdir().unwrap();
    let (tenant, _) = create_tenant(directory.path(), "UTC");
    import_history(directory.path(), &tenant);
    let output = ordernimbus(
        directory.path(),
        &["forecast", "--tenant", &tenant, "--sku", "MUG"],
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let forecasts: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let forecasts = forecasts.as_array().unwrap();
    assert_eq!(forecasts.len(), 1);
    assert_eq!(forecasts[0]["sku"], "MUG");
    assert_eq!(forecasts[0]["points"].as_array().unwrap().len(), 28);
    assert!(forecasts[0]["backtest"]["rmsse"].is_number());

    let output = ordernimbus(
        directory.path(),
        &["forecast", "--tenant", &tenant, "--sku", "NOPE"],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("NOPE"));
    let output = ordernimbus(
        directory.path(),
        &["forecast", "--tenant", &tenant, "--horizon", "366"],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("366"));
}
