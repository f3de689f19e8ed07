//! How long a window in the past takes to judge: a real `augury serve` and a real
//! Prometheus holding a week of a busy service's history (`tests/support/checkout.rs`,
//! backfilled with `promtool`), and analyses of windows from 30 minutes to 7 days, in one
//! look or in many intervals. Prints a markdown table: the window, its intervals, the
//! samples per side, and the seconds from the create to the verdict.
//!
//! ```text
//! cargo build --release --bins --example past_window
//! ./target/release/examples/past_window
//! ```

// The test support it shares panics on a broken fixture: there is no caller to report to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::checkout::{self, STEP, Version, now_s, rfc3339};
use support::prometheus::Prometheus;

/// History held: a week, ending a minute ago.
const HISTORY: i64 = 7 * 24 * 3600;

/// (label, window length s, interval, step): what is judged.
const CASES: &[(&str, i64, Option<&str>, &str)] = &[
    ("30 min, one look", 1800, None, "15s"),
    ("24 h, one look", 86_400, None, "15s"),
    ("24 h in 288 intervals of 5 min", 86_400, Some("5m"), "15s"),
    ("7 d, one look", 7 * 86_400, None, "60s"),
    ("7 d in 168 intervals of 1 h", 7 * 86_400, Some("1h"), "60s"),
];

#[tokio::main]
async fn main() {
    let last = (now_s() - 60) / STEP * STEP;
    let first = last - HISTORY;
    // The regression covers the whole history but its last hour, so every window sees it.
    let window = (first, last - 3600);
    let started = Instant::now();
    let history = checkout::history(first, last, window);
    let prometheus = Prometheus::with_history(&history).await;
    eprintln!(
        "history: a week at {STEP} s, backfilled and loaded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let (_dir, daemon) = checkout::daemon(&prometheus.url, "  timeout: 60s\n");

    println!("| window | intervals | samples per side | verdict | seconds to the verdict |");
    println!("|---|---:|---:|---|---:|");
    for (i, (label, length, interval, step)) in CASES.iter().enumerate() {
        let end = last - 60;
        let mut body = json!({
            "key": format!("bench-{i}"),
            "model": "checkout-promql",
            "baseline": {"app": "checkout", "version": Version::Baseline.name()},
            "canary": {"app": "checkout", "version": Version::Regressed.name()},
            "start": rfc3339(end - length),
            "end": rfc3339(end),
            "step": step,
        });
        if let Some(interval) = interval {
            body["interval"] = json!(interval);
        }
        let t = Instant::now();
        let id = daemon.create(body).await;
        let detail = loop {
            let d = daemon.get(&format!("/api/v1/analyses/{id}/verdict")).await;
            if d["status"] != "running" {
                break daemon.detail(&id).await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let seconds = t.elapsed().as_secs_f64();
        let samples = detail["judgment"]["metrics"][0]["canary"]["count"].clone();
        println!(
            "| {label} | {} | {samples} | {} | {seconds:.2} |",
            detail["progress"]["intervals"],
            detail["status"].as_str().unwrap_or("?")
        );
    }
}
