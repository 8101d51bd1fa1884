//! Signed-link bindings: the one URL shape (route kind, frame, exact variant parameters) a minted link token serves, and the check.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::credential::strip_token_param;
use super::{AuthError, Principal};

/// Most parameters a binding may name, and their longest key or value (bounds a token's claims).
pub const MAX_PARAMS: usize = 16;
const MAX_PARAM_LEN: usize = 64;

/// The kind of route a request is on, as a binding names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkRoute {
    /// `/instances/{id}/preview`, or `/instances/{id}/frames/{n}/preview` (with a frame).
    InstancePreview,
    /// `/instances/{id}/rendered` and its frames.
    InstanceRendered,
    /// `/series/{id}/preview`.
    SeriesPreview,
    /// Any `/dicom-web/...` image route.
    Dicomweb,
    /// `/studies/{id}/grid.json` and `/studies/{id}/grid`.
    Grid,
    /// `POST /auth/session` (turning a token into the cookie).
    Session,
}

impl LinkRoute {
    fn as_str(self) -> &'static str {
        match self {
            LinkRoute::InstancePreview => "instance preview",
            LinkRoute::InstanceRendered => "instance rendering",
            LinkRoute::SeriesPreview => "series preview",
            LinkRoute::Dicomweb => "DICOMweb",
            LinkRoute::Grid => "study grid",
            LinkRoute::Session => "session",
        }
    }
}

/// What a minted link token may serve, besides its resource restriction: exactly one route kind,
/// one frame (or the frameless path), and exactly these query parameters (besides `token`).
/// Format negotiation by `Accept` stays open: the header is not part of the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkBinding {
    pub route: LinkRoute,
    /// `None`: the path names no frame (`/instances/{id}/preview`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<u32>,
    /// Parameter → value, as written in the link's URL (`{"w": "64", "h": "64"}`, `{"preset": "thumb"}`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// Why a request is not the one its link was minted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkRefusal {
    Route,
    Frame,
    Params,
}

impl std::fmt::Display for LinkRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkRefusal::Route => "another route",
            LinkRefusal::Frame => "another frame",
            LinkRefusal::Params => {
                "other or extra variant parameters (size, format, quality, window, preset)"
            }
        })
    }
}

impl LinkBinding {
    pub fn new<'a>(
        route: LinkRoute,
        frame: Option<u32>,
        params: impl IntoIterator<Item = (&'a str, String)>,
    ) -> Self {
        Self { route, frame, params: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect() }
    }

    /// Within the bounds a token may carry (checked when a token is verified).
    pub fn is_bounded(&self) -> bool {
        self.params.len() <= MAX_PARAMS
            && self.params.iter().all(|(k, v)| k.len() <= MAX_PARAM_LEN && v.len() <= MAX_PARAM_LEN)
    }

    /// Does a request on `route`, `frame`, with these decoded query pairs (without `token`),
    /// ask for exactly what the link names? Pure: the whole decision.
    pub fn permits(
        &self,
        route: LinkRoute,
        frame: Option<u32>,
        query: &[(String, String)],
    ) -> Result<(), LinkRefusal> {
        if route != self.route {
            return Err(LinkRefusal::Route);
        }
        if frame != self.frame {
            return Err(LinkRefusal::Frame);
        }
        // Same count and every pair named: no extra, missing, repeated or changed parameter.
        let exact = query.len() == self.params.len()
            && query.iter().all(|(k, v)| self.params.get(k) == Some(v))
            && query.iter().enumerate().all(|(i, (k, _))| query[..i].iter().all(|(seen, _)| seen != k));
        if !exact {
            return Err(LinkRefusal::Params);
        }
        Ok(())
    }
}

/// Refuse a request its principal's link binding does not name (403 `forbidden`); a principal
/// without a binding (API key, session token, delegated) passes. `query_string` is the raw query.
pub fn check_link(
    principal: &Principal,
    route: LinkRoute,
    frame: Option<u32>,
    query_string: &str,
) -> Result<(), AuthError> {
    let Some(binding) = &principal.link else { return Ok(()) };
    let qs = strip_token_param(query_string);
    let query: Vec<(String, String)> = url::form_urlencoded::parse(qs.as_bytes()).into_owned().collect();
    binding.permits(route, frame, &query).map_err(|refusal| {
        tracing::warn!(target: "audit", principal = %principal.name, route = route.as_str(), code = "forbidden", "signed link used for {refusal}");
        AuthError::LinkMismatch(refusal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn only_the_links_own_url_passes() {
        let b = LinkBinding::new(
            LinkRoute::InstancePreview,
            None,
            [("w", "64".to_owned()), ("h", "64".to_owned())],
        );
        let route = LinkRoute::InstancePreview;
        assert_eq!(b.permits(route, None, &q(&[("w", "64"), ("h", "64")])), Ok(()));
        assert_eq!(b.permits(route, None, &q(&[("h", "64"), ("w", "64")])), Ok(()), "order is free");
        for other in [
            q(&[("w", "2048"), ("h", "64")]),
            q(&[("w", "64"), ("h", "64"), ("format", "png")]),
            q(&[("w", "64")]),
            q(&[]),
            q(&[("w", "64"), ("h", "64"), ("w", "64")]),
            q(&[("w", "064"), ("h", "64")]),
            q(&[("preset", "thumb")]),
        ] {
            assert_eq!(b.permits(route, None, &other), Err(LinkRefusal::Params), "{other:?}");
        }
        assert_eq!(b.permits(route, Some(0), &q(&[("w", "64"), ("h", "64")])), Err(LinkRefusal::Frame));
        for r in [
            LinkRoute::InstanceRendered,
            LinkRoute::SeriesPreview,
            LinkRoute::Dicomweb,
            LinkRoute::Grid,
            LinkRoute::Session,
        ] {
            assert_eq!(b.permits(r, None, &q(&[("w", "64"), ("h", "64")])), Err(LinkRefusal::Route));
        }
        let bare = LinkBinding::new(LinkRoute::InstancePreview, None, []);
        assert_eq!(bare.permits(route, None, &[]), Ok(()));
        assert_eq!(bare.permits(route, None, &q(&[("quality", "90")])), Err(LinkRefusal::Params));
    }

    #[test]
    fn the_claim_is_a_small_json_object() {
        let b = LinkBinding::new(LinkRoute::SeriesPreview, None, [("preset", "thumb".to_owned())]);
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v, serde_json::json!({"route": "series-preview", "params": {"preset": "thumb"}}));
        assert_eq!(serde_json::from_value::<LinkBinding>(v).unwrap(), b);
        let framed: LinkBinding =
            serde_json::from_value(serde_json::json!({"route": "instance-preview", "frame": 2})).unwrap();
        assert_eq!(framed.frame, Some(2));
        assert!(framed.params.is_empty());
        assert!(serde_json::from_value::<LinkBinding>(serde_json::json!({"route": "anything"})).is_err());
        let big = LinkBinding {
            route: LinkRoute::InstancePreview,
            frame: None,
            params: (0..=MAX_PARAMS).map(|i| (format!("p{i}"), String::new())).collect(),
        };
        assert!(!big.is_bounded());
        assert!(b.is_bounded());
    }
}
