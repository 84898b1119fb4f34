//! Intermittent-demand methods: Croston (classic, optimised, SBA), TSB, ADIDA and IMAPA.
//!
//! All follow statsforecast 2.1.1: demand sizes are the strictly positive observations, intervals
//! are the gaps between non-zero observations (the first counted from the series start), and
//! "optimised" SES searches alpha on `[0.1, 0.3]` by golden section.

use crate::forecast::model::{Model, ModelError, ModelForecast, validate_history};
use crate::forecast::models::ses::{optimal_alpha, ses_next, ses_with_fitted};

/// Strictly positive observations (demand sizes), in order.
pub fn demand_sizes(history: &[f64]) -> Vec<f64> {
    history
        .iter()
        .copied()
        .filter(|value| *value > 0.0)
        .collect()
}

/// Gaps between successive non-zero observations; the first gap counts from the series start
/// (a demand on day 1 has interval 1).
pub fn demand_intervals(history: &[f64]) -> Vec<f64> {
    let mut previous = 0;
    let mut intervals = Vec::new();
    for (index, value) in history.iter().enumerate() {
        if *value != 0.0 {
            intervals.push((index + 1 - previous) as f64);
            previous = index + 1;
        }
    }
    intervals
}

/// SES forecast with alpha optimised on `[0.1, 0.3]` (statsforecast `_optimized_ses_forecast`).
fn optimized_ses_next(values: &[f64]) -> f64 {
    ses_next(values, optimal_alpha(values, 0.1, 0.3))
}

/// Spreads per-demand fitted sizes over every day (statsforecast `expand_fitted_demand`).
fn expand_fitted_demand(fitted: &[f64], history: &[f64]) -> Vec<f64> {
    let mut out = vec![f64::NAN; history.len()];
    let mut position = 0;
    for index in 1..history.len() {
        out[index] = if history[index - 1] > 0.0 {
            position += 1;
            fitted[position]
        } else if position > 0 {
            out[index - 1]
        } else {
            history[index - 1]
        };
    }
    out
}

/// Spreads per-demand fitted intervals over every day (statsforecast `expand_fitted_intervals`).
fn expand_fitted_intervals(fitted: &[f64], history: &[f64]) -> Vec<f64> {
    let mut out = vec![f64::NAN; history.len()];
    let mut position = 0;
    for index in 1..history.len() {
        out[index] = if history[index - 1] != 0.0 {
            position += 1;
            if fitted[position] == 0.0 {
                1.0
            } else {
                fitted[position]
            }
        } else if position > 0 {
            out[index - 1]
        } else {
            1.0
        };
    }
    out
}

/// Croston's classic method with both smoothing constants fixed at 0.1, optionally scaled.
fn croston_fixed(history: &[f64], horizon: usize, scale: f64) -> Result<ModelForecast, ModelError> {
    validate_history(history, 1)?;
    let sizes = demand_sizes(history);
    if sizes.is_empty() {
        return crate::forecast::models::Naive.forecast(history, horizon);
    }
    let intervals = demand_intervals(history);
    let (size_next, mut size_fitted) = ses_with_fitted(&sizes, 0.1);
    let (interval_next, mut interval_fitted) = ses_with_fitted(&intervals, 0.1);
    let mean = if interval_next != 0.0 {
        size_next / interval_next
    } else {
        size_next
    };
    size_fitted.push(size_next);
    interval_fitted.push(interval_next);
    let sizes_by_day = expand_fitted_demand(&size_fitted, history);
    let intervals_by_day = expand_fitted_intervals(&interval_fitted, history);
    let fitted = sizes_by_day
        .iter()
        .zip(&intervals_by_day)
        .map(|(size, interval)| scale * size / interval)
        .collect();
    Ok(ModelForecast::flat(scale * mean, horizon, Some(fitted)))
}

/// Croston's method with smoothing 0.1 for sizes and intervals (statsforecast `CrostonClassic`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CrostonClassic;

impl Model for CrostonClassic {
    fn name(&self) -> &'static str {
        "CrostonClassic"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        croston_fixed(history, horizon, 1.0)
    }
}

/// Syntetos–Boylan approximation: classic Croston times 0.95 (statsforecast `CrostonSBA`).
#[derive(Debug, Clone, Copy, Default)]
pub struct CrostonSba;

impl Model for CrostonSba {
    fn name(&self) -> &'static str {
        "CrostonSBA"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        croston_fixed(history, horizon, 0.95)
    }
}

/// Croston with sizes and intervals each smoothed by SES with alpha optimised on `[0.1, 0.3]`
/// (statsforecast `CrostonOptimized`); returns no fitted values (they cost O(n²)).
#[derive(Debug, Clone, Copy, Default)]
pub struct CrostonOptimized;

