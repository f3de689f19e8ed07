//! `rules: kayenta` against Kayenta's own test suites: every case of `ClassifierSuite`
//! (its Mann-Whitney classifier), `ScorerSuite` (its weighted-sum scorer) and the
//! interval cases of `MannWhitneySuite` (module `kayenta-mannwhitney`), transcribed as
//! data, each under a comment naming the upstream suite and test. Expected
//! classifications, scores and intervals are the suites' own assertions; nothing here
//! was computed with the code under test.
//!
//! The classifier cases run twice: through [`Classifier`] with the parameters the suite
//! gives its `MannWhitneyClassifier` (tolerance 0.10 at 95% for most), and through a
//! model with `rules: kayenta`, which judges with `NetflixACAJudge`'s fixed 0.25 at 98%.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use augury::judge::kayenta::{
    Basis, CONFIDENCE, Classifier, Config, Label, Measure, Sides, TOLERANCE,
};
use augury::judge::{Classification, JudgeOptions, Judgment, MetricData, Verdict, judge};
use augury::model::{Direction, Model, NanStrategy};
use serde_json::{Value, json};

/// What a case asserts about Kayenta's `deviation` (the mean ratio).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Deviation {
    Unchecked,
    /// `assert(result.deviation.isNaN)`.
    NaN,
    /// `assert(result.deviation == 1.0)`.
    One,
}

/// One `ClassifierSuite` test: the data, the classifier it builds, the call it makes and
/// what it asserts. Threshold pairs are Kayenta's `(decrease, increase)`; `None` is
/// Kayenta's default (the measure's neutral value).
struct SuiteCase {
    test: &'static str,
    canary: &'static [f64],
    baseline: &'static [f64],
    tolerance: f64,
    confidence: f64,
    measure: Measure,
    allowed: Option<(f64, f64)>,
    critical_thresholds: Option<(f64, f64)>,
    direction: Direction,
    nan: NanStrategy,
    critical: bool,
    expect: Option<Label>,
    expect_critical: Option<bool>,
    deviation: Deviation,
    reason_given: bool,
}

impl SuiteCase {
    /// The suite's `MannWhitneyClassifier`, or with `netflix` the one `NetflixACAJudge`
    /// builds (tolerance 0.25, 98%) with the same effect parameters.
    fn classifier(&self, netflix: bool) -> Classifier {
        let (tolerance, confidence) = if netflix {
            (TOLERANCE, CONFIDENCE)
        } else {
            (self.tolerance, self.confidence)
        };
        let mut k = Classifier::new(tolerance, confidence, self.measure);
        if let Some((decrease, increase)) = self.allowed {
            k.allowed_decrease = decrease;
            k.allowed_increase = increase;
        }
        if let Some((decrease, increase)) = self.critical_thresholds {
            k.critical_decrease = decrease;
            k.critical_increase = increase;
        }
        k
    }

    /// A one-metric model with `rules: kayenta` saying what the suite's call says.
    fn model(&self) -> Model {
        let k = self.classifier(true);
        let direction = match self.direction {
            Direction::Increase => "increase",
            Direction::Decrease => "decrease",
            Direction::Either => "either",
        };
        let mut effect = json!({
            "measure": match self.measure { Measure::MeanRatio => "mean-ratio", Measure::Cles => "cles" },
        });
        if self.allowed.is_some() {
            effect["allowed_decrease"] = json!(k.allowed_decrease);
            effect["allowed_increase"] = json!(k.allowed_increase);
        }
        if self.critical_thresholds.is_some() {
            effect["critical_decrease"] = json!(k.critical_decrease);
            effect["critical_increase"] = json!(k.critical_increase);
        }
        let nan = match self.nan {
            NanStrategy::Replace => "replace",
            _ => "remove",
        };
        Model::from_json(
            json!({
                "name": "suite",
                "rules": "kayenta",
                "metrics": [{
                    "name": "m",
                    "direction": direction,
                    "critical": self.critical,
                    "nan": nan,
                    "effect": effect,
                }],
            }),
            "suite",
        )
        .unwrap_or_else(|e| panic!("{}: {e}", self.test))
    }

    fn data(&self) -> BTreeMap<String, MetricData> {
        BTreeMap::from([(
            "m".to_string(),
            MetricData::Samples {
                baseline: self.baseline.to_vec(),
                canary: self.canary.to_vec(),
            },
        )])
    }
}

fn classification(label: Label) -> Classification {
    match label {
        Label::Pass => Classification::Pass,
        Label::High => Classification::High,
        Label::Low => Classification::Low,
        Label::Nodata | Label::NodataFailMetric => Classification::Nodata,
        Label::Error => Classification::Error,
    }
}

/// Runs Kayenta's classifier as the suite configures it and checks every assertion the
/// suite makes.
#[test]
fn classifier_suite_with_its_own_parameters() {
    for case in CLASSIFIER_SUITE {
        let got = case.classifier(false).classify(
            Sides {
                canary: case.canary,
                baseline: case.baseline,
            },
            Config {
                direction: case.direction,
                nan: case.nan,
                critical: case.critical,
                must_have_data: false,
            },
        );
        if let Some(want) = case.expect {
            assert_eq!(got.label, want, "{}: {got:?}", case.test);
        }
        if let Some(want) = case.expect_critical {
            assert_eq!(got.critical, want, "{}", case.test);
        }
        match case.deviation {
            Deviation::Unchecked => {}
            Deviation::NaN => assert!(got.deviation().is_nan(), "{}", case.test),
            Deviation::One => assert_eq!(got.deviation(), 1.0, "{}", case.test),
        }
        if case.reason_given {
            assert!(
                matches!(got.basis, Basis::Missing { .. }),
                "{}: {got:?}",
                case.test
            );
        }
    }
}

/// Every `ClassifierSuite` case through a model with `rules: kayenta` and the public
/// judge: the suite's classification and critical flag, mapped to Augury's result and
/// verdict. The model judges at `NetflixACAJudge`'s 0.25 and 98%, not at the suite's
/// parameters, and every case still gets the suite's label: on this data the judge
/// itself agrees with the suite.
#[test]
fn classifier_suite_through_a_kayenta_model() {
    for case in CLASSIFIER_SUITE {
        let j = judge(&case.model(), &case.data(), &JudgeOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", case.test));
        let m = &j.metrics[0];
        if let Some(want) = case.expect {
            assert_eq!(
                m.classification,
                classification(want),
                "{}: {}",
                case.test,
                m.reason
            );
        }
        assert!(!m.reason.is_empty(), "{}", case.test);
        if let Some(critical) = case.expect_critical {
            let failed = m.critical_failure || m.critical_nodata();
            assert_eq!(failed, critical, "{}: {}", case.test, m.reason);
            // A critical failure scores the canary 0 (ScorerSuite, below), and says why.
            if critical {
                assert_eq!(j.score, 0.0, "{}", case.test);
                assert!(
                    j.reasons[0].starts_with("critical metric"),
                    "{:?}",
                    j.reasons
                );
            }
        }
        // The same input, the same judgment, bit for bit: the noise rule is fixed.
        let again = judge(&case.model(), &case.data(), &JudgeOptions::default()).unwrap();
        assert_eq!(again, j, "{}", case.test);
    }
}

/// A classification `ScorerSuite` gives a metric, and data that yields it under
/// `rules: kayenta` (direction `either`): the same values on both sides pass, a canary
/// far above or below the baseline is `High` or `Low`, no data is `Nodata`.
fn data_for(label: Label) -> Option<MetricData> {
    let low: Vec<f64> = vec![1.0, 2.0, 3.0, 4.0, 5.0];
    let high: Vec<f64> = vec![20.0, 21.0, 22.0, 23.0, 24.0];
    let (canary, baseline) = match label {
        Label::Pass => (low.clone(), low),
        Label::High => (high, low),
        Label::Low => (low, high),
        Label::Nodata => return None,
        other => panic!("ScorerSuite has no {other:?} metric"),
    };
    Some(MetricData::Samples { baseline, canary })
}

/// A `rules: kayenta` model with one metric per `(name, group, label, critical)`, the
/// group weights given, judged on data that gives each metric its label.
fn scored(weights: &[(&str, f64)], metrics: &[(&str, &str, Label, bool)]) -> Judgment {
    let groups: serde_json::Map<String, Value> = weights
        .iter()
        .map(|(g, w)| (g.to_string(), json!({ "weight": w })))
        .collect();
    let model = Model::from_json(
        json!({
            "name": "scorer",
            "rules": "kayenta",
            "groups": groups,
            "metrics": metrics.iter().map(|(name, group, _, critical)| json!({
                "name": name, "group": group, "direction": "either", "critical": critical,
            })).collect::<Vec<_>>(),
        }),
        "scorer",
    )
    .unwrap();
    let data = metrics
        .iter()
        .filter_map(|(name, _, label, _)| data_for(*label).map(|d| (name.to_string(), d)))
        .collect();
    let j = judge(&model, &data, &JudgeOptions::default()).unwrap();
    for (m, (name, _, label, _)) in j.metrics.iter().zip(metrics) {
        assert_eq!(
            m.classification,
            classification(*label),
            "{name}: {}",
            m.reason
        );
    }
    j
}

/// One `ScorerSuite` test: its group weights, its metrics as `(name, group, label,
/// critical)`, the summary score it asserts and, where it asserts them, the group scores
/// (sorted).
struct ScorerCase {
    test: &'static str,
    weights: &'static [(&'static str, f64)],
    metrics: &'static [(&'static str, &'static str, Label, bool)],
    score: f64,
    group_scores: Option<&'static [f64]>,
}

