//! `LogHistogram`: latency in bounded memory, about 1% relative error, exactly mergeable.
//!
//! Bucket boundaries are global constants, so any two histograms line up bucket for
//! bucket, which is what exact merging and the O(buckets) rank test need.
//!
//! # Buckets
//! With `a = RELATIVE_ACCURACY = 0.01` and `gamma = (1 + a) / (1 - a)`, bucket `i` holds
//! the values in `(gamma^(i-1), gamma^i]` and stands for `2 gamma^i / (gamma + 1)`, which
//! is within `a` of every value in the bucket (relative). Indices run from [`MIN_INDEX`]
//! to [`MAX_INDEX`], covering about 9.8e-10 to 1.0e15 — nanoseconds to days whether the
//! caller records seconds, milliseconds or nanoseconds.
//! - Values at or below [`zero_threshold`] (including 0) go to the zero bucket
//!   ([`ZERO_INDEX`], representative 0): at that scale a latency is zero for any purpose.
//! - Values above the top bucket are clamped into it ([`MAX_INDEX`]); their quantiles lose
//!   the 1% guarantee, but `max` and `sum` still see the true value.
//!
//! The boundaries come from a table built at compile time by repeated IEEE multiplication
//! and division from `gamma^0 = 1`, not from a platform's `ln`/`exp`: every build on every
//! machine draws the same boundaries, so histograms from different replicas merge exactly.
//! `ln` only guesses the index; one comparison against the table settles it.
//!
//! # Invariants
//! - `count == zero + sum(counts)` (both saturate at `u64::MAX`, far past any real traffic).
//! - `min`/`max` are the exact extreme values recorded (`+inf`/`-inf` while empty).
//! - `counts[j]` is bucket `offset + j`; memory is bounded by the value range recorded
//!   (at most [`MAX_INDEX`] - [`MIN_INDEX`] + 1 slots, about 22 KB), never by traffic.
//! - `sum` is an `f64` sum: merging in another order may change its last bits. Equality
//!   (`==`) therefore compares buckets, count, min and max, and not `sum`.

use serde::{Deserialize, Serialize};

use super::{
    Alternative, Method, StatsError,
    mannwhitney::{MannWhitney, mann_whitney_buckets},
};

/// The largest relative distance between a recorded value and its bucket's representative.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Ratio of a bucket's upper bound to its lower bound.
pub const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
/// Lowest ordinary bucket: `(9.83e-10, 1.0026e-9]`.
pub const MIN_INDEX: i32 = -1036;
/// Highest bucket: `(9.83e14, 1.0024e15]`, plus every larger value (clamped).
pub const MAX_INDEX: i32 = 1727;
/// Index that [`LogHistogram::buckets`] gives the zero bucket; it sorts below every other.
pub const ZERO_INDEX: i32 = MIN_INDEX - 1;

/// `UPPER[j]` is the upper bound of bucket `ZERO_INDEX + j`; `UPPER[0]` is the zero threshold.
const TABLE_LEN: usize = (MAX_INDEX - ZERO_INDEX + 1) as usize;
const ONE_POS: usize = (-ZERO_INDEX) as usize;
static UPPER: [f64; TABLE_LEN] = build_upper();
const INV_LN_GAMMA: f64 = 49.998_333_288_886_78; // 1 / ln(GAMMA), only to guess an index

const fn build_upper() -> [f64; TABLE_LEN] {
    let mut table = [0.0; TABLE_LEN];
    table[ONE_POS] = 1.0;
    let mut j = ONE_POS + 1;
    while j < TABLE_LEN {
        table[j] = table[j - 1] * GAMMA;
        j += 1;
    }
    let mut j = ONE_POS;
    while j > 0 {
        table[j - 1] = table[j] / GAMMA;
        j -= 1;
    }
    table
}

#[inline(always)]
fn upper(index: i32) -> f64 {
    UPPER[(index - ZERO_INDEX) as usize]
}

/// Values at or below this (about 9.83e-10) are recorded in the zero bucket.
pub fn zero_threshold() -> f64 {
    UPPER[0]
}

/// Finite and non-negative (NaN fails every comparison, so it is refused too).
#[inline(always)]
fn recordable(value: f64) -> bool {
    (0.0..=f64::MAX).contains(&value)
}

