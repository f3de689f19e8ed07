//! SQLite backend: one file, WAL journal, migrations embedded in the binary.

use std::str::FromStr;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::{ChangeListener, IntervalUpdate, StoreError};
use crate::analysis::{Analysis, Interval, Status, ValidRequest};
use crate::notify::{Attempt, DeliveryState, Event, Notification, Outcome, Recipient};

#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    listeners: std::sync::Arc<std::sync::RwLock<Vec<ChangeListener>>>,
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

fn analysis(row: &SqliteRow) -> Result<Analysis, StoreError> {
    let id: String = row.try_get("id")?;
    let what = |field: &str| format!("analysis {id} {field}");
    let status: String = row.try_get("status")?;
    let judgment: Option<String> = row.try_get("judgment")?;
    Ok(Analysis {
        key: row.try_get("key")?,
        request: from_json(&row.try_get::<String, _>("request")?, &what("request"))?,
        model: from_json(&row.try_get::<String, _>("model")?, &what("model"))?,
        status: Status::parse(&status).ok_or_else(|| StoreError::Corrupt {
            what: what("status"),
            reason: format!("unknown status `{status}`"),
        })?,
        interval_ms: row.try_get::<i64, _>("interval_ms")? as u64,
        lifetime_ms: row.try_get::<i64, _>("lifetime_ms")? as u64,
        created_ms: row.try_get("created_ms")?,
        next_due_ms: row.try_get("next_due_ms")?,
        decided_ms: row.try_get("decided_ms")?,
        intervals: row.try_get::<i64, _>("intervals")? as u32,
        score: row.try_get("score")?,
        judgment: judgment
            .map(|j| from_json(&j, &what("judgment")))
            .transpose()?,
        cumulative: from_json(
            &row.try_get::<String, _>("cumulative")?,
            &what("cumulative"),
        )?,
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

impl SqliteStore {
    pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // WAL + NORMAL: a committed transaction survives a process crash (kill -9);
            // only an OS crash can lose the last few, which the next interval redoes.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(SqliteStore {
            pool,
            listeners: Default::default(),
        })
    }

    pub fn on_change(&self, listener: ChangeListener) {
        self.listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(listener);
    }

    fn changed(&self, id: &str) {
        for listener in self
            .listeners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            listener(id);
        }
    }

    pub async fn create(
        &self,
        request: &ValidRequest,
        recipients: &[Recipient],
        now_ms: i64,
    ) -> Result<(Analysis, bool), StoreError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let interval_ms = request.interval.as_millis() as i64;
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO analyses (id, key, request, model, status, interval_ms, lifetime_ms, \
             created_ms, next_due_ms) VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?) \
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(&id)
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
                    .bind(&id)
                    .bind(&r.notifier)
                    .bind(event.as_str())
                    .execute(&mut *tx)
                    .await?;
                }
            }
            enqueue(&mut tx, &id, Event::Started, None, now_ms).await?;
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM analyses WHERE key = ?"))
            .bind(&request.request.key)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        if inserted {
            self.changed(&id);
        }
        Ok((analysis(&row)?, inserted))
    }

    pub async fn get(&self, id: &str) -> Result<Option<Analysis>, StoreError> {
        sqlx::query(&format!("SELECT {COLUMNS} FROM analyses WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(analysis)
            .transpose()
    }

    pub async fn list(&self, status: Option<Status>) -> Result<Vec<Analysis>, StoreError> {
        let rows = match status {
            Some(s) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM analyses WHERE status = ? ORDER BY created_ms, id"
                ))
                .bind(s.as_str())
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM analyses ORDER BY created_ms, id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(analysis).collect()
    }

    pub async fn intervals(&self, id: &str) -> Result<Vec<Interval>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, start_ms, end_ms, data, judgment FROM intervals \
             WHERE analysis_id = ? ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
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
        let i = &update.interval;
        let mut tx = self.pool.begin().await?;
        // The guard makes the write conditional on the state the runner read: a cancel
        // or another writer in between turns this into a no-op instead of a clobber.
        let advanced = sqlx::query(
            "UPDATE analyses SET status = ?, next_due_ms = ?, decided_ms = ?, intervals = ?, \
             score = ?, judgment = ?, cumulative = ? \
             WHERE id = ? AND status = 'running' AND intervals = ?",
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
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !advanced {
            tx.rollback().await?;
            return Ok(false);
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
        self.changed(id);
        Ok(true)
    }

    pub async fn cancel(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<(Analysis, bool)>, StoreError> {
        let mut tx = self.pool.begin().await?;
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
        }
        tx.commit().await?;
        if cancelled {
            self.changed(id);
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
        let mut tx = self.pool.begin().await?;
        // Write first: a transaction that read before writing could not take the write
        // lock after another writer committed (SQLite answers busy at once, whatever the
        // timeout), and an attempt left unrecorded would be sent again.
        let attempts: Option<i64> = sqlx::query_scalar(
            "UPDATE notifications SET state = ?, attempts = attempts + 1, next_attempt_ms = ?, \
             done_ms = ?, last_status = ?, last_error = ? WHERE id = ? AND state = 'pending' \
             RETURNING attempts",
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
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO notification_attempts (notification_id, attempt, at_ms, duration_ms, \
             status, outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
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
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
