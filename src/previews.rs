//! The get-or-make service: request → cache key → memory → disk → single flight → source → transform → store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::budget::MissBudget;
use crate::cache::{CacheKey, CacheStatus, Entry, NegativeCache, TieredCache, Tiers};
use crate::error::AppError;
use crate::ids::OrthancId;
use crate::model::{ImageFormat, Rendering};
use crate::transform::{self, Pixels, TransformError, TransformPool, VariantSpec, SOURCE_CONTENT_TYPE};
use crate::upstream::{OrthancClient, Priority, UpstreamError};

/// What to serve: one frame of one instance, in one output. Built only from validated input.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewSpec {
    pub instance: OrthancId,
    pub frame: u32,
    pub output: Output,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Orthanc's own `/preview` bytes, as Orthanc encodes them.
    Orthanc { format: ImageFormat, quality: Option<u8> },
    /// Made at the edge from the cached lossless source of `rendering`.
    Edge { rendering: Rendering, variant: VariantSpec },
}

fn rendering_tag(r: &Rendering) -> String {
    // `+ 0.0` turns -0 into 0 so that one window has one name.
    match r {
        Rendering::Preview => "preview".to_owned(),
        Rendering::Rendered { window: None } => "rendered".to_owned(),
        Rendering::Rendered { window: Some(w) } => {
            format!("rendered.wc{}.ww{}", w.center + 0.0, w.width + 0.0)
        }
    }
}

impl PreviewSpec {
    pub fn cache_key(&self) -> CacheKey {
        let variant = match &self.output {
            Output::Orthanc { format: ImageFormat::Jpeg, quality: Some(q) } => format!("jpeg.q{q}"),
            Output::Orthanc { format, .. } => format.name().to_owned(),
            Output::Edge { rendering, variant } => {
                format!("{}.{}", rendering_tag(rendering), variant.canonical())
            }
        };
        CacheKey { instance: self.instance.clone(), frame: self.frame, variant }
    }
}

fn source_key(instance: &OrthancId, frame: u32, rendering: &Rendering) -> CacheKey {
    CacheKey { instance: instance.clone(), frame, variant: format!("src.{}", rendering_tag(rendering)) }
}

/// A response-ready image, where it came from, and where its time went.
#[derive(Debug, Clone)]
pub struct Served {
    pub entry: Arc<Entry>,
    pub status: CacheStatus,
    /// Time this request spent on Orthanc and on resize/encode. Zero for hits, and for a request
    /// that joined another's fetch (the time is the fetcher's; this one only waited).
    pub upstream: Duration,
    pub transform: Duration,
}

/// Time spent by one fill, recorded from inside the fill task.
#[derive(Debug, Default)]
struct Timings {
    upstream_us: AtomicU64,
    transform_us: AtomicU64,
}

impl Timings {
    fn add(slot: &AtomicU64, d: Duration) {
        slot.fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
    fn get(slot: &AtomicU64) -> Duration {
        Duration::from_micros(slot.load(Ordering::Relaxed))
    }
}

/// Limits the service applies while making images.
#[derive(Debug, Clone, Copy)]
pub struct MakeLimits {
    pub max_source_pixels: u64,
    pub allow_upscale: bool,
    /// Keep sources in the disk tier too, not only in memory.
    pub sources_on_disk: bool,
}

#[derive(Clone)]
pub struct PreviewService {
    cache: TieredCache,
    upstream: OrthancClient,
    pool: TransformPool,
    limits: MakeLimits,
    /// Misses each client may cause; see `budget`.
    budget: MissBudget,
    /// (instance, frame) pairs Orthanc recently answered 404 or 415 for, with that answer.
    not_found: Option<NegativeCache>,
}

impl PreviewService {
    pub fn new(
        cache: TieredCache,
        upstream: OrthancClient,
        pool: TransformPool,
        limits: MakeLimits,
        budget: MissBudget,
        negative_ttl: Duration,
    ) -> Self {
        let not_found = NegativeCache::new(negative_ttl);
        Self { cache, upstream, pool, limits, budget, not_found }
    }

