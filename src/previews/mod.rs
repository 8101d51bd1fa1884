//! The preview service: `get` (a request), `warm` (every variant of a frame), `purge`; a miss goes lookup → flight → source → make → store.

mod files;
mod key;
mod make;
mod negative;
mod placeholder;
mod source;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::Serialize;

use crate::budget::MissBudget;
use crate::cache::{
    CacheError, CacheKey, CacheStatus, Entry, Flight, FlightError, Flights, TieredCache, Tiers,
};
use crate::cluster::wire::{Dropped, ImageRequest, PurgeRequest, WarmRequest, Warmed};
use crate::cluster::{Cluster, PeerFailure, PeerImage};
use crate::config::RenderMode;
use crate::dicom::{DicomError, Limits as DecodeLimits};
use crate::ids::OrthancId;
use crate::model::{ImageFormat, Level, Rendering};
use crate::transform::spec::Fit;
use crate::transform::{TransformError, TransformPool, VariantSpec};
use crate::upstream::catalog::Catalog;
use crate::upstream::{OrthancClient, Priority, UpstreamError};

pub use key::{Output, PreviewSpec};
use make::Made;
use negative::NegativeCache;
use placeholder::Placeholders;
use source::{Outputs, Sources};

/// Orthanc's JPEG quality when `/preview` is asked for JPEG without `quality` (its `JpegWriter`).
const ORTHANC_JPEG_QUALITY: u8 = 90;

/// A response-ready image, where it came from, and where its time went.
#[derive(Debug, Clone)]
pub struct Served {
    pub entry: Arc<Entry>,
    pub status: CacheStatus,
    /// Time this request spent on Orthanc and on resize/encode. Zero for hits, and for a request
    /// that joined another's fetch (the time is the fetcher's; this one only waited).
    pub upstream: Duration,
    pub transform: Duration,
    /// The kind (`sr`, `pdf`, ...) when the image is a placeholder for an instance without pixels.
    pub placeholder: Option<&'static str>,
}

/// Time one step spent on Orthanc and on the CPU pool.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timings {
    pub upstream: Duration,
    pub transform: Duration,
}

/// Limits the service applies while making images.
#[derive(Debug, Clone, Copy)]
pub struct MakeLimits {
    pub max_source_pixels: u64,
    /// `render.max_decoded_bytes`: largest frame the edge decodes itself.
    pub max_decoded_bytes: u64,
    /// Who decodes frames (`render.mode`).
    pub render_mode: RenderMode,
    /// Answer a placeholder tile for instances without pixel data (`render.placeholders`).
    pub placeholders: bool,
    pub allow_upscale: bool,
    /// Keep sources in the disk tier too, not only in memory.
    pub sources_on_disk: bool,
    /// Memory for stored files fetched in the last seconds (`files::RecentFiles`).
    pub recent_files_bytes: u64,
    /// Longest a request waits for an image another request is making (`server.flight_wait_ms`).
    pub flight_wait: Duration,
}

/// What a purge dropped: on every edge of the cluster in all, and (in a cluster) on each.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub bytes: u64,
    pub entries: u64,
    pub instances: usize,
    /// Each edge that was reached (this one first), in a cluster.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<EdgePurge>,
    /// The edges that could not be reached: they may still serve what was purged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<String>,
}

/// What one edge of the cluster dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgePurge {
    pub edge: String,
    pub entries: u64,
    pub bytes: u64,
}

/// Whether a miss may ask the instance's owner: a request that came from another edge is
/// served here, whatever this edge thinks of ownership (so no request ever goes round).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Cluster,
    Local,
}

