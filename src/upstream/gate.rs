//! Orthanc's render slots, handed out by priority: a freed slot goes to a waiting person before
//! any waiting warm-up job, so background work may use every slot while nobody asks, and yields
//! the next one as soon as somebody does.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::orthanc::Priority;
use crate::sync::LockExt;

#[derive(Debug, Default)]
struct State {
    free: usize,
    interactive: VecDeque<oneshot::Sender<()>>,
    background: VecDeque<oneshot::Sender<()>>,
}

#[derive(Debug, Clone)]
pub struct RenderGate {
    state: Arc<Mutex<State>>,
}

/// One render slot; given back (to the next waiter by priority) on drop.
#[derive(Debug)]
pub struct Permit {
    gate: RenderGate,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release();
    }
}

/// A place in the queue. Dropped before its slot arrives (the request gave up), it leaves the
/// queue; dropped just after, it passes the slot on.
struct Waiter {
    gate: RenderGate,
    rx: oneshot::Receiver<()>,
    granted: bool,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        if self.granted {
            return;
        }
        self.rx.close();
        if self.rx.try_recv().is_ok() {
            self.gate.release();
        }
    }
}

impl RenderGate {
    pub fn new(slots: usize) -> Self {
        Self { state: Arc::new(Mutex::new(State { free: slots, ..State::default() })) }
    }

    /// A slot now, if one is free and nobody of the same or higher priority is waiting for it.
    pub fn try_acquire(&self, priority: Priority) -> Option<Permit> {
        self.take_free(&mut self.state.locked(), priority)
    }

    fn take_free(&self, s: &mut State, priority: Priority) -> Option<Permit> {
        let ahead = match priority {
            Priority::Interactive => s.interactive.len(),
            Priority::Background => s.interactive.len() + s.background.len(),
        };
        (s.free > 0 && ahead == 0).then(|| {
            s.free -= 1;
            Permit { gate: self.clone() }
        })
    }

    /// Wait for a slot: people before warm-up, first come first served within each.
    pub async fn acquire(&self, priority: Priority) -> Permit {
        loop {
            let (tx, rx) = oneshot::channel();
            {
                let mut s = self.state.locked();
                if let Some(p) = self.take_free(&mut s, priority) {
                    return p;
                }
                match priority {
                    Priority::Interactive => s.interactive.push_back(tx),
                    Priority::Background => s.background.push_back(tx),
                }
            }
            let mut waiter = Waiter { gate: self.clone(), rx, granted: false };
            // `release` hands a slot over by sending; a sender dropped unsent gave us nothing.
            if (&mut waiter.rx).await.is_ok() {
                waiter.granted = true;
                return Permit { gate: self.clone() };
            }
        }
    }

    /// Give a slot back: to the first waiting person still there, else the first waiting job.
    fn release(&self) {
        let mut s = self.state.locked();
        loop {
            let next = match s.interactive.pop_front() {
                Some(tx) => Some(tx),
                None => s.background.pop_front(),
            };
            match next {
                Some(tx) => {
                    if tx.send(()).is_ok() {
                        return;
                    }
                }
                None => {
                    s.free += 1;
                    return;
                }
            }
        }
    }

    #[cfg(test)]
    fn available(&self) -> usize {
        self.state.locked().free
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_freed_slot_goes_to_a_person_before_queued_jobs() {
        let gate = RenderGate::new(1);
        let held = gate.acquire(Priority::Background).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, p) in [
            ("job1", Priority::Background),
            ("job2", Priority::Background),
            ("person", Priority::Interactive),
        ] {
            let (gate, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _slot = gate.acquire(p).await;
                order.lock().unwrap().push(name);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["person", "job1", "job2"]);
        assert_eq!(gate.available(), 1);
    }

    #[tokio::test]
    async fn jobs_use_every_slot_when_nobody_waits() {
        let gate = RenderGate::new(3);
        let slots: Vec<_> = (0..3).map(|_| gate.try_acquire(Priority::Background)).collect();
        assert!(slots.iter().all(Option::is_some));
        assert!(gate.try_acquire(Priority::Interactive).is_none());
        drop(slots);
        assert_eq!(gate.available(), 3);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_loses_no_slot() {
        let gate = RenderGate::new(1);
        let held = gate.acquire(Priority::Interactive).await;
        let gave_up =
            tokio::time::timeout(Duration::from_millis(20), gate.acquire(Priority::Interactive)).await;
        assert!(gave_up.is_err());
        drop(held);
        assert_eq!(gate.available(), 1, "the slot came back, not handed to the gone waiter");
        let _again = gate.acquire(Priority::Background).await;
        assert_eq!(gate.available(), 0);
    }
}
