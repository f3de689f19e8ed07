//! `POST /api/v1/judge`: one stateless judgment, the same JSON as `augury judge --format json`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiError, AppState, JsonBody};
use crate::analysis::ModelRef;
use crate::judge::{JudgeError, JudgeOptions, Judgment, MetricData, judge_unless};
use crate::model::{DEFAULT_MODEL, Model};
use crate::pool::PoolError;
use crate::stats::{Alternative, Method};

/// What to judge.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JudgeRequest {
    /// A model name (built-in or from `--models`) or an inline model; default `default`.
    #[serde(default)]
    pub model: Option<ModelRef>,
    /// Per metric of the model: `{"baseline": [...], "canary": [...]}` samples,
    /// `{"baseline": {"requests": n, "errors": k}, "canary": {...}}` counts, or histograms.
    /// Metrics left out are `nodata`.
    pub metrics: BTreeMap<String, MetricData>,
    /// How p-values and intervals are computed (default `auto`).
    #[serde(default)]
    pub method: Method,
    /// Replaces the alternative each metric's direction implies.
    #[serde(default)]
    pub alternative: Option<Alternative>,
}

/// Judge baseline against canary once, with no analysis and nothing stored.
#[utoipa::path(
    post,
    path = "/api/v1/judge",
    tag = "judge",
    request_body(content = JudgeRequest, example = json!({
        "model": "default",
        "metrics": {"value": {"baseline": [10.1, 11.0, 9.8], "canary": [10.4, 10.9, 9.9]}}})),
    responses(
        (status = 200, description = "The judgment: every metric's numbers, the score, the verdict and its reasons", body = Judgment),
        (status = 400, description = "Malformed JSON (`malformed_json`), a body of the wrong shape (`invalid_body`), an unknown or invalid model, or data the model refuses (`invalid_request`); `field` names the field", body = super::ErrorBody),
        (status = 401, description = "Auth is on and no valid bearer token was given (`unauthorized`)", body = super::ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"augury\"`"))),
        (status = 413, description = "Body larger than the limit (`payload_too_large`; default 1 MiB), refused as soon as a declared `Content-Length` is over it", body = super::ErrorBody),
        (status = 415, description = "The body is not declared JSON: `Content-Type` must be `application/json` (`unsupported_media_type`)", body = super::ErrorBody),
        (status = 500, description = "Judging failed unexpectedly (`internal`)", body = super::ErrorBody),
        (status = 503, description = "The judgment took longer than the request's deadline (`timeout`, default 10 s), or no judging capacity is free; retry, after `Retry-After` seconds when given", body = super::ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when the server knows"))),
    ),
    security((), ("bearer" = []))
)]
pub async fn judge(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<JudgeRequest>,
) -> Result<Response, ApiError> {
    let model = match &request.model {
        None => resolve(&state, DEFAULT_MODEL)?,
        Some(ModelRef::Name(name)) => resolve(&state, name)?,
        Some(ModelRef::Inline(value)) => Model::from_json(value.clone(), "(inline model)")
            .map_err(|e| ApiError::invalid("model", e.to_string()))?,
    };
    let options = JudgeOptions {
        method: request.method,
        alternative: request.alternative,
    };
    // Judging takes CPU in proportion to the data: it runs on the bounded judging pool,
    // off the threads serving other requests. A full pool refuses at once (503 with
    // Retry-After) instead of queueing; a request that times out drops this future, and
    // the pool then tells the judgment to stop between metrics.
    let judged = state
        .judging
        .try_run(move |stop| judge_unless(&model, &request.metrics, &options, stop))
        .await;
    match judged {
        Ok(Ok(Some(judgment))) => Ok(Json(judgment).into_response()),
        // Stopped: only when this request stopped waiting, so nobody reads this.
        Ok(Ok(None)) => Err(ApiError::internal("judging was stopped")),
        Ok(Err(e)) => Err(ApiError::invalid(
            format!("metrics.{}", metric_of(&e)),
            e.to_string(),
        )),
        Err(PoolError::Busy(busy)) => {
            let mut response = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "judging_busy",
                format!("{busy}; retry shortly"),
            )
            .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(BUSY_RETRY_AFTER_SECONDS),
            );
            Ok(response)
        }
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

/// How long a client refused for a full judging pool should wait before retrying.
const BUSY_RETRY_AFTER_SECONDS: u32 = 1;

fn resolve(state: &AppState, name: &str) -> Result<Model, ApiError> {
    state.catalog.get(name).cloned().ok_or_else(|| {
        ApiError::invalid(
            "model",
            format!(
                "unknown model `{name}` (known: {})",
                state.catalog.names().collect::<Vec<_>>().join(", ")
            ),
        )
    })
}

fn metric_of(e: &JudgeError) -> &str {
    match e {
        JudgeError::UnknownMetric { metric, .. }
        | JudgeError::WrongShape { metric, .. }
        | JudgeError::NaN { metric, .. }
        | JudgeError::Stats { metric, .. } => metric,
    }
}
