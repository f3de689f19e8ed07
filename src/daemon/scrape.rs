//! The scrape model source: a metric with `source: {scrape: {url, histogram | requests +
//! errors}}` is judged from what the baseline's and the canary's `/metrics` endpoints
//! counted between the start and the end of each interval.
//!
//! Per analysis, every distinct target (side and URL) is scraped once when the analysis
//! is watched and once per interval, when the runner takes it; each scrape selects the
//! series every metric on that target asks for. An interval's increase is [`deltas`]
//! between the target's last good scrape and this one, so counter resets, new series
//! (counted from zero) and vanished series (not counted) follow that module's rules;
//! a side's targets are summed. Counts come from the `requests` and `errors` counters,
//! latency from a histogram's per-`le` bucket increases, converted to the judge's input by
//! the same code as the Prometheus source ([`crate::ingest::prometheus::metric_data`]).
//!
//! Failures cost only the metrics that need the failing target, with a reason: a target
//! that is down or serves garbage, a series the delta rules skip, a selector that matches
//! nothing. A target that failed keeps its last good scrape, so its next good one covers
//! the gap (nothing lost, nothing counted twice). An interval whose start scrape is
//! missing (the scrape at watch time failed) gets a reason and no data for the metric;
//! one whose start scrape came late (the daemon restarted during it) is judged on the
//! part it covers, with a reason.
//!
//! Invariant: nothing here panics on what a target serves, and memory is bounded by the
//! number of watched analyses, targets (at most
//! [`crate::model::scrape::target::MAX_TARGETS`] a side per metric) and
//! selected series.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::analysis::Analysis;
use crate::clock::now_ms;
use crate::ingest::prometheus::{Buckets, Observation, metric_data};
use crate::ingest::scrape::delta::{Selector, Snapshot, deltas};
use crate::ingest::scrape::scraper::Scraper;
use crate::judge::MetricData;
use crate::model::scrape::{Spec, Want};
use crate::model::{MetricKind, ScrapeSource, Source};
use crate::stats::proportions::Counts;

/// How late the scrape at watch time may start after the first interval began and still
/// count as that interval's start: an analysis is created, then watched, within
/// milliseconds.
const WATCH_GRACE_MS: i64 = 1_000;

/// Baseline or canary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Baseline,
    Canary,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Baseline => "baseline",
            Side::Canary => "canary",
        }
    }
}

/// One scrape of one target: a snapshot per selector the target serves.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    /// When the scrape was sent (ms since the epoch).
    pub at_ms: i64,
    /// Taken when the analysis was watched, not at the end of an interval.
    pub at_watch: bool,
    pub snapshots: Vec<Snapshot>,
}

/// A target's last good scrape, or why there is none.
#[derive(Clone, Debug, PartialEq)]
pub enum Slot {
    Missing(String),
    Good(Reading),
}

/// One target of an analysis.
#[derive(Clone, Debug)]
struct Target {
    side: Side,
    url: String,
    /// Every selector a metric on this target asks for (each selected on its own: two
    /// selectors may pick the same series, e.g. all requests and the failed ones).
    selectors: Vec<Selector>,
    timeout: Duration,
    /// Built once the layout is complete (the timeout is the longest any metric asks).
    scraper: Option<Scraper>,
}

/// Where one metric's series are: per side, (target index, selector index per wanted
/// selector, in [`Want::selectors`] order).
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    want: Want,
    baseline: Vec<(usize, Vec<usize>)>,
    canary: Vec<(usize, Vec<usize>)>,
}

/// The targets and per-metric plans of one analysis.
#[derive(Debug, Default)]
struct Layout {
    targets: Vec<Target>,
    /// Metric name -> its plan, or why it has none (a scope that gives no URL).
    metrics: Vec<(String, Result<Plan, String>)>,
}

