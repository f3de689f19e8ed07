//! The scheduler: judges every running analysis each interval and moves it to its verdict.
//!
//! One task owns the schedule (a time-ordered set of due analyses). Each due analysis is
//! judged in its own task, at most `concurrency` at a time, so one slow Prometheus query
//! delays only its own analysis. The store is the source of truth: a task re-reads the
//! analysis before judging and writes the interval with a guard, so a cancel that races
//! an interval wins, and a restart resumes from what was committed.
//!
//! An analysis never leaves the schedule because of an error: an interval that could not
//! be judged or recorded (a database that is full, locked or gone, a corrupt row, a
//! panic) is tried again after a back-off, keeping the analysis's windows and what the
//! failed attempt had already taken from them. Only a verdict, a cancel or the row's
//! disappearance ends its schedule.
//!
//! Between intervals the runner keeps each analysis's [`Progress`] in memory (the
//! sequential tests' state and the count of intervals without data), so a look costs the
//! same at the thousandth interval as at the first; after a restart it is rebuilt once
//! from the stored intervals. Intervals that ended while the daemon was down are recorded
//! as missed: sources that keep history (Prometheus) still answer for them, the others
//! (OTLP) are reported missing, and an analysis whose intervals mostly brought no data
//! ends `inconclusive`, never `pass`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tracing::Instrument as _;

use super::replicas::{Membership, locked};
use crate::analysis::policy::{
    Progress, judge_tolerant, next_status, no_evidence, once_only, retry_wait_ms,
};
use crate::analysis::{Analysis, DataSource, Interval, Observer, Partial, SourceError, Status};
use crate::clock::Clock;
use crate::judge::MetricData;
use crate::model::Source;
use crate::pool::{JudgePool, default_size};
use crate::store::{Change, ChangeKind, ChangeListener, Fence, IntervalUpdate, Store, StoreError};
use crate::telemetry::Metrics;

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

    /// The runner as a listener of the store: a created analysis is scheduled, a
    /// cancelled one unscheduled. Whoever writes them (the API, the Flagger gate, a
    /// test) needs no handle on the runner.
    pub fn listener(&self) -> ChangeListener {
        let handle = self.clone();
        Arc::new(move |c: &Change<'_>| match c.kind {
            ChangeKind::Created => handle.schedule(c.id),
            ChangeKind::Cancelled => handle.cancel(c.id),
            ChangeKind::Recorded(_) => {}
        })
    }
}

/// The runner and its settings.
pub struct Runner<S, O> {
    pub store: Store,
    pub source: Arc<S>,
    pub observer: Arc<O>,
    /// Analyses judged at once.
    pub concurrency: usize,
    pub clock: Clock,
    /// Among replicas sharing the database: this replica's membership (None: alone).
    pub replicas: Option<Arc<Membership>>,
    /// Where partial windows are counted, among replicas.
    pub metrics: Option<Arc<Metrics>>,
    /// Where intervals are judged (`None`: a pool of one slot per core of its own).
    pub judging: Option<Arc<JudgePool>>,
}

/// What one attempt at an analysis's next interval came to.
#[derive(Debug)]
pub enum Judged {
    /// Recorded; the analysis runs on and is next due at this time.
    Running(i64),
    /// Not due yet (it was put on the schedule early, after a failed read): due at
    /// `due_ms`, with the carry of an earlier failed attempt handed back.
    Early {
        due_ms: i64,
        carry: BTreeMap<String, MetricData>,
    },
    /// Decided, cancelled, or no longer in the store: nothing more to do.
    Finished,
}

/// An interval that could not be judged or recorded.
#[derive(Debug)]
pub struct Failure {
    pub error: String,
    /// What the failed attempt took from sources that hand data out only once (OTLP
    /// windows): the next attempt adds it back, so no span is lost to the failure.
    pub carry: BTreeMap<String, MetricData>,
    /// The analysis's interval, when it could be read (it bounds the wait before a retry).
    pub interval_ms: Option<u64>,
}

/// Everything judging an interval needs, shared by the runner's tasks.
pub struct Context<S, O> {
    pub store: Store,
    pub source: Arc<S>,
    pub observer: Arc<O>,
    pub clock: Clock,
    /// When this runner started: an interval that ended before it was missed.
    pub started_ms: i64,
    progress: Mutex<HashMap<String, Progress>>,
    /// Progress rebuilt from stored intervals (after a restart): a measure of how often
    /// a look costs more than one look.
    replays: std::sync::atomic::AtomicU64,
    /// With replicas sharing the database: who this one is and which leases it holds.
    shared: Option<Shared>,
    /// Where intervals are judged.
    judging: Arc<JudgePool>,
}

/// What a runner among replicas keeps besides the solo runner's state.
struct Shared {
    membership: Arc<Membership>,
    metrics: Option<Arc<Metrics>>,
    /// Per analysis: the last interval boundary this replica wrote its partial window for.
    flushed: Mutex<HashMap<String, u32>>,
    /// Per analysis: the fence this replica last judged it under.
    judged_under: Mutex<HashMap<String, i64>>,
}

/// How often the judging replica looks again for partial windows still missing.
const PARTIAL_POLL_MS: i64 = 100;

/// What the judging replica gathered for an interval: the data, the reasons some is
/// missing, and, among replicas, the partial windows merged into it.
struct Gathered {
    data: BTreeMap<String, MetricData>,
    errors: Vec<SourceError>,
    consumed: Vec<(u32, String)>,
}

impl<S: DataSource, O: Observer> Context<S, O> {
    pub fn new(store: Store, source: Arc<S>, observer: Arc<O>, clock: Clock) -> Self {
        let started_ms = clock.now_ms();
        Context {
            store,
            source,
            observer,
            clock,
            started_ms,
            progress: Mutex::default(),
            replays: Default::default(),
            shared: None,
            judging: Arc::new(JudgePool::new(default_size(), Default::default())),
        }
    }

