//! Products: every SKU × location with sales last 28 days, forecast next 28 days, trend, days of
//! cover and suggested order; sorted, searched and paged by the server (`GET /api/v1/products`),
//! so 100,000 SKUs load like 10; exported as CSV.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};

use super::{EmptyState, ErrorBanner, Loading, PageHeader};
use crate::api::{self, ProductPage};
use crate::format;

/// Rows per page.
const PAGE_SIZE: u64 = 25;

/// The table's state, as held in the URL.
#[derive(Debug, Clone, PartialEq)]
struct TableState {
    search: String,
    sort: String,
    descending: bool,
    page: u64,
}

impl TableState {
    fn query(&self, page: u64) -> String {
        let mut query = format!(
            "?sort={}&order={}&page={page}",
            self.sort,
            if self.descending { "desc" } else { "asc" }
        );
        if !self.search.is_empty() {
            query.push_str(&format!("&q={}", api::encode(&self.search)));
        }
        query
    }

    fn api_path(&self, base: &str) -> String {
        let mut path = format!(
            "{base}?sort={}&order={}&offset={}&limit={PAGE_SIZE}",
            self.sort,
            if self.descending { "desc" } else { "asc" },
            self.page.saturating_sub(1) * PAGE_SIZE
        );
        if !self.search.is_empty() {
            path.push_str(&format!("&search={}", api::encode(&self.search)));
        }
        path
    }

    /// The link a column header points to: that column, flipping the order when already sorted.
    fn sorted_by(&self, column: &str) -> String {
        let descending = if self.sort == column {
            !self.descending
        } else {
            column != "sku" && column != "location" && column != "cover"
        };
        TableState {
            sort: column.to_owned(),
            descending,
            page: 1,
            ..self.clone()
        }
        .query(1)
    }
}

