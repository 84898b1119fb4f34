//! Sales histories for forecasting and stored forecasts in SQLite.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rusqlite::{Connection, params};

use super::{Writer, read_tenant_key};
use crate::domain::{Location, SeriesForecast, SeriesHistory, Sku, TenantId};
use crate::store::StoreError;

fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::unavailable(error)
}

fn corrupt(message: &str) -> StoreError {
    StoreError::Unavailable(message.to_owned().into())
}

/// Series of the tenant: id → (sku, location), ordered by SKU and location.
fn series_names(
    connection: &Connection,
    tenant_key: i64,
) -> Result<Vec<(i64, Sku, Location)>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT id, sku, location FROM series WHERE tenant_id = ?1 ORDER BY sku, location",
        )
        .map_err(unavailable)?;
    let mut rows = statement.query([tenant_key]).map_err(unavailable)?;
    let mut names = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        let sku: String = row.get(1).map_err(unavailable)?;
        let location: String = row.get(2).map_err(unavailable)?;
        names.push((
            row.get(0).map_err(unavailable)?,
            Sku::parse(&sku).map_err(StoreError::unavailable)?,
            Location::parse(&location).map_err(StoreError::unavailable)?,
        ));
    }
    Ok(names)
}

pub(super) fn sales_history(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Vec<SeriesHistory>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let mut by_series: HashMap<i64, (i32, Vec<f64>)> = HashMap::new();
    let mut last_day = i32::MIN;
    let mut out_of_order = false;
    super::sales::scan_day_pages(
        connection,
        tenant_key,
        super::sales::ALL_DAYS,
        |_| true,
        |day, cell| {
            last_day = last_day.max(day);
            let (start, values) = by_series
                .entry(cell.series)
                .or_insert_with(|| (day, Vec::new()));
            let Ok(offset) = usize::try_from(day - *start) else {
                out_of_order = true;
                return;
            };
            if values.len() <= offset {
                values.resize(offset + 1, 0.0);
            }
            values[offset] += cell.units;
        },
    )?;
    if out_of_order {
        return Err(corrupt("daily sales out of order"));
    }
    let mut histories = Vec::with_capacity(by_series.len());
    for (series, sku, location) in series_names(connection, tenant_key)? {
        let Some((start, mut units)) = by_series.remove(&series) else {
            continue;
        };
        let length = usize::try_from(last_day - start + 1)
            .map_err(|_| corrupt("series starts after the last day"))?;
        units.resize(length, 0.0);
        histories.push(SeriesHistory {
            sku,
            location,
            start: NaiveDate::from_num_days_from_ce_opt(start)
                .ok_or_else(|| corrupt("day out of range"))?,
            units,
        });
    }
    Ok(histories)
}

use crate::store::forecast_codec::{Meta, decode_points, encode_points};

pub(super) fn put_forecasts(
    writer: &mut Writer,
    tenant: &TenantId,
    forecasts: &[SeriesForecast],
) -> Result<(), StoreError> {
    let tenant_key = writer.tenant_key(tenant)?;
    let mut statement = writer
        .connection
        .prepare_cached(
            "INSERT INTO forecasts (tenant_id, series_id, start, meta, points)
             SELECT ?1, id, ?4, ?5, ?6 FROM series WHERE tenant_id = ?1 AND sku = ?2 AND location = ?3
             ON CONFLICT (tenant_id, series_id) DO UPDATE SET start = excluded.start, meta = excluded.meta,
             points = excluded.points",
        )
        .map_err(unavailable)?;
    for forecast in forecasts {
        let meta = Meta {
            model: forecast.model.clone(),
            demand_class: forecast.demand_class.clone(),
            generated_at: forecast.generated_at,
            backtest: forecast.backtest,
            candidates: forecast.candidates.clone(),
        };
        let start = forecast
            .points
            .first()
            .map_or(0, |point| point.date.num_days_from_ce());
        statement
            .execute(params![
                tenant_key,
                forecast.sku.as_str(),
                forecast.location.as_str(),
                start,
                serde_json::to_string(&meta).map_err(StoreError::unavailable)?,
                encode_points(&forecast.points)
            ])
            .map_err(unavailable)?;
    }
    Ok(())
}

