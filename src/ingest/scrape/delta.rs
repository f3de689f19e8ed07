//! What happened between two scrapes of one target: counter increases and per-bucket
//! histogram increases, for the series a judge asked about.
//!
//! Pure: a [`Snapshot`] is selected from one parsed scrape, and [`deltas`] compares two
//! snapshots. No clock, no I/O; the same two scrapes always give the same deltas.
//!
//! Rules (Prometheus' counter semantics, made explicit):
//! - a counter that went down was reset (the process restarted): the increase is the
//!   current value, as `increase()` in PromQL counts it;
//! - an OpenMetrics `_created` that changed also means a reset, even if the new value
//!   happens to be above the old one;
//! - a series present now but not before is new, and counted from zero: its whole value
//!   is the increase. A target exposes a labelled counter from its first increment, so a
//!   series that appears between two scrapes (a canary's first `code="500"`) started
//!   after the previous scrape. PromQL's `rate()` would drop that first increment, which
//!   hides exactly the errors a canary judge is looking for;
//! - a series present before but not now has vanished: it is listed, not counted;
//! - a histogram is reset when any cumulative bucket or its count went down, its
//!   `_created` changed, or its bucket bounds changed; its increases are then the current
//!   cumulative counts;
//! - cumulative bucket increases become per-bucket counts (bucket `i` holds the
//!   observations above bound `i-1` and at most bound `i`), which is what the rank test on
//!   two histograms takes;
//! - a series whose numbers cannot make a delta (NaN, no `+Inf` bucket, buckets that are
//!   not cumulative integers) is listed in `skipped` with the reason, never guessed at.

use std::collections::BTreeMap;
use std::fmt;

use super::exposition::{Exposition, Family, Format, MetricType, Sample, Suffix};

pub use crate::model::scrape::{MatchOp, Matcher, Selector, SelectorKind, pattern};

/// Whether `sample` is one of the series `selector` follows.
fn selects(selector: &Selector, sample: &Sample<'_>) -> bool {
    selector.matches(|name| sample.label(name))
}

/// One series: metric name and its labels, sorted by name (histograms without `le`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Series {
    pub metric: String,
    pub labels: Vec<(String, String)>,
}

impl Series {
    fn of(metric: &str, sample: &Sample<'_>, drop: Option<&str>) -> Series {
        let mut labels: Vec<(String, String)> = sample
            .labels
            .iter()
            .filter(|l| Some(l.name) != drop)
            .map(|l| (l.name.to_string(), l.value.to_string()))
            .collect();
        labels.sort();
        Series {
            metric: metric.to_string(),
            labels,
        }
    }
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.metric)?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{k}={v:?}")?;
        }
        f.write_str("}")
    }
}

/// A counter's reading in one scrape.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterPoint {
    pub value: f64,
    /// OpenMetrics `_created` (seconds since the epoch), when exposed.
    pub created: Option<f64>,
}

/// A classic histogram's reading in one scrape.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct HistogramPoint {
    /// (upper bound, cumulative count), ascending by bound.
    pub buckets: Vec<(f64, f64)>,
    pub sum: Option<f64>,
    pub count: Option<f64>,
    pub created: Option<f64>,
}

/// The selected series of one scrape, owned (independent of the body it came from).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Snapshot {
    pub counters: BTreeMap<Series, CounterPoint>,
    pub histograms: BTreeMap<Series, HistogramPoint>,
}

/// Why a scrape's families could not be selected from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("`{metric}` is a {actual} (line {line}), not a {wanted}")]
    WrongType {
        metric: String,
        wanted: &'static str,
        actual: &'static str,
        line: usize,
    },
    #[error("series {series} appears twice (line {line})")]
    Duplicate { series: String, line: usize },
}

