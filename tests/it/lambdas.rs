//! The bundled Lambdas as the CLI builds them: arm64's missing-tool message, reproducible `x86_64` zips, and the
//! host build run as real processes speaking the Lambda Runtime API to a real backend.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::routing::{any, get, post};
use serde_json::{json, Value};

use crate::support::devkit::signature_valid;
use crate::support::util::{cache, wsdeploy};

fn build(args: &[&str]) -> Value {
    let mut all = vec!["build", "--output", "json"];
    all.extend_from_slice(args);
    let dir = tempfile::tempdir().unwrap();
    wsdeploy(dir.path(), &all)
        .env("WSDEPLOY_CACHE_DIR", cache())
        .env("PATH", std::env::var_os("PATH").unwrap())
        .expect(0)
        .json()
}

#[test]
fn arm64_without_its_rust_target_says_what_to_install() {
    let installed = std::process::Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if installed
        .as_deref()
        .map_or(true, |t| t.contains("aarch64-unknown-linux-gnu"))
    {
        eprintln!(
            "this machine can build for arm64; the missing-target message cannot be shown here"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let run = wsdeploy(dir.path(), &["build", "--arch", "arm64"])
        .env("WSDEPLOY_CACHE_DIR", dir.path())
        .expect(1);
    run.check(
        run.stderr.contains("needs tools this machine lacks")
            && run
                .stderr
                .contains("`rustup target add aarch64-unknown-linux-gnu`"),
        "one message, with the command",
    );
}

#[test]
fn x86_64_zips_are_small_and_byte_identical_across_builds() {
    let from_source = ["--arch", "x86_64", "--build-from-source"];
    let first = build(&from_source);
    // A second build from scratch of the artifacts (the compiler's cache stays) must give the same bytes.
    let artifacts = cache().join("artifacts");
    let before: Vec<(String, Vec<u8>)> = ["connect", "disconnect"]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read(first["functions"][f]["zip"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    // Only this target's artifacts: other tests share the cache (the host build among them).
    for entry in std::fs::read_dir(&artifacts).unwrap() {
        let dir = entry.unwrap().path();
        if dir.to_string_lossy().ends_with("-lambda-x86_64-release") {
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
    let second = build(&from_source);
    assert_eq!(second["origin"], "compiled", "{second}");
    for (f, bytes) in &before {
        let again = std::fs::read(second["functions"][f]["zip"].as_str().unwrap()).unwrap();
        assert!(
            again == *bytes,
            "{f}: the zip differs between two builds of the same code"
        );
        assert_eq!(
            first["functions"][f]["code_sha256"],
            second["functions"][f]["code_sha256"]
        );
        let size = second["functions"][f]["zip_bytes"].as_u64().unwrap();
        assert!(
            size <= 1_500_000,
            "{f}: zip is {size} bytes, over the 1.5 MB budget"
        );
        eprintln!("{f}: zip {size} bytes");
    }
    let third = build(&from_source);
    assert_eq!(
        (&third["origin"], &third["from_source_because"]),
        (&json!("cached"), &json!("--build-from-source")),
        "an unchanged build comes from the cache"
    );
}

/// What the fake-free runtime side of the test saw.
#[derive(Default)]
struct Seen {
    events: Vec<Value>,
    responses: Vec<(String, Value)>,
    errors: Vec<String>,
    backend: Vec<(Method, String, HeaderMap, Vec<u8>)>,
    first_next: Option<Instant>,
}

type Shared = Arc<Mutex<Seen>>;

/// A minimal Lambda Runtime API (hands out queued events, collects responses) and a backend, on one loopback port.
async fn runtime_and_backend(seen: Shared) -> SocketAddr {
    async fn next(State(s): State<Shared>) -> axum::response::Response {
        let event = {
            let mut g = s.lock().unwrap();
            g.first_next.get_or_insert_with(Instant::now);
            if g.events.is_empty() {
                None
            } else {
                Some(g.events.remove(0))
            }
        };
        let Some(event) = event else {
            // Nothing more to hand out: hold the request as the real API does while idle.
            tokio::time::sleep(Duration::from_secs(30)).await;
            return axum::response::IntoResponse::into_response(axum::http::StatusCode::NO_CONTENT);
        };
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
            + 10_000;
        axum::response::Response::builder()
            .header("Lambda-Runtime-Aws-Request-Id", "req-1")
            .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
            .header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:eu-west-3:123456789012:function:t",
            )
            .header(
                "Lambda-Runtime-Trace-Id",
                "Root=1-00000000-000000000000000000000000",
            )
            .header("content-type", "application/json")
            .body(axum::body::Body::from(event.to_string()))
            .unwrap()
    }
    async fn response(
        State(s): State<Shared>,
        UrlPath(id): UrlPath<String>,
        body: String,
    ) -> &'static str {
        s.lock()
            .unwrap()
            .responses
            .push((id, serde_json::from_str(&body).unwrap_or(Value::Null)));
        "{}"
    }
    async fn error(State(s): State<Shared>, body: String) -> &'static str {
        s.lock().unwrap().errors.push(body);
        "{}"
    }
    async fn backend(
        State(s): State<Shared>,
        method: Method,
        uri: Uri,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::http::StatusCode {
        s.lock()
            .unwrap()
            .backend
            .push((method, uri.to_string(), headers, body.to_vec()));
        axum::http::StatusCode::NO_CONTENT
    }
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(error))
        .route("/socket-connections", any(backend))
        .route("/socket-connections/{id}", any(backend))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn ws_event(route: &str, body: Option<&str>) -> Value {
    let mut e = json!({
        "requestContext": {
            "routeKey": route, "eventType": if route == "$disconnect" { "DISCONNECT" } else { "MESSAGE" },
            "connectionId": "TWegAcC4EowCHnA=", "connectedAt": 1_764_000_000_000i64, "requestTimeEpoch": 1_764_000_000_000i64,
            "requestId": "r", "messageDirection": "IN", "stage": "local", "domainName": "127.0.0.1", "apiId": "local",
            "identity": { "sourceIp": "127.0.0.1" }
        },
        "isBase64Encoded": false
    });
    if let Some(b) = body {
        e["body"] = b.into();
    }
    e
}

async fn invoke_once(bootstrap: &Path, event: Value) -> (Seen, Duration) {
    let (seen, startup, _) = invoke_logged(bootstrap, event, "info").await;
    (seen, startup)
}

/// One invocation at `log_level` (AWS_LAMBDA_LOG_LEVEL); also returns everything the process printed.
async fn invoke_logged(
    bootstrap: &Path,
    event: Value,
    log_level: &str,
) -> (Seen, Duration, String) {
    let seen: Shared = Arc::default();
    seen.lock().unwrap().events.push(event);
    let addr = runtime_and_backend(seen.clone()).await;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bootstrap)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "t")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "s")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "g")
        .env("WSDEPLOY_BACKEND_URL", format!("http://{addr}"))
        .env("WSDEPLOY_SIGNING_SECRET", "process-test-secret")
        .env("WSDEPLOY_API_ID", "local")
        .env("WSDEPLOY_STAGE", "local")
        .env("AWS_LAMBDA_LOG_LEVEL", log_level)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        {
            let g = seen.lock().unwrap();
            if !g.responses.is_empty() || !g.errors.is_empty() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the function answered nothing within 20 s"
        );
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the function exited early with {status}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().await.ok();
    let output = child.wait_with_output().await.unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut g = seen.lock().unwrap();
    let to_first_next = g.first_next.unwrap() - started;
    (std::mem::take(&mut *g), to_first_next, printed)
}

