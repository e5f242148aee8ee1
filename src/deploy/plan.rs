//! The plan: a pure function from (desired, observed) to the ordered actions that converge AWS on the desired
//! state. `up` applies it, `plan` prints it, `teardown` is the plan towards nothing.

use std::collections::BTreeMap;

pub(crate) use super::action::{Action, BoundaryTarget, Change, Phase, TagTarget};
use super::state::{
    ApiObs, Desired, EnvKeyObs, FunctionObs, FunctionSpec, KeyObs, KmsKeyState, Observed, Tags,
    UserObs,
    HEARTBEAT_TARGET,
};
use crate::config::Names;
use crate::config::{CredentialsMode, EnvKey};
use crate::facts::{HANDLER, REPLY_KEY, ROUTE_SELECTION, RUNTIME};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PlanError {
    #[error("no ISSUED ACM certificate in {region} covers {name}: request one (`aws acm request-certificate --region {region} --domain-name {name} --validation-method DNS`, then add the validation record it asks for), or give domain.certificate_arn")]
    NoCertificate { name: String, region: String },
    #[error("the certificate {arn} cannot serve {name}: {why}")]
    UnusableCertificate {
        arn: String,
        name: String,
        why: String,
    },
    #[error("the DNS record {name} (A) in the zone {zone} points at {target}, which is not an API Gateway domain; wsdeploy will not replace it: delete it, or pick another domain.name")]
    RecordTaken {
        name: String,
        zone: String,
        target: String,
    },
    #[error("the IAM role {name} exists and {why}: wsdeploy will not set a role in API Gateway's account settings that others may assume. Make its trust policy API Gateway's alone (`apigateway.amazonaws.com`, `sts:AssumeRole`), or delete it so that wsdeploy creates its own")]
    ForeignAccountRole { name: String, why: String },
    #[error("the KMS alias {alias} points at the key {id}, which wsdeploy did not make for this stage (its description or key policy is not wsdeploy's); wsdeploy will neither use nor delete it: point the alias elsewhere (`aws kms delete-alias --alias-name {alias}`), and the next `up` makes the stage its own key")]
    ForeignKey { alias: String, id: String },
    #[error("{kind} {name} exists but is not this stage's (its tags say project {project:?}, stage {stage:?}); wsdeploy will not touch it: rename the project or stage, or delete it")]
    Foreign {
        kind: &'static str,
        name: String,
        project: Option<String>,
        stage: Option<String>,
    },
}

/// `Ok` when the thing carries this stage's tags; otherwise the error that stops the plan (or the teardown) before
/// anything is changed.
pub(super) fn owned(d: &Desired, tags: &Tags, what: &'static str, name: &str) -> Result<(), PlanError> {
    if d.owns(tags) {
        Ok(())
    } else {
        Err(foreign(what, name, tags))
    }
}

