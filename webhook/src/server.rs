//! The webhook process: HTTPS admission listener (rustls, HTTP/1.1 + HTTP/2,
//! hot-reloaded certificate) and a plain-HTTP health/metrics listener, both
//! stopped by one `CancellationToken` with a bounded drain. Every connection
//! on either port is tracked (`conn`): capped below the open-file limit,
//! closed when idle, the least recently active one evicted when full.

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

use crate::conn::{self, Closed, Guard, Tracker};
use crate::error::Error;
use crate::metrics::{CloseReason, Metrics};
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
    /// Admission connections open at most (lowered to fit the open-file limit).
    pub max_connections: usize,
    /// Close a connection after this long without traffic.
    pub idle_timeout: Duration,
    pub template: AgentTemplate,
}

/// Health/metrics connections open at most (probes and one scraper need few).
const MAX_HEALTH_CONNECTIONS: usize = 64;
/// Largest HTTP/1 header block and HTTP/2 header list we read (an AdmissionReview's
/// headers are tiny; the body limit is separate).
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Concurrent HTTP/2 streams per connection (the API server uses a handful).
const MAX_STREAMS: u32 = 64;

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
    // The bound addresses, as logged: with port 0 (tests), the port the kernel chose.
    let bound = |l: &TcpListener| {
        l.local_addr()
            .map_or_else(|e| e.to_string(), |a| a.to_string())
    };
    let (addr, health_addr) = (bound(&listener), bound(&health_listener));
    let health = Arc::new(Health::default());
    let fd_limit = conn::fd_limit();
    let (admission_cap, health_cap) =
        conn::caps(config.max_connections, MAX_HEALTH_CONNECTIONS, fd_limit);
    let tracker = Tracker::new(admission_cap);
    let idle = config.idle_timeout;

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
        Tracker::new(health_cap),
        idle,
        Arc::clone(&metrics),
        health_stop.clone(),
    ));
    health.ready.store(true, Ordering::SeqCst);
    tracing::info!(
        listen = %addr,
        health = %health_addr,
        max_connections = admission_cap,
        fd_limit,
        idle_timeout = ?idle,
        "serving admission requests"
    );

    let shared = Arc::new(AdmissionConns {
        acceptor,
        app,
        idle,
        metrics: Arc::clone(&metrics),
    });
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
    accept_until(&listener, stop_accepting, &tracker, &shared, &graceful).await;

    health.ready.store(false, Ordering::SeqCst);
    drop(listener);
    drain(graceful, config.shutdown_grace).await;
    health_stop.cancel();
    let _ = health_task.await;
    let _ = reloader.await;
    Ok(())
}

/// Accept admission connections, each served on its own task, until `stop`.
async fn accept_until(
    listener: &TcpListener,
    stop: impl std::future::Future<Output = ()>,
    tracker: &Arc<Tracker>,
    conns: &Arc<AdmissionConns>,
    graceful: &GracefulShutdown,
) {
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut stop => break,
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
        let guard = admit(tracker, &conns.metrics);
        tokio::spawn(serve_admission(
            tcp,
            peer,
            guard,
            graceful.watcher(),
            Arc::clone(conns),
        ));
    }
}

/// What every admission connection shares.
struct AdmissionConns {
    acceptor: TlsAcceptor,
    app: Router,
    idle: Duration,
    metrics: Arc<Metrics>,
}

/// One admission connection: TLS handshake, then HTTP/1 or HTTP/2 until it
/// ends, goes idle, is evicted, or the drain closes it.
async fn serve_admission(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    guard: Guard,
    watcher: hyper_util::server::graceful::Watcher,
    conns: Arc<AdmissionConns>,
) {
    let AdmissionConns {
        acceptor,
        app,
        idle,
        metrics,
    } = &*conns;
    let idle = *idle;
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(guard.track(tcp)));
    let tls = match guard.drive(handshake, idle).await {
        Ok(Ok(Ok(tls))) => tls,
        Ok(Ok(Err(e))) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Ok(Err(_)) => return tracing::debug!(%peer, "TLS handshake timed out"),
        Err(closed) => return count_closed(metrics, closed),
    };
    let http = builder();
    let conn = http.serve_connection(TokioIo::new(tls), TowerToHyperService::new(app.clone()));
    match guard.drive(watcher.watch(conn.into_owned()), idle).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "connection ended with an error"),
        Err(closed) => count_closed(metrics, closed),
    }
}

/// Let in-flight requests finish, for at most `grace`.
async fn drain(graceful: GracefulShutdown, grace: Duration) {
    tracing::info!(grace = ?grace, "shutting down: draining in-flight requests");
    tokio::select! {
        biased;
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(grace) => {
            tracing::warn!("shutdown grace elapsed with connections still open; closing them");
        }
    }
}

/// The HTTP/1 + HTTP/2 connection builder with its protocol limits: a timer so
/// hyper enforces its header-read timeout, bounded headers and streams, and
/// caps on reset streams (HTTP/2 rapid reset).
fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_buf_size(MAX_HEADER_BYTES.max(8192));
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_STREAMS)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_pending_accept_reset_streams(Some(32))
        .max_local_error_reset_streams(Some(256));
    b
}

/// Register a new connection; count it if it pushed out the least recently active one.
fn admit(tracker: &Arc<Tracker>, metrics: &Metrics) -> Guard {
    let (guard, evicted) = tracker.admit();
    if evicted {
        metrics.connection_closed(CloseReason::Evicted);
    }
    guard
}

fn count_closed(metrics: &Metrics, closed: Closed) {
    // Evictions were counted when they happened (in `admit`).
    if closed == Closed::Idle {
        metrics.connection_closed(CloseReason::Idle);
    }
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

/// Plain HTTP on the health port, with the same connection hygiene as admission.
async fn serve_health(
    listener: TcpListener,
    app: Router,
    tracker: Arc<Tracker>,
    idle: Duration,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    loop {
        let tcp = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    tracing::warn!(error = %e, "health accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let guard = admit(&tracker, &metrics);
        let app = app.clone();
        let metrics = Arc::clone(&metrics);
        let stop = stop.clone();
        tokio::spawn(async move {
            let http = builder();
            let conn = http
                .serve_connection(
                    TokioIo::new(guard.track(tcp)),
                    TowerToHyperService::new(app),
                )
                .into_owned();
            tokio::select! {
                closed = guard.drive(conn, idle) => if let Err(c) = closed {
                    count_closed(&metrics, c);
                },
                () = stop.cancelled() => {}
            }
        });
    }
}
