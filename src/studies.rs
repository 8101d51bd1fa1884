//! What studies and series show: a study's grid of series, and the instance that stands for a series.

use std::sync::Arc;

use crate::ids::OrthancId;
use crate::upstream::catalog::{Catalog, StudyGrid};
use crate::upstream::UpstreamError;

/// The listing side of the edge, for the grid routes and for series-level image routes; its
/// answers come from Orthanc's metadata, cached briefly by the catalog.
#[derive(Clone)]
pub struct Studies {
    catalog: Catalog,
}

impl Studies {
    pub fn new(catalog: Catalog) -> Self {
        Self { catalog }
    }

    /// A study's series, ordered by series number, each with its representative instance.
    pub async fn grid(&self, study: &OrthancId) -> Result<Arc<StudyGrid>, UpstreamError> {
        self.catalog.study_grid(study).await
    }

    /// The instance whose image stands for a series (the middle one by `IndexInSeries`).
    pub async fn representative(&self, series: &OrthancId) -> Result<OrthancId, UpstreamError> {
        self.catalog.representative(series).await
    }
}
