//! `wsdeploy dev`: the whole system on this machine.

use crate::error::Result;

use super::Context;

/// Run the WebSocket gateway, the @connections API and the bundled Lambdas locally (stage `local`), and write the
/// env files with local values. No AWS account needed.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  wsdeploy dev\n  wsdeploy dev --port 4000")]
pub struct Args {
    /// Port of the gateway (WebSocket and @connections).
    #[arg(long, default_value_t = 3001)]
    pub port: u16,
    /// Address to bind; anything but loopback exposes the gateway to your network.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        super::not_yet(ctx, "dev", "the local gateway is still being built")
    }
}
