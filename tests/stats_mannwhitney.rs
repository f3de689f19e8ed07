//! Mann-Whitney U against SciPy reference values (tests/reference/mannwhitney.py), and
//! properties any correct implementation has.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use augury::stats::mannwhitney::{MannWhitney, mann_whitney, mann_whitney_buckets};
use augury::stats::normal;
use augury::stats::{Alternative, Method, MethodUsed, Sorted, StatsError};
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    canary: Vec<f64>,
    baseline: Vec<f64>,
    results: Vec<Expected>,
}

#[derive(Deserialize)]
struct Expected {
    method: String,
    alternative: String,
    u: f64,
    p: f64,
    p_rational: Option<f64>,
}

fn reference() -> Reference {
    let text = include_str!("reference/mannwhitney.json");
    serde_json::from_str(text).expect("reference JSON parses")
}

fn sorted(v: &[f64]) -> Sorted {
    Sorted::new(v.to_vec(), "test").expect("no NaN in test data")
}

fn alternative(name: &str) -> Alternative {
    match name {
        "two-sided" => Alternative::TwoSided,
        "greater" => Alternative::Greater,
        "less" => Alternative::Less,
        other => panic!("unknown alternative {other}"),
    }
}

fn method(name: &str) -> (Method, MethodUsed) {
    match name {
        "exact" => (Method::Exact, MethodUsed::Exact),
        "asymptotic" => (Method::Asymptotic, MethodUsed::Asymptotic),
        other => panic!("unknown method {other}"),
    }
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    got == want || (got - want).abs() <= rel * got.abs().max(want.abs())
}

/// Bucket counts for data made of small non-negative integers (value k -> bucket k).
fn as_buckets(c: &[f64], b: &[f64]) -> Option<(Vec<u64>, Vec<u64>)> {
    let all_small_ints = c
        .iter()
        .chain(b)
        .all(|&x| x >= 0.0 && x.fract() == 0.0 && x < 1000.0);
    if !all_small_ints {
        return None;
    }
    let len = c.iter().chain(b).fold(0.0f64, |m, &x| m.max(x)) as usize + 1;
    let count = |v: &[f64]| {
        let mut k = vec![0u64; len];
        v.iter().for_each(|&x| k[x as usize] += 1);
        k
    };
    Some((count(c), count(b)))
}

fn check(case: &Case, e: &Expected, got: &MannWhitney, via: &str) {
    let (_, used) = method(&e.method);
    let what = format!("{} {} {} ({via})", case.name, e.method, e.alternative);
    assert_eq!(got.u, e.u, "{what}: U");
    assert_eq!(got.method, used, "{what}: method");
    assert_eq!(got.n_canary, case.canary.len(), "{what}");
    assert_eq!(got.n_baseline, case.baseline.len(), "{what}");
    let tol = if used == MethodUsed::Exact {
        1e-12
    } else {
        1e-9
    };
    assert!(
        close(got.p_value, e.p, tol),
        "{what}: p = {:e}, SciPy {:e}",
        got.p_value,
        e.p
    );
    if let Some(truth) = e.p_rational {
        assert!(
            close(got.p_value, truth, 1e-12),
            "{what}: p = {:e}, exact rational {:e}",
            got.p_value,
            truth
        );
    }
}

#[test]
fn matches_scipy_on_every_reference_case() {
    let reference = reference();
    let mut checked = 0;
    let mut via_buckets = 0;
    for case in &reference.cases {
        let (c, b) = (sorted(&case.canary), sorted(&case.baseline));
        let buckets = as_buckets(&case.canary, &case.baseline);
        for e in &case.results {
            let (m, _) = method(&e.method);
            let alt = alternative(&e.alternative);
            let got = mann_whitney(&c, &b, alt, m).expect("reference cases are valid");
            check(case, e, &got, "samples");
            checked += 1;
            if let Some((cb, bb)) = &buckets {
                let from_buckets = mann_whitney_buckets(cb, bb, alt, m).expect("valid buckets");
                check(case, e, &from_buckets, "buckets");
                via_buckets += 1;
            }
        }
    }
    // Guards against a reference file that silently lost its cases.
    assert!(checked >= 130, "only {checked} reference results");
    assert!(via_buckets >= 40, "only {via_buckets} bucket results");
}

