//! The gateway's HTTP server: axum's router on hyper, with a deadline on each request's headers.
//!
//! `axum::serve` gives hyper no timer, and without one hyper cannot enforce its header-read timeout: a client that
//! sends a request line and then one header byte a minute (slowloris) would hold a connection and its task for as
//! long as it likes. Here every connection must finish its headers within `header_timeout` or is closed.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt as _;

/// Serves `router` on `listener` until `shutdown` resolves, then waits for requests in flight (sockets already
/// upgraded to WebSocket are the gateway's to close, which `shutdown` does).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
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
        // What axum's `into_make_service_with_connect_info` would add: the gateway reads the client's address.
        let service = router
            .clone()
            .map_request(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(addr));
                req
            });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A client that was too slow, or went away: nothing to report.
            let _ = conn.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
