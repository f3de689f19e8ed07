//! End-to-end: the real `augury serve` binary on free ports with a temp SQLite database,
//! fed by real OpenTelemetry OTLP exporters, driven and read through its public HTTP API
//! only, the way pipelines and rollout controllers use it.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::daemon::Daemon;
use support::traffic::{Traffic, Transport, Version};

/// Longest any analysis here may take to reach its verdict.
const VERDICT_DEADLINE: Duration = Duration::from_secs(90);

fn http() -> reqwest::Client {
    support::http::client(Duration::from_secs(15))
}

async fn post(api: &str, path: &str, body: &Value) -> (u16, Value) {
    support::http::post(&http(), api, path, body).await
}

async fn get(api: &str, path: &str) -> (u16, Value) {
    support::http::get(&http(), api, path).await
}

fn request(key: &str, service: &str, interval: &str, lifetime: &str) -> Value {
    json!({
        "key": key, "model": "http-red",
        "baseline": {"service.name": service, "service.version": "1.0.0"},
        "canary": {"service.name": service, "service.version": "1.1.0"},
        "interval": interval, "lifetime": lifetime,
    })
}

fn versions(service: &str, regressed: bool) -> Vec<Version> {
    let canary = Version::new(service, "1.1.0");
    vec![
        Version::new(service, "1.0.0"),
        if regressed {
            canary.regressed()
        } else {
            canary
        },
    ]
}

