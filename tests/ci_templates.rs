//! The CI templates in `integrations/`, each run the way its runner runs it, against a
//! real daemon (the built `augury serve` on 127.0.0.1, with API tokens, fed by real OTLP
//! exporters: a healthy canary that passes and a regressed one that fails), with the
//! binary installed from a tarball served over HTTP with its checksum.
//!
//! - GitHub: the composite action's `action.yml` is read and its steps run as the Actions
//!   runner runs them: `${{ inputs.* }}`, `${{ github.action_path }}`,
//!   `${{ steps.*.outputs.* }}` substituted, each `run:` written to a file and run with
//!   the step's shell (`bash --noprofile --norc -eo pipefail FILE`) and `env:`, fresh
//!   `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH` and `GITHUB_STEP_SUMMARY` files per step,
//!   read back after it (outputs, environment and PATH for the next steps), a failing step
//!   ending the action with its exit code.
//! - GitLab: the hidden job is extended by a user's job (hashes merged, as `extends:` does),
//!   its `variables:` exported, its `script:` lines run in one bash with `set -eo
//!   pipefail`, the dotenv report read back.
//! - Jenkins: the shared-library step runs under Groovy (`AUGURY_GROOVY`, Debian's
//!   `groovy`, which `scripts/test` installs) with stand-ins for the pipeline steps it
//!   calls (tests/ci_templates/jenkins_harness.groovy): its `sh` scripts run for real.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use support::daemon::Daemon;
use support::traffic::{Traffic, Transport, Version};

const TOKEN: &str = "ci-templates-token";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A daemon with auth on, and traffic for two canaries: `cart` 1.1.0 is its baseline's
/// twin (it passes), `pay` 1.1.0 is slower and fails more (it fails).
struct Canaries {
    daemon: Daemon,
    traffic: Option<Traffic>,
    _dir: tempfile::TempDir,
}

impl Canaries {
    fn start() -> Canaries {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Daemon::on(&dir.path().join("a.db"))
            .flags(&["--api-tokens", TOKEN])
            .start();
        let traffic = Traffic::start(
            Transport::Grpc,
            &daemon.otlp_grpc,
            vec![
                Version::new("cart", "1.0.0"),
                Version::new("cart", "1.1.0"),
                Version::new("pay", "1.0.0"),
                Version::new("pay", "1.1.0").regressed(),
            ],
        );
        Canaries {
            daemon,
            traffic: Some(traffic),
            _dir: dir,
        }
    }
}

impl Drop for Canaries {
    fn drop(&mut self) {
        if let Some(t) = self.traffic.take() {
            t.stop();
        }
    }
}

/// The daemon with its canaries, the tarball's URL and a PATH without `augury`: what a
/// template that installs the binary runs with.
fn installing_runner() -> (Canaries, String, String) {
    (Canaries::start(), serve_tarball(), path_without_augury())
}

/// One analysis a template starts: the service and whether it should pass.
struct Case {
    service: &'static str,
    passes: bool,
}

const CASES: [Case; 2] = [
    Case {
        service: "cart",
        passes: true,
    },
    Case {
        service: "pay",
        passes: false,
    },
];

/// The built binary as a release tarball (`augury` at its root, gzip) and its SHA-256.
struct Tarball {
    path: PathBuf,
    sha256: String,
}

fn tarball() -> &'static Tarball {
    static TARBALL: OnceLock<(tempfile::TempDir, Tarball)> = OnceLock::new();
    &TARBALL
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let staged = dir.path().join("staged");
            std::fs::create_dir(&staged).unwrap();
            std::fs::copy(support::daemon::bin(), staged.join("augury")).unwrap();
            let path = dir.path().join("augury-linux.tar.gz");
            let status = Command::new("tar")
                .arg("-czf")
                .arg(&path)
                .arg("-C")
                .arg(&staged)
                .arg("augury")
                .status()
                .unwrap();
            assert!(status.success(), "tar: {status}");
            let sha256 = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
            (dir, Tarball { path, sha256 })
        })
        .1
}

