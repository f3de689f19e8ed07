//! One metric: data in, classification and its numbers out.

use crate::model::{Direction, EffectMeasure, Metric, MetricKind, NanStrategy, TestKind};
use crate::stats::sequential::Decision;
use crate::stats::{
    self, Alternative, Sorted,
    effect::{EffectSizes, effect_sizes},
    histogram::mann_whitney_histograms,
    hodges_lehmann::hodges_lehmann,
    mannwhitney::mann_whitney,
    proportions::{Counts, compare_proportions},
};

use super::sequential::SequentialResult;
use super::{
    BurnSummary, Classification, EffectGate, JudgeError, JudgeOptions, MetricData, MetricResult,
    Summary,
};

/// One metric: `data` is everything gathered (cumulative); `seq` where its sequential
/// test stands after the analysis's looks (a `test: sequential` metric only).
pub(super) fn classify(
    metric: &Metric,
    data: Option<&MetricData>,
    seq: Option<SequentialResult>,
    options: &JudgeOptions,
) -> Result<MetricResult, JudgeError> {
    let result = fixed(metric, data, options)?;
    match seq {
        Some(seq) if metric.test() == TestKind::Sequential => {
            Ok(apply_sequential(metric, result, seq, options))
        }
        _ => Ok(result),
    }
}

/// The sequential test decides; the fixed-horizon numbers (summaries, rank test or
/// proportions, effect sizes) stay in the result for reference, and the effect gate and
/// the SLO burn rule apply as for any test.
fn apply_sequential(
    metric: &Metric,
    mut result: MetricResult,
    seq: SequentialResult,
    options: &JudgeOptions,
) -> MetricResult {
    // No data, or one and the same constant on both sides (decided by rule): nothing
    // for a test to add.
    let by_rule = result.classification == Classification::Pass && result.effect_gate.is_none();
    if result.classification == Classification::Nodata || by_rule {
        result.sequential = Some(seq);
        return result;
    }
    let moved_up = match alternative(metric, options) {
        Alternative::Greater => true,
        Alternative::Less => false,
        Alternative::TwoSided => match (&result.proportions, &result.effect) {
            (Some(p), _) => p.canary_ratio > p.baseline_ratio,
            (None, Some(e)) => e.cles > 0.5,
            (None, None) => true,
        },
    };
    let value = result.effect_gate.as_ref().and_then(|g| g.value);
    let looks = match seq.looks {
        1 => "1 look".to_string(),
        n => format!("{n} looks"),
    };
    let evidence = Evidence {
        p: seq.p_value,
        significant: seq.decision == Decision::Reject,
        p_text: format!("anytime-valid p = {} after {looks}", fmt_p(seq.p_value)),
        below: "<=",
    };
    result.critical_failure = false;
    let mut result = decide(metric, result, &evidence, moved_up, value);
    if result.classification == Classification::Pass
        && seq.decision == Decision::AcceptEquivalent
        && let (Some(m), Some(at)) = (seq.equivalence_margin, seq.first_equivalence)
    {
        result.reason = format!(
            "{}: canary equivalent to baseline within {}% (confidence sequence inside the margin since look {}, anytime-valid p = {})",
            metric.name,
            fmt_num(100.0 * m),
            at + 1,
            fmt_p(seq.p_value)
        );
    }
    apply_burn(metric, &mut result);
    result.sequential = Some(seq);
    result
}

/// A metric's result before anything is known: `nodata`, no numbers.
pub(super) fn blank(metric: &Metric) -> MetricResult {
    MetricResult {
        name: metric.name.clone(),
        group: metric.group().to_string(),
        kind: metric.kind,
        test: metric.test(),
        direction: metric.direction,
        critical: metric.critical,
        unit: metric.unit.clone(),
        classification: Classification::Nodata,
        critical_failure: false,
        nodata_fails: false,
        reason: String::new(),
        alpha: metric.alpha,
        baseline: None,
        canary: None,
        mann_whitney: None,
        shift: None,
        effect: None,
        proportions: None,
        burn: None,
        effect_gate: None,
        sequential: None,
    }
}

