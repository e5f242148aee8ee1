//! `wsdeploy dev` end to end, all real: a backend on 127.0.0.1:0 that checks the Lambdas' signatures, the dev
//! gateway as a child process running the bundled bootstraps, a WebSocket client, and the real
//! aws-sdk-apigatewaymanagement client (so SigV4 is real).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::http::Method;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::support::devkit::*;
use crate::support::util::cache;

#[tokio::test(flavor = "multi_thread")]
async fn the_seed_recipe_end_to_end() {
    let (mut dev, seen) = dev_with_backend("", &[], &cache()).await;
    assert!(
        dev.ws_url.starts_with("ws://127.0.0.1:") && dev.ws_url.ends_with("/local"),
        "{}",
        dev.ws_url
    );

    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    ws.send(Message::Text(
        r#"{"action":"auth","token":"good-token"}"#.into(),
    ))
    .await
    .unwrap();
    assert_eq!(
        next_text(&mut ws).await,
        r#"{"ok":true,"type":"auth"}"#,
        "{}",
        dev.output()
    );
    let (method, target, bearer, body, valid) = seen.lock().unwrap().calls[0].clone();
    assert_eq!(
        (method.as_str(), target.as_str(), bearer.as_deref(), valid),
        (
            "POST",
            "/socket-connections",
            Some("Bearer good-token"),
            true
        )
    );
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["connectionId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        id.len() == 16 && id.ends_with('='),
        "an AWS-shaped connection id: {id}"
    );

    let mgmt = dev.management().await;
    mgmt.post_to_connection()
        .connection_id(&id)
        .data(b"{\"hello\":1}".to_vec().into())
        .send()
        .await
        .expect("post to the connection");
    assert_eq!(next_text(&mut ws).await, "{\"hello\":1}");
    let info = mgmt
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect("get the connection");
    assert_eq!(info.identity().unwrap().source_ip(), Some("127.0.0.1"));
    assert!(info.connected_at().is_some() && info.last_active_at().is_some());

    ws.close(None).await.unwrap();
    let delete = wait_for("the backend's DELETE", || {
        seen.lock()
            .unwrap()
            .calls
            .iter()
            .find(|c| c.0 == Method::DELETE)
            .cloned()
    })
    .await;
    assert_eq!(
        delete.1,
        format!(
            "/socket-connections/{}",
            id.replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        )
    );
    assert!(delete.4, "the DELETE is signed");
    let gone = mgmt
        .post_to_connection()
        .connection_id(&id)
        .data(b"late".to_vec().into())
        .send()
        .await
        .unwrap_err();
    assert!(
        gone.into_service_error().is_gone_exception(),
        "a closed connection is 410 GoneException"
    );
    assert_eq!(dev.stop(), 0, "{}", dev.output());
}

