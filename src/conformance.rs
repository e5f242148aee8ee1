//! The gateway behaviours wsdeploy relies on, checked against a running stage (`wsdeploy dev`, or deployed) with
//! real clients: a WebSocket client for the browser's side, the AWS SDK's `@connections` client (SigV4) with the
//! backend env file's keys for the backend's side. The same checks run against both, so `dev`'s fidelity is a
//! number, not a claim.

use std::time::Duration;

use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use crate::facts::{
    CLOSE_BINARY, CLOSE_TOO_BIG, ERROR_BAD_SIGNATURE, ERROR_GONE, ERROR_NO_SIGNATURE,
    ERROR_UNKNOWN_KEY, HEARTBEAT_ACTION, HEARTBEAT_REPLY, MAX_MESSAGE_BYTES, REPLY_NO_ROUTE,
};

/// What a stage's env files say, and a token its backend accepts.
pub(crate) struct Target {
    pub websocket_url: String,
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub token: String,
    /// A `$default` route takes unknown actions, so they get no `Forbidden` (and no connection id in it).
    pub has_default_route: bool,
    /// Whether the stage answers `ping` itself (`heartbeat`).
    pub heartbeat: bool,
}

/// One behaviour's result: `Ok` with what was seen, `Err` with what went wrong, or skipped with why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Outcome {
    pub behaviour: &'static str,
    pub result: Verdict,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Verdict {
    Passed,
    Failed,
    Skipped,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long any one answer may take: well above API Gateway's, far below a CI step's patience.
const WAIT: Duration = Duration::from_secs(10);
const BAD_TOKEN: &str = "wsdeploy-conformance-not-a-valid-token";
const UNKNOWN_ACTION: &str = r#"{"action":"wsdeploy-conformance-no-such-route"}"#;

fn outcome(behaviour: &'static str, r: Result<String, String>) -> Outcome {
    let (result, detail) = match r {
        Ok(d) => (Verdict::Passed, d),
        Err(d) => (Verdict::Failed, d),
    };
    Outcome {
        behaviour,
        result,
        detail,
    }
}

fn skipped(behaviour: &'static str, why: &str) -> Outcome {
    Outcome {
        behaviour,
        result: Verdict::Skipped,
        detail: why.to_string(),
    }
}

async fn open(url: &str) -> Result<Ws, String> {
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(e)) => Err(format!("handshake with {url} failed: {e}")),
        Err(_) => Err(format!("no handshake with {url} within {WAIT:?}")),
    }
}

/// The next text frame (pings and pongs skipped).
async fn next_text(ws: &mut Ws) -> Result<String, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Ok(t.to_string()),
            Ok(Some(Ok(Message::Close(f)))) => {
                return Err(format!(
                    "closed instead: {:?}",
                    f.map(|f| u16::from(f.code))
                ))
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(format!("socket error: {e}")),
            Ok(None) => return Err("socket ended".into()),
            Err(_) => return Err(format!("no message within {WAIT:?}")),
        }
    }
}

/// The close code the server sends next, ignoring other frames.
async fn close_code(ws: &mut Ws) -> Result<u16, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => return Ok(f.map_or(1005, |f| u16::from(f.code))),
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(format!("socket error instead of a close frame: {e}")),
            Ok(None) => return Err("socket ended without a close frame".into()),
            Err(_) => return Err(format!("not closed within {WAIT:?}")),
        }
    }
}

async fn send_text(ws: &mut Ws, text: String) -> Result<(), String> {
    ws.send(Message::Text(text.into()))
        .await
        .map_err(|e| format!("send failed: {e}"))
}

fn json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|_| format!("not JSON: {text}"))
}

/// The reply to an `auth` message with `token`.
async fn auth(ws: &mut Ws, token: &str) -> Result<Value, String> {
    send_text(
        ws,
        serde_json::json!({ "action": "auth", "token": token }).to_string(),
    )
    .await?;
    json(&next_text(ws).await?)
}

/// Sends the SDK's request without its signature: the request a caller without keys would make.
#[derive(Debug)]
struct StripSignature;

impl aws_smithy_runtime_api::client::interceptors::Intercept for StripSignature {
    fn name(&self) -> &'static str {
        "StripSignature"
    }

    fn modify_before_transmit(
        &self,
        ctx: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let headers = ctx.request_mut().headers_mut();
        for h in [
            "authorization",
            "x-amz-date",
            "x-amz-security-token",
            "x-amz-content-sha256",
        ] {
            headers.remove(h);
        }
        Ok(())
    }
}

