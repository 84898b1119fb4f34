//! Benchmark methods: last value, last season, mean of all history, mean of a trailing window.

use crate::forecast::model::{Model, ModelError, ModelForecast, validate_history};

/// Repeats the last observation (statsforecast `Naive`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Naive;

impl Model for Naive {
    fn name(&self) -> &'static str {
        "Naive"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        validate_history(history, 1)?;
        let last = history[history.len() - 1];
        let mut fitted = Vec::with_capacity(history.len());
        fitted.push(f64::NAN);
        fitted.extend_from_slice(&history[..history.len() - 1]);
        Ok(ModelForecast::flat(last, horizon, Some(fitted)))
    }
}

/// Repeats the last full season (statsforecast `SeasonalNaive`).
#[derive(Debug, Clone, Copy)]
pub struct SeasonalNaive {
    /// Number of days in one season (7 for weekly patterns in daily data).
    pub season_length: usize,
}

impl Model for SeasonalNaive {
    fn name(&self) -> &'static str {
        "SeasonalNaive"
    }

    /// Needs at least one full season; statsforecast would pad a shorter history with `NaN`.
    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        if self.season_length == 0 {
            return Err(ModelError::InvalidParameter {
                name: "season_length",
                expected: ">= 1",
            });
        }
        validate_history(history, self.season_length)?;
        let season = &history[history.len() - self.season_length..];
        let mean = (0..horizon)
            .map(|step| season[step % self.season_length])
            .collect();
        let fitted = (0..history.len())
            .map(|index| {
                if index >= self.season_length {
                    history[index - self.season_length]
                } else {
                    f64::NAN
                }
            })
            .collect();
        Ok(ModelForecast {
            mean,
            fitted: Some(fitted),
        })
    }
}

/// Mean of the whole history (statsforecast `HistoricAverage`).
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoricAverage;

impl Model for HistoricAverage {
    fn name(&self) -> &'static str {
        "HistoricAverage"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        validate_history(history, 1)?;
        let mean = history.iter().sum::<f64>() / history.len() as f64;
        Ok(ModelForecast::flat(
            mean,
            horizon,
            Some(vec![mean; history.len()]),
        ))
    }
}

/// Mean of the last `window` observations (statsforecast `WindowAverage`).
#[derive(Debug, Clone, Copy)]
pub struct WindowAverage {
    /// Number of trailing days averaged.
    pub window: usize,
}

impl Model for WindowAverage {
    fn name(&self) -> &'static str {
        "WindowAverage"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        if self.window == 0 {
            return Err(ModelError::InvalidParameter {
                name: "window",
                expected: ">= 1",
            });
        }
        validate_history(history, self.window)?;
        let tail = &history[history.len() - self.window..];
        let mean = tail.iter().sum::<f64>() / self.window as f64;
        Ok(ModelForecast::flat(mean, horizon, None))
    }
}

/// Last year's same weeks, scaled by growth: the mean of the same weekday over three weeks around
/// the day 364 days (52 weeks) earlier, times the ratio of the last `window` days to the same days a
/// year before. Sees a yearly season (a Q4 ramp) from one year of history, where MSTL needs two.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YearOverYear {
    /// Days whose year-over-year ratio sets the growth.
    pub window: usize,
}

/// Days back to the same weekday a year earlier.
const YEAR: usize = 364;

