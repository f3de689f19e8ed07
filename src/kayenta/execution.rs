//! Kayenta's canary execution request and status JSON, read from and written for
//! Augury's analyses.
//!
//! [`ExecutionRequest`] is the body of Kayenta's `POST /canary/{configId}` (what Argo
//! Rollouts' `kayenta` provider and Spinnaker's canary stage send); [`analysis_request`]
//! turns it and a model into an [`AnalysisRequest`] judging the window it names;
//! [`status`] renders an [`Analysis`] as Kayenta's `CanaryExecutionStatusResponse`, what
//! `GET /canary/{id}` answers and those clients poll.
//!
//! The scope rule (docs/kayenta.md, "Kayenta's REST API"): every scope name the model
//! lists is read from Kayenta's scope, in this order: `scope` is its `scope`, `location`
//! its `location`, a name among its `extendedScopeParams` that value; any other name,
//! only for a model that has no `scope` name, from `name=value` pairs in its `scope`,
//! joined by ` and ` or `,` (`app=checkout and version=1.4.2`).
//!
//! Invariant: pure, no I/O: the route (`api::kayenta`) reads and stores.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::analysis::{Analysis, AnalysisRequest, ModelRef, Scope, Status};
use crate::clock::rfc3339;
use crate::judge::{Classification, Judgment, MetricResult, Summary, Verdict};
use crate::model::{Model, Rules, Thresholds};

/// The body of `POST /canary/{configId}`: Kayenta's `CanaryExecutionRequest`. Fields
/// it has that Augury has no use for (`metadata`, `siteLocal`) are accepted and echoed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionRequest {
    /// Named scope pairs; Kayenta picks one per metric by its `scopeName`.
    #[serde(default)]
    pub scopes: BTreeMap<String, ScopePair>,
    /// Score thresholds (Kayenta requires them; left out, the model's apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<RequestThresholds>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_local: Option<Value>,
}

/// A baseline (`controlScope`) and a canary (`experimentScope`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopePair {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_scope: Option<KayentaScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_scope: Option<KayentaScope>,
}

/// One side's scope: Kayenta's `CanaryScope`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KayentaScope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// An RFC 3339 time, or milliseconds since the epoch (what Spinnaker's orca writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Value>,
    /// Seconds between points of the range queries; 0 or absent: the daemon's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extended_scope_params: BTreeMap<String, Option<String>>,
}

/// Kayenta's `CanaryClassifierThresholdsConfig`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestThresholds {
    pub pass: f64,
    pub marginal: f64,
}

/// A request that cannot be judged: the field (a JSON path in the request) and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ExecutionError {
    pub field: String,
    pub message: String,
}

fn refuse(field: impl Into<String>, message: impl Into<String>) -> ExecutionError {
    ExecutionError {
        field: field.into(),
        message: message.into(),
    }
}

/// The model an execution judges with: one the daemon knows by name, or one converted
/// from a stored Kayenta config (always sent inline).
#[derive(Clone, Copy, Debug)]
pub enum ModelSource<'a> {
    Catalog(&'a Model),
    Converted(&'a Model),
}

impl ModelSource<'_> {
    fn model(&self) -> &Model {
        match self {
            ModelSource::Catalog(m) | ModelSource::Converted(m) => m,
        }
    }
}

/// The window both sides share, in milliseconds, and the step in seconds (None: the
/// daemon's default).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Window {
    start_ms: i64,
    end_ms: i64,
    step_seconds: Option<u64>,
}