/// Whatever level Lambda's log controls or `RUST_LOG` ask for, the functions never log the user's token or the
/// signing secret: the libraries that see raw events and requests are held at `info` by a filter no directive widens.
#[tokio::test(flavor = "multi_thread")]
async fn no_log_level_prints_a_token_or_the_secret() {
    let built = tokio::task::spawn_blocking(|| build(&["--host"]))
        .await
        .unwrap();
    let connect = PathBuf::from(built["functions"]["connect"]["bootstrap"].as_str().unwrap());
    // Plain levels, and directives naming the libraries themselves (`RUST_LOG` is the function's own environment,
    // which anyone allowed `lambda:UpdateFunctionConfiguration` can set): the clamp is not a directive they outrank.
    for level in [
        "trace",
        "debug",
        "info",
        "lambda_runtime::layers=trace",
        "lambda_runtime=trace,lambda_runtime_api_client=trace",
        "info,hyper_util::client=trace,reqwest::connect=trace",
    ] {
        let event = ws_event(
            "auth",
            Some(r#"{"action":"auth","token":"tok-very-private"}"#),
        );
        let (seen, _, printed) = invoke_logged(&connect, event, level).await;
        assert_eq!(seen.responses.len(), 1, "{level}: {printed}");
        assert!(
            !printed.contains("tok-very-private") && !printed.contains("process-test-secret"),
            "{level}: a secret in the function's logs:\n{printed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn host_built_bootstraps_speak_the_runtime_api_and_sign_their_calls() {
    let built = tokio::task::spawn_blocking(|| build(&["--host"]))
        .await
        .unwrap();
    let path = |f: &str| PathBuf::from(built["functions"][f]["bootstrap"].as_str().unwrap());

    let (seen, startup) = invoke_once(
        &path("connect"),
        ws_event("auth", Some(r#"{"action":"auth","token":"jwt-1"}"#)),
    )
    .await;
    eprintln!("connect: process start to first GET /next: {startup:?}");
    assert!(seen.errors.is_empty(), "{:?}", seen.errors);
    let (id, resp) = &seen.responses[0];
    assert_eq!(id, "req-1");
    assert_eq!(resp["statusCode"], 200);
    assert_eq!(
        serde_json::from_str::<Value>(resp["body"].as_str().unwrap()).unwrap(),
        json!({"type":"auth","ok":true})
    );
    let (method, target, headers, body) = &seen.backend[0];
    assert_eq!(
        (method.as_str(), target.as_str()),
        ("POST", "/socket-connections")
    );
    assert_eq!(headers["authorization"], "Bearer jwt-1");
    assert!(
        signature_valid(&[b"process-test-secret"], method, target, headers, body),
        "a signature the backend accepts"
    );

    let (seen, _) = invoke_once(&path("disconnect"), ws_event("$disconnect", None)).await;
    let (method, target, headers, body) = &seen.backend[0];
    assert_eq!(
        (method.as_str(), target.as_str()),
        ("DELETE", "/socket-connections/TWegAcC4EowCHnA%3D")
    );
    assert!(signature_valid(
        &[b"process-test-secret"],
        method,
        target,
        headers,
        body
    ));
    assert_eq!(seen.responses[0].1["statusCode"], 200);
}

/// With no cache folder of the user's own, the build stops and says so: it never falls back to a shared temporary
/// folder, where another user of the machine could plant the code `up` uploads.
#[test]
fn the_build_never_uses_a_shared_temporary_folder() {
    let dir = tempfile::tempdir().unwrap();
    let run = wsdeploy(dir.path(), &["build", "--arch", "x86_64"])
        .env_remove("HOME")
        .env_remove("XDG_CACHE_HOME")
        .env("TMPDIR", dir.path())
        .run();
    run.check(
        run.code == 1 && run.stderr.contains("set WSDEPLOY_CACHE_DIR (or HOME)"),
        "no cache folder: a sentence, exit 1",
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written to the temporary folder"
    );
}
