//! Slack incoming webhooks: `text` (the notification line and fallback) plus Block Kit
//! `blocks` with the verdict, the scopes, the score, the top reasons and links.

use serde_json::{Value, json};

use super::Event;
use super::message::{Message, scope_text, truncate};

/// Slack's limits: header text 150 characters, a section's text 3000, a field's 2000.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;

/// Text as Slack's `mrkdwn` must carry it: `&`, `<` and `>` are control characters
/// there (`<url|label>` is a link), so a reason like `score 70 < marginal threshold 75`
/// would be cut or turned into a link. Slack asks for exactly these three as entities.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

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
    // Every text that Slack reads as mrkdwn is escaped; the header is plain text.
    let field = |title: &str, value: String| json!({"type": "mrkdwn", "text": truncate(&format!("*{title}*\n{}", escape(&value)), FIELD_MAX)});
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
            .map(|r| format!("• {}", escape(r)))
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
        {"type": "mrkdwn", "text": format!("{} · model `{}` · analysis `{}`", links.join(" · "), escape(&a.model.name), escape(&a.id))}
    ]}));
    json!({
        "text": format!("{icon} {}", escape(&headline)),
        "blocks": blocks,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_three_control_characters_become_entities() {
        assert_eq!(
            super::escape("score 70 < marginal 75 & p > 0.05"),
            "score 70 &lt; marginal 75 &amp; p &gt; 0.05"
        );
        assert_eq!(super::escape("plain"), "plain");
    }
}
