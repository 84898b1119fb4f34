//! The [`Model`] trait every forecasting method implements, its output and its error type.

use std::fmt;

/// One forecasting method. `fit` sees only history; the result forecasts `horizon` days ahead.
///
/// Contract:
/// - `history` is ordered oldest first, one value per day, with no gaps (zero-filled).
/// - Every value must be finite; otherwise the model returns [`ModelError::NonFinite`].
/// - An empty history, or one shorter than the model needs, returns [`ModelError::TooShort`].
/// - On success `mean.len() == horizon`, and `fitted`, when present, has `history.len()` entries
///   (in-sample one-step-ahead fitted values, `NaN` where the model has none, e.g. the first day).
/// - Forecasting is deterministic: the same input always gives the same output.
pub trait Model: Send + Sync {
    /// Short, stable name of the method, as statsforecast spells it (e.g. `"CrostonClassic"`).
    fn name(&self) -> &'static str;
    /// Fits the method on `history` and forecasts the next `horizon` values.
    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError>;
}

/// The result of one model run: point forecasts and, where cheap, in-sample fitted values.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelForecast {
    /// Point forecasts, one per future day (`horizon` entries).
    pub mean: Vec<f64>,
    /// In-sample one-step-ahead fitted values (same length as the history, `NaN` where undefined),
    /// used to derive residuals for prediction intervals; `None` when the model does not produce them.
    pub fitted: Option<Vec<f64>>,
}

impl ModelForecast {
    /// Builds a forecast that repeats `value` for `horizon` days.
    pub fn flat(value: f64, horizon: usize, fitted: Option<Vec<f64>>) -> Self {
        Self {
            mean: vec![value; horizon],
            fitted,
        }
    }

    /// In-sample one-step residuals `actual - fitted`, skipping entries without a finite fitted value.
    pub fn residuals(&self, history: &[f64]) -> Option<Vec<f64>> {
        let fitted = self.fitted.as_ref()?;
        Some(
            history
                .iter()
                .zip(fitted)
                .filter(|(_, fit)| fit.is_finite())
                .map(|(actual, fit)| actual - fit)
                .collect(),
        )
    }
}

/// Why a model could not produce a forecast.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelError {
    /// The history has fewer observations than the model needs.
    TooShort {
        /// Minimum number of observations required.
        needed: usize,
        /// Number of observations supplied.
        got: usize,
    },
    /// The history contains a NaN or infinite value at `index`.
    NonFinite {
        /// Position of the first non-finite value.
        index: usize,
    },
    /// A model parameter is outside its valid range.
    InvalidParameter {
        /// Name of the offending parameter.
        name: &'static str,
        /// Human-readable description of the valid range.
        expected: &'static str,
    },
    /// No candidate model could be fitted (every candidate was inadmissible or degenerate).
    NoModelFitted,
}

impl fmt::Display for ModelError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { needed, got } => {
                write!(
                    formatter,
                    "history too short: needed {needed} observations, got {got}"
                )
            }
            Self::NonFinite { index } => {
                write!(
                    formatter,
                    "history contains a non-finite value at index {index}"
                )
            }
            Self::InvalidParameter { name, expected } => {
                write!(formatter, "invalid parameter {name}: expected {expected}")
            }
            Self::NoModelFitted => write!(formatter, "no candidate model could be fitted"),
        }
    }
}

impl std::error::Error for ModelError {}

/// Checks the trait contract's input rules: at least `needed` observations, all finite.
pub fn validate_history(history: &[f64], needed: usize) -> Result<(), ModelError> {
    if let Some(index) = history.iter().position(|value| !value.is_finite()) {
        return Err(ModelError::NonFinite { index });
    }
    if history.len() < needed.max(1) {
        return Err(ModelError::TooShort {
            needed: needed.max(1),
            got: history.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(history: &[f64], needed: usize, expected: Result<(), ModelError>) {
        assert_eq!(validate_history(history, needed), expected);
    }

    #[test]
    fn validation_rejects_empty_history() {
        check(&[], 1, Err(ModelError::TooShort { needed: 1, got: 0 }));
        check(&[], 0, Err(ModelError::TooShort { needed: 1, got: 0 }));
    }

    #[test]
    fn validation_rejects_nan_and_infinity_with_their_position() {
        check(&[1.0, f64::NAN], 1, Err(ModelError::NonFinite { index: 1 }));
        check(&[f64::INFINITY], 1, Err(ModelError::NonFinite { index: 0 }));
    }

    #[test]
    fn validation_accepts_long_enough_finite_history() {
        check(&[0.0, 0.0, 3.0], 3, Ok(()));
        check(
            &[0.0, 3.0],
            3,
            Err(ModelError::TooShort { needed: 3, got: 2 }),
        );
    }

    #[test]
    fn residuals_skip_undefined_fitted_values() {
        let forecast = ModelForecast::flat(1.0, 2, Some(vec![f64::NAN, 1.0, 2.0]));
        assert_eq!(forecast.residuals(&[5.0, 3.0, 1.0]), Some(vec![2.0, -1.0]));
        assert_eq!(ModelForecast::flat(1.0, 2, None).residuals(&[1.0]), None);
    }

    #[test]
    fn errors_display_their_details() {
        let message = ModelError::TooShort { needed: 7, got: 3 }.to_string();
        assert_eq!(message, "history too short: needed 7 observations, got 3");
    }
}
