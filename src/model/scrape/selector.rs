//! Series selectors as a model writes them: PromQL's instant-vector selector syntax,
//! `name` or `name{label="value", code=~"5..", route!="/health"}`, read into a
//! [`Selector`].
//!
//! Values are double-quoted with PromQL's escapes (`\"`, `\\`, `\n`); `=~`/`!~` take the
//! pattern subset of [`pattern`] and anything outside it is refused here, when the model
//! loads, never matched differently at scrape time.
//!
//! Invariant: pure; every refusal says what is wrong and where.

use super::{MatchOp, Matcher, Selector, SelectorKind, pattern};

/// Reads `text` as a selector of `kind` (a histogram's name is its family name; a
/// trailing `_bucket` is accepted and dropped).
pub fn parse(text: &str, kind: SelectorKind) -> Result<Selector, String> {
    let text = text.trim();
    let (name, rest) = match text.find('{') {
        Some(i) => (text[..i].trim_end(), Some(&text[i..])),
        None => (text, None),
    };
    if name.is_empty() {
        return Err(format!(
            "`{text}` names no metric (write `name` or `name{{label=\"value\"}}`)"
        ));
    }
    if !is_metric_name(name) {
        return Err(format!(
            "`{name}` is not a metric name (letters, digits, `_` and `:`, not starting with a digit)"
        ));
    }
    let mut selector = match kind {
        SelectorKind::Counter => Selector::counter(name),
        SelectorKind::Histogram => Selector::histogram(name),
    };
    if let Some(rest) = rest {
        selector.matchers = matchers(rest)?;
    }
    Ok(selector)
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Reads `{a="x", b!~"y"}` (the braces included) into matchers.
fn matchers(text: &str) -> Result<Vec<Matcher>, String> {
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| format!("`{text}`: label matchers go between `{{` and a final `}}`"))?;
    let mut out = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let name_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..name_end];
        if !is_label_name(name) {
            return Err(format!("`{text}`: a label name is expected at `{rest}`"));
        }
        rest = rest[name_end..].trim_start();
        let (op, len) = if rest.starts_with("!=") {
            (MatchOp::NotEqual, 2)
        } else if rest.starts_with("=~") {
            (MatchOp::Matches, 2)
        } else if rest.starts_with("!~") {
            (MatchOp::NotMatches, 2)
        } else if rest.starts_with('=') {
            (MatchOp::Equal, 1)
        } else {
            return Err(format!(
                "`{text}`: `{name}` needs one of =, !=, =~, !~ and a quoted value"
            ));
        };
        rest = rest[len..].trim_start();
        let (value, after) = quoted(rest).ok_or_else(|| {
            format!("`{text}`: the value of `{name}` must be a double-quoted string")
        })?;
        if matches!(op, MatchOp::Matches | MatchOp::NotMatches) {
            pattern::check(&value)
                .map_err(|why| format!("`{text}`: pattern of `{name}`: {why}"))?;
        }
        out.push(Matcher {
            name: name.to_string(),
            op,
            value,
        });
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return Err(format!("`{text}`: `,` or `}}` expected at `{rest}`")),
        }
    }
    Ok(out)
}

/// A double-quoted string at the start of `s`, unescaped, and what follows it.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                '"' => value.push('"'),
                '\\' => value.push('\\'),
                // Regex escapes (`\.`) pass through for the pattern to read.
                other => {
                    value.push('\\');
                    value.push(other);
                }
            },
            c => value.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promql_selectors_are_read() {
        let s = parse(
            r#"http_requests_total{code=~"5..", route != "/health",a="x\"y"}"#,
            SelectorKind::Counter,
        )
        .unwrap();
        assert_eq!(s.metric, "http_requests_total");
        let ops: Vec<(&str, MatchOp, &str)> = s
            .matchers
            .iter()
            .map(|m| (m.name.as_str(), m.op, m.value.as_str()))
            .collect();
        assert_eq!(
            ops,
            [
                ("code", MatchOp::Matches, "5.."),
                ("route", MatchOp::NotEqual, "/health"),
                ("a", MatchOp::Equal, "x\"y"),
            ]
        );
        let h = parse("latency_seconds_bucket{}", SelectorKind::Histogram).unwrap();
        assert_eq!(
            (h.metric.as_str(), h.matchers.len()),
            ("latency_seconds", 0)
        );
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let cases = [
            ("", "names no metric"),
            ("1abc", "not a metric name"),
            ("c{code=500}", "double-quoted"),
            (r#"c{code=~"5.*"}"#, "`*` is not supported"),
            (r#"c{code=~"(500)"}"#, "`(` is not supported"),
            (r#"c{code~"5"}"#, "needs one of"),
            (r#"c{code="5" x="1"}"#, "`,` or `}` expected"),
            (r#"c{code="5""#, "between `{` and a final `}`"),
            (r#"c{code="5}"#, "double-quoted"),
        ];
        for (text, words) in cases {
            let e = parse(text, SelectorKind::Counter).unwrap_err();
            assert!(e.contains(words), "{text}: `{e}` lacks `{words}`");
        }
    }
}
