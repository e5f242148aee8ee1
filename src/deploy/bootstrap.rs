//! `wsdeploy bootstrap`, the pure part: what an administrator sets up once per account and project (the
//! permissions boundary; with `--github`, GitHub's OIDC identity provider and a deploy role trusting exactly one
//! repository and environment, holding the deploy policy), and the plan from what IAM has to that, or to nothing.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Value};

use super::state::{Partition, PolicyObs};

/// GitHub's OIDC issuer and the audience its tokens carry for AWS
/// (<https://docs.github.com/en/actions/security-for-github-actions/security-hardening-your-deployments/configuring-openid-connect-in-amazon-web-services>).
pub(crate) const GITHUB_ISSUER: &str = "token.actions.githubusercontent.com";
pub(crate) const GITHUB_AUDIENCE: &str = "sts.amazonaws.com";
/// The tag on what bootstrap created, so that `--teardown` removes only that.
pub(crate) const TAG_BOOTSTRAP: &str = "wsdeploy:bootstrap";

/// `OWNER/REPO[:ENVIRONMENT]`; the environment defaults to `production`, the one the workflow template deploys in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GitHub {
    pub repository: String,
    pub environment: String,
}

impl GitHub {
    pub(crate) fn parse(s: &str) -> Result<GitHub, String> {
        let (repository, environment) = s.split_once(':').unwrap_or((s, "production"));
        let ok = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        match repository.split_once('/') {
            Some((owner, repo)) if ok(owner) && ok(repo) && ok(environment) => Ok(GitHub {
                repository: repository.to_string(),
                environment: environment.to_string(),
            }),
            _ => Err(format!(
                "--github {s:?}: give OWNER/REPO or OWNER/REPO:ENVIRONMENT (letters, digits, '-', '_', '.'), e.g. acme/chat:production"
            )),
        }
    }

    /// The `sub` claim of a job that runs in this repository's environment.
    pub(crate) fn subject(&self) -> String {
        format!("repo:{}:environment:{}", self.repository, self.environment)
    }
}

/// What bootstrap sets up.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub boundary_name: String,
    pub boundary: Value,
    pub github: Option<GitHub>,
    pub role_name: String,
    pub provider_arn: String,
    /// The deploy policy, cut to what IAM accepts: (name, document).
    pub policies: Vec<(String, Value)>,
}

impl Wanted {
    pub(crate) fn provider_arn(partition: &Partition, account: &str) -> String {
        format!(
            "arn:{}:iam::{account}:oidc-provider/{GITHUB_ISSUER}",
            partition.id
        )
    }

    /// Only GitHub's tokens for this repository's environment, meant for AWS, may assume the role.
    pub(crate) fn trust(&self) -> Option<Value> {
        let gh = self.github.as_ref()?;
        Some(json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Federated": self.provider_arn },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": { "StringEquals": {
                    format!("{GITHUB_ISSUER}:aud"): GITHUB_AUDIENCE,
                    format!("{GITHUB_ISSUER}:sub"): gh.subject(),
                } }
            }]
        }))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProviderObs {
    pub client_ids: Vec<String>,
    /// Created by this project's bootstrap (tagged so).
    pub ours: bool,
    /// Other roles than the deploy role trust it.
    pub used_by_others: bool,
}

/// What IAM has.
#[derive(Debug, Clone, Default)]
pub(crate) struct Found {
    pub boundary: Option<PolicyObs>,
    pub provider: Option<ProviderObs>,
    /// The deploy role's trust policy and the ARNs of the policies attached to it.
    pub role: Option<(Value, Vec<String>)>,
    /// The project's deploy policies, by name.
    pub policies: BTreeMap<String, PolicyObs>,
    /// Roles and users that carry the boundary (a stage's, or the account logging role).
    pub bounded: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub(crate) enum Step {
    CreateBoundary,
    UpdateBoundary {
        delete_oldest: Option<String>,
    },
    CreateProvider,
    AddAudience,
    CreateRole,
    UpdateTrust,
    CreatePolicy {
        name: String,
    },
    UpdatePolicy {
        name: String,
        delete_oldest: Option<String>,
    },
    Attach {
        name: String,
    },
    Detach {
        name: String,
    },
    DeletePolicy {
        name: String,
    },
    DeleteRole,
    DeleteProvider,
    DeleteBoundary,
}

impl Step {
    /// `(sign, kind, name)` for people.
    pub(crate) fn line(&self, w: &Wanted) -> String {
        use Step::*;
        let (sign, kind, name, detail) = match self {
            CreateBoundary => ('+', "boundary policy", w.boundary_name.clone(), ""),
            UpdateBoundary { .. } => (
                '~',
                "boundary policy",
                w.boundary_name.clone(),
                "policy document",
            ),
            CreateProvider => (
                '+',
                "oidc provider",
                GITHUB_ISSUER.to_string(),
                "audience sts.amazonaws.com",
            ),
            AddAudience => (
                '~',
                "oidc provider",
                GITHUB_ISSUER.to_string(),
                "add audience sts.amazonaws.com",
            ),
            CreateRole => ('+', "deploy role", w.role_name.clone(), ""),
            UpdateTrust => ('~', "deploy role", w.role_name.clone(), "trust policy"),
            CreatePolicy { name } => ('+', "deploy policy", name.clone(), ""),
            UpdatePolicy { name, .. } => ('~', "deploy policy", name.clone(), "policy document"),
            Attach { name } => ('+', "attachment", name.clone(), "to the deploy role"),
            Detach { name } => ('-', "attachment", name.clone(), "from the deploy role"),
            DeletePolicy { name } => ('-', "deploy policy", name.clone(), ""),
            DeleteRole => ('-', "deploy role", w.role_name.clone(), ""),
            DeleteProvider => ('-', "oidc provider", GITHUB_ISSUER.to_string(), ""),
            DeleteBoundary => ('-', "boundary policy", w.boundary_name.clone(), ""),
        };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!("  ({detail})")
        };
        format!("  {sign} {kind:<17} {name}{detail}")
    }
}

