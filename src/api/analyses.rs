//! `/api/v1/analyses`: create (idempotent on the key), list, detail, verdict, cancel.
//!
//! The verdict route is what controllers and CI poll, so it is served from
//! [`VerdictCache`]: the rendered JSON of each analysis, kept until the store reports a
//! change to that analysis. A poll costs a hash lookup and a copy, no database read.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{PathParam, QueryParams};
use super::{ApiError, AppState, JsonBody};
use crate::analysis::view::{Progress, VerdictView, elapsed_seconds, progress};
use crate::analysis::{Analysis, AnalysisRequest, Interval, Scope, Status, ValidRequest};
use crate::clock::{now_ms, rfc3339};
use crate::judge::{Judgment, MetricData, Verdict};
use crate::model::{EarlyPass, Model};
use crate::notify::{DeliveryState, Event, Notification, Recipient};
use crate::store::{Cursor, Store, Summary};
use crate::windows::{WindowsError, watches_needed};

/// One line of the list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnalysisSummary {
    pub id: String,
    pub key: String,
    /// Name of the model.
    pub model: String,
    pub status: Status,
    /// The baseline's scope, as requested.
    pub baseline: Scope,
    /// The canary's scope, as requested.
    pub canary: Scope,
    pub score: Option<f64>,
    pub verdict: Option<Verdict>,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub progress: Progress,
}

impl AnalysisSummary {
    fn of(s: Summary, now_ms: i64) -> AnalysisSummary {
        AnalysisSummary {
            progress: Progress {
                intervals: s.intervals,
                planned: s.planned_intervals(),
                elapsed_seconds: elapsed_seconds(s.created_ms, s.decided_ms.unwrap_or(now_ms)),
            },
            created_at: rfc3339(s.created_ms),
            decided_at: s.decided_ms.map(rfc3339),
            id: s.id,
            key: s.key,
            model: s.model,
            status: s.status,
            baseline: s.baseline,
            canary: s.canary,
            score: s.score,
            verdict: s.verdict,
        }
    }
}

/// A stored analysis that cannot be read back: its id and what is wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UnreadableView {
    pub id: String,
    /// The field at fault and why, e.g. `status: unknown status `paused``.
    pub reason: String,
}

/// One page of the list: `GET /api/v1/analyses`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnalysisList {
    /// Oldest first (by creation time, then id).
    pub analyses: Vec<AnalysisSummary>,
    /// Analyses of this page whose stored record cannot be read; the others are served.
    /// Their detail answers 500 `corrupt_record` naming the field.
    pub unreadable: Vec<UnreadableView>,
    /// Pass as `?cursor=` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Analyses per page when `limit` is not given.
pub const LIST_DEFAULT_LIMIT: u32 = 100;
/// Most analyses per page; a larger `limit` is refused.
pub const LIST_MAX_LIMIT: u32 = 1000;

/// One judged interval, in the detail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IntervalView {
    pub seq: u32,
    pub start: String,
    pub end: String,
    /// The judgment over everything gathered up to the end of this interval: every
    /// metric's numbers (summaries, test statistic, p-value, shift, effect sizes).
    pub judgment: Judgment,
    /// What arrived during this interval alone, per metric (only with `?data=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<BTreeMap<String, MetricData>>,
}

impl IntervalView {
    fn of(i: Interval, with_data: bool) -> IntervalView {
        IntervalView {
            seq: i.seq,
            start: rfc3339(i.start_ms),
            end: rfc3339(i.end_ms),
            judgment: i.judgment,
            data: with_data.then_some(i.data),
        }
    }
}

/// Everything about one analysis: `GET /api/v1/analyses/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AnalysisDetail {
    pub id: String,
    pub key: String,
    pub status: Status,
    /// The request as it was made.
    pub request: AnalysisRequest,
    /// The model the analysis judges with, as resolved when it was created.
    pub model: Model,
    pub interval_seconds: f64,
    pub lifetime_seconds: f64,
    pub created_at: String,
    pub decided_at: Option<String>,
    pub score: Option<f64>,
    /// The latest judgment.
    pub judgment: Option<Judgment>,
    pub progress: Progress,
    /// Every judged interval, in order.
    pub intervals: Vec<IntervalView>,
    /// Notifications about this analysis and how their delivery went, oldest first.
    pub notifications: Vec<NotificationView>,
}

