//! Instance → series → study parents, asked of Orthanc once and cached: what resource-scoped credentials are checked against.

use std::sync::Arc;

use super::{AuthError, ResourceSet};
use crate::ids::OrthancId;
use crate::upstream::{OrthancClient, UpstreamError};

/// Parents never change (Orthanc ids are hashes of the DICOM UIDs), so entries never expire;
/// they are only evicted for size.
const ENTRIES: u64 = 500_000;

/// Where an instance sits.
#[derive(Debug)]
pub struct Lineage {
    pub series: OrthancId,
    pub study: OrthancId,
}

#[derive(Clone)]
pub struct Parents {
    upstream: OrthancClient,
    /// instance → its series and study: one lookup on the hot path.
    lineage: moka::future::Cache<OrthancId, Arc<Lineage>>,
    /// series → study, so the other instances of a series cost one Orthanc request, not two.
    study_of: moka::future::Cache<OrthancId, OrthancId>,
}

impl Parents {
    pub fn new(upstream: OrthancClient) -> Self {
        Self {
            upstream,
            lineage: moka::future::Cache::new(ENTRIES),
            study_of: moka::future::Cache::new(ENTRIES / 10),
        }
    }

    /// The series and study of `instance` (concurrent first lookups share the Orthanc requests).
    pub async fn lineage(&self, instance: &OrthancId) -> Result<Arc<Lineage>, UpstreamError> {
        self.lineage
            .try_get_with_by_ref(instance, async move {
                let series = self.upstream.instance_parent(instance).await?;
                let study = self.study_of(&series).await?;
                Ok(Arc::new(Lineage { series, study }))
            })
            .await
            .map_err(|e: Arc<UpstreamError>| (*e).clone())
    }

    async fn study_of(&self, series: &OrthancId) -> Result<OrthancId, UpstreamError> {
        let up = &self.upstream;
        self.study_of
            .try_get_with_by_ref(series, async move { up.series_parent(series).await })
            .await
            .map_err(|e: Arc<UpstreamError>| (*e).clone())
    }

    /// Is `id` (an instance, series or study, as `level` says) in `set`: listed itself, or its
    /// series, or its study? Looks up only as far as the set needs. An id Orthanc does not know is
    /// outside every set.
    pub async fn within(&self, set: &ResourceSet, id: &OrthancId, level: Level) -> Result<(), AuthError> {
        match level {
            Level::Instance => {
                if set.instances.contains(id) {
                    return Ok(());
                }
                if set.series.is_empty() && set.studies.is_empty() {
                    // Instance-only credentials need no lookup at all.
                    return Err(AuthError::OutOfScope);
                }
                let l = self.lineage(id).await.map_err(not_found_is_out)?;
                if set.series.contains(&l.series) || set.studies.contains(&l.study) {
                    return Ok(());
                }
            }
            Level::Series => {
                if set.series.contains(id) {
                    return Ok(());
                }
                if !set.studies.is_empty() {
                    let study = self.study_of(id).await.map_err(not_found_is_out)?;
                    if set.studies.contains(&study) {
                        return Ok(());
                    }
                }
            }
            Level::Study => {
                if set.studies.contains(id) {
                    return Ok(());
                }
            }
        }
        Err(AuthError::OutOfScope)
    }
}

/// Which kind of resource an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Instance,
    Series,
    Study,
}

/// A scoped credential learns nothing about ids outside its scope, not even whether they exist.
fn not_found_is_out(e: UpstreamError) -> AuthError {
    match e {
        UpstreamError::NotFound => AuthError::OutOfScope,
        other => AuthError::Upstream(other),
    }
}
