//! `augury man`: the manual page (roff) for `augury` on stdout, or with `--out-dir` one
//! page per command (`augury.1`, `augury-serve.1`, ...) in a folder.

use std::path::PathBuf;

use clap::CommandFactory;

use super::{Cli, EXIT_OPERATIONAL};

#[derive(clap::Args, Debug)]
#[command(after_help = "Read it with: augury man | man -l -\n\
Install the pages: augury man --out-dir /usr/local/share/man/man1")]
pub struct ManArgs {
    /// Write `augury.1` and one `augury-COMMAND.1` per command into DIR (created if
    /// missing) instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

pub(super) fn run(args: &ManArgs) -> i32 {
    let written = match &args.out_dir {
        Some(dir) => std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(Cli::command(), dir))
            .map_err(|e| format!("cannot write the pages to {}: {e}", dir.display())),
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .and_then(|()| super::write_stdout(&page))
                .map_err(|e| format!("cannot write the page: {e}"))
        }
    };
    match written {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("augury man: {message}");
            EXIT_OPERATIONAL
        }
    }
}
