//! Requests to other edges' peer listeners: every one carries the secret and a deadline, and a
//! peer that cannot be reached is marked down.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::conn::{Outgoing, Reply};
use super::wire::{
    Dropped, ImageRequest, PositionRequest, PurgeRequest, WarmRequest, Warmed, WireError, ERROR_STATUS,
    OWNER_CACHE_HEADER, SECRET_HEADER,
};
use super::{Cluster, Inner};
use crate::cache::Entry;
use crate::previews::PreviewError;
use crate::telemetry::metrics;

/// Why a peer gave no answer to use.
#[derive(Debug)]
pub enum PeerFailure {
    /// It could not be reached, timed out, or answered what a peer does not (it is now marked
    /// down): serve on our own.
    Unreachable(String),
    /// The owner answered with an error (a 404 from Orthanc, a spent budget, ...): that is the answer.
    Answer(PreviewError),
}

/// An image from its owner, verified against its ETag.
#[derive(Debug)]
pub struct PeerImage {
    pub entry: Entry,
    /// The owner had it cached (false: made for this request).
    pub owner_hit: bool,
}

impl Cluster {
    fn inner(&self) -> Result<&Inner, PeerFailure> {
        self.0.as_deref().ok_or_else(|| PeerFailure::Unreachable("the cluster is off".into()))
    }

    /// One request to `peer`'s `path`; `within` bounds the whole exchange.
    async fn call(
        &self,
        op: &'static str,
        method: &'static str,
        peer: &str,
        path: &str,
        body: Option<&impl Serialize>,
        within: Duration,
    ) -> Result<Reply, PeerFailure> {
        let inner = self.inner()?;
        let json = match body.map(serde_json::to_vec).transpose() {
            Ok(json) => json,
            Err(e) => return Err(PeerFailure::Unreachable(format!("peer request body: {e}"))),
        };
        let out = Outgoing { method, path, secret: (SECRET_HEADER, inner.secret.expose()), json };
        let sent = match tokio::time::timeout(within, inner.http.send(peer, &out, inner.max_body)).await {
            Ok(sent) => sent,
            Err(_) => Err("timed out".to_owned()),
        };
        match sent {
            Ok(answer) if (200..300).contains(&answer.status) || answer.status == ERROR_STATUS => Ok(answer),
            Ok(answer) => {
                let why = format!("peer answered {}", answer.status);
                metrics::peer_request(op, "refused");
                self.mark_down(peer, &why);
                Err(PeerFailure::Unreachable(why))
            }
            Err(why) => {
                metrics::peer_request(op, "unreachable");
                self.mark_down(peer, &why);
                Err(PeerFailure::Unreachable(why))
            }
        }
    }

    /// `answer` (from `peer`) read as `T` when 200, as the owner's error when 422.
    fn read_json<T: DeserializeOwned>(
        &self,
        op: &'static str,
        peer: &str,
        answer: Reply,
    ) -> Result<T, PeerFailure> {
        let parsed = if answer.status == ERROR_STATUS {
            serde_json::from_slice::<WireError>(&answer.body).map(|e| Err(PeerFailure::Answer(e.into())))
        } else {
            serde_json::from_slice::<T>(&answer.body).map(Ok)
        };
        match parsed {
            Ok(Ok(v)) => {
                metrics::peer_request(op, "ok");
                Ok(v)
            }
            Ok(Err(e)) => {
                metrics::peer_request(op, "error");
                Err(e)
            }
            Err(e) => {
                metrics::peer_request(op, "refused");
                let why = format!("unreadable peer answer: {e}");
                self.mark_down(peer, &why);
                Err(PeerFailure::Unreachable(why))
            }
        }
    }

    /// `GET /peer/v1/health`: is the peer there and does it take our secret?
    pub(super) async fn health(&self, peer: &str) -> Result<(), String> {
        let within = self.inner().map_err(|_| "off".to_owned())?.reach_within;
        match self.call("health", "GET", peer, "/peer/v1/health", None::<&()>, within).await {
            Ok(_) => Ok(()),
            Err(PeerFailure::Unreachable(why)) => Err(why),
            Err(PeerFailure::Answer(e)) => Err(e.to_string()),
        }
    }

