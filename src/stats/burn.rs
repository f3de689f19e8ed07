//! Error-budget burn rate against an SLO, with the SRE workbook's multi-window,
//! multi-burn-rate evaluation, scaled to a canary's lifetime.
//!
//! burn rate = error ratio / (1 - SLO target): 1 spends the period's budget exactly over
//! the period. A rule fires when both its long and its short window burn faster than its
//! factor (strictly, as in the workbook's `>` alert expressions); the factor of a rule
//! that spends a fraction `b` of the budget over a long window `w` of a period `P` is
//! `b * P / w` ([`factor_for`]).
//!
//! # Scaling to a canary ([`BurnPolicy::scaled_to`])
//! A canary lives minutes, the workbook's windows are hours and days. Every window is
//! multiplied by `s = min(1, lifetime / longest long window)`, then raised to at least
//! one interval; factors stay the same. So the slowest rule's long window is the canary's
//! whole lifetime, and the faster rules keep their proportions below it (for the
//! workbook policy: long windows lifetime/72, lifetime/12 and lifetime, short windows a
//! twelfth of those). Scaling by `lifetime / period` instead would put every window of
//! a canary shorter than days under one interval, collapsing the policy to one check.
//!
//! # Evaluation ([`BurnPolicy::evaluate`])
//! The canary's per-interval counts, oldest first. A window of `w` seconds covers the
//! last `max(1, round(w / interval))` intervals, or all of them while fewer have elapsed.
//! A window without requests has no burn rate and does not fire.
//! The budget the canary alone burned is its errors over the budget of the whole period,
//! `errors / ((1 - slo) * (requests / share) * period / elapsed)`, which is
//! `burn * share * elapsed / period`: a canary at 5% of the traffic burning 14.4x for 10
//! minutes of a 30-day period spends 0.017% of that period's budget.

use serde::{Deserialize, Serialize};

use super::StatsError;
use super::proportions::Counts;

/// Seconds in the workbook's 30-day SLO period.
pub const THIRTY_DAYS_SECS: f64 = 30.0 * 24.0 * 3600.0;

/// burn rate = error ratio / (1 - slo target).
/// Refuses a target outside (0, 1), no requests, and errors above requests.
pub fn burn_rate(errors: u64, requests: u64, slo_target: f64) -> Result<f64, StatsError> {
    check_slo(slo_target)?;
    if requests == 0 {
        return Err(StatsError::Empty {
            which: "burn-rate requests",
        });
    }
    Counts { requests, errors }.validate("burn rate")?;
    Ok(errors as f64 / requests as f64 / (1.0 - slo_target))
}

/// The burn-rate factor of a rule that spends `budget_fraction` of the period's error
/// budget within `long_window_secs`: `budget_fraction * period / long_window`.
/// 0.02, 0.05 and 0.10 of a 30-day budget over 1 h, 6 h and 3 d give 14.4, 6 and 1.
pub fn factor_for(budget_fraction: f64, period_secs: f64, long_window_secs: f64) -> f64 {
    budget_fraction * period_secs / long_window_secs
}

fn check_slo(slo_target: f64) -> Result<(), StatsError> {
    if !(slo_target > 0.0 && slo_target < 1.0) {
        return Err(StatsError::Invalid(format!(
            "SLO target {slo_target} is not in (0, 1)"
        )));
    }
    Ok(())
}

fn check_positive(what: &str, value: f64) -> Result<(), StatsError> {
    if !(value > 0.0 && value.is_finite()) {
        return Err(StatsError::Invalid(format!(
            "{what} {value} is not a positive number of seconds"
        )));
    }
    Ok(())
}

/// One alerting rule: both windows must burn faster than `factor`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurnWindow {
    pub severity: String,
    #[serde(with = "crate::stats::nonfinite")]
    pub long_window_secs: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub short_window_secs: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub factor: f64,
}

