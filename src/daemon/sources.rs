//! Where the runner's data comes from: the OTLP windows and the Prometheus query packs,
//! behind the runner's [`DataSource`] trait.
//!
//! OTLP: each analysis watches two scopes (baseline and canary) per distinct span filter
//! its model's metrics use; metrics sharing a filter (latency and error rate of the same
//! server spans) share the watch. A take swaps out what arrived since the previous take,
//! which the runner does once per interval, so each interval gets exactly its own spans.
//! After a restart the watches are re-registered on resume; what arrived while the daemon
//! was down is lost, and the interval says so with a reason: an interval whose window
//! began before its watch was registered is missing the spans of that gap, and one that
//! ended before the daemon started (judged through `missed`) has no spans at all.
//!
//! Prometheus: each metric with a query-pack source runs its pack's query for both scopes
//! over the interval that just ended. Queries of one analysis run concurrently, and a
//! failed query costs only its own metric (a reason on the interval), never the others.
//!
//! Scrape: each metric with a scrape source is judged on what its `/metrics` targets
//! counted between the scrape at the interval's start and the one at its end
//! ([`super::scrape`]); a target that fails costs only the metrics on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::scrape::Scrapes;
use crate::analysis::Analysis;
use crate::analysis::{DataSource, SourceError};
use crate::ingest::prometheus::{QuerySource, Window};
use crate::judge::MetricData;
use crate::judge::data::HistogramSide;
use crate::model::{Metric, MetricKind, Source};
use crate::stats::proportions::Counts;
use crate::telemetry::Metrics;
pub use crate::windows::span_filter;
use crate::windows::{Scope, SpanFilter, WatchId, WindowData, Windows};

/// Resolution of Prometheus series queries (`{{ step }}`): at least twice the usual 15 s
/// scrape interval, so a rate over one step always sees two samples.
pub const DEFAULT_STEP: Duration = Duration::from_secs(30);

/// The daemon's data sources.
pub struct Sources {
    windows: Arc<Windows>,
    prometheus: Option<QuerySource>,
    step: Duration,
    /// Analysis id -> its OTLP watches.
    watches: Mutex<HashMap<String, Vec<OtlpWatch>>>,
    /// Where query latencies are recorded.
    metrics: Option<Arc<Metrics>>,
    /// The scrape source's targets and last scrapes, per analysis.
    scrapes: Scrapes,
}

/// One span filter of one analysis, watched on both scopes.
struct OtlpWatch {
    filter: SpanFilter,
    /// The metrics fed by this filter.
    metrics: Vec<(String, MetricKind)>,
    sides: Sides,
}

/// Whether a filter's windows are registered.
enum Sides {
    /// Registered at `since_ms`: spans before then are not in them.
    Live {
        baseline: WatchId,
        canary: WatchId,
        since_ms: i64,
    },
    /// The windows refused the watch (a limit); tried again at the next take.
    Refused(String),
}

/// How late a watch may start after the first interval began and still count as covering
/// it: an analysis is created, then watched, within milliseconds.
const WATCH_GRACE_MS: i64 = 1_000;

impl Sources {
    pub fn new(windows: Arc<Windows>, prometheus: Option<QuerySource>) -> Sources {
        Sources {
            windows,
            prometheus,
            step: DEFAULT_STEP,
            watches: Mutex::new(HashMap::new()),
            metrics: None,
            scrapes: Scrapes::new(),
        }
    }

