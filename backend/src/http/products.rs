//! `GET /api/v1/products` (one page of the SKU × location table, searched and sorted by the store)
//! and `GET /api/v1/products/export` (the same rows as CSV, every page).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde::Deserialize;

use super::{ApiError, ApiQuery, AppState, Authenticated};
use crate::domain::{ProductPage, ProductQuery, ProductRow, ProductSort};
use crate::product::{self, MAX_PAGE_ROWS};

/// Rows per page when the request names no limit.
const DEFAULT_LIMIT: u32 = 50;

/// Query parameters of both routes.
#[derive(Debug, Deserialize)]
pub(super) struct ProductParams {
    search: Option<String>,
    sort: Option<String>,
    order: Option<String>,
    offset: Option<u64>,
    limit: Option<u32>,
}

impl ProductParams {
    fn parse(&self) -> Result<ProductQuery, ApiError> {
        let sort = self
            .sort
            .as_deref()
            .filter(|sort| !sort.is_empty())
            .map(|sort| {
                ProductSort::parse(sort).map_err(|error| ApiError::invalid_field("sort", error))
            })
            .transpose()?
            .unwrap_or_default();
        let descending = match self.order.as_deref() {
            None | Some("" | "asc") => false,
            Some("desc") => true,
            Some(other) => {
                return Err(ApiError::invalid_field(
                    "order",
                    format!("\"{other}\" is not asc or desc"),
                ));
            }
        };
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_PAGE_ROWS).contains(&limit) {
            return Err(ApiError::invalid_field(
                "limit",
                format!("limit must be 1 to {MAX_PAGE_ROWS}"),
            ));
        }
        Ok(ProductQuery {
            search: self.search.clone().filter(|text| !text.trim().is_empty()),
            sort,
            descending,
            offset: self.offset.unwrap_or(0),
            limit,
        })
    }
}

/// `GET /api/v1/products?search=&sort=sku|location|sales|forecast|trend|cover&order=asc|desc&offset=&limit=`.
pub(super) async fn list_products(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    ApiQuery(params): ApiQuery<ProductParams>,
) -> Result<Json<ProductPage>, ApiError> {
    let query = params.parse()?;
    Ok(Json(
        product::page(state.store.as_ref(), &tenant.id, &query).await?,
    ))
}

/// `GET /api/v1/products/export?search=&sort=&order=`: every matching row as CSV.
pub(super) async fn export_products(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    ApiQuery(params): ApiQuery<ProductParams>,
) -> Result<impl IntoResponse, ApiError> {
    let mut query = params.parse()?;
    query.limit = MAX_PAGE_ROWS;
    query.offset = 0;
    let mut csv = String::from(
        "sku,location,product,sales_last_28_days,forecast_next_28_days,trend,on_hand,days_of_cover,lead_time_days,suggested_order,at_risk\n",
    );
    loop {
        let page = product::page(state.store.as_ref(), &tenant.id, &query).await?;
        for row in &page.rows {
            csv.push_str(&csv_line(row));
        }
        query.offset += page.rows.len() as u64;
        if page.rows.is_empty() || query.offset >= page.total {
            break;
        }
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"products.csv\"",
            ),
        ],
        csv,
    ))
}

/// A CSV field, quoted when it holds a separator, quote or line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(String::new, |value| format!("{value:.decimals$}"))
}

fn csv_line(row: &ProductRow) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{}\n",
        field(&row.sku),
        field(&row.location),
        field(row.product.as_deref().unwrap_or_default()),
        number(Some(row.sales_28), 0),
        number(Some(row.forecast_28), 1),
        number(row.trend, 3),
        number(row.on_hand, 0),
        number(row.days_of_cover, 1),
        row.lead_time_days
            .map(|days| days.to_string())
            .unwrap_or_default(),
        number(row.suggested_order, 0),
        row.at_risk
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_separators_are_quoted() {
        assert_eq!(field("A-1"), "A-1");
        assert_eq!(field("Mug, blue"), "\"Mug, blue\"");
        assert_eq!(field("12\" frame"), "\"12\"\" frame\"");
    }
}
