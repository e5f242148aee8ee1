//! The plan: a pure function from (desired, observed) to the ordered actions that converge AWS on the desired
//! state. `up` applies it, `plan` prints it, `teardown` is the plan towards nothing.

pub use super::action::{Action, Change, Names};
use super::state::{Desired, Observed, HANDLER, ROUTE_SELECTION, RUNTIME};
use crate::config::CredentialsMode;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{kind} {name} exists but is not this stage's (its tags say project {project:?}, stage {stage:?}); wsdeploy will not touch it: rename the project or stage, or delete it")]
    Foreign {
        kind: &'static str,
        name: String,
        project: Option<String>,
        stage: Option<String>,
    },
}

fn foreign(kind: &'static str, name: &str, tags: &super::state::Tags) -> PlanError {
    PlanError::Foreign {
        kind,
        name: name.to_string(),
        project: tags.get(super::state::TAG_PROJECT).cloned(),
        stage: tags.get(super::state::TAG_STAGE).cloned(),
    }
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub rotate_credentials: bool,
}

/// Actions that make AWS match `d`, ordered by phase. Empty when nothing changed.
pub fn plan(d: &Desired, o: &Observed, opts: &Options) -> Result<Vec<Action>, PlanError> {
    use Action::*;
    let mut a = vec![];

    match &o.role {
        None => a.extend([CreateRole, PutRolePolicy]),
        Some(r) if !d.owns(&r.tags) => return Err(foreign("IAM role", &d.role, &r.tags)),
        Some(r) => {
            if r.trust != Desired::role_trust_policy() {
                a.push(UpdateRoleTrust);
            }
            if r.policy.as_ref() != Some(&d.role_policy()) {
                a.push(PutRolePolicy);
            }
        }
    }

    for f in &d.functions {
        let group = Desired::log_group(&f.name);
        match o.log_groups.get(&group) {
            None => a.extend([
                CreateLogGroup {
                    name: group.clone(),
                },
                PutRetention {
                    name: group,
                    days: d.log_retention_days,
                },
            ]),
            Some(days) if *days != Some(d.log_retention_days) => a.push(PutRetention {
                name: group,
                days: d.log_retention_days,
            }),
            Some(_) => {}
        }
        match o.functions.get(&f.name) {
            None => a.push(CreateFunction {
                function: f.function.clone(),
            }),
            Some(of) if !d.owns(&of.tags) => {
                return Err(foreign("Lambda function", &f.name, &of.tags))
            }
            Some(of) => {
                let mut code = vec![];
                if of.code_sha256 != f.artifact.code_sha256 {
                    code.push("code".to_string());
                }
                if of.architecture != Some(f.architecture) {
                    code.push(format!("architecture → {}", f.architecture.as_str()));
                }
                if !code.is_empty() {
                    a.push(UpdateFunctionCode {
                        function: f.function.clone(),
                        fields: code,
                    });
                }
                let mut cfg = vec![];
                if of.memory_mb != f.memory_mb {
                    cfg.push(format!("memory_mb {} → {}", of.memory_mb, f.memory_mb));
                }
                if of.timeout_s != f.timeout_s {
                    cfg.push(format!("timeout_s {} → {}", of.timeout_s, f.timeout_s));
                }
                if of.runtime != RUNTIME || of.handler != HANDLER {
                    cfg.push("runtime".into());
                }
                if of.role != d.role_arn() {
                    cfg.push("role".into());
                }
                for (k, v) in &f.env {
                    if of.env.get(k) != Some(v) {
                        // Never show the secret's value, even in a diff.
                        cfg.push(if k.contains("SECRET") {
                            format!("env {k}")
                        } else {
                            format!("env {k} → {v}")
                        });
                    }
                }
                if of.env.keys().any(|k| !f.env.contains_key(k)) {
                    cfg.push("env (extra variables removed)".into());
                }
                if !cfg.is_empty() {
                    a.push(UpdateFunctionConfig {
                        function: f.function.clone(),
                        fields: cfg,
                    });
                }
            }
        }
    }
    for (name, of) in &o.functions {
        if !d.functions.iter().any(|f| &f.name == name) {
            if !d.owns(&of.tags) {
                return Err(foreign("Lambda function", name, &of.tags));
            }
            a.push(DeleteFunction { name: name.clone() });
            let group = Desired::log_group(name);
            if o.log_groups.contains_key(&group) {
                a.push(DeleteLogGroup { name: group });
            }
        }
    }

    // The API: the oldest one we own is kept, later duplicates (from a race between two runs) are removed.
    if let Some(foreign_api) = o.apis.iter().find(|api| !d.owns(&api.tags)) {
        return Err(foreign(
            "WebSocket API",
            &format!("{} ({})", d.api, foreign_api.id),
            &foreign_api.tags,
        ));
    }
    let mut apis: Vec<_> = o.apis.iter().collect();
    apis.sort_by_key(|api| (api.created, api.id.clone()));
    let api = apis.first().copied();
    for dup in apis.iter().skip(1) {
        a.push(DeleteApi {
            id: dup.id.clone(),
            reason: "duplicate left by an earlier concurrent run".into(),
        });
    }
    match api {
        None => {
            a.push(CreateApi);
            a.push(CreateStage);
            for f in &d.functions {
                a.push(CreateIntegration {
                    function: f.function.clone(),
                });
                a.push(AddPermission {
                    function: f.function.clone(),
                    replace: false,
                });
            }
            for r in &d.routes {
                a.push(CreateRoute { key: r.key.clone() });
                if r.reply {
                    a.push(CreateRouteResponse { key: r.key.clone() });
                }
            }
        }
        Some(api) => {
            if api.route_selection != ROUTE_SELECTION {
                a.push(UpdateApi { id: api.id.clone() });
            }
            match api.stages.iter().find(|s| s.name == d.stage) {
                None => a.push(CreateStage),
                Some(s) if !s.auto_deploy => a.push(UpdateStage),
                Some(_) => {}
            }
            // Integrations by function ARN: the first of each is kept, any other is removed.
            let mut kept: std::collections::BTreeMap<&str, &str> = Default::default();
            for f in &d.functions {
                let uri = d.integration_uri(&d.function_arn(&f.name));
                match api.integrations.iter().find(|i| i.uri == uri) {
                    Some(i) => {
                        kept.insert(&f.function, &i.id);
                    }
                    None => a.push(CreateIntegration {
                        function: f.function.clone(),
                    }),
                }
                let source = d.invoke_source_arn(&api.id);
                match o
                    .functions
                    .get(&f.name)
                    .and_then(|of| of.permission_source.as_deref())
                {
                    Some(s) if s == source => {}
                    Some(_) => a.push(AddPermission {
                        function: f.function.clone(),
                        replace: true,
                    }),
                    None => a.push(AddPermission {
                        function: f.function.clone(),
                        replace: false,
                    }),
                }
            }
            for r in &d.routes {
                match api.routes.iter().find(|x| x.key == r.key) {
                    None => {
                        a.push(CreateRoute { key: r.key.clone() });
                        if r.reply {
                            a.push(CreateRouteResponse { key: r.key.clone() });
                        }
                    }
                    Some(x) => {
                        let mut fields = vec![];
                        let target = kept
                            .get(r.function.as_str())
                            .map(|id| format!("integrations/{id}"));
                        if target.is_none() || x.target != target {
                            fields.push(format!("target → {}", r.function));
                        }
                        if !fields.is_empty() {
                            a.push(UpdateRoute {
                                key: r.key.clone(),
                                id: x.id.clone(),
                                fields,
                            });
                        }
                        if r.reply && x.response_selection.as_deref() != Some("$default") {
                            a.push(CreateRouteResponse { key: r.key.clone() });
                        }
                    }
                }
            }
            for x in &api.routes {
                if !d.routes.iter().any(|r| r.key == x.key) {
                    a.push(DeleteRoute {
                        key: x.key.clone(),
                        id: x.id.clone(),
                    });
                }
            }
            for i in &api.integrations {
                if !kept.values().any(|id| *id == i.id) {
                    a.push(DeleteIntegration { id: i.id.clone() });
                }
            }
        }
    }

    let api_id = api.map(|x| x.id.as_str());
    let policy = api_id.map(|id| d.manage_connections_policy(id));
    match d.credentials {
        CredentialsMode::IamUser => {
            match &o.user {
                None => a.extend([CreateUser, PutUserPolicy, CreateAccessKey]),
                Some(u) if !d.owns(&u.tags) => return Err(foreign("IAM user", &d.user, &u.tags)),
                Some(u) => {
                    if policy.is_none() || u.policy != policy {
                        a.push(PutUserPolicy);
                    }
                    let in_env = o
                        .env_access_key_id
                        .as_ref()
                        .filter(|k| u.keys.iter().any(|(id, _)| id == *k));
                    if in_env.is_none() || opts.rotate_credentials {
                        // IAM allows two keys: make room first, never removing the one the env file holds.
                        let mut others: Vec<&String> = u
                            .keys
                            .iter()
                            .map(|(id, _)| id)
                            .filter(|id| Some(*id) != in_env)
                            .collect();
                        if u.keys.len() >= 2 {
                            let oldest = others.remove(0);
                            a.push(DeleteAccessKey {
                                id: oldest.clone(),
                                after_env: false,
                            });
                        }
                        a.push(CreateAccessKey);
                        for id in others.into_iter().chain(in_env) {
                            a.push(DeleteAccessKey {
                                id: id.clone(),
                                after_env: true,
                            });
                        }
                    } else {
                        // Keys whose secret nobody here holds (e.g. left by a run that crashed before writing
                        // the env file) are unusable: remove them so the user never reaches IAM's two-key limit.
                        for (id, _) in u.keys.iter().filter(|(id, _)| Some(id) != in_env) {
                            a.push(DeleteAccessKey {
                                id: id.clone(),
                                after_env: true,
                            });
                        }
                    }
                }
            }
            if o.managed_policy.is_some() {
                a.push(DeletePolicy);
            }
        }
        CredentialsMode::Policy => {
            match &o.managed_policy {
                None => a.push(CreatePolicy),
                Some(p) if policy.as_ref() != Some(&p.document) => {
                    let delete_oldest =
                        (p.old_versions.len() >= 4).then(|| p.old_versions[0].clone());
                    a.push(CreatePolicyVersion { delete_oldest });
                }
                Some(_) => {}
            }
            if o.user.is_some() {
                a.push(DeleteUser);
            }
        }
    }
    a.sort_by_key(Action::phase);
    Ok(a)
}

