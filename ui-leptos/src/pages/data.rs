//! Data: CSV upload (drag and drop or a file picker) with a progress bar and the per-row error
//! report; the upload history; Shopify sync status when the server offers `/api/v1/sync`; recent
//! webhook deliveries and dead letters with a replay button.

use leptos::prelude::*;

use super::{ErrorBanner, Loading, PageHeader};
use crate::api::{self, ApiResult, Delivery, ImportReport};
use crate::format;

/// `/app/data`.
#[component]
pub fn Data() -> impl IntoView {
    let uploads =
        api::resource::<Vec<ImportReport>, _>(|| (), |()| "/api/v1/uploads?limit=20".to_owned());
    let page = use_context::<crate::PageContext>().unwrap_or_default();
    // Only ask what this viewer has: a 404 would be a console error in the browser.
    let sync = page
        .sync_available
        .then(|| api::resource::<serde_json::Value, _>(|| (), |()| "/api/v1/sync".to_owned()));
    let webhooks = page.is_shop().then(|| {
        (
            api::resource::<Vec<Delivery>, _>(|| (), |()| "/api/v1/webhooks?limit=20".to_owned()),
            api::resource::<Vec<Delivery>, _>(
                || (),
                |()| "/api/v1/webhooks?status=dead&limit=20".to_owned(),
            ),
        )
    });
    view! {
        <PageHeader
            title="Data"
            subtitle="Sales files, Shopify sync and webhook deliveries."
        />
        <Upload on_done=move || uploads.refetch()/>
        <section class="Card">
            <h2 class="Heading">"Upload history"</h2>
            <Transition fallback=|| view! { <Loading/> }>
                {move || Suspend::new(async move {
                    match uploads.await {
                        Ok(list) => view! { <UploadHistory uploads=list/> }.into_any(),
                        Err(failure) => view! { <ErrorBanner failure/> }.into_any(),
                    }
                })}
            </Transition>
        </section>
        {sync
            .map(|sync| {
                view! {
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            sync.await.ok().map(|status| view! { <SyncStatus status/> })
                        })}
                    </Suspense>
                }
            })}
        {match webhooks {
            Some((deliveries, dead)) => {
                view! {
                    <Transition fallback=|| view! { <Loading/> }>
                        {move || Suspend::new(async move {
                            let recent = deliveries.await;
                            let dead_letters = dead.await;
                            view! {
                                <Deliveries
                                    recent
                                    dead=dead_letters
                                    on_replayed=move || {
                                        deliveries.refetch();
                                        dead.refetch();
                                    }
                                />
                            }
                        })}
                    </Transition>
                }
                    .into_any()
            }
            None => {
                view! {
                    <section class="Card">
                        <h2 class="Heading">"Webhook deliveries"</h2>
                        <p class="Subdued">
                            "This account is not connected to a Shopify store, so no webhooks arrive. Sales come from your uploads."
                        </p>
                    </section>
                }
                    .into_any()
            }
        }}
    }
}

/// Upload state shown under the drop zone (only the browser uploads, so the server renders `Idle`).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
enum UploadState {
    Idle,
    Sending { filename: String, share: f64 },
    Done(Box<ImportReport>),
    Failed(String),
}

