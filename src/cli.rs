//! The command line: global flags (accepted before or after the verb) and one module per verb.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cmd;
use crate::ui::OutputFormat;

const EXAMPLES: &str = "\
Examples:
  wsdeploy init                      write wsdeploy.yaml (asks a few questions)
  wsdeploy dev                       run the whole system on this machine, no AWS account needed
  wsdeploy plan -s prod              show what `up` would change
  wsdeploy up -s prod --yes          create or update the stage and write the env files
  wsdeploy teardown -s prod --yes    delete everything the stage created

Exit codes: 0 success, 1 failure while running, 2 bad usage or invalid config (nothing was changed).";

#[derive(Debug, Parser)]
#[command(
    name = "wsdeploy",
    version,
    about = "Real-time WebSockets for your web app on AWS API Gateway, from one YAML file",
    after_help = EXAMPLES,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

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

/// How to reach AWS. The standard AWS variables (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS,
/// AWS_RETRY_MODE, ...) and profile settings apply; these flags override them.
#[derive(Debug, Clone, Default, Args)]
pub struct AwsArgs {
    /// The AWS profile to use (overrides AWS_PROFILE).
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// The AWS region (overrides AWS_REGION and the config's region).
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Attempts per AWS request, retries included (overrides AWS_MAX_ATTEMPTS).
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_attempts: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(cmd::init::Args),
    Validate(cmd::validate::Args),
    Plan(cmd::plan::Args),
    Policy(cmd::policy::Args),
    Up(cmd::up::Args),
    Teardown(cmd::teardown::Args),
    Outputs(cmd::outputs::Args),
    Send(cmd::send::Args),
    Dev(cmd::dev::Args),
    Build(cmd::build::Args),
    Schema(cmd::schema::Args),
    Completions(cmd::completions::Args),
}