/// Serves the tarball at `http://127.0.0.1:PORT/augury-linux.tar.gz` (404 elsewhere)
/// from a thread, for as long as the test runs.
fn serve_tarball() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/augury-linux.tar.gz",
        listener.local_addr().unwrap()
    );
    let body = std::fs::read(&tarball().path).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // The rest of the head, up to its blank line.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let found = request_line.starts_with("GET /augury-linux.tar.gz ");
            let (status, payload): (&str, &[u8]) = if found {
                ("200 OK", &body)
            } else {
                ("404 Not Found", b"not found\n")
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                payload.len()
            );
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(payload));
        }
    });
    url
}

/// The test's PATH without any folder holding an `augury`: the templates must install
/// the binary they use.
fn path_without_augury() -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let kept: Vec<PathBuf> = std::env::split_paths(&path)
        .filter(|dir| !dir.join("augury").exists())
        .collect();
    std::env::join_paths(kept).unwrap().into_string().unwrap()
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

// ---------------------------------------------------------------- GitHub Actions

/// What running the composite action gave.
#[derive(Debug)]
struct ActionRun {
    /// The exit code of the step that failed, 0 when every step succeeded.
    code: i32,
    /// Ids of the steps that ran, in order.
    steps: Vec<String>,
    /// The action's outputs (its `outputs.*.value` evaluated).
    outputs: BTreeMap<String, String>,
    /// Every step's GITHUB_STEP_SUMMARY, in order.
    summary: String,
    /// Every step's stdout and stderr.
    log: String,
}

/// Contexts a composite action's expressions may read here.
struct Contexts {
    inputs: BTreeMap<String, String>,
    action_path: String,
    runner_temp: String,
    steps: BTreeMap<String, BTreeMap<String, String>>,
}

impl Contexts {
    /// Substitutes every `${{ EXPR }}` in `text`; an expression this stand-in does not
    /// know fails the test (the action uses something not checked here).
    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..]
                .find("}}")
                .unwrap_or_else(|| panic!("unclosed expression in {text}"));
            let expr = rest[start + 3..start + end].trim();
            out.push_str(&self.value(expr));
            rest = &rest[start + end + 2..];
        }
        out.push_str(rest);
        out
    }

    fn value(&self, expr: &str) -> String {
        let parts: Vec<&str> = expr.split('.').collect();
        match parts.as_slice() {
            ["inputs", name] => self
                .inputs
                .get(*name)
                .unwrap_or_else(|| panic!("`{expr}`: no input `{name}` is declared"))
                .clone(),
            ["github", "action_path"] => self.action_path.clone(),
            ["runner", "temp"] => self.runner_temp.clone(),
            // An output a step did not set is an empty string, as on the runner.
            ["steps", id, "outputs", name] => self
                .steps
                .get(*id)
                .and_then(|o| o.get(*name))
                .cloned()
                .unwrap_or_default(),
            _ => panic!("expression `{expr}` is not one this runner stand-in evaluates"),
        }
    }
}

/// Reads a file command file (GITHUB_OUTPUT, GITHUB_ENV): `NAME=VALUE` lines and
/// `NAME<<DELIMITER` ... `DELIMITER` blocks.
fn file_commands(path: &Path) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut values = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.is_empty() {
            continue;
        }
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delimiter {
                    break;
                }
                value.push(l);
            }
            values.insert(name.to_string(), value.join("\n"));
        } else {
            let (name, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{}: bad line `{line}`", path.display()));
            values.insert(name.to_string(), value.to_string());
        }
    }
    values
}

