//! Initial ETS states, as statsforecast's `initstate`: classical decomposition for the seasonal
//! start values, then the mean (no trend) or a straight-line fit (trend) of the first values of
//! the seasonally adjusted series.

use super::Component;

/// Initial state `[level, (slope), s_1 .. s_{m-1}]` (the last seasonal state is implied by
/// normalisation); `m` is the season length (ignored without season).
pub fn initial_state(history: &[f64], m: usize, trend: Component, season: Component) -> Vec<f64> {
    let count = history.len();
    let (period, seasonal_start, adjusted): (usize, Vec<f64>, Vec<f64>) =
        if season == Component::None {
            (1, Vec::new(), history.to_vec())
        } else {
            let seasonal = if count < 3 * m {
                fourier_seasonal(history, m, season)
            } else {
                decompose_seasonal(history, m, season)
            };
            let mut start: Vec<f64> = seasonal[1..m].iter().rev().copied().collect();
            let adjusted = if season == Component::Additive {
                history
                    .iter()
                    .zip(&seasonal)
                    .map(|(value, effect)| value - effect)
                    .collect()
            } else {
                for value in start.iter_mut() {
                    *value = value.max(1e-2);
                }
                if start.iter().sum::<f64>() > m as f64 {
                    let total: f64 = start.iter().map(|value| value + 1e-2).sum();
                    for value in start.iter_mut() {
                        *value /= total;
                    }
                }
                history
                    .iter()
                    .zip(&seasonal)
                    .map(|(value, effect)| value / effect.max(1e-2))
                    .collect()
            };
            (m, start, adjusted)
        };
    let leading = (2 * period).max(10).min(adjusted.len());
    let mut state = Vec::with_capacity(2 + seasonal_start.len());
    if trend == Component::None {
        state.push(adjusted[..leading].iter().sum::<f64>() / leading as f64);
    } else {
        let (mut intercept, mut slope) = line_fit(&adjusted[..leading]);
        // statsforecast: the level is the intercept at t = 0; perturb so level + slope != 0.
        if (intercept + slope).abs() < 1e-8 {
            intercept *= 1.0 + 1e-3;
            slope *= 1.0 - 1e-3;
        }
        state.push(intercept);
        state.push(slope);
    }
    state.extend(seasonal_start);
    state
}

/// Least-squares `(intercept, slope)` of `values` against `t = 1..=len`.
fn line_fit(values: &[f64]) -> (f64, f64) {
    let count = values.len() as f64;
    if values.len() < 2 {
        return (values.first().copied().unwrap_or(0.0), 0.0);
    }
    let time_mean = (count + 1.0) / 2.0;
    let value_mean = values.iter().sum::<f64>() / count;
    let mut covariance = 0.0;
    let mut variance = 0.0;
    for (index, value) in values.iter().enumerate() {
        let time = (index + 1) as f64 - time_mean;
        covariance += time * (value - value_mean);
        variance += time * time;
    }
    let slope = covariance / variance;
    (value_mean - slope * time_mean, slope)
}

/// Seasonal component of statsmodels' `seasonal_decompose` (centred moving-average trend).
fn decompose_seasonal(history: &[f64], m: usize, season: Component) -> Vec<f64> {
    let count = history.len();
    let filter: Vec<f64> = if m.is_multiple_of(2) {
        let mut weights = vec![1.0 / m as f64; m + 1];
        weights[0] = 0.5 / m as f64;
        weights[m] = 0.5 / m as f64;
        weights
    } else {
        vec![1.0 / m as f64; m]
    };
    let half = filter.len().div_ceil(2) - 1;
    let tail = filter.len().div_ceil(2) - filter.len() % 2;
    let mut sums = vec![0.0; m];
    let mut counts = vec![0usize; m];
    for index in half..count - tail {
        let start = index - half;
        let trend: f64 = filter
            .iter()
            .zip(&history[start..])
            .map(|(weight, value)| weight * value)
            .sum();
        let detrended = if season == Component::Additive {
            history[index] - trend
        } else {
            history[index] / trend
        };
        if detrended.is_finite() {
            sums[index % m] += detrended;
            counts[index % m] += 1;
        }
    }
    let mut averages: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(sum, seen)| sum / *seen as f64)
        .collect();
    let overall = averages.iter().sum::<f64>() / m as f64;
    for value in averages.iter_mut() {
        if season == Component::Additive {
            *value -= overall;
        } else {
            *value /= overall;
        }
    }
    (0..count).map(|index| averages[index % m]).collect()
}

