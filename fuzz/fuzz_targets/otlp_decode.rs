//! Fuzzes the OTLP trace decode path with arbitrary bytes.
//!
//! Checks, for every input: nothing panics (lean scanner, full prost decode, OTLP/JSON,
//! ingest into watched windows), and whatever the full prost decoder accepts the lean
//! scanner accepts too, reporting exactly the same span facts.
//!
//! Run: `cargo +nightly fuzz run otlp_decode -- -max_total_time=300` (from the crate root).
#![no_main]
// A fuzz target panics on purpose: a panic is the finding it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, OnceLock};

use augury::ingest::otlp::decode::{Summarize, decode_full, decode_request, visit_message};
use augury::ingest::otlp::{ingest_json, ingest_protobuf};
use augury::windows::{Scope, SpanFilter, Windows};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 2] = ["service.name", "service.version"];

fn windows() -> &'static Arc<Windows> {
    static WINDOWS: OnceLock<Arc<Windows>> = OnceLock::new();
    WINDOWS.get_or_init(|| {
        let windows = Arc::new(Windows::default());
        for version in ["1", "2"] {
            let scope: Scope = [("service.name", "a"), ("service.version", version)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            windows.watch(scope, SpanFilter::default()).unwrap();
        }
        windows
    })
}

fuzz_target!(|data: &[u8]| {
    let mut lean = Summarize::default();
    let lean_result = decode_request(data, &NAMES, &mut lean);
    if let Ok(request) = decode_full(data) {
        let mut full = Summarize::default();
        visit_message(&request, &NAMES, &mut full);
        assert!(
            lean_result.is_ok(),
            "the lean scanner refused a request prost accepts: {lean_result:?}"
        );
        assert_eq!(lean.0, full.0, "the decoders read different facts");
    }
    let windows = windows();
    let _ = ingest_protobuf(windows, data);
    let _ = ingest_json(windows, data);
});
