//! Minting handlers: `POST /auth/sign` (signed links), `POST /auth/session` (session token + cookie), `DELETE /auth/session`.

use actix_web::cookie::{time, Cookie, SameSite as CookieSameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::cors::SameOrigin;
use super::error::AppError;
use super::extract::{json_object, link_allows, NoQuery};
use crate::auth::{
    presented_in_cookie, AuthError, Minter, Principal, Resource, Scope, SessionRequest, SignRequest, Via,
};
use crate::config::{CookieConfig, SameSite};
use crate::state::AppState;

const MAX_BODY: usize = 1 << 20;

#[derive(Serialize)]
struct SessionResponse<'a> {
    /// Absent when the token came from the cookie: a page's scripts must not read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    expires_at: u64,
}

/// Signed links: one short token per link, scoped to its instance and bound to its URL (route,
/// frameless path, the link's own `w`/`h` or none): another size, format or route is 403.
pub async fn sign(
    principal: Principal,
    _: NoQuery,
    state: web::Data<AppState>,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    state.auth.authorize(&principal, Scope::Mint, Resource::Edge).await?;
    let minter = minter(&state)?;
    let req: SignRequest = read_json(body).await?;
    let signed = minter.sign(&principal.name, &req)?;
    Ok(HttpResponse::Ok().insert_header(("cache-control", "no-store")).json(signed))
}

/// A session token as JSON and as an HttpOnly cookie. An app backend (API key with `mint`)
/// gets a new token; a browser presenting a session token gets that same token as a cookie
/// (echoed in the body only if it did not come from the cookie). Browsers' `Origin` is checked
/// first (`SameOrigin`), so that a cross-site form cannot plant a session.
pub async fn session(
    _: SameOrigin,
    principal: Principal,
    _: NoQuery,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    let cookie_cfg = &state.config.auth.cookie;
    // A signed link is not a session: it serves its one URL.
    link_allows(&principal, &req)?;
    // `echo`: whether the body may show the token (the caller already holds it, or it is new).
    let (token, exp, echo) = match &principal.via {
        // No new rights: the cookie carries exactly the token presented.
        Via::Session { token, exp, .. } => {
            (token.expose().to_owned(), *exp, !presented_in_cookie(&req, &cookie_cfg.name))
        }
        _ => {
            state.auth.authorize(&principal, Scope::Mint, Resource::Edge).await?;
            let minter = minter(&state)?;
            let req: SessionRequest = read_json_or_empty(body).await?;
            let m = minter.session(&principal.name, &req)?;
            (m.token, m.exp, true)
        }
    };
    let now = jsonwebtoken::get_current_timestamp();
    let max_age = exp.saturating_sub(now);
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .cookie(cookie(cookie_cfg, &token, max_age))
        .json(SessionResponse { token: echo.then_some(token.as_str()), expires_at: exp }))
}

/// Log out: expire the cookie. Needs no credential (it only removes one), but a browser's
/// `Origin` must be allowed (`SameOrigin`): a cross-site form must not log a user out.
pub async fn end_session(_: SameOrigin, state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header(("cache-control", "no-store"))
        .cookie(cookie(&state.config.auth.cookie, "", 0))
        .finish()
}

fn cookie<'a>(cfg: &'a CookieConfig, token: &'a str, max_age: u64) -> Cookie<'a> {
    let mut c = Cookie::build(cfg.name.as_str(), token)
        .http_only(true)
        .secure(cfg.secure)
        .same_site(match cfg.same_site {
            SameSite::Strict => CookieSameSite::Strict,
            SameSite::Lax => CookieSameSite::Lax,
            SameSite::None => CookieSameSite::None,
        })
        .path(cfg.path.as_str())
        .max_age(time::Duration::seconds(i64::try_from(max_age).unwrap_or(i64::MAX)));
    if !cfg.domain.is_empty() {
        c = c.domain(cfg.domain.as_str());
    }
    c.finish()
}

fn minter(state: &AppState) -> Result<&Minter, AuthError> {
    state.auth.minter().ok_or(AuthError::MintingDisabled)
}

async fn read_body(mut body: web::Payload) -> Result<web::BytesMut, AppError> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| AppError::BadParam("could not read the body".into()))?;
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(AppError::BadParam(format!("body larger than {MAX_BODY} bytes")));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

async fn read_json<T: DeserializeOwned>(body: web::Payload) -> Result<T, AppError> {
    let buf = read_body(body).await?;
    let value =
        serde_json::from_slice(&buf).map_err(|e| AppError::BadParam(format!("invalid JSON body: {e}")))?;
    json_object(value)
}

async fn read_json_or_empty<T: DeserializeOwned + Default>(body: web::Payload) -> Result<T, AppError> {
    let buf = read_body(body).await?;
    if buf.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value =
        serde_json::from_slice(&buf).map_err(|e| AppError::BadParam(format!("invalid JSON body: {e}")))?;
    json_object(value)
}
