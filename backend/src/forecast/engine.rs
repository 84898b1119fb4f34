//! Model selection per series: classify demand, backtest the candidates that can win for that class
//! at several rolling origins, pick by RMSSE and bias, refit on the whole history, and put empirical
//! prediction intervals around the forecast. Pure computation: no IO.

use chrono::{DateTime, NaiveDate, Utc};

use super::demand::{DemandClass, classify};
use super::intervals::{Z_80, Z_95};
use super::metrics::{bias, mase, rmsse};
use super::models::{
    Adida, AutoEts, CrostonSba, Imapa, Mstl, SeasonalNaive, SimpleExpSmoothing, Tsb, WindowAverage,
};
use super::{Model, ModelForecast};
use crate::domain::{Backtest, CandidateScore, ForecastPoint, SeriesForecast, SeriesHistory};

/// Days forecast in each backtest window.
pub const BACKTEST_HORIZON: usize = 28;
/// Rolling origins per backtest (the last `ORIGINS × 28` days are held out in turn).
pub const ORIGINS: usize = 3;
/// Most recent days a model is fitted on: older history adds cost, not accuracy, for daily retail.
const MAX_FIT_DAYS: usize = 730;
/// Fewest days of training history before a backtest window.
const MIN_TRAIN_DAYS: usize = 56;
/// Bias counts this much against a model next to its RMSSE: a forecast of zeros can have a fine
/// RMSSE on lumpy demand while missing every sale.
const BIAS_WEIGHT: f64 = 0.25;
/// Candidates averaged into the combination that competes with the single models.
const COMBINE: usize = 3;
/// How much better than the default (first) candidate a challenger must score to be chosen, per
/// level: a SKU's few sales make backtest scores noisy; a tenant total's are measured well.
const SWITCH_MARGIN: f64 = 0.3;
const AGGREGATE_SWITCH_MARGIN: f64 = 0.1;

/// Name of the fallback for series too short to backtest.
pub const SHORT_HISTORY_MODEL: &str = "WindowAverage (short history)";

fn candidates(class: Option<DemandClass>, mean_demand: f64) -> Vec<Box<dyn Model>> {
    // ADIDA first: the default every challenger must clearly beat (see `SWITCH_MARGIN`).
    let mut models: Vec<Box<dyn Model>> =
        vec![Box::new(Adida), Box::new(WindowAverage { window: 28 })];
    match class {
        Some(DemandClass::Smooth | DemandClass::Erratic) => {
            models.push(Box::new(SeasonalNaive { season_length: 7 }));
            models.push(Box::new(SimpleExpSmoothing));
            // ETS earns its cost only where there is enough volume for a weekly shape to show.
            if mean_demand >= 1.0 {
                models.push(Box::new(AutoEts { season_length: 7 }));
            }
        }
        // On intermittent demand a seasonal naive forecast repeats last week's random spikes; the
        // weekly shape comes from reconciliation with the tenant total instead.
        Some(DemandClass::Intermittent | DemandClass::Lumpy) | None => {
            models.push(Box::new(CrostonSba));
            models.push(Box::new(Tsb {
                alpha_d: 0.1,
                alpha_p: 0.1,
            }));
            models.push(Box::new(Imapa));
        }
    }
    models
}

fn class_name(class: DemandClass) -> &'static str {
    match class {
        DemandClass::Smooth => "smooth",
        DemandClass::Erratic => "erratic",
        DemandClass::Intermittent => "intermittent",
        DemandClass::Lumpy => "lumpy",
    }
}

/// Backtest results of one candidate (or of a combination).
struct Scored {
    /// Indices into the candidate list: one model, or the members of a combination.
    members: Vec<usize>,
    rmsse: f64,
    bias: f64,
    mase: Option<f64>,
    /// Forecast means per backtest window, oldest origin last.
    windows: Vec<Vec<f64>>,
    /// `actual - forecast` over every window.
    errors: Vec<f64>,
}

/// The held-out windows of a backtest: `(cut, actual)` per origin with a measurable scale.
fn windows(history: &[f64], origins: usize) -> Vec<usize> {
    (1..=origins)
        .filter_map(|origin| history.len().checked_sub(origin * BACKTEST_HORIZON))
        // A window the scale cannot be measured on (no sales before it) tells nothing: skip it.
        .filter(|cut| rmsse(&[0.0], &[0.0], &history[..*cut], 1).is_some())
        .collect()
}

