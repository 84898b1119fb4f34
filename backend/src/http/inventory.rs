//! `POST /api/v1/inventory` (CSV of stock levels) and `GET /api/v1/inventory`: the stock on hand,
//! lead time and service level that reorder hints are computed from.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use serde::Serialize;

use super::{ApiError, AppState, Authenticated};
use crate::domain::{Location, Sku, StockLevel};

/// Largest inventory file accepted; stock files have one row per SKU and location.
pub(super) const MAX_INVENTORY_BYTES: usize = 32 * 1024 * 1024;
/// Row errors listed in a report.
const MAX_ERRORS: usize = 100;

/// One rejected row.
#[derive(Debug, Serialize)]
pub(super) struct RowError {
    line: u64,
    column: Option<String>,
    message: String,
}

/// What an inventory upload did.
#[derive(Debug, Serialize)]
pub(super) struct InventoryReport {
    rows_read: u64,
    rows_imported: u64,
    rows_rejected: u64,
    errors: Vec<RowError>,
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

fn columns(header: &csv::StringRecord) -> Result<Columns, ApiError> {
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
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_csv",
            format!(
                "the header row needs a {name} column (found: {})",
                header.join(", ")
            ),
        )
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
        lead_time_days,
        service_level,
        Utc::now(),
    )
    .map_err(|(field, error)| (field.to_owned(), error.to_string()))
}

/// `POST /api/v1/inventory`: a CSV with `sku,on_hand` and optional `location`, `lead_time_days`,
/// `service_level`. Valid rows are stored even when others are rejected; the report lists why.
pub(super) async fn put_inventory(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    body: Bytes,
) -> Result<(StatusCode, Json<InventoryReport>), ApiError> {
    if body.len() > MAX_INVENTORY_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("inventory files are limited to {MAX_INVENTORY_BYTES} bytes"),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(body.as_ref());
    let header = reader.headers().map_err(|error| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_csv",
            format!("the body is not a CSV file: {error}"),
        )
    })?;
    let columns = columns(header)?;
    let mut report = InventoryReport {
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
            .and_then(|record| parse_row(&record, &columns));
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
    state.store.put_stock(&tenant.id, levels).await?;
    let status = if report.rows_imported > 0 || report.rows_rejected == 0 {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(report)))
}

/// `GET /api/v1/inventory`: the tenant's stock levels.
pub(super) async fn list_inventory(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
) -> Result<Json<Vec<StockLevel>>, ApiError> {
    Ok(Json(state.store.stock(&tenant.id, None).await?))
}
