//! Reorder hints: days of cover, expected stock-out date, reorder point and order quantity from a
//! forecast's daily means and bands and a stock level. An order-up-to policy with periodic review:
//! order when stock is at or below the reorder point, up to the demand of lead time plus review
//! period plus safety stock.

use crate::domain::{ForecastPoint, REVIEW_PERIOD_DAYS, ReorderHint, StockLevel};
use crate::forecast::intervals::Z_80;

/// Standard-normal quantile function (Acklam's rational approximation, relative error < 1.2e-9).
pub fn normal_quantile(probability: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = probability.clamp(1e-12, 1.0 - 1e-12);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Mean and standard deviation of demand over the first `days` points (daily errors independent;
/// each day's spread from its 80 % band).
fn demand_over(points: &[ForecastPoint], days: usize) -> (f64, f64) {
    let window = &points[..days.min(points.len())];
    let mean = window.iter().map(ForecastPoint::expected).sum();
    let variance: f64 = window
        .iter()
        .map(|point| ((f64::from(point.hi80) - f64::from(point.lo80)) / (2.0 * Z_80)).powi(2))
        .sum();
    (mean, variance.sqrt())
}

/// The hint for `stock` given the forecast `points` starting the day after the last sales day.
pub fn reorder_hint(points: &[ForecastPoint], stock: &StockLevel) -> ReorderHint {
    let mut cumulative = 0.0;
    let mut days_of_cover = None;
    let mut expected_stockout_date = None;
    for (index, point) in points.iter().enumerate() {
        let before = cumulative;
        let mean = point.expected();
        cumulative += mean;
        if cumulative > stock.on_hand {
            let fraction = if mean > 0.0 {
                (stock.on_hand - before) / mean
            } else {
                0.0
            };
            days_of_cover = Some(index as f64 + fraction);
            expected_stockout_date = Some(point.date);
            break;
        }
    }
    let z = normal_quantile(stock.service_level);
    let lead = stock.lead_time_days as usize;
    let (lead_mean, lead_sigma) = demand_over(points, lead);
    let (cycle_mean, cycle_sigma) = demand_over(points, lead + REVIEW_PERIOD_DAYS as usize);
    let safety_stock = (z * lead_sigma).max(0.0);
    let reorder_point = lead_mean + safety_stock;
    let order_up_to = cycle_mean + (z * cycle_sigma).max(0.0);
    let suggested_order_quantity = if stock.on_hand <= reorder_point {
        (order_up_to - stock.on_hand).max(0.0).ceil()
    } else {
        0.0
    };
    let at_risk = stock.on_hand <= reorder_point
        || days_of_cover.is_some_and(|days| days < f64::from(stock.lead_time_days));
    ReorderHint {
        on_hand: stock.on_hand,
        lead_time_days: stock.lead_time_days,
        service_level: stock.service_level,
        days_of_cover,
        expected_stockout_date,
        reorder_point,
        safety_stock,
        suggested_order_quantity,
        at_risk,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Location, Sku};
    use chrono::{NaiveDate, Utc};

    fn points(mean: f64, half_width: f64, days: usize) -> Vec<ForecastPoint> {
        let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        (0..days)
            .map(|day| {
                ForecastPoint::new(
                    start + chrono::Days::new(day as u64),
                    mean,
                    mean - half_width,
                    mean + half_width,
                    0.0,
                    mean + 2.0 * half_width,
                )
            })
            .collect()
    }

    fn stock(on_hand: f64, lead: u32, service: f64) -> StockLevel {
        StockLevel::new(
            Sku::parse("A").unwrap(),
            Location::default(),
            on_hand,
            Some(lead),
            Some(service),
            Utc::now(),
        )
        .unwrap()
    }

    #[test]
    fn normal_quantile_matches_tables() {
        for (p, z) in [
            (0.5, 0.0),
            (0.8, 0.841_621_2),
            (0.9, 1.281_551_6),
            (0.95, 1.644_853_6),
            (0.975, 1.959_964),
            (0.999, 3.090_232_3),
            (0.01, -2.326_347_9),
        ] {
            assert!(
                (normal_quantile(p) - z).abs() < 1e-6,
                "{p}: {}",
                normal_quantile(p)
            );
        }
    }

    #[test]
    fn ample_stock_lasts_and_needs_no_order() {
        let hint = reorder_hint(&points(10.0, 0.0, 28), &stock(500.0, 7, 0.95));
        assert_eq!(hint.days_of_cover, None);
        assert_eq!(hint.expected_stockout_date, None);
        assert_eq!(hint.suggested_order_quantity, 0.0);
        assert!(!hint.at_risk);
        assert!((hint.reorder_point - 70.0).abs() < 1e-9);
    }

    #[test]
    fn low_stock_is_at_risk_with_a_dated_stockout_and_an_order_up_to_level() {
        // 10 a day, sigma 10 per day (80 % half-width 12.8155): 25 units last 2.5 days.
        let hint = reorder_hint(&points(10.0, 12.815_515_655_446, 28), &stock(25.0, 7, 0.95));
        assert!((hint.days_of_cover.unwrap() - 2.5).abs() < 1e-9);
        assert_eq!(
            hint.expected_stockout_date,
            NaiveDate::from_ymd_opt(2024, 1, 3)
        );
        assert!(hint.at_risk);
        // Safety stock z(0.95) * 10 * sqrt(7); order up to 14 days of demand + z * 10 * sqrt(14).
        let z = 1.644_853_626_951;
        assert!((hint.safety_stock - z * 10.0 * 7f64.sqrt()).abs() < 1e-6);
        let order_up_to = 140.0 + z * 10.0 * 14f64.sqrt();
        assert_eq!(hint.suggested_order_quantity, (order_up_to - 25.0).ceil());
    }

    #[test]
    fn a_higher_service_level_orders_more() {
        let forecast = points(4.0, 5.0, 28);
        let low = reorder_hint(&forecast, &stock(10.0, 14, 0.8));
        let high = reorder_hint(&forecast, &stock(10.0, 14, 0.99));
        assert!(high.suggested_order_quantity > low.suggested_order_quantity);
        assert!(high.safety_stock > low.safety_stock);
    }

    #[test]
    fn stock_rows_outside_their_ranges_name_the_field() {
        let new = |on_hand: f64, lead: u32, service: f64| {
            StockLevel::new(
                Sku::parse("A").unwrap(),
                Location::default(),
                on_hand,
                Some(lead),
                Some(service),
                Utc::now(),
            )
            .map_err(|(field, _)| field)
        };
        assert_eq!(new(-1.0, 7, 0.9).unwrap_err(), "on_hand");
        assert_eq!(new(1.0, 0, 0.9).unwrap_err(), "lead_time_days");
        assert_eq!(new(1.0, 7, 1.0).unwrap_err(), "service_level");
        assert!(new(0.0, 7, 0.9).is_ok());
    }
}
