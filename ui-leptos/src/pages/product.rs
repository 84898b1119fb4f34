//! Product detail: daily history and forecast with bands, the chosen model and why (the
//! candidates' backtest scores), and this SKU's stock, lead time and service level.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;

use super::{ErrorBanner, Loading, PageHeader};
use crate::api::{self, Forecast, ReorderHint, SalesDay, StockReport};
use crate::chart::DemandChart;
use crate::format;

/// Days of actual sales the chart shows before the forecast.
const HISTORY_DAYS: i64 = 182;

/// `/app/product?sku=&location=`.
#[component]
pub fn ProductDetail() -> impl IntoView {
    let query = use_query_map();
    let key = Memo::new(move |_| {
        let query = query.get();
        (
            query.get("sku").unwrap_or_default(),
            query.get("location").unwrap_or_default(),
        )
    });
    let forecast = api::resource::<Forecast, _>(
        move || key.get(),
        |(sku, location)| {
            format!(
                "/api/v1/forecasts?sku={}&location={}&horizon=28",
                api::encode(&sku),
                api::encode(&location)
            )
        },
    );
    let sales = api::resource::<Vec<SalesDay>, _>(
        move || key.get(),
        |(sku, location)| {
            format!(
                "/api/v1/sales?sku={}&location={}",
                api::encode(&sku),
                api::encode(&location)
            )
        },
    );
    view! {
        <p class="Breadcrumb">
            <A href="/app/products">"← Products"</A>
        </p>
        {move || {
            let (sku, location) = key.get();
            view! { <PageHeader title="Product" subtitle=format!("{sku} at {location}")/> }
        }}
        <Transition fallback=|| view! { <Loading/> }>
            {move || Suspend::new(async move {
                match (forecast.await, sales.await) {
                    (Ok(forecast_data), Ok(sales)) => {
                        view! { <Detail forecast=forecast_data sales on_saved=move || forecast.refetch()/> }
                            .into_any()
                    }
                    (Err(failure), _) | (_, Err(failure)) => {
                        view! { <ErrorBanner failure/> }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// The last `HISTORY_DAYS` days before the forecast, days without sales as zeros.
fn daily_history(sales: &[SalesDay], forecast: &Forecast) -> Vec<(String, f64)> {
    let Some(start) = forecast
        .points
        .first()
        .and_then(|point| format::day_number(&point.date))
    else {
        return Vec::new();
    };
    let mut units = vec![0.0; HISTORY_DAYS as usize];
    for day in sales {
        if let Some(number) = format::day_number(&day.date) {
            let offset = number - (start - HISTORY_DAYS);
            if (0..HISTORY_DAYS).contains(&offset) {
                units[offset as usize] += day.units;
            }
        }
    }
    units
        .into_iter()
        .enumerate()
        .map(|(offset, value)| (format::date_of(start - HISTORY_DAYS + offset as i64), value))
        .collect()
}

#[component]
fn Detail(
    forecast: Forecast,
    sales: Vec<SalesDay>,
    on_saved: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let history = daily_history(&sales, &forecast);
    let title = format!("Daily units of {} at {}", forecast.sku, forecast.location);
    view! {
        <section class="Card">
            <h2 class="Heading">"Daily units: last 26 weeks and the next 28 days"</h2>
            <DemandChart id="product-chart" title history forecast=forecast.points.clone()/>
        </section>
        <div class="Columns">
            <Model forecast=forecast.clone()/>
            <Stock forecast on_saved/>
        </div>
    }
}

#[component]
fn Model(forecast: Forecast) -> impl IntoView {
    let (error, lean) = super::overview::accuracy_words(&forecast.backtest);
    let class = forecast
        .demand_class
        .clone()
        .map(|class| format!("Demand here is {class}. "))
        .unwrap_or_default();
    let chosen = forecast.model.clone();
    view! {
        <section class="Card" data-testid="model">
            <h2 class="Heading">"How this forecast is made"</h2>
            <p>
                {class}
                "We tested each candidate model on past weeks and chose "
                <strong>{forecast.model.clone()}</strong>
                ", which scored best (lower is better; a challenger must beat the default by 30 %)."
            </p>
            <p>{error}" "{lean}</p>
            {(!forecast.candidates.is_empty())
                .then(|| {
                    view! {
                        <div class="TableScroll">
                            <table class="DataTable">
                                <caption class="VisuallyHidden">"Backtest scores of the candidate models"</caption>
                                <thead>
                                    <tr>
                                        <th scope="col">"Model"</th>
                                        <th scope="col" class="Numeric">"RMSSE"</th>
                                        <th scope="col" class="Numeric">"Bias"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {forecast
                                        .candidates
                                        .iter()
                                        .map(|candidate| {
                                            let is_chosen = candidate.model == chosen;
                                            view! {
                                                <tr class=if is_chosen { "Row--chosen" } else { "" }>
                                                    <td>
                                                        {candidate.model.clone()}
                                                        {is_chosen
                                                            .then(|| view! { <span class="Badge Badge--success">"chosen"</span> })}
                                                    </td>
                                                    <td class="Numeric">{format!("{:.3}", candidate.rmsse)}</td>
                                                    <td class="Numeric">{format::signed_percent(candidate.bias)}</td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }
                })}
        </section>
    }
}

#[component]
fn Stock(forecast: Forecast, on_saved: impl Fn() + Clone + Send + Sync + 'static) -> impl IntoView {
    let api = api::Api::current();
    let hint: Option<ReorderHint> = forecast.reorder.clone();
    let on_hand: NodeRef<leptos::html::Input> = NodeRef::new();
    let lead_time: NodeRef<leptos::html::Input> = NodeRef::new();
    let service_level: NodeRef<leptos::html::Input> = NodeRef::new();
    let message = RwSignal::new(None::<(bool, String)>);
    let sku = forecast.sku.clone();
    let location = forecast.location.clone();
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let value = |node: NodeRef<leptos::html::Input>| {
            node.get().map(|input| input.value()).unwrap_or_default()
        };
        let csv = format!(
            "sku,location,on_hand,lead_time_days,service_level\n{},{},{},{},{}\n",
            csv_field(&sku),
            csv_field(&location),
            value(on_hand),
            value(lead_time),
            value(service_level)
        );
        let api = api.clone();
        let on_saved = on_saved.clone();
        leptos::task::spawn_local(async move {
            match api
                .send::<StockReport>("POST", "/api/v1/inventory", "text/csv", csv)
                .await
            {
                Ok(report) if report.rows_imported == 1 => {
                    message.set(Some((
                        true,
                        "Saved. The reorder suggestion is updated.".to_owned(),
                    )));
                    on_saved();
                }
                Ok(report) => message.set(Some((
                    false,
                    report
                        .errors
                        .first()
                        .map_or_else(|| "Not saved.".to_owned(), |error| error.message.clone()),
                ))),
                Err(failure) => message.set(Some((false, failure.message))),
            }
        });
    };
    let summary = match &hint {
        Some(hint) => format!(
            "{} on hand: {}. Reorder point {}, safety stock {}.{}",
            format::whole(hint.on_hand),
            hint.days_of_cover.map_or_else(
                || "lasts beyond the forecast".to_owned(),
                |days| format!("about {} days of cover", format::short(days))
            ),
            format::whole(hint.reorder_point),
            format::whole(hint.safety_stock),
            if hint.suggested_order_quantity > 0.0 {
                format!(
                    " Order {} now.",
                    format::whole(hint.suggested_order_quantity)
                )
            } else {
                " No order needed yet.".to_owned()
            }
        ),
        None => {
            "Stock is not known for this SKU here: enter it to get reorder suggestions.".to_owned()
        }
    };
    let (on_hand_value, lead_value, level_value) = hint.as_ref().map_or_else(
        || (String::new(), "7".to_owned(), "0.95".to_owned()),
        |hint| {
            (
                format!("{}", hint.on_hand),
                hint.lead_time_days.to_string(),
                format!("{}", hint.service_level),
            )
        },
    );
    view! {
        <section class="Card">
            <h2 class="Heading">"Stock and lead time"</h2>
            <p data-testid="stock-summary">{summary}</p>
            <form class="FormLayout" on:submit=on_submit>
                <label class="Field">
                    "On hand"
                    <input class="TextField" type="number" min="0" step="1" required node_ref=on_hand value=on_hand_value/>
                </label>
                <label class="Field">
                    "Lead time (days)"
                    <input class="TextField" type="number" min="1" max="180" step="1" required node_ref=lead_time value=lead_value/>
                </label>
                <label class="Field">
                    "Service level"
                    <input class="TextField" type="number" min="0.5" max="0.999" step="0.001" required node_ref=service_level value=level_value/>
                </label>
                <button class="Button Button--primary" type="submit">"Save"</button>
            </form>
            {move || {
                message
                    .get()
                    .map(|(ok, text)| {
                        let class = if ok { "Banner Banner--success" } else { "Banner Banner--critical" };
                        view! { <div class=class role="status">{text}</div> }
                    })
            }}
        </section>
    }
}

/// A CSV field, quoted when needed.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