impl Model for CrostonOptimized {
    fn name(&self) -> &'static str {
        "CrostonOptimized"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        validate_history(history, 1)?;
        let sizes = demand_sizes(history);
        if sizes.is_empty() {
            return crate::forecast::models::Naive.forecast(history, horizon);
        }
        let size_next = optimized_ses_next(&sizes);
        let interval_next = optimized_ses_next(&demand_intervals(history));
        let mean = if interval_next != 0.0 {
            size_next / interval_next
        } else {
            size_next
        };
        Ok(ModelForecast::flat(mean, horizon, None))
    }
}

/// Teunter–Syntetos–Babai: SES on demand probability and on demand size (statsforecast `TSB`).
#[derive(Debug, Clone, Copy)]
pub struct Tsb {
    /// Smoothing constant for demand sizes, in `(0, 1]`.
    pub alpha_d: f64,
    /// Smoothing constant for the demand-occurrence probability, in `(0, 1]`.
    pub alpha_p: f64,
}

impl Model for Tsb {
    fn name(&self) -> &'static str {
        "TSB"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        for (name, value) in [("alpha_d", self.alpha_d), ("alpha_p", self.alpha_p)] {
            if !(value > 0.0 && value <= 1.0) {
                return Err(ModelError::InvalidParameter {
                    name,
                    expected: "in (0, 1]",
                });
            }
        }
        validate_history(history, 1)?;
        let sizes = demand_sizes(history);
        if sizes.is_empty() {
            return Ok(ModelForecast::flat(
                0.0,
                horizon,
                Some(vec![0.0; history.len()]),
            ));
        }
        let occurrence: Vec<f64> = history
            .iter()
            .map(|value| if *value != 0.0 { 1.0 } else { 0.0 })
            .collect();
        let (probability_next, probability_fitted) = ses_with_fitted(&occurrence, self.alpha_p);
        let (size_next, mut size_fitted) = ses_with_fitted(&sizes, self.alpha_d);
        size_fitted.push(size_next);
        let sizes_by_day = expand_fitted_demand(&size_fitted, history);
        let fitted = probability_fitted
            .iter()
            .zip(&sizes_by_day)
            .map(|(p, size)| p * size)
            .collect();
        Ok(ModelForecast::flat(
            probability_next * size_next,
            horizon,
            Some(fitted),
        ))
    }
}

/// Sums of consecutive non-overlapping chunks of `level` days, dropping the oldest
/// `len % level` days so the last chunk ends on the last observation.
fn chunk_sums(history: &[f64], level: usize) -> Vec<f64> {
    let lost = history.len() % level;
    history[lost..]
        .chunks_exact(level)
        .map(|chunk| chunk.iter().sum())
        .collect()
}

/// Next aggregated-bucket forecast at `level` (statsforecast `chunk_forecast`).
fn chunk_forecast(history: &[f64], level: usize) -> f64 {
    let sums = chunk_sums(history, level);
    match sums.len() {
        0 => history[history.len() - 1],
        1 => sums[0],
        _ => optimized_ses_next(&sums),
    }
}

/// Mean inter-demand interval rounded half-to-even, as Python's `round` does.
fn rounded_mean_interval(history: &[f64]) -> usize {
    let intervals = demand_intervals(history);
    let mean = intervals.iter().sum::<f64>() / intervals.len() as f64;
    (mean.round_ties_even() as usize).max(1)
}

/// Aggregate–disaggregate intermittent demand approach (statsforecast `ADIDA`): sum into buckets
/// of the mean inter-demand interval, forecast the buckets with optimised SES, divide back.
#[derive(Debug, Clone, Copy, Default)]
pub struct Adida;

impl Model for Adida {
    fn name(&self) -> &'static str {
        "ADIDA"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        validate_history(history, 1)?;
        if history.iter().all(|value| *value == 0.0) {
            return Ok(ModelForecast::flat(0.0, horizon, None));
        }
        let level = rounded_mean_interval(history);
        let mean = chunk_forecast(history, level) / level as f64;
        Ok(ModelForecast::flat(mean, horizon, None))
    }
}

/// Intermittent multiple aggregation prediction algorithm (statsforecast `IMAPA`): the mean of
/// ADIDA-style forecasts over every aggregation level from 1 to the mean inter-demand interval.
#[derive(Debug, Clone, Copy, Default)]
pub struct Imapa;

