//! Several replicas of the real `augury serve` binary on one real PostgreSQL server
//! (started by the test in a temp directory): OTLP spread across them judged as one
//! replica would judge it, an owner killed with SIGKILL taken over, notifications sent
//! once across replicas, one analysis per key whichever replicas receive the create, and
//! a database restarted under the replicas.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use augury::ingest::otlp::synthetic::{BatchSpec, batch};
use prost::Message as _;
use serde_json::{Value, json};
use support::daemon::{Daemon, Launch};
use support::postgres::Postgres;

/// Longest any wait here may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(120);

fn http() -> reqwest::Client {
    support::http::client(Duration::from_secs(15))
}

/// `n` replicas on the database at `url`, named r0, r1, …, with a short lease so a dead
/// one is taken over quickly.
fn replicas(url: &str, n: usize, configure: impl Fn(Launch) -> Launch) -> Vec<Daemon> {
    (0..n).map(|i| launch(url, i, &configure).start()).collect()
}

fn launch(url: &str, i: usize, configure: &impl Fn(Launch) -> Launch) -> Launch {
    configure(Daemon::on_url(url).flags(&[
        "--replica-id",
        &format!("r{i}"),
        "--lease-ttl",
        "1s",
        "--flush-grace",
        "3s",
    ]))
}

fn request(key: &str, service: &str, interval: &str, lifetime: &str) -> Value {
    json!({
        "key": key, "model": "http-red",
        "baseline": {"service.name": service, "service.version": "1.0.0"},
        "canary": {"service.name": service, "service.version": "1.1.0"},
        "interval": interval, "lifetime": lifetime,
    })
}

async fn create(api: &str, body: &Value) -> String {
    let (status, created) = support::http::post(&http(), api, "/api/v1/analyses", body).await;
    assert!(status == 201 || status == 200, "{status} {created}");
    created["id"].as_str().unwrap().to_string()
}

async fn get(api: &str, path: &str) -> (u16, Value) {
    support::http::get(&http(), api, path).await
}

