//! The local API Gateway: WebSocket connections with route selection on `$request.body.action`, the Lambda proxy
//! events of AWS, and the @connections management API with `SigV4` checked. Behaviour follows AWS fact by fact
//! (the behaviours docs/developing-locally.md lists).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::events;
use super::origin;
use super::runtime::{InvokeError, Pool};
use super::sigv4::Verifier;
use super::Log;

use crate::facts::{
    CLOSE_BINARY, CLOSE_GOING_AWAY, CLOSE_TOO_BIG, ERROR_GONE, HEARTBEAT_ACTION, HEARTBEAT_REPLY,
    MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, REPLY_INTEGRATION_FAILED, REPLY_INTEGRATION_TIMEOUT,
    REPLY_NO_ROUTE, REPLY_THROTTLED,
};

/// Bytes waiting to be written to one socket, at most: a client that stops reading gets 429s on `@connections`
/// (what API Gateway answers), not a `dev` that grows without bound.
pub(crate) const MAX_QUEUED_PER_CONNECTION: usize = 1 << 20;
/// The same, across every socket.
pub(crate) const MAX_QUEUED_TOTAL: usize = 64 << 20;
/// Messages of one socket being routed at once (waiting for a function process, or running), at most. One more is
/// dropped and answered as API Gateway answers a throttled route, so that a client flooding 128 KB frames holds a
/// bounded amount of memory and at most this many of a function's processes, and other clients keep being served.
/// Twice the processes a function may have: a client's honest burst still queues rather than being refused.
pub(crate) const MAX_IN_FLIGHT_PER_CONNECTION: usize = 2 * super::MAX_PROCESSES;

/// What became of a message for a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Queued,
    /// No such connection (any more).
    Gone,
    /// The socket's (or every socket's) queue is full.
    Full,
}

/// What a client may do.
pub(crate) struct Limits {
    pub idle: Duration,
    pub max_life: Duration,
    /// Sockets open or being opened (their `$connect` running) at most; a new one beyond it is refused with 429.
    pub max_connections: usize,
    /// How long an `@connections` request's body may take to arrive.
    pub body_timeout: Duration,
    /// The web pages that may open a socket.
    pub origins: origin::Allowed,
    /// The share (0 to 1) of closed sockets whose `$disconnect` is not run, as AWS sometimes does not deliver it.
    pub lose_disconnects: f64,
}

pub(crate) struct Route {
    pub pool: Arc<Pool>,
    /// The function's answer goes back to the client (a `$default` route response).
    pub reply: bool,
}

/// The close reason of a socket that sent a binary frame.
const BINARY_REFUSED: &str = "Binary frames are not supported";

pub(crate) struct Gateway {
    pub stage: String,
    pub domain: String,
    pub routes: BTreeMap<String, Route>,
    /// Whether `ping` is answered here, as API Gateway answers it from the deployed MOCK integration.
    pub heartbeat: bool,
    pub limits: Limits,
    pub verifier: Verifier,
    pub log: Log,
    conns: Mutex<HashMap<String, Conn>>,
    /// One permit per socket admitted (counted against `max_connections`), held from before its `$connect` runs
    /// until its `$disconnect` is done, so that handshakes in progress count too.
    admitted: Arc<tokio::sync::Semaphore>,
    /// Bytes queued for every socket, not yet written.
    queued_total: AtomicUsize,
    /// Closed sockets whose `$disconnect` is still running: gone for `@connections`, not yet done for shutdown.
    disconnecting: AtomicUsize,
}

struct Conn {
    tx: mpsc::UnboundedSender<Out>,
    /// Bytes queued for this socket, not yet written.
    queued: Arc<AtomicUsize>,
    connected_at: SystemTime,
    last_active: SystemTime,
    source_ip: String,
    user_agent: String,
}

enum Out {
    Text(String),
    Close(u16, &'static str),
}

impl Gateway {
    pub(crate) fn new(
        stage: String,
        domain: String,
        routes: BTreeMap<String, Route>,
        heartbeat: bool,
        limits: Limits,
        verifier: Verifier,
        log: Log,
    ) -> Arc<Gateway> {
        let admitted = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
        Arc::new(Gateway {
            stage,
            domain,
            routes,
            heartbeat,
            limits,
            verifier,
            log,
            conns: Mutex::new(HashMap::new()),
            admitted,
            queued_total: AtomicUsize::new(0),
            disconnecting: AtomicUsize::new(0),
        })
    }

