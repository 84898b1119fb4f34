//! AutoETS: exponential-smoothing state-space models selected by AICc, following statsforecast
//! 2.1.1's `AutoETS(season_length)` (itself a port of R's `forecast::ets`).
//!
//! Candidates are error A/M × trend N/A/Ad × season N/A/M, minus the "forbidden" ones
//! (additive error with multiplicative season); multiplicative error or season only when every
//! observation is strictly positive. Each candidate's smoothing parameters and initial states
//! are fitted by the bounded Nelder–Mead of [`crate::forecast::optimize`] on `n·ln(SSE)` (plus
//! `2·Σln|ŷ|` for multiplicative error), with statsforecast's start values, bounds (including
//! its habit of narrowing the upper bounds of beta and gamma from one candidate to the next),
//! simplex and stopping rule. As in statsforecast, admissibility is checked on the starting
//! parameters only; the optimiser then keeps the smoothing parameters inside their box bounds.
//!
//! Two implementation choices keep it fast without changing results beyond rounding: the slope
//! update uses the algebraically equal `phi·b + beta·(p − q)` (a shorter dependency chain than
//! statsforecast's `phi·b + (beta/alpha)·(l_new − l_old − phi·b)`), and the candidates'
//! optimisations run in lockstep so their likelihood passes interleave (see `lanes`).

mod admissible;
mod init;
mod lanes;

use lanes::optimise_in_lockstep;

pub use admissible::admissible;

use crate::forecast::model::{Model, ModelError, ModelForecast, validate_history};

/// Kind of an ETS component (error, trend or season).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// Component absent (only valid for trend and season).
    None,
    /// Additive component.
    Additive,
    /// Multiplicative component.
    Multiplicative,
}

/// One ETS model form, e.g. ETS(A,Ad,A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EtsSpec {
    /// Error type (additive or multiplicative).
    pub error: Component,
    /// Trend type (none or additive; multiplicative trend is not searched, as in statsforecast).
    pub trend: Component,
    /// Season type.
    pub season: Component,
    /// Whether the trend is damped.
    pub damped: bool,
}

/// A fitted ETS model: form, parameters, information criterion and final state.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedEts {
    /// Model form.
    pub spec: EtsSpec,
    /// Season length used (1 without season).
    pub season_length: usize,
    /// Level smoothing.
    pub alpha: f64,
    /// Trend smoothing (0 without trend).
    pub beta: f64,
    /// Seasonal smoothing (0 without season).
    pub gamma: f64,
    /// Damping (1 when not damped).
    pub phi: f64,
    /// Corrected Akaike information criterion.
    pub aicc: f64,
    /// In-sample one-step fitted values.
    pub fitted: Vec<f64>,
    /// State after the last observation: level, slope, seasonal states (most recent first).
    pub level: f64,
    /// Slope after the last observation (0 without trend).
    pub slope: f64,
    /// Seasonal states after the last observation, `seasons[0]` the most recent.
    pub seasons: Vec<f64>,
}

impl FittedEts {
    /// Point forecasts for the next `horizon` steps (statsforecast's `forecast` recursion).
    pub fn forecast(&self, horizon: usize) -> Vec<f64> {
        let m = self.season_length;
        let mut damping_sum = self.phi;
        (0..horizon)
            .map(|step| {
                let mut value = match self.spec.trend {
                    Component::None => self.level,
                    _ => self.level + damping_sum * self.slope,
                };
                if self.spec.season != Component::None {
                    let index = (m - 1) - (step % m);
                    let seasonal = self.seasons[index];
                    value = match self.spec.season {
                        Component::Multiplicative => value * seasonal,
                        _ => value + seasonal,
                    };
                }
                // statsforecast adds phi^(step + 1) (R's forecast::ets does the same).
                damping_sum += if (self.phi - 1.0).abs() < TOL {
                    1.0
                } else {
                    self.phi.powi(step as i32 + 1)
                };
                value
            })
            .collect()
    }
}

const TOL: f64 = 1e-10;
const HUGE: f64 = 1e10;
const LOWER: [f64; 4] = [1e-4, 1e-4, 1e-4, 0.8];
const UPPER: [f64; 4] = [0.9999, 0.9999, 0.9999, 0.98];