    /// The same sources, recording each Prometheus query's latency in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Sources {
        self.metrics = Some(metrics);
        self
    }

    /// The OTLP windows (shared with the receiver).
    pub fn windows(&self) -> &Arc<Windows> {
        &self.windows
    }

    fn watches(&self) -> MutexGuard<'_, HashMap<String, Vec<OtlpWatch>>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters (entries are whole values), so a poisoned lock is still usable.
        self.watches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The scope an OTLP watch matches: the request's values for the model's scope names.
    fn otlp_scope(analysis: &Analysis, side: &crate::analysis::Scope) -> Scope {
        analysis
            .model
            .scope
            .iter()
            .filter_map(|name| side.get(name).map(|v| (name.clone(), v.clone())))
            .collect()
    }

    fn register(&self, analysis: &Analysis, filter: &SpanFilter) -> Sides {
        let baseline = Self::otlp_scope(analysis, &analysis.request.baseline);
        let canary = Self::otlp_scope(analysis, &analysis.request.canary);
        let since_ms = crate::clock::now_ms();
        let b = match self.windows.watch(baseline, filter.clone()) {
            Ok(b) => b,
            Err(e) => return Sides::Refused(format!("cannot watch the baseline's spans: {e}")),
        };
        match self.windows.watch(canary, filter.clone()) {
            Ok(c) => Sides::Live {
                baseline: b,
                canary: c,
                since_ms,
            },
            Err(e) => {
                self.windows.unwatch(b);
                Sides::Refused(format!("cannot watch the canary's spans: {e}"))
            }
        }
    }

    fn release(&self, watches: Vec<OtlpWatch>) {
        for w in watches {
            if let Sides::Live {
                baseline, canary, ..
            } = w.sides
            {
                self.windows.unwatch(baseline);
                self.windows.unwatch(canary);
            }
        }
    }

    /// Takes this interval's spans (`[start_ms, ...)`) for every OTLP metric of `analysis`.
    fn take_otlp(
        &self,
        analysis: &Analysis,
        start_ms: i64,
        data: &mut BTreeMap<String, MetricData>,
        errors: &mut Vec<SourceError>,
    ) {
        if !self.watches().contains_key(&analysis.id) {
            // Not watched yet (a source that restarted under a running analysis).
            self.watch(analysis);
        }
        let mut all = self.watches();
        let Some(watches) = all.get_mut(&analysis.id) else {
            return;
        };
        for w in watches.iter_mut() {
            let fail = |reason: String, w: &OtlpWatch, errors: &mut Vec<SourceError>| {
                for (metric, _) in &w.metrics {
                    errors.push(SourceError {
                        metric: metric.clone(),
                        reason: reason.clone(),
                    });
                }
            };
            let (b, c, since_ms) = match &w.sides {
                Sides::Live {
                    baseline,
                    canary,
                    since_ms,
                } => (*baseline, *canary, *since_ms),
                Sides::Refused(reason) => {
                    let reason = reason.clone();
                    // Try again: the limit that refused the watch may have room now.
                    w.sides = self.register(analysis, &w.filter);
                    fail(reason, w, errors);
                    continue;
                }
            };
            let taken = self
                .windows
                .take(b)
                .and_then(|b| self.windows.take(c).map(|c| (b, c)));
            match taken {
                Ok((baseline, canary)) => {
                    // The first interval starts when the analysis is created, a moment
                    // before it is watched; later ones start after their watch was set.
                    let grace = if analysis.intervals == 0 {
                        WATCH_GRACE_MS
                    } else {
                        0
                    };
                    if since_ms > start_ms + grace {
                        fail(
                            format!(
                                "spans that arrived in the first {} of this interval are \
                                 missing: the daemon (re)started watching this analysis then",
                                humantime::format_duration(Duration::from_millis(
                                    (since_ms - start_ms).max(0) as u64
                                ))
                            ),
                            w,
                            errors,
                        );
                    }
                    for (metric, kind) in &w.metrics {
                        data.insert(metric.clone(), metric_data(*kind, &baseline, &canary));
                    }
                }
                Err(e) => {
                    // Expired (idle longer than the windows allow): watch again.
                    self.windows.unwatch(b);
                    self.windows.unwatch(c);
                    w.sides = self.register(analysis, &w.filter);
                    fail(format!("OTLP window lost ({e}); watching again"), w, errors);
                }
            }
        }
    }

    /// Reports every OTLP metric of `analysis` as missing for an interval that ended
    /// before the daemon was running.
    fn missed_otlp(analysis: &Analysis, errors: &mut Vec<SourceError>) {
        for m in &analysis.model.metrics {
            if matches!(m.source, None | Some(Source::Otlp(_))) {
                errors.push(SourceError {
                    metric: m.name.clone(),
                    reason: "no spans: the daemon was not running during this interval".into(),
                });
            }
        }
    }

    /// Runs the query of every Prometheus metric of `analysis` over `[start_ms, end_ms)`.
    async fn take_prometheus(
        &self,
        analysis: &Analysis,
        start_ms: i64,
        end_ms: i64,
        data: &mut BTreeMap<String, MetricData>,
        errors: &mut Vec<SourceError>,
    ) {
        let metrics: Vec<&Metric> = analysis
            .model
            .metrics
            .iter()
            .filter(|m| matches!(m.source, Some(Source::Prometheus(_))))
            .collect();
        if metrics.is_empty() {
            return;
        }
        let Some(prometheus) = &self.prometheus else {
            for m in metrics {
                errors.push(SourceError {
                    metric: m.name.clone(),
                    reason: "its source is a Prometheus query pack, but the daemon has no \
                             Prometheus configured (--prometheus-url or `prometheus:` in the config)"
                        .into(),
                });
            }
            return;
        };
        let length = Duration::from_millis((end_ms - start_ms).max(1) as u64);
        // A request's own step (a window in the past, e.g. Kayenta's `step`) wins over
        // the daemon's; it was checked when the analysis was created.
        let step = analysis
            .request
            .step
            .as_deref()
            .and_then(|s| crate::analysis::request::parse_duration("step", s).ok())
            .unwrap_or(self.step);
        let window = Window {
            end: crate::clock::system_time(end_ms),
            length,
            step: step.min(length),
        };
        let mut tasks = tokio::task::JoinSet::new();
        for m in metrics {
            let (prometheus, metric, window) = (prometheus.clone(), m.clone(), window);
            let (baseline, canary) = (
                analysis.request.baseline.clone(),
                analysis.request.canary.clone(),
            );
            let observe = self.metrics.clone();
            tasks.spawn(async move {
                let started = std::time::Instant::now();
                let fetched = prometheus
                    .fetch_metric(&metric, &baseline, &canary, &window)
                    .await;
                if let (Some(m), Some(Source::Prometheus(p))) = (&observe, &metric.source) {
                    m.prometheus_query(p.pack_label(), started.elapsed());
                }
                (metric.name, fetched)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((name, Ok(fetch))) => {
                    if let Some(d) = fetch.data {
                        data.insert(name, d);
                    }
                }
                Ok((name, Err(e))) => errors.push(SourceError {
                    metric: name,
                    reason: e.to_string(),
                }),
                Err(e) => tracing::error!(analysis = %analysis.id, error = %e, "query task failed"),
            }
        }
    }
}

