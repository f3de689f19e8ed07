//! The conversations rollout controllers have with Augury, replayed over HTTP on
//! 127.0.0.1 against a real server (in process, or the `augury serve` binary where the
//! runner and the notification deliverer take part).
//!
//! What is sent is what the controllers' own code sends:
//! - Flagger (`pkg/controller/webhook.go`): a POST of `CanaryWebhookPayload`, `{"name",
//!   "namespace", "phase", "checksum", "metadata"}` with the hook's metadata, where `name`
//!   is the Canary object's; before v1.34 without `checksum`. Which hooks it calls when
//!   (`scheduler_hooks.go`, `scheduler.go`): `rollback` every iteration while Progressing,
//!   rolling back when it answers 2xx; `rollout` and `confirm-promotion` during the
//!   analysis; `post-rollout` once with phase `Succeeded` or `Failed`.
//! - Argo Rollouts' Web provider: the AnalysisTemplate's `jsonBody`, its `{{args.*}}`
//!   replaced (JSON-escaped) by the run's arguments, which the Rollout's analysis step
//!   resolves when the AnalysisRun is created (`value`, `podTemplateHashValue`,
//!   `fieldRef` on the Rollout's metadata), POSTed at every measurement; after an abort
//!   it sends nothing more.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use augury::analysis::Status;
use augury::ingest::prometheus::{PackCatalog, Templates};
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use common::{Options, start, start_with};
use support::contracts::pagerduty_problems;
use support::daemon::{Daemon, workdir};

const GATE: &str = "/api/v1/gates/flagger";
const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12";

// ---- Flagger --------------------------------------------------------------------------

/// The body Flagger posts: `CanaryWebhookPayload` as Go marshals it (`metadata` left out
/// when the hook has none; `checksum` absent before v1.34).
fn flagger(name: &str, phase: &str, checksum: Option<&str>, metadata: &Value) -> Value {
    let mut p = json!({"name": name, "namespace": "test", "phase": phase});
    if let Some(c) = checksum {
        p["checksum"] = json!(c);
    }
    if metadata.as_object().is_some_and(|m| !m.is_empty()) {
        p["metadata"] = metadata.clone();
    }
    p
}