/// Smoothing parameters of one recursion run.
#[derive(Debug, Clone, Copy)]
struct Smoothing {
    alpha: f64,
    beta: f64,
    gamma: f64,
    phi: f64,
}

/// Season kinds as const-generic tags for the specialised recursion.
const SEASON_NONE: u8 = 0;
const SEASON_ADDITIVE: u8 = 1;
const SEASON_MULTIPLICATIVE: u8 = 2;

/// Runs the ETS recursion from `state` (`[l, (b), s_1..s_{m-1}]`, last season implied) over
/// `history`; returns `-2 log L` up to a constant (statsforecast's `lik`) or `+inf` if the
/// seasonal start is invalid. `seasons` is scratch space of length `m`; `residuals`, when given,
/// receives each step's error, and `final_state` receives `(level, slope, ring slot)`.
#[allow(clippy::too_many_arguments)]
fn recursion(
    spec: EtsSpec,
    m: usize,
    history: &[f64],
    smoothing: Smoothing,
    state: &[f64],
    seasons: &mut [f64],
    residuals: Option<&mut [f64]>,
    final_state: Option<&mut (f64, f64, usize)>,
) -> f64 {
    let has_trend = spec.trend != Component::None;
    if spec.season != Component::None {
        let offset = 1 + usize::from(has_trend);
        let given = &state[offset..offset + m - 1];
        seasons[..m - 1].copy_from_slice(given);
        let normaliser = if spec.season == Component::Multiplicative {
            m as f64
        } else {
            0.0
        };
        seasons[m - 1] = normaliser - given.iter().sum::<f64>();
        if spec.season == Component::Multiplicative && seasons[..m].iter().any(|value| *value < 0.0)
        {
            return f64::INFINITY;
        }
    }
    let level = state[0];
    let slope = if has_trend { state[1] } else { 0.0 };
    let multiplicative = spec.error == Component::Multiplicative;
    macro_rules! dispatch {
        ($trend:literal, $season:expr) => {
            if multiplicative {
                run::<$trend, $season, true>(
                    history,
                    smoothing,
                    level,
                    slope,
                    seasons,
                    m,
                    residuals,
                    final_state,
                )
            } else {
                run::<$trend, $season, false>(
                    history,
                    smoothing,
                    level,
                    slope,
                    seasons,
                    m,
                    residuals,
                    final_state,
                )
            }
        };
    }
    match (has_trend, spec.season) {
        (false, Component::None) => dispatch!(false, SEASON_NONE),
        (false, Component::Additive) => dispatch!(false, SEASON_ADDITIVE),
        (false, Component::Multiplicative) => dispatch!(false, SEASON_MULTIPLICATIVE),
        (true, Component::None) => dispatch!(true, SEASON_NONE),
        (true, Component::Additive) => dispatch!(true, SEASON_ADDITIVE),
        (true, Component::Multiplicative) => dispatch!(true, SEASON_MULTIPLICATIVE),
    }
}