/// Rules of a multi-window, multi-burn-rate policy, most urgent first, and the SLO period
/// their factors refer to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurnPolicy {
    #[serde(with = "crate::stats::nonfinite")]
    pub period_secs: f64,
    pub windows: Vec<BurnWindow>,
}

impl Default for BurnPolicy {
    fn default() -> Self {
        Self::sre_workbook()
    }
}

impl BurnPolicy {
    /// The workbook's policy for a 30-day SLO: page on 2% of the budget in 1 h (5 min
    /// short window), page on 5% in 6 h (30 min), ticket on 10% in 3 d (6 h).
    pub fn sre_workbook() -> Self {
        const HOUR: f64 = 3600.0;
        let rule = |severity: &str, budget: f64, long: f64, short: f64| BurnWindow {
            severity: severity.to_string(),
            long_window_secs: long,
            short_window_secs: short,
            factor: factor_for(budget, THIRTY_DAYS_SECS, long),
        };
        BurnPolicy {
            period_secs: THIRTY_DAYS_SECS,
            windows: vec![
                rule("page", 0.02, HOUR, 5.0 * 60.0),
                rule("page", 0.05, 6.0 * HOUR, 30.0 * 60.0),
                rule("ticket", 0.10, 72.0 * HOUR, 6.0 * HOUR),
            ],
        }
    }

    /// The same rules over a canary's lifetime (see the module docs): windows times
    /// `min(1, lifetime / longest long window)`, at least one interval; same factors,
    /// same period.
    pub fn scaled_to(&self, lifetime_secs: f64, interval_secs: f64) -> Result<Self, StatsError> {
        check_positive("lifetime", lifetime_secs)?;
        check_positive("interval", interval_secs)?;
        self.check()?;
        let longest = self
            .windows
            .iter()
            .map(|w| w.long_window_secs)
            .fold(0.0, f64::max);
        let scale = if longest > 0.0 {
            (lifetime_secs / longest).min(1.0)
        } else {
            1.0
        };
        let windows = self
            .windows
            .iter()
            .map(|w| BurnWindow {
                long_window_secs: (w.long_window_secs * scale).max(interval_secs),
                short_window_secs: (w.short_window_secs * scale).max(interval_secs),
                ..w.clone()
            })
            .collect();
        Ok(BurnPolicy {
            period_secs: self.period_secs,
            windows,
        })
    }

    fn check(&self) -> Result<(), StatsError> {
        check_positive("burn policy period", self.period_secs)?;
        for w in &self.windows {
            check_positive(
                &format!("{} rule long window", w.severity),
                w.long_window_secs,
            )?;
            check_positive(
                &format!("{} rule short window", w.severity),
                w.short_window_secs,
            )?;
            if !(w.factor >= 0.0 && w.factor.is_finite()) {
                return Err(StatsError::Invalid(format!(
                    "{} rule factor {} is not a non-negative number",
                    w.severity, w.factor
                )));
            }
        }
        Ok(())
    }