/// Waits until `check` holds, polling; fails the test past the deadline with `what`.
async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {DEADLINE:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of series `name{labels}` (`name` alone when `labels` is empty) on `d`'s
/// `/metrics`; 0 when it is not there.
async fn metric(d: &Daemon, name: &str, labels: &str) -> f64 {
    let series = if labels.is_empty() {
        format!("{name} ")
    } else {
        format!("{name}{{{labels}}} ")
    };
    d.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

async fn verdict(api: &str, id: &str) -> Value {
    get(api, &format!("/api/v1/analyses/{id}/verdict")).await.1
}

async fn final_verdict(api: &str, id: &str) -> Value {
    let mut last = Value::Null;
    until(&format!("analysis {id} decided"), async || {
        last = verdict(api, id).await;
        last["status"] != "running"
    })
    .await;
    last
}

/// One batch of `spans` server spans of `service` at `version`, as OTLP protobuf.
fn spans(service: &str, version: &str, spans: usize, regressed: bool, seed: u64) -> Vec<u8> {
    let spec = BatchSpec {
        spans,
        attributes: 4,
        median_ms: if regressed { 60.0 } else { 20.0 },
        error_rate: if regressed { 0.2 } else { 0.01 },
        ..BatchSpec::standard(service, version, seed)
    };
    batch(&spec).encode_to_vec()
}

async fn send(otlp_http: &str, body: Vec<u8>) {
    let r = http()
        .post(otlp_http)
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// Comparable numbers of a verdict: its status and each metric's classification and
/// numbers (reasons may differ in wording between a cluster and one replica).
fn numbers(v: &Value) -> Value {
    json!({"status": v["status"], "score": v["score"], "metrics": v["metrics"]})
}

/// Asserts that `a` and `b` are the same document: the same keys, strings, counts and
/// classifications, and numbers equal up to floating-point rounding (a histogram's sum
/// of latencies, merged from three replicas' shares, is added in another order than one
/// replica adds it).
fn same(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let (kx, ky): (Vec<_>, Vec<_>) = (x.keys().collect(), y.keys().collect());
            assert_eq!(kx, ky, "{at}");
            for (k, v) in x {
                same(v, &y[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                same(v, w, &format!("{at}[{i}]"));
            }
        }
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                "{at}: {x} vs {y}"
            );
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// Each interval's data, in order.
async fn interval_data(api: &str, id: &str) -> Vec<Value> {
    let (_, detail) = get(api, &format!("/api/v1/analyses/{id}?data=true")).await;
    detail["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert!(i["data"].is_object(), "interval without its data: {i}");
            json!({"seq": i["seq"], "data": i["data"]})
        })
        .collect()
}

async fn seqs(api: &str, id: &str) -> Vec<u64> {
    interval_data(api, id)
        .await
        .iter()
        .map(|i| i["seq"].as_u64().unwrap())
        .collect()
}

/// Spans for a baseline and a healthy and a regressed canary sent round-robin across
/// three replicas are judged exactly as one replica judges the same spans: the same
/// verdicts, the same per-metric numbers, the same data in every interval; every replica
/// answers the same.
#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_judge_spread_spans_as_one_replica_would() {
    let pg = Postgres::start();
    let url = pg.fresh_database("spread");
    let cluster = replicas(&url, 3, |l| l);
    let dir = tempfile::tempdir().unwrap();
    let single = Daemon::on(&dir.path().join("one.db")).start();

    let (iv, lifetime) = (Duration::from_secs(3), "15s");
    let mut pairs = Vec::new();
    for (key, service, regressed) in [("healthy", "cart", false), ("regressed", "pay", true)] {
        let body = request(key, service, "3s", lifetime);
        let on_cluster = create(&cluster[0].api, &body).await;
        let on_single = create(&single.api, &body).await;
        pairs.push((on_cluster, on_single, service, regressed));
    }
    // Every replica watches both analyses' scopes (learned through the database) before
    // any span is sent: two scopes per analysis.
    for d in cluster.iter().chain([&single]) {
        until("every replica watches both analyses", || async {
            metric(d, "augury_otlp_watches", "").await >= 4.0
        })
        .await;
    }
    let (_, first) = get(&cluster[0].api, &format!("/api/v1/analyses/{}", pairs[0].0)).await;
    let created = epoch_ms(&first["created_at"]);

    // Intervals 2 to 5 get spans, sent a third into each interval (a second clear of
    // either boundary), each batch to one replica of the cluster in turn and to the
    // single replica.
    let mut sent = 0u64;
    let mut turn = 0usize;
    for k in 1..5u64 {
        let at = created + (k * iv.as_millis() as u64 + iv.as_millis() as u64 / 3) as i64;
        let wait = at - now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        for (_, _, service, regressed) in &pairs {
            for (version, bad) in [("1.0.0", false), ("1.1.0", *regressed)] {
                for b in 0..3u64 {
                    // Baseline and canary draw different spans from their distributions.
                    let seed = k * 10 + b + if version == "1.0.0" { 0 } else { 1_000 };
                    let body = spans(service, version, 200, bad, seed);
                    send(&cluster[turn % 3].otlp_http, body.clone()).await;
                    send(&single.otlp_http, body).await;
                    turn += 1;
                    sent += 200;
                }
            }
        }
    }

    for (on_cluster, on_single, service, regressed) in &pairs {
        let c = final_verdict(&cluster[1].api, on_cluster).await;
        let s = final_verdict(&single.api, on_single).await;
        let expected = if *regressed { "fail" } else { "pass" };
        assert_eq!(s["status"], expected, "{service}: {s:#}");
        same(&numbers(&c), &numbers(&s), &format!("{service}: verdict"));
        let (spread, whole) = (
            Value::Array(interval_data(&cluster[2].api, on_cluster).await),
            Value::Array(interval_data(&single.api, on_single).await),
        );
        same(&spread, &whole, &format!("{service}: interval data"));
        // Every replica answers the same.
        for d in &cluster {
            assert_eq!(
                verdict(&d.api, on_cluster).await,
                c,
                "{service} on {}",
                d.api
            );
        }
    }
    // Every span was accepted by the replica it reached (spans before an analysis ends).
    let mut accepted = 0.0;
    for d in &cluster {
        accepted += metric(d, "augury_otlp_spans_total", "result=\"accepted\"").await;
    }
    assert!(
        accepted > 0.0 && accepted <= sent as f64,
        "{accepted} of {sent}"
    );
    for d in cluster {
        assert!(d.terminate().success());
    }
}

/// The replica holding an analysis's lease is killed with SIGKILL mid-run: another takes
/// the analysis over, it finishes, and no interval is lost or recorded twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_owner_is_taken_over_and_no_interval_is_lost_or_doubled() {
    let pg = Postgres::start();
    let url = pg.fresh_database("takeover");
    let mut cluster: Vec<Option<Daemon>> = replicas(&url, 3, |l| l).into_iter().map(Some).collect();
    let api = cluster[0].as_ref().unwrap().api.clone();
    let id = create(&api, &request("takeover", "shop", "2s", "16s")).await;

    // Healthy traffic to the live replicas, round-robin, until stopped.
    let targets = Arc::new(Mutex::new(
        cluster
            .iter()
            .map(|d| d.as_ref().unwrap().otlp_http.clone())
            .collect::<Vec<_>>(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let traffic = {
        let (targets, stop, sent) = (Arc::clone(&targets), Arc::clone(&stop), Arc::clone(&sent));
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let live = targets.lock().unwrap().clone();
                for version in ["1.0.0", "1.1.0"] {
                    let target = &live[n as usize % live.len()];
                    let answer = http()
                        .post(target)
                        .header("content-type", "application/x-protobuf")
                        .body(spans("shop", version, 100, false, n))
                        .send()
                        .await;
                    if version == "1.0.0" && answer.is_ok_and(|a| a.status().is_success()) {
                        sent.fetch_add(100, Ordering::SeqCst);
                    }
                    n += 1;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    until("two intervals recorded", || async {
        verdict(&api, &id).await["progress"]["intervals"].as_u64() >= Some(2)
    })
    .await;
    let mut owner = None;
    for (i, d) in cluster.iter().enumerate() {
        if metric(d.as_ref().unwrap(), "augury_leases", "").await == 1.0 {
            owner = Some(i);
        }
    }
    let owner = owner.expect("one replica holds the lease");
    let before = verdict(&api, &id).await["progress"]["intervals"]
        .as_u64()
        .unwrap();
    targets
        .lock()
        .unwrap()
        .retain(|t| *t != cluster[owner].as_ref().unwrap().otlp_http);
    cluster[owner].take().unwrap().kill9();
    let killed = Instant::now();
    let survivor = cluster.iter().flatten().next().unwrap();
    until("an interval recorded after the kill", || async {
        verdict(&survivor.api, &id).await["progress"]["intervals"].as_u64() > Some(before)
    })
    .await;
    eprintln!(
        "takeover: next interval recorded {:?} after kill -9",
        killed.elapsed()
    );

    let decided = final_verdict(&survivor.api, &id).await;
    stop.store(true, Ordering::SeqCst);
    traffic.await.unwrap();
    assert_eq!(decided["status"], "pass", "{decided:#}");
    assert_eq!(seqs(&survivor.api, &id).await, (1..=8).collect::<Vec<_>>());
    // No interval lost: every one has spans, the one the kill cut into from the
    // replicas that lived. None counted twice: together they hold no more baseline
    // spans than were sent.
    let per_interval: Vec<u64> = interval_data(&survivor.api, &id)
        .await
        .iter()
        .map(|i| {
            i["data"]["error-rate"]["baseline"]["requests"]
                .as_u64()
                .unwrap_or(0)
        })
        .collect();
    assert!(per_interval.iter().all(|n| *n > 0), "{per_interval:?}");
    let (counted, sent) = (
        per_interval.iter().sum::<u64>(),
        sent.load(Ordering::SeqCst),
    );
    assert!(counted <= sent, "{counted} counted, {sent} sent");
    let mut takeovers = 0.0;
    for d in cluster.iter().flatten() {
        takeovers += metric(d, "augury_lease_takeovers_total", "").await;
    }
    assert!(takeovers >= 1.0, "a survivor took the lease over");
}

/// A local stand-in for Slack and PagerDuty: records each request, and can hold the
/// first one of a service unanswered until the test releases it.
#[derive(Clone, Default)]
struct Receivers {
    log: Arc<Mutex<Vec<(String, Value)>>>,
    hold_first: Arc<AtomicBool>,
    held: Arc<AtomicU64>,
    release: Arc<tokio::sync::Notify>,
}

impl Receivers {
    async fn start(&self) -> String {
        let app = axum::Router::new()
            .route("/{service}", axum::routing::post(receive))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    fn of(&self, service: &str) -> Vec<Value> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(s, _)| s == service)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receivers>,
    axum::extract::Path(service): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let first = {
        let mut log = r.log.lock().unwrap();
        log.push((service.clone(), v));
        log.iter().filter(|(s, _)| *s == service).count() == 1
    };
    if first && r.hold_first.load(Ordering::SeqCst) {
        // Held: the sender is killed while it waits.
        r.held.fetch_add(1, Ordering::SeqCst);
        r.release.notified().await;
    }
    axum::http::StatusCode::ACCEPTED
}

fn notify_config(dir: &std::path::Path, base: &str) -> std::path::PathBuf {
    let path = dir.join("augury.yaml");
    std::fs::write(
        &path,
        format!(
            "notifiers:\n  \
               slack: {{type: slack, url: \"{base}/slack\", events: [failed]}}\n  \
               pd: {{type: pagerduty, routing_key: \"{key}\", events_url: \"{base}/pd\", events: [failed]}}\n\
             default_notify: [slack, pd]\n\
             public_url: https://augury.example.test\n\
             notify_delivery: {{initial_backoff: 100ms, max_backoff: 1s, timeout: 1s, max_attempts: 10}}\n",
            key = "k".repeat(32)
        ),
    )
    .unwrap();
    path
}

/// The outbox rows of analysis `id`, as the API shows them.
async fn outbox(api: &str, id: &str) -> Vec<Value> {
    let (_, detail) = get(api, &format!("/api/v1/analyses/{id}")).await;
    detail["notifications"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn all_delivered(api: &str, id: &str, rows: usize) -> bool {
    let o = outbox(api, id).await;
    o.len() == rows && o.iter().all(|n| n["state"] == "delivered")
}

/// A failing canary on three replicas with Slack and PagerDuty configured: one Slack
/// message and one PagerDuty trigger in all. Then the replicas that claimed the sends
/// are killed while the receivers hold their requests: another replica sends again once
/// the claims expire (at least once), and PagerDuty's dedup key keeps it one incident.
#[tokio::test(flavor = "multi_thread")]
async fn a_verdict_is_notified_once_across_replicas_and_again_only_after_a_kill() {
    let pg = Postgres::start();
    let receivers = Receivers::default();
    let base = receivers.start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = notify_config(dir.path(), &base);

    // Without faults: exactly one of each.
    let url = pg.fresh_database("notify");
    let cluster = replicas(&url, 3, |l| l.config(&config));
    let id = create(&cluster[0].api, &request("bad", "pay", "1s", "30s")).await;
    let traffic = async {
        for n in 0..40u64 {
            for (version, bad) in [("1.0.0", false), ("1.1.0", true)] {
                send(
                    &cluster[n as usize % 3].otlp_http,
                    spans("pay", version, 200, bad, n),
                )
                .await;
            }
            if verdict(&cluster[0].api, &id).await["status"] != "running" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    traffic.await;
    assert_eq!(final_verdict(&cluster[0].api, &id).await["status"], "fail");
    until("both notifications delivered", || {
        all_delivered(&cluster[1].api, &id, 2)
    })
    .await;
    // Delivered rows are never sent again; what the receivers got is final.
    assert_eq!(
        receivers.of("slack").len(),
        1,
        "{:?}",
        receivers.of("slack")
    );
    assert_eq!(receivers.of("pd").len(), 1, "{:?}", receivers.of("pd"));
    for n in outbox(&cluster[2].api, &id).await {
        assert_eq!(n["attempts"], 1, "{n}");
    }
    drop(cluster);

    // The senders killed mid-send.
    receivers.log.lock().unwrap().clear();
    receivers.hold_first.store(true, Ordering::SeqCst);
    let url = pg.fresh_database("notify_kill");
    let mut cluster: Vec<Option<Daemon>> = replicas(&url, 3, |l| l.config(&config))
        .into_iter()
        .map(Some)
        .collect();
    let api = |c: &Vec<Option<Daemon>>| c.iter().flatten().next().unwrap().api.clone();
    let id = create(&api(&cluster), &request("bad", "pay", "1s", "30s")).await;
    for n in 0..40u64 {
        if verdict(&api(&cluster), &id).await["status"] != "running" {
            break;
        }
        for (version, bad) in [("1.0.0", false), ("1.1.0", true)] {
            let target = cluster[n as usize % 3].as_ref().unwrap().otlp_http.clone();
            send(&target, spans("pay", version, 200, bad, n)).await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    until("both first sends held", || async {
        receivers.held.load(Ordering::SeqCst) == 2
    })
    .await;
    let mut killed = 0;
    for slot in cluster.iter_mut() {
        let claimed = metric(
            slot.as_ref().unwrap(),
            "augury_notification_claims_total",
            "",
        )
        .await;
        if claimed > 0.0 {
            slot.take().unwrap().kill9();
            killed += 1;
        }
    }
    assert!((1..=2).contains(&killed), "{killed} replicas claimed");
    until("both notifications delivered by a survivor", || async {
        all_delivered(&api(&cluster), &id, 2).await
    })
    .await;
    receivers.release.notify_waiters();
    // A survivor sent them (not a killed replica's own retry).
    let mut survivors_delivered = 0.0;
    for d in cluster.iter().flatten() {
        for notifier in ["slack", "pd"] {
            let labels = format!("notifier=\"{notifier}\",result=\"delivered\"");
            survivors_delivered += metric(d, "augury_notifications_total", &labels).await;
        }
    }
    assert_eq!(survivors_delivered, 2.0);
    // Slack has no dedup key: the held message was received, then sent again.
    let slack = receivers.of("slack");
    assert_eq!(slack.len(), 2, "{slack:?}");
    assert_eq!(slack[0], slack[1]);
    // PagerDuty: two triggers, one dedup key, so one incident.
    let pd = receivers.of("pd");
    assert_eq!(pd.len(), 2, "{pd:?}");
    let keys: BTreeSet<&str> = pd
        .iter()
        .map(|v| v["dedup_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), 1, "{pd:?}");
    assert!(pd.iter().all(|v| v["event_action"] == "trigger"));
}

/// The same create reaches two replicas at once, for twenty keys: one analysis per key,
/// both answers naming it.
#[tokio::test(flavor = "multi_thread")]
async fn the_same_create_on_two_replicas_makes_one_analysis() {
    let pg = Postgres::start();
    let url = pg.fresh_database("create");
    let cluster = replicas(&url, 2, |l| l);
    for k in 0..20 {
        let body = request(&format!("key-{k}"), "cart", "1m", "1h");
        let (a, b) = tokio::join!(
            create(&cluster[0].api, &body),
            create(&cluster[1].api, &body)
        );
        assert_eq!(a, b, "key-{k}");
    }
    for d in &cluster {
        let (_, list) = get(&d.api, "/api/v1/analyses?limit=100").await;
        assert_eq!(list["analyses"].as_array().unwrap().len(), 20, "{list}");
    }
}

/// PostgreSQL stops under two replicas: they report not ready, then ready once it is
/// back, and the running analysis finishes with every interval; a verdict reached
/// before is kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_restart_makes_replicas_unready_then_they_recover_losing_nothing() {
    let pg = Postgres::start();
    let url = pg.fresh_database("restart");
    let cluster = replicas(&url, 2, |l| l);
    let failed = create(&cluster[0].api, &request("early", "pay", "1s", "1m")).await;
    for n in 0..40u64 {
        if verdict(&cluster[0].api, &failed).await["status"] != "running" {
            break;
        }
        for (version, bad) in [("1.0.0", false), ("1.1.0", true)] {
            send(
                &cluster[n as usize % 2].otlp_http,
                spans("pay", version, 200, bad, n),
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let before = final_verdict(&cluster[1].api, &failed).await;
    assert_eq!(before["status"], "fail");
    let running = create(&cluster[1].api, &request("through", "cart", "1s", "12s")).await;

    pg.stop();
    for d in &cluster {
        until("not ready while the database is down", || async {
            get(&d.api, "/readyz").await.0 == 503
        })
        .await;
    }
    pg.start_again();
    for d in &cluster {
        until("ready again", || async {
            get(&d.api, "/readyz").await.0 == 200
        })
        .await;
    }
    let after = final_verdict(&cluster[0].api, &running).await;
    assert_ne!(after["status"], "running");
    assert_eq!(after["progress"]["intervals"], 12, "{after:#}");
    assert_eq!(verdict(&cluster[1].api, &failed).await, before);
}

fn now_ms() -> i64 {
    augury::clock::now_ms()
}

/// Milliseconds since the epoch of an RFC 3339 time the API wrote.
fn epoch_ms(v: &Value) -> i64 {
    let text = v.as_str().unwrap();
    let t = humantime::parse_rfc3339_weak(text)
        .unwrap_or_else(|e| panic!("not an RFC 3339 time: {text}: {e}"));
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}
