//! PromQL templates: `{{ name }}` placeholders filled from a scope, nothing else.
//!
//! Why not a template engine: PromQL is full of braces of its own (`metric{label="x"}`,
//! `{{`-looking label matchers in regexes), and an engine's loops, filters and defaults
//! are logic a query pack has no need for. Worse, an engine substitutes text blindly: a
//! scope value such as `x"} or vector(1) #` would rewrite the query (PromQL injection),
//! and scope values arrive in API requests. This renderer knows where each placeholder
//! stands in the PromQL text and escapes for that place:
//!
//! - inside a string literal (`"..."`, `'...'`, `` `...` ``) the value is escaped for that
//!   literal; when the literal is the right side of a regex matcher (`=~`, `!~`) the value
//!   is also regex-quoted, so `1.4.2` matches the text `1.4.2` and not `1x4y2`;
//! - outside a literal (a range like `[{{ interval }}]`, a number) only a PromQL duration
//!   or a plain number is accepted; anything else is refused, never pasted.
//!
//! A missing variable is an error naming the variable and the query, never an empty string.
//! Invariant: rendering is pure and total: it returns PromQL or a [`TemplateError`].

use std::collections::{BTreeMap, BTreeSet};

/// Where a placeholder stands in the PromQL text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Context {
    /// Outside any string literal.
    Bare,
    /// Inside a literal opened by this quote; `regex` when it is a regex matcher's value.
    Literal { quote: char, regex: bool },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Var { name: String, context: Context },
}

/// A parsed template. Parsed once when its pack loads, so a broken pack is refused
/// before any analysis uses it; rendered per scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

/// What can go wrong with a template or its rendering. `query` names the pack query.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("query `{query}`: `{{{{` at byte {at} is not closed by `}}}}`")]
    Unclosed { query: String, at: usize },
    #[error(
        "query `{query}`: `{{{{ {name} }}}}` is not a variable name (letters, digits, `_`, `.`, `-`; starting with a letter or `_`)"
    )]
    BadName { query: String, name: String },
    #[error("query `{query}`: the string literal opened at byte {at} is not closed")]
    UnclosedLiteral { query: String, at: usize },
    #[error("query `{query}`: no value for `{{{{ {name} }}}}` (the scope gives: {given})")]
    Missing {
        query: String,
        name: String,
        given: String,
    },
    #[error(
        "query `{query}`: `{{{{ {name} }}}}` stands outside a string literal, where only a duration (30s, 5m) or a number is allowed; got `{value}`"
    )]
    Unsafe {
        query: String,
        name: String,
        value: String,
    },
    #[error(
        "query `{query}`: `{{{{ {name} }}}}` stands in a raw `...` literal, which cannot hold a backquote; got `{value}`"
    )]
    Backquote {
        query: String,
        name: String,
        value: String,
    },
}