/// Scores forecasts `means` (one per cut in `cuts`) against `history`.
fn score_windows(
    history: &[f64],
    cuts: &[usize],
    members: Vec<usize>,
    means: Vec<Vec<f64>>,
) -> Option<Scored> {
    if cuts.is_empty() {
        return None;
    }
    let (mut rmsses, mut biases, mut mases, mut errors) = (0.0, 0.0, Vec::new(), Vec::new());
    for (cut, mean) in cuts.iter().zip(&means) {
        let train = &history[..*cut];
        let actual = &history[*cut..*cut + BACKTEST_HORIZON];
        rmsses += rmsse(actual, mean, train, 1)?;
        biases += bias(actual, mean).unwrap_or(0.0);
        if let Some(value) = mase(actual, mean, train, 1) {
            mases.push(value);
        }
        errors.extend(actual.iter().zip(mean).map(|(a, f)| a - f));
    }
    let count = cuts.len() as f64;
    Some(Scored {
        members,
        rmsse: rmsses / count,
        bias: biases / count,
        mase: (!mases.is_empty()).then(|| mases.iter().sum::<f64>() / mases.len() as f64),
        windows: means,
        errors,
    })
}

fn backtest(model: &dyn Model, index: usize, history: &[f64], cuts: &[usize]) -> Option<Scored> {
    let means = cuts
        .iter()
        .map(|cut| {
            let forecast = model.forecast(&history[..*cut], BACKTEST_HORIZON).ok()?;
            Some(forecast.mean.iter().map(|value| value.max(0.0)).collect())
        })
        .collect::<Option<Vec<Vec<f64>>>>()?;
    score_windows(history, cuts, vec![index], means)
}

/// The equal-weight average of the best `COMBINE` candidates, scored on the same windows.
fn combination(history: &[f64], cuts: &[usize], ranked: &[Scored]) -> Option<Scored> {
    let top = ranked.get(..COMBINE)?;
    let means = (0..cuts.len())
        .map(|window| {
            (0..BACKTEST_HORIZON)
                .map(|step| {
                    top.iter()
                        .map(|member| member.windows[window][step])
                        .sum::<f64>()
                        / COMBINE as f64
                })
                .collect()
        })
        .collect();
    let members = top
        .iter()
        .flat_map(|member| member.members.iter().copied())
        .collect();
    score_windows(history, cuts, members, means)
}

/// Empirical quantile of `values` (linear interpolation), `q` in 0..=1.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let position = q * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let weight = position - below as f64;
    sorted[below] * (1.0 - weight) + sorted[above] * weight
}

/// Which candidates a series gets: a SKU's own demand, or an aggregate (a tenant's total) whose
/// weekly and yearly shape is strong enough for seasonal models to pay off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// One SKU at one location.
    Series,
    /// A sum over many series.
    Aggregate,
}

/// The candidates for an aggregate (tenant total) series, default first.
pub fn aggregate_candidates() -> Vec<Box<dyn Model>> {
    vec![
        Box::new(Mstl {
            season_lengths: vec![7, 365],
        }),
        Box::new(AutoEts { season_length: 7 }),
        Box::new(SeasonalNaive { season_length: 7 }),
        Box::new(WindowAverage { window: 28 }),
        Box::new(super::models::LogTransformed {
            name: "Log-MSTL",
            inner: Mstl {
                season_lengths: vec![7, 365],
            },
        }),
        Box::new(super::models::YearOverYear { window: 28 }),
    ]
}

/// A model chosen for one series and its forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    /// Chosen model, or [`SHORT_HISTORY_MODEL`].
    pub model: String,
    /// smooth / erratic / intermittent / lumpy.
    pub demand_class: Option<String>,
    /// Daily points from the day after `last_day`.
    pub points: Vec<ForecastPoint>,
    /// Backtest accuracy of the chosen model.
    pub backtest: Backtest,
    /// Candidates scored, best first.
    pub candidates: Vec<CandidateScore>,
    /// How bands from older backtest windows, scaled by each factor of [`CALIBRATION_FACTORS`],
    /// covered the most recent window: the evidence [`calibrate`] pools over a tenant.
    pub calibration: Calibration,
}

/// Band scale factors tried by calibration: 0.8, 0.9, …, 4.0.
pub const CALIBRATION_FACTORS: [f64; 33] = {
    let mut factors = [0.0; 33];
    let mut index = 0;
    while index < 33 {
        factors[index] = 0.8 + 0.1 * index as f64;
        index += 1;
    }
    factors
};

