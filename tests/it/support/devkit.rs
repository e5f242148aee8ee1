//! The harness of the `dev` tests: a backend on 127.0.0.1:0 that checks the Lambdas' signatures, `wsdeploy dev`
//! as a child process, WebSocket helpers, and a private copy of the bootstraps for tests that kill one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::support::util::BIN;

/// The seed's backend: stores connection ids per user, checks every call's signature.
#[derive(Default)]
pub(crate) struct Seen {
    pub secret: Option<String>,
    /// How long the backend takes to answer.
    pub delay: Duration,
    /// Answer without recording the call (a flood's bodies would fill the test's memory).
    pub forget: bool,
    pub calls: Vec<Call>,
}

/// (method, request target, Authorization, body, signature valid)
pub(crate) type Call = (Method, String, Option<String>, Vec<u8>, bool);

pub(crate) type Shared = Arc<Mutex<Seen>>;

async fn backend_handler(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let delay = s.lock().unwrap().delay;
    tokio::time::sleep(delay).await;
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let mut g = s.lock().unwrap();
    let secret = g.secret.clone().unwrap_or_default();
    let valid = signature_valid(&[secret.as_bytes()], &method, &target, &headers, &body);
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if !g.forget {
        g.calls
            .push((method.clone(), target, bearer.clone(), body.to_vec(), valid));
    }
    match (valid, method.as_str(), bearer.as_deref()) {
        (true, "POST", Some("Bearer good-token")) => StatusCode::CREATED,
        (false, _, _) | (true, "POST", _) => StatusCode::UNAUTHORIZED,
        (true, _, _) => StatusCode::NO_CONTENT,
    }
}

