//! `wsdeploy dev`: the whole system on this machine. A WebSocket gateway and the @connections API that behave
//! like API Gateway, and the very same Lambda bootstraps that `up` deploys, built for this machine and run as real
//! processes under a local Lambda Runtime API.

pub(crate) mod app;
mod events;
pub(crate) mod gateway;
mod invoke;
mod origin;
pub(crate) mod runtime;
mod serve;
pub(crate) mod sigv4;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;

use crate::config::{self, StageConfig};
use crate::envfile;
use crate::facts::INTEGRATION_TIMEOUT_S;
use crate::lambdas::{self, Target};
use crate::secret;
use crate::ui::say;

/// Lines about connections and invocations (hidden by -q); the functions' own output, prefixed with their name.
#[derive(Clone)]
pub(crate) struct Log {
    pub quiet: bool,
}

impl Log {
    /// A line that may carry what a client chose (a close reason, an Origin, a User-Agent): its control
    /// characters are escaped, so that no client can move the cursor, retitle or rewrite the developer's terminal.
    /// Formatting waits for the check: under `-q` a line per `@connections` call costs nothing (pass `format_args!`).
    pub(crate) fn line(&self, s: impl std::fmt::Display) {
        if !self.quiet {
            say(&crate::logfmt::printable(&s.to_string()));
        }
    }

    /// A function's output line, laid out as `wsdeploy logs` shows the deployed functions' lines.
    pub(crate) fn function(&self, name: &str, line: &str) {
        if !self.quiet {
            let text = crate::logfmt::text(name, line, crate::logfmt::Colour::Off);
            say(&format!("[{name}] {text}"));
        }
    }
}

pub(crate) struct Options {
    pub host: std::net::IpAddr,
    pub port: u16,
    pub idle: Duration,
    pub max_life: Duration,
    pub log: Log,
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (the WebSocket handshake included).
    pub header_timeout: Duration,
    /// `--allow-origin`: web pages besides this app's own that may open a socket.
    pub allow_origins: Vec<String>,
    /// `--lose-disconnects`: the share (0 to 1) of closed sockets whose `$disconnect` is not run.
    pub lose_disconnects: f64,
    /// Whether to use the functions this binary carries prebuilt.
    pub source: lambdas::SourceArgs,
}

/// What `dev` tells people and machines once it listens.
pub(crate) struct Running {
    pub websocket_url: String,
    pub management_endpoint: String,
    /// The Lambda Invoke API's endpoint (for the fan-out function).
    pub lambda_endpoint: String,
    pub access_key_id: String,
    /// Where the functions came from ("prebuilt (embedded in wsdeploy)", "compiled from source: …").
    pub functions: String,
}

/// Processes per function at most: enough for a developer's concurrency, bounded so a flood cannot fork-bomb.
const MAX_PROCESSES: usize = 4;
/// HTTP connections that are not (yet) WebSockets, at most: handshakes in progress and the backend's keep-alive
/// `@connections` connections (a fan-out keeps tens open, the article's loop up to its agent's 50).
const MAX_HTTP_CONNECTIONS: usize = 512;

/// The backend's dev credentials and signing secret: the ones its env file holds from an earlier `dev`, or new.
fn credentials(stage: &StageConfig) -> (String, String, String) {
    let existing = stage.env.backend.as_ref().and_then(|b| {
        let text = std::fs::read_to_string(&b.file).ok()?;
        let id = envfile::get(&text, &b.access_key_id)
            .filter(|k| k.starts_with(secret::DEV_KEY_PREFIX))?;
        let secret = envfile::get(&text, &b.secret_access_key).filter(|s| !s.is_empty())?;
        let signing = envfile::stage_signing_secret(&text, b, &stage.names().prefix)?;
        Some((id, secret, signing))
    });
    existing.unwrap_or_else(|| {
        let (id, secret) = secret::new_dev_key();
        (id, secret, secret::new_signing_secret())
    })
}

/// The backend's dev key pair and the signing secret it shares with the functions.
struct Secrets {
    key_id: String,
    secret: String,
    signing: secret::SigningSecrets,
}

