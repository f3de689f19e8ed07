//! Secrets kept out of what the daemon shows: URLs in logs, errors and `Debug` output,
//! and values quoted in serde's error messages.

/// `url` with what may be a secret in it hidden: everything before the last `@` is user
/// info (a password, or a token given as the user name) and is shown as `user:***@` when
/// it has a password, else as `***@`; the value of every query parameter becomes `***`
/// (`postgres://augury:***@db:5432/augury?sslmode=***`). This errs on hiding: text that
/// is not a URL at all (`promuser:s3cret@prom:9090`, a password holding `/`, `?` or `#`)
/// is treated the same way, so what a careless setting holds is not shown either.
pub fn url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let (userinfo, after) = match rest.rfind('@') {
        Some(at) => {
            let info = &rest[..at];
            let shown = match info.split_once(':') {
                Some((user, _)) if !user.contains(['/', '?', '#']) => format!("{user}:***@"),
                _ => "***@".to_string(),
            };
            (shown, &rest[at + 1..])
        }
        None => (String::new(), rest),
    };
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (host, tail) = after.split_at(end);
    format!("{scheme}{userinfo}{host}{}", query_values_hidden(tail))
}

/// The path, then the query with each value as `***`; a fragment is dropped.
fn query_values_hidden(tail: &str) -> String {
    let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_string();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((name, _)) => format!("{name}=***"),
            None => p.to_string(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

/// A serde error message without the value it refused. serde's messages quote the value
/// (``invalid type: string "s3cret", expected u32``; ``invalid value: integer `7` ``); the
/// value may be a secret, so each quoted part is dropped and its kind kept
/// (`invalid type: string, expected u32`). Field and variant names, which serde quotes
/// the same way in ``unknown field `x`, expected one of ...``, come from the schema, not
/// from secrets, and are kept.
pub fn serde_message(message: &str) -> String {
    for lead in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(lead) {
            // `<unexpected>, expected <what>`: keep the unexpected's kind only.
            let (unexpected, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, ""));
            let kind = unexpected
                .split(['`', '"'])
                .next()
                .unwrap_or_default()
                .trim();
            let kind = if kind.is_empty() { "value" } else { kind };
            return match expected {
                "" => format!("{lead}{kind} (value not shown)"),
                e => format!("{lead}{kind} (value not shown), expected {e}"),
            };
        }
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_query_values_are_hidden() {
        assert_eq!(
            url("postgres://augury:s3cr3t@db:5432/augury?sslmode=require"),
            "postgres://augury:***@db:5432/augury?sslmode=***"
        );
        // A password holding '@' or ':' is hidden whole.
        assert_eq!(url("postgresql://a:p@ss:w@db/x"), "postgresql://a:***@db/x");
        assert_eq!(
            url("https://hooks.example/in?token=abc&flag#frag"),
            "https://hooks.example/in?token=***&flag"
        );
        // A token as the user name, a password with '/', no scheme at all.
        assert_eq!(url("https://ghp_T0KEN@host/x"), "https://***@host/x");
        assert_eq!(url("http://u:pa/ss@h/"), "http://u:***@h/");
        assert_eq!(url("promuser:s3cret@prom:9090"), "promuser:***@prom:9090");
        assert_eq!(url("postgres//u:s3cret@db"), "***@db");
        assert_eq!(url("http://u:p?w#d@h"), "http://u:***@h");
        for plain in [
            "postgres://db/augury",
            "sqlite://augury.db",
            "sqlite::memory:",
            "not a url",
        ] {
            assert_eq!(url(plain), plain);
        }
    }

    #[test]
    fn serde_messages_lose_the_value_and_keep_the_kind() {
        let cases = [
            (
                r#"invalid type: string "s3cret", expected u32"#,
                "invalid type: string (value not shown), expected u32",
            ),
            (
                "invalid type: floating point `1e30`, expected a string",
                "invalid type: floating point (value not shown), expected a string",
            ),
            (
                "invalid value: integer `70000`, expected u16",
                "invalid value: integer (value not shown), expected u16",
            ),
            (
                "unknown field `uri`, expected one of `url`, `headers`",
                "unknown field `uri`, expected one of `url`, `headers`",
            ),
            ("missing field `url`", "missing field `url`"),
        ];
        for (given, shown) in cases {
            assert_eq!(serde_message(given), shown);
        }
    }
}