/// Why the service gave no image.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PreviewError {
    /// Orthanc's answer (404 and 415 included), or the catalog's.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// The edge's own decoding of the stored file (`render.mode` edge, or fallback after a 415).
    #[error(transparent)]
    Dicom(#[from] crate::dicom::DicomError),
    /// `client` (a principal's name) has used its miss budget; see `budget`.
    #[error("too many new images for this client; cached ones are still served")]
    TooManyMisses { client: Arc<str>, retry_after_s: u64 },
    #[error("waited too long for the same image being fetched by another request")]
    FlightTimeout,
    #[error(transparent)]
    Cache(Arc<CacheError>),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<FlightError> for PreviewError {
    fn from(e: FlightError) -> Self {
        match e {
            FlightError::Timeout => PreviewError::FlightTimeout,
            FlightError::Lost(why) => PreviewError::Internal(format!("fill task failed: {why}")),
        }
    }
}

impl From<CacheError> for PreviewError {
    fn from(e: CacheError) -> Self {
        PreviewError::Cache(Arc::new(e))
    }
}

impl PreviewError {
    /// The frame cannot be made into an image: Orthanc's 415, or the edge's decoder refused it.
    pub fn is_undecodable(&self) -> bool {
        matches!(
            self,
            PreviewError::Upstream(UpstreamError::Unsupported)
                | PreviewError::Dicom(
                    DicomError::Unsupported(_) | DicomError::Corrupt(_) | DicomError::NoPixelData { .. }
                )
        )
    }

    /// The stable code of this failure: what a warm-up job reports, and what Http answers with.
    pub fn code(&self) -> &'static str {
        match self {
            PreviewError::Upstream(e) => e.code(),
            PreviewError::Transform(e) => e.code(),
            PreviewError::Dicom(e) => e.code(),
            PreviewError::TooManyMisses { .. } => "too-many-misses",
            PreviewError::FlightTimeout => "upstream-timeout",
            PreviewError::Cache(_) | PreviewError::Internal(_) => "internal",
        }
    }
}

/// What the leader of a flight hands back: the image, where it came from, what leading cost, and
/// the sibling variants it made and stored on the way.
#[derive(Debug, Clone)]
struct Filled {
    entry: Arc<Entry>,
    status: CacheStatus,
    timings: Timings,
    made: Vec<CacheKey>,
    placeholder: Option<&'static str>,
}

impl Filled {
    fn hit(entry: Arc<Entry>, status: CacheStatus) -> Self {
        Self { entry, status, timings: Timings::default(), made: Vec::new(), placeholder: None }
    }

    fn served(self) -> Served {
        let Timings { upstream, transform } = self.timings;
        Served { entry: self.entry, status: self.status, upstream, transform, placeholder: self.placeholder }
    }
}

/// A handle: clones share one [`Parts`]. A miss's spawned task holds one, and inline the parts
/// were 1.8 KB of every such task, copied as it was spawned, with a reference count per part
/// to take and to drop (bench-scaleout: 4 % of a hop's CPU).
#[derive(Clone)]
pub struct PreviewService(Arc<Parts>);

impl std::ops::Deref for PreviewService {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// What the preview service is made of.
#[derive(Clone)]
pub struct Parts {
    cache: TieredCache,
    upstream: OrthancClient,
    catalog: Catalog,
    pool: TransformPool,
    sources: Sources,
    flights: Flights<CacheKey, Filled, PreviewError>,
    allow_upscale: bool,
    render_mode: RenderMode,
    /// Misses each client may cause; see `budget`.
    budget: MissBudget,
    /// (instance, frame) pairs recently found missing or undecodable, with that answer.
    not_found: Option<NegativeCache>,
    /// Tiles for instances without pixel data, and for `returnUnsupportedImage`.
    tiles: Placeholders,
    /// Instances without pixel data get their tile (else 415 `no-pixel-data`).
    placeholders: bool,
    /// The other edges, whose instances are asked of their owner.
    cluster: Cluster,
}

impl PreviewService {
    pub fn new(
        cache: TieredCache,
        upstream: OrthancClient,
        catalog: Catalog,
        pool: TransformPool,
        limits: MakeLimits,
        budget: MissBudget,
        negative_ttl: Duration,
    ) -> Self {
        let sources = Sources {
            cache: cache.clone(),
            upstream: upstream.clone(),
            pool: pool.clone(),
            flights: Flights::new(limits.flight_wait),
            frames: Flights::new(limits.flight_wait),
            files: files::RecentFiles::new(limits.recent_files_bytes),
            tiers: if limits.sources_on_disk { Tiers::Both } else { Tiers::MemoryOnly },
            mode: limits.render_mode,
            limits: DecodeLimits {
                max_pixels: limits.max_source_pixels,
                max_decoded_bytes: limits.max_decoded_bytes,
            },
        };
        Self(Arc::new(Parts {
            cache,
            upstream,
            catalog,
            sources,
            flights: Flights::new(limits.flight_wait),
            allow_upscale: limits.allow_upscale,
            render_mode: limits.render_mode,
            budget,
            not_found: NegativeCache::new(negative_ttl),
            tiles: Placeholders::new(pool.clone()),
            placeholders: limits.placeholders,
            pool,
            cluster: Cluster::off(),
        }))
    }

