//! Cost of one look of each sequential test (what the analysis runner pays per interval).
// A benchmark panics on a broken setup: there is no caller to report an error to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use std::collections::BTreeMap;

use augury::judge::data::HistogramSide;
use augury::judge::{JudgeOptions, MetricData, SequentialState, judge_looks, judge_step};
use augury::model::Catalog;
use augury::stats::LogHistogram;
use augury::stats::proportions::Counts;
use augury::stats::sequential::SequentialConfig;
use augury::stats::sequential::counts::RateRatioTest;
use augury::stats::sequential::exceedance::ExceedanceTest;
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

/// What the analysis runner pays per interval of an `http-red` analysis: one look with
/// the state kept (now) against replaying every earlier look (before), at look 1,000.
fn analysis_looks(c: &mut Criterion) {
    let model = Catalog::builtin().get("http-red").unwrap().clone();
    let look: BTreeMap<String, MetricData> = BTreeMap::from([
        (
            "latency".to_string(),
            MetricData::Histograms {
                baseline: HistogramSide {
                    histogram: histogram(1_500, 1.0),
                },
                canary: HistogramSide {
                    histogram: histogram(1_500, 1.01),
                },
            },
        ),
        (
            "error-rate".to_string(),
            MetricData::Counts {
                baseline: Counts {
                    requests: 1_500,
                    errors: 7,
                },
                canary: Counts {
                    requests: 1_500,
                    errors: 8,
                },
            },
        ),
    ]);
    let looks = vec![look.clone(); 1_000];
    let mut cumulative = look.clone();
    for l in &looks[1..] {
        for (k, d) in l {
            cumulative.get_mut(k).unwrap().merge(d);
        }
    }
    let options = JudgeOptions::default();
    let mut state = SequentialState::default();
    for l in &looks[..999] {
        state.advance(&model, l, &options).unwrap();
    }
    c.bench_function("analysis/http-red look 1,000, state kept", |b| {
        b.iter_batched(
            || state.clone(),
            |mut s| black_box(judge_step(&model, &cumulative, &mut s, &look, &options).unwrap()),
            criterion::BatchSize::SmallInput,
        )
    });
    let refs: Vec<_> = looks.iter().collect();
    c.bench_function("analysis/http-red look 1,000, replaying every look", |b| {
        b.iter(|| black_box(judge_looks(&model, &cumulative, &refs, &options).unwrap()))
    });
}

/// One exceedance look at a million and at a billion observations a side: the cost is
/// the law's spread, not the look's size.
fn huge_looks(c: &mut Criterion) {
    for n in [1_000_000u64, 1_000_000_000] {
        c.bench_function(&format!("sequential/exceedance look, {n} a side"), |b| {
            let test = ExceedanceTest::new(augury::stats::Alternative::Greater, 0.5);
            b.iter_batched(
                || test.clone(),
                |mut t| {
                    t.update(n, n / 2 + n / 100, n, n / 2);
                    black_box(t.ln_e_value())
                },
                criterion::BatchSize::SmallInput,
            )
        });
    }
}

criterion_group!(benches, looks, analysis_looks, huge_looks);
criterion_main!(benches);
