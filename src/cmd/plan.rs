//! `wsdeploy plan`: what `up` would change, without changing it.

use serde_json::json;

use crate::deploy::{render, Change};
use crate::error::Result;

use super::Context;

/// Show what `up` would create, change or delete in the stage, without changing anything.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  wsdeploy plan -s prod\n  wsdeploy plan -s prod --output json")]
pub struct Args {
    #[command(flatten)]
    pub keys: super::session::KeyArgs,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let s = ctx.session().await?;
        let planned = s.plan(&ctx.ui.progress(), &self.keys).await?;
        let (d, actions) = (&planned.desired, &planned.actions);
        let names = d.names.clone();
        let count = |c: Change| actions.iter().filter(|a| a.change() == c).count();
        ctx.ui.out_json(&json!({
            "project": d.project,
            "stage": d.stage,
            "region": d.region,
            "actions": actions.iter().map(|a| {
                let (kind, name) = a.resource(&names);
                let mut v = serde_json::to_value(a).expect("actions serialize");
                v["change"] = serde_json::to_value(a.change()).expect("serializes");
                v["resource"] = json!({ "kind": kind, "name": name });
                v
            }).collect::<Vec<_>>(),
            "summary": { "create": count(Change::Create), "update": count(Change::Update), "delete": count(Change::Delete) },
        }));
        ctx.ui.out(format!(
            "Stage {} in {} ({}):\n{}",
            d.stage,
            d.region,
            d.account,
            render(actions, &names)
        ));
        Ok(())
    }
}
