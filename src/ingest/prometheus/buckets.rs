//! One scope's latency as a Prometheus classic histogram delivers it: how many
//! observations fell in each `le` bucket during the window.
//!
//! Two ways to judge it:
//! - exactly, with [`mann_whitney`]: the rank test on aligned bucket counts, where each
//!   bucket is one tie group. Nothing is assumed about where inside a bucket a value lay;
//!   this is the test Prometheus data supports without approximation.
//! - through [`Buckets::to_log_histogram`], which places every bucket's count at one
//!   representative value inside the bucket so the judge's `LogHistogram` path (quantiles,
//!   effect sizes) can take it. The rank test on that histogram gives the same U as the
//!   exact one as long as no two `le` buckets land in one log bucket (checked).
//!
//! Invariant: `bounds` are finite, strictly ascending; `counts` has one more entry than
//! `bounds`, the last being the `+Inf` bucket. Counts are per bucket, not cumulative.

use serde::{Deserialize, Serialize};

use crate::stats::{
    Alternative, LogHistogram, Method, StatsError,
    mannwhitney::{MannWhitney, mann_whitney_buckets},
};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Buckets {
    /// Finite upper bounds (`le`), ascending.
    bounds: Vec<f64>,
    /// Observations per bucket: `counts[k]` lies in `(bounds[k-1], bounds[k]]`; the last
    /// entry is the `+Inf` bucket.
    counts: Vec<u64>,
}

/// Bucket data that cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BucketError {
    #[error("no `le=\"+Inf\"` bucket: the histogram's total is unknown")]
    NoInfBucket,
    #[error("bucket le=\"{le}\" holds {value}, which is not a count")]
    BadCount { le: String, value: f64 },
    #[error("bucket bound le=\"{0}\" is not a number")]
    BadBound(String),
    #[error(
        "cannot place buckets on a log scale: bound {0} is not above 0 (latency histograms start above 0)"
    )]
    NonPositiveBound(f64),
    #[error("cannot place buckets on a log scale: the histogram has no finite bound")]
    NoFiniteBound,
    #[error(
        "buckets ending at le={lo} and le={hi} fall in one log bucket; the rank test would merge them"
    )]
    Merged { lo: f64, hi: f64 },
}

impl Buckets {
    /// Builds from `(le, cumulative count)` pairs as Prometheus returns them for
    /// `sum by (le) (increase(x_bucket[w]))`, in any order, `le` as text.
    ///
    /// `increase()` extrapolates to the window's edges, so cumulative counts arrive as
    /// floats and, summed over series that started at different times, may even dip from
    /// one bucket to the next. Each cumulative count is rounded to the nearest integer and
    /// made non-decreasing (a dip counts as an empty bucket), then differenced.
    /// Duplicate bounds (`"1"` and `"1.0"` from two targets) are added together.
    pub fn from_cumulative<'a>(
        pairs: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<Buckets, BucketError> {
        let mut parsed: Vec<(f64, f64)> = Vec::new();
        for (le, value) in pairs {
            let bound = parse_le(le)?;
            if !(value.is_finite() && value >= 0.0) {
                return Err(BucketError::BadCount {
                    le: le.into(),
                    value,
                });
            }
            parsed.push((bound, value));
        }
        parsed.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::with_capacity(parsed.len());
        for (bound, value) in parsed {
            match merged.last_mut() {
                Some(last) if last.0 == bound => last.1 += value,
                _ => merged.push((bound, value)),
            }
        }
        if merged.last().is_none_or(|(b, _)| *b != f64::INFINITY) {
            return Err(BucketError::NoInfBucket);
        }
        let mut bounds = Vec::with_capacity(merged.len() - 1);
        let mut counts = Vec::with_capacity(merged.len());
        let mut previous = 0u64;
        for (bound, value) in merged {
            // Counts past 2^53 are not exact in f64 anyway; saturate rather than wrap.
            let cumulative = (value.round() as u64).max(previous);
            counts.push(cumulative - previous);
            previous = cumulative;
            if bound.is_finite() {
                bounds.push(bound);
            }
        }
        Ok(Buckets { bounds, counts })
    }