fn foreign(kind: &'static str, name: &str, tags: &Tags) -> PlanError {
    PlanError::Foreign {
        kind,
        name: name.to_string(),
        project: tags.get(super::state::TAG_PROJECT).cloned(),
        stage: tags.get(super::state::TAG_STAGE).cloned(),
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub rotate_credentials: bool,
    /// Now, in epoch seconds: the plan is pure, so the clock comes in.
    pub now: i64,
    /// How long a deactivated access key is kept (so it can be reactivated) before a run deletes it.
    pub key_grace_secs: i64,
    /// Create API Gateway's CloudWatch role and set it in the account, if the stage logs and the account has none.
    pub setup_account_logging: bool,
}

impl Options {
    /// Whether the account will have API Gateway's CloudWatch role once the plan ran.
    pub(crate) fn account_logging(&self, d: &Desired, o: &Observed) -> bool {
        o.account_logging_role.is_some() || (d.logs.any() && self.setup_account_logging)
    }
}

/// Actions that make AWS match `d`, ordered by phase. Empty when nothing changed. Each step below looks at one
/// family of resources, as (desired, observed) -> actions.
pub(crate) fn plan(d: &Desired, o: &Observed, opts: &Options) -> Result<Vec<Action>, PlanError> {
    let mut actions = vec![];
    plan_boundary(d, o, &mut actions);
    plan_env_key(d, o, &mut actions)?;
    plan_role(d, o, &mut actions)?;
    plan_account_logging(d, o, opts, &mut actions)?;
    plan_log_groups(d, o, &mut actions);
    plan_functions(d, o, &mut actions)?;
    let api = plan_api(d, o, &mut actions)?;
    if let Some(api) = api {
        plan_execution_log_group(d, o, api, &mut actions);
        plan_stage(d, api, opts.account_logging(d, o), &mut actions);
        let stage = api.stages.iter().find(|s| s.name == d.stage);
        plan_route_throttles(d, stage.map(|s| &s.route_throttle), &mut actions);
        let kept = plan_integrations(d, o, api, &mut actions);
        plan_routes(d, api, &kept, &mut actions);
    } else {
        plan_new_api(d, &mut actions);
        plan_route_throttles(d, None, &mut actions);
    }
    plan_credentials(d, o, api, opts, &mut actions)?;
    plan_domain(d, o, api, &mut actions)?;
    actions.sort_by_key(Action::phase);
    Ok(actions)
}

/// The project's permissions boundary, created when missing and rewritten when wsdeploy's differs. The stages of a
/// project share it, so a stage's teardown leaves it.
fn plan_boundary(d: &Desired, o: &Observed, a: &mut Vec<Action>) {
    match &o.boundary {
        None => a.push(Action::CreateBoundary),
        Some(b) if b.document != d.boundary_policy() => a.push(Action::UpdateBoundary {
            delete_oldest: (b.old_versions.len() >= 4).then(|| b.old_versions[0].clone()),
        }),
        Some(_) => {}
    }
}

/// `SetBoundary` for a role or user that exists without the project's boundary.
fn bound(d: &Desired, boundary: Option<&str>, target: BoundaryTarget, a: &mut Vec<Action>) {
    if boundary != Some(d.boundary_arn().as_str()) {
        a.push(Action::SetBoundary { target });
    }
}

fn plan_role(d: &Desired, o: &Observed, a: &mut Vec<Action>) -> Result<(), PlanError> {
    use Action::{CreateRole, PutRolePolicy, UpdateRoleTrust};
    match &o.role {
        None => a.extend([CreateRole, PutRolePolicy]),
        Some(r) if !d.owns(&r.tags) => return Err(foreign("IAM role", &d.names.role, &r.tags)),
        Some(r) => {
            bound(d, r.boundary.as_deref(), BoundaryTarget::Role, a);
            if r.trust != Desired::role_trust_policy() {
                a.push(UpdateRoleTrust);
            }
            let current = match wanted_key(d, o) {
                KeyWant::New => false,
                KeyWant::Known(arn) => {
                    let api = o.kept_api().map(|api| api.id.as_str());
                    r.policy.as_ref() == Some(&d.role_policy(arn.as_deref(), api))
                }
            };
            if !current {
                a.push(PutRolePolicy);
            }
            retag(d, &r.tags, TagTarget::Role, a);
        }
    }
    Ok(())
}

/// The key the functions' environment should be encrypted with.
enum KeyWant {
    /// The stage's key, created by this run: its ARN is known only then.
    New,
    /// This ARN, or `None` for Lambda's AWS-managed key.
    Known(Option<String>),
}

fn wanted_key(d: &Desired, o: &Observed) -> KeyWant {
    match (&d.env_key, &o.env_key) {
        (EnvKey::Stage, None) => KeyWant::New,
        (_, key) => KeyWant::Known(d.env_key_arn(key.as_ref().map(|k| k.arn.as_str()))),
    }
}

/// The stage's own KMS key (`lambda.env_key: stage`): created with its alias, given its alias back, restored from
/// a half-done teardown, its policy given this run's caller; scheduled for deletion once the config names another
/// key.
fn plan_env_key(d: &Desired, o: &Observed, a: &mut Vec<Action>) -> Result<(), PlanError> {
    use Action::{AliasEnvKey, CreateEnvKey, RestoreEnvKey, SetEnvKeyPolicy};
    retire_stray_keys(d, o, a)?;
    let Some(k) = &o.env_key else {
        if d.env_key == EnvKey::Stage {
            a.push(CreateEnvKey);
        }
        return Ok(());
    };
    ours(d, k)?;
    let id = k.id.clone();
    if d.env_key != EnvKey::Stage {
        retire_env_key(k, a);
        return Ok(());
    }
    if matches!(
        k.state,
        KmsKeyState::Disabled | KmsKeyState::PendingDeletion
    ) {
        a.push(RestoreEnvKey {
            id: id.clone(),
            pending: k.state == KmsKeyState::PendingDeletion,
        });
    }
    let policy = super::key_policy::wanted(d, k.policy.as_ref());
    if k.policy.as_ref() != Some(&policy) {
        a.push(SetEnvKeyPolicy {
            id: id.clone(),
            policy,
        });
    }
    if !k.aliased {
        a.push(AliasEnvKey { id: id.clone() });
    }
    retag(d, &k.tags, TagTarget::EnvKey { id }, a);
    Ok(())
}

/// `Ok` when the key is one wsdeploy made for this stage (its description and key policy say so; its tags do
/// not count, since tagging a key takes less than owning it).
fn ours(d: &Desired, k: &EnvKeyObs) -> Result<(), PlanError> {
    if super::key_policy::is_wsdeploys(&d.names.prefix, &k.description, k.policy.as_ref()) {
        Ok(())
    } else {
        Err(PlanError::ForeignKey {
            alias: d.names.env_key_alias.clone(),
            id: k.id.clone(),
        })
    }
}

/// Live keys of the stage beside the one it keeps: scheduled for deletion, as a duplicate API is deleted. Only
/// wsdeploy's own are found (see `cloud::kms::find_unaliased`).
fn retire_stray_keys(d: &Desired, o: &Observed, a: &mut Vec<Action>) -> Result<(), PlanError> {
    for k in &o.stray_env_keys {
        ours(d, k)?;
        if k.state != KmsKeyState::PendingDeletion {
            a.push(Action::DeleteEnvKey {
                id: k.id.clone(),
                schedule: true,
                alias: false,
            });
        }
    }
    Ok(())
}

fn retag(d: &Desired, observed: &Tags, target: TagTarget, a: &mut Vec<Action>) {
    if let Some(diff) = d.tag_diff(observed) {
        a.push(Action::Retag { target, diff });
    }
}

/// API Gateway's CloudWatch role in the account settings, when the stage logs, the account has none and the user
/// asked for it (`--setup-account-logging`): it is account-wide, so it is never set behind the user's back.
/// A role of that name that exists is adopted only when API Gateway alone may assume it, and it is given a
/// wsdeploy boundary if it has none (which only narrows what it may do).
fn plan_account_logging(
    d: &Desired,
    o: &Observed,
    opts: &Options,
    a: &mut Vec<Action>,
) -> Result<(), PlanError> {
    if !d.logs.any() || o.account_logging_role.is_some() || !opts.setup_account_logging {
        return Ok(());
    }
    match &o.account_role {
        None => a.push(Action::CreateAccountLoggingRole),
        Some(r) => {
            if let Some(why) = super::boundary::foreign_trust(&r.trust, "apigateway.amazonaws.com")
            {
                return Err(PlanError::ForeignAccountRole {
                    name: crate::facts::ACCOUNT_LOGGING_ROLE.into(),
                    why,
                });
            }
            let wsdeploys = r
                .boundary
                .as_deref()
                .is_some_and(|b| super::boundary::is_boundary(&d.partition, &d.account, b));
            if !wsdeploys {
                a.push(Action::SetBoundary {
                    target: BoundaryTarget::AccountRole,
                });
            }
        }
    }
    a.push(Action::SetAccountLoggingRole);
    Ok(())
}

/// Each function's log group, created ahead of the function so its retention applies from the first line; the
/// access log group likewise, and removed once the config turns access logs off.
fn plan_log_groups(d: &Desired, o: &Observed, a: &mut Vec<Action>) {
    let mut groups: Vec<(String, i32)> = d
        .functions
        .iter()
        .map(|f| (Desired::log_group(&f.name), d.log_retention_days))
        .collect();
    let access = d.names.access_log_group.clone();
    if d.logs.access {
        groups.push((access, d.logs.retention_days as i32));
    } else if o.log_groups.get(&access).is_some_and(|g| d.owns(&g.tags)) {
        a.push(Action::DeleteLogGroup { name: access });
    }
    for (name, days) in groups {
        plan_log_group(d, o, name, days, a);
    }
}

/// The group API Gateway made for the stage's execution logs: kept no longer than the stage's other logs (AWS
/// creates it to never expire). It carries no tags: it is the stage's because its name holds the API's id.
fn plan_execution_log_group(d: &Desired, o: &Observed, api: &ApiObs, a: &mut Vec<Action>) {
    let name = d.execution_log_group(&api.id);
    let days = d.logs.retention_days as i32;
    if o.log_groups
        .get(&name)
        .is_some_and(|g| g.retention != Some(days))
    {
        a.push(Action::PutRetention { name, days });
    }
}

fn plan_log_group(d: &Desired, o: &Observed, name: String, days: i32, a: &mut Vec<Action>) {
    use Action::{CreateLogGroup, PutRetention};
    match o.log_groups.get(&name) {
        None => a.extend([
            CreateLogGroup { name: name.clone() },
            PutRetention { name, days },
        ]),
        Some(g) => {
            if g.retention != Some(days) {
                a.push(PutRetention {
                    name: name.clone(),
                    days,
                });
            }
            retag(d, &g.tags, TagTarget::LogGroup { name }, a);
        }
    }
}

fn plan_functions(d: &Desired, o: &Observed, a: &mut Vec<Action>) -> Result<(), PlanError> {
    use Action::*;
    for f in &d.functions {
        let concurrency = SetConcurrency {
            function: f.function.clone(),
            reserved: f.reserved,
        };
        match o.functions.get(&f.name) {
            None => {
                a.push(CreateFunction {
                    function: f.function.clone(),
                });
                if f.reserved.is_some() {
                    a.push(concurrency);
                }
            }
            Some(of) if !d.owns(&of.tags) => {
                return Err(foreign("Lambda function", &f.name, &of.tags))
            }
            Some(of) => {
                let code = code_changes(f, of);
                if !code.is_empty() {
                    a.push(UpdateFunctionCode {
                        function: f.function.clone(),
                        fields: code,
                    });
                }
                let config = config_changes(d, o, f, of);
                if !config.is_empty() {
                    a.push(UpdateFunctionConfig {
                        function: f.function.clone(),
                        fields: config,
                    });
                }
                if of.reserved != f.reserved {
                    a.push(concurrency);
                }
                let target = TagTarget::Function {
                    function: f.function.clone(),
                };
                retag(d, &of.tags, target, a);
            }
        }
    }
    // Functions no route uses any more, with their log groups.
    for (name, of) in &o.functions {
        if !d.functions.iter().any(|f| &f.name == name) {
            owned(d, &of.tags, "Lambda function", name)?;
            a.push(DeleteFunction { name: name.clone() });
            let group = Desired::log_group(name);
            if o.log_groups.contains_key(&group) {
                a.push(DeleteLogGroup { name: group });
            }
        }
    }
    Ok(())
}

fn code_changes(f: &FunctionSpec, of: &FunctionObs) -> Vec<String> {
    let mut fields = vec![];
    if of.code_sha256 != f.artifact.code_sha256 {
        fields.push("code".to_string());
    }
    if of.architecture != Some(f.architecture) {
        fields.push(format!("architecture → {}", f.architecture.as_str()));
    }
    fields
}

fn config_changes(d: &Desired, o: &Observed, f: &FunctionSpec, of: &FunctionObs) -> Vec<String> {
    let mut fields = vec![];
    if of.memory_mb != f.memory_mb {
        fields.push(format!("memory_mb {} → {}", of.memory_mb, f.memory_mb));
    }
    if of.timeout_s != f.timeout_s {
        fields.push(format!("timeout_s {} → {}", of.timeout_s, f.timeout_s));
    }
    if of.runtime != RUNTIME || of.handler != HANDLER {
        fields.push("runtime".into());
    }
    if of.role != d.role_arn() {
        fields.push("role".into());
    }
    match wanted_key(d, o) {
        KeyWant::New => fields.push("env key → the stage's new key".into()),
        KeyWant::Known(arn) if arn != of.kms_key_arn => fields.push(match arn {
            Some(arn) => format!("env key → {arn}"),
            None => "env key → Lambda's AWS-managed key".into(),
        }),
        KeyWant::Known(_) => {}
    }
    let env = f.deployed_env(o.kept_api().map(|api| api.id.as_str()));
    for (k, v) in &env {
        if of.env.get(k) != Some(v) {
            // Never show the secret's value, even in a diff.
            fields.push(if k.contains("SECRET") {
                format!("env {k}")
            } else {
                format!("env {k} → {v}")
            });
        }
    }
    for k in of.env.keys().filter(|k| !env.contains_key(*k)) {
        fields.push(format!("env {k} removed"));
    }
    fields
}

/// The API the stage keeps: the oldest one it owns; later duplicates (from a race between two runs) are removed.
fn plan_api<'o>(
    d: &Desired,
    o: &'o Observed,
    a: &mut Vec<Action>,
) -> Result<Option<&'o ApiObs>, PlanError> {
    if let Some(other) = o.apis.iter().find(|api| !d.owns(&api.tags)) {
        let name = format!("{} ({})", d.names.api, other.id);
        return Err(foreign("WebSocket API", &name, &other.tags));
    }
    let kept = o.kept_api();
    for dup in o
        .apis
        .iter()
        .filter(|api| Some(api.id.as_str()) != kept.map(|k| k.id.as_str()))
    {
        a.push(Action::DeleteApi {
            id: dup.id.clone(),
            reason: "duplicate left by an earlier concurrent run".into(),
        });
    }
    if let Some(api) = kept {
        let fields = api_changes(d, api);
        if !fields.is_empty() {
            a.push(Action::UpdateApi {
                id: api.id.clone(),
                fields,
            });
        }
        let target = TagTarget::Api { id: api.id.clone() };
        retag(d, &api.tags, target, a);
    }
    Ok(kept)
}

