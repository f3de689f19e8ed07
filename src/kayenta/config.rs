//! A Kayenta canary config converted to an Augury model.

use crate::model::{Model, Rules};

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

/// Converts a Kayenta canary config (its JSON) to a model.
pub fn convert(
    config: &serde_json::Value,
    options: &ImportOptions,
) -> Result<Imported, ConfigError> {
    let _ = (config, options);
    Err(ConfigError {
        field: "(config)".into(),
        reason: "not converted yet".into(),
    })
}
