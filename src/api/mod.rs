//! The daemon's HTTP API: analyses and their verdicts, stateless judgments, the Flagger
//! gate, health, the daemon's own metrics and the OpenAPI document.
//!
//! [`router`] builds an `axum::Router` over an [`AppState`]; `augury serve` mounts it.
//! Routes are in files by concern: `analyses` (create, list, detail, verdict, cancel),
//! `judge`, `gates` (Flagger), `health` (`/healthz`, `/readyz`, `/metrics`), `openapi`.
//!
//! Invariants: every response to a refused request is the JSON of [`error::ErrorBody`]
//! with the most precise 4xx; every route is bounded in body size and time; the API
//! changes analyses only through the store, whose change listeners (the runner, the
//! status gauge, the verdict cache) hear of it; so what it shows is
//! what a restart finds.

pub mod analyses;
pub mod auth;
pub mod error;
pub mod gates;
pub mod health;
pub mod judge;
pub mod kayenta;
pub mod openapi;

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::analysis::{AnalysisRequest, RequestError, ValidRequest};
use crate::ingest::prometheus::PackCatalog;
use crate::model::{Catalog, Source};
use crate::net::ListenerLimits;
use crate::notify::Notifiers;
use crate::pool::JudgePool;
use crate::store::{Change, Store};
use crate::telemetry::Metrics;
use crate::windows::Windows;

pub use analyses::VerdictCache;
pub use auth::{Access, Tokens};
pub use error::{ApiError, ErrorBody};

/// Bounds every request is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body accepted (413 beyond). Default 1 MiB.
    pub body_bytes: usize,
    /// Longest a request may take, reading its body included (503 beyond). Default 10 s,
    /// which is also what Flagger and Argo Rollouts wait by default.
    pub request_timeout: Duration,
    /// The API listener's connection cap, header-read and idle timeouts (defaults 1024
    /// connections, 10 s, 60 s).
    pub listener: ListenerLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(10),
            listener: ListenerLimits::default(),
        }
    }
}

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct Shared {
    pub store: Store,
    pub catalog: Arc<Catalog>,
    pub metrics: Arc<Metrics>,
    /// Tokens accepted (`api::auth`); `None` turns auth off.
    pub auth: Option<Tokens>,
    pub limits: Limits,
    /// Rendered verdicts, so the route controllers poll rarely touches the database.
    pub verdicts: Arc<VerdictCache>,
    /// Configured notifiers: a new analysis's `notify` names are checked against them.
    pub notifiers: Arc<Notifiers>,
    /// The query packs, when Prometheus is configured (`None`: it is not, and a model
    /// whose metrics read Prometheus is refused).
    pub packs: Option<Arc<PackCatalog>>,
    /// Where `POST /api/v1/judge` runs its judgment (bounded; 503 when full).
    pub judging: Arc<JudgePool>,
    /// The OTLP windows, whose watch limits a create is checked against (`None`: not
    /// checked, as in tests of the API alone).
    pub windows: Option<Arc<Windows>>,
}

