//! `wsdeploy up`: create or update the stage and write the env files.

use crate::error::Result;

use super::Context;

/// Create or update every AWS resource of the stage, then write the wss:// URL and the backend's credentials into
/// the env files.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy up -s dev\n  wsdeploy up -s prod --yes --output json"
)]
pub struct Args {
    /// Print secrets in the output (they are always written to the backend's env file).
    #[arg(long)]
    pub show_secrets: bool,
    /// Create a new access key for the backend even if the current one is still valid.
    #[arg(long)]
    pub rotate_credentials: bool,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        super::not_yet(ctx, "up", "the deploy engine is still being built")
    }
}
