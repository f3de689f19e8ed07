//! `LogHistogram`: accuracy, exact merging, order independence, persistence, and the
//! histogram rank test's agreement with the sample rank test on the bucketed data.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use augury::stats::histogram::{
    GAMMA, MAX_INDEX, MIN_INDEX, RELATIVE_ACCURACY, ZERO_INDEX, aligned_counts,
    mann_whitney_histograms, zero_threshold,
};
use augury::stats::mannwhitney::mann_whitney;
use augury::stats::{Alternative, LogHistogram, Method, Sorted, StatsError};
use proptest::prelude::*;

/// 1% and the rounding of the boundary table (~1e-13 relative) on top.
const TOLERANCE: f64 = RELATIVE_ACCURACY * (1.0 + 1e-9);

fn rel_err(approx: f64, exact: f64) -> f64 {
    (approx - exact).abs() / exact
}

fn from(values: &[f64]) -> LogHistogram {
    let mut h = LogHistogram::new();
    for &v in values {
        h.record(v);
    }
    h
}

/// 20,001 values spaced evenly in log scale over 1e-6..1e6.
fn log_grid() -> impl Iterator<Item = f64> {
    (0..=20_000).map(|i| 10f64.powf(-6.0 + 12.0 * i as f64 / 20_000.0))
}

#[test]
fn representative_is_within_one_percent_across_the_range() {
    for v in log_grid() {
        let index = LogHistogram::bucket_index(v).unwrap();
        let r = LogHistogram::bucket_value(index);
        assert!(rel_err(r, v) <= TOLERANCE, "{v}: representative {r}");
        let mut h = LogHistogram::new();
        h.record(v);
        for q in [0.0, 0.5, 1.0] {
            let got = h.quantile(q).unwrap();
            assert!(rel_err(got, v) <= TOLERANCE, "{v}: q{q} = {got}");
        }
    }
}

#[test]
fn worst_case_error_is_reached_at_the_bounds_and_not_passed() {
    let mut worst: f64 = 0.0;
    for i in [MIN_INDEX, -400, -1, 0, 1, 350, MAX_INDEX] {
        let (lo, hi) = LogHistogram::bucket_bounds(i);
        let r = LogHistogram::bucket_value(i);
        assert!(lo < r && r < hi, "bucket {i}");
        assert!(((hi / lo) / GAMMA - 1.0).abs() < 1e-12, "bucket {i} width");
        assert_eq!(
            LogHistogram::bucket_index(hi),
            Some(i),
            "upper bound of {i}"
        );
        if i > MIN_INDEX {
            assert_eq!(
                LogHistogram::bucket_index(lo),
                Some(i - 1),
                "lower bound of {i}"
            );
            assert_eq!(
                LogHistogram::bucket_bounds(i - 1).1,
                lo,
                "buckets {i} contiguous"
            );
        }
        worst = worst.max(rel_err(r, hi)).max(rel_err(r, lo.next_up()));
    }
    assert!(
        worst <= TOLERANCE && worst > RELATIVE_ACCURACY * 0.999,
        "{worst}"
    );
}

#[test]
fn quantiles_track_order_statistics() {
    // Deterministic log-uniform sample over 1e-6..1e6 (xorshift; no seeds from the clock).
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut values: Vec<f64> = (0..50_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 11) as f64 / (1u64 << 53) as f64;
            10f64.powf(-6.0 + 12.0 * u)
        })
        .collect();
    let h = from(&values);
    values.sort_by(f64::total_cmp);
    let n = values.len();
    for q in [
        0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 1.0,
    ] {
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        let exact = values[rank - 1];
        let got = h.quantile(q).unwrap();
        assert!(rel_err(got, exact) <= TOLERANCE, "q{q}: {got} vs {exact}");
    }
    assert_eq!(h.quantile(0.0), Some(values[0]));
    assert_eq!(h.quantile(1.0), Some(values[n - 1]));
    assert_eq!(h.quantile(1.5), None);
    assert_eq!(h.quantile(f64::NAN), None);
    assert_eq!(LogHistogram::new().quantile(0.5), None);
}

#[test]
fn summary_statistics() {
    let h = from(&[3.0, 1.0, 2.0, 10.0]);
    assert_eq!(h.count(), 4);
    assert_eq!(h.sum(), 16.0);
    assert_eq!(h.min(), Some(1.0));
    assert_eq!(h.max(), Some(10.0));
    assert_eq!(h.mean(), Some(4.0));
    assert!(!h.is_empty());
    let empty = LogHistogram::default();
    assert!(empty.is_empty());
    assert_eq!((empty.min(), empty.max(), empty.mean()), (None, None, None));
    assert_eq!(empty.buckets().count(), 0);
}

