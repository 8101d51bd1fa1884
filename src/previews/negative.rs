//! Frames recently found missing or undecodable (Orthanc's 404 or 415, the edge's own decoding errors), grouped by instance so one instance is forgotten in O(1).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::PreviewError;
use crate::ids::OrthancId;
use crate::sync::LockExt;

/// Instances remembered at most; beyond, the least recently used are dropped.
const INSTANCES: u64 = 100_000;
/// Frames remembered per instance at most (a client asking frame after frame of one instance
/// replaces the oldest).
const FRAMES_PER_INSTANCE: usize = 64;

type Frames = Mutex<Vec<(u32, PreviewError, Instant)>>;

/// `(instance, frame) → answer` for `ttl`. Dropping an instance is one map removal, never a
/// predicate over every entry.
#[derive(Clone)]
pub struct NegativeCache {
    ttl: Duration,
    by_instance: moka::future::Cache<OrthancId, Arc<Frames>>,
}

impl NegativeCache {
    /// `None` when `ttl` is zero (negative caching off).
    pub fn new(ttl: Duration) -> Option<Self> {
        (!ttl.is_zero()).then(|| Self {
            ttl,
            // Refreshed by each new frame; every frame also carries its own expiry.
            by_instance: moka::future::Cache::builder().max_capacity(INSTANCES).time_to_live(ttl).build(),
        })
    }

    pub async fn get(&self, instance: &OrthancId, frame: u32) -> Option<PreviewError> {
        let frames = self.by_instance.get(instance).await?;
        let frames = frames.locked();
        let now = Instant::now();
        frames.iter().find(|(f, _, until)| *f == frame && *until > now).map(|(_, e, _)| e.clone())
    }

    pub async fn insert(&self, instance: &OrthancId, frame: u32, answer: PreviewError) {
        let frames = self.by_instance.get_with_by_ref(instance, async { Arc::default() }).await;
        {
            let mut held = frames.locked();
            let now = Instant::now();
            held.retain(|(f, _, until)| *f != frame && *until > now);
            if held.len() >= FRAMES_PER_INSTANCE {
                held.remove(0);
            }
            held.push((frame, answer, now + self.ttl));
        }
        // Stored again so the instance lives as long as its newest frame.
        self.by_instance.insert(instance.clone(), frames).await;
    }

    /// Forget every frame of `instance`.
    pub async fn forget(&self, instance: &OrthancId) {
        self.by_instance.invalidate(instance).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::UpstreamError;

    fn id(n: u32) -> OrthancId {
        OrthancId::parse(&format!("{n:08x}-00000000-00000000-00000000-00000000")).unwrap()
    }

    #[tokio::test]
    async fn frames_are_remembered_per_instance_and_forgotten_together() {
        assert!(NegativeCache::new(Duration::ZERO).is_none());
        let c = NegativeCache::new(Duration::from_secs(60)).unwrap();
        c.insert(&id(1), 0, UpstreamError::NotFound.into()).await;
        c.insert(&id(1), 2, UpstreamError::Unsupported.into()).await;
        c.insert(&id(2), 0, UpstreamError::NotFound.into()).await;
        assert!(matches!(c.get(&id(1), 0).await, Some(PreviewError::Upstream(UpstreamError::NotFound))));
        assert!(matches!(c.get(&id(1), 2).await, Some(PreviewError::Upstream(UpstreamError::Unsupported))));
        assert!(c.get(&id(1), 1).await.is_none());
        c.forget(&id(1)).await;
        assert!(c.get(&id(1), 0).await.is_none() && c.get(&id(1), 2).await.is_none());
        assert!(c.get(&id(2), 0).await.is_some(), "other instances stay");
    }

    #[tokio::test]
    async fn each_frame_expires_on_its_own() {
        let c = NegativeCache::new(Duration::from_millis(1_000)).unwrap();
        c.insert(&id(1), 0, UpstreamError::NotFound.into()).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Refreshes the instance, not frame 0.
        c.insert(&id(1), 1, UpstreamError::NotFound.into()).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(c.get(&id(1), 0).await.is_none());
        assert!(c.get(&id(1), 1).await.is_some());
    }

    #[tokio::test]
    async fn one_instance_holds_a_bounded_number_of_frames() {
        let c = NegativeCache::new(Duration::from_secs(60)).unwrap();
        for f in 0..1_000 {
            c.insert(&id(1), f, UpstreamError::NotFound.into()).await;
        }
        assert!(c.get(&id(1), 0).await.is_none(), "the oldest frames were dropped");
        assert!(c.get(&id(1), 999).await.is_some());
        let held = c.by_instance.get(&id(1)).await.unwrap().lock().unwrap().len();
        assert_eq!(held, FRAMES_PER_INSTANCE);
    }
}
