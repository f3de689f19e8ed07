//! Runs the default Monte Carlo simulation and writes its report next to the working
//! directory: `cargo run --release --example simulate [OUT_PREFIX]` writes
//! OUT_PREFIX.{txt,csv,json,png} (default `simulation`) and prints the table. A second
//! argument `quick` runs a tenth of the analyses.
//! (`augury simulate` runs the same library call from the command line.)

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use augury::simulate::{SimConfig, run_simulation};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let prefix = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "simulation".into());
    let mut config = SimConfig::default();
    if std::env::args().nth(2).as_deref() == Some("quick") {
        config.null_runs /= 10;
        config.runs /= 10;
    }
    let started = Instant::now();
    let report = run_simulation(&config, &|done, total| {
        if done % 500 == 0 || done == total {
            eprint!("\r{done}/{total} analyses");
            let _ = std::io::stderr().flush();
        }
    })?;
    eprintln!(
        "\ndone in {:.1} s on {} threads",
        started.elapsed().as_secs_f64(),
        rayon::current_num_threads()
    );
    let table = report.to_text_table();
    print!("{table}");
    std::fs::write(format!("{prefix}.txt"), &table)?;
    std::fs::write(format!("{prefix}.csv"), report.to_csv())?;
    std::fs::write(
        format!("{prefix}.json"),
        serde_json::to_string_pretty(&report)?,
    )?;
    report.write_png(&PathBuf::from(format!("{prefix}.png")))?;
    Ok(())
}
