//! The session of a verb that talks to AWS: opening a stage, reading what exists, building the code, and the
//! outputs document.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::cloud::observe::observe;
use crate::cloud::Clients;
use crate::config::{Config, CredentialsMode, StageConfig};
use crate::deploy::state::{ApiObs, ApiRef, Caller};
use crate::deploy::{plan, Action, Artifact, Desired, Observed, Options};
use crate::envfile;
use crate::error::Result;
use crate::lambdas::{self, Target};
use crate::secret::{SecretChange, SigningSecrets};
use crate::ui::Progress;

use super::Context;

pub struct Session {
    pub config: Config,
    pub stage: StageConfig,
    pub clients: Clients,
    pub caller: Caller,
    /// What AWS held for the stage when the session opened, and what the backend's env file held.
    pub observed: Observed,
}

impl Context {
    /// Config checked and stage picked before anything else; then what AWS holds for the stage, read once.
    pub async fn session(&self) -> Result<Session> {
        let config = self.load_config()?;
        let stage = config.stage(self.global.stage.as_deref())?.clone();
        let clients = Clients::new(&self.global.aws, &stage.region).await;
        let (caller, mut observed) = observe(&clients, &stage.names()).await?;
        crate::cloud::domain::observe(&clients, stage.domain.as_ref(), &mut observed).await?;
        if let Some(b) = &stage.env.backend {
            if let Ok(text) = std::fs::read_to_string(&b.file) {
                observed.env_access_key_id =
                    envfile::get(&text, &b.access_key_id).filter(|v| !v.is_empty());
                observed.env_signing_secret =
                    envfile::stage_signing_secret(&text, b, &stage.names().prefix);
            }
        }
        Ok(Session {
            config,
            stage,
            clients,
            caller,
            observed,
        })
    }
}

impl Session {
    /// The bundled functions this stage uses for its architecture: prebuilt, or built from source (cached).
    pub async fn artifacts(
        &self,
        progress: &dyn Progress,
        source: &lambdas::SourceArgs,
    ) -> Result<BTreeMap<String, Artifact>> {
        let arch = self.stage.lambda.architecture;
        let step = progress.step(&format!("lambdas ({})", arch.as_str()));
        let source = source.clone();
        let got = tokio::task::spawn_blocking(move || lambdas::get(Target::Lambda(arch), &source))
            .await
            .map_err(anyhow::Error::from)?;
        let got = match got {
            Ok(b) => b,
            Err(e) => {
                step.fail("see below");
                return Err(anyhow::Error::from(e).into());
            }
        };
        step.finish(&got.describe());
        let built = got.built;
        let wanted = self.stage.functions();
        built
            .into_iter()
            .filter(|b| wanted.iter().any(|w| w == b.function))
            .map(|b| {
                let zip = b.zip.context("a Lambda build yields zips")?;
                let sha = b.code_sha256.context("a Lambda build yields hashes")?;
                Ok((
                    b.function.to_string(),
                    Artifact {
                        zip,
                        code_sha256: sha,
                        bytes: b.zip_bytes,
                    },
                ))
            })
            .collect()
    }
}

/// What `plan` shows and `up` applies.
pub struct Planned {
    pub desired: Desired,
    pub observed: Observed,
    pub actions: Vec<Action>,
    /// What the functions sign with (and the backend's env file holds) once applied.
    pub signing: SigningSecrets,
    pub signing_change: SecretChange,
}

/// How `plan` and `up` treat the backend's access keys.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// Create a new access key for the backend even if the current one is still valid; the previous one is
    /// deactivated once the env file holds the new one.
    #[arg(long)]
    pub rotate_credentials: bool,
    /// How long a deactivated access key is kept (and can be reactivated) before `up` deletes it.
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = humantime::parse_duration)]
    pub key_grace: std::time::Duration,
    #[command(flatten)]
    pub signing: SigningArgs,
    /// When the stage logs and API Gateway's account settings have no CloudWatch role: create one
    /// (wsdeploy-apigateway-cloudwatch) and set it, for every API Gateway API of the account and region. Asks
    /// first unless --yes.
    #[arg(long)]
    pub setup_account_logging: bool,
    #[command(flatten)]
    pub lambdas: lambdas::SourceArgs,
}

/// What `plan` and `up` do to the signing secret the functions and the backend share.
#[derive(Debug, Clone, clap::Args)]
pub struct SigningArgs {
    /// Deploy a new signing secret. Until the next `up` the functions sign with both the new and the previous one
    /// (the backend's env file holds both), so a backend still running with the previous one keeps working;
    /// restart it with the env file before the next `up`, which retires the previous one.
    #[arg(long)]
    pub rotate_signing_secret: bool,
    /// After a leak: no overlap. With --rotate-signing-secret the deployed secret stops being accepted at once (in
    /// the functions and the env file), so every running backend must reload its env file straight away; alone,
    /// it retires a rotation's previous secret now instead of at the next `up`.
    #[arg(long)]
    pub revoke_previous: bool,
}