/// The state behind the router: cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    /// State with no auth and default [`Limits`].
    pub fn new(store: Store, catalog: Arc<Catalog>, metrics: Arc<Metrics>) -> AppState {
        AppState::with_options(store, catalog, metrics, None, Limits::default())
    }

    /// `auth`: the tokens accepted (`api::auth`); `None` or no token turns auth off.
    pub fn with_options(
        store: Store,
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
        auth: Option<Tokens>,
        limits: Limits,
    ) -> AppState {
        let auth = auth.filter(|tokens| !tokens.is_empty());
        let verdicts = Arc::new(VerdictCache::default());
        let cache = Arc::clone(&verdicts);
        let judging = Arc::new(JudgePool::new(
            crate::pool::default_size(),
            metrics.judge_pool_gauges(),
        ));
        store.on_change(Arc::new(move |c: &Change<'_>| cache.invalidate(c.id)));
        AppState(Arc::new(Shared {
            store,
            catalog,
            metrics,
            auth,
            limits,
            verdicts,
            notifiers: Arc::default(),
            packs: None,
            judging,
            windows: None,
        }))
    }

    /// The same state judging `POST /api/v1/judge` on `pool` (shared with the runner).
    pub fn with_judge_pool(mut self, pool: Arc<JudgePool>) -> AppState {
        Arc::make_mut(&mut self.0).judging = pool;
        self
    }

    /// The same state refusing creates the OTLP `windows` have no room to watch.
    pub fn with_windows(mut self, windows: Arc<Windows>) -> AppState {
        Arc::make_mut(&mut self.0).windows = Some(windows);
        self
    }

    /// The same state with these notifiers configured.
    pub fn with_notifiers(mut self, notifiers: Arc<Notifiers>) -> AppState {
        Arc::make_mut(&mut self.0).notifiers = notifiers;
        self
    }

    /// The same state for a replica among several sharing the database: verdicts are
    /// read from the store at every poll, since other replicas change them.
    pub fn among_replicas(mut self) -> AppState {
        Arc::make_mut(&mut self.0).verdicts = Arc::new(VerdictCache::off());
        self
    }

    /// The same state with Prometheus configured, its queries in `packs`.
    pub fn with_prometheus(mut self, packs: Arc<PackCatalog>) -> AppState {
        Arc::make_mut(&mut self.0).packs = Some(packs);
        self
    }

    /// Validates `request` completely: against its model (`AnalysisRequest::validate`),
    /// then its model's Prometheus metrics against this daemon (Prometheus configured,
    /// every pack and query there, feeding the metric's kind, with the scope it needs).
    /// A model named from the catalog was checked at start; an inline one is checked
    /// here, so an analysis that could never get data is refused, not accepted.
    pub fn validate(&self, request: AnalysisRequest) -> Result<ValidRequest, RequestError> {
        let valid = request.validate(&self.catalog)?;
        let field = |f: &str| format!("model.{f}");
        let prometheus = valid
            .model
            .metrics
            .iter()
            .position(|m| matches!(m.source, Some(Source::Prometheus(_))));
        match (&self.packs, prometheus) {
            (_, None) => Ok(valid),
            (None, Some(i)) => Err(RequestError {
                field: field(&format!("metrics[{i}].source.prometheus")),
                message: format!(
                    "metric `{}` reads Prometheus, and this daemon has no Prometheus \
                     configured (--prometheus-url or `prometheus:` in the config)",
                    valid.model.metrics[i].name
                ),
            }),
            (Some(packs), Some(_)) => {
                match packs.check_model(&valid.model, "").into_iter().next() {
                    None => Ok(valid),
                    Some(p) => Err(RequestError {
                        field: field(&p.field),
                        message: p.reason,
                    }),
                }
            }
        }
    }
}

/// Route templates, as `augury_http_requests_total{route}` shows them.
pub mod routes {
    pub const ANALYSES: &str = "/api/v1/analyses";
    pub const ANALYSIS: &str = "/api/v1/analyses/{id}";
    pub const VERDICT: &str = "/api/v1/analyses/{id}/verdict";
    pub const JUDGE: &str = "/api/v1/judge";
    pub const FLAGGER: &str = "/api/v1/gates/flagger";
    pub const OPENAPI: &str = "/api/v1/openapi.json";
    pub const METRICS: &str = "/metrics";
    pub const HEALTHZ: &str = "/healthz";
    pub const READYZ: &str = "/readyz";

    pub const ALL: [&str; 9] = [
        ANALYSES, ANALYSIS, VERDICT, JUDGE, FLAGGER, OPENAPI, METRICS, HEALTHZ, READYZ,
    ];

    /// The route template a matched path is, as a `'static` label.
    pub fn template(matched: &str) -> &'static str {
        ALL.into_iter()
            .chain(super::kayenta::routes::ALL)
            .find(|r| *r == matched)
            .unwrap_or("unmatched")
    }
}

