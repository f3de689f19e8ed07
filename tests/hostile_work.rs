//! Bounded work per request and per analysis, against the real `augury` binary over real
//! HTTP (and, where a limit must be set small, the in-process API server): models past
//! the metric limit, analyses past the OTLP watch limits, `early_pass` in idempotency,
//! scope maps naming a key twice, a one-shot judgment whose request timed out, and
//! `/healthz` while the judging pool is saturated.
// A test panics on a broken setup: that is its failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use std::time::{Duration, Instant};

use augury::api::Limits;
use augury::model::MAX_METRICS;
use augury::windows::DEFAULT_MAX_WATCHES_PER_ANALYSIS;
use serde_json::{Value, json};
use support::daemon::Daemon;
use support::http::{client, get, post};

/// An inline model of `n` distribution metrics, each with its own OTLP span name (so each
/// needs a watch pair of its own).
fn model(n: usize) -> Value {
    let metrics: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("m{i}"), "source": {"otlp": {"span_name": format!("op-{i}")}}}))
        .collect();
    json!({"name": "wide", "metrics": metrics})
}

fn analysis(key: &str, model: Value) -> Value {
    json!({"key": key, "model": model,
           "baseline": {"service.name": "checkout", "service.version": "1"},
           "canary": {"service.name": "checkout", "service.version": "2"},
           "interval": "1h", "lifetime": "7d"})
}

fn daemon() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::on(&dir.path().join("a.db")).start();
    (dir, d)
}

