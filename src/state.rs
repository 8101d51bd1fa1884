//! Shared application state: cheap-to-clone handles built once at start-up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderValue;

use crate::auth::Authenticator;
use crate::budget::MissBudget;
use crate::cache::{DiskCache, MemoryCache, TieredCache};
use crate::cluster::Cluster;
use crate::config::Config;
use crate::health::Health;
use crate::http::Cors;
use crate::lifecycle::Lifecycle;
use crate::net::TrustedProxies;
use crate::previews::{MakeLimits, PreviewService};
use crate::studies::Studies;
use crate::transform::spec::{presets_from_config, Limits, Preset};
use crate::transform::TransformPool;
use crate::upstream::catalog::Catalog;
use crate::upstream::OrthancClient;
use crate::warm::changes::Follower;
use crate::warm::position::Position;
use crate::warm::Warmer;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub cache: TieredCache,
    pub previews: PreviewService,
    pub auth: Authenticator,
    pub cache_control: HeaderValue,
    pub presets: Arc<BTreeMap<String, Preset>>,
    pub limits: Limits,
    pub studies: Studies,
    pub warmer: Warmer,
    pub cors: Cors,
    /// `server.trusted_proxies`, parsed: whose forwarding headers name the client.
    pub proxies: TrustedProxies,
    pub lifecycle: Lifecycle,
    pub health: Health,
    /// The other edges, when `[cluster]` names them.
    pub cluster: Cluster,
    /// The /changes follower, when `warm.follow_changes` is on; `serve` runs it.
    follower: Option<Follower>,
}

impl AppState {
    /// Open caches and build clients. Blocking (opens sled): call before the server starts.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        let password = config.orthanc_password()?;
        let upstream = OrthancClient::new(&config.orthanc, &password)?
            .with_negative_ttl(Duration::from_secs(config.cache.negative_ttl_s));
        let c = &config.cache;
        let disk = Arc::new(DiskCache::open_with_page_cache(&c.dir, c.disk_bytes, c.disk_page_cache_bytes)?);
        verify_in_background(disk.clone());
        let memory = MemoryCache::new(config.cache.memory_bytes);
        let cache = TieredCache::new(memory, disk);
        let t = &config.transform;
        let workers = match t.workers {
            0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            n => n,
        };
        let cluster = Cluster::from_config(&config)?;
        let catalog = Catalog::new(upstream.clone(), Duration::from_secs(config.cache.metadata_ttl_s));
        let previews = PreviewService::new(
            cache.clone(),
            upstream.clone(),
            catalog.clone(),
            TransformPool::new(workers, t.queue),
            MakeLimits {
                max_source_pixels: t.max_source_pixels,
                max_decoded_bytes: config.render.max_decoded_bytes,
                render_mode: config.render.mode,
                placeholders: config.render.placeholders,
                allow_upscale: t.allow_upscale,
                sources_on_disk: config.cache.sources_on_disk,
                // A quarter of the memory tier for files being decoded (one at least: a file may
                // be as large as orthanc.max_body_bytes).
                recent_files_bytes: (config.cache.memory_bytes / 4).max(config.orthanc.max_body_bytes),
                flight_wait: Duration::from_millis(config.server.flight_wait_ms),
            },
            MissBudget::new(t.misses_per_minute, t.miss_burst),
            Duration::from_secs(config.cache.negative_ttl_s),
        )
        .with_cluster(cluster.clone());
        let limits = Limits::from_config(t);
        let presets = Arc::new(presets_from_config(&config)?);
        let warm_concurrency = match config.warm.concurrency {
            0 => config.orthanc.max_concurrency * 2,
            n => n,
        };
        let warmer = Warmer::new(
            previews.clone(),
            catalog.clone(),
            presets.clone(),
            limits.clone(),
            warm_concurrency,
            config.warm.max_resources,
        );
        let auth = Authenticator::from_config(&config, upstream.clone())?;
        let cache_control = HeaderValue::from_str(&config.http.cache_control)?;
        let cors = Cors::from_config(&config.cors);
        let proxies = TrustedProxies::parse(&config.server.trusted_proxies)
            .map_err(|(i, why)| anyhow::anyhow!("config key `server.trusted_proxies[{i}]`: {why}"))?;
        let lifecycle = Lifecycle::default();
        let health = Health::new(upstream.clone(), lifecycle.clone());
        let w = &config.warm;
        let follower = w.follow_changes.then(|| Follower {
            warmer: warmer.clone(),
            previews: previews.clone(),
            catalog: catalog.clone(),
            upstream: upstream.clone(),
            position: Position::in_dir(&config.cache.dir),
            presets: w.presets.clone(),
            poll: Duration::from_millis(w.poll_ms),
            cluster: cluster.clone(),
        });
        Ok(Self {
            config: Arc::new(config),
            cache,
            previews,
            auth,
            cache_control,
            presets,
            limits,
            studies: Studies::new(catalog),
            warmer,
            cors,
            proxies,
            lifecycle,
            health,
            cluster,
            follower,
        })
    }
}

impl AppState {
    /// The /changes follower, when `warm.follow_changes` is on.
    pub fn follower(&self) -> Option<Follower> {
        self.follower.clone()
    }
}

/// After a restart (a crash included) every surviving entry's checksum is checked once, on a
/// thread of its own; reads verify each entry anyway, so serving starts at once.
fn verify_in_background(disk: Arc<DiskCache>) {
    let spawned = std::thread::Builder::new().name("disk-verify".into()).spawn(move || {
        let started = std::time::Instant::now();
        match disk.verify_all() {
            Ok((good, 0)) => tracing::info!(
                entries = good,
                ms = started.elapsed().as_millis() as u64,
                "disk cache verified"
            ),
            Ok((good, bad)) => {
                tracing::warn!(entries = good, dropped = bad, "disk cache verified; damaged entries dropped")
            }
            Err(e) => tracing::warn!(error = %e, "disk cache verification stopped"),
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start disk cache verification; entries are still verified on read");
    }
}
