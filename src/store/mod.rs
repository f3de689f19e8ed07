//! The store: analyses and interval results, persisted.
//!
//! Two backends behind one API: SQLite (embedded, WAL; one replica) and PostgreSQL (a
//! server that several replicas may share). The daemon talks to [`Store`] only. Both run
//! the same queries and transactions ([`sql`], generic over the backend), read rows back
//! the same way ([`rows`]) and keep the same readiness state ([`health`]); a backend's
//! own module says how it is opened, how its JSON functions are spelled and which of its
//! errors mean it cannot write. Their schemas are kept in step: migrations/sqlite and
//! migrations/postgres hold the same numbered files, in each database's types.
//!
//! Invariant: one transaction per state change; an interval's result, the analysis
//! state it leads to and the notifications announcing it commit together or not at all.
//!
//! Faults leave no silent damage:
//! - a write that fails (full disk, I/O error, a failed COMMIT) is rolled back by closing
//!   its connection, so no pooled connection stays inside a transaction holding the write
//!   lock, and no later "commit" on it lands in a savepoint of a dead transaction; a
//!   write is reported done only after its COMMIT succeeded;
//! - while writes fail for a reason of the database's own, [`Store::ready`] says not
//!   ready with the reason; the next write that commits (any caller's, or the readiness
//!   probe's, at most once a second while failing) makes it ready again, with no restart;
//! - a damaged database file (SQLITE_CORRUPT, SQLITE_NOTADB) is
//!   [`StoreError::DatabaseCorrupt`], permanent: not ready until repaired and restarted;
//!   PostgreSQL has no such state: a server that cannot be reached is a failing write
//!   like a full disk (not ready, retryable, ready again once a write commits);
//! - one unreadable row (unknown status, malformed JSON) is that row's problem: the
//!   readers that return many rows quarantine it ([`Unreadable`]) and serve the others.

/// `$call` on the backend store inside `$store`, named `$s`.
macro_rules! on_backend {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

mod health;
mod postgres;
pub mod replicas;
mod rows;
mod sql;
mod sqlite;

use serde::Serialize;

use crate::analysis::{Analysis, Interval, Scope, Status, ValidRequest};
use crate::judge::Verdict;
use crate::notify::{Attempt, Notification, Recipient};

/// Database URLs as logs and errors show them (password and query values hidden).
pub use crate::redact::url as redacted;
pub use postgres::PgStore;
pub use replicas::{Claimant, Fence, Lease, Replica, StoredPartial};
pub use sql::SqlStore;
pub use sqlite::SqliteStore;

/// What a committed change did to an analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// The analysis was created (not when a create found its key taken).
    Created,
    /// An interval was recorded; the analysis is now in this status (still `Running`, or
    /// the verdict it reached).
    Recorded(Status),
    /// The analysis was cancelled while running.
    Cancelled,
}

/// A committed change to one analysis, as the store's listeners hear it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change<'a> {
    pub id: &'a str,
    pub kind: ChangeKind,
}

impl Change<'_> {
    /// The status the analysis entered, when the change moved it into one: `Running` on
    /// creation, the verdict on a deciding interval, `Cancelled` on a cancel.
    pub fn entered(&self) -> Option<Status> {
        match self.kind {
            ChangeKind::Created => Some(Status::Running),
            ChangeKind::Recorded(s) if s.is_final() => Some(s),
            ChangeKind::Recorded(_) => None,
            ChangeKind::Cancelled => Some(Status::Cancelled),
        }
    }
}