    /// Ask each instance's owner in `cluster` before making it here.
    pub fn with_cluster(self, cluster: Cluster) -> Self {
        let parts = Arc::try_unwrap(self.0).unwrap_or_else(|shared| (*shared).clone());
        Self(Arc::new(Parts { cluster, ..parts }))
    }

    /// Transform jobs admitted (running or queued), for metrics.
    pub fn transform_in_flight(&self) -> usize {
        self.pool.in_flight()
    }

    /// Images and sources being made right now (distinct keys).
    pub fn in_flight(&self) -> usize {
        self.flights.in_flight() + self.sources.in_flight()
    }

    /// The image for a person's request: a miss is charged to `client` (a principal's name).
    pub async fn get(&self, spec: &PreviewSpec, client: &Arc<str>) -> Result<Served, PreviewError> {
        let mut filled = self.serve(spec, Priority::Interactive, Some(client), &[], Reach::Cluster).await;
        if let Err(PreviewError::TooManyMisses { client: charged, .. }) = &filled {
            // This request joined a fetch that another client's budget refused: fetch on its own.
            if charged != client {
                filled = self.serve(spec, Priority::Interactive, Some(client), &[], Reach::Cluster).await;
            }
        }
        counted(self.or_placeholder(spec, filled).await.map(Filled::served))
    }

    /// Start making `specs` for `client` in the background, as its own interactive requests
    /// would (its miss budget charged, hits and flights shared), as many at once as the transform
    /// pool has workers: what a page is about to ask for (the grid's thumbnails), so that its
    /// requests find the work done or under way. Nothing is answered; a failure is the later
    /// request's to report.
    pub fn prefetch(&self, specs: Vec<PreviewSpec>, client: Arc<str>) {
        if specs.is_empty() {
            return;
        }
        let (this, at_once) = (self.clone(), self.pool.workers());
        tokio::spawn(async move {
            futures_util::stream::iter(specs)
                .for_each_concurrent(at_once, |spec| {
                    let (this, client) = (this.clone(), client.clone());
                    async move {
                        let _ = this.get(&spec, &client).await;
                    }
                })
                .await;
        });
    }

    /// The image, with the Orthanc priority of a miss; nobody is charged (tests, tools).
    pub async fn get_for(&self, spec: &PreviewSpec, priority: Priority) -> Result<Served, PreviewError> {
        let filled = self.serve(spec, priority, None, &[], Reach::Cluster).await;
        counted(self.or_placeholder(spec, filled).await.map(Filled::served))
    }

    /// Another edge's request for an image this edge owns: served here, never passed on; an
    /// instance without pixels is the error (the asker makes its own tile).
    pub async fn get_for_peer(&self, req: ImageRequest) -> Result<Served, PreviewError> {
        let client: Option<Arc<str>> = req.client.map(Arc::from);
        let filled = self.serve(&req.spec, req.priority, client.as_ref(), &[], Reach::Local).await;
        counted(filled.map(Filled::served))
    }