/// Runs the composite action in `integrations/github-action` with `with` as its inputs.
fn run_action(with: &[(&str, &str)], path: &str) -> ActionRun {
    let action_dir = repo().join("integrations/github-action");
    let action = yaml(&action_dir.join("action.yml"));
    assert_eq!(action["runs"]["using"], "composite");
    let declared = action["inputs"].as_object().unwrap();
    let mut inputs = BTreeMap::new();
    for (name, spec) in declared {
        let default = spec["default"].as_str().unwrap_or("").to_string();
        inputs.insert(name.clone(), default);
    }
    for (name, value) in with {
        assert!(
            declared.contains_key(*name),
            "`with: {name}` is not an input of the action"
        );
        inputs.insert(name.to_string(), value.to_string());
    }
    for (name, spec) in declared {
        if spec["required"] == true {
            assert!(
                with.iter().any(|(n, _)| n == name),
                "required input `{name}` not given"
            );
        }
    }
    let temp = tempfile::tempdir().unwrap();
    let workspace = tempfile::tempdir().unwrap();
    let mut contexts = Contexts {
        inputs,
        action_path: action_dir.display().to_string(),
        runner_temp: temp.path().display().to_string(),
        steps: BTreeMap::new(),
    };
    let mut run = ActionRun {
        code: 0,
        steps: Vec::new(),
        outputs: BTreeMap::new(),
        summary: String::new(),
        log: String::new(),
    };
    let mut job_env: BTreeMap<String, String> = BTreeMap::new();
    let mut added_path: Vec<String> = Vec::new();
    for (n, step) in action["runs"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let step = step.as_object().unwrap();
        for key in step.keys() {
            assert!(
                ["id", "name", "shell", "env", "run"].contains(&key.as_str()),
                "step key `{key}` is not one this runner stand-in supports"
            );
        }
        let id = step["id"].as_str().unwrap().to_string();
        assert_eq!(step["shell"], "bash", "step {id}: only bash is run here");
        let files = |what: &str| temp.path().join(format!("{what}_{n}"));
        let (output, env_file, path_file, summary) = (
            files("output"),
            files("env"),
            files("path"),
            files("summary"),
        );
        for f in [&output, &env_file, &path_file, &summary] {
            std::fs::write(f, "").unwrap();
        }
        let script = temp.path().join(format!("step_{n}.sh"));
        std::fs::write(&script, contexts.substitute(step["run"].as_str().unwrap())).unwrap();
        let full_path = added_path
            .iter()
            .rev()
            .cloned()
            .chain([path.to_string()])
            .collect::<Vec<_>>()
            .join(":");
        let mut command = Command::new("bash");
        command
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&script)
            .current_dir(workspace.path())
            .env_clear()
            .env("PATH", &full_path)
            .env("HOME", temp.path())
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", workspace.path())
            .env("GITHUB_ACTION_PATH", &contexts.action_path)
            .env("RUNNER_TEMP", temp.path())
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_ENV", &env_file)
            .env("GITHUB_PATH", &path_file)
            .env("GITHUB_STEP_SUMMARY", &summary)
            .envs(&job_env);
        if let Some(env) = step.get("env").and_then(Value::as_object) {
            for (name, value) in env {
                let value = match value {
                    Value::String(s) => contexts.substitute(s),
                    other => other.to_string(),
                };
                command.env(name, value);
            }
        }
        let out = command.output().unwrap();
        run.steps.push(id.clone());
        run.log.push_str(&text(&out.stdout));
        run.log.push_str(&text(&out.stderr));
        run.summary
            .push_str(&std::fs::read_to_string(&summary).unwrap());
        contexts.steps.insert(id, file_commands(&output));
        job_env.extend(file_commands(&env_file));
        added_path.extend(
            std::fs::read_to_string(&path_file)
                .unwrap()
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
        if !out.status.success() {
            run.code = out.status.code().unwrap_or(-1);
            break;
        }
    }
    // The runner maps the outputs after the steps, whether one failed or not.
    for (name, spec) in action["outputs"].as_object().unwrap() {
        let value = contexts.substitute(spec["value"].as_str().unwrap());
        run.outputs.insert(name.clone(), value);
    }
    run
}

