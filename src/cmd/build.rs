//! `wsdeploy build`: build and zip the bundled Lambdas without deploying them.

use serde_json::json;

use crate::config::Architecture;
use crate::error::Result;
use crate::lambdas::{self, Target};

use super::Context;

/// Build the bundled Lambdas (cached by source and target) and show the zips `up` would upload; with `--out`, write
/// them where a release build embeds them from (`scripts/release`).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  wsdeploy build                  for the stage's architecture\n  wsdeploy build --arch x86_64\n  wsdeploy build --host           for this machine, as `wsdeploy dev` runs them\n  wsdeploy build --arch arm64 --build-from-source --out dist/lambdas\n                                  the zips a release embeds (WSDEPLOY_PREBUILT_LAMBDAS=dist/lambdas cargo build)"
)]
pub struct Args {
    /// Target architecture (default: the stage's `lambda.architecture`, else arm64).
    #[arg(long, value_enum, conflicts_with = "host")]
    pub arch: Option<ArchArg>,
    /// Build for this machine instead of Lambda.
    #[arg(long)]
    pub host: bool,
    /// Also copy the zips to `<DIR>/lambda-<arch>/<function>.zip`, with the sources' hash in `source-hash`: the
    /// folder a release build embeds (`WSDEPLOY_PREBUILT_LAMBDAS=<DIR>`).
    #[arg(long, value_name = "DIR", conflicts_with = "host")]
    pub out: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub source: lambdas::SourceArgs,
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
        if !lambdas::prebuilt_for(target, &self.source) {
            ctx.ui
                .info("building the bundled Lambdas (cached after the first build)…");
        }
        let source = self.source.clone();
        let got = tokio::task::spawn_blocking(move || lambdas::get(target, &source))
            .await
            .map_err(anyhow::Error::from)?
            .map_err(anyhow::Error::from)?;
        if let (Some(out), Target::Lambda(arch)) = (&self.out, target) {
            write_out(out, arch, &got.built)?;
        }
        ctx.ui.out_json(&json!({
            "source_hash": lambdas::source_hash(),
            "origin": got.origin,
            "from_source_because": got.from_source_because,
            "functions": got.built.iter().map(|b| (b.function.to_string(), json!({
                "bootstrap": b.bootstrap, "zip": b.zip, "zip_bytes": b.zip_bytes, "code_sha256": b.code_sha256,
            }))).collect::<serde_json::Map<_, _>>(),
        }));
        for b in &got.built {
            let what = match (&b.zip, &b.code_sha256) {
                (Some(zip), Some(sha)) => format!(
                    "{} ({:.1} KiB, sha256 {sha})",
                    zip.display(),
                    b.zip_bytes as f64 / 1024.0
                ),
                _ => b.bootstrap.display().to_string(),
            };
            ctx.ui.out(format!("{:<11} {what}", b.function));
        }
        ctx.ui.out(format!("functions   {}", got.describe()));
        Ok(())
    }
}

/// `<out>/lambda-<arch>/`: each function's zip and the sources' hash, replaced whole (a stale zip of a function
/// since removed would otherwise be embedded too), and left alone when it already holds exactly these: a build that
/// embeds the folder watches it, and would compile again for nothing.
fn write_out(
    out: &std::path::Path,
    arch: Architecture,
    built: &[lambdas::Built],
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let dir = out.join(format!("lambda-{}", arch.as_str()));
    let mut want: Vec<(std::path::PathBuf, Vec<u8>)> = vec![(
        dir.join("source-hash"),
        format!("{}\n", lambdas::source_hash()).into_bytes(),
    )];
    for b in built {
        let zip = b.zip.as_ref().context("a Lambda build yields zips")?;
        let bytes = std::fs::read(zip).with_context(|| format!("cannot read {}", zip.display()))?;
        want.push((dir.join(format!("{}.zip", b.function)), bytes));
    }
    let present = std::fs::read_dir(&dir).map_or(0, Iterator::count);
    if present == want.len()
        && want
            .iter()
            .all(|(p, bytes)| std::fs::read(p).is_ok_and(|b| b == *bytes))
    {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot replace {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (path, bytes) in want {
        std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}
