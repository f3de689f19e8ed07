//! Mann-Whitney U test (Wilcoxon rank-sum), numerically matching `scipy.stats.mannwhitneyu`.
//!
//! Owns the p-value of U, from samples or from aligned bucket counts. Invariant: every
//! path goes through [`from_u`], so the sample test and the bucket test give identical
//! results on identical (bucketized) data.
//!
//! Semantics, following SciPy (`use_continuity=True`):
//! - U is the canary's. The p-value uses U1 for `Greater`, U2 = n1 n2 - U1 for `Less`
//!   and max(U1, U2) for `TwoSided`, always through the upper tail, doubled and capped
//!   at 1 for `TwoSided`.
//! - Asymptotic: z = (U - n1 n2 / 2 - 0.5) / sigma with the tie-corrected sigma. When
//!   every observation is equal sigma is 0; SciPy then evaluates the normal tail at -inf
//!   and reports p = 1, and so do we (with no z).
//! - Exact: the null distribution of U assumes no ties. Asked for explicitly on tied data
//!   it is computed anyway, with U rounded down to an integer, as SciPy does, so the
//!   numbers agree with SciPy; `Method::Auto` never picks it when there are ties.
//! - `Method::Auto` picks exact when there are no ties and both samples hold fewer than
//!   50 values. That is R's `wilcox.test` rule, not SciPy's (exact only when a sample
//!   has at most 8): the exact distribution costs well under a millisecond at 49 x 49,
//!   and the normal approximation is visibly off in the tails at those sizes.

use serde::{Deserialize, Serialize};

use super::rank::{rank_summary, rank_summary_buckets};
use super::{Alternative, Method, MethodUsed, Sorted, StatsError, normal};

/// `Method::Auto` uses the exact distribution when both samples are smaller than this
/// (and there are no ties).
pub const AUTO_EXACT_BELOW: usize = 50;

/// The exact distribution is refused above this many (canary, baseline) pairs: its cost
/// grows as min(n1, n2) * n1 * n2 / 2 (about half a second at 1,000 x 1,000), and at
/// such sizes the normal approximation agrees with it to many digits.
pub const EXACT_MAX_PAIRS: u64 = 1_000_000;

/// Result of a Mann-Whitney U test of canary against baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MannWhitney {
    /// U statistic of the canary sample.
    #[serde(with = "crate::stats::nonfinite")]
    pub u: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub p_value: f64,
    pub method: MethodUsed,
    pub alternative: Alternative,
    /// Standardised U of the canary (with continuity and tie correction) when asymptotic:
    /// positive when the canary tends larger; the continuity correction moves it toward 0
    /// (toward the alternative's side for one-sided tests), so p = sf(z) for `Greater`,
    /// cdf(z) for `Less`, min(1, 2 sf(|z|)) for `TwoSided`. `None` when exact, or when
    /// every observation is equal (no spread: p = 1).
    #[serde(default, with = "crate::stats::nonfinite::option")]
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
    check_sizes(canary.len(), baseline.len())?;
    let s = rank_summary(canary, baseline);
    from_u(
        s.u_canary,
        s.n_canary,
        s.n_baseline,
        s.tie_term,
        s.has_ties,
        alternative,
        method,
    )
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
    check_sizes(n_canary, n_baseline)?;
    let pairs = n_canary as f64 * n_baseline as f64;
    if !(u >= 0.0 && u <= pairs && (2.0 * u).fract() == 0.0) {
        return Err(StatsError::Invalid(format!(
            "U = {u} is not a multiple of 1/2 in [0, {pairs}] \
             (n_canary = {n_canary}, n_baseline = {n_baseline})"
        )));
    }
    let use_exact = match method {
        Method::Exact => true,
        Method::Asymptotic => false,
        Method::Auto => !has_ties && n_canary < AUTO_EXACT_BELOW && n_baseline < AUTO_EXACT_BELOW,
    };
    let (p_value, z, used) = if use_exact {
        let p = exact_p(u, n_canary, n_baseline, alternative)?;
        (p, None, MethodUsed::Exact)
    } else {
        let (p, z) = asymptotic_p(u, n_canary, n_baseline, tie_term, alternative);
        (p, z, MethodUsed::Asymptotic)
    };
    Ok(MannWhitney {
        u,
        p_value,
        method: used,
        alternative,
        z,
        n_canary,
        n_baseline,
    })
}

