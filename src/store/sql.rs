//! The store over a SQL database, written once for both backends: every query, every
//! transaction and the readiness logic. A backend ([`Backend`]) contributes what differs:
//! how a connection is opened, how its JSON functions are spelled and which of its errors
//! mean the database cannot write.
//!
//! The SQL is the common subset of SQLite and PostgreSQL, with `$N` parameters (SQLite
//! takes them as named parameters, sqlx binds them by number). Every state change is one
//! transaction whose writes are guarded by the state they expect (`WHERE status =
//! 'running' AND intervals = ?`, `ON CONFLICT DO NOTHING`): SQLite serializes writers with
//! its lock, and on PostgreSQL (read committed) a concurrent writer's guarded UPDATE waits
//! for the row and re-checks its condition on the committed version, so two replicas
//! sharing a database never both advance, cancel or create the same analysis.

mod kayenta;
mod replicas;

use std::sync::{Arc, RwLock};
use std::time::Instant;

use sqlx::pool::{PoolConnection, PoolOptions};
use sqlx::{Connection, Database, Encode, Executor, IntoArguments, Pool, Type};

use super::health::Health;
use super::replicas::Fence;
use super::rows::{
    COLUMNS, Columns, NOTIFICATION_COLUMNS, analysis, interval, notification, quarantined,
    readable, row_id, summary, summary_columns, to_json,
};
use super::{
    Change, ChangeKind, ChangeListener, Cursor, IntervalUpdate, NotReady, Page, StoreError,
    Unreadable,
};
use crate::analysis::{Analysis, Interval, Status, ValidRequest};
use crate::clock::now_ms;
use crate::notify::{Attempt, DeliveryState, Event, Notification, Outcome, Recipient};

/// What a database brings to [`SqlStore`].
pub trait Backend: Database {
    /// SQL: whether the JSON text in column `doc` is a valid document (a boolean).
    fn json_valid(doc: &str) -> String;
    /// SQL: member `name` of the JSON object in column `doc`, as text (a string's value,
    /// an object's JSON).
    fn json_field(doc: &str, name: &str) -> String;
    fn rows_affected(result: &Self::QueryResult) -> u64;
    /// Whether `e` says the database cannot take writes (full disk, I/O error, a server
    /// that cannot be reached), as opposed to contention or a bad row.
    fn write_fault(e: &sqlx::Error) -> bool;
}

/// The pool settings both backends share. A connection comes back still inside a
/// transaction when its ROLLBACK could not run (the disk was full, an I/O error, the
/// server went away) or the database had already rolled back on its own: kept, it would
/// hold its locks for good (SQLite's write lock), and the next `begin` on it would open a
/// savepoint inside that dead transaction, so its "commit" would commit nothing. The ping
/// first lets the rollback sqlx queued when the transaction was dropped run, so only a
/// connection whose rollback failed is seen as in a transaction; closing it rolls back
/// and unlocks.
pub(super) fn pool_options<B: Backend>(max_connections: u32) -> PoolOptions<B> {
    PoolOptions::<B>::new()
        .max_connections(max_connections)
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
}

/// A lease to record under, and the partial windows the interval merged.
type Fenced<'a> = Option<(&'a Fence, &'a [(u32, String)])>;

/// The store on database `B`.
pub struct SqlStore<B: Backend> {
    pub(super) pool: Pool<B>,
    listeners: Arc<RwLock<Vec<ChangeListener>>>,
    pub(super) health: Arc<Health>,
}

impl<B: Backend> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        SqlStore {
            pool: self.pool.clone(),
            listeners: self.listeners.clone(),
            health: self.health.clone(),
        }
    }
}

