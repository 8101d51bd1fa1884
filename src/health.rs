//! Orthanc's health as the edge sees it: readiness (draining, the breaker, one shared ping at most
//! once a second) and the load figures metrics report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::lifecycle::Lifecycle;
use crate::upstream::{Breaker, CircuitState, OrthancClient, UpstreamError, UpstreamStats};

/// How long one ping's answer stands for every probe that follows (unless the circuit changes).
const PING_EVERY: Duration = Duration::from_secs(1);

/// The last ping: when, what Orthanc answered, and the circuit state it was taken under.
struct Ping {
    at: Instant,
    result: Result<(), UpstreamError>,
    circuit: CircuitState,
}

/// What `/readyz` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// `ready`, `degraded` (Orthanc failing after having answered once: still serving the cache),
    /// `unready` (Orthanc never answered with the service credentials) or `draining`.
    pub status: &'static str,
    /// `ok` or the error code of the last ping; `None` while draining (no ping is taken).
    pub orthanc: Option<&'static str>,
    pub circuit: &'static str,
}

impl Readiness {
    /// Should load balancers send traffic here?
    pub fn is_ready(&self) -> bool {
        matches!(self.status, "ready" | "degraded")
    }
}

/// Readiness from state: however many probes arrive, Orthanc sees at most one ping a second
/// (concurrent probes wait for the same ping), plus one when the circuit opens or closes.
#[derive(Clone)]
pub struct Health {
    upstream: OrthancClient,
    lifecycle: Lifecycle,
    last: Arc<tokio::sync::Mutex<Option<Ping>>>,
}

impl Health {
    pub fn new(upstream: OrthancClient, lifecycle: Lifecycle) -> Self {
        Self { upstream, lifecycle, last: Arc::default() }
    }

    /// The circuit breaker in front of Orthanc: its state and counters.
    pub fn breaker(&self) -> &Breaker {
        self.upstream.breaker()
    }

    /// Requests the Orthanc client refused or gave up on: for metrics.
    pub fn upstream_stats(&self) -> &UpstreamStats {
        &self.upstream.stats
    }

    /// Metadata requests to Orthanc (running, waiting for a slot): for metrics.
    pub fn metadata_load(&self) -> (usize, usize) {
        self.upstream.metadata_load()
    }

    pub async fn readiness(&self) -> Readiness {
        let circuit = || self.upstream.breaker().state().as_str();
        if self.lifecycle.is_draining() {
            return Readiness { status: "draining", orthanc: None, circuit: circuit() };
        }
        let orthanc = self.orthanc().await;
        let status = match &orthanc {
            Ok(()) => "ready",
            Err(_) if self.upstream.has_answered() => "degraded",
            Err(_) => "unready",
        };
        Readiness { status, orthanc: Some(orthanc.map_or_else(|e| e.code(), |()| "ok")), circuit: circuit() }
    }

    /// The last ping's answer while it is fresh, else a new ping's (one at a time).
    async fn orthanc(&self) -> Result<(), UpstreamError> {
        let mut last = self.last.lock().await;
        let circuit = self.upstream.breaker().state();
        if let Some(p) = last.as_ref().filter(|p| p.at.elapsed() < PING_EVERY && p.circuit == circuit) {
            return p.result.clone();
        }
        let result = self.upstream.ping().await;
        *last = Some(Ping {
            at: Instant::now(),
            result: result.clone(),
            circuit: self.upstream.breaker().state(),
        });
        result
    }
}
