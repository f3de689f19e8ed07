//! From metric classifications to group scores, the overall score and the verdict.
//!
//! Kayenta's scoring (`WeightedSumScorer`). Every difference from it is in the table of
//! `docs/kayenta.md`; the two that shape this file: weights are relative (normalised over
//! the groups present), and half or more metrics without data make the verdict
//! `inconclusive` rather than a score of 0, since missing data is not evidence of a
//! regression. That rule counts only metrics whose missing data means nothing else: a
//! critical metric without data fails the canary and a `must_have_data` one counts as a
//! failed metric, as in Kayenta.

use std::collections::HashMap;

use crate::model::{Model, Thresholds};

use super::{Classification, GroupScore, Judgment, MetricResult, Verdict, classify::fmt_num};

pub(super) fn score(model: &Model, metrics: Vec<MetricResult>) -> Judgment {
    let groups = group_scores(model, &metrics);
    let score = overall(&groups);
    let t = model.thresholds;
    let (verdict, score, mut reasons) = decide(&t, &metrics, score);
    reasons.extend(unpassed_reasons(&metrics));
    Judgment {
        model: model.name.clone(),
        verdict,
        score,
        thresholds: t,
        reasons,
        groups,
        metrics,
    }
}

/// The score of each group present, in the order its first metric appears in the model,
/// with its weight normalised over those groups. One pass over the metrics: the cost is
/// linear in their number, however many groups they form.
fn group_scores(model: &Model, metrics: &[MetricResult]) -> Vec<GroupScore> {
    let (names, counts) = count_groups(metrics);
    let raw = raw_weights(model, &names);
    let total: f64 = raw.iter().sum();
    names
        .iter()
        .zip(&raw)
        .zip(&counts)
        .map(|((name, w), c)| {
            let weight = if total > 0.0 {
                100.0 * w / total
            } else {
                100.0 / names.len() as f64
            };
            group_score(name, weight, c)
        })
        .collect()
}

/// The groups present, in the order their first metric appears, with their metrics
/// counted by classification. One pass: linear in the number of metrics.
pub(super) fn count_groups(metrics: &[MetricResult]) -> (Vec<String>, Vec<Counts>) {
    let mut names: Vec<String> = Vec::new();
    let mut counts: Vec<Counts> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for m in metrics {
        let i = *at.entry(m.group.as_str()).or_insert_with(|| {
            names.push(m.group.clone());
            counts.push(Counts::default());
            names.len() - 1
        });
        counts[i].add(m);
    }
    (names, counts)
}

/// Each group's weight as the model gives it; groups without one share what the explicit
/// weights leave of 100.
fn raw_weights(model: &Model, names: &[String]) -> Vec<f64> {
    let explicit: f64 = names
        .iter()
        .filter_map(|g| model.groups.get(g).and_then(|g| g.weight))
        .sum();
    let unweighted = names
        .iter()
        .filter(|g| model.groups.get(*g).and_then(|g| g.weight).is_none())
        .count();
    let share = if unweighted > 0 {
        ((100.0 - explicit).max(0.0)) / unweighted as f64
    } else {
        0.0
    };
    names
        .iter()
        .map(|g| model.groups.get(g).and_then(|g| g.weight).unwrap_or(share))
        .collect()
}

/// One group's metrics, counted by classification.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) pass: usize,
    pub(super) high: usize,
    pub(super) low: usize,
    pub(super) nodata: usize,
    pub(super) error: usize,
    /// Metrics without data that count as failed (`must_have_data`).
    pub(super) nodata_fail: usize,
}

impl Counts {
    fn add(&mut self, m: &MetricResult) {
        match m.classification {
            Classification::Pass => self.pass += 1,
            Classification::High => self.high += 1,
            Classification::Low => self.low += 1,
            Classification::Nodata => self.nodata += 1,
            Classification::Error => self.error += 1,
        }
        if m.nodata_fails {
            self.nodata_fail += 1;
        }
    }
}

