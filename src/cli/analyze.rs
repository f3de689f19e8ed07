//! `augury analyze`: start an analysis on a daemon and, with `--wait`, wait for its verdict.
//!
//! The request is built from `--file` (a JSON analysis request, `-` for stdin) and the
//! flags, flags winning. Without `--wait` it prints the analysis id on stdout (so
//! `ID=$(augury analyze ...)` works) and exits 0; with `--wait` it behaves as `augury wait`.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::analysis::VerdictView;

use super::wait::{Client, ClientError, ServerArgs, WaitOptions, block_on, wait_for};
use super::{EXIT_USAGE, Format};

#[derive(clap::Args, Debug)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// JSON analysis request (as POST /api/v1/analyses takes); `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Idempotency key: the same key gives back the same analysis (e.g. checkout@1.4.2,
    /// or the pipeline's run id).
    #[arg(long)]
    pub key: Option<String>,
    /// Model name (built into the daemon or from its --models); default http-red.
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// A baseline scope value, NAME=VALUE (repeat for each name the model needs).
    #[arg(long = "baseline", value_name = "NAME=VALUE")]
    pub baseline: Vec<String>,
    /// A canary scope value, NAME=VALUE (repeat for each name the model needs).
    #[arg(long = "canary", value_name = "NAME=VALUE")]
    pub canary: Vec<String>,
    /// How often the analysis judges (default 30s).
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// How long it runs before the final verdict (default 10m). Not with --start/--end.
    #[arg(long, value_name = "DURATION")]
    pub lifetime: Option<String>,
    /// Judge a window that began in the past, from this RFC 3339 time (e.g. a pipeline's
    /// deploy time, 2026-12-07T10:00:00Z); needs --end, and a model whose metrics all come
    /// from Prometheus. Judged in one look unless --interval divides the window.
    #[arg(long, value_name = "TIME", requires = "end")]
    pub start: Option<String>,
    /// The end of the --start window (RFC 3339); once past, the verdict comes as soon as
    /// Prometheus answers.
    #[arg(long, value_name = "TIME", requires = "start")]
    pub end: Option<String>,
    /// Resolution of the window's range queries, one sample per step (default 30s).
    #[arg(long, value_name = "DURATION", requires = "start")]
    pub step: Option<String>,
    /// Notifiers to tell about the verdict (comma-separated names from the daemon's config).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub notify: Option<Vec<String>>,
    /// Wait for the verdict, showing progress; exit as `augury wait`.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub options: WaitOptions,
}

/// The model `augury analyze` asks for when neither the file nor the flags name one.
const DEFAULT_ANALYZE_MODEL: &str = "http-red";

pub(super) fn run(args: AnalyzeArgs) -> i32 {
    let format = args.options.format;
    let body = match request_body(&args) {
        Ok(b) => b,
        Err(message) => return super::fail(format, "usage", &message, EXIT_USAGE),
    };
    let client = match Client::new(&args.server) {
        Ok(c) => c,
        Err(e) => return e.report(format),
    };
    block_on(async {
        let (status, view): (StatusCode, VerdictView) = client
            .post(&["api", "v1", "analyses"], &body)
            .await?;
        let what = if status == StatusCode::CREATED {
            "created"
        } else {
            "already exists"
        };
        if args.wait {
            eprintln!("augury: analysis {} {what} (key {})", view.id, view.key);
            return wait_for(&client, &view.id, &args.options).await;
        }
        match format {
            Format::Json => super::wait::print_verdict(&view, Format::Json),
            Format::Text => {
                eprintln!(
                    "augury: analysis {what} (key {}, status {}); wait for it with: augury wait --server {} {}",
                    view.key,
                    view.status.as_str(),
                    args.server.server,
                    view.id
                );
                println!("{}", view.id);
            }
        }
        Ok::<i32, ClientError>(0)
    })
    .unwrap_or_else(|e| e.report(format))
}

