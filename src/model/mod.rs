//! Judge models: which metrics a verdict rests on, how each is tested, how results score.
//!
//! A model is a YAML file (schema in `models/README.md`). This module owns parsing,
//! defaults and validation, and the models built into the binary. It never judges: the
//! `judge` module reads a validated [`Model`]. Validation reports *every* problem with the
//! file, the field path and the reason, so `augury check` can list them all at once.

mod builtin;
pub mod scrape;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::stats::Alternative;

pub use builtin::{BUILTIN_MODELS, DEFAULT_MODEL, builtin};

/// Most metrics one model may hold. Judging and watching cost grows with the metric
/// count (linearly), and one model's metrics are judged every interval of every analysis
/// that uses it; a thousand is far past any real model (the built-in ones hold one to
/// four) and keeps one judgment of the largest model to milliseconds (BENCHMARKS.md).
pub const MAX_METRICS: usize = 1000;

/// A judge model, after parsing and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Model {
    /// Not all whitespace.
    #[schema(
        min_length = 1,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Scope names a request must give (used by OTLP sources; default service.name, service.version).
    #[serde(default = "default_scope")]
    pub scope: Vec<String>,
    #[serde(default)]
    pub thresholds: Thresholds,
    /// Group weights; groups a metric names but that are not listed here share what is
    /// left of 100 equally. Every group listed has a metric in it, and the weights add up
    /// to at most 100.
    #[serde(default)]
    pub groups: BTreeMap<String, Group>,
    /// Pass before the lifetime ends once every sequential metric is shown equivalent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_pass: Option<EarlyPass>,
    /// Whose rules classify metrics and score them: `augury` (default) or `kayenta`,
    /// Kayenta's own classifier and scorer, so a canary config imported from Kayenta
    /// judges as Kayenta would (docs/kayenta.md lists every difference).
    #[serde(default, skip_serializing_if = "Rules::is_augury")]
    pub rules: Rules,
    /// At least one; metric names are unique.
    #[schema(min_items = 1)]
    pub metrics: Vec<Metric>,
}

/// Whose rules a model judges by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Rules {
    /// Augury's: p-values at the metric's alpha, effect gates, relative weights.
    #[default]
    Augury,
    /// Kayenta's `NetflixACAJudge`: the tolerance rule on the Hodges-Lehmann interval at
    /// 98%, its mean-ratio effect, its NaN handling and its scorer.
    Kayenta,
}

impl Rules {
    pub fn is_augury(&self) -> bool {
        *self == Rules::Augury
    }
}

fn default_scope() -> Vec<String> {
    vec!["service.name".into(), "service.version".into()]
}

/// Score thresholds: score >= pass is a pass, >= marginal is marginal, below is a fail.
/// Both within 0..100, marginal at most pass.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    #[schema(minimum = 0.0, maximum = 100.0)]
    pub pass: f64,
    #[schema(minimum = 0.0, maximum = 100.0)]
    pub marginal: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            pass: 95.0,
            marginal: 75.0,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Group {
    #[schema(minimum = 0.0)]
    pub weight: Option<f64>,
}

/// What a metric's data is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    /// Numeric observations per request or per point (latency, CPU, ...): samples or a histogram.
    #[default]
    Distribution,
    /// Requests and the errors among them.
    ErrorRatio,
}

impl MetricKind {
    /// The name a model writes (`distribution`, `error-ratio`).
    pub fn name(self) -> &'static str {
        match self {
            MetricKind::Distribution => "distribution",
            MetricKind::ErrorRatio => "error-ratio",
        }
    }
}

/// How a metric is tested.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TestKind {
    /// Fixed-horizon Mann-Whitney U with Hodges-Lehmann shift (distributions).
    MannWhitney,
    /// Fixed-horizon two-proportion test (error ratios).
    Proportion,
    /// Anytime-valid sequential test over the analysis's intervals (both kinds): the
    /// exceedance test with quantile bands for distributions, the rate-ratio e-process
    /// for error ratios. Looking every interval does not inflate false alarms.
    Sequential,
}

/// Early pass: an analysis may pass before its lifetime ends once `min_duration` has
/// elapsed and every sequential metric has shown equivalence (its confidence sequence
/// lies within the metric's `equivalence_margin`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EarlyPass {
    /// Shortest run before an early pass: a duration like `5m`, longer than 0 and
    /// shorter than the analysis's lifetime.
    #[schema(
        pattern = r"^[\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[0-9]"
    )]
    pub min_duration: String,
}

