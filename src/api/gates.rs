//! `POST /api/v1/gates/flagger`: Augury as a Flagger webhook, comparing the canary
//! workload `<target>` with its primary `<target>-primary` (`target` defaults to the
//! Canary's name).
//!
//! Flagger passes a check when a webhook answers 200-202 and fails it on anything else.
//! One revision is one analysis, keyed on namespace, name and the canary's checksum (or,
//! from Flagger releases before v1.34 that send none, a revision number that each
//! `post-rollout` call moves on). The call answers from that analysis's verdict:
//!
//! | mode (hook) | 200 | otherwise |
//! |---|---|---|
//! | `gate` (default; `pre-rollout` / `rollout` hooks) | running or pass | 409 on fail, inconclusive, cancelled |
//! | `confirm-promotion` | pass | 423 while running; 409 on fail, inconclusive, cancelled |
//! | `rollback` (2xx tells Flagger to roll back now) | fail, inconclusive, cancelled | 412 while running or on pass |
//! | `post-rollout` (the rollout ended) | always: a running analysis is cancelled | |
//!
//! The first three create the analysis if no call of the revision did; `post-rollout`
//! never creates one. The mode comes from `?mode=` or the metadata key `mode`. How the
//! metadata maps to the analysis request is documented on [`FlaggerPayload`] and in
//! docs/integrations.md.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::unauthorized;
use super::error::QueryParams;
use super::{ApiError, AppState, JsonBody};
use crate::analysis::VerdictView;
use crate::analysis::request::{DEFAULT_INTERVAL, DEFAULT_LIFETIME};
use crate::analysis::{AnalysisRequest, ModelRef, Scope, Status};
use crate::clock::now_ms;
use crate::model::Catalog;

/// The model a Flagger gate uses when the metadata names none.
pub const FLAGGER_DEFAULT_MODEL: &str = "http-red";

/// What Flagger posts to a webhook.
///
/// Metadata keys Augury reads (all optional, all strings):
/// - `model` (default `http-red`), `interval` (default `30s`), `lifetime` (default `10m`),
///   `notify` (comma-separated notifier names), `mode` (`gate`, `confirm-promotion`,
///   `rollback` or `post-rollout`), `token` (the bearer token, since Flagger cannot send
///   headers).
/// - `target`: the Canary's `targetRef` name, when it differs from the Canary's own name
///   (Flagger's payload carries only the latter). Default: `name`.
/// - `workload_scope`: the scope name that holds the workload; the canary gets `<target>`,
///   the baseline `<target>-primary`. Default: the first of `workload`,
///   `k8s.deployment.name`, `service.name` that the model's scope lists.
/// - `namespace_scope`: the scope name that holds the namespace (both sides). Default:
///   the first of `namespace`, `k8s.namespace.name`, `service.namespace` the model lists.
/// - `scope.<name>`: a value for both sides; `baseline.<name>` / `canary.<name>`: for one
///   side. These win over the two above.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
pub struct FlaggerPayload {
    /// The Canary object's name (the workload too, unless metadata `target` names it).
    /// Not all whitespace; `namespace`, `name` and `checksum` together are at most 246
    /// characters (the analysis key is `flagger/<namespace>/<name>/<checksum>`, at most
    /// 256).
    #[schema(
        min_length = 1,
        max_length = 244,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// Not all whitespace.
    #[schema(
        min_length = 1,
        max_length = 244,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub namespace: String,
    #[serde(default)]
    pub phase: String,
    /// Checksum of the canary's spec: one per revision being rolled out (Flagger v1.34
    /// and later). Absent or empty (older Flagger), the revision is a number that each
    /// `post-rollout` call to the gate moves on, so such canaries need that hook.
    #[serde(default)]
    #[schema(max_length = 244)]
    pub checksum: String,
    /// String values only; the keys Augury reads are listed above, others are ignored.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// What the gate answers Flagger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GateMode {
    /// Pass while the canary is not failing (running or pass).
    Gate,
    /// Pass only once the verdict is `pass`.
    ConfirmPromotion,
    /// Flagger's `rollback` hook: 200 (roll back now) once the verdict is fail,
    /// inconclusive or cancelled.
    Rollback,
    /// Flagger's `post-rollout` hook: the rollout ended; cancel the analysis if it runs.
    PostRollout,
}