/// The analysis `request` asks for with `model`, under idempotency key `key`: the
/// window of its scopes (judged in one look), baseline and canary scopes mapped onto
/// the model's scope names, and its thresholds (a model copy sent inline when they
/// differ from the model's).
pub fn analysis_request(
    request: &ExecutionRequest,
    model: ModelSource<'_>,
    key: &str,
) -> Result<AnalysisRequest, ExecutionError> {
    let m = model.model();
    let (name, pair) = one_pair(request)?;
    let field = |side: &str| format!("scopes.{name}.{side}");
    let control = pair
        .control_scope
        .as_ref()
        .ok_or_else(|| refuse(field("controlScope"), "missing"))?;
    let experiment = pair
        .experiment_scope
        .as_ref()
        .ok_or_else(|| refuse(field("experimentScope"), "missing"))?;
    let c = window(control, &field("controlScope"))?;
    let e = window(experiment, &field("experimentScope"))?;
    if (c.start_ms, c.end_ms) != (e.start_ms, e.end_ms) {
        return Err(refuse(
            field("experimentScope"),
            "its start and end differ from the controlScope's: Augury compares baseline \
             and canary over the same window",
        ));
    }
    if c.step_seconds != e.step_seconds {
        return Err(refuse(
            field("experimentScope.step"),
            "differs from the controlScope's step: both sides are queried at one step",
        ));
    }
    let baseline = map_scope(control, m, &field("controlScope"))?;
    let canary = map_scope(experiment, m, &field("experimentScope"))?;
    let thresholds = match request.thresholds {
        None => None,
        Some(t) => Some(thresholds(t)?),
    };
    let model_ref = match (model, thresholds) {
        (ModelSource::Catalog(m), None) => ModelRef::Name(m.name.clone()),
        (ModelSource::Catalog(m), Some(t)) if t == m.thresholds => ModelRef::Name(m.name.clone()),
        (_, t) => {
            let mut copy = m.clone();
            if let Some(t) = t {
                copy.thresholds = t;
            }
            ModelRef::Inline(
                serde_json::to_value(&copy).map_err(|e| {
                    refuse("thresholds", format!("the model cannot be written: {e}"))
                })?,
            )
        }
    };
    Ok(AnalysisRequest {
        key: key.to_string(),
        model: model_ref,
        baseline,
        canary,
        interval: None,
        lifetime: None,
        notify: None,
        early_pass: None,
        abandon_after: None,
        start: Some(rfc3339(c.start_ms)),
        end: Some(rfc3339(c.end_ms)),
        step: c.step_seconds.map(|s| format!("{s}s")),
    })
}

/// The one scope pair the request names, or the one all its names share: Augury judges
/// every metric of a model on one baseline and one canary.
fn one_pair(request: &ExecutionRequest) -> Result<(&str, &ScopePair), ExecutionError> {
    let mut pairs = request.scopes.iter();
    let Some((name, first)) = pairs.next() else {
        return Err(refuse(
            "scopes",
            "no scope given: name one, e.g. {\"default\": {\"controlScope\": {...}, \
             \"experimentScope\": {...}}}",
        ));
    };
    for (other, pair) in pairs {
        if pair != first {
            return Err(refuse(
                format!("scopes.{other}"),
                format!(
                    "differs from scope `{name}`: Augury judges every metric of a model on \
                     one baseline and one canary, so several named scopes must be the same \
                     (or send one)"
                ),
            ));
        }
    }
    Ok((name, first))
}

fn window(scope: &KayentaScope, field: &str) -> Result<Window, ExecutionError> {
    let start = time(scope.start.as_ref(), &format!("{field}.start"))?;
    let end = time(scope.end.as_ref(), &format!("{field}.end"))?;
    if end <= start {
        return Err(refuse(
            format!("{field}.end"),
            format!("{} is not after the start {}", rfc3339(end), rfc3339(start)),
        ));
    }
    let step_seconds = match scope.step {
        None => None,
        Some(0.0) => None,
        Some(s) if s.is_finite() && s >= 1.0 && s.fract() == 0.0 && s <= 86_400.0 => Some(s as u64),
        Some(s) => {
            return Err(refuse(
                format!("{field}.step"),
                format!("{s} is not a whole number of seconds from 1 to 86400 (or 0: the default)"),
            ));
        }
    };
    Ok(Window {
        start_ms: start,
        end_ms: end,
        step_seconds,
    })
}

