//! The real handlers against a real HTTP backend on 127.0.0.1:0; every call's signature is checked with `verify`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use common::{Backend, Settings};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SECRET: &str = "test-signing-secret";
/// AWS-shaped: 16 characters, base64-like, ending in '='; needs percent-encoding in a path.
const CONN: &str = "TWegAcC4Eo+/HnA=";

fn backend(url: &str, timeout_ms: u64) -> Backend {
    Backend::new(settings(url, timeout_ms)).unwrap()
}

fn settings(url: &str, timeout_ms: u64) -> Settings {
    Settings::from_lookup(|k| match k {
        "WSDEPLOY_BACKEND_URL" => Some(url.to_string()),
        "WSDEPLOY_SIGNING_SECRET" => Some(SECRET.into()),
        "WSDEPLOY_BACKEND_TIMEOUT_MS" => Some(timeout_ms.to_string()),
        "WSDEPLOY_API_ID" => Some("abc".into()),
        "WSDEPLOY_STAGE" => Some("dev".into()),
        _ => None,
    })
    .unwrap()
}

fn event(route: &str, body: Option<&str>, query: Option<&str>) -> ApiGatewayWebsocketProxyRequest {
    let mut ctx = json!({
        "routeKey": route, "eventType": if route == "$connect" { "CONNECT" } else if route == "$disconnect" { "DISCONNECT" } else { "MESSAGE" },
        "connectionId": CONN, "connectedAt": 1_764_000_000_000i64, "requestTimeEpoch": 1_764_000_000_000i64, "requestId": "req-1",
        "messageDirection": "IN", "stage": "dev", "domainName": "abc.execute-api.eu-west-3.amazonaws.com", "apiId": "abc",
        "identity": { "sourceIp": "127.0.0.1" }
    });
    if route == "$disconnect" {
        ctx["disconnectStatusCode"] = 1001.into();
        ctx["disconnectReason"] = "Client-side close frame status code '1001'".into();
    }
    let mut e = json!({ "requestContext": ctx, "isBase64Encoded": false });
    if let Some(b) = body {
        e["body"] = b.into();
    }
    if let Some(q) = query {
        e["queryStringParameters"] = json!({ "token": q });
    }
    serde_json::from_value(e).unwrap()
}

fn body_of(r: &ApiGatewayProxyResponse) -> Value {
    match &r.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("expected a text body, got {other:?}"),
    }
}

/// The request's signature, checked exactly as a backend would: over the raw target and body.
fn assert_signed(req: &Request) {
    assert_signed_for(req, &[SECRET.as_bytes()]);
}

