//! One module per verb: a clap `Args` struct with an `async fn run`.

aws_only! {
    pub(crate) mod bootstrap;
    pub(crate) mod conformance;
    pub(crate) mod logs;
    pub(crate) mod outputs;
    pub(crate) mod plan;
    pub(crate) mod policy;
    pub(crate) mod send;
    pub(crate) mod session;
    pub(crate) mod status;
    pub(crate) mod teardown;
    pub(crate) mod up;
}
pub(crate) mod build;
pub(crate) mod completions;
pub(crate) mod cost;
pub(crate) mod dev;
pub(crate) mod init;
pub(crate) mod schema;
pub(crate) mod validate;

use std::path::PathBuf;

use clap::Args;

use crate::cloud::AwsArgs;
use crate::config::{Config, Overrides};
use crate::error::Result;
use crate::ui::{OutputFormat, Ui};

/// The flags every verb accepts, before or after its name.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// The config file.
    #[arg(
        short,
        long,
        global = true,
        env = "WSDEPLOY_CONFIG",
        default_value = "wsdeploy.yaml",
        value_name = "FILE"
    )]
    pub config: PathBuf,
    /// The stage to act on; may be omitted when the file has exactly one.
    #[arg(
        short,
        long,
        global = true,
        env = "WSDEPLOY_STAGE",
        value_name = "NAME"
    )]
    pub stage: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
    /// `json`: one JSON document on stdout and nothing else there.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text, value_name = "FORMAT")]
    pub output: OutputFormat,
    /// Answer yes to every question (required for `teardown` without a terminal).
    #[arg(long, global = true)]
    pub yes: bool,
    /// More detail; -vv for the AWS SDK's own logs.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and the result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// What every verb gets: the global flags and the output handle.
pub struct Context {
    pub global: GlobalArgs,
    pub ui: Ui,
}

impl Context {
    pub fn overrides(&self) -> Overrides {
        let env_region = std::env::var("AWS_REGION").ok().filter(|r| !r.is_empty());
        Overrides {
            region: self.global.aws.region.clone().or(env_region),
        }
    }

    /// Asks `question` on the terminal, unless `--yes` answered it; without a terminal and without `--yes`, fails
    /// with `unattended` (what to pass in CI).
    pub fn confirm(&self, question: &str, unattended: &str) -> Result<bool> {
        if self.global.yes {
            return Ok(true);
        }
        if !self.ui.interactive {
            return Err(crate::error::Error::usage(unattended.to_string()));
        }
        Ok(dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .map_err(anyhow::Error::from)?)
    }

    /// Loads and checks the whole config file, showing its warnings. Errors abort before anything else happens.
    pub fn load_config(&self) -> Result<Config> {
        let config = Config::load(&self.global.config, &self.overrides())?;
        if !config.warnings.diagnostics.is_empty() && !self.ui.quiet {
            crate::ui::say_raw(&config.warnings.render(&config.file.path));
        }
        Ok(config)
    }
}
