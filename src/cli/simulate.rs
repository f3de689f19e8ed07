//! `augury simulate`: the Monte Carlo comparison of Augury's sequential tests with a
//! fixed-horizon test and the Kayenta procedure (the work is in `crate::simulate`).

use std::io::IsTerminal;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

use crate::simulate::{SimConfig, run_simulation};

use super::{EXIT_OPERATIONAL, EXIT_USAGE, Format, fail};

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// Seed of every random draw: the same seed gives the same table.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Analyses per A/A scenario (false-positive rates need many).
    #[arg(long, default_value_t = 2000)]
    pub null_runs: usize,
    /// Analyses per regression scenario.
    #[arg(long, default_value_t = 500)]
    pub runs: usize,
    /// Requests per second per version.
    #[arg(long, default_value_t = 50.0)]
    pub rate: f64,
    /// Seconds between looks.
    #[arg(long, default_value_t = 30.0)]
    pub interval: f64,
    /// Looks per analysis (lifetime = looks x interval).
    #[arg(long, default_value_t = 60)]
    pub looks: usize,
    /// Significance level of every method.
    #[arg(long, default_value_t = 0.01)]
    pub alpha: f64,
    /// Only scenarios whose name contains this text.
    #[arg(long)]
    pub scenario: Option<String>,
    /// Also write PREFIX.txt, PREFIX.csv, PREFIX.json and PREFIX.png (the plot).
    #[arg(long, value_name = "PREFIX")]
    pub out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = SimFormat::Text)]
    pub format: SimFormat,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SimFormat {
    Text,
    Json,
    Csv,
}

pub(super) fn run(args: &SimulateArgs) -> i32 {
    let format = if args.format == SimFormat::Json {
        Format::Json
    } else {
        Format::Text
    };
    let mut config = SimConfig {
        seed: args.seed,
        null_runs: args.null_runs,
        runs: args.runs,
        rate_per_sec: args.rate,
        interval_secs: args.interval,
        looks: args.looks,
        alpha: args.alpha,
        ..SimConfig::default()
    };
    if let Some(filter) = &args.scenario {
        config
            .scenarios
            .retain(|s| s.name.contains(filter.as_str()));
        if config.scenarios.is_empty() {
            let names: Vec<String> = SimConfig::default()
                .scenarios
                .into_iter()
                .map(|s| s.name)
                .collect();
            return fail(
                format,
                "usage",
                &format!(
                    "no scenario matches `{filter}` (scenarios: {})",
                    names.join(", ")
                ),
                EXIT_USAGE,
            );
        }
    }
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} analyses, {elapsed} elapsed, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Some(bar)
    } else {
        None
    };
    let progress = |done: usize, total: usize| match &bar {
        Some(b) => {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
        // In a CI log: a line every tenth of the way.
        None => {
            if total >= 10 && done.is_multiple_of(total / 10) {
                eprintln!("augury: simulated {done}/{total} analyses");
            }
        }
    };
    let report = match run_simulation(&config, &progress) {
        Ok(r) => r,
        Err(e) => return fail(format, "usage", &e.to_string(), EXIT_USAGE),
    };
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let json = || serde_json::to_string_pretty(&report).unwrap_or_default();
    match args.format {
        SimFormat::Text => super::out(&report.to_text_table()),
        SimFormat::Json => super::out(&format!("{}\n", json())),
        SimFormat::Csv => super::out(&report.to_csv()),
    }
    if let Some(prefix) = &args.out {
        let path = |ext: &str| PathBuf::from(format!("{}.{ext}", prefix.display()));
        let written = std::fs::write(path("txt"), report.to_text_table())
            .and_then(|()| std::fs::write(path("csv"), report.to_csv()))
            .and_then(|()| std::fs::write(path("json"), json()));
        if let Err(e) = written {
            return fail(
                format,
                "io",
                &format!("cannot write {}.*: {e}", prefix.display()),
                EXIT_OPERATIONAL,
            );
        }
        if let Err(e) = report.write_png(&path("png")) {
            return fail(
                format,
                "io",
                &format!("cannot write {}: {e}", path("png").display()),
                EXIT_OPERATIONAL,
            );
        }
        if format == Format::Text {
            eprintln!("augury: wrote {}.{{txt,csv,json,png}}", prefix.display());
        }
    }
    0
}
