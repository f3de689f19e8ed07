//! The daemon's own metrics: what it judged, what it took in, how its API is doing.
//!
//! One [`Metrics`] value lives for the whole process (behind an `Arc`) and every part of
//! the daemon records into it with one method call; `GET /metrics` encodes it.
//!
//! Invariant: per-analysis series (`augury_analysis_score`, `augury_metric_p_value`,
//! `augury_metric_effect`) are bounded. An analysis's series stay while it runs and for
//! the [`KEEP_FINISHED`] most recently finished analyses (so a scrape after the verdict
//! still sees the final numbers), then they are removed: the series count does not grow
//! with the number of analyses ever run.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::analysis::{Analysis, Interval, Status};
use crate::analysis::{Observer, SourceError};
use crate::judge::Judgment;
use crate::model::Source;

/// How many finished analyses keep their per-analysis series.
pub const KEEP_FINISHED: usize = 256;

/// The `Content-Type` of [`Metrics::encode`] (Prometheus text format 0.0.4).
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The `Content-Type` of [`Metrics::encode_openmetrics`].
pub const OPENMETRICS_TEXT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What became of received spans.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum SpanResult {
    /// Matched a running analysis's scope and went into its window.
    Accepted,
    /// Refused as malformed (bad attributes, negative durations, ...).
    Rejected,
    /// Well formed, but no analysis watches its scope.
    Dropped,
    /// Of a watched scope, but no watch's span filter keeps it (a client span where the
    /// model reads server spans): counted apart so that `dropped` never hides spans of a
    /// live analysis.
    Filtered,
}

