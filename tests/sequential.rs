//! Sequential tests against reference values (tests/reference/sequential.py) and their
//! guarantees checked by A/A simulation under continuous monitoring.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use augury::stats::Alternative;
use augury::stats::proportions::Counts;
use augury::stats::sequential::counts::{RateRatioConfig, RateRatioTest};
use augury::stats::sequential::quantiles::{
    Bins, DEFAULT_A, LatencyConfig, LatencyPlan, LatencyTest, crossing_probability, lil_constant,
};
use augury::stats::sequential::{Decision, Look, SequentialConfig, judge_looks};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, StandardNormal};
use serde_json::Value;

fn reference() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/sequential.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1e-300)
}

#[test]
fn boundary_constant_matches_reference() {
    let r = reference();
    for case in r["lil_constant"].as_array().unwrap() {
        let (alpha, a, c) = (
            case["alpha"].as_f64().unwrap(),
            case["a"].as_f64().unwrap(),
            case["c"].as_f64().unwrap(),
        );
        let got = lil_constant(alpha, a).unwrap();
        assert!(close(got, c, 1e-7), "alpha {alpha}, A {a}: {got} vs {c}");
    }
    for case in r["crossing"].as_array().unwrap() {
        let (a, c, p) = (
            case["a"].as_f64().unwrap(),
            case["c"].as_f64().unwrap(),
            case["p"].as_f64().unwrap(),
        );
        let got = crossing_probability(a, c);
        assert!(close(got, p, 1e-6), "A {a}, C {c}: {got} vs {p}");
    }
}

#[test]
fn boundary_constant_refuses_bad_input() {
    assert!(
        lil_constant(0.0, DEFAULT_A)
            .unwrap_err()
            .to_string()
            .contains("alpha 0")
    );
    assert!(
        lil_constant(0.05, 0.7)
            .unwrap_err()
            .to_string()
            .contains("A = 0.7")
    );
}

#[test]
fn rate_ratio_matches_reference() {
    let r = reference();
    let rr = &r["rate_ratio"];
    let alpha = rr["alpha"].as_f64().unwrap();
    for (side, alternative) in [
        ("greater", Alternative::Greater),
        ("two_sided", Alternative::TwoSided),
    ] {
        let mut test = RateRatioTest::new(&RateRatioConfig {
            alpha,
            alternative,
            prior_sd: 1.0,
        })
        .unwrap();
        let expected = rr[side].as_array().unwrap();
        for (interval, want) in rr["intervals"].as_array().unwrap().iter().zip(expected) {
            let v: Vec<u64> = interval
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
            let look = test
                .update(
                    Counts {
                        requests: v[0],
                        errors: v[1],
                    },
                    Counts {
                        requests: v[2],
                        errors: v[3],
                    },
                )
                .unwrap();
            assert!(
                close(look.e_value, want["e_value"].as_f64().unwrap(), 1e-9),
                "{side}: {look:?} vs {want}"
            );
            assert!(
                close(look.p_value, want["p_value"].as_f64().unwrap(), 1e-9),
                "{side}: {look:?} vs {want}"
            );
            assert!(
                close(
                    look.ratio_lower,
                    want["ratio_lower"].as_f64().unwrap(),
                    1e-12
                ),
                "{side}: {look:?} vs {want}"
            );
            match want["ratio_upper"].as_f64() {
                Some(u) => assert!(
                    close(look.ratio_upper.unwrap(), u, 1e-12),
                    "{side}: {look:?} vs {want}"
                ),
                None => assert_eq!(look.ratio_upper, None),
            }
        }
    }
}

