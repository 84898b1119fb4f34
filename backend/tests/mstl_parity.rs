//! Parity of [`Mstl`] with statsforecast 2.1.1's `MSTL` (h = 28) on the Online Retail tenant
//! total (sum of the 2,000-SKU panel, last 28 days held out) and the 10 M5 series (trained on
//! d_1..d_1913). Fixtures in `tests/data/mstl/` come from `tests/data/mstl/make_fixtures.py`.
//!
//! Tolerances:
//! - Decomposition (statsforecast's `mstl` for the tenant total with [7] and [7, 365] and
//!   FOODS_2_034_TX_1 with [7, 365]; plain statsmodels `STL(period=7)` for the tenant total):
//!   trend, every seasonal component and the remainder within 1e-9 relative
//!   (`|ours - sf| <= 1e-9 * max(1, |sf|)`; observed: about 1e-11, the fixture keeps 12 digits).
//! - Forecasts: the trend forecaster's optimiser differs from statsforecast's, so per series our
//!   RMSSE against the held-out actuals must be within 5 % of statsforecast's, and our mean RMSSE
//!   over a configuration's series must not exceed statsforecast's by more than 0.01. Where
//!   both select the same ETS form, every point must also agree within 1e-6 relative
//!   (observed: 1e-13; our AutoETS follows statsforecast's optimiser closely). Our form is only
//!   looked up (a second ETS fit) when the points disagree; the table then shows it.
//! - In-sample fitted values (tenant total, [7]): within 1e-6 relative, like the points.
//! - Tenant total with [7, 365]: its 711-day history holds fewer than two yearly cycles, so
//!   [`Mstl`] drops the 365 period (R's rule) while statsforecast 2.1.1 keeps it; the test checks
//!   that our forecast equals the [7] forecast and prints both RMSSEs.
//!
//! Run with `cargo test -p ordernimbus-backend --test mstl_parity -- --nocapture` for the tables;
//! `cargo test --release -p ordernimbus-backend --test mstl_parity -- --ignored --nocapture`
//! times the model.

use ordernimbus_backend::forecast::Model;
use ordernimbus_backend::forecast::metrics::rmsse;
use ordernimbus_backend::forecast::models::ets::{Component, EtsSpec, select};
use ordernimbus_backend::forecast::models::mstl::{Stl, decompose, usable_periods};
use ordernimbus_backend::forecast::models::{AutoEts, Mstl};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

const HORIZON: usize = 28;
const TENANT: &str = "tenant_total";
/// Relative tolerance of the decomposition components.
const COMPONENT_TOLERANCE: f64 = 1e-9;
/// Relative tolerance of each forecast point when both pick the same ETS form.
const POINT_TOLERANCE: f64 = 1e-6;

fn read(path: &str) -> String {
    let path = format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {path}: {error}"))
}

fn parse_number(text: &str) -> f64 {
    let text = text.trim();
    if text == "nan" {
        return f64::NAN;
    }
    text.parse()
        .unwrap_or_else(|error| panic!("bad number {text:?}: {error}"))
}

/// Data rows of a CSV file, split on commas.
fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split(',').collect())
}

/// Rows of `id, <skip> columns, values...` keyed by id, ids in file order.
fn parse_wide(text: &str, skip: usize) -> (Vec<String>, HashMap<String, Vec<f64>>) {
    let mut ids = Vec::new();
    let mut series = HashMap::new();
    for fields in rows(text) {
        ids.push(fields[0].to_string());
        let values = fields[1 + skip..].iter().map(|v| parse_number(v)).collect();
        series.insert(fields[0].to_string(), values);
    }
    (ids, series)
}

fn periods(label: &str) -> Vec<usize> {
    label
        .split(';')
        .map(|period| period.parse().expect("period"))
        .collect()
}

