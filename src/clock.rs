//! Time as the daemon reads and writes it: milliseconds since the Unix epoch, one
//! injectable [`Clock`], and RFC 3339 for what people and controllers read.
//!
//! Every part that needs "now" takes it from here, so a test can drive the runner with
//! a clock of its own and every timestamp the daemon prints has one format.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, from the system clock (0 before the epoch).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The instant `ms` milliseconds after the Unix epoch (the epoch itself for a negative `ms`).
pub fn system_time(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

/// RFC 3339 UTC with milliseconds (`2026-12-06T20:10:22.000Z`).
pub fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(system_time(ms)).to_string()
}

/// A source of "now": the system's, or one a test drives.
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> i64 + Send + Sync>);

impl Clock {
    /// The system clock ([`now_ms`]).
    pub fn system() -> Clock {
        Clock(Arc::new(now_ms))
    }

    /// A clock that reads `now` (milliseconds since the Unix epoch).
    pub fn from_fn(now: impl Fn() -> i64 + Send + Sync + 'static) -> Clock {
        Clock(Arc::new(now))
    }

    pub fn now_ms(&self) -> i64 {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clock({})", self.now_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_is_utc_with_milliseconds() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_driven_clock_reads_what_it_is_given() {
        let t = Arc::new(std::sync::atomic::AtomicI64::new(42));
        let read = Arc::clone(&t);
        let clock = Clock::from_fn(move || read.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(clock.now_ms(), 42);
        t.store(7, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(clock.now_ms(), 7);
    }
}
