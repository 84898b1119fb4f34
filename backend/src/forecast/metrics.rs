//! Forecast-accuracy metrics: RMSSE, MASE, relative bias and interval coverage.
//!
//! Scaled metrics divide by the in-sample error of the seasonal naive method on `train`,
//! measured from the first non-zero observation (the M5 competition's convention, so products
//! launched late are not flattered by their leading zeros).

/// Observations from the first non-zero value on (empty when all are zero).
fn from_first_sale(train: &[f64]) -> &[f64] {
    let start = train
        .iter()
        .position(|value| *value != 0.0)
        .unwrap_or(train.len());
    &train[start..]
}

/// Mean over `train` (from its first non-zero value) of `error(y_t - y_{t-season})`.
fn naive_scale(train: &[f64], season: usize, error: fn(f64) -> f64) -> Option<f64> {
    let season = season.max(1);
    let active = from_first_sale(train);
    if active.len() <= season {
        return None;
    }
    let total: f64 = active
        .windows(season + 1)
        .map(|pair| error(pair[season] - pair[0]))
        .sum();
    Some(total / (active.len() - season) as f64)
}

/// Root mean squared scaled error (M5): `sqrt(mean((a-f)²) / mean((y_t - y_{t-season})²))`;
/// `None` when lengths differ, inputs are empty, or the scale is zero or undefined.
pub fn rmsse(actual: &[f64], forecast: &[f64], train: &[f64], season: usize) -> Option<f64> {
    if actual.len() != forecast.len() || actual.is_empty() {
        return None;
    }
    let scale = naive_scale(train, season, |difference| difference * difference)?;
    if scale <= 0.0 {
        return None;
    }
    let mse = actual
        .iter()
        .zip(forecast)
        .map(|(a, f)| (a - f).powi(2))
        .sum::<f64>()
        / actual.len() as f64;
    Some((mse / scale).sqrt())
}

/// Mean absolute scaled error: `mean(|a-f|) / mean(|y_t - y_{t-season}|)`; `None` like [`rmsse`].
pub fn mase(actual: &[f64], forecast: &[f64], train: &[f64], season: usize) -> Option<f64> {
    if actual.len() != forecast.len() || actual.is_empty() {
        return None;
    }
    let scale = naive_scale(train, season, f64::abs)?;
    if scale <= 0.0 {
        return None;
    }
    let mae = actual
        .iter()
        .zip(forecast)
        .map(|(a, f)| (a - f).abs())
        .sum::<f64>()
        / actual.len() as f64;
    Some(mae / scale)
}

/// Relative bias: `mean(forecast - actual) / mean(actual)`; positive means over-forecasting
/// (0.1 = 10 % too high). `None` when lengths differ, inputs are empty or actuals sum to zero.
pub fn bias(actual: &[f64], forecast: &[f64]) -> Option<f64> {
    if actual.len() != forecast.len() || actual.is_empty() {
        return None;
    }
    let actual_total: f64 = actual.iter().sum();
    if actual_total == 0.0 {
        return None;
    }
    let error_total: f64 = actual.iter().zip(forecast).map(|(a, f)| f - a).sum();
    Some(error_total / actual_total)
}

/// Share of actuals inside `[lower, upper]` (bounds inclusive); `None` when lengths differ or empty.
pub fn interval_coverage(actual: &[f64], lower: &[f64], upper: &[f64]) -> Option<f64> {
    if actual.len() != lower.len() || actual.len() != upper.len() || actual.is_empty() {
        return None;
    }
    let inside = actual
        .iter()
        .zip(lower.iter().zip(upper))
        .filter(|(value, (low, high))| **low <= **value && **value <= **high)
        .count();
    Some(inside as f64 / actual.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(actual: Option<f64>, expected: Option<f64>) {
        match (actual, expected) {
            (Some(a), Some(e)) => assert!((a - e).abs() < 1e-12, "{a} vs {e}"),
            _ => assert_eq!(actual, expected),
        }
    }

    #[test]
    fn rmsse_scales_by_the_naive_in_sample_error() {
        // naive squared diffs of [1, 3, 1, 3]: 4, 4, 4 -> scale 4 ; forecast error 2 -> mse 4
        check(
            rmsse(&[2.0, 2.0], &[4.0, 0.0], &[1.0, 3.0, 1.0, 3.0], 1),
            Some(1.0),
        );
    }

    #[test]
    fn rmsse_ignores_leading_zeros_of_the_training_series() {
        check(
            rmsse(&[2.0], &[4.0], &[0.0, 0.0, 0.0, 1.0, 3.0, 1.0], 1),
            Some(1.0),
        );
    }

    #[test]
    fn rmsse_is_undefined_for_a_flat_training_series() {
        check(rmsse(&[1.0], &[1.0], &[2.0, 2.0, 2.0], 1), None);
        check(rmsse(&[1.0], &[1.0, 2.0], &[1.0, 2.0], 1), None);
    }

    #[test]
    fn mase_uses_absolute_errors() {
        check(
            mase(&[2.0, 2.0], &[4.0, 2.0], &[1.0, 3.0, 1.0], 1),
            Some(0.5),
        );
    }

    #[test]
    fn bias_is_signed_total_error_over_total_actual() {
        check(bias(&[2.0, 2.0], &[3.0, 3.0]), Some(0.5));
        check(bias(&[2.0, 2.0], &[1.0, 1.0]), Some(-0.5));
        check(bias(&[0.0], &[1.0]), None);
    }

    #[test]
    fn coverage_counts_actuals_inside_inclusive_bounds() {
        check(
            interval_coverage(&[1.0, 5.0, 2.0, 0.0], &[0.0; 4], &[2.0; 4]),
            Some(0.75),
        );
    }
}
