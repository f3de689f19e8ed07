//! A real API server for black-box tests: the router over a SQLite store in a temp dir,
//! served by axum on 127.0.0.1 at a port chosen at run time.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use augury::analysis::{Analysis, Interval, Status};
use augury::api::{AppState, Limits, router};
use augury::daemon::runner::Command;
use augury::daemon::{RunnerHandle, subscribe};
use augury::judge::{JudgeOptions, Judgment, MetricData, judge};
use augury::model::Catalog;
use augury::stats::proportions::Counts;
use augury::store::{IntervalUpdate, Store};
use augury::telemetry::Metrics;
use tokio::sync::mpsc::UnboundedReceiver;

/// A model judged on error counts alone, so tests decide analyses with any data shape
/// the judge supports.
pub const ERRORS_MODEL: &str = "\
name: errors
description: Error ratio of canary vs primary workload.
scope: [namespace, workload]
metrics:
  - name: error-rate
    kind: error-ratio
    min_samples: 100
    effect: {measure: ratio, allowed_increase: 1.5}
";

pub struct Server {
    pub base: String,
    pub store: Store,
    /// The SQLite file behind `store` (tests reach it directly to damage rows).
    pub database: std::path::PathBuf,
    pub metrics: Arc<Metrics>,
    pub commands: UnboundedReceiver<Command>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

pub struct Options {
    pub auth: Option<Vec<String>>,
    /// The query packs of a daemon with Prometheus configured (`None`: no Prometheus).
    pub packs: Option<augury::ingest::prometheus::PackCatalog>,
    pub limits: Limits,
    /// Wraps the router (tests hook requests with it).
    pub wrap: Box<dyn FnOnce(axum::Router) -> axum::Router + Send>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            auth: None,
            packs: None,
            limits: Limits::default(),
            wrap: Box::new(|r| r),
        }
    }
}

pub async fn start() -> Server {
    start_with(Options::default()).await
}

pub async fn start_with(options: Options) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("augury.db");
    let url = format!("sqlite://{}", database.display());
    let store = Store::open(&url).await.unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    std::fs::write(models.join("errors.yaml"), ERRORS_MODEL).unwrap();
    let mut catalog = Catalog::builtin();
    catalog.load_dir(&models).unwrap();
    let (runner, commands) = RunnerHandle::new();
    let metrics = Arc::new(Metrics::new());
    // Wired to the store as the daemon wires it: the runner (here, the commands it would
    // receive) and the status gauge hear of changes from the store alone.
    subscribe(&store, &runner, &metrics);
    let state = AppState::with_options(
        store.clone(),
        Arc::new(catalog),
        Arc::clone(&metrics),
        options.auth.map(augury::api::Tokens::from),
        options.limits,
    );
    let state = match options.packs {
        Some(packs) => state.with_prometheus(Arc::new(packs)),
        None => state,
    };
    let app = (options.wrap)(router(state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        store,
        database,
        metrics,
        commands,
        http: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The daemon's `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        let r = self.http.get(self.url("/metrics")).send().await.unwrap();
        r.text().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.http.get(self.url(path)).send().await.unwrap();
        json_of(r).await
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        json_of(r).await
    }

    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        let r = self.http.delete(self.url(path)).send().await.unwrap();
        json_of(r).await
    }

    /// Creates an analysis through the API; returns its id.
    pub async fn create(&self, body: &serde_json::Value) -> String {
        let (code, v) = self.post("/api/v1/analyses", body).await;
        assert_eq!(code, 201, "{v}");
        v["id"].as_str().unwrap().to_string()
    }

    /// Still serving after whatever came before.
    pub async fn assert_serving(&self) {
        let (code, v) = self.get("/healthz").await;
        assert_eq!((code, v["status"].as_str()), (200, Some("ok")));
    }

    /// Records the next interval of `id` as the runner would, moving it to `status`.
    /// The canary had `canary_errors` errors in 10,000 requests, the baseline 10.
    pub async fn record(&self, id: &str, status: Status, canary_errors: u64) -> Judgment {
        let a = self.store.get(id).await.unwrap().unwrap();
        record_interval(&self.store, &a, status, canary_errors).await
    }
}

pub async fn json_of(r: reqwest::Response) -> (u16, serde_json::Value) {
    let code = r.status().as_u16();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer {code} is not JSON ({e}): {text}"));
    (code, v)
}

pub fn counts(canary_errors: u64) -> BTreeMap<String, MetricData> {
    BTreeMap::from([(
        "error-rate".to_string(),
        MetricData::Counts {
            baseline: Counts {
                requests: 10_000,
                errors: 10,
            },
            canary: Counts {
                requests: 10_000,
                errors: canary_errors,
            },
        },
    )])
}

pub async fn record_interval(
    store: &Store,
    a: &Analysis,
    status: Status,
    canary_errors: u64,
) -> Judgment {
    let update = interval_update(a, status, canary_errors);
    assert!(store.record_interval(&a.id, &update).await.unwrap());
    update.interval.judgment
}

/// The next interval of `a` as the runner would write it.
pub fn interval_update(a: &Analysis, status: Status, canary_errors: u64) -> IntervalUpdate {
    let data = counts(canary_errors);
    let judgment = judge(&a.model, &data, &JudgeOptions::default()).unwrap();
    let seq = a.intervals + 1;
    let end_ms = a.next_due_ms;
    IntervalUpdate {
        interval: Interval {
            seq,
            start_ms: end_ms - a.interval_ms as i64,
            end_ms,
            data: data.clone(),
            judgment,
        },
        status,
        next_due_ms: end_ms + a.interval_ms as i64,
        decided_ms: status.is_final().then_some(end_ms),
        cumulative: data,
    }
}

/// A request for the errors model: canary `name` against `name-primary`.
pub fn request(key: &str) -> serde_json::Value {
    serde_json::json!({
        "key": key,
        "model": "errors",
        "baseline": {"namespace": "shop", "workload": "checkout-primary"},
        "canary": {"namespace": "shop", "workload": "checkout"},
        "interval": "30s",
        "lifetime": "5m",
    })
}