/// One notification (an outbox row): to which notifier, about what, and how delivery
/// went. Never holds a secret: URLs and keys stay in the config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NotificationView {
    /// The notifier's name in the config file.
    pub notifier: String,
    pub event: Event,
    /// `pending` (not delivered yet), `delivered`, or `failed` (given up).
    pub state: DeliveryState,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// HTTP status of the last answer; null when none came.
    pub last_status: Option<u16>,
    /// Why the last attempt did not deliver.
    pub last_error: Option<String>,
    pub created_at: String,
    /// When it was delivered or given up.
    pub done_at: Option<String>,
    /// While pending: when the next attempt is due.
    pub next_attempt_at: Option<String>,
    /// For `superseded`: the passing analysis that superseded this one.
    pub superseded_by: Option<String>,
}

impl NotificationView {
    fn of(n: Notification) -> NotificationView {
        NotificationView {
            next_attempt_at: (n.state == DeliveryState::Pending)
                .then(|| rfc3339(n.next_attempt_ms)),
            notifier: n.notifier,
            event: n.event,
            state: n.state,
            attempts: n.attempts,
            last_status: n.last_status,
            last_error: n.last_error,
            created_at: rfc3339(n.created_ms),
            done_at: n.done_ms.map(rfc3339),
            superseded_by: n.cause,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only analyses in this status: running, pass, fail, inconclusive, cancelled (empty:
    /// any).
    #[param(inline, value_type = Option<Status>)]
    pub status: Option<String>,
    /// Analyses per page, 1 to 1000 (empty: the default, 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Where to start: the `next_cursor` of the previous page, as given (opaque; any
    /// other value is refused).
    #[param(pattern = r"^([+-]?[0-9]{1,18}\.([0-7][0-9a-fA-F])*)?$")]
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DetailQuery {
    /// Include each interval's raw data (samples, counts, histograms): `true` or `false`.
    #[serde(default)]
    #[param(value_type = Option<bool>)]
    pub data: bool,
}

/// The `Location` of an analysis.
fn location(id: &str) -> String {
    format!("/api/v1/analyses/{id}")
}

/// Start an analysis. Idempotent on `key`: the same key and request give back the same
/// analysis (200); a new key creates one (201).
#[utoipa::path(
    post,
    path = "/api/v1/analyses",
    tag = "analyses",
    request_body(content = AnalysisRequest, example = json!({
        "key": "checkout@1.4.2", "model": "http-red",
        "baseline": {"service.name": "checkout", "service.version": "1.4.1"},
        "canary": {"service.name": "checkout", "service.version": "1.4.2"},
        "interval": "30s", "lifetime": "10m"})),
    responses(
        (status = 201, description = "Created", body = VerdictView, headers(("Location" = String, description = "`/api/v1/analyses/{id}`")),
            links(
                ("GetAnalysis" = (operation_id = "detail", parameters(("id" = "$response.body#/id")), description = "The analysis in full")),
                ("GetVerdict" = (operation_id = "verdict", parameters(("id" = "$response.body#/id")), description = "Its verdict, what controllers poll")),
                ("CancelAnalysis" = (operation_id = "cancel", parameters(("id" = "$response.body#/id")), description = "Cancel it")),
            )),
        (status = 200, description = "An analysis with this key exists, made from the same request; here it is", body = VerdictView, headers(("Location" = String, description = "`/api/v1/analyses/{id}`")),
            links(
                ("GetAnalysis" = (operation_id = "detail", parameters(("id" = "$response.body#/id")), description = "The analysis in full")),
                ("GetVerdict" = (operation_id = "verdict", parameters(("id" = "$response.body#/id")), description = "Its verdict, what controllers poll")),
                ("CancelAnalysis" = (operation_id = "cancel", parameters(("id" = "$response.body#/id")), description = "Cancel it")),
            )),
        (status = 400, description = "Malformed JSON (`malformed_json`), a body of the wrong shape (`invalid_body`), or a request the model or the daemon refuses (`invalid_request`); `field` names the field", body = super::ErrorBody),
        (status = 401, description = "Auth is on and no valid bearer token was given (`unauthorized`)", body = super::ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"augury\"`"))),
        (status = 409, description = "The key names an analysis made from a different request (`key_conflict`)", body = super::ErrorBody),
        (status = 413, description = "Body larger than the limit (`payload_too_large`; default 1 MiB), refused as soon as a declared `Content-Length` is over it", body = super::ErrorBody),
        (status = 415, description = "The body is not declared JSON: `Content-Type` must be `application/json` (`unsupported_media_type`)", body = super::ErrorBody),
        (status = 500, description = "The stored analysis cannot be read back (`corrupt_record`, naming the field) or the database file is corrupt (`store_corrupt`)", body = super::ErrorBody),
        (status = 503, description = "The request took longer than its deadline (`timeout`, default 10 s) or the database did not answer (`store_unavailable`); retry, after `Retry-After` seconds when given", body = super::ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when the server knows"))),
    ),
    security((), ("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<AnalysisRequest>,
) -> Result<Response, ApiError> {
    let valid = state.validate(request)?;
    let recipients = state
        .notifiers
        .recipients(valid.request.notify.as_deref())?;
    let (analysis, created) = match create_watched(&state, &valid, &recipients).await? {
        Ok(made) => made,
        Err(refused) => return Ok(refused),
    };
    if !created && !same_request(&analysis, &valid) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "key_conflict",
            format!(
                "key `{}` already names analysis {} created from a different request; \
                 use a new key for a new analysis",
                analysis.key, analysis.id
            ),
        )
        .with_field("key"));
    }
    if !created {
        state.verdicts.asked(&state.store, &analysis, now_ms());
    }
    Ok(created_response(&analysis, created))
}

/// Creates the analysis `valid` asks for (or finds the one its key already made), with
/// the OTLP watches it will hold set aside first: a create the windows have no room for
/// is refused (`Err` with the answer) instead of accepted and starved. A key that
/// already names an analysis needs no new watches, so it is answered even when the
/// budget is spent. Shared by the create route and the Flagger gate.
pub(super) async fn create_watched(
    state: &AppState,
    valid: &ValidRequest,
    recipients: &[Recipient],
) -> Result<Result<(Analysis, bool), Response>, ApiError> {
    let reservation = match &state.windows {
        None => None,
        Some(windows) => match windows.reserve(watches_needed(&valid.model)) {
            Ok(r) => Some(r),
            Err(e) => {
                if let Some(existing) = state.store.get_by_key(&valid.request.key).await? {
                    return Ok(Ok((existing, false)));
                }
                return Ok(Err(watch_refusal(e)));
            }
        },
    };
    let (analysis, created) = state
        .store
        .create_notifying(valid, recipients, now_ms())
        .await?;
    if let Some(r) = reservation
        && created
    {
        r.assign(&analysis.id);
    }
    Ok(Ok((analysis, created)))
}

/// How long a client refused for the spent watch budget should wait before retrying.
const WATCH_RETRY_AFTER_SECONDS: u32 = 30;

/// The answer to a create the OTLP windows cannot watch: 400 when the model alone needs
/// more watches than one analysis may hold, 503 with `Retry-After` when the daemon's
/// budget is spent (running analyses give theirs back when they end).
fn watch_refusal(e: WindowsError) -> Response {
    match e {
        WindowsError::BudgetSpent { .. } => {
            let mut response = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "watch_budget_spent",
                e.to_string(),
            )
            .with_field("model")
            .into_response();
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(WATCH_RETRY_AFTER_SECONDS),
            );
            response
        }
        _ => ApiError::invalid("model", e.to_string()).into_response(),
    }
}

