//! `wsdeploy up`: create or update the stage and write the env files.

use std::time::Instant;

use anyhow::Context as _;

use crate::cloud::apply::{Applier, Ids};
use crate::config::CredentialsMode;
use crate::deploy::state::ApiRef;
use crate::deploy::{render, Action, Phase};
use crate::envfile;
use crate::error::{Error, Result};
use crate::secret::SecretChange;
use crate::ui::Progress;

use super::session::{outputs, KeyArgs, Planned, Session};
use super::Context;

/// Create or update every AWS resource of the stage, then write the wss:// URL and the backend's credentials into
/// the env files.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy up -s dev\n  wsdeploy up -s prod --yes --output json"
)]
pub struct Args {
    /// Print secrets in the output (they are always written to the backend's env file).
    #[arg(long)]
    pub show_secrets: bool,
    #[command(flatten)]
    pub keys: KeyArgs,
    /// Return once the changes are made, without waiting for the functions to be Active and the stage's
    /// deployment to finish (a new access key is still written only once AWS accepts it).
    #[arg(long)]
    pub no_wait: bool,
    /// Write the backend's secrets even into an env file git tracks (refused otherwise: the next commit would put
    /// the keys in the repository's history).
    #[arg(long)]
    pub allow_tracked_env: bool,
}

/// What `up` did, for the report.
struct Done {
    api: ApiRef,
    /// The new access key (id, secret), if `up` made one.
    new_key: Option<(String, String)>,
    /// Each env file, with whether it changed.
    written: Vec<(String, bool)>,
    /// What `up` waited for, and how long (seconds).
    waits: Vec<(String, f64)>,
    /// The custom domain's regional host, when the stage has one.
    domain_target: Option<String>,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let started = Instant::now();
        // Before anything is read or made: a key made and then not written would be lost.
        self.refuse_a_tracked_env_file(ctx)?;
        let s = ctx.session().await?;
        if s.stage.credentials == CredentialsMode::IamUser
            && s.stage.env.backend.is_none()
            && !self.show_secrets
        {
            return Err(Error::usage(
                "credentials: iam-user creates an access key whose secret can be read only once, and this stage has no env.backend file to write it to: add env.backend.file, or pass --show-secrets to print it",
            ));
        }
        let progress = ctx.ui.progress();
        let planned = s.plan(&progress, &self.keys).await?;
        if !planned.actions.is_empty() {
            ctx.ui.out(render(&planned.actions, &planned.desired.names));
        }
        if !planned.check_account_logging(ctx, &self.keys)? {
            ctx.ui.info("Nothing was changed.");
            return Ok(());
        }
        let done = self.apply(&s, &planned, &progress).await?;
        let key_id = done
            .new_key
            .as_ref()
            .map(|k| k.0.clone())
            .or(planned.observed.env_access_key_id.clone());
        let key_secret = done
            .new_key
            .as_ref()
            .map(|k| k.1.clone())
            .or_else(|| existing_key_secret(&s));
        let shown = self.show_secrets.then(|| {
            (
                key_secret.as_deref().unwrap_or(""),
                planned.signing.current.as_str(),
            )
        });
        let d = &planned.desired;
        let mut doc = outputs(
            &s,
            d,
            (Some(&done.api), done.domain_target.as_deref()),
            key_id.as_deref(),
            shown,
        );
        doc["changes"] = planned.actions.len().into();
        doc["waits"] = done
            .waits
            .iter()
            .map(|(what, secs)| serde_json::json!({ "for": what, "seconds": secs }))
            .collect();
        doc["env_written"] = done
            .written
            .iter()
            .map(|(f, changed)| (f.clone(), (*changed).into()))
            .collect::<serde_json::Map<_, _>>()
            .into();
        ctx.ui.out_json(&doc);
        ctx.ui.out(summary(&s, &planned, &done, started));
        if self.show_secrets && !ctx.ui.json() {
            ctx.ui.out(format!(
                "  Secret access key    {}\n  Signing secret       {}",
                key_secret
                    .as_deref()
                    .unwrap_or("(unchanged; in the backend's env file)"),
                planned.signing.current
            ));
        }
        if let Some(b) = &s.stage.env.backend {
            if crate::fsutil::git_ignores(&b.file) == Some(false) {
                ctx.ui.warn(format!(
                    "{} holds secrets but git does not ignore it: add it to .gitignore",
                    b.file.display()
                ));
            }
        }
        Ok(())
    }

    /// The backend's env file receives an access key and the signing secret: not into a file git tracks, where the
    /// next commit publishes them, unless `--allow-tracked-env` says the repository is meant to hold them.
    fn refuse_a_tracked_env_file(&self, ctx: &Context) -> Result<()> {
        // Its warnings are shown once, by the session that follows.
        let config = crate::config::Config::load(&ctx.global.config, &ctx.overrides())?;
        let stage = config.stage(ctx.global.stage.as_deref())?;
        let Some(b) = &stage.env.backend else {
            return Ok(());
        };
        if self.allow_tracked_env || crate::fsutil::git_tracks(&b.file) != Some(true) {
            return Ok(());
        }
        let name = b
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Err(Error::usage(format!(
            "{} is tracked by git, and `up` writes the backend's access key and signing secret into it: the next \
             commit would publish them. Stop tracking it (`git rm --cached {name}` in its folder, and add `{name}` \
             to .gitignore), or pass --allow-tracked-env if the repository is meant to hold them",
            b.file.display()
        )))
    }

    /// Applies the plan in two parts: everything, then the env files, then what must wait until they hold the new
    /// key (deactivating the previous one).
    async fn apply(&self, s: &Session, planned: &Planned, progress: &dyn Progress) -> Result<Done> {
        let d = &planned.desired;
        let applier = Applier::new(
            &s.clients,
            d,
            Ids::from_observed(d, &planned.observed),
            progress,
        );
        let (now, after_env): (Vec<Action>, Vec<Action>) = planned
            .actions
            .iter()
            .cloned()
            .partition(|a| a.phase() < Phase::AfterEnv);
        applier.run(&now).await?;
        if !self.no_wait {
            applier.settle().await?;
        }
        let ids = applier.ids();
        let api = ids
            .api()
            .context("internal error: no API after applying the plan")?;
        let fanout = s.stage.fanout_function();
        let written = envfile::write_stage(
            &s.stage.env,
            &envfile::StageValues {
                websocket_url: &d.websocket_url(&api),
                endpoint: &d.management_endpoint(&api),
                region: &d.region,
                key: ids.new_key.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
                drop_key: s.stage.credentials == CredentialsMode::Policy,
                signing: &planned.signing,
                stage: &d.names.prefix,
                fanout_function: fanout.as_deref(),
                fanout_endpoint: None,
            },
        ).map_err(|e| match &ids.new_key {
            Some((id, _)) => e.context(format!("the new access key {id} could not be written; run `wsdeploy up` again to replace it")),
            None => e,
        })?;
        applier.run(&after_env).await?;
        Ok(Done {
            api,
            new_key: ids.new_key,
            written,
            waits: applier.waits(),
            domain_target: ids.domain_target.map(|(target, _)| target),
        })
    }
}