/// One group's score from its counts.
pub(super) fn group_score(name: &str, weight: f64, c: &Counts) -> GroupScore {
    let denominator = c.pass + c.high + c.low + c.nodata_fail;
    GroupScore {
        name: name.to_string(),
        // Kayenta scores a group with nothing countable as 100.
        score: if denominator == 0 {
            100.0
        } else {
            100.0 * c.pass as f64 / denominator as f64
        },
        weight,
        pass: c.pass,
        high: c.high,
        low: c.low,
        nodata: c.nodata,
        error: c.error,
    }
}

/// The weighted sum of the group scores.
fn overall(groups: &[GroupScore]) -> f64 {
    let score: f64 = groups.iter().map(|g| g.score * g.weight / 100.0).sum();
    // Rounding noise from the weights must not turn 100 into 99.999...
    (score * 1e9).round() / 1e9
}

/// The verdict, the score it stands on (0 when a critical metric fails the canary) and
/// the reasons that decided it.
fn decide(t: &Thresholds, metrics: &[MetricResult], score: f64) -> (Verdict, f64, Vec<String>) {
    let (regressed, dead) = critical_names(metrics);
    if !regressed.is_empty() || !dead.is_empty() {
        return (Verdict::Fail, 0.0, critical_reasons(&regressed, &dead));
    }
    // Only missing data the model attaches no consequence to can make a judgment
    // inconclusive; critical and required metrics without data fail it instead.
    let nodata = metrics
        .iter()
        .filter(|m| m.classification == Classification::Nodata && !m.critical && !m.nodata_fails)
        .count();
    let (verdict, reason) = if !metrics.is_empty() && 2 * nodata >= metrics.len() {
        (
            Verdict::Inconclusive,
            format!(
                "{nodata} of {} metrics had no data; not enough to judge",
                metrics.len()
            ),
        )
    } else {
        by_thresholds(t, score)
    };
    (verdict, score, vec![reason])
}

/// The critical metrics that fail the canary: those that regressed past their critical
/// effect, and those without data.
pub(super) fn critical_names(metrics: &[MetricResult]) -> (Vec<&str>, Vec<&str>) {
    let names = |pick: &dyn Fn(&MetricResult) -> bool| -> Vec<&str> {
        metrics
            .iter()
            .filter(|m| pick(m))
            .map(|m| m.name.as_str())
            .collect()
    };
    (
        names(&|m| m.critical_failure),
        names(&|m| m.critical_nodata()),
    )
}

/// Pass, marginal or fail by the score alone, and the sentence that says so.
pub(super) fn by_thresholds(t: &Thresholds, score: f64) -> (Verdict, String) {
    if score >= t.pass {
        (
            Verdict::Pass,
            format!("score {} >= pass threshold {}", fmt_num(score), t.pass),
        )
    } else if score >= t.marginal {
        (
            Verdict::Marginal,
            format!(
                "score {} is below pass {} but at least marginal {}",
                fmt_num(score),
                t.pass,
                t.marginal
            ),
        )
    } else {
        (
            Verdict::Fail,
            format!(
                "score {} < marginal threshold {}",
                fmt_num(score),
                t.marginal
            ),
        )
    }
}

/// Why critical metrics failed the canary: those that regressed, then those without data.
pub(super) fn critical_reasons(regressed: &[&str], dead: &[&str]) -> Vec<String> {
    let plural = |n: &[&str]| if n.len() > 1 { "s" } else { "" };
    let mut reasons = Vec::new();
    if !regressed.is_empty() {
        reasons.push(format!(
            "critical metric{} regressed: {}",
            plural(regressed),
            regressed.join(", ")
        ));
    }
    if !dead.is_empty() {
        reasons.push(format!(
            "critical metric{} had no data: {}",
            plural(dead),
            dead.join(", ")
        ));
    }
    reasons
}

