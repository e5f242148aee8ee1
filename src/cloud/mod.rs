//! The AWS edge: one client per service, built from the standard AWS configuration chain (profiles, AWS_* variables,
//! `AWS_ENDPOINT_URL` for emulators), each call retried by the SDK's own retry config. Thin on purpose: the decisions
//! are in `deploy::plan`. Only the flags are built without the `aws` feature (`cargo dev`'s local build).

mod args;
pub(crate) use args::AwsArgs;

#[cfg(feature = "aws")]
mod client;
#[cfg(feature = "aws")]
pub(crate) use client::*;

#[cfg(feature = "aws")]
pub(crate) mod account;
#[cfg(feature = "aws")]
pub(crate) mod apigw;
#[cfg(feature = "aws")]
pub(crate) mod apply;
#[cfg(feature = "aws")]
pub(crate) mod bootstrap;
#[cfg(feature = "aws")]
pub(crate) mod domain;
#[cfg(feature = "aws")]
pub(crate) mod iam;
#[cfg(feature = "aws")]
pub(crate) mod kms;
#[cfg(feature = "aws")]
pub(crate) mod lambda;
#[cfg(feature = "aws")]
pub(crate) mod logs;
#[cfg(feature = "aws")]
pub(crate) mod metrics;
#[cfg(feature = "aws")]
pub(crate) mod observe;
