//! Carrying out a plan against AWS. Phases run in order; within a phase, actions on different resources run
//! concurrently, except writes to the API, which AWS serialises (see `apigw`). A function that was just created or
//! updated is waited on before anything else touches it. The calls themselves are in the per-service modules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result};

use super::{apigw, domain, iam, kms, lambda, logs, Clients};
use crate::config::Names;
use crate::deploy::action::TagTarget;
use crate::deploy::state::{
    ApiRef, Desired, FunctionSpec, Observed, RouteSpec, TagDiff, HEARTBEAT_TARGET,
};
use crate::deploy::{Action, Change};
use crate::facts::REPLY_KEY;
use crate::ui::{Progress, Step};

/// What apply learned that the env files and outputs need.
#[derive(Debug, Default, Clone)]
pub(crate) struct Ids {
    pub api_id: Option<String>,
    pub api_endpoint: Option<String>,
    integrations: BTreeMap<String, String>,
    routes: BTreeMap<String, String>,
    /// Routes whose response selection already turns their `$default` response on (observed, or created so).
    selected: BTreeSet<String>,
    /// A freshly created access key: (id, secret). The secret exists nowhere else.
    pub new_key: Option<(String, String)>,
    /// The ARN of the stage's KMS key (`lambda.env_key: stage`), observed or created by this run.
    stage_key_arn: Option<String>,
    /// Whether the account has API Gateway's CloudWatch role (observed, or set by this run).
    account_logging: bool,
    /// The custom domain's regional host and its Route 53 zone (observed, or created by this run).
    pub domain_target: Option<(String, String)>,
    /// The name's alias record as observed: what a DELETE must repeat.
    record: Option<(String, String)>,
    /// What the stage's last automatic deployment said, as observed, when it failed.
    deployment_failure: Option<String>,
}

impl Ids {
    /// Ids of what already exists: the API that the plan keeps (the oldest), its integrations and routes.
    pub(crate) fn from_observed(d: &Desired, o: &Observed) -> Ids {
        let mut ids = Ids {
            stage_key_arn: o.env_key.as_ref().map(|k| k.arn.clone()),
            account_logging: o.account_logging_role.is_some(),
            domain_target: o
                .domain
                .as_ref()
                .map(|dom| (dom.target.clone(), dom.target_zone.clone())),
            record: o
                .record
                .as_ref()
                .and_then(|r| Some((r.alias_target.clone()?, r.alias_zone.clone()?))),
            ..Ids::default()
        };
        let Some(api) = o.kept_api() else { return ids };
        ids.api_id = Some(api.id.clone());
        ids.api_endpoint.clone_from(&api.endpoint);
        ids.deployment_failure = api
            .stages
            .iter()
            .find(|s| s.name == d.stage)
            .and_then(|s| s.deployment_failure.clone());
        for f in &d.functions {
            let uri = d.integration_uri(&d.function_arn(&f.name));
            if let Some(i) = api.integrations.iter().find(|i| i.uri == uri) {
                ids.integrations.insert(f.function.clone(), i.id.clone());
            }
        }
        if let Some(i) = api.integrations.iter().find(|i| i.is_heartbeat()) {
            ids.integrations
                .insert(HEARTBEAT_TARGET.into(), i.id.clone());
        }
        for r in &api.routes {
            ids.routes.insert(r.key.clone(), r.id.clone());
            if r.response_selection.as_deref() == Some(REPLY_KEY) {
                ids.selected.insert(r.key.clone());
            }
        }
        ids
    }

    pub(crate) fn api(&self) -> Option<ApiRef> {
        Some(ApiRef {
            id: self.api_id.clone()?,
            endpoint: self.api_endpoint.clone(),
        })
    }
}

pub(crate) struct Applier<'a> {
    c: &'a Clients,
    d: &'a Desired,
    names: Names,
    progress: &'a dyn Progress,
    ids: Mutex<Ids>,
    /// One write at a time on the API.
    api_lane: tokio::sync::Mutex<()>,
    /// Functions changed by this run and not yet seen settled: name -> created (rather than updated).
    unsettled: Mutex<BTreeMap<String, bool>>,
    /// What the waits for AWS to settle took, for the summary.
    waits: Mutex<Vec<(String, f64)>>,
    /// Whether this run changed the API (and so started an automatic deployment).
    api_written: std::sync::atomic::AtomicBool,
    /// Whether a function was created with the role during this run. Until one is, creations go one at a time: the
    /// first waits out IAM's propagation (each attempt uploads the code), the others then upload theirs once.
    role_proven: tokio::sync::Mutex<bool>,
}

