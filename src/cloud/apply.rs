//! Carrying out a plan against AWS. Phases run in order; within a phase, actions on different resources run
//! concurrently. The calls themselves are in the per-service modules.

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::{Context, Result};

use super::{apigw, iam, lambda, logs, Clients};
use crate::deploy::state::*;
use crate::deploy::{Action, Change, Names};
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
        let Some(api) = o.kept_api() else { return ids };
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

    fn remember(&self, f: impl FnOnce(&mut Ids)) {
        f(&mut self.ids.lock().expect("ids lock"));
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
        let (c, d) = (self.c, self.d);
        let said = |s: &str| Ok(s.to_string());
        match a {
            CreateRole => iam::create_role(&c.iam, d).await.and(said("created")),
            UpdateRoleTrust => iam::update_role_trust(&c.iam, d).await.and(said("updated")),
            PutRolePolicy => iam::put_role_policy(&c.iam, d)
                .await
                .and(said("own log groups only")),
            DeleteRole => iam::delete_role(&c.iam, &d.role).await.and(said("deleted")),
            CreateLogGroup { name } => logs::create_group(&c.logs, name, &d.tags)
                .await
                .and(said("created")),
            PutRetention { name, days } => logs::set_retention(&c.logs, name, *days)
                .await
                .and(said(&format!("kept {days} days"))),
            DeleteLogGroup { name } => logs::delete_group(&c.logs, name).await.and(said("deleted")),
            CreateFunction { function } => {
                lambda::create(&c.lambda, d, self.spec(function)?, step).await
            }
            UpdateFunctionCode { function, .. } => {
                lambda::update_code(&c.lambda, self.spec(function)?, step).await
            }
            UpdateFunctionConfig { function, .. } => {
                lambda::update_config(&c.lambda, d, self.spec(function)?, step)
                    .await
                    .and(said("updated"))
            }
            DeleteFunction { name } => lambda::delete(&c.lambda, name).await.and(said("deleted")),
            AddPermission { function, replace } => {
                let source = d.invoke_source_arn(&self.api_id()?);
                lambda::allow_invoke(&c.lambda, &self.spec(function)?.name, &source, *replace)
                    .await
                    .and(said("this API only"))
            }
            CreateApi => {
                let id = apigw::create_api(&c.apigw, d).await?;
                self.remember(|ids| ids.api_id = Some(id.clone()));
                Ok(format!("created ({id})"))
            }
            UpdateApi { id } => apigw::set_route_selection(&c.apigw, id)
                .await
                .and(said("updated")),
            DeleteApi { id, .. } => apigw::delete_api(&c.apigw, id).await.and(said("deleted")),
            CreateIntegration { function } => {
                let uri = d.integration_uri(&d.function_arn(&self.spec(function)?.name));
                let id = apigw::create_integration(&c.apigw, &self.api_id()?, &uri).await?;
                self.remember(|ids| {
                    ids.integrations.insert(function.clone(), id);
                });
                said("created")
            }
            DeleteIntegration { id } => apigw::delete_integration(&c.apigw, &self.api_id()?, id)
                .await
                .and(said("deleted")),
            CreateRoute { key } => {
                let target = self.target(&self.route(key)?.function)?;
                let id = apigw::create_route(&c.apigw, &self.api_id()?, key, &target).await?;
                self.remember(|ids| {
                    ids.routes.insert(key.clone(), id);
                });
                said("created")
            }
            UpdateRoute { key, id, .. } => {
                let target = self.target(&self.route(key)?.function)?;
                apigw::retarget_route(&c.apigw, &self.api_id()?, id, key, &target)
                    .await
                    .and(said("updated"))
            }
            DeleteRoute { key, id } => apigw::delete_route(&c.apigw, &self.api_id()?, id, key)
                .await
                .and(said("deleted")),
            CreateRouteResponse { key } => {
                let route_id = self
                    .ids()
                    .routes
                    .get(key)
                    .cloned()
                    .context("internal error: route response before its route")?;
                apigw::make_route_reply(&c.apigw, &self.api_id()?, &route_id, key)
                    .await
                    .and(said("replies to the client"))
            }
            CreateStage => apigw::create_stage(&c.apigw, &self.api_id()?, d)
                .await
                .and(said("auto-deploy")),
            UpdateStage => apigw::auto_deploy(&c.apigw, &self.api_id()?, &d.stage)
                .await
                .and(said("auto-deploy")),
            CreateUser => iam::create_user(&c.iam, d).await.and(said("created")),
            PutUserPolicy => iam::put_user_policy(&c.iam, d, &self.api_id()?)
                .await
                .and(said("ManageConnections on this stage only")),
            CreateAccessKey => {
                let key = iam::create_access_key(&c.iam, &d.user).await?;
                let shown = format!("created {}", key.0);
                self.remember(|ids| ids.new_key = Some(key));
                Ok(shown)
            }
            DeleteAccessKey { id, .. } => iam::delete_access_key(&c.iam, &d.user, id)
                .await
                .and(said("deleted")),
            DeleteUser => iam::delete_user(&c.iam, &d.user).await.and(said("deleted")),
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
}
