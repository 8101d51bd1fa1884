//! HTTP surface: the route tables (public, admin), extractors, handlers, conditional responses, request middleware, and the one mapping of errors to HTTP.

mod accept;
mod admin;
mod client;
pub mod conditional;
mod cors;
mod dicomweb;
mod error;
mod extract;
mod health;
mod middleware;
mod peer;
mod previews;
mod purge;
mod routes;
mod studies;
mod tokens;
mod warm;

pub use client::{client_addr, ClientAddr};
pub use cors::{cors, Cors};
pub use error::AppError;
pub use extract::PreviewRequest;
pub use middleware::{merge_slashes, request_context};
pub use peer::{configure_peer, peer_secret};
pub use routes::{configure, configure_admin, Route, RoutePattern, ROUTES};