#[test]
fn looks_json_in_the_documented_shape_is_judged() {
    let json = r#"[
        {"baseline": {"requests": 1500, "errors": 7}, "canary": {"requests": 1500, "errors": 15}},
        {"baseline": {"requests": 1500, "errors": 8}, "canary": {"requests": 1480, "errors": 16}},
        {"baseline": {"requests": 1500, "errors": 6}, "canary": {"requests": 1510, "errors": 17}},
        {"baseline": {"requests": 1500, "errors": 7}, "canary": {"requests": 1500, "errors": 15}},
        {"baseline": {"requests": 1500, "errors": 8}, "canary": {"requests": 1500, "errors": 16}},
        {"baseline": {"requests": 1500, "errors": 7}, "canary": {"requests": 1500, "errors": 14}}
    ]"#;
    let looks: Vec<Look> = serde_json::from_str(json).unwrap();
    let report = judge_looks(&looks, &SequentialConfig::default()).unwrap();
    assert_eq!(report.looks.len(), 6);
    let first = report
        .first_rejection
        .expect("a doubled error rate over 9,000 requests is caught");
    assert!(report.looks[first].p_value <= 0.01);
    assert!(
        report.looks[..first]
            .iter()
            .all(|l| l.decision == Decision::Continue && l.p_value > 0.01)
    );
    assert!(
        report.looks[first..]
            .iter()
            .all(|l| l.decision == Decision::Reject)
    );
    assert!(
        report
            .looks
            .windows(2)
            .all(|w| w[1].p_value <= w[0].p_value)
    );
    let out = serde_json::to_value(&report).unwrap();
    assert_eq!(out["first_rejection"], Value::from(first));
    assert!(out["looks"][0]["errors"]["ratio_lower"].is_number());
}

#[test]
fn looks_of_mixed_kinds_or_bad_counts_are_refused() {
    let json = r#"[
        {"baseline": {"requests": 10, "errors": 1}, "canary": {"requests": 10, "errors": 1}},
        {"baseline": [1.0, 2.0], "canary": [3.0]}
    ]"#;
    let looks: Vec<Look> = serde_json::from_str(json).unwrap();
    let err = judge_looks(&looks, &SequentialConfig::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("look 1 holds latency samples"), "{err}");
    let bad: Vec<Look> = serde_json::from_str(
        r#"[{"baseline": {"requests": 10, "errors": 1}, "canary": {"requests": 3, "errors": 4}}]"#,
    )
    .unwrap();
    let err = judge_looks(&bad, &SequentialConfig::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("canary counts: 4 errors out of 3 requests"),
        "{err}"
    );
    assert!(judge_looks(&[], &SequentialConfig::default()).is_err());
}

/// Upper end of a one-sided 99.9% binomial allowance for a rate `alpha` over `runs`.
fn allowance(alpha: f64, runs: usize) -> f64 {
    alpha + 3.1 * (alpha * (1.0 - alpha) / runs as f64).sqrt()
}

const RUNS: usize = 2_000;
const LOOKS: usize = 60;

#[test]
fn counts_aa_false_positive_rate_under_continuous_monitoring() {
    let alpha = 0.01;
    let config = RateRatioConfig {
        alpha,
        alternative: Alternative::TwoSided,
        prior_sd: 1.0,
    };
    let mut rejections = 0;
    let mut covered = 0;
    for run in 0..RUNS {
        let mut rng = ChaCha8Rng::seed_from_u64(0xC0DE_0000 + run as u64);
        let mut test = RateRatioTest::new(&config).unwrap();
        let mut prev_p = 1.0;
        let mut rejected = false;
        let mut last = None;
        for _ in 0..LOOKS {
            // Traffic split drifts between looks: the null allows rho to change.
            let nc = 1_000 + rng.random_range(0..1_000u64);
            let nb = 1_500;
            let kc = rng.sample(Binomial::new(nc, 0.005).unwrap());
            let kb = rng.sample(Binomial::new(nb, 0.005).unwrap());
            let look = test
                .update(
                    Counts {
                        requests: nc,
                        errors: kc,
                    },
                    Counts {
                        requests: nb,
                        errors: kb,
                    },
                )
                .unwrap();
            assert!(look.p_value <= prev_p);
            prev_p = look.p_value;
            rejected |= look.p_value <= alpha;
            last = Some(look);
        }
        let last = last.unwrap();
        rejections += usize::from(rejected);
        covered +=
            usize::from(last.ratio_lower <= 1.0 && last.ratio_upper.is_none_or(|u| u >= 1.0));
    }
    let rate = rejections as f64 / RUNS as f64;
    assert!(rate <= allowance(alpha, RUNS), "false positive rate {rate}");
    let miss = 1.0 - covered as f64 / RUNS as f64;
    assert!(
        miss <= allowance(alpha, RUNS),
        "confidence sequence missed the true ratio in {miss}"
    );
}