#[test]
fn github_action_installs_the_binary_and_exits_with_the_verdict() {
    let (canaries, url, path) = installing_runner();
    for case in CASES {
        let key = format!("gh-{}", case.service);
        let baseline = format!("service.name={}\nservice.version=1.0.0\n", case.service);
        let canary = format!("service.name={}\nservice.version=1.1.0\n", case.service);
        let run = run_action(
            &[
                ("server", &canaries.daemon.api),
                ("token", TOKEN),
                ("key", &key),
                ("baseline", &baseline),
                ("canary", &canary),
                ("interval", "1s"),
                ("lifetime", "4s"),
                ("timeout", "90s"),
                ("poll", "200ms"),
                ("download-url", &url),
                ("sha256", &tarball().sha256),
            ],
            &path,
        );
        assert_eq!(run.steps, ["install", "analyze"], "{}", run.log);
        assert!(
            run.log
                .contains(&format!("augury {}", env!("CARGO_PKG_VERSION"))),
            "the installed binary ran: {}",
            run.log
        );
        if case.passes {
            assert_eq!(run.code, 0, "{}", run.log);
            assert_eq!(run.outputs["verdict"], "pass", "{run:?}");
            assert_eq!(run.outputs["exit-code"], "0");
            let id = &run.outputs["analysis-id"];
            assert!(!id.is_empty(), "{run:?}");
            assert_eq!(
                run.outputs["analysis-url"],
                format!("{}/api/v1/analyses/{id}", canaries.daemon.api)
            );
            assert!(
                run.summary.contains("### Augury canary verdict: `pass`"),
                "{}",
                run.summary
            );
            assert!(run.summary.contains("verdict: PASS"), "{}", run.summary);
        } else {
            // The runner fails the action with the step's exit code; the outputs the step
            // wrote are still the action's outputs.
            assert_eq!(run.code, 1, "{}", run.log);
            assert_eq!(run.outputs["verdict"], "fail", "{run:?}");
            assert_eq!(run.outputs["exit-code"], "1");
            assert!(!run.outputs["analysis-id"].is_empty(), "{run:?}");
            assert!(
                run.summary.contains("### Augury canary verdict: `fail`"),
                "{}",
                run.summary
            );
            assert!(run.summary.contains("verdict: FAIL"), "{}", run.summary);
            assert!(
                run.log.contains("latency"),
                "the reason is logged: {}",
                run.log
            );
        }
    }
}

#[test]
fn github_action_refuses_a_tarball_with_the_wrong_checksum() {
    let url = serve_tarball();
    let wrong = hex::encode(Sha256::digest(b"another tarball"));
    let run = run_action(
        &[
            // Nothing listens here: the analysis step must not even run.
            ("server", "http://127.0.0.1:9"),
            ("key", "never"),
            ("baseline", "service.name=cart"),
            ("canary", "service.name=cart"),
            ("download-url", &url),
            ("sha256", &wrong),
        ],
        &path_without_augury(),
    );
    assert_eq!(run.code, 1, "{}", run.log);
    assert_eq!(run.steps, ["install"], "{}", run.log);
    assert_eq!(run.outputs["verdict"], "", "{run:?}");
    assert!(
        run.log
            .contains("does not have the SHA-256 given in sha256"),
        "{}",
        run.log
    );
}

/// Without a download URL and with no `augury` on PATH, the action builds the binary of
/// its own ref: `cargo install --locked --root DIR --path <action>/../..`. A stand-in
/// `cargo` (a real build takes minutes) checks that it was asked for this repository's
/// crate and installs the built binary where `cargo install --root` puts it.
#[test]
fn github_action_without_a_tarball_builds_its_own_ref() {
    let canaries = Canaries::start();
    let tools = tempfile::tempdir().unwrap();
    let cargo = tools.path().join("cargo");
    std::fs::write(
        &cargo,
        format!(
            r#"#!/bin/bash
set -euo pipefail
echo "cargo $*" >&2
[ "$1 $2" = "install --locked" ] || exit 101
root=""; path=""
while [ $# -gt 0 ]; do
  case "$1" in --root) root=$2; shift;; --path) path=$2; shift;; esac; shift
done
grep -q '^name = "augury"$' "$path/Cargo.toml" || {{ echo "no augury crate at $path" >&2; exit 101; }}
mkdir -p "$root/bin" && cp '{}' "$root/bin/augury"
"#,
            support::daemon::bin().display()
        ),
    )
    .unwrap();
    let mut permissions = std::fs::metadata(&cargo).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
    std::fs::set_permissions(&cargo, permissions).unwrap();
    let path = format!("{}:{}", tools.path().display(), path_without_augury());
    let run = run_action(
        &[
            ("server", &canaries.daemon.api),
            ("token", TOKEN),
            ("key", "gh-built"),
            ("baseline", "service.name=cart\nservice.version=1.0.0"),
            ("canary", "service.name=cart\nservice.version=1.1.0"),
            ("interval", "1s"),
            ("lifetime", "4s"),
            ("timeout", "90s"),
            ("poll", "200ms"),
        ],
        &path,
    );
    assert_eq!(run.code, 0, "{}", run.log);
    assert!(
        run.log.contains("cargo install --locked --root"),
        "{}",
        run.log
    );
    assert_eq!(run.outputs["verdict"], "pass", "{run:?}");
}

