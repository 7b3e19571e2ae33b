//! The stack's ceilings: axum + hyper-util + tokio-rustls answering `POST
//! /mutate` with a canned AdmissionReview, no mutation — either without
//! looking at the body, or after parsing it into `serde_json::Value` (the
//! floor of any webhook that must read the pod).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::routing::post;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::Error;

/// The router: the body is read in full (as the webhook must), parsed as JSON
/// when `parse` is set, and dropped.
pub fn router(canned: Bytes, parse: bool) -> Router {
    Router::new().route(
        "/mutate",
        post(move |body: Bytes| {
            let canned = canned.clone();
            async move {
                if parse {
                    let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&body);
                    std::hint::black_box(parsed.is_ok());
                }
                drop(body);
                ([(CONTENT_TYPE, "application/json")], canned)
            }
        }),
    )
}

/// Serve HTTPS on `listener` forever (the orchestrator kills the process).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    canned: Bytes,
    parse: bool,
) -> Result<(), Error> {
    let acceptor = TlsAcceptor::from(tls);
    let app = router(canned, parse);
    loop {
        let (tcp, _peer): (_, SocketAddr) = listener
            .accept()
            .await
            .map_err(|e| Error::io("accept", e))?;
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            // A failed handshake or reset affects that connection only.
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}
