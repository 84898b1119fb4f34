//! Small derivative-free optimisers: a bounded Nelder–Mead simplex and a golden-section search.
//!
//! Both follow statsforecast 2.1.1's C++ implementations step for step (same initial simplex,
//! same acceptance rules, same stopping tests) so that fitted parameters agree with it.

/// Settings for [`nelder_mead`]; the defaults are statsforecast's ETS settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NelderMeadOptions {
    /// Relative step used to build the initial simplex (`x_i * (1 + init_step)`).
    pub init_step: f64,
    /// Value used for a coordinate of the initial simplex whose start value is exactly zero.
    pub zero_perturbation: f64,
    /// Stop when the population standard deviation of the simplex values falls below this.
    pub tolerance_std: f64,
    /// Maximum number of iterations.
    pub max_iterations: usize,
}

impl Default for NelderMeadOptions {
    fn default() -> Self {
        Self {
            init_step: 0.05,
            zero_perturbation: 1e-4,
            tolerance_std: 1e-4,
            max_iterations: 1_000,
        }
    }
}

/// Result of a [`nelder_mead`] run.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    /// Best point found.
    pub point: Vec<f64>,
    /// Objective value at `point`.
    pub value: f64,
    /// Iterations used.
    pub iterations: usize,
}

/// Minimises `objective` from `start` with an adaptive Nelder–Mead simplex, clamping every
/// trial point into `[lower, upper]` (use infinities for unbounded coordinates).
pub fn nelder_mead<F>(
    mut objective: F,
    start: &[f64],
    lower: &[f64],
    upper: &[f64],
    options: NelderMeadOptions,
) -> Minimum
where
    F: FnMut(&[f64]) -> f64,
{
    let mut search = NelderMead::new(start, lower, upper, options);
    while let Some(point) = search.pending() {
        let value = objective(point);
        search.tell(value);
    }
    search.result()
}

/// Where a [`NelderMead`] search is within its iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    /// Evaluating row `.0` of the initial simplex.
    Initial(usize),
    /// Evaluating the reflected point.
    Reflect,
    /// Evaluating the expansion point; `.0` is the reflected value.
    Expand(f64),
    /// Evaluating the outside contraction; `.0` is the reflected value.
    ContractOutside(f64),
    /// Evaluating the inside contraction.
    ContractInside,
    /// Evaluating shrunk row `.0`.
    Shrink(usize),
    /// Search finished.
    Done,
}

/// A Nelder–Mead search driven from outside ("ask/tell"): read [`NelderMead::pending`], evaluate
/// it, pass the value to [`NelderMead::tell`]. This lets a caller advance several independent
/// searches in lockstep and evaluate their points together; [`nelder_mead`] is the plain loop.
#[derive(Debug, Clone)]
pub struct NelderMead {
    dimension: usize,
    lower: Vec<f64>,
    upper: Vec<f64>,
    options: NelderMeadOptions,
    expansion: f64,
    contraction: f64,
    shrink: f64,
    simplex: Vec<f64>,
    values: Vec<f64>,
    order: Vec<usize>,
    centroid: Vec<f64>,
    reflected: Vec<f64>,
    trial: Vec<f64>,
    best_index: usize,
    worst_index: usize,
    second_worst_index: usize,
    iteration: usize,
    stage: Stage,
}

impl NelderMead {
    /// Starts a search from `start` (clamped into the bounds) with the initial simplex built.
    pub fn new(start: &[f64], lower: &[f64], upper: &[f64], options: NelderMeadOptions) -> Self {
        let dimension = start.len();
        assert!(
            lower.len() == dimension && upper.len() == dimension,
            "invariant: bounds have the same length as the start point"
        );
        let size = dimension.max(1) as f64;
        let rows = dimension + 1;
        let mut search = Self {
            dimension,
            lower: lower.to_vec(),
            upper: upper.to_vec(),
            options,
            // Adaptive coefficients (Gao & Han 2012), as statsforecast uses with `adaptive = true`.
            expansion: 1.0 + 2.0 / size,
            contraction: 0.75 - 1.0 / (2.0 * size),
            shrink: 1.0 - 1.0 / size,
            simplex: vec![0.0; rows * dimension],
            values: vec![f64::NAN; rows],
            order: (0..rows).collect(),
            centroid: vec![0.0; dimension],
            reflected: vec![0.0; dimension],
            trial: vec![0.0; dimension],
            best_index: 0,
            worst_index: 0,
            second_worst_index: 0,
            iteration: 0,
            stage: Stage::Initial(0),
        };
        let mut first = start.to_vec();
        search.clamp(&mut first);
        for row in 0..rows {
            search.simplex[row * dimension..(row + 1) * dimension].copy_from_slice(&first);
        }
        for index in 0..dimension {
            let value = search.simplex[index * dimension + index];
            let perturbed = if value == 0.0 {
                options.zero_perturbation
            } else {
                value * (1.0 + options.init_step)
            };
            search.simplex[index * dimension + index] =
                perturbed.max(lower[index]).min(upper[index]);
        }
        search
    }

