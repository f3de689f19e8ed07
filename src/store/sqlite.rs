//! SQLite backend: one file, WAL journal, migrations embedded in the binary.

mod replicas;

use std::str::FromStr;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Connection as _, Row, Sqlite};

use super::replicas::Fence;
use super::{
    Change, ChangeKind, ChangeListener, Cursor, IntervalUpdate, NotReady, Page, StoreError,
    Summary, Unreadable,
};
use crate::analysis::{Analysis, Interval, Scope, Status, ValidRequest};
use crate::clock::now_ms;
use crate::judge::Verdict;
use crate::notify::{Attempt, DeliveryState, Event, Notification, Outcome, Recipient};

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    listeners: Arc<std::sync::RwLock<Vec<ChangeListener>>>,
    health: Arc<Health>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what: what.into(),
        reason: e.to_string(),
    })
}

fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: what.into(),
        reason: e.to_string(),
    })
}

const COLUMNS: &str = "id, key, request, model, status, interval_ms, lifetime_ms, created_ms, \
     next_due_ms, decided_ms, intervals, score, judgment, cumulative";

/// Column `name` of analysis `id`'s row. A value of the wrong type is that row's
/// corruption, not a database failure: it is reported as [`StoreError::Corrupt`] so one
/// bad row is never mistaken for an unavailable database.
fn column<'r, T>(row: &'r SqliteRow, id: &str, name: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(name).map_err(|e| StoreError::Corrupt {
        what: format!("analysis {id} {name}"),
        reason: e.to_string(),
    })
}

/// The id of an analysis row, even when the rest of the row is unreadable.
fn row_id(row: &SqliteRow) -> String {
    row.try_get::<String, _>("id")
        .unwrap_or_else(|_| "(unreadable id)".to_string())
}

fn analysis(row: &SqliteRow) -> Result<Analysis, StoreError> {
    let id = row_id(row);
    let what = |field: &str| format!("analysis {id} {field}");
    let status: String = column(row, &id, "status")?;
    let judgment: Option<String> = column(row, &id, "judgment")?;
    Ok(Analysis {
        key: column(row, &id, "key")?,
        request: from_json(&column::<String>(row, &id, "request")?, &what("request"))?,
        model: from_json(&column::<String>(row, &id, "model")?, &what("model"))?,
        status: Status::parse(&status).ok_or_else(|| StoreError::Corrupt {
            what: what("status"),
            reason: format!("unknown status `{status}`"),
        })?,
        interval_ms: column::<i64>(row, &id, "interval_ms")? as u64,
        lifetime_ms: column::<i64>(row, &id, "lifetime_ms")? as u64,
        created_ms: column(row, &id, "created_ms")?,
        next_due_ms: column(row, &id, "next_due_ms")?,
        decided_ms: column(row, &id, "decided_ms")?,
        intervals: column::<i64>(row, &id, "intervals")? as u32,
        score: column(row, &id, "score")?,
        judgment: judgment
            .map(|j| from_json(&j, &what("judgment")))
            .transpose()?,
        cumulative: from_json(
            &column::<String>(row, &id, "cumulative")?,
            &what("cumulative"),
        )?,
        id,
    })
}

/// Reads every row of `rows` that can be read; the others are quarantined: reported by id
/// with the reason, and logged, so one bad row never hides the rest.
fn readable(rows: &[SqliteRow]) -> (Vec<Analysis>, Vec<Unreadable>) {
    let mut good = Vec::with_capacity(rows.len());
    let mut bad = Vec::new();
    for row in rows {
        match analysis(row) {
            Ok(a) => good.push(a),
            Err(e) => bad.push(quarantined(row_id(row), e.to_string())),
        }
    }
    (good, bad)
}

fn quarantined(id: String, reason: String) -> Unreadable {
    tracing::warn!(analysis = %id, reason = %reason, "stored analysis is unreadable; skipped");
    Unreadable { id, reason }
}

/// What the list reads of a row: the small columns, and from the JSON ones only the
/// fields a summary shows, extracted by SQLite (`json_valid` first, so a malformed
/// document quarantines its row instead of failing the whole query).
const SUMMARY_COLUMNS: &str = "id, key, status, interval_ms, lifetime_ms, created_ms, \
     decided_ms, intervals, score, \
     json_valid(request) AS request_ok, json_valid(model) AS model_ok, \
     judgment IS NULL OR json_valid(judgment) AS judgment_ok, \
     CASE WHEN json_valid(model) THEN json_extract(model, '$.name') END AS model_name, \
     CASE WHEN json_valid(request) THEN json_extract(request, '$.baseline') END AS baseline, \
     CASE WHEN json_valid(request) THEN json_extract(request, '$.canary') END AS canary, \
     CASE WHEN json_valid(judgment) THEN json_extract(judgment, '$.verdict') END AS verdict";

