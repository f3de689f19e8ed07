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
        now_ms: i64,
    ) -> Result<(Analysis, bool), StoreError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let interval_ms = request.interval.as_millis() as i64;
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
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM analyses WHERE key = ?"))
            .bind(&request.request.key)
            .fetch_one(&self.pool)
            .await?;
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
        tx.commit().await?;
        self.changed(id);
        Ok(true)
    }

    pub async fn cancel(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<Option<(Analysis, bool)>, StoreError> {
        let cancelled = sqlx::query(
            "UPDATE analyses SET status = 'cancelled', decided_ms = ? \
             WHERE id = ? AND status = 'running'",
        )
        .bind(now_ms)
        .bind(id)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if cancelled {
            self.changed(id);
        }
        Ok(self.get(id).await?.map(|a| (a, cancelled)))
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}