    pub(crate) fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/{stage}", get(connect))
            .route("/{stage}/@connections/{id}", any(management))
            .with_state(self.clone())
    }

    /// Sockets open, and closed ones whose `$disconnect` has not finished.
    pub(crate) fn open_connections(&self) -> usize {
        self.conns.lock().expect("conns").len() + self.disconnecting.load(Ordering::SeqCst)
    }

    /// Closes every socket with 1001 (each fires `$disconnect`) and waits for them to finish, at most `wait`.
    pub(crate) async fn close_all(&self, wait: Duration) {
        for c in self.conns.lock().expect("conns").values() {
            let _ = c.tx.send(Out::Close(CLOSE_GOING_AWAY, "Going away"));
        }
        let deadline = Instant::now() + wait;
        while self.open_connections() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn context(
        &self,
        id: &str,
        route: &str,
        event_type: &str,
        connected_at: SystemTime,
        ip: &str,
        ua: &str,
    ) -> (Value, String) {
        let scope = events::Scope {
            stage: &self.stage,
            domain: &self.domain,
            connection_id: id,
        };
        let origin = events::Origin {
            connected_at,
            ip,
            user_agent: ua,
        };
        events::context(&scope, route, event_type, &origin)
    }

    async fn on_message(
        self: Arc<Self>,
        id: String,
        body: String,
        meta: (SystemTime, String, String),
    ) {
        let started = Instant::now();
        let action = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.get("action").and_then(Value::as_str).map(str::to_string));
        if self.heartbeat && action.as_deref() == Some(HEARTBEAT_ACTION) {
            self.log.line(format!(
                "message {id} → route {HEARTBEAT_ACTION} → answered by the gateway (MOCK, no function) ({:.1} ms)",
                started.elapsed().as_secs_f64() * 1000.0
            ));
            self.send(&id, HEARTBEAT_REPLY.to_string());
            return;
        }
        let key = match action {
            Some(a) if self.routes.contains_key(&a) && !a.starts_with('$') => a,
            _ if self.routes.contains_key("$default") => "$default".to_string(),
            _ => {
                let request_id = events::new_request_id();
                self.log.line(format!(
                    "message {id}: no route for it and no $default → Forbidden"
                ));
                self.send(
                    &id,
                    json!({ "message": REPLY_NO_ROUTE, "connectionId": id, "requestId": request_id })
                        .to_string(),
                );
                return;
            }
        };
        let route = &self.routes[&key];
        let (ctx, request_id) = self.context(&id, &key, "MESSAGE", meta.0, &meta.1, &meta.2);
        let event = events::message_event(ctx, &body);
        match route.pool.invoke(event).await {
            Ok(resp) => {
                let status = resp
                    .get("statusCode")
                    .and_then(Value::as_i64)
                    .unwrap_or(200);
                self.log.line(format!(
                    "message {id} → route {key} → {} {status} ({:.1} ms)",
                    route.pool.name,
                    started.elapsed().as_secs_f64() * 1000.0
                ));
                if route.reply {
                    let text = match resp.get("body") {
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => resp.to_string(),
                    };
                    self.send(&id, text);
                }
            }
            Err(e) => {
                self.log.line(format!(
                    "message {id} → route {key} → {} failed: {e}",
                    route.pool.name
                ));
                // A timeout and a failing function look different to the client, as on AWS.
                let message = if matches!(e, InvokeError::Timeout(_)) {
                    REPLY_INTEGRATION_TIMEOUT
                } else {
                    REPLY_INTEGRATION_FAILED
                };
                self.send(
                    &id,
                    json!({ "message": message, "connectionId": id, "requestId": request_id })
                        .to_string(),
                );
            }
        }
    }

    /// A message beyond `MAX_IN_FLIGHT_PER_CONNECTION`: dropped, and the client told as API Gateway tells it.
    fn throttle(&self, id: &str, in_a_row: u64) {
        if in_a_row == 1 {
            self.log.line(format!(
                "message {id}: {MAX_IN_FLIGHT_PER_CONNECTION} of its messages are still being routed → {REPLY_THROTTLED} (dropped, and so are the next ones until one finishes)"
            ));
        }
        let request_id = events::new_request_id();
        self.send(
            id,
            json!({ "message": REPLY_THROTTLED, "connectionId": id, "requestId": request_id })
                .to_string(),
        );
    }

