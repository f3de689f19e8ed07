//! The rules an analysis runs by between its intervals, apart from any I/O: what is kept
//! of it between looks ([`Progress`]), when it stops ([`next_status`]), how data a model
//! refuses is set aside ([`judge_tolerant`]), which data a failed attempt must carry into
//! its retry ([`once_only`]) and how long that retry waits ([`retry_wait_ms`]).

use std::collections::BTreeMap;

use super::{Analysis, Interval, Status};
use crate::judge::{
    Classification, JudgeOptions, Judgment, MetricData, SequentialState, Verdict, judge_step,
    screen,
};
use crate::model::{Model, Source, TestKind};
use crate::stats::sequential::Decision;

/// Longest wait before an interval that failed is tried again.
pub const MAX_RETRY_WAIT_MS: i64 = 60_000;

/// The wait before the `attempt`th try (1-based) of an interval that failed: doubling
/// from one second, never past the analysis's interval nor [`MAX_RETRY_WAIT_MS`].
pub fn retry_wait_ms(attempt: u32, interval_ms: Option<u64>) -> i64 {
    let doubling = 1_000i64.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let cap = interval_ms.map_or(MAX_RETRY_WAIT_MS, |i| {
        (i as i64).clamp(1_000, MAX_RETRY_WAIT_MS)
    });
    doubling.min(cap)
}

/// What the runner keeps of one running analysis between its intervals; rebuilt from the
/// stored intervals when missing (after a restart) or out of step.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Intervals taken in; equals the analysis's `intervals` when in step.
    pub intervals: u32,
    /// The sequential tests, one look per interval so far.
    pub sequential: SequentialState,
    /// Intervals that brought no data for any metric (on both sides).
    pub empty: u32,
}

impl Progress {
    /// Rebuilds an analysis's progress from its stored intervals, in order.
    pub fn replay(analysis: &Analysis, intervals: &[Interval]) -> Progress {
        let mut p = Progress::default();
        for i in intervals {
            // Stored data was judged once already (refused metrics were dropped before
            // it was stored), so a replay does not fail; if it does (a model that changed
            // under a stored analysis), that look is skipped rather than the analysis.
            if let Err(e) = p
                .sequential
                .advance(&analysis.model, &i.data, &JudgeOptions::default())
            {
                tracing::warn!(analysis = %analysis.id, interval = i.seq, error = %e,
                    "stored interval not replayed into the sequential tests");
            }
            if no_evidence(&i.data) {
                p.empty += 1;
            }
        }
        p.intervals = analysis.intervals;
        p
    }
}

/// True when no metric in `data` has observations on both sides.
pub fn no_evidence(data: &BTreeMap<String, MetricData>) -> bool {
    !data.values().any(|d| match d {
        MetricData::Samples { baseline, canary } => !baseline.is_empty() && !canary.is_empty(),
        MetricData::Histograms { baseline, canary } => {
            baseline.histogram.count() > 0 && canary.histogram.count() > 0
        }
        MetricData::Counts { baseline, canary } => baseline.requests > 0 && canary.requests > 0,
    })
}

