//! HTTP surface: the route table, extractors, handlers, conditional responses, request middleware.

pub mod conditional;
mod extract;
mod health;
mod middleware;
mod previews;
mod routes;

pub use extract::PreviewRequest;
pub use middleware::request_context;
pub use routes::configure;
