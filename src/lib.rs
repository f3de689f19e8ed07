//! Augury: a canary judge.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod ingest;
pub mod judge;
pub mod kayenta;
pub mod model;
pub mod net;
pub mod notify;
pub mod pool;
pub mod redact;
pub mod simulate;
pub mod stats;
pub mod store;
pub mod telemetry;
pub mod windows;