/// Polls the verdict until `done` says so (or the deadline passes: a failed test).
async fn poll_verdict(api: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + VERDICT_DEADLINE;
    loop {
        let (status, v) = get(api, &format!("/api/v1/analyses/{id}/verdict")).await;
        assert_eq!(status, 200, "{v}");
        if done(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "analysis {id} not there within {VERDICT_DEADLINE:?}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn final_verdict(api: &str, id: &str) -> Value {
    poll_verdict(api, id, |v| v["status"] != "running").await
}

async fn create(api: &str, body: &Value) -> String {
    let (status, created) = post(api, "/api/v1/analyses", body).await;
    assert_eq!(status, 201, "{created}");
    created["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_canary_passes_and_a_regressed_one_fails_naming_the_metric() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::on(&dir.path().join("a.db")).start();
    let healthy = create(&daemon.api, &request("healthy", "cart", "1s", "4s")).await;
    let regressed = create(&daemon.api, &request("regressed", "pay", "1s", "1m")).await;
    // Healthy over gRPC, regressed over HTTP/protobuf: both exporters, one daemon.
    let grpc = Traffic::start(Transport::Grpc, &daemon.otlp_grpc, versions("cart", false));
    let http_traffic = Traffic::start(
        Transport::HttpProtobuf,
        &daemon.otlp_http,
        versions("pay", true),
    );

    let pass = final_verdict(&daemon.api, &healthy).await;
    let fail = final_verdict(&daemon.api, &regressed).await;
    let sent = grpc.stop() + http_traffic.stop();
    assert!(sent > 0);

    assert_eq!(pass["status"], "pass", "{pass:#}");
    assert!(pass["score"].as_f64().unwrap() >= 95.0, "{pass:#}");
    assert!(pass["decided_at"].is_string());
    for m in pass["metrics"].as_array().unwrap() {
        assert_eq!(m["classification"], "pass", "{pass:#}");
    }

    assert_eq!(fail["status"], "fail", "{fail:#}");
    // Failed early on a critical metric, long before its 1 minute lifetime.
    assert!(
        fail["progress"]["intervals"].as_u64().unwrap() < 60,
        "{fail:#}"
    );
    let reasons = fail["reasons"].to_string();
    assert!(
        reasons.contains("latency") && reasons.contains("critical"),
        "the regressed metric is named: {reasons}"
    );
    let latency = fail["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "latency")
        .unwrap();
    assert_eq!(latency["classification"], "high", "{fail:#}");

    // Every interval is there with its per-metric numbers.
    let (_, detail) = get(&daemon.api, &format!("/api/v1/analyses/{healthy}")).await;
    let intervals = detail["intervals"].as_array().unwrap();
    assert_eq!(
        intervals.len() as u64,
        pass["progress"]["intervals"].as_u64().unwrap()
    );
    let seqs: Vec<u64> = intervals
        .iter()
        .map(|i| i["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());

    // Its own metrics count the verdicts and the spans.
    let text = http()
        .get(format!("{}/metrics", daemon.api))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("augury_verdicts_total{outcome=\"pass\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("augury_verdicts_total{outcome=\"fail\"} 1"),
        "{text}"
    );
    let exit = daemon.terminate();
    assert!(exit.success(), "clean shutdown exits 0: {exit:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn after_kill_9_a_restart_resumes_the_running_analysis_and_keeps_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let daemon = Daemon::on(&db).start();
    let done = create(&daemon.api, &request("done", "cart", "1s", "2s")).await;
    let traffic = Traffic::start(Transport::Grpc, &daemon.otlp_grpc, versions("cart", false));
    let before = final_verdict(&daemon.api, &done).await;
    assert_eq!(before["status"], "pass", "{before:#}");

    let running = create(&daemon.api, &request("running", "cart", "1s", "8s")).await;
    poll_verdict(&daemon.api, &running, |v| {
        v["progress"]["intervals"].as_u64().unwrap() >= 2
    })
    .await;
    traffic.stop();
    daemon.kill9();

    let daemon = Daemon::on(&db).start();
    let traffic = Traffic::start(Transport::Grpc, &daemon.otlp_grpc, versions("cart", false));
    let after = final_verdict(&daemon.api, &running).await;
    traffic.stop();
    assert_eq!(after["status"], "pass", "{after:#}");
    let (_, detail) = get(&daemon.api, &format!("/api/v1/analyses/{running}")).await;
    let seqs: Vec<u64> = detail["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        (1..=8).collect::<Vec<_>>(),
        "every interval once, in order"
    );
    // The spans lost with the process are named: the first interval judged after the
    // restart (or one that ended while it was down) says what it is missing.
    let lost = detail["intervals"].as_array().unwrap().iter().any(|i| {
        i["judgment"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| {
                let r = r.as_str().unwrap();
                r.contains("(re)started watching") || r.contains("daemon was not running")
            })
    });
    assert!(lost, "{detail:#}");

    // The verdict decided before the crash is unchanged, number for number.
    let (_, again) = get(&daemon.api, &format!("/api/v1/analyses/{done}/verdict")).await;
    for field in ["status", "score", "decided_at", "reasons", "metrics"] {
        assert_eq!(again[field], before[field], "{field}");
    }
    // The idempotency key still finds it.
    let (status, same) = post(
        &daemon.api,
        "/api/v1/analyses",
        &request("done", "cart", "1s", "2s"),
    )
    .await;
    assert_eq!((status, same["id"].as_str()), (200, Some(done.as_str())));
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn flagger_webhooks_gate_and_confirm_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::on(&dir.path().join("f.db")).start();
    let hook = |name: &str, checksum: &str, lifetime: &str| {
        json!({"name": name, "namespace": "shop", "phase": "Progressing",
               "checksum": checksum,
               "metadata": {"interval": "1s", "lifetime": lifetime,
                            "scope.service.version": "7"}})
    };
    let resource = |name: &str| Version::new(name, "7");
    // The canary workload `podinfo` regresses against `podinfo-primary`.
    let bad = hook("podinfo", "c0ffee", "1m");
    let (status, first) = post(&daemon.api, "/api/v1/gates/flagger", &bad).await;
    assert_eq!(status, 200, "running is not failing: {first}");
    let traffic = Traffic::start(
        Transport::HttpProtobuf,
        &daemon.otlp_http,
        vec![resource("podinfo-primary"), resource("podinfo").regressed()],
    );
    let deadline = Instant::now() + VERDICT_DEADLINE;
    let (status, refused) = loop {
        let (status, body) = post(&daemon.api, "/api/v1/gates/flagger", &bad).await;
        if status != 200 {
            break (status, body);
        }
        assert!(Instant::now() < deadline, "the gate never closed: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    traffic.stop();
    assert!(
        status > 202,
        "Flagger rolls back on a status above 202: {status}"
    );
    assert_eq!(status, 409);
    assert!(refused.to_string().contains("latency"), "{refused}");

    // confirm-promotion: 423 while running, 200 once the healthy canary passes.
    let good = hook("frontend", "beef", "3s");
    let url = "/api/v1/gates/flagger?mode=confirm-promotion";
    let (status, body) = post(&daemon.api, url, &good).await;
    assert_eq!(status, 423, "{body}");
    let traffic = Traffic::start(
        Transport::Grpc,
        &daemon.otlp_grpc,
        vec![resource("frontend-primary"), resource("frontend")],
    );
    let deadline = Instant::now() + VERDICT_DEADLINE;
    loop {
        let (status, body) = post(&daemon.api, url, &good).await;
        if status == 200 {
            break;
        }
        assert_eq!(status, 423, "only 423 while running: {body}");
        assert!(Instant::now() < deadline, "never promoted: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    traffic.stop();
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn argo_web_provider_polls_an_idempotent_analysis_to_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::on(&dir.path().join("argo.db")).start();
    // What the AnalysisTemplate's Web provider posts: the key is rollout + pod hash, so
    // Argo's retries and re-runs of one measurement land on one analysis.
    let body = request("checkout-6d4cf56db6", "checkout", "1s", "1m");
    let (first_status, first) = post(&daemon.api, "/api/v1/analyses", &body).await;
    let (again_status, again) = post(&daemon.api, "/api/v1/analyses", &body).await;
    assert_eq!((first_status, again_status), (201, 200));
    assert_eq!(first["id"], again["id"]);
    let id = first["id"].as_str().unwrap();
    // jsonPath `{$.status}`: `running` meets neither successCondition nor failureCondition.
    let (_, v) = get(&daemon.api, &format!("/api/v1/analyses/{id}/verdict")).await;
    assert_eq!(v["status"], "running");
    let traffic = Traffic::start(
        Transport::Grpc,
        &daemon.otlp_grpc,
        versions("checkout", true),
    );
    let v = final_verdict(&daemon.api, id).await;
    traffic.stop();
    assert_eq!(v["status"], "fail", "failureCondition: result == \"fail\"");
    assert!(daemon.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_precise_errors_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::on(&dir.path().join("bad.db")).start();
    let kept = create(&daemon.api, &request("kept", "cart", "1s", "1h")).await;

    // A scope name the model needs is missing: 400 naming it.
    let mut missing = request("m", "cart", "1s", "1m");
    missing["canary"]
        .as_object_mut()
        .unwrap()
        .remove("service.version");
    let (status, e) = post(&daemon.api, "/api/v1/analyses", &missing).await;
    assert_eq!(status, 400, "{e}");
    assert!(
        e["error"]["field"].as_str().unwrap().contains("canary"),
        "{e}"
    );
    // Unknown model, bad duration.
    let mut unknown = request("u", "cart", "1s", "1m");
    unknown["model"] = json!("no-such-model");
    let (status, e) = post(&daemon.api, "/api/v1/analyses", &unknown).await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (400, Some("model")),
        "{e}"
    );
    let (status, e) = post(
        &daemon.api,
        "/api/v1/analyses",
        &request("d", "cart", "soon", "1m"),
    )
    .await;
    assert_eq!(
        (status, e["error"]["field"].as_str()),
        (400, Some("interval")),
        "{e}"
    );
    // Malformed JSON: 400 saying where.
    let r = http()
        .post(format!("{}/api/v1/analyses", daemon.api))
        .header("content-type", "application/json")
        .body("{\"key\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(e["error"]["message"].is_string(), "{e}");
    // Unknown id: 404 with a JSON error.
    let (status, e) = get(&daemon.api, "/api/v1/analyses/0000/verdict").await;
    assert_eq!(status, 404, "{e}");
    assert!(e["error"]["code"].is_string(), "{e}");
    // Oversized body.
    let huge = json!({"key": "x".repeat(2 << 20)});
    let (status, _) = post(&daemon.api, "/api/v1/analyses", &huge).await;
    assert_eq!(status, 413);
    // Malformed OTLP: 400, and the receiver keeps taking good data.
    let r = http()
        .post(&daemon.otlp_http)
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff, 0x0f])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let traffic = Traffic::start(
        Transport::HttpProtobuf,
        &daemon.otlp_http,
        versions("cart", false),
    );
    let v = poll_verdict(&daemon.api, &kept, |v| {
        v["progress"]["intervals"].as_u64().unwrap() >= 1 && v["score"].as_f64() == Some(100.0)
    })
    .await;
    traffic.stop();
    assert_eq!(v["status"], "running");
    // Cancel: DELETE, then the verdict says so.
    let r = http()
        .delete(format!("{}/api/v1/analyses/{kept}", daemon.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, v) = get(&daemon.api, &format!("/api/v1/analyses/{kept}/verdict")).await;
    assert_eq!(v["status"], "cancelled");
    assert!(daemon.terminate().success());
}

#[test]
fn the_demo_shows_a_regressing_canary_fail() {
    let out = std::process::Command::new(support::daemon::bin())
        .args([
            "demo",
            "--speed",
            "5",
            "--scenario",
            "regression",
            "--format",
            "json",
        ])
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let verdict: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["status"], "fail", "{verdict:#}");
    assert!(!verdict["reasons"].as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_settings_are_refused_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(support::daemon::bin())
        .args(["serve", "--listen", "nowhere", "--database"])
        .arg(format!("sqlite://{}", dir.path().join("x.db").display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--listen: `nowhere`"), "{stderr}");
    let config = dir.path().join("augury.yaml");
    std::fs::write(
        &config,
        "prometheus: {url: \"http://p:9090\", headers: {A: \"${AUGURY_E2E_UNSET}\"}}\n",
    )
    .unwrap();
    let out = std::process::Command::new(support::daemon::bin())
        .args(["serve", "--config"])
        .arg(&config)
        .env_remove("AUGURY_E2E_UNSET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AUGURY_E2E_UNSET") && stderr.contains(":1"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_otlp_endpoint_set_the_daemon_exports_its_own_traces() {
    use augury::ingest::otlp::{OtlpConfig, OtlpReceiver};
    use augury::windows::{SpanFilter, SpanKind, Windows};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    // A collector for the daemon's own spans: Augury's receiver, watching `augury`'s
    // server spans of the verdict route.
    let windows = Arc::new(Windows::default());
    let watch = windows
        .watch(
            BTreeMap::from([("service.name".to_string(), "augury".to_string())]),
            SpanFilter {
                kind: Some(SpanKind::Server),
                name: None,
                route: Some("/api/v1/analyses/{id}/verdict".into()),
            },
        )
        .unwrap();
    let receiver = OtlpReceiver::bind(OtlpConfig::loopback_any_port(), Arc::clone(&windows))
        .await
        .unwrap();
    let endpoint = format!("http://{}", receiver.grpc_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let collector = tokio::spawn(receiver.run(async move {
        let _ = stopped.await;
    }));

    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::on(&dir.path().join("t.db"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .start();
    let id = create(&daemon.api, &request("traced", "cart", "1s", "1h")).await;
    for _ in 0..3 {
        let (status, _) = get(&daemon.api, &format!("/api/v1/analyses/{id}/verdict")).await;
        assert_eq!(status, 200);
    }
    // Shutdown flushes the spans still buffered.
    assert!(daemon.terminate().success());
    let data = windows.take(watch).unwrap();
    assert_eq!(data.requests, 3, "one server span per verdict request");
    assert_eq!(data.errors, 0);
    let _ = stop.send(());
    collector.await.unwrap().unwrap();
}
