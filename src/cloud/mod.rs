//! The AWS edge: one client per service, built from the standard AWS configuration chain (profiles, AWS_* variables,
//! `AWS_ENDPOINT_URL` for emulators), each call retried by the SDK's own retry config. Thin on purpose: the decisions
//! are in `deploy::plan`. Only the flags are built without the `aws` feature (`cargo dev`'s local build).

mod args;
pub(crate) use args::AwsArgs;

aws_only! {
    mod client;
    pub(crate) use client::*;
    pub(crate) mod account;
    pub(crate) mod apigw;
    pub(crate) mod apply;
    pub(crate) mod bootstrap;
    pub(crate) mod domain;
    pub(crate) mod iam;
    pub(crate) mod kms;
    pub(crate) mod lambda;
    pub(crate) mod logs;
    pub(crate) mod metrics;
    pub(crate) mod observe;
}
