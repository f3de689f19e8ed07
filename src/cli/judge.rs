//! `augury judge`: read samples, judge once, print, exit with the verdict's code.

use std::collections::BTreeMap;
use std::path::Path;

use crate::judge::{JudgeError, JudgeOptions, MetricData, judge};
use crate::model::{Catalog, DEFAULT_MODEL, MetricKind, Model};
use crate::stats::Alternative;
use crate::stats::sequential::{Decision, Look, SequentialConfig, judge_looks};

use super::input::{InputError, SampleFile, parse_samples, read_samples};
use super::{EXIT_USAGE, Format, JudgeArgs, fail, render};

/// The example `augury judge` runs with no files: a canary about 8% slower.
const EXAMPLE_BASELINE: (&str, &str) = (
    "examples/judge/baseline.txt",
    include_str!("../../examples/judge/baseline.txt"),
);
const EXAMPLE_CANARY: (&str, &str) = (
    "examples/judge/canary.txt",
    include_str!("../../examples/judge/canary.txt"),
);

pub(super) fn run(args: &JudgeArgs) -> i32 {
    let format = args.format;
    if let Some(path) = &args.looks {
        return run_looks(path, args);
    }
    let model = match load_model(args.model.as_deref()) {
        Ok(m) => m,
        Err(message) => return fail(format, "model", &message, EXIT_USAGE),
    };
    let mut files: Vec<(String, SampleFile)> = Vec::new();
    let data = match (&args.input, &args.baseline, &args.canary) {
        (Some(input), _, _) => match read_input(input) {
            Ok(d) => d,
            Err(e) => return fail(format, "input", &e.to_string(), EXIT_USAGE),
        },
        (None, Some(b), Some(c)) => {
            // The two files are read and parsed side by side.
            let read = |p: &Path| read_samples(p, args.column.as_deref());
            let (baseline, canary) = rayon::join(|| read(b), || read(c));
            match two_samples(&model, args, baseline, canary, &mut files) {
                Ok(d) => d,
                Err(code) => return code,
            }
        }
        _ => {
            if format == Format::Text {
                eprintln!(
                    "augury: no samples given; judging the bundled example ({} vs {}).\n\
                     augury: give --baseline FILE --canary FILE to judge your own (see --help).\n",
                    EXAMPLE_BASELINE.0, EXAMPLE_CANARY.0
                );
            }
            let parse = |(name, text): (&str, &str)| parse_samples(text, name, None);
            match two_samples(
                &model,
                args,
                parse(EXAMPLE_BASELINE),
                parse(EXAMPLE_CANARY),
                &mut files,
            ) {
                Ok(d) => d,
                Err(code) => return code,
            }
        }
    };
    let options = JudgeOptions {
        method: args.method.into(),
        alternative: args.alternative.map(Into::into),
    };
    match judge(&model, &data, &options) {
        Ok(judgment) => {
            match format {
                Format::Json => match serde_json::to_string_pretty(&judgment) {
                    Ok(s) => super::out(&format!("{s}\n")),
                    Err(e) => {
                        return fail(format, "internal", &e.to_string(), super::EXIT_OPERATIONAL);
                    }
                },
                Format::Text => super::out(&render::judgment(&judgment)),
            }
            judgment.verdict.exit_code()
        }
        Err(e) => fail(format, "input", &locate(&e, &files), EXIT_USAGE),
    }
}

