//! Notifications end to end: the real `augury serve` binary decides analyses from OTLP
//! spans and notifies local receivers that stand in for Slack, PagerDuty and a signed
//! webhook. Each receiver checks every payload against what the real service requires
//! and answers as it does (or, on demand, 429, 500, 400).
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use support::contracts::{is_str, pagerduty_problems};
use support::daemon::{Daemon, workdir};
use support::traffic::feed;

const SLACK_PATH: &str = "/services/T000/B000/slacksecrettoken";
const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12";
const HOOK_SECRET: &str = "hook-signing-secret-42";

/// One request a receiver got, and whether it met the service's contract.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    body: Value,
    /// The body as it came, for signatures.
    raw: Bytes,
    headers: HeaderMap,
    /// Contract violations found in the request (empty when it is valid).
    problems: Vec<String>,
    /// What the receiver answered.
    answered: u16,
}

/// A forced answer: status, body, `Retry-After`.
type Reply = (u16, &'static str, Option<&'static str>);

#[derive(Default)]
struct ReceiverState {
    script: Mutex<std::collections::HashMap<String, VecDeque<Reply>>>,
    log: Mutex<Vec<Received>>,
    tx: Mutex<Option<mpsc::UnboundedSender<Received>>>,
}

/// Slack, PagerDuty and a webhook receiver on one local port: `/slack/...`, `/pd`, `/hook`.
struct Receivers {
    base: String,
    state: Arc<ReceiverState>,
    rx: mpsc::UnboundedReceiver<Received>,
}

impl Receivers {
    async fn start() -> Receivers {
        let (tx, rx) = mpsc::unbounded_channel();
        let state = Arc::new(ReceiverState::default());
        *state.tx.lock().unwrap() = Some(tx);
        let app = Router::new()
            .route("/{service}", post(receive))
            .route("/{service}/{*rest}", post(receive_nested))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receivers {
            base: format!("http://{addr}"),
            state,
            rx,
        }
    }

    /// The next answers of `service`, in order, before it goes back to accepting.
    fn script(&self, service: &str, replies: &[Reply]) {
        self.state
            .script
            .lock()
            .unwrap()
            .entry(service.to_string())
            .or_default()
            .extend(replies.iter().copied());
    }

    /// The next request to arrive (any service); fails the test after 60 s.
    async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(60), self.rx.recv())
            .await
            .expect("no notification within 60 s")
            .expect("receiver closed")
    }

    /// The first request, received so far or to come, for which `pick` holds.
    async fn next_where(&mut self, pick: impl Fn(&Received) -> bool) -> Received {
        loop {
            if let Some(r) = self.all().into_iter().find(&pick) {
                return r;
            }
            self.next().await;
        }
    }

    /// Back to answering as the real service does.
    fn unscript(&self, service: &str) {
        self.state.script.lock().unwrap().remove(service);
    }

    fn all(&self) -> Vec<Received> {
        self.state.log.lock().unwrap().clone()
    }

    fn config(&self) -> String {
        format!(
            "notifiers:\n  \
               slack: {{type: slack, url: \"{base}/slack{SLACK_PATH}\", events: [started, failed, passed, inconclusive, cancelled]}}\n  \
               pd: {{type: pagerduty, routing_key: \"${{PD_KEY}}\", events_url: \"{base}/pd\"}}\n  \
               hook: {{type: webhook, url: \"{base}/hook\", secret: \"${{HOOK_SECRET}}\", events: [started, failed, passed, inconclusive, cancelled, superseded]}}\n\
             public_url: https://augury.example.test\n\
             grafana_url: https://grafana.example.test\n\
             notify_delivery: {{initial_backoff: 100ms, max_backoff: 2s, timeout: 5s, max_attempts: 5}}\n",
            base = self.base
        )
    }
}

const ENV: [(&str, &str); 2] = [("PD_KEY", ROUTING_KEY), ("HOOK_SECRET", HOOK_SECRET)];

async fn receive_nested(
    State(state): State<Arc<ReceiverState>>,
    Path((service, _rest)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, service, headers, body)
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    Path(service): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, service, headers, body)
}