/// Mann-Whitney on two aligned bucket-count sequences (ascending value order, equal
/// length; bucket k of one is bucket k of the other). Each bucket is one tie group, so
/// the cost is O(buckets) however many observations they hold.
///
/// U_canary = sum_k c_k (B_<k + b_k / 2), with B_<k the baseline count below bucket k; it
/// is computed as the canary's midrank sum over the buckets, the same accumulation the
/// sample test runs, so the two agree bit for bit.
pub fn mann_whitney_buckets(
    canary: &[u64],
    baseline: &[u64],
    alternative: Alternative,
    method: Method,
) -> Result<MannWhitney, StatsError> {
    let s = rank_summary_buckets(canary, baseline)?;
    check_sizes(s.n_canary, s.n_baseline)?;
    from_u(
        s.u_canary,
        s.n_canary,
        s.n_baseline,
        s.tie_term,
        s.has_ties,
        alternative,
        method,
    )
}

fn check_sizes(n_canary: usize, n_baseline: usize) -> Result<(), StatsError> {
    if n_canary == 0 {
        return Err(StatsError::Empty { which: "canary" });
    }
    if n_baseline == 0 {
        return Err(StatsError::Empty { which: "baseline" });
    }
    Ok(())
}

/// The statistic whose upper tail is the p-value, and the factor applied to that tail.
fn tail_statistic(u1: f64, pairs: f64, alternative: Alternative) -> (f64, f64) {
    let u2 = pairs - u1;
    match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    }
}

fn asymptotic_p(
    u1: f64,
    n1: usize,
    n2: usize,
    tie_term: u128,
    alternative: Alternative,
) -> (f64, Option<f64>) {
    let (n1w, n2w) = (n1 as u128, n2 as u128);
    let n = n1w + n2w;
    // Every observation equal: one tie group of size n. Checked in integers because the
    // float form of the variance below would round to a tiny number of either sign.
    if tie_term == n * n * n - n {
        return (1.0, None);
    }
    let pairs = (n1w * n2w) as f64;
    let mu = pairs / 2.0;
    // Same operation order as SciPy, so the two round alike.
    let sigma = (pairs / 12.0 * ((n + 1) as f64 - tie_term as f64 / (n * (n - 1)) as f64)).sqrt();
    let (u, factor) = tail_statistic(u1, pairs, alternative);
    let p = (factor * normal::sf((u - mu - 0.5) / sigma)).min(1.0);
    let correction = match alternative {
        Alternative::Greater => 0.5,
        Alternative::Less => -0.5,
        Alternative::TwoSided => {
            let d = u1 - mu;
            if d == 0.0 { 0.0 } else { 0.5 * d.signum() }
        }
    };
    (p, Some((u1 - mu - correction) / sigma))
}

fn exact_p(u1: f64, n1: usize, n2: usize, alternative: Alternative) -> Result<f64, StatsError> {
    let pairs = n1 as u64 * n2 as u64;
    if pairs > EXACT_MAX_PAIRS {
        return Err(StatsError::Invalid(format!(
            "the exact Mann-Whitney distribution is limited to n_canary * n_baseline <= \
             {EXACT_MAX_PAIRS}, got {n1} * {n2}; use the asymptotic method"
        )));
    }
    let (u, factor) = tail_statistic(u1, pairs as f64, alternative);
    // With ties U can be a half-integer; SciPy truncates it to an integer here.
    let k = u.floor() as u64;
    Ok((factor * null_sf(k, n1, n2)).clamp(0.0, 1.0))
}

/// P(U >= k) under the null hypothesis of no difference and no ties.
fn null_sf(k: u64, n1: usize, n2: usize) -> f64 {
    let pairs = n1 as u64 * n2 as u64;
    let kc = pairs - k;
    // The distribution is symmetric about pairs / 2, so only its lower half is ever
    // needed: P(U >= k) = P(U <= kc) when k >= kc, else 1 - P(U < k).
    let pmf = null_pmf_lower(k.min(kc) as usize, n1.min(n2), n1.max(n2));
    if k < kc {
        let k = k as usize;
        let cdf: f64 = pmf[..=k].iter().sum();
        1.0 - cdf + pmf[k]
    } else {
        pmf.iter().sum()
    }
}

