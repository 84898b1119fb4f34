//! Uploads, sales lines and daily sales in SQLite.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};
use rusqlite::{Connection, OptionalExtension, ToSql, params, params_from_iter};

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
    let (sku, location) = (line.sku.as_str(), line.location.as_str());
    if let Some(key) = writer
        .series_keys
        .get(&tenant_key)
        .and_then(|skus| skus.get(sku))
        .and_then(|locations| locations.get(location))
    {
        return Ok(*key);
    }
    let connection = &writer.connection;
    connection
        .prepare_cached(
            "INSERT INTO series (tenant_id, sku, location, product) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id, sku, location)
             DO UPDATE SET product = coalesce(series.product, excluded.product)",
        )
        .and_then(|mut statement| {
            statement.execute(params![tenant_key, sku, location, line.product])
        })
        .map_err(unavailable)?;
    let key: i64 = connection
        .prepare_cached("SELECT id FROM series WHERE tenant_id = ?1 AND sku = ?2 AND location = ?3")
        .and_then(|mut statement| {
            statement.query_row(params![tenant_key, sku, location], |row| row.get(0))
        })
        .map_err(unavailable)?;
    writer
        .series_keys
        .entry(tenant_key)
        .or_default()
        .entry(sku.to_owned())
        .or_default()
        .insert(location.to_owned(), key);
    Ok(key)
}

/// Net change of one day and series within a batch.
#[derive(Default, Clone, Copy)]
struct Delta {
    units: f64,
    revenue: f64,
}

/// A stored line as the probe finds it.
struct StoredLine {
    series: i64,
    units: f64,
    revenue: f64,
    seen_upload: i64,
}

pub(super) fn write_sales(
    writer: &mut Writer,
    tenant: &TenantId,
    upload: &UploadId,
    lines: &[SalesLine],
) -> Result<SalesWrite, StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let upload_key = upload_key(&writer.connection, tenant_key, upload)?;
    // Visit lines in key order: B-tree inserts become an append or a sweep instead of random
    // page writes. The sort is stable, so repeats of one identity keep their file order.
    let mut order = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let series = series_key(writer, tenant_key, line)?;
        order.push((day_number(line.date), line.identity.key(0), series, index));
    }
    order.sort_by_key(|(day, key, _, _)| (*day, *key));

    let connection = &writer.connection;
    let mut outcome = SalesWrite::default();
    let mut deltas: Vec<(i32, i64, Delta)> = Vec::with_capacity(lines.len());
    let mut conflicted = Vec::new();
    let mut inserted: Vec<(i32, i64)> = Vec::with_capacity(ROWS_PER_STATEMENT);
    for chunk in order.chunks(ROWS_PER_STATEMENT) {
        let mut insert = connection
            .prepare_cached(&insert_lines_sql(chunk.len()))
            .map_err(unavailable)?;
        let mut values: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 8);
        for (day, key, series, index) in chunk {
            let line = &lines[*index];
            values.extend_from_slice(&[
                &tenant_key as &dyn ToSql,
                day,
                key,
                series,
                &line.units,
                &line.revenue,
                &upload_key,
                &upload_key,
            ]);
        }
        inserted.clear();
        let mut rows = insert
            .query(params_from_iter(values))
            .map_err(unavailable)?;
        while let Some(row) = rows.next().map_err(unavailable)? {
            inserted.push((
                row.get(0).map_err(unavailable)?,
                row.get(1).map_err(unavailable)?,
            ));
        }
        drop(rows);
        inserted.sort_unstable();
        for (position, (day, key, series, index)) in chunk.iter().enumerate() {
            // The chunk is sorted, so the first row with a returned key is the one that inserted it.
            let first_with_key = position == 0 || {
                let (previous_day, previous_key, _, _) = &chunk[position - 1];
                (previous_day, previous_key) != (day, key)
            };
            if first_with_key && inserted.binary_search(&(*day, *key)).is_ok() {
                let line = &lines[*index];
                outcome.imported += 1;
                deltas.push((
                    *day,
                    *series,
                    Delta {
                        units: line.units,
                        revenue: line.revenue,
                    },
                ));
            } else {
                conflicted.push((*day, *series, *index));
            }
        }
    }

    // Lines whose first key was taken: repeats within this upload, duplicates and updates.
    let mut insert_one = connection
        .prepare_cached(&insert_lines_sql(1))
        .map_err(unavailable)?;
    let mut probe = connection
        .prepare_cached(
            "SELECT series_id, units, revenue, seen_upload_id FROM sales_lines
             WHERE tenant_id = ?1 AND day = ?2 AND line_key = ?3",
        )
        .map_err(unavailable)?;
    let mut replace = connection
        .prepare_cached(
            "UPDATE sales_lines SET series_id = ?4, units = ?5, revenue = ?6, seen_upload_id = ?7
             WHERE tenant_id = ?1 AND day = ?2 AND line_key = ?3",
        )
        .map_err(unavailable)?;
    for (day, series, index) in conflicted {
        let line = &lines[index];
        let mut occurrence = 0u32;
        loop {
            let key = line.identity.key(occurrence);
            let stored = probe
                .query_row(params![tenant_key, day, key], |row| {
                    Ok(StoredLine {
                        series: row.get(0)?,
                        units: row.get(1)?,
                        revenue: row.get(2)?,
                        seen_upload: row.get(3)?,
                    })
                })
                .optional()
                .map_err(unavailable)?;
            let Some(stored) = stored else {
                insert_one
                    .query(params![
                        tenant_key,
                        day,
                        key,
                        series,
                        line.units,
                        line.revenue,
                        upload_key,
                        upload_key
                    ])
                    .and_then(|mut rows| rows.next().map(|_| ()))
                    .map_err(unavailable)?;
                outcome.imported += 1;
                deltas.push((
                    day,
                    series,
                    Delta {
                        units: line.units,
                        revenue: line.revenue,
                    },
                ));
                break;
            };
            if stored.seen_upload == upload_key {
                // An earlier row of this same upload holds this occurrence: this row is another sale.
                occurrence += 1;
                continue;
            }
            replace
                .execute(params![
                    tenant_key,
                    day,
                    key,
                    series,
                    line.units,
                    line.revenue,
                    upload_key
                ])
                .map_err(unavailable)?;
            if stored.series == series
                && stored.units == line.units
                && stored.revenue == line.revenue
            {
                outcome.duplicate += 1;
            } else {
                outcome.updated += 1;
                deltas.push((
                    day,
                    stored.series,
                    Delta {
                        units: -stored.units,
                        revenue: -stored.revenue,
                    },
                ));
                deltas.push((
                    day,
                    series,
                    Delta {
                        units: line.units,
                        revenue: line.revenue,
                    },
                ));
            }
            break;
        }
    }

    // Merge the deltas per day and series, then upsert them in key order.
    deltas.sort_unstable_by_key(|(day, series, _)| (*day, *series));
    let mut merged: Vec<(i32, i64, Delta)> = Vec::with_capacity(deltas.len());
    for (day, series, delta) in deltas {
        match merged.last_mut() {
            Some((last_day, last_series, total)) if (*last_day, *last_series) == (day, series) => {
                total.units += delta.units;
                total.revenue += delta.revenue;
            }
            _ => merged.push((day, series, delta)),
        }
    }
    for chunk in merged.chunks(ROWS_PER_STATEMENT) {
        let mut upsert = connection
            .prepare_cached(&upsert_daily_sql(chunk.len()))
            .map_err(unavailable)?;
        let mut values: Vec<&dyn ToSql> = Vec::with_capacity(chunk.len() * 5);
        for (day, series, delta) in chunk {
            values.extend_from_slice(&[
                &tenant_key as &dyn ToSql,
                day,
                series,
                &delta.units,
                &delta.revenue,
            ]);
        }
        upsert
            .execute(params_from_iter(values))
            .map_err(unavailable)?;
    }
    Ok(outcome)
}

