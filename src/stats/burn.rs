//! Error-budget burn rate against an SLO, with the SRE workbook's multi-window,
//! multi-burn-rate evaluation.

use serde::{Deserialize, Serialize};

use super::StatsError;

/// burn rate = error ratio / (1 - slo target).
pub fn burn_rate(errors: u64, requests: u64, slo_target: f64) -> Result<f64, StatsError> {
    let _ = (errors, requests, slo_target);
    todo!()
}

/// One alerting rule: both windows must burn faster than `factor`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurnWindow {
    pub severity: String,
    pub long_window_secs: f64,
    pub short_window_secs: f64,
    pub factor: f64,
}
