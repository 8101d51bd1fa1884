//! Prometheus metrics: every family's name and help text, the record functions, and the `/metrics` text.
//!
//! Event metrics (requests, lookups, upstream calls, transforms, denials) live in one process-wide
//! registry so any module records with a plain function call. State metrics (cache sizes, queue
//! depth, disk, upstream and breaker counters) are read from a [`StateSnapshot`] at scrape time,
//! so nothing has to keep them in step.

use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Prefix of every family name.
pub const PREFIX: &str = "orthanc_edge";
/// Content type of the exposition (OpenMetrics text, which Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds: 1 ms .. ~16 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: &'static str,
    pub method: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub op: &'static str,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    pub op: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    pub tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToLabels {
    pub to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn histogram() -> Histogram {
    Histogram::new(latency_buckets())
}

/// The event families. Names and help texts are all in [`Metrics::new`].
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_duration: HistogramFamily<RouteLabels>,
    pub cache_lookups: Family<OutcomeLabels, Counter>,
    pub upstream_requests: Family<UpstreamLabels, Counter>,
    pub upstream_duration: HistogramFamily<OpLabels>,
    pub flight_waiters: Gauge,
    pub flight_joins: Counter,
    pub transform_duration: Histogram,
    pub transform_rejected: Counter,
    pub edge_decodes: Family<OutcomeLabels, Counter>,
    pub render_fallbacks: Counter,
    pub auth_denials: Family<ReasonLabels, Counter>,
    pub warm_jobs: Family<StateLabels, Gauge>,
    pub warm_items: Family<OutcomeLabels, Counter>,
    pub peer_requests: Family<UpstreamLabels, Counter>,
}

impl Metrics {
    fn new() -> Self {
        let mut r = Registry::with_prefix(PREFIX);
        let m = Self {
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(histogram),
            cache_lookups: Family::default(),
            upstream_requests: Family::default(),
            upstream_duration: Family::new_with_constructor(histogram),
            flight_waiters: Gauge::default(),
            flight_joins: Counter::default(),
            transform_duration: histogram(),
            transform_rejected: Counter::default(),
            edge_decodes: Family::default(),
            render_fallbacks: Counter::default(),
            auth_denials: Family::default(),
            warm_jobs: Family::default(),
            warm_items: Family::default(),
            peer_requests: Family::default(),
            registry: Registry::default(),
        };
        r.register(
            "http_requests",
            "HTTP requests answered on the public listener, by route pattern, method and status",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time from request to response head, by route pattern",
            m.http_duration.clone(),
        );
        r.register(
            "cache_lookups",
            "Image responses by where they came from: hit-memory, hit-disk or miss",
            m.cache_lookups.clone(),
        );
        r.register(
            "upstream_requests",
            "Requests to Orthanc by operation (image, ping, or the metadata call: instance-parent, series-parent, \
             study, study-series, series, series-instances, lookup, changes) and outcome (ok or the error code)",
            m.upstream_requests.clone(),
        );
        r.register(
            "upstream_request_duration_seconds",
            "Latency of requests to Orthanc (including the wait for a render slot), by operation",
            m.upstream_duration.clone(),
        );
        r.register(
            "single_flight_waiters",
            "Requests now waiting for a fetch of the same key started by another request",
            m.flight_waiters.clone(),
        );
        r.register(
            "single_flight_joins",
            "Requests that joined a fetch already in flight instead of starting their own",
            m.flight_joins.clone(),
        );
        r.register(
            "transform_duration_seconds",
            "Time a resize/encode job spent queued and running on the transform pool",
            m.transform_duration.clone(),
        );
        r.register(
            "transform_rejected",
            "Transform jobs refused because the pool and its queue were full (503 overloaded)",
            m.transform_rejected.clone(),
        );
        r.register(
            "edge_decodes",
            "Frames the edge decoded from their stored DICOM file (render.mode), by outcome (ok, reduced: a JPEG 2000 frame decoded at the lower resolution level its thumbnails need, or the error code)",
            m.edge_decodes.clone(),
        );
        r.register(
            "render_fallbacks",
            "Frames Orthanc could not render (415) that the edge decoded itself instead (render.mode = fallback)",
            m.render_fallbacks.clone(),
        );
        r.register(
            "auth_denials",
            "Requests refused by authentication or authorization, by reason",
            m.auth_denials.clone(),
        );
        r.register(
            "warm_jobs",
            "Warm-up jobs the edge remembers, by state (listing, running, done, cancelled)",
            m.warm_jobs.clone(),
        );
        r.register(
            "warm_items",
            "Images handled by warm-up jobs, by outcome (made, skipped because cached, failed)",
            m.warm_items.clone(),
        );
        r.register(
            "peer_requests",
            "Requests to other edges of the cluster, by operation (image, warm, purge, job, position, health) and \
             outcome (hit or miss on the owner for images, ok, error when the owner answered with one, \
             unreachable, refused when the peer answered what a peer does not)",
            m.peer_requests.clone(),
        );
        Self { registry: r, ..m }
    }
}