fn spec_name(spec: EtsSpec) -> String {
    let letter = |component| match component {
        Component::None => "N",
        Component::Additive => "A",
        Component::Multiplicative => "M",
    };
    let trend = match (spec.trend, spec.damped) {
        (Component::None, _) => "N",
        (_, true) => "Ad",
        (trend, false) => letter(trend),
    };
    format!(
        "ETS({},{trend},{})",
        letter(spec.error),
        letter(spec.season)
    )
}

struct Fixture {
    /// Series ids, tenant total first.
    ids: Vec<String>,
    train: HashMap<String, Vec<f64>>,
    test: HashMap<String, Vec<f64>>,
    /// statsforecast forecasts keyed by (series id, season-lengths label).
    reference: BTreeMap<(String, String), Vec<f64>>,
    /// statsforecast's selected trend model keyed like `reference`.
    reference_models: HashMap<(String, String), String>,
}

fn load() -> Fixture {
    let (mut ids, mut train) =
        parse_wide(&read("m5/m5_real_10_series_sales_train_validation.csv"), 5);
    let (_, mut test) = parse_wide(&read("m5/m5_real_10_series_test_d1914_d1941.csv"), 0);
    let total: Vec<f64> = rows(&read("mstl/tenant_total_daily_units.csv"))
        .map(|fields| parse_number(fields[1]))
        .collect();
    assert_eq!(
        total.len(),
        739,
        "tenant total covers 2009-12-01..2011-12-09"
    );
    let (history, held_out) = total.split_at(total.len() - HORIZON);
    ids.insert(0, TENANT.to_string());
    train.insert(TENANT.to_string(), history.to_vec());
    test.insert(TENANT.to_string(), held_out.to_vec());
    let mut reference: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
    for fields in rows(&read("mstl/mstl_statsforecast_2.1.1_h28.csv")) {
        reference
            .entry((fields[0].to_string(), fields[1].to_string()))
            .or_default()
            .push(parse_number(fields[3]));
    }
    let reference_models = rows(&read("mstl/mstl_statsforecast_2.1.1_trend_models.csv"))
        .map(|fields| {
            (
                (fields[0].to_string(), fields[1].to_string()),
                fields[2..5].join(","),
            )
        })
        .collect();
    Fixture {
        ids,
        train,
        test,
        reference,
        reference_models,
    }
}

