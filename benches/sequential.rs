//! Cost of one look of each sequential test (what the analysis runner pays per interval).

use std::hint::black_box;

use augury::stats::LogHistogram;
use augury::stats::proportions::Counts;
use augury::stats::sequential::SequentialConfig;
use augury::stats::sequential::counts::RateRatioTest;
use augury::stats::sequential::quantiles::LatencyTest;
use criterion::{Criterion, criterion_group, criterion_main};

/// A lognormal-shaped histogram of `n` requests (median 100 ms, log-sd 0.5), from quantiles.
fn histogram(n: usize, scale: f64) -> LogHistogram {
    let mut h = LogHistogram::new();
    for i in 0..n {
        let p = (i as f64 + 0.5) / n as f64;
        h.record(scale * 100.0 * (0.5 * augury::stats::normal::ppf(p)).exp());
    }
    h
}

fn looks(c: &mut Criterion) {
    let config = SequentialConfig::default();
    let plan = config.latency_plan().unwrap();
    c.bench_function("sequential/latency plan (band constant)", |b| {
        b.iter(|| black_box(config.latency_plan().unwrap()))
    });
    let (canary, baseline) = (histogram(1_500, 1.05), histogram(1_500, 1.0));
    c.bench_function(
        "sequential/latency look (1,500 requests per version, 30th look)",
        |b| {
            let mut test = LatencyTest::new(&plan);
            for _ in 0..29 {
                test.update(&canary, &baseline);
            }
            b.iter_batched(
                || test.clone(),
                |mut t| black_box(t.update(&canary, &baseline)),
                criterion::BatchSize::SmallInput,
            )
        },
    );
    c.bench_function("sequential/error-rate look", |b| {
        let mut test = RateRatioTest::new(&config.rate_ratio_config()).unwrap();
        let (kc, kb) = (
            Counts {
                requests: 1_500,
                errors: 9,
            },
            Counts {
                requests: 1_500,
                errors: 7,
            },
        );
        b.iter(|| black_box(test.update(kc, kb).unwrap()))
    });
}

criterion_group!(benches, looks);
criterion_main!(benches);
