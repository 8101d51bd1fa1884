//! Follows Orthanc's `/changes`: warms new stable studies/series, drops entries of changed instances.
//! The last sequence number lives in the disk tier, so restarts do not re-warm everything.

use std::sync::Arc;
use std::time::Duration;

use super::Warmer;
use crate::cache::DiskCache;
use crate::ids::OrthancId;
use crate::model::Level;
use crate::previews::PreviewService;
use crate::upstream::catalog::Catalog;
use crate::upstream::OrthancClient;

const SEQ_KEY: &str = "changes-seq";
const BATCH: u32 = 100;

#[derive(Clone)]
pub struct Follower {
    pub warmer: Warmer,
    pub previews: PreviewService,
    pub catalog: Catalog,
    pub upstream: OrthancClient,
    pub disk: Arc<DiskCache>,
    pub presets: Vec<String>,
    pub poll: Duration,
}

impl Follower {
    /// Run until the task is dropped.
    pub async fn run(self) {
        let mut since = match self.load_seq().await {
            Some(seq) => seq,
            // First start: begin at Orthanc's current position, not its whole history.
            None => loop {
                match self.upstream.last_change_seq().await {
                    Ok(seq) => {
                        self.store_seq(seq).await;
                        break seq;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "changes follower: cannot read Orthanc's position");
                        tokio::time::sleep(self.poll).await;
                    }
                }
            },
        };
        tracing::info!(since, "following Orthanc /changes");
        loop {
            match self.upstream.changes(since, BATCH).await {
                Ok(page) => {
                    for change in &page.changes {
                        self.apply(&change.change_type, &change.id).await;
                    }
                    if page.last > since {
                        since = page.last;
                        self.store_seq(since).await;
                    }
                    if page.done {
                        tokio::time::sleep(self.poll).await;
                    }
                }
                Err(e) => {
                    // Orthanc restarting or down: keep the position, try again later.
                    tracing::warn!(error = %e, "changes follower: /changes failed");
                    tokio::time::sleep(self.poll).await;
                }
            }
        }
    }

    async fn apply(&self, change_type: &str, id: &str) {
        let Some(id) = OrthancId::parse(id) else { return };
        match change_type {
            "StableStudy" => {
                self.catalog.forget(&id).await;
                let p = self.warmer.warm_now(vec![id], vec![], self.presets.clone()).await;
                tracing::info!(done = p.done, failed = p.failed, "warmed a new stable study");
            }
            "StableSeries" => {
                self.catalog.forget(&id).await;
                self.warmer.warm_now(vec![], vec![id], self.presets.clone()).await;
            }
            "UpdatedAttachment" => {
                if let Err(e) = self.previews.purge(Level::Instance, &id).await {
                    tracing::warn!(error = %e, "changes follower: purge failed");
                }
            }
            _ => {}
        }
    }

    async fn load_seq(&self) -> Option<u64> {
        let disk = self.disk.clone();
        tokio::task::spawn_blocking(move || disk.state_get(SEQ_KEY)).await.ok()?.ok()?
    }

    async fn store_seq(&self, seq: u64) {
        let disk = self.disk.clone();
        let stored = tokio::task::spawn_blocking(move || disk.state_put(SEQ_KEY, seq)).await;
        if !matches!(stored, Ok(Ok(()))) {
            tracing::warn!("changes follower: could not store its position");
        }
    }
}