    /// Warm-up: every variant of one frame, from one source fetch, one decode and one resize per
    /// size, on the instance's owner. One result per variant, in order.
    pub async fn warm(
        &self,
        instance: &OrthancId,
        rendering: Rendering,
        variants: &[VariantSpec],
        priority: Priority,
    ) -> Vec<Result<Warmed, PreviewError>> {
        if let Some(owner) = self.cluster.remote_owner(instance) {
            let req =
                WarmRequest { instance: instance.clone(), rendering, variants: variants.to_vec(), priority };
            match self.cluster.warm(&owner, &req).await {
                Ok(results) if results.len() == variants.len() => return results,
                Ok(_) => tracing::warn!(peer = %owner, "warm-up answer of the wrong length; warming here"),
                Err(PeerFailure::Answer(e)) => return variants.iter().map(|_| Err(e.clone())).collect(),
                // Marked down: warm here.
                Err(PeerFailure::Unreachable(_)) => {}
            }
        }
        self.warm_here(instance, rendering, variants, priority).await
    }

    /// [`Self::warm`] on this edge, whoever owns the instance (another edge's warm-up request).
    pub async fn warm_here(
        &self,
        instance: &OrthancId,
        rendering: Rendering,
        variants: &[VariantSpec],
        priority: Priority,
    ) -> Vec<Result<Warmed, PreviewError>> {
        let mut made: Vec<CacheKey> = Vec::new();
        let mut out = Vec::with_capacity(variants.len());
        for (i, variant) in variants.iter().enumerate() {
            let spec = PreviewSpec {
                instance: instance.clone(),
                frame: 0,
                output: Output::Edge { rendering, variant: variant.clone() },
            };
            let filled = self.serve(&spec, priority, None, &variants[i + 1..], Reach::Local).await;
            let served = self.or_placeholder(&spec, filled).await.map(|filled| {
                let key = spec.cache_key();
                // Made by an earlier variant's job: a memory hit now, but new work of this call.
                let earlier = made.contains(&key);
                made.extend(filled.made.iter().cloned());
                let mut served = filled.served();
                if earlier {
                    served.status = CacheStatus::Miss;
                }
                served
            });
            out.push(
                counted(served).map(|s| Warmed {
                    made: s.status == CacheStatus::Miss,
                    bytes: s.entry.body.len() as u64,
                }),
            );
        }
        out
    }

    /// An instance without pixel data gets its kind's tile, when placeholders are on.
    async fn or_placeholder(
        &self,
        spec: &PreviewSpec,
        filled: Result<Filled, PreviewError>,
    ) -> Result<Filled, PreviewError> {
        match &filled {
            Err(PreviewError::Dicom(DicomError::NoPixelData { kind })) if self.placeholders => {
                self.tile(kind, spec).await
            }
            _ => filled,
        }
    }

    /// The tile of `kind`, sized and encoded as `spec` asks.
    async fn tile(&self, kind: &'static str, spec: &PreviewSpec) -> Result<Filled, PreviewError> {
        let variant = match &spec.output {
            Output::Edge { variant, .. } => variant.clone(),
            Output::Orthanc { format, quality } => native_variant(*format, *quality),
        };
        let (entry, status) = self.tiles.get(kind, &variant).await?;
        Ok(Filled { placeholder: Some(kind), ..Filled::hit(entry, status) })
    }

    /// Orthanc's `?returnUnsupportedImage`: the image, or where neither Orthanc nor the edge can
    /// decode the frame (or it has no pixels), the `unsupported` tile instead of the 4xx.
    pub async fn get_or_unsupported_tile(
        &self,
        spec: &PreviewSpec,
        client: &Arc<str>,
    ) -> Result<Served, PreviewError> {
        match self.get(spec, client).await {
            Err(e) if e.is_undecodable() => counted(self.tile("unsupported", spec).await.map(Filled::served)),
            other => other,
        }
    }

