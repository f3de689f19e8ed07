//! Error proportions: is the canary's error ratio different from the baseline's?

use serde::{Deserialize, Serialize};

use super::{Alternative, Method, MethodUsed, StatsError};

/// Requests and the errors among them, for one version over one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
}

/// Comparison of the canary's error proportion with the baseline's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProportionTest {
    pub canary_ratio: f64,
    pub baseline_ratio: f64,
    /// canary_ratio / baseline_ratio; `None` when the baseline saw no errors.
    pub ratio: Option<f64>,
    /// canary_ratio - baseline_ratio.
    pub difference: f64,
    pub p_value: f64,
    pub method: MethodUsed,
    pub alternative: Alternative,
}

pub fn compare_proportions(
    canary: Counts,
    baseline: Counts,
    alternative: Alternative,
    method: Method,
) -> Result<ProportionTest, StatsError> {
    let _ = (canary, baseline, alternative, method);
    todo!()
}