impl EarlyPass {
    pub fn min_duration(&self) -> Result<std::time::Duration, String> {
        let d = humantime::parse_duration(self.min_duration.trim())
            .map_err(|e| format!("`{}` is not a duration: {e}", self.min_duration))?;
        if d.is_zero() {
            return Err(format!("`{}` must be longer than 0", self.min_duration));
        }
        Ok(d)
    }
}

/// Which change is bad.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Only an increase is a regression (latency, errors).
    #[default]
    Increase,
    /// Only a decrease is a regression (throughput, cache hit ratio).
    Decrease,
    /// Any change is a regression.
    Either,
}

impl Direction {
    /// The alternative hypothesis that looks for this direction's regression.
    pub fn alternative(self) -> Alternative {
        match self {
            Direction::Increase => Alternative::Greater,
            Direction::Decrease => Alternative::Less,
            Direction::Either => Alternative::TwoSided,
        }
    }
}

/// What to do with NaN observations (Prometheus gaps, failed scrapes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NanStrategy {
    /// Drop them (Kayenta's default).
    #[default]
    Remove,
    /// Count them as 0.
    Replace,
    /// Refuse the input.
    Fail,
}

/// Which effect size gates a significant result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EffectMeasure {
    /// median(canary) / median(baseline).
    #[default]
    MedianRatio,
    /// mean(canary) / mean(baseline), Kayenta's `meanRatio`.
    MeanRatio,
    /// P(canary > baseline), Kayenta's `cles`; 0.5 means no effect.
    Cles,
    /// 1 + Hodges-Lehmann shift / median(baseline).
    ShiftRatio,
    /// error ratio(canary) / error ratio(baseline) (error-ratio metrics).
    Ratio,
}

impl EffectMeasure {
    /// The name models use for it.
    pub fn name(self) -> &'static str {
        match self {
            EffectMeasure::MedianRatio => "median-ratio",
            EffectMeasure::MeanRatio => "mean-ratio",
            EffectMeasure::Cles => "cles",
            EffectMeasure::ShiftRatio => "shift-ratio",
            EffectMeasure::Ratio => "ratio",
        }
    }

    /// The value that means "no effect".
    pub fn neutral(self) -> f64 {
        match self {
            EffectMeasure::Cles => 0.5,
            _ => 1.0,
        }
    }
}

/// Effect-size gates. A significant change whose effect does not reach `allowed_*` still
/// passes; a critical metric whose effect reaches `critical_*` fails the canary at once.
/// Values are >= 0 (at most 1 for `cles`), `critical_increase` >= `allowed_increase` and
/// `critical_decrease` <= `allowed_decrease`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Effect {
    /// Default: `median-ratio` for distributions, `ratio` for error ratios.
    pub measure: Option<EffectMeasure>,
    #[schema(minimum = 0.0)]
    pub allowed_increase: Option<f64>,
    #[schema(minimum = 0.0)]
    pub allowed_decrease: Option<f64>,
    #[schema(minimum = 0.0)]
    pub critical_increase: Option<f64>,
    #[schema(minimum = 0.0)]
    pub critical_decrease: Option<f64>,
}

impl Effect {
    fn neutral(&self) -> f64 {
        self.measure.map_or(1.0, EffectMeasure::neutral)
    }
    pub fn allowed_increase(&self) -> f64 {
        self.allowed_increase.unwrap_or(self.neutral())
    }
    pub fn allowed_decrease(&self) -> f64 {
        self.allowed_decrease.unwrap_or(self.neutral())
    }
    pub fn critical_increase(&self) -> f64 {
        self.critical_increase.unwrap_or(self.allowed_increase())
    }
    pub fn critical_decrease(&self) -> f64 {
        self.critical_decrease.unwrap_or(self.allowed_decrease())
    }
}

/// Service-level objective for an error-ratio metric: the canary's burn rate is reported,
/// and a burn rate above `max_burn_rate` counts as a regression on its own.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Target success ratio, e.g. 0.999: within (0, 1).
    #[schema(exclusive_minimum = 0.0, exclusive_maximum = 1.0)]
    pub target: f64,
    /// Default 14.4: the SRE workbook's fast-burn page factor. Greater than 0.
    #[serde(default = "default_max_burn")]
    #[schema(exclusive_minimum = 0.0, default = 14.4)]
    pub max_burn_rate: f64,
}

fn default_max_burn() -> f64 {
    14.4
}

