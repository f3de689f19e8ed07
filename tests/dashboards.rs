//! The Grafana dashboards and alert rules in `dashboards/` stay true to what Augury
//! exports: a real Prometheus scrapes a running `augury serve` with live analyses, and
//! every panel's PromQL (template variables filled in) must return data through
//! Prometheus' HTTP API. A query that names a metric Augury does not export fails.
//! The alert rules pass `promtool check rules` and their unit tests.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use support::daemon::{Daemon, workdir};
use support::prometheus::Prometheus;
use support::traffic::feed;

const DASHBOARDS: [&str; 3] = ["augury-overview", "augury-analysis", "augury-health"];

fn dashboards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

fn dashboard(name: &str) -> Value {
    let path = dashboards_dir().join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `(dashboard, panel title, expr)`.
fn queries() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for name in DASHBOARDS {
        for p in dashboard(name)["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                out.push((
                    name.to_string(),
                    p["title"].as_str().unwrap().to_string(),
                    t["expr"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    out
}

/// `augury_*` names a query or rule uses.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("augury_") {
        let start = i + at;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        names.push(expr[start..end].to_string());
        i = end;
    }
    names
}

#[test]
fn dashboards_are_grafana_10_json_with_a_datasource_variable_and_units() {
    for name in DASHBOARDS {
        let d = dashboard(name);
        assert_eq!(d["uid"], name, "{name}: uid");
        assert!(
            d["schemaVersion"].as_u64().unwrap() >= 38,
            "{name}: schemaVersion"
        );
        let vars = d["templating"]["list"].as_array().unwrap();
        let ds = vars.iter().find(|v| v["name"] == "datasource").unwrap();
        assert_eq!(
            (ds["type"].as_str(), ds["query"].as_str()),
            (Some("datasource"), Some("prometheus"))
        );
        let mut ids = Vec::new();
        for p in d["panels"].as_array().unwrap() {
            let title = p["title"].as_str().unwrap();
            ids.push(p["id"].as_u64().unwrap());
            assert!(
                p["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .is_some_and(|u| !u.is_empty()),
                "{name}/{title}: no unit"
            );
            let refs = std::iter::once(&p["datasource"]).chain(
                p["targets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| &t["datasource"]),
            );
            for r in refs {
                assert_eq!(
                    r,
                    &json!({"type": "prometheus", "uid": "${datasource}"}),
                    "{name}/{title}"
                );
            }
        }
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            d["panels"].as_array().unwrap().len(),
            "{name}: panel ids repeat"
        );
        // No hard-coded datasource: every uid in the file is the variable or a dashboard's.
        let text = std::fs::read_to_string(dashboards_dir().join(format!("{name}.json"))).unwrap();
        for (at, _) in text.match_indices("\"uid\": ") {
            let value = &text[at + 7..].split('"').nth(1).unwrap();
            assert!(
                *value == "${datasource}" || DASHBOARDS.contains(value),
                "{name}: hard-coded uid {value}"
            );
        }
    }
    let analysis = dashboard("augury-analysis");
    let vars = analysis["templating"]["list"].as_array().unwrap();
    assert!(
        vars.iter()
            .any(|v| v["name"] == "analysis" && v["type"] == "query")
    );
}

#[test]
fn alert_rules_pass_promtool() {
    let dir = dashboards_dir();
    for args in [
        vec!["check", "rules", "augury.rules.yml"],
        vec!["test", "rules", "augury.rules.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(&dir)
            .output()
            .expect("promtool runs (Debian package `prometheus`; scripts/test installs it)");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

const PROBE_PACK: &str = r#"name: probe
description: Queries over Augury's own metrics, so the test needs no other exporter.
queries:
  requests:
    kind: counts
    requests: sum(increase(augury_http_requests_total{job="{{ job }}"}[{{ interval }}]))
    errors: sum(increase(augury_http_requests_total{job="{{ job }}", code="404"}[{{ interval }}]))
  broken:
    kind: counts
    requests: sum(increase(augury_http_requests_total{job="{{ job }}"[{{ interval }}]))
    errors: sum(increase(augury_http_requests_total{job="{{ job }}", code="404"}[{{ interval }}]))
"#;

const PROBE_MODEL: &str = r#"name: probe
scope: [job]
metrics:
  - name: requests
    kind: error-ratio
    source: {prometheus: {pack: probe, query: requests}}
  - name: broken
    kind: error-ratio
    source: {prometheus: {pack: probe, query: broken}}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_returns_data_from_a_live_daemon() {
    // Prometheus finds the daemon through a file it watches, written once the daemon
    // has bound its port.
    let sd = tempfile::tempdir().unwrap();
    let targets = sd.path().join("targets.json");
    std::fs::write(&targets, "[]").unwrap();
    let prometheus = Prometheus::start(
        &[],
        &format!(
            "  - job_name: augury\n    file_sd_configs:\n      - files: [\"{}\"]\n        refresh_interval: 1s\n",
            targets.display()
        ),
    )
    .await;

    // A webhook receiver, so notifications flow.
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = hook.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            hook,
            axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" })),
        )
        .await
    });

    let (_dir, path) = workdir("");
    std::fs::create_dir(path.join("models")).unwrap();
    std::fs::create_dir(path.join("queries")).unwrap();
    std::fs::write(path.join("models/probe.yaml"), PROBE_MODEL).unwrap();
    std::fs::write(path.join("queries/probe.yaml"), PROBE_PACK).unwrap();
    std::fs::write(
        path.join("augury.yaml"),
        format!(
            "models: {models}\nqueries: {queries}\nprometheus: {{url: \"{prom}\"}}\n\
             notifiers:\n  hook: {{type: webhook, url: \"http://{hook_addr}/hook\", secret: s3cret}}\n\
             default_notify: [hook]\n",
            models = path.join("models").display(),
            queries = path.join("queries").display(),
            prom = prometheus.url,
        ),
    )
    .unwrap();
    let augury = Daemon::in_dir(&path).start();
    let api = augury.api.trim_start_matches("http://").to_string();
    std::fs::write(&targets, json!([{"targets": [api]}]).to_string()).unwrap();

    // Live analyses: one running on OTLP spans, one failing, one on Prometheus queries.
    let otlp = |key: &str, canary: &str| {
        json!({"key": key, "model": "http-red",
               "baseline": {"service.name": "shop", "service.version": "1"},
               "canary": {"service.name": "shop", "service.version": canary},
               "interval": "1s", "lifetime": "1h"})
    };
    let live = augury.create(otlp("live", "2")).await;
    let _failing = augury.create(otlp("failing", "3")).await;
    let _probe = augury
        .create(
            json!({"key": "probe", "model": "probe", "baseline": {"job": "augury"},
                       "canary": {"job": "augury-canary"}, "interval": "1s", "lifetime": "1h"}),
        )
        .await;
    let feeding = feed(&augury, "shop", &[("1", 0.02), ("2", 0.02), ("3", 0.3)]);

    let fill = |expr: &str| {
        expr.replace("$analysis", &live)
            .replace("$__rate_interval", "1m")
            .replace("$__range", "1h")
    };
    let all = queries();
    let mut empty: Vec<(String, String, String, Value)> = Vec::new();
    // Bounded: data shows up within a few scrapes and intervals.
    for _ in 0..240 {
        empty.clear();
        for (d, title, expr) in &all {
            let body = prometheus.instant(&fill(expr), None).await;
            if body["data"]["result"]
                .as_array()
                .is_none_or(|r| r.is_empty())
            {
                empty.push((d.clone(), title.clone(), fill(expr), body));
            }
        }
        if empty.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    feeding.abort();
    assert!(
        empty.is_empty(),
        "panels without data:\n{}",
        empty
            .iter()
            .map(|(d, t, e, b)| format!("{d} / {t}: {e}\n  -> {b}"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    // The analysis variable (`label_values(augury_analysis_score, analysis)`) offers the
    // live analysis.
    let offered = prometheus
        .instant("group by (analysis) (augury_analysis_score)", None)
        .await;
    assert!(
        offered["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["metric"]["analysis"] == live.as_str()),
        "{offered}"
    );

    // Every metric a panel or rule names is one Augury exports.
    let exposition = augury.metrics().await;
    let rules = std::fs::read_to_string(dashboards_dir().join("augury.rules.yml")).unwrap();
    let mut names: Vec<String> = all.iter().flat_map(|(_, _, e)| metric_names(e)).collect();
    names.extend(metric_names(&rules));
    names.sort();
    names.dedup();
    for name in names {
        assert!(
            exposition
                .lines()
                .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} "))),
            "`{name}` is not in Augury's /metrics"
        );
    }
}

#[test]
fn metric_names_are_read_from_queries() {
    // What the exposition check of the live test looks up.
    assert_eq!(
        metric_names("sum(rate(augury_not_a_metric_total[5m])) / augury_analyses"),
        vec!["augury_not_a_metric_total", "augury_analyses"]
    );
}
