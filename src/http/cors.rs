//! CORS for viewers on other origins: exact allowed origins, preflights answered without credentials, `Vary: Origin`.
//!
//! Hand-written rather than actix-cors: it is ~100 lines, answers refusals with the edge's JSON
//! errors, and its rules (exact origins only, never `*` with credentials) are the whole policy.

use std::collections::HashSet;
use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{dev::Payload, web, Error, FromRequest, HttpRequest, HttpResponse, ResponseError};

use super::error::AppError;
use crate::config::CorsConfig;
use crate::state::AppState;

const ALLOW_METHODS: &str = "GET, HEAD, POST, DELETE";
const ALLOW_HEADERS: &str = "Authorization, X-Api-Key, Content-Type, Accept, If-None-Match";
const EXPOSE_HEADERS: &str = "ETag, X-Cache, X-Request-Id, Retry-After";

#[derive(Clone, Default)]
pub struct Cors {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    origins: HashSet<String>,
    credentials: bool,
    max_age: HeaderValue,
}

impl Cors {
    /// Off (no CORS headers at all) when `cors.allowed_origins` is empty.
    pub fn from_config(cfg: &CorsConfig) -> Self {
        if cfg.allowed_origins.is_empty() {
            return Self { inner: None };
        }
        Self {
            inner: Some(Arc::new(Inner {
                origins: cfg.allowed_origins.iter().cloned().collect(),
                credentials: cfg.allow_credentials,
                max_age: HeaderValue::from(cfg.max_age_s),
            })),
        }
    }
}

impl Cors {
    /// Is `origin` one of `cors.allowed_origins` (exact match)?
    pub fn allows(&self, origin: &str) -> bool {
        self.inner.as_ref().is_some_and(|i| i.origins.contains(origin))
    }
}

/// Extractor for requests that change the browser's session (`POST`/`DELETE /auth/session`): a
/// browser's `Origin` must be the edge's own host, the origin of `auth.sign.public_url` or one of
/// `cors.allowed_origins`, else 403 `origin-not-allowed` (a cross-site form must not plant a
/// session or log a user out). No `Origin` passes: curl and app backends send none, and every
/// browser sends one on a cross-site POST or DELETE.
#[derive(Debug, Clone, Copy)]
pub struct SameOrigin;

impl FromRequest for SameOrigin {
    type Error = AppError;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(check_origin(req).map(|()| SameOrigin))
    }
}

fn check_origin(req: &HttpRequest) -> Result<(), AppError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().map_err(|_| AppError::OriginNotAllowed)?;
    let listed = req.app_data::<web::Data<Cors>>().is_some_and(|c| c.allows(origin));
    let public = req
        .app_data::<web::Data<AppState>>()
        .and_then(|s| url::Url::parse(&s.config.auth.sign.public_url).ok())
        .is_some_and(|u| u.origin().ascii_serialization() == origin);
    // Same host as the request's (scheme aside: TLS often ends at a proxy). A page elsewhere
    // cannot choose the Host a browser sends.
    let own = origin
        .split_once("://")
        .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(req.connection_info().host()));
    if listed || public || own {
        Ok(())
    } else {
        tracing::warn!(target: "audit", origin = %origin.chars().take(128).collect::<String>(), code = "origin-not-allowed", "cross-site session request refused");
        Err(AppError::OriginNotAllowed)
    }
}

impl Inner {
    fn allowed<'a>(&self, origin: Option<&'a HeaderValue>) -> Option<&'a HeaderValue> {
        let o = origin?;
        // Exact, case-sensitive match of the serialized origin, as browsers send it.
        self.origins.contains(o.to_str().ok()?).then_some(o)
    }

    fn allow(&self, h: &mut HeaderMap, origin: &HeaderValue) {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if self.credentials {
            h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
    }
}

fn add_vary(h: &mut HeaderMap, what: &str) {
    let merged = match h.get(header::VARY).and_then(|v| v.to_str().ok()) {
        Some(v) if v.split(',').any(|x| x.trim().eq_ignore_ascii_case(what)) => return,
        Some(v) if !v.is_empty() => format!("{v}, {what}"),
        _ => what.to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&merged) {
        h.insert(header::VARY, v);
    }
}

pub async fn cors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let inner = req.app_data::<web::Data<Cors>>().and_then(|c| c.inner.clone());
    let Some(inner) = inner else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let origin = req.headers().get(header::ORIGIN).cloned();
    let preflight = req.method() == Method::OPTIONS
        && origin.is_some()
        && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        // Answered here, before routing and without credentials: browsers send none on preflights.
        let mut resp = match inner.allowed(origin.as_ref()) {
            Some(o) => {
                let mut r = HttpResponse::NoContent().finish();
                let h = r.headers_mut();
                inner.allow(h, o);
                h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
                h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
                h.insert(header::ACCESS_CONTROL_MAX_AGE, inner.max_age.clone());
                r
            }
            None => AppError::OriginNotAllowed.error_response(),
        };
        let h = resp.headers_mut();
        add_vary(h, "Origin");
        add_vary(h, "Access-Control-Request-Method");
        add_vary(h, "Access-Control-Request-Headers");
        return Ok(req.into_response(resp));
    }
    let mut res = next.call(req).await?.map_into_boxed_body();
    let h = res.headers_mut();
    if let Some(o) = inner.allowed(origin.as_ref()) {
        inner.allow(h, o);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    }
    // Whatever the origin: the answer's CORS headers depend on it.
    add_vary(h, "Origin");
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_is_merged_once() {
        let mut h = HeaderMap::new();
        add_vary(&mut h, "Origin");
        assert_eq!(h.get(header::VARY).unwrap(), "Origin");
        let mut h = HeaderMap::new();
        h.insert(header::VARY, HeaderValue::from_static("Accept"));
        add_vary(&mut h, "Origin");
        add_vary(&mut h, "origin");
        assert_eq!(h.get(header::VARY).unwrap(), "Accept, Origin");
    }
}
