//! Kayenta compatibility: its canary configs and the JSON of its REST API, as values.
//!
//! - [`config`]: a Kayenta canary config converted to an Augury model (with every field
//!   that has no counterpart reported), for `augury import kayenta` and the
//!   `/canaryConfig` routes.
//! - [`execution`]: Kayenta's execution request and status JSON, read from and written
//!   for Augury's analyses, for the `/canary` routes.
//!
//! Invariant: pure, no I/O; the routes are in `api::kayenta`, the command in `cli`.

pub mod config;
pub mod execution;
