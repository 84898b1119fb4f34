//! The products table: one row per SKU × location with recent sales, the coming forecast, the
//! trend, days of cover and a suggested order; searched, sorted and paged by the store.

use serde::Serialize;

use super::InvalidValue;

/// Days of sales and of forecast the products table sums.
pub const PRODUCT_WINDOW_DAYS: usize = 28;

/// Figures of one series kept beside its forecast, so the products table never reads histories or
/// forecast points to sort and page.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesStats {
    /// SKU.
    pub sku: super::Sku,
    /// Location.
    pub location: super::Location,
    /// Units sold over the last `PRODUCT_WINDOW_DAYS` days of the tenant's history.
    pub sales_28: f64,
    /// Units sold over the `PRODUCT_WINDOW_DAYS` days before those.
    pub prev_28: f64,
    /// Forecast units over the next `PRODUCT_WINDOW_DAYS` days.
    pub forecast_28: f64,
}

/// Column the products table is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductSort {
    /// SKU, then location.
    #[default]
    Sku,
    /// Location, then SKU.
    Location,
    /// Units sold in the last 28 days.
    Sales,
    /// Forecast units in the next 28 days.
    Forecast,
    /// Change of the last 28 days against the 28 before.
    Trend,
    /// Days the stock on hand lasts.
    Cover,
}

impl ProductSort {
    /// Parses the API's name of a column.
    ///
    /// # Errors
    /// Lists the names accepted.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        Ok(match text {
            "sku" => Self::Sku,
            "location" => Self::Location,
            "sales" => Self::Sales,
            "forecast" => Self::Forecast,
            "trend" => Self::Trend,
            "cover" => Self::Cover,
            _ => {
                return Err(InvalidValue::new(format!(
                    "\"{text}\" is not one of sku, location, sales, forecast, trend, cover"
                )));
            }
        })
    }
}

/// What page of the products table to read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProductQuery {
    /// Case-insensitive text the SKU or product name contains.
    pub search: Option<String>,
    /// Sort column.
    pub sort: ProductSort,
    /// Largest first.
    pub descending: bool,
    /// Rows skipped.
    pub offset: u64,
    /// Rows returned (1–1000).
    pub limit: u32,
}

/// One row as the store reads it; the reorder hint is joined in by the use case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductRow {
    /// SKU.
    pub sku: String,
    /// Location ("" when the tenant has one).
    pub location: String,
    /// Product name, when the sales named one.
    pub product: Option<String>,
    /// Units sold in the last 28 days.
    pub sales_28: f64,
    /// Forecast units in the next 28 days.
    pub forecast_28: f64,
    /// Change of the last 28 days against the 28 before (0.1 = +10 %); `None` without earlier sales.
    pub trend: Option<f64>,
    /// Units on hand, when stock is known.
    pub on_hand: Option<f64>,
    /// Days the stock lasts at the next 28 days' average forecast rate.
    pub days_of_cover: Option<f64>,
    /// Lead time of the stock row.
    pub lead_time_days: Option<u32>,
    /// Units to order now (order-up-to policy), when stock is known.
    pub suggested_order: Option<f64>,
    /// Runs out within the lead time or is at or below its reorder point.
    pub at_risk: bool,
}

/// One page of the products table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductPage {
    /// Rows matching the search, over all pages.
    pub total: u64,
    /// Rows skipped.
    pub offset: u64,
    /// Rows asked for.
    pub limit: u32,
    /// This page.
    pub rows: Vec<ProductRow>,
}

/// Units and revenue of the whole tenant on one day.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct DayTotal {
    /// The local day.
    pub date: chrono::NaiveDate,
    /// Net units.
    pub units: f64,
    /// Net revenue.
    pub revenue: f64,
}

/// The tenant-wide picture the overview shows, kept when forecasts are refreshed so reading it
/// never touches every series.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TenantOverview {
    /// When the forecasts were made.
    pub generated_at: chrono::DateTime<chrono::Utc>,
    /// Series forecast.
    pub series: usize,
    /// The model fitted on the tenant's total.
    pub model: String,
    /// Its backtest accuracy.
    pub backtest: super::Backtest,
    /// The total's daily forecast from the day after the last sales day.
    pub points: Vec<super::ForecastPoint>,
    /// Actual daily totals over the `OVERVIEW_HISTORY_DAYS` days before the forecast.
    pub history: Vec<DayTotal>,
}

/// Days of actual sales the overview keeps (13 weeks).
pub const OVERVIEW_HISTORY_DAYS: u64 = 91;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_names_parse_and_bad_ones_list_the_choices() {
        assert_eq!(ProductSort::parse("cover").unwrap(), ProductSort::Cover);
        assert_eq!(
            ProductSort::parse("price").unwrap_err().to_string(),
            "\"price\" is not one of sku, location, sales, forecast, trend, cover"
        );
    }
}
