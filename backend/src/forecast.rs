//! Forecasting: the models (each behind the small `Model` trait), demand classification, accuracy
//! metrics, interval helpers, per-series model selection (`engine`) and the use case that refreshes a
//! tenant's stored forecasts. Models and the engine do no IO; `refresh_tenant` reads histories from
//! and writes forecasts to the `Store`.

pub mod demand;
pub mod engine;
pub mod intervals;
pub mod metrics;
pub mod model;
pub mod models;
pub mod optimize;
pub mod refresher;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;

pub use model::{Model, ModelError, ModelForecast};
pub use refresher::Refresher;

use crate::domain::{MAX_HORIZON_DAYS, SeriesForecast, TenantId};
use crate::store::{Store, StoreError};

/// Forecasts stored per write.
const FORECASTS_PER_WRITE: usize = 1_000;

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refresh {
    /// Series forecast.
    pub series: usize,
}

/// Recomputes and stores the forecasts of every series of `tenant`, `MAX_HORIZON_DAYS` ahead of its
/// last sales day, on all cores. `progress(done, total)` is called as series finish.
///
/// # Errors
/// When the store fails.
pub async fn refresh_tenant(
    store: Arc<dyn Store>,
    tenant: &TenantId,
    progress: Arc<dyn Fn(usize, usize) + Send + Sync>,
) -> Result<Refresh, StoreError> {
    let histories = store.sales_history(tenant).await?;
    let Some(last_day) = histories
        .iter()
        .map(|series| series.start + chrono::Days::new(series.units.len().saturating_sub(1) as u64))
        .max()
    else {
        return Ok(Refresh { series: 0 });
    };
    let total = histories.len();
    let generated_at = Utc::now();
    let forecasts = tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .max(1);
        let chunk = total.div_ceil(threads).max(1);
        let done = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            let workers: Vec<_> = histories
                .chunks(chunk)
                .map(|part| {
                    let done = &done;
                    let progress = &progress;
                    scope.spawn(move || {
                        part.iter()
                            .map(|series| {
                                let forecast = engine::forecast_series(
                                    series,
                                    last_day,
                                    MAX_HORIZON_DAYS,
                                    generated_at,
                                );
                                progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                                forecast
                            })
                            .collect::<Vec<SeriesForecast>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|worker| worker.join().unwrap_or_default())
                .collect::<Vec<SeriesForecast>>()
        })
    })
    .await
    .map_err(StoreError::unavailable)?;
    let series = forecasts.len();
    let mut forecasts = forecasts;
    while !forecasts.is_empty() {
        let rest = forecasts.split_off(forecasts.len().min(FORECASTS_PER_WRITE));
        store.put_forecasts(tenant, forecasts).await?;
        forecasts = rest;
    }
    tracing::info!(tenant_id = %tenant, series, "forecasts refreshed");
    Ok(Refresh { series })
}
