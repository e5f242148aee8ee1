//! Deploying a stage: desired state, observed state, the plan between them (pure), and applying it (cloud).

pub(crate) mod action;
pub(crate) mod bootstrap;
pub(crate) mod boundary;
pub(crate) mod health;
pub(crate) mod key_policy;
pub(crate) mod plan;
pub(crate) mod policy;
pub(crate) mod policy_split;
pub(crate) mod state;

pub(crate) use plan::{plan, plan_teardown, render, Action, Change, Options, Phase};
pub(crate) use state::{Artifact, Desired, Observed};
