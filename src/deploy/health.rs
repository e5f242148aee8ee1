//! Is a deployed stage healthy? Each problem found in (desired, observed, the plan between them) with what it breaks
//! for users and how to fix it. Pure: `wsdeploy status` reads AWS and prints.

use serde::Serialize;

use super::action::Action;
use super::state::{Desired, Observed};
use crate::config::{CredentialsMode, Names};

/// One thing wrong with the stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Problem {
    /// What is wrong, and what it does to users.
    pub what: String,
    /// The command or change that fixes it.
    pub fix: String,
}

/// Everything wrong with the stage. `drift` is the plan from `o` to `d` (`Desired::as_deployed`: the code and
/// signing secrets as deployed), `deployment_failure` what API Gateway says of the stage's last deployment.
pub(crate) fn problems(
    d: &Desired,
    o: &Observed,
    drift: &[Action],
    deployment_failure: Option<&str>,
) -> Vec<Problem> {
    let up = format!("run `wsdeploy up -s {}`", d.stage);
    let Some(api) = o.kept_api() else {
        return vec![Problem {
            what: format!(
                "the stage {} is not deployed in {} ({})",
                d.stage, d.region, d.account
            ),
            fix: up,
        }];
    };
    let mut out = vec![];
    for f in &d.functions {
        if let Some(why) = o
            .functions
            .get(&f.name)
            .and_then(|obs| obs.broken.as_deref())
        {
            let effect = if f.routed() {
                "the routes it serves answer \"Internal server error\""
            } else {
                "publishes the backend hands to it fail"
            };
            out.push(Problem {
                what: format!("the function {} {why}: {effect}", f.name),
                fix: format!("{up}; if it fails again, `aws lambda get-function --function-name {}` says why", f.name),
            });
        }
    }
    if let Some(why) = deployment_failure {
        out.push(Problem {
            what: format!("the stage's last deployment failed ({why}): changes since are not live"),
            fix: up.clone(),
        });
    }
    if let Some((rate, burst)) = api
        .stages
        .iter()
        .find(|s| s.name == d.stage)
        .and_then(|s| s.throttle)
        .filter(|(rate, burst)| *rate <= 0.0 || *burst <= 0)
    {
        out.push(Problem {
            what: format!("the stage is throttled to {rate}/s, burst {burst}: API Gateway refuses every message (429)"),
            fix: up.clone(),
        });
    }
    out.extend(account_logging(d, o));
    out.extend(domain_dns(d, o));
    out.extend(backend_key(d, o));
    out.extend(drift.iter().filter_map(|a| drifted(a, &d.names, &up)));
    out
}

/// The domain's name must lead to the API: its alias record, where this account holds the zone. (A zone elsewhere
/// is the user's to check; `up` printed the record to create.)
fn domain_dns(d: &Desired, o: &Observed) -> Option<Problem> {
    let want = d.domain.as_ref()?;
    let dom = o.domain.as_ref()?;
    let zone = o.zone.as_ref()?;
    if o.record.as_ref().is_some_and(|r| r.points_at(&dom.target)) {
        return None;
    }
    let now = o.record.as_ref().map_or_else(
        || "has no A record".to_string(),
        |r| {
            format!(
                "points at {}",
                r.alias_target.as_deref().unwrap_or("addresses of its own")
            )
        },
    );
    Some(Problem {
        what: format!(
            "{} {now} in the zone {}, not at the API's domain {}: clients cannot connect to wss://{}",
            want.name, zone.name, dom.target, want.name
        ),
        fix: format!("run `wsdeploy up -s {}`", d.stage),
    })
}

/// Logging the config asks for, which API Gateway refuses while its account settings have no CloudWatch role.
pub(crate) fn account_logging(d: &Desired, o: &Observed) -> Option<Problem> {
    if !d.logs.any() || o.account_logging_role.is_some() {
        return None;
    }
    let kinds = match (
        d.logs.access,
        d.logs.execution != crate::config::ExecutionLogging::Off,
    ) {
        (true, true) => "access and execution logs",
        (true, false) => "access logs",
        _ => "execution logs",
    };
    Some(Problem {
        what: format!(
            "API Gateway's account settings ({}, {}) have no CloudWatch role, so the stage {} has none of the {kinds} its config asks for",
            d.account, d.region, d.stage
        ),
        fix: format!(
            "run `wsdeploy up -s {} --setup-account-logging` (it creates the role {} and sets it for the account's API Gateway), or set `logs: {{ access: false }}`",
            d.stage,
            crate::facts::ACCOUNT_LOGGING_ROLE
        ),
    })
}

