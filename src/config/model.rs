//! The file as written: every field optional, so that a stage can override any subset of the top level and so that
//! a value which fails to deserialize can be dropped and the rest still checked (several errors in one run).
//! Defaults and required fields are applied later, in `resolve`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A layer of settings: the top level of `wsdeploy.yaml`, or one entry of `stages`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    title = "wsdeploy.yaml",
    description = "wsdeploy configuration: one WebSocket API per stage"
)]
pub struct Layer {
    /// Prefixes every resource name: lowercase letters, digits and '-', starting with a letter, at most 32 characters.
    #[schemars(regex(pattern = r"^[a-z][a-z0-9-]*$"), length(max = 32))]
    pub project: Option<String>,
    /// AWS region, e.g. eu-west-3. AWS_REGION and --region override it.
    #[schemars(regex(pattern = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"))]
    pub region: Option<String>,
    /// Where the Lambdas reach your app's backend.
    pub backend: Option<Backend>,
    /// Route key -> bundled function. Route keys: $connect, $disconnect, $default or an action name
    /// (selected by the `action` field of the client's JSON message).
    pub routes: Option<BTreeMap<String, String>>,
    /// Settings of the bundled Lambda functions.
    pub lambda: Option<Lambda>,
    /// Whether the `ping` action is answered `{"action":"pong"}` by API Gateway itself (a MOCK integration: no
    /// function runs, nothing is billed but the message), so that clients keep their sockets inside API Gateway's
    /// 10-minute idle limit. Default true.
    pub heartbeat: Option<bool>,
    /// Close a socket that has not authenticated within this many seconds (1 to 7200). The connect function then
    /// also runs on `$connect` and tells the backend of the pending socket, and the backend closes it at the
    /// deadline unless its `auth` went through. Costs one more function call and backend call per connection.
    /// Unset: a socket that never authenticates lives until API Gateway's limits close it (10 minutes idle, 2 hours).
    #[schemars(range(min = 1, max = 7200))]
    pub auth_timeout_s: Option<u32>,
    /// Deploy the bundled fan-out function (`{project}-{stage}-fanout`), which posts one message to many sockets
    /// from inside the region, and let the backend's credentials invoke it (and nothing else besides
    /// `@connections`). The templates hand publishes to large audiences to it. Default false.
    pub fanout: Option<bool>,
    /// Stage-wide throttling of the messages API Gateway accepts (connections included), so that a flood hits
    /// API Gateway's 429 rather than your functions and backend. Defaults: rate 100 per second, burst 200.
    pub throttle: Option<Throttle>,
    /// How the backend gets permission to post to connections.
    pub credentials: Option<CredentialsMode>,
    /// Env files wsdeploy writes its outputs into.
    pub env: Option<Env>,
    /// Stage name -> overrides of any key above (except `project` and `stages`).
    pub stages: Option<BTreeMap<String, Option<Layer>>>,
    /// Tags added to every resource that takes tags: at most 48 (wsdeploy adds its two), keys of 1 to 128 and values
    /// of at most 256 letters, digits, spaces and `_ . : / = + - @`, no `aws:` or `wsdeploy:` prefix.
    pub tags: Option<BTreeMap<String, String>>,
    /// What `wsdeploy dev` runs beside the gateway (your backend, say).
    pub dev: Option<Dev>,
    /// The traffic you expect, so that `plan` shows what the stage would cost a month (`wsdeploy cost` details it).
    pub expect: Option<Expect>,
    /// API Gateway's own logs of the stage: access logs (on by default) and execution logs (off by default).
    pub logs: Option<Logs>,
    /// The stage on a domain of yours, e.g. `ws.example.com`, instead of `{id}.execute-api.{region}.amazonaws.com`.
    /// Set it per stage: two stages cannot share a domain.
    pub domain: Option<Domain>,
    /// Which IP addresses clients may connect from: `ipv4` (the default) or `dualstack` (IPv4 and IPv6), for the
    /// API's endpoint and its domain alike.
    pub ip_address_type: Option<IpAddressType>,
}

/// A custom domain for the stage: a regional API Gateway domain name (TLS 1.2), mapped to the stage.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Domain {
    /// The host name clients connect to, e.g. ws.example.com.
    #[schemars(
        regex(pattern = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"),
        length(max = 253)
    )]
    pub name: Option<String>,
    /// An ACM certificate in the stage's region that covers the name. Default: the ISSUED one that covers it.
    #[schemars(regex(
        pattern = r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$"
    ))]
    pub certificate_arn: Option<String>,
    /// The Route 53 hosted zone that gets the alias record. Default: the public zone of this account that holds
    /// the name, if any; otherwise `up` prints the record to create at your DNS provider.
    #[schemars(regex(pattern = r"^Z[A-Z0-9]{1,31}$"))]
    pub hosted_zone_id: Option<String>,
}

