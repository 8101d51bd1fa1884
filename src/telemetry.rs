//! Logging and metrics setup: `RUST_LOG`-style filter, text or JSON lines; Prometheus families in `metrics`.

pub mod memory;
pub mod metrics;

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::{LogConfig, LogFormat};

/// Install the global subscriber. `RUST_LOG`, when set, wins over `log.filter`.
///
/// JSON lines are flat (`{"timestamp", "level", "message", "request_id", "route", ...}`) so a log
/// collector indexes the per-request fields without unnesting.
pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour only for a person at a terminal, never into a file or a collector.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    let _ = match cfg.format {
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
        }
        LogFormat::Text => builder.try_init(),
    };
}

/// Count a request refused by authentication or authorization. `reason` is a short stable word
/// (today the error code: `unauthenticated`, `invalid-credentials`, `forbidden`), never a credential.
/// Called once per refused request from `http/middleware.rs`; auth may call it with finer reasons
/// instead (then drop the middleware call so nothing is counted twice).
pub fn auth_denied(reason: &str) {
    metrics::auth_denied(reason);
}