/// Index of a value already known to be finite and above the zero threshold.
#[inline(always)]
fn ordinary_index(value: f64) -> i32 {
    // `as` saturates, and the clamp keeps the table lookups in range for any input.
    let guess = ((value.ln() * INV_LN_GAMMA).ceil() as i32).clamp(MIN_INDEX, MAX_INDEX);
    // `ln` is within a few ulps, the table within ~1e-13 of exact: the guess is off by at
    // most one bucket, and only next to a boundary.
    if value > upper(guess) && guess < MAX_INDEX {
        guess + 1
    } else if value <= upper(guess - 1) && guess > MIN_INDEX {
        guess - 1
    } else {
        guess
    }
}

/// Log-bucketed histogram of non-negative values.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "HistogramRepr", into = "HistogramRepr")]
pub struct LogHistogram {
    offset: i32,
    counts: Vec<u64>,
    zero: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Default for LogHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for LogHistogram {
    /// Same observations, bucket for bucket, with the same count, min and max. `sum` is
    /// left out: it is an `f64` whose last bits depend on the order of additions.
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count
            && self.zero == other.zero
            && self.min == other.min
            && self.max == other.max
            && self.buckets().eq(other.buckets())
    }
}

impl LogHistogram {
    pub fn new() -> Self {
        LogHistogram {
            offset: 0,
            counts: Vec::new(),
            zero: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Records one value. Values `try_record` refuses (NaN, negative, infinite) are dropped
    /// without a trace: use `try_record` where bad input must be reported.
    #[inline]
    pub fn record(&mut self, value: f64) {
        self.record_n(value, 1);
    }

    /// Records `n` observations of `value` (nothing when `n == 0`); drops what `record` drops.
    #[inline]
    pub fn record_n(&mut self, value: f64, n: u64) {
        // -0.0 passes and becomes +0.0, so `min` never shows a signed zero.
        if !recordable(value) || n == 0 {
            return;
        }
        let value = value + 0.0;
        self.count = self.count.saturating_add(n);
        self.sum += value * n as f64;
        if value < self.min {
            self.min = value;
        }
        if value > self.max {
            self.max = value;
        }
        if value <= UPPER[0] {
            self.zero = self.zero.saturating_add(n);
            return;
        }
        let index = ordinary_index(value);
        // Negative differences wrap to huge positions and take the slow path.
        let pos = index.wrapping_sub(self.offset) as u32 as usize;
        if let Some(slot) = self.counts.get_mut(pos) {
            *slot = slot.saturating_add(n);
        } else {
            self.cover(index, index);
            let slot = &mut self.counts[(index - self.offset) as usize];
            *slot = slot.saturating_add(n);
        }
    }

    /// Records one value, refusing NaN, negative and infinite values.
    pub fn try_record(&mut self, value: f64) -> Result<(), StatsError> {
        self.try_record_n(value, 1)
    }

    /// Records `n` observations of `value`, refusing NaN, negative and infinite values.
    pub fn try_record_n(&mut self, value: f64, n: u64) -> Result<(), StatsError> {
        if !recordable(value) {
            return Err(StatsError::Invalid(format!(
                "histogram value {value} is not a finite non-negative number"
            )));
        }
        self.record_n(value, n);
        Ok(())
    }

    /// Grows `counts` so that buckets `lo..=hi` have a slot.
    fn cover(&mut self, lo: i32, hi: i32) {
        if self.counts.is_empty() {
            self.offset = lo;
            self.counts = vec![0; (hi - lo + 1) as usize];
            return;
        }
        let end = self.offset + self.counts.len() as i32 - 1;
        if hi > end {
            self.counts.resize((hi - self.offset + 1) as usize, 0);
        }
        if lo < self.offset {
            let extra = (self.offset - lo) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, extra));
            self.offset = lo;
        }
    }

    /// Adds every observation of `other`. Exact: merging the histograms of two samples
    /// gives the histogram of their concatenation (up to the last bits of `sum`).
    pub fn merge(&mut self, other: &LogHistogram) {
        if other.count == 0 {
            return;
        }
        if !other.counts.is_empty() {
            let other_end = other.offset + other.counts.len() as i32 - 1;
            self.cover(other.offset, other_end);
            let start = (other.offset - self.offset) as usize;
            for (mine, theirs) in self.counts[start..].iter_mut().zip(&other.counts) {
                *mine = mine.saturating_add(*theirs);
            }
        }
        self.zero = self.zero.saturating_add(other.zero);
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Sum of the recorded values (their true values, not bucket representatives).
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Smallest value recorded, exactly.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// Largest value recorded, exactly.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// Observations in the zero bucket (values at or below [`zero_threshold`]).
    pub fn zero_count(&self) -> u64 {
        self.zero
    }

    /// The `q`-quantile by rank: the representative of the bucket holding the k-th
    /// smallest observation, `k = max(1, ceil(q * count))`, pulled into `[min, max]`.
    /// Within [`RELATIVE_ACCURACY`] of that observation (relative) unless it lies in the
    /// zero bucket or beyond the top bucket. The first and last observations are known
    /// exactly: `k = 1` gives `min`, `k = count` gives `max`.
    /// `None` when empty or when `q` is not in `[0, 1]`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        // The extreme order statistics are known exactly.
        if rank == self.count {
            return Some(self.max);
        }
        if rank == 1 {
            return Some(self.min);
        }
        let mut seen = 0u64;
        for (index, count) in self.buckets() {
            seen = seen.saturating_add(count);
            if seen >= rank {
                return Some(Self::bucket_value(index).clamp(self.min, self.max));
            }
        }
        // Only reachable when saturated counts no longer add up; the top is the honest answer.
        Some(self.max)
    }

