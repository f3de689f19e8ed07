//! `augury simulate`: a Monte Carlo harness that measures how often and how fast each
//! judging procedure fails a canary, under continuous monitoring, for a set of scenarios.
//!
//! Owns scenario generation ([`scenarios`]), the procedures compared ([`methods`]) and the
//! report ([`SimReport`], text/CSV/JSON/PNG in [`plot`]). Invariant: the report is a pure
//! function of the [`SimConfig`] (seed included). Every simulated analysis draws from its
//! own generator, seeded from (seed, scenario, run), and results are gathered in index
//! order, so the number of threads and their scheduling cannot change a digit.

pub mod methods;
pub mod plot;
pub mod scenarios;

use std::sync::atomic::{AtomicUsize, Ordering};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::stats::proportions::Counts;
use crate::stats::sequential::quantiles::LatencyPlan;
use crate::stats::sequential::{SequentialConfig, SequentialJudge};
use crate::stats::{LogHistogram, StatsError, normal};
use methods::{
    Method, Outcome, Weighted, fixed_horizon, kayenta_classify, kayenta_classify_samples,
    kayenta_look_fails,
};
use scenarios::{Scenario, Version};

/// Everything a simulation run depends on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    pub seed: u64,
    /// Analyses per A/A scenario (false-positive rates need many).
    pub null_runs: usize,
    /// Analyses per scenario with a real difference.
    pub runs: usize,
    /// Requests per second per version.
    pub rate_per_sec: f64,
    pub interval_secs: f64,
    /// Looks per analysis (lifetime = looks x interval).
    pub looks: usize,
    pub alpha: f64,
    pub latency_median_ms: f64,
    /// Log-sd of the baseline's lognormal latency.
    pub latency_sigma: f64,
    /// Baseline error rate.
    pub error_rate: f64,
    /// Step of the metric series Kayenta judges (and of error draws).
    pub kayenta_step_secs: f64,
    pub scenarios: Vec<Scenario>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            seed: 2026,
            null_runs: 2000,
            runs: 500,
            rate_per_sec: 50.0,
            interval_secs: 30.0,
            looks: 60,
            alpha: 0.01,
            latency_median_ms: 100.0,
            latency_sigma: 0.5,
            error_rate: 0.005,
            kayenta_step_secs: 10.0,
            scenarios: Scenario::defaults(),
        }
    }
}

impl SimConfig {
    pub fn validate(&self) -> Result<(), StatsError> {
        let positive = [
            ("rate_per_sec", self.rate_per_sec),
            ("interval_secs", self.interval_secs),
            ("latency_median_ms", self.latency_median_ms),
            ("latency_sigma", self.latency_sigma),
            ("kayenta_step_secs", self.kayenta_step_secs),
        ];
        for (name, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(StatsError::Invalid(format!(
                    "simulation {name} {v} must be a positive number"
                )));
            }
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(StatsError::Invalid(format!(
                "simulation error_rate {} is not in [0, 1]",
                self.error_rate
            )));
        }
        for sc in &self.scenarios {
            let fields = [
                ("median_factor", Some(sc.median_factor)),
                ("p99_factor", Some(sc.p99_factor)),
                ("error_factor", Some(sc.error_factor)),
                ("rate_per_sec", sc.rate_per_sec),
                ("latency_sigma", sc.latency_sigma),
            ];
            for (name, v) in fields {
                if let Some(v) = v.filter(|v| !(v.is_finite() && *v > 0.0)) {
                    return Err(StatsError::Invalid(format!(
                        "scenario `{}`: {name} {v} must be a positive number",
                        sc.name
                    )));
                }
            }
            let sigma = sc.latency_sigma.unwrap_or(self.latency_sigma);
            if sigma + sc.p99_factor.ln() / 2.326_347_874_040_841 <= 0.0 {
                return Err(StatsError::Invalid(format!(
                    "scenario `{}`: p99_factor {} leaves the canary no spread",
                    sc.name, sc.p99_factor
                )));
            }
        }
        if self.looks == 0 || self.scenarios.is_empty() {
            return Err(StatsError::Invalid(
                "simulation needs at least one look and one scenario".into(),
            ));
        }
        self.sequential().validate()
    }

    fn sequential(&self) -> SequentialConfig {
        SequentialConfig {
            alpha: self.alpha,
            ..SequentialConfig::default()
        }
    }

    fn runs_of(&self, scenario: &Scenario) -> usize {
        if scenario.is_null() {
            self.null_runs
        } else {
            self.runs
        }
    }

    pub fn lifetime_secs(&self) -> f64 {
        self.looks as f64 * self.interval_secs
    }
}