/// Where the daemon takes a metric's data from. `augury judge` ignores it: files give data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Source {
    /// Spans received over OTLP.
    Otlp(OtlpSource),
    /// A query from a PromQL query pack.
    Prometheus(PrometheusSource),
    /// The daemon scrapes the baseline's and the canary's `/metrics` endpoints itself.
    Scrape(ScrapeSource),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtlpSource {
    /// Span kind to keep: server (the default), client, internal, producer, consumer,
    /// unspecified, or any.
    #[serde(default)]
    #[schema(value_type = SpanKindName, example = "server")]
    pub span_kind: SpanKind,
    /// Keep only spans whose name equals this.
    pub span_name: Option<String>,
    /// Keep only spans whose `http.route` equals this.
    pub http_route: Option<String>,
}

/// The span kinds a model may name, as its schema lists them (`all` is `any`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // Only its schema is used: a model's `span_kind` is a [`SpanKind`].
pub enum SpanKindName {
    Server,
    Client,
    Internal,
    Producer,
    Consumer,
    Unspecified,
    Any,
    All,
}

/// Which spans of an OTLP source a metric reads, by the span's kind. A value that is none
/// of the kinds is refused when a model loads (a typo would otherwise watch nothing and
/// give `nodata` forever); it reads back as [`SpanKind::Unknown`] only from an analysis
/// stored by an older version, so such a row stays readable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum SpanKind {
    /// Spans of every kind (`any`, or `all`).
    Any,
    Unspecified,
    Internal,
    /// The default: the requests a service served.
    #[default]
    Server,
    Client,
    Producer,
    Consumer,
    /// None of the above, as written.
    Unknown(String),
}

impl SpanKind {
    /// The kinds a model may name, as it names them.
    pub const NAMES: &'static str =
        "server, client, internal, producer, consumer, unspecified, any";
}

impl From<String> for SpanKind {
    fn from(text: String) -> SpanKind {
        match text.as_str() {
            "any" | "all" => SpanKind::Any,
            "unspecified" => SpanKind::Unspecified,
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => SpanKind::Unknown(text),
        }
    }
}

impl From<SpanKind> for String {
    fn from(kind: SpanKind) -> String {
        match kind {
            SpanKind::Any => "any".into(),
            SpanKind::Unspecified => "unspecified".into(),
            SpanKind::Internal => "internal".into(),
            SpanKind::Server => "server".into(),
            SpanKind::Client => "client".into(),
            SpanKind::Producer => "producer".into(),
            SpanKind::Consumer => "consumer".into(),
            SpanKind::Unknown(text) => text,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSource {
    /// Query pack name (a file in `queries/`). Not with `promql`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pack: String,
    /// Query name inside the pack. Not with `promql`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub query: String,
    /// Instead of `pack` and `query`: a PromQL template written in the model, run as a
    /// range query over the window, one point per `{{ step }}`; the points are the
    /// metric's samples (a pack's `series` query). `{{ name }}` placeholders are filled
    /// from the scope as in packs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promql: Option<String>,
}

impl PrometheusSource {
    /// The pack a metric's query counts under in the daemon's metrics: the pack's name, or
    /// `inline` for a `promql` of the model's own.
    pub fn pack_label(&self) -> &str {
        match self.promql {
            Some(_) => "inline",
            None => &self.pack,
        }
    }

    /// How queries, errors and the daemon's metrics name this source: `pack/query`, or
    /// `inline` for a `promql` of the model's own.
    pub fn label(&self) -> String {
        match self.promql {
            Some(_) => "inline".into(),
            None => format!("{}/{}", self.pack, self.query),
        }
    }
}

/// A metric read from `/metrics` endpoints the daemon scrapes at the start and end of
/// every interval; the increase in between is judged (`src/daemon/scrape.rs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScrapeSource {
    /// The targets' URL, with `{{ name }}` placeholders filled from the analysis's scope
    /// (names the model's `scope` lists). A value listing several comma-separated items
    /// gives one target each; a side's targets are summed.
    pub url: String,
    /// Distribution metrics: a histogram, as a PromQL selector (`name{label="value"}`).
    pub histogram: Option<String>,
    /// Error-ratio metrics: the counter of all requests, as a PromQL selector.
    pub requests: Option<String>,
    /// Error-ratio metrics: the counter of failed requests (`x_total{code=~"5.."}`).
    pub errors: Option<String>,
    /// Longest a scrape may take (default 10s).
    pub timeout: Option<String>,
}

/// One metric of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Metric {
    /// Not all whitespace; unique within the model.
    #[schema(
        min_length = 1,
        pattern = r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    )]
    pub name: String,
    /// Group the metric scores in (default: the metric's own name).
    pub group: Option<String>,
    #[serde(default)]
    pub kind: MetricKind,
    pub source: Option<Source>,
    /// Default: `mann-whitney` for distributions, `proportion` for error ratios;
    /// `sequential` works for both.
    pub test: Option<TestKind>,
    /// Sequential tests: the canary counts as equivalent once its confidence sequence lies
    /// within `[1/(1+m), 1+m]` times the baseline (every watched quantile, or the error-rate
    /// ratio). Needed for an early pass. Greater than 0; `test: sequential` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0.0)]
    pub equivalence_margin: Option<f64>,
    #[serde(default)]
    pub direction: Direction,
    /// Significance level of the test (default 0.01). Intervals are reported at
    /// 1 - 2*alpha for one-sided directions (so 0.98, Kayenta's level, by default) and
    /// 1 - alpha for `either`. Within (0, 0.5).
    #[serde(default = "default_alpha")]
    #[schema(exclusive_minimum = 0.0, exclusive_maximum = 0.5, default = 0.01)]
    pub alpha: f64,
    #[serde(default)]
    pub effect: Effect,
    /// A critical metric that regresses fails the canary whatever the score.
    #[serde(default)]
    pub critical: bool,
    /// Fewer observations (or requests) than this on either side is `nodata`.
    pub min_samples: Option<u64>,
    /// Missing data counts as a failed metric instead of being left out of the score.
    #[serde(default)]
    pub must_have_data: bool,
    #[serde(default)]
    pub nan: NanStrategy,
    pub slo: Option<Slo>,
    /// Unit of the observations, for display (e.g. `ms`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub unit: String,
}