/// `/app/products?q=&sort=&order=&page=`.
#[component]
pub fn Products() -> impl IntoView {
    let query = use_query_map();
    let state = Memo::new(move |_| {
        let query = query.get();
        TableState {
            search: query.get("q").unwrap_or_default(),
            sort: query
                .get("sort")
                .filter(|sort| {
                    ["sku", "location", "sales", "forecast", "trend", "cover"]
                        .contains(&sort.as_str())
                })
                .unwrap_or_else(|| "sales".to_owned()),
            descending: query.get("order").is_none_or(|order| order != "asc"),
            page: query
                .get("page")
                .and_then(|page| page.parse().ok())
                .unwrap_or(1)
                .max(1),
        }
    });
    let products = api::resource::<ProductPage, _>(
        move || state.get(),
        |state| state.api_path("/api/v1/products"),
    );
    view! {
        <PageHeader
            title="Products"
            subtitle="Every SKU at every location: recent sales, the coming 28 days, and what to reorder."
        />
        <div class="Card Toolbar">
            <SearchForm state/>
            <ExportButton state/>
        </div>
        <Transition fallback=|| view! { <Loading/> }>
            {move || Suspend::new(async move {
                let current = state.get_untracked();
                match products.await {
                    Ok(page) if page.total == 0 && current.search.is_empty() => {
                        view! {
                            <EmptyState title="No products yet">
                                <p>
                                    "Products appear once sales arrive: "
                                    <A href="/app/data">"upload a sales CSV"</A>
                                    " or connect Shopify."
                                </p>
                            </EmptyState>
                        }
                            .into_any()
                    }
                    Ok(page) => view! { <ProductTable page state=current/> }.into_any(),
                    Err(failure) => view! { <ErrorBanner failure/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn SearchForm(state: Memo<TableState>) -> impl IntoView {
    let input: NodeRef<leptos::html::Input> = NodeRef::new();
    let navigate = use_navigate();
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let search = input.get().map(|input| input.value()).unwrap_or_default();
        let next = TableState {
            search: search.trim().to_owned(),
            page: 1,
            ..state.get_untracked()
        };
        navigate(
            &format!("/app/products{}", next.query(1)),
            Default::default(),
        );
    };
    let current = state.get_untracked();
    view! {
        <form class="Search" role="search" method="get" action="/app/products" on:submit=on_submit>
            <label class="VisuallyHidden" for="product-search">"Search SKUs and products"</label>
            <input
                class="TextField"
                id="product-search"
                type="search"
                name="q"
                placeholder="Search SKU or product"
                value=current.search
                node_ref=input
            />
            <input type="hidden" name="sort" value=current.sort/>
            <input
                type="hidden"
                name="order"
                value=if current.descending { "desc" } else { "asc" }
            />
            <button class="Button" type="submit">"Search"</button>
        </form>
    }
}

#[component]
fn ExportButton(state: Memo<TableState>) -> impl IntoView {
    let api = api::Api::current();
    let failed = RwSignal::new(None::<String>);
    let href = move || state.get().api_path("/api/v1/products/export");
    let on_click = move |event: leptos::ev::MouseEvent| {
        event.prevent_default();
        let api = api.clone();
        let path = state.get_untracked().api_path("/api/v1/products/export");
        leptos::task::spawn_local(async move {
            match api.call("GET", &path, None).await {
                Ok((200, text)) => {
                    #[cfg(feature = "hydrate")]
                    {
                        if let Err(error) =
                            crate::browser::download("products.csv", "text/csv", &text)
                        {
                            failed.set(Some(error));
                        }
                    }
                    #[cfg(not(feature = "hydrate"))]
                    let _ = text;
                }
                Ok((status, _)) => failed.set(Some(format!("the export failed ({status})"))),
                Err(failure) => failed.set(Some(failure.message)),
            }
        });
    };
    view! {
        <a class="Button" href=href download="products.csv" on:click=on_click>
            "Export CSV"
        </a>
        {move || failed.get().map(|message| view! { <span class="Error">{message}</span> })}
    }
}

#[component]
fn ProductTable(page: ProductPage, state: TableState) -> impl IntoView {
    let first = page.offset + 1;
    let last = page.offset + page.rows.len() as u64;
    let pages = page.total.div_ceil(PAGE_SIZE).max(1);
    let header = |column: &'static str, label: &'static str, numeric: bool| {
        let sorted = state.sort == column;
        let aria = if sorted {
            if state.descending {
                "descending"
            } else {
                "ascending"
            }
        } else {
            "none"
        };
        let arrow = if sorted {
            if state.descending { " ↓" } else { " ↑" }
        } else {
            ""
        };
        view! {
            <th scope="col" class=if numeric { "Numeric" } else { "" } aria-sort=aria>
                <A href=state.sorted_by(column)>{label}{arrow}</A>
            </th>
        }
    };
    let previous = (state.page > 1).then(|| state.query(state.page - 1));
    let next = (state.page < pages).then(|| state.query(state.page + 1));
    let rows = page.rows.clone();
    // A search that matches nothing still shows the table's header: say so where rows would be.
    let no_match = rows.is_empty().then(|| {
        let text = if state.search.is_empty() {
            "No SKU on this page.".to_owned()
        } else {
            format!("No SKU or product matches “{}”.", state.search)
        };
        view! {
            <tr>
                <td colspan="7" class="EmptyRow" data-testid="no-match">{text}</td>
            </tr>
        }
    });
    view! {
        <section class="Card">
            <div class="TableScroll">
                <table class="DataTable" data-testid="products">
                    <thead>
                        <tr>
                            {header("sku", "SKU", false)}
                            {header("location", "Location", false)}
                            {header("sales", "Sold, 28 d", true)}
                            {header("forecast", "Forecast, 28 d", true)}
                            {header("trend", "Trend", true)}
                            {header("cover", "Days of cover", true)}
                            <th scope="col" class="Numeric">"Reorder"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {rows
                            .into_iter()
                            .map(|row| {
                                let href = format!(
                                    "/app/product?sku={}&location={}",
                                    api::encode(&row.sku),
                                    api::encode(&row.location),
                                );
                                let trend = row.trend.map(|trend| {
                                    let class = if trend > 0.05 {
                                        "Trend Trend--up"
                                    } else if trend < -0.05 {
                                        "Trend Trend--down"
                                    } else {
                                        "Trend"
                                    };
                                    view! { <span class=class>{format::signed_percent(trend)}</span> }
                                });
                                view! {
                                    <tr class=if row.at_risk { "Row--risk" } else { "" }>
                                        <td>
                                            <A href=href>{row.sku.clone()}</A>
                                            <div class="Subdued Small">
                                                {row.product.clone().unwrap_or_default()}
                                            </div>
                                        </td>
                                        <td>{row.location.clone()}</td>
                                        <td class="Numeric">{format::whole(row.sales_28)}</td>
                                        <td class="Numeric">{format::whole(row.forecast_28)}</td>
                                        <td class="Numeric">{trend}</td>
                                        <td class="Numeric">
                                            {row.days_of_cover.map(format::short)}
                                        </td>
                                        <td class="Numeric">
                                            {row.suggested_order.map(format::whole)}
                                            {row
                                                .at_risk
                                                .then(|| {
                                                    view! {
                                                        <span class="Badge Badge--critical">"At risk"</span>
                                                    }
                                                })}
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                        {no_match}
                    </tbody>
                </table>
            </div>
            <nav class="Pagination" aria-label="Pages">
                {match previous {
                    Some(href) => view! { <A href=href attr:rel="prev" attr:class="Button">"Previous"</A> }.into_any(),
                    None => view! { <span class="Button Button--disabled" aria-disabled="true">"Previous"</span> }.into_any(),
                }}
                <span class="Pagination-status" data-testid="page-status">
                    {if page.total == 0 {
                        "No SKU matches your search.".to_owned()
                    } else {
                        format!(
                            "{}–{} of {} · page {} of {}",
                            format::whole(first as f64),
                            format::whole(last as f64),
                            format::whole(page.total as f64),
                            state.page,
                            pages,
                        )
                    }}
                </span>
                {match next {
                    Some(href) => view! { <A href=href attr:rel="next" attr:class="Button">"Next"</A> }.into_any(),
                    None => view! { <span class="Button Button--disabled" aria-disabled="true">"Next"</span> }.into_any(),
                }}
            </nav>
        </section>
    }
}
