//! The one lock-poisoning policy: a poisoned lock is recovered (its guard taken back) and logged once per lock site.
//!
//! Every lock in the edge guards caches, counters or small maps that stay consistent when a holder
//! panics between two statements, so the data is used as it is. Failing open (skipping the work the
//! lock guards) is never the answer, least of all for authentication state.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};

/// Set once the first poisoned lock has been logged: one warning, not one per request.
static LOGGED: AtomicBool = AtomicBool::new(false);

fn recover<G>(poisoned: PoisonError<G>) -> G {
    if !LOGGED.swap(true, Ordering::Relaxed) {
        tracing::warn!("a lock was poisoned by a panicking holder; recovering its data and going on");
    }
    poisoned.into_inner()
}

/// `lock()` under the policy: never an error, never skipped.
pub trait LockExt<T: ?Sized> {
    fn locked(&self) -> MutexGuard<'_, T>;
    /// `None` only while another holder has the lock (a poisoned one is recovered, not skipped).
    fn try_locked(&self) -> Option<MutexGuard<'_, T>>;
}

impl<T: ?Sized> LockExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(recover)
    }

    fn try_locked(&self) -> Option<MutexGuard<'_, T>> {
        match self.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(recover(poisoned)),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// `read()` / `write()` under the policy.
pub trait RwLockExt<T: ?Sized> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockExt<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(recover)
    }

    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(recover)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_lock_keeps_its_data() {
        let m = Arc::new(Mutex::new(1));
        let rw = Arc::new(RwLock::new(2));
        let (m2, rw2) = (m.clone(), rw.clone());
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            let _w = rw2.write().unwrap();
            panic!("poison both");
        })
        .join();
        assert!(m.is_poisoned() && rw.is_poisoned());
        *m.locked() += 1;
        assert_eq!(*m.locked(), 2);
        assert_eq!(m.try_locked().map(|g| *g), Some(2));
        let held = m.locked();
        assert!(m.try_locked().is_none(), "held elsewhere");
        drop(held);
        *rw.write_locked() += 1;
        assert_eq!(*rw.read_locked(), 3);
    }
}
