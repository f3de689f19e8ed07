//! What query results mean for one scope: counts, buckets, samples, or nodata.
//!
//! The rules, each explicit because a query source that crashes or guesses on odd data
//! is worse than none:
//! - no series at all: `Nodata` (the scope saw no traffic, or the labels match nothing);
//!   except for `errors` of a counts query, where no series means no errors, because
//!   `sum(increase(x{code=~"5.."}[w]))` has no series when no 5xx ever happened;
//! - `NaN` or `±Inf` where a count belongs: `Nodata`, saying which value;
//! - `NaN`/`±Inf` points of a series: kept as `NaN`, so the model's `nan` strategy decides;
//! - a result of the wrong type (a matrix where an instant vector belongs, a string),
//!   several series where one belongs, a bucket without `le`, a negative count: an error
//!   that says what to change in the query. Those are query bugs, not missing data.
//!
//! Invariant: pure; never panics on any response.

use std::collections::BTreeMap;

use super::buckets::Buckets;
use super::client::{QueryData, QueryResponse, Series};
use crate::stats::proportions::Counts;

/// One scope's data for one metric.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// Nothing to judge, and why.
    Nodata(String),
    /// Points of a range query (`NaN` where the query produced no number).
    Samples(Vec<f64>),
    /// Requests and errors in the window.
    Counts(Counts),
    /// Latency per `le` bucket in the window.
    Buckets(Buckets),
}

impl Observation {
    pub fn is_nodata(&self) -> bool {
        matches!(self, Observation::Nodata(_))
    }
}

/// An answer that no reading of the data can turn into an observation. The message says
/// what was wrong and what to change in the query.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

/// Result of reading one query: the observation plus notes worth showing a person.
pub(super) type Read = Result<(Observation, Vec<String>), ShapeError>;

/// One number from an instant query: `None` when there is no series.
fn single_value(response: &QueryResponse, what: &str) -> Result<Option<f64>, ShapeError> {
    match &response.data {
        QueryData::Scalar(p) => Ok(Some(p.v)),
        QueryData::Vector(series) => match series.as_slice() {
            [] => Ok(None),
            [one] => Ok(one.points.first().map(|p| p.v)),
            many => Err(ShapeError(format!(
                "`{what}` returned {} series where one number belongs ({}); aggregate it, e.g. with sum(...)",
                many.len(),
                label_sets(many)
            ))),
        },
        other => Err(mismatch(what, "an instant vector or a scalar", other)),
    }
}

fn mismatch(what: &str, expected: &str, got: &QueryData) -> ShapeError {
    let hint = match got {
        QueryData::Matrix(_) => {
            ": the query ends in a range selector `[...]`; wrap it in increase() or rate()"
        }
        _ => "",
    };
    ShapeError(format!(
        "`{what}` returned a {} where {expected} belongs{hint}",
        got.type_name()
    ))
}

