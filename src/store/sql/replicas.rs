//! Replica coordination ([`crate::store::replicas`]) on either backend. SQLite serves one
//! replica; it keeps the same rules as PostgreSQL so the daemon has one code path and
//! every store test runs on both.
//!
//! Where several replicas write at once (PostgreSQL), every claim is a conditional
//! UPDATE whose outer condition repeats the one its subquery chose rows by: a row another
//! replica claimed meanwhile is waited for, re-checked on its committed version and left
//! alone.

use sqlx::{Encode, Executor, IntoArguments, Type};

use super::{Backend, SqlStore};
use crate::analysis::Partial;
use crate::notify::Notification;
use crate::store::StoreError;
use crate::store::replicas::{Claimant, Lease, Replica, StoredPartial};
use crate::store::rows::{Columns, NOTIFICATION_COLUMNS, from_json, notification, to_json};

/// A replica silent this many times its heartbeat's lifetime is forgotten.
const FORGET_AFTER_TTLS: i64 = 10;

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
    pub async fn heartbeat(
        &self,
        replica: &str,
        started_ms: i64,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Vec<Replica>, StoreError> {
        self.write(async |tx| {
            sqlx::query(
                "INSERT INTO replicas (id, started_ms, seen_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms, \
                 started_ms = excluded.started_ms",
            )
            .bind(replica)
            .bind(started_ms)
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM replicas WHERE seen_ms < $1")
                .bind(now_ms - FORGET_AFTER_TTLS * ttl_ms)
                .execute(&mut *tx)
                .await?;
            let rows = sqlx::query(
                "SELECT id, started_ms, seen_ms FROM replicas WHERE seen_ms >= $1 ORDER BY id",
            )
            .bind(now_ms - ttl_ms)
            .fetch_all(&mut *tx)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Replica {
                        id: r.text("id")?,
                        started_ms: r.int("started_ms")?,
                        seen_ms: r.int("seen_ms")?,
                    })
                })
                .collect()
        })
        .await
    }

    pub async fn leases(
        &self,
        replica: &str,
        now_ms: i64,
        ttl_ms: i64,
        replicas: u32,
    ) -> Result<Vec<Lease>, StoreError> {
        self.write(async |tx| {
            // Write first (see record_attempt): renewing takes SQLite's write lock.
            let held = sqlx::query(
                "UPDATE analyses SET lease_until_ms = $1 \
                 WHERE lease_owner = $2 AND status = 'running' RETURNING id, lease_fence",
            )
            .bind(now_ms + ttl_ms)
            .bind(replica)
            .fetch_all(&mut *tx)
            .await?;
            let running =
                sqlx::query("SELECT COUNT(*) AS n FROM analyses WHERE status = 'running'")
                    .fetch_one(&mut *tx)
                    .await?
                    .int("n")?;
            let share = (running as u64).div_ceil(u64::from(replicas.max(1))) as i64;
            let room = (share - held.len() as i64).max(0);
            let claimed = if room > 0 {
                sqlx::query(
                    "UPDATE analyses SET lease_owner = $1, lease_until_ms = $2, \
                     lease_fence = lease_fence + 1 \
                     WHERE id IN (SELECT id FROM analyses WHERE status = 'running' \
                       AND (lease_owner IS NULL OR lease_until_ms < $3) \
                       ORDER BY created_ms, id LIMIT $4) \
                     AND status = 'running' AND (lease_owner IS NULL OR lease_until_ms < $3) \
                     RETURNING id, lease_fence",
                )
                .bind(replica)
                .bind(now_ms + ttl_ms)
                .bind(now_ms)
                .bind(room)
                .fetch_all(&mut *tx)
                .await?
            } else {
                Vec::new()
            };
            let lease = |r: &B::Row, new: bool| -> Result<Lease, StoreError> {
                let fence = r.int("lease_fence")?;
                Ok(Lease {
                    analysis: r.text("id")?,
                    fence,
                    taken_over: new && fence > 1,
                })
            };
            held.iter()
                .map(|r| lease(r, false))
                .chain(claimed.iter().map(|r| lease(r, true)))
                .collect()
        })
        .await
    }

    pub async fn running_ids(&self) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT id FROM analyses WHERE status = 'running' ORDER BY created_ms, id")
                .fetch_all(&self.pool)
                .await;
        self.noted(rows)?
            .iter()
            .map(|r| Ok(r.text("id")?))
            .collect()
    }

    /// Gives back `replica`'s leases and claims and forgets its heartbeat.
    pub async fn leave(&self, replica: &str) -> Result<(), StoreError> {
        self.write(async |tx| {
            sqlx::query(
                "UPDATE analyses SET lease_owner = NULL, lease_until_ms = 0 \
                 WHERE lease_owner = $1",
            )
            .bind(replica)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE notifications SET claimed_by = NULL, claim_until_ms = 0 \
                 WHERE claimed_by = $1",
            )
            .bind(replica)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM replicas WHERE id = $1")
                .bind(replica)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
        .await
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
        self.write(async |tx| {
            let written = sqlx::query(
                "INSERT INTO partials (analysis_id, seq, replica, written_ms, data) \
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS \
                   (SELECT 1 FROM analyses WHERE id = $1 AND status = 'running') \
                 ON CONFLICT (analysis_id, seq, replica) DO UPDATE \
                 SET written_ms = excluded.written_ms, data = excluded.data",
            )
            .bind(id)
            .bind(i64::from(seq))
            .bind(replica)
            .bind(now_ms)
            .bind(data)
            .execute(&mut *tx)
            .await?;
            Ok(B::rows_affected(&written) == 1)
        })
        .await
    }

    pub async fn partials(&self, id: &str) -> Result<Vec<StoredPartial>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, replica, data FROM partials WHERE analysis_id = $1 \
             ORDER BY seq, replica",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await;
        let rows = self.noted(rows)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let seq = r.int("seq")?;
            let replica = r.text("replica")?;
            let what = format!("partial window {seq} of analysis {id} from {replica}");
            match from_json::<Partial>(&r.text("data")?, &what) {
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
        let rows = self
            .write(async |tx| {
                Ok(sqlx::query(&format!(
                    "UPDATE notifications SET claimed_by = $1, claim_until_ms = $2 \
                     WHERE id IN (SELECT n.id FROM notifications n \
                       WHERE n.state = 'pending' AND n.next_attempt_ms <= $3 \
                       AND (n.claim_until_ms <= $3 OR n.claimed_by = $1) AND NOT EXISTS ( \
                         SELECT 1 FROM notifications o WHERE o.analysis_id = n.analysis_id \
                         AND o.notifier = n.notifier AND o.state = 'pending' AND o.id < n.id) \
                       ORDER BY n.id LIMIT $4) \
                     AND state = 'pending' AND (claim_until_ms <= $3 OR claimed_by = $1) \
                     RETURNING {NOTIFICATION_COLUMNS}"
                ))
                .bind(claimant.replica.as_str())
                .bind(now_ms + claimant.ttl_ms)
                .bind(now_ms)
                .bind(i64::from(limit))
                .fetch_all(&mut *tx)
                .await?)
            })
            .await?;
        let mut claimed = rows
            .iter()
            .map(notification)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by_key(|n| n.id);
        Ok(claimed)
    }
}
