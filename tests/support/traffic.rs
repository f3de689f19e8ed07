//! Traffic for end-to-end tests: [`Traffic`] is sent with the real OpenTelemetry SDK and
//! OTLP exporters, [`feed`] posts synthetic batches (`synthetic::batch`) over OTLP/HTTP.
//!
//! Each version serves a fixed, repeating plan of latencies, so a healthy canary's
//! data is the baseline's data: its verdict cannot be a statistical fluke. A regressed
//! canary is the same plan, slower and failing more.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use augury::ingest::otlp::synthetic::{BatchSpec, batch};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message as _;

use super::daemon::Daemon;

/// How one version behaves.
#[derive(Clone, Debug)]
pub struct Version {
    /// Resource attributes (`service.name`, `service.version`, ...).
    pub resource: Vec<(String, String)>,
    /// Latency multiplier over the plan.
    pub slower: f64,
    /// One span in this many fails (0: none).
    pub fail_every: u64,
}

impl Version {
    pub fn new(service: &str, version: &str) -> Version {
        Version {
            resource: vec![
                ("service.name".into(), service.into()),
                ("service.version".into(), version.into()),
            ],
            slower: 1.0,
            fail_every: 200,
        }
    }

    pub fn regressed(mut self) -> Version {
        self.slower = 2.0;
        self.fail_every = 5;
        self
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    HttpProtobuf,
}

/// Sends spans for each version until stopped.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// Spans per version per batch, and batches per second.
const SPANS_PER_BATCH: u64 = 40;
const PACE: Duration = Duration::from_millis(100);

fn exporter(transport: Transport, endpoint: &str) -> opentelemetry_otlp::SpanExporter {
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    match transport {
        Transport::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build(),
        Transport::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            // The batch processor exports from a thread of its own, outside any async
            // runtime: it needs the blocking client.
            .with_http_client(reqwest::blocking::Client::new())
            .with_endpoint(endpoint)
            .with_protocol(Protocol::HttpBinary)
            .build(),
    }
    .unwrap()
}

impl Traffic {
    /// `endpoint`: `http://host:port` for gRPC, `http://host:port/v1/traces` for HTTP.
    pub fn start(transport: Transport, endpoint: &str, versions: Vec<Version>) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (stop2, sent2, endpoint) = (Arc::clone(&stop), Arc::clone(&sent), endpoint.to_string());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                // Flushing blocks: keep it off the runtime's workers, with the runtime
                // at hand for the exporters built here.
                tokio::task::spawn_blocking(move || {
                    emit(transport, &endpoint, &versions, &stop2, &sent2)
                })
                .await
                .unwrap();
            });
        });
        Traffic {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Spans exported so far (all versions).
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Stops sending and waits for the sender to finish.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.sent()
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn emit(
    transport: Transport,
    endpoint: &str,
    versions: &[Version],
    stop: &AtomicBool,
    sent: &AtomicU64,
) {
    let providers: Vec<SdkTracerProvider> = versions
        .iter()
        .map(|v| {
            SdkTracerProvider::builder()
                .with_batch_exporter(exporter(transport, endpoint))
                .with_resource(
                    opentelemetry_sdk::Resource::builder_empty()
                        .with_attributes(
                            v.resource
                                .iter()
                                .map(|(k, val)| KeyValue::new(k.clone(), val.clone())),
                        )
                        .build(),
                )
                .build()
        })
        .collect();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let start = SystemTime::now();
        for (provider, version) in providers.iter().zip(versions) {
            let tracer = provider.tracer("augury-e2e");
            for k in 0..SPANS_PER_BATCH {
                let n = i + k;
                // 10..59 ms, repeating: the same multiset for every version.
                let latency_ms = (10 + n % 50) as f64 * version.slower;
                let mut span = tracer
                    .span_builder("GET /checkout")
                    .with_kind(SpanKind::Server)
                    .with_start_time(start)
                    .with_attributes([KeyValue::new("http.route", "/checkout")])
                    .start(&tracer);
                if version.fail_every > 0 && n.is_multiple_of(version.fail_every) {
                    span.set_status(Status::error("upstream unavailable"));
                }
                span.end_with_timestamp(start + Duration::from_secs_f64(latency_ms / 1e3));
            }
            // One export per batch: the processor's thread sends what it holds.
            if provider.force_flush().is_ok() {
                sent.fetch_add(SPANS_PER_BATCH, Ordering::Relaxed);
            }
        }
        i += SPANS_PER_BATCH;
        // Pacing the traffic like a service's, not waiting for anything.
        std::thread::sleep(PACE);
    }
    for p in providers {
        let _ = p.shutdown();
    }
}

/// Feeds spans for `baseline` and `canary` versions of `service` (version, error rate)
/// every 200 ms until the returned task is aborted (the test waits on events, not on
/// this pace).
pub fn feed(daemon: &Daemon, service: &str, sides: &[(&str, f64)]) -> tokio::task::JoinHandle<()> {
    let (otlp, service) = (daemon.otlp_http.clone(), service.to_string());
    let sides: Vec<(String, f64)> = sides.iter().map(|(v, e)| (v.to_string(), *e)).collect();
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        for seed in 0u64.. {
            tick.tick().await;
            for (version, error_rate) in &sides {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64;
                let spec = BatchSpec {
                    error_rate: *error_rate,
                    start_unix_nano: now,
                    spans: 256,
                    ..BatchSpec::standard(&service, version, seed)
                };
                let _ = client
                    .post(&otlp)
                    .header("content-type", "application/x-protobuf")
                    .body(batch(&spec).encode_to_vec())
                    .send()
                    .await;
            }
        }
    })
}
