//! Hodges-Lehmann shift estimate (canary - baseline) with its confidence interval,
//! matching R's `wilcox.test(x = canary, y = baseline, conf.int = TRUE, correct = TRUE)`.
//!
//! Owns: the two-sided interval and estimate, the selection of the k-th smallest pairwise
//! difference, and the exact null quantile of U the exact interval is built on.
//!
//! Invariant: the `n * m` pairwise differences `canary_i - baseline_j` are never
//! materialised. Every bound is one of those differences and the estimate is one of them
//! or the mean of two, found by counting differences below a threshold with a two-pointer
//! pass over the sorted samples: O(n + m) time per pass, a dozen or so passes per interval
//! on real data, and bounded extra memory (each of the three searches, estimate and
//! bounds, narrows its bracket to at most 8192 candidates, and one last pass lists them
//! all). Passes over large samples run on two threads, each walking two pieces of the
//! rows side by side; what a pass finds (a count, a minimum, a maximum) does not depend
//! on how the rows were cut. Only the exact branch allocates in proportion to the
//! samples (the null distribution of U, about `n * m / 2` values), and `Auto` chooses it
//! only below 50 x 50.
//!
//! How R is matched:
//! - Exact branch (R: both samples under 50 and no ties; here also whenever
//!   [`Method::Exact`] is asked for): with `qu = qwilcox(alpha/2, n, m)`, raised to 1
//!   when it is 0, the interval is the `qu`-th and `(n*m - qu + 1)`-th smallest
//!   differences and the estimate their median. These are R's numbers to rounding. When
//!   that interval covers less than asked (R's "conf.level not achievable"), the reported
//!   `conf_level` is R's achieved one, `1 - 2 * pwilcox(qu - 1)`.
//! - Asymptotic branch: R root-finds, over the shift `d`, the continuity-corrected
//!   statistic `(U(d) - nm/2 - sign/2) / sigma(d)` against `qnorm(1 - alpha/2)` and
//!   `qnorm(alpha/2)`, with `uniroot(tol = 1e-4)`. `U(d)` only jumps at pairwise
//!   differences, and between jumps the tie correction of `sigma(d)` is that of the two
//!   samples alone, so the statistic is a step function whose crossing is a pairwise
//!   difference of known rank. We compute that rank and select that difference: the
//!   point R's root finder converges to, which R itself only returns within `tol.root`
//!   (absolute, 1e-4) of. The estimate solves the same equation at 0 without correction;
//!   its root is the median of the differences (with an even count, R's statistic is 0 on
//!   the whole gap between the two middle differences and R returns some point of it; we
//!   return the midpoint, which is also R's exact-branch estimate).
//!
//! Where we differ from R on purpose:
//! - Both samples constant (every difference equal) on the asymptotic branch: R stops
//!   with an error (its statistic has zero variance at the only difference); we return
//!   that difference as the estimate and both bounds.
//! - [`Method::Exact`] with ties: R 4.2 falls back to the normal approximation (newer R
//!   conditions the exact distribution on the ties); we keep the order statistics at the
//!   untied `qwilcox` ranks, a closed interval that covers at least as often.
//! - R compares `canary_i - d` with `baseline_j`; we compare `canary_i - baseline_j` with
//!   `d`. The two roundings differ only when the values' spacing nears `tol.root`.

use serde::{Deserialize, Serialize};

use super::{Method, MethodUsed, Sorted, StatsError, normal};

/// Shift of the canary relative to the baseline, in the samples' unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShiftEstimate {
    #[serde(with = "crate::stats::nonfinite")]
    pub estimate: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub lower: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub upper: f64,
    /// The level the interval has: the one asked for, or (exact branch, small samples)
    /// the lower level R reports when the asked one cannot be reached.
    #[serde(with = "crate::stats::nonfinite")]
    pub conf_level: f64,
    pub method: MethodUsed,
}

/// Below this size for both samples, and without ties, `Auto` is exact (R's rule).
const EXACT_BELOW: usize = 50;

/// Cap on the exact null distribution of U, so a forced `Exact` on huge samples fails
/// fast instead of allocating gigabytes: its size (`n*m/2` f64) and its cost
/// (`min(n, m)` passes over it).
const EXACT_MAX_TERMS: u64 = 16_000_000;
const EXACT_MAX_WORK: u64 = 2_000_000_000;