fn summary(row: &SqliteRow) -> Result<Summary, String> {
    let id = row_id(row);
    let get_err = |name: &str, e: sqlx::Error| format!("{name}: {e}");
    macro_rules! col {
        ($name:literal) => {
            row.try_get($name).map_err(|e| get_err($name, e))?
        };
    }
    let status: String = col!("status");
    let status =
        Status::parse(&status).ok_or_else(|| format!("status: unknown status `{status}`"))?;
    let request_ok: bool = col!("request_ok");
    let model_ok: bool = col!("model_ok");
    let judgment_ok: bool = col!("judgment_ok");
    for (ok, name) in [
        (request_ok, "request"),
        (model_ok, "model"),
        (judgment_ok, "judgment"),
    ] {
        if !ok {
            return Err(format!("{name}: not valid JSON"));
        }
    }
    let model: Option<String> = col!("model_name");
    let scope = |name: &str| -> Result<Scope, String> {
        let text: Option<String> = row.try_get(name).map_err(|e| get_err(name, e))?;
        let text = text.ok_or_else(|| format!("request: no `{name}` scope"))?;
        serde_json::from_str(&text).map_err(|e| format!("request {name}: {e}"))
    };
    let verdict: Option<String> = col!("verdict");
    let verdict = verdict
        .map(|v| {
            serde_json::from_value::<Verdict>(serde_json::Value::String(v.clone()))
                .map_err(|_| format!("judgment: unknown verdict `{v}`"))
        })
        .transpose()?;
    Ok(Summary {
        key: col!("key"),
        status,
        model: model.ok_or_else(|| "model: no name".to_string())?,
        baseline: scope("baseline")?,
        canary: scope("canary")?,
        interval_ms: row
            .try_get::<i64, _>("interval_ms")
            .map_err(|e| get_err("interval_ms", e))? as u64,
        lifetime_ms: row
            .try_get::<i64, _>("lifetime_ms")
            .map_err(|e| get_err("lifetime_ms", e))? as u64,
        created_ms: col!("created_ms"),
        decided_ms: col!("decided_ms"),
        intervals: row
            .try_get::<i64, _>("intervals")
            .map_err(|e| get_err("intervals", e))? as u32,
        score: col!("score"),
        verdict,
        id,
    })
}

const NOTIFICATION_COLUMNS: &str = "id, analysis_id, notifier, event, cause, state, attempts, \
     created_ms, next_attempt_ms, done_ms, last_status, last_error";

fn notification(row: &SqliteRow) -> Result<Notification, StoreError> {
    let id: i64 = row.try_get("id")?;
    let corrupt = |field: &str, value: &str| StoreError::Corrupt {
        what: format!("notification {id} {field}"),
        reason: format!("unknown value `{value}`"),
    };
    let event: String = row.try_get("event")?;
    let state: String = row.try_get("state")?;
    Ok(Notification {
        id,
        analysis_id: row.try_get("analysis_id")?,
        notifier: row.try_get("notifier")?,
        event: Event::parse(&event).ok_or_else(|| corrupt("event", &event))?,
        cause: row.try_get("cause")?,
        state: DeliveryState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        created_ms: row.try_get("created_ms")?,
        next_attempt_ms: row.try_get("next_attempt_ms")?,
        done_ms: row.try_get("done_ms")?,
        last_status: row
            .try_get::<Option<i64>, _>("last_status")?
            .map(|s| s as u16),
        last_error: row.try_get("last_error")?,
    })
}