fn source_error((metric, reason): (String, String)) -> SourceError {
    SourceError { metric, reason }
}

/// A metric's data from the spans one watch pair recorded.
fn metric_data(kind: MetricKind, baseline: &WindowData, canary: &WindowData) -> MetricData {
    match kind {
        MetricKind::Distribution => MetricData::Histograms {
            baseline: HistogramSide {
                histogram: baseline.histogram.clone(),
            },
            canary: HistogramSide {
                histogram: canary.histogram.clone(),
            },
        },
        MetricKind::ErrorRatio => MetricData::Counts {
            baseline: Counts {
                requests: baseline.requests,
                errors: baseline.errors,
            },
            canary: Counts {
                requests: canary.requests,
                errors: canary.errors,
            },
        },
    }
}

impl DataSource for Sources {
    fn watch(&self, analysis: &Analysis) {
        let mut groups: Vec<OtlpWatch> = Vec::new();
        // Where each filter's group is in `groups`: one lookup per metric, so a model of
        // many distinct filters costs linear time to watch.
        let mut by_filter: HashMap<SpanFilter, usize> = HashMap::new();
        for m in &analysis.model.metrics {
            let otlp = match &m.source {
                Some(Source::Otlp(o)) => Some(o),
                None => None,
                Some(Source::Prometheus(_) | Source::Scrape(_)) => continue,
            };
            let Some(filter) = span_filter(otlp) else {
                tracing::warn!(analysis = %analysis.id, metric = %m.name,
                    "metric not watched: its span_kind is none of OTLP's");
                continue;
            };
            match by_filter.get(&filter) {
                Some(&i) => groups[i].metrics.push((m.name.clone(), m.kind)),
                None => {
                    by_filter.insert(filter.clone(), groups.len());
                    let sides = self.register(analysis, &filter);
                    if let Sides::Refused(reason) = &sides {
                        tracing::warn!(analysis = %analysis.id, %reason, "OTLP watch refused");
                    }
                    groups.push(OtlpWatch {
                        filter,
                        metrics: vec![(m.name.clone(), m.kind)],
                        sides,
                    });
                }
            }
        }
        self.windows.hold(&analysis.id, 2 * groups.len());
        let old = self.watches().insert(analysis.id.clone(), groups);
        if let Some(old) = old {
            self.release(old);
        }
        self.scrapes.watch(analysis);
    }