#[test]
fn github_action_says_why_the_daemon_refused() {
    // The right binary, a wrong token: exit 2 (refused), verdict `error`.
    let canaries = Canaries::start();
    let url = serve_tarball();
    let run = run_action(
        &[
            ("server", &canaries.daemon.api),
            ("token", "not-the-token"),
            ("key", "gh-refused"),
            ("baseline", "service.name=cart"),
            ("canary", "service.name=cart"),
            ("download-url", &url),
            ("sha256", &tarball().sha256),
        ],
        &path_without_augury(),
    );
    assert_eq!(run.code, 2, "{}", run.log);
    assert!(run.log.contains("401"), "{}", run.log);
    assert!(run.summary.contains("verdict: `error`"), "{}", run.summary);
}

// ---------------------------------------------------------------- GitLab CI

/// `extends:` as GitLab merges it: hashes merged key by key, anything else replaced.
fn merge(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            let mut merged: Map<String, Value> = b.clone();
            for (k, v) in o {
                let value = match b.get(k) {
                    Some(bv) => merge(bv, v),
                    None => v.clone(),
                };
                merged.insert(k.clone(), value);
            }
            Value::Object(merged)
        }
        (_, o) => o.clone(),
    }
}

/// What a GitLab job run gave.
struct GitlabRun {
    code: i32,
    log: String,
    /// The dotenv report (`artifacts: reports: dotenv:`).
    report: BTreeMap<String, String>,
    /// The `artifacts: paths:` the job left, with their contents.
    artifacts: BTreeMap<String, String>,
}

/// Runs the user's job `canary-verdict` (extending the template's hidden job) as the
/// GitLab runner's bash shell does.
fn run_gitlab_job(variables: Value, path: &str) -> GitlabRun {
    let template = yaml(&repo().join("integrations/gitlab/augury.gitlab-ci.yml"));
    let user: Value =
        json!({"extends": ".augury-canary", "stage": "verify", "variables": variables});
    let hidden = &template[".augury-canary"];
    assert!(hidden.is_object(), "the template defines .augury-canary");
    let mut job = merge(hidden, &user);
    job.as_object_mut().unwrap().remove("extends");
    let project = tempfile::tempdir().unwrap();
    let mut script = String::from("set -eo pipefail\nset +o noclobber\n");
    for key in ["before_script", "script"] {
        for line in job[key].as_array().into_iter().flatten() {
            script.push_str(line.as_str().unwrap());
            script.push('\n');
        }
    }
    let file = project.path().join(".gitlab-job.sh");
    std::fs::write(&file, script).unwrap();
    let mut command = Command::new("bash");
    command
        .arg(&file)
        .current_dir(project.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", project.path())
        .env("CI", "true")
        .env("GITLAB_CI", "true")
        .env("CI_PROJECT_DIR", project.path())
        .env("CI_JOB_ID", "7")
        .env("CI_COMMIT_SHA", "0123456789abcdef");
    for (name, value) in job["variables"].as_object().unwrap() {
        command.env(name, value.as_str().unwrap());
    }
    let out = command.output().unwrap();
    let log = format!("{}{}", text(&out.stdout), text(&out.stderr));
    let dotenv = job["artifacts"]["reports"]["dotenv"].as_str().unwrap();
    let report = file_commands(&project.path().join(dotenv));
    let artifacts = job["artifacts"]["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let name = p.as_str().unwrap().to_string();
            let content = std::fs::read_to_string(project.path().join(&name)).ok()?;
            Some((name, content))
        })
        .collect();
    GitlabRun {
        code: out.status.code().unwrap_or(-1),
        log,
        report,
        artifacts,
    }
}

