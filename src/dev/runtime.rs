//! The Lambda Runtime API, served to the very bootstrap binaries `up` deploys, run here as real processes.
//! Each process gets its own loopback endpoint (`AWS_LAMBDA_RUNTIME_API`), so a crash fails exactly the invocation
//! that process held; a crashed process is replaced.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch, Mutex};

/// Why an invocation produced no response (the client then gets "Internal server error").
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InvokeError {
    /// The function reported an error (`/invocation/{id}/error`).
    Function(String),
    /// The process died while holding the invocation.
    Crashed(String),
    /// No answer within the integration timeout.
    Timeout(Duration),
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Function(e) => write!(f, "function error: {e}"),
            InvokeError::Crashed(e) => write!(f, "function process crashed: {e}"),
            InvokeError::Timeout(d) => write!(f, "no response within {} s", d.as_secs()),
        }
    }
}

type Reply = oneshot::Sender<Result<Value, InvokeError>>;

struct Invocation {
    id: String,
    event: Value,
    reply: Reply,
}

/// One bundled function: a queue of invocations and the processes that take them.
pub(crate) struct Pool {
    pub name: String,
    queue: mpsc::Sender<Invocation>,
    rx: Arc<Mutex<mpsc::Receiver<Invocation>>>,
    timeout: Duration,
    counter: AtomicU64,
    /// Set once to stop: every supervisor kills its process and ends.
    stopping: watch::Sender<bool>,
    supervisors: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    log: super::Log,
    bootstrap: PathBuf,
    env: Vec<(String, String)>,
    /// Processes started, and how many of them wait for work right now.
    processes: AtomicUsize,
    idle: Arc<AtomicUsize>,
    max_processes: usize,
}

/// What one process's endpoint shares with its supervisor.
struct Endpoint {
    rx: Arc<Mutex<mpsc::Receiver<Invocation>>>,
    idle: Arc<AtomicUsize>,
    /// Invocations this process took and has not answered.
    held: Mutex<HashMap<String, Reply>>,
    arn: String,
    timeout: Duration,
}

impl Pool {
    /// Starts one warm process of `bootstrap` with `env`; more start on demand, up to `max_processes`.
    /// Lambda output is prefixed with the function's name.
    pub(crate) async fn start(
        name: &str,
        bootstrap: PathBuf,
        env: Vec<(String, String)>,
        timeout: Duration,
        max_processes: usize,
        log: super::Log,
    ) -> anyhow::Result<Arc<Pool>> {
        let (queue, rx) = mpsc::channel(1024);
        let pool = Arc::new(Pool {
            name: name.to_string(),
            queue,
            rx: Arc::new(Mutex::new(rx)),
            timeout,
            counter: AtomicU64::new(0),
            stopping: watch::channel(false).0,
            supervisors: std::sync::Mutex::new(Vec::new()),
            log,
            bootstrap,
            env,
            processes: AtomicUsize::new(0),
            idle: Arc::new(AtomicUsize::new(0)),
            max_processes: max_processes.max(1),
        });
        pool.clone().spawn_process().await?;
        Ok(pool)
    }

    /// Stops every process of the pool and waits until they are gone.
    pub(crate) async fn stop(&self) {
        let _ = self.stopping.send(true);
        let supervisors = std::mem::take(&mut *self.supervisors.lock().expect("supervisors"));
        for s in supervisors {
            let _ = s.await;
        }
    }

    /// Runs the function on `event`; the integration timeout bounds the wait.
    pub(crate) async fn invoke(self: &Arc<Self>, event: Value) -> Result<Value, InvokeError> {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        let id = format!(
            "{:08x}-{:04x}-4000-8000-{:012x}",
            rand::random::<u32>(),
            n & 0xffff,
            rand::random::<u64>() & 0xffff_ffff_ffff
        );
        let (reply, answer) = oneshot::channel();
        // Every process busy: one more, as Lambda would scale out (bounded, so a flood cannot fork-bomb).
        let busy = self.idle.load(Ordering::SeqCst) == 0;
        if busy && self.processes.load(Ordering::SeqCst) < self.max_processes {
            if let Err(e) = self.clone().spawn_process().await {
                self.log
                    .line(format!("[{}] cannot start another process: {e}", self.name));
            }
        }
        // The deadline covers the wait for a free process too: API Gateway's 29 s run from the request, and a
        // queue that a flood keeps full must not hold an invocation (and its event) for ever.
        let invoked = async {
            if self
                .queue
                .send(Invocation { id, event, reply })
                .await
                .is_err()
            {
                return Err(InvokeError::Crashed("the function is stopped".into()));
            }
            answer.await.unwrap_or_else(|_| {
                Err(InvokeError::Crashed(
                    "the function process went away".into(),
                ))
            })
        };
        tokio::time::timeout(self.timeout, invoked)
            .await
            .unwrap_or(Err(InvokeError::Timeout(self.timeout)))
    }

