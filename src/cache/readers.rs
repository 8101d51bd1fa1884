//! Disk-tier reads on threads of their own: a bounded queue drained by a few reader threads.
//!
//! A disk hit used to go through `spawn_blocking`: every read woke an idle thread of tokio's
//! blocking pool and put it back to sleep, and a profile of disk hits under load spent ~40 % of
//! its samples in that hand-off (futex waits and wakes, task switches), the read itself ~1 %. A
//! reader that finds more work queued when it ends a read takes it without sleeping, so a burst
//! of hits costs a wake-up per burst, not per read. The queue is bounded: a stuck disk fills it
//! and further reads are refused at once (a miss), where `spawn_blocking` would have started up
//! to 512 threads, all stuck.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Why a read gave no answer: each is a miss for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReadFailed {
    #[error("disk read queue full")]
    Busy,
    #[error("disk read slower than {0:?}")]
    Slow(Duration),
    #[error("disk read failed (panicked)")]
    Lost,
}

#[derive(Clone)]
pub struct Readers {
    jobs: Sender<Job>,
}

impl Readers {
    /// `threads` reader threads sharing a queue of at most `queue` reads. They end when the last
    /// clone of the returned `Readers` is dropped.
    pub fn start(threads: usize, queue: usize) -> std::io::Result<Self> {
        let (jobs, rx) = crossbeam_channel::bounded::<Job>(queue);
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new().name(format!("disk-reader-{n}")).spawn(move || {
                for job in rx {
                    // A panicking read loses its answer (the caller sees `Lost`), not the thread.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            })?;
        }
        Ok(Self { jobs })
    }

    /// Run `read` on a reader thread; give up after `wait` (the read itself goes on, its answer
    /// dropped) or at once when the queue is full.
    pub async fn run<T: Send + 'static>(
        &self,
        wait: Duration,
        read: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ReadFailed> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(read());
        });
        self.jobs.try_send(job).map_err(|_| ReadFailed::Busy)?;
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(ReadFailed::Lost),
            Err(_) => Err(ReadFailed::Slow(wait)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    #[tokio::test]
    async fn answers_in_order_of_asking() {
        let readers = Readers::start(2, 16).unwrap();
        for i in 0..100u32 {
            assert_eq!(readers.run(Duration::from_secs(5), move || i * 2).await, Ok(i * 2));
        }
    }

    #[tokio::test]
    async fn a_panicking_read_is_lost_and_the_reader_lives_on() {
        let readers = Readers::start(1, 4).unwrap();
        let lost: Result<(), _> = readers.run(Duration::from_secs(5), || panic!("boom")).await;
        assert_eq!(lost, Err(ReadFailed::Lost));
        assert_eq!(readers.run(Duration::from_secs(5), || 7).await, Ok(7));
    }

    #[tokio::test]
    async fn a_stuck_disk_fills_the_queue_then_reads_are_refused_at_once() {
        let readers = Readers::start(1, 2).unwrap();
        let gate = Arc::new(Barrier::new(2));
        let stuck = gate.clone();
        // The reader is held; two more reads fill the queue; the next is refused.
        let held = readers.run(Duration::from_millis(50), move || {
            stuck.wait();
        });
        assert_eq!(held.await, Err(ReadFailed::Slow(Duration::from_millis(50))));
        let queued: Vec<_> = (0..2).map(|_| readers.jobs.try_send(Box::new(|| ()))).collect();
        assert!(queued.iter().all(Result::is_ok));
        assert_eq!(readers.run(Duration::from_secs(5), || 1).await, Err(ReadFailed::Busy));
        gate.wait();
        // Released, the reader drains the queue and serves again.
        let mut answer = Err(ReadFailed::Busy);
        for _ in 0..100 {
            answer = readers.run(Duration::from_secs(5), || 2).await;
            if answer != Err(ReadFailed::Busy) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(answer, Ok(2));
    }
}
