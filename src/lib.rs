//! Augury: a canary judge.
#![forbid(unsafe_code)]

pub mod stats;
