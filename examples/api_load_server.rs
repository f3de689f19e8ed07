//! The API over a temporary store holding N live analyses, each with one judged
//! interval, for load tests of the verdict route (scripts/bench_verdict.sh).
//!
//! Usage: api_load_server [--analyses N] [--listen ADDR] [--ids FILE]
//! Prints the base URL on stdout once everything is created and the server listens;
//! writes the analysis ids, one per line, to FILE. Runs until killed.

use std::collections::BTreeMap;
use std::sync::Arc;

use augury::analysis::{AnalysisRequest, Interval, Status};
use augury::api::{AppState, router};
use augury::judge::{JudgeOptions, MetricData, judge};
use augury::model::{Catalog, Model};
use augury::stats::proportions::Counts;
use augury::store::{IntervalUpdate, Store};
use augury::telemetry::Metrics;

/// Two count metrics, so each verdict carries what a real one does: two metrics with
/// p-values, effects and reasons.
const MODEL: &str = "\
name: load
scope: [namespace, workload]
metrics:
  - name: error-rate
    kind: error-ratio
    effect: {measure: ratio, allowed_increase: 1.5}
  - name: timeout-rate
    kind: error-ratio
    effect: {measure: ratio, allowed_increase: 2.0}
";

struct Args {
    analyses: usize,
    listen: String,
    ids: Option<String>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        analyses: 1000,
        listen: "127.0.0.1:0".into(),
        ids: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--analyses" => a.analyses = value.parse().map_err(|e| format!("--analyses: {e}"))?,
            "--listen" => a.listen = value,
            "--ids" => a.ids = Some(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn counts(errors: u64) -> Counts {
    Counts {
        requests: 20_000,
        errors,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let dir = tempfile::tempdir()?;
    // A temporary SQLite file, or the database AUGURY_BENCH_DATABASE names (an empty
    // PostgreSQL database, say, to measure that backend).
    let url = std::env::var("AUGURY_BENCH_DATABASE")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("load.db").display()));
    let store = Store::open(&url).await?;
    let model = Model::from_yaml(MODEL, "load.yaml")?;
    let catalog = Catalog::builtin();
    let mut ids = Vec::with_capacity(args.analyses);
    let now = augury::clock::now_ms();
    for i in 0..args.analyses {
        let request: AnalysisRequest = serde_json::from_value(serde_json::json!({
            "key": format!("load-{i}"),
            "model": serde_json::to_value(&model)?,
            "baseline": {"namespace": "shop", "workload": format!("svc{i}-primary")},
            "canary": {"namespace": "shop", "workload": format!("svc{i}")},
            "interval": "30s", "lifetime": "10m"}))?;
        let valid = request.validate(&catalog)?;
        let (a, _) = store.create(&valid, now).await?;
        let data: BTreeMap<String, MetricData> = BTreeMap::from([
            (
                "error-rate".to_string(),
                MetricData::Counts {
                    baseline: counts(20),
                    canary: counts(20 + (i % 7) as u64),
                },
            ),
            (
                "timeout-rate".to_string(),
                MetricData::Counts {
                    baseline: counts(5),
                    canary: counts(5 + (i % 3) as u64),
                },
            ),
        ]);
        let judgment = judge(&a.model, &data, &JudgeOptions::default())?;
        let update = IntervalUpdate {
            interval: Interval {
                seq: 1,
                start_ms: now,
                end_ms: a.next_due_ms,
                data: data.clone(),
                judgment,
            },
            status: Status::Running,
            next_due_ms: a.next_due_ms + a.interval_ms as i64,
            decided_ms: None,
            cumulative: data,
        };
        store.record_interval(&a.id, &update).await?;
        ids.push(a.id);
    }
    if let Some(path) = &args.ids {
        std::fs::write(path, ids.join("\n") + "\n")?;
    }
    let metrics = Arc::new(Metrics::new());
    metrics.set_analyses(Status::Running, ids.len() as i64);
    // Among replicas (a shared database) every poll reads the store, as in the daemon.
    let shared = store.is_shared();
    let state = AppState::new(store, Arc::new(catalog), metrics);
    let app = router(if shared {
        state.among_replicas()
    } else {
        state
    });
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
