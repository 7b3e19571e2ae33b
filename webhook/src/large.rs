//! The one thread that reviews large bodies, at a lower CPU priority.
//!
//! A pod author can send reviews as large as the API server allows (≤ 3 MiB,
//! e.g. 40,000 containers: ~0.5 s of CPU). They run here one at a time, so
//! however many arrive they hold at most one core, and at `nice` +[`NICE`], so
//! when the cores are contended the scheduler prefers the async workers that
//! answer normal reviews and `/healthz` (BENCHMARKS.md, "hostile"). A queued
//! job whose request has already timed out is dropped without being run, and
//! at most [`QUEUE`] wait: more could not be reviewed within the request
//! timeout anyway, and each holds its body (up to 3 MiB), so the rest are
//! refused at once.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};

use tokio::sync::oneshot;

/// How much lower than the process's priority large reviews run (the nice
/// increment; lowering one's own priority needs no privilege).
pub const NICE: i32 = 10;

/// Large reviews that may wait for the thread: a worst-case body takes up
/// to ~0.5 s, so 16 queued already fill most of the 10 s request timeout.
pub const QUEUE: usize = 16;

type Job = Box<dyn FnOnce() + Send>;

/// Why a large review got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// [`QUEUE`] reviews are already waiting.
    Busy,
    /// The review panicked, or the thread could not be started.
    Failed,
}

/// Run `work` on the large-review thread.
pub async fn review<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Refused> {
    static WORKER: OnceLock<Worker> = OnceLock::new();
    WORKER
        .get_or_init(|| Worker::start(QUEUE))
        .review(work)
        .await
}

/// One low-priority thread and its bounded queue (one for the process; tests
/// start their own).
#[derive(Debug)]
struct Worker {
    jobs: SyncSender<Job>,
}

impl Worker {
    fn start(queue: usize) -> Worker {
        let (jobs, rx) = sync_channel::<Job>(queue);
        let spawned = std::thread::Builder::new()
            .name("large-review".into())
            .spawn(move || {
                lower_priority();
                for job in rx {
                    // A panicking review fails its own request (the reply is
                    // dropped), never the thread.
                    if catch_unwind(AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a large review panicked; the request failed");
                    }
                }
            });
        if let Err(e) = spawned {
            // `review` then answers `Failed` (the queue's receiver is gone).
            tracing::error!(error = %e, "cannot start the large-review thread");
        }
        Worker { jobs }
    }

    async fn review<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            // Timed out while queued: nobody waits for the answer.
            if !reply.is_closed() {
                let _ = reply.send(work());
            }
        });
        match self.jobs.try_send(job) {
            Ok(()) => answer.await.map_err(|_| Refused::Failed),
            Err(TrySendError::Full(_)) => Err(Refused::Busy),
            Err(TrySendError::Disconnected(_)) => Err(Refused::Failed),
        }
    }
}

/// Lower this thread's priority (on Linux `nice` applies to the calling thread).
fn lower_priority() {
    if let Err(e) = rustix::process::nice(NICE) {
        tracing::warn!(error = %e, "cannot lower the large-review thread's priority; it runs at the normal one");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;

    use super::*;

    fn own_nice() -> i32 {
        // Field 19 of /proc/thread-self/stat is the thread's nice value.
        let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("stat");
        let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
        after_name
            .split(' ')
            .nth(16)
            .expect("nice")
            .parse()
            .expect("number")
    }

    /// Occupy `worker`'s thread until the returned sender sends (or drops).
    async fn hold(worker: &Arc<Worker>) -> (mpsc::Sender<()>, tokio::task::JoinHandle<()>) {
        let (release, held) = mpsc::channel::<()>();
        let (started, began) = oneshot::channel();
        let w = Arc::clone(worker);
        let busy = tokio::spawn(async move {
            w.review(move || {
                let _ = started.send(());
                let _ = held.recv();
            })
            .await
            .expect("the blocker answered");
        });
        began.await.expect("the blocker started");
        (release, busy)
    }

    #[tokio::test]
    async fn work_runs_on_one_thread_at_a_lower_priority_than_the_caller() {
        let caller = own_nice();
        let first = review(|| (std::thread::current().id(), own_nice())).await;
        let second = review(|| std::thread::current().id()).await;
        let (thread, nice) = first.expect("answered");
        assert_eq!(nice, (caller + NICE).min(19), "nice values stop at 19");
        assert_eq!(second, Ok(thread), "one thread for every large review");
        assert_ne!(thread, std::thread::current().id());
    }

    #[tokio::test]
    async fn a_panicking_review_fails_only_itself() {
        let worker = Worker::start(QUEUE);
        #[allow(clippy::panic)]
        let failed = worker.review(|| -> u8 { panic!("boom") }).await;
        assert_eq!(failed, Err(Refused::Failed));
        assert_eq!(worker.review(|| 7).await, Ok(7), "the thread lives on");
    }

    #[tokio::test]
    async fn a_job_whose_request_gave_up_is_not_run() {
        let worker = Arc::new(Worker::start(QUEUE));
        let (release, busy) = hold(&worker).await;
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        let queued = worker.review(move || flag.store(true, Ordering::SeqCst));
        // The request times out while its job is queued.
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(20), queued).await;
        assert!(timed_out.is_err());
        release.send(()).expect("release");
        busy.await.expect("blocker");
        assert_eq!(worker.review(|| ()).await, Ok(()), "the queue drained");
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn past_the_queue_a_review_is_refused_at_once_and_the_queued_ones_still_run() {
        let worker = Arc::new(Worker::start(2));
        let (release, busy) = hold(&worker).await;
        let ran: Vec<_> = (0..2).map(|_| Arc::new(AtomicBool::new(false))).collect();
        for flag in &ran {
            let flag = Arc::clone(flag);
            let job: Job = Box::new(move || flag.store(true, Ordering::SeqCst));
            assert!(worker.jobs.try_send(job).is_ok(), "room for two");
        }
        assert_eq!(worker.review(|| 9).await, Err(Refused::Busy));
        release.send(()).expect("release");
        busy.await.expect("blocker");
        // The queued jobs run after the blocker (taken off the queue first).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !ran.iter().all(|f| f.load(Ordering::SeqCst)) {
            assert!(
                std::time::Instant::now() < deadline,
                "the queued jobs never ran"
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert_eq!(worker.review(|| 9).await, Ok(9), "room again");
    }
}
