//! Typed errors, and the exit codes they map to (0 ok, 1 failure while running, 2 bad usage or config; docs/commands.md's "Exit codes").

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file is missing or wrong. Nothing was changed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The command line asks for something that cannot be done as asked. Nothing was changed.
    #[error("{0}")]
    Usage(String),
    /// Anything that went wrong while running.
    #[error("{0:#}")]
    Failed(#[from] anyhow::Error),
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => 2,
            Error::Failed(_) => 1,
        }
    }

    pub fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Failed(e.into())
    }
}
