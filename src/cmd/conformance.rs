//! `wsdeploy conformance`: checks a running stage against the gateway behaviours wsdeploy relies on.

use anyhow::Context as _;
use serde_json::json;

use crate::config::StageConfig;
use crate::conformance::{self, Outcome, Target, Verdict};
use crate::envfile;
use crate::error::{Error, Result};

use super::Context;

/// Check a running stage (`--local` for `wsdeploy dev`) against every gateway behaviour wsdeploy relies on: the
/// `auth` reply, `Forbidden`, 1009 and 1003 closes, `@connections` POST/GET/DELETE with the backend env file's
/// keys, 410 after close and the SigV4 refusals. Reads the stage's env files; needs a token your backend accepts.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  WSDEPLOY_CONFORMANCE_TOKEN=\"$(node scripts/dev-token.js)\" wsdeploy conformance --local\n  wsdeploy conformance -s prod --token-file ~/.config/chat/test-token\n\nThe token is never a flag's value: other users of the machine can read a process's arguments.\n\nExit codes: 0 every behaviour passed (or was skipped, with the reason), 1 one or more failed."
)]
pub struct Args {
    /// A file holding a token your backend accepts on the `auth` route (`-` reads it from standard input);
    /// without it, the environment variable WSDEPLOY_CONFORMANCE_TOKEN holds it.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// Refused: a token in the command line is visible to every user of the machine (`ps`).
    #[arg(long, hide = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// The stage `wsdeploy dev` runs on this machine, instead of a deployed one.
    #[arg(long, conflicts_with = "stage")]
    pub local: bool,
}

/// The variable that holds the token when no file does.
const TOKEN_VAR: &str = "WSDEPLOY_CONFORMANCE_TOKEN";

impl Args {
    /// The token, from the file or the environment; never from the command line.
    fn token(&self) -> Result<String> {
        if self.token.is_some() {
            return Err(Error::usage(format!(
                "--token puts the token in the command line, where every user of this machine can read it: \
                 set {TOKEN_VAR} or pass --token-file FILE instead"
            )));
        }
        let token = match &self.token_file {
            Some(path) if path.as_os_str() == "-" => std::io::read_to_string(std::io::stdin())
                .context("cannot read the token from standard input")?,
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the token from {}", path.display()))?,
            None => std::env::var(TOKEN_VAR).unwrap_or_default(),
        };
        let token = token.trim().to_string();
        if token.is_empty() {
            return Err(Error::usage(format!(
                "conformance needs a token your backend accepts: set {TOKEN_VAR} or pass --token-file FILE"
            )));
        }
        Ok(token)
    }
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let token = self.token()?;
        let config = ctx.load_config()?;
        let stage = if self.local {
            config.local_stage()
        } else {
            config.stage(ctx.global.stage.as_deref())?.clone()
        };
        let target = target(&stage, token)?;
        let outcomes = conformance::run(&target).await;
        let passed = count(&outcomes, Verdict::Passed);
        let failed = count(&outcomes, Verdict::Failed);
        ctx.ui.out_json(&json!({
            "stage": stage.stage,
            "passed": passed,
            "failed": failed,
            "total": outcomes.len(),
            "behaviours": outcomes,
        }));
        ctx.ui.out(report(&outcomes, passed));
        if failed > 0 {
            return Err(anyhow::anyhow!("{failed} of {} behaviours failed", outcomes.len()).into());
        }
        Ok(())
    }
}

fn count(outcomes: &[Outcome], v: Verdict) -> usize {
    outcomes.iter().filter(|o| o.result == v).count()
}

/// One line per behaviour, then `N/M behaviours passed`.
fn report(outcomes: &[Outcome], passed: usize) -> String {
    let mut lines: Vec<String> = outcomes
        .iter()
        .map(|o| {
            let mark = match o.result {
                Verdict::Passed => "pass",
                Verdict::Failed => "FAIL",
                Verdict::Skipped => "skip",
            };
            format!("  {mark}  {}: {}", o.behaviour, o.detail)
        })
        .collect();
    lines.push(format!("{passed}/{} behaviours passed", outcomes.len()));
    lines.join("\n")
}

/// The URL, endpoint, region and keys from the stage's env files.
fn target(stage: &StageConfig, token: String) -> Result<Target> {
    let (Some(front), Some(back)) = (&stage.env.frontend, &stage.env.backend) else {
        return Err(Error::usage(
            "conformance reads the stage's env files: configure env.frontend and env.backend",
        ));
    };
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).with_context(|| {
            format!(
                "cannot read {}: run `wsdeploy dev` (with --local) or `wsdeploy up -s {}` first",
                path.display(),
                stage.stage
            )
        })
    };
    let (front_text, back_text) = (read(&front.file)?, read(&back.file)?);
    let need = |text: &str, file: &std::path::Path, key: &str| {
        envfile::get(text, key)
            .filter(|v| !v.is_empty())
            .with_context(|| {
                format!(
                    "{} has no {key}: run `wsdeploy up` or `wsdeploy dev` first",
                    file.display()
                )
            })
    };
    Ok(Target {
        websocket_url: need(&front_text, &front.file, &front.url)?,
        endpoint: need(&back_text, &back.file, &back.endpoint)?,
        region: need(&back_text, &back.file, &back.region)?,
        access_key_id: need(&back_text, &back.file, &back.access_key_id)?,
        secret_access_key: need(&back_text, &back.file, &back.secret_access_key)?,
        token,
        has_default_route: stage.routes.contains_key("$default"),
        heartbeat: stage.heartbeat,
    })
}
