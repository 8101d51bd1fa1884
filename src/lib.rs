//! orthanc-edge: authorized, cached preview images in front of Orthanc. This file only wires the parts.

pub mod alloc;
pub mod auth;
pub mod budget;
pub mod cache;
pub mod cluster;
pub mod config;
pub mod dicom;
pub mod health;
pub mod http;
pub mod ids;
pub mod lifecycle;
pub mod model;
pub mod net;
pub mod previews;
pub mod state;
pub mod studies;
pub mod sync;
pub mod telemetry;
pub mod transform;
pub mod upstream;
pub mod warm;

use std::net::TcpListener;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, App, HttpServer};

use crate::state::AppState;

/// The public app: the state its handlers read, request context and CORS around the routes of
/// [`http::configure`]. What [`start`] serves on each worker, and what tests call in process.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::new(state.auth.clone()))
        .app_data(web::Data::new(state.cors.clone()))
        .app_data(web::Data::new(state))
        .wrap(from_fn(http::cors))
        .wrap(from_fn(http::request_context))
        .configure(http::configure)
}

/// The last step of a stop, once no request runs: settle the cache writes still under way (5 s
/// at most) and flush the disk tier.
pub async fn shutdown(state: &AppState) -> anyhow::Result<()> {
    state.cache.settle_writes(Duration::from_secs(5)).await;
    let disk = state.cache.disk().clone();
    tokio::task::spawn_blocking(move || disk.flush()).await??;
    Ok(())
}

/// Start the public server on `listener`; returns the server future (await it to run).
/// Signals are not handled here: [`serve`] drains first, then stops it.
pub fn start(state: AppState, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let workers = match state.config.server.workers {
        0 => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        n => n,
    };
    let grace = state.config.server.shutdown_grace_s;
    let limits = &state.config.server;
    state.auth.spawn_background();
    let server = HttpServer::new({
        let state = state.clone();
        move || app(state.clone())
    })
    .workers(workers)
    .disable_signals()
    .shutdown_timeout(grace)
    // Slow or idle clients cannot hold connections (slowloris); connections per worker are capped.
    .client_request_timeout(Duration::from_millis(limits.request_timeout_ms))
    .client_disconnect_timeout(Duration::from_secs(1))
    .keep_alive(Duration::from_secs(limits.keep_alive_s))
    .max_connections(limits.max_connections)
    // A response's last segment goes out at once, not after the client's (delayed) ACK.
    .tcp_nodelay(true)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Start the admin server (metrics, probes) on `listener`: one worker, no access log.
pub fn start_admin(state: AppState, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .wrap(from_fn(|mut req, next: Next<_>| async move {
                http::merge_slashes(&mut req);
                next.call(req).await
            }))
            .configure(http::configure_admin)
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)?
    .run();
    Ok(server)
}

/// Start the peer server (`cluster.listen`): the `/peer/v1` routes other edges call, behind the
/// cluster secret; nothing else.
pub fn start_peer(state: AppState, listener: TcpListener) -> std::io::Result<actix_web::dev::Server> {
    // The peers' client reuses an idle connection for half of this (src/cluster/conn.rs); with
    // actix's default 5 s, one idle 5 to 7.5 s was found closed and the request sent again.
    let keep_alive = Duration::from_secs(state.config.server.keep_alive_s);
    let data = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new().app_data(data.clone()).wrap(from_fn(http::peer_secret)).configure(http::configure_peer)
    })
    .keep_alive(keep_alive)
    .workers(2)
    .disable_signals()
    .shutdown_timeout(1)
    .tcp_nodelay(true)
    .listen(listener)?
    .run();
    Ok(server)
}

/// When `[cluster]` is on: bind `cluster.listen`, serve the peer routes there, and probe the
/// peers. Returns the peer server's handle (`None` when the cluster is off).
pub fn start_cluster(state: &AppState) -> anyhow::Result<Option<actix_web::dev::ServerHandle>> {
    let c = &state.config.cluster;
    if !state.cluster.is_on() {
        return Ok(None);
    }
    let listener = TcpListener::bind(&c.listen)
        .map_err(|e| anyhow::anyhow!("config key `cluster.listen`: cannot listen on {}: {e}", c.listen))?;
    tracing::info!(listen = %listener.local_addr()?, self_url = %c.self_url, "cluster peer listener");
    state.cluster.spawn_probes();
    let peer = start_peer(state.clone(), listener)?;
    let handle = peer.handle();
    actix_web::rt::spawn(peer);
    Ok(Some(handle))
}

/// The /changes follower (when `warm.follow_changes` is on), following while this edge leads
/// the cluster's (always, alone). Abort the task to stop it.
pub fn spawn_follower(state: &AppState) -> Option<tokio::task::JoinHandle<()>> {
    let every = Duration::from_millis(state.config.cluster.probe_ms);
    state.follower().map(|f| tokio::spawn(f.run_when_leading(every)))
}

/// Serve until SIGTERM/SIGINT; then turn unready, stop accepting, drain in-flight requests
/// (bounded by `server.shutdown_grace_s`), flush the disk tier, and return.
pub async fn serve(state: AppState) -> anyhow::Result<()> {
    let cfg = &state.config.server;
    let bind = |key: &str, addr: &str| {
        TcpListener::bind(addr)
            .map_err(|e| anyhow::anyhow!("config key `{key}`: cannot listen on {addr}: {e}"))
    };
    let listener = bind("server.listen", &cfg.listen)?;
    let admin_listener = bind("server.admin_listen", &cfg.admin_listen)?;
    tracing::info!(
        listen = %listener.local_addr()?,
        admin_listen = %admin_listener.local_addr()?,
        orthanc = %state.config.orthanc.url,
        "orthanc-edge serving"
    );
    let peer = start_cluster(&state)?;
    let follower = spawn_follower(&state);
    let public = start(state.clone(), listener)?;
    let admin = start_admin(state.clone(), admin_listener)?;
    let (public_handle, admin_handle) = (public.handle(), admin.handle());
    let admin_task = actix_web::rt::spawn(admin);
    let drain_delay = Duration::from_millis(cfg.drain_delay_ms);
    let lifecycle = state.lifecycle.clone();
    actix_web::rt::spawn(async move {
        match lifecycle::stop_signal().await {
            Ok(name) => {
                tracing::info!(signal = name, "draining: readiness off, finishing in-flight requests")
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for stop signals; graceful drain unavailable");
                std::future::pending::<()>().await;
            }
        }
        if !drain_delay.is_zero() {
            lifecycle.begin_drain();
            tokio::time::sleep(drain_delay).await;
        }
        lifecycle.stop_admitting();
        public_handle.stop(true).await;
    });
    public.await?;
    admin_handle.stop(true).await;
    let _ = admin_task.await;
    if let Some(peer) = peer {
        peer.stop(true).await;
    }
    if let Some(f) = follower {
        f.abort();
    }
    shutdown(&state).await?;
    tracing::info!("stopped: in-flight requests drained, disk tier flushed");
    Ok(())
}
