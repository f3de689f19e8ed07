//! `augury import kayenta CONFIG.json`: a Kayenta canary config written as an Augury
//! model (YAML), with every field that has no counterpart named on stderr.
//!
//! The conversion is `kayenta::config::convert`; this module reads the file, writes the
//! model and picks the exit code: 0 written, 1 written but fields were left unmapped and
//! `--fail-on-unmapped` was given, 2 bad usage or a config nothing can be imported from,
//! 4 the model could not be written.

use std::path::PathBuf;

use clap::ValueEnum;
use serde_json::Value;

use crate::kayenta::config::{ImportOptions, Imported, convert};
use crate::model::Rules;

use super::{EXIT_OPERATIONAL, EXIT_USAGE};

/// Exit code when `--fail-on-unmapped` is given and some field was not mapped.
pub const EXIT_UNMAPPED: i32 = 1;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub from: ImportFrom,
}

#[derive(clap::Subcommand, Debug)]
pub enum ImportFrom {
    /// Convert a Kayenta canary config (JSON) to an Augury model (YAML).
    ///
    /// Prometheus metrics become inline PromQL (`source: {prometheus: {promql}}`) built
    /// as Kayenta builds its queries, with Kayenta's `${scope}`, `${location}` and other
    /// template variables as the model's scope names. Each field with no counterpart
    /// (a muted metric, outlier removal, a second group, another metrics store...) is
    /// printed to stderr with its JSON path and what became of it.
    ///
    /// Exit 0 when the model was written, 1 when it was written but fields were left
    /// unmapped and --fail-on-unmapped was given, 2 when the config is not one or nothing
    /// in it can be imported, 4 when the model cannot be written.
    Kayenta(KayentaArgs),
}

#[derive(clap::Args, Debug)]
pub struct KayentaArgs {
    /// The canary config, as Kayenta's /canaryConfig API returns it; `-` reads stdin.
    #[arg(value_name = "CONFIG.json")]
    pub config: PathBuf,
    /// Write the model here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Whose rules the model judges by: Kayenta's (the verdicts Kayenta gave) or Augury's.
    #[arg(long, value_enum, default_value_t = RulesArg::Kayenta)]
    pub rules: RulesArg,
    /// The label your Kayenta Prometheus account matched scopes against (its
    /// `scopeLabel`), for metrics with `resourceType: gce_instance`.
    #[arg(long, value_name = "LABEL", default_value = "instance")]
    pub scope_label: String,
    /// Exit 1 (after writing the model) when any field was left unmapped.
    #[arg(long)]
    pub fail_on_unmapped: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesArg {
    /// Kayenta's classifier and scorer (`rules: kayenta`).
    Kayenta,
    /// Augury's p-values and effect gates (`rules: augury`).
    Augury,
}

impl From<RulesArg> for Rules {
    fn from(r: RulesArg) -> Rules {
        match r {
            RulesArg::Kayenta => Rules::Kayenta,
            RulesArg::Augury => Rules::Augury,
        }
    }
}

pub(super) fn run(args: &ImportArgs) -> i32 {
    match &args.from {
        ImportFrom::Kayenta(args) => kayenta(args),
    }
}

fn kayenta(args: &KayentaArgs) -> i32 {
    let source = args.config.display().to_string();
    let text = match super::read_file_or_stdin(&args.config, "the config") {
        Ok(t) => t,
        Err(e) => {
            eprintln!("augury import: {e}");
            return EXIT_USAGE;
        }
    };
    let config: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("augury import: {source}: not JSON: {e}");
            return EXIT_USAGE;
        }
    };
    let options = ImportOptions {
        rules: args.rules.into(),
        scope_label: args.scope_label.clone(),
    };
    if !is_label_name(&options.scope_label) {
        eprintln!(
            "augury import: --scope-label `{}` is not a Prometheus label name (letters, digits, `_`; not starting with a digit)",
            options.scope_label
        );
        return EXIT_USAGE;
    }
    let imported = match convert(&config, &options) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("augury import: {source}: {e}");
            return EXIT_USAGE;
        }
    };
    let yaml = match model_yaml(&imported, &source) {
        Ok(y) => y,
        Err(e) => {
            eprintln!("augury import: cannot write the model as YAML: {e}");
            return EXIT_OPERATIONAL;
        }
    };
    let written =
        match &args.out {
            Some(path) => std::fs::write(path, &yaml)
                .map_err(|e| format!("cannot write {}: {e}", path.display())),
            None => super::write_stdout(yaml.as_bytes())
                .map_err(|e| format!("cannot write the model: {e}")),
        };
    if let Err(e) = written {
        eprintln!("augury import: {e}");
        return EXIT_OPERATIONAL;
    }
    for u in &imported.unmapped {
        eprintln!("augury import: unmapped: {}: {}", u.field, u.reason);
    }
    if args.fail_on_unmapped && !imported.unmapped.is_empty() {
        eprintln!(
            "augury import: {} field(s) unmapped (--fail-on-unmapped)",
            imported.unmapped.len()
        );
        return EXIT_UNMAPPED;
    }
    0
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The model as YAML, fields left at their default left out, headed by comments naming
/// the config it came from and what was not mapped.
fn model_yaml(imported: &Imported, source: &str) -> Result<String, String> {
    let mut value = serde_json::to_value(&imported.model).map_err(|e| e.to_string())?;
    drop_nulls(&mut value);
    let mut options = serde_saphyr::SerializerOptions::default();
    // One query on one line, as written: a folded scalar would break it at spaces.
    options.prefer_block_scalars = false;
    let body = serde_saphyr::to_string_with_options(&Ordered(&value), options)
        .map_err(|e| e.to_string())?;
    let mut out =
        format!("# Imported from the Kayenta canary config {source} (augury import kayenta).\n");
    if !imported.unmapped.is_empty() {
        out.push_str("# Not mapped:\n");
        for u in &imported.unmapped {
            let line = format!("{}: {}", u.field, u.reason);
            out.push_str("#   ");
            out.push_str(&line.replace('\n', " "));
            out.push('\n');
        }
    }
    out.push_str(&body);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(list) => list.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// The order a reader expects a model's keys in (the order `models/README.md` documents
/// them); keys not listed follow, sorted.
const KEY_ORDER: [&str; 26] = [
    "name",
    "description",
    "rules",
    "scope",
    "thresholds",
    "pass",
    "marginal",
    "groups",
    "metrics",
    "kind",
    "group",
    "source",
    "test",
    "direction",
    "alpha",
    "effect",
    "measure",
    "allowed_increase",
    "allowed_decrease",
    "critical_increase",
    "critical_decrease",
    "critical",
    "must_have_data",
    "min_samples",
    "nan",
    "weight",
];

/// A JSON value serialized with its object keys in [`KEY_ORDER`].
struct Ordered<'a>(&'a Value);

impl serde::Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Object(map) => {
                let rank = |k: &str| KEY_ORDER.iter().position(|o| *o == k).unwrap_or(usize::MAX);
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort_by_key(|k| (rank(k), *k));
                let mut out = serializer.serialize_map(Some(keys.len()))?;
                for k in keys {
                    out.serialize_entry(k, &Ordered(&map[k]))?;
                }
                out.end()
            }
            Value::Array(list) => {
                let mut out = serializer.serialize_seq(Some(list.len()))?;
                for v in list {
                    out.serialize_element(&Ordered(v))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}
