//! The accept loop: the application's router on hyper connections configured here.
//!
//! It does what `axum::serve` does (HTTP/1 and HTTP/2 with upgrades for WebSockets, the peer's
//! address as `ConnectInfo`, graceful shutdown) plus two settings `axum::serve` does not offer:
//! - `TCP_NODELAY`, so a response's last partial segment never waits for the client's delayed
//!   ACK (40 ms on Linux), which large feed pages and media ranges hit;
//! - a smaller per-connection write queue. hyper takes up to ~400 KiB of a response body per
//!   HTTP/1 connection before it waits for the socket, and a media response keeps that queue
//!   full for as long as the player reads slower than the disk: with 64 players that was most of
//!   the server's memory. The kernel's socket buffer behind the queue keeps the link busy anyway.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The most response bytes hyper holds per HTTP/1 connection (per HTTP/2 stream) before waiting
/// for the socket. On HTTP/1 it also bounds a request's head: a larger one gets 431.
pub const WRITE_QUEUE_BYTES: usize = 128 * 1024;

/// Serves `router` on `listener` until `shutdown` is cancelled, then waits for the open
/// connections to finish their requests (the caller bounds that wait).
pub async fn serve(mut listener: TcpListener, router: Router, shutdown: CancellationToken) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(WRITE_QUEUE_BYTES);
    builder.http2().max_send_buf_size(WRITE_QUEUE_BYTES);
    // Needed for WebSockets over HTTP/2 (RFC 8441), as axum::serve enables it.
    builder.http2().enable_connect_protocol();
    let graceful = GracefulShutdown::new();

    loop {
        // `Listener::accept` retries the errors a busy server sees (EMFILE, aborted handshakes).
        let (tcp, remote) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = shutdown.cancelled() => break,
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "could not set TCP_NODELAY");
        }
        let service = router
            .clone()
            .map_request(move |request: Request<Incoming>| {
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(ConnectInfo(remote));
                request
            });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::trace!(%remote, error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
