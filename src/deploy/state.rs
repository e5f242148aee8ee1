//! What a stage should look like (desired) and what AWS has (observed). Plain data: no I/O here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::config::{Architecture, CredentialsMode, StageConfig};

pub type Tags = BTreeMap<String, String>;

pub const TAG_PROJECT: &str = "wsdeploy:project";
pub const TAG_STAGE: &str = "wsdeploy:stage";
/// The Lambda permission statement that lets this API invoke a function.
pub const PERMISSION_SID: &str = "wsdeploy-apigateway-invoke";
pub const RUNTIME: &str = "provided.al2023";
pub const HANDLER: &str = "bootstrap";
pub const ROUTE_SELECTION: &str = "$request.body.action";

/// One function's code, built and zipped.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    pub zip: PathBuf,
    pub code_sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub project: String,
    pub stage: String,
    pub region: String,
    pub account: String,
    pub tags: Tags,
    pub role: String,
    pub role_policy_name: String,
    pub functions: Vec<FunctionSpec>,
    pub api: String,
    pub routes: Vec<RouteSpec>,
    pub credentials: CredentialsMode,
    pub user: String,
    pub policy_name: String,
    pub log_retention_days: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    /// The bundled function: `connect` or `disconnect`.
    pub function: String,
    pub name: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub architecture: Architecture,
    pub env: BTreeMap<String, String>,
    pub artifact: Artifact,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub key: String,
    pub function: String,
    /// Whether the function's answer goes back to the client (a `$default` route response).
    pub reply: bool,
}

