//! Notifier settings from the config file (`notifiers:`, `default_notify:`), and the
//! choice of recipients for a new analysis.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::{Event, Recipient, webhook};
use crate::analysis::RequestError;

/// A secret from the config file. Its `Debug` shows nothing of it, and it has no
/// `Serialize`, so it cannot reach a log line or an API answer by accident.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

/// PagerDuty's severities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// Which signature headers a webhook carries (config `signature:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureScheme {
    /// `X-Augury-Timestamp` and `X-Augury-Signature` (HMAC of `<timestamp>.<body>`).
    #[default]
    Augury,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature` (HMAC of
    /// `<id>.<timestamp>.<body>`, so the delivery id is signed too).
    Standard,
    /// Both sets of headers, for receivers moving from one to the other.
    Both,
}

impl SignatureScheme {
    pub fn augury(self) -> bool {
        matches!(self, SignatureScheme::Augury | SignatureScheme::Both)
    }

    pub fn standard(self) -> bool {
        matches!(self, SignatureScheme::Standard | SignatureScheme::Both)
    }
}

/// The default PagerDuty Events API v2 endpoint.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// One notifier, as configured. Its `Debug` shows URLs redacted (a webhook's query may
/// carry a token) and secrets not at all.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum NotifierConfig {
    /// A Slack incoming webhook. Its URL is the secret.
    Slack {
        url: Secret,
        #[serde(default)]
        events: Option<Vec<Event>>,
    },
    /// PagerDuty Events API v2: trigger on fail, resolve on cancel or supersede.
    Pagerduty {
        routing_key: Secret,
        #[serde(default)]
        events_url: Option<String>,
        /// Fixed severity; default `critical` when a critical metric failed, else `error`.
        #[serde(default)]
        severity: Option<Severity>,
        /// `payload.source`; default `augury`.
        #[serde(default)]
        source: Option<String>,
        #[serde(default)]
        events: Option<Vec<Event>>,
    },
    /// Any HTTP endpoint: the full verdict as JSON, signed with HMAC-SHA256.
    Webhook {
        url: String,
        /// The signing secret; or `secrets`, several at once while one is rotated out.
        #[serde(default)]
        secret: Option<Secret>,
        #[serde(default)]
        secrets: Vec<Secret>,
        /// Which signature headers go out (default `augury`).
        #[serde(default)]
        signature: SignatureScheme,
        #[serde(default)]
        events: Option<Vec<Event>>,
    },
}

impl std::fmt::Debug for NotifierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |u: &Option<String>| u.as_deref().map(crate::redact::url);
        match self {
            NotifierConfig::Slack { url, events } => f
                .debug_struct("Slack")
                .field("url", url)
                .field("events", events)
                .finish(),
            NotifierConfig::Pagerduty {
                routing_key,
                events_url,
                severity,
                source,
                events,
            } => f
                .debug_struct("Pagerduty")
                .field("routing_key", routing_key)
                .field("events_url", &redacted(events_url))
                .field("severity", severity)
                .field("source", source)
                .field("events", events)
                .finish(),
            NotifierConfig::Webhook {
                url,
                secret,
                secrets,
                signature,
                events,
            } => f
                .debug_struct("Webhook")
                .field("url", &crate::redact::url(url))
                .field("secret", secret)
                .field("secrets", secrets)
                .field("signature", signature)
                .field("events", events)
                .finish(),
        }
    }
}

impl NotifierConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            NotifierConfig::Slack { .. } => "slack",
            NotifierConfig::Pagerduty { .. } => "pagerduty",
            NotifierConfig::Webhook { .. } => "webhook",
        }
    }

    /// Events this kind of notifier can announce.
    fn allowed(&self) -> &'static [Event] {
        match self {
            NotifierConfig::Pagerduty { .. } => {
                &[Event::Failed, Event::Cancelled, Event::Superseded]
            }
            _ => &Event::ALL,
        }
    }

    /// Events sent when the notifier lists none: every verdict (and, for PagerDuty and
    /// webhooks, supersedes); `started` only when listed.
    fn default_events(&self) -> Vec<Event> {
        match self {
            NotifierConfig::Slack { .. } => vec![
                Event::Failed,
                Event::Passed,
                Event::Inconclusive,
                Event::Cancelled,
            ],
            NotifierConfig::Pagerduty { .. } => {
                vec![Event::Failed, Event::Cancelled, Event::Superseded]
            }
            NotifierConfig::Webhook { .. } => vec![
                Event::Failed,
                Event::Passed,
                Event::Inconclusive,
                Event::Cancelled,
                Event::Superseded,
            ],
        }
    }

    fn listed(&self) -> Option<&Vec<Event>> {
        match self {
            NotifierConfig::Slack { events, .. }
            | NotifierConfig::Pagerduty { events, .. }
            | NotifierConfig::Webhook { events, .. } => events.as_ref(),
        }
    }

    /// A webhook's signing secrets, the one of `secret` or those of `secrets`; none for
    /// other notifiers.
    pub fn signing_secrets(&self) -> Vec<&Secret> {
        match self {
            NotifierConfig::Webhook {
                secret, secrets, ..
            } => secret.iter().chain(secrets).collect(),
            _ => Vec::new(),
        }
    }

    /// The events this notifier is sent.
    pub fn events(&self) -> Vec<Event> {
        let mut events = self
            .listed()
            .cloned()
            .unwrap_or_else(|| self.default_events());
        events.sort();
        events.dedup();
        events
    }

    fn check(&self) -> Result<(), NotifierProblem> {
        if let Some(listed) = self.listed()
            && let Some(e) = listed.iter().find(|e| !self.allowed().contains(e))
        {
            return Err(NotifierProblem::Event {
                kind: self.kind(),
                event: e.as_str(),
            });
        }
        let url_ok = |field: &'static str, url: &str| match reqwest::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(()),
            // The URL may be a secret: say what is wrong without repeating it.
            _ => Err(NotifierProblem::NotHttpUrl(field)),
        };
        match self {
            NotifierConfig::Slack { url, .. } => url_ok("url", url.expose()),
            NotifierConfig::Pagerduty {
                routing_key,
                events_url,
                ..
            } => {
                if routing_key.expose().len() != 32 {
                    return Err(NotifierProblem::RoutingKeyLength(
                        routing_key.expose().len(),
                    ));
                }
                url_ok(
                    "events_url",
                    events_url.as_deref().unwrap_or(PAGERDUTY_EVENTS_URL),
                )
            }
            NotifierConfig::Webhook {
                url,
                secret,
                secrets,
                signature,
                ..
            } => {
                let field = if secret.is_some() {
                    "secret"
                } else {
                    "secrets"
                };
                match (secret, secrets.is_empty()) {
                    (Some(_), false) => return Err(NotifierProblem::SecretAndSecrets),
                    (None, true) => return Err(NotifierProblem::NoSecret),
                    _ => {}
                }
                for (i, s) in self.signing_secrets().iter().enumerate() {
                    let at = if field == "secret" {
                        field.to_string()
                    } else {
                        format!("{field}[{i}]")
                    };
                    if s.expose().is_empty() {
                        return Err(NotifierProblem::EmptySecret(at));
                    }
                    if signature.standard() && webhook::standard_key(s).is_none() {
                        return Err(NotifierProblem::NotAStandardSecret(at));
                    }
                }
                url_ok("url", url)
            }
        }
    }
}

/// Why the config file's notifiers were refused: each names the notifier and the field,
/// never a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum NotifiersError {
    /// Not a notifier's shape (unknown type, missing or unknown field).
    #[error("notifiers.{name}: {reason}")]
    Unreadable { name: String, reason: String },
    #[error("notifiers.{name}.{problem}")]
    Invalid {
        name: String,
        problem: NotifierProblem,
    },
    #[error("default_notify: `{0}` is not a configured notifier")]
    UnknownDefault(String),
}

/// What is wrong with one notifier's settings, starting with the field.
#[derive(Debug, thiserror::Error)]
pub enum NotifierProblem {
    #[error("events: a {kind} notifier cannot send `{event}`")]
    Event {
        kind: &'static str,
        event: &'static str,
    },
    #[error("{0}: not an http(s) URL")]
    NotHttpUrl(&'static str),
    #[error("routing_key: must be 32 characters (PagerDuty integration key), not {0}")]
    RoutingKeyLength(usize),
    #[error("{0}: must not be empty")]
    EmptySecret(String),
    #[error("secret: required (or `secrets`, a list, to sign with several during a rotation)")]
    NoSecret,
    #[error("secrets: give `secret` or `secrets`, not both")]
    SecretAndSecrets,
    #[error(
        "{0}: a Standard Webhooks secret is `whsec_` followed by the base64 of 24 to 64 \
         random bytes (e.g. `whsec_$(openssl rand -base64 32)`)"
    )]
    NotAStandardSecret(String),
}

/// Where links in notifications point.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Links {
    /// Base URL of Augury's API as people reach it (config `public_url`); default the
    /// listen address.
    pub public_url: String,
    /// Base URL of Grafana (config `grafana_url`); no Grafana links without it.
    pub grafana_url: Option<String>,
}

impl Links {
    pub fn analysis(&self, id: &str) -> String {
        format!(
            "{}/api/v1/analyses/{id}",
            self.public_url.trim_end_matches('/')
        )
    }

    /// The per-analysis dashboard (`dashboards/augury-analysis.json`, uid `augury-analysis`).
    pub fn grafana(&self, id: &str) -> Option<String> {
        self.grafana_url.as_ref().map(|g| {
            format!(
                "{}/d/augury-analysis/augury-analysis?var-analysis={id}",
                g.trim_end_matches('/')
            )
        })
    }
}

/// How the deliverer retries (config `notify_delivery:`).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Delivery {
    /// Longest one request may take.
    #[serde(with = "humantime_serde_opt")]
    pub timeout: Duration,
    /// Wait after the first failure; doubles with each one after it (with jitter).
    #[serde(with = "humantime_serde_opt")]
    pub initial_backoff: Duration,
    /// Longest wait between two attempts (a longer `Retry-After` is cut to this).
    #[serde(with = "humantime_serde_opt")]
    pub max_backoff: Duration,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// How long shutdown spends sending what is due before it stops.
    #[serde(with = "humantime_serde_opt")]
    pub flush_timeout: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            timeout: Duration::from_secs(10),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            max_attempts: 20,
            concurrency: 8,
            flush_timeout: Duration::from_secs(5),
        }
    }
}

/// Durations written `10s`, `500ms`, `5m`.
mod humantime_serde_opt {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|e| {
            serde::de::Error::custom(format!("`{text}` is not a duration like 10s ({e})"))
        })
    }
}

/// Every configured notifier by name, and the default choice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notifiers {
    pub notifiers: BTreeMap<String, NotifierConfig>,
    pub default_notify: Vec<String>,
    pub links: Links,
    pub delivery: Delivery,
}

impl Notifiers {
    /// Reads the config file's `notifiers:` and `default_notify:`; every problem names
    /// the notifier and the field (never a secret's value).
    pub fn from_config(
        notifiers: &BTreeMap<String, serde_json::Value>,
        default_notify: &[String],
    ) -> Result<Notifiers, NotifiersError> {
        let mut out = BTreeMap::new();
        for (name, value) in notifiers {
            let config: NotifierConfig =
                serde_json::from_value(value.clone()).map_err(|e| NotifiersError::Unreadable {
                    name: name.clone(),
                    reason: crate::redact::serde_message(&e.to_string()),
                })?;
            config.check().map_err(|problem| NotifiersError::Invalid {
                name: name.clone(),
                problem,
            })?;
            out.insert(name.clone(), config);
        }
        if let Some(unknown) = default_notify.iter().find(|n| !out.contains_key(*n)) {
            return Err(NotifiersError::UnknownDefault(unknown.clone()));
        }
        Ok(Notifiers {
            notifiers: out,
            default_notify: default_notify.to_vec(),
            ..Notifiers::default()
        })
    }

    pub fn get(&self, name: &str) -> Option<&NotifierConfig> {
        self.notifiers.get(name)
    }

    /// The recipients of a new analysis: the notifiers it names, or the default ones.
    /// An unknown name is refused, naming the `notify` field.
    pub fn recipients(&self, requested: Option<&[String]>) -> Result<Vec<Recipient>, RequestError> {
        let names = requested.unwrap_or(&self.default_notify);
        let mut out: Vec<Recipient> = Vec::new();
        for name in names {
            let config = self.notifiers.get(name).ok_or_else(|| RequestError {
                field: "notify".into(),
                message: if self.notifiers.is_empty() {
                    format!("unknown notifier `{name}` (none is configured)")
                } else {
                    format!(
                        "unknown notifier `{name}` (configured: {})",
                        self.notifiers
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            })?;
            if out.iter().all(|r| &r.notifier != name) {
                out.push(Recipient {
                    notifier: name.clone(),
                    events: config.events(),
                });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: serde_json::Value) -> Result<Notifiers, String> {
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_value(yaml).unwrap();
        Notifiers::from_config(&map, &["slack".to_string()]).map_err(|e| e.to_string())
    }

    fn design() -> serde_json::Value {
        serde_json::json!({
            "slack": {"type": "slack", "url": "https://hooks.slack.example/services/T/B/XXXX"},
            "pd": {"type": "pagerduty", "routing_key": "k".repeat(32),
                   "events_url": "https://events.pagerduty.com/v2/enqueue"},
            "audit": {"type": "webhook", "url": "https://audit.example/hooks/augury?token=qqqq",
                      "secret": "s3cret", "events": ["started", "failed"]},
        })
    }

    #[test]
    fn the_design_notifiers_load_and_debug_shows_no_secret() {
        let n = config(design()).unwrap();
        let shown = format!("{n:?}");
        assert!(!shown.contains("XXXX") && !shown.contains("kkkk") && !shown.contains("s3cret"));
        assert!(
            !shown.contains("qqqq") && shown.contains("token=***"),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));
        assert_eq!(
            n.get("audit").unwrap().events(),
            vec![Event::Started, Event::Failed]
        );
        assert_eq!(
            n.get("pd").unwrap().events(),
            vec![Event::Failed, Event::Cancelled, Event::Superseded]
        );
    }

    #[test]
    fn problems_name_the_notifier_and_field_not_the_secret() {
        let mut c = design();
        c["pd"]["routing_key"] = "short-secret".into();
        let e = config(c).unwrap_err();
        assert!(e.starts_with("notifiers.pd.routing_key"), "{e}");
        assert!(!e.contains("short-secret"), "{e}");
        let mut c = design();
        c["slack"]["url"] = "not a url secret".into();
        let e = config(c).unwrap_err();
        assert!(
            e.contains("notifiers.slack.url") && !e.contains("secret"),
            "{e}"
        );
        let mut c = design();
        c["pd"]["events"] = serde_json::json!(["passed"]);
        assert!(config(c).unwrap_err().contains("cannot send `passed`"));
        let mut c = design();
        c["audit"]["type"] = "email".into();
        assert!(config(c).unwrap_err().starts_with("notifiers.audit"));
        let e = Notifiers::from_config(&BTreeMap::new(), &["x".to_string()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("default_notify: `x`"), "{e}");
    }

    #[test]
    fn webhook_secrets_are_one_or_a_list_and_standard_ones_are_base64_keys() {
        let audit = |extra: serde_json::Value| {
            let mut c = design();
            let hook = c["audit"].as_object_mut().unwrap();
            hook.remove("secret");
            for (k, v) in extra.as_object().unwrap() {
                hook.insert(k.clone(), v.clone());
            }
            config(c)
        };
        let rotated = serde_json::json!({"signature": "both",
            "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]});
        let n = audit(rotated).unwrap();
        assert_eq!(n.get("audit").unwrap().signing_secrets().len(), 2);
        for (extra, wanted) in [
            (serde_json::json!({}), "notifiers.audit.secret: required"),
            (
                serde_json::json!({"secret": "a", "secrets": ["b"]}),
                "notifiers.audit.secrets: give `secret` or `secrets`",
            ),
            (
                serde_json::json!({"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ""]}),
                "notifiers.audit.secrets[1]: must not be empty",
            ),
            (
                serde_json::json!({"signature": "standard", "secret": "plain-text-secret"}),
                "notifiers.audit.secret: a Standard Webhooks secret is `whsec_`",
            ),
            (
                serde_json::json!({"signature": "sideways", "secret": "x"}),
                "notifiers.audit",
            ),
        ] {
            let e = audit(extra.clone()).unwrap_err();
            assert!(e.starts_with(wanted), "{extra}: {e}");
            assert!(!e.contains("plain-text-secret"), "{e}");
        }
        // A plain secret is fine for Augury's own signature, the default.
        assert!(audit(serde_json::json!({"secret": "plain-text-secret"})).is_ok());
    }

    #[test]
    fn recipients_default_or_named_and_unknown_names_refused() {
        let n = config(design()).unwrap();
        let r = n.recipients(None).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].notifier, "slack");
        let r = n
            .recipients(Some(&[
                "pd".to_string(),
                "audit".to_string(),
                "pd".to_string(),
            ]))
            .unwrap();
        assert_eq!(r.len(), 2);
        let e = n.recipients(Some(&["nope".to_string()])).unwrap_err();
        assert_eq!(e.field, "notify");
        assert!(e.message.contains("unknown notifier `nope`"), "{e}");
        assert!(n.recipients(Some(&[])).unwrap().is_empty());
    }
}
