//! The stock-levels import use case, shared by `POST /api/v1/inventory` and `ordernimbus inventory`:
//! a CSV of `sku,on_hand` with optional `location`, `lead_time_days` and `service_level`. Valid rows
//! are stored even when others are rejected; the report says why each bad row was.

use std::io::Read;

use chrono::Utc;
use serde::Serialize;

use crate::domain::{Location, Sku, StockLevel, TenantId, TenantSettings};
use crate::store::{RowError, Store, StoreError};

/// Row errors listed in a report.
const MAX_ERRORS: usize = 100;

/// What a stock upload did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StockReport {
    /// Data rows in the file.
    pub rows_read: u64,
    /// Rows stored.
    pub rows_imported: u64,
    /// Rows refused.
    pub rows_rejected: u64,
    /// The first 100 refused rows: line, column and why.
    pub errors: Vec<RowError>,
}

/// Why a stock file was refused as a whole.
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    /// Not a CSV file, or its header lacks a required column.
    #[error("{0}")]
    Header(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Column positions, recognised from the header row (case-insensitive, common aliases).
struct Columns {
    sku: usize,
    location: Option<usize>,
    on_hand: usize,
    lead_time_days: Option<usize>,
    service_level: Option<usize>,
}

fn find(header: &[String], names: &[&str]) -> Option<usize> {
    header
        .iter()
        .position(|name| names.contains(&name.as_str()))
}

fn columns(header: &csv::StringRecord) -> Result<Columns, StockError> {
    let header: Vec<String> = header
        .iter()
        .map(|name| {
            name.trim()
                .trim_start_matches('\u{feff}')
                .to_ascii_lowercase()
                .replace([' ', '-'], "_")
        })
        .collect();
    let missing = |name: &str| {
        StockError::Header(format!(
            "the header row needs a {name} column (found: {})",
            header.join(", ")
        ))
    };
    Ok(Columns {
        sku: find(&header, &["sku", "variant_sku", "item_sku"]).ok_or_else(|| missing("sku"))?,
        location: find(&header, &["location", "store", "warehouse"]),
        on_hand: find(
            &header,
            &["on_hand", "onhand", "stock", "available", "quantity", "qty"],
        )
        .ok_or_else(|| missing("on_hand"))?,
        lead_time_days: find(&header, &["lead_time_days", "lead_time", "leadtime"]),
        service_level: find(&header, &["service_level", "servicelevel"]),
    })
}

/// Parses one data row; errors name the column.
fn parse_row(
    record: &csv::StringRecord,
    columns: &Columns,
    settings: &TenantSettings,
) -> Result<StockLevel, (String, String)> {
    let field = |index: usize| record.get(index).unwrap_or("").trim();
    let optional = |index: Option<usize>| index.map(field).filter(|value| !value.is_empty());
    let sku =
        Sku::parse(field(columns.sku)).map_err(|error| ("sku".to_owned(), error.to_string()))?;
    let location = match optional(columns.location) {
        Some(value) => {
            Location::parse(value).map_err(|error| ("location".to_owned(), error.to_string()))?
        }
        None => Location::default(),
    };
    let on_hand: f64 = field(columns.on_hand).parse().map_err(|_| {
        (
            "on_hand".to_owned(),
            format!(
                "on_hand must be a number, not \"{}\"",
                field(columns.on_hand)
            ),
        )
    })?;
    let lead_time_days = optional(columns.lead_time_days)
        .map(|value| {
            value.parse::<u32>().map_err(|_| {
                (
                    "lead_time_days".to_owned(),
                    format!("lead_time_days must be a whole number of days, not \"{value}\""),
                )
            })
        })
        .transpose()?;
    let service_level = optional(columns.service_level)
        .map(|value| {
            let trimmed = value.trim_end_matches('%');
            let number: f64 = trimmed.parse().map_err(|_| {
                (
                    "service_level".to_owned(),
                    format!("service_level must be a number like 0.95 or 95%, not \"{value}\""),
                )
            })?;
            Ok::<f64, (String, String)>(if value.ends_with('%') || number > 1.0 {
                number / 100.0
            } else {
                number
            })
        })
        .transpose()?;
    StockLevel::new(
        sku,
        location,
        on_hand,
        lead_time_days.or(Some(settings.default_lead_time_days)),
        service_level.or(Some(settings.service_level)),
        Utc::now(),
    )
    .map_err(|(field, error)| (field.to_owned(), error.to_string()))
}

/// Reads a stock-levels CSV and stores its valid rows for `tenant`.
///
/// # Errors
/// `Header` when the file is not a CSV or lacks the `sku` or `on_hand` column (nothing stored);
/// `Store` when storing fails.
pub async fn import_stock(
    store: &dyn Store,
    tenant: &TenantId,
    input: impl Read,
) -> Result<StockReport, StockError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let header = reader
        .headers()
        .map_err(|error| StockError::Header(format!("not a CSV file: {error}")))?;
    let columns = columns(header)?;
    // Rows naming no lead time or service level take the tenant's defaults (settings page).
    let settings = store.settings(tenant).await?;
    let mut report = StockReport {
        rows_read: 0,
        rows_imported: 0,
        rows_rejected: 0,
        errors: Vec::new(),
    };
    let mut levels = Vec::new();
    for (index, record) in reader.records().enumerate() {
        report.rows_read += 1;
        let line = index as u64 + 2;
        let outcome = record
            .map_err(|error| (String::new(), format!("unreadable row: {error}")))
            .and_then(|record| parse_row(&record, &columns, &settings));
        match outcome {
            Ok(level) => levels.push(level),
            Err((column, message)) => {
                report.rows_rejected += 1;
                if report.errors.len() < MAX_ERRORS {
                    report.errors.push(RowError {
                        line,
                        column: (!column.is_empty()).then_some(column),
                        message,
                    });
                }
            }
        }
    }
    report.rows_imported = levels.len() as u64;
    store.put_stock(tenant, levels).await?;
    Ok(report)
}
