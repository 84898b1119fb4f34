//! STL: seasonal-trend decomposition by LOESS (Cleveland, Cleveland, McRae & Terpenning, 1990),
//! following statsmodels' `STL` (a port of the NETLIB Fortran) step for step, without the
//! robustness iterations (`robust=False`, the only mode MSTL uses) and with every `*_jump` at 1.
//!
//! Each inner pass smooths the cycle-subseries, low-pass filters them (three moving averages and
//! a LOESS), then smooths the deseasonalised series into the trend. LOESS fits are the costly
//! part; every point whose window is centred on it (all but half a window at each end) shares
//! one weight kernel, so those fits are a plain convolution computed once per smooth, and a pass
//! costs `O(n · window)` with no allocation (buffers live in an [`StlWorkspace`]).

use crate::forecast::model::ModelError;

/// Parameters of one STL decomposition, named as in statsmodels' `STL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stl {
    /// Period of the seasonal component (at least 2).
    pub period: usize,
    /// Length of the seasonal LOESS window (odd, at least 3).
    pub seasonal: usize,
    /// Length of the trend LOESS window (odd, at least 3, greater than `period`).
    pub trend: usize,
    /// Length of the low-pass LOESS window (odd, at least 3, greater than `period`).
    pub low_pass: usize,
    /// Degree of the seasonal LOESS (0 or 1).
    pub seasonal_deg: u8,
    /// Degree of the trend LOESS (0 or 1).
    pub trend_deg: u8,
    /// Degree of the low-pass LOESS (0 or 1).
    pub low_pass_deg: u8,
    /// Number of inner-loop passes (statsmodels uses 5 when not robust).
    pub inner_iter: usize,
}

/// Seasonal and trend components of one STL decomposition (the remainder is `y − seasonal − trend`).
#[derive(Debug, Clone, PartialEq)]
pub struct StlComponents {
    /// Seasonal component, one value per observation.
    pub seasonal: Vec<f64>,
    /// Trend component, one value per observation.
    pub trend: Vec<f64>,
}

/// Reusable scratch buffers for [`Stl::fit_into`], so repeated decompositions do not allocate.
#[derive(Debug, Default, Clone)]
pub struct StlWorkspace {
    /// `y − trend`, later the low-pass and `y − seasonal` (statsmodels' `work[0]`).
    detrended: Vec<f64>,
    /// Smoothed cycle-subseries, extended by one period at each end (`work[1]`).
    cycle: Vec<f64>,
    /// Moving averages of `cycle` (`work[2]`).
    averaged: Vec<f64>,
    /// One cycle-subseries.
    subseries: Vec<f64>,
    /// Its smooth, extended by one point at each end.
    subseries_smooth: Vec<f64>,
    /// LOESS weights of the current fit.
    weights: Vec<f64>,
    /// Weights shared by every centred LOESS window.
    kernel: Vec<f64>,
}

fn invalid(name: &'static str, expected: &'static str) -> ModelError {
    ModelError::InvalidParameter { name, expected }
}

/// Smallest odd integer `>= value`.
fn next_odd(value: usize) -> usize {
    value + usize::from(value.is_multiple_of(2))
}

impl Stl {
    /// statsmodels' `STL(endog, period, seasonal)` defaults: trend window the smallest odd integer
    /// `>= 1.5·period / (1 − 1.5/seasonal)`, low-pass window the smallest odd integer `> period`,
    /// all degrees 1, and 5 inner passes (`robust=False`).
    pub fn new(period: usize, seasonal: usize) -> Self {
        let trend = (1.5 * period as f64 / (1.0 - 1.5 / seasonal as f64)).ceil();
        let trend = if trend.is_finite() && trend > 0.0 {
            next_odd(trend as usize)
        } else {
            0
        };
        Self {
            period,
            seasonal,
            trend,
            low_pass: next_odd(period + 1),
            seasonal_deg: 1,
            trend_deg: 1,
            low_pass_deg: 1,
            inner_iter: 5,
        }
    }

