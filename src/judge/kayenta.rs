//! Kayenta's judge, `NetflixACAJudge-v1.0`, for models with `rules: kayenta`: its
//! Mann-Whitney classifier per metric (`MannWhitneyClassifier`) and its scorer
//! (`WeightedSumScorer`), so a canary config imported from Kayenta gets Kayenta's verdicts.
//!
//! Per metric, in Kayenta's order:
//! 1. NaN: `remove` (Kayenta's default) drops them, `replace` makes them 0.
//! 2. A side without values: `Nodata` (critical on a critical metric; `NodataFailMetric`
//!    with `must_have_data` on a non-critical one), but `Pass` under `replace`.
//! 3. The same values on both sides (as multisets): `Pass`. One value throughout: `Pass`.
//! 4. The shift canary - baseline: R's normal-approximation `wilcox.test` interval at 98%
//!    (two-sided, continuity and tie corrections) and its estimate, root-found as
//!    Kayenta's `MannWhitney` does ([`interval`]: its statistic over the ranks of
//!    [`crate::stats::rank`], its root finder step for step). `High` when the interval's lower end is above
//!    `0.25 * |estimate|` and the effect (mean ratio or CLES, canary over baseline) is at
//!    least the allowed increase; `Low` when its upper end is below `-0.25 * |estimate|`
//!    and the effect at most the allowed decrease; an effect that cannot be computed (a
//!    mean of 0) is ignored. The direction limits which of the two may fire.
//! 5. A critical metric's `High`/`Low` is critical when the effect also reaches the
//!    critical threshold (or cannot be computed).
//!
//! Two different constants: Kayenta adds Gaussian noise (standard deviation 1e-5 of each
//! side's constant) so that its test can rank them. This module stays deterministic
//! ([`super`]'s invariant): it puts each side's noise at the normal distribution's
//! expected order statistics (Blom's `(i - 3/8) / (n + 1/4)` quantiles) instead of
//! drawing it, and runs Kayenta's test on that. Why this gives the classification the
//! noise gives: every noisy value lies within a few 1e-5 of its constant, so when the
//! constants differ by more than that (in their fifth significant digit or earlier), every
//! pairwise difference, hence the interval and the estimate, lies within that noise of
//! the difference `d` of the constants. The lower end then exceeds `0.25 * |estimate|`
//! exactly when `d > 0`, and the upper end is below `-0.25 * |estimate|` exactly when
//! `d < 0`: `High` or `Low` (subject to direction and effect) whatever the draw, and the
//! quantile draw gives the same. Constants closer than the noise make Kayenta's verdict
//! depend on its draw; the quantile draw is its typical draw (below a range of
//! differences narrower than the root finder's 1e-4, every root is an end of that range,
//! and the interval spans 0: `Pass`). One value a side: at an end of the range the two
//! values tie (exactly, whenever the subtraction is exact, as it is for values within a
//! factor of two of each other), the statistic has no variance and Kayenta's
//! `wilcoxonDiff` throws: `Error`, here as there. A side whose constant
//! is 0 gets no noise, as in Kayenta (its scale is 0).
//!
//! The score: groups score `100 * pass / (pass + high + low + nodataFailMetric)` (0 with
//! nothing countable, which the total counts as 100); weights are absolute, groups
//! without one sharing `100 - (sum of the weights)`; a critical metric that is not `Pass`
//! or 50% or more `Nodata` metrics make the score 0; the score is rounded to 2 decimals
//! (half up) before the thresholds. `docs/kayenta.md` lists where this still differs
//! from Kayenta.

use crate::model::{Direction, EffectMeasure, Metric, Model, NanStrategy};
use crate::stats::{
    Alternative, MethodUsed, Sorted, StatsError,
    effect::{EffectSizes, effect_sizes},
    hodges_lehmann::ShiftEstimate,
    normal,
    rank::rank_summary,
};

use super::classify::{blank, clean, fmt_num};
use super::score::{
    Counts, by_thresholds, count_groups, critical_names, critical_reasons, group_score,
    unpassed_reasons,
};
use super::{
    Classification, EffectGate, GroupScore, JudgeError, JudgeOptions, Judgment, MetricData,
    MetricResult, Summary,
};

/// `NetflixACAJudge`'s confidence level of the interval (two-sided), fixed.
pub const CONFIDENCE: f64 = 0.98;
/// `NetflixACAJudge`'s tolerance: the interval must clear this fraction of |estimate|.
pub const TOLERANCE: f64 = 0.25;
/// What a result reports as its alpha: the interval's two tails together.
const ALPHA: f64 = 0.02;
/// `MannWhitneyClassifier.addGaussianNoise`: the noise's standard deviation over the value.
const NOISE_SCALE: f64 = 1e-5;
/// `WeightedSumScorer.NODATA_THRESHOLD`: this percentage of `Nodata` metrics scores 0.
const NODATA_THRESHOLD: f64 = 50.0;

