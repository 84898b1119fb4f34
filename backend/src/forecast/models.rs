//! The forecasting methods, each a [`crate::forecast::Model`] matching statsforecast 2.1.1's semantics.

pub mod baseline;
pub mod ets;
pub mod intermittent;
pub mod ses;

pub use baseline::{HistoricAverage, Naive, SeasonalNaive, WindowAverage};
pub use ets::AutoEts;
pub use intermittent::{Adida, CrostonClassic, CrostonOptimized, CrostonSba, Imapa, Tsb};
pub use ses::SimpleExpSmoothing;
