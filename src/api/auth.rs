//! Who may call the API: bearer tokens with full access (every route) or read access
//! (the routes that only read analyses).
//!
//! Without tokens auth is off: whoever reaches the port may create and cancel analyses.
//! `augury serve` turns it off only when no token is configured (warning at start, loudly
//! when it listens beyond loopback) or when told `auth: none`; a configured token list
//! that resolves to blank entries stops it at start instead.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState, routes};

/// The tokens the API accepts. Its `Debug` shows how many, never which.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Accepted on every route.
    pub full: Vec<String>,
    /// Accepted on read routes only.
    pub read: Vec<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("full", &self.full.len())
            .field("read", &self.read.len())
            .finish()
    }
}

impl From<Vec<String>> for Tokens {
    /// Full-access tokens.
    fn from(full: Vec<String>) -> Tokens {
        Tokens {
            full,
            read: Vec::new(),
        }
    }
}

/// What a request's token lets it do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    None,
    Read,
    Full,
}

impl Tokens {
    pub fn is_empty(&self) -> bool {
        self.full.is_empty() && self.read.is_empty()
    }

    /// The access `given` grants. Every token is compared in full, so timing tells
    /// nothing about which one, or which prefix, matched.
    pub fn access(&self, given: &str) -> Access {
        let matches = |tokens: &[String]| {
            tokens.iter().fold(false, |ok, t| {
                constant_time_eq(t.as_bytes(), given.as_bytes()) | ok
            })
        };
        let (full, read) = (matches(&self.full), matches(&self.read));
        if full {
            Access::Full
        } else if read {
            Access::Read
        } else {
            Access::None
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl AppState {
    /// The access `headers` grant: `Authorization: Bearer <token>` (full without auth).
    pub fn access(&self, headers: &HeaderMap) -> Access {
        let Some(tokens) = &self.auth else {
            return Access::Full;
        };
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map_or(Access::None, |given| tokens.access(given.trim()))
    }

    /// Whether `headers` carry a full-access token (always true without auth).
    pub fn authorized(&self, headers: &HeaderMap) -> bool {
        self.access(headers) == Access::Full
    }

    /// Whether `given` is a full-access token (always true without auth).
    pub fn token_matches(&self, given: &str) -> bool {
        self.auth
            .as_ref()
            .is_none_or(|tokens| tokens.access(given) == Access::Full)
    }

    /// Whether reading analyses needs a token: once read tokens are configured.
    fn reads_need_token(&self) -> bool {
        self.auth.as_ref().is_some_and(|t| !t.read.is_empty())
    }
}

/// Mutating routes need a full-access token when auth is on; the routes that read
/// analyses need a read or full one once read tokens are configured. Health, metrics
/// and the OpenAPI document stay open for probes and scrapers. The Flagger gate checks
/// its own token, because Flagger cannot send headers: it may carry the token in its
/// metadata.
pub(super) async fn require_token(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mutating = matches!(
        *request.method(),
        Method::POST | Method::DELETE | Method::PUT | Method::PATCH
    );
    let path = request.uri().path();
    let needed = if mutating {
        (path != routes::FLAGGER).then_some(Access::Full)
    } else {
        let reads_analyses = path.starts_with("/api/v1/") && path != routes::OPENAPI;
        (reads_analyses && state.reads_need_token()).then_some(Access::Read)
    };
    if let Some(needed) = needed
        && state.access(request.headers()) < needed
    {
        return unauthorized().into_response();
    }
    next.run(request).await
}

pub(crate) fn unauthorized() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this route needs `Authorization: Bearer <token>` with a token the daemon is configured with",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_beats_read_and_debug_hides_tokens() {
        let t = Tokens {
            full: vec!["full-token".into()],
            read: vec!["read-token".into()],
        };
        assert_eq!(t.access("full-token"), Access::Full);
        assert_eq!(t.access("read-token"), Access::Read);
        assert_eq!(t.access("read-toke"), Access::None);
        assert_eq!(t.access(""), Access::None);
        let shown = format!("{t:?}");
        assert!(!shown.contains("token"), "{shown}");
    }
}