/// Kayenta's metric classification labels (`MetricClassificationLabel`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Label {
    Pass,
    High,
    Low,
    Nodata,
    /// No data on a non-critical metric that must have data: a failed metric in its group.
    NodataFailMetric,
    /// The classification could not be computed.
    Error,
}

/// Kayenta's effect size measures (`effectSize.measure`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// mean(canary) / mean(baseline); undefined (NaN) when either mean is 0.
    MeanRatio,
    /// Common-language effect size, P(canary > baseline) + P(equal) / 2.
    Cles,
}

impl Measure {
    /// The value that means "no effect", Kayenta's default for every threshold.
    pub fn neutral(self) -> f64 {
        match self {
            Measure::MeanRatio => 1.0,
            Measure::Cles => 0.5,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Measure::MeanRatio => "mean ratio",
            Measure::Cles => "CLES",
        }
    }

    fn model_measure(self) -> EffectMeasure {
        match self {
            Measure::MeanRatio => EffectMeasure::MeanRatio,
            Measure::Cles => EffectMeasure::Cles,
        }
    }
}

/// `MannWhitneyClassifier` with its parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Classifier {
    pub tolerance: f64,
    pub confidence: f64,
    pub measure: Measure,
    pub allowed_decrease: f64,
    pub allowed_increase: f64,
    pub critical_decrease: f64,
    pub critical_increase: f64,
}

/// A metric's data as the classifier sees it, after NaN handling.
#[derive(Clone, Copy, Debug)]
pub struct Sides<'a> {
    pub canary: &'a [f64],
    pub baseline: &'a [f64],
}

/// What the classifier is told about the metric besides its data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub direction: Direction,
    pub nan: NanStrategy,
    pub critical: bool,
    pub must_have_data: bool,
}

/// The numbers of a metric that went through the test.
#[derive(Clone, Debug, PartialEq)]
pub struct Tested {
    /// The interval and estimate of the shift canary - baseline.
    pub shift: ShiftEstimate,
    /// `tolerance * |estimate|`.
    pub bound: f64,
    /// The effect in the classifier's measure; NaN when it cannot be computed.
    pub effect: f64,
    /// Mean ratio and CLES of the samples tested.
    pub sizes: EffectSizes,
    /// The two constants, when Kayenta's noise rule applied (canary, baseline).
    pub noise: Option<(f64, f64)>,
    /// `High` or `Low` before the effect gates, or `Pass` when the interval does not
    /// clear the bound in any direction.
    pub moved: Label,
}

/// How a label was reached.
#[derive(Clone, Debug, PartialEq)]
pub enum Basis {
    /// A side without values (after NaN handling).
    Missing {
        canary: bool,
        baseline: bool,
    },
    /// The same values on both sides.
    Identical,
    /// One value throughout both sides.
    OneValue(f64),
    Tested(Tested),
    /// The statistic failed (Kayenta: "Metric Classification Failed").
    Failed(String),
}

/// One metric's classification.
#[derive(Clone, Debug, PartialEq)]
pub struct Classified {
    pub label: Label,
    /// A critical metric's failure: the canary scores 0.
    pub critical: bool,
    pub basis: Basis,
}

impl Classified {
    /// Kayenta's `deviation` (its result's "ratio"): the mean ratio canary / baseline of
    /// the samples tested, NaN when either mean is 0; 1 when a rule decided.
    pub fn deviation(&self) -> f64 {
        match &self.basis {
            Basis::Tested(t) => t.sizes.mean_ratio.unwrap_or(f64::NAN),
            _ => 1.0,
        }
    }
}

impl Classifier {
    /// `new MannWhitneyClassifier(tolerance, confLevel, ...)` with every effect threshold
    /// at the measure's neutral value (Kayenta's defaults).
    pub fn new(tolerance: f64, confidence: f64, measure: Measure) -> Classifier {
        let n = measure.neutral();
        Classifier {
            tolerance,
            confidence,
            measure,
            allowed_decrease: n,
            allowed_increase: n,
            critical_decrease: n,
            critical_increase: n,
        }
    }