/// The recursion's hot loop, specialised per model form so it has no branches on the form.
/// Arithmetic follows statsforecast's `Update`/`Calc` operation for operation, except for the
/// slope update noted below. The seasonal ring is walked one season at a time, so each chunk of
/// `m` days visits the seasonal slots `m-1, m-2, .., 0` without index arithmetic.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn run<const TREND: bool, const SEASON: u8, const MULTIPLICATIVE_ERROR: bool>(
    history: &[f64],
    smoothing: Smoothing,
    mut level: f64,
    mut slope: f64,
    seasons: &mut [f64],
    m: usize,
    mut residuals: Option<&mut [f64]>,
    final_state: Option<&mut (f64, f64, usize)>,
) -> f64 {
    let Smoothing {
        alpha,
        beta,
        gamma,
        phi,
    } = smoothing;
    let period = if SEASON == SEASON_NONE { 1 } else { m };
    let seasons = &mut seasons[..period];
    let mut squared_errors = 0.0;
    let mut log_forecasts = 0.0;
    let mut index = 0;
    for chunk in history.chunks(period) {
        for (&value, season) in chunk.iter().zip(seasons.iter_mut().rev()) {
            let damped_slope = if TREND { phi * slope } else { 0.0 };
            let base = if TREND { level + damped_slope } else { level };
            let old_season = if SEASON == SEASON_NONE { 0.0 } else { *season };
            let forecast = match SEASON {
                SEASON_NONE => base,
                SEASON_ADDITIVE => base + old_season,
                _ => base * old_season,
            };
            let error = if MULTIPLICATIVE_ERROR {
                let divisor = if forecast.abs() < TOL {
                    forecast + TOL
                } else {
                    forecast
                };
                (value - forecast) / divisor
            } else {
                value - forecast
            };
            if let Some(residuals) = residuals.as_deref_mut() {
                residuals[index] = error;
            }
            index += 1;
            let deseasonalised = match SEASON {
                SEASON_NONE => value,
                SEASON_ADDITIVE => value - old_season,
                _ => {
                    if old_season.abs() < TOL {
                        HUGE
                    } else {
                        value / old_season
                    }
                }
            };
            // statsforecast computes the new slope as `phi b + (beta / alpha) (l_new - l_old - phi b)`;
            // `l_new - l_old - phi b` equals `alpha (p - q)` in exact arithmetic, so we use the
            // shorter form: it halves the loop's dependency chain (differences are rounding only).
            let innovation = deseasonalised - base;
            level = base + alpha * innovation;
            if TREND {
                slope = damped_slope + beta * innovation;
            }
            if SEASON != SEASON_NONE {
                let target = if SEASON == SEASON_ADDITIVE {
                    value - base
                } else if base.abs() < TOL {
                    HUGE
                } else {
                    value / base
                };
                *season = old_season + gamma * (target - old_season);
            }
            squared_errors += error * error;
            if MULTIPLICATIVE_ERROR {
                let magnitude = forecast.abs();
                log_forecasts += if magnitude > 0.0 {
                    magnitude.ln()
                } else {
                    (magnitude + 1e-8).ln()
                };
            }
        }
    }
    if let Some(final_state) = final_state {
        // The slot that will be read next: the walk is at `m - 1 - (n mod m)`.
        let slot = (period - 1 + period - history.len() % period) % period;
        *final_state = (level, slope, slot);
    }
    let count = history.len() as f64;
    let mut likelihood = if squared_errors > 0.0 {
        count * squared_errors.ln()
    } else {
        count * (squared_errors + 1e-8).ln()
    };
    if MULTIPLICATIVE_ERROR {
        likelihood += 2.0 * log_forecasts;
    }
    likelihood
}

/// Splits an optimiser vector `[alpha, (beta), (gamma), (phi), states...]` into its parts.
fn unpack(spec: EtsSpec, parameters: &[f64]) -> (Smoothing, usize) {
    let mut next = 0;
    let mut take = |present: bool, absent: f64| {
        if present {
            next += 1;
            parameters[next - 1]
        } else {
            absent
        }
    };
    let alpha = take(true, 0.0);
    let beta = take(spec.trend != Component::None, 0.0);
    let gamma = take(spec.season != Component::None, 0.0);
    let phi = take(spec.damped, 1.0);
    (
        Smoothing {
            alpha,
            beta,
            gamma,
            phi,
        },
        next,
    )
}

/// One candidate form ready for optimisation: start point and box bounds of its parameters.
#[derive(Debug, Clone)]
struct Candidate {
    spec: EtsSpec,
    m: usize,
    start: Vec<f64>,
    lower: Vec<f64>,
    upper: Vec<f64>,
}

