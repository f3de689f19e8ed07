//! Query packs: named PromQL templates per service mesh (schema in `queries/README.md`).
//!
//! Owns: parsing and validating pack files (every problem, with file and field), the
//! packs built into the binary plus those from `--queries`, and checking that a model's
//! Prometheus sources name queries that exist, fit the metric's kind and get every
//! variable they use from the model's scope. Never runs a query.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::builtin::BUILTIN_PACKS;
use super::template::Template;
use crate::model::{MetricKind, Model, Problem, Source, yaml_files, yaml_problem};

/// Template variables the window sets; scopes cannot use these names.
pub const WINDOW_VARIABLES: [&str; 2] = ["interval", "step"];

/// What a query returns and so which metric kind it feeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueryKind {
    /// Two instant queries, `requests` and `errors`, each one number: how many requests
    /// and errors the window saw (`sum(increase(...[{{ interval }}]))`). Feeds error-ratio
    /// metrics.
    Counts,
    /// One instant query returning one series per `le` bucket with the window's increase
    /// (`sum by (le) (increase(x_bucket[{{ interval }}]))`). Feeds distribution metrics.
    Histogram,
    /// One range query over the window, one point per `{{ step }}`
    /// (`sum(rate(x[{{ step }}]))`); its points are the samples. Feeds distribution metrics.
    Series,
}

impl QueryKind {
    pub fn name(self) -> &'static str {
        match self {
            QueryKind::Counts => "counts",
            QueryKind::Histogram => "histogram",
            QueryKind::Series => "series",
        }
    }

    /// The metric kind this query's data feeds.
    pub fn metric_kind(self) -> MetricKind {
        match self {
            QueryKind::Counts => MetricKind::ErrorRatio,
            QueryKind::Histogram | QueryKind::Series => MetricKind::Distribution,
        }
    }
}

/// A pack as written in YAML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PackFile {
    name: String,
    #[serde(default)]
    description: String,
    queries: BTreeMap<String, QueryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryFile {
    kind: QueryKind,
    #[serde(default)]
    description: String,
    #[serde(default)]
    unit: String,
    query: Option<String>,
    requests: Option<String>,
    errors: Option<String>,
}

/// A validated pack.
#[derive(Clone, Debug, PartialEq)]
pub struct Pack {
    pub name: String,
    pub description: String,
    pub queries: BTreeMap<String, PackQuery>,
}

/// One named query of a pack.
#[derive(Clone, Debug, PartialEq)]
pub struct PackQuery {
    pub kind: QueryKind,
    pub description: String,
    /// Unit of the values, for display (`ms`, `s`, `req/s`).
    pub unit: String,
    pub templates: Templates,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Templates {
    /// `counts`: the two instant queries.
    Counts {
        requests: Template,
        errors: Template,
    },
    /// `histogram` and `series`: one query.
    One(Template),
}

impl PackQuery {
    /// A model's inline `promql`: a `series` query of its own (`metric` names it in
    /// errors).
    pub fn inline(promql: &str, metric: &str) -> Result<PackQuery, super::TemplateError> {
        Ok(PackQuery {
            kind: QueryKind::Series,
            description: String::new(),
            unit: String::new(),
            templates: Templates::One(Template::parse(promql, metric)?),
        })
    }

    /// The scope variables the query needs (window variables left out).
    pub fn scope_variables(&self) -> BTreeSet<String> {
        let templates: Vec<&Template> = match &self.templates {
            Templates::Counts { requests, errors } => vec![requests, errors],
            Templates::One(t) => vec![t],
        };
        templates
            .into_iter()
            .flat_map(Template::variables)
            .filter(|v| !WINDOW_VARIABLES.contains(v))
            .map(str::to_string)
            .collect()
    }
}

/// A pack that failed to load, with every problem found.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct PackError {
    pub problems: Vec<Problem>,
}

