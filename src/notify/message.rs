//! What every notifier says about an event, before each renders it its own way.

use crate::analysis::VerdictView;
use crate::analysis::{Analysis, Scope};
use crate::judge::Classification;

use super::{Event, Links, Notification};

/// An event of an analysis, with what a reader needs to act on it.
pub struct Message<'a> {
    pub notification: &'a Notification,
    pub analysis: &'a Analysis,
    pub verdict: VerdictView,
    pub analysis_url: String,
    pub grafana_url: Option<String>,
}

impl<'a> Message<'a> {
    pub fn new(
        notification: &'a Notification,
        analysis: &'a Analysis,
        links: &Links,
        now_ms: i64,
    ) -> Message<'a> {
        Message {
            notification,
            analysis,
            verdict: VerdictView::of(analysis, now_ms),
            analysis_url: links.analysis(&analysis.id),
            grafana_url: links.grafana(&analysis.id),
        }
    }

    pub fn event(&self) -> Event {
        self.notification.event
    }

    /// `checkout 1.4.1 → 1.4.2`: what both scopes share, then what differs.
    pub fn subject(&self) -> String {
        describe(
            &self.analysis.request.baseline,
            &self.analysis.request.canary,
        )
    }

    /// The workload the canary belongs to: `service.name` (or `workload`, `app`), else
    /// the values both scopes share.
    pub fn component(&self) -> String {
        let canary = &self.analysis.request.canary;
        for name in ["service.name", "workload", "app", "deployment", "service"] {
            if let Some(v) = canary.get(name) {
                return v.clone();
            }
        }
        let (common, _) = split(&self.analysis.request.baseline, canary);
        if common.is_empty() {
            self.analysis.key.clone()
        } else {
            common.join(" ")
        }
    }

    /// One line: `Canary failed: checkout 1.4.1 → 1.4.2 (score 12.5)`.
    pub fn headline(&self) -> String {
        let what = match self.event() {
            Event::Started => "Canary analysis started",
            Event::Failed => "Canary failed",
            Event::Passed => "Canary passed",
            Event::Inconclusive => "Canary inconclusive",
            Event::Cancelled => "Canary analysis cancelled",
            Event::Superseded => "Canary failure superseded",
        };
        match (self.event(), self.verdict.score) {
            (Event::Started, _) | (_, None) => format!("{what}: {}", self.subject()),
            (_, Some(score)) => format!("{what}: {} (score {score:.1})", self.subject()),
        }
    }

    /// Whether a critical metric regressed, or had no data (a canary that died).
    pub fn critical_failure(&self) -> bool {
        self.analysis.judgment.as_ref().is_some_and(|j| {
            j.metrics
                .iter()
                .any(|m| m.critical_failure || m.critical_nodata())
        })
    }

    /// The most important reasons, with their numbers: the verdict's reasons, then each
    /// metric that did not pass (critical ones first), at most `n`.
    pub fn top_reasons(&self, n: usize) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(cause) = &self.notification.cause {
            out.push(format!("superseded by passing analysis {cause}"));
        }
        out.extend(self.verdict.reasons.iter().take(2).cloned());
        let mut metrics: Vec<_> = self
            .verdict
            .metrics
            .iter()
            .filter(|m| m.classification != Classification::Pass)
            .collect();
        metrics.sort_by_key(|m| !m.critical);
        out.extend(metrics.iter().map(|m| m.reason.clone()));
        out.dedup();
        out.truncate(n);
        out
    }
}

/// Names and values both scopes share, and `name: a → b` for those that differ.
fn split(baseline: &Scope, canary: &Scope) -> (Vec<String>, Vec<String>) {
    let (mut common, mut changed) = (Vec::new(), Vec::new());
    for (name, b) in baseline {
        match canary.get(name) {
            Some(c) if c == b => common.push(b.clone()),
            Some(c) => changed.push(format!("{b} → {c}")),
            None => changed.push(format!("{name}={b} → (none)")),
        }
    }
    for (name, c) in canary {
        if !baseline.contains_key(name) {
            changed.push(format!("(none) → {name}={c}"));
        }
    }
    (common, changed)
}

fn describe(baseline: &Scope, canary: &Scope) -> String {
    let (common, changed) = split(baseline, canary);
    let mut parts = common;
    parts.extend(changed);
    parts.join(" ")
}

/// `name=value, ...` for a scope.
pub fn scope_text(scope: &Scope) -> String {
    scope
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Cuts `text` to at most `max` characters (on a char boundary), marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_describe_what_changed() {
        let b: Scope = [("service.name", "checkout"), ("service.version", "1.4.1")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut c = b.clone();
        c.insert("service.version".into(), "1.4.2".into());
        assert_eq!(describe(&b, &c), "checkout 1.4.1 → 1.4.2");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