    /// Evaluates every rule on the canary's per-interval counts (oldest first).
    /// `traffic_share` is the canary's fraction of the service's requests, in (0, 1].
    pub fn evaluate(
        &self,
        series: &[Counts],
        interval_secs: f64,
        slo_target: f64,
        traffic_share: f64,
    ) -> Result<BurnEvaluation, StatsError> {
        check_positive("interval", interval_secs)?;
        check_slo(slo_target)?;
        self.check()?;
        if !(traffic_share > 0.0 && traffic_share <= 1.0) {
            return Err(StatsError::Invalid(format!(
                "traffic share {traffic_share} is not in (0, 1]"
            )));
        }
        for (i, c) in series.iter().enumerate() {
            c.validate(&format!("interval {i} of the burn series"))?;
        }
        let last = |n: usize| -> Counts {
            series[series.len().saturating_sub(n)..]
                .iter()
                .fold(Counts::default(), |acc, c| Counts {
                    requests: acc.requests.saturating_add(c.requests),
                    errors: acc.errors.saturating_add(c.errors),
                })
        };
        let burn_of = |c: Counts| c.ratio().map(|r| r / (1.0 - slo_target));
        let intervals = |secs: f64| ((secs / interval_secs).round() as usize).max(1);

        let windows: Vec<WindowBurn> = self
            .windows
            .iter()
            .map(|w| {
                let long_intervals = intervals(w.long_window_secs).min(series.len());
                let short_intervals = intervals(w.short_window_secs).min(series.len());
                let long_burn = burn_of(last(long_intervals));
                let short_burn = burn_of(last(short_intervals));
                let fires = matches!((long_burn, short_burn),
                    (Some(l), Some(s)) if l > w.factor && s > w.factor);
                WindowBurn {
                    severity: w.severity.clone(),
                    factor: w.factor,
                    long_window_secs: w.long_window_secs,
                    short_window_secs: w.short_window_secs,
                    long_intervals,
                    short_intervals,
                    long_burn,
                    short_burn,
                    fires,
                }
            })
            .collect();

        let all = last(series.len());
        let elapsed_secs = series.len() as f64 * interval_secs;
        let burn = burn_of(all);
        let budget_consumed =
            burn.map_or(0.0, |b| b * traffic_share * elapsed_secs / self.period_secs);
        Ok(BurnEvaluation {
            slo_target,
            traffic_share,
            period_secs: self.period_secs,
            elapsed_secs,
            requests: all.requests,
            errors: all.errors,
            burn_rate: burn,
            budget_consumed,
            budget_exhausted_in_secs: burn.filter(|b| *b > 0.0).map(|b| self.period_secs / b),
            firing: windows.iter().find(|w| w.fires).map(|w| w.severity.clone()),
            windows,
        })
    }
}

/// One rule's outcome on the canary's series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowBurn {
    pub severity: String,
    #[serde(with = "crate::stats::nonfinite")]
    pub factor: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub long_window_secs: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub short_window_secs: f64,
    /// Intervals the long window covered (fewer than planned while the canary is young).
    pub long_intervals: usize,
    pub short_intervals: usize,
    /// `None` when the window saw no requests.
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub long_burn: Option<f64>,
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub short_burn: Option<f64>,
    /// Both burn rates above the factor.
    pub fires: bool,
}

/// Burn of the canary's error budget: every rule, and the canary's own consumption.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurnEvaluation {
    #[serde(with = "crate::stats::nonfinite")]
    pub slo_target: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub traffic_share: f64,
    #[serde(with = "crate::stats::nonfinite")]
    pub period_secs: f64,
    /// Intervals seen times the interval length.
    #[serde(with = "crate::stats::nonfinite")]
    pub elapsed_secs: f64,
    pub requests: u64,
    pub errors: u64,
    /// Burn rate over the whole series; `None` without requests.
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub burn_rate: Option<f64>,
    /// Fraction of the period's error budget the canary's errors spent, given its share.
    #[serde(with = "crate::stats::nonfinite")]
    pub budget_consumed: f64,
    /// At this burn rate with all the traffic, the whole period's budget lasts this long.
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub budget_exhausted_in_secs: Option<f64>,
    pub windows: Vec<WindowBurn>,
    /// Severity of the first (most urgent) rule that fires.
    pub firing: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_windows_keep_order_and_floor() {
        let p = BurnPolicy::sre_workbook().scaled_to(600.0, 30.0).unwrap();
        let longs: Vec<f64> = p.windows.iter().map(|w| w.long_window_secs).collect();
        assert!((longs[2] - 600.0).abs() < 1e-9);
        assert!((longs[1] - 50.0).abs() < 1e-9);
        assert_eq!(longs[0], 30.0);
        assert!(p.windows.iter().all(|w| w.short_window_secs >= 30.0));
    }

    #[test]
    fn long_canary_keeps_workbook_windows() {
        let w = BurnPolicy::sre_workbook();
        assert_eq!(w.scaled_to(30.0 * 86400.0, 60.0).unwrap(), w);
    }
}