    /// The classifier `NetflixACAJudge` builds for `metric`: tolerance 0.25, 98%, the
    /// metric's measure (mean ratio unless `cles`) and thresholds, each defaulting to the
    /// neutral value (a critical threshold does not default to the allowed one here).
    pub fn of_metric(metric: &Metric) -> Classifier {
        let measure = match metric.effect.measure {
            Some(EffectMeasure::Cles) => Measure::Cles,
            _ => Measure::MeanRatio,
        };
        let e = &metric.effect;
        let n = measure.neutral();
        Classifier {
            allowed_decrease: e.allowed_decrease.unwrap_or(n),
            allowed_increase: e.allowed_increase.unwrap_or(n),
            critical_decrease: e.critical_decrease.unwrap_or(n),
            critical_increase: e.critical_increase.unwrap_or(n),
            ..Classifier::new(TOLERANCE, CONFIDENCE, measure)
        }
    }

    /// `MannWhitneyClassifier.classify`: `sides` are NaN-free (see [`transform`]).
    pub fn classify(&self, sides: Sides<'_>, config: Config) -> Classified {
        let (x, y) = (sides.canary, sides.baseline);
        let plain = |label, basis| Classified {
            label,
            critical: false,
            basis,
        };
        if x.is_empty() || y.is_empty() {
            let basis = Basis::Missing {
                canary: x.is_empty(),
                baseline: y.is_empty(),
            };
            return match config.nan {
                NanStrategy::Replace => plain(Label::Pass, basis),
                _ if config.must_have_data && !config.critical => {
                    plain(Label::NodataFailMetric, basis)
                }
                _ => Classified {
                    label: Label::Nodata,
                    critical: config.critical,
                    basis,
                },
            };
        }
        let (mut xs, mut ys) = (x.to_vec(), y.to_vec());
        xs.sort_unstable_by(f64::total_cmp);
        ys.sort_unstable_by(f64::total_cmp);
        if xs == ys {
            return plain(Label::Pass, Basis::Identical);
        }
        let constant = |v: &[f64]| v.first() == v.last();
        if constant(&xs) && constant(&ys) && xs[0] == ys[0] {
            return plain(Label::Pass, Basis::OneValue(xs[0]));
        }
        let noise = (constant(&xs) && constant(&ys)).then(|| (xs[0], ys[0]));
        if noise.is_some() {
            xs = with_expected_noise(xs[0], xs.len());
            ys = with_expected_noise(ys[0], ys.len());
        }
        let tested = match self.test(xs, ys, noise, config.direction) {
            Ok(t) => t,
            Err(e) => return plain(Label::Error, Basis::Failed(e.to_string())),
        };
        let label = self.gate(tested.moved, tested.effect);
        let reaches_critical = match label {
            Label::High => tested.effect.is_nan() || tested.effect >= self.critical_increase,
            Label::Low => tested.effect.is_nan() || tested.effect <= self.critical_decrease,
            _ => false,
        };
        Classified {
            label,
            critical: config.critical && reaches_critical,
            basis: Basis::Tested(tested),
        }
    }

    /// The interval, the bound and the effect sizes of two non-empty samples.
    fn test(
        &self,
        canary: Vec<f64>,
        baseline: Vec<f64>,
        noise: Option<(f64, f64)>,
        direction: Direction,
    ) -> Result<Tested, StatsError> {
        let (c, b) = Sorted::pair(canary, baseline)?;
        let shift = interval(&c, &b, self.confidence)?;
        let sizes = effect_sizes(&c, &b, rank_summary(&c, &b).u_canary, None);
        let effect = match self.measure {
            Measure::MeanRatio => sizes.mean_ratio.unwrap_or(f64::NAN),
            Measure::Cles => sizes.cles,
        };
        let bound = self.tolerance * shift.estimate.abs();
        let moved = self.moved(shift.lower, shift.upper, bound, direction);
        Ok(Tested {
            shift,
            bound,
            effect,
            sizes,
            noise,
            moved,
        })
    }

    /// Where the interval `[lower, upper]` lies against `±bound`, in the directions
    /// `direction` looks at: `High`, `Low` or `Pass`.
    fn moved(&self, lower: f64, upper: f64, bound: f64, direction: Direction) -> Label {
        let up = matches!(direction, Direction::Increase | Direction::Either);
        let down = matches!(direction, Direction::Decrease | Direction::Either);
        if up && lower > bound {
            Label::High
        } else if down && upper < -bound {
            Label::Low
        } else {
            Label::Pass
        }
    }

    /// `MannWhitneyClassifier.compare`'s effect gates on where the interval lies
    /// (`moved`): an effect that cannot be computed (NaN) does not veto.
    fn gate(&self, moved: Label, effect: f64) -> Label {
        let ok = |pass: bool| effect.is_nan() || pass;
        match moved {
            Label::High if ok(effect >= self.allowed_increase) => Label::High,
            Label::Low if ok(effect <= self.allowed_decrease) => Label::Low,
            _ => Label::Pass,
        }
    }