impl<'a> Applier<'a> {
    pub(crate) fn new(
        c: &'a Clients,
        d: &'a Desired,
        ids: Ids,
        progress: &'a dyn Progress,
    ) -> Self {
        Applier {
            c,
            d,
            names: d.names.clone(),
            progress,
            ids: Mutex::new(ids),
            api_lane: tokio::sync::Mutex::new(()),
            unsettled: Mutex::new(BTreeMap::new()),
            waits: Mutex::new(vec![]),
            api_written: std::sync::atomic::AtomicBool::new(false),
            role_proven: tokio::sync::Mutex::new(false),
        }
    }

    /// How long each wait for AWS took: (what, seconds).
    pub(crate) fn waits(&self) -> Vec<(String, f64)> {
        self.waits.lock().expect("waits lock").clone()
    }

    fn waited(&self, what: String, since: Instant) {
        let secs = since.elapsed().as_secs_f64();
        self.waits.lock().expect("waits lock").push((what, secs));
    }

    /// Waits until `name` is ready for another change, if this run changed it.
    async fn settle_function(&self, name: &str, step: &dyn Step) -> Result<()> {
        let created = self.unsettled.lock().expect("lock").remove(name);
        if let Some(created) = created {
            let started = Instant::now();
            lambda::wait_ready(&self.c.lambda, name, created, step).await?;
            self.waited(format!("function {name} ready"), started);
        }
        Ok(())
    }

    /// The end of `up`: every function this run changed is Active with its last update applied, and the stage's
    /// last automatic deployment did not fail (read again only when this run wrote to the API: otherwise the stage
    /// as observed says it, and a no-op `up` needs no read after its plan).
    pub(crate) async fn settle(&self) -> Result<()> {
        let names: Vec<String> = self
            .unsettled
            .lock()
            .expect("lock")
            .keys()
            .cloned()
            .collect();
        let waits = names.iter().map(|name| async move {
            let step = self.progress.step(&format!("wait for function {name}"));
            let r = self.settle_function(name, step.as_ref()).await;
            match &r {
                Ok(()) => step.finish("ready"),
                Err(e) => step.fail(&format!("{e:#}")),
            }
            r
        });
        futures_util::future::try_join_all(waits).await?;
        let ids = self.ids();
        let failure = match ids.api_id {
            Some(api) if self.api_written.load(std::sync::atomic::Ordering::SeqCst) => {
                apigw::deployment_failure(&self.c.apigw, &api, &self.d.stage).await?
            }
            _ => ids.deployment_failure,
        };
        if let Some(why) = failure {
            anyhow::bail!("the stage {}'s last deployment failed: {why}", self.d.stage);
        }
        Ok(())
    }

    pub(crate) fn ids(&self) -> Ids {
        self.ids.lock().expect("ids lock").clone()
    }

    fn remember(&self, f: impl FnOnce(&mut Ids)) {
        f(&mut self.ids.lock().expect("ids lock"));
    }

    /// The key the functions' environment is encrypted with (`None`: Lambda's AWS-managed key).
    fn env_key(&self) -> Option<String> {
        self.d.env_key_arn(self.ids().stage_key_arn.as_deref())
    }

    fn api_id(&self) -> Result<String> {
        self.ids()
            .api_id
            .context("internal error: no API id at this point of the plan")
    }

