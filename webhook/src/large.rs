//! The one thread that reviews large bodies, at a lower CPU priority.
//!
//! A pod author can send reviews as large as the API server allows (≤ 3 MiB,
//! e.g. 40,000 containers: ~0.5 s of CPU). They run here one at a time, so
//! however many arrive they hold at most one core, and at `nice` +[`NICE`], so
//! when the cores are contended the scheduler prefers the async workers that
//! answer normal reviews and `/healthz` (BENCHMARKS.md, "hostile"). A queued
//! job whose request has already timed out is dropped without being run.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

use tokio::sync::oneshot;

/// How much lower than the process's priority large reviews run (the nice
/// increment; lowering one's own priority needs no privilege).
pub const NICE: i32 = 10;

type Job = Box<dyn FnOnce() + Send>;

/// Run `work` on the large-review thread; `None` if it panicked.
pub async fn review<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (reply, answer) = oneshot::channel();
    let job: Job = Box::new(move || {
        // Timed out while queued: nobody waits for the answer.
        if !reply.is_closed() {
            let _ = reply.send(work());
        }
    });
    worker().send(job).ok()?;
    answer.await.ok()
}

fn worker() -> &'static Sender<Job> {
    static WORKER: OnceLock<Sender<Job>> = OnceLock::new();
    WORKER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
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
            // `review` then answers `None` (the channel's receiver is gone).
            tracing::error!(error = %e, "cannot start the large-review thread");
        }
        tx
    })
}

/// Lower this thread's priority (on Linux `nice` applies to the calling thread).
fn lower_priority() {
    if let Err(e) = rustix::process::nice(NICE) {
        tracing::warn!(error = %e, "cannot lower the large-review thread's priority; it runs at the normal one");
    }
}

#[cfg(test)]
mod tests {
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

    #[tokio::test]
    async fn work_runs_on_one_thread_at_a_lower_priority_than_the_caller() {
        let caller = own_nice();
        let first = review(|| (std::thread::current().id(), own_nice())).await;
        let second = review(|| std::thread::current().id()).await;
        let (thread, nice) = first.expect("answered");
        assert_eq!(nice, (caller + NICE).min(19), "nice values stop at 19");
        assert_eq!(second, Some(thread), "one thread for every large review");
        assert_ne!(thread, std::thread::current().id());
    }

    #[tokio::test]
    async fn a_panicking_review_fails_only_itself() {
        #[allow(clippy::panic)]
        let failed = review(|| -> u8 { panic!("boom") }).await;
        assert_eq!(failed, None);
        assert_eq!(review(|| 7).await, Some(7), "the thread lives on");
    }

    #[tokio::test]
    async fn a_job_whose_request_gave_up_is_not_run() {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, began) = oneshot::channel();
        // Occupy the thread until released.
        let busy = tokio::spawn(review(move || {
            let _ = started.send(());
            let _ = hold.recv();
        }));
        began.await.expect("the blocker started");
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&ran);
        let queued = review(move || flag.store(true, std::sync::atomic::Ordering::SeqCst));
        // The request times out while its job is queued.
        let timed_out = tokio::time::timeout(std::time::Duration::from_millis(20), queued).await;
        assert!(timed_out.is_err());
        release.send(()).expect("release");
        busy.await.expect("blocker").expect("answered");
        assert_eq!(review(|| ()).await, Some(()), "the queue drained");
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
