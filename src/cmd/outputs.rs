//! `wsdeploy outputs`: the stage's URLs and resource ids.

use crate::error::Result;

use super::Context;

/// Print the stage's WebSocket URL, management endpoint and resource ids.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy outputs -s prod\n  wsdeploy outputs -s prod --output json | jq -r .websocket_url"
)]
pub struct Args {
    /// Include the backend's secret access key and signing secret.
    #[arg(long)]
    pub show_secrets: bool,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        super::not_yet(ctx, "outputs", "the deploy engine is still being built")
    }
}
