//! The `connect` function: on the `auth` route (or `$connect`), hands the user's token and the connection id to the
//! backend, which decides who this socket belongs to. Under `auth_timeout_s` it also runs on `$connect` without a
//! token, to tell the backend of a socket that has yet to authenticate.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use serde_json::json;

use crate::backend::CallError;
use crate::{reply, Backend};

const MAX_TOKEN_LEN: usize = 8192;

pub async fn handle(
    backend: &Backend,
    event: ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    if let Some(refused) = crate::foreign_event(&backend.settings, &event) {
        return refused;
    }
    let ctx = &event.request_context;
    let route = ctx.route_key.as_deref().unwrap_or("");
    let connection_id = ctx.connection_id.as_deref().unwrap_or("");
    // On $connect a non-2xx status rejects the handshake; on a message route the client reads the body instead.
    let on_connect = route == "$connect";
    let fail = |status: i64, error: &str, retry: bool| {
        let mut body = json!({ "type": "auth", "ok": false, "error": error });
        if retry {
            body["retry"] = true.into();
        }
        reply(if on_connect { status } else { 200 }, body)
    };
    if connection_id.is_empty() {
        tracing::error!(
            route,
            "event without a connectionId: is this function attached to a WebSocket route?"
        );
        return fail(500, "internal error", false);
    }
    if let (true, Some(timeout_s), None) = (
        on_connect,
        backend.settings.auth_timeout_s,
        event.query_string_parameters.first("token"),
    ) {
        return pending(
            backend,
            connection_id,
            ctx.identity.source_ip.as_deref(),
            timeout_s,
        )
        .await;
    }
    let AuthRequest {
        token,
        resume_after,
    } = match auth_request(&event, on_connect) {
        Ok(a) => a,
        Err(why) => {
            tracing::info!(
                connection_id,
                route,
                reason = why,
                "auth refused before calling the backend"
            );
            return refuse(backend, connection_id, on_connect, fail(401, why, false)).await;
        }
    };
    let started = std::time::Instant::now();
    // The client's address as API Gateway saw it, so the backend can rate-limit `auth` attempts per address.
    let source_ip = ctx.identity.source_ip.as_deref();
    let result = backend
        .register(connection_id, &token, source_ip, resume_after)
        .await;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(status) if status.is_success() => {
            tracing::info!(
                connection_id,
                route,
                status = status.as_u16(),
                elapsed_ms,
                "connection registered"
            );
            reply(200, json!({ "type": "auth", "ok": true }))
        }
        Ok(status) if status.as_u16() == 401 || status.as_u16() == 403 => {
            tracing::info!(
                connection_id,
                route,
                status = status.as_u16(),
                elapsed_ms,
                "backend refused the token"
            );
            refuse(
                backend,
                connection_id,
                on_connect,
                fail(403, "unauthorized", false),
            )
            .await
        }
        Ok(status) => {
            tracing::error!(
                connection_id, route, status = status.as_u16(), elapsed_ms,
                path = %backend.settings.connect_path,
                "backend answered with an unexpected status; check backend.url and backend.connect_path"
            );
            fail(502, "backend unavailable", true)
        }
        Err(e) => {
            let timeout = matches!(e, CallError::Timeout);
            tracing::error!(connection_id, route, elapsed_ms, error = %e, "backend call failed");
            fail(if timeout { 504 } else { 502 }, "backend unavailable", true)
        }
    }
}

