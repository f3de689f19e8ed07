//! The daemon's OpenAPI document against the daemon itself: schemathesis (a property-based
//! API tester, from PyPI) reads `GET /api/v1/openapi.json` of a real `augury serve` with
//! API tokens configured, and sends it requests the document allows and requests it
//! refuses, then chains calls through the document's links (create, then detail, verdict,
//! cancel by the new id). It fails when the server answers what the document does not
//! say: a 5xx, a status or body the document does not list, a request the schema refuses
//! that the server takes, one it allows that the server refuses (where that can hold:
//! tests/schemathesis.toml), a mutating route that works without the token.
//!
//! `scripts/test` installs schemathesis into `.venv-tests/` and passes the path of its
//! `st` executable as `AUGURY_SCHEMATHESIS`.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::daemon::Daemon;

const TOKEN: &str = "schemathesis-test-token";

/// The `st` executable: `AUGURY_SCHEMATHESIS`, else the one `scripts/test` installs.
fn schemathesis() -> PathBuf {
    let path = std::env::var_os("AUGURY_SCHEMATHESIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-tests/bin/st"));
    assert!(
        path.is_file(),
        "schemathesis not found at {}: run scripts/test, which installs it (pinned) into \
         .venv-tests/ and sets AUGURY_SCHEMATHESIS to its `st` executable",
        path.display()
    );
    path
}

fn start() -> (tempfile::TempDir, Daemon) {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::on(&dir.path().join("a.db"))
        .flags(&["--api-tokens", TOKEN])
        .start();
    (dir, daemon)
}

#[test]
fn schemathesis_finds_nothing_the_document_does_not_say() {
    let st = schemathesis();
    let (dir, daemon) = start();
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis.toml");
    let output = Command::new(&st)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", daemon.api))
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
        // Bounded and reproducible: the same requests every run, about half a minute.
        .args([
            "--max-examples",
            "60",
            "--seed",
            "20261207",
            "--workers",
            "1",
        ])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "30"])
        .current_dir(dir.path())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", st.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis reported failures ({}):\n{text}\n\ndaemon log:\n{}",
        output.status,
        daemon.log_text()
    );
    // Every phase ran, the stateful one through the document's links.
    for phase in ["Examples", "Coverage", "Fuzzing", "Stateful"] {
        assert!(
            text.lines()
                .any(|l| l.contains(phase) && !l.contains('⏭') && l.contains('✅')),
            "the {phase} phase did not run and pass:\n{text}"
        );
    }
    let links = text
        .lines()
        .find(|l| l.contains("API Links:"))
        .unwrap_or_else(|| panic!("no stateful link coverage in:\n{text}"));
    let covered: u32 = links
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or(0);
    assert!(covered > 0, "no link was followed: {links}\n{text}");
}

/// Validates `instance` against the document's schema `name` with the JSON Schema
/// validator schemathesis itself uses (`jsonschema_rs`, in the same venv).
fn schema_accepts(doc: &Value, name: &str, instance: &Value) -> bool {
    let python = schemathesis().with_file_name("python");
    let program = r##"
import json, sys
import jsonschema_rs
doc, name, instance = json.load(sys.stdin)
schema = {"$ref": "#/components/schemas/" + name, "components": doc["components"]}
valid = jsonschema_rs.Draft202012Validator(schema).is_valid(instance)
print("valid" if valid else "invalid")
"##;
    let mut child = Command::new(&python)
        .args(["-c", program])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    let input = serde_json::to_vec(&json!([doc, name, instance])).unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), &input).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        out.status.success() && (answer == "valid" || answer == "invalid"),
        "validating against {name}: {answer}"
    );
    answer == "valid"
}

/// The three requests a schemathesis run found the document allowing and the server
/// refusing: the document now refuses them too, and still allows the request beside
/// each that the server takes.
#[tokio::test(flavor = "multi_thread")]
async fn what_the_server_refuses_the_document_refuses() {
    let (_dir, daemon) = start();
    let doc = daemon.get("/api/v1/openapi.json").await;
    let http = support::http::client(Duration::from_secs(30));
    let auth = |r: reqwest::RequestBuilder| r.bearer_auth(TOKEN);

    let request = json!({"key": "checkout@2", "model": "http-red",
        "baseline": {"service.name": "checkout", "service.version": "1"},
        "canary": {"service.name": "checkout", "service.version": "2"}});
    let mut empty_key = request.clone();
    empty_key["key"] = json!("");
    let judge = json!({"model": {"name": "m", "metrics": [{"name": "latency"}]},
        "metrics": {"latency": {"baseline": [1.0, 2.0, 3.0], "canary": [1.0, 2.0, 3.0]}}});
    let mut nameless_model = judge.clone();
    nameless_model["model"] = json!({"metrics": [{"name": "latency"}]});
    let gate = json!({"name": "checkout", "namespace": "shop", "checksum": "abc",
        "metadata": {"scope.service.version": "1"}});
    let mut empty_name = gate.clone();
    empty_name["name"] = json!("");

    let cases = [
        ("/api/v1/analyses", "AnalysisRequest", request, empty_key),
        ("/api/v1/judge", "JudgeRequest", judge, nameless_model),
        ("/api/v1/gates/flagger", "FlaggerPayload", gate, empty_name),
    ];
    for (path, schema, good, bad) in cases {
        let url = format!("{}{path}", daemon.api);
        let r = auth(http.post(&url).json(&good)).send().await.unwrap();
        let status = r.status().as_u16();
        assert!(
            (200..300).contains(&status),
            "{path}: {status} {}",
            r.text().await.unwrap()
        );
        assert!(
            schema_accepts(&doc, schema, &good),
            "{schema} refuses {good}"
        );

        let r = auth(http.post(&url).json(&bad)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{path}: {bad}");
        assert!(
            !schema_accepts(&doc, schema, &bad),
            "{schema} allows {bad}, which the server refuses"
        );
    }
}