fn oldest(p: &PolicyObs) -> Option<String> {
    (p.old_versions.len() >= 4).then(|| p.old_versions[0].clone())
}

/// The boundary; with GitHub, the provider, the role and its policies. Policies of an earlier, larger cut that
/// the deploy policy no longer needs are detached and deleted.
pub(crate) fn plan(w: &Wanted, f: &Found) -> Vec<Step> {
    let mut steps = vec![];
    match &f.boundary {
        None => steps.push(Step::CreateBoundary),
        Some(b) if b.document != w.boundary => steps.push(Step::UpdateBoundary {
            delete_oldest: oldest(b),
        }),
        Some(_) => {}
    }
    let Some(trust) = w.trust() else {
        return steps;
    };
    match &f.provider {
        None => steps.push(Step::CreateProvider),
        Some(p) if !p.client_ids.iter().any(|c| c == GITHUB_AUDIENCE) => {
            steps.push(Step::AddAudience);
        }
        Some(_) => {}
    }
    let attached = match &f.role {
        None => {
            steps.push(Step::CreateRole);
            vec![]
        }
        Some((t, attached)) => {
            if *t != trust {
                steps.push(Step::UpdateTrust);
            }
            attached.clone()
        }
    };
    let is_attached = |name: &str| attached.iter().any(|a| a.ends_with(&format!("/{name}")));
    for (name, doc) in &w.policies {
        match f.policies.get(name) {
            None => steps.push(Step::CreatePolicy { name: name.clone() }),
            Some(p) if p.document != *doc => steps.push(Step::UpdatePolicy {
                name: name.clone(),
                delete_oldest: oldest(p),
            }),
            Some(_) => {}
        }
        if !is_attached(name) {
            steps.push(Step::Attach { name: name.clone() });
        }
    }
    for name in f
        .policies
        .keys()
        .filter(|n| !w.policies.iter().any(|(m, _)| m == *n))
    {
        if is_attached(name) {
            steps.push(Step::Detach { name: name.clone() });
        }
        steps.push(Step::DeletePolicy { name: name.clone() });
    }
    steps
}

