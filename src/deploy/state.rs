//! What a stage should look like (desired) and what AWS has (observed). Plain data: no I/O here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};

use crate::config::resolve::{FUNCTION_ENV_SIGNING_SECRET, FUNCTION_ENV_SIGNING_SECRET_PREVIOUS};
use crate::config::{
    Architecture, CredentialsMode, DomainSettings, EnvKey, ExecutionLogging, LogSettings, Names,
    StageConfig,
};
use crate::secret::SigningSecrets;

pub(crate) type Tags = BTreeMap<String, String>;

pub(crate) const TAG_PROJECT: &str = "wsdeploy:project";
pub(crate) const TAG_STAGE: &str = "wsdeploy:stage";
/// The heartbeat route's target in plans (`target → heartbeat`): API Gateway's MOCK integration, not a function.
pub(crate) const HEARTBEAT_TARGET: &str = "heartbeat";
/// The Lambda permission statement that lets this API invoke a function.
pub(crate) const PERMISSION_SID: &str = "wsdeploy-apigateway-invoke";

/// An AWS partition: its id in ARNs and the DNS suffix of its endpoints. Service principals stay
/// `{service}.amazonaws.com` in every partition for Lambda and API Gateway (aws-cdk #2198, serverless #6127), while
/// endpoints take the partition's suffix (`execute-api.cn-north-1.amazonaws.com.cn`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub id: String,
    pub dns_suffix: String,
}

impl Partition {
    /// The partition of any ARN, `arn:{partition}:…` (the caller's, from STS `GetCallerIdentity`).
    /// Suffixes: <https://docs.aws.amazon.com/whitepapers/latest/aws-fault-isolation-boundaries/partitions.html>
    pub fn of_arn(arn: &str) -> Partition {
        let id = arn
            .split(':')
            .nth(1)
            .filter(|p| !p.is_empty())
            .unwrap_or("aws");
        let dns_suffix = match id {
            "aws-cn" => "amazonaws.com.cn",
            "aws-iso" => "c2s.ic.gov",
            "aws-iso-b" => "sc2s.sgov.gov",
            "aws-iso-e" => "cloud.adc-e.uk",
            "aws-iso-f" => "csp.hci.ic.gov",
            _ => "amazonaws.com",
        };
        Partition {
            id: id.to_string(),
            dns_suffix: dns_suffix.to_string(),
        }
    }
}

/// Who runs wsdeploy: the account and partition every ARN is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub account: String,
    pub partition: Partition,
    /// Who is calling, as a key policy names it (`aws:PrincipalArn`), when it can.
    pub principal: Option<String>,
}

impl Caller {
    pub fn new(account: &str, arn: &str) -> Caller {
        Caller {
            account: account.to_string(),
            partition: Partition::of_arn(arn),
            principal: super::key_policy::principal_pattern(arn),
        }
    }
}

/// A deployed API: its id and, when AWS said it, its endpoint (`wss://{id}.execute-api.{region}.{suffix}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRef {
    pub id: String,
    pub endpoint: Option<String>,
}

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
    pub partition: Partition,
    pub tags: Tags,
    pub names: Names,
    pub functions: Vec<FunctionSpec>,
    pub routes: Vec<RouteSpec>,
    pub credentials: CredentialsMode,
    /// API Gateway's `IpAddressType` for the API and its domain.
    pub ip_address_type: crate::config::IpAddressType,
    pub log_retention_days: i32,
    pub env_key: EnvKey,
    /// Stage-wide throttle: (requests per second, burst).
    pub throttle: (f64, i32),
    /// Route key -> the route's own throttle.
    pub route_throttle: BTreeMap<String, (f64, i32)>,
    /// API Gateway's logs of the stage.
    pub logs: LogSettings,
    /// The stage's own domain, if the config gives one.
    pub domain: Option<DomainSettings>,
    /// This run's caller, as the stage key's policy names its deployers.
    pub deployer: Option<String>,
}

/// The stage's logging settings as API Gateway holds them: where access logs go, in what format, and the
/// execution logging level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageLogging {
    /// (log group ARN, format).
    pub access: Option<(String, String)>,
    pub level: ExecutionLogging,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FunctionSpec {
    /// The bundled function: `connect`, `disconnect` or `fanout`.
    pub function: String,
    pub name: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub architecture: Architecture,
    pub env: BTreeMap<String, String>,
    /// Reserved concurrent executions (`None`: the account's unreserved pool).
    pub reserved: Option<i32>,
    pub artifact: Artifact,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub key: String,
    pub function: String,
    /// Whether the function's answer goes back to the client (a `$default` route response).
    pub reply: bool,
}