    /// Checks the parameters as statsmodels does, plus `len >= period` (statsmodels reads
    /// uninitialised memory for a series shorter than one period).
    fn check(&self, len: usize) -> Result<(), ModelError> {
        let odd_window = |window: usize| window >= 3 && !window.is_multiple_of(2);
        if self.period < 2 {
            return Err(invalid("period", ">= 2"));
        }
        if !odd_window(self.seasonal) {
            return Err(invalid("seasonal", "an odd integer >= 3"));
        }
        if !odd_window(self.trend) || self.trend <= self.period {
            return Err(invalid("trend", "an odd integer >= 3 and > period"));
        }
        if !odd_window(self.low_pass) || self.low_pass <= self.period {
            return Err(invalid("low_pass", "an odd integer >= 3 and > period"));
        }
        if self.seasonal_deg > 1 || self.trend_deg > 1 || self.low_pass_deg > 1 {
            return Err(invalid("degree", "0 or 1"));
        }
        if self.inner_iter == 0 {
            return Err(invalid("inner_iter", ">= 1"));
        }
        if len < self.period {
            return Err(ModelError::TooShort {
                needed: self.period,
                got: len,
            });
        }
        Ok(())
    }

    /// Decomposes `y` into seasonal and trend components.
    pub fn fit(&self, y: &[f64]) -> Result<StlComponents, ModelError> {
        let mut seasonal = vec![0.0; y.len()];
        let mut trend = vec![0.0; y.len()];
        self.fit_into(y, &mut StlWorkspace::default(), &mut seasonal, &mut trend)?;
        Ok(StlComponents { seasonal, trend })
    }

    /// Decomposes `y` into `seasonal` and `trend` (each `y.len()` long; previous contents are
    /// ignored), using `workspace` for scratch space. Inputs must be finite.
    pub fn fit_into(
        &self,
        y: &[f64],
        workspace: &mut StlWorkspace,
        seasonal: &mut [f64],
        trend: &mut [f64],
    ) -> Result<(), ModelError> {
        let n = y.len();
        self.check(n)?;
        if seasonal.len() != n || trend.len() != n {
            return Err(invalid("components", "buffers as long as the series"));
        }
        let period = self.period;
        let StlWorkspace {
            detrended,
            cycle,
            averaged,
            subseries,
            subseries_smooth,
            weights,
            kernel,
        } = workspace;
        let subseries_len = n.div_ceil(period);
        resize(detrended, n + 2);
        resize(cycle, n + 2 * period);
        resize(averaged, n + period + 1);
        resize(subseries, subseries_len);
        resize(subseries_smooth, subseries_len + 2);
        resize(weights, n);
        seasonal.fill(0.0);
        trend.fill(0.0);
        let mut loess = Loess { weights, kernel };
        for _ in 0..self.inner_iter {
            for ((out, value), level) in detrended.iter_mut().zip(y).zip(trend.iter()) {
                *out = value - level;
            }
            self.smooth_cycles(
                &detrended[..n],
                cycle,
                subseries,
                subseries_smooth,
                &mut loess,
            );
            // Low-pass filter of the cycles: moving averages of length period, period, 3 ...
            moving_average(&cycle[..n + 2 * period], period, averaged);
            moving_average(&averaged[..n + period + 1], period, detrended);
            moving_average(&detrended[..n + 2], 3, averaged);
            // ... then a LOESS.
            loess.smooth(
                &averaged[..n],
                self.low_pass,
                self.low_pass_deg,
                &mut detrended[..n],
            );
            for (index, season) in seasonal.iter_mut().enumerate() {
                *season = cycle[period + index] - detrended[index];
                detrended[index] = y[index] - *season;
            }
            loess.smooth(&detrended[..n], self.trend, self.trend_deg, trend);
        }
        Ok(())
    }

    /// statsmodels' `_ss`: LOESS-smooths each cycle-subseries of `values` and extends it by one
    /// point at each end, writing the result interleaved into `cycle` (`n + 2·period` long).
    fn smooth_cycles(
        &self,
        values: &[f64],
        cycle: &mut [f64],
        subseries: &mut [f64],
        smooth: &mut [f64],
        loess: &mut Loess<'_>,
    ) {
        let (n, period, window, degree) =
            (values.len(), self.period, self.seasonal, self.seasonal_deg);
        for phase in 0..period {
            let count = (n - (phase + 1)) / period + 1;
            let subseries = &mut subseries[..count];
            for (slot, value) in subseries
                .iter_mut()
                .zip(values[phase..].iter().step_by(period))
            {
                *slot = *value;
            }
            let smooth = &mut smooth[..count + 2];
            loess.smooth(subseries, window, degree, &mut smooth[1..=count]);
            let first = loess.estimate(subseries, window, degree, 0, 1, window.min(count));
            smooth[0] = if first.is_nan() { smooth[1] } else { first };
            let left = if count + 1 > window {
                count + 1 - window
            } else {
                1
            };
            let last = loess.estimate(subseries, window, degree, count as i64 + 1, left, count);
            smooth[count + 1] = if last.is_nan() { smooth[count] } else { last };
            for (slot, value) in cycle[phase..].iter_mut().step_by(period).zip(smooth.iter()) {
                *slot = *value;
            }
        }
    }
}

