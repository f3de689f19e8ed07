//! Liveness, readiness and the daemon's own metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, AppState, ErrorBody};
use crate::telemetry::{OPENMETRICS_TEXT, PROMETHEUS_TEXT};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`
    pub status: String,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "The request took longer than its deadline (`timeout`, default 10 s); retry", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when the server knows"))),
    )
)]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the store answers a read and takes writes. Not ready while writes fail
/// (full disk, I/O error: `store_unavailable`, until a write commits again, which a probe
/// write here tries at most once a second) or once the database file is found corrupt
/// (`store_corrupt`, until it is repaired and the daemon restarted).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The store cannot read or write (`store_unavailable`), or its file is corrupt (`store_corrupt`); the message says which. Also past the request's deadline (`timeout`)", body = super::ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    match state.store.ready().await {
        Ok(()) => Ok(Json(Health {
            status: "ok".into(),
        })),
        Err(not_ready) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            if not_ready.corrupt {
                "store_corrupt"
            } else {
                "store_unavailable"
            },
            format!("not ready: {}", not_ready.reason),
        )),
    }
}

/// The daemon's own metrics: Prometheus text, or OpenMetrics when the scraper asks for it.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4 (OpenMetrics with `Accept: application/openmetrics-text`)",
            content((String = "text/plain"), (String = "application/openmetrics-text"))),
        (status = 503, description = "The request took longer than its deadline (`timeout`, default 10 s); retry", body = super::ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when the server knows"))),
    )
)]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let (body, content_type) = if openmetrics {
        (state.metrics.encode_openmetrics(), OPENMETRICS_TEXT)
    } else {
        (state.metrics.encode(), PROMETHEUS_TEXT)
    };
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}
