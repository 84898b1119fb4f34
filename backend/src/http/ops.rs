//! Operations endpoints: health and metrics (no authentication; they reveal no tenant data).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect};
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

/// `GET /`: the UI lives at `/app`.
pub(super) async fn home() -> Redirect {
    Redirect::to("/app")
}