/// What `UpdateApi` must change on the kept API. An API made before AWS had IP address types has none: IPv4.
fn api_changes(d: &Desired, api: &ApiObs) -> Vec<String> {
    let mut fields = vec![];
    if api.route_selection != ROUTE_SELECTION {
        fields.push("route selection".to_string());
    }
    let wanted = d.ip_address_type.as_str();
    if api.ip_address_type.as_deref().unwrap_or("ipv4") != wanted {
        fields.push(format!("ip address type {wanted}"));
    }
    fields
}

/// A stage with no API yet: all of it.
fn plan_new_api(d: &Desired, a: &mut Vec<Action>) {
    use Action::*;
    a.extend([CreateApi, CreateStage]);
    for f in d.functions.iter().filter(|f| f.routed()) {
        let function = f.function.clone();
        a.push(CreateIntegration {
            function: function.clone(),
        });
        a.push(AddPermission {
            function,
            replace: false,
        });
    }
    if d.routes.iter().any(|r| r.function == HEARTBEAT_TARGET) {
        a.push(CreateIntegration {
            function: HEARTBEAT_TARGET.into(),
        });
    }
    for r in &d.routes {
        a.push(CreateRoute { key: r.key.clone() });
        if r.reply {
            a.push(CreateRouteResponse { key: r.key.clone() });
        }
    }
}