impl Pack {
    /// Parses and validates a pack; `file` names it in problems.
    pub fn from_yaml(text: &str, file: &str) -> Result<Pack, PackError> {
        let raw: PackFile = serde_saphyr::from_str(text).map_err(|e| PackError {
            problems: vec![yaml_problem(file, &e)],
        })?;
        let mut problems = Vec::new();
        let mut add = |field: String, reason: String| {
            problems.push(Problem {
                file: file.into(),
                field,
                reason,
            })
        };
        if raw.name.trim().is_empty() {
            add("name".into(), "must not be empty".into());
        }
        if raw.queries.is_empty() {
            add("queries".into(), "a pack needs at least one query".into());
        }
        let mut queries = BTreeMap::new();
        for (name, q) in raw.queries {
            let at = |field: &str| format!("queries.{name}.{field}");
            let id = format!("{}/{name}", raw.name);
            let mut parse = |field: &str, text: &Option<String>| -> Option<Template> {
                let Some(text) = text else {
                    add(
                        at(field),
                        format!("a `{}` query needs `{field}`", q.kind.name()),
                    );
                    return None;
                };
                match Template::parse(text, &id) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        add(at(field), e.to_string());
                        None
                    }
                }
            };
            let templates = match q.kind {
                QueryKind::Counts => {
                    let requests = parse("requests", &q.requests);
                    let errors = parse("errors", &q.errors);
                    requests
                        .zip(errors)
                        .map(|(requests, errors)| Templates::Counts { requests, errors })
                }
                QueryKind::Histogram | QueryKind::Series => {
                    parse("query", &q.query).map(Templates::One)
                }
            };
            let stray: &[(&str, bool)] = match q.kind {
                QueryKind::Counts => &[("query", q.query.is_some())],
                _ => &[
                    ("requests", q.requests.is_some()),
                    ("errors", q.errors.is_some()),
                ],
            };
            for (field, present) in stray {
                if *present {
                    add(
                        at(field),
                        format!("a `{}` query has no `{field}`", q.kind.name()),
                    );
                }
            }
            let Some(templates) = templates else { continue };
            let each: Vec<(&str, &Template)> = match &templates {
                Templates::Counts { requests, errors } => {
                    vec![("requests", requests), ("errors", errors)]
                }
                Templates::One(t) => vec![("query", t)],
            };
            for (field, t) in each {
                let vars = t.variables();
                match q.kind {
                    QueryKind::Counts | QueryKind::Histogram => {
                        if !vars.contains("interval") {
                            add(
                                at(field),
                                "must use `{{ interval }}` (as the range of increase()) so it covers the analysis window".into(),
                            );
                        }
                        if vars.contains("step") {
                            add(
                                at(field),
                                "`{{ step }}` is only set for `series` queries".into(),
                            );
                        }
                    }
                    QueryKind::Series => {
                        if !vars.contains("step") {
                            add(
                                at(field),
                                "must use `{{ step }}` (as the range of rate()) so each point covers one step".into(),
                            );
                        }
                    }
                }
            }
            queries.insert(
                name,
                PackQuery {
                    kind: q.kind,
                    description: q.description,
                    unit: q.unit,
                    templates,
                },
            );
        }
        if !problems.is_empty() {
            return Err(PackError { problems });
        }
        Ok(Pack {
            name: raw.name,
            description: raw.description,
            queries,
        })
    }

    pub fn from_file(path: &Path) -> Result<Pack, PackError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PackError {
            problems: vec![Problem {
                file: file.clone(),
                field: "(file)".into(),
                reason: format!("cannot read: {e}"),
            }],
        })?;
        Pack::from_yaml(&text, &file)
    }

    pub fn query(&self, name: &str) -> Option<&PackQuery> {
        self.queries.get(name)
    }
}

/// Where packs are looked up: the built-in ones, overridden or extended by a directory.
#[derive(Clone, Debug, Default)]
pub struct PackCatalog {
    packs: BTreeMap<String, Pack>,
}