/// Rows per multi-row statement: one statement per 100 rows costs far less than 100 statements.
const ROWS_PER_STATEMENT: usize = 100;

/// `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING RETURNING day, line_key`: returns the rows
/// it inserted, so the ones it did not are known without a probe per row.
fn insert_lines_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO sales_lines
         (tenant_id, day, line_key, series_id, units, revenue, upload_id, seen_upload_id) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 {
            "(?,?,?,?,?,?,?,?)"
        } else {
            ",(?,?,?,?,?,?,?,?)"
        });
    }
    sql.push_str(" ON CONFLICT DO NOTHING RETURNING day, line_key");
    sql
}

fn upsert_daily_sql(rows: usize) -> String {
    let mut sql =
        String::from("INSERT INTO daily_sales (tenant_id, day, series_id, units, revenue) VALUES ");
    for row in 0..rows {
        sql.push_str(if row == 0 {
            "(?,?,?,?,?)"
        } else {
            ",(?,?,?,?,?)"
        });
    }
    sql.push_str(
        " ON CONFLICT (tenant_id, day, series_id)
          DO UPDATE SET units = units + excluded.units, revenue = revenue + excluded.revenue",
    );
    sql
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

/// Above this many series-days a read scans the tenant's days instead of looking each one up.
const MAX_POINT_LOOKUPS: i64 = 100_000;

/// The days with sales of one series: `(day, units, revenue)`, ascending.
type SeriesDays = Vec<(i32, f64, f64)>;

pub(super) fn sales(
    connection: &Connection,
    tenant: &TenantId,
    query: &SalesQuery,
) -> Result<Vec<SalesDay>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let series: Vec<(i64, String, String)> = connection
        .prepare_cached(
            "SELECT id, sku, location FROM series
             WHERE tenant_id = ?1 AND (?2 IS NULL OR sku = ?2) AND (?3 IS NULL OR location = ?3)
             ORDER BY sku, location",
        )
        .and_then(|mut statement| {
            statement
                .query_map(
                    params![
                        tenant_key,
                        query.sku.as_ref().map(Sku::as_str),
                        query.location.as_ref().map(Location::as_str)
                    ],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )?
                .collect()
        })
        .map_err(unavailable)?;
    if series.is_empty() {
        return Ok(Vec::new());
    }
    let (first, last): (Option<i32>, Option<i32>) = connection
        .prepare_cached("SELECT min(day), max(day) FROM daily_sales WHERE tenant_id = ?1")
        .and_then(|mut statement| {
            statement.query_row([tenant_key], |row| Ok((row.get(0)?, row.get(1)?)))
        })
        .map_err(unavailable)?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(Vec::new());
    };
    let from = query.days.from.map_or(first, day_number).max(first);
    let to = query.days.to.map_or(last, day_number).min(last);
    if from > to {
        return Ok(Vec::new());
    }
    let n_lookups = (series.len() as i64).saturating_mul(i64::from(to - from + 1));
    let mut days_by_series: HashMap<i64, SeriesDays> = HashMap::new();
    if n_lookups <= MAX_POINT_LOOKUPS {
        let mut lookup = connection
            .prepare_cached(
                "SELECT units, revenue FROM daily_sales WHERE tenant_id = ?1 AND day = ?2 AND series_id = ?3",
            )
            .map_err(unavailable)?;
        for (series_key, _, _) in &series {
            let days = days_by_series.entry(*series_key).or_default();
            for day in from..=to {
                let found: Option<(f64, f64)> = lookup
                    .query_row(params![tenant_key, day, series_key], |row| {
                        Ok((row.get(0)?, row.get(1)?))
                    })
                    .optional()
                    .map_err(unavailable)?;
                if let Some((units, revenue)) = found {
                    days.push((day, units, revenue));
                }
            }
        }
    } else {
        let wanted: std::collections::HashSet<i64> =
            series.iter().map(|(key, _, _)| *key).collect();
        let mut scan = connection
            .prepare_cached(
                "SELECT day, series_id, units, revenue FROM daily_sales
                 WHERE tenant_id = ?1 AND day BETWEEN ?2 AND ?3",
            )
            .map_err(unavailable)?;
        let mut rows = scan
            .query(params![tenant_key, from, to])
            .map_err(unavailable)?;
        while let Some(row) = rows.next().map_err(unavailable)? {
            let series_key: i64 = row.get(1).map_err(unavailable)?;
            if wanted.contains(&series_key) {
                days_by_series.entry(series_key).or_default().push((
                    row.get(0).map_err(unavailable)?,
                    row.get(2).map_err(unavailable)?,
                    row.get(3).map_err(unavailable)?,
                ));
            }
        }
    }
    let mut result = Vec::new();
    for (series_key, sku, location) in series {
        let Some(days) = days_by_series.remove(&series_key) else {
            continue;
        };
        let sku = Sku::parse(&sku).map_err(StoreError::unavailable)?;
        let location = Location::parse(&location).map_err(StoreError::unavailable)?;
        let start = result.len();
        for (day, units, revenue) in days {
            let mut date = day_from_number(day)?;
            if query.granularity == Granularity::Week {
                let back = chrono::Days::new(u64::from(date.weekday().num_days_from_monday()));
                date = date.checked_sub_days(back).unwrap_or(date);
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
    let mut totals: HashMap<i64, (i32, i32, f64, f64)> = HashMap::new();
    {
        let mut statement = connection
            .prepare_cached(
                "SELECT series_id, min(day), max(day), sum(units), sum(revenue) FROM daily_sales
                 WHERE tenant_id = ?1 GROUP BY series_id",
            )
            .map_err(unavailable)?;
        let mut rows = statement.query([tenant_key]).map_err(unavailable)?;
        while let Some(row) = rows.next().map_err(unavailable)? {
            totals.insert(
                row.get(0).map_err(unavailable)?,
                (
                    row.get(1).map_err(unavailable)?,
                    row.get(2).map_err(unavailable)?,
                    row.get(3).map_err(unavailable)?,
                    row.get(4).map_err(unavailable)?,
                ),
            );
        }
    }
    let mut statement = connection
        .prepare_cached("SELECT id, sku, location, product FROM series WHERE tenant_id = ?1 ORDER BY sku, location")
        .map_err(unavailable)?;
    let mut rows = statement.query([tenant_key]).map_err(unavailable)?;
    let mut summaries: Vec<SkuSummary> = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let series_key: i64 = row.get(0).map_err(unavailable)?;
        let Some((first, last, units, revenue)) = totals.get(&series_key).copied() else {
            continue;
        };
        let sku = Sku::parse(&row.get::<_, String>(1).map_err(unavailable)?)
            .map_err(StoreError::unavailable)?;
        let location = Location::parse(&row.get::<_, String>(2).map_err(unavailable)?)
            .map_err(StoreError::unavailable)?;
        let product: Option<String> = row.get(3).map_err(unavailable)?;
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