/// P(U = u) for u = 0..=limit, U the Mann-Whitney statistic for samples of sizes m <= n.
///
/// The generating function of U is the Gaussian binomial coefficient
/// [m + n choose m](q) / C(m + n, m) = prod_{j=1..m} (1 - q^(n+j)) / (1 - q^j) * j / (n + j).
/// Each factor of the product is applied in turn, truncated at degree `limit`: divide by
/// (1 - q^j) (a running sum with stride j), multiply by (1 - q^(n+j)), rescale so the
/// coefficients stay a probability distribution (counts would overflow f64 past about
/// 500 x 500; probabilities never exceed 1). After step j the array is the distribution
/// for sizes (j, n), whose coefficients are all positive. Cost O(m * limit), memory
/// O(limit). The subtraction is the only place rounding can grow; measured against exact
/// rational arithmetic (tests/reference/mannwhitney.py), the p-values agree to 3e-15
/// relative at 200 x 200, where SciPy's own recurrence is off by 2e-13.
fn null_pmf_lower(limit: usize, m: usize, n: usize) -> Vec<f64> {
    let mut f = vec![0.0f64; limit + 1];
    f[0] = 1.0;
    for j in 1..=m {
        let top = limit.min(n * j);
        // Running sum with stride j, in blocks of j so that each block reads only the
        // finished block below it (and the loop vectorises).
        let mut start = j;
        while start <= top {
            let end = (start + j).min(top + 1);
            let (lower, upper) = f.split_at_mut(start);
            let src = &lower[start - j..start - j + (end - start)];
            upper[..end - start]
                .iter_mut()
                .zip(src)
                .for_each(|(d, s)| *d += *s);
            start = end;
        }
        // Multiply by (1 - q^(n+j)) and rescale, from the top down in blocks of n + j so
        // each block reads coefficients not yet changed in this step.
        let shift = n + j;
        let scale = j as f64 / shift as f64;
        let mut end = top + 1;
        while end > shift {
            let start = (end - shift).max(shift);
            let (lower, upper) = f.split_at_mut(start);
            let src = &lower[start - shift..end - shift];
            upper[..end - start]
                .iter_mut()
                .zip(src)
                .for_each(|(d, s)| *d = (*d - *s) * scale);
            end = start;
        }
        f[..end].iter_mut().for_each(|d| *d *= scale);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts of U by brute force over all ways to place the canary among n1 + n2 ranks.
    fn brute_pmf(n1: usize, n2: usize) -> Vec<f64> {
        let n = n1 + n2;
        let mut counts = vec![0u64; n1 * n2 + 1];
        let mut total = 0u64;
        for mask in 0u32..(1 << n) {
            if mask.count_ones() as usize != n1 {
                continue;
            }
            // U = number of (canary, baseline) pairs with the canary larger.
            let mut u = 0;
            let mut baseline_below = 0;
            for r in 0..n {
                if mask & (1 << r) != 0 {
                    u += baseline_below;
                } else {
                    baseline_below += 1;
                }
            }
            counts[u] += 1;
            total += 1;
        }
        counts.iter().map(|&c| c as f64 / total as f64).collect()
    }

    #[test]
    fn null_distribution_matches_enumeration() {
        for (n1, n2) in [(1, 1), (1, 5), (3, 4), (4, 3), (5, 7), (6, 6)] {
            let brute = brute_pmf(n1, n2);
            let (m, n) = (n1.min(n2), n1.max(n2));
            let lower = null_pmf_lower(n1 * n2 / 2, m, n);
            for (u, (&a, &b)) in lower.iter().zip(&brute).enumerate() {
                assert!((a - b).abs() <= 1e-15 * b, "{n1}x{n2} u={u}: {a} vs {b}");
            }
            // Truncation at a smaller limit does not change the lower coefficients.
            let short = null_pmf_lower(2, m, n);
            let common = short.len().min(lower.len());
            assert_eq!(&short[..common], &lower[..common]);
        }
    }

    #[test]
    fn exact_two_sided_is_capped_and_tails_are_complementary() {
        // At U = mean the doubled tail exceeds 1.
        let p = exact_p(8.0, 4, 4, Alternative::TwoSided).unwrap();
        assert_eq!(p, 1.0);
        let g = exact_p(5.0, 4, 4, Alternative::Greater).unwrap();
        let l = exact_p(5.0, 4, 4, Alternative::Less).unwrap();
        let at5 = brute_pmf(4, 4)[5];
        assert!((g + l - 1.0 - at5).abs() < 1e-15);
    }

    #[test]
    fn from_u_refuses_impossible_statistics() {
        for u in [-1.0, 12.5, 3.25, f64::NAN] {
            let r = from_u(u, 3, 4, 0, false, Alternative::TwoSided, Method::Auto);
            assert!(matches!(r, Err(StatsError::Invalid(_))), "U = {u}");
        }
        assert_eq!(
            from_u(0.0, 0, 4, 0, false, Alternative::TwoSided, Method::Auto),
            Err(StatsError::Empty { which: "canary" })
        );
        let big = from_u(
            0.0,
            1001,
            1000,
            0,
            false,
            Alternative::TwoSided,
            Method::Exact,
        );
        assert!(matches!(big, Err(StatsError::Invalid(m)) if m.contains("1001 * 1000")));
    }
}