/// The `@connections` client of the backend, with `key` and `secret`, or (`None`) sending unsigned requests.
async fn management(
    t: &Target,
    creds: Option<(&str, &str)>,
) -> aws_sdk_apigatewaymanagement::Client {
    let (key, secret) = creds.unwrap_or(("AKIAWSDEPLOYUNSIGNED", "unsigned"));
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(t.region.clone()))
        .endpoint_url(&t.endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            key,
            secret,
            None,
            None,
            "wsdeploy-conformance",
        ))
        .load()
        .await;
    let mut conf = aws_sdk_apigatewaymanagement::config::Builder::from(&sdk);
    if creds.is_none() {
        conf = conf.interceptor(StripSignature);
    }
    aws_sdk_apigatewaymanagement::Client::from_conf(conf.build())
}

/// Runs every behaviour in order (later ones need what earlier ones established) and returns each outcome.
pub(crate) async fn run(t: &Target) -> Vec<Outcome> {
    let mut out = vec![];
    let mut ws = match open(&t.websocket_url).await {
        Ok(ws) => {
            out.push(outcome(
                "connect",
                Ok(format!("handshake with {}", t.websocket_url)),
            ));
            ws
        }
        Err(e) => {
            out.push(outcome("connect", Err(e)));
            return out;
        }
    };
    out.push(outcome(
        "auth with a valid token",
        auth_answers(&mut ws, &t.token, true).await,
    ));
    out.push(outcome(
        "auth with an invalid token is refused, then the socket closed",
        refused_then_closed(t).await,
    ));
    // The rest on a socket of its own that never authenticates: a refused token above closes its socket, and
    // the gateway's answers below do not depend on who the socket belongs to.
    let mut ws = match open(&t.websocket_url).await {
        Ok(ws) => ws,
        Err(e) => {
            out.push(outcome("connect", Err(e)));
            return out;
        }
    };
    out.push(if t.heartbeat {
        outcome(
            "ping is answered pong by the gateway",
            heartbeat(&mut ws).await,
        )
    } else {
        skipped("ping is answered pong by the gateway", "heartbeat: false")
    });
    let id = if t.has_default_route {
        out.push(skipped(
            "unknown action is Forbidden",
            "the stage has a $default route",
        ));
        None
    } else {
        let r = forbidden(&mut ws).await;
        let id = r.as_ref().ok().cloned();
        out.push(outcome(
            "unknown action is Forbidden",
            r.map(|id| format!("connection {id}")),
        ));
        id
    };
    out.extend(connections_api(t, &mut ws, id.as_deref()).await);
    out.push(outcome(
        "message over 128 KB closes with 1009",
        too_big(t).await,
    ));
    out.push(outcome("binary frame closes with 1003", binary(t).await));
    out
}

/// The `auth` reply to `token` says `ok: expect_ok`.
async fn auth_answers(ws: &mut Ws, token: &str, expect_ok: bool) -> Result<String, String> {
    let reply = auth(ws, token).await?;
    if reply["type"] == "auth" && reply["ok"] == expect_ok {
        Ok(reply.to_string())
    } else {
        Err(format!(
            "expected {{\"type\":\"auth\",\"ok\":{expect_ok},…}}, got {reply}"
        ))
    }
}

/// A refused `auth` is answered `ok: false`, and then the `connect` function closes the socket.
async fn refused_then_closed(t: &Target) -> Result<String, String> {
    let mut ws = open(&t.websocket_url).await?;
    let reply = auth_answers(&mut ws, BAD_TOKEN, false).await?;
    let code = close_code(&mut ws).await?;
    Ok(format!("{reply}, then closed with {code}"))
}

