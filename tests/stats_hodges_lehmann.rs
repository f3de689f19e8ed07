//! Hodges-Lehmann interval and effect sizes against R (tests/reference/hodges_lehmann.R,
//! which wrote tests/reference/hodges_lehmann.json), plus properties that hold for any
//! samples.
//!
//! Tolerances: where R's answer is exact (order statistics of the same floating-point
//! differences, and the jumps of R's statistic located by the script) we ask for 1e-9
//! relative, i.e. agreement to rounding. R's asymptotic interval itself comes from
//! `uniroot(tol = 1e-4)`, which stops within `tol.root + 4 eps |root|` of the jump, so
//! the raw R values are checked with that bound.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use augury::stats::effect::{effect_sizes, mean, median};
use augury::stats::hodges_lehmann::{exact_u_quantile, hodges_lehmann, kth_difference};
use augury::stats::{Method, MethodUsed, Sorted};
use proptest::prelude::*;
use serde_json::Value;

fn reference() -> Value {
    let text = include_str!("reference/hodges_lehmann.json");
    serde_json::from_str(text).expect("reference JSON parses")
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn num(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number"))
}

fn sorted(values: Vec<f64>) -> Sorted {
    Sorted::new(values, "test").unwrap()
}

fn close(got: f64, want: f64, rel: f64) -> bool {
    (got - want).abs() <= rel * want.abs().max(1.0)
}

fn method_of(name: &str) -> Method {
    match name {
        "auto" => Method::Auto,
        "exact" => Method::Exact,
        "asymptotic" => Method::Asymptotic,
        other => panic!("unknown method {other}"),
    }
}

fn method_used_of(name: &str) -> MethodUsed {
    match name {
        "exact" => MethodUsed::Exact,
        "asymptotic" => MethodUsed::Asymptotic,
        other => panic!("unknown method {other}"),
    }
}

#[test]
fn matches_r_on_every_reference_case() {
    let r = reference();
    let tol_root = num(&r, "tol_root");
    let cases = r["cases"].as_array().unwrap();
    assert!(cases.len() >= 19);
    let mut checked = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let canary = sorted(floats(&case["canary"]));
        let baseline = sorted(floats(&case["baseline"]));
        let method = method_of(case["method"].as_str().unwrap());
        for res in case["results"].as_array().unwrap() {
            let conf = num(res, "conf_level");
            let want = &res["expected"];
            let ctx = format!("{name} at {conf}");
            let got = hodges_lehmann(&canary, &baseline, conf, method).unwrap();
            assert_eq!(
                got.method,
                method_used_of(want["method"].as_str().unwrap()),
                "{ctx}"
            );
            for (label, g, w) in [
                ("lower", got.lower, num(want, "lower")),
                ("upper", got.upper, num(want, "upper")),
                ("estimate", got.estimate, num(want, "estimate")),
                ("conf_level", got.conf_level, num(want, "conf_level")),
            ] {
                assert!(close(g, w, 1e-9), "{ctx}: {label} {g} != {w}");
            }
            let (lo, hi) = (num(want, "estimate_lo"), num(want, "estimate_hi"));
            assert!(lo <= got.estimate && got.estimate <= hi, "{ctx}");
            match want["kind"].as_str().unwrap() {
                "exact" => {
                    assert_eq!(res["r_method"], "exact", "{ctx}");
                    assert!(close(got.lower, num(res, "r_lower"), 1e-9), "{ctx}");
                    assert!(close(got.upper, num(res, "r_upper"), 1e-9), "{ctx}");
                    assert!(close(got.estimate, num(res, "r_estimate"), 1e-9), "{ctx}");
                    assert!(
                        close(got.conf_level, num(res, "r_conf_level"), 1e-12),
                        "{ctx}"
                    );
                }
                "asymptotic" => {
                    assert_eq!(res["r_method"], "asymptotic", "{ctx}");
                    let slack = |v: f64| tol_root + 4.0 * f64::EPSILON * v.abs() + 1e-12;
                    let (rl, ru) = (num(res, "r_lower"), num(res, "r_upper"));
                    assert!((got.lower - rl).abs() <= slack(rl), "{ctx}: lower {rl}");
                    assert!((got.upper - ru).abs() <= slack(ru), "{ctx}: upper {ru}");
                    // R's estimate is a root of the same equation: inside the gap
                    // between the middle differences, up to its tolerance.
                    let re = num(res, "r_estimate");
                    assert!(re >= lo - slack(re) && re <= hi + slack(re), "{ctx}: {re}");
                    assert_eq!(got.conf_level, conf, "{ctx}");
                }
                "exact_formula" => assert_eq!(got.method, MethodUsed::Exact, "{ctx}"),
                other => panic!("{ctx}: unknown kind {other}"),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * cases.len());
}

#[test]
fn effect_sizes_match_r() {
    let r = reference();
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let canary = sorted(floats(&case["canary"]));
        let baseline = sorted(floats(&case["baseline"]));
        let want = &case["effect"];
        let (mc, mb) = (num(want, "median_canary"), num(want, "median_baseline"));
        let (ac, ab) = (num(want, "mean_canary"), num(want, "mean_baseline"));
        assert_eq!(median(&canary), Some(mc), "{name}");
        assert_eq!(median(&baseline), Some(mb), "{name}");
        assert!(close(mean(canary.as_slice()).unwrap(), ac, 1e-13), "{name}");
        assert!(
            close(mean(baseline.as_slice()).unwrap(), ab, 1e-13),
            "{name}"
        );

        let res = &case["results"][0];
        let method = method_of(case["method"].as_str().unwrap());
        let shift = hodges_lehmann(&canary, &baseline, num(res, "conf_level"), method).unwrap();
        let e = effect_sizes(&canary, &baseline, num(want, "u"), Some(&shift));
        assert!(
            close(e.cles, num(want, "kayenta_cles"), 1e-12),
            "{name}: cles {}",
            e.cles
        );
        match e.median_ratio {
            Some(ratio) => assert!(close(ratio, mc / mb, 1e-12), "{name}"),
            None => assert_eq!(mb, 0.0, "{name}"),
        }
        match e.mean_ratio {
            Some(ratio) => assert!(close(ratio, ac / ab, 1e-12), "{name}"),
            None => assert!(ac == 0.0 || ab == 0.0, "{name}"),
        }
        match e.relative_shift {
            Some(rel) => {
                let exp = &res["expected"];
                for (g, w) in [
                    (rel.estimate, num(exp, "estimate")),
                    (rel.lower, num(exp, "lower")),
                    (rel.upper, num(exp, "upper")),
                ] {
                    assert!(close(g, w / mb.abs(), 1e-9), "{name}: {g} vs {w}/|{mb}|");
                }
                assert!(
                    rel.lower <= rel.estimate && rel.estimate <= rel.upper,
                    "{name}"
                );
            }
            None => assert_eq!(mb, 0.0, "{name}"),
        }
    }
}

#[test]
fn exact_quantile_matches_qwilcox() {
    let r = reference();
    let levels = floats(&r["qwilcox"]["conf_levels"]);
    let rows = r["qwilcox"]["rows"].as_array().unwrap();
    assert!(rows.len() > 49 * 49);
    for row in rows {
        let row = floats(row);
        let (n, m) = (row[0] as usize, row[1] as usize);
        for (level, want) in levels.iter().zip(&row[2..]) {
            let got = exact_u_quantile((1.0 - level) / 2.0, n, m).unwrap();
            assert_eq!(
                got as f64,
                *want,
                "qwilcox({}, {n}, {m})",
                (1.0 - level) / 2.0
            );
        }
    }
}

fn sample() -> impl Strategy<Value = Vec<f64>> {
    // Small integers give ties and exact arithmetic; wide floats give neither.
    prop_oneof![
        prop::collection::vec((-15i32..15).prop_map(f64::from), 1..25),
        prop::collection::vec(-1e3f64..1e3, 1..25),
        prop::collection::vec(
            prop_oneof![(-3i32..3).prop_map(f64::from), -1e6f64..1e6],
            1..25
        ),
    ]
}

/// Values on every scale, so brackets span hundreds of binades and cross zero.
fn wild_value() -> impl Strategy<Value = f64> {
    (any::<bool>(), -300i32..300, 1.0f64..10.0)
        .prop_map(|(negative, e, m)| if negative { -m } else { m } * 10f64.powi(e))
}

/// Big enough that a search interpolates and bisects before listing its last candidates.
fn large_sample() -> impl Strategy<Value = Vec<f64>> {
    let size = 90..260usize;
    prop_oneof![
        prop::collection::vec((-6i32..6).prop_map(f64::from), size.clone()),
        prop::collection::vec((0.0f64..1.0).prop_map(|u| (-u.ln()).powi(3)), size.clone()),
        prop::collection::vec(wild_value(), size.clone()),
        prop::collection::vec(
            prop_oneof![3 => (0i32..2).prop_map(f64::from), 1 => wild_value()],
            size
        ),
    ]
}

fn integer_sample() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((-40i32..40).prop_map(|v| f64::from(v) / 4.0), 1..30)
}