    /// `MannWhitneyClassifier.compare` given the interval and estimate of the shift and
    /// the effect (NaN when it cannot be computed): `High`, `Low` or `Pass`. For callers
    /// that compute the interval another way (the simulator's histograms).
    pub fn compare(
        &self,
        lower: f64,
        estimate: f64,
        upper: f64,
        effect: f64,
        direction: Direction,
    ) -> Label {
        let bound = self.tolerance * estimate.abs();
        self.gate(self.moved(lower, upper, bound, direction), effect)
    }
}

/// `MannWhitney.calculateConfidenceInterval` (module `kayenta-mannwhitney`): the
/// interval of the shift canary - baseline at `confidence` and its estimate, each the
/// root of [`wilcoxon_diff`] found by Kayenta's [`brent`] (absolute tolerance 1e-4),
/// as R's `wilcox.test(exact = FALSE, correct = TRUE)` finds them with `uniroot`. The
/// bounds are clamped to the range of the pairwise differences; the estimate is not.
///
/// The statistic is a step function of the shift, so a root is a point within the
/// tolerance of a step, where the root finder's path lands: that point, not the step
/// (the pairwise difference [`crate::stats::hodges_lehmann`] returns), is what Kayenta
/// compares with its tolerance, and on data whose steps are closer together than 1e-4
/// (error ratios, values of 1e-5) it decides the classification.
pub fn interval(
    canary: &Sorted,
    baseline: &Sorted,
    confidence: f64,
) -> Result<ShiftEstimate, StatsError> {
    let (x, y) = (canary.as_slice(), baseline.as_slice());
    let (Some(&x_min), Some(&x_max), Some(&y_min), Some(&y_max)) =
        (x.first(), x.last(), y.first(), y.last())
    else {
        return Err(StatsError::Empty {
            which: if x.is_empty() { "canary" } else { "baseline" },
        });
    };
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(StatsError::ConfLevel(confidence));
    }
    let (mu_min, mu_max) = (x_min - y_max, x_max - y_min);
    let diff = |mu: f64, zq: f64| wilcoxon_diff(mu, zq, canary, baseline);
    let find_root = |zq: f64| -> Result<f64, StatsError> {
        let (f_lower, f_upper) = (diff(mu_min, zq)?, diff(mu_max, zq)?);
        if f_lower <= 0.0 {
            Ok(mu_min)
        } else if f_upper >= 0.0 {
            Ok(mu_max)
        } else {
            brent(mu_min, mu_max, f_lower, f_upper, |mu| diff(mu, zq))
        }
    };
    let z_quant = normal::ppf((1.0 - confidence) / 2.0);
    let lower = find_root(-z_quant)?;
    let upper = find_root(z_quant)?;
    let (f_lower, f_upper) = (diff(mu_min, 0.0)?, diff(mu_max, 0.0)?);
    let estimate = brent(mu_min, mu_max, f_lower, f_upper, |mu| diff(mu, 0.0))?;
    Ok(ShiftEstimate {
        estimate,
        lower,
        upper,
        conf_level: confidence,
        method: MethodUsed::Asymptotic,
    })
}

/// `MannWhitney.wilcoxonDiff`: the continuity-corrected standardised rank statistic of
/// `canary - mu` against `baseline`, with the tie correction of that pooled sample,
/// minus `quantile`. Ranks and ties come from [`rank_summary`]. Kayenta throws when
/// every observation is tied (no variance); so does this.
pub fn wilcoxon_diff(
    mu: f64,
    quantile: f64,
    canary: &Sorted,
    baseline: &Sorted,
) -> Result<f64, StatsError> {
    // Subtracting a constant keeps the order, so the sort below finds a sorted run.
    let shifted = Sorted::new(canary.as_slice().iter().map(|v| v - mu).collect(), "canary")?;
    let ranks = rank_summary(&shifted, baseline);
    let (n, m) = (canary.len() as f64, baseline.len() as f64);
    let dz = ranks.u_canary - n * m / 2.0;
    let correction = continuity_correction(dz);
    let ties = ranks.tie_term as f64;
    let sigma = ((n * m / 12.0) * ((n + m + 1.0) - ties / ((n + m) * (n + m - 1.0)))).sqrt();
    if sigma == 0.0 {
        return Err(StatsError::Invalid(
            "cannot compute confidence interval when all observations are tied".into(),
        ));
    }
    Ok((dz - correction) / sigma - quantile)
}

/// The continuity correction of `wilcoxonDiff` for `dz = U - nm/2`: half its sign, and
/// 0 for 0 (Scala's and R's sign of 0; Rust's `signum` of 0.0 is 1).
pub fn continuity_correction(dz: f64) -> f64 {
    if dz == 0.0 { 0.0 } else { 0.5 * dz.signum() }
}

