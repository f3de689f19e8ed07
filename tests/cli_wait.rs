//! `augury wait` and `augury analyze`, the real binary against a real API server.
//!
//! Where an analysis must be decided while the binary waits, the server tells the test
//! when the binary has polled, and only then does the test record the verdict: the
//! binary sees `running` first and the verdict after, with no timing guesswork.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Output;
use std::sync::Arc;

use augury::analysis::Status;
use augury::analysis::VerdictView;
use axum::extract::Request;
use axum::middleware::{self, Next};
use common::{Options, Server, request, start, start_with};
use tokio::sync::Notify;

/// Runs `augury ARGS` to completion without blocking the server's runtime.
async fn augury(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_augury"))
            .args(&args)
            .env_remove("AUGURY_SERVER")
            .env_remove("AUGURY_TOKEN")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A server that notifies after each verdict poll it answered.
async fn start_watched() -> (Server, Arc<Notify>) {
    let polled = Arc::new(Notify::new());
    let notify = Arc::clone(&polled);
    let server = start_with(Options {
        wrap: Box::new(move |router| {
            router.layer(middleware::from_fn(move |req: Request, next: Next| {
                let notify = Arc::clone(&notify);
                async move {
                    let is_poll = req.uri().path().ends_with("/verdict");
                    let response = next.run(req).await;
                    if is_poll {
                        notify.notify_one();
                    }
                    response
                }
            }))
        }),
        ..Options::default()
    })
    .await;
    (server, polled)
}

#[tokio::test]
async fn wait_exits_with_the_verdict() {
    let s = start().await;
    for (status, errors, code, word) in [
        (Status::Pass, 10, 0, "verdict: PASS"),
        (Status::Fail, 90, 1, "verdict: FAIL"),
        (Status::Inconclusive, 10, 3, "verdict: INCONCLUSIVE"),
    ] {
        let id = s.create(&request(status.as_str())).await;
        s.record(&id, status, errors).await;
        let out = augury(args(&["wait", "--server", &s.base, &id])).await;
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with(word), "{stdout}");
        assert!(stdout.contains(&id), "{stdout}");
        assert!(stdout.contains("error-rate"), "{stdout}");
    }
    let id = s.create(&request("cancelled")).await;
    s.delete(&format!("/api/v1/analyses/{id}")).await;
    let out = augury(args(&["wait", "--server", &s.base, &id])).await;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stdout).contains("cancelled at"),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn wait_shows_progress_then_the_verdict() {
    let (s, polled) = start_watched().await;
    let id = s.create(&request("live")).await;
    let run = tokio::spawn(augury(args(&[
        "wait", "--server", &s.base, &id, "--poll", "20ms",
    ])));
    polled.notified().await;
    let judgment = s.record(&id, Status::Running, 10).await;
    polled.notified().await;
    polled.notified().await;
    s.record(&id, Status::Fail, 90).await;
    let out = run.await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    // Not a terminal: one plain line per change, as CI logs show them.
    assert!(
        stderr.contains(&format!("analysis {id} running: 0/10 intervals\n")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "analysis {id} running: 1/10 intervals, score {} (pass)\n",
            augury::judge::fmt_num(judgment.score)
        )),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("running: 1/10").count(),
        1,
        "unchanged polls print nothing: {stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("verdict: FAIL  score 0/100"), "{stdout}");
    assert!(stdout.contains("2/10 intervals"), "{stdout}");
    assert!(stdout.contains("  - "), "reasons are listed: {stdout}");
}

