//! Kayenta's REST API served by `augury serve --kayenta-listen`, spoken to as Kayenta's
//! own clients speak to it, against a real Prometheus holding a window of the past.
//!
//! What is sent is what the clients' own code sends:
//! - Argo Rollouts' `kayenta` metric provider (`metricproviders/kayenta/kayenta.go`):
//!   `GET {address}/canaryConfig?application=A&configurationAccountName=S` (S is the
//!   template's *storage* account: the provider passes that one), matching the config by
//!   `name` and reading its `id`; then `POST {address}/canary/{id}?application=A&
//!   metricsAccountName=M&configurationAccountName=C&storageAccountName=S` with the JSON
//!   Go marshals from its structs (field order `scope, location, step, start, end`, times
//!   `time.RFC3339`, thresholds as integers), needing exactly 200 and a
//!   `canaryExecutionId`; then `GET {address}/canary/{id}` every 15 s, needing exactly
//!   200 and a boolean `complete`, until it is true, then a number at
//!   `result.judgeResult.score.score`, which it truncates to an integer and compares with
//!   the thresholds itself. It sends no credentials. Its Go client sends
//!   `User-Agent: Go-http-client/1.1` and `Accept-Encoding: gzip`.
//! - Spinnaker's canary stage (orca's `orca-kayenta`: `KayentaService`,
//!   `RunKayentaCanaryTask`, `MonitorKayentaCanaryTask`): `POST /canary/{configId}` with
//!   `application`, `parentPipelineExecutionId` and the account names, its body written
//!   by orca's object mapper (times as epoch milliseconds, `extendedScopeParams` and
//!   `siteLocal` present); `GET /canary/{id}?storageAccountName=S`, read into its
//!   `CanaryResults` (`status` must name an orca `ExecutionStatus`, `application` must be
//!   there, `score` reads as an integer, each result's `controlMetadata.stats.count`);
//!   then `GET /credentials` for the metrics account's type; the stage fails when the
//!   score is at most the marginal threshold.
//!
//! Prometheus holds, for 30 minutes ending 10 minutes ago, one latency gauge per
//! instance (every 15 s): the baseline near 100 ms, a healthy canary near 100 ms, a
//! regressed canary near 160 ms. The history is written as blocks by `promtool` before
//! Prometheus starts.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use support::daemon::Daemon;
use support::http::{client, get, post};
use support::prometheus::{History, Prometheus};

/// The window the series cover: 30 minutes ending 10 minutes before the test starts
/// (whole minutes, as a person would write them), in seconds since the epoch.
fn window() -> (i64, i64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let end = (now - 600) / 60 * 60;
    (end - 1800, end)
}

/// RFC 3339 as Go's `time.RFC3339` writes a UTC time: no fraction, `Z`.
fn go_time(secs: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs as u64)).to_string()
}

/// The history: `latency_ms{app, region}` every 15 s over the window (and a little
/// around it), each instance near its level with a fixed spread.
fn history(start: i64, end: i64) -> History {
    let mut history = History::default();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for (app, level) in [
        ("baseline", 100.0),
        ("canary-good", 100.0),
        ("canary-bad", 160.0),
    ] {
        let mut points = Vec::new();
        let mut t = start - 120;
        while t <= end + 120 {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let noise = ((seed >> 33) % 2001) as f64 / 100.0 - 10.0;
            points.push((t as f64, level + noise));
            t += 15;
        }
        history.gauge(
            "latency_ms",
            &[("app", app), ("region", "us-east-1")],
            points,
        );
    }
    history
}