/// The answer to a create: 201 with `Location` when new, 200 when the key existed.
fn created_response(analysis: &Analysis, created: bool) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = (status, Json(VerdictView::of(analysis, now_ms()))).into_response();
    if let Ok(v) = HeaderValue::from_str(&location(&analysis.id)) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

/// Whether a repeated create asks for what the stored analysis is. Durations compare by
/// value, so `60s` and `1m` are the same request.
fn same_request(stored: &Analysis, valid: &crate::analysis::ValidRequest) -> bool {
    let (s, request) = (&stored.request, &valid.request);
    s.model == request.model
        && s.baseline == request.baseline
        && s.canary == request.canary
        && s.notify == request.notify
        && same_early_pass(s.early_pass.as_ref(), request.early_pass.as_ref())
        && s.abandon_after == request.abandon_after
        && same_window(s, request)
        && stored.interval_ms == valid.interval.as_millis() as u64
        && stored.lifetime_ms == valid.lifetime.as_millis() as u64
}

/// Whether two requests ask for the same window in the past, by value: `10:00:00Z` is
/// `11:00:00+01:00`, `60s` is `1m`. Both were validated, so every value parses.
fn same_window(a: &crate::analysis::AnalysisRequest, b: &crate::analysis::AnalysisRequest) -> bool {
    use crate::analysis::request::{parse_duration, parse_time};
    let time = |t: &Option<String>| t.as_deref().map(|t| parse_time("", t).ok());
    let step = |d: &Option<String>| d.as_deref().map(|d| parse_duration("", d).ok());
    time(&a.start) == time(&b.start)
        && time(&a.end) == time(&b.end)
        && step(&a.step) == step(&b.step)
}