impl Template {
    /// Parses `source`; `query` names it in errors.
    pub fn parse(source: &str, query: &str) -> Result<Template, TemplateError> {
        let bytes = source.as_bytes();
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut context = Context::Bare;
        let mut literal_start = 0;
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"{{") {
                let close = source[i + 2..]
                    .find("}}")
                    .ok_or_else(|| TemplateError::Unclosed {
                        query: query.into(),
                        at: i,
                    })?;
                let name = source[i + 2..i + 2 + close].trim();
                if !is_name(name) {
                    return Err(TemplateError::BadName {
                        query: query.into(),
                        name: name.into(),
                    });
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Var {
                    name: name.into(),
                    context,
                });
                i += 2 + close + 2;
                continue;
            }
            // Placeholders are ASCII, so walking by char keeps UTF-8 intact.
            let c = source[i..].chars().next().unwrap_or('\0');
            match context {
                Context::Bare => {
                    if c == '"' || c == '\'' || c == '`' {
                        context = Context::Literal {
                            quote: c,
                            regex: follows_regex_operator(&text, &pieces),
                        };
                        literal_start = i;
                    } else if c == '#' {
                        // A comment runs to the end of the line and is copied as written:
                        // quotes in it open nothing, placeholders in it are not filled.
                        let end = source[i..].find('\n').map_or(source.len(), |n| i + n);
                        text.push_str(&source[i..end]);
                        i = end;
                        continue;
                    }
                }
                Context::Literal { quote, .. } => {
                    if c == '\\' && quote != '`' {
                        // An escape: copy it and the escaped char, which cannot close.
                        text.push(c);
                        i += 1;
                        if let Some(next) = source[i..].chars().next() {
                            text.push(next);
                            i += next.len_utf8();
                        }
                        continue;
                    }
                    if c == quote {
                        context = Context::Bare;
                    }
                }
            }
            text.push(c);
            i += c.len_utf8();
        }
        if context != Context::Bare {
            return Err(TemplateError::UnclosedLiteral {
                query: query.into(),
                at: literal_start,
            });
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Template {
            source: source.into(),
            pieces,
        })
    }

    /// The template text as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The variables the template uses.
    pub fn variables(&self) -> BTreeSet<&str> {
        self.pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Var { name, .. } => Some(name.as_str()),
                Piece::Text(_) => None,
            })
            .collect()
    }

    /// Fills every placeholder from `vars`; `query` names the query in errors.
    pub fn render(
        &self,
        vars: &BTreeMap<String, String>,
        query: &str,
    ) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(self.source.len() + 32);
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var { name, context } => {
                    let value = vars.get(name).ok_or_else(|| TemplateError::Missing {
                        query: query.into(),
                        name: name.clone(),
                        given: if vars.is_empty() {
                            "nothing".into()
                        } else {
                            vars.keys()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                    })?;
                    match *context {
                        Context::Bare => {
                            if !(is_duration(value) || is_number(value)) {
                                return Err(TemplateError::Unsafe {
                                    query: query.into(),
                                    name: name.clone(),
                                    value: value.clone(),
                                });
                            }
                            out.push_str(value);
                        }
                        Context::Literal { quote, regex } => {
                            let value = if regex {
                                quote_regex(value)
                            } else {
                                value.clone()
                            };
                            if quote == '`' {
                                if value.contains('`') {
                                    return Err(TemplateError::Backquote {
                                        query: query.into(),
                                        name: name.clone(),
                                        value,
                                    });
                                }
                                out.push_str(&value);
                            } else {
                                escape_literal(&value, quote, &mut out);
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Whether the text just before a literal ends in a regex matcher operator.
fn follows_regex_operator(text: &str, pieces: &[Piece]) -> bool {
    let before = if text.is_empty() {
        match pieces.last() {
            Some(Piece::Text(t)) => t.as_str(),
            _ => "",
        }
    } else {
        text
    };
    let trimmed = before.trim_end();
    trimmed.ends_with("=~") || trimmed.ends_with("!~")
}

/// A PromQL duration: one or more `<digits><unit>` with units ms, s, m, h, d, w, y.
pub fn is_duration(value: &str) -> bool {
    let mut rest = value;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

fn is_number(value: &str) -> bool {
    let (int, frac) = value.split_once('.').unwrap_or((value, "0"));
    !int.is_empty()
        && !frac.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

/// Escapes RE2 metacharacters so the value matches itself literally.
fn quote_regex(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escapes for a PromQL `"..."` or `'...'` literal (Go string-literal rules).
fn escape_literal(value: &str, quote: char, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
}

/// Formats a duration the way PromQL reads it: whole seconds as `Ns`, otherwise `Nms`.
pub fn promql_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn render(t: &str, pairs: &[(&str, &str)]) -> Result<String, TemplateError> {
        Template::parse(t, "q")?.render(&vars(pairs), "q")
    }

    #[test]
    fn fills_labels_and_ranges() {
        let out = render(
            r#"sum(increase(x{ns="{{ namespace }}", w='{{workload}}'}[{{ interval }}]))"#,
            &[
                ("namespace", "shop"),
                ("workload", "cart"),
                ("interval", "30s"),
            ],
        )
        .unwrap();
        assert_eq!(out, r#"sum(increase(x{ns="shop", w='cart'}[30s]))"#);
    }

    #[test]
    fn values_cannot_escape_their_literal() {
        let out = render(
            r#"x{v="{{ version }}"}"#,
            &[("version", r#"1"} or vector(1) # \"#)],
        )
        .unwrap();
        assert_eq!(out, r#"x{v="1\"} or vector(1) # \\"}"#);
        let out = render("x{v='{{ v }}'}", &[("v", "it's")]).unwrap();
        assert_eq!(out, r"x{v='it\'s'}");
        let e = render("x{v=`{{ v }}`}", &[("v", "a`b")]).unwrap_err();
        assert!(matches!(e, TemplateError::Backquote { .. }), "{e}");
    }

    #[test]
    fn regex_matchers_match_the_value_literally() {
        let out = render(r#"x{v=~"{{ v }}", w !~ "{{ v }}|b"}"#, &[("v", "1.4.2")]).unwrap();
        assert_eq!(out, r#"x{v=~"1\\.4\\.2", w !~ "1\\.4\\.2|b"}"#);
        let out = render("x{v=~`{{ v }}`}", &[("v", "a+b")]).unwrap();
        assert_eq!(out, r"x{v=~`a\+b`}");
    }

    #[test]
    fn bare_placeholders_take_durations_and_numbers_only() {
        assert_eq!(render("x[{{ i }}]", &[("i", "1m30s")]).unwrap(), "x[1m30s]");
        assert_eq!(render("x > {{ n }}", &[("n", "0.5")]).unwrap(), "x > 0.5");
        for bad in ["5m] or vector(1", "", "1.", "m", "30 s"] {
            let e = render("x[{{ i }}]", &[("i", bad)]).unwrap_err();
            assert!(matches!(e, TemplateError::Unsafe { .. }), "{bad}: {e}");
        }
    }

    #[test]
    fn missing_variable_names_itself_and_the_query() {
        let e = Template::parse(r#"x{a="{{ namespace }}"}"#, "istio/latency")
            .unwrap()
            .render(&vars(&[("workload", "w")]), "istio/latency")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "query `istio/latency`: no value for `{{ namespace }}` (the scope gives: `workload`)"
        );
    }

    #[test]
    fn malformed_templates_are_refused_at_parse() {
        assert!(matches!(
            Template::parse("x{a=\"{{ b \"}", "q"),
            Err(TemplateError::Unclosed { .. })
        ));
        assert!(matches!(
            Template::parse("x{a=\"{{ 9b }}\"}", "q"),
            Err(TemplateError::BadName { .. })
        ));
        assert!(matches!(
            Template::parse("x{a=\"b}", "q"),
            Err(TemplateError::UnclosedLiteral { .. })
        ));
    }

    #[test]
    fn quotes_in_comments_and_escapes_do_not_confuse_the_context() {
        let t = Template::parse("x{a=\"q\\\"{{ v }}\"} # don't\n+ y[{{ i }}]", "q").unwrap();
        assert_eq!(
            t.variables().into_iter().collect::<Vec<_>>(),
            vec!["i", "v"]
        );
        let out = t.render(&vars(&[("v", "a\"b"), ("i", "5m")]), "q").unwrap();
        assert_eq!(out, "x{a=\"q\\\"a\\\"b\"} # don't\n+ y[5m]");
    }

    #[test]
    fn dotted_names_match_otel_scopes() {
        let out = render(
            r#"x{service_name="{{ service.name }}"}"#,
            &[("service.name", "checkout")],
        )
        .unwrap();
        assert_eq!(out, r#"x{service_name="checkout"}"#);
    }

    #[test]
    fn durations_format_for_promql() {
        use std::time::Duration;
        assert_eq!(promql_duration(Duration::from_secs(30)), "30s");
        assert_eq!(promql_duration(Duration::from_millis(1500)), "1500ms");
    }
}
