//! The Prometheus query source: a model metric's `source: {prometheus: {pack, query}}`
//! becomes PromQL rendered from each scope, run against a Prometheus-compatible API, and
//! read back as the judge's data shapes.
//!
//! - [`config`]: the `prometheus:` config section.
//! - [`client`]: the HTTP API client (auth, timeouts, retries with back-off, decoding).
//! - [`template`]: the strict `{{ name }}` renderer (escapes per PromQL context).
//! - [`pack`]: query packs (`queries/*.yaml`), the built-in ones, model checks.
//! - [`buckets`]: per-`le` bucket counts, the exact bucket rank test, and the conversion
//!   to the judge's `LogHistogram`.
//! - `observe`: what a result means for a scope (counts, buckets, samples, nodata).
//!
//! Per scope and window, a `counts` query yields requests and errors (error-ratio
//! metrics), a `histogram` query yields per-`le` bucket counts (distribution metrics,
//! judged as whole distributions), a `series` query yields one sample per step.
//! Invariant: whatever Prometheus answers, the source returns data, an explicit nodata
//! with its reason, or an error that names the pack, query and what to change; never a
//! panic, never a silent zero.

pub mod buckets;
mod builtin;
pub mod client;
pub mod config;
mod observe;
pub mod pack;
pub mod template;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::judge::{MetricData, data::HistogramSide};
use crate::model::{Metric, PrometheusSource, Source};

pub use buckets::{BucketError, Buckets};
pub use builtin::BUILTIN_PACKS;
pub use client::{Client, ConfigError, QueryData, QueryError, QueryResponse};
pub use config::{BasicAuth, PrometheusConfig};
pub use observe::{Observation, ShapeError};
pub use pack::{Pack, PackCatalog, PackError, PackQuery, QueryKind, Templates};
pub use template::{Template, TemplateError};

/// A scope: template variable name -> value (`namespace`, `workload`, `version`, ...).
pub type Scope = BTreeMap<String, String>;

/// The stretch of time a fetch covers: `(end - length, end]`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub end: SystemTime,
    /// `{{ interval }}`: the range of increase() in counts and histogram queries.
    pub length: Duration,
    /// `{{ step }}`: the resolution of series queries. At least twice the scrape interval,
    /// or rate() sees fewer than two samples per step and the points are missing.
    pub step: Duration,
}

/// One scope's data for one metric, with everything behind it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fetched {
    pub observation: Observation,
    /// The PromQL that ran, in order (`requests`, `errors` for counts).
    pub queries: Vec<String>,
    /// Prometheus' warnings: the data may be partial (a failed remote read, a store down).
    pub warnings: Vec<String>,
    /// How odd data was read (e.g. no error series counted as 0 errors).
    pub notes: Vec<String>,
}

/// A metric's data for baseline and canary.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricFetch {
    /// What the judge takes; `None` when a side has no data (the judge then says `nodata`).
    pub data: Option<MetricData>,
    pub baseline: Fetched,
    pub canary: Fetched,
}

impl MetricFetch {
    /// Both sides' raw bucket counts, for the exact bucket rank test
    /// ([`buckets::mann_whitney`]), when this is a histogram metric with data.
    pub fn buckets(&self) -> Option<(&Buckets, &Buckets)> {
        match (&self.canary.observation, &self.baseline.observation) {
            (Observation::Buckets(c), Observation::Buckets(b)) => Some((c, b)),
            _ => None,
        }
    }
}

/// Why a fetch gave no answer at all. Nodata is not an error: see [`Observation::Nodata`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    #[error("metric `{metric}` has no prometheus source")]
    NotPrometheus { metric: String },
    #[error("unknown query pack `{pack}` (known: {known})")]
    UnknownPack { pack: String, known: String },
    #[error("query pack `{pack}` has no query `{query}` (it has: {known})")]
    UnknownQuery {
        pack: String,
        query: String,
        known: String,
    },
    #[error(
        "metric `{metric}`: `{query}` is a `{query_kind}` query, which does not feed a `{metric_kind}` metric"
    )]
    KindMismatch {
        metric: String,
        /// `pack/query`, or `inline` for a model's own `promql`.
        query: String,
        query_kind: &'static str,
        metric_kind: &'static str,
    },
    #[error("scope name `{0}` is reserved for the window ({{{{ interval }}}}, {{{{ step }}}})")]
    ReservedName(String),
    #[error("window: {0}")]
    Window(String),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("query `{query}` ({promql}): {source}")]
    Query {
        query: String,
        promql: String,
        #[source]
        source: Box<QueryError>,
    },
    #[error("query `{query}` ({promql}): {reason}")]
    Shape {
        query: String,
        promql: String,
        reason: ShapeError,
    },
    #[error("metric `{metric}` ({side}): {reason}")]
    Convert {
        metric: String,
        side: &'static str,
        reason: BucketError,
    },
}