/// Whether two requests' `early_pass` ask for the same: both absent, or minimum
/// durations of equal value (`300s` and `5m` are the same).
fn same_early_pass(a: Option<&EarlyPass>, b: Option<&EarlyPass>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => match (a.min_duration(), b.min_duration()) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        },
        _ => false,
    }
}

/// List analyses, oldest first, a page at a time: summaries only (the detail route has
/// everything). Follow `next_cursor` until it is null.
#[utoipa::path(
    get,
    path = "/api/v1/analyses",
    tag = "analyses",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = AnalysisList),
        (status = 400, description = "Unknown status, a limit out of range, or a cursor this API did not give (`invalid_query`, naming the parameter)", body = super::ErrorBody),
        (status = 500, description = "The database file is corrupt (`store_corrupt`)", body = super::ErrorBody),
        (status = 503, description = "The request took longer than its deadline (`timeout`, default 10 s) or the database did not answer (`store_unavailable`); retry, after `Retry-After` seconds when given", body = super::ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when the server knows"))),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<AnalysisList>, ApiError> {
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                format!(
                    "unknown status `{s}` (use running, pass, fail, inconclusive or cancelled)"
                ),
            )
            .with_field("status")
        })?),
    };
    let invalid = |field: &str, message: String| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", message).with_field(field)
    };
    let limit = match query.limit.as_deref() {
        None | Some("") => LIST_DEFAULT_LIMIT,
        Some(l) => match l.parse::<u32>() {
            Ok(n) if (1..=LIST_MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(invalid(
                    "limit",
                    format!("limit `{l}` is not a number from 1 to {LIST_MAX_LIMIT}"),
                ));
            }
        },
    };
    let cursor = match query.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => Some(Cursor::decode(c).ok_or_else(|| {
            invalid(
                "cursor",
                format!("cursor `{c}` is not one this API gave (use a page's `next_cursor`)"),
            )
        })?),
    };
    let page = state
        .store
        .list_page(status, cursor.as_ref(), limit)
        .await?;
    let now = now_ms();
    Ok(Json(AnalysisList {
        analyses: page
            .analyses
            .into_iter()
            .map(|s| AnalysisSummary::of(s, now))
            .collect(),
        unreadable: page
            .unreadable
            .into_iter()
            .map(|u| UnreadableView {
                id: u.id,
                reason: u.reason,
            })
            .collect(),
        next_cursor: page.next.as_ref().map(Cursor::encode),
    }))
}

