//! The scheduler: judges every running analysis each interval and moves it to its verdict.
//!
//! One task owns the schedule (a time-ordered set of due analyses). Each due analysis is
//! judged in its own task, at most `concurrency` at a time, so one slow Prometheus query
//! delays only its own analysis. The store is the source of truth: a task re-reads the
//! analysis before judging and writes the interval with a guard, so a cancel that races
//! an interval wins, and a restart resumes from what was committed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument as _;

use super::{Analysis, Interval, Status};
use crate::judge::{Classification, JudgeOptions, Judgment, MetricData, Verdict, judge_looks};
use crate::model::{Model, TestKind};
use crate::stats::sequential::Decision;
use crate::store::{IntervalUpdate, Store, StoreError};

/// What the rest of the daemon tells the runner.
#[derive(Debug)]
pub enum Command {
    /// A new (or resumed) analysis to schedule, by id.
    Schedule(String),
    /// A cancelled analysis: stop judging it and release its windows.
    Cancel(String),
}

/// A cheap, cloneable handle to the runner.
#[derive(Clone, Debug)]
pub struct RunnerHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl RunnerHandle {
    pub fn new() -> (RunnerHandle, mpsc::UnboundedReceiver<Command>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (RunnerHandle { tx }, rx)
    }

    pub fn schedule(&self, id: &str) {
        let _ = self.tx.send(Command::Schedule(id.to_string()));
    }

    pub fn cancel(&self, id: &str) {
        let _ = self.tx.send(Command::Cancel(id.to_string()));
    }
}

/// Why a source could not deliver a metric's data for an interval.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("metric `{metric}`: {reason}")]
pub struct SourceError {
    pub metric: String,
    pub reason: String,
}

/// Where an analysis's data comes from (OTLP windows, Prometheus queries, scrapes).
pub trait DataSource: Send + Sync + 'static {
    /// Start collecting for an analysis (on creation and on resume after a restart).
    fn watch(&self, analysis: &Analysis);
    /// Stop collecting; release what was held for it.
    fn unwatch(&self, id: &str);
    /// What arrived for each metric in `[start_ms, end_ms)`. Metrics without data may be
    /// left out; a metric whose source failed is reported in the errors and left out.
    fn take(
        &self,
        analysis: &Analysis,
        start_ms: i64,
        end_ms: i64,
    ) -> impl Future<Output = (BTreeMap<String, MetricData>, Vec<SourceError>)> + Send;
}

/// Hooks for the daemon's own metrics and notifications.
pub trait Observer: Send + Sync + 'static {
    fn interval_judged(&self, analysis: &Analysis, interval: &Interval, seconds: f64);
    fn decided(&self, analysis: &Analysis, status: Status);
    fn source_errors(&self, analysis: &Analysis, errors: &[SourceError]);
}

/// An observer that does nothing.
pub struct NoObserver;