/// Log-spaced buckets of about 2% (coarser than the product's, to stress discretisation).
fn bucket_of(value: f64) -> i32 {
    (value.ln() / 0.02).floor() as i32
}

fn bins_of(counts: &std::collections::BTreeMap<i32, u64>) -> Bins {
    Bins::new(counts.iter().map(|(&i, &c)| {
        (
            (f64::from(i) * 0.02).exp(),
            (f64::from(i + 1) * 0.02).exp(),
            c,
        )
    }))
    .unwrap()
}

fn latency_config(alternative: Alternative) -> LatencyConfig {
    LatencyConfig {
        alpha: 0.01,
        alternative,
        quantiles: vec![0.5, 0.9, 0.99],
        min_samples: 100,
        a: DEFAULT_A,
    }
}

/// Runs one monitored analysis; the canary's log-latency is scaled by `spread` and
/// shifted by `shift`, and its traffic drifts between looks around `per_look`. Checks at
/// every look that the p-value does not rise and that the bands (the confidence
/// sequence) are nested. Returns the first rejecting look.
fn latency_run(
    plan: &LatencyPlan,
    seed: u64,
    per_look: usize,
    shift: f64,
    spread: f64,
) -> Option<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut test = LatencyTest::new(plan);
    let mut c = std::collections::BTreeMap::<i32, u64>::new();
    let mut b = c.clone();
    let mut prev: Option<augury::stats::sequential::quantiles::LatencyLook> = None;
    let mut first = None;
    for look in 0..LOOKS {
        for _ in 0..per_look {
            let z: f64 = rng.sample(StandardNormal);
            *b.entry(bucket_of((4.6 + 0.5 * z).exp())).or_insert(0) += 1;
        }
        // The canary's share of traffic drifts: the null allows any split at any look.
        let canary_n = per_look / 2 + rng.random_range(0..per_look);
        for _ in 0..canary_n {
            let z: f64 = rng.sample(StandardNormal);
            *c.entry(bucket_of((4.6 + shift + 0.5 * spread * z).exp()))
                .or_insert(0) += 1;
        }
        let out = test.update_bins(&bins_of(&c), &bins_of(&b));
        if let Some(prev) = &prev {
            assert!(out.p_value <= prev.p_value);
            for (was, now) in prev.bands.iter().zip(&out.bands) {
                for (w, n) in [
                    (was.canary, now.canary),
                    (was.baseline, now.baseline),
                    (was.difference, now.difference),
                ] {
                    assert!(
                        n.lower.unwrap_or(f64::NEG_INFINITY)
                            >= w.lower.unwrap_or(f64::NEG_INFINITY)
                    );
                    assert!(n.upper.unwrap_or(f64::INFINITY) <= w.upper.unwrap_or(f64::INFINITY));
                }
            }
        }
        assert_eq!(test.rejected(), out.p_value <= 0.01);
        if first.is_none() && test.rejected() {
            first = Some(look);
        }
        prev = Some(out);
    }
    first
}

#[test]
fn latency_aa_false_positive_rate_under_continuous_monitoring() {
    for (alternative, salt) in [(Alternative::TwoSided, 0u64), (Alternative::Greater, 1)] {
        let plan = LatencyPlan::new(&latency_config(alternative)).unwrap();
        let rejections = (0..RUNS)
            .filter(|&run| {
                latency_run(&plan, (salt << 32) + 0x1A7E_0000 + run as u64, 60, 0.0, 1.0).is_some()
            })
            .count();
        let rate = rejections as f64 / RUNS as f64;
        assert!(
            rate <= allowance(0.01, RUNS),
            "{alternative:?}: false positive rate {rate}"
        );
    }
}

/// A canary faster than its baseline is inside the one-sided null ("no slower"): the
/// test for "slower" must not reject it more often than alpha either.
#[test]
fn latency_faster_canary_is_not_called_slower() {
    let plan = LatencyPlan::new(&latency_config(Alternative::Greater)).unwrap();
    let runs = 500;
    let rejections = (0..runs)
        .filter(|&run| latency_run(&plan, 0xFA57_0000 + run as u64, 60, -0.05, 1.0).is_some())
        .count();
    let rate = rejections as f64 / runs as f64;
    assert!(rate <= allowance(0.01, runs), "false positive rate {rate}");
}