/// The reason of every metric that did not simply pass: regressions first, then errors,
/// then missing data.
pub(super) fn unpassed_reasons(metrics: &[MetricResult]) -> impl Iterator<Item = String> + '_ {
    [
        Classification::High,
        Classification::Low,
        Classification::Error,
        Classification::Nodata,
    ]
    .into_iter()
    .flat_map(move |class| {
        metrics
            .iter()
            .filter(move |m| m.classification == class)
            .map(|m| m.reason.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, MetricKind, TestKind};

    fn result(name: &str, group: &str, class: Classification) -> MetricResult {
        MetricResult {
            name: name.into(),
            group: group.into(),
            kind: MetricKind::Distribution,
            test: TestKind::MannWhitney,
            direction: Direction::Increase,
            critical: false,
            unit: String::new(),
            classification: class,
            critical_failure: false,
            nodata_fails: false,
            reason: format!("{name}: {class:?}"),
            alpha: 0.01,
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

    fn model(yaml: &str) -> Model {
        Model::from_yaml(yaml, "test").unwrap()
    }

    const TWO_GROUPS: &str = "name: m\ngroups:\n  lat: {weight: 60}\n  err: {weight: 40}\nmetrics:\n  - {name: a, group: lat}\n  - {name: b, group: lat}\n  - {name: c, group: err}\n";

    #[test]
    fn kayenta_group_scores_and_weights() {
        use Classification::*;
        let j = score(
            &model(TWO_GROUPS),
            vec![
                result("a", "lat", Pass),
                result("b", "lat", High),
                result("c", "err", Pass),
            ],
        );
        // lat: 1 of 2 pass = 50, err: 100; 50 * 0.6 + 100 * 0.4 = 70 < marginal 75.
        assert_eq!(j.groups[0].name, "lat");
        assert_eq!(j.groups[0].score, 50.0);
        assert_eq!(j.groups[1].score, 100.0);
        assert_eq!(j.score, 70.0);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.reasons[0], "score 70 < marginal threshold 75");
        assert_eq!(j.reasons[1], "b: High");
    }

    #[test]
    fn nodata_is_left_out_unless_the_model_requires_data() {
        use Classification::*;
        let m = model(TWO_GROUPS);
        let j = score(
            &m,
            vec![
                result("a", "lat", Pass),
                result("b", "lat", Nodata),
                result("c", "err", Pass),
            ],
        );
        assert_eq!(j.score, 100.0);
        assert_eq!(j.verdict, Verdict::Pass);
        let mut required = result("b", "lat", Nodata);
        required.nodata_fails = true;
        let j = score(
            &m,
            vec![result("a", "lat", Pass), required, result("c", "err", Pass)],
        );
        assert_eq!(j.score, 70.0);
    }

    #[test]
    fn half_without_data_is_inconclusive() {
        use Classification::*;
        let m = model("name: m\nmetrics:\n  - {name: a}\n  - {name: b}\n");
        let j = score(&m, vec![result("a", "a", Pass), result("b", "b", Nodata)]);
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert_eq!(j.verdict.exit_code(), 3);
    }

    #[test]
    fn a_critical_failure_zeroes_the_score() {
        use Classification::*;
        let mut bad = result("c", "err", High);
        bad.critical_failure = true;
        let j = score(
            &model(TWO_GROUPS),
            vec![result("a", "lat", Pass), result("b", "lat", Pass), bad],
        );
        assert_eq!(j.score, 0.0);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.reasons[0], "critical metric regressed: c");
    }

    #[test]
    fn a_critical_metric_without_data_fails_the_canary() {
        use Classification::*;
        // Kayenta's ScorerSuite: "one good (normal), one nodata (critical)" scores 0.
        let mut dead = result("c", "err", Nodata);
        dead.critical = true;
        let j = score(
            &model(TWO_GROUPS),
            vec![result("a", "lat", Pass), result("b", "lat", Pass), dead],
        );
        assert_eq!(j.score, 0.0);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.reasons[0], "critical metric had no data: c");
        // A regression and a dead metric: both named, the regression first.
        let mut bad = result("a", "lat", High);
        bad.critical = true;
        bad.critical_failure = true;
        let (mut d1, mut d2) = (result("b", "lat", Nodata), result("c", "err", Nodata));
        d1.critical = true;
        d2.critical = true;
        let j = score(&model(TWO_GROUPS), vec![bad, d1, d2]);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.reasons[0], "critical metric regressed: a");
        assert_eq!(j.reasons[1], "critical metrics had no data: b, c");
    }

    #[test]
    fn required_data_missing_fails_instead_of_being_inconclusive() {
        use Classification::*;
        // Kayenta's NodataFailMetric: a failed metric in its group's score, and not one
        // of the metrics whose missing data makes the judgment inconclusive.
        let m = model("name: m\nmetrics:\n  - {name: a}\n  - {name: b}\n");
        let mut required = result("b", "b", Nodata);
        required.nodata_fails = true;
        let j = score(&m, vec![result("a", "a", Pass), required]);
        assert_eq!(j.groups[1].score, 0.0);
        assert_eq!(j.score, 50.0);
        assert_eq!(j.verdict, Verdict::Fail);
        assert_eq!(j.reasons[0], "score 50 < marginal threshold 75");
        assert_eq!(j.reasons[1], "b: Nodata");
    }

    #[test]
    fn only_metrics_without_consequence_count_towards_inconclusive() {
        use Classification::*;
        let m = model(
            "name: m\nmetrics:\n  - {name: a}\n  - {name: b}\n  - {name: c}\n  - {name: d}\n",
        );
        let mut required = result("d", "d", Nodata);
        required.nodata_fails = true;
        // One plain nodata of four: judged. Groups 100, 100, 100 (nothing countable), 0.
        let j = score(
            &m,
            vec![
                result("a", "a", Pass),
                result("b", "b", Pass),
                result("c", "c", Nodata),
                required,
            ],
        );
        assert_eq!(j.score, 75.0);
        assert_eq!(j.verdict, Verdict::Marginal);
        // Two plain nodata of four still are half.
        let j = score(
            &m,
            vec![
                result("a", "a", Pass),
                result("b", "b", Pass),
                result("c", "c", Nodata),
                result("d", "d", Nodata),
            ],
        );
        assert_eq!(j.verdict, Verdict::Inconclusive);
        assert_eq!(
            j.reasons[0],
            "2 of 4 metrics had no data; not enough to judge"
        );
    }

    #[test]
    fn unweighted_groups_share_the_rest_and_weights_are_relative() {
        use Classification::*;
        // `lat` has 50, the two unlisted groups share the other 50.
        let m = model(
            "name: m\ngroups:\n  lat: {weight: 50}\nmetrics:\n  - {name: a, group: lat}\n  - {name: b}\n  - {name: c}\n",
        );
        let j = score(
            &m,
            vec![
                result("a", "lat", Pass),
                result("b", "b", High),
                result("c", "c", Pass),
            ],
        );
        let weights: Vec<f64> = j.groups.iter().map(|g| g.weight).collect();
        assert_eq!(weights, vec![50.0, 25.0, 25.0]);
        assert_eq!(j.score, 75.0);
        assert_eq!(j.verdict, Verdict::Marginal);
        // Weights that add up to less than 100 are taken relative to each other.
        let m = model(
            "name: m\ngroups:\n  x: {weight: 1}\n  y: {weight: 3}\nmetrics:\n  - {name: a, group: x}\n  - {name: b, group: y}\n",
        );
        let j = score(&m, vec![result("a", "x", High), result("b", "y", Pass)]);
        assert_eq!(j.score, 75.0);
    }
}
