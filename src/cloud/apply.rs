//! Carrying out a plan against AWS. Phases run in order; within a phase, actions on different resources run
//! concurrently. Every call is retried by the SDK's retry config; on top of that, the few AWS races that are not
//! errors of ours (IAM propagation, a function still updating) are retried here, each with a progress message.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_apigatewayv2::types::{IntegrationType, ProtocolType};
use aws_sdk_lambda::primitives::Blob;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{explain, is_not_found, Clients};
use crate::deploy::state::*;
use crate::deploy::{Action, Names};
use crate::ui::{Progress, Step};

/// What apply learned that the env files and outputs need.
#[derive(Debug, Default, Clone)]
pub struct Ids {
    pub api_id: Option<String>,
    integrations: BTreeMap<String, String>,
    routes: BTreeMap<String, String>,
    /// A freshly created access key: (id, secret). The secret exists nowhere else.
    pub new_key: Option<(String, String)>,
}

impl Ids {
    /// Ids of what already exists: the API that the plan keeps (the oldest), its integrations and routes.
    pub fn from_observed(d: &Desired, o: &Observed) -> Ids {
        let mut ids = Ids::default();
        let Some(api) = o.apis.iter().min_by_key(|a| (a.created, a.id.clone())) else {
            return ids;
        };
        ids.api_id = Some(api.id.clone());
        for f in &d.functions {
            let uri = d.integration_uri(&d.function_arn(&f.name));
            if let Some(i) = api.integrations.iter().find(|i| i.uri == uri) {
                ids.integrations.insert(f.function.clone(), i.id.clone());
            }
        }
        for r in &api.routes {
            ids.routes.insert(r.key.clone(), r.id.clone());
        }
        ids
    }
}

pub struct Applier<'a> {
    c: &'a Clients,
    d: &'a Desired,
    names: Names,
    progress: &'a dyn Progress,
    ids: Mutex<Ids>,
}

impl<'a> Applier<'a> {
    pub fn new(c: &'a Clients, d: &'a Desired, ids: Ids, progress: &'a dyn Progress) -> Self {
        Applier {
            c,
            d,
            names: Names::from(d),
            progress,
            ids: Mutex::new(ids),
        }
    }

    pub fn ids(&self) -> Ids {
        self.ids.lock().expect("ids lock").clone()
    }

    fn api_id(&self) -> Result<String> {
        self.ids()
            .api_id
            .context("internal error: no API id at this point of the plan")
    }

    /// Runs `actions` (already ordered by phase). Stops at the first phase with a failure, after its other
    /// actions finished: whatever was done is found again by the next run.
    pub async fn run(&self, actions: &[Action]) -> Result<()> {
        let mut phases: BTreeMap<u8, BTreeMap<(String, String), Vec<&Action>>> = BTreeMap::new();
        for a in actions {
            // Actions on one resource stay in order; different resources go side by side.
            phases
                .entry(a.phase())
                .or_default()
                .entry(a.resource(&self.names))
                .or_default()
                .push(a);
        }
        for lanes in phases.values() {
            let results = futures_util::future::join_all(lanes.values().map(|lane| async move {
                for a in lane {
                    self.step(a).await?;
                }
                Ok::<_, anyhow::Error>(())
            }))
            .await;
            let errors: Vec<anyhow::Error> = results.into_iter().filter_map(Result::err).collect();
            if let Some(first) = errors.into_iter().next() {
                return Err(first);
            }
        }
        Ok(())
    }

    async fn step(&self, a: &Action) -> Result<()> {
        let (kind, name) = a.resource(&self.names);
        let verb = match a.change() {
            crate::deploy::Change::Create => "create",
            crate::deploy::Change::Update => "update",
            crate::deploy::Change::Delete => "delete",
        };
        let step = self.progress.step(&format!("{verb} {kind} {name}"));
        match self.act(a, step.as_ref()).await {
            Ok(outcome) => {
                step.finish(&outcome);
                Ok(())
            }
            Err(e) => {
                step.fail(&format!("{e:#}"));
                Err(e)
            }
        }
    }