impl Snapshot {
    /// Picks the series `selectors` ask for out of one parsed scrape. A selector that
    /// matches nothing is not an error: the series may not exist yet.
    pub fn select(
        exposition: &Exposition<'_>,
        selectors: &[Selector],
    ) -> Result<Snapshot, SelectError> {
        let mut snap = Snapshot::default();
        for family in &exposition.families {
            for selector in selectors {
                match selector.kind {
                    SelectorKind::Counter => {
                        select_counter(&mut snap, exposition.format, family, selector)?
                    }
                    SelectorKind::Histogram => select_histogram(&mut snap, family, selector)?,
                }
            }
        }
        for point in snap.histograms.values_mut() {
            point.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
        Ok(snap)
    }
}

fn type_error(metric: &str, wanted: &'static str, family: &Family<'_>) -> SelectError {
    SelectError::WrongType {
        metric: metric.to_string(),
        wanted,
        actual: family.metric_type.as_str(),
        line: family.line,
    }
}

fn select_counter(
    snap: &mut Snapshot,
    format: Format,
    family: &Family<'_>,
    selector: &Selector,
) -> Result<(), SelectError> {
    let metric = selector.metric.as_str();
    let (total, created) = match (format, family.metric_type) {
        // OpenMetrics counter `x` exposes `x_total` and `x_created`.
        (Format::OpenMetrics, MetricType::Counter) => {
            if metric.strip_suffix("_total") != Some(family.name) {
                return Ok(());
            }
            (Suffix::Total, Some(Suffix::Created))
        }
        (_, MetricType::Counter | MetricType::Unknown) => {
            if family.name != metric {
                return Ok(());
            }
            (Suffix::None, None)
        }
        _ => {
            if family.samples.iter().any(|s| s.name == metric) {
                return Err(type_error(metric, "counter", family));
            }
            return Ok(());
        }
    };
    let mut created_by_series: BTreeMap<Series, f64> = BTreeMap::new();
    for sample in &family.samples {
        if !selects(selector, sample) {
            continue;
        }
        let suffix = family.suffix_of(sample);
        let series = Series::of(metric, sample, None);
        if suffix == total {
            let point = CounterPoint {
                value: sample.value,
                created: None,
            };
            if snap.counters.insert(series.clone(), point).is_some() {
                return Err(SelectError::Duplicate {
                    series: series.to_string(),
                    line: sample.line,
                });
            }
        } else if Some(suffix) == created {
            created_by_series.insert(series, sample.value);
        }
    }
    for (series, created) in created_by_series {
        if let Some(point) = snap.counters.get_mut(&series) {
            point.created = Some(created);
        }
    }
    Ok(())
}

fn select_histogram(
    snap: &mut Snapshot,
    family: &Family<'_>,
    selector: &Selector,
) -> Result<(), SelectError> {
    let metric = selector.metric.as_str();
    if family.name != metric {
        return Ok(());
    }
    if family.metric_type != MetricType::Histogram {
        return Err(type_error(metric, "histogram", family));
    }
    for sample in &family.samples {
        if !selects(selector, sample) {
            continue;
        }
        let suffix = family.suffix_of(sample);
        let drop = (suffix == Suffix::Bucket).then_some("le");
        let series = Series::of(metric, sample, drop);
        let point = snap.histograms.entry(series).or_default();
        let duplicate = || SelectError::Duplicate {
            series: Series::of(sample.name, sample, None).to_string(),
            line: sample.line,
        };
        let repeated = match suffix {
            Suffix::Bucket => {
                // The parser guarantees a numeric `le` on every histogram bucket.
                let le = sample
                    .label("le")
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(f64::NAN);
                let seen = point.buckets.iter().any(|b| b.0 == le);
                point.buckets.push((le, sample.value));
                seen
            }
            Suffix::Sum => point.sum.replace(sample.value).is_some(),
            Suffix::Count => point.count.replace(sample.value).is_some(),
            Suffix::Created => point.created.replace(sample.value).is_some(),
            _ => false,
        };
        if repeated {
            return Err(duplicate());
        }
    }
    Ok(())
}

/// How a series relates to the previous scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Seen before and not reset: the increase is current minus previous.
    Continued,
    /// Reset since the previous scrape: the increase is the current reading.
    Reset,
    /// Not in the previous scrape: counted from zero.
    New,
}