impl SigningArgs {
    fn ask(&self) -> crate::secret::SecretAsk {
        crate::secret::SecretAsk {
            rotate: self.rotate_signing_secret,
            revoke_previous: self.revoke_previous,
        }
    }
}

impl KeyArgs {
    fn options(&self) -> Options {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        Options {
            rotate_credentials: self.rotate_credentials,
            now,
            key_grace_secs: self.key_grace.as_secs() as i64,
            setup_account_logging: self.setup_account_logging,
        }
    }
}

impl Planned {
    /// Says what the plan leaves undone for want of the account's logging role, and asks before setting it: it is
    /// account-wide. `Ok(false)`: the user said no.
    pub fn check_account_logging(&self, ctx: &Context, keys: &KeyArgs) -> Result<bool> {
        if self.actions.contains(&Action::SetAccountLoggingRole) {
            let question = format!(
                "Set {} as API Gateway's CloudWatch role for account {} in {}? Every API Gateway API there may then log.",
                crate::facts::ACCOUNT_LOGGING_ROLE,
                self.desired.account,
                self.desired.region
            );
            return ctx.confirm(&question, "--setup-account-logging changes the account's API Gateway settings and there is no terminal to confirm on: pass --yes as well");
        }
        if !keys.setup_account_logging {
            if let Some(p) = crate::deploy::health::account_logging(&self.desired, &self.observed) {
                ctx.ui.warn(format!("{}. To fix it: {}", p.what, p.fix));
            }
        }
        Ok(true)
    }
}

impl Session {
    pub async fn plan(&self, progress: &dyn Progress, keys: &KeyArgs) -> Result<Planned> {
        let artifacts = self.artifacts(progress, &keys.lambdas).await?;
        let observed = self.observed.clone();
        let (signing, signing_change) = SigningSecrets::next(
            observed.signing_secrets(),
            keys.signing.ask(),
            crate::secret::new_signing_secret,
        );
        let desired = Desired::new(&self.stage, &self.caller, &artifacts, &signing)
            .map_err(anyhow::Error::from)?;
        let actions = plan(&desired, &observed, &keys.options()).map_err(anyhow::Error::from)?;
        Ok(Planned {
            desired,
            observed,
            actions,
            signing,
            signing_change,
        })
    }

    /// The stage as deployed, and the API it keeps; an error that says how to deploy it if there is none.
    pub async fn deployed(&self) -> Result<(Desired, Observed, ApiObs)> {
        let d = Desired::without_code(&self.stage, &self.caller);
        let o = self.observed.clone();
        let api = o.kept_api().cloned().ok_or_else(|| {
            anyhow::anyhow!(
                "stage {} is not deployed in {} ({}): run `wsdeploy up -s {}`",
                d.stage,
                d.region,
                d.account,
                d.stage
            )
        })?;
        Ok((d, o, api))
    }
}

/// The stage's domain: its regional host and, when wsdeploy does not manage the name's zone, the record to create.
fn domain_output(name: &str, o: &Observed, target: Option<&str>) -> Value {
    let target = target.or(o.domain.as_ref().map(|d| d.target.as_str()));
    json!({
        "name": name,
        "target": target,
        "zone": o.zone.as_ref().map(|z| &z.id),
        "dns_record": if o.zone.is_none() {
            target.map(|t| json!({ "name": name, "type": "CNAME", "value": t }))
        } else {
            None
        },
    })
}

/// The document `up --output json` and `outputs --output json` print (the public contract: scripts rely on these names; see docs/commands.md).
pub(crate) fn outputs(
    s: &Session,
    d: &Desired,
    (api, target): (Option<&ApiRef>, Option<&str>),
    key_id: Option<&str>,
    secrets: Option<(&str, &str)>,
) -> Value {
    let functions: serde_json::Map<String, Value> = d
        .functions
        .iter()
        .map(|f| (f.function.clone(), json!(f.name)))
        .collect();
    let mut v = json!({
        "project": d.project,
        "stage": d.stage,
        "region": d.region,
        "account": d.account,
        "api_id": api.map(|a| &a.id),
        "websocket_url": api.map(|a| d.websocket_url(a)),
        "management_endpoint": api.map(|a| d.management_endpoint(a)),
        "functions": functions,
        "role": d.names.role,
        "routes": d.routes.iter().map(|r| (r.key.clone(), json!(d.functions.iter().find(|f| f.function == r.function).map(|f| &f.name)))).collect::<serde_json::Map<_, _>>(),
        "credentials": match s.stage.credentials {
            CredentialsMode::IamUser => json!({ "mode": "iam-user", "user": d.names.user, "access_key_id": key_id }),
            CredentialsMode::Policy => json!({ "mode": "policy", "policy_arn": d.policy_arn() }),
        },
        "domain": d.domain.as_ref().map(|dom| domain_output(&dom.name, &s.observed, target)),
        "env_files": {
            "frontend": s.stage.env.frontend.as_ref().map(|f| &f.file),
            "backend": s.stage.env.backend.as_ref().map(|b| &b.file),
        },
    });
    if let Some((key_secret, signing)) = secrets {
        v["secrets"] = json!({ "secret_access_key": key_secret, "signing_secret": signing });
    }
    v
}