#[test]
fn kayenta_example_canary_10_20_30_40_baseline_1_2_3_4() {
    let case = reference()
        .cases
        .into_iter()
        .find(|c| c.name == "kayenta_10_20_30_40_vs_1_2_3_4")
        .expect("Kayenta case is in the reference file");
    assert_eq!(case.canary, [10.0, 20.0, 30.0, 40.0]);
    assert_eq!(case.baseline, [1.0, 2.0, 3.0, 4.0]);
    let got = mann_whitney(
        &sorted(&case.canary),
        &sorted(&case.baseline),
        Alternative::TwoSided,
        Method::Auto,
    )
    .unwrap();
    let e = case
        .results
        .iter()
        .find(|e| e.method == "exact" && e.alternative == "two-sided")
        .unwrap();
    // Small and untied: Auto is exact, and U is the largest possible, 4 * 4.
    check(&case, e, &got, "auto");
    assert_eq!(got.u, 16.0);
}

#[test]
fn auto_follows_the_r_rule_exact_below_50_without_ties() {
    let seq = |n: usize, offset: f64| -> Vec<f64> { (0..n).map(|i| i as f64 + offset).collect() };
    let used = |c: &[f64], b: &[f64]| {
        mann_whitney(&sorted(c), &sorted(b), Alternative::TwoSided, Method::Auto)
            .unwrap()
            .method
    };
    assert_eq!(used(&seq(49, 0.5), &seq(49, 0.0)), MethodUsed::Exact);
    assert_eq!(used(&seq(50, 0.5), &seq(49, 0.0)), MethodUsed::Asymptotic);
    assert_eq!(used(&seq(3, 0.5), &seq(60, 0.0)), MethodUsed::Asymptotic);
    // A single tie sends Auto to the normal approximation.
    assert_eq!(used(&seq(5, 0.0), &seq(5, 0.0)), MethodUsed::Asymptotic);
    // And Auto's exact p is the explicit exact p.
    let (c, b) = (sorted(&seq(20, 3.5)), sorted(&seq(30, 0.0)));
    let auto = mann_whitney(&c, &b, Alternative::Less, Method::Auto).unwrap();
    let exact = mann_whitney(&c, &b, Alternative::Less, Method::Exact).unwrap();
    assert_eq!(auto, exact);
}

#[test]
fn empty_samples_and_misaligned_buckets_are_refused() {
    let one = sorted(&[1.0]);
    let none = sorted(&[]);
    let alt = Alternative::TwoSided;
    assert_eq!(
        mann_whitney(&none, &one, alt, Method::Auto),
        Err(StatsError::Empty { which: "canary" })
    );
    assert_eq!(
        mann_whitney(&one, &none, alt, Method::Auto),
        Err(StatsError::Empty { which: "baseline" })
    );
    assert_eq!(
        mann_whitney_buckets(&[0, 0], &[1, 2], alt, Method::Auto),
        Err(StatsError::Empty { which: "canary" })
    );
    assert!(matches!(
        mann_whitney_buckets(&[1, 2, 3], &[1, 2], alt, Method::Auto),
        Err(StatsError::Invalid(m)) if m.contains("3 buckets")
    ));
}

#[test]
fn z_carries_the_direction_and_gives_the_p_value() {
    let c: Vec<f64> = (0..300).map(|i| (i as f64 * 0.37).sin() + 0.2).collect();
    let b: Vec<f64> = (0..250).map(|i| (i as f64 * 0.53).cos()).collect();
    let (c, b) = (sorted(&c), sorted(&b));
    for alt in [
        Alternative::TwoSided,
        Alternative::Greater,
        Alternative::Less,
    ] {
        let r = mann_whitney(&c, &b, alt, Method::Asymptotic).unwrap();
        let z = r.z.expect("asymptotic results carry z");
        assert!(z > 0.0, "canary shifted up, z = {z}");
        let p = match alt {
            Alternative::Greater => normal::sf(z),
            Alternative::Less => normal::cdf(z),
            Alternative::TwoSided => (2.0 * normal::sf(z.abs())).min(1.0),
        };
        assert!(close(r.p_value, p, 1e-12), "{alt:?}: {} vs {p}", r.p_value);
    }
    let exact = mann_whitney(
        &sorted(&[1.0, 2.0]),
        &sorted(&[3.0]),
        Alternative::Less,
        Method::Auto,
    );
    assert_eq!(exact.unwrap().z, None);
    let flat = mann_whitney(
        &sorted(&[2.0; 4]),
        &sorted(&[2.0; 3]),
        Alternative::Less,
        Method::Auto,
    );
    assert_eq!(flat.as_ref().map(|r| (r.p_value, r.z)), Ok((1.0, None)));
}