impl Layout {
    fn of(analysis: &Analysis) -> Layout {
        let mut layout = Layout::default();
        for m in &analysis.model.metrics {
            let Some(Source::Scrape(source)) = &m.source else {
                continue;
            };
            let plan = layout.plan(analysis, source, m.kind);
            layout.metrics.push((m.name.clone(), plan));
        }
        for t in &mut layout.targets {
            // The URL was checked when rendered; a scraper that cannot be built is
            // reported at every scrape.
            t.scraper = Scraper::new(&t.url, t.timeout).ok();
        }
        layout
    }

    fn plan(
        &mut self,
        analysis: &Analysis,
        source: &ScrapeSource,
        kind: MetricKind,
    ) -> Result<Plan, String> {
        // A loaded model has been validated; a failure here is reported, not assumed away.
        let spec = Spec::read(source, kind).map_err(|problems| {
            problems
                .into_iter()
                .map(|(f, why)| format!("source.scrape.{f}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let mut sides = Vec::new();
        for (side, scope) in [
            (Side::Baseline, &analysis.request.baseline),
            (Side::Canary, &analysis.request.canary),
        ] {
            let urls = spec
                .url
                .render(scope)
                .map_err(|why| format!("{} targets: {why}", side.name()))?;
            let mut uses = Vec::new();
            for url in urls {
                let t = self.target(side, url, spec.timeout);
                let indexes = spec
                    .want
                    .selectors()
                    .into_iter()
                    .map(|n| self.selector(t, &n.selector))
                    .collect();
                uses.push((t, indexes));
            }
            sides.push(uses);
        }
        let canary = sides.pop().unwrap_or_default();
        let baseline = sides.pop().unwrap_or_default();
        Ok(Plan {
            want: spec.want,
            baseline,
            canary,
        })
    }

    fn target(&mut self, side: Side, url: String, timeout: Duration) -> usize {
        if let Some(i) = self
            .targets
            .iter()
            .position(|t| t.side == side && t.url == url)
        {
            self.targets[i].timeout = self.targets[i].timeout.max(timeout);
            return i;
        }
        self.targets.push(Target {
            side,
            url,
            selectors: Vec::new(),
            timeout,
            scraper: None,
        });
        self.targets.len() - 1
    }

    fn selector(&mut self, target: usize, selector: &Selector) -> usize {
        let selectors = &mut self.targets[target].selectors;
        selectors
            .iter()
            .position(|s| s == selector)
            .unwrap_or_else(|| {
                selectors.push(selector.clone());
                selectors.len() - 1
            })
    }
}

/// Scrapes every target once, concurrently; one result per target, in order.
async fn scrape_all(targets: &[Target], at_watch: bool) -> Vec<Result<Reading, String>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, t) in targets.iter().enumerate() {
        let t = t.clone();
        tasks.spawn(async move {
            let at_ms = now_ms();
            let Some(scraper) = &t.scraper else {
                return (
                    i,
                    Err(format!(
                        "scrape target {}: not a URL the scraper takes",
                        t.url
                    )),
                );
            };
            let selected = scraper
                .scrape_with(|e| {
                    t.selectors
                        .iter()
                        .map(|s| Snapshot::select(e, std::slice::from_ref(s)))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await;
            let reading = match selected {
                Ok(Ok(snapshots)) => Ok(Reading {
                    at_ms,
                    at_watch,
                    snapshots,
                }),
                Ok(Err(e)) => Err(format!("scrape target {}: {e}", t.url)),
                Err(e) => Err(e.to_string()),
            };
            (i, reading)
        });
    }
    let mut out: Vec<Result<Reading, String>> = (0..targets.len())
        .map(|_| Err("the scrape did not finish".to_string()))
        .collect();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, reading)) = joined {
            out[i] = reading;
        }
    }
    out
}

/// One side's observation for one metric, from each of its targets' previous and current
/// scrape. `Ok` also carries notes (data judged, but worth a reason); `Err` says why the
/// side has no data this interval.
pub fn observe_side(
    want: &Want,
    side: Side,
    uses: &[(usize, Vec<usize>)],
    urls: &[&str],
    before: &[Slot],
    now: &[Result<Reading, String>],
    start_ms: i64,
) -> Result<(Observation, Vec<String>), String> {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut pairs = Vec::new();
    for (t, indexes) in uses {
        let url = urls[*t];
        let current = match &now[*t] {
            Ok(r) => r,
            Err(e) => {
                problems.push(e.clone());
                continue;
            }
        };
        match &before[*t] {
            Slot::Missing(why) => problems.push(format!(
                "{} target {url}: no scrape at the start of this interval ({why}); this \
                 interval's scrape starts the next one",
                side.name()
            )),
            Slot::Good(previous) => {
                if previous.at_watch && previous.at_ms > start_ms + WATCH_GRACE_MS {
                    notes.push(format!(
                        "{} target {url}: only the last {} of this interval counted: the \
                         daemon (re)started scraping it {} after the interval began",
                        side.name(),
                        humantime::format_duration(Duration::from_millis(
                            (current.at_ms - previous.at_ms).max(0) as u64
                        )),
                        humantime::format_duration(Duration::from_millis(
                            (previous.at_ms - start_ms) as u64
                        )),
                    ));
                }
                pairs.push((url, indexes, previous, current));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let named = want.selectors();
    let mut matched = vec![false; named.len()];
    let mut totals = vec![0.0f64; named.len()];
    let mut histogram: Option<(String, Vec<f64>, Vec<u64>)> = None;
    for (url, indexes, previous, current) in pairs {
        for (k, &s) in indexes.iter().enumerate() {
            let (Some(p), Some(c)) = (previous.snapshots.get(s), current.snapshots.get(s)) else {
                problems.push(format!("{url}: selector {s} not scraped"));
                continue;
            };
            let d = deltas(p, c);
            for skipped in &d.skipped {
                problems.push(format!(
                    "{url}: {} cannot be counted: {}",
                    skipped.series, skipped.reason
                ));
            }
            matched[k] |= !d.counters.is_empty() || !d.histograms.is_empty();
            totals[k] += d.counters.iter().map(|c| c.increase).sum::<f64>();
            for h in &d.histograms {
                match &mut histogram {
                    None => {
                        histogram = Some((
                            format!("{url}: {}", h.series),
                            h.upper_bounds.clone(),
                            h.counts.clone(),
                        ))
                    }
                    Some((first, bounds, counts)) => {
                        if *bounds != h.upper_bounds {
                            problems.push(format!(
                                "{url}: {} has bucket bounds {:?}, {first} has {:?}: one side's \
                                 series must share their buckets",
                                h.series, h.upper_bounds, bounds
                            ));
                            continue;
                        }
                        for (sum, n) in counts.iter_mut().zip(&h.counts) {
                            *sum = sum.saturating_add(*n);
                        }
                    }
                }
            }
        }
    }
    // The first selector (requests, or the histogram) must match: no series at all is a
    // wrong name or no traffic yet. No errors series is no errors: a labelled counter
    // appears with its first increment.
    if !matched[0] {
        problems.push(format!(
            "`{}` matches no series on the {} targets ({})",
            named[0].text,
            side.name(),
            uses.iter()
                .map(|(t, _)| urls[*t])
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let observation = match want {
        Want::Counts { .. } => {
            let count = |k: usize| -> Result<u64, String> {
                let v = totals[k].round();
                if v.is_finite() && v >= 0.0 {
                    Ok(v as u64)
                } else {
                    Err(format!(
                        "`{}` increased by {}, not a count",
                        named[k].text, totals[k]
                    ))
                }
            };
            Observation::Counts(Counts {
                requests: count(0)?,
                errors: count(1)?,
            })
        }
        Want::Histogram(_) => {
            // `matched` guarantees a histogram; its bounds end with +Inf (delta's rule).
            let (_, bounds, counts) = histogram.unwrap_or_default();
            let finite: Vec<f64> = bounds.into_iter().filter(|b| b.is_finite()).collect();
            Observation::Buckets(Buckets::new(finite, counts).map_err(|e| e.to_string())?)
        }
    };
    Ok((observation, notes))
}

/// One metric's data for the interval that ended, or why there is none; with notes.
fn observe_metric(
    name: &str,
    plan: &Plan,
    urls: &[&str],
    before: &[Slot],
    now: &[Result<Reading, String>],
    start_ms: i64,
) -> Result<(Option<MetricData>, Vec<String>), String> {
    let side = |side, uses: &[(usize, Vec<usize>)]| {
        observe_side(&plan.want, side, uses, urls, before, now, start_ms)
    };
    let (b, c) = (
        side(Side::Baseline, &plan.baseline),
        side(Side::Canary, &plan.canary),
    );
    let ((b, mut notes), (c, more)) = match (b, c) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(e), Ok(_)) | (Ok(_), Err(e)) => return Err(e),
        (Err(b), Err(c)) => return Err(format!("{b}; {c}")),
    };
    notes.extend(more);
    let data = metric_data(name, &b, &c).map_err(|e| e.to_string())?;
    Ok((data, notes))
}

/// What one take gave: data per metric, and (metric, reason) for every metric that failed
/// or needs a word.
#[derive(Debug, Default)]
pub struct Taken {
    pub data: BTreeMap<String, MetricData>,
    pub errors: Vec<(String, String)>,
}

/// One watched analysis.
struct Watch {
    layout: Layout,
    /// Each target's last good scrape. Locked by the scrape at watch time until it is
    /// in, so the first take waits for it.
    slots: Arc<tokio::sync::Mutex<Vec<Slot>>>,
}

/// The scrape source of every watched analysis.
#[derive(Default)]
pub struct Scrapes {
    watches: Mutex<HashMap<String, Arc<Watch>>>,
}

impl Scrapes {
    pub fn new() -> Scrapes {
        Scrapes::default()
    }

    fn watches(&self) -> MutexGuard<'_, HashMap<String, Arc<Watch>>> {
        // Entries are whole values: a poisoned lock holds nothing half-updated.
        self.watches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts watching `analysis`: its targets are scraped now (in a task), as the first
    /// interval's start. Analyses without scrape metrics are not kept.
    pub fn watch(&self, analysis: &Analysis) {
        let layout = Layout::of(analysis);
        if layout.metrics.is_empty() {
            self.unwatch(&analysis.id);
            return;
        }
        let slots = Arc::new(tokio::sync::Mutex::new(vec![
            Slot::Missing(
                "no scrape was taken when the analysis was watched".into()
            );
            layout.targets.len()
        ]));
        let watch = Arc::new(Watch { layout, slots });
        if let (Ok(runtime), Ok(mut guard)) = (
            tokio::runtime::Handle::try_current(),
            Arc::clone(&watch.slots).try_lock_owned(),
        ) {
            let targets = watch.layout.targets.clone();
            runtime.spawn(async move {
                let readings = scrape_all(&targets, true).await;
                for (slot, reading) in guard.iter_mut().zip(readings) {
                    *slot = match reading {
                        Ok(r) => Slot::Good(r),
                        Err(e) => Slot::Missing(format!(
                            "the scrape when the analysis was watched failed: {e}"
                        )),
                    };
                }
            });
        }
        self.watches().insert(analysis.id.clone(), watch);
    }

    pub fn unwatch(&self, id: &str) {
        self.watches().remove(id);
    }

    /// Scrapes `analysis`'s targets for the interval that began at `start_ms` and
    /// judges each scrape metric on the increase since the interval's start.
    pub async fn take(&self, analysis: &Analysis, start_ms: i64) -> Taken {
        let has_scrape = analysis
            .model
            .metrics
            .iter()
            .any(|m| matches!(m.source, Some(Source::Scrape(_))));
        if !has_scrape {
            return Taken::default();
        }
        let existing = self.watches().get(&analysis.id).cloned();
        let watch = match existing {
            Some(w) => w,
            None => {
                // Not watched yet (a source that restarted under a running analysis).
                self.watch(analysis);
                match self.watches().get(&analysis.id).cloned() {
                    Some(w) => w,
                    None => return Taken::default(),
                }
            }
        };
        let mut slots = watch.slots.lock().await;
        let now = scrape_all(&watch.layout.targets, false).await;
        let urls: Vec<&str> = watch
            .layout
            .targets
            .iter()
            .map(|t| t.url.as_str())
            .collect();
        let mut taken = Taken::default();
        for (name, plan) in &watch.layout.metrics {
            let result = plan
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|plan| observe_metric(name, plan, &urls, &slots, &now, start_ms));
            match result {
                Ok((data, notes)) => {
                    if let Some(d) = data {
                        taken.data.insert(name.clone(), d);
                    }
                    taken
                        .errors
                        .extend(notes.into_iter().map(|n| (name.clone(), n)));
                }
                Err(reason) => taken.errors.push((name.clone(), reason)),
            }
        }
        for (slot, reading) in slots.iter_mut().zip(now) {
            match (reading, &*slot) {
                (Ok(r), _) => *slot = Slot::Good(r),
                // A target that never answered: the newest reason is the useful one.
                (Err(e), Slot::Missing(_)) => {
                    *slot = Slot::Missing(format!("its last scrape failed: {e}"))
                }
                // The last good scrape stays: the next good one covers the gap.
                (Err(_), Slot::Good(_)) => {}
            }
        }
        taken
    }

    /// Every scrape metric of `analysis`, reported missing for an interval that ended
    /// while the daemon was not running. What is held stays for the next take.
    pub fn missed(analysis: &Analysis) -> Vec<(String, String)> {
        analysis
            .model
            .metrics
            .iter()
            .filter(|m| matches!(m.source, Some(Source::Scrape(_))))
            .map(|m| {
                (
                    m.name.clone(),
                    "no scrape: the daemon was not running during this interval".to_string(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::scrape::exposition::{Format, parse};
    use crate::model::Model;
    use crate::model::scrape::Named;

    fn reading(text: &str, selectors: &[&Named], at_ms: i64, at_watch: bool) -> Reading {
        let e = parse(text, Format::Text).unwrap();
        Reading {
            at_ms,
            at_watch,
            snapshots: selectors
                .iter()
                .map(|n| Snapshot::select(&e, std::slice::from_ref(&n.selector)).unwrap())
                .collect(),
        }
    }

    fn counts_want() -> Want {
        let spec = Spec::read(
            &ScrapeSource {
                url: "http://{{ host }}/metrics".into(),
                histogram: None,
                requests: Some("req_total".into()),
                errors: Some(r#"req_total{code=~"5.."}"#.into()),
                timeout: None,
            },
            MetricKind::ErrorRatio,
        )
        .unwrap();
        spec.want
    }

    fn requests(ok: u32, failed: u32) -> String {
        format!(
            "# TYPE req_total counter\nreq_total{{code=\"200\"}} {ok}\nreq_total{{code=\"503\"}} {failed}\n"
        )
    }

    const URLS: [&str; 2] = ["http://a/metrics", "http://b/metrics"];

    #[test]
    fn counts_are_summed_over_targets_with_a_reset_counted_from_zero() {
        let want = counts_want();
        let sel = want.selectors();
        let before = [
            Slot::Good(reading(&requests(100, 1), &sel, 0, true)),
            Slot::Good(reading(&requests(500, 5), &sel, 0, true)),
        ];
        // Target b restarted: its counters went down, so what it shows now is the increase.
        let now = [
            Ok(reading(&requests(190, 3), &sel, 1000, false)),
            Ok(reading(&requests(40, 2), &sel, 1000, false)),
        ];
        let uses = [(0, vec![0, 1]), (1, vec![0, 1])];
        let (obs, notes) =
            observe_side(&want, Side::Canary, &uses, &URLS, &before, &now, 0).unwrap();
        assert_eq!(
            obs,
            Observation::Counts(Counts {
                requests: 92 + 42,
                errors: 2 + 2
            })
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn a_missing_start_scrape_or_a_failed_target_is_a_reason_not_data() {
        let want = counts_want();
        let sel = want.selectors();
        let good = || Slot::Good(reading(&requests(1, 0), &sel, 0, true));
        let now_ok = || Ok(reading(&requests(2, 0), &sel, 1000, false));
        let uses = [(0, vec![0, 1]), (1, vec![0, 1])];
        let before = [good(), Slot::Missing("connection refused".into())];
        let e = observe_side(
            &want,
            Side::Baseline,
            &uses,
            &URLS,
            &before,
            &[now_ok(), now_ok()],
            0,
        )
        .unwrap_err();
        assert!(
            e.contains("baseline target http://b/metrics: no scrape at the start of this interval (connection refused)"),
            "{e}"
        );
        let now = [
            now_ok(),
            Err("scrape target http://b/metrics is down: refused".into()),
        ];
        let e = observe_side(
            &want,
            Side::Baseline,
            &uses,
            &URLS,
            &[good(), good()],
            &now,
            0,
        )
        .unwrap_err();
        assert_eq!(e, "scrape target http://b/metrics is down: refused");
    }

    #[test]
    fn a_late_start_scrape_is_judged_with_a_note() {
        let want = counts_want();
        let sel = want.selectors();
        let before = [Slot::Good(reading(&requests(1, 0), &sel, 25_000, true))];
        let now = [Ok(reading(&requests(11, 0), &sel, 30_000, false))];
        let uses = [(0, vec![0, 1])];
        let (obs, notes) =
            observe_side(&want, Side::Canary, &uses, &URLS, &before, &now, 0).unwrap();
        assert_eq!(
            obs,
            Observation::Counts(Counts {
                requests: 10,
                errors: 0
            })
        );
        assert_eq!(
            notes,
            [
                "canary target http://a/metrics: only the last 5s of this interval counted: the \
              daemon (re)started scraping it 25s after the interval began"
            ]
        );
    }

    fn histogram_want() -> Want {
        Want::Histogram(Named {
            text: "lat_seconds".into(),
            selector: Selector::histogram("lat_seconds"),
        })
    }

    /// A `lat_seconds` histogram with one series per route: (route, [(le, cumulative)]).
    fn hist(series: &[(&str, &[(&str, u32)])]) -> String {
        let mut out = String::from("# TYPE lat_seconds histogram\n");
        for (route, buckets) in series {
            for (le, n) in *buckets {
                out.push_str(&format!(
                    "lat_seconds_bucket{{route=\"{route}\",le=\"{le}\"}} {n}\n"
                ));
            }
        }
        out
    }

    #[test]
    fn histograms_add_per_bucket_increases_over_series_and_targets() {
        let want = histogram_want();
        let sel = want.selectors();
        let two_routes = |a: [u32; 3], b: [u32; 3]| {
            let le = ["0.1", "1", "+Inf"];
            let pairs = |v: [u32; 3]| le.iter().copied().zip(v).collect::<Vec<_>>();
            hist(&[("/a", &pairs(a)), ("/b", &pairs(b))])
        };
        let before = [Slot::Good(reading(
            &two_routes([1, 2, 2], [0, 0, 0]),
            &sel,
            0,
            true,
        ))];
        let now = [Ok(reading(
            &two_routes([3, 7, 8], [1, 1, 4]),
            &sel,
            1,
            false,
        ))];
        let (obs, _) = observe_side(
            &want,
            Side::Baseline,
            &[(0, vec![0])],
            &URLS,
            &before,
            &now,
            0,
        )
        .unwrap();
        let Observation::Buckets(b) = obs else {
            panic!("{obs:?}")
        };
        assert_eq!(b.bounds(), [0.1, 1.0]);
        // Route /a: +2, +3, +1 per bucket; route /b: 1, 0, 3.
        assert_eq!(b.counts(), [3, 3, 4]);
    }

    #[test]
    fn histograms_with_other_bounds_or_no_series_are_refused_with_the_reason() {
        let want = histogram_want();
        let sel = want.selectors();
        let a = hist(&[("/a", &[("0.1", 1), ("+Inf", 2)])]);
        let b = hist(&[("/b", &[("0.5", 1), ("+Inf", 2)])]);
        let before = [
            Slot::Good(reading(&a, &sel, 0, true)),
            Slot::Good(reading(&b, &sel, 0, true)),
        ];
        let now = [
            Ok(reading(&a, &sel, 1, false)),
            Ok(reading(&b, &sel, 1, false)),
        ];
        let uses = [(0, vec![0]), (1, vec![0])];
        let e = observe_side(&want, Side::Canary, &uses, &URLS, &before, &now, 0).unwrap_err();
        assert!(e.contains("must share their buckets"), "{e}");
        let empty = [Slot::Good(reading("", &sel, 0, true))];
        let e = observe_side(
            &want,
            Side::Canary,
            &[(0, vec![0])],
            &URLS,
            &empty,
            &[Ok(reading("", &sel, 1, false))],
            0,
        )
        .unwrap_err();
        assert_eq!(
            e,
            "`lat_seconds` matches no series on the canary targets (http://a/metrics)"
        );
    }

    #[test]
    fn models_are_checked_with_file_field_and_reason() {
        let text = r#"
name: m
scope: [pod]
metrics:
  - name: latency
    source: {scrape: {url: "http://{{ pod }}:{{ port }}/metrics", requests: r_total}}
  - name: errors
    kind: error-ratio
    source: {scrape: {url: "ftp://x", errors: 'r_total{code=~"5.*"}', timeout: soon}}
  - name: ok
    kind: error-ratio
    source: {scrape: {url: "{{ pod }}", requests: r_total, errors: 'r_total{code="500"}'}}
"#;
        let e = Model::from_yaml(text, "m.yaml").unwrap_err();
        let got: Vec<(String, String)> = e
            .problems
            .iter()
            .map(|p| (p.field.clone(), p.reason.clone()))
            .collect();
        let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "metrics[0].source.scrape.histogram",
                "metrics[0].source.scrape.requests",
                "metrics[0].source.scrape.url",
                "metrics[1].source.scrape.url",
                "metrics[1].source.scrape.errors",
                "metrics[1].source.scrape.requests",
                "metrics[1].source.scrape.timeout",
            ],
            "{e}"
        );
        assert!(e.problems.iter().all(|p| p.file == "m.yaml"));
        assert!(got[0].1.contains("needs the histogram"), "{e}");
        assert_eq!(
            got[1].1,
            "feeds error-ratio metrics, not a distribution one"
        );
        assert!(got[2].1.contains("uses `{{ port }}`"), "{e}");
        assert!(got[4].1.contains("`*` is not supported"), "{e}");
        // A URL may use only names the request must give.
        let e = Model::from_yaml(
            &text.replace("scope: [pod]", "scope: [pod, port]"),
            "m.yaml",
        )
        .unwrap_err();
        assert!(!e.to_string().contains("does not list"), "{e}");
        let ok = "name: m\nscope: [pod]\nmetrics:\n  - name: latency\n    source: {scrape: {url: 'http://{{ pod }}:{{ port }}/metrics', histogram: h}}\n";
        let e = Model::from_yaml(ok, "m.yaml").unwrap_err();
        assert_eq!(e.problems.len(), 1, "{e}");
        assert_eq!(e.problems[0].field, "metrics[0].source.scrape.url");
        assert!(
            e.problems[0]
                .reason
                .contains("uses `{{ port }}`, which the model's scope (pod) does not list"),
            "{e}"
        );
    }
}