fn fixed(
    metric: &Metric,
    data: Option<&MetricData>,
    options: &JudgeOptions,
) -> Result<MetricResult, JudgeError> {
    let mut result = blank(metric);
    let Some(data) = data else {
        return Ok(nodata(metric, result, "no data for either version".into()));
    };
    let stats_err = |source| JudgeError::Stats {
        metric: metric.name.clone(),
        source,
    };
    match (metric.kind, data) {
        (MetricKind::Distribution, MetricData::Samples { baseline, canary }) => {
            // Each side is cleaned, sorted once and summarised on a thread of its own;
            // nothing is shared between the two, so the numbers cannot depend on timing.
            let side = |values: &[f64], which: &'static str| {
                let (values, nan) = clean(metric, values, which)?;
                let sorted = Sorted::new(values, which).map_err(stats_err)?;
                let summary = Summary::of_samples(&sorted, nan);
                Ok::<_, JudgeError>((sorted, summary))
            };
            let (b, c) = rayon::join(|| side(baseline, "baseline"), || side(canary, "canary"));
            let (baseline, summary_b) = b?;
            let (canary, summary_c) = c?;
            result.baseline = Some(summary_b);
            result.canary = Some(summary_c);
            if let Some(why) = too_few(metric, baseline.len() as u64, canary.len() as u64) {
                return Ok(nodata(metric, result, why));
            }
            distribution(metric, &canary, &baseline, options, result).map_err(stats_err)
        }
        (MetricKind::Distribution, MetricData::Histograms { baseline, canary }) => {
            let (b, c) = (&baseline.histogram, &canary.histogram);
            result.baseline = Some(Summary::of_histogram(b));
            result.canary = Some(Summary::of_histogram(c));
            if let Some(why) = too_few(metric, b.count(), c.count()) {
                return Ok(nodata(metric, result, why));
            }
            let alternative = alternative(metric, options);
            let mw =
                mann_whitney_histograms(c, b, alternative, options.method).map_err(stats_err)?;
            let median_ratio = ratio(c.quantile(0.5), b.quantile(0.5));
            let mean_ratio = ratio(
                (c.count() > 0).then(|| c.sum() / c.count() as f64),
                (b.count() > 0).then(|| b.sum() / b.count() as f64),
            );
            let cles = mw.u / (mw.n_canary as f64 * mw.n_baseline as f64);
            let effect = EffectSizes {
                median_ratio,
                mean_ratio,
                cles,
                relative_shift: None,
            };
            let moved_up = cles > 0.5;
            let value = distribution_effect(metric.measure(), &effect);
            let evidence = Evidence::fixed(metric, mw.p_value);
            result.mann_whitney = Some(mw.clone());
            result.effect = Some(effect);
            Ok(decide(metric, result, &evidence, moved_up, value))
        }
        (MetricKind::ErrorRatio, MetricData::Counts { baseline, canary }) => {
            error_ratio(metric, *canary, *baseline, options, result).map_err(stats_err)
        }
        (_, other) => Err(JudgeError::wrong_shape(metric, other)),
    }
}

/// Applies the model's NaN strategy; returns the values and how many NaN there were.
pub(super) fn clean(
    metric: &Metric,
    values: &[f64],
    side: &'static str,
) -> Result<(Vec<f64>, usize), JudgeError> {
    let nan = values.iter().filter(|v| v.is_nan()).count();
    if nan == 0 {
        return Ok((values.to_vec(), 0));
    }
    match metric.nan {
        NanStrategy::Remove => Ok((
            values.iter().copied().filter(|v| !v.is_nan()).collect(),
            nan,
        )),
        NanStrategy::Replace => Ok((
            values
                .iter()
                .map(|v| if v.is_nan() { 0.0 } else { *v })
                .collect(),
            nan,
        )),
        NanStrategy::Fail => Err(JudgeError::NaN {
            metric: metric.name.clone(),
            side,
            index: values.iter().position(|v| v.is_nan()).unwrap_or(0),
        }),
    }
}