impl SpanResult {
    pub fn as_str(self) -> &'static str {
        match self {
            SpanResult::Accepted => "accepted",
            SpanResult::Rejected => "rejected",
            SpanResult::Dropped => "dropped",
            SpanResult::Filtered => "filtered",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnalysisLabels {
    analysis: String,
    key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MetricLabels {
    analysis: String,
    metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EffectLabels {
    analysis: String,
    metric: String,
    measure: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SpanLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    pack: String,
    query: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CiLabels {
    analysis: String,
    metric: String,
    measure: &'static str,
    bound: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    analysis: String,
    metric: String,
    side: &'static str,
    quantile: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SideLabels {
    analysis: String,
    metric: String,
    side: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PackLabels {
    pack: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifyLabels {
    notifier: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifierLabels {
    notifier: String,
}

/// Time-to-verdict buckets: 1 s to about 9 h.
#[derive(Clone, Copy, Debug)]
struct VerdictBuckets;

impl MetricConstructor<Histogram> for VerdictBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(1.0, 2.0, 16))
    }
}

/// Latency buckets for API requests: 100 µs to about 2.4 s.
#[derive(Clone, Copy, Debug)]
struct HttpBuckets;

impl MetricConstructor<Histogram> for HttpBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.0001, 2.5, 12))
    }
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// The series one analysis owns, so they can be removed together.
#[derive(Debug, Default)]
struct Series {
    key: String,
    metrics: Vec<String>,
    effects: Vec<(String, &'static str)>,
    cis: Vec<CiLabels>,
    quantiles: Vec<QuantileLabels>,
    error_ratios: Vec<SideLabels>,
}

/// Every metric the daemon exposes about itself.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    analyses: Family<StatusLabels, Gauge>,
    verdicts: Family<OutcomeLabels, Counter>,
    score: Family<AnalysisLabels, FloatGauge>,
    p_value: Family<MetricLabels, FloatGauge>,
    effect: Family<EffectLabels, FloatGauge>,
    interval_duration: Histogram,
    interval_failures: Counter,
    otlp_spans: Family<SpanLabels, Counter>,
    query_errors: Family<QueryLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram, HttpBuckets>,
    effect_ci: Family<CiLabels, FloatGauge>,
    quantile: Family<QuantileLabels, FloatGauge>,
    error_ratio: Family<SideLabels, FloatGauge>,
    time_to_verdict: Family<OutcomeLabels, Histogram, VerdictBuckets>,
    query_duration: Family<PackLabels, Histogram, HttpBuckets>,
    notifications: Family<NotifyLabels, Counter>,
    notification_duration: Family<NotifierLabels, Histogram, HttpBuckets>,
    notifications_pending: Gauge,
    /// Per-analysis series of running analyses, by analysis id.
    live: Mutex<HashMap<String, Series>>,
    /// Finished analyses whose series are still shown, oldest first.
    finished: Mutex<VecDeque<(String, Series)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            analyses: Family::default(),
            verdicts: Family::default(),
            score: Family::default(),
            p_value: Family::default(),
            effect: Family::default(),
            interval_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            interval_failures: Counter::default(),
            otlp_spans: Family::default(),
            query_errors: Family::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(HttpBuckets),
            effect_ci: Family::default(),
            quantile: Family::default(),
            error_ratio: Family::default(),
            time_to_verdict: Family::new_with_constructor(VerdictBuckets),
            query_duration: Family::new_with_constructor(HttpBuckets),
            notifications: Family::default(),
            notification_duration: Family::new_with_constructor(HttpBuckets),
            notifications_pending: Gauge::default(),
            live: Mutex::new(HashMap::new()),
            finished: Mutex::new(VecDeque::new()),
        };
        let r = &mut m.registry;
        r.register("augury_analyses", "Analyses by status", m.analyses.clone());
        r.register(
            "augury_verdicts",
            "Final verdicts reached, by outcome",
            m.verdicts.clone(),
        );
        r.register(
            "augury_analysis_score",
            "Latest score of an analysis, 0 to 100",
            m.score.clone(),
        );
        r.register(
            "augury_metric_p_value",
            "Latest p-value of one metric of an analysis: the one its classification rests on (anytime-valid for sequential metrics)",
            m.p_value.clone(),
        );
        r.register(
            "augury_metric_effect",
            "Latest effect size of one metric of an analysis (the measure its model gates on)",
            m.effect.clone(),
        );
        r.register(
            "augury_interval_duration_seconds",
            "Time to gather, judge and persist one interval of an analysis",
            m.interval_duration.clone(),
        );
        r.register(
            "augury_interval_failures",
            "Attempts at an interval that could not be judged or recorded (each is tried again)",
            m.interval_failures.clone(),
        );
        r.register(
            "augury_otlp_spans",
            "Spans received over OTLP, by what became of them",
            m.otlp_spans.clone(),
        );
        r.register(
            "augury_prometheus_query_errors",
            "Failed Prometheus queries, by query pack and query",
            m.query_errors.clone(),
        );
        r.register(
            "augury_http_requests",
            "API requests, by route template and status code",
            m.http_requests.clone(),
        );
        r.register(
            "augury_http_request_duration_seconds",
            "API request latency, by route template",
            m.http_duration.clone(),
        );
        r.register(
            "augury_metric_effect_ci",
            "Confidence interval of a metric's effect (rate ratio of errors, relative \
             Hodges-Lehmann shift of samples), by bound",
            m.effect_ci.clone(),
        );
        r.register(
            "augury_metric_quantile",
            "Latest quantile of a distribution metric per side (baseline, canary), in the \
             metric's unit",
            m.quantile.clone(),
        );
        r.register(
            "augury_metric_error_ratio",
            "Latest error ratio (errors / requests) of a metric per side (baseline, canary)",
            m.error_ratio.clone(),
        );
        r.register(
            "augury_time_to_verdict_seconds",
            "From creation to the final verdict, by outcome",
            m.time_to_verdict.clone(),
        );
        r.register(
            "augury_prometheus_query_duration_seconds",
            "Time to fetch one metric's data from Prometheus, by query pack",
            m.query_duration.clone(),
        );
        r.register(
            "augury_notifications",
            "Notification delivery attempts, by notifier and result (delivered, retry, failed)",
            m.notifications.clone(),
        );
        r.register(
            "augury_notification_duration_seconds",
            "Time of one notification delivery attempt, by notifier",
            m.notification_duration.clone(),
        );
        r.register(
            "augury_notifications_pending",
            "Notifications in the outbox not delivered yet",
            m.notifications_pending.clone(),
        );
        // Every status shows up from the first scrape, so dashboards need no `or vector(0)`.
        for s in ALL_STATUSES {
            let _ = m.analyses.get_or_create(&status_labels(s));
            if s != Status::Running {
                let _ = m.verdicts.get_or_create(&OutcomeLabels {
                    outcome: s.as_str(),
                });
            }
        }
        for result in [
            SpanResult::Accepted,
            SpanResult::Rejected,
            SpanResult::Dropped,
            SpanResult::Filtered,
        ] {
            let _ = m.otlp_spans.get_or_create(&SpanLabels {
                result: result.as_str(),
            });
        }
        m
    }

    /// Sets how many analyses are in `status` (at startup, from the store).
    pub fn set_analyses(&self, status: Status, n: i64) {
        self.analyses.get_or_create(&status_labels(status)).set(n);
    }

    /// A new analysis started running.
    pub fn analysis_created(&self) {
        self.analyses
            .get_or_create(&status_labels(Status::Running))
            .inc();
    }

    /// An interval of analysis `id` was judged: its score, p-values and effects, and how
    /// long the interval's work took.
    pub fn interval_judged(&self, id: &str, key: &str, judgment: &Judgment, took: Duration) {
        self.interval_duration.observe(took.as_secs_f64());
        let mut series = Series {
            key: key.to_string(),
            ..Series::default()
        };
        self.score
            .get_or_create(&AnalysisLabels {
                analysis: id.to_string(),
                key: key.to_string(),
            })
            .set(judgment.score);
        for m in &judgment.metrics {
            if let Some(p) = m.p_value() {
                self.p_value
                    .get_or_create(&MetricLabels {
                        analysis: id.to_string(),
                        metric: m.name.clone(),
                    })
                    .set(p);
                series.metrics.push(m.name.clone());
            }
            if let Some(gate) = &m.effect_gate
                && let Some(value) = gate.value
            {
                let measure = gate.measure.name();
                self.effect
                    .get_or_create(&EffectLabels {
                        analysis: id.to_string(),
                        metric: m.name.clone(),
                        measure,
                    })
                    .set(value);
                series.effects.push((m.name.clone(), measure));
            }
            self.sides(id, m, &mut series);
            if let Some(ci) = effect_ci(m) {
                for (bound, value) in [("lower", ci.1), ("upper", ci.2)] {
                    let labels = CiLabels {
                        analysis: id.to_string(),
                        metric: m.name.clone(),
                        measure: ci.0,
                        bound,
                    };
                    self.effect_ci.get_or_create(&labels).set(value);
                    series.cis.push(labels);
                }
            }
        }
        let mut live = lock(&self.live);
        match live.get_mut(id) {
            Some(known) => {
                merge_series(known, series);
            }
            None => {
                live.insert(id.to_string(), series);
            }
        }
    }

    /// Analysis `id` reached its final `status` (pass, fail, inconclusive or cancelled).
    pub fn verdict(&self, id: &str, status: Status) {
        if status == Status::Running {
            return;
        }
        self.analyses
            .get_or_create(&status_labels(Status::Running))
            .dec();
        self.analyses.get_or_create(&status_labels(status)).inc();
        self.verdicts
            .get_or_create(&OutcomeLabels {
                outcome: status.as_str(),
            })
            .inc();
        let Some(series) = lock(&self.live).remove(id) else {
            return;
        };
        let mut finished = lock(&self.finished);
        finished.push_back((id.to_string(), series));
        while finished.len() > KEEP_FINISHED {
            if let Some((old_id, old)) = finished.pop_front() {
                self.remove_series(&old_id, &old);
            }
        }
    }

    /// Each side's quantiles and error ratio of metric `m`.
    fn sides(&self, id: &str, m: &crate::judge::MetricResult, series: &mut Series) {
        for (side, summary) in [("baseline", &m.baseline), ("canary", &m.canary)] {
            let Some(summary) = summary else { continue };
            for (quantile, value) in [
                ("0.5", summary.median),
                ("0.9", summary.p90),
                ("0.99", summary.p99),
            ] {
                if let Some(v) = value.filter(|v| v.is_finite()) {
                    let labels = QuantileLabels {
                        analysis: id.to_string(),
                        metric: m.name.clone(),
                        side,
                        quantile,
                    };
                    self.quantile.get_or_create(&labels).set(v);
                    series.quantiles.push(labels);
                }
            }
            if let Some(v) = summary.error_ratio.filter(|v| v.is_finite()) {
                let labels = SideLabels {
                    analysis: id.to_string(),
                    metric: m.name.clone(),
                    side,
                };
                self.error_ratio.get_or_create(&labels).set(v);
                series.error_ratios.push(labels);
            }
        }
    }

    /// Analysis `id` was decided as `status`, `seconds` after it was created.
    pub fn time_to_verdict(&self, status: Status, seconds: f64) {
        self.time_to_verdict
            .get_or_create(&OutcomeLabels {
                outcome: status.as_str(),
            })
            .observe(seconds.max(0.0));
    }

    /// One metric's data was fetched from Prometheus with query pack `pack`.
    pub fn prometheus_query(&self, pack: &str, took: Duration) {
        self.query_duration
            .get_or_create(&PackLabels {
                pack: pack.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Makes `notifier`'s series exist from the first scrape (at zero).
    pub fn notifier_configured(&self, notifier: &str) {
        for result in ["delivered", "retry", "failed"] {
            let _ = self.notifications.get_or_create(&NotifyLabels {
                notifier: notifier.to_string(),
                result,
            });
        }
        let _ = self.notification_duration.get_or_create(&NotifierLabels {
            notifier: notifier.to_string(),
        });
    }

    /// A delivery attempt to `notifier` ended as `result` (delivered, retry, failed).
    pub fn notification(&self, notifier: &str, result: &'static str, took: Duration) {
        self.notifications
            .get_or_create(&NotifyLabels {
                notifier: notifier.to_string(),
                result,
            })
            .inc();
        self.notification_duration
            .get_or_create(&NotifierLabels {
                notifier: notifier.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// How many notifications wait in the outbox.
    pub fn set_notifications_pending(&self, n: u64) {
        self.notifications_pending.set(n as i64);
    }

    fn remove_series(&self, id: &str, series: &Series) {
        for labels in &series.cis {
            self.effect_ci.remove(labels);
        }
        for labels in &series.quantiles {
            self.quantile.remove(labels);
        }
        for labels in &series.error_ratios {
            self.error_ratio.remove(labels);
        }
        self.score.remove(&AnalysisLabels {
            analysis: id.to_string(),
            key: series.key.clone(),
        });
        for metric in &series.metrics {
            self.p_value.remove(&MetricLabels {
                analysis: id.to_string(),
                metric: metric.clone(),
            });
        }
        for (metric, measure) in &series.effects {
            self.effect.remove(&EffectLabels {
                analysis: id.to_string(),
                metric: metric.clone(),
                measure,
            });
        }
    }

    /// `n` spans received over OTLP ended as `result`.
    pub fn otlp_spans(&self, result: SpanResult, n: u64) {
        self.otlp_spans
            .get_or_create(&SpanLabels {
                result: result.as_str(),
            })
            .inc_by(n);
    }

    /// A Prometheus query of `pack` failed.
    pub fn prometheus_query_error(&self, pack: &str, query: &str) {
        self.query_errors
            .get_or_create(&QueryLabels {
                pack: pack.to_string(),
                query: query.to_string(),
            })
            .inc();
    }

    /// An API request to `route` (the route template, not the raw path, so the series
    /// stay few whatever the ids) answered `code`.
    pub fn http_request(&self, route: &'static str, code: u16, took: Duration) {
        self.http_requests
            .get_or_create(&HttpLabels { route, code })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// Everything, in the OpenMetrics text format.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = text::encode(&mut out, &self.registry);
        out
    }
}

/// The runner reports through this: intervals, verdicts, and failed Prometheus queries
/// (a source error of a metric whose source is a query pack).
impl Observer for Metrics {
    fn interval_judged(&self, analysis: &Analysis, interval: &Interval, seconds: f64) {
        Metrics::interval_judged(
            self,
            &analysis.id,
            &analysis.key,
            &interval.judgment,
            Duration::from_secs_f64(seconds.max(0.0)),
        );
    }

    fn decided(&self, analysis: &Analysis, status: Status) {
        self.verdict(&analysis.id, status);
        if let Some(decided) = analysis.decided_ms {
            self.time_to_verdict(status, (decided - analysis.created_ms) as f64 / 1000.0);
        }
    }

    fn interval_failed(&self, _id: &str, _error: &str) {
        self.interval_failures.inc();
    }

    fn source_errors(&self, analysis: &Analysis, errors: &[SourceError]) {
        for e in errors {
            if let Some(Source::Prometheus(p)) = analysis
                .model
                .metric(&e.metric)
                .and_then(|m| m.source.as_ref())
            {
                self.prometheus_query_error(&p.pack, &p.query);
            }
        }
    }
}

const ALL_STATUSES: [Status; 5] = [
    Status::Running,
    Status::Pass,
    Status::Fail,
    Status::Inconclusive,
    Status::Cancelled,
];

fn status_labels(status: Status) -> StatusLabels {
    StatusLabels {
        status: status.as_str(),
    }
}

/// The confidence interval of a metric's effect, for the dashboards: the relative
/// Hodges-Lehmann shift's interval when the judge computed one (samples), else for error
/// ratios the rate ratio's interval by the log method (Katz et al.) at the metric's
/// confidence level. None when undefined (no errors on a side).
fn effect_ci(m: &crate::judge::MetricResult) -> Option<(&'static str, f64, f64)> {
    if let Some(r) = m.effect.as_ref().and_then(|e| e.relative_shift.as_ref()) {
        return Some(("relative-shift", r.lower, r.upper));
    }
    let (b, c) = (m.baseline.as_ref()?, m.canary.as_ref()?);
    let (eb, ec) = (b.errors? as f64, c.errors? as f64);
    let (nb, nc) = (b.count as f64, c.count as f64);
    if eb <= 0.0 || ec <= 0.0 || nb <= 0.0 || nc <= 0.0 {
        return None;
    }
    let log_ratio = ((ec / nc) / (eb / nb)).ln();
    let se = (1.0 / ec - 1.0 / nc + 1.0 / eb - 1.0 / nb).max(0.0).sqrt();
    let z = crate::stats::normal::isf(m.alpha.clamp(1e-12, 0.5) / 2.0);
    let (lower, upper) = ((log_ratio - z * se).exp(), (log_ratio + z * se).exp());
    (lower.is_finite() && upper.is_finite()).then_some(("ratio", lower, upper))
}

fn merge_series(known: &mut Series, new: Series) {
    add_new(&mut known.metrics, new.metrics);
    add_new(&mut known.effects, new.effects);
    add_new(&mut known.cis, new.cis);
    add_new(&mut known.quantiles, new.quantiles);
    add_new(&mut known.error_ratios, new.error_ratios);
}

/// Appends the items of `new` that `known` lacks.
fn add_new<T: PartialEq>(known: &mut Vec<T>, new: Vec<T>) {
    for item in new {
        if !known.contains(&item) {
            known.push(item);
        }
    }
}

/// A poisoned lock only means another thread panicked mid-update of bookkeeping that
/// stays usable (at worst a series is kept or removed late), so carry on.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::{JudgeOptions, MetricData, judge};
    use crate::model::Model;
    use crate::stats::proportions::Counts;

    fn errors_judgment() -> Judgment {
        let model = Model::from_yaml(
            "name: e\nmetrics:\n  - name: errors\n    kind: error-ratio\n",
            "e.yaml",
        )
        .unwrap();
        let data = [(
            "errors".to_string(),
            MetricData::Counts {
                baseline: Counts {
                    requests: 10_000,
                    errors: 10,
                },
                canary: Counts {
                    requests: 10_000,
                    errors: 80,
                },
            },
        )]
        .into();
        judge(&model, &data, &JudgeOptions::default()).unwrap()
    }

    #[test]
    fn a_sequential_metric_reports_its_anytime_valid_p() {
        let model = Model::from_yaml(
            "name: e\nmetrics:\n  - name: errors\n    kind: error-ratio\n    test: sequential\n",
            "e.yaml",
        )
        .unwrap();
        let counts = |errors| Counts {
            requests: 10_000,
            errors,
        };
        let data = [(
            "errors".to_string(),
            MetricData::Counts {
                baseline: counts(10),
                canary: counts(30),
            },
        )]
        .into();
        let j = judge(&model, &data, &JudgeOptions::default()).unwrap();
        let m = &j.metrics[0];
        let anytime = m.sequential.as_ref().unwrap().p_value;
        let fixed = m.proportions.as_ref().unwrap().p_value;
        assert!(anytime > fixed, "anytime {anytime} vs fixed {fixed}");
        let metrics = Metrics::new();
        metrics.interval_judged("a1", "k1", &j, Duration::from_millis(20));
        let shown: f64 = sample(
            &metrics.encode(),
            "augury_metric_p_value",
            "{analysis=\"a1\",metric=\"errors\"}",
        )
        .unwrap()
        .parse()
        .unwrap();
        assert_eq!(shown, anytime);
    }

    fn sample<'a>(text: &'a str, name: &str, labels: &str) -> Option<&'a str> {
        let prefix = format!("{name}{labels} ");
        text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    #[test]
    fn counters_and_gauges_show_in_the_exposition() {
        let m = Metrics::new();
        m.analysis_created();
        m.analysis_created();
        m.verdict("a1", Status::Fail);
        m.otlp_spans(SpanResult::Accepted, 5);
        m.otlp_spans(SpanResult::Dropped, 2);
        m.prometheus_query_error("istio", "latency");
        m.http_request(
            "/api/v1/analyses/{id}/verdict",
            200,
            Duration::from_micros(300),
        );
        let text = m.encode();
        assert_eq!(
            sample(&text, "augury_analyses", "{status=\"running\"}"),
            Some("1")
        );
        assert_eq!(
            sample(&text, "augury_analyses", "{status=\"fail\"}"),
            Some("1")
        );
        assert_eq!(
            sample(&text, "augury_analyses", "{status=\"pass\"}"),
            Some("0")
        );
        assert_eq!(
            sample(&text, "augury_verdicts_total", "{outcome=\"fail\"}"),
            Some("1")
        );
        assert_eq!(
            sample(&text, "augury_otlp_spans_total", "{result=\"accepted\"}"),
            Some("5")
        );
        assert_eq!(
            sample(&text, "augury_otlp_spans_total", "{result=\"dropped\"}"),
            Some("2")
        );
        assert_eq!(
            sample(
                &text,
                "augury_prometheus_query_errors_total",
                "{pack=\"istio\",query=\"latency\"}"
            ),
            Some("1")
        );
        assert_eq!(
            sample(
                &text,
                "augury_http_requests_total",
                "{route=\"/api/v1/analyses/{id}/verdict\",code=\"200\"}"
            ),
            Some("1")
        );
        assert_eq!(
            sample(
                &text,
                "augury_http_request_duration_seconds_count",
                "{route=\"/api/v1/analyses/{id}/verdict\"}"
            ),
            Some("1")
        );
        assert!(m.encode_openmetrics().ends_with("# EOF\n"));
    }

    #[test]
    fn an_interval_sets_score_p_values_and_effects() {
        let m = Metrics::new();
        let j = errors_judgment();
        m.interval_judged("a1", "k1", &j, Duration::from_millis(20));
        let text = m.encode();
        let score: f64 = sample(
            &text,
            "augury_analysis_score",
            "{analysis=\"a1\",key=\"k1\"}",
        )
        .unwrap()
        .parse()
        .unwrap();
        assert_eq!(score, j.score);
        let p = j.metrics[0].proportions.as_ref().unwrap().p_value;
        let shown: f64 = sample(
            &text,
            "augury_metric_p_value",
            "{analysis=\"a1\",metric=\"errors\"}",
        )
        .unwrap()
        .parse()
        .unwrap();
        assert_eq!(shown, p);
        let ratio = j.metrics[0].effect_gate.as_ref().unwrap().value.unwrap();
        let shown: f64 = sample(
            &text,
            "augury_metric_effect",
            "{analysis=\"a1\",metric=\"errors\",measure=\"ratio\"}",
        )
        .unwrap()
        .parse()
        .unwrap();
        assert_eq!(shown, ratio);
        assert_eq!(
            sample(&text, "augury_interval_duration_seconds_count", ""),
            Some("1")
        );
    }

    #[test]
    fn the_runner_reports_through_the_observer() {
        let model = Model::from_yaml(
            "name: p\nscope: [workload]\nmetrics:\n  - name: errors\n    kind: error-ratio\n    source: {prometheus: {pack: istio, query: error-ratio}}\n  - name: latency\n    source: {otlp: {}}\n",
            "p.yaml",
        )
        .unwrap();
        let request: crate::analysis::AnalysisRequest = serde_json::from_value(
            serde_json::json!({"key": "k", "model": "p", "baseline": {"workload": "a"}, "canary": {"workload": "b"}}),
        )
        .unwrap();
        let a = Analysis {
            id: "a1".into(),
            key: "k".into(),
            request,
            model,
            status: Status::Running,
            interval_ms: 30_000,
            lifetime_ms: 60_000,
            created_ms: 0,
            next_due_ms: 30_000,
            decided_ms: None,
            intervals: 0,
            score: None,
            judgment: None,
            cumulative: Default::default(),
        };
        let m = Metrics::new();
        m.analysis_created();
        let errors = |metric: &str| SourceError {
            metric: metric.into(),
            reason: "timeout".into(),
        };
        Observer::source_errors(&m, &a, &[errors("errors"), errors("latency")]);
        let interval = Interval {
            seq: 1,
            start_ms: 0,
            end_ms: 30_000,
            data: Default::default(),
            judgment: errors_judgment(),
        };
        Observer::interval_judged(&m, &a, &interval, 0.25);
        Observer::decided(&m, &a, Status::Fail);
        let text = m.encode();
        assert_eq!(
            sample(
                &text,
                "augury_prometheus_query_errors_total",
                "{pack=\"istio\",query=\"error-ratio\"}"
            ),
            Some("1")
        );
        assert_eq!(
            text.matches("augury_prometheus_query_errors_total{")
                .count(),
            1,
            "an OTLP metric's error is no query error"
        );
        assert!(
            sample(
                &text,
                "augury_analysis_score",
                "{analysis=\"a1\",key=\"k\"}"
            )
            .is_some()
        );
        assert_eq!(
            sample(&text, "augury_interval_duration_seconds_sum", ""),
            Some("0.25")
        );
        assert_eq!(
            sample(&text, "augury_verdicts_total", "{outcome=\"fail\"}"),
            Some("1")
        );
    }

    #[test]
    fn finished_analyses_series_are_bounded() {
        let m = Metrics::new();
        let j = errors_judgment();
        let n = KEEP_FINISHED + 10;
        for i in 0..n {
            let id = format!("a{i}");
            m.analysis_created();
            m.interval_judged(&id, "k", &j, Duration::from_millis(1));
            m.verdict(&id, Status::Pass);
        }
        let text = m.encode();
        let scores = text
            .lines()
            .filter(|l| l.starts_with("augury_analysis_score{"))
            .count();
        assert_eq!(scores, KEEP_FINISHED);
        // The oldest went first; the newest are still there.
        assert!(
            sample(
                &text,
                "augury_analysis_score",
                "{analysis=\"a0\",key=\"k\"}"
            )
            .is_none()
        );
        assert!(
            sample(
                &text,
                "augury_analysis_score",
                &format!("{{analysis=\"a{}\",key=\"k\"}}", n - 1)
            )
            .is_some()
        );
        assert_eq!(
            sample(&text, "augury_analyses", "{status=\"pass\"}"),
            Some(n.to_string().as_str())
        );
    }
}
