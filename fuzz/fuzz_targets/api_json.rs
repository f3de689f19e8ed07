//! Fuzzes the HTTP API's JSON bodies through the code the routes run on them.
//!
//! The first input byte picks the body (mod 3): 0 the create-analysis request
//! (`POST /api/v1/analyses`: `parse_json`, then `AnalysisRequest::validate` against the
//! built-in models), 1 the one-shot judgment (`POST /api/v1/judge`: `parse_json`, the
//! model by name or inline through `Model::from_json`, then `judge`), 2 the Flagger gate
//! payload (`POST /api/v1/gates/flagger`: `parse_json`, `gates::analysis_request`, then
//! validation). The rest is the body, raw bytes (invalid UTF-8 included). Beyond "never
//! panics", every run checks:
//! - a refusal is a 4xx with a code and a message (what the client gets);
//! - an accepted analysis request written back as JSON parses and validates again to the
//!   same request, model and durations;
//! - an accepted judgment serializes to JSON and reads back to the same judgment.
//!
//! Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run api_json -- -max_total_time=300 -max_len=4096`
//! (from the crate root; see docs/fuzzing.md).
#![no_main]
// A fuzz target panics on purpose: a panic is the finding it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api_json_checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::run(data));