    /// Transform jobs admitted (running or queued), for metrics.
    pub fn transform_in_flight(&self) -> usize {
        self.pool.in_flight()
    }

    /// The image for a person's request: a miss is charged to `client` (a principal's name).
    pub async fn get(&self, spec: &PreviewSpec, client: &Arc<str>) -> Result<Served, AppError> {
        let mut served = self.get_inner(spec, Priority::Interactive, Some(client), Arc::default()).await;
        if let Err(AppError::TooManyMisses { client: charged, .. }) = &served {
            // This request joined a fetch that another client's budget refused: fetch on its own.
            if charged != client {
                served = self.get_inner(spec, Priority::Interactive, Some(client), Arc::default()).await;
            }
        }
        Self::count(served)
    }

    /// The image, with the Orthanc priority of a miss; nobody is charged (warm-up jobs, tests).
    pub async fn get_with(&self, spec: &PreviewSpec, priority: Priority) -> Result<Served, AppError> {
        Self::count(self.get_inner(spec, priority, None, Arc::default()).await)
    }

    fn count(served: Result<Served, AppError>) -> Result<Served, AppError> {
        if let Ok(s) = &served {
            crate::telemetry::metrics::cache_lookup(s.status.as_str());
        }
        served
    }

    /// Warm-up: every variant of one frame, from one source fetch, one decode and one resize per
    /// size. One result per variant, in order; `Miss` means made now.
    pub async fn warm(
        &self,
        instance: &OrthancId,
        rendering: Rendering,
        variants: &[VariantSpec],
        priority: Priority,
    ) -> Vec<Result<Served, AppError>> {
        let mut made = Vec::new();
        let mut out = Vec::with_capacity(variants.len());
        for (i, variant) in variants.iter().enumerate() {
            let spec = PreviewSpec {
                instance: instance.clone(),
                frame: 0,
                output: Output::Edge { rendering, variant: variant.clone() },
            };
            let siblings = Arc::new(Siblings { variants: variants[i + 1..].to_vec(), ..Siblings::default() });
            let mut served = self.get_inner(&spec, priority, None, siblings.clone()).await;
            if let Ok(s) = &mut served {
                // Made by an earlier variant's fill: a memory hit now, but new work of this call.
                if made.contains(&spec.cache_key()) {
                    s.status = CacheStatus::Miss;
                }
                crate::telemetry::metrics::cache_lookup(s.status.as_str());
            }
            made.extend(siblings.take_made());
            out.push(served);
        }
        out
    }

    async fn get_inner(
        &self,
        spec: &PreviewSpec,
        priority: Priority,
        client: Option<&Arc<str>>,
        siblings: Arc<Siblings>,
    ) -> Result<Served, AppError> {
        if let Some(answer) = match &self.not_found {
            Some(nf) => nf.get(&spec.instance, spec.frame).await,
            None => None,
        } {
            return Err(answer.into());
        }
        let this = self.clone();
        let fetch = spec.clone();
        let span = tracing::Span::current();
        let timings = Arc::new(Timings::default());
        let t = timings.clone();
        let client = client.cloned();
        let result = self
            .cache
            .get_or_fill(&spec.cache_key(), move || async move {
                // Charged only here, when neither tier had the image.
                if let Some(client) = client {
                    this.budget
                        .spend(&client)
                        .map_err(|retry_after_s| AppError::TooManyMisses { client, retry_after_s })?;
                }
                this.make(&fetch, priority, &t, &siblings).instrument(span).await
            })
            .await;
        match result {
            Ok((entry, status)) => Ok(Served {
                entry,
                status,
                upstream: Timings::get(&timings.upstream_us),
                transform: Timings::get(&timings.transform_us),
            }),
            Err(AppError::Upstream(UpstreamError::NotFound)) => {
                // Remembered first: requests for it stop here while the purge runs.
                if let Some(nf) = &self.not_found {
                    nf.insert(&spec.instance, spec.frame, UpstreamError::NotFound).await;
                }
                // Orthanc never reports deletions: a 404 is how we learn of one. Both tiers find
                // an instance's entries by key, so an unknown id costs no scan.
                if let Err(e) = self.cache.purge_instance(&spec.instance).await {
                    tracing::warn!(error = %e, "purge after 404 failed");
                }
                Err(UpstreamError::NotFound.into())
            }
            // Undecodable stays undecodable: do not ask Orthanc again for a while.
            Err(AppError::Upstream(UpstreamError::Unsupported)) => {
                if let Some(nf) = &self.not_found {
                    nf.insert(&spec.instance, spec.frame, UpstreamError::Unsupported).await;
                }
                Err(UpstreamError::Unsupported.into())
            }
            Err(e) => Err(e),
        }
    }

