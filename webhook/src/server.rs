//! The webhook process: HTTPS admission listener (rustls, HTTP/1.1 + HTTP/2,
//! hot-reloaded certificate) and a plain-HTTP health/metrics listener, both
//! stopped by one `CancellationToken` with a bounded drain.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::metrics::Metrics;
use crate::routes::{self, AppState};
use crate::template::AgentTemplate;
use crate::tls::CertStore;

/// Longest a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub health_listen: SocketAddr,
    pub tls_cert_file: PathBuf,
    pub tls_key_file: PathBuf,
    pub tls_reload_interval: Duration,
    /// After SIGTERM: keep serving (unready) this long, so the API server
    /// stops picking this replica before its port closes.
    pub shutdown_delay: Duration,
    pub shutdown_grace: Duration,
    pub request_timeout: Duration,
    pub template: AgentTemplate,
}

/// Readiness: a certificate is loaded and the process is not draining.
#[derive(Debug, Default)]
struct Health {
    ready: AtomicBool,
}

/// Serve until `shutdown` is cancelled, then drain in-flight requests for up to
/// `shutdown_grace`. Fails only at startup (certificate, sockets).
pub async fn serve(config: ServeConfig, shutdown: CancellationToken) -> Result<(), Error> {
    let listener = bind(config.listen).await?;
    let health_listener = bind(config.health_listen).await?;
    serve_on(listener, health_listener, config, shutdown).await
}

/// [`serve`] on sockets already bound (e.g. port 0 in benchmarks); the
/// `listen`/`health_listen` addresses in `config` are only logged.
pub async fn serve_on(
    listener: TcpListener,
    health_listener: TcpListener,
    config: ServeConfig,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new());
    let store = Arc::new(CertStore::load(
        &config.tls_cert_file,
        &config.tls_key_file,
        Arc::clone(&metrics),
    )?);
    let acceptor = TlsAcceptor::from(Arc::new(store.server_config()?));
    let (addr, health_addr) = (
        listener.local_addr().ok(),
        health_listener.local_addr().ok(),
    );
    let health = Arc::new(Health::default());

    let app = routes::router(AppState {
        template: Arc::new(config.template),
        metrics: Arc::clone(&metrics),
        request_timeout: config.request_timeout,
    });
    let reloader =
        tokio::spawn(Arc::clone(&store).watch(config.tls_reload_interval, shutdown.clone()));
    let health_stop = CancellationToken::new();
    let health_task = tokio::spawn(serve_health(
        health_listener,
        health_router(Arc::clone(&health), Arc::clone(&metrics)),
        health_stop.clone(),
    ));
    health.ready.store(true, Ordering::SeqCst);
    tracing::info!(listen = ?addr, health = ?health_addr, "serving admission requests");

    let graceful = GracefulShutdown::new();
    // SIGTERM: turn unready at once, keep accepting for `shutdown_delay`
    // (endpoints take a moment to drop this replica), then close the port.
    let stop_accepting = async {
        shutdown.cancelled().await;
        health.ready.store(false, Ordering::SeqCst);
        if !config.shutdown_delay.is_zero() {
            tracing::info!(delay = ?config.shutdown_delay, "shutting down: unready, still serving until endpoints drop this replica");
            tokio::time::sleep(config.shutdown_delay).await;
        }
    };
    tokio::pin!(stop_accepting);
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut stop_accepting => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually EMFILE or a reset before accept; back off briefly rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Responses go out in more than one write; without this, Nagle's
        // algorithm and delayed ACKs add ~40 ms to a request.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            let mut builder = auto::Builder::new(TokioExecutor::new());
            // A timer makes hyper enforce its header-read timeout (slow clients).
            builder.http1().timer(TokioTimer::new());
            builder.http2().timer(TokioTimer::new());
            let conn = builder.serve_connection(TokioIo::new(tls), TowerToHyperService::new(app));
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }

    health.ready.store(false, Ordering::SeqCst);
    drop(listener);
    tracing::info!(grace = ?config.shutdown_grace, "shutting down: draining in-flight requests");
    tokio::select! {
        biased;
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(config.shutdown_grace) => {
            tracing::warn!("shutdown grace elapsed with connections still open; closing them");
        }
    }
    health_stop.cancel();
    let _ = health_task.await;
    let _ = reloader.await;
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

fn health_router(health: Arc<Health>, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(h): State<Arc<Health>>| async move {
                if h.ready.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ready\n")
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready (starting or draining)\n",
                    )
                }
            })
            .with_state(health),
        )
        .route(
            "/metrics",
            get(|State(m): State<Arc<Metrics>>| async move {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    m.encode(),
                )
                    .into_response()
            })
            .with_state(metrics),
        )
}

async fn serve_health(listener: TcpListener, app: Router, stop: CancellationToken) {
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "health server failed");
    }
}
