//! Effect sizes: how big a difference is, as opposed to whether it is there.

use serde::{Deserialize, Serialize};

use super::{Sorted, hodges_lehmann::ShiftEstimate};

/// Effect sizes of canary against baseline. `None` where undefined (a zero denominator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectSizes {
    /// median(canary) / median(baseline).
    pub median_ratio: Option<f64>,
    /// mean(canary) / mean(baseline) (Kayenta's `meanRatio`).
    pub mean_ratio: Option<f64>,
    /// Common-language effect size: P(canary > baseline) + P(equal) / 2 (Kayenta's `cles`).
    pub cles: f64,
    /// Hodges-Lehmann shift relative to the baseline median, with its CI, when a shift
    /// estimate is given and the baseline median is not zero.
    pub relative_shift: Option<RelativeShift>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RelativeShift {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Computes every effect size; `u` is the canary's Mann-Whitney U.
pub fn effect_sizes(
    canary: &Sorted,
    baseline: &Sorted,
    u: f64,
    shift: Option<&ShiftEstimate>,
) -> EffectSizes {
    let _ = (canary, baseline, u, shift);
    todo!()
}