/// A query pack and a model reading the gauge with Kayenta's scope names (`scope`,
/// `location`), as an imported config has them; and one whose scope names are others.
fn write_models(dir: &Path) -> (String, String) {
    let (queries, models) = (dir.join("queries"), dir.join("models"));
    std::fs::create_dir_all(&queries).unwrap();
    std::fs::create_dir_all(&models).unwrap();
    std::fs::write(
        queries.join("gauges.yaml"),
        r#"name: gauges
queries:
  latency:
    kind: series
    unit: ms
    query: 'avg(avg_over_time(latency_ms{app="{{ scope }}", region="{{ location }}"}[{{ step }}]))'
  latency-by-app:
    kind: series
    unit: ms
    query: 'avg(avg_over_time(latency_ms{app="{{ app }}", region="{{ region }}"}[{{ step }}]))'
"#,
    )
    .unwrap();
    std::fs::write(
        models.join("checkout-latency.yaml"),
        r#"name: checkout-latency
scope: [scope, location]
thresholds: {pass: 95, marginal: 75}
metrics:
  - name: latency
    kind: distribution
    unit: ms
    source: {prometheus: {pack: gauges, query: latency}}
    test: mann-whitney
    direction: increase
    min_samples: 10
"#,
    )
    .unwrap();
    std::fs::write(
        models.join("by-app.yaml"),
        r#"name: by-app
scope: [app, region]
metrics:
  - name: latency
    kind: distribution
    unit: ms
    source: {prometheus: {pack: gauges, query: latency-by-app}}
    test: mann-whitney
    direction: increase
    min_samples: 10
"#,
    )
    .unwrap();
    (
        queries.to_str().unwrap().to_string(),
        models.to_str().unwrap().to_string(),
    )
}

/// A daemon serving Kayenta's API, reading the Prometheus that holds the history.
struct Env {
    _prometheus: Prometheus,
    _dir: tempfile::TempDir,
    daemon: Daemon,
    /// `http://127.0.0.1:PORT` of the Kayenta listener.
    kayenta: String,
    /// A plain client for the tests' own calls (Argo's and orca's have their own).
    http: reqwest::Client,
    start: i64,
    end: i64,
}

async fn env() -> Env {
    let (start, end) = window();
    let prometheus = Prometheus::with_history(&history(start, end)).await;
    let dir = tempfile::tempdir().unwrap();
    let (queries, models) = write_models(dir.path());
    let daemon = Daemon::on(&dir.path().join("a.db"))
        .flags(&[
            "--kayenta-listen",
            "127.0.0.1:0",
            "--prometheus-url",
            &prometheus.url,
            "--queries",
            &queries,
            "--models",
            &models,
        ])
        .start();
    let kayenta = daemon
        .kayenta
        .clone()
        .expect("the start line names the Kayenta listener");
    Env {
        _prometheus: prometheus,
        _dir: dir,
        daemon,
        kayenta,
        http: client(Duration::from_secs(30)),
        start,
        end,
    }
}

/// What Go's `http.Client` sends with every request of Argo's provider.
fn go_client() -> reqwest::Client {
    use reqwest::header::{ACCEPT_ENCODING, HeaderMap, HeaderValue, USER_AGENT};
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static("Go-http-client/1.1"));
    headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap()
}

/// The metric of an Argo Rollouts AnalysisTemplate's `kayenta` provider.
struct ArgoMetric<'a> {
    application: &'a str,
    canary_config_name: &'a str,
    metrics_account_name: &'a str,
    configuration_account_name: &'a str,
    storage_account_name: &'a str,
    pass: i64,
    marginal: i64,
    /// `controlScope.scope`, `experimentScope.scope`, `region`, `step`.
    control: &'a str,
    experiment: &'a str,
    region: &'a str,
    step: i64,
}

/// Argo's `AnalysisPhase`s the provider can reach.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Successful,
    Inconclusive,
    Failed,
}

/// `evaluateResult` of Argo's provider.
fn evaluate(score: i64, pass: i64, marginal: i64) -> Phase {
    if score >= pass {
        Phase::Successful
    } else if score >= marginal {
        Phase::Inconclusive
    } else {
        Phase::Failed
    }
}

/// A Go `encoding/json` body of the provider's `AnalysisRequest` with one scope named
/// `default`: map keys sorted, struct fields in declaration order, `omitempty` times.
fn argo_body(m: &ArgoMetric<'_>, start: &str, end: &str) -> String {
    let detail = |scope: &str| {
        format!(
            r#"{{"scope":"{scope}","location":"{}","step":{},"start":"{start}","end":"{end}"}}"#,
            m.region, m.step
        )
    };
    format!(
        r#"{{"scopes":{{"default":{{"controlScope":{},"experimentScope":{}}}}},"thresholds":{{"pass":{},"marginal":{}}}}}"#,
        detail(m.control),
        detail(m.experiment),
        m.pass,
        m.marginal
    )
}

