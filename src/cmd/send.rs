//! `wsdeploy send`: post a message to one connection through the @connections API.

use crate::error::Result;

use super::Context;

/// Send MESSAGE to a connected client through the stage's @connections management API.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy send -s dev --connection TWegAcC4EowCHnA= '{\"type\":\"hello\"}'"
)]
pub struct Args {
    /// The connection id (as your backend received it).
    #[arg(long, value_name = "ID")]
    pub connection: String,
    /// The message, sent as one text frame.
    pub message: String,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        super::not_yet(ctx, "send", "the deploy engine is still being built")
    }
}
