//! Overview: units and revenue over the last 13 weeks, the next weeks' forecast with its bands,
//! forecast accuracy in words, the SKUs at risk of stocking out, and how fresh the data is.

use leptos::prelude::*;
use leptos_router::components::A;

use super::{EmptyState, ErrorBanner, Loading, PageHeader};
use crate::api::{
    self, Backtest, Delivery, ImportReport, Overview as OverviewData, ProductRow, TenantForecast,
};
use crate::chart::DemandChart;
use crate::format;

/// `/app`.
#[component]
pub fn Overview() -> impl IntoView {
    let overview = api::resource::<OverviewData, _>(|| (), |()| "/api/v1/overview".to_owned());
    let uploads =
        api::resource::<Vec<ImportReport>, _>(|| (), |()| "/api/v1/uploads?limit=1".to_owned());
    let page = use_context::<crate::PageContext>().unwrap_or_default();
    // Only ask what this viewer has: a 404 would be a console error in the browser.
    let deliveries = page.is_shop().then(|| {
        api::resource::<Vec<Delivery>, _>(|| (), |()| "/api/v1/webhooks?limit=1".to_owned())
    });
    let sync = page
        .sync_available
        .then(|| api::resource::<serde_json::Value, _>(|| (), |()| "/api/v1/sync".to_owned()));
    view! {
        <PageHeader
            title="Overview"
            subtitle="Sales over the last 13 weeks and what to expect next."
        />
        <Suspense fallback=|| view! { <Loading/> }>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(data) => view! { <OverviewBody data/> }.into_any(),
                    Err(failure) => view! { <ErrorBanner failure/> }.into_any(),
                }
            })}
        </Suspense>
        <Suspense fallback=|| view! { <Loading/> }>
            {move || Suspend::new(async move {
                let upload = uploads.await.ok().and_then(|uploads| uploads.into_iter().next());
                let delivery = match deliveries {
                    Some(deliveries) => Some(deliveries.await),
                    None => None,
                };
                let sync = match sync {
                    Some(sync) => sync.await.ok(),
                    None => None,
                };
                view! { <Freshness upload delivery sync/> }
            })}
        </Suspense>
    }
}

#[component]
fn OverviewBody(data: OverviewData) -> impl IntoView {
    let Some(forecast) = data.forecast else {
        return view! {
            <EmptyState title="No forecast yet">
                <p>
                    "Forecasts appear a few seconds after your first sales arrive. "
                    <A href="/app/data">"Upload a sales CSV"</A>
                    " or connect your Shopify store."
                </p>
            </EmptyState>
        }
        .into_any();
    };
    view! {
        <Totals forecast=forecast.clone()/>
        <section class="Card">
            <h2 class="Heading">"Daily units: last 13 weeks and forecast"</h2>
            <DemandChart
                id="overview-chart"
                title="Units sold per day, and forecast".to_owned()
                history=forecast.history.iter().map(|day| (day.date.clone(), day.units)).collect()
                forecast=forecast.points.clone()
            />
        </section>
        <div class="Columns">
            <Accuracy backtest=forecast.backtest.clone() model=forecast.model.clone()/>
            <AtRisk rows=data.at_risk/>
        </div>
        <WeeklyTable forecast/>
    }
    .into_any()
}

#[component]
fn Totals(forecast: TenantForecast) -> impl IntoView {
    let units: f64 = forecast.history.iter().map(|day| day.units).sum();
    let revenue: f64 = forecast.history.iter().map(|day| day.revenue).sum();
    let expected: f64 = forecast.points.iter().map(|point| point.mean).sum();
    let weeks = forecast.points.len().div_ceil(7);
    // Daily bands do not add up; the sum of the 80 % bounds is a wide, honest range.
    let low: f64 = forecast.points.iter().map(|point| point.lo80).sum();
    let high: f64 = forecast.points.iter().map(|point| point.hi80).sum();
    view! {
        <div class="Stats">
            <div class="Card Stat">
                <span class="Stat-label">"Units, last 13 weeks"</span>
                <span class="Stat-value">{format::whole(units)}</span>
            </div>
            <div class="Card Stat">
                <span class="Stat-label">"Revenue, last 13 weeks"</span>
                <span class="Stat-value">{format::whole(revenue)}</span>
            </div>
            <div class="Card Stat">
                <span class="Stat-label">{format!("Expected units, next {weeks} weeks")}</span>
                <span class="Stat-value" data-testid="forecast-total">{format::whole(expected)}</span>
                <span class="Stat-note">
                    {format!("likely {} to {}", format::whole(low), format::whole(high))}
                </span>
            </div>
        </div>
    }
}

/// Backtest MASE and bias as a merchant would say them.
pub fn accuracy_words(backtest: &Backtest) -> (String, String) {
    let error = match backtest.mase {
        Some(mase) if mase < 1.0 => format!(
            "On past weeks we held back, the forecast's typical miss was {} smaller than simply repeating the previous day's sales (MASE {mase:.2}).",
            format::percent(1.0 - mase)
        ),
        Some(mase) => format!(
            "On past weeks we held back, the forecast's typical miss was {mase:.1}× that of repeating the previous day's sales (MASE {mase:.2}): sales here are hard to predict day by day, so plan with the ranges."
        ),
        None => "Not enough history yet to test the forecast on past weeks.".to_owned(),
    };
    let lean = match backtest.bias {
        Some(bias) if bias.abs() < 0.05 => {
            format!(
                "It does not lean high or low (bias {}).",
                format::signed_percent(bias)
            )
        }
        Some(bias) if bias > 0.0 => format!(
            "It tended to expect {} more than sold (bias {}).",
            format::percent(bias),
            format::signed_percent(bias)
        ),
        Some(bias) => format!(
            "It tended to expect {} less than sold (bias {}).",
            format::percent(-bias),
            format::signed_percent(bias)
        ),
        None => String::new(),
    };
    (error, lean)
}

