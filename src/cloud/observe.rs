//! Reading what AWS holds for a stage, by deterministic names and tags (never a local state file), so a CI runner
//! with an empty disk sees exactly what a laptop sees.

use std::collections::BTreeMap;

use anyhow::Result;

use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{explain, optional, policy_json, Clients};
use crate::config::rules::BUNDLED_FUNCTIONS;
use crate::config::{Architecture, ExecutionLogging, Names};
use crate::deploy::state::{
    ApiObs, Caller, Desired, FunctionObs, IntegrationObs, KeyObs, LogGroupObs, Observed, PolicyObs,
    RoleObs, RouteObs, StageLogging, StageObs, Tags, UserObs, PERMISSION_SID,
};

/// Who the credentials belong to, and what the account holds for the stage. Every read starts at once; a read that
/// needs another's answer follows it inside its own branch (the managed policy's ARN needs the caller's account, an
/// API's execution log group its id), so the longest chain is the API's: the API, its routes, their responses.
pub(crate) async fn observe(c: &Clients, l: &Names) -> Result<(Caller, Observed)> {
    let policy = async {
        let caller = c.caller().await?;
        let arn = format!(
            "arn:{}:iam::{}:policy/{}",
            caller.partition.id, caller.account, l.policy
        );
        let boundary =
            crate::deploy::boundary::boundary_arn(&caller.partition, &caller.account, &l.boundary);
        let (policy, boundary) =
            tokio::try_join!(managed_policy(c, &arn), managed_policy(c, &boundary))?;
        Ok::<_, anyhow::Error>((caller, policy, boundary))
    };
    let apis = async {
        let found = apis(c, l).await?;
        let exec_logs = found
            .iter()
            .map(|a| l.execution_log_group(a.api_id().unwrap_or_default()));
        let details = futures_util::future::try_join_all(found.iter().map(|a| api_details(c, a)));
        tokio::try_join!(details, execution_log_groups(c, exec_logs))
    };
    // Without its alias, the key is searched for among the account's: a run may have stopped right after creating it (KMS has
    // no idempotent create), and a stage torn down less than 7 days ago left a key that can be restored.
    let env_key = async {
        Ok::<_, anyhow::Error>(match super::kms::find(&c.kms, l).await? {
            None => {
                let mut found = super::kms::find_unaliased(&c.kms, l)
                    .await?
                    .into_iter();
                (found.next(), found.collect())
            }
            found => (found, vec![]),
        })
    };
    let stage_logs = BUNDLED_FUNCTIONS
        .iter()
        .map(|f| Desired::log_group(&l.function(f)))
        .chain([l.access_log_group.clone()]);
    let (
        role,
        functions,
        (apis, api_logs),
        user,
        (caller, managed_policy, boundary),
        env_key,
        account,
        logs,
    ) = tokio::try_join!(
        role(c, l),
        functions(c, l),
        apis,
        user(c, l),
        policy,
        env_key,
        super::account::observe(c),
        log_groups(c, stage_logs),
    )?;
    let (env_key, stray_env_keys) = env_key;
    let log_groups = logs.into_iter().chain(api_logs).collect();
    let observed = Observed {
        role,
        functions,
        log_groups,
        apis,
        user,
        managed_policy,
        env_access_key_id: None,
        env_signing_secret: None,
        env_key,
        stray_env_keys,
        account_logging_role: account.0,
        account_role: account.1,
        boundary,
        domain: None,
        certificate: None,
        zone: None,
        record: None,
    };
    Ok((caller, observed))
}

