//! A Kayenta canary config converted to an Augury model.
//!
//! Kayenta's config (`CanaryConfig` in its `kayenta-core`) lists metrics, each with a
//! query for one metrics store and an `analysisConfigurations.canary` block the judge
//! reads, plus `templates` and a `classifier` (group weights, score thresholds). Only
//! Prometheus queries are converted; each becomes an inline PromQL template built the
//! way Kayenta's `PrometheusMetricsService.buildQuery` builds its query, with Kayenta's
//! `${name}` template variables turned into Augury's `{{ name }}` placeholders (which
//! are escaped for the place they stand in, where Kayenta pastes text as it is).
//!
//! What a field means to Kayenta's judge and has no counterpart in the model is listed
//! in [`Imported::unmapped`] with its JSON path and what became of it: the rule is that
//! whatever would make the model judge differently from Kayenta is reported, never
//! dropped in silence. Fields Kayenta itself ignores in a given config (a `metricName`
//! next to a complete `PromQL:` template) and its storage bookkeeping (`id`,
//! `applications`, timestamps, `configVersion`) are not reported.
//!
//! Invariant: pure; the model returned passes what `augury check` checks
//! ([`Model::validate`], and its queries against its scope).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::ingest::prometheus::PackCatalog;
use crate::ingest::prometheus::template::{Template, TemplateError};
use crate::model::{
    Direction, Effect, EffectMeasure, Group, Metric, MetricKind, Model, NanStrategy,
    PrometheusSource, Rules, Source, TestKind, Thresholds,
};

/// How to convert.
#[derive(Clone, Debug, PartialEq)]
pub struct ImportOptions {
    /// Whose rules the model judges by (default: Kayenta's, so verdicts stay as they were).
    pub rules: Rules,
    /// The label Kayenta's Prometheus account matched the scope against (its
    /// `scopeLabel`, default `instance`), for metrics built from `metricName` and a
    /// `resourceType`.
    pub scope_label: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            rules: Rules::Kayenta,
            scope_label: "instance".into(),
        }
    }
}

/// A field of the config that has no counterpart in Augury, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unmapped {
    /// Where it is in the config, as a JSON path (`metrics[2].analysisConfigurations.canary.outliers`).
    pub field: String,
    pub reason: String,
}

/// A converted config: the model, and every field that could not be carried over.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    pub model: Model,
    pub unmapped: Vec<Unmapped>,
}

/// A config nothing usable can be made of: the field and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

/// How every note on a metric that is not imported ends.
const LEFT_OUT: &str = "left out";

/// The judge `rules: kayenta` re-implements.
const KAYENTA_JUDGE: &str = "NetflixACAJudge-v1.0";

/// Top-level fields that are Kayenta's storage bookkeeping: who may use the config, when
/// it was written, its id. They say nothing about judging.
const BOOKKEEPING: [&str; 7] = [
    "id",
    "applications",
    "configVersion",
    "createdTimestamp",
    "updatedTimestamp",
    "createdTimestampIso",
    "updatedTimestampIso",
];

/// Variables Augury fills itself in every PromQL template; a Kayenta variable of the
/// same name would be shadowed.
const AUGURY_VARIABLES: [&str; 2] = ["interval", "step"];