fn label_sets(series: &[Series]) -> String {
    let shown: Vec<String> = series.iter().take(3).map(|s| show(&s.labels)).collect();
    let more = series.len().saturating_sub(3);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn show(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// A count: rounded to an integer (increase() extrapolates), or nodata when not finite.
fn count(value: f64, what: &str) -> Result<Result<u64, String>, ShapeError> {
    if value.is_nan() {
        return Ok(Err(format!("`{what}` is NaN")));
    }
    if value.is_infinite() {
        return Ok(Err(format!("`{what}` is {value}")));
    }
    if value < 0.0 {
        return Err(ShapeError(format!(
            "`{what}` is {value}, and a count cannot be negative; take increase() of a counter"
        )));
    }
    Ok(Ok(value.round() as u64))
}

/// Counts from the `requests` and `errors` instant queries of one scope.
pub(super) fn counts(requests: &QueryResponse, errors: &QueryResponse) -> Read {
    let mut notes = Vec::new();
    let Some(req) = single_value(requests, "requests")? else {
        return Ok((
            Observation::Nodata(
                "`requests` returned no series: no traffic matched the scope in the window".into(),
            ),
            notes,
        ));
    };
    let requests = match count(req, "requests")? {
        Ok(n) => n,
        Err(why) => return Ok((Observation::Nodata(why), notes)),
    };
    let errors = match single_value(errors, "errors")? {
        None => {
            notes.push("`errors` returned no series: counted as 0 errors".into());
            0
        }
        Some(v) => match count(v, "errors")? {
            Ok(n) => n,
            Err(why) => return Ok((Observation::Nodata(why), notes)),
        },
    };
    if errors > requests {
        return Err(ShapeError(format!(
            "`errors` ({errors}) exceeds `requests` ({requests}); the errors query must select a subset of the requests query"
        )));
    }
    Ok((Observation::Counts(Counts { requests, errors }), notes))
}

/// Buckets from a histogram query: one series per `le`, differing in nothing else.
pub(super) fn buckets(response: &QueryResponse) -> Read {
    let series = match &response.data {
        QueryData::Vector(series) => series,
        other => {
            return Err(mismatch(
                "query",
                "an instant vector with one series per `le`",
                other,
            ));
        }
    };
    if series.is_empty() {
        return Ok((
            Observation::Nodata(
                "the histogram query returned no series: no traffic matched the scope in the window"
                    .into(),
            ),
            Vec::new(),
        ));
    }
    let mut pairs: Vec<(&str, f64)> = Vec::with_capacity(series.len());
    let mut others: Option<BTreeMap<&str, &str>> = None;
    for s in series {
        let le = s.labels.get("le").ok_or_else(|| {
            ShapeError(format!(
                "series {} has no `le` label; a histogram query returns `sum by (le) (increase(x_bucket[...]))`",
                show(&s.labels)
            ))
        })?;
        let rest: BTreeMap<&str, &str> = s
            .labels
            .iter()
            .filter(|(k, _)| *k != "le" && *k != "__name__")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        match &others {
            None => others = Some(rest),
            Some(first) if *first != rest => {
                return Err(ShapeError(format!(
                    "the histogram query returned series that differ by more than `le` ({}); aggregate with `sum by (le) (...)`",
                    label_sets(series)
                )));
            }
            Some(_) => {}
        }
        let Some(point) = s.points.first() else {
            continue;
        };
        if !point.v.is_finite() {
            return Ok((
                Observation::Nodata(format!("bucket le=\"{le}\" is {}", point.v)),
                Vec::new(),
            ));
        }
        if point.v < 0.0 {
            return Err(ShapeError(format!(
                "bucket le=\"{le}\" is {}, and a count cannot be negative; take increase() of the `_bucket` counters",
                point.v
            )));
        }
        pairs.push((le.as_str(), point.v));
    }
    let buckets = Buckets::from_cumulative(pairs).map_err(|e| ShapeError(e.to_string()))?;
    Ok((Observation::Buckets(buckets), Vec::new()))
}

/// Samples from a series (range) query: the points of its one series.
pub(super) fn samples(response: &QueryResponse) -> Read {
    let series = match &response.data {
        QueryData::Matrix(series) => series,
        other => return Err(mismatch("query", "a range vector (matrix)", other)),
    };
    let one = match series.as_slice() {
        [] => {
            return Ok((
                Observation::Nodata(
                    "the series query returned no series: nothing matched the scope in the window"
                        .into(),
                ),
                Vec::new(),
            ));
        }
        [one] => one,
        many => {
            return Err(ShapeError(format!(
                "the series query returned {} series where one belongs ({}); aggregate it, e.g. with sum(...)",
                many.len(),
                label_sets(many)
            )));
        }
    };
    if one.points.is_empty() {
        return Ok((
            Observation::Nodata("the series query returned a series without points".into()),
            Vec::new(),
        ));
    }
    let mut notes = Vec::new();
    let infinite = one.points.iter().filter(|p| p.v.is_infinite()).count();
    if infinite > 0 {
        notes.push(format!(
            "{infinite} point(s) were ±Inf (a division by zero?) and count as NaN"
        ));
    }
    let values = one
        .points
        .iter()
        .map(|p| if p.v.is_finite() { p.v } else { f64::NAN })
        .collect();
    Ok((Observation::Samples(values), notes))
}

#[cfg(test)]
mod tests {
    use super::super::client::Point;
    use super::*;

    fn series(labels: &[(&str, &str)], values: &[f64]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: values
                .iter()
                .enumerate()
                .map(|(i, &v)| Point { t: i as f64, v })
                .collect(),
        }
    }

    fn vector(s: Vec<Series>) -> QueryResponse {
        QueryResponse {
            data: QueryData::Vector(s),
            warnings: vec![],
            infos: vec![],
        }
    }

    fn matrix(s: Vec<Series>) -> QueryResponse {
        QueryResponse {
            data: QueryData::Matrix(s),
            warnings: vec![],
            infos: vec![],
        }
    }

    #[test]
    fn counts_round_and_missing_errors_are_zero() {
        let (o, notes) = counts(&vector(vec![series(&[], &[1000.4])]), &vector(vec![])).unwrap();
        assert_eq!(
            o,
            Observation::Counts(Counts {
                requests: 1000,
                errors: 0
            })
        );
        assert_eq!(notes.len(), 1);
        let (o, _) = counts(&vector(vec![]), &vector(vec![series(&[], &[3.0])])).unwrap();
        assert!(o.is_nodata());
    }

    #[test]
    fn non_finite_counts_are_nodata_and_bad_shapes_are_errors() {
        for v in [f64::NAN, f64::INFINITY] {
            let (o, _) = counts(&vector(vec![series(&[], &[v])]), &vector(vec![])).unwrap();
            assert!(o.is_nodata(), "{v}");
        }
        let e = counts(&matrix(vec![series(&[], &[1.0])]), &vector(vec![])).unwrap_err();
        assert!(e.0.contains("range selector"), "{e}");
        let two = vector(vec![
            series(&[("a", "1")], &[1.0]),
            series(&[("a", "2")], &[1.0]),
        ]);
        let e = counts(&two, &vector(vec![])).unwrap_err();
        assert!(e.0.contains("2 series"), "{e}");
        let e = counts(
            &vector(vec![series(&[], &[5.0])]),
            &vector(vec![series(&[], &[9.0])]),
        )
        .unwrap_err();
        assert!(e.0.contains("exceeds"), "{e}");
        let e = counts(&vector(vec![series(&[], &[-1.0])]), &vector(vec![])).unwrap_err();
        assert!(e.0.contains("negative"), "{e}");
    }

    #[test]
    fn buckets_need_le_and_one_label_set() {
        let ok = vector(vec![
            series(&[("le", "1")], &[2.0]),
            series(&[("le", "+Inf")], &[3.0]),
        ]);
        let (o, _) = buckets(&ok).unwrap();
        let Observation::Buckets(b) = o else { panic!() };
        assert_eq!(b.counts(), &[2, 1]);
        let no_le = vector(vec![series(&[("x", "1")], &[2.0])]);
        assert!(buckets(&no_le).unwrap_err().0.contains("no `le`"));
        let split = vector(vec![
            series(&[("le", "1"), ("pod", "a")], &[2.0]),
            series(&[("le", "1"), ("pod", "b")], &[2.0]),
        ]);
        assert!(buckets(&split).unwrap_err().0.contains("sum by (le)"));
        let nan = vector(vec![
            series(&[("le", "1")], &[f64::NAN]),
            series(&[("le", "+Inf")], &[3.0]),
        ]);
        assert!(buckets(&nan).unwrap().0.is_nodata());
        assert!(buckets(&vector(vec![])).unwrap().0.is_nodata());
    }

    #[test]
    fn series_points_keep_nan_and_turn_inf_into_nan() {
        let (o, notes) =
            samples(&matrix(vec![series(&[], &[1.0, f64::INFINITY, f64::NAN])])).unwrap();
        let Observation::Samples(v) = o else { panic!() };
        assert_eq!(v[0], 1.0);
        assert!(v[1].is_nan() && v[2].is_nan());
        assert_eq!(notes.len(), 1);
        assert!(samples(&vector(vec![])).is_err());
        assert!(samples(&matrix(vec![])).unwrap().0.is_nodata());
    }
}
