//! `augury check`: validate models and query packs, listing every problem with file,
//! field and reason. Models whose metrics read a query pack are also checked against
//! the packs (the pack and query exist, the query feeds the metric's kind, its template
//! variables are in the model's scope).

use std::path::Path;

use crate::ingest::prometheus::{BUILTIN_PACKS, Pack, PackCatalog};
use crate::model::{BUILTIN_MODELS, Model, Problem, yaml_files};

use super::{EXIT_USAGE, Format};

pub(super) fn run(path: Option<&Path>, queries: Option<&Path>, format: Format) -> i32 {
    let default_dir = Path::new("models");
    let mut checked = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
    let mut models: Vec<(String, Model)> = Vec::new();
    let packs = check_packs(queries, &mut checked, &mut problems);
    let target = path.or(default_dir.is_dir().then_some(default_dir));
    match target {
        Some(p) => match yaml_files(p) {
            Ok(files) if files.is_empty() => problems.push(Problem {
                file: p.display().to_string(),
                field: "(path)".into(),
                reason: "holds no *.yaml or *.yml model".into(),
            }),
            Ok(files) => {
                for f in files {
                    checked.push(f.display().to_string());
                    match Model::from_file(&f) {
                        Ok(m) => models.push((f.display().to_string(), m)),
                        Err(e) => problems.extend(e.problems),
                    }
                }
            }
            Err(p) => problems.push(p),
        },
        None => {
            for (file, text) in BUILTIN_MODELS {
                checked.push(format!("(built-in) {file}"));
                match Model::from_yaml(text, file) {
                    Ok(m) => models.push((file.to_string(), m)),
                    Err(e) => problems.extend(e.problems),
                }
            }
        }
    }
    for (file, model) in &models {
        problems.extend(packs.check_model(model, file));
    }
    match format {
        Format::Json => super::out(&format!(
            "{}\n",
            serde_json::json!({"valid": problems.is_empty(), "checked": checked, "problems": problems})
        )),
        Format::Text => {
            for p in &problems {
                eprintln!("{p}");
            }
            if problems.is_empty() {
                super::out(&format!(
                    "{} file(s) valid: {}\n",
                    checked.len(),
                    checked.join(", ")
                ));
            } else {
                eprintln!(
                    "{} problem(s) in {} file(s) checked",
                    problems.len(),
                    checked.len()
                );
            }
        }
    }
    if problems.is_empty() { 0 } else { EXIT_USAGE }
}

/// Loads the packs models are checked against: the built-ins plus `dir` (or `./queries`
/// when it exists), each pack file checked on its own too.
fn check_packs(
    dir: Option<&Path>,
    checked: &mut Vec<String>,
    problems: &mut Vec<Problem>,
) -> PackCatalog {
    let mut packs = PackCatalog::builtin();
    let default_dir = Path::new("queries");
    match dir.or(default_dir.is_dir().then_some(default_dir)) {
        Some(d) => match yaml_files(d) {
            Ok(files) => {
                for f in files {
                    checked.push(f.display().to_string());
                    match Pack::from_file(&f) {
                        Ok(pack) => packs.insert(pack),
                        Err(e) => problems.extend(e.problems),
                    }
                }
            }
            Err(p) => problems.push(p),
        },
        None => {
            for (file, text) in BUILTIN_PACKS {
                checked.push(format!("(built-in) {file}"));
                if let Err(e) = Pack::from_yaml(text, file) {
                    problems.extend(e.problems);
                }
            }
        }
    }
    packs
}