    fn unwatch(&self, id: &str) {
        self.scrapes.unwatch(id);
        self.windows.release(id);
        let removed = self.watches().remove(id);
        if let Some(w) = removed {
            self.release(w);
        }
    }

    async fn take(
        &self,
        analysis: &Analysis,
        start_ms: i64,
        end_ms: i64,
    ) -> (BTreeMap<String, MetricData>, Vec<SourceError>) {
        let (mut data, mut errors) = self.take_received(analysis, start_ms);
        let (queried, failed) = self.query(analysis, start_ms, end_ms).await;
        data.extend(queried);
        errors.extend(failed);
        (data, errors)
    }

    fn take_over(&self, analysis: &Analysis) {
        self.scrapes.watch(analysis);
    }

    fn take_received(
        &self,
        analysis: &Analysis,
        start_ms: i64,
    ) -> (BTreeMap<String, MetricData>, Vec<SourceError>) {
        let mut data = BTreeMap::new();
        let mut errors = Vec::new();
        self.take_otlp(analysis, start_ms, &mut data, &mut errors);
        (data, errors)
    }

    async fn query(
        &self,
        analysis: &Analysis,
        start_ms: i64,
        end_ms: i64,
    ) -> (BTreeMap<String, MetricData>, Vec<SourceError>) {
        let mut data = BTreeMap::new();
        let mut errors = Vec::new();
        let (_, scraped) = tokio::join!(
            self.take_prometheus(analysis, start_ms, end_ms, &mut data, &mut errors),
            self.scrapes.take(analysis, start_ms),
        );
        data.extend(scraped.data);
        errors.extend(scraped.errors.into_iter().map(source_error));
        (data, errors)
    }

    async fn missed(
        &self,
        analysis: &Analysis,
        start_ms: i64,
        end_ms: i64,
    ) -> (BTreeMap<String, MetricData>, Vec<SourceError>) {
        let mut data = BTreeMap::new();
        let mut errors = Vec::new();
        Self::missed_otlp(analysis, &mut errors);
        errors.extend(Scrapes::missed(analysis).into_iter().map(source_error));
        self.take_prometheus(analysis, start_ms, end_ms, &mut data, &mut errors)
            .await;
        (data, errors)
    }
}

#[cfg(test)]
mod tests {
    //! The OTLP watch state machine: one pair of windows per span filter, registered on
    //! `watch`, refused by the windows' limit and tried again at the next take, released
    //! on `unwatch`, registered again when lost, and the reason an interval gets when its
    //! watch started after it began (with the grace of the first interval).

    use super::*;
    use crate::analysis::{AnalysisRequest, Status};
    use crate::ingest::otlp::ingest_message;
    use crate::ingest::otlp::synthetic::{BatchSpec, batch};
    use crate::model::Catalog;
    use crate::windows::{WindowsConfig, WindowsError};