fn plan_stage(d: &Desired, api: &ApiObs, account_logging: bool, a: &mut Vec<Action>) {
    let Some(s) = api.stages.iter().find(|s| s.name == d.stage) else {
        a.push(Action::CreateStage);
        return;
    };
    let mut fields = vec![];
    if !s.auto_deploy {
        fields.push("auto-deploy".to_string());
    }
    if s.throttle != Some(d.throttle) {
        let (rate, burst) = d.throttle;
        fields.push(format!("throttle {rate}/s, burst {burst}"));
    }
    let logging = d.stage_logging(account_logging);
    if s.logging.access != logging.access {
        fields.push(match &logging.access {
            Some(_) => format!("access logs → {}", d.names.access_log_group),
            None => "access logs off".into(),
        });
    }
    if s.logging.level != logging.level {
        fields.push(format!(
            "execution logs {}",
            logging.level.as_aws().to_lowercase()
        ));
    }
    if !fields.is_empty() {
        a.push(Action::UpdateStage { fields });
    }
}

/// Routes' own throttles: set where the stage's differ from the config (a new stage has none), removed where the
/// config has none any more.
fn plan_route_throttles(
    d: &Desired,
    observed: Option<&BTreeMap<String, (f64, i32)>>,
    a: &mut Vec<Action>,
) {
    let none = BTreeMap::new();
    let observed = observed.unwrap_or(&none);
    for (key, limits) in &d.route_throttle {
        if observed.get(key) != Some(limits) {
            let (rate, burst) = limits;
            a.push(Action::ThrottleRoute {
                key: key.clone(),
                fields: vec![format!("throttle {rate}/s, burst {burst}")],
            });
        }
    }
    for key in observed
        .keys()
        .filter(|k| !d.route_throttle.contains_key(*k))
    {
        a.push(Action::UnthrottleRoute { key: key.clone() });
    }
}

