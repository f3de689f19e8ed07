//! Several replicas on one database: who this replica is, what it holds, and the loop
//! that keeps that true.
//!
//! Every replica watches every running analysis (spans may reach any of them) and, at
//! each interval boundary, writes down what it received as a partial window. One replica
//! at a time judges each analysis: the one holding its lease. The [`coordinate`] loop
//! beats this replica's heartbeat, renews its leases and claims its fair share of free or
//! expired ones (an analysis whose owner died is taken over once the lease runs out), and
//! tells the runner of analyses created or ended on other replicas, which it would not
//! hear of otherwise. On a clean stop the replica leaves: its leases and notification
//! claims go back at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use super::RunnerHandle;
use crate::clock::Clock;
use crate::store::{Replica, Store, StoreError};
use crate::telemetry::Metrics;

/// Beats between two recounts of the `augury_analyses{status}` gauge from the store.
const GAUGE_EVERY: u64 = 10;

/// How replicas sharing a database work together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSettings {
    /// This replica's name, unique among the replicas (default: host name and a random
    /// suffix, new at every start). Two replicas with one name would take each other's
    /// leases and partial windows for their own.
    pub id: String,
    /// How long a lease (and a heartbeat) holds without renewal: a dead replica's
    /// analyses are taken over this long after its last renewal.
    pub lease_ttl: Duration,
    /// How long the judging replica waits past an interval's end for every live
    /// replica's partial window; a partial that comes later is merged into the next
    /// interval.
    pub flush_grace: Duration,
}

impl ReplicaSettings {
    /// The defaults: a 15 s lease, a 5 s flush grace, a generated id.
    pub fn new() -> ReplicaSettings {
        ReplicaSettings {
            id: default_id(),
            lease_ttl: Duration::from_secs(15),
            flush_grace: Duration::from_secs(5),
        }
    }

    /// How often the coordinator beats: three times per lease, and at least every 500 ms
    /// (it also tells the runner of analyses created elsewhere).
    pub fn tick(&self) -> Duration {
        (self.lease_ttl / 3).min(Duration::from_millis(500))
    }
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        ReplicaSettings::new()
    }
}

/// A name for this replica: the host's (a pod's name in Kubernetes) and a random suffix,
/// so two replicas on one host never share one.
pub fn default_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "augury".into());
    // The last digits of a version 7 UUID are random (its first ones are the time).
    let uuid = uuid::Uuid::now_v7().simple().to_string();
    format!("{host}-{}", &uuid[uuid.len() - 6..])
}

/// What this replica knows of the others and holds itself, shared by the coordinator
/// (which writes it) and the runner (which reads it).
#[derive(Debug)]
pub struct Membership {
    pub settings: ReplicaSettings,
    pub started_ms: i64,
    /// Analysis id -> the fence of the lease this replica holds on it.
    leases: Mutex<HashMap<String, i64>>,
    /// The replicas alive at the last heartbeat, this one included.
    alive: Mutex<Vec<Replica>>,
}

/// The value behind `m`, even if a panic poisoned it: the daemon's maps of replica state
/// are written only as whole values, so none is left half-updated.
pub(super) fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Membership {
    pub fn new(settings: ReplicaSettings, started_ms: i64) -> Membership {
        let me = Replica {
            id: settings.id.clone(),
            started_ms,
            seen_ms: started_ms,
        };
        Membership {
            settings,
            started_ms,
            leases: Mutex::default(),
            alive: Mutex::new(vec![me]),
        }
    }

    pub fn id(&self) -> &str {
        &self.settings.id
    }

    /// The fence of this replica's lease on analysis `id`, if it holds one.
    pub fn fence(&self, id: &str) -> Option<i64> {
        locked(&self.leases).get(id).copied()
    }

    /// This replica found it no longer holds the lease on `id` (its write was fenced off).
    pub fn lost(&self, id: &str) {
        locked(&self.leases).remove(id);
    }

    /// The replicas alive at the last heartbeat.
    pub fn alive(&self) -> Vec<Replica> {
        locked(&self.alive).clone()
    }

    /// How many leases this replica holds.
    pub fn held(&self) -> usize {
        locked(&self.leases).len()
    }
}

/// Keeps this replica's heartbeat, leases and schedule up to date until `stop`, then
/// leaves. A store that fails is retried at the next tick; the leases held meanwhile
/// stay as they were (if they expire, the fence keeps this replica from writing).
pub async fn coordinate(
    store: Store,
    membership: Arc<Membership>,
    runner: RunnerHandle,
    metrics: Arc<Metrics>,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
) -> Result<(), StoreError> {
    let tick = membership.settings.tick();
    let mut known: HashSet<String> = HashSet::new();
    let mut beats = 0u64;
    loop {
        if let Err(e) = beat(&store, &membership, &runner, &metrics, &clock, &mut known).await {
            tracing::warn!(error = %e, "replica coordination: the store failed; trying again");
        }
        beats += 1;
        if beats.is_multiple_of(GAUGE_EVERY) {
            super::count_analyses(&store, &metrics).await;
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(tick) => {}
        }
    }
    // The daemon gives the leases and claims back once its runner and deliverer have
    // stopped (see `Daemon::shutdown`): doing it here could let another replica redo an
    // interval or resend a notification this one is still finishing.
    Ok(())
}

/// One round: heartbeat, leases, and the runner told of analyses started or ended
/// elsewhere.
async fn beat(
    store: &Store,
    membership: &Membership,
    runner: &RunnerHandle,
    metrics: &Metrics,
    clock: &Clock,
    known: &mut HashSet<String>,
) -> Result<(), StoreError> {
    let ttl_ms = membership.settings.lease_ttl.as_millis() as i64;
    let now = clock.now_ms();
    let alive = store
        .heartbeat(membership.id(), membership.started_ms, now, ttl_ms)
        .await?;
    let replicas = alive.len().max(1) as u32;
    *locked(&membership.alive) = alive;
    let leases = store.leases(membership.id(), now, ttl_ms, replicas).await?;
    for lease in leases.iter().filter(|l| l.taken_over) {
        tracing::info!(analysis = %lease.analysis, fence = lease.fence,
            "took over the lease of an analysis whose owner went away");
        metrics.lease_taken_over();
    }
    *locked(&membership.leases) = leases.into_iter().map(|l| (l.analysis, l.fence)).collect();
    metrics.set_replicas(replicas as usize, membership.held());

    let running: HashSet<String> = store.running_ids().await?.into_iter().collect();
    // Every running analysis, not only new ones: the runner ignores those it has, and
    // takes back one it let go by mistake.
    for id in &running {
        runner.schedule(id);
    }
    for id in known.difference(&running) {
        runner.cancel(id);
    }
    *known = running;
    Ok(())
}
