//! Careless and hostile configuration, against the real `augury serve` binary: auth that
//! cannot fail open, tokens scoped to reading, secrets that never reach a log line, an
//! error or an API answer, environment values that cannot add keys, and every bad
//! setting refused at start with exit 2 and the file, line and key.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::daemon::{Daemon, bin};

/// Longest a refused start may take to exit.
const EXIT_DEADLINE: Duration = Duration::from_secs(60);

/// Runs `augury serve` with `args` and `env` (in `dir`) and expects it to stop at start:
/// its exit code and what it wrote to stderr. Panics if it is still running at the
/// deadline (it started, which these tests say it must not).
fn refused_start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut child = Command::new(bin())
        .current_dir(dir)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(["--otlp-grpc-listen", "127.0.0.1:0"])
        .args(["--otlp-http-listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("AUGURY_API_TOKENS")
        .env_remove("AUGURY_CONFIG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + EXIT_DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
            return (status.code().unwrap_or(-1), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "augury serve {args:?} started instead of refusing:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn config(dir: &Path, text: &str) -> String {
    let path = dir.join("augury.yaml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn http() -> reqwest::Client {
    support::http::client(Duration::from_secs(15))
}

fn request(key: &str) -> Value {
    json!({
        "key": key, "model": "http-red",
        "baseline": {"service.name": "shop", "service.version": "1"},
        "canary": {"service.name": "shop", "service.version": "2"},
        "interval": "1m", "lifetime": "10m",
    })
}

async fn post_as(api: &str, token: Option<&str>, body: &Value) -> u16 {
    let mut r = http().post(format!("{api}/api/v1/analyses")).json(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap().status().as_u16()
}

async fn get_as(api: &str, token: Option<&str>, path: &str) -> u16 {
    let mut r = http().get(format!("{api}{path}"));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    r.send().await.unwrap().status().as_u16()
}

#[test]
fn a_token_list_that_resolves_to_blank_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("a.db").display());
    // The pattern of the Kubernetes example, with the variable set but empty.
    let file = config(dir.path(), "api_tokens: [\"${AUGURY_API_TOKEN}\"]\n");
    let (code, err) = refused_start(
        dir.path(),
        &["--config", &file, "--database", &db],
        &[("AUGURY_API_TOKEN", "")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("augury.yaml:1: api_tokens[0]: blank"), "{err}");
    // Written but empty, as a template whose values were missing leaves it.
    let file = config(dir.path(), "listen: 0.0.0.0:0\napi_tokens: []\n");
    let (code, err) = refused_start(dir.path(), &["--config", &file, "--database", &db], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("augury.yaml:2: api_tokens: is an empty list"),
        "{err}"
    );
    // The same through the environment, and a blank entry among good ones.
    let (code, err) = refused_start(
        dir.path(),
        &["--database", &db],
        &[("AUGURY_API_TOKENS", "")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--api-tokens: entry 1 is blank"), "{err}");
    let (code, err) = refused_start(
        dir.path(),
        &["--database", &db, "--api-tokens", "good-token, "],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("entry 2 is blank"), "{err}");
}

#[tokio::test]
async fn auth_off_on_purpose_is_a_warning_and_tokens_can_be_read_only() {
    let (_dir, path) = support::daemon::workdir("auth: none\n");
    let d = Daemon::in_dir(&path).start();
    let warned = d.log_json().into_iter().any(|l| {
        l["level"] == "WARN"
            && l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("API auth is off"))
    });
    assert!(warned, "{}", d.log_text());
    assert_eq!(post_as(&d.api, None, &request("open")).await, 201);
    drop(d);

    let (_dir, path) = support::daemon::workdir(
        "api_tokens: [full-secret-token]\napi_read_tokens: [read-secret-token]\n",
    );
    let d = Daemon::in_dir(&path).start();
    let api = d.api.as_str();
    // Reads need a token once read tokens exist; probes and scrapers do not.
    assert_eq!(get_as(api, None, "/api/v1/analyses").await, 401);
    assert_eq!(get_as(api, Some("wrong"), "/api/v1/analyses").await, 401);
    assert_eq!(
        get_as(api, Some("read-secret-token"), "/api/v1/analyses").await,
        200
    );
    assert_eq!(
        get_as(api, Some("full-secret-token"), "/api/v1/analyses").await,
        200
    );
    for open in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
        assert_eq!(get_as(api, None, open).await, 200, "{open}");
    }
    // A read token cannot change anything.
    let body = request("scoped");
    assert_eq!(post_as(api, None, &body).await, 401);
    assert_eq!(post_as(api, Some("read-secret-token"), &body).await, 401);
    assert_eq!(post_as(api, Some("full-secret-token"), &body).await, 201);
}

#[tokio::test]
async fn an_environment_value_stays_one_value() {
    // Spliced into the YAML text, this value would make two tokens, `a` and `b`.
    let (_dir, path) = support::daemon::workdir("api_tokens: [\"${TOKEN}\"]\n");
    let d = Daemon::in_dir(&path).env("TOKEN", "a\", \"b").start();
    assert_eq!(post_as(&d.api, Some("b"), &request("k1")).await, 401);
    assert_eq!(post_as(&d.api, Some("a"), &request("k1")).await, 401);
    assert_eq!(post_as(&d.api, Some("a\", \"b"), &request("k1")).await, 201);
}

#[test]
fn every_bad_setting_exits_2_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "notify_delivery:\n  timeout: 0s\n  max_attempts: 0\n",
            &[],
            "augury.yaml:2: notify_delivery.timeout: 0s is out of range",
        ),
        (
            "notify_delivery: {timeout: 5s, max_attempts: 0}\n",
            &[],
            "augury.yaml:1: notify_delivery.max_attempts: 0 is out of range",
        ),
        (
            "notifiers:\n  hook:\n    type: webhook\n    url: \"https://h.example/x\"\n    secret: \"\"\n",
            &[],
            "augury.yaml:5: notifiers.hook.secret: must not be empty",
        ),
        (
            "prometheus:\n  url: http://p:9090\n  retries: 99\n",
            &[],
            "augury.yaml:3: prometheus.retries: 99 is out of range",
        ),
        (
            "listen: 127.0.0.1:0\nrunner_concurrency: 0\n",
            &[],
            "augury.yaml:2: runner_concurrency: 0 is out of range",
        ),
        ("database: \"sqlite://\"\n", &[], "augury.yaml:1: database:"),
        ("", &["--prometheus-url", "not a url"], "--prometheus-url:"),
        ("", &["--models", "/nonexistent/models"], "--models:"),
        ("auth: maybe\n", &[], "augury.yaml:1: auth: `maybe`"),
    ];
    for (text, flags, expected) in cases {
        let file = config(dir.path(), text);
        let mut args = vec!["--config", file.as_str()];
        if !text.contains("database:") {
            args.extend(["--database", db.as_str()]);
        }
        args.extend(flags.iter().copied());
        let (code, err) = refused_start(dir.path(), &args, &[]);
        assert_eq!(code, 2, "{text}{flags:?}: {err}");
        assert!(err.contains(expected), "{text}{flags:?}: {err}");
    }
    // A models directory whose model is broken is the settings' fault too.
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    std::fs::write(models.join("bad.yaml"), "name: bad\nmetrics: 7\n").unwrap();
    let file = config(dir.path(), "");
    let models = models.display().to_string();
    let (code, err) = refused_start(
        dir.path(),
        &["--config", &file, "--database", &db, "--models", &models],
        &[],
    );
    assert_eq!(code, 2, "{err}");
}

/// Secrets planted in every secret-bearing setting.
const SECRETS: [&str; 7] = [
    "PromPassw0rdPlanted",
    "HeaderValuePlanted",
    "SlackPathPlanted",
    "PdKeyPlantedPdKeyPlantedPdKeyPla",
    "HmacSecretPlanted",
    "UrlQueryPlanted",
    "ReadTokenPlanted",
];

#[test]
fn config_errors_never_show_a_secret_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let cases = [
        "prometheus:\n  url: http://p:9090\n  basic_auth: {username: u, password: 98765432101}\n",
        "prometheus:\n  url: http://p:9090\n  bearer_token: 88887777666655554444\n",
        "prometheus:\n  url: http://p:9090\n  headers: {X-Scope-OrgID: 55554444333322221111}\n",
        "prometheus:\n  url: \"ftp://u:PromPassw0rdPlanted@p:9090\"\n",
        "notifiers:\n  pd: {type: pagerduty, routing_key: 7.5e30}\n",
        "notifiers:\n  pd: {type: pagerduty, routing_key: PdKeyPlantedPdKeyPlanted}\n",
        "notifiers:\n  h: {type: webhook, url: \"https://h/x?t=UrlQueryPlanted\", secret: 123456789012}\n",
        "notifiers:\n  s: {type: slack, url: \"hooks/SlackPathPlanted\"}\n",
        "public_url: \"ftp://u:PromPassw0rdPlanted@h\"\n",
    ];
    for text in cases {
        let file = config(dir.path(), text);
        let (code, err) = refused_start(dir.path(), &["--config", &file, "--database", &db], &[]);
        assert_eq!(code, 2, "{text}: {err}");
        assert!(err.contains("augury.yaml:"), "{text}: {err}");
        for secret in SECRETS.iter().chain(&[
            "98765432101",
            "88887777666655554444",
            "55554444333322221111",
            "7.5e30",
            "123456789012",
        ]) {
            assert!(!err.contains(secret), "{text}: {secret} in {err}");
        }
    }
}

