//! `POST /api/v1/uploads` (a CSV body, streamed), `GET /api/v1/uploads[/{id}]`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio_util::io::{StreamReader, SyncIoBridge};

use super::{ApiError, ApiQuery, AppState, Authenticated};
use crate::csv::DateOrder;
use crate::import::{self, ImportError, ImportRequest};
use crate::store::ImportReport;

/// Content types a CSV upload may carry (browsers send the Excel one for `.csv` on Windows).
const CSV_TYPES: [&str; 6] = [
    "text/csv",
    "application/csv",
    "text/plain",
    "application/octet-stream",
    "application/vnd.ms-excel",
    "text/comma-separated-values",
];

/// Query parameters of `POST /api/v1/uploads`.
#[derive(Debug, Deserialize)]
pub(super) struct UploadParams {
    filename: Option<String>,
    date_order: Option<String>,
}

/// Query parameters of `GET /api/v1/uploads`.
#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    limit: Option<u32>,
}

/// `POST /api/v1/uploads`: imports the CSV body; 201 with the report.
pub(super) async fn upload_sales_csv(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    ApiQuery(params): ApiQuery<UploadParams>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    if let Some(content_type) = &content_type
        && !CSV_TYPES.contains(&content_type.as_str())
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the body must be a CSV file (Content-Type: text/csv), not {content_type}"),
        ));
    }
    let limit = state.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    let date_order = params
        .date_order
        .as_deref()
        .map(DateOrder::parse)
        .transpose()
        .map_err(|message| ApiError::invalid_field("date_order", message))?
        .unwrap_or_default();

    let received = Arc::new(AtomicU64::new(0));
    let over_limit = Arc::new(AtomicBool::new(false));
    let stream = {
        let received = Arc::clone(&received);
        let over_limit = Arc::clone(&over_limit);
        body.into_data_stream()
            .map_err(std::io::Error::other)
            .and_then(move |chunk| {
                let total =
                    received.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
                let result = if total > limit {
                    over_limit.store(true, Ordering::Relaxed);
                    Err(std::io::Error::other("the upload is larger than the limit"))
                } else {
                    Ok(chunk)
                };
                std::future::ready(result)
            })
    };
    let input = SyncIoBridge::new(StreamReader::new(stream));
    let request = ImportRequest {
        filename: params.filename,
        date_order,
    };
    match import::import_sales(Arc::clone(&state.store), &tenant, input, request).await {
        Ok(report) => {
            state.metrics.record_import(
                report.rows_imported,
                report.rows_duplicate,
                report.rows_updated,
                report.rows_rejected,
            );
            if report.rows_imported + report.rows_updated > 0 {
                state.refresher.mark_stale(&tenant.id);
            }
            Ok((StatusCode::CREATED, Json(report)))
        }
        Err(ImportError::Refused {
            report,
            reason,
            looked_for,
        }) => {
            let looked_for: serde_json::Map<String, serde_json::Value> = looked_for
                .into_iter()
                .map(|(format, columns)| (format.to_owned(), json!(columns)))
                .collect();
            Err(
                ApiError::new(StatusCode::BAD_REQUEST, "unrecognised_file", reason)
                    .with("upload_id", report.upload_id)
                    .with("looked_for", looked_for),
            )
        }
        Err(ImportError::Interrupted { report, reason }) => {
            if report.rows_imported + report.rows_updated > 0 {
                state.refresher.mark_stale(&tenant.id);
            }
            if over_limit.load(Ordering::Relaxed) {
                return Err(too_large(limit).with("upload_id", report.upload_id));
            }
            Err(
                ApiError::new(StatusCode::BAD_REQUEST, "upload_interrupted", reason)
                    .with("upload_id", report.upload_id.clone())
                    .with("rows_imported", report.rows_imported),
            )
        }
        Err(ImportError::Store(error)) => Err(error.into()),
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the upload is larger than {limit} bytes"),
    )
}

/// `GET /api/v1/uploads?limit=`: upload history, newest first.
pub(super) async fn list_uploads(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    ApiQuery(params): ApiQuery<ListParams>,
) -> Result<Json<Vec<ImportReport>>, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            "limit must be between 1 and 1000",
        ));
    }
    Ok(Json(state.store.uploads(&tenant.id, limit).await?))
}

/// `GET /api/v1/uploads/{upload_id}`: one upload's report.
pub(super) async fn show_upload(
    State(state): State<AppState>,
    Authenticated(tenant): Authenticated,
    Path(upload_id): Path<String>,
) -> Result<Json<ImportReport>, ApiError> {
    Ok(Json(state.store.upload(&tenant.id, &upload_id).await?))
}