/// Kayenta's `BrentSolver.solve` (a port of R's `zeroin`, as `uniroot` runs it):
/// a root of `f` in `[ax, bx]` given `fa = f(ax)`, `fb = f(bx)`, to an absolute
/// tolerance of 1e-4, in at most 1000 steps (then the last point, as Kayenta returns it).
/// Step for step as Kayenta's, so it lands where Kayenta's lands.
pub fn brent<E>(
    ax: f64,
    bx: f64,
    fa: f64,
    fb: f64,
    mut f: impl FnMut(f64) -> Result<f64, E>,
) -> Result<f64, E> {
    const MAX_ITERATIONS: usize = 1000;
    const TOLERANCE: f64 = 1e-4;
    const EPSILON: f64 = 2.220446049250313e-16;
    // Commons Math's `Precision.equals(v, 0)`: within one ulp of zero.
    let is_zero = |v: f64| v.abs() <= f64::from_bits(1);
    let (mut a, mut b, mut fa, mut fb) = (ax, bx, fa, fb);
    let (mut c, mut fc) = (a, fa);
    if is_zero(fa) {
        return Ok(a);
    }
    if is_zero(fb) {
        return Ok(b);
    }
    for _ in 0..=MAX_ITERATIONS {
        let prev_step = b - a;
        if fc.abs() < fb.abs() {
            a = b;
            b = c;
            c = a;
            fa = fb;
            fb = fc;
            fc = fa;
        }
        let tol_act = 2.0 * EPSILON * b.abs() + TOLERANCE / 2.0;
        let mut new_step = (c - b) / 2.0;
        if new_step.abs() <= tol_act || is_zero(fb) {
            return Ok(b);
        }
        if prev_step.abs() >= tol_act && fa.abs() > fb.abs() {
            let cb = c - b;
            let (mut p, mut q);
            if a == c {
                let t1 = fb / fa;
                p = cb * t1;
                q = 1.0 - t1;
            } else {
                // Inverse quadratic interpolation.
                let qq = fa / fc;
                let t1 = fb / fc;
                let t2 = fb / fa;
                p = t2 * (cb * qq * (qq - t1) - (b - a) * (t1 - 1.0));
                q = (qq - 1.0) * (t1 - 1.0) * (t2 - 1.0);
            }
            if p > 0.0 {
                q = -q;
            } else {
                p = -p;
            }
            if p < (0.75 * cb * q - (tol_act * q).abs() / 2.0) && p < (prev_step * q / 2.0).abs() {
                new_step = p / q;
            }
        }
        if new_step.abs() < tol_act {
            new_step = if new_step > 0.0 { tol_act } else { -tol_act };
        }
        a = b;
        fa = fb;
        b += new_step;
        fb = f(b)?;
        if (fb > 0.0 && fc > 0.0) || (fb < 0.0 && fc < 0.0) {
            c = a;
            fc = fa;
        }
    }
    Ok(b)
}

/// `NetflixACAJudge.handleNaNs`: `replace` makes NaN 0, anything else drops them.
pub fn transform(values: &[f64], nan: NanStrategy) -> Vec<f64> {
    match nan {
        NanStrategy::Replace => values
            .iter()
            .map(|v| if v.is_nan() { 0.0 } else { *v })
            .collect(),
        _ => values.iter().copied().filter(|v| !v.is_nan()).collect(),
    }
}

/// `n` copies of `value` with Kayenta's noise (standard deviation `1e-5 * |value|`) at
/// the normal distribution's expected order statistics (Blom's approximation), in
/// ascending order. See the module's documentation for why.
fn with_expected_noise(value: f64, n: usize) -> Vec<f64> {
    let sd = (value * NOISE_SCALE).abs();
    (1..=n)
        .map(|i| {
            let p = (i as f64 - 0.375) / (n as f64 + 0.25);
            value + sd * normal::ppf(p)
        })
        .collect()
}

