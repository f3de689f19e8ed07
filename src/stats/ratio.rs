//! Confidence interval on the rate ratio of errors: the canary's error proportion over the
//! baseline's, `(e_c / n_c) / (e_b / n_b)` (the "relative risk" of epidemiology, with the
//! canary as the exposed group).
//!
//! Katz's log method (Katz, Baptista, Azen and Pike, "Obtaining confidence intervals for
//! the risk ratio in cohort studies", Biometrics 34, 1978): the log of the ratio is taken
//! as normal with variance `1/e_c - 1/n_c + 1/e_b - 1/n_b`, and the interval is
//! `exp(ln ratio -/+ z se)` with `z` the normal quantile at `1 - alpha/2`. This is what
//! `scipy.stats.contingency.relative_risk(e_c, n_c, e_b, n_b).confidence_interval(1 - alpha)`
//! computes.
//!
//! Without errors on a side the variance is infinite and the ratio is 0 (no canary
//! errors), infinite (no baseline errors) or undefined (neither): there is no interval and
//! [`katz_interval`] returns `Ok(None)`. (SciPy returns `(0, nan)`, `(nan, inf)` and
//! `(nan, nan)` there, following R's `epitools::riskratio`.)
//!
//! Invariant: pure; when an interval is returned, `0 < lower <= ratio <= upper < inf`.

use super::proportions::Counts;
use super::{StatsError, normal};

/// A two-sided confidence interval on the canary / baseline ratio of error proportions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RatioInterval {
    /// `(e_c / n_c) / (e_b / n_b)`.
    pub ratio: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The Katz log-method interval on the canary / baseline rate ratio, covering with
/// probability `1 - alpha` (asymptotically).
///
/// `Ok(None)` when either side saw no errors (see the module documentation).
/// Refuses a side without requests (`StatsError::Empty`), more errors than requests and
/// `alpha` outside (0, 1).
pub fn katz_interval(
    canary: Counts,
    baseline: Counts,
    alpha: f64,
) -> Result<Option<RatioInterval>, StatsError> {
    canary.validate("canary")?;
    baseline.validate("baseline")?;
    if canary.requests == 0 {
        return Err(StatsError::Empty { which: "canary" });
    }
    if baseline.requests == 0 {
        return Err(StatsError::Empty { which: "baseline" });
    }
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(StatsError::Invalid(format!(
            "alpha {alpha} is not in (0, 1)"
        )));
    }
    if canary.errors == 0 || baseline.errors == 0 {
        return Ok(None);
    }
    let (ec, nc) = (canary.errors as f64, canary.requests as f64);
    let (eb, nb) = (baseline.errors as f64, baseline.requests as f64);
    let ratio = (ec / nc) / (eb / nb);
    let log_ratio = ratio.ln();
    // Each side's term is >= 0 since errors <= requests; the clamp only guards rounding.
    let se = (1.0 / ec - 1.0 / nc + 1.0 / eb - 1.0 / nb).max(0.0).sqrt();
    let z = normal::isf(alpha / 2.0);
    let (lower, upper) = ((log_ratio - z * se).exp(), (log_ratio + z * se).exp());
    Ok(
        (lower.is_finite() && upper.is_finite()).then_some(RatioInterval {
            ratio,
            lower,
            upper,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(requests: u64, errors: u64) -> Counts {
        Counts { requests, errors }
    }

    #[test]
    fn matches_the_worked_example() {
        // 27 errors in 122 requests against 44 in 487, at 95%: SciPy's relative_risk
        // gives ratio 2.4495156482861398, interval (1.5836990926700116, 3.7886786315466354).
        let ci = katz_interval(counts(122, 27), counts(487, 44), 0.05)
            .unwrap()
            .unwrap();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b;
        assert!(close(ci.ratio, 2.449_515_648_286_139_8), "{ci:?}");
        assert!(close(ci.lower, 1.583_699_092_670_011_6), "{ci:?}");
        assert!(close(ci.upper, 3.788_678_631_546_635_4), "{ci:?}");
    }

    #[test]
    fn zero_errors_on_a_side_have_no_interval() {
        for (c, b) in [(0, 5), (5, 0), (0, 0)] {
            assert_eq!(
                katz_interval(counts(100, c), counts(100, b), 0.05),
                Ok(None),
                "{c} vs {b}"
            );
        }
    }

    #[test]
    fn all_errors_on_both_sides_is_a_point() {
        // No variance left: the interval shrinks to the ratio.
        let ci = katz_interval(counts(7, 7), counts(9, 9), 0.05)
            .unwrap()
            .unwrap();
        assert_eq!((ci.lower, ci.ratio, ci.upper), (1.0, 1.0, 1.0));
    }

    #[test]
    fn swapping_the_sides_inverts_the_interval() {
        let a = katz_interval(counts(1000, 14), counts(1200, 5), 0.01)
            .unwrap()
            .unwrap();
        let b = katz_interval(counts(1200, 5), counts(1000, 14), 0.01)
            .unwrap()
            .unwrap();
        assert!((a.lower * b.upper - 1.0).abs() < 1e-12);
        assert!((a.upper * b.lower - 1.0).abs() < 1e-12);
        assert!(a.lower < a.ratio && a.ratio < a.upper);
    }

    #[test]
    fn a_higher_confidence_is_wider() {
        let ci = |alpha| {
            katz_interval(counts(3000, 60), counts(3000, 45), alpha)
                .unwrap()
                .unwrap()
        };
        let (narrow, wide) = (ci(0.2), ci(0.001));
        assert!(wide.lower < narrow.lower && narrow.upper < wide.upper);
        assert_eq!(wide.ratio, narrow.ratio);
    }

    #[test]
    fn refuses_bad_input() {
        let ok = counts(10, 1);
        assert_eq!(
            katz_interval(counts(0, 0), ok, 0.05),
            Err(StatsError::Empty { which: "canary" })
        );
        assert_eq!(
            katz_interval(ok, counts(0, 0), 0.05),
            Err(StatsError::Empty { which: "baseline" })
        );
        let err = katz_interval(ok, counts(3, 4), 0.05).unwrap_err();
        assert!(err.to_string().contains("baseline"), "{err}");
        for alpha in [0.0, 1.0, -0.1, f64::NAN] {
            let err = katz_interval(ok, ok, alpha).unwrap_err();
            assert!(err.to_string().contains("alpha"), "{err}");
        }
    }
}
