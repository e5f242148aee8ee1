//! `wsdeploy.yaml`: the typed model, loading with located errors, and resolution into one config per stage.

pub(crate) mod diag;
pub(crate) mod load;
pub(crate) mod model;
pub(crate) mod positions;
pub(crate) mod resolve;
pub(crate) mod rules;

pub(crate) use load::ConfigError;
pub(crate) use model::{
    json_schema, Architecture, CredentialsMode, ExecutionLogging, IpAddressType,
};
pub(crate) use resolve::{
    is_local, replies, Config, DevSettings, DomainSettings, EnvKey, LogSettings, Names, Overrides,
    StageConfig, LOCAL_STAGE,
};

#[cfg(test)]
mod tests;