/// Runs pack queries for scopes and windows. Cheap to clone (each query task takes one):
/// the client and the packs are shared.
#[derive(Clone, Debug)]
pub struct QuerySource {
    client: Client,
    packs: Arc<PackCatalog>,
}

impl QuerySource {
    /// `packs` may be shared with whoever else reads them (the API checks models with
    /// the same packs).
    pub fn new(client: Client, packs: impl Into<Arc<PackCatalog>>) -> QuerySource {
        QuerySource {
            client,
            packs: packs.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn packs(&self) -> &PackCatalog {
        &self.packs
    }

    /// Runs `source` for one scope over `window`.
    pub async fn fetch(
        &self,
        source: &PrometheusSource,
        scope: &Scope,
        window: &Window,
    ) -> Result<Fetched, FetchError> {
        let query = self.lookup(source)?;
        self.run(query.as_ref(), &source.label(), scope, window)
            .await
    }

    /// Runs `query` (called `id` in errors) for one scope over `window`.
    async fn run(
        &self,
        query: &PackQuery,
        id: &str,
        scope: &Scope,
        window: &Window,
    ) -> Result<Fetched, FetchError> {
        let vars = variables(scope, window)?;
        match &query.templates {
            Templates::Counts { requests, errors } => {
                let (requests_id, errors_id) = (format!("{id}.requests"), format!("{id}.errors"));
                let requests_q = requests.render(&vars, &requests_id)?;
                let errors_q = errors.render(&vars, &errors_id)?;
                let (req, err) = tokio::join!(
                    self.instant(&requests_id, &requests_q, window),
                    self.instant(&errors_id, &errors_q, window),
                );
                let (req, err) = (req?, err?);
                let read = observe::counts(&req, &err);
                finish(id, read, vec![requests_q, errors_q], [req, err])
            }
            Templates::One(template) => {
                let promql = template.render(&vars, id)?;
                if query.kind == QueryKind::Series {
                    let start = window
                        .end
                        .checked_sub(window.length - window.step)
                        .ok_or_else(|| {
                            FetchError::Window("starts before the clock's earliest time".into())
                        })?;
                    let response = self
                        .client
                        .query_range(&promql, start, window.end, window.step)
                        .await
                        .map_err(|source| FetchError::Query {
                            query: id.to_string(),
                            promql: promql.clone(),
                            source: Box::new(source),
                        })?;
                    let read = observe::samples(&response);
                    finish(id, read, vec![promql], [response])
                } else {
                    let response = self.instant(id, &promql, window).await?;
                    let read = observe::buckets(&response);
                    finish(id, read, vec![promql], [response])
                }
            }
        }
    }

    /// Fetches `metric` for both scopes (concurrently) and shapes the judge's input.
    pub async fn fetch_metric(
        &self,
        metric: &Metric,
        baseline: &Scope,
        canary: &Scope,
        window: &Window,
    ) -> Result<MetricFetch, FetchError> {
        let Some(Source::Prometheus(source)) = &metric.source else {
            return Err(FetchError::NotPrometheus {
                metric: metric.name.clone(),
            });
        };
        let query = self.lookup(source)?;
        if query.kind.metric_kind() != metric.kind {
            return Err(FetchError::KindMismatch {
                metric: metric.name.clone(),
                query: source.label(),
                query_kind: query.kind.name(),
                metric_kind: metric.kind.name(),
            });
        }
        // Looked up (an inline `promql` parsed) once for both sides.
        let id = source.label();
        let (b, c) = tokio::join!(
            self.run(&query, &id, baseline, window),
            self.run(&query, &id, canary, window)
        );
        let (baseline, canary) = (b?, c?);
        let data = metric_data(&metric.name, &baseline.observation, &canary.observation)?;
        Ok(MetricFetch {
            data,
            baseline,
            canary,
        })
    }

    /// The query `source` names in a pack, or its inline `promql` as a query of its own.
    fn lookup(
        &self,
        source: &PrometheusSource,
    ) -> Result<std::borrow::Cow<'_, PackQuery>, FetchError> {
        if let Some(promql) = &source.promql {
            return Ok(std::borrow::Cow::Owned(PackQuery::inline(
                promql,
                &source.label(),
            )?));
        }
        let pack = self
            .packs
            .get(&source.pack)
            .ok_or_else(|| FetchError::UnknownPack {
                pack: source.pack.clone(),
                known: self.packs.names().collect::<Vec<_>>().join(", "),
            })?;
        pack.query(&source.query)
            .map(std::borrow::Cow::Borrowed)
            .ok_or_else(|| FetchError::UnknownQuery {
                pack: source.pack.clone(),
                query: source.query.clone(),
                known: pack.queries.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    async fn instant(
        &self,
        id: &str,
        promql: &str,
        window: &Window,
    ) -> Result<QueryResponse, FetchError> {
        self.client
            .query(promql, window.end)
            .await
            .map_err(|source| FetchError::Query {
                query: id.into(),
                promql: promql.into(),
                source: Box::new(source),
            })
    }
}

/// The scope plus the window's variables.
fn variables(scope: &Scope, window: &Window) -> Result<BTreeMap<String, String>, FetchError> {
    if let Some(name) = pack::WINDOW_VARIABLES
        .iter()
        .find(|name| scope.contains_key(**name))
    {
        return Err(FetchError::ReservedName((*name).into()));
    }
    if window.length.is_zero() || window.step.is_zero() || window.step > window.length {
        return Err(FetchError::Window(format!(
            "length {:?} and step {:?}: both must be above 0, step at most the length",
            window.length, window.step
        )));
    }
    let mut vars = scope.clone();
    vars.insert("interval".into(), template::promql_duration(window.length));
    vars.insert("step".into(), template::promql_duration(window.step));
    Ok(vars)
}

fn finish<const N: usize>(
    id: &str,
    read: Result<(Observation, Vec<String>), ShapeError>,
    queries: Vec<String>,
    responses: [QueryResponse; N],
) -> Result<Fetched, FetchError> {
    let (observation, mut notes) = read.map_err(|reason| FetchError::Shape {
        query: id.into(),
        promql: queries.join(" ; "),
        reason,
    })?;
    let mut warnings = Vec::new();
    for r in responses {
        for w in r.warnings {
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        notes.extend(r.infos);
    }
    Ok(Fetched {
        observation,
        queries,
        warnings,
        notes,
    })
}

/// The judge's input from both sides' observations; `None` when either side has none.
/// Buckets go to the judge as `LogHistogram`s (see [`Buckets::to_log_histogram`]).
pub fn metric_data(
    metric: &str,
    baseline: &Observation,
    canary: &Observation,
) -> Result<Option<MetricData>, FetchError> {
    let convert = |b: &Buckets, side: &'static str| {
        b.to_log_histogram()
            .map(|histogram| HistogramSide { histogram })
            .map_err(|reason| FetchError::Convert {
                metric: metric.into(),
                side,
                reason,
            })
    };
    Ok(match (baseline, canary) {
        (Observation::Samples(b), Observation::Samples(c)) => Some(MetricData::Samples {
            baseline: b.clone(),
            canary: c.clone(),
        }),
        (Observation::Counts(b), Observation::Counts(c)) => Some(MetricData::Counts {
            baseline: *b,
            canary: *c,
        }),
        (Observation::Buckets(b), Observation::Buckets(c)) => Some(MetricData::Histograms {
            baseline: convert(b, "baseline")?,
            canary: convert(c, "canary")?,
        }),
        // Nodata on a side, or (impossible for one query) two shapes: nothing to judge.
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_variables_are_set_and_reserved() {
        let w = Window {
            end: SystemTime::UNIX_EPOCH,
            length: Duration::from_secs(30),
            step: Duration::from_millis(1500),
        };
        let vars = variables(&Scope::from([("app".into(), "a".into())]), &w).unwrap();
        assert_eq!(vars["interval"], "30s");
        assert_eq!(vars["step"], "1500ms");
        let e = variables(&Scope::from([("interval".into(), "1h".into())]), &w).unwrap_err();
        assert_eq!(e, FetchError::ReservedName("interval".into()));
        let bad = Window {
            step: Duration::from_secs(60),
            ..w
        };
        assert!(matches!(
            variables(&Scope::new(), &bad),
            Err(FetchError::Window(_))
        ));
    }

    #[test]
    fn nodata_on_either_side_gives_no_judge_input() {
        use crate::stats::proportions::Counts;
        let c = Observation::Counts(Counts {
            requests: 10,
            errors: 1,
        });
        let none = Observation::Nodata("x".into());
        assert_eq!(metric_data("m", &c, &none).unwrap(), None);
        assert_eq!(metric_data("m", &none, &c).unwrap(), None);
        assert!(matches!(
            metric_data("m", &c, &c).unwrap(),
            Some(MetricData::Counts { .. })
        ));
    }
}