fn assert_signed_for(req: &Request, secrets: &[&[u8]]) {
    let header = req
        .headers
        .get("x-wsdeploy-signature")
        .expect("signature header")
        .to_str()
        .unwrap();
    let target = match req.url.query() {
        Some(q) => format!("{}?{q}", req.url.path()),
        None => req.url.path().to_string(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let authorization = req
        .headers
        .get("authorization")
        .map(|v| v.to_str().unwrap())
        .unwrap_or_default();
    let signed = wsdeploy_signature::Request {
        method: req.method.as_str(),
        target: &target,
        body: &req.body,
        authorization,
    };
    wsdeploy_signature::verify(secrets, header, &signed, now)
        .unwrap_or_else(|e| panic!("signature of {} {target} rejected: {e}", req.method));
}

async fn server_answering(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn auth_message_registers_the_connection_with_a_signed_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/socket-connections"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let b = backend(&format!("{}/api/", server.uri()), 2000);
    let r = common::connect::handle(
        &b,
        event(
            "auth",
            Some(r#"{"action":"auth","token":"eyJhbGciOi.x.y"}"#),
            None,
        ),
    )
    .await;
    assert_eq!(
        (r.status_code, body_of(&r)),
        (200, json!({"type": "auth", "ok": true}))
    );
    let reqs = server.received_requests().await.unwrap();
    let req = &reqs[0];
    assert_eq!(
        req.headers.get("authorization").unwrap(),
        "Bearer eyJhbGciOi.x.y"
    );
    assert_eq!(req.headers.get("content-type").unwrap(), "application/json");
    assert_eq!(
        serde_json::from_slice::<Value>(&req.body).unwrap(),
        json!({"connectionId": CONN, "sourceIp": "127.0.0.1"}),
        "the client's address, inside what the signature covers"
    );
    assert_signed(req);
}

/// A client that reconnects says which message it saw last; the backend gets it inside the signed body, so that it
/// can replay what the user missed to the new connection.
#[tokio::test]
async fn the_last_message_id_seen_travels_to_the_backend_signed() {
    let server = server_answering(201).await;
    let b = backend(&server.uri(), 2000);
    let body = r#"{"action":"auth","token":"t","resumeAfter":9007199254740991}"#;
    let r = common::connect::handle(&b, event("auth", Some(body), None)).await;
    assert_eq!(body_of(&r), json!({"type": "auth", "ok": true}));
    let mut on_connect = serde_json::to_value(event("$connect", None, None)).unwrap();
    on_connect["queryStringParameters"] = json!({ "token": "t", "resumeAfter": "41" });
    let r = common::connect::handle(&b, serde_json::from_value(on_connect).unwrap()).await;
    assert_eq!(r.status_code, 200, "{}", body_of(&r));
    let reqs = server.received_requests().await.unwrap();
    let bodies: Vec<Value> = reqs
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(bodies[0]["resumeAfter"], json!(9_007_199_254_740_991_u64));
    assert_eq!(bodies[1]["resumeAfter"], json!(41));
    reqs.iter().for_each(assert_signed);
}

#[tokio::test]
async fn a_refused_token_is_reported_to_the_client() {
    for status in [401, 403] {
        let server = server_answering(status).await;
        let b = backend(&server.uri(), 2000);
        let r = common::connect::handle(
            &b,
            event("auth", Some(r#"{"action":"auth","token":"bad"}"#), None),
        )
        .await;
        assert_eq!(
            r.status_code, 200,
            "a message route answers the client through the body"
        );
        assert_eq!(
            body_of(&r),
            json!({"type": "auth", "ok": false, "error": "unauthorized"})
        );
    }
}

#[tokio::test]
async fn on_connect_the_query_token_is_used_and_a_refusal_rejects_the_handshake() {
    let server = server_answering(403).await;
    let b = backend(&server.uri(), 2000);
    let r = common::connect::handle(&b, event("$connect", None, Some("tok"))).await;
    assert_eq!(
        r.status_code, 403,
        "non-2xx on $connect rejects the handshake"
    );
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs[0].headers.get("authorization").unwrap(), "Bearer tok");
    assert_signed(&reqs[0]);
    let r = common::connect::handle(&b, event("$connect", None, None)).await;
    assert_eq!(r.status_code, 401);
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "no token, no backend call"
    );
}

/// Under `auth_timeout_s`, a `$connect` without a token registers the socket as pending, signed, with its deadline
/// and no `Authorization`; the handshake waits on the backend's word and fails closed without it. A token on the
/// URL still authenticates as before.
#[tokio::test]
async fn under_an_auth_timeout_a_connect_without_a_token_is_registered_pending() {
    let with_timeout = |url: &str| {
        let mut s = settings(url, 2000);
        s.auth_timeout_s = Some(30);
        Backend::new(s).unwrap()
    };
    let server = server_answering(202).await;
    let b = with_timeout(&server.uri());
    let r = common::connect::handle(&b, event("$connect", None, None)).await;
    assert_eq!(r.status_code, 200, "{}", body_of(&r));
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&reqs[0].body).unwrap(),
        json!({"connectionId": CONN, "sourceIp": "127.0.0.1", "pending": true, "authTimeoutS": 30})
    );
    assert!(reqs[0].headers.get("authorization").is_none());
    assert_signed(&reqs[0]);
    let r = common::connect::handle(&b, event("$connect", None, Some("tok"))).await;
    assert_eq!(r.status_code, 200);
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs[1].headers.get("authorization").unwrap(), "Bearer tok");
    assert!(serde_json::from_slice::<Value>(&reqs[1].body)
        .unwrap()
        .get("pending")
        .is_none());

    for (status, expect) in [(403, 403), (401, 403), (404, 502), (500, 502)] {
        let server = server_answering(status).await;
        let r =
            common::connect::handle(&with_timeout(&server.uri()), event("$connect", None, None))
                .await;
        assert_eq!(r.status_code, expect, "backend answered {status}");
    }
    let r = common::connect::handle(
        &with_timeout("http://127.0.0.1:9"),
        event("$connect", None, None),
    )
    .await;
    assert_eq!(r.status_code, 502, "no backend, no socket");
}