/// Sets up one ETS form as statsforecast's `etsmodel` does; `upper` carries statsforecast's
/// bound updates from one candidate to the next. Returns `None` when the form cannot be fitted.
fn prepare(history: &[f64], m: usize, spec: EtsSpec, upper: &mut [f64; 4]) -> Option<Candidate> {
    let m = if spec.season == Component::None { 1 } else { m };
    let lower = LOWER;
    // Starting parameters (statsforecast `initparam`), narrowing the shared upper bounds.
    let mut alpha = lower[0] + 0.2 * (upper[0] - lower[0]) / m as f64;
    if !(0.0..=1.0).contains(&alpha) {
        alpha = lower[0] + 2e-3;
    }
    let mut start = vec![alpha];
    let mut beta = None;
    if spec.trend != Component::None {
        upper[1] = upper[1].min(alpha);
        let mut value = lower[1] + 0.1 * (upper[1] - lower[1]);
        if value < 0.0 || value > alpha {
            value = alpha - 1e-3;
        }
        beta = Some(value);
        start.push(value);
    }
    let mut gamma = None;
    if spec.season != Component::None {
        upper[2] = upper[2].min(1.0 - alpha);
        let mut value = lower[2] + 0.05 * (upper[2] - lower[2]);
        if value < 0.0 || value > 1.0 - alpha {
            value = 1.0 - alpha - 1e-3;
        }
        gamma = Some(value);
        start.push(value);
    }
    let mut phi = None;
    if spec.damped {
        let mut value = lower[3] + 0.99 * (upper[3] - lower[3]);
        if !(0.0..=1.0).contains(&value) {
            value = upper[3] - 1e-3;
        }
        phi = Some(value);
        start.push(value);
    }
    if !within_usual_bounds(alpha, beta, gamma, phi, &lower, upper)
        || !admissible(alpha, beta, gamma, phi, m)
    {
        return None;
    }
    let mut parameter_lower: Vec<f64> = Vec::with_capacity(start.len());
    let mut parameter_upper: Vec<f64> = Vec::with_capacity(start.len());
    for (index, present) in [true, beta.is_some(), gamma.is_some(), phi.is_some()]
        .into_iter()
        .enumerate()
    {
        if present {
            parameter_lower.push(lower[index]);
            parameter_upper.push(upper[index]);
        }
    }
    start.extend(init::initial_state(history, m, spec.trend, spec.season));
    let parameter_count = start.len();
    if parameter_count >= history.len() - 1 {
        return None;
    }
    parameter_lower.resize(parameter_count, f64::NEG_INFINITY);
    parameter_upper.resize(parameter_count, f64::INFINITY);

    Some(Candidate {
        spec,
        m,
        start,
        lower: parameter_lower,
        upper: parameter_upper,
    })
}

/// The optimiser's objective for one parameter vector (statsforecast `ObjectiveFunction`).
fn objective_value(
    spec: EtsSpec,
    m: usize,
    history: &[f64],
    parameters: &[f64],
    seasons: &mut [f64],
) -> f64 {
    let (smoothing, used) = unpack(spec, parameters);
    let value = recursion(
        spec,
        m,
        history,
        smoothing,
        &parameters[used..],
        seasons,
        None,
        None,
    );
    guard_objective(value)
}

/// statsforecast's treatment of the raw likelihood: floor at -1e10, NaN becomes -inf.
fn guard_objective(value: f64) -> f64 {
    let value = value.max(-1e10);
    if value.is_nan() {
        f64::NEG_INFINITY
    } else {
        value
    }
}

/// Final pass with the optimised parameters: residuals, AICc, final state.
fn finish(history: &[f64], candidate: &Candidate, point: &[f64]) -> Option<FittedEts> {
    let Candidate { spec, m, .. } = *candidate;
    let spec: EtsSpec = spec;
    let parameter_count = point.len();
    let best_point = point;
    let (smoothing, used) = unpack(spec, best_point);
    let mut residuals = vec![0.0; history.len()];
    let mut final_state = (0.0, 0.0, 0);
    let mut seasons = vec![0.0; m];
    let likelihood = recursion(
        spec,
        m,
        history,
        smoothing,
        &best_point[used..],
        &mut seasons,
        Some(&mut residuals),
        Some(&mut final_state),
    );
    if likelihood.is_nan() || likelihood == f64::INFINITY {
        return None;
    }
    let effective_parameters = (parameter_count + 1) as f64;
    let count = history.len() as f64;
    let aic = likelihood + 2.0 * effective_parameters;
    let denominator = count - effective_parameters - 1.0;
    let aicc = if denominator != 0.0 {
        aic + 2.0 * effective_parameters * (effective_parameters + 1.0) / denominator
    } else {
        f64::INFINITY
    };
    if aicc.is_nan() {
        return None;
    }
    let fitted = history
        .iter()
        .zip(&residuals)
        .map(|(value, error)| match spec.error {
            Component::Multiplicative => value / (1.0 + error),
            _ => value - error,
        })
        .collect();
    let (level, slope, slot) = final_state;
    // Logical seasonal state k (k = 0 most recent) lives at ring position (slot + 1 + k) mod m.
    let ordered_seasons = if spec.season == Component::None {
        Vec::new()
    } else {
        (0..m).map(|k| seasons[(slot + 1 + k) % m]).collect()
    };
    Some(FittedEts {
        spec,
        season_length: m,
        alpha: smoothing.alpha,
        beta: smoothing.beta,
        gamma: smoothing.gamma,
        phi: smoothing.phi,
        aicc,
        fitted,
        level,
        slope,
        seasons: ordered_seasons,
    })
}

