//! Midranks and tie groups over two sorted samples, in one merge pass.

use super::Sorted;

/// What a rank test needs from the pooled ranking of two samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankSummary {
    /// Sum of the canary's midranks (1-based).
    pub rank_sum_canary: f64,
    pub n_canary: usize,
    pub n_baseline: usize,
    /// Sum over tie groups of t^3 - t, exact in integers.
    pub tie_term: u128,
    /// True when any value occurs more than once in the pooled sample.
    pub has_ties: bool,
}

/// Ranks the pooled sample without materialising it.
pub fn rank_summary(canary: &Sorted, baseline: &Sorted) -> RankSummary {
    let _ = (canary, baseline);
    todo!("merge pass over both sorted samples")
}
