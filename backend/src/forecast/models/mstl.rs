//! MSTL: multiple seasonal-trend decomposition by LOESS with a non-seasonal ETS on the
//! deseasonalised series, following statsforecast 2.1.1's `MSTL(season_length)`.
//!
//! The decomposition is statsforecast's `mstl` (a port of R's `forecast::mstl`): the periods are
//! sorted, and each in turn (two sweeps when there are several, one otherwise) is added back to
//! the deseasonalised series, re-estimated by [`Stl`] with seasonal window `7 + 4·i` for the
//! `i`-th period (11, 15, 19, ...), seasonal degree 0 and statsmodels' other defaults, and
//! removed again. The trend is the last STL's trend.
//!
//! The forecast is statsforecast's: trend + remainder goes to non-seasonal AutoETS (its default
//! `trend_forecaster=AutoETS(model='ZZN')`, here [`AutoEts`] with `season_length: 1`, which
//! searches the same forms: error A/M × trend N/A/Ad), and each seasonal component is continued
//! by repeating its last full cycle.
//!
//! One deliberate difference: periods with fewer than two full cycles in the history
//! (`2·period >= n`) are dropped, as R's `mstl` does. statsforecast 2.1.1 keeps them and fits
//! a seasonal component from one or two observations per phase (and reads past the series when
//! `period > n`); on the Online Retail tenant total (711 days) that turns its `[7, 365]`
//! forecast's RMSSE from 0.51 (`[7]` alone) into 0.72. Periods below 2 are ignored (a
//! season of 1 is no season; statsforecast would switch the whole decomposition to a
//! supersmoother trend, which leaves the same ETS forecast).

mod stl;

pub use stl::{Stl, StlComponents, StlWorkspace};

use crate::forecast::model::{Model, ModelError, ModelForecast, validate_history};
use crate::forecast::models::ets::AutoEts;

/// Seasonal LOESS window of the `index`-th (0-based, shortest first) period: 11, 15, 19, ...
fn seasonal_window(index: usize) -> usize {
    7 + 4 * (index + 1)
}

/// An MSTL decomposition: `history = trend + Σ seasonals + remainder`.
#[derive(Debug, Clone, PartialEq)]
pub struct MstlDecomposition {
    /// The seasonal periods, shortest first, one per entry of `seasonals`.
    pub periods: Vec<usize>,
    /// Trend component (the trend of the last STL fit).
    pub trend: Vec<f64>,
    /// Seasonal components, one per period.
    pub seasonals: Vec<Vec<f64>>,
    /// Remainder: the deseasonalised series minus the trend.
    pub remainder: Vec<f64>,
}

impl MstlDecomposition {
    /// The seasonally adjusted series `trend + remainder` that the trend forecaster sees.
    pub fn deseasonalised(&self) -> Vec<f64> {
        self.trend
            .iter()
            .zip(&self.remainder)
            .map(|(trend, remainder)| trend + remainder)
            .collect()
    }

    /// Sum of the seasonal components at every observation.
    pub fn seasonal_total(&self) -> Vec<f64> {
        let mut total = vec![0.0; self.trend.len()];
        for seasonal in &self.seasonals {
            for (sum, value) in total.iter_mut().zip(seasonal) {
                *sum += value;
            }
        }
        total
    }

    /// Seasonal part of the forecast: each component repeats its last full cycle (statsforecast's
    /// `_predict_mstl_seas`), summed over components, for `horizon` steps.
    pub fn seasonal_forecast(&self, horizon: usize) -> Vec<f64> {
        let mut total = vec![0.0; horizon];
        for (seasonal, &period) in self.seasonals.iter().zip(&self.periods) {
            let last_cycle = &seasonal[seasonal.len() - period..];
            for (sum, value) in total.iter_mut().zip(last_cycle.iter().cycle()) {
                *sum += value;
            }
        }
        total
    }
}

/// statsforecast's `mstl(x, period)`: decomposes `history` by the given seasonal periods (sorted
/// and deduplicated here), dropping none. Every period must be at least 2 and at most the history
/// length; values must be finite.
pub fn decompose(history: &[f64], periods: &[usize]) -> Result<MstlDecomposition, ModelError> {
    validate_history(history, 1)?;
    let mut periods = periods.to_vec();
    periods.sort_unstable();
    periods.dedup();
    if periods.is_empty() || periods[0] < 2 {
        return Err(ModelError::InvalidParameter {
            name: "periods",
            expected: "at least one period, each >= 2",
        });
    }
    let n = history.len();
    let sweeps = if periods.len() == 1 { 1 } else { 2 };
    let mut seasonals = vec![vec![0.0; n]; periods.len()];
    let mut deseasonalised = history.to_vec();
    let mut trend = vec![0.0; n];
    let mut workspace = StlWorkspace::default();
    for _ in 0..sweeps {
        for (index, (seasonal, &period)) in seasonals.iter_mut().zip(&periods).enumerate() {
            for (value, season) in deseasonalised.iter_mut().zip(seasonal.iter()) {
                *value += season;
            }
            let stl = Stl {
                seasonal_deg: 0,
                ..Stl::new(period, seasonal_window(index))
            };
            stl.fit_into(&deseasonalised, &mut workspace, seasonal, &mut trend)?;
            for (value, season) in deseasonalised.iter_mut().zip(seasonal.iter()) {
                *value -= season;
            }
        }
    }
    let remainder = deseasonalised
        .iter()
        .zip(&trend)
        .map(|(value, trend)| value - trend)
        .collect();
    Ok(MstlDecomposition {
        periods,
        trend,
        seasonals,
        remainder,
    })
}

