//! `wsdeploy teardown`: delete everything the stage created.

use crate::cloud::apply::{Applier, Ids};
use crate::deploy::{plan_teardown, render, Desired};
use crate::envfile;
use crate::error::Result;

use super::Context;

/// Delete every AWS resource of the stage and remove the managed keys from the env files.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy teardown -s dev\n  wsdeploy teardown -s pr-123 --yes"
)]
pub struct Args {
    /// Leave the env files as they are.
    #[arg(long)]
    pub keep_env: bool,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let s = ctx.session().await?;
        let d = Desired::without_code(&s.stage, &s.caller);
        let observed = &s.observed;
        let actions = plan_teardown(&d, observed).map_err(anyhow::Error::from)?;
        if actions.is_empty() {
            ctx.ui.info(format!(
                "Nothing to delete: stage {} has no resources in {} ({}).",
                d.stage, d.region, d.account
            ));
        } else {
            ctx.ui.out(render(&actions, &d.names));
            let question = format!(
                "Delete these {} resources of stage {} in account {}?",
                actions.len(),
                d.stage,
                d.account
            );
            if !ctx.confirm(
                &question,
                "teardown deletes resources and there is no terminal to confirm on: pass --yes",
            )? {
                ctx.ui.info("Nothing was deleted.");
                return Ok(());
            }
            let progress = ctx.ui.progress();
            Applier::new(&s.clients, &d, Ids::from_observed(&d, observed), &progress)
                .run(&actions)
                .await?;
        }
        let mut cleaned = vec![];
        if !self.keep_env {
            if let Some(f) = &s.stage.env.frontend {
                if envfile::update_file(&f.file, &[], &[f.url.as_str()], false)? {
                    cleaned.push(f.file.display().to_string());
                }
            }
            if let Some(b) = &s.stage.env.backend {
                let owner = b.signing_secret_stage();
                let previous = b.signing_secret_previous();
                let keys = [
                    &b.endpoint,
                    &b.region,
                    &b.access_key_id,
                    &b.secret_access_key,
                    &b.signing_secret,
                    &previous,
                    &owner,
                ]
                .map(String::as_str);
                // A file another stage (or `dev`) wrote last holds that stage's keys: they are not ours to remove.
                let text = std::fs::read_to_string(&b.file).unwrap_or_default();
                let written_by = envfile::get(&text, &owner);
                if written_by.as_ref().is_some_and(|w| *w != d.names.prefix) {
                    ctx.ui.warn(format!(
                        "{} holds the keys of {}, not of this stage: left as it is",
                        b.file.display(),
                        written_by.unwrap_or_default()
                    ));
                } else if envfile::update_file(&b.file, &[], &keys, true)? {
                    cleaned.push(b.file.display().to_string());
                }
            }
        }
        ctx.ui.out_json(&serde_json::json!({
            "project": d.project, "stage": d.stage, "region": d.region, "deleted": actions.len(), "env_cleaned": cleaned,
        }));
        if !actions.is_empty() {
            ctx.ui.out(format!(
                "\nStage {} is gone ({} resources deleted).",
                d.stage,
                actions.len()
            ));
        }
        for f in cleaned {
            ctx.ui.out(format!("  removed wsdeploy's keys from {f}"));
        }
        Ok(())
    }
}
