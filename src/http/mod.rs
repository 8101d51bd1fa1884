//! HTTP surface: the route table, extractors, handlers, conditional responses, request middleware.

mod auth;
pub mod conditional;
mod cors;
mod extract;
mod health;
mod middleware;
mod previews;
mod routes;

pub use cors::{cors, Cors};
pub use extract::PreviewRequest;
pub use middleware::request_context;
pub use routes::configure;