/// API Gateway's logs of the stage. Both kinds need API Gateway's CloudWatch role in the account's settings
/// (`wsdeploy up --setup-account-logging` sets it).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Logs {
    /// One JSON line per connect, message and disconnect (connectionId, routeKey, eventType, status,
    /// integrationError, requestId, ip) in a log group of the stage's. Default true.
    pub access: Option<bool>,
    /// API Gateway's execution logs (what it did with each message, step by step): `off` (the default), `error` or
    /// `info`. They are verbose: CloudWatch bills their ingestion.
    pub execution: Option<ExecutionLogging>,
    /// Days the API's logs are kept: one of CloudWatch Logs' retention values (default: lambda.log_retention_days).
    pub retention_days: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionLogging {
    Off,
    Error,
    Info,
}

impl ExecutionLogging {
    /// API Gateway's `LoggingLevel`.
    pub fn as_aws(self) -> &'static str {
        match self {
            ExecutionLogging::Off => "OFF",
            ExecutionLogging::Error => "ERROR",
            ExecutionLogging::Info => "INFO",
        }
    }
}

/// Expected traffic, for the cost estimate.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Sockets open at any moment, on average.
    #[schemars(range(min = 0))]
    pub connections: Option<f64>,
    /// Messages a minute, both ways (clients' and the backend's pushes), heartbeats aside.
    #[schemars(range(min = 0))]
    pub messages_per_minute: Option<f64>,
    /// The average message's size in KB (default 1): API Gateway bills each 32 KB started as one message.
    #[schemars(range(min = 0))]
    pub message_kb: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// Requests per second, sustained (API Gateway's token bucket refill rate). More than 0.
    #[schemars(range(min = 0.001))]
    pub rate: Option<f64>,
    /// Requests at once (the bucket's size). At least 1.
    #[schemars(range(min = 1))]
    pub burst: Option<u32>,
    /// Route key -> limits of its own, e.g. `auth: { rate: 10, burst: 20 }` so that a flood of auth messages
    /// reaches your backend at that pace at most. A limit left out is the stage's.
    pub routes: Option<BTreeMap<String, RouteThrottle>>,
}

/// One route's throttle; a value left out is the stage's.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteThrottle {
    /// Requests per second, sustained. More than 0.
    #[schemars(range(min = 0.001))]
    pub rate: Option<f64>,
    /// Requests at once. At least 1.
    #[schemars(range(min = 1))]
    pub burst: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dev {
    /// Shell command `wsdeploy dev` starts once the gateway listens and the env files are written, e.g.
    /// `npm start`. It gets PORT set to backend.url's port, and is stopped when dev stops (dev stops if it exits).
    pub command: Option<String>,
    /// Folder the command runs in, relative to this file (default: this file's folder).
    pub dir: Option<String>,
    /// URL `wsdeploy dev` prints to open once it accepts connections, e.g. http://127.0.0.1:3000/
    pub open: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Backend {
    /// Base URL of your backend as the Lambdas reach it, e.g. https://api.example.com
    pub url: Option<String>,
    /// POST here with {"connectionId": "..."} and the user's token as Bearer.
    pub connect_path: Option<String>,
    /// DELETE here; must contain {connectionId}.
    pub disconnect_path: Option<String>,
    /// Timeout of each backend call, in milliseconds.
    #[schemars(range(min = 1, max = 900_000))]
    pub timeout_ms: Option<u64>,
    /// Let a deployed stage call a non-local backend over plain http. Its calls then carry users' tokens in
    /// cleartext: only for a network that is yours end to end.
    pub allow_http: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Lambda {
    pub architecture: Option<Architecture>,
    #[schemars(range(min = 128, max = 10240))]
    pub memory_mb: Option<u32>,
    #[schemars(range(min = 1, max = 900))]
    pub timeout_s: Option<u32>,
    /// One of CloudWatch Logs' retention values: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, ...
    pub log_retention_days: Option<u32>,
    /// The KMS key that encrypts the functions' environment, which holds the signing secret: `stage` (the default)
    /// creates a key for the stage (about $1 a month), so that only principals allowed to decrypt with it can read
    /// the secret; `aws-managed` uses Lambda's own key (free, but anyone allowed lambda:GetFunctionConfiguration
    /// reads the secret); or the ARN of a key of yours in the stage's region.
    #[schemars(regex(
        pattern = r"^(stage|aws-managed|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+)$"
    ))]
    pub env_key: Option<String>,
    /// Concurrent executions reserved for each bundled function (default: none, they share the account's pool).
    /// It also caps them, so that a flood of `auth` messages cannot take the concurrency your other functions need.
    #[schemars(range(min = 1))]
    pub reserved_concurrency: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// Graviton: cheaper, faster cold start.
    Arm64,
    X86_64,
}