/// `$connect` without a token, under `auth_timeout_s`: the socket is accepted once the backend knows it is pending,
/// so that it can close it if no `auth` follows in time. API Gateway has no such timer, and the heartbeat keeps a
/// socket that never authenticates open for up to 2 hours. Without the backend's word the handshake is refused: a
/// socket nobody would close is what this exists to prevent.
async fn pending(
    backend: &Backend,
    connection_id: &str,
    source_ip: Option<&str>,
    timeout_s: u32,
) -> ApiGatewayProxyResponse {
    let refused = |status: i64, error: &str| reply(status, json!({ "ok": false, "error": error }));
    match backend
        .register_pending(connection_id, source_ip, timeout_s)
        .await
    {
        Ok(status) if status.is_success() => {
            tracing::info!(connection_id, timeout_s, "pending until its auth");
            reply(200, json!({ "ok": true }))
        }
        Ok(status) if status.as_u16() == 401 || status.as_u16() == 403 => {
            tracing::info!(
                connection_id,
                status = status.as_u16(),
                "backend refused the connection"
            );
            refused(403, "forbidden")
        }
        Ok(status) => {
            tracing::error!(
                connection_id, status = status.as_u16(),
                path = %backend.settings.connect_path,
                "backend answered the pending registration with an unexpected status; does it handle pending registrations (the templates of this version do)?"
            );
            refused(502, "backend unavailable")
        }
        Err(e) => {
            tracing::error!(connection_id, error = %e, "backend call failed");
            refused(
                if matches!(e, CallError::Timeout) {
                    504
                } else {
                    502
                },
                "backend unavailable",
            )
        }
    }
}

/// A refused `auth` on a message route also closes the socket, after telling the client why; on `$connect` the
/// refusal already rejects the handshake.
async fn refuse(
    backend: &Backend,
    connection_id: &str,
    on_connect: bool,
    response: ApiGatewayProxyResponse,
) -> ApiGatewayProxyResponse {
    if let (false, Some(aws_lambda_events::encodings::Body::Text(reply))) =
        (on_connect, &response.body)
    {
        backend.close_refused(connection_id, reply).await;
    }
    response
}

/// What the client sent to authenticate its socket.
struct AuthRequest {
    token: String,
    /// The id of the last message the client saw (a previous socket's), so the backend replays what came after.
    resume_after: Option<u64>,
}

/// The largest id JavaScript holds exactly (`Number.MAX_SAFE_INTEGER`): ids come from and go to browsers.
const MAX_MESSAGE_ID: u64 = (1 << 53) - 1;
const MALFORMED_RESUME: &str =
    "malformed resumeAfter: the id of the last message received, a whole number";

/// The token and resume point from the message body (`{"action":"auth","token":"...","resumeAfter":17}`) or, on
/// `$connect`, the `token` and `resumeAfter` query parameters.
fn auth_request(
    event: &ApiGatewayWebsocketProxyRequest,
    on_connect: bool,
) -> Result<AuthRequest, &'static str> {
    let (token, resume_after) = if on_connect {
        let query = &event.query_string_parameters;
        let resume = match query.first("resumeAfter") {
            None => None,
            Some(s) => Some(s.parse::<u64>().map_err(|_| MALFORMED_RESUME)?),
        };
        (query.first("token").map(str::to_string), resume)
    } else {
        let body = event.body.as_deref().unwrap_or("");
        if event.is_base64_encoded {
            return Err("send the auth message as a text frame");
        }
        let v: serde_json::Value = serde_json::from_str(body).map_err(|_| {
            "the message is not JSON: send {\"action\":\"auth\",\"token\":\"<token>\"}"
        })?;
        let token = match v.get("token") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("malformed token: it must be a string"),
        };
        let resume = match v.get("resumeAfter") {
            None | Some(serde_json::Value::Null) => None,
            Some(n) => Some(n.as_u64().ok_or(MALFORMED_RESUME)?),
        };
        (token, resume)
    };
    if resume_after.is_some_and(|id| id > MAX_MESSAGE_ID) {
        return Err(MALFORMED_RESUME);
    }
    let token = token.ok_or(if on_connect {
        "missing token: connect with ?token=<token>"
    } else {
        "missing token: send {\"action\":\"auth\",\"token\":\"<token>\"}"
    })?;
    if token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || token.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("malformed token");
    }
    Ok(AuthRequest {
        token,
        resume_after,
    })
}
