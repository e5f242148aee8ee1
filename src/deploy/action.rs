//! The actions a plan is made of: what each changes, in which phase it may run, and how it reads to a person.

use serde::Serialize;

use super::state::TagDiff;
use crate::config::Names;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    CreateRole,
    UpdateRoleTrust,
    PutRolePolicy,
    DeleteRole,
    CreateLogGroup {
        name: String,
    },
    PutRetention {
        name: String,
        days: i32,
    },
    DeleteLogGroup {
        name: String,
    },
    /// The group API Gateway made for an API's execution logs: deleted, or, where the deploy policy may not delete
    /// it (it cannot tell one API's from another's), left to expire within a day.
    DeleteExecutionLogGroup {
        name: String,
    },
    CreateFunction {
        function: String,
    },
    /// Code or architecture changed.
    UpdateFunctionCode {
        function: String,
        fields: Vec<String>,
    },
    UpdateFunctionConfig {
        function: String,
        fields: Vec<String>,
    },
    DeleteFunction {
        name: String,
    },
    /// Reserves `reserved` concurrent executions for the function, or returns it to the shared pool (`None`).
    SetConcurrency {
        function: String,
        reserved: Option<i32>,
    },
    AddPermission {
        function: String,
        replace: bool,
    },
    CreateApi,
    /// Route selection and who may connect, set in one `UpdateApi`; `fields` says which differ.
    UpdateApi {
        id: String,
        fields: Vec<String>,
    },
    DeleteApi {
        id: String,
        reason: String,
    },
    CreateIntegration {
        function: String,
    },
    DeleteIntegration {
        id: String,
    },
    CreateRoute {
        key: String,
    },
    UpdateRoute {
        key: String,
        id: String,
        fields: Vec<String>,
    },
    DeleteRoute {
        key: String,
        id: String,
    },
    /// Creates the route's `$default` response, then sets the route's response selection to `$default`. The plan
    /// reads the responses of every route whose selection is set, so a response lost in between (a crash, a
    /// conflict taken for "exists") is created again by the next run.
    CreateRouteResponse {
        key: String,
    },
    CreateStage,
    /// Sets auto-deploy and the stage's throttling, which are all the stage settings wsdeploy manages.
    UpdateStage {
        fields: Vec<String>,
    },
    /// Gives a route its own throttle. After the routes: API Gateway refuses settings for a route it does not have.
    ThrottleRoute {
        key: String,
        fields: Vec<String>,
    },
    /// Removes a route's own throttle (it then has the stage's). Before any route is deleted: settings left for a
    /// deleted route make every later stage update fail.
    UnthrottleRoute {
        key: String,
    },
    CreateUser,
    PutUserPolicy,
    /// A spare key: inactive past its grace period, or making room for a new key (IAM allows two per user).
    DeleteAccessKey {
        id: String,
    },
    /// Creates a key and waits until AWS accepts it; only then is it written to the env file.
    CreateAccessKey,
    /// The previous key, once the env file holds the new one: refused from now on, deleted by a later run after the
    /// grace period, and until then `aws iam update-access-key --status Active` brings it back.
    DeactivateAccessKey {
        id: String,
    },
    DeleteUser,
    CreatePolicy,
    CreatePolicyVersion {
        delete_oldest: Option<String>,
    },
    DeletePolicy,
    /// Creates the stage's KMS key with its key policy, then its alias, then tags it (through that policy).
    CreateEnvKey,
    /// Gives the stage's key the policy wsdeploy writes for it: this run's caller joins its deployers.
    SetEnvKeyPolicy {
        id: String,
        policy: serde_json::Value,
    },
    /// Points the stage's alias at a key of the stage's that lost it (a run stopped between creating and aliasing).
    AliasEnvKey {
        id: String,
    },
    /// Cancels a scheduled deletion (a `teardown` stopped half-way) and enables the key again.
    RestoreEnvKey {
        id: String,
        pending: bool,
    },
    /// Schedules the key's deletion (KMS waits at least 7 days) and removes its alias.
    DeleteEnvKey {
        id: String,
        schedule: bool,
        alias: bool,
    },
    /// Creates the role API Gateway writes CloudWatch Logs with (AWS's managed policy for it attached).
    CreateAccountLoggingRole,
    /// Sets that role in the account's API Gateway settings, once IAM lets API Gateway assume it.
    SetAccountLoggingRole,
    /// The stage's custom domain: a regional API Gateway domain name with TLS 1.2 and this certificate.
    CreateDomain {
        name: String,
        certificate: String,
    },
    UpdateDomain {
        name: String,
        certificate: String,
        fields: Vec<String>,
    },
    DeleteDomain {
        name: String,
    },
    /// Maps the stage at the domain's root, so clients connect to `wss://{name}`.
    CreateApiMapping {
        name: String,
    },
    /// A mapping of the domain to anything but this stage's API and stage (an API replaced since, say).
    DeleteApiMapping {
        name: String,
        id: String,
    },
    /// The name's `A` alias to the domain's regional host, in the Route 53 zone `zone`.
    UpsertRecord {
        name: String,
        zone: String,
        replace: bool,
    },
    DeleteRecord {
        name: String,
        zone: String,
    },
    /// Creates the project's permissions boundary. Only an identity with rights beyond the deploy policy can (an
    /// administrator's `up`, or `wsdeploy bootstrap`): the deploy policy never lets its holder write the policy
    /// that caps it.
    CreateBoundary,
    /// A new default version of the boundary, when wsdeploy's boundary changed (same rights as creating it).
    UpdateBoundary {
        delete_oldest: Option<String>,
    },
    /// Puts the project's boundary on a role or user that does not carry one (made by an earlier wsdeploy).
    SetBoundary {
        target: BoundaryTarget,
    },
    /// Tags changed in the config, applied to a resource that exists.
    Retag {
        target: TagTarget,
        #[serde(flatten)]
        diff: TagDiff,
    },
}

