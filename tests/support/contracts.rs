//! The documented payload contracts of the services notifications go to, as checks that
//! local stand-ins apply to what the daemon sends them.
#![allow(dead_code)]

use serde_json::Value;

/// A non-empty string.
pub fn is_str(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

/// What a PagerDuty Events API v2 event breaks of the documented contract (empty when
/// it is valid); PagerDuty answers such an event 400.
pub fn pagerduty_problems(v: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if v["routing_key"].as_str().map(str::len) != Some(32) {
        p.push("routing_key: not a 32-character string".into());
    }
    let action = v["event_action"].as_str().unwrap_or("");
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        p.push(format!("event_action: `{action}`"));
    }
    if action != "trigger" && !is_str(&v["dedup_key"]) {
        p.push("dedup_key: required for acknowledge and resolve".into());
    }
    if let Some(k) = v.get("dedup_key")
        && k.as_str().is_none_or(|k| k.len() > 255)
    {
        p.push("dedup_key: not a string of at most 255 chars".into());
    }
    if action == "trigger" {
        let payload = &v["payload"];
        if payload["summary"]
            .as_str()
            .is_none_or(|s| s.is_empty() || s.chars().count() > 1024)
        {
            p.push("payload.summary: missing or over 1024 chars".into());
        }
        if !["critical", "error", "warning", "info"]
            .contains(&payload["severity"].as_str().unwrap_or(""))
        {
            p.push(format!("payload.severity: {}", payload["severity"]));
        }
        if !is_str(&payload["source"]) {
            p.push("payload.source: missing".into());
        }
        for optional in ["component", "group", "class", "timestamp"] {
            if let Some(x) = payload.get(optional)
                && !x.is_string()
            {
                p.push(format!("payload.{optional}: not a string"));
            }
        }
        if let Some(d) = payload.get("custom_details")
            && !d.is_object()
        {
            p.push("payload.custom_details: not an object".into());
        }
        if let Some(links) = v.get("links")
            && links
                .as_array()
                .is_none_or(|l| l.iter().any(|l| !is_str(&l["href"])))
        {
            p.push("links: each needs an href".into());
        }
    }
    p
}
