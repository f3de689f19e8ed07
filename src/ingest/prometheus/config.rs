//! The `prometheus:` section of the config file: where the Prometheus-compatible server
//! is and how to talk to it. `${NAME}` references are expanded by the config loader
//! (inside string values) before this is deserialized, so secrets arrive here as plain
//! values.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How to reach a Prometheus-compatible HTTP API (Prometheus, Thanos, Mimir, ...).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Base URL; the API lives under `<url>/api/v1/`. A path prefix is kept
    /// (`https://mimir.example/prometheus`).
    pub url: String,
    /// Extra headers on every request (`X-Scope-OrgID` for a multi-tenant backend, ...).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer_token: Option<String>,
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Per attempt, for the whole HTTP exchange; also passed to Prometheus as the query's
    /// evaluation timeout so the server stops working when the client has stopped waiting.
    #[serde(default = "default_timeout", with = "duration_text")]
    pub timeout: Duration,
    /// Further attempts after a failed one (connection errors, timeouts, 429, 5xx).
    /// Bad queries (400, 422) are never retried.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Wait before the first retry; doubles each retry, at most [`MAX_BACKOFF`].
    /// A `Retry-After` header from the server takes precedence (capped the same way).
    #[serde(default = "default_backoff", with = "duration_text")]
    pub backoff: Duration,
}

/// Longest wait between two attempts, whatever the back-off doubling or the server asks.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> Duration {
    Duration::from_millis(250)
}

impl PrometheusConfig {
    /// A config with defaults for everything but the URL.
    pub fn new(url: impl Into<String>) -> PrometheusConfig {
        PrometheusConfig {
            url: url.into(),
            headers: BTreeMap::new(),
            bearer_token: None,
            basic_auth: None,
            timeout: default_timeout(),
            retries: default_retries(),
            backoff: default_backoff(),
        }
    }
}

// Secrets stay out of logs and error messages.
impl fmt::Debug for PrometheusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusConfig")
            .field("url", &crate::redact::url(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "***"))
            .field("basic_auth", &self.basic_auth)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicAuth")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Durations written as in the rest of the config: `30s`, `500ms`, `1m`.
mod duration_text {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{text}` is not a duration like 500ms, 30s or 1m ({e})"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_design_example_with_defaults() {
        let c: PrometheusConfig = serde_saphyr::from_str(
            "{url: \"http://prometheus:9090\", headers: {Authorization: \"Bearer t\"}}",
        )
        .unwrap();
        assert_eq!(c.url, "http://prometheus:9090");
        assert_eq!(c.headers["Authorization"], "Bearer t");
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.retries, 3);
        let c: PrometheusConfig = serde_saphyr::from_str(
            "url: http://p\ntimeout: 2s\nretries: 0\nbackoff: 50ms\nbasic_auth: {username: u, password: secret}\n",
        )
        .unwrap();
        assert_eq!(c.timeout, Duration::from_secs(2));
        assert_eq!(c.backoff, Duration::from_millis(50));
        assert_eq!(c.retries, 0);
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn bad_durations_and_unknown_fields_are_refused() {
        let e = serde_saphyr::from_str::<PrometheusConfig>("url: http://p\ntimeout: soon\n")
            .unwrap_err();
        assert!(e.to_string().contains("`soon` is not a duration"), "{e}");
        assert!(serde_saphyr::from_str::<PrometheusConfig>("url: u\nretry: 3\n").is_err());
    }
}
