//! The integration tests, one binary: one module per area, sharing `support` (fakes, the edge under test).

#![allow(clippy::unwrap_used)]

mod support;

mod amplification;
mod cluster_real;
mod dicom_real;
mod dicomweb_real;
mod edge_auth;
mod edge_canonical;
mod edge_fake;
mod edge_proxies;
mod edge_real;
mod edge_studies;
mod edge_variants;
mod faults_real;
mod fuzz_requests;
mod fuzz_tokens;
mod http_writes;
mod k8s_config;
mod lifecycle;
mod openapi;
mod ops_metrics;
mod render_fake;
mod render_real;
mod resilience_fake;
mod security_real;
mod transform_props;