/// One metric of a `rules: kayenta` model: its data in, Augury's result out, with
/// Kayenta's label mapped to a [`Classification`] and a reason in Kayenta's terms.
pub(super) fn classify_metric(
    metric: &Metric,
    data: Option<&MetricData>,
    options: &JudgeOptions,
) -> Result<MetricResult, JudgeError> {
    let mut result = blank(metric);
    result.alpha = ALPHA;
    let (canary, baseline) = match data {
        None => (Vec::new(), Vec::new()),
        Some(MetricData::Samples { baseline, canary }) => {
            // `clean` refuses NaN under `nan: fail`, and otherwise does what
            // `NetflixACAJudge.handleNaNs` does ([`transform`]).
            let (b, nan_b) = clean(metric, baseline, "baseline")?;
            let (c, nan_c) = clean(metric, canary, "canary")?;
            let summary = |values: &[f64], nan, which| {
                Sorted::new(values.to_vec(), which)
                    .map(|s| Summary::of_samples(&s, nan))
                    .map_err(|source| JudgeError::Stats {
                        metric: metric.name.clone(),
                        source,
                    })
            };
            result.baseline = Some(summary(&b, nan_b, "baseline")?);
            result.canary = Some(summary(&c, nan_c, "canary")?);
            (c, b)
        }
        Some(other) => return Err(wrong_shape(metric, other)),
    };
    let direction = match options.alternative {
        None => metric.direction,
        Some(Alternative::Greater) => Direction::Increase,
        Some(Alternative::Less) => Direction::Decrease,
        Some(Alternative::TwoSided) => Direction::Either,
    };
    let classifier = Classifier::of_metric(metric);
    let classified = classifier.classify(
        Sides {
            canary: &canary,
            baseline: &baseline,
        },
        Config {
            direction,
            nan: metric.nan,
            critical: metric.critical,
            must_have_data: metric.must_have_data,
        },
    );
    Ok(fill(metric, &classifier, direction, classified, result))
}

/// Data of a shape Kayenta's judge does not take: it compares two series of samples.
pub(super) fn wrong_shape(metric: &Metric, got: &MetricData) -> JudgeError {
    JudgeError::WrongShape {
        metric: metric.name.clone(),
        kind: "`rules: kayenta`",
        expected: "samples (Kayenta judges time series)",
        got: got.shape(),
    }
}

/// The result fields and the reason for a classified metric.
fn fill(
    metric: &Metric,
    classifier: &Classifier,
    direction: Direction,
    c: Classified,
    mut result: MetricResult,
) -> MetricResult {
    let name = &metric.name;
    result.classification = match c.label {
        Label::Pass => Classification::Pass,
        Label::High => Classification::High,
        Label::Low => Classification::Low,
        Label::Nodata | Label::NodataFailMetric => Classification::Nodata,
        Label::Error => Classification::Error,
    };
    result.nodata_fails = c.label == Label::NodataFailMetric;
    result.critical_failure = c.critical && matches!(c.label, Label::High | Label::Low);
    result.reason = match &c.basis {
        Basis::Missing { canary, baseline } => {
            let which = match (canary, baseline) {
                (true, true) => "neither version has values",
                (true, false) => "the canary has no values",
                _ => "the baseline has no values",
            };
            match c.label {
                Label::Pass => format!(
                    "{name}: {which}; with `nan: replace` Kayenta passes a metric without data"
                ),
                Label::NodataFailMetric => format!(
                    "{name}: no data ({which}); the model requires data, so it counts as failed"
                ),
                _ if c.critical => format!(
                    "{name}: no data ({which}); a critical metric without data fails the canary"
                ),
                _ => format!("{name}: no data ({which})"),
            }
        }
        Basis::Identical => format!("{name}: the canary and baseline data are identical"),
        Basis::OneValue(v) => format!(
            "{name}: every value of both versions is {}; nothing to compare",
            fmt_num(*v)
        ),
        Basis::Failed(why) => format!(
            "{name}: classification failed ({why}); Kayenta reports Error, which the score leaves out"
        ),
        Basis::Tested(t) => {
            let reason = tested_reason(name, classifier, direction, &c, t);
            let up = t.shift.estimate >= 0.0;
            result.effect_gate = Some(EffectGate {
                measure: classifier.measure.model_measure(),
                value: (!t.effect.is_nan()).then_some(t.effect),
                allowed: if up {
                    classifier.allowed_increase
                } else {
                    classifier.allowed_decrease
                },
                critical: if up {
                    classifier.critical_increase
                } else {
                    classifier.critical_decrease
                },
            });
            result.shift = Some(t.shift.clone());
            result.effect = Some(t.sizes.clone());
            reason
        }
    };
    result
}

