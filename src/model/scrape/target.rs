//! Where a scrape source's targets are: a URL template whose `{{ name }}` placeholders
//! are filled from an analysis's scope, one side at a time.
//!
//! `http://{{ pod }}:9090/metrics` with the canary's `pod: 10.0.0.7,10.0.0.8` gives two
//! canary targets; `{{ metrics_url }}` lets the request give whole URLs. A value is split
//! at commas (items trimmed, empty ones dropped); only one placeholder of a template may
//! hold several items, so a side's targets are always a plain list, never a product.
//!
//! Invariant: pure; a template that can never give an http(s) URL is refused when the
//! model loads, and a scope that gives a bad URL is refused with the URL and the reason.

use std::collections::BTreeMap;

/// Most targets one side of one metric may have.
pub const MAX_TARGETS: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var(String),
}

/// A parsed URL template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlTemplate {
    pieces: Vec<Piece>,
}

fn is_variable_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl UrlTemplate {
    pub fn parse(text: &str) -> Result<UrlTemplate, String> {
        let mut pieces = Vec::new();
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("must not be empty".into());
        }
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after
                .find("}}")
                .ok_or_else(|| format!("`{{{{` in `{text}` is not closed by `}}}}`"))?;
            let name = after[..close].trim();
            if !is_variable_name(name) {
                return Err(format!(
                    "`{{{{ {name} }}}}` is not a scope name (letters, digits, `_`, `.`, `-`; starting with a letter or `_`)"
                ));
            }
            pieces.push(Piece::Var(name.to_string()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        let template = UrlTemplate { pieces };
        if let Some(Piece::Text(first)) = template.pieces.first() {
            // With the scheme written out, the template is checked as a URL now, each
            // placeholder standing for a value that fits anywhere (host, port, path).
            let example = template.fill(|_| "1".to_string());
            if !(first.starts_with("http://") || first.starts_with("https://")) {
                return Err(format!(
                    "`{text}` must start with http:// or https:// (or with a placeholder that gives the whole URL)"
                ));
            }
            check_url(&example).map_err(|why| format!("`{text}` is not a URL: {why}"))?;
        }
        Ok(template)
    }

    /// The scope names the template uses, in order of appearance.
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Var(name) => Some(name.as_str()),
            Piece::Text(_) => None,
        })
    }

    fn fill(&self, mut value: impl FnMut(&str) -> String) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(name) => out.push_str(&value(name)),
            }
        }
        out
    }

    /// The target URLs for one side's scope: one per item of the (single) list-valued
    /// placeholder, duplicates dropped, in the order given.
    pub fn render(&self, scope: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
        let mut items: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for name in self.variables() {
            let value = scope.get(name).ok_or_else(|| {
                format!(
                    "the scope gives no `{name}` (it gives: {})",
                    scope.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?;
            let list: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if list.is_empty() {
                return Err(format!("`{name}` is empty"));
            }
            items.insert(name, list);
        }
        let lists: Vec<&str> = items
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(k, _)| *k)
            .collect();
        if lists.len() > 1 {
            return Err(format!(
                "`{}` and `{}` both list several items; only one placeholder of a URL may",
                lists[0], lists[1]
            ));
        }
        let count = lists.first().map_or(1, |name| items[name].len());
        if count > MAX_TARGETS {
            return Err(format!(
                "`{}` lists {count} targets, more than the {MAX_TARGETS} one side may have",
                lists[0]
            ));
        }
        let mut urls: Vec<String> = Vec::with_capacity(count);
        for k in 0..count {
            let url = self.fill(|name| {
                let list = &items[name];
                list[k.min(list.len() - 1)].to_string()
            });
            check_url(&url).map_err(|why| format!("`{url}` is not a target URL: {why}"))?;
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
        Ok(urls)
    }
}

/// Whether `url` is an absolute http(s) URL.
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    match parsed.scheme() {
        "http" | "https" => Ok(()),
        other => Err(format!("scheme `{other}` (http or https expected)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn placeholders_fill_and_lists_give_several_targets() {
        let t = UrlTemplate::parse("http://{{ pod }}:{{port}}/metrics").unwrap();
        assert_eq!(t.variables().collect::<Vec<_>>(), ["pod", "port"]);
        let urls = t
            .render(&scope(&[
                ("pod", "10.0.0.7, 10.0.0.8,,10.0.0.7"),
                ("port", "9090"),
            ]))
            .unwrap();
        assert_eq!(
            urls,
            [
                "http://10.0.0.7:9090/metrics",
                "http://10.0.0.8:9090/metrics"
            ]
        );
        let whole = UrlTemplate::parse("{{ metrics_url }}").unwrap();
        let urls = whole
            .render(&scope(&[("metrics_url", "http://a/metrics,https://b:1/m")]))
            .unwrap();
        assert_eq!(urls, ["http://a/metrics", "https://b:1/m"]);
    }

    #[test]
    fn bad_templates_are_refused_when_parsed() {
        for (text, words) in [
            ("", "must not be empty"),
            ("http://{{ pod:9090/metrics", "not closed"),
            ("http://{{ 1pod }}/metrics", "not a scope name"),
            ("ftp://{{ pod }}/metrics", "must start with http"),
            ("http://{{ pod }} x/metrics", "is not a URL"),
        ] {
            let e = UrlTemplate::parse(text).unwrap_err();
            assert!(e.contains(words), "{text}: `{e}` lacks `{words}`");
        }
    }

    #[test]
    fn bad_scopes_are_refused_when_rendered() {
        let t = UrlTemplate::parse("{{ a }}{{ b }}").unwrap();
        for (pairs, words) in [
            (vec![("a", "http://x")], "gives no `b`"),
            (vec![("a", "http://x,http://y"), ("b", "1,2")], "both list"),
            (vec![("a", "mailto:"), ("b", "x")], "scheme `mailto`"),
            (vec![("a", " , "), ("b", "x")], "`a` is empty"),
        ] {
            let e = t.render(&scope(&pairs)).unwrap_err();
            assert!(e.contains(words), "{pairs:?}: `{e}` lacks `{words}`");
        }
        let many = (0..=MAX_TARGETS)
            .map(|i| format!("h{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let t = UrlTemplate::parse("http://{{ h }}/metrics").unwrap();
        let e = t.render(&scope(&[("h", &many)])).unwrap_err();
        assert!(e.contains("more than the 64"), "{e}");
    }
}