const ALTERNATIVES: [Alternative; 3] = [
    Alternative::TwoSided,
    Alternative::Greater,
    Alternative::Less,
];
const METHODS: [Method; 3] = [Method::Auto, Method::Exact, Method::Asymptotic];

/// Samples with many ties (small integers) or none to speak of (scaled fractions).
fn sample() -> impl Strategy<Value = Vec<f64>> {
    prop_oneof![
        proptest::collection::vec((0u8..6).prop_map(f64::from), 1..40),
        proptest::collection::vec((-1e6f64..1e6).prop_map(|x| x * 1e-3), 1..60),
    ]
}

proptest! {
    #[test]
    fn swapping_the_samples_mirrors_the_test(c in sample(), b in sample()) {
        let (sc, sb) = (sorted(&c), sorted(&b));
        for m in METHODS {
            let two = mann_whitney(&sc, &sb, Alternative::TwoSided, m).unwrap();
            let owt = mann_whitney(&sb, &sc, Alternative::TwoSided, m).unwrap();
            prop_assert_eq!(two.u + owt.u, (c.len() * b.len()) as f64);
            prop_assert_eq!(two.p_value, owt.p_value);
            let greater = mann_whitney(&sc, &sb, Alternative::Greater, m).unwrap();
            let less = mann_whitney(&sb, &sc, Alternative::Less, m).unwrap();
            prop_assert_eq!(greater.p_value, less.p_value);
        }
    }

    #[test]
    fn bucket_test_equals_sample_test_on_bucketized_data(
        counts in proptest::collection::vec((0u64..5, 0u64..5), 1..30),
    ) {
        let (c, b): (Vec<u64>, Vec<u64>) = counts.into_iter().unzip();
        prop_assume!(c.iter().sum::<u64>() > 0 && b.iter().sum::<u64>() > 0);
        let expand = |counts: &[u64]| -> Vec<f64> {
            counts
                .iter()
                .enumerate()
                .flat_map(|(k, &n)| std::iter::repeat_n(k as f64, n as usize))
                .collect()
        };
        let (sc, sb) = (sorted(&expand(&c)), sorted(&expand(&b)));
        for alt in ALTERNATIVES {
            for m in METHODS {
                let from_samples = mann_whitney(&sc, &sb, alt, m).unwrap();
                let from_buckets = mann_whitney_buckets(&c, &b, alt, m).unwrap();
                prop_assert_eq!(from_buckets, from_samples);
            }
        }
    }

    #[test]
    fn p_is_a_probability(c in sample(), b in sample()) {
        let (sc, sb) = (sorted(&c), sorted(&b));
        for alt in ALTERNATIVES {
            for m in METHODS {
                let r = mann_whitney(&sc, &sb, alt, m).unwrap();
                prop_assert!((0.0..=1.0).contains(&r.p_value), "{:?}", r);
                prop_assert!((0.0..=(c.len() * b.len()) as f64).contains(&r.u));
            }
        }
    }

    #[test]
    fn input_order_does_not_matter(
        c in sample(),
        b in sample(),
        rotate in 0usize..100,
    ) {
        let shuffle = |v: &[f64]| -> Vec<f64> {
            let mut v: Vec<f64> = v.iter().rev().copied().collect();
            let k = rotate % v.len();
            v.rotate_left(k);
            v
        };
        for alt in ALTERNATIVES {
            let a = mann_whitney(&sorted(&c), &sorted(&b), alt, Method::Auto).unwrap();
            let z = mann_whitney(&sorted(&shuffle(&c)), &sorted(&shuffle(&b)), alt, Method::Auto)
                .unwrap();
            prop_assert_eq!(a, z);
        }
    }
}