    fn clamp(&self, point: &mut [f64]) {
        for (index, coordinate) in point.iter_mut().enumerate() {
            *coordinate = coordinate.max(self.lower[index]).min(self.upper[index]);
        }
    }

    fn row(&self, row: usize) -> &[f64] {
        &self.simplex[row * self.dimension..(row + 1) * self.dimension]
    }

    /// The point whose objective value is needed next, or `None` once the search has finished.
    pub fn pending(&self) -> Option<&[f64]> {
        match self.stage {
            Stage::Initial(row) | Stage::Shrink(row) => Some(self.row(row)),
            Stage::Reflect => Some(&self.reflected),
            Stage::Expand(_) | Stage::ContractOutside(_) | Stage::ContractInside => {
                Some(&self.trial)
            }
            Stage::Done => None,
        }
    }

    /// Records the objective value of the [`NelderMead::pending`] point and moves on.
    pub fn tell(&mut self, value: f64) {
        let dimension = self.dimension;
        let worst = self.worst_index * dimension;
        match self.stage {
            Stage::Initial(row) => {
                self.values[row] = value;
                if row < dimension {
                    self.stage = Stage::Initial(row + 1);
                } else {
                    self.begin_iteration();
                }
            }
            Stage::Reflect => {
                let best_value = self.values[self.best_index];
                if best_value <= value && value < self.values[self.second_worst_index] {
                    self.simplex[worst..worst + dimension].copy_from_slice(&self.reflected);
                    self.values[self.worst_index] = value;
                    self.end_iteration();
                } else if value < best_value {
                    for index in 0..dimension {
                        self.trial[index] = self.centroid[index]
                            + self.expansion * (self.reflected[index] - self.centroid[index]);
                    }
                    let mut trial = std::mem::take(&mut self.trial);
                    self.clamp(&mut trial);
                    self.trial = trial;
                    self.stage = Stage::Expand(value);
                } else if self.values[self.second_worst_index] <= value
                    && value < self.values[self.worst_index]
                {
                    for index in 0..dimension {
                        self.trial[index] = self.centroid[index]
                            + self.contraction * (self.reflected[index] - self.centroid[index]);
                    }
                    let mut trial = std::mem::take(&mut self.trial);
                    self.clamp(&mut trial);
                    self.trial = trial;
                    self.stage = Stage::ContractOutside(value);
                } else {
                    for index in 0..dimension {
                        self.trial[index] = self.centroid[index]
                            - self.contraction * (self.reflected[index] - self.centroid[index]);
                    }
                    let mut trial = std::mem::take(&mut self.trial);
                    self.clamp(&mut trial);
                    self.trial = trial;
                    self.stage = Stage::ContractInside;
                }
            }
            Stage::Expand(reflected_value) => {
                if value < reflected_value {
                    self.simplex[worst..worst + dimension].copy_from_slice(&self.trial);
                    self.values[self.worst_index] = value;
                } else {
                    self.simplex[worst..worst + dimension].copy_from_slice(&self.reflected);
                    self.values[self.worst_index] = reflected_value;
                }
                self.end_iteration();
            }
            Stage::ContractOutside(reflected_value) => {
                if value <= reflected_value {
                    self.simplex[worst..worst + dimension].copy_from_slice(&self.trial);
                    self.values[self.worst_index] = value;
                    self.end_iteration();
                } else {
                    self.begin_shrink();
                }
            }
            Stage::ContractInside => {
                if value < self.values[self.worst_index] {
                    self.simplex[worst..worst + dimension].copy_from_slice(&self.trial);
                    self.values[self.worst_index] = value;
                    self.end_iteration();
                } else {
                    self.begin_shrink();
                }
            }
            Stage::Shrink(row) => {
                self.values[row] = value;
                let next = (row + 1..=dimension).find(|candidate| *candidate != self.best_index);
                match next {
                    Some(next) => self.stage = Stage::Shrink(next),
                    None => self.end_iteration(),
                }
            }
            Stage::Done => {}
        }
    }

    /// Moves every row towards the best one; the shrunk rows are then evaluated in order.
    fn begin_shrink(&mut self) {
        let dimension = self.dimension;
        let best = self.best_index * dimension;
        for row in (0..=dimension).filter(|row| *row != self.best_index) {
            for index in 0..dimension {
                let best_coordinate = self.simplex[best + index];
                let value = best_coordinate
                    + self.shrink * (self.simplex[row * dimension + index] - best_coordinate);
                self.simplex[row * dimension + index] =
                    value.max(self.lower[index]).min(self.upper[index]);
            }
        }
        let first = usize::from(self.best_index == 0);
        self.stage = Stage::Shrink(first);
    }