/// Integrations by function ARN (the first of each is kept, any other removed) and each function's permission
/// for this API. Returns function -> kept integration id.
fn plan_integrations<'a>(
    d: &'a Desired,
    o: &Observed,
    api: &'a ApiObs,
    a: &mut Vec<Action>,
) -> BTreeMap<&'a str, &'a str> {
    use Action::{AddPermission, CreateIntegration, DeleteIntegration};
    let mut kept = BTreeMap::new();
    let source = d.invoke_source_arn(&api.id);
    for f in d.functions.iter().filter(|f| f.routed()) {
        let uri = d.integration_uri(&d.function_arn(&f.name));
        match api.integrations.iter().find(|i| i.uri == uri) {
            Some(i) => {
                kept.insert(f.function.as_str(), i.id.as_str());
            }
            None => a.push(CreateIntegration {
                function: f.function.clone(),
            }),
        }
        let granted = o
            .functions
            .get(&f.name)
            .and_then(|of| of.permission_source.as_deref());
        if granted != Some(source.as_str()) {
            a.push(AddPermission {
                function: f.function.clone(),
                replace: granted.is_some(),
            });
        }
    }
    // The heartbeat's MOCK integration: kept when complete; one a run left half-made goes like any unused one.
    if d.routes.iter().any(|r| r.function == HEARTBEAT_TARGET) {
        match api.integrations.iter().find(|i| i.is_heartbeat()) {
            Some(i) => {
                kept.insert(HEARTBEAT_TARGET, i.id.as_str());
            }
            None => a.push(CreateIntegration {
                function: HEARTBEAT_TARGET.into(),
            }),
        }
    }
    for i in &api.integrations {
        if !kept.values().any(|id| *id == i.id) {
            a.push(DeleteIntegration { id: i.id.clone() });
        }
    }
    kept
}

