//! Midranks and tie groups over two sorted samples, in one merge pass.
//!
//! Owns the pooled ranking of two samples, from raw sorted samples or from aligned bucket
//! counts. Invariant: both entry points feed the same accumulator one tie group at a time
//! (in ascending value order), and every sum is kept in integers until the end, so the
//! same data gives bit-for-bit the same `RankSummary` whichever way it arrives.

use super::{Sorted, StatsError};

/// What a rank test needs from the pooled ranking of two samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankSummary {
    /// Sum of the canary's midranks (1-based).
    pub rank_sum_canary: f64,
    /// Mann-Whitney U of the canary, `R_canary - n_c (n_c + 1) / 2`, computed in integers
    /// and rounded once (exact while `2U < 2^53`).
    pub u_canary: f64,
    pub n_canary: usize,
    pub n_baseline: usize,
    /// Sum over tie groups of t^3 - t, exact in integers.
    pub tie_term: u128,
    /// True when any value occurs more than once in the pooled sample.
    pub has_ties: bool,
}

/// Ranks the pooled sample without materialising it.
pub fn rank_summary(canary: &Sorted, baseline: &Sorted) -> RankSummary {
    let (a, b) = (canary.as_slice(), baseline.as_slice());
    let mut acc = Accumulator::default();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        if x < y {
            let run = run_len(&a[i..]);
            acc.group(run, 0);
            i += run;
        } else if y < x {
            let run = run_len(&b[j..]);
            acc.group(0, run);
            j += run;
        } else {
            let (ra, rb) = (run_len(&a[i..]), run_len(&b[j..]));
            acc.group(ra, rb);
            i += ra;
            j += rb;
        }
    }
    while i < a.len() {
        let run = run_len(&a[i..]);
        acc.group(run, 0);
        i += run;
    }
    while j < b.len() {
        let run = run_len(&b[j..]);
        acc.group(0, run);
        j += run;
    }
    acc.finish()
}

/// Ranks two aligned bucket-count sequences: bucket `k` of each holds the observations
/// equal to the `k`-th smallest value, so each bucket is one tie group.
pub fn rank_summary_buckets(canary: &[u64], baseline: &[u64]) -> Result<RankSummary, StatsError> {
    if canary.len() != baseline.len() {
        return Err(StatsError::Invalid(format!(
            "bucket counts are not aligned: canary has {} buckets, baseline has {}",
            canary.len(),
            baseline.len()
        )));
    }
    let mut acc = Accumulator::default();
    for (&c, &b) in canary.iter().zip(baseline) {
        acc.group(to_usize(c)?, to_usize(b)?);
        if acc.below > u64::MAX as u128 {
            return Err(StatsError::Invalid(format!(
                "bucket counts add up to {} observations, more than can be ranked",
                acc.below
            )));
        }
    }
    Ok(acc.finish())
}

fn to_usize(count: u64) -> Result<usize, StatsError> {
    usize::try_from(count).map_err(|_| {
        StatsError::Invalid(format!("bucket count {count} does not fit this platform"))
    })
}

/// Length of the run of values equal to `values[0]`. Runs are short in continuous data,
/// so a linear scan beats a binary search.
fn run_len(values: &[f64]) -> usize {
    let first = values[0];
    values.iter().take_while(|&&v| v == first).count()
}

#[derive(Default)]
struct Accumulator {
    /// Twice the canary's rank sum: midranks are half-integers.
    twice_rank_sum: u128,
    n_canary: u128,
    n_baseline: u128,
    /// Observations in earlier (smaller) tie groups.
    below: u128,
    tie_term: u128,
    has_ties: bool,
}

impl Accumulator {
    /// Adds the next tie group, holding `c` canary and `b` baseline observations.
    fn group(&mut self, c: usize, b: usize) {
        let (c, b) = (c as u128, b as u128);
        let t = c + b;
        // Ranks below + 1 ..= below + t share the midrank below + (t + 1) / 2.
        self.twice_rank_sum += c * (2 * self.below + t + 1);
        if t > 1 {
            self.tie_term += t * t * t - t;
            self.has_ties = true;
        }
        self.below += t;
        self.n_canary += c;
        self.n_baseline += b;
    }

    fn finish(self) -> RankSummary {
        let twice_u = self.twice_rank_sum - self.n_canary * (self.n_canary + 1);
        RankSummary {
            rank_sum_canary: self.twice_rank_sum as f64 / 2.0,
            u_canary: twice_u as f64 / 2.0,
            // Both counts came from usize values, or were checked against u64 (buckets).
            n_canary: self.n_canary as usize,
            n_baseline: self.n_baseline as usize,
            tie_term: self.tie_term,
            has_ties: self.has_ties,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(v: &[f64]) -> Sorted {
        Sorted::new(v.to_vec(), "test").unwrap()
    }

    /// Midranks by brute force: each value's rank is 1 + #smaller + (#equal - 1) / 2.
    fn brute(a: &[f64], b: &[f64]) -> (f64, u128) {
        let pooled: Vec<f64> = a.iter().chain(b).copied().collect();
        let rank = |x: f64| {
            let less = pooled.iter().filter(|&&v| v < x).count() as f64;
            let eq = pooled.iter().filter(|&&v| v == x).count() as f64;
            less + (eq + 1.0) / 2.0
        };
        let mut distinct = pooled.clone();
        distinct.sort_by(f64::total_cmp);
        distinct.dedup();
        let ties = distinct
            .iter()
            .map(|&x| pooled.iter().filter(|&&v| v == x).count() as u128)
            .map(|t| t * t * t - t)
            .sum();
        (a.iter().map(|&x| rank(x)).sum(), ties)
    }

    #[test]
    fn matches_brute_force_midranks() {
        let a = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let b = [5.0, 3.0, 5.0, 8.0, 9.0, 7.0, 9.0];
        let s = rank_summary(&sorted(&a), &sorted(&b));
        let (r, ties) = brute(&a, &b);
        assert_eq!(s.rank_sum_canary, r);
        assert_eq!(s.u_canary, r - 36.0);
        assert_eq!(s.tie_term, ties);
        assert!(s.has_ties);
        assert_eq!((s.n_canary, s.n_baseline), (8, 7));
    }

    #[test]
    fn no_ties_and_negative_zero_is_a_tie() {
        let s = rank_summary(
            &sorted(&[10.0, 20.0, 30.0, 40.0]),
            &sorted(&[1.0, 2.0, 3.0, 4.0]),
        );
        assert_eq!((s.rank_sum_canary, s.u_canary), (26.0, 16.0));
        assert_eq!((s.tie_term, s.has_ties), (0, false));
        let z = rank_summary(&sorted(&[-0.0]), &sorted(&[0.0]));
        assert_eq!((z.rank_sum_canary, z.tie_term, z.has_ties), (1.5, 6, true));
    }

    #[test]
    fn buckets_match_samples_and_refuse_misalignment() {
        let c = [2u64, 0, 3, 1];
        let b = [1u64, 4, 0, 2];
        let expand = |counts: &[u64]| -> Vec<f64> {
            counts
                .iter()
                .enumerate()
                .flat_map(|(k, &n)| std::iter::repeat_n(k as f64, n as usize))
                .collect()
        };
        let from_buckets = rank_summary_buckets(&c, &b).unwrap();
        let from_samples = rank_summary(&sorted(&expand(&c)), &sorted(&expand(&b)));
        assert_eq!(from_buckets, from_samples);
        assert!(matches!(
            rank_summary_buckets(&c, &b[..3]),
            Err(StatsError::Invalid(m)) if m.contains("4 buckets") && m.contains("has 3")
        ));
    }
}
