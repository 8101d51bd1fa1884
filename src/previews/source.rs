//! A frame's lossless source (`Source`): from the cache, or made once: Orthanc's PAM rendering,
//! or the edge's own decoding of the stored file (`dicom`), as `render.mode` says.
//!
//! Both ways end in the same 8-bit `Pixels` (the edge renders as Orthanc does), kept under the same
//! key, so whatever produced a `Source`, everything after it is the same.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::key::source_key;
use super::{PreviewError, Timings};
use crate::cache::{CacheKey, Entry, Flight, Flights, TieredCache, Tiers};
use crate::config::RenderMode;
use crate::dicom::{self, DicomError, Limits as DecodeLimits};
use crate::ids::OrthancId;
use crate::model::Rendering;
use crate::transform::{Pixels, TransformPool, SOURCE_CONTENT_TYPE};
use crate::upstream::{OrthancClient, Priority, UpstreamError};

/// One frame's source pixels, as cached, and what getting them cost this request.
#[derive(Debug, Clone)]
pub struct Source {
    /// The compressed pixels (`SOURCE_CONTENT_TYPE`), as the cache keeps them.
    pub entry: Arc<Entry>,
    /// The decoded pixels when they were made just now; `None` for a cached source (decompressed
    /// where it is used, on the CPU pool).
    pub pixels: Option<Arc<Pixels>>,
    /// Time spent on Orthanc and on decoding; zero when cached or made by another request.
    pub timings: Timings,
}

/// Content type of the entry kept under a source key for an instance without pixel data: its
/// kind (`sr`, `pdf`, ...) as the body, so the file is not fetched again for each request.
const NO_PIXELS_CONTENT_TYPE: &str = "application/x-orthanc-edge-no-pixels";

impl Source {
    fn cached(entry: Arc<Entry>) -> Result<Self, PreviewError> {
        if entry.content_type == NO_PIXELS_CONTENT_TYPE {
            let kind = dicom::NO_PIXEL_KINDS.iter().find(|k| k.as_bytes() == entry.body).copied();
            return Err(DicomError::NoPixelData { kind: kind.unwrap_or("other") }.into());
        }
        if entry.content_type != SOURCE_CONTENT_TYPE {
            return Err(PreviewError::Internal("source key holds a non-source entry".into()));
        }
        Ok(Self { entry, pixels: None, timings: Timings::default() })
    }
}

/// How a missing source is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// Orthanc's PAM only.
    Orthanc,
    /// The stored file, decoded at the edge.
    File,
    /// Orthanc's PAM; the stored file where Orthanc cannot decode the frame (415).
    OrthancThenFile,
}

impl From<RenderMode> for Via {
    fn from(mode: RenderMode) -> Self {
        match mode {
            RenderMode::Orthanc => Via::Orthanc,
            RenderMode::Edge => Via::File,
            RenderMode::Fallback => Via::OrthancThenFile,
        }
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
    pub(super) mode: RenderMode,
    pub(super) limits: DecodeLimits,
}

impl Sources {
    /// Sources being fetched right now.
    pub fn in_flight(&self) -> usize {
        self.flights.in_flight()
    }

    /// The source of one frame in one rendering, made as `render.mode` says.
    pub async fn get(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
    ) -> Result<Source, PreviewError> {
        self.get_via(instance, frame, rendering, priority, self.mode.into()).await
    }

    /// The source of a frame Orthanc just refused to render (415): decoded at the edge unless
    /// `render.mode` is `orthanc`, where the refusal stands.
    pub async fn get_refused(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
    ) -> Result<Source, PreviewError> {
        if self.mode == RenderMode::Orthanc {
            return Err(UpstreamError::Unsupported.into());
        }
        crate::telemetry::metrics::render_fallback();
        self.get_via(instance, frame, rendering, priority, Via::File).await
    }