impl FunctionSpec {
    /// Whether API Gateway invokes it (routes lead to it: it has an integration and API Gateway's permission). The
    /// fan-out function is the backend's to invoke, through IAM, and has neither.
    pub fn routed(&self) -> bool {
        crate::config::rules::ROUTE_FUNCTIONS.contains(&self.function.as_str())
    }

    /// The environment as deployed: what the config gives the function, and the id of the API whose events it
    /// serves once that API exists (`None`: not yet; the function then refuses every event, and no route reaches
    /// it yet).
    pub fn deployed_env(&self, api_id: Option<&str>) -> BTreeMap<String, String> {
        let mut env = self.env.clone();
        if let Some(id) = api_id {
            env.insert(crate::config::resolve::FUNCTION_ENV_API_ID.into(), id.into());
        }
        env
    }
}

impl Desired {
    /// `signing` is what the functions sign with (see `SigningSecrets::next`).
    pub fn new(
        cfg: &StageConfig,
        caller: &Caller,
        artifacts: &BTreeMap<String, Artifact>,
        signing: &SigningSecrets,
    ) -> Result<Desired, MissingArtifact> {
        let names = cfg.names();
        let mut tags = cfg.tags.clone();
        tags.insert(TAG_PROJECT.into(), cfg.project.clone());
        tags.insert(TAG_STAGE.into(), cfg.stage.clone());
        let functions = cfg
            .functions()
            .into_iter()
            .map(|f| {
                let env = cfg.function_env(&f, signing);
                Ok(FunctionSpec {
                    name: cfg.function_name(&f),
                    memory_mb: cfg.lambda.memory_mb as i32,
                    reserved: cfg.lambda.reserved_concurrency.map(|n| n as i32),
                    timeout_s: cfg.lambda.timeout_s as i32,
                    architecture: cfg.lambda.architecture,
                    env,
                    artifact: artifacts
                        .get(&f)
                        .cloned()
                        .ok_or_else(|| MissingArtifact(f.clone()))?,
                    function: f,
                })
            })
            .collect::<Result<_, _>>()?;
        let mut routes: Vec<RouteSpec> = cfg
            .routes
            .iter()
            .map(|(k, f)| RouteSpec {
                key: k.clone(),
                function: f.clone(),
                reply: crate::config::replies(k, f),
            })
            .collect();
        if cfg.heartbeat {
            routes.push(RouteSpec {
                key: crate::facts::HEARTBEAT_ACTION.into(),
                function: HEARTBEAT_TARGET.into(),
                reply: true,
            });
        }
        Ok(Desired {
            project: cfg.project.clone(),
            stage: cfg.stage.clone(),
            region: cfg.region.clone(),
            account: caller.account.clone(),
            partition: caller.partition.clone(),
            tags,
            names,
            functions,
            routes,
            credentials: cfg.credentials,
            ip_address_type: cfg.ip_address_type,
            log_retention_days: cfg.lambda.log_retention_days as i32,
            env_key: cfg.lambda.env_key.clone(),
            throttle: (cfg.throttle.rate, cfg.throttle.burst as i32),
            route_throttle: cfg
                .throttle
                .routes
                .iter()
                .map(|(key, (rate, burst))| (key.clone(), (*rate, *burst as i32)))
                .collect(),
            logs: cfg.logs.clone(),
            domain: cfg.domain.clone(),
            deployer: caller.principal.clone(),
        })
    }

    /// The stage's names and policies without its code, for verbs that never upload (`outputs`, `teardown`).
    pub fn without_code(cfg: &StageConfig, caller: &Caller) -> Desired {
        Desired::with_code(
            cfg,
            caller,
            |_| String::new(),
            &SigningSecrets::single(String::new()),
        )
    }

    /// The stage as the config wants it, but with the code and signing secrets it has now: what `status` compares
    /// against, since it builds nothing and rotates nothing (a function without a secret still shows as drift).
    pub fn as_deployed(cfg: &StageConfig, caller: &Caller, o: &Observed) -> Desired {
        let code = |f: &str| {
            o.functions
                .get(&cfg.function_name(f))
                .map(|obs| obs.code_sha256.clone())
                .unwrap_or_default()
        };
        let signing = o
            .signing_secrets()
            .unwrap_or_else(|| SigningSecrets::single(String::new()));
        Desired::with_code(cfg, caller, code, &signing)
    }

