//! Windows in the past: an analysis with `start` and `end` is judged at once from a real
//! Prometheus holding history, over exactly that window.
//!
//! The history is a busy service's: three versions of `checkout` (the baseline, a canary
//! that regressed during the window, a healthy canary), a point every 15 s for three
//! hours, written into TSDB blocks by `promtool` as an operator backfills. Values before
//! and after the window differ from those inside it on purpose (the regressed canary is
//! healthy before the window and far off after it), so a query that looked outside the
//! window would show it in the numbers the verdict reports.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::checkout::{self, STEP, Version, now_s, rfc3339};
use support::daemon::{Daemon, bin};
use support::http::{client, get, post};
use support::prometheus::Prometheus;

/// How much history Prometheus holds, ending a minute ago.
const HISTORY: i64 = 3 * 3600;
/// The window judged: 30 minutes, ending 40 minutes ago.
const WINDOW: i64 = 30 * 60;
const WINDOW_END_AGO: i64 = 40 * 60;

struct Env {
    _prometheus: Prometheus,
    daemon: Daemon,
    _dir: tempfile::TempDir,
    /// The window judged, (start, end], unix seconds on the history's grid.
    window: (i64, i64),
}

async fn env() -> Env {
    let last = (now_s() - 60) / STEP * STEP;
    let first = last - HISTORY;
    let end = last - WINDOW_END_AGO;
    let window = (end - WINDOW, end);
    let history = checkout::history(first, last, window);
    let prometheus = Prometheus::with_history(&history).await;
    let (dir, daemon) = checkout::daemon(&prometheus.url, "");
    Env {
        _prometheus: prometheus,
        daemon,
        _dir: dir,
        window,
    }
}

fn request(key: &str, canary: Version, window: (i64, i64)) -> Value {
    json!({
        "key": key,
        "model": "checkout-promql",
        "baseline": {"app": "checkout", "version": Version::Baseline.name()},
        "canary": {"app": "checkout", "version": canary.name()},
        "start": rfc3339(window.0),
        "end": rfc3339(window.1),
        "step": format!("{STEP}s"),
    })
}

/// `t` written at +01:00 (`...T11:00:00+01:00` for `...T10:00:00Z`).
fn offset_by_an_hour(t: i64) -> String {
    rfc3339(t + 3600).replace('Z', "+01:00")
}

fn metric<'a>(detail: &'a Value, name: &str) -> &'a Value {
    detail["judgment"]["metrics"]
        .as_array()
        .unwrap_or_else(|| panic!("no metrics in {detail}"))
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {detail}"))
}

