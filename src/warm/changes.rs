//! Follows Orthanc's `/changes`: warms new stable studies/series, drops entries of changed instances.
//! The last sequence number is kept in a [`Position`] file, so restarts do not re-warm everything.

use std::time::Duration;

use super::position::Position;
use super::Warmer;
use crate::cluster::{Cluster, FOLLOWER_KEY};
use crate::ids::OrthancId;
use crate::model::Level;
use crate::previews::PreviewService;
use crate::upstream::catalog::Catalog;
use crate::upstream::OrthancClient;

const BATCH: u32 = 100;

/// A task that stops when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Clone)]
pub struct Follower {
    pub warmer: Warmer,
    pub previews: PreviewService,
    pub catalog: Catalog,
    pub upstream: OrthancClient,
    pub position: Position,
    pub presets: Vec<String>,
    pub poll: Duration,
    /// Only the owner of [`FOLLOWER_KEY`] follows; the others hear its position.
    pub cluster: Cluster,
}

impl Follower {
    /// Follow while this edge owns [`FOLLOWER_KEY`] among the live peers (always, alone): start
    /// when it becomes the owner, stop when another edge does. Runs until the task is dropped.
    pub async fn run_when_leading(self, check_every: Duration) {
        // Aborting this task drops the guard, which stops the follower too.
        let mut running: Option<AbortOnDrop> = None;
        loop {
            let leads = self.cluster.leads(FOLLOWER_KEY);
            match (&running, leads) {
                (None, true) => {
                    tracing::info!("this edge follows Orthanc /changes");
                    running = Some(AbortOnDrop(tokio::spawn(self.clone().run())));
                }
                (Some(_), false) => {
                    tracing::info!("another edge follows Orthanc /changes now");
                    running = None;
                }
                _ => {}
            }
            tokio::time::sleep(check_every).await;
        }
    }

    /// Another edge's follower got to `seq`.
    pub async fn heard(&self, seq: u64) {
        let position = self.position.clone();
        let raised = tokio::task::spawn_blocking(move || position.raise(seq).map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(error) = raised {
            tracing::warn!(%error, "changes follower: could not store the position a peer sent");
        }
    }

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
        let position = self.position.clone();
        tokio::task::spawn_blocking(move || position.load()).await.ok()?
    }

    async fn store_seq(&self, seq: u64) {
        let position = self.position.clone();
        let stored = tokio::task::spawn_blocking(move || position.store(seq).map_err(|e| e.to_string()))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        if let Err(error) = stored {
            tracing::warn!(%error, "changes follower: could not store its position");
        }
        self.cluster.broadcast_position(seq).await;
    }
}
