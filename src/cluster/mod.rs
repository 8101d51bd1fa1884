//! Edges that behave as one cache: who owns an instance, who is up, and how edges ask each other.
//!
//! Every instance has one owner among the live peers ([`ring`]: rendezvous hashing of its id),
//! so every variant of it lives on one edge. An edge that does not hold an image asks the owner
//! (`PreviewService` does, in its flight leader) instead of Orthanc; the owner serves it as a
//! local request and never asks anyone else, so views of the membership that differ for a moment
//! cost at most one extra hop, never a loop. A peer that cannot be reached is marked down for
//! `cluster.down_ms`: the asker serves on its own, and ownership moves to the next peer.
//!
//! Membership is the static `cluster.peers` list or the addresses `cluster.peers_dns` resolves to
//! (a headless Service), re-resolved and probed every `cluster.probe_ms`. Peers talk on their own
//! listener (`cluster.listen`, `http::peer`), and every request carries the shared secret.

mod client;
mod conn;
pub mod ring;
pub mod wire;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use crate::config::{Config, Secret};
use crate::ids::OrthancId;
use crate::sync::{LockExt, RwLockExt};

pub use client::{PeerFailure, PeerImage};

/// The key whose owner follows Orthanc's `/changes`: one edge at a time, handed over when the
/// membership changes.
pub const FOLLOWER_KEY: &str = "orthanc-edge/changes-follower";

/// A handle on the cluster; [`Cluster::off`] when `[cluster]` is not configured (then every
/// instance is this edge's own).
#[derive(Clone, Default)]
pub struct Cluster(Option<Arc<Inner>>);

struct Inner {
    /// This edge's peer URL, as in the member list (no trailing slash).
    me: String,
    /// Every edge's peer URL, this one's included, sorted.
    members: RwLock<Vec<String>>,
    /// `host:port` re-resolved every probe, when membership comes from DNS.
    dns: Option<String>,
    /// Peers marked down, until when (or until they answer a probe).
    down: Mutex<HashMap<String, Instant>>,
    http: conn::Transport,
    secret: Secret,
    /// A peer that does not accept a connection (or a probe) within this is down.
    reach_within: Duration,
    /// What an owner may take to answer: `reach_within` plus what it may itself wait on Orthanc.
    answer_within: Duration,
    down_for: Duration,
    probe_every: Duration,
    copy_ttl: Option<Duration>,
    /// Largest image body accepted from a peer (`orthanc.max_body_bytes`).
    max_body: u64,
    /// Image requests the owner answered from its cache, and those it had to make.
    owner_hits: AtomicU64,
    owner_misses: AtomicU64,
}

/// Peer URLs compare without their trailing slash.
fn normalized(url: &str) -> String {
    url.trim_end_matches('/').to_owned()
}

impl Cluster {
    /// A single edge: no peers.
    pub fn off() -> Self {
        Self(None)
    }