fn handle(state: Arc<ReceiverState>, service: String, headers: HeaderMap, body: Bytes) -> Response {
    let (json, mut problems) = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => (v, Vec::new()),
        Err(e) => (Value::Null, vec![format!("body is not JSON: {e}")]),
    };
    if json.is_object() {
        problems.extend(match service.as_str() {
            "slack" => slack_problems(&json),
            "pd" => pagerduty_problems(&json),
            "hook" => webhook_problems(&headers, &body),
            // Checked by the Standard Webhooks reference library in the test itself.
            "standard" => Vec::new(),
            other => vec![format!("unknown service {other}")],
        });
    }
    let forced = state
        .script
        .lock()
        .unwrap()
        .get_mut(&service)
        .and_then(|q| q.pop_front());
    let (status, response) = match (forced, service.as_str()) {
        (Some((code, text, retry_after)), _) => {
            let mut r = (StatusCode::from_u16(code).unwrap(), text.to_string()).into_response();
            if let Some(ra) = retry_after {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            (code, r)
        }
        // The real services' answers to an invalid payload.
        (None, "slack") if !problems.is_empty() => {
            (400, (StatusCode::BAD_REQUEST, "invalid_payload").into_response())
        }
        (None, "pd") if !problems.is_empty() => (
            400,
            (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"status": "invalid event", "message": "Event object is invalid", "errors": problems.clone()})),
            )
                .into_response(),
        ),
        (None, "slack") => (200, (StatusCode::OK, "ok").into_response()),
        (None, "pd") => (
            202,
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({"status": "success", "message": "Event processed",
                                  "dedup_key": json["dedup_key"]})),
            )
                .into_response(),
        ),
        (None, _) => (200, (StatusCode::OK, "").into_response()),
    };
    let received = Received {
        service,
        body: json,
        raw: body,
        headers,
        problems,
        answered: status,
    };
    state.log.lock().unwrap().push(received.clone());
    if let Some(tx) = state.tx.lock().unwrap().as_ref() {
        let _ = tx.send(received);
    }
    response
}

/// Slack incoming webhooks: `text` (string) and optional `blocks`, each a typed block
/// within Slack's size limits.
fn slack_problems(v: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if !is_str(&v["text"]) {
        p.push("text: missing or not a string".into());
    }
    match v.get("blocks") {
        None => {}
        Some(Value::Array(blocks)) => {
            if blocks.len() > 50 {
                p.push("blocks: more than 50".into());
            }
            for (i, b) in blocks.iter().enumerate() {
                let kind = b["type"].as_str().unwrap_or("");
                if !["header", "section", "context", "divider", "actions"].contains(&kind) {
                    p.push(format!("blocks[{i}].type: `{kind}`"));
                }
                if kind == "header"
                    && (b["text"]["type"] != "plain_text"
                        || b["text"]["text"]
                            .as_str()
                            .is_none_or(|t| t.chars().count() > 150))
                {
                    p.push(format!(
                        "blocks[{i}]: header needs plain_text up to 150 chars"
                    ));
                }
                if kind == "section" && b.get("text").is_none() && b.get("fields").is_none() {
                    p.push(format!("blocks[{i}]: section without text or fields"));
                }
                if let Some(fields) = b["fields"].as_array()
                    && (fields.len() > 10
                        || fields
                            .iter()
                            .any(|f| f["text"].as_str().is_none_or(|t| t.chars().count() > 2000)))
                {
                    p.push(format!("blocks[{i}].fields: at most 10 of 2000 chars"));
                }
            }
        }
        Some(_) => p.push("blocks: not an array".into()),
    }
    // `&`, `<` and `>` are control characters in mrkdwn: outside a link `<url|label>`
    // they must come as `&amp;`, `&lt;`, `&gt;`.
    let mut texts = vec![v["text"].as_str().unwrap_or("").to_string()];
    if let Some(blocks) = v["blocks"].as_array() {
        for b in blocks {
            if b["type"] == "header" {
                continue;
            }
            let mut found = Vec::new();
            collect_mrkdwn(b, &mut found);
            texts.extend(found);
        }
    }
    for t in texts {
        if let Some(bad) = unescaped(&t) {
            p.push(format!("mrkdwn text with an unescaped `{bad}`: {t}"));
        }
    }
    p
}

