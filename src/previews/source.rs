//! A frame's lossless source (`Source`): from the cache, or made once: Orthanc's PAM rendering,
//! or the edge's own decoding of the stored file (`dicom`), as `render.mode` says.
//!
//! Both ways end in the same 8-bit `Pixels` (the edge renders as Orthanc does), kept under the same
//! key, so whatever produced a `Source`, everything after it is the same.
//!
//! A source decoded here for small variants only (thumbnails of a JPEG 2000 frame, decoded at one
//! of its lower resolution levels: [`Outputs`]) serves the request that made it and is not kept:
//! the variants made from it are.
//!
//! DICOMweb renderings (`Rendering::Dicomweb`) are made at the edge from the frame's decoded
//! samples ([`dicom::Frame`]), cached once per frame where sources are kept; each window's or
//! region's 8-bit source is kept in memory only, so a new window costs one pipeline pass and an
//! encode, not a fetch or a decode.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::files::RecentFiles;
use super::key::{frame_key, source_key};
use super::{PreviewError, Timings};
use crate::cache::{CacheKey, Entry, Flight, Flights, TieredCache, Tiers};
use crate::config::RenderMode;
use crate::dicom::{self, DicomError, Frame, Limits as DecodeLimits};
use crate::ids::OrthancId;
use crate::model::Rendering;
use crate::transform::{resize, Pixels, TransformPool, VariantSpec, SOURCE_CONTENT_TYPE};
use crate::upstream::{OrthancClient, Priority, UpstreamError};

/// One frame's source pixels, as cached or just made, and what getting them cost this request.
#[derive(Debug, Clone)]
pub struct Source {
    pub pixels: SourcePixels,
    /// Time spent on Orthanc and on decoding; zero when cached or made by another request.
    pub timings: Timings,
}

#[derive(Debug, Clone)]
pub enum SourcePixels {
    /// The compressed pixels (`SOURCE_CONTENT_TYPE`) as the cache keeps them, at full size
    /// (decompressed where they are used, on the CPU pool).
    Cached(Arc<Entry>),
    /// Made just now: the frame's `full` size, and its pixels at that size or, for a JPEG 2000
    /// frame decoded at a lower level, smaller.
    Made { pixels: Arc<Pixels>, full: (u32, u32) },
}

/// The variants a source is for: how small a JPEG 2000 frame may be decoded.
#[derive(Debug, Clone)]
pub struct Outputs {
    pub specs: Vec<VariantSpec>,
    pub allow_upscale: bool,
}

impl Outputs {
    /// Variants that need every pixel of the frame.
    pub fn full_size() -> Self {
        Self { specs: Vec::new(), allow_upscale: false }
    }

    /// How many times a `w`×`h` frame can be halved for these variants (0 for none).
    fn reduction(&self, w: u32, h: u32) -> u32 {
        resize::max_reduction(w, h, &self.specs, self.allow_upscale)
    }

    /// Are pixels made for other variants (another request's flight) enough for these?
    fn served_by(&self, source: &Source) -> bool {
        match &source.pixels {
            SourcePixels::Cached(_) => true,
            SourcePixels::Made { pixels, full } => resize::level(*full, (pixels.width, pixels.height))
                .is_some_and(|level| level <= self.reduction(full.0, full.1)),
        }
    }
}

/// Content type of the entry kept under a source key for an instance without pixel data: its
/// kind (`sr`, `pdf`, ...) as the body, so the file is not fetched again for each request.
const NO_PIXELS_CONTENT_TYPE: &str = "application/x-orthanc-edge-no-pixels";

/// Content type of a frame's decoded samples and pipeline ([`Frame::to_bytes`]).
const FRAME_CONTENT_TYPE: &str = "application/x-orthanc-edge-frame";

/// The error a no-pixels marker stands for.
fn no_pixels(entry: &Entry) -> DicomError {
    let kind = dicom::NO_PIXEL_KINDS.iter().find(|k| k.as_bytes() == entry.body).copied();
    DicomError::NoPixelData { kind: kind.unwrap_or("other") }
}

