//! The metric families: their label sets, buckets, names and help texts (the registry),
//! the daemon-wide counters recorded with one call, and the two text encodings.
//!
//! The names, labels and help texts are an interface: `dashboards/` queries them
//! (checked by `tests/dashboards.rs`) and `docs/api.md` lists them.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, prometheus_text, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::Metrics;
use crate::analysis::Status;

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
pub(super) struct StatusLabels {
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct AnalysisLabels {
    pub analysis: String,
    pub key: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct MetricLabels {
    pub analysis: String,
    pub metric: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct EffectLabels {
    pub analysis: String,
    pub metric: String,
    pub measure: &'static str,
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
pub(super) struct CiLabels {
    pub analysis: String,
    pub metric: String,
    pub measure: &'static str,
    pub bound: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct QuantileLabels {
    pub analysis: String,
    pub metric: String,
    pub side: &'static str,
    pub quantile: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SideLabels {
    pub analysis: String,
    pub metric: String,
    pub side: &'static str,
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
struct PartialLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

/// The daemon's listeners, as `augury_connections{listener}` names them.
pub const LISTENERS: [&str; 3] = ["api", "otlp_grpc", "otlp_http"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotifierLabels {
    notifier: String,
}

/// Time-to-verdict buckets: 1 s to about 9 h.
#[derive(Clone, Copy, Debug)]
pub(super) struct VerdictBuckets;

impl MetricConstructor<Histogram> for VerdictBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(1.0, 2.0, 16))
    }
}

/// Latency buckets for API requests: 100 µs to about 2.4 s.
#[derive(Clone, Copy, Debug)]
pub(super) struct HttpBuckets;

impl MetricConstructor<Histogram> for HttpBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.0001, 2.5, 12))
    }
}

pub(super) type FloatGauge = Gauge<f64, AtomicU64>;

/// Every family the daemon exposes about itself, registered in `registry`.
#[derive(Debug)]
pub(super) struct Families {
    registry: Registry,
    pub analyses: Family<StatusLabels, Gauge>,
    pub verdicts: Family<OutcomeLabels, Counter>,
    pub score: Family<AnalysisLabels, FloatGauge>,
    pub p_value: Family<MetricLabels, FloatGauge>,
    pub effect: Family<EffectLabels, FloatGauge>,
    pub interval_duration: Histogram,
    pub interval_failures: Counter,
    otlp_spans: Family<SpanLabels, Counter>,
    query_errors: Family<QueryLabels, Counter>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram, HttpBuckets>,
    pub effect_ci: Family<CiLabels, FloatGauge>,
    pub quantile: Family<QuantileLabels, FloatGauge>,
    pub error_ratio: Family<SideLabels, FloatGauge>,
    time_to_verdict: Family<OutcomeLabels, Histogram, VerdictBuckets>,
    query_duration: Family<PackLabels, Histogram, HttpBuckets>,
    notifications: Family<NotifyLabels, Counter>,
    notification_duration: Family<NotifierLabels, Histogram, HttpBuckets>,
    notifications_pending: Gauge,
    replicas: Gauge,
    otlp_watches: Gauge,
    judge_pool: crate::pool::PoolGauges,
    leases: Gauge,
    lease_takeovers: Counter,
    partial_windows: Family<PartialLabels, Counter>,
    notification_claims: Counter,
    connections: Family<ListenerLabels, Gauge>,
    connections_refused: Family<ListenerLabels, Counter>,
}

impl Families {
    /// Registers every family with its name and help text.
    pub fn new() -> Families {
        let mut m = Families {
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
            replicas: Gauge::default(),
            otlp_watches: Gauge::default(),
            judge_pool: crate::pool::PoolGauges::default(),
            leases: Gauge::default(),
            lease_takeovers: Counter::default(),
            partial_windows: Family::default(),
            notification_claims: Counter::default(),
            connections: Family::default(),
            connections_refused: Family::default(),
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
        r.register(
            "augury_replicas",
            "Replicas sharing the database that this one saw alive at its last heartbeat (1 on SQLite)",
            m.replicas.clone(),
        );
        r.register(
            "augury_otlp_watches",
            "Scopes (one side of an analysis, one span filter) whose spans this replica keeps",
            m.otlp_watches.clone(),
        );
        r.register(
            "augury_judge_in_flight",
            "Judgments running now on the bounded judging pool (analysis intervals and POST /api/v1/judge)",
            m.judge_pool.in_flight.clone(),
        );
        r.register(
            "augury_judge_abandoned",
            "Judgments whose caller stopped waiting (a request that timed out): told to stop between metrics",
            m.judge_pool.abandoned.clone(),
        );
        r.register(
            "augury_judge_refused",
            "POST /api/v1/judge requests refused with 503 because every judging slot was busy",
            m.judge_pool.refused.clone(),
        );
        r.register(
            "augury_leases",
            "Running analyses this replica holds the lease of (judges)",
            m.leases.clone(),
        );
        r.register(
            "augury_lease_takeovers",
            "Leases this replica took over from a replica that died or left",
            m.lease_takeovers.clone(),
        );
        r.register(
            "augury_partial_windows",
            "Partial windows (one replica's spans of one interval): written by this replica, \
             merged into an interval it judged, and of those, late (merged into a later \
             interval than their own)",
            m.partial_windows.clone(),
        );
        r.register(
            "augury_notification_claims",
            "Outbox rows this replica claimed for sending",
            m.notification_claims.clone(),
        );
        r.register(
            "augury_connections",
            "Connections open now, by listener (api, otlp_grpc, otlp_http)",
            m.connections.clone(),
        );
        r.register(
            "augury_connections_refused",
            "Connections accepted and closed at once because their listener was at its \
             connection cap, by listener",
            m.connections_refused.clone(),
        );
        for listener in LISTENERS {
            let _ = m.connections.get_or_create(&ListenerLabels { listener });
            let _ = m
                .connections_refused
                .get_or_create(&ListenerLabels { listener });
        }
        for result in ["written", "merged", "late"] {
            let _ = m.partial_windows.get_or_create(&PartialLabels { result });
        }
        // Every status shows up from the first scrape, so dashboards need no `or vector(0)`.
        for s in ALL_STATUSES {
            let _ = m.analyses.get_or_create(&status_labels(s));
            if s != Status::Running {
                let _ = m.verdicts.get_or_create(&outcome_labels(s));
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
}

/// The daemon-wide series: not tied to one analysis, so never removed.
impl Metrics {
    /// Sets how many analyses are in `status` (at startup, from the store).
    pub fn set_analyses(&self, status: Status, n: i64) {
        self.families
            .analyses
            .get_or_create(&status_labels(status))
            .set(n);
    }

    /// Analysis `id` was decided as `status`, `seconds` after it was created.
    pub fn time_to_verdict(&self, status: Status, seconds: f64) {
        self.families
            .time_to_verdict
            .get_or_create(&outcome_labels(status))
            .observe(seconds.max(0.0));
    }

    /// One metric's data was fetched from Prometheus with query pack `pack`.
    pub fn prometheus_query(&self, pack: &str, took: Duration) {
        self.families
            .query_duration
            .get_or_create(&PackLabels {
                pack: pack.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// Makes `notifier`'s series exist from the first scrape (at zero).
    pub fn notifier_configured(&self, notifier: &str) {
        for result in ["delivered", "retry", "failed"] {
            let _ = self.families.notifications.get_or_create(&NotifyLabels {
                notifier: notifier.to_string(),
                result,
            });
        }
        let _ = self
            .families
            .notification_duration
            .get_or_create(&NotifierLabels {
                notifier: notifier.to_string(),
            });
    }

    /// A delivery attempt to `notifier` ended as `result` (delivered, retry, failed).
    pub fn notification(&self, notifier: &str, result: &'static str, took: Duration) {
        self.families
            .notifications
            .get_or_create(&NotifyLabels {
                notifier: notifier.to_string(),
                result,
            })
            .inc();
        self.families
            .notification_duration
            .get_or_create(&NotifierLabels {
                notifier: notifier.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// How many notifications wait in the outbox.
    pub fn set_notifications_pending(&self, n: u64) {
        self.families.notifications_pending.set(n as i64);
    }

    /// How many replicas this one saw alive, and how many leases it holds.
    pub fn set_replicas(&self, alive: usize, leases: usize) {
        self.families.replicas.set(alive as i64);
        self.families.leases.set(leases as i64);
    }

    /// How many scopes the OTLP windows watch now.
    pub fn set_otlp_watches(&self, n: usize) {
        self.families.otlp_watches.set(n as i64);
    }

    /// The gauges of the judging pool, for [`crate::pool::JudgePool::new`].
    pub fn judge_pool_gauges(&self) -> crate::pool::PoolGauges {
        self.families.judge_pool.clone()
    }

    /// This replica took over the lease of an analysis.
    pub fn lease_taken_over(&self) {
        self.families.lease_takeovers.inc();
    }

    /// `n` partial windows were `result` (written, merged, late).
    pub fn partial_windows(&self, result: &'static str, n: u64) {
        self.families
            .partial_windows
            .get_or_create(&PartialLabels { result })
            .inc_by(n);
    }

    /// This replica claimed `n` outbox rows.
    pub fn notifications_claimed(&self, n: u64) {
        self.families.notification_claims.inc_by(n);
    }

    /// Listener `listener` (one of [`LISTENERS`]) has `open` connections and refused
    /// `refused` more since the last call.
    pub fn connections(&self, listener: &'static str, open: usize, refused: u64) {
        let labels = ListenerLabels { listener };
        self.families
            .connections
            .get_or_create(&labels)
            .set(open as i64);
        self.families
            .connections_refused
            .get_or_create(&labels)
            .inc_by(refused);
    }

    /// `n` spans received over OTLP ended as `result`.
    pub fn otlp_spans(&self, result: SpanResult, n: u64) {
        self.families
            .otlp_spans
            .get_or_create(&SpanLabels {
                result: result.as_str(),
            })
            .inc_by(n);
    }

    /// A Prometheus query of `pack` failed.
    pub fn prometheus_query_error(&self, pack: &str, query: &str) {
        self.families
            .query_errors
            .get_or_create(&QueryLabels {
                pack: pack.to_string(),
                query: query.to_string(),
            })
            .inc();
    }

    /// An API request to `route` (the route template, not the raw path, so the series
    /// stay few whatever the ids) answered `code`.
    pub fn http_request(&self, route: &'static str, code: u16, took: Duration) {
        self.families
            .http_requests
            .get_or_create(&HttpLabels { route, code })
            .inc();
        self.families
            .http_duration
            .get_or_create(&RouteLabels { route })
            .observe(took.as_secs_f64());
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.families.registry);
        out
    }

    /// Everything, in the OpenMetrics text format.
    pub fn encode_openmetrics(&self) -> String {
        let mut out = String::with_capacity(4096);
        let _ = text::encode(&mut out, &self.families.registry);
        out
    }
}

const ALL_STATUSES: [Status; 5] = [
    Status::Running,
    Status::Pass,
    Status::Fail,
    Status::Inconclusive,
    Status::Cancelled,
];

pub(super) fn status_labels(status: Status) -> StatusLabels {
    StatusLabels {
        status: status.as_str(),
    }
}

pub(super) fn outcome_labels(status: Status) -> OutcomeLabels {
    OutcomeLabels {
        outcome: status.as_str(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::test_support::sample;

    #[test]
    fn counters_and_gauges_show_in_the_exposition() {
        let m = Metrics::new();
        m.status_entered("a1", Status::Running);
        m.status_entered("a2", Status::Running);
        m.status_entered("a1", Status::Fail);
        m.otlp_spans(SpanResult::Accepted, 5);
        m.otlp_spans(SpanResult::Dropped, 2);
        m.prometheus_query_error("istio", "latency");
        m.http_request(
            "/api/v1/analyses/{id}/verdict",
            200,
            Duration::from_micros(300),
        );
        let text = m.encode();
        let route = "{route=\"/api/v1/analyses/{id}/verdict\"";
        for (name, labels, want) in [
            ("augury_analyses", "{status=\"running\"}", "1"),
            ("augury_analyses", "{status=\"fail\"}", "1"),
            ("augury_analyses", "{status=\"pass\"}", "0"),
            ("augury_verdicts_total", "{outcome=\"fail\"}", "1"),
            ("augury_otlp_spans_total", "{result=\"accepted\"}", "5"),
            ("augury_otlp_spans_total", "{result=\"dropped\"}", "2"),
            (
                "augury_prometheus_query_errors_total",
                "{pack=\"istio\",query=\"latency\"}",
                "1",
            ),
            (
                "augury_http_requests_total",
                &format!("{route},code=\"200\"}}"),
                "1",
            ),
            (
                "augury_http_request_duration_seconds_count",
                &format!("{route}}}"),
                "1",
            ),
        ] {
            assert_eq!(sample(&text, name, labels), Some(want), "{name}{labels}");
        }
        assert!(m.encode_openmetrics().ends_with("# EOF\n"));
    }
}
