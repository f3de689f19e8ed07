//! The daemon: the store, the OTLP receiver and its windows, the Prometheus source, the
//! runner, the notification deliverer and the HTTP API, started together and stopped
//! together.
//!
//! `augury serve` and `augury demo` both run a [`Daemon`]; so do the end-to-end tests of
//! the binary, through those commands. Shutdown order: stop accepting (API and OTLP),
//! let the runner finish the intervals it is writing, let the notification deliverer send
//! what is due (bounded by its flush timeout; the rest waits in the outbox for the next
//! start), then close the database, so nothing committed is lost and nothing
//! half-written is left. Every part, the deliverer included, is supervised: one that ends
//! on its own (an error, a panic, a bug that returns) shuts the daemon down with that
//! error, which `augury serve` turns into exit 4.

pub mod deliver;
pub mod replicas;
pub mod runner;
pub mod scrape;
pub mod sources;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use crate::analysis::Status;
use crate::api::{AppState, Limits, Tokens, router};
use crate::clock::Clock;
use crate::ingest::otlp::{OtlpConfig, OtlpError, OtlpReceiver};
use crate::ingest::prometheus::{Client, PackCatalog, PrometheusConfig, QuerySource};
use crate::model::Catalog;
use crate::net::{ConnectionStats, Listener, serve_http};
use crate::notify::Notifiers;
use crate::store::{Change, ChangeListener, Store, StoreError};
use crate::telemetry::{Metrics, SpanResult};
use crate::windows::{Windows, WindowsConfig};

pub use replicas::{Membership, ReplicaSettings};
pub use runner::{Runner, RunnerHandle};
pub use sources::Sources;

/// Everything the daemon needs to start (flags, environment and config file merged).
#[derive(Clone, Debug)]
pub struct Settings {
    /// HTTP API listener.
    pub listen: SocketAddr,
    pub otlp: OtlpConfig,
    /// Kayenta's REST API listener (`api::kayenta`); `None`: not served.
    pub kayenta_listen: Option<SocketAddr>,
    /// `sqlite://PATH` or `postgres://…`.
    pub database: String,
    /// Extra models (override built-ins of the same name).
    pub models: Option<PathBuf>,
    /// Extra query packs (override built-ins of the same name).
    pub queries: Option<PathBuf>,
    pub prometheus: Option<PrometheusConfig>,
    /// Bearer tokens the API accepts; none means no auth.
    pub auth: Tokens,
    /// Analyses judged at once.
    pub runner_concurrency: usize,
    /// Slots of the judging pool (intervals and one-shot judgments): judgments running
    /// at once. Default one per core.
    pub judge_workers: usize,
    pub limits: Limits,
    pub windows: WindowsConfig,
    /// Named notifiers, the default choice, link bases and delivery settings. An empty
    /// `links.public_url` means the API's own address.
    pub notifiers: Notifiers,
    /// How replicas sharing a PostgreSQL database work together (unused on SQLite).
    pub replicas: ReplicaSettings,
}

impl Settings {
    /// The documented defaults (`127.0.0.1:8080`, `:4317`, `:4318`, `sqlite://augury.db`).
    pub fn new() -> Settings {
        Settings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            otlp: OtlpConfig::default(),
            kayenta_listen: None,
            database: "sqlite://augury.db".into(),
            models: None,
            queries: None,
            prometheus: None,
            auth: Tokens::default(),
            runner_concurrency: 64,
            judge_workers: crate::pool::default_size(),
            limits: Limits::default(),
            // Two watches (baseline, canary) per span filter per analysis: room for
            // 4,096 OTLP analyses at once. An idle watch holds a few empty histograms;
            // a busy one about 8 KiB per histogram shard.
            // Idle expiry well past the longest interval (1 h), so a watch is never
            // expired between two looks of a live analysis.
            windows: WindowsConfig {
                max_watches: 8192,
                idle_timeout: Duration::from_secs(2 * 3600),
                ..WindowsConfig::default()
            },
            notifiers: Notifiers::default(),
            replicas: ReplicaSettings::new(),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings::new()
    }
}

