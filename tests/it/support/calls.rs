//! Requests to the edge as the tests make them, reduced to (status, error code); HS256 session tokens.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value;

use super::{client, JWT_SECRET};

/// Seconds since the epoch, as JWT `exp` and `iat` count them.
pub fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

/// A session token with `claims`, signed HS256 with [`JWT_SECRET`].
pub fn hs(claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

/// `DELETE /cache/studies/{study}` on the edge at `edge_url`, with API key `key`.
pub async fn purge_study(edge_url: &str, study: &str, key: &str) -> reqwest::Response {
    client()
        .delete(format!("{edge_url}/cache/studies/{study}"))
        .header("X-Api-Key", key)
        .send()
        .await
        .unwrap()
}

/// A response header as text ("" when absent or not text).
pub fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Status and error code; asserts the error shape and that no browser prompt is ever asked for.
pub async fn outcome(r: reqwest::Response) -> (u16, String) {
    assert!(r.headers().get("www-authenticate").is_none(), "no browser prompt, ever");
    let status = r.status().as_u16();
    if status == 200 || status == 204 {
        return (status, String::new());
    }
    assert_eq!(header(&r, "content-type"), "application/json");
    let v: Value = r.json().await.unwrap();
    (status, v["code"].as_str().unwrap().to_owned())
}

pub async fn bearer(url: &str, token: &str) -> (u16, String) {
    outcome(client().get(url).bearer_auth(token).send().await.unwrap()).await
}

pub async fn with_cookie(url: &str, cookie: &str) -> (u16, String) {
    outcome(client().get(url).header("Cookie", cookie).send().await.unwrap()).await
}

pub async fn plain(url: &str) -> (u16, String) {
    outcome(client().get(url).send().await.unwrap()).await
}

/// The outcome of a success.
pub fn ok() -> (u16, String) {
    (200, String::new())
}

/// The outcome of an error.
pub fn err(status: u16, code: &str) -> (u16, String) {
    (status, code.to_owned())
}
