//! The scrape model source end to end: the real `augury serve` binary scrapes real
//! `/metrics` endpoints served by Python's Prometheus client (`tests/scrape_source/
//! target.py`), judges baseline against canary with a model whose metrics say
//! `source: {scrape: ...}`, and is read through its HTTP API only.
//!
//! Every target records one batch of requests each time it is scraped (see the script),
//! so each interval's increase is exactly one batch whatever the timing: the assertions
//! are on counts, not on clocks, and nothing waits except for the verdict.

// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::daemon::Daemon;

const VERDICT_DEADLINE: Duration = Duration::from_secs(90);
/// Requests each target records per scrape.
const BATCH: u64 = 200;

/// A Python interpreter that has `prometheus_client` (scripts/test installs the Debian
/// package `python3-prometheus-client`; `AUGURY_TEST_PYTHON` may name another one).
fn python() -> String {
    let mut candidates: Vec<String> = std::env::var("AUGURY_TEST_PYTHON").into_iter().collect();
    candidates.extend(["python3".into(), "/usr/bin/python3".into()]);
    candidates
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import prometheus_client"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .expect(
            "a python3 with prometheus_client (scripts/test installs python3-prometheus-client)",
        )
}

/// How a target behaves.
#[derive(Clone, Copy)]
struct Behaviour {
    /// Errors per batch of [`BATCH`].
    errors: u64,
    median_s: f64,
    seed: u64,
}

const HEALTHY: Behaviour = Behaviour {
    errors: 2,
    median_s: 0.05,
    seed: 1,
};

/// One `target.py`, run under `sh`, which kills it when its stdin closes: when the target
/// is stopped or dropped, and when the test process ends however it ends.
struct Target {
    child: Child,
    port: u16,
}