/// A Kayenta time: an RFC 3339 string, or a number of milliseconds since the epoch.
fn time(value: Option<&Value>, field: &str) -> Result<i64, ExecutionError> {
    match value {
        None | Some(Value::Null) => Err(refuse(
            field,
            "missing: Augury judges the window from `start` to `end` (RFC 3339 times)",
        )),
        Some(Value::String(s)) => {
            crate::analysis::request::parse_time(field, s).map_err(|e| refuse(e.field, e.message))
        }
        Some(Value::Number(n)) => match n.as_i64() {
            Some(ms) if ms >= 0 => Ok(ms),
            _ => Err(refuse(
                field,
                format!("{n} is not a whole number of milliseconds since 1970"),
            )),
        },
        Some(other) => Err(refuse(
            field,
            format!("{other} is not an RFC 3339 time like 2026-12-07T10:00:00Z"),
        )),
    }
}

/// The model's scope from Kayenta's (the rule in the module's doc).
fn map_scope(scope: &KayentaScope, model: &Model, field: &str) -> Result<Scope, ExecutionError> {
    let has_scope_name = model.scope.iter().any(|n| n == "scope");
    let text = scope.scope.as_deref().unwrap_or("").trim();
    let pairs = if has_scope_name {
        BTreeMap::new()
    } else {
        pairs(text, model, field)?
    };
    let mut out = Scope::new();
    for name in &model.scope {
        let value = match name.as_str() {
            "scope" => scope.scope.clone(),
            "location" => scope.location.clone(),
            _ => scope
                .extended_scope_params
                .get(name)
                .cloned()
                .flatten()
                .or_else(|| pairs.get(name.as_str()).map(|v| v.to_string())),
        };
        let value = value.map(|v| v.trim().to_string()).unwrap_or_default();
        if value.is_empty() {
            let from = match name.as_str() {
                "scope" => format!("{field}.scope"),
                "location" => format!("{field}.location"),
                _ => format!("{field}.scope"),
            };
            return Err(refuse(from, needs(model, name)));
        }
        out.insert(name.clone(), value);
    }
    Ok(out)
}

/// What to send for model `model`'s scope name `missing`.
fn needs(model: &Model, missing: &str) -> String {
    let names = model.scope.join(", ");
    match missing {
        "scope" | "location" => format!(
            "empty, and model `{}` needs `{missing}` (its scope names: {names})",
            model.name
        ),
        _ => format!(
            "model `{}` needs `{missing}`: its scope names are {names}, so send them as \
             `name=value` pairs joined by ` and ` or `,` (e.g. `{}`), or in \
             `extendedScopeParams`",
            model.name,
            model
                .scope
                .iter()
                .map(|n| format!("{n}=..."))
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    }
}

/// `name=value` pairs of a Kayenta `scope`, for a model without a `scope` name: each
/// name one of the model's.
fn pairs<'a>(
    text: &'a str,
    model: &Model,
    field: &str,
) -> Result<BTreeMap<&'a str, &'a str>, ExecutionError> {
    let mut out = BTreeMap::new();
    if text.is_empty() {
        return Ok(out);
    }
    let parts: Vec<&str> = text
        .split(" and ")
        .flat_map(|p| p.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    for part in parts {
        let Some((name, value)) = part.split_once('=') else {
            return Err(refuse(
                format!("{field}.scope"),
                format!("`{part}` is a bare value; {}", needs_pairs(model)),
            ));
        };
        let (name, value) = (name.trim(), unquote(value.trim()));
        if !model.scope.iter().any(|n| n == name) {
            return Err(refuse(
                format!("{field}.scope"),
                format!(
                    "`{name}` is not a scope name of model `{}` (it has: {})",
                    model.name,
                    model.scope.join(", ")
                ),
            ));
        }
        if out.insert(name, value).is_some() {
            return Err(refuse(
                format!("{field}.scope"),
                format!("`{name}` is given twice"),
            ));
        }
    }
    Ok(out)
}

fn needs_pairs(model: &Model) -> String {
    format!(
        "model `{}` has no `scope` name: send its scope names {} as `name=value` pairs \
         joined by ` and ` or `,`",
        model.name,
        model.scope.join(", ")
    )
}

fn unquote(v: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    v
}

/// Kayenta's thresholds as a model's: both from 0 to 100, marginal at most pass.
fn thresholds(t: RequestThresholds) -> Result<Thresholds, ExecutionError> {
    for (name, v) in [("pass", t.pass), ("marginal", t.marginal)] {
        if !(0.0..=100.0).contains(&v) {
            return Err(refuse(
                format!("thresholds.{name}"),
                format!("{v} is not a score from 0 to 100"),
            ));
        }
    }
    if t.marginal > t.pass {
        return Err(refuse(
            "thresholds.marginal",
            format!("{} is above the pass threshold {}", t.marginal, t.pass),
        ));
    }
    Ok(Thresholds {
        pass: t.pass,
        marginal: t.marginal,
    })
}

/// What a Kayenta execution was started with, kept beside its analysis so that the
/// status echoes it as Kayenta does.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionContext {
    pub application: Option<String>,
    pub parent_pipeline_execution_id: Option<String>,
    pub canary_config_id: Option<String>,
    pub metrics_account_name: Option<String>,
    pub configuration_account_name: Option<String>,
    pub storage_account_name: Option<String>,
    /// The execution request as sent.
    pub request: Option<Value>,
    /// The stored Kayenta config it ran, if it was one.
    pub config: Option<Value>,
}