#[test]
fn an_auth_timeout_comes_from_the_environment() {
    let lookup = |v: &'static str| {
        move |k: &str| match k {
            "WSDEPLOY_AUTH_TIMEOUT_S" => Some(v.to_string()),
            "WSDEPLOY_BACKEND_URL" => Some("http://127.0.0.1:1".into()),
            "WSDEPLOY_SIGNING_SECRET" => Some(SECRET.into()),
            "WSDEPLOY_API_ID" | "WSDEPLOY_STAGE" => Some("x".into()),
            _ => None,
        }
    };
    assert_eq!(
        Settings::from_lookup(lookup("45")).unwrap().auth_timeout_s,
        Some(45)
    );
    assert_eq!(
        Settings::from_lookup(lookup("")).unwrap().auth_timeout_s,
        None
    );
    for bad in ["0", "-1", "30s"] {
        let e = Settings::from_lookup(lookup(bad)).unwrap_err();
        assert!(e.contains("WSDEPLOY_AUTH_TIMEOUT_S"), "{e}");
    }
}

#[tokio::test]
async fn missing_or_malformed_tokens_get_a_clear_reply_and_no_backend_call() {
    let server = server_answering(200).await;
    let b = backend(&server.uri(), 2000);
    for (body, says) in [
        (r#"{"action":"auth"}"#, "missing token"),
        (r#"{"action":"auth","token":null}"#, "missing token"),
        (r#"{"action":"auth","token":42}"#, "malformed token"),
        (
            r#"{"action":"auth","token":"has space"}"#,
            "malformed token",
        ),
        (r#"{"action":"auth","token":""}"#, "malformed token"),
        ("auth please", "not JSON"),
        (
            r#"{"action":"auth","token":"t","resumeAfter":"17"}"#,
            "malformed resumeAfter",
        ),
        (
            r#"{"action":"auth","token":"t","resumeAfter":-1}"#,
            "malformed resumeAfter",
        ),
        (
            r#"{"action":"auth","token":"t","resumeAfter":1.5}"#,
            "malformed resumeAfter",
        ),
        (
            r#"{"action":"auth","token":"t","resumeAfter":9007199254740992}"#,
            "malformed resumeAfter",
        ),
    ] {
        let r = common::connect::handle(&b, event("auth", Some(body), None)).await;
        let v = body_of(&r);
        assert_eq!(
            (v["type"].as_str(), v["ok"].as_bool()),
            (Some("auth"), Some(false)),
            "{body}"
        );
        assert!(v["error"].as_str().unwrap().contains(says), "{body} -> {v}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_down_slow_or_broken_backend_gives_a_retryable_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let down = backend(&format!("http://{closed}"), 2000);
    let slow_server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&slow_server)
        .await;
    let slow = backend(&slow_server.uri(), 200);
    let broken_server = server_answering(500).await;
    let broken = backend(&broken_server.uri(), 2000);
    for (name, b) in [("down", &down), ("slow", &slow), ("500", &broken)] {
        let started = std::time::Instant::now();
        let r = common::connect::handle(
            b,
            event("auth", Some(r#"{"action":"auth","token":"t"}"#), None),
        )
        .await;
        assert_eq!(
            body_of(&r),
            json!({"type": "auth", "ok": false, "error": "backend unavailable", "retry": true}),
            "{name}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{name}: the configured timeout bounds the wait"
        );
    }
    let r = common::connect::handle(&slow, event("$connect", None, Some("t"))).await;
    assert_eq!(
        r.status_code, 504,
        "a timeout on $connect rejects the handshake as a gateway timeout"
    );
}

/// An event that names another API or stage (one made up by whoever may invoke the function) is refused before
/// anything is signed: neither function calls the backend for it.
#[tokio::test]
async fn an_event_from_another_api_or_stage_is_refused_without_a_backend_call() {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(201))
        .expect(0)
        .mount(&server)
        .await;
    let b = backend(&server.uri(), 2000);
    for (field, value) in [
        ("apiId", json!("other")),
        ("stage", json!("prod")),
        ("apiId", Value::Null),
    ] {
        let forge = |route: &str, body: Option<&str>| {
            let mut e = serde_json::to_value(event(route, body, None)).unwrap();
            e["requestContext"][field] = value.clone();
            serde_json::from_value::<ApiGatewayWebsocketProxyRequest>(e).unwrap()
        };
        let auth = forge("auth", Some(r#"{"action":"auth","token":"good"}"#));
        let r = common::connect::handle(&b, auth).await;
        assert_eq!(
            (r.status_code, body_of(&r)["error"].clone()),
            (403, json!("forbidden")),
            "{field}"
        );
        let r = common::disconnect::handle(&b, forge("$disconnect", None)).await;
        assert_eq!(r.status_code, 403, "{field}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
    let err = Settings::from_lookup(|k| match k {
        "WSDEPLOY_API_ID" | "WSDEPLOY_AUTH_TIMEOUT_S" => None,
        "WSDEPLOY_BACKEND_TIMEOUT_MS" => Some("100".into()),
        _ => Some("v".into()),
    })
    .unwrap_err();
    assert!(err.contains("WSDEPLOY_API_ID is not set"), "{err}");
}

#[tokio::test]
async fn disconnect_deletes_the_encoded_connection_with_a_signed_call() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/socket-connections/TWegAcC4Eo%2B%2FHnA%3D"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let b = backend(&server.uri(), 2000);
    let r = common::disconnect::handle(&b, event("$disconnect", None, None)).await;
    assert_eq!(r.status_code, 200);
    let reqs = server.received_requests().await.unwrap();
    assert!(reqs[0].body.is_empty() && reqs[0].headers.get("authorization").is_none());
    assert_signed(&reqs[0]);
}

#[tokio::test]
async fn disconnect_retries_once_when_the_backend_is_not_listening_yet() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let b = backend(&format!("http://{addr}"), 2000);
    let call = tokio::spawn(async move {
        common::disconnect::handle(&b, event("$disconnect", None, None)).await
    });
    // The first attempt is refused at once; the retry comes 250 ms later, after the backend is up.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let server = MockServer::builder()
        .listener(std::net::TcpListener::bind(addr).unwrap())
        .start()
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    let r = call.await.unwrap();
    assert_eq!(r.status_code, 200);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn disconnect_reports_a_backend_refusal() {
    let server = server_answering(401).await;
    let r = common::disconnect::handle(
        &backend(&server.uri(), 2000),
        event("$disconnect", None, None),
    )
    .await;
    assert_eq!(r.status_code, 502);
    let gone = server_answering(404).await;
    let r = common::disconnect::handle(
        &backend(&gone.uri(), 2000),
        event("$disconnect", None, None),
    )
    .await;
    assert_eq!(
        r.status_code, 200,
        "a connection the backend never stored is gone all the same"
    );
}

#[test]
fn settings_say_what_is_missing_and_never_show_the_secret() {
    let err = Settings::from_lookup(|_| None).unwrap_err();
    assert!(err.contains("WSDEPLOY_BACKEND_URL is not set"), "{err}");
    let s = Settings::from_lookup(|k| match k {
        "WSDEPLOY_SIGNING_SECRET" => Some("do-not-print-me".into()),
        "WSDEPLOY_BACKEND_TIMEOUT_MS" => Some("100".into()),
        "WSDEPLOY_AUTH_TIMEOUT_S" => None,
        _ => Some("http://x".into()),
    })
    .unwrap();
    let shown = format!("{s:?}");
    assert!(
        !shown.contains("do-not-print-me") && shown.contains("<redacted>"),
        "{shown}"
    );
    assert_eq!(s.timeout, Duration::from_millis(100));
    assert!(
        Settings::from_lookup(|k| Some(if k == "WSDEPLOY_BACKEND_TIMEOUT_MS" {
            "soon".into()
        } else {
            "v".into()
        }))
        .is_err()
    );
}

/// A backend that keeps connections alive but, like a server whose idle timeout fired while the client was frozen,
/// drops a connection that sat idle longer than `idle` the moment the next request arrives on it, unanswered.
/// Returns its address and the number of connections it accepted.
async fn dropping_idle_connections(
    idle: Duration,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut last = std::time::Instant::now();
                let mut buf = vec![0u8; 8192];
                loop {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    if last.elapsed() > idle {
                        return; // closed under the request: no answer
                    }
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    let status = if head.starts_with("DELETE") {
                        "204 No Content"
                    } else {
                        "201 Created"
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: keep-alive\r\n\r\n"
                    );
                    if sock.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                    last = std::time::Instant::now();
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn an_idle_connection_is_not_reused_after_a_freeze() {
    let (addr, accepted) = dropping_idle_connections(Duration::from_millis(200)).await;
    let b = Backend::with_pool_idle(
        settings(&format!("http://{addr}"), 2000),
        Duration::from_millis(100),
    )
    .unwrap();
    assert_eq!(
        b.register(CONN, "t", None, None).await.unwrap().as_u16(),
        201
    );
    // The environment "freezes" past the backend's idle timeout; the pool has let the connection go by then.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        b.register(CONN, "t", None, None).await.unwrap().as_u16(),
        201
    );
    assert_eq!(
        accepted.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "a fresh connection"
    );
}

#[tokio::test]
async fn a_delete_on_a_dropped_connection_is_retried() {
    let (addr, accepted) = dropping_idle_connections(Duration::from_millis(200)).await;
    // A pool that would reuse the connection: the backend drops it under the DELETE, which is retried.
    let b = Backend::with_pool_idle(
        settings(&format!("http://{addr}"), 2000),
        Duration::from_secs(60),
    )
    .unwrap();
    assert_eq!(
        b.register(CONN, "t", None, None).await.unwrap().as_u16(),
        201
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.unregister(CONN).await.unwrap().as_u16(), 204);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
}

/// During a rotation the function signs with both secrets: a backend still on the previous one and a backend
/// already on the new one both accept the call, and the header carries one `v2=` entry per secret.
#[tokio::test]
async fn during_a_rotation_calls_verify_with_either_secret() {
    let server = server_answering(201).await;
    let mut s = settings(&server.uri(), 2000);
    s.previous_signing_secret = Some(b"previous-signing-secret".to_vec());
    let b = Backend::new(s).unwrap();
    let r = common::connect::handle(
        &b,
        event("auth", Some(r#"{"action":"auth","token":"tok"}"#), None),
    )
    .await;
    assert_eq!(r.status_code, 200);
    let reqs = server.received_requests().await.unwrap();
    let header = reqs[0].headers.get("x-wsdeploy-signature").unwrap();
    assert_eq!(header.to_str().unwrap().matches(",v2=").count(), 2);
    assert_signed_for(&reqs[0], &[SECRET.as_bytes()]);
    assert_signed_for(&reqs[0], &[b"previous-signing-secret"]);
}

#[test]
fn a_previous_secret_comes_from_the_environment_and_stays_out_of_debug_output() {
    let s = Settings::from_lookup(|k| match k {
        "WSDEPLOY_BACKEND_URL" => Some("http://127.0.0.1:1".into()),
        "WSDEPLOY_SIGNING_SECRET" => Some("current-secret-value".into()),
        "WSDEPLOY_SIGNING_SECRET_PREVIOUS" => Some("previous-secret-value".into()),
        "WSDEPLOY_API_ID" => Some("abc".into()),
        "WSDEPLOY_STAGE" => Some("dev".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(
        s.previous_signing_secret.as_deref(),
        Some(&b"previous-secret-value"[..])
    );
    let shown = format!("{s:?}");
    assert!(!shown.contains("secret-value"), "{shown}");
}

/// After a refused `auth` on a message route, `connect` posts the refusal to the socket and then closes it through
/// `@connections`, both signed with SigV4 as the function's role (session token included); on `$connect` the
/// refusal already rejects the handshake, and nothing is called.
#[tokio::test]
async fn a_refused_auth_is_posted_to_the_socket_and_the_socket_closed() {
    let backend_server = server_answering(401).await;
    let management = MockServer::start().await;
    let path = format!("/dev/@connections/{}", "TWegAcC4Eo%2B%2FHnA%3D");
    Mock::given(method("POST"))
        .and(wiremock::matchers::path(path.clone()))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&management)
        .await;
    Mock::given(method("DELETE"))
        .and(wiremock::matchers::path(path))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&management)
        .await;
    let endpoint = format!("{}/dev", management.uri());
    let settings = Settings::from_lookup(|k| match k {
        "WSDEPLOY_BACKEND_URL" => Some(backend_server.uri()),
        "WSDEPLOY_SIGNING_SECRET" => Some(SECRET.into()),
        "WSDEPLOY_API_ID" => Some("abc".into()),
        "WSDEPLOY_STAGE" => Some("dev".into()),
        "WSDEPLOY_MANAGEMENT_ENDPOINT" => Some(endpoint.clone()),
        "AWS_REGION" => Some("eu-west-3".into()),
        "AWS_ACCESS_KEY_ID" => Some("ASIAEXAMPLE".into()),
        "AWS_SECRET_ACCESS_KEY" => Some("role-secret".into()),
        "AWS_SESSION_TOKEN" => Some("role-session-token".into()),
        _ => None,
    })
    .unwrap();
    assert!(!format!("{settings:?}").contains("role-secret"));
    let b = Backend::new(settings).unwrap();
    let r = common::connect::handle(
        &b,
        event("auth", Some(r#"{"action":"auth","token":"bad"}"#), None),
    )
    .await;
    assert_eq!(body_of(&r)["error"], "unauthorized");
    let reqs = management.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        (reqs[0].method.as_str(), reqs[1].method.as_str()),
        ("POST", "DELETE"),
        "the refusal first, then the close"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&reqs[0].body).unwrap(),
        body_of(&r)
    );
    for req in &reqs {
        let auth = req.headers.get("authorization").unwrap().to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/")
                && auth.contains("/eu-west-3/execute-api/aws4_request"),
            "{auth}"
        );
        assert_eq!(
            req.headers.get("x-amz-security-token").unwrap(),
            "role-session-token"
        );
    }

    // On $connect: the handshake's rejection is the answer; nothing is posted or closed.
    let r = common::connect::handle(&b, event("$connect", None, Some("token=bad"))).await;
    assert_eq!(r.status_code, 403);
    assert_eq!(management.received_requests().await.unwrap().len(), 2);
}