    /// The cluster `config` describes, or [`Cluster::off`] when `[cluster]` names no peers.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let c = &config.cluster;
        let Some(secret) = config.cluster_secret()? else { return Ok(Self::off()) };
        let me = normalized(&c.self_url);
        let mut members: Vec<String> = c.peers.iter().map(|p| normalized(p)).collect();
        if !members.contains(&me) {
            members.push(me.clone());
        }
        members.sort();
        members.dedup();
        let reach_within = Duration::from_millis(c.peer_timeout_ms);
        let owner_waits = config.orthanc.timeout_ms.max(config.server.flight_wait_ms);
        let http = conn::Transport::new(reach_within, Duration::from_secs(config.server.keep_alive_s));
        Ok(Self(Some(Arc::new(Inner {
            me,
            members: RwLock::new(members),
            dns: (!c.peers_dns.is_empty()).then(|| c.peers_dns.clone()),
            down: Mutex::default(),
            http,
            secret,
            reach_within,
            answer_within: reach_within + Duration::from_millis(owner_waits),
            down_for: Duration::from_millis(c.down_ms),
            probe_every: Duration::from_millis(c.probe_ms),
            copy_ttl: (c.copy_ttl_s > 0).then(|| Duration::from_secs(c.copy_ttl_s)),
            max_body: config.orthanc.max_body_bytes,
            owner_hits: AtomicU64::new(0),
            owner_misses: AtomicU64::new(0),
        }))))
    }

    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// The owner of `instance` when it is another edge that is up; `None` when it is this one
    /// (or the cluster is off).
    pub fn remote_owner(&self, instance: &OrthancId) -> Option<String> {
        let inner = self.0.as_ref()?;
        let owner = inner.owner_of(instance.as_str())?;
        (owner != inner.me).then_some(owner)
    }

    /// Does this edge own `key` among the live peers? Always, when the cluster is off.
    pub fn leads(&self, key: &str) -> bool {
        self.0.as_ref().is_none_or(|inner| inner.owner_of(key).is_none_or(|o| o == inner.me))
    }

    /// Every other edge, up or not (purges try them all).
    pub fn others(&self) -> Vec<String> {
        let Some(inner) = &self.0 else { return Vec::new() };
        inner.members.read_locked().iter().filter(|m| **m != inner.me).cloned().collect()
    }

    /// How long a copy of another edge's image is kept in the memory tier (`None`: not at all).
    pub fn copy_ttl(&self) -> Option<Duration> {
        self.0.as_ref().and_then(|i| i.copy_ttl)
    }

    /// Is `given` the cluster secret? Constant time in its contents; false when the cluster is off.
    pub fn secret_matches(&self, given: &[u8]) -> bool {
        self.0.as_ref().is_some_and(|i| bool::from(i.secret.expose().as_bytes().ct_eq(given)))
    }

    /// Peers (this edge included) up and down now, for metrics.
    pub fn peer_counts(&self) -> (u64, u64) {
        let Some(inner) = &self.0 else { return (0, 0) };
        let members = inner.members.read_locked().clone();
        let down = members.iter().filter(|m| inner.is_down(m)).count() as u64;
        (members.len() as u64 - down, down)
    }

    /// Of the image requests this edge sent to owners, the share the owner had cached.
    pub fn owner_hit_ratio(&self) -> Option<f64> {
        let inner = self.0.as_ref()?;
        let (h, m) = (inner.owner_hits.load(Ordering::Relaxed), inner.owner_misses.load(Ordering::Relaxed));
        (h + m > 0).then(|| h as f64 / (h + m) as f64)
    }

    /// Re-resolve `peers_dns` and probe every peer, every `cluster.probe_ms`, until the runtime stops.
    pub fn spawn_probes(&self) {
        let Some(inner) = self.0.clone() else { return };
        tokio::spawn(async move {
            let this = Cluster(Some(inner.clone()));
            loop {
                if let Some(dns) = &inner.dns {
                    inner.resolve(dns).await;
                }
                let probes = this.others().into_iter().map(|peer| {
                    let this = this.clone();
                    async move {
                        match this.health(&peer).await {
                            Err(why) => this.mark_down(&peer, &why),
                            // Up again (or up at last: edges started together probe each other
                            // before all have bound their peer port).
                            Ok(()) => this.mark_up(&peer),
                        }
                    }
                });
                futures_util::future::join_all(probes).await;
                tokio::time::sleep(inner.probe_every).await;
            }
        });
    }

    /// `peer` answered a probe: it owns its instances again.
    fn mark_up(&self, peer: &str) {
        let Some(inner) = &self.0 else { return };
        let was_down = inner.down.locked().remove(peer).is_some_and(|until| until > Instant::now());
        if was_down {
            tracing::info!(peer, "peer up again");
        }
    }

    /// `peer` failed to answer: ownership moves off it for `cluster.down_ms`, or until it
    /// answers a probe.
    fn mark_down(&self, peer: &str, why: &str) {
        let Some(inner) = &self.0 else { return };
        let until = Instant::now() + inner.down_for;
        let was_up = inner.down.locked().insert(peer.to_owned(), until).is_none_or(|t| t <= Instant::now());
        if was_up {
            tracing::warn!(
                peer,
                error = why,
                down_ms = inner.down_for.as_millis() as u64,
                "peer marked down"
            );
        }
    }
}

impl Inner {
    fn is_down(&self, peer: &str) -> bool {
        peer != self.me && self.down.locked().get(peer).is_some_and(|until| *until > Instant::now())
    }

