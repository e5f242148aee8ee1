//! `wsdeploy build`: build and zip the bundled Lambdas without deploying them.

use serde_json::json;

use crate::config::Architecture;
use crate::error::Result;
use crate::lambdas::{self, Target};

use super::Context;

/// Build the bundled Lambdas (cached by source, target and profile) and show the zips `up` would upload.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy build                  for the stage's architecture\n  wsdeploy build --arch x86_64\n  wsdeploy build --host           for this machine, as `wsdeploy dev` runs them"
)]
pub struct Args {
    /// Target architecture (default: the stage's `lambda.architecture`, else arm64).
    #[arg(long, value_enum, conflicts_with = "host")]
    pub arch: Option<ArchArg>,
    /// Build for this machine instead of Lambda.
    #[arg(long)]
    pub host: bool,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ArchArg {
    Arm64,
    #[value(name = "x86_64", alias = "x86-64")]
    X86_64,
}

impl Args {
    pub async fn run(self, ctx: &Context) -> Result<()> {
        let target = if self.host {
            Target::Host
        } else {
            let arch = match self.arch {
                Some(ArchArg::Arm64) => Architecture::Arm64,
                Some(ArchArg::X86_64) => Architecture::X86_64,
                // Without a config file there is no stage to ask: Lambda's recommended default.
                None if !ctx.global.config.exists() => Architecture::Arm64,
                None => {
                    ctx.load_config()?
                        .stage(ctx.global.stage.as_deref())?
                        .lambda
                        .architecture
                }
            };
            Target::Lambda(arch)
        };
        ctx.ui
            .info("building the bundled Lambdas (cached after the first build)…");
        let built = tokio::task::spawn_blocking(move || lambdas::build(target))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(anyhow::Error::from)?;
        ctx.ui.out_json(&json!({
            "source_hash": lambdas::source_hash(),
            "functions": built.iter().map(|b| (b.function.to_string(), json!({
                "bootstrap": b.bootstrap, "zip": b.zip, "zip_bytes": b.zip_bytes, "code_sha256": b.code_sha256, "compiled": b.compiled,
            }))).collect::<serde_json::Map<_, _>>(),
        }));
        for b in &built {
            let what = match (&b.zip, &b.code_sha256) {
                (Some(zip), Some(sha)) => format!(
                    "{} ({:.1} KiB, sha256 {sha})",
                    zip.display(),
                    b.zip_bytes as f64 / 1024.0
                ),
                _ => b.bootstrap.display().to_string(),
            };
            ctx.ui.out(format!(
                "{:<11} {what}{}",
                b.function,
                if b.compiled { "" } else { "  [cached]" }
            ));
        }
        Ok(())
    }
}