/// The API, ready to serve.
pub fn router(state: AppState) -> Router {
    use routes::*;
    Router::new()
        .route(ANALYSES, get(analyses::list).post(analyses::create))
        .route(ANALYSIS, get(analyses::detail).delete(analyses::cancel))
        .route(VERDICT, get(analyses::verdict))
        .route(JUDGE, post(judge::judge))
        .route(FLAGGER, post(gates::flagger))
        .route(OPENAPI, get(openapi::document))
        .route(METRICS, get(health::metrics))
        .route(HEALTHZ, get(health::healthz))
        .route(READYZ, get(health::readyz))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.limits.body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            declared_length,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn unknown_route(request: Request) -> ApiError {
    ApiError::not_found(format!(
        "no route {} {} (see /api/v1/openapi.json)",
        request.method(),
        request.uri().path()
    ))
}

async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

/// Past this many declared bytes an oversized body is not read at all.
const DRAIN_MAX_BYTES: u64 = 16 << 20;

/// Refuses (413) a request whose declared `Content-Length` is past the body limit
/// without buffering or parsing the body. A body of at most [`DRAIN_MAX_BYTES`] is read
/// and discarded first (within the request's deadline): answering while the client is
/// still sending would close the connection with its bytes unread, and the reset that
/// follows can reach the client before the answer does. A larger declared length is
/// answered at once: that client is not owed the wait.
async fn declared_length(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(len) if len > state.limits.body_bytes as u64 => {
            if len <= DRAIN_MAX_BYTES {
                let mut body = request.into_body();
                while let Some(Ok(_)) = http_body_util::BodyExt::frame(&mut body).await {}
            }
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!(
                    "request body of {len} bytes is larger than the limit of {} bytes",
                    state.limits.body_bytes
                ),
            )
            .into_response()
        }
        _ => next.run(request).await,
    }
}

/// Bounds the time of every request, reading its body included.
async fn deadline(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.limits.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            format!(
                "the request took longer than {}",
                humantime::format_duration(limit)
            ),
        )
        .into_response(),
    }
}

/// Counts every request by route template and status, and times it. Each request is
/// also a `server` span (exported when the daemon exports its own traces).
async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| routes::template(p.as_str()));
    let method = request.method().clone();
    let span = tracing::info_span!(
        "request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    state.metrics.http_request(route, status, started.elapsed());
    response
}

/// A JSON request body: 415 unless its `Content-Type` is JSON ([`is_json`]), refused
/// with the errors of [`error::parse_json`], 413 past the body limit, and 400 when the
/// body cannot be read.
///
/// The content type is required on every route that takes a body (the Flagger gate
/// included): a browser sends a cross-site POST without a CORS preflight only with a
/// form or plain-text content type (or none), so refusing those keeps a web page from
/// creating or cancelling analyses on a daemon without auth. The clients the daemon
/// serves send it: Flagger's webhook client sets `Content-Type: application/json` on
/// every call, and Argo Rollouts' Web metric provider sets it whenever the body is a
/// `jsonBody` (a plain-text `body:` needs the header listed in `headers:`, as the
/// example template does).
pub struct JsonBody<T>(pub T);

/// Whether a `Content-Type` is JSON: `application/json` or `application/<x>+json`, any
/// case, with or without parameters (`; charset=utf-8`).
pub fn is_json(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = media.split_once('/') else {
        return false;
    };
    let subtype = subtype.to_ascii_lowercase();
    kind.eq_ignore_ascii_case("application")
        && (subtype == "json" || (subtype.len() > 5 && subtype.ends_with("+json")))
}

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = request.headers().get(header::CONTENT_TYPE);
        if !content_type
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json)
        {
            let given = match content_type {
                None => "no Content-Type".to_string(),
                Some(v) => format!("Content-Type {:?}", String::from_utf8_lossy(v.as_bytes())),
            };
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "this route takes a JSON body: send `Content-Type: application/json` (got {given})"
                ),
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!(
                        "request body is larger than the limit of {} bytes",
                        state.limits.body_bytes
                    ),
                )
            } else {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "unreadable_body",
                    format!("cannot read the request body: {e}"),
                )
            }
        })?;
        error::parse_json(&bytes).map(JsonBody)
    }
}
