//! A frame's lossless source (`Source`): from the cache, or fetched once from Orthanc as PAM and kept compressed.
//!
//! This is the seam where another way of getting pixels (an edge-side DICOM decoder) sits next to
//! Orthanc's PAM: whatever produces a `Source`, the rendering after it is the same.

use std::sync::Arc;
use std::time::Instant;

use super::key::source_key;
use super::{PreviewError, Timings};
use crate::cache::{CacheKey, Entry, Flight, Flights, TieredCache, Tiers};
use crate::ids::OrthancId;
use crate::model::Rendering;
use crate::transform::{Pixels, TransformPool, SOURCE_CONTENT_TYPE};
use crate::upstream::{OrthancClient, Priority};

/// One frame's source pixels, as cached, and what getting them cost this request.
#[derive(Debug, Clone)]
pub struct Source {
    /// The compressed pixels (`SOURCE_CONTENT_TYPE`), as the cache keeps them.
    pub entry: Arc<Entry>,
    /// The decoded pixels when they were fetched just now; `None` for a cached source (decompressed
    /// where it is used, on the CPU pool).
    pub pixels: Option<Arc<Pixels>>,
    /// Time spent on Orthanc and on decoding; zero when cached or fetched by another request.
    pub timings: Timings,
}

impl Source {
    fn cached(entry: Arc<Entry>) -> Result<Self, PreviewError> {
        if entry.content_type != SOURCE_CONTENT_TYPE {
            return Err(PreviewError::Internal("source key holds a non-source entry".into()));
        }
        Ok(Self { entry, pixels: None, timings: Timings::default() })
    }
}

/// Where sources come from: the cache, else one fetch per frame however many variants need it.
#[derive(Clone)]
pub struct Sources {
    pub(super) cache: TieredCache,
    pub(super) upstream: OrthancClient,
    pub(super) pool: TransformPool,
    pub(super) flights: Flights<CacheKey, Source, PreviewError>,
    /// Where sources are kept (memory only unless `cache.sources_on_disk`).
    pub(super) tiers: Tiers,
    pub(super) max_pixels: u64,
}

impl Sources {
    /// Sources being fetched right now.
    pub fn in_flight(&self) -> usize {
        self.flights.in_flight()
    }

    /// The source of one frame in one rendering.
    pub async fn get(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
    ) -> Result<Source, PreviewError> {
        let key = source_key(instance, frame, rendering);
        if let Some((entry, _)) = self.cache.lookup(&key, self.tiers).await {
            return Source::cached(entry);
        }
        match self.flights.join(&key) {
            Flight::Follow(f) => {
                // The fetch was another request's: this one only waited.
                let source = f.wait().await?;
                Ok(Source { timings: Timings::default(), ..source })
            }
            Flight::Lead(lead) => {
                let (this, id, r) = (self.clone(), instance.clone(), *rendering);
                lead.run(async move { this.fetch(key, &id, frame, &r, priority).await }).await
            }
        }
    }

    /// Fetch the frame's PAM from Orthanc, decode and compress it on the pool, and store it.
    async fn fetch(
        &self,
        key: CacheKey,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
    ) -> Result<Source, PreviewError> {
        // A flight that just landed may have stored it between our lookup and our lead.
        if let Some((entry, _)) = self.cache.lookup(&key, Tiers::MemoryOnly).await {
            return Source::cached(entry);
        }
        let (pam, upstream) = self.upstream.pixels(instance, frame, rendering, priority).await?;
        tracing::Span::current().record("upstream_ms", upstream.as_millis() as u64);
        let started = Instant::now();
        let max_pixels = self.max_pixels;
        let (pixels, packed) = self
            .pool
            .run(move || {
                let pixels = Pixels::from_pam(&pam, max_pixels)?;
                let packed = pixels.compress();
                Ok((pixels, packed))
            })
            .await?;
        let timings = Timings { upstream, transform: started.elapsed() };
        let entry = Arc::new(Entry::new(SOURCE_CONTENT_TYPE, packed));
        self.cache.store(&key, entry.clone(), self.tiers).await;
        Ok(Source { entry, pixels: Some(Arc::new(pixels)), timings })
    }
}