impl<B: Backend> std::fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlStore")
            .field("backend", &B::NAME)
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// Keyset pagination: rows after the cursor in (created_ms, id) order, with the
/// parameters numbered as they are bound: the status, the cursor, the limit.
fn page_query(columns: &str, status: bool, cursor: bool) -> String {
    let mut n = 0;
    let mut next = || {
        n += 1;
        format!("${n}")
    };
    let mut conditions = Vec::new();
    if status {
        conditions.push(format!("status = {}", next()));
    }
    if cursor {
        conditions.push(format!("(created_ms, id) > ({}, {})", next(), next()));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    format!(
        "SELECT {columns} FROM analyses {filter} ORDER BY created_ms, id LIMIT {}",
        next()
    )
}

impl<B: Backend> SqlStore<B>
where
    for<'c> &'c mut B::Connection: Executor<'c, Database = B>,
    for<'q> B::Arguments<'q>: IntoArguments<'q, B>,
    B::Row: Columns,
    for<'q> &'q str: Encode<'q, B> + Type<B>,
    for<'q> String: Encode<'q, B> + Type<B>,
    for<'q> i64: Encode<'q, B> + Type<B>,
    for<'q> f64: Encode<'q, B> + Type<B>,
    for<'q> Option<&'q str>: Encode<'q, B>,
    for<'q> Option<i64>: Encode<'q, B>,
{
    /// A store on `pool`, whose schema is up to date.
    pub(super) fn new(pool: Pool<B>) -> SqlStore<B> {
        SqlStore {
            pool,
            listeners: Default::default(),
            health: Default::default(),
        }
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
    fn noted<T>(&self, result: Result<T, sqlx::Error>) -> Result<T, StoreError> {
        let result = result.map_err(StoreError::from);
        if let Err(e) = &result {
            self.health.failed(e, B::write_fault);
        }
        result
    }

    /// Runs `body` in one write transaction and commits it. A guarded write whose guard
    /// failed commits nothing, which is as good as a rollback.
    ///
    /// Only a committed write comes back `Ok`: the error of a failed COMMIT is returned,
    /// so the API never acknowledges what is not in the database. A write that failed is
    /// not trusted to have left its connection clean: the connection is closed, which
    /// rolls back whatever the database still holds open and releases its locks before
    /// the error reaches the caller; the pool opens a fresh one when needed. A write that
    /// committed marks the store healthy.
    async fn write<T>(
        &self,
        body: impl AsyncFnOnce(&mut B::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.noted(self.pool.acquire().await)?;
        let result = async {
            let mut tx = conn.begin().await?;
            let out = body(&mut tx).await?;
            tx.commit().await?;
            Ok(out)
        }
        .await;
        self.finished(conn, result).await
    }

    async fn finished<T>(
        &self,
        conn: PoolConnection<B>,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &result {
            Ok(_) => self.health.succeeded(),
            Err(e) => {
                self.health.failed(e, B::write_fault);
                if let Err(close) = conn.close().await {
                    tracing::warn!(error = %close, "closing the connection of a failed write");
                }
            }
        }
        result
    }

    /// Queues `event` of analysis `id` for every recipient of the analysis that wants it,
    /// inside the caller's transaction.
    async fn enqueue(
        tx: &mut B::Connection,
        id: &str,
        event: Event,
        cause: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO notifications (analysis_id, notifier, event, cause, created_ms, \
             next_attempt_ms) SELECT analysis_id, notifier, event, $1, $2, $3 FROM recipients \
             WHERE analysis_id = $4 AND event = $5 ON CONFLICT DO NOTHING",
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
    /// baseline scope, or the same canary scope) is superseded, and its recipients that
    /// want `superseded` (PagerDuty: resolve the incident) are told so, once.
    async fn supersede(tx: &mut B::Connection, id: &str, now_ms: i64) -> Result<(), StoreError> {
        let same = |scope: &str| {
            format!(
                "{} = {}",
                B::json_field("f.request", scope),
                B::json_field("p.request", scope)
            )
        };
        sqlx::query(&format!(
            "INSERT INTO notifications (analysis_id, notifier, event, cause, created_ms, \
             next_attempt_ms) \
             SELECT r.analysis_id, r.notifier, 'superseded', p.id, $1, $2 \
             FROM analyses p JOIN analyses f ON f.status = 'fail' AND f.id <> p.id \
               AND f.created_ms <= p.created_ms AND ({} OR {}) \
             JOIN recipients r ON r.analysis_id = f.id AND r.event = 'superseded' \
             WHERE p.id = $3 ON CONFLICT DO NOTHING",
            same("baseline"),
            same("canary"),
        ))
        .bind(now_ms)
        .bind(now_ms)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// The create transaction: the analysis (unless its key exists), its recipients and
    /// `started` notifications, then the row as it stands. Returns the row and whether it
    /// was inserted. A concurrent create of the same key (another replica's) makes the
    /// INSERT wait for it and then do nothing, and the row read is the one it committed.
    async fn create_in(
        tx: &mut B::Connection,
        id: &str,
        request: &ValidRequest,
        recipients: &[Recipient],
        now_ms: i64,
    ) -> Result<(B::Row, bool), StoreError> {
        let interval_ms = request.interval.as_millis() as i64;
        let inserted = B::rows_affected(
            &sqlx::query(
                "INSERT INTO analyses (id, key, request, model, status, interval_ms, \
                 lifetime_ms, created_ms, next_due_ms) \
                 VALUES ($1, $2, $3, $4, 'running', $5, $6, $7, $8) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(id)
            .bind(request.request.key.as_str())
            .bind(to_json(&request.request, "request")?)
            .bind(to_json(&request.model, "model")?)
            .bind(interval_ms)
            .bind(request.lifetime.as_millis() as i64)
            .bind(now_ms)
            // A window that began in the past has its first interval end there too; the
            // runner judges the intervals already over at once.
            .bind(request.start_ms.unwrap_or(now_ms) + interval_ms)
            .execute(&mut *tx)
            .await?,
        ) == 1;
        if inserted {
            // Who hears about this analysis is fixed now; the `started` notifications
            // commit with the analysis itself.
            for r in recipients {
                for event in &r.events {
                    sqlx::query(
                        "INSERT INTO recipients (analysis_id, notifier, event) \
                         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(r.notifier.as_str())
                    .bind(event.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            Self::enqueue(tx, id, Event::Started, None, now_ms).await?;
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM analyses WHERE key = $1"))
            .bind(request.request.key.as_str())
            .fetch_one(&mut *tx)
            .await?;
        Ok((row, inserted))
    }

    /// The interval transaction: see [`super::Store::record_interval`] and
    /// [`super::Store::record_interval_fenced`].
    async fn record_interval_in(
        tx: &mut B::Connection,
        id: &str,
        update: &IntervalUpdate,
        fenced: Fenced<'_>,
    ) -> Result<bool, StoreError> {
        let i = &update.interval;
        // The guard makes the write conditional on the state the runner read: a cancel
        // or another writer in between turns this into a no-op instead of a clobber; under
        // a lease, so does a lease that passed to another replica.
        let advanced = B::rows_affected(
            &sqlx::query(
                "UPDATE analyses SET status = $1, next_due_ms = $2, decided_ms = $3, \
                 intervals = $4, score = $5, judgment = $6, cumulative = $7 \
                 WHERE id = $8 AND status = 'running' AND intervals = $9 \
                 AND ($10 IS NULL OR (lease_owner = $10 AND lease_fence = $11))",
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
            .bind(fenced.map(|(f, _)| f.fence))
            .execute(&mut *tx)
            .await?,
        ) == 1;
        if !advanced {
            return Ok(false);
        }
        if update.status.is_final() {
            sqlx::query("DELETE FROM partials WHERE analysis_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        } else if let Some((_, consumed)) = fenced {
            for (seq, replica) in consumed {
                sqlx::query(
                    "DELETE FROM partials WHERE analysis_id = $1 AND seq = $2 AND replica = $3",
                )
                .bind(id)
                .bind(i64::from(*seq))
                .bind(replica.as_str())
                .execute(&mut *tx)
                .await?;
            }
        }
        sqlx::query(
            "INSERT INTO intervals (analysis_id, seq, start_ms, end_ms, data, judgment) \
             VALUES ($1, $2, $3, $4, $5, $6)",
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
            Self::enqueue(tx, id, event, None, now).await?;
            if update.status == Status::Pass {
                Self::supersede(tx, id, now).await?;
            }
        }
        Ok(true)
    }

    pub async fn create(
        &self,
        request: &ValidRequest,
        recipients: &[Recipient],
        now_ms: i64,
    ) -> Result<(Analysis, bool), StoreError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let (row, inserted) = self
            .write(async |tx| Self::create_in(tx, &id, request, recipients, now_ms).await)
            .await?;
        if inserted {
            self.changed(&id, ChangeKind::Created);
        }
        Ok((analysis(&row)?, inserted))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM analyses WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await;
        self.noted(row)?.as_ref().map(analysis).transpose()
    }

    /// The analysis a create with `key` made, if any.
    pub async fn get_by_key(&self, key: &str) -> Result<Option<Analysis>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM analyses WHERE key = $1"))
            .bind(key)
            .fetch_optional(&self.pool)
            .await;
        self.noted(row)?.as_ref().map(analysis).transpose()
    }

    /// Every readable analysis (in `status`), oldest first; unreadable rows are logged
    /// and left out. [`SqlStore::list_running`] also reports them.
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
                    "SELECT {COLUMNS} FROM analyses WHERE status = $1 ORDER BY created_ms, id"
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
        };
        Ok(readable(&self.noted(rows)?))
    }

    /// One page of summaries, oldest first, after `after`.
    pub async fn list_page(
        &self,
        status: Option<Status>,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let columns = summary_columns(B::json_valid, B::json_field);
        let sql = page_query(&columns, status.is_some(), after.is_some());
        let mut query = sqlx::query(&sql);
        if let Some(s) = status {
            query = query.bind(s.as_str());
        }
        if let Some(c) = after {
            query = query.bind(c.created_ms).bind(c.id.as_str());
        }
        // One row past the page says whether there is a next one.
        let rows = query.bind(i64::from(limit) + 1).fetch_all(&self.pool).await;
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
                created_ms: last.int("created_ms")?,
                id: last.text("id")?,
            });
        }
        Ok(page)
    }

    /// How many analyses there are in each status (rows with an unknown status are not
    /// counted).
    pub async fn count_by_status(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM analyses GROUP BY status")
            .fetch_all(&self.pool)
            .await;
        let mut counts = Vec::new();
        for row in self.noted(rows)? {
            if let Some(s) = Status::parse(&row.text("status")?) {
                counts.push((s, row.int("n")? as u64));
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
        self.write(async |tx| {
            sqlx::query(
                "INSERT INTO store_probe (id, at_ms) VALUES (1, $1) \
                 ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
            )
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
        .await
    }

    pub async fn intervals(&self, id: &str) -> Result<Vec<Interval>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, start_ms, end_ms, data, judgment FROM intervals \
             WHERE analysis_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await;
        self.noted(rows)?
            .iter()
            .map(|row| interval(row, id))
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
        let advanced = self
            .write(async |tx| Self::record_interval_in(tx, id, update, fenced).await)
            .await?;
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
        let cancelled = self
            .write(async |tx| {
                let cancelled = B::rows_affected(
                    &sqlx::query(
                        "UPDATE analyses SET status = 'cancelled', decided_ms = $1 \
                         WHERE id = $2 AND status = 'running'",
                    )
                    .bind(now_ms)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?,
                ) == 1;
                if cancelled {
                    Self::enqueue(tx, id, Event::Cancelled, None, now_ms).await?;
                    sqlx::query("DELETE FROM partials WHERE analysis_id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                Ok(cancelled)
            })
            .await?;
        if cancelled {
            self.changed(id, ChangeKind::Cancelled);
        }
        Ok(self.get(id).await?.map(|a| (a, cancelled)))
    }

    /// The revision of gate canary `canary` being judged (0 until one ended).
    pub async fn gate_revision(&self, canary: &str) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT revision FROM gate_revisions WHERE canary = $1")
            .bind(canary)
            .fetch_optional(&self.pool)
            .await;
        match self.noted(row)? {
            Some(row) => Ok(row.int("revision")?),
            None => Ok(0),
        }
    }

    /// Ends revision `revision` of gate canary `canary`: the next is `revision + 1`. A
    /// repeat (the canary has moved on already) changes nothing.
    pub async fn end_gate_revision(&self, canary: &str, revision: i64) -> Result<(), StoreError> {
        self.write(async |tx| {
            sqlx::query(
                "INSERT INTO gate_revisions (canary, revision) VALUES ($1, $2) \
                 ON CONFLICT (canary) DO UPDATE SET revision = excluded.revision \
                 WHERE gate_revisions.revision < excluded.revision",
            )
            .bind(canary)
            .bind(revision + 1)
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
        .await
    }

    /// Notes that running analysis `id` was asked for at `at_ms` (a later note wins).
    pub async fn note_asked(&self, id: &str, at_ms: i64) -> Result<(), StoreError> {
        self.write(async |tx| {
            sqlx::query(
                "UPDATE analyses SET asked_ms = $1 WHERE id = $2 AND status = 'running' \
                 AND (asked_ms IS NULL OR asked_ms < $1)",
            )
            .bind(at_ms)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
        .await
    }

    /// When analysis `id` was last asked for (None: not since its creation, or unknown).
    pub async fn asked_ms(&self, id: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT asked_ms FROM analyses WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await;
        match self.noted(row)? {
            Some(row) => Ok(row.int_opt("asked_ms")?),
            None => Ok(None),
        }
    }

    /// The outbox rows of analysis `id`, oldest first.
    pub async fn notifications(&self, id: &str) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE analysis_id = $1 \
             ORDER BY id"
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
             WHERE state = 'pending' AND next_attempt_ms <= $1 AND NOT EXISTS ( \
               SELECT 1 FROM notifications o WHERE o.analysis_id = n.analysis_id \
               AND o.notifier = n.notifier AND o.state = 'pending' AND o.id < n.id) \
             ORDER BY id LIMIT $2"
        ))
        .bind(now_ms)
        .bind(i64::from(limit))
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
        Ok((row.int_opt("next")?, row.int("n")? as u64))
    }

    /// Records an attempt at row `id` and moves the row on: delivered, given up, or due
    /// again at `attempt.next_attempt_ms`. Only a pending row moves.
    pub async fn record_attempt(&self, id: i64, attempt: &Attempt) -> Result<(), StoreError> {
        let (state, done) = match attempt.outcome {
            Outcome::Delivered => (DeliveryState::Delivered, Some(attempt.at_ms)),
            Outcome::Failed => (DeliveryState::Failed, Some(attempt.at_ms)),
            Outcome::Retry => (DeliveryState::Pending, None),
        };
        self.write(async |tx| {
            // Write first: a SQLite transaction that read before writing could not take
            // the write lock after another writer committed (SQLite answers busy at once,
            // whatever the timeout), and an attempt left unrecorded would be sent again.
            // (On PostgreSQL a concurrent recorder waits for the row and re-checks it.)
            let attempts = sqlx::query(
                "UPDATE notifications SET state = $1, attempts = attempts + 1, \
                 next_attempt_ms = $2, done_ms = $3, last_status = $4, last_error = $5, \
                 claimed_by = NULL, claim_until_ms = 0 \
                 WHERE id = $6 AND state = 'pending' RETURNING attempts",
            )
            .bind(state.as_str())
            .bind(attempt.next_attempt_ms)
            .bind(done)
            .bind(attempt.status.map(i64::from))
            .bind(attempt.error.as_deref())
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = attempts else {
                return Ok(());
            };
            sqlx::query(
                "INSERT INTO notification_attempts (notification_id, attempt, at_ms, \
                 duration_ms, status, outcome, error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(row.int("attempts")?)
            .bind(attempt.at_ms)
            .bind(attempt.duration_ms)
            .bind(attempt.status.map(i64::from))
            .bind(attempt.outcome.as_str())
            .bind(attempt.error.as_deref())
            .execute(&mut *tx)
            .await?;
            Ok(())
        })
        .await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