#[tokio::test]
async fn planted_secrets_reach_no_log_error_metric_or_answer() {
    let closed = support::free_port();
    let config = format!(
        "prometheus:\n  url: \"http://promuser:{p}@127.0.0.1:{closed}/prom\"\n  \
         headers: {{X-Scope-OrgID: {h}}}\n  timeout: 1s\n  retries: 0\n\
         notifiers:\n  \
         slack: {{type: slack, url: \"http://127.0.0.1:{closed}/services/{s}\"}}\n  \
         pd: {{type: pagerduty, routing_key: {k}, events_url: \"http://127.0.0.1:{closed}/pd\"}}\n  \
         hook: {{type: webhook, url: \"http://127.0.0.1:{closed}/h?token={q}\", secret: {w}}}\n\
         default_notify: [slack, pd, hook]\n\
         notify_delivery: {{timeout: 1s, initial_backoff: 100ms, max_backoff: 200ms, max_attempts: 2}}\n\
         api_tokens: [full-token-for-this-test]\n\
         api_read_tokens: [{r}]\n",
        p = SECRETS[0],
        h = SECRETS[1],
        s = SECRETS[2],
        k = SECRETS[3],
        w = SECRETS[4],
        q = SECRETS[5],
        r = SECRETS[6],
    );
    let (_dir, path) = support::daemon::workdir(&config);
    let d = Daemon::in_dir(&path).start();
    let token = "full-token-for-this-test";
    // An analysis whose metrics read the (unreachable) Prometheus and whose verdict
    // goes to the (unreachable) notifiers: every path that could show a secret runs.
    let body = json!({
        "key": "secrets", "model": "istio",
        "baseline": {"namespace": "shop", "workload": "cart-primary", "version": "1"},
        "canary": {"namespace": "shop", "workload": "cart", "version": "2"},
        "interval": "1s", "lifetime": "2s",
    });
    let r = http()
        .post(format!("{}/api/v1/analyses", d.api))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let created: Value = r.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(90);
    let detail = loop {
        let detail: Value = http()
            .get(format!("{}/api/v1/analyses/{id}", d.api))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let tried = detail["notifications"]
            .as_array()
            .is_some_and(|n| !n.is_empty() && n.iter().all(|n| n["state"] == "failed"));
        if tried {
            break detail;
        }
        assert!(Instant::now() < deadline, "{detail:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut shown = vec![detail.to_string()];
    for path in [
        "/metrics",
        "/api/v1/analyses",
        &format!("/api/v1/analyses/{id}/verdict"),
    ] {
        let r = http()
            .get(format!("{}{path}", d.api))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        shown.push(r.text().await.unwrap());
    }
    let mut d = d;
    d.terminate_within(Duration::from_secs(60)).unwrap();
    shown.push(d.log_text());
    let all = shown.join("\n");
    // The failures were there to be shown, without the secrets.
    assert!(all.contains("promuser:***@127.0.0.1"), "{all}");
    for secret in SECRETS {
        assert!(!all.contains(secret), "{secret} shown:\n{all}");
    }
}