    /// Drop every cached image of an instance (all frames, variants and sources).
    pub async fn purge_instance(&self, instance: &OrthancId) -> Result<(u64, u64), AppError> {
        if let Some(nf) = &self.not_found {
            nf.forget(instance).await;
        }
        self.cache.purge_instance(instance).await
    }

    /// Make the image of a cache miss (and any of `siblings` not cached yet, in the same job).
    async fn make(
        &self,
        spec: &PreviewSpec,
        priority: Priority,
        timings: &Arc<Timings>,
        siblings: &Siblings,
    ) -> Result<Entry, AppError> {
        match &spec.output {
            Output::Orthanc { format, quality } => {
                let img = self.upstream.preview(&spec.instance, spec.frame, *format, *quality).await?;
                tracing::Span::current().record("upstream_ms", img.elapsed.as_millis() as u64);
                Timings::add(&timings.upstream_us, img.elapsed);
                Ok(Entry::new(img.format.mime(), img.body))
            }
            Output::Edge { rendering, variant } => {
                let (source, decoded) =
                    self.source(&spec.instance, spec.frame, rendering, priority, timings).await?;
                let mime = variant.format.mime();
                let others: Vec<(VariantSpec, CacheKey)> = siblings
                    .variants
                    .iter()
                    .map(|v| {
                        let output = Output::Edge { rendering: *rendering, variant: v.clone() };
                        let key = PreviewSpec { output, ..spec.clone() }.cache_key();
                        (v.clone(), key)
                    })
                    .collect();
                let (variant, upscale, cache) =
                    (variant.clone(), self.limits.allow_upscale, self.cache.clone());
                let started = Instant::now();
                let (main, extra) = self
                    .pool
                    .run(move || {
                        let pixels = match decoded {
                            Some(p) => p,
                            None => Pixels::decompress(&source.body)?,
                        };
                        let todo: Vec<_> =
                            others.into_iter().filter(|(_, k)| !cache.contains_blocking(k)).collect();
                        let specs: Vec<VariantSpec> =
                            std::iter::once(variant).chain(todo.iter().map(|(v, _)| v.clone())).collect();
                        let mut outs = transform::render_all(&pixels, &specs, upscale).into_iter();
                        let main =
                            outs.next().unwrap_or_else(|| Err(TransformError::Encode("no output".into())))?;
                        // A sibling that fails is simply not stored: its own request will report why.
                        let extra: Vec<(CacheKey, Entry)> = todo
                            .into_iter()
                            .zip(outs)
                            .filter_map(|((v, k), r)| Some((k, Entry::new(v.format.mime(), r.ok()?.into()))))
                            .collect();
                        Ok((main, extra))
                    })
                    .await?;
                Timings::add(&timings.transform_us, started.elapsed());
                for (key, entry) in extra {
                    self.cache.put(&key, Arc::new(entry)).await;
                    siblings.note_made(key);
                }
                Ok(Entry::new(mime, main.into()))
            }
        }
    }