    async fn act(&self, a: &Action, step: &dyn Step) -> Result<String> {
        use Action::*;
        let (c, d) = (self.c, self.d);
        let done = |s: &str| Ok(s.to_string());
        match a {
            CreateRole => {
                let r = c
                    .iam
                    .create_role()
                    .role_name(&d.role)
                    .assume_role_policy_document(Desired::role_trust_policy().to_string())
                    .set_tags(Some(iam_tags(&d.tags)))
                    .send()
                    .await;
                already(r, "EntityAlreadyExists")
                    .map_err(|e| explain(&format!("create the IAM role {}", d.role), e))?;
                done("created")
            }
            UpdateRoleTrust => {
                c.iam
                    .update_assume_role_policy()
                    .role_name(&d.role)
                    .policy_document(Desired::role_trust_policy().to_string())
                    .send()
                    .await
                    .map_err(|e| explain("update the role's trust policy", e))?;
                done("updated")
            }
            PutRolePolicy => {
                c.iam
                    .put_role_policy()
                    .role_name(&d.role)
                    .policy_name(&d.role_policy_name)
                    .policy_document(d.role_policy().to_string())
                    .send()
                    .await
                    .map_err(|e| explain("set the role's policy", e))?;
                done("policy set")
            }
            DeleteRole => {
                self.delete_role().await?;
                done("deleted")
            }
            CreateLogGroup { name } => {
                let r = c
                    .logs
                    .create_log_group()
                    .log_group_name(name)
                    .set_tags(Some(d.tags.clone().into_iter().collect()))
                    .send()
                    .await;
                already(r, "ResourceAlreadyExistsException")
                    .map_err(|e| explain(&format!("create the log group {name}"), e))?;
                done("created")
            }
            PutRetention { name, days } => {
                c.logs
                    .put_retention_policy()
                    .log_group_name(name)
                    .retention_in_days(*days)
                    .send()
                    .await
                    .map_err(|e| explain(&format!("set the retention of {name}"), e))?;
                done(&format!("kept {days} days"))
            }
            DeleteLogGroup { name } => {
                gone(c.logs.delete_log_group().log_group_name(name).send().await)
                    .map_err(|e| explain(&format!("delete the log group {name}"), e))?;
                done("deleted")
            }
            CreateFunction { function } => self.create_function(function, step).await,
            UpdateFunctionCode { function, .. } => {
                let f = self.spec(function)?;
                let zip = std::fs::read(&f.artifact.zip)
                    .with_context(|| format!("cannot read {}", f.artifact.zip.display()))?;
                let call = || {
                    c.lambda
                        .update_function_code()
                        .function_name(&f.name)
                        .zip_file(Blob::new(zip.clone()))
                        .architectures(f.architecture.as_str().into())
                        .send()
                };
                retry_while_updating(step, call)
                    .await
                    .map_err(|e| explain(&format!("upload the code of {}", f.name), e))?;
                done(&format!(
                    "uploaded {:.1} KiB",
                    f.artifact.bytes as f64 / 1024.0
                ))
            }
            UpdateFunctionConfig { function, .. } => {
                let f = self.spec(function)?;
                let call = || {
                    c.lambda
                        .update_function_configuration()
                        .function_name(&f.name)
                        .runtime(RUNTIME.into())
                        .handler(HANDLER)
                        .role(d.role_arn())
                        .memory_size(f.memory_mb)
                        .timeout(f.timeout_s)
                        .environment(lambda_env(&f.env))
                        .send()
                };
                retry_while_updating(step, call)
                    .await
                    .map_err(|e| explain(&format!("update the configuration of {}", f.name), e))?;
                done("updated")
            }
            DeleteFunction { name } => {
                gone(c.lambda.delete_function().function_name(name).send().await)
                    .map_err(|e| explain(&format!("delete the function {name}"), e))?;
                done("deleted")
            }
            AddPermission { function, replace } => {
                let f = self.spec(function)?;
                if *replace {
                    gone(
                        c.lambda
                            .remove_permission()
                            .function_name(&f.name)
                            .statement_id(PERMISSION_SID)
                            .send()
                            .await,
                    )
                    .map_err(|e| explain("replace the invoke permission", e))?;
                }
                let r = c
                    .lambda
                    .add_permission()
                    .function_name(&f.name)
                    .statement_id(PERMISSION_SID)
                    .action("lambda:InvokeFunction")
                    .principal("apigateway.amazonaws.com")
                    .source_arn(d.invoke_source_arn(&self.api_id()?))
                    .send()
                    .await;
                already(r, "ResourceConflictException")
                    .map_err(|e| explain(&format!("let API Gateway invoke {}", f.name), e))?;
                done("this API only")
            }
            CreateApi => {
                let out = c
                    .apigw
                    .create_api()
                    .name(&d.api)
                    .protocol_type(ProtocolType::Websocket)
                    .route_selection_expression(ROUTE_SELECTION)
                    .set_tags(Some(d.tags.clone().into_iter().collect()))
                    .send()
                    .await
                    .map_err(|e| explain(&format!("create the WebSocket API {}", d.api), e))?;
                let id = out.api_id().context("AWS returned no API id")?.to_string();
                self.ids.lock().expect("ids lock").api_id = Some(id.clone());
                Ok(format!("created ({id})"))
            }
            UpdateApi { id } => {
                c.apigw
                    .update_api()
                    .api_id(id)
                    .route_selection_expression(ROUTE_SELECTION)
                    .send()
                    .await
                    .map_err(|e| explain("update the API", e))?;
                done("updated")
            }
            DeleteApi { id, .. } => {
                gone(c.apigw.delete_api().api_id(id).send().await)
                    .map_err(|e| explain(&format!("delete the API {id}"), e))?;
                done("deleted")
            }
            CreateIntegration { function } => {
                let f = self.spec(function)?;
                let out = c
                    .apigw
                    .create_integration()
                    .api_id(self.api_id()?)
                    .integration_type(IntegrationType::AwsProxy)
                    .integration_method("POST")
                    .integration_uri(d.integration_uri(&d.function_arn(&f.name)))
                    .send()
                    .await
                    .map_err(|e| explain(&format!("connect the API to {}", f.name), e))?;
                let id = out
                    .integration_id()
                    .context("AWS returned no integration id")?
                    .to_string();
                self.ids
                    .lock()
                    .expect("ids lock")
                    .integrations
                    .insert(function.clone(), id);
                done("created")
            }
            DeleteIntegration { id } => {
                gone(
                    c.apigw
                        .delete_integration()
                        .api_id(self.api_id()?)
                        .integration_id(id)
                        .send()
                        .await,
                )
                .map_err(|e| explain("delete an integration", e))?;
                done("deleted")
            }
            CreateRoute { key } => {
                let r = self.route(key)?;
                let out = c
                    .apigw
                    .create_route()
                    .api_id(self.api_id()?)
                    .route_key(key)
                    .target(self.target(&r.function)?)
                    .send()
                    .await
                    .map_err(|e| explain(&format!("create the route {key}"), e))?;
                let id = out
                    .route_id()
                    .context("AWS returned no route id")?
                    .to_string();
                self.ids
                    .lock()
                    .expect("ids lock")
                    .routes
                    .insert(key.clone(), id);
                done("created")
            }
            UpdateRoute { key, id, .. } => {
                let r = self.route(key)?;
                c.apigw
                    .update_route()
                    .api_id(self.api_id()?)
                    .route_id(id)
                    .target(self.target(&r.function)?)
                    .send()
                    .await
                    .map_err(|e| explain(&format!("update the route {key}"), e))?;
                done("updated")
            }
            DeleteRoute { key, id } => {
                gone(
                    c.apigw
                        .delete_route()
                        .api_id(self.api_id()?)
                        .route_id(id)
                        .send()
                        .await,
                )
                .map_err(|e| explain(&format!("delete the route {key}"), e))?;
                done("deleted")
            }
            CreateRouteResponse { key } => {
                let route_id = self
                    .ids()
                    .routes
                    .get(key)
                    .cloned()
                    .context("internal error: route response before its route")?;
                let api_id = self.api_id()?;
                let r = c
                    .apigw
                    .create_route_response()
                    .api_id(&api_id)
                    .route_id(&route_id)
                    .route_response_key("$default")
                    .send()
                    .await;
                already(r, "ConflictException")
                    .map_err(|e| explain(&format!("let the route {key} reply"), e))?;
                c.apigw
                    .update_route()
                    .api_id(&api_id)
                    .route_id(&route_id)
                    .route_response_selection_expression("$default")
                    .send()
                    .await
                    .map_err(|e| explain(&format!("let the route {key} reply"), e))?;
                done("replies to the client")
            }
            CreateStage => {
                // AutoDeploy makes every route or integration change live without a CreateDeployment call, which
                // is also what lets this work on the local AWS emulator (moto has no CreateDeployment).
                let r = c
                    .apigw
                    .create_stage()
                    .api_id(self.api_id()?)
                    .stage_name(&d.stage)
                    .auto_deploy(true)
                    .set_tags(Some(d.tags.clone().into_iter().collect()))
                    .send()
                    .await;
                already(r, "ConflictException")
                    .map_err(|e| explain(&format!("create the stage {}", d.stage), e))?;
                done("auto-deploy")
            }
            UpdateStage => {
                c.apigw
                    .update_stage()
                    .api_id(self.api_id()?)
                    .stage_name(&d.stage)
                    .auto_deploy(true)
                    .send()
                    .await
                    .map_err(|e| explain("turn on auto-deploy", e))?;
                done("auto-deploy")
            }
            CreateUser => {
                let r = c
                    .iam
                    .create_user()
                    .user_name(&d.user)
                    .set_tags(Some(iam_tags(&d.tags)))
                    .send()
                    .await;
                already(r, "EntityAlreadyExists")
                    .map_err(|e| explain(&format!("create the IAM user {}", d.user), e))?;
                done("created")
            }
            PutUserPolicy => {
                let doc = d.manage_connections_policy(&self.api_id()?).to_string();
                c.iam
                    .put_user_policy()
                    .user_name(&d.user)
                    .policy_name(&d.policy_name)
                    .policy_document(doc)
                    .send()
                    .await
                    .map_err(|e| explain("set the backend user's policy", e))?;
                done("ManageConnections on this stage only")
            }
            CreateAccessKey => {
                let out = c
                    .iam
                    .create_access_key()
                    .user_name(&d.user)
                    .send()
                    .await
                    .map_err(|e| explain(&format!("create an access key for {}", d.user), e))?;
                let key = out.access_key().context("AWS returned no access key")?;
                let id = key.access_key_id().to_string();
                self.ids.lock().expect("ids lock").new_key =
                    Some((id.clone(), key.secret_access_key().to_string()));
                Ok(format!("created {id}"))
            }
            DeleteAccessKey { id, .. } => {
                gone(
                    c.iam
                        .delete_access_key()
                        .user_name(&d.user)
                        .access_key_id(id)
                        .send()
                        .await,
                )
                .map_err(|e| explain(&format!("delete the access key {id}"), e))?;
                done("deleted")
            }
            DeleteUser => {
                self.delete_user().await?;
                done("deleted")
            }
            CreatePolicy => {
                let doc = d.manage_connections_policy(&self.api_id()?).to_string();
                let r = c
                    .iam
                    .create_policy()
                    .policy_name(&d.policy_name)
                    .policy_document(doc)
                    .description(format!("wsdeploy: post to connections of {}", d.api))
                    .set_tags(Some(iam_tags(&d.tags)))
                    .send()
                    .await;
                already(r, "EntityAlreadyExists")
                    .map_err(|e| explain("create the managed policy", e))?;
                done("created")
            }
            CreatePolicyVersion { delete_oldest } => {
                let arn = d.policy_arn();
                if let Some(v) = delete_oldest {
                    c.iam
                        .delete_policy_version()
                        .policy_arn(&arn)
                        .version_id(v)
                        .send()
                        .await
                        .map_err(|e| explain("make room for a new policy version", e))?;
                }
                let doc = d.manage_connections_policy(&self.api_id()?).to_string();
                c.iam
                    .create_policy_version()
                    .policy_arn(&arn)
                    .policy_document(doc)
                    .set_as_default(true)
                    .send()
                    .await
                    .map_err(|e| explain("update the managed policy", e))?;
                done("updated")
            }
            DeletePolicy => {
                self.delete_policy().await?;
                done("deleted")
            }
        }
    }

