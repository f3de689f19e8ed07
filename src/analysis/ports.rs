//! The runner's ports: where an analysis's data comes from ([`DataSource`]) and who hears
//! about its progress ([`Observer`]). Defined here, below the daemon, so the parts that
//! implement them (the OTLP and Prometheus sources, the daemon's own metrics) and the
//! runner that calls them need not know each other.

use std::collections::BTreeMap;
use std::future::Future;

use super::{Analysis, Interval, Status};
use crate::judge::MetricData;

/// Why a source could not deliver a metric's data for an interval.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("metric `{metric}`: {reason}")]
pub struct SourceError {
    pub metric: String,
    pub reason: String,
}

/// Where an analysis's data comes from (OTLP windows, Prometheus queries, scrapes).
pub trait DataSource: Send + Sync + 'static {
    /// Start collecting for an analysis (on creation and on resume after a restart).
    fn watch(&self, analysis: &Analysis);
    /// Stop collecting; release what was held for it.
    fn unwatch(&self, id: &str);
    /// What arrived for each metric in `[start_ms, end_ms)`. Metrics without data may be
    /// left out; a metric whose source failed is reported in the errors and left out.
    fn take(
        &self,
        analysis: &Analysis,
        start_ms: i64,
        end_ms: i64,
    ) -> impl Future<Output = (BTreeMap<String, MetricData>, Vec<SourceError>)> + Send;
    /// The part of [`DataSource::take`] that only this replica has, handed out once: what
    /// it received since the previous call (OTLP spans). Replicas sharing a database write
    /// it down as their partial window of the interval. A source that receives nothing
    /// has nothing here.
    fn take_received(
        &self,
        _analysis: &Analysis,
        _start_ms: i64,
    ) -> (BTreeMap<String, MetricData>, Vec<SourceError>) {
        (BTreeMap::new(), Vec::new())
    }
    /// The rest of [`DataSource::take`]: what the replica judging the interval asks for
    /// (Prometheus queries, scrapes). By default all of `take`.
    fn query(
        &self,
        analysis: &Analysis,
        start_ms: i64,
        end_ms: i64,
    ) -> impl Future<Output = (BTreeMap<String, MetricData>, Vec<SourceError>)> + Send {
        self.take(analysis, start_ms, end_ms)
    }
    /// This replica has just become the judge of `analysis` (among replicas: it took the
    /// lease). A source that keeps state of the judge's own (the scrape source's reading
    /// at an interval's start) starts afresh. Nothing to do by default.
    fn take_over(&self, _analysis: &Analysis) {}
    /// What can still be had for `[start_ms, end_ms)`, an interval that ended while the
    /// daemon was not running: sources that keep history answer as in `take`; the others
    /// report each of their metrics as missing, and leave what they hold now (it belongs
    /// to a later interval) where it is.
    fn missed(
        &self,
        analysis: &Analysis,
        start_ms: i64,
        end_ms: i64,
    ) -> impl Future<Output = (BTreeMap<String, MetricData>, Vec<SourceError>)> + Send;
}

/// Hooks for the daemon's own metrics and notifications.
pub trait Observer: Send + Sync + 'static {
    fn interval_judged(&self, analysis: &Analysis, interval: &Interval, seconds: f64);
    fn decided(&self, analysis: &Analysis, status: Status);
    fn source_errors(&self, analysis: &Analysis, errors: &[SourceError]);
    /// An interval of analysis `id` could not be judged or recorded; it is tried again.
    fn interval_failed(&self, _id: &str, _error: &str) {}
}

/// An observer that does nothing.
pub struct NoObserver;

impl Observer for NoObserver {
    fn interval_judged(&self, _: &Analysis, _: &Interval, _: f64) {}
    fn decided(&self, _: &Analysis, _: Status) {}
    fn source_errors(&self, _: &Analysis, _: &[SourceError]) {}
}
