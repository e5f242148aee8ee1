//! `wsdeploy dev`: the whole system on this machine. A WebSocket gateway and the @connections API that behave
//! like API Gateway, and the very same Lambda bootstraps that `up` deploys, built for this machine and run as real
//! processes under a local Lambda Runtime API.

pub(crate) mod app;
pub(crate) mod gateway;
pub(crate) mod runtime;
pub(crate) mod sigv4;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;

use crate::config::{self, StageConfig};
use crate::envfile;
use crate::facts::INTEGRATION_TIMEOUT_S;
use crate::lambdas::{self, Target};
use crate::secret;

/// Lines about connections and invocations (hidden by -q); the functions' own output, prefixed with their name.
#[derive(Clone)]
pub(crate) struct Log {
    pub quiet: bool,
}

impl Log {
    pub(crate) fn line(&self, s: &str) {
        if !self.quiet {
            say(s);
        }
    }

    pub(crate) fn function(&self, name: &str, line: &str) {
        if !self.quiet {
            say(&format!("[{name}] {line}"));
        }
    }
}

pub(crate) use crate::ui::say;

pub(crate) struct Options {
    pub host: std::net::IpAddr,
    pub port: u16,
    pub idle: Duration,
    pub max_life: Duration,
    pub log: Log,
}

/// What `dev` tells people and machines once it listens.
pub(crate) struct Running {
    pub websocket_url: String,
    pub management_endpoint: String,
    pub access_key_id: String,
}

/// Processes per function at most: enough for a developer's concurrency, bounded so a flood cannot fork-bomb.
const MAX_PROCESSES: usize = 4;

/// The backend's dev credentials and signing secret: the ones its env file holds from an earlier `dev`, or new.
fn credentials(stage: &StageConfig) -> (String, String, String) {
    let existing = stage.env.backend.as_ref().and_then(|b| {
        let text = std::fs::read_to_string(&b.file).ok()?;
        let id = envfile::get(&text, &b.access_key_id)
            .filter(|k| k.starts_with(secret::DEV_KEY_PREFIX))?;
        let secret = envfile::get(&text, &b.secret_access_key).filter(|s| !s.is_empty())?;
        let signing = envfile::get(&text, &b.signing_secret).filter(|s| !s.is_empty())?;
        Some((id, secret, signing))
    });
    existing.unwrap_or_else(|| {
        let (id, secret) = secret::new_dev_key();
        (id, secret, secret::new_signing_secret())
    })
}

/// Runs until `shutdown` resolves, then closes every socket with 1001 (firing `$disconnect`) and stops the functions.
pub(crate) async fn run(
    stage: StageConfig,
    opts: Options,
    started: impl FnOnce(&Running),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let built = tokio::task::spawn_blocking(|| lambdas::build(Target::Host)).await??;
    let (key_id, secret, signing) = credentials(&stage);
    let listener = tokio::net::TcpListener::bind((opts.host, opts.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}: is another `wsdeploy dev` running? Pick another port with --port", opts.host, opts.port))?;
    let addr = listener.local_addr()?;
    let base = format!(
        "{}:{}",
        if opts.host.is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            opts.host.to_string()
        },
        addr.port()
    );
    let mut env: Vec<(String, String)> = stage.function_env(&signing).into_iter().collect();
    // Set by Lambda itself on AWS.
    env.push(("AWS_REGION".into(), stage.region.clone()));
    env.push((
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(),
        stage.lambda.memory_mb.to_string(),
    ));
    let timeout = Duration::from_secs(u64::from(stage.lambda.timeout_s.min(INTEGRATION_TIMEOUT_S)));
    let mut pools = BTreeMap::new();
    for f in stage.functions() {
        let exe = built
            .iter()
            .find(|x| x.function == f)
            .with_context(|| format!("no bundled function {f}"))?
            .bootstrap
            .clone();
        pools.insert(
            f.clone(),
            runtime::Pool::start(
                &stage.function_name(&f),
                exe,
                env.clone(),
                timeout,
                MAX_PROCESSES,
                opts.log.clone(),
            )
            .await?,
        );
    }
    let routes = stage
        .routes
        .iter()
        .map(|(key, f)| {
            (
                key.clone(),
                gateway::Route {
                    pool: pools[f].clone(),
                    reply: config::replies(key, f),
                },
            )
        })
        .collect();
    let verifier = sigv4::Verifier {
        access_key_id: key_id.clone(),
        secret_access_key: secret.clone(),
        region: stage.region.clone(),
    };
    let gw = gateway::Gateway::new(
        stage.stage.clone(),
        base.clone(),
        routes,
        gateway::Limits {
            idle: opts.idle,
            max_life: opts.max_life,
        },
        verifier,
        opts.log.clone(),
    );
    let running = Running {
        websocket_url: format!("ws://{base}/{}", stage.stage),
        management_endpoint: format!("http://{base}/{}", stage.stage),
        access_key_id: key_id.clone(),
    };
    envfile::write_stage(
        &stage.env,
        &envfile::StageValues {
            websocket_url: &running.websocket_url,
            endpoint: &running.management_endpoint,
            region: &stage.region,
            key: Some((&key_id, &secret)),
            drop_key: false,
            signing_secret: &signing,
        },
    )?;
    started(&running);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let closing = gw.clone();
    let service = gw
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let server = tokio::spawn(async move {
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
                // Sockets first: their $disconnect calls still reach the app's backend.
                closing.close_all(Duration::from_secs(30)).await;
            })
            .await
    });
    let mut app = app::App::start(&stage.dev, app_port(&stage.backend.url))?;
    if let (Some(open), Some(_)) = (stage.dev.open.clone(), &app) {
        tokio::spawn(announce(open));
    }
    // Until Ctrl-C (or SIGTERM, SIGHUP), or until dev.command ends by itself: then dev stops too.
    let app_ended = async {
        match app.as_mut() {
            Some(a) => a.exited().await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        () = shutdown => None,
        status = app_ended => Some(status),
    };
    let _ = stop_tx.send(());
    server.await??;
    let why = match (app, ended) {
        (Some(app), Some(status)) => Some(format!(
            "dev.command `{}` stopped ({}); its output is above, prefixed with [app]",
            app.command(),
            match status {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            }
        )),
        (Some(app), None) => {
            app.stop().await;
            None
        }
        (None, _) => None,
    };
    for p in pools.values() {
        p.stop().await;
    }
    match why {
        Some(why) => Err(anyhow::anyhow!(why)),
        None => Ok(()),
    }
}

/// Prints `ready: open URL` once `dev.open` answers (or a warning if it never does).
async fn announce(open: String) {
    if app::wait_until_listening(&open, APP_START_LIMIT).await {
        say(&format!("\n  ready: open {open}\n"));
    } else {
        say(&format!(
            "warning: {open} (dev.open) does not answer after {} s; is dev.command listening on that port?",
            APP_START_LIMIT.as_secs()
        ));
    }
}

/// How long `dev.open` may take to answer (a first `npm install` included).
const APP_START_LIMIT: Duration = Duration::from_secs(180);

/// The backend URL's port, given to `dev.command` as PORT when the backend runs here.
fn app_port(url: &str) -> Option<u16> {
    let u = url::Url::parse(url).ok()?;
    config::is_local(&u)
        .then(|| u.port_or_known_default())
        .flatten()
}
