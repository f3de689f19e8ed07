//! Windows: what each watched scope produced in the current interval, in bounded memory.
//!
//! An analysis registers interest with [`Windows::watch`] (a scope plus a span filter);
//! ingest records the spans that match; the analysis runner calls [`Windows::take`] once
//! per interval, which swaps the interval's data out and starts a fresh one.
//!
//! Invariants:
//! - Memory is bounded by configuration, never by traffic: at most
//!   [`WindowsConfig::max_watches`] windows exist, each a fixed set of shards holding one
//!   [`LogHistogram`] and two counters. Spans for scopes nobody watches touch no window;
//!   they only bump a counter.
//! - A watch nobody takes from for [`WindowsConfig::idle_timeout`] is presumed abandoned
//!   (its analysis ended without `unwatch`) and is expired by [`Windows::expire_idle`].
//! - Every recorded span lands in exactly one interval: `take` swaps each shard under its
//!   lock, and ingest records a request's spans for one watch under one lock.
//!
//! Concurrency: the watch registry sits behind a mutex that only watch / unwatch / take /
//! expiry touch. Receivers read an immutable [`Index`] snapshot (one `Arc` clone per
//! request) and record into per-window shards picked by thread, so two receiver threads
//! recording into the same canary window do not contend on one lock.

mod index;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::model::{Model, OtlpSource, Source, SpanKind as ModelSpanKind};
use crate::stats::LogHistogram;

pub(crate) use index::{Index, ScopeValue};

/// One version of one workload: attribute name -> value (e.g. `service.name`, `service.version`).
pub type Scope = BTreeMap<String, String>;

/// OTLP span kinds, as the receiver filters on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// The value OTLP puts on the wire (`opentelemetry.proto.trace.v1.Span.SpanKind`).
    pub fn otlp_value(self) -> i32 {
        match self {
            SpanKind::Unspecified => 0,
            SpanKind::Internal => 1,
            SpanKind::Server => 2,
            SpanKind::Client => 3,
            SpanKind::Producer => 4,
            SpanKind::Consumer => 5,
        }
    }
}

/// Which spans of a scope count as requests for a watch.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpanFilter {
    /// Span kind to keep; `None` keeps every kind. Default: server spans.
    pub kind: Option<SpanKind>,
    /// Keep only spans with exactly this name.
    pub name: Option<String>,
    /// Keep only spans whose `http.route` attribute equals this.
    pub route: Option<String>,
}

impl Default for SpanFilter {
    fn default() -> Self {
        SpanFilter {
            kind: Some(SpanKind::Server),
            name: None,
            route: None,
        }
    }
}

/// The span filter of an OTLP source (a metric without a source reads server spans);
/// `None` for a span kind that is none of OTLP's (only a stored analysis of an older
/// version can hold one: models refuse it at load).
pub fn span_filter(source: Option<&OtlpSource>) -> Option<SpanFilter> {
    let Some(source) = source else {
        return Some(SpanFilter::default());
    };
    let kind = match &source.span_kind {
        ModelSpanKind::Any => None,
        ModelSpanKind::Unspecified => Some(SpanKind::Unspecified),
        ModelSpanKind::Internal => Some(SpanKind::Internal),
        ModelSpanKind::Server => Some(SpanKind::Server),
        ModelSpanKind::Client => Some(SpanKind::Client),
        ModelSpanKind::Producer => Some(SpanKind::Producer),
        ModelSpanKind::Consumer => Some(SpanKind::Consumer),
        ModelSpanKind::Unknown(_) => return None,
    };
    Some(SpanFilter {
        kind,
        name: source.span_name.clone(),
        route: source.http_route.clone(),
    })
}

/// How many watches an analysis of `model` holds: two (baseline, canary) per distinct
/// span filter of its OTLP metrics (metrics without a source read server spans).
pub fn watches_needed(model: &Model) -> usize {
    let filters: std::collections::HashSet<SpanFilter> = model
        .metrics
        .iter()
        .filter_map(|m| match &m.source {
            None => span_filter(None),
            Some(Source::Otlp(o)) => span_filter(Some(o)),
            Some(Source::Prometheus(_) | Source::Scrape(_)) => None,
        })
        .collect();
    2 * filters.len()
}

/// Handle of one registered watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchId(u64);

impl WatchId {
    /// The number behind the handle (for logs and metrics labels).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// What one watch recorded during one interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowData {
    /// Latency of every request, in milliseconds.
    pub histogram: LogHistogram,
    /// Requests (spans) recorded.
    pub requests: u64,
    /// Of those, requests whose outcome was an error.
    pub errors: u64,
    /// Arrival time of the first recorded request of the interval.
    pub first_seen: Option<SystemTime>,
    /// Arrival time of the last recorded request of the interval.
    pub last_seen: Option<SystemTime>,
}