const SCORER_SUITE: &[ScorerCase] = &[
    ScorerCase {
        test: "Weighted Sum Group Scorer: Single Metric Pass",
        weights: &[],
        metrics: &[("test-metric-pass", "test-group", Label::Pass, false)],
        score: 100.0,
        group_scores: None,
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: Single Metric Fail",
        weights: &[],
        metrics: &[("test-metric-high", "test-group", Label::High, false)],
        score: 0.0,
        group_scores: None,
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: Single group Nodata",
        weights: &[],
        metrics: &[(
            "test-metric-nodata",
            "test-group-nodata",
            Label::Nodata,
            false,
        )],
        score: 0.0,
        group_scores: Some(&[0.0]),
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: Two Groups, one Pass, one Nodata",
        weights: &[],
        metrics: &[
            ("test-metric-pass1a", "test-group-pass", Label::Pass, false),
            ("test-metric-pass1b", "test-group-pass", Label::Pass, false),
            (
                "test-metric-nodata",
                "test-group-nodata",
                Label::Nodata,
                false,
            ),
        ],
        score: 100.0,
        group_scores: Some(&[0.0, 100.0]),
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: One Group, Two Metrics",
        weights: &[],
        metrics: &[
            ("test-metric-pass", "test-group", Label::Pass, false),
            ("test-metric-high", "test-group", Label::High, false),
        ],
        score: 50.0,
        group_scores: None,
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: One Group, Three Metrics",
        weights: &[],
        metrics: &[
            ("test-metric-pass", "test-group", Label::Pass, false),
            ("test-metric-high", "test-group", Label::High, false),
            ("test-metric-low", "test-group", Label::Low, false),
        ],
        score: 33.33,
        group_scores: None,
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: Two Groups, Three Metrics",
        weights: &[("group-1", 75.0), ("group-2", 25.0)],
        metrics: &[
            ("test-metric-pass-1", "group-1", Label::Pass, false),
            ("test-metric-pass-2", "group-1", Label::Pass, false),
            ("test-metric-fail", "group-2", Label::High, false),
        ],
        score: 75.0,
        group_scores: None,
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: Two Groups, Three Metrics (Equal Weight)",
        weights: &[("group-1", 50.0), ("group-2", 50.0)],
        metrics: &[
            ("test-metric-pass", "group-1", Label::Pass, false),
            ("test-metric-fail-1", "group-1", Label::High, false),
            ("test-metric-fail-2", "group-2", Label::High, false),
        ],
        score: 25.0,
        group_scores: None,
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: Two Groups, Three Metrics (Equal Weight), one NoData",
        weights: &[("group-1", 50.0), ("group-2", 50.0)],
        metrics: &[
            ("test-metric-pass", "group-1", Label::Pass, false),
            ("test-metric-nodata", "group-1", Label::Nodata, false),
            ("test-metric-fail", "group-2", Label::High, false),
        ],
        score: 50.0,
        group_scores: None,
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: Two Metrics, one good (normal), one fail (critical)",
        weights: &[],
        metrics: &[
            ("test-metric-pass", "test-group", Label::Pass, false),
            ("test-metric-high", "test-group", Label::High, true),
        ],
        score: 0.0,
        group_scores: None,
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: Two Metrics, one low (normal), one good (critical)",
        weights: &[],
        metrics: &[
            ("test-metric-low", "test-group", Label::Low, false),
            ("test-metric-pass2", "test-group", Label::Pass, true),
        ],
        score: 50.0,
        group_scores: None,
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: Two Metrics, one good (normal), one nodata (critical)",
        weights: &[],
        metrics: &[
            ("test-metric-pass", "test-group", Label::Pass, false),
            ("test-metric-nodata", "test-group", Label::Nodata, true),
        ],
        score: 0.0,
        group_scores: None,
    },
    ScorerCase {
        test: "Weighted Sum Group Scorer: Two Groups (Unequal Weight), Four Metrics",
        weights: &[("group1", 15.0), ("group2", 85.0)],
        metrics: &[
            ("test-metric-high", "group1", Label::High, false),
            ("test-metric-low", "group1", Label::Low, false),
            ("test-metric-pass", "group1", Label::Pass, false),
            ("test-metric-pass2", "group2", Label::High, false),
        ],
        score: 5.0,
        group_scores: None,
    },
];

/// Every `ScorerSuite` test (the cases above, each named as upstream) through a model
/// with `rules: kayenta`: the suite's summary score, and its group scores where it
/// asserts them.
#[test]
fn scorer_suite_through_kayenta_models() {
    for case in SCORER_SUITE {
        let j = scored(case.weights, case.metrics);
        assert_eq!(j.score, case.score, "{}: {:?}", case.test, j.reasons);
        if let Some(want) = case.group_scores {
            let mut got: Vec<f64> = j.groups.iter().map(|g| g.score).collect();
            got.sort_by(f64::total_cmp);
            assert_eq!(got, want, "{}", case.test);
        }
    }
}

/// Kayenta's score rules that Augury's own rules change, each checked under
/// `rules: kayenta`: absolute weights, half the metrics without data scoring 0 (not
/// `inconclusive`), and `must_have_data` as a failed metric.
#[test]
fn kayenta_scoring_rules_apply_under_rules_kayenta() {
    use Label::*;
    // Weights adding up to 60: a perfect canary scores 60 (Augury's rules: 100).
    let j = scored(
        &[("a", 40.0), ("b", 20.0)],
        &[("x", "a", Pass, false), ("y", "b", Pass, false)],
    );
    assert_eq!(j.score, 60.0);
    assert_eq!(j.verdict, Verdict::Fail);
    // Half without data: score 0 and `fail`, where Augury's rules say `inconclusive`.
    let j = scored(&[], &[("x", "a", Pass, false), ("y", "b", Nodata, false)]);
    assert_eq!(j.score, 0.0);
    assert_eq!(j.verdict, Verdict::Fail);
    assert!(j.reasons[0].contains("Kayenta scores 0"), "{:?}", j.reasons);
}

/// `must_have_data` on a non-critical metric: `NodataFailMetric`, a failed metric in its
/// group and not one of the 50% `Nodata`.
#[test]
fn must_have_data_is_a_failed_metric_in_its_group() {
    let model = Model::from_json(
        json!({
            "name": "required",
            "rules": "kayenta",
            "metrics": [
                {"name": "x", "group": "g", "direction": "either"},
                {"name": "y", "group": "g", "direction": "either", "must_have_data": true},
            ],
        }),
        "required",
    )
    .unwrap();
    let data = BTreeMap::from([("x".to_string(), data_for(Label::Pass).unwrap())]);
    let j = judge(&model, &data, &JudgeOptions::default()).unwrap();
    assert!(j.metrics[1].nodata_fails);
    assert_eq!(j.groups[0].score, 50.0);
    assert_eq!(j.score, 50.0);
}

// MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate": experiment
// (canary) and control (baseline), the interval [6, 39] and the estimate 22.5 at the
// default 95%.
#[test]
fn mann_whitney_suite_interval_and_estimate() {
    let k = Classifier::new(TOLERANCE, 0.95, Measure::MeanRatio);
    let got = k.classify(
        Sides {
            canary: &[10.0, 20.0, 30.0, 40.0],
            baseline: &[1.0, 2.0, 3.0, 4.0],
        },
        Config {
            direction: Direction::Either,
            nan: NanStrategy::Remove,
            critical: false,
            must_have_data: false,
        },
    );
    let Basis::Tested(t) = &got.basis else {
        panic!("not tested: {got:?}")
    };
    let e = 1e-6;
    assert!((t.shift.lower - 6.0).abs() < e, "{:?}", t.shift);
    assert!((t.shift.upper - 39.0).abs() < e, "{:?}", t.shift);
    assert!((t.shift.estimate - 22.5).abs() < e, "{:?}", t.shift);
}

/// Kayenta's interval against the values `MannWhitneySuite` asserts: R's `wilcox.test`
/// numbers (its `uniroot`, which Kayenta's root finder ports step for step), within the
/// suite's own precision (1e-6 for the bounds; 1e-4 for the estimate where the suite
/// says so, 1e-6 where it does not).
#[test]
fn mann_whitney_suite_ties_out_with_r() {
    // (canary, baseline, confidence, [lower, upper, estimate], estimate's precision)
    let cases = [
        // MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate: Problem Case"
        (
            PROBLEM_CASE_CANARY,
            PROBLEM_CASE_BASELINE,
            0.98,
            [
                -1.4808028936386108E-5,
                1.808255910873413E-5,
                1.808255910873413E-5,
            ],
            1e-6,
        ),
        // MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate: Tie out with R Version"
        (
            R_TIE_OUT_CANARY,
            R_TIE_OUT_BASELINE,
            0.95,
            [
                -0.500002521696696,
                -3.486287505871302E-5,
                -0.4999393907180323,
            ],
            1e-4,
        ),
        // MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate: Tie out with R Version (Large)"
        (
            R_TIE_OUT_LARGE_CANARY,
            R_TIE_OUT_LARGE_BASELINE,
            0.98,
            [
                -0.4999173250549087,
                -6.912685789769486E-6,
                -3.45044082729315E-5,
            ],
            1e-4,
        ),
    ];
    for (canary, baseline, confidence, [lower, upper, estimate], precision) in cases {
        let k = Classifier::new(TOLERANCE, confidence, Measure::MeanRatio);
        let got = k.classify(
            Sides { canary, baseline },
            Config {
                direction: Direction::Either,
                nan: NanStrategy::Remove,
                critical: false,
                must_have_data: false,
            },
        );
        let Basis::Tested(t) = &got.basis else {
            panic!("not tested: {got:?}")
        };
        for (got, want, within) in [
            (t.shift.lower, lower, 1e-6),
            (t.shift.upper, upper, 1e-6),
            (t.shift.estimate, estimate, precision),
        ] {
            assert!((got - want).abs() < within, "{confidence}: {got} vs {want}");
        }
    }
}

/// The judge's interval through a `rules: kayenta` model (98%) against R's
/// `wilcox.test(exact = FALSE, correct = TRUE, conf.level = 0.98)` in
/// `tests/reference/kayenta.json` (made by `tests/reference/kayenta.R`), which includes
/// the `MannWhitneySuite` case above. R ran there with `tol.root = 1e-10`; Kayenta's root
/// finder stops at 1e-4, so the two agree to 1e-4.
#[test]
fn judge_interval_matches_r_at_98_percent() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/kayenta.json"
    ))
    .unwrap();
    let cases: Value = serde_json::from_str(&text).unwrap();
    let model = Model::from_json(
        json!({"name": "r", "rules": "kayenta", "metrics": [{"name": "m", "direction": "either"}]}),
        "r",
    )
    .unwrap();
    let numbers = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let cases = cases.as_array().unwrap();
    assert!(cases.iter().any(|c| c["name"] == "kayenta-suite"));
    for case in cases {
        let (canary, baseline) = (numbers(&case["canary"]), numbers(&case["baseline"]));
        let data = BTreeMap::from([("m".to_string(), MetricData::Samples { baseline, canary })]);
        let j = judge(&model, &data, &JudgeOptions::default()).unwrap();
        let shift = j.metrics[0].shift.as_ref().expect("an interval");
        let want = |key: &str| case[key].as_f64().unwrap();
        let worst = [
            shift.lower - want("lower"),
            shift.estimate - want("estimate"),
            shift.upper - want("upper"),
        ]
        .into_iter()
        .fold(0.0f64, |w, d| w.max(d.abs()));
        assert!(worst <= 1e-4, "{}: {shift:?} vs {case}", case["name"]);
    }
}

/// Kayenta's noise rule for two different constants, deterministic: `ClassifierSuite`'s
/// "Tied Ranks" data, judged many times, gives one and the same judgment, `High`, with a
/// reason that says what was done.
#[test]
fn different_constants_are_judged_the_same_every_time() {
    let case = CLASSIFIER_SUITE
        .iter()
        .find(|c| c.test == "Mann-Whitney Tied Ranks")
        .unwrap();
    let first = judge(&case.model(), &case.data(), &JudgeOptions::default()).unwrap();
    assert_eq!(first.metrics[0].classification, Classification::High);
    assert!(
        first.metrics[0].reason.contains("Kayenta adds noise"),
        "{}",
        first.metrics[0].reason
    );
    for _ in 0..20 {
        let again = judge(&case.model(), &case.data(), &JudgeOptions::default()).unwrap();
        assert_eq!(again, first);
    }
}

/// Data that is not samples (histograms from OTLP or scrapes) is refused for a
/// `rules: kayenta` metric, which Augury's rules would judge.
#[test]
fn histograms_are_refused_under_rules_kayenta() {
    let mut h = augury::stats::LogHistogram::new();
    for v in [1.0, 2.0, 3.0] {
        h.record(v);
    }
    let side = || augury::judge::data::HistogramSide {
        histogram: h.clone(),
    };
    let data = BTreeMap::from([(
        "m".to_string(),
        MetricData::Histograms {
            baseline: side(),
            canary: side(),
        },
    )]);
    let model = |rules: &str| {
        Model::from_json(
            json!({"name": "h", "rules": rules, "metrics": [{"name": "m"}]}),
            "h",
        )
        .unwrap()
    };
    assert!(judge(&model("augury"), &data, &JudgeOptions::default()).is_ok());
    let err = judge(&model("kayenta"), &data, &JudgeOptions::default()).unwrap_err();
    assert!(err.to_string().contains("rules: kayenta"), "{err}");
    assert_eq!(
        augury::judge::screen(&model("kayenta"), &data)
            .first()
            .map(ToString::to_string),
        Some(err.to_string())
    );
}