/// Routes by key: created, pointed at their function's integration, or removed. A two-way route needs both its
/// `$default` response and the selection that turns it on; either one missing is repaired.
fn plan_routes(d: &Desired, api: &ApiObs, kept: &BTreeMap<&str, &str>, a: &mut Vec<Action>) {
    use Action::{CreateRoute, CreateRouteResponse, DeleteRoute, UpdateRoute};
    for r in &d.routes {
        let Some(x) = api.routes.iter().find(|x| x.key == r.key) else {
            a.push(CreateRoute { key: r.key.clone() });
            if r.reply {
                a.push(CreateRouteResponse { key: r.key.clone() });
            }
            continue;
        };
        let target = kept
            .get(r.function.as_str())
            .map(|id| format!("integrations/{id}"));
        if target.is_none() || x.target != target {
            a.push(UpdateRoute {
                key: r.key.clone(),
                id: x.id.clone(),
                fields: vec![format!("target → {}", r.function)],
            });
        }
        let replies = x.response_selection.as_deref() == Some(REPLY_KEY)
            && x.responses.iter().any(|k| k == REPLY_KEY);
        if r.reply && !replies {
            a.push(CreateRouteResponse { key: r.key.clone() });
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
}

fn plan_credentials(
    d: &Desired,
    o: &Observed,
    api: Option<&ApiObs>,
    opts: &Options,
    a: &mut Vec<Action>,
) -> Result<(), PlanError> {
    use Action::*;
    let policy = api.map(|api| d.manage_connections_policy(&api.id));
    match d.credentials {
        CredentialsMode::IamUser => {
            match &o.user {
                None => a.extend([CreateUser, PutUserPolicy, CreateAccessKey]),
                Some(u) if !d.owns(&u.tags) => {
                    return Err(foreign("IAM user", &d.names.user, &u.tags))
                }
                Some(u) => {
                    bound(d, u.boundary.as_deref(), BoundaryTarget::User, a);
                    if policy.is_none() || u.policy != policy {
                        a.push(PutUserPolicy);
                    }
                    retag(d, &u.tags, TagTarget::User, a);
                    a.extend(plan_keys(u, o.env_access_key_id.as_deref(), opts));
                }
            }
            if o.managed_policy.is_some() {
                a.push(DeletePolicy);
            }
        }
        CredentialsMode::Policy => {
            match &o.managed_policy {
                None => a.push(CreatePolicy),
                Some(p) => {
                    if policy.as_ref() != Some(&p.document) {
                        let delete_oldest =
                            (p.old_versions.len() >= 4).then(|| p.old_versions[0].clone());
                        a.push(CreatePolicyVersion { delete_oldest });
                    }
                    retag(d, &p.tags, TagTarget::Policy, a);
                }
            }
            if o.user.is_some() {
                a.push(DeleteUser);
            }
        }
    }
    Ok(())
}

/// The backend's access keys. The key the env file holds is kept while it is active. A new key (none usable, or
/// `--rotate-credentials`) is written only once AWS accepts it; the previous one is then deactivated, not deleted,
/// and a later run deletes it once the grace period has passed. IAM allows two keys per user, so there is at most
/// one spare: the oldest spare makes room for a new key.
fn plan_keys(u: &UserObs, env_key: Option<&str>, opts: &Options) -> Vec<Action> {
    use Action::{CreateAccessKey, DeactivateAccessKey, DeleteAccessKey};
    let current = env_key.and_then(|id| u.keys.iter().find(|k| k.id == id && k.active));
    let spares: Vec<&KeyObs> = u
        .keys
        .iter()
        .filter(|k| Some(k.id.as_str()) != current.map(|c| c.id.as_str()))
        .collect();
    let mut a = vec![];
    match current {
        Some(current) if !opts.rotate_credentials => {
            let grace_over = opts.now - current.created >= opts.key_grace_secs;
            for k in spares {
                if k.active {
                    // Nobody here holds its secret (a run that crashed before writing, or another machine's).
                    a.push(DeactivateAccessKey { id: k.id.clone() });
                } else if grace_over {
                    a.push(DeleteAccessKey { id: k.id.clone() });
                }
            }
        }
        _ => {
            let mut kept: Vec<&KeyObs> = u.keys.iter().collect();
            if kept.len() >= 2 {
                // Make room: an inactive spare first, else the oldest key that is not the current one.
                let room = spares
                    .iter()
                    .find(|k| !k.active)
                    .or_else(|| spares.first())
                    .map(|k| k.id.clone());
                if let Some(id) = room {
                    kept.retain(|k| k.id != id);
                    a.push(DeleteAccessKey { id });
                }
            }
            a.push(CreateAccessKey);
            for k in kept.into_iter().filter(|k| k.active) {
                a.push(DeactivateAccessKey { id: k.id.clone() });
            }
        }
    }
    a
}

/// Everything of the stage, in reverse dependency order. Only resources that carry this stage's tags.
pub(crate) fn plan_teardown(d: &Desired, o: &Observed) -> Result<Vec<Action>, PlanError> {
    let mut a = vec![];
    teardown_apis(d, o, &mut a)?;
    teardown_functions(d, o, &mut a)?;
    teardown_log_groups(d, o, &mut a);
    teardown_identities(d, o, &mut a)?;
    retire_stray_keys(d, o, &mut a)?;
    teardown_domain(d, o, &mut a)?;
    teardown_env_key(d, o, &mut a)?;
    a.sort_by_key(Action::phase);
    Ok(a)
}

/// The API (each copy a concurrent run left) and its execution log group, named after its id.
fn teardown_apis(d: &Desired, o: &Observed, a: &mut Vec<Action>) -> Result<(), PlanError> {
    for api in &o.apis {
        let shown = format!("{} ({})", d.names.api, api.id);
        owned(d, &api.tags, "WebSocket API", &shown)?;
        a.push(Action::DeleteApi {
            id: api.id.clone(),
            reason: String::new(),
        });
        let group = d.execution_log_group(&api.id);
        if o.log_groups.contains_key(&group) {
            a.push(Action::DeleteExecutionLogGroup { name: group });
        }
    }
    Ok(())
}

fn teardown_functions(d: &Desired, o: &Observed, a: &mut Vec<Action>) -> Result<(), PlanError> {
    for (name, f) in &o.functions {
        owned(d, &f.tags, "Lambda function", name)?;
        a.push(Action::DeleteFunction { name: name.clone() });
    }
    Ok(())
}

/// Found by name prefix, so another stage's groups can match (`chat-dev-` is a prefix of `chat-dev-x-`): only this
/// stage's own, by their tags, are deleted, and another's are no reason to stop.
fn teardown_log_groups(d: &Desired, o: &Observed, a: &mut Vec<Action>) {
    for (name, group) in &o.log_groups {
        if d.owns(&group.tags) {
            a.push(Action::DeleteLogGroup { name: name.clone() });
        }
    }
}

/// The functions' role, the backend's user and the `credentials: policy` managed policy.
fn teardown_identities(d: &Desired, o: &Observed, a: &mut Vec<Action>) -> Result<(), PlanError> {
    if let Some(r) = &o.role {
        owned(d, &r.tags, "IAM role", &d.names.role)?;
        a.push(Action::DeleteRole);
    }
    if let Some(u) = &o.user {
        owned(d, &u.tags, "IAM user", &d.names.user)?;
        a.push(Action::DeleteUser);
    }
    if let Some(p) = &o.managed_policy {
        owned(d, &p.tags, "managed policy", &d.names.policy)?;
        a.push(Action::DeletePolicy);
    }
    Ok(())
}

/// The stage's KMS key: its deletion scheduled (once), and its alias removed so that a later `up` makes a new one.
fn teardown_env_key(d: &Desired, o: &Observed, a: &mut Vec<Action>) -> Result<(), PlanError> {
    let Some(k) = &o.env_key else { return Ok(()) };
    ours(d, k)?;
    retire_env_key(k, a);
    Ok(())
}

/// A stage key no longer used: its deletion scheduled and its alias removed, each unless done already (a key found
/// without its alias and already pending deletion is retired: nothing is left to do, and nothing to report).
fn retire_env_key(k: &EnvKeyObs, a: &mut Vec<Action>) {
    let schedule = k.state != KmsKeyState::PendingDeletion;
    if schedule || k.aliased {
        a.push(Action::DeleteEnvKey {
            id: k.id.clone(),
            schedule,
            alias: k.aliased,
        });
    }
}

/// Terraform-style lines: `+ create`, `~ update (fields)`, `- delete`.
pub(crate) fn render(actions: &[Action], names: &Names) -> String {
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

#[path = "plan_domain.rs"]
mod domain;
use domain::{plan_domain, teardown_domain};

#[cfg(test)]
#[path = "plan_tests.rs"]
pub(crate) mod tests;
