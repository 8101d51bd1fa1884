//! HTTP surface: the route tables (public, admin), extractors, handlers, conditional responses, request middleware.

mod admin;
mod client;
pub mod conditional;
mod cors;
mod dicomweb;
mod extract;
mod health;
mod middleware;
mod previews;
mod purge;
mod routes;
mod studies;
mod tokens;
mod warm;

pub use client::{client_addr, ClientAddr, TrustedProxies};
pub use cors::{cors, Cors};
pub use extract::PreviewRequest;
pub use middleware::request_context;
pub use routes::{configure, configure_admin, Route, ROUTES};
