//! Effect sizes: how big a difference is, as opposed to whether it is there.
//!
//! Owns the ratios, the common-language effect size and the relative shift that explain
//! a verdict in the samples' own terms. Invariant: an undefined ratio (zero denominator,
//! empty sample) is `None`, never a NaN or an infinity passed off as a number.

use serde::{Deserialize, Serialize};

use super::{Sorted, hodges_lehmann::ShiftEstimate};

/// Effect sizes of canary against baseline. `None` where undefined (a zero denominator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EffectSizes {
    /// median(canary) / median(baseline).
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub median_ratio: Option<f64>,
    /// mean(canary) / mean(baseline) (Kayenta's `meanRatio`); `None` when either mean is
    /// zero, as Kayenta does.
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub mean_ratio: Option<f64>,
    /// Common-language effect size: P(canary > baseline) + P(equal) / 2 (Kayenta's `cles`).
    /// NaN when a sample is empty.
    #[serde(with = "crate::stats::nonfinite")]
    pub cles: f64,
    /// Hodges-Lehmann shift relative to the baseline median, with its CI, when a shift
    /// estimate is given and the baseline median is not zero.
    pub relative_shift: Option<RelativeShift>,
}

/// A shift as a fraction of the baseline median's size: +0.1 means the canary sits about
/// 10% of the baseline above it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RelativeShift {
    #[serde(with = "crate::stats::nonfinite")]
    pub estimate: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub lower: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub upper: f64,
}

/// Computes every effect size; `u` is the canary's Mann-Whitney U.
pub fn effect_sizes(
    canary: &Sorted,
    baseline: &Sorted,
    u: f64,
    shift: Option<&ShiftEstimate>,
) -> EffectSizes {
    let median_baseline = median(baseline).filter(|m| *m != 0.0);
    let median_ratio = median(canary).zip(median_baseline).map(|(c, b)| c / b);
    let mean_ratio = match (mean(canary.as_slice()), mean(baseline.as_slice())) {
        (Some(c), Some(b)) if c != 0.0 && b != 0.0 => Some(c / b),
        _ => None,
    };
    let pairs = canary.len() as f64 * baseline.len() as f64;
    let cles = if pairs > 0.0 { u / pairs } else { f64::NAN };
    // Dividing by the median's magnitude keeps the sign of the shift (positive = canary
    // larger) and the order of the bounds when the baseline median is negative.
    let relative_shift = shift.zip(median_baseline).map(|(s, b)| {
        let scale = b.abs();
        RelativeShift {
            estimate: s.estimate / scale,
            lower: s.lower / scale,
            upper: s.upper / scale,
        }
    });
    EffectSizes {
        median_ratio,
        mean_ratio,
        cles,
        relative_shift,
    }
}

/// The middle value, or the mean of the two middle values; `None` for an empty sample.
pub fn median(sample: &Sorted) -> Option<f64> {
    let v = sample.as_slice();
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => {
            let (a, b) = (v[n / 2 - 1], v[n / 2]);
            let sum = a + b;
            Some(if sum.is_finite() {
                sum / 2.0
            } else {
                a / 2.0 + b / 2.0
            })
        }
    }
}

/// Arithmetic mean with Neumaier-compensated summation, so a million values lose no more
/// than a few ulp; `None` for an empty slice.
pub fn mean(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sum = 0.0f64;
    let mut compensation = 0.0f64;
    for &v in values {
        let t = sum + v;
        if sum.abs() >= v.abs() {
            compensation += (sum - t) + v;
        } else {
            compensation += (v - t) + sum;
        }
        sum = t;
    }
    Some((sum + compensation) / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::MethodUsed;

    fn sorted(values: &[f64]) -> Sorted {
        Sorted::new(values.to_vec(), "test").unwrap()
    }

    #[test]
    fn medians_of_odd_even_and_empty_samples() {
        assert_eq!(median(&sorted(&[3.0, 1.0, 2.0])), Some(2.0));
        assert_eq!(median(&sorted(&[4.0, 1.0, 3.0, 2.0])), Some(2.5));
        assert_eq!(median(&sorted(&[])), None);
        assert_eq!(median(&sorted(&[f64::MAX, f64::MAX])), Some(f64::MAX));
    }

    #[test]
    fn compensated_mean_keeps_small_terms() {
        // Plain left-to-right summation gives 0.0 here: both 1.0 are lost against 1e16.
        let v = [1.0, 1e16, 1.0, -1e16];
        assert_eq!(v.iter().sum::<f64>(), 0.0);
        assert_eq!(mean(&v), Some(0.5));
        assert_eq!(mean(&[]), None);
    }

    #[test]
    fn zero_denominators_and_empty_samples_are_undefined() {
        let shift = ShiftEstimate {
            estimate: 1.0,
            lower: 0.5,
            upper: 2.0,
            conf_level: 0.95,
            method: MethodUsed::Exact,
        };
        let zero_centre = sorted(&[-1.0, 0.0, 1.0]);
        let e = effect_sizes(&sorted(&[1.0, 2.0]), &zero_centre, 3.0, Some(&shift));
        assert_eq!(
            (e.median_ratio, e.mean_ratio, e.relative_shift),
            (None, None, None)
        );
        assert_eq!(e.cles, 0.5);
        let e = effect_sizes(&zero_centre, &sorted(&[2.0]), 1.0, None);
        assert_eq!(
            e.mean_ratio, None,
            "a zero canary mean is undefined too (Kayenta)"
        );
        assert_eq!(e.median_ratio, Some(0.0));
        let e = effect_sizes(&sorted(&[]), &sorted(&[1.0]), 0.0, Some(&shift));
        assert!(e.cles.is_nan());
        assert_eq!((e.median_ratio, e.mean_ratio), (None, None));
    }

    #[test]
    fn relative_shift_keeps_order_for_negative_baselines() {
        let shift = ShiftEstimate {
            estimate: 1.0,
            lower: 0.5,
            upper: 2.0,
            conf_level: 0.95,
            method: MethodUsed::Asymptotic,
        };
        let e = effect_sizes(&sorted(&[-1.0]), &sorted(&[-2.0]), 1.0, Some(&shift));
        let r = e.relative_shift.unwrap();
        assert_eq!((r.lower, r.estimate, r.upper), (0.25, 0.5, 1.0));
        assert_eq!(e.median_ratio, Some(0.5));
    }
}