/// What `rules: kayenta` refuses at model validation, each problem at its field.
#[test]
fn model_validation_refuses_what_kayenta_cannot_judge() {
    let refused = |metric: Value, extra: Value| -> Vec<(String, String)> {
        let mut model = json!({"name": "k", "rules": "kayenta", "metrics": [metric]});
        for (k, v) in extra.as_object().unwrap() {
            model[k] = v.clone();
        }
        match Model::from_json(model, "k.yaml") {
            Ok(_) => Vec::new(),
            Err(e) => e
                .problems
                .into_iter()
                .map(|p| (p.field, p.reason))
                .collect(),
        }
    };
    let none = json!({});
    let cases = [
        (
            json!({"name": "m", "test": "sequential"}),
            "metrics[0].test",
        ),
        (
            json!({"name": "m", "kind": "error-ratio"}),
            "metrics[0].kind",
        ),
        (
            json!({"name": "m", "effect": {"measure": "median-ratio"}}),
            "metrics[0].effect.measure",
        ),
        (json!({"name": "m", "alpha": 0.05}), "metrics[0].alpha"),
        (
            json!({"name": "m", "min_samples": 5}),
            "metrics[0].min_samples",
        ),
        (
            json!({"name": "m", "source": {"otlp": {"span_kind": "server"}}}),
            "metrics[0].source.otlp",
        ),
    ];
    for (metric, field) in cases {
        let problems = refused(metric.clone(), none.clone());
        assert!(
            problems
                .iter()
                .any(|(f, r)| f == field && r.contains("kayenta")),
            "{metric}: {problems:?}"
        );
    }
    let problems = refused(
        json!({"name": "m", "test": "sequential", "equivalence_margin": 0.1}),
        json!({"early_pass": {"min_duration": "5m"}}),
    );
    assert!(
        problems.iter().any(|(f, _)| f == "early_pass"),
        "{problems:?}"
    );
    // Kayenta's own thresholds in any order: accepted under its rules, not under Augury's.
    let crossed =
        json!({"name": "m", "effect": {"allowed_increase": 1.2, "critical_increase": 1.1}});
    assert!(refused(crossed.clone(), none.clone()).is_empty());
    let mut augury = json!({"name": "k", "metrics": [crossed]});
    augury["rules"] = json!("augury");
    assert!(Model::from_json(augury, "k.yaml").is_err());
    // What says Kayenta's own settings in Augury's terms is accepted: a side without
    // values is no data (`min_samples: 1`), the interval at 98% (`alpha: 0.02` two-sided).
    let kayenta_terms =
        json!({"name": "m", "direction": "either", "alpha": 0.02, "min_samples": 1});
    assert!(refused(kayenta_terms, none.clone()).is_empty());
    // The same metrics are fine under Augury's rules.
    let plain =
        json!({"name": "k", "metrics": [{"name": "m", "test": "sequential", "min_samples": 5}]});
    assert!(Model::from_json(plain, "k.yaml").is_ok());
}

// ---- Data transcribed from Kayenta's suites ----

// ClassifierSuite: the canary of "Mann-Whitney Classifier Test: Pass Metric";
// the canary of "Mann-Whitney Classifier Test: Low Metric";
// the canary of "Mann-Whitney Classifier Directional Test: Increase";
// the canary of "Mann-Whitney Classifier Directional Test: Low Metric";
// the canary of "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Low".
#[rustfmt::skip]
const SERIES_1: &[f64] = &[
    9.776734312010946, 10.587071850477695, 7.837550638890177, 9.324332688611388,
    8.377450540978442, 8.935926439960628, 8.270766332472851, 9.748430812671693,
    11.623746715547156, 9.275344267963394, 8.153804774917152, 10.562020975754294,
    13.498135575451835, 11.054419256110332, 6.953890359005509, 12.52100834219548,
    9.021635860354644, 4.923485669953166, 11.251360203607172, 11.598449508040337,
    8.435232204668182, 11.110228516867279, 10.70063380164755, 8.921277365211525,
    10.086167067942661, 11.42107515483087, 9.379234781364495, 7.798032014855259,
    10.62339807275746, 11.909642062063739,
];

// ClassifierSuite: the baseline of "Mann-Whitney Classifier Test: Pass Metric";
// the baseline of "Mann-Whitney Classifier Test: High Metric";
// the baseline of "Mann-Whitney Classifier Directional Test: Decrease";
// the baseline of "Mann-Whitney Classifier Directional Test: High Metric".
#[rustfmt::skip]
const SERIES_2: &[f64] = &[
    11.1453586774086, 9.961805988559702, 7.068574306369829, 7.301266181048366,
    9.794463026565673, 9.60379186036873, 6.186779335033939, 12.345599159550174,
    10.371891733859533, 8.609430078501672, 9.913162673361084, 10.361375299003466,
    14.206800387518818, 10.9461537547533, 10.215876627044048, 11.739760899484603,
    10.907627468626439, 12.823353694464775, 8.101860977173214, 8.498161640880493,
    12.113441374697231, 13.272210809932028, 10.114579381663297, 6.946395876797807,
    6.210527854172778, 10.160401684903775, 8.345771206645546, 8.383822063895833,
    7.0020205070083765, 10.755757401808442,
];

// ClassifierSuite: the canary of "Mann-Whitney Classifier Test: High Metric";
// the canary of "Mann-Whitney Classifier Directional Test: Decrease";
// the canary of "Mann-Whitney Classifier Directional Test: High Metric".
#[rustfmt::skip]
const SERIES_3: &[f64] = &[
    20.878412601720026, 21.78550581191622, 19.70828084717019, 15.859946903461562,
    19.51005877217684, 19.392005525270303, 22.9265283149121, 17.156530276709894,
    18.65511791622617, 23.422607911610392, 24.055817684156644, 22.62689958516501,
    21.979472967817678, 21.659318607218694, 20.067707574072426, 22.119570836305414,
    16.44037132663307, 21.55962282634127, 21.00018144348922, 17.779369411412663,
    17.806006358943584, 18.53720061838611, 20.555550300210797, 19.552928184468378,
    21.771118944087092, 21.809622806176627, 20.96176290990527, 20.97757157750302,
    19.106303205498794, 16.97691896698708,
];

// ClassifierSuite: the baseline of "Mann-Whitney Classifier Test: Low Metric";
// the baseline of "Mann-Whitney Classifier Directional Test: Increase";
// the baseline of "Mann-Whitney Classifier Directional Test: Low Metric";
// the baseline of "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Low".
#[rustfmt::skip]
const SERIES_4: &[f64] = &[
    20.758113589510348, 22.80205962946456, 20.61234036349221, 20.973274654749986,
    23.469237330498622, 21.53133988954805, 21.767353687439805, 18.3080507303743,
    19.062145167827566, 25.87949843600178, 18.98262972633613, 19.387920182269266,
    18.995398251246982, 24.228420230932805, 20.050985172694688, 18.2340451091756,
    17.870515494460435, 23.05810386380662, 18.400259567501134, 16.971352091177167,
    19.46752906605215, 17.90465423342031, 17.55394861782583, 16.104611843907193,
    24.38171081433039, 15.919294339922635, 20.479409626304697, 19.08307201492406,
    17.455788050722866, 18.853826823235142,
];

// ClassifierSuite: the canary of "Mann-Whitney Classifier Test: High Metric (Large Input)";
// the canary of "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Pass (Large Input)".
#[rustfmt::skip]
const SERIES_5: &[f64] = &[
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.6666666666666572, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    3.703703703703681, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5625000000000142, 0.0, 0.0, 0.0, 0.0,
    3.333333333333343, 0.0, 1.7543859649122737, 0.0, 1.8518518518518476, 0.0, 0.0,
    1.8518518518518476, 0.0, 0.0, 1.5151515151515156, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 1.7857142857142776, 1.3333333333333286, 0.0, 3.125000000000014, 1.9607843137255117,
    1.4492753623188293, 2.439024390243887, 1.6393442622950687, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 1.6129032258064484, 1.9607843137255117, 1.5873015873015817, 0.0, 0.0,
    2.8169014084507182, 0.0, 0.0, 3.0303030303030454, 0.0, 0.0, 3.3898305084745743, 0.0, 0.0,
    1.234567901234584, 0.0, 0.0, 0.0, 0.0, 1.7241379310344769, 0.0, 0.0, 0.0, 0.0,
    1.6949152542372872, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.470588235294116, 0.0, 0.0,
    1.3698630136986196, 3.225806451612911, 1.754385964912288, 3.4482758620689538, 0.0,
    3.333333333333343, 0.0, 0.0, 0.0, 1.818181818181813, 0.0, 0.0, 1.4285714285714448, 0.0,
    0.0, 1.8867924528301927, 2.0000000000000284, 0.0, 0.0, 0.0, 2.985074626865682, 0.0, 0.0,
    1.6666666666666714, 0.0, 0.0, 1.5625, 1.9230769230769198, 0.0, 1.8518518518518619, 0.0,
    2.702702702702709, 0.0, 0.0, 0.0, 1.3513513513513544, 0.0, 1.818181818181813, 0.0,
    1.6666666666666572, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.818181818181813, 0.0,
    1.4285714285714164, 0.0, 0.0, 4.1095890410959015, 0.0, 0.0, 0.0, 1.8518518518518619, 0.0,
    0.0, 1.8518518518518476, 1.3888888888888857, 0.0, 0.0, 0.0, 0.0, 1.8867924528301785,
    1.4285714285714164, 0.0, 0.0, 1.5625, 1.8867924528301927, 0.0, 0.0, 0.0, 0.0,
    2.040816326530603, 1.818181818181813, 0.0, 0.0, 1.6393442622950687, 0.0,
    1.7241379310344769, 1.5151515151515156, 2.564102564102555, 0.0, 0.0, 0.0, 0.0,
    5.555555555555557, 0.0, 0.0, 4.081632653061206, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    3.5714285714285836, 0.0, 2.040816326530603, 3.1746031746031633, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0,
];

// ClassifierSuite: the baseline of "Mann-Whitney Classifier Test: High Metric (Large Input)";
// the baseline of "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Pass (Large Input)".
#[rustfmt::skip]
const SERIES_6: &[f64] = &[
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5625000000000142, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 1.3888888888888857, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    1.5384615384615614, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 1.492537313432834, 0.0, 0.0, 0.0, 1.6949152542373014, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.470588235294116, 0.0, 0.0, 0.0, 0.0,
    1.754385964912288, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.8518518518518619, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.6393442622950687, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 1.7241379310344769, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5873015873015817, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.492537313432834, 0.0, 0.0, 0.0,
    3.124999999999986, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.492537313432834, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 2.9850746268656536, 0.0, 2.5000000000000284, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.7857142857142776, 0.0, 0.0, 0.0,
];

// ClassifierSuite: the canary of "Mann-Whitney Classifier Test - CLES Effect Size: Pass".
#[rustfmt::skip]
const SERIES_7: &[f64] = &[
    0.0, 0.0, 0.000146580998, 0.0, 0.0, 0.0, 7.94701987e-05, 0.0, 0.0, 0.0, 2.68889486e-05,
    0.0, 0.0, 2.64935753e-05, 0.0, 0.0, 0.0, 2.61608895e-05, 0.000127824931, 0.0, 0.0, 0.0,
    2.54511211e-05, 2.58665287e-05, 7.63339355e-05, 0.0, 2.54239443e-05, 0.0, 0.0, 0.0,
    2.61001201e-05, 5.2010194e-05, 0.0, 2.64452319e-05, 5.2755137e-05, 7.83719533e-05,
    5.19467027e-05, 2.58344528e-05, 2.58899676e-05, 0.0, 2.59497613e-05, 2.57938043e-05,
    7.78553448e-05, 2.6059311e-05, 2.61001201e-05, 0.0, 0.0, 2.59349551e-05, 2.6055916e-05,
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.58819267e-05, 0.0, 2.58825965e-05, 2.57572635e-05,
    2.56877906e-05,
];

