//! The demand chart: actual daily units, then the forecast with its 80 % and 95 % bands, as an
//! SVG rendered on the server (readable without wasm) and hydrated for hover and keyboard
//! details. Accessible: a titled, described `role="img"`, focusable, and the forecast as a table
//! for screen readers.

use leptos::prelude::*;

use crate::api::ForecastPoint;
use crate::format;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 260.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// One day on the chart.
#[derive(Debug, Clone, PartialEq)]
struct Day {
    date: String,
    actual: Option<f64>,
    forecast: Option<ForecastPoint>,
}

/// Actual history (`(date, units)`, consecutive days) followed by the forecast.
#[component]
pub fn DemandChart(
    /// Element id prefix (unique on the page).
    id: &'static str,
    /// What the chart shows, for its title.
    title: String,
    /// Consecutive days of actual units.
    history: Vec<(String, f64)>,
    /// Forecast days following the history.
    forecast: Vec<ForecastPoint>,
) -> impl IntoView {
    let days: Vec<Day> = history
        .iter()
        .map(|(date, units)| Day {
            date: date.clone(),
            actual: Some(*units),
            forecast: None,
        })
        .chain(forecast.iter().map(|point| Day {
            date: point.date.clone(),
            actual: None,
            forecast: Some(point.clone()),
        }))
        .collect();
    if days.is_empty() {
        return view! { <p class="Subdued">"No data to chart yet."</p> }.into_any();
    }
    let count = days.len();
    let top = days
        .iter()
        .map(|day| {
            day.actual
                .unwrap_or(0.0)
                .max(day.forecast.as_ref().map_or(0.0, |point| point.hi95))
        })
        .fold(1.0_f64, f64::max);
    let scale = nice_ceiling(top);
    let plot_width = WIDTH - LEFT - RIGHT;
    let plot_height = HEIGHT - TOP - BOTTOM;
    let x = move |index: usize| LEFT + plot_width * (index as f64 + 0.5) / count as f64;
    let y = move |value: f64| TOP + plot_height * (1.0 - (value / scale).clamp(0.0, 1.0));
    let first_forecast = history.len();

    let band = |low: fn(&ForecastPoint) -> f64, high: fn(&ForecastPoint) -> f64| {
        let points: Vec<(usize, &ForecastPoint)> = days
            .iter()
            .enumerate()
            .filter_map(|(index, day)| day.forecast.as_ref().map(|point| (index, point)))
            .collect();
        let upper = points
            .iter()
            .map(|(index, point)| format!("{:.1},{:.1}", x(*index), y(high(point))));
        let lower = points
            .iter()
            .rev()
            .map(|(index, point)| format!("{:.1},{:.1}", x(*index), y(low(point))));
        upper.chain(lower).collect::<Vec<_>>().join(" ")
    };
    let band95 = band(|point| point.lo95, |point| point.hi95);
    let band80 = band(|point| point.lo80, |point| point.hi80);
    let line = |value: fn(&Day) -> Option<f64>| {
        days.iter()
            .enumerate()
            .filter_map(|(index, day)| {
                value(day).map(|units| format!("{:.1},{:.1}", x(index), y(units)))
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let actual_line = line(|day| day.actual);
    let forecast_line = line(|day| day.forecast.as_ref().map(|point| point.mean));
    let ticks: Vec<(f64, String)> = (0..=4)
        .map(|step| {
            let value = scale * f64::from(step) / 4.0;
            (y(value), format::axis(value))
        })
        .collect();
    let label_every = (count / 6).max(1);
    let labels: Vec<(f64, String)> = days
        .iter()
        .enumerate()
        .filter(|(index, _)| index % label_every == 0)
        .map(|(index, day)| (x(index), format::day_month(&day.date)))
        .collect();
    let divider = (first_forecast > 0 && first_forecast < count)
        .then(|| x(first_forecast) - plot_width / count as f64 / 2.0);

    let total_forecast: f64 = forecast.iter().map(|point| point.mean).sum();
    let description = format!(
        "{} days of actual sales{}. {}",
        history.len(),
        history
            .last()
            .map(|(date, units)| format!(
                ", {} units on {}",
                format::short(*units),
                format::day_month(date)
            ))
            .unwrap_or_default(),
        if forecast.is_empty() {
            "No forecast yet.".to_owned()
        } else {
            format!(
                "Forecast for the next {} days: {} units in total; shaded bands show the 80 % and 95 % ranges.",
                forecast.len(),
                format::whole(total_forecast)
            )
        }
    );

    let hover = RwSignal::new(None::<usize>);
    let tip_days = days.clone();
    let tooltip = move || {
        hover.get().and_then(|index| {
            let day = tip_days.get(index)?;
            let px = x(index);
            let text = match (&day.actual, &day.forecast) {
                (Some(units), _) => format!(
                    "{}: {} sold",
                    format::day_month(&day.date),
                    format::short(*units)
                ),
                (None, Some(point)) => format!(
                    "{}: {} expected (80 %: {}–{})",
                    format::day_month(&day.date),
                    format::short(point.mean),
                    format::short(point.lo80),
                    format::short(point.hi80)
                ),
                (None, None) => day.date.clone(),
            };
            let anchor = if px > WIDTH * 0.6 { "end" } else { "start" };
            let text_x = if px > WIDTH * 0.6 { px - 6.0 } else { px + 6.0 };
            Some(view! {
                <g class="Chart-tooltip" aria-hidden="true">
                    <line x1=px x2=px y1=TOP y2=HEIGHT - BOTTOM class="Chart-cursor"/>
                    <text x=text_x y=TOP + 12.0 text-anchor=anchor class="Chart-tipText">
                        {text.clone()}
                    </text>
                </g>
            })
        })
    };
    // Leptos delegates mouse events to the document, so the event's current target is not the
    // chart: measure the SVG element itself.
    let svg_ref: NodeRef<leptos::svg::Svg> = NodeRef::new();
    let on_move = move |event: leptos::ev::MouseEvent| {
        #[cfg(feature = "hydrate")]
        {
            let Some(svg) = svg_ref.get() else {
                return;
            };
            let rect = svg.get_bounding_client_rect();
            if rect.width() <= 0.0 {
                return;
            }
            let svg_x = (f64::from(event.client_x()) - rect.left()) / rect.width() * WIDTH;
            let index = ((svg_x - LEFT) / plot_width * count as f64).floor();
            if index >= 0.0 && (index as usize) < count {
                hover.set(Some(index as usize));
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = event;
    };
    let on_key = move |event: leptos::ev::KeyboardEvent| {
        let current = hover.get_untracked();
        let next = match event.key().as_str() {
            "ArrowRight" => Some(current.map_or(0, |index| (index + 1).min(count - 1))),
            "ArrowLeft" => Some(current.map_or(count - 1, |index| index.saturating_sub(1))),
            "Escape" => None,
            _ => return,
        };
        event.prevent_default();
        hover.set(next);
    };
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    let table_rows: Vec<ForecastPoint> = forecast.clone();
    view! {
        <figure class="Chart">
            <svg
                viewBox=format!("0 0 {WIDTH} {HEIGHT}")
                role="img"
                aria-label=title.clone()
                aria-describedby=desc_id.clone()
                tabindex="0"
                class="Chart-svg"
                node_ref=svg_ref
                on:mousemove=on_move
                on:mouseleave=move |_| hover.set(None)
                on:keydown=on_key
                on:blur=move |_| hover.set(None)
            >
                {ticks
                    .into_iter()
                    .map(|(tick_y, label)| {
                        view! {
                            <line x1=LEFT x2=WIDTH - RIGHT y1=tick_y y2=tick_y class="Chart-grid"/>
                            <text x=LEFT - 6.0 y=tick_y + 4.0 text-anchor="end" class="Chart-axis">
                                {label}
                            </text>
                        }
                    })
                    .collect_view()}
                {labels
                    .into_iter()
                    .map(|(label_x, label)| {
                        view! {
                            <text x=label_x y=HEIGHT - 8.0 text-anchor="middle" class="Chart-axis">
                                {label}
                            </text>
                        }
                    })
                    .collect_view()}
                <polygon points=band95 class="Chart-band95"/>
                <polygon points=band80 class="Chart-band80"/>
                {divider
                    .map(|divider_x| {
                        view! {
                            <line
                                x1=divider_x
                                x2=divider_x
                                y1=TOP
                                y2=HEIGHT - BOTTOM
                                class="Chart-today"
                            />
                        }
                    })}
                <polyline points=actual_line class="Chart-actual"/>
                <polyline points=forecast_line class="Chart-forecast"/>
                {tooltip}
            </svg>
            <p class="VisuallyHidden" id=desc_id>{description.clone()}</p>
            <figcaption class="Chart-legend" id=title_id>
                <span class="Legend Legend--actual">"Actual"</span>
                <span class="Legend Legend--forecast">"Forecast"</span>
                <span class="Legend Legend--band80">"80 % range"</span>
                <span class="Legend Legend--band95">"95 % range"</span>
            </figcaption>
            // Hidden by a wrapper: a table is never narrower than its content, so hidden itself
            // it would still widen the page (by 20 px at 320 px wide).
            <div class="VisuallyHidden">
                <table>
                    <caption>{format!("{title}: forecast by day")}</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Date"</th>
                            <th scope="col">"Expected units"</th>
                            <th scope="col">"80 % range"</th>
                            <th scope="col">"95 % range"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {table_rows
                            .into_iter()
                            .map(|point| {
                                view! {
                                    <tr>
                                        <td>{point.date.clone()}</td>
                                        <td>{format::short(point.mean)}</td>
                                        <td>
                                            {format!(
                                                "{}–{}",
                                                format::short(point.lo80),
                                                format::short(point.hi80),
                                            )}
                                        </td>
                                        <td>
                                            {format!(
                                                "{}–{}",
                                                format::short(point.lo95),
                                                format::short(point.hi95),
                                            )}
                                        </td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            </div>
        </figure>
    }
    .into_any()
}

/// A round axis maximum at or above `value`: 1, 2 or 5 times a power of ten (or 2.5).
fn nice_ceiling(value: f64) -> f64 {
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|step| step * magnitude)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * magnitude)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_are_round() {
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(130.0), 200.0);
        assert_eq!(nice_ceiling(2300.0), 2500.0);
        assert_eq!(nice_ceiling(1.0), 1.0);
    }
}