    /// Every function's artifact stands for code this run does not build: `code(function)` is its SHA-256.
    fn with_code(
        cfg: &StageConfig,
        caller: &Caller,
        code: impl Fn(&str) -> String,
        signing: &SigningSecrets,
    ) -> Desired {
        let artifacts = cfg
            .functions()
            .into_iter()
            .map(|f| {
                let artifact = Artifact {
                    zip: PathBuf::new(),
                    code_sha256: code(&f),
                    bytes: 0,
                };
                (f, artifact)
            })
            .collect();
        Desired::new(cfg, caller, &artifacts, signing).expect("every function has an artifact")
    }

    /// The API's host: from the endpoint AWS gave, else built from the partition's DNS suffix.
    fn api_host(&self, api: &ApiRef) -> String {
        api.endpoint
            .as_deref()
            .and_then(|e| e.split_once("://").map(|(_, host)| host))
            .map_or_else(
                || {
                    format!(
                        "{}.execute-api.{}.{}",
                        api.id, self.region, self.partition.dns_suffix
                    )
                },
                |host| host.trim_end_matches('/').to_string(),
            )
    }

    /// What clients connect to: the stage's own domain (mapped at its root, so no stage path), else API Gateway's.
    pub fn websocket_url(&self, api: &ApiRef) -> String {
        match &self.domain {
            Some(d) => format!("wss://{}", d.name),
            None => format!("wss://{}/{}", self.api_host(api), self.stage),
        }
    }

    pub fn management_endpoint(&self, api: &ApiRef) -> String {
        format!("https://{}/{}", self.api_host(api), self.stage)
    }

    pub fn log_group(function_name: &str) -> String {
        format!("/aws/lambda/{function_name}")
    }

    pub fn execution_log_group(&self, api_id: &str) -> String {
        self.names.execution_log_group(api_id)
    }

    /// What the stage's logging should be, given whether the account has API Gateway's CloudWatch role: without
    /// it, API Gateway refuses any logging setting ("CloudWatch Logs role ARN must be set in account settings to
    /// enable logging", sst/ion #373), so the stage is left without logs until the role is there.
    /// The destination is the group's ARN without the trailing `:*` that `DescribeLogGroups` gives
    /// (terraform-provider-aws trims it for `aws_apigatewayv2_stage.access_log_settings.destination_arn`).
    pub fn stage_logging(&self, account_role: bool) -> StageLogging {
        if !account_role {
            return StageLogging {
                access: None,
                level: ExecutionLogging::Off,
            };
        }
        StageLogging {
            access: self.logs.access.then(|| {
                (
                    self.log_group_arn(&self.names.access_log_group),
                    crate::facts::ACCESS_LOG_FORMAT.to_string(),
                )
            }),
            level: self.logs.execution,
        }
    }

    /// The role API Gateway writes CloudWatch Logs with, for the whole account and region (one per account: a
    /// stage's teardown leaves it for the others).
    pub fn account_logging_role_arn(&self) -> String {
        super::boundary::account_role_arn(&self.partition, &self.account)
    }

    pub fn role_trust_policy() -> Value {
        super::boundary::service_trust("lambda.amazonaws.com")
    }

    /// The project's permissions boundary, which every role and user of its stages carries.
    pub fn boundary_arn(&self) -> String {
        super::boundary::boundary_arn(&self.partition, &self.account, &self.names.boundary)
    }

    pub fn boundary_policy(&self) -> Value {
        super::boundary::boundary_policy(&self.project, &self.partition, &self.account)
    }