/// statsforecast's `check_param` box test ("usual" bounds) on the starting parameters.
fn within_usual_bounds(
    alpha: f64,
    beta: Option<f64>,
    gamma: Option<f64>,
    phi: Option<f64>,
    lower: &[f64; 4],
    upper: &[f64; 4],
) -> bool {
    if alpha < lower[0] || alpha > upper[0] {
        return false;
    }
    if let Some(beta) = beta
        && (beta < lower[1] || beta > alpha || beta > upper[1])
    {
        return false;
    }
    if let Some(phi) = phi
        && (phi < lower[3] || phi > upper[3])
    {
        return false;
    }
    if let Some(gamma) = gamma
        && (gamma < lower[2] || gamma > 1.0 - alpha || gamma > upper[2])
    {
        return false;
    }
    true
}

/// Fits every admissible candidate in statsforecast's order and keeps the lowest AICc.
pub fn select(history: &[f64], season_length: usize) -> Result<FittedEts, ModelError> {
    let candidates = candidates_for(history, season_length)?;
    let points = optimise_in_lockstep(history, &candidates);
    let mut best: Option<FittedEts> = None;
    for (candidate, point) in candidates.iter().zip(&points) {
        if let Some(fit) = finish(history, candidate, point)
            && best.as_ref().is_none_or(|current| fit.aicc < current.aicc)
        {
            best = Some(fit);
        }
    }
    best.filter(|fit| fit.aicc.is_finite())
        .ok_or(ModelError::NoModelFitted)
}

/// The candidate forms for one series, in statsforecast's order, with their start points.
fn candidates_for(history: &[f64], season_length: usize) -> Result<Vec<Candidate>, ModelError> {
    validate_history(history, 7)?;
    let positive = history.iter().all(|value| *value > 0.0);
    let seasonal = season_length > 1 && history.len() > season_length;
    let mut upper = UPPER;
    let mut candidates = Vec::new();
    for error in [Component::Additive, Component::Multiplicative] {
        for trend in [Component::None, Component::Additive] {
            for season in [
                Component::None,
                Component::Additive,
                Component::Multiplicative,
            ] {
                for damped in [true, false] {
                    let skip = (trend == Component::None && damped)
                        || (error == Component::Additive && season == Component::Multiplicative)
                        || (!positive
                            && (error == Component::Multiplicative
                                || season == Component::Multiplicative))
                        || (season != Component::None && !seasonal);
                    if skip {
                        continue;
                    }
                    let spec = EtsSpec {
                        error,
                        trend,
                        season,
                        damped,
                    };
                    if let Some(candidate) = prepare(history, season_length, spec, &mut upper) {
                        candidates.push(candidate);
                    }
                }
            }
        }
    }
    Ok(candidates)
}

/// Automatic ETS with AICc model selection (statsforecast `AutoETS(season_length)`).
///
/// Needs at least 7 observations (statsforecast refuses tiny series). A constant series is
/// forecast as that constant.
#[derive(Debug, Clone, Copy)]
pub struct AutoEts {
    /// Season length (7 for a weekly pattern in daily data; 1 for none).
    pub season_length: usize,
}

