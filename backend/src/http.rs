//! The HTTP API: axum routers, the `Authenticated` extractor (API key, session token or browser
//! session), `ApiError`, and the gate of the UI's documents (`document_access`). Handlers are thin: they extract,
//! parse into domain types, call one use case or port method, and shape the reply.

mod auth;
mod browser;
mod error;
mod forecasts;
mod inventory;
mod ops;
mod overview;
mod products;
mod sales;
mod settings;
mod shopify;
mod uploads;
mod webhooks;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;

pub use auth::Authenticated;
pub use browser::{
    CSRF_HEADER, DocumentAccess, SIGN_IN_LINK_LIFETIME, document_access, with_frames,
};
pub use error::{ApiError, ApiQuery};

use crate::metrics::Metrics;
use crate::store::Store;

/// Largest CSV upload accepted, in bytes (2 GiB).
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The durable store.
    pub store: Arc<dyn Store>,
    /// Process metrics.
    pub metrics: Arc<Metrics>,
    /// Largest upload accepted, in bytes.
    pub max_upload_bytes: u64,
    /// Marks tenants whose forecasts new sales made stale.
    pub refresher: Arc<crate::forecast::Refresher>,
    /// The Shopify install lifecycle, when a Shopify app is configured.
    pub shopify: Option<Arc<crate::shopify::install::Lifecycle>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// The whole HTTP API: operations endpoints and `/api/v1`.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/tenant", get(auth::show_tenant))
        .route(
            "/uploads",
            get(uploads::list_uploads).post(uploads::upload_sales_csv),
        )
        .route("/uploads/{upload_id}", get(uploads::show_upload))
        .route("/sales", get(sales::list_sales))
        .route("/forecasts", get(forecasts::show_forecast))
        .route("/forecasts/summary", get(forecasts::show_summary))
        .route(
            "/inventory",
            get(inventory::list_inventory)
                .post(inventory::put_inventory)
                .layer(DefaultBodyLimit::max(inventory::MAX_INVENTORY_BYTES)),
        )
        .route("/skus", get(sales::list_skus))
        .route("/overview", get(overview::show_overview))
        .route("/products", get(products::list_products))
        .route("/products/export", get(products::export_products))
        .route(
            "/settings",
            get(settings::show_settings).put(settings::put_settings),
        )
        .route("/shop", get(shopify::show_shop))
        .route("/sync", get(shopify::show_sync))
        .route("/webhooks", get(webhooks::list_deliveries))
        .route(
            "/webhooks/{webhook_id}/replay",
            axum::routing::post(webhooks::replay_delivery),
        );
    Router::new()
        .route("/", get(ops::home))
        .route(
            "/app/sign-in",
            get(browser::show_sign_in).post(browser::sign_in),
        )
        .route("/app/sign-out", axum::routing::post(browser::sign_out))
        .route("/auth", get(shopify::begin_install))
        .route("/auth/callback", get(shopify::complete_install))
        .route("/auth/session-token", get(shopify::bounce))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .nest("/api/v1", api)
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            record_metrics,
        ))
        .with_state(state)
}

async fn record_metrics(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    state.metrics.record_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
