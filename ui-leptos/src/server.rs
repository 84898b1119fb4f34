//! The server half (feature `ssr`): the page routes `ordernimbus serve` mounts at `/app`, the
//! document shell, the stylesheet and the browser bundle, and `ServerApi`, through which pages
//! rendered on the server call the JSON API in process with the viewer's own credentials.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use leptos::config::LeptosOptions;
use leptos::hydration::HydrationScripts;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};

use crate::api::{ApiFailure, ApiResult};
use crate::context::{Mode, PageContext};
use crate::{App, OUTPUT_NAME};

/// Calls the JSON API router in process.
pub type ApiHandler =
    Arc<dyn Fn(Request<Body>) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// Largest API reply a server render reads.
const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// The JSON API as one viewer: every request carries their credentials.
#[derive(Clone)]
pub struct ServerApi {
    handler: ApiHandler,
    credentials: Vec<(String, String)>,
}

impl ServerApi {
    /// The API reached through `handler`, each request carrying `credentials` as headers.
    pub fn new(handler: ApiHandler, credentials: Vec<(String, String)>) -> Self {
        Self {
            handler,
            credentials,
        }
    }

    pub(crate) async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(String, String)>,
    ) -> ApiResult<(u16, String)> {
        let failure = |message: String| ApiFailure {
            status: 500,
            code: "render".to_owned(),
            message,
        };
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in &self.credentials {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = match body {
            Some((content_type, text)) => request
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(text)),
            None => request.body(Body::empty()),
        }
        .map_err(|error| failure(error.to_string()))?;
        let response = (self.handler)(request).await;
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), MAX_REPLY_BYTES)
            .await
            .map_err(|error| failure(error.to_string()))?;
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// What the app's gate attaches to a page request (as a request extension).
#[derive(Clone)]
pub struct RequestContext {
    /// The viewer.
    pub page: PageContext,
    /// The API as that viewer.
    pub api: ServerApi,
}

/// The request context of the page being rendered, if any.
pub(crate) fn request_context() -> Option<RequestContext> {
    use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<RequestContext>().cloned())
}

/// Where the browser bundle lives: `site_root/pkg/ordernimbus_ui.js` and `_bg.wasm`.
pub fn options(site_root: &Path) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(site_root.to_string_lossy().as_ref())
        .site_pkg_dir("pkg")
        .build()
}

/// Whether the browser bundle was built into `site_root` (`scripts/build-ui.sh`).
pub fn assets_built(site_root: &Path) -> bool {
    let pkg = site_root.join("pkg");
    pkg.join(format!("{OUTPUT_NAME}.js")).is_file()
        && pkg.join(format!("{OUTPUT_NAME}_bg.wasm")).is_file()
}

/// The page routes under `/app`. Each request must carry a `RequestContext` extension (the
/// caller's gate adds it after checking who is asking).
pub fn pages(options: &LeptosOptions) -> Router {
    let routes = generate_route_list(App);
    let shell_options = options.clone();
    let fallback_options = options.clone();
    Router::<LeptosOptions>::new()
        .leptos_routes(options, routes, move || shell(shell_options.clone()))
        // Any other path under /app renders the app, whose router shows "Page not found" (a 404).
        .route(
            "/app/{*rest}",
            get(leptos_axum::render_app_to_stream(move || {
                shell(fallback_options.clone())
            })),
        )
        .with_state(options.clone())
}

/// The stylesheet and the browser bundle (public: they hold no tenant data).
pub fn assets(options: &LeptosOptions) -> Router {
    let pkg = Path::new(options.site_root.as_ref()).join("pkg");
    Router::new()
        .route("/app/assets/app.css", get(stylesheet))
        // Browsers ask for it whatever the page says; an empty answer keeps the console clean.
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .nest_service(
            "/pkg",
            tower_http::services::ServeDir::new(pkg).precompressed_gzip(),
        )
}

/// The UI's stylesheet (Polaris look), compiled in so SSR pages are styled without a build step.
const STYLESHEET: &str = include_str!("../style/app.css");

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// The HTML document around the app: App Bridge first when embedded (Shopify requires it to be
/// the first script), the viewer's meta tags, the stylesheet, and the hydration scripts when the
/// bundle exists. When the page hydrates, the body holds the app alone: `hydrate_body` expects
/// the app's first node to be the body's first child.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let page = crate::context::page_context();
    let (mode, embedded_head, standalone_head) = match &page.mode {
        Mode::Embedded {
            api_key,
            app_bridge_url,
        } => (
            "embedded",
            Some(view! {
                <meta name="shopify-api-key" content=api_key.clone()/>
                <script src=app_bridge_url.clone()></script>
            }),
            None,
        ),
        Mode::Standalone {
            tenant_name,
            csrf_token,
        } => (
            "standalone",
            None,
            Some(view! {
                <meta name="csrf-token" content=csrf_token.clone()/>
                <meta name="ordernimbus-tenant" content=tenant_name.clone()/>
            }),
        ),
    };
    let hydration = page
        .assets_built
        .then(|| view! { <HydrationScripts options=options.clone()/> });
    // The browser hydrates the body from its first node, which must be the app's: when the page
    // hydrates, nothing (not even an empty `Option`'s `<!>` marker) may come before `<App/>`.
    let body = if page.assets_built {
        view! {
            <body>
                <App/>
            </body>
        }
        .into_any()
    } else {
        view! {
            <body>
                <div class="Banner Banner--warning NotBuilt" role="status">
                    "UI assets not built: pages are server-rendered only (no charts hover, uploads or "
                    "forms). Run scripts/build-ui.sh and restart the server."
                </div>
                <App/>
            </body>
        }
        .into_any()
    };
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                {embedded_head}
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="ordernimbus-mode" content=mode/>
                <meta
                    name="ordernimbus-sync"
                    content=if page.sync_available { "available" } else { "absent" }
                />
                {standalone_head}
                <title>"OrderNimbus"</title>
                <link rel="icon" href="data:,"/>
                <link rel="stylesheet" href="/app/assets/app.css"/>
                {hydration}
            </head>
            {body}
        </html>
    }
}
