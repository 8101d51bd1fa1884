//! Instance → series → study parents, asked of Orthanc once and cached: what resource-scoped credentials are checked against.

use std::sync::Arc;

use super::{AuthError, ResourceSet};
use crate::ids::OrthancId;
use crate::upstream::{OrthancClient, UpstreamError};

/// Parents never change (Orthanc ids are hashes of the DICOM UIDs), so entries never expire;
/// they are only evicted for size.
const ENTRIES: u64 = 500_000;

#[derive(Clone)]
pub struct Parents {
    upstream: OrthancClient,
    series_of: moka::future::Cache<OrthancId, OrthancId>,
    study_of: moka::future::Cache<OrthancId, OrthancId>,
}

impl Parents {
    pub fn new(upstream: OrthancClient) -> Self {
        Self {
            upstream,
            series_of: moka::future::Cache::new(ENTRIES),
            study_of: moka::future::Cache::new(ENTRIES),
        }
    }

    /// The series of `instance` (concurrent first lookups share one Orthanc request).
    pub async fn series_of(&self, instance: &OrthancId) -> Result<OrthancId, UpstreamError> {
        let up = &self.upstream;
        self.series_of
            .try_get_with_by_ref(instance, async move { up.instance_parent(instance).await })
            .await
            .map_err(|e: Arc<UpstreamError>| (*e).clone())
    }

    /// The study of `series`.
    pub async fn study_of(&self, series: &OrthancId) -> Result<OrthancId, UpstreamError> {
        let up = &self.upstream;
        self.study_of
            .try_get_with_by_ref(series, async move { up.series_parent(series).await })
            .await
            .map_err(|e: Arc<UpstreamError>| (*e).clone())
    }

    /// Is `instance` in `set`: listed itself, or its series, or its study? Looks up only as far
    /// as the set needs. An instance Orthanc does not know is outside every set.
    /// Is `id` (an instance, series or study, as `level` says) inside `set`, directly or
    /// through its series or study?
    pub async fn within(&self, set: &ResourceSet, id: &OrthancId, level: Level) -> Result<(), AuthError> {
        let series = match level {
            Level::Instance => {
                if set.instances.contains(id) {
                    return Ok(());
                }
                if set.series.is_empty() && set.studies.is_empty() {
                    return Err(AuthError::OutOfScope);
                }
                self.series_of(id).await.map_err(not_found_is_out)?
            }
            Level::Series => id.clone(),
            Level::Study => {
                return if set.studies.contains(id) { Ok(()) } else { Err(AuthError::OutOfScope) };
            }
        };
        if set.series.contains(&series) {
            return Ok(());
        }
        if set.studies.is_empty() {
            return Err(AuthError::OutOfScope);
        }
        let study = self.study_of(&series).await.map_err(not_found_is_out)?;
        if set.studies.contains(&study) {
            Ok(())
        } else {
            Err(AuthError::OutOfScope)
        }
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