/// The process-wide event metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Values read from the running state at scrape time.
#[derive(Debug, Clone, Default)]
pub struct StateSnapshot {
    pub memory_bytes: u64,
    pub memory_entries: u64,
    pub memory_evictions: u64,
    pub disk_bytes: u64,
    pub disk_entries: u64,
    pub disk_evictions: u64,
    pub checksum_failures: u64,
    pub disk_write_errors: u64,
    pub disk_writes_skipped: u64,
    pub disk_read_errors: u64,
    pub disk_verified: u64,
    /// Requests to Orthanc that gave up waiting for a slot.
    pub upstream_queue_timeouts: u64,
    /// The circuit breaker's counters.
    pub circuit_opened: u64,
    pub circuit_closed: u64,
    pub circuit_rejected: u64,
    pub circuit_probes: u64,
    pub circuit_probe_failures: u64,
    pub transform_in_flight: u64,
    /// Metadata requests to Orthanc holding a slot, and queued for one.
    pub metadata_in_flight: u64,
    pub metadata_waiting: u64,
    pub draining: bool,
    pub memory: super::memory::MemoryStats,
    /// Cluster peers (this edge included) up and down; both 0 when the cluster is off.
    pub peers_up: u64,
    pub peers_down: u64,
    /// Share of this edge's image requests to owners that the owner had cached.
    pub owner_hit_ratio: Option<f64>,
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn gauge(v: u64) -> Gauge {
    let g = Gauge::default();
    g.set(to_i64(v));
    g
}

fn counter(v: u64) -> Counter {
    let c = Counter::default();
    c.inc_by(v);
    c
}

fn state_registry(s: &StateSnapshot) -> Registry {
    let mut r = Registry::with_prefix(PREFIX);
    let bytes = Family::<TierLabels, Gauge>::default();
    bytes.get_or_create(&TierLabels { tier: "memory" }).set(to_i64(s.memory_bytes));
    bytes.get_or_create(&TierLabels { tier: "disk" }).set(to_i64(s.disk_bytes));
    r.register("cache_bytes", "Bytes held by each cache tier", bytes);
    let entries = Family::<TierLabels, Gauge>::default();
    entries.get_or_create(&TierLabels { tier: "memory" }).set(to_i64(s.memory_entries));
    entries.get_or_create(&TierLabels { tier: "disk" }).set(to_i64(s.disk_entries));
    r.register("cache_entries", "Entries held by each cache tier", entries);
    let evictions = Family::<TierLabels, Counter>::default();
    evictions.get_or_create(&TierLabels { tier: "memory" }).inc_by(s.memory_evictions);
    evictions.get_or_create(&TierLabels { tier: "disk" }).inc_by(s.disk_evictions);
    r.register("cache_evictions", "Entries evicted to stay within each tier's size", evictions);
    r.register(
        "cache_checksum_failures",
        "Disk entries whose checksum failed on read (dropped and refetched, never served)",
        counter(s.checksum_failures),
    );
    r.register(
        "cache_disk_write_errors",
        "Disk tier writes that failed (the image was still served from memory)",
        counter(s.disk_write_errors),
    );
    r.register(
        "cache_disk_writes_skipped",
        "Disk tier writes not attempted because too many were pending (a slow or stuck disk)",
        counter(s.disk_writes_skipped),
    );
    r.register(
        "cache_disk_read_errors",
        "Disk tier reads that failed or took too long (answered as misses)",
        counter(s.disk_read_errors),
    );
    r.register(
        "cache_disk_verified",
        "Disk entries whose checksum the start-up scan verified (damaged ones count as checksum failures)",
        counter(s.disk_verified),
    );
    r.register(
        "upstream_queue_timeouts",
        "Requests to Orthanc that gave up waiting for a render or metadata slot within orthanc.timeout_ms",
        counter(s.upstream_queue_timeouts),
    );
    let changes = Family::<ToLabels, Counter>::default();
    changes.get_or_create(&ToLabels { to: "open" }).inc_by(s.circuit_opened);
    changes.get_or_create(&ToLabels { to: "closed" }).inc_by(s.circuit_closed);
    r.register(
        "upstream_circuit_changes",
        "Times the circuit breaker in front of Orthanc opened or closed",
        changes,
    );
    r.register(
        "upstream_circuit_rejected",
        "Requests refused at once because the circuit was open (the sum over op of upstream_requests \
         with outcome upstream-circuit-open)",
        counter(s.circuit_rejected),
    );
    let probes = Family::<OutcomeLabels, Counter>::default();
    probes
        .get_or_create(&OutcomeLabels { outcome: "ok" })
        .inc_by(s.circuit_probes.saturating_sub(s.circuit_probe_failures));
    probes.get_or_create(&OutcomeLabels { outcome: "failed" }).inc_by(s.circuit_probe_failures);
    r.register(
        "upstream_circuit_probes",
        "Background pings of Orthanc while the circuit was open, by outcome",
        probes,
    );
    r.register(
        "transform_queue_depth",
        "Transform jobs admitted to the pool (running or queued)",
        gauge(s.transform_in_flight),
    );
    r.register(
        "upstream_metadata_in_flight",
        "Metadata requests to Orthanc holding one of orthanc.max_metadata_concurrency slots",
        gauge(s.metadata_in_flight),
    );
    r.register(
        "upstream_metadata_waiting",
        "Metadata requests to Orthanc queued for a slot (at most orthanc.max_waiting)",
        gauge(s.metadata_waiting),
    );
    let peers = Family::<StateLabels, Gauge>::default();
    peers.get_or_create(&StateLabels { state: "up" }).set(to_i64(s.peers_up));
    peers.get_or_create(&StateLabels { state: "down" }).set(to_i64(s.peers_down));
    r.register(
        "cluster_peers",
        "Edges of the cluster (this one included) by state; 0 when the cluster is off",
        peers,
    );
    if let Some(ratio) = s.owner_hit_ratio {
        let g = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        g.set(ratio);
        r.register(
            "cluster_owner_hit_ratio",
            "Share of the images this edge asked their owner for that the owner had cached",
            g,
        );
    }
    r.register("draining", "1 while shutting down (readiness is then false)", gauge(u64::from(s.draining)));
    r.register("process_resident_bytes", "Resident set size of the edge process", gauge(s.memory.resident));
    let heap = Family::<KindLabels, Gauge>::default();
    for (kind, v) in [
        ("allocated", s.memory.heap_allocated),
        ("active", s.memory.heap_active),
        ("resident", s.memory.heap_resident),
        ("metadata", s.memory.heap_metadata),
    ] {
        heap.get_or_create(&KindLabels { kind }).set(to_i64(v));
    }
    r.register(
        "heap_bytes",
        "The allocator's view of the heap: allocated (live data), active (pages in use), resident \
         (heap pages in RAM, freed ones not yet returned included), metadata (its bookkeeping)",
        heap,
    );
    r
}

/// The `/metrics` body: event families, then the state snapshot.
pub fn render(snapshot: &StateSnapshot) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let state = state_registry(snapshot);
    let ok = encode_registry(&mut out, &METRICS.registry)
        .and_then(|()| encode_registry(&mut out, &state))
        .and_then(|()| encode_eof(&mut out));
    if let Err(e) = ok {
        let _ = writeln!(out, "# encoding failed: {e}");
    }
    out
}