impl GateMode {
    fn parse(s: &str) -> Option<GateMode> {
        match s {
            "gate" | "rollout" | "pre-rollout" => Some(GateMode::Gate),
            "confirm-promotion" => Some(GateMode::ConfirmPromotion),
            "rollback" => Some(GateMode::Rollback),
            "post-rollout" => Some(GateMode::PostRollout),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GateQuery {
    /// `gate` (default; `rollout` and `pre-rollout` mean the same), `confirm-promotion`,
    /// `rollback` or `post-rollout`; the metadata key `mode` also sets it.
    #[param(inline, value_type = Option<GateModeName>)]
    pub mode: Option<String>,
}

/// The values `?mode=` and the metadata key `mode` take.
#[derive(ToSchema)]
#[schema(rename_all = "kebab-case")]
#[allow(dead_code)] // Only its schema is used: the mode is parsed by `GateMode::parse`.
pub enum GateModeName {
    Gate,
    Rollout,
    PreRollout,
    ConfirmPromotion,
    Rollback,
    PostRollout,
}

/// The gate's answer. The HTTP status carries the decision; this says why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GateAnswer {
    /// Whether the hook's check passes: the status is 200 exactly when this is true. For
    /// `gate` and `confirm-promotion` that lets Flagger go on; for `rollback` it makes
    /// Flagger roll back.
    pub allowed: bool,
    pub mode: GateMode,
    /// One sentence for Flagger's events and logs.
    pub reason: String,
    pub phase: String,
    /// The revision's analysis; null only for a `post-rollout` call of a revision that
    /// has none.
    pub analysis: Option<VerdictView>,
}

/// Flagger webhook gate: canary `<target>` against primary `<target>-primary`.
#[utoipa::path(
    post,
    path = "/api/v1/gates/flagger",
    tag = "gates",
    params(GateQuery),
    request_body(content = FlaggerPayload, example = json!({
        "name": "checkout", "namespace": "shop", "phase": "Progressing",
        "checksum": "6b8f7d9c", "metadata": {"scope.service.version": "1"}})),
    responses(
        (status = 200, description = "The hook's check passes: Flagger may go on (`gate`, `confirm-promotion`), must roll back (`rollback`), or the rollout's end was taken note of (`post-rollout`)", body = GateAnswer),
        (status = 400, description = "Malformed JSON (`malformed_json`), a payload of the wrong shape (`invalid_body`), or a payload or metadata that make no valid analysis (`invalid_request`); `field` names the field", body = super::ErrorBody),
        (status = 401, description = "Auth is on and neither a bearer token nor metadata `token` matched (`unauthorized`)", body = super::ErrorBody, headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"augury\"`"))),
        (status = 409, description = "`gate`, `confirm-promotion`: the verdict is fail, inconclusive or cancelled", body = GateAnswer),
        (status = 412, description = "`rollback`: no reason to roll back (running or pass)", body = GateAnswer),
        (status = 413, description = "Body larger than the limit (`payload_too_large`; default 1 MiB), refused as soon as a declared `Content-Length` is over it", body = super::ErrorBody),
        (status = 415, description = "The body is not declared JSON: `Content-Type` must be `application/json` (`unsupported_media_type`)", body = super::ErrorBody),
        (status = 423, description = "confirm-promotion mode: no verdict yet", body = GateAnswer),
        (status = 500, description = "The stored analysis cannot be read back (`corrupt_record`, naming the field) or the database file is corrupt (`store_corrupt`)", body = super::ErrorBody),
        (status = 503, description = "The request took longer than its deadline (`timeout`, default 10 s) or the database did not answer (`store_unavailable`); retry, after `Retry-After` seconds when given", body = super::ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying, when the server knows"))),
    ),
    security((), ("bearer" = []))
)]
pub async fn flagger(
    State(state): State<AppState>,
    QueryParams(query): QueryParams<GateQuery>,
    headers: HeaderMap,
    JsonBody(payload): JsonBody<FlaggerPayload>,
) -> Result<Response, ApiError> {
    let token_ok = state.authorized(&headers)
        || payload
            .metadata
            .get("token")
            .is_some_and(|t| state.token_matches(t));
    if !token_ok {
        return Err(unauthorized());
    }
    let mode_text = query
        .mode
        .as_deref()
        .or(payload.metadata.get("mode").map(String::as_str))
        .unwrap_or("gate");
    let mode = GateMode::parse(mode_text).ok_or_else(|| {
        ApiError::invalid(
            "mode",
            format!(
                "unknown gate mode `{mode_text}` (use gate, confirm-promotion, rollback or post-rollout)"
            ),
        )
    })?;
    check_names(&payload)?;
    let (key, revision) = revision_key(&state, &payload).await?;
    if mode == GateMode::PostRollout {
        return post_rollout(&state, payload, key, revision).await;
    }
    let mut request = analysis_request(&state.catalog, &payload)?;
    request.key = key;
    let valid = state.validate(request).map_err(|e| {
        let hint = if e.message.contains("missing `") {
            " (set it with Flagger webhook metadata `scope.<name>`, `baseline.<name>` or \
             `canary.<name>`, or choose another `model`)"
        } else {
            ""
        };
        ApiError::invalid(
            format!("metadata.{}", e.field),
            format!("{}{hint}", e.message),
        )
    })?;
    // The first hook to reach Augury for a revision defines its analysis; later hooks
    // of the same revision find it by key whatever their metadata.
    let recipients = state
        .notifiers
        .recipients(valid.request.notify.as_deref())
        .map_err(|e| ApiError::invalid("metadata.notify", e.message))?;
    let (analysis, _) = match super::analyses::create_watched(&state, &valid, &recipients).await? {
        Ok(made) => made,
        Err(refused) => return Ok(refused),
    };
    state.verdicts.asked(&state.store, &analysis, now_ms());
    let view = VerdictView::of(&analysis, now_ms());
    let (status, allowed, reason) = decide(mode, &view);
    let answer = GateAnswer {
        allowed,
        mode,
        reason,
        phase: payload.phase,
        analysis: Some(view),
    };
    Ok((status, Json(answer)).into_response())
}