#[test]
fn latency_test_catches_a_shift_and_a_variance_jump() {
    let plan = LatencyPlan::new(&latency_config(Alternative::Greater)).unwrap();
    let runs = 40;
    // +20% everywhere.
    let shift = (0..runs)
        .filter(|&r| latency_run(&plan, 0x5417_0000 + r, 200, 0.2f64.ln_1p(), 1.0).is_some())
        .count();
    assert!(
        shift >= runs as usize * 9 / 10,
        "shift caught in {shift} of {runs}"
    );
    // Same median, doubled spread: the upper quantiles grow.
    let spread = (0..runs)
        .filter(|&r| latency_run(&plan, 0x5A12_0000 + r, 200, 0.0, 2.0).is_some())
        .count();
    assert!(
        spread >= runs as usize * 9 / 10,
        "variance jump caught in {spread} of {runs}"
    );
}

/// The power target: +10% median latency at 50 requests/s per version (1,500 per 30 s
/// look) is caught by the third look (90 s) in more than half of the analyses.
#[test]
fn latency_ten_percent_shift_is_caught_within_ninety_seconds() {
    let plan = LatencyPlan::new(&latency_config(Alternative::Greater)).unwrap();
    let runs = 100;
    let caught = (0..runs)
        .filter(|&r| {
            latency_run(&plan, 0x1010_0000 + r, 1_500, 0.1f64.ln_1p(), 1.0)
                .is_some_and(|look| look <= 2)
        })
        .count();
    assert!(
        caught > runs as usize / 2,
        "caught by 90 s in {caught} of {runs}"
    );
}

/// Deterministic latency-like samples: a lognormal's quantiles at evenly spaced levels.
fn lognormal_quantiles(n: usize, median: f64, sigma: f64, phase: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let p = (i as f64 + phase) / n as f64;
            median * (sigma * augury::stats::normal::ppf(p)).exp()
        })
        .collect()
}

#[test]
fn sample_looks_reject_a_slower_canary_and_report_bands() {
    let looks: Vec<Look> = (0..12)
        .map(|k| {
            let phase = 0.1 + 0.8 * (k as f64 / 12.0);
            Look::Samples {
                baseline: lognormal_quantiles(1_500, 100.0, 0.5, phase),
                canary: lognormal_quantiles(1_500, 130.0, 0.5, phase),
            }
        })
        .collect();
    let report = judge_looks(&looks, &SequentialConfig::default()).unwrap();
    let first = report
        .first_rejection
        .expect("a 30% slower canary is caught");
    assert!(report.looks[first].p_value <= 0.01);
    let bands = &report.looks.last().unwrap().latency.as_ref().unwrap().bands;
    assert_eq!(
        bands.iter().map(|b| b.quantile).collect::<Vec<_>>(),
        vec![0.5, 0.9, 0.99]
    );
    let median = &bands[0];
    // The true median difference is 30 ms and the true ratio 1.3: both inside their bands.
    assert!(
        median.difference.lower.unwrap() <= 30.0 && 30.0 <= median.difference.upper.unwrap(),
        "{median:?}"
    );
    assert!(
        median.ratio.lower.unwrap() <= 1.3 && 1.3 <= median.ratio.upper.unwrap(),
        "{median:?}"
    );
    assert!(median.difference.lower.unwrap() > 0.0);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["metric"], "latency");
    // At the first look the p99 band of the baseline is still open above: no lower end.
    assert!(json["looks"][0]["latency"]["bands"][2]["baseline"]["upper"].is_null());
    assert!(json["looks"][0]["latency"]["bands"][2]["difference"]["lower"].is_null());
}