#[tokio::test]
async fn wait_prints_the_verdict_json() {
    let s = start().await;
    let id = s.create(&request("json")).await;
    s.record(&id, Status::Pass, 10).await;
    let out = augury(args(&[
        "wait", "--server", &s.base, &id, "--format", "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0));
    let printed: VerdictView = serde_json::from_slice(&out.stdout).unwrap();
    let (_, served) = s.get(&format!("/api/v1/analyses/{id}/verdict")).await;
    assert_eq!(serde_json::to_value(&printed).unwrap(), served);
}

#[tokio::test]
async fn wait_gives_up_at_its_timeout() {
    let s = start().await;
    let id = s.create(&request("slow")).await;
    let out = augury(args(&[
        "wait",
        "--server",
        &s.base,
        &id,
        "--timeout",
        "300ms",
        "--poll",
        "100ms",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("timed out after 300ms"), "{stderr}");
    assert!(stderr.contains("goes on running"), "{stderr}");
}

#[tokio::test]
async fn usage_and_operational_errors_have_their_exit_codes() {
    let s = start().await;
    let out = augury(args(&["wait", "--server", &s.base, "nope"])).await;
    assert_eq!(out.status.code(), Some(2), "unknown id");
    assert!(text(&out.stderr).contains("no analysis with id `nope`"));

    // A port nothing listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = augury(args(&[
        "wait",
        "--server",
        &format!("http://127.0.0.1:{port}"),
        "x",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot reach the Augury daemon"));

    let out = augury(args(&["wait", "--server", "not a url", "x"])).await;
    assert_eq!(out.status.code(), Some(2));
    let out = augury(args(&["wait", "x"])).await;
    assert_eq!(out.status.code(), Some(2), "--server is required");
}

#[tokio::test]
async fn analyze_starts_an_analysis_idempotently() {
    let s = start().await;
    let flags = |key: &str| {
        args(&[
            "analyze",
            "--server",
            &s.base,
            "--key",
            key,
            "--model",
            "errors",
            "--baseline",
            "namespace=shop",
            "--baseline",
            "workload=checkout-primary",
            "--canary",
            "namespace=shop",
            "--canary",
            "workload=checkout",
            "--lifetime",
            "2m",
        ])
    };
    let out = augury(flags("ci-1")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    let a = s.store.get(&id).await.unwrap().unwrap();
    assert_eq!(a.key, "ci-1");
    assert_eq!(a.lifetime_ms, 120_000);
    assert_eq!(a.request.canary["workload"], "checkout");
    let again = augury(flags("ci-1")).await;
    assert_eq!(text(&again.stdout).trim(), id);
    assert!(text(&again.stderr).contains("already exists"));

    let mut bad = flags("ci-2");
    bad[6] = "nope".into();
    let out = augury(bad).await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("400 Bad Request"), "{stderr}");
    assert!(stderr.contains("unknown model `nope`"), "{stderr}");
    assert!(stderr.contains("(field `model`)"), "{stderr}");
}

#[tokio::test]
async fn analyze_wait_waits_for_the_verdict() {
    let (s, polled) = start_watched().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.json");
    std::fs::write(&file, request("from-file").to_string()).unwrap();
    let run = tokio::spawn(augury(args(&[
        "analyze",
        "--server",
        &s.base,
        "--file",
        file.to_str().unwrap(),
        "--wait",
        "--poll",
        "20ms",
    ])));
    polled.notified().await;
    let list = s.store.list(Some(Status::Running)).await.unwrap();
    assert_eq!(list.len(), 1);
    s.record(&list[0].id, Status::Pass, 10).await;
    let out = run.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(&format!("analysis {} created", list[0].id)));
    assert!(text(&out.stdout).starts_with("verdict: PASS"));
}

#[tokio::test]
async fn analyze_sends_the_token() {
    let s = start_with(Options {
        auth: Some(vec!["s3cret".into()]),
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.json");
    std::fs::write(&file, request("token").to_string()).unwrap();
    let base = args(&[
        "analyze",
        "--server",
        &s.base,
        "--file",
        file.to_str().unwrap(),
    ]);
    let out = augury(base.clone()).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("401"), "{}", text(&out.stderr));
    let mut with_token = base;
    with_token.extend(args(&["--token", "s3cret"]));
    let out = augury(with_token).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