/// Called after a change to an analysis commits, in the writing task, before the write
/// returns. The store is the one hub of change: the runner schedules and unschedules
/// through it, the deliverer wakes through it, the API's verdict cache invalidates
/// through it and the daemon's status gauge counts through it; nobody calls them
/// directly. A listener must be quick and must not block (it runs inside the write).
pub type ChangeListener = std::sync::Arc<dyn Fn(&Change<'_>) + Send + Sync>;

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer or did not write (locked, full disk, I/O error, a
    /// server that cannot be reached): it may work again, so a caller may retry.
    #[error("database: {0}")]
    Database(sqlx::Error),
    /// SQLite found the database file damaged (SQLITE_CORRUPT, SQLITE_NOTADB). Permanent:
    /// retrying does not help; the file needs repair or a restore.
    #[error("the database file is corrupt: {0}")]
    DatabaseCorrupt(sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// One stored record cannot be read back (an unknown value, malformed JSON); the
    /// database and the other records are fine.
    #[error("stored {what} is corrupt: {reason}")]
    Corrupt { what: String, reason: String },
    /// The URL names no backend (its password, if any, is left out).
    #[error("unsupported database URL `{0}` (use sqlite://PATH or postgres://USER@HOST/DATABASE)")]
    Url(String),
    /// The write's task was stopped before it finished (the daemon is shutting down).
    #[error("the write was interrupted: the daemon is shutting down")]
    Interrupted,
}

// SQLite primary result codes (the low byte of an extended code).
pub(crate) const SQLITE_READONLY: i32 = 8;
pub(crate) const SQLITE_NOMEM: i32 = 7;
pub(crate) const SQLITE_IOERR: i32 = 10;
pub(crate) const SQLITE_CORRUPT: i32 = 11;
pub(crate) const SQLITE_FULL: i32 = 13;
pub(crate) const SQLITE_CANTOPEN: i32 = 14;
pub(crate) const SQLITE_PROTOCOL: i32 = 15;
pub(crate) const SQLITE_NOTADB: i32 = 26;

/// The SQLite (extended) result code of `e`, when SQLite gave one (never for another
/// database's error, whose code may also be a number).
pub(crate) fn sqlite_code(e: &sqlx::Error) -> Option<i32> {
    match e {
        sqlx::Error::Database(d) => {
            sqlx::error::DatabaseError::code(d.try_downcast_ref::<sqlx::sqlite::SqliteError>()?)?
                .parse()
                .ok()
        }
        _ => None,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match sqlite_code(&e).map(|c| c & 0xff) {
            Some(SQLITE_CORRUPT | SQLITE_NOTADB) => StoreError::DatabaseCorrupt(e),
            _ => StoreError::Database(e),
        }
    }
}

/// A stored analysis that cannot be read back, and why (the field and what is wrong
/// with it). Readers of many rows report these instead of failing for all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub id: String,
    pub reason: String,
}

/// Why the store is not ready to serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotReady {
    /// The database file is damaged: permanent until repaired.
    pub corrupt: bool,
    pub reason: String,
}

/// One line of the analysis list: what a summary shows, read without the model's
/// metrics, the judgment's numbers or the cumulative data.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub id: String,
    pub key: String,
    pub status: Status,
    /// Name of the model.
    pub model: String,
    pub baseline: Scope,
    pub canary: Scope,
    pub interval_ms: u64,
    pub lifetime_ms: u64,
    pub created_ms: i64,
    pub decided_ms: Option<i64>,
    pub intervals: u32,
    pub score: Option<f64>,
    /// Verdict of the latest judgment.
    pub verdict: Option<Verdict>,
}

impl Summary {
    /// How many intervals make the whole lifetime (as [`Analysis::planned_intervals`]).
    pub fn planned_intervals(&self) -> u32 {
        (self.lifetime_ms.div_ceil(self.interval_ms.max(1))) as u32
    }
}

/// A position in the list: after the analysis created at `created_ms` with `id` (the
/// list's order is (created_ms, id)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub created_ms: i64,
    pub id: String,
}

impl Cursor {
    /// The cursor as clients carry it: opaque, URL-safe (`<created_ms>.<id in hex>`).
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_ms, hex::encode(self.id.as_bytes()))
    }

    /// The cursor `text` encodes, or None if it is not one.
    pub fn decode(text: &str) -> Option<Cursor> {
        let (created, id) = text.split_once('.')?;
        Some(Cursor {
            created_ms: created.parse().ok()?,
            id: String::from_utf8(hex::decode(id).ok()?).ok()?,
        })
    }
}