/// The state an interval's judgment leads to, and why (`None`: the analysis runs on, or
/// ends at its lifetime for the reason the verdict gives).
///
/// Before the lifetime ends:
/// - a critical metric that regressed fails the analysis at once, and so does a critical
///   sequential metric whose test rejected in the regression direction;
/// - a non-critical sequential metric that rejected fails it once the score falls below
///   `marginal` (a sequential rejection is final, so that score cannot recover);
/// - with `early_pass` configured, it passes once `min_duration` has elapsed, every
///   sequential metric has shown equivalence, and the verdict is a pass.
///
/// `empty` intervals (of `seq`) brought no data for any metric: when they are more than
/// half, the evidence is mostly missing and the analysis cannot pass, early or at its end
/// (it ends `inconclusive` unless a regression failed it).
pub fn next_status(
    analysis: &Analysis,
    seq: u32,
    judgment: &Judgment,
    empty: u32,
) -> (Status, Option<String>) {
    let sequential = || {
        judgment
            .metrics
            .iter()
            .filter(|m| m.test == TestKind::Sequential)
    };
    let rejected = |m: &&crate::judge::MetricResult| {
        matches!(m.classification, Classification::High | Classification::Low)
            && m.sequential
                .as_ref()
                .is_some_and(|s| s.decision == Decision::Reject)
    };
    if judgment.metrics.iter().any(|m| m.critical_failure) {
        return (Status::Fail, None);
    }
    if let Some(m) = sequential().filter(rejected).find(|m| m.critical) {
        return (
            Status::Fail,
            Some(format!(
                "stopped early: the sequential test of critical metric `{}` rejected",
                m.name
            )),
        );
    }
    let mostly_missing = 2 * u64::from(empty) > u64::from(seq);
    let planned = analysis.planned_intervals();
    if seq < planned {
        let fails: Vec<&str> = sequential()
            .filter(rejected)
            .map(|m| m.name.as_str())
            .collect();
        if !fails.is_empty() && judgment.score < judgment.thresholds.marginal {
            return (
                Status::Fail,
                Some(format!(
                    "stopped early: the sequential test of {} rejected and the score {} is below marginal {}",
                    fails
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    crate::judge::fmt_num(judgment.score),
                    judgment.thresholds.marginal
                )),
            );
        }
        let min = analysis
            .model
            .early_pass
            .as_ref()
            .and_then(|e| e.min_duration().ok());
        let elapsed = u128::from(seq) * u128::from(analysis.interval_ms);
        if let Some(min) = min
            && elapsed >= min.as_millis()
            && !mostly_missing
            && judgment.verdict == Verdict::Pass
            && sequential().next().is_some()
            && sequential().all(|m| {
                m.sequential
                    .as_ref()
                    .is_some_and(|s| s.decision == Decision::AcceptEquivalent)
            })
        {
            return (
                Status::Pass,
                Some(format!(
                    "stopped early: every sequential metric is equivalent to the baseline after {}",
                    humantime::format_duration(std::time::Duration::from_millis(elapsed as u64))
                )),
            );
        }
        return (Status::Running, None);
    }
    match judgment.verdict {
        Verdict::Fail => (Status::Fail, None),
        _ if mostly_missing => (
            Status::Inconclusive,
            Some(format!(
                "{empty} of {seq} intervals brought no data: too little evidence to pass"
            )),
        ),
        Verdict::Pass => (Status::Pass, None),
        Verdict::Marginal | Verdict::Inconclusive => (Status::Inconclusive, None),
    }
}

/// The part of an interval's data that its sources hand out only once (everything but
/// Prometheus queries, which a retry runs again over the same window).
pub fn once_only(
    model: &Model,
    data: BTreeMap<String, MetricData>,
) -> BTreeMap<String, MetricData> {
    let index = model.index();
    data.into_iter()
        .filter(|(name, _)| {
            index
                .get(name.as_str())
                .is_some_and(|m| !matches!(m.source, Some(Source::Prometheus(_))))
        })
        .collect()
}