/// One answered request on the public listener.
/// `route` and `method` are static so that counting a request allocates nothing.
pub fn request(route: &'static str, method: &'static str, status: u16, elapsed: Duration) {
    let m = &*METRICS;
    m.http_requests.get_or_create(&RequestLabels { route, method, status }).inc();
    m.http_duration.get_or_create(&RouteLabels { route }).observe(elapsed.as_secs_f64());
}

/// Where an image response came from (`CacheStatus::as_str`).
pub fn cache_lookup(outcome: &'static str) {
    METRICS.cache_lookups.get_or_create(&OutcomeLabels { outcome }).inc();
}

/// One request to Orthanc: `op` is `image` or `ping`; `outcome` is `ok` or an error code.
pub fn upstream(op: &'static str, outcome: &'static str, elapsed: Duration) {
    let m = &*METRICS;
    m.upstream_requests.get_or_create(&UpstreamLabels { op, outcome }).inc();
    m.upstream_duration.get_or_create(&OpLabels { op }).observe(elapsed.as_secs_f64());
}

/// A finished transform job (queue wait included).
pub fn transform(elapsed: Duration) {
    METRICS.transform_duration.observe(elapsed.as_secs_f64());
}

/// A frame decoded at the edge from its stored file: `ok` or the `DicomError` code.
pub fn edge_decode(outcome: &'static str) {
    METRICS.edge_decodes.get_or_create(&OutcomeLabels { outcome }).inc();
}