#[test]
fn zero_bucket_and_clamped_top() {
    let mut h = LogHistogram::new();
    h.record(0.0);
    h.record(-0.0);
    h.record(zero_threshold());
    h.record(1e-12);
    h.record(1e300);
    let buckets: Vec<(i32, u64)> = h.buckets().collect();
    assert_eq!(buckets, vec![(ZERO_INDEX, 4), (MAX_INDEX, 1)]);
    assert_eq!(h.zero_count(), 4);
    assert_eq!(h.min(), Some(0.0));
    assert!(h.min().unwrap().is_sign_positive());
    assert_eq!(h.max(), Some(1e300));
    assert_eq!(h.quantile(0.5), Some(0.0));
    // The clamped value's quantile is pulled back to the true max.
    assert_eq!(h.quantile(1.0), Some(1e300));
    assert_eq!(LogHistogram::bucket_value(ZERO_INDEX), 0.0);
    assert_eq!(
        LogHistogram::bucket_index(zero_threshold().next_up()),
        Some(MIN_INDEX)
    );
    assert!((zero_threshold() / 1e-9 - 1.0).abs() < 0.05);
    // Out-of-range indices clamp rather than panic.
    assert_eq!(LogHistogram::bucket_value(i32::MIN), 0.0);
    assert_eq!(
        LogHistogram::bucket_value(i32::MAX),
        LogHistogram::bucket_value(MAX_INDEX)
    );
}

#[test]
fn bad_values_are_refused_or_dropped() {
    let mut h = LogHistogram::new();
    for bad in [f64::NAN, -1.0, -1e-300, f64::INFINITY, f64::NEG_INFINITY] {
        let err = h.try_record(bad).unwrap_err();
        assert!(matches!(err, StatsError::Invalid(_)), "{bad}");
        assert!(
            err.to_string().contains("not a finite non-negative"),
            "{err}"
        );
        h.record(bad);
        h.record_n(bad, 7);
        assert_eq!(LogHistogram::bucket_index(bad), None);
    }
    assert!(h.is_empty());
    h.record_n(5.0, 0);
    assert!(h.is_empty());
    h.try_record_n(5.0, 3).unwrap();
    assert_eq!(h.count(), 3);
    assert_eq!(h.sum(), 15.0);
}

#[test]
fn memory_follows_the_value_range_not_the_traffic() {
    let mut h = LogHistogram::new();
    for i in 0..1_000_000u64 {
        // 1 ms .. 10 s in seconds.
        h.record(1e-3 * 10f64.powf(4.0 * (i % 997) as f64 / 996.0));
    }
    let json = serde_json::to_value(&h).unwrap();
    let slots = json["counts"].as_array().unwrap().len();
    // ln(10^4) / ln(gamma) = 460.5 buckets span four decades.
    assert!((460..=462).contains(&slots), "{slots} slots");
    assert_eq!(h.count(), 1_000_000);
}

#[test]
fn serde_form_is_compact_and_checked() {
    let h = from(&[1.0, 1.0, 2.0, 0.0]);
    let json = serde_json::to_value(&h).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keys.len(), 6, "{json}");
    assert_eq!(json["zero"], 1);
    assert_eq!(json["offset"], LogHistogram::bucket_index(1.0).unwrap());
    let counts = json["counts"].as_array().unwrap();
    assert_eq!(counts.first().unwrap(), 2);
    assert_eq!(counts.last().unwrap(), 1);
    let back: LogHistogram = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, h);
    assert_eq!(back.sum(), h.sum());

    // A value whose shortest decimal form a fast float parser reads back one ulp off.
    let awkward = from(&[9.274136589820921e19, 0.1 + 0.2]);
    let back: LogHistogram =
        serde_json::from_str(&serde_json::to_string(&awkward).unwrap()).unwrap();
    assert_eq!(back, awkward);
    assert_eq!(back.sum().to_bits(), awkward.sum().to_bits());

    let empty: LogHistogram =
        serde_json::from_str(&serde_json::to_string(&LogHistogram::new()).unwrap()).unwrap();
    assert!(empty.is_empty());

    let refuse = |patch: &dyn Fn(&mut serde_json::Value), what: &str| {
        let mut bad = json.clone();
        patch(&mut bad);
        let err = serde_json::from_value::<LogHistogram>(bad).unwrap_err();
        assert!(err.to_string().contains(what), "{err}");
    };
    refuse(&|j| j["offset"] = (MAX_INDEX).into(), "outside");
    refuse(&|j| j["offset"] = (MIN_INDEX - 5).into(), "outside");
    refuse(&|j| j["min"] = 0.5.into(), "lowest");
    refuse(&|j| j["max"] = 50.0.into(), "highest");
    refuse(&|j| j["max"] = serde_json::Value::Null, "missing");
    refuse(&|j| j["sum"] = (-1.0).into(), "sum");
    refuse(&|j| j["zero"] = u64::MAX.into(), "overflow");
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        1 => Just(0.0),
        1 => 0.0f64..2e-9,
        12 => (-25.0f64..40.0).prop_map(f64::exp),
        1 => 1e15f64..1e20,
    ]
}