    /// Non-empty buckets in ascending value order: (bucket index, count). The zero bucket,
    /// when it holds anything, comes first as [`ZERO_INDEX`].
    pub fn buckets(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        let zero = (self.zero > 0).then_some((ZERO_INDEX, self.zero));
        let offset = self.offset;
        zero.into_iter().chain(
            self.counts
                .iter()
                .enumerate()
                .filter(|(_, c)| **c > 0)
                .map(move |(j, c)| (offset + j as i32, *c)),
        )
    }

    /// The value every observation in bucket `index` is taken to be: 0 for the zero
    /// bucket, else `2 lo hi / (lo + hi)`, equally far (relatively) from both bounds.
    /// Indices outside `ZERO_INDEX..=MAX_INDEX` are clamped into it.
    pub fn bucket_value(index: i32) -> f64 {
        let index = index.clamp(ZERO_INDEX, MAX_INDEX);
        if index == ZERO_INDEX {
            return 0.0;
        }
        let (lo, hi) = (upper(index - 1), upper(index));
        2.0 * lo * hi / (lo + hi)
    }

    /// Bounds of bucket `index`: it holds the values in `(lo, hi]` (the zero bucket holds
    /// `[0, hi]`; the top bucket also holds the clamped values above `hi`).
    /// Indices outside `ZERO_INDEX..=MAX_INDEX` are clamped into it.
    pub fn bucket_bounds(index: i32) -> (f64, f64) {
        let index = index.clamp(ZERO_INDEX, MAX_INDEX);
        if index == ZERO_INDEX {
            return (0.0, UPPER[0]);
        }
        (upper(index - 1), upper(index))
    }

    /// The bucket a value goes to; `None` for NaN, negative and infinite values.
    pub fn bucket_index(value: f64) -> Option<i32> {
        if !recordable(value) {
            None
        } else if value <= UPPER[0] {
            Some(ZERO_INDEX)
        } else {
            Some(ordinary_index(value))
        }
    }
}

/// Persisted form: only the non-empty span of buckets, `count` implied by the buckets,
/// `min`/`max` null when empty. Deserializing checks every invariant of the type.
#[derive(Serialize, Deserialize)]
struct HistogramRepr {
    offset: i32,
    counts: Vec<u64>,
    zero: u64,
    #[serde(with = "crate::stats::nonfinite")]
    sum: f64,
    #[serde(default, with = "crate::stats::nonfinite::option")]
    min: Option<f64>,
    #[serde(default, with = "crate::stats::nonfinite::option")]
    max: Option<f64>,
}

impl From<LogHistogram> for HistogramRepr {
    fn from(h: LogHistogram) -> Self {
        let first = h.counts.iter().position(|&c| c > 0);
        let (offset, counts) = match first {
            None => (0, Vec::new()),
            Some(first) => {
                let last = h.counts.iter().rposition(|&c| c > 0).unwrap_or(first);
                (h.offset + first as i32, h.counts[first..=last].to_vec())
            }
        };
        HistogramRepr {
            offset,
            counts,
            zero: h.zero,
            sum: h.sum,
            min: h.min(),
            max: h.max(),
        }
    }
}

impl TryFrom<HistogramRepr> for LogHistogram {
    type Error = StatsError;