    /// Drop every cached image of an instance, of every instance of a series, or of every series of
    /// a study (all frames, variants and sources, both tiers), and what the catalog knew of them.
    /// In a cluster, every edge drops them: the instances are listed once, here, and sent to the
    /// others; an edge that cannot be reached is named in `unreachable`.
    pub async fn purge(&self, level: Level, id: &OrthancId) -> Result<PurgeReport, PreviewError> {
        let mut forget = vec![id.clone()];
        let instances: Vec<OrthancId> = match level {
            Level::Instance => vec![id.clone()],
            Level::Series => self.catalog.series_instances(id).await?.to_vec(),
            Level::Study => {
                let mut all = Vec::new();
                for series in self.catalog.study_series(id).await? {
                    all.extend(self.catalog.series_instances(&series).await?.iter().cloned());
                    forget.push(series);
                }
                all
            }
        };
        let here = self.drop_here(&instances, &forget).await?;
        let mut report = PurgeReport {
            instances: instances.len(),
            entries: here.entries,
            bytes: here.bytes,
            ..PurgeReport::default()
        };
        let others = self.cluster.others();
        if others.is_empty() {
            return Ok(report);
        }
        report.edges.push(EdgePurge { edge: "self".to_owned(), entries: here.entries, bytes: here.bytes });
        let req = PurgeRequest { instances, forget };
        let asks = others.into_iter().map(|peer| {
            let req = &req;
            async move {
                let answer = self.cluster.purge(&peer, req).await;
                (peer, answer)
            }
        });
        for (peer, answer) in futures_util::future::join_all(asks).await {
            match answer {
                Ok(Dropped { entries, bytes }) => {
                    report.entries += entries;
                    report.bytes += bytes;
                    report.edges.push(EdgePurge { edge: peer, entries, bytes });
                }
                Err(why) => {
                    tracing::warn!(peer = %peer, error = %why, "purge could not reach a peer");
                    report.unreachable.push(peer);
                }
            }
        }
        Ok(report)
    }

    /// Drop every cached image of `instances` on this edge (both tiers, sources, negative
    /// answers), and what the catalog knew of `forget`.
    pub async fn drop_here(
        &self,
        instances: &[OrthancId],
        forget: &[OrthancId],
    ) -> Result<Dropped, PreviewError> {
        let mut dropped = Dropped::default();
        for instance in instances {
            if let Some(nf) = &self.not_found {
                nf.forget(instance).await;
            }
            self.sources.forget(instance).await;
            let (entries, bytes) = self.cache.purge_instance(instance).await?;
            dropped.entries += entries;
            dropped.bytes += bytes;
        }
        for id in forget {
            self.catalog.forget(id).await;
        }
        Ok(dropped)
    }

    /// One image: a hit, the result of another request's flight, or this request's miss.
    /// `siblings` are other variants of the same frame to make in the same job if not cached.
    async fn serve(
        &self,
        spec: &PreviewSpec,
        priority: Priority,
        client: Option<&Arc<str>>,
        siblings: &[VariantSpec],
        reach: Reach,
    ) -> Result<Filled, PreviewError> {
        // A hit first: the negative answers matter only to what is not cached (a 404 purges).
        // When another edge owns the instance, only a copy in memory counts: asking the owner
        // costs less than a read from this edge's disk (a thread hop), which it seldom has.
        let key = spec.cache_key();
        if let Some((entry, status)) = self.cache.lookup_memory(&key).await {
            return Ok(Filled::hit(entry, status));
        }
        let owner = match reach {
            Reach::Cluster => self.cluster.remote_owner(&spec.instance),
            Reach::Local => None,
        };
        // The disk read (and the promotion to memory) boxed, here and in `miss`: inline, their
        // state made these futures KBs larger, every request's and every spawned miss's.
        if owner.is_none() {
            if let Some((entry, status)) = Box::pin(self.cache.lookup_disk(&key)).await {
                return Ok(Filled::hit(entry, status));
            }
        }
        if let Some(nf) = &self.not_found {
            if let Some(answer) = nf.get(&spec.instance, spec.frame).await {
                return Err(answer);
            }
        }
        let filled = match self.flights.join(&key) {
            // Another request's work: this one only waited.
            Flight::Follow(f) => {
                f.wait().await.map(|f| Filled { timings: Timings::default(), made: Vec::new(), ..f })
            }
            Flight::Lead(lead) => {
                let this = self.clone();
                let (spec, client, siblings) = (spec.clone(), client.cloned(), siblings.to_vec());
                lead.run(async move { this.miss(key, spec, priority, client, siblings, owner).await }).await
            }
        };
        match filled {
            Err(PreviewError::Upstream(UpstreamError::NotFound)) => {
                // Remembered first: requests for it stop here while the purge runs.
                if let Some(nf) = &self.not_found {
                    nf.insert(&spec.instance, spec.frame, UpstreamError::NotFound.into()).await;
                }
                // Orthanc never reports deletions: a 404 is how we learn of one. Both tiers find
                // an instance's entries by key, so an unknown id costs no scan.
                if let Err(e) = self.cache.purge_instance(&spec.instance).await {
                    tracing::warn!(error = %e, "purge after 404 failed");
                }
                self.sources.forget(&spec.instance).await;
                Err(UpstreamError::NotFound.into())
            }
            // Undecodable stays undecodable: do not ask Orthanc again for a while.
            Err(PreviewError::Upstream(UpstreamError::Unsupported)) => {
                if let Some(nf) = &self.not_found {
                    nf.insert(&spec.instance, spec.frame, UpstreamError::Unsupported.into()).await;
                }
                Err(UpstreamError::Unsupported.into())
            }
            // So does a file the edge could not decode (or a frame it does not have).
            Err(e @ PreviewError::Dicom(_)) => {
                if let Some(nf) = &self.not_found {
                    nf.insert(&spec.instance, spec.frame, e.clone()).await;
                }
                Err(e)
            }
            other => other,
        }
    }