/// The periods [`Mstl`] decomposes a history of `len` observations by: sorted, deduplicated,
/// without periods below 2 and without those with fewer than two full cycles (`2·period >= len`).
pub fn usable_periods(season_lengths: &[usize], len: usize) -> Vec<usize> {
    let mut periods: Vec<usize> = season_lengths
        .iter()
        .copied()
        .filter(|&period| period >= 2 && 2 * period < len)
        .collect();
    periods.sort_unstable();
    periods.dedup();
    periods
}

/// MSTL with AutoETS on the deseasonalised series (statsforecast `MSTL(season_length)` with its
/// default trend forecaster). See the module documentation for the one deliberate difference.
///
/// Needs at least 7 observations (the trend forecaster's minimum). Periods the history cannot
/// support are dropped; with none left the forecast is non-seasonal AutoETS on the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mstl {
    /// Seasonal periods, e.g. `[7]` for a weekly pattern in daily data or `[7, 365]`.
    pub season_lengths: Vec<usize>,
}

impl Model for Mstl {
    fn name(&self) -> &'static str {
        "MSTL"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        if self.season_lengths.is_empty() || self.season_lengths.contains(&0) {
            return Err(ModelError::InvalidParameter {
                name: "season_lengths",
                expected: "at least one season length, each >= 1",
            });
        }
        validate_history(history, 7)?;
        let trend_forecaster = AutoEts { season_length: 1 };
        let periods = usable_periods(&self.season_lengths, history.len());
        if periods.is_empty() {
            return trend_forecaster.forecast(history, horizon);
        }
        let decomposition = decompose(history, &periods)?;
        let mut forecast = trend_forecaster.forecast(&decomposition.deseasonalised(), horizon)?;
        for (value, season) in forecast
            .mean
            .iter_mut()
            .zip(decomposition.seasonal_forecast(horizon))
        {
            *value += season;
        }
        if let Some(fitted) = forecast.fitted.as_mut() {
            for (value, season) in fitted.iter_mut().zip(decomposition.seasonal_total()) {
                *value += season;
            }
        }
        Ok(forecast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly(days: usize) -> Vec<f64> {
        let pattern = [3.0, 5.0, 4.0, 6.0, 8.0, 1.0, 0.0];
        (0..days)
            .map(|t| 20.0 + 0.05 * t as f64 + pattern[t % 7])
            .collect()
    }

    #[test]
    fn decomposition_adds_back_up_to_the_history() {
        let history = weekly(100);
        let decomposition = decompose(&history, &[30, 7]).expect("valid");
        assert_eq!(decomposition.periods, vec![7, 30]);
        let seasonal = decomposition.seasonal_total();
        for (t, value) in history.iter().enumerate() {
            let sum = decomposition.trend[t] + seasonal[t] + decomposition.remainder[t];
            assert!((sum - value).abs() < 1e-9);
        }
    }

    #[test]
    fn seasonal_forecast_repeats_the_last_cycle() {
        let decomposition = MstlDecomposition {
            periods: vec![2, 3],
            trend: vec![0.0; 6],
            seasonals: vec![
                vec![0.0, 0.0, 0.0, 0.0, 1.0, 2.0],
                vec![0.0, 0.0, 0.0, 10.0, 20.0, 30.0],
            ],
            remainder: vec![0.0; 6],
        };
        assert_eq!(
            decomposition.seasonal_forecast(5),
            vec![11.0, 22.0, 31.0, 12.0, 21.0]
        );
    }

    #[test]
    fn weekly_pattern_is_continued() {
        let history = weekly(140);
        let forecast = Mstl {
            season_lengths: vec![7],
        }
        .forecast(&history, 14)
        .expect("fits");
        let expected = weekly(154);
        for (value, want) in forecast.mean.iter().zip(&expected[140..]) {
            assert!((value - want).abs() < 0.5, "{value} vs {want}");
        }
        let fitted = forecast.fitted.expect("fitted values");
        assert_eq!(fitted.len(), history.len());
        assert!((fitted[100] - history[100]).abs() < 1.0);
    }

    #[test]
    fn periods_without_two_full_cycles_are_dropped() {
        assert_eq!(usable_periods(&[365, 7, 7, 1], 711), vec![7]);
        assert_eq!(usable_periods(&[7, 365], 731), vec![7, 365]);
        assert_eq!(usable_periods(&[7], 14), Vec::<usize>::new());
        let history = weekly(20);
        let mstl = Mstl {
            season_lengths: vec![30],
        }
        .forecast(&history, 3)
        .expect("fits");
        let ets = AutoEts { season_length: 1 }
            .forecast(&history, 3)
            .expect("fits");
        assert_eq!(mstl, ets);
    }

    #[test]
    fn invalid_input_is_rejected() {
        let model = Mstl {
            season_lengths: vec![7],
        };
        assert_eq!(
            model.forecast(&[1.0; 5], 1),
            Err(ModelError::TooShort { needed: 7, got: 5 })
        );
        let mut history = weekly(30);
        history[4] = f64::NAN;
        assert_eq!(
            model.forecast(&history, 1),
            Err(ModelError::NonFinite { index: 4 })
        );
        let empty = Mstl {
            season_lengths: Vec::new(),
        };
        assert!(matches!(
            empty.forecast(&weekly(30), 1),
            Err(ModelError::InvalidParameter { .. })
        ));
    }
}