impl Model for AutoEts {
    fn name(&self) -> &'static str {
        "AutoETS"
    }

    fn forecast(&self, history: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
        if self.season_length == 0 {
            return Err(ModelError::InvalidParameter {
                name: "season_length",
                expected: ">= 1",
            });
        }
        validate_history(history, 7)?;
        if history.iter().all(|value| *value == history[0]) {
            return Ok(ModelForecast::flat(
                history[0],
                horizon,
                Some(history.to_vec()),
            ));
        }
        let fit = select(history, self.season_length)?;
        Ok(ModelForecast {
            mean: fit.forecast(horizon),
            fitted: Some(fit.fitted),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly(weeks: usize, level: f64, slope: f64) -> Vec<f64> {
        let pattern = [1.0, 1.2, 0.9, 1.1, 1.0, 1.6, 0.2];
        (0..weeks * 7)
            .map(|t| (level + slope * t as f64) * pattern[t % 7])
            .collect()
    }

    #[track_caller]
    fn check(history: &[f64], season_length: usize, expected: &[f64], tolerance: f64) {
        let forecast = AutoEts { season_length }
            .forecast(history, expected.len())
            .expect("valid history");
        for (value, want) in forecast.mean.iter().zip(expected) {
            assert!(
                (value - want).abs() <= tolerance,
                "{:?} vs {expected:?}",
                forecast.mean
            );
        }
    }

    #[test]
    fn lockstep_optimisation_matches_optimising_each_candidate_alone() {
        let mut history = weekly(12, 5.0, 0.1);
        history[3] = 0.0;
        let candidates = candidates_for(&history, 7).expect("valid history");
        let together = optimise_in_lockstep(&history, &candidates);
        for (candidate, point) in candidates.iter().zip(together) {
            let mut seasons = vec![0.0; candidate.m];
            let alone = crate::forecast::optimize::nelder_mead(
                |parameters| {
                    objective_value(
                        candidate.spec,
                        candidate.m,
                        &history,
                        parameters,
                        &mut seasons,
                    )
                },
                &candidate.start,
                &candidate.lower,
                &candidate.upper,
                crate::forecast::optimize::NelderMeadOptions::default(),
            );
            assert_eq!(point, alone.point, "{:?}", candidate.spec);
        }
    }

    #[test]
    fn constant_history_forecasts_the_constant() {
        check(&[4.0; 30], 7, &[4.0, 4.0, 4.0], 0.0);
    }

    #[test]
    fn all_zero_history_forecasts_zero() {
        check(&[0.0; 30], 7, &[0.0, 0.0], 0.0);
    }

    #[test]
    fn clean_weekly_pattern_is_continued() {
        let history = weekly(20, 10.0, 0.0);
        let expected: Vec<f64> = weekly(21, 10.0, 0.0)[140..147].to_vec();
        check(&history, 7, &expected, 0.2);
    }

    #[test]
    fn seasonal_model_is_chosen_for_seasonal_data() {
        let fit = select(&weekly(20, 10.0, 0.0), 7).expect("fits");
        assert_ne!(fit.spec.season, Component::None);
    }

    #[test]
    fn linear_trend_is_extrapolated() {
        let history: Vec<f64> = (0..60)
            .map(|t| 5.0 + 0.5 * t as f64 + if t % 2 == 0 { 0.1 } else { -0.1 })
            .collect();
        check(&history, 1, &[35.0, 35.5], 0.5);
    }

    #[test]
    fn history_shorter_than_a_season_fits_without_season() {
        let history = [1.0, 3.0, 2.0, 4.0, 3.0, 5.0, 4.0, 6.0];
        let fit = select(&history, 12).expect("fits");
        assert_eq!(fit.spec.season, Component::None);
    }

    #[test]
    fn tiny_or_invalid_history_is_rejected() {
        let model = AutoEts { season_length: 7 };
        assert_eq!(
            model.forecast(&[], 1),
            Err(ModelError::TooShort { needed: 7, got: 0 })
        );
        assert_eq!(
            model.forecast(&[1.0; 5], 1),
            Err(ModelError::TooShort { needed: 7, got: 5 })
        );
        let mut history = vec![1.0; 20];
        history[3] = f64::NAN;
        assert_eq!(
            model.forecast(&history, 1),
            Err(ModelError::NonFinite { index: 3 })
        );
    }

    #[test]
    fn single_non_zero_day_gives_finite_non_negative_forecasts() {
        let mut history = vec![0.0; 60];
        history[30] = 5.0;
        let forecast = AutoEts { season_length: 7 }
            .forecast(&history, 7)
            .expect("fits");
        assert!(
            forecast
                .mean
                .iter()
                .all(|value| value.is_finite() && *value > -1.0)
        );
    }

    #[test]
    fn multiplicative_models_are_only_tried_on_positive_data() {
        let mut history = weekly(20, 10.0, 0.05);
        let fit = select(&history, 7).expect("fits");
        assert!(fit.fitted.iter().all(|value| value.is_finite()));
        history[10] = 0.0;
        let fit = select(&history, 7).expect("fits");
        assert_eq!(fit.spec.error, Component::Additive);
        assert_ne!(fit.spec.season, Component::Multiplicative);
    }
}
