//! Normal-approximation prediction intervals from in-sample one-step residuals.
//!
//! The spread is the root mean square of the residuals (`sigma`). For a random-walk-like model
//! (naive, or any model whose errors accumulate) the h-step spread grows as `sigma * sqrt(h)`;
//! for mean-reverting models (averages, Croston family, SES with small alpha) it stays `sigma`.
//! Bounds are clipped at zero because demand is non-negative. This is deliberately simple;
//! calibration against backtests happens elsewhere.

use crate::forecast::model::{Model, ModelError, ModelForecast};
use crate::forecast::models::Naive;

/// Standard-normal quantile for a central 80 % interval.
pub const Z_80: f64 = 1.281_551_565_544_600_4;
/// Standard-normal quantile for a central 95 % interval.
pub const Z_95: f64 = 1.959_963_984_540_054;

/// How the interval width grows with the forecast step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HorizonScaling {
    /// Same width at every step (mean-reverting forecasts).
    Constant,
    /// Width multiplied by `sqrt(step)` (random-walk-like forecasts).
    SquareRoot,
}

/// Lower and upper bounds for one coverage level, one entry per forecast step.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Lower bounds, never below zero.
    pub lower: Vec<f64>,
    /// Upper bounds.
    pub upper: Vec<f64>,
}

/// The 80 % and 95 % bands around a point forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionIntervals {
    /// Central 80 % band.
    pub level_80: Band,
    /// Central 95 % band.
    pub level_95: Band,
}

/// Root mean square of the finite residuals; `None` if there are none.
pub fn residual_sigma(residuals: &[f64]) -> Option<f64> {
    let finite: Vec<f64> = residuals
        .iter()
        .copied()
        .filter(|value| value.is_finite())
        .collect();
    if finite.is_empty() {
        return None;
    }
    Some((finite.iter().map(|value| value * value).sum::<f64>() / finite.len() as f64).sqrt())
}

/// Builds 80 % and 95 % bands around `mean` with spread `sigma`, growing by `scaling`, clipped at 0.
pub fn bands(mean: &[f64], sigma: f64, scaling: HorizonScaling) -> PredictionIntervals {
    let band = |quantile: f64| {
        let widths = mean.iter().enumerate().map(|(index, _)| {
            let growth = match scaling {
                HorizonScaling::Constant => 1.0,
                HorizonScaling::SquareRoot => ((index + 1) as f64).sqrt(),
            };
            quantile * sigma * growth
        });
        let (lower, upper) = mean
            .iter()
            .zip(widths)
            .map(|(center, width)| ((center - width).max(0.0), (center + width).max(0.0)))
            .unzip();
        Band { lower, upper }
    };
    PredictionIntervals {
        level_80: band(Z_80),
        level_95: band(Z_95),
    }
}

/// Bands for `forecast` made on `history`: uses the model's own residuals when it has fitted
/// values, otherwise the residuals of a naive fit; `None` if no residual is available
/// (history of one value).
pub fn prediction_intervals(
    history: &[f64],
    forecast: &ModelForecast,
    scaling: HorizonScaling,
) -> Result<Option<PredictionIntervals>, ModelError> {
    let residuals = match forecast.residuals(history) {
        Some(residuals) if !residuals.is_empty() => residuals,
        _ => {
            let naive = Naive.forecast(history, 0)?;
            naive.residuals(history).unwrap_or_default()
        }
    };
    Ok(residual_sigma(&residuals).map(|sigma| bands(&forecast.mean, sigma, scaling)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(values: &[f64], expected: &[f64]) {
        assert_eq!(values.len(), expected.len());
        for (value, want) in values.iter().zip(expected) {
            assert!((value - want).abs() < 1e-12, "{values:?} vs {expected:?}");
        }
    }

    #[test]
    fn constant_bands_have_the_same_width_each_step() {
        let intervals = bands(&[10.0, 10.0], 1.0, HorizonScaling::Constant);
        check(&intervals.level_80.upper, &[10.0 + Z_80, 10.0 + Z_80]);
        check(&intervals.level_95.lower, &[10.0 - Z_95, 10.0 - Z_95]);
    }

    #[test]
    fn random_walk_bands_widen_with_the_square_root_of_the_step() {
        let intervals = bands(&[10.0, 10.0, 10.0, 10.0], 1.0, HorizonScaling::SquareRoot);
        check(
            &intervals.level_80.upper,
            &[
                10.0 + Z_80,
                10.0 + Z_80 * 2.0_f64.sqrt(),
                10.0 + Z_80 * 3.0_f64.sqrt(),
                10.0 + 2.0 * Z_80,
            ],
        );
    }

    #[test]
    fn lower_bounds_never_go_below_zero() {
        let intervals = bands(&[0.5], 2.0, HorizonScaling::Constant);
        check(&intervals.level_95.lower, &[0.0]);
        check(&intervals.level_80.lower, &[0.0]);
    }

    #[test]
    fn models_without_fitted_values_fall_back_to_naive_residuals() {
        let history = [1.0, 3.0, 1.0, 3.0];
        let forecast = ModelForecast::flat(2.0, 1, None);
        let intervals = prediction_intervals(&history, &forecast, HorizonScaling::Constant)
            .expect("valid history")
            .expect("naive residuals exist");
        check(&intervals.level_80.upper, &[2.0 + 2.0 * Z_80]);
    }

    #[test]
    fn a_single_observation_gives_no_interval() {
        let forecast = ModelForecast::flat(1.0, 1, None);
        let result = prediction_intervals(&[1.0], &forecast, HorizonScaling::Constant);
        assert_eq!(result, Ok(None));
    }
}