/// Grows `buffer` to at least `len` entries (never shrinks, so a workspace only allocates once).
fn resize(buffer: &mut Vec<f64>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// statsmodels' `_ma`: moving averages of length `len` over `values` (running sum, as statsmodels
/// computes it), `values.len() − len + 1` of them, into the front of `out`.
fn moving_average(values: &[f64], len: usize, out: &mut [f64]) {
    let count = values.len() + 1 - len;
    let divisor = len as f64;
    let mut sum: f64 = values[..len].iter().sum();
    out[0] = sum / divisor;
    for index in 1..count {
        sum += values[index + len - 1] - values[index - 1];
        out[index] = sum / divisor;
    }
}

/// LOESS fits with tricube weights over a window of observations (statsmodels `_est`/`_ess`).
struct Loess<'a> {
    /// Weights of the current fit, indexed like the series.
    weights: &'a mut Vec<f64>,
    /// Normalised weights of a centred window, without its two zero-weight ends.
    kernel: &'a mut Vec<f64>,
}

/// Tricube weight of an observation at distance `distance` from the fitted point, for a
/// half-width `half_width` (statsmodels' cut-offs at 0.1 % and 99.9 % of it).
fn tricube(distance: f64, half_width: f64) -> f64 {
    if distance <= 0.001 * half_width {
        1.0
    } else if distance <= 0.999 * half_width {
        (1.0 - (distance / half_width).powi(3)).powi(3)
    } else {
        0.0
    }
}