fn too_few(metric: &Metric, baseline: u64, canary: u64) -> Option<String> {
    let min = metric.min_samples().max(1);
    let what = match metric.kind {
        MetricKind::Distribution => "observations",
        MetricKind::ErrorRatio => "requests",
    };
    for (side, n) in [("baseline", baseline), ("canary", canary)] {
        if n < min {
            return Some(format!(
                "{side} has {n} {what}, fewer than min_samples ({min})"
            ));
        }
    }
    None
}

/// Missing data, with Kayenta's consequences (`MannWhitneyClassifier`): on a critical
/// metric it fails the canary (the scorer sees `critical` and `nodata`; see
/// [`MetricResult::critical_nodata`]), with `must_have_data` it counts as a failed metric
/// in its group, and otherwise it is left out of the score.
fn nodata(metric: &Metric, mut result: MetricResult, why: String) -> MetricResult {
    result.classification = Classification::Nodata;
    result.nodata_fails = metric.must_have_data;
    result.reason = if metric.critical {
        format!(
            "{}: no data ({why}); a critical metric without data fails the canary",
            metric.name
        )
    } else if metric.must_have_data {
        format!(
            "{}: no data ({why}); the model requires data, so it counts as failed",
            metric.name
        )
    } else {
        format!("{}: no data ({why})", metric.name)
    };
    result
}

pub(super) fn alternative(metric: &Metric, options: &JudgeOptions) -> Alternative {
    options
        .alternative
        .unwrap_or_else(|| metric.direction.alternative())
}

fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d != 0.0 => Some(n / d),
        _ => None,
    }
}

fn distribution_effect(measure: EffectMeasure, e: &EffectSizes) -> Option<f64> {
    match measure {
        EffectMeasure::MedianRatio => e.median_ratio,
        EffectMeasure::MeanRatio => e.mean_ratio,
        EffectMeasure::Cles => Some(e.cles),
        EffectMeasure::ShiftRatio => e
            .relative_shift
            .as_ref()
            .map(|s| 1.0 + s.estimate)
            .or(e.median_ratio),
        // Rejected for distributions by model validation.
        EffectMeasure::Ratio => e.median_ratio,
    }
}

fn distribution(
    metric: &Metric,
    canary: &Sorted,
    baseline: &Sorted,
    options: &JudgeOptions,
    mut result: MetricResult,
) -> Result<MetricResult, stats::StatsError> {
    let (c, b) = (canary.as_slice(), baseline.as_slice());
    // Kayenta adds random noise to constant samples so its test can run; a constant
    // pair has nothing to rank, so it is decided here, reproducibly.
    if c.first() == c.last() && b.first() == b.last() && c.first() == b.first() {
        result.classification = Classification::Pass;
        result.reason = format!(
            "{}: both versions are the constant {}; nothing to compare",
            metric.name,
            c.first().copied().unwrap_or(0.0)
        );
        return Ok(result);
    }
    let alternative = alternative(metric, options);
    let mw = mann_whitney(canary, baseline, alternative, options.method)?;
    let shift = hodges_lehmann(canary, baseline, metric.conf_level(), options.method)?;
    let effect = effect_sizes(canary, baseline, mw.u, Some(&shift));
    let moved_up = shift.estimate > 0.0 || (shift.estimate == 0.0 && effect.cles > 0.5);
    let value = distribution_effect(metric.measure(), &effect);
    let evidence = Evidence::fixed(metric, mw.p_value);
    result.mann_whitney = Some(mw);
    result.shift = Some(shift);
    result.effect = Some(effect);
    Ok(decide(metric, result, &evidence, moved_up, value))
}