/// A counter's increase between two scrapes.
#[derive(Clone, Debug, PartialEq)]
pub struct CounterDelta {
    pub series: Series,
    pub increase: f64,
    pub change: Change,
}

/// A histogram's increase between two scrapes, per bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramDelta {
    pub series: Series,
    /// Upper bounds, ascending, ending with `+Inf`.
    pub upper_bounds: Vec<f64>,
    /// Observations per bucket (not cumulative), aligned with `upper_bounds`.
    pub counts: Vec<u64>,
    /// Increase of `_sum`, when the histogram exposes it.
    pub sum: Option<f64>,
    pub change: Change,
}

impl HistogramDelta {
    /// Total observations in the interval.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

/// A series that could not make a delta, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Skipped {
    pub series: Series,
    pub reason: String,
}

/// Everything that changed between two scrapes, series in sorted order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Deltas {
    pub counters: Vec<CounterDelta>,
    pub histograms: Vec<HistogramDelta>,
    /// Series in the previous scrape and not in the current one.
    pub vanished: Vec<Series>,
    pub skipped: Vec<Skipped>,
}

impl Deltas {
    /// The counter delta for `series`, if any.
    pub fn counter(&self, series: &Series) -> Option<&CounterDelta> {
        self.counters.iter().find(|d| &d.series == series)
    }

    /// The histogram delta for `series`, if any.
    pub fn histogram(&self, series: &Series) -> Option<&HistogramDelta> {
        self.histograms.iter().find(|d| &d.series == series)
    }
}

/// Increases from `previous` to `current` (see the module docs for the rules).
pub fn deltas(previous: &Snapshot, current: &Snapshot) -> Deltas {
    let mut out = Deltas::default();
    for (series, now) in &current.counters {
        let before = previous.counters.get(series);
        match counter_increase(before, now) {
            Ok((increase, change)) => out.counters.push(CounterDelta {
                series: series.clone(),
                increase,
                change,
            }),
            Err(reason) => out.skipped.push(Skipped {
                series: series.clone(),
                reason,
            }),
        }
    }
    for (series, now) in &current.histograms {
        match histogram_increase(series, previous.histograms.get(series), now) {
            Ok(delta) => out.histograms.push(delta),
            Err(reason) => out.skipped.push(Skipped {
                series: series.clone(),
                reason,
            }),
        }
    }
    out.vanished.extend(
        previous
            .counters
            .keys()
            .filter(|s| !current.counters.contains_key(*s))
            .cloned(),
    );
    out.vanished.extend(
        previous
            .histograms
            .keys()
            .filter(|s| !current.histograms.contains_key(*s))
            .cloned(),
    );
    out
}

fn counter_increase(
    before: Option<&CounterPoint>,
    now: &CounterPoint,
) -> Result<(f64, Change), String> {
    if now.value.is_nan() {
        return Err("current value is NaN".into());
    }
    let Some(before) = before else {
        return Ok((now.value, Change::New));
    };
    if before.value.is_nan() {
        return Err("previous value is NaN".into());
    }
    let recreated =
        before.created.is_some() && now.created.is_some() && before.created != now.created;
    if recreated || now.value < before.value {
        Ok((now.value, Change::Reset))
    } else {
        Ok((now.value - before.value, Change::Continued))
    }
}