/// Judges what there is. Data the model refuses (a metric it lacks, the wrong shape) is
/// dropped with a reason instead of stalling the analysis: one bad source must not keep
/// the other metrics from a verdict. The refused metric leaves the cumulative data and
/// this interval's look, so the stored interval holds only what was judged and replaying
/// it later cannot fail. `sequential` takes the look only when the judgment succeeds.
pub fn judge_tolerant(
    model: &Model,
    cumulative: &mut BTreeMap<String, MetricData>,
    sequential: &mut SequentialState,
    look: &mut BTreeMap<String, MetricData>,
) -> Judgment {
    // What the judge refuses without computing (unknown metrics, wrong shapes, NaN the
    // model fails on) goes in one pass; the loop below then meets only the rare refusal
    // the statistics make, so the cost stays one judgment, not one per refused metric.
    let mut refused = Vec::new();
    let mut named = std::collections::HashSet::new();
    for data in [&mut *cumulative, &mut *look] {
        for e in screen(model, data) {
            data.remove(e.metric());
            if named.insert(e.metric().to_string()) {
                refused.push(format!("data refused: {e}"));
            }
        }
    }
    // A metric refused in one place leaves the other too, as the loop below does.
    for name in &named {
        cumulative.remove(name);
        look.remove(name);
    }
    loop {
        match judge_step(
            model,
            cumulative,
            sequential,
            look,
            &JudgeOptions::default(),
        ) {
            Ok(mut j) => {
                j.reasons.extend(refused);
                return j;
            }
            Err(e) => {
                refused.push(format!("data refused: {e}"));
                let mut found = cumulative.remove(e.metric()).is_some();
                found |= look.remove(e.metric()).is_some();
                if !found {
                    // Cannot happen (every judge error names a metric present in the
                    // data), but never loop: judge with no data at all.
                    if cumulative.is_empty() && look.is_empty() {
                        // Nothing left to remove: the model itself cannot be judged
                        // (model validation makes this unreachable).
                        return Judgment {
                            model: model.name.clone(),
                            verdict: Verdict::Inconclusive,
                            score: 0.0,
                            thresholds: model.thresholds,
                            reasons: refused,
                            groups: Vec::new(),
                            metrics: Vec::new(),
                        };
                    }
                    cumulative.clear();
                    look.clear();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::judge_looks;
    use crate::stats::proportions::Counts;

    /// An analysis record for `next_status`, 30 s intervals over 10 minutes.
    fn analysis_of(model: Model) -> Analysis {
        Analysis {
            id: "a".into(),
            key: "k".into(),
            request: serde_json::from_value(serde_json::json!({
                "key": "k", "model": "m", "baseline": {}, "canary": {}}))
            .unwrap(),
            model,
            status: Status::Running,
            interval_ms: 30_000,
            lifetime_ms: 600_000,
            created_ms: 0,
            next_due_ms: 0,
            decided_ms: None,
            intervals: 0,
            score: None,
            judgment: None,
            cumulative: BTreeMap::new(),
        }
    }

    fn counts(canary_errors: u64) -> BTreeMap<String, MetricData> {
        BTreeMap::from([(
            "errors".to_string(),
            MetricData::Counts {
                baseline: Counts {
                    requests: 20_000,
                    errors: 200,
                },
                canary: Counts {
                    requests: 20_000,
                    errors: canary_errors,
                },
            },
        )])
    }

    /// Judges `looks` one interval at a time as the runner does; returns the interval at
    /// which the analysis was decided, its status and the early reason.
    fn decide_over(
        a: &Analysis,
        looks: &[BTreeMap<String, MetricData>],
    ) -> (u32, Status, Option<String>) {
        let mut cumulative = BTreeMap::new();
        for (i, look) in looks.iter().enumerate() {
            for (name, d) in look {
                match cumulative.get_mut(name) {
                    Some(existing) => MetricData::merge(existing, d),
                    None => {
                        cumulative.insert(name.clone(), d.clone());
                    }
                }
            }
            let refs: Vec<_> = looks[..=i].iter().collect();
            let j = judge_looks(&a.model, &cumulative, &refs, &JudgeOptions::default()).unwrap();
            let seq = i as u32 + 1;
            let (status, why) = next_status(a, seq, &j, 0);
            if status.is_final() {
                return (seq, status, why);
            }
        }
        (looks.len() as u32, Status::Running, None)
    }

    #[test]
    fn sequential_metrics_stop_an_analysis_early() {
        let yaml = "name: m\nearly_pass: {min_duration: 3m}\nmetrics:\n  - name: errors\n    kind: error-ratio\n    test: sequential\n    equivalence_margin: 0.25\n";
        let a = analysis_of(Model::from_yaml(yaml, "m").unwrap());
        // Equal error rates: equivalent within 25% soon, but no pass before 3 minutes.
        let same: Vec<_> = (0..20).map(|_| counts(200)).collect();
        let (seq, status, why) = decide_over(&a, &same);
        assert_eq!(status, Status::Pass);
        assert_eq!(seq, 6, "3 minutes of 30 s intervals");
        assert!(why.unwrap().contains("equivalent"));
        // Doubled errors on a non-critical metric: the score falls to 0, below marginal.
        let worse: Vec<_> = (0..20).map(|_| counts(400)).collect();
        let (seq, status, why) = decide_over(&a, &worse);
        assert_eq!(status, Status::Fail);
        assert_eq!(
            seq, 1,
            "400 vs 200 errors in 20,000 requests is decisive at once"
        );
        assert!(
            why.unwrap()
                .contains("sequential test of `errors` rejected")
        );
        // Without early_pass the equal canary runs its whole lifetime and passes then.
        let yaml = "name: m\nmetrics:\n  - name: errors\n    kind: error-ratio\n    test: sequential\n    equivalence_margin: 0.25\n";
        let a = analysis_of(Model::from_yaml(yaml, "m").unwrap());
        let (seq, status, why) = decide_over(&a, &same);
        assert_eq!((seq, status, why), (20, Status::Pass, None));
    }

    #[test]
    fn a_critical_sequential_rejection_fails_at_once() {
        let yaml = "name: m\nthresholds: {pass: 95, marginal: 0}\nmetrics:\n  - name: errors\n    kind: error-ratio\n    test: sequential\n    critical: true\n    effect: {allowed_increase: 1.2, critical_increase: 5}\n";
        let a = analysis_of(Model::from_yaml(yaml, "m").unwrap());
        // The effect (2x) is past allowed but short of critical, so no critical failure,
        // and a score of 0 is not below marginal 0; the critical metric's sequential
        // rejection alone ends the analysis.
        let worse: Vec<_> = (0..20).map(|_| counts(400)).collect();
        let (seq, status, why) = decide_over(&a, &worse);
        assert_eq!((seq, status), (1, Status::Fail));
        assert!(why.unwrap().contains("critical metric `errors`"));
    }
}
