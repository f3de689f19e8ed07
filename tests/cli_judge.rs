//! End-to-end: the built `augury` binary on files, checked by output and exit code.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn augury(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_augury"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run augury")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn lines(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v}\n")).collect()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

/// U of x against y by the definition: pairs where x wins, ties counting one half.
fn brute_u(x: &[f64], y: &[f64]) -> f64 {
    let mut u = 0.0;
    for a in x {
        for b in y {
            if a > b {
                u += 1.0;
            } else if a == b {
                u += 0.5;
            }
        }
    }
    u
}

/// The default model with the fixed-horizon Mann-Whitney test deciding (the built-in one
/// uses the sequential test), for the tests about Mann-Whitney's numbers and verdicts.
fn mann_whitney_model(dir: &Path) -> PathBuf {
    write(
        dir,
        "mann-whitney.yaml",
        "name: default-mw\nmetrics:\n  - name: value\n    kind: distribution\n    test: mann-whitney\n    direction: increase\n    alpha: 0.01\n    min_samples: 3\n    effect: {measure: median-ratio, allowed_increase: 1.0}\n",
    )
}

fn ramp(n: usize, start: f64, step: f64) -> Vec<f64> {
    (0..n).map(|i| start + step * i as f64).collect()
}

#[test]
fn bundled_example_fails_the_slower_canary() {
    let o = augury(&["judge"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("bundled example"));
    let out = stdout(&o);
    assert!(out.contains("verdict: FAIL"), "{out}");
    assert!(out.contains("Mann-Whitney U"), "{out}");
}

#[test]
fn json_report_carries_the_numbers_behind_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let b = ramp(60, 100.0, 1.0);
    let c = ramp(60, 130.0, 1.0);
    let bp = write(dir.path(), "b.txt", &lines(&b));
    let cp = write(dir.path(), "c.txt", &lines(&c));
    let model = mann_whitney_model(dir.path());
    let o = augury(&[
        "judge",
        "--baseline",
        bp.to_str().unwrap(),
        "--canary",
        cp.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["verdict"], "fail");
    assert_eq!(j["score"], 0.0);
    let m = &j["metrics"][0];
    assert_eq!(m["name"], "value");
    assert_eq!(m["classification"], "high");
    assert_eq!(m["mann_whitney"]["u"].as_f64(), Some(brute_u(&c, &b)));
    assert_eq!(m["mann_whitney"]["alternative"], "greater");
    let p = m["mann_whitney"]["p_value"].as_f64().unwrap();
    assert!(p > 0.0 && p < 0.01, "p = {p}");
    // Every pairwise difference is 30 + (i - j); their median is 30.
    assert_eq!(m["shift"]["estimate"].as_f64(), Some(30.0));
    let (lo, hi) = (
        m["shift"]["lower"].as_f64().unwrap(),
        m["shift"]["upper"].as_f64().unwrap(),
    );
    assert!(lo < 30.0 && 30.0 < hi, "[{lo}, {hi}]");
    assert_eq!(m["baseline"]["count"], 60);
    assert_eq!(m["canary"]["median"].as_f64(), Some(159.5));
    assert!(
        j["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("value: canary higher"))
    );
}

#[test]
fn same_samples_in_another_order_pass() {
    let dir = tempfile::tempdir().unwrap();
    let b = ramp(40, 10.0, 0.5);
    let mut c = b.clone();
    c.reverse();
    let bp = write(dir.path(), "b.txt", &lines(&b));
    let cp = write(dir.path(), "c.txt", &lines(&c));
    let o = augury(&[
        "judge",
        "--baseline",
        bp.to_str().unwrap(),
        "--canary",
        cp.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("verdict: PASS"));
}

#[test]
fn constant_samples_pass_by_rule_reproducibly() {
    let dir = tempfile::tempdir().unwrap();
    let bp = write(dir.path(), "b.txt", &"5\n".repeat(20));
    let cp = write(dir.path(), "c.txt", &"5\n".repeat(30));
    let run = || {
        augury(&[
            "judge",
            "--baseline",
            bp.to_str().unwrap(),
            "--canary",
            cp.to_str().unwrap(),
            "--format",
            "json",
        ])
    };
    let (first, second) = (run(), run());
    assert_eq!(first.status.code(), Some(0));
    assert_eq!(first.stdout, second.stdout);
    assert!(
        json(&first)["metrics"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("constant")
    );
}

#[test]
fn too_few_samples_is_inconclusive() {
    let dir = tempfile::tempdir().unwrap();
    // The default model wants at least 3 observations per side.
    let bp = write(dir.path(), "b.txt", "1\n2\n");
    let cp = write(dir.path(), "c.txt", "1\n2\n3\n");
    let o = augury(&[
        "judge",
        "--baseline",
        bp.to_str().unwrap(),
        "--canary",
        cp.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(stdout(&o).contains("INCONCLUSIVE"));
    assert!(stdout(&o).contains("baseline has 2 observations, fewer than min_samples (3)"));
}

#[test]
fn a_critical_metric_missing_from_the_input_fails_the_canary() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(
        dir.path(),
        "three.yaml",
        "name: three\nmetrics:\n  - {name: a, min_samples: 3}\n  - {name: b, min_samples: 3}\n  - {name: c, min_samples: 3, critical: true}\n",
    );
    let same = ramp(40, 100.0, 1.0);
    let healthy = serde_json::json!({"baseline": same, "canary": same});
    // Two healthy metrics, the critical one absent: a dead canary, not a pass.
    let input = serde_json::json!({"a": healthy, "b": healthy});
    let p = write(dir.path(), "in.json", &input.to_string());
    let args = |format: &'static str| {
        augury(&[
            "judge",
            "--model",
            model.to_str().unwrap(),
            "--input",
            p.to_str().unwrap(),
            "--format",
            format,
        ])
    };
    let o = args("json");
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let j = json(&o);
    assert_eq!(j["verdict"], "fail");
    assert_eq!(j["score"].as_f64(), Some(0.0));
    assert_eq!(
        j["reasons"][0], "critical metric had no data: c",
        "{}",
        j["reasons"]
    );
    let o = args("text");
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("c: no data"), "{}", stdout(&o));

    // The built-in http-red model: both metrics critical, the error rate absent.
    let b = ramp(200, 50.0, 0.1);
    let input = serde_json::json!({"latency": {"baseline": b, "canary": b}});
    let p = write(dir.path(), "latency-only.json", &input.to_string());
    let o = augury(&[
        "judge",
        "--model",
        "http-red",
        "--input",
        p.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("critical metric had no data: error-rate"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn csv_column_and_json_array_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let b = ramp(30, 1.0, 1.0);
    let csv: String = std::iter::once("ts,latency_ms\n".to_string())
        .chain(b.iter().enumerate().map(|(i, v)| format!("{i},{v}\n")))
        .collect();
    let bp = write(dir.path(), "b.csv", &csv);
    let c = ramp(30, 1.5, 1.0);
    let cp = write(dir.path(), "c.json", &serde_json::to_string(&c).unwrap());
    let o = augury(&[
        "judge",
        "--baseline",
        bp.to_str().unwrap(),
        "--canary",
        cp.to_str().unwrap(),
        "--column",
        "latency_ms",
        "--format",
        "json",
    ]);
    assert!(matches!(o.status.code(), Some(0 | 1 | 3)), "{}", stderr(&o));
    let j = json(&o);
    assert_eq!(j["metrics"][0]["baseline"]["count"], 30);
    assert_eq!(
        j["metrics"][0]["mann_whitney"]["u"].as_f64(),
        Some(brute_u(&c, &b))
    );
}

#[test]
fn bad_input_names_file_and_line_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.txt", &lines(&ramp(20, 1.0, 1.0)));
    let bad = write(dir.path(), "bad.txt", "1\n2\n3.5ms\n");
    let empty = write(dir.path(), "empty.txt", "# header only\n\n");
    let g = good.to_str().unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--baseline", g, "--canary", bad.to_str().unwrap()],
            format!("{}:3: `3.5ms` is not a number", bad.display()),
        ),
        (
            vec!["--baseline", empty.to_str().unwrap(), "--canary", g],
            format!("{}: holds no samples", empty.display()),
        ),
        (
            vec!["--baseline", g, "--canary", "/nonexistent/c.txt"],
            "/nonexistent/c.txt: cannot read".to_string(),
        ),
        (
            vec!["--baseline", g, "--canary", g, "--model", "nope"],
            "unknown model `nope`".to_string(),
        ),
    ];
    for (args, expected) in cases {
        let mut full = vec!["judge"];
        full.extend(args);
        let o = augury(&full);
        assert_eq!(o.status.code(), Some(2), "{full:?}");
        assert!(stderr(&o).contains(&expected), "{full:?}: {}", stderr(&o));
        // JSON mode reports the same error on stdout, machine-readably.
        full.extend(["--format", "json"]);
        let o = augury(&full);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            json(&o)["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&expected)
        );
    }
    let o = augury(&["judge", "--baseline", g]);
    assert_eq!(o.status.code(), Some(2), "clap usage error");
}

#[test]
fn nan_the_model_refuses_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let model = write(
        dir.path(),
        "strict.yaml",
        "name: strict\nmetrics:\n  - name: latency\n    nan: fail\n    min_samples: 1\n",
    );
    let b = write(dir.path(), "b.txt", "1\n2\n3\n");
    let c = write(dir.path(), "c.txt", "# c\n1\nNaN\n3\n");
    let o = augury(&[
        "judge",
        "--model",
        model.to_str().unwrap(),
        "--baseline",
        b.to_str().unwrap(),
        "--canary",
        c.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!(
            "{}:3: metric `latency`: canary value 1 is NaN",
            c.display()
        )),
        "{}",
        stderr(&o)
    );
    // The default model removes NaN and says how many.
    let o = augury(&[
        "judge",
        "--baseline",
        b.to_str().unwrap(),
        "--canary",
        c.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(json(&o)["metrics"][0]["canary"]["nan"], 1);
}

#[test]
fn multi_metric_input_with_error_counts() {
    let dir = tempfile::tempdir().unwrap();
    let b = ramp(200, 50.0, 0.1);
    let input = serde_json::json!({
        "latency": {"baseline": b, "canary": b},
        "error-rate": {
            "baseline": {"requests": 20000, "errors": 10},
            "canary": {"requests": 20000, "errors": 60}
        }
    });
    let p = write(dir.path(), "in.json", &input.to_string());
    let o = augury(&[
        "judge",
        "--model",
        "http-red",
        "--input",
        p.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let j = json(&o);
    let errors = j["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "error-rate")
        .unwrap();
    assert_eq!(errors["classification"], "high");
    assert_eq!(errors["critical_failure"], true);
    assert_eq!(errors["proportions"]["ratio"].as_f64(), Some(6.0));
    assert!(
        j["reasons"][0].as_str().unwrap().contains("error-rate"),
        "{}",
        j["reasons"]
    );
    let latency = j["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "latency")
        .unwrap();
    assert_eq!(latency["classification"], "pass");

    // Data for a metric the model lacks, and data of the wrong shape: precise errors.
    let p = write(
        dir.path(),
        "x.json",
        r#"{"cpu": {"baseline": [1], "canary": [2]}}"#,
    );
    let o = augury(&[
        "judge",
        "--model",
        "http-red",
        "--input",
        p.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("metric `cpu`: the model `http-red` has no such metric"));
    let p = write(
        dir.path(),
        "y.json",
        r#"{"error-rate": {"baseline": [1], "canary": [2]}}"#,
    );
    let o = augury(&[
        "judge",
        "--model",
        "http-red",
        "--input",
        p.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("error-ratio metric takes counts"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_lists_every_problem() {
    let o = augury(&["check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "ok.yaml", "name: ok\nmetrics:\n  - name: x\n");
    write(
        dir.path(),
        "bad.yaml",
        "name: bad\nmetrics:\n  - name: x\n    direction: up\n",
    );
    write(
        dir.path(),
        "worse.yaml",
        "name: worse\nthresholds: {pass: 60, marginal: 90}\nmetrics:\n  - name: x\n    alpha: 2\n",
    );
    let o = augury(&["check", dir.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let j = json(&o);
    assert_eq!(j["valid"], false);
    let checked = j["checked"].as_array().unwrap();
    let in_dir = |c: &&Value| {
        c.as_str()
            .unwrap()
            .starts_with(dir.path().to_str().unwrap())
    };
    assert_eq!(checked.iter().filter(in_dir).count(), 3, "{checked:?}");
    let problems = j["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0]["file"].as_str().unwrap().ends_with("bad.yaml"));
    assert!(
        problems[0]["reason"]
            .as_str()
            .unwrap()
            .contains("unknown variant `up`")
    );
    assert_eq!(problems[1]["field"], "thresholds.marginal");
    assert_eq!(problems[2]["field"], "metrics[0].alpha");
}

#[test]
fn check_validates_query_packs_and_models_against_them() {
    let dir = tempfile::tempdir().unwrap();
    let (models, queries) = (dir.path().join("models"), dir.path().join("queries"));
    std::fs::create_dir_all(&models).unwrap();
    std::fs::create_dir_all(&queries).unwrap();
    write(
        &models,
        "mesh.yaml",
        "name: mesh\nscope: [namespace, workload]\nmetrics:\n  - name: errors\n    kind: error-ratio\n    \
         source: {prometheus: {pack: istio, query: no-such-query}}\n",
    );
    write(&queries, "broken.yaml", "name: broken\nqueries: 7\n");
    let o = augury(&[
        "check",
        models.to_str().unwrap(),
        "--queries",
        queries.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let j = json(&o);
    let problems = j["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("broken.yaml"),
        "{problems:?}"
    );
    assert!(
        problems[1]["file"].as_str().unwrap().ends_with("mesh.yaml"),
        "{problems:?}"
    );
    assert_eq!(problems[1]["field"], "metrics[0].source.prometheus");
    assert!(
        problems[1]["reason"]
            .as_str()
            .unwrap()
            .contains("no-such-query"),
        "{problems:?}"
    );
}

#[test]
fn looks_name_the_first_rejection_and_p_never_rises() {
    let dir = tempfile::tempdir().unwrap();
    // Errors double from the fourth look on; counts are what arrived since the last look.
    let looks: Vec<Value> = (0..10)
        .map(|i| {
            let canary_errors = if i < 3 { 15 } else { 30 };
            serde_json::json!({"baseline": {"requests": 3000, "errors": 15},
                               "canary": {"requests": 3000, "errors": canary_errors}})
        })
        .collect();
    let p = write(dir.path(), "looks.json", &Value::from(looks).to_string());
    let o = augury(&["judge", "--looks", p.to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let j = json(&o);
    let first = j["first_rejection"].as_u64().expect("rejected");
    assert!(first >= 3, "cannot reject before the change: {first}");
    let p_values: Vec<f64> = j["looks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["p_value"].as_f64().unwrap())
        .collect();
    assert!(p_values.windows(2).all(|w| w[1] <= w[0]), "{p_values:?}");
    assert!(p_values[first as usize] <= 0.01);
    assert_eq!(j["looks"][first as usize]["decision"], "reject");

    // The same traffic on both sides: no rejection, exit 0, null first_rejection.
    let same: Vec<Value> = (0..10)
        .map(|_| {
            serde_json::json!({"baseline": {"requests": 3000, "errors": 15},
                                     "canary": {"requests": 3000, "errors": 15}})
        })
        .collect();
    let p = write(dir.path(), "same.json", &Value::from(same).to_string());
    let o = augury(&["judge", "--looks", p.to_str().unwrap(), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(json(&o)["first_rejection"].is_null());

    let p = write(dir.path(), "broken.json", "[{\"baseline\": ");
    let o = augury(&["judge", "--looks", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("broken.json:1: not a JSON list of looks"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn simulate_is_deterministic_and_writes_its_plot() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("sim");
    let args = [
        "simulate",
        "--seed",
        "7",
        "--null-runs",
        "40",
        "--runs",
        "10",
        "--looks",
        "20",
        "--scenario",
        "errors x5",
        "--format",
        "json",
    ];
    let first = augury(&args);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let mut with_out = args.to_vec();
    with_out.extend(["--out", prefix.to_str().unwrap()]);
    let second = augury(&with_out);
    assert_eq!(first.stdout, second.stdout, "same seed, same table");
    let png = std::fs::read(dir.path().join("sim.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let csv = std::fs::read_to_string(dir.path().join("sim.csv")).unwrap();
    assert!(csv.lines().count() > 1);
    let o = augury(&["simulate", "--scenario", "no such"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no scenario matches `no such`"));
}