/// Coverage counts per calibration factor.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Calibration {
    /// Held-out actuals checked.
    pub checked: u64,
    /// Per factor, actuals inside the scaled 80 % band.
    pub inside80: Vec<u64>,
    /// Per factor, actuals inside the scaled 95 % band.
    pub inside95: Vec<u64>,
}

impl Calibration {
    /// Checks the most recent window's errors (`errors[..BACKTEST_HORIZON]`) against bands built
    /// from the older windows' errors.
    fn measure(errors: &[f64], recent: &[f64]) -> Self {
        if errors.len() < 2 * BACKTEST_HORIZON || recent.len() != BACKTEST_HORIZON {
            return Self::default();
        }
        let (held, older) = errors.split_at(BACKTEST_HORIZON);
        let mut older = older.to_vec();
        older.sort_by(f64::total_cmp);
        let bounds = [
            quantile(&older, 0.10),
            quantile(&older, 0.90),
            quantile(&older, 0.025),
            quantile(&older, 0.975),
        ];
        let inside = |low: f64, high: f64| {
            CALIBRATION_FACTORS
                .iter()
                .map(|factor| {
                    // In units, with the lower bound clipped at zero as the forecast's is.
                    held.iter()
                        .zip(recent)
                        .filter(|(error, mean)| {
                            let actual = *mean + **error;
                            actual >= (*mean + factor * low).max(0.0)
                                && actual <= (*mean + factor * high).max(**mean)
                        })
                        .count() as u64
                })
                .collect()
        };
        Self {
            checked: held.len() as u64,
            inside80: inside(bounds[0], bounds[1]),
            inside95: inside(bounds[2], bounds[3]),
        }
    }

    /// Adds another series' counts.
    pub fn add(&mut self, other: &Self) {
        if other.checked == 0 {
            return;
        }
        if self.checked == 0 {
            *self = other.clone();
            return;
        }
        self.checked += other.checked;
        for (total, count) in self.inside80.iter_mut().zip(&other.inside80) {
            *total += count;
        }
        for (total, count) in self.inside95.iter_mut().zip(&other.inside95) {
            *total += count;
        }
    }

    /// The smallest factors whose pooled coverage reaches 80 % and 95 % (1 without evidence).
    pub fn factors(&self) -> (f64, f64) {
        let pick = |inside: &[u64], target: f64| {
            if self.checked == 0 {
                return 1.0;
            }
            CALIBRATION_FACTORS
                .iter()
                .zip(inside)
                .find(|(_, count)| **count as f64 / self.checked as f64 >= target)
                .map_or(
                    CALIBRATION_FACTORS[CALIBRATION_FACTORS.len() - 1],
                    |(factor, _)| *factor,
                )
        };
        (pick(&self.inside80, 0.80), pick(&self.inside95, 0.95))
    }
}

/// Scales the bands of `points` around their means by the pooled calibration `factors`.
pub fn calibrate(points: &mut [ForecastPoint], (factor80, factor95): (f64, f64)) {
    for point in points {
        let [mean, lo80, hi80, lo95, hi95] = point.values();
        *point = ForecastPoint::new(
            point.date,
            mean,
            (mean - factor80 * (mean - lo80)).max(0.0),
            mean + factor80 * (hi80 - mean),
            (mean - factor95 * (mean - lo95)).max(0.0),
            mean + factor95 * (hi95 - mean),
        );
    }
}

/// Forecasts one series `horizon` days past `last_day` (the tenant's last sales day), with the
/// evidence for calibrating its bands.
pub fn forecast_series(
    series: &SeriesHistory,
    last_day: NaiveDate,
    horizon: usize,
    generated_at: DateTime<Utc>,
) -> (SeriesForecast, Calibration) {
    let fit = fit(&series.units, last_day, horizon, Level::Series);
    let forecast = SeriesForecast {
        sku: series.sku.clone(),
        location: series.location.clone(),
        model: fit.model,
        demand_class: fit.demand_class,
        generated_at,
        points: fit.points,
        backtest: fit.backtest,
        candidates: fit.candidates,
    };
    (forecast, fit.calibration)
}