/// Two-sided interval at `conf_level`. Both samples must be non-empty and finite.
pub fn hodges_lehmann(
    canary: &Sorted,
    baseline: &Sorted,
    conf_level: f64,
    method: Method,
) -> Result<ShiftEstimate, StatsError> {
    let (x, y) = (canary.as_slice(), baseline.as_slice());
    check_sample(x, "canary")?;
    check_sample(y, "baseline")?;
    if !(conf_level > 0.0 && conf_level < 1.0) {
        return Err(StatsError::ConfLevel(conf_level));
    }
    let exact = match method {
        Method::Exact => true,
        Method::Asymptotic => false,
        Method::Auto => x.len() < EXACT_BELOW && y.len() < EXACT_BELOW && !has_ties(x, y),
    };
    let alpha = 1.0 - conf_level;
    let mut diffs = Differences::new(x, y);
    // The difference of the medians is usually close to the median of the differences:
    // a good first threshold. Its search then narrows the bounds' brackets too.
    let (median_rank, between) = diffs.median_rank();
    let median = diffs.narrow(median_rank, Some(x[x.len() / 2] - y[y.len() / 2]));
    let (lower_rank, upper_rank, conf_level, method) = if exact {
        let (lower, upper, level) = exact_ranks(&diffs, alpha, conf_level)?;
        (lower, upper, level, MethodUsed::Exact)
    } else {
        let (lower, upper) = asymptotic_ranks(&diffs, alpha);
        (lower, upper, conf_level, MethodUsed::Asymptotic)
    };
    let lower = diffs.narrow(lower_rank, None);
    let upper = diffs.narrow(upper_rank, None);
    // The three searches end with one listing pass between them.
    let [(a, b), (lower, _), (upper, _)] = diffs.pick([
        (median, median_rank),
        (lower, lower_rank),
        (upper, upper_rank),
    ]);
    let estimate = if between {
        let sum = a + b;
        if sum.is_finite() {
            sum / 2.0
        } else {
            a / 2.0 + b / 2.0
        }
    } else {
        a
    };
    Ok(ShiftEstimate {
        estimate: positive_zero(estimate),
        lower: positive_zero(lower),
        upper: positive_zero(upper),
        conf_level,
        method,
    })
}

/// The `k`-th smallest (1-based, ties counted) of the differences `canary_i - baseline_j`,
/// without forming them.
pub fn kth_difference(canary: &Sorted, baseline: &Sorted, k: u64) -> Result<f64, StatsError> {
    let (x, y) = (canary.as_slice(), baseline.as_slice());
    check_sample(x, "canary")?;
    check_sample(y, "baseline")?;
    let total = pair_count(x, y);
    if k == 0 || k > total {
        return Err(StatsError::Invalid(format!(
            "rank {k} of a pairwise difference is outside 1..={total} \
             ({} canary x {} baseline values)",
            x.len(),
            y.len()
        )));
    }
    Ok(Differences::new(x, y).kth(k, None))
}

/// R's `qwilcox(p, n_canary, n_baseline)` for `p` in (0, 0.5]: the smallest `q` with
/// `P(U <= q) >= p` under the null hypothesis without ties (less R's slack of 10 ulp).
///
/// The Mann-Whitney p-value code keeps its own null distribution; the two could share one.
pub fn exact_u_quantile(p: f64, n_canary: usize, n_baseline: usize) -> Result<u64, StatsError> {
    if !(p > 0.0 && p <= 0.5) {
        return Err(StatsError::Invalid(format!(
            "probability {p} for the lower quantile of U is not in (0, 0.5]"
        )));
    }
    if n_canary == 0 || n_baseline == 0 {
        return Err(StatsError::Invalid(format!(
            "U has no distribution for {n_canary} canary x {n_baseline} baseline values"
        )));
    }
    Ok(NullU::lower_half(n_canary, n_baseline)?.quantile(p))
}

fn check_sample(values: &[f64], which: &'static str) -> Result<(), StatsError> {
    // Sorted, so an infinite value, if any, sits at an end.
    match (values.first(), values.last()) {
        (Some(first), Some(last)) if first.is_finite() && last.is_finite() => Ok(()),
        (Some(_), Some(_)) => Err(StatsError::Invalid(format!(
            "{which} sample holds an infinite value; a shift needs finite values"
        ))),
        _ => Err(StatsError::Empty { which }),
    }
}

fn pair_count(x: &[f64], y: &[f64]) -> u64 {
    x.len() as u64 * y.len() as u64
}