impl Architecture {
    pub fn as_str(self) -> &'static str {
        match self {
            Architecture::Arm64 => "arm64",
            Architecture::X86_64 => "x86_64",
        }
    }
}

/// API Gateway's `IpAddressType` of an API and of a domain name
/// (<https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-ip-address-type.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum IpAddressType {
    /// IPv4 clients only.
    #[default]
    Ipv4,
    /// IPv4 and IPv6 clients.
    Dualstack,
}

impl IpAddressType {
    /// As API Gateway spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            IpAddressType::Ipv4 => "ipv4",
            IpAddressType::Dualstack => "dualstack",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CredentialsMode {
    /// An IAM user with an access key, written into the backend's env file.
    IamUser,
    /// Only a managed policy, which you attach to your backend's own role.
    Policy,
}

impl CredentialsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialsMode::IamUser => "iam-user",
            CredentialsMode::Policy => "policy",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Env {
    pub frontend: Option<FrontendEnv>,
    pub backend: Option<BackendEnv>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrontendEnv {
    /// The frontend's env file, relative to this file.
    pub file: Option<String>,
    /// Variable that receives the wss:// URL.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackendEnv {
    /// The backend's env file, relative to this file. It receives secrets: keep it out of git.
    pub file: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub signing_secret: Option<String>,
    /// Receives the fan-out function's name (with `fanout: true`).
    pub fanout_function: Option<String>,
}

/// Later layers win, field by field; maps merge key by key.
pub(crate) trait Merge {
    fn merge(self, over: Self) -> Self;
}

impl<T: Merge> Merge for Option<T> {
    fn merge(self, over: Self) -> Self {
        match (self, over) {
            (Some(a), Some(b)) => Some(a.merge(b)),
            (a, b) => b.or(a),
        }
    }
}

impl<V> Merge for BTreeMap<String, V> {
    fn merge(mut self, over: Self) -> Self {
        self.extend(over);
        self
    }
}

macro_rules! merge_struct {
    ($ty:ident { $($leaf:ident),* ; $($nested:ident),* }) => {
        impl Merge for $ty {
            fn merge(self, over: Self) -> Self {
                $ty {
                    $($leaf: over.$leaf.or(self.$leaf),)*
                    $($nested: self.$nested.merge(over.$nested),)*
                }
            }
        }
    };
}

merge_struct!(Layer { project, region, credentials, stages, heartbeat, auth_timeout_s, fanout, ip_address_type; backend, routes, lambda, env, tags, dev, throttle, expect, logs, domain });
merge_struct!(Domain { name, certificate_arn, hosted_zone_id; });
merge_struct!(Logs { access, execution, retention_days; });
merge_struct!(Expect { connections, messages_per_minute, message_kb; });
merge_struct!(Dev { command, dir, open; });
merge_struct!(Throttle { rate, burst; routes });
merge_struct!(Backend { url, connect_path, disconnect_path, timeout_ms, allow_http; });
merge_struct!(Lambda { architecture, memory_mb, timeout_s, log_retention_days, env_key, reserved_concurrency; });
merge_struct!(Env { ; frontend, backend });
merge_struct!(FrontendEnv { file, url; });
merge_struct!(BackendEnv { file, endpoint, region, access_key_id, secret_access_key, signing_secret, fanout_function; });

/// The JSON Schema of `wsdeploy.yaml`, generated from the same structs the loader uses, so it cannot drift.
/// A stage takes every key of the top level but `project` and `stages`.
pub(crate) fn json_schema() -> serde_json::Value {
    let mut root = serde_json::to_value(schemars::schema_for!(Layer)).expect("schema serializes");
    let mut stage = serde_json::Map::new();
    stage.insert("type".into(), "object".into());
    stage.insert("additionalProperties".into(), false.into());
    stage.insert(
        "description".into(),
        "Overrides of the top-level settings for this stage.".into(),
    );
    let mut props = root["properties"].as_object().cloned().unwrap_or_default();
    props.remove("project");
    props.remove("stages");
    stage.insert("properties".into(), props.into());
    root["$defs"]["Stage"] = stage.into();
    root["properties"]["stages"] = serde_json::json!({
        "description": "Stage name -> overrides of any top-level key (except `project` and `stages`).",
        "type": "object",
        "propertyNames": { "pattern": "^[a-z][a-z0-9]*$", "maxLength": 20 },
        "additionalProperties": { "anyOf": [ { "$ref": "#/$defs/Stage" }, { "type": "null" } ] }
    });
    root["required"] = serde_json::json!(["project"]);
    root
}
