//! Bounded soak of a real `augury serve`: N live `http-red` analyses, OTLP spans for all of
//! them round-robin at a fixed or maximal rate for a bounded time, then a reconciliation of
//! what was sent against what the daemon counted and judged. `examples/soak.rs` is its
//! command line (the benchmark in BENCHMARKS.md); `tests/examples.rs` runs a few seconds
//! of it as a test. It lives with the test support so that both reach it, and starts the
//! daemon with the tests' launcher ([`super::daemon`]).
//!
//! ```text
//! cargo build --release --bins --example soak
//! ./target/release/examples/soak --analyses 100 --seconds 600 --rate max --interval 10s
//! ./target/release/examples/soak --api http://127.0.0.1:8080 --otlp 127.0.0.1:4317 --daemon-pid PID ...
//! ```
//!
//! By default it starts `augury serve` itself (the binary next to the example's folder,
//! or `--augury PATH`) on free ports of 127.0.0.1 with a database in a temporary directory,
//! and stops it at the end; with `--api` and `--otlp` it drives a daemon already running
//! (then the span counters must see no other traffic during the run).
//!
//! Each analysis `i` compares `service.name=soak-svc-{i}` at `service.version` 1.0.0
//! (baseline) and 2.0.0 (canary); both versions send the same pre-encoded batches
//! (`synthetic::batch`, same seed), so it is an A/A run and no analysis should end before
//! its lifetime, which is set past the run. Requests rotate over (analysis, version) pairs.
//!
//! What it checks, exiting 1 when any check fails:
//! - every span acknowledged by the receiver (sent for a watched scope) is counted
//!   `accepted` on `/metrics` (`augury_otlp_spans_total`), none `dropped` or `rejected`;
//!   refused requests (429 / UNAVAILABLE / RESOURCE_EXHAUSTED / 413) are counted apart and
//!   their spans are not counted as sent;
//! - every analysis is still `running` at the end;
//! - per analysis and side, the requests its judged intervals recorded
//!   (`GET /api/v1/analyses/{id}?data=true`, metric `error-rate`) sum to exactly what was
//!   sent for it: after the traffic stops, the soak waits until each analysis has judged
//!   the interval holding its last span;
//! - (reported) per interval, what was recorded lies within what was sent in it.
//!   Interval k of an analysis created at C is `[C + (k-1)*I, C + k*I)`; the runner takes
//!   the window at or shortly after `C + k*I`, and a span is recorded some time between
//!   its request's send and acknowledgement. A request whose [send, ack] falls within one
//!   interval, at least `--slack` away from its end, is counted certain for it; one that
//!   may fall either side of a boundary (given the take can lag the boundary by up to
//!   `--slack`) is counted for both neighbours' bounds. Recorded must lie in [certain,
//!   certain + the ambiguous on both its boundaries]. An interval outside its bounds
//!   means the runner took that window more than `--slack` late (or early); it is
//!   reported, and fails the run only with `--strict-intervals`, since a busy runner may
//!   lag (the exact sums above do not depend on it).
//!
//! Traffic goes only to 127.0.0.1 addresses; every loop is bounded in time.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use augury::ingest::otlp::synthetic::{BatchSpec, batch};
use bytes::Bytes;
use clap::Parser;
use prost::Message;
use serde_json::{Value, json};

use super::daemon::{self, Daemon};
use super::otlp_load::{Connection, Error, Outcome, rss_mib};

