//! HTTP surface: the route tables (public, admin), extractors, handlers, conditional responses, request middleware.

mod admin;
pub mod conditional;
mod extract;
mod health;
mod middleware;
mod previews;
mod routes;

pub use extract::PreviewRequest;
pub use middleware::request_context;
pub use routes::{configure, configure_admin};
