//! The one integration-test binary (it links once): every test drives the real `wsdeploy` binary or real services.

// Scenario tests read top to bottom, one step after the other, however long the scenario.
#![allow(clippy::too_many_lines)]

mod aws_behaviour;
mod aws_emulator;
mod aws_quirks;
mod cli;
mod config_corpus;
mod deploy;
mod dev;
mod devkit;
mod envfile;
mod example;
mod iam_enforce;
mod init;
mod lambdas;
mod moto;
mod policy;
mod proxy;
mod reliability;
mod security;
mod templates;
mod util;
