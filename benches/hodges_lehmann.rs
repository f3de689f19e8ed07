//! Hodges-Lehmann interval on samples of 1,000 and 100,000 values per side.
//!
//! Samples are sorted once outside the timed loop: callers hold `Sorted` values already,
//! shared with Mann-Whitney. Data: log-normal latencies (median about 20 ms) from a
//! fixed-seed generator, the canary 2% slower; once continuous, once rounded to whole
//! milliseconds (heavy ties). Also a forced exact interval at 1,000 x 1,000.
// A benchmark panics on a broken setup: there is no caller to report an error to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use augury::stats::hodges_lehmann::hodges_lehmann;
use augury::stats::{Method, Sorted};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// SplitMix64: deterministic, dependency-free, plenty for benchmark data.
struct SplitMix(u64);

impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// exp(N(mu, sigma)) by Box-Muller.
    fn lognormal(&mut self, mu: f64, sigma: f64) -> f64 {
        let (u, v) = (self.next_f64(), self.next_f64());
        let z = (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        (mu + sigma * z).exp()
    }
}

fn samples(n: usize, seed: u64, whole_ms: bool) -> (Sorted, Sorted) {
    let mut rng = SplitMix(seed);
    let round = |v: f64| if whole_ms { v.round() } else { v };
    let canary = (0..n)
        .map(|_| round(1.02 * rng.lognormal(3.0, 0.5)))
        .collect();
    let baseline = (0..n).map(|_| round(rng.lognormal(3.0, 0.5))).collect();
    Sorted::pair(canary, baseline).expect("generated samples hold no NaN")
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("hodges_lehmann");
    group.sample_size(20);
    for (name, whole_ms) in [("auto_0.95", false), ("auto_0.95_whole_ms_ties", true)] {
        for n in [1_000, 100_000] {
            let (canary, baseline) = samples(n, 42, whole_ms);
            group.bench_with_input(BenchmarkId::new(name, n), &n, |bench, _| {
                bench.iter(|| {
                    hodges_lehmann(black_box(&canary), black_box(&baseline), 0.95, Method::Auto)
                        .expect("valid samples")
                })
            });
        }
    }
    let (canary, baseline) = samples(1_000, 7, false);
    group.bench_function("exact_forced/1000", |bench| {
        bench.iter(|| {
            hodges_lehmann(
                black_box(&canary),
                black_box(&baseline),
                0.95,
                Method::Exact,
            )
            .expect("valid samples")
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