    fn send(&self, id: &str, text: String) -> Sent {
        let conns = self.conns.lock().expect("conns");
        let Some(c) = conns.get(id) else {
            return Sent::Gone;
        };
        let n = text.len();
        if c.queued.load(Ordering::Relaxed) + n > MAX_QUEUED_PER_CONNECTION
            || self.queued_total.load(Ordering::Relaxed) + n > MAX_QUEUED_TOTAL
        {
            return Sent::Full;
        }
        c.queued.fetch_add(n, Ordering::Relaxed);
        self.queued_total.fetch_add(n, Ordering::Relaxed);
        if c.tx.send(Out::Text(text)).is_ok() {
            Sent::Queued
        } else {
            self.written(&c.queued, n);
            Sent::Gone
        }
    }

    /// `n` queued bytes are off the queue (written, or dropped with their socket).
    fn written(&self, queued: &AtomicUsize, n: usize) {
        queued.fetch_sub(n, Ordering::Relaxed);
        self.queued_total.fetch_sub(n, Ordering::Relaxed);
    }

    fn touch(&self, id: &str) {
        if let Some(c) = self.conns.lock().expect("conns").get_mut(id) {
            c.last_active = SystemTime::now();
        }
    }

    async fn serve(self: Arc<Self>, socket: WebSocket, id: String, ip: String, ua: String) {
        let connected_at = SystemTime::now();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        self.conns.lock().expect("conns").insert(
            id.clone(),
            Conn {
                tx,
                queued: queued.clone(),
                connected_at,
                last_active: connected_at,
                source_ip: ip.clone(),
                user_agent: ua.clone(),
            },
        );
        let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT_PER_CONNECTION));
        // Messages dropped in a row, for one log line per run of them rather than one per message.
        let mut throttled = 0_u64;
        let (mut sink, mut stream) = socket.split();
        let life = tokio::time::sleep(self.limits.max_life);
        tokio::pin!(life);
        let (mut code, mut reason): (u16, String) = (1006, String::new());
        loop {
            let idle = tokio::time::sleep(self.limits.idle);
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(t))) => {
                        self.touch(&id);
                        if let Ok(permit) = in_flight.clone().try_acquire_owned() {
                            throttled = 0;
                            let routed = self.clone().on_message(id.clone(), t.to_string(), (connected_at, ip.clone(), ua.clone()));
                            tokio::spawn(async move {
                                routed.await;
                                drop(permit);
                            });
                        } else {
                            drop(t);
                            throttled += 1;
                            self.throttle(&id, throttled);
                        }
                    }
                    // API Gateway rejects binary frames and disconnects with 1003, invoking nothing
                    // (https://docs.aws.amazon.com/apigateway/latest/developerguide/websocket-api-develop-binary-media-types.html).
                    Some(Ok(Message::Binary(_))) => {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code: CLOSE_BINARY, reason: BINARY_REFUSED.into() }))).await;
                        (code, reason) = (CLOSE_BINARY, BINARY_REFUSED.into());
                        break;
                    }
                    Some(Ok(Message::Close(frame))) => {
                        (code, reason) = frame.map_or((1005, String::new()), |f| (f.code, f.reason.to_string()));
                        break;
                    }
                    Some(Ok(_)) => self.touch(&id),
                    Some(Err(e)) => {
                        if e.to_string().contains("Space limit exceeded") || e.to_string().contains("too long") || e.to_string().contains("too big") {
                            let _ = sink.send(Message::Close(Some(CloseFrame { code: CLOSE_TOO_BIG, reason: "Message too big".into() }))).await;
                            (code, reason) = (CLOSE_TOO_BIG, "Message too big".into());
                        } else {
                            reason = e.to_string();
                        }
                        break;
                    }
                    None => break,
                },
                out = rx.recv() => match out {
                    Some(Out::Text(t)) => {
                        let n = t.len();
                        let sent = sink.send(Message::Text(t.into())).await;
                        self.written(&queued, n);
                        if sent.is_err() {
                            break;
                        }
                    }
                    Some(Out::Close(c, r)) => {
                        let _ = sink.send(Message::Close(Some(CloseFrame { code: c, reason: r.into() }))).await;
                        (code, reason) = (c, r.to_string());
                        break;
                    }
                    None => break,
                },
                () = idle => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: CLOSE_GOING_AWAY, reason: "Going away".into() }))).await;
                    (code, reason) = (CLOSE_GOING_AWAY, "idle timeout".into());
                    break;
                }
                () = &mut life => {
                    let _ = sink.send(Message::Close(Some(CloseFrame { code: CLOSE_GOING_AWAY, reason: "Going away".into() }))).await;
                    (code, reason) = (CLOSE_GOING_AWAY, "maximum connection duration".into());
                    break;
                }
            }
        }
        // Gone the moment it closes: during its own $disconnect, @connections already answers 410 for it, as on
        // AWS ("the connection is already closed" when $disconnect runs). $disconnect always fires locally (it is
        // best-effort on AWS); shutdown waits for it through `disconnecting`.
        self.disconnecting.fetch_add(1, Ordering::SeqCst);
        self.conns.lock().expect("conns").remove(&id);
        // What was never written goes with the socket.
        self.written(&queued, queued.load(Ordering::Relaxed));
        self.run_disconnect(&id, (code, &reason), (connected_at, &ip, &ua))
            .await;
        self.disconnecting.fetch_sub(1, Ordering::SeqCst);
    }

    /// The `$disconnect` route of a closed connection, with the close code and reason as AWS reports them.
    async fn run_disconnect(
        &self,
        id: &str,
        (code, reason): (u16, &str),
        (connected_at, ip, ua): (SystemTime, &str, &str),
    ) {
        // Why it closed, for the developer reading the log: the client's close code or the gateway's own limit.
        let why = if reason.is_empty() {
            code.to_string()
        } else {
            format!("{code}: {reason}")
        };
        if self.limits.lose_disconnects > 0.0
            && rand::random::<f64>() < self.limits.lose_disconnects
        {
            self.log.line(format!(
                "disconnect {id} ({why}): $disconnect not delivered (--lose-disconnects)"
            ));
            return;
        }
        if let Some(route) = self.routes.get("$disconnect") {
            let started = Instant::now();
            let (ctx, _) = self.context(id, "$disconnect", "DISCONNECT", connected_at, ip, ua);
            let event = events::disconnect_event(ctx, &self.domain, code, reason);
            let result = route.pool.invoke(event).await;
            let outcome = match result {
                Ok(r) => r
                    .get("statusCode")
                    .and_then(Value::as_i64)
                    .unwrap_or(200)
                    .to_string(),
                Err(e) => e.to_string(),
            };
            self.log.line(format!(
                "disconnect {id} ({why}) → {} {outcome} ({:.1} ms)",
                route.pool.name,
                started.elapsed().as_secs_f64() * 1000.0
            ));
        } else {
            self.log.line(format!("disconnect {id} ({why})"));
        }
    }
}