    async fn spawn_process(self: Arc<Self>) -> anyhow::Result<()> {
        self.processes.fetch_add(1, Ordering::SeqCst);
        let (bootstrap, env) = (self.bootstrap.clone(), self.env.clone());
        let endpoint = Arc::new(Endpoint {
            rx: self.rx.clone(),
            idle: self.idle.clone(),
            held: Mutex::new(HashMap::new()),
            arn: format!("arn:aws:lambda:local:000000000000:function:{}", self.name),
            timeout: self.timeout,
        });
        // Invocations carry users' tokens: only the processes dev starts, which are given this path, may take them
        // (any other program on the machine can reach a loopback port).
        let token = crate::secret::new_signing_secret();
        let api = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(endpoint.clone());
        let app = axum::Router::new().nest(&format!("/{token}"), api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        // A URI with a path (AWS gives `host:port`): the functions' runtime client keeps the path as its base.
        let runtime_api = format!("http://{}/{token}", listener.local_addr()?);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let pool = self.clone();
        let mut stop = self.stopping.subscribe();
        let supervisor = tokio::spawn(async move {
            let mut restarts = 0u32;
            loop {
                if *stop.borrow() {
                    break;
                }
                let child = function_process(&bootstrap, &env, &pool.name, &runtime_api).spawn();
                let mut child = match child {
                    Ok(c) => c,
                    Err(e) => {
                        pool.log.line(format!(
                            "[{}] cannot start {}: {e}",
                            pool.name,
                            bootstrap.display()
                        ));
                        return;
                    }
                };
                forward_output(&mut child, &pool.name, &pool.log);
                let status = tokio::select! {
                    s = child.wait() => s.map_or_else(|e| e.to_string(), |s| s.to_string()),
                    () = async { let _ = stop.wait_for(|s| *s).await; } => { let _ = child.kill().await; break; }
                };
                // Whatever this process held will never be answered.
                for (_, reply) in endpoint.held.lock().await.drain() {
                    let _ = reply.send(Err(InvokeError::Crashed(status.clone())));
                }
                if *stop.borrow() {
                    break;
                }
                restarts += 1;
                pool.log.line(format!(
                    "[{}] process exited ({status}); starting a new one",
                    pool.name
                ));
                tokio::time::sleep(Duration::from_millis(100 * u64::from(restarts.min(20)))).await;
            }
            server.abort();
        });
        self.supervisors
            .lock()
            .expect("supervisors")
            .push(supervisor);
        Ok(())
    }
}

async fn next(State(e): State<Arc<Endpoint>>) -> Response {
    e.idle.fetch_add(1, Ordering::SeqCst);
    let inv = { e.rx.lock().await.recv().await };
    e.idle.fetch_sub(1, Ordering::SeqCst);
    let Some(inv) = inv else {
        return StatusCode::GONE.into_response();
    };
    let deadline = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + e.timeout;
    let body = inv.event.to_string();
    e.held.lock().await.insert(inv.id.clone(), inv.reply);
    Response::builder()
        .header("Lambda-Runtime-Aws-Request-Id", &inv.id)
        .header(
            "Lambda-Runtime-Deadline-Ms",
            deadline.as_millis().to_string(),
        )
        .header("Lambda-Runtime-Invoked-Function-Arn", &e.arn)
        .header(
            "Lambda-Runtime-Trace-Id",
            format!(
                "Root=1-{:08x}-{:024x}",
                deadline.as_secs(),
                rand::random::<u64>()
            ),
        )
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body))
        .expect("valid response")
}

async fn response(
    State(e): State<Arc<Endpoint>>,
    Path(id): Path<String>,
    body: String,
) -> StatusCode {
    match e.held.lock().await.remove(&id) {
        Some(reply) => {
            let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
            let _ = reply.send(Ok(value));
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn error(State(e): State<Arc<Endpoint>>, Path(id): Path<String>, body: String) -> StatusCode {
    match e.held.lock().await.remove(&id) {
        Some(reply) => {
            let _ = reply.send(Err(InvokeError::Function(body)));
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn init_error(body: String) -> StatusCode {
    tracing::error!(%body, "a function failed to initialise");
    StatusCode::ACCEPTED
}

/// What Lambda's execution environment defines for a provided.al2023 function, whatever its configuration
/// (<https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime>).
const LAMBDA_DEFINED: [(&str, &str); 6] = [
    ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
    ("LANG", "en_US.UTF-8"),
    ("TZ", ":UTC"),
    ("_HANDLER", crate::facts::HANDLER),
    ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
    ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
];

/// A function's process as Lambda starts it: a clean environment (nothing of the developer's shell: a variable
/// that happens to be set here would not be on AWS), its configured variables, and those Lambda itself sets.
fn function_process(
    bootstrap: &std::path::Path,
    env: &[(String, String)],
    name: &str,
    runtime_api: &str,
) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(bootstrap);
    // Out of the terminal's process group: Ctrl-C reaches dev alone, and the functions stay up to run the
    // $disconnect of every socket dev then closes.
    #[cfg(unix)]
    command.process_group(0);
    let task_root = bootstrap.parent().unwrap_or(bootstrap);
    command
        .env_clear()
        .envs(LAMBDA_DEFINED)
        .env("LAMBDA_TASK_ROOT", task_root)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    command
}

/// The process's stdout and stderr, line by line, into dev's log under the function's name.
fn forward_output(child: &mut tokio::process::Child, name: &str, log: &super::Log) {
    let outputs = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ];
    for out in outputs.into_iter().flatten() {
        let (name, log) = (name.to_string(), log.clone());
        tokio::spawn(async move {
            let mut lines = BufReader::new(out).lines();
            while let Ok(Some(l)) = lines.next_line().await {
                log.function(&name, &l);
            }
        });
    }
}
