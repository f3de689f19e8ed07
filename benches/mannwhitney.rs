//! Mann-Whitney U: samples from unsorted vectors (sort + rank + p) at three sizes, the
//! exact distribution at 200 x 200, and the bucket test at about 2,000 buckets.
//!
//! `cargo bench --bench mannwhitney`
// A benchmark panics on a broken setup: there is no caller to report an error to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use augury::stats::mannwhitney::{mann_whitney, mann_whitney_buckets};
use augury::stats::{Alternative, Method, Sorted};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};

#[path = "support/lognormal.rs"]
mod lognormal;

use lognormal::samples;

fn samples_from_unsorted(c: &mut Criterion) {
    let mut group = c.benchmark_group("mann_whitney_asymptotic");
    for n in [1_000usize, 100_000, 1_000_000] {
        if n >= 100_000 {
            group.sample_size(20);
        }
        let canary = samples(n, 11, 3.02);
        let baseline = samples(n, 12, 3.0);
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter_batched(
                || (canary.clone(), baseline.clone()),
                |(c, b)| {
                    let (c, b) = Sorted::pair(c, b).expect("no NaN");
                    mann_whitney(&c, &b, Alternative::TwoSided, Method::Asymptotic)
                        .expect("non-empty")
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

fn sort_only(c: &mut Criterion) {
    let mut group = c.benchmark_group("sort_1000000");
    group.sample_size(20);
    let data = samples(1_000_000, 1, 3.0);
    group.bench_function("sorted_new", |bench| {
        bench.iter_batched(
            || data.clone(),
            |v| Sorted::new(v, "x").expect("no NaN"),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("sort_unstable_by_total_cmp", |bench| {
        bench.iter_batched(
            || data.clone(),
            |mut v| {
                v.sort_unstable_by(f64::total_cmp);
                v
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn exact_200(c: &mut Criterion) {
    // Same distribution on both sides, so U lands near n1 n2 / 2: the most work.
    let canary = Sorted::new(samples(200, 21, 3.0), "canary").expect("no NaN");
    let baseline = Sorted::new(samples(200, 22, 3.0), "baseline").expect("no NaN");
    c.bench_function("mann_whitney_exact/200x200", |bench| {
        bench.iter(|| {
            mann_whitney(
                black_box(&canary),
                black_box(&baseline),
                Alternative::TwoSided,
                Method::Exact,
            )
            .expect("within the exact limit")
        });
    });
}

fn buckets_2000(c: &mut Criterion) {
    // A million observations per side, counted into 2,000 log-spaced buckets.
    const BUCKETS: usize = 2_000;
    let count = |v: Vec<f64>| {
        let mut k = vec![0u64; BUCKETS];
        for x in v {
            let i = ((x.ln() + 2.0) / 10.0 * BUCKETS as f64).clamp(0.0, (BUCKETS - 1) as f64);
            k[i as usize] += 1;
        }
        k
    };
    let canary = count(samples(1_000_000, 31, 3.02));
    let baseline = count(samples(1_000_000, 32, 3.0));
    c.bench_function("mann_whitney_buckets/2000", |bench| {
        bench.iter(|| {
            mann_whitney_buckets(
                black_box(&canary),
                black_box(&baseline),
                Alternative::TwoSided,
                Method::Auto,
            )
            .expect("non-empty")
        });
    });
}

criterion_group!(
    benches,
    samples_from_unsorted,
    sort_only,
    exact_200,
    buckets_2000
);
criterion_main!(benches);
