//! From metric classifications to group scores, the overall score and the verdict.
//!
//! Kayenta's scoring, with two deliberate differences, both documented in
//! `models/README.md`: weights are relative (normalised over the groups present), and
//! half or more metrics without data make the verdict `inconclusive` rather than a
//! score of 0, since missing data is not evidence of a regression.

use crate::model::Model;

use super::{Classification, GroupScore, Judgment, MetricResult, Verdict, classify::fmt_num};

pub(super) fn score(model: &Model, metrics: Vec<MetricResult>) -> Judgment {
    // Groups in the order the model lists them, then any that only metrics name.
    let mut names: Vec<String> = model.groups.keys().cloned().collect();
    for m in &metrics {
        if !names.contains(&m.group) {
            names.push(m.group.clone());
        }
    }
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
    let raw: Vec<f64> = names
        .iter()
        .map(|g| model.groups.get(g).and_then(|g| g.weight).unwrap_or(share))
        .collect();
    let total: f64 = raw.iter().sum();
    let groups: Vec<GroupScore> = names
        .iter()
        .zip(&raw)
        .map(|(name, w)| {
            let count = |c: Classification| {
                metrics
                    .iter()
                    .filter(|m| &m.group == name && m.classification == c)
                    .count()
            };
            let nodata_fail = metrics
                .iter()
                .filter(|m| &m.group == name && m.nodata_fails)
                .count();
            let (pass, high, low) = (
                count(Classification::Pass),
                count(Classification::High),
                count(Classification::Low),
            );
            let denominator = pass + high + low + nodata_fail;
            GroupScore {
                name: name.clone(),
                // Kayenta scores a group with nothing countable as 100.
                score: if denominator == 0 {
                    100.0
                } else {
                    100.0 * pass as f64 / denominator as f64
                },
                weight: if total > 0.0 {
                    100.0 * w / total
                } else {
                    100.0 / names.len() as f64
                },
                pass,
                high,
                low,
                nodata: count(Classification::Nodata),
                error: count(Classification::Error),
            }
        })
        .collect();
    let mut score: f64 = groups.iter().map(|g| g.score * g.weight / 100.0).sum();
    // Rounding noise from the weights must not turn 100 into 99.999...
    score = (score * 1e9).round() / 1e9;

    let t = model.thresholds;
    let critical: Vec<&MetricResult> = metrics.iter().filter(|m| m.critical_failure).collect();
    let nodata = metrics
        .iter()
        .filter(|m| m.classification == Classification::Nodata)
        .count();
    let mut reasons = Vec::new();
    let verdict = if !critical.is_empty() {
        score = 0.0;
        reasons.push(format!(
            "critical metric{} regressed: {}",
            if critical.len() > 1 { "s" } else { "" },
            critical
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        Verdict::Fail
    } else if !metrics.is_empty() && 2 * nodata >= metrics.len() {
        reasons.push(format!(
            "{nodata} of {} metrics had no data; not enough to judge",
            metrics.len()
        ));
        Verdict::Inconclusive
    } else if score >= t.pass {
        reasons.push(format!(
            "score {} >= pass threshold {}",
            fmt_num(score),
            t.pass
        ));
        Verdict::Pass
    } else if score >= t.marginal {
        reasons.push(format!(
            "score {} is below pass {} but at least marginal {}",
            fmt_num(score),
            t.pass,
            t.marginal
        ));
        Verdict::Marginal
    } else {
        reasons.push(format!(
            "score {} < marginal threshold {}",
            fmt_num(score),
            t.marginal
        ));
        Verdict::Fail
    };
    // Then every metric that did not simply pass: regressions first, then missing data.
    for class in [
        Classification::High,
        Classification::Low,
        Classification::Error,
        Classification::Nodata,
    ] {
        reasons.extend(
            metrics
                .iter()
                .filter(|m| m.classification == class)
                .map(|m| m.reason.clone()),
        );
    }
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
