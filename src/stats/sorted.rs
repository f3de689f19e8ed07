//! `Sorted`: a NaN-free sample in ascending order, the input of every rank statistic.
//!
//! Sorting dominates the cost of a rank test on large samples, so it is done once per
//! sample and shared by Mann-Whitney, Hodges-Lehmann and the effect sizes.

use super::StatsError;

/// A non-empty-or-empty sample with no NaN, sorted ascending (`-0.0` and `0.0` compare equal).
#[derive(Clone, Debug, PartialEq)]
pub struct Sorted(Vec<f64>);

impl Sorted {
    /// Sorts `values`; refuses NaN, naming `which` sample and the position.
    pub fn new(values: Vec<f64>, which: &'static str) -> Result<Self, StatsError> {
        if let Some(index) = values.iter().position(|v| v.is_nan()) {
            return Err(StatsError::NaN { which, index });
        }
        let mut values = values;
        values.sort_unstable_by(f64::total_cmp);
        Ok(Sorted(values))
    }

    /// Sorts two samples at once (on two threads when they are large).
    pub fn pair(canary: Vec<f64>, baseline: Vec<f64>) -> Result<(Sorted, Sorted), StatsError> {
        let (c, b) = rayon::join(
            || Sorted::new(canary, "canary"),
            || Sorted::new(baseline, "baseline"),
        );
        Ok((c?, b?))
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_vec(self) -> Vec<f64> {
        self.0
    }
}
