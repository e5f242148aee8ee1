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
        if !self.keys.setup_account_logging {
            planned.check_account_logging(ctx, &self.keys)?;
        }
        let (d, actions) = (&planned.desired, &planned.actions);
        let names = d.names.clone();
        let count = |c: Change| actions.iter().filter(|a| a.change() == c).count();
        // The config's expected traffic, priced with the defaults `wsdeploy cost` uses.
        let cost = s.stage.expect.map(|e| {
            let load = crate::cost::Load {
                connections: e.connections,
                messages_per_minute: e.messages_per_minute,
                message_kb: e.message_kb,
                function_ms: crate::cost::DEFAULT_FUNCTION_MS,
            };
            (e, crate::cost::estimate(&s.stage, &load).usd_per_month)
        });
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
            "cost_usd_per_month": cost.map(|(_, usd)| usd),
        }));
        ctx.ui.out(format!(
            "Stage {} in {} ({}):\n{}",
            d.stage,
            d.region,
            d.account,
            render(actions, &names)
        ));
        if let Some((e, total)) = cost {
            ctx.ui.out(format!(
                "Cost: about {} a month at {} sockets and {} messages a minute (`wsdeploy cost` itemizes it).",
                crate::cost::usd(total),
                crate::cost::amount(e.connections),
                crate::cost::amount(e.messages_per_minute)
            ));
        }
        Ok(())
    }
}
