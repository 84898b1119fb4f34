//! Uploads, sales lines and daily sales in SQLite.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Writer, not_found, read_tenant_key};
use crate::domain::{
    Granularity, Location, SalesDay, SalesLine, SalesQuery, Sku, SkuSummary, TenantId,
};
use crate::store::{ImportReport, SalesWrite, StoreError, UploadId};

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::unavailable(error)
}

fn day_number(date: NaiveDate) -> i32 {
    date.num_days_from_ce()
}

fn day_from_number(number: i32) -> Result<NaiveDate, StoreError> {
    NaiveDate::from_num_days_from_ce_opt(number).ok_or_else(|| {
        StoreError::Unavailable(format!("stored day {number} is out of range").into())
    })
}

fn report_json(report: &ImportReport) -> Result<String, StoreError> {
    serde_json::to_string(report).map_err(StoreError::unavailable)
}

pub(super) fn begin_upload(
    writer: &mut Writer,
    tenant: &TenantId,
    report: &ImportReport,
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    writer
        .connection
        .execute(
            "INSERT INTO uploads (tenant_id, public_id, status, started_at, report)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                tenant_key,
                report.upload_id,
                status_text(report),
                report.started_at.to_rfc3339(),
                report_json(report)?
            ],
        )
        .map_err(unavailable)?;
    Ok(())
}

fn status_text(report: &ImportReport) -> String {
    serde_json::to_value(report.status)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(super) fn finish_upload(
    writer: &mut Writer,
    tenant: &TenantId,
    report: &ImportReport,
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let changed = writer
        .connection
        .execute(
            "UPDATE uploads SET status = ?3, report = ?4 WHERE tenant_id = ?1 AND public_id = ?2",
            params![
                tenant_key,
                report.upload_id,
                status_text(report),
                report_json(report)?
            ],
        )
        .map_err(unavailable)?;
    if changed == 0 {
        return Err(not_found("upload", &report.upload_id));
    }
    Ok(())
}

fn upload_key(
    connection: &Connection,
    tenant_key: i64,
    upload: &UploadId,
) -> Result<i64, StoreError> {
    connection
        .prepare_cached("SELECT id FROM uploads WHERE tenant_id = ?1 AND public_id = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![tenant_key, upload], |row| row.get(0))
                .optional()
        })
        .map_err(unavailable)?
        .ok_or_else(|| not_found("upload", upload))
}

fn series_key(writer: &mut Writer, tenant_key: i64, line: &SalesLine) -> Result<i64, StoreError> {
    let cache_key = (
        tenant_key,
        line.sku.as_str().to_owned(),
        line.location.as_str().to_owned(),
    );
    if let Some(key) = writer.series_keys.get(&cache_key) {
        return Ok(*key);
    }
    let connection = &writer.connection;
    connection
        .prepare_cached(
            "INSERT INTO series (tenant_id, sku, location, product) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id, sku, location) DO UPDATE SET product = coalesce(series.product, excluded.product)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                tenant_key,
                line.sku.as_str(),
                line.location.as_str(),
                line.product
            ])
        })
        .map_err(unavailable)?;
    let key: i64 = connection
        .prepare_cached("SELECT id FROM series WHERE tenant_id = ?1 AND sku = ?2 AND location = ?3")
        .and_then(|mut statement| {
            statement.query_row(
                params![tenant_key, line.sku.as_str(), line.location.as_str()],
                |row| row.get(0),
            )
        })
        .map_err(unavailable)?;
    writer.series_keys.insert(cache_key, key);
    Ok(key)
}

/// Net change of one series-day within a batch.
#[derive(Default, Clone, Copy)]
struct Delta {
    units: f64,
    revenue: f64,
}

