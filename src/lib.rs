//! wsdeploy: real-time WebSockets for a web app on AWS API Gateway, from one YAML file.
//!
//! Pure core (config, plan), effectful edge (cloud, files, terminal). ARCHITECTURE.md draws the layers.

// Without the `aws` feature (the local build `cargo dev` makes) the deploy verbs' share of the pure core goes unused;
// dead code is judged in the default build, which has every verb.
#![cfg_attr(
    not(feature = "aws"),
    allow(dead_code, unused_imports, unreachable_pub)
)]

/// The items only the default build has (the `aws` feature: the SDK and the verbs that call AWS).
macro_rules! aws_only {
    ($($item:item)*) => { $( #[cfg(feature = "aws")] $item )* };
}

pub mod cli;
mod cloud;
mod cmd;
mod config;
aws_only! {
    mod conformance;
}
mod cost;
aws_only! {
    mod deploy;
}
mod dev;
pub mod envfile;
mod error;
mod facts;
mod fsutil;
mod lambdas;
mod logfmt;
mod secret;
mod templates;
mod ui;

use cli::{Cli, Command};
use error::Error;

/// Runs a parsed command line to its end and returns the exit code; errors are reported here.
pub async fn run(cli: Cli) -> i32 {
    let ctx = cmd::Context {
        ui: ui::Ui::new(cli.global.output, cli.global.quiet, cli.global.verbose),
        global: cli.global,
    };
    let mut result = dispatch(cli.command, &ctx).await;
    if let Err(e) = ctx.ui.finish() {
        result = result.and(Err(e.into()));
    }
    match result {
        Ok(()) => 0,
        Err(err) => {
            report_error(&err, &ctx.ui);
            err.exit_code()
        }
    }
}

async fn dispatch(command: Command, ctx: &cmd::Context) -> Result<(), Error> {
    match command {
        Command::Init(a) => a.run(ctx).await,
        Command::Validate(a) => a.run(ctx).await,
        #[cfg(feature = "aws")]
        Command::Plan(a) => a.run(ctx).await,
        #[cfg(feature = "aws")]
        Command::Up(a) => a.run(ctx).await,
        #[cfg(feature = "aws")]
        Command::Policy(a) => a.run(ctx).await,
        #[cfg(feature = "aws")]
        Command::Bootstrap(a) => a.run(ctx).await,
        #[cfg(feature = "aws")]
        Command::Teardown(a) => a.run(ctx).await,
        #[cfg(feature = "aws")]
        Command::Outputs(a) => a.run(ctx).await,
        #[cfg(feature = "aws")]
        Command::Status(a) => a.run(ctx).await,
        #[cfg(feature = "aws")]
        Command::Logs(a) => a.run(ctx).await,
        Command::Cost(a) => a.run(ctx).await,
        #[cfg(feature = "aws")]
        Command::Send(a) => a.run(ctx).await,
        Command::Dev(a) => a.run(ctx).await,
        #[cfg(feature = "aws")]
        Command::Conformance(a) => a.run(ctx).await,
        Command::Build(a) => a.run(ctx).await,
        Command::Schema(a) => a.run(ctx).await,
        Command::Completions(a) => a.run(ctx, <Cli as clap::CommandFactory>::command()),
        #[cfg(not(feature = "aws"))]
        Command::NotBuilt(args) => Err(Error::usage(cli::not_built(&args[0]))),
    }
}

/// Turns an error into what a person reads (stderr) and, with `--output json`, what a machine reads (stdout).
fn report_error(err: &Error, ui: &ui::Ui) {
    use config::ConfigError;
    let text = match err {
        Error::Config(ConfigError::Invalid(report)) => report.render(&report.file),
        Error::Config(ConfigError::NotFound { path }) => format!(
            "error: no config file at {}\n  = help: run `wsdeploy init` to write one, or point at yours with -c FILE (or WSDEPLOY_CONFIG)\n",
            path.display()
        ),
        other => format!("error: {other}\n"),
    };
    ui::say_raw(&text.replace("error:", &console::style("error:").red().bold().to_string()));
    let diagnostics = match err {
        Error::Config(ConfigError::Invalid(r)) => {
            serde_json::to_value(&r.diagnostics).unwrap_or_default()
        }
        _ => serde_json::Value::Array(vec![]),
    };
    let message = match err {
        Error::Config(ConfigError::Invalid(r)) => format!("{} has errors", r.file.display()),
        e => e.to_string(),
    };
    ui.out_json(&serde_json::json!({
        "error": { "message": message, "exit_code": err.exit_code(), "diagnostics": diagnostics }
    }));
}

/// `-v` shows wsdeploy's own debug lines, `-vv` the AWS SDK's too; `WSDEPLOY_LOG` takes a full filter.
pub fn init_tracing(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "warn,wsdeploy=debug",
        (_, 2) => "info,wsdeploy=trace,aws_config=debug,aws_smithy_runtime=debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WSDEPLOY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(console::colors_enabled_stderr())
        .with_target(verbose > 1)
        .try_init();
}
