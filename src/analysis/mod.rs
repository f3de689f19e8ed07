//! Analyses: what comparing a canary with its baseline over time is, as values and rules.
//!
//! The records here (`Analysis`, `Interval`, `Status`) are what the store persists and
//! the API shows; `request` validates what clients ask for; `view` is the verdict view
//! the API serves and notifications render; `policy` holds the rules between intervals
//! (what is kept, when an analysis stops); `ports` the runner's `DataSource` and
//! `Observer`; `partial` one replica's share of an interval's spans, merged by the
//! replica that judges it. The runner that applies them is the daemon's (`daemon::runner`).
//!
//! Invariant: no I/O here; an analysis changes state only through the store, in one
//! transaction per interval, so what the API shows is what survives a crash.

pub mod partial;
pub mod policy;
pub mod ports;
pub mod request;
pub mod view;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::judge::{Judgment, MetricData};
use crate::model::Model;

pub use partial::Partial;
pub use ports::{DataSource, NoObserver, Observer, SourceError};
pub use request::{AnalysisRequest, ModelRef, RequestError, Scope, ValidRequest};
pub use view::VerdictView;

/// Where an analysis stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Pass,
    Fail,
    Inconclusive,
    Cancelled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Inconclusive => "inconclusive",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "running" => Status::Running,
            "pass" => Status::Pass,
            "fail" => Status::Fail,
            "inconclusive" => Status::Inconclusive,
            "cancelled" => Status::Cancelled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        self != Status::Running
    }

    /// Exit code of `augury wait`: 0 pass, 1 fail, 3 anything else.
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Pass => 0,
            Status::Fail => 1,
            _ => 3,
        }
    }
}

/// An analysis as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub id: String,
    pub key: String,
    pub request: AnalysisRequest,
    pub model: Model,
    pub status: Status,
    pub interval_ms: u64,
    pub lifetime_ms: u64,
    pub created_ms: i64,
    pub next_due_ms: i64,
    pub decided_ms: Option<i64>,
    /// Intervals judged so far.
    pub intervals: u32,
    pub score: Option<f64>,
    /// The latest judgment (over everything gathered so far).
    pub judgment: Option<Judgment>,
    /// Everything gathered so far, per metric (histograms merge, counts add).
    pub cumulative: BTreeMap<String, MetricData>,
}

impl Analysis {
    /// How many intervals make the whole lifetime.
    pub fn planned_intervals(&self) -> u32 {
        (self.lifetime_ms.div_ceil(self.interval_ms.max(1))) as u32
    }
}

/// One judged interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub seq: u32,
    pub start_ms: i64,
    pub end_ms: i64,
    /// What arrived during this interval alone.
    pub data: BTreeMap<String, MetricData>,
    /// The judgment over everything up to and including this interval.
    pub judgment: Judgment,
}
