//! What studies and series show: a study's grid of series, the instance that stands for a series, and its thumbnail's URL.

use std::sync::Arc;

use crate::auth::{Minter, Principal, TOKEN_PARAM};
use crate::ids::OrthancId;
use crate::upstream::catalog::{Catalog, SeriesCard, StudyGrid};
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

    /// The instance whose image stands for a study: that of its first series (by series number,
    /// as the grid shows them) with pixel data, else of its first series with any instance.
    pub async fn study_representative(&self, study: &OrthancId) -> Result<OrthancId, UpstreamError> {
        let grid = self.grid(study).await?;
        let with_image = grid.series.iter().find(|c| c.representative.is_some() && c.placeholder.is_none());
        let card = with_image.or_else(|| grid.series.iter().find(|c| c.representative.is_some()));
        card.and_then(|c| c.representative.as_deref())
            .and_then(OrthancId::parse)
            .ok_or(UpstreamError::NotFound)
    }
}

/// Makes thumbnail URLs. A caller holding a session token gets signed links (a short token
/// scoped to that series and bound to that one URL), so `<img>` tags work where cookies do not
/// flow; API-key callers get plain URLs.
pub struct Thumbnails<'a> {
    preset: &'a str,
    /// The minter, whom the links name, and how long they live.
    signer: Option<(&'a Minter, &'a str, u64)>,
}

impl<'a> Thumbnails<'a> {
    /// Thumbnails at `preset` (`grid.thumbnail_preset`) for `principal`; signed when minting is on.
    pub fn new(preset: &'a str, principal: &'a Principal, minter: Option<&'a Minter>) -> Self {
        let signer = minter.and_then(|m| m.on_behalf(principal).map(|(sub, lifetime)| (m, sub, lifetime)));
        Self { preset, signer }
    }

    /// The URL of a series' thumbnail; `None` for a series without images.
    pub fn url(&self, card: &SeriesCard) -> Option<String> {
        card.representative.as_ref()?;
        // Encoded, so that the link's decoded parameter is exactly the preset its binding names.
        let preset: String = url::form_urlencoded::byte_serialize(self.preset.as_bytes()).collect();
        let mut url = format!("/series/{}/preview?preset={preset}", card.id);
        if let Some((minter, sub, lifetime)) = self.signer {
            let series = OrthancId::parse(&card.id)?;
            let token = minter.series_link(sub, lifetime, series, self.preset)?;
            url.push_str(&format!("&{TOKEN_PARAM}={token}"));
        }
        Some(url)
    }
}
