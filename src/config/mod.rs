//! `wsdeploy.yaml`: the typed model, loading with located errors, and resolution into one config per stage.

pub mod diag;
pub mod load;
pub mod model;
pub mod positions;
pub mod resolve;
pub mod rules;

pub use diag::{Diagnostic, Report, Severity};
pub use load::ConfigError;
pub use model::{json_schema, Architecture, CredentialsMode};
pub use resolve::{
    is_local, replies, Config, DevSettings, Names, Overrides, StageConfig, DEFAULT_STAGE,
    LOCAL_STAGE,
};

#[cfg(test)]
mod tests;