    /// One image from its owner `peer`.
    pub async fn image(&self, peer: &str, req: &ImageRequest) -> Result<PeerImage, PeerFailure> {
        let inner = self.inner()?;
        let answer =
            self.call("image", "POST", peer, "/peer/v1/image", Some(req), inner.answer_within).await?;
        if answer.status == ERROR_STATUS {
            // Always an error: the owner's, or why its answer could not be read.
            return Err(match self.read_json::<serde::de::IgnoredAny>("image", peer, answer) {
                Err(e) => e,
                Ok(_) => PeerFailure::Unreachable("an error answer without an error".into()),
            });
        }
        // The owner made the ETag from these bytes, and exactly Content-Length of them were
        // read: hashing them again here cost more than the rest of the hop for a full preview.
        let etag = answer.header("etag");
        if !Entry::is_etag(etag) {
            metrics::peer_request("image", "refused");
            return Err(PeerFailure::Unreachable(format!("an image without a valid ETag: {etag:?}")));
        }
        let entry = Entry {
            content_type: answer.header("content-type").to_owned(),
            created: answer.header("x-entry-created").parse().unwrap_or(0),
            etag: etag.to_owned(),
            body: answer.body.clone(),
        };
        let owner_hit = answer.header(OWNER_CACHE_HEADER) == "hit";
        let counter = if owner_hit { &inner.owner_hits } else { &inner.owner_misses };
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::peer_request("image", if owner_hit { "hit" } else { "miss" });
        Ok(PeerImage { entry, owner_hit })
    }

    /// Every variant of an instance, made (or found) by its owner `peer`.
    pub async fn warm(
        &self,
        peer: &str,
        req: &WarmRequest,
    ) -> Result<Vec<Result<Warmed, PreviewError>>, PeerFailure> {
        // Each variant may wait for Orthanc in turn.
        let within = self.inner()?.answer_within * (req.variants.len().max(1) as u32);
        let answer = self.call("warm", "POST", peer, "/peer/v1/warm", Some(req), within).await?;
        let results: Vec<Result<Warmed, WireError>> = self.read_json("warm", peer, answer)?;
        Ok(results.into_iter().map(|r| r.map_err(PreviewError::from)).collect())
    }

    /// Drop instances on `peer`; `Err` names why it could not be asked.
    pub async fn purge(&self, peer: &str, req: &PurgeRequest) -> Result<Dropped, String> {
        let within = self.inner().map_err(|_| "off".to_owned())?.answer_within;
        let answer = self.call("purge", "POST", peer, "/peer/v1/purge", Some(req), within).await;
        match answer.and_then(|a| self.read_json("purge", peer, a)) {
            Ok(dropped) => Ok(dropped),
            Err(PeerFailure::Unreachable(why)) => Err(why),
            Err(PeerFailure::Answer(e)) => Err(e.to_string()),
        }
    }

    /// A warm-up job this edge does not hold, from whichever peer does: its progress (`GET`), or
    /// its progress once cancelled (`DELETE`).
    pub async fn job(&self, method: &'static str, id: &str) -> Option<serde_json::Value> {
        let within = self.inner().ok()?.reach_within;
        let path = format!("/peer/v1/warm/{id}");
        let asks = self.others().into_iter().map(|peer| {
            let path = path.clone();
            async move {
                let answer = self.call("job", method, &peer, &path, None::<&()>, within).await.ok()?;
                self.read_json::<Option<serde_json::Value>>("job", &peer, answer).ok().flatten()
            }
        });
        futures_util::future::join_all(asks).await.into_iter().flatten().next()
    }

    /// Tell every other edge how far the /changes follower got, so whoever follows next resumes there.
    pub async fn broadcast_position(&self, seq: u64) {
        let Ok(inner) = self.inner() else { return };
        let within = inner.reach_within;
        let body = PositionRequest { seq };
        let tells = self.others().into_iter().map(|peer| async move {
            let _ = self.call("position", "POST", &peer, "/peer/v1/position", Some(&body), within).await;
        });
        futures_util::future::join_all(tells).await;
    }
}