/// Flagger on Istio: the gate fills the workload scope only (`<target>` and
/// `<target>-primary`), which `istio` refuses for want of a version; `istio-workload`
/// takes it, and its queries select Istio's destination-reported series of each
/// Deployment by `destination_workload`, as Flagger's own Istio checks do.
#[tokio::test]
async fn flagger_on_istio_judges_its_two_workloads() {
    let s = start_with(Options {
        packs: Some(PackCatalog::builtin()),
        ..Options::default()
    })
    .await;
    let checksum = Some("6b8f7d9c4");
    let (code, v) = s
        .post(
            GATE,
            &flagger(
                "podinfo",
                "Progressing",
                checksum,
                &json!({"model": "istio"}),
            ),
        )
        .await;
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`version`")
    );

    let meta = json!({"model": "istio-workload", "lifetime": "5m"});
    let (code, v) = s
        .post(GATE, &flagger("podinfo", "Progressing", checksum, &meta))
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["analysis"]["status"], "running");
    let id = v["analysis"]["id"].as_str().unwrap();
    let (_, d) = s.get(&format!("/api/v1/analyses/{id}")).await;
    let baseline = &d["request"]["baseline"];
    let canary = &d["request"]["canary"];
    assert_eq!(
        baseline,
        &json!({"namespace": "test", "workload": "podinfo-primary"})
    );
    assert_eq!(canary, &json!({"namespace": "test", "workload": "podinfo"}));

    // Each metric's PromQL, rendered for the two sides, selects what Istio exports.
    let packs = PackCatalog::builtin();
    let metrics = d["model"]["metrics"].as_array().unwrap();
    assert!(!metrics.is_empty());
    for metric in metrics {
        let source = &metric["source"]["prometheus"];
        let query = packs
            .get(source["pack"].as_str().unwrap())
            .and_then(|p| p.query(source["query"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("no query for {metric}"));
        let templates = match &query.templates {
            Templates::Counts { requests, errors } => vec![requests, errors],
            Templates::One(t) => vec![t],
        };
        for (side, scope) in [("podinfo-primary", baseline), ("podinfo", canary)] {
            let mut vars: BTreeMap<String, String> = serde_json::from_value(scope.clone()).unwrap();
            vars.insert("interval".into(), "30s".into());
            vars.insert("step".into(), "30s".into());
            for t in &templates {
                let promql = t.render(&vars, "q").unwrap();
                let squashed: String = promql.split_whitespace().collect();
                assert!(squashed.contains("reporter=\"destination\""), "{promql}");
                assert!(
                    squashed.contains(&format!("destination_workload=\"{side}\"")),
                    "{promql}"
                );
                assert!(
                    squashed.contains("destination_workload_namespace=\"test\""),
                    "{promql}"
                );
                assert!(!promql.contains("destination_version"), "{promql}");
                assert!(promql.contains("istio_request"), "{promql}");
            }
        }
    }
    s.assert_serving().await;
}

/// Flagger before v1.34 sends no checksum. Each of its rollouts is still one analysis of
/// its own: the calls of one rollout share it, and `post-rollout` ends it.
#[tokio::test]
async fn flagger_without_checksum_judges_each_rollout_afresh() {
    let s = start().await;
    let meta = json!({"model": "errors", "lifetime": "2m"});
    let rollout = flagger("podinfo", "Progressing", None, &meta);
    let (code, v) = s.post(GATE, &rollout).await;
    assert_eq!(code, 200, "{v}");
    let first = v["analysis"]["id"].as_str().unwrap().to_string();
    let key = v["analysis"]["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("flagger/test/podinfo/"), "{key}");

    // The same rollout's next calls find it; it fails and Flagger is refused.
    s.record(&first, Status::Fail, 90).await;
    let (code, v) = s.post(GATE, &rollout).await;
    assert_eq!(
        (code, v["analysis"]["id"].as_str()),
        (409, Some(first.as_str()))
    );

    // Flagger rolls back and calls post-rollout: the decided analysis stays as it is.
    let (code, v) = s
        .post(
            &format!("{GATE}?mode=post-rollout"),
            &flagger("podinfo", "Failed", None, &meta),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["analysis"]["status"], "fail");
    // Flagger retries a webhook that did not answer in time: a repeat ends nothing more.
    let (code, v) = s
        .post(
            &format!("{GATE}?mode=post-rollout"),
            &flagger("podinfo", "Failed", None, &meta),
        )
        .await;
    assert_eq!((code, &v["analysis"]), (200, &Value::Null), "{v}");

    // The next rollout is a new analysis, running.
    let (code, v) = s.post(GATE, &rollout).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["analysis"]["status"], "running");
    let second = v["analysis"]["id"].as_str().unwrap();
    assert_ne!(second, first);
    assert_ne!(v["analysis"]["key"].as_str().unwrap(), key);
    let (_, again) = s.post(GATE, &rollout).await;
    assert_eq!(again["analysis"]["id"].as_str(), Some(second));
    // Its post-rollout finds it: the repeat above did not move past it.
    let (code, v) = s
        .post(
            &format!("{GATE}?mode=post-rollout"),
            &flagger("podinfo", "Succeeded", None, &meta),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["analysis"]["id"].as_str(), Some(second));
    assert_eq!(v["analysis"]["status"], "cancelled");
    s.assert_serving().await;
}

/// The Canary `checkout-canary` rolls out the Deployment `checkout`: Flagger's payload
/// names the Canary, and metadata `target` names the workloads.
#[tokio::test]
async fn flagger_target_metadata_names_the_workloads() {
    let s = start().await;
    let meta = json!({"model": "errors", "target": "checkout"});
    let (code, v) = s
        .post(
            GATE,
            &flagger("checkout-canary", "Progressing", Some("c0ffee"), &meta),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["analysis"]["key"], "flagger/test/checkout-canary/c0ffee");
    let id = v["analysis"]["id"].as_str().unwrap();
    let (_, d) = s.get(&format!("/api/v1/analyses/{id}")).await;
    assert_eq!(
        d["request"]["baseline"],
        json!({"namespace": "test", "workload": "checkout-primary"})
    );
    assert_eq!(
        d["request"]["canary"],
        json!({"namespace": "test", "workload": "checkout"})
    );
    // Without it, the Canary's name is the workload's, as before.
    let (_, v) = s
        .post(
            GATE,
            &flagger(
                "checkout",
                "Progressing",
                Some("c0ffee"),
                &json!({"model": "errors"}),
            ),
        )
        .await;
    let id = v["analysis"]["id"].as_str().unwrap();
    let (_, d) = s.get(&format!("/api/v1/analyses/{id}")).await;
    assert_eq!(d["request"]["baseline"]["workload"], "checkout-primary");
    let (code, v) = s
        .post(
            GATE,
            &flagger(
                "other",
                "Progressing",
                Some("c0ffee"),
                &json!({"model": "errors", "target": " "}),
            ),
        )
        .await;
    assert_eq!(
        (code, v["error"]["field"].as_str()),
        (400, Some("metadata.target"))
    );
}

/// Flagger's `rollback` hook rolls back when it answers 2xx: the gate says so once the
/// canary failed, and answers non-2xx (no rollback) while it runs or after it passed.
#[tokio::test]
async fn flagger_rollback_hook_rolls_back_a_failed_canary_only() {
    let s = start().await;
    let rollback = format!("{GATE}?mode=rollback");
    let meta = json!({"model": "errors", "lifetime": "2m"});
    let (code, v) = s
        .post(
            &rollback,
            &flagger("podinfo", "Progressing", Some("r1"), &meta),
        )
        .await;
    assert_eq!(code, 412, "{v}");
    assert_eq!(v["allowed"], false);
    assert_eq!(v["mode"], "rollback");
    let id = v["analysis"]["id"].as_str().unwrap().to_string();
    s.record(&id, Status::Fail, 90).await;
    let (code, v) = s
        .post(
            &rollback,
            &flagger("podinfo", "Progressing", Some("r1"), &meta),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["allowed"], true);
    assert!(
        v["reason"].as_str().unwrap().starts_with("roll back"),
        "{v}"
    );

    let mut by_metadata = meta.clone();
    by_metadata["mode"] = json!("rollback");
    let (_, v) = s
        .post(
            GATE,
            &flagger("podinfo", "Progressing", Some("r2"), &by_metadata),
        )
        .await;
    let id = v["analysis"]["id"].as_str().unwrap().to_string();
    s.record(&id, Status::Pass, 10).await;
    let (code, _) = s
        .post(
            GATE,
            &flagger("podinfo", "Progressing", Some("r2"), &by_metadata),
        )
        .await;
    assert_eq!(code, 412, "a passed canary is not rolled back");
}

// ---- Local PagerDuty ------------------------------------------------------------------

/// Every event the local PagerDuty got, with what it broke of the contract.
type Received = Arc<Mutex<Vec<(Value, Vec<String>)>>>;

/// A PagerDuty Events API v2 endpoint on 127.0.0.1: checks each event against the
/// documented contract and answers as PagerDuty does (202, or 400 for an invalid event),
/// and hands every event to the test with what it broke.
struct PagerDuty {
    url: String,
    events: Received,
    rx: mpsc::UnboundedReceiver<Value>,
}

#[derive(Clone)]
struct PdState {
    events: Received,
    tx: mpsc::UnboundedSender<Value>,
}

async fn pd_enqueue(State(state): State<PdState>, body: axum::body::Bytes) -> (u16, &'static str) {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let problems = pagerduty_problems(&v);
    let valid = problems.is_empty();
    state.events.lock().unwrap().push((v.clone(), problems));
    let _ = state.tx.send(v);
    if valid {
        (
            202,
            r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#,
        )
    } else {
        (
            400,
            r#"{"status":"invalid event","message":"Event object is invalid"}"#,
        )
    }
}

impl PagerDuty {
    async fn start() -> PagerDuty {
        let (tx, rx) = mpsc::unbounded_channel();
        let events = Arc::new(Mutex::new(Vec::new()));
        let state = PdState {
            events: Arc::clone(&events),
            tx,
        };
        let app = Router::new()
            .route(
                "/v2/enqueue",
                post(|s: State<PdState>, b: axum::body::Bytes| async move {
                    let (code, text) = pd_enqueue(s, b).await;
                    (axum::http::StatusCode::from_u16(code).unwrap(), text)
                }),
            )
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        PagerDuty {
            url: format!("http://{addr}/v2/enqueue"),
            events,
            rx,
        }
    }

    /// The first event about analysis `id` with `action`, received or to come; fails the
    /// test after 60 s.
    async fn wait_for(&mut self, action: &str, id: &str) -> Value {
        let is = |v: &Value| v["event_action"] == action && v["dedup_key"] == id;
        loop {
            if let Some((v, problems)) = self.events.lock().unwrap().iter().find(|(v, _)| is(v)) {
                assert!(
                    problems.is_empty(),
                    "invalid PagerDuty event {v}: {problems:?}"
                );
                return v.clone();
            }
            tokio::time::timeout(Duration::from_secs(60), self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no PagerDuty {action} for {id} within 60 s"))
                .expect("receiver closed");
        }
    }

    fn actions_for(&self, id: &str) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(v, _)| v["dedup_key"] == id)
            .map(|(v, _)| v["event_action"].as_str().unwrap_or("").to_string())
            .collect()
    }
}