    /// The lossless source of one frame: cached like any image, fetched once however many variants
    /// follow. With it, its decoded pixels when this call fetched it (no need to decompress again).
    async fn source(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        priority: Priority,
        timings: &Arc<Timings>,
    ) -> Result<(Arc<Entry>, Option<Pixels>), AppError> {
        let timings = timings.clone();
        let upstream = self.upstream.clone();
        let pool = self.pool.clone();
        let max_pixels = self.limits.max_source_pixels;
        let (id, r) = (instance.clone(), *rendering);
        let span = tracing::Span::current();
        let decoded: Arc<Mutex<Option<Pixels>>> = Arc::default();
        let slot = decoded.clone();
        let tiers = if self.limits.sources_on_disk { Tiers::Both } else { Tiers::MemoryOnly };
        let (entry, _) = self
            .cache
            .get_or_fill_in(&source_key(instance, frame, rendering), tiers, move || async move {
                let (pam, elapsed) = upstream.pixels(&id, frame, &r, priority).await?;
                span.record("upstream_ms", elapsed.as_millis() as u64);
                Timings::add(&timings.upstream_us, elapsed);
                let started = Instant::now();
                let (pixels, packed) = pool
                    .run(move || {
                        let pixels = Pixels::from_pam(&pam, max_pixels)?;
                        let packed = pixels.compress();
                        Ok((pixels, packed))
                    })
                    .await?;
                Timings::add(&timings.transform_us, started.elapsed());
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(pixels);
                }
                Ok(Entry::new(SOURCE_CONTENT_TYPE, packed))
            })
            .await?;
        if entry.content_type != SOURCE_CONTENT_TYPE {
            return Err(AppError::Internal("source key holds a non-source entry".into()));
        }
        let pixels = decoded.lock().ok().and_then(|mut p| p.take());
        Ok((entry, pixels))
    }
}

/// Other variants of the same frame that a fill makes in the same job when they are not cached
/// (warm-up asks for a preset's WebP and JPEG together), and the keys it made.
#[derive(Default)]
struct Siblings {
    variants: Vec<VariantSpec>,
    made: Mutex<Vec<CacheKey>>,
}

impl Siblings {
    fn note_made(&self, key: CacheKey) {
        if let Ok(mut made) = self.made.lock() {
            made.push(key);
        }
    }

    fn take_made(&self) -> Vec<CacheKey> {
        self.made.lock().map(|mut m| std::mem::take(&mut *m)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Window;
    use crate::transform::spec::Fit;

    #[test]
    fn cache_keys_are_canonical() {
        let id = OrthancId::parse("8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe").unwrap();
        let key = |output| PreviewSpec { instance: id.clone(), frame: 0, output }.cache_key().variant;
        assert_eq!(key(Output::Orthanc { format: ImageFormat::Png, quality: None }), "png");
        assert_eq!(key(Output::Orthanc { format: ImageFormat::Png, quality: Some(50) }), "png");
        assert_eq!(key(Output::Orthanc { format: ImageFormat::Jpeg, quality: None }), "jpeg");
        assert_eq!(key(Output::Orthanc { format: ImageFormat::Jpeg, quality: Some(50) }), "jpeg.q50");
        let v =
            VariantSpec { w: Some(128), h: None, fit: Fit::Contain, format: ImageFormat::Webp, q: Some(80) };
        assert_eq!(
            key(Output::Edge { rendering: Rendering::Preview, variant: v.clone() }),
            "preview.w128.h-.contain.webp.q80"
        );
        let w = Window { center: -0.0, width: 400.5 };
        assert_eq!(
            key(Output::Edge { rendering: Rendering::Rendered { window: Some(w) }, variant: v }),
            "rendered.wc0.ww400.5.w128.h-.contain.webp.q80"
        );
        assert_eq!(source_key(&id, 2, &Rendering::Preview).variant, "src.preview");
    }
}
