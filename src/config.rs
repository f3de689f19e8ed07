//! The daemon's configuration: flags, `AUGURY_*` environment variables and the config
//! file, merged in that order of precedence (a flag beats the environment, which beats
//! the file, which beats the default).
//!
//! The file may reference environment variables as `${NAME}` so secrets stay out of it;
//! a reference to an unset variable is an error that names it and its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

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
    /// Bearer tokens accepted on mutating API routes; none configured means no auth.
    #[serde(default)]
    pub api_tokens: Vec<String>,
    /// Analyses judged at once (default 64).
    pub runner_concurrency: Option<usize>,
    /// How long a replica's lease on an analysis holds without renewal (`15s`).
    pub lease_ttl: Option<String>,
    /// How long the judging replica waits for the others' partial windows (`5s`).
    pub flush_grace: Option<String>,
}

impl std::fmt::Debug for FileConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileConfig")
            .field("listen", &self.listen)
            .field("otlp_grpc_listen", &self.otlp_grpc_listen)
            .field("otlp_http_listen", &self.otlp_http_listen)
            .field(
                "database",
                &self.database.as_deref().map(crate::store::redacted),
            )
            .field("models", &self.models)
            .field("queries", &self.queries)
            .field(
                "prometheus",
                &self.prometheus.as_ref().map(|_| "<redacted>"),
            )
            .field("notifiers", &self.notifiers.keys().collect::<Vec<_>>())
            .field("default_notify", &self.default_notify)
            .field("public_url", &self.public_url)
            .field("grafana_url", &self.grafana_url)
            .field("notify_delivery", &self.notify_delivery)
            .field("log_format", &self.log_format)
            .field("api_tokens", &self.api_tokens.len())
            .field("runner_concurrency", &self.runner_concurrency)
            .field("lease_ttl", &self.lease_ttl)
            .field("flush_grace", &self.flush_grace)
            .finish()
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

    /// Parses config text, expanding `${NAME}` with `env`.
    pub fn parse(
        text: &str,
        file: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<FileConfig, ConfigError> {
        let expanded = expand(text, file, env)?;
        serde_saphyr::from_str(&expanded).map_err(|e| ConfigError {
            file: file.into(),
            line: e.location().map(|l| l.line() as usize),
            reason: e
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid YAML")
                .to_string(),
        })
    }
}

/// Replaces every `${NAME}`; `$${` stays a literal `${`.
fn expand(
    text: &str,
    file: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("${") {
            if at > 0 && rest.as_bytes()[at - 1] == b'$' {
                out.push_str(&rest[..at - 1]);
                out.push_str("${");
                rest = &rest[at + 2..];
                continue;
            }
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let end = after.find('}').ok_or_else(|| ConfigError {
                file: file.into(),
                line: Some(n + 1),
                reason: "`${` without a closing `}`".into(),
            })?;
            let name = &after[..end];
            let value = env(name).ok_or_else(|| ConfigError {
                file: file.into(),
                line: Some(n + 1),
                reason: format!("environment variable `{name}` is not set"),
            })?;
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    Ok(out)
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