fn values(max: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(value(), 0..max)
}

proptest! {
    #[test]
    fn merge_equals_histogram_of_concatenation(a in values(200), b in values(200)) {
        let mut merged = from(&a);
        merged.merge(&from(&b));
        let all: Vec<f64> = a.iter().chain(&b).copied().collect();
        let direct = from(&all);
        prop_assert_eq!(&merged, &direct);
        let scale = direct.sum().max(f64::MIN_POSITIVE);
        prop_assert!((merged.sum() - direct.sum()).abs() <= 1e-12 * scale);
        // Merging is symmetric too.
        let mut other_way = from(&b);
        other_way.merge(&from(&a));
        prop_assert_eq!(&other_way, &direct);
    }

    #[test]
    fn recording_order_does_not_matter(
        shuffled in values(300).prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
    ) {
        let (original, permuted) = shuffled;
        prop_assert_eq!(from(&original), from(&permuted));
    }

    #[test]
    fn serde_round_trip(a in values(300)) {
        let h = from(&a);
        let json = serde_json::to_string(&h).unwrap();
        let back: LogHistogram = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &h);
        prop_assert_eq!(back.sum().to_bits(), h.sum().to_bits());
        prop_assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }

    #[test]
    fn record_n_equals_repeated_record(v in value(), n in 0u64..50) {
        let mut once = LogHistogram::new();
        once.record_n(v, n);
        prop_assert_eq!(once, from(&vec![v; n as usize]));
    }
}

/// Each observation replaced by its bucket's representative value.
fn bucketed(h: &LogHistogram) -> Vec<f64> {
    h.buckets()
        .flat_map(|(i, c)| std::iter::repeat_n(LogHistogram::bucket_value(i), c as usize))
        .collect()
}

#[test]
fn aligned_counts_cover_both_in_order() {
    let a = from(&[0.0, 1.0, 1.0, 5.0]);
    let b = from(&[1.0, 2.0, 100.0]);
    let (x, y) = aligned_counts(&a, &b);
    assert_eq!(x, vec![1, 2, 0, 1, 0]);
    assert_eq!(y, vec![0, 1, 1, 0, 1]);
}

#[test]
fn histogram_rank_test_equals_sample_test_on_bucketed_values() {
    let canary = from(&[0.0, 1.2, 3.4, 3.41, 7.0, 7.0, 12.0, 30.0, 31.0]);
    let baseline = from(&[0.5, 1.0, 1.2, 2.0, 3.4, 5.0, 6.0, 6.1, 9.0, 9.0, 11.0]);
    let (c, b) = Sorted::pair(bucketed(&canary), bucketed(&baseline)).unwrap();
    for alternative in [
        Alternative::TwoSided,
        Alternative::Greater,
        Alternative::Less,
    ] {
        for method in [Method::Auto, Method::Asymptotic] {
            let hist = mann_whitney_histograms(&canary, &baseline, alternative, method).unwrap();
            let sample = mann_whitney(&c, &b, alternative, method).unwrap();
            assert_eq!(hist.u, sample.u, "{alternative:?} {method:?}");
            assert!(
                (hist.p_value - sample.p_value).abs() <= 1e-12 * sample.p_value.max(1e-300),
                "{alternative:?} {method:?}: {} vs {}",
                hist.p_value,
                sample.p_value
            );
            assert_eq!(hist.n_canary, canary.count() as usize);
            assert_eq!(hist.n_baseline, baseline.count() as usize);
        }
    }
}

#[test]
fn histogram_rank_test_refuses_empty_sides() {
    let some = from(&[1.0]);
    let none = LogHistogram::new();
    let run = |c, b| mann_whitney_histograms(c, b, Alternative::TwoSided, Method::Auto);
    assert_eq!(
        run(&none, &some),
        Err(StatsError::Empty { which: "canary" })
    );
    assert_eq!(
        run(&some, &none),
        Err(StatsError::Empty { which: "baseline" })
    );
}
