//! Augury: a canary judge.
#![forbid(unsafe_code)]

pub mod cli;
pub mod ingest;
pub mod judge;
pub mod model;
pub mod simulate;
pub mod stats;
pub mod windows;
