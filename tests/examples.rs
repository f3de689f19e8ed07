//! The integration examples stay true: what they send is what the API takes.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use augury::model::Model;
use serde_json::Value;

fn yaml(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Replaces Argo's `{{args.NAME}}` the way its controller does, from `args`.
fn substitute(value: &mut Value, args: &[(&str, &str)]) {
    match value {
        Value::String(s) => {
            for (name, v) in args {
                *s = s.replace(&format!("{{{{args.{name}}}}}"), v);
            }
            assert!(!s.contains("{{"), "unsubstituted template in `{s}`");
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, args)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, args)),
        _ => {}
    }
}

#[tokio::test]
async fn the_argo_template_posts_a_request_the_api_takes() {
    let template = &yaml("examples/argo/analysis-template.yaml")[0];
    let metric = &template["spec"]["metrics"][0];
    let web = &metric["provider"]["web"];
    assert_eq!(web["method"], "POST");
    assert!(web["url"].as_str().unwrap().ends_with("/api/v1/analyses"));
    assert_eq!(web["jsonPath"], "{$.status}");
    assert_eq!(metric["successCondition"], "result == \"pass\"");
    // `running` must be tolerated until the analysis can have ended.
    let count = metric["count"].as_i64().unwrap();
    assert_eq!(metric["inconclusiveLimit"].as_i64().unwrap(), count - 1);

    let declared: Vec<&str> = template["spec"]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let args = [
        ("rollout", "checkout"),
        ("namespace", "shop"),
        ("service", "checkout"),
        ("stable-hash", "6d5f7c9b8"),
        ("canary-hash", "7c9f8d6b4"),
        ("attempt", "1"),
        ("augury-token", "t"),
    ];
    assert_eq!(
        declared,
        args.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "every argument the template uses is declared"
    );
    let mut body = web["jsonBody"].clone();
    substitute(&mut body, &args);

    let s = common::start().await;
    let (code, v) = s.post("/api/v1/analyses", &body).await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["status"], "running");
    let (code, again) = s.post("/api/v1/analyses", &body).await;
    assert_eq!((code, &again["id"]), (200, &v["id"]));
    // count x interval covers the lifetime with room for the last judgment.
    let interval = humantime::parse_duration(metric["interval"].as_str().unwrap()).unwrap();
    let lifetime = humantime::parse_duration(body["lifetime"].as_str().unwrap()).unwrap();
    assert!(interval * count as u32 > lifetime + interval);
}

#[tokio::test]
async fn the_flagger_hooks_share_their_analysis() {
    for file in [
        "examples/flagger/canary.yaml",
        "examples/flagger/canary-istio.yaml",
    ] {
        let canary = &yaml(file)[0];
        let hooks = canary["spec"]["analysis"]["webhooks"].as_array().unwrap();
        // Each hook type calls the gate in its mode.
        for hook in hooks {
            let url = hook["url"].as_str().unwrap();
            let mode = match hook["type"].as_str().unwrap() {
                "rollout" | "pre-rollout" => None,
                other => Some(other),
            };
            let expected = match mode {
                None => "/api/v1/gates/flagger".to_string(),
                Some(m) => format!("/api/v1/gates/flagger?mode={m}"),
            };
            assert!(url.ends_with(&expected), "{file}: {url}");
            assert_eq!(
                hook["metadata"], hooks[0]["metadata"],
                "{file}: the first hook of a revision defines the analysis, so all must agree"
            );
        }
        let types: Vec<&str> = hooks.iter().map(|h| h["type"].as_str().unwrap()).collect();
        assert!(types.contains(&"post-rollout"), "{file}: {types:?}");
    }
}

#[test]
fn the_kubernetes_install_models_are_valid() {
    let dir = format!(
        "{}/deploy/kubernetes/base/models",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut models = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        Model::from_yaml(&text, &name).unwrap_or_else(|e| panic!("{e}"));
        models += 1;
    }
    assert!(models > 0);
}

/// A few seconds of the soak benchmark (`examples/soak.rs`) against the real binary: every
/// span sent is accepted and lands in exactly one judged interval of its analysis.
#[test]
fn a_short_soak_reconciles_every_span() {
    use clap::Parser as _;
    use support::soak;
    let args = soak::Args::parse_from([
        "soak",
        "--analyses",
        "2",
        "--seconds",
        "3",
        "--rate",
        "4000",
        "--interval",
        "1s",
        "--every",
        "1",
        "--connections",
        "2",
        "--spans-per-request",
        "100",
        "--augury",
        env!("CARGO_BIN_EXE_augury"),
    ]);
    let report = soak::run_blocking(args).expect("the soak runs");
    assert!(report.ok(), "{:?}\n{}", report.failures, report.markdown);
}