    /// The same context judging on `pool` (shared with the API's one-shot judge).
    pub fn with_judge_pool(mut self, pool: Arc<JudgePool>) -> Self {
        self.judging = pool;
        self
    }

    /// The same context for a replica among several sharing the database: it writes
    /// its partial windows at every interval boundary and judges only what it holds the
    /// lease of; `metrics` counts the partial windows.
    pub fn among_replicas(
        mut self,
        membership: Arc<Membership>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        self.shared = Some(Shared {
            membership,
            metrics,
            flushed: Mutex::default(),
            judged_under: Mutex::default(),
        });
        self
    }

    /// Notes that this replica started receiving `analysis`'s spans now: its first
    /// partial window is that of the interval under way.
    fn watching(&self, analysis: &Analysis) {
        if let Some(shared) = &self.shared {
            let passed = boundaries_passed(analysis, self.clock.now_ms());
            locked(&shared.flushed)
                .entry(analysis.id.clone())
                .or_insert(passed);
        }
    }

    /// How many times an analysis's progress was rebuilt from its stored intervals.
    pub fn replays(&self) -> u64 {
        self.replays.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Progress>> {
        // Entries are whole values: a panic elsewhere cannot leave one half-written.
        self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets what is kept of analysis `id` (decided or cancelled).
    pub fn forget(&self, id: &str) {
        self.cache().remove(id);
        if let Some(shared) = &self.shared {
            locked(&shared.flushed).remove(id);
            locked(&shared.judged_under).remove(id);
        }
    }

    /// The progress of `analysis`: taken out of memory (the judged interval puts it back),
    /// else replayed from the store. An attempt that fails leaves nothing in memory, and
    /// the next one replays: failures are rare, a copy per interval would not be.
    async fn progress(&self, analysis: &Analysis) -> Result<Progress, StoreError> {
        let kept = self.cache().remove(&analysis.id);
        if let Some(p) = kept
            && p.intervals == analysis.intervals
        {
            return Ok(p);
        }
        let stored = if analysis.intervals > 0 {
            self.replays
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.store.intervals(&analysis.id).await?
        } else {
            Vec::new()
        };
        Ok(Progress::replay(analysis, &stored))
    }

    /// Judges the next interval of `id`, adding `carry` (what an earlier failed attempt
    /// took) to what the sources give now. Among replicas, first writes this replica's
    /// partial window when an interval boundary passed, then judges only under a lease.
    pub async fn judge_interval(
        &self,
        id: &str,
        carry: BTreeMap<String, MetricData>,
    ) -> Result<Judged, Failure> {
        let analysis = match self.store.get(id).await {
            Ok(Some(a)) if a.status == Status::Running => a,
            Ok(_) => return Ok(Judged::Finished),
            Err(e) => {
                return Err(Failure {
                    error: e.to_string(),
                    carry,
                    interval_ms: None,
                });
            }
        };
        if let Some(n) = analysis.request.abandon_after {
            match self.abandoned(&analysis, n).await {
                Ok(false) => {}
                Ok(true) => return Ok(Judged::Finished),
                Err(e) => return Err(self.failed(&analysis, e, carry)),
            }
        }
        match &self.shared {
            None => self.judge_solo(analysis, carry).await,
            Some(shared) => self.judge_shared(shared, analysis, carry).await,
        }
    }

    /// Cancels `analysis` when nobody has asked for it for `n` of its intervals (its
    /// request's `abandon_after`); whether it did. Its recipients hear `cancelled`, as
    /// for a cancel through the API.
    async fn abandoned(&self, analysis: &Analysis, n: u32) -> Result<bool, StoreError> {
        let asked = self
            .store
            .asked_ms(&analysis.id)
            .await?
            .unwrap_or(analysis.created_ms)
            .max(analysis.created_ms);
        let now = self.clock.now_ms();
        let unasked_for = now.saturating_sub(asked);
        if unasked_for <= i64::from(n).saturating_mul(analysis.interval_ms as i64) {
            return Ok(false);
        }
        tracing::info!(
            analysis = %analysis.id,
            key = %analysis.key,
            unasked_seconds = unasked_for / 1000,
            abandon_after = n,
            "nobody asked for the analysis for {n} intervals: cancelling it"
        );
        self.store.cancel(&analysis.id, now).await?;
        Ok(true)
    }

    async fn judge_solo(
        &self,
        analysis: Analysis,
        carry: BTreeMap<String, MetricData>,
    ) -> Result<Judged, Failure> {
        if analysis.next_due_ms > self.clock.now_ms() {
            return Ok(Judged::Early {
                due_ms: analysis.next_due_ms,
                carry,
            });
        }
        let progress = match self.progress(&analysis).await {
            Ok(p) => p,
            Err(e) => return Err(self.failed(&analysis, e, carry)),
        };
        let started = std::time::Instant::now();
        let end_ms = analysis.next_due_ms;
        let start_ms = end_ms - analysis.interval_ms as i64;
        let (mut data, errors) = if end_ms <= self.started_ms {
            self.source.missed(&analysis, start_ms, end_ms).await
        } else {
            self.source.take(&analysis, start_ms, end_ms).await
        };
        add_earlier(&mut data, carry);
        let gathered = Gathered {
            data,
            errors,
            consumed: Vec::new(),
        };
        self.judge_and_record(analysis, progress, started, gathered, None)
            .await
    }

    /// A failed attempt at `analysis`, handing `carry` on to the next.
    fn failed(
        &self,
        analysis: &Analysis,
        e: StoreError,
        carry: BTreeMap<String, MetricData>,
    ) -> Failure {
        Failure {
            error: e.to_string(),
            carry,
            interval_ms: Some(analysis.interval_ms),
        }
    }

    /// Among replicas: writes the partial window of every boundary passed since the last
    /// one, then, holding the lease, judges the next interval once every live replica's
    /// partial window is in (or the flush grace is over).
    ///
    /// `carry` is what a failed attempt took once: spans it could not write down (they
    /// go into the next partial window written), or a scrape reading of an interval it
    /// could not record (it goes into the next interval judged).
    async fn judge_shared(
        &self,
        shared: &Shared,
        analysis: Analysis,
        mut carry: BTreeMap<String, MetricData>,
    ) -> Result<Judged, Failure> {
        let now = self.clock.now_ms();
        let interval_ms = analysis.interval_ms as i64;
        let passed = boundaries_passed(&analysis, now);
        let flushed = *locked(&shared.flushed)
            .entry(analysis.id.clone())
            .or_insert(passed);
        if passed > flushed {
            let start_ms = analysis.created_ms + i64::from(flushed) * interval_ms;
            let (data, errors) = self.source.take_received(&analysis, start_ms);
            let earlier = Partial {
                data: std::mem::take(&mut carry),
                errors: Vec::new(),
            };
            let partial = Partial::merged([earlier, Partial { data, errors }]);
            match self
                .write_partial(shared, &analysis.id, passed, &partial)
                .await
            {
                Ok(true) => {}
                Ok(false) => return Ok(Judged::Finished),
                Err(e) => {
                    return Err(Failure {
                        error: format!("writing the partial window: {e}"),
                        carry: partial.data,
                        interval_ms: Some(analysis.interval_ms),
                    });
                }
            }
            locked(&shared.flushed).insert(analysis.id.clone(), passed);
        }
        let next_flush = analysis.created_ms + i64::from(passed + 1) * interval_ms;
        let Some(fence) = shared.membership.fence(&analysis.id) else {
            return Ok(not_judging(next_flush, carry));
        };
        if analysis.next_due_ms > now {
            return Ok(not_judging(next_flush.min(analysis.next_due_ms), carry));
        }
        let seq = analysis.intervals + 1;
        let end_ms = analysis.next_due_ms;
        let start_ms = end_ms - interval_ms;
        let partials = match self.store.partials(&analysis.id).await {
            Ok(p) => p,
            Err(e) => return Err(self.failed(&analysis, e, carry)),
        };
        let grace_ms = shared.membership.settings.flush_grace.as_millis() as i64;
        // A window given by `start` has no OTLP metrics: no replica has a partial
        // window of it to wait for.
        let looks_back = analysis.request.start.is_some();
        let missing = shared
            .membership
            .alive()
            .into_iter()
            .filter(|r| r.started_ms < end_ms)
            .filter(|r| !partials.iter().any(|p| p.replica == r.id && p.seq >= seq))
            .count();
        if !looks_back && missing > 0 && now < end_ms + grace_ms {
            return Ok(Judged::Early {
                due_ms: (now + PARTIAL_POLL_MS).min(end_ms + grace_ms),
                carry,
            });
        }
        let progress = match self.progress(&analysis).await {
            Ok(p) => p,
            Err(e) => return Err(self.failed(&analysis, e, carry)),
        };
        let newly = locked(&shared.judged_under).insert(analysis.id.clone(), fence) != Some(fence);
        if newly && fence > 1 {
            // Taken over from another judge (the first lease has fence 1): sources that
            // keep the judge's own state (the scrape source's reading at the interval's
            // start) start afresh, so an interval is never measured from a reading
            // another judge already used.
            self.source.take_over(&analysis);
        }
        let started = std::time::Instant::now();
        let mut merged = Partial::default();
        let mut consumed = Vec::new();
        let mut late = 0;
        for p in partials.into_iter().filter(|p| p.seq <= seq) {
            late += u64::from(p.seq < seq);
            consumed.push((p.seq, p.replica));
            merged.merge(p.partial);
        }
        if let Some(m) = &shared.metrics {
            m.partial_windows("merged", consumed.len() as u64);
            m.partial_windows("late", late);
        }
        let (mut data, errors) = if end_ms <= self.started_ms {
            // Sources that keep history still answer; the partial windows other replicas
            // wrote meanwhile stand for the OTLP metrics.
            let (q, e) = self.source.missed(&analysis, start_ms, end_ms).await;
            let e = e
                .into_iter()
                .filter(|e| !merged.data.contains_key(&e.metric))
                .collect::<Vec<_>>();
            (q, e)
        } else {
            self.source.query(&analysis, start_ms, end_ms).await
        };
        add_earlier(&mut data, carry);
        let mut all = Partial { data, errors };
        all.merge(merged);
        let gathered = Gathered {
            data: all.data,
            errors: all.errors,
            consumed,
        };
        let fence = Fence {
            replica: shared.membership.id().to_string(),
            fence,
        };
        let id = analysis.id.clone();
        let judged = self
            .judge_and_record(analysis, progress, started, gathered, Some(&fence))
            .await;
        if let Ok(Judged::Finished) = judged {
            match self.store.get(&id).await {
                Ok(Some(a)) if a.status == Status::Running => {
                    // Fenced off: another replica holds the lease now. This one goes on
                    // writing its partial windows.
                    tracing::info!(analysis = %id, "lease lost to another replica; not judging");
                    shared.membership.lost(&id);
                    locked(&shared.judged_under).remove(&id);
                    return Ok(Judged::Running(next_flush));
                }
                Ok(_) => {}
                // Not known whether it ended: try again rather than let it go.
                Err(e) => {
                    return Err(Failure {
                        error: e.to_string(),
                        carry: BTreeMap::new(),
                        interval_ms: None,
                    });
                }
            }
        }
        judged
    }

    /// Writes this replica's partial window of boundary `seq` of analysis `id`; false
    /// when the analysis no longer runs.
    async fn write_partial(
        &self,
        shared: &Shared,
        id: &str,
        seq: u32,
        partial: &Partial,
    ) -> Result<bool, StoreError> {
        let now = self.clock.now_ms();
        let written = self
            .store
            .put_partial(id, seq, shared.membership.id(), partial, now)
            .await?;
        if written && let Some(m) = &shared.metrics {
            m.partial_windows("written", 1);
        }
        Ok(written)
    }

    /// Among replicas, at shutdown: writes down what this replica received since the last
    /// boundary of each analysis it watches, as its partial window of the interval under
    /// way, so a replica stopped cleanly (a rolling deploy) loses none of its spans.
    pub async fn flush_received(&self, ids: impl IntoIterator<Item = String>) {
        let Some(shared) = &self.shared else {
            return;
        };
        for id in ids {
            let Ok(Some(analysis)) = self.store.get(&id).await else {
                continue;
            };
            if analysis.status != Status::Running {
                continue;
            }
            let flushed = locked(&shared.flushed).get(&id).copied();
            let passed = boundaries_passed(&analysis, self.clock.now_ms());
            let since = flushed.unwrap_or(passed);
            let start_ms = analysis.created_ms + i64::from(since) * analysis.interval_ms as i64;
            let (data, errors) = self.source.take_received(&analysis, start_ms);
            let partial = Partial { data, errors };
            if let Err(e) = self.write_partial(shared, &id, passed + 1, &partial).await {
                tracing::warn!(analysis = %id, error = %e,
                    "the spans received since the last interval boundary are lost");
            }
        }
    }

    /// Judges the gathered data as the next interval of `analysis` and records it (under
    /// `fence`, among replicas).
    async fn judge_and_record(
        &self,
        analysis: Analysis,
        mut progress: Progress,
        started: std::time::Instant,
        gathered: Gathered,
        fence: Option<&Fence>,
    ) -> Result<Judged, Failure> {
        let id = analysis.id.clone();
        let seq = analysis.intervals + 1;
        let end_ms = analysis.next_due_ms;
        let start_ms = end_ms - analysis.interval_ms as i64;
        let Gathered {
            data,
            errors,
            consumed,
        } = gathered;
        if !errors.is_empty() {
            self.observer.source_errors(&analysis, &errors);
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
        // Judging costs CPU in proportion to the model and the data: it runs on the
        // bounded judging pool, never on the threads serving the API.
        let model = analysis.model.clone();
        let sequential = std::mem::take(&mut progress.sequential);
        let judged = self
            .judging
            .run(move |_| {
                let (mut cumulative, mut sequential, mut data) = (cumulative, sequential, data);
                let judgment = judge_tolerant(&model, &mut cumulative, &mut sequential, &mut data);
                (judgment, cumulative, sequential, data)
            })
            .await;
        let (mut judgment, cumulative, sequential, data) = match judged {
            Ok(out) => out,
            Err(e) => {
                return Err(Failure {
                    error: e.to_string(),
                    carry: BTreeMap::new(),
                    interval_ms: Some(analysis.interval_ms),
                });
            }
        };
        progress.sequential = sequential;
        for e in &errors {
            judgment.reasons.push(format!("source error: {e}"));
        }
        progress.intervals = seq;
        if no_evidence(&data) {
            progress.empty += 1;
        }
        if progress.empty > 0 {
            judgment.reasons.push(format!(
                "{} of {seq} intervals brought no data",
                progress.empty
            ));
        }
        let (status, why) = next_status(&analysis, seq, &judgment, progress.empty);
        if let Some(why) = why {
            judgment.reasons.insert(0, why);
        }
        let now = self.clock.now_ms();
        let update = IntervalUpdate {
            interval: Interval {
                seq,
                start_ms,
                end_ms,
                data,
                judgment,
            },
            status,
            next_due_ms: end_ms + analysis.interval_ms as i64,
            decided_ms: status.is_final().then_some(now),
            cumulative,
        };
        let recorded = match fence {
            None => self.store.record_interval(&id, &update).await,
            Some(f) => {
                self.store
                    .record_interval_fenced(&id, &update, f, &consumed)
                    .await
            }
        };
        match recorded {
            Ok(true) => {}
            // Cancelled meanwhile (the cancel wins), or fenced off.
            Ok(false) => return Ok(Judged::Finished),
            Err(e) => {
                // What sources hand out once goes to the retry. Among replicas the OTLP
                // part stays in the store (the partial windows were not deleted), so
                // only what this replica queried itself (scrape readings) is carried.
                let mut carry = once_only(&analysis.model, update.interval.data);
                if fence.is_some() {
                    let index = analysis.model.index();
                    carry.retain(|name, _| {
                        index
                            .get(name.as_str())
                            .is_some_and(|m| matches!(m.source, Some(Source::Scrape(_))))
                    });
                }
                return Err(self.failed(&analysis, e, carry));
            }
        }
        self.observer
            .interval_judged(&analysis, &update.interval, started.elapsed().as_secs_f64());
        if status.is_final() {
            self.forget(&id);
            let decided = Analysis {
                status,
                intervals: seq,
                next_due_ms: update.next_due_ms,
                decided_ms: update.decided_ms,
                score: Some(update.interval.judgment.score),
                judgment: Some(update.interval.judgment),
                cumulative: update.cumulative,
                ..analysis
            };
            self.observer.decided(&decided, status);
            Ok(Judged::Finished)
        } else {
            self.cache().insert(id, progress);
            Ok(Judged::Running(update.next_due_ms))
        }
    }
}

/// Adds what an earlier failed attempt took (`carry`) to `data`; the earlier part first.
fn add_earlier(data: &mut BTreeMap<String, MetricData>, carry: BTreeMap<String, MetricData>) {
    for (name, d) in carry {
        match data.get_mut(&name) {
            Some(now) => {
                let mut earlier = d;
                earlier.merge(now);
                *now = earlier;
            }
            None => {
                data.insert(name, d);
            }
        }
    }
}

/// A replica that does not judge `analysis` now: next due at `due_ms`, keeping `carry`
/// (spans to write down at the next boundary) when there is one.
fn not_judging(due_ms: i64, carry: BTreeMap<String, MetricData>) -> Judged {
    if carry.is_empty() {
        Judged::Running(due_ms)
    } else {
        Judged::Early { due_ms, carry }
    }
}

/// How many interval boundaries of `analysis` have passed at `now_ms`.
fn boundaries_passed(analysis: &Analysis, now_ms: i64) -> u32 {
    ((now_ms - analysis.created_ms).max(0) / (analysis.interval_ms.max(1) as i64)) as u32
}

impl<S: DataSource, O: Observer> Runner<S, O> {
    /// Runs until `shutdown` turns true; intervals being judged then are finished first.
    pub async fn run(
        self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) -> Result<(), StoreError> {
        let concurrency = self.concurrency.max(1);
        let mut cx = Context::new(self.store, self.source, self.observer, self.clock);
        if let Some(pool) = self.judging {
            cx = cx.with_judge_pool(pool);
        }
        let cx = Arc::new(match self.replicas {
            Some(m) => cx.among_replicas(m, self.metrics),
            None => cx,
        });
        let clock = cx.clock.clone();
        let mut schedule = Schedule::default();
        let permits = Arc::new(Semaphore::new(concurrency));
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        schedule.resume(&cx).await?;

        loop {
            let next = schedule.next_due();
            let sleep = match next {
                Some(t) => Duration::from_millis((t - clock.now_ms()).max(0) as u64),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = shutdown.changed() => break,
                cmd = commands.recv() => match cmd {
                    Some(Command::Schedule(id)) => schedule.add(&cx, id).await,
                    Some(Command::Cancel(id)) => schedule.cancel(&cx, &id),
                    None => break,
                },
                Some((id, watched_now, outcome)) = done_rx.recv() => {
                    schedule.returned(&cx, id, watched_now, outcome);
                }
                _ = tokio::time::sleep(sleep), if next.is_some() => {
                    let now = clock.now_ms();
                    while let Some((id, carry, needs_watch)) = schedule.take_due(now) {
                        spawn_judging(&cx, &permits, &done_tx, id, carry, needs_watch);
                    }
                }
            }
        }
        // Let the intervals being written finish, so none is half done.
        let _ = permits.acquire_many(concurrency as u32).await;
        cx.flush_received(schedule.watched.iter().cloned()).await;
        Ok(())
    }
}

/// An attempt come back: the analysis, whether it registered the analysis's windows, and
/// what it came to.
type Done = (String, bool, Result<Judged, Failure>);

/// The runner's schedule: when each analysis is next due, which are being judged, whose
/// windows the source holds, and what failed attempts left (their count and carry).
///
/// An analysis is either due (in `due` and `by_id`) or in flight, never both.
#[derive(Default)]
struct Schedule {
    due: BTreeSet<(i64, String)>,
    by_id: HashMap<String, i64>,
    in_flight: BTreeSet<String>,
    /// Analyses whose windows the source holds.
    watched: HashSet<String>,
    /// Per analysis: failed attempts in a row, and what they took.
    failures: HashMap<String, u32>,
    carries: HashMap<String, BTreeMap<String, MetricData>>,
}

impl Schedule {
    /// When the first analysis is due.
    fn next_due(&self) -> Option<i64> {
        self.due.first().map(|(t, _)| *t)
    }

    /// Puts `id` on the schedule, due at `at`.
    fn schedule(&mut self, id: String, at: i64) {
        self.due.insert((at, id.clone()));
        self.by_id.insert(id, at);
    }

    /// Has the source watch `a`'s windows, unless it already does.
    fn watch<S: DataSource, O: Observer>(&mut self, cx: &Context<S, O>, a: &Analysis) {
        if self.watched.insert(a.id.clone()) {
            cx.source.watch(a);
            cx.watching(a);
        }
    }

    /// Puts `id`, which could not be read, on the schedule as a first failed attempt: the
    /// next attempt re-reads it, and watches it once it can.
    fn retry_unread(&mut self, id: String, now: i64) {
        self.failures.insert(id.clone(), 1);
        self.schedule(id, now + retry_wait_ms(1, None));
    }

    /// Resumes what was running before a restart. A running analysis that cannot be read
    /// stays on the schedule: each attempt reports it, and once it is mended (or deleted)
    /// the runner carries on with it.
    async fn resume<S: DataSource, O: Observer>(
        &mut self,
        cx: &Context<S, O>,
    ) -> Result<(), StoreError> {
        let (running, unreadable) = cx.store.list_running().await?;
        for a in running {
            self.watch(cx, &a);
            self.schedule(a.id, a.next_due_ms);
        }
        for u in unreadable {
            // A warning: the daemon starts and serves the others; each failed attempt
            // after this logs an error.
            tracing::warn!(analysis = %u.id, reason = %u.reason,
                "running analysis cannot be read; trying again");
            cx.observer.interval_failed(&u.id, &u.reason);
            self.retry_unread(u.id, cx.clock.now_ms());
        }
        Ok(())
    }

    /// Schedules a new analysis, unless it is scheduled already.
    async fn add<S: DataSource, O: Observer>(&mut self, cx: &Context<S, O>, id: String) {
        if self.by_id.contains_key(&id) || self.in_flight.contains(&id) {
            return;
        }
        match cx.store.get(&id).await {
            Ok(Some(a)) if a.status == Status::Running => {
                self.watch(cx, &a);
                self.schedule(a.id, a.next_due_ms);
            }
            // Ended before it was scheduled (cancelled at once): the watches its create
            // set aside go back.
            Ok(_) => cx.source.unwatch(&id),
            Err(e) => {
                tracing::error!(analysis = %id, error = %e,
                    "cannot read a new analysis; trying again");
                self.retry_unread(id, cx.clock.now_ms());
            }
        }
    }

    /// Takes `id` off the schedule (cancelled) and lets it go.
    fn cancel<S: DataSource, O: Observer>(&mut self, cx: &Context<S, O>, id: &str) {
        if let Some(t) = self.by_id.remove(id) {
            self.due.remove(&(t, id.to_string()));
        }
        self.finish(cx, id);
    }

    /// Lets `id` go for good: its failures, carry and progress forgotten, its windows
    /// released.
    fn finish<S: DataSource, O: Observer>(&mut self, cx: &Context<S, O>, id: &str) {
        self.failures.remove(id);
        self.carries.remove(id);
        cx.forget(id);
        // Unconditionally: an analysis ended before the runner watched it still holds
        // the watches its create set aside. Unwatching is idempotent.
        self.watched.remove(id);
        cx.source.unwatch(id);
    }

    /// Counts a failed attempt at `id`, reports it and keeps what it took; returns when
    /// to try again.
    fn retry<S: DataSource, O: Observer>(
        &mut self,
        cx: &Context<S, O>,
        id: &str,
        failure: Failure,
    ) -> i64 {
        let attempt = self.failures.entry(id.to_string()).or_insert(0);
        *attempt += 1;
        let wait = retry_wait_ms(*attempt, failure.interval_ms);
        tracing::error!(analysis = %id, error = %failure.error,
            attempt = *attempt, retry_in_ms = wait,
            "interval not recorded; trying again");
        cx.observer.interval_failed(id, &failure.error);
        if !failure.carry.is_empty() {
            self.carries.insert(id.to_string(), failure.carry);
        }
        cx.clock.now_ms() + wait
    }

    /// An attempt at `id` came back: schedules its next one, or lets it go.
    fn returned<S: DataSource, O: Observer>(
        &mut self,
        cx: &Context<S, O>,
        id: String,
        watched_now: bool,
        outcome: Result<Judged, Failure>,
    ) {
        self.in_flight.remove(&id);
        if watched_now {
            self.watched.insert(id.clone());
        }
        let at = match outcome {
            Ok(Judged::Running(next)) => {
                self.failures.remove(&id);
                next
            }
            Ok(Judged::Early { due_ms, carry }) => {
                if !carry.is_empty() {
                    self.carries.insert(id.clone(), carry);
                }
                due_ms
            }
            Ok(Judged::Finished) => {
                self.finish(cx, &id);
                return;
            }
            Err(failure) => self.retry(cx, &id, failure),
        };
        self.schedule(id, at);
    }

    /// The first analysis due by `now`, moved in flight, with the carry of its failed
    /// attempts and whether its windows still need registering.
    fn take_due(&mut self, now: i64) -> Option<(String, BTreeMap<String, MetricData>, bool)> {
        let (t, _) = self.due.first()?;
        if *t > now {
            return None;
        }
        let (_, id) = self.due.pop_first()?;
        self.by_id.remove(&id);
        self.in_flight.insert(id.clone());
        let carry = self.carries.remove(&id).unwrap_or_default();
        let needs_watch = !self.watched.contains(&id);
        Some((id, carry, needs_watch))
    }
}

/// Judges the next interval of `id` in a task of its own, once a permit is free, and
/// sends what it came to on `done`.
fn spawn_judging<S: DataSource, O: Observer>(
    cx: &Arc<Context<S, O>>,
    permits: &Arc<Semaphore>,
    done: &mpsc::UnboundedSender<Done>,
    id: String,
    carry: BTreeMap<String, MetricData>,
    needs_watch: bool,
) {
    let (cx, permits, done) = (cx.clone(), permits.clone(), done.clone());
    tokio::spawn(async move {
        let _permit = permits.acquire_owned().await;
        // Judged in a task of its own so that even a panic comes back here as a
        // failure: the schedule must hear about every analysis.
        let judged = {
            let (cx, id) = (cx.clone(), id.clone());
            let span = tracing::info_span!("judge interval", analysis = %id);
            tokio::spawn(
                async move {
                    let watched_now = needs_watch && watch_late(&cx, &id).await;
                    (watched_now, cx.judge_interval(&id, carry).await)
                }
                .instrument(span),
            )
            .await
        };
        let (watched_now, outcome) = match judged {
            Ok(r) => r,
            Err(e) => (
                false,
                Err(Failure {
                    error: format!("judging panicked: {e}"),
                    carry: BTreeMap::new(),
                    interval_ms: None,
                }),
            ),
        };
        let _ = done.send((id, watched_now, outcome));
    });
}

/// Registers the windows of an analysis that was scheduled before it could be read (a
/// store error at schedule time); true when it did.
async fn watch_late<S: DataSource, O: Observer>(cx: &Context<S, O>, id: &str) -> bool {
    match cx.store.get(id).await {
        Ok(Some(a)) if a.status == Status::Running => {
            cx.source.watch(&a);
            cx.watching(&a);
            true
        }
        _ => false,
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::{AnalysisRequest, NoObserver, SourceError};
    use crate::clock::now_ms;
    use crate::judge::{JudgeOptions, judge_looks};
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
        /// Like OTLP: nothing to look back at.
        async fn missed(
            &self,
            a: &Analysis,
            _: i64,
            _: i64,
        ) -> (BTreeMap<String, MetricData>, Vec<SourceError>) {
            let errors = a
                .model
                .metrics
                .iter()
                .map(|m| SourceError {
                    metric: m.name.clone(),
                    reason: "missed".into(),
                })
                .collect();
            (BTreeMap::new(), errors)
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

    /// Reports decisions and failed attempts.
    struct Events(mpsc::UnboundedSender<Event>);

    #[derive(Debug, PartialEq)]
    enum Event {
        Decided(String, Status),
        Failed(String),
    }

    impl Observer for Events {
        fn interval_judged(&self, _: &Analysis, _: &Interval, _: f64) {}
        fn decided(&self, a: &Analysis, s: Status) {
            let _ = self.0.send(Event::Decided(a.id.clone(), s));
        }
        fn source_errors(&self, _: &Analysis, _: &[SourceError]) {}
        fn interval_failed(&self, id: &str, _: &str) {
            let _ = self.0.send(Event::Failed(id.to_string()));
        }
    }

    async fn next_event(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("no event within 60 s")
            .expect("runner stopped")
    }

    /// The next decision, past any failed attempts, which must all be `failing`'s.
    async fn next_decision(
        rx: &mut mpsc::UnboundedReceiver<Event>,
        failing: &str,
    ) -> (String, Status) {
        loop {
            match next_event(rx).await {
                Event::Failed(id) => assert_eq!(id, failing),
                Event::Decided(id, status) => return (id, status),
            }
        }
    }

    /// A second connection to the store's database, to break and mend it behind the
    /// store's back.
    async fn raw(dir: &tempfile::TempDir) -> sqlx::SqliteConnection {
        use sqlx::Connection as _;
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        sqlx::SqliteConnection::connect(&url).await.unwrap()
    }

    fn runner<O: Observer>(
        store: &Store,
        source: &Arc<Fixed>,
        observer: O,
        clock: Clock,
    ) -> Runner<Fixed, O> {
        Runner {
            store: store.clone(),
            source: source.clone(),
            observer: Arc::new(observer),
            concurrency: 4,
            clock,
            replicas: None,
            metrics: None,
            judging: None,
        }
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
        let runner = runner(&store, &source, Decisions(tx), Clock::system());
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
    async fn an_analysis_ended_before_it_was_scheduled_gives_its_watches_back() {
        let (store, _dir, source) = setup(10).await;
        let (a, _) = store
            .create(&request("gone", "1m"), now_ms())
            .await
            .unwrap();
        store.cancel(&a.id, now_ms()).await.unwrap();
        let (tx, _decided) = mpsc::unbounded_channel();
        let (handle, commands) = RunnerHandle::new();
        let (stop, stopped) = watch::channel(false);
        let runner = runner(&store, &source, Decisions(tx), Clock::system());
        let task = tokio::spawn(runner.run(commands, stopped));
        // The create's reservation is held under the id until the source unwatches it.
        handle.schedule(&a.id);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !source.unwatched.lock().unwrap().contains(&a.id) {
            assert!(std::time::Instant::now() < deadline, "never unwatched");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(source.watched.lock().unwrap().is_empty());
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn critical_regression_fails_at_once_and_resume_after_restart() {
        let (store, _dir, source) = setup(200).await;
        let (a, _) = store.create(&request("bad", "1h"), now_ms()).await.unwrap();
        // A second, healthy analysis already in the store is resumed by a new runner.
        let (tx, mut decided) = mpsc::unbounded_channel();
        let (_handle, commands) = RunnerHandle::new();
        let (stop, stopped) = watch::channel(false);
        let runner = runner(&store, &source, Decisions(tx), Clock::system());
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

    #[tokio::test]
    async fn a_cancelled_analysis_is_not_overwritten() {
        let (store, _dir, source) = setup(10).await;
        let (a, _) = store.create(&request("c", "1h"), now_ms()).await.unwrap();
        store.cancel(&a.id, now_ms()).await.unwrap();
        let cx = Context::new(store.clone(), source, Arc::new(NoObserver), Clock::system());
        let outcome = cx.judge_interval(&a.id, BTreeMap::new()).await.unwrap();
        assert!(matches!(outcome, Judged::Finished));
        let stored = store.get(&a.id).await.unwrap().unwrap();
        assert_eq!(stored.status, Status::Cancelled);
        assert_eq!(stored.intervals, 0);
    }

    #[tokio::test]
    async fn a_store_error_keeps_the_analysis_scheduled() {
        let (store, dir, source) = setup(10).await;
        let (tx, mut events) = mpsc::unbounded_channel();
        let (handle, commands) = RunnerHandle::new();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(
            runner(&store, &source, Events(tx), Clock::system()).run(commands, stopped),
        );
        // A first analysis, decided: the runner is past its start-up.
        let (first, _) = store
            .create(&request("first", "1s"), now_ms())
            .await
            .unwrap();
        handle.schedule(&first.id);
        assert_eq!(
            next_event(&mut events).await,
            Event::Decided(first.id.clone(), Status::Pass)
        );
        // A second one, unreadable from the start: the schedule and every attempt fail
        // until it is mended, and it stays on the schedule throughout.
        let (a, _) = store
            .create(&request("retry", "2s"), now_ms())
            .await
            .unwrap();
        let mut db = raw(&dir).await;
        let break_it = "UPDATE analyses SET cumulative = 'not json' WHERE id = ?";
        sqlx::query(break_it)
            .bind(&a.id)
            .execute(&mut db)
            .await
            .unwrap();
        handle.schedule(&a.id);
        assert_eq!(next_event(&mut events).await, Event::Failed(a.id.clone()));
        assert_eq!(next_event(&mut events).await, Event::Failed(a.id.clone()));
        sqlx::query("UPDATE analyses SET cumulative = '{}' WHERE id = ?")
            .bind(&a.id)
            .execute(&mut db)
            .await
            .unwrap();
        assert_eq!(
            next_decision(&mut events, &a.id).await,
            (a.id.clone(), Status::Pass)
        );
        let stored = store.get(&a.id).await.unwrap().unwrap();
        assert_eq!(stored.intervals, 2);
        assert_eq!(
            *source.watched.lock().unwrap(),
            vec![first.id.clone(), a.id.clone()],
            "each watched once, the second when it could first be read"
        );
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_failed_write_keeps_what_the_attempt_took() {
        let (store, dir, source) = setup(10).await;
        let (a, _) = store
            .create(&request("carry", "1s"), now_ms())
            .await
            .unwrap();
        let mut db = raw(&dir).await;
        sqlx::query(
            "CREATE TRIGGER refuse BEFORE INSERT ON intervals \
             BEGIN SELECT RAISE(ABORT, 'disk full, say'); END",
        )
        .execute(&mut db)
        .await
        .unwrap();
        let (tx, mut events) = mpsc::unbounded_channel();
        let (handle, commands) = RunnerHandle::new();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(
            runner(&store, &source, Events(tx), Clock::system()).run(commands, stopped),
        );
        handle.schedule(&a.id);
        assert_eq!(next_event(&mut events).await, Event::Failed(a.id.clone()));
        sqlx::query("DROP TRIGGER refuse")
            .execute(&mut db)
            .await
            .unwrap();
        assert_eq!(
            next_event(&mut events).await,
            Event::Decided(a.id.clone(), Status::Pass)
        );
        let intervals = store.intervals(&a.id).await.unwrap();
        assert_eq!(intervals.len(), 1);
        // The failed attempt's take and the retry's, both in the one interval.
        match &intervals[0].data["error-rate"] {
            MetricData::Counts { canary, .. } => assert_eq!(canary.requests, 20_000),
            other => panic!("{other:?}"),
        }
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn intervals_missed_while_down_are_recorded_and_cannot_pass() {
        let (store, _dir, source) = setup(10).await;
        let (a, _) = store
            .create(&request("down", "12s"), now_ms())
            .await
            .unwrap();
        // The runner starts 10 s after the analysis was created: intervals 1 to 10 ended
        // while the daemon was down.
        let clock = Clock::from_fn(|| now_ms() + 10_000);
        let (tx, mut decided) = mpsc::unbounded_channel();
        let (handle, commands) = RunnerHandle::new();
        let (stop, stopped) = watch::channel(false);
        let task =
            tokio::spawn(runner(&store, &source, Decisions(tx), clock).run(commands, stopped));
        handle.schedule(&a.id);
        let (_, status) = first_decision(&mut decided).await;
        assert_eq!(status, Status::Inconclusive);
        let intervals = store.intervals(&a.id).await.unwrap();
        assert_eq!(intervals.len(), 12);
        assert!(intervals[..10].iter().all(|i| i.data.is_empty()));
        assert!(
            intervals[0]
                .judgment
                .reasons
                .iter()
                .any(|r| r.contains("missed"))
        );
        let j = store.get(&a.id).await.unwrap().unwrap().judgment.unwrap();
        assert_eq!(
            j.reasons[0], "10 of 12 intervals brought no data: too little evidence to pass",
            "{:?}",
            j.reasons
        );
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn looks_cost_one_look_and_a_restart_replays_once() {
        use std::sync::atomic::{AtomicI64, Ordering};
        let (store, _dir, source) = setup(10).await;
        let t0 = now_ms();
        let (a, _) = store.create(&request("seq", "1h"), t0).await.unwrap();
        let time = Arc::new(AtomicI64::new(t0));
        let clock = {
            let time = time.clone();
            Clock::from_fn(move || time.load(Ordering::SeqCst))
        };
        let cx = Context::new(
            store.clone(),
            source.clone(),
            Arc::new(NoObserver),
            clock.clone(),
        );
        for k in 1..=5 {
            time.store(t0 + 1_000 * k, Ordering::SeqCst);
            let judged = cx.judge_interval(&a.id, BTreeMap::new()).await.unwrap();
            assert!(matches!(judged, Judged::Running(_)), "{judged:?}");
        }
        assert_eq!(cx.replays(), 0, "the running state was kept, not replayed");
        // Not due yet: nothing judged, nothing lost.
        assert!(matches!(
            cx.judge_interval(&a.id, BTreeMap::new()).await.unwrap(),
            Judged::Early { .. }
        ));
        // A restart replays the stored intervals once, then goes on from memory.
        let restarted = Context::new(store.clone(), source.clone(), Arc::new(NoObserver), clock);
        for k in 6..=7 {
            time.store(t0 + 1_000 * k, Ordering::SeqCst);
            restarted
                .judge_interval(&a.id, BTreeMap::new())
                .await
                .unwrap();
        }
        assert_eq!(restarted.replays(), 1);
        // The judgment kept step by step equals a replay of every stored look.
        let stored = store.get(&a.id).await.unwrap().unwrap();
        let intervals = store.intervals(&a.id).await.unwrap();
        assert_eq!(intervals.len(), 7);
        let looks: Vec<_> = intervals.iter().map(|i| &i.data).collect();
        let mut replayed = judge_looks(
            &stored.model,
            &stored.cumulative,
            &looks,
            &JudgeOptions::default(),
        )
        .unwrap();
        let kept = stored.judgment.unwrap();
        replayed.reasons = kept.reasons.clone();
        assert_eq!(kept, replayed);
        assert!(kept.metrics.iter().any(|m| m.sequential.is_some()));
    }

    #[tokio::test]
    async fn an_unreadable_running_analysis_does_not_stop_the_resume() {
        let (store, dir, source) = setup(10).await;
        let (bad, _) = store.create(&request("bad", "1s"), now_ms()).await.unwrap();
        let (good, _) = store
            .create(&request("good", "1s"), now_ms())
            .await
            .unwrap();
        let mut db = raw(&dir).await;
        sqlx::query("UPDATE analyses SET request = '{' WHERE id = ?")
            .bind(&bad.id)
            .execute(&mut db)
            .await
            .unwrap();
        let (tx, mut events) = mpsc::unbounded_channel();
        let (_handle, commands) = RunnerHandle::new();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(
            runner(&store, &source, Events(tx), Clock::system()).run(commands, stopped),
        );
        // Reported at start, and the readable one is judged to its verdict.
        assert_eq!(next_event(&mut events).await, Event::Failed(bad.id.clone()));
        assert_eq!(
            next_decision(&mut events, &bad.id).await,
            (good.id.clone(), Status::Pass)
        );
        // Mended, the unreadable one is judged too.
        sqlx::query("UPDATE analyses SET request = ? WHERE id = ?")
            .bind(
                serde_json::to_string(&good.request)
                    .unwrap()
                    .replace("\"good\"", "\"bad\""),
            )
            .bind(&bad.id)
            .execute(&mut db)
            .await
            .unwrap();
        assert_eq!(
            next_decision(&mut events, &bad.id).await,
            (bad.id.clone(), Status::Pass)
        );
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
    }
}
