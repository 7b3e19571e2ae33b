//! Connection hygiene for both listeners. Every accepted connection is
//! registered with a [`Tracker`] and its socket wrapped in [`Tracked`], which
//! notes when bytes last moved either way. A connection is closed when
//! nothing moved for the idle timeout (slow or idle clients, HTTP/2
//! connections without streams, clients that never read a response), and when
//! the tracker is full the least recently active connection makes room for
//! the new one: an idle flood can never lock the API server out, and open
//! sockets stay below the file-descriptor limit.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

/// When bytes last moved on one connection, in ms since the tracker's epoch.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn touch(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn last_ms(&self) -> u64 {
        self.last_ms.load(Ordering::Relaxed)
    }

    /// How long nothing has moved.
    pub fn idle_for(&self) -> Duration {
        self.epoch
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last_ms()))
    }
}

#[derive(Debug)]
struct Entry {
    activity: Arc<Activity>,
    close: CancellationToken,
}

/// Why a connection was closed by us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Nothing moved for the idle timeout.
    Idle,
    /// The tracker was full and this was the least recently active connection.
    Evicted,
}

/// The open connections of one listener, at most `cap` of them.
#[derive(Debug)]
pub struct Tracker {
    epoch: Instant,
    cap: usize,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Entry>>,
}

impl Tracker {
    pub fn new(cap: usize) -> Arc<Tracker> {
        Arc::new(Tracker {
            epoch: Instant::now(),
            cap: cap.max(1),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Register a new connection; when full, the least recently active one
    /// is told to close (returned `true`) to make room.
    pub fn admit(self: &Arc<Self>) -> (Guard, bool) {
        let activity = Arc::new(Activity {
            epoch: self.epoch,
            last_ms: AtomicU64::new(0),
        });
        activity.touch();
        let close = CancellationToken::new();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let mut evicted = false;
        if open.len() >= self.cap
            && let Some(oldest) = open
                .iter()
                .min_by_key(|(_, e)| e.activity.last_ms())
                .map(|(id, _)| *id)
            && let Some(e) = open.remove(&oldest)
        {
            e.close.cancel();
            evicted = true;
        }
        open.insert(
            id,
            Entry {
                activity: Arc::clone(&activity),
                close: close.clone(),
            },
        );
        drop(open);
        let guard = Guard {
            tracker: Arc::clone(self),
            id,
            activity,
            close,
        };
        (guard, evicted)
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.open.lock().map(|o| o.len()).unwrap_or(0)
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One registered connection; dropping it unregisters the connection.
#[derive(Debug)]
pub struct Guard {
    tracker: Arc<Tracker>,
    id: u64,
    activity: Arc<Activity>,
    close: CancellationToken,
}

impl Guard {
    /// Wrap the connection's socket so its traffic counts as activity.
    pub fn track<T>(&self, io: T) -> Tracked<T> {
        Tracked {
            inner: io,
            activity: Arc::clone(&self.activity),
        }
    }

    /// Drive `conn` until it ends, goes idle for `idle`, or is evicted.
    pub async fn drive<F: Future>(&self, conn: F, idle: Duration) -> Result<F::Output, Closed> {
        tokio::pin!(conn);
        loop {
            let idle_for = self.activity.idle_for();
            if idle_for >= idle {
                return Err(Closed::Idle);
            }
            tokio::select! {
                biased;
                () = self.close.cancelled() => return Err(Closed::Evicted),
                out = &mut conn => return Ok(out),
                () = tokio::time::sleep(idle - idle_for) => {}
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(mut open) = self.tracker.open.lock() {
            open.remove(&self.id);
        }
    }
}

/// A socket whose reads and writes (of at least one byte) count as activity.
#[derive(Debug)]
pub struct Tracked<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Open files this process may hold (soft `RLIMIT_NOFILE`), if known.
pub fn fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    soft.parse().ok()
}

/// Connection caps that fit under `fd_limit`, keeping `reserve` descriptors
/// for everything else (listeners, certificate reloads, logs).
pub fn caps(
    wanted_admission: usize,
    wanted_health: usize,
    fd_limit: Option<u64>,
) -> (usize, usize) {
    const RESERVE: usize = 32;
    let Some(limit) = fd_limit.and_then(|l| usize::try_from(l).ok()) else {
        return (wanted_admission, wanted_health);
    };
    let room = limit.saturating_sub(RESERVE).max(2);
    let health = wanted_health.min(room / 8).max(1);
    let admission = wanted_admission.min(room - health).max(1);
    (admission, health)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn caps_fit_under_the_fd_limit() {
        assert_eq!(caps(1000, 64, None), (1000, 64));
        assert_eq!(caps(1000, 64, Some(1_048_576)), (1000, 64));
        let (a, h) = caps(1000, 64, Some(1024));
        assert_eq!((a, h), (928, 64));
        assert!(a + h + 32 <= 1024);
        let (a, h) = caps(1000, 64, Some(40));
        assert!(a >= 1 && h >= 1 && a + h <= 8, "{a} {h}");
    }

    #[tokio::test]
    async fn a_full_tracker_evicts_the_least_recently_active() {
        let t = Tracker::new(2);
        let (a, evicted) = t.admit();
        assert!(!evicted);
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (b, _) = t.admit();
        tokio::time::sleep(Duration::from_millis(20)).await;
        b.activity.touch();
        // `a` is now the oldest activity; a third connection evicts it.
        let (c, evicted) = t.admit();
        assert!(evicted);
        assert!(a.close.is_cancelled() && !b.close.is_cancelled());
        assert_eq!(t.len(), 2);
        let never = std::future::pending::<()>();
        assert_eq!(
            a.drive(never, Duration::from_secs(60)).await,
            Err(Closed::Evicted)
        );
        drop((b, c));
        assert!(t.is_empty());
    }

    #[tokio::test]
    async fn traffic_keeps_a_connection_alive_and_silence_closes_it() {
        let t = Tracker::new(8);
        let (guard, _) = t.admit();
        let (client, server) = tokio::io::duplex(64);
        let mut server = guard.track(server);
        let mut client = client;
        // The "connection": echo bytes until the peer hangs up.
        let echo = async move {
            let mut buf = [0u8; 8];
            while let Ok(n) = server.read(&mut buf).await {
                if n == 0 || server.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        };
        let talk = async move {
            for _ in 0..6 {
                tokio::time::sleep(Duration::from_millis(40)).await;
                client.write_all(b"x").await.unwrap();
                let mut one = [0u8; 1];
                client.read_exact(&mut one).await.unwrap();
            }
            // Then silence, holding the connection open.
            std::future::pending::<()>().await;
        };
        let started = Instant::now();
        let out = tokio::select! {
            r = guard.drive(echo, Duration::from_millis(150)) => r,
            () = talk => unreachable!(),
        };
        assert_eq!(out, Err(Closed::Idle));
        // 6 × 40 ms of traffic, each gap shorter than the idle timeout, then 150 ms of silence.
        assert!(started.elapsed() >= Duration::from_millis(240 + 150));
    }
}
