//! Exposition parsing throughput (MB/s): our parser against the `prometheus-parse` crate
//! on the same realistic input (a mesh sidecar's `/metrics`: Istio-style request counters
//! and latency histograms with ~20 labels a series, Envoy cluster stats, Go runtime).
//!
//! `prometheus-parse` is here only as a peer to measure against; see
//! `src/ingest/scrape/exposition.rs` for why Augury does not use it.
//!
//! Run: `cargo bench --bench exposition -- --warm-up-time 2 --measurement-time 8`.
//!
//! Measured on the project's 2-core machine while other builds ran (load ~7), on the
//! 4.63 MB text input (6,548 sample lines) and its 4.63 MB OpenMetrics twin; medians:
//!
//! | benchmark | time | throughput |
//! |---|---|---|
//! | `augury_parse_text` (families, all checks) | 9.96 ms | 443 MiB/s (465 MB/s) |
//! | `augury_events_text` (streaming layer only) | 9.17 ms | 482 MiB/s (505 MB/s) |
//! | `prometheus_parse_text` | 181 ms | 24.3 MiB/s (25.5 MB/s) |
//! | `augury_parse_openmetrics` (with grouping and histogram checks) | 28.1 ms | 157 MiB/s (165 MB/s) |
// A benchmark panics on a broken setup: there is no caller to report an error to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::io;

use augury::ingest::scrape::exposition::{Events, Format, parse};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const GO_RUNTIME: &str = include_str!("../tests/exposition_corpus/go_runtime.prom");

const BOUNDS_MS: [&str; 20] = [
    "0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000",
    "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf",
];

/// A deterministic exposition of about 2.5 MB in the given format.
fn mesh_exposition(format: Format) -> String {
    let om = format == Format::OpenMetrics;
    let mut out = String::with_capacity(3 << 20);
    let sources = [
        "frontend",
        "gateway",
        "cart",
        "search",
        "recommend",
        "ads",
        "auth",
        "batch",
    ];
    let destinations = [
        "checkout-v1",
        "checkout-v2",
        "payments",
        "inventory",
        "shipping",
        "email",
    ];
    let codes = ["200", "201", "404", "500", "503"];
    let series = |out: &mut String, src: &str, dst: &str, code: &str| {
        let version = if dst.ends_with("v2") { "v2" } else { "v1" };
        let service = dst.trim_end_matches("-v1").trim_end_matches("-v2");
        write!(
            out,
            "response_code=\"{code}\",reporter=\"destination\",source_workload=\"{src}\",\
             source_workload_namespace=\"shop\",source_principal=\"spiffe://cluster.local/ns/shop/sa/{src}\",\
             source_app=\"{src}\",source_version=\"v1\",source_cluster=\"Kubernetes\",\
             destination_workload=\"{dst}\",destination_workload_namespace=\"shop\",\
             destination_principal=\"spiffe://cluster.local/ns/shop/sa/{service}\",\
             destination_app=\"{service}\",destination_version=\"{version}\",\
             destination_service=\"{service}.shop.svc.cluster.local\",\
             destination_service_name=\"{service}\",destination_service_namespace=\"shop\",\
             destination_cluster=\"Kubernetes\",request_protocol=\"http\",response_flags=\"-\",\
             grpc_response_status=\"\",connection_security_policy=\"mutual_tls\",\
             source_canonical_service=\"{src}\",destination_canonical_service=\"{service}\""
        )
        .unwrap();
    };

    let counter = if om {
        "istio_requests"
    } else {
        "istio_requests_total"
    };
    writeln!(
        out,
        "# HELP {counter} Requests by source, destination and code."
    )
    .unwrap();
    writeln!(out, "# TYPE {counter} counter").unwrap();
    let mut n: u64 = 7;
    for src in sources {
        for dst in destinations {
            for code in codes {
                out.push_str("istio_requests_total{");
                series(&mut out, src, dst, code);
                n = n
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                writeln!(out, "}} {}", (n >> 40) % 1_000_000).unwrap();
            }
        }
    }
    let hist = "istio_request_duration_milliseconds";
    writeln!(out, "# HELP {hist} Request latency.").unwrap();
    writeln!(out, "# TYPE {hist} histogram").unwrap();
    for src in sources {
        for dst in destinations {
            for code in codes {
                let mut cumulative: u64 = 0;
                for le in BOUNDS_MS {
                    n = n
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    if le != "+Inf" {
                        cumulative += (n >> 50) % 500;
                    }
                    write!(out, "{hist}_bucket{{").unwrap();
                    series(&mut out, src, dst, code);
                    writeln!(out, ",le=\"{le}\"}} {cumulative}").unwrap();
                }
                write!(out, "{hist}_sum{{").unwrap();
                series(&mut out, src, dst, code);
                writeln!(out, "}} {}.25", cumulative * 37).unwrap();
                write!(out, "{hist}_count{{").unwrap();
                series(&mut out, src, dst, code);
                writeln!(out, "}} {cumulative}").unwrap();
            }
        }
    }
    let envoy = if om {
        "envoy_cluster_upstream_rq"
    } else {
        "envoy_cluster_upstream_rq_total"
    };
    writeln!(out, "# TYPE {envoy} counter").unwrap();
    for cluster in 0..200 {
        for code in codes {
            writeln!(
                out,
                "envoy_cluster_upstream_rq_total{{envoy_response_code=\"{code}\",envoy_cluster_name=\"outbound|8080||svc-{cluster}.shop.svc.cluster.local\"}} {}",
                cluster * 31 + 7
            )
            .unwrap();
        }
    }
    if om {
        // The Go runtime block is text format (counters named `_total` in their TYPE);
        // OpenMetrics input ends here.
        out.push_str("# EOF\n");
    } else {
        out.push_str(GO_RUNTIME);
    }
    out
}

fn bench(c: &mut Criterion) {
    let text = mesh_exposition(Format::Text);
    let om = mesh_exposition(Format::OpenMetrics);
    // The inputs must parse. We keep one sample per line; the crate folds a histogram's
    // buckets (and a summary's quantiles) into one sample, so counts differ by design.
    let ours = parse(&text, Format::Text).expect("text bench input parses");
    let sample_lines = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(ours.sample_count(), sample_lines);
    let theirs = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("prometheus-parse reads the bench input");
    assert!(!theirs.samples.is_empty());
    parse(&om, Format::OpenMetrics).expect("OpenMetrics bench input parses");
    eprintln!(
        "input: text {} bytes, {} samples; OpenMetrics {} bytes",
        text.len(),
        ours.sample_count(),
        om.len()
    );

    let mut group = c.benchmark_group("exposition");
    group.sample_size(20);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("augury_parse_text", |b| {
        b.iter(|| parse(black_box(&text), Format::Text).map(|e| e.families.len()))
    });
    group.bench_function("augury_events_text", |b| {
        b.iter(|| Events::new(black_box(&text), Format::Text).count())
    });
    group.bench_function("prometheus_parse_text", |b| {
        b.iter(|| {
            prometheus_parse::Scrape::parse(
                black_box(&text)
                    .lines()
                    .map(|l| Ok::<_, io::Error>(l.to_string())),
            )
            .map(|s| s.samples.len())
        })
    });
    group.throughput(Throughput::Bytes(om.len() as u64));
    group.bench_function("augury_parse_openmetrics", |b| {
        b.iter(|| parse(black_box(&om), Format::OpenMetrics).map(|e| e.families.len()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
