//! The daemon's own metrics: what it judged, what it took in, how its API is doing.
//!
//! One [`Metrics`] value lives for the whole process (behind an `Arc`) and every part of
//! the daemon records into it with one method call; `GET /metrics` encodes it.
//!
//! One file per job: `families.rs` registers the metric families (names, labels, help
//! texts), records the daemon-wide counters and encodes the exposition; `series.rs` keeps
//! the bounded per-analysis series; `judgment.rs` turns an interval's judgment into
//! numbers; `observer.rs` is the analysis runner's `Observer`.
//!
//! Invariant: per-analysis series (`augury_analysis_score`, `augury_metric_p_value`,
//! `augury_metric_effect`) are bounded. An analysis's series stay while it runs and for
//! the [`KEEP_FINISHED`] most recently finished analyses (so a scrape after the verdict
//! still sees the final numbers), then they are removed: the series count does not grow
//! with the number of analyses ever run.

mod families;
mod judgment;
mod observer;
mod series;

use std::time::Duration;

use crate::analysis::Status;
use crate::judge::Judgment;
use families::{Families, outcome_labels, status_labels};
use series::Owners;

pub use families::{OPENMETRICS_TEXT, PROMETHEUS_TEXT, SpanResult};
pub use series::KEEP_FINISHED;

/// Every metric the daemon exposes about itself.
#[derive(Debug)]
pub struct Metrics {
    families: Families,
    /// Which analyses own per-analysis series.
    owners: Owners,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            families: Families::new(),
            owners: Owners::default(),
        }
    }

    /// An interval of analysis `id` was judged: its score, p-values and effects, and how
    /// long the interval's work took.
    pub fn interval_judged(&self, id: &str, key: &str, judgment: &Judgment, took: Duration) {
        self.families.interval_duration.observe(took.as_secs_f64());
        let series = self.families.record_judgment(id, key, judgment);
        self.keep_series(id, series);
    }

    /// Analysis `id` entered `status`, as the store reports its committed changes: on
    /// creation `Running`, then its verdict or `Cancelled`. The one keeper of the
    /// `augury_analyses{status}` gauge and of the verdict counter (the daemon subscribes
    /// it to the store). A cancelled analysis's series are retired here, since no interval
    /// follows a cancel; a decided one's by the runner's observer, once its last
    /// interval's numbers are in.
    pub fn status_entered(&self, id: &str, status: Status) {
        let f = &self.families;
        if status == Status::Running {
            f.analyses
                .get_or_create(&status_labels(Status::Running))
                .inc();
            return;
        }
        f.analyses
            .get_or_create(&status_labels(Status::Running))
            .dec();
        f.analyses.get_or_create(&status_labels(status)).inc();
        f.verdicts.get_or_create(&outcome_labels(status)).inc();
        if status == Status::Cancelled {
            self.retire_series(id);
        }
    }
}

#[cfg(test)]
mod test_support {
    use crate::judge::{JudgeOptions, Judgment, MetricData, judge};
    use crate::model::Model;
    use crate::stats::proportions::Counts;

    /// The value of series `name{labels}` in an exposition.
    pub fn sample<'a>(text: &'a str, name: &str, labels: &str) -> Option<&'a str> {
        let prefix = format!("{name}{labels} ");
        text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
    }

    /// The value of series `name{labels}` in an exposition, which must show it.
    pub fn value(text: &str, name: &str, labels: &str) -> f64 {
        let shown = sample(text, name, labels).unwrap_or_else(|| panic!("no {name}{labels}"));
        shown.parse().unwrap()
    }

    /// One error-ratio metric: 10 errors in 10,000 requests against 80 in 10,000.
    pub fn errors_judgment() -> Judgment {
        errors_judgment_with("", 10, 80)
    }

    /// One error-ratio metric over 10,000 requests a side, with these errors; `extra`
    /// ends the metric's model (`"    test: sequential\n"`).
    pub fn errors_judgment_with(extra: &str, baseline: u64, canary: u64) -> Judgment {
        let yaml = format!("name: e\nmetrics:\n  - name: errors\n    kind: error-ratio\n{extra}");
        let model = Model::from_yaml(&yaml, "e.yaml").unwrap();
        let counts = |errors| Counts {
            requests: 10_000,
            errors,
        };
        let data = [(
            "errors".to_string(),
            MetricData::Counts {
                baseline: counts(baseline),
                canary: counts(canary),
            },
        )]
        .into();
        judge(&model, &data, &JudgeOptions::default()).unwrap()
    }
}