impl Desired {
    /// `signing_secret` is the one already deployed if there is one (see `Observed::signing_secret`).
    pub fn new(
        cfg: &StageConfig,
        account: &str,
        artifacts: &BTreeMap<String, Artifact>,
        signing_secret: &str,
    ) -> Desired {
        let names = cfg.names();
        let mut tags = cfg.tags.clone();
        tags.insert(TAG_PROJECT.into(), cfg.project.clone());
        tags.insert(TAG_STAGE.into(), cfg.stage.clone());
        let functions = cfg
            .functions()
            .into_iter()
            .map(|f| {
                let b = &cfg.backend;
                let env = [
                    ("WSDEPLOY_BACKEND_URL", b.url.clone()),
                    ("WSDEPLOY_CONNECT_PATH", b.connect_path.clone()),
                    ("WSDEPLOY_DISCONNECT_PATH", b.disconnect_path.clone()),
                    ("WSDEPLOY_BACKEND_TIMEOUT_MS", b.timeout_ms.to_string()),
                    ("WSDEPLOY_SIGNING_SECRET", signing_secret.to_string()),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
                FunctionSpec {
                    name: cfg.function_name(&f),
                    memory_mb: cfg.lambda.memory_mb as i32,
                    timeout_s: cfg.lambda.timeout_s as i32,
                    architecture: cfg.lambda.architecture,
                    env,
                    artifact: artifacts
                        .get(&f)
                        .cloned()
                        .unwrap_or_else(|| panic!("no artifact for {f}")),
                    function: f,
                }
            })
            .collect();
        let routes = cfg
            .routes
            .iter()
            .map(|(k, f)| RouteSpec {
                key: k.clone(),
                function: f.clone(),
                reply: f == "connect" && k != "$connect" && k != "$disconnect",
            })
            .collect();
        Desired {
            project: cfg.project.clone(),
            stage: cfg.stage.clone(),
            region: cfg.region.clone(),
            account: account.to_string(),
            tags,
            role: names.role,
            role_policy_name: format!("{}-logs", names.prefix),
            functions,
            api: names.api,
            routes,
            credentials: cfg.credentials,
            user: names.user,
            policy_name: names.policy,
            log_retention_days: cfg.lambda.log_retention_days as i32,
        }
    }

    /// The stage's names and policies without its code, for verbs that never upload (`outputs`, `teardown`).
    pub fn without_code(cfg: &StageConfig, account: &str) -> Desired {
        let none = Artifact {
            zip: PathBuf::new(),
            code_sha256: String::new(),
            bytes: 0,
        };
        let artifacts = cfg
            .functions()
            .into_iter()
            .map(|f| (f, none.clone()))
            .collect();
        Desired::new(cfg, account, &artifacts, "")
    }

    pub fn websocket_url(&self, api_id: &str) -> String {
        format!(
            "wss://{api_id}.execute-api.{}.amazonaws.com/{}",
            self.region, self.stage
        )
    }

    pub fn management_endpoint(&self, api_id: &str) -> String {
        format!(
            "https://{api_id}.execute-api.{}.amazonaws.com/{}",
            self.region, self.stage
        )
    }

    pub fn log_group(function_name: &str) -> String {
        format!("/aws/lambda/{function_name}")
    }

    pub fn role_trust_policy() -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Principal": { "Service": "lambda.amazonaws.com" }, "Action": "sts:AssumeRole" }]
        })
    }

    /// The functions may write their own log groups and nothing else.
    pub fn role_policy(&self) -> Value {
        let resources: Vec<String> = self
            .functions
            .iter()
            .flat_map(|f| {
                let arn = format!(
                    "arn:aws:logs:{}:{}:log-group:{}",
                    self.region,
                    self.account,
                    Self::log_group(&f.name)
                );
                [arn.clone(), format!("{arn}:*")]
            })
            .collect();
        json!({
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": resources }]
        })
    }

    /// `execute-api:ManageConnections` on this API's stage only (POST, GET and DELETE on @connections).
    pub fn manage_connections_policy(&self, api_id: &str) -> Value {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Action": "execute-api:ManageConnections",
                "Resource": format!("arn:aws:execute-api:{}:{}:{api_id}/{}/*/@connections/*", self.region, self.account, self.stage)
            }]
        })
    }

    /// What API Gateway may invoke the functions from: this API only.
    pub fn invoke_source_arn(&self, api_id: &str) -> String {
        format!(
            "arn:aws:execute-api:{}:{}:{api_id}/*",
            self.region, self.account
        )
    }

    pub fn integration_uri(&self, function_arn: &str) -> String {
        format!(
            "arn:aws:apigateway:{}:lambda:path/2015-03-31/functions/{function_arn}/invocations",
            self.region
        )
    }

    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            self.region, self.account
        )
    }

    pub fn role_arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account, self.role)
    }

    pub fn policy_arn(&self) -> String {
        format!("arn:aws:iam::{}:policy/{}", self.account, self.policy_name)
    }

    pub fn owns(&self, tags: &Tags) -> bool {
        tags.get(TAG_PROJECT) == Some(&self.project) && tags.get(TAG_STAGE) == Some(&self.stage)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub role: Option<RoleObs>,
    /// By function name.
    pub functions: BTreeMap<String, FunctionObs>,
    /// Log group name -> retention in days (None: never expire).
    pub log_groups: BTreeMap<String, Option<i32>>,
    /// Every API with the stage's name (more than one only after a race).
    pub apis: Vec<ApiObs>,
    pub user: Option<UserObs>,
    pub managed_policy: Option<PolicyObs>,
    /// The access key id the backend's env file holds now.
    pub env_access_key_id: Option<String>,
    /// The signing secret the backend's env file holds now.
    pub env_signing_secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleObs {
    pub tags: Tags,
    pub trust: Value,
    pub policy: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionObs {
    pub arn: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub architecture: Option<Architecture>,
    pub runtime: String,
    pub handler: String,
    pub role: String,
    pub env: BTreeMap<String, String>,
    pub code_sha256: String,
    pub tags: Tags,
    /// Source ARN of our invoke permission statement, if present.
    pub permission_source: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiObs {
    pub id: String,
    pub route_selection: String,
    pub tags: Tags,
    pub created: i64,
    pub integrations: Vec<IntegrationObs>,
    pub routes: Vec<RouteObs>,
    pub stages: Vec<StageObs>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IntegrationObs {
    pub id: String,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteObs {
    pub id: String,
    pub key: String,
    pub target: Option<String>,
    /// `$default` once the route's response exists (see `Action::CreateRouteResponse`).
    pub response_selection: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageObs {
    pub name: String,
    pub auto_deploy: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserObs {
    pub tags: Tags,
    pub policy: Option<Value>,
    /// (key id, created epoch seconds), oldest first.
    pub keys: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyObs {
    pub document: Value,
    /// Non-default version ids, oldest first (IAM keeps at most 5 versions).
    pub old_versions: Vec<String>,
}

impl Observed {
    /// The API a stage keeps when a race left several: the oldest.
    pub fn kept_api(&self) -> Option<&ApiObs> {
        self.apis.iter().min_by_key(|a| (a.created, a.id.clone()))
    }

    /// The signing secret already shared by the deployed functions and the backend, so a re-run keeps it.
    pub fn signing_secret(&self) -> Option<String> {
        self.functions
            .values()
            .find_map(|f| f.env.get("WSDEPLOY_SIGNING_SECRET").cloned())
            .or_else(|| self.env_signing_secret.clone())
    }
}
