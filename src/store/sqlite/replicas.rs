//! The SQLite side of replica coordination ([`crate::store::replicas`]). SQLite serves one
//! replica; these keep the same rules as on PostgreSQL so the daemon has one code path
//! and every store test runs on both.

use sqlx::{Connection as _, Row};

use super::{NOTIFICATION_COLUMNS, SqliteStore, from_json, notification, to_json};
use crate::analysis::Partial;
use crate::notify::Notification;
use crate::store::StoreError;
use crate::store::replicas::{Claimant, Lease, Replica, StoredPartial};

/// A replica silent this many times its heartbeat's lifetime is forgotten.
const FORGET_AFTER_TTLS: i64 = 10;

impl SqliteStore {
    pub async fn heartbeat(
        &self,
        replica: &str,
        started_ms: i64,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Vec<Replica>, StoreError> {
        let mut conn = self.writer().await?;
        let written = async {
            let mut tx = conn.begin().await?;
            sqlx::query(
                "INSERT INTO replicas (id, started_ms, seen_ms) VALUES (?, ?, ?) \
                 ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms",
            )
            .bind(replica)
            .bind(started_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM replicas WHERE seen_ms < ?")
                .bind(now_ms - FORGET_AFTER_TTLS * ttl_ms)
                .execute(&mut *tx)
                .await?;
            let rows = sqlx::query(
                "SELECT id, started_ms, seen_ms FROM replicas WHERE seen_ms >= ? ORDER BY id",
            )
            .bind(now_ms - ttl_ms)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            rows.iter()
                .map(|r| {
                    Ok(Replica {
                        id: r.try_get("id")?,
                        started_ms: r.try_get("started_ms")?,
                        seen_ms: r.try_get("seen_ms")?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()
        }
        .await;
        self.finish(conn, written).await
    }

    pub async fn leases(
        &self,
        replica: &str,
        now_ms: i64,
        ttl_ms: i64,
        replicas: u32,
    ) -> Result<Vec<Lease>, StoreError> {
        let mut conn = self.writer().await?;
        let written = async {
            let mut tx = conn.begin().await?;
            // Write first (see record_attempt): renewing takes the write lock.
            let held = sqlx::query(
                "UPDATE analyses SET lease_until_ms = ? \
                 WHERE lease_owner = ? AND status = 'running' RETURNING id, lease_fence",
            )
            .bind(now_ms + ttl_ms)
            .bind(replica)
            .fetch_all(&mut *tx)
            .await?;
            let running: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM analyses WHERE status = 'running'")
                    .fetch_one(&mut *tx)
                    .await?;
            let share = (running as u64).div_ceil(u64::from(replicas.max(1))) as i64;
            let room = (share - held.len() as i64).max(0);
            let claimed = if room > 0 {
                sqlx::query(
                    // The outer condition repeats the inner one: where writers do not
                    // queue on one lock (PostgreSQL), a row another replica claimed
                    // meanwhile is re-checked and left alone.
                    "UPDATE analyses SET lease_owner = ?, lease_until_ms = ?, \
                     lease_fence = lease_fence + 1 \
                     WHERE id IN (SELECT id FROM analyses WHERE status = 'running' \
                       AND (lease_owner IS NULL OR lease_until_ms < ?) \
                       ORDER BY created_ms, id LIMIT ?) \
                     AND status = 'running' AND (lease_owner IS NULL OR lease_until_ms < ?) \
                     RETURNING id, lease_fence",
                )
                .bind(replica)
                .bind(now_ms + ttl_ms)
                .bind(now_ms)
                .bind(room)
                .bind(now_ms)
                .fetch_all(&mut *tx)
                .await?
            } else {
                Vec::new()
            };
            tx.commit().await?;
            let lease = |r: &sqlx::sqlite::SqliteRow, new: bool| -> Result<Lease, StoreError> {
                let fence: i64 = r.try_get("lease_fence")?;
                Ok(Lease {
                    analysis: r.try_get("id")?,
                    fence,
                    taken_over: new && fence > 1,
                })
            };
            held.iter()
                .map(|r| lease(r, false))
                .chain(claimed.iter().map(|r| lease(r, true)))
                .collect::<Result<Vec<_>, StoreError>>()
        }
        .await;
        self.finish(conn, written).await
    }

    pub async fn running_ids(&self) -> Result<Vec<String>, StoreError> {
        let ids = sqlx::query_scalar(
            "SELECT id FROM analyses WHERE status = 'running' ORDER BY created_ms, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from);
        self.noted(ids)
    }

    /// Gives back `replica`'s leases and claims (every replica's with `None`).
    pub async fn leave(&self, replica: Option<&str>) -> Result<(), StoreError> {
        let mut conn = self.writer().await?;
        let written = async {
            let mut tx = conn.begin().await?;
            sqlx::query(
                "UPDATE analyses SET lease_owner = NULL, lease_until_ms = 0 \
                 WHERE lease_owner IS NOT NULL AND (? IS NULL OR lease_owner = ?)",
            )
            .bind(replica)
            .bind(replica)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE notifications SET claimed_by = NULL, claim_until_ms = 0 \
                 WHERE claimed_by IS NOT NULL AND (? IS NULL OR claimed_by = ?)",
            )
            .bind(replica)
            .bind(replica)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM replicas WHERE ? IS NULL OR id = ?")
                .bind(replica)
                .bind(replica)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await;
        self.finish(conn, written).await
    }

    pub async fn put_partial(
        &self,
        id: &str,
        seq: u32,
        replica: &str,
        partial: &Partial,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let data = to_json(partial, "partial window")?;
        let mut conn = self.writer().await?;
        let written = sqlx::query(
            "INSERT INTO partials (analysis_id, seq, replica, written_ms, data) \
             SELECT ?, ?, ?, ?, ? WHERE EXISTS \
               (SELECT 1 FROM analyses WHERE id = ? AND status = 'running') \
             ON CONFLICT (analysis_id, seq, replica) DO UPDATE \
             SET written_ms = excluded.written_ms, data = excluded.data",
        )
        .bind(id)
        .bind(i64::from(seq))
        .bind(replica)
        .bind(now_ms)
        .bind(data)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map(|r| r.rows_affected() == 1)
        .map_err(StoreError::from);
        self.finish(conn, written).await
    }

    pub async fn partials(&self, id: &str) -> Result<Vec<StoredPartial>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, replica, data FROM partials WHERE analysis_id = ? \
             ORDER BY seq, replica",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await;
        let rows = self.noted(rows.map_err(StoreError::from))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let seq: i64 = r.try_get("seq")?;
            let replica: String = r.try_get("replica")?;
            let what = format!("partial window {seq} of analysis {id} from {replica}");
            match from_json::<Partial>(&r.try_get::<String, _>("data")?, &what) {
                Ok(partial) => out.push(StoredPartial {
                    seq: seq as u32,
                    replica,
                    partial,
                }),
                Err(e) => tracing::warn!(error = %e, "partial window unreadable; left out"),
            }
        }
        Ok(out)
    }

    pub async fn claim_notifications(
        &self,
        now_ms: i64,
        limit: u32,
        claimant: &Claimant,
    ) -> Result<Vec<Notification>, StoreError> {
        let mut conn = self.writer().await?;
        let written = sqlx::query(&format!(
            "UPDATE notifications SET claimed_by = ?, claim_until_ms = ? \
             WHERE id IN (SELECT n.id FROM notifications n \
               WHERE n.state = 'pending' AND n.next_attempt_ms <= ? \
               AND (n.claim_until_ms <= ? OR n.claimed_by = ?) AND NOT EXISTS ( \
                 SELECT 1 FROM notifications o WHERE o.analysis_id = n.analysis_id \
                 AND o.notifier = n.notifier AND o.state = 'pending' AND o.id < n.id) \
               ORDER BY n.id LIMIT ?) \
             AND state = 'pending' AND (claim_until_ms <= ? OR claimed_by = ?) \
             RETURNING {NOTIFICATION_COLUMNS}"
        ))
        .bind(&claimant.replica)
        .bind(now_ms + claimant.ttl_ms)
        .bind(now_ms)
        .bind(now_ms)
        .bind(&claimant.replica)
        .bind(i64::from(limit))
        .bind(now_ms)
        .bind(&claimant.replica)
        .fetch_all(&mut *conn)
        .await
        .map_err(StoreError::from);
        let rows = self.finish(conn, written).await?;
        let mut claimed = rows
            .iter()
            .map(notification)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|n| n.id);
        Ok(claimed)
    }
}