/// The analysis key of the revision `p` is about, and the revision number when Flagger
/// sent no checksum.
async fn revision_key(
    state: &AppState,
    p: &FlaggerPayload,
) -> Result<(String, Option<i64>), ApiError> {
    if !p.checksum.trim().is_empty() {
        return Ok((checksum_key(p), None));
    }
    let revision = state.store.gate_revision(&canary_id(p)).await?;
    Ok((
        format!("flagger/{}/{}/revision-{revision}", p.namespace, p.name),
        Some(revision),
    ))
}

fn checksum_key(p: &FlaggerPayload) -> String {
    format!("flagger/{}/{}/{}", p.namespace, p.name, p.checksum)
}

/// The Canary object a payload is about, for the revision counter.
fn canary_id(p: &FlaggerPayload) -> String {
    format!("{}/{}", p.namespace, p.name)
}

/// `post-rollout`: Flagger finished the rollout (promoted or rolled back). A running
/// analysis of the revision is cancelled, so it cannot alert about a canary that is gone
/// (its recipients hear `cancelled`: PagerDuty resolves); a decided one is left as it
/// is. Without a checksum, the canary's next rollout gets a new revision number (when
/// this one had an analysis). Always 200: there is nothing for Flagger to act on.
async fn post_rollout(
    state: &AppState,
    payload: FlaggerPayload,
    key: String,
    revision: Option<i64>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let (reason, analysis) = match state.store.get_by_key(&key).await? {
        None => (
            format!("no analysis of revision `{key}`: nothing to end"),
            None,
        ),
        Some(a) if a.status == Status::Running => match state.store.cancel(&a.id, now).await? {
            Some((a, true)) => (
                format!(
                    "rollout ended ({}): analysis cancelled",
                    display_phase(&payload.phase)
                ),
                Some(a),
            ),
            Some((a, false)) => (
                format!("analysis already {}: left as it is", a.status.as_str()),
                Some(a),
            ),
            None => (
                format!("no analysis of revision `{key}`: nothing to end"),
                None,
            ),
        },
        Some(a) => (
            format!("analysis already {}: left as it is", a.status.as_str()),
            Some(a),
        ),
    };
    // Only a revision that had an analysis ends: a repeated post-rollout (Flagger
    // retries webhooks) finds the next revision without one and leaves it alone.
    if let Some(revision) = revision
        && analysis.is_some()
    {
        state
            .store
            .end_gate_revision(&canary_id(&payload), revision)
            .await?;
    }
    let answer = GateAnswer {
        allowed: true,
        mode: GateMode::PostRollout,
        reason,
        phase: payload.phase,
        analysis: analysis.map(|a| VerdictView::of(&a, now)),
    };
    Ok((StatusCode::OK, Json(answer)).into_response())
}

fn display_phase(phase: &str) -> &str {
    if phase.is_empty() {
        "phase not given"
    } else {
        phase
    }
}