/// One page of the list.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// Readable summaries, oldest first.
    pub analyses: Vec<Summary>,
    /// Rows of this page that cannot be read.
    pub unreadable: Vec<Unreadable>,
    /// Where the next page starts; None on the last page.
    pub next: Option<Cursor>,
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

/// A Kayenta canary config stored through Kayenta's `/canaryConfig` routes: the JSON as
/// sent (with its `id` and timestamps set), and what its listing shows.
#[derive(Clone, Debug, PartialEq)]
pub struct KayentaConfig {
    pub id: String,
    pub name: String,
    pub applications: Vec<String>,
    pub config: serde_json::Value,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// The database behind the daemon.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl Store {
    /// Opens the database at `url` and brings its schema up to date: `sqlite:` URLs open
    /// (creating if needed) a SQLite file, `postgres://` and `postgresql://` URLs connect
    /// to a PostgreSQL database (which must exist).
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        match Kind::of(url)? {
            Kind::Sqlite => Ok(Store::Sqlite(SqliteStore::open(url).await?)),
            Kind::Postgres => Ok(Store::Postgres(PgStore::open(url).await?)),
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
    ///
    /// The write runs in a task of its own, so that once started it commits and is
    /// announced to the listeners even if the caller stops waiting (a request deadline, a
    /// client that went away): a committed analysis is never left unannounced, and so
    /// never left unscheduled.
    pub async fn create_notifying(
        &self,
        request: &ValidRequest,
        recipients: &[Recipient],
        now_ms: i64,
    ) -> Result<(Analysis, bool), StoreError> {
        let (store, request, recipients) = (self.clone(), request.clone(), recipients.to_vec());
        completed(tokio::spawn(async move {
            on_backend!(&store, s => s.create(&request, &recipients, now_ms).await)
        }))
        .await
    }

    pub async fn get(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        on_backend!(self, s => s.get(id).await)
    }

    /// The analysis a create with `key` made, if any.
    pub async fn get_by_key(&self, key: &str) -> Result<Option<Analysis>, StoreError> {
        on_backend!(self, s => s.get_by_key(key).await)
    }

    /// Every readable analysis (in `status`, if given), oldest first, in full. Rows that
    /// cannot be read are logged and left out; [`Store::list_running`] reports them, and
    /// [`Store::list_page`] is the cheap way to list.
    pub async fn list(&self, status: Option<Status>) -> Result<Vec<Analysis>, StoreError> {
        on_backend!(self, s => s.list(status).await)
    }

    /// The running analyses, in full, oldest first, for the runner to resume; and the
    /// running rows that cannot be read (id and reason, also logged), so one bad row
    /// never stops the others from resuming. Only a database failure is an `Err`.
    pub async fn list_running(&self) -> Result<(Vec<Analysis>, Vec<Unreadable>), StoreError> {
        on_backend!(self, s => s.list_running().await)
    }

    /// One page of summaries (in `status`, if given), oldest first, starting after
    /// `after`, at most `limit`. Rows of the page that cannot be read are in
    /// `unreadable`; the page's `next` is where the following page starts.
    pub async fn list_page(
        &self,
        status: Option<Status>,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        on_backend!(self, s => s.list_page(status, after, limit).await)
    }

    /// How many analyses are in each status.
    pub async fn count_by_status(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        on_backend!(self, s => s.count_by_status().await)
    }

    /// Whether the store can serve: the database file is not corrupt (SQLite), the last
    /// write (or a probe write, made here when due) committed, and a read answers (on
    /// PostgreSQL, within the pool's acquire timeout while the server is away).
    pub async fn ready(&self) -> Result<(), NotReady> {
        on_backend!(self, s => s.ready().await)
    }

    pub async fn intervals(&self, id: &str) -> Result<Vec<Interval>, StoreError> {
        on_backend!(self, s => s.intervals(id).await)
    }

    /// Records an interval result, only if the analysis is still running and this is the
    /// next interval (a cancelled or already-advanced analysis is left alone: `false`).
    pub async fn record_interval(
        &self,
        id: &str,
        update: &IntervalUpdate,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.record_interval(id, update).await)
    }