/// Classifies `units` (daily, ending on `last_day`), backtests the candidates for its class and
/// level, refits the best on the whole history and forecasts `horizon` days with intervals.
pub fn fit(units: &[f64], last_day: NaiveDate, horizon: usize, level: Level) -> Fit {
    // Refunds can make a day negative; demand cannot be.
    let all: Vec<f64> = units.iter().map(|value| value.max(0.0)).collect();
    let history = &all[all.len().saturating_sub(MAX_FIT_DAYS)..];
    let class = classify(history);
    let mean_demand = history.iter().sum::<f64>() / history.len().max(1) as f64;
    let dates = last_day.iter_days().skip(1).take(horizon);

    let origins = (history.len().saturating_sub(MIN_TRAIN_DAYS) / BACKTEST_HORIZON).min(ORIGINS);
    let models = match level {
        Level::Series => candidates(class, mean_demand),
        Level::Aggregate => aggregate_candidates(),
    };
    let cuts = windows(history, origins);
    let mut scored: Vec<Scored> = models
        .iter()
        .enumerate()
        .filter_map(|(index, model)| backtest(model.as_ref(), index, history, &cuts))
        .collect();
    let score = |candidate: &Scored| candidate.rmsse + BIAS_WEIGHT * candidate.bias.abs();
    scored.sort_by(|left, right| score(left).total_cmp(&score(right)));
    if let Some(combined) = combination(history, &cuts, &scored) {
        scored.push(combined);
        scored.sort_by(|left, right| score(left).total_cmp(&score(right)));
    }
    // Backtest windows are few and demand is noisy: a challenger replaces the class's default model
    // only when it wins clearly, otherwise selection mostly fits noise.
    if let Some(default) = scored.iter().position(|candidate| candidate.members == [0]) {
        let best = scored.first().map_or(f64::INFINITY, score);
        let margin = match level {
            Level::Series => SWITCH_MARGIN,
            Level::Aggregate => AGGREGATE_SWITCH_MARGIN,
        };
        if best > score(&scored[default]) * (1.0 - margin) {
            let chosen = scored.remove(default);
            scored.insert(0, chosen);
        }
    }
    let name_of = |members: &[usize]| {
        let names: Vec<&str> = members.iter().map(|index| models[*index].name()).collect();
        if names.len() == 1 {
            names[0].to_owned()
        } else {
            format!("Combination({})", names.join(", "))
        }
    };

    let chosen = scored.first().and_then(|best| {
        let fits = best
            .members
            .iter()
            .map(|index| models[*index].forecast(history, horizon).ok())
            .collect::<Option<Vec<ModelForecast>>>()?;
        let mean = (0..horizon)
            .map(|step| {
                fits.iter().map(|fit| fit.mean[step].max(0.0)).sum::<f64>() / fits.len() as f64
            })
            .collect();
        Some((
            name_of(&best.members),
            ModelForecast { mean, fitted: None },
            best,
        ))
    });
    let demand_class = class.map(|class| class_name(class).to_owned());
    let Some((model, forecast, best)) = chosen else {
        let window = history.len().clamp(1, 28);
        let tail = &history[history.len().saturating_sub(window)..];
        let level = tail.iter().sum::<f64>() / window as f64;
        let forecast = ModelForecast::flat(level, horizon, None);
        return Fit {
            model: SHORT_HISTORY_MODEL.to_owned(),
            demand_class,
            points: short_history_points(dates, &forecast.mean, tail),
            backtest: Backtest::default(),
            candidates: Vec::new(),
            calibration: Calibration::default(),
        };
    };

    // Intervals from the chosen model's own backtest errors: empirical quantiles, so lumpy demand
    // gets the skewed bands it needs, widened for lead times beyond the backtest window.
    let mut errors = best.errors.clone();
    errors.sort_by(f64::total_cmp);
    let bounds = [
        quantile(&errors, 0.10),
        quantile(&errors, 0.90),
        quantile(&errors, 0.025),
        quantile(&errors, 0.975),
    ];
    let coverage = |low: f64, high: f64| {
        let inside = errors
            .iter()
            .filter(|error| **error >= low && **error <= high)
            .count();
        inside as f64 / errors.len().max(1) as f64
    };
    let points = dates
        .zip(&forecast.mean)
        .enumerate()
        .map(|(step, (date, mean))| {
            let mean = mean.max(0.0);
            let widen = ((step + 1) as f64 / BACKTEST_HORIZON as f64)
                .sqrt()
                .max(1.0);
            ForecastPoint::new(
                date,
                mean,
                (mean + bounds[0] * widen).max(0.0),
                (mean + bounds[1] * widen).max(mean),
                (mean + bounds[2] * widen).max(0.0),
                (mean + bounds[3] * widen).max(mean),
            )
        })
        .collect();
    Fit {
        model,
        demand_class,
        points,
        backtest: Backtest {
            rmsse: Some(best.rmsse),
            bias: Some(best.bias),
            coverage80: Some(coverage(bounds[0], bounds[1])),
            coverage95: Some(coverage(bounds[2], bounds[3])),
            mase: best.mase,
        },
        calibration: Calibration::measure(
            &best.errors,
            best.windows.first().map_or(&[][..], Vec::as_slice),
        ),
        candidates: scored
            .iter()
            .map(|candidate| CandidateScore {
                model: name_of(&candidate.members),
                rmsse: candidate.rmsse,
                bias: candidate.bias,
            })
            .collect(),
    }
}