/// The provider's conversation, request by request, checked as its Go code reads each
/// answer; its verdict and the score it read.
async fn argo(address: &str, m: &ArgoMetric<'_>, start: &str, end: &str) -> (Phase, i64) {
    let http = go_client();
    // getCanaryConfigId: the storage account goes as configurationAccountName.
    let r = http
        .get(format!(
            "{address}/canaryConfig?application={}&configurationAccountName={}",
            m.application, m.storage_account_name
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        200,
        "getCanaryConfigId needs exactly 200"
    );
    let configs: Value = r.json().await.unwrap();
    // Decoded into []canaryConfig{Id, Name string; UpdatedTimestamp int;
    // UpdatedTimestampIso string; Applications []string}: a wrong type fails the decode.
    for c in configs.as_array().expect("a JSON array") {
        assert!(c["id"].is_string() && c["name"].is_string(), "{c}");
        assert!(c["updatedTimestamp"].is_i64(), "an integer: {c}");
        assert!(c["updatedTimestampIso"].is_string(), "{c}");
        assert!(
            c["applications"]
                .as_array()
                .is_some_and(|a| a.iter().all(Value::is_string)),
            "{c}"
        );
    }
    let id = configs
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == m.canary_config_name)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .expect("Canary config not found");

    // Run: the job.
    let r = http
        .post(format!(
            "{address}/canary/{id}?application={}&metricsAccountName={}&configurationAccountName={}&storageAccountName={}",
            m.application,
            m.metrics_account_name,
            m.configuration_account_name,
            m.storage_account_name
        ))
        .header("Content-Type", "application/json")
        .body(argo_body(m, start, end))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "the job needs exactly 200: {body}");
    let execution = match &body["canaryExecutionId"] {
        Value::String(s) if !s.is_empty() => s.clone(),
        other => panic!("Invalid canaryExecutionId: {other}"),
    };

    // Resume, every 15 s in Argo (here sooner), until complete.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let r = http
            .get(format!("{address}/canary/{execution}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "Resume needs exactly 200");
        let patch: Value = r.json().await.unwrap();
        let complete = patch["complete"]
            .as_bool()
            .unwrap_or_else(|| panic!("Missing Complete Status: {patch}"));
        if !complete {
            assert!(
                patch["result"].is_null(),
                "no result while running: {patch}"
            );
            assert!(
                std::time::Instant::now() < deadline,
                "not complete in time: {patch}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        }
        let score = patch["result"]["judgeResult"]["score"]["score"]
            .as_f64()
            .unwrap_or_else(|| panic!("Missing Score: {patch}"));
        let score = score as i64;
        return (evaluate(score, m.pass, m.marginal), score);
    }
}

fn metric<'a>(config: &'a str, experiment: &'a str) -> ArgoMetric<'a> {
    ArgoMetric {
        application: "checkout",
        canary_config_name: config,
        metrics_account_name: "prometheus-account",
        configuration_account_name: "gcs-config",
        storage_account_name: "gcs-storage",
        pass: 90,
        marginal: 75,
        control: "baseline",
        experiment,
        region: "us-east-1",
        step: 60,
    }
}

/// Argo's provider over the window: Successful for the healthy canary, Failed for the
/// regressed one, with the config named `config`.
async fn healthy_succeeds_and_regressed_fails(e: &Env, config: &str) {
    let (start, end) = (go_time(e.start), go_time(e.end));
    for (canary, expected) in [
        ("canary-good", Phase::Successful),
        ("canary-bad", Phase::Failed),
    ] {
        let (phase, score) = argo(&e.kayenta, &metric(config, canary), &start, &end).await;
        assert_eq!(phase, expected, "{canary}: score {score}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn argo_rollouts_kayenta_provider_gets_augurys_verdicts() {
    let e = env().await;
    healthy_succeeds_and_regressed_fails(&e, "checkout-latency").await;

    // What the status holds beyond what Argo reads, with Kayenta's types.
    let (_, list) = get(&e.http, &e.kayenta, "/canaryConfig").await;
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == "model:checkout-latency")
    );
    let analyses = e.daemon.get("/api/v1/analyses").await;
    let last = analyses["analyses"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        last["key"].as_str().unwrap().starts_with("kayenta/"),
        "{last}"
    );
    assert_eq!(
        last["baseline"],
        json!({"scope": "baseline", "location": "us-east-1"})
    );
    let (code, s) = get(
        &e.http,
        &e.kayenta,
        &format!("/canary/{}", last["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(s["status"], "succeeded");
    assert_eq!(s["application"], "checkout");
    assert_eq!(s["canaryConfigId"], "model:checkout-latency");
    assert_eq!(s["storageAccountName"], "gcs-storage");
    assert_eq!(s["configurationAccountName"], "gcs-config");
    assert_eq!(s["result"]["canaryDuration"], "PT30M");
    assert!(
        s["endTimeMillis"].is_i64() && s["endTimeIso"].is_string(),
        "{s}"
    );
    let judge = &s["result"]["judgeResult"];
    assert_eq!(judge["score"]["classification"], "Fail");
    assert!(judge["score"]["classificationReason"].is_string());
    let result = &judge["results"][0];
    assert_eq!(result["name"], "latency");
    assert_eq!(result["classification"], "High");
    assert!(
        result["controlMetadata"]["stats"]["count"]
            .as_u64()
            .unwrap()
            >= 30,
        "{result}"
    );
    assert!(
        result["experimentMetadata"]["stats"]["mean"]
            .as_f64()
            .unwrap()
            > 140.0
    );
    assert!(judge["groupScores"][0]["score"].is_number());
    assert_eq!(
        s["canaryExecutionRequest"]["thresholds"],
        json!({"pass": 90, "marginal": 75})
    );
}

/// Spinnaker's canary stage: orca's calls, its body as its object mapper writes it, and
/// its reading of the results.
#[tokio::test(flavor = "multi_thread")]
async fn spinnaker_canary_stage_runs_against_augury() {
    let e = env().await;
    let http = reqwest::Client::new();
    for (experiment, expect_pass) in [("canary-good", true), ("canary-bad", false)] {
        let side = |scope: &str| {
            json!({"scope": scope, "location": "us-east-1", "start": e.start * 1000,
                   "end": e.end * 1000, "step": 60, "extendedScopeParams": {}})
        };
        let body = json!({
            "scopes": {"default": {"controlScope": side("baseline"), "experimentScope": side(experiment)}},
            "thresholds": {"pass": 90, "marginal": 75},
            "siteLocal": {},
        });
        let r = http
            .post(format!(
                "{}/canary/model:checkout-latency?application=checkout&parentPipelineExecutionId=01PIPE&metricsAccountName=prometheus-account&storageAccountName=gcs-storage",
                e.kayenta
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let created: Value = r.json().await.unwrap();
        let id = created["canaryExecutionId"]
            .as_str()
            .expect("a string, as orca casts it");

        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let results = loop {
            let r = http
                .get(format!(
                    "{}/canary/{id}?storageAccountName=gcs-storage",
                    e.kayenta
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            let results: Value = r.json().await.unwrap();
            // CanaryResults: complete and status and application are non-null.
            assert!(results["complete"].is_boolean(), "{results}");
            let status = results["status"].as_str().unwrap().to_uppercase();
            assert!(
                [
                    "RUNNING",
                    "SUCCEEDED",
                    "TERMINAL",
                    "CANCELED",
                    "NOT_STARTED"
                ]
                .contains(&status.as_str()),
                "{status} is an ExecutionStatus"
            );
            assert_eq!(results["application"], "checkout");
            assert_eq!(results["parentPipelineExecutionId"], "01PIPE");
            if status == "SUCCEEDED" {
                break results;
            }
            assert_eq!(status, "RUNNING", "{results}");
            assert!(std::time::Instant::now() < deadline, "not done in time");
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        let result = &results["result"];
        let score = &result["judgeResult"]["score"];
        // JudgeScore(score: Int, classification: String, classificationReason: String).
        let canary_score = score["score"].as_f64().unwrap() as i64;
        assert!(score["classification"].is_string() && score["classificationReason"].is_string());
        for entry in result["judgeResult"]["results"].as_array().unwrap() {
            assert!(
                entry["controlMetadata"]["stats"]["count"].is_u64(),
                "{entry}"
            );
        }
        assert!(result["canaryDuration"].as_str().unwrap().starts_with("PT"));
        for iso in ["buildTimeIso", "startTimeIso", "endTimeIso"] {
            let t = results[iso].as_str().unwrap();
            assert!(humantime::parse_rfc3339(t).is_ok(), "{iso}: {t}");
        }
        // The credentials, for the metrics account's type.
        let r = http
            .get(format!("{}/credentials", e.kayenta))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let credentials: Value = r.json().await.unwrap();
        for c in credentials.as_array().unwrap() {
            assert!(c["name"].is_string() && c["type"].is_string(), "{c}");
        }
        // MonitorKayentaCanaryTask: a score at most the marginal threshold fails the stage.
        let stage_passes = canary_score > 75;
        assert_eq!(
            stage_passes, expect_pass,
            "{experiment}: score {canary_score}"
        );
    }
}

/// Kayenta's error JSON: a message, and the status.
fn kayenta_error(code: u16, body: &Value, says: &str) {
    assert!(body["message"].is_string(), "{body}");
    assert_eq!(body["status"], code, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(says),
        "`{says}` not in {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_precise_4xx_in_kayentas_error_shape() {
    let e = env().await;
    let (start, end) = (go_time(e.start), go_time(e.end));
    let body = |control: &str, start: &str| {
        let m = metric("x", "canary-bad");
        let m = ArgoMetric { control, ..m };
        serde_json::from_str::<Value>(&argo_body(&m, start, &end)).unwrap()
    };

    let (code, b) = post(
        &e.http,
        &e.kayenta,
        "/canary/no-such-config",
        &body("baseline", &start),
    )
    .await;
    assert_eq!(code, 404);
    kayenta_error(404, &b, "no canary config `no-such-config`");

    let (code, b) = post(
        &e.http,
        &e.kayenta,
        "/canary/model:checkout-latency",
        &body("baseline", "last tuesday"),
    )
    .await;
    assert_eq!(code, 400);
    kayenta_error(400, &b, "RFC 3339");
    assert_eq!(b["field"], "scopes.default.controlScope.start");

    // A model whose scope names are not Kayenta's: a bare value does not map.
    let (code, b) = post(
        &e.http,
        &e.kayenta,
        "/canary/model:by-app",
        &body("baseline", &start),
    )
    .await;
    assert_eq!(code, 400);
    kayenta_error(400, &b, "bare value");
    assert!(
        b["message"].as_str().unwrap().contains("app, region"),
        "{b}"
    );
    // As name=value pairs it does.
    let mut pairs = body("app=baseline and region=us-east-1", &start);
    pairs["scopes"]["default"]["experimentScope"]["scope"] =
        json!("app=canary-bad, region=us-east-1");
    let (code, b) = post(&e.http, &e.kayenta, "/canary/model:by-app", &pairs).await;
    assert_eq!(code, 200, "{b}");

    // An OTLP model cannot look at the past.
    let mut otlp = body("service.name=checkout and service.version=1", &start);
    otlp["scopes"]["default"]["experimentScope"]["scope"] =
        json!("service.name=checkout and service.version=2");
    let (code, b) = post(&e.http, &e.kayenta, "/canary/model:http-red", &otlp).await;
    assert_eq!(code, 400);
    kayenta_error(400, &b, "Prometheus");

    let (code, b) = get(&e.http, &e.kayenta, "/canary/0000-unknown").await;
    assert_eq!(code, 404);
    kayenta_error(404, &b, "no canary execution `0000-unknown`");

    let (code, b) = get(&e.http, &e.kayenta, "/canaryConfig/nope").await;
    assert_eq!(code, 404);
    kayenta_error(404, &b, "no canary config");

    // Not JSON, and not declared JSON.
    let r = reqwest::Client::new()
        .post(format!("{}/canary/model:checkout-latency", e.kayenta))
        .body("scopes=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    kayenta_error(415, &r.json().await.unwrap(), "Content-Type");
    let r = reqwest::Client::new()
        .post(format!("{}/canary/model:checkout-latency", e.kayenta))
        .header("Content-Type", "application/json")
        .body("{\"scopes\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    kayenta_error(400, &r.json().await.unwrap(), "not valid JSON");
    // The wrong shape names the field.
    let (code, b) = post(
        &e.http,
        &e.kayenta,
        "/canary/model:checkout-latency",
        &json!({"scopes": []}),
    )
    .await;
    assert_eq!(code, 400);
    kayenta_error(400, &b, "request body");

    let (code, b) = get(&e.http, &e.kayenta, "/standalone_canary_analysis").await;
    assert_eq!(code, 404);
    kayenta_error(404, &b, "no route");

    // A config that is not one: refused with Kayenta's own words, nothing stored.
    let (code, b) = post(
        &e.http,
        &e.kayenta,
        "/canaryConfig",
        &json!({"name": "a b", "applications": ["x"]}),
    )
    .await;
    assert_eq!(code, 400);
    kayenta_error(400, &b, "Names must contain only letters");
    let (code, b) = post(
        &e.http,
        &e.kayenta,
        "/canaryConfig",
        &json!({"name": "ok", "applications": []}),
    )
    .await;
    assert_eq!(code, 400);
    kayenta_error(400, &b, "at least one application");
    let (code, b) = post(
        &e.http,
        &e.kayenta,
        "/canaryConfig",
        &json!({"name": "ok", "applications": ["x"], "id": "model:x"}),
    )
    .await;
    assert_eq!(code, 400);
    kayenta_error(400, &b, "name the daemon's models");
    let (code, _) = reqwest::Client::new()
        .delete(format!("{}/canaryConfig/nope", e.kayenta))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(code, 404);
}

/// A Kayenta canary config as Kayenta stores one: a Prometheus metric written as an
/// inline PromQL template over Kayenta's `${scope}` and `${location}`.
fn kayenta_config(name: &str) -> Value {
    json!({
        "name": name,
        "description": "Checkout latency, baseline against canary.",
        "configVersion": "1",
        "applications": ["checkout"],
        "judge": {"name": "NetflixACAJudge-v1.0", "judgeConfigurations": {}},
        "metrics": [{
            "name": "latency",
            "query": {
                "type": "prometheus",
                "serviceType": "prometheus",
                "customInlineTemplate": "PromQL:avg(latency_ms{app=\"${scope}\",region=\"${location}\"})"
            },
            "groups": ["latency"],
            "analysisConfigurations": {"canary": {"direction": "increase"}},
            "scopeName": "default"
        }],
        "classifier": {"groupWeights": {"latency": 100}},
        "templates": {}
    })
}

/// A Kayenta config stored through `/canaryConfig` (converted by
/// `kayenta::config::convert`, its metric becoming an inline `promql` source), listed,
/// replaced, run by Argo's provider by its name, and deleted.
#[tokio::test(flavor = "multi_thread")]
async fn a_stored_kayenta_config_is_converted_listed_and_run() {
    let e = env().await;
    let (code, b) = post(
        &e.http,
        &e.kayenta,
        "/canaryConfig",
        &kayenta_config("checkout-kayenta"),
    )
    .await;
    assert_eq!(code, 200, "{b}");
    let id = b["canaryConfigId"].as_str().unwrap().to_string();
    assert!(b["unmapped"].is_array(), "{b}");

    // Listed under its application, not under another.
    let (_, list) = get(&e.http, &e.kayenta, "/canaryConfig?application=checkout").await;
    let entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .expect("listed")
        .clone();
    assert_eq!(entry["name"], "checkout-kayenta");
    assert_eq!(entry["applications"], json!(["checkout"]));
    let (_, list) = get(&e.http, &e.kayenta, "/canaryConfig?application=other").await;
    assert!(
        !list
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == id.as_str())
    );
    let (code, stored) = get(&e.http, &e.kayenta, &format!("/canaryConfig/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!(stored["id"], id.as_str());
    assert!(stored["createdTimestamp"].is_i64() && stored["updatedTimestampIso"].is_string());

    // The same id again is a conflict; a PUT replaces it.
    let mut again = kayenta_config("checkout-kayenta");
    again["id"] = json!(id);
    let (code, b) = post(&e.http, &e.kayenta, "/canaryConfig", &again).await;
    assert_eq!(code, 409);
    kayenta_error(409, &b, "already exists");
    let r = reqwest::Client::new()
        .put(format!("{}/canaryConfig/{id}", e.kayenta))
        .json(&kayenta_config("checkout-kayenta"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    healthy_succeeds_and_regressed_fails(&e, "checkout-kayenta").await;

    let r = reqwest::Client::new()
        .delete(format!("{}/canaryConfig/{id}", e.kayenta))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (code, _) = get(&e.http, &e.kayenta, &format!("/canaryConfig/{id}")).await;
    assert_eq!(code, 404);
}