// ClassifierSuite: the baseline of "Mann-Whitney Classifier Test - CLES Effect Size: Pass".
#[rustfmt::skip]
const SERIES_8: &[f64] = &[
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.91528191e-05, 0.0, 0.0, 0.0, 2.98284862e-05,
    5.99916012e-05, 0.0, 5.92276712e-05, 0.0, 2.98053709e-05, 0.0, 2.9730935e-05,
    5.9215396e-05, 0.0, 0.0, 0.0, 2.92800047e-05, 0.0, 2.9455081e-05, 0.0, 0.0, 0.0,
    5.83958656e-05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.88600289e-05,
    2.90334756e-05, 2.91740817e-05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.92765758e-05, 0.0, 0.0,
    0.0, 0.0, 0.0, 2.94637596e-05, 5.89136326e-05, 0.0, 0.0, 0.0,
];

// ClassifierSuite: the canary of "Mann-Whitney Classifier Test - CLES Effect Size: High".
#[rustfmt::skip]
const SERIES_9: &[f64] = &[
    0.00689808, 0.00568664, 0.00680876, 0.00642045, 0.00561825, 0.00472294, 0.00398378,
    0.00392403, 0.00421201, 0.0047529, 0.00460853, 0.00439888, 0.00561875, 0.01998866,
    0.0124369, 0.00624391, 0.00444361, 0.00442059, 0.00372095, 0.00540736, 0.00715402,
    0.00425974, 0.00414409, 0.01172436, 0.0125959, 0.00371891, 0.00429855, 0.00369876,
    0.00325709, 0.00415943, 0.00371754, 0.00445212, 0.00521721, 0.00443938, 0.00380859,
    0.01602997, 0.00788885, 0.0038155, 0.00326921, 0.00336928, 0.00365917, 0.00333869,
    0.00427639, 0.00355911, 0.00381224, 0.00360057, 0.00349305, 0.00401164, 0.00351947,
    0.00356299, 0.003407, 0.00414397, 0.00393346, 0.00413318, 0.00359041, 0.00366314,
    0.00309383, 0.00383733, 0.00363324, 0.00280674,
];

// ClassifierSuite: the baseline of "Mann-Whitney Classifier Test - CLES Effect Size: High".
#[rustfmt::skip]
const SERIES_10: &[f64] = &[
    0.00081956, 0.00239282, 0.00133685, 0.00094917, 0.00029518, 0.00035344, 0.00048194,
    0.00034893, 0.0003202, 0.00079814, 0.00090881, 0.00072599, 0.00037819, 0.00038286,
    0.00057604, 0.00064821, 0.00032194, 0.0002245, 0.00025202, 0.00071997, 0.00022721,
    0.00042578, 0.00042496, 0.00045613, 0.00037072, 0.0003317, 0.00032889, 0.00032749,
    0.00036093, 0.00029285, 0.00038401, 0.00044467, 0.00071086, 0.00036692, 0.00052079,
    0.00074974, 0.00128791, 0.00062046, 0.00086345, 0.00118563, 0.00103379, 0.00028913,
    0.00057628, 0.00057943, 0.00048735, 0.00029409, 0.0002005, 0.00016612, 0.00089312,
    0.00059367, 0.00061706, 0.00163313, 0.00097784, 0.00029305, 0.00058839, 0.00085212,
    0.00048298, 0.00035546, 0.00025866, 0.00038767,
];

// ClassifierSuite: the canary of "Mann-Whitney Classifier Test - CLES Effect Size: Low".
#[rustfmt::skip]
const SERIES_11: &[f64] = &[
    24.24693907, 26.13330099, 22.50056744, 24.36646841, 23.19935673, 19.43801304, 20.99654102,
    18.90793651, 21.31949881, 21.83528381, 21.64211206, 23.13365968, 21.09163134, 19.45540615,
    20.74783158, 22.25527831, 19.82051791, 20.9865487, 19.94450026, 23.2904056, 18.18408424,
    22.13843542, 19.42896044, 19.84140464, 23.91557662, 21.00981557, 21.8594633, 23.11630163,
    22.95700392, 17.80045135,
];

// ClassifierSuite: the baseline of "Mann-Whitney Classifier Test - CLES Effect Size: Low".
#[rustfmt::skip]
const SERIES_12: &[f64] = &[
    25.09626848, 26.15032198, 24.88431438, 24.18870163, 22.14684987, 28.01743443, 21.29910501,
    27.24688773, 28.64187535, 27.03504445, 24.67888311, 22.35137878, 27.41640397, 26.00225548,
    23.02118534, 25.99647292, 22.77446912, 25.56704719, 25.57025827, 21.2721602, 23.12987357,
    24.59111604, 27.48865016, 27.21967755, 23.5951111, 22.5429607, 25.83015564, 23.31965305,
    24.3911644, 25.11468194,
];