fn any_method() -> impl Strategy<Value = Method> {
    prop_oneof![
        Just(Method::Auto),
        Just(Method::Exact),
        Just(Method::Asymptotic)
    ]
}

fn any_level() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.95), Just(0.98), Just(0.5), 0.01f64..0.999]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn selection_on_large_samples_equals_sorting(
        c in large_sample(), b in large_sample(), fractions in prop::collection::vec(0.0f64..1.0, 6)
    ) {
        let mut all: Vec<f64> = c.iter().flat_map(|x| b.iter().map(move |y| x - y)).collect();
        all.sort_by(f64::total_cmp);
        let (c, b) = (sorted(c), sorted(b));
        let n = all.len();
        let ranks = fractions.iter().map(|f| (f * n as f64) as usize).chain([0, n / 2, n - 1]);
        for r in ranks {
            prop_assert_eq!(kth_difference(&c, &b, r as u64 + 1).unwrap(), all[r], "k = {}", r + 1);
        }
        let s = hodges_lehmann(&c, &b, 0.95, Method::Asymptotic).unwrap();
        let median = if n % 2 == 1 { all[n / 2] } else { (all[n / 2 - 1] + all[n / 2]) / 2.0 };
        prop_assert_eq!(s.estimate, median);
    }
}

proptest! {
    #[test]
    fn estimate_lies_in_the_interval(
        c in sample(), b in sample(), level in any_level(), method in any_method()
    ) {
        let s = hodges_lehmann(&sorted(c), &sorted(b), level, method).unwrap();
        prop_assert!(s.lower <= s.estimate && s.estimate <= s.upper, "{s:?}");
        // R reports the level actually reached, down to 0 for one value against one.
        prop_assert!(s.conf_level >= 0.0 && s.conf_level <= level);
    }

    #[test]
    fn swapping_samples_negates_the_shift(
        c in sample(), b in sample(), level in any_level(), method in any_method()
    ) {
        let (c, b) = (sorted(c), sorted(b));
        let ab = hodges_lehmann(&c, &b, level, method).unwrap();
        let ba = hodges_lehmann(&b, &c, level, method).unwrap();
        prop_assert_eq!(ba.estimate, -ab.estimate);
        prop_assert_eq!(ba.lower, -ab.upper);
        prop_assert_eq!(ba.upper, -ab.lower);
        prop_assert_eq!(ba.method, ab.method);
        prop_assert_eq!(ba.conf_level, ab.conf_level);
    }

    #[test]
    fn shifting_the_canary_shifts_everything(
        c in integer_sample(), b in integer_sample(), shift in -100i32..100,
        level in any_level(), method in any_method()
    ) {
        // Quarter-integers keep every sum and difference exact, so equality is exact.
        let shift = f64::from(shift);
        let moved: Vec<f64> = c.iter().map(|v| v + shift).collect();
        let (c, moved, b) = (sorted(c), sorted(moved), sorted(b));
        let before = hodges_lehmann(&c, &b, level, method).unwrap();
        let after = hodges_lehmann(&moved, &b, level, method).unwrap();
        prop_assert_eq!(after.estimate, before.estimate + shift);
        // Shifting can create or remove ties across the samples, which moves Auto
        // between its branches; within one branch the interval moves with the data.
        if method != Method::Auto {
            prop_assert_eq!(after.method, before.method);
        }
        if after.method == before.method {
            prop_assert_eq!(after.lower, before.lower + shift);
            prop_assert_eq!(after.upper, before.upper + shift);
        }
    }

    #[test]
    fn selection_equals_sorting_all_differences(c in sample(), b in sample()) {
        let mut all: Vec<f64> = c.iter().flat_map(|x| b.iter().map(move |y| x - y)).collect();
        all.sort_by(f64::total_cmp);
        let (c, b) = (sorted(c), sorted(b));
        for (k, want) in all.iter().enumerate() {
            prop_assert_eq!(kth_difference(&c, &b, k as u64 + 1).unwrap(), *want, "k = {}", k + 1);
        }
        let n = all.len();
        let median = if n % 2 == 1 { all[n / 2] } else { (all[n / 2 - 1] + all[n / 2]) / 2.0 };
        let s = hodges_lehmann(&c, &b, 0.95, Method::Asymptotic).unwrap();
        prop_assert_eq!(s.estimate, median);
        prop_assert!(all.contains(&s.lower) && all.contains(&s.upper));
    }
}