impl WindowData {
    /// Adds `other` into `self` (histograms merge exactly).
    pub fn merge(&mut self, other: &WindowData) {
        if other.requests == 0 {
            return;
        }
        self.histogram.merge(&other.histogram);
        self.requests += other.requests;
        self.errors += other.errors;
        self.first_seen = min_time(self.first_seen, other.first_seen);
        self.last_seen = max_time(self.last_seen, other.last_seen);
    }
}

fn min_time(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn max_time(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// Default of [`WindowsConfig::max_watches_per_analysis`]: 32 distinct span filters (a
/// model judging 32 operations or routes apart). The built-in models need 2.
pub const DEFAULT_MAX_WATCHES_PER_ANALYSIS: usize = 64;

/// Bounds of the windows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowsConfig {
    /// Most watches (scope + filter windows) alive at once; `watch` refuses past it.
    pub max_watches: usize,
    /// A watch nobody took from for this long is expired.
    pub idle_timeout: Duration,
    /// Lock shards per window; receiver threads spread over them. 0 means one per core,
    /// at most 8.
    pub shards: usize,
    /// Most watches one analysis may hold (two per distinct span filter of its model);
    /// a create asking for more is refused.
    pub max_watches_per_analysis: usize,
}

impl Default for WindowsConfig {
    fn default() -> Self {
        WindowsConfig {
            max_watches: 1024,
            idle_timeout: Duration::from_secs(600),
            shards: 0,
            max_watches_per_analysis: DEFAULT_MAX_WATCHES_PER_ANALYSIS,
        }
    }
}

/// Span counters for the daemon's own metrics. Every span of a decoded request lands in
/// exactly one of accepted / dropped / filtered / rejected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WindowStats {
    /// Spans recorded into at least one window.
    pub accepted_spans: u64,
    /// Valid spans whose scope no watch asked for.
    pub dropped_spans: u64,
    /// Valid spans of a watched scope that no watch's filter kept (e.g. client spans).
    pub filtered_spans: u64,
    /// Spans refused as invalid (bad timestamps); reported to senders as partial success.
    pub rejected_spans: u64,
    /// Watches alive now.
    pub live_watches: usize,
    /// Watches expired as idle since start.
    pub expired_watches: u64,
}

/// Span counts of one request, added to the totals in one go.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SpanCounts {
    pub accepted: u64,
    pub dropped: u64,
    pub filtered: u64,
    pub rejected: u64,
}

/// What `watch`, `unwatch` and `take` refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowsError {
    #[error("too many watches: the limit is {limit} live windows")]
    TooManyWatches { limit: usize },
    #[error("scope is empty: a scope needs at least one attribute name and value")]
    EmptyScope,
    #[error("unknown watch {0} (never registered, unwatched, or expired after being idle)")]
    UnknownWatch(u64),
    #[error(
        "the model needs {needed} OTLP watches (two per distinct span filter), more than \
         the limit of {limit} watches per analysis"
    )]
    TooManyForOne { needed: usize, limit: usize },
    #[error(
        "the OTLP watch budget is spent: the model needs {needed} watches and {free} of \
         the daemon's {limit} are free; retry once running analyses end"
    )]
    BudgetSpent {
        needed: usize,
        free: usize,
        limit: usize,
    },
}

/// Watches analyses hold, by analysis id, and those reserved by creates under way: what
/// a create is checked against, so the windows never accept an analysis they have no
/// room to watch.
#[derive(Debug, Default)]
struct Ledger {
    held: HashMap<String, usize>,
    /// Held plus reserved.
    total: usize,
}

/// Watches set aside for an analysis being created; given back when dropped unless
/// [`Reservation::assign`]ed to the analysis it was created as.
#[derive(Debug)]
#[must_use = "a reservation is given back when dropped"]
pub struct Reservation<'a> {
    windows: &'a Windows,
    watches: usize,
}

impl Reservation<'_> {
    /// The analysis was created as `id`: it holds the watches until [`Windows::release`].
    pub fn assign(mut self, id: &str) {
        let mut ledger = self.windows.ledger();
        if ledger.held.contains_key(id) {
            // The runner watched it first and counted it then.
            ledger.total = ledger.total.saturating_sub(self.watches);
        } else {
            ledger.held.insert(id.to_string(), self.watches);
        }
        self.watches = 0;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.watches > 0 {
            let mut ledger = self.windows.ledger();
            ledger.total = ledger.total.saturating_sub(self.watches);
        }
    }
}