    /// The leader's work, in its own task: the `owner`'s answer when another edge owns the
    /// instance, else source → make → store.
    async fn miss(
        self,
        key: CacheKey,
        spec: PreviewSpec,
        priority: Priority,
        client: Option<Arc<str>>,
        siblings: Vec<VariantSpec>,
        owner: Option<String>,
    ) -> Result<Filled, PreviewError> {
        // A flight that just landed may have stored it between our lookup and our lead.
        if let Some((entry, status)) = self.cache.lookup_memory(&key).await {
            return Ok(Filled::hit(entry, status));
        }
        // Another edge owns it: its answer (one request, coalesced there with everyone else's).
        let mut spec = spec;
        if let Some(owner) = owner {
            let req = ImageRequest { spec, client: client.as_ref().map(|c| c.to_string()), priority };
            match Box::pin(self.ask_owner(&owner, &key, &req)).await {
                Ok(filled) => return Ok(filled),
                Err(PeerFailure::Answer(e)) => return Err(e),
                // Marked down: serve on our own, as a single edge would, from disk first.
                Err(PeerFailure::Unreachable(_)) => spec = req.spec,
            }
            if let Some((entry, status)) = Box::pin(self.cache.lookup_disk(&key)).await {
                return Ok(Filled::hit(entry, status));
            }
        }
        // Charged only here, when neither tier had the image.
        if let Some(client) = client {
            self.budget
                .spend(&client)
                .map_err(|retry_after_s| PreviewError::TooManyMisses { client, retry_after_s })?;
        }
        // Boxed: this task is spawned for every miss, a hop to the owner included, and the
        // fetch-decode-render futures would make it tens of KB to allocate and copy each time.
        Box::pin(self.make_here(key, spec, priority, siblings)).await
    }

    /// Source → make → store, for a miss this edge serves itself.
    async fn make_here(
        &self,
        key: CacheKey,
        spec: PreviewSpec,
        priority: Priority,
        siblings: Vec<VariantSpec>,
    ) -> Result<Filled, PreviewError> {
        let PreviewSpec { instance, frame, output } = spec;
        let made = match output {
            Output::Orthanc { format, quality } => {
                self.native(&instance, frame, format, quality, priority).await?
            }
            Output::Edge { rendering, variant } => {
                let siblings = self.uncached(&instance, frame, &rendering, siblings).await;
                let specs =
                    std::iter::once(&variant).chain(siblings.iter().map(|(v, _)| v)).cloned().collect();
                let outputs = Outputs { specs, allow_upscale: self.allow_upscale };
                let source = self.sources.get(&instance, frame, &rendering, priority, outputs).await?;
                make::render(&self.pool, source, variant, siblings, self.allow_upscale).await?
            }
        };
        Ok(self.store(key, made).await)
    }

