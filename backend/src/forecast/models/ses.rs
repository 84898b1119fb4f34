//! Simple exponential smoothing, the building block of the Croston family, ADIDA and IMAPA.

use crate::forecast::model::{Model, ModelError, ModelForecast, validate_history};
use crate::forecast::optimize::golden_section;

/// One-step-ahead forecast of SES with smoothing `alpha`, started at the first observation.
///
/// Returns `values[0]` for a single observation; `values` must not be empty.
pub fn ses_next(values: &[f64], alpha: f64) -> f64 {
    let complement = 1.0 - alpha;
    let mut level = values[0];
    for value in &values[..values.len() - 1] {
        level = alpha * value + complement * level;
    }
    if values.len() == 1 {
        level
    } else {
        alpha * values[values.len() - 1] + complement * level
    }
}

/// SES one-step forecast plus in-sample fitted values (`NaN` for the first), like statsforecast's
/// `ses_forecast`; `values` must not be empty.
pub fn ses_with_fitted(values: &[f64], alpha: f64) -> (f64, Vec<f64>) {
    let complement = 1.0 - alpha;
    let mut fitted = Vec::with_capacity(values.len());
    let mut level = values[0];
    fitted.push(f64::NAN);
    for value in &values[..values.len() - 1] {
        level = alpha * value + complement * level;
        fitted.push(level);
    }
    let forecast = if values.len() == 1 {
        level
    } else {
        alpha * values[values.len() - 1] + complement * level
    };
    (forecast, fitted)
}

/// In-sample sum of squared one-step errors of SES with smoothing `alpha` (0 for < 2 values).
pub fn ses_sum_squared_errors(values: &[f64], alpha: f64) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let complement = 1.0 - alpha;
    let mut level = values[0];
    let mut total = 0.0;
    for index in 1..values.len() {
        level = alpha * values[index - 1] + complement * level;
        let error = values[index] - level;
        total += error * error;
    }
    total
}

/// Smoothing parameter in `[lower, upper]` minimising the in-sample squared error (golden section).
pub fn optimal_alpha(values: &[f64], lower: f64, upper: f64) -> f64 {
    golden_section(|alpha| ses_sum_squared_errors(values, alpha), lower, upper)
}

/// Simple exponential smoothing with alpha optimised on `[0.01, 0.99]` (statsforecast `SESOpt`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimpleExpSmoothing;

impl Model for SimpleExpSmoothing {
    fn name(&self) -> &'static str {
        "SESOpt"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        validate_history(history, 1)?;
        let alpha = optimal_alpha(history, 0.01, 0.99);
        let (next, fitted) = ses_with_fitted(history, alpha);
        Ok(ModelForecast::flat(next, horizon, Some(fitted)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(values: &[f64], alpha: f64, expected: f64) {
        let next = ses_next(values, alpha);
        assert!((next - expected).abs() < 1e-12, "{next} vs {expected}");
        assert_eq!(ses_with_fitted(values, alpha).0, next);
    }

    #[test]
    fn ses_of_a_single_value_forecasts_that_value() {
        check(&[4.0], 0.3, 4.0);
    }

    #[test]
    fn ses_smooths_towards_recent_values() {
        // level starts at 1; after seeing 1 -> 1; after 3 -> 0.5*3+0.5*1 = 2
        check(&[1.0, 3.0], 0.5, 2.0);
        check(&[1.0, 3.0, 5.0], 0.5, 3.5);
    }

    #[test]
    fn ses_fitted_values_start_undefined() {
        let (_, fitted) = ses_with_fitted(&[1.0, 3.0, 5.0], 0.5);
        assert!(fitted[0].is_nan());
        assert_eq!(&fitted[1..], &[1.0, 2.0]);
    }

    #[test]
    fn optimised_ses_follows_a_level_shift_with_a_large_alpha() {
        let history = [0.0, 0.0, 0.0, 10.0, 10.0, 10.0, 10.0];
        let alpha = optimal_alpha(&history, 0.01, 0.99);
        assert!(alpha > 0.9, "alpha {alpha}");
        let forecast = SimpleExpSmoothing.forecast(&history, 2).expect("valid");
        assert!((forecast.mean[0] - 10.0).abs() < 0.01);
    }

    #[test]
    fn optimised_ses_rejects_nan() {
        let result = SimpleExpSmoothing.forecast(&[1.0, f64::NAN], 1);
        assert_eq!(result, Err(ModelError::NonFinite { index: 1 }));
    }
}