/// What a person reads once the stage is up.
fn summary(s: &Session, planned: &Planned, done: &Done, started: Instant) -> String {
    let (d, api) = (&planned.desired, &done.api);
    let verb = if planned.actions.is_empty() {
        "is up to date".to_string()
    } else {
        format!("is up ({} changes)", planned.actions.len())
    };
    let functions: Vec<&str> = d.functions.iter().map(|f| f.name.as_str()).collect();
    let mut lines = vec![
        format!(
            "\nStage {} {verb} in {:.1}s.",
            d.stage,
            started.elapsed().as_secs_f64()
        ),
        format!("  WebSocket URL        {}", d.websocket_url(api)),
        format!("  Management endpoint  {}", d.management_endpoint(api)),
        format!("  Functions            {}", functions.join(", ")),
    ];
    if let (Some(dom), Some(target)) = (&d.domain, &done.domain_target) {
        lines.push(match &planned.observed.zone {
            Some(z) => format!("  Domain               {} → {target} (alias record in the zone {})", dom.name, z.name),
            None => format!("  Domain               {} → {target}\n  DNS record to create {} CNAME {target} (at your DNS provider: this account has no Route 53 zone for it)", dom.name, dom.name),
        });
    }
    for (what, secs) in &done.waits {
        lines.push(format!("  Waited               {secs:.1}s for {what}"));
    }
    for (file, changed) in &done.written {
        let how = if *changed { "updated" } else { "unchanged" };
        lines.push(format!("  Env file             {file} ({how})"));
    }
    let secret_var = s
        .stage
        .env
        .backend
        .as_ref()
        .map_or("WS_SIGNING_SECRET", |b| b.signing_secret.as_str());
    if let Some(notice) = signing_notice(planned.signing_change, secret_var) {
        lines.push(notice);
    }
    if s.stage.credentials == CredentialsMode::Policy {
        lines.push(format!(
            "  Backend permission   attach {} to your backend's role:\n                       aws iam attach-role-policy --role-name <your-backend-role> --policy-arn {}",
            d.policy_arn(),
            d.policy_arn()
        ));
    }
    lines.join("\n")
}

/// What a change of the signing secret asks of the backend. A backend reads its env file at start only, so each
/// change says when running backends must reload it.
fn signing_notice(change: SecretChange, var: &str) -> Option<String> {
    const INDENT: &str = "\n                       ";
    Some(match change {
        SecretChange::Rotated => format!(
            "  Signing secret       rotated: the functions sign with the new and the previous one until the next `up`.\
             {INDENT}Running backends keep accepting the previous one only until they reload their env file\
             {INDENT}({var} and {var}_PREVIOUS): restart each before the next `up`, which retires it."
        ),
        SecretChange::Retired => format!(
            "  Signing secret       previous one retired: the functions sign with {var} only.\
             {INDENT}A backend still running with an env file from before the rotation refuses their calls: restart it."
        ),
        SecretChange::Replaced => format!(
            "  Signing secret       replaced, the previous one revoked: the functions sign with the new {var} only, now.\
             {INDENT}Every running backend refuses their calls (and still accepts the old secret) until it reloads its\
             {INDENT}env file: restart each now."
        ),
        SecretChange::Created | SecretChange::Kept => return None,
    })
}

fn existing_key_secret(s: &Session) -> Option<String> {
    let b = s.stage.env.backend.as_ref()?;
    envfile::get(
        &std::fs::read_to_string(&b.file).ok()?,
        &b.secret_access_key,
    )
}