fn default_alpha() -> f64 {
    0.01
}

impl Metric {
    pub fn group(&self) -> &str {
        self.group.as_deref().unwrap_or(&self.name)
    }
    /// The effect size that gates this metric.
    pub fn measure(&self) -> EffectMeasure {
        self.effect.measure.unwrap_or(match self.kind {
            MetricKind::Distribution => EffectMeasure::MedianRatio,
            MetricKind::ErrorRatio => EffectMeasure::Ratio,
        })
    }
    pub fn test(&self) -> TestKind {
        self.test.unwrap_or(match self.kind {
            MetricKind::Distribution => TestKind::MannWhitney,
            MetricKind::ErrorRatio => TestKind::Proportion,
        })
    }
    pub fn min_samples(&self) -> u64 {
        self.min_samples.unwrap_or(match self.kind {
            MetricKind::Distribution => 10,
            MetricKind::ErrorRatio => 100,
        })
    }
    /// Confidence level of the reported intervals.
    pub fn conf_level(&self) -> f64 {
        match self.direction {
            Direction::Either => 1.0 - self.alpha,
            _ => 1.0 - 2.0 * self.alpha,
        }
    }
}

/// Problems found in a model, each with its file and field.
struct Problems<'a> {
    file: &'a str,
    problems: Vec<Problem>,
}

impl<'f> Problems<'f> {
    fn add(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.into(),
            field: field.into(),
            reason: reason.into(),
        });
    }

    /// The same collector, naming fields under `prefix` (`metrics[2].`).
    fn at(&mut self, prefix: String) -> Scoped<'_, 'f> {
        Scoped {
            found: self,
            prefix,
        }
    }
}

/// Problems of one part of a model (a metric), its fields named under a prefix.
struct Scoped<'a, 'f> {
    found: &'a mut Problems<'f>,
    prefix: String,
}

impl Scoped<'_, '_> {
    fn add(&mut self, field: &str, reason: impl Into<String>) {
        let field = format!("{}{field}", self.prefix);
        self.found.add(field, reason);
    }
}

