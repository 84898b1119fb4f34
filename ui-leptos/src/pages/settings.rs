//! Settings: time zone, default lead time, service level and forecast horizon
//! (`GET|PUT /api/v1/settings`).

use leptos::prelude::*;

use super::{ErrorBanner, Loading, PageHeader};
use crate::api::{self, Settings as SettingsData};

/// Time zones offered first; any IANA name may be typed.
const ZONES: [&str; 12] = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "America/Toronto",
    "Australia/Sydney",
    "Asia/Tokyo",
    "Asia/Singapore",
];

/// `/app/settings`.
#[component]
pub fn Settings() -> impl IntoView {
    let settings = api::resource::<SettingsData, _>(|| (), |()| "/api/v1/settings".to_owned());
    view! {
        <PageHeader
            title="Settings"
            subtitle="Defaults for reorder suggestions and how far ahead to forecast."
        />
        <Suspense fallback=|| view! { <Loading/> }>
            {move || Suspend::new(async move {
                match settings.await {
                    Ok(current) => view! { <SettingsForm current/> }.into_any(),
                    Err(failure) => view! { <ErrorBanner failure/> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn SettingsForm(current: SettingsData) -> impl IntoView {
    let api = api::Api::current();
    let timezone: NodeRef<leptos::html::Input> = NodeRef::new();
    let lead_time: NodeRef<leptos::html::Input> = NodeRef::new();
    let service_level: NodeRef<leptos::html::Select> = NodeRef::new();
    let horizon: NodeRef<leptos::html::Select> = NodeRef::new();
    let message = RwSignal::new(None::<(bool, String)>);
    let saving = RwSignal::new(false);
    let on_submit = move |event: leptos::ev::SubmitEvent| {
        event.prevent_default();
        let text = |value: Option<String>| value.unwrap_or_default();
        let settings = SettingsData {
            timezone: text(timezone.get().map(|input| input.value()))
                .trim()
                .to_owned(),
            default_lead_time_days: text(lead_time.get().map(|input| input.value()))
                .parse()
                .unwrap_or(0),
            service_level: text(service_level.get().map(|select| select.value()))
                .parse()
                .unwrap_or(0.0),
            horizon_days: text(horizon.get().map(|select| select.value()))
                .parse()
                .unwrap_or(0),
        };
        let Ok(body) = serde_json::to_string(&settings) else {
            return;
        };
        let api = api.clone();
        saving.set(true);
        leptos::task::spawn_local(async move {
            let result = api
                .send::<SettingsData>("PUT", "/api/v1/settings", "application/json", body)
                .await;
            saving.set(false);
            message.set(Some(match result {
                Ok(_) => (true, "Settings saved.".to_owned()),
                Err(failure) => (false, failure.message),
            }));
        });
    };
    let levels = [
        ("0.9", "90 %"),
        ("0.95", "95 %"),
        ("0.98", "98 %"),
        ("0.99", "99 %"),
    ];
    let horizons = [
        (7, "1 week"),
        (14, "2 weeks"),
        (28, "4 weeks"),
        (56, "8 weeks"),
        (91, "13 weeks"),
    ];
    let level = format!("{}", current.service_level);
    view! {
        <section class="Card">
            <form class="FormLayout" on:submit=on_submit>
                <label class="Field">
                    "Time zone"
                    <span class="Subdued Small">"Sales are counted by local day in this zone."</span>
                    <input class="TextField" list="zones" required node_ref=timezone value=current.timezone.clone()/>
                    <datalist id="zones">
                        {ZONES.into_iter().map(|zone| view! { <option value=zone></option> }).collect_view()}
                    </datalist>
                </label>
                <label class="Field">
                    "Default lead time (days)"
                    <span class="Subdued Small">"From ordering to having the stock, when a stock row names none."</span>
                    <input
                        class="TextField"
                        type="number"
                        min="1"
                        max="180"
                        required
                        node_ref=lead_time
                        value=current.default_lead_time_days.to_string()
                    />
                </label>
                <label class="Field">
                    "Service level"
                    <span class="Subdued Small">"How often you want to have stock when a customer asks."</span>
                    <select class="Select" node_ref=service_level>
                        {levels
                            .into_iter()
                            .map(|(value, label)| {
                                let selected = value == level;
                                view! { <option value=value selected=selected>{label}</option> }
                            })
                            .collect_view()}
                    </select>
                </label>
                <label class="Field">
                    "Forecast horizon"
                    <span class="Subdued Small">"How far ahead the overview looks."</span>
                    <select class="Select" node_ref=horizon>
                        {horizons
                            .into_iter()
                            .map(|(days, label)| {
                                let selected = days == current.horizon_days;
                                view! { <option value=days.to_string() selected=selected>{label}</option> }
                            })
                            .collect_view()}
                    </select>
                </label>
                <button class="Button Button--primary" type="submit" disabled=move || saving.get()>
                    "Save"
                </button>
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
