//! The daemon's configuration: flags, `AUGURY_*` environment variables and the config
//! file, merged in that order of precedence (a flag beats the environment, which beats
//! the file, which beats the default).
//!
//! The file may reference environment variables as `${NAME}` inside string values so
//! secrets stay out of it; references are expanded after the YAML is parsed, as values,
//! so what a variable holds can never add or change keys. A reference to an unset
//! variable is an error that names it and its line. Every error names the file, the line
//! and the key, and never shows a value (it may be a secret).

mod tree;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::redact;
pub use tree::Lines;
use tree::Node;

/// Everything the config file may hold.
///
/// Its `Debug` leaves out what may hold secrets (notifier settings, Prometheus headers,
/// API tokens), since `${ENV}` references are expanded by then.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub otlp_grpc_listen: Option<String>,
    pub otlp_http_listen: Option<String>,
    /// Address of Kayenta's REST API (off when absent).
    pub kayenta_listen: Option<String>,
    pub database: Option<String>,
    pub models: Option<PathBuf>,
    pub queries: Option<PathBuf>,
    /// The Prometheus-compatible server query packs run against.
    pub prometheus: Option<serde_json::Value>,
    /// Named notifiers (`type: slack | pagerduty | webhook`).
    #[serde(default)]
    pub notifiers: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub default_notify: Vec<String>,
    /// Base URL of the API as people reach it, for links in notifications.
    pub public_url: Option<String>,
    /// Base URL of Grafana, for links to the per-analysis dashboard in notifications.
    pub grafana_url: Option<String>,
    /// Notification delivery: timeout, back-off, attempts (`notify::DeliverySettings`).
    pub notify_delivery: Option<serde_json::Value>,
    /// `human` (default) or `json`.
    pub log_format: Option<String>,
    /// `none` turns API auth off on purpose (logged as a warning at start). Without it,
    /// tokens must be configured to be used: a token list that resolves to blank entries
    /// is an error, never auth silently off.
    pub auth: Option<String>,
    /// Bearer tokens accepted on every API route, mutating ones included.
    pub api_tokens: Option<Vec<String>>,
    /// Bearer tokens accepted on the API's read routes only; once any is configured,
    /// reading analyses needs a token too.
    pub api_read_tokens: Option<Vec<String>>,
    /// Analyses judged at once (default 64).
    pub runner_concurrency: Option<usize>,
    /// How long a replica's lease on an analysis holds without renewal (`15s`).
    pub lease_ttl: Option<String>,
    /// How long the judging replica waits for the others' partial windows (`5s`).
    pub flush_grace: Option<String>,
    /// Bounds on the work clients can cause (`docs/security.md`).
    pub limits: Option<serde_json::Value>,
    /// The file's name as given, for errors.
    #[serde(skip)]
    pub file: String,
    /// The line of every value, for errors.
    #[serde(skip)]
    pub lines: Lines,
}

impl std::fmt::Debug for FileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileConfig")
            .field("listen", &self.listen)
            .field("otlp_grpc_listen", &self.otlp_grpc_listen)
            .field("otlp_http_listen", &self.otlp_http_listen)
            .field("kayenta_listen", &self.kayenta_listen)
            .field("database", &self.database.as_deref().map(redact::url))
            .field("models", &self.models)
            .field("queries", &self.queries)
            .field(
                "prometheus",
                &self.prometheus.as_ref().map(|_| "<redacted>"),
            )
            .field("notifiers", &self.notifiers.keys().collect::<Vec<_>>())
            .field("default_notify", &self.default_notify)
            .field("public_url", &self.public_url.as_deref().map(redact::url))
            .field("grafana_url", &self.grafana_url.as_deref().map(redact::url))
            .field("notify_delivery", &self.notify_delivery)
            .field("log_format", &self.log_format)
            .field("auth", &self.auth)
            .field("api_tokens", &self.api_tokens.as_ref().map(Vec::len))
            .field(
                "api_read_tokens",
                &self.api_read_tokens.as_ref().map(Vec::len),
            )
            .field("runner_concurrency", &self.runner_concurrency)
            .field("lease_ttl", &self.lease_ttl)
            .field("flush_grace", &self.flush_grace)
            .field("limits", &self.limits)
            .finish()
    }
}

/// The config file's `limits:` section: each bound on the work clients can cause, all
/// optional (the defaults are in `docs/security.md`). Durations are written `10s`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest API request body, bytes.
    pub api_body_bytes: Option<usize>,
    /// Longest an API request may take.
    pub api_request_timeout: Option<String>,
    /// Connections open at once on each listener (API, OTLP/gRPC, OTLP/HTTP).
    pub max_connections: Option<usize>,
    /// Longest an HTTP/1 request head may take to arrive, on every HTTP listener.
    pub header_read_timeout: Option<String>,
    /// Longest a connection may go with nothing read or written, on every listener.
    pub idle_timeout: Option<String>,
    /// Largest OTLP request body, bytes (before and after gzip).
    pub otlp_body_bytes: Option<usize>,
    /// OTLP requests decoded at once.
    pub otlp_concurrent_requests: Option<usize>,
    /// Bytes of OTLP request bodies being received at once.
    pub otlp_in_flight_bytes: Option<usize>,
    /// Longest an OTLP request may take to arrive and be handled.
    pub otlp_request_timeout: Option<String>,
    /// Judgments running at once (intervals and `POST /api/v1/judge`).
    pub judge_workers: Option<usize>,
    /// OTLP watches one analysis may hold (two per distinct span filter of its model).
    pub watches_per_analysis: Option<usize>,
    /// OTLP watches the daemon holds in all; a create past it is refused.
    pub watches: Option<usize>,
}