fn collect_mrkdwn(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            if o.get("type").and_then(Value::as_str) == Some("mrkdwn")
                && let Some(t) = o.get("text").and_then(Value::as_str)
            {
                out.push(t.to_string());
            }
            o.values().for_each(|x| collect_mrkdwn(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_mrkdwn(x, out)),
        _ => {}
    }
}

/// The first control character of `text` that is neither part of a link
/// (`<http…|label>`) nor an entity.
fn unescaped(text: &str) -> Option<char> {
    let mut rest = text;
    while let Some(at) = rest.find(['&', '<', '>']) {
        let tail = &rest[at..];
        if tail.starts_with("<http") {
            let end = tail.find('>')?;
            rest = &tail[end + 1..];
        } else if ["&amp;", "&lt;", "&gt;"]
            .iter()
            .any(|e| tail.starts_with(e))
        {
            rest = &tail[1..];
        } else {
            return tail.chars().next();
        }
    }
    None
}

/// HMAC-SHA256 written out here from its definition (RFC 2104), so the check does not
/// lean on the crate the daemon signs with.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The receiver side of docs/notifications.md: recompute the signature over
/// `<timestamp>.<body>`, compare, and refuse timestamps more than 5 minutes away.
fn webhook_problems(headers: &HeaderMap, body: &[u8]) -> Vec<String> {
    let mut p = Vec::new();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let Some(timestamp) = header("x-augury-timestamp") else {
        return vec!["X-Augury-Timestamp missing".into()];
    };
    let Some(signature) = header("x-augury-signature") else {
        return vec!["X-Augury-Signature missing".into()];
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    match timestamp.parse::<i64>() {
        Ok(t) if (now - t).abs() <= 300 => {}
        _ => p.push(format!(
            "X-Augury-Timestamp `{timestamp}` is not within 5 minutes"
        )),
    }
    let mut signed = timestamp.as_bytes().to_vec();
    signed.push(b'.');
    signed.extend_from_slice(body);
    let expected: String = hmac_sha256(HOOK_SECRET.as_bytes(), &signed)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if signature != format!("sha256={expected}") {
        p.push(format!("signature `{signature}` does not verify"));
    }
    if header("x-augury-delivery").is_none() {
        p.push("X-Augury-Delivery missing".into());
    }
    p
}

fn request(key: &str, canary: &str, lifetime: &str, notify: &[&str]) -> Value {
    json!({"key": key, "model": "http-red",
           "baseline": {"service.name": "checkout", "service.version": "1.4.1"},
           "canary": {"service.name": "checkout", "service.version": canary},
           "interval": "1s", "lifetime": lifetime, "notify": notify})
}

fn notifications(detail: &Value) -> Vec<Value> {
    detail["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls the analysis detail until `done` holds for its notifications (bounded).
async fn wait_notifications(a: &Daemon, id: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..600 {
        let n = notifications(&a.detail(id).await);
        if done(&n) {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "notifications of {id} never reached the expected state: {}",
        a.detail(id).await
    );
}

fn secrets_absent(text: &str, what: &str) {
    for secret in [ROUTING_KEY, HOOK_SECRET, "slacksecrettoken"] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_pagerduty_and_webhook_get_valid_payloads_for_each_event() {
    let mut rx = Receivers::start().await;
    let (_dir, path) = workdir(&rx.config());
    let augury = Daemon::in_dir(&path).envs(&ENV).start();

    // A canary with 20x the baseline's errors fails on its first interval.
    let failing = augury
        .create(request(
            "checkout<1.4.2>&co",
            "1.4.2",
            "1h",
            &["slack", "pd", "hook"],
        ))
        .await;
    let feeding = feed(&augury, "checkout", &[("1.4.1", 0.01), ("1.4.2", 0.2)]);

    let started = rx.next_where(|r| r.service == "slack").await;
    assert!(
        started.body["text"].as_str().unwrap().contains("started"),
        "{:?}",
        started.body
    );
    let trigger = rx.next_where(|r| r.service == "pd").await;
    let slack = rx
        .next_where(|r| r.service == "slack" && r.body["text"].as_str().unwrap().contains("failed"))
        .await;
    let hook = rx
        .next_where(|r| r.service == "hook" && r.body["event"] == "failed")
        .await;
    feeding.abort();

    // PagerDuty: a trigger keyed by the analysis, critical because a critical metric failed.
    assert!(trigger.problems.is_empty(), "{:?}", trigger.problems);
    assert_eq!(trigger.answered, 202);
    assert_eq!(trigger.body["event_action"], "trigger");
    assert_eq!(trigger.body["dedup_key"], failing.as_str());
    let payload = &trigger.body["payload"];
    assert_eq!(payload["severity"], "critical");
    assert_eq!(payload["source"], "augury");
    assert_eq!(payload["component"], "checkout");
    assert!(
        payload["summary"]
            .as_str()
            .unwrap()
            .contains("1.4.1 → 1.4.2")
    );
    let reasons = payload["custom_details"]["reasons"].as_array().unwrap();
    assert!(
        reasons
            .iter()
            .any(|r| r.as_str().unwrap().contains("error-rate")
                && r.as_str().unwrap().chars().any(|c| c.is_ascii_digit())),
        "reasons with their numbers: {reasons:?}"
    );

    // Slack: text and blocks with verdict, versions, score, reasons and both links.
    assert!(slack.problems.is_empty(), "{:?}", slack.problems);
    assert_eq!(slack.answered, 200);
    let blocks = serde_json::to_string(&slack.body["blocks"]).unwrap();
    for needle in [
        "fail",
        "service.version=1.4.2",
        "Score",
        "error-rate",
        &format!("https://augury.example.test/api/v1/analyses/{failing}"),
        &format!(
            "https://grafana.example.test/d/augury-analysis/augury-analysis?var-analysis={failing}"
        ),
    ] {
        assert!(blocks.contains(needle), "`{needle}` not in {blocks}");
    }

    // Webhook: signed (checked by the receiver), the full verdict in the body.
    assert!(hook.problems.is_empty(), "{:?}", hook.problems);
    assert_eq!(hook.body["analysis"]["id"], failing.as_str());
    assert_eq!(hook.body["analysis"]["status"], "fail");
    assert!(hook.body["analysis"]["metrics"].as_array().unwrap().len() >= 2);
    assert_eq!(
        hook.headers["x-augury-delivery"].to_str().unwrap(),
        format!("{failing}:hook:failed")
    );

    // The detail shows each notification delivered once, without secrets.
    let n = wait_notifications(&augury, &failing, |n| {
        n.len() == 5 && n.iter().all(|x| x["state"] == "delivered")
    })
    .await;
    let events: Vec<(String, String)> = n
        .iter()
        .map(|x| {
            (
                x["notifier"].as_str().unwrap().into(),
                x["event"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [
        ("slack", "started"),
        ("hook", "started"),
        ("slack", "failed"),
        ("pd", "failed"),
        ("hook", "failed"),
    ] {
        assert!(
            events.contains(&(expected.0.into(), expected.1.into())),
            "{events:?}"
        );
    }
    assert!(n.iter().all(|x| x["attempts"] == 1));
    secrets_absent(
        &augury.detail(&failing).await.to_string(),
        "the analysis detail",
    );
    let openapi = augury.get("/api/v1/openapi.json").await;
    assert!(openapi["components"]["schemas"]["NotificationView"].is_object());

    // A later passing analysis of the same canary supersedes the failed one: PagerDuty
    // resolves the incident with the same dedup_key.
    let passing = augury
        .create(request("checkout@1.4.3", "1.4.3", "2s", &["pd", "hook"]))
        .await;
    let feeding = feed(&augury, "checkout", &[("1.4.1", 0.01), ("1.4.3", 0.01)]);
    let resolve = rx
        .next_where(|r| r.service == "pd" && r.body["event_action"] == "resolve")
        .await;
    feeding.abort();
    assert!(resolve.problems.is_empty(), "{:?}", resolve.problems);
    assert_eq!(resolve.body["dedup_key"], failing.as_str());
    let superseded = rx
        .next_where(|r| r.service == "hook" && r.body["event"] == "superseded")
        .await;
    assert_eq!(superseded.body["superseded_by"], passing.as_str());
    assert_eq!(augury.detail(&passing).await["status"], "pass");

    // Cancelling resolves too.
    let cancelled = augury
        .create(request("checkout@1.4.4", "1.4.4", "1h", &["pd"]))
        .await;
    let r = reqwest::Client::new()
        .delete(format!("{}/api/v1/analyses/{cancelled}", augury.api))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let resolve = rx
        .next_where(|r| r.service == "pd" && r.body["dedup_key"] == cancelled.as_str())
        .await;
    assert_eq!(resolve.body["event_action"], "resolve");

    // Nothing was refused, no trigger was sent twice, and no secret reached the logs.
    let all = rx.all();
    assert!(all.iter().all(|r| r.problems.is_empty()));
    let triggers = all
        .iter()
        .filter(|r| r.service == "pd" && r.body["event_action"] == "trigger")
        .count();
    assert_eq!(triggers, 1);
    let metrics = augury.metrics().await;
    assert!(
        metrics.contains("augury_notifications_total{notifier=\"pd\",result=\"delivered\"} 3"),
        "{metrics}"
    );
    secrets_absent(&augury.log_text(), "the log");
    assert!(
        !augury.log_text().contains("not recorded"),
        "every attempt is recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_notifiers_are_refused_naming_the_field() {
    let rx = Receivers::start().await;
    let (_dir, path) = workdir(&rx.config());
    let augury = Daemon::in_dir(&path).envs(&ENV).start();
    let r = reqwest::Client::new()
        .post(format!("{}/api/v1/analyses", augury.api))
        .json(&request("k", "2", "1h", &["slack", "nope"]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["field"], "notify", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`nope`")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_until_accepted_once_and_never_retries_a_400() {
    let rx = Receivers::start().await;
    // The webhook fails twice (500, then 429 with Retry-After), then accepts; Slack
    // refuses the payload for good.
    rx.script(
        "hook",
        &[(500, "busy", None), (429, "slow down", Some("1"))],
    );
    rx.script("slack", &[(400, "invalid_payload", None)]);
    let (_dir, path) = workdir(&rx.config().replace("started, ", ""));
    let augury = Daemon::in_dir(&path).envs(&ENV).start();
    let id = augury
        .create(request("checkout@2", "2.0.0", "1h", &["hook", "slack"]))
        .await;
    let feeding = feed(&augury, "checkout", &[("1.4.1", 0.01), ("2.0.0", 0.2)]);
    let n = wait_notifications(&augury, &id, |n| {
        n.len() == 2 && n.iter().all(|x| x["state"] != "pending")
    })
    .await;
    feeding.abort();
    let hook = n.iter().find(|x| x["notifier"] == "hook").unwrap();
    assert_eq!(hook["state"], "delivered", "{hook}");
    assert_eq!(hook["attempts"], 3);
    let slack = n.iter().find(|x| x["notifier"] == "slack").unwrap();
    assert_eq!(
        slack["state"],
        "failed",
        "{slack} {:?}",
        rx.all()
            .iter()
            .map(|r| (&r.service, r.answered))
            .collect::<Vec<_>>()
    );
    assert_eq!(slack["attempts"], 1);
    assert_eq!(slack["last_status"], 400);
    assert!(
        slack["last_error"]
            .as_str()
            .unwrap()
            .contains("invalid_payload")
    );

    let all = rx.all();
    let answers = |service: &str| -> Vec<u16> {
        all.iter()
            .filter(|r| r.service == service)
            .map(|r| r.answered)
            .collect()
    };
    assert_eq!(
        answers("hook"),
        vec![500, 429, 200],
        "accepted exactly once"
    );
    assert_eq!(answers("slack"), vec![400], "a 400 is not retried");
    // The same delivery id on every attempt, so a receiver can deduplicate.
    let ids: Vec<_> = all
        .iter()
        .filter(|r| r.service == "hook")
        .map(|r| r.headers["x-augury-delivery"].clone())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    let metrics = augury.metrics().await;
    for line in [
        "augury_notifications_total{notifier=\"hook\",result=\"retry\"} 2",
        "augury_notifications_total{notifier=\"hook\",result=\"delivered\"} 1",
        "augury_notifications_total{notifier=\"slack\",result=\"failed\"} 1",
        "augury_notifications_pending 0",
    ] {
        assert!(metrics.contains(line), "`{line}` missing:\n{metrics}");
    }
    assert!(
        !augury.log_text().contains("not recorded"),
        "every attempt is recorded"
    );
    drop(rx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_notifications_survive_kill_9_and_go_out_exactly_once() {
    let mut rx = Receivers::start().await;
    // The webhook is down (503) when the verdict is reached...
    rx.script("hook", &[(503, "down", None); 1000]);
    let config = rx
        .config()
        .replace(
            "[started, failed, passed, inconclusive, cancelled, superseded]",
            "[failed, passed, inconclusive, cancelled, superseded]",
        )
        .replace("initial_backoff: 100ms", "initial_backoff: 1s");
    let (_dir, path) = workdir(&config);
    // Every start is on the same database: a restart.
    let daemon = Daemon::in_dir(&path).envs(&ENV);
    let augury = daemon.start();
    let id = augury
        .create(request("checkout@3", "3.0.0", "1h", &["hook"]))
        .await;
    let feeding = feed(&augury, "checkout", &[("1.4.1", 0.01), ("3.0.0", 0.2)]);
    let refused = rx.next_where(|r| r.body["event"] == "failed").await;
    feeding.abort();
    assert_eq!(refused.answered, 503);
    // ... and the daemon dies before it delivers.
    augury.kill9();
    rx.unscript("hook");

    // After the restart the verdict's notification goes out, once.
    let augury = daemon.start();
    let delivered = rx
        .next_where(|r| r.body["event"] == "failed" && r.answered == 200)
        .await;
    assert_eq!(delivered.answered, 200);
    assert!(delivered.problems.is_empty(), "{:?}", delivered.problems);
    let n = wait_notifications(&augury, &id, |n| {
        n.iter()
            .any(|x| x["event"] == "failed" && x["state"] == "delivered")
    })
    .await;
    let failed = n.iter().find(|x| x["event"] == "failed").unwrap();
    // The refusal answered just before the kill may not have been recorded: attempts
    // count what the store committed.
    let refusals = rx.all().iter().filter(|r| r.answered == 503).count() as u64;
    let attempts = failed["attempts"].as_u64().unwrap();
    assert!((1..=refusals + 1).contains(&attempts), "{failed}");
    augury.kill9();

    // Another crash and restart: what was delivered is not sent again. The deliverer
    // sends rows oldest first, so once a newer notification has arrived, an old one
    // that was going to be re-sent would have arrived before it.
    let augury = daemon.start();
    let marker = augury
        .create(request("checkout@4", "4.0.0", "1h", &["slack"]))
        .await;
    let next = rx.next_where(|r| r.service == "slack").await;
    assert!(next.body["text"].as_str().unwrap().contains("started"));
    assert!(serde_json::to_string(&next.body).unwrap().contains(&marker));
    let failed_deliveries = rx
        .all()
        .iter()
        .filter(|r| r.body["event"] == "failed" && r.answered == 200)
        .count();
    assert_eq!(failed_deliveries, 1, "delivered exactly once");
    assert_eq!(augury.terminate().code(), Some(0));
}

/// Python with the Standard Webhooks reference library: `AUGURY_TEST_PYTHON`, else the
/// venv `scripts/test` makes.
fn reference_python() -> std::path::PathBuf {
    let path = std::env::var_os("AUGURY_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-tests/bin/python")
        });
    assert!(
        path.is_file(),
        "{} not found: run scripts/test, which installs the Standard Webhooks reference \
         library (PyPI `standardwebhooks`, pinned) into .venv-tests/ and sets AUGURY_TEST_PYTHON",
        path.display()
    );
    path
}

/// What the reference library says of `body` and `headers` for each secret: "ok" or why
/// it refused.
fn verify_with_reference(secrets: &[&str], headers: &HeaderMap, body: &[u8]) -> Vec<String> {
    const VERIFY: &str = "
import json, sys
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
d = json.load(sys.stdin)
out = []
for secret in d['secrets']:
    try:
        Webhook(secret).verify(d['body'], d['headers'])
        out.append('ok')
    except WebhookVerificationError as e:
        out.append('refused: %s' % e)
print(json.dumps(out))
";
    let headers: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap().into()))
        .collect();
    let input = json!({"secrets": secrets, "headers": headers,
                       "body": std::str::from_utf8(body).unwrap()});
    let mut child = std::process::Command::new(reference_python())
        .args(["-c", VERIFY])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "reference verifier failed");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_webhooks_signatures_verify_with_the_reference_library_during_a_rotation() {
    // Two secrets while the receiver moves from the old to the new one; both schemes on.
    const NEW: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OLD: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const OTHER: &str = "whsec_Zm9yZ2VkLWJ5LXNvbWVvbmUtZWxzZS0xMjM0";
    let mut rx = Receivers::start().await;
    let config = rx.config().replace(
        "notifiers:\n",
        &format!(
            "notifiers:\n  standard: {{type: webhook, url: \"{}/standard\", \
             secrets: [\"${{NEW_SECRET}}\", \"${{OLD_SECRET}}\"], signature: both, \
             events: [started, cancelled]}}\n",
            rx.base
        ),
    );
    let (_dir, path) = workdir(&config);
    let augury = Daemon::in_dir(&path)
        .envs(&ENV)
        .envs(&[("NEW_SECRET", NEW), ("OLD_SECRET", OLD)])
        .start();
    let id = augury
        .create(request("rotating", "2.0.0", "1h", &["standard"]))
        .await;
    let started = rx.next_where(|r| r.service == "standard").await;
    assert_eq!(started.answered, 200);
    assert_eq!(started.body["event"], "started");

    // The specification's headers; the id is the delivery id, the same on every attempt.
    let h = |name: &str| started.headers[name].to_str().unwrap().to_string();
    assert_eq!(h("webhook-id"), format!("{id}:standard:started"));
    assert_eq!(h("webhook-id"), h("x-augury-delivery"));
    assert_eq!(h("webhook-timestamp"), h("x-augury-timestamp"));
    assert_eq!(
        h("webhook-signature").split(' ').count(),
        2,
        "one per secret"
    );

    // The reference library accepts it with either secret and refuses a third.
    let verdicts = verify_with_reference(&[NEW, OLD, OTHER], &started.headers, &started.raw);
    assert_eq!(verdicts[..2], ["ok", "ok"], "{verdicts:?}");
    assert!(verdicts[2].starts_with("refused"), "{verdicts:?}");
    // A changed body or a changed id (the id is signed) fails with both.
    let mut tampered = started.raw.to_vec();
    let at = tampered.iter().position(|b| *b == b'{').unwrap() + 1;
    tampered.insert(at, b' ');
    let verdicts = verify_with_reference(&[NEW, OLD], &started.headers, &tampered);
    assert!(
        verdicts.iter().all(|v| v.starts_with("refused")),
        "{verdicts:?}"
    );
    let mut replayed = started.headers.clone();
    replayed.insert(
        "webhook-id",
        format!("{id}:standard:cancelled").parse().unwrap(),
    );
    let verdicts = verify_with_reference(&[NEW, OLD], &replayed, &started.raw);
    assert!(
        verdicts.iter().all(|v| v.starts_with("refused")),
        "{verdicts:?}"
    );

    // Augury's own header carries one `sha256=` value per secret, each over
    // `<timestamp>.<body>` with the secret's text as the key.
    let mut signed = h("x-augury-timestamp").into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(&started.raw);
    let expected: Vec<String> = [NEW, OLD]
        .iter()
        .map(|s| {
            let mac: String = hmac_sha256(s.as_bytes(), &signed)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("sha256={mac}")
        })
        .collect();
    assert_eq!(h("x-augury-signature"), expected.join(" "));
    assert_eq!(augury.terminate().code(), Some(0));
}