    /// An `http-red` analysis of `service` (versions 1 and 2) that has judged
    /// `intervals` intervals; its two metrics read the same (server) spans.
    fn analysis(id: &str, service: &str, intervals: u32) -> Analysis {
        let request: AnalysisRequest = serde_json::from_value(serde_json::json!({
            "key": id, "model": "http-red",
            "baseline": {"service.name": service, "service.version": "1"},
            "canary": {"service.name": service, "service.version": "2"},
            "interval": "10s", "lifetime": "10m"}))
        .unwrap();
        let valid = request.validate(&Catalog::builtin()).unwrap();
        Analysis {
            id: id.into(),
            key: id.into(),
            request: valid.request,
            model: valid.model,
            status: Status::Running,
            interval_ms: 10_000,
            lifetime_ms: 600_000,
            created_ms: 1_000_000,
            next_due_ms: 1_010_000,
            decided_ms: None,
            intervals,
            score: None,
            judgment: None,
            cumulative: BTreeMap::new(),
        }
    }

    fn sources(max_watches: usize) -> (Arc<Windows>, Sources) {
        let windows = Arc::new(Windows::new(WindowsConfig {
            max_watches,
            ..WindowsConfig::default()
        }));
        (Arc::clone(&windows), Sources::new(windows, None))
    }

    /// A watch of something else, taking room in the windows.
    fn other_watch(windows: &Windows, service: &str) -> WatchId {
        let scope = [("service.name".to_string(), service.to_string())].into();
        windows.watch(scope, SpanFilter::default()).unwrap()
    }

    /// Sends `spans` server spans of `service` at `version`, about half of them failed
    /// when `errors`.
    fn send(windows: &Windows, service: &str, version: &str, spans: usize, errors: bool) {
        let spec = BatchSpec {
            spans,
            attributes: 2,
            error_rate: if errors { 0.5 } else { 0.0 },
            ..BatchSpec::standard(service, version, 7)
        };
        let outcome = ingest_message(windows, &batch(&spec));
        assert_eq!(outcome.spans, spans as u64);
    }

    fn block_on<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    /// The take of the interval that began at `start_ms`.
    fn take(
        sources: &Sources,
        analysis: &Analysis,
        start_ms: i64,
    ) -> (BTreeMap<String, MetricData>, Vec<SourceError>) {
        block_on(sources.take(analysis, start_ms, start_ms + 10_000))
    }

    /// The state of each of the analysis's filters: `Ok(since_ms)` when live, else the
    /// refusal.
    fn states(sources: &Sources, id: &str) -> Vec<Result<i64, String>> {
        sources.watches()[id]
            .iter()
            .map(|w| match &w.sides {
                Sides::Live { since_ms, .. } => Ok(*since_ms),
                Sides::Refused(reason) => Err(reason.clone()),
            })
            .collect()
    }

    /// When the analysis's one filter was registered.
    fn since_ms(sources: &Sources, id: &str) -> i64 {
        match states(sources, id).as_slice() {
            [Ok(since)] => *since,
            other => panic!("one live filter expected: {other:?}"),
        }
    }

    /// The reason both metrics of the filter (latency, error rate) were given, if any.
    fn reason(errors: &[SourceError]) -> Option<String> {
        match errors {
            [] => None,
            [latency, error_rate] => {
                assert_eq!(latency.metric, "latency");
                assert_eq!(error_rate.metric, "error-rate");
                assert_eq!(latency.reason, error_rate.reason);
                Some(latency.reason.clone())
            }
            other => panic!("one reason for both metrics expected: {other:?}"),
        }
    }

    /// Requests (baseline, canary) in a take's data.
    fn requests(data: &BTreeMap<String, MetricData>) -> (u64, u64) {
        match &data["error-rate"] {
            MetricData::Counts { baseline, canary } => (baseline.requests, canary.requests),
            other => panic!("counts expected: {other:?}"),
        }
    }

    /// Requests (baseline, canary) taken for an interval its watch covered (no reason).
    fn taken(sources: &Sources, analysis: &Analysis, start_ms: i64) -> (u64, u64) {
        let (data, errors) = take(sources, analysis, start_ms);
        assert_eq!(reason(&errors), None);
        requests(&data)
    }

