//! Tiles for instances without pixel data (SR, PDF, ECG, ...): sized like any variant, made once
//! per (kind, variant) and kept in memory, so a grid of reports costs no pool job after the first.

use std::sync::Arc;

use super::PreviewError;
use crate::cache::{CacheStatus, Entry};
use crate::transform::placeholder::{label_for, placeholder};
use crate::transform::{encode, TransformPool, VariantSpec};

/// Side of a placeholder asked for without a size (`/preview` of an SR): a thumbnail's.
const DEFAULT_SIDE: u32 = 256;
/// Tiles kept: kinds × the variants in use.
const KEPT: u64 = 1_000;

#[derive(Clone)]
pub struct Placeholders {
    pool: TransformPool,
    made: moka::future::Cache<(&'static str, VariantSpec), Arc<Entry>>,
}

impl Placeholders {
    pub fn new(pool: TransformPool) -> Self {
        Self { pool, made: moka::future::Cache::new(KEPT) }
    }

    /// The tile of `kind` (`sr`, `pdf`, ...) as `variant`: the box it asks for (a square of the
    /// one side it gives; `DEFAULT_SIDE` without one), in its format.
    pub async fn get(
        &self,
        kind: &'static str,
        variant: &VariantSpec,
    ) -> Result<(Arc<Entry>, CacheStatus), PreviewError> {
        let key = (kind, variant.clone());
        if let Some(entry) = self.made.get(&key).await {
            return Ok((entry, CacheStatus::HitMemory));
        }
        let (width, height) = match (variant.w, variant.h) {
            (Some(w), Some(h)) => (w, h),
            (Some(side), None) | (None, Some(side)) => (side, side),
            (None, None) => (DEFAULT_SIDE, DEFAULT_SIDE),
        };
        let (format, q) = (variant.format, variant.q);
        let body = self
            .pool
            .run(move || encode::encode(&placeholder(&label_for(kind, None), width, height), format, q))
            .await?;
        let entry = Arc::new(Entry::new(format.mime(), body.into()));
        self.made.insert(key, entry.clone()).await;
        Ok((entry, CacheStatus::Miss))
    }
}
