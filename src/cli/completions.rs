//! `augury completions SHELL`: the shell completion script for `augury`, on stdout.

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, EXIT_OPERATIONAL};

#[derive(clap::Args, Debug)]
#[command(after_help = "Install, e.g.:\n  \
bash: augury completions bash > ~/.local/share/bash-completion/completions/augury\n  \
zsh:  augury completions zsh > \"${fpath[1]}/_augury\"\n  \
fish: augury completions fish > ~/.config/fish/completions/augury.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub(super) fn run(args: &CompletionsArgs) -> i32 {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "augury", &mut script);
    match super::write_stdout(&script) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("augury completions: cannot write the script: {e}");
            EXIT_OPERATIONAL
        }
    }
}
