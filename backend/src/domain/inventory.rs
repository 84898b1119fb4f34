//! Stock on hand and replenishment settings per SKU × location, and the reorder hint derived from
//! them and a forecast.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{InvalidValue, Location, Sku};

/// Lead time assumed when a stock row names none.
pub const DEFAULT_LEAD_TIME_DAYS: u32 = 7;
/// Cycle service level assumed when a stock row names none.
pub const DEFAULT_SERVICE_LEVEL: f64 = 0.95;
/// Days between orders: stock is ordered up to cover the lead time plus this review period.
pub const REVIEW_PERIOD_DAYS: u32 = 7;

/// Stock of one SKU at one location, with how it is replenished.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StockLevel {
    /// SKU.
    pub sku: Sku,
    /// Location ("" when the tenant has one).
    pub location: Location,
    /// Units on hand.
    pub on_hand: f64,
    /// Days from placing an order to having the stock.
    pub lead_time_days: u32,
    /// Wanted probability of not running out before a replenishment arrives (0.5–0.999).
    pub service_level: f64,
    /// When this row was last set.
    pub updated_at: DateTime<Utc>,
}

impl StockLevel {
    /// Validates a stock row.
    ///
    /// # Errors
    /// Names the field that is out of range.
    pub fn new(
        sku: Sku,
        location: Location,
        on_hand: f64,
        lead_time_days: Option<u32>,
        service_level: Option<f64>,
        updated_at: DateTime<Utc>,
    ) -> Result<Self, (&'static str, InvalidValue)> {
        if !on_hand.is_finite() || on_hand < 0.0 {
            return Err((
                "on_hand",
                InvalidValue::new(format!(
                    "on_hand must be a number of units, 0 or more, not {on_hand}"
                )),
            ));
        }
        let lead_time_days = lead_time_days.unwrap_or(DEFAULT_LEAD_TIME_DAYS);
        if !(1..=180).contains(&lead_time_days) {
            return Err((
                "lead_time_days",
                InvalidValue::new(format!(
                    "lead_time_days must be from 1 to 180, not {lead_time_days}"
                )),
            ));
        }
        let service_level = service_level.unwrap_or(DEFAULT_SERVICE_LEVEL);
        if !(0.5..=0.999).contains(&service_level) {
            return Err((
                "service_level",
                InvalidValue::new(format!(
                    "service_level must be from 0.5 to 0.999, not {service_level}"
                )),
            ));
        }
        Ok(Self {
            sku,
            location,
            on_hand,
            lead_time_days,
            service_level,
            updated_at,
        })
    }
}

/// What to do about one SKU × location's stock, from its forecast.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReorderHint {
    /// Units on hand.
    pub on_hand: f64,
    /// Lead time used.
    pub lead_time_days: u32,
    /// Service level used.
    pub service_level: f64,
    /// Days the stock lasts at the forecast mean; `None` when it outlasts the forecast horizon.
    pub days_of_cover: Option<f64>,
    /// First day the forecast mean demand exceeds the stock; `None` beyond the horizon.
    pub expected_stockout_date: Option<NaiveDate>,
    /// Stock below which to order: lead-time demand plus safety stock.
    pub reorder_point: f64,
    /// Safety stock for the service level over the lead time.
    pub safety_stock: f64,
    /// Units to order now to cover lead time plus review period at the service level (0 when the
    /// stock is above the reorder point).
    pub suggested_order_quantity: f64,
    /// Stock runs out within the lead time, or is already below the reorder point.
    pub at_risk: bool,
}