/// `{"action":"ping"}` gets exactly the heartbeat's reply.
async fn heartbeat(ws: &mut Ws) -> Result<String, String> {
    send_text(ws, format!(r#"{{"action":"{HEARTBEAT_ACTION}"}}"#)).await?;
    let reply = next_text(ws).await?;
    if json(&reply)? == json(HEARTBEAT_REPLY)? {
        Ok(reply)
    } else {
        Err(format!("expected {HEARTBEAT_REPLY}, got {reply}"))
    }
}

/// `{"message": "Forbidden", "connectionId": …}`; returns the connection id it names.
async fn forbidden(ws: &mut Ws) -> Result<String, String> {
    send_text(ws, UNKNOWN_ACTION.to_string()).await?;
    let reply = json(&next_text(ws).await?)?;
    match (reply["message"].as_str(), reply["connectionId"].as_str()) {
        (Some(REPLY_NO_ROUTE), Some(id)) if reply["requestId"].is_string() => Ok(id.to_string()),
        _ => Err(format!(
            "expected {{\"message\":\"Forbidden\",\"connectionId\",\"requestId\"}}, got {reply}"
        )),
    }
}

/// The backend's side: POST, GET and DELETE on this socket's connection with the env file's keys, 410 once it is
/// gone, and the SigV4 refusals.
async fn connections_api(t: &Target, ws: &mut Ws, id: Option<&str>) -> Vec<Outcome> {
    const NAMES: [&str; 7] = [
        "@connections POST reaches the socket",
        "@connections GET describes it",
        "@connections DELETE closes it",
        "@connections POST after close is 410 GoneException",
        "@connections unsigned is 403 MissingAuthenticationToken",
        "@connections wrong secret is 403 InvalidSignature",
        "@connections unknown key is 403 UnrecognizedClient",
    ];
    let Some(id) = id else {
        return NAMES
            .iter()
            .map(|n| skipped(n, "no connection id (the stage has a $default route)"))
            .collect();
    };
    let backend = management(t, Some((&t.access_key_id, &t.secret_access_key))).await;
    let results = [
        post(&backend, ws, id).await,
        get(&backend, id).await,
        delete(&backend, ws, id).await,
        expect_code(post_only(&backend, id).await, 410, ERROR_GONE),
        expect_code(
            post_only(&management(t, None).await, id).await,
            403,
            ERROR_NO_SIGNATURE,
        ),
        expect_code(
            post_only(
                &management(t, Some((&t.access_key_id, "not-the-secret"))).await,
                id,
            )
            .await,
            403,
            ERROR_BAD_SIGNATURE,
        ),
        expect_code(
            post_only(
                &management(t, Some(("AKIAWSDEPLOYUNKNOWN0", &t.secret_access_key))).await,
                id,
            )
            .await,
            403,
            ERROR_UNKNOWN_KEY,
        ),
    ];
    NAMES
        .into_iter()
        .zip(results)
        .map(|(n, r)| outcome(n, r))
        .collect()
}

type PostResult = Result<(), (Option<u16>, Option<String>)>;

async fn post_only(c: &aws_sdk_apigatewaymanagement::Client, id: &str) -> PostResult {
    c.post_to_connection()
        .connection_id(id)
        .data(b"wsdeploy-conformance".to_vec().into())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            let status = e.raw_response().map(|r| r.status().as_u16());
            (status, e.code().map(str::to_string))
        })
}

fn expect_code(r: PostResult, status: u16, code: &str) -> Result<String, String> {
    match r {
        Err((Some(s), Some(c))) if s == status && c == code => Ok(format!("{s} {c}")),
        Err((s, c)) => Err(format!("expected {status} {code}, got {s:?} {c:?}")),
        Ok(()) => Err(format!("expected {status} {code}, the call succeeded")),
    }
}

async fn post(
    c: &aws_sdk_apigatewaymanagement::Client,
    ws: &mut Ws,
    id: &str,
) -> Result<String, String> {
    let data = r#"{"wsdeploy":"conformance"}"#;
    c.post_to_connection()
        .connection_id(id)
        .data(data.as_bytes().to_vec().into())
        .send()
        .await
        .map_err(|e| format!("POST failed: {:?} {:?}", e.code(), e.message()))?;
    let got = next_text(ws).await?;
    if got == data {
        Ok("delivered as sent".into())
    } else {
        Err(format!("the socket got {got:?}, not {data:?}"))
    }
}

async fn get(c: &aws_sdk_apigatewaymanagement::Client, id: &str) -> Result<String, String> {
    let info = c
        .get_connection()
        .connection_id(id)
        .send()
        .await
        .map_err(|e| format!("GET failed: {:?} {:?}", e.code(), e.message()))?;
    match (
        info.connected_at(),
        info.last_active_at(),
        info.identity().and_then(|i| i.source_ip()),
    ) {
        (Some(_), Some(_), Some(ip)) => Ok(format!("connectedAt, lastActiveAt, sourceIp {ip}")),
        _ => Err(format!("incomplete description: {info:?}")),
    }
}

async fn delete(
    c: &aws_sdk_apigatewaymanagement::Client,
    ws: &mut Ws,
    id: &str,
) -> Result<String, String> {
    c.delete_connection()
        .connection_id(id)
        .send()
        .await
        .map_err(|e| format!("DELETE failed: {:?} {:?}", e.code(), e.message()))?;
    let code = close_code(ws).await?;
    Ok(format!("socket closed with {code}"))
}

async fn too_big(t: &Target) -> Result<String, String> {
    let mut ws = open(&t.websocket_url).await?;
    let body = format!(
        r#"{{"action":"auth","token":"{}"}}"#,
        "x".repeat(MAX_MESSAGE_BYTES)
    );
    // The server may close while the frame is still being written: that is the expected outcome, not a failure.
    let _ = ws.send(Message::Text(body.into())).await;
    expect_close(close_code(&mut ws).await?, CLOSE_TOO_BIG)
}

async fn binary(t: &Target) -> Result<String, String> {
    let mut ws = open(&t.websocket_url).await?;
    ws.send(Message::Binary(br#"{"action":"auth"}"#.to_vec().into()))
        .await
        .map_err(|e| format!("send failed: {e}"))?;
    expect_close(close_code(&mut ws).await?, CLOSE_BINARY)
}

fn expect_close(got: u16, expected: u16) -> Result<String, String> {
    if got == expected {
        Ok(got.to_string())
    } else {
        Err(format!("closed with {got}, not {expected}"))
    }
}