    fn spec(&self, function: &str) -> Result<&FunctionSpec> {
        self.d
            .functions
            .iter()
            .find(|f| f.function == function)
            .with_context(|| format!("internal error: no function {function} in the desired state"))
    }

    fn route(&self, key: &str) -> Result<&RouteSpec> {
        self.d
            .routes
            .iter()
            .find(|r| r.key == key)
            .with_context(|| format!("internal error: no route {key} in the desired state"))
    }

    fn target(&self, function: &str) -> Result<String> {
        let id = self
            .ids()
            .integrations
            .get(function)
            .cloned()
            .with_context(|| format!("internal error: no integration for {function} yet"))?;
        Ok(format!("integrations/{id}"))
    }

    async fn create_function(&self, function: &str, step: &dyn Step) -> Result<String> {
        let (c, d) = (self.c, self.d);
        let f = self.spec(function)?;
        let zip = std::fs::read(&f.artifact.zip)
            .with_context(|| format!("cannot read {}", f.artifact.zip.display()))?;
        // A role created seconds ago cannot be assumed by Lambda yet: retry exactly that error, with backoff.
        let mut delay = Duration::from_secs(1);
        for attempt in 1.. {
            let r = c
                .lambda
                .create_function()
                .function_name(&f.name)
                .runtime(RUNTIME.into())
                .handler(HANDLER)
                .role(d.role_arn())
                .architectures(f.architecture.as_str().into())
                .memory_size(f.memory_mb)
                .timeout(f.timeout_s)
                .environment(lambda_env(&f.env))
                .code(
                    aws_sdk_lambda::types::FunctionCode::builder()
                        .zip_file(Blob::new(zip.clone()))
                        .build(),
                )
                .set_tags(Some(d.tags.clone().into_iter().collect()))
                .send()
                .await;
            match r {
                Ok(_) => {
                    return Ok(format!(
                        "created, {:.1} KiB uploaded",
                        f.artifact.bytes as f64 / 1024.0
                    ))
                }
                Err(e) if e.code() == Some("ResourceConflictException") => {
                    return Ok("created by a concurrent run".into())
                }
                Err(e)
                    if e.code() == Some("InvalidParameterValueException")
                        && e.message().is_some_and(|m| m.contains("cannot be assumed"))
                        && attempt < 8 =>
                {
                    step.update(&format!("waiting for the new IAM role to reach Lambda (attempt {attempt}, retrying in {}s)", delay.as_secs()));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(explain(&format!("create the function {}", f.name), e)),
            }
        }
        unreachable!("the loop returns")
    }

    async fn delete_role(&self) -> Result<()> {
        let (iam, role) = (&self.c.iam, &self.d.role);
        let what = |x: &str| format!("{x} of the IAM role {role}");
        let inline = match iam.list_role_policies().role_name(role).send().await {
            Ok(o) => o.policy_names().to_vec(),
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(explain(&what("list the policies"), e)),
        };
        for p in inline {
            gone(
                iam.delete_role_policy()
                    .role_name(role)
                    .policy_name(p)
                    .send()
                    .await,
            )
            .map_err(|e| explain(&what("delete a policy"), e))?;
        }
        let attached = iam
            .list_attached_role_policies()
            .role_name(role)
            .send()
            .await
            .map_err(|e| explain(&what("list the attached policies"), e))?;
        for p in attached.attached_policies() {
            if let Some(arn) = p.policy_arn() {
                gone(
                    iam.detach_role_policy()
                        .role_name(role)
                        .policy_arn(arn)
                        .send()
                        .await,
                )
                .map_err(|e| explain(&what("detach a policy"), e))?;
            }
        }
        gone(iam.delete_role().role_name(role).send().await)
            .map_err(|e| explain(&format!("delete the IAM role {role}"), e))?;
        Ok(())
    }

    async fn delete_user(&self) -> Result<()> {
        let (iam, user) = (&self.c.iam, &self.d.user);
        let what = |x: &str| format!("{x} of the IAM user {user}");
        let keys = match iam.list_access_keys().user_name(user).send().await {
            Ok(o) => o,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(explain(&what("list the access keys"), e)),
        };
        for k in keys.access_key_metadata() {
            if let Some(id) = k.access_key_id() {
                gone(
                    iam.delete_access_key()
                        .user_name(user)
                        .access_key_id(id)
                        .send()
                        .await,
                )
                .map_err(|e| explain(&what("delete an access key"), e))?;
            }
        }
        let inline = iam
            .list_user_policies()
            .user_name(user)
            .send()
            .await
            .map_err(|e| explain(&what("list the policies"), e))?;
        for p in inline.policy_names() {
            gone(
                iam.delete_user_policy()
                    .user_name(user)
                    .policy_name(p)
                    .send()
                    .await,
            )
            .map_err(|e| explain(&what("delete a policy"), e))?;
        }
        let attached = iam
            .list_attached_user_policies()
            .user_name(user)
            .send()
            .await
            .map_err(|e| explain(&what("list the attached policies"), e))?;
        for p in attached.attached_policies() {
            if let Some(arn) = p.policy_arn() {
                gone(
                    iam.detach_user_policy()
                        .user_name(user)
                        .policy_arn(arn)
                        .send()
                        .await,
                )
                .map_err(|e| explain(&what("detach a policy"), e))?;
            }
        }
        gone(iam.delete_user().user_name(user).send().await)
            .map_err(|e| explain(&format!("delete the IAM user {user}"), e))?;
        Ok(())
    }

    async fn delete_policy(&self) -> Result<()> {
        let iam = &self.c.iam;
        let arn = self.d.policy_arn();
        let entities = match iam.list_entities_for_policy().policy_arn(&arn).send().await {
            Ok(o) => o,
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(e) => return Err(explain("find what the managed policy is attached to", e)),
        };
        // The user attached it to their backend's role: detach it, or the policy cannot be deleted.
        for r in entities.policy_roles() {
            if let Some(n) = r.role_name() {
                gone(
                    iam.detach_role_policy()
                        .role_name(n)
                        .policy_arn(&arn)
                        .send()
                        .await,
                )
                .map_err(|e| explain(&format!("detach the policy from the role {n}"), e))?;
            }
        }
        for u in entities.policy_users() {
            if let Some(n) = u.user_name() {
                gone(
                    iam.detach_user_policy()
                        .user_name(n)
                        .policy_arn(&arn)
                        .send()
                        .await,
                )
                .map_err(|e| explain(&format!("detach the policy from the user {n}"), e))?;
            }
        }
        for g in entities.policy_groups() {
            if let Some(n) = g.group_name() {
                gone(
                    iam.detach_group_policy()
                        .group_name(n)
                        .policy_arn(&arn)
                        .send()
                        .await,
                )
                .map_err(|e| explain(&format!("detach the policy from the group {n}"), e))?;
            }
        }
        let versions = iam
            .list_policy_versions()
            .policy_arn(&arn)
            .send()
            .await
            .map_err(|e| explain("list the managed policy's versions", e))?;
        for v in versions
            .versions()
            .iter()
            .filter(|v| !v.is_default_version())
        {
            if let Some(id) = v.version_id() {
                gone(
                    iam.delete_policy_version()
                        .policy_arn(&arn)
                        .version_id(id)
                        .send()
                        .await,
                )
                .map_err(|e| explain("delete an old policy version", e))?;
            }
        }
        gone(iam.delete_policy().policy_arn(&arn).send().await)
            .map_err(|e| explain("delete the managed policy", e))?;
        Ok(())
    }
}

fn iam_tags(tags: &Tags) -> Vec<aws_sdk_iam::types::Tag> {
    tags.iter()
        .filter_map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .ok()
        })
        .collect()
}

