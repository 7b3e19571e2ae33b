//! The stack's ceiling: axum + hyper-util + tokio-rustls answering `POST
//! /mutate` with a canned AdmissionReview, no decoding, no mutation.

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

/// The router: the body is read in full (as the webhook must) and dropped.
pub fn router(canned: Bytes) -> Router {
    Router::new().route(
        "/mutate",
        post(move |body: Bytes| {
            let canned = canned.clone();
            async move {
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
) -> Result<(), Error> {
    let acceptor = TlsAcceptor::from(tls);
    let app = router(canned);
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