async fn connect(
    State(gw): State<Arc<Gateway>>,
    Path(stage): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if stage != gw.stage {
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({ "message": "Forbidden" })),
        )
            .into_response();
    }
    let origin = headers
        .get("origin")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    if !gw.limits.origins.admits(origin.as_deref()) {
        let origin = origin.unwrap_or_default();
        gw.log.line(format!(
            "refused a socket from {peer}: Origin {origin} is not one of this app's pages (if it is, add --allow-origin {origin})"
        ));
        return (
            StatusCode::FORBIDDEN,
            axum::Json(json!({ "message": "Forbidden" })),
        )
            .into_response();
    }
    let Ok(slot) = gw.admitted.clone().try_acquire_owned() else {
        gw.log.line(format!(
            "refused a socket from {peer}: {} are open or opening (--max-connections)",
            gw.limits.max_connections
        ));
        return (
            StatusCode::TOO_MANY_REQUESTS,
            axum::Json(json!({ "message": REPLY_THROTTLED })),
        )
            .into_response();
    };
    let id = events::new_connection_id();
    let ip = peer.ip().to_string();
    let ua = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if let Some(route) = gw.routes.get("$connect") {
        let (ctx, _) = gw.context(&id, "$connect", "CONNECT", SystemTime::now(), &ip, &ua);
        let event =
            events::connect_event(ctx, &events::handshake_headers(&headers), query.as_deref());
        let started = Instant::now();
        let status = match route.pool.invoke(event).await {
            Ok(r) => r.get("statusCode").and_then(Value::as_i64).unwrap_or(200),
            Err(e) => {
                gw.log
                    .line(format!("connect {id} → {} failed: {e}", route.pool.name));
                500
            }
        };
        gw.log.line(format!(
            "connect {id} → $connect → {} {status} ({:.1} ms)",
            route.pool.name,
            started.elapsed().as_secs_f64() * 1000.0
        ));
        if !(200..300).contains(&status) {
            // A $connect integration that does not answer 2xx rejects the handshake.
            let code = StatusCode::from_u16(status as u16)
                .ok()
                .filter(|s| s.is_client_error() || s.is_server_error())
                .unwrap_or(StatusCode::FORBIDDEN);
            return (code, axum::Json(json!({ "message": "Forbidden" }))).into_response();
        }
    } else {
        gw.log.line(format!("connect {id} from {ip}"));
    }
    // A small read buffer: the 128 KiB default costs that much per idle socket.
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(MAX_MESSAGE_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            gw.serve(socket, id, ip, ua).await;
            drop(slot);
        })
}

