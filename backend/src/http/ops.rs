//! Operations endpoints: health and metrics (no authentication; they reveal no tenant data).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde_json::{Value, json};

use super::{ApiError, AppState};

/// `GET /healthz`: 200 when the store answers.
pub(super) async fn healthz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({ "status": "ok" })))
}

/// `GET /metrics`: Prometheus text.
pub(super) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// `GET /`: a plain page over the JSON API (sign in with a key, SKUs, weekly sales, CSV upload) until
/// the Leptos UI (issue #8) takes over at `/app`.
pub(super) async fn home() -> Html<&'static str> {
    Html(HOME_PAGE)
}

/// The page served at `/` and `/app`.
pub(super) const HOME_PAGE: &str = include_str!("home.html");