/// Orthanc answered 415 and the edge decodes the frame itself (`render.mode = fallback`).
pub fn render_fallback() {
    METRICS.render_fallbacks.inc();
}

pub fn transform_rejected() {
    METRICS.transform_rejected.inc();
}

/// A request refused by auth, by a short stable reason (an error code, never a credential).
pub fn auth_denied(reason: &str) {
    METRICS.auth_denials.get_or_create(&ReasonLabels { reason: reason.to_owned() }).inc();
}

/// A request now waits on another's fetch; the count drops when the guard does.
pub fn flight_joined() -> FlightWaiter {
    METRICS.flight_joins.inc();
    METRICS.flight_waiters.inc();
    FlightWaiter(())
}

/// Drop guard for [`flight_joined`]: a cancelled waiter is still taken off the gauge.
pub struct FlightWaiter(());

impl Drop for FlightWaiter {
    fn drop(&mut self) {
        METRICS.flight_waiters.dec();
    }
}

/// Warm-up jobs by state, republished whenever a job changes state.
pub fn warm_jobs(state: &'static str, count: i64) {
    METRICS.warm_jobs.get_or_create(&StateLabels { state }).set(count);
}

/// One request to another edge: `op` and `outcome` as in `peer_requests`.
pub fn peer_request(op: &'static str, outcome: &'static str) {
    METRICS.peer_requests.get_or_create(&UpstreamLabels { op, outcome }).inc();
}

/// One image handled by a warm-up job.
pub fn warm_item(outcome: &'static str) {
    METRICS.warm_items.get_or_create(&OutcomeLabels { outcome }).inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_has_every_family_and_one_eof() {
        request("/x", "GET", 200, Duration::from_millis(3));
        let text = render(&StateSnapshot { disk_entries: 7, draining: true, ..Default::default() });
        for family in [
            "orthanc_edge_http_requests_total",
            "orthanc_edge_http_request_duration_seconds_bucket",
            "orthanc_edge_cache_entries{tier=\"disk\"} 7",
            "orthanc_edge_draining 1",
            "orthanc_edge_process_resident_bytes",
            "orthanc_edge_heap_bytes{kind=\"allocated\"}",
            "# TYPE orthanc_edge_auth_denials counter",
            "# TYPE orthanc_edge_warm_jobs gauge",
        ] {
            assert!(text.contains(family), "missing {family} in\n{text}");
        }
        assert_eq!(text.matches("# EOF").count(), 1);
        assert!(text.ends_with("# EOF\n"));
    }
}