impl PackCatalog {
    /// The packs built into the binary.
    pub fn builtin() -> PackCatalog {
        let mut catalog = PackCatalog::default();
        for (file, text) in BUILTIN_PACKS {
            // Built-in packs are checked by tests; a broken one is a build defect.
            if let Ok(pack) = Pack::from_yaml(text, file) {
                catalog.insert(pack);
            }
        }
        catalog
    }

    /// Adds every `*.yaml`/`*.yml` pack in `dir` (a file works too), overriding by name.
    pub fn load_dir(&mut self, dir: &Path) -> Result<(), PackError> {
        let mut problems = Vec::new();
        for path in yaml_files(dir).map_err(|p| PackError { problems: vec![p] })? {
            match Pack::from_file(&path) {
                Ok(pack) => self.insert(pack),
                Err(e) => problems.extend(e.problems),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(PackError { problems })
        }
    }

    pub fn insert(&mut self, pack: Pack) {
        self.packs.insert(pack.name.clone(), pack);
    }

    pub fn get(&self, name: &str) -> Option<&Pack> {
        self.packs.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.packs.keys().map(String::as_str)
    }

    /// Every problem with `model`'s Prometheus sources against these packs: unknown pack
    /// or query, a query whose kind does not feed the metric's kind, a variable the
    /// model's `scope` does not list. `file` names the model in problems.
    pub fn check_model(&self, model: &Model, file: &str) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (i, metric) in model.metrics.iter().enumerate() {
            let Some(Source::Prometheus(source)) = &metric.source else {
                continue;
            };
            let mut add = |reason: String| {
                problems.push(Problem {
                    file: file.into(),
                    field: format!("metrics[{i}].source.prometheus"),
                    reason,
                })
            };
            if let Some(promql) = &source.promql {
                match PackQuery::inline(promql, &metric.name) {
                    Ok(query) => check_query(&query, "its `promql`", metric, model, &mut add),
                    Err(e) => add(format!("promql: {e}")),
                }
                continue;
            }
            let Some(pack) = self.get(&source.pack) else {
                add(format!(
                    "unknown query pack `{}` (known: {})",
                    source.pack,
                    self.names().collect::<Vec<_>>().join(", ")
                ));
                continue;
            };
            let Some(query) = pack.query(&source.query) else {
                add(format!(
                    "pack `{}` has no query `{}` (it has: {})",
                    pack.name,
                    source.query,
                    pack.queries.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
                continue;
            };
            let name = format!("`{}/{}`", pack.name, source.query);
            check_query(query, &name, metric, model, &mut add);
        }
        problems
    }
}

/// Whether `query` (called `name` in problems) feeds `metric` of `model`: its kind, and
/// every variable it uses in the model's scope.
fn check_query(
    query: &PackQuery,
    name: &str,
    metric: &crate::model::Metric,
    model: &Model,
    add: &mut impl FnMut(String),
) {
    if query.kind.metric_kind() != metric.kind {
        add(format!(
            "{name} is a `{}` query, which does not feed a metric of kind `{}`",
            query.kind.name(),
            metric.kind.name()
        ));
    }
    for var in query.scope_variables() {
        if !model.scope.contains(&var) {
            add(format!(
                "{name} uses `{{{{ {var} }}}}`, which the model's scope ({}) does not list",
                model.scope.join(", ")
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name: mesh
queries:
  errors:
    kind: counts
    requests: sum(increase(req_total{app="{{ app }}"}[{{ interval }}]))
    errors: sum(increase(req_total{app="{{ app }}", code=~"5.."}[{{ interval }}]))
  latency:
    kind: histogram
    unit: ms
    query: sum by (le) (increase(lat_bucket{app="{{ app }}", v="{{ version }}"}[{{ interval }}]))
  rate:
    kind: series
    query: sum(rate(req_total{app="{{ app }}"}[{{ step }}]))
"#;

    #[test]
    fn a_good_pack_loads_with_its_variables() {
        let p = Pack::from_yaml(GOOD, "mesh.yaml").unwrap();
        assert_eq!(p.name, "mesh");
        let lat = p.query("latency").unwrap();
        assert_eq!(lat.kind, QueryKind::Histogram);
        assert_eq!(lat.unit, "ms");
        assert_eq!(
            lat.scope_variables().into_iter().collect::<Vec<_>>(),
            vec!["app", "version"]
        );
        assert_eq!(
            p.query("errors").unwrap().scope_variables(),
            BTreeSet::from(["app".to_string()])
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let text = r#"
name: ""
queries:
  a: {kind: counts, requests: "x[{{ interval }}]", query: "y"}
  b: {kind: histogram, query: "sum(x{a=\"{{ b }}\"}[5m])"}
  c: {kind: series, query: "x{a=\"{{ oops }\"}[{{ step }}]"}
  d: {kind: series, query: "rate(x[{{ interval }}])"}
"#;
        let e = Pack::from_yaml(text, "bad.yaml").unwrap_err();
        let fields: Vec<&str> = e.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "name",
                "queries.a.errors",
                "queries.a.query",
                "queries.b.query",
                "queries.c.query",
                "queries.d.query",
            ],
            "{e}"
        );
        assert!(e.problems[3].reason.contains("{{ interval }}"), "{e}");
        assert!(e.problems[4].reason.contains("not a variable name"), "{e}");
        assert!(e.problems.iter().all(|p| p.file == "bad.yaml"));
    }

    #[test]
    fn unknown_fields_name_the_line() {
        let e = Pack::from_yaml(
            "name: m\nqueries:\n  a:\n    kind: series\n    qurey: x\n",
            "t.yaml",
        )
        .unwrap_err();
        assert_eq!(e.problems[0].field, "line 5, column 5", "{e}");
    }

    #[test]
    fn models_are_checked_against_packs() {
        let mut catalog = PackCatalog::default();
        catalog.insert(Pack::from_yaml(GOOD, "mesh.yaml").unwrap());
        let model = Model::from_yaml(
            r#"
name: m
scope: [app]
metrics:
  - name: latency
    source: {prometheus: {pack: mesh, query: latency}}
  - name: errors
    kind: error-ratio
    source: {prometheus: {pack: mesh, query: rate}}
  - name: x
    source: {prometheus: {pack: nope, query: latency}}
  - name: y
    source: {prometheus: {pack: mesh, query: nope}}
  - name: z
    kind: error-ratio
    source: {prometheus: {pack: mesh, query: errors}}
"#,
            "m.yaml",
        )
        .unwrap();
        let problems = catalog.check_model(&model, "m.yaml");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 4, "{text:#?}");
        assert!(text[0].contains("`{{ version }}`"), "{text:#?}");
        assert!(text[1].contains("does not feed a metric of kind `error-ratio`"));
        assert!(text[2].contains("unknown query pack `nope`"));
        assert!(text[3].contains("has no query `nope`"));
    }

    #[test]
    fn inline_promql_is_checked_as_a_series_query_of_the_model() {
        let model = Model::from_yaml(
            r#"
name: m
scope: [app]
metrics:
  - name: ok
    source: {prometheus: {promql: 'avg(x{app="{{ app }}"}[{{ step }}])'}}
  - name: unknown-variable
    source: {prometheus: {promql: 'avg(x{v="{{ version }}"})'}}
  - name: counts
    kind: error-ratio
    source: {prometheus: {promql: 'avg(x{app="{{ app }}"})'}}
  - name: broken
    source: {prometheus: {promql: 'avg(x{app="{{ app }"})'}}
"#,
            "m.yaml",
        )
        .unwrap();
        let problems = PackCatalog::default().check_model(&model, "m.yaml");
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{text:#?}");
        assert!(text[0].contains("metrics[1]") && text[0].contains("`{{ version }}`"));
        assert!(text[1].contains("metrics[2]") && text[1].contains("`series` query"));
        assert!(text[2].contains("metrics[3]") && text[2].contains("promql:"));
    }
}
