//! OTLP decode and ingest throughput on one core: a request of 512 server spans with 10
//! attributes each (about 250 KB), the shape exporters batch by default.
//!
//! - `decode/*`: bytes to span facts. `full-prost` decodes every field with the generated
//!   types; `lean-prost` decodes a prost message set declaring only the fields the judge
//!   reads (unknown fields skipped); `lean-scan` is the receiver's zero-copy wire scanner.
//! - `ingest/*`: decode + scope matching + recording into two watched windows.
//! - `windows/record`: two threads recording into one window, with one lock shard or two.
//!
//! Run: `cargo bench --bench otlp_decode`.
// A benchmark panics on a broken setup: there is no caller to report an error to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use augury::ingest::otlp::decode::{self, AttrValue, SpanFacts, Visitor};
use augury::ingest::otlp::synthetic::{BatchSpec, batch};
use augury::ingest::otlp::{ingest_json, ingest_protobuf};
use augury::windows::{Scope, SpanFilter, Windows, WindowsConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;

const NAMES: [&str; 2] = ["service.name", "service.version"];

/// Counts what the scanner reports, so the work cannot be optimised away.
#[derive(Default)]
struct Tally {
    spans: u64,
    nanos: u64,
    resources: u64,
}

impl<'a> Visitor<'a> for Tally {
    fn resource(&mut self, values: &[Option<AttrValue<'a>>]) {
        self.resources += values.iter().flatten().count() as u64;
    }
    fn span(&mut self, span: &SpanFacts<'a>, _: &[Option<AttrValue<'a>>]) {
        self.spans += 1;
        self.nanos += span.end_unix_nano - span.start_unix_nano;
    }
}

/// The fields the judge reads, and nothing else: prost skips the rest as unknown fields.
mod lean {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(string, tag = "5")]
        pub name: String,
        #[prost(int32, tag = "6")]
        pub kind: i32,
        #[prost(fixed64, tag = "7")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "8")]
        pub end_time_unix_nano: u64,
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
        #[prost(message, optional, tag = "15")]
        pub status: Option<Status>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(oneof = "Value", tags = "1, 2, 3, 4")]
        pub value: Option<Value>,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(string, tag = "1")]
        String(String),
        #[prost(bool, tag = "2")]
        Bool(bool),
        #[prost(int64, tag = "3")]
        Int(i64),
        #[prost(double, tag = "4")]
        Double(f64),
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Status {
        #[prost(int32, tag = "3")]
        pub code: i32,
    }
}

fn watched_windows() -> Windows {
    let windows = Windows::new(WindowsConfig::default());
    for version in ["1.0.0", "2.0.0"] {
        let scope: Scope = [("service.name", "checkout"), ("service.version", version)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        windows.watch(scope, SpanFilter::default()).unwrap();
    }
    windows
}

fn bench_decode(c: &mut Criterion) {
    let request = batch(&BatchSpec::standard("checkout", "1.0.0", 1));
    let body = request.encode_to_vec();
    let json = serde_json::to_vec(&request).unwrap();
    let spans = 512;

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(spans));
    group.bench_function("full-prost", |b| {
        b.iter(|| {
            let r = opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
                black_box(&body[..]),
            )
            .unwrap();
            black_box(r.resource_spans.len())
        })
    });
    group.bench_function("lean-prost", |b| {
        b.iter(|| {
            let r = lean::Request::decode(black_box(&body[..])).unwrap();
            black_box(r.resource_spans.len())
        })
    });
    group.bench_function("lean-scan", |b| {
        b.iter(|| {
            let mut tally = Tally::default();
            decode::decode_request(black_box(&body[..]), &NAMES, &mut tally).unwrap();
            assert_eq!(tally.spans, spans);
            black_box(tally.nanos + tally.resources)
        })
    });
    group.finish();

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(spans));
    let windows = watched_windows();
    group.bench_function("lean-scan", |b| {
        b.iter(|| ingest_protobuf(&windows, black_box(&body)).unwrap())
    });
    group.bench_function("full-prost", |b| {
        b.iter(|| {
            augury::ingest::otlp::observe::ingest_protobuf_full(&windows, black_box(&body)).unwrap()
        })
    });
    group.bench_function("json", |b| {
        b.iter(|| ingest_json(&windows, black_box(&json)).unwrap())
    });
    // Nobody watches this service: the cost of counting and dropping.
    let other = batch(&BatchSpec::standard("cart", "1.0.0", 1)).encode_to_vec();
    group.bench_function("lean-scan-unwatched", |b| {
        b.iter(|| ingest_protobuf(&windows, black_box(&other)).unwrap())
    });
    group.finish();
}

/// Two threads each record `batches` batches of 512 observations into one window.
fn record_in_parallel(windows: &Arc<Windows>, batches: u64) -> Duration {
    let body = batch(&BatchSpec::standard("checkout", "1.0.0", 2)).encode_to_vec();
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            let windows = Arc::clone(windows);
            let body = &body;
            s.spawn(move || {
                for _ in 0..batches {
                    ingest_protobuf(&windows, body).unwrap();
                }
            });
        }
    });
    start.elapsed()
}

fn bench_windows(c: &mut Criterion) {
    let mut group = c.benchmark_group("windows/record-2-threads");
    group.throughput(Throughput::Elements(2 * 512));
    for shards in [1, 2] {
        let windows = Arc::new(Windows::new(WindowsConfig {
            shards,
            ..WindowsConfig::default()
        }));
        let scope: Scope = [("service.name", "checkout"), ("service.version", "1.0.0")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        windows.watch(scope, SpanFilter::default()).unwrap();
        group.bench_function(format!("{shards}-shard"), |b| {
            b.iter_custom(|iters| record_in_parallel(&windows, iters))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench_decode, bench_windows
}
criterion_main!(benches);