    fn try_from(r: HistogramRepr) -> Result<Self, StatsError> {
        let bad = |what: String| Err(StatsError::Invalid(format!("histogram: {what}")));
        if !r.counts.is_empty() {
            let end = r.offset as i64 + r.counts.len() as i64 - 1;
            if (r.offset as i64) < MIN_INDEX as i64 || end > MAX_INDEX as i64 {
                return bad(format!(
                    "buckets {}..={end} fall outside {MIN_INDEX}..={MAX_INDEX}",
                    r.offset
                ));
            }
        }
        let mut count = r.zero;
        for &c in &r.counts {
            count = match count.checked_add(c) {
                Some(total) => total,
                None => return bad("total count overflows u64".into()),
            };
        }
        if !(r.sum.is_finite() && r.sum >= 0.0) {
            return bad(format!("sum {} is not a finite non-negative number", r.sum));
        }
        let mut h = LogHistogram {
            offset: r.offset,
            counts: r.counts,
            zero: r.zero,
            count,
            sum: r.sum,
            ..LogHistogram::new()
        };
        match (count, r.min, r.max) {
            (0, None, None) => {
                if h.sum != 0.0 {
                    return bad(format!("empty histogram has sum {}", h.sum));
                }
                h.counts.clear();
                h.offset = 0;
                Ok(h)
            }
            (0, _, _) => bad("empty histogram has a min or max".into()),
            (_, Some(min), Some(max)) => {
                let (lowest, highest) = match (h.buckets().next(), h.buckets().last()) {
                    (Some((lo, _)), Some((hi, _))) => (lo, hi),
                    _ => return bad("non-empty histogram without buckets".into()),
                };
                if LogHistogram::bucket_index(min) != Some(lowest)
                    || LogHistogram::bucket_index(max) != Some(highest)
                    || min > max
                {
                    return bad(format!(
                        "min {min} / max {max} do not lie in the lowest / highest buckets \
                         ({lowest}, {highest})"
                    ));
                }
                h.min = min;
                h.max = max;
                Ok(h)
            }
            _ => bad(format!("{count} observations but min or max missing")),
        }
    }
}

/// The counts of two histograms over the union of their non-empty buckets, in ascending
/// value order: element k of both vectors is the same bucket.
pub fn aligned_counts(a: &LogHistogram, b: &LogHistogram) -> (Vec<u64>, Vec<u64>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let (mut ia, mut ib) = (a.buckets().peekable(), b.buckets().peekable());
    // A side that has run out sorts after every bucket of the other.
    let key = |next: Option<&(i32, u64)>| next.map_or(i64::MAX, |&(i, _)| i as i64);
    loop {
        let (ka, kb) = (key(ia.peek()), key(ib.peek()));
        if ka == i64::MAX && kb == i64::MAX {
            break;
        }
        let x = if ka <= kb {
            ia.next().map_or(0, |(_, c)| c)
        } else {
            0
        };
        let y = if kb <= ka {
            ib.next().map_or(0, |(_, c)| c)
        } else {
            0
        };
        xs.push(x);
        ys.push(y);
    }
    (xs, ys)
}

/// Mann-Whitney on two log histograms (aligns them and calls `mann_whitney_buckets`).
/// Exact for the bucketed data: every bucket is one tie group.
pub fn mann_whitney_histograms(
    canary: &LogHistogram,
    baseline: &LogHistogram,
    alternative: Alternative,
    method: Method,
) -> Result<MannWhitney, StatsError> {
    if canary.is_empty() {
        return Err(StatsError::Empty { which: "canary" });
    }
    if baseline.is_empty() {
        return Err(StatsError::Empty { which: "baseline" });
    }
    let (c, b) = aligned_counts(canary, baseline);
    mann_whitney_buckets(&c, &b, alternative, method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_matches_powers_of_gamma() {
        for i in [MIN_INDEX - 1, -500, -1, 0, 1, 500, MAX_INDEX] {
            let exact = GAMMA.powi(i);
            assert!((upper(i) / exact - 1.0).abs() < 1e-12, "index {i}");
        }
        assert!((INV_LN_GAMMA * GAMMA.ln() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn index_guess_is_settled_at_boundaries() {
        for i in [MIN_INDEX, -700, -3, 0, 1, 2, 900, MAX_INDEX] {
            let hi = upper(i);
            assert_eq!(ordinary_index(hi), i, "upper bound of {i}");
            if i < MAX_INDEX {
                assert_eq!(ordinary_index(hi.next_up()), i + 1, "just above {i}");
            }
        }
    }

    #[test]
    fn growth_keeps_slots_aligned() {
        let mut h = LogHistogram::new();
        h.record(1.0);
        h.record(1e-6);
        h.record(1e6);
        let idx: Vec<i32> = h.buckets().map(|(i, _)| i).collect();
        assert_eq!(
            idx,
            vec![
                ordinary_index(1e-6),
                ordinary_index(1.0),
                ordinary_index(1e6)
            ]
        );
    }
}
