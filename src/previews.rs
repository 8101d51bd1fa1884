//! The get-or-make service: request → cache key → memory → disk → single flight → Orthanc → store.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{CacheKey, CacheStatus, Entry, TieredCache};
use crate::error::AppError;
use crate::ids::OrthancId;
use crate::upstream::{ImageFormat, OrthancClient, UpstreamError};

/// What to make: one frame of one instance, in one encoding. Built only from validated input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewSpec {
    pub instance: OrthancId,
    pub frame: u32,
    pub format: ImageFormat,
    /// JPEG quality passed to Orthanc; `None` = Orthanc's default.
    pub quality: Option<u8>,
}

impl PreviewSpec {
    pub fn cache_key(&self) -> CacheKey {
        let variant = match (self.format, self.quality) {
            (ImageFormat::Jpeg, Some(q)) => format!("jpeg.q{q}"),
            (f, _) => f.name().to_owned(),
        };
        CacheKey {
            instance: self.instance.clone(),
            frame: self.frame,
            variant,
        }
    }
}

/// A response-ready image and where it came from.
#[derive(Debug, Clone)]
pub struct Served {
    pub entry: Arc<Entry>,
    pub status: CacheStatus,
}

#[derive(Clone)]
pub struct PreviewService {
    cache: TieredCache,
    upstream: OrthancClient,
    /// (instance, frame) pairs Orthanc recently answered 404 for.
    not_found: Option<moka::future::Cache<(OrthancId, u32), ()>>,
}

impl PreviewService {
    pub fn new(cache: TieredCache, upstream: OrthancClient, negative_ttl: Duration) -> Self {
        let not_found = (!negative_ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(negative_ttl)
                .build()
        });
        Self {
            cache,
            upstream,
            not_found,
        }
    }

    pub async fn get(&self, spec: &PreviewSpec) -> Result<Served, AppError> {
        let miss_key = (spec.instance.clone(), spec.frame);
        if let Some(nf) = &self.not_found {
            if nf.contains_key(&miss_key) {
                return Err(UpstreamError::NotFound.into());
            }
        }
        let upstream = self.upstream.clone();
        let fetch = spec.clone();
        let span = tracing::Span::current();
        let result = self
            .cache
            .get_or_fill(&spec.cache_key(), move || async move {
                let img = upstream
                    .preview(&fetch.instance, fetch.frame, fetch.format, fetch.quality)
                    .await?;
                span.record("upstream_ms", img.elapsed.as_millis() as u64);
                Ok(Entry::new(img.format.mime(), img.body))
            })
            .await;
        match result {
            Ok((entry, status)) => Ok(Served { entry, status }),
            Err(AppError::Upstream(UpstreamError::NotFound)) => {
                if let Some(nf) = &self.not_found {
                    nf.insert(miss_key, ()).await;
                }
                Err(UpstreamError::NotFound.into())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_keys_are_canonical() {
        let id = OrthancId::parse("8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe").unwrap();
        let spec = |format, quality| PreviewSpec {
            instance: id.clone(),
            frame: 0,
            format,
            quality,
        };
        assert_eq!(spec(ImageFormat::Png, None).cache_key().variant, "png");
        assert_eq!(spec(ImageFormat::Png, Some(50)).cache_key().variant, "png");
        assert_eq!(spec(ImageFormat::Jpeg, None).cache_key().variant, "jpeg");
        assert_eq!(
            spec(ImageFormat::Jpeg, Some(50)).cache_key().variant,
            "jpeg.q50"
        );
    }
}