/// A built-in model by name, or a model file.
pub(super) fn load_model(spec: Option<&str>) -> Result<Model, String> {
    let spec = spec.unwrap_or(DEFAULT_MODEL);
    let path = Path::new(spec);
    if path.exists() || spec.ends_with(".yaml") || spec.ends_with(".yml") {
        return Model::from_file(path).map_err(|e| e.to_string());
    }
    let catalog = Catalog::builtin();
    catalog.get(spec).cloned().ok_or_else(|| {
        format!(
            "unknown model `{spec}`: not a file, and the built-in models are {}",
            catalog
                .names()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn read_input(path: &Path) -> Result<BTreeMap<String, MetricData>, InputError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| InputError {
        path: name.clone(),
        line: None,
        reason: format!("cannot read: {e}"),
    })?;
    serde_json::from_str(&text).map_err(|e| InputError {
        path: name,
        line: Some(e.line()),
        reason: format!(
            "not a JSON object of metric name to {{\"baseline\": ..., \"canary\": ...}}: {e}"
        ),
    })
}

/// Two sample files (given or bundled) as the data of the model's metric; on failure,
/// reports it and gives the exit code.
fn two_samples(
    model: &Model,
    args: &JudgeArgs,
    baseline: Result<SampleFile, InputError>,
    canary: Result<SampleFile, InputError>,
    files: &mut Vec<(String, SampleFile)>,
) -> Result<BTreeMap<String, MetricData>, i32> {
    match (baseline, canary) {
        (Ok(b), Ok(c)) => single_metric(model, args.metric.as_deref(), b, c, files)
            .map_err(|message| fail(args.format, "usage", &message, EXIT_USAGE)),
        (Err(e), _) | (_, Err(e)) => Err(fail(args.format, "input", &e.to_string(), EXIT_USAGE)),
    }
}

/// Puts two sample files on the one metric they are for.
fn single_metric(
    model: &Model,
    metric: Option<&str>,
    mut baseline: SampleFile,
    mut canary: SampleFile,
    files: &mut Vec<(String, SampleFile)>,
) -> Result<BTreeMap<String, MetricData>, String> {
    let name = match metric {
        Some(m) => {
            let found = model
                .metric(m)
                .ok_or_else(|| format!("model `{}` has no metric `{m}`", model.name))?;
            if found.kind != MetricKind::Distribution {
                return Err(format!(
                    "metric `{m}` of model `{}` is an error ratio; sample files feed distributions (use --input for counts)",
                    model.name
                ));
            }
            m.to_string()
        }
        None => {
            let candidates: Vec<&str> = model
                .metrics
                .iter()
                .filter(|m| m.kind == MetricKind::Distribution)
                .map(|m| m.name.as_str())
                .collect();
            match candidates.as_slice() {
                [one] => one.to_string(),
                [] => {
                    return Err(format!(
                        "model `{}` has no distribution metric for sample files",
                        model.name
                    ));
                }
                many => {
                    return Err(format!(
                        "model `{}` has several distribution metrics ({}); choose one with --metric, or give --input",
                        model.name,
                        many.join(", ")
                    ));
                }
            }
        }
    };
    // The values move to the judge; the files keep their paths and line numbers, all
    // that locating a refused value needs.
    let data = MetricData::Samples {
        baseline: std::mem::take(&mut baseline.values),
        canary: std::mem::take(&mut canary.values),
    };
    files.push(("baseline".into(), baseline));
    files.push(("canary".into(), canary));
    Ok(BTreeMap::from([(name, data)]))
}

/// A judge error, with the file and line of a refused value when it came from a file.
fn locate(e: &JudgeError, files: &[(String, SampleFile)]) -> String {
    if let JudgeError::NaN { side, index, .. } = e
        && let Some((_, f)) = files.iter().find(|(s, _)| s == side)
    {
        return match f.lines.get(*index) {
            Some(&line) if line > 0 => format!("{}:{line}: {e}", f.path),
            _ => format!("{}: element {index}: {e}", f.path),
        };
    }
    e.to_string()
}

/// `augury judge --looks FILE`: the sequential test over the user's own looks.
fn run_looks(path: &Path, args: &JudgeArgs) -> i32 {
    let format = args.format;
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return fail(
                format,
                "input",
                &format!("{name}: cannot read: {e}"),
                EXIT_USAGE,
            );
        }
    };
    let looks: Vec<Look> = match serde_json::from_str(&text) {
        Ok(l) => l,
        Err(e) => {
            return fail(
                format,
                "input",
                &format!(
                    "{name}:{}: not a JSON list of looks ({{\"baseline\": ..., \"canary\": ...}}): {e}",
                    e.line()
                ),
                EXIT_USAGE,
            );
        }
    };
    let config = SequentialConfig {
        alpha: args.alpha,
        alternative: args
            .alternative
            .map(Into::into)
            .unwrap_or(Alternative::Greater),
        ..SequentialConfig::default()
    };
    let report = match judge_looks(&looks, &config) {
        Ok(r) => r,
        Err(e) => return fail(format, "input", &format!("{name}: {e}"), EXIT_USAGE),
    };
    match format {
        Format::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => super::out(&format!("{s}\n")),
            Err(e) => return fail(format, "internal", &e.to_string(), super::EXIT_OPERATIONAL),
        },
        Format::Text => super::out(&render::looks(&report)),
    }
    match report.decision {
        Decision::Reject => 1,
        Decision::Continue | Decision::AcceptEquivalent => 0,
    }
}
