//! The `augury` command line: argument parsing, and one module per command that turns
//! library results into output and exit codes. No statistics or judging live here.
//!
//! Exit codes: 0 pass, 1 fail, 3 inconclusive, 2 bad usage or input,
//! 4 operational error.

mod analyze;
mod check;
mod completions;
mod demo;
mod import;
pub mod input;
mod judge;
mod logging;
mod man;
mod render;
mod serve;
mod simulate;
mod wait;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::stats::{Alternative, Method};

/// Bad usage or bad input.
pub const EXIT_USAGE: i32 = 2;
/// Operational error (I/O, server unreachable).
pub const EXIT_OPERATIONAL: i32 = 4;

/// What `augury --version` says: the package version and the commit the binary was built
/// from (`build.rs`: git, else `AUGURY_BUILD_COMMIT`, else `unknown`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AUGURY_COMMIT"),
    ")"
);

#[derive(Parser, Debug)]
#[command(
    name = "augury",
    version = VERSION,
    about = "Canary judge: compares a canary with its baseline and says pass, fail or inconclusive",
    long_about = "Canary judge: compares a canary version with its baseline using rank tests \
(Mann-Whitney U, Hodges-Lehmann shift), error-ratio tests and SLO burn rates, and explains \
every verdict with the numbers behind it.\n\n\
Exit codes: 0 pass, 1 fail, 3 inconclusive or marginal, 2 bad usage or input, 4 operational error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: HTTP API, OTLP receiver, analyses on a schedule.
    ///
    /// Every flag can also be set as an AUGURY_* environment variable or in the
    /// config file; a flag beats the environment, which beats the file.
    /// Stops cleanly on SIGTERM or SIGINT: intervals being written are finished first.
    /// Logs go to stderr (AUGURY_LOG or RUST_LOG set the filter, default info); own
    /// traces go over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    Serve(serve::ServeArgs),
    /// See Augury work in a minute: a daemon, simulated traffic and a canary that regresses.
    ///
    /// Starts the daemon on a temporary SQLite database with every listener on a free
    /// port of 127.0.0.1, sends it real OTLP for the baseline and canary of a demo
    /// service, starts an analysis through the HTTP API and follows its verdict live.
    /// Nothing to install, nothing left behind. Exit 0 when the demo ran.
    Demo(demo::DemoArgs),
    /// Judge baseline vs canary samples once, from files (no daemon needed).
    ///
    /// Samples are one number per line, a CSV column (--column), or a JSON array;
    /// `NaN`, `NA` or an empty CSV field is a missing value. For models with several
    /// metrics, give --input with a JSON object of metric name to
    /// {"baseline": [...], "canary": [...]} or {"baseline": {"requests": n, "errors": k}, ...}.
    /// With no file arguments, judges the bundled example (a canary 8% slower).
    #[command(verbatim_doc_comment)]
    Judge(JudgeArgs),
    /// Simulate many canary analyses to measure false alarms, power and time to detect.
    ///
    /// Compares Augury's anytime-valid sequential tests, a fixed-horizon Mann-Whitney
    /// test at the end only, and the Kayenta procedure (re-judging a growing window every
    /// interval), on scenarios from A/A to latency, tail and error regressions.
    /// Deterministic given --seed; uses every core.
    Simulate(simulate::SimulateArgs),
    /// Validate judge models and query packs, and models against the packs they read.
    ///
    /// With no PATH, checks ./models if it exists, else the built-in models; query packs
    /// come from --queries, else ./queries if it exists, else the built-in packs.
    /// Exit 0 when all are valid, 2 when any is not (every problem is listed).
    Check {
        /// Model file or directory.
        path: Option<PathBuf>,
        /// Query pack directory (default ./queries if it exists, else the built-in packs).
        #[arg(long, value_name = "DIR")]
        queries: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Start an analysis on a running daemon; with --wait, wait for its verdict.
    ///
    /// Without --wait, prints the analysis id. With --wait, exits as `augury wait`.
    Analyze(analyze::AnalyzeArgs),
    /// Wait for an analysis's verdict on a daemon, showing progress (for CI).
    ///
    /// Exit 0 pass, 1 fail, 3 inconclusive, cancelled or timed out, 2 bad usage or a
    /// request the daemon refused, 4 daemon unreachable.
    Wait(wait::WaitArgs),
    /// Convert another judge's config to an Augury model: `import kayenta CONFIG.json`.
    ///
    /// Writes the model as YAML (stdout, or --out) and names on stderr every field with
    /// no counterpart. Exit 0 written, 1 written with unmapped fields under
    /// --fail-on-unmapped, 2 bad usage or nothing importable, 4 cannot write.
    Import(import::ImportArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions(completions::CompletionsArgs),
    /// Print the manual page (roff), or write one page per command with --out-dir.
    Man(man::ManArgs),
}

#[derive(clap::Args, Debug)]
pub struct JudgeArgs {
    /// Baseline samples (the version running now).
    #[arg(long, value_name = "FILE", requires = "canary")]
    pub baseline: Option<PathBuf>,
    /// Canary samples (the new version).
    #[arg(long, value_name = "FILE", requires = "baseline")]
    pub canary: Option<PathBuf>,
    /// JSON object of metric name to baseline/canary data, for multi-metric models.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["baseline", "canary"])]
    pub input: Option<PathBuf>,
    /// Judge a sequence of looks with the anytime-valid sequential test: a JSON list, in
    /// time order, of {"baseline": [...], "canary": [...]} (latency) or
    /// {"baseline": {"requests": n, "errors": k}, "canary": {...}} (counts), each holding
    /// what arrived since the previous look.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["baseline", "canary", "input", "model", "metric"])]
    pub looks: Option<PathBuf>,
    /// Significance level of the sequential test (with --looks).
    #[arg(long, default_value_t = 0.01, requires = "looks")]
    pub alpha: f64,
    /// Model: a built-in name (default, http-red) or a YAML file.
    #[arg(long, value_name = "NAME|FILE")]
    pub model: Option<String>,
    /// Which metric of the model --baseline/--canary feed (default: its only distribution metric).
    #[arg(long, value_name = "NAME")]
    pub metric: Option<String>,
    /// CSV column holding the samples: header name or 1-based number.
    #[arg(long, value_name = "NAME|N")]
    pub column: Option<String>,
    /// How p-values and intervals are computed.
    #[arg(long, value_enum, default_value_t = MethodArg::Auto)]
    pub method: MethodArg,
    /// Override the alternative each metric's direction implies.
    #[arg(long, value_enum)]
    pub alternative: Option<AlternativeArg>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum MethodArg {
    /// Exact for small samples without ties, asymptotic otherwise.
    Auto,
    Exact,
    Asymptotic,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Method {
        match m {
            MethodArg::Auto => Method::Auto,
            MethodArg::Exact => Method::Exact,
            MethodArg::Asymptotic => Method::Asymptotic,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum AlternativeArg {
    TwoSided,
    /// Canary larger than baseline.
    Greater,
    /// Canary smaller than baseline.
    Less,
}

impl From<AlternativeArg> for Alternative {
    fn from(a: AlternativeArg) -> Alternative {
        match a {
            AlternativeArg::TwoSided => Alternative::TwoSided,
            AlternativeArg::Greater => Alternative::Greater,
            AlternativeArg::Less => Alternative::Less,
        }
    }
}

/// Runs the command line; returns the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Judge(args) => judge::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Check {
            path,
            queries,
            format,
        } => check::run(path.as_deref(), queries.as_deref(), format),
        Command::Analyze(args) => analyze::run(args),
        Command::Wait(args) => wait::run(args),
        Command::Import(args) => import::run(&args),
        Command::Completions(args) => completions::run(&args),
        Command::Man(args) => man::run(&args),
    }
}

/// The multi-threaded runtime the daemon commands run on; on failure, says so for
/// `command` and gives the exit code.
pub(crate) fn daemon_runtime(command: &str) -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("augury {command}: cannot start the async runtime: {e}");
            EXIT_OPERATIONAL
        })
}

/// Writes command output to stdout. A closed pipe (`augury ... | head`) ends the output
/// quietly instead of panicking the way `print!` does.
pub(crate) fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Writes generated bytes (a script, a page) to stdout; a reader that closed the pipe
/// early (`augury man | head`) is not an error.
pub(crate) fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Prints an error the way the chosen format wants it and returns `code`.
/// The text of the file at `path`, or of stdin when `path` is `-`; `what` names it in the
/// stdin error (`the request`, `the config`).
fn read_file_or_stdin(path: &std::path::Path, what: &str) -> Result<String, String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| format!("cannot read {what} from stdin: {e}"))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))
}

pub(crate) fn fail(format: Format, kind: &str, message: &str, code: i32) -> i32 {
    match format {
        Format::Json => out(&format!(
            "{}\n",
            serde_json::json!({"error": {"kind": kind, "message": message}})
        )),
        Format::Text => eprintln!("augury: {message}"),
    }
    code
}