    /// Builds from per-bucket counts; `counts.len()` must be `bounds.len() + 1`.
    pub fn new(bounds: Vec<f64>, counts: Vec<u64>) -> Result<Buckets, StatsError> {
        if counts.len() != bounds.len() + 1 {
            return Err(StatsError::Invalid(format!(
                "{} bounds need {} counts (one for +Inf), got {}",
                bounds.len(),
                bounds.len() + 1,
                counts.len()
            )));
        }
        if bounds.iter().any(|b| !b.is_finite()) || bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(StatsError::Invalid(
                "bucket bounds must be finite and strictly ascending".into(),
            ));
        }
        Ok(Buckets { bounds, counts })
    }

    /// Finite upper bounds, ascending.
    pub fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// Per-bucket counts; one more than `bounds`, the last is the `+Inf` bucket.
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Merges buckets so that only the finite bounds in `keep` remain. Every bound in
    /// `keep` must be one of ours (see [`align`]).
    fn coarsen(&self, keep: &[f64]) -> Buckets {
        let mut counts = vec![0u64; keep.len() + 1];
        let mut target = 0;
        for (k, &count) in self.counts.iter().enumerate() {
            counts[target] += count;
            if k < self.bounds.len() && target < keep.len() && self.bounds[k] == keep[target] {
                target += 1;
            }
        }
        Buckets {
            bounds: keep.to_vec(),
            counts,
        }
    }

    /// The value every observation of bucket `k` is taken to be on a log scale:
    /// the geometric middle of `(lo, hi]`; half the first bound for the first bucket
    /// (`(0, b0]`); the largest finite bound for the `+Inf` bucket, as
    /// `histogram_quantile` does. The relative error of a value in `(lo, hi]` is at most
    /// `sqrt(hi/lo) - 1` (41% for a doubling, 58% for a 2.5x step); in the first and the
    /// `+Inf` bucket it is unbounded.
    pub fn representative(&self, k: usize) -> Result<f64, BucketError> {
        let first = *self.bounds.first().ok_or(BucketError::NoFiniteBound)?;
        if first <= 0.0 {
            return Err(BucketError::NonPositiveBound(first));
        }
        Ok(match k {
            0 => first / 2.0,
            k if k < self.bounds.len() => (self.bounds[k - 1] * self.bounds[k]).sqrt(),
            _ => self.bounds[self.bounds.len() - 1],
        })
    }

    /// The buckets as a `LogHistogram`, each count placed at [`Self::representative`].
    pub fn to_log_histogram(&self) -> Result<LogHistogram, BucketError> {
        let mut filled: Vec<(usize, f64)> = Vec::new();
        for (k, &count) in self.counts.iter().enumerate() {
            if count > 0 {
                filled.push((k, self.representative(k)?));
            }
        }
        // Two le-buckets in one log bucket would become one tie group: a different test.
        // Representatives ascend, so only neighbours can collide.
        for pair in filled.windows(2) {
            if LogHistogram::bucket_index(pair[0].1) == LogHistogram::bucket_index(pair[1].1) {
                return Err(BucketError::Merged {
                    lo: self.upper(pair[0].0),
                    hi: self.upper(pair[1].0),
                });
            }
        }
        let mut histogram = LogHistogram::new();
        for (k, value) in filled {
            histogram.record_n(value, self.counts[k]);
        }
        Ok(histogram)
    }

    fn upper(&self, k: usize) -> f64 {
        self.bounds.get(k).copied().unwrap_or(f64::INFINITY)
    }
}

/// Puts two scopes' buckets on common bounds: the finite bounds both have. Versions
/// usually share a bucket layout and nothing changes; when a release changed it, both
/// sides are coarsened to what they share, which keeps the rank test exact.
pub fn align(canary: &Buckets, baseline: &Buckets) -> (Buckets, Buckets) {
    if canary.bounds == baseline.bounds {
        return (canary.clone(), baseline.clone());
    }
    let common: Vec<f64> = canary
        .bounds
        .iter()
        .copied()
        .filter(|b| baseline.bounds.contains(b))
        .collect();
    (canary.coarsen(&common), baseline.coarsen(&common))
}

/// Mann-Whitney U of canary against baseline on bucketed data, exact for what the
/// buckets say: aligned first, then each bucket is one tie group.
pub fn mann_whitney(
    canary: &Buckets,
    baseline: &Buckets,
    alternative: Alternative,
    method: Method,
) -> Result<MannWhitney, StatsError> {
    let (c, b) = align(canary, baseline);
    mann_whitney_buckets(&c.counts, &b.counts, alternative, method)
}