fn decide(mode: GateMode, v: &VerdictView) -> (StatusCode, bool, String) {
    let score = v
        .score
        .map(|s| format!(", score {}", crate::judge::fmt_num(s)))
        .unwrap_or_default();
    let first_reason = v
        .reasons
        .first()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    let progress = format!("{}/{} intervals", v.progress.intervals, v.progress.planned);
    match (v.status, mode) {
        (Status::Pass, GateMode::Gate | GateMode::ConfirmPromotion | GateMode::PostRollout) => (
            StatusCode::OK,
            true,
            format!("canary passed ({progress}{score})"),
        ),
        (Status::Running, GateMode::Gate) => (
            StatusCode::OK,
            true,
            format!("analysis running, not failing ({progress}{score})"),
        ),
        (Status::Running, GateMode::ConfirmPromotion) => (
            StatusCode::LOCKED,
            false,
            format!("no verdict yet: promotion waits ({progress}{score})"),
        ),
        (Status::Running | Status::Pass, GateMode::Rollback) => (
            StatusCode::PRECONDITION_FAILED,
            false,
            format!(
                "no rollback: canary {} ({progress}{score})",
                v.status.as_str()
            ),
        ),
        (s, GateMode::Rollback) => (
            StatusCode::OK,
            true,
            format!("roll back: canary {}{score}{first_reason}", s.as_str()),
        ),
        (s, _) => (
            StatusCode::CONFLICT,
            false,
            format!("canary {}{score}{first_reason}", s.as_str()),
        ),
    }
}

/// `name` and `namespace` are given.
fn check_names(p: &FlaggerPayload) -> Result<(), ApiError> {
    for (field, value) in [("name", &p.name), ("namespace", &p.namespace)] {
        if value.trim().is_empty() {
            return Err(ApiError::invalid(field, "must not be empty"));
        }
    }
    Ok(())
}

/// The analysis a Flagger payload asks for (see [`FlaggerPayload`] for the mapping), the
/// model's scope names read from `catalog`. Its key is `flagger/<namespace>/<name>/<checksum>`;
/// the gate replaces it with the revision number's when the checksum is empty.
pub fn analysis_request(
    catalog: &Catalog,
    p: &FlaggerPayload,
) -> Result<AnalysisRequest, ApiError> {
    check_names(p)?;
    let meta = &p.metadata;
    let target = match meta.get("target") {
        None => p.name.clone(),
        Some(t) if t.trim().is_empty() => {
            return Err(ApiError::invalid(
                "metadata.target",
                "must not be empty (the Canary's targetRef name; leave it out when it is the Canary's name)",
            ));
        }
        Some(t) => t.clone(),
    };
    let model_name = meta
        .get("model")
        .cloned()
        .unwrap_or_else(|| FLAGGER_DEFAULT_MODEL.to_string());
    // The model's scope names decide the defaults; an unknown model is refused by
    // validation with the list of known ones.
    let scope_names: Vec<String> = catalog
        .get(&model_name)
        .map(|m| m.scope.clone())
        .unwrap_or_default();
    let first_listed = |candidates: &[&str]| {
        candidates
            .iter()
            .find(|c| scope_names.iter().any(|s| s == *c))
            .map(|c| c.to_string())
    };
    let workload = meta
        .get("workload_scope")
        .cloned()
        .or_else(|| first_listed(&["workload", "k8s.deployment.name", "service.name"]))
        .unwrap_or_else(|| "service.name".to_string());
    let namespace = meta
        .get("namespace_scope")
        .cloned()
        .or_else(|| first_listed(&["namespace", "k8s.namespace.name", "service.namespace"]));

    let mut baseline = Scope::new();
    let mut canary = Scope::new();
    baseline.insert(workload.clone(), format!("{target}-primary"));
    canary.insert(workload, target);
    if let Some(ns) = namespace {
        baseline.insert(ns.clone(), p.namespace.clone());
        canary.insert(ns, p.namespace.clone());
    }
    for (k, v) in meta {
        if let Some(name) = k.strip_prefix("scope.") {
            baseline.insert(name.to_string(), v.clone());
            canary.insert(name.to_string(), v.clone());
        }
    }
    for (k, v) in meta {
        if let Some(name) = k.strip_prefix("baseline.") {
            baseline.insert(name.to_string(), v.clone());
        } else if let Some(name) = k.strip_prefix("canary.") {
            canary.insert(name.to_string(), v.clone());
        }
    }
    let notify = meta.get("notify").map(|n| {
        n.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    });
    Ok(AnalysisRequest {
        key: checksum_key(p),
        model: ModelRef::Name(model_name),
        baseline,
        canary,
        interval: Some(
            meta.get("interval")
                .cloned()
                .unwrap_or_else(|| DEFAULT_INTERVAL.into()),
        ),
        lifetime: Some(
            meta.get("lifetime")
                .cloned()
                .unwrap_or_else(|| DEFAULT_LIFETIME.into()),
        ),
        notify,
        early_pass: None,
        abandon_after: None,
        start: None,
        end: None,
        step: None,
    })
}
