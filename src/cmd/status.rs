//! `wsdeploy status`: is this stage healthy?

use serde_json::json;

use crate::cloud::metrics::LastHour;
use crate::deploy::health::{problems, Problem};
use crate::deploy::{plan, Desired, Options};
use crate::error::Result;

use super::Context;

/// Check the deployed stage and name each problem with its fix: a function that cannot run, a missing invoke
/// permission or route response, a failed deployment, a backend access key that AWS refuses, a throttle of 0, logs
/// the account's settings do not allow, a DNS record that points elsewhere, and any other difference from the
/// config; then the last hour of CloudWatch metrics. Exit 1 when there is a problem, so CI can gate on it.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy status -s prod\n  wsdeploy status -s prod --output json | jq .problems"
)]
pub struct Args {}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let s = ctx.session().await?;
        let o = &s.observed;
        let d = Desired::as_deployed(&s.stage, &s.caller, o);
        let drift = plan(&d, o, &Options::default()).map_err(anyhow::Error::from)?;
        // A part that cannot be read (denied, unreachable) is said and skipped: the findings made without it stand,
        // and only findings decide the exit code.
        let mut unread: Vec<(&str, String)> = vec![];
        let failure = match o.kept_api() {
            Some(api) => {
                match crate::cloud::apigw::deployment_failure(&s.clients.apigw, &api.id, &d.stage)
                    .await
                {
                    Ok(f) => f,
                    Err(e) => {
                        unread.push(("the stage's last deployment", format!("{e:#}")));
                        None
                    }
                }
            }
            None => None,
        };
        let found = problems(&d, o, &drift, failure.as_deref());
        let metrics = match o.kept_api() {
            Some(api) => match crate::cloud::metrics::last_hour(&s.clients, &d, &api.id).await {
                Ok(m) => Some(m),
                Err(e) => {
                    unread.push(("the last hour of CloudWatch metrics", format!("{e:#}")));
                    None
                }
            },
            None => None,
        };
        ctx.ui.out_json(&json!({
            "stage": d.stage,
            "region": d.region,
            "healthy": found.is_empty(),
            "problems": found,
            "last_hour": metrics,
            "unread": unread.iter().map(|(what, why)| json!({ "what": what, "why": why })).collect::<Vec<_>>(),
        }));
        ctx.ui.out(report(&d, o, &found));
        if let Some(m) = &metrics {
            ctx.ui.out(last_hour(m));
        }
        for (what, why) in &unread {
            ctx.ui.out(format!("Not read: {what}: {why}"));
        }
        if !found.is_empty() {
            return Err(anyhow::anyhow!(
                "{} problem{} in the stage {}",
                found.len(),
                if found.len() == 1 { "" } else { "s" },
                d.stage
            )
            .into());
        }
        Ok(())
    }
}

/// The last hour in a few lines: what CloudWatch has, nothing for what it has not.
fn last_hour(m: &LastHour) -> String {
    if m.api.is_empty() && m.functions.is_empty() {
        return "Last hour: no traffic (CloudWatch has no datapoint for the stage).".into();
    }
    let mut out = String::from("Last hour:");
    let words = [
        ("ConnectCount", "connections"),
        ("MessageCount", "messages"),
        ("IntegrationError", "integration errors"),
        ("ClientError", "client errors"),
        ("ExecutionError", "execution errors"),
    ];
    let api: Vec<String> = words
        .iter()
        .filter_map(|(k, w)| {
            m.api
                .get(*k)
                .map(|v| format!("{} {w}", crate::cost::amount(*v)))
        })
        .collect();
    if !api.is_empty() {
        out.push_str(&format!("\n  API          {}", api.join(", ")));
    }
    for (f, values) in &m.functions {
        let mut parts = vec![];
        if let Some(v) = values.get("Invocations") {
            parts.push(format!("{} invocations", crate::cost::amount(*v)));
        }
        if let Some(v) = values.get("Errors") {
            parts.push(format!("{} errors", crate::cost::amount(*v)));
        }
        if let Some(v) = values.get("DurationP99") {
            parts.push(format!("p99 {v:.0} ms"));
        }
        out.push_str(&format!("\n  {f}  {}", parts.join(", ")));
    }
    out
}

fn report(d: &Desired, o: &crate::deploy::Observed, found: &[Problem]) -> String {
    if found.is_empty() {
        let routes = o.kept_api().map_or(0, |a| a.routes.len());
        return format!(
            "Stage {} in {} ({}) is healthy: {} functions that can run, {routes} routes, the backend's key active, no difference from the config.",
            d.stage,
            d.region,
            d.account,
            d.functions.len()
        );
    }
    let mut out = format!("Stage {} in {} ({}):\n", d.stage, d.region, d.account);
    for p in found {
        out.push_str(&format!("  ✗ {}\n      fix: {}\n", p.what, p.fix));
    }
    out.trim_end().to_string()
}
