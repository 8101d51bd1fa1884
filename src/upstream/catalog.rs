//! Study and series metadata from Orthanc, cached briefly: grids, representative instances, DICOM UID → id.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Serialize;

use super::model::{middle_instance, SeriesInfo};
use super::{OrthancClient, UpstreamError};
use crate::ids::OrthancId;

/// One series as a grid shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeriesCard {
    pub id: String,
    pub modality: Option<String>,
    pub description: Option<String>,
    pub number: Option<i64>,
    pub instances: usize,
    /// The instance whose preview stands for the series (middle by `IndexInSeries`).
    pub representative: Option<String>,
    /// For a series of documents without pixel data (its modality SR, DOC, ECG, ...): their kind
    /// (`sr`, `pdf`, `ecg`, ...); its thumbnail is a placeholder tile (or 415 without them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<&'static str>,
}

/// A study's series, ordered by series number.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StudyGrid {
    pub study: String,
    pub description: Option<String>,
    pub date: Option<String>,
    pub series: Vec<SeriesCard>,
}

type Shared<T> = moka::future::Cache<OrthancId, Arc<T>>;

/// Series whose instance lists a grid asks Orthanc for at once.
const CARD_FETCHES: usize = 8;

#[derive(Clone)]
pub struct Catalog {
    upstream: OrthancClient,
    grids: Shared<StudyGrid>,
    representatives: Shared<OrthancId>,
    series_members: Shared<Vec<OrthancId>>,
}

fn cache<K, V>(ttl: Duration) -> moka::future::Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    moka::future::Cache::builder().max_capacity(10_000).time_to_live(ttl).build()
}

fn unshare(e: Arc<UpstreamError>) -> UpstreamError {
    (*e).clone()
}

fn id_of(s: &str) -> Result<OrthancId, UpstreamError> {
    OrthancId::parse(s).ok_or_else(|| UpstreamError::BadResponse("Orthanc answered a malformed id".into()))
}

impl Catalog {
    pub fn new(upstream: OrthancClient, ttl: Duration) -> Self {
        Self { upstream, grids: cache(ttl), representatives: cache(ttl), series_members: cache(ttl) }
    }

    pub async fn study_grid(&self, study: &OrthancId) -> Result<Arc<StudyGrid>, UpstreamError> {
        let this = self.clone();
        let id = study.clone();
        self.grids
            .try_get_with(study.clone(), async move {
                let info = this.upstream.study(&id).await?;
                let series = this.upstream.study_series(&id).await?;
                // A few series' instance lists at a time, not one after another.
                let mut cards: Vec<SeriesCard> = stream::iter(series.into_iter().map(|s| this.card(s)))
                    .buffered(CARD_FETCHES)
                    .try_collect()
                    .await?;
                cards.sort_by(|a, b| (a.number, &a.description).cmp(&(b.number, &b.description)));
                Ok::<_, UpstreamError>(Arc::new(StudyGrid {
                    study: info.id,
                    description: info.main_dicom_tags.study_description,
                    date: info.main_dicom_tags.study_date,
                    series: cards,
                }))
            })
            .await
            .map_err(unshare)
    }

    /// The representative instance of a series.
    pub async fn representative(&self, series: &OrthancId) -> Result<OrthancId, UpstreamError> {
        let up = self.upstream.clone();
        let id = series.clone();
        let rep = self
            .representatives
            .try_get_with(series.clone(), async move {
                let instances = up.series_instances(&id).await?;
                let middle = middle_instance(&instances).ok_or(UpstreamError::NotFound)?;
                Ok::<_, UpstreamError>(Arc::new(id_of(&middle.id)?))
            })
            .await
            .map_err(unshare)?;
        Ok((*rep).clone())
    }

    /// Every instance of a series (warm-up, purge).
    pub async fn series_instances(&self, series: &OrthancId) -> Result<Arc<Vec<OrthancId>>, UpstreamError> {
        let up = self.upstream.clone();
        let id = series.clone();
        self.series_members
            .try_get_with(series.clone(), async move {
                let list = up.series_instances(&id).await?;
                Ok::<_, UpstreamError>(Arc::new(list.iter().map(|i| id_of(&i.id)).collect::<Result<_, _>>()?))
            })
            .await
            .map_err(unshare)
    }

    /// Every series of a study.
    pub async fn study_series(&self, study: &OrthancId) -> Result<Vec<OrthancId>, UpstreamError> {
        let grid = self.study_grid(study).await?;
        grid.series.iter().map(|s| id_of(&s.id)).collect()
    }

    /// Forget what is known about these resources (after a purge or an Orthanc change).
    pub async fn forget(&self, id: &OrthancId) {
        self.grids.invalidate(id).await;
        self.representatives.invalidate(id).await;
        self.series_members.invalidate(id).await;
    }

    /// One series of a grid. The study listing has instance ids but not their order: the ordered
    /// list is asked for once, and kept as the series' members and representative, which its
    /// thumbnail's request (`/series/{id}/preview`) then finds without asking again.
    async fn card(&self, s: SeriesInfo) -> Result<SeriesCard, UpstreamError> {
        let series_id = id_of(&s.id)?;
        let representative = if s.instances.is_empty() {
            None
        } else {
            let instances = self.upstream.series_instances(&series_id).await?;
            let members: Vec<OrthancId> = instances.iter().map(|i| id_of(&i.id)).collect::<Result<_, _>>()?;
            let middle = middle_instance(&instances).map(|i| id_of(&i.id)).transpose()?;
            if let Some(middle) = &middle {
                self.representatives.insert(series_id.clone(), Arc::new(middle.clone())).await;
            }
            self.series_members.insert(series_id, Arc::new(members)).await;
            middle.map(|m| m.as_str().to_owned())
        };
        let tags = s.main_dicom_tags;
        Ok(SeriesCard {
            id: s.id,
            placeholder: tags.modality.as_deref().and_then(crate::model::no_pixel_kind),
            modality: tags.modality,
            description: tags.series_description,
            number: tags.series_number.as_deref().and_then(|n| n.trim().parse().ok()),
            instances: s.instances.len(),
            representative,
        })
    }
}
