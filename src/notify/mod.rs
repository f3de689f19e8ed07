//! Notifications: telling people and systems what an analysis decided.
//!
//! Notifiers are named in the config file (`notifiers:`; `config.rs` here reads them) and
//! chosen per analysis (`"notify": [...]`) or by `default_notify`. When an analysis is
//! created, its recipients (notifier and the events each wants) are stored with it.
//! Every state change that is an event (started, failed, passed, inconclusive,
//! cancelled, superseded) writes one outbox row per recipient that wants it, in the
//! store transaction that makes the change: a verdict and its notifications commit
//! together or not at all. `slack.rs`, `pagerduty.rs` and `webhook.rs` render
//! the bodies; the daemon's deliverer (`daemon/deliver.rs`) sends the rows, retries what
//! may succeed later, and records every attempt.
//!
//! Invariants: a delivered notification is never sent again; an undelivered one survives
//! a crash and goes out after the restart (at least once; the deduplication keys make a
//! repeat harmless); secrets (webhook URLs, routing keys, signing secrets) are never
//! logged, stored or returned by the API.

pub mod config;
pub mod message;
pub mod pagerduty;
pub mod slack;
pub mod webhook;

use serde::{Deserialize, Serialize};

use crate::analysis::Status;

pub use config::{
    Delivery as DeliverySettings, Links, NotifierConfig, Notifiers, NotifiersError, Secret,
};
pub use webhook::signature;

/// What happened to an analysis that a notifier may be told about.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The analysis was created (only for notifiers that list it).
    Started,
    Failed,
    Passed,
    Inconclusive,
    Cancelled,
    /// A failed analysis was superseded by a later passing one for the same canary
    /// (same baseline scope or same canary scope): its alert can be resolved.
    Superseded,
}

impl Event {
    pub const ALL: [Event; 6] = [
        Event::Started,
        Event::Failed,
        Event::Passed,
        Event::Inconclusive,
        Event::Cancelled,
        Event::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Started => "started",
            Event::Failed => "failed",
            Event::Passed => "passed",
            Event::Inconclusive => "inconclusive",
            Event::Cancelled => "cancelled",
            Event::Superseded => "superseded",
        }
    }

    pub fn parse(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// The event a final status announces.
    pub fn of_status(status: Status) -> Option<Event> {
        match status {
            Status::Running => None,
            Status::Pass => Some(Event::Passed),
            Status::Fail => Some(Event::Failed),
            Status::Inconclusive => Some(Event::Inconclusive),
            Status::Cancelled => Some(Event::Cancelled),
        }
    }
}

/// A notifier an analysis reports to, and the events it wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    pub notifier: String,
    pub events: Vec<Event>,
}

/// Where an outbox row stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not delivered yet; the next attempt is due at `next_attempt_ms`.
    Pending,
    Delivered,
    /// Given up: the receiver refused it for good, or every attempt failed.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One outbox row: a notification to one notifier about one event of one analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    pub id: i64,
    pub analysis_id: String,
    pub notifier: String,
    pub event: Event,
    /// The superseding analysis, for `superseded`.
    pub cause: Option<String>,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_ms: i64,
    pub next_attempt_ms: i64,
    /// When it was delivered or given up.
    pub done_ms: Option<i64>,
    /// HTTP status of the last answer.
    pub last_status: Option<u16>,
    /// Why the last attempt did not deliver (no secrets: URLs are left out).
    pub last_error: Option<String>,
}

/// What one delivery attempt came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// May succeed later (429, 5xx, network error, timeout).
    Retry,
    /// Will not succeed (400, 403, 404, 410, ...), or the last allowed attempt failed.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Retry => "retry",
            Outcome::Failed => "failed",
        }
    }
}

/// One attempt, as the store records it.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub at_ms: i64,
    pub duration_ms: i64,
    pub status: Option<u16>,
    pub outcome: Outcome,
    pub error: Option<String>,
    /// For `Retry`: when to try again.
    pub next_attempt_ms: i64,
}
