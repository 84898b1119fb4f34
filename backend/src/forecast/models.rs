//! The forecasting methods, each a [`crate::forecast::Model`] matching statsforecast 2.1.1's semantics.

pub mod baseline;
pub mod ets;
pub mod intermittent;
pub mod mstl;
pub mod ses;

pub use baseline::{HistoricAverage, Naive, SeasonalNaive, WindowAverage, YearOverYear};
pub use ets::AutoEts;
pub use intermittent::{Adida, CrostonClassic, CrostonOptimized, CrostonSba, Imapa, Tsb};
pub use mstl::Mstl;
pub use ses::SimpleExpSmoothing;

/// Fits `inner` on `ln(1 + y)` and maps its forecast back with `exp(x) - 1`: multiplicative
/// seasonality and trend become additive, and the forecast stays non-negative. The back-transform
/// gives the median, not the mean; for aggregates with small relative noise the difference is small.
pub struct LogTransformed<M> {
    /// Name of the combination, e.g. `"Log-MSTL"`.
    pub name: &'static str,
    /// The model fitted on the log scale.
    pub inner: M,
}

impl<M: crate::forecast::Model> crate::forecast::Model for LogTransformed<M> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn forecast(
        &self,
        history: &[f64],
        horizon: usize,
    ) -> Result<crate::forecast::ModelForecast, crate::forecast::ModelError> {
        let logged: Vec<f64> = history.iter().map(|value| value.max(0.0).ln_1p()).collect();
        let forecast = self.inner.forecast(&logged, horizon)?;
        Ok(crate::forecast::ModelForecast {
            mean: forecast
                .mean
                .iter()
                .map(|value| value.exp_m1().max(0.0))
                .collect(),
            fitted: forecast
                .fitted
                .map(|fitted| fitted.iter().map(|value| value.exp_m1()).collect()),
        })
    }
}