fn no_pixels_marker(kind: &'static str) -> Arc<Entry> {
    Arc::new(Entry::new(NO_PIXELS_CONTENT_TYPE, Bytes::from_static(kind.as_bytes())))
}

impl Source {
    fn cached(entry: Arc<Entry>) -> Result<Self, PreviewError> {
        if entry.content_type == NO_PIXELS_CONTENT_TYPE {
            return Err(no_pixels(&entry).into());
        }
        if entry.content_type != SOURCE_CONTENT_TYPE {
            return Err(PreviewError::Internal("source key holds a non-source entry".into()));
        }
        Ok(Self { pixels: SourcePixels::Cached(entry), timings: Timings::default() })
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
    /// The frame's decoded samples (cached), through the DICOMweb pipeline.
    Frame,
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

/// A source just made, before it is stored: `packed` (compressed) when it is the full frame.
struct NewSource {
    pixels: Pixels,
    full: (u32, u32),
    packed: Option<Bytes>,
    timings: Timings,
}

impl NewSource {
    fn full(pixels: Pixels, packed: Bytes, timings: Timings) -> Self {
        Self { full: (pixels.width, pixels.height), pixels, packed: Some(packed), timings }
    }
}

/// Where sources come from: the cache, else one fetch per frame however many variants need it.
#[derive(Clone)]
pub struct Sources {
    pub(super) cache: TieredCache,
    pub(super) upstream: OrthancClient,
    pub(super) pool: TransformPool,
    pub(super) flights: Flights<CacheKey, Source, PreviewError>,
    /// Decoded frames being made (DICOMweb), one decode however many windows wait for it.
    pub(super) frames: Flights<CacheKey, (Arc<Frame>, Timings), PreviewError>,
    /// Files fetched in the last seconds: one fetch for all the frames of an instance.
    pub(super) files: RecentFiles,
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

    /// Forget the stored file kept of `instance` (a purge).
    pub async fn forget(&self, instance: &OrthancId) {
        self.files.forget(instance).await;
    }

    /// The source of one frame in one rendering for `outputs`, made as `render.mode` says; a
    /// DICOMweb rendering at the edge unless the mode is `orthanc` (Orthanc's `/rendered` then).
    pub async fn get(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
        outputs: Outputs,
    ) -> Result<Source, PreviewError> {
        let via = match (rendering, self.mode) {
            (Rendering::Dicomweb { .. }, RenderMode::Orthanc) => Via::Orthanc,
            (Rendering::Dicomweb { .. }, _) => Via::Frame,
            (_, mode) => mode.into(),
        };
        self.get_via(instance, frame, rendering, priority, via, outputs).await
    }

    /// Where the source made `via` is kept: a window's source is cheap to make again from the
    /// cached frame, so it stays in memory.
    fn tiers(&self, via: Via) -> Tiers {
        match via {
            Via::Frame => Tiers::MemoryOnly,
            _ => self.tiers,
        }
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
        self.get_via(instance, frame, rendering, priority, Via::File, Outputs::full_size()).await
    }

    async fn get_via(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
        via: Via,
        outputs: Outputs,
    ) -> Result<Source, PreviewError> {
        let key = source_key(instance, frame, rendering);
        if let Some((entry, _)) = self.cache.lookup(&key, self.tiers(via)).await {
            return Source::cached(entry);
        }
        match self.flights.join(&key) {
            Flight::Follow(f) => {
                // The work was another request's: this one only waited, unless that request
                // decoded a JPEG 2000 frame too small for this one's variants.
                let source = f.wait().await?;
                if outputs.served_by(&source) {
                    return Ok(Source { timings: Timings::default(), ..source });
                }
                self.make(key, instance, frame, rendering, priority, via, outputs).await
            }
            Flight::Lead(lead) => {
                let (this, id, r) = (self.clone(), instance.clone(), *rendering);
                lead.run(async move { this.make(key, &id, frame, &r, priority, via, outputs).await }).await
            }
        }
    }

    /// Make the source (Orthanc's PAM, or the stored file decoded here), compress it on the pool,
    /// and store it; a source decoded below full size for `outputs` is neither.
    #[allow(clippy::too_many_arguments)]
    async fn make(
        &self,
        key: CacheKey,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
        via: Via,
        outputs: Outputs,
    ) -> Result<Source, PreviewError> {
        // A flight that just landed may have stored it between our lookup and our lead.
        if let Some((entry, _)) = self.cache.lookup_memory(&key).await {
            return Source::cached(entry);
        }
        let made = match via {
            Via::Orthanc => self.rendered_by_orthanc(instance, frame, rendering, priority).await,
            Via::File => self.decoded_here(instance, frame, rendering, priority, outputs).await,
            Via::Frame => self.windowed(instance, frame, rendering, priority).await,
            Via::OrthancThenFile => {
                match self.rendered_by_orthanc(instance, frame, rendering, priority).await {
                    Err(PreviewError::Upstream(UpstreamError::Unsupported)) => {
                        crate::telemetry::metrics::render_fallback();
                        self.decoded_here(instance, frame, rendering, priority, outputs).await
                    }
                    other => other,
                }
            }
        };
        let NewSource { pixels, full, packed, timings } = match made {
            Ok(made) => made,
            Err(e @ PreviewError::Dicom(DicomError::NoPixelData { kind })) => {
                // For good: a report never grows pixels (a new file is a new instance).
                self.cache.store(&key, no_pixels_marker(kind), self.tiers).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        if let Some(packed) = packed {
            self.cache.store(&key, Arc::new(Entry::new(SOURCE_CONTENT_TYPE, packed)), self.tiers(via)).await;
        }
        Ok(Source { pixels: SourcePixels::Made { pixels: Arc::new(pixels), full }, timings })
    }

    /// Orthanc's PAM rendering of the frame, parsed and compressed on the pool.
    async fn rendered_by_orthanc(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
    ) -> Result<NewSource, PreviewError> {
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
        Ok(NewSource::full(pixels, packed, Timings { upstream, transform: started.elapsed() }))
    }

    /// The stored file, decoded and rendered here as Orthanc would, on the pool: a JPEG 2000
    /// frame at the lowest resolution `outputs` can use.
    async fn decoded_here(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
        outputs: Outputs,
    ) -> Result<NewSource, PreviewError> {
        let rendering = *rendering;
        let decoded = self
            .decode_file(instance, priority, move |file, limits| {
                let reduce = |w, h| outputs.reduction(w, h);
                dicom::render_frame_at(file, frame, &rendering, limits, reduce).map(|r| {
                    // Kept only at full size: a smaller one serves these variants alone.
                    let whole = (r.pixels.width, r.pixels.height) == r.full;
                    let packed = whole.then(|| r.pixels.compress());
                    ((r, packed), if whole { "ok" } else { "reduced" })
                })
            })
            .await;
        match decoded {
            Ok(((r, packed), timings)) => Ok(NewSource { pixels: r.pixels, full: r.full, packed, timings }),
            // Orthanc has the instance (it just answered for its image) but not its file: a
            // storage without files or a fake. What it said about the image stands.
            Err(PreviewError::Upstream(UpstreamError::NotFound)) if self.mode == RenderMode::Fallback => {
                Err(UpstreamError::Unsupported.into())
            }
            Err(e) => Err(e),
        }
    }

    /// A DICOMweb rendering: the frame's decoded samples through the pipeline, on the pool.
    async fn windowed(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
    ) -> Result<NewSource, PreviewError> {
        let Rendering::Dicomweb { window, region } = *rendering else {
            return Err(PreviewError::Internal("a windowed source of a non-DICOMweb rendering".into()));
        };
        let (samples, timings) = self.frame(instance, frame, priority).await?;
        let started = Instant::now();
        let (pixels, packed) = self
            .pool
            .run(move || {
                let pixels = samples.render(window, region);
                let packed = pixels.compress();
                Ok((pixels, packed))
            })
            .await?;
        Ok(NewSource::full(
            pixels,
            packed,
            Timings { transform: timings.transform + started.elapsed(), ..timings },
        ))
    }

    /// A frame's decoded samples: cached (where sources are kept), else the stored file decoded
    /// once, however many windows of it are asked for at the same time.
    async fn frame(
        &self,
        instance: &OrthancId,
        frame: u32,
        priority: Priority,
    ) -> Result<(Arc<Frame>, Timings), PreviewError> {
        let key = frame_key(instance, frame);
        if let Some(cached) = self.cached_frame(&key).await? {
            return Ok((cached, Timings::default()));
        }
        match self.frames.join(&key) {
            // Another request's decode: this one only waited.
            Flight::Follow(f) => Ok((f.wait().await?.0, Timings::default())),
            Flight::Lead(lead) => {
                let (this, id) = (self.clone(), instance.clone());
                lead.run(async move { this.make_frame(key, &id, frame, priority).await }).await
            }
        }
    }

    /// The cached frame under `key`, read on the pool; a damaged entry is a miss (and is made
    /// again), never an image.
    async fn cached_frame(&self, key: &CacheKey) -> Result<Option<Arc<Frame>>, PreviewError> {
        let Some((entry, _)) = self.cache.lookup(key, self.tiers).await else {
            return Ok(None);
        };
        if entry.content_type == NO_PIXELS_CONTENT_TYPE {
            return Err(no_pixels(&entry).into());
        }
        if entry.content_type != FRAME_CONTENT_TYPE {
            return Ok(None);
        }
        let max_pixels = self.limits.max_pixels;
        let read = self.pool.run(move || Ok(Frame::from_bytes(&entry.body, max_pixels))).await?;
        match read {
            Ok(frame) => Ok(Some(Arc::new(frame))),
            Err(e) => {
                tracing::warn!(error = %e, "damaged frame entry; decoding the file again");
                Ok(None)
            }
        }
    }

    async fn make_frame(
        &self,
        key: CacheKey,
        instance: &OrthancId,
        frame: u32,
        priority: Priority,
    ) -> Result<(Arc<Frame>, Timings), PreviewError> {
        let decoded = self
            .decode_file(instance, priority, move |file, limits| {
                dicom::read_frame(file, frame, limits).map(|f| {
                    let body = f.to_bytes();
                    ((f, body), "ok")
                })
            })
            .await;
        match decoded {
            Ok(((samples, body), timings)) => {
                let entry = Entry::new(FRAME_CONTENT_TYPE, Bytes::from(body));
                self.cache.store(&key, Arc::new(entry), self.tiers).await;
                Ok((Arc::new(samples), timings))
            }
            Err(e @ PreviewError::Dicom(DicomError::NoPixelData { kind })) => {
                self.cache.store(&key, no_pixels_marker(kind), self.tiers).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /instances/{id}/file`, then `decode` on the pool; counted in `edge_decode` by the
    /// outcome `decode` names (`ok`, or `reduced` for a JPEG 2000 frame decoded at a lower
    /// level) or by the error's code.
    async fn decode_file<T, F>(
        &self,
        instance: &OrthancId,
        priority: Priority,
        decode: F,
    ) -> Result<(T, Timings), PreviewError>
    where
        T: Send + 'static,
        F: FnOnce(&[u8], &DecodeLimits) -> Result<(T, &'static str), DicomError> + Send + 'static,
    {
        let (file, upstream) = self.files.get(&self.upstream, instance, priority).await?;
        let started = Instant::now();
        let limits = self.limits;
        let decoded = self.pool.run(move || Ok(decode(&file, &limits))).await?;
        crate::telemetry::metrics::edge_decode(match &decoded {
            Ok((_, outcome)) => outcome,
            Err(e) => e.code(),
        });
        if decoded.is_err() {
            // Nothing more to read from it; a corrected file comes with a purge anyway.
            self.files.forget(instance).await;
        }
        Ok((decoded?.0, Timings { upstream, transform: started.elapsed() }))
    }
}
