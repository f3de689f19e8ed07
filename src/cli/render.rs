//! Text for people reading a CI log: a short table per metric, then one verdict line.

use std::fmt::Write;

use crate::judge::{Classification, Judgment, MetricResult, Summary, Verdict};
use crate::stats::sequential::{Decision, LooksReport};

pub(super) fn judgment(j: &Judgment) -> String {
    let mut out = String::new();
    for m in &j.metrics {
        metric(&mut out, m);
        out.push('\n');
    }
    let verdict = match j.verdict {
        Verdict::Pass => "PASS",
        Verdict::Marginal => "MARGINAL",
        Verdict::Fail => "FAIL",
        Verdict::Inconclusive => "INCONCLUSIVE",
    };
    let _ = writeln!(
        out,
        "verdict: {verdict}  score {}/100 (pass >= {}, marginal >= {}; model `{}`)",
        num(j.score),
        j.thresholds.pass,
        j.thresholds.marginal,
        j.model
    );
    for r in &j.reasons {
        let _ = writeln!(out, "  - {r}");
    }
    out
}

fn metric(out: &mut String, m: &MetricResult) {
    let class = match m.classification {
        Classification::Pass => "pass",
        Classification::High => "HIGH",
        Classification::Low => "LOW",
        Classification::Nodata => "nodata",
        Classification::Error => "ERROR",
    };
    let critical = if m.critical { " (critical)" } else { "" };
    let unit = |v: Option<f64>| v.map(num).unwrap_or_else(|| "-".into());
    let _ = writeln!(out, "{}  {class}{critical}", m.name);
    let (b, c) = (m.baseline.as_ref(), m.canary.as_ref());
    let row = |out: &mut String, label: &str, f: &dyn Fn(&Summary) -> Option<String>| {
        let b = b.and_then(f);
        let c = c.and_then(f);
        if b.is_some() || c.is_some() {
            let _ = writeln!(
                out,
                "  {label:<12} {:>14} {:>14}",
                b.unwrap_or_else(|| "-".into()),
                c.unwrap_or_else(|| "-".into())
            );
        }
    };
    if b.is_some() || c.is_some() {
        let _ = writeln!(out, "  {:<12} {:>14} {:>14}", "", "baseline", "canary");
        row(out, "count", &|s| Some(s.count.to_string()));
        row(out, "errors", &|s| s.errors.map(|e| e.to_string()));
        row(out, "error ratio", &|s| {
            s.error_ratio.map(|r| format!("{:.4}%", 100.0 * r))
        });
        row(out, "median", &|s| s.median.map(num));
        row(out, "p90", &|s| s.p90.map(num));
        row(out, "p99", &|s| s.p99.map(num));
        row(out, "mean", &|s| s.mean.map(num));
        row(out, "NaN", &|s| (s.nan > 0).then(|| s.nan.to_string()));
    }
    if let Some(mw) = &m.mann_whitney {
        let _ = writeln!(
            out,
            "  Mann-Whitney U = {}, p = {} ({:?}, {:?})",
            num(mw.u),
            p(mw.p_value),
            mw.method,
            mw.alternative
        );
    }
    if let Some(s) = &m.shift {
        let _ = writeln!(
            out,
            "  shift {}{}, {}% CI [{}, {}]",
            signed(s.estimate),
            if m.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", m.unit)
            },
            num(100.0 * s.conf_level),
            signed(s.lower),
            signed(s.upper)
        );
    }
    if let Some(t) = &m.proportions {
        let _ = writeln!(
            out,
            "  error ratio canary/baseline = {}, p = {} ({:?}, {:?})",
            unit(t.ratio),
            p(t.p_value),
            t.method,
            t.alternative
        );
    }
    if let Some(burn) = &m.burn {
        let _ = writeln!(
            out,
            "  SLO {} burn rate: canary {}x, baseline {}x (limit {}x)",
            burn.slo_target,
            num(burn.canary),
            num(burn.baseline),
            burn.max_burn_rate
        );
    }
    if let Some(e) = &m.effect {
        let _ = writeln!(
            out,
            "  effect: median ratio {}, mean ratio {}, CLES {}",
            unit(e.median_ratio),
            unit(e.mean_ratio),
            num(e.cles)
        );
    }
    if let Some(s) = &m.sequential {
        sequential(out, s);
    }
    let _ = writeln!(out, "  -> {}", m.reason);
}

/// The sequential test's lines: p-value and decision, then the confidence sequence.
fn sequential(out: &mut String, s: &crate::judge::SequentialResult) {
    let decision = match s.decision {
        Decision::Continue => "continue",
        Decision::Reject => "REJECT",
        Decision::AcceptEquivalent => "equivalent",
    };
    let _ = writeln!(
        out,
        "  sequential: anytime-valid p = {} after {} look{}, decision {decision}",
        p(s.p_value),
        s.looks,
        if s.looks == 1 { "" } else { "s" }
    );
    let end = |v: Option<f64>, open: &str| v.map(num).unwrap_or_else(|| open.into());
    if let Some(e) = &s.errors {
        let _ = writeln!(
            out,
            "  error-rate ratio canary/baseline, confidence sequence [{}, {}]",
            num(e.ratio_lower),
            end(e.ratio_upper, "inf")
        );
    }
    if let Some(l) = &s.latency {
        for b in &l.bands {
            let _ = writeln!(
                out,
                "  p{} canary - baseline in [{}, {}], ratio in [{}, {}]",
                num(100.0 * b.quantile),
                end(b.difference.lower, "-inf"),
                end(b.difference.upper, "inf"),
                end(b.ratio.lower, "0"),
                end(b.ratio.upper, "inf")
            );
        }
    }
}

fn num(v: f64) -> String {
    crate::judge::fmt_num(v)
}

fn signed(v: f64) -> String {
    if v > 0.0 {
        format!("+{}", num(v))
    } else {
        num(v)
    }
}

fn p(v: f64) -> String {
    crate::judge::fmt_p(v)
}

/// One line per look: the anytime-valid p-value and the decision so far.
pub(super) fn looks(r: &LooksReport) -> String {
    let mut out = format!(
        "sequential {:?} test, alpha {}, alternative {:?}\n{:>5}  {:>10}  decision\n",
        r.metric, r.alpha, r.alternative, "look", "p-value"
    );
    for l in &r.looks {
        let decision = match l.decision {
            Decision::Continue => "continue",
            Decision::Reject => "REJECT",
            Decision::AcceptEquivalent => "equivalent",
        };
        let _ = writeln!(out, "{:>5}  {:>10}  {decision}", l.look, p(l.p_value));
    }
    let _ = match r.first_rejection {
        Some(k) => writeln!(out, "first rejection at look {k}: the canary differs"),
        None => writeln!(out, "no rejection: no evidence the canary differs"),
    };
    out
}
