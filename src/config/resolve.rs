//! From the validated layers to one concrete, fully defaulted configuration per stage.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use super::diag::Report;
use super::load::{self, did_you_mean, ConfigError, ConfigFile};
use super::model::{Architecture, CredentialsMode, ExecutionLogging, IpAddressType, Layer, Merge};
use super::rules::{self, Checker};
use crate::secret::SigningSecrets;

/// The function environment's names for the signing secrets (read by `lambdas/common`).
pub(crate) const FUNCTION_ENV_SIGNING_SECRET: &str = "WSDEPLOY_SIGNING_SECRET";
/// The API id and stage the functions serve: they refuse events that name others. The id is known only once the
/// API exists, so `up` adds it when it creates or updates a function, and `dev` gives its own.
pub(crate) const FUNCTION_ENV_API_ID: &str = "WSDEPLOY_API_ID";
pub(crate) const FUNCTION_ENV_STAGE: &str = "WSDEPLOY_STAGE";
/// `dev` only: its `@connections` endpoint, which the functions call instead of the API's execute-api host.
pub(crate) const FUNCTION_ENV_MANAGEMENT_ENDPOINT: &str = "WSDEPLOY_MANAGEMENT_ENDPOINT";
pub(crate) const FUNCTION_ENV_SIGNING_SECRET_PREVIOUS: &str = "WSDEPLOY_SIGNING_SECRET_PREVIOUS";
/// `auth_timeout_s`: the connect function then registers a socket without a token as pending on `$connect`.
pub(crate) const FUNCTION_ENV_AUTH_TIMEOUT_S: &str = "WSDEPLOY_AUTH_TIMEOUT_S";
/// The bundled function that authenticates sockets.
pub(crate) const CONNECT_FUNCTION: &str = "connect";

/// `wsdeploy dev` runs this stage: implicit, never deployed.
pub(crate) const LOCAL_STAGE: &str = "local";
/// The stage of a file that declares no `stages`.
pub(crate) const DEFAULT_STAGE: &str = "dev";

/// What the command line and the environment override.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--region`, else `AWS_REGION`.
    pub region: Option<String>,
}

/// A config file that passed every check, with each stage resolved.
#[derive(Debug)]
pub struct Config {
    pub file: ConfigFile,
    pub stages: BTreeMap<String, StageConfig>,
    /// Warnings for the whole file (errors make `load` fail).
    pub warnings: Report,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageConfig {
    pub project: String,
    pub stage: String,
    pub region: String,
    pub backend: BackendSettings,
    /// Route key -> bundled function name.
    pub routes: BTreeMap<String, String>,
    pub lambda: LambdaSettings,
    /// `ping` answered by the gateway itself (see `facts::HEARTBEAT_ACTION`).
    pub heartbeat: bool,
    /// Seconds a socket has to authenticate before the backend closes it; with it, `routes` holds `$connect` on
    /// the connect function, which tells the backend of each pending socket.
    pub auth_timeout_s: Option<u32>,
    /// The bundled fan-out function is deployed, and the backend may invoke it.
    pub fanout: bool,
    pub throttle: ThrottleSettings,
    pub credentials: CredentialsMode,
    /// Who may connect: IPv4 clients, or IPv4 and IPv6 (the API's endpoint and its domain).
    pub ip_address_type: IpAddressType,
    pub env: EnvSettings,
    pub tags: BTreeMap<String, String>,
    pub dev: DevSettings,
    /// The traffic the config expects, for `plan`'s cost row; both numbers given, or none.
    pub expect: Option<ExpectedLoad>,
    pub logs: LogSettings,
    pub domain: Option<DomainSettings>,
}

/// The stage's own domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainSettings {
    pub name: String,
    pub certificate_arn: Option<String>,
    pub hosted_zone_id: Option<String>,
}

/// API Gateway's logs of the stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogSettings {
    pub access: bool,
    pub execution: ExecutionLogging,
    pub retention_days: u32,
}

impl LogSettings {
    /// Whether the stage logs at all, and so needs API Gateway's CloudWatch role in the account.
    pub fn any(&self) -> bool {
        self.access || self.execution != ExecutionLogging::Off
    }

    /// Access logs on, execution logs off, kept as long as the functions' logs.
    fn of(g: Option<&super::model::Logs>, lambda: &super::model::Lambda) -> LogSettings {
        let g = g.cloned().unwrap_or_default();
        LogSettings {
            access: g.access.unwrap_or(true),
            execution: g.execution.unwrap_or(ExecutionLogging::Off),
            retention_days: g.retention_days.or(lambda.log_retention_days).unwrap_or(14),
        }
    }
}

/// `expect:` with its default message size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ExpectedLoad {
    pub connections: f64,
    pub messages_per_minute: f64,
    pub message_kb: f64,
}

