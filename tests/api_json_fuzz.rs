//! The `api_json` fuzz target's checks (fuzz/fuzz_targets/api_json_checks.rs), run in the
//! normal test suite on seeded inputs, so they hold on every build and not only where
//! cargo-fuzz runs: random bytes, valid bodies with bytes flipped, inserted or cut, and
//! JSON built from the bodies' own field names with values of every type.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../fuzz/fuzz_targets/api_json_checks.rs"]
mod checks;

use proptest::prelude::*;
use serde_json::{Value, json};

/// A valid body of each kind, in the order of the selector byte.
fn seeds() -> [Value; 3] {
    [
        json!({"key": "checkout@1.4.2", "model": "http-red",
            "baseline": {"service.name": "checkout", "service.version": "1.4.1"},
            "canary": {"service.name": "checkout", "service.version": "1.4.2"},
            "interval": "30s", "lifetime": "10m", "notify": []}),
        json!({"model": {"name": "m", "thresholds": {"pass": 90, "marginal": 50},
                "metrics": [{"name": "latency", "alpha": 0.05, "effect": {"allowed_increase": 1.1}},
                            {"name": "errors", "kind": "error-ratio", "slo": {"target": 0.99}}]},
            "metrics": {"latency": {"baseline": [1.0, 2.0, 3.5, null], "canary": [1.5, 2.5, 3.0, 9.0]},
                        "errors": {"baseline": {"requests": 1000, "errors": 3},
                                   "canary": {"requests": 900, "errors": 30}}},
            "method": "auto", "alternative": "greater"}),
        json!({"name": "checkout", "namespace": "shop", "phase": "Progressing",
            "checksum": "6b8f7d9c", "metadata": {"scope.service.version": "1", "mode": "gate"}}),
    ]
}

/// The field names the three bodies (and inline models) have, and a few they do not.
const NAMES: &[&str] = &[
    "key",
    "model",
    "baseline",
    "canary",
    "interval",
    "lifetime",
    "notify",
    "early_pass",
    "min_duration",
    "metrics",
    "method",
    "alternative",
    "name",
    "namespace",
    "phase",
    "checksum",
    "metadata",
    "scope",
    "thresholds",
    "pass",
    "marginal",
    "groups",
    "weight",
    "kind",
    "test",
    "alpha",
    "effect",
    "slo",
    "target",
    "source",
    "otlp",
    "span_kind",
    "requests",
    "errors",
    "histogram",
    "offset",
    "counts",
    "zero",
    "sum",
    "min",
    "max",
    "service.name",
    "service.version",
    "latency",
    "value",
    "unknown",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "",
            " ",
            "30s",
            "0s",
            "1h",
            "10m",
            "http-red",
            "default",
            "sequential",
            "error-ratio",
            "server",
            "x",
            "9999999999999999999d"
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(prop::sample::select(NAMES), inner, 0..6).prop_map(|m| {
                Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

fn with_selector(selector: u8, body: &[u8]) -> Vec<u8> {
    let mut data = vec![selector];
    data.extend_from_slice(body);
    data
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 5000,
        failure_persistence: None,
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_bytes(data in prop::collection::vec(any::<u8>(), 0..512)) {
        checks::run(&data);
    }

    #[test]
    fn valid_bodies_mutated(
        selector in 0u8..3,
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..8),
    ) {
        let mut body = serde_json::to_vec(&seeds()[selector as usize]).unwrap();
        for (at, op, byte) in edits {
            let i = at.index(body.len() + 1);
            match op {
                0 if i < body.len() => body[i] = byte,
                1 => body.insert(i, byte),
                _ if i < body.len() => { body.remove(i); }
                _ => {}
            }
        }
        checks::run(&with_selector(selector, &body));
    }

    #[test]
    fn valid_bodies_with_a_field_replaced(
        selector in 0u8..3,
        field in prop::sample::select(NAMES),
        value in json_value(),
    ) {
        let mut body = seeds()[selector as usize].clone();
        body[field] = value;
        checks::run(&with_selector(selector, &serde_json::to_vec(&body).unwrap()));
    }

    #[test]
    fn json_of_the_bodies_names(selector in 0u8..3, body in json_value()) {
        checks::run(&with_selector(selector, &serde_json::to_vec(&body).unwrap()));
    }
}

/// The seeds are what the checks accept, so the mutated runs start from the accepting
/// paths (the round trips), not only refusals.
#[test]
fn the_seeds_are_valid() {
    use augury::analysis::AnalysisRequest;
    use augury::api::error::parse_json;
    use augury::model::Catalog;
    let [create, _, gate] = seeds();
    let request: AnalysisRequest = parse_json(&serde_json::to_vec(&create).unwrap()).unwrap();
    request.validate(&Catalog::builtin()).unwrap();
    let payload = parse_json(&serde_json::to_vec(&gate).unwrap()).unwrap();
    augury::api::gates::analysis_request(&Catalog::builtin(), &payload)
        .unwrap()
        .validate(&Catalog::builtin())
        .unwrap();
}
