//! One module per verb: a clap `Args` struct with an `async fn run`.

pub mod build;
pub mod completions;
pub mod dev;
pub mod init;
pub mod outputs;
pub mod plan;
pub mod policy;
pub mod schema;
pub mod send;
pub mod stage;
pub mod teardown;
pub mod up;
pub mod validate;

use crate::cli::GlobalArgs;
use crate::config::{Config, Overrides};
use crate::error::Result;
use crate::ui::Ui;

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

    /// Loads and checks the whole config file, showing its warnings. Errors abort before anything else happens.
    pub fn load_config(&self) -> Result<Config> {
        let config = Config::load(&self.global.config, &self.overrides())?;
        if !config.warnings.diagnostics.is_empty() && !self.ui.quiet {
            eprint!("{}", config.warnings.render(&config.file.path));
        }
        Ok(config)
    }
}