/// The application Kayenta reports for an execution started without one.
pub const DEFAULT_APPLICATION: &str = "augury";

/// Kayenta's `CanaryExecutionStatusResponse` for `analysis`: `complete` once it is
/// decided, `status` `running`, `succeeded` (judged: the score says how the canary did)
/// or `canceled`; once succeeded, `result.judgeResult` with the score, each metric and
/// each group.
pub fn status(analysis: &Analysis, context: &ExecutionContext) -> Value {
    let (complete, status) = match analysis.status {
        Status::Running => (false, "running"),
        Status::Cancelled => (true, "canceled"),
        Status::Pass | Status::Fail | Status::Inconclusive => match analysis.judgment {
            Some(_) => (true, "succeeded"),
            None => (true, "terminal"),
        },
    };
    let mut out = serde_json::Map::new();
    let mut put = |k: &str, v: Value| {
        out.insert(k.to_string(), v);
    };
    put(
        "application",
        json!(
            context
                .application
                .as_deref()
                .unwrap_or(DEFAULT_APPLICATION)
        ),
    );
    if let Some(p) = &context.parent_pipeline_execution_id {
        put("parentPipelineExecutionId", json!(p));
    }
    put("pipelineId", json!(analysis.id));
    put("stageStatus", json!({ "judge": status }));
    put("complete", json!(complete));
    put("status", json!(status));
    if complete
        && status == "succeeded"
        && let Some(j) = &analysis.judgment
    {
        put(
            "result",
            json!({
                "judgeResult": judge_result(j, &analysis.model),
                "canaryDuration": java_duration(analysis.lifetime_ms),
            }),
        );
    }
    match status {
        "terminal" => put(
            "exception",
            json!({"exceptionType": "AuguryError", "details": {"errors": [
                format!("analysis ended {} without a judgment", analysis.status.as_str())
            ]}}),
        ),
        "canceled" => put(
            "exception",
            json!({"details": {"errors": ["Canary execution was canceled."]}}),
        ),
        _ => {}
    }
    if let Some(c) = &context.config {
        put("config", c.clone());
    }
    if let Some(id) = &context.canary_config_id {
        put("canaryConfigId", json!(id));
    }
    if let Some(r) = &context.request {
        put("canaryExecutionRequest", r.clone());
    }
    for (k, ms) in [
        ("buildTime", Some(analysis.created_ms)),
        ("startTime", Some(analysis.created_ms)),
        ("endTime", analysis.decided_ms),
    ] {
        if let Some(ms) = ms {
            put(&format!("{k}Millis"), json!(ms));
            put(&format!("{k}Iso"), json!(rfc3339(ms)));
        }
    }
    for (k, v) in [
        ("storageAccountName", &context.storage_account_name),
        ("metricsAccountName", &context.metrics_account_name),
        (
            "configurationAccountName",
            &context.configuration_account_name,
        ),
    ] {
        if let Some(v) = v {
            put(k, json!(v));
        }
    }
    Value::Object(out)
}

