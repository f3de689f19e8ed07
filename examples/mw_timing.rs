//! Times Augury's Mann-Whitney on generated lognormal samples, for
//! `scripts/bench_mannwhitney_vs_scipy.py` and for tuning the sort.
//!
//! `mw_timing N [REPS]`      best-of-REPS seconds for sort (both sides) + test, N per side.
//! `mw_timing sort N [REPS]` best-of-REPS seconds of `Sorted::new` and of
//!                           `sort_unstable_by(total_cmp)` on one N-value sample.
//! `mw_timing exact N [REPS]` best-of-REPS seconds of the exact test, N x N, U near the
//!                           middle of its range (the most work).
//! `mw_timing parts N [REPS]` best-of-REPS seconds of `Sorted::pair` and of the test
//!                           on the sorted samples, separately.
// An example panics on a broken setup: there is no caller to report an error to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use augury::stats::mannwhitney::mann_whitney;
use augury::stats::{Alternative, Method, Sorted};

#[path = "../benches/support/lognormal.rs"]
mod lognormal;

use lognormal::samples;

fn best_of<F: FnMut() -> f64>(reps: usize, mut f: F) -> f64 {
    (0..reps).map(|_| f()).fold(f64::INFINITY, f64::min)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: usize| -> usize {
        args.get(i)
            .map(|s| s.parse().expect("sizes are whole numbers"))
            .unwrap_or(default)
    };
    if args.first().map(String::as_str) == Some("sort") {
        let n = num(1, 1_000_000);
        let reps = num(2, 5);
        let data = samples(n, 1, 3.0);
        let ours = best_of(reps, || {
            let v = data.clone();
            let t = Instant::now();
            let s = Sorted::new(v, "x").expect("generated data has no NaN");
            let e = t.elapsed().as_secs_f64();
            std::hint::black_box(s);
            e
        });
        let std_sort = best_of(reps, || {
            let mut v = data.clone();
            let t = Instant::now();
            v.sort_unstable_by(f64::total_cmp);
            let e = t.elapsed().as_secs_f64();
            std::hint::black_box(v);
            e
        });
        println!("{n} sorted {ours:.9} sort_unstable {std_sort:.9}");
        return;
    }
    if args.first().map(String::as_str) == Some("exact") {
        let n = num(1, 200);
        let reps = num(2, 5);
        let c = Sorted::new(samples(n, 21, 3.0), "canary").expect("generated data has no NaN");
        let b = Sorted::new(samples(n, 22, 3.0), "baseline").expect("generated data has no NaN");
        let mut last = None;
        let secs = best_of(reps, || {
            let t = Instant::now();
            let r = mann_whitney(&c, &b, Alternative::TwoSided, Method::Exact);
            let e = t.elapsed().as_secs_f64();
            last = Some(r.expect("within the exact limit"));
            e
        });
        let r = last.expect("at least one repetition");
        println!("{n}x{n} exact {secs:.9} u={} p={:e}", r.u, r.p_value);
        return;
    }
    if args.first().map(String::as_str) == Some("parts") {
        let n = num(1, 1_000_000);
        let reps = num(2, 5);
        let canary = samples(n, 11, 3.02);
        let baseline = samples(n, 12, 3.0);
        let sort = best_of(reps, || {
            let (c, b) = (canary.clone(), baseline.clone());
            let t = Instant::now();
            let pair = Sorted::pair(c, b).expect("generated data has no NaN");
            let e = t.elapsed().as_secs_f64();
            std::hint::black_box(pair);
            e
        });
        let (c, b) = Sorted::pair(canary, baseline).expect("generated data has no NaN");
        let test = best_of(reps, || {
            let t = Instant::now();
            let r = mann_whitney(&c, &b, Alternative::TwoSided, Method::Asymptotic);
            let e = t.elapsed().as_secs_f64();
            std::hint::black_box(r.expect("both samples are non-empty"));
            e
        });
        println!("{n} pair-sort {sort:.9} test {test:.9}");
        return;
    }
    let n = num(0, 1_000_000);
    let reps = num(1, 5);
    let canary = samples(n, 11, 3.02);
    let baseline = samples(n, 12, 3.0);
    let mut last = None;
    let secs = best_of(reps, || {
        let (c, b) = (canary.clone(), baseline.clone());
        let t = Instant::now();
        let (c, b) = Sorted::pair(c, b).expect("generated data has no NaN");
        let r = mann_whitney(&c, &b, Alternative::TwoSided, Method::Asymptotic)
            .expect("both samples are non-empty");
        let e = t.elapsed().as_secs_f64();
        last = Some(r);
        e
    });
    let r = last.expect("at least one repetition");
    println!("{secs:.9} u={} p={:e}", r.u, r.p_value);
}