fn error_ratio(
    metric: &Metric,
    canary: Counts,
    baseline: Counts,
    options: &JudgeOptions,
    mut result: MetricResult,
) -> Result<MetricResult, stats::StatsError> {
    for (side, c) in [("baseline", baseline), ("canary", canary)] {
        if c.errors > c.requests {
            return Err(stats::StatsError::Invalid(format!(
                "{side} has {} errors but only {} requests",
                c.errors, c.requests
            )));
        }
    }
    result.baseline = Some(Summary::of_counts(baseline));
    result.canary = Some(Summary::of_counts(canary));
    if let Some(why) = too_few(metric, baseline.requests, canary.requests) {
        return Ok(nodata(metric, result, why));
    }
    let test = compare_proportions(
        canary,
        baseline,
        alternative(metric, options),
        options.method,
    )?;
    let moved_up = test.canary_ratio > test.baseline_ratio;
    // An error ratio rising from zero is an unbounded increase, not an undefined one.
    let value = test.ratio.or(if test.canary_ratio > 0.0 {
        Some(f64::INFINITY)
    } else {
        None
    });
    let evidence = Evidence::fixed(metric, test.p_value);
    result.proportions = Some(test);
    let mut result = decide(metric, result, &evidence, moved_up, value);
    if let Some(slo) = metric.slo {
        result.burn = Some(BurnSummary {
            slo_target: slo.target,
            canary: stats::burn::burn_rate(canary.errors, canary.requests, slo.target)?,
            baseline: stats::burn::burn_rate(baseline.errors, baseline.requests, slo.target)?,
            max_burn_rate: slo.max_burn_rate,
        });
    }
    apply_burn(metric, &mut result);
    Ok(result)
}

/// Burning the budget faster than the page threshold is a regression on its own, but only
/// when the canary is the one burning: a baseline burning just as fast is an incident, not
/// a bad release.
fn apply_burn(metric: &Metric, result: &mut MetricResult) {
    let (Some(slo), Some(burn), Some(test)) = (metric.slo, &result.burn, &result.proportions)
    else {
        return;
    };
    if result.classification == Classification::Pass
        && metric.direction != Direction::Decrease
        && burn.canary > burn.max_burn_rate
        && test.canary_ratio > test.baseline_ratio
    {
        result.classification = Classification::High;
        result.critical_failure = metric.critical;
        result.reason = format!(
            "{}: canary burns the error budget of SLO {} at {:.1}x (baseline {:.1}x), over the {}x limit",
            metric.name, slo.target, burn.canary, burn.baseline, burn.max_burn_rate
        );
    }
}

/// What a test says, for the decision and its sentence.
struct Evidence {
    p: f64,
    significant: bool,
    p_text: String,
    /// How `p` compares with alpha when significant.
    below: &'static str,
}

impl Evidence {
    fn fixed(metric: &Metric, p: f64) -> Evidence {
        Evidence {
            p,
            significant: p < metric.alpha,
            p_text: format!("p = {}", fmt_p(p)),
            below: "<",
        }
    }
}

/// The Kayenta-style decision: a significant change in a direction the model cares about,
/// of at least the allowed effect, is `high`/`low`; past the critical effect on a
/// critical metric it fails the canary.
fn decide(
    metric: &Metric,
    mut result: MetricResult,
    evidence: &Evidence,
    moved_up: bool,
    value: Option<f64>,
) -> MetricResult {
    let e = &metric.effect;
    let significant = evidence.significant;
    let cares = match metric.direction {
        Direction::Increase => moved_up,
        Direction::Decrease => !moved_up,
        Direction::Either => true,
    };
    let (allowed, critical) = if moved_up {
        (e.allowed_increase(), e.critical_increase())
    } else {
        (e.allowed_decrease(), e.critical_decrease())
    };
    result.effect_gate = Some(EffectGate {
        measure: metric.measure(),
        value,
        allowed,
        critical,
    });
    let (reaches, reaches_critical) = match value {
        // An undefined effect (zero denominator) cannot veto a significant result.
        None => (true, true),
        Some(v) if moved_up => (v >= allowed, v >= critical),
        Some(v) => (v <= allowed, v <= critical),
    };
    let way = if moved_up { "higher" } else { "lower" };
    let effect_text = match value {
        Some(v) => format!("{} {}", measure_name(metric.measure()), fmt_num(v)),
        None => format!("{} undefined", measure_name(metric.measure())),
    };
    let p_text = &evidence.p_text;
    let (below, above) = if evidence.below == "<" {
        ("<", ">=")
    } else {
        ("<=", ">")
    };
    debug_assert!(evidence.p.is_nan() || evidence.p >= 0.0);
    if significant && cares && reaches {
        result.classification = if moved_up {
            Classification::High
        } else {
            Classification::Low
        };
        result.critical_failure = metric.critical && reaches_critical;
        let crit = if result.critical_failure {
            format!(
                ", past the critical {} (critical metric)",
                fmt_num(critical)
            )
        } else {
            String::new()
        };
        result.reason = format!(
            "{}: canary {way} than baseline ({p_text} {below} alpha {}, {effect_text}, allowed {}{crit})",
            metric.name,
            metric.alpha,
            fmt_num(allowed)
        );
    } else {
        result.classification = Classification::Pass;
        result.reason = if !significant {
            format!(
                "{}: no significant difference ({p_text} {above} alpha {}, {effect_text})",
                metric.name, metric.alpha
            )
        } else if !cares {
            format!(
                "{}: canary {way} than baseline ({p_text}), a direction the model accepts",
                metric.name
            )
        } else {
            format!(
                "{}: canary {way} than baseline ({p_text}) but by less than allowed ({effect_text}, allowed {})",
                metric.name,
                fmt_num(allowed)
            )
        };
    }
    result
}

