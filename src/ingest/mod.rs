//! Ingest: telemetry in, per-scope observations out.
//!
//! - `otlp`: OTLP trace receiver (gRPC and HTTP); spans become latency and outcome
//!   observations for the scopes that analyses asked for.
//! - `prometheus`: PromQL query source (HTTP API client, query packs, templates).
//! - `scrape`: scrapes `/metrics` endpoints directly (exposition parser, deltas).
//!
//! Invariant: bad input never takes a receiver down and never grows memory without bound.

pub mod otlp;
pub mod prometheus;
pub mod scrape;