/// One scenario x method cell of the report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimRow {
    pub scenario: String,
    /// True for A/A scenarios: `rate` is a false-positive rate, else power.
    pub null: bool,
    pub method: Method,
    pub runs: usize,
    pub detected: usize,
    pub rate: f64,
    /// 95% Wilson interval of `rate`.
    pub rate_lower: f64,
    pub rate_upper: f64,
    /// Detections the latency test made (first, or together with errors).
    pub by_latency: usize,
    pub by_errors: usize,
    /// Median and 90th percentile of the time to detect over ALL runs (a run that never
    /// detects counts as never): `None` when fewer than half (a tenth) detected.
    pub median_secs: Option<f64>,
    pub p90_secs: Option<f64>,
    /// `detected_by_look[k]`: runs failed at or before look k.
    pub detected_by_look: Vec<usize>,
}

/// The whole simulation: its configuration and one row per scenario and method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    pub config: SimConfig,
    pub rows: Vec<SimRow>,
}

/// Outcomes of one simulated analysis, one per method (in [`Method::ALL`] order).
type RunOutcome = [Outcome; 3];

/// Runs every scenario; `progress(done, total)` is called as analyses finish (from worker
/// threads, in no particular order).
pub fn run_simulation(
    config: &SimConfig,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SimReport, StatsError> {
    config.validate()?;
    let sequential = config.sequential();
    let plan = sequential.latency_plan()?;
    let jobs: Vec<(usize, usize)> = config
        .scenarios
        .iter()
        .enumerate()
        .flat_map(|(s, sc)| (0..config.runs_of(sc)).map(move |r| (s, r)))
        .collect();
    let total = jobs.len();
    let done = AtomicUsize::new(0);
    let outcomes: Vec<RunOutcome> = jobs
        .par_iter()
        .map(|&(s, r)| {
            let out = simulate_one(config, &sequential, &plan, s, r);
            progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
            out
        })
        .collect::<Result<_, _>>()?;

    let mut rows = Vec::new();
    let mut start = 0;
    for scenario in &config.scenarios {
        let n = config.runs_of(scenario);
        let runs = &outcomes[start..start + n];
        start += n;
        for (m, method) in Method::ALL.iter().enumerate() {
            let cells: Vec<Outcome> = runs.iter().map(|o| o[m]).collect();
            rows.push(summarise(config, scenario, *method, &cells));
        }
    }
    Ok(SimReport {
        config: config.clone(),
        rows,
    })
}

/// A deterministic 64-bit mix (SplitMix64) of the seed and the analysis' coordinates.
fn analysis_seed(seed: u64, scenario: usize, run: usize) -> u64 {
    let mut z = seed ^ ((scenario as u64) << 40) ^ (run as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn simulate_one(
    config: &SimConfig,
    sequential: &SequentialConfig,
    plan: &LatencyPlan,
    scenario_index: usize,
    run: usize,
) -> Result<RunOutcome, StatsError> {
    let scenario = &config.scenarios[scenario_index];
    let mut rng = ChaCha8Rng::seed_from_u64(analysis_seed(config.seed, scenario_index, run));
    let rate = scenario.rate_per_sec.unwrap_or(config.rate_per_sec);
    let error_rate = scenario.error_rate.unwrap_or(config.error_rate);
    let sigma = scenario.latency_sigma.unwrap_or(config.latency_sigma);
    let baseline = Version::baseline(config.latency_median_ms, sigma, error_rate);
    let canary = Version::canary(config.latency_median_ms, sigma, error_rate, scenario);
    let steps = (config.interval_secs / config.kayenta_step_secs)
        .round()
        .max(1.0) as usize;
    let step_requests = rate * config.interval_secs / steps as f64;

    let mut seq_latency = SequentialJudge::latency(sequential, plan);
    let mut seq_errors = SequentialJudge::errors(sequential)?;
    let (mut all_c, mut all_b) = (LogHistogram::new(), LogHistogram::new());
    let (mut total_c, mut total_b) = (Counts::default(), Counts::default());
    let (mut series_c, mut series_b) = (Vec::new(), Vec::new());
    let mut out = [Outcome::default(); 3];

    for look in 0..config.looks {
        let (mut hc, mut hb) = (LogHistogram::new(), LogHistogram::new());
        let (mut kc, mut kb) = (Counts::default(), Counts::default());
        for _ in 0..steps {
            let b = baseline.step(&mut rng, step_requests, &mut hb);
            let c = canary.step(&mut rng, step_requests, &mut hc);
            for (step, acc, series) in [(&b, &mut kb, &mut series_b), (&c, &mut kc, &mut series_c)]
            {
                acc.requests += step.counts.requests;
                acc.errors += step.counts.errors;
                // Kayenta drops NaN points (a step without requests).
                if step.counts.requests > 0 {
                    series.push(step.counts.errors as f64 / step.counts.requests as f64);
                }
            }
        }
        all_c.merge(&hc);
        all_b.merge(&hb);
        for (total, add) in [(&mut total_c, kc), (&mut total_b, kb)] {
            total.requests += add.requests;
            total.errors += add.errors;
        }

        if out[0].look.is_none() {
            let latency = seq_latency.look_histograms(&hc, &hb)?;
            let errors = seq_errors.look_counts(kc, kb)?;
            out[0].record(
                look,
                latency.decision == crate::stats::sequential::Decision::Reject,
                errors.decision == crate::stats::sequential::Decision::Reject,
            );
        }
        if out[2].look.is_none() {
            let (latency, errors) = kayenta_look_fails(
                kayenta_classify(
                    &Weighted::from_histogram(&all_c),
                    &Weighted::from_histogram(&all_b),
                ),
                kayenta_classify_samples(&series_c, &series_b),
            );
            out[2].record(look, latency, errors);
        }
    }
    let (latency, errors) = fixed_horizon(&all_c, &all_b, total_c, total_b, config.alpha);
    out[1].record(config.looks - 1, latency, errors);
    Ok(out)
}

fn summarise(
    config: &SimConfig,
    scenario: &Scenario,
    method: Method,
    outcomes: &[Outcome],
) -> SimRow {
    let runs = outcomes.len();
    let detected = outcomes.iter().filter(|o| o.look.is_some()).count();
    let (rate_lower, rate_upper) = wilson(detected, runs);
    let mut times: Vec<f64> = outcomes
        .iter()
        .map(|o| {
            o.look
                .map_or(f64::INFINITY, |l| (l + 1) as f64 * config.interval_secs)
        })
        .collect();
    times.sort_unstable_by(f64::total_cmp);
    let at = |q: f64| {
        let k = ((q * runs as f64).ceil() as usize).clamp(1, runs.max(1)) - 1;
        times.get(k).copied().filter(|t| t.is_finite())
    };
    let mut detected_by_look = vec![0; config.looks];
    for l in outcomes.iter().filter_map(|o| o.look) {
        detected_by_look[l] += 1;
    }
    for k in 1..detected_by_look.len() {
        detected_by_look[k] += detected_by_look[k - 1];
    }
    SimRow {
        scenario: scenario.name.clone(),
        null: scenario.is_null(),
        method,
        runs,
        detected,
        rate: if runs > 0 {
            detected as f64 / runs as f64
        } else {
            0.0
        },
        rate_lower,
        rate_upper,
        by_latency: outcomes.iter().filter(|o| o.by_latency).count(),
        by_errors: outcomes.iter().filter(|o| o.by_errors).count(),
        median_secs: at(0.5),
        p90_secs: at(0.9),
        detected_by_look,
    }
}

/// 95% Wilson score interval of a binomial proportion.
pub fn wilson(successes: usize, trials: usize) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let z = normal::isf(0.025);
    let (n, p) = (trials as f64, successes as f64 / trials as f64);
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

fn fmt_secs(s: Option<f64>) -> String {
    match s {
        None => "never".into(),
        Some(s) if s < 120.0 => format!("{s:.0} s"),
        Some(s) => format!("{:.1} min", s / 60.0),
    }
}

impl SimReport {
    /// A plain-text table, one line per scenario and method.
    pub fn to_text_table(&self) -> String {
        let c = &self.config;
        let mut out = format!(
            "{} req/s per version, {} looks every {} s ({} min), alpha {}, lognormal latency (median {} ms, log-sd {}), baseline errors {}%, seed {}\n",
            c.rate_per_sec,
            c.looks,
            c.interval_secs,
            c.lifetime_secs() / 60.0,
            c.alpha,
            c.latency_median_ms,
            c.latency_sigma,
            c.error_rate * 100.0,
            c.seed
        );
        out.push_str(&format!(
            "{:<48} {:<22} {:>6} {:>26} {:>8} {:>8} {:>9} {:>9}\n",
            "scenario",
            "method",
            "runs",
            "FPR / power [95% CI]",
            "latency",
            "errors",
            "median",
            "p90"
        ));
        for r in &self.rows {
            let kind = if r.null { "FPR" } else { "power" };
            let rate = format!(
                "{kind} {:.2}% [{:.2}, {:.2}]",
                100.0 * r.rate,
                100.0 * r.rate_lower,
                100.0 * r.rate_upper
            );
            out.push_str(&format!(
                "{:<48} {:<22} {:>6} {:>26} {:>8} {:>8} {:>9} {:>9}\n",
                r.scenario,
                r.method.label(),
                r.runs,
                rate,
                r.by_latency,
                r.by_errors,
                fmt_secs(r.median_secs),
                fmt_secs(r.p90_secs)
            ));
        }
        out
    }

    /// CSV with a header line; times in seconds, empty when never reached.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "scenario,null,method,runs,detected,rate,rate_lower,rate_upper,by_latency,by_errors,median_secs,p90_secs\n",
        );
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
        for r in &self.rows {
            out.push_str(&format!(
                "\"{}\",{},{},{},{},{},{},{},{},{},{},{}\n",
                r.scenario.replace('"', "\"\""),
                r.null,
                serde_json::to_value(r.method)
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default(),
                r.runs,
                r.detected,
                r.rate,
                r.rate_lower,
                r.rate_upper,
                r.by_latency,
                r.by_errors,
                opt(r.median_secs),
                opt(r.p90_secs)
            ));
        }
        out
    }
}
