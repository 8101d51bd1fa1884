//! Test support, by role (fake Orthanc, edge under test, proxy, real Orthanc, validator, images); shared keys.

#![allow(dead_code)]

mod calls;
mod edge;
mod fake_orthanc;
mod images;
mod proxy;
mod real_orthanc;
mod validator;

pub use calls::*;
pub use edge::*;
pub use fake_orthanc::*;
pub use images::*;
pub use proxy::*;
pub use real_orthanc::*;
pub use validator::*;

pub const ORTHANC_USER: &str = "edge-svc";
pub const ORTHANC_PASSWORD: &str = "orthanc-pw-Z9q";
pub const PREVIEW_KEY: &str = "preview-key-123";
pub const ADMIN_KEY: &str = "admin-key-456";
pub const WARM_KEY: &str = "warm-key-789";
pub const ID: &str = "8e289db9-0e1437e1-3ecf395f-d8aae463-f4bb49fe";
pub const ID2: &str = "11111111-22222222-33333333-44444444-55555555";
pub const MINT_KEY: &str = "mint-key-789";
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef-0123";

/// The `n`th synthetic Orthanc id with a given one-hex-digit `kind` prefix (distinct per (kind, n)).
pub fn synth_id(kind: char, n: u32) -> String {
    format!("{kind}{:07x}-00000000-00000000-00000000-{n:08x}", n)
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().build().unwrap()
}
