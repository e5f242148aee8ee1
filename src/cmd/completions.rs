//! `wsdeploy completions`: shell completion scripts.

use clap_complete::Shell;

use crate::error::Result;

use super::Context;

/// Print a completion script for SHELL.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy completions bash > ~/.local/share/bash-completion/completions/wsdeploy\n  wsdeploy completions zsh > \"${fpath[1]}/_wsdeploy\""
)]
pub struct Args {
    #[arg(value_enum)]
    pub shell: Shell,
}

impl Args {
    /// `cli` is the whole command line, which this layer does not own.
    #[allow(clippy::unnecessary_wraps)] // every verb's `run` returns a `Result`
    pub fn run(self, ctx: &Context, mut cli: clap::Command) -> Result<()> {
        let mut script = Vec::new();
        clap_complete::generate(self.shell, &mut cli, "wsdeploy", &mut script);
        ctx.ui.out_raw(&script);
        Ok(())
    }
}