#[test]
fn gitlab_template_installs_the_binary_and_exits_with_the_verdict() {
    let (canaries, url, path) = installing_runner();
    for case in CASES {
        let GitlabRun {
            code,
            log,
            report,
            artifacts,
        } = run_gitlab_job(
            json!({
                "AUGURY_SERVER": canaries.daemon.api,
                "AUGURY_TOKEN": TOKEN,
                "AUGURY_KEY": format!("gl-{}", case.service),
                "AUGURY_BASELINE": format!("service.name={} service.version=1.0.0", case.service),
                "AUGURY_CANARY": format!("service.name={}\nservice.version=1.1.0", case.service),
                "AUGURY_INTERVAL": "1s",
                "AUGURY_LIFETIME": "4s",
                "AUGURY_TIMEOUT": "90s",
                "AUGURY_POLL": "200ms",
                "AUGURY_DOWNLOAD_URL": url,
                "AUGURY_SHA256": tarball().sha256,
            }),
            &path,
        );
        let (want_code, want_verdict) = if case.passes {
            (0, "pass")
        } else {
            (1, "fail")
        };
        assert_eq!(code, want_code, "{log}");
        assert_eq!(report["AUGURY_VERDICT"], want_verdict, "{log}");
        assert_eq!(report["AUGURY_EXIT_CODE"], want_code.to_string());
        let id = &report["AUGURY_ANALYSIS_ID"];
        assert_eq!(
            report["AUGURY_ANALYSIS_URL"],
            format!("{}/api/v1/analyses/{id}", canaries.daemon.api)
        );
        assert!(
            log.contains(&format!("augury {}", env!("CARGO_PKG_VERSION"))),
            "{log}"
        );
        let kept = &artifacts["augury-verdict.txt"];
        assert!(
            kept.starts_with(&format!("verdict: {}", want_verdict.to_uppercase())),
            "{kept}"
        );
    }
}

#[test]
fn gitlab_template_refuses_a_tarball_with_the_wrong_checksum() {
    let url = serve_tarball();
    let GitlabRun {
        code, log, report, ..
    } = run_gitlab_job(
        json!({
            "AUGURY_SERVER": "http://127.0.0.1:9",
            "AUGURY_KEY": "never",
            "AUGURY_BASELINE": "service.name=cart",
            "AUGURY_CANARY": "service.name=cart",
            "AUGURY_DOWNLOAD_URL": url,
            "AUGURY_SHA256": hex::encode(Sha256::digest(b"another tarball")),
        }),
        &path_without_augury(),
    );
    assert_eq!(code, 1, "{log}");
    assert!(log.contains("does not have the SHA-256"), "{log}");
    assert!(!log.contains("augury 0."), "nothing ran after: {log}");
    assert!(report.is_empty(), "no verdict: {report:?}");
}

// ---------------------------------------------------------------- Jenkins

/// Debian's `groovy`: `AUGURY_GROOVY`, which `scripts/test` sets after installing it.
fn groovy() -> PathBuf {
    let path = std::env::var_os("AUGURY_GROOVY").map(PathBuf::from);
    match path {
        Some(p) if p.is_file() => p,
        _ => panic!(
            "AUGURY_GROOVY does not name groovy: run scripts/test, which installs Debian's \
             groovy and sets AUGURY_GROOVY to it"
        ),
    }
}