/// The request: the file's object, then the flags over it.
fn request_body(args: &AnalyzeArgs) -> Result<Value, String> {
    let mut body = match &args.file {
        Some(path) => read_request(path)?,
        None => Map::new(),
    };
    let mut set = |field: &str, value: Option<Value>| {
        if let Some(v) = value {
            body.insert(field.to_string(), v);
        }
    };
    set("key", args.key.clone().map(Value::String));
    set("model", args.model.clone().map(Value::String));
    set("interval", args.interval.clone().map(Value::String));
    set("lifetime", args.lifetime.clone().map(Value::String));
    set("start", args.start.clone().map(Value::String));
    set("end", args.end.clone().map(Value::String));
    set("step", args.step.clone().map(Value::String));
    set("notify", args.notify.as_ref().map(|n| json!(n)));
    for (side, pairs) in [("baseline", &args.baseline), ("canary", &args.canary)] {
        if pairs.is_empty() {
            continue;
        }
        let scope = body
            .entry(side.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(scope) = scope else {
            return Err(format!(
                "the request's `{side}` is not an object of name to value"
            ));
        };
        for pair in pairs {
            let (name, value) = pair.split_once('=').ok_or_else(|| {
                format!("--{side} `{pair}` is not NAME=VALUE (e.g. --{side} service.version=1.4.2)")
            })?;
            if name.trim().is_empty() {
                return Err(format!("--{side} `{pair}` has an empty name"));
            }
            scope.insert(name.trim().to_string(), Value::String(value.to_string()));
        }
    }
    if !body.contains_key("key") {
        return Err(
            "give --key (an idempotency key, e.g. checkout@1.4.2 or the pipeline's run id), or a key in --file"
                .into(),
        );
    }
    body.entry("model".to_string())
        .or_insert_with(|| Value::String(DEFAULT_ANALYZE_MODEL.into()));
    for side in ["baseline", "canary"] {
        if !body.contains_key(side) {
            return Err(format!(
                "give the {side} scope: --{side} NAME=VALUE for each name the model needs, or `{side}` in --file"
            ));
        }
    }
    Ok(Value::Object(body))
}

fn read_request(path: &std::path::Path) -> Result<Map<String, Value>, String> {
    let name = path.display().to_string();
    let text = super::read_file_or_stdin(path, "the request")?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("{name}: not a JSON object (an analysis request)")),
        Err(e) => Err(format!("{name}: not valid JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(argv: &[&str]) -> AnalyzeArgs {
        let cli = crate::cli::Cli::try_parse_from(
            ["augury", "analyze", "--server", "http://127.0.0.1:1"]
                .iter()
                .chain(argv),
        )
        .unwrap();
        match cli.command {
            crate::cli::Command::Analyze(a) => a,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn flags_make_the_request() {
        let body = request_body(&args(&[
            "--key",
            "checkout@1.4.2",
            "--baseline",
            "service.name=checkout",
            "--baseline",
            "service.version=1.4.1",
            "--canary",
            "service.name=checkout",
            "--canary",
            "service.version=1.4.2",
            "--lifetime",
            "5m",
            "--notify",
            "a,b",
        ]))
        .unwrap();
        assert_eq!(
            body,
            json!({"key": "checkout@1.4.2", "model": "http-red", "lifetime": "5m",
                   "notify": ["a", "b"],
                   "baseline": {"service.name": "checkout", "service.version": "1.4.1"},
                   "canary": {"service.name": "checkout", "service.version": "1.4.2"}})
        );
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.json");
        std::fs::write(
            &file,
            r#"{"key": "k", "model": "default", "baseline": {"v": "1"}, "canary": {"v": "2"}, "interval": "1m"}"#,
        )
        .unwrap();
        let body = request_body(&args(&[
            "--file",
            file.to_str().unwrap(),
            "--canary",
            "v=3",
            "--interval",
            "10s",
        ]))
        .unwrap();
        assert_eq!(
            body,
            json!({"key": "k", "model": "default", "baseline": {"v": "1"},
                   "canary": {"v": "3"}, "interval": "10s"})
        );
    }

    #[test]
    fn missing_or_malformed_parts_are_named() {
        let e = request_body(&args(&["--baseline", "a=1", "--canary", "a=2"])).unwrap_err();
        assert!(e.contains("--key"), "{e}");
        let e = request_body(&args(&["--key", "k", "--baseline", "a"])).unwrap_err();
        assert!(e.contains("--baseline `a` is not NAME=VALUE"), "{e}");
        let e = request_body(&args(&["--key", "k", "--baseline", "a=1"])).unwrap_err();
        assert!(e.contains("give the canary scope"), "{e}");
    }
}
