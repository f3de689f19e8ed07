//! Test harness: a real Prometheus (the `prometheus` binary on PATH) scraping small
//! in-test exporters whose counters grow by known amounts on every scrape.
//!
//! Exporters: every GET of `/metrics` is scrape number n (1, 2, ...), and every series
//! reads `n * per_scrape`. All series of one exporter are therefore proportional to its
//! `augury_test_scrapes_total` marker (which reads n), and so are Prometheus'
//! extrapolated `increase()`/`rate()` results over any window: the test gets the factor
//! from the marker and knows what every other series must give.
//!
//! Prometheus runs under `sh`, which kills it when its stdin closes: when the harness is
//! dropped, and also when the test process ends however it ends, so no server outlives
//! the tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

/// One exposition line: metric name, labels, per-scrape increment.
type Line = (String, Vec<(String, String)>, f64);

/// Text exposition whose values are `n * per_scrape` at scrape n.
#[derive(Clone, Debug, Default)]
pub struct Exposition {
    /// family name -> (type, lines).
    families: BTreeMap<String, (&'static str, Vec<Line>)>,
}

pub fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Exposition {
    pub fn counter(&mut self, name: &str, labels: Vec<(String, String)>, per_scrape: f64) {
        self.families
            .entry(name.into())
            .or_insert(("counter", Vec::new()))
            .1
            .push((name.into(), labels, per_scrape));
    }

    /// A classic histogram `name_bucket/_sum/_count`; `values` are the observations one
    /// scrape adds (value, how many), bucketed here by `le` (value <= le).
    pub fn histogram(
        &mut self,
        name: &str,
        labels: Vec<(String, String)>,
        bounds: &[f64],
        values: &[(f64, u64)],
    ) {
        let per_bucket = bucketize(bounds, values);
        let family = &mut self
            .families
            .entry(name.into())
            .or_insert(("histogram", Vec::new()))
            .1;
        let mut cumulative = 0u64;
        for (k, count) in per_bucket.iter().enumerate() {
            cumulative += count;
            let le = bounds.get(k).map_or("+Inf".to_string(), |b| format_le(*b));
            let mut l = labels.clone();
            l.push(("le".into(), le));
            family.push((format!("{name}_bucket"), l, cumulative as f64));
        }
        let sum: f64 = values.iter().map(|(v, n)| v * *n as f64).sum();
        family.push((format!("{name}_sum"), labels.clone(), sum));
        family.push((format!("{name}_count"), labels, cumulative as f64));
    }

    pub fn render(&self, n: u64) -> String {
        let mut out = String::new();
        for (family, (kind, lines)) in &self.families {
            let _ = writeln!(out, "# TYPE {family} {kind}");
            for (name, labels, per_scrape) in lines {
                let inner: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| {
                        format!("{k}=\"{}\"", v.replace('\\', r"\\").replace('"', "\\\""))
                    })
                    .collect();
                let _ = writeln!(
                    out,
                    "{name}{{{}}} {}",
                    inner.join(","),
                    per_scrape * n as f64
                );
            }
        }
        out
    }
}

/// Per-bucket counts (not cumulative) of `values` in buckets `(b[k-1], b[k]]`, +Inf last.
pub fn bucketize(bounds: &[f64], values: &[(f64, u64)]) -> Vec<u64> {
    let mut counts = vec![0u64; bounds.len() + 1];
    for &(v, n) in values {
        let k = bounds.iter().position(|b| v <= *b).unwrap_or(bounds.len());
        counts[k] += n;
    }
    counts
}

/// `le` as Prometheus client libraries write it (`0.005`, `10`, `3.6e+06`).
fn format_le(b: f64) -> String {
    if b >= 1e6 {
        let exp = b.log10().floor() as i32;
        let mantissa = b / 10f64.powi(exp);
        format!("{mantissa}e+{exp:02}")
    } else {
        format!("{b}")
    }
}

struct ExporterState {
    exposition: Exposition,
    scrapes: AtomicU64,
}

/// An HTTP server on 127.0.0.1 serving an [`Exposition`] at `/metrics`.
pub struct Exporter {
    pub addr: SocketAddr,
    state: Arc<ExporterState>,
}

impl Exporter {
    /// Starts serving on the current tokio runtime.
    pub async fn start(mut exposition: Exposition) -> Exporter {
        exposition.counter("augury_test_scrapes_total", Vec::new(), 1.0);
        let state = Arc::new(ExporterState {
            exposition,
            scrapes: AtomicU64::new(0),
        });
        let app = Router::new()
            .route("/metrics", get(serve_metrics))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Exporter { addr, state }
    }

    pub fn scrapes(&self) -> u64 {
        self.state.scrapes.load(Ordering::SeqCst)
    }
}