fn histogram_increase(
    series: &Series,
    before: Option<&HistogramPoint>,
    now: &HistogramPoint,
) -> Result<HistogramDelta, String> {
    check_cumulative(now).map_err(|e| format!("current scrape: {e}"))?;
    let (change, base) = match before {
        None => (Change::New, None),
        Some(b) => {
            check_cumulative(b).map_err(|e| format!("previous scrape: {e}"))?;
            let same_bounds = b.buckets.len() == now.buckets.len()
                && b.buckets.iter().zip(&now.buckets).all(|(x, y)| x.0 == y.0);
            let went_down = b.buckets.iter().zip(&now.buckets).any(|(x, y)| y.1 < x.1)
                || matches!((b.count, now.count), (Some(x), Some(y)) if y < x);
            let recreated =
                b.created.is_some() && now.created.is_some() && b.created != now.created;
            if !same_bounds || went_down || recreated {
                (Change::Reset, None)
            } else {
                (Change::Continued, Some(b))
            }
        }
    };
    let (cumulative, sum): (Vec<f64>, Option<f64>) = match base {
        None => (now.buckets.iter().map(|b| b.1).collect(), now.sum),
        Some(b) => (
            now.buckets
                .iter()
                .zip(&b.buckets)
                .map(|(y, x)| y.1 - x.1)
                .collect(),
            now.sum.zip(b.sum).map(|(y, x)| y - x),
        ),
    };
    let mut counts = Vec::with_capacity(cumulative.len());
    let mut below = 0.0;
    for (&c, bucket) in cumulative.iter().zip(&now.buckets) {
        let n = c - below;
        below = c;
        counts.push(as_count(n).ok_or_else(|| {
            format!(
                "bucket le={} increased by {n}, not a whole number of observations",
                bucket.0
            )
        })?);
    }
    Ok(HistogramDelta {
        series: series.clone(),
        upper_bounds: now.buckets.iter().map(|b| b.0).collect(),
        counts,
        sum,
        change,
    })
}

/// A histogram reading a delta can be made from: `+Inf` last, cumulative counts that are
/// whole, finite and never decrease.
fn check_cumulative(p: &HistogramPoint) -> Result<(), String> {
    match p.buckets.last() {
        Some((le, _)) if *le == f64::INFINITY => {}
        _ => return Err("no +Inf bucket".into()),
    }
    let mut prev = 0.0;
    for &(le, c) in &p.buckets {
        if as_count(c).is_none() {
            return Err(format!("bucket le={le} holds {c}, not a whole count"));
        }
        if c < prev {
            return Err(format!(
                "bucket le={le} ({c}) is below the bucket before it ({prev})"
            ));
        }
        prev = c;
    }
    Ok(())
}