    /// Runs `actions` (already ordered by phase). Stops at the first phase with a failure, after its other
    /// actions finished: whatever was done is found again by the next run.
    pub(crate) async fn run(&self, actions: &[Action]) -> Result<()> {
        let mut phases: BTreeMap<_, BTreeMap<(String, String), Vec<&Action>>> = BTreeMap::new();
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
            if let Some(first) = results.into_iter().find_map(Result::err) {
                return Err(first);
            }
        }
        Ok(())
    }

    async fn step(&self, a: &Action) -> Result<()> {
        let (kind, name) = a.resource(&self.names);
        let verb = match a.change() {
            Change::Create => "create",
            Change::Update => "update",
            Change::Delete => "delete",
        };
        let step = self.progress.step(&format!("{verb} {kind} {name}"));
        let _lane = if a.writes_api() {
            self.api_written
                .store(true, std::sync::atomic::Ordering::SeqCst);
            Some(self.api_lane.lock().await)
        } else {
            None
        };
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

    /// One action; returns what to say when it is done.
    async fn act(&self, a: &Action, step: &dyn Step) -> Result<String> {
        use Action::*;
        match a {
            CreateRole
            | UpdateRoleTrust
            | PutRolePolicy
            | DeleteRole
            | CreateUser
            | PutUserPolicy
            | CreateAccessKey
            | DeleteAccessKey { .. }
            | DeactivateAccessKey { .. }
            | DeleteUser
            | CreatePolicy
            | CreatePolicyVersion { .. }
            | DeletePolicy
            | CreateBoundary
            | UpdateBoundary { .. }
            | SetBoundary { .. } => self.act_iam(a, step).await,
            CreateAccountLoggingRole => super::account::create_role(self.c, self.d)
                .await
                .map(|()| "created, AmazonAPIGatewayPushToCloudWatchLogs attached".into()),
            SetAccountLoggingRole => {
                super::account::set_role(self.c, self.d, step).await?;
                self.remember(|ids| ids.account_logging = true);
                Ok("set in API Gateway's account settings".into())
            }
            CreateLogGroup { .. }
            | PutRetention { .. }
            | DeleteLogGroup { .. }
            | DeleteExecutionLogGroup { .. }
            | CreateFunction { .. }
            | UpdateFunctionCode { .. }
            | UpdateFunctionConfig { .. }
            | DeleteFunction { .. }
            | SetConcurrency { .. }
            | AddPermission { .. } => self.act_lambda(a, step).await,
            Retag { target, diff } => self.retag(target, diff, step).await.map(|()| "tags".into()),
            CreateEnvKey
            | SetEnvKeyPolicy { .. }
            | AliasEnvKey { .. }
            | RestoreEnvKey { .. }
            | DeleteEnvKey { .. } => self.act_kms(a, step).await,
            CreateDomain { .. }
            | UpdateDomain { .. }
            | DeleteDomain { .. }
            | CreateApiMapping { .. }
            | DeleteApiMapping { .. }
            | UpsertRecord { .. }
            | DeleteRecord { .. } => self.act_domain(a, step).await,
            _ => self.act_api(a, step).await,
        }
    }

    /// The role, the backend's user, keys and policy.
    async fn act_iam(&self, a: &Action, step: &dyn Step) -> Result<String> {
        use Action::*;
        let (c, d) = (self.c, self.d);
        let said = |s: &str| Ok(s.to_string());
        match a {
            CreateRole => iam::create_role(&c.iam, d).await.and(said("created")),
            CreateBoundary => iam::create_boundary(&c.iam, d).await.and(said("created")),
            UpdateBoundary { delete_oldest } => {
                iam::update_boundary(&c.iam, d, delete_oldest.as_deref())
                    .await
                    .and(said("updated"))
            }
            SetBoundary { target } => iam::set_boundary(&c.iam, d, *target)
                .await
                .and(said("capped by the project's boundary")),
            UpdateRoleTrust => iam::update_role_trust(&c.iam, d).await.and(said("updated")),
            PutRolePolicy => {
                let key = self.env_key();
                let api = self.ids().api_id;
                iam::put_role_policy(&c.iam, d, (key.as_deref(), api.as_deref())).await?;
                said(match (key.is_some(), api.is_some()) {
                    (true, true) => "own log groups, decrypt with the env key, close its own sockets",
                    (true, false) => "own log groups, decrypt with the env key",
                    (false, true) => "own log groups, close its own sockets",
                    (false, false) => "own log groups only",
                })
            }
            DeleteRole => iam::delete_role(&c.iam, &d.names.role)
                .await
                .and(said("deleted")),
            CreateUser => iam::create_user(&c.iam, d).await.and(said("created")),
            PutUserPolicy => iam::put_user_policy(&c.iam, d, &self.api_id()?)
                .await
                .and(said("ManageConnections on this stage only")),
            CreateAccessKey => {
                let key = iam::create_access_key(&c.iam, &d.names.user).await?;
                // Remembered before the wait: if the wait fails, `up` still says which key it made.
                self.remember(|ids| ids.new_key = Some(key.clone()));
                let started = Instant::now();
                iam::wait_key_works(c, &key.0, &key.1, step).await?;
                self.waited(format!("access key {} accepted", key.0), started);
                Ok(format!("created {}, accepted by AWS", key.0))
            }
            DeleteAccessKey { id } => iam::delete_access_key(&c.iam, &d.names.user, id)
                .await
                .and(said("deleted")),
            DeactivateAccessKey { id } => iam::deactivate_access_key(&c.iam, &d.names.user, id)
                .await
                .and(said("deactivated")),
            DeleteUser => iam::delete_user(&c.iam, &d.names.user)
                .await
                .and(said("deleted")),
            CreatePolicy => iam::create_policy(&c.iam, d, &self.api_id()?)
                .await
                .and(said("created")),
            CreatePolicyVersion { delete_oldest } => {
                iam::create_policy_version(&c.iam, d, &self.api_id()?, delete_oldest.as_deref())
                    .await
                    .and(said("updated"))
            }
            DeletePolicy => iam::delete_policy(&c.iam, &d.policy_arn())
                .await
                .and(said("deleted")),
            other => anyhow::bail!("internal error: {other:?} is not an iam action"),
        }
    }

    /// The functions, their log groups and the permission to invoke them.
    async fn act_lambda(&self, a: &Action, step: &dyn Step) -> Result<String> {
        use Action::*;
        let (c, d) = (self.c, self.d);
        let said = |s: &str| Ok(s.to_string());
        match a {
            CreateLogGroup { name } => logs::create_group(&c.logs, name, &d.tags)
                .await
                .and(said("created")),
            PutRetention { name, days } => logs::set_retention(&c.logs, name, *days)
                .await
                .and(said(&format!("kept {days} days"))),
            DeleteLogGroup { name } => logs::delete_group(&c.logs, name).await.and(said("deleted")),
            DeleteExecutionLogGroup { name } => match logs::retire_execution_group(&c.logs, name).await? {
                logs::Retired::Deleted => said("deleted"),
                logs::Retired::Expiring => said(&format!(
                    "not deleted (this identity may not), emptied within a day instead: `aws logs delete-log-group --log-group-name {name}` as an administrator removes it"
                )),
                logs::Retired::Left => said(&format!(
                    "left (this identity may not delete it): `aws logs delete-log-group --log-group-name {name}` as an administrator removes it"
                )),
            },
            CreateFunction { function } => {
                let f = &self.deployed_spec(function)?;
                let key = self.env_key();
                let mut proven = self.role_proven.lock().await;
                let outcome = if *proven {
                    drop(proven);
                    lambda::create(&c.lambda, d, f, key.as_deref(), step).await?
                } else {
                    let outcome = lambda::create(&c.lambda, d, f, key.as_deref(), step).await?;
                    *proven = true;
                    outcome
                };
                self.changed(&f.name, true);
                Ok(outcome)
            }
            UpdateFunctionCode { function, .. } => {
                let f = self.spec(function)?;
                self.settle_function(&f.name, step).await?;
                let outcome = lambda::update_code(&c.lambda, f, step).await?;
                self.changed(&f.name, false);
                Ok(outcome)
            }
            UpdateFunctionConfig { function, .. } => {
                let f = &self.deployed_spec(function)?;
                self.settle_function(&f.name, step).await?;
                lambda::update_config(&c.lambda, d, f, self.env_key().as_deref(), step).await?;
                self.changed(&f.name, false);
                said("updated")
            }
            DeleteFunction { name } => lambda::delete(&c.lambda, name).await.and(said("deleted")),
            SetConcurrency { function, reserved } => {
                let name = &self.spec(function)?.name;
                self.settle_function(name, step).await?;
                lambda::set_concurrency(&c.lambda, name, *reserved).await?;
                said(&reserved.map_or_else(|| "shared pool".into(), |n| format!("{n} reserved")))
            }
            AddPermission { function, replace } => {
                let source = d.invoke_source_arn(&self.api_id()?);
                let name = &self.spec(function)?.name;
                self.settle_function(name, step).await?;
                lambda::allow_invoke(&c.lambda, name, &source, *replace, step)
                    .await
                    .and(said("this API only"))
            }
            other => anyhow::bail!("internal error: {other:?} is not a lambda action"),
        }
    }

    /// The stage's KMS key.
    async fn act_kms(&self, a: &Action, step: &dyn Step) -> Result<String> {
        use Action::*;
        let (c, d) = (self.c, self.d);
        match a {
            CreateEnvKey => {
                let arn = kms::create(&c.kms, d, step).await?;
                let said = format!("created {arn}");
                self.remember(|ids| ids.stage_key_arn = Some(arn));
                Ok(said)
            }
            SetEnvKeyPolicy { id, policy } => kms::set_policy(&c.kms, d, id, policy)
                .await
                .map(|()| "key policy set".into()),
            AliasEnvKey { id } => kms::alias(&c.kms, &d.names.env_key_alias, id, step)
                .await
                .map_err(|e| {
                    super::explain(&format!("create the alias {}", d.names.env_key_alias), e)
                })
                .map(|()| "aliased".into()),
            RestoreEnvKey { id, pending } => kms::restore(&c.kms, id, *pending, step)
                .await
                .map(|()| "enabled".into()),
            DeleteEnvKey {
                id,
                schedule,
                alias,
            } => kms::delete(&c.kms, &d.names, id, *schedule, *alias, step).await,
            other => anyhow::bail!("internal error: {other:?} is not a kms action"),
        }
    }

    /// The WebSocket API: integrations, routes, route responses, the stage.
    async fn act_api(&self, a: &Action, step: &dyn Step) -> Result<String> {
        use Action::*;
        let (c, d) = (self.c, self.d);
        let said = |s: &str| Ok(s.to_string());
        match a {
            CreateApi => {
                let api = apigw::create_api(&c.apigw, d).await?;
                let shown = format!("created ({})", api.id);
                self.remember(|ids| {
                    ids.api_id = Some(api.id);
                    ids.api_endpoint = api.endpoint;
                });
                Ok(shown)
            }
            UpdateApi { id, .. } => apigw::update_api(&c.apigw, d, id, step)
                .await
                .and(said("updated")),
            DeleteApi { id, .. } => apigw::delete_api(&c.apigw, id, step)
                .await
                .and(said("deleted")),
            CreateIntegration { function } if function == HEARTBEAT_TARGET => {
                let id = apigw::create_heartbeat(&c.apigw, &self.api_id()?, step).await?;
                self.remember(|ids| {
                    ids.integrations.insert(function.clone(), id);
                });
                said("MOCK: API Gateway answers it, no function runs")
            }
            CreateIntegration { function } => {
                let uri = d.integration_uri(&d.function_arn(&self.spec(function)?.name));
                let id = apigw::create_integration(&c.apigw, &self.api_id()?, &uri, step).await?;
                self.remember(|ids| {
                    ids.integrations.insert(function.clone(), id);
                });
                said("created")
            }
            DeleteIntegration { id } => {
                apigw::delete_integration(&c.apigw, &self.api_id()?, id, step)
                    .await
                    .and(said("deleted"))
            }
            CreateRoute { key } => {
                let route = self.route(key)?;
                let target = self.target(&route.function)?;
                let api = self.api_id()?;
                let id =
                    apigw::create_route(&c.apigw, &api, (key, &target, route.reply), step).await?;
                self.remember(|ids| {
                    ids.routes.insert(key.clone(), id);
                    if route.reply {
                        ids.selected.insert(key.clone());
                    }
                });
                said("created")
            }
            UpdateRoute { key, id, .. } => {
                let target = self.target(&self.route(key)?.function)?;
                apigw::retarget_route(&c.apigw, &self.api_id()?, id, (key, &target), step)
                    .await
                    .and(said("updated"))
            }
            DeleteRoute { key, id } => {
                apigw::delete_route(&c.apigw, &self.api_id()?, id, key, step)
                    .await
                    .and(said("deleted"))
            }
            CreateRouteResponse { key } => {
                let route_id = self
                    .ids()
                    .routes
                    .get(key)
                    .cloned()
                    .context("internal error: route response before its route")?;
                let selected = self.ids().selected.contains(key);
                apigw::make_route_reply(&c.apigw, &self.api_id()?, (&route_id, key), selected, step)
                    .await
                    .and(said("replies to the client"))
            }
            CreateStage | UpdateStage { .. } | ThrottleRoute { .. } | UnthrottleRoute { .. } => {
                self.act_stage(a, step).await
            }
            other => anyhow::bail!("internal error: {other:?} is not a api action"),
        }
    }

    /// The custom domain, its mapping and its DNS record.
    async fn act_domain(&self, a: &Action, step: &dyn Step) -> Result<String> {
        use aws_sdk_route53::types::ChangeAction;
        use Action::*;
        let (c, d) = (self.c, self.d);
        let said = |s: &str| Ok(s.to_string());
        match a {
            CreateDomain { name, certificate } => {
                let target = domain::create(c, d, name, certificate).await?;
                let shown = format!("created → {}", target.0);
                self.remember(|ids| ids.domain_target = Some(target));
                Ok(shown)
            }
            UpdateDomain {
                name, certificate, ..
            } => domain::update(c, d, name, certificate)
                .await
                .and(said("updated")),
            DeleteDomain { name } => domain::delete(c, name).await.and(said("deleted")),
            CreateApiMapping { name } => domain::map(c, name, &self.api_id()?, &d.stage)
                .await
                .and(said("mapped")),
            DeleteApiMapping { name, id } => domain::unmap(c, name, id).await.and(said("deleted")),
            UpsertRecord { name, zone, .. } => {
                let (target, target_zone) = self
                    .ids()
                    .domain_target
                    .context("internal error: a DNS record before its domain")?;
                let change = (ChangeAction::Upsert, target.as_str(), target_zone.as_str());
                domain::change_record(c, zone, name, change, step).await?;
                said(&format!("A alias → {target}"))
            }
            DeleteRecord { name, zone } => {
                let (target, target_zone) = self
                    .ids()
                    .record
                    .context("internal error: deleting a DNS record that was not read")?;
                let change = (ChangeAction::Delete, target.as_str(), target_zone.as_str());
                domain::change_record(c, zone, name, change, step)
                    .await
                    .and(said("deleted"))
            }
            other => anyhow::bail!("internal error: {other:?} is not a domain action"),
        }
    }

    /// The stage: its settings, logging and route throttles.
    async fn act_stage(&self, a: &Action, step: &dyn Step) -> Result<String> {
        use Action::*;
        let (c, d) = (self.c, self.d);
        let said = |s: &str| Ok(s.to_string());
        let logging = d.stage_logging(self.ids().account_logging);
        match a {
            CreateStage => {
                apigw::create_stage(&c.apigw, &self.api_id()?, (d, &logging), step).await?;
                said(if logging.access.is_some() {
                    "auto-deploy, access logs"
                } else {
                    "auto-deploy"
                })
            }
            UpdateStage { .. } => {
                apigw::update_stage(&c.apigw, &self.api_id()?, (d, &logging), step)
                    .await
                    .and(said("updated"))
            }
            ThrottleRoute { key, .. } => {
                let limits = d
                    .route_throttle
                    .get(key)
                    .copied()
                    .context("internal error: a route throttle the config does not give")?;
                apigw::throttle_route(&c.apigw, &self.api_id()?, &d.stage, (key, limits), step)
                    .await
                    .and(said("throttled"))
            }
            UnthrottleRoute { key } => {
                apigw::unthrottle_route(&c.apigw, &self.api_id()?, &d.stage, key, step)
                    .await
                    .and(said("removed"))
            }
            other => anyhow::bail!("internal error: {other:?} is not a stage action"),
        }
    }

    async fn retag(&self, target: &TagTarget, diff: &TagDiff, step: &dyn Step) -> Result<()> {
        let (c, d) = (self.c, self.d);
        match target {
            TagTarget::Role => iam::retag(&c.iam, iam::Tagged::Role(&d.names.role), diff).await,
            TagTarget::User => iam::retag(&c.iam, iam::Tagged::User(&d.names.user), diff).await,
            TagTarget::Policy => {
                iam::retag(&c.iam, iam::Tagged::Policy(&d.policy_arn()), diff).await
            }
            TagTarget::Api { id } => apigw::retag(&c.apigw, &d.api_arn(id), diff, step).await,
            TagTarget::Function { function } => {
                let name = &self.spec(function)?.name;
                self.settle_function(name, step).await?;
                lambda::retag(&c.lambda, &d.function_arn(name), diff, step).await
            }
            TagTarget::LogGroup { name } => {
                logs::retag(&c.logs, &d.log_group_arn(name), diff).await
            }
            TagTarget::EnvKey { id } => kms::retag(&c.kms, id, diff, step).await,
        }
    }

    fn changed(&self, name: &str, created: bool) {
        let mut u = self.unsettled.lock().expect("lock");
        let was_created = u.get(name).copied().unwrap_or(false);
        u.insert(name.to_string(), created || was_created);
    }

    /// `function`'s spec with its environment as deployed: the API's id, known once the API exists (this run may
    /// have just created it), among its variables.
    fn deployed_spec(&self, function: &str) -> Result<FunctionSpec> {
        let f = self.spec(function)?;
        let api = self.ids().api_id;
        Ok(FunctionSpec {
            env: f.deployed_env(api.as_deref()),
            ..f.clone()
        })
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
}