/// Any two equal values in the pooled sample: R's test for falling back to the normal
/// approximation.
fn has_ties(x: &[f64], y: &[f64]) -> bool {
    let within = |s: &[f64]| s.windows(2).any(|w| w[0] == w[1]);
    if within(x) || within(y) {
        return true;
    }
    let (mut i, mut j) = (0, 0);
    while i < x.len() && j < y.len() {
        if x[i] == y[j] {
            return true;
        }
        if x[i] < y[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    false
}

/// Sum of `t^3 - t` over the groups of equal values of one sorted sample.
fn tie_term(s: &[f64]) -> f64 {
    let exact: u128 = s
        .chunk_by(|a, b| a == b)
        .map(|g| {
            let t = g.len() as u128;
            t * t * t - t
        })
        .sum();
    exact as f64
}

/// The ranks of the differences that bound the exact interval, and its level.
fn exact_ranks(
    diffs: &Differences,
    alpha: f64,
    conf_level: f64,
) -> Result<(u64, u64, f64), StatsError> {
    let total = diffs.total;
    let null = NullU::lower_half(diffs.x.len(), diffs.y.len())?;
    // R moves a zero quantile to 1: the interval is then the full range of differences.
    let qu = null.quantile(alpha / 2.0).max(1);
    let achieved = 2.0 * null.cdf(qu - 1);
    let level = if achieved - alpha > alpha / 2.0 {
        1.0 - achieved
    } else {
        conf_level
    };
    Ok((qu, total - qu + 1, level))
}

/// The ranks of the differences that bound the asymptotic interval.
fn asymptotic_ranks(diffs: &Differences, alpha: f64) -> (u64, u64) {
    let (x, y) = (diffs.x, diffs.y);
    let (n, m) = (x.len() as f64, y.len() as f64);
    let pooled = n + m;
    // Away from the jumps no canary value ties a baseline value, so the tie correction
    // is the two samples' own, the same at every point R's root finder lands on.
    let ties = tie_term(x) + tie_term(y);
    let sigma = ((n * m / 12.0) * ((pooled + 1.0) - ties / (pooled * (pooled - 1.0)))).sqrt();
    let total = diffs.total;
    let lower = crossing_rank(total, sigma, normal::isf(alpha / 2.0));
    let upper = crossing_rank(total, sigma, normal::ppf(alpha / 2.0));
    (lower, upper)
}

/// Rank of the pairwise difference where R's continuity-corrected statistic stops
/// exceeding `zq` as the shift grows: just past the `k`-th smallest difference,
/// `total - k` differences exceed the shift and U equals that count. Clamped to
/// `1..=total` as R clamps its root to the range of the differences.
fn crossing_rank(total: u64, sigma: f64, zq: f64) -> u64 {
    let half = total as f64 / 2.0;
    let exceeds = |u: u64| {
        let dz = u as f64 - half;
        let correction = if dz > 0.0 {
            0.5
        } else if dz < 0.0 {
            -0.5
        } else {
            0.0
        };
        (dz - correction) / sigma > zq
    };
    // `exceeds(total - k)` holds for small k and fails from some k on.
    let (mut lo, mut hi) = (1, total);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if exceeds(total - mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

fn positive_zero(v: f64) -> f64 {
    // -0.0 + 0.0 is +0.0: a shift of "minus zero" means nothing to a reader.
    v + 0.0
}

/// How the pairwise differences fall around a threshold `t`.
#[derive(Clone, Copy, Debug)]
struct Split {
    /// Differences `<= t`.
    at_most: u64,
    /// The largest difference `<= t` (-inf when none).
    below: f64,
    /// The smallest difference `> t` (+inf when none).
    above: f64,
}

/// Independent counting walks run side by side in one loop, as the merges of the rank
/// sum do (`rank.rs`): one walk is a chain of dependent loads and compares, several in
/// the same loop overlap in the CPU.
const SPLIT_LANES: usize = 2;

/// From this many values in both samples together, two threads each count half of the
/// rows. Counts are integers and the other results a minimum and a maximum, so the split
/// cannot change a result.
const SPLIT_PARALLEL_MIN_LEN: usize = 1 << 16;

/// One counting pass over the rows `x_i` (all of them, cut into pieces counted side by
/// side and, for large samples, on two threads).
///
/// Rounding is monotone, so the computed `x_i - y_j` still falls as `j` grows and rises
/// as `i` grows: the first `j` with `x_i - y_j <= t` never moves back from one row to
/// the next, and a piece starting at row `i` can find its first `j` by binary search.
fn split_at(x: &[f64], y: &[f64], t: f64) -> Split {
    let threads = if x.len() + y.len() >= SPLIT_PARALLEL_MIN_LEN {
        2
    } else {
        1
    };
    let pieces = threads * SPLIT_LANES;
    let lanes = |first: usize| -> [SplitLane; SPLIT_LANES] {
        std::array::from_fn(|k| {
            let (i0, i1) = (
                (first + k) * x.len() / pieces,
                (first + k + 1) * x.len() / pieces,
            );
            SplitLane::new(&x[i0..i1], y, t)
        })
    };
    if threads == 2 {
        let (low, high) = rayon::join(
            || count_lanes(lanes(0), t),
            || count_lanes(lanes(SPLIT_LANES), t),
        );
        Split {
            at_most: low.at_most + high.at_most,
            below: low.below.max(high.below),
            above: low.above.min(high.above),
        }
    } else {
        count_lanes(lanes(0), t)
    }
}

/// Runs the lanes side by side, one row of each per round, then adds up what they found.
fn count_lanes(mut lanes: [SplitLane; SPLIT_LANES], t: f64) -> Split {
    let rounds = lanes.iter().map(|l| l.x.len()).min().unwrap_or(0);
    for _ in 0..rounds {
        lanes.iter_mut().for_each(|lane| lane.row(t));
    }
    let mut total = Split {
        at_most: 0,
        below: f64::NEG_INFINITY,
        above: f64::INFINITY,
    };
    for mut lane in lanes {
        while lane.i < lane.x.len() {
            lane.row(t);
        }
        total.at_most += lane.at_most;
        total.below = total.below.max(lane.below);
        total.above = total.above.min(lane.above);
    }
    total
}

/// The two-pointer walk over one piece of the rows.
struct SplitLane<'a> {
    x: &'a [f64],
    y: &'a [f64],
    /// Next row, and the first `j` of the last row with `x_i - y_j <= t`.
    i: usize,
    j: usize,
    at_most: u64,
    below: f64,
    above: f64,
}

impl<'a> SplitLane<'a> {
    fn new(x: &'a [f64], y: &'a [f64], t: f64) -> Self {
        let j = x
            .first()
            .map_or(0, |&first| y.partition_point(|&v| first - v > t));
        SplitLane {
            x,
            y,
            i: 0,
            j,
            at_most: 0,
            below: f64::NEG_INFINITY,
            above: f64::INFINITY,
        }
    }

    /// Closes the next row.
    #[inline(always)]
    fn row(&mut self, t: f64) {
        let (y, m) = (self.y, self.y.len());
        let xi = self.x[self.i];
        let j = skip(y, self.j, xi, |d| d > t);
        self.at_most += (m - j) as u64;
        if j < m {
            self.below = self.below.max(xi - y[j]);
        }
        if j > 0 {
            self.above = self.above.min(xi - y[j - 1]);
        }
        self.j = j;
        self.i += 1;
    }
}

/// The first `j >= from` at which `xi - y_j` fails `test`, for a `test` that the
/// differences of a row pass on a prefix (they fall as `j` grows).
///
/// Steps four at a time: within a block the passing differences form a prefix, so
/// counting them (branch-free) lands exactly on the first failing one, where a
/// data-dependent branch per element would mispredict about once a row.
#[inline(always)]
fn skip(y: &[f64], from: usize, xi: f64, test: impl Fn(f64) -> bool) -> usize {
    let mut j = from;
    loop {
        match y.get(j..j + 4) {
            Some(block) => {
                let passed = block.iter().filter(|&&v| test(xi - v)).count();
                j += passed;
                if passed < 4 {
                    return j;
                }
            }
            None => {
                while j < y.len() && test(xi - y[j]) {
                    j += 1;
                }
                return j;
            }
        }
    }
}

/// Lists, for each window `[lo, hi]`, every difference in it (in no particular order):
/// per row, from the first difference `<= hi` (a pointer that only moves forward) on
/// while they are `>= lo`. One pass over the rows serves every window; large
/// samples are listed in two halves of the rows on two threads.
fn collect_windows<const N: usize>(
    x: &[f64],
    y: &[f64],
    windows: [(f64, f64); N],
) -> [Vec<f64>; N] {
    if x.len() + y.len() < SPLIT_PARALLEL_MIN_LEN {
        return collect_rows(x, y, windows);
    }
    let (low, high) = x.split_at(x.len() / 2);
    let (mut lists, upper) = rayon::join(
        || collect_rows(low, y, windows),
        || collect_rows(high, y, windows),
    );
    for (list, mut more) in lists.iter_mut().zip(upper) {
        list.append(&mut more);
    }
    lists
}

/// Lists the rows in two halves walked side by side (independent chains of loads and
/// compares overlap in the CPU, as in [`split_at`]).
fn collect_rows<const N: usize>(x: &[f64], y: &[f64], windows: [(f64, f64); N]) -> [Vec<f64>; N] {
    let (low, high) = x.split_at(x.len() / 2);
    let start = |rows: &[f64]| {
        let x0 = rows.first().copied().unwrap_or(0.0);
        windows.map(|(lo, hi)| Window::new(x0, y, lo, hi))
    };
    let (mut a, mut b) = (start(low), start(high));
    for (&xa, &xb) in low.iter().zip(high) {
        a.iter_mut().for_each(|w| w.row(xa, y));
        b.iter_mut().for_each(|w| w.row(xb, y));
    }
    // `high` holds one row more when `x` has an odd length.
    for &xb in &high[low.len()..] {
        b.iter_mut().for_each(|w| w.row(xb, y));
    }
    let mut lists = a.map(|w| w.list);
    for (list, w) in lists.iter_mut().zip(b) {
        list.extend(w.list);
    }
    lists
}

/// The listing walk of one window: the first `j` of the last row with `x_i - y_j <= hi`,
/// and what lay in the window so far. A window holds few differences, so from there a
/// plain scan finds the row's end of it, usually at once.
struct Window {
    lo: f64,
    hi: f64,
    first: usize,
    list: Vec<f64>,
}

impl Window {
    /// Where the walk would stand at row `x0` had it started at row 0.
    fn new(x0: f64, y: &[f64], lo: f64, hi: f64) -> Self {
        Window {
            lo,
            hi,
            first: y.partition_point(|&v| x0 - v > hi),
            list: Vec::new(),
        }
    }

    #[inline(always)]
    fn row(&mut self, xi: f64, y: &[f64]) {
        let (lo, hi) = (self.lo, self.hi);
        self.first = skip(y, self.first, xi, |d| d > hi);
        let mut j = self.first;
        while j < y.len() && xi - y[j] >= lo {
            self.list.push(xi - y[j]);
            j += 1;
        }
    }
}

/// What is known to hold the `k`-th difference: `lo <= D_(k) <= hi`, both actual
/// differences, with `below_lo` differences `< lo` (fewer than `k`) and `through_hi`
/// differences `<= hi` (at least `k`); `past_hi` is the smallest difference `> hi`
/// (+inf when none), which the pass that found `hi` found too.
#[derive(Clone, Copy, Debug)]
struct Bracket {
    lo: f64,
    below_lo: u64,
    hi: f64,
    through_hi: u64,
    past_hi: f64,
}

impl Bracket {
    fn span(&self) -> u64 {
        self.through_hi - self.below_lo
    }
}

/// Once a bracket holds this few differences, one pass lists them and a selection in
/// memory ends the search (64 KiB per search)...
const LIST_AT_MOST: u64 = 8192;

/// ... or, on large samples, this fraction of `n + m`: listing and selecting that many
/// costs less than a counting pass, and the wider window saves the last pass or two of
/// each search (at 1,000,000 x 1,000,000: 13 passes became 9, for 125,000 differences,
/// 1 MiB, listed per search).
const LIST_PER_VALUE: u64 = 16;

/// Passes remembered for later ranks; far more than a search takes on real data.
const REMEMBERED_PASSES: usize = 128;

/// Order statistics of the differences `x_i - y_j` of two sorted, non-empty, finite
/// samples, found by counting passes. Every pass is remembered, so the interval's bounds,
/// selected after the median, start from the narrow brackets its search proved.
struct Differences<'a> {
    x: &'a [f64],
    y: &'a [f64],
    total: u64,
    /// Brackets this narrow are listed; see [`LIST_AT_MOST`].
    list_at_most: u64,
    seen: Vec<Split>,
}

impl<'a> Differences<'a> {
    fn new(x: &'a [f64], y: &'a [f64]) -> Self {
        Differences {
            x,
            y,
            total: pair_count(x, y),
            list_at_most: LIST_AT_MOST.max((x.len() + y.len()) as u64 / LIST_PER_VALUE),
            seen: Vec::new(),
        }
    }

    fn split(&mut self, t: f64) -> Split {
        let split = split_at(self.x, self.y, t);
        if self.seen.len() < REMEMBERED_PASSES {
            self.seen.push(split);
        }
        split
    }

    /// The narrowest bracket for rank `k` that the extremes and earlier passes prove.
    fn bracket(&self, k: u64) -> Bracket {
        let (x, y) = (self.x, self.y);
        let mut b = Bracket {
            lo: x[0] - y[y.len() - 1],
            below_lo: 0,
            hi: x[x.len() - 1] - y[0],
            through_hi: self.total,
            past_hi: f64::INFINITY,
        };
        for s in &self.seen {
            if s.at_most >= k {
                if s.below < b.hi {
                    b.hi = s.below;
                    b.through_hi = s.at_most;
                    b.past_hi = s.above;
                }
            } else if s.above > b.lo {
                b.lo = s.above;
                b.below_lo = s.at_most;
            }
        }
        b
    }

    /// The `k`-th smallest difference, `1 <= k <= total`; `guess`, when inside the
    /// bracket, is the first threshold tried.
    ///
    /// Each pass at a threshold in `[lo, hi)` moves one end of the bracket to the nearest
    /// difference on its side, so every pass drops at least one candidate and the search
    /// ends exactly on a difference, with no float tolerance. The search does not aim at
    /// `k` itself but at a count a little inside the far end's side, so that both ends
    /// close in and the last candidates (a few thousand, or one in 16 of `n + m` on
    /// large samples) are listed and picked in one pass. Thresholds come from the secant
    /// through the two passes nearest the aim, else from interpolating the counts
    /// between the bracket's ends (regula falsi with the Illinois fix for a stuck end: a
    /// few passes on real data); two passes in a row that fail to
    /// halve the bracket's count are followed by a bisection, which bounds the worst
    /// case (ties, values spanning many binades) by the bits of a float.
    fn kth(&mut self, k: u64, guess: Option<f64>) -> f64 {
        let b = self.narrow(k, guess);
        self.pick([(b, k)])[0].0
    }

    /// Narrows the bracket of rank `k` until it holds few enough differences to list
    /// (or only copies of one value); see [`Differences::kth`].
    fn narrow(&mut self, k: u64, guess: Option<f64>) -> Bracket {
        let mut b = self.bracket(k);
        let mut guess = guess.or_else(|| self.secant_guess(k as f64 - 0.5));
        let near = self.list_at_most / 2;
        // Which end moved last and how many passes in a row it did.
        let mut run = (false, 0i32);
        let mut poor_passes = 0;
        while b.lo < b.hi {
            let span = b.span();
            if span <= self.list_at_most {
                return b;
            }
            // Aim into whichever side is still far, a quarter window from `k`.
            let target = if k - b.below_lo > near {
                (k - near / 2) as f64 - 0.5
            } else {
                (k + near / 2) as f64 - 0.5
            };
            // Illinois: while one end keeps moving, the other end's count is pulled
            // halfway to the target per extra pass, so the next threshold lands past it.
            let pull = |count: u64, stuck: bool| {
                let halvings = if stuck { (run.1 - 1).max(0) } else { 0 };
                target + (count as f64 - target) * 0.5f64.powi(halvings)
            };
            let weight_lo = pull(b.below_lo, run.0);
            let weight_hi = pull(b.through_hi, !run.0);
            let t = match guess.take().filter(|&g| g >= b.lo && g < b.hi) {
                Some(g) => g,
                None if poor_passes >= 2 => {
                    poor_passes = 0;
                    bisect(b.lo, b.hi)
                }
                // The secant through the two passes nearest the target: near the end
                // of a search both are close by and the counts nearly linear between
                // them. Regula falsi between the bracket's ends when it leaves them.
                None => self
                    .secant_guess(target)
                    .filter(|&g| g >= b.lo && g < b.hi)
                    .or_else(|| interpolate(b.lo, b.hi, weight_lo, weight_hi, target))
                    .unwrap_or_else(|| bisect(b.lo, b.hi)),
            };
            let split = self.split(t);
            let moved_hi = split.at_most >= k;
            if moved_hi {
                b.hi = split.below;
                b.through_hi = split.at_most;
                b.past_hi = split.above;
            } else {
                b.lo = split.above;
                b.below_lo = split.at_most;
            }
            run = if run.0 == moved_hi && run.1 > 0 {
                (moved_hi, run.1 + 1)
            } else {
                (moved_hi, 1)
            };
            poor_passes = if 2 * b.span() > span {
                poor_passes + 1
            } else {
                0
            };
        }
        b
    }

    /// A threshold where the count of differences should reach `target`, from the two
    /// remembered passes nearest to it in count: the secant through them. After the
    /// median, this lands the interval's bounds within a few thousand differences in
    /// one pass, and near the end of any search it lands where it aims.
    fn secant_guess(&self, target: f64) -> Option<f64> {
        let usable = || self.seen.iter().filter(|s| s.below.is_finite());
        let distance = |s: &&Split| (s.at_most as f64 - target).abs();
        let a = *usable().min_by(|p, q| distance(p).total_cmp(&distance(q)))?;
        let b = *usable()
            .filter(|s| s.below != a.below)
            .min_by(|p, q| distance(p).total_cmp(&distance(q)))?;
        let slope = (b.below - a.below) / (b.at_most as f64 - a.at_most as f64);
        let t = a.below + (target - a.at_most as f64) * slope;
        t.is_finite().then_some(t)
    }

    /// Ends searches whose brackets (from [`Differences::narrow`]) hold few differences:
    /// lists them all in one pass and picks each rank, with the difference of the next
    /// rank up (the smallest listed above it, or the first past the bracket; +inf when
    /// the rank is the last).
    fn pick<const N: usize>(&self, searches: [(Bracket, u64); N]) -> [(f64, f64); N] {
        // A bracket whose ends met holds copies of one value only: nothing to list.
        let windows = searches.map(|(b, _)| {
            if b.lo < b.hi {
                (b.lo, b.hi)
            } else {
                (1.0, 0.0)
            }
        });
        let mut lists = collect_windows(self.x, self.y, windows);
        std::array::from_fn(|s| {
            let (b, k) = searches[s];
            let inside = &mut lists[s];
            // The bracket's counts come from the same comparisons, so the rank is in
            // range; clamping only keeps a broken invariant from panicking.
            let rank = ((k - b.below_lo - 1) as usize).min(inside.len().saturating_sub(1));
            if b.lo >= b.hi || inside.get(rank).is_none() {
                return (b.hi, if b.through_hi > k { b.hi } else { b.past_hi });
            }
            debug_assert_eq!(inside.len() as u64, b.span());
            let (_, &mut kth, above) = inside.select_nth_unstable_by(rank, f64::total_cmp);
            let next = above
                .iter()
                .copied()
                .min_by(f64::total_cmp)
                .unwrap_or(b.past_hi);
            (kth, next)
        })
    }

    /// The rank of the median of the differences (the lower middle one when their
    /// count is even), and whether the median is the mean of that one and the next.
    fn median_rank(&self) -> (u64, bool) {
        let half = self.total / 2;
        if self.total % 2 == 1 {
            (half + 1, false)
        } else {
            (half, true)
        }
    }
}

/// A threshold in `[lo, hi)` where the counts, linear between the ends, reach `target`.
fn interpolate(lo: f64, hi: f64, weight_lo: f64, weight_hi: f64, target: f64) -> Option<f64> {
    let f = (target - weight_lo) / (weight_hi - weight_lo);
    let width = hi - lo;
    let t = if width.is_finite() {
        lo + f * width
    } else {
        lo * (1.0 - f) + hi * f
    };
    if t.is_nan() {
        return None;
    }
    Some(t.min(hi.next_down()).max(lo))
}

/// A threshold in `[lo, hi)` that halves the bracket in the sense that bounds the search:
/// zero when the ends straddle it, the middle of the bit patterns (a geometric middle)
/// when they are far apart in scale, the middle value otherwise.
fn bisect(lo: f64, hi: f64) -> f64 {
    fn key(v: f64) -> u64 {
        let b = v.to_bits();
        if b >> 63 == 1 { !b } else { b | 1 << 63 }
    }
    fn value(k: u64) -> f64 {
        f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
    }
    let t = if lo < 0.0 && hi > 0.0 {
        0.0
    } else if (lo > 0.0 && hi <= 4.0 * lo) || (hi < 0.0 && lo >= 4.0 * hi) {
        lo + (hi - lo) / 2.0
    } else {
        let (a, b) = (key(lo), key(hi));
        value(a + (b - a) / 2)
    };
    if t >= lo && t < hi { t } else { lo }
}

/// The null distribution of U (no ties) up to its median, `P(U = q)` for
/// `q in 0..=floor(n*m/2)`: all a lower-tail quantile needs, the upper half being its
/// mirror image.
struct NullU {
    pmf: Vec<f64>,
}

impl NullU {
    /// The generating function of U is the Gaussian binomial `[n+m choose s]_q`
    /// (`s = min(n, m)`), built as `prod_{i<=s} (1 - q^(l+i)) / (1 - q^i)` with `l = max`.
    /// Each partial product is a distribution's generating function times `C(l+i, i)`, so
    /// dividing by that count at every step keeps probabilities instead of counts that
    /// overflow. Truncation at the median is exact for the coefficients kept.
    fn lower_half(n: usize, m: usize) -> Result<Self, StatsError> {
        let (s, l) = (n.min(m), n.max(m));
        let half = (n as u64 * m as u64) / 2;
        if half + 1 > EXACT_MAX_TERMS || (s as u64).saturating_mul(half) > EXACT_MAX_WORK {
            return Err(StatsError::Invalid(format!(
                "exact interval for {n} canary x {m} baseline values is too costly \
                 (its null distribution has {} terms); use the asymptotic method",
                half + 1
            )));
        }
        let half = half as usize;
        let mut pmf = vec![0.0; half + 1];
        pmf[0] = 1.0;
        for i in 1..=s {
            // Times (1 - q^grow): new[k] = old[k] - old[k - grow]. Walking down in blocks
            // no longer than `grow` keeps each block's sources below it and unmodified,
            // and makes the inner loop a plain vectorisable slice operation.
            let grow = l + i;
            let mut end = half + 1;
            while end > grow {
                let start = (end - grow).max(grow);
                let (low, high) = pmf.split_at_mut(start);
                let sources = &low[start - grow..end - grow];
                for (v, s) in high[..end - start].iter_mut().zip(sources) {
                    *v -= s;
                }
                end = start;
            }
            // Over (1 - q^i), and over C(l+i, i) / C(l+i-1, i-1) = grow / i to stay a
            // distribution: new[k] = old[k] * scale + new[k - i], forward in blocks of `i`.
            let scale = i as f64 / grow as f64;
            for v in &mut pmf[..i.min(half + 1)] {
                *v *= scale;
            }
            let mut start = i;
            while start <= half {
                let end = (start + i).min(half + 1);
                let (low, high) = pmf.split_at_mut(start);
                let sources = &low[start - i..end - i];
                for (v, s) in high[..end - start].iter_mut().zip(sources) {
                    *v = *v * scale + s;
                }
                start = end;
            }
        }
        Ok(NullU { pmf })
    }

    /// R's `qwilcox` for `p <= 0.5`, with its slack of 10 ulp for probabilities that
    /// should be equal but differ in the last bits.
    fn quantile(&self, p: f64) -> u64 {
        let target = p - 10.0 * f64::EPSILON;
        let mut cumulative = 0.0;
        for (q, &mass) in self.pmf.iter().enumerate() {
            cumulative += mass;
            if cumulative >= target {
                return q as u64;
            }
        }
        (self.pmf.len() - 1) as u64
    }

    /// `P(U <= q)` for `q` in the lower half.
    fn cdf(&self, q: u64) -> f64 {
        self.pmf.iter().take(q as usize + 1).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(values: &[f64]) -> Sorted {
        Sorted::new(values.to_vec(), "test").unwrap()
    }

    #[test]
    fn kayenta_fixture() {
        // Kayenta's own Mann-Whitney test: canary {10,20,30,40}, baseline {1,2,3,4}.
        let c = sorted(&[10.0, 20.0, 30.0, 40.0]);
        let b = sorted(&[1.0, 2.0, 3.0, 4.0]);
        for method in [Method::Auto, Method::Exact, Method::Asymptotic] {
            let s = hodges_lehmann(&c, &b, 0.98, method).unwrap();
            assert_eq!(
                (s.lower, s.upper, s.estimate),
                (6.0, 39.0, 22.5),
                "{method:?}"
            );
        }
        let auto = hodges_lehmann(&c, &b, 0.98, Method::Auto).unwrap();
        assert_eq!(auto.method, MethodUsed::Exact);
        assert_eq!(auto.conf_level, 0.98);
    }

    #[test]
    fn auto_leaves_the_exact_branch_on_ties_or_size() {
        let tied = hodges_lehmann(
            &sorted(&[1.0, 2.0]),
            &sorted(&[2.0, 3.0]),
            0.95,
            Method::Auto,
        );
        assert_eq!(tied.unwrap().method, MethodUsed::Asymptotic);
        let big: Vec<f64> = (0..50).map(f64::from).collect();
        let small = sorted(&[0.5, 1.5]);
        let s = hodges_lehmann(&sorted(&big), &small, 0.95, Method::Auto).unwrap();
        assert_eq!(s.method, MethodUsed::Asymptotic);
        let s = hodges_lehmann(&sorted(&big[..49]), &small, 0.95, Method::Auto).unwrap();
        assert_eq!(s.method, MethodUsed::Exact);
    }

    #[test]
    fn constant_samples_give_their_difference() {
        // R errors here (zero variance at the only difference); the answer is not in doubt.
        let s = hodges_lehmann(
            &sorted(&[2.0, 2.0]),
            &sorted(&[0.5, 0.5, 0.5]),
            0.95,
            Method::Auto,
        )
        .unwrap();
        assert_eq!((s.lower, s.upper, s.estimate), (1.5, 1.5, 1.5));
        assert_eq!(s.method, MethodUsed::Asymptotic);
    }

    #[test]
    fn rejects_bad_input_naming_it() {
        let ok = sorted(&[1.0, 2.0]);
        let empty = sorted(&[]);
        assert_eq!(
            hodges_lehmann(&empty, &ok, 0.95, Method::Auto),
            Err(StatsError::Empty { which: "canary" })
        );
        assert_eq!(
            hodges_lehmann(&ok, &empty, 0.95, Method::Auto),
            Err(StatsError::Empty { which: "baseline" })
        );
        for level in [0.0, 1.0, -0.5, f64::NAN] {
            assert!(matches!(
                hodges_lehmann(&ok, &ok, level, Method::Auto),
                Err(StatsError::ConfLevel(_))
            ));
        }
        let inf = sorted(&[1.0, f64::INFINITY]);
        let err = hodges_lehmann(&ok, &inf, 0.95, Method::Auto).unwrap_err();
        assert!(
            err.to_string()
                .contains("baseline sample holds an infinite value")
        );
        let err = kth_difference(&ok, &ok, 5).unwrap_err();
        assert!(err.to_string().contains("rank 5"), "{err}");
        assert!(kth_difference(&ok, &ok, 0).is_err());
        assert!(exact_u_quantile(0.6, 3, 4).is_err());
    }

    #[test]
    fn forced_exact_on_huge_samples_fails_fast() {
        let big: Vec<f64> = (0..10_000).map(f64::from).collect();
        let big = sorted(&big);
        let err = hodges_lehmann(&big, &big, 0.95, Method::Exact).unwrap_err();
        assert!(
            err.to_string().contains("10000 canary x 10000 baseline"),
            "{err}"
        );
    }

    #[test]
    fn null_distribution_sums_to_one() {
        // Lower half plus its mirror image: total mass 1 whatever the parity of n*m.
        for (n, m) in [(1, 1), (3, 5), (7, 7), (20, 33), (49, 48)] {
            let null = NullU::lower_half(n, m).unwrap();
            let half = null.pmf.len() - 1;
            let lower: f64 = null.pmf.iter().sum();
            let total = if (n * m) % 2 == 0 {
                2.0 * lower - null.pmf[half]
            } else {
                2.0 * lower
            };
            assert!((total - 1.0).abs() < 1e-12, "{n}x{m}: {total}");
        }
    }

    #[test]
    fn select_handles_ties_and_wild_scales() {
        // Includes differences that overflow to infinity and pairs that round together.
        let x = sorted(&[
            -1.5e308, -1e300, -0.0, 0.0, 0.0, 1e-300, 3.0, 1e300, 1.5e308,
        ]);
        let y = sorted(&[-1.2e308, -5e299, 0.0, 0.0, 2.0, 1e-310, 1e308]);
        let mut all: Vec<f64> = x
            .as_slice()
            .iter()
            .flat_map(|a| y.as_slice().iter().map(move |b| a - b))
            .collect();
        all.sort_by(f64::total_cmp);
        for (k, want) in all.iter().enumerate() {
            let got = kth_difference(&x, &y, k as u64 + 1).unwrap();
            assert_eq!(got, *want, "k = {}", k + 1);
        }
    }
}