    fn end_iteration(&mut self) {
        self.iteration += 1;
        self.begin_iteration();
    }

    /// Orders the simplex, tests convergence and proposes the reflected point.
    fn begin_iteration(&mut self) {
        let dimension = self.dimension;
        if self.iteration >= self.options.max_iterations || dimension == 0 {
            self.stage = Stage::Done;
            return;
        }
        for (position, slot) in self.order.iter_mut().enumerate() {
            *slot = position;
        }
        let values = &self.values;
        self.order
            .sort_by(|left, right| values[*left].total_cmp(&values[*right]));
        self.best_index = self.order[0];
        self.worst_index = self.order[dimension];
        self.second_worst_index = self.order[dimension - 1];
        let count = values.len() as f64;
        let mean = values.iter().sum::<f64>() / count;
        let variance = values
            .iter()
            .map(|value| (value - mean).powi(2))
            .sum::<f64>()
            / count;
        if variance.sqrt() < self.options.tolerance_std {
            self.stage = Stage::Done;
            return;
        }
        self.centroid.fill(0.0);
        for row in (0..=dimension).filter(|row| *row != self.worst_index) {
            for (coordinate, value) in self
                .centroid
                .iter_mut()
                .zip(&self.simplex[row * dimension..])
            {
                *coordinate += value;
            }
        }
        for coordinate in self.centroid.iter_mut() {
            *coordinate /= dimension as f64;
        }
        let worst = self.worst_index * dimension;
        for index in 0..dimension {
            self.reflected[index] =
                self.centroid[index] + (self.centroid[index] - self.simplex[worst + index]);
        }
        let mut reflected = std::mem::take(&mut self.reflected);
        self.clamp(&mut reflected);
        self.reflected = reflected;
        self.stage = Stage::Reflect;
    }

    /// Best point found so far (the final answer once [`NelderMead::pending`] is `None`).
    pub fn result(&self) -> Minimum {
        Minimum {
            point: self.row(self.best_index).to_vec(),
            value: self.values[self.best_index],
            iterations: self.iteration + 1,
        }
    }
}

/// Minimises a unimodal `objective` on `[lower, upper]` by golden-section search, stopping when
/// the bracket is narrower than `1e-12` or the two probes tie, and returns the bracket midpoint
/// (statsforecast's `golden_section_ses`).
pub fn golden_section<F>(mut objective: F, lower: f64, upper: f64) -> f64
where
    F: FnMut(f64) -> f64,
{
    let ratio = (5.0_f64.sqrt() + 1.0) / 2.0;
    let (mut low, mut high) = (lower, upper);
    let mut left = high - (high - low) / ratio;
    let mut right = low + (high - low) / ratio;
    let mut left_value = objective(left);
    let mut right_value = objective(right);
    while (high - low).abs() >= 1e-12 {
        if left_value < right_value {
            high = right;
            right = left;
            right_value = left_value;
            left = high - (high - low) / ratio;
            left_value = objective(left);
        } else if right_value < left_value {
            low = left;
            left = right;
            left_value = right_value;
            right = low + (high - low) / ratio;
            right_value = objective(right);
        } else {
            break;
        }
    }
    (high + low) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} vs {expected}"
        );
    }

    #[test]
    fn nelder_mead_finds_the_minimum_of_a_shifted_quadratic() {
        let objective = |point: &[f64]| (point[0] - 1.5).powi(2) + 3.0 * (point[1] + 0.5).powi(2);
        let options = NelderMeadOptions {
            tolerance_std: 1e-14,
            ..NelderMeadOptions::default()
        };
        let infinity = f64::INFINITY;
        let result = nelder_mead(
            objective,
            &[0.0, 0.0],
            &[-infinity; 2],
            &[infinity; 2],
            options,
        );
        check_close(result.point[0], 1.5, 1e-5);
        check_close(result.point[1], -0.5, 1e-5);
    }

    #[test]
    fn nelder_mead_keeps_points_inside_the_bounds() {
        let objective = |point: &[f64]| (point[0] - 5.0).powi(2);
        let result = nelder_mead(
            objective,
            &[0.5],
            &[0.0],
            &[1.0],
            NelderMeadOptions::default(),
        );
        check_close(result.point[0], 1.0, 1e-9);
    }

    #[test]
    fn golden_section_finds_an_interior_minimum() {
        check_close(golden_section(|x| (x - 0.2).powi(2), 0.1, 0.3), 0.2, 1e-9);
    }

    #[test]
    fn golden_section_stops_at_the_bound_when_the_minimum_lies_outside() {
        check_close(golden_section(|x| (x - 5.0).powi(2), 0.1, 0.3), 0.3, 1e-9);
    }
}
