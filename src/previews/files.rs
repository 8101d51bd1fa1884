//! Stored files fetched in the last seconds (`RecentFiles`), so that the frames of one
//! multi-frame instance, decoded at the edge one by one, cost Orthanc one `GET /file`, not one per
//! frame; concurrent requests for the same file share one fetch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::ids::OrthancId;
use crate::upstream::{OrthancClient, Priority, UpstreamError};

/// How long a fetched file is kept: long enough for a viewer scrolling the frames or a warm-up
/// job going through them, short enough that memory holds only files in use.
const KEEP: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct RecentFiles {
    files: moka::future::Cache<OrthancId, Bytes>,
}

impl RecentFiles {
    /// At most `max_bytes` of files (by their size).
    pub fn new(max_bytes: u64) -> Self {
        let files = moka::future::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_, v: &Bytes| u32::try_from(v.len()).unwrap_or(u32::MAX))
            .time_to_live(KEEP)
            .build();
        Self { files }
    }

    /// The stored file of `instance`, and the time this call spent on Orthanc (zero when the
    /// file was recent, or fetched by another request meanwhile).
    pub async fn get(
        &self,
        upstream: &OrthancClient,
        instance: &OrthancId,
        priority: Priority,
    ) -> Result<(Bytes, Duration), UpstreamError> {
        let started = Instant::now();
        let mut fetched = false;
        let file = self
            .files
            .try_get_with(instance.clone(), async {
                fetched = true;
                upstream.file(instance, priority).await.map(|(file, _)| file)
            })
            .await
            .map_err(|e: Arc<UpstreamError>| (*e).clone())?;
        Ok((file, if fetched { started.elapsed() } else { Duration::ZERO }))
    }

    /// Drop the file of `instance` (a purge).
    pub async fn forget(&self, instance: &OrthancId) {
        self.files.invalidate(instance).await;
    }
}
