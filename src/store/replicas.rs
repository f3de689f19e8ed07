//! What replicas sharing one database coordinate through, in the database itself:
//! - who is alive ([`Store::heartbeat`]);
//! - who judges which running analysis: a lease per analysis with an owner, an expiry and
//!   a fence that grows with every new owner ([`Store::leases`]); an interval commits only
//!   with its owner's fence ([`Store::record_interval_fenced`]), so a replica that lost
//!   its lease cannot write;
//! - what each replica received of an interval's spans ([`Store::put_partial`],
//!   [`Store::partials`]), merged by the owner and deleted in the transaction that
//!   records the interval;
//! - who sends which notification: claims that expire ([`Store::claim_notifications`]),
//!   so a row is sent by one replica at a time, and by another once its sender died.
//!
//! A replica that leaves cleanly ([`Store::leave`]) hands its leases and claims back at
//! once; one that dies leaves them to expire.

use super::{IntervalUpdate, Store, StoreError};
use crate::analysis::Partial;
use crate::notify::Notification;

/// A replica, as its heartbeats say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replica {
    pub id: String,
    /// When it started: it received no spans before then.
    pub started_ms: i64,
    /// Its last heartbeat.
    pub seen_ms: i64,
}

/// A lease this replica holds on a running analysis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub analysis: String,
    /// Grows with every new owner; an interval commits only with the current one.
    pub fence: i64,
    /// Claimed by this pass from another replica, whose lease had expired or been given
    /// back (`false`: held already, or never held before).
    pub taken_over: bool,
}

/// The lease an interval is recorded under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub replica: String,
    pub fence: i64,
}

/// One replica's partial window of one interval, as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredPartial {
    pub seq: u32,
    pub replica: String,
    pub partial: Partial,
}

/// Who claims notifications, and for how long a claim holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimant {
    pub replica: String,
    pub ttl_ms: i64,
}

impl Store {
    /// Whether several replicas may share this database (PostgreSQL: yes; SQLite: one
    /// replica's file).
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Records that `replica` (started at `started_ms`) is alive at `now_ms`, forgets
    /// replicas silent for long, and returns those seen within `ttl_ms`.
    pub async fn heartbeat(
        &self,
        replica: &str,
        started_ms: i64,
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Vec<Replica>, StoreError> {
        on_backend!(self, s => s.heartbeat(replica, started_ms, now_ms, ttl_ms).await)
    }

    /// Renews the leases `replica` holds on running analyses until `now_ms + ttl_ms`, and
    /// claims free or expired ones up to its fair share (the running analyses divided
    /// among `replicas` alive, rounded up). Returns every lease it holds now.
    pub async fn leases(
        &self,
        replica: &str,
        now_ms: i64,
        ttl_ms: i64,
        replicas: u32,
    ) -> Result<Vec<Lease>, StoreError> {
        on_backend!(self, s => s.leases(replica, now_ms, ttl_ms, replicas).await)
    }

    /// The ids of the running analyses, oldest first: cheap enough to read every second.
    pub async fn running_ids(&self) -> Result<Vec<String>, StoreError> {
        on_backend!(self, s => s.running_ids().await)
    }

    /// `replica` leaves: its heartbeat, leases and notification claims are given back, so
    /// the others take over at once.
    pub async fn leave(&self, replica: &str) -> Result<(), StoreError> {
        on_backend!(self, s => s.leave(replica).await)
    }

    /// Stores `replica`'s partial window of interval `seq` of analysis `id` (replacing one
    /// it wrote before for that interval). Returns false, storing nothing, when the
    /// analysis is no longer running.
    pub async fn put_partial(
        &self,
        id: &str,
        seq: u32,
        replica: &str,
        partial: &Partial,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.put_partial(id, seq, replica, partial, now_ms).await)
    }

    /// The partial windows of analysis `id` not yet merged into a recorded interval,
    /// oldest first. A stored partial that cannot be read is logged and left out.
    pub async fn partials(&self, id: &str) -> Result<Vec<StoredPartial>, StoreError> {
        on_backend!(self, s => s.partials(id).await)
    }

    /// [`Store::record_interval`] under a lease: only while `fence` is the analysis's
    /// lease, and deleting the partial windows `consumed` (`(seq, replica)`) merged into
    /// the interval in the same transaction. A decided analysis's partials all go.
    /// `false` when the analysis moved on, was cancelled, or the lease is another's.
    pub async fn record_interval_fenced(
        &self,
        id: &str,
        update: &IntervalUpdate,
        fence: &Fence,
        consumed: &[(u32, String)],
    ) -> Result<bool, StoreError> {
        on_backend!(self, s => s.record_interval_with(id, update, Some((fence, consumed))).await)
    }

    /// Claims up to `limit` pending notifications due by `now_ms` for `claimant`, oldest
    /// first, skipping rows another replica holds a live claim on (its own it takes
    /// again: an attempt it could not record is due again); a row waits while an
    /// older one of the same analysis and notifier is pending. [`Store::record_attempt`]
    /// ends the claim.
    pub async fn claim_notifications(
        &self,
        now_ms: i64,
        limit: u32,
        claimant: &Claimant,
    ) -> Result<Vec<Notification>, StoreError> {
        on_backend!(self, s => s.claim_notifications(now_ms, limit, claimant).await)
    }
}