/// Everything about an analysis: its request, model, latest judgment and every interval.
#[utoipa::path(
    get,
    path = "/api/v1/analyses/{id}",
    tag = "analyses",
    params(("id" = String, Path, description = "Analysis id"), DetailQuery),
    responses(
        (status = 200, description = "The analysis", body = AnalysisDetail),
        (status = 400, description = "A query parameter that is not valid (`invalid_query`)", body = super::ErrorBody),
        (status = 404, description = "No such analysis (`not_found`)", body = super::ErrorBody),
        (status = 500, description = "The stored analysis cannot be read back (`corrupt_record`, naming the field) or the database file is corrupt (`store_corrupt`)", body = super::ErrorBody),
        (status = 503, description = "The request took longer than its deadline (`timeout`, default 10 s) or the database did not answer (`store_unavailable`); retry, after `Retry-After` seconds when given", body = super::ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when the server knows"))),
    )
)]
pub async fn detail(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
    QueryParams(query): QueryParams<DetailQuery>,
) -> Result<Json<AnalysisDetail>, ApiError> {
    let a = state
        .store
        .get(&id)
        .await?
        .ok_or_else(|| ApiError::no_analysis(&id))?;
    state.verdicts.asked(&state.store, &a, now_ms());
    let intervals = state.store.intervals(&id).await?;
    let notifications = state.store.notifications(&id).await?;
    let progress = progress(&a, now_ms());
    Ok(Json(AnalysisDetail {
        interval_seconds: a.interval_ms as f64 / 1000.0,
        lifetime_seconds: a.lifetime_ms as f64 / 1000.0,
        created_at: rfc3339(a.created_ms),
        decided_at: a.decided_ms.map(rfc3339),
        score: a.judgment.as_ref().map(|j| j.score).or(a.score),
        progress,
        intervals: intervals
            .into_iter()
            .map(|i| IntervalView::of(i, query.data))
            .collect(),
        notifications: notifications
            .into_iter()
            .map(NotificationView::of)
            .collect(),
        id: a.id,
        key: a.key,
        status: a.status,
        request: a.request,
        model: a.model,
        judgment: a.judgment,
    }))
}

/// The verdict: what controllers and CI poll. Small and served from memory.
///
/// For Argo Rollouts' Web provider, `jsonPath: "{$.status}"` gives `running`, `pass`,
/// `fail`, `inconclusive` or `cancelled`.
#[utoipa::path(
    get,
    path = "/api/v1/analyses/{id}/verdict",
    tag = "analyses",
    params(("id" = String, Path, description = "Analysis id")),
    responses(
        (status = 200, description = "The verdict", body = VerdictView),
        (status = 404, description = "No such analysis (`not_found`)", body = super::ErrorBody),
        (status = 500, description = "The stored analysis cannot be read back (`corrupt_record`, naming the field) or the database file is corrupt (`store_corrupt`)", body = super::ErrorBody),
        (status = 503, description = "The request took longer than its deadline (`timeout`, default 10 s) or the database did not answer (`store_unavailable`); retry, after `Retry-After` seconds when given", body = super::ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when the server knows"))),
    )
)]
pub async fn verdict(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Response, ApiError> {
    let body = state.verdicts.body(&state.store, &id, now_ms()).await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response())
}

/// Cancel a running analysis. Cancelling a cancelled analysis again is a no-op (200);
/// one already decided cannot be cancelled (409).
#[utoipa::path(
    delete,
    path = "/api/v1/analyses/{id}",
    tag = "analyses",
    params(("id" = String, Path, description = "Analysis id")),
    responses(
        (status = 200, description = "Cancelled (now or before)", body = VerdictView),
        (status = 401, description = "Auth is on and no valid bearer token was given (`unauthorized`)", body = super::ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"augury\"`"))),
        (status = 404, description = "No such analysis (`not_found`)", body = super::ErrorBody),
        (status = 409, description = "Already decided (`already_decided`)", body = super::ErrorBody),
        (status = 500, description = "The stored analysis cannot be read back (`corrupt_record`, naming the field) or the database file is corrupt (`store_corrupt`)", body = super::ErrorBody),
        (status = 503, description = "The request took longer than its deadline (`timeout`, default 10 s) or the database did not answer (`store_unavailable`); retry, after `Retry-After` seconds when given", body = super::ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when the server knows"))),
    ),
    security((), ("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    PathParam(id): PathParam<String>,
) -> Result<Json<VerdictView>, ApiError> {
    let now = now_ms();
    // The runner, the status gauge and the verdict cache hear of the cancel from the
    // store; nothing else to tell here.
    let (a, _) = state
        .store
        .cancel(&id, now)
        .await?
        .ok_or_else(|| ApiError::no_analysis(&id))?;
    match a.status {
        Status::Cancelled => Ok(Json(VerdictView::of(&a, now))),
        decided => Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_decided",
            format!(
                "analysis {id} was already decided ({}); there is nothing to cancel",
                decided.as_str()
            ),
        )),
    }
}

