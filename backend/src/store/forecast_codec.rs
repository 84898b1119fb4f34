//! How both adapters store a forecast: its metadata as JSON ([`Meta`]) and its points as
//! little-endian f32 quintuples (mean, lo80, hi80, lo95, hi95), one per day from the first
//! point's date (20 bytes a day).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Backtest, CandidateScore, ForecastPoint};

/// Everything of a forecast but its points, stored as JSON.
#[derive(Serialize, Deserialize)]
pub(crate) struct Meta {
    pub model: String,
    pub demand_class: Option<String>,
    pub generated_at: DateTime<Utc>,
    pub backtest: Backtest,
    pub candidates: Vec<CandidateScore>,
}

/// The points' bytes.
pub(crate) fn encode_points(points: &[ForecastPoint]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(points.len() * 20);
    for point in points {
        for value in [point.mean, point.lo80, point.hi80, point.lo95, point.hi95] {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
    }
    bytes
}

/// The first `days` points (all without it) of `bytes`, dated from `start`.
pub(crate) fn decode_points(
    start: NaiveDate,
    bytes: &[u8],
    days: Option<usize>,
) -> Vec<ForecastPoint> {
    bytes
        .chunks_exact(20)
        .zip(start.iter_days())
        .take(days.unwrap_or(usize::MAX))
        .map(|(chunk, date)| {
            let value = |index: usize| {
                let mut raw = [0u8; 4];
                raw.copy_from_slice(&chunk[index * 4..index * 4 + 4]);
                f32::from_le_bytes(raw)
            };
            ForecastPoint {
                date,
                mean: value(0),
                lo80: value(1),
                hi80: value(2),
                lo95: value(3),
                hi95: value(4),
            }
        })
        .collect()
}