    #[test]
    fn one_pair_of_windows_per_span_filter_and_each_take_gets_its_own_spans() {
        let (windows, sources) = sources(16);
        let a = analysis("a", "cart", 1);
        let before = crate::clock::now_ms();
        sources.watch(&a);
        let since = since_ms(&sources, "a");
        assert!(since >= before);
        // Latency and error rate read the same spans: one filter, so one pair.
        assert_eq!(windows.stats().live_watches, 2);
        let metrics: Vec<String> = sources.watches()["a"][0]
            .metrics
            .iter()
            .map(|(m, _)| m.clone())
            .collect();
        assert_eq!(metrics, ["latency", "error-rate"]);

        send(&windows, "cart", "1", 100, true);
        send(&windows, "cart", "2", 60, false);
        send(&windows, "other", "1", 10, false);
        let (data, errors) = take(&sources, &a, since);
        assert_eq!(reason(&errors), None);
        assert_eq!(requests(&data), (100, 60));
        let MetricData::Counts { baseline, canary } = &data["error-rate"] else {
            unreachable!()
        };
        assert!(baseline.errors > 0 && baseline.errors < 100);
        assert_eq!(canary.errors, 0);
        let MetricData::Histograms { baseline, canary } = &data["latency"] else {
            panic!("histograms expected: {:?}", data["latency"]);
        };
        let counts = (baseline.histogram.count(), canary.histogram.count());
        assert_eq!(counts, (100, 60));

        // The next interval starts empty: each span lands in exactly one take.
        send(&windows, "cart", "2", 5, false);
        assert_eq!(taken(&sources, &a, since + 10_000), (0, 5));
        assert_eq!(
            states(&sources, "a"),
            [Ok(since)],
            "the same watch throughout"
        );
    }

    #[test]
    fn a_refused_watch_holds_no_window_and_is_tried_again_at_each_take() {
        // Room for three windows, two of them taken: the baseline's fits, the canary's
        // does not, and the baseline's is given back.
        let (windows, sources) = sources(3);
        other_watch(&windows, "x");
        let spare = other_watch(&windows, "y");
        let a = analysis("a", "cart", 1);
        sources.watch(&a);
        let full = WindowsError::TooManyWatches { limit: 3 };
        let refusal = format!("cannot watch the canary's spans: {full}");
        assert_eq!(states(&sources, "a"), [Err(refusal.clone())]);
        assert_eq!(
            windows.stats().live_watches,
            2,
            "the baseline's window given back"
        );

        // A take reports the refusal for every metric of the filter, and tries again:
        // still no room.
        send(&windows, "cart", "1", 10, false);
        let (data, errors) = take(&sources, &a, 0);
        assert!(data.is_empty(), "{data:?}");
        assert_eq!(reason(&errors), Some(refusal.clone()));
        assert_eq!(states(&sources, "a"), [Err(refusal.clone())]);
        assert_eq!(windows.stats().live_watches, 2);

        // With room again, the next take still reports the refusal that cost its
        // interval, and registers the pair.
        assert!(windows.unwatch(spare));
        let before = crate::clock::now_ms();
        let (data, errors) = take(&sources, &a, 0);
        assert!(data.is_empty(), "{data:?}");
        assert_eq!(reason(&errors), Some(refusal));
        let since = since_ms(&sources, "a");
        assert!(since >= before);
        assert_eq!(windows.stats().live_watches, 3);

        // The interval after that has its data, and no reason when its watch was set
        // before it began.
        send(&windows, "cart", "1", 10, false);
        assert_eq!(taken(&sources, &a, since), (10, 0));
    }

    #[test]
    fn a_refused_baseline_watch_is_named() {
        let (windows, sources) = sources(0);
        sources.watch(&analysis("a", "cart", 0));
        let full = WindowsError::TooManyWatches { limit: 0 };
        let refusal = format!("cannot watch the baseline's spans: {full}");
        assert_eq!(states(&sources, "a"), [Err(refusal)]);
        assert_eq!(windows.stats().live_watches, 0);
    }