/// Kayenta's `CanaryJudgeResult` for a judgment.
fn judge_result(j: &Judgment, model: &Model) -> Value {
    let groups: Vec<Value> = j
        .groups
        .iter()
        .map(|g| {
            let judged = g.pass + g.high + g.low;
            json!({
                "name": g.name,
                "score": g.score,
                "classification": if judged == 0 { "Nodata" } else { "" },
                "classificationReason": "",
            })
        })
        .collect();
    json!({
        "judgeName": match model.rules {
            Rules::Augury => "augury",
            Rules::Kayenta => "augury-kayenta-rules",
        },
        "results": j.metrics.iter().map(metric_result).collect::<Vec<_>>(),
        "groupScores": groups,
        "score": {
            "score": j.score,
            "classification": verdict_name(j.verdict),
            "classificationReason": j.reasons.first().cloned().unwrap_or_default(),
        },
    })
}

/// Kayenta's names of a verdict (its `ScoreClassification`s).
fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "Pass",
        Verdict::Marginal => "Marginal",
        Verdict::Fail => "Fail",
        Verdict::Inconclusive => "Nodata",
    }
}

fn classification_name(c: Classification) -> &'static str {
    match c {
        Classification::Pass => "Pass",
        Classification::High => "High",
        Classification::Low => "Low",
        Classification::Nodata => "Nodata",
        Classification::Error => "Error",
    }
}

/// Kayenta's `CanaryAnalysisResult` for one metric: its classification and reason, and
/// each side's `stats` (`count`, `mean`, `min`, `max`, `median`, as Kayenta reports).
fn metric_result(m: &MetricResult) -> Value {
    let mut result = serde_json::Map::new();
    if let Some(p) = m.p_value() {
        result.insert("pValue".into(), json!(p));
    }
    if let (Some(c), Some(b)) = (
        m.canary.as_ref().and_then(|s| s.mean),
        m.baseline.as_ref().and_then(|s| s.mean),
    ) && b != 0.0
    {
        result.insert("ratio".into(), json!(c / b));
    }
    json!({
        "name": m.name,
        "id": m.name,
        "tags": {},
        "classification": classification_name(m.classification),
        "classificationReason": m.reason,
        "groups": [m.group],
        "experimentMetadata": {"stats": stats(m.canary.as_ref())},
        "controlMetadata": {"stats": stats(m.baseline.as_ref())},
        "resultMetadata": result,
        "critical": m.critical,
        "muted": false,
    })
}

fn stats(s: Option<&Summary>) -> Value {
    let Some(s) = s else {
        return json!({"count": 0});
    };
    let mut out = serde_json::Map::new();
    out.insert("count".into(), json!(s.count));
    for (k, v) in [
        ("mean", s.mean),
        ("min", s.min),
        ("max", s.max),
        ("median", s.median),
    ] {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            out.insert(k.into(), json!(v));
        }
    }
    Value::Object(out)
}

