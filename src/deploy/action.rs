//! The actions a plan is made of: what each changes, in which phase it may run, and how it reads to a person.

use serde::Serialize;

use super::state::Desired;

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
    AddPermission {
        function: String,
        replace: bool,
    },
    CreateApi,
    UpdateApi {
        id: String,
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
    /// Creates the route's `$default` response, then sets the route's response selection to `$default`: the
    /// selection is set last, so it proves the response exists and nothing needs to list route responses (which
    /// the local AWS emulator cannot do). A run stopped between the two calls is completed by the next.
    CreateRouteResponse {
        key: String,
    },
    CreateStage,
    UpdateStage,
    CreateUser,
    PutUserPolicy,
    /// `after_env`: only once the env file holds the new key, so it never points at a deleted one.
    DeleteAccessKey {
        id: String,
        after_env: bool,
    },
    CreateAccessKey,
    DeleteUser,
    CreatePolicy,
    CreatePolicyVersion {
        delete_oldest: Option<String>,
    },
    DeletePolicy,
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
            | AddPermission { replace: false, .. } => Change::Create,
            DeleteRole
            | DeleteLogGroup { .. }
            | DeleteFunction { .. }
            | DeleteApi { .. }
            | DeleteIntegration { .. }
            | DeleteRoute { .. }
            | DeleteAccessKey { .. }
            | DeleteUser
            | DeletePolicy => Change::Delete,
            _ => Change::Update,
        }
    }

    /// Actions of one phase are independent and run concurrently; phases run in order. Only real dependencies
    /// separate them: functions need the role, integrations need functions and the API, routes need integrations.
    pub fn phase(&self) -> u8 {
        use Action::*;
        match self {
            DeleteApi { .. }
            | DeleteAccessKey {
                after_env: false, ..
            } => 0,
            CreateRole
            | UpdateRoleTrust
            | PutRolePolicy
            | CreateApi
            | UpdateApi { .. }
            | CreateUser
            | CreateLogGroup { .. }
            | PutRetention { .. }
            | CreatePolicy
            | CreatePolicyVersion { .. }
            | DeleteUser
            | DeletePolicy => 1,
            CreateFunction { .. }
            | UpdateFunctionCode { .. }
            | UpdateFunctionConfig { .. }
            | CreateStage
            | UpdateStage
            | PutUserPolicy => 2,
            CreateIntegration { .. } | AddPermission { .. } | CreateAccessKey => 3,
            CreateRoute { .. } | UpdateRoute { .. } | DeleteRoute { .. } => 4,
            CreateRouteResponse { .. } | DeleteIntegration { .. } => 5,
            DeleteFunction { .. } | DeleteLogGroup { .. } | DeleteRole => 6,
            DeleteAccessKey {
                after_env: true, ..
            } => 7,
        }
    }

    /// `(kind, name)` of the resource, for people.
    pub fn resource(&self, d: &Names) -> (String, String) {
        use Action::*;
        let fname = |f: &str| format!("{}-{f}", d.prefix);
        match self {
            CreateRole | UpdateRoleTrust | PutRolePolicy | DeleteRole => {
                ("role".into(), d.role.clone())
            }
            CreateLogGroup { name } | PutRetention { name, .. } | DeleteLogGroup { name } => {
                ("log group".into(), name.clone())
            }
            CreateFunction { function }
            | UpdateFunctionCode { function, .. }
            | UpdateFunctionConfig { function, .. } => ("function".into(), fname(function)),
            DeleteFunction { name } => ("function".into(), name.clone()),
            AddPermission { function, .. } => ("invoke permission".into(), fname(function)),
            CreateApi | UpdateApi { .. } => ("websocket api".into(), d.api.clone()),
            DeleteApi { id, .. } => ("websocket api".into(), format!("{} ({id})", d.api)),
            CreateIntegration { function } => ("integration".into(), fname(function)),
            DeleteIntegration { id } => ("integration".into(), id.clone()),
            CreateRoute { key } | UpdateRoute { key, .. } | DeleteRoute { key, .. } => {
                ("route".into(), key.clone())
            }
            CreateRouteResponse { key } => ("route response".into(), key.clone()),
            CreateStage | UpdateStage => ("stage".into(), d.stage.clone()),
            CreateUser | DeleteUser => ("iam user".into(), d.user.clone()),
            PutUserPolicy => ("user policy".into(), d.user.clone()),
            CreateAccessKey => ("access key".into(), d.user.clone()),
            DeleteAccessKey { id, .. } => ("access key".into(), id.clone()),
            CreatePolicy | CreatePolicyVersion { .. } | DeletePolicy => {
                ("managed policy".into(), d.policy.clone())
            }
        }
    }

    pub fn detail(&self) -> String {
        use Action::*;
        match self {
            UpdateFunctionCode { fields, .. }
            | UpdateFunctionConfig { fields, .. }
            | UpdateRoute { fields, .. } => fields.join(", "),
            PutRetention { days, .. } => format!("retention {days} days"),
            DeleteApi { reason, .. } => reason.clone(),
            AddPermission { replace: true, .. } => "source ARN".into(),
            DeleteAccessKey {
                after_env: true, ..
            } => "after the new key is written".into(),
            UpdateRoleTrust => "trust policy".into(),
            PutRolePolicy | PutUserPolicy => "policy document".into(),
            UpdateStage => "auto-deploy".into(),
            UpdateApi { .. } => "route selection".into(),
            _ => String::new(),
        }
    }
}

/// The names an action display needs.
#[derive(Debug, Clone)]
pub struct Names {
    pub prefix: String,
    pub role: String,
    pub api: String,
    pub stage: String,
    pub user: String,
    pub policy: String,
}

impl From<&Desired> for Names {
    fn from(d: &Desired) -> Names {
        Names {
            prefix: format!("{}-{}", d.project, d.stage),
            role: d.role.clone(),
            api: d.api.clone(),
            stage: d.stage.clone(),
            user: d.user.clone(),
            policy: d.policy_name.clone(),
        }
    }
}
