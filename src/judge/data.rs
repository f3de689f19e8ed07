//! What the judge is given: per metric, baseline and canary data of one of three shapes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::stats::{LogHistogram, proportions::Counts};

/// A metric's data for both versions. In JSON the shape tells which:
/// `{"baseline": [1.2, 3.4, null], "canary": [...]}` (samples; `null` is NaN),
/// `{"baseline": {"requests": 1000, "errors": 3}, "canary": {...}}` (counts), or
/// `{"baseline": {"histogram": {...}}, "canary": {"histogram": {...}}}` (histograms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum MetricData {
    Samples {
        #[serde(with = "nan_as_null")]
        #[schema(value_type = Vec<Option<f64>>)]
        baseline: Vec<f64>,
        #[serde(with = "nan_as_null")]
        #[schema(value_type = Vec<Option<f64>>)]
        canary: Vec<f64>,
    },
    Counts {
        baseline: Counts,
        canary: Counts,
    },
    Histograms {
        baseline: HistogramSide,
        canary: HistogramSide,
    },
}

/// One side of a histogram metric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HistogramSide {
    #[schema(value_type = Object)]
    pub histogram: LogHistogram,
}

impl MetricData {
    /// Adds `other` (what arrived later) to `self`: samples concatenate, histograms
    /// merge, counts add. Data of another shape replaces `self`.
    pub fn merge(&mut self, other: &MetricData) {
        match (self, other) {
            (
                MetricData::Samples { baseline, canary },
                MetricData::Samples {
                    baseline: b,
                    canary: c,
                },
            ) => {
                baseline.extend_from_slice(b);
                canary.extend_from_slice(c);
            }
            (
                MetricData::Counts { baseline, canary },
                MetricData::Counts {
                    baseline: b,
                    canary: c,
                },
            ) => {
                // Saturating: a count past 2^64 stays at the ceiling instead of wrapping.
                baseline.requests = baseline.requests.saturating_add(b.requests);
                baseline.errors = baseline.errors.saturating_add(b.errors);
                canary.requests = canary.requests.saturating_add(c.requests);
                canary.errors = canary.errors.saturating_add(c.errors);
            }
            (
                MetricData::Histograms { baseline, canary },
                MetricData::Histograms {
                    baseline: b,
                    canary: c,
                },
            ) => {
                baseline.histogram.merge(&b.histogram);
                canary.histogram.merge(&c.histogram);
            }
            (this, other) => *this = other.clone(),
        }
    }

    pub fn shape(&self) -> &'static str {
        match self {
            MetricData::Samples { .. } => "samples",
            MetricData::Counts { .. } => "counts",
            MetricData::Histograms { .. } => "histograms",
        }
    }
}

/// JSON has no NaN: samples carry it as `null` both ways.
mod nan_as_null {
    use super::*;

    pub fn serialize<S: Serializer>(values: &[f64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            values
                .iter()
                .map(|v| if v.is_nan() { None } else { Some(*v) }),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let values: Vec<Option<f64>> = Vec::deserialize(d)?;
        Ok(values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
    }
}