/// serde's message without the value, with a hint where YAML read a number or a
/// boolean where text was meant (`key: 1e30`, `key: yes`).
fn shown(message: &str) -> String {
    let message = redact::serde_message(message);
    if message.starts_with("invalid type: ") && message.ends_with("expected a string") {
        format!("{message} (quote the value)")
    } else {
        message
    }
}

/// A config file that could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("config {file}{}: {reason}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub reason: String,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            reason: format!("cannot read: {e}"),
        })?;
        FileConfig::parse(&text, &file, |name| std::env::var(name).ok())
    }

    /// Parses config text, then expands `${NAME}` inside its string values with `env`.
    pub fn parse(
        text: &str,
        file: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<FileConfig, ConfigError> {
        let error = |line: Option<usize>, reason: String| ConfigError {
            file: file.into(),
            line,
            reason,
        };
        let mut root: Node = if text.trim().is_empty() {
            Node {
                line: 1,
                value: tree::Value::Map(Vec::new()),
            }
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                // The first line only: the rest is a snippet of the file, which may hold
                // a secret.
                let message = e.to_string();
                let first = message.lines().next().unwrap_or("invalid YAML");
                error(
                    e.location().map(|l| l.line() as usize),
                    redact::serde_message(first),
                )
            })?
        };
        if !matches!(root.value, tree::Value::Map(_) | tree::Value::Null) {
            return Err(error(
                Some(root.line),
                "the config file is a mapping of settings (`listen: ...`)".into(),
            ));
        }
        root.expand(&env)
            .map_err(|e| error(Some(e.line), e.reason))?;
        let (mut json, lines) = root.into_json();
        if json.is_null() {
            json = serde_json::Value::Object(serde_json::Map::new());
        }
        let mut config: FileConfig = serde_path_to_error::deserialize(json).map_err(|e| {
            let path = e.path().to_string();
            let line = lines.of(&path);
            let reason = shown(&e.inner().to_string());
            match path.as_str() {
                "." | "" => error(line, reason),
                p => error(line, format!("{p}: {reason}")),
            }
        })?;
        config.file = file.to_string();
        config.lines = lines;
        Ok(config)
    }

    /// An error about the value at `path` (`notify_delivery.timeout`), on its line.
    pub fn error(&self, path: &str, reason: impl fmt::Display) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: self.lines.of(path),
            reason: format!("{path}: {reason}"),
        }
    }

    /// `value`, found at `path`, as the settings type `T`; an error names the field
    /// inside it and its line, never the value.
    pub fn typed<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        value: &serde_json::Value,
    ) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let inner = e.path().to_string();
            let at = match inner.as_str() {
                "." | "" => path.to_string(),
                i if i.starts_with('[') => format!("{path}{i}"),
                i => format!("{path}.{i}"),
            };
            self.error(&at, shown(&e.inner().to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCUMENTED_EXAMPLE: &str = r#"listen: 127.0.0.1:8080
database: sqlite://augury.db
prometheus: {url: "http://prometheus:9090", headers: {Authorization: "Bearer ${PROM_TOKEN}"}}
notifiers:
  oncall-slack: {type: slack, url: "${SLACK_WEBHOOK_URL}"}
  oncall-pd: {type: pagerduty, routing_key: "${PD_ROUTING_KEY}",
              events_url: "https://events.pagerduty.com/v2/enqueue"}
  audit: {type: webhook, url: "https://audit.example/hooks/augury", secret: "${AUDIT_SECRET}"}
default_notify: [oncall-slack]
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "PROM_TOKEN" => Some("t0k".into()),
            "SLACK_WEBHOOK_URL" => Some("http://127.0.0.1:9/slack".into()),
            "PD_ROUTING_KEY" => Some("k".repeat(32)),
            "AUDIT_SECRET" => Some("s3cret".into()),
            _ => None,
        }
    }

    #[test]
    fn the_design_example_loads_with_its_secrets_from_the_environment() {
        let c = FileConfig::parse(DOCUMENTED_EXAMPLE, "augury.yaml", env).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0k"),
            "{shown}"
        );
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(c.default_notify, vec!["oncall-slack"]);
        assert_eq!(
            c.prometheus.unwrap()["headers"]["Authorization"],
            "Bearer t0k"
        );
        assert_eq!(c.notifiers["audit"]["secret"], "s3cret");
    }

    #[test]
    fn an_unset_variable_is_named_with_its_line() {
        let e = FileConfig::parse(DOCUMENTED_EXAMPLE, "augury.yaml", |_| None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config augury.yaml:3: environment variable `PROM_TOKEN` is not set"
        );
    }

    #[test]
    fn unknown_keys_and_literal_dollars() {
        let e = FileConfig::parse("lsiten: x\n", "c.yaml", env).unwrap_err();
        assert!(e.reason.contains("unknown field `lsiten`"), "{e}");
        let c = FileConfig::parse("listen: \"$${HOME}\"\n", "c.yaml", env).unwrap();
        assert_eq!(c.listen.as_deref(), Some("${HOME}"));
    }
}