/// The latencies of `v` at the points a range query over (start, end] at the step sees.
fn latencies(v: Version, window: (i64, i64)) -> Vec<f64> {
    ((window.0 + STEP)..=window.1)
        .step_by(STEP as usize)
        .map(|t| v.latency(t, window))
        .collect()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_in_the_past_is_judged_at_once_from_exactly_that_window() {
    let env = env().await;
    let points = (WINDOW / STEP) as u64;

    let regressed = env
        .daemon
        .create(request("regressed", Version::Regressed, env.window))
        .await;
    let healthy = env
        .daemon
        .create(request("healthy", Version::Healthy, env.window))
        .await;
    let regressed = env.daemon.decided(&regressed).await;
    let healthy = env.daemon.decided(&healthy).await;
    assert_eq!(
        regressed["status"], "fail",
        "{}",
        regressed["judgment"]["reasons"]
    );
    assert_eq!(
        healthy["status"], "pass",
        "{}",
        healthy["judgment"]["reasons"]
    );
    // One look over the whole window, as Kayenta judges it.
    assert_eq!(
        regressed["progress"]["intervals"], 1,
        "{}",
        regressed["progress"]
    );
    assert_eq!(
        healthy["progress"]["intervals"], 1,
        "{}",
        healthy["progress"]
    );

    // Exactly the window's points, with exactly the values the history has there: the
    // regressed canary's 9 s after the window and 0.1 s before it are not among them.
    for (detail, version) in [
        (&regressed, Version::Regressed),
        (&healthy, Version::Healthy),
    ] {
        let latency = metric(detail, "latency");
        for (side, v) in [("baseline", Version::Baseline), ("canary", version)] {
            let expected = latencies(v, env.window);
            let summary = &latency[side];
            assert_eq!(summary["count"], points, "{side}: {latency}");
            let max = expected.iter().copied().fold(f64::MIN, f64::max);
            let min = expected.iter().copied().fold(f64::MAX, f64::min);
            assert!(
                close(summary["max"].as_f64().unwrap(), max),
                "{side} max: {summary} vs {max}"
            );
            assert!(
                close(summary["min"].as_f64().unwrap(), min),
                "{side} min: {summary} vs {min}"
            );
        }
        let errors = metric(detail, "error-ratio");
        assert_eq!(errors["canary"]["count"], points, "{errors}");
    }
    assert_eq!(metric(&regressed, "latency")["classification"], "high");
    assert_eq!(metric(&regressed, "error-ratio")["classification"], "high");
    assert_eq!(metric(&healthy, "latency")["classification"], "pass");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interval_that_divides_the_window_judges_each_part_and_the_cli_waits_for_it() {
    let env = env().await;
    let mut body = request("in-parts", Version::Regressed, env.window);
    body["interval"] = json!("10m");
    let id = env.daemon.create(body).await;
    let detail = env.daemon.decided(&id).await;
    assert_eq!(
        detail["status"], "fail",
        "{}",
        detail["judgment"]["reasons"]
    );
    // Three intervals of 10 minutes, each judged as soon as its queries answered.
    assert_eq!(detail["progress"]["intervals"], 3, "{}", detail["progress"]);
    let ends: Vec<&str> = detail["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["end"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=3)
        .map(|k| rfc3339(env.window.0 + k * 600).replace('Z', ".000Z"))
        .collect();
    assert_eq!(ends, expected);
    let latency = metric(&detail, "latency");
    assert_eq!(
        latency["canary"]["count"],
        (WINDOW / STEP) as u64,
        "{latency}"
    );

    // The command a pipeline runs with its own timestamps: exit 1 on the regression,
    // 0 on the healthy canary.
    for (key, version, code) in [
        ("cli-regressed", Version::Regressed, 1),
        ("cli-healthy", Version::Healthy, 0),
    ] {
        let out = std::process::Command::new(bin())
            .args(["analyze", "--server", &env.daemon.api, "--key", key])
            .args(["--model", "checkout-promql"])
            .args(["--baseline", "app=checkout"])
            .args([
                "--baseline",
                &format!("version={}", Version::Baseline.name()),
            ])
            .args(["--canary", "app=checkout"])
            .args(["--canary", &format!("version={}", version.name())])
            .args([
                "--start",
                &rfc3339(env.window.0),
                "--end",
                &rfc3339(env.window.1),
            ])
            .args(["--step", "15s", "--wait", "--format", "json"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{key}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_cannot_look_back_is_refused_naming_it() {
    let env = env().await;
    let http = client(Duration::from_secs(10));
    let api = &env.daemon.api;
    let (start, end) = (rfc3339(env.window.0), rfc3339(env.window.1));
    // OTLP spans cannot be had for a time gone: the model's metrics are named.
    let (status, body) = post(
        &http,
        api,
        "/api/v1/analyses",
        &json!({"key": "otlp", "model": "http-red",
            "baseline": {"service.name": "checkout", "service.version": "1"},
            "canary": {"service.name": "checkout", "service.version": "2"},
            "start": start, "end": end}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let message = body.to_string();
    assert!(
        message.contains("`latency` (OTLP spans)") && message.contains("`error-rate` (OTLP spans)"),
        "{body}"
    );
    let cases = [
        (
            json!({"lifetime": "30m"}),
            "lifetime",
            "not with `start` and `end`",
        ),
        (json!({"end": null}), "end", "`start` needs an `end`"),
        (
            json!({"start": "yesterday"}),
            "start",
            "not an RFC 3339 time",
        ),
        (
            json!({"end": start}),
            "end",
            "not at least 1s after the start",
        ),
        (
            json!({"interval": "7m"}),
            "interval",
            "does not divide the window",
        ),
        (json!({"step": "0s"}), "step", "shorter than 1s"),
    ];
    for (patch, field, says) in cases {
        let mut body = request("bad", Version::Healthy, env.window);
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        let (status, answer) = post(&http, api, "/api/v1/analyses", &body).await;
        assert_eq!(status, 400, "{patch}: {answer}");
        let text = answer.to_string();
        assert!(
            text.contains(field) && text.contains(says),
            "{patch}: {answer}"
        );
    }
    // Nothing was created by the refusals.
    let (status, list) = get(&http, api, "/api/v1/analyses").await;
    assert_eq!(status, 200);
    assert_eq!(list["analyses"].as_array().unwrap().len(), 0, "{list}");

    // The window is part of the request a key stands for: the same window written in
    // another offset is the same request, another window is a conflict.
    let body = request("same-key", Version::Healthy, env.window);
    let (status, first) = post(&http, api, "/api/v1/analyses", &body).await;
    assert_eq!(status, 201, "{first}");
    let mut again = body.clone();
    again["end"] = json!(offset_by_an_hour(env.window.1));
    again["step"] = json!("15000ms");
    let (status, same) = post(&http, api, "/api/v1/analyses", &again).await;
    assert_eq!((status, &same["id"]), (200, &first["id"]), "{same}");
    // Ten minutes earlier, as long: only the times differ.
    let mut other = body.clone();
    other["start"] = json!(rfc3339(env.window.0 - 600));
    other["end"] = json!(rfc3339(env.window.1 - 600));
    let (status, conflict) = post(&http, api, "/api/v1/analyses", &other).await;
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["code"], "key_conflict", "{conflict}");
}