/// `v` as an observation count, if it is a whole number that f64 holds exactly.
fn as_count(v: f64) -> Option<u64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    (v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= EXACT).then_some(v as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::scrape::exposition::parse;

    /// The values of the counters of `text` that `selector` (as a model writes it) picks.
    fn picked(selector: &str, text: &str) -> Vec<f64> {
        let s = crate::model::scrape::selector::parse(selector, SelectorKind::Counter).unwrap();
        let e = parse(text, Format::Text).unwrap();
        let snap = Snapshot::select(&e, &[s]).unwrap();
        snap.counters.values().map(|p| p.value).collect()
    }

    #[test]
    fn patterns_match_whole_values_like_promql() {
        let text = "# TYPE c counter\nc{code=\"200\"} 1\nc{code=\"500\"} 2\nc{code=\"503\"} 4\nc{code=\"5000\"} 8\nc{code=\"5.1\"} 16\n";
        // Series in label order: 5.1, 500, 503.
        assert_eq!(picked(r#"c{code=~"5.."}"#, text), [16.0, 2.0, 4.0]);
        assert_eq!(picked(r#"c{code=~"500|503"}"#, text), [2.0, 4.0]);
        assert_eq!(picked(r#"c{code=~"5\\.1"}"#, text), [16.0]);
        assert_eq!(picked(r#"c{code!~"5..|2.."}"#, text), [8.0]);
        // Equality takes the value literally: `.` is a dot there.
        assert_eq!(picked(r#"c{code="5.."}"#, text), Vec::<f64>::new());
    }

    fn snap(text: &str, selectors: &[Selector]) -> Snapshot {
        Snapshot::select(&parse(text, Format::Text).unwrap(), selectors).unwrap()
    }

    fn hist(buckets: &str) -> String {
        let mut out = String::from("# TYPE h histogram\n");
        for pair in buckets.split(' ') {
            let (le, v) = pair.split_once('=').unwrap();
            out.push_str(&format!("h_bucket{{le=\"{le}\"}} {v}\n"));
        }
        out
    }

    #[test]
    fn matchers_select_with_promql_semantics() {
        let text = "# TYPE c counter\nc{code=\"200\"} 1\nc{code=\"500\"} 2\nc 3\n";
        let s = snap(text, &[Selector::counter("c").without("code", "200")]);
        let picked: Vec<f64> = s.counters.values().map(|p| p.value).collect();
        // `code!="200"` keeps code="500" and the series with no code label at all.
        assert_eq!(picked, [3.0, 2.0]);
        let s = snap(text, &[Selector::counter("c").with("code", "")]);
        assert_eq!(s.counters.len(), 1);
    }

    #[test]
    fn nan_counters_are_skipped_not_guessed() {
        let prev = snap("c 1\n", &[Selector::counter("c")]);
        let cur = snap("c NaN\n", &[Selector::counter("c")]);
        let d = deltas(&prev, &cur);
        assert!(d.counters.is_empty());
        assert_eq!(d.skipped[0].reason, "current value is NaN");
    }

    #[test]
    fn changed_bucket_bounds_mean_a_reset() {
        let sel = [Selector::histogram("h_bucket")];
        let prev = snap(&hist("1=5 +Inf=9"), &sel);
        let cur = snap(&hist("1=6 2=8 +Inf=10"), &sel);
        let d = deltas(&prev, &cur);
        assert_eq!(d.histograms[0].change, Change::Reset);
        assert_eq!(d.histograms[0].counts, [6, 2, 2]);
    }

    #[test]
    fn unusable_histograms_are_skipped_with_the_reason() {
        let sel = [Selector::histogram("h")];
        let none = Snapshot::default();
        let d = deltas(&none, &snap(&hist("1=5 2=9"), &sel));
        assert_eq!(d.skipped[0].reason, "current scrape: no +Inf bucket");
        let d = deltas(&none, &snap(&hist("1=5 +Inf=4"), &sel));
        assert!(
            d.skipped[0].reason.contains("below the bucket before it"),
            "{:?}",
            d.skipped
        );
        let d = deltas(&none, &snap(&hist("1=0.5 +Inf=4"), &sel));
        assert!(
            d.skipped[0].reason.contains("not a whole count"),
            "{:?}",
            d.skipped
        );
        // Observations moved between buckets: no cumulative bucket went down, yet the
        // per-bucket increase would be negative.
        let d = deltas(
            &snap(&hist("1=1 +Inf=5"), &sel),
            &snap(&hist("1=3 +Inf=5"), &sel),
        );
        assert!(
            d.skipped[0].reason.contains("increased by -2"),
            "{:?}",
            d.skipped
        );
    }

    #[test]
    fn buckets_are_ordered_by_bound_whatever_the_input_order() {
        let sel = [Selector::histogram("h")];
        let s = snap(&hist("+Inf=9 0.5=2 10=7"), &sel);
        let p = s.histograms.values().next().unwrap();
        assert_eq!(p.buckets, [(0.5, 2.0), (10.0, 7.0), (f64::INFINITY, 9.0)]);
    }

    #[test]
    fn duplicate_series_in_text_are_refused() {
        let e = parse("c{a=\"1\"} 1\nc{a=\"1\"} 2\n", Format::Text).unwrap();
        let err = Snapshot::select(&e, &[Selector::counter("c")]).unwrap_err();
        assert_eq!(
            err,
            SelectError::Duplicate {
                series: "c{a=\"1\"}".into(),
                line: 2
            }
        );
    }

    #[test]
    fn openmetrics_counters_are_selected_by_their_total_name() {
        let e = parse(
            "# TYPE c counter\nc_total{a=\"1\"} 4\nc_created{a=\"1\"} 100\n# EOF\n",
            Format::OpenMetrics,
        )
        .unwrap();
        let s = Snapshot::select(&e, &[Selector::counter("c_total")]).unwrap();
        let p = s.counters.values().next().unwrap();
        assert_eq!((p.value, p.created), (4.0, Some(100.0)));
        assert!(
            Snapshot::select(&e, &[Selector::counter("c")])
                .unwrap()
                .counters
                .is_empty()
        );
    }
}