pub(super) fn write_sales(
    writer: &mut Writer,
    tenant: &TenantId,
    upload: &UploadId,
    lines: &[SalesLine],
) -> Result<SalesWrite, StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let upload_key = upload_key(&writer.connection, tenant_key, upload)?;
    let mut outcome = SalesWrite::default();
    let mut deltas: HashMap<(i64, i32), Delta> = HashMap::with_capacity(lines.len());

    for line in lines {
        let series = series_key(writer, tenant_key, line)?;
        let day = day_number(line.date);
        let connection = &writer.connection;
        let mut insert = connection
            .prepare_cached(
                "INSERT OR IGNORE INTO sales_lines
                 (tenant_id, line_key, series_id, day, units, revenue, upload_id, seen_upload_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            )
            .map_err(unavailable)?;
        let mut occurrence = 0u32;
        loop {
            let key = line.identity.key(occurrence);
            let inserted = insert
                .execute(params![
                    tenant_key,
                    key,
                    series,
                    day,
                    line.units,
                    line.revenue,
                    upload_key
                ])
                .map_err(unavailable)?;
            if inserted == 1 {
                outcome.imported += 1;
                add(&mut deltas, series, day, line.units, line.revenue);
                break;
            }
            let (old_series, old_day, old_units, old_revenue, seen): (i64, i32, f64, f64, i64) =
                connection
                    .prepare_cached(
                        "SELECT series_id, day, units, revenue, seen_upload_id FROM sales_lines
                         WHERE tenant_id = ?1 AND line_key = ?2",
                    )
                    .and_then(|mut statement| {
                        statement.query_row(params![tenant_key, key], |row| {
                            Ok((
                                row.get(0)?,
                                row.get(1)?,
                                row.get(2)?,
                                row.get(3)?,
                                row.get(4)?,
                            ))
                        })
                    })
                    .map_err(unavailable)?;
            if seen == upload_key {
                // An earlier row of this same upload holds this occurrence: this row is another sale.
                occurrence += 1;
                continue;
            }
            let same = old_series == series
                && old_day == day
                && old_units == line.units
                && old_revenue == line.revenue;
            connection
                .prepare_cached(
                    "UPDATE sales_lines SET series_id = ?3, day = ?4, units = ?5, revenue = ?6,
                     seen_upload_id = ?7 WHERE tenant_id = ?1 AND line_key = ?2",
                )
                .and_then(|mut statement| {
                    statement.execute(params![
                        tenant_key,
                        key,
                        series,
                        day,
                        line.units,
                        line.revenue,
                        upload_key
                    ])
                })
                .map_err(unavailable)?;
            if same {
                outcome.duplicate += 1;
            } else {
                outcome.updated += 1;
                add(&mut deltas, old_series, old_day, -old_units, -old_revenue);
                add(&mut deltas, series, day, line.units, line.revenue);
            }
            break;
        }
    }

    let mut upsert = writer
        .connection
        .prepare_cached(
            "INSERT INTO daily_sales (tenant_id, series_id, day, units, revenue) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (tenant_id, series_id, day)
             DO UPDATE SET units = units + excluded.units, revenue = revenue + excluded.revenue",
        )
        .map_err(unavailable)?;
    let mut deltas: Vec<_> = deltas.into_iter().collect();
    // Key order turns random B-tree inserts into a sweep.
    deltas.sort_unstable_by_key(|(key, _)| *key);
    for ((series, day), delta) in deltas {
        upsert
            .execute(params![tenant_key, series, day, delta.units, delta.revenue])
            .map_err(unavailable)?;
    }
    Ok(outcome)
}

fn add(deltas: &mut HashMap<(i64, i32), Delta>, series: i64, day: i32, units: f64, revenue: f64) {
    let delta = deltas.entry((series, day)).or_default();
    delta.units += units;
    delta.revenue += revenue;
}

fn parse_report(text: &str) -> Result<ImportReport, StoreError> {
    serde_json::from_str(text).map_err(StoreError::unavailable)
}

pub(super) fn upload(
    connection: &Connection,
    tenant: &TenantId,
    upload: &UploadId,
) -> Result<ImportReport, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let text: String = connection
        .prepare_cached("SELECT report FROM uploads WHERE tenant_id = ?1 AND public_id = ?2")
        .and_then(|mut statement| {
            statement
                .query_row(params![tenant_key, upload], |row| row.get(0))
                .optional()
        })
        .map_err(unavailable)?
        .ok_or_else(|| not_found("upload", upload))?;
    parse_report(&text)
}

pub(super) fn uploads(
    connection: &Connection,
    tenant: &TenantId,
    limit: u32,
) -> Result<Vec<ImportReport>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let mut statement = connection
        .prepare_cached("SELECT report FROM uploads WHERE tenant_id = ?1 ORDER BY id DESC LIMIT ?2")
        .map_err(unavailable)?;
    let rows = statement
        .query_map(params![tenant_key, limit], |row| row.get::<_, String>(0))
        .map_err(unavailable)?;
    rows.map(|row| parse_report(&row.map_err(unavailable)?))
        .collect()
}

