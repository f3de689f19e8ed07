//! Whether the database takes writes, as the last writes found it: the readiness state
//! both backends keep.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{NotReady, StoreError};

/// How long a failing store waits between two readiness probes.
const PROBE_WHILE_FAILING: Duration = Duration::from_secs(1);
/// How long a store with no successful write goes before readiness probes anyway, so a
/// disk that filled (or a server that went away) while nothing wrote is still noticed.
const PROBE_WHEN_IDLE: Duration = Duration::from_secs(30);

/// Set by a write that failed for a reason the database itself has (full disk, I/O
/// error, read-only file; for a server, one that cannot be reached: the backend's
/// `write_fault`); cleared by the next write that commits, whoever makes it (an API
/// create, the runner's interval, the deliverer, or the readiness probe, which rewrites
/// one row of `store_probe` at most once a second while the store is failing).
/// Corruption (SQLite's SQLITE_CORRUPT, SQLITE_NOTADB) is sticky: it does not heal by
/// itself, so only a restart (after an operator repaired the file) clears it.
#[derive(Debug, Default)]
pub(super) struct Health {
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    failing: Option<String>,
    corrupt: Option<String>,
    last_success: Option<Instant>,
    last_probe: Option<Instant>,
}

impl Health {
    fn state(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn succeeded(&self) {
        let mut state = self.state();
        state.last_success = Some(Instant::now());
        if let Some(was) = state.failing.take() {
            tracing::info!(after = %was, "the database takes writes again");
        }
    }

    /// Notes the error `e` of a read or write; `write_fault` says whether a database
    /// error means the database cannot write.
    pub(super) fn failed(&self, e: &StoreError, write_fault: fn(&sqlx::Error) -> bool) {
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
    pub(super) fn claim_probe(&self, now: Instant) -> bool {
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

    pub(super) fn not_ready(&self) -> Option<NotReady> {
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