impl Loess<'_> {
    /// statsmodels' `_est`: the LOESS fit of degree `degree` at 1-based position `at` (possibly
    /// just outside the series) from the 1-based window `left..=right` of `values`, for a window
    /// of nominal length `len`. `NaN` when every weight is zero.
    fn estimate(
        &mut self,
        values: &[f64],
        len: usize,
        degree: u8,
        at: i64,
        left: usize,
        right: usize,
    ) -> f64 {
        let n = values.len();
        let span = (n as f64) - 1.0;
        let mut half_width = (at - left as i64).max(right as i64 - at) as f64;
        if len > n {
            half_width += ((len - n) / 2) as f64;
        }
        let position = at as f64;
        let weights = &mut self.weights[left - 1..right];
        let window = &values[left - 1..right];
        let mut total = 0.0;
        for (offset, weight) in weights.iter_mut().enumerate() {
            let distance = ((left + offset) as f64 - position).abs();
            *weight = tricube(distance, half_width);
            total += *weight;
        }
        if total <= 0.0 {
            return f64::NAN;
        }
        for weight in weights.iter_mut() {
            *weight /= total;
        }
        if half_width > 0.0 && degree > 0 {
            let mut centre = 0.0;
            for (offset, weight) in weights.iter().enumerate() {
                centre += weight * (left + offset) as f64;
            }
            let mut slope = position - centre;
            let mut spread = 0.0;
            for (offset, weight) in weights.iter().enumerate() {
                let deviation = (left + offset) as f64 - centre;
                spread += weight * deviation * deviation;
            }
            if spread.sqrt() > 0.001 * span {
                slope /= spread;
                for (offset, weight) in weights.iter_mut().enumerate() {
                    *weight *= slope * ((left + offset) as f64 - centre) + 1.0;
                }
            }
        }
        weights
            .iter()
            .zip(window)
            .map(|(weight, value)| weight * value)
            .sum()
    }

    /// statsmodels' `_ess` with jump 1: the LOESS smooth of `values` with window `len` and
    /// degree `degree` at every position, into `out`. Windows centred on their point use the
    /// shared kernel (for degree 1 the linear term vanishes there: the window is symmetric).
    fn smooth(&mut self, values: &[f64], len: usize, degree: u8, out: &mut [f64]) {
        let n = values.len();
        if n < 2 {
            out[0] = values[0];
            return;
        }
        let fit = |loess: &mut Self, at: usize, left: usize, right: usize| {
            let value = loess.estimate(values, len, degree, at as i64, left, right);
            if value.is_nan() {
                values[at - 1]
            } else {
                value
            }
        };
        if len >= n {
            for (index, slot) in out.iter_mut().enumerate().take(n) {
                *slot = fit(self, index + 1, 1, n);
            }
            return;
        }
        if len.is_multiple_of(2) {
            // No window is centred on its point (never the case for STL's odd windows).
            let shift_after = (len + 2) / 2;
            let (mut left, mut right) = (1, len);
            for (index, slot) in out.iter_mut().enumerate().take(n) {
                if index + 1 > shift_after && right != n {
                    left += 1;
                    right += 1;
                }
                *slot = fit(self, index + 1, left, right);
            }
            return;
        }
        // statsmodels slides the window `left..=right` so that it is centred on every point from
        // `half` to `n − half − 1` (0-based) and pinned to the series' ends before and after.
        let half = (len - 1) / 2;
        for (index, slot) in out.iter_mut().enumerate().take(half) {
            *slot = fit(self, index + 1, 1, len);
        }
        for (index, slot) in out.iter_mut().enumerate().take(n).skip(n - half) {
            *slot = fit(self, index + 1, n + 1 - len, n);
        }
        // Centred windows: their two end weights are zero and the kernel spans the rest. Summing
        // tap by tap keeps each point's summation order (statsmodels', left to right) while
        // letting the inner loop vectorise.
        self.build_kernel(len);
        let centred = &mut out[half..n - half];
        centred.fill(0.0);
        for (tap, weight) in self.kernel.iter().enumerate() {
            let shifted = &values[1 + tap..1 + tap + centred.len()];
            for (slot, value) in centred.iter_mut().zip(shifted) {
                *slot += weight * value;
            }
        }
    }

    /// Normalised tricube weights of a centred window of odd length `len` (statsmodels' `_est`
    /// for an interior point: half-width `(len − 1)/2`, both end weights zero, dropped here).
    fn build_kernel(&mut self, len: usize) {
        let half = (len - 1) / 2;
        let half_width = half as f64;
        self.kernel.clear();
        let mut total = 0.0;
        for offset in 0..len {
            let weight = tricube((offset as f64 - half_width).abs(), half_width);
            total += weight;
            if offset != 0 && offset != len - 1 {
                self.kernel.push(weight);
            }
        }
        for weight in self.kernel.iter_mut() {
            *weight /= total;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_windows_follow_statsmodels() {
        let stl = Stl::new(7, 11);
        assert_eq!((stl.trend, stl.low_pass), (13, 9));
        let stl = Stl::new(7, 7);
        assert_eq!((stl.trend, stl.low_pass), (15, 9));
        let stl = Stl::new(365, 15);
        assert_eq!((stl.trend, stl.low_pass), (609, 367));
        let stl = Stl::new(12, 7);
        assert_eq!((stl.trend, stl.low_pass), (23, 13));
    }

    #[test]
    fn moving_average_uses_a_running_sum() {
        let mut out = [0.0; 3];
        moving_average(&[1.0, 2.0, 3.0, 4.0, 5.0], 3, &mut out);
        assert_eq!(out, [2.0, 3.0, 4.0]);
    }

    #[test]
    fn loess_reproduces_a_straight_line() {
        let values: Vec<f64> = (0..40).map(|t| 3.0 + 0.5 * t as f64).collect();
        let (mut weights, mut kernel) = (vec![0.0; 40], Vec::new());
        let mut loess = Loess {
            weights: &mut weights,
            kernel: &mut kernel,
        };
        let mut out = vec![0.0; 40];
        loess.smooth(&values, 13, 1, &mut out);
        for (fit, value) in out.iter().zip(&values) {
            assert!((fit - value).abs() < 1e-9, "{fit} vs {value}");
        }
    }

    #[test]
    fn pure_weekly_pattern_goes_to_the_seasonal_component() {
        let pattern = [1.0, 4.0, -2.0, 0.5, 3.0, -6.0, -0.5];
        let y: Vec<f64> = (0..140).map(|t| 10.0 + pattern[t % 7]).collect();
        let components = Stl::new(7, 7).fit(&y).expect("valid");
        for t in 20..120 {
            assert!((components.trend[t] - 10.0).abs() < 1e-6);
            assert!((components.seasonal[t] - pattern[t % 7]).abs() < 1e-6);
        }
    }

    #[test]
    fn invalid_parameters_and_short_series_are_rejected() {
        let y = [1.0; 20];
        assert!(matches!(
            Stl::new(1, 7).fit(&y),
            Err(ModelError::InvalidParameter { .. })
        ));
        assert!(matches!(
            Stl::new(7, 8).fit(&y),
            Err(ModelError::InvalidParameter { .. })
        ));
        assert_eq!(
            Stl::new(30, 7).fit(&y),
            Err(ModelError::TooShort {
                needed: 30,
                got: 20
            })
        );
    }
}
