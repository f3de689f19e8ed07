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
//! ([`crate::ingest::scrape::source`]); a target that fails costs only the metrics on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use crate::analysis::Analysis;
use crate::analysis::runner::{DataSource, SourceError};
use crate::ingest::prometheus::{QuerySource, Window};
use crate::ingest::scrape::Scrapes;
use crate::judge::MetricData;
use crate::judge::data::HistogramSide;
use crate::model::{Metric, MetricKind, OtlpSource, Source};
use crate::stats::proportions::Counts;
use crate::telemetry::Metrics;
use crate::windows::{Scope, SpanFilter, SpanKind, WatchId, WindowData, Windows};

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
        let since_ms = crate::analysis::runner::now_ms();
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
        let window = Window {
            end: UNIX_EPOCH + Duration::from_millis(end_ms.max(0) as u64),
            length,
            step: self.step.min(length),
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
                    m.prometheus_query(&p.pack, started.elapsed());
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

/// The span filter of an OTLP source (a metric without a source reads server spans).
pub fn span_filter(source: Option<&OtlpSource>) -> Result<SpanFilter, String> {
    let Some(source) = source else {
        return Ok(SpanFilter::default());
    };
    let kind = match source.span_kind.as_str() {
        "any" | "all" => None,
        "unspecified" => Some(SpanKind::Unspecified),
        "internal" => Some(SpanKind::Internal),
        "server" => Some(SpanKind::Server),
        "client" => Some(SpanKind::Client),
        "producer" => Some(SpanKind::Producer),
        "consumer" => Some(SpanKind::Consumer),
        other => {
            return Err(format!(
                "span_kind `{other}` is not one of server, client, internal, producer, consumer, unspecified, any"
            ));
        }
    };
    Ok(SpanFilter {
        kind,
        name: source.span_name.clone(),
        route: source.http_route.clone(),
    })
}

impl DataSource for Sources {
    fn watch(&self, analysis: &Analysis) {
        let mut groups: Vec<OtlpWatch> = Vec::new();
        let mut refused = Vec::new();
        for m in &analysis.model.metrics {
            let otlp = match &m.source {
                Some(Source::Otlp(o)) => Some(o),
                None => None,
                Some(Source::Prometheus(_) | Source::Scrape(_)) => continue,
            };
            let filter = match span_filter(otlp) {
                Ok(f) => f,
                Err(reason) => {
                    refused.push((m.name.clone(), reason));
                    continue;
                }
            };
            match groups.iter_mut().find(|g| g.filter == filter) {
                Some(g) => g.metrics.push((m.name.clone(), m.kind)),
                None => {
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
        for (metric, reason) in refused {
            tracing::warn!(analysis = %analysis.id, %metric, %reason, "metric not watched");
        }
        let old = self.watches().insert(analysis.id.clone(), groups);
        if let Some(old) = old {
            self.release(old);
        }
        self.scrapes.watch(analysis);
    }

    fn unwatch(&self, id: &str) {
        self.scrapes.unwatch(id);
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
        let mut data = BTreeMap::new();
        let mut errors = Vec::new();
        self.take_otlp(analysis, start_ms, &mut data, &mut errors);
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