    /// The functions may write their own log groups and, when their environment is encrypted with a key of the
    /// stage's or the user's (`env_key`), decrypt with that key: Lambda decrypts the environment at each cold
    /// start as the function's role, and without `kms:Decrypt` every invocation fails with
    /// `KMSAccessDeniedException` (aws/serverless-application-model PR #1990 grants the same;
    /// cattle-ops/terraform-aws-gitlab-runner PR #1253 shows the failure). Once the API exists they may also post
    /// to and close this stage's sockets, on this API and stage only: `connect` closes a socket whose `auth` was
    /// refused, after telling it why.
    pub fn role_policy(&self, env_key_arn: Option<&str>, api_id: Option<&str>) -> Value {
        let resources: Vec<String> = self
            .functions
            .iter()
            .flat_map(|f| {
                let arn = self.log_group_arn(&Self::log_group(&f.name));
                [arn.clone(), format!("{arn}:*")]
            })
            .collect();
        let mut statements = vec![
            json!({ "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": resources }),
        ];
        if let Some(key) = env_key_arn {
            statements.push(json!({ "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key }));
        }
        if let Some(api) = api_id {
            // ARN form: arn:aws:execute-api:{region}:{account}:{api-id}/{stage}/{METHOD}/@connections/{id}
            // (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-websocket-control-access-iam.html).
            let arn = |method: &str| {
                format!(
                    "arn:{}:execute-api:{}:{}:{api}/{}/{method}/@connections/*",
                    self.partition.id, self.region, self.account, self.stage
                )
            };
            statements.push(json!({
                "Effect": "Allow",
                "Action": "execute-api:ManageConnections",
                "Resource": [arn("POST"), arn("DELETE")]
            }));
        }
        json!({ "Version": "2012-10-17", "Statement": statements })
    }

    /// The key the functions' environment is encrypted with, given the stage key's ARN if there is one: `None` is
    /// Lambda's AWS-managed key.
    pub fn env_key_arn(&self, stage_key: Option<&str>) -> Option<String> {
        match &self.env_key {
            EnvKey::Stage => stage_key.map(str::to_string),
            EnvKey::AwsManaged => None,
            EnvKey::Arn(arn) => Some(arn.clone()),
        }
    }

    /// `execute-api:ManageConnections` on this API's stage only (POST, GET and DELETE on @connections), and with
    /// `fanout: true` `lambda:InvokeFunction` on the stage's fan-out function only: its unqualified ARN, which is
    /// what the templates invoke (a version's or alias's ARN would need its own grant:
    /// <https://docs.aws.amazon.com/lambda/latest/dg/lambda-api-permissions-ref.html>).
    pub fn manage_connections_policy(&self, api_id: &str) -> Value {
        let mut statements = vec![json!({
            "Effect": "Allow",
            "Action": "execute-api:ManageConnections",
            "Resource": format!("arn:{}:execute-api:{}:{}:{api_id}/{}/*/@connections/*", self.partition.id, self.region, self.account, self.stage)
        })];
        if let Some(fanout) = self.functions.iter().find(|f| !f.routed()) {
            statements.push(json!({
                "Effect": "Allow",
                "Action": "lambda:InvokeFunction",
                "Resource": self.function_arn(&fanout.name)
            }));
        }
        json!({ "Version": "2012-10-17", "Statement": statements })
    }

    /// What API Gateway may invoke the functions from: this API only.
    pub fn invoke_source_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:execute-api:{}:{}:{api_id}/*",
            self.partition.id, self.region, self.account
        )
    }

    pub fn integration_uri(&self, function_arn: &str) -> String {
        format!(
            "arn:{}:apigateway:{}:lambda:path/2015-03-31/functions/{function_arn}/invocations",
            self.partition.id, self.region
        )
    }

    pub fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{name}",
            self.partition.id, self.region, self.account
        )
    }

    pub fn role_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:role/{}",
            self.partition.id, self.account, self.names.role
        )
    }

    pub fn policy_arn(&self) -> String {
        format!(
            "arn:{}:iam::{}:policy/{}",
            self.partition.id, self.account, self.names.policy
        )
    }

    pub fn log_group_arn(&self, group: &str) -> String {
        format!(
            "arn:{}:logs:{}:{}:log-group:{group}",
            self.partition.id, self.region, self.account
        )
    }

    /// What API Gateway's tagging API calls the API.
    pub fn api_arn(&self, api_id: &str) -> String {
        format!(
            "arn:{}:apigateway:{}::/apis/{api_id}",
            self.partition.id, self.region
        )
    }

    /// The tags to add or change and the keys to remove so that `observed` becomes this stage's tags. Keys under
    /// `aws:` belong to AWS and cannot be changed.
    pub fn tag_diff(&self, observed: &Tags) -> Option<TagDiff> {
        let set: Tags = self
            .tags
            .iter()
            .filter(|(k, v)| observed.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let remove: Vec<String> = observed
            .keys()
            .filter(|k| !self.tags.contains_key(*k) && !k.starts_with("aws:"))
            .cloned()
            .collect();
        (!set.is_empty() || !remove.is_empty()).then_some(TagDiff { set, remove })
    }

    pub fn owns(&self, tags: &Tags) -> bool {
        tags.get(TAG_PROJECT) == Some(&self.project) && tags.get(TAG_STAGE) == Some(&self.stage)
    }
}

/// Tags to set and tag keys to remove on one resource.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TagDiff {
    pub set: Tags,
    pub remove: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("internal error: the function {0} was not built")]
pub struct MissingArtifact(pub String);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub role: Option<RoleObs>,
    /// By function name.
    pub functions: BTreeMap<String, FunctionObs>,
    /// Log group name -> retention in days (None: never expire) and tags.
    pub log_groups: BTreeMap<String, LogGroupObs>,
    /// Every API with the stage's name (more than one only after a race).
    pub apis: Vec<ApiObs>,
    pub user: Option<UserObs>,
    pub managed_policy: Option<PolicyObs>,
    /// The access key id the backend's env file holds now.
    pub env_access_key_id: Option<String>,
    /// The signing secret the backend's env file holds now.
    pub env_signing_secret: Option<String>,
    /// The stage's KMS key, found by its alias (or, after a run stopped between creating and aliasing it, by its
    /// tags).
    pub env_key: Option<EnvKeyObs>,
    /// Other keys of the stage without the alias (two runs that each created one before either aliased it).
    pub stray_env_keys: Vec<EnvKeyObs>,
    /// The stage's custom domain name (`domain.name`), if API Gateway has it.
    pub domain: Option<DomainObs>,
    /// The certificate the domain should use: the config's, or the ISSUED one of the region that covers the name.
    pub certificate: Option<CertObs>,
    /// The Route 53 zone that holds the name (the config's, or this account's public zone for it).
    pub zone: Option<ZoneObs>,
    /// The name's `A` record in that zone.
    pub record: Option<RecordObs>,
    /// The CloudWatch role in API Gateway's account settings (`GetAccount`'s `cloudwatchRoleArn`), if set.
    pub account_logging_role: Option<String>,
    /// The role wsdeploy creates for that setting, if a role of its name exists.
    pub account_role: Option<AccountRoleObs>,
    /// The project's permissions boundary policy, if it exists.
    pub boundary: Option<PolicyObs>,
}

/// A custom domain name of API Gateway's, as `GetDomainName` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainObs {
    pub tags: Tags,
    /// The regional host that DNS must point at (`ApiGatewayDomainName`) and its Route 53 zone (`HostedZoneId`).
    pub target: String,
    pub target_zone: String,
    pub certificate_arn: String,
    pub security_policy: String,
    /// `IpAddressType` of its configuration; none for a domain made before AWS had them (IPv4).
    pub ip_address_type: Option<String>,
    pub mappings: Vec<MappingObs>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingObs {
    pub id: String,
    pub api_id: String,
    pub stage: String,
    pub key: String,
}

/// An ACM certificate and whether it can serve the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertObs {
    pub arn: String,
    /// `ISSUED`, `PENDING_VALIDATION`, `EXPIRED`, ...
    pub status: String,
    /// Its names (domain and alternative names), which must cover the domain.
    pub names: Vec<String>,
}

impl CertObs {
    /// Whether one of its names is `name`, or a wildcard one level above it (`*.example.com` covers
    /// `ws.example.com`, not `a.ws.example.com`).
    pub fn covers(&self, name: &str) -> bool {
        self.names.iter().any(|n| {
            n.eq_ignore_ascii_case(name)
                || n.strip_prefix("*.").is_some_and(|parent| {
                    name.split_once('.')
                        .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(parent))
                })
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneObs {
    pub id: String,
    pub name: String,
}

/// An `A` record: an alias (to `alias_target`) or plain addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordObs {
    pub alias_target: Option<String>,
    pub alias_zone: Option<String>,
}

impl RecordObs {
    /// Whether it aliases `target` (Route 53 gives names back lowercased with a trailing dot).
    pub fn points_at(&self, target: &str) -> bool {
        self.alias_target.as_deref().is_some_and(|t| {
            t.trim_end_matches('.')
                .eq_ignore_ascii_case(target.trim_end_matches('.'))
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EnvKeyObs {
    pub id: String,
    pub arn: String,
    pub state: KmsKeyState,
    pub tags: Tags,
    pub description: String,
    /// Its key policy, if it could be read and parsed.
    pub policy: Option<Value>,
    /// Whether the stage's alias points at it.
    pub aliased: bool,
}

/// The states of a KMS key that matter here
/// (<https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsKeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    /// Creating, Unavailable, PendingImport, …: nothing wsdeploy does to it would help.
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogGroupObs {
    pub retention: Option<i32>,
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleObs {
    pub tags: Tags,
    pub trust: Value,
    pub policy: Option<Value>,
    /// The ARN of its permissions boundary.
    pub boundary: Option<String>,
}

/// API Gateway's account role, when a role of its name exists.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountRoleObs {
    pub trust: Value,
    pub boundary: Option<String>,
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
    pub reserved: Option<i32>,
    /// The customer managed key its environment is encrypted with (`None`: Lambda's AWS-managed key).
    pub kms_key_arn: Option<String>,
    pub tags: Tags,
    /// Source ARN of our invoke permission statement, if present.
    pub permission_source: Option<String>,
    /// Why the function cannot run (its state `Failed`, or its last update failed), when it cannot.
    pub broken: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiObs {
    pub id: String,
    /// `ApiEndpoint`, as AWS gives it.
    pub endpoint: Option<String>,
    pub route_selection: String,
    /// `IpAddressType`; AWS leaves it out of an API made before it had one, which is IPv4.
    pub ip_address_type: Option<String>,
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
    /// `IntegrationType`: `AWS_PROXY` for a function, `MOCK` for the heartbeat.
    pub kind: String,
    /// Keys of its integration responses; read only for MOCK integrations.
    pub responses: Vec<String>,
}

impl IntegrationObs {
    /// The heartbeat's integration, complete: a MOCK integration with its `$default` integration response.
    pub fn is_heartbeat(&self) -> bool {
        self.kind == "MOCK" && self.responses.iter().any(|k| k == crate::facts::REPLY_KEY)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RouteObs {
    pub id: String,
    pub key: String,
    pub target: Option<String>,
    /// `$default` once the route replies to the client (see `Action::CreateRouteResponse`).
    pub response_selection: Option<String>,
    /// Keys of the route's responses; read only for routes whose selection is set.
    pub responses: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageObs {
    pub name: String,
    pub auto_deploy: bool,
    /// The stage's default route throttling: (rate, burst), when set.
    pub throttle: Option<(f64, i32)>,
    /// Route key -> that route's throttling, for the routes that have settings of their own.
    pub route_throttle: BTreeMap<String, (f64, i32)>,
    pub logging: StageLogging,
    /// What API Gateway says of the stage's last automatic deployment, when it failed.
    pub deployment_failure: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserObs {
    pub tags: Tags,
    pub policy: Option<Value>,
    /// The ARN of its permissions boundary.
    pub boundary: Option<String>,
    /// Oldest first.
    pub keys: Vec<KeyObs>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyObs {
    pub id: String,
    /// Epoch seconds.
    pub created: i64,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyObs {
    pub tags: Tags,
    pub document: Value,
    /// Non-default version ids, oldest first (IAM keeps at most 5 versions).
    pub old_versions: Vec<String>,
}

impl ApiObs {
    pub fn reference(&self) -> ApiRef {
        ApiRef {
            id: self.id.clone(),
            endpoint: self.endpoint.clone(),
        }
    }
}

impl Observed {
    /// The API a stage keeps when a race left several: the oldest.
    pub fn kept_api(&self) -> Option<&ApiObs> {
        self.apis.iter().min_by_key(|a| (a.created, a.id.clone()))
    }

    /// The signing secrets the deployed functions use (or, with none deployed, the one the backend's env file
    /// holds for this stage), so that a re-run keeps them.
    pub fn signing_secrets(&self) -> Option<SigningSecrets> {
        self.functions
            .values()
            .find_map(|f| {
                Some(SigningSecrets {
                    current: f.env.get(FUNCTION_ENV_SIGNING_SECRET)?.clone(),
                    previous: f.env.get(FUNCTION_ENV_SIGNING_SECRET_PREVIOUS).cloned(),
                })
            })
            .or_else(|| self.env_signing_secret.clone().map(SigningSecrets::single))
    }
}