/// Seasonal component from a one-harmonic Fourier regression, used when `n < 3m`.
fn fourier_seasonal(history: &[f64], m: usize, season: Component) -> Vec<f64> {
    let angle = 2.0 * std::f64::consts::PI / m as f64;
    let rows: Vec<[f64; 4]> = (1..=history.len())
        .map(|time| {
            let time = time as f64;
            [1.0, time, (angle * time).sin(), (angle * time).cos()]
        })
        .collect();
    let coefficients = least_squares(&rows, history);
    history
        .iter()
        .enumerate()
        .map(|(index, value)| {
            let trend = coefficients[0] + coefficients[1] * (index + 1) as f64;
            if season == Component::Additive {
                value - trend
            } else {
                value / trend
            }
        })
        .collect()
}

/// Solves the 4-column least-squares problem through its normal equations (partial pivoting).
fn least_squares(rows: &[[f64; 4]], target: &[f64]) -> [f64; 4] {
    let mut system = [[0.0; 5]; 4];
    for (row, value) in rows.iter().zip(target) {
        for left in 0..4 {
            for right in 0..4 {
                system[left][right] += row[left] * row[right];
            }
            system[left][4] += row[left] * value;
        }
    }
    for column in 0..4 {
        let pivot = (column..4)
            .max_by(|a, b| {
                system[*a][column]
                    .abs()
                    .total_cmp(&system[*b][column].abs())
            })
            .unwrap_or(column);
        system.swap(column, pivot);
        let diagonal = system[column][column];
        if diagonal.abs() < 1e-300 {
            continue;
        }
        let pivot_row = system[column];
        for (row, equation) in system.iter_mut().enumerate() {
            if row != column {
                let factor = equation[column] / diagonal;
                for (entry, pivot_entry) in equation.iter_mut().zip(&pivot_row).skip(column) {
                    *entry -= factor * pivot_entry;
                }
            }
        }
    }
    let mut solution = [0.0; 4];
    for (index, value) in solution.iter_mut().enumerate() {
        let diagonal = system[index][index];
        *value = if diagonal.abs() < 1e-300 {
            0.0
        } else {
            system[index][4] / diagonal
        };
    }
    solution
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-9, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn level_without_trend_is_the_mean_of_the_first_ten_values() {
        let history: Vec<f64> = (1..=20).map(f64::from).collect();
        check(
            &initial_state(&history, 1, Component::None, Component::None),
            &[5.5],
        );
    }

    #[test]
    fn trend_start_is_a_straight_line_fit() {
        let history: Vec<f64> = (1..=20).map(|t| 3.0 + 2.0 * f64::from(t)).collect();
        check(
            &initial_state(&history, 1, Component::Additive, Component::None),
            &[3.0, 2.0],
        );
    }

    #[test]
    fn additive_season_start_lists_the_pattern_backwards() {
        let pattern = [1.0, -1.0, 0.0];
        let history: Vec<f64> = (0..30).map(|t| 10.0 + pattern[t % 3]).collect();
        let state = initial_state(&history, 3, Component::None, Component::Additive);
        // seasonal[1..3] reversed = [pattern[2], pattern[1]]
        check(&state, &[10.0, 0.0, -1.0]);
    }

    #[test]
    fn short_seasonal_history_uses_a_fourier_fit() {
        let history: Vec<f64> = (1..=10)
            .map(|t| 5.0 + (2.0 * std::f64::consts::PI * f64::from(t) / 7.0).cos())
            .collect();
        let state = initial_state(&history, 7, Component::None, Component::Additive);
        assert_eq!(state.len(), 7);
        check(&state[..1], &[5.0]);
    }
}