pub(super) fn oldest_forecast(
    connection: &Connection,
    tenant: &TenantId,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    // Only the time out of each row's metadata, not the whole of it.
    let mut statement = connection
        .prepare_cached(
            "SELECT json_extract(meta, '$.generated_at') FROM forecasts WHERE tenant_id = ?1",
        )
        .map_err(unavailable)?;
    let mut rows = statement.query([tenant_key]).map_err(unavailable)?;
    let mut oldest: Option<DateTime<Utc>> = None;
    while let Some(row) = rows.next().map_err(unavailable)? {
        let text: String = row.get(0).map_err(unavailable)?;
        let made = DateTime::parse_from_rfc3339(&text)
            .map_err(StoreError::unavailable)?
            .with_timezone(&Utc);
        oldest = Some(oldest.map_or(made, |oldest| oldest.min(made)));
    }
    Ok(oldest)
}

pub(super) fn forecasts(
    connection: &Connection,
    tenant: &TenantId,
    sku: Option<&Sku>,
    location: Option<&Location>,
    days: Option<usize>,
) -> Result<Vec<SeriesForecast>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    // Only the bytes of the points wanted leave SQLite (20 bytes a day).
    let bytes = days.map(|days| i64::try_from(days.saturating_mul(20)).unwrap_or(i64::MAX));
    let mut statement = connection
        .prepare_cached(
            "SELECT s.sku, s.location, f.start, f.meta,
                    CASE WHEN ?4 IS NULL THEN f.points ELSE substr(f.points, 1, ?4) END
             FROM forecasts f
             JOIN series s ON s.id = f.series_id
             WHERE f.tenant_id = ?1 AND (?2 IS NULL OR s.sku = ?2) AND (?3 IS NULL OR s.location = ?3)
             ORDER BY s.sku, s.location",
        )
        .map_err(unavailable)?;
    let mut rows = statement
        .query(params![
            tenant_key,
            sku.map(Sku::as_str),
            location.map(Location::as_str),
            bytes
        ])
        .map_err(unavailable)?;
    let mut result = Vec::new();
    while let Some(row) = rows.next().map_err(unavailable)? {
        result.push(forecast_row(row)?);
    }
    Ok(result)
}

/// A stored forecast from a row of `sku, location, start, meta, points`.
fn forecast_row(row: &rusqlite::Row<'_>) -> Result<SeriesForecast, StoreError> {
    let sku: String = row.get(0).map_err(unavailable)?;
    let location: String = row.get(1).map_err(unavailable)?;
    let start: i32 = row.get(2).map_err(unavailable)?;
    let meta: String = row.get(3).map_err(unavailable)?;
    let points: Vec<u8> = row.get(4).map_err(unavailable)?;
    let meta: Meta = serde_json::from_str(&meta).map_err(StoreError::unavailable)?;
    let start =
        NaiveDate::from_num_days_from_ce_opt(start).ok_or_else(|| corrupt("day out of range"))?;
    Ok(SeriesForecast {
        sku: Sku::parse(&sku).map_err(StoreError::unavailable)?,
        location: Location::parse(&location).map_err(StoreError::unavailable)?,
        model: meta.model,
        demand_class: meta.demand_class,
        generated_at: meta.generated_at,
        points: decode_points(start, &points, None),
        backtest: meta.backtest,
        candidates: meta.candidates,
    })
}

/// The stored forecasts of the listed series (one indexed lookup each, on one connection), each
/// with its first `days` points, ordered by SKU and location; series without one are left out.
pub(super) fn forecasts_of(
    connection: &Connection,
    tenant: &TenantId,
    series: &[(Sku, Location)],
    days: Option<usize>,
) -> Result<Vec<SeriesForecast>, StoreError> {
    let tenant_key = read_tenant_key(connection, tenant)?;
    let bytes = days.map(|days| i64::try_from(days.saturating_mul(20)).unwrap_or(i64::MAX));
    let mut statement = connection
        .prepare_cached(
            "SELECT s.sku, s.location, f.start, f.meta,
                    CASE WHEN ?4 IS NULL THEN f.points ELSE substr(f.points, 1, ?4) END
             FROM series s
             JOIN forecasts f ON f.tenant_id = s.tenant_id AND f.series_id = s.id
             WHERE s.tenant_id = ?1 AND s.sku = ?2 AND s.location = ?3",
        )
        .map_err(unavailable)?;
    let mut wanted: Vec<&(Sku, Location)> = series.iter().collect();
    wanted.sort();
    wanted.dedup();
    let mut result = Vec::new();
    for (sku, location) in wanted {
        let mut rows = statement
            .query(params![tenant_key, sku.as_str(), location.as_str(), bytes])
            .map_err(unavailable)?;
        if let Some(row) = rows.next().map_err(unavailable)? {
            result.push(forecast_row(row)?);
        }
    }
    Ok(result)
}
