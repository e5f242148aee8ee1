//! `wsdeploy plan`: what `up` would change, without changing it.

use crate::error::Result;

use super::Context;

/// Show what `up` would create, change or delete in the stage, without changing anything.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  wsdeploy plan -s prod\n  wsdeploy plan -s prod --output json")]
pub struct Args {}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        super::not_yet(ctx, "plan", "the deploy engine is still being built")
    }
}
