//! What a simulated canary looks like: the scenarios and the traffic they generate.
//!
//! Latency is lognormal. The baseline has median `latency_median_ms` and log-sd
//! `latency_sigma`; a scenario scales the canary's median by `median_factor` and its p99
//! by a further `p99_factor` (so `median_factor = 1, p99_factor = 1.3` is a variance jump
//! with the median unchanged). Errors are Bernoulli per request; a zero-inflated canary
//! has "bad" steps (probability `bad_step_probability`) with a higher error rate and
//! otherwise the baseline's.

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Poisson, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::stats::LogHistogram;
use crate::stats::proportions::Counts;

/// z of the 99th percentile of the standard normal.
const Z99: f64 = 2.326_347_874_040_841;

/// One simulated situation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Canary median / baseline median.
    pub median_factor: f64,
    /// Extra factor on the canary's p99 beyond the median's (1 = whole distribution scaled).
    pub p99_factor: f64,
    /// Canary error rate / baseline error rate (ignored when `zero_inflated` is set).
    pub error_factor: f64,
    /// Overrides the configured request rate per version.
    #[serde(default)]
    pub rate_per_sec: Option<f64>,
    /// Overrides the configured baseline error rate.
    #[serde(default)]
    pub error_rate: Option<f64>,
    /// Overrides the configured log-sd of the baseline's latency.
    #[serde(default)]
    pub latency_sigma: Option<f64>,
    #[serde(default)]
    pub zero_inflated: Option<ZeroInflation>,
}

/// Canary errors come in rare bad steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroInflation {
    pub bad_step_probability: f64,
    pub bad_error_rate: f64,
}

impl Scenario {
    fn plain(name: &str, median_factor: f64, p99_factor: f64, error_factor: f64) -> Self {
        Scenario {
            name: name.into(),
            median_factor,
            p99_factor,
            error_factor,
            rate_per_sec: None,
            error_rate: None,
            latency_sigma: None,
            zero_inflated: None,
        }
    }

    /// True when the canary is the baseline (an A/A run): detections are false positives.
    pub fn is_null(&self) -> bool {
        self.median_factor == 1.0
            && self.p99_factor == 1.0
            && self.error_factor == 1.0
            && self.zero_inflated.is_none()
    }

    /// The default list: A/A, latency shifts, a variance jump, error-rate increases, low
    /// traffic, sparse (zero-inflated) errors.
    pub fn defaults() -> Vec<Scenario> {
        let low = |mut s: Scenario| {
            s.rate_per_sec = Some(5.0);
            s
        };
        vec![
            Scenario::plain("A/A", 1.0, 1.0, 1.0),
            Scenario::plain("median +5%", 1.05, 1.0, 1.0),
            Scenario::plain("median +10%", 1.10, 1.0, 1.0),
            Scenario::plain("median +20%", 1.20, 1.0, 1.0),
            Scenario {
                latency_sigma: Some(0.3),
                ..Scenario::plain("median +10%, narrower latency (log-sd 0.3)", 1.10, 1.0, 1.0)
            },
            Scenario::plain("p99 +30%, same median", 1.0, 1.3, 1.0),
            Scenario::plain("errors x1.5", 1.0, 1.0, 1.5),
            Scenario::plain("errors x2", 1.0, 1.0, 2.0),
            Scenario::plain("errors x5", 1.0, 1.0, 5.0),
            low(Scenario::plain("low traffic 5 req/s: A/A", 1.0, 1.0, 1.0)),
            low(Scenario::plain(
                "low traffic 5 req/s: median +20%, errors x2",
                1.2,
                1.0,
                2.0,
            )),
            Scenario {
                error_rate: Some(0.0002),
                zero_inflated: Some(ZeroInflation {
                    bad_step_probability: 0.1,
                    bad_error_rate: 0.01,
                }),
                ..Scenario::plain(
                    "zero-inflated errors (0.02%, 10% of steps at 1%)",
                    1.0,
                    1.0,
                    1.0,
                )
            },
        ]
    }
}

/// Traffic of one version over one step.
pub struct Version {
    pub log_median: f64,
    pub sigma: f64,
    pub error_rate: f64,
    pub zero_inflated: Option<ZeroInflation>,
}

/// What one version produced in one step.
pub struct Step {
    pub counts: Counts,
}

impl Version {
    pub fn baseline(median_ms: f64, sigma: f64, error_rate: f64) -> Self {
        Version {
            log_median: median_ms.ln(),
            sigma,
            error_rate,
            zero_inflated: None,
        }
    }

    pub fn canary(median_ms: f64, sigma: f64, error_rate: f64, scenario: &Scenario) -> Self {
        Version {
            log_median: (median_ms * scenario.median_factor).ln(),
            sigma: sigma + scenario.p99_factor.ln() / Z99,
            error_rate: error_rate * scenario.error_factor,
            zero_inflated: scenario.zero_inflated,
        }
    }

    /// Draws one step: Poisson request count, a latency per request into `latency`,
    /// binomial errors.
    pub fn step(
        &self,
        rng: &mut ChaCha8Rng,
        mean_requests: f64,
        latency: &mut LogHistogram,
    ) -> Step {
        let requests = if mean_requests > 0.0 {
            Poisson::new(mean_requests).map_or(0.0, |p| rng.sample(p)) as u64
        } else {
            0
        };
        for _ in 0..requests {
            let z: f64 = rng.sample(StandardNormal);
            latency.record((self.log_median + self.sigma * z).exp());
        }
        let rate = match self.zero_inflated {
            Some(z) if rng.random::<f64>() < z.bad_step_probability => z.bad_error_rate,
            _ => self.error_rate,
        };
        let errors = Binomial::new(requests, rate.clamp(0.0, 1.0)).map_or(0, |b| rng.sample(b));
        Step {
            counts: Counts { requests, errors },
        }
    }
}
