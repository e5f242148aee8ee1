//! `wsdeploy policy`: the IAM policy an identity needs to run `plan`, `up` and `teardown` for this project.

use serde_json::json;

use crate::cloud::Clients;
use crate::config::{StageConfig, LOCAL_STAGE};
use crate::deploy::policy::{deploy_policy, Scope};
use crate::deploy::policy_split::{chars, split};
use crate::deploy::state::Caller;
use crate::error::{Error, Result};

use super::Context;

/// Print the least-privilege IAM policy for deploying this project's stages (all of them, or `-s STAGE`): attach it
/// to the role your CI assumes.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy policy -s prod --out-dir deploy-policy\n  for f in deploy-policy/*.json; do n=$(basename \"$f\" .json); aws iam put-role-policy --role-name ci-deploy --policy-name \"$n\" --policy-document \"file://$f\"; done\n  wsdeploy policy --boundary > boundary.json   # once, as an administrator: aws iam create-policy --policy-name chat-wsdeploy-boundary --policy-document file://boundary.json"
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
    /// Write the deploy policy as files in DIR, one per managed policy IAM accepts (6,144 characters each, the
    /// stricter of IAM's two quotas), `{project}-wsdeploy-deploy-{n}.json`. Needed when the stages take more than
    /// one: attach each to the deploy role.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<std::path::PathBuf>,
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
            Caller::new(account, "arn:aws:")
        } else {
            let clients = Clients::new(&ctx.global.aws, &stages[0].region).await;
            match clients.caller().await {
                Ok(c) => c,
                Err(e) => {
                    ctx.ui.warn(format!(
                        "{e:#}; the policy uses `*` for the account (pass --account to name it)"
                    ));
                    Caller::new("*", "arn:aws:")
                }
            }
        };
        let scope = Scope {
            account: &caller.account,
            partition: &caller.partition,
        };
        if self.boundary {
            let name = stages[0].names().boundary;
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
        let project = &stages[0].project;
        let parts: Vec<(String, serde_json::Value)> =
            split(&policy, crate::facts::MANAGED_POLICY_CHARS)
                .into_iter()
                .enumerate()
                .map(|(i, doc)| (format!("{project}-wsdeploy-deploy-{}", i + 1), doc))
                .collect();
        if let Some(dir) = &self.out_dir {
            write_parts(dir, &parts)?;
        }
        ctx.ui.out_json(&json!({
            "project": project,
            "stages": stages.iter().map(|s| &s.stage).collect::<Vec<_>>(),
            "account": caller.account,
            // Every statement in one document, to read; `policies` are what IAM accepts.
            "policy": policy,
            "policies": parts.iter().map(|(name, doc)| json!({ "name": name, "characters": chars(doc), "document": doc })).collect::<Vec<_>>(),
        }));
        if ctx.ui.json() {
            return Ok(());
        }
        match (&self.out_dir, parts.as_slice()) {
            (Some(dir), _) => {
                for (name, _) in &parts {
                    ctx.ui.out(dir.join(format!("{name}.json")).display().to_string());
                }
                ctx.ui.info(format!(
                    "attach each to the deploy role, e.g. `aws iam create-policy --policy-name NAME --policy-document file://{}/NAME.json` then `aws iam attach-role-policy`",
                    dir.display()
                ));
            }
            (None, [(_, doc)]) => {
                ctx.ui.out(serde_json::to_string_pretty(doc).expect("JSON serializes"));
            }
            (None, _) => {
                return Err(Error::usage(format!(
                    "the deploy policy for {} takes {} managed policies (IAM accepts at most {} characters in one): \
                     pass --out-dir DIR to write each to a file, then attach every one to the deploy role",
                    stages.iter().map(|s| s.stage.as_str()).collect::<Vec<_>>().join(", "),
                    parts.len(),
                    crate::facts::MANAGED_POLICY_CHARS
                )))
            }
        }
        Ok(())
    }
}

fn write_parts(dir: &std::path::Path, parts: &[(String, serde_json::Value)]) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Failed(anyhow::anyhow!("cannot create {}: {e}", dir.display())))?;
    for (name, doc) in parts {
        let text = serde_json::to_string_pretty(doc).expect("JSON serializes") + "\n";
        crate::fsutil::write_atomic(&dir.join(format!("{name}.json")), text.as_bytes(), None)
            .map_err(Error::Failed)?;
    }
    Ok(())
}
