//! Demand-pattern classification (Syntetos–Boylan): ADI and CV² split series into four classes.

use crate::forecast::models::intermittent::{demand_intervals, demand_sizes};

/// ADI cut-off between frequent and intermittent demand (Syntetos, Boylan & Croston 2005).
pub const ADI_CUTOFF: f64 = 1.32;
/// CV² cut-off between steady and variable demand sizes (Syntetos, Boylan & Croston 2005).
pub const CV2_CUTOFF: f64 = 0.49;

/// The four Syntetos–Boylan demand classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemandClass {
    /// Frequent demand with steady sizes (ADI < 1.32, CV² < 0.49).
    Smooth,
    /// Frequent demand with variable sizes (ADI < 1.32, CV² ≥ 0.49).
    Erratic,
    /// Infrequent demand with steady sizes (ADI ≥ 1.32, CV² < 0.49).
    Intermittent,
    /// Infrequent demand with variable sizes (ADI ≥ 1.32, CV² ≥ 0.49).
    Lumpy,
}

/// Average demand interval: mean gap between non-zero days, the first gap counted from the
/// series start (so `[0, 0, 5]` has ADI 3); `None` when there is no demand.
pub fn average_demand_interval(history: &[f64]) -> Option<f64> {
    let intervals = demand_intervals(history);
    if intervals.is_empty() {
        return None;
    }
    Some(intervals.iter().sum::<f64>() / intervals.len() as f64)
}

/// Squared coefficient of variation of the positive demand sizes (population variance / mean²);
/// `None` when there is no positive demand.
pub fn squared_coefficient_of_variation(history: &[f64]) -> Option<f64> {
    let sizes = demand_sizes(history);
    if sizes.is_empty() {
        return None;
    }
    let count = sizes.len() as f64;
    let mean = sizes.iter().sum::<f64>() / count;
    let variance = sizes.iter().map(|size| (size - mean).powi(2)).sum::<f64>() / count;
    Some(variance / (mean * mean))
}

/// Classifies a series by ADI and CV²; `None` when it has no positive demand.
pub fn classify(history: &[f64]) -> Option<DemandClass> {
    let interval = average_demand_interval(history)?;
    let variation = squared_coefficient_of_variation(history)?;
    Some(match (interval < ADI_CUTOFF, variation < CV2_CUTOFF) {
        (true, true) => DemandClass::Smooth,
        (true, false) => DemandClass::Erratic,
        (false, true) => DemandClass::Intermittent,
        (false, false) => DemandClass::Lumpy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(history: &[f64], expected: Option<DemandClass>) {
        assert_eq!(classify(history), expected);
    }

    #[test]
    fn steady_daily_demand_is_smooth() {
        check(&[5.0, 6.0, 5.0, 4.0, 5.0], Some(DemandClass::Smooth));
    }

    #[test]
    fn daily_demand_with_wild_sizes_is_erratic() {
        check(&[1.0, 20.0, 1.0, 1.0, 30.0], Some(DemandClass::Erratic));
    }

    #[test]
    fn sparse_steady_demand_is_intermittent() {
        check(
            &[0.0, 0.0, 3.0, 0.0, 0.0, 3.0, 0.0, 4.0],
            Some(DemandClass::Intermittent),
        );
    }

    #[test]
    fn sparse_wild_demand_is_lumpy() {
        check(
            &[0.0, 0.0, 1.0, 0.0, 0.0, 40.0, 0.0, 2.0],
            Some(DemandClass::Lumpy),
        );
    }

    #[test]
    fn series_without_demand_has_no_class() {
        check(&[], None);
        check(&[0.0, 0.0], None);
    }

    #[test]
    fn adi_counts_the_first_gap_from_the_start() {
        assert_eq!(average_demand_interval(&[0.0, 0.0, 5.0]), Some(3.0));
        assert_eq!(
            squared_coefficient_of_variation(&[0.0, 2.0, 2.0]),
            Some(0.0)
        );
    }
}