#[tokio::test(flavor = "multi_thread")]
async fn route_selection_replies_and_limits_follow_api_gateway() {
    let (dev, _) = dev_with_backend("", &[], &cache()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    for body in ["not json", r#"{"action":"nope"}"#, r#"{"no_action":true}"#] {
        ws.send(Message::Text(body.into())).await.unwrap();
        let reply: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
        assert_eq!(
            reply["message"], "Forbidden",
            "{body}: no route and no $default"
        );
        assert!(reply["connectionId"].is_string() && reply["requestId"].is_string());
    }
    ws.send(Message::Text(
        r#"{"action":"auth","token":"bad-token"}"#.into(),
    ))
    .await
    .unwrap();
    assert_eq!(
        next_text(&mut ws).await,
        r#"{"error":"unauthorized","ok":false,"type":"auth"}"#
    );
    // A refused socket is closed by the function; the size limit on another.
    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    // 129 KB in one message: over API Gateway's 128 KB, the socket is closed with 1009.
    let big = "x".repeat(129 * 1024);
    let _ = ws.send(Message::Text(big.into())).await;
    let closed = close_code(&mut ws, 10).await;
    assert_eq!(closed, Some(1009), "{}", dev.output());
}

#[tokio::test(flavor = "multi_thread")]
async fn default_route_takes_what_no_other_route_does() {
    let (dev, _) = dev_with_backend(
        "routes: { auth: connect, $disconnect: disconnect, $default: connect }\n",
        &[],
        &cache(),
    )
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    ws.send(Message::Text("not json".into())).await.unwrap();
    let reply: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
    assert_eq!(
        reply["type"], "auth",
        "routed to the connect function through $default: {reply}"
    );
    assert!(reply["error"].as_str().unwrap().contains("not JSON"));
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_api_checks_sigv4() {
    let (dev, _) = dev_with_backend("", &[], &cache()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    ws.send(Message::Text(r#"{"action":"nope"}"#.into()))
        .await
        .unwrap();
    let id = serde_json::from_str::<serde_json::Value>(&next_text(&mut ws).await).unwrap()
        ["connectionId"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!(
        "{}/@connections/{}",
        dev.env["WS_API_ENDPOINT"],
        id.replace('=', "%3D")
            .replace('+', "%2B")
            .replace('/', "%2F")
    );
    let unsigned = reqwest::Client::new()
        .post(&url)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 403, "an unsigned call is refused");
    assert_eq!(
        unsigned.headers()["x-amzn-errortype"],
        "MissingAuthenticationTokenException"
    );
    let wrong_secret = dev
        .management_as(&dev.env["WS_API_ACCESS_KEY_ID"], "not-the-secret")
        .await;
    let err = wrong_secret
        .post_to_connection()
        .connection_id(&id)
        .data(b"x".to_vec().into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(403),
        "a wrong signature is refused"
    );
    assert_eq!(
        aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata::code(&err),
        Some("InvalidSignatureException")
    );
    let wrong_key = dev
        .management_as("AKIAOTHER", &dev.env["WS_API_SECRET_ACCESS_KEY"])
        .await;
    let err = wrong_key
        .get_connection()
        .connection_id(&id)
        .send()
        .await
        .expect_err("an unknown key is refused");
    assert_eq!(
        aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata::code(&err),
        Some("UnrecognizedClientException")
    );
    // Signed with the right keys for another region: AWS refuses the scope before it compares signatures.
    let elsewhere = if dev.env["WS_API_REGION"] == "us-west-2" {
        "eu-west-1"
    } else {
        "us-west-2"
    };
    let err = dev
        .management_in(
            &dev.env["WS_API_ACCESS_KEY_ID"],
            &dev.env["WS_API_SECRET_ACCESS_KEY"],
            elsewhere,
        )
        .await
        .post_to_connection()
        .connection_id(&id)
        .data(b"x".to_vec().into())
        .send()
        .await
        .expect_err("a signature scoped to another region is refused");
    assert_eq!(
        aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata::code(&err),
        Some("InvalidSignatureException")
    );
    assert!(
        aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata::message(&err)
            .is_some_and(|m| m.contains(&format!("not '{elsewhere}'"))),
        "{err:?}"
    );
    dev.management()
        .await
        .post_to_connection()
        .connection_id(&id)
        .data(b"signed".to_vec().into())
        .send()
        .await
        .expect("a signed call passes");
    assert_eq!(next_text(&mut ws).await, "signed");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopping_closes_every_socket_with_1001_and_fires_disconnect() {
    let (mut dev, seen) = dev_with_backend("", &[], &cache()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    ws.send(Message::Text(
        r#"{"action":"auth","token":"good-token"}"#.into(),
    ))
    .await
    .unwrap();
    next_text(&mut ws).await;
    let code = dev.stop();
    assert_eq!(code, 0, "{}", dev.output());
    let close = close_code(&mut ws, 5).await;
    assert_eq!(close, Some(1001));
    assert!(
        seen.lock()
            .unwrap()
            .calls
            .iter()
            .any(|c| c.0 == Method::DELETE && c.4),
        "$disconnect fired on the way out:\n{}",
        dev.output()
    );
}

/// API Gateway WebSocket APIs reject binary frames: the socket is closed with 1003 and no route is invoked.
#[tokio::test(flavor = "multi_thread")]
async fn a_binary_frame_closes_the_socket_with_1003_and_invokes_nothing() {
    let (dev, seen) = dev_with_backend("", &[], &cache()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    let auth = br#"{"action":"auth","token":"good-token"}"#;
    ws.send(Message::Binary(auth.to_vec().into()))
        .await
        .unwrap();
    assert_eq!(close_code(&mut ws, 5).await, Some(1003), "{}", dev.output());
    wait_for("the $disconnect's DELETE", || {
        seen.lock()
            .unwrap()
            .calls
            .iter()
            .any(|c| c.0 == Method::DELETE)
            .then_some(())
    })
    .await;
    let calls = seen.lock().unwrap().calls.clone();
    assert!(
        calls.iter().all(|c| c.0 != Method::POST),
        "the auth route ran: {calls:?}"
    );
}

/// The heartbeat: `ping` is answered `{"action":"pong"}` by the gateway itself, as the deployed MOCK integration
/// answers it: no function runs and the backend hears nothing; dev's log says so. With `heartbeat: false`, `ping` is
/// an action like any other.
#[tokio::test(flavor = "multi_thread")]
async fn ping_is_answered_by_the_gateway_and_invokes_nothing() {
    let (dev, seen) = dev_with_backend("", &[], &cache()).await;
    let (mut ws, _) = authenticated(&dev, &seen).await;
    let before = seen.lock().unwrap().calls.len();
    for _ in 0..3 {
        ws.send(Message::Text(r#"{"action":"ping"}"#.into()))
            .await
            .unwrap();
        assert_eq!(next_text(&mut ws).await, r#"{"action":"pong"}"#);
    }
    assert_eq!(
        seen.lock().unwrap().calls.len(),
        before,
        "the backend heard of a ping"
    );
    wait_for("dev's log line", || {
        dev.output()
            .contains("route ping → answered by the gateway (MOCK, no function)")
            .then_some(())
    })
    .await;
    assert!(
        !dev.output().contains("→ route ping → connect"),
        "{}",
        dev.output()
    );

    let (off, seen) = dev_with_backend("heartbeat: false\n", &[], &cache()).await;
    let (mut ws, _) = authenticated(&off, &seen).await;
    ws.send(Message::Text(r#"{"action":"ping"}"#.into()))
        .await
        .unwrap();
    let reply: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
    assert_eq!(reply["message"], "Forbidden", "no route for it: {reply}");
}

/// A connection is gone the moment it closes: while its `$disconnect` still runs (the backend is slow to answer
/// the DELETE), `@connections` POST, GET and DELETE already answer 410 GoneException.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_is_gone_for_connections_during_its_own_disconnect() {
    let (dev, seen) = dev_with_backend("", &[], &cache()).await;
    let (mut ws, id) = authenticated(&dev, &seen).await;
    seen.lock().unwrap().delay = Duration::from_secs(3);
    ws.close(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mgmt = dev.management().await;
    let post = mgmt
        .post_to_connection()
        .connection_id(&id)
        .data(b"late".to_vec().into())
        .send()
        .await;
    let get = mgmt.get_connection().connection_id(&id).send().await;
    let delete = mgmt.delete_connection().connection_id(&id).send().await;
    let during = seen
        .lock()
        .unwrap()
        .calls
        .iter()
        .all(|c| c.0 != Method::DELETE);
    assert!(during, "the $disconnect was still running");
    assert!(post.unwrap_err().into_service_error().is_gone_exception());
    assert!(get.unwrap_err().into_service_error().is_gone_exception());
    assert!(delete.unwrap_err().into_service_error().is_gone_exception());
}

/// Function processes start with what Lambda gives a function and nothing else: no variable of the shell `dev`
/// runs in, the configured memory, Lambda's own variables.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn function_processes_get_lambdas_environment_not_the_shells() {
    assert!(std::env::var_os("HOME").is_some() && std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let cache = private_cache();
    let (dev, _) = dev_with_backend("lambda: { memory_mb: 256 }\n", &[], cache.path()).await;
    let exe = bootstrap_in(cache.path(), "connect");
    let pid = wait_for("a connect process", || pids_of(&exe).into_iter().next()).await;
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let vars: BTreeMap<String, String> = environ
        .split(|b| *b == 0)
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let kv = String::from_utf8_lossy(kv);
            let (k, v) = kv.split_once('=').unwrap_or((&kv, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let expected = [
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
        ("AWS_REGION", "eu-west-3"),
        ("AWS_DEFAULT_REGION", "eu-west-3"),
        ("TZ", ":UTC"),
        ("LANG", "en_US.UTF-8"),
        ("PATH", "/usr/local/bin:/usr/bin/:/bin:/opt/bin"),
        ("_HANDLER", "bootstrap"),
        ("AWS_LAMBDA_FUNCTION_NAME", "chat-local-connect"),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
    ];
    for (k, v) in expected {
        assert_eq!(vars.get(k).map(String::as_str), Some(v), "{k} in {vars:?}");
    }
    let lambdas_own = [
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        // The role's credentials on Lambda; here the dev key, the only identity dev's @connections knows.
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ];
    assert_eq!(
        vars.get("AWS_ACCESS_KEY_ID"),
        dev.env.get("WS_API_ACCESS_KEY_ID"),
        "the functions call @connections with the dev key"
    );
    let strays: Vec<&String> = vars
        .keys()
        .filter(|k| {
            !k.starts_with("WSDEPLOY_")
                && !lambdas_own.contains(&k.as_str())
                && !expected.iter().any(|(e, _)| e == k)
        })
        .collect();
    assert!(
        strays.is_empty(),
        "inherited from the shell: {strays:?}\n{}",
        dev.output()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_sockets_are_closed() {
    let (dev, _) = dev_with_backend("", &["--idle-timeout", "1"], &cache()).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    let started = Instant::now();
    let close = close_code(&mut ws, 5).await;
    assert_eq!(close, Some(1001));
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashing_function_is_an_internal_server_error_and_a_hanging_one_times_out() {
    let cache = private_cache();
    let (dev, seen) = dev_with_backend("lambda: { timeout_s: 3 }\n", &[], cache.path()).await;
    let exe = bootstrap_in(cache.path(), "connect");
    let (mut ws, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    let auth = r#"{"action":"auth","token":"good-token"}"#;

    // Crash: the process dies while it holds the invocation (inside a slow backend call).
    seen.lock().unwrap().delay = Duration::from_millis(1500);
    ws.send(Message::Text(auth.into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let pids = pids_of(&exe);
    assert!(
        !pids.is_empty(),
        "the connect function runs as a process of its own"
    );
    signal(&pids, "-KILL");
    let reply: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
    assert_eq!(
        reply["message"],
        "Internal server error",
        "{}",
        dev.output()
    );
    assert!(reply["connectionId"].is_string() && reply["requestId"].is_string());

    // The socket is still open, and a new process serves the next message.
    seen.lock().unwrap().delay = Duration::ZERO;
    ws.send(Message::Text(auth.into())).await.unwrap();
    assert_eq!(
        next_text(&mut ws).await,
        r#"{"ok":true,"type":"auth"}"#,
        "{}",
        dev.output()
    );

    // Hang: a frozen process never answers; after the integration timeout the client is told. Freeze every
    // process once the set is stable: the crashed one's replacement may still be starting (fork before exec).
    let mut pids = pids_of(&exe);
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = pids_of(&exe);
        if now == pids && !now.is_empty() {
            break;
        }
        pids = now;
    }
    signal(&pids, "-STOP");
    let started = Instant::now();
    ws.send(Message::Text(auth.into())).await.unwrap();
    let reply: serde_json::Value = serde_json::from_str(&next_text(&mut ws).await).unwrap();
    let waited = started.elapsed();
    signal(&pids, "-CONT");
    // API Gateway's words for an integration that did not answer in time, unlike a failing one.
    assert_eq!(
        reply["message"],
        "Endpoint request timed out",
        "{}",
        dev.output()
    );
    assert!(reply["connectionId"].is_string() && reply["requestId"].is_string());
    assert!(
        waited >= Duration::from_millis(2500),
        "the timeout is lambda.timeout_s (3 s): {waited:?}"
    );
    ws.send(Message::Text(auth.into())).await.unwrap();
    assert_eq!(
        next_text(&mut ws).await,
        r#"{"ok":true,"type":"auth"}"#,
        "the gateway still serves: {}",
        dev.output()
    );
}

/// The local Runtime API serves only the function processes `dev` started: any program on this machine can reach
/// a loopback port, and the invocations carry users' tokens. Without the path `dev` gave its processes, 404.
#[tokio::test(flavor = "multi_thread")]
async fn the_runtime_api_serves_only_the_processes_dev_started() {
    let cache = private_cache();
    let (dev, _) = dev_with_backend("", &[], cache.path()).await;
    let exe = bootstrap_in(cache.path(), "connect");
    let pid = pids_of(&exe)
        .into_iter()
        .next()
        .expect("a connect process runs");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let api = environ
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix("AWS_LAMBDA_RUNTIME_API="))
        .expect("the process has a Runtime API")
        .to_string();
    let (host, token) = api
        .strip_prefix("http://")
        .and_then(|a| a.split_once('/'))
        .expect("the endpoint carries a path");
    assert!(token.len() >= 32, "{api}");
    let client = reqwest::Client::new();
    for path in [
        "/2018-06-01/runtime/invocation/next".to_string(),
        "/2018-06-01/runtime/invocation/x/response".to_string(),
        format!(
            "/{}/2018-06-01/runtime/invocation/next",
            &token[..token.len() - 1]
        ),
    ] {
        let r = tokio::time::timeout(
            Duration::from_secs(5),
            client.get(format!("http://{host}{path}")).send(),
        )
        .await
        .expect("answered at once, not held like a waiting function")
        .unwrap();
        assert_eq!(r.status(), 404, "{path}: {}", dev.output());
    }
}

/// `--max-connections`: beyond that many open sockets a new one is refused with 429, and one that closes makes
/// room again.
#[tokio::test(flavor = "multi_thread")]
async fn sockets_beyond_max_connections_are_refused() {
    let (dev, _) = dev_with_backend("", &["--max-connections", "2"], &cache()).await;
    let (a, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    let (_b, _) = tokio_tungstenite::connect_async(&dev.ws_url).await.unwrap();
    match tokio_tungstenite::connect_async(&dev.ws_url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 429),
        other => panic!("a third socket: {other:?}\n{}", dev.output()),
    }
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio_tungstenite::connect_async(&dev.ws_url).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "room again once a socket closed\n{}",
            dev.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `--header-timeout`: a client that trickles its request headers (slowloris) is cut off once the deadline passes,
/// while a client that sends them at once still gets its socket.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_trickling_its_headers_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (dev, _) = dev_with_backend("", &["--header-timeout", "1s"], &cache()).await;
    let addr = dev
        .ws_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /local HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut closed_after = None;
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let header = format!("X-Trickle-{i}: y\r\n");
        let mut buf = [0u8; 512];
        let gone = slow.write_all(header.as_bytes()).await.is_err()
            || matches!(
                tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await,
                Ok(Ok(0) | Err(_))
            );
        if gone {
            closed_after = Some(started.elapsed());
            break;
        }
    }
    let closed_after = closed_after
        .unwrap_or_else(|| panic!("still open after 8 s of trickling\n{}", dev.output()));
    assert!(closed_after < Duration::from_secs(5), "{closed_after:?}");
    tokio_tungstenite::connect_async(&dev.ws_url)
        .await
        .unwrap_or_else(|e| panic!("a prompt client: {e}\n{}", dev.output()));
}

/// A client that stops reading fills what can be queued for it. Then `@connections` answers 429
/// `LimitExceededException`, as API Gateway does, instead of `dev` holding every message in memory.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_gets_429s_not_an_unbounded_queue() {
    use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
    let (dev, seen) = dev_with_backend("", &[], &cache()).await;
    let (ws, id) = authenticated(&dev, &seen).await;
    // From here on the client reads nothing.
    let mgmt = dev.management().await;
    let chunk = vec![b'x'; 100 * 1024];
    let mut accepted = 0;
    let refused = loop {
        match mgmt
            .post_to_connection()
            .connection_id(&id)
            .data(chunk.clone().into())
            .send()
            .await
        {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(
            accepted < 2000,
            "never refused after {accepted} × 100 KB\n{}",
            dev.output()
        );
    };
    assert_eq!(
        refused.code(),
        Some("LimitExceededException"),
        "{refused:?}"
    );
    assert!(
        accepted > 10,
        "the queue holds 1 MiB before refusing: {accepted} accepted"
    );
    eprintln!("accepted {accepted} posts of 100 KB before the 429");
    drop(ws);
}