/// Runs `auguryCanary(config)` under the Jenkins harness with a folder holding `augury`
/// first on PATH; returns what the harness reports and the console log.
fn run_jenkins_step(config: Value) -> (Value, String) {
    let workspace = tempfile::tempdir().unwrap();
    let bin = workspace.path().join(".bin");
    std::fs::create_dir(&bin).unwrap();
    // The agent has augury on its PATH (installed from the same tarball).
    let status = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball().path)
        .arg("-C")
        .arg(&bin)
        .status()
        .unwrap();
    assert!(status.success());
    let config_file = workspace.path().join(".config.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    let out = Command::new(groovy())
        .arg(repo().join("tests/ci_templates/jenkins_harness.groovy"))
        .arg(repo().join("integrations/jenkins/vars/auguryCanary.groovy"))
        .arg(&config_file)
        .arg(workspace.path())
        .env_clear()
        .env(
            "PATH",
            format!("{}:{}", bin.display(), path_without_augury()),
        )
        .env("HOME", workspace.path())
        .env("AUGURY_TOKEN", TOKEN)
        .env(
            "JAVA_HOME",
            std::env::var_os("JAVA_HOME").unwrap_or_default(),
        )
        .output()
        .unwrap();
    let log = text(&out.stderr);
    assert!(out.status.success(), "groovy failed: {log}");
    let outcome: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{log}", text(&out.stdout)));
    (outcome, log)
}

#[test]
fn jenkins_step_returns_the_verdict_or_fails_the_build() {
    let canaries = Canaries::start();
    let mut read = String::new();
    for case in CASES {
        let (outcome, log) = run_jenkins_step(json!({
            "server": canaries.daemon.api,
            "key": format!("jenkins-{}", case.service),
            "baseline": {"service.name": case.service, "service.version": "1.0.0"},
            "canary": {"service.name": case.service, "service.version": "1.1.0"},
            "interval": "1s",
            "lifetime": "4s",
            "timeout": "90s",
            "poll": "200ms",
        }));
        if case.passes {
            let result = &outcome["result"];
            assert_eq!(result["verdict"], "pass", "{outcome}\n{log}");
            assert_eq!(result["exitCode"], 0);
            let id = result["id"].as_str().unwrap();
            assert_eq!(
                result["url"],
                format!("{}/api/v1/analyses/{id}", canaries.daemon.api)
            );
            assert!(log.contains("verdict: PASS"), "{log}");
        } else {
            let error = outcome["error"]
                .as_str()
                .unwrap_or_else(|| panic!("{outcome}\n{log}"));
            assert!(
                error.starts_with("Augury: the canary failed (http://127.0.0.1:"),
                "{error}"
            );
            assert!(log.contains("verdict: FAIL"), "{log}");
        }
        read.push_str(&log);
    }
    // The token went through the environment: it is in no script the console shows.
    assert!(!read.contains(TOKEN));
}

#[test]
fn jenkins_step_names_what_is_missing() {
    let (outcome, _) = run_jenkins_step(json!({
        "server": "http://127.0.0.1:9",
        "key": "k",
        "canary": {"service.name": "cart"},
    }));
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .starts_with("auguryCanary: give baseline:"),
        "{outcome}"
    );
    // Unreachable daemon: exit 4, the build fails saying so.
    let (outcome, _) = run_jenkins_step(json!({
        "server": "http://127.0.0.1:9",
        "key": "k",
        "baseline": ["service.name=cart"],
        "canary": ["service.name=cart"],
    }));
    assert_eq!(
        outcome["error"], "Augury could not be reached (exit 4)",
        "{outcome}"
    );
}

/// The templates read nothing but what they document: every `${{ inputs.X }}` is declared.
#[test]
fn github_action_uses_only_declared_inputs() {
    let action_text =
        std::fs::read_to_string(repo().join("integrations/github-action/action.yml")).unwrap();
    let action = yaml(&repo().join("integrations/github-action/action.yml"));
    let declared = action["inputs"].as_object().unwrap();
    let mut rest = action_text.as_str();
    let mut seen = 0;
    while let Some(i) = rest.find("inputs.") {
        let name: String = rest[i + 7..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        assert!(
            declared.contains_key(&name),
            "inputs.{name} is not declared"
        );
        seen += 1;
        rest = &rest[i + 7..];
    }
    assert!(seen > 5);
    let mut body = String::new();
    std::fs::File::open(repo().join("integrations/README.md"))
        .unwrap()
        .read_to_string(&mut body)
        .unwrap();
    for name in declared.keys() {
        assert!(
            body.contains(&format!("`{name}`")),
            "integrations/README.md documents input `{name}`"
        );
    }
}
