//! Memory tier: moka, weighted by bytes, with a per-instance index of its keys so a purge costs O(entries of that instance).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::notification::RemovalCause;

use super::{CacheKey, Entry};
use crate::ids::OrthancId;
use crate::sync::LockExt;

/// One stored value: the entry, the insert that stored it (see `Index`), and how long it may
/// stay (`None`: until evicted; a copy of another edge's image has a lifetime).
#[derive(Clone)]
struct Slot {
    entry: Arc<Entry>,
    generation: u64,
    ttl: Option<Duration>,
}

/// Each slot lives as long as its own `ttl` says, counted from its latest insert.
struct SlotExpiry;

impl moka::Expiry<CacheKey, Slot> for SlotExpiry {
    fn expire_after_create(&self, _: &CacheKey, slot: &Slot, _: Instant) -> Option<Duration> {
        slot.ttl
    }

    fn expire_after_update(
        &self,
        _: &CacheKey,
        slot: &Slot,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        slot.ttl
    }
}

/// Frame and variant of a key, under its instance.
type Local = (u32, String);

/// The keys the tier holds, by instance, each with the generation of its latest insert.
///
/// An insert records its key before storing it; moka's removal listener (evictions, expiry,
/// explicit removals) drops the record only if it names the removed value's generation, so a
/// late notice about an older value never drops the record of a newer one. The index may hold a
/// key moka no longer has (harmless: a purge removes nothing for it) but never misses one it has.
#[derive(Default)]
struct Index {
    by_instance: HashMap<OrthancId, HashMap<Local, u64>>,
}

impl Index {
    fn record(&mut self, key: &CacheKey, generation: u64) {
        self.by_instance
            .entry(key.instance.clone())
            .or_default()
            .insert((key.frame, key.variant.clone()), generation);
    }

    fn forget(&mut self, key: &CacheKey, generation: u64) {
        let Some(locals) = self.by_instance.get_mut(&key.instance) else { return };
        let local = (key.frame, key.variant.clone());
        if locals.get(&local) == Some(&generation) {
            locals.remove(&local);
            if locals.is_empty() {
                self.by_instance.remove(&key.instance);
            }
        }
    }
}

#[derive(Clone)]
pub struct MemoryCache {
    inner: moka::future::Cache<CacheKey, Slot>,
    index: Arc<Mutex<Index>>,
    generations: Arc<AtomicU64>,
    evictions: Arc<AtomicU64>,
    capacity: u64,
}

impl MemoryCache {
    pub fn new(capacity_bytes: u64) -> Self {
        let evictions = Arc::new(AtomicU64::new(0));
        let index: Arc<Mutex<Index>> = Arc::default();
        let (counted, listened) = (evictions.clone(), index.clone());
        let inner = moka::future::Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|_k: &CacheKey, v: &Slot| v.entry.weight())
            .expire_after(SlotExpiry)
            .eviction_listener(move |k: Arc<CacheKey>, v: Slot, cause| {
                if cause == RemovalCause::Size {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                // A replaced value's key is still held, under the newer generation.
                if cause != RemovalCause::Replaced {
                    listened.locked().forget(&k, v.generation);
                }
            })
            .build();
        Self { inner, index, generations: Arc::default(), evictions, capacity: capacity_bytes }
    }

    pub async fn get(&self, key: &CacheKey) -> Option<Arc<Entry>> {
        self.inner.get(key).await.map(|s| s.entry)
    }

    pub fn contains(&self, key: &CacheKey) -> bool {
        self.inner.contains_key(key)
    }

    pub async fn insert(&self, key: CacheKey, entry: Arc<Entry>) {
        self.insert_for(key, entry, None).await;
    }

    /// Insert an entry that expires `ttl` after this insert (`None`: never).
    pub async fn insert_for(&self, key: CacheKey, entry: Arc<Entry>, ttl: Option<Duration>) {
        // Bigger than the whole tier: moka would evict it only at its next clean-up and serve it
        // meanwhile (a tier of 1 byte answered most disk-tier hits from memory).
        if u64::from(entry.weight()) > self.capacity {
            return;
        }
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        self.index.locked().record(&key, generation);
        self.inner.insert(key, Slot { entry, generation, ttl }).await;
    }

    /// Drop every entry of `instance`; returns (entries, bytes) dropped. Visits only that
    /// instance's keys, whatever the size of the tier.
    pub async fn remove_instance(&self, instance: &OrthancId) -> (u64, u64) {
        let locals: Vec<Local> = match self.index.locked().by_instance.get(instance) {
            Some(locals) => locals.keys().cloned().collect(),
            None => return (0, 0),
        };
        let mut dropped = (0, 0);
        for (frame, variant) in locals {
            let key = CacheKey { instance: instance.clone(), frame, variant };
            // The listener drops the index record (Explicit).
            if let Some(slot) = self.inner.remove(&key).await {
                dropped.0 += 1;
                dropped.1 += u64::from(slot.entry.weight());
            }
        }
        dropped
    }

    /// Keys the index holds for `instance` (what a purge of it visits).
    pub fn indexed_keys(&self, instance: &OrthancId) -> usize {
        self.index.locked().by_instance.get(instance).map_or(0, HashMap::len)
    }

