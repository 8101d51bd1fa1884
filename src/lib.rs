//! orthanc-edge: authorized, cached preview images in front of Orthanc. This file only wires the parts.

pub mod auth;
pub mod cache;
pub mod config;
pub mod error;
pub mod http;
pub mod ids;
pub mod previews;
pub mod state;
pub mod telemetry;
pub mod transform;
pub mod upstream;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::{middleware::from_fn, web, App, HttpServer};

use crate::state::AppState;

/// Bind and start the HTTP server on `listener`; returns the server future (await it to run).
pub fn start(state: AppState, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let workers = match state.config.server.workers {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    let limits = &state.config.server;
    let data = web::Data::new(state.clone());
    let auth = web::Data::new(state.auth.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(auth.clone())
            .wrap(from_fn(http::request_context))
            .configure(http::configure)
    })
    .workers(workers)
    // Slow or idle clients cannot hold connections (slowloris); connections per worker are capped.
    .client_request_timeout(Duration::from_millis(limits.request_timeout_ms))
    .client_disconnect_timeout(Duration::from_secs(1))
    .keep_alive(Duration::from_secs(limits.keep_alive_s))
    .max_connections(limits.max_connections)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Serve until SIGTERM/SIGINT, then flush the disk tier.
pub async fn serve(state: AppState) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&state.config.server.listen)?;
    tracing::info!(listen = %listener.local_addr()?, orthanc = %state.config.orthanc.url, "orthanc-edge serving");
    start(state.clone(), listener)?.await?;
    state.cache.settle_writes(Duration::from_secs(5)).await;
    let disk = state.cache.disk().clone();
    tokio::task::spawn_blocking(move || disk.flush()).await??;
    tracing::info!("stopped");
    Ok(())
}
