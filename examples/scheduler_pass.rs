//! One scheduler pass over N running analyses: wall time from the moment they all fall
//! due until every one has its interval judged and committed to SQLite, and memory.
//!
//! Usage: scheduler_pass [--analyses N] [--samples S] [--slow-ms MS]
//!
//! Each analysis judges the `http-red` model on a latency histogram of S values per side
//! and error counts, as OTLP windows deliver them. With --slow-ms, the first analysis's
//! source takes that long (a slow Prometheus query): the pass shows how long the others
//! wait for it (they should not).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use augury::analysis::{
    Analysis, AnalysisRequest, DataSource, Interval, Observer, SourceError, Status,
};
use augury::clock::{Clock, now_ms};
use augury::daemon::{Runner, RunnerHandle};
use augury::judge::MetricData;
use augury::judge::data::HistogramSide;
use augury::model::Catalog;
use augury::stats::histogram::LogHistogram;
use augury::stats::proportions::Counts;
use augury::store::Store;
use tokio::sync::{Notify, watch};

struct Args {
    analyses: usize,
    samples: usize,
    slow_ms: u64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        analyses: 1000,
        samples: 2000,
        slow_ms: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value.parse().map_err(|e| format!("{flag}: {e}"))?;
        match flag.as_str() {
            "--analyses" => a.analyses = n as usize,
            "--samples" => a.samples = n as usize,
            "--slow-ms" => a.slow_ms = n,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

/// Fixed per-interval data, the shape OTLP windows hand the runner.
struct Fixed {
    data: BTreeMap<String, MetricData>,
    slow: Option<(String, Duration)>,
}

impl DataSource for Fixed {
    fn watch(&self, _: &Analysis) {}
    fn unwatch(&self, _: &str) {}
    async fn take(
        &self,
        analysis: &Analysis,
        _: i64,
        _: i64,
    ) -> (BTreeMap<String, MetricData>, Vec<SourceError>) {
        if let Some((id, delay)) = &self.slow
            && *id == analysis.id
        {
            tokio::time::sleep(*delay).await;
        }
        (self.data.clone(), Vec::new())
    }
    async fn missed(
        &self,
        analysis: &Analysis,
        start: i64,
        end: i64,
    ) -> (BTreeMap<String, MetricData>, Vec<SourceError>) {
        self.take(analysis, start, end).await
    }
}

struct Count {
    judged: AtomicUsize,
    /// When the fast ones were all done (all but the slow one).
    target: usize,
    done: Notify,
    fast_done: Notify,
    fast_target: usize,
}

impl Observer for Count {
    fn interval_judged(&self, _: &Analysis, _: &Interval, _: f64) {
        let n = self.judged.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.fast_target {
            self.fast_done.notify_one();
        }
        if n == self.target {
            self.done.notify_one();
        }
    }
    fn decided(&self, _: &Analysis, _: Status) {}
    fn source_errors(&self, _: &Analysis, _: &[SourceError]) {}
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let dir = tempfile::tempdir()?;
    // A temporary SQLite file, or the database AUGURY_BENCH_DATABASE names (an empty
    // PostgreSQL database, say, to measure that backend).
    let url = std::env::var("AUGURY_BENCH_DATABASE")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("pass.db").display()));
    let store = Store::open(&url).await?;
    let catalog = Catalog::builtin();
    let interval = Duration::from_secs(10);
    let mut ids = Vec::new();
    let created = Instant::now();
    for i in 0..args.analyses {
        let request: AnalysisRequest = serde_json::from_value(serde_json::json!({
            "key": format!("pass-{i}"), "model": "http-red",
            "baseline": {"service.name": format!("svc-{i}"), "service.version": "1"},
            "canary": {"service.name": format!("svc-{i}"), "service.version": "2"},
            "interval": "10s", "lifetime": "1h"}))?;
        let valid = request.validate(&catalog)?;
        ids.push(store.create(&valid, now_ms()).await?.0.id);
    }
    let created_in = created.elapsed();

    let (mut baseline, mut canary) = (LogHistogram::new(), LogHistogram::new());
    for k in 0..args.samples {
        let x = 10.0 + (k % 97) as f64 * 0.7;
        baseline.record(x);
        canary.record(x * 1.01);
    }
    let data = BTreeMap::from([
        (
            "latency".to_string(),
            MetricData::Histograms {
                baseline: HistogramSide {
                    histogram: baseline,
                },
                canary: HistogramSide { histogram: canary },
            },
        ),
        (
            "error-rate".to_string(),
            MetricData::Counts {
                baseline: Counts {
                    requests: args.samples as u64,
                    errors: 5,
                },
                canary: Counts {
                    requests: args.samples as u64,
                    errors: 6,
                },
            },
        ),
    ]);
    let slow = (args.slow_ms > 0).then(|| (ids[0].clone(), Duration::from_millis(args.slow_ms)));
    let observer = Arc::new(Count {
        judged: AtomicUsize::new(0),
        target: args.analyses,
        fast_target: if slow.is_some() {
            args.analyses - 1
        } else {
            args.analyses
        },
        done: Notify::new(),
        fast_done: Notify::new(),
    });
    let rss_before = rss_kib("VmRSS:");
    let (_handle, commands) = RunnerHandle::new();
    let (stop, stopped) = watch::channel(false);
    let runner = Runner {
        store: store.clone(),
        source: Arc::new(Fixed { data, slow }),
        observer: Arc::clone(&observer),
        concurrency: 64,
        clock: Clock::system(),
        replicas: None,
        metrics: None,
        judging: None,
    };
    // Start once every analysis is due, so the pass is one burst of N due analyses
    // (as after a restart, or when many were created together).
    tokio::time::sleep(interval).await;
    let due = Instant::now();
    let task = tokio::spawn(runner.run(commands, stopped));
    let fast_done = observer.fast_done.notified();
    let all_done = observer.done.notified();
    tokio::pin!(fast_done, all_done);
    fast_done.as_mut().await;
    let fast = due.elapsed();
    all_done.as_mut().await;
    let all = due.elapsed();
    let rss_after = rss_kib("VmRSS:");
    let peak = rss_kib("VmHWM:");
    stop.send(true)?;
    task.await??;
    let judged = store
        .list(Some(Status::Running))
        .await?
        .iter()
        .filter(|a| a.intervals == 1)
        .count();
    println!(
        "analyses {n}, samples/side {s}: created in {c:.2?}; one pass (load, judge, commit every one) {all:.2?}{fast}; intervals stored {judged}; RSS {b} -> {a} KiB (peak {p} KiB)",
        n = args.analyses,
        s = args.samples,
        c = created_in,
        fast = if args.slow_ms > 0 {
            format!(" (all but the slow one: {fast:.2?})")
        } else {
            String::new()
        },
        b = rss_before,
        a = rss_after,
        p = peak,
    );
    Ok(())
}
