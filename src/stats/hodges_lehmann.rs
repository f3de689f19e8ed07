//! Hodges-Lehmann shift estimate (canary - baseline) with its confidence interval,
//! matching R's `wilcox.test(x = canary, y = baseline, conf.int = TRUE)`.

use serde::{Deserialize, Serialize};

use super::{Method, MethodUsed, Sorted, StatsError};

/// Shift of the canary relative to the baseline, in the samples' unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShiftEstimate {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    pub conf_level: f64,
    pub method: MethodUsed,
}

/// Two-sided interval at `conf_level`. Both samples must be non-empty.
pub fn hodges_lehmann(
    canary: &Sorted,
    baseline: &Sorted,
    conf_level: f64,
    method: Method,
) -> Result<ShiftEstimate, StatsError> {
    let _ = (canary, baseline, conf_level, method);
    todo!()
}
