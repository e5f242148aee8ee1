//! `wsdeploy bootstrap`: once per account and project, by an administrator, what the deploy identity may not make
//! itself: the permissions boundary, and for GitHub Actions the OIDC provider and a deploy role.

use serde_json::json;

use crate::cloud::Clients;
use crate::config::{StageConfig, LOCAL_STAGE};
use crate::deploy::bootstrap::{plan, plan_teardown, GitHub, Step, Wanted};
use crate::deploy::policy::{deploy_policy, Scope};
use crate::deploy::state::Caller;
use crate::error::{Error, Result};
use crate::facts::ACCOUNT_LOGGING_ROLE;
use crate::ui::Progress;

use super::Context;

/// Set up the account for this project, once, with administrator rights: the permissions boundary every role and
/// user wsdeploy makes carries; with --github, GitHub's OIDC provider and a role only that repository's
/// environment may assume, holding the deploy policy of every stage. Shows the plan and asks first; idempotent.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy bootstrap --github acme/chat:production\n  wsdeploy bootstrap --yes                 # the boundary only\n  wsdeploy bootstrap --github acme/chat --teardown --yes"
)]
pub struct Args {
    /// OWNER/REPO[:ENVIRONMENT] (default environment `production`): create the deploy role for GitHub Actions,
    /// trusted only by jobs of that repository running in that environment.
    #[arg(long, value_name = "OWNER/REPO[:ENV]")]
    pub github: Option<String>,
    /// Remove what bootstrap created, once no stage uses the boundary (GitHub's provider only if bootstrap created
    /// it and no other role trusts it).
    #[arg(long)]
    pub teardown: bool,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let config = ctx.load_config()?;
        let github = self
            .github
            .as_deref()
            .map(GitHub::parse)
            .transpose()
            .map_err(Error::usage)?;
        let stages: Vec<&StageConfig> = config
            .stages
            .values()
            .filter(|s| s.stage != LOCAL_STAGE)
            .collect();
        let first = stages
            .first()
            .ok_or_else(|| Error::usage("the config has no stage to deploy"))?;
        let clients = Clients::new(&ctx.global.aws, &first.region).await;
        let caller = clients.caller().await?;
        let project = &first.project;
        let wanted = wanted(&stages, &caller, github);
        let boundary_arn = crate::deploy::boundary::boundary_arn(
            &caller.partition,
            &caller.account,
            &wanted.boundary_name,
        );
        let entities = bounded_entities(&stages);
        let found =
            crate::cloud::bootstrap::observe(&clients, &wanted, &boundary_arn, &entities).await?;
        let steps = if self.teardown {
            plan_teardown(&wanted, &found).map_err(|e| Error::Failed(anyhow::anyhow!(e)))?
        } else {
            plan(&wanted, &found)
        };
        let role_arn = format!(
            "arn:{}:iam::{}:role/{}",
            caller.partition.id, caller.account, wanted.role_name
        );
        if steps.is_empty() {
            ctx.ui.info(format!(
                "No changes: account {} is set up for project {project}.",
                caller.account
            ));
        } else if !apply(ctx, &clients, &caller, &wanted, &steps).await? {
            return Ok(());
        }
        let next = wanted.github.as_ref().filter(|_| !self.teardown).map(|g| {
            format!(
                "gh variable set AWS_DEPLOY_ROLE_ARN --repo {} --body {role_arn}",
                g.repository
            )
        });
        ctx.ui.out_json(&json!({
            "project": project,
            "account": caller.account,
            "teardown": self.teardown,
            "changes": steps,
            "boundary_arn": boundary_arn,
            "role_arn": next.as_ref().map(|_| &role_arn),
            "next": next,
        }));
        if let Some(next) = next {
            ctx.ui.info(format!(
                "The deploy role: {role_arn}\nStore it for the workflow:\n  {next}"
            ));
        }
        Ok(())
    }
}

/// The boundary, the role and the deploy policy of every stage, cut to what IAM accepts.
fn wanted(stages: &[&StageConfig], caller: &Caller, github: Option<GitHub>) -> Wanted {
    let scope = Scope {
        account: &caller.account,
        partition: &caller.partition,
    };
    let project = &stages[0].project;
    let role_name = stages[0].names().deploy_role;
    let policy = deploy_policy(stages, &scope);
    Wanted {
        boundary_name: stages[0].names().boundary,
        boundary: crate::deploy::boundary::boundary_policy(
            project,
            &caller.partition,
            &caller.account,
        ),
        github,
        provider_arn: Wanted::provider_arn(&caller.partition, &caller.account),
        policies: crate::deploy::policy_split::split(&policy, crate::facts::MANAGED_POLICY_CHARS)
            .into_iter()
            .enumerate()
            .map(|(i, d)| (format!("{role_name}-{}", i + 1), d))
            .collect(),
        role_name,
    }
}

/// Who may carry the boundary: each stage's role and user, and API Gateway's account role.
fn bounded_entities(stages: &[&StageConfig]) -> Vec<(&'static str, String)> {
    let mut entities = vec![("role", ACCOUNT_LOGGING_ROLE.to_string())];
    for s in stages {
        let n = s.names();
        entities.push(("role", n.role));
        entities.push(("user", n.user));
    }
    entities
}

/// Shows the steps, asks, carries them out; `false` when the user said no.
async fn apply(
    ctx: &Context,
    clients: &Clients,
    caller: &Caller,
    wanted: &Wanted,
    steps: &[Step],
) -> Result<bool> {
    ctx.ui.out(
        steps
            .iter()
            .map(|s| s.line(wanted))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let question = format!(
        "Make these {} changes in account {}?",
        steps.len(),
        caller.account
    );
    if !ctx.confirm(
        &question,
        "bootstrap changes IAM and there is no terminal to confirm on: pass --yes",
    )? {
        ctx.ui.info("Nothing was changed.");
        return Ok(false);
    }
    let progress = ctx.ui.progress();
    let policies = format!(
        "arn:{}:iam::{}:policy/",
        caller.partition.id, caller.account
    );
    for step in steps {
        let line = step.line(wanted);
        let s = progress.step(line.trim_start());
        match crate::cloud::bootstrap::apply(clients, wanted, &policies, step).await {
            Ok(()) => s.finish("done"),
            Err(e) => {
                s.fail(&format!("{e:#}"));
                return Err(e.into());
            }
        }
    }
    Ok(true)
}