#[test]
fn decomposition_matches_statsforecast() {
    let fixture = load();
    // (series, label) -> columns trend, seasonal7, seasonal365, remainder.
    let mut reference: BTreeMap<(String, String), [Vec<f64>; 4]> = BTreeMap::new();
    for fields in rows(&read("mstl/mstl_decomposition_statsforecast_2.1.1.csv")) {
        let columns = reference
            .entry((fields[0].to_string(), fields[1].to_string()))
            .or_default();
        for (column, text) in columns.iter_mut().zip(&fields[3..7]) {
            if !text.is_empty() {
                column.push(parse_number(text));
            }
        }
    }
    assert_eq!(reference.len(), 4, "four decompositions in the fixture");
    let mut failures = Vec::new();
    let mut report = format!(
        "\n{:<30} {:<8} {:>12}\n",
        "series", "periods", "max rel diff"
    );
    for ((id, label), [trend, seasonal7, seasonal365, remainder]) in &reference {
        let history = &fixture.train[id];
        let ours: Vec<(&str, Vec<f64>, &Vec<f64>)> = if label == "stl7" {
            let components = Stl::new(7, 7).fit(history).expect("STL fits");
            let resid = history
                .iter()
                .zip(&components.seasonal)
                .zip(&components.trend)
                .map(|((value, season), trend)| value - season - trend)
                .collect();
            vec![
                ("trend", components.trend, trend),
                ("seasonal7", components.seasonal, seasonal7),
                ("remainder", resid, remainder),
            ]
        } else {
            let decomposition = decompose(history, &periods(label)).expect("MSTL decomposes");
            let mut seasonals = decomposition.seasonals.into_iter();
            let mut columns = vec![
                ("trend", decomposition.trend, trend),
                ("seasonal7", seasonals.next().expect("weekly"), seasonal7),
            ];
            if let Some(yearly) = seasonals.next() {
                columns.push(("seasonal365", yearly, seasonal365));
            }
            columns.push(("remainder", decomposition.remainder, remainder));
            columns
        };
        let mut worst: f64 = 0.0;
        for (name, ours, theirs) in ours {
            assert_eq!(ours.len(), theirs.len(), "{id} {label} {name} length");
            for (t, (a, b)) in ours.iter().zip(theirs).enumerate() {
                let relative = (a - b).abs() / b.abs().max(1.0);
                worst = worst.max(relative);
                if relative > COMPONENT_TOLERANCE {
                    failures.push(format!("{id} {label} {name}[{t}]: ours {a} vs sf {b}"));
                }
            }
        }
        report.push_str(&format!("{id:<30} {label:<8} {worst:>12.2e}\n"));
    }
    println!("{report}");
    assert!(
        failures.is_empty(),
        "{} mismatches (first 20):\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

#[test]
fn forecasts_match_statsforecast() {
    let fixture = load();
    assert_eq!(fixture.reference.len(), 22, "11 series x 2 configurations");
    let mut failures = Vec::new();
    // label -> (our RMSSE total, statsforecast's, count)
    let mut means: BTreeMap<String, (f64, f64, f64)> = BTreeMap::new();
    let mut report = format!(
        "\n{:<32} {:<6} {:<12} {:<12} {:>8} {:>8} {:>10}\n",
        "series", "season", "sf ETS", "our ETS", "sf", "ours", "max rel"
    );
    for id in &fixture.ids {
        for label in ["7", "7;365"] {
            let key = (id.clone(), label.to_string());
            let reference = &fixture.reference[&key];
            assert_eq!(reference.len(), HORIZON);
            let (train, actual) = (&fixture.train[id], &fixture.test[id]);
            let season_lengths = periods(label);
            let ours = Mstl {
                season_lengths: season_lengths.clone(),
            }
            .forecast(train, HORIZON)
            .expect("MSTL fits the fixture");
            assert_eq!(ours.mean.len(), HORIZON);
            let fitted = ours.fitted.as_ref().expect("MSTL gives fitted values");
            assert_eq!(fitted.len(), train.len());
            if (id.as_str(), label) == (TENANT, "7") {
                let reference_fitted: Vec<f64> = rows(&read(
                    "mstl/mstl_statsforecast_2.1.1_fitted_tenant_total.csv",
                ))
                .map(|fields| parse_number(fields[1]))
                .collect();
                assert_eq!(reference_fitted.len(), train.len());
                for (t, (a, b)) in fitted.iter().zip(&reference_fitted).enumerate() {
                    if (a - b).abs() > POINT_TOLERANCE * b.abs().max(1.0) {
                        failures.push(format!("{id} [7] fitted[{t}]: ours {a} vs sf {b}"));
                    }
                }
            }
            let kept = usable_periods(&season_lengths, train.len());
            let sf_model = &fixture.reference_models[&key];
            let our_rmsse = rmsse(actual, &ours.mean, train, 1).expect("rmsse");
            let sf_rmsse = rmsse(actual, reference, train, 1).expect("rmsse");
            let max_relative = ours
                .mean
                .iter()
                .zip(reference)
                .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
                .fold(0.0, f64::max);
            let our_model = if max_relative <= POINT_TOLERANCE {
                "(same)".to_string()
            } else {
                let deseasonalised = decompose(train, &kept)
                    .expect("decomposes")
                    .deseasonalised();
                spec_name(select(&deseasonalised, 1).expect("ETS fits").spec)
            };
            report.push_str(&format!(
                "{id:<32} {label:<6} {sf_model:<12} {our_model:<12} {sf_rmsse:>8.4} {our_rmsse:>8.4} {max_relative:>10.2e}\n"
            ));
            if kept != season_lengths {
                // Only the tenant total with [7, 365]: statsforecast keeps the yearly period.
                assert_eq!((id.as_str(), label), (TENANT, "7;365"));
                let weekly = Mstl {
                    season_lengths: vec![7],
                }
                .forecast(train, HORIZON)
                .expect("fits");
                assert_eq!(ours, weekly, "dropping 365 leaves the weekly MSTL");
                report.push_str(&format!(
                    "  (365 dropped: {} days < 2 cycles; statsforecast keeps it, RMSSE {sf_rmsse:.4} vs ours {our_rmsse:.4})\n",
                    train.len()
                ));
                continue;
            }
            let entry = means.entry(label.to_string()).or_default();
            *entry = (entry.0 + our_rmsse, entry.1 + sf_rmsse, entry.2 + 1.0);
            if (our_rmsse - sf_rmsse).abs() > 0.05 * sf_rmsse {
                failures.push(format!(
                    "{id} [{label}]: RMSSE ours {our_rmsse:.4} vs sf {sf_rmsse:.4} (> 5 %)"
                ));
            }
            if our_model == *sf_model {
                failures.push(format!(
                    "{id} [{label}] {our_model}: forecasts differ by {max_relative:.2e} relative"
                ));
            }
        }
    }
    for (label, (ours, reference, count)) in &means {
        let (ours, reference) = (ours / count, reference / count);
        report.push_str(&format!(
            "mean RMSSE [{label}] over {count} series: ours {ours:.4}, sf {reference:.4}\n"
        ));
        if ours > reference + 0.01 {
            failures.push(format!(
                "[{label}]: mean RMSSE {ours:.4} > statsforecast {reference:.4} + 0.01"
            ));
        }
    }
    println!("{report}");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Wall time in µs per series of `run` over `series`: the best of `rounds` passes (the least
/// disturbed by other work on the machine).
fn time_per_series(series: &[Vec<f64>], rounds: usize, mut run: impl FnMut(&[f64])) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for history in series {
                run(history);
            }
            start.elapsed().as_secs_f64() * 1e6 / series.len() as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// Times MSTL([7]) on 700-day windows of the 11 fixture series, with its two stages (decomposition
/// and the trend forecaster); meaningful in release mode only.
#[test]
#[ignore = "timing; run in release with --ignored"]
fn mstl_speed() {
    let fixture = load();
    let series: Vec<Vec<f64>> = fixture
        .ids
        .iter()
        .map(|id| {
            let train = &fixture.train[id];
            train[train.len() - 700..].to_vec()
        })
        .collect();
    let deseasonalised: Vec<Vec<f64>> = series
        .iter()
        .map(|history| {
            decompose(history, &[7])
                .expect("decomposes")
                .deseasonalised()
        })
        .collect();
    let model = Mstl {
        season_lengths: vec![7],
    };
    let rounds = 20;
    let total = time_per_series(&series, rounds, |history| {
        std::hint::black_box(model.forecast(history, HORIZON).expect("fits"));
    });
    let decomposition = time_per_series(&series, rounds, |history| {
        std::hint::black_box(decompose(history, &[7]).expect("decomposes"));
    });
    let trend = AutoEts { season_length: 1 };
    let ets = time_per_series(&deseasonalised, rounds, |history| {
        std::hint::black_box(trend.forecast(history, HORIZON).expect("fits"));
    });
    let seasonal_ets = AutoEts { season_length: 7 };
    let ets7 = time_per_series(&series, rounds, |history| {
        std::hint::black_box(seasonal_ets.forecast(history, HORIZON).expect("fits"));
    });
    println!(
        "MSTL([7]) on 700 days: {total:.0} µs per series (decomposition {decomposition:.0} µs, \
         AutoETS(1) trend forecaster {ets:.0} µs); AutoETS(7) on the same series {ets7:.0} µs"
    );
}