/// The sentence for a tested metric: the interval against the tolerance, then the effect.
fn tested_reason(
    name: &str,
    k: &Classifier,
    direction: Direction,
    c: &Classified,
    t: &Tested,
) -> String {
    let s = &t.shift;
    let level = fmt_num(100.0 * k.confidence);
    let interval = format!(
        "{level}% interval of the shift canary - baseline [{}, {}]",
        fmt_num(s.lower),
        fmt_num(s.upper)
    );
    let tolerance = format!(
        "{} x |estimate {}| = {}",
        fmt_num(k.tolerance),
        fmt_num(s.estimate),
        fmt_num(t.bound)
    );
    let effect = if t.effect.is_nan() {
        format!("{} undefined, so not checked", k.measure.name())
    } else {
        format!("{} {}", k.measure.name(), fmt_num(t.effect))
    };
    let noise = match t.noise {
        Some((canary, baseline)) => format!(
            "; both versions are constant ({} and {}): Kayenta adds noise of 1e-5 of each constant, taken at its expected quantiles",
            fmt_num(canary),
            fmt_num(baseline)
        ),
        None => String::new(),
    };
    let crit = if c.critical {
        let at = if c.label == Label::High {
            k.critical_increase
        } else {
            k.critical_decrease
        };
        format!(", past the critical {} (critical metric)", fmt_num(at))
    } else {
        String::new()
    };
    match (c.label, t.moved) {
        (Label::High, _) => format!(
            "{name}: canary higher than baseline ({interval} is above the tolerance {tolerance}; {effect}, allowed {}{crit}){noise}",
            fmt_num(k.allowed_increase)
        ),
        (Label::Low, _) => format!(
            "{name}: canary lower than baseline ({interval} is below minus the tolerance {tolerance}; {effect}, allowed {}{crit}){noise}",
            fmt_num(k.allowed_decrease)
        ),
        (_, Label::High) => format!(
            "{name}: canary higher than baseline ({interval} is above the tolerance {tolerance}) but by less than allowed ({effect}, allowed {}){noise}",
            fmt_num(k.allowed_increase)
        ),
        (_, Label::Low) => format!(
            "{name}: canary lower than baseline ({interval} is below minus the tolerance {tolerance}) but by less than allowed ({effect}, allowed {}){noise}",
            fmt_num(k.allowed_decrease)
        ),
        _ => {
            // Outside the bound, but in a direction the model accepts.
            let accepted = match direction {
                Direction::Increase if s.upper < -t.bound => Some("lower"),
                Direction::Decrease if s.lower > t.bound => Some("higher"),
                _ => None,
            };
            match accepted {
                Some(way) => format!(
                    "{name}: canary {way} than baseline ({interval}, tolerance {tolerance}), a direction the model accepts{noise}"
                ),
                None => format!(
                    "{name}: no change beyond the tolerance ({interval} does not clear plus or minus {tolerance}; {effect}){noise}"
                ),
            }
        }
    }
}

/// `WeightedSumScorer.score` and `ThresholdScoreClassifier`: group scores, the total
/// with absolute weights, the two rules that make it 0, rounding, the thresholds.
pub(super) fn score(model: &Model, metrics: Vec<MetricResult>) -> Judgment {
    let (names, counts) = count_groups(&metrics);
    let weight_of = |g: &str| model.groups.get(g).and_then(|g| g.weight);
    let configured: f64 = model.groups.values().filter_map(|g| g.weight).sum();
    let unweighted = names.iter().filter(|g| weight_of(g).is_none()).count();
    let share = if unweighted > 0 {
        (100.0 - configured) / unweighted as f64
    } else {
        0.0
    };
    let groups: Vec<GroupScore> = names
        .iter()
        .zip(&counts)
        .map(|(name, c)| {
            let mut group = group_score(name, weight_of(name).unwrap_or(share), c);
            // Kayenta reports 0 for a group with nothing countable (and counts it as 100
            // in the total, below).
            if !countable(c) {
                group.score = 0.0;
            }
            group
        })
        .collect();
    let (regressed, dead) = critical_names(&metrics);
    let nodata = metrics
        .iter()
        .filter(|m| m.classification == Classification::Nodata && !m.nodata_fails)
        .count();
    let nodata_percent = 100.0 * nodata as f64 / metrics.len().max(1) as f64;
    let mut reasons = Vec::new();
    let score = if !regressed.is_empty() || !dead.is_empty() {
        reasons.extend(critical_reasons(&regressed, &dead));
        0.0
    } else if nodata_percent >= NODATA_THRESHOLD {
        reasons.push(format!(
            "{nodata} of {} metrics had no data: {}% or more, which Kayenta scores 0",
            metrics.len(),
            NODATA_THRESHOLD
        ));
        0.0
    } else {
        let total: f64 = groups
            .iter()
            .zip(&counts)
            .map(|(g, c)| {
                let effective = if countable(c) { g.score } else { 100.0 };
                effective * (g.weight / 100.0)
            })
            .sum();
        round_half_up_2(total)
    };
    let (verdict, why) = by_thresholds(&model.thresholds, score);
    reasons.push(why);
    reasons.extend(unpassed_reasons(&metrics));
    Judgment {
        model: model.name.clone(),
        verdict,
        score,
        thresholds: model.thresholds,
        reasons,
        groups,
        metrics,
    }
}