    /// The image from its owner `peer`, kept here for `cluster.copy_ttl_s`.
    async fn ask_owner(&self, peer: &str, key: &CacheKey, req: &ImageRequest) -> Result<Filled, PeerFailure> {
        let started = Instant::now();
        let PeerImage { entry, owner_hit } = self.cluster.image(peer, req).await?;
        let entry = Arc::new(entry);
        if let Some(ttl) = self.cluster.copy_ttl() {
            self.cache.store_copy(key, entry.clone(), ttl).await;
        }
        let status = if owner_hit { CacheStatus::HitPeer } else { CacheStatus::Miss };
        let timings = Timings { upstream: started.elapsed(), transform: Duration::ZERO };
        Ok(Filled { entry, status, timings, made: Vec::new(), placeholder: None })
    }

    /// `/preview` as Orthanc makes it (full size, PNG or JPEG at Orthanc's `quality`): Orthanc's own
    /// bytes, or where the edge renders (`render.mode = edge`, or Orthanc refused the frame with
    /// 415) the same pixels encoded here.
    async fn native(
        &self,
        instance: &OrthancId,
        frame: u32,
        format: ImageFormat,
        quality: Option<u8>,
        priority: Priority,
    ) -> Result<Made, PreviewError> {
        let source = match self.render_mode {
            RenderMode::Edge => {
                self.sources.get(instance, frame, &Rendering::Preview, priority, Outputs::full_size()).await?
            }
            RenderMode::Fallback | RenderMode::Orthanc => {
                match make::from_orthanc(&self.upstream, instance, frame, format, quality).await {
                    Err(PreviewError::Upstream(UpstreamError::Unsupported)) => {
                        self.sources.get_refused(instance, frame, &Rendering::Preview, priority).await?
                    }
                    other => return other,
                }
            }
        };
        make::render(&self.pool, source, native_variant(format, quality), Vec::new(), self.allow_upscale)
            .await
    }

    /// Those of `variants` that neither tier holds yet, with their keys.
    async fn uncached(
        &self,
        instance: &OrthancId,
        frame: u32,
        rendering: &Rendering,
        variants: Vec<VariantSpec>,
    ) -> Vec<(VariantSpec, CacheKey)> {
        if variants.is_empty() {
            return Vec::new();
        }
        let keys: Vec<CacheKey> =
            variants.iter().map(|v| key::edge_key(instance, frame, rendering, v)).collect();
        let held = self.cache.contains(&keys).await;
        variants.into_iter().zip(keys).zip(held).filter(|(_, held)| !held).map(|(pair, _)| pair).collect()
    }

    /// Keep what a miss made: siblings first, then the image asked for.
    async fn store(&self, key: CacheKey, made: Made) -> Filled {
        let Made { main, extra, timings } = made;
        let mut stored = Vec::with_capacity(extra.len());
        for (k, entry) in extra {
            self.cache.store(&k, Arc::new(entry), Tiers::Both).await;
            stored.push(k);
        }
        let entry = Arc::new(main);
        self.cache.store(&key, entry.clone(), Tiers::Both).await;
        Filled { entry, status: CacheStatus::Miss, timings, made: stored, placeholder: None }
    }
}

/// Orthanc's `/preview` as a variant: full size, PNG, or JPEG at Orthanc's quality.
fn native_variant(format: ImageFormat, quality: Option<u8>) -> VariantSpec {
    let q = match format {
        ImageFormat::Png | ImageFormat::Pam => None,
        _ => Some(quality.unwrap_or(ORTHANC_JPEG_QUALITY)),
    };
    VariantSpec { w: None, h: None, fit: Fit::Contain, format, q }
}

/// Every answer with an image counts in `cache_lookup` by its status.
fn counted(served: Result<Served, PreviewError>) -> Result<Served, PreviewError> {
    if let Ok(s) = &served {
        crate::telemetry::metrics::cache_lookup(s.status.as_str());
    }
    served
}
