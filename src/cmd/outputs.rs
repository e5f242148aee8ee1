//! `wsdeploy outputs`: the stage's URLs and resource ids.

use crate::envfile;
use crate::error::Result;

use super::session::outputs;
use super::Context;

/// Print the stage's WebSocket URL, management endpoint and resource ids.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy outputs -s prod\n  wsdeploy outputs -s prod --output json | jq -r .websocket_url"
)]
pub struct Args {
    /// Include the backend's secret access key and signing secret (from its env file).
    #[arg(long)]
    pub show_secrets: bool,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let s = ctx.session().await?;
        let (d, o, api) = s.deployed().await?;
        let key_id = o.env_access_key_id.as_deref().filter(|k| {
            o.user
                .as_ref()
                .is_some_and(|u| u.keys.iter().any(|key| key.id == *k))
        });
        let env_text = s
            .stage
            .env
            .backend
            .as_ref()
            .and_then(|b| std::fs::read_to_string(&b.file).ok().map(|t| (b, t)));
        let secrets = env_text.as_ref().map(|(b, t)| {
            (
                envfile::get(t, &b.secret_access_key).unwrap_or_default(),
                envfile::get(t, &b.signing_secret).unwrap_or_default(),
            )
        });
        let shown = secrets
            .as_ref()
            .filter(|_| self.show_secrets)
            .map(|(a, b)| (a.as_str(), b.as_str()));
        let api_ref = api.reference();
        let doc = outputs(&s, &d, (Some(&api_ref), None), key_id, shown);
        ctx.ui.out_json(&doc);
        ctx.ui.out(format!(
            "stage {} ({}, account {})\n  websocket_url        {}\n  management_endpoint  {}\n  api_id               {}\n  functions            {}",
            d.stage,
            d.region,
            d.account,
            d.websocket_url(&api_ref),
            d.management_endpoint(&api_ref),
            api.id,
            d.functions.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
        ));
        if let Some(k) = key_id {
            ctx.ui.out(format!("  access_key_id        {k}"));
        }
        if let Some((a, b)) = shown {
            ctx.ui.out(format!(
                "  secret_access_key    {a}\n  signing_secret       {b}"
            ));
        }
        Ok(())
    }
}
