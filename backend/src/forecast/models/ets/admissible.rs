//! Admissibility of ETS smoothing parameters (Hyndman et al. 2008, ch. 10), as in
//! statsforecast's `admissible`: the model's characteristic roots must lie in the unit circle.

/// Whether `(alpha, beta, gamma, phi)` gives a forecastable ETS model with season length `m`;
/// pass `None` for components the model does not have (no trend, no season, not damped).
pub fn admissible(
    alpha: f64,
    beta: Option<f64>,
    gamma: Option<f64>,
    phi: Option<f64>,
    m: usize,
) -> bool {
    let phi = phi.unwrap_or(1.0);
    if !(0.0..=1.0 + 1e-8).contains(&phi) {
        return false;
    }
    match gamma {
        None => {
            if alpha < 1.0 - 1.0 / phi || alpha > 1.0 + 1.0 / phi {
                return false;
            }
            if let Some(beta) = beta
                && (beta < alpha * (phi - 1.0) || beta > (1.0 + phi) * (2.0 - alpha))
            {
                return false;
            }
            true
        }
        Some(gamma) if m > 1 => {
            let beta = beta.unwrap_or(0.0);
            let season = m as f64;
            if gamma < (1.0 - 1.0 / phi - alpha).max(0.0) || gamma > 1.0 + 1.0 / phi - alpha {
                return false;
            }
            if alpha
                < 1.0
                    - 1.0 / phi
                    - gamma * (1.0 - season + phi + phi * season) / (2.0 * phi * season)
            {
                return false;
            }
            if beta < -(1.0 - phi) * (gamma / season + alpha) {
                return false;
            }
            // Characteristic polynomial, coefficients in increasing degree (monic, degree m + 1).
            let mut coefficients = Vec::with_capacity(m + 2);
            coefficients.push(phi * (1.0 - alpha - gamma));
            coefficients.push(alpha + beta - alpha * phi + gamma - 1.0);
            coefficients.extend(std::iter::repeat_n(alpha + beta - alpha * phi, m - 2));
            coefficients.push(alpha + beta - phi);
            coefficients.push(1.0);
            max_root_modulus(&coefficients) <= 1.0 + 1e-10
        }
        Some(_) => true,
    }
}

/// Largest root modulus of a monic polynomial given in increasing degree (Durand–Kerner).
fn max_root_modulus(coefficients: &[f64]) -> f64 {
    let degree = coefficients.len() - 1;
    let evaluate = |root: (f64, f64)| {
        let mut value = (0.0, 0.0);
        for coefficient in coefficients.iter().rev() {
            value = (
                value.0 * root.0 - value.1 * root.1 + coefficient,
                value.0 * root.1 + value.1 * root.0,
            );
        }
        value
    };
    let seed = (0.4, 0.9);
    let mut roots = Vec::with_capacity(degree);
    let mut power = (1.0, 0.0);
    for _ in 0..degree {
        roots.push(power);
        power = (
            power.0 * seed.0 - power.1 * seed.1,
            power.0 * seed.1 + power.1 * seed.0,
        );
    }
    for _ in 0..1_000 {
        let mut largest_step: f64 = 0.0;
        for index in 0..degree {
            let root = roots[index];
            let numerator = evaluate(root);
            let mut denominator = (1.0, 0.0);
            for (other_index, other) in roots.iter().enumerate() {
                if other_index != index {
                    let difference = (root.0 - other.0, root.1 - other.1);
                    denominator = (
                        denominator.0 * difference.0 - denominator.1 * difference.1,
                        denominator.0 * difference.1 + denominator.1 * difference.0,
                    );
                }
            }
            let norm = denominator.0 * denominator.0 + denominator.1 * denominator.1;
            if norm == 0.0 {
                continue;
            }
            let step = (
                (numerator.0 * denominator.0 + numerator.1 * denominator.1) / norm,
                (numerator.1 * denominator.0 - numerator.0 * denominator.1) / norm,
            );
            roots[index] = (root.0 - step.0, root.1 - step.1);
            largest_step = largest_step.max(step.0.hypot(step.1));
        }
        if largest_step < 1e-14 {
            break;
        }
    }
    roots
        .iter()
        .map(|root| root.0.hypot(root.1))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(
        alpha: f64,
        beta: Option<f64>,
        gamma: Option<f64>,
        phi: Option<f64>,
        m: usize,
        expected: bool,
    ) {
        assert_eq!(admissible(alpha, beta, gamma, phi, m), expected);
    }

    #[test]
    fn usual_simple_smoothing_parameters_are_admissible() {
        check(0.3, None, None, None, 1, true);
        check(0.3, Some(0.1), None, Some(0.9), 1, true);
    }

    #[test]
    fn alpha_above_two_is_not_admissible_without_damping() {
        check(2.5, None, None, None, 1, false);
    }

    #[test]
    fn seasonal_starting_values_are_admissible() {
        check(0.0287, Some(0.0030), Some(0.0486), Some(0.9782), 7, true);
    }

    #[test]
    fn seasonal_parameters_with_an_explosive_root_are_not_admissible() {
        // passes the easy bounds; largest characteristic root has modulus about 1.044
        check(0.2, Some(0.9), Some(0.3), Some(0.9), 7, false);
    }

    #[test]
    fn seasonal_smoothing_above_its_bound_is_not_admissible() {
        check(0.5, None, Some(1.6), None, 7, false);
    }

    #[test]
    fn root_modulus_of_a_known_polynomial() {
        // (z - 2)(z + 0.5) = z^2 - 1.5 z - 1
        assert!((max_root_modulus(&[-1.0, -1.5, 1.0]) - 2.0).abs() < 1e-10);
    }
}
