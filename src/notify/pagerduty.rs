//! PagerDuty Events API v2: `trigger` when an analysis fails (the analysis id is the
//! `dedup_key`, so a repeat is one incident), `resolve` with the same key when it is
//! cancelled or superseded by a later passing analysis of the same canary.

use serde_json::{Value, json};

use super::config::Severity;
use super::message::{Message, scope_text, truncate};
use super::{Event, Secret};
use crate::clock::rfc3339;

/// PagerDuty's limit on `payload.summary`.
const SUMMARY_MAX: usize = 1024;

pub fn body(
    m: &Message,
    routing_key: &Secret,
    severity: Option<Severity>,
    source: Option<&str>,
) -> Value {
    let a = m.analysis;
    let dedup_key = a.id.as_str();
    if m.event() != Event::Failed {
        return json!({
            "routing_key": routing_key.expose(),
            "event_action": "resolve",
            "dedup_key": dedup_key,
        });
    }
    let severity = severity.unwrap_or(if m.critical_failure() {
        Severity::Critical
    } else {
        Severity::Error
    });
    let metrics: Vec<Value> = m
        .verdict
        .metrics
        .iter()
        .map(|v| {
            json!({"name": v.name, "classification": v.classification, "critical": v.critical,
                   "p_value": v.p_value, "effect": v.effect, "measure": v.measure})
        })
        .collect();
    let mut links = vec![json!({"href": m.analysis_url, "text": "Analysis in Augury"})];
    if let Some(g) = &m.grafana_url {
        links.push(json!({"href": g, "text": "Grafana dashboard"}));
    }
    let mut payload = json!({
        "summary": truncate(&m.headline(), SUMMARY_MAX),
        "severity": severity.as_str(),
        "source": source.unwrap_or("augury"),
        "component": m.component(),
        "group": a.key,
        "class": "canary",
        "custom_details": {
            "analysis": a.id,
            "key": a.key,
            "model": a.model.name,
            "score": m.verdict.score,
            "baseline": scope_text(&a.request.baseline),
            "canary": scope_text(&a.request.canary),
            "reasons": m.top_reasons(10),
            "metrics": metrics,
        },
    });
    if let Some(t) = a.decided_ms {
        payload["timestamp"] = rfc3339(t).into();
    }
    json!({
        "routing_key": routing_key.expose(),
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": payload,
        "links": links,
        "client": "Augury",
        "client_url": m.analysis_url,
    })
}
