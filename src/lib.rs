//! orthanc-edge: authorized, cached preview images in front of Orthanc. This file only wires the parts.

pub mod auth;
pub mod cache;
pub mod catalog;
pub mod config;
pub mod error;
pub mod http;
pub mod ids;
pub mod previews;
pub mod state;
pub mod telemetry;
pub mod transform;
pub mod upstream;
pub mod warm;

use std::net::TcpListener;

use actix_web::{middleware::from_fn, web, App, HttpServer};

use crate::state::AppState;

/// Bind and start the HTTP server on `listener`; returns the server future (await it to run).
pub fn start(state: AppState, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let workers = match state.config.server.workers {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    let data = web::Data::new(state.clone());
    let auth = web::Data::new(state.auth.clone());
    let cors = web::Data::new(state.cors.clone());
    state.auth.spawn_background();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(auth.clone())
            .app_data(cors.clone())
            .wrap(from_fn(http::cors))
            .wrap(from_fn(http::request_context))
            .configure(http::configure)
    })
    .workers(workers)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Serve until SIGTERM/SIGINT, then flush the disk tier.
pub async fn serve(state: AppState) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&state.config.server.listen)?;
    let follower = state.follower().map(|f| tokio::spawn(f.run()));
    tracing::info!(listen = %listener.local_addr()?, orthanc = %state.config.orthanc.url, "orthanc-edge serving");
    start(state.clone(), listener)?.await?;
    if let Some(f) = follower {
        f.abort();
    }
    let disk = state.cache.disk().clone();
    tokio::task::spawn_blocking(move || disk.flush()).await??;
    tracing::info!("stopped");
    Ok(())
}