/// `augury serve` notifying the local PagerDuty on every analysis.
fn daemon_with_pagerduty(pd: &PagerDuty) -> (tempfile::TempDir, Daemon) {
    let config = format!(
        "notifiers:\n  \
           pd: {{type: pagerduty, routing_key: \"{ROUTING_KEY}\", events_url: \"{}\"}}\n\
         default_notify: [pd]\n\
         notify_delivery: {{initial_backoff: 100ms, max_backoff: 1s, timeout: 5s, max_attempts: 5}}\n",
        pd.url
    );
    let (dir, path) = workdir(&config);
    let daemon = Daemon::in_dir(&path).start();
    (dir, daemon)
}

async fn post_json(http: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = http.post(url).json(body).send().await.unwrap();
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{code} {e}: {text}")),
    )
}

/// Flagger rolls a canary back (another check failed, or a person did) and calls
/// `post-rollout` with phase `Failed`: the running analysis is cancelled, and PagerDuty
/// is told to resolve, never to page about a canary that is gone.
#[tokio::test]
async fn flagger_post_rollout_cancels_the_analysis_and_pagerduty_resolves() {
    let mut pd = PagerDuty::start().await;
    let (_dir, augury) = daemon_with_pagerduty(&pd);
    let http = reqwest::Client::new();
    let gate = format!("{}{GATE}", augury.api);
    let meta = json!({"workload_scope": "service.name",
        "baseline.service.version": "1.4.1", "canary.service.version": "1.4.2",
        "interval": "1s", "lifetime": "1h"});
    let (code, v) = post_json(
        &http,
        &gate,
        &flagger("podinfo", "Progressing", Some("5f1d"), &meta),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let id = v["analysis"]["id"].as_str().unwrap().to_string();

    let (code, v) = post_json(
        &http,
        &format!("{gate}?mode=post-rollout"),
        &flagger("podinfo", "Failed", Some("5f1d"), &meta),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["mode"], "post-rollout");
    assert_eq!(v["analysis"]["id"], id.as_str());
    assert_eq!(v["analysis"]["status"], "cancelled");
    assert!(v["reason"].as_str().unwrap().contains("Failed"), "{v}");

    let resolve = pd.wait_for("resolve", &id).await;
    assert_eq!(resolve["routing_key"], ROUTING_KEY);
    assert_eq!(pd.actions_for(&id), ["resolve"], "nobody was paged");
    let detail = augury.detail(&id).await;
    assert_eq!(detail["status"], "cancelled");
    assert_eq!(detail["notifications"][0]["event"], "cancelled");

    // A post-rollout of a revision Augury never saw creates nothing.
    let (code, v) = post_json(
        &http,
        &format!("{gate}?mode=post-rollout"),
        &flagger("podinfo", "Succeeded", Some("0ther"), &meta),
    )
    .await;
    assert_eq!((code, &v["analysis"]), (200, &Value::Null), "{v}");
    let list = augury.get("/api/v1/analyses").await;
    assert_eq!(list["analyses"].as_array().unwrap().len(), 1);
}

// ---- Argo Rollouts --------------------------------------------------------------------

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What a Rollout's analysis step passes as the run's arguments when Argo creates the
/// AnalysisRun (`BuildArgumentsForRolloutAnalysisRun`): a `value`, a pod-template hash,
/// or a `fieldRef` into the Rollout's metadata (a missing annotation is empty).
fn run_args(rollout: &Value, stable: &str, latest: &str) -> BTreeMap<String, String> {
    let step = rollout["spec"]["strategy"]["canary"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s.get("analysis").is_some())
        .expect("an analysis step");
    let mut args = BTreeMap::new();
    for arg in step["analysis"]["args"].as_array().unwrap() {
        let name = arg["name"].as_str().unwrap().to_string();
        let from = &arg["valueFrom"];
        let value = if let Some(v) = arg["value"].as_str() {
            v.to_string()
        } else if let Some(which) = from["podTemplateHashValue"].as_str() {
            match which {
                "Stable" => stable.to_string(),
                "Latest" => latest.to_string(),
                other => panic!("podTemplateHashValue {other}"),
            }
        } else {
            let path = from["fieldRef"]["fieldPath"].as_str().unwrap();
            let meta = &rollout["metadata"];
            match path {
                "metadata.name" | "metadata.namespace" => meta[&path["metadata.".len()..]]
                    .as_str()
                    .unwrap()
                    .to_string(),
                p if p.starts_with("metadata.annotations['") => {
                    let key = &p["metadata.annotations['".len()..p.len() - 2];
                    meta["annotations"][key].as_str().unwrap_or("").to_string()
                }
                other => panic!("fieldRef {other} is not replayed here"),
            }
        };
        args.insert(name, value);
    }
    args
}

/// The Web provider's body for one AnalysisRun: the template's `jsonBody` with every
/// `{{args.NAME}}` replaced by the run's argument (template defaults, then the Rollout's),
/// JSON-escaped as `ResolveQuotedArgs` does. Secrets are stood in for.
fn web_body(template: &Value, run: &BTreeMap<String, String>) -> Value {
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    for arg in template["spec"]["args"].as_array().unwrap() {
        let name = arg["name"].as_str().unwrap();
        if let Some(v) = arg["value"].as_str() {
            args.insert(name.into(), v.into());
        }
        if arg["valueFrom"].get("secretKeyRef").is_some() {
            args.insert(name.into(), "secret-token".into());
        }
    }
    args.extend(run.iter().map(|(k, v)| (k.clone(), v.clone())));
    let web = &template["spec"]["metrics"][0]["provider"]["web"];
    let mut text = serde_json::to_string(&web["jsonBody"]).unwrap();
    for (name, value) in &args {
        let quoted = serde_json::to_string(value).unwrap();
        text = text.replace(
            &format!("{{{{args.{name}}}}}"),
            &quoted[1..quoted.len() - 1],
        );
    }
    assert!(!text.contains("{{"), "an argument the run lacks: {text}");
    serde_json::from_str(&text).unwrap()
}

/// `kubectl argo rollouts retry` after a failed analysis: with the attempt annotation
/// bumped as the example says, the retried AnalysisRun's measurements start a new
/// analysis instead of getting the old `fail` back.
#[tokio::test]
async fn argo_retry_with_the_attempt_bumped_is_judged_afresh() {
    let template = yaml("examples/argo/analysis-template.yaml");
    let mut rollout = yaml("examples/argo/rollout.yaml");
    let s = start().await;

    let first = web_body(&template, &run_args(&rollout, "6d5f7c9b8", "7c9f8d6b4"));
    let (code, v) = s.post("/api/v1/analyses", &first).await;
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    s.record(&id, Status::Fail, 90).await;
    let (code, v) = s.post("/api/v1/analyses", &first).await;
    assert_eq!((code, v["status"].as_str()), (200, Some("fail")));
    // Cancelling the decided analysis is no way out.
    let (code, _) = s.delete(&format!("/api/v1/analyses/{id}")).await;
    assert_eq!(code, 409);

    // Retried without the bump: the same run arguments, the same verdict.
    let same = web_body(&template, &run_args(&rollout, "6d5f7c9b8", "7c9f8d6b4"));
    assert_eq!(same, first);

    // The documented retry: bump the annotation, then retry; Argo creates the new run.
    rollout["metadata"]["annotations"]["augury.dev/attempt"] = json!("2");
    let retried = web_body(&template, &run_args(&rollout, "6d5f7c9b8", "7c9f8d6b4"));
    let (code, v) = s.post("/api/v1/analyses", &retried).await;
    assert_eq!(code, 201, "a fresh analysis: {v}");
    assert_eq!(v["status"], "running");
    assert_ne!(v["id"].as_str(), Some(id.as_str()));
    let (code, again) = s.post("/api/v1/analyses", &retried).await;
    assert_eq!((code, &again["id"]), (200, &v["id"]));
}

/// Argo aborts a rollout and stops measuring; the Web provider has no call to say so.
/// With the example's `abandon_after`, the analysis runs while measurements come, then
/// is cancelled once none came for that many intervals, and PagerDuty resolves.
#[tokio::test]
async fn argo_abort_leaves_an_analysis_nobody_polls_and_it_is_cancelled() {
    let template = yaml("examples/argo/analysis-template.yaml");
    let rollout = yaml("examples/argo/rollout.yaml");
    let mut body = web_body(&template, &run_args(&rollout, "6d5f7c9b8", "7c9f8d6b4"));
    let abandon_after = body["abandon_after"].as_u64().expect("abandon_after");
    // The template's body at a test's pace: one-second intervals, a long lifetime.
    body["interval"] = json!("1s");
    body["lifetime"] = json!("1h");

    let mut pd = PagerDuty::start().await;
    let (_dir, augury) = daemon_with_pagerduty(&pd);
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/analyses", augury.api);
    let (code, v) = post_json(&http, &url, &body).await;
    assert_eq!(code, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();

    // Measuring: the analysis runs on past `abandon_after` intervals while asked for.
    let mut interval = tokio::time::interval(Duration::from_millis(200));
    loop {
        interval.tick().await;
        let (code, v) = post_json(&http, &url, &body).await;
        assert_eq!((code, v["status"].as_str()), (200, Some("running")), "{v}");
        if v["progress"]["intervals"].as_u64().unwrap() > abandon_after + 2 {
            break;
        }
    }
    // Aborted: no more measurements. The list does not count as asking.
    pd.wait_for("resolve", &id).await;
    let cancelled = augury.get("/api/v1/analyses?status=cancelled").await;
    assert_eq!(cancelled["analyses"][0]["id"], id.as_str(), "{cancelled}");
    assert_eq!(pd.actions_for(&id), ["resolve"]);
    let logged = augury.log_json();
    assert!(
        logged.iter().any(|l| l["fields"]["analysis"] == id.as_str()
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("nobody asked"))),
        "the cancel is logged with its reason"
    );

    // A request without `abandon_after` is never abandoned; a bad value is refused.
    let mut bad = body.clone();
    bad["key"] = json!("argo/bad");
    bad["abandon_after"] = json!(1);
    let (code, v) = post_json(&http, &url, &bad).await;
    assert_eq!(
        (code, v["error"]["field"].as_str()),
        (400, Some("abandon_after"))
    );
}
