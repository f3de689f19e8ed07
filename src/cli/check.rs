//! `augury check`: validate models, listing every problem with file, field and reason.

use std::path::Path;

use crate::model::{BUILTIN_MODELS, Model, Problem, yaml_files};

use super::{EXIT_USAGE, Format};

pub(super) fn run(path: Option<&Path>, format: Format) -> i32 {
    let default_dir = Path::new("models");
    let mut checked = Vec::new();
    let mut problems: Vec<Problem> = Vec::new();
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
                    if let Err(e) = Model::from_file(&f) {
                        problems.extend(e.problems);
                    }
                }
            }
            Err(p) => problems.push(p),
        },
        None => {
            for (file, text) in BUILTIN_MODELS {
                checked.push(format!("(built-in) {file}"));
                if let Err(e) = Model::from_yaml(text, file) {
                    problems.extend(e.problems);
                }
            }
        }
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
                    "{} model file(s) valid: {}\n",
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