impl Metric {
    /// The significance level, the test against the kind, and the equivalence margin.
    fn check_test(&self, at: &mut Scoped<'_, '_>) {
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            at.add("alpha", format!("{} is not in (0, 0.5)", self.alpha));
        }
        match (self.kind, self.test()) {
            (MetricKind::Distribution, TestKind::Proportion) => at.add(
                "test",
                "`proportion` tests error ratios; a distribution uses `mann-whitney`",
            ),
            (MetricKind::ErrorRatio, TestKind::MannWhitney) => at.add(
                "test",
                "`mann-whitney` tests distributions; an error ratio uses `proportion` or `sequential`",
            ),
            _ => {}
        }
        if let Some(margin) = self.equivalence_margin {
            if !(margin.is_finite() && margin > 0.0) {
                at.add(
                    "equivalence_margin",
                    format!("{margin} is not a margin > 0 (0.1 means within 10%)"),
                );
            } else if self.test() != TestKind::Sequential {
                at.add("equivalence_margin", "applies to `test: sequential` only");
            }
        }
    }

    /// The effect measure against the kind, and the gates' values and order.
    fn check_effect(&self, at: &mut Scoped<'_, '_>) {
        let e = &self.effect;
        match (self.kind, self.measure()) {
            (MetricKind::ErrorRatio, EffectMeasure::Ratio) => {}
            (MetricKind::ErrorRatio, other) => at.add(
                "effect.measure",
                format!(
                    "`{}` does not apply to an error ratio; use `ratio`",
                    other.name()
                ),
            ),
            (MetricKind::Distribution, EffectMeasure::Ratio) => at.add(
                "effect.measure",
                "`ratio` is for error ratios; use median-ratio, mean-ratio, shift-ratio or cles",
            ),
            _ => {}
        }
        for (field, value) in [
            ("allowed_increase", e.allowed_increase),
            ("allowed_decrease", e.allowed_decrease),
            ("critical_increase", e.critical_increase),
            ("critical_decrease", e.critical_decrease),
        ] {
            if let Some(v) = value {
                let bad =
                    !v.is_finite() || v < 0.0 || (self.measure() == EffectMeasure::Cles && v > 1.0);
                if bad {
                    at.add(
                        &format!("effect.{field}"),
                        format!("{v} is not a valid `{}` value", self.measure().name()),
                    );
                }
            }
        }
        if e.critical_increase() < e.allowed_increase() {
            at.add(
                "effect.critical_increase",
                format!(
                    "{} is below allowed_increase ({})",
                    e.critical_increase(),
                    e.allowed_increase()
                ),
            );
        }
        if e.critical_decrease() > e.allowed_decrease() {
            at.add(
                "effect.critical_decrease",
                format!(
                    "{} is above allowed_decrease ({})",
                    e.critical_decrease(),
                    e.allowed_decrease()
                ),
            );
        }
    }

    /// The SLO: error ratios only, a target in (0, 1) and a positive burn rate.
    fn check_slo(&self, at: &mut Scoped<'_, '_>) {
        let Some(slo) = self.slo else {
            return;
        };
        if self.kind != MetricKind::ErrorRatio {
            at.add("slo", "an SLO applies to error-ratio metrics only");
        }
        if !(slo.target > 0.0 && slo.target < 1.0) {
            at.add("slo.target", format!("{} is not in (0, 1)", slo.target));
        }
        if !(slo.max_burn_rate.is_finite() && slo.max_burn_rate > 0.0) {
            at.add(
                "slo.max_burn_rate",
                format!("{} is not > 0", slo.max_burn_rate),
            );
        }
    }
}

/// One thing wrong with a model file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub file: String,
    /// Dotted path of the field (`metrics[1].effect.allowed_increase`), or a line/column.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.field, self.reason)
    }
}

/// A model that failed to load, with every problem found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct ModelError {
    pub problems: Vec<Problem>,
}

impl Model {
    /// Parses and validates a model; `file` names it in problems.
    pub fn from_yaml(text: &str, file: &str) -> Result<Model, ModelError> {
        let model: Model = serde_saphyr::from_str(text).map_err(|e| ModelError {
            problems: vec![yaml_problem(file, &e)],
        })?;
        model.validate(file)?;
        Ok(model)
    }

    /// Parses a model given as JSON (an inline model in an API request).
    pub fn from_json(value: serde_json::Value, file: &str) -> Result<Model, ModelError> {
        let model: Model = serde_json::from_value(value).map_err(|e| ModelError {
            problems: vec![Problem {
                file: file.into(),
                field: "(model)".into(),
                reason: e.to_string(),
            }],
        })?;
        model.validate(file)?;
        Ok(model)
    }