async fn serve_metrics(State(state): State<Arc<ExporterState>>) -> impl IntoResponse {
    let n = state.scrapes.fetch_add(1, Ordering::SeqCst) + 1;
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.exposition.render(n),
    )
}

/// A running `prometheus` process with its own data directory and port.
pub struct Prometheus {
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (job name -> address) every second.
    /// `extra` is appended to the config file (e.g. a `remote_read:` section).
    pub async fn start(targets: &[(&str, SocketAddr)], extra: &str) -> Prometheus {
        Prometheus::start_in(targets, extra, None).await
    }

    /// Starts Prometheus on a data directory that already holds `history` (written into
    /// TSDB blocks by the real `promtool tsdb create-blocks-from openmetrics`, the way an
    /// operator backfills), scraping nothing: series over any window in the past.
    pub async fn with_history(history: &History) -> Prometheus {
        Prometheus::start_in(&[], "", Some(history)).await
    }

    async fn start_in(
        targets: &[(&str, SocketAddr)],
        extra: &str,
        history: Option<&History>,
    ) -> Prometheus {
        let mut last_log = String::new();
        // The port is free when chosen but could be taken before Prometheus binds it.
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            if let Some(history) = history {
                history.backfill(&dir.path().join("data"));
            }
            let port = super::free_port();
            let mut config = String::from(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n",
            );
            for (job, addr) in targets {
                let _ = write!(
                    config,
                    "  - job_name: {job}\n    honor_labels: true\n    static_configs:\n      - targets: [\"{addr}\"]\n"
                );
            }
            config.push_str(extra);
            let config_path = dir.path().join("prometheus.yml");
            std::fs::write(&config_path, config).unwrap();
            let log_path = dir.path().join("prometheus.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let child = Command::new("sh")
                .arg("-c")
                .arg(r#"prometheus "$@" & p=$!; read _ignored; kill $p; wait $p"#)
                .arg("sh")
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::piped())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("`sh` runs; `prometheus` must be on PATH (scripts/test installs it)");
            let mut prometheus = Prometheus {
                url: format!("http://127.0.0.1:{port}"),
                child,
                dir,
            };
            if prometheus.wait_ready().await {
                return prometheus;
            }
            last_log = prometheus.log();
        }
        panic!("prometheus did not become ready; its log:\n{last_log}");
    }