/// Everything bootstrap made, but not while a role or user still carries the boundary (they would lose their
/// cap's policy), and not GitHub's provider when bootstrap did not create it or other roles trust it.
pub(crate) fn plan_teardown(w: &Wanted, f: &Found) -> Result<Vec<Step>, String> {
    if !f.bounded.is_empty() {
        return Err(format!(
            "the boundary {} still caps {}: tear those stages down first (`wsdeploy teardown -s STAGE`), then run bootstrap --teardown again",
            w.boundary_name,
            f.bounded.join(", ")
        ));
    }
    let mut steps = vec![];
    let attached = f.role.as_ref().map(|(_, a)| a.clone()).unwrap_or_default();
    for name in f.policies.keys() {
        if attached.iter().any(|a| a.ends_with(&format!("/{name}"))) {
            steps.push(Step::Detach { name: name.clone() });
        }
        steps.push(Step::DeletePolicy { name: name.clone() });
    }
    if f.role.is_some() {
        steps.push(Step::DeleteRole);
    }
    if f.provider
        .as_ref()
        .is_some_and(|p| p.ours && !p.used_by_others)
    {
        steps.push(Step::DeleteProvider);
    }
    if f.boundary.is_some() {
        steps.push(Step::DeleteBoundary);
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(github: Option<&str>) -> Wanted {
        let p = Partition::of_arn("arn:aws:iam::1:root");
        Wanted {
            boundary_name: "chat-wsdeploy-boundary".into(),
            boundary: json!({ "b": 1 }),
            github: github.map(|g| GitHub::parse(g).unwrap()),
            role_name: "chat-wsdeploy-deploy".into(),
            provider_arn: Wanted::provider_arn(&p, "123456789012"),
            policies: vec![
                ("chat-wsdeploy-deploy-1".into(), json!({ "p": 1 })),
                ("chat-wsdeploy-deploy-2".into(), json!({ "p": 2 })),
            ],
        }
    }

    fn policy(doc: Value) -> PolicyObs {
        PolicyObs {
            tags: BTreeMap::new(),
            document: doc,
            old_versions: vec![],
        }
    }

    /// Everything that converged: a second bootstrap has nothing to do.
    fn converged(w: &Wanted) -> Found {
        Found {
            boundary: Some(policy(w.boundary.clone())),
            provider: Some(ProviderObs {
                client_ids: vec![GITHUB_AUDIENCE.into()],
                ours: true,
                used_by_others: false,
            }),
            role: Some((
                w.trust().unwrap(),
                w.policies
                    .iter()
                    .map(|(n, _)| format!("arn:aws:iam::123456789012:policy/{n}"))
                    .collect(),
            )),
            policies: w
                .policies
                .iter()
                .map(|(n, d)| (n.clone(), policy(d.clone())))
                .collect(),
            bounded: vec![],
        }
    }

    #[test]
    fn the_repository_and_environment_are_read_and_checked() {
        let g = GitHub::parse("acme/chat").unwrap();
        assert_eq!(g.subject(), "repo:acme/chat:environment:production");
        assert_eq!(
            GitHub::parse("acme/chat:staging").unwrap().subject(),
            "repo:acme/chat:environment:staging"
        );
        for bad in [
            "acme",
            "acme/",
            "/chat",
            "acme/chat:",
            "acme/chat:a b",
            "a/b/c",
        ] {
            assert!(GitHub::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_trust_binds_the_audience_and_the_subject_exactly() {
        let t = wanted(Some("acme/chat:prod")).trust().unwrap();
        let c = &t["Statement"][0]["Condition"]["StringEquals"];
        assert_eq!(
            c["token.actions.githubusercontent.com:aud"],
            "sts.amazonaws.com"
        );
        assert_eq!(
            c["token.actions.githubusercontent.com:sub"],
            "repo:acme/chat:environment:prod"
        );
        assert_eq!(
            t["Statement"][0]["Principal"]["Federated"],
            "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
        );
        assert!(wanted(None).trust().is_none());
    }

    #[test]
    fn a_cold_account_gets_everything_and_a_second_run_nothing() {
        let w = wanted(Some("acme/chat"));
        use Step::*;
        let n = |i: u8| format!("chat-wsdeploy-deploy-{i}");
        assert_eq!(
            plan(&w, &Found::default()),
            vec![
                CreateBoundary,
                CreateProvider,
                CreateRole,
                CreatePolicy { name: n(1) },
                Attach { name: n(1) },
                CreatePolicy { name: n(2) },
                Attach { name: n(2) },
            ]
        );
        assert_eq!(plan(&w, &converged(&w)), vec![]);
        assert_eq!(plan(&wanted(None), &Found::default()), vec![CreateBoundary]);
    }

    #[test]
    fn drift_is_repaired_and_a_policy_no_longer_needed_goes() {
        let w = wanted(Some("acme/chat"));
        let mut f = converged(&w);
        f.role.as_mut().unwrap().0 = json!({ "someone": "else" });
        f.provider.as_mut().unwrap().client_ids = vec!["other".into()];
        f.policies
            .insert("chat-wsdeploy-deploy-3".into(), policy(json!({})));
        f.role
            .as_mut()
            .unwrap()
            .1
            .push("arn:aws:iam::123456789012:policy/chat-wsdeploy-deploy-3".into());
        f.policies
            .get_mut("chat-wsdeploy-deploy-1")
            .unwrap()
            .document = json!({ "old": 1 });
        use Step::*;
        assert_eq!(
            plan(&w, &f),
            vec![
                AddAudience,
                UpdateTrust,
                UpdatePolicy {
                    name: "chat-wsdeploy-deploy-1".into(),
                    delete_oldest: None
                },
                Detach {
                    name: "chat-wsdeploy-deploy-3".into()
                },
                DeletePolicy {
                    name: "chat-wsdeploy-deploy-3".into()
                },
            ]
        );
    }

    #[test]
    fn teardown_waits_for_the_stages_and_leaves_a_shared_provider() {
        let w = wanted(Some("acme/chat"));
        let mut f = converged(&w);
        f.bounded = vec!["role chat-dev-lambda".into()];
        assert!(plan_teardown(&w, &f)
            .unwrap_err()
            .contains("role chat-dev-lambda"));
        f.bounded.clear();
        let steps = plan_teardown(&w, &f).unwrap();
        assert_eq!(steps.last(), Some(&Step::DeleteBoundary));
        assert!(steps.contains(&Step::DeleteProvider));
        f.provider.as_mut().unwrap().used_by_others = true;
        assert!(!plan_teardown(&w, &f)
            .unwrap()
            .contains(&Step::DeleteProvider));
        assert_eq!(plan_teardown(&w, &Found::default()).unwrap(), vec![]);
    }
}
