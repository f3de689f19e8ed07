//! End-to-end: `augury import kayenta` on Kayenta's own canary configs (from its
//! repository and docs, in `tests/fixtures/kayenta/`, see the README there), run as the
//! built binary. Each model written is checked by `augury check` (the real binary) and
//! against the config it came from: every expectation below is read from the fixture,
//! none is restated.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use augury::model::{Direction, EffectMeasure, Model, NanStrategy, Rules, Source};
use serde_json::{Value, json};
use support::checkout::{jitter, now_s, rfc3339};
use support::daemon::{Daemon, workdir};
use support::prometheus::{History, Prometheus};

fn augury(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_augury"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run augury")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kayenta")
        .join(name)
}

fn config(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Imports `name` into a temporary file with `extra` flags; the exit code, stderr and the
/// path written.
fn import(name: &str, extra: &[&str]) -> (Output, tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.yaml");
    let fixture = fixture(name);
    let mut args = vec![
        "import",
        "kayenta",
        fixture.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = augury(&args);
    (o, dir, out)
}

/// `augury check` on the written model: exit 0.
fn checked(path: &Path) -> Model {
    let o = augury(&["check", path.to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "augury check {}: {}\n{}",
        path.display(),
        stderr(&o),
        std::fs::read_to_string(path).unwrap()
    );
    Model::from_file(path).unwrap()
}

/// The unmapped fields stderr names, in order.
fn unmapped(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter_map(|l| l.strip_prefix("augury import: unmapped: "))
        .map(|l| l.split(": ").next().unwrap().to_string())
        .collect()
}

fn promql(model: &Model, metric: &str) -> String {
    match &model.metric(metric).unwrap().source {
        Some(Source::Prometheus(p)) => p.promql.clone().unwrap(),
        other => panic!("{metric}: not an inline Prometheus source: {other:?}"),
    }
}

/// A Kayenta template with `${name}` turned into `{{ name }}`, and the names.
fn placeholders(template: &str) -> (String, Vec<String>) {
    let mut out = template.to_string();
    let mut names = Vec::new();
    while let Some(at) = out.find("${") {
        let end = at + out[at..].find('}').unwrap();
        let name = out[at + 2..end].to_string();
        out.replace_range(at..=end, &format!("{{{{ {name} }}}}"));
        names.push(name);
    }
    (out, names)
}

fn canary<'a>(metric: &'a Value, key: &str) -> Option<&'a Value> {
    metric
        .get("analysisConfigurations")?
        .get("canary")?
        .get(key)
}

fn muted(metric: &Value) -> bool {
    canary(metric, "muted") == Some(&Value::Bool(true))
}

/// The model holds every unmuted metric of the config with its query, direction,
/// critical flag, NaN strategy, effect thresholds and first group; the config's weights
/// and thresholds; and the scope names its templates use.
fn assert_matches(model: &Model, config: &Value, scope_label: &str) {
    assert_eq!(model.name, config["name"].as_str().unwrap());
    let t = &config["classifier"]["scoreThresholds"];
    assert_eq!(model.thresholds.pass, t["pass"].as_f64().unwrap());
    assert_eq!(model.thresholds.marginal, t["marginal"].as_f64().unwrap());
    for (group, weight) in config["classifier"]["groupWeights"].as_object().unwrap() {
        assert_eq!(
            model.groups[group].weight,
            weight.as_f64(),
            "weight of {group}"
        );
    }
    let templates = config.get("templates").cloned().unwrap_or(Value::Null);
    let metrics: Vec<&Value> = config["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !muted(m))
        .collect();
    assert_eq!(model.metrics.len(), metrics.len());
    for m in metrics {
        let name = m["name"].as_str().unwrap();
        let got = model.metric(name).unwrap();
        let query = &m["query"];
        let promql = promql(model, name);
        let template = query
            .get("customInlineTemplate")
            .and_then(Value::as_str)
            .or_else(|| {
                let t = query.get("customFilterTemplate")?.as_str()?;
                templates[t].as_str()
            });
        let (filter, names) = placeholders(template.unwrap_or(""));
        for n in &names {
            assert!(model.scope.contains(n), "{name}: scope has {n}");
        }
        match filter.strip_prefix("PromQL:") {
            Some(whole) => assert_eq!(promql, whole, "{name}"),
            None => {
                // avg(metricName{filter,labelBindings...}): Kayenta's own construction.
                let metric_name = query["metricName"].as_str().unwrap();
                assert!(
                    promql.starts_with(&format!("avg({metric_name}{{")),
                    "{name}: {promql}"
                );
                let mut rest = &promql[..];
                let parts = std::iter::once(filter.as_str())
                    .filter(|f| !f.is_empty())
                    .chain(
                        query
                            .get("labelBindings")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .map(|b| b.as_str().unwrap()),
                    );
                for part in parts {
                    let at = rest
                        .find(part)
                        .unwrap_or_else(|| panic!("{name}: `{part}` in order in {promql}"));
                    rest = &rest[at + part.len()..];
                }
                if query.get("resourceType").and_then(Value::as_str) == Some("gce_instance") {
                    assert!(
                        promql.contains(&format!("{scope_label}=~\"{{{{ scope }}}}")),
                        "{name}: scope label in {promql}"
                    );
                }
            }
        }
        let direction = match canary(m, "direction").and_then(Value::as_str) {
            Some("increase") => Direction::Increase,
            Some("decrease") => Direction::Decrease,
            _ => Direction::Either,
        };
        assert_eq!(got.direction, direction, "{name}");
        let flag = |key| canary(m, key).and_then(Value::as_bool).unwrap_or(false);
        assert_eq!(got.critical, flag("critical"), "{name}");
        assert_eq!(got.must_have_data, flag("mustHaveData"), "{name}");
        let nan = match canary(m, "nanStrategy").and_then(Value::as_str) {
            Some("replace") => NanStrategy::Replace,
            _ => NanStrategy::Remove,
        };
        assert_eq!(got.nan, nan, "{name}");
        let effect = canary(m, "effectSize").cloned().unwrap_or(Value::Null);
        let measure = match effect.get("measure").and_then(Value::as_str) {
            Some("cles") => EffectMeasure::Cles,
            _ => EffectMeasure::MeanRatio,
        };
        assert_eq!(got.measure(), measure, "{name}");
        for (key, value) in [
            ("allowedIncrease", got.effect.allowed_increase),
            ("allowedDecrease", got.effect.allowed_decrease),
            ("criticalIncrease", got.effect.critical_increase),
            ("criticalDecrease", got.effect.critical_decrease),
        ] {
            assert_eq!(
                value,
                effect.get(key).and_then(Value::as_f64),
                "{name}: {key}"
            );
        }
        let first = m["groups"][0].as_str().unwrap();
        assert_eq!(got.group(), first, "{name}");
    }
}

/// Imports `name` (exit 0), checks the model with `augury check` and against the
/// config; the output, the model and the config.
fn imported(name: &str, extra: &[&str], scope_label: &str) -> (Output, Model, Value) {
    let (o, _dir, out) = import(name, extra);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    let model = checked(&out);
    let config = config(name);
    assert_matches(&model, &config, scope_label);
    (o, model, config)
}

#[test]
fn kayentas_prometheus_integration_config_imports_and_checks() {
    let (o, model, _) = imported("integration-test-cpu.json", &[], "instance");
    assert!(unmapped(&o).is_empty(), "{}", stderr(&o));
    assert_eq!(model.rules, Rules::Kayenta);
}

#[test]
fn a_muted_metric_is_named_left_out_and_fails_the_import_when_asked() {
    let name = "muted-metric.json";
    let config = config(name);
    let muted_at: Vec<String> = config["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, m)| muted(m))
        .map(|(i, _)| format!("metrics[{i}].analysisConfigurations.canary.muted"))
        .collect();
    assert!(!muted_at.is_empty(), "the fixture mutes a metric");
    let (o, _dir, out) = import(name, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(unmapped(&o), muted_at);
    let model = checked(&out);
    assert_matches(&model, &config, "instance");
    // The written YAML says it too.
    let yaml = std::fs::read_to_string(&out).unwrap();
    assert!(yaml.contains(&format!("#   {}: ", muted_at[0])), "{yaml}");

    let (o, _dir, out) = import(name, &["--fail-on-unmapped"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(unmapped(&o), muted_at);
    checked(&out);
}

#[test]
fn the_docs_custom_filter_template_example_imports_with_its_variable_as_a_scope_name() {
    let (o, model, config) = imported(
        "json-formats-prometheus-k8s-template.json",
        &["--rules", "augury"],
        "instance",
    );
    assert_eq!(model.rules, Rules::Augury);
    // Its judge is Kayenta's random one: named, not silently replaced.
    assert_eq!(unmapped(&o), vec!["judge.name"]);
    assert!(stderr(&o).contains(config["judge"]["name"].as_str().unwrap()));
}

#[test]
fn every_query_type_maps_and_what_has_no_counterpart_is_named() {
    let (o, _, config) = imported(
        "latency-errors-gce.json",
        &["--scope-label", "host"],
        "host",
    );
    // Read from the fixture: a metric in several groups, outlier removal, group-by fields.
    let mut expected = Vec::new();
    for (i, m) in config["metrics"].as_array().unwrap().iter().enumerate() {
        if m["groups"].as_array().unwrap().len() > 1 {
            expected.push(format!("metrics[{i}].groups"));
        }
        if canary(m, "outliers").and_then(|o| o.get("strategy")) == Some(&"remove".into()) {
            expected.push(format!(
                "metrics[{i}].analysisConfigurations.canary.outliers"
            ));
        }
        if m["query"].get("groupByFields").is_some() {
            expected.push(format!("metrics[{i}].query.groupByFields"));
        }
    }
    assert_eq!(unmapped(&o), expected);
}

#[test]
fn stdin_gives_the_same_model_as_the_file() {
    let name = "integration-test-cpu.json";
    let from_file = augury(&["import", "kayenta", fixture(name).to_str().unwrap()]);
    assert_eq!(from_file.status.code(), Some(0));
    let mut child = Command::new(env!("CARGO_BIN_EXE_augury"))
        .args(["import", "kayenta", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(fixture(name)).unwrap())
        .unwrap();
    let from_stdin = child.wait_with_output().unwrap();
    assert_eq!(from_stdin.status.code(), Some(0), "{}", stderr(&from_stdin));
    let body = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(!body(&from_file).is_empty());
    assert_eq!(body(&from_stdin), body(&from_file));
}

#[test]
fn configs_with_nothing_importable_are_refused_naming_each_metric() {
    // Kayenta's docs and scratch Prometheus examples give no resource type and no
    // template (Kayenta takes it from each request); its judge test config is Atlas.
    for name in [
        "json-formats-prometheus.json",
        "prometheus_canary_config.json",
        "test-config.json",
    ] {
        let (o, _dir, out) = import(name, &[]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(!out.exists(), "{name}: nothing written");
        let err = stderr(&o);
        assert!(
            err.contains(": metrics: no metric could be imported"),
            "{name}: {err}"
        );
        for (i, m) in config(name)["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let why = if m["query"]["type"] == "prometheus" {
                "query.resourceType"
            } else {
                "query.type"
            };
            assert!(
                err.contains(&format!("metrics[{i}].{why}")),
                "{name}: {err}"
            );
        }
    }
}

#[test]
fn bad_input_and_bad_usage_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("x.json");
    std::fs::write(&not_json, "{ nope").unwrap();
    let o = augury(&["import", "kayenta", not_json.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not JSON"), "{}", stderr(&o));
    let missing = dir.path().join("missing.json");
    let o = augury(&["import", "kayenta", missing.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot read"), "{}", stderr(&o));
    let o = augury(&["import", "kayenta", "x.json", "--rules", "netflix"]);
    assert_eq!(o.status.code(), Some(2));
    let fixture = fixture("integration-test-cpu.json");
    let o = augury(&[
        "import",
        "kayenta",
        fixture.to_str().unwrap(),
        "--scope-label",
        "pod\"}",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not a Prometheus label name"),
        "{}",
        stderr(&o)
    );
    // A model that cannot be written is an operational error.
    let o = augury(&[
        "import",
        "kayenta",
        fixture.to_str().unwrap(),
        "--out",
        dir.path().join("no/such/dir/m.yaml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
}

/// Seconds between points of the replayed series, and the step the analyses ask for.
const STEP: i64 = 15;
/// The window judged: ten minutes, ending two minutes ago.
const WINDOW: i64 = 10 * 60;

/// The series Kayenta's integration test generates for every case of
/// `application-cases.yml`: a gauge per metric (Micrometer's name, dots as underscores)
/// tagged with the side's `scope` and the case's `namespace`, uniform within the metric's
/// bounds, a point every step over `times`.
fn kayenta_series(cases: &Value, times: &[i64]) -> History {
    let mut history = History::default();
    let mut salt = 0;
    for case in cases.as_object().unwrap().values() {
        let namespace = case["namespace"].as_str().unwrap();
        for side in ["control", "experiment"] {
            let scope = case[side]["scope"].as_str().unwrap();
            for metric in case[side]["metrics"].as_array().unwrap() {
                assert_eq!(metric["type"], "gauge", "{metric}");
                salt += 1;
                let lo = metric["lower-bound"].as_f64().unwrap();
                let hi = metric["upper-bound"].as_f64().unwrap();
                // Kayenta's generator draws uniformly within the bounds
                // (`RandomProvider.getDouble`).
                history.gauge(
                    &metric["name"].as_str().unwrap().replace('.', "_"),
                    &[("scope", scope), ("namespace", namespace)],
                    times.iter().map(|&t| {
                        (
                            t as f64,
                            lo + (hi - lo) * (jitter(t / STEP, salt) + 1.0) / 2.0,
                        )
                    }),
                );
            }
        }
    }
    history
}

#[tokio::test(flavor = "multi_thread")]
async fn kayentas_own_integration_cases_get_kayentas_verdicts_from_the_imported_models() {
    let cases_file = std::fs::read_to_string(fixture("application-cases.yml")).unwrap();
    let cases: Value = serde_saphyr::from_str(&cases_file).unwrap();
    let cases = &cases["canary-analysis.cases"];
    let end = (now_s() - 120) / STEP * STEP;
    let start = end - WINDOW;
    let times: Vec<i64> = ((start - 300)..=(end + 60))
        .step_by(STEP as usize)
        .collect();
    let prometheus = Prometheus::with_history(&kayenta_series(cases, &times)).await;

    // One config through the daemon's --models directory, the other inline in the request
    // (both configs carry the same name).
    let (_dir, path) = workdir(&format!(
        "auth: none\nprometheus:\n  url: {}\n",
        prometheus.url
    ));
    let models = path.join("models");
    std::fs::create_dir(&models).unwrap();
    let cpu = models.join("cpu.yaml");
    let muted = path.join("muted.yaml");
    for (name, out) in [
        ("integration-test-cpu.json", &cpu),
        ("muted-metric.json", &muted),
    ] {
        let fixture = fixture(name);
        let o = augury(&[
            "import",
            "kayenta",
            fixture.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    }
    let cpu_model = Model::from_file(&cpu).unwrap().name;
    let muted_model: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&muted).unwrap()).unwrap();
    let daemon = Daemon::in_dir(&path)
        .flags(&["--models", models.to_str().unwrap()])
        .start();

    // Which config each case runs and what Kayenta's test expects of it
    // (`PrometheusStandaloneCanaryAnalysisTest`): SUCCEEDED is a pass, TERMINAL a fail
    // with the CPU metric `High`.
    for (case, model, verdict) in [
        ("cpu-successful-analysis-case", json!(cpu_model), "pass"),
        ("cpu-marginal-analysis-case", json!(cpu_model), "fail"),
        ("muted-metric-analysis-case", muted_model, "pass"),
    ] {
        let c = &cases[case];
        let scope = |side: &str| json!({"scope": c[side]["scope"], "namespace": c["namespace"]});
        let id = daemon
            .create(json!({
                "key": case,
                "model": model,
                "baseline": scope("control"),
                "canary": scope("experiment"),
                "start": rfc3339(start),
                "end": rfc3339(end),
                "step": format!("{STEP}s"),
            }))
            .await;
        let detail = daemon.decided(&id).await;
        assert_eq!(detail["status"], verdict, "{case}: {detail}");
        let metrics = detail["judgment"]["metrics"].as_array().unwrap();
        for m in metrics {
            // Every point of the window on both sides: the query found the case's series.
            let points = (WINDOW / STEP) as u64;
            assert_eq!(m["baseline"]["count"], points, "{case}: {m}");
            assert_eq!(m["canary"]["count"], points, "{case}: {m}");
        }
        if case == "cpu-marginal-analysis-case" {
            assert_eq!(metrics[0]["classification"], "high", "{case}: {detail}");
        }
    }
}