impl Target {
    fn start(behaviour: Behaviour, port: u16) -> Target {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scrape_source/target.py");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#""$@" & p=$!; read _ignored; kill $p; wait $p 2>/dev/null"#)
            .arg("sh")
            .arg(python())
            .arg(script)
            .args(["--port", &port.to_string()])
            .args(["--requests", &BATCH.to_string()])
            .args(["--errors", &behaviour.errors.to_string()])
            .args(["--median", &behaviour.median_s.to_string()])
            .args(["--seed", &behaviour.seed.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("sh runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("target.py did not say its port: {line:?}"));
        Target { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }

    /// Stops the target (see `Drop`) and gives back the port it listened on.
    fn stop(self) -> u16 {
        self.port
    }
}

impl Drop for Target {
    /// Closing stdin makes the wrapper shell kill the target and wait for it.
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The model under test, inline: latency from the histogram, errors from the counter's
/// 5xx series, both from the targets the request's `metrics_url` lists. `extra` metrics
/// are appended.
fn model(extra: &[Value]) -> Value {
    let scrape = |more: Value| {
        let mut s = json!({"url": "{{ metrics_url }}", "timeout": "2s"});
        s.as_object_mut()
            .unwrap()
            .extend(more.as_object().unwrap().clone());
        json!({"scrape": s})
    };
    let mut metrics = vec![
        json!({"name": "latency", "kind": "distribution", "unit": "s", "critical": true,
               "min_samples": 50,
               "effect": {"allowed_increase": 1.1, "critical_increase": 1.3},
               "source": scrape(json!({"histogram": "http_request_duration_seconds"}))}),
        json!({"name": "error-rate", "kind": "error-ratio", "critical": true,
               "effect": {"allowed_increase": 2.0, "critical_increase": 3.0},
               "source": scrape(json!({"requests": "http_requests_total",
                                       "errors": "http_requests_total{code=~\"5..\"}"}))}),
    ];
    metrics.extend(extra.iter().cloned());
    json!({"name": "scraped", "scope": ["metrics_url"], "metrics": metrics})
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// Starts an analysis of `model()` with one-second intervals, each side's targets given
/// as the `metrics_url` list.
async fn create(
    api: &str,
    key: &str,
    baseline: &[&Target],
    canary: &[&Target],
    lifetime: &str,
) -> String {
    let urls = |targets: &[&Target]| {
        let urls: Vec<String> = targets.iter().map(|t| t.url()).collect();
        json!({"metrics_url": urls.join(",")})
    };
    create_with(api, key, model(&[]), urls(baseline), urls(canary), lifetime).await
}

async fn create_with(
    api: &str,
    key: &str,
    model: Value,
    baseline: Value,
    canary: Value,
    lifetime: &str,
) -> String {
    let body = json!({"key": key, "model": model, "baseline": baseline, "canary": canary,
                      "interval": "1s", "lifetime": lifetime});
    let r = http()
        .post(format!("{api}/api/v1/analyses"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let created: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

async fn get(api: &str, path: &str) -> Value {
    let r = http().get(format!("{api}{path}")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    r.json().await.unwrap()
}

/// Polls the verdict until `done` says so (or the deadline passes: a failed test).
async fn poll(api: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + VERDICT_DEADLINE;
    loop {
        let v = get(api, &format!("/api/v1/analyses/{id}/verdict")).await;
        if done(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "analysis {id} stuck: {v:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn verdict(api: &str, id: &str) -> Value {
    poll(api, id, |v| v["status"] != "running").await
}

/// Every interval, with what arrived during it alone.
async fn intervals(api: &str, id: &str) -> Vec<Value> {
    get(api, &format!("/api/v1/analyses/{id}?data=true")).await["intervals"]
        .as_array()
        .unwrap()
        .clone()
}

fn classification<'a>(v: &'a Value, metric: &str) -> &'a Value {
    &v["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == metric)
        .unwrap_or_else(|| panic!("no {metric} in {v:#}"))["classification"]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_canary_passes_and_a_regressing_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::on(&dir.path().join("a.db")).start();
    let baseline_a = Target::start(HEALTHY, 0);
    let healthy = Target::start(Behaviour { seed: 2, ..HEALTHY }, 0);
    let baseline_b = Target::start(Behaviour { seed: 3, ..HEALTHY }, 0);
    // Two canary pods of a regressing version: 50% slower, 10x the errors.
    let bad = Behaviour {
        errors: 20,
        median_s: 0.075,
        seed: 4,
    };
    let (bad_1, bad_2) = (
        Target::start(bad, 0),
        Target::start(Behaviour { seed: 5, ..bad }, 0),
    );

    let mut ids = Vec::new();
    for (key, baseline, canary) in [
        ("healthy", vec![&baseline_a], vec![&healthy]),
        ("regressing", vec![&baseline_b], vec![&bad_1, &bad_2]),
    ] {
        ids.push(create(&daemon.api, key, &baseline, &canary, "4s").await);
    }
    let (pass, fail) = (ids[0].clone(), ids[1].clone());
    let pass = verdict(&daemon.api, &pass).await;
    let fail_v = verdict(&daemon.api, &fail).await;

    assert_eq!(pass["status"], "pass", "{pass:#}");
    assert_eq!(classification(&pass, "latency"), "pass", "{pass:#}");
    assert_eq!(classification(&pass, "error-rate"), "pass", "{pass:#}");
    assert_eq!(fail_v["status"], "fail", "{fail_v:#}");
    assert_eq!(classification(&fail_v, "latency"), "high", "{fail_v:#}");
    assert_eq!(classification(&fail_v, "error-rate"), "high", "{fail_v:#}");

    // Each interval holds one batch per target: the canary's two pods are summed.
    for i in intervals(&daemon.api, &fail).await {
        let counts = &i["data"]["error-rate"];
        assert_eq!(counts["baseline"]["requests"], BATCH, "{i:#}");
        assert_eq!(counts["canary"]["requests"], 2 * BATCH, "{i:#}");
        assert_eq!(counts["canary"]["errors"], 2 * BATCH / 10, "{i:#}");
        assert!(
            !i["judgment"]["reasons"]
                .to_string()
                .contains("source error"),
            "{i:#}"
        );
    }
    assert!(daemon.terminate().success());
}

/// A daemon on a temp database (kept in the returned dir), a healthy baseline target and
/// a healthy canary target.
fn daemon_and_targets() -> (tempfile::TempDir, Daemon, Target, Target) {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::on(&dir.path().join("a.db")).start();
    let baseline = Target::start(HEALTHY, 0);
    let canary = Target::start(Behaviour { seed: 2, ..HEALTHY }, 0);
    (dir, daemon, baseline, canary)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_canary_is_a_counter_reset_counted_from_zero() {
    let (_dir, daemon, baseline, canary) = daemon_and_targets();
    let id = create(&daemon.api, "restarted", &[&baseline], &[&canary], "6s").await;
    let before = poll(&daemon.api, &id, |v| {
        v["progress"]["intervals"].as_u64() >= Some(2)
    })
    .await["progress"]["intervals"]
        .as_u64()
        .unwrap();
    // The canary's process restarts on the same port: its counters start again from 0,
    // below what the daemon last read.
    let port = canary.stop();
    let canary = Target::start(Behaviour { seed: 6, ..HEALTHY }, port);
    let v = verdict(&daemon.api, &id).await;
    assert_eq!(v["status"], "pass", "{v:#}");

    // Every interval where the canary answered holds exactly one batch: the reset made
    // neither a negative increase nor a lost or doubled one.
    let all = intervals(&daemon.api, &id).await;
    assert_eq!(all.len(), 6, "{all:#?}");
    let mut after_restart = 0;
    for i in &all {
        let reasons = i["judgment"]["reasons"].to_string();
        if reasons.contains("is down") {
            // The restart fell on this interval's scrape: the metric says so, and the
            // next scrape reads the new process's first batch.
            continue;
        }
        let counts = &i["data"]["error-rate"];
        assert_eq!(counts["baseline"]["requests"], BATCH, "{i:#}");
        assert_eq!(counts["canary"]["requests"], BATCH, "{i:#}");
        assert!(!reasons.contains("cannot be counted"), "{i:#}");
        // Intervals past `before + 1` ended after the restart; the first judged one
        // began on the old process's last good scrape.
        if i["seq"].as_u64().unwrap() > before + 1 {
            after_restart += 1;
        }
    }
    assert!(after_restart >= 1, "{all:#?}");
    drop(canary);
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_target_costs_only_its_own_metric_with_a_reason() {
    let (_dir, daemon, baseline, canary) = daemon_and_targets();
    let sidecar = Target::start(Behaviour { seed: 3, ..HEALTHY }, 0);
    // The canary's sidecar died: nothing listens on its port any more.
    let dead = format!(
        "http://127.0.0.1:{}/metrics",
        Target::start(HEALTHY, 0).stop()
    );
    // A third metric reads the sidecars; the canary's sidecar is not there.
    let sidecar_errors = json!({"name": "sidecar-errors", "kind": "error-ratio",
        "source": {"scrape": {"url": "{{ sidecar_url }}", "timeout": "2s",
                              "requests": "http_requests_total",
                              "errors": "http_requests_total{code=\"500\"}"}}});
    let mut m = model(&[sidecar_errors]);
    m["scope"] = json!(["metrics_url", "sidecar_url"]);
    let id = create_with(
        &daemon.api,
        "dead",
        m,
        json!({"metrics_url": baseline.url(), "sidecar_url": sidecar.url()}),
        json!({"metrics_url": canary.url(), "sidecar_url": dead}),
        "3s",
    )
    .await;
    let v = verdict(&daemon.api, &id).await;
    // The other metrics were judged every interval; the dead one only has reasons.
    assert_eq!(classification(&v, "latency"), "pass", "{v:#}");
    assert_eq!(classification(&v, "error-rate"), "pass", "{v:#}");
    assert_eq!(classification(&v, "sidecar-errors"), "nodata", "{v:#}");
    let all = intervals(&daemon.api, &id).await;
    assert_eq!(all.len(), 3);
    for i in &all {
        let reasons = i["judgment"]["reasons"].to_string();
        assert!(
            reasons.contains("sidecar-errors") && reasons.contains(&format!("{dead} is down")),
            "{i:#}"
        );
        assert!(i["data"].get("sidecar-errors").is_none(), "{i:#}");
        assert_eq!(
            i["data"]["error-rate"]["canary"]["requests"], BATCH,
            "{i:#}"
        );
    }
    // The daemon is still serving.
    let health = http()
        .get(format!("{}/healthz", daemon.api))
        .send()
        .await
        .unwrap();
    assert!(health.status().is_success());
    assert!(daemon.terminate().success());
}