    pub fn from_file(path: &Path) -> Result<Model, ModelError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ModelError {
            problems: vec![Problem {
                file: file.clone(),
                field: "(file)".into(),
                reason: format!("cannot read: {e}"),
            }],
        })?;
        Model::from_yaml(&text, &file)
    }

    /// Every rule serde cannot express. Collects all problems, not the first.
    pub fn validate(&self, file: &str) -> Result<(), ModelError> {
        let mut found = Problems {
            file,
            problems: Vec::new(),
        };
        if self.name.trim().is_empty() {
            found.add("name", "must not be empty");
        }
        if self.metrics.is_empty() {
            found.add("metrics", "a model needs at least one metric");
        }
        if self.metrics.len() > MAX_METRICS {
            // Refused before any per-metric check, so an oversized model costs one count.
            found.add(
                "metrics",
                format!(
                    "{} metrics is more than the limit of {MAX_METRICS} metrics per model",
                    self.metrics.len()
                ),
            );
            return Err(ModelError {
                problems: found.problems,
            });
        }
        self.check_thresholds(&mut found);
        self.check_early_pass(&mut found);
        self.check_groups(&mut found);
        let mut seen = std::collections::BTreeSet::new();
        for (i, m) in self.metrics.iter().enumerate() {
            let mut at = found.at(format!("metrics[{i}]."));
            if m.name.trim().is_empty() {
                at.add("name", "must not be empty");
            } else if !seen.insert(m.name.as_str()) {
                at.add("name", format!("`{}` is defined twice", m.name));
            }
            m.check_test(&mut at);
            m.check_effect(&mut at);
            if let Some(Source::Otlp(o)) = &m.source
                && let SpanKind::Unknown(text) = &o.span_kind
            {
                at.add(
                    "source.otlp.span_kind",
                    format!("`{text}` is not a span kind (one of {})", SpanKind::NAMES),
                );
            }
            if let Some(Source::Prometheus(p)) = &m.source {
                let by_pack = !p.pack.is_empty() || !p.query.is_empty();
                match (&p.promql, by_pack) {
                    (Some(_), true) => at.add(
                        "source.prometheus",
                        "give either `pack` and `query`, or `promql`, not both",
                    ),
                    (Some(q), false) if q.trim().is_empty() => {
                        at.add("source.prometheus.promql", "must not be empty")
                    }
                    (None, _) if p.pack.trim().is_empty() || p.query.trim().is_empty() => at.add(
                        "source.prometheus",
                        "needs `pack` and `query` (a query of a pack), or `promql`",
                    ),
                    _ => {}
                }
            }
            if let Some(Source::Scrape(source)) = &m.source {
                for (field, reason) in scrape::check(source, m.kind, &self.scope) {
                    at.add(&format!("source.scrape.{field}"), reason);
                }
            }
            m.check_slo(&mut at);
        }
        if found.problems.is_empty() {
            Ok(())
        } else {
            Err(ModelError {
                problems: found.problems,
            })
        }
    }

    fn check_thresholds(&self, found: &mut Problems<'_>) {
        let t = self.thresholds;
        if !(0.0..=100.0).contains(&t.pass) || !(0.0..=100.0).contains(&t.marginal) {
            found.add(
                "thresholds",
                format!(
                    "pass ({}) and marginal ({}) must be within 0..100",
                    t.pass, t.marginal
                ),
            );
        } else if t.marginal > t.pass {
            found.add(
                "thresholds.marginal",
                format!("{} is above pass ({})", t.marginal, t.pass),
            );
        }
    }

    fn check_early_pass(&self, found: &mut Problems<'_>) {
        let Some(early) = &self.early_pass else {
            return;
        };
        if let Err(why) = early.min_duration() {
            found.add("early_pass.min_duration", why);
        }
        let sequential: Vec<usize> = (0..self.metrics.len())
            .filter(|&i| self.metrics[i].test() == TestKind::Sequential)
            .collect();
        if sequential.is_empty() {
            found.add(
                "early_pass",
                "needs at least one metric with `test: sequential`",
            );
        }
        for i in sequential {
            if self.metrics[i].equivalence_margin.is_none() {
                found.add(
                    format!("metrics[{i}].equivalence_margin"),
                    "early_pass needs a margin on every sequential metric",
                );
            }
        }
    }

    fn check_groups(&self, found: &mut Problems<'_>) {
        let used: std::collections::HashSet<&str> =
            self.metrics.iter().map(Metric::group).collect();
        let mut total_weight = 0.0;
        for (name, group) in &self.groups {
            if let Some(w) = group.weight {
                if !(w.is_finite() && w >= 0.0) {
                    found.add(
                        format!("groups.{name}.weight"),
                        format!("{w} is not a weight >= 0"),
                    );
                } else {
                    total_weight += w;
                }
            }
            if !used.contains(name.as_str()) {
                found.add(format!("groups.{name}"), "no metric is in this group");
            }
        }
        if total_weight > 100.0 + 1e-9 {
            found.add(
                "groups",
                format!("weights add up to {total_weight}, more than 100"),
            );
        }
    }

    /// The metric called `name`: a linear search, for one lookup. Code that looks up
    /// many names builds [`Model::index`] once instead, so its cost stays linear.
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// Every metric by name, for many lookups.
    pub fn index(&self) -> std::collections::HashMap<&str, &Metric> {
        self.metrics.iter().map(|m| (m.name.as_str(), m)).collect()
    }
}