/// What `wsdeploy dev` runs beside the gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DevSettings {
    pub command: Option<String>,
    /// Where the command runs: the config file's folder unless `dev.dir` says otherwise.
    pub dir: PathBuf,
    pub open: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendSettings {
    /// Without a trailing '/': paths are appended to it.
    pub url: String,
    pub connect_path: String,
    pub disconnect_path: String,
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LambdaSettings {
    pub architecture: Architecture,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub log_retention_days: u32,
    pub env_key: EnvKey,
    pub reserved_concurrency: Option<u32>,
}

/// Stage-wide throttling, requests per second and at once, and the routes' own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThrottleSettings {
    pub rate: f64,
    pub burst: u32,
    /// Route key -> (rate, burst), both always set: a route's setting without a burst would take API Gateway's
    /// default, not the stage's.
    pub routes: BTreeMap<String, (f64, u32)>,
}

/// The KMS key that encrypts the functions' environment (`lambda.env_key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnvKey {
    /// A key of the stage's own, created by `up` and scheduled for deletion by `teardown`.
    Stage,
    /// Lambda's AWS-managed key.
    AwsManaged,
    /// A key of the user's, by ARN.
    Arn(String),
}

impl EnvKey {
    /// The region of a given key's ARN.
    pub fn region(&self) -> Option<&str> {
        match self {
            EnvKey::Arn(arn) => arn.split(':').nth(3),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EnvSettings {
    pub frontend: Option<FrontendEnvSettings>,
    pub backend: Option<BackendEnvSettings>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrontendEnvSettings {
    pub file: PathBuf,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendEnvSettings {
    pub file: PathBuf,
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub signing_secret: String,
    pub fanout_function: String,
}

impl BackendEnvSettings {
    /// `dev` only: where its Lambda Invoke API is, for the backend's Lambda client (`{fanout_function}_ENDPOINT`).
    pub fn fanout_endpoint(&self) -> String {
        format!("{}_ENDPOINT", self.fanout_function)
    }

    /// The variable that records whose signing secret the file holds (`{signing_secret}_STAGE`).
    pub fn signing_secret_stage(&self) -> String {
        format!("{}_STAGE", self.signing_secret)
    }

    /// The variable that holds the previous signing secret while a rotation rolls out (`{signing_secret}_PREVIOUS`).
    pub fn signing_secret_previous(&self) -> String {
        format!("{}_PREVIOUS", self.signing_secret)
    }
}

impl Config {
    /// Reads, checks and resolves every stage. Any error fails the whole file: nothing is deployed from a file
    /// that is wrong somewhere, even in a stage not being deployed.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let (file, report) = load::read(path)?;
        Self::check(file, report, overrides)
    }

    pub fn from_source(
        path: &Path,
        source: String,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let (file, report) = load::parse(path, source);
        Self::check(file, report, overrides)
    }

    fn check(
        file: ConfigFile,
        mut report: Report,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        if let Some(r) = &overrides.region {
            if !rules::is_region(r) {
                return Err(ConfigError::Stage(format!(
                    "the region `{r}` given by --region or AWS_REGION is not an AWS region name; use a code such as eu-west-3"
                )));
            }
        }
        let mut stages = BTreeMap::new();
        // Syntax errors and a wrongly shaped root leave nothing to check; dropped values are skipped by the checker.
        let usable = !report.errors().any(|d| d.path.is_empty());
        if usable {
            let mut checker = Checker::new(&file);
            checker.layer(&[], &file.layer);
            for (name, layer) in declared_stages(&file.layer) {
                if let Some(layer) = layer {
                    checker.layer(&["stages".into(), name.clone()], layer);
                }
            }
            for (name, _) in declared_stages(&file.layer) {
                if let Some(stage) = resolve(&mut checker, &name, overrides) {
                    stages.insert(name, stage);
                }
            }
            warn_shared_backend_files(&mut checker, &stages);
            refuse_too_many_tags(&mut checker, &stages);
            refuse_oversized_environments(&mut checker, &stages);
            refuse_shared_domains(&mut checker, &stages);
            report.diagnostics.extend(checker.out);
        }
        report.normalize();
        if report.has_errors() {
            return Err(ConfigError::Invalid(Box::new(report)));
        }
        Ok(Config {
            file,
            stages,
            warnings: report,
        })
    }

    /// The stage asked for, or the only one. `local` is `wsdeploy dev`'s and may not be deployed.
    pub fn stage(&self, requested: Option<&str>) -> Result<&StageConfig, ConfigError> {
        let names: Vec<&str> = self.stages.keys().map(String::as_str).collect();
        match requested {
            Some(LOCAL_STAGE) => Err(ConfigError::Stage(format!(
                "the stage `{LOCAL_STAGE}` is the one `wsdeploy dev` runs on this machine; it is never deployed. Pick another with -s/--stage"
            ))),
            Some(name) => self.stages.get(name).ok_or_else(|| {
                let hint = match did_you_mean(name, names.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`? "),
                    None => String::new(),
                };
                ConfigError::Stage(format!(
                    "{} has no stage `{name}`; {hint}its stages are: {}. Add it under `stages:` or pick one of those",
                    self.file.path.display(),
                    names.join(", ")
                ))
            }),
            None => {
                let deployable: Vec<&StageConfig> = self.stages.values().filter(|s| s.stage != LOCAL_STAGE).collect();
                match deployable.as_slice() {
                    [only] => Ok(only),
                    _ => Err(ConfigError::Stage(format!(
                        "{} has several stages ({}): pick one with -s/--stage or WSDEPLOY_STAGE",
                        self.file.path.display(),
                        names.join(", ")
                    ))),
                }
            }
        }
    }

    /// The stage `wsdeploy dev` runs: the top level with `stages.local` over it, if the file has one.
    pub fn local_stage(&self) -> StageConfig {
        if let Some(s) = self.stages.get(LOCAL_STAGE) {
            return s.clone();
        }
        let mut checker = Checker::new(&self.file);
        let overrides = Overrides { region: None };
        resolve_layer(
            &mut checker,
            LOCAL_STAGE,
            self.file.layer.clone(),
            &overrides,
            true,
        )
        .expect("the top level was checked when the file was loaded")
    }
}

/// Deployed stages that write their secrets into one backend env file: each `up` would replace the other's key
/// and signing secret, and the backends of both would trust whichever came last.
fn warn_shared_backend_files(checker: &mut Checker<'_>, stages: &BTreeMap<String, StageConfig>) {
    let mut by_file: BTreeMap<&Path, Vec<&str>> = BTreeMap::new();
    for s in stages.values().filter(|s| s.stage != LOCAL_STAGE) {
        if let Some(b) = &s.env.backend {
            by_file.entry(b.file.as_path()).or_default().push(&s.stage);
        }
    }
    for (file, names) in by_file.into_iter().filter(|(_, n)| n.len() > 1) {
        let last = names[names.len() - 1];
        checker.warn(
            origin(checker.file, last, &["env", "backend", "file"]),
            format!(
                "stages {} write their keys and signing secret to the same file, {}",
                names.join(" and "),
                file.display()
            ),
            format!("give each deployed stage its own file, e.g. stages.{last}.env.backend.file: .env.{last}: a stage's secrets are its own"),
        );
    }
}

/// IAM, Lambda, CloudWatch Logs, KMS and API Gateway each take at most 50 tags on a resource, and wsdeploy adds its
/// own two (`wsdeploy:project`, `wsdeploy:stage`) to the config's.
fn refuse_too_many_tags(checker: &mut Checker<'_>, stages: &BTreeMap<String, StageConfig>) {
    for s in stages.values().filter(|s| s.stage != LOCAL_STAGE) {
        let total = s.tags.len() + crate::facts::WSDEPLOY_TAGS;
        if total > crate::facts::MAX_TAGS {
            checker.error(
                origin(checker.file, &s.stage, &["tags"]),
                format!(
                    "stage {} would carry {total} tags ({} here and wsdeploy's {}), and AWS takes at most {} on a resource",
                    s.stage,
                    s.tags.len(),
                    crate::facts::WSDEPLOY_TAGS,
                    crate::facts::MAX_TAGS
                ),
                format!(
                    "keep at most {} tags in the config",
                    crate::facts::MAX_TAGS - crate::facts::WSDEPLOY_TAGS
                ),
            );
        }
    }
}

/// The functions' environment must fit Lambda's 4 KB, counted with two signing secrets of the length `up`
/// generates (a rotation carries the previous one too). Only the backend's URL and paths can grow it, so the error
/// is at the longest of them.
fn refuse_oversized_environments(
    checker: &mut Checker<'_>,
    stages: &BTreeMap<String, StageConfig>,
) {
    let secret = "x".repeat(crate::secret::MIN_SIGNING_SECRET_LEN);
    let signing = SigningSecrets {
        current: secret.clone(),
        previous: Some(secret),
    };
    for s in stages.values().filter(|s| s.stage != LOCAL_STAGE) {
        let size: usize = s
            .function_env(CONNECT_FUNCTION, &signing)
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if size <= crate::facts::LAMBDA_ENV_BYTES {
            continue;
        }
        let b = &s.backend;
        let (key, longest) = [
            ("url", &b.url),
            ("connect_path", &b.connect_path),
            ("disconnect_path", &b.disconnect_path),
        ]
        .into_iter()
        .max_by_key(|(_, v)| v.len())
        .expect("three candidates");
        checker.error(
            origin(checker.file, &s.stage, &["backend", key]),
            format!(
                "the functions' environment of stage {} would be {size} bytes, over Lambda's {} for all of a function's variables",
                s.stage,
                crate::facts::LAMBDA_ENV_BYTES
            ),
            format!(
                "shorten backend.{key} ({} characters): it goes into every function's environment",
                longest.len()
            ),
        );
    }
}

/// A domain maps to one stage: a second stage's `up` would take it over.
fn refuse_shared_domains(checker: &mut Checker<'_>, stages: &BTreeMap<String, StageConfig>) {
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in stages.values().filter(|s| s.stage != LOCAL_STAGE) {
        if let Some(d) = &s.domain {
            by_name.entry(d.name.as_str()).or_default().push(&s.stage);
        }
    }
    for (name, stages) in by_name.into_iter().filter(|(_, s)| s.len() > 1) {
        let last = stages[stages.len() - 1];
        checker.error(
            origin(checker.file, last, &["domain", "name"]),
            format!("stages {} ask for the same domain, {name}", stages.join(" and ")),
            format!("a domain serves one stage: give each its own (stages.{last}.domain.name: {last}.{name}), or set `domain` only under the stage that has it"),
        );
    }
}

fn declared_stages(top: &Layer) -> Vec<(String, Option<&Layer>)> {
    match &top.stages {
        Some(stages) if !stages.is_empty() => stages
            .iter()
            .map(|(k, v)| (k.clone(), v.as_ref()))
            .collect(),
        _ => vec![(DEFAULT_STAGE.to_string(), None)],
    }
}

fn resolve(checker: &mut Checker<'_>, stage: &str, overrides: &Overrides) -> Option<StageConfig> {
    let top = checker.file.layer.clone();
    let over = top
        .stages
        .as_ref()
        .and_then(|s| s.get(stage))
        .cloned()
        .flatten()
        .unwrap_or_default();
    let merged = Layer {
        stages: None,
        ..top
    }
    .merge(Layer {
        project: None,
        stages: None,
        ..over
    });
    resolve_layer(checker, stage, merged, overrides, stage == LOCAL_STAGE)
}

/// Where a stage-level problem with the key `rel` is reported: where the value comes from, the stage's override
/// if it has one, else the top level.
fn origin(file: &ConfigFile, stage: &str, rel: &[&str]) -> Vec<String> {
    let in_stage: Vec<String> = ["stages", stage]
        .iter()
        .chain(rel)
        .map(std::string::ToString::to_string)
        .collect();
    if file.positions.contains(&in_stage) {
        in_stage
    } else {
        rel.iter().map(std::string::ToString::to_string).collect()
    }
}

/// Applies defaults and the checks that need the whole stage; `None` if something required is missing.
fn resolve_layer(
    checker: &mut Checker<'_>,
    stage: &str,
    l: Layer,
    overrides: &Overrides,
    local: bool,
) -> Option<StageConfig> {
    let file = checker.file;
    let origin = |rel: &[&str]| origin(file, stage, rel);
    let project = l.project.clone();
    if project.is_none() {
        checker.error(
            vec!["project".into()],
            "`project` is not set",
            "add a line `project: my-app` at the top level: it prefixes every resource name",
        );
    }
    // dev needs no real region, but the backend's SDK client still wants one.
    let region = overrides
        .region
        .clone()
        .or(l.region.clone())
        .or_else(|| local.then(|| "us-east-1".to_string()));
    if region.is_none() {
        checker.error(origin(&["region"]), format!("no region for stage `{stage}`"), "add `region: eu-west-3` (or your region) at the top level or in the stage, or set AWS_REGION");
    }
    let b = l.backend.clone().unwrap_or_default();
    let url = backend_url(
        checker,
        stage,
        b.url.as_deref(),
        (local, b.allow_http.unwrap_or(false)),
        &origin,
    );
    let lambda = l.lambda.clone().unwrap_or_default();
    let timeout_s = lambda.timeout_s.unwrap_or(10);
    let timeout_ms = b.timeout_ms.unwrap_or(5000);
    if timeout_ms >= u64::from(timeout_s) * 1000
        && crate::facts::LAMBDA_TIMEOUT_S.contains(&timeout_s)
    {
        checker.error(
            origin(&["backend", "timeout_ms"]),
            format!("the backend timeout ({timeout_ms} ms) is not shorter than the Lambda timeout ({timeout_s} s)"),
            "the Lambda must outlive its backend call to report a slow backend: lower backend.timeout_ms or raise lambda.timeout_s",
        );
    }
    let mut routes = l.routes.clone().unwrap_or_else(default_routes);
    let heartbeat = l.heartbeat.unwrap_or(true);
    check_routes(checker, &routes, heartbeat, &origin);
    let auth_timeout_s = auth_timeout(checker, l.auth_timeout_s, &mut routes, &origin);
    let throttle = ThrottleSettings::of(l.throttle.as_ref());
    let expect = expected_load(checker, l.expect.as_ref(), &origin);
    check_route_throttles(checker, &throttle, &routes, heartbeat, &origin);
    let env = resolve_env(checker, &l, &origin);
    let logs = LogSettings::of(l.logs.as_ref(), &lambda);
    let domain = domain(checker, l.domain.as_ref(), region.as_deref(), &origin);
    let env_key = env_key(
        checker,
        lambda.env_key.as_deref(),
        region.as_deref(),
        &origin,
    );
    Some(StageConfig {
        project: project?,
        stage: stage.to_string(),
        region: region?,
        backend: BackendSettings {
            url: url?.as_str().trim_end_matches('/').to_string(),
            connect_path: b
                .connect_path
                .unwrap_or_else(|| "/socket-connections".into()),
            disconnect_path: b
                .disconnect_path
                .unwrap_or_else(|| "/socket-connections/{connectionId}".into()),
            timeout_ms,
        },
        routes,
        lambda: LambdaSettings {
            architecture: lambda.architecture.unwrap_or(Architecture::Arm64),
            memory_mb: lambda.memory_mb.unwrap_or(128),
            timeout_s,
            log_retention_days: lambda.log_retention_days.unwrap_or(14),
            env_key,
            reserved_concurrency: lambda.reserved_concurrency,
        },
        heartbeat,
        auth_timeout_s,
        fanout: l.fanout.unwrap_or(false),
        throttle,
        credentials: l.credentials.unwrap_or(CredentialsMode::IamUser),
        ip_address_type: l.ip_address_type.unwrap_or_default(),
        env,
        tags: l.tags.clone().unwrap_or_default(),
        expect,
        logs,
        domain,
        dev: {
            let d = l.dev.clone().unwrap_or_default();
            let base = checker.file.dir.clone();
            DevSettings {
                command: d.command,
                dir: normalize(&d.dir.map_or(base.clone(), |sub| base.join(sub))),
                open: d.open,
            }
        },
    })
}

/// `lambda.env_key`, checked against the stage's region: Lambda takes a key from the function's region only.
fn env_key(
    checker: &mut Checker<'_>,
    raw: Option<&str>,
    region: Option<&str>,
    origin: &dyn Fn(&[&str]) -> Vec<String>,
) -> EnvKey {
    let at = || origin(&["lambda", "env_key"]);
    match raw.map(rules::parse_env_key) {
        None => EnvKey::Stage,
        Some(Err((message, help))) => {
            checker.error(at(), message, help);
            EnvKey::Stage
        }
        Some(Ok(key)) => {
            if let (Some(theirs), Some(ours)) = (key.region(), region) {
                if theirs != ours {
                    checker.error(
                        at(),
                        format!("the key is in {theirs}, the stage in {ours}"),
                        "Lambda only takes a key from the function's own region: give a key of that region, or `stage`",
                    );
                }
            }
            key
        }
    }
}

/// `domain:` with its name given; its certificate, if given, in the stage's region (a regional domain name takes
/// only a certificate of its own region:
/// <https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-regional-api-custom-domain-create.html>).
fn domain(
    checker: &mut Checker<'_>,
    d: Option<&super::model::Domain>,
    region: Option<&str>,
    origin: &dyn Fn(&[&str]) -> Vec<String>,
) -> Option<DomainSettings> {
    let d = d?;
    let Some(name) = d.name.clone() else {
        checker.error(
            origin(&["domain"]),
            "`domain` has no `name`",
            "add `name: ws.example.com` (the host clients connect to), or remove `domain`",
        );
        return None;
    };
    if let (Some(arn), Some(ours)) = (&d.certificate_arn, region) {
        if let Some(theirs) = arn.split(':').nth(3).filter(|r| *r != ours) {
            checker.error(
                origin(&["domain", "certificate_arn"]),
                format!("the certificate is in {theirs}, the stage in {ours}"),
                format!("a regional API Gateway domain takes a certificate of its own region: request one in {ours} (`aws acm request-certificate --region {ours} --domain-name {name} --validation-method DNS`)"),
            );
        }
    }
    Some(DomainSettings {
        name,
        certificate_arn: d.certificate_arn.clone(),
        hosted_zone_id: d.hosted_zone_id.clone(),
    })
}

impl ThrottleSettings {
    fn of(t: Option<&super::model::Throttle>) -> ThrottleSettings {
        let t = t.cloned().unwrap_or_default();
        let rate = t.rate.unwrap_or(DEFAULT_THROTTLE.rate);
        let burst = t.burst.unwrap_or(DEFAULT_THROTTLE.burst);
        let routes = t
            .routes
            .unwrap_or_default()
            .into_iter()
            .map(|(key, r)| (key, (r.rate.unwrap_or(rate), r.burst.unwrap_or(burst))))
            .collect();
        ThrottleSettings {
            rate,
            burst,
            routes,
        }
    }
}

/// A small app's traffic with room to spare: far below API Gateway's account defaults (10,000 per second, 5,000 at
/// once), which a single flooding client could otherwise use up for every API in the account.
pub(crate) const DEFAULT_THROTTLE: ThrottleSettings = ThrottleSettings {
    rate: 100.0,
    burst: 200,
    routes: BTreeMap::new(),
};

pub(crate) fn default_routes() -> BTreeMap<String, String> {
    [("auth", "connect"), ("$disconnect", "disconnect")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

/// The stage's backend URL, which must be set and, outside `dev`, reachable from AWS, and not in cleartext
/// unless the config says so (`allow_http`): the functions' calls carry the user's token.
fn backend_url(
    checker: &mut Checker<'_>,
    stage: &str,
    url: Option<&str>,
    (local, allow_http): (bool, bool),
    origin: &dyn Fn(&[&str]) -> Vec<String>,
) -> Option<url::Url> {
    let Some(given) = url else {
        checker.error(
            origin(&["backend", "url"]),
            format!("no backend URL for stage `{stage}`"),
            "set backend.url to where the Lambdas reach your backend, e.g. https://api.example.com",
        );
        return None;
    };
    let parsed = rules::check_backend_url(given).ok()?;
    if is_local(&parsed) && !local {
        checker.warn(
            origin(&["backend", "url"]),
            format!("stage `{stage}` sends the Lambdas to {given}, which they cannot reach from AWS"),
            format!("override it for this stage: stages.{stage}.backend.url: https://your-public-backend"),
        );
    } else if parsed.scheme() == "http" && !local && !allow_http {
        checker.error(
            origin(&["backend", "url"]),
            format!("stage `{stage}` would send users' tokens to {given} in cleartext"),
            "use https://, or set backend.allow_http: true if every network between the functions and the backend is yours",
        );
    }
    Some(parsed)
}

/// At least one route, and a `$disconnect` one unless the app really wants no word of closed sockets.
fn check_routes(
    checker: &mut Checker<'_>,
    routes: &BTreeMap<String, String>,
    heartbeat: bool,
    origin: &dyn Fn(&[&str]) -> Vec<String>,
) {
    let ping = crate::facts::HEARTBEAT_ACTION;
    if heartbeat && routes.contains_key(ping) {
        checker.error(
            origin(&["routes", ping]),
            format!("the route `{ping}` is the heartbeat's, answered by API Gateway itself"),
            "rename your route, or set `heartbeat: false` to send it to a function",
        );
    }
    if routes.is_empty() {
        checker.error(
            origin(&["routes"]),
            "no routes are configured",
            "add at least `auth: connect` and `$disconnect: disconnect`",
        );
    } else if !routes.contains_key("$disconnect") {
        checker.warn(
            origin(&["routes"]),
            "no `$disconnect` route: your backend is never told when a socket closes",
            "add `$disconnect: disconnect`",
        );
    }
}

/// `auth_timeout_s`: in range, for sockets that authenticate by message, and then `$connect` goes to the connect
/// function, which registers each socket as pending with the backend (API Gateway has no timer of its own for
/// this, and the heartbeat keeps an unauthenticated socket open for up to 2 hours).
fn auth_timeout(
    checker: &mut Checker<'_>,
    timeout: Option<u32>,
    routes: &mut BTreeMap<String, String>,
    origin: &dyn Fn(&[&str]) -> Vec<String>,
) -> Option<u32> {
    let timeout = timeout?;
    let max = crate::facts::MAX_CONNECTION_S as u32;
    if !(1..=max).contains(&timeout) {
        checker.error(
            origin(&["auth_timeout_s"]),
            format!("{timeout} s is outside 1 to {max} seconds (API Gateway closes every socket after 2 hours)"),
            "set a few seconds more than your page needs to send its `auth` message, e.g. 30",
        );
        return None;
    }
    let by_message = routes
        .iter()
        .any(|(k, f)| f == CONNECT_FUNCTION && k != "$connect");
    match routes.get("$connect").map(String::as_str) {
        Some(CONNECT_FUNCTION) => checker.error(
            origin(&["auth_timeout_s"]),
            "sockets already authenticate on `$connect` (`?token=` on the URL); this is for sockets that authenticate by message",
            "remove auth_timeout_s: a socket without a valid token is refused at the handshake",
        ),
        Some(other) => checker.error(
            origin(&["routes", "$connect"]),
            format!("`$connect` goes to `{other}`, but auth_timeout_s needs it for the connect function"),
            "remove the `$connect` route (wsdeploy adds it), or remove auth_timeout_s",
        ),
        None if !by_message => checker.error(
            origin(&["auth_timeout_s"]),
            "no route goes to the connect function, so no socket could authenticate in time",
            "add `auth: connect` to routes, or remove auth_timeout_s",
        ),
        None => {
            routes.insert("$connect".into(), CONNECT_FUNCTION.into());
            return Some(timeout);
        }
    }
    None
}

/// `expect:`, for the cost row of `plan`: both numbers, or it is no load.
fn expected_load(
    checker: &mut Checker<'_>,
    e: Option<&super::model::Expect>,
    origin: &dyn Fn(&[&str]) -> Vec<String>,
) -> Option<ExpectedLoad> {
    let e = e?;
    let (Some(connections), Some(messages_per_minute)) = (e.connections, e.messages_per_minute)
    else {
        checker.error(
            origin(&["expect"]),
            "`expect` needs both `connections` and `messages_per_minute`",
            "e.g. expect: { connections: 1000, messages_per_minute: 600 }",
        );
        return None;
    };
    Some(ExpectedLoad {
        connections,
        messages_per_minute,
        message_kb: e.message_kb.unwrap_or(1.0),
    })
}

/// A route's throttle must name one of the stage's routes: API Gateway refuses settings for a route it does not
/// have ("Unable to find Route by key ... within the provided RouteSettings").
fn check_route_throttles(
    checker: &mut Checker<'_>,
    throttle: &ThrottleSettings,
    routes: &BTreeMap<String, String>,
    heartbeat: bool,
    origin: &dyn Fn(&[&str]) -> Vec<String>,
) {
    let ping = crate::facts::HEARTBEAT_ACTION;
    for key in throttle.routes.keys() {
        let is_route = routes.contains_key(key) || (heartbeat && key == ping);
        if !is_route {
            let known: Vec<&str> = routes.keys().map(String::as_str).collect();
            checker.error(
                origin(&["throttle", "routes", key]),
                format!("`{key}` is not a route of this stage"),
                format!("throttle one of its routes: {}", known.join(", ")),
            );
        }
    }
}

fn resolve_env(
    checker: &mut Checker<'_>,
    l: &Layer,
    origin: &dyn Fn(&[&str]) -> Vec<String>,
) -> EnvSettings {
    let dir = checker.file.dir.clone();
    let env = l.env.clone().unwrap_or_default();
    let frontend = env.frontend.and_then(|f| {
        if let Some(file) = f.file {
            Some(FrontendEnvSettings {
                file: normalize(&dir.join(file)),
                url: f.url.unwrap_or_else(|| "VITE_WS_URL".into()),
            })
        } else {
            checker.error(
                origin(&["env", "frontend"]),
                "env.frontend has no `file`",
                "add `file: ../frontend/.env` (relative to this file), or remove env.frontend",
            );
            None
        }
    });
    let backend = env.backend.and_then(|b| {
        if let Some(file) = b.file {
            Some(BackendEnvSettings {
                file: normalize(&dir.join(file)),
                endpoint: b.endpoint.unwrap_or_else(|| "WS_API_ENDPOINT".into()),
                region: b.region.unwrap_or_else(|| "WS_API_REGION".into()),
                access_key_id: b
                    .access_key_id
                    .unwrap_or_else(|| "WS_API_ACCESS_KEY_ID".into()),
                secret_access_key: b
                    .secret_access_key
                    .unwrap_or_else(|| "WS_API_SECRET_ACCESS_KEY".into()),
                signing_secret: b
                    .signing_secret
                    .unwrap_or_else(|| "WS_SIGNING_SECRET".into()),
                fanout_function: b
                    .fanout_function
                    .unwrap_or_else(|| "WS_FANOUT_FUNCTION".into()),
            })
        } else {
            checker.error(
                origin(&["env", "backend"]),
                "env.backend has no `file`",
                "add `file: ../backend/.env` (relative to this file), or remove env.backend",
            );
            None
        }
    });
    if let Some(b) = &backend {
        let vars = [
            ("endpoint", &b.endpoint),
            ("region", &b.region),
            ("access_key_id", &b.access_key_id),
            ("secret_access_key", &b.secret_access_key),
            ("signing_secret", &b.signing_secret),
            ("fanout_function", &b.fanout_function),
        ];
        for (i, (key, name)) in vars.iter().enumerate() {
            if let Some((other, _)) = vars[..i].iter().find(|(_, n)| n == name) {
                checker.error(
                    origin(&["env", "backend", key]),
                    format!("`{name}` is already used for env.backend.{other}"),
                    "give every value its own variable name",
                );
            }
        }
        if let Some(f) = &frontend {
            if f.file == b.file {
                checker.error(
                    origin(&["env", "frontend", "file"]),
                    "the frontend and the backend use the same env file",
                    "the backend's file receives secrets, and a frontend's env is shipped to browsers: give each its own file",
                );
            }
        }
    }
    EnvSettings { frontend, backend }
}

/// `a/b/../c` -> `a/c` without touching the filesystem (the file may not exist yet).
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            c => out.push(c),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Whether a URL points at this machine, which the deployed functions cannot reach and `dev.command` serves.
pub(crate) fn is_local(url: &url::Url) -> bool {
    matches!(
        url.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "0.0.0.0")
    )
}

/// Whether a route's answer goes back to the client: the routes `connect` serves, except the two API Gateway
/// calls on its own (`$connect`'s answer is the handshake, `$disconnect` has nobody to answer).
pub(crate) fn replies(route_key: &str, function: &str) -> bool {
    function == CONNECT_FUNCTION && route_key != "$connect" && route_key != "$disconnect"
}

/// Resource names of one stage: the one place they are made, for `up`, `plan`, `teardown` and the reads of what
/// exists. Every name starts with `{project}-{stage}`, which is how resources are found again.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Names {
    pub prefix: String,
    #[serde(skip)]
    pub stage: String,
    pub api: String,
    /// The functions' role.
    pub role: String,
    /// The role's inline policy (writing the functions' logs, decrypting their environment).
    #[serde(skip)]
    pub role_policy: String,
    /// The backend's IAM user (`credentials: iam-user`).
    pub user: String,
    /// The user's inline policy, or the managed policy (`credentials: policy`).
    pub policy: String,
    /// The alias of the stage's KMS key (`lambda.env_key: stage`), by which it is found again.
    pub env_key_alias: String,
    /// The log group of the API's access logs (`logs.access`).
    pub access_log_group: String,
    /// The project's permissions boundary: the managed policy every role and user wsdeploy makes carries, shared
    /// by the project's stages (so a stage's teardown leaves it).
    #[serde(skip)]
    pub boundary: String,
    /// The deploy role `wsdeploy bootstrap --github` makes for the project, shared by its stages.
    #[serde(skip)]
    pub deploy_role: String,
}

impl Names {
    /// The log group API Gateway creates for the stage's execution logs (it cannot be chosen).
    /// <https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-logging.html>
    pub fn execution_log_group(&self, api_id: &str) -> String {
        format!("API-Gateway-Execution-Logs_{api_id}/{}", self.stage)
    }

    /// A bundled function's name in this stage.
    pub fn function(&self, function: &str) -> String {
        format!("{}-{function}", self.prefix)
    }
}

/// The name of a project's permissions boundary policy. No stage's resource can take it: theirs are
/// `{project}-{stage}-{kind}`, and no kind is `boundary`.
fn boundary_name(project: &str) -> String {
    format!("{project}-wsdeploy-boundary")
}

/// The name of the project's deploy role (`wsdeploy bootstrap --github`); like the boundary's, no stage's can take it.
fn deploy_role_name(project: &str) -> String {
    format!("{project}-wsdeploy-deploy")
}

impl StageConfig {
    pub fn names(&self) -> Names {
        let prefix = format!("{}-{}", self.project, self.stage);
        Names {
            stage: self.stage.clone(),
            api: prefix.clone(),
            role: format!("{prefix}-lambda"),
            role_policy: format!("{prefix}-logs"),
            user: format!("{prefix}-backend"),
            policy: format!("{prefix}-manage-connections"),
            env_key_alias: format!("alias/wsdeploy/{prefix}"),
            access_log_group: format!("/aws/apigateway/{prefix}-access"),
            boundary: boundary_name(&self.project),
            deploy_role: deploy_role_name(&self.project),
            prefix,
        }
    }

    pub fn function_name(&self, function: &str) -> String {
        self.names().function(function)
    }

    /// The environment of a bundled function, on AWS and under `dev` alike (the names are the functions' contract,
    /// read in `lambdas/common`). The fan-out function calls no backend, so it gets neither its URL nor the
    /// signing secret.
    pub fn function_env(
        &self,
        function: &str,
        signing: &SigningSecrets,
    ) -> BTreeMap<String, String> {
        if function == super::rules::FANOUT_FUNCTION {
            return BTreeMap::from([(FUNCTION_ENV_STAGE.to_string(), self.stage.clone())]);
        }
        let b = &self.backend;
        let previous = signing
            .previous
            .clone()
            .map(|p| (FUNCTION_ENV_SIGNING_SECRET_PREVIOUS, p));
        [
            ("WSDEPLOY_BACKEND_URL", b.url.clone()),
            ("WSDEPLOY_CONNECT_PATH", b.connect_path.clone()),
            ("WSDEPLOY_DISCONNECT_PATH", b.disconnect_path.clone()),
            ("WSDEPLOY_BACKEND_TIMEOUT_MS", b.timeout_ms.to_string()),
            (FUNCTION_ENV_SIGNING_SECRET, signing.current.clone()),
            (FUNCTION_ENV_STAGE, self.stage.clone()),
        ]
        .into_iter()
        .chain(previous)
        .chain(
            self.auth_timeout_s
                .map(|t| (FUNCTION_ENV_AUTH_TIMEOUT_S, t.to_string())),
        )
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The fan-out function's name, when the stage has one (what the backend's env file names).
    pub fn fanout_function(&self) -> Option<String> {
        self.fanout
            .then(|| self.function_name(super::rules::FANOUT_FUNCTION))
    }

    /// The bundled functions this stage deploys, each once: its routes', and the fan-out function if asked for.
    pub fn functions(&self) -> Vec<String> {
        let fanout = self
            .fanout
            .then(|| super::rules::FANOUT_FUNCTION.to_string());
        let mut f: Vec<String> = self.routes.values().cloned().chain(fanout).collect();
        f.sort();
        f.dedup();
        f
    }
}