const CLASSIFIER_SUITE: &[SuiteCase] = &[
    // ClassifierSuite, test "Mann-Whitney Classifier Test: Pass Metric"
    SuiteCase {
        test: "Mann-Whitney Classifier Test: Pass Metric",
        canary: SERIES_1,
        baseline: SERIES_2,
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test: High Metric"
    SuiteCase {
        test: "Mann-Whitney Classifier Test: High Metric",
        canary: SERIES_3,
        baseline: SERIES_2,
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::High),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test: Low Metric"
    SuiteCase {
        test: "Mann-Whitney Classifier Test: Low Metric",
        canary: SERIES_1,
        baseline: SERIES_4,
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Low),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Directional Test: Increase"
    SuiteCase {
        test: "Mann-Whitney Classifier Directional Test: Increase",
        canary: SERIES_1,
        baseline: SERIES_4,
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Increase,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Directional Test: Decrease"
    SuiteCase {
        test: "Mann-Whitney Classifier Directional Test: Decrease",
        canary: SERIES_3,
        baseline: SERIES_2,
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Decrease,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Directional Test: High Metric"
    SuiteCase {
        test: "Mann-Whitney Classifier Directional Test: High Metric",
        canary: SERIES_3,
        baseline: SERIES_2,
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Increase,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::High),
        expect_critical: Some(false),
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Directional Test: Low Metric"
    SuiteCase {
        test: "Mann-Whitney Classifier Directional Test: Low Metric",
        canary: SERIES_1,
        baseline: SERIES_4,
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Decrease,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Low),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test: High Metric (Large Input)"
    SuiteCase {
        test: "Mann-Whitney Classifier Test: High Metric (Large Input)",
        canary: SERIES_5,
        baseline: SERIES_6,
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::High),
        expect_critical: Some(false),
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - Mean Ratio Effect Size: High"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - Mean Ratio Effect Size: High",
        canary: &[20.0, 22.0, 21.0, 25.0, 30.0],
        baseline: &[1.0, 2.2, 1.1, 2.5, 3.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: Some((0.8, 1.2)),
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::High),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Low"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Low",
        canary: SERIES_1,
        baseline: SERIES_4,
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: Some((0.8, 1.2)),
        critical_thresholds: None,
        direction: Direction::Decrease,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Low),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Pass"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Pass",
        canary: &[10.0, 12.2, 10.1, 12.5, 23.0],
        baseline: &[20.0, 22.0, 21.0, 25.0, 30.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: Some((0.5, 1.0)),
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Pass (Large Input)"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - Mean Ratio Effect Size: Pass (Large Input)",
        canary: SERIES_5,
        baseline: SERIES_6,
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: Some((1.0, 5.0)),
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - CLES Effect Size: Pass"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - CLES Effect Size: Pass",
        canary: SERIES_7,
        baseline: SERIES_8,
        tolerance: 0.20,
        confidence: 0.98,
        measure: Measure::Cles,
        allowed: Some((0.5, 0.8)),
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - CLES Effect Size: High"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - CLES Effect Size: High",
        canary: SERIES_9,
        baseline: SERIES_10,
        tolerance: 0.20,
        confidence: 0.98,
        measure: Measure::Cles,
        allowed: Some((0.2, 0.8)),
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::High),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - CLES Effect Size: Low"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - CLES Effect Size: Low",
        canary: SERIES_11,
        baseline: SERIES_12,
        tolerance: 0.20,
        confidence: 0.98,
        measure: Measure::Cles,
        allowed: Some((0.2, 0.8)),
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Low),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - Critical Effect Size: Critical High"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - Critical Effect Size: Critical High",
        canary: &[20.0, 22.0, 21.0, 25.0, 30.0],
        baseline: &[1.0, 2.2, 1.1, 2.5, 3.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: Some((1.0, 1.2)),
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: true,
        expect: Some(Label::High),
        expect_critical: Some(true),
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - Critical Effect Size: Critical Low"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - Critical Effect Size: Critical Low",
        canary: &[2.0, 2.0, 2.0, 2.0, 3.0],
        baseline: &[10.0, 20.2, 10.1, 20.5, 30.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: Some((1.2, 1.0)),
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: true,
        expect: Some(Label::Low),
        expect_critical: Some(true),
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - Critical Effect Size: High"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - Critical Effect Size: High",
        canary: &[20.0, 22.0, 21.0, 25.0, 30.0],
        baseline: &[1.0, 2.2, 1.1, 2.5, 3.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: Some((1.0, 5.0)),
        critical_thresholds: Some((1.0, 13.0)),
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: true,
        expect: Some(Label::High),
        expect_critical: Some(false),
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - Critical Effect Size: Pass"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - Critical Effect Size: Pass",
        canary: &[20.0, 22.0, 21.0, 25.0, 30.0],
        baseline: &[1.0, 2.2, 1.1, 2.5, 3.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: Some((1.0, 13.0)),
        critical_thresholds: Some((1.0, 15.0)),
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: true,
        expect: Some(Label::Pass),
        expect_critical: Some(false),
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Classifier Test - Critical Effect Size: Critical High (Default Thresholds)"
    SuiteCase {
        test: "Mann-Whitney Classifier Test - Critical Effect Size: Critical High (Default Thresholds)",
        canary: &[20.0, 22.0, 21.0, 25.0, 30.0],
        baseline: &[1.0, 2.2, 1.1, 2.5, 3.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: true,
        expect: Some(Label::High),
        expect_critical: Some(true),
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Tied Observations"
    SuiteCase {
        test: "Mann-Whitney Tied Observations",
        canary: &[1.0, 1.0, 1.0],
        baseline: &[1.0, 1.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Decrease,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Identical Populations"
    SuiteCase {
        test: "Mann-Whitney Identical Populations",
        canary: &[1.0, 2.0, 3.0, 4.0, 5.0],
        baseline: &[5.0, 4.0, 3.0, 2.0, 1.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Decrease,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Leading Zero Identical Population"
    SuiteCase {
        test: "Mann-Whitney Leading Zero Identical Population",
        canary: &[0.0, 1.0, 1.0, 1.0, 1.0],
        baseline: &[1.0, 1.0, 1.0, 1.0, 1.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Decrease,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Missing Experiment Data"
    SuiteCase {
        test: "Mann-Whitney Missing Experiment Data",
        canary: &[],
        baseline: &[1.0, 2.0, 3.0, 4.0, 5.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Decrease,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Nodata),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Missing Experiment Data: Critical Metric"
    SuiteCase {
        test: "Mann-Whitney Missing Experiment Data: Critical Metric",
        canary: &[],
        baseline: &[1.0, 2.0, 3.0, 4.0, 5.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Decrease,
        nan: NanStrategy::Remove,
        critical: true,
        expect: Some(Label::Nodata),
        expect_critical: Some(true),
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Missing Experiment Data with NaN Replacement"
    SuiteCase {
        test: "Mann-Whitney Missing Experiment Data with NaN Replacement",
        canary: &[],
        baseline: &[1.0, 2.0, 3.0, 4.0, 5.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Decrease,
        nan: NanStrategy::Replace,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Missing Data: Reason String"
    SuiteCase {
        test: "Mann-Whitney Missing Data: Reason String",
        canary: &[],
        baseline: &[],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Decrease,
        nan: NanStrategy::Remove,
        critical: true,
        expect: None,
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: true,
    },
    // ClassifierSuite, test "Mann-Whitney Majority Tied Observations"
    SuiteCase {
        test: "Mann-Whitney Majority Tied Observations",
        canary: &[1.0, 1.0, 1.0, 1.0, 10.0],
        baseline: &[1.0, 1.0, 1.0, 1.0, 1.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Tied Ranks"
    SuiteCase {
        test: "Mann-Whitney Tied Ranks",
        canary: &[10.0, 10.0, 10.0, 10.0, 10.0],
        baseline: &[1.0, 1.0, 1.0, 1.0, 1.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::High),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Tied Ranks With Zeros"
    SuiteCase {
        test: "Mann-Whitney Tied Ranks With Zeros",
        canary: &[10.0, 10.0, 10.0, 10.0, 10.0],
        baseline: &[0.0, 0.0, 0.0, 0.0, 0.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::High),
        expect_critical: None,
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Zero Mean: High Metric with Effect Size"
    SuiteCase {
        test: "Mann-Whitney Zero Mean: High Metric with Effect Size",
        canary: &[54.9, 54.5, 55.1, 55.6, 57.4],
        baseline: &[0.0, 0.0, 0.0, 0.0, 0.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: Some((0.8, 1.2)),
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::High),
        expect_critical: None,
        deviation: Deviation::NaN,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Zero Mean: Low Metric with Effect Size"
    SuiteCase {
        test: "Mann-Whitney Zero Mean: Low Metric with Effect Size",
        canary: &[0.0, 0.0, 0.0, 0.0, 0.0],
        baseline: &[54.9, 54.5, 55.1, 55.6, 57.4],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: Some((0.8, 1.2)),
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Low),
        expect_critical: None,
        deviation: Deviation::NaN,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Zero Mean: Critical Metric"
    SuiteCase {
        test: "Mann-Whitney Zero Mean: Critical Metric",
        canary: &[
            0.05000000074505806,
            0.05000000074505806,
            0.01666666753590107,
            0.01666666753590107,
            0.01666666753590107,
            0.05000000074505806,
            0.03333333507180214,
            0.05000000260770321,
            0.05000000260770321,
            0.13333333656191826,
        ],
        baseline: &[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: None,
        critical_thresholds: Some((0.8, 1.2)),
        direction: Direction::Either,
        nan: NanStrategy::Replace,
        critical: true,
        expect: Some(Label::High),
        expect_critical: Some(true),
        deviation: Deviation::Unchecked,
        reason_given: false,
    },
    // ClassifierSuite, test "Mann-Whitney Zero Mean: Pass Metric"
    SuiteCase {
        test: "Mann-Whitney Zero Mean: Pass Metric",
        canary: &[0.0, 0.0, 0.0, 0.0, 0.0],
        baseline: &[0.0, 0.0, 0.0, 0.0, 0.0],
        tolerance: 0.10,
        confidence: 0.95,
        measure: Measure::MeanRatio,
        allowed: Some((0.8, 1.2)),
        critical_thresholds: None,
        direction: Direction::Either,
        nan: NanStrategy::Remove,
        critical: false,
        expect: Some(Label::Pass),
        expect_critical: None,
        deviation: Deviation::One,
        reason_given: false,
    },
];

// MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate: Tie out with R Version": the experiment (canary).
#[rustfmt::skip]
const R_TIE_OUT_CANARY: &[f64] = &[
    2.5, 2.5, 2.0, 2.5, 3.5, 2.0, 3.5, 1.5, 3.0, 3.0, 2.5, 3.5, 2.0, 2.5, 2.0, 2.0, 5.0, 3.0,
    2.0, 1.5, 2.0, 4.0, 3.0, 2.5, 3.0, 2.0, 2.0, 2.0, 2.5, 3.5, 1.5, 1.5, 3.5, 2.0, 2.5, 2.5,
    3.0, 3.5, 2.5, 6.5, 2.5, 4.0, 2.5, 3.0, 2.5, 6.5, 2.5, 3.0, 1.5, 2.0, 2.5, 3.0, 7.5, 1.5,
    2.0, 4.0, 2.5, 2.0, 2.5, 3.5, 4.0, 2.5, 3.0, 2.5, 2.0, 3.5, 3.0, 16.5, 3.0, 3.0, 7.0, 4.5,
    5.0, 2.0, 3.5, 6.0, 1.5, 3.0, 2.5, 4.0, 3.0, 1.5, 5.0, 3.0, 2.5, 5.5, 3.0, 1.5, 2.5, 6.0,
];
// The control (baseline) of the same test.
#[rustfmt::skip]
const R_TIE_OUT_BASELINE: &[f64] = &[
    1.5, 6.0, 5.0, 2.5, 2.5, 2.0, 2.0, 3.5, 3.0, 3.0, 3.0, 2.0, 3.0, 8.0, 4.0, 2.5, 3.0, 2.5,
    2.5, 2.0, 2.5, 2.0, 2.0, 2.5, 3.5, 3.0, 1.5, 5.0, 2.5, 5.5, 2.0, 2.5, 3.5, 2.0, 2.5, 4.0,
    2.0, 2.0, 2.0, 2.0, 5.5, 4.5, 4.0, 3.0, 3.0, 3.5, 2.5, 3.0, 2.5, 4.0, 6.0, 2.0, 5.0, 6.0,
    3.5, 3.0, 54.5, 3.0, 5.0, 6.0, 3.5, 4.5, 2.5, 2.0, 6.0, 5.0, 2.5, 3.5, 2.0, 3.0, 2.5, 3.5,
    3.5, 2.5, 3.0, 4.5, 3.0, 15.5, 5.0, 2.5, 3.0, 4.0, 3.5, 4.0, 4.0, 2.0, 4.5, 2.5, 4.0, 3.0,
];

// MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate: Tie out with R Version (Large)": the experiment (canary).
#[rustfmt::skip]
const R_TIE_OUT_LARGE_CANARY: &[f64] = &[
    1.5, 2.0, 5.0, 1.5, 1.5, 8.5, 1.0, 1.0, 2.0, 1.0, 1.5, 0.5, 2.0, 1.5, 2.0, 1.5, 1.0, 2.5,
    1.5, 1.5, 2.0, 1.5, 1.5, 1.5, 2.0, 2.0, 1.0, 5.5, 1.5, 2.0, 1.5, 1.5, 1.0, 2.5, 1.0, 2.0,
    1.5, 1.5, 2.0, 2.0, 1.5, 1.5, 1.0, 1.0, 2.0, 0.5, 1.5, 0.5, 3.5, 1.5, 3.0, 19.0, 0.5, 1.5,
    0.5, 1.5, 2.0, 1.5, 1.5, 1.5, 1.5, 2.0, 1.5, 2.0, 2.0, 1.5, 1.0, 1.5, 1.0, 2.0, 1.0, 2.0,
    1.5, 1.5, 3.0, 2.0, 1.5, 1.5, 0.5, 2.0, 1.5, 1.0, 2.0, 1.0, 1.0, 2.0, 1.0, 2.0, 1.5, 1.0,
    1.0, 2.0, 1.5, 1.5, 1.5, 0.5, 1.5, 1.5, 0.5, 1.0, 1.5, 1.5, 1.5, 1.0, 2.0, 2.0, 2.0, 1.5,
    1.0, 1.5, 1.0, 1.0, 1.5, 3.5, 2.0, 1.5, 1.0, 2.0, 1.5, 5.5, 0.5, 2.0, 3.5, 1.5, 1.0, 2.0,
    0.5, 2.5, 1.0, 1.5, 0.5, 2.0, 2.0, 1.0, 0.5, 1.5, 1.0, 1.5, 0.5, 0.5, 1.0, 1.5, 1.0, 1.5,
    0.5, 1.5, 1.0, 1.0, 0.5, 1.0, 0.5, 4.0, 1.0, 1.5, 2.0, 5.5, 1.5, 0.5, 2.0, 1.0, 1.5, 1.0,
    1.5, 1.5, 1.0, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 2.0, 0.5, 1.5, 1.0, 2.0, 1.0, 1.0, 0.5, 1.0,
];
// The control (baseline) of the same test.
#[rustfmt::skip]
const R_TIE_OUT_LARGE_BASELINE: &[f64] = &[
    1.5, 1.5, 1.0, 2.0, 1.5, 1.5, 1.5, 2.0, 1.0, 1.0, 2.0, 1.5, 1.5, 1.0, 1.5, 1.5, 1.5, 1.5,
    1.5, 2.0, 1.0, 1.5, 3.0, 2.0, 1.0, 1.5, 1.5, 1.5, 2.0, 1.5, 1.0, 1.0, 1.5, 2.5, 2.0, 0.0,
    1.0, 2.0, 2.0, 1.5, 3.0, 2.0, 1.0, 2.5, 0.5, 1.5, 0.5, 2.5, 2.0, 1.5, 1.5, 2.0, 1.0, 4.5,
    2.5, 0.5, 2.5, 1.5, 1.5, 1.0, 2.0, 1.0, 2.5, 1.5, 2.0, 1.5, 3.0, 1.5, 1.5, 1.5, 1.5, 2.0,
    1.0, 2.5, 1.0, 1.5, 2.5, 1.5, 2.5, 2.0, 1.5, 1.5, 1.5, 2.5, 1.0, 7.5, 1.5, 3.0, 5.5, 1.0,
    1.5, 2.0, 1.0, 1.5, 2.5, 2.5, 1.0, 1.0, 2.5, 1.5, 1.5, 3.0, 4.0, 1.0, 1.5, 2.0, 1.5, 1.5,
    1.5, 2.5, 1.5, 3.5, 2.5, 1.5, 2.0, 1.0, 4.0, 1.5, 1.0, 1.5, 2.5, 2.5, 2.0, 2.5, 1.5, 1.5,
    2.0, 1.0, 1.5, 2.0, 1.5, 1.0, 2.5, 1.5, 1.5, 2.0, 2.0, 1.0, 1.5, 2.5, 0.5, 2.0, 2.5, 2.0,
    1.0, 2.0, 0.5, 1.5, 1.0, 2.5, 1.0, 1.5, 1.0, 7.0, 1.0, 3.5, 1.5, 2.0, 1.5, 1.5, 2.0, 3.0,
    1.5, 1.5, 2.0, 1.5, 2.0, 1.5, 4.0, 2.0, 1.5, 1.5, 1.5, 1.5, 1.5, 0.5, 2.0, 1.0, 1.5, 0.5,
];
// MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate: Problem Case": the experiment (canary).
#[rustfmt::skip]
const PROBLEM_CASE_CANARY: &[f64] = &[
    0.03333157300949097, 0.033331431448459625, 0.03334062173962593, 0.033327482640743256,
    0.033333081752061844, 0.03333777189254761, 0.033327873796224594, 0.03332706168293953,
    0.03333958238363266, 0.033333584666252136, 0.03333412483334541, 0.03333206847310066,
    0.03334641084074974, 0.033320359885692596, 0.033335521817207336, 0.03332747891545296,
    0.033337440341711044, 0.033335164189338684, 0.03333159163594246, 0.033333487808704376,
    0.03333389014005661, 0.033332936465740204, 0.033342763781547546, 0.033325422555208206,
    0.033330779522657394, 0.033329371362924576, 0.03333697095513344, 0.033333104103803635,
    0.03333364799618721, 0.03333389014005661, 0.03333389014005661, 0.0333324633538723,
    0.033333174884319305, 0.033335234969854355, 0.03333175182342529, 0.03333301097154617,
    0.03333190828561783, 0.033334992825984955, 0.0333327017724514, 0.03333459794521332,
    0.033331673592329025, 0.033334437757730484, 0.03333737701177597, 0.03333112224936485,
    0.033332377672195435, 0.03333277627825737, 0.033333729952573776, 0.03333341330289841,
    0.033345699310302734, 0.03332257643342018, 0.03333117067813873, 0.033333808183670044,
    0.03333531692624092, 0.03333175182342529, 0.03333253785967827, 0.033333729952573776,
    0.0333324633538723, 0.033333174884319305, 0.03333333507180214, 0.03333428502082825,
    0.03333254158496857, 0.033338405191898346, 0.033329933881759644, 0.033332135528326035,
    0.03333277627825737, 0.033333729952573776, 0.033334363251924515, 0.03333159163594246,
    0.033333487808704376, 0.033331986516714096, 0.03333404287695885, 0.033334918320178986,
    0.03333071991801262, 0.03333522751927376, 0.033331356942653656, 0.033331505954265594,
    0.03334260359406471, 0.033325426280498505, 0.03333267942070961, 0.03333396837115288,
    0.0333324633538723, 0.03333412483334541, 0.03333064168691635, 0.03333427757024765,
    0.03333357349038124, 0.033333808183670044, 0.03333864361047745, 0.033328983932733536,
    0.033332452178001404, 0.03333618491888046, 0.03333096206188202, 0.033332377672195435,
    0.033332303166389465, 0.03334268182516098, 0.03332590311765671, 0.03333180770277977,
    0.03333333507180214, 0.03333333507180214, 0.03332905471324921, 0.033335939049720764,
    0.033334847539663315, 0.03333349525928497, 0.03333238139748573, 0.0333326980471611,
    0.033333729952573776, 0.03333389014005661, 0.033335790038108826, 0.03333088383078575,
    0.033332377672195435, 0.03333325311541557, 0.033332858234643936, 0.033333729952573776,
    0.033332936465740204, 0.03333277627825737, 0.033332303166389465, 0.03333364799618721,
    0.033334363251924515, 0.03333396837115288, 0.033332936465740204, 0.033333729952573776,
    0.03333484008908272, 0.0333283469080925, 0.03333530202507973, 0.033334288746118546,
    0.03333341330289841, 0.033332858234643936, 0.03333277627825737, 0.03333277627825737,
    0.03333420306444168, 0.03333349525928497, 0.03333333507180214, 0.03333333507180214,
    0.033333808183670044, 0.03333341330289841, 0.0333409383893013, 0.03332605957984924,
    0.033332839608192444, 0.033329691737890244, 0.033334117382764816, 0.03333357349038124,
    0.033332858234643936, 0.033339906483888626, 0.03332732617855072, 0.03333260491490364,
    0.0333329401910305, 0.03333277627825737, 0.03333325311541557, 0.03333333507180214,
    0.033332858234643936, 0.03333325311541557, 0.0333404615521431, 0.03332788497209549,
    0.03333078324794769, 0.03332976624369621, 0.03333229571580887, 0.03333277627825737,
    0.03333420306444168, 0.03333349525928497, 0.033333808183670044, 0.03333341330289841,
    0.03333333507180214, 0.033332858234643936, 0.03333277627825737, 0.03333372622728348,
    0.0333324633538723, 0.033334121108055115, 0.033332545310258865, 0.03333364799618721,
    0.0333329401910305, 0.03333182632923126, 0.033333566039800644, 0.033334363251924515,
    0.03333349525928497, 0.03333333507180214, 0.03333333507180214, 0.033332858234643936,
    0.03333372622728348, 0.03333341330289841, 0.03333238139748573, 0.033334121108055115,
    0.03333349525928497, 0.033332858234643936, 0.03333372622728348, 0.03333484008908272,
    0.033331673592329025, 0.03333301097154617, 0.03333808481693268, 0.03333556279540062,
    0.03332739695906639, 0.03333228826522827, 0.03333238139748573, 0.0333326980471611,
    0.03333420306444168, 0.03333301842212677, 0.03333372622728348, 0.0333329401910305,
    0.033332303166389465, 0.03333364799618721, 0.03333389014005661, 0.03333341330289841,
    0.033332858234643936, 0.03333325311541557, 0.033332858234643936, 0.03333325311541557,
    0.033333808183670044, 0.0333329401910305, 0.03333372622728348, 0.0333329401910305,
    0.03333325311541557, 0.033333808183670044, 0.03333389014005661, 0.03333341330289841,
    0.03333238139748573, 0.03333364799618721, 0.03333389014005661, 0.0333329401910305,
    0.03333325311541557, 0.03333333507180214, 0.03333570808172226, 0.033331360667943954,
    0.0333324559032917, 0.03333325311541557, 0.033333808183670044, 0.03333341330289841,
    0.03333428502082825, 0.03333206847310066, 0.0333406962454319, 0.03332654386758804,
    0.0333314910531044, 0.03333372622728348, 0.033331990242004395, 0.033333566039800644,
    0.03333484008908272, 0.03333357349038124, 0.03333095833659172, 0.033333878964185715,
    0.03333301842212677, 0.03333515301346779, 0.03333175554871559, 0.03333301097154617,
    0.033333808183670044, 0.03333531320095062, 0.03333175554871559, 0.03333158791065216,
    0.03333404287695885, 0.03333349525928497, 0.03333190828561783, 0.03333309292793274,
    0.033333808183670044, 0.03333341330289841, 0.033331435173749924, 0.033334437757730484,
    0.033334050327539444, 0.0333329401910305, 0.033340856432914734, 0.03332512080669403,
    0.033331722021102905, 0.033337607979774475, 0.03333120793104172, 0.033333323895931244,
    0.0333329401910305, 0.03333420306444168, 0.03333349525928497, 0.03333428502082825,
    0.03333301842212677, 0.03333277627825737, 0.03333277627825737, 0.03333325311541557,
    0.03333333507180214, 0.033333808183670044, 0.03333389014005661, 0.0333329401910305,
    0.033332303166389465, 0.03333697095513344, 0.033330176025629044, 0.03333364054560661,
    0.03333349525928497, 0.033333808183670044, 0.03333341330289841, 0.03333000838756561,
    0.033333245664834976, 0.0333329401910305, 0.03333325311541557, 0.03333333507180214,
    0.03333333507180214, 0.033332858234643936, 0.03333420306444168, 0.03333349525928497,
    0.033332858234643936, 0.03333325311541557, 0.03333333507180214, 0.03333238512277603,
    0.03333364799618721, 0.0333324633538723, 0.033334121108055115, 0.03333301842212677,
    0.03333277627825737, 0.03333562612533569, 0.03333231061697006, 0.03333214297890663,
    0.03333364799618721, 0.0333324633538723, 0.03333364799618721, 0.0333329401910305,
    0.03333420306444168, 0.03333206847310066, 0.03333451598882675, 0.033333100378513336,
    0.03333325311541557, 0.033332858234643936, 0.03333420306444168, 0.03333349525928497,
    0.033332858234643936, 0.03333277627825737, 0.03333277627825737, 0.03333420306444168,
    0.03333349525928497, 0.03333333507180214, 0.033332858234643936, 0.03333372622728348,
    0.03333341330289841, 0.03333333507180214, 0.03333333507180214, 0.033332858234643936,
    0.03333325311541557, 0.033333808183670044, 0.03333389014005661, 0.033338163048028946,
    0.03332844004034996, 0.033332839608192444, 0.03333341330289841, 0.03333333507180214,
    0.03333238512277603, 0.0333326980471611, 0.03333325311541557, 0.033333808183670044,
    0.03333341330289841, 0.03333333507180214, 0.03333333507180214, 0.033332858234643936,
    0.03333372622728348, 0.03333341330289841, 0.033332858234643936, 0.03333372622728348,
    0.0333324633538723, 0.033334121108055115, 0.033332545310258865, 0.03333364799618721,
    0.0333329401910305, 0.03333325311541557, 0.03333333507180214, 0.03333238512277603,
    0.03333317115902901, 0.033333808183670044, 0.03333104029297829, 0.03333482891321182,
    0.03333413228392601, 0.03333341330289841, 0.033336181193590164, 0.03333144262433052,
    0.0333319790661335, 0.03333364799618721, 0.03333341330289841, 0.03333333507180214,
    0.033332858234643936, 0.03333325311541557, 0.033333808183670044, 0.0333324633538723,
    0.03333364799618721, 0.033335790038108826, 0.033331360667943954, 0.0333319790661335,
    0.03333317115902901, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.033332858234643936, 0.03333325311541557, 0.033333808183670044, 0.03333341330289841,
    0.033332858234643936, 0.03333372622728348, 0.03333341330289841, 0.033332858234643936,
    0.033339425921440125, 0.03332725912332535, 0.03333307057619095, 0.03333349525928497,
    0.03333190828561783, 0.03333451598882675, 0.03333357721567154, 0.033332858234643936,
    0.03333372622728348, 0.03333389014005661, 0.03333341330289841, 0.033332858234643936,
    0.03334227576851845, 0.03332584351301193, 0.03333180025219917, 0.03333333507180214,
    0.03333333507180214, 0.03333713114261627, 0.03333017975091934, 0.03333268687129021,
    0.033332858234643936, 0.03333325311541557, 0.03333333507180214, 0.033333808183670044,
    0.03333341330289841, 0.03333333507180214, 0.033333808183670044, 0.03333341330289841,
    0.033332858234643936, 0.033332303166389465, 0.033334121108055115, 0.03333396837115288,
    0.0333324633538723, 0.033334121108055115, 0.033332545310258865, 0.03333317115902901,
    0.03333428129553795, 0.03333301842212677, 0.033337052911520004, 0.03333017975091934,
    0.03333268687129021, 0.03333238512277603, 0.033334121108055115, 0.03333349525928497,
    0.033332858234643936, 0.03333420306444168, 0.03333301842212677, 0.03333277627825737,
    0.03333325311541557, 0.03333333507180214, 0.033333808183670044, 0.03333341330289841,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.033332858234643936, 0.03333372622728348,
    0.0333329401910305, 0.03333372622728348, 0.0333329401910305, 0.03333277627825737,
    0.03333325311541557, 0.033332858234643936, 0.03333325311541557, 0.03333333507180214,
    0.033333808183670044, 0.0333329401910305, 0.03333325311541557, 0.033333808183670044,
    0.0333329401910305, 0.03333372622728348, 0.0333329401910305, 0.03333325311541557,
    0.03333333507180214, 0.033331435173749924, 0.03333301097154617, 0.03332953527569771,
    0.03333315998315811, 0.03333341330289841, 0.03333238512277603, 0.0333326980471611,
    0.03333325311541557, 0.03333333507180214, 0.03333808109164238, 0.03332892060279846,
    0.03333291783928871, 0.03333341330289841, 0.033333808183670044, 0.0333324633538723,
    0.03333364799618721, 0.03333389014005661, 0.0333329401910305, 0.03333325311541557,
    0.03333903104066849, 0.03332813084125519, 0.03333275765180588, 0.03333721309900284,
    0.03332970663905144, 0.033333081752061844, 0.03333341330289841, 0.03333333507180214,
    0.033331435173749924, 0.03333301097154617, 0.033333808183670044, 0.0333329401910305,
    0.03333325311541557, 0.03333333507180214, 0.033332858234643936, 0.03333325311541557,
    0.03333428129553795, 0.033332545310258865, 0.03332984820008278, 0.033336564898490906,
    0.03333397954702377, 0.033333808183670044, 0.0333329401910305, 0.03333277627825737,
    0.03333372622728348, 0.0333324633538723, 0.03333364427089691, 0.03333341330289841,
    0.033336181193590164, 0.0333290733397007, 0.03333347290754318, 0.03333159536123276,
    0.03333348408341408, 0.033334363251924515, 0.03333302214741707, 0.03333325311541557,
    0.033332858234643936, 0.03333372622728348, 0.0333329401910305, 0.03333372622728348,
    0.03333389014005661, 0.0333329401910305, 0.03333277627825737, 0.03333325311541557,
    0.03333333507180214, 0.033333808183670044, 0.03333341330289841, 0.033332858234643936,
    0.03333325311541557, 0.03333333507180214, 0.03333333507180214, 0.033333808183670044,
    0.03333246514409897, 0.033334121108055115, 0.03333349526465697, 0.03333285874865048,
    0.03333372695370381, 0.0333329401910305, 0.03333277778703688, 0.03333183005452156,
    0.033333090317706336, 0.033332858794946005, 0.03333277778703688, 0.03333420306444168,
    0.03333349535725265, 0.03333333507180214, 0.033332858794946005, 0.03333325311541557,
    0.03333285880420511, 0.03333277778703688, 0.03333277778703688, 0.03333372680555566,
    0.0333329401910305, 0.03333372680555566, 0.0333324670791626, 0.033334121108055115,
    0.03333254640740654, 0.033333171227625746, 0.033333808183670044, 0.03333341438098042,
    0.03333285883198243, 0.03333420306444168, 0.03333302214741707, 0.03333372680555566,
    0.0333324670791626, 0.033333645735534205, 0.03333341438098042, 0.03334425123149059,
    0.03332427889108658, 0.0333305224776268, 0.033334121108055115, 0.03333207219839096,
    0.03333451363889184, 0.03333310198302887, 0.03333277778703688, 0.03333325311541557,
    0.03333333507180214, 0.033333808183670044, 0.03333341439023983, 0.033332858841241535,
    0.033332303320019754, 0.03333364565220226, 0.03334100916981697, 0.03333652764558792,
    0.03332464109880105, 0.03333131968975067, 0.03333277778703688, 0.033333726731481585,
    0.0333329401910305, 0.033332303338537345, 0.03333364559664763, 0.03333341442727749,
    0.033333808183670044, 0.0333329401910305, 0.03333325311541557, 0.03333333507180214,
    0.03333333507180214, 0.03333285887827795, 0.03333325311541557, 0.03333285888753706,
    0.03333325311541557, 0.03333333507180214, 0.033332858896796165, 0.033341795206069946,
    0.03332625066602923, 0.03333234804767785, 0.0333329401910305, 0.03333372665740751,
    0.0333324670791626, 0.03333364551331569, 0.0333329401910305, 0.033330880273087206,
    0.03333340212702751, 0.0333324670791626, 0.0333336453466518, 0.0333329401910305,
    0.03333325311541557, 0.033332858970869, 0.03333277778703688, 0.033333726490740845,
    0.033333414529131036, 0.033333808183670044, 0.0333329401910305, 0.03333325311541557,
    0.03333333507180214, 0.03333238512277603, 0.033333645263319854, 0.033333414538390456,
    0.033333808183670044, 0.033333414529131036, 0.0333451973044324, 0.03332207724452019,
    0.03333248324307333, 0.03333357721567154, 0.03333238512277603, 0.033332222259258026,
    0.033334121108055115, 0.033332547111110236, 0.033333645207765224, 0.03333294023148137,
    0.0333342007829765, 0.033332547111110236, 0.033333645207765224, 0.03333341455690928,
    0.03333191201090813, 0.03333403915166855, 0.03333302214741707, 0.03333372641666677,
    0.03333294024999989, 0.03333325311541557, 0.033332859026423634, 0.03333372639814825,
    0.03333341457542811, 0.03333333507180214, 0.033332859026423634, 0.03333325311541557,
    0.033332859035682734, 0.03333372637962974, 0.03333389014005661, 0.03333294026851841,
    0.03333325311541557, 0.03333238512277603, 0.03333364509665596, 0.03333294030555545,
    0.03333372636111122, 0.033334363251924515, 0.033332549035549164, 0.033333645124433285,
    0.03333341458468752, 0.033332859035682734, 0.03333277778703688, 0.03333325311541557,
    0.03333333507180214, 0.033333808183670044, 0.03333294030555545, 0.03333277778703688,
    0.03333325311541557, 0.03333285906346005, 0.03333277778703688, 0.03333420058852882,
    0.03334156090161522, 0.03332570195198059, 0.033332739025354385, 0.033333970179990124,
    0.033331044018268585, 0.03333245256030075, 0.03333325311541557, 0.03333333507180214,
    0.03333285910975558, 0.033333726231481585, 0.033332940435185074, 0.03333325311541557,
    0.03333665430545807, 0.03333010897040367, 0.03333268314599991, 0.03333333507180214,
    0.033333808183670044, 0.033332940453703594, 0.03333325311541557, 0.033333808183670044,
    0.03333389014005661, 0.0333324670791626, 0.0333326980471611, 0.03333420042185937,
    0.0333334960054224, 0.033332859119014686, 0.03332756257442441, 0.03333283019409236,
    0.03333389014005661, 0.0333329406574073, 0.03333372622728348, 0.03333246656074203,
    0.033333170431355995, 0.03333380744308701, 0.033333414779135206, 0.03333143701531009,
    0.03333442972247125, 0.03333357770666311, 0.03333333333333333, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.03333333333333333, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.03334234412193491, 0.03332539570553001,
    0.03333170461697953, 0.03333333333333333, 0.0333338074338276, 0.033330096462569674,
    0.03333228874113284, 0.03333514804444127, 0.03333223719469033, 0.03333308879000494,
    0.03333285930419678, 0.0333337258425927, 0.03333294082407396, 0.0333337258425927,
    0.033333414853210515, 0.03333854869689073, 0.03332948848209796, 0.033332518376566866,
    0.03333238527234277, 0.03333317028321278, 0.033341394089436455, 0.03332760602164689,
    0.03333163696163211, 0.03333325181617343, 0.03333333333333333, 0.03333333333333333,
    0.033333807378271116, 0.03333294080555544, 0.03333325181617343, 0.03333333333333333,
    0.03333333333333333, 0.033332385290860675, 0.03333364429111384, 0.03333294084259248,
    0.03333419986629455, 0.03334203160303995, 0.033325791087950536, 0.03333178479592573,
    0.03333333333333333, 0.03333333333333333, 0.03333333333333333, 0.03333902280456091,
    0.03334142439057121, 0.03332127922142905, 0.03333105136121661, 0.033333333333333326,
    0.033332859322714986, 0.03333372580555566, 0.03333341487172934, 0.033333333333333326,
    0.03333380735975229, 0.03333294084259248, 0.03333325179765522, 0.033332859322714986,
    0.03333372580555566, 0.03333151892405178, 0.033334903111118086, 0.033333185492607796,
    0.03333372580555566, 0.033332940861111, 0.03333372580555566, 0.03333246686629249,
    0.03333269623555894, 0.03333419978295983, 0.03333207447468258, 0.03333308862334661,
    0.03333333333333333, 0.03333285935975141, 0.033334673739125756, 0.03333263004383289,
    0.033333644180004576, 0.033332940916666554, 0.033333725750000105, 0.033332940916666554,
    0.033333725750000105, 0.03334242357632932, 0.03332492619597279, 0.03333209466288292,
    0.033333414908767, 0.03333238540196808, 0.03333317015358747, 0.033332859378269616,
    0.033333725694444545, 0.0333338888981483, 0.03333246700517906, 0.03333933286847662,
    0.03332870507080988, 0.03333282838886776, 0.033332940953703594, 0.03333277778703688,
    0.033333725694444545, 0.03333341492728582, 0.03333333333333333, 0.03333380730419581,
    0.033332940953703594, 0.03333372571296307, 0.03333341491802641, 0.03333285936901051,
    0.033332303847771146, 0.033333644068895316, 0.0333338888981483, 0.03333341492728582,
    0.03333333333333333, 0.03333380730419581, 0.03333246700517906, 0.03333364409667263,
    0.03333341492728582, 0.03333333333333333, 0.033332859378269616, 0.03333325173284149,
    0.03333333333333333, 0.033332859387528724, 0.03332946067350018, 0.0333326799389711,
    0.03333333333333333, 0.0333323856241829, 0.03333364379112217, 0.03333673244394888,
    0.03333153537523577, 0.0333329249877325, 0.03333285946160156, 0.03333277778703688,
    0.03333325164025044, 0.03333333333333333,
];
// The control (baseline) of the same test.
#[rustfmt::skip]
const PROBLEM_CASE_BASELINE: &[f64] = &[
    0.03333283215761185, 0.03333478048443794, 0.03333299607038498, 0.033332277089357376,
    0.03333372250199318, 0.033332888036966324, 0.03333327919244766, 0.03333333507180214,
    0.03333283215761185, 0.033333778381347656, 0.03333389014005661, 0.033332888036966324,
    0.03333327919244766, 0.03333183005452156, 0.033333670347929, 0.03333389014005661,
    0.03333338722586632, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333383426070213, 0.03333238884806633, 0.033333223313093185, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333283215761185, 0.03333327919244766,
    0.03333383426070213, 0.03333338722586632, 0.033328328281641006, 0.03333278372883797,
    0.03333333507180214, 0.03333383426070213, 0.033332888036966324, 0.03333277627825737,
    0.033333778381347656, 0.03333389014005661, 0.03333238884806633, 0.033333223313093185,
    0.03333333507180214, 0.03333333507180214, 0.03333283215761185, 0.03333327919244766,
    0.03333333507180214, 0.03333333507180214, 0.03333283215761185, 0.033332277089357376,
    0.03333372250199318, 0.03333338722586632, 0.03333333507180214, 0.03333383426070213,
    0.033332888036966324, 0.03333327919244766, 0.03333333507180214, 0.03333183377981186,
    0.03333316743373871, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333283215761185,
    0.03333327919244766, 0.03333433344960213, 0.03333244472742081, 0.0333322212100029,
    0.03333372250199318, 0.03333338722586632, 0.03333283215761185, 0.033333778381347656,
    0.03333338722586632, 0.03333283215761185, 0.03333327919244766, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333283215761185, 0.033333778381347656,
    0.03333338722586632, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333383426070213, 0.033332888036966324, 0.03333327919244766,
    0.03333333507180214, 0.03333333507180214, 0.03333133086562157, 0.03333311155438423,
    0.03333383426070213, 0.033332888036966324, 0.033333778381347656, 0.033332888036966324,
    0.03333327919244766, 0.03333333507180214, 0.03333283215761185, 0.03333327919244766,
    0.03333283215761185, 0.03333327919244766, 0.03333333507180214, 0.03333283215761185,
    0.03333327919244766, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333383426070213, 0.03333338722586632, 0.03333283215761185, 0.03333327919244766,
    0.03333383426070213, 0.033332888036966324, 0.03333277627825737, 0.03333327919244766,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03332933038473129,
    0.03333389014005661, 0.03333244472742081, 0.03333272412419319, 0.03333327919244766,
    0.03333383426070213, 0.033332888036966324, 0.03333327919244766, 0.03333333507180214,
    0.03333283215761185, 0.03333327919244766, 0.03333383426070213, 0.033332888036966324,
    0.03333327919244766, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333383426070213, 0.03333338722586632,
    0.03333283215761185, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333233296871185,
    0.033334724605083466, 0.03333299979567528, 0.03333327919244766, 0.03333333507180214,
    0.03333333507180214, 0.03333183377981186, 0.033334165811538696, 0.033333443105220795,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333383426070213, 0.033332888036966324, 0.03333327919244766,
    0.03333333507180214, 0.03333383426070213, 0.03333238884806633, 0.03333422169089317,
    0.03333244472742081, 0.033333223313093185, 0.03333333507180214, 0.03333333507180214,
    0.03333433344960213, 0.03333244472742081, 0.033333223313093185, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333383426070213, 0.033332888036966324, 0.03333327919244766, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.033331334590911865, 0.033333610743284225,
    0.033332888036966324, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333283215761185, 0.03333327919244766, 0.03333333507180214, 0.03333283215761185,
    0.03333327919244766, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333233296871185, 0.03333422169089317, 0.0333329439163208,
    0.03333327919244766, 0.03333333507180214, 0.03333333507180214, 0.03333383426070213,
    0.03333389014005661, 0.03333238884806633, 0.033333223313093185, 0.03333283215761185,
    0.03333327919244766, 0.03333333507180214, 0.03333283215761185, 0.03333327919244766,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333233296871185, 0.03333472087979317, 0.033333998173475266,
    0.03333238884806633, 0.03333272412419319, 0.03333327919244766, 0.03333433344960213,
    0.03333244472742081, 0.033333223313093185, 0.03333283215761185, 0.03333327919244766,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333283215761185, 0.033333778381347656, 0.033332888036966324,
    0.033333778381347656, 0.03333338722586632, 0.03333283215761185, 0.03333327919244766,
    0.03333333507180214, 0.03333283215761185, 0.033333778381347656, 0.033332888036966324,
    0.03333327919244766, 0.03333383426070213, 0.033332888036966324, 0.03333327919244766,
    0.03333383426070213, 0.03333338722586632, 0.03333283215761185, 0.03333327919244766,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333383426070213,
    0.033332888036966324, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333433344960213, 0.03333244472742081, 0.03333272412419319,
    0.03333327919244766, 0.03333183377981186, 0.03333516791462898, 0.033333055675029755,
    0.03333327919244766, 0.03333383426070213, 0.033332888036966324, 0.033333778381347656,
    0.033332888036966324, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333433344960213,
    0.03333244472742081, 0.03333372250199318, 0.033332888036966324, 0.033333778381347656,
    0.03333338722586632, 0.03333283215761185, 0.03333327919244766, 0.03333333507180214,
    0.03333283215761185, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333383426070213, 0.033332888036966324, 0.03333327919244766,
    0.03333333507180214, 0.03333283215761185, 0.033333778381347656, 0.033332888036966324,
    0.03333327919244766, 0.03333333507180214, 0.03333333507180214, 0.03333183377981186,
    0.03333316743373871, 0.03333333507180214, 0.03333333507180214, 0.03333183377981186,
    0.03333316743373871, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333283215761185, 0.033333778381347656,
    0.033332888036966324, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333283215761185, 0.03333327919244766, 0.03333383426070213,
    0.033332888036966324, 0.03333327919244766, 0.03333433344960213, 0.03333194553852081,
    0.0333336666226387, 0.03333389014005661, 0.033332888036966324, 0.03333327919244766,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333283215761185,
    0.03333327919244766, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333233296871185,
    0.03333422169089317, 0.0333329439163208, 0.03333327919244766, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333383426070213, 0.033332888036966324, 0.03333277627825737, 0.033333778381347656,
    0.033332888036966324, 0.03333327919244766, 0.03333333507180214, 0.03333383426070213,
    0.033332888036966324, 0.03333327919244766, 0.03333283215761185, 0.03333327919244766,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333233296871185, 0.033333223313093185, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333283215761185,
    0.03333327919244766, 0.03333283215761185, 0.033333778381347656, 0.033332888036966324,
    0.03333277627825737, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333283215761185, 0.03333277627825737, 0.03333327919244766,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333383426070213,
    0.033332888036966324, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333383426070213, 0.033332888036966324,
    0.03333327919244766, 0.03333283215761185, 0.03333277627825737, 0.03333327919244766,
    0.03333283215761185, 0.03333327919244766, 0.03333383426070213, 0.03333139047026634,
    0.03333311155438423, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333283215761185, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333283215761185, 0.03333327919244766, 0.03333333507180214,
    0.03333333507180214, 0.03333433344960213, 0.03333244472742081, 0.033333223313093185,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333283215761185,
    0.03333327919244766, 0.03333083540201187, 0.033334553241729736, 0.03333349898457527,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333433344960213,
    0.03333244472742081, 0.033333223313093185, 0.03333333507180214, 0.03333333507180214,
    0.03333433344960213, 0.03333244472742081, 0.033333223313093185, 0.03333333507180214,
    0.03333333507180214, 0.03333433344960213, 0.03333244472742081, 0.03333372250199318,
    0.033333390951156616, 0.03333283215761185, 0.03333327919244766, 0.03333383426070213,
    0.033332888036966324, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333283215761185, 0.03333327919244766,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333283215761185, 0.03333127871155739, 0.03333311155438423, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333383426070213, 0.03333288949074062,
    0.03333327919244766, 0.03333283364721699, 0.033333778381347656, 0.033333390951156616,
    0.03333333507180214, 0.03333333507180214, 0.03333283364721699, 0.033333778381347656,
    0.03333288950925913, 0.03333327919244766, 0.03333333507180214, 0.033332833656476095,
    0.03333327919244766, 0.03333383426070213, 0.033333390951156616, 0.033332833656476095,
    0.033333778381347656, 0.03333288952777765, 0.03333277778703688, 0.03333327919244766,
    0.03333333507180214, 0.033329837024211884, 0.033332442109572306, 0.03333427757024765,
    0.03333244603703605, 0.03333372250199318, 0.033333390951156616, 0.03333283373980804,
    0.03333327919244766, 0.03333333507180214, 0.03333283374906714, 0.03333277778703688,
    0.03333327919244766, 0.03333383426070213, 0.03333389014005661, 0.0333323901453489,
    0.03333322137410234, 0.03333333507180214, 0.03333383426070213, 0.03333288973148135,
    0.033333778381347656, 0.03333288973148135, 0.03333327919244766, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.033332833767585356,
    0.033333778381347656, 0.03333288974999987, 0.033333778381347656, 0.033333390951156616,
    0.033332833767585356, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333383426070213,
    0.03333288974999987, 0.033333778381347656, 0.03333288974999987, 0.03333327919244766,
    0.03333333507180214, 0.03333383426070213, 0.03333288974999987, 0.03333327919244766,
    0.03333383426070213, 0.03333288974999987, 0.03333327919244766, 0.03333333507180214,
    0.03333333507180214, 0.03333383426070213, 0.03333288974999987, 0.033333778381347656,
    0.03333288974999987, 0.03333327919244766, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333383426070213, 0.033333390951156616, 0.033332833767585356,
    0.03333327919244766, 0.03333333507180214, 0.03333383426070213, 0.03333288974999987,
    0.03333327919244766, 0.03333383426070213, 0.03333288974999987, 0.03333327919244766,
    0.03333333507180214, 0.033332833776844456, 0.03333277778703688, 0.03333277778703688,
    0.03333327731574844, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333283380462177, 0.033333778381347656,
    0.033332889824073945, 0.033333277306489335, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333383426070213, 0.033332889824073945, 0.033333277306489335, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333283381388088, 0.033333277297230235, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333333507180214, 0.03333333507180214, 0.03333333507180214, 0.03333333507180214,
    0.03333383426070213, 0.033332889842592466, 0.033333277297230235, 0.03333333507180214,
    0.0333283394575119, 0.03333227336406708, 0.03333327719538008, 0.03333383426070213,
    0.03333289176225662, 0.03333327719538008, 0.03333333507180214, 0.03333333507180214,
    0.03333383426070213, 0.03333289176225662, 0.033333778381347656, 0.03333289176225662,
    0.03333327719538008, 0.03333383426070213, 0.03333289176225662, 0.033333778381347656,
    0.03333289176225662, 0.03332878311949146, 0.033332329243421555, 0.033332278487928045,
    0.03333322083708321, 0.03333383426070213, 0.03333289176225662, 0.03333377639814827,
    0.03333289026851839, 0.03333277778703688, 0.03333277778703688, 0.033333277065752606,
    0.03333333333333333, 0.03333333333333333, 0.03333333333333333, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.03333333333333333, 0.03333333333333333,
    0.03333283405461761, 0.033333277056493506, 0.03333333333333334, 0.03333333333333334,
    0.03333333333333334, 0.033332834063876715, 0.0333332770472344, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.03333333333333333, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.03333333333333333, 0.03333333333333333,
    0.03333383261017313, 0.03333289034259247, 0.0333332770472344, 0.033332834073135816,
    0.03333277778703688, 0.033333277028716184, 0.03333333333333333, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.033333832591654296, 0.0333328903796295,
    0.03333277778703688, 0.03333327701945708, 0.03333333333333333, 0.03333333333333333,
    0.03333333333333333, 0.03333383258239488, 0.033331891964711084, 0.03333366357232564,
    0.03333338965834615, 0.03333333333333333, 0.03333333333333333, 0.03333333333333333,
    0.03333283411017223, 0.03333078109781969, 0.03333305145867474, 0.03333333333333333,
    0.033333832517578994, 0.03333289052777765, 0.033333276954643346, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.03333333333333333, 0.033333832517578994,
    0.03333289052777765, 0.033333276954643346, 0.03333283416572687, 0.03333327694538424,
    0.03333333333333333, 0.03333333333333333, 0.03333333333333333, 0.03333333333333333,
    0.03333283417498597, 0.03333327693612514, 0.03333383249906016, 0.03333289056481469,
    0.03333377610185197, 0.03333338972316205, 0.03333283417498597, 0.03333327693612514,
    0.03333383249906016, 0.03333289056481469, 0.03333327693612514, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.03333333333333333, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.03333383249906016, 0.03333289056481469,
    0.03333327693612514, 0.03333333333333333, 0.03333383249906016, 0.03333338972316205,
    0.03333333333333333, 0.03333333333333333, 0.03333283417498597, 0.03333377610185197,
    0.03333289056481469, 0.03333327693612514, 0.03333333333333333, 0.03333383249906016,
    0.03333289056481469, 0.03333327693612514, 0.033332834184245076, 0.033333776083333454,
    0.033332890583333205, 0.03333327692686603, 0.03333333333333333, 0.03333383248980075,
    0.033332890583333205, 0.03333327692686603, 0.03333333333333333, 0.03333333333333333,
    0.03333383248980075, 0.033332890583333205, 0.03333327692686603, 0.033332834193504184,
    0.033333776064814934, 0.033332890601851725, 0.03333327691760692, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.03333333333333333, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.03333333333333333, 0.03333333333333333,
    0.03333333333333333, 0.03333333333333333, 0.03333383248054134, 0.033332890601851725,
    0.03333327691760692, 0.033332834202763284,
];
