//! Parity with statsforecast 2.1.1 on 10 real M5 series (h = 28, trained on d_1..d_1913).
//!
//! Tolerances, per model:
//! - Naive, SeasonalNaive, HistoricAverage, WindowAverage, CrostonClassic, CrostonSBA, TSB,
//!   ADIDA, IMAPA: every forecast within 1e-6 relative (`|ours - sf| <= 1e-6 * max(1, |sf|)`).
//! - CrostonOptimized: within 1e-3 relative (golden-section search on alpha).
//! - AutoETS: point parity is not expected across optimisers, so per series our RMSSE must be
//!   within 5 % of statsforecast's RMSSE, and our mean RMSSE over the 10 series must not exceed
//!   statsforecast's by more than 0.01.
//!
//! Run with `cargo test --test parity -- --nocapture` to see the comparison table.

use ordernimbus_backend::forecast::Model;
use ordernimbus_backend::forecast::metrics::rmsse;
use ordernimbus_backend::forecast::models::{
    Adida, AutoEts, CrostonClassic, CrostonOptimized, CrostonSba, HistoricAverage, Imapa, Naive,
    SeasonalNaive, Tsb, WindowAverage,
};
use std::collections::HashMap;

const HORIZON: usize = 28;

/// Mean RMSSE over the 10 series as reported in `shared/data/README.md` (3 decimals).
const README_MEAN_RMSSE: [(&str, f64); 11] = [
    ("AutoETS", 0.859),
    ("WindowAverage", 0.864),
    ("ADIDA", 0.866),
    ("TSB", 0.868),
    ("IMAPA", 0.868),
    ("CrostonOptimized", 0.872),
    ("CrostonSBA", 0.875),
    ("CrostonClassic", 0.876),
    ("HistoricAverage", 0.960),
    ("Naive", 1.095),
    ("SeasonalNaive", 1.109),
];

/// How a model's forecasts must agree with statsforecast's.
#[derive(Clone, Copy)]
enum Tolerance {
    /// Every point within this relative difference.
    Relative(f64),
    /// RMSSE per series within 5 %, mean RMSSE at most statsforecast's + 0.01.
    Accuracy,
}

struct Fixture {
    ids: Vec<String>,
    train: HashMap<String, Vec<f64>>,
    test: HashMap<String, Vec<f64>>,
    /// statsforecast forecasts keyed by (model, series id).
    reference: HashMap<(String, String), Vec<f64>>,
}

fn read(name: &str) -> String {
    let path = format!("{}/tests/data/m5/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {path}: {error}"))
}

fn parse_number(text: &str) -> f64 {
    text.trim()
        .parse()
        .unwrap_or_else(|error| panic!("bad number {text:?}: {error}"))
}

/// Rows of `id, <skip> columns, values...` keyed by id, in file order.
fn parse_wide(text: &str, skip: usize) -> (Vec<String>, HashMap<String, Vec<f64>>) {
    let mut ids = Vec::new();
    let mut rows = HashMap::new();
    for line in text.lines().skip(1).filter(|line| !line.trim().is_empty()) {
        let mut fields = line.split(',');
        let id = fields.next().expect("row has an id").to_string();
        let values = fields.skip(skip).map(parse_number).collect();
        ids.push(id.clone());
        rows.insert(id, values);
    }
    (ids, rows)
}

fn load() -> Fixture {
    let (ids, train) = parse_wide(&read("m5_real_10_series_sales_train_validation.csv"), 5);
    let (_, test) = parse_wide(&read("m5_real_10_series_test_d1914_d1941.csv"), 0);
    let text = read("m5_real_10_series_statsforecast_2.1.1_h28.csv");
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_string)
        .collect();
    let mut reference: HashMap<(String, String), Vec<f64>> = HashMap::new();
    for line in lines.filter(|line| !line.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        for (column, value) in header.iter().zip(&fields).skip(2) {
            reference
                .entry((column.clone(), fields[0].to_string()))
                .or_default()
                .push(parse_number(value));
        }
    }
    Fixture {
        ids,
        train,
        test,
        reference,
    }
}

fn models() -> Vec<(Box<dyn Model>, Tolerance)> {
    let exact = Tolerance::Relative(1e-6);
    vec![
        (Box::new(SeasonalNaive { season_length: 7 }), exact),
        (Box::new(Naive), exact),
        (Box::new(AutoEts { season_length: 7 }), Tolerance::Accuracy),
        (Box::new(CrostonClassic), exact),
        (Box::new(CrostonOptimized), Tolerance::Relative(1e-3)),
        (Box::new(CrostonSba), exact),
        (Box::new(Adida), exact),
        (Box::new(Imapa), exact),
        (
            Box::new(Tsb {
                alpha_d: 0.1,
                alpha_p: 0.1,
            }),
            exact,
        ),
        (Box::new(WindowAverage { window: 28 }), exact),
        (Box::new(HistoricAverage), exact),
    ]
}

#[test]
fn forecasts_match_statsforecast_on_m5_series() {
    let fixture = load();
    assert_eq!(fixture.ids.len(), 10, "fixture has 10 series");
    let mut failures = Vec::new();
    println!(
        "\n{:<18} {:>10} {:>10} {:>8} {:>13}",
        "model", "ours", "sf", "README", "max|diff|"
    );
    for (model, tolerance) in models() {
        let name = model.name();
        let mut ours_total = 0.0;
        let mut reference_total = 0.0;
        let mut max_difference: f64 = 0.0;
        for id in &fixture.ids {
            let train = &fixture.train[id];
            let actual = &fixture.test[id];
            let reference = &fixture.reference[&(name.to_string(), id.clone())];
            assert_eq!(reference.len(), HORIZON);
            let ours = model
                .forecast(train, HORIZON)
                .expect("model fits the fixture")
                .mean;
            let ours_rmsse = rmsse(actual, &ours, train, 1).expect("rmsse defined");
            let reference_rmsse = rmsse(actual, reference, train, 1).expect("rmsse defined");
            ours_total += ours_rmsse;
            reference_total += reference_rmsse;
            for (step, (a, b)) in ours.iter().zip(reference).enumerate() {
                let difference = (a - b).abs();
                max_difference = max_difference.max(difference);
                if let Tolerance::Relative(limit) = tolerance
                    && difference > limit * b.abs().max(1.0)
                {
                    failures.push(format!("{name} {id} step {step}: ours {a} vs sf {b}"));
                }
            }
            if let Tolerance::Accuracy = tolerance
                && (ours_rmsse - reference_rmsse).abs() > 0.05 * reference_rmsse
            {
                failures.push(format!(
                    "{name} {id}: RMSSE ours {ours_rmsse:.4} vs sf {reference_rmsse:.4} (> 5 %)"
                ));
            }
        }
        let count = fixture.ids.len() as f64;
        let (ours_mean, reference_mean) = (ours_total / count, reference_total / count);
        let readme = README_MEAN_RMSSE
            .iter()
            .find(|(model, _)| *model == name)
            .map(|(_, value)| *value)
            .expect("README lists every model");
        println!(
            "{name:<18} {ours_mean:>10.4} {reference_mean:>10.4} {readme:>8.3} {max_difference:>13.3e}"
        );
        if (reference_mean - readme).abs() > 0.0005 + 1e-9 {
            failures.push(format!(
                "{name}: our RMSSE of statsforecast's forecasts {reference_mean:.4} != README {readme}"
            ));
        }
        if let Tolerance::Accuracy = tolerance
            && ours_mean > reference_mean + 0.01
        {
            failures.push(format!(
                "{name}: mean RMSSE {ours_mean:.4} > statsforecast {reference_mean:.4} + 0.01"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