/// Points for a short history: a flat level with Poisson-like bands (variance = mean), the
/// honest minimum for counts when there is nothing to backtest.
fn short_history_points(
    dates: impl Iterator<Item = NaiveDate>,
    mean: &[f64],
    tail: &[f64],
) -> Vec<ForecastPoint> {
    let level = mean.first().copied().unwrap_or(0.0).max(0.0);
    let spread = tail
        .iter()
        .map(|value| (value - level).powi(2))
        .sum::<f64>()
        / tail.len().max(1) as f64;
    let sigma = spread.max(level).sqrt();
    dates
        .map(|date| {
            ForecastPoint::new(
                date,
                level,
                (level - Z_80 * sigma).max(0.0),
                level + Z_80 * sigma,
                (level - Z_95 * sigma).max(0.0),
                level + Z_95 * sigma,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Location, Sku};

    fn series(units: Vec<f64>) -> SeriesHistory {
        SeriesHistory {
            sku: Sku::parse("A").unwrap(),
            location: Location::default(),
            start: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
            units,
        }
    }

    fn run(units: Vec<f64>, horizon: usize) -> SeriesForecast {
        let history = series(units);
        let last = history.start + chrono::Days::new(history.units.len() as u64 - 1);
        forecast_series(&history, last, horizon, Utc::now()).0
    }

    #[test]
    fn short_history_gets_a_labelled_simple_forecast() {
        let forecast = run(vec![1.0, 0.0, 2.0], 5);
        assert_eq!(forecast.model, SHORT_HISTORY_MODEL);
        assert_eq!(forecast.points.len(), 5);
        assert_eq!(
            forecast.points[0].date,
            NaiveDate::from_ymd_opt(2024, 1, 4).unwrap()
        );
        assert!((forecast.points[0].mean - 1.0).abs() < 1e-9);
        assert_eq!(forecast.backtest, Backtest::default());
    }

    #[test]
    fn weekly_pattern_is_backtested_and_bands_contain_the_mean() {
        let pattern = [10.0, 12.0, 9.0, 11.0, 10.0, 16.0, 2.0];
        let units: Vec<f64> = (0..364).map(|day| pattern[day % 7]).collect();
        let forecast = run(units, 28);
        assert!(!forecast.candidates.is_empty());
        assert!(
            forecast.backtest.rmsse.unwrap() < 0.2,
            "{:?}",
            forecast.backtest
        );
        for point in &forecast.points {
            assert!(point.lo95 <= point.lo80 && point.lo80 <= point.mean);
            assert!(point.mean <= point.hi80 && point.hi80 <= point.hi95);
            assert!(point.lo95 >= 0.0);
        }
        // The weekly shape survives: the pattern's peak day is forecast well above its trough day.
        let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let on = |index: usize| {
            let point = forecast
                .points
                .iter()
                .find(|point| (point.date - start).num_days() as usize % 7 == index)
                .unwrap();
            point.mean
        };
        assert!(
            on(5) > 12.0 && on(6) < 5.0,
            "peak {} trough {}",
            on(5),
            on(6)
        );
    }

    #[test]
    fn intermittent_demand_gets_an_intermittent_model_and_non_negative_bands() {
        let units: Vec<f64> = (0..300)
            .map(|day| if day % 9 == 0 { 3.0 } else { 0.0 })
            .collect();
        let forecast = run(units, 14);
        assert_eq!(forecast.demand_class.as_deref(), Some("intermittent"));
        assert!(
            forecast
                .points
                .iter()
                .all(|point| point.lo95 >= 0.0 && point.mean >= 0.0)
        );
        assert!(forecast.points[0].mean > 0.1 && forecast.points[0].mean < 1.0);
    }
}
