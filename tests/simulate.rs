//! The Monte Carlo harness: its model of Kayenta against R, determinism, and its outputs.
// Test helpers outside `#[test]` functions panic on a broken fixture: that is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use augury::simulate::methods::{Method, Weighted, kayenta_high, kayenta_interval};
use augury::simulate::scenarios::Scenario;
use augury::simulate::{SimConfig, run_simulation, wilson};
use serde_json::Value;

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn kayenta_interval_matches_r() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/kayenta.json"
    ))
    .unwrap();
    let cases: Value = serde_json::from_str(&text).unwrap();
    for case in cases.as_array().unwrap() {
        let c = Weighted::from_values(&numbers(&case["canary"]));
        let b = Weighted::from_values(&numbers(&case["baseline"]));
        let (lo, est, hi) = kayenta_interval(&c, &b).unwrap();
        // R ran with `tol.root = 1e-10`; Kayenta's root finder stops at 1e-4.
        for (got, key) in [(lo, "lower"), (est, "estimate"), (hi, "upper")] {
            let want = case[key].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-4,
                "{}: {key} {got} vs {want}",
                case["name"]
            );
        }
    }
}

#[test]
fn kayenta_rule_passes_sparse_errors_and_fails_a_clear_shift() {
    let sparse_c = Weighted::from_values(&[
        0.0, 0.0, 0.0, 0.0, 0.004, 0.0, 0.0, 0.01, 0.0, 0.0, 0.0, 0.0,
    ]);
    let sparse_b = Weighted::from_values(&[0.0; 12]);
    assert!(!kayenta_high(&sparse_c, &sparse_b));
    let shifted: Vec<f64> = (0..40).map(|i| 150.0 + f64::from(i)).collect();
    let base: Vec<f64> = (0..40).map(|i| 100.0 + f64::from(i)).collect();
    assert!(kayenta_high(
        &Weighted::from_values(&shifted),
        &Weighted::from_values(&base)
    ));
    assert!(!kayenta_high(
        &Weighted::from_values(&base),
        &Weighted::from_values(&shifted)
    ));
}

#[test]
fn wilson_interval_matches_scipy() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/reference/wilson.json"
    ))
    .unwrap();
    let cases: Value = serde_json::from_str(&text).unwrap();
    for case in cases.as_array().unwrap() {
        let (k, n) = (
            case["successes"].as_u64().unwrap() as usize,
            case["trials"].as_u64().unwrap() as usize,
        );
        let (lo, hi) = wilson(k, n);
        let (want_lo, want_hi) = (
            case["lower"].as_f64().unwrap(),
            case["upper"].as_f64().unwrap(),
        );
        assert!(
            (lo - want_lo).abs() < 1e-12 && (hi - want_hi).abs() < 1e-12,
            "{k}/{n}: {lo} {hi}"
        );
    }
    assert_eq!(wilson(0, 0), (0.0, 1.0));
}

fn small_config() -> SimConfig {
    let all = Scenario::defaults();
    let pick = |name: &str| all.iter().find(|s| s.name == name).unwrap().clone();
    SimConfig {
        seed: 7,
        null_runs: 12,
        runs: 8,
        rate_per_sec: 20.0,
        looks: 12,
        scenarios: vec![pick("A/A"), pick("median +20%"), pick("errors x5")],
        ..SimConfig::default()
    }
}

