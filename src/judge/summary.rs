//! Descriptive numbers for one side of a metric, shown next to every test result so a
//! person can see what the test saw.

use serde::{Deserialize, Serialize};

use crate::stats::{LogHistogram, Sorted, proportions::Counts};

/// What one version's data looked like. Fields that do not apply to the data's shape
/// are left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Summary {
    /// Observations (samples, histogram) or requests (counts).
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub error_ratio: Option<f64>,
    /// NaN values removed or replaced before testing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nan: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub mean: Option<f64>,
    /// Sample standard deviation (n - 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub std: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub median: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub p90: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(default, with = "crate::stats::nonfinite::option")]
    pub p99: Option<f64>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The q-quantile of a sorted sample, interpolating linearly between order statistics
/// (the definition NumPy and R use by default).
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

impl Summary {
    pub fn of_samples(sample: &Sorted, nan: usize) -> Summary {
        let v = sample.as_slice();
        let n = v.len();
        let (mean, std) = mean_std(v);
        Summary {
            count: n as u64,
            nan,
            min: v.first().copied(),
            max: v.last().copied(),
            mean,
            std,
            median: quantile(v, 0.5),
            p90: quantile(v, 0.9),
            p99: quantile(v, 0.99),
            ..Summary::default()
        }
    }

    pub fn of_counts(c: Counts) -> Summary {
        Summary {
            count: c.requests,
            errors: Some(c.errors),
            error_ratio: (c.requests > 0).then(|| c.errors as f64 / c.requests as f64),
            ..Summary::default()
        }
    }

    pub fn of_histogram(h: &LogHistogram) -> Summary {
        let count = h.count();
        Summary {
            count,
            min: h.quantile(0.0),
            max: h.quantile(1.0),
            mean: (count > 0).then(|| h.sum() / count as f64),
            median: h.quantile(0.5),
            p90: h.quantile(0.9),
            p99: h.quantile(0.99),
            ..Summary::default()
        }
    }
}

/// Mean and sample standard deviation by Welford's update, stable for large samples.
fn mean_std(v: &[f64]) -> (Option<f64>, Option<f64>) {
    if v.is_empty() {
        return (None, None);
    }
    let mut mean = 0.0;
    let mut m2 = 0.0;
    for (i, &x) in v.iter().enumerate() {
        let delta = x - mean;
        mean += delta / (i + 1) as f64;
        m2 += delta * (x - mean);
    }
    let std = (v.len() > 1).then(|| (m2 / (v.len() - 1) as f64).sqrt());
    (Some(mean), std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_survive_a_json_round_trip() {
        // The store keeps judgments as JSON: every field left out must read back.
        let counts = Summary::of_counts(Counts {
            requests: 10,
            errors: 1,
        });
        let text = serde_json::to_string(&counts).unwrap();
        assert_eq!(serde_json::from_str::<Summary>(&text).unwrap(), counts);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // numpy.quantile([1, 2, 3, 4], [0.5, 0.9, 0.99]) = 2.5, 3.7, 3.97
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert!((quantile(&v, 0.9).unwrap_or(0.0) - 3.7).abs() < 1e-12);
        assert!((quantile(&v, 0.99).unwrap_or(0.0) - 3.97).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn std_is_the_sample_std() {
        // numpy.std([2, 4, 4, 4, 5, 5, 7, 9], ddof=1) = 2.138089935299395
        let (mean, std) = mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(mean, Some(5.0));
        assert!((std.unwrap_or(0.0) - 2.138089935299395).abs() < 1e-12);
    }
}
