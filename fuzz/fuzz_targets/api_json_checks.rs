//! What the `api_json` fuzz target runs on every input, shared with the seeded run in
//! the normal test suite (`tests/api_json_fuzz.rs` includes this file): see
//! `api_json.rs` for what is checked.
// Included as a module by a fuzz target and by a test; a failed check panics on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use augury::analysis::{AnalysisRequest, ModelRef};
use augury::api::error::{ApiError, parse_json};
use augury::api::gates::{FlaggerPayload, analysis_request};
use augury::api::judge::JudgeRequest;
use augury::judge::{JudgeOptions, Judgment, judge};
use augury::model::{Catalog, DEFAULT_MODEL, Model};

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::builtin)
}

fn refused(e: &ApiError) {
    assert!(e.status.is_client_error(), "{e:?}");
    assert!(!e.code.is_empty() && !e.message.is_empty(), "{e:?}");
}

pub fn create(body: &[u8]) {
    let request = match parse_json::<AnalysisRequest>(body) {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    let Ok(valid) = request.validate(catalog()) else {
        return;
    };
    let text = serde_json::to_vec(&valid.request).unwrap();
    let again = parse_json::<AnalysisRequest>(&text)
        .unwrap()
        .validate(catalog())
        .unwrap();
    assert_eq!(
        again, valid,
        "a valid request does not survive its own JSON"
    );
}

pub fn one_shot(body: &[u8]) {
    let request = match parse_json::<JudgeRequest>(body) {
        Ok(r) => r,
        Err(e) => return refused(&e),
    };
    let model = match &request.model {
        None => catalog().get(DEFAULT_MODEL).cloned(),
        Some(ModelRef::Name(name)) => catalog().get(name).cloned(),
        Some(ModelRef::Inline(value)) => Model::from_json(value.clone(), "(inline model)").ok(),
    };
    let Some(model) = model else {
        return;
    };
    let options = JudgeOptions {
        method: request.method,
        alternative: request.alternative,
    };
    if let Ok(judgment) = judge(&model, &request.metrics, &options) {
        let text = serde_json::to_vec(&judgment).unwrap();
        let back: Judgment = serde_json::from_slice(&text).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&judgment).unwrap()
        );
    }
}

pub fn gate(body: &[u8]) {
    let payload = match parse_json::<FlaggerPayload>(body) {
        Ok(p) => p,
        Err(e) => return refused(&e),
    };
    match analysis_request(catalog(), &payload) {
        Ok(request) => {
            let _ = request.validate(catalog());
        }
        Err(e) => refused(&e),
    }
}

/// One input: the first byte picks the body (mod 3), the rest is the body.
pub fn run(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => create(body),
        1 => one_shot(body),
        _ => gate(body),
    }
}