#[test]
fn simulation_is_deterministic_whatever_the_threads() {
    let config = small_config();
    let calls = AtomicUsize::new(0);
    let max_done = AtomicUsize::new(0);
    let progress = |done: usize, total: usize| {
        assert_eq!(total, 12 + 8 + 8);
        calls.fetch_add(1, Ordering::Relaxed);
        max_done.fetch_max(done, Ordering::Relaxed);
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let a = one.install(|| run_simulation(&config, &progress)).unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let b = two.install(|| run_simulation(&config, &|_, _| {})).unwrap();
    assert_eq!(a, b);
    assert_eq!(calls.load(Ordering::Relaxed), 28);
    assert_eq!(max_done.load(Ordering::Relaxed), 28);
    let other = run_simulation(
        &SimConfig {
            seed: 8,
            ..config.clone()
        },
        &|_, _| {},
    )
    .unwrap();
    assert_ne!(a.rows, other.rows);

    assert_eq!(a.rows.len(), 3 * Method::ALL.len());
    for row in &a.rows {
        assert_eq!(row.runs, if row.null { 12 } else { 8 });
        assert_eq!(row.detected_by_look.last().copied(), Some(row.detected));
        assert!(row.detected_by_look.windows(2).all(|w| w[0] <= w[1]));
        assert!(row.rate_lower <= row.rate && row.rate <= row.rate_upper);
        if row.method == Method::AuguryFixedHorizon {
            // It only ever decides at the end.
            for t in [row.median_secs, row.p90_secs].into_iter().flatten() {
                assert_eq!(t, 12.0 * 30.0, "{row:?}");
            }
            assert!(row.detected_by_look[..11].iter().all(|&d| d == 0));
        }
    }
    // A 20% slower canary at 20 req/s is caught by the sequential test within 6 minutes.
    let seq = a
        .rows
        .iter()
        .find(|r| r.scenario == "median +20%" && r.method == Method::AugurySequential)
        .unwrap();
    assert_eq!(seq.detected, 8, "{seq:?}");
    assert_eq!(seq.by_latency, 8);
}

#[test]
fn report_renders_as_json_text_csv_and_png() {
    let report = run_simulation(&small_config(), &|_, _| {}).unwrap();
    let json = serde_json::to_string(&report).unwrap();
    let back: augury::simulate::SimReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, report);

    let table = report.to_text_table();
    assert_eq!(table.lines().count(), 2 + report.rows.len());
    assert!(
        table.contains("median +20%") && table.contains("kayenta (every look)"),
        "{table}"
    );

    let csv = report.to_csv();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + report.rows.len());
    assert!(lines[0].starts_with("scenario,null,method,runs,detected,rate"));
    assert!(
        lines[1].starts_with("\"A/A\",true,augury-sequential,12,"),
        "{}",
        lines[1]
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.png");
    report.write_png(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 10_000);
    let err = report
        .write_png(&dir.path().join("missing/dir/sim.png"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing/dir/sim.png"), "{err}");
}

#[test]
fn bad_configuration_is_refused_with_the_field_named() {
    let err = run_simulation(
        &SimConfig {
            rate_per_sec: 0.0,
            ..SimConfig::default()
        },
        &|_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("rate_per_sec"), "{err}");
    let err = run_simulation(
        &SimConfig {
            alpha: 1.5,
            ..SimConfig::default()
        },
        &|_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("alpha 1.5"), "{err}");
}

#[test]
fn a_scenario_latency_spread_reaches_the_traffic() {
    let scenario = |sigma: f64| Scenario {
        name: format!("median +10%, log-sd {sigma}"),
        median_factor: 1.1,
        p99_factor: 1.0,
        error_factor: 1.0,
        rate_per_sec: None,
        error_rate: None,
        latency_sigma: Some(sigma),
        zero_inflated: None,
    };
    let config = SimConfig {
        runs: 6,
        rate_per_sec: 20.0,
        looks: 6,
        scenarios: vec![scenario(0.05), scenario(2.0)],
        ..SimConfig::default()
    };
    let report = run_simulation(&config, &|_, _| {}).unwrap();
    let seq = |i: usize| {
        report
            .rows
            .iter()
            .filter(|r| r.method == Method::AugurySequential)
            .nth(i)
            .unwrap()
            .clone()
    };
    // A 10% shift is many spreads wide at log-sd 0.05, and lost in the noise at 2.
    assert_eq!(seq(0).detected_by_look[1], 6, "{:?}", seq(0));
    assert_eq!(seq(1).detected, 0, "{:?}", seq(1));
}