    /// Cancels a running analysis; returns it as it now stands (None if unknown), and
    /// whether this call cancelled it (`false`: it was already decided or cancelled).
    /// Like a create, the write completes and is announced even if the caller stops
    /// waiting.
    pub async fn cancel(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<(Analysis, bool)>, StoreError> {
        let (store, id) = (self.clone(), id.to_string());
        completed(tokio::spawn(async move {
            on_backend!(&store, s => s.cancel(&id, now_ms).await)
        }))
        .await
    }

    /// Which revision of a Flagger canary without checksums (`namespace/name`) the gate
    /// judges now: 0 until a post-rollout call ended one.
    pub async fn gate_revision(&self, canary: &str) -> Result<i64, StoreError> {
        on_backend!(self, s => s.gate_revision(canary).await)
    }

    /// Ends revision `revision` of that canary, so its next rollout is judged afresh.
    pub async fn end_gate_revision(&self, canary: &str, revision: i64) -> Result<(), StoreError> {
        on_backend!(self, s => s.end_gate_revision(canary, revision).await)
    }

    /// Notes that running analysis `id` was asked for at `at_ms` (for `abandon_after`).
    pub async fn note_asked(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        on_backend!(self, s => s.note_asked(id, at_ms).await)
    }

    /// When analysis `id` was last asked for; None: not since it was created.
    pub async fn asked_ms(&self, id: &str) -> Result<Option<i64>, StoreError> {
        on_backend!(self, s => s.asked_ms(id).await)
    }

    /// The notifications of analysis `id` (the outbox rows), oldest first.
    pub async fn notifications(&self, id: &str) -> Result<Vec<Notification>, StoreError> {
        on_backend!(self, s => s.notifications(id).await)
    }

    /// Pending notifications due by `now_ms`, oldest first, in order per analysis and
    /// notifier.
    pub async fn due_notifications(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        on_backend!(self, s => s.due_notifications(now_ms, limit).await)
    }

    /// When the next pending notification is due, and how many are pending.
    pub async fn pending_notifications(&self) -> Result<(Option<i64>, u64), StoreError> {
        on_backend!(self, s => s.pending_notifications().await)
    }

    /// Records one delivery attempt and its consequence for the notification.
    pub async fn record_attempt(&self, id: i64, attempt: &Attempt) -> Result<(), StoreError> {
        on_backend!(self, s => s.record_attempt(id, attempt).await)
    }

    /// Every Kayenta canary config stored through `/canaryConfig`, by name then id.
    pub async fn kayenta_configs(&self) -> Result<Vec<KayentaConfig>, StoreError> {
        on_backend!(self, s => s.kayenta_configs().await)
    }

    pub async fn kayenta_config(&self, id: &str) -> Result<Option<KayentaConfig>, StoreError> {
        on_backend!(self, s => s.kayenta_config(id).await)
    }

    /// Stores a new Kayenta config; false (nothing written) when its id is taken.
    pub async fn insert_kayenta_config(&self, config: &KayentaConfig) -> Result<bool, StoreError> {
        on_backend!(self, s => s.insert_kayenta_config(config).await)
    }

    /// Replaces a stored Kayenta config (keeping its creation time); false when none.
    pub async fn update_kayenta_config(&self, config: &KayentaConfig) -> Result<bool, StoreError> {
        on_backend!(self, s => s.update_kayenta_config(config).await)
    }

    /// Deletes a stored Kayenta config; false when there was none.
    pub async fn delete_kayenta_config(&self, id: &str) -> Result<bool, StoreError> {
        on_backend!(self, s => s.delete_kayenta_config(id).await)
    }

    /// Keeps what a Kayenta execution was started with (JSON text), by its analysis's key.
    pub async fn put_kayenta_execution(&self, key: &str, context: &str) -> Result<(), StoreError> {
        on_backend!(self, s => s.put_kayenta_execution(key, context).await)
    }

    /// What the Kayenta execution of the analysis with key `key` was started with.
    pub async fn kayenta_execution(&self, key: &str) -> Result<Option<String>, StoreError> {
        on_backend!(self, s => s.kayenta_execution(key).await)
    }

    /// Registers a listener for committed changes to analyses.
    pub fn on_change(&self, listener: ChangeListener) {
        on_backend!(self, s => s.on_change(listener))
    }

    pub async fn close(&self) {
        on_backend!(self, s => s.close().await)
    }
}

/// The backend a database URL names.
enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    fn of(url: &str) -> Result<Kind, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Kind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Kind::Postgres)
        } else {
            Err(StoreError::Url(redacted(url)))
        }
    }
}

