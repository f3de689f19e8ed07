//! A busy service's history for windows in the past: `checkout` at three versions (the
//! baseline, a canary that regressed during a window, a healthy canary), a point every
//! 15 s, for [`super::prometheus::Prometheus::with_history`]. Values are deterministic
//! (a hash of the point's index, no random generator), so a test can compute what any
//! window holds.
#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::daemon::{Daemon, workdir};
use super::prometheus::History;

/// Seconds between points of the history, and the step analyses of it ask for.
pub const STEP: i64 = 15;

/// The model: latency and error ratio per step from PromQL written in the model, as a
/// Kayenta user's canary config has them.
pub const MODEL: &str = r#"
name: checkout-promql
scope: [app, version]
thresholds: {pass: 95, marginal: 75}
metrics:
  - name: latency
    unit: s
    source:
      prometheus:
        promql: avg(app_request_latency_seconds{app="{{ app }}", version="{{ version }}"})
    direction: increase
    effect: {measure: median-ratio, allowed_increase: 1.1}
  - name: error-ratio
    source:
      prometheus:
        promql: >-
          sum(rate(app_requests_total{app="{{ app }}", version="{{ version }}", code=~"5.."}[1m]))
          / sum(rate(app_requests_total{app="{{ app }}", version="{{ version }}"}[1m]))
    direction: increase
    effect: {measure: mean-ratio, allowed_increase: 1.5}
"#;

/// A deterministic jitter in [-1, 1) for point `i` of series `salt`.
pub fn jitter(i: i64, salt: u64) -> f64 {
    let mut x = (i as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(salt.wrapping_mul(0xBF58_476D_1CE4_E5B9));
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 29;
    (x >> 11) as f64 / (1u64 << 52) as f64 - 1.0
}

/// How a version behaves at time `t`: mean latency (s) and error share.
#[derive(Clone, Copy)]
pub enum Version {
    Baseline,
    /// Healthy before the window, 40% slower with 3% errors inside it, far off after.
    Regressed,
    Healthy,
}

impl Version {
    pub fn name(self) -> &'static str {
        match self {
            Version::Baseline => "1.4.1",
            Version::Regressed => "1.4.2",
            Version::Healthy => "1.4.3",
        }
    }

    fn salt(self) -> u64 {
        self as u64 + 1
    }

    pub fn latency(self, t: i64, window: (i64, i64)) -> f64 {
        let i = t / STEP;
        let level = match self {
            Version::Regressed if t > window.1 => 9.0,
            Version::Regressed if t > window.0 => 0.140,
            _ => 0.100,
        };
        level * (1.0 + 0.05 * jitter(i, self.salt()))
    }

    /// Requests and errors in the step ending at `t`.
    pub fn traffic(self, t: i64, window: (i64, i64)) -> (f64, f64) {
        let i = t / STEP;
        let requests = (7_500.0 * (1.0 + 0.1 * jitter(i, self.salt() + 10))).round();
        let share = match self {
            Version::Regressed if t > window.0 && t <= window.1 => 0.03,
            _ => 0.001,
        };
        let errors = (requests * share * (1.0 + 0.5 * jitter(i, self.salt() + 20))).round();
        (requests, errors)
    }
}

pub const VERSIONS: [Version; 3] = [Version::Baseline, Version::Regressed, Version::Healthy];

pub fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn rfc3339(t: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t as u64)).to_string()
}

/// Every version's series from `first` to `last` (unix seconds on the 15 s grid), the
/// regressed canary regressed in `window` = (start, end].
pub fn history(first: i64, last: i64, window: (i64, i64)) -> History {
    let mut history = History::default();
    let times: Vec<i64> = (first..=last).step_by(STEP as usize).collect();
    for v in VERSIONS {
        let labels = [("app", "checkout"), ("version", v.name())];
        history.gauge(
            "app_request_latency_seconds",
            &labels,
            times.iter().map(|&t| (t as f64, v.latency(t, window))),
        );
        let (mut ok, mut failed) = (0.0, 0.0);
        let mut ok_points = Vec::new();
        let mut failed_points = Vec::new();
        for &t in &times {
            let (requests, errors) = v.traffic(t, window);
            ok += requests - errors;
            failed += errors;
            ok_points.push((t as f64, ok));
            failed_points.push((t as f64, failed));
        }
        history.counter(
            "app_requests",
            &[("app", "checkout"), ("version", v.name()), ("code", "200")],
            ok_points,
        );
        history.counter(
            "app_requests",
            &[("app", "checkout"), ("version", v.name()), ("code", "503")],
            failed_points,
        );
    }
    history
}

/// A real `augury serve` (auth off) reading `prometheus_url`, with [`MODEL`] in its
/// `--models` directory; `extra` is more of the `prometheus:` section (indented by two).
/// The directory goes with it: keep it as long as the daemon.
pub fn daemon(prometheus_url: &str, extra: &str) -> (tempfile::TempDir, Daemon) {
    let (dir, path) = workdir(&format!(
        "auth: none\nprometheus:\n  url: {prometheus_url}\n{extra}"
    ));
    let models = path.join("models");
    std::fs::create_dir(&models).unwrap();
    std::fs::write(models.join("checkout-promql.yaml"), MODEL).unwrap();
    let daemon = Daemon::in_dir(&path)
        .flags(&["--models", models.to_str().unwrap()])
        .start();
    (dir, daemon)
}