/// Runs until `shutdown` resolves, then closes every socket with 1001 (firing `$disconnect`) and stops the functions.
pub(crate) async fn run(
    stage: StageConfig,
    opts: Options,
    started: impl FnOnce(&Running),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let source = opts.source.clone();
    let functions =
        tokio::task::spawn_blocking(move || lambdas::get(Target::Host, &source)).await??;
    let built = &functions.built;
    let (key_id, secret, signing) = credentials(&stage);
    let secrets = Secrets {
        key_id,
        secret,
        signing: secret::SigningSecrets::single(signing),
    };
    let listener = tokio::net::TcpListener::bind((opts.host, opts.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}: is another `wsdeploy dev` running? Pick another port with --port", opts.host, opts.port))?;
    let base = reachable_at(opts.host, listener.local_addr()?.port());
    let management_endpoint = format!("http://{base}/{}", stage.stage);
    let pools = start_functions(&stage, built, (&secrets, &management_endpoint), &opts.log).await?;
    let gw = gateway(&stage, &opts, &base, &pools, &secrets);
    let running = Running {
        websocket_url: format!("ws://{base}/{}", stage.stage),
        management_endpoint,
        lambda_endpoint: format!("http://{base}"),
        access_key_id: secrets.key_id.clone(),
        functions: functions.describe(),
    };
    let fanout = stage.fanout_function();
    envfile::write_stage(
        &stage.env,
        &envfile::StageValues {
            websocket_url: &running.websocket_url,
            endpoint: &running.management_endpoint,
            region: &stage.region,
            key: Some((&secrets.key_id, &secrets.secret)),
            drop_key: false,
            signing: &secrets.signing,
            stage: &stage.names().prefix,
            fanout_function: fanout.as_deref(),
            fanout_endpoint: stage.fanout.then_some(running.lambda_endpoint.as_str()),
        },
    )?;
    started(&running);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let closing = gw.clone();
    let router = gw
        .router()
        .merge(invoker(&stage, &pools, &secrets, &opts.log).router());
    let guard = serve::Guard {
        header_timeout: opts.header_timeout,
        max_http_connections: MAX_HTTP_CONNECTIONS,
    };
    let server = tokio::spawn(serve::serve(
        listener,
        router,
        guard,
        opts.log.clone(),
        async move {
            let _ = stop_rx.await;
            // Sockets first: their $disconnect calls still reach the app's backend.
            closing.close_all(Duration::from_secs(30)).await;
        },
    ));
    let why = run_app(&stage, shutdown).await;
    let _ = stop_tx.send(());
    server.await?;
    let why = match why? {
        AppEnd::Stopped(app) => {
            if let Some(app) = app {
                app.stop().await;
            }
            None
        }
        AppEnd::Exited(why) => Some(why),
    };
    for p in pools.values() {
        p.stop().await;
    }
    why.map_or(Ok(()), |why| Err(anyhow::anyhow!(why)))
}

/// Where clients reach the gateway: the bound port on the host given, or on loopback when bound to every address.
fn reachable_at(host: std::net::IpAddr, port: u16) -> String {
    if host.is_unspecified() {
        format!("127.0.0.1:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One pool of processes per bundled function the routes use, each with the environment Lambda would give it.
async fn start_functions(
    stage: &StageConfig,
    built: &[lambdas::Built],
    (secrets, management_endpoint): (&Secrets, &str),
    log: &Log,
) -> anyhow::Result<BTreeMap<String, std::sync::Arc<runtime::Pool>>> {
    let env: Vec<(String, String)> = [
        // Lambda gives a function its role's credentials; here the only identity `@connections` knows is the dev
        // key, and the endpoint is dev's own rather than the API's execute-api host.
        (
            crate::config::resolve::FUNCTION_ENV_MANAGEMENT_ENDPOINT,
            management_endpoint.to_string(),
        ),
        ("AWS_ACCESS_KEY_ID", secrets.key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", secrets.secret.clone()),
        // Set by Lambda itself on AWS, from the stage's configuration.
        (
            crate::config::resolve::FUNCTION_ENV_API_ID,
            events::API_ID.to_string(),
        ),
        ("AWS_REGION", stage.region.clone()),
        ("AWS_DEFAULT_REGION", stage.region.clone()),
        (
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            stage.lambda.memory_mb.to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let timeout = Duration::from_secs(u64::from(stage.lambda.timeout_s.min(INTEGRATION_TIMEOUT_S)));
    let mut pools = BTreeMap::new();
    for f in stage.functions() {
        let exe = built
            .iter()
            .find(|x| x.function == f)
            .with_context(|| format!("no bundled function {f}"))?
            .bootstrap
            .clone();
        let name = stage.function_name(&f);
        let own = stage.function_env(&f, &secrets.signing).into_iter();
        let env = own.chain(env.iter().cloned()).collect();
        let pool =
            runtime::Pool::start(&name, exe, env, timeout, MAX_PROCESSES, log.clone()).await?;
        pools.insert(f, pool);
    }
    Ok(pools)
}

/// The gateway: the stage's routes onto the function pools, `@connections` checked against the dev key.
fn gateway(
    stage: &StageConfig,
    opts: &Options,
    base: &str,
    pools: &BTreeMap<String, std::sync::Arc<runtime::Pool>>,
    secrets: &Secrets,
) -> std::sync::Arc<gateway::Gateway> {
    let routes = stage
        .routes
        .iter()
        .map(|(key, f)| {
            let route = gateway::Route {
                pool: pools[f].clone(),
                reply: config::replies(key, f),
            };
            (key.clone(), route)
        })
        .collect();
    let verifier = dev_key(stage, secrets);
    let own_pages = stage
        .dev
        .open
        .iter()
        .map(String::as_str)
        .chain([stage.backend.url.as_str()]);
    let limits = gateway::Limits {
        idle: opts.idle,
        max_life: opts.max_life,
        max_connections: opts.max_connections,
        body_timeout: opts.header_timeout,
        origins: origin::Allowed::new(own_pages, opts.allow_origins.iter().map(String::as_str)),
        lose_disconnects: opts.lose_disconnects,
    };
    gateway::Gateway::new(
        stage.stage.clone(),
        base.to_string(),
        routes,
        stage.heartbeat,
        limits,
        verifier,
        opts.log.clone(),
    )
}

/// The one identity `dev`'s AWS endpoints know: the dev key written into the backend's env file.
fn dev_key(stage: &StageConfig, secrets: &Secrets) -> sigv4::Verifier {
    sigv4::Verifier::new(
        secrets.key_id.clone(),
        secrets.secret.clone(),
        stage.region.clone(),
    )
}

/// The Lambda Invoke API for the functions no route leads to (the fan-out function), by their full names.
fn invoker(
    stage: &StageConfig,
    pools: &BTreeMap<String, std::sync::Arc<runtime::Pool>>,
    secrets: &Secrets,
    log: &Log,
) -> std::sync::Arc<invoke::Invoker> {
    let functions = pools
        .iter()
        .filter(|(f, _)| !config::rules::ROUTE_FUNCTIONS.contains(&f.as_str()))
        .map(|(f, pool)| (stage.function_name(f), pool.clone()))
        .collect();
    std::sync::Arc::new(invoke::Invoker {
        functions,
        verifier: dev_key(stage, secrets),
        log: log.clone(),
    })
}

/// How `dev.command` ended.
enum AppEnd {
    /// dev was asked to stop (or there is no command): the app, if any, is still running.
    Stopped(Option<app::App>),
    /// The command ended by itself, which stops dev: why, in a sentence.
    Exited(String),
}

/// Starts `dev.command` and waits until Ctrl-C (or SIGTERM, SIGHUP), or until the command ends by itself.
async fn run_app(
    stage: &StageConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<AppEnd> {
    let Some(mut app) = app::App::start(&stage.dev, app_port(&stage.backend.url))? else {
        shutdown.await;
        return Ok(AppEnd::Stopped(None));
    };
    if let Some(open) = stage.dev.open.clone() {
        tokio::spawn(announce(open));
    }
    tokio::select! {
        () = shutdown => Ok(AppEnd::Stopped(Some(app))),
        status = app.exited() => Ok(AppEnd::Exited(format!(
            "dev.command `{}` stopped ({}); its output is above, prefixed with [app]",
            app.command(),
            match status {
                Ok(s) => s.to_string(),
                Err(e) => e.to_string(),
            }
        ))),
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
