//! Deploying a stage: desired state, observed state, the plan between them (pure), and applying it (cloud).

pub mod action;
pub mod plan;
pub mod policy;
pub mod state;

pub use plan::{plan, plan_teardown, render, Action, Change, Options, Phase, PlanError};
pub use state::{Artifact, Desired, Observed};