/// Why the daemon could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("database {url}: {reason}")]
    Database { url: String, reason: String },
    #[error("models {path}: {reason}")]
    Models { path: String, reason: String },
    #[error("query packs {path}: {reason}")]
    Queries { path: String, reason: String },
    #[error("prometheus: {0}")]
    Prometheus(String),
    #[error("cannot listen on {addr} (HTTP API): {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr} (Kayenta API): {source}")]
    KayentaListen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("OTLP receiver: {0}")]
    Otlp(String),
    #[error("notification HTTP client: {0}")]
    Notifications(#[source] reqwest::Error),
    #[error(transparent)]
    Task(#[from] TaskError),
}

impl DaemonError {
    /// Whether the settings are at fault (a models directory, query packs or a
    /// Prometheus section that cannot work), not the machine: `augury serve` exits 2.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            DaemonError::Models { .. } | DaemonError::Queries { .. } | DaemonError::Prometheus(_)
        )
    }
}

/// How a part of the running daemon ended: on its own, every ending is a failure.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("runner: {0}")]
    Runner(#[source] StoreError),
    #[error("OTLP receiver: {0}")]
    Otlp(#[source] OtlpError),
    #[error("HTTP API: {0}")]
    Api(#[source] std::io::Error),
    /// A part returned without being told to stop.
    #[error("{0} stopped unexpectedly")]
    Stopped(&'static str),
    #[error("a part of the daemon panicked: {0}")]
    Panicked(#[source] JoinError),
    #[error("notification deliverer stopped unexpectedly")]
    DelivererStopped,
    #[error("notification deliverer panicked: {0}")]
    DelivererPanicked(#[source] JoinError),
}

/// A running daemon.
pub struct Daemon {
    api_addr: SocketAddr,
    kayenta_addr: Option<SocketAddr>,
    otlp_grpc_addr: SocketAddr,
    otlp_http_addr: SocketAddr,
    store: Store,
    metrics: Arc<Metrics>,
    stop: watch::Sender<bool>,
    tasks: Tasks,
    /// The notification deliverer, supervised like `tasks` (its ending on its own stops
    /// the daemon) but kept apart from them: it is stopped after the rest, so that it
    /// sends what the last intervals decided. `None` once it has ended.
    deliverer: Option<Deliverer>,
    /// Among replicas: this replica's id, to give its leases and claims back when it
    /// stops.
    replica: Option<String>,
}

/// Each part of the daemon, ending with its name and how it ended.
type Tasks = JoinSet<(&'static str, Result<(), TaskError>)>;

/// The running deliverer: its stop signal and its task.
type Deliverer = (watch::Sender<bool>, tokio::task::JoinHandle<()>);

impl Daemon {
    /// Opens the store, binds every listener, resumes running analyses, and serves.
    pub async fn start(settings: Settings) -> Result<Daemon, DaemonError> {
        let mut catalog = Catalog::builtin();
        if let Some(dir) = &settings.models {
            catalog.load_dir(dir).map_err(|e| DaemonError::Models {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        let (prometheus, api_packs) = prometheus_source(&settings, &catalog)?.unzip();
        let metrics = Arc::new(Metrics::new());
        let store = open_store(&settings.database, &metrics).await?;

        let windows = Arc::new(Windows::new(settings.windows.clone()));
        let receiver = OtlpReceiver::bind(settings.otlp.clone(), Arc::clone(&windows))
            .await
            .map_err(|e| DaemonError::Otlp(e.to_string()))?;
        let listen = |source| DaemonError::Listen {
            addr: settings.listen,
            source,
        };
        settings
            .limits
            .listener
            .validate("API listener: ")
            .map_err(|reason| {
                listen(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    reason,
                ))
            })?;
        let listener = TcpListener::bind(settings.listen).await.map_err(listen)?;
        let listener = Listener::new(listener, settings.limits.listener);
        let api_addr = listener.local_addr().map_err(listen)?;
        let kayenta = match settings.kayenta_listen {
            None => None,
            Some(addr) => {
                let failed = |source| DaemonError::KayentaListen { addr, source };
                let l = TcpListener::bind(addr).await.map_err(failed)?;
                let l = Listener::new(l, settings.limits.listener);
                let bound = l.local_addr().map_err(failed)?;
                Some((l, bound))
            }
        };
        let kayenta_addr = kayenta.as_ref().map(|(_, a)| *a);
        let (otlp_grpc_addr, otlp_http_addr) = (receiver.grpc_addr(), receiver.http_addr());

        let sources = Arc::new(
            Sources::new(Arc::clone(&windows), prometheus).with_metrics(Arc::clone(&metrics)),
        );
        let mut notifiers = settings.notifiers.clone();
        if notifiers.links.public_url.is_empty() {
            notifiers.links.public_url = format!("http://{api_addr}");
        }
        let notifiers = Arc::new(notifiers);
        // Among replicas sharing the database: who this one is. Alone (SQLite): no one.
        let membership = store.is_shared().then(|| {
            Arc::new(Membership::new(
                settings.replicas.clone(),
                crate::clock::now_ms(),
            ))
        });
        let deliverer =
            deliver::Deliverer::new(store.clone(), Arc::clone(&notifiers), Arc::clone(&metrics))
                .map_err(DaemonError::Notifications)?;
        let deliverer = match &membership {
            Some(m) => deliverer.as_replica(m.id(), m.settings.tick()),
            None => {
                metrics.set_replicas(1, 0);
                deliverer
            }
        };
        let (deliverer_stop, deliverer_stopped) = watch::channel(false);
        let deliverer = Some((
            deliverer_stop,
            tokio::spawn(deliverer.run(deliverer_stopped)),
        ));
        let (runner_handle, commands) = RunnerHandle::new();
        // One judging pool for the runner and the API's one-shot judge.
        let judging = Arc::new(crate::pool::JudgePool::new(
            settings.judge_workers.max(1),
            metrics.judge_pool_gauges(),
        ));
        let runner = Runner {
            store: store.clone(),
            source: Arc::clone(&sources),
            observer: Arc::clone(&metrics),
            concurrency: settings.runner_concurrency.max(1),
            clock: Clock::system(),
            replicas: membership.clone(),
            metrics: Some(Arc::clone(&metrics)),
            judging: Some(Arc::clone(&judging)),
        };
        subscribe(&store, &runner_handle, &metrics);
        let state = AppState::with_options(
            store.clone(),
            Arc::new(catalog),
            Arc::clone(&metrics),
            Some(settings.auth.clone()),
            settings.limits,
        )
        .with_notifiers(Arc::clone(&notifiers))
        .with_judge_pool(judging)
        .with_windows(Arc::clone(&windows));
        let state = match api_packs {
            Some(packs) => state.with_prometheus(packs),
            None => state,
        };
        let state = match &membership {
            Some(_) => state.among_replicas(),
            None => state,
        };
        let replica = membership.as_ref().map(|m| m.id().to_string());
        let coordinator = membership.map(|m| (store.clone(), m, runner_handle.clone()));

        let mut connections = vec![("api", listener.stats())];
        let kayenta = kayenta.map(|(l, _)| {
            connections.push(("kayenta", l.stats()));
            (l, crate::api::kayenta::router(state.clone()))
        });
        connections.extend(receiver.connection_stats());
        let (stop, stopped) = watch::channel(false);
        let tasks = spawn_parts(
            Parts {
                runner: (runner, commands),
                receiver,
                api: (listener, router(state)),
                kayenta,
                metrics: Arc::clone(&metrics),
                windows,
                connections,
                coordinator,
            },
            stopped,
        );
        tracing::info!(
            api = %api_addr,
            otlp_grpc = %otlp_grpc_addr,
            otlp_http = %otlp_http_addr,
            kayenta = %kayenta_addr.map_or("off".to_string(), |a| a.to_string()),
            database = %crate::store::redacted(&settings.database),
            prometheus = settings
                .prometheus
                .as_ref()
                .map_or("none".to_string(), |p| crate::redact::url(&p.url)),
            notifiers = notifiers.notifiers.len(),
            "augury serving"
        );
        if let Some(addr) = kayenta_addr
            && !addr.ip().is_loopback()
        {
            tracing::warn!(
                kayenta = %addr,
                "the Kayenta API asks no token (its clients send none): let only the \
                 controllers reach it (a NetworkPolicy, a mesh policy; docs/kayenta.md)"
            );
        }
        Ok(Daemon {
            api_addr,
            kayenta_addr,
            otlp_grpc_addr,
            otlp_http_addr,
            store,
            metrics,
            stop,
            tasks,
            deliverer,
            replica,
        })
    }

    /// Where the HTTP API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// Where Kayenta's REST API listens, when it is served.
    pub fn kayenta_addr(&self) -> Option<SocketAddr> {
        self.kayenta_addr
    }

    pub fn otlp_grpc_addr(&self) -> SocketAddr {
        self.otlp_grpc_addr
    }

    pub fn otlp_http_addr(&self) -> SocketAddr {
        self.otlp_http_addr
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Serves until `signal` completes (or a part of the daemon fails), then shuts down.
    pub async fn run_until(
        mut self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), DaemonError> {
        // A part that ends on its own before shutdown is a failure: stop everything. The
        // parts come first so that one that has ended is seen even if the signal is due.
        let early = tokio::select! {
            biased;
            Some(ended) = self.tasks.join_next() => Some(match ended {
                Ok((name, Ok(()))) => TaskError::Stopped(name),
                Ok((_, Err(e))) => e,
                Err(e) => TaskError::Panicked(e),
            }),
            e = deliverer_ended(&mut self.deliverer) => Some(e),
            _ = signal => None,
        };
        if let Some(e) = &early {
            tracing::error!(error = %e, "shutting down");
        }
        let stopped = self.shutdown().await;
        match early {
            Some(e) => Err(e.into()),
            None => stopped,
        }
    }

    /// Stops accepting, finishes the intervals being written, closes the database.
    pub async fn shutdown(mut self) -> Result<(), DaemonError> {
        tracing::info!("shutting down: finishing intervals in progress");
        let _ = self.stop.send(true);
        let mut first_error = None;
        while let Some(ended) = self.tasks.join_next().await {
            let outcome = match ended {
                Ok((_, r)) => r,
                Err(e) => Err(TaskError::Panicked(e)),
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e, "stopped with an error");
                first_error.get_or_insert(e);
            }
        }
        // Intervals are written: send what they decided (bounded by the flush timeout).
        if let Some((stop, task)) = self.deliverer.take() {
            let _ = stop.send(true);
            if let Err(e) = task.await {
                let e = TaskError::DelivererPanicked(e);
                tracing::error!(error = %e, "stopped with an error");
                first_error.get_or_insert(e);
            }
        }
        // Last, once nothing judges or sends any more: the others take over at once.
        if let Some(replica) = &self.replica
            && let Err(e) = self.store.leave(replica).await
        {
            tracing::warn!(error = %e, "could not give back leases and claims; they expire");
        }
        self.store.close().await;
        tracing::info!("stopped");
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// The Prometheus source, when the settings name a Prometheus: the client and the query
/// packs (built in, and those of `settings.queries`), which every model of `catalog` is
/// checked against; and the packs again, for the API to check inline models with.
fn prometheus_source(
    settings: &Settings,
    catalog: &Catalog,
) -> Result<Option<(QuerySource, Arc<PackCatalog>)>, DaemonError> {
    let Some(config) = &settings.prometheus else {
        return Ok(None);
    };
    let mut packs = PackCatalog::builtin();
    if let Some(dir) = &settings.queries {
        packs.load_dir(dir).map_err(|e| DaemonError::Queries {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    check_models(catalog, &packs)?;
    let client = Client::new(config).map_err(|e| DaemonError::Prometheus(e.to_string()))?;
    let packs = Arc::new(packs);
    Ok(Some((QuerySource::new(client, Arc::clone(&packs)), packs)))
}

/// Opens the store at `url` and seeds the `augury_analyses{status}` gauge from it.
async fn open_store(url: &str, metrics: &Metrics) -> Result<Store, DaemonError> {
    let store = Store::open(url).await.map_err(|e| DaemonError::Database {
        url: crate::store::redacted(url),
        reason: e.to_string(),
    })?;
    count_analyses(&store, metrics).await;
    Ok(store)
}

/// Sets the `augury_analyses{status}` gauge from the store: at start, and among replicas
/// every few seconds (the others change analyses too).
async fn count_analyses(store: &Store, metrics: &Metrics) {
    // Counted, not read: start-up does not parse every stored analysis, and an
    // unreadable one does not zero its status's gauge.
    let counts = store.count_by_status().await.unwrap_or_default();
    for status in [
        Status::Running,
        Status::Pass,
        Status::Fail,
        Status::Inconclusive,
        Status::Cancelled,
    ] {
        let n = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        metrics.set_analyses(status, n as i64);
    }
}

/// The parts of the daemon that run as supervised tasks, built and ready.
struct Parts {
    runner: (
        Runner<Sources, Metrics>,
        tokio::sync::mpsc::UnboundedReceiver<runner::Command>,
    ),
    receiver: OtlpReceiver,
    api: (Listener, axum::Router),
    /// Kayenta's REST API, when served.
    kayenta: Option<(Listener, axum::Router)>,
    /// With `windows`, for the span-counter copier; with `coordinator`, for its own.
    metrics: Arc<Metrics>,
    /// Among replicas: the store, this replica's membership and the runner to tell of
    /// analyses started or ended elsewhere.
    coordinator: Option<(Store, Arc<Membership>, RunnerHandle)>,
    windows: Arc<Windows>,
    /// Each listener's connection counts, by listener name, for the metrics copier.
    connections: Vec<(&'static str, ConnectionStats)>,
}

/// Spawns each part, to run until `stopped` turns true.
fn spawn_parts(parts: Parts, stopped: watch::Receiver<bool>) -> Tasks {
    let until_stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let mut tasks = JoinSet::new();
    let (runner, commands) = parts.runner;
    let runner_stop = stopped.clone();
    tasks.spawn(async move {
        let r = runner.run(commands, runner_stop).await;
        ("runner", r.map_err(TaskError::Runner))
    });
    let receiver = parts.receiver;
    let otlp_stop = until_stopped(stopped.clone());
    tasks.spawn(async move {
        let r = receiver.run(otlp_stop).await;
        ("OTLP receiver", r.map_err(TaskError::Otlp))
    });
    let (listener, app) = parts.api;
    let api_stop = until_stopped(stopped.clone());
    tasks.spawn(async move {
        let r = serve_http(listener, app, api_stop).await;
        ("HTTP API", r.map_err(TaskError::Api))
    });
    if let Some((listener, app)) = parts.kayenta {
        let stop = until_stopped(stopped.clone());
        tasks.spawn(async move {
            let r = serve_http(listener, app, stop).await;
            ("Kayenta API", r.map_err(TaskError::Api))
        });
    }
    if let Some((store, membership, runner)) = parts.coordinator {
        let (metrics, stop) = (Arc::clone(&parts.metrics), stopped.clone());
        tasks.spawn(async move {
            let r = replicas::coordinate(store, membership, runner, metrics, Clock::system(), stop)
                .await;
            ("replica coordinator", r.map_err(TaskError::Runner))
        });
    }
    let (m, w, span_stop) = (parts.metrics, parts.windows, until_stopped(stopped));
    let connections = parts.connections;
    tasks.spawn(async move {
        copy_span_counters(&m, &w, &connections, span_stop).await;
        ("span counters", Ok(()))
    });
    tasks
}

/// Completes when the deliverer ends, saying how; never once it has ended (`None`). It
/// only ends on its own by a bug: it runs until told to stop.
async fn deliverer_ended(deliverer: &mut Option<Deliverer>) -> TaskError {
    let Some((_, task)) = deliverer else {
        return std::future::pending().await;
    };
    let ended = task.await;
    *deliverer = None;
    match ended {
        Ok(()) => TaskError::DelivererStopped,
        Err(e) => TaskError::DelivererPanicked(e),
    }
}

/// Copies the windows' span counters and the listeners' connection counts into the
/// daemon's metrics once a second.
///
/// The windows and listeners count with plain atomics on their hot paths (nanoseconds
/// per request or connection); the metrics registry is updated from those totals here,
/// off those paths.
async fn copy_span_counters(
    metrics: &Metrics,
    windows: &Windows,
    connections: &[(&'static str, ConnectionStats)],
    stop: impl std::future::Future<Output = ()>,
) {
    let mut seen = windows.stats();
    let mut refused: Vec<u64> = vec![0; connections.len()];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let now = windows.stats();
        metrics.otlp_spans(
            SpanResult::Accepted,
            now.accepted_spans - seen.accepted_spans,
        );
        metrics.otlp_spans(
            SpanResult::Rejected,
            now.rejected_spans - seen.rejected_spans,
        );
        metrics.otlp_spans(SpanResult::Dropped, now.dropped_spans - seen.dropped_spans);
        metrics.otlp_spans(
            SpanResult::Filtered,
            now.filtered_spans - seen.filtered_spans,
        );
        metrics.set_otlp_watches(now.live_watches);
        seen = now;
        for ((listener, stats), seen) in connections.iter().zip(refused.iter_mut()) {
            let total = stats.refused();
            metrics.connections(listener, stats.open(), total - *seen);
            *seen = total;
        }
    }
}

/// Checks every model of `catalog` whose metrics read Prometheus against `packs` (the
/// pack and query exist, feed the metric's kind, and find their scope variables), so a
/// model that could never get data stops the start instead of failing every interval.
fn check_models(catalog: &Catalog, packs: &PackCatalog) -> Result<(), DaemonError> {
    let problems: Vec<String> = catalog
        .models()
        .flat_map(|model| packs.check_model(model, &format!("model `{}`", model.name)))
        .map(|p| p.to_string())
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    Err(DaemonError::Models {
        path: "models".to_string(),
        reason: problems.join("; "),
    })
}

/// Subscribes the parts that follow the store's changes and are not built around it: the
/// runner (schedules what is created, drops what is cancelled) and the status gauge. (The
/// deliverer and the API's verdict cache subscribe themselves when built.) The daemon and
/// the in-process test servers wire them through this one function.
pub fn subscribe(store: &Store, runner: &RunnerHandle, metrics: &Arc<Metrics>) {
    store.on_change(runner.listener());
    store.on_change(count_statuses(Arc::clone(metrics)));
}

/// The `augury_analyses{status}` gauge and the verdict counter as a listener of the
/// store: a created analysis counts as running, then moves to its verdict or to
/// cancelled, whoever made the change.
fn count_statuses(metrics: Arc<Metrics>) -> ChangeListener {
    Arc::new(move |c: &Change<'_>| {
        if let Some(status) = c.entered() {
            metrics.status_entered(c.id, status);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A daemon on free ports over a fresh database in `dir`.
    async fn daemon(dir: &std::path::Path) -> Daemon {
        let mut settings = Settings::new();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        settings.listen = any;
        settings.otlp.grpc_listen = any;
        settings.otlp.http_listen = any;
        settings.database = format!("sqlite://{}", dir.join("a.db").display());
        Daemon::start(settings).await.unwrap()
    }

    #[tokio::test]
    async fn a_deliverer_that_dies_stops_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = daemon(dir.path()).await;
        // Put a deliverer with a bug in place of the real one.
        let (stop, real) = d.deliverer.take().unwrap();
        let _ = stop.send(true);
        real.await.unwrap();
        let dying = tokio::spawn(async { panic!("a bug in the deliverer") });
        let ended = dying.abort_handle();
        d.deliverer = Some((watch::channel(false).0, dying));
        // The signal comes once the deliverer has died: the daemon must have noticed by
        // then (its parts are looked at before the signal).
        let signal = async move {
            while !ended.is_finished() {
                tokio::task::yield_now().await;
            }
        };
        match d.run_until(signal).await {
            Err(DaemonError::Task(e @ TaskError::DelivererPanicked(_))) => {
                assert!(
                    e.to_string().contains("notification deliverer panicked"),
                    "{e}"
                )
            }
            other => panic!("the daemon went on without its deliverer: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_deliverer_that_returns_stops_the_daemon() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = daemon(dir.path()).await;
        let (stop, real) = d.deliverer.take().unwrap();
        let _ = stop.send(true);
        real.await.unwrap();
        let quits = tokio::spawn(async {});
        let ended = quits.abort_handle();
        d.deliverer = Some((watch::channel(false).0, quits));
        let signal = async move {
            while !ended.is_finished() {
                tokio::task::yield_now().await;
            }
        };
        match d.run_until(signal).await {
            Err(DaemonError::Task(e @ TaskError::DelivererStopped)) => {
                assert_eq!(e.to_string(), "notification deliverer stopped unexpectedly")
            }
            other => panic!("the daemon went on without its deliverer: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_model_whose_query_does_not_exist_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        std::fs::create_dir(&models).unwrap();
        std::fs::write(
            models.join("mesh.yaml"),
            "name: mesh\nscope: [namespace, workload]\nmetrics:\n  - name: errors\n    \
             kind: error-ratio\n    source: {prometheus: {pack: istio, query: no-such-query}}\n",
        )
        .unwrap();
        let mut settings = Settings::new();
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        settings.listen = any;
        settings.otlp.grpc_listen = any;
        settings.otlp.http_listen = any;
        settings.database = format!("sqlite://{}", dir.path().join("a.db").display());
        settings.models = Some(models);
        // Never contacted: the start stops before anything is queried.
        settings.prometheus = Some(PrometheusConfig::new("http://127.0.0.1:9"));
        match Daemon::start(settings).await {
            Err(DaemonError::Models { reason, .. }) => assert!(
                reason.contains("model `mesh`")
                    && reason.contains("metrics[0].source.prometheus")
                    && reason.contains("no query `no-such-query`"),
                "{reason}"
            ),
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(_) => panic!("a model that can never get data was accepted"),
        }
    }

    #[tokio::test]
    async fn a_signal_shuts_the_daemon_down_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let d = daemon(dir.path()).await;
        assert!(d.run_until(async {}).await.is_ok());
    }
}