    /// Keys the index holds in all (after pending maintenance: equal to `entry_count`).
    pub async fn indexed_total(&self) -> usize {
        self.inner.run_pending_tasks().await;
        self.index.locked().by_instance.values().map(HashMap::len).sum()
    }

    /// Bytes currently held (after pending maintenance).
    pub async fn weighted_size(&self) -> u64 {
        self.inner.run_pending_tasks().await;
        self.inner.weighted_size()
    }

    /// Entries currently held (approximate until pending maintenance runs).
    pub fn entry_count(&self) -> u64 {
        self.inner.entry_count()
    }

    /// Entries evicted to stay within the byte capacity, since start.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> OrthancId {
        OrthancId::parse(&format!("{n:08x}-00000000-00000000-00000000-00000000")).unwrap()
    }

    fn key(n: u32, frame: u32, variant: &str) -> CacheKey {
        CacheKey { instance: id(n), frame, variant: variant.into() }
    }

    fn entry(len: usize) -> Arc<Entry> {
        Arc::new(Entry::new("image/png", vec![7u8; len].into()))
    }

    #[tokio::test]
    async fn a_purge_visits_only_the_instance_and_removes_all_of_it() {
        let c = MemoryCache::new(1 << 30);
        for n in 0..2_000 {
            c.insert(key(n, 0, "png"), entry(10)).await;
        }
        for (frame, variant) in [(0, "png"), (0, "jpeg"), (3, "png")] {
            c.insert(key(5_000, frame, variant), entry(10)).await;
        }
        assert_eq!(c.indexed_keys(&id(5_000)), 3, "a purge visits 3 keys, not 2,003");
        assert_eq!(c.indexed_keys(&id(9_999)), 0, "an unknown instance visits nothing");
        assert_eq!(c.remove_instance(&id(9_999)).await, (0, 0));
        let (n, bytes) = c.remove_instance(&id(5_000)).await;
        assert_eq!(n, 3);
        assert!(bytes >= 30);
        for (frame, variant) in [(0, "png"), (0, "jpeg"), (3, "png")] {
            assert!(c.get(&key(5_000, frame, variant)).await.is_none());
        }
        assert_eq!(c.indexed_keys(&id(5_000)), 0);
        assert!(c.get(&key(7, 0, "png")).await.is_some(), "other instances stay");
        assert_eq!(c.indexed_total().await, 2_000);
    }

    #[tokio::test]
    async fn a_copy_expires_after_its_ttl_and_an_owned_entry_replacing_it_does_not() {
        let c = MemoryCache::new(1 << 20);
        c.insert_for(key(1, 0, "png"), entry(10), Some(Duration::from_millis(50))).await;
        c.insert_for(key(2, 0, "png"), entry(10), Some(Duration::from_millis(50))).await;
        c.insert(key(2, 0, "png"), entry(10)).await;
        assert!(c.get(&key(1, 0, "png")).await.is_some());
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(c.get(&key(1, 0, "png")).await.is_none(), "the copy expired");
        assert!(c.get(&key(2, 0, "png")).await.is_some(), "the owned entry stays");
        // moka's timer wheel drops expired entries (and tells the index) within about a second.
        for _ in 0..40 {
            if c.indexed_total().await == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(c.indexed_total().await, 1, "the expired key left the index");
    }

    #[tokio::test]
    async fn an_entry_bigger_than_the_tier_is_not_held_even_briefly() {
        let c = MemoryCache::new(4 * 1024);
        c.insert(key(1, 0, "png"), entry(8_000)).await;
        assert!(c.get(&key(1, 0, "png")).await.is_none());
        assert_eq!(c.indexed_total().await, 0);
        c.insert(key(2, 0, "png"), entry(1_000)).await;
        assert!(c.get(&key(2, 0, "png")).await.is_some(), "one that fits is held");
    }

    #[tokio::test]
    async fn the_index_follows_evictions_replacements_and_removals() {
        let c = MemoryCache::new(64 * 1024);
        for n in 0..500 {
            c.insert(key(n, 0, "png"), entry(1_000)).await;
            // Replacing keeps the key indexed.
            c.insert(key(n, 0, "png"), entry(1_000)).await;
        }
        let held = c.indexed_total().await;
        assert!(c.evictions() > 0, "the capacity forced evictions");
        assert_eq!(held as u64, c.entry_count(), "evicted keys left the index");
        assert!(held < 500);
        // Whatever is still held is found by a purge of its instance.
        for n in 0..500 {
            let present = c.contains(&key(n, 0, "png"));
            assert_eq!(c.indexed_keys(&id(n)) == 1, present, "instance {n}");
        }
    }

    #[tokio::test]
    async fn a_late_notice_about_an_old_value_keeps_the_new_one_indexed() {
        let c = MemoryCache::new(1 << 20);
        let k = key(1, 0, "png");
        c.insert(k.clone(), entry(10)).await;
        let old = c.index.locked().by_instance[&id(1)][&(0, "png".to_owned())];
        c.insert(k.clone(), entry(10)).await;
        // A removal notice for the first value arriving after the second insert.
        c.index.locked().forget(&k, old);
        assert_eq!(c.indexed_keys(&id(1)), 1);
        assert_eq!(c.remove_instance(&id(1)).await.0, 1);
        assert!(c.get(&k).await.is_none());
    }
}
