//! LogHistogram costs: recording (ns per value), merging two 2,000-bucket histograms,
//! and a quantile query. `cargo bench --bench histogram`.

use std::hint::black_box;

use augury::stats::LogHistogram;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Log-normal-ish latencies around 20 ms (seconds), from a fixed xorshift stream.
fn latencies(n: usize) -> Vec<f64> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            // Sum of four uniforms: a cheap bell curve in log space.
            let z = (uniform() + uniform() + uniform() + uniform() - 2.0) * 1.7;
            0.02 * z.exp()
        })
        .collect()
}

/// A histogram with exactly `buckets` consecutive non-empty buckets starting at `from`.
fn wide(from: f64, buckets: usize) -> LogHistogram {
    let mut h = LogHistogram::new();
    let first = LogHistogram::bucket_index(from).unwrap_or(0);
    for i in 0..buckets as i32 {
        h.record_n(LogHistogram::bucket_value(first + i), 1 + (i as u64 % 7));
    }
    h
}

fn record(c: &mut Criterion) {
    let values = latencies(100_000);
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(values.len() as u64));
    group.bench_function("100k latencies", |b| {
        let mut h = LogHistogram::new();
        b.iter(|| {
            for &v in black_box(&values) {
                h.record(v);
            }
        });
        black_box(&h);
    });
    group.finish();
}

fn merge(c: &mut Criterion) {
    let a = wide(1e-4, 2_000);
    let b = wide(3e-4, 2_000);
    assert_eq!(a.buckets().count(), 2_000);
    c.bench_function("merge two 2000-bucket histograms", |bench| {
        bench.iter(|| {
            let mut m = black_box(&a).clone();
            m.merge(black_box(&b));
            m
        });
    });
}

fn quantile(c: &mut Criterion) {
    let mut h = LogHistogram::new();
    for v in latencies(1_000_000) {
        h.record(v);
    }
    c.bench_function("p99 of 1M latencies", |b| {
        b.iter(|| black_box(&h).quantile(black_box(0.99)));
    });
    let w = wide(1e-4, 2_000);
    c.bench_function("p99 of 2000 buckets", |b| {
        b.iter(|| black_box(&w).quantile(black_box(0.99)));
    });
}

criterion_group!(benches, record, merge, quantile);
criterion_main!(benches);