/// A length as Java's `Duration.toString` writes it (`PT10M`, `PT1H30M`, `PT0.5S`), what
/// Kayenta's `canaryDuration` holds.
pub fn java_duration(ms: u64) -> String {
    if ms == 0 {
        return "PT0S".into();
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut out = String::from("PT");
    if h > 0 {
        out.push_str(&format!("{h}H"));
    }
    if m > 0 {
        out.push_str(&format!("{m}M"));
    }
    if s > 0 || frac > 0 {
        if frac > 0 {
            let f = format!("{frac:03}");
            out.push_str(&format!("{s}.{}S", f.trim_end_matches('0')));
        } else {
            out.push_str(&format!("{s}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Catalog;

    fn model(scope: &[&str]) -> Model {
        let mut m = Catalog::builtin().models().next().unwrap().clone();
        m.name = "m".into();
        m.scope = scope.iter().map(|s| s.to_string()).collect();
        m
    }

    fn argo_body(control: &str, experiment: &str) -> ExecutionRequest {
        serde_json::from_value(json!({
            "scopes": {"default": {
                "controlScope": {"scope": control, "location": "us-east-1", "step": 60,
                    "start": "2026-12-07T06:00:00Z", "end": "2026-12-07T06:10:00Z"},
                "experimentScope": {"scope": experiment, "location": "us-east-1", "step": 60,
                    "start": "2026-12-07T06:00:00Z", "end": "2026-12-07T06:10:00Z"}}},
            "thresholds": {"pass": 90, "marginal": 75}
        }))
        .unwrap()
    }

    #[test]
    fn a_scope_and_location_model_takes_kayentas_scope_directly() {
        let m = model(&["scope", "location"]);
        let r = analysis_request(
            &argo_body("app-baseline", "app-canary"),
            ModelSource::Converted(&m),
            "kayenta/1",
        )
        .unwrap();
        assert_eq!(r.baseline["scope"], "app-baseline");
        assert_eq!(r.baseline["location"], "us-east-1");
        assert_eq!(r.canary["scope"], "app-canary");
        assert_eq!(r.start.as_deref(), Some("2026-12-07T06:00:00.000Z"));
        assert_eq!(r.end.as_deref(), Some("2026-12-07T06:10:00.000Z"));
        assert_eq!(r.step.as_deref(), Some("60s"));
        assert_eq!(r.interval, None);
        assert_eq!(r.key, "kayenta/1");
        let ModelRef::Inline(inline) = &r.model else {
            panic!("a converted model goes inline")
        };
        assert_eq!(
            inline["thresholds"],
            json!({"pass": 90.0, "marginal": 75.0})
        );
    }

    #[test]
    fn a_catalog_model_is_named_unless_the_thresholds_differ() {
        let mut m = model(&["scope"]);
        m.thresholds = Thresholds {
            pass: 90.0,
            marginal: 75.0,
        };
        let r = analysis_request(&argo_body("a", "b"), ModelSource::Catalog(&m), "k").unwrap();
        assert_eq!(r.model, ModelRef::Name("m".into()));
        m.thresholds.pass = 95.0;
        let r = analysis_request(&argo_body("a", "b"), ModelSource::Catalog(&m), "k").unwrap();
        assert!(matches!(r.model, ModelRef::Inline(_)));
    }

    #[test]
    fn other_models_take_name_value_pairs() {
        let m = model(&["service.name", "service.version"]);
        let r = analysis_request(
            &argo_body(
                "service.name=checkout and service.version=1.4.1",
                "service.name=\"checkout\", service.version=1.4.2",
            ),
            ModelSource::Catalog(&m),
            "k",
        )
        .unwrap();
        assert_eq!(r.baseline["service.version"], "1.4.1");
        assert_eq!(r.canary["service.name"], "checkout");
        assert_eq!(r.canary["service.version"], "1.4.2");

        let e = analysis_request(
            &argo_body("checkout", "checkout"),
            ModelSource::Catalog(&m),
            "k",
        )
        .unwrap_err();
        assert_eq!(e.field, "scopes.default.controlScope.scope");
        assert!(e.message.contains("bare value"), "{e}");
        assert!(e.message.contains("service.name, service.version"), "{e}");

        let e = analysis_request(
            &argo_body("service.name=a and pod=b", "x"),
            ModelSource::Catalog(&m),
            "k",
        )
        .unwrap_err();
        assert!(e.message.contains("`pod` is not a scope name"), "{e}");

        let e = analysis_request(
            &argo_body("service.name=a", "service.name=a"),
            ModelSource::Catalog(&m),
            "k",
        )
        .unwrap_err();
        assert!(e.message.contains("needs `service.version`"), "{e}");
    }

    #[test]
    fn extended_scope_params_fill_other_names() {
        let m = model(&["scope", "namespace"]);
        let mut body = argo_body("a", "b");
        for side in body.scopes.get_mut("default").into_iter() {
            for s in [&mut side.control_scope, &mut side.experiment_scope] {
                s.as_mut()
                    .unwrap()
                    .extended_scope_params
                    .insert("namespace".into(), Some("prod".into()));
            }
        }
        let r = analysis_request(&body, ModelSource::Catalog(&m), "k").unwrap();
        assert_eq!(r.baseline["namespace"], "prod");
        assert_eq!(r.canary["scope"], "b");
    }

    #[test]
    fn bad_windows_thresholds_and_scopes_name_the_field() {
        let m = model(&["scope", "location"]);
        let check = |v: Value, field: &str, says: &str| {
            let body: ExecutionRequest = serde_json::from_value(v).unwrap();
            let e = analysis_request(&body, ModelSource::Converted(&m), "k").unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.message.contains(says), "{e}");
        };
        let side = |start: Value, end: Value| json!({"scope": "a", "location": "l", "start": start, "end": end, "step": 60});
        let t0 = json!("2026-12-07T06:00:00Z");
        let t1 = json!("2026-12-07T06:10:00Z");
        check(json!({"scopes": {}}), "scopes", "no scope");
        check(
            json!({"scopes": {"default": {"controlScope": side(t0.clone(), t1.clone())}}}),
            "scopes.default.experimentScope",
            "missing",
        );
        check(
            json!({"scopes": {"default": {"controlScope": side(json!("yesterday"), t1.clone()),
                "experimentScope": side(t0.clone(), t1.clone())}}}),
            "scopes.default.controlScope.start",
            "RFC 3339",
        );
        check(
            json!({"scopes": {"default": {"controlScope": side(t1.clone(), t0.clone()),
                "experimentScope": side(t1.clone(), t0.clone())}}}),
            "scopes.default.controlScope.end",
            "not after",
        );
        check(
            json!({"scopes": {"default": {"controlScope": side(t0.clone(), t1.clone()),
                "experimentScope": side(t0.clone(), json!("2026-12-07T06:20:00Z"))}}}),
            "scopes.default.experimentScope",
            "same window",
        );
        check(
            json!({"scopes": {
                "a": {"controlScope": side(t0.clone(), t1.clone()), "experimentScope": side(t0.clone(), t1.clone())},
                "b": {"controlScope": side(t0.clone(), json!("2026-12-07T06:20:00Z")), "experimentScope": side(t0.clone(), t1.clone())}}}),
            "scopes.b",
            "one baseline and one canary",
        );
        check(
            json!({"scopes": {"default": {"controlScope": side(t0.clone(), t1.clone()),
                "experimentScope": side(t0.clone(), t1.clone())}},
                "thresholds": {"pass": 50, "marginal": 75}}),
            "thresholds.marginal",
            "above the pass",
        );
        let mut no_location = side(t0.clone(), t1.clone());
        no_location["location"] = json!("");
        check(
            json!({"scopes": {"default": {"controlScope": no_location,
                "experimentScope": side(t0.clone(), t1.clone())}}}),
            "scopes.default.controlScope.location",
            "needs `location`",
        );
    }

    #[test]
    fn several_equal_named_scopes_and_millisecond_times_are_accepted() {
        let m = model(&["scope"]);
        let side =
            json!({"scope": "a", "start": 1_796_623_200_000i64, "end": 1_796_623_800_000i64});
        let pair = json!({"controlScope": side, "experimentScope": side});
        let body: ExecutionRequest =
            serde_json::from_value(json!({"scopes": {"x": pair, "y": pair}})).unwrap();
        let r = analysis_request(&body, ModelSource::Catalog(&m), "k").unwrap();
        assert_eq!(r.start.as_deref(), Some("2026-12-07T06:00:00.000Z"));
        assert_eq!(r.step, None);
    }

    #[test]
    fn java_durations_read_as_java_writes_them() {
        assert_eq!(java_duration(600_000), "PT10M");
        assert_eq!(java_duration(5_400_000), "PT1H30M");
        assert_eq!(java_duration(45_500), "PT45.5S");
        assert_eq!(java_duration(3_600_000 + 1000), "PT1H1S");
        assert_eq!(java_duration(0), "PT0S");
    }
}