impl Model for YearOverYear {
    fn name(&self) -> &'static str {
        "YearOverYear"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        if self.window == 0 {
            return Err(ModelError::InvalidParameter {
                name: "window",
                expected: ">= 1",
            });
        }
        validate_history(history, YEAR + self.window + 7)?;
        let n = history.len();
        let recent: f64 = history[n - self.window..].iter().sum();
        let before: f64 = history[n - YEAR - self.window..n - YEAR].iter().sum();
        if before <= 0.0 {
            return Err(ModelError::NoModelFitted);
        }
        let growth = recent / before;
        let mean = (0..horizon)
            .map(|step| {
                // The same weekday a year before, and a week either side where history has it;
                // beyond a year ahead the pattern repeats.
                let day = n - YEAR + step % YEAR;
                let same: Vec<f64> = [day.checked_sub(7), Some(day), Some(day + 7)]
                    .into_iter()
                    .flatten()
                    .filter(|index| *index < n)
                    .map(|index| history[index])
                    .collect();
                growth * same.iter().sum::<f64>() / same.len() as f64
            })
            .collect();
        Ok(ModelForecast { mean, fitted: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(model: &dyn Model, history: &[f64], horizon: usize, expected: &[f64]) {
        let forecast = model
            .forecast(history, horizon)
            .expect("test history is valid");
        assert_eq!(forecast.mean, expected, "{}", model.name());
    }

    #[track_caller]
    fn check_error(model: &dyn Model, history: &[f64], expected: ModelError) {
        assert_eq!(
            model.forecast(history, 3),
            Err(expected),
            "{}",
            model.name()
        );
    }

    #[test]
    fn naive_repeats_the_last_value() {
        check(&Naive, &[1.0, 4.0, 2.0], 3, &[2.0, 2.0, 2.0]);
        check(&Naive, &[0.0], 2, &[0.0, 0.0]);
    }

    #[test]
    fn naive_fitted_values_are_the_previous_day() {
        let forecast = Naive.forecast(&[1.0, 4.0, 2.0], 1).expect("valid");
        let fitted = forecast.fitted.expect("naive has fitted values");
        assert!(fitted[0].is_nan());
        assert_eq!(&fitted[1..], &[1.0, 4.0]);
    }

    #[test]
    fn seasonal_naive_cycles_the_last_season() {
        let model = SeasonalNaive { season_length: 3 };
        check(&model, &[9.0, 1.0, 2.0, 3.0], 5, &[1.0, 2.0, 3.0, 1.0, 2.0]);
    }

    #[test]
    fn seasonal_naive_rejects_history_shorter_than_a_season() {
        let model = SeasonalNaive { season_length: 7 };
        check_error(
            &model,
            &[1.0, 2.0],
            ModelError::TooShort { needed: 7, got: 2 },
        );
    }

    #[test]
    fn historic_average_is_the_mean_of_all_history() {
        check(&HistoricAverage, &[0.0, 0.0, 3.0, 1.0], 2, &[1.0, 1.0]);
    }

    #[test]
    fn window_average_uses_only_the_trailing_window() {
        check(
            &WindowAverage { window: 2 },
            &[100.0, 1.0, 3.0],
            2,
            &[2.0, 2.0],
        );
        check_error(
            &WindowAverage { window: 4 },
            &[1.0],
            ModelError::TooShort { needed: 4, got: 1 },
        );
    }

    #[test]
    fn baselines_reject_empty_and_nan_history() {
        check_error(&Naive, &[], ModelError::TooShort { needed: 1, got: 0 });
        check_error(
            &HistoricAverage,
            &[1.0, f64::NAN],
            ModelError::NonFinite { index: 1 },
        );
    }

    #[test]
    fn all_zero_history_forecasts_zero() {
        check(&Naive, &[0.0; 10], 2, &[0.0, 0.0]);
        check(&HistoricAverage, &[0.0; 10], 2, &[0.0, 0.0]);
        check(&WindowAverage { window: 7 }, &[0.0; 10], 2, &[0.0, 0.0]);
        check(
            &SeasonalNaive { season_length: 7 },
            &[0.0; 10],
            2,
            &[0.0, 0.0],
        );
    }

    #[test]
    fn year_over_year_scales_last_years_weeks_by_growth() {
        // Two years: the first at level 10 with a weekly peak on day 0 of each week, the second
        // twice as high. From the second forecast week on (whose year-ago weeks all lie in the
        // second year) the forecast repeats the second year's weeks at twice their level.
        let history: Vec<f64> = (0..2 * YEAR)
            .map(|day| {
                let level = if day < YEAR { 10.0 } else { 20.0 };
                if day % 7 == 0 { 3.0 * level } else { level }
            })
            .collect();
        let model = YearOverYear { window: 28 };
        let forecast = model.forecast(&history, 21).expect("two years of history");
        for (step, value) in forecast.mean.iter().enumerate().skip(7) {
            let expected = if step % 7 == 0 { 120.0 } else { 40.0 };
            assert!((value - expected).abs() < 1e-9, "day {step}: {value}");
        }
        // The first week's peak also averages in the peak a year and a week ago (first year).
        assert!((forecast.mean[0] - 2.0 * (30.0 + 60.0 + 60.0) / 3.0).abs() < 1e-9);
    }

    #[test]
    fn year_over_year_needs_a_year_and_sales_a_year_ago() {
        let model = YearOverYear { window: 28 };
        check_error(
            &model,
            &[1.0; 100],
            ModelError::TooShort {
                needed: YEAR + 35,
                got: 100,
            },
        );
        let mut history = vec![0.0; YEAR];
        history.extend(vec![5.0; 60]);
        check_error(&model, &history, ModelError::NoModelFitted);
    }
}