/// Converts a Kayenta canary config (its JSON) to a model.
pub fn convert(config: &Value, options: &ImportOptions) -> Result<Imported, ConfigError> {
    let refuse = |field: &str, reason: String| ConfigError {
        field: field.into(),
        reason,
    };
    let Some(top) = config.as_object() else {
        return Err(refuse(
            "(config)",
            format!(
                "a Kayenta canary config is a JSON object, not {}",
                json_kind(config)
            ),
        ));
    };
    let Some(metrics) = top.get("metrics") else {
        return Err(refuse(
            "metrics",
            "missing: a Kayenta canary config lists its metrics".into(),
        ));
    };
    let Some(metrics) = metrics.as_array() else {
        return Err(refuse(
            "metrics",
            format!("is {}, not a list of metrics", json_kind(metrics)),
        ));
    };
    let mut c = Converter {
        options,
        unmapped: Vec::new(),
        templates: BTreeMap::new(),
    };
    for (key, value) in top {
        match key.as_str() {
            "name" | "metrics" => {}
            "description" => {
                if !value.is_string() && !value.is_null() {
                    c.note(key, "is not a string; the model has no description");
                }
            }
            "templates" => c.read_templates(value),
            "judge" => c.read_judge(value),
            "classifier" => {}
            k if BOOKKEEPING.contains(&k) => {}
            k => c.note(k, "is not a field of a Kayenta canary config; ignored"),
        }
    }
    let mut kept = Vec::new();
    let mut variables = BTreeSet::new();
    for (i, m) in metrics.iter().enumerate() {
        if let Some((metric, used)) = c.metric(i, m) {
            if kept.iter().any(|k: &Metric| k.name == metric.name) {
                c.note(
                    &format!("metrics[{i}].name"),
                    format!(
                        "`{}` names an earlier metric too; this one is left out",
                        metric.name
                    ),
                );
                continue;
            }
            variables.extend(used);
            kept.push(metric);
        }
    }
    if kept.is_empty() {
        return Err(refuse(
            "metrics",
            if metrics.is_empty() {
                "the config has no metrics".into()
            } else {
                format!(
                    "no metric could be imported: {}",
                    c.unmapped
                        .iter()
                        .filter(|u| u.reason.ends_with(LEFT_OUT))
                        .map(|u| format!("{}: {}", u.field, u.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            },
        ));
    }
    let name = match top.get("name").and_then(Value::as_str).map(str::trim) {
        Some(n) if !n.is_empty() => n.to_string(),
        _ => {
            return Err(refuse(
                "name",
                "missing or empty: every Kayenta canary config has a name".into(),
            ));
        }
    };
    let (groups, thresholds) = c.classifier(top.get("classifier"), &kept);
    // Kayenta's own variables first, in the order its docs give them; then the rest.
    let mut scope = vec!["scope".to_string()];
    if variables.contains("location") {
        scope.push("location".into());
    }
    scope.extend(
        variables
            .into_iter()
            .filter(|v| v != "scope" && v != "location"),
    );
    let model = Model {
        name,
        description: top
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        scope,
        thresholds,
        groups,
        early_pass: None,
        rules: options.rules,
        metrics: kept,
    };
    // What `augury check` checks: the model, and each query against the model's scope.
    let mut problems = match model.validate("(imported)") {
        Ok(()) => Vec::new(),
        Err(e) => e.problems,
    };
    problems.extend(PackCatalog::default().check_model(&model, "(imported)"));
    if let Some(first) = problems.first() {
        return Err(ConfigError {
            field: first.field.clone(),
            reason: format!(
                "the converted model is not valid (a converter defect): {}",
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        });
    }
    Ok(Imported {
        model,
        unmapped: c.unmapped,
    })
}

struct Converter<'a> {
    options: &'a ImportOptions,
    unmapped: Vec<Unmapped>,
    templates: BTreeMap<String, String>,
}

impl Converter<'_> {
    fn note(&mut self, field: &str, reason: impl Into<String>) {
        self.unmapped.push(Unmapped {
            field: field.into(),
            reason: reason.into(),
        });
    }

    fn read_templates(&mut self, value: &Value) {
        match value {
            Value::Null => {}
            Value::Object(map) => {
                for (k, v) in map {
                    match v.as_str() {
                        Some(text) => {
                            self.templates.insert(k.clone(), text.to_string());
                        }
                        None => self.note(
                            &format!("templates.{k}"),
                            format!(
                                "is {}, not a template string; metrics naming it are left out",
                                json_kind(v)
                            ),
                        ),
                    }
                }
            }
            other => self.note(
                "templates",
                format!("is {}, not a map of name to template", json_kind(other)),
            ),
        }
    }

    fn read_judge(&mut self, value: &Value) {
        let Some(judge) = value.as_object() else {
            if !value.is_null() {
                self.note("judge", format!("is {}, not an object", json_kind(value)));
            }
            return;
        };
        let rules = match self.options.rules {
            Rules::Kayenta => "Kayenta's rules (NetflixACAJudge-v1.0)",
            Rules::Augury => "Augury's rules",
        };
        for (k, v) in judge {
            match k.as_str() {
                "name" => match v.as_str() {
                    Some(KAYENTA_JUDGE) | None => {}
                    Some("dredd-v1.0") => self.note(
                        "judge.name",
                        format!("`dredd-v1.0` is Kayenta's judge of random scores, for trying the pipeline out; the model judges by {rules}"),
                    ),
                    Some(other) => self.note(
                        "judge.name",
                        format!("Kayenta's judge `{other}` is not available; the model judges by {rules}"),
                    ),
                },
                "judgeConfigurations" => {
                    if v.as_object().is_some_and(|m| !m.is_empty()) {
                        self.note(
                            "judge.judgeConfigurations",
                            "judge settings have no counterpart; ignored",
                        );
                    }
                }
                other => self.note(
                    &format!("judge.{other}"),
                    "is not a field of Kayenta's judge config; ignored",
                ),
            }
        }
    }

    /// One metric, and the template variables its query uses; `None` (with the reason
    /// noted) when it cannot be imported.
    fn metric(&mut self, i: usize, value: &Value) -> Option<(Metric, BTreeSet<String>)> {
        let at = format!("metrics[{i}]");
        let Some(m) = value.as_object() else {
            self.note(
                &at,
                format!("is {}, not a metric; left out", json_kind(value)),
            );
            return None;
        };
        let name = match m.get("name").and_then(Value::as_str).map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => {
                self.note(
                    &format!("{at}.name"),
                    "missing or empty: a metric needs a name; left out",
                );
                return None;
            }
        };
        for key in m.keys() {
            match key.as_str() {
                "name" | "query" | "groups" | "analysisConfigurations" => {}
                "scopeName" => {
                    if let Some(s) = m[key].as_str()
                        && s != "default"
                    {
                        self.note(
                            &format!("{at}.scopeName"),
                            format!("scope `{s}`: an analysis has one scope for every metric; the metric is read in it"),
                        );
                    }
                }
                other => self.note(
                    &format!("{at}.{other}"),
                    "is not a field of a Kayenta metric config; ignored",
                ),
            }
        }
        let mut metric = Metric {
            name,
            group: None,
            kind: MetricKind::Distribution,
            source: None,
            test: Some(TestKind::MannWhitney),
            equivalence_margin: None,
            // Kayenta's default direction, set explicitly: Augury's default is `increase`.
            direction: Direction::Either,
            alpha: 0.01,
            effect: Effect {
                measure: Some(EffectMeasure::MeanRatio),
                ..Effect::default()
            },
            critical: false,
            // Kayenta judges any non-empty side; Augury's own rules want 10 points.
            min_samples: match self.options.rules {
                Rules::Kayenta => Some(1),
                Rules::Augury => None,
            },
            must_have_data: false,
            nan: NanStrategy::Remove,
            slo: None,
            unit: String::new(),
        };
        let canary = self.analysis(&at, m.get("analysisConfigurations"), &mut metric);
        if canary.muted {
            self.note(
                &format!("{at}.analysisConfigurations.canary.muted"),
                "a muted metric does not count in Kayenta's score; Augury has no muted metrics, so it is left out",
            );
            return None;
        }
        let Some(query) = m.get("query") else {
            self.note(&format!("{at}.query"), "missing; the metric is left out");
            return None;
        };
        let (promql, variables) = self.query(&format!("{at}.query"), query)?;
        metric.source = Some(Source::Prometheus(PrometheusSource {
            pack: String::new(),
            query: String::new(),
            promql: Some(promql),
        }));
        metric.group = self.group(&at, m.get("groups"));
        Some((metric, variables))
    }

    /// The metric's first group; the others and a missing group are noted.
    fn group(&mut self, at: &str, value: Option<&Value>) -> Option<String> {
        let field = format!("{at}.groups");
        let groups: Vec<&str> = match value {
            Some(Value::Array(list)) => {
                let mut names = Vec::new();
                for (j, g) in list.iter().enumerate() {
                    match g.as_str().map(str::trim) {
                        Some(s) if !s.is_empty() => names.push(s),
                        _ => self.note(
                            &format!("{field}[{j}]"),
                            format!("is {}, not a group name; ignored", json_kind(g)),
                        ),
                    }
                }
                names
            }
            None | Some(Value::Null) => Vec::new(),
            Some(other) => {
                self.note(
                    &field,
                    format!("is {}, not a list of groups", json_kind(other)),
                );
                Vec::new()
            }
        };
        let Some((first, rest)) = groups.split_first() else {
            self.note(
                &field,
                "in no group: Kayenta counts the metric in no group's score (only a critical failure or missing data counts); Augury scores it in a group of its own name",
            );
            return None;
        };
        if !rest.is_empty() {
            self.note(
                &field,
                format!(
                    "Kayenta counts the metric in each of its {} groups; an Augury metric has one group, so it counts in `{first}` only (not in {})",
                    groups.len(),
                    rest.iter()
                        .map(|g| format!("`{g}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        Some((*first).to_string())
    }

    /// `analysisConfigurations.canary` onto the metric.
    fn analysis(&mut self, at: &str, value: Option<&Value>, metric: &mut Metric) -> Canary {
        let base = format!("{at}.analysisConfigurations");
        let mut out = Canary { muted: false };
        let configs = match value {
            None | Some(Value::Null) => return out,
            Some(Value::Object(map)) => map,
            Some(other) => {
                self.note(
                    &base,
                    format!(
                        "is {}, not an object; Kayenta's defaults apply",
                        json_kind(other)
                    ),
                );
                return out;
            }
        };
        for (k, v) in configs {
            if k != "canary" {
                self.note(
                    &format!("{base}.{k}"),
                    "only the `canary` analysis configuration is read by Kayenta's judge; ignored",
                );
                continue;
            }
            let Some(canary) = v.as_object() else {
                if !v.is_null() {
                    self.note(
                        &format!("{base}.canary"),
                        format!(
                            "is {}, not an object; Kayenta's defaults apply",
                            json_kind(v)
                        ),
                    );
                }
                continue;
            };
            let base = format!("{base}.canary");
            for (key, v) in canary {
                let field = format!("{base}.{key}");
                match key.as_str() {
                    "direction" => {
                        metric.direction = match v.as_str() {
                            Some("increase") => Direction::Increase,
                            Some("decrease") => Direction::Decrease,
                            Some("either") => Direction::Either,
                            _ => {
                                self.note(&field, format!("{v} is not increase, decrease or either; read as `either`, as Kayenta does"));
                                Direction::Either
                            }
                        }
                    }
                    "nanStrategy" => {
                        metric.nan = match v.as_str() {
                            Some("replace") => NanStrategy::Replace,
                            Some("remove") | Some("none") => NanStrategy::Remove,
                            _ => {
                                self.note(&field, format!("{v} is not remove or replace; read as `remove`, as Kayenta does"));
                                NanStrategy::Remove
                            }
                        }
                    }
                    "critical" => metric.critical = self.flag(&field, v),
                    "mustHaveData" => metric.must_have_data = self.flag(&field, v),
                    "muted" => out.muted = self.flag(&field, v),
                    "effectSize" => self.effect(&field, v, metric),
                    "outliers" => self.outliers(&field, v),
                    _ => self.note(
                        &field,
                        "is not a field of Kayenta's canary analysis configuration; ignored",
                    ),
                }
            }
        }
        // Kayenta's interval is two-sided at 98% whatever the direction; Augury's level
        // is 1 - 2 alpha one-sided and 1 - alpha for `either`.
        if metric.direction == Direction::Either {
            metric.alpha = 0.02;
        }
        out
    }

    fn flag(&mut self, field: &str, v: &Value) -> bool {
        match v {
            Value::Bool(b) => *b,
            Value::Null => false,
            other => {
                self.note(
                    field,
                    format!(
                        "is {}, not true or false (Kayenta fails on it); read as false",
                        json_kind(other)
                    ),
                );
                false
            }
        }
    }

    fn outliers(&mut self, field: &str, v: &Value) {
        let strategy = v.get("strategy").and_then(Value::as_str);
        if strategy == Some("remove") {
            self.note(
                field,
                "Kayenta removes IQR outliers before testing; Augury tests every observation, so outliers are kept",
            );
        }
        if let Some(map) = v.as_object() {
            for k in map.keys() {
                if k != "strategy" && k != "outlierFactor" {
                    self.note(
                        &format!("{field}.{k}"),
                        "is not a field of Kayenta's outlier settings; ignored",
                    );
                }
            }
        }
    }

    fn effect(&mut self, field: &str, v: &Value, metric: &mut Metric) {
        let Some(map) = v.as_object() else {
            if !v.is_null() {
                self.note(
                    field,
                    format!(
                        "is {}, not an object; Kayenta's defaults apply",
                        json_kind(v)
                    ),
                );
            }
            return;
        };
        match map.get("measure") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "meanRatio" => {}
            Some(Value::String(s)) if s == "cles" => {
                metric.effect.measure = Some(EffectMeasure::Cles);
            }
            Some(other) => self.note(
                &format!("{field}.measure"),
                format!("{other} is not meanRatio or cles; read as `meanRatio`, as Kayenta does"),
            ),
        }
        let cles = metric.effect.measure == Some(EffectMeasure::Cles);
        let read = |c: &mut Self, key: &str| -> Option<f64> {
            let v = map.get(key)?;
            if v.is_null() {
                return None;
            }
            match v.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 && (!cles || x <= 1.0) => Some(x),
                _ => {
                    c.note(
                        &format!("{field}.{key}"),
                        format!(
                            "{v} is not a valid {} threshold; the default applies",
                            if cles {
                                "cles (0 to 1)"
                            } else {
                                "mean-ratio (>= 0)"
                            }
                        ),
                    );
                    None
                }
            }
        };
        let e = &mut metric.effect;
        e.allowed_increase = read(self, "allowedIncrease");
        e.allowed_decrease = read(self, "allowedDecrease");
        // Kayenta tests the critical threshold only past the allowed one, so a critical
        // threshold inside the allowed one acts as the allowed one: say so in the model.
        e.critical_increase = read(self, "criticalIncrease").map(|x| x.max(e.allowed_increase()));
        e.critical_decrease = read(self, "criticalDecrease").map(|x| x.min(e.allowed_decrease()));
        for k in map.keys() {
            if !matches!(
                k.as_str(),
                "measure"
                    | "allowedIncrease"
                    | "allowedDecrease"
                    | "criticalIncrease"
                    | "criticalDecrease"
            ) {
                self.note(
                    &format!("{field}.{k}"),
                    "is not a field of Kayenta's effect size settings; ignored",
                );
            }
        }
    }

    /// The PromQL template of a Prometheus query config and the variables it uses, built
    /// as `PrometheusMetricsService.buildQuery` builds the query.
    fn query(&mut self, at: &str, value: &Value) -> Option<(String, BTreeSet<String>)> {
        let Some(q) = value.as_object() else {
            self.note(
                at,
                format!(
                    "is {}, not a query config; the metric is left out",
                    json_kind(value)
                ),
            );
            return None;
        };
        let text = |key: &str| {
            q.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        match q.get("type").and_then(Value::as_str) {
            Some("prometheus") => {}
            Some(other) => {
                self.note(
                    &format!("{at}.type"),
                    format!("`{other}` queries are not imported, only `prometheus` ones; the metric is left out"),
                );
                return None;
            }
            None => {
                self.note(
                    &format!("{at}.type"),
                    "missing: the metrics store is not named; the metric is left out",
                );
                return None;
            }
        }
        for key in q.keys() {
            if !matches!(
                key.as_str(),
                "type"
                    | "serviceType"
                    | "resourceType"
                    | "metricName"
                    | "labelBindings"
                    | "groupByFields"
                    | "customFilter"
                    | "customInlineTemplate"
                    | "customFilterTemplate"
            ) {
                self.note(
                    &format!("{at}.{key}"),
                    "is not a field of Kayenta's Prometheus query config; ignored",
                );
            }
        }
        let left_out = |c: &mut Self, field: &str, why: String| {
            c.note(
                &format!("{at}.{field}"),
                format!("{why}; the metric is left out"),
            );
            None
        };
        if text("customFilter").is_some() {
            return left_out(
                self,
                "customFilter",
                "deprecated, and refused by Kayenta (use customInlineTemplate)".into(),
            );
        }
        let resource_type = text("resourceType");
        let mut constants = BTreeMap::new();
        if let Some(r) = &resource_type {
            constants.insert("resourceType".to_string(), r.clone());
        }
        let (template, template_field) = if let Some(t) = text("customInlineTemplate") {
            (Some(t), "customInlineTemplate")
        } else if let Some(name) = text("customFilterTemplate") {
            match self.templates.get(&name) {
                Some(t) => (Some(t.clone()), "customFilterTemplate"),
                None => {
                    return left_out(
                        self,
                        "customFilterTemplate",
                        format!("names the template `{name}`, which `templates` does not hold"),
                    );
                }
            }
        } else {
            (None, "metricName")
        };
        let mut variables = BTreeSet::new();
        let custom = match template {
            Some(t) => match expand(&t, &constants) {
                Ok((augury, used)) => {
                    variables.extend(used);
                    Some(augury)
                }
                Err(why) => return left_out(self, template_field, format!("the template {why}")),
            },
            None => None,
        };
        let whole = custom.as_deref().and_then(|c| c.strip_prefix("PromQL:"));
        let promql = match whole {
            Some(whole) => whole.to_string(),
            None => {
                let filter = custom.as_deref();
                let Some(metric_name) = text("metricName") else {
                    return left_out(
                        self,
                        "metricName",
                        "missing, and there is no complete `PromQL:` template".into(),
                    );
                };
                let mut filters: Vec<String> = Vec::new();
                if let Some(f) = filter {
                    filters.push(f.to_string());
                }
                match q.get("labelBindings") {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(list)) => {
                        for (j, b) in list.iter().enumerate() {
                            match b.as_str() {
                                Some(s) => filters.push(s.to_string()),
                                None => {
                                    return left_out(
                                        self,
                                        &format!("labelBindings[{j}]"),
                                        format!("is {}, not a label matcher", json_kind(b)),
                                    );
                                }
                            }
                        }
                    }
                    Some(other) => {
                        return left_out(
                            self,
                            "labelBindings",
                            format!("is {}, not a list of label matchers", json_kind(other)),
                        );
                    }
                }
                if filter.is_none() {
                    let label = &self.options.scope_label;
                    match resource_type.as_deref() {
                        Some("gce_instance") => {
                            filters.push(format!("{label}=~\"{{{{ scope }}}}-.{{4}}\""));
                            filters.push("zone=~\".+/zones/{{ location }}-.{1}\"".into());
                        }
                        Some("aws_ec2_instance") => {
                            filters.push("asg_groupName=\"{{ scope }}\"".into());
                            filters.push("zone=~\"{{ location }}.{1}\"".into());
                        }
                        Some(other) => {
                            return left_out(
                                self,
                                "resourceType",
                                format!(
                                    "`{other}` has no scope filter in Kayenta (only gce_instance and aws_ec2_instance; Kayenta refuses it); write a customInlineTemplate"
                                ),
                            );
                        }
                        None => {
                            return left_out(
                                self,
                                "resourceType",
                                "missing, with no custom filter: Kayenta would take the resource type from each request's scope; give the query a resourceType (gce_instance, aws_ec2_instance) or a template".into(),
                            );
                        }
                    }
                    variables.insert("scope".into());
                    variables.insert("location".into());
                }
                if let Some(fields) = q.get("groupByFields").and_then(Value::as_array)
                    && !fields.is_empty()
                {
                    self.note(
                        &format!("{at}.groupByFields"),
                        "Kayenta judges each series of `avg(...) by (...)` on its own; an Augury metric is one series, so the query averages over all of them (no `by`)",
                    );
                }
                let mut query = format!("avg({metric_name}");
                if !filters.is_empty() {
                    query.push('{');
                    query.push_str(&filters.join(","));
                    query.push('}');
                }
                query.push(')');
                query
            }
        };
        match check_template(&promql, &variables) {
            Ok(()) => Some((promql, variables)),
            Err(why) => left_out(self, template_field, format!("the query {why}")),
        }
    }

    /// `classifier.groupWeights` and `classifier.scoreThresholds`, for the metrics kept.
    fn classifier(
        &mut self,
        value: Option<&Value>,
        kept: &[Metric],
    ) -> (BTreeMap<String, Group>, Thresholds) {
        let mut groups = BTreeMap::new();
        let mut thresholds = Thresholds::default();
        let classifier = match value {
            None | Some(Value::Null) => return (groups, thresholds),
            Some(Value::Object(map)) => map,
            Some(other) => {
                self.note(
                    "classifier",
                    format!(
                        "is {}, not an object; Augury's default weights and thresholds apply",
                        json_kind(other)
                    ),
                );
                return (groups, thresholds);
            }
        };
        let used: BTreeSet<&str> = kept.iter().map(Metric::group).collect();
        for (k, v) in classifier {
            match k.as_str() {
                "groupWeights" => self.weights(v, &used, &mut groups),
                "scoreThresholds" => {
                    if let Some(t) = self.thresholds(v) {
                        thresholds = t;
                    }
                }
                other => self.note(
                    &format!("classifier.{other}"),
                    "is not a field of Kayenta's classifier config; ignored",
                ),
            }
        }
        (groups, thresholds)
    }

    fn weights(&mut self, v: &Value, used: &BTreeSet<&str>, groups: &mut BTreeMap<String, Group>) {
        let Some(map) = v.as_object() else {
            if !v.is_null() {
                self.note(
                    "classifier.groupWeights",
                    format!(
                        "is {}, not a map of group to weight; groups share the score equally",
                        json_kind(v)
                    ),
                );
            }
            return;
        };
        for (name, w) in map {
            let field = format!("classifier.groupWeights.{name}");
            let Some(weight) = w.as_f64().filter(|x| x.is_finite() && *x >= 0.0) else {
                self.note(
                    &field,
                    format!("{w} is not a weight >= 0; the group is unweighted"),
                );
                continue;
            };
            if !used.contains(name.as_str()) {
                self.note(
                    &field,
                    "no imported metric is in this group, so its weight is left out (in Kayenta it counts towards the total and scores nothing)",
                );
                continue;
            }
            groups.insert(
                name.clone(),
                Group {
                    weight: Some(weight),
                },
            );
        }
        let total: f64 = groups.values().filter_map(|g| g.weight).sum();
        if total > 100.0 + 1e-9 {
            self.note(
                "classifier.groupWeights",
                format!("the weights add up to {total}, more than 100; all are left out and groups share the score equally"),
            );
            groups.clear();
        }
    }

    fn thresholds(&mut self, v: &Value) -> Option<Thresholds> {
        if v.is_null() {
            return None;
        }
        let pass = v.get("pass").and_then(Value::as_f64);
        let marginal = v.get("marginal").and_then(Value::as_f64);
        if let Some(map) = v.as_object() {
            for k in map.keys() {
                if k != "pass" && k != "marginal" {
                    self.note(
                        &format!("classifier.scoreThresholds.{k}"),
                        "is not a field of Kayenta's score thresholds; ignored",
                    );
                }
            }
        }
        match (pass, marginal) {
            (Some(pass), Some(marginal))
                if (0.0..=100.0).contains(&pass)
                    && (0.0..=100.0).contains(&marginal)
                    && marginal <= pass =>
            {
                Some(Thresholds { pass, marginal })
            }
            _ => {
                let d = Thresholds::default();
                self.note(
                    "classifier.scoreThresholds",
                    format!(
                        "{v} is not a pass and a marginal score within 0..100, marginal at most pass; Augury's defaults (pass {}, marginal {}) apply",
                        d.pass, d.marginal
                    ),
                );
                None
            }
        }
    }
}

/// What the metric's analysis configuration says beyond the model's fields.
struct Canary {
    muted: bool,
}

/// Turns a Kayenta template (Apache Commons Text `StringSubstitutor` syntax, `${name}`;
/// stored with `$\{` escapes) into an Augury template: each `${name}` becomes
/// `{{ name }}`, a variable in `constants` becomes its value. Returns the template and
/// the variables it uses, or why it cannot be expressed.
fn expand(
    template: &str,
    constants: &BTreeMap<String, String>,
) -> Result<(String, BTreeSet<String>), String> {
    // Kayenta stores templates with `${` escaped as `$\{` and unescapes before use.
    let text = template.replace("$\\{", "${");
    if text.contains("{{") {
        return Err("holds `{{`, which Augury's templates read as a placeholder".into());
    }
    if text.contains("<#") || text.contains("[#") {
        return Err(
            "holds a FreeMarker directive (`<#...>`); Augury's templates only fill in values"
                .into(),
        );
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut used = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if rest.starts_with("$${") {
            // The substitutor's escape: `$${x}` is the text `${x}`.
            out.push_str("${");
            rest = &rest[3..];
            continue;
        }
        if !rest.starts_with("${") {
            out.push('$');
            rest = &rest[1..];
            continue;
        }
        let Some(close) = rest.find('}') else {
            return Err(format!(
                "`{}` is not closed by `}}`",
                rest.chars().take(20).collect::<String>()
            ));
        };
        let name = &rest[2..close];
        if let Some(value) = constants.get(name) {
            out.push_str(value);
        } else if AUGURY_VARIABLES.contains(&name) {
            return Err(format!(
                "uses `${{{name}}}`, a name Augury fills itself (the analysis's {name})"
            ));
        } else if is_variable(name) {
            out.push_str("{{ ");
            out.push_str(name);
            out.push_str(" }}");
            used.insert(name.to_string());
        } else {
            return Err(format!(
                "`${{{name}}}` is not a plain variable (defaults, expressions and names outside letters, digits, `_`, `.`, `-` have no counterpart)"
            ));
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok((out, used))
}

/// A name Augury's templates accept (as `template::is_name`).
fn is_variable(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The template parses as Augury's, and every placeholder stands where a scope value
/// (any text) can go: inside a string literal.
fn check_template(promql: &str, variables: &BTreeSet<String>) -> Result<(), String> {
    if promql.trim().is_empty() {
        return Err("the query is empty".into());
    }
    let plain = |e: TemplateError| {
        let text = e.to_string();
        text.strip_prefix("query `imported`: ")
            .unwrap_or(&text)
            .to_string()
    };
    let template = Template::parse(promql, "imported").map_err(plain)?;
    let vars: BTreeMap<String, String> = variables
        .iter()
        .map(|v| (v.clone(), "x".to_string()))
        .collect();
    match template.render(&vars, "imported") {
        Ok(_) => Ok(()),
        Err(TemplateError::Unsafe { name, .. }) => Err(format!(
            "`${{{name}}}` stands outside a string literal, where Augury fills in only durations and numbers (Kayenta pastes any text)"
        )),
        Err(e) => Err(plain(e)),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn import(config: Value) -> Imported {
        convert(&config, &ImportOptions::default()).unwrap()
    }

    /// A config of one Prometheus metric with `query` and `canary` settings.
    fn one(query: Value, canary: Value) -> Value {
        json!({
            "name": "c",
            "metrics": [{
                "name": "m",
                "query": query,
                "groups": ["g"],
                "analysisConfigurations": {"canary": canary},
            }],
        })
    }

    fn inline(template: &str) -> Value {
        json!({"type": "prometheus", "customInlineTemplate": template})
    }

    fn promql(imported: &Imported) -> &str {
        match &imported.model.metrics[0].source {
            Some(Source::Prometheus(p)) => p.promql.as_deref().unwrap(),
            other => panic!("not an inline Prometheus source: {other:?}"),
        }
    }

    fn fields(imported: &Imported) -> Vec<&str> {
        imported.unmapped.iter().map(|u| u.field.as_str()).collect()
    }

    #[test]
    fn a_promql_inline_template_is_the_query_with_kayenta_variables_as_placeholders() {
        let i = import(one(
            inline(
                r#"PromQL:histogram_quantile(0.99, sum by (le) (rate(http_bucket{app="${scope}",region="${location}"}[1m])))"#,
            ),
            json!({}),
        ));
        assert_eq!(
            promql(&i),
            r#"histogram_quantile(0.99, sum by (le) (rate(http_bucket{app="{{ scope }}",region="{{ location }}"}[1m])))"#
        );
        assert_eq!(i.model.scope, vec!["scope", "location"]);
        assert!(i.unmapped.is_empty(), "{:?}", i.unmapped);
        let m = &i.model.metrics[0];
        assert_eq!(
            (m.kind, m.test, m.group.as_deref()),
            (
                MetricKind::Distribution,
                Some(TestKind::MannWhitney),
                Some("g")
            )
        );
    }

    #[test]
    fn stored_escapes_are_undone_and_the_substitutor_escape_is_kept_as_text() {
        // Kayenta stores `${` as `$\{`; `$${x}` is the substitutor's literal `${x}`.
        let i = import(one(
            inline(r#"PromQL:up{job="$\{scope}",note="$${x}"}"#),
            json!({}),
        ));
        assert_eq!(promql(&i), r#"up{job="{{ scope }}",note="${x}"}"#);
    }

    #[test]
    fn extended_scope_params_become_scope_names_and_a_query_resource_type_is_filled_in() {
        let i = import(one(
            json!({"type": "prometheus", "resourceType": "k8s_pod",
                   "customInlineTemplate": "PromQL:avg(cpu{ns='${namespace}',type='${resourceType}',pod=~'${scope}-.*'})"}),
            json!({}),
        ));
        assert_eq!(
            promql(&i),
            "avg(cpu{ns='{{ namespace }}',type='k8s_pod',pod=~'{{ scope }}-.*'})"
        );
        assert_eq!(i.model.scope, vec!["scope", "namespace"]);
    }

    #[test]
    fn a_filter_template_goes_before_the_label_bindings_inside_avg() {
        let mut config = one(
            json!({"type": "prometheus", "metricName": "cpu", "customFilterTemplate": "t",
                   "labelBindings": ["mode=\"user\""]}),
            json!({}),
        );
        config["templates"] = json!({"t": "namespace='${namespace}', scope='${scope}'"});
        let i = import(config);
        assert_eq!(
            promql(&i),
            "avg(cpu{namespace='{{ namespace }}', scope='{{ scope }}',mode=\"user\"})"
        );
        // A non-PromQL inline template is a filter too.
        let i = import(one(
            json!({"type": "prometheus", "metricName": "cpu", "customInlineTemplate": "pod='${scope}'"}),
            json!({}),
        ));
        assert_eq!(promql(&i), "avg(cpu{pod='{{ scope }}'})");
        // A template the config does not hold: the metric cannot be built.
        let e = convert(
            &one(
                json!({"type": "prometheus", "metricName": "cpu", "customFilterTemplate": "nope"}),
                json!({}),
            ),
            &ImportOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.field, "metrics");
        assert!(
            e.reason.contains("metrics[0].query.customFilterTemplate"),
            "{e}"
        );
    }

    #[test]
    fn resource_types_build_kayentas_scope_filters_with_the_scope_label() {
        let options = ImportOptions {
            scope_label: "host".into(),
            ..ImportOptions::default()
        };
        let gce = convert(
            &one(
                json!({"type": "prometheus", "metricName": "cpu", "resourceType": "gce_instance",
                       "labelBindings": ["mode=\"user\""]}),
                json!({}),
            ),
            &options,
        )
        .unwrap();
        assert_eq!(
            promql(&gce),
            r#"avg(cpu{mode="user",host=~"{{ scope }}-.{4}",zone=~".+/zones/{{ location }}-.{1}"})"#
        );
        assert_eq!(gce.model.scope, vec!["scope", "location"]);
        let ec2 = convert(
            &one(
                json!({"type": "prometheus", "metricName": "cpu", "resourceType": "aws_ec2_instance"}),
                json!({}),
            ),
            &options,
        )
        .unwrap();
        assert_eq!(
            promql(&ec2),
            r#"avg(cpu{asg_groupName="{{ scope }}",zone=~"{{ location }}.{1}"})"#
        );
    }

    #[test]
    fn a_metric_kayenta_could_not_query_is_left_out_and_named() {
        let mut config = json!({"name": "c", "metrics": [
            {"name": "no-type", "query": {"type": "prometheus", "metricName": "x"}},
            {"name": "k8s", "query": {"type": "prometheus", "metricName": "x", "resourceType": "k8s_pod"}},
            {"name": "old", "query": {"type": "prometheus", "metricName": "x", "customFilter": "a=\"b\""}},
            {"name": "atlas", "query": {"type": "atlas", "q": "name,x,:eq"}},
            {"name": "ok", "query": inline("PromQL:up{a='${scope}'}"), "groups": ["g"]},
        ]});
        let i = import(config.clone());
        assert_eq!(
            fields(&i),
            vec![
                "metrics[0].query.resourceType",
                "metrics[1].query.resourceType",
                "metrics[2].query.customFilter",
                "metrics[3].query.type",
            ]
        );
        assert!(i.unmapped.iter().all(|u| u.reason.ends_with(LEFT_OUT)));
        assert_eq!(i.model.metrics.len(), 1);
        // Nothing usable: refused, naming every metric and why.
        config["metrics"].as_array_mut().unwrap().pop();
        let e = convert(&config, &ImportOptions::default()).unwrap_err();
        assert_eq!(e.field, "metrics");
        for f in ["metrics[0]", "metrics[1]", "metrics[2]", "metrics[3]"] {
            assert!(e.reason.contains(f), "{f} in {e}");
        }
    }

    #[test]
    fn templates_augury_cannot_express_leave_the_metric_out() {
        for (template, why) in [
            ("PromQL:up{a='${scope:-x}'}", "not a plain variable"),
            ("PromQL:<#if scope??>up</#if>", "FreeMarker"),
            ("PromQL:up{a='${step}'}", "a name Augury fills itself"),
            ("PromQL:up{a='{{ scope }}'}", "holds `{{`"),
            ("PromQL:rate(up[${scope}])", "outside a string literal"),
            ("PromQL:up{a='${scope}", "not closed"),
            ("PromQL:up{a='${scope}'}", ""),
        ] {
            let mut config = one(inline(template), json!({}));
            config["metrics"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "ok", "query": inline("PromQL:up"), "groups": ["g"]}));
            let i = import(config);
            if why.is_empty() {
                assert!(i.unmapped.is_empty(), "{template}: {:?}", i.unmapped);
                continue;
            }
            assert_eq!(fields(&i), vec!["metrics[0].query.customInlineTemplate"]);
            assert!(
                i.unmapped[0].reason.contains(why),
                "{template}: {:?}",
                i.unmapped
            );
            assert_eq!(i.model.metrics.len(), 1);
        }
    }

    #[test]
    fn group_by_fields_are_noted_and_the_query_keeps_one_series() {
        let i = import(one(
            json!({"type": "prometheus", "metricName": "cpu", "resourceType": "aws_ec2_instance",
                   "groupByFields": ["mode"]}),
            json!({}),
        ));
        assert!(!promql(&i).contains(" by "), "{}", promql(&i));
        assert_eq!(fields(&i), vec!["metrics[0].query.groupByFields"]);
    }

    #[test]
    fn the_canary_settings_map_onto_the_metric() {
        let m = |canary: Value| import(one(inline("PromQL:up"), canary));
        let defaults = m(json!({}));
        let d = &defaults.model.metrics[0];
        // Kayenta's defaults, written out where Augury's differ.
        assert_eq!(
            (
                d.direction,
                d.effect.measure,
                d.nan,
                d.critical,
                d.must_have_data
            ),
            (
                Direction::Either,
                Some(EffectMeasure::MeanRatio),
                NanStrategy::Remove,
                false,
                false
            )
        );
        // 98% two-sided, as Kayenta's interval.
        assert_eq!(d.alpha, 0.02);
        assert!((d.conf_level() - 0.98).abs() < 1e-12);
        let set = m(
            json!({"direction": "increase", "nanStrategy": "replace", "critical": true,
                           "mustHaveData": true}),
        );
        let s = &set.model.metrics[0];
        assert_eq!(
            (s.direction, s.nan, s.critical, s.must_have_data, s.alpha),
            (Direction::Increase, NanStrategy::Replace, true, true, 0.01)
        );
        assert!(set.unmapped.is_empty());
        assert_eq!(
            m(json!({"direction": "decrease"})).model.metrics[0].direction,
            Direction::Decrease
        );
        // What Kayenta reads as its default is read so, and said.
        let odd = m(json!({"direction": "up", "nanStrategy": "zero", "critical": "yes"}));
        let o = &odd.model.metrics[0];
        assert_eq!(
            (o.direction, o.nan, o.critical),
            (Direction::Either, NanStrategy::Remove, false)
        );
        assert_eq!(
            fields(&odd),
            vec![
                "metrics[0].analysisConfigurations.canary.critical",
                "metrics[0].analysisConfigurations.canary.direction",
                "metrics[0].analysisConfigurations.canary.nanStrategy",
            ]
        );
    }

    #[test]
    fn effect_sizes_map_and_a_critical_threshold_inside_the_allowed_one_is_the_allowed_one() {
        let e = |effect: Value| {
            let i = import(one(inline("PromQL:up"), json!({"effectSize": effect})));
            (
                i.model.metrics[0].effect,
                fields(&i).iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            )
        };
        let (mean, notes) = e(json!({"allowedIncrease": 1.1, "allowedDecrease": 0.9,
                                     "criticalIncrease": 5.0, "criticalDecrease": 0.5}));
        assert_eq!(
            (
                mean.allowed_increase,
                mean.allowed_decrease,
                mean.critical_increase,
                mean.critical_decrease
            ),
            (Some(1.1), Some(0.9), Some(5.0), Some(0.5))
        );
        assert!(notes.is_empty());
        // Kayenta checks the critical threshold only past the allowed one.
        let (inside, _) = e(json!({"allowedIncrease": 1.2, "criticalIncrease": 1.0,
                                   "allowedDecrease": 0.8, "criticalDecrease": 0.9}));
        assert_eq!(
            (inside.critical_increase, inside.critical_decrease),
            (Some(1.2), Some(0.8))
        );
        let (cles, _) = e(json!({"measure": "cles", "allowedIncrease": 0.7}));
        assert_eq!(
            (cles.measure, cles.allowed_increase),
            (Some(EffectMeasure::Cles), Some(0.7))
        );
        let (bad, notes) = e(json!({"measure": "cles", "allowedIncrease": 1.5, "size": 2}));
        assert_eq!(bad.allowed_increase, None);
        assert_eq!(
            notes,
            vec![
                "metrics[0].analysisConfigurations.canary.effectSize.allowedIncrease",
                "metrics[0].analysisConfigurations.canary.effectSize.size",
            ]
        );
        let (_, notes) = e(json!({"measure": "medianRatio"}));
        assert_eq!(
            notes,
            vec!["metrics[0].analysisConfigurations.canary.effectSize.measure"]
        );
    }

    #[test]
    fn muted_metrics_and_outlier_removal_are_named() {
        let mut config = one(
            inline("PromQL:up"),
            json!({"outliers": {"strategy": "remove", "outlierFactor": 2.0}}),
        );
        config["metrics"].as_array_mut().unwrap().push(json!({
            "name": "muted", "query": inline("PromQL:up"), "groups": ["g"],
            "analysisConfigurations": {"canary": {"muted": true, "critical": true}},
        }));
        let i = import(config);
        assert_eq!(
            fields(&i),
            vec![
                "metrics[0].analysisConfigurations.canary.outliers",
                "metrics[1].analysisConfigurations.canary.muted",
            ]
        );
        assert_eq!(i.model.metrics.len(), 1);
        // Keeping outliers is what Augury does: nothing to say.
        let kept = import(one(
            inline("PromQL:up"),
            json!({"outliers": {"strategy": "keep"}}),
        ));
        assert!(kept.unmapped.is_empty());
    }

    #[test]
    fn groups_weights_and_thresholds_map_and_what_does_not_is_named() {
        let config = json!({
            "name": "c",
            "metrics": [
                {"name": "a", "query": inline("PromQL:up"), "groups": ["lat", "all"]},
                {"name": "b", "query": inline("PromQL:up"), "groups": ["err"]},
                {"name": "c", "query": inline("PromQL:up")},
            ],
            "classifier": {
                "groupWeights": {"lat": 60, "err": 30.5, "all": 9.5},
                "scoreThresholds": {"pass": 80, "marginal": 60},
            },
        });
        let i = import(config);
        let groups: Vec<(&str, Option<f64>)> = i
            .model
            .groups
            .iter()
            .map(|(k, g)| (k.as_str(), g.weight))
            .collect();
        assert_eq!(groups, vec![("err", Some(30.5)), ("lat", Some(60.0))]);
        assert_eq!(
            i.model.thresholds,
            Thresholds {
                pass: 80.0,
                marginal: 60.0
            }
        );
        let groups_of: Vec<&str> = i.model.metrics.iter().map(Metric::group).collect();
        assert_eq!(groups_of, vec!["lat", "err", "c"]);
        assert_eq!(
            fields(&i),
            vec![
                "metrics[0].groups",
                "metrics[2].groups",
                "classifier.groupWeights.all"
            ]
        );
        let bad = import(
            json!({"name": "c", "metrics": [{"name": "a", "query": inline("PromQL:up"), "groups": ["g"]}],
            "classifier": {"groupWeights": {"g": 150}, "scoreThresholds": {"pass": 50, "marginal": 70}}}),
        );
        assert!(bad.model.groups.is_empty());
        assert_eq!(bad.model.thresholds, Thresholds::default());
        assert_eq!(
            fields(&bad),
            vec!["classifier.groupWeights", "classifier.scoreThresholds"]
        );
    }

    #[test]
    fn the_rules_option_sets_the_rules_and_kayentas_any_data_is_data() {
        let config = one(inline("PromQL:up"), json!({}));
        let k = import(config.clone());
        assert_eq!(
            (k.model.rules, k.model.metrics[0].min_samples),
            (Rules::Kayenta, Some(1))
        );
        let a = convert(
            &config,
            &ImportOptions {
                rules: Rules::Augury,
                ..ImportOptions::default()
            },
        )
        .unwrap();
        assert_eq!(
            (a.model.rules, a.model.metrics[0].min_samples),
            (Rules::Augury, None)
        );
    }

    #[test]
    fn unknown_fields_are_named_and_bookkeeping_is_not() {
        let mut config = one(
            json!({"type": "prometheus", "customInlineTemplate": "PromQL:up", "step": 60}),
            json!({"weight": 3}),
        );
        let top = config.as_object_mut().unwrap();
        for (k, v) in [
            ("id", json!("x")),
            ("applications", json!(["app"])),
            ("configVersion", json!("1.0")),
            ("createdTimestamp", json!(1)),
            (
                "judge",
                json!({"name": "NetflixACAJudge-v1.0", "judgeConfigurations": {}}),
            ),
            ("owner", json!("me")),
        ] {
            top.insert(k.into(), v);
        }
        config["metrics"][0]["extensions"] = json!({});
        config["metrics"][0]["scopeName"] = json!("default");
        let i = import(config);
        assert_eq!(
            fields(&i),
            vec![
                "owner",
                "metrics[0].extensions",
                "metrics[0].analysisConfigurations.canary.weight",
                "metrics[0].query.step",
            ]
        );
    }

    #[test]
    fn what_is_not_a_canary_config_is_refused_with_its_field() {
        let refused = |v: Value| convert(&v, &ImportOptions::default()).unwrap_err();
        assert_eq!(refused(json!([1])).field, "(config)");
        assert_eq!(refused(json!({"name": "c"})).field, "metrics");
        assert_eq!(
            refused(json!({"name": "c", "metrics": {}})).field,
            "metrics"
        );
        assert_eq!(
            refused(json!({"name": "c", "metrics": []})).reason,
            "the config has no metrics"
        );
        assert_eq!(
            refused(json!({"metrics": [{"name": "a", "query": inline("PromQL:up")}]})).field,
            "name"
        );
    }

    #[test]
    fn a_second_metric_of_the_same_name_is_left_out() {
        let i = import(json!({"name": "c", "metrics": [
            {"name": "a", "query": inline("PromQL:up"), "groups": ["g"]},
            {"name": "a", "query": inline("PromQL:down"), "groups": ["g"]},
        ]}));
        assert_eq!(i.model.metrics.len(), 1);
        assert_eq!(fields(&i), vec!["metrics[1].name"]);
    }
}