pub(super) fn sales(
    connection: &Connection,
    tenant: &TenantId,
    query: &SalesQuery,
) -> Result<Vec<SalesDay>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let mut series_statement = connection
        .prepare_cached(
            "SELECT id, sku, location FROM series
             WHERE tenant_id = ?1 AND (?2 IS NULL OR sku = ?2) AND (?3 IS NULL OR location = ?3)
             ORDER BY sku, location",
        )
        .map_err(unavailable)?;
    let series: Vec<(i64, String, String)> = series_statement
        .query_map(
            params![
                tenant_key,
                query.sku.as_ref().map(Sku::as_str),
                query.location.as_ref().map(Location::as_str)
            ],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .map_err(unavailable)?
        .collect::<Result<_, _>>()
        .map_err(unavailable)?;
    let from = query.days.from.map_or(i32::MIN, day_number);
    let to = query.days.to.map_or(i32::MAX, day_number);
    let mut days_statement = connection
        .prepare_cached(
            "SELECT day, units, revenue FROM daily_sales
             WHERE tenant_id = ?1 AND series_id = ?2 AND day BETWEEN ?3 AND ?4 ORDER BY day",
        )
        .map_err(unavailable)?;
    let mut result = Vec::new();
    for (series_key, sku, location) in series {
        let sku = Sku::parse(&sku).map_err(StoreError::unavailable)?;
        let location = Location::parse(&location).map_err(StoreError::unavailable)?;
        let rows = days_statement
            .query_map(params![tenant_key, series_key, from, to], |row| {
                Ok((
                    row.get::<_, i32>(0)?,
                    row.get::<_, f64>(1)?,
                    row.get::<_, f64>(2)?,
                ))
            })
            .map_err(unavailable)?;
        let start = result.len();
        for row in rows {
            let (day, units, revenue) = row.map_err(unavailable)?;
            let mut date = day_from_number(day)?;
            if query.granularity == Granularity::Week {
                date = date
                    .checked_sub_days(chrono::Days::new(u64::from(
                        date.weekday().num_days_from_monday(),
                    )))
                    .unwrap_or(date);
                if let Some(last) = result.get_mut(start..).and_then(<[SalesDay]>::last_mut)
                    && last.date == date
                {
                    last.units += units;
                    last.revenue += revenue;
                    continue;
                }
            }
            result.push(SalesDay {
                date,
                sku: sku.clone(),
                location: location.clone(),
                units,
                revenue,
            });
        }
    }
    Ok(result)
}

pub(super) fn skus(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Vec<SkuSummary>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let mut statement = connection
        .prepare_cached(
            "SELECT s.sku, s.location, s.product, min(d.day), max(d.day), sum(d.units), sum(d.revenue)
             FROM series s JOIN daily_sales d ON d.tenant_id = s.tenant_id AND d.series_id = s.id
             WHERE s.tenant_id = ?1 GROUP BY s.id ORDER BY s.sku, s.location",
        )
        .map_err(unavailable)?;
    let rows = statement
        .query_map([tenant_key], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
                row.get::<_, i32>(3)?,
                row.get::<_, i32>(4)?,
                row.get::<_, f64>(5)?,
                row.get::<_, f64>(6)?,
            ))
        })
        .map_err(unavailable)?;
    let mut summaries: Vec<SkuSummary> = Vec::new();
    for row in rows {
        let (sku, location, product, first, last, units, revenue) = row.map_err(unavailable)?;
        let sku = Sku::parse(&sku).map_err(StoreError::unavailable)?;
        let location = Location::parse(&location).map_err(StoreError::unavailable)?;
        let (first, last) = (day_from_number(first)?, day_from_number(last)?);
        match summaries.last_mut() {
            Some(summary) if summary.sku == sku => {
                summary.locations.push(location);
                summary.first_sale = summary.first_sale.min(first);
                summary.last_sale = summary.last_sale.max(last);
                summary.units += units;
                summary.revenue += revenue;
                if summary.product.is_none() {
                    summary.product = product;
                }
            }
            _ => summaries.push(SkuSummary {
                sku,
                product,
                locations: vec![location],
                first_sale: first,
                last_sale: last,
                units,
                revenue,
            }),
        }
    }
    Ok(summaries)
}
