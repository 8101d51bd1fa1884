//! Orthanc's hierarchy as authorization needs it: parents and UIDs of ids, ids of UIDs, asked once and cached; lineage-checked DICOMweb targets.

use std::sync::Arc;

use super::hot::Hot;
use super::{AuthError, ResourceSet};
use crate::ids::OrthancId;
use crate::model::Level;
use crate::upstream::model::Node;
use crate::upstream::{OrthancClient, UpstreamError};

/// Parents and UIDs never change (Orthanc ids are hashes of the DICOM UIDs), so entries never
/// expire; they are only evicted for size.
const ENTRIES: u64 = 500_000;
/// Lineages each worker thread keeps in front of the shared cache (a few thousand studies' worth
/// of instances; ~200 bytes each).
const HOT_LINEAGES: usize = 16_384;

/// Where an instance sits.
#[derive(Debug)]
pub struct Lineage {
    pub series: OrthancId,
    pub study: OrthancId,
}

/// A resource and the resources above it, with their DICOM UIDs where Orthanc has them: what a
/// delegated validator is told. Ordered from the resource itself up to its study.
#[derive(Debug, Clone, Default)]
pub struct Described {
    pub nodes: Vec<(Level, OrthancId, Option<String>)>,
}

#[derive(Clone)]
pub struct Parents {
    upstream: OrthancClient,
    /// (level, id) → parent id and UID: one Orthanc request per resource, shared by its children.
    nodes: moka::future::Cache<(Level, OrthancId), Arc<Node>>,
    /// (level, DICOM UID) → Orthanc id.
    uids: moka::future::Cache<(Level, String), OrthancId>,
    /// instance → its series and study: what checking a scoped credential (a JWT's studies, a
    /// validator's allowed studies) needs on every request, in one lookup keyed by the id as
    /// given (no key copy) instead of two `nodes` lookups.
    lineages: moka::future::Cache<OrthancId, Arc<Lineage>>,
    /// Each worker thread's copies of `lineages` (they never change, see `hot`).
    hot_lineages: Arc<Hot<OrthancId, Arc<Lineage>>>,
}

fn unshare(e: Arc<UpstreamError>) -> UpstreamError {
    (*e).clone()
}

impl Parents {
    pub fn new(upstream: OrthancClient) -> Self {
        Self {
            upstream,
            nodes: moka::future::Cache::new(ENTRIES),
            uids: moka::future::Cache::new(ENTRIES / 10),
            lineages: moka::future::Cache::new(ENTRIES),
            hot_lineages: Arc::new(Hot::new(HOT_LINEAGES)),
        }
    }

    /// The parent and UID of one resource (concurrent first lookups share the Orthanc request).
    ///
    /// A cached answer is a plain `get`; the shared fetch is boxed: moka's `try_get_with`
    /// future with Orthanc's request in it is kilobytes, and unboxed it would sit in the future
    /// of every authorization, moved with it on every request (see `a_preview_future_holds_no_miss_path`).
    async fn node(&self, level: Level, id: &OrthancId) -> Result<Arc<Node>, UpstreamError> {
        let key = (level, id.clone());
        if let Some(node) = self.nodes.get(&key).await {
            return Ok(node);
        }
        let up = &self.upstream;
        Box::pin(self.nodes.try_get_with(key, async move { up.node(level, id).await.map(Arc::new) }))
            .await
            .map_err(unshare)
    }

    async fn parent(&self, level: Level, id: &OrthancId) -> Result<OrthancId, UpstreamError> {
        self.node(level, id)
            .await?
            .parent
            .clone()
            .ok_or_else(|| UpstreamError::BadResponse(format!("{} without a parent", level.as_str())))
    }

    /// The series and study of `instance`.
    pub async fn lineage(&self, instance: &OrthancId) -> Result<Arc<Lineage>, UpstreamError> {
        if let Some(l) = self.hot_lineages.get(instance) {
            return Ok(l);
        }
        let l = match self.lineages.get(instance).await {
            Some(l) => l,
            None => {
                let series = self.parent(Level::Instance, instance).await?;
                let study = self.parent(Level::Series, &series).await?;
                let l = Arc::new(Lineage { series, study });
                Box::pin(self.lineages.insert(instance.clone(), l.clone())).await;
                l
            }
        };
        self.hot_lineages.put(instance.clone(), l.clone(), None);
        Ok(l)
    }

    /// The Orthanc id of a DICOM UID of the given level (`NotFound` when Orthanc knows none).
    /// A cached answer is a plain `get`, the shared fetch boxed (as in `node`).
    pub async fn resolve_uid(&self, level: Level, uid: &str) -> Result<OrthancId, UpstreamError> {
        let key = (level, uid.to_owned());
        if let Some(id) = self.uids.get(&key).await {
            return Ok(id);
        }
        let up = &self.upstream;
        Box::pin(self.uids.try_get_with(key, async move {
            let hits = up.lookup(uid).await?;
            let hit = hits.iter().find(|h| h.kind == level.orthanc_type()).ok_or(UpstreamError::NotFound)?;
            OrthancId::parse(&hit.id)
                .ok_or_else(|| UpstreamError::BadResponse("Orthanc answered a malformed id".into()))
        }))
        .await
        .map_err(unshare)
    }

    /// A DICOMweb path's UIDs resolved, with the lineage the path states checked: the series is in
    /// the study, the instance in the series. `NotFound` when a UID is unknown or the lineage
    /// differs. Answers the deepest level given: the study, the series or the instance.
    pub async fn resolve_dicom(
        &self,
        study_uid: &str,
        series_uid: Option<&str>,
        instance_uid: Option<&str>,
    ) -> Result<(Level, OrthancId), UpstreamError> {
        let study = self.resolve_uid(Level::Study, study_uid).await?;
        let Some(series_uid) = series_uid else {
            // A study alone; an instance without its series names no lineage to check.
            return match instance_uid {
                None => Ok((Level::Study, study)),
                Some(_) => Err(UpstreamError::NotFound),
            };
        };
        let series = self.resolve_uid(Level::Series, series_uid).await?;
        if self.parent(Level::Series, &series).await? != study {
            return Err(UpstreamError::NotFound);
        }
        let Some(uid) = instance_uid else {
            return Ok((Level::Series, series));
        };
        let instance = self.resolve_uid(Level::Instance, uid).await?;
        if self.parent(Level::Instance, &instance).await? != series {
            return Err(UpstreamError::NotFound);
        }
        Ok((Level::Instance, instance))
    }

    /// `id` and its parents with their UIDs, for a validator.
    pub async fn describe(&self, level: Level, id: &OrthancId) -> Result<Described, UpstreamError> {
        let mut out = Described::default();
        let (mut level, mut id) = (level, id.clone());
        loop {
            let node = self.node(level, &id).await?;
            out.nodes.push((level, id, node.uid.clone()));
            let up = match level {
                Level::Instance => Level::Series,
                Level::Series => Level::Study,
                Level::Study => return Ok(out),
            };
            match &node.parent {
                Some(p) => (level, id) = (up, p.clone()),
                None => return Ok(out),
            }
        }
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
                    let study = self.parent(Level::Series, id).await.map_err(not_found_is_out)?;
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

/// A scoped credential learns nothing about ids outside its scope, not even whether they exist.
fn not_found_is_out(e: UpstreamError) -> AuthError {
    match e {
        UpstreamError::NotFound => AuthError::OutOfScope,
        other => AuthError::Upstream(other),
    }
}