#[derive(Parser, Clone, Debug)]
#[command(about = "Bounded soak of augury serve: N analyses, OTLP load, reconciliation")]
pub struct Args {
    /// Live analyses (each its own baseline and canary scope).
    #[arg(long, default_value_t = 1)]
    pub analyses: usize,
    /// Seconds of traffic.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
    /// Spans per second over all analyses, or `max` (as fast as the receiver answers).
    #[arg(long, default_value = "max")]
    pub rate: String,
    /// Interval of every analysis.
    #[arg(long, default_value = "10s")]
    pub interval: String,
    /// Lifetime of every analysis; default: the run plus its waits, so none ends early.
    #[arg(long)]
    pub lifetime: Option<String>,
    /// Spans per request; default: up to 512, fewer when many analyses would make the
    /// pre-encoded bodies exceed --body-memory-mib.
    #[arg(long)]
    pub spans_per_request: Option<usize>,
    /// Share of the baseline's spans that fail.
    #[arg(long, default_value_t = 0.005)]
    pub baseline_error_rate: f64,
    /// Share of the canary's spans that fail. The default, 1.4x the baseline's, is a
    /// difference a large run detects (the sequential test rejects equal error rates)
    /// but within `http-red`'s allowed increase (1.5x) and its SLO burn limit (14.4x the
    /// budget of 99.9%), so the analyses keep running; the realized counts per request
    /// are capped below 1.5x the baseline's. Equal rates make an A/A run.
    #[arg(long, default_value_t = 0.007)]
    pub canary_error_rate: f64,
    /// Attributes per span (synthetic::BatchSpec).
    #[arg(long, default_value_t = 10)]
    pub attributes: usize,
    /// Memory for pre-encoded request bodies (one per analysis and version).
    #[arg(long, default_value_t = 256)]
    pub body_memory_mib: usize,
    /// `grpc` or `http` (OTLP/HTTP protobuf).
    #[arg(long, default_value = "grpc")]
    pub transport: String,
    /// Concurrent connections, each with one request in flight.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Tokio worker threads of the generator.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// How late after an interval's end the runner may take its window (see above).
    #[arg(long, default_value = "2s")]
    pub slack: String,
    /// Fail the run when an interval lies outside its bounds (by default that is
    /// reported only: it means the runner took that window more than --slack late).
    #[arg(long)]
    pub strict_intervals: bool,
    /// Seconds between progress lines (rate, span counters, daemon RSS).
    #[arg(long, default_value_t = 5)]
    pub every: u64,
    /// The `augury` binary to start (default: next to this example's folder).
    #[arg(long)]
    pub augury: Option<PathBuf>,
    /// `AUGURY_LOG` for the started daemon.
    #[arg(long, default_value = "info")]
    pub daemon_log_level: String,
    /// Where to write the started daemon's log (JSON lines); default: in the temp dir,
    /// deleted at the end unless a check failed.
    #[arg(long)]
    pub daemon_log: Option<PathBuf>,
    /// API of an already running daemon (http://127.0.0.1:PORT) instead of starting one.
    #[arg(long, requires = "otlp")]
    pub api: Option<String>,
    /// Its OTLP endpoint: 127.0.0.1:PORT for gRPC, http://127.0.0.1:PORT/v1/traces for HTTP.
    #[arg(long, requires = "api")]
    pub otlp: Option<String>,
    /// Its process id, for RSS.
    #[arg(long)]
    pub daemon_pid: Option<u32>,
    /// Bearer token for the API's mutating routes.
    #[arg(long, env = "AUGURY_SOAK_TOKEN")]
    pub token: Option<String>,
    /// Print the per-analysis, per-interval figures too.
    #[arg(long)]
    pub verbose: bool,
}

// ---------------------------------------------------------------------------------------
// The daemon under test.

/// A daemon this program started (stopped at the end) or one it was pointed at.
struct Target {
    api: String,
    /// gRPC: `[http://]127.0.0.1:PORT`; HTTP: `http://127.0.0.1:PORT/v1/traces`.
    otlp_grpc: String,
    otlp_http: String,
    pid: Option<u32>,
    daemon: Option<Daemon>,
    _dir: Option<tempfile::TempDir>,
}

fn local_only(addr: &str) -> Result<(), Error> {
    let rest = addr
        .strip_prefix("http://")
        .unwrap_or(addr)
        .trim_start_matches('/');
    if rest.starts_with("127.0.0.1:") || rest.starts_with("localhost:") {
        Ok(())
    } else {
        Err(format!("`{addr}`: this soak only talks to 127.0.0.1").into())
    }
}

impl Target {
    fn connect(args: &Args) -> Result<Target, Error> {
        let (Some(api), Some(otlp)) = (&args.api, &args.otlp) else {
            return Err("--api and --otlp go together".into());
        };
        local_only(api)?;
        local_only(otlp)?;
        Ok(Target {
            api: api.trim_end_matches('/').to_string(),
            otlp_grpc: otlp.clone(),
            otlp_http: otlp.clone(),
            pid: args.daemon_pid,
            daemon: None,
            _dir: None,
        })
    }

    fn start(args: &Args) -> Result<Target, Error> {
        let bin = args.augury.clone().unwrap_or_else(daemon::bin);
        if !bin.exists() {
            return Err(format!(
                "{}: not found (cargo build --release --bins, or give --augury)",
                bin.display()
            )
            .into());
        }
        let dir = tempfile::tempdir()?;
        let daemon = Daemon::on(&dir.path().join("soak.db"))
            .binary(bin)
            .env("AUGURY_LOG", &args.daemon_log_level)
            .try_start()?;
        // A fresh database warns about nothing: a warning at start-up fails the run too.
        let warned = daemon
            .log_json()
            .into_iter()
            .take_while(|v| v["fields"]["message"] != "augury serving")
            .find(|v| v["level"] == "WARN");
        if let Some(line) = warned {
            return Err(format!("the daemon did not start cleanly: {line}").into());
        }
        Ok(Target {
            api: daemon.api.clone(),
            otlp_grpc: daemon.otlp_grpc.clone(),
            otlp_http: daemon.otlp_http.clone(),
            pid: daemon.pid(),
            daemon: Some(daemon),
            _dir: Some(dir),
        })
    }

    /// SIGTERM the started daemon and wait (30 s at most) for it and its log.
    fn stop(&mut self) -> Option<String> {
        let daemon = self.daemon.as_mut()?;
        Some(match daemon.terminate_within(Duration::from_secs(30)) {
            Ok(status) => format!("{status}"),
            Err(e) => e,
        })
    }

