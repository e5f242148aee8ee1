//! `wsdeploy teardown`: delete everything the stage created.

use crate::error::Result;

use super::Context;

/// Delete every AWS resource of the stage and remove the managed keys from the env files.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy teardown -s dev\n  wsdeploy teardown -s pr-123 --yes"
)]
pub struct Args {
    /// Leave the env files as they are.
    #[arg(long)]
    pub keep_env: bool,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        super::not_yet(ctx, "teardown", "the deploy engine is still being built")
    }
}
