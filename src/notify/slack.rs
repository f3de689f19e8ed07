//! Slack incoming webhooks: `text` (the notification line and fallback) plus Block Kit
//! `blocks` with the verdict, the scopes, the score, the top reasons and links.

use serde_json::{Value, json};

use super::Event;
use super::message::{Message, scope_text, truncate};

/// Slack's limits: header text 150 characters, a section's text 3000, a field's 2000.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;

pub fn body(m: &Message) -> Value {
    let icon = match m.event() {
        Event::Failed => ":red_circle:",
        Event::Passed => ":large_green_circle:",
        Event::Inconclusive => ":large_yellow_circle:",
        Event::Cancelled | Event::Superseded => ":white_circle:",
        Event::Started => ":hourglass_flowing_sand:",
    };
    let headline = m.headline();
    let a = m.analysis;
    let verdict = match m.event() {
        Event::Started => "running".to_string(),
        _ => a.status.as_str().to_string(),
    };
    let score = m
        .verdict
        .score
        .map_or("no data yet".to_string(), |s| format!("{s:.1} / 100"));
    let field = |title: &str, value: String| json!({"type": "mrkdwn", "text": truncate(&format!("*{title}*\n{value}"), FIELD_MAX)});
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate(&headline, HEADER_MAX), "emoji": true}}),
        json!({"type": "section", "fields": [
            field("Verdict", verdict),
            field("Score", score),
            field("Service", m.component()),
            field("Key", a.key.clone()),
            field("Baseline", format!("`{}`", scope_text(&a.request.baseline))),
            field("Canary", format!("`{}`", scope_text(&a.request.canary))),
        ]}),
    ];
    let reasons = m.top_reasons(5);
    if !reasons.is_empty() {
        let list = reasons
            .iter()
            .map(|r| format!("• {r}"))
            .collect::<Vec<_>>()
            .join("\n");
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": truncate(&format!("*Why*\n{list}"), SECTION_MAX)}}));
    }
    let mut links = vec![format!("<{}|Analysis in Augury>", m.analysis_url)];
    if let Some(g) = &m.grafana_url {
        links.push(format!("<{g}|Grafana dashboard>"));
    }
    blocks.push(json!({"type": "context", "elements": [
        {"type": "mrkdwn", "text": format!("{} · model `{}` · analysis `{}`", links.join(" · "), a.model.name, a.id)}
    ]}));
    json!({
        "text": format!("{icon} {headline}"),
        "blocks": blocks,
    })
}