    /// What the started daemon logged, for the report: counts of ERROR and WARN lines
    /// and each distinct such message with its count and first line; the whole log is
    /// written to `--daemon-log`, or kept in the temp dir when a check failed.
    fn log_report(&self, args: &Args, ok: bool) -> String {
        let Some(daemon) = &self.daemon else {
            return String::new();
        };
        let lines = daemon.log_lines();
        let (mut errors, mut warnings) = (0u64, 0u64);
        let mut messages: BTreeMap<String, (u64, &str)> = BTreeMap::new();
        for line in &lines {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let level = v["level"].as_str().unwrap_or("");
            match level {
                "ERROR" => errors += 1,
                "WARN" => warnings += 1,
                _ => continue,
            }
            let message = v["fields"]["message"].as_str().unwrap_or("");
            let key = format!("{level} {message}");
            messages.entry(key).or_insert((0, line)).0 += 1;
        }
        let mut out = format!("daemon log: {errors} ERROR, {warnings} WARN lines\n");
        for (key, (n, first)) in &messages {
            out.push_str(&format!("  {n} x {key}\n    first: {first}\n"));
        }
        let path = match &args.daemon_log {
            Some(path) => path.clone(),
            // Keep the log of a failed run.
            None if !ok => std::env::temp_dir().join(format!("augury-soak-{}.log", now_ms())),
            None => return out,
        };
        let text = lines.iter().fold(String::new(), |t, l| t + l + "\n");
        match std::fs::write(&path, text) {
            Ok(()) => out.push_str(&format!("daemon log at {}\n", path.display())),
            Err(e) => out.push_str(&format!(
                "daemon log not written to {}: {e}\n",
                path.display()
            )),
        }
        out
    }
}

/// The 1-minute load average, to say how busy the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "-".into())
}

// ---------------------------------------------------------------------------------------
// The API.

struct Api {
    base: String,
    client: reqwest::Client,
    token: Option<String>,
}

/// `augury_otlp_spans_total` by result.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SpanCounters {
    accepted: u64,
    dropped: u64,
    filtered: u64,
    rejected: u64,
}

impl SpanCounters {
    fn minus(self, before: SpanCounters) -> SpanCounters {
        SpanCounters {
            accepted: self.accepted.saturating_sub(before.accepted),
            dropped: self.dropped.saturating_sub(before.dropped),
            filtered: self.filtered.saturating_sub(before.filtered),
            rejected: self.rejected.saturating_sub(before.rejected),
        }
    }
}

impl Api {
    fn new(base: &str, token: Option<String>) -> Result<Api, Error> {
        Ok(Api {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            token,
        })
    }

    async fn get_json(&self, path: &str) -> Result<Value, Error> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            return Err(format!("GET {path}: {status}: {text}").into());
        }
        serde_json::from_str(&text).map_err(|e| format!("GET {path}: {e}").into())
    }

    async fn create(&self, body: &Value) -> Result<Value, Error> {
        let mut request = self
            .client
            .post(format!("{}/api/v1/analyses", self.base))
            .json(body);
        if let Some(t) = &self.token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if status.as_u16() != 201 {
            return Err(format!("POST /api/v1/analyses: {status}: {text}").into());
        }
        Ok(serde_json::from_str(&text)?)
    }

    async fn metrics_text(&self) -> Result<String, Error> {
        Ok(self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// Mean time to gather, judge and persist one interval, and how many were timed.
    async fn interval_seconds(&self) -> Result<(f64, u64), Error> {
        let text = self.metrics_text().await?;
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let (sum, count) = (
            value("augury_interval_duration_seconds_sum"),
            value("augury_interval_duration_seconds_count"),
        );
        Ok((if count > 0.0 { sum / count } else { 0.0 }, count as u64))
    }

    async fn spans(&self) -> Result<SpanCounters, Error> {
        let text = self.metrics_text().await?;
        let mut c = SpanCounters::default();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("augury_otlp_spans_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.split_once('}') else {
                continue;
            };
            let value = value.split_whitespace().next().unwrap_or("");
            let n = value
                .parse::<f64>()
                .map_err(|e| format!("/metrics: `{line}`: {e}"))? as u64;
            let slot = match labels {
                l if l.contains("result=\"accepted\"") => &mut c.accepted,
                l if l.contains("result=\"dropped\"") => &mut c.dropped,
                l if l.contains("result=\"filtered\"") => &mut c.filtered,
                l if l.contains("result=\"rejected\"") => &mut c.rejected,
                _ => continue,
            };
            *slot += n;
        }
        Ok(c)
    }
}

