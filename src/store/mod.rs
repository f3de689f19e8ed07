//! The store: analyses and interval results, persisted.
//!
//! SQLite (embedded, WAL) today. The daemon talks to [`Store`] only, so a PostgreSQL
//! backend can be added behind it without touching callers.
//!
//! Invariant: one transaction per state change; an interval's result, the analysis
//! state it leads to and the notifications announcing it commit together or not at all.

mod sqlite;

use crate::analysis::{Analysis, Interval, Status, ValidRequest};
use crate::notify::{Attempt, Notification, Recipient};

pub use sqlite::SqliteStore;

/// Called with an analysis's id after a change to it commits (an interval recorded, a
/// cancel), in the writing task, before the write returns. In-process caches of what the
/// store holds (the API's verdicts) invalidate through it.
pub type ChangeListener = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    #[error("unsupported database URL `{0}` (use sqlite://PATH)")]
    Url(String),
}

/// The result of an interval and the state the analysis moves to.
#[derive(Clone, Debug)]
pub struct IntervalUpdate {
    pub interval: Interval,
    pub status: Status,
    pub next_due_ms: i64,
    pub decided_ms: Option<i64>,
    pub cumulative: std::collections::BTreeMap<String, crate::judge::MetricData>,
}

/// The database behind the daemon.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema up to date.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Store::Sqlite(SqliteStore::open(url).await?))
        } else {
            Err(StoreError::Url(url.to_string()))
        }
    }

    /// Creates the analysis, or returns the one that already has this key (`false`).
    pub async fn create(
        &self,
        request: &ValidRequest,
        now_ms: i64,
    ) -> Result<(Analysis, bool), StoreError> {
        self.create_notifying(request, &[], now_ms).await
    }

    /// [`Store::create`] with the analysis's notification recipients, stored in the same
    /// transaction together with the `started` notifications of those that want them.
    pub async fn create_notifying(
        &self,
        request: &ValidRequest,
        recipients: &[Recipient],
        now_ms: i64,
    ) -> Result<(Analysis, bool), StoreError> {
        match self {
            Store::Sqlite(s) => s.create(request, recipients, now_ms).await,
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        match self {
            Store::Sqlite(s) => s.get(id).await,
        }
    }

    pub async fn list(&self, status: Option<Status>) -> Result<Vec<Analysis>, StoreError> {
        match self {
            Store::Sqlite(s) => s.list(status).await,
        }
    }

    pub async fn intervals(&self, id: &str) -> Result<Vec<Interval>, StoreError> {
        match self {
            Store::Sqlite(s) => s.intervals(id).await,
        }
    }

    /// Records an interval result, only if the analysis is still running and this is the
    /// next interval (a cancelled or already-advanced analysis is left alone: `false`).
    pub async fn record_interval(
        &self,
        id: &str,
        update: &IntervalUpdate,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.record_interval(id, update).await,
        }
    }

    /// Cancels a running analysis; returns it as it now stands (None if unknown), and
    /// whether this call cancelled it (`false`: it was already decided or cancelled).
    pub async fn cancel(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<(Analysis, bool)>, StoreError> {
        match self {
            Store::Sqlite(s) => s.cancel(id, now_ms).await,
        }
    }

    /// The notifications of analysis `id` (the outbox rows), oldest first.
    pub async fn notifications(&self, id: &str) -> Result<Vec<Notification>, StoreError> {
        match self {
            Store::Sqlite(s) => s.notifications(id).await,
        }
    }

    /// Pending notifications due by `now_ms`, oldest first, in order per analysis and
    /// notifier.
    pub async fn due_notifications(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        match self {
            Store::Sqlite(s) => s.due_notifications(now_ms, limit).await,
        }
    }

    /// When the next pending notification is due, and how many are pending.
    pub async fn pending_notifications(&self) -> Result<(Option<i64>, u64), StoreError> {
        match self {
            Store::Sqlite(s) => s.pending_notifications().await,
        }
    }

    /// Records one delivery attempt and its consequence for the notification.
    pub async fn record_attempt(&self, id: i64, attempt: &Attempt) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.record_attempt(id, attempt).await,
        }
    }

    /// Registers a listener for committed changes to analyses.
    pub fn on_change(&self, listener: ChangeListener) {
        match self {
            Store::Sqlite(s) => s.on_change(listener),
        }
    }

    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
        }
    }
}
