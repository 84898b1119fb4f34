//! Runs the Nelder–Mead searches of all candidate forms in lockstep, evaluating the pending
//! points of the additive-error candidates together in one pass over the history.
//!
//! The ETS recursion is a long chain of dependent floating-point operations, so one evaluation
//! leaves most of the CPU idle; interleaving independent evaluations step by step keeps it busy.
//! Each lane does exactly the arithmetic of the single-model recursion, so results are identical.

use super::{Candidate, Component, guard_objective, objective_value, unpack};
use crate::forecast::optimize::{NelderMead, NelderMeadOptions};

/// State of one additive-error evaluation inside a lockstep pass.
#[derive(Debug, Clone, Default)]
struct Lane {
    candidate: usize,
    has_trend: bool,
    has_season: bool,
    alpha: f64,
    beta: f64,
    gamma: f64,
    phi: f64,
    level: f64,
    slope: f64,
    slot: usize,
    period: usize,
    seasons: Vec<f64>,
    squared_errors: f64,
}

impl Lane {
    /// Loads a parameter vector `[alpha, (beta), (gamma), (phi), l, (b), s_1..s_{m-1}]`.
    fn load(&mut self, candidate_index: usize, candidate: &Candidate, parameters: &[f64]) {
        let spec = candidate.spec;
        let (smoothing, used) = unpack(spec, parameters);
        let state = &parameters[used..];
        self.candidate = candidate_index;
        self.has_trend = spec.trend != Component::None;
        self.has_season = spec.season != Component::None;
        self.alpha = smoothing.alpha;
        self.beta = smoothing.beta;
        self.gamma = smoothing.gamma;
        self.phi = smoothing.phi;
        self.level = state[0];
        self.slope = if self.has_trend { state[1] } else { 0.0 };
        self.period = if self.has_season { candidate.m } else { 1 };
        self.seasons.clear();
        self.seasons.resize(self.period, 0.0);
        if self.has_season {
            let offset = 1 + usize::from(self.has_trend);
            let given = &state[offset..offset + self.period - 1];
            self.seasons[..self.period - 1].copy_from_slice(given);
            self.seasons[self.period - 1] = -given.iter().sum::<f64>();
        }
        self.slot = self.period - 1;
        self.squared_errors = 0.0;
    }

    /// One step of the additive-error recursion (same operations as `run`).
    #[inline(always)]
    fn step(&mut self, value: f64) {
        let damped_slope = if self.has_trend {
            self.phi * self.slope
        } else {
            0.0
        };
        let base = if self.has_trend {
            self.level + damped_slope
        } else {
            self.level
        };
        let (forecast, innovation) = if self.has_season {
            let old_season = self.seasons[self.slot];
            let target = value - base;
            self.seasons[self.slot] = old_season + self.gamma * (target - old_season);
            self.slot = if self.slot == 0 {
                self.period - 1
            } else {
                self.slot - 1
            };
            (base + old_season, (value - old_season) - base)
        } else {
            (base, value - base)
        };
        let error = value - forecast;
        self.level = base + self.alpha * innovation;
        if self.has_trend {
            self.slope = damped_slope + self.beta * innovation;
        }
        self.squared_errors += error * error;
    }
}

/// Optimises every candidate (statsforecast's Nelder–Mead settings) and returns each best point.
pub(super) fn optimise_in_lockstep(history: &[f64], candidates: &[Candidate]) -> Vec<Vec<f64>> {
    let mut searches: Vec<NelderMead> = candidates
        .iter()
        .map(|candidate| {
            NelderMead::new(
                &candidate.start,
                &candidate.lower,
                &candidate.upper,
                NelderMeadOptions::default(),
            )
        })
        .collect();
    let mut lanes: Vec<Lane> = Vec::with_capacity(candidates.len());
    let mut active = 0;
    let mut values = vec![0.0; candidates.len()];
    let mut scratch = vec![
        0.0;
        candidates
            .iter()
            .map(|candidate| candidate.m)
            .max()
            .unwrap_or(1)
            .max(1)
    ];
    let count = history.len() as f64;
    loop {
        let mut pending = false;
        let mut lane_count = 0;
        for (index, (candidate, search)) in candidates.iter().zip(&searches).enumerate() {
            let Some(point) = search.pending() else {
                continue;
            };
            pending = true;
            if candidate.spec.error == Component::Additive {
                if lane_count == lanes.len() {
                    lanes.push(Lane::default());
                }
                lanes[lane_count].load(index, candidate, point);
                lane_count += 1;
            } else {
                values[index] =
                    objective_value(candidate.spec, candidate.m, history, point, &mut scratch);
            }
        }
        if !pending {
            break;
        }
        active = active.max(lane_count);
        let batch = &mut lanes[..lane_count];
        for &value in history {
            for lane in batch.iter_mut() {
                lane.step(value);
            }
        }
        for lane in batch.iter() {
            let squared_errors = lane.squared_errors;
            let likelihood = if squared_errors > 0.0 {
                count * squared_errors.ln()
            } else {
                count * (squared_errors + 1e-8).ln()
            };
            values[lane.candidate] = guard_objective(likelihood);
        }
        for (index, search) in searches.iter_mut().enumerate() {
            if search.pending().is_some() {
                search.tell(values[index]);
            }
        }
    }
    debug_assert!(active <= candidates.len());
    searches
        .iter()
        .map(|search| search.result().point)
        .collect()
}