/// Most verdicts kept rendered; past it the cache starts over (a miss costs one read).
const CACHE_CAPACITY: usize = 16_384;

/// A verdict rendered once: the JSON up to the elapsed time, which is added per poll
/// while the analysis runs.
#[derive(Debug)]
struct Rendered {
    /// The whole body of a decided analysis, or everything before the elapsed seconds.
    head: Bytes,
    /// While running: the creation time that elapsed seconds count from.
    running_since_ms: Option<i64>,
    /// Running with `abandon_after`: a poll is noted as an ask.
    abandonable: bool,
}

const ELAPSED_TAIL: &[u8] = b"0.0}}";

impl Rendered {
    fn of(a: &Analysis) -> Result<Rendered, ApiError> {
        let running = a.status == Status::Running;
        let mut view = VerdictView::of(a, a.created_ms);
        if running {
            view.progress.elapsed_seconds = 0.0;
        }
        let mut head = serde_json::to_vec(&view).map_err(|e| ApiError::internal(e.to_string()))?;
        if running {
            // `progress.elapsed_seconds` is the last value in the document (see
            // `VerdictView`), so what precedes it does not change between polls.
            if !head.ends_with(ELAPSED_TAIL) {
                return Err(ApiError::internal(
                    "verdict rendering: elapsed_seconds is not the last value",
                ));
            }
            head.truncate(head.len() - ELAPSED_TAIL.len());
        }
        Ok(Rendered {
            head: Bytes::from(head),
            running_since_ms: running.then_some(a.created_ms),
            abandonable: abandonable(a),
        })
    }

    fn body(&self, now_ms: i64) -> Bytes {
        match self.running_since_ms {
            // A decided verdict never changes: every poll shares the one rendering.
            None => self.head.clone(),
            Some(since) => {
                let mut body = Vec::with_capacity(self.head.len() + 24);
                body.extend_from_slice(&self.head);
                // Writing a number into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut body, &elapsed_seconds(since, now_ms));
                body.extend_from_slice(b"}}");
                Bytes::from(body)
            }
        }
    }
}

/// Rendered verdicts by analysis id, invalidated through the store's change listener.
///
/// A reader that misses notes the epoch, reads the store, and inserts only if no change
/// was reported meanwhile; a writer's report bumps the epoch and drops the entry. So an
/// entry is never older than the last committed change: either the insert sees the bump
/// and gives up, or it lands before the removal that follows the bump.
///
/// Among replicas sharing a database the cache is off ([`VerdictCache::off`]): a change
/// committed by another replica is not reported here, and every replica must answer the
/// same.
#[derive(Debug, Default)]
pub struct VerdictCache {
    epoch: AtomicU64,
    entries: RwLock<HashMap<String, Arc<Rendered>>>,
    off: bool,
    /// When this replica last wrote an ask of each abandonable analysis down.
    asks: Mutex<HashMap<String, i64>>,
}

/// Shortest time between two asks of one analysis written down by one replica.
const ASK_WRITE_EVERY_MS: i64 = 1000;

/// Whether asks of `a` are written down: it runs and was created with `abandon_after`.
fn abandonable(a: &Analysis) -> bool {
    a.status == Status::Running && a.request.abandon_after.is_some()
}

impl VerdictCache {
    /// A cache that keeps nothing: every poll reads the store.
    pub fn off() -> VerdictCache {
        VerdictCache {
            off: true,
            ..VerdictCache::default()
        }
    }