fn lambda_env(env: &BTreeMap<String, String>) -> aws_sdk_lambda::types::Environment {
    aws_sdk_lambda::types::Environment::builder()
        .set_variables(Some(env.clone().into_iter().collect()))
        .build()
}

/// A create that lost a race to a concurrent run is as good as done: the next run checks the result.
fn already<T, E: ProvideErrorMetadata, R>(
    r: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    code: &str,
) -> Result<(), aws_smithy_runtime_api::client::result::SdkError<E, R>> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(code) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A delete of something already gone is done.
fn gone<T, E: ProvideErrorMetadata, R>(
    r: Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
) -> Result<(), aws_smithy_runtime_api::client::result::SdkError<E, R>> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Lambda refuses a change while the previous one is being applied ("An update is in progress"): wait and retry.
async fn retry_while_updating<T, E, R, F, Fut>(
    step: &dyn Step,
    mut call: F,
) -> Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>
where
    E: ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<
        Output = Result<T, aws_smithy_runtime_api::client::result::SdkError<E, R>>,
    >,
{
    let mut delay = Duration::from_millis(500);
    for attempt in 1.. {
        match call().await {
            Err(e) if e.code() == Some("ResourceConflictException") && attempt < 12 => {
                step.update(&format!(
                    "waiting for the function's previous update to finish (attempt {attempt})"
                ));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
    unreachable!("the loop returns")
}