#[test]
fn identical_sample_looks_never_reject_and_can_accept_equivalence() {
    let looks: Vec<Look> = (0..20)
        .map(|k| {
            let s = lognormal_quantiles(3_000, 100.0, 0.3, 0.05 + 0.9 * (k as f64 / 20.0));
            Look::Samples {
                baseline: s.clone(),
                canary: s,
            }
        })
        .collect();
    let config = SequentialConfig {
        quantiles: vec![0.5, 0.9],
        equivalence: Some(augury::stats::sequential::Equivalence {
            latency_margin: 0.1,
            error_margin: 0.5,
            min_looks: 4,
        }),
        ..SequentialConfig::default()
    };
    let report = judge_looks(&looks, &config).unwrap();
    assert_eq!(report.first_rejection, None);
    assert!(report.looks.iter().all(|l| l.p_value == 1.0));
    let accepted = report
        .first_equivalence
        .expect("identical versions are shown equivalent within 10%");
    assert!(accepted >= 3);
    assert_eq!(report.decision, Decision::AcceptEquivalent);
}

#[test]
fn bad_samples_are_refused_with_their_position() {
    let looks = vec![
        Look::Samples {
            baseline: vec![1.0, 2.0],
            canary: vec![1.0],
        },
        Look::Samples {
            baseline: vec![1.0, -2.0],
            canary: vec![1.0],
        },
    ];
    let err = judge_looks(&looks, &SequentialConfig::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("look 1: baseline sample 1 is -2"), "{err}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn interval_counts() -> impl Strategy<Value = Vec<(u64, u64, u64, u64)>> {
        prop::collection::vec(
            (0u64..3_000, 0u64..3_000)
                .prop_flat_map(|(nc, nb)| (Just(nc), 0..=nc.min(40), Just(nb), 0..=nb.min(40))),
            1..40,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn rate_ratio_p_never_rises_and_interval_never_grows(
            intervals in interval_counts(),
            two_sided in any::<bool>(),
        ) {
            let alternative = if two_sided { Alternative::TwoSided } else { Alternative::Greater };
            let mut test = RateRatioTest::new(&RateRatioConfig { alpha: 0.05, alternative, prior_sd: 1.0 }).unwrap();
            let (mut p, mut lo, mut hi) = (1.0f64, 0.0f64, f64::INFINITY);
            for (nc, kc, nb, kb) in intervals {
                let look = test.update(Counts { requests: nc, errors: kc }, Counts { requests: nb, errors: kb }).unwrap();
                prop_assert!(look.p_value <= p && look.p_value > 0.0);
                let up = look.ratio_upper.unwrap_or(f64::INFINITY);
                prop_assert!(look.ratio_lower >= lo && up <= hi);
                p = look.p_value;
                lo = look.ratio_lower;
                hi = up;
            }
        }

        #[test]
        fn latency_p_never_rises_and_bands_never_grow(
            looks in prop::collection::vec(
                (prop::collection::vec(0u64..400, 30), prop::collection::vec(0u64..400, 30)),
                1..25,
            ),
        ) {
            let plan = LatencyPlan::new(&latency_config(Alternative::TwoSided)).unwrap();
            let mut test = LatencyTest::new(&plan);
            let (mut c, mut b) = (vec![0u64; 30], vec![0u64; 30]);
            let mut prev: Option<augury::stats::sequential::quantiles::LatencyLook> = None;
            for (dc, db) in looks {
                for k in 0..30 {
                    c[k] += dc[k];
                    b[k] += db[k];
                }
                let bins = |v: &[u64]| Bins::new(v.iter().enumerate().map(|(k, &n)| (k as f64, k as f64 + 1.0, n))).unwrap();
                let out = test.update_bins(&bins(&c), &bins(&b));
                if let Some(prev) = &prev {
                    prop_assert!(out.p_value <= prev.p_value);
                    for (was, now) in prev.bands.iter().zip(&out.bands) {
                        for (w, n) in [(was.canary, now.canary), (was.baseline, now.baseline), (was.difference, now.difference)] {
                            prop_assert!(n.lower.unwrap_or(f64::NEG_INFINITY) >= w.lower.unwrap_or(f64::NEG_INFINITY));
                            prop_assert!(n.upper.unwrap_or(f64::INFINITY) <= w.upper.unwrap_or(f64::INFINITY));
                        }
                    }
                }
                prop_assert_eq!(test.rejected(), out.p_value <= 0.01);
                prev = Some(out);
            }
        }
    }
}