/// The set of windows; shared (in an `Arc`) by the receivers and the analysis runner.
pub struct Windows {
    config: WindowsConfig,
    ledger: Mutex<Ledger>,
    shards: usize,
    registry: Mutex<Registry>,
    index: RwLock<Arc<Index>>,
    /// Set (under the registry lock) when the watches changed since `index` was built.
    /// The index is rebuilt by the next reader, not by every change: an analysis that
    /// registers 64 watches, or a daemon starting 128 of them, would otherwise rebuild it
    /// once per watch, quadratic in the live watches.
    stale: AtomicBool,
    accepted: AtomicU64,
    dropped: AtomicU64,
    filtered: AtomicU64,
    rejected: AtomicU64,
    expired: AtomicU64,
}

impl std::fmt::Debug for Windows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Windows")
            .field("config", &self.config)
            .field("shards", &self.shards)
            .finish_non_exhaustive()
    }
}

struct Registry {
    next_id: u64,
    watches: HashMap<WatchId, Watch>,
}

struct Watch {
    scope: Scope,
    filter: SpanFilter,
    window: Arc<Window>,
    last_taken: Instant,
}

impl Windows {
    pub fn new(config: WindowsConfig) -> Self {
        // Measured on 2 cores, one shard and two record alike (a request takes a window's
        // lock once, for a few microseconds); shards pay off only with many receiver
        // threads, and each costs a histogram per window, hence the cap of 8 by default.
        let shards = if config.shards == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
        } else {
            config.shards.clamp(1, 64)
        };
        Windows {
            config,
            ledger: Mutex::default(),
            shards,
            registry: Mutex::new(Registry {
                next_id: 1,
                watches: HashMap::new(),
            }),
            index: RwLock::new(Arc::new(Index::default())),
            stale: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            filtered: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            expired: AtomicU64::new(0),
        }
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // Entries are whole values: a panic elsewhere cannot leave one half-written.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets aside `watches` for an analysis about to be created: refused past the limit
    /// per analysis, or when the watches held and reserved leave too few of
    /// [`WindowsConfig::max_watches`].
    pub fn reserve(&self, watches: usize) -> Result<Reservation<'_>, WindowsError> {
        let per = self.config.max_watches_per_analysis;
        if watches > per {
            return Err(WindowsError::TooManyForOne {
                needed: watches,
                limit: per,
            });
        }
        let mut ledger = self.ledger();
        let limit = self.config.max_watches;
        let free = limit.saturating_sub(ledger.total);
        if watches > free {
            return Err(WindowsError::BudgetSpent {
                needed: watches,
                free,
                limit,
            });
        }
        ledger.total += watches;
        Ok(Reservation {
            windows: self,
            watches,
        })
    }

    /// Analysis `id` is watched with `watches` (the runner registered it: created here,
    /// resumed after a restart, or created by another replica). Counted once, whatever
    /// the order of this and [`Reservation::assign`].
    pub fn hold(&self, id: &str, watches: usize) {
        let mut ledger = self.ledger();
        if !ledger.held.contains_key(id) {
            ledger.held.insert(id.to_string(), watches);
            ledger.total += watches;
        }
    }

    /// Analysis `id` ended: the watches it held are free for others.
    pub fn release(&self, id: &str) {
        let mut ledger = self.ledger();
        if let Some(n) = ledger.held.remove(id) {
            ledger.total = ledger.total.saturating_sub(n);
        }
    }

    /// Watches held by analyses and reserved by creates under way.
    pub fn committed(&self) -> usize {
        self.ledger().total
    }

    /// Starts recording spans of `scope` that pass `filter`, in a window of its own.
    pub fn watch(&self, scope: Scope, filter: SpanFilter) -> Result<WatchId, WindowsError> {
        if scope.is_empty() {
            return Err(WindowsError::EmptyScope);
        }
        let mut registry = self.registry();
        if registry.watches.len() >= self.config.max_watches {
            return Err(WindowsError::TooManyWatches {
                limit: self.config.max_watches,
            });
        }
        let id = WatchId(registry.next_id);
        registry.next_id += 1;
        registry.watches.insert(
            id,
            Watch {
                scope,
                filter,
                window: Arc::new(Window::new(self.shards)),
                last_taken: Instant::now(),
            },
        );
        self.changed(&registry);
        Ok(id)
    }

    /// Stops a watch and drops its window. Returns whether it existed.
    pub fn unwatch(&self, id: WatchId) -> bool {
        let mut registry = self.registry();
        let existed = registry.watches.remove(&id).is_some();
        if existed {
            self.changed(&registry);
        }
        existed
    }

    /// Swaps out what `id` recorded since the previous `take` (or since `watch`).
    pub fn take(&self, id: WatchId) -> Result<WindowData, WindowsError> {
        self.take_at(id, Instant::now())
    }

    /// `take`, with the time it counts as the watch's last activity handed in.
    pub(crate) fn take_at(&self, id: WatchId, now: Instant) -> Result<WindowData, WindowsError> {
        let mut registry = self.registry();
        let watch = registry
            .watches
            .get_mut(&id)
            .ok_or(WindowsError::UnknownWatch(id.0))?;
        watch.last_taken = now;
        Ok(watch.window.take())
    }

    /// The scope and filter a watch was registered with.
    pub fn describe(&self, id: WatchId) -> Option<(Scope, SpanFilter)> {
        let registry = self.registry();
        registry
            .watches
            .get(&id)
            .map(|w| (w.scope.clone(), w.filter.clone()))
    }

    /// Expires every watch not taken from since `now - idle_timeout`. Returns how many.
    /// `now` is a parameter so callers (and tests) decide what time it is.
    pub fn expire_idle(&self, now: Instant) -> usize {
        let mut registry = self.registry();
        let before = registry.watches.len();
        let timeout = self.config.idle_timeout;
        registry
            .watches
            .retain(|_, w| now.saturating_duration_since(w.last_taken) < timeout);
        let expired = before - registry.watches.len();
        if expired > 0 {
            self.expired.fetch_add(expired as u64, Ordering::Relaxed);
            self.changed(&registry);
        }
        expired
    }

    /// Span counters and watch gauges.
    pub fn stats(&self) -> WindowStats {
        WindowStats {
            accepted_spans: self.accepted.load(Ordering::Relaxed),
            dropped_spans: self.dropped.load(Ordering::Relaxed),
            filtered_spans: self.filtered.load(Ordering::Relaxed),
            rejected_spans: self.rejected.load(Ordering::Relaxed),
            live_watches: self.registry().watches.len(),
            expired_watches: self.expired.load(Ordering::Relaxed),
        }
    }

    /// The configuration these windows run with.
    pub fn config(&self) -> &WindowsConfig {
        &self.config
    }

    /// The lookup index of every watch registered so far; ingest takes one per request.
    /// Rebuilt here when the watches changed since the last one was built.
    pub(crate) fn index(&self) -> Arc<Index> {
        if self.stale.load(Ordering::SeqCst) {
            let registry = self.registry();
            // Another reader may have rebuilt it while this one waited for the lock.
            if self.stale.swap(false, Ordering::SeqCst) {
                self.publish(&registry);
            }
        }
        Arc::clone(&self.index.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Marks the index out of date; called with the registry lock held, after the change.
    fn changed(&self, _registry: &MutexGuard<'_, Registry>) {
        self.stale.store(true, Ordering::SeqCst);
    }

    pub(crate) fn add_counts(&self, counts: SpanCounts) {
        for (counter, n) in [
            (&self.accepted, counts.accepted),
            (&self.dropped, counts.dropped),
            (&self.filtered, counts.filtered),
            (&self.rejected, counts.rejected),
        ] {
            if n > 0 {
                counter.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        // A panic elsewhere while holding the lock leaves the registry consistent (every
        // mutation is a single insert/remove), so keep serving.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, registry: &Registry) {
        let mut watches: Vec<_> = registry.watches.iter().collect();
        watches.sort_by_key(|(id, _)| **id);
        let index = Index::build(
            watches
                .into_iter()
                .map(|(_, w)| (&w.scope, &w.filter, Arc::clone(&w.window))),
        );
        *self.index.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(index);
    }
}

impl Default for Windows {
    fn default() -> Self {
        Windows::new(WindowsConfig::default())
    }
}

/// The data of one watch, split in shards so concurrent recorders rarely share a lock.
pub(crate) struct Window {
    shards: Box<[Mutex<WindowData>]>,
}

impl Window {
    fn new(shards: usize) -> Self {
        Window {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
        }
    }

    /// Records one request's worth of observations for this window under one lock.
    pub(crate) fn record(&self, latencies_ms: &[f64], errors: u64, at: SystemTime) {
        if latencies_ms.is_empty() {
            return;
        }
        let shard = &self.shards[shard_hint() % self.shards.len()];
        let mut data = shard.lock().unwrap_or_else(PoisonError::into_inner);
        for &latency in latencies_ms {
            data.histogram.record(latency);
        }
        data.requests += latencies_ms.len() as u64;
        data.errors += errors;
        data.first_seen = min_time(data.first_seen, Some(at));
        data.last_seen = max_time(data.last_seen, Some(at));
    }

    fn take(&self) -> WindowData {
        let mut out = WindowData::default();
        for shard in self.shards.iter() {
            let data = std::mem::take(&mut *shard.lock().unwrap_or_else(PoisonError::into_inner));
            out.merge(&data);
        }
        out
    }
}

/// A per-thread number, so each receiver thread keeps to its own shard.
fn shard_hint() -> usize {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static HINT: usize = NEXT.fetch_add(1, Ordering::Relaxed) as usize;
    }
    HINT.with(|h| *h)
}

#[cfg(test)]
mod tests;
