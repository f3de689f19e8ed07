//! Mann-Whitney U test (Wilcoxon rank-sum), numerically matching `scipy.stats.mannwhitneyu`.

use serde::{Deserialize, Serialize};

use super::{Alternative, Method, MethodUsed, Sorted, StatsError};

/// Result of a Mann-Whitney U test of canary against baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MannWhitney {
    /// U statistic of the canary sample.
    pub u: f64,
    pub p_value: f64,
    pub method: MethodUsed,
    pub alternative: Alternative,
    /// Standardised statistic (with continuity and tie correction) when asymptotic.
    pub z: Option<f64>,
    pub n_canary: usize,
    pub n_baseline: usize,
}

/// Tests canary against baseline. Both samples must be non-empty.
pub fn mann_whitney(
    canary: &Sorted,
    baseline: &Sorted,
    alternative: Alternative,
    method: Method,
) -> Result<MannWhitney, StatsError> {
    let _ = (canary, baseline, alternative, method);
    todo!()
}

/// The p-value of U from its summary: shared by the sample test and the histogram test,
/// so both give the same numbers on the same (bucketized) data.
pub fn from_u(
    u: f64,
    n_canary: usize,
    n_baseline: usize,
    tie_term: u128,
    has_ties: bool,
    alternative: Alternative,
    method: Method,
) -> Result<MannWhitney, StatsError> {
    let _ = (
        u,
        n_canary,
        n_baseline,
        tie_term,
        has_ties,
        alternative,
        method,
    );
    todo!()
}

/// Mann-Whitney on two aligned bucket-count sequences (ascending value order, equal
/// length; bucket k of one is bucket k of the other). Each bucket is one tie group, so
/// the cost is O(buckets) however many observations they hold.
pub fn mann_whitney_buckets(
    canary: &[u64],
    baseline: &[u64],
    alternative: Alternative,
    method: Method,
) -> Result<MannWhitney, StatsError> {
    let _ = (canary, baseline, alternative, method);
    todo!()
}
