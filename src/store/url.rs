//! Database URLs as they may be shown: in logs, errors and `Debug` output.

/// `url` with its password, if it has one, replaced by `***`
/// (`postgres://augury:***@db:5432/augury`). A SQLite URL has none and comes back whole.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // The authority ends at the first '/', '?' or '#'; its user info at the last '@'.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redacted;

    #[test]
    fn only_the_password_is_hidden() {
        assert_eq!(
            redacted("postgres://augury:s3cr3t@db:5432/augury?sslmode=require"),
            "postgres://augury:***@db:5432/augury?sslmode=require"
        );
        // A password holding '@' or ':' is hidden whole.
        assert_eq!(
            redacted("postgresql://a:p@ss:w@db/x"),
            "postgresql://a:***@db/x"
        );
        for plain in [
            "postgres://augury@db/augury",
            "postgres://db/augury",
            "sqlite://augury.db",
            "sqlite::memory:",
        ] {
            assert_eq!(redacted(plain), plain);
        }
    }
}