    #[test]
    fn unwatching_gives_the_windows_back_and_forgets_the_analysis() {
        let (windows, sources) = sources(16);
        let (a, b) = (analysis("a", "cart", 1), analysis("b", "pay", 1));
        sources.watch(&a);
        sources.watch(&b);
        assert_eq!(windows.stats().live_watches, 4);
        sources.unwatch("a");
        assert_eq!(windows.stats().live_watches, 2);
        assert!(!sources.watches().contains_key("a"));
        // Spans of an unwatched analysis are counted as dropped, not recorded.
        send(&windows, "cart", "1", 10, false);
        assert_eq!(windows.stats().dropped_spans, 10);
        // Unwatching twice, or an analysis never watched, changes nothing.
        sources.unwatch("a");
        sources.unwatch("never");
        assert_eq!(windows.stats().live_watches, 2);
        // Watching again replaces the pair instead of adding one.
        sources.watch(&b);
        assert_eq!(windows.stats().live_watches, 2);
        sources.unwatch("b");
        assert_eq!(windows.stats().live_watches, 0);
    }

    #[test]
    fn a_watch_started_after_its_interval_began_says_which_spans_are_missing() {
        // A source that restarted under a running analysis watches it at its next take:
        // the spans of the interval before the watch are missing, and the interval says
        // for how long.
        let (windows, sources) = sources(16);
        let a = analysis("a", "cart", 3);
        let start_ms = crate::clock::now_ms() - 4_500;
        let (data, errors) = take(&sources, &a, start_ms);
        let since = since_ms(&sources, "a");
        assert_eq!(windows.stats().live_watches, 2);
        assert_eq!(requests(&data), (0, 0), "the data is still the interval's");
        let missing = humantime::format_duration(Duration::from_millis((since - start_ms) as u64));
        let expected = format!(
            "spans that arrived in the first {missing} of this interval are missing: the \
             daemon (re)started watching this analysis then"
        );
        assert_eq!(reason(&errors), Some(expected.clone()));
        assert!(expected.contains("first 4s"), "{expected}");
    }

    #[test]
    fn the_first_interval_has_a_grace_for_the_watch_the_others_none() {
        let (_windows, sources) = sources(16);
        let first = analysis("a", "cart", 0);
        sources.watch(&first);
        let since = since_ms(&sources, "a");
        let late = |analysis: &Analysis, start_ms: i64| {
            reason(&take(&sources, analysis, start_ms).1).unwrap_or_default()
        };
        // The first interval starts at creation, a moment before the watch: up to a
        // second late counts as covering it.
        assert_eq!(late(&first, since - WATCH_GRACE_MS), "");
        let missing = late(&first, since - WATCH_GRACE_MS - 1);
        assert!(
            missing.contains("in the first 1s 1ms of this interval"),
            "{missing}"
        );
        // Later intervals start after their watch was set: any lateness is reported.
        let later = Analysis {
            intervals: 1,
            ..first
        };
        assert_eq!(late(&later, since), "");
        let missing = late(&later, since - 1);
        assert!(
            missing.contains("in the first 1ms of this interval"),
            "{missing}"
        );
    }

    #[test]
    fn a_lost_window_is_reported_and_watched_again() {
        let (windows, sources) = sources(16);
        let a = analysis("a", "cart", 1);
        sources.watch(&a);
        let since = since_ms(&sources, "a");
        // Idle past the windows' timeout: expired under the analysis.
        let idle = windows.config().idle_timeout;
        assert_eq!(windows.expire_idle(std::time::Instant::now() + idle), 2);
        send(&windows, "cart", "1", 10, false);
        let (data, errors) = take(&sources, &a, since);
        assert!(data.is_empty(), "{data:?}");
        let lost = reason(&errors).unwrap();
        assert!(
            lost.starts_with("OTLP window lost (unknown watch")
                && lost.ends_with("; watching again"),
            "{lost}"
        );
        assert_eq!(windows.stats().live_watches, 2);
        let again = since_ms(&sources, "a");
        send(&windows, "cart", "2", 3, false);
        assert_eq!(taken(&sources, &a, again), (0, 3));
    }

    #[test]
    fn an_interval_missed_while_down_has_no_spans_and_says_why() {
        let (_windows, sources) = sources(16);
        let (data, errors) = block_on(sources.missed(&analysis("a", "cart", 1), 0, 10_000));
        assert!(data.is_empty(), "{data:?}");
        assert_eq!(
            reason(&errors).as_deref(),
            Some("no spans: the daemon was not running during this interval")
        );
    }
}
