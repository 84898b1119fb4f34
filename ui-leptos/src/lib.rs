//! The Leptos UI of OrderNimbus: the pages merchants see (overview, products, product detail,
//! data, settings), server-rendered by `ordernimbus serve` at `/app` (feature `ssr`) and hydrated
//! in the browser from wasm (feature `hydrate`), embedded in Shopify Admin through App Bridge or
//! standalone for CSV tenants. It depends on no crate of ours: like the CLI's HTTP commands, it
//! knows the server only through the JSON API under `/api/v1/` — called in process while rendering
//! on the server (`server::ServerApi`), with `fetch` in the browser, each call carrying the
//! viewer's credentials (a fresh App Bridge session token, or the session cookie plus its CSRF
//! token). It never reads a database, a file of the server's or the environment.

// Leptos views are deeply nested types; the product page's needs more than the default 128.
#![recursion_limit = "256"]

pub mod api;
#[cfg(feature = "hydrate")]
mod browser;
mod chart;
mod context;
mod format;
mod pages;
#[cfg(feature = "ssr")]
pub mod server;

pub use context::{Mode, PageContext};

use leptos::prelude::*;
use leptos_router::components::{A, Route, Router, Routes};
use leptos_router::{SsrMode, path};

/// The name wasm-bindgen gives the browser bundle (`pkg/ordernimbus_ui.js`, `_bg.wasm`).
pub const OUTPUT_NAME: &str = "ordernimbus_ui";

/// The whole UI: navigation and the five pages.
#[component]
pub fn App() -> impl IntoView {
    let page = context::page_context();
    provide_context(page.clone());
    // Tests (and curious merchants) can tell a hydrated page from server-rendered HTML.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        browser::mark_hydrated();
    });
    view! {
        <Router>
            <Navigation page=page.clone()/>
            <main class="Page" id="main">
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/app") view=pages::overview::Overview ssr=SsrMode::Async/>
                    <Route
                        path=path!("/app/products")
                        view=pages::products::Products
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/app/product")
                        view=pages::product::ProductDetail
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/app/data") view=pages::data::Data ssr=SsrMode::Async/>
                    <Route
                        path=path!("/app/settings")
                        view=pages::settings::Settings
                        ssr=SsrMode::Async
                    />
                </Routes>
            </main>
        </Router>
    }
}

/// Embedded: App Bridge's `<ui-nav-menu>` puts the links in Admin's sidebar. Standalone: a top
/// bar with the links and a sign-out form.
#[component]
fn Navigation(page: PageContext) -> impl IntoView {
    let links = [
        ("/app/products", "Products"),
        ("/app/data", "Data"),
        ("/app/settings", "Settings"),
    ];
    match page.mode {
        Mode::Embedded { .. } => view! {
            <ui-nav-menu>
                <a href="/app" rel="home">"Overview"</a>
                {links.into_iter().map(|(href, label)| view! { <a href=href>{label}</a> }).collect_view()}
            </ui-nav-menu>
        }
        .into_any(),
        Mode::Standalone {
            tenant_name,
            csrf_token,
        } => view! {
            <header class="TopBar">
                <span class="TopBar-brand">"OrderNimbus"</span>
                <nav class="TopBar-nav" aria-label="Main">
                    <A href="/app" exact=true>"Overview"</A>
                    {links.into_iter().map(|(href, label)| view! { <A href=href>{label}</A> }).collect_view()}
                </nav>
                <form class="TopBar-account" method="post" action="/app/sign-out">
                    <span class="TopBar-tenant">{tenant_name}</span>
                    <input type="hidden" name="csrf_token" value=csrf_token/>
                    <button class="Button Button--plain" type="submit">"Sign out"</button>
                </form>
            </header>
        }
        .into_any(),
    }
}

#[component]
fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <div class="Card EmptyState">
            <h1 class="Heading">"Page not found"</h1>
            <p>
                "There is nothing here. Go back to the " <A href="/app">"overview"</A> "."
            </p>
        </div>
    }
}

/// The browser's entry point, called by the hydration script once the wasm has loaded.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