fn parse_time_ms(text: &str) -> Result<i64, Error> {
    let t = humantime::parse_rfc3339(text).map_err(|e| format!("`{text}`: {e}"))?;
    Ok(t.duration_since(UNIX_EPOCH)?.as_millis() as i64)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

// ---------------------------------------------------------------------------------------
// Sending.

/// What one analysis version was sent, by interval (index k-1 for interval k).
#[derive(Clone, Debug, Default)]
struct SideSent {
    total: u64,
    /// Spans certainly recorded in interval k.
    certain: Vec<u64>,
    /// Spans recorded in interval k or k+1.
    boundary: Vec<u64>,
    /// Spans whose request straddled more than one boundary (any interval).
    wide: u64,
    last_ack_ms: i64,
}

fn bump(v: &mut Vec<u64>, k: usize, n: u64) {
    if v.len() <= k {
        v.resize(k + 1, 0);
    }
    v[k] += n;
}

impl SideSent {
    fn record(&mut self, n: u64, send_ms: i64, ack_ms: i64, created_ms: i64, iv: i64, slack: i64) {
        self.total += n;
        self.last_ack_ms = self.last_ack_ms.max(ack_ms);
        // Interval index (0-based) a recording at r lands in when the take lags by d:
        // the first k with created + (k+1)*iv + d >= r.
        let k_min = ((send_ms - slack - created_ms).max(0) / iv) as usize;
        let k_max = ((ack_ms - created_ms).max(0) / iv) as usize;
        match k_max.saturating_sub(k_min) {
            0 => bump(&mut self.certain, k_min, n),
            1 => bump(&mut self.boundary, k_min, n),
            _ => self.wide += n,
        }
    }

    fn merge(&mut self, other: &SideSent) {
        self.total += other.total;
        self.wide += other.wide;
        self.last_ack_ms = self.last_ack_ms.max(other.last_ack_ms);
        for (k, n) in other.certain.iter().enumerate() {
            bump(&mut self.certain, k, *n);
        }
        for (k, n) in other.boundary.iter().enumerate() {
            bump(&mut self.boundary, k, *n);
        }
    }

    /// Bounds on what interval k (0-based) may hold.
    fn bounds(&self, k: usize) -> (u64, u64) {
        let at = |v: &Vec<u64>, k: usize| v.get(k).copied().unwrap_or(0);
        let lo = at(&self.certain, k);
        let before = if k > 0 { at(&self.boundary, k - 1) } else { 0 };
        (lo, lo + before + at(&self.boundary, k) + self.wide)
    }
}

#[derive(Default)]
struct Live {
    spans: AtomicU64,
    requests: AtomicU64,
    refused: AtomicU64,
    failed: AtomicU64,
}

/// What one connection saw.
#[derive(Default)]
struct SenderReport {
    /// Per target (analysis * 2 + version).
    sent: Vec<SideSent>,
    refused: BTreeMap<String, (u64, u64)>,
    failed: BTreeMap<String, (u64, u64)>,
    partial_rejected: u64,
}

impl SenderReport {
    fn merge(&mut self, other: SenderReport) {
        if self.sent.len() < other.sent.len() {
            self.sent.resize(other.sent.len(), SideSent::default());
        }
        for (mine, theirs) in self.sent.iter_mut().zip(&other.sent) {
            mine.merge(theirs);
        }
        for (k, (r, s)) in other.refused {
            let e = self.refused.entry(k).or_default();
            e.0 += r;
            e.1 += s;
        }
        for (k, (r, s)) in other.failed {
            let e = self.failed.entry(k).or_default();
            e.0 += r;
            e.1 += s;
        }
        self.partial_rejected += other.partial_rejected;
    }
}

/// Everything the connections share.
struct Plan {
    bodies: Vec<Bytes>,
    spans_per_request: u64,
    created_ms: Vec<i64>,
    interval_ms: i64,
    slack_ms: i64,
    /// None: as fast as possible.
    rate: Option<f64>,
    start: Instant,
    deadline: Instant,
    next_slot: AtomicU64,
    live: Live,
}

impl Plan {
    /// The next slot to send and its target, after waiting for its time; None when the
    /// run is over.
    async fn next(&self) -> Option<usize> {
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        if let Some(rate) = self.rate {
            let at = self.start
                + Duration::from_secs_f64(slot as f64 * self.spans_per_request as f64 / rate);
            if at >= self.deadline {
                return None;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        if Instant::now() >= self.deadline {
            return None;
        }
        Some((slot % self.bodies.len() as u64) as usize)
    }

    fn account(&self, report: &mut SenderReport, target: usize, send_ms: i64, out: Outcome) {
        let n = self.spans_per_request;
        match out {
            Outcome::Ok { rejected } => {
                let accepted = n.saturating_sub(rejected);
                report.partial_rejected += rejected;
                report.sent[target].record(
                    accepted,
                    send_ms,
                    now_ms(),
                    self.created_ms[target / 2],
                    self.interval_ms,
                    self.slack_ms,
                );
                self.live.spans.fetch_add(accepted, Ordering::Relaxed);
                self.live.requests.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Refused(kind) => {
                let e = report.refused.entry(kind).or_default();
                e.0 += 1;
                e.1 += n;
                self.live.refused.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Failed(kind) => {
                let e = report.failed.entry(kind).or_default();
                e.0 += 1;
                e.1 += n;
                self.live.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
/// One connection: sends the plan's requests until the run is over.
async fn sender(mut connection: Connection, plan: Arc<Plan>) -> SenderReport {
    let mut report = SenderReport {
        sent: vec![SideSent::default(); plan.bodies.len()],
        ..SenderReport::default()
    };
    while let Some(target) = plan.next().await {
        let send_ms = now_ms();
        let out = connection.send(plan.bodies[target].clone()).await;
        plan.account(&mut report, target, send_ms, out);
    }
    report
}

// ---------------------------------------------------------------------------------------
// The run.

/// What a run found; `ok()` says whether every check passed.
pub struct Report {
    pub failures: Vec<String>,
    pub markdown: String,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Failed spans in a batch of `spans` at `rate` with `seed`.
fn failures(spans: usize, rate: f64, seed: u64) -> usize {
    let spec = BatchSpec {
        spans,
        attributes: 2,
        error_rate: rate,
        ..BatchSpec::standard("s", "v", seed)
    };
    batch(&spec).resource_spans[0].scope_spans[0]
        .spans
        .iter()
        .filter(|s| s.status.is_some())
        .count()
}

/// A seed whose batches hold the failures closest to the rates asked for, with the
/// canary's count kept under 1.5x the baseline's when the baseline has any (so the canary
/// stays within `http-red`'s allowed increase). Returns it and the two counts.
fn pick_seed(spans: usize, baseline: f64, canary: f64) -> (u64, (usize, usize)) {
    let want_b = (spans as f64 * baseline).round() as usize;
    let mut want_c = (spans as f64 * canary).round() as usize;
    if want_b > 0 && want_c * 2 >= want_b * 3 {
        want_c = (want_b * 3).div_ceil(2) - 1;
    }
    let mut best = (u64::MAX, 0u64, (0, 0));
    for seed in 0..2000u64 {
        let got = (
            failures(spans, baseline, seed),
            failures(spans, canary, seed),
        );
        let off = (got.0.abs_diff(want_b) + got.1.abs_diff(want_c)) as u64;
        if off < best.0 {
            best = (off, seed, got);
        }
        if off == 0 {
            break;
        }
    }
    (best.1, best.2)
}

fn duration_arg(name: &str, text: &str) -> Result<Duration, Error> {
    humantime::parse_duration(text).map_err(|e| format!("--{name} `{text}`: {e}").into())
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Runs the soak on a runtime of its own.
pub fn run_blocking(args: Args) -> Result<Report, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.workers.max(1))
        .enable_all()
        .build()?;
    let mut target = if args.api.is_some() {
        Target::connect(&args)?
    } else {
        Target::start(&args)?
    };
    let result = runtime.block_on(run(&args, &target));
    let stopped = target.stop();
    let mut report = result?;
    if let Some(status) = stopped {
        report
            .markdown
            .push_str(&format!("\ndaemon exit: {status}\n"));
    }
    let log = target.log_report(&args, report.ok());
    report.markdown.push_str(&log);
    Ok(report)
}

async fn run(args: &Args, target: &Target) -> Result<Report, Error> {
    let n = args.analyses.max(1);
    let interval = duration_arg("interval", &args.interval)?;
    let slack = duration_arg("slack", &args.slack)?;
    let rate = match args.rate.as_str() {
        "max" => None,
        r => Some(
            r.parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0)
                .ok_or_else(|| format!("--rate `{r}`: a positive number or `max`"))?,
        ),
    };
    let grpc = match args.transport.as_str() {
        "grpc" => true,
        "http" => false,
        t => return Err(format!("--transport `{t}`: grpc or http").into()),
    };
    let interval_ms = interval.as_millis() as i64;
    let wait_budget = interval * 2 + Duration::from_secs(30);
    let lifetime = match &args.lifetime {
        Some(l) => l.clone(),
        None => {
            // Past the traffic, the final wait and the creation of the analyses.
            let secs = args.seconds + wait_budget.as_secs() + 60 + n as u64 / 10;
            let intervals = secs.div_ceil(interval.as_secs().max(1)) + 1;
            format!("{}s", intervals * interval.as_secs().max(1))
        }
    };
    let api = Api::new(&target.api, args.token.clone())?;

    // Bodies: one per analysis and version. Both versions use the same seed, so the same
    // latencies; the seed is picked so that each request holds exactly the wanted number
    // of failed spans.
    let probe = batch(&BatchSpec {
        spans: 64,
        attributes: args.attributes,
        ..BatchSpec::standard(&format!("soak-svc-{n}"), "1.0.0", 1)
    })
    .encoded_len();
    let per_span = probe / 64 + 1;
    let spans_per_request = args.spans_per_request.unwrap_or_else(|| {
        let budget = args.body_memory_mib << 20;
        (budget / (2 * n * per_span)).clamp(8, 512)
    });
    let (seed, errors) = pick_seed(
        spans_per_request,
        args.baseline_error_rate,
        args.canary_error_rate,
    );
    let mut bodies = Vec::with_capacity(2 * n);
    for i in 0..n {
        for (version, rate) in [
            ("1.0.0", args.baseline_error_rate),
            ("2.0.0", args.canary_error_rate),
        ] {
            let spec = BatchSpec {
                spans: spans_per_request,
                attributes: args.attributes,
                error_rate: rate,
                ..BatchSpec::standard(&format!("soak-svc-{i}"), version, seed)
            };
            bodies.push(Bytes::from(batch(&spec).encode_to_vec()));
        }
    }
    println!(
        "soak: failed spans per request: baseline {} / canary {} of {spans_per_request} (seed {seed})",
        errors.0, errors.1
    );
    let body_bytes: usize = bodies.iter().map(Bytes::len).sum();
    println!(
        "soak: {n} analyses (interval {}, lifetime {lifetime}), {} s at {} spans/s, {} over {} \
         connections, {spans_per_request} spans x {} attributes per request ({} bytes each, {:.1} MiB of bodies)",
        humantime::format_duration(interval),
        args.seconds,
        rate.map_or("max".into(), |r| format!("{r}")),
        if grpc { "gRPC" } else { "HTTP" },
        args.connections,
        args.attributes,
        bodies[0].len(),
        body_bytes as f64 / (1 << 20) as f64,
    );

    // Analyses.
    let run_id = now_ms();
    let mut ids = Vec::with_capacity(n);
    let mut created_ms = Vec::with_capacity(n);
    let creating = Instant::now();
    for i in 0..n {
        let body = json!({
            "key": format!("soak-{run_id}-{i}"),
            "model": "http-red",
            "baseline": {"service.name": format!("soak-svc-{i}"), "service.version": "1.0.0"},
            "canary": {"service.name": format!("soak-svc-{i}"), "service.version": "2.0.0"},
            "interval": args.interval,
            "lifetime": lifetime,
            "notify": [],
        });
        let created = api.create(&body).await?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| format!("creation answer without an id: {created}"))?
            .to_string();
        let detail = api.get_json(&format!("/api/v1/analyses/{id}")).await?;
        let at = detail["created_at"]
            .as_str()
            .ok_or_else(|| format!("analysis {id} without created_at"))?;
        created_ms.push(parse_time_ms(at)?);
        ids.push(id);
    }
    println!(
        "soak: created {n} analyses in {:.1} s",
        creating.elapsed().as_secs_f64()
    );
    // The runner registers the watches when it hears of an analysis; give it a moment.
    tokio::time::sleep(Duration::from_millis(500 + n as u64)).await;

    let before = api.spans().await?;
    let load_before = load_average();
    let start = Instant::now();
    let plan = Arc::new(Plan {
        bodies,
        spans_per_request: spans_per_request as u64,
        created_ms,
        interval_ms,
        slack_ms: slack.as_millis() as i64,
        rate,
        start,
        deadline: start + Duration::from_secs(args.seconds),
        next_slot: AtomicU64::new(0),
        live: Live::default(),
    });
    let mut senders = Vec::new();
    for _ in 0..args.connections.max(1) {
        let connection = if grpc {
            Connection::grpc(&target.otlp_grpc, false).await?
        } else {
            Connection::http(&target.otlp_http, false)
        };
        senders.push(tokio::spawn(sender(connection, Arc::clone(&plan))));
    }

    // Progress: rate, span counters, daemon RSS.
    let mut rows = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(args.every.max(1)));
    tick.tick().await;
    let (mut last_spans, mut last_counters, mut last_t) = (0u64, before, 0.0f64);
    let rss0 = target.pid.and_then(rss_mib);
    println!(
        "| t (s) | spans/s sent | accepted/s | dropped/s | refused req | daemon RSS (MiB) |\n|---|---|---|---|---|---|"
    );
    while Instant::now() < plan.deadline {
        tick.tick().await;
        let t = start.elapsed().as_secs_f64();
        let spans = plan.live.spans.load(Ordering::Relaxed);
        let counters = api.spans().await.unwrap_or(last_counters);
        let d = counters.minus(last_counters);
        let dt = (t - last_t).max(1e-3);
        let rss = target.pid.and_then(rss_mib);
        let row = (
            t,
            (spans - last_spans) as f64 / dt,
            d.accepted as f64 / dt,
            (d.dropped + d.filtered) as f64 / dt,
            plan.live.refused.load(Ordering::Relaxed),
            rss,
        );
        println!(
            "| {:.0} | {:.0} | {:.0} | {:.0} | {} | {} |",
            row.0,
            row.1,
            row.2,
            row.3,
            row.4,
            row.5.map_or("-".into(), |r| format!("{r:.1}"))
        );
        rows.push(row);
        (last_spans, last_counters, last_t) = (spans, counters, t);
    }
    let mut sent = SenderReport {
        sent: vec![SideSent::default(); 2 * n],
        ..SenderReport::default()
    };
    for s in senders {
        sent.merge(s.await?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let load_after = load_average();
    let total_sent: u64 = sent.sent.iter().map(|s| s.total).sum();

    // Wait until each analysis has judged the interval holding its last span.
    let waiting = Instant::now();
    let mut statuses = vec![String::new(); n];
    let mut judged = vec![0u64; n];
    let need: Vec<u64> = (0..n)
        .map(|i| {
            let last = sent.sent[2 * i]
                .last_ack_ms
                .max(sent.sent[2 * i + 1].last_ack_ms);
            ((last - plan.created_ms[i]).max(0) / interval_ms) as u64 + 1
        })
        .collect();
    loop {
        let mut pending = 0;
        for i in 0..n {
            if (statuses[i] != "running" && !statuses[i].is_empty()) || judged[i] >= need[i] {
                continue;
            }
            match api
                .get_json(&format!("/api/v1/analyses/{}/verdict", ids[i]))
                .await
            {
                Ok(v) => {
                    statuses[i] = v["status"].as_str().unwrap_or("?").to_string();
                    judged[i] = v["progress"]["intervals"].as_u64().unwrap_or(0);
                }
                Err(e) => statuses[i] = format!("unreadable ({e})"),
            }
            if statuses[i] == "running" && judged[i] < need[i] {
                pending += 1;
            }
        }
        if pending == 0 || waiting.elapsed() > wait_budget {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // The daemon copies its span counters to /metrics once a second.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = api.spans().await?;
    let counted = after.minus(before);
    let (judge_mean, judged_total) = api.interval_seconds().await.unwrap_or((0.0, 0));

    // Reconcile per analysis and interval.
    let mut failures = Vec::new();
    let mut per_k: BTreeMap<u64, [u64; 4]> = BTreeMap::new(); // sent lo, sent hi, recorded, violations
    let mut sum_mismatch = Vec::new();
    let mut violations = Vec::new();
    let mut misaligned = 0u64;
    let mut not_running = Vec::new();
    let mut unreadable = Vec::new();
    let mut verbose = String::new();
    for (i, id) in ids.iter().enumerate() {
        let detail = match api
            .get_json(&format!("/api/v1/analyses/{id}?data=true"))
            .await
        {
            Ok(d) => d,
            Err(e) => {
                unreadable.push(format!("analysis {i} ({id}): {e}"));
                continue;
            }
        };
        let status = detail["status"].as_str().unwrap_or("?");
        if status != "running" {
            let reasons = detail["judgment"]["reasons"].clone();
            not_running.push(format!("analysis {i} ({id}) is {status}: {reasons}"));
        }
        let intervals = detail["intervals"].as_array().cloned().unwrap_or_default();
        for (side, name) in [(0usize, "baseline"), (1, "canary")] {
            let s = &sent.sent[2 * i + side];
            let mut recorded_sum = 0u64;
            for iv in &intervals {
                let seq = iv["seq"].as_u64().unwrap_or(0);
                let expected_end = plan.created_ms[i] + seq as i64 * interval_ms;
                if side == 0
                    && iv["end"]
                        .as_str()
                        .and_then(|e| parse_time_ms(e).ok())
                        .is_none_or(|e| e != expected_end)
                {
                    misaligned += 1;
                }
                let recorded = iv["data"]["error-rate"][name]["requests"].as_u64();
                let Some(recorded) = recorded else {
                    violations.push(format!(
                        "analysis {i} {name} interval {seq}: no error-rate data"
                    ));
                    continue;
                };
                recorded_sum += recorded;
                let (lo, hi) = s.bounds(seq.saturating_sub(1) as usize);
                let e = per_k.entry(seq).or_default();
                e[0] += lo;
                e[1] += hi;
                e[2] += recorded;
                if recorded < lo || recorded > hi {
                    e[3] += 1;
                    violations.push(format!(
                        "analysis {i} {name} interval {seq}: recorded {recorded}, sent {lo}..{hi}"
                    ));
                }
                if args.verbose {
                    verbose.push_str(&format!(
                        "| {i} | {name} | {seq} | {lo} | {hi} | {recorded} |\n"
                    ));
                }
            }
            if recorded_sum != s.total {
                sum_mismatch.push(format!(
                    "analysis {i} {name}: sent {}, recorded {recorded_sum} over {} intervals ({})",
                    s.total,
                    intervals.len(),
                    status
                ));
            }
        }
    }

    // Checks.
    let missing_wait = (0..n)
        .filter(|&i| statuses[i] == "running" && judged[i] < need[i])
        .count();
    if counted.accepted != total_sent {
        failures.push(format!(
            "spans sent for watched scopes {} != accepted {} (dropped {}, rejected {})",
            total_sent, counted.accepted, counted.dropped, counted.rejected
        ));
    }
    if counted.dropped + counted.filtered + counted.rejected > 0 {
        failures.push(format!(
            "spans dropped {} / filtered {} / rejected {} by the daemon",
            counted.dropped, counted.filtered, counted.rejected
        ));
    }
    if sent.partial_rejected > 0 {
        failures.push(format!(
            "{} spans rejected in partial-success answers",
            sent.partial_rejected
        ));
    }
    if !not_running.is_empty() {
        failures.push(format!(
            "{} analyses not running at the end; first: {}",
            not_running.len(),
            not_running[0]
        ));
    }
    if !unreadable.is_empty() {
        failures.push(format!(
            "{} analyses unreadable; first: {}",
            unreadable.len(),
            unreadable[0]
        ));
    }
    if missing_wait > 0 {
        failures.push(format!(
            "{missing_wait} running analyses had not judged their last interval {} s after the traffic",
            wait_budget.as_secs()
        ));
    }
    if !sum_mismatch.is_empty() {
        failures.push(format!(
            "{} analysis sides recorded other than what was sent; first: {}",
            sum_mismatch.len(),
            sum_mismatch[0]
        ));
    }
    if !violations.is_empty() && args.strict_intervals {
        failures.push(format!(
            "{} intervals outside their sent bounds (slack {}); first: {}",
            violations.len(),
            humantime::format_duration(slack),
            violations[0]
        ));
    }
    if !sent.failed.is_empty() {
        failures.push(format!("requests failed: {:?}", sent.failed));
    }

    // Report.
    let mut md = String::new();
    let refused: u64 = sent.refused.values().map(|v| v.0).sum();
    let refused_spans: u64 = sent.refused.values().map(|v| v.1).sum();
    md.push_str(&format!(
        "\n### Soak: {n} analyses, {} s, {}, rate {}, interval {}\n\n",
        args.seconds,
        if grpc { "gRPC" } else { "HTTP" },
        rate.map_or("max".into(), |r| format!("{r}/s")),
        humantime::format_duration(interval),
    ));
    md.push_str("| figure | value |\n|---|---|\n");
    md.push_str(&format!(
        "| spans sent (acknowledged, watched scopes) | {} in {:.1} s = {:.0} spans/s ({} requests of {spans_per_request}) |\n",
        thousands(total_sent),
        elapsed,
        total_sent as f64 / elapsed,
        thousands(plan.live.requests.load(Ordering::Relaxed)),
    ));
    md.push_str(&format!(
        "| `augury_otlp_spans_total` accepted / dropped / rejected | {} / {} / {} |\n",
        thousands(counted.accepted),
        thousands(counted.dropped + counted.filtered),
        thousands(counted.rejected)
    ));
    md.push_str(&format!(
        "| refused requests (spans not sent) | {refused} ({}){} |\n",
        thousands(refused_spans),
        if sent.refused.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                sent.refused
                    .iter()
                    .map(|(k, (r, _))| format!("{k} x {r}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    ));
    md.push_str(&format!(
        "| failed spans per request, baseline / canary | {} / {} of {spans_per_request} |\n",
        errors.0, errors.1
    ));
    md.push_str(&format!(
        "| failed requests | {} |\n",
        sent.failed.values().map(|v| v.0).sum::<u64>()
    ));
    md.push_str(&format!(
        "| analyses running at the end | {} of {n} |\n",
        n - not_running.len() - unreadable.len()
    ));
    md.push_str(&format!(
        "| analysis sides whose intervals sum to what was sent | {} of {} |\n",
        2 * n - sum_mismatch.len() - 2 * unreadable.len(),
        2 * n
    ));
    md.push_str(&format!(
        "| intervals outside sent bounds (slack {}) | {} |\n",
        humantime::format_duration(slack),
        violations.len()
    ));
    md.push_str(&format!(
        "| intervals not aligned on creation + k x interval | {misaligned} |\n"
    ));
    md.push_str(&format!(
        "| intervals judged; mean time to gather, judge, persist one | {judged_total}; {:.1} ms |\n",
        judge_mean * 1e3
    ));
    md.push_str(&format!(
        "| load average (1 min) at start / end of the traffic | {load_before} / {load_after} |\n"
    ));
    let rss: Vec<f64> = rows.iter().filter_map(|r| r.5).collect();
    if let (Some(first), Some(last)) = (rss0.or(rss.first().copied()), rss.last()) {
        let max = rss.iter().copied().fold(first, f64::max);
        md.push_str(&format!(
            "| daemon RSS before / last / max | {first:.1} / {last:.1} / {max:.1} MiB |\n"
        ));
    }
    md.push_str("\nPer interval, all analyses and both sides (sent: certain..with boundary spans):\n\n| interval | sent | recorded | sides outside |\n|---|---|---|---|\n");
    for (k, [lo, hi, rec, bad]) in &per_k {
        md.push_str(&format!(
            "| {k} | {}..{} | {} | {bad} |\n",
            thousands(*lo),
            thousands(*hi),
            thousands(*rec)
        ));
    }
    md.push_str("\nOver time:\n\n| t (s) | spans/s sent | accepted/s | dropped/s | refused requests (cumulative) | daemon RSS (MiB) |\n|---|---|---|---|---|---|\n");
    for r in &rows {
        md.push_str(&format!(
            "| {:.0} | {:.0} | {:.0} | {:.0} | {} | {} |\n",
            r.0,
            r.1,
            r.2,
            r.3,
            r.4,
            r.5.map_or("-".into(), |r| format!("{r:.1}"))
        ));
    }
    if args.verbose {
        md.push_str("\n| analysis | side | interval | sent (certain) | sent (max) | recorded |\n|---|---|---|---|---|---|\n");
        md.push_str(&verbose);
    }
    for list in [&not_running, &unreadable, &sum_mismatch, &violations] {
        for line in list.iter().take(5) {
            md.push_str(&format!("- {line}\n"));
        }
    }
    Ok(Report {
        failures,
        markdown: md,
    })
}