/// What a write's own task came to: its result, its panic carried on to the caller, or
/// [`StoreError::Interrupted`] when the runtime stopped it.
async fn completed<T>(
    task: tokio::task::JoinHandle<Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match task.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(StoreError::Interrupted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::AnalysisRequest;
    use crate::model::Catalog;

    #[test]
    fn a_cursor_reads_back_from_its_text_and_other_text_is_none() {
        let cursor = Cursor {
            created_ms: 1_700_000_000_123,
            id: "0190abcdef".into(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in ["", "12", "x.00", "12.zz", "12.ff"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    /// Polls `write` once and drops it, as a caller that stops waiting does; true when it
    /// had not finished by then.
    fn abandoned<T>(write: impl std::future::Future<Output = T>) -> bool {
        let mut write = std::pin::pin!(write);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        write.as_mut().poll(&mut cx).is_pending()
    }

    /// The next change the listener heard; a bound on the wait turns a change that never
    /// comes into a failure instead of a hang.
    async fn announced(
        heard: &mut tokio::sync::mpsc::UnboundedReceiver<(String, ChangeKind)>,
    ) -> (String, ChangeKind) {
        tokio::time::timeout(std::time::Duration::from_secs(60), heard.recv())
            .await
            .expect("the abandoned write was never announced")
            .unwrap()
    }

    /// A create or cancel whose caller stops waiting at once (a request deadline, a
    /// client gone) still commits and is announced: the runner never misses an analysis
    /// that is in the database.
    #[tokio::test]
    async fn a_write_abandoned_by_its_caller_still_commits_and_is_announced() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let store = Store::open(&url).await.unwrap();
        let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
        store.on_change(std::sync::Arc::new(move |c: &Change<'_>| {
            let _ = tx.send((c.id.to_string(), c.kind));
        }));
        let request: AnalysisRequest = serde_json::from_value(serde_json::json!({
            "key": "k", "model": "http-red",
            "baseline": {"service.name": "s", "service.version": "1"},
            "canary": {"service.name": "s", "service.version": "2"},
            "interval": "1s", "lifetime": "1h"}))
        .unwrap();
        let valid = request.validate(&Catalog::builtin()).unwrap();
        // Polled once, then dropped: the caller gave up before the write could finish.
        assert!(abandoned(store.create_notifying(&valid, &[], 1_000)));
        let (id, kind) = announced(&mut heard).await;
        assert_eq!(kind, ChangeKind::Created);
        assert_eq!(
            store.get(&id).await.unwrap().unwrap().status,
            Status::Running
        );

        assert!(abandoned(store.cancel(&id, 2_000)));
        assert_eq!(
            announced(&mut heard).await,
            (id.clone(), ChangeKind::Cancelled)
        );
        assert_eq!(
            store.get(&id).await.unwrap().unwrap().status,
            Status::Cancelled
        );
    }
}