    /// Notes that `a` was asked for at `now_ms`, for `abandon_after`: written to the store
    /// in the background, at most once a second per analysis (the runner allows for
    /// that). Nothing for analyses without `abandon_after` or no longer running.
    pub fn asked(&self, store: &Store, a: &Analysis, now_ms: i64) {
        if abandonable(a) {
            self.note_ask(store, &a.id, now_ms);
        }
    }

    fn note_ask(&self, store: &Store, id: &str, now_ms: i64) {
        {
            let mut asks = self.asks.lock().unwrap_or_else(|e| e.into_inner());
            if asks
                .get(id)
                .is_some_and(|last| now_ms - last < ASK_WRITE_EVERY_MS)
            {
                return;
            }
            if asks.len() >= CACHE_CAPACITY {
                asks.clear();
            }
            asks.insert(id.to_string(), now_ms);
        }
        let (store, id) = (store.clone(), id.to_string());
        tokio::spawn(async move {
            if let Err(e) = store.note_asked(&id, now_ms).await {
                tracing::warn!(analysis = %id, error = %e, "noting that the analysis was asked for");
            }
        });
    }

    /// Forgets what is known about analysis `id` (the store calls this after a change).
    pub fn invalidate(&self, id: &str) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// The verdict JSON of analysis `id`.
    async fn body(&self, store: &Store, id: &str, now_ms: i64) -> Result<Bytes, ApiError> {
        let cached = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned();
        if let Some(r) = cached {
            if r.abandonable {
                self.note_ask(store, id, now_ms);
            }
            return Ok(r.body(now_ms));
        }
        let epoch = self.epoch.load(Ordering::SeqCst);
        let a = store
            .get(id)
            .await?
            .ok_or_else(|| ApiError::no_analysis(id))?;
        let rendered = Arc::new(Rendered::of(&a)?);
        self.asked(store, &a, now_ms);
        let body = rendered.body(now_ms);
        if self.off {
            return Ok(body);
        }
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if self.epoch.load(Ordering::SeqCst) == epoch {
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert(id.to_string(), rendered);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Catalog;

    fn analysis(status: Status) -> Analysis {
        let request: AnalysisRequest = serde_json::from_value(serde_json::json!({
            "key": "k", "model": "http-red",
            "baseline": {"service.name": "a", "service.version": "1"},
            "canary": {"service.name": "a", "service.version": "2"},
            "interval": "30s", "lifetime": "5m"}))
        .unwrap();
        let valid = request.validate(&Catalog::builtin()).unwrap();
        Analysis {
            id: "id1".into(),
            key: "k".into(),
            request: valid.request,
            model: valid.model,
            status,
            interval_ms: 30_000,
            lifetime_ms: 300_000,
            created_ms: 1_000_000,
            next_due_ms: 1_030_000,
            decided_ms: status.is_final().then_some(1_090_500),
            intervals: 3,
            score: None,
            judgment: None,
            cumulative: BTreeMap::new(),
        }
    }

    #[test]
    fn the_rendered_verdict_is_the_view() {
        for status in [Status::Running, Status::Pass, Status::Cancelled] {
            let a = analysis(status);
            let now = 1_012_345;
            let body = Rendered::of(&a).unwrap().body(now);
            let parsed: VerdictView = serde_json::from_slice(&body).unwrap();
            assert_eq!(parsed, VerdictView::of(&a, now));
        }
        let running = Rendered::of(&analysis(Status::Running)).unwrap();
        let parsed: VerdictView = serde_json::from_slice(&running.body(1_012_345)).unwrap();
        assert_eq!(parsed.progress.elapsed_seconds, 12.345);
        assert_eq!(parsed.progress.planned, 10);
        let decided = Rendered::of(&analysis(Status::Pass)).unwrap();
        let parsed: VerdictView = serde_json::from_slice(&decided.body(9_999_999)).unwrap();
        assert_eq!(parsed.progress.elapsed_seconds, 90.5);
        assert_eq!(
            parsed.decided_at.as_deref(),
            Some("1970-01-01T00:18:10.500Z")
        );
    }
}