/// The access key the backend's env file holds must be one of the stage's user's, and active.
fn backend_key(d: &Desired, o: &Observed) -> Option<Problem> {
    if d.credentials != CredentialsMode::IamUser {
        return None;
    }
    let fix = format!(
        "run `wsdeploy up -s {} --rotate-credentials`, then restart your backend with its env file",
        d.stage
    );
    let what = match (&o.env_access_key_id, &o.user) {
        (None, _) => {
            "the backend's env file holds no access key: the backend cannot post to connections"
                .to_string()
        }
        (Some(id), Some(user)) => match user.keys.iter().find(|k| k.id == *id) {
            Some(k) if k.active => return None,
            Some(_) => format!(
                "the backend's access key {id} is inactive: AWS refuses its @connections calls"
            ),
            None => format!(
                "the backend's access key {id} is not one of {}'s (deleted, or another stage's)",
                d.names.user
            ),
        },
        (Some(id), None) => {
            format!("the backend's access key {id} belongs to no user of this stage")
        }
    };
    Some(Problem { what, fix })
}

/// A difference between the stage and its config, in what it means for users where that is known.
fn drifted(a: &Action, names: &Names, up: &str) -> Option<Problem> {
    use Action::*;
    let (kind, name) = a.resource(names);
    let what = match a {
        // Housekeeping, a key `backend_key` says more of, or a record `domain_dns` says more of.
        DeleteAccessKey { .. }
        | DeactivateAccessKey { .. }
        | CreateAccessKey
        | UpsertRecord { .. } => return None,
        AddPermission { .. } => {
            format!("API Gateway may not invoke {name}: the routes it serves answer \"Internal server error\"")
        }
        CreateRouteResponse { key } => {
            format!("the route {key} has no response: clients never hear its reply")
        }
        CreateRoute { key } => {
            format!("the route {key} is missing: its messages are answered \"Forbidden\"")
        }
        CreateFunction { .. } => format!("the function {name} is missing"),
        _ => {
            let detail = a.detail();
            let change = match a.change() {
                super::Change::Create => "missing",
                super::Change::Update => "differs from the config",
                super::Change::Delete => "is not in the config",
            };
            if detail.is_empty() {
                format!("{kind} {name} {change}")
            } else {
                format!("{kind} {name} {change} ({detail})")
            }
        }
    };
    Some(Problem {
        what,
        fix: up.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::plan::tests::{converged, desired};
    use crate::deploy::{plan, Options};

    fn found(d: &Desired, o: &Observed, deployment: Option<&str>) -> Vec<String> {
        let drift = plan(d, o, &Options::default()).unwrap();
        problems(d, o, &drift, deployment)
            .into_iter()
            .map(|p| p.what)
            .collect()
    }

    #[test]
    fn a_converged_stage_has_no_problem_and_a_missing_one_is_one() {
        let d = desired("");
        assert_eq!(found(&d, &converged(&d), None), Vec::<String>::new());
        let none = found(&d, &Observed::default(), None);
        assert_eq!(none.len(), 1);
        assert!(
            none[0].starts_with("the stage dev is not deployed"),
            "{none:?}"
        );
    }

    #[test]
    fn each_problem_says_what_it_does_to_users() {
        let d = desired("");
        let mut o = converged(&d);
        let f = d.functions[0].name.clone();
        o.functions.get_mut(&f).unwrap().broken = Some("is Failed (InvalidImage)".into());
        o.apis[0].stages[0].throttle = Some((0.0, 0));
        o.env_access_key_id = Some("AKIAOTHER".into());
        let got = found(&d, &o, Some("Deployment failed"));
        let has = |s: &str| got.iter().any(|w| w.contains(s));
        assert!(
            has(&format!("the function {f} is Failed (InvalidImage)")),
            "{got:?}"
        );
        assert!(
            has("the stage's last deployment failed (Deployment failed)"),
            "{got:?}"
        );
        assert!(has("API Gateway refuses every message (429)"), "{got:?}");
        assert!(
            has("the backend's access key AKIAOTHER is not one of"),
            "{got:?}"
        );
        // The throttle's own line, and the drift that `up` would repair, are both there.
        assert!(has("stage dev differs from the config"), "{got:?}");
    }
}
