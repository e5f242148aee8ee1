//! `wsdeploy completions`: shell completion scripts.

use clap::CommandFactory;
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
    pub async fn run(self, _ctx: &Context) -> Result<()> {
        let mut cmd = crate::cli::Cli::command();
        clap_complete::generate(self.shell, &mut cmd, "wsdeploy", &mut std::io::stdout());
        Ok(())
    }
}