fn tags_of(tags: &[aws_sdk_iam::types::Tag]) -> Tags {
    tags.iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn role(c: &Clients, l: &Names) -> Result<Option<RoleObs>> {
    let what = format!("read the IAM role {}", l.role);
    // Both at once: a missing role makes the policy read answer NotFound too.
    let policy = c
        .iam
        .get_role_policy()
        .role_name(&l.role)
        .policy_name(&l.role_policy)
        .send();
    let (out, policy) = tokio::join!(c.iam.get_role().role_name(&l.role).send(), policy);
    let Some(out) = optional(out, &what)? else {
        return Ok(None);
    };
    let Some(r) = out.role() else { return Ok(None) };
    let policy = optional(policy, &format!("{what}'s policy"))?
        .and_then(|p| policy_json(p.policy_document()));
    Ok(Some(RoleObs {
        tags: tags_of(r.tags()),
        trust: r
            .assume_role_policy_document()
            .and_then(policy_json)
            .unwrap_or_default(),
        policy,
        boundary: boundary_of(r.permissions_boundary()),
    }))
}

pub(crate) fn boundary_of(
    b: Option<&aws_sdk_iam::types::AttachedPermissionsBoundary>,
) -> Option<String> {
    b.and_then(|b| b.permissions_boundary_arn())
        .map(str::to_string)
}

async fn functions(c: &Clients, l: &Names) -> Result<BTreeMap<String, FunctionObs>> {
    let reads = BUNDLED_FUNCTIONS
        .iter()
        .map(|f| function(c, format!("{}-{f}", l.prefix)));
    let found = futures_util::future::try_join_all(reads).await?;
    Ok(found.into_iter().flatten().map(|f| (f.0, f.1)).collect())
}

async fn function(c: &Clients, name: String) -> Result<Option<(String, FunctionObs)>> {
    let what = format!("read the Lambda function {name}");
    let (out, policy) = tokio::join!(
        c.lambda.get_function().function_name(&name).send(),
        c.lambda.get_policy().function_name(&name).send()
    );
    let Some(out) = optional(out, &what)? else {
        return Ok(None);
    };
    let Some(cfg) = out.configuration() else {
        return Ok(None);
    };
    let arn = cfg.function_arn().unwrap_or_default().to_string();
    // GetFunction returns tags only to callers allowed lambda:ListTags and says nothing otherwise; asking ListTags
    // itself turns a missing permission into an error that names it, instead of "not this stage's"
    // (https://docs.aws.amazon.com/lambda/latest/api/API_GetFunction.html#API_GetFunction_ResponseSyntax).
    let tags = c
        .lambda
        .list_tags()
        .resource(&arn)
        .send()
        .await
        .map_err(|e| {
            explain(
                &format!("read the tags of {name} (this needs lambda:ListTags)"),
                e,
            )
        })?;
    let permission_source = optional(policy, &format!("{what}'s permissions"))?.and_then(|p| {
        p.policy()
            .and_then(|doc| permission_source(doc, PERMISSION_SID))
    });
    let architecture = cfg.architectures().first().and_then(|a| match a.as_str() {
        "arm64" => Some(Architecture::Arm64),
        "x86_64" => Some(Architecture::X86_64),
        _ => None,
    });
    let obs = FunctionObs {
        arn,
        memory_mb: cfg.memory_size().unwrap_or_default(),
        reserved: out
            .concurrency()
            .and_then(aws_sdk_lambda::types::Concurrency::reserved_concurrent_executions),
        timeout_s: cfg.timeout().unwrap_or_default(),
        architecture,
        runtime: cfg
            .runtime()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        handler: cfg.handler().unwrap_or_default().to_string(),
        role: cfg.role().unwrap_or_default().to_string(),
        env: environment(&name, cfg)?,
        kms_key_arn: cfg
            .kms_key_arn()
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        code_sha256: cfg.code_sha256().unwrap_or_default().to_string(),
        tags: tags
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        permission_source,
        broken: broken(cfg),
    };
    Ok(Some((name, obs)))
}

/// Why a function cannot run: its state is `Failed`, or its last update failed (the previous code and settings stay
/// live then, but the config's are not). `Pending` and `InProgress` pass by themselves and are not problems.
/// <https://docs.aws.amazon.com/lambda/latest/dg/functions-states.html>
fn broken(cfg: &aws_sdk_lambda::types::FunctionConfiguration) -> Option<String> {
    use aws_sdk_lambda::types::{LastUpdateStatus, State};
    if cfg.state() == Some(&State::Failed) {
        return Some(format!(
            "is Failed ({})",
            cfg.state_reason().unwrap_or("no reason given")
        ));
    }
    if cfg.last_update_status() == Some(&LastUpdateStatus::Failed) {
        return Some(format!(
            "failed its last update ({})",
            cfg.last_update_status_reason().unwrap_or("no reason given")
        ));
    }
    None
}

/// The function's environment. With a customer managed key, Lambda shows it only to callers allowed `kms:Decrypt`
/// on that key and otherwise answers with `Environment.Error` instead of the variables
/// (<https://docs.aws.amazon.com/lambda/latest/api/API_EnvironmentResponse.html>); taking that for "no variables"
/// would lose the deployed signing secret, so it is an error that says what to grant.
fn environment(
    name: &str,
    cfg: &aws_sdk_lambda::types::FunctionConfiguration,
) -> Result<BTreeMap<String, String>> {
    let Some(env) = cfg.environment() else {
        return Ok(BTreeMap::new());
    };
    if let Some(err) = env.error() {
        anyhow::bail!(
            "cannot read the environment of the function {name}: {}: {}. The identity running wsdeploy needs kms:Decrypt on the key {} (through Lambda) to read it: for the stage's own key, its key policy's {} statement gives that to the stage's deployers, and an account administrator can put that statement back (`aws kms put-key-policy`); for a key of yours, its key policy or your IAM policy must",
            err.error_code().unwrap_or("error"),
            err.message().unwrap_or("no reason given"),
            cfg.kms_key_arn().unwrap_or("that encrypts it"),
            crate::deploy::key_policy::SID_DEPLOYERS_THROUGH_LAMBDA,
        );
    }
    Ok(env
        .variables()
        .map(|v| v.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default())
}

/// The `AWS:SourceArn` condition of statement `sid` in a Lambda resource policy.
pub(crate) fn permission_source(policy: &str, sid: &str) -> Option<String> {
    let doc: serde_json::Value = serde_json::from_str(policy).ok()?;
    let statements = doc["Statement"].as_array()?;
    let s = statements.iter().find(|s| s["Sid"] == sid)?;
    s["Condition"]["ArnLike"]["AWS:SourceArn"]
        .as_str()
        .map(str::to_string)
}

/// Log groups by name: the functions', the access logs' and, for each of the stage's APIs, the execution logs'.
async fn log_groups(
    c: &Clients,
    names: impl Iterator<Item = String>,
) -> Result<BTreeMap<String, LogGroupObs>> {
    groups(c, names, true).await
}

/// The groups API Gateway makes for execution logs carry no tags of ours, and the deploy policy may not read them
/// (it cannot be scoped to this API's group): their tags are not read.
async fn execution_log_groups(
    c: &Clients,
    names: impl Iterator<Item = String>,
) -> Result<BTreeMap<String, LogGroupObs>> {
    groups(c, names, false).await
}

async fn groups(
    c: &Clients,
    names: impl Iterator<Item = String>,
    with_tags: bool,
) -> Result<BTreeMap<String, LogGroupObs>> {
    let reads = names.map(|name| log_group(c, name, with_tags));
    Ok(futures_util::future::try_join_all(reads)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// One log group by its exact name (listed by prefix, the only way CloudWatch Logs finds a name) and its tags.
async fn log_group(
    c: &Clients,
    name: String,
    with_tags: bool,
) -> Result<Option<(String, LogGroupObs)>> {
    let page = c
        .logs
        .describe_log_groups()
        .log_group_name_prefix(&name)
        .send()
        .await
        .map_err(|e| explain(&format!("read the log group {name}"), e))?;
    let Some(g) = page
        .log_groups()
        .iter()
        .find(|g| g.log_group_name() == Some(name.as_str()))
    else {
        return Ok(None);
    };
    let retention = g.retention_in_days();
    if !with_tags {
        let tags = Tags::new();
        return Ok(Some((name, LogGroupObs { retention, tags })));
    }
    let arn = g.log_group_arn().unwrap_or_default().trim_end_matches(":*");
    let tags = c
        .logs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| explain(&format!("read the tags of the log group {name}"), e))?;
    let tags = tags
        .tags()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(Some((name, LogGroupObs { retention, tags })))
}

/// The stage's APIs by name (more than one only after an interrupted run: the plan keeps the oldest).
async fn apis(c: &Clients, l: &Names) -> Result<Vec<aws_sdk_apigatewayv2::types::Api>> {
    let mut found = vec![];
    let mut token: Option<String> = None;
    loop {
        let page = c
            .apigw
            .get_apis()
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| explain("list the API Gateway APIs", e))?;
        for api in page.items() {
            if api.name() == Some(l.api.as_str()) {
                found.push(api.clone());
            }
        }
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(found)
}

async fn api_details(c: &Clients, api: &aws_sdk_apigatewayv2::types::Api) -> Result<ApiObs> {
    let id = api.api_id().unwrap_or_default().to_string();
    let what = |x: &str| format!("read the {x} of the API {id}");
    let (integrations, routes, stages) = tokio::try_join!(
        async {
            c.apigw
                .get_integrations()
                .api_id(&id)
                .max_results("500")
                .send()
                .await
                .map_err(|e| explain(&what("integrations"), e))
        },
        async {
            c.apigw
                .get_routes()
                .api_id(&id)
                .max_results("500")
                .send()
                .await
                .map_err(|e| explain(&what("routes"), e))
        },
        async {
            c.apigw
                .get_stages()
                .api_id(&id)
                .max_results("500")
                .send()
                .await
                .map_err(|e| explain(&what("stages"), e))
        },
    )?;
    let route_obs = routes.items().iter().map(|r| route(c, &id, r));
    let integration_obs = integrations.items().iter().map(|i| integration(c, &id, i));
    let (route_obs, integration_obs) = tokio::try_join!(
        futures_util::future::try_join_all(route_obs),
        futures_util::future::try_join_all(integration_obs)
    )?;
    Ok(ApiObs {
        endpoint: api.api_endpoint().map(str::to_string),
        route_selection: api
            .route_selection_expression()
            .unwrap_or_default()
            .to_string(),
        ip_address_type: api.ip_address_type().map(|t| t.as_str().to_string()),
        tags: api
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        created: api
            .created_date()
            .map(aws_smithy_types::DateTime::secs)
            .unwrap_or_default(),
        integrations: integration_obs,
        routes: route_obs,
        stages: stages
            .items()
            .iter()
            .map(|s| StageObs {
                name: s.stage_name().unwrap_or_default().into(),
                auto_deploy: s.auto_deploy() == Some(true),
                throttle: s
                    .default_route_settings()
                    .and_then(|r| Some((r.throttling_rate_limit()?, r.throttling_burst_limit()?))),
                route_throttle: s
                    .route_settings()
                    .into_iter()
                    .flatten()
                    .filter_map(|(key, r)| {
                        Some((
                            key.clone(),
                            (r.throttling_rate_limit()?, r.throttling_burst_limit()?),
                        ))
                    })
                    .collect(),
                logging: stage_logging(s),
                deployment_failure: super::apigw::failed_deployment_message(
                    s.last_deployment_status_message(),
                ),
            })
            .collect(),
        id,
    })
}

fn stage_logging(s: &aws_sdk_apigatewayv2::types::Stage) -> StageLogging {
    let access = s.access_log_settings().and_then(|a| {
        let arn = a.destination_arn().filter(|x| !x.is_empty())?;
        Some((
            arn.trim_end_matches(":*").to_string(),
            a.format().unwrap_or_default().to_string(),
        ))
    });
    let level = match s
        .default_route_settings()
        .and_then(|r| r.logging_level())
        .map(aws_sdk_apigatewayv2::types::LoggingLevel::as_str)
    {
        Some("ERROR") => ExecutionLogging::Error,
        Some("INFO") => ExecutionLogging::Info,
        _ => ExecutionLogging::Off,
    };
    StageLogging { access, level }
}

/// An integration, and for a MOCK (the heartbeat) the keys of its responses: without one, it answers nothing.
async fn integration(
    c: &Clients,
    api_id: &str,
    i: &aws_sdk_apigatewayv2::types::Integration,
) -> Result<IntegrationObs> {
    let id = i.integration_id().unwrap_or_default().to_string();
    let kind = i
        .integration_type()
        .map(|t| t.as_str().to_string())
        .unwrap_or_default();
    let responses = if kind == "MOCK" {
        c.apigw
            .get_integration_responses()
            .api_id(api_id)
            .integration_id(&id)
            .send()
            .await
            .map_err(|e| explain(&format!("read the responses of the integration {id}"), e))?
            .items()
            .iter()
            .filter_map(|r| r.integration_response_key().map(str::to_string))
            .collect()
    } else {
        vec![]
    };
    Ok(IntegrationObs {
        uri: i.integration_uri().unwrap_or_default().into(),
        id,
        kind,
        responses,
    })
}

/// A route, and the keys of its responses when its response selection is set: the selection alone does not prove
/// the response exists (a run may have stopped, or taken a conflict for "exists", between the two).
async fn route(
    c: &Clients,
    api_id: &str,
    r: &aws_sdk_apigatewayv2::types::Route,
) -> Result<RouteObs> {
    let id = r.route_id().unwrap_or_default().to_string();
    let key = r.route_key().unwrap_or_default().to_string();
    let selection = r.route_response_selection_expression().map(str::to_string);
    let responses = match &selection {
        None => vec![],
        Some(selected) => {
            let read = c
                .apigw
                .get_route_responses()
                .api_id(api_id)
                .route_id(&id)
                .send()
                .await;
            match read {
                Ok(out) => out
                    .items()
                    .iter()
                    .filter_map(|i| i.route_response_key().map(str::to_string))
                    .collect(),
                // An emulator without this call (moto answers a bare 500): the selection is all there is to go by.
                Err(e)
                    if e.code().is_none()
                        && e.raw_response()
                            .is_some_and(|r| r.status().is_server_error()) =>
                {
                    tracing::debug!(
                        "GetRouteResponses is not available; trusting the route's selection"
                    );
                    vec![selected.clone()]
                }
                Err(e) => {
                    return Err(explain(
                        &format!("read the responses of the route {key}"),
                        e,
                    ))
                }
            }
        }
    };
    Ok(RouteObs {
        id,
        key,
        target: r.target().map(str::to_string),
        response_selection: selection,
        responses,
    })
}

async fn user(c: &Clients, l: &Names) -> Result<Option<UserObs>> {
    let what = format!("read the IAM user {}", l.user);
    // All three at once: for a missing user the other two answer NotFound as well.
    let policy = c
        .iam
        .get_user_policy()
        .user_name(&l.user)
        .policy_name(&l.policy)
        .send();
    let keys = c.iam.list_access_keys().user_name(&l.user).send();
    let (out, policy, keys) =
        tokio::join!(c.iam.get_user().user_name(&l.user).send(), policy, keys);
    let Some(out) = optional(out, &what)? else {
        return Ok(None);
    };
    let Some(u) = out.user() else { return Ok(None) };
    let policy = optional(policy, &format!("{what}'s policy"))?
        .and_then(|p| policy_json(p.policy_document()));
    let Some(keys) = optional(keys, &format!("list the access keys of {}", l.user))? else {
        return Ok(None);
    };
    let mut keys: Vec<KeyObs> = keys
        .access_key_metadata()
        .iter()
        .map(|k| KeyObs {
            id: k.access_key_id().unwrap_or_default().to_string(),
            created: k
                .create_date()
                .map(aws_smithy_types::DateTime::secs)
                .unwrap_or_default(),
            active: k.status() != Some(&aws_sdk_iam::types::StatusType::Inactive),
        })
        .collect();
    keys.sort_by_key(|k| (k.created, k.id.clone()));
    Ok(Some(UserObs {
        tags: tags_of(u.tags()),
        policy,
        boundary: boundary_of(u.permissions_boundary()),
        keys,
    }))
}

pub(crate) async fn managed_policy(c: &Clients, arn: &str) -> Result<Option<PolicyObs>> {
    let what = format!("read the managed policy {arn}");
    let Some(out) = optional(c.iam.get_policy().policy_arn(arn).send().await, &what)? else {
        return Ok(None);
    };
    let tags = out.policy().map(|p| tags_of(p.tags())).unwrap_or_default();
    let default = out
        .policy()
        .and_then(|p| p.default_version_id())
        .unwrap_or("v1")
        .to_string();
    let version = c
        .iam
        .get_policy_version()
        .policy_arn(arn)
        .version_id(&default)
        .send()
        .await
        .map_err(|e| explain("read the managed policy's document", e))?;
    let document = version
        .policy_version()
        .and_then(|v| v.document())
        .and_then(policy_json)
        .unwrap_or_default();
    let versions = c
        .iam
        .list_policy_versions()
        .policy_arn(arn)
        .send()
        .await
        .map_err(|e| explain("list the managed policy's versions", e))?;
    let mut old: Vec<(i64, String)> = versions
        .versions()
        .iter()
        .filter(|v| !v.is_default_version())
        .map(|v| {
            (
                v.create_date()
                    .map(aws_smithy_types::DateTime::secs)
                    .unwrap_or_default(),
                v.version_id().unwrap_or_default().to_string(),
            )
        })
        .collect();
    old.sort();
    Ok(Some(PolicyObs {
        tags,
        document,
        old_versions: old.into_iter().map(|(_, v)| v).collect(),
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_source_arn_of_our_statement() {
        let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"other"},{"Sid":"wsdeploy-apigateway-invoke","Effect":"Allow","Condition":{"ArnLike":{"AWS:SourceArn":"arn:aws:execute-api:eu-west-3:1:abc/*"}}}]}"#;
        assert_eq!(
            super::permission_source(doc, "wsdeploy-apigateway-invoke").as_deref(),
            Some("arn:aws:execute-api:eu-west-3:1:abc/*")
        );
        assert_eq!(super::permission_source(doc, "missing"), None);
    }
}
