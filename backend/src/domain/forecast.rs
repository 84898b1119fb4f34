//! Forecasts: per SKU × location daily demand with prediction intervals and backtest accuracy.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{Location, Sku};

/// Longest forecast horizon, in days.
pub const MAX_HORIZON_DAYS: usize = 365;

/// One forecast day: the mean and the 80 % and 95 % prediction intervals, never negative.
///
/// Single precision, as stored: a tenant's forecasts are series × 365 of these, and demand
/// forecasts carry nowhere near seven significant digits. Computations widen to `f64`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForecastPoint {
    /// The day.
    pub date: NaiveDate,
    /// Expected units.
    pub mean: f32,
    /// Lower bound of the 80 % interval.
    pub lo80: f32,
    /// Upper bound of the 80 % interval.
    pub hi80: f32,
    /// Lower bound of the 95 % interval.
    pub lo95: f32,
    /// Upper bound of the 95 % interval.
    pub hi95: f32,
}

impl ForecastPoint {
    /// A point from double-precision values, rounded to single precision.
    pub fn new(date: NaiveDate, mean: f64, lo80: f64, hi80: f64, lo95: f64, hi95: f64) -> Self {
        Self {
            date,
            mean: mean as f32,
            lo80: lo80 as f32,
            hi80: hi80 as f32,
            lo95: lo95 as f32,
            hi95: hi95 as f32,
        }
    }

    /// `[mean, lo80, hi80, lo95, hi95]` in double precision, for computing with.
    pub fn values(&self) -> [f64; 5] {
        [self.mean, self.lo80, self.hi80, self.lo95, self.hi95].map(f64::from)
    }

    /// The expected units in double precision.
    pub fn expected(&self) -> f64 {
        f64::from(self.mean)
    }
}

/// Accuracy of the chosen model in rolling-origin backtests; `None` where history was too short.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Backtest {
    /// Root mean squared scaled error (below 1 beats the one-step naive forecast in-sample).
    pub rmsse: Option<f64>,
    /// Mean error over mean actual: positive means over-forecasting.
    pub bias: Option<f64>,
    /// Share of backtest actuals inside the 80 % interval.
    pub coverage80: Option<f64>,
    /// Share of backtest actuals inside the 95 % interval.
    pub coverage95: Option<f64>,
    /// Mean absolute scaled error.
    pub mase: Option<f64>,
}

/// A candidate model's backtest score, kept to explain the choice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CandidateScore {
    /// Model name.
    pub model: String,
    /// Its backtest RMSSE.
    pub rmsse: f64,
    /// Its backtest bias.
    pub bias: f64,
}

/// The stored forecast of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesForecast {
    /// SKU.
    pub sku: Sku,
    /// Location.
    pub location: Location,
    /// Chosen model (or `SimpleAverage (short history)`).
    pub model: String,
    /// Demand class: smooth, erratic, intermittent or lumpy.
    pub demand_class: Option<String>,
    /// When it was computed.
    pub generated_at: DateTime<Utc>,
    /// Daily points from the day after the last sale date of the tenant.
    pub points: Vec<ForecastPoint>,
    /// Backtest accuracy of the chosen model.
    pub backtest: Backtest,
    /// Candidates scored, best first.
    pub candidates: Vec<CandidateScore>,
}

/// Daily units of one series, zero-filled from its first sale to the tenant's last sales day.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesHistory {
    /// SKU.
    pub sku: Sku,
    /// Location.
    pub location: Location,
    /// Day of `units[0]`.
    pub start: NaiveDate,
    /// Net units per day (refunds can make a day negative).
    pub units: Vec<f64>,
}
