//! HTTP surface: the route table, extractors, handlers, conditional responses, request middleware.

pub mod conditional;
mod dicomweb;
mod extract;
mod health;
mod middleware;
mod previews;
mod purge;
mod routes;
mod studies;
mod warm;

pub use extract::PreviewRequest;
pub use middleware::request_context;
pub use routes::configure;
