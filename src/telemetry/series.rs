//! The per-analysis series and their bound: which series each analysis owns, kept while
//! it runs and for the [`KEEP_FINISHED`] most recently finished analyses, then removed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use super::Metrics;
use super::families::{
    AnalysisLabels, CiLabels, EffectLabels, MetricLabels, QuantileLabels, SideLabels,
};

/// How many finished analyses keep their per-analysis series.
pub const KEEP_FINISHED: usize = 256;

/// The series one analysis owns, so they can be removed together.
#[derive(Debug, Default)]
pub(super) struct Series {
    pub key: String,
    pub metrics: Vec<String>,
    pub effects: Vec<(String, &'static str)>,
    pub cis: Vec<CiLabels>,
    pub quantiles: Vec<QuantileLabels>,
    pub error_ratios: Vec<SideLabels>,
}

/// Which analyses own series: the running ones, and the finished ones still shown.
#[derive(Debug, Default)]
pub(super) struct Owners {
    /// Per-analysis series of running analyses, by analysis id.
    live: Mutex<HashMap<String, Series>>,
    /// Finished analyses whose series are still shown, oldest first.
    finished: Mutex<VecDeque<(String, Series)>>,
}

impl Metrics {
    /// Running analysis `id` (now) has `series`, besides those it had.
    pub(super) fn keep_series(&self, id: &str, series: Series) {
        let mut live = lock(&self.owners.live);
        match live.get_mut(id) {
            Some(known) => {
                merge_series(known, series);
            }
            None => {
                live.insert(id.to_string(), series);
            }
        }
    }

    /// Analysis `id` finished: its series join the finished ones, and the oldest finished
    /// analyses beyond [`KEEP_FINISHED`] lose theirs.
    pub(super) fn retire_series(&self, id: &str) {
        let Some(series) = lock(&self.owners.live).remove(id) else {
            return;
        };
        let mut finished = lock(&self.owners.finished);
        finished.push_back((id.to_string(), series));
        while finished.len() > KEEP_FINISHED {
            if let Some((old_id, old)) = finished.pop_front() {
                self.remove_series(&old_id, &old);
            }
        }
    }

    fn remove_series(&self, id: &str, series: &Series) {
        let f = &self.families;
        for labels in &series.cis {
            f.effect_ci.remove(labels);
        }
        for labels in &series.quantiles {
            f.quantile.remove(labels);
        }
        for labels in &series.error_ratios {
            f.error_ratio.remove(labels);
        }
        f.score.remove(&AnalysisLabels {
            analysis: id.to_string(),
            key: series.key.clone(),
        });
        for metric in &series.metrics {
            f.p_value.remove(&MetricLabels {
                analysis: id.to_string(),
                metric: metric.clone(),
            });
        }
        for (metric, measure) in &series.effects {
            f.effect.remove(&EffectLabels {
                analysis: id.to_string(),
                metric: metric.clone(),
                measure,
            });
        }
    }
}

fn merge_series(known: &mut Series, new: Series) {
    add_new(&mut known.metrics, new.metrics);
    add_new(&mut known.effects, new.effects);
    add_new(&mut known.cis, new.cis);
    add_new(&mut known.quantiles, new.quantiles);
    add_new(&mut known.error_ratios, new.error_ratios);
}

/// Appends the items of `new` that `known` lacks. Linear in both: a model of many
/// metrics records as many series every interval.
fn add_new<T: Eq + std::hash::Hash + Clone>(known: &mut Vec<T>, new: Vec<T>) {
    let mut seen: std::collections::HashSet<T> = known.iter().cloned().collect();
    for item in new {
        if seen.insert(item.clone()) {
            known.push(item);
        }
    }
}

/// A poisoned lock only means another thread panicked mid-update of bookkeeping that
/// stays usable (at worst a series is kept or removed late), so carry on.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::analysis::Status;
    use crate::telemetry::test_support::{errors_judgment, sample};

    #[test]
    fn finished_analyses_series_are_bounded() {
        let m = Metrics::new();
        let j = errors_judgment();
        let n = KEEP_FINISHED + 10;
        for i in 0..n {
            let id = format!("a{i}");
            m.status_entered(&id, Status::Running);
            m.interval_judged(&id, "k", &j, Duration::from_millis(1));
            m.status_entered(&id, Status::Pass);
            m.retire_series(&id);
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
