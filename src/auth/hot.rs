//! Per-worker copies of hot authorization answers, in front of the shared (moka) caches: a repeat request is answered from its own thread's map, without moka's read bookkeeping.
//!
//! A moka `get` records every read for its eviction policy (an epoch pin, a channel push, and
//! the housekeeping that drains it): about 0.3–0.4 µs per lookup in `benches/auth_paths.rs`, and
//! a scoped token or a delegated decision takes two per request, where writing the whole
//! response costs ~13 µs. Only answers that need no per-key invalidation go here: facts
//! that never change (an instance's lineage) and answers that carry their own deadline (a
//! verified token, a validator's decision), so a per-thread copy can never say something the
//! shared cache would not; `invalidate_all` (a JWKS rotation) reaches every thread's copy. Each thread holds at most `cap` entries; a full map is emptied (the shared cache behind
//! it still has them), which bounds the memory at `cap` entries per worker thread.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use thread_local::ThreadLocal;

/// A value and the instant it stops being usable (`None`: never).
type Slot<V> = (V, Option<Instant>);

/// One thread's copies, and the generation they belong to.
struct Map<K, V> {
    generation: u64,
    entries: HashMap<K, Slot<V>>,
}

pub struct Hot<K: Send, V: Send> {
    maps: ThreadLocal<RefCell<Map<K, V>>>,
    /// Bumped by `invalidate_all`: a thread's map of an older generation is emptied before use.
    generation: AtomicU64,
    cap: usize,
}

impl<K: Hash + Eq + Send, V: Clone + Send> Hot<K, V> {
    pub fn new(cap: usize) -> Self {
        Self { maps: ThreadLocal::new(), generation: AtomicU64::new(0), cap: cap.max(1) }
    }

    /// This thread's copies, emptied first when `invalidate_all` ran since they were made.
    fn entries(&self) -> std::cell::RefMut<'_, HashMap<K, Slot<V>>> {
        let generation = self.generation.load(Ordering::Acquire);
        let map = self.maps.get_or(|| RefCell::new(Map { generation, entries: HashMap::new() }));
        let mut map = map.borrow_mut();
        if map.generation != generation {
            map.entries.clear();
            map.generation = generation;
        }
        std::cell::RefMut::map(map, |m| &mut m.entries)
    }

    /// Forget every thread's copies (each thread empties its own on its next lookup).
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// This thread's copy of `key`, when it has one that has not passed its deadline.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.entries();
        let (value, deadline) = map.get(key)?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            map.remove(key);
            return None;
        }
        Some(value.clone())
    }

    /// Keep `value` on this thread until `deadline` (which must be the shared entry's own).
    pub fn put(&self, key: K, value: V, deadline: Option<Instant>) {
        let mut map = self.entries();
        if map.len() >= self.cap && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, (value, deadline));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn answers_until_the_deadline_then_forgets() {
        let hot: Hot<u32, &str> = Hot::new(8);
        hot.put(1, "forever", None);
        hot.put(2, "gone", Some(Instant::now()));
        hot.put(3, "later", Some(Instant::now() + Duration::from_secs(60)));
        assert_eq!(hot.get(&1), Some("forever"));
        assert_eq!(hot.get(&2), None);
        assert_eq!(hot.get(&3), Some("later"));
        assert_eq!(hot.get(&4), None);
    }

    #[test]
    fn a_full_map_starts_over_and_stays_bounded() {
        let hot: Hot<u32, u32> = Hot::new(3);
        for k in 0..3 {
            hot.put(k, k, None);
        }
        hot.put(1, 10, None); // a key it holds: replaced, nothing dropped
        assert_eq!((hot.get(&0), hot.get(&1)), (Some(0), Some(10)));
        hot.put(3, 3, None);
        assert_eq!((hot.get(&0), hot.get(&3)), (None, Some(3)));
        assert!(hot.entries().len() <= 3);
    }

    #[test]
    fn invalidating_reaches_every_thread() {
        let hot: Hot<u32, u32> = Hot::new(8);
        hot.put(1, 1, None);
        std::thread::scope(|s| {
            s.spawn(|| hot.put(2, 2, None)).join().unwrap();
            hot.invalidate_all();
            s.spawn(|| assert_eq!(hot.get(&2), None));
        });
        assert_eq!(hot.get(&1), None);
        hot.put(1, 1, None);
        assert_eq!(hot.get(&1), Some(1));
    }

    #[test]
    fn each_thread_has_its_own_copy() {
        let hot: Hot<u32, u32> = Hot::new(8);
        hot.put(1, 1, None);
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(hot.get(&1), None));
        });
        assert_eq!(hot.get(&1), Some(1));
    }
}
