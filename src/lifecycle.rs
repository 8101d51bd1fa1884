//! Process lifecycle: the draining flag that readiness and admission read, and the stop signals.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Shared by every handler. Shutdown has two steps: draining (`/readyz` says 503, requests are
/// still served, so load balancers can take the edge out) and refusing (new requests get 503
/// `shutting-down` while in-flight ones finish).
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    draining: Arc<AtomicBool>,
    refusing: Arc<AtomicBool>,
}

impl Lifecycle {
    /// Turn readiness off. Idempotent.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Refuse new requests from now on (implies draining). Idempotent.
    pub fn stop_admitting(&self) {
        // Refusing first: whoever sees readiness off without a drain delay also sees refusal.
        self.refusing.store(true, Ordering::SeqCst);
        self.begin_drain();
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn is_refusing(&self) -> bool {
        self.refusing.load(Ordering::SeqCst)
    }
}

/// Resolves on the first SIGTERM or SIGINT (Ctrl-C), naming it.
pub async fn stop_signal() -> std::io::Result<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => Ok("SIGTERM"),
            _ = int.recv() => Ok("SIGINT"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await?;
        Ok("Ctrl-C")
    }
}