fn management_error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [("x-amzn-errortype", kind)],
        axum::Json(json!({ "message": message })),
    )
        .into_response()
}

/// Checks the stage and the signature of an @connections call.
fn authorize(
    gw: &Gateway,
    stage: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Box<Response>> {
    if stage != gw.stage {
        return Err(Box::new(management_error(
            StatusCode::FORBIDDEN,
            "ForbiddenException",
            "Forbidden",
        )));
    }
    gw.verifier
        .check(method, uri, headers, body)
        .map_err(|denied| {
            gw.log.line(format!(
                "@connections {method} refused: {}",
                denied.message()
            ));
            Box::new(management_error(
                StatusCode::FORBIDDEN,
                denied.error_type(),
                denied.message(),
            ))
        })
}

/// POST (send), GET (describe) and DELETE (close) a connection, each signed with `SigV4` like on AWS.
async fn management(
    State(gw): State<Arc<Gateway>>,
    Path((stage, id)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let body = match read_body(&gw, body).await {
        Ok(b) => b,
        Err(r) => return *r,
    };
    if let Err(r) = authorize(&gw, &stage, &method, &uri, &headers, &body) {
        return *r;
    }
    let started = Instant::now();
    let found = match method {
        Method::POST => match gw.send(&id, String::from_utf8_lossy(&body).into_owned()) {
            Sent::Queued => Some(StatusCode::OK.into_response()),
            Sent::Gone => None,
            Sent::Full => {
                gw.log.line(format!(
                    "@connections POST {id} → 429: its send queue is full"
                ));
                return management_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "LimitExceededException",
                    "the connection's send queue is full: the client is not reading",
                );
            }
        },
        Method::GET => gw.conns.lock().expect("conns").get(&id).map(|c| {
            axum::Json(json!({
                // The wire names (the service model's jsonName), which the AWS SDKs read.
                "connectedAt": iso(c.connected_at),
                "identity": { "sourceIp": c.source_ip, "userAgent": c.user_agent },
                "lastActiveAt": iso(c.last_active),
            }))
            .into_response()
        }),
        Method::DELETE => gw
            .conns
            .lock()
            .expect("conns")
            .get(&id)
            .is_some_and(|c| {
                c.tx.send(Out::Close(1000, "Connection closed by the server"))
                    .is_ok()
            })
            .then(|| StatusCode::NO_CONTENT.into_response()),
        _ => return StatusCode::METHOD_NOT_ALLOWED.into_response(),
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Some(r) = found {
        gw.log.line(format_args!(
            "@connections {method} {id} {} bytes ({ms:.2} ms)",
            body.len()
        ));
        r
    } else {
        gw.log
            .line(format!("@connections {method} {id} → 410 Gone"));
        management_error(
            StatusCode::GONE,
            ERROR_GONE,
            &format!("connection {id} is gone"),
        )
    }
}

/// An `@connections` request's body, read within `body_timeout` (a client trickling it would otherwise hold the
/// request, and its task, for as long as it likes) and at most the 128 KB a message may have.
async fn read_body(gw: &Gateway, body: axum::body::Body) -> Result<Bytes, Box<Response>> {
    let read = axum::body::to_bytes(body, MAX_MESSAGE_BYTES);
    match tokio::time::timeout(gw.limits.body_timeout, read).await {
        Ok(Ok(b)) => Ok(b),
        // Over the limit (or the client broke off, and reads no answer).
        Ok(Err(_)) => Err(Box::new(management_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            "the message is larger than 128 KB",
        ))),
        Err(_) => {
            gw.log.line(format!(
                "@connections request refused: its body took longer than {} s to arrive",
                gw.limits.body_timeout.as_secs_f64()
            ));
            Err(Box::new(management_error(
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeoutException",
                "the request body did not arrive in time",
            )))
        }
    }
}

fn iso(t: SystemTime) -> String {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
