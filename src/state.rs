//! Shared application state: cheap-to-clone handles built once at start-up.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderValue;

use crate::auth::Authenticator;
use crate::cache::{DiskCache, MemoryCache, TieredCache};
use crate::config::Config;
use crate::http::Cors;
use crate::previews::PreviewService;
use crate::upstream::OrthancClient;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub upstream: OrthancClient,
    pub cache: TieredCache,
    pub previews: PreviewService,
    pub auth: Authenticator,
    pub cache_control: HeaderValue,
    pub cors: Cors,
}

impl AppState {
    /// Open caches and build clients. Blocking (opens sled): call before the server starts.
    pub fn build(config: Config) -> anyhow::Result<Self> {
        let password = config.orthanc_password()?;
        let upstream = OrthancClient::new(&config.orthanc, &password)?;
        let disk = Arc::new(DiskCache::open(&config.cache.dir, config.cache.disk_bytes)?);
        let memory = MemoryCache::new(config.cache.memory_bytes);
        let cache = TieredCache::new(
            memory,
            disk,
            Duration::from_millis(config.server.flight_wait_ms),
        );
        let previews = PreviewService::new(
            cache.clone(),
            upstream.clone(),
            Duration::from_secs(config.cache.negative_ttl_s),
        );
        let auth = Authenticator::from_config(&config, upstream.clone())?;
        let cache_control = HeaderValue::from_str(&config.http.cache_control)?;
        let cors = Cors::from_config(&config.cors);
        Ok(Self {
            config: Arc::new(config),
            upstream,
            cache,
            previews,
            auth,
            cache_control,
            cors,
        })
    }
}