/// A YAML parse error as a problem: the line and column, and what went wrong.
pub(crate) fn yaml_problem(file: &str, e: &serde_saphyr::Error) -> Problem {
    let field = match e.location() {
        Some(loc) => format!("line {}, column {}", loc.line(), loc.column()),
        None => "(document)".into(),
    };
    // The crate's message may carry a rendered snippet; keep the first line, it says what.
    let message = e.to_string();
    let first = message
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid YAML");
    // Location is already in `field`; keep only what went wrong.
    let mut reason = first.strip_prefix("error:").unwrap_or(first).trim();
    if let Some((_, after)) = reason
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        reason = after;
    }
    let reason = reason.to_string();
    Problem {
        file: file.into(),
        field,
        reason,
    }
}

/// Where models are looked up: the built-in ones, overridden or extended by a directory.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    models: BTreeMap<String, Model>,
}

impl Catalog {
    /// The models built into the binary.
    pub fn builtin() -> Catalog {
        let mut models = BTreeMap::new();
        for (file, text) in BUILTIN_MODELS {
            // Built-in models are checked by tests; a broken one is a build defect.
            if let Ok(m) = Model::from_yaml(text, file) {
                models.insert(m.name.clone(), m);
            }
        }
        Catalog { models }
    }

    /// Adds every `*.yaml`/`*.yml` model in `dir` (overriding built-ins by name).
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), ModelError> {
        let mut problems = Vec::new();
        for path in yaml_files(dir).map_err(|p| ModelError { problems: vec![p] })? {
            match Model::from_file(&path) {
                Ok(m) => {
                    self.models.insert(m.name.clone(), m);
                }
                Err(e) => problems.extend(e.problems),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ModelError { problems })
        }
    }

    pub fn get(&self, name: &str) -> Option<&Model> {
        self.models.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }

    /// Every model, by name.
    pub fn models(&self) -> impl Iterator<Item = &Model> {
        self.models.values()
    }
}

