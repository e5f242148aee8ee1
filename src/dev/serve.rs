//! The gateway's HTTP server: axum's router on hyper's HTTP/1.1 connection, with a deadline on every request's
//! headers and a cap on the connections not yet upgraded to WebSocket.
//!
//! API Gateway's WebSocket endpoint speaks HTTP/1.1 only (RFC 6455's handshake is an HTTP/1.1 upgrade), so this
//! serves nothing else. hyper-util's `auto` builder, which would also take HTTP/2, first sniffs the protocol with
//! no timer at all: a TCP connection that sends nothing, or half an HTTP/2 preface, would be held for ever. hyper's
//! HTTP/1 connection starts its header-read timer as soon as it waits for a request, the first one included, so a
//! connection that is silent, trickles its headers (slowloris) or sends `PRI * HTTP/2.0` is closed within
//! `header_timeout`. `axum::serve` gives hyper no timer, hence this loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt as _;

use super::Log;

/// How the server guards itself.
pub(crate) struct Guard {
    /// A request's headers (the WebSocket handshake's included) must arrive within this, from the moment the
    /// server waits for them.
    pub header_timeout: Duration,
    /// HTTP connections open at once that are not WebSockets: handshakes in progress and the backend's keep-alive
    /// `@connections` connections. One beyond it is closed at once, so that a flood of idle TCP connections costs
    /// a bounded amount of memory and file descriptors. (Upgraded sockets are counted by `--max-connections`.)
    pub max_http_connections: usize,
}

/// How long, after shutdown, requests still in flight may take before the server stops waiting for them.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight finish (sockets already
/// upgraded to WebSocket are the gateway's to close, which `shutdown` does).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    guard: Guard,
    log: Log,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(guard.header_timeout);
    let slots = Arc::new(Semaphore::new(guard.max_http_connections));
    let (stopping, stop) = watch::channel(false);
    let mut refused = Refusals::default();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let Ok((stream, addr)) = accepted else {
            // Out of file descriptors, or a connection reset before it was accepted: try again shortly rather
            // than spin (what axum::serve does too).
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            refused.one(&log, guard.max_http_connections);
            continue;
        };
        // What axum's `into_make_service_with_connect_info` would add: the gateway reads the client's address.
        let service = router
            .clone()
            .map_request(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
                req
            });
        let conn = builder
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .with_upgrades();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            // A client that was too slow, or went away: nothing to report. An upgrade ends this future (the
            // socket is the gateway's from then on) and frees the slot.
            tokio::select! {
                _ = conn.as_mut() => {}
                () = async { drop(stop.wait_for(|s| *s).await) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, conn).await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every slot back means every connection has ended.
    let all = u32::try_from(guard.max_http_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN * 2, slots.acquire_many(all)).await;
}

/// Connections closed for want of a slot, told at most once a second so that a flood does not flood the terminal.
#[derive(Default)]
struct Refusals {
    since_told: u64,
    told_at: Option<std::time::Instant>,
}

impl Refusals {
    fn one(&mut self, log: &Log, cap: usize) {
        self.since_told += 1;
        if self
            .told_at
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
        {
            return;
        }
        log.line(format!(
            "closed {} new HTTP connection(s): {cap} are open that are not WebSockets yet",
            self.since_told
        ));
        self.since_told = 0;
        self.told_at = Some(std::time::Instant::now());
    }
}
