//! The command line: global flags (accepted before or after the verb) and one module per verb.

use clap::{Parser, Subcommand};

use crate::cmd::{self, GlobalArgs};

const EXAMPLES: &str = "\
Examples:
  wsdeploy init                      write wsdeploy.yaml (asks a few questions)
  wsdeploy dev                       run the whole system on this machine, no AWS account needed
  wsdeploy plan -s prod              show what `up` would change
  wsdeploy up -s prod --yes          create or update the stage and write the env files
  wsdeploy teardown -s prod --yes    delete everything the stage created

Exit codes: 0 success, 1 failure while running, 2 bad usage or invalid config (nothing was changed).";

/// `--version`: the version, then the bundled functions' sources and what is carried prebuilt.
static LONG_VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{}\n{}",
        env!("CARGO_PKG_VERSION"),
        crate::lambdas::version_note()
    )
});

#[derive(Debug, Parser)]
#[command(
    name = "wsdeploy",
    version,
    long_version = LONG_VERSION.as_str(),
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

#[derive(Debug, Subcommand)]
pub enum Command {
    Init(cmd::init::Args),
    Validate(cmd::validate::Args),
    Plan(cmd::plan::Args),
    Policy(cmd::policy::Args),
    Bootstrap(cmd::bootstrap::Args),
    Up(cmd::up::Args),
    Teardown(cmd::teardown::Args),
    Outputs(cmd::outputs::Args),
    Status(cmd::status::Args),
    Logs(cmd::logs::Args),
    Send(cmd::send::Args),
    Dev(cmd::dev::Args),
    Conformance(cmd::conformance::Args),
    Cost(cmd::cost::Args),
    Build(cmd::build::Args),
    Schema(cmd::schema::Args),
    Completions(cmd::completions::Args),
}
