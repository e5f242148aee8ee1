//! `wsdeploy policy`: the IAM policy an identity needs to run `plan`, `up` and `teardown` for this project.

use serde_json::json;

use crate::cloud::Clients;
use crate::config::{StageConfig, LOCAL_STAGE};
use crate::deploy::policy::{deploy_policy, Scope};
use crate::deploy::state::{Caller, Partition};
use crate::error::Result;

use super::Context;

/// Print the least-privilege IAM policy for deploying this project's stages (all of them, or `-s STAGE`): attach it
/// to the role your CI assumes.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy policy -s prod > deploy-policy.json\n  aws iam put-role-policy --role-name ci-deploy --policy-name wsdeploy --policy-document file://deploy-policy.json"
)]
pub struct Args {
    /// The AWS account the policy is for; by default the account of the current credentials, or `*` without any.
    #[arg(long, value_name = "ID")]
    pub account: Option<String>,
    /// Print the project's permissions boundary instead: the managed policy every role and user wsdeploy makes
    /// carries, which the deploy policy may not write. Create it once with an administrator's rights under the
    /// name it gives (`up` run by an administrator does that itself).
    #[arg(long)]
    pub boundary: bool,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let config = ctx.load_config()?;
        let stages: Vec<&StageConfig> = match ctx.global.stage.as_deref() {
            Some(name) => vec![config.stage(Some(name))?],
            None => config
                .stages
                .values()
                .filter(|s| s.stage != LOCAL_STAGE)
                .collect(),
        };
        let caller = if let Some(account) = &self.account {
            Caller {
                account: account.clone(),
                partition: Partition::of_arn("arn:aws:"),
            }
        } else {
            let clients = Clients::new(&ctx.global.aws, &stages[0].region).await;
            match clients.caller().await {
                Ok(c) => c,
                Err(e) => {
                    ctx.ui.warn(format!(
                        "{e:#}; the policy uses `*` for the account (pass --account to name it)"
                    ));
                    Caller {
                        account: "*".into(),
                        partition: Partition::of_arn("arn:aws:"),
                    }
                }
            }
        };
        let scope = Scope {
            account: &caller.account,
            partition: &caller.partition,
        };
        if self.boundary {
            let name = crate::config::resolve::boundary_name(&stages[0].project);
            let document = crate::deploy::boundary::boundary_policy(
                &stages[0].project,
                &caller.partition,
                &caller.account,
            );
            ctx.ui.out_json(&json!({
                "project": stages[0].project,
                "account": caller.account,
                "name": name,
                "policy": document,
            }));
            ctx.ui
                .out(serde_json::to_string_pretty(&document).expect("JSON serializes"));
            return Ok(());
        }
        let policy = deploy_policy(&stages, &scope);
        ctx.ui.out_json(&json!({
            "project": stages[0].project,
            "stages": stages.iter().map(|s| &s.stage).collect::<Vec<_>>(),
            "account": caller.account,
            "policy": policy,
        }));
        ctx.ui
            .out(serde_json::to_string_pretty(&policy).expect("JSON serializes"));
        Ok(())
    }
}
