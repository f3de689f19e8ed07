//! The analysis runner reports through [`Metrics`]: this file is the one that knows the
//! runner's `Observer` trait.

use std::time::Duration;

use super::Metrics;
use crate::analysis::{Analysis, Interval, Status};
use crate::analysis::{Observer, SourceError};
use crate::model::Source;

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
        // The status gauge and the verdict counter follow the store; here the analysis's
        // series are retired, after its last interval's numbers went in.
        self.retire_series(&analysis.id);
        if let Some(decided) = analysis.decided_ms {
            self.time_to_verdict(status, (decided - analysis.created_ms) as f64 / 1000.0);
        }
    }

    fn interval_failed(&self, _id: &str, _error: &str) {
        self.families.interval_failures.inc();
    }

    fn source_errors(&self, analysis: &Analysis, errors: &[SourceError]) {
        let index = analysis.model.index();
        for e in errors {
            if let Some(Source::Prometheus(p)) =
                index.get(e.metric.as_str()).and_then(|m| m.source.as_ref())
            {
                let query = if p.promql.is_some() {
                    "promql"
                } else {
                    &p.query
                };
                self.prometheus_query_error(p.pack_label(), query);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Model;
    use crate::telemetry::test_support::{errors_judgment, sample};

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
        let decided = Analysis {
            status: Status::Fail,
            decided_ms: Some(30_000),
            ..a.clone()
        };
        Observer::decided(&m, &decided, Status::Fail);
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
        // The gauge and the verdict counter are the store's to move, not the runner's.
        assert_eq!(
            sample(&text, "augury_verdicts_total", "{outcome=\"fail\"}"),
            Some("0")
        );
        assert_eq!(
            sample(
                &text,
                "augury_time_to_verdict_seconds_count",
                "{outcome=\"fail\"}"
            ),
            Some("1")
        );
    }
}
