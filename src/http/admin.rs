//! Admin listener handlers: Prometheus `/metrics` (probes are shared with the public listener).

use actix_web::{web, HttpResponse};

use crate::state::AppState;
use crate::telemetry::metrics::{self, StateSnapshot};

/// Read the state-derived values now: cache sizes, disk counters, queue depth, draining.
pub async fn snapshot(state: &AppState) -> StateSnapshot {
    let memory = state.cache.memory();
    let memory_bytes = memory.weighted_size().await;
    let disk = state.cache.disk();
    let (disk_entries, disk_bytes) = (disk.len() as u64, disk.used_bytes());
    let stats = &disk.stats;
    let (metadata_in_flight, metadata_waiting) = state.health.metadata_load();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let breaker = &state.health.breaker().stats;
    let (peers_up, peers_down) = state.cluster.peer_counts();
    StateSnapshot {
        memory_bytes,
        memory_entries: memory.entry_count(),
        memory_evictions: memory.evictions(),
        disk_bytes,
        disk_entries,
        disk_evictions: load(&stats.evictions),
        checksum_failures: load(&stats.checksum_failures),
        disk_write_errors: load(&stats.write_errors),
        disk_writes_skipped: load(&stats.writes_skipped),
        disk_read_errors: load(&stats.read_errors),
        disk_verified: load(&stats.verified),
        upstream_queue_timeouts: load(&state.health.upstream_stats().queue_timeouts),
        circuit_opened: load(&breaker.opened),
        circuit_closed: load(&breaker.closed),
        circuit_rejected: load(&breaker.rejected),
        circuit_probes: load(&breaker.probes),
        circuit_probe_failures: load(&breaker.probe_failures),
        transform_in_flight: state.previews.transform_in_flight() as u64,
        metadata_in_flight: metadata_in_flight as u64,
        metadata_waiting: metadata_waiting as u64,
        draining: state.lifecycle.is_draining(),
        memory: crate::telemetry::memory::read(),
        peers_up,
        peers_down,
        owner_hit_ratio: state.cluster.owner_hit_ratio(),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let body = metrics::render(&snapshot(&state).await);
    HttpResponse::Ok()
        .content_type(metrics::CONTENT_TYPE)
        .insert_header(("cache-control", "no-store"))
        .body(body)
}