fn parse_le(le: &str) -> Result<f64, BucketError> {
    match le.trim() {
        "+Inf" | "Inf" | "inf" | "+inf" => Ok(f64::INFINITY),
        text => text
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| BucketError::BadBound(le.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cumulative_counts_become_per_bucket_counts() {
        let b =
            Buckets::from_cumulative([("+Inf", 100.2), ("10", 60.4), ("5", 10.0), ("2.5", 0.0)])
                .unwrap();
        assert_eq!(b.bounds(), &[2.5, 5.0, 10.0]);
        assert_eq!(b.counts(), &[0, 10, 50, 40]);
        assert_eq!(b.total(), 100);
    }

    #[test]
    fn dips_duplicates_and_missing_inf_are_handled() {
        // A dip (extrapolation noise) counts as an empty bucket; totals stay right.
        let b = Buckets::from_cumulative([("1", 5.0), ("2", 4.6), ("+Inf", 9.0)]).unwrap();
        assert_eq!(b.counts(), &[5, 0, 4]);
        // "1" and "1.0" are one bound.
        let b = Buckets::from_cumulative([("1", 2.0), ("1.0", 3.0), ("+Inf", 5.0), ("+Inf", 6.0)])
            .unwrap();
        assert_eq!((b.bounds(), b.counts()), (&[1.0][..], &[5u64, 6][..]));
        assert_eq!(
            Buckets::from_cumulative([("1", 2.0)]).unwrap_err(),
            BucketError::NoInfBucket
        );
        assert!(matches!(
            Buckets::from_cumulative([("x", 2.0), ("+Inf", 2.0)]),
            Err(BucketError::BadBound(_))
        ));
        assert!(matches!(
            Buckets::from_cumulative([("1", f64::NAN), ("+Inf", 2.0)]),
            Err(BucketError::BadCount { .. })
        ));
    }

    #[test]
    fn alignment_keeps_shared_bounds_only() {
        let c = Buckets::new(vec![1.0, 2.0, 5.0], vec![1, 2, 3, 4]).unwrap();
        let b = Buckets::new(vec![2.0, 4.0, 5.0], vec![10, 20, 30, 40]).unwrap();
        let (c2, b2) = align(&c, &b);
        assert_eq!(c2.bounds(), &[2.0, 5.0]);
        assert_eq!(c2.counts(), &[3, 3, 4]);
        assert_eq!(b2.counts(), &[10, 50, 40]);
        assert_eq!(c2.total(), c.total());
        assert_eq!(b2.total(), b.total());
    }

    #[test]
    fn conversion_keeps_every_bucket_distinct_and_in_place() {
        let b = Buckets::new(
            vec![1.0, 5.0, 10.0, 25.0, 50.0, 100.0],
            vec![3, 10, 0, 40, 25, 8, 2],
        )
        .unwrap();
        let h = b.to_log_histogram().unwrap();
        assert_eq!(h.count(), b.total());
        let counts: Vec<u64> = h.buckets().map(|(_, c)| c).collect();
        assert_eq!(counts, vec![3, 10, 40, 25, 8, 2]);
        // The median request (the 44th of 88) is in (10, 25]; so is the histogram's.
        let median = h.quantile(0.5).unwrap();
        assert!(median > 10.0 && median <= 25.0, "{median}");
        // Bounds 0.1% apart would put two buckets in one log bucket: refused.
        let tight = Buckets::new(vec![1.0, 1.001], vec![1, 1, 1]).unwrap();
        assert_eq!(
            tight.to_log_histogram().unwrap_err(),
            BucketError::Merged {
                lo: 1.001,
                hi: f64::INFINITY
            }
        );
    }

    #[test]
    fn exact_bucket_test_equals_the_sample_test_on_tied_values() {
        use crate::stats::{Sorted, mannwhitney::mann_whitney as mw_samples};
        let c = Buckets::new(vec![1.0, 5.0, 10.0, 25.0], vec![2, 4, 9, 12, 3]).unwrap();
        let b = Buckets::new(vec![1.0, 5.0, 10.0, 25.0], vec![5, 11, 8, 6, 0]).unwrap();
        // Every observation of a bucket at one value: the same ranks and ties.
        let expand = |x: &Buckets| -> Vec<f64> {
            x.counts()
                .iter()
                .enumerate()
                .flat_map(|(k, &n)| std::iter::repeat_n(x.representative(k).unwrap(), n as usize))
                .collect()
        };
        let (cs, bs) = Sorted::pair(expand(&c), expand(&b)).unwrap();
        for alternative in [
            Alternative::TwoSided,
            Alternative::Greater,
            Alternative::Less,
        ] {
            let exact = mann_whitney(&c, &b, alternative, Method::Auto).unwrap();
            let samples = mw_samples(&cs, &bs, alternative, Method::Auto).unwrap();
            assert_eq!(exact.u, samples.u);
            assert!(
                (exact.p_value - samples.p_value).abs() < 1e-12,
                "{exact:?} {samples:?}"
            );
        }
        // Different layouts are compared on the bounds both have.
        let coarse = Buckets::new(vec![5.0, 25.0], vec![16, 14, 0]).unwrap();
        let aligned = mann_whitney(&c, &coarse, Alternative::Greater, Method::Auto).unwrap();
        let direct = mann_whitney_buckets(
            &[6, 21, 3],
            &[16, 14, 0],
            Alternative::Greater,
            Method::Auto,
        )
        .unwrap();
        assert_eq!(aligned, direct);
    }

    #[test]
    fn representatives_lie_inside_their_buckets() {
        let b = Buckets::new(vec![1.0, 4.0, 16.0], vec![1, 1, 1, 1]).unwrap();
        let r: Vec<f64> = (0..4).map(|k| b.representative(k).unwrap()).collect();
        assert_eq!(r, vec![0.5, 2.0, 8.0, 16.0]);
        let z = Buckets::new(vec![0.0, 1.0], vec![1, 1, 1]).unwrap();
        assert_eq!(z.representative(1), Err(BucketError::NonPositiveBound(0.0)));
    }
}