/// The YAML files of a directory, sorted, or the file itself.
pub fn yaml_files(path: &Path) -> Result<Vec<std::path::PathBuf>, Problem> {
    let problem = |reason: String| Problem {
        file: path.display().to_string(),
        field: "(path)".into(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| problem(format!("cannot read: {e}")))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<_> = std::fs::read_dir(path)
        .map_err(|e| problem(format!("cannot list: {e}")))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml") | Some("yml")
                )
        })
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_models_is_built_in_and_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let on_disk: Vec<String> = yaml_files(&dir)
            .unwrap()
            .iter()
            .map(|p| format!("models/{}", p.file_name().unwrap().to_string_lossy()))
            .collect();
        let built_in: Vec<String> = BUILTIN_MODELS.iter().map(|(f, _)| f.to_string()).collect();
        assert_eq!(
            on_disk, built_in,
            "src/model/builtin.rs must list every models/*.yaml"
        );
        for (file, text) in BUILTIN_MODELS {
            Model::from_yaml(text, file).unwrap();
        }
        assert!(builtin(DEFAULT_MODEL).is_some());
    }

    #[test]
    fn a_span_kind_is_one_of_the_otlp_kinds_or_refused_at_load() {
        let model = |kind: &str| {
            Model::from_yaml(
                &format!(
                    "name: m\nmetrics:\n  - name: x\n    source: {{otlp: {{span_kind: {kind}}}}}\n"
                ),
                "m.yaml",
            )
        };
        let kind = |m: Model| match &m.metrics[0].source {
            Some(Source::Otlp(o)) => o.span_kind.clone(),
            other => panic!("not an OTLP source: {other:?}"),
        };
        assert_eq!(kind(model("client").unwrap()), SpanKind::Client);
        assert_eq!(kind(model("all").unwrap()), SpanKind::Any);
        let none = Model::from_yaml(
            "name: m\nmetrics:\n  - name: x\n    source: {otlp: {}}\n",
            "m.yaml",
        )
        .unwrap();
        assert_eq!(kind(none), SpanKind::Server);
        // A typo used to load and then watch nothing, every interval `nodata`.
        let e = model("sever").unwrap_err().to_string();
        assert!(
            e.contains("m.yaml")
                && e.contains("metrics[0].source.otlp.span_kind")
                && e.contains("`sever` is not a span kind"),
            "{e}"
        );
        // What a model of an older version stored reads back, as unknown.
        let stored: OtlpSource = serde_json::from_str(r#"{"span_kind": "sever"}"#).unwrap();
        assert_eq!(stored.span_kind, SpanKind::Unknown("sever".into()));
        assert_eq!(
            serde_json::to_string(&stored.span_kind).unwrap(),
            r#""sever""#
        );
    }

    #[test]
    fn defaults_fill_in() {
        let m = Model::from_yaml("name: m\nmetrics:\n  - name: x\n", "m.yaml").unwrap();
        let x = &m.metrics[0];
        assert_eq!(x.test(), TestKind::MannWhitney);
        assert_eq!(x.direction, Direction::Increase);
        assert_eq!(x.alpha, 0.01);
        assert!((x.conf_level() - 0.98).abs() < 1e-12);
        assert_eq!(x.group(), "x");
        assert_eq!(m.thresholds, Thresholds::default());
        assert_eq!(m.scope, vec!["service.name", "service.version"]);
        let e = Model::from_yaml(
            "name: m\nmetrics:\n  - name: e\n    kind: error-ratio\n",
            "m",
        )
        .unwrap();
        assert_eq!(e.metrics[0].test(), TestKind::Proportion);
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let text = "name: ''\nthresholds: {pass: 50, marginal: 80}\ngroups:\n  lat: {weight: 70}\n  err: {weight: 40}\nmetrics:\n  - name: a\n    group: lat\n    alpha: 0.7\n  - name: b\n    group: err\n    kind: error-ratio\n    test: mann-whitney\n";
        let e = Model::from_yaml(text, "bad.yaml").unwrap_err();
        let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "name",
                "thresholds.marginal",
                "groups",
                "metrics[0].alpha",
                "metrics[1].test",
            ]
        );
        assert!(e.problems.iter().all(|p| p.file == "bad.yaml"));
    }

    #[test]
    fn a_prometheus_source_is_a_pack_query_or_promql() {
        let text = "name: m\nmetrics:\n  - name: both\n    source: {prometheus: {pack: p, query: q, promql: 'x'}}\n  - name: half\n    source: {prometheus: {pack: p}}\n  - name: blank\n    source: {prometheus: {promql: ' '}}\n  - name: neither\n    source: {prometheus: {}}\n";
        let e = Model::from_yaml(text, "m.yaml").unwrap_err();
        let found: Vec<(&str, &str)> = e
            .problems
            .iter()
            .map(|p| (p.field.as_str(), p.reason.as_str()))
            .collect();
        assert_eq!(found.len(), 4, "{e}");
        assert_eq!(found[0].0, "metrics[0].source.prometheus");
        assert!(found[0].1.contains("not both"), "{e}");
        assert_eq!(found[1].0, "metrics[1].source.prometheus");
        assert_eq!(found[2].0, "metrics[2].source.prometheus.promql");
        assert_eq!(found[3].0, "metrics[3].source.prometheus");
        let ok = "name: m\nmetrics:\n  - name: a\n    source: {prometheus: {promql: 'avg(x)'}}\n  - name: b\n    source: {prometheus: {pack: istio, query: latency}}\n";
        Model::from_yaml(ok, "m.yaml").unwrap();
    }

    #[test]
    fn early_pass_and_margins_are_checked() {
        let text = "name: m\nearly_pass: {min_duration: soon}\nmetrics:\n  - name: a\n    test: sequential\n  - name: b\n    equivalence_margin: 0.1\n  - name: c\n    kind: error-ratio\n    test: sequential\n    equivalence_margin: -1\n";
        let e = Model::from_yaml(text, "m.yaml").unwrap_err();
        let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "early_pass.min_duration",
                "metrics[0].equivalence_margin",
                "metrics[1].equivalence_margin",
                "metrics[2].equivalence_margin",
            ],
            "{e}"
        );
        let ok = "name: m\nearly_pass: {min_duration: 5m}\nmetrics:\n  - name: a\n    test: sequential\n    equivalence_margin: 0.1\n";
        let m = Model::from_yaml(ok, "m.yaml").unwrap();
        assert_eq!(
            m.early_pass.unwrap().min_duration().unwrap(),
            std::time::Duration::from_secs(300)
        );
        let none = "name: m\nearly_pass: {min_duration: 5m}\nmetrics:\n  - name: a\n";
        let e = Model::from_yaml(none, "m.yaml").unwrap_err();
        assert!(
            e.to_string()
                .contains("early_pass: needs at least one metric"),
            "{e}"
        );
    }

    #[test]
    fn unknown_fields_and_bad_yaml_name_the_line() {
        let e = Model::from_yaml("name: m\nmetrics:\n  - name: x\n    alhpa: 0.1\n", "t.yaml")
            .unwrap_err();
        assert_eq!(e.problems[0].field, "line 4, column 5");
        assert!(
            e.problems[0].reason.contains("unknown field `alhpa`"),
            "{e}"
        );
        let e = Model::from_yaml("name: [unclosed\n", "t.yaml").unwrap_err();
        assert!(e.problems[0].field.starts_with("line "), "{e}");
    }
}