    async fn get_via(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
        via: Via,
    ) -> Result<Source, PreviewError> {
        let key = source_key(instance, frame, rendering);
        if let Some((entry, _)) = self.cache.lookup(&key, self.tiers).await {
            return Source::cached(entry);
        }
        match self.flights.join(&key) {
            Flight::Follow(f) => {
                // The work was another request's: this one only waited.
                let source = f.wait().await?;
                Ok(Source { timings: Timings::default(), ..source })
            }
            Flight::Lead(lead) => {
                let (this, id, r) = (self.clone(), instance.clone(), *rendering);
                lead.run(async move { this.make(key, &id, frame, &r, priority, via).await }).await
            }
        }
    }

    /// Make the source (Orthanc's PAM, or the stored file decoded here), compress it on the pool,
    /// and store it.
    async fn make(
        &self,
        key: CacheKey,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
        via: Via,
    ) -> Result<Source, PreviewError> {
        // A flight that just landed may have stored it between our lookup and our lead.
        if let Some((entry, _)) = self.cache.lookup(&key, Tiers::MemoryOnly).await {
            return Source::cached(entry);
        }
        let made = match via {
            Via::Orthanc => self.rendered_by_orthanc(instance, frame, rendering, priority).await,
            Via::File => self.decoded_here(instance, frame, rendering, priority).await,
            Via::OrthancThenFile => {
                match self.rendered_by_orthanc(instance, frame, rendering, priority).await {
                    Err(PreviewError::Upstream(UpstreamError::Unsupported)) => {
                        crate::telemetry::metrics::render_fallback();
                        self.decoded_here(instance, frame, rendering, priority).await
                    }
                    other => other,
                }
            }
        };
        let (pixels, packed, timings) = match made {
            Ok(made) => made,
            Err(e @ PreviewError::Dicom(DicomError::NoPixelData { kind })) => {
                // For good: a report never grows pixels (a new file is a new instance).
                let marker = Entry::new(NO_PIXELS_CONTENT_TYPE, Bytes::from_static(kind.as_bytes()));
                self.cache.store(&key, Arc::new(marker), self.tiers).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        tracing::Span::current().record("upstream_ms", timings.upstream.as_millis() as u64);
        let entry = Arc::new(Entry::new(SOURCE_CONTENT_TYPE, packed));
        self.cache.store(&key, entry.clone(), self.tiers).await;
        Ok(Source { entry, pixels: Some(Arc::new(pixels)), timings })
    }

    /// Orthanc's PAM rendering of the frame, parsed and compressed on the pool.
    async fn rendered_by_orthanc(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
    ) -> Result<(Pixels, Bytes, Timings), PreviewError> {
        let (pam, upstream) = self.upstream.pixels(instance, frame, rendering, priority).await?;
        let started = Instant::now();
        let max_pixels = self.limits.max_pixels;
        let (pixels, packed) = self
            .pool
            .run(move || {
                let pixels = Pixels::from_pam(&pam, max_pixels)?;
                let packed = pixels.compress();
                Ok((pixels, packed))
            })
            .await?;
        Ok((pixels, packed, Timings { upstream, transform: started.elapsed() }))
    }

    /// The stored file, decoded and rendered here as Orthanc would, on the pool.
    async fn decoded_here(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
    ) -> Result<(Pixels, Bytes, Timings), PreviewError> {
        let (file, upstream) = match self.upstream.file(instance, priority).await {
            Ok(got) => got,
            // Orthanc has the instance (it just answered for its image) but not its file: a
            // storage without files or a fake. What it said about the image stands.
            Err(UpstreamError::NotFound) if self.mode == RenderMode::Fallback => {
                return Err(UpstreamError::Unsupported.into())
            }
            Err(e) => return Err(e.into()),
        };
        let started = Instant::now();
        let (rendering, limits) = (*rendering, self.limits);
        let decoded = self
            .pool
            .run(move || {
                Ok(dicom::render_frame(&file, frame, &rendering, &limits).map(|pixels| {
                    let packed = pixels.compress();
                    (pixels, packed)
                }))
            })
            .await?;
        let outcome = match &decoded {
            Ok(_) => "ok",
            Err(e) => e.code(),
        };
        crate::telemetry::metrics::edge_decode(outcome);
        let (pixels, packed) = decoded?;
        Ok((pixels, packed, Timings { upstream, transform: started.elapsed() }))
    }
}