#[tokio::test]
async fn a_model_past_the_metric_limit_is_refused_naming_the_limit() {
    let (_dir, d) = daemon();
    let http = client(Duration::from_secs(60));
    let limit = MAX_METRICS.to_string();
    let over = model(MAX_METRICS + 1);
    let (status, body) = post(
        &http,
        &d.api,
        "/api/v1/judge",
        &json!({"model": over, "metrics": {}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "model", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&limit),
        "{body}"
    );
    let (status, body) = post(&http, &d.api, "/api/v1/analyses", &analysis("big", over)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&limit),
        "{body}"
    );
    // At the limit, the model is accepted.
    let (status, body) = post(
        &http,
        &d.api,
        "/api/v1/judge",
        &json!({"model": model(MAX_METRICS), "metrics": {}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn an_analysis_needing_more_watches_than_one_may_hold_is_refused() {
    let (_dir, d) = daemon();
    let http = client(Duration::from_secs(60));
    // Two watches per distinct span filter.
    let filters = DEFAULT_MAX_WATCHES_PER_ANALYSIS / 2 + 1;
    let (status, body) = post(
        &http,
        &d.api,
        "/api/v1/analyses",
        &analysis("wide", model(filters)),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["field"], "model", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&DEFAULT_MAX_WATCHES_PER_ANALYSIS.to_string()),
        "{body}"
    );
    // One filter fewer fits.
    let (status, body) = post(
        &http,
        &d.api,
        "/api/v1/analyses",
        &analysis("fits", model(filters - 1)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn creates_past_the_global_watch_budget_are_refused_until_one_ends() {
    let (_dir, d) = daemon();
    let http = client(Duration::from_secs(60));
    // The daemon's budget is 8,192 watches; each of these analyses takes the most one may.
    let widest = model(DEFAULT_MAX_WATCHES_PER_ANALYSIS / 2);
    let mut ids = Vec::new();
    let refused = loop {
        let key = format!("wide-{}", ids.len());
        let (status, body) = post(
            &http,
            &d.api,
            "/api/v1/analyses",
            &analysis(&key, widest.clone()),
        )
        .await;
        if status != 201 {
            break (status, body);
        }
        ids.push(body["id"].as_str().unwrap().to_string());
        assert!(
            ids.len() <= 8192 / DEFAULT_MAX_WATCHES_PER_ANALYSIS,
            "never refused"
        );
    };
    let (status, body) = refused;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "watch_budget_spent", "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("8192"),
        "{body}"
    );
    assert_eq!(ids.len(), 8192 / DEFAULT_MAX_WATCHES_PER_ANALYSIS);
    // Every accepted analysis got its watches (the gauge is refreshed every second).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = d.metrics().await;
        if metrics.contains("augury_otlp_watches 8192") {
            break;
        }
        assert!(Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Asking again for an analysis that exists needs no new watches: it is answered,
    // budget spent or not.
    let (status, body) = post(
        &http,
        &d.api,
        "/api/v1/analyses",
        &analysis("wide-0", widest.clone()),
    )
    .await;
    assert_eq!(
        (status, body["id"].as_str()),
        (200, Some(ids[0].as_str())),
        "{body}"
    );
    // One ends: its watches come back and a create fits again.
    let r = reqwest::Client::new()
        .delete(format!("{}/api/v1/analyses/{}", d.api, ids[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = post(
            &http,
            &d.api,
            "/api/v1/analyses",
            &analysis("after", widest.clone()),
        )
        .await;
        if status == 201 {
            break;
        }
        assert_eq!(status, 503, "{body}");
        assert!(
            Instant::now() < deadline,
            "the cancelled analysis's watches never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_different_early_pass_under_the_same_key_is_a_conflict() {
    let (_dir, d) = daemon();
    let http = client(Duration::from_secs(30));
    let sequential = json!({"name": "seq", "metrics": [
        {"name": "errors", "kind": "error-ratio", "test": "sequential", "equivalence_margin": 0.25}]});
    let mut first = analysis("rollout-7", sequential);
    first["lifetime"] = json!("1h");
    first["early_pass"] = json!({"min_duration": "5m"});
    let (status, body) = post(&http, &d.api, "/api/v1/analyses", &first).await;
    assert_eq!(status, 201, "{body}");
    // The same request again, the duration spelled otherwise: the same analysis.
    let mut same = first.clone();
    same["early_pass"] = json!({"min_duration": "300s"});
    let (status, body) = post(&http, &d.api, "/api/v1/analyses", &same).await;
    assert_eq!(status, 200, "{body}");
    let mut other = first.clone();
    other["early_pass"] = json!({"min_duration": "10m"});
    let (status, body) = post(&http, &d.api, "/api/v1/analyses", &other).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "key_conflict", "{body}");
    let mut without = first.clone();
    without.as_object_mut().unwrap().remove("early_pass");
    let (status, body) = post(&http, &d.api, "/api/v1/analyses", &without).await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test]
async fn a_scope_naming_a_key_twice_is_refused_naming_it() {
    let (_dir, d) = daemon();
    let body = r#"{"key": "dup", "model": "http-red",
        "baseline": {"service.name": "checkout", "service.version": "1"},
        "canary": {"service.name": "checkout", "service.version": "2", "service.version": "3"}}"#;
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/analyses", d.api))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]["field"].as_str().unwrap().starts_with("canary"),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`service.version`"),
        "{v}"
    );
    // Nothing was created under the key.
    let (status, _) = get(
        &client(Duration::from_secs(10)),
        &d.api,
        "/api/v1/analyses?limit=10",
    )
    .await;
    assert_eq!(status, 200);
    let list = d.get("/api/v1/analyses").await;
    assert_eq!(list["analyses"].as_array().unwrap().len(), 0, "{list}");
}

/// A one-shot judgment of the largest model with plenty of samples per metric.
fn heavy_judge(samples: usize) -> Value {
    let mut metrics = serde_json::Map::new();
    for i in 0..MAX_METRICS {
        let b: Vec<f64> = (0..samples).map(|k| (k * 7 % 101) as f64).collect();
        let c: Vec<f64> = (0..samples).map(|k| (k * 13 % 103) as f64).collect();
        metrics.insert(format!("m{i}"), json!({"baseline": b, "canary": c}));
    }
    json!({"model": model(MAX_METRICS), "metrics": metrics})
}

/// The value of an unlabelled series in a text exposition.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_judge_request_that_times_out_stops_its_work() {
    let server = common::start_with(common::Options {
        limits: Limits {
            body_bytes: 64 << 20,
            request_timeout: Duration::from_millis(200),
            ..Limits::default()
        },
        ..Default::default()
    })
    .await;
    let body = heavy_judge(2000);
    let http = client(Duration::from_secs(120));
    let (status, answer) = post(&http, &server.base, "/api/v1/judge", &body).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"]["code"], "timeout", "{answer}");
    // The judgment was told to stop and gave its slot back.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = server.metrics_text().await;
        let abandoned = series(&text, "augury_judge_abandoned_total").expect("abandoned series");
        let in_flight = series(&text, "augury_judge_in_flight").expect("in-flight series");
        if abandoned >= 1.0 && in_flight == 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "abandoned {abandoned}, in flight {in_flight}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn healthz_answers_while_the_judging_pool_is_saturated() {
    let (_dir, d) = daemon();
    // About 0.6 MiB: under the body limit.
    let body = heavy_judge(60);
    let http = client(Duration::from_secs(300));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // More clients than the pool has slots keep it full (the rest are refused with 503
    // and Retry-After) until /healthz has been asked.
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (http, api, body, stop) = (http.clone(), d.api.clone(), body.clone(), stop.clone());
            tokio::spawn(async move {
                let mut answers = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = http
                        .post(format!("{api}/api/v1/judge"))
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    let retry = r.headers().get("retry-after").is_some();
                    answers.push((r.status().as_u16(), retry));
                }
                answers
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = d.metrics().await;
        if series(&text, "augury_judge_in_flight").unwrap_or(0.0) >= 1.0 {
            // Judging is under way: liveness must still answer.
            let (status, health) = get(&client(Duration::from_secs(5)), &d.api, "/healthz").await;
            assert_eq!(status, 200, "{health}");
            break;
        }
        assert!(Instant::now() < deadline, "no judgment started");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut judged = 0;
    for c in clients {
        for (status, retry) in c.await.unwrap() {
            assert!(status == 200 || (status == 503 && retry), "{status}");
            judged += usize::from(status == 200);
        }
    }
    assert!(judged >= 1);
}
