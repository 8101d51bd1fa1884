//! Minting handlers: `POST /auth/sign` (signed links), `POST /auth/session` (session token + cookie), `DELETE /auth/session`.

use std::collections::HashSet;

use actix_web::cookie::{time, Cookie, SameSite as CookieSameSite};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::cors::SameOrigin;
use super::error::AppError;
use super::extract::{json_object, link_allows, NoQuery};
use crate::auth::{
    presented_in_cookie, LinkBinding, LinkRoute, Minter, Principal, Resource, ResourceSet, Scope, Via,
    TOKEN_PARAM,
};
use crate::config::{CookieConfig, SameSite};
use crate::ids::OrthancId;
use crate::state::AppState;

const MAX_BODY: usize = 1 << 20;
const MAX_LINKS: usize = 1000;
const MAX_SIZES: usize = 16;
const MAX_SIDE: u32 = 4096;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignRequest {
    instances: Vec<String>,
    #[serde(default, deserialize_with = "objects")]
    sizes: Vec<Size>,
    #[serde(default)]
    lifetime_s: Option<u64>,
    /// End user the links are for (audit logs); defaults to the API key's name.
    #[serde(default)]
    sub: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Size {
    w: u32,
    h: u32,
}

#[derive(Serialize)]
struct Link {
    instance: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    size: Option<Size>,
    url: String,
}

#[derive(Serialize)]
struct SignResponse {
    expires_at: u64,
    links: Vec<Link>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionRequest {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    lifetime_s: Option<u64>,
    #[serde(default)]
    studies: Option<Vec<String>>,
    #[serde(default)]
    series: Option<Vec<String>>,
    #[serde(default)]
    instances: Option<Vec<String>>,
}

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
    if req.instances.is_empty() || req.instances.len() > MAX_LINKS {
        return Err(AppError::BadParam(format!("`instances` must list 1 to {MAX_LINKS} instance ids")));
    }
    if req.sizes.len() > MAX_SIZES
        || req.sizes.iter().any(|s| !(1..=MAX_SIDE).contains(&s.w) || !(1..=MAX_SIDE).contains(&s.h))
    {
        return Err(AppError::BadParam(format!(
            "`sizes` must be at most {MAX_SIZES} {{w, h}} pairs from 1 to {MAX_SIDE}"
        )));
    }
    let lifetime = lifetime(minter, req.lifetime_s)?;
    let sub = req.sub.as_deref().unwrap_or(&principal.name);
    let sizes: Vec<Option<Size>> =
        if req.sizes.is_empty() { vec![None] } else { req.sizes.iter().copied().map(Some).collect() };
    let mut links = Vec::with_capacity(req.instances.len() * sizes.len());
    let mut expires_at = 0;
    for raw in &req.instances {
        let id = parse_id(raw, "instances")?;
        let scope = ResourceSet { instances: HashSet::from([id.clone()]), ..Default::default() };
        for size in &sizes {
            let params = size.map(|s| [("w", s.w.to_string()), ("h", s.h.to_string())]);
            let binding = LinkBinding::new(LinkRoute::InstancePreview, None, params.into_iter().flatten());
            let minted = minter
                .mint(sub, lifetime, Some(&scope), Some(&binding))
                .map_err(|e| AppError::Internal(format!("minting a link token: {e}")))?;
            expires_at = minted.exp;
            let query = match size {
                Some(s) => format!("w={}&h={}&{TOKEN_PARAM}={}", s.w, s.h, minted.token),
                None => format!("{TOKEN_PARAM}={}", minted.token),
            };
            links.push(Link {
                instance: id.to_string(),
                size: *size,
                url: format!("{}/instances/{id}/preview?{query}", minter.public_url),
            });
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(SignResponse { expires_at, links }))
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
            let lifetime = lifetime(minter, req.lifetime_s)?;
            let restriction = if req.studies.is_some() || req.series.is_some() || req.instances.is_some() {
                let set = ResourceSet {
                    studies: ids(req.studies.as_deref(), "studies")?,
                    series: ids(req.series.as_deref(), "series")?,
                    instances: ids(req.instances.as_deref(), "instances")?,
                };
                if set.len() > crate::auth::MAX_RESOURCES {
                    return Err(AppError::BadParam(format!(
                        "at most {} resource ids",
                        crate::auth::MAX_RESOURCES
                    )));
                }
                Some(set)
            } else {
                None
            };
            let sub = req.sub.as_deref().unwrap_or(&principal.name);
            let m = minter
                .mint(sub, lifetime, restriction.as_ref(), None)
                .map_err(|e| AppError::Internal(format!("minting a session token: {e}")))?;
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

fn minter(state: &AppState) -> Result<&Minter, AppError> {
    Ok(state.auth.minter().ok_or(crate::auth::AuthError::MintingDisabled)?)
}

fn lifetime(m: &Minter, asked: Option<u64>) -> Result<u64, AppError> {
    match asked {
        None => Ok(m.default_lifetime),
        Some(n) if (1..=m.max_lifetime).contains(&n) => Ok(n),
        Some(_) => Err(AppError::BadParam(format!(
            "`lifetime_s` must be from 1 to {} (auth.sign.max_lifetime_s)",
            m.max_lifetime
        ))),
    }
}

fn parse_id(raw: &str, field: &str) -> Result<OrthancId, AppError> {
    OrthancId::parse(raw).ok_or_else(|| {
        AppError::BadId(format!(
            "`{field}` must list Orthanc ids: 5 groups of 8 lowercase hex digits joined by '-'"
        ))
    })
}

fn ids(list: Option<&[String]>, field: &str) -> Result<HashSet<OrthancId>, AppError> {
    list.unwrap_or_default().iter().map(|s| parse_id(s, field)).collect()
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

/// A list of JSON objects, each as `T` (serde alone would also take a `T` from an array).
fn objects<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<serde_json::Map<String, serde_json::Value>>::deserialize(d)?
        .into_iter()
        .map(|m| serde_json::from_value(serde_json::Value::Object(m)).map_err(serde::de::Error::custom))
        .collect()
}