/// Whether a group has a metric its score counts (`WeightedSumScorer`'s `noData` is not).
fn countable(c: &Counts) -> bool {
    c.pass + c.high + c.low + c.nodata_fail > 0
}

/// Commons Math's `Precision.round(x, 2)`: the decimal the double prints as, rounded to
/// 2 places, halves away from zero (so 1.005 is 1.01, although the double is below it).
pub fn round_half_up_2(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Rust prints the shortest decimal that reads back as `x`, never in exponent form.
    let text = format!("{}", x.abs());
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let mut digits = fraction.bytes().map(|b| u128::from(b - b'0'));
    let (tenths, hundredths) = (digits.next().unwrap_or(0), digits.next().unwrap_or(0));
    let up = digits.next().is_some_and(|d| d >= 5);
    let Ok(whole) = whole.parse::<u128>() else {
        return x;
    };
    let cents = whole * 100 + tenths * 10 + hundredths + u128::from(up);
    // Both exact below 2^53, and division is correctly rounded: the nearest double.
    (cents as f64 / 100.0).copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_commons_math_half_up_on_the_printed_decimal() {
        assert_eq!(round_half_up_2(33.333333333333336), 33.33);
        assert_eq!(round_half_up_2(1.005), 1.01);
        assert_eq!(round_half_up_2(94.995), 95.0);
        assert_eq!(round_half_up_2(94.994999), 94.99);
        assert_eq!(round_half_up_2(100.0), 100.0);
        assert_eq!(round_half_up_2(0.0), 0.0);
        assert_eq!(round_half_up_2(-2.345), -2.35);
    }

    #[test]
    fn expected_noise_is_symmetric_around_the_constant_and_absent_for_zero() {
        let v = with_expected_noise(10.0, 5);
        assert_eq!(v.len(), 5);
        assert_eq!(v[2], 10.0);
        assert!(v.windows(2).all(|w| w[0] < w[1]));
        assert!(((v[0] - 10.0) + (v[4] - 10.0)).abs() < 1e-15);
        assert!((v[4] - 10.0) < 3e-4);
        assert_eq!(with_expected_noise(0.0, 4), vec![0.0; 4]);
        assert_eq!(with_expected_noise(7.0, 1), vec![7.0]);
    }

    fn config(direction: Direction) -> Config {
        Config {
            direction,
            nan: NanStrategy::Remove,
            critical: false,
            must_have_data: false,
        }
    }

    #[test]
    fn different_constants_are_high_or_low_by_their_difference() {
        let k = Classifier::new(TOLERANCE, CONFIDENCE, Measure::MeanRatio);
        let classify = |c: &[f64], b: &[f64], d| {
            let got = k.classify(
                Sides {
                    canary: c,
                    baseline: b,
                },
                config(d),
            );
            got.label
        };
        assert_eq!(
            classify(&[5.0; 4], &[4.0; 6], Direction::Either),
            Label::High
        );
        assert_eq!(
            classify(&[4.0; 4], &[5.0; 6], Direction::Either),
            Label::Low
        );
        assert_eq!(
            classify(&[4.0; 4], &[5.0; 6], Direction::Increase),
            Label::Pass
        );
        // One value a side: at the end of the range the two observations tie, the
        // statistic has no variance and Kayenta's `wilcoxonDiff` throws: `Error`.
        assert_eq!(
            classify(&[3.0; 1], &[0.0; 1], Direction::Either),
            Label::Error
        );
        // Constants closer than the noise: the noise swamps them, as in Kayenta.
        assert_eq!(
            classify(&[1.000_000_001; 10], &[1.0; 10], Direction::Either),
            Label::Pass
        );
    }

    #[test]
    fn compare_is_the_classifier_s_rule() {
        let k = Classifier::new(TOLERANCE, CONFIDENCE, Measure::MeanRatio);
        // Lower end 2.6 above 0.25 * 10: High; 2.4 is not.
        assert_eq!(
            k.compare(2.6, 10.0, 20.0, 1.5, Direction::Either),
            Label::High
        );
        assert_eq!(
            k.compare(2.4, 10.0, 20.0, 1.5, Direction::Either),
            Label::Pass
        );
        // An effect below the allowed increase vetoes; one that cannot be computed does not.
        assert_eq!(
            k.compare(2.6, 10.0, 20.0, 0.9, Direction::Either),
            Label::Pass
        );
        assert_eq!(
            k.compare(2.6, 10.0, 20.0, f64::NAN, Direction::Either),
            Label::High
        );
        assert_eq!(
            k.compare(-20.0, -10.0, -2.6, 0.5, Direction::Increase),
            Label::Pass
        );
        assert_eq!(
            k.compare(-20.0, -10.0, -2.6, 0.5, Direction::Decrease),
            Label::Low
        );
    }
}