/// Whether the call's `X-Wsdeploy-Signature` verifies with one of `secrets`, checked as a backend does: over the
/// raw target, body and `Authorization` header, now.
pub(crate) fn signature_valid(
    secrets: &[&[u8]],
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> bool {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let req = wsdeploy_signature::Request {
        method: method.as_str(),
        target,
        body,
        authorization: header("authorization"),
    };
    wsdeploy_signature::verify(secrets, header("x-wsdeploy-signature"), &req, now).is_ok()
}

/// The seed's backend and `wsdeploy dev` pointed at it, the backend trusting this dev's signing secret.
pub(crate) async fn dev_with_backend(extra: &str, args: &[&str], cache: &Path) -> (Dev, Shared) {
    let (backend, seen) = start_backend().await;
    let dev = Dev::start_in(&backend, extra, args, cache);
    seen.lock().unwrap().secret = Some(dev.env["WS_SIGNING_SECRET"].clone());
    (dev, seen)
}

/// A socket on `dev` that sent the `auth` message with the token the backend accepts, and its connection id as
/// the backend received it.
pub(crate) async fn authenticated(dev: &Dev, seen: &Shared) -> (Ws, String) {
    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    let calls_before = seen.lock().unwrap().calls.len();
    ws.send(Message::Text(
        r#"{"action":"auth","token":"good-token"}"#.into(),
    ))
    .await
    .unwrap();
    assert_eq!(next_text(&mut ws).await, r#"{"ok":true,"type":"auth"}"#);
    let body = seen.lock().unwrap().calls[calls_before].3.clone();
    let body = serde_json::from_slice::<serde_json::Value>(&body).unwrap();
    // The client's address reaches the backend inside the signed body, for rate limiting.
    assert_eq!(body["sourceIp"], "127.0.0.1", "{body}");
    let id = body["connectionId"].as_str().unwrap().to_string();
    (ws, id)
}

pub(crate) async fn start_backend() -> (String, Shared) {
    let seen: Shared = Arc::default();
    let app = axum::Router::new()
        .fallback(backend_handler)
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

pub(crate) struct Dev {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub ws_url: String,
    pub env: BTreeMap<String, String>,
    log: PathBuf,
}

impl Dev {
    /// `wsdeploy dev --port 0` in a fresh app folder; returns once the env files hold its URLs.
    pub(crate) fn start(backend: &str, extra: &str, args: &[&str]) -> Dev {
        Dev::start_in(backend, extra, args, &crate::support::util::cache())
    }

    /// With the functions' build cache at `cache`.
    pub(crate) fn start_in(backend: &str, extra: &str, args: &[&str], cache: &Path) -> Dev {
        let dir = tempfile::tempdir().unwrap();
        for d in ["app", "frontend", "backend"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let config = format!(
            "project: chat\nregion: eu-west-3\nbackend: {{ url: '{backend}', timeout_ms: 2000 }}\nenv:\n  frontend: {{ file: ../frontend/.env }}\n  backend: {{ file: ../backend/.env }}\n{extra}"
        );
        std::fs::write(dir.path().join("app/wsdeploy.yaml"), config).unwrap();
        let log = dir.path().join("dev.log");
        let mut all = vec!["dev", "--port", "0"];
        all.extend_from_slice(args);
        let child = std::process::Command::new(BIN)
            .args(&all)
            .current_dir(dir.path().join("app"))
            .env("WSDEPLOY_CACHE_DIR", cache)
            .env("NO_COLOR", "1")
            .env_remove("AWS_ENDPOINT_URL")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("dev.err")).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut dev = Dev {
            child,
            ws_url: String::new(),
            env: BTreeMap::new(),
            log,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            // The frontend's file is written first, the backend's right after: wait for both.
            let front = crate::support::util::env_file(&dev.dir.path().join("frontend/.env"));
            let back = crate::support::util::env_file(&dev.dir.path().join("backend/.env"));
            if let (Some(url), true) = (
                front.get("VITE_WS_URL"),
                back.contains_key("WS_SIGNING_SECRET"),
            ) {
                dev.ws_url.clone_from(url);
                dev.env = back;
                return dev;
            }
            if let Ok(Some(status)) = dev.child.try_wait() {
                panic!("wsdeploy dev exited with {status}:\n{}", dev.output());
            }
            assert!(
                Instant::now() < deadline,
                "wsdeploy dev did not start:\n{}",
                dev.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn output(&self) -> String {
        let err = std::fs::read_to_string(self.dir.path().join("dev.err")).unwrap_or_default();
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{err}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    pub(crate) async fn management(&self) -> aws_sdk_apigatewaymanagement::Client {
        self.management_as(
            &self.env["WS_API_ACCESS_KEY_ID"],
            &self.env["WS_API_SECRET_ACCESS_KEY"],
        )
        .await
    }

    pub(crate) async fn management_as(
        &self,
        key: &str,
        secret: &str,
    ) -> aws_sdk_apigatewaymanagement::Client {
        self.management_in(key, secret, &self.env["WS_API_REGION"])
            .await
    }

    /// A client signing for `region`, which need not be the stage's.
    pub(crate) async fn management_in(
        &self,
        key: &str,
        secret: &str,
        region: &str,
    ) -> aws_sdk_apigatewaymanagement::Client {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .credentials_provider(aws_sdk_apigatewaymanagement::config::Credentials::new(
                key, secret, None, None, "test",
            ))
            .endpoint_url(&self.env["WS_API_ENDPOINT"])
            .load()
            .await;
        aws_sdk_apigatewaymanagement::Client::new(&conf)
    }

    /// SIGTERM, as Ctrl-C or a process manager would; returns the exit code.
    pub(crate) fn stop(&mut self) -> i32 {
        let (out, err) = (self.log.clone(), self.dir.path().join("dev.err"));
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        terminate(&mut self.child, || {
            format!(
                "--- stdout ---\n{}\n--- stderr ---\n{}",
                read(&out),
                read(&err)
            )
        })
    }
}

/// SIGTERM to `child`, then its exit code; panics with `output()` if it is still running after 40 s.
pub(crate) fn terminate(child: &mut Child, output: impl Fn() -> String) -> i32 {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s.code().unwrap_or(-1);
        }
        assert!(
            Instant::now() < deadline,
            "did not stop on SIGTERM:\n{}",
            output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn next_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
        {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(Message::Close(f))) => panic!("closed: {f:?}"),
            Some(Ok(_)) => {}
            other => panic!("no message: {other:?}"),
        }
    }
}

/// The close code the server sends within `secs` seconds (None if the socket just ends).
pub(crate) async fn close_code(ws: &mut Ws, secs: u64) -> Option<u16> {
    loop {
        match tokio::time::timeout(Duration::from_secs(secs), ws.next())
            .await
            .expect("a close frame in time")
        {
            Some(Ok(Message::Close(f))) => return f.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            _ => return None,
        }
    }
}

pub(crate) async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A private copy of the host-built bootstraps: this test can kill or freeze exactly its own function process.
pub(crate) fn private_cache() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let built =
        crate::support::util::wsdeploy(dir.path(), &["build", "--host", "--output", "json"])
            .env("WSDEPLOY_CACHE_DIR", crate::support::util::cache())
            .expect(0)
            .json();
    let connect = PathBuf::from(built["functions"]["connect"]["bootstrap"].as_str().unwrap());
    let artifacts = connect.parent().unwrap().parent().unwrap();
    let copy = dir
        .path()
        .join("artifacts")
        .join(artifacts.file_name().unwrap());
    crate::support::util::copy_tree(artifacts, &copy, &[]);
    dir
}

/// The `bootstrap` of a bundled function in a private cache (see [`private_cache`]).
pub(crate) fn bootstrap_in(cache: &Path, function: &str) -> PathBuf {
    walk(cache)
        .into_iter()
        .find(|p| p.ends_with(format!("{function}/bootstrap")))
        .unwrap_or_else(|| panic!("no {function}/bootstrap in {}", cache.display()))
}

pub(crate) fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Pids of the processes running `exe` without arguments (as dev runs the bootstraps).
pub(crate) fn pids_of(exe: &Path) -> Vec<String> {
    pids_running(&[&exe.to_string_lossy()])
}

/// Pids whose command line is exactly `argv` (read from /proc, so procps is not needed).
pub(crate) fn pids_running(argv: &[&str]) -> Vec<String> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| std::fs::read(e.path().join("cmdline")).ok().as_deref() == Some(&want[..]))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

pub(crate) fn signal(pids: &[String], sig: &str) {
    for p in pids {
        let _ = std::process::Command::new("kill").args([sig, p]).status();
    }
}

/// A copy of `examples/chat` in `dir/chat`, leaving out every entry named in `skip`, its backend moved to a free
/// port (dev gives `backend.url`'s port to the example as PORT). Returns that port.
/// Where the chat example is, in the repository and in a test's copy of it (so that the README's paths hold there).
pub(crate) const CHAT: &str = "examples/chat";

pub(crate) fn chat_example(dir: &Path, skip: &[&str]) -> u16 {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::support::util::copy_tree(&root.join(CHAT), &dir.join(CHAT), skip);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.join(CHAT).join("wsdeploy.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("http://127.0.0.1:3000"), "{text}");
    std::fs::write(
        &config,
        text.replace("127.0.0.1:3000", &format!("127.0.0.1:{port}")),
    )
    .unwrap();
    port
}

/// Waits until `dev`'s stderr (the file `err`) says `ready: open`. If the process ends first or `limit` passes, it
/// is killed and the test fails with `report`.
pub(crate) fn wait_ready(
    dev: &mut Child,
    err: &Path,
    limit: Duration,
    report: impl Fn() -> String,
) {
    let deadline = Instant::now() + limit;
    while !std::fs::read_to_string(err)
        .unwrap_or_default()
        .contains("ready: open")
    {
        if let Some(s) = dev.try_wait().unwrap() {
            panic!("wsdeploy dev exited with {s}:\n{}", report());
        }
        if Instant::now() > deadline {
            let _ = dev.kill();
            let _ = dev.wait();
            panic!(
                "the example did not come up within {limit:?}:\n{}",
                report()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Pids of the processes whose executable is `exe` (however they were started).
pub(crate) fn pids_of_exe(exe: &Path) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter(|e| std::fs::read_link(e.path().join("exe")).is_ok_and(|p| p == exe))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}