#[component]
fn Accuracy(backtest: Backtest, model: String) -> impl IntoView {
    let (error, lean) = accuracy_words(&backtest);
    let coverage = backtest.coverage80.map(|share| {
        format!(
            "{} of past days fell inside the 80 % range.",
            format::percent(share)
        )
    });
    view! {
        <section class="Card">
            <h2 class="Heading">"How accurate is the forecast?"</h2>
            <p data-testid="accuracy">{error}</p>
            <p>{lean}</p>
            <p>{coverage}</p>
            <p class="Subdued">{format!("Total forecast by {model}.")}</p>
        </section>
    }
}

#[component]
fn AtRisk(rows: Vec<ProductRow>) -> impl IntoView {
    let body = if rows.is_empty() {
        view! {
            <p class="Subdued">
                "No SKU is about to run out. Stock levels come from Shopify or an inventory upload."
            </p>
        }
        .into_any()
    } else {
        view! {
            <ul class="RiskList">
                {rows
                    .into_iter()
                    .map(|row| {
                        let href = format!(
                            "/app/product?sku={}&location={}",
                            api::encode(&row.sku),
                            api::encode(&row.location),
                        );
                        let cover = row
                            .days_of_cover
                            .map_or_else(
                                || "out of stock soon".to_owned(),
                                |days| format!("{} days of cover", format::short(days)),
                            );
                        view! {
                            <li class="RiskList-item">
                                <A href=href>{row.sku.clone()}</A>
                                <span class="Subdued">{format!(" at {}", row.location)}</span>
                                <span class="Badge Badge--critical">{cover}</span>
                                <span class="RiskList-order">
                                    {row
                                        .suggested_order
                                        .map(|units| format!("order {}", format::whole(units)))}
                                </span>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <section class="Card" data-testid="at-risk">
            <h2 class="Heading">"At risk of stocking out"</h2>
            {body}
        </section>
    }
}

#[component]
fn WeeklyTable(forecast: TenantForecast) -> impl IntoView {
    let weeks: Vec<(String, f64, f64)> = forecast
        .history
        .chunks(7)
        .map(|week| {
            (
                week.first().map(|day| day.date.clone()).unwrap_or_default(),
                week.iter().map(|day| day.units).sum(),
                week.iter().map(|day| day.revenue).sum(),
            )
        })
        .collect();
    let most = weeks.iter().map(|week| week.1).fold(1.0_f64, f64::max);
    view! {
        <section class="Card">
            <h2 class="Heading">"Week by week"</h2>
            <div class="TableScroll">
                <table class="DataTable">
                    <thead>
                        <tr>
                            <th scope="col">"Week from"</th>
                            <th scope="col" class="Numeric">"Units"</th>
                            <th scope="col" class="Numeric">"Revenue"</th>
                            <th scope="col" aria-hidden="true"></th>
                        </tr>
                    </thead>
                    <tbody>
                        {weeks
                            .into_iter()
                            .map(|(date, units, revenue)| {
                                let width = format!("width: {:.0}%", units / most * 100.0);
                                view! {
                                    <tr>
                                        <td>{format::day_month(&date)}</td>
                                        <td class="Numeric">{format::whole(units)}</td>
                                        <td class="Numeric">{format::whole(revenue)}</td>
                                        <td class="BarCell" aria-hidden="true">
                                            <span class="Bar" style=width></span>
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn Freshness(
    upload: Option<ImportReport>,
    delivery: Option<api::ApiResult<Vec<Delivery>>>,
    sync: Option<serde_json::Value>,
) -> impl IntoView {
    let upload = upload.map_or_else(
        || "No upload yet".to_owned(),
        |upload| {
            format!(
                "{} ({})",
                format::moment(upload.finished_at.as_deref().unwrap_or(&upload.started_at)),
                upload.filename.unwrap_or_else(|| "unnamed file".to_owned())
            )
        },
    );
    let webhook = match delivery {
        Some(Ok(deliveries)) => deliveries.first().map_or_else(
            || "None received yet".to_owned(),
            |delivery| {
                format!(
                    "{} ({})",
                    format::moment(&delivery.received_at),
                    delivery.topic
                )
            },
        ),
        Some(Err(failure)) => failure.message,
        None => "Not connected to Shopify (sales come from uploads)".to_owned(),
    };
    let sync = sync.map(|status| {
        let when = status
            .get("finished_at")
            .or_else(|| status.get("started_at"))
            .and_then(|value| value.as_str())
            .map(format::moment)
            .unwrap_or_default();
        let state = status
            .get("status")
            .and_then(|value| value.as_str())
            .unwrap_or("unknown")
            .to_owned();
        view! {
            <dt>"Last Shopify sync"</dt>
            <dd>{format!("{state} {when}")}</dd>
        }
    });
    view! {
        <section class="Card" data-testid="freshness">
            <h2 class="Heading">"Data freshness"</h2>
            <dl class="DescriptionList">
                <dt>"Last upload"</dt>
                <dd>{upload}</dd>
                <dt>"Last webhook"</dt>
                <dd>{webhook}</dd>
                {sync}
            </dl>
        </section>
    }
}