fn measure_name(m: EffectMeasure) -> &'static str {
    match m {
        EffectMeasure::MedianRatio => "median ratio",
        EffectMeasure::MeanRatio => "mean ratio",
        EffectMeasure::Cles => "CLES",
        EffectMeasure::ShiftRatio => "shift ratio",
        EffectMeasure::Ratio => "error-ratio ratio",
    }
}

/// A number for a sentence: 4 significant digits.
pub fn fmt_num(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:.3e}")
    } else {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    }
}

/// A p-value for a sentence.
pub fn fmt_p(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.2e}")
    } else {
        format!("{p:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_data_has_the_consequence_the_model_gives_it() {
        let model = crate::model::Model::from_yaml(
            "name: m\nmetrics:\n  - {name: dead, critical: true}\n  - {name: required, must_have_data: true}\n  - {name: optional}\n  - {name: both, critical: true, must_have_data: true}\n",
            "test",
        )
        .unwrap();
        let j = crate::judge::judge(&model, &Default::default(), &JudgeOptions::default()).unwrap();
        let m = |name: &str| j.metrics.iter().find(|m| m.name == name).unwrap();
        for name in ["dead", "required", "optional", "both"] {
            assert_eq!(m(name).classification, Classification::Nodata, "{name}");
            // Missing data is not a regression: a running analysis is not ended by it.
            assert!(!m(name).critical_failure, "{name}");
        }
        assert!(m("dead").critical_nodata() && !m("dead").nodata_fails);
        assert!(m("both").critical_nodata() && m("both").nodata_fails);
        assert!(!m("required").critical_nodata() && m("required").nodata_fails);
        assert!(!m("optional").critical_nodata() && !m("optional").nodata_fails);
        assert_eq!(
            m("dead").reason,
            "dead: no data (no data for either version); a critical metric without data fails the canary"
        );
        assert_eq!(
            m("required").reason,
            "required: no data (no data for either version); the model requires data, so it counts as failed"
        );
        assert_eq!(
            m("optional").reason,
            "optional: no data (no data for either version)"
        );
        // Four metrics without data, yet not inconclusive: two critical ones are dead.
        assert_eq!(j.verdict, super::super::Verdict::Fail);
        assert_eq!(j.score, 0.0);
        assert_eq!(j.reasons[0], "critical metrics had no data: dead, both");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(fmt_num(1.05), "1.05");
        assert_eq!(fmt_num(2.0), "2");
        assert_eq!(fmt_num(0.0001234), "1.234e-4");
        assert_eq!(fmt_num(f64::INFINITY), "inf");
        assert_eq!(fmt_p(0.01234), "0.0123");
        assert_eq!(fmt_p(3.2e-9), "3.20e-9");
    }
}