/// Queues `event` of analysis `id` for every recipient of the analysis that wants it,
/// inside the caller's transaction.
async fn enqueue(
    tx: &mut sqlx::SqliteConnection,
    id: &str,
    event: Event,
    cause: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notifications (analysis_id, notifier, event, cause, created_ms, \
         next_attempt_ms) SELECT analysis_id, notifier, event, ?, ?, ? FROM recipients \
         WHERE analysis_id = ? AND event = ? ON CONFLICT DO NOTHING",
    )
    .bind(cause)
    .bind(now_ms)
    .bind(now_ms)
    .bind(id)
    .bind(event.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Analysis `id` passed: every earlier failed analysis of the same canary (the same
/// baseline scope, or the same canary scope) is superseded, and its recipients that want
/// `superseded` (PagerDuty: resolve the incident) are told so, once.
async fn supersede(
    tx: &mut sqlx::SqliteConnection,
    id: &str,
    now_ms: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO notifications (analysis_id, notifier, event, cause, created_ms, \
         next_attempt_ms) \
         SELECT r.analysis_id, r.notifier, 'superseded', p.id, ?, ? \
         FROM analyses p JOIN analyses f ON f.status = 'fail' AND f.id <> p.id \
           AND f.created_ms <= p.created_ms \
           AND (json_extract(f.request, '$.baseline') = json_extract(p.request, '$.baseline') \
             OR json_extract(f.request, '$.canary') = json_extract(p.request, '$.canary')) \
         JOIN recipients r ON r.analysis_id = f.id AND r.event = 'superseded' \
         WHERE p.id = ? ON CONFLICT DO NOTHING",
    )
    .bind(now_ms)
    .bind(now_ms)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The create transaction: the analysis (unless its key exists), its recipients and
/// `started` notifications, then the row as it stands. Returns the row and whether it
/// was inserted.
async fn create_in(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    request: &ValidRequest,
    recipients: &[Recipient],
    now_ms: i64,
) -> Result<(SqliteRow, bool), StoreError> {
    let interval_ms = request.interval.as_millis() as i64;
    let mut tx = conn.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO analyses (id, key, request, model, status, interval_ms, lifetime_ms, \
         created_ms, next_due_ms) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?) \
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(id)
    .bind(&request.request.key)
    .bind(to_json(&request.request, "request")?)
    .bind(to_json(&request.model, "model")?)
    .bind(interval_ms)
    .bind(request.lifetime.as_millis() as i64)
    .bind(now_ms)
    .bind(now_ms + interval_ms)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if inserted {
        // Who hears about this analysis is fixed now; the `started` notifications
        // commit with the analysis itself.
        for r in recipients {
            for event in &r.events {
                sqlx::query(
                    "INSERT INTO recipients (analysis_id, notifier, event) VALUES (?, ?, ?) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(id)
                .bind(&r.notifier)
                .bind(event.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        enqueue(&mut tx, id, Event::Started, None, now_ms).await?;
    }
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM analyses WHERE key = ?"))
        .bind(&request.request.key)
        .fetch_one(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((row, inserted))
}

/// A lease to record under, and the partial windows the interval merged.
type Fenced<'a> = Option<(&'a Fence, &'a [(u32, String)])>;

/// The interval transaction: see [`super::Store::record_interval`] and
/// [`super::Store::record_interval_fenced`].
async fn record_interval_in(
    conn: &mut sqlx::SqliteConnection,
    id: &str,
    update: &IntervalUpdate,
    fenced: Fenced<'_>,
) -> Result<bool, StoreError> {
    let i = &update.interval;
    let mut tx = conn.begin().await?;
    // The guard makes the write conditional on the state the runner read: a cancel
    // or another writer in between turns this into a no-op instead of a clobber; under
    // a lease, so does a lease that passed to another replica.
    let advanced = sqlx::query(
        "UPDATE analyses SET status = ?, next_due_ms = ?, decided_ms = ?, intervals = ?, \
         score = ?, judgment = ?, cumulative = ? \
         WHERE id = ? AND status = 'running' AND intervals = ? \
         AND (? IS NULL OR (lease_owner = ? AND lease_fence = ?))",
    )
    .bind(update.status.as_str())
    .bind(update.next_due_ms)
    .bind(update.decided_ms)
    .bind(i.seq as i64)
    .bind(i.judgment.score)
    .bind(to_json(&i.judgment, "judgment")?)
    .bind(to_json(&update.cumulative, "cumulative")?)
    .bind(id)
    .bind(i.seq as i64 - 1)
    .bind(fenced.map(|(f, _)| f.replica.as_str()))
    .bind(fenced.map(|(f, _)| f.replica.as_str()))
    .bind(fenced.map(|(f, _)| f.fence))
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !advanced {
        tx.rollback().await?;
        return Ok(false);
    }
    if update.status.is_final() {
        sqlx::query("DELETE FROM partials WHERE analysis_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    } else if let Some((_, consumed)) = fenced {
        for (seq, replica) in consumed {
            sqlx::query("DELETE FROM partials WHERE analysis_id = ? AND seq = ? AND replica = ?")
                .bind(id)
                .bind(i64::from(*seq))
                .bind(replica)
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query(
        "INSERT INTO intervals (analysis_id, seq, start_ms, end_ms, data, judgment) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(id)
    .bind(i.seq as i64)
    .bind(i.start_ms)
    .bind(i.end_ms)
    .bind(to_json(&i.data, "interval data")?)
    .bind(to_json(&i.judgment, "judgment")?)
    .execute(&mut *tx)
    .await?;
    if let Some(event) = Event::of_status(update.status) {
        let now = update.decided_ms.unwrap_or(i.end_ms);
        enqueue(&mut tx, id, event, None, now).await?;
        if update.status == Status::Pass {
            supersede(&mut tx, id, now).await?;
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// A page's cursor time: the row's `created_ms`.
fn row_cursor_time(row: &SqliteRow) -> Result<i64, StoreError> {
    Ok(row.try_get("created_ms")?)
}

/// How long a failing store waits between two readiness probes.
const PROBE_WHILE_FAILING: Duration = Duration::from_secs(1);
/// How long a store with no successful write goes before readiness probes anyway, so a
/// disk that filled while nothing wrote is still noticed.
const PROBE_WHEN_IDLE: Duration = Duration::from_secs(30);

/// Whether the database takes writes, as the last writes found it.
///
/// Set by a write that failed for a reason the database itself has (full disk, I/O
/// error, read-only file: [`write_fault`]); cleared by the next write that commits,
/// whoever makes it (an API create, the runner's interval, the deliverer, or the
/// readiness probe, which rewrites one row of `store_probe` at most once a second while
/// the store is failing). Corruption (SQLITE_CORRUPT, SQLITE_NOTADB) is sticky: it does
/// not heal by itself, so only a restart (after an operator repaired the file) clears it.
#[derive(Debug, Default)]
struct Health {
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    failing: Option<String>,
    corrupt: Option<String>,
    last_success: Option<Instant>,
    last_probe: Option<Instant>,
}

/// Whether `e` says the database cannot write (as opposed to contention or a bad row).
fn write_fault(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
        _ => super::sqlite_code(e).is_some_and(|code| {
            matches!(
                code & 0xff,
                super::SQLITE_READONLY
                    | super::SQLITE_NOMEM
                    | super::SQLITE_IOERR
                    | super::SQLITE_FULL
                    | super::SQLITE_CANTOPEN
                    | super::SQLITE_PROTOCOL
            )
        }),
    }
}

impl Health {
    fn state(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn succeeded(&self) {
        let mut state = self.state();
        state.last_success = Some(Instant::now());
        if let Some(was) = state.failing.take() {
            tracing::info!(after = %was, "the database takes writes again");
        }
    }

    fn failed(&self, e: &StoreError) {
        let mut state = self.state();
        match e {
            StoreError::DatabaseCorrupt(_) if state.corrupt.is_none() => {
                tracing::error!(
                    error = %e,
                    "the database file is corrupt; not ready until it is repaired and the daemon restarted"
                );
                state.corrupt = Some(e.to_string());
            }
            StoreError::Database(inner) if write_fault(inner) => {
                if state.failing.is_none() {
                    tracing::error!(error = %e, "the database cannot write; not ready until a write succeeds");
                }
                state.failing = Some(e.to_string());
            }
            _ => {}
        }
    }

    /// Whether a readiness check should probe now; claims the probe if so.
    fn claim_probe(&self, now: Instant) -> bool {
        let mut state = self.state();
        let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        let due = if state.failing.is_some() {
            since(state.last_probe).is_none_or(|d| d >= PROBE_WHILE_FAILING)
        } else {
            since(state.last_success).is_none_or(|d| d >= PROBE_WHEN_IDLE)
                && since(state.last_probe).is_none_or(|d| d >= PROBE_WHILE_FAILING)
        };
        if due {
            state.last_probe = Some(now);
        }
        due
    }

    fn not_ready(&self) -> Option<NotReady> {
        let state = self.state();
        if let Some(reason) = &state.corrupt {
            return Some(NotReady {
                corrupt: true,
                reason: reason.clone(),
            });
        }
        state.failing.as_ref().map(|reason| NotReady {
            corrupt: false,
            reason: format!("the last write failed: {reason}"),
        })
    }
}

/// Keyset pagination: rows after `cursor` in (created_ms, id) order.
fn page_query(status: bool, cursor: bool) -> String {
    let mut conditions = Vec::new();
    if status {
        conditions.push("status = ?");
    }
    if cursor {
        conditions.push("(created_ms, id) > (?, ?)");
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    format!("SELECT {SUMMARY_COLUMNS} FROM analyses {filter} ORDER BY created_ms, id LIMIT ?")
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?;
        SqliteStore::open_with(options).await
    }

    /// Opens the database `options` name with the store's settings on top.
    pub(super) async fn open_with(
        options: SqliteConnectOptions,
    ) -> Result<SqliteStore, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a committed transaction survives a process crash (kill -9);
            // only an OS crash can lose the last few, which the next interval redoes.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            // A connection comes back still inside a transaction when its ROLLBACK could
            // not run (the disk was full, an I/O error) or SQLite had already rolled back
            // on its own: kept, it would hold the write lock for good, and the next
            // `begin` on it would open a savepoint inside that dead transaction, so its
            // "commit" would commit nothing. The ping first lets the rollback sqlx queued
            // when the transaction was dropped run, so only a connection whose rollback
            // failed is seen as in a transaction; closing it rolls back and unlocks.
            .after_release(|conn, _| {
                Box::pin(async move {
                    conn.ping().await?;
                    let clean = !conn.is_in_transaction();
                    if !clean {
                        tracing::warn!("a pooled connection was left inside a transaction; closed");
                    }
                    Ok(clean)
                })
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore {
            pool,
            listeners: Default::default(),
            health: Default::default(),
        })
    }

    pub fn on_change(&self, listener: ChangeListener) {
        self.listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(listener);
    }

    fn changed(&self, id: &str, kind: ChangeKind) {
        let change = Change { id, kind };
        for listener in self
            .listeners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            listener(&change);
        }
    }

    /// Notes what a read or write found about the database's health.
    fn noted<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            self.health.failed(e);
        }
        result
    }

    /// A connection for one write transaction.
    async fn writer(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        let conn = self.pool.acquire().await.map_err(StoreError::from);
        self.noted(conn)
    }

    /// Ends a write made on `conn`. A write that failed is not trusted to have left its
    /// connection clean: the connection is closed, which rolls back whatever SQLite still
    /// holds open and releases the write lock before the error reaches the caller; the
    /// pool opens a fresh one when needed. A write that committed marks the store healthy.
    async fn finish<T>(
        &self,
        conn: PoolConnection<Sqlite>,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &result {
            Ok(_) => self.health.succeeded(),
            Err(e) => {
                self.health.failed(e);
                if let Err(close) = conn.close().await {
                    tracing::warn!(error = %close, "closing the connection of a failed write");
                }
            }
        }
        result
    }

    pub async fn create(
        &self,
        request: &ValidRequest,
        recipients: &[Recipient],
        now_ms: i64,
    ) -> Result<(Analysis, bool), StoreError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let mut conn = self.writer().await?;
        let written = create_in(&mut conn, &id, request, recipients, now_ms).await;
        // Only a committed create comes back as created: `finish` returns the error of a
        // failed COMMIT, so the API never acknowledges what is not in the database.
        let (row, inserted) = self.finish(conn, written).await?;
        if inserted {
            self.changed(&id, ChangeKind::Created);
        }
        Ok((analysis(&row)?, inserted))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM analyses WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::from);
        self.noted(row)?.as_ref().map(analysis).transpose()
    }

    /// Every readable analysis (in `status`), oldest first; unreadable rows are logged
    /// and left out. [`SqliteStore::list_running`] also reports them.
    pub async fn list(&self, status: Option<Status>) -> Result<Vec<Analysis>, StoreError> {
        Ok(self.list_reporting(status).await?.0)
    }

    /// The running analyses that can be read, and the running rows that cannot (by id,
    /// with the reason), oldest first.
    pub async fn list_running(&self) -> Result<(Vec<Analysis>, Vec<Unreadable>), StoreError> {
        self.list_reporting(Some(Status::Running)).await
    }

    async fn list_reporting(
        &self,
        status: Option<Status>,
    ) -> Result<(Vec<Analysis>, Vec<Unreadable>), StoreError> {
        let rows = match status {
            Some(s) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM analyses WHERE status = ? ORDER BY created_ms, id"
                ))
                .bind(s.as_str())
                .fetch_all(&self.pool)
                .await
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM analyses ORDER BY created_ms, id"
                ))
                .fetch_all(&self.pool)
                .await
            }
        }
        .map_err(StoreError::from);
        Ok(readable(&self.noted(rows)?))
    }

    /// One page of summaries, oldest first, after `after`.
    pub async fn list_page(
        &self,
        status: Option<Status>,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let sql = page_query(status.is_some(), after.is_some());
        let mut query = sqlx::query(&sql);
        if let Some(s) = status {
            query = query.bind(s.as_str());
        }
        if let Some(c) = after {
            query = query.bind(c.created_ms).bind(c.id.as_str());
        }
        // One row past the page says whether there is a next one.
        let rows = query
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from);
        let rows = self.noted(rows)?;
        let more = rows.len() > limit as usize;
        let rows = &rows[..rows.len().min(limit as usize)];
        let mut page = Page {
            analyses: Vec::with_capacity(rows.len()),
            unreadable: Vec::new(),
            next: None,
        };
        for row in rows {
            match summary(row) {
                Ok(s) => page.analyses.push(s),
                Err(reason) => page.unreadable.push(quarantined(row_id(row), reason)),
            }
        }
        if more && let Some(last) = rows.last() {
            page.next = Some(Cursor {
                created_ms: row_cursor_time(last)?,
                id: last.try_get("id")?,
            });
        }
        Ok(page)
    }

    /// How many analyses there are in each status (rows with an unknown status are not
    /// counted).
    pub async fn count_by_status(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM analyses GROUP BY status")
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::from);
        let mut counts = Vec::new();
        for row in self.noted(rows)? {
            let status: String = row.try_get("status")?;
            if let Some(s) = Status::parse(&status) {
                counts.push((s, row.try_get::<i64, _>("n")? as u64));
            }
        }
        Ok(counts)
    }

    /// Whether the store can serve: not corrupt, writing (a probe write when due, see
    /// [`Health`]), and answering a read.
    pub async fn ready(&self) -> Result<(), NotReady> {
        if self.health.claim_probe(Instant::now()) {
            // The probe's outcome lands in the health state, read below.
            let _ = self.probe().await;
        }
        if let Some(not_ready) = self.health.not_ready() {
            return Err(not_ready);
        }
        // Any read will do; an id that cannot exist keeps it to one index probe.
        self.get("").await.map(|_| ()).map_err(|e| NotReady {
            corrupt: matches!(e, StoreError::DatabaseCorrupt(_)),
            reason: e.to_string(),
        })
    }

    /// One small write: rewrites the probe row.
    async fn probe(&self) -> Result<(), StoreError> {
        let mut conn = self.writer().await?;
        let written = async {
            let mut tx = conn.begin().await?;
            sqlx::query(
                "INSERT INTO store_probe (id, at_ms) VALUES (1, ?) \
                 ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
            )
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await;
        self.finish(conn, written).await
    }

    pub async fn intervals(&self, id: &str) -> Result<Vec<Interval>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, start_ms, end_ms, data, judgment FROM intervals \
             WHERE analysis_id = ? ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from);
        self.noted(rows)?
            .iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let what = format!("analysis {id} interval {seq}");
                Ok(Interval {
                    seq: seq as u32,
                    start_ms: row.try_get("start_ms")?,
                    end_ms: row.try_get("end_ms")?,
                    data: from_json(&row.try_get::<String, _>("data")?, &what)?,
                    judgment: from_json(&row.try_get::<String, _>("judgment")?, &what)?,
                })
            })
            .collect()
    }

    pub async fn record_interval(
        &self,
        id: &str,
        update: &IntervalUpdate,
    ) -> Result<bool, StoreError> {
        self.record_interval_with(id, update, None).await
    }

    pub(crate) async fn record_interval_with(
        &self,
        id: &str,
        update: &IntervalUpdate,
        fenced: Fenced<'_>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.writer().await?;
        let written = record_interval_in(&mut conn, id, update, fenced).await;
        let advanced = self.finish(conn, written).await?;
        if advanced {
            self.changed(id, ChangeKind::Recorded(update.status));
        }
        Ok(advanced)
    }

    pub async fn cancel(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<(Analysis, bool)>, StoreError> {
        let mut conn = self.writer().await?;
        let written = async {
            let mut tx = conn.begin().await?;
            let cancelled = sqlx::query(
                "UPDATE analyses SET status = 'cancelled', decided_ms = ? \
                 WHERE id = ? AND status = 'running'",
            )
            .bind(now_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if cancelled {
                enqueue(&mut tx, id, Event::Cancelled, None, now_ms).await?;
                sqlx::query("DELETE FROM partials WHERE analysis_id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(cancelled)
        }
        .await;
        let cancelled = self.finish(conn, written).await?;
        if cancelled {
            self.changed(id, ChangeKind::Cancelled);
        }
        Ok(self.get(id).await?.map(|a| (a, cancelled)))
    }

    /// The outbox rows of analysis `id`, oldest first.
    pub async fn notifications(&self, id: &str) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE analysis_id = ? ORDER BY id"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notification).collect()
    }

    /// Pending rows due by `now_ms`, oldest first, at most `limit`. A row waits while an
    /// older row for the same analysis and notifier is pending, so a receiver hears about
    /// an analysis in order (a PagerDuty resolve never overtakes its trigger).
    pub async fn due_notifications(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications n \
             WHERE state = 'pending' AND next_attempt_ms <= ? AND NOT EXISTS ( \
               SELECT 1 FROM notifications o WHERE o.analysis_id = n.analysis_id \
               AND o.notifier = n.notifier AND o.state = 'pending' AND o.id < n.id) \
             ORDER BY id LIMIT ?"
        ))
        .bind(now_ms)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(notification).collect()
    }

    /// When the next pending row is due, and how many are pending.
    pub async fn pending_notifications(&self) -> Result<(Option<i64>, u64), StoreError> {
        let row = sqlx::query(
            "SELECT MIN(next_attempt_ms) AS next, COUNT(*) AS n FROM notifications \
             WHERE state = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((row.try_get("next")?, row.try_get::<i64, _>("n")? as u64))
    }

    /// Records an attempt at row `id` and moves the row on: delivered, given up, or due
    /// again at `attempt.next_attempt_ms`. Only a pending row moves.
    pub async fn record_attempt(&self, id: i64, attempt: &Attempt) -> Result<(), StoreError> {
        let (state, done) = match attempt.outcome {
            Outcome::Delivered => (DeliveryState::Delivered, Some(attempt.at_ms)),
            Outcome::Failed => (DeliveryState::Failed, Some(attempt.at_ms)),
            Outcome::Retry => (DeliveryState::Pending, None),
        };
        let mut conn = self.writer().await?;
        let written = async {
            let mut tx = conn.begin().await?;
            // Write first: a transaction that read before writing could not take the write
            // lock after another writer committed (SQLite answers busy at once, whatever
            // the timeout), and an attempt left unrecorded would be sent again.
            let attempts: Option<i64> = sqlx::query_scalar(
                "UPDATE notifications SET state = ?, attempts = attempts + 1, \
                 next_attempt_ms = ?, done_ms = ?, last_status = ?, last_error = ?, \
                 claimed_by = NULL, claim_until_ms = 0 \
                 WHERE id = ? AND state = 'pending' RETURNING attempts",
            )
            .bind(state.as_str())
            .bind(attempt.next_attempt_ms)
            .bind(done)
            .bind(attempt.status.map(i64::from))
            .bind(&attempt.error)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(n) = attempts else {
                tx.rollback().await?;
                return Ok(());
            };
            sqlx::query(
                "INSERT INTO notification_attempts (notification_id, attempt, at_ms, \
                 duration_ms, status, outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(id)
            .bind(n)
            .bind(attempt.at_ms)
            .bind(attempt.duration_ms)
            .bind(attempt.status.map(i64::from))
            .bind(attempt.outcome.as_str())
            .bind(&attempt.error)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await;
        self.finish(conn, written).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::AnalysisRequest;
    use crate::model::Catalog;

    fn request(key: &str, version: &str) -> ValidRequest {
        let r: AnalysisRequest = serde_json::from_value(serde_json::json!({
            "key": key, "model": "http-red",
            "baseline": {"service.name": "s", "service.version": "1"},
            "canary": {"service.name": "s", "service.version": version},
            "interval": "1s", "lifetime": "1h"}))
        .unwrap();
        r.validate(&Catalog::builtin()).unwrap()
    }

    async fn open(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(&url(dir)).await.unwrap()
    }

    fn url(dir: &tempfile::TempDir) -> String {
        format!("sqlite://{}", dir.path().join("a.db").display())
    }

    /// A connection to the same file outside the store's pool, as another process has.
    async fn outsider(dir: &tempfile::TempDir) -> SqlitePool {
        let options = SqliteConnectOptions::from_str(&url(dir))
            .unwrap()
            .busy_timeout(Duration::from_secs(5));
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .unwrap()
    }

    async fn keys(pool: &SqlitePool) -> Vec<String> {
        sqlx::query_scalar("SELECT key FROM analyses ORDER BY key")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_connection_left_inside_a_transaction_never_goes_back_to_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        {
            // A write whose rollback never ran, as when ROLLBACK fails on a full disk:
            // the transaction stays open on the connection and holds the write lock.
            let mut conn = store.pool.acquire().await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("INSERT INTO store_probe (id, at_ms) VALUES (1, 1)")
                .execute(&mut *tx)
                .await
                .unwrap();
            std::mem::forget(tx);
        }
        // Were that connection reused, this create would either wait out the lock and
        // fail, or run inside the dead transaction and "commit" nothing.
        for key in ["a", "b", "c", "d", "e"] {
            store.create(&request(key, "2"), &[], 1_000).await.unwrap();
        }
        let others = outsider(&dir).await;
        assert_eq!(keys(&others).await, ["a", "b", "c", "d", "e"]);
        let probe: Option<i64> = sqlx::query_scalar("SELECT at_ms FROM store_probe")
            .fetch_optional(&others)
            .await
            .unwrap();
        assert_eq!(probe, None, "the abandoned write was rolled back");
    }

    #[tokio::test]
    async fn a_failed_write_is_not_acknowledged_holds_no_lock_and_makes_the_store_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let pages: i64 = {
            let store = open(&dir).await;
            store
                .create(&request("first", "2"), &[], 1_000)
                .await
                .unwrap();
            let pages = sqlx::query_scalar("PRAGMA page_count")
                .fetch_one(&store.pool)
                .await
                .unwrap();
            store.close().await;
            pages
        };
        // A database that may not grow: the next writes fail with SQLITE_FULL, as on a
        // full disk.
        let options = SqliteConnectOptions::from_str(&url(&dir))
            .unwrap()
            .pragma("max_page_count", (pages + 2).to_string());
        let store = SqliteStore::open_with(options).await.unwrap();
        assert_eq!(store.ready().await, Ok(()));
        let mut failed = None;
        for n in 0..200 {
            match store
                .create(&request(&format!("k{n}"), "2"), &[], 1_000)
                .await
            {
                Ok(_) => {}
                Err(e) => {
                    failed = Some((format!("k{n}"), e));
                    break;
                }
            }
        }
        let (key, e) = failed.expect("the database filled up");
        let StoreError::Database(inner) = &e else {
            panic!("a full database is retryable, not {e:?}");
        };
        assert_eq!(super::super::sqlite_code(inner).map(|c| c & 0xff), Some(13));
        // (The health state itself: a probe here could rewrite its row in place, which
        // a page limit does not stop the way a full disk does.)
        let not_ready = store
            .health
            .not_ready()
            .expect("not ready after a failed write");
        assert!(!not_ready.corrupt);
        assert!(not_ready.reason.contains("full"), "{}", not_ready.reason);

        // Nothing holds the write lock, and the failed create is not there.
        let others = outsider(&dir).await;
        assert!(!keys(&others).await.contains(&key));
        sqlx::query("DELETE FROM analyses")
            .execute(&others)
            .await
            .unwrap();
        // With room again, the next write commits and the store is ready at once.
        store.create(&request(&key, "2"), &[], 1_000).await.unwrap();
        assert_eq!(store.health.not_ready(), None);
        assert_eq!(store.ready().await, Ok(()));
        assert_eq!(keys(&others).await, [key]);
    }

    #[tokio::test]
    async fn unreadable_rows_are_quarantined_and_the_others_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        let mut ids = Vec::new();
        for (n, key) in [
            "good1",
            "status",
            "request",
            "judgment",
            "cumulative",
            "good2",
        ]
        .iter()
        .enumerate()
        {
            let (a, _) = store
                .create(&request(key, "2"), &[], 1_000 + n as i64)
                .await
                .unwrap();
            ids.push(a.id);
        }
        for (id, set) in ids[1..5].iter().zip([
            "status = 'paused'",
            "request = '{\"key\": '",
            "judgment = 'not json'",
            "cumulative = '[1, 2'",
        ]) {
            sqlx::query(&format!("UPDATE analyses SET {set} WHERE id = ?"))
                .bind(id)
                .execute(&store.pool)
                .await
                .unwrap();
        }

        let page = store.list_page(None, None, 100).await.unwrap();
        let listed: Vec<&str> = page.analyses.iter().map(|s| s.key.as_str()).collect();
        // The list does not read the cumulative data, so that row still lists.
        assert_eq!(listed, ["good1", "cumulative", "good2"]);
        let reasons: Vec<(&str, &str)> = page
            .unreadable
            .iter()
            .map(|u| (u.id.as_str(), u.reason.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (ids[1].as_str(), "status: unknown status `paused`"),
                (ids[2].as_str(), "request: not valid JSON"),
                (ids[3].as_str(), "judgment: not valid JSON"),
            ]
        );

        // The runner's resume list: the readable running analyses, and the others by id.
        let (running, unreadable) = store.list_running().await.unwrap();
        let running: Vec<&str> = running.iter().map(|a| a.key.as_str()).collect();
        assert_eq!(running, ["good1", "good2"]);
        let bad: Vec<&str> = unreadable.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(bad, [&ids[2], &ids[3], &ids[4]]);
        assert!(
            unreadable[2].reason.contains("cumulative is corrupt"),
            "{}",
            unreadable[2].reason
        );

        // One by one: the bad ones name what is wrong, the good ones read.
        for (id, field) in ids[1..5]
            .iter()
            .zip(["status", "request", "judgment", "cumulative"])
        {
            match store.get(id).await {
                Err(StoreError::Corrupt { what, .. }) => {
                    assert_eq!(what, format!("analysis {id} {field}"));
                }
                other => panic!("{field}: {other:?}"),
            }
        }
        assert!(store.get(&ids[0]).await.unwrap().is_some());
        assert_eq!(
            store.ready().await,
            Ok(()),
            "a bad row is not a bad database"
        );
    }

    #[tokio::test]
    async fn pages_follow_the_cursor_in_creation_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir).await;
        // Pairs share a creation time, so the order within them is by id.
        for n in 0..7i64 {
            store
                .create(&request(&format!("k{n}"), "2"), &[], 1_000 + n / 2)
                .await
                .unwrap();
        }
        let (b, _) = store.create(&request("b", "2"), &[], 0).await.unwrap();
        store.cancel(&b.id, 5).await.unwrap();
        let all: Vec<String> = store
            .list(None)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(all.len(), 8);

        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        let mut pages = 0;
        loop {
            let page = store.list_page(None, cursor.as_ref(), 3).await.unwrap();
            pages += 1;
            assert!(page.analyses.len() <= 3);
            seen.extend(page.analyses.into_iter().map(|s| s.id));
            match page.next {
                Some(next) => {
                    let text = next.encode();
                    cursor = Some(Cursor::decode(&text).unwrap());
                    assert_eq!(cursor.as_ref(), Some(&next));
                }
                None => break,
            }
        }
        assert_eq!(seen, all);
        assert_eq!(pages, 3);
        let first = store.list_page(None, None, 8).await.unwrap();
        assert_eq!(first.next, None, "no empty page after the last one");

        let running = store
            .list_page(Some(Status::Running), None, 100)
            .await
            .unwrap();
        assert_eq!(running.analyses.len(), 7);
        let cancelled = store
            .list_page(Some(Status::Cancelled), None, 100)
            .await
            .unwrap();
        let s = &cancelled.analyses[0];
        assert_eq!((s.id.as_str(), s.key.as_str()), (b.id.as_str(), "b"));
        assert_eq!(
            (s.model.as_str(), s.planned_intervals()),
            ("http-red", 3600)
        );
        assert_eq!(
            s.canary.get("service.version").map(String::as_str),
            Some("2")
        );
        assert_eq!(s.decided_ms, Some(5));

        for bad in ["", "12", "x.00", "12.zz", "12.ff"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_damaged_database_file_is_corrupt_not_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(&dir).await;
            for n in 0..300 {
                store
                    .create(&request(&format!("key-{n:04}"), &"9".repeat(200)), &[], n)
                    .await
                    .unwrap();
            }
            // Closing the last connection checkpoints the WAL into the file.
            store.close().await;
        }
        let path = dir.path().join("a.db");
        let mut bytes = std::fs::read(&path).unwrap();
        let pages = bytes.len() / 4096;
        assert!(pages > 40, "{pages} pages");
        // Ten pages in the middle of the file overwritten, as a bad sector would.
        let from = pages / 2 * 4096;
        bytes[from..from + 10 * 4096].fill(0xff);
        std::fs::write(&path, &bytes).unwrap();

        let store = open(&dir).await;
        let e = store.list_page(None, None, 1000).await.unwrap_err();
        assert!(matches!(e, StoreError::DatabaseCorrupt(_)), "{e:?}");
        let not_ready = store.ready().await.unwrap_err();
        assert!(not_ready.corrupt, "{not_ready:?}");
        assert!(not_ready.reason.contains("corrupt"), "{}", not_ready.reason);
    }
}