impl Observer for NoObserver {
    fn interval_judged(&self, _: &Analysis, _: &Interval, _: f64) {}
    fn decided(&self, _: &Analysis, _: Status) {}
    fn source_errors(&self, _: &Analysis, _: &[SourceError]) {}
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The runner and its settings.
pub struct Runner<S, O> {
    pub store: Store,
    pub source: Arc<S>,
    pub observer: Arc<O>,
    /// Analyses judged at once.
    pub concurrency: usize,
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
pub fn next_status(analysis: &Analysis, seq: u32, judgment: &Judgment) -> (Status, Option<String>) {
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
    let status = match judgment.verdict {
        Verdict::Pass => Status::Pass,
        Verdict::Fail => Status::Fail,
        Verdict::Marginal | Verdict::Inconclusive => Status::Inconclusive,
    };
    (status, None)
}

/// Judges the next interval of `id`. Returns the analysis's new state, or None when there
/// was nothing to do (unknown, no longer running, or another writer got there first).
pub async fn judge_interval<S: DataSource, O: Observer>(
    store: &Store,
    source: &S,
    observer: &O,
    id: &str,
) -> Result<Option<Analysis>, StoreError> {
    let Some(analysis) = store.get(id).await? else {
        return Ok(None);
    };
    if analysis.status != Status::Running {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let seq = analysis.intervals + 1;
    let end_ms = analysis.next_due_ms;
    let start_ms = end_ms - analysis.interval_ms as i64;
    let (data, errors) = source.take(&analysis, start_ms, end_ms).await;
    if !errors.is_empty() {
        observer.source_errors(&analysis, &errors);
    }
    let mut cumulative = analysis.cumulative.clone();
    for (name, d) in &data {
        match cumulative.get_mut(name) {
            Some(existing) => existing.merge(d),
            None => {
                cumulative.insert(name.clone(), d.clone());
            }
        }
    }
    // Sequential metrics replay every look: the committed intervals' data, then this one.
    let mut looks: Vec<BTreeMap<String, MetricData>> = if analysis
        .model
        .metrics
        .iter()
        .any(|m| m.test() == TestKind::Sequential)
    {
        store
            .intervals(id)
            .await?
            .into_iter()
            .map(|i| i.data)
            .collect()
    } else {
        Vec::new()
    };
    looks.push(data);
    let mut judgment = judge_tolerant(&analysis.model, &mut cumulative, &mut looks);
    let data = looks.pop().unwrap_or_default();
    for e in &errors {
        judgment.reasons.push(format!("source error: {e}"));
    }
    let (status, why) = next_status(&analysis, seq, &judgment);
    if let Some(why) = why {
        judgment.reasons.insert(0, why);
    }
    let now = now_ms();
    let interval = Interval {
        seq,
        start_ms,
        end_ms,
        data,
        judgment,
    };
    let update = IntervalUpdate {
        interval,
        status,
        next_due_ms: end_ms + analysis.interval_ms as i64,
        decided_ms: status.is_final().then_some(now),
        cumulative,
    };
    if !store.record_interval(id, &update).await? {
        return Ok(None);
    }
    observer.interval_judged(&analysis, &update.interval, started.elapsed().as_secs_f64());
    let updated = store.get(id).await?;
    if let Some(a) = &updated
        && a.status.is_final()
    {
        observer.decided(a, a.status);
    }
    Ok(updated)
}

/// Judges what there is. Data the model refuses (a metric it lacks, the wrong shape) is
/// dropped with a reason instead of stalling the analysis: one bad source must not keep
/// the other metrics from a verdict. The refused metric leaves the cumulative data and
/// every look, the current one included, so the stored interval holds only what was
/// judged and replaying it later cannot fail.
fn judge_tolerant(
    model: &Model,
    cumulative: &mut BTreeMap<String, MetricData>,
    looks: &mut [BTreeMap<String, MetricData>],
) -> Judgment {
    let mut refused = Vec::new();
    loop {
        let refs: Vec<&BTreeMap<String, MetricData>> = looks.iter().collect();
        match judge_looks(model, cumulative, &refs, &JudgeOptions::default()) {
            Ok(mut j) => {
                j.reasons.extend(refused);
                return j;
            }
            Err(e) => {
                refused.push(format!("data refused: {e}"));
                let mut found = cumulative.remove(e.metric()).is_some();
                for look in looks.iter_mut() {
                    found |= look.remove(e.metric()).is_some();
                }
                if !found {
                    // Cannot happen (every judge error names a metric present in the
                    // data), but never loop: judge with no data at all.
                    cumulative.clear();
                    looks.iter_mut().for_each(BTreeMap::clear);
                }
            }
        }
    }
}

impl<S: DataSource, O: Observer> Runner<S, O> {
    /// Runs until `shutdown` turns true; intervals being judged then are finished first.
    pub async fn run(
        self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        let mut due: BTreeSet<(i64, String)> = BTreeSet::new();
        let mut by_id: HashMap<String, i64> = HashMap::new();
        let mut in_flight: BTreeSet<String> = BTreeSet::new();
        let permits = Arc::new(Semaphore::new(self.concurrency.max(1)));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, Option<Analysis>)>();

        // Resume what was running before a restart.
        for a in self.store.list(Some(Status::Running)).await? {
            self.source.watch(&a);
            due.insert((a.next_due_ms, a.id.clone()));
            by_id.insert(a.id.clone(), a.next_due_ms);
        }

        loop {
            let next = due.first().map(|(t, _)| *t);
            let sleep = match next {
                Some(t) => Duration::from_millis((t - now_ms()).max(0) as u64),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = shutdown.changed() => break,
                cmd = commands.recv() => match cmd {
                    Some(Command::Schedule(id)) => {
                        if by_id.contains_key(&id) || in_flight.contains(&id) {
                            continue;
                        }
                        if let Ok(Some(a)) = self.store.get(&id).await
                            && a.status == Status::Running
                        {
                            self.source.watch(&a);
                            due.insert((a.next_due_ms, a.id.clone()));
                            by_id.insert(a.id, a.next_due_ms);
                        }
                    }
                    Some(Command::Cancel(id)) => {
                        if let Some(t) = by_id.remove(&id) {
                            due.remove(&(t, id.clone()));
                        }
                        self.source.unwatch(&id);
                    }
                    None => break,
                },
                Some((id, outcome)) = done_rx.recv() => {
                    in_flight.remove(&id);
                    match outcome {
                        Some(a) if a.status == Status::Running => {
                            due.insert((a.next_due_ms, a.id.clone()));
                            by_id.insert(a.id, a.next_due_ms);
                        }
                        _ => self.source.unwatch(&id),
                    }
                }
                _ = tokio::time::sleep(sleep), if next.is_some() => {
                    let now = now_ms();
                    while let Some((t, id)) = due.first().cloned() {
                        if t > now {
                            break;
                        }
                        due.pop_first();
                        by_id.remove(&id);
                        in_flight.insert(id.clone());
                        let (store, source, observer) =
                            (self.store.clone(), self.source.clone(), self.observer.clone());
                        let (permits, done) = (permits.clone(), done_tx.clone());
                        tokio::spawn(async move {
                            let _permit = permits.acquire_owned().await;
                            // Judged in a task of its own so that even a panic comes back
                            // here as an error: the schedule must hear about every analysis.
                            let judged = {
                                let (store, id) = (store.clone(), id.clone());
                                let span = tracing::info_span!("judge interval", analysis = %id);
                                tokio::spawn(
                                    async move {
                                        judge_interval(&store, &*source, &*observer, &id).await
                                    }
                                    .instrument(span),
                                )
                                .await
                            };
                            let outcome = match judged {
                                Ok(Ok(o)) => o,
                                failed => {
                                    let reason = match failed {
                                        Ok(Err(e)) => e.to_string(),
                                        Err(e) => format!("judging panicked: {e}"),
                                        Ok(Ok(_)) => String::new(),
                                    };
                                    tracing::error!(
                                        analysis = %id,
                                        error = %reason,
                                        "interval not recorded; retrying next interval"
                                    );
                                    // Retry one interval later rather than drop it.
                                    store.get(&id).await.ok().flatten().map(|mut a| {
                                        a.next_due_ms = now_ms() + a.interval_ms as i64;
                                        a
                                    })
                                }
                            };
                            let _ = done.send((id, outcome));
                        });
                    }
                }
            }
        }
        // Let the intervals being written finish, so none is half done.
        let _ = permits.acquire_many(self.concurrency.max(1) as u32).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::AnalysisRequest;
    use crate::model::Catalog;
    use crate::stats::proportions::Counts;
    use std::sync::Mutex;

    /// A source that hands out fixed counts per interval and records what it was asked.
    struct Fixed {
        canary_errors: u64,
        watched: Mutex<Vec<String>>,
        unwatched: Mutex<Vec<String>>,
    }

    impl DataSource for Fixed {
        fn watch(&self, a: &Analysis) {
            self.watched.lock().unwrap().push(a.id.clone());
        }
        fn unwatch(&self, id: &str) {
            self.unwatched.lock().unwrap().push(id.to_string());
        }
        async fn take(
            &self,
            _: &Analysis,
            _: i64,
            _: i64,
        ) -> (BTreeMap<String, MetricData>, Vec<SourceError>) {
            let counts = MetricData::Counts {
                baseline: Counts {
                    requests: 10_000,
                    errors: 10,
                },
                canary: Counts {
                    requests: 10_000,
                    errors: self.canary_errors,
                },
            };
            let latency = (0..200).map(|i| 100.0 + i as f64).collect::<Vec<_>>();
            let samples = MetricData::Samples {
                baseline: latency.clone(),
                canary: latency,
            };
            (
                BTreeMap::from([
                    ("error-rate".to_string(), counts),
                    ("latency".to_string(), samples),
                ]),
                Vec::new(),
            )
        }
    }

    struct Decisions(mpsc::UnboundedSender<(String, Status)>);

    impl Observer for Decisions {
        fn interval_judged(&self, _: &Analysis, _: &Interval, _: f64) {}
        fn decided(&self, a: &Analysis, s: Status) {
            let _ = self.0.send((a.id.clone(), s));
        }
        fn source_errors(&self, _: &Analysis, _: &[SourceError]) {}
    }

    /// Waits for the runner's first decision; a runner that never decides fails the test
    /// instead of hanging it.
    async fn first_decision(
        rx: &mut mpsc::UnboundedReceiver<(String, Status)>,
    ) -> (String, Status) {
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("no decision within 60 s")
            .expect("runner stopped")
    }

    async fn setup(canary_errors: u64) -> (Store, tempfile::TempDir, Arc<Fixed>) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let store = Store::open(&url).await.unwrap();
        let source = Arc::new(Fixed {
            canary_errors,
            watched: Mutex::default(),
            unwatched: Mutex::default(),
        });
        (store, dir, source)
    }

    fn request(key: &str, lifetime: &str) -> crate::analysis::ValidRequest {
        let r: AnalysisRequest = serde_json::from_value(serde_json::json!({
            "key": key, "model": "http-red",
            "baseline": {"service.name": "s", "service.version": "1"},
            "canary": {"service.name": "s", "service.version": "2"},
            "interval": "1s", "lifetime": lifetime}))
        .unwrap();
        r.validate(&Catalog::builtin()).unwrap()
    }

    #[tokio::test]
    async fn healthy_canary_passes_at_the_end_of_its_lifetime() {
        let (store, _dir, source) = setup(10).await;
        let (a, created) = store.create(&request("k", "2s"), now_ms()).await.unwrap();
        assert!(created);
        let (tx, mut decided) = mpsc::unbounded_channel();
        let (handle, commands) = RunnerHandle::new();
        let (stop, stopped) = watch::channel(false);
        let runner = Runner {
            store: store.clone(),
            source: source.clone(),
            observer: Arc::new(Decisions(tx)),
            concurrency: 4,
        };
        let task = tokio::spawn(runner.run(commands, stopped));
        handle.schedule(&a.id);
        let (id, status) = first_decision(&mut decided).await;
        assert_eq!((id.as_str(), status), (a.id.as_str(), Status::Pass));
        let stored = store.get(&a.id).await.unwrap().unwrap();
        assert_eq!(stored.intervals, 2);
        assert_eq!(store.intervals(&a.id).await.unwrap().len(), 2);
        // Both intervals' counts are in the cumulative data.
        match &stored.cumulative["error-rate"] {
            MetricData::Counts { canary, .. } => assert_eq!(canary.requests, 20_000),
            other => panic!("{other:?}"),
        }
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        assert_eq!(*source.unwatched.lock().unwrap(), vec![a.id.clone()]);
    }

    #[tokio::test]
    async fn critical_regression_fails_at_once_and_resume_after_restart() {
        let (store, _dir, source) = setup(200).await;
        let (a, _) = store.create(&request("bad", "1h"), now_ms()).await.unwrap();
        // A second, healthy analysis already in the store is resumed by a new runner.
        let (tx, mut decided) = mpsc::unbounded_channel();
        let (_handle, commands) = RunnerHandle::new();
        let (stop, stopped) = watch::channel(false);
        let runner = Runner {
            store: store.clone(),
            source: source.clone(),
            observer: Arc::new(Decisions(tx)),
            concurrency: 1,
        };
        let task = tokio::spawn(runner.run(commands, stopped));
        let (id, status) = first_decision(&mut decided).await;
        assert_eq!((id, status), (a.id.clone(), Status::Fail));
        let stored = store.get(&a.id).await.unwrap().unwrap();
        assert_eq!(
            stored.intervals, 1,
            "failed on the first interval, not after 1h"
        );
        let j = stored.judgment.unwrap();
        assert!(
            j.reasons[0].contains("critical metric regressed: error-rate"),
            "{:?}",
            j.reasons
        );
        assert_eq!(*source.watched.lock().unwrap(), vec![a.id.clone()]);
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
    }

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
            let (status, why) = next_status(a, seq, &j);
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

    #[tokio::test]
    async fn a_cancelled_analysis_is_not_overwritten() {
        let (store, _dir, source) = setup(10).await;
        let (a, _) = store.create(&request("c", "1h"), now_ms()).await.unwrap();
        store.cancel(&a.id, now_ms()).await.unwrap();
        let outcome = judge_interval(&store, &*source, &NoObserver, &a.id)
            .await
            .unwrap();
        assert!(outcome.is_none());
        let stored = store.get(&a.id).await.unwrap().unwrap();
        assert_eq!(stored.status, Status::Cancelled);
        assert_eq!(stored.intervals, 0);
    }
}