/// Everything of the stage, in reverse dependency order. Only resources that carry this stage's tags.
pub fn plan_teardown(d: &Desired, o: &Observed) -> Result<Vec<Action>, PlanError> {
    use Action::*;
    let mut a = vec![];
    for api in &o.apis {
        if !d.owns(&api.tags) {
            return Err(foreign(
                "WebSocket API",
                &format!("{} ({})", d.api, api.id),
                &api.tags,
            ));
        }
        a.push(DeleteApi {
            id: api.id.clone(),
            reason: String::new(),
        });
    }
    for (name, f) in &o.functions {
        if !d.owns(&f.tags) {
            return Err(foreign("Lambda function", name, &f.tags));
        }
        a.push(DeleteFunction { name: name.clone() });
    }
    for name in o.log_groups.keys() {
        a.push(DeleteLogGroup { name: name.clone() });
    }
    if let Some(r) = &o.role {
        if !d.owns(&r.tags) {
            return Err(foreign("IAM role", &d.role, &r.tags));
        }
        a.push(DeleteRole);
    }
    if let Some(u) = &o.user {
        if !d.owns(&u.tags) {
            return Err(foreign("IAM user", &d.user, &u.tags));
        }
        a.push(DeleteUser);
    }
    if o.managed_policy.is_some() {
        a.push(DeletePolicy);
    }
    a.sort_by_key(Action::phase);
    Ok(a)
}

/// Terraform-style lines: `+ create`, `~ update (fields)`, `- delete`.
pub fn render(actions: &[Action], names: &Names) -> String {
    if actions.is_empty() {
        return "No changes: the stage matches the config.".into();
    }
    let mut out = String::new();
    for act in actions {
        let sign = match act.change() {
            Change::Create => '+',
            Change::Update => '~',
            Change::Delete => '-',
        };
        let (kind, name) = act.resource(names);
        let detail = act.detail();
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!("  ({detail})")
        };
        out.push_str(&format!("  {sign} {kind:<17} {name}{detail}\n"));
    }
    let count = |c: Change| actions.iter().filter(|a| a.change() == c).count();
    out.push_str(&format!(
        "\nPlan: {} to create, {} to update, {} to delete.",
        count(Change::Create),
        count(Change::Update),
        count(Change::Delete)
    ));
    out
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