    /// The owner of `key` among the members that are up.
    fn owner_of(&self, key: &str) -> Option<String> {
        let members = self.members.read_locked();
        let down = self.down.locked();
        let now = Instant::now();
        let live = members
            .iter()
            .filter(|m| **m == self.me || down.get(*m).is_none_or(|until| *until <= now))
            .map(String::as_str);
        ring::owner(live, key).map(str::to_owned)
    }

    /// The members are the addresses `dns` resolves to (and this edge, which may not be ready
    /// yet and so not published); a failed lookup keeps the last list.
    async fn resolve(&self, dns: &str) {
        let port = dns.rsplit_once(':').map_or("", |(_, p)| p);
        match tokio::net::lookup_host(dns).await {
            Ok(addrs) => {
                let mut members: Vec<String> = addrs.map(|a| format!("http://{a}")).collect();
                members.push(self.me.clone());
                members.sort();
                members.dedup();
                let mut held = self.members.write_locked();
                if *held != members {
                    tracing::info!(peers = members.len(), port, "cluster membership changed");
                    *held = members;
                }
            }
            Err(e) => {
                tracing::warn!(dns, error = %e, "cannot resolve cluster.peers_dns; keeping the last peers")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(peers: &[&str], me: &str) -> Cluster {
        let mut config =
            Config::load_from(None, [("ORTHANC_EDGE__ORTHANC__PASSWORD".to_owned(), "pw".to_owned())].into())
                .expect("defaults load");
        config.cluster.self_url = me.to_owned();
        config.cluster.peers = peers.iter().map(|p| p.to_string()).collect();
        if peers.is_empty() {
            config.cluster.peers_dns = "localhost:9722".to_owned();
        }
        config.cluster.secret = Some(Secret::new("s".repeat(32)));
        Cluster::from_config(&config).unwrap()
    }

    #[test]
    fn every_edge_agrees_on_owners_and_a_down_peer_owns_nothing() {
        let peers = ["http://a:1", "http://b:1/", "http://c:1"];
        let edges: Vec<Cluster> = peers.iter().map(|me| cluster(&peers, me)).collect();
        let id = |n: u32| OrthancId::parse(&format!("{n:08x}-00000000-00000000-00000000-00000000")).unwrap();
        let mut remote = 0;
        for n in 0..300 {
            let owners: Vec<bool> = edges.iter().map(|e| e.remote_owner(&id(n)).is_none()).collect();
            assert_eq!(owners.iter().filter(|o| **o).count(), 1, "exactly one edge owns {n}");
            remote += usize::from(edges[0].remote_owner(&id(n)).is_some());
        }
        assert!((150..=250).contains(&remote), "a owns about a third: {remote} of 300 are remote");
        edges[0].mark_down("http://b:1", "test");
        for n in 0..300 {
            assert_ne!(edges[0].remote_owner(&id(n)).as_deref(), Some("http://b:1"));
        }
        assert_eq!(edges[0].peer_counts(), (2, 1));
        assert_eq!(edges.iter().filter(|e| e.leads(FOLLOWER_KEY)).count(), 1, "one follower");
    }

    #[tokio::test]
    async fn peers_dns_members_are_the_resolved_addresses_and_this_edge() {
        let c = cluster(&[], "http://127.0.0.9:9722");
        let inner = c.0.as_ref().unwrap();
        inner.resolve("localhost:9722").await;
        let members = inner.members.read().unwrap().clone();
        assert!(members.contains(&"http://127.0.0.1:9722".to_owned()), "{members:?}");
        assert!(
            members.contains(&"http://127.0.0.9:9722".to_owned()),
            "this edge, not yet published: {members:?}"
        );
        // A name that does not resolve keeps the last list.
        inner.resolve("no-such-host.invalid:9722").await;
        assert_eq!(*inner.members.read().unwrap(), members);
    }

    #[test]
    fn the_secret_must_match_exactly() {
        let c = cluster(&["http://a:1"], "http://a:1");
        assert!(c.secret_matches("s".repeat(32).as_bytes()));
        assert!(!c.secret_matches("s".repeat(31).as_bytes()));
        assert!(!c.secret_matches(b""));
        assert!(!Cluster::off().secret_matches(b""));
        assert!(Cluster::off().leads(FOLLOWER_KEY));
    }
}
