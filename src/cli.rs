//! The command line: global flags (accepted before or after the verb) and one module per verb.

use clap::{Parser, Subcommand};

use crate::cmd::{self, GlobalArgs};

macro_rules! examples {
    () => {
        "\
Examples:
  wsdeploy init                      write wsdeploy.yaml (asks a few questions)
  wsdeploy dev                       run the whole system on this machine, no AWS account needed
  wsdeploy plan -s prod              show what `up` would change
  wsdeploy up -s prod --yes          create or update the stage and write the env files
  wsdeploy teardown -s prod --yes    delete everything the stage created

Exit codes: 0 success, 1 failure while running, 2 bad usage or invalid config (nothing was changed)."
    };
}

#[cfg(feature = "aws")]
const AFTER_HELP: &str = examples!();

/// A build without the `aws` feature says what it leaves out, and where the rest is.
#[cfg(not(feature = "aws"))]
const AFTER_HELP: &str = concat!(
    examples!(),
    "\n\nThis build has the local verbs only (init, validate, dev, build, cost, schema, completions): it was built \
     without the `aws` feature, as `cargo dev` builds it. The AWS verbs are in the default build: `cargo run -- plan`."
);

/// `--version`: the version, then the bundled functions' sources and what is carried prebuilt.
static LONG_VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{}\n{}{}",
        env!("CARGO_PKG_VERSION"),
        crate::lambdas::version_note(),
        if cfg!(feature = "aws") {
            ""
        } else {
            "\nverbs: local only (built without the aws feature)"
        }
    )
});

#[derive(Debug, Parser)]
#[command(
    name = "wsdeploy",
    version,
    long_version = LONG_VERSION.as_str(),
    about = "Real-time WebSockets for your web app on AWS API Gateway, from one YAML file",
    after_help = AFTER_HELP,
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
    #[cfg(feature = "aws")]
    Plan(cmd::plan::Args),
    #[cfg(feature = "aws")]
    Policy(cmd::policy::Args),
    #[cfg(feature = "aws")]
    Bootstrap(cmd::bootstrap::Args),
    #[cfg(feature = "aws")]
    Up(cmd::up::Args),
    #[cfg(feature = "aws")]
    Teardown(cmd::teardown::Args),
    #[cfg(feature = "aws")]
    Outputs(cmd::outputs::Args),
    #[cfg(feature = "aws")]
    Status(cmd::status::Args),
    #[cfg(feature = "aws")]
    Logs(cmd::logs::Args),
    #[cfg(feature = "aws")]
    Send(cmd::send::Args),
    Dev(cmd::dev::Args),
    #[cfg(feature = "aws")]
    Conformance(cmd::conformance::Args),
    Cost(cmd::cost::Args),
    Build(cmd::build::Args),
    Schema(cmd::schema::Args),
    Completions(cmd::completions::Args),
    /// Anything else: in a build without the `aws` feature, an AWS verb gets a word on where it is.
    #[cfg(not(feature = "aws"))]
    #[command(external_subcommand)]
    NotBuilt(Vec<String>),
}

/// The verbs a build without the `aws` feature leaves out.
#[cfg(not(feature = "aws"))]
const AWS_VERBS: [&str; 10] = [
    "plan",
    "policy",
    "bootstrap",
    "up",
    "teardown",
    "outputs",
    "status",
    "logs",
    "send",
    "conformance",
];

/// Why `verb` cannot run in this build, and what to run instead.
#[cfg(not(feature = "aws"))]
pub(crate) fn not_built(verb: &str) -> String {
    if AWS_VERBS.contains(&verb) {
        format!(
            "`{verb}` is not in this build of wsdeploy: it was built without the `aws` feature (as `cargo dev` builds it, \
             for the local verbs only). Run `cargo run -- {verb} …` for the default build, which has every verb"
        )
    } else {
        format!("unrecognized subcommand '{verb}': `wsdeploy --help` lists the verbs")
    }
}