#[component]
fn Upload(on_done: impl Fn() + Clone + Send + Sync + 'static) -> impl IntoView {
    let state = RwSignal::new(UploadState::Idle);
    let dragging = RwSignal::new(false);
    let mode = use_context::<crate::PageContext>()
        .unwrap_or_else(crate::context::page_context)
        .mode;
    let start = move |file: Option<SendFile>| {
        let Some(file) = file else {
            return;
        };
        #[cfg(feature = "hydrate")]
        {
            let file = file.take();
            let filename = file.name();
            let mode = mode.clone();
            let on_done = on_done.clone();
            state.set(UploadState::Sending {
                filename: filename.clone(),
                share: 0.0,
            });
            let path = format!("/api/v1/uploads?filename={}", api::encode(&filename));
            let progress_name = filename.clone();
            leptos::task::spawn_local(async move {
                let result = crate::browser::upload(&mode, &path, file, move |share| {
                    state.set(UploadState::Sending {
                        filename: progress_name.clone(),
                        share,
                    });
                })
                .await;
                state.set(match result {
                    Ok((status, body)) => match api::decode::<ImportReport>(status, &body) {
                        Ok(report) => UploadState::Done(Box::new(report)),
                        Err(failure) => UploadState::Failed(failure.message),
                    },
                    Err(message) => UploadState::Failed(message),
                });
                on_done();
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (file, &mode, &on_done);
    };
    let start_drop = start.clone();
    let on_drop = move |event: leptos::ev::DragEvent| {
        event.prevent_default();
        dragging.set(false);
        #[cfg(feature = "hydrate")]
        start_drop(
            event
                .data_transfer()
                .and_then(|transfer| transfer.files())
                .and_then(|files| files.get(0))
                .map(send_wrapper::SendWrapper::new),
        );
        #[cfg(not(feature = "hydrate"))]
        let _ = &start_drop;
    };
    let on_change = move |event: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            let input = event
                .target()
                .and_then(|target| target.dyn_into::<web_sys::HtmlInputElement>().ok());
            start(
                input
                    .as_ref()
                    .and_then(|input| input.files())
                    .and_then(|files| files.get(0))
                    .map(send_wrapper::SendWrapper::new),
            );
            if let Some(input) = input {
                input.set_value("");
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (event, &start);
    };
    view! {
        <section class="Card">
            <h2 class="Heading">"Upload sales"</h2>
            <label
                class=move || if dragging.get() { "DropZone DropZone--active" } else { "DropZone" }
                on:dragover=move |event: leptos::ev::DragEvent| {
                    event.prevent_default();
                    dragging.set(true);
                }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop
            >
                <input
                    class="VisuallyHidden"
                    type="file"
                    accept=".csv,text/csv"
                    data-testid="upload-input"
                    on:change=on_change
                />
                <span class="DropZone-title">"Drop a CSV file here, or click to choose one"</span>
                <span class="Subdued Small">
                    "Our CSV format, Shopify's order export or Square's item sales; re-uploading the same rows never counts them twice."
                </span>
            </label>
            {move || match state.get() {
                UploadState::Idle => ().into_any(),
                UploadState::Sending { filename, share } => {
                    let percent = (share * 100.0).round();
                    view! {
                        <div class="Progress" data-testid="upload-progress">
                            <span>{format!("Uploading {filename}… {percent:.0} %")}</span>
                            <div
                                class="ProgressBar"
                                role="progressbar"
                                aria-valuemin="0"
                                aria-valuemax="100"
                                aria-valuenow=percent.to_string()
                            >
                                <div class="ProgressBar-fill" style=format!("width: {percent:.0}%")></div>
                            </div>
                        </div>
                    }
                        .into_any()
                }
                UploadState::Done(report) => view! { <Report report=*report/> }.into_any(),
                UploadState::Failed(message) => {
                    view! {
                        <div class="Banner Banner--critical" role="alert">
                            <strong>"The file was not imported. "</strong>
                            {message}
                        </div>
                    }
                        .into_any()
                }
            }}
        </section>
    }
}

/// A file the merchant picked, carried through `Send` closures (the browser has one thread).
#[cfg(feature = "hydrate")]
type SendFile = send_wrapper::SendWrapper<web_sys::File>;
/// On the server nobody picks files.
#[cfg(not(feature = "hydrate"))]
type SendFile = std::convert::Infallible;

#[component]
fn Report(report: ImportReport) -> impl IntoView {
    let ok = report.rows_rejected == 0;
    let class = if ok {
        "Banner Banner--success"
    } else {
        "Banner Banner--warning"
    };
    let summary = format!(
        "{}: {} rows read, {} new, {} already known, {} updated, {} rejected.",
        report
            .filename
            .clone()
            .unwrap_or_else(|| "Upload".to_owned()),
        format::whole(report.rows_read as f64),
        format::whole(report.rows_imported as f64),
        format::whole(report.rows_duplicate as f64),
        format::whole(report.rows_updated as f64),
        format::whole(report.rows_rejected as f64),
    );
    view! {
        <div class=class role="status" data-testid="upload-report">
            <p>{summary}</p>
            {(!report.errors.is_empty())
                .then(|| {
                    view! {
                        <div class="TableScroll">
                            <table class="DataTable" data-testid="row-errors">
                                <caption>"Rows that were not imported"</caption>
                                <thead>
                                    <tr>
                                        <th scope="col" class="Numeric">"Line"</th>
                                        <th scope="col">"Column"</th>
                                        <th scope="col">"Problem"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {report
                                        .errors
                                        .iter()
                                        .map(|error| {
                                            view! {
                                                <tr>
                                                    <td class="Numeric">{error.line}</td>
                                                    <td>{error.column.clone().unwrap_or_default()}</td>
                                                    <td>{error.message.clone()}</td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }
                })}
        </div>
    }
}

#[component]
fn UploadHistory(uploads: Vec<ImportReport>) -> impl IntoView {
    if uploads.is_empty() {
        return view! { <p class="Subdued">"No uploads yet."</p> }.into_any();
    }
    view! {
        <div class="TableScroll">
            <table class="DataTable" data-testid="upload-history">
                <thead>
                    <tr>
                        <th scope="col">"File"</th>
                        <th scope="col">"When"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col" class="Numeric">"New rows"</th>
                        <th scope="col" class="Numeric">"Rejected"</th>
                        <th scope="col">"Dates"</th>
                    </tr>
                </thead>
                <tbody>
                    {uploads
                        .into_iter()
                        .map(|upload| {
                            let badge = match upload.status.as_str() {
                                "complete" if upload.rows_rejected == 0 => "Badge Badge--success",
                                "complete" | "running" => "Badge Badge--attention",
                                _ => "Badge Badge--critical",
                            };
                            view! {
                                <tr>
                                    <td>{upload.filename.clone().unwrap_or_else(|| "—".to_owned())}</td>
                                    <td>{format::moment(&upload.started_at)}</td>
                                    <td><span class=badge>{upload.status.clone()}</span></td>
                                    <td class="Numeric">{format::whole(upload.rows_imported as f64)}</td>
                                    <td class="Numeric">{format::whole(upload.rows_rejected as f64)}</td>
                                    <td>
                                        {match (&upload.first_date, &upload.last_date) {
                                            (Some(first), Some(last)) => format!("{first} – {last}"),
                                            _ => String::new(),
                                        }}
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

/// `GET /api/v1/sync` (Shopify shops only): where the order sync stands, with the download's
/// progress while one runs.
#[component]
fn SyncStatus(status: serde_json::Value) -> impl IntoView {
    let text = |name: &str| {
        status
            .get(name)
            .and_then(|value| value.as_str())
            .map(str::to_owned)
    };
    let number = |name: &str| {
        status
            .get(name)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let (orders, lines) = (number("orders"), number("lines"));
    let phase = text("phase").unwrap_or_default();
    let state = text("state").unwrap_or_default();
    let when = |name: &str| text(name).map(|moment| format::moment(&moment));
    let summary = match state.as_str() {
        "running" => format!(
            "Syncing order history ({}): {} orders applied so far.",
            phase.replace('_', " "),
            format::whole(orders as f64)
        ),
        "completed" => format!(
            "Up to date: {} orders, {} sales lines{}.",
            format::whole(orders as f64),
            format::whole(lines as f64),
            when("finished_at")
                .map(|at| format!(", finished {at}"))
                .unwrap_or_default()
        ),
        "failed" => format!(
            "The last sync failed{}: {}",
            when("finished_at")
                .map(|at| format!(" ({at})"))
                .unwrap_or_default(),
            text("last_error").unwrap_or_else(|| "no reason recorded".to_owned())
        ),
        _ => "Order history has not been synced yet.".to_owned(),
    };
    let total = number("bytes_total");
    let progress = (state == "running" && phase == "downloading" && total > 0)
        .then(|| (number("bytes_committed") as f64 / total as f64).min(1.0));
    let notice = text("notice");
    view! {
        <section class="Card" data-testid="sync">
            <h2 class="Heading">"Shopify sync"</h2>
            <p data-testid="sync-summary">{summary}</p>
            {notice.map(|notice| view! { <p class="Subdued">{notice}</p> })}
            {progress
                .map(|share| {
                    let percent = (share * 100.0).round();
                    view! {
                        <div class="ProgressBar" role="progressbar" aria-label="Download" aria-valuemin="0" aria-valuemax="100" aria-valuenow=percent.to_string()>
                            <div class="ProgressBar-fill" style=format!("width: {percent:.0}%")></div>
                        </div>
                    }
                })}
        </section>
    }
}

#[component]
fn Deliveries(
    recent: ApiResult<Vec<Delivery>>,
    dead: ApiResult<Vec<Delivery>>,
    on_replayed: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let (recent, dead) = match (recent, dead) {
        (Ok(recent), Ok(dead)) => (recent, dead),
        (Err(failure), _) | (_, Err(failure)) => {
            return view! { <ErrorBanner failure/> }.into_any();
        }
    };
    view! {
        <section class="Card">
            <h2 class="Heading">"Dead letters"</h2>
            <DeliveryTable deliveries=dead empty="No dead letters: every delivery was applied." on_replayed=on_replayed.clone()/>
        </section>
        <section class="Card">
            <h2 class="Heading">"Recent webhook deliveries"</h2>
            <DeliveryTable deliveries=recent empty="No deliveries yet." on_replayed/>
        </section>
    }
    .into_any()
}

#[component]
fn DeliveryTable(
    deliveries: Vec<Delivery>,
    empty: &'static str,
    on_replayed: impl Fn() + Clone + Send + Sync + 'static,
) -> impl IntoView {
    if deliveries.is_empty() {
        return view! { <p class="Subdued">{empty}</p> }.into_any();
    }
    let api = api::Api::current();
    view! {
        <div class="TableScroll">
            <table class="DataTable">
                <thead>
                    <tr>
                        <th scope="col">"Topic"</th>
                        <th scope="col">"Received"</th>
                        <th scope="col">"Status"</th>
                        <th scope="col">"Reason"</th>
                        <th scope="col"><span class="VisuallyHidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    {deliveries
                        .into_iter()
                        .map(|delivery| {
                            let api = api.clone();
                            let on_replayed = on_replayed.clone();
                            let id = delivery.webhook_id.clone();
                            let busy = RwSignal::new(false);
                            let replay = move |_| {
                                let api = api.clone();
                                let on_replayed = on_replayed.clone();
                                let path = format!("/api/v1/webhooks/{}/replay", api::encode(&id));
                                busy.set(true);
                                leptos::task::spawn_local(async move {
                                    let _ = api.call("POST", &path, None).await;
                                    busy.set(false);
                                    on_replayed();
                                });
                            };
                            let badge = match delivery.status.as_str() {
                                "published" => "Badge Badge--success",
                                "dead" => "Badge Badge--critical",
                                _ => "Badge Badge--attention",
                            };
                            view! {
                                <tr>
                                    <td>{delivery.topic.clone()}</td>
                                    <td>{format::moment(&delivery.received_at)}</td>
                                    <td><span class=badge>{delivery.status.clone()}</span></td>
                                    <td>{delivery.reason.clone().unwrap_or_default()}</td>
                                    <td>
                                        <button class="Button Button--slim" type="button" on:click=replay disabled=move || busy.get()>
                                            "Replay"
                                        </button>
                                    </td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