/// A role or user that carries the project's permissions boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundaryTarget {
    Role,
    User,
    AccountRole,
}

/// A resource whose tags an action changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TagTarget {
    Role,
    User,
    Policy,
    Api { id: String },
    Function { function: String },
    LogGroup { name: String },
    EnvKey { id: String },
}

/// When an action may run. Phases run in order; actions of one phase run side by side (one lane per resource).
/// Only real dependencies separate them: functions need the role, integrations need functions and the API,
/// routes need integrations, and the previous access key goes only once the env file holds the new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// What points at something about to go: a DNS record and API mappings, before their domain and API.
    Unlink,
    /// Duplicates and spare keys that would block a create.
    Clear,
    /// The permissions boundary, which every role and user is created with.
    Boundary,
    /// Role, API, user, log groups, policies: what needs nothing else.
    Foundations,
    /// Functions (they need the role), the stage, the user's policy (it needs the API's id), the new access key (it
    /// needs the user): IAM makes both the role and the key wait seconds before AWS accepts them, and those waits
    /// overlap here rather than follow one another.
    Functions,
    /// Integrations and invoke permissions (they need functions and the API).
    Wiring,
    Routes,
    /// Route responses need their routes; integrations no route uses any more can go.
    Responses,
    /// What depended on deleted routes and integrations.
    Cleanup,
    /// Only after `up` wrote the env files.
    AfterEnv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn change(&self) -> Change {
        use Action::*;
        match self {
            CreateRole
            | CreateLogGroup { .. }
            | CreateFunction { .. }
            | CreateApi
            | CreateIntegration { .. }
            | CreateRoute { .. }
            | CreateRouteResponse { .. }
            | CreateStage
            | CreateUser
            | CreateAccessKey
            | CreatePolicy
            | CreateBoundary
            | CreateEnvKey
            | CreateAccountLoggingRole
            | CreateDomain { .. }
            | CreateApiMapping { .. }
            | UpsertRecord { replace: false, .. }
            | AddPermission { replace: false, .. } => Change::Create,
            DeleteRole
            | DeleteLogGroup { .. }
            | DeleteExecutionLogGroup { .. }
            | DeleteFunction { .. }
            | DeleteApi { .. }
            | DeleteIntegration { .. }
            | DeleteRoute { .. }
            | DeleteAccessKey { .. }
            | DeleteUser
            | DeletePolicy
            | DeleteEnvKey { .. }
            | DeleteDomain { .. }
            | DeleteApiMapping { .. }
            | DeleteRecord { .. }
            | UnthrottleRoute { .. } => Change::Delete,
            _ => Change::Update,
        }
    }

    pub fn phase(&self) -> Phase {
        use Action::*;
        match self {
            DeleteRecord { .. } | DeleteApiMapping { .. } => Phase::Unlink,
            DeleteApi { .. } | DeleteAccessKey { .. } => Phase::Clear,
            CreateBoundary | UpdateBoundary { .. } => Phase::Boundary,
            SetBoundary { .. }
            | CreateRole
            | UpdateRoleTrust
            | CreateEnvKey
            | SetEnvKeyPolicy { .. }
            | AliasEnvKey { .. }
            | RestoreEnvKey { .. }
            | CreateApi
            | UpdateApi { .. }
            | CreateUser
            | CreateLogGroup { .. }
            | PutRetention { .. }
            | DeleteUser
            | DeletePolicy
            // Before the stage, whose logging settings API Gateway refuses without it.
            | CreateAccountLoggingRole
            | SetAccountLoggingRole
            // Needs only its certificate.
            | CreateDomain { .. }
            | UpdateDomain { .. } => Phase::Foundations,
            Retag { target, .. } => match target {
                TagTarget::Function { .. } => Phase::Functions,
                _ => Phase::Foundations,
            },
            CreateFunction { .. }
            | UpdateFunctionCode { .. }
            | UpdateFunctionConfig { .. }
            | CreateStage
            | UpdateStage { .. }
            | PutUserPolicy
            // The managed policy names the API, which may be created in this run.
            | CreatePolicy
            | CreatePolicyVersion { .. }
            | CreateAccessKey
            // After the stage's key is created: the policy names it.
            | PutRolePolicy => Phase::Functions,
            // The mapping needs the API's stage; the record, the domain's regional host.
            CreateApiMapping { .. }
            | UpsertRecord { .. }
            | CreateIntegration { .. }
            | AddPermission { .. }
            | SetConcurrency { .. }
            | UnthrottleRoute { .. } => Phase::Wiring,
            CreateRoute { .. } | UpdateRoute { .. } | DeleteRoute { .. } => Phase::Routes,
            CreateRouteResponse { .. } | DeleteIntegration { .. } | ThrottleRoute { .. } => {
                Phase::Responses
            }
            // The key goes once no function uses it any more.
            DeleteFunction { .. }
            | DeleteLogGroup { .. }
            | DeleteExecutionLogGroup { .. }
            | DeleteRole
            | DeleteEnvKey { .. }
            | DeleteDomain { .. } => Phase::Cleanup,
            DeactivateAccessKey { .. } => Phase::AfterEnv,
        }
    }

    /// Whether the action writes to the WebSocket API, whose writes AWS serialises (see `cloud::apigw`).
    pub fn writes_api(&self) -> bool {
        use Action::*;
        matches!(
            self,
            UpdateApi { .. }
                | CreateIntegration { .. }
                | DeleteIntegration { .. }
                | CreateRoute { .. }
                | UpdateRoute { .. }
                | DeleteRoute { .. }
                | CreateRouteResponse { .. }
                | CreateStage
                | UpdateStage { .. }
                | ThrottleRoute { .. }
                | UnthrottleRoute { .. }
                | Retag {
                    target: TagTarget::Api { .. },
                    ..
                }
        )
    }

    /// `(kind, name)` of the resource, for people.
    pub fn resource(&self, d: &Names) -> (String, String) {
        use Action::*;
        let fname = |f: &str| d.function(f);
        match self {
            CreateRole | UpdateRoleTrust | PutRolePolicy | DeleteRole => {
                ("role".into(), d.role.clone())
            }
            CreateLogGroup { name }
            | PutRetention { name, .. }
            | DeleteLogGroup { name }
            | DeleteExecutionLogGroup { name } => {
                ("log group".into(), name.clone())
            }
            CreateFunction { function }
            | UpdateFunctionCode { function, .. }
            | UpdateFunctionConfig { function, .. } => ("function".into(), fname(function)),
            DeleteFunction { name } => ("function".into(), name.clone()),
            AddPermission { function, .. } => ("invoke permission".into(), fname(function)),
            SetConcurrency { function, .. } => ("concurrency".into(), fname(function)),
            CreateApi | UpdateApi { .. } => ("websocket api".into(), d.api.clone()),
            DeleteApi { id, .. } => ("websocket api".into(), format!("{} ({id})", d.api)),
            CreateIntegration { function } if function == super::state::HEARTBEAT_TARGET => {
                ("integration".into(), "heartbeat (MOCK)".into())
            }
            CreateIntegration { function } => ("integration".into(), fname(function)),
            DeleteIntegration { id } => ("integration".into(), id.clone()),
            CreateRoute { key } | UpdateRoute { key, .. } | DeleteRoute { key, .. } => {
                ("route".into(), key.clone())
            }
            CreateRouteResponse { key } => ("route response".into(), key.clone()),
            CreateStage | UpdateStage { .. } => ("stage".into(), d.stage.clone()),
            ThrottleRoute { key, .. } | UnthrottleRoute { key } => {
                ("route throttle".into(), key.clone())
            }
            CreateUser
            | DeleteUser
            | SetBoundary {
                target: BoundaryTarget::User,
            } => ("iam user".into(), d.user.clone()),
            PutUserPolicy => ("user policy".into(), d.user.clone()),
            CreateAccessKey => ("access key".into(), d.user.clone()),
            DeleteAccessKey { id } | DeactivateAccessKey { id } => {
                ("access key".into(), id.clone())
            }
            CreatePolicy | CreatePolicyVersion { .. } | DeletePolicy => {
                ("managed policy".into(), d.policy.clone())
            }
            CreateEnvKey
            | SetEnvKeyPolicy { .. }
            | AliasEnvKey { .. }
            | RestoreEnvKey { .. }
            | DeleteEnvKey { .. } => ("kms key".into(), d.env_key_alias.clone()),
            CreateDomain { name, .. } | UpdateDomain { name, .. } | DeleteDomain { name } => {
                ("domain name".into(), name.clone())
            }
            CreateApiMapping { name } | DeleteApiMapping { name, .. } => {
                ("api mapping".into(), name.clone())
            }
            UpsertRecord { name, .. } | DeleteRecord { name, .. } => {
                ("dns record".into(), name.clone())
            }
            CreateBoundary | UpdateBoundary { .. } => {
                ("boundary policy".into(), d.boundary.clone())
            }
            SetBoundary {
                target: BoundaryTarget::Role,
            } => ("role".into(), d.role.clone()),
            // One lane: the role must exist before it is set.
            CreateAccountLoggingRole
            | SetAccountLoggingRole
            | SetBoundary {
                target: BoundaryTarget::AccountRole,
            } => (
                "account logging".into(),
                crate::facts::ACCOUNT_LOGGING_ROLE.into(),
            ),
            // The same lane as the resource's other actions, so a retag never races its update.
            Retag { target, .. } => match target {
                TagTarget::Role => ("role".into(), d.role.clone()),
                TagTarget::User => ("iam user".into(), d.user.clone()),
                TagTarget::Policy => ("managed policy".into(), d.policy.clone()),
                TagTarget::Api { .. } => ("websocket api".into(), d.api.clone()),
                TagTarget::Function { function } => ("function".into(), fname(function)),
                TagTarget::LogGroup { name } => ("log group".into(), name.clone()),
                TagTarget::EnvKey { .. } => ("kms key".into(), d.env_key_alias.clone()),
            },
        }
    }

    pub fn detail(&self) -> String {
        use Action::*;
        match self {
            UpdateFunctionCode { fields, .. }
            | UpdateFunctionConfig { fields, .. }
            | UpdateRoute { fields, .. }
            | UpdateStage { fields }
            | UpdateDomain { fields, .. }
            | UpdateApi { fields, .. }
            | ThrottleRoute { fields, .. } => fields.join(", "),
            UnthrottleRoute { .. } => "the stage's limits from now on".into(),
            PutRetention { days, .. } => format!("retention {days} days"),
            DeleteApi { reason, .. } => reason.clone(),
            AddPermission { replace: true, .. } => "source ARN".into(),
            DeactivateAccessKey { .. } => "deactivate, after the new key is written".into(),
            Retag { diff, .. } => {
                let mut parts: Vec<String> = diff.set.keys().map(|k| format!("tag {k}")).collect();
                parts.extend(diff.remove.iter().map(|k| format!("untag {k}")));
                parts.join(", ")
            }
            UpdateRoleTrust => "trust policy".into(),
            CreateBoundary => "caps every role and user of the project".into(),
            SetBoundary { .. } => "permissions boundary".into(),
            CreateDomain { certificate, .. } => format!("regional, TLS 1.2, {certificate}"),
            CreateApiMapping { .. } => "the stage at its root".into(),
            DeleteApiMapping { id, .. } => format!("mapping {id}"),
            UpsertRecord { zone, .. } => format!("A alias, zone {zone}"),
            DeleteRecord { zone, .. } => format!("zone {zone}"),
            CreateAccountLoggingRole => "API Gateway's role to write CloudWatch Logs".into(),
            SetAccountLoggingRole => {
                "API Gateway's CloudWatch role for this account and region".into()
            }
            PutRolePolicy | PutUserPolicy | UpdateBoundary { .. } => "policy document".into(),
            AliasEnvKey { .. } => "alias".into(),
            SetEnvKeyPolicy { .. } => "key policy (deployers)".into(),
            SetConcurrency {
                reserved: Some(n), ..
            } => format!("reserve {n}"),
            SetConcurrency { reserved: None, .. } => "back to the shared pool".into(),
            RestoreEnvKey { pending: true, .. } => "cancel the scheduled deletion, enable".into(),
            RestoreEnvKey { pending: false, .. } => "enable".into(),
            DeleteEnvKey { schedule: true, .. } => "deletion scheduled in 7 days".into(),
            DeleteEnvKey {
                schedule: false, ..
            } => "alias only; the key's deletion is already scheduled".into(),
            _ => String::new(),
        }
    }
}