    /// Polls `/-/ready`, a bounded number of times.
    async fn wait_ready(&mut self) -> bool {
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{}/-/ready", self.url)).send().await
                && r.status().is_success()
            {
                return true;
            }
            if self.log().contains("address already in use") {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.dir.path().join("prometheus.log")) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs an instant query with a plain client (not the code under test).
    pub async fn instant(&self, promql: &str, time: Option<f64>) -> serde_json::Value {
        let mut form = vec![("query", promql.to_string())];
        if let Some(t) = time {
            form.push(("time", format!("{t:.3}")));
        }
        let body: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/api/v1/query", self.url))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(body["status"], "success", "{promql}: {body}");
        body
    }

    /// The single value of an instant query, `None` when it returned no series.
    pub async fn value(&self, promql: &str, time: Option<f64>) -> Option<f64> {
        let body = self.instant(promql, time).await;
        let result = body["data"]["result"].as_array().unwrap();
        assert!(result.len() <= 1, "{promql}: {body}");
        result
            .first()
            .map(|s| s["value"][1].as_str().unwrap().parse().unwrap())
    }

    /// Waits until every job in `jobs` has had `scrapes` scrapes ingested, polling a
    /// bounded number of times; returns the time of the latest sample that is ingested
    /// for all of them, so queries at that time see complete data.
    pub async fn wait_for_scrapes(&self, jobs: &[&str], scrapes: u64) -> f64 {
        let selector = format!("augury_test_scrapes_total{{job=~\"{}\"}}", jobs.join("|"));
        for _ in 0..600 {
            let ingested = self
                .value(&format!("count({selector} >= {scrapes})"), None)
                .await
                .unwrap_or(0.0);
            if ingested as usize == jobs.len() {
                return self
                    .value(&format!("min(timestamp({selector}))"), None)
                    .await
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "prometheus did not ingest {scrapes} scrapes of {jobs:?}; its log:\n{}",
            self.log()
        );
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // Closing stdin makes the wrapper shell kill Prometheus and wait for it.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Series with explicit timestamps, for [`Prometheus::with_history`]: OpenMetrics text
/// that `promtool` turns into blocks.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// family name -> (type, lines `name{labels} value timestamp`).
    families: BTreeMap<String, (&'static str, Vec<String>)>,
}

impl History {
    /// A gauge series with a value at each `(unix_seconds, value)`.
    pub fn gauge(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        points: impl IntoIterator<Item = (f64, f64)>,
    ) {
        self.series(name, "gauge", name, labels, points);
    }

    /// A counter series (`name` without `_total`) reading `value` at each time.
    pub fn counter(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        points: impl IntoIterator<Item = (f64, f64)>,
    ) {
        self.series(name, "counter", &format!("{name}_total"), labels, points);
    }

    fn series(
        &mut self,
        family: &str,
        kind: &'static str,
        name: &str,
        labels: &[(&str, &str)],
        points: impl IntoIterator<Item = (f64, f64)>,
    ) {
        let set: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        let lines = &mut self
            .families
            .entry(family.to_string())
            .or_insert_with(|| (kind, Vec::new()))
            .1;
        for (t, v) in points {
            lines.push(format!("{name}{{{}}} {v} {t:.3}", set.join(",")));
        }
    }

    /// The OpenMetrics text.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for (family, (kind, lines)) in &self.families {
            let _ = writeln!(text, "# TYPE {family} {kind}");
            for line in lines {
                let _ = writeln!(text, "{line}");
            }
        }
        text.push_str("# EOF\n");
        text
    }

    /// Writes the series into TSDB blocks under `data` with `promtool`.
    fn backfill(&self, data: &std::path::Path) {
        std::fs::create_dir_all(data).unwrap();
        let input = data.with_file_name("history.om");
        std::fs::write(&input, self.render()).unwrap();
        let out = Command::new("promtool")
            .args(["tsdb", "create-blocks-from", "openmetrics"])
            .arg(&input)
            .arg(data)
            .output()
            .expect("`promtool` must be on PATH (scripts/test installs it with prometheus)");
        assert!(
            out.status.success(),
            "promtool could not backfill the history: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Unix seconds as the `SystemTime` the query source takes.
pub fn at(unix_seconds: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(unix_seconds)
}

/// What a [`Proxy`] does before forwarding to Prometheus.
#[derive(Default)]
pub struct ProxyRules {
    /// Headers a request must carry (name, exact value), else 401.
    pub require: Vec<(String, String)>,
    /// Answer this many requests with 503 (and `Retry-After: 0`) first.
    pub fail_first: u64,
    /// Hold this many requests open without answering first.
    pub stall_first: u64,
}

struct ProxyState {
    upstream: String,
    require: Vec<(String, String)>,
    fail_first: AtomicU64,
    stall_first: AtomicU64,
    requests: AtomicU64,
    http: reqwest::Client,
}

/// An HTTP proxy in front of a real Prometheus that checks credentials, counts requests
/// and injects failures, so the client's auth and retry paths meet real API answers.
pub struct Proxy {
    pub url: String,
    state: Arc<ProxyState>,
}

impl Proxy {
    /// Starts on the current tokio runtime.
    pub async fn start(upstream: &str, rules: ProxyRules) -> Proxy {
        let state = Arc::new(ProxyState {
            upstream: upstream.trim_end_matches('/').into(),
            require: rules.require,
            fail_first: AtomicU64::new(rules.fail_first),
            stall_first: AtomicU64::new(rules.stall_first),
            requests: AtomicU64::new(0),
            http: reqwest::Client::new(),
        });
        let app = Router::new().fallback(forward).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Proxy {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

fn take_one(counter: &AtomicU64) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

async fn forward(
    State(state): State<Arc<ProxyState>>,
    request: axum::extract::Request,
) -> axum::response::Response {
    use axum::http::StatusCode;
    state.requests.fetch_add(1, Ordering::SeqCst);
    for (name, value) in &state.require {
        let got = request
            .headers()
            .get(name.as_str())
            .and_then(|v| v.to_str().ok());
        if got != Some(value.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                format!("missing or wrong {name}\n"),
            )
                .into_response();
        }
    }
    if take_one(&state.stall_first) {
        std::future::pending::<()>().await;
    }
    if take_one(&state.fail_first) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "0")],
            "upstream temporarily unavailable\n",
        )
            .into_response();
    }
    let path = request
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |p| p.to_string());
    let content_type = request.headers().get(CONTENT_TYPE).cloned();
    let method = request.method().clone();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .unwrap();
    let mut upstream = state
        .http
        .request(method, format!("{}{path}", state.upstream))
        .body(body);
    if let Some(ct) = content_type {
        upstream = upstream.header(CONTENT_TYPE, ct);
    }
    let response = upstream.send().await.unwrap();
    let status = response.status();
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    let bytes = response.bytes().await.unwrap();
    let mut out = (status, bytes).into_response();
    if let Some(ct) = content_type {
        out.headers_mut().insert(CONTENT_TYPE, ct);
    }
    out
}
