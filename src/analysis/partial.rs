//! Partial windows: what one replica received of one interval of an analysis.
//!
//! Spans for one analysis may reach any replica. Each replica keeps what it received per
//! watched scope and, at every interval boundary, writes it down as a [`Partial`]; the
//! replica that judges the interval merges the partials of every replica. Histograms and
//! counts are mergeable exactly, so the merged data is what one replica would have
//! counted from the same spans.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SourceError;
use crate::judge::MetricData;

/// One replica's share of an interval: each OTLP metric's data, and why a metric may be
/// short (a watch that began after the interval did).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partial {
    pub data: BTreeMap<String, MetricData>,
    pub errors: Vec<SourceError>,
}

impl Partial {
    /// Adds `other` (another replica's share, or a later one): data merges per metric,
    /// errors are kept once each.
    pub fn merge(&mut self, other: Partial) {
        for (name, d) in other.data {
            match self.data.get_mut(&name) {
                Some(mine) => mine.merge(&d),
                None => {
                    self.data.insert(name, d);
                }
            }
        }
        for e in other.errors {
            if !self.errors.contains(&e) {
                self.errors.push(e);
            }
        }
    }

    /// The partials merged into one, in the order given.
    pub fn merged(parts: impl IntoIterator<Item = Partial>) -> Partial {
        let mut all = Partial::default();
        for p in parts {
            all.merge(p);
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::histogram::LogHistogram;
    use crate::stats::proportions::Counts;

    fn counts(requests: u64, errors: u64) -> MetricData {
        MetricData::Counts {
            baseline: Counts { requests, errors },
            canary: Counts {
                requests: requests * 2,
                errors,
            },
        }
    }

    fn latency(values: &[f64]) -> MetricData {
        let mut h = LogHistogram::default();
        for v in values {
            h.record(*v);
        }
        MetricData::Histograms {
            baseline: crate::judge::data::HistogramSide {
                histogram: h.clone(),
            },
            canary: crate::judge::data::HistogramSide { histogram: h },
        }
    }

    /// Three replicas' shares merge into what one replica would have counted from all
    /// the spans, whatever the order.
    #[test]
    fn shares_merge_into_what_one_replica_would_have_counted() {
        let share = |r: u64, e: u64, lat: &[f64]| Partial {
            data: [
                ("errors".to_string(), counts(r, e)),
                ("latency".to_string(), latency(lat)),
            ]
            .into(),
            errors: vec![],
        };
        let a = share(10, 1, &[0.01, 0.02]);
        let b = share(20, 0, &[0.5]);
        let c = share(5, 5, &[3.0, 0.02, 0.02]);
        let whole = share(35, 6, &[0.01, 0.02, 0.5, 3.0, 0.02, 0.02]);
        assert_eq!(
            Partial::merged([a.clone(), b.clone(), c.clone()]).data,
            whole.data
        );
        assert_eq!(Partial::merged([c, a, b]).data, whole.data);
    }

    #[test]
    fn a_reason_given_by_several_replicas_is_kept_once() {
        let e = SourceError {
            metric: "latency".into(),
            reason: "late watch".into(),
        };
        let p = Partial {
            data: BTreeMap::new(),
            errors: vec![e.clone()],
        };
        let merged = Partial::merged([p.clone(), p, Partial::default()]);
        assert_eq!(merged.errors, vec![e]);
    }
}