impl Model for Imapa {
    fn name(&self) -> &'static str {
        "IMAPA"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        validate_history(history, 1)?;
        if history.iter().all(|value| *value == 0.0) {
            return Ok(ModelForecast::flat(0.0, horizon, None));
        }
        let max_level = rounded_mean_interval(history);
        let total: f64 = (1..=max_level)
            .map(|level| {
                let sums = chunk_sums(history, level);
                if sums.is_empty() {
                    return history[history.len() - 1] / level as f64;
                }
                optimized_ses_next(&sums) / level as f64
            })
            .sum();
        Ok(ModelForecast::flat(total / max_level as f64, horizon, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(model: &dyn Model, history: &[f64], expected: f64) {
        let forecast = model.forecast(history, 3).expect("test history is valid");
        assert_eq!(forecast.mean.len(), 3);
        for value in &forecast.mean {
            assert!(
                (value - expected).abs() < 1e-12,
                "{}: {value} vs {expected}",
                model.name()
            );
        }
    }

    fn all_models() -> Vec<Box<dyn Model>> {
        vec![
            Box::new(CrostonClassic),
            Box::new(CrostonOptimized),
            Box::new(CrostonSba),
            Box::new(Tsb {
                alpha_d: 0.1,
                alpha_p: 0.1,
            }),
            Box::new(Adida),
            Box::new(Imapa),
        ]
    }

    #[test]
    fn intervals_count_from_the_series_start() {
        assert_eq!(
            demand_intervals(&[0.0, 2.0, 0.0, 0.0, 1.0, 3.0]),
            vec![2.0, 3.0, 1.0]
        );
        assert_eq!(demand_sizes(&[0.0, 2.0, 0.0, 1.0]), vec![2.0, 1.0]);
    }

    #[test]
    fn croston_of_all_zero_history_forecasts_zero() {
        for model in all_models() {
            check(model.as_ref(), &[0.0; 20], 0.0);
        }
    }

    #[test]
    fn croston_of_a_single_demand_divides_size_by_interval() {
        // sizes [4], intervals [5]: 4 / 5
        check(&CrostonClassic, &[0.0, 0.0, 0.0, 0.0, 4.0, 0.0], 0.8);
        check(&CrostonSba, &[0.0, 0.0, 0.0, 0.0, 4.0, 0.0], 0.76);
        check(&CrostonOptimized, &[0.0, 0.0, 0.0, 0.0, 4.0, 0.0], 0.8);
    }

    #[test]
    fn croston_classic_smooths_sizes_and_intervals_with_alpha_one_tenth() {
        // sizes [2, 4] -> 0.1*4 + 0.9*2 = 2.2 ; intervals [1, 2] -> 0.1*2 + 0.9*1 = 1.1
        check(&CrostonClassic, &[2.0, 0.0, 4.0], 2.0);
    }

    #[test]
    fn tsb_multiplies_probability_by_size() {
        // occurrence [1, 0] -> 0.5*0 + 0.5*1 = 0.5 ; size [2] -> 2
        check(
            &Tsb {
                alpha_d: 0.5,
                alpha_p: 0.5,
            },
            &[2.0, 0.0],
            1.0,
        );
    }

    #[test]
    fn tsb_rejects_smoothing_outside_the_unit_interval() {
        let result = Tsb {
            alpha_d: 0.0,
            alpha_p: 0.1,
        }
        .forecast(&[1.0], 1);
        assert_eq!(
            result,
            Err(ModelError::InvalidParameter {
                name: "alpha_d",
                expected: "in (0, 1]"
            })
        );
    }

    #[test]
    fn adida_of_a_constant_series_forecasts_that_constant() {
        check(&Adida, &[3.0; 12], 3.0);
        check(&Imapa, &[3.0; 12], 3.0);
    }

    #[test]
    fn adida_aggregates_at_the_rounded_mean_interval() {
        // intervals [2, 2, 2] -> level 2; chunk sums [2, 2, 2] -> 2 per bucket -> 1 per day
        check(&Adida, &[0.0, 2.0, 0.0, 2.0, 0.0, 2.0], 1.0);
        // IMAPA averages level 1 (SES of the raw series) and level 2 (1 per day)
        let level_one = optimized_ses_next(&[0.0, 2.0, 0.0, 2.0, 0.0, 2.0]);
        check(
            &Imapa,
            &[0.0, 2.0, 0.0, 2.0, 0.0, 2.0],
            (level_one + 1.0) / 2.0,
        );
    }

    #[test]
    fn python_rounding_sends_halves_to_even() {
        // intervals [2, 3] -> mean 2.5 -> 2 ; intervals [3, 4] -> 3.5 -> 4
        assert_eq!(rounded_mean_interval(&[0.0, 1.0, 0.0, 0.0, 1.0]), 2);
        assert_eq!(
            rounded_mean_interval(&[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
            4
        );
    }

    #[test]
    fn intermittent_models_reject_empty_and_nan_history() {
        for model in all_models() {
            assert_eq!(
                model.forecast(&[], 1),
                Err(ModelError::TooShort { needed: 1, got: 0 })
            );
            assert_eq!(
                model.forecast(&[f64::NAN], 1),
                Err(ModelError::NonFinite { index: 0 })
            );
        }
    }

    #[test]
    fn croston_fitted_values_cover_every_day() {
        let history = [0.0, 3.0, 0.0, 0.0, 3.0, 0.0];
        let forecast = CrostonClassic.forecast(&history, 1).expect("valid");
        let fitted = forecast.fitted.expect("classic croston has fitted values");
        assert_eq!(fitted.len(), history.len());
        assert!(fitted[0].is_nan());
        assert!(fitted[1..].iter().all(|value| value.is_finite()));
    }
}
