//! Study grids and series thumbnails: grid JSON, a small HTML grid page, `/series/{id}/preview`.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::conditional::{respond, Cacheable};
use super::error::AppError;
use super::extract::{native_request, parse_query, path_id, Caller};
use super::PreviewRequest;
use crate::auth::{Principal, Resource, Scope};
use crate::ids::OrthancId;
use crate::previews::PreviewSpec;
use crate::state::AppState;
use crate::studies::Thumbnails;
use crate::upstream::catalog::{SeriesCard, StudyGrid};

/// `GET /series/{id}/preview`: the series' representative (middle) instance, any variant.
pub async fn series_preview(
    mut request: PreviewRequest,
    Caller(principal): Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let series = request.spec.instance.clone();
    let grant = state.auth.authorize(&principal, Scope::Preview, Resource::Series(&series)).await?;
    request.spec.instance = state.studies.representative(&series).await?;
    super::previews::serve(&req, &state, &request, &grant.client).await
}

#[derive(Serialize)]
struct GridSeries<'a> {
    #[serde(flatten)]
    card: &'a SeriesCard,
    thumbnail: Option<String>,
}

#[derive(Serialize)]
struct GridBody<'a> {
    study: &'a str,
    description: &'a Option<String>,
    date: &'a Option<String>,
    series: Vec<GridSeries<'a>>,
}

/// The study's grid, and whom misses made for it are charged to.
async fn load_grid(
    req: &HttpRequest,
    principal: &Principal,
    state: &AppState,
) -> Result<(Arc<StudyGrid>, Arc<str>), AppError> {
    let study = path_id(req, "id")?;
    parse_query(req.query_string(), &[])?;
    let grant = state.auth.authorize(principal, Scope::Preview, Resource::Study(&study)).await?;
    Ok((state.studies.grid(&study).await?, grant.client))
}

/// `GET /studies/{id}/grid.json`: per series its id, tags, counts, representative and thumbnail URL.
pub async fn study_series(
    Caller(principal): Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let (grid, _) = load_grid(&req, &principal, &state).await?;
    let thumbs = Thumbnails::new(&state.config.grid.thumbnail_preset, &principal, state.auth.minter());
    let body = GridBody {
        study: &grid.study,
        description: &grid.description,
        date: &grid.date,
        series: grid.series.iter().map(|card| GridSeries { card, thumbnail: thumbs.url(card) }).collect(),
    };
    let json = serde_json::to_vec(&body).map_err(|e| AppError::Internal(e.to_string()))?;
    Ok(revalidated(&req, &state, json, "application/json"))
}

/// `GET /studies/{id}/grid`: the same as a page a clinician can open.
pub async fn study_grid_page(
    Caller(principal): Caller,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, AppError> {
    let (grid, client) = load_grid(&req, &principal, &state).await?;
    let eager = prefetch(&req, &state, &grid, client);
    let size = state.presets.get(&state.config.grid.thumbnail_preset).and_then(|p| p.w).unwrap_or(128);
    let thumbs = Thumbnails::new(&state.config.grid.thumbnail_preset, &principal, state.auth.minter());
    let html = render_grid(&grid, |card| thumbs.url(card), size, eager);
    let mut resp = revalidated(&req, &state, html.into_bytes(), "text/html; charset=utf-8");
    resp.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"),
    );
    Ok(resp)
}

/// Start making the thumbnails of the page's first `grid.prefetch` series as the caller's own
/// requests (planned from the page request's Accept, as the browser's `<img>` requests will be;
/// the caller's miss budget pays): those requests follow within milliseconds and find them made
/// or under way. Their number, which the page loads eagerly; a 304 prefetches nothing.
fn prefetch(req: &HttpRequest, state: &AppState, grid: &StudyGrid, client: Arc<str>) -> usize {
    let n = state.config.grid.prefetch;
    if n == 0 || req.headers().contains_key(header::IF_NONE_MATCH) {
        return n;
    }
    let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let query = [("preset".to_owned(), state.config.grid.thumbnail_preset.clone())];
    let mut ids =
        grid.series.iter().filter_map(|card| card.representative.as_deref().and_then(OrthancId::parse));
    // One plan for all: the same preset and Accept, only the instance differs.
    let Some(first) = ids.next() else { return n };
    let Ok(plan) = native_request(state, first, 0, false, &query, accept) else { return n };
    let rest = ids.take(n - 1).map(|instance| PreviewSpec { instance, ..plan.spec.clone() });
    let specs = std::iter::once(plan.spec.clone()).chain(rest).collect();
    state.previews.prefetch(specs, client);
    n
}

/// A body with a strong ETag of its bytes; 304 when the client has it.
fn revalidated(
    req: &HttpRequest,
    state: &AppState,
    body: Vec<u8>,
    content_type: &'static str,
) -> HttpResponse {
    let etag = format!("\"{}\"", &blake3::hash(&body).to_hex()[..32]);
    let max_age = format!("private, max-age={}", state.config.cache.metadata_ttl_s);
    let cache_control = header::HeaderValue::from_str(&max_age)
        .unwrap_or_else(|_| header::HeaderValue::from_static("private"));
    respond(req, Cacheable { etag: &etag, cache_control, content_type, headers: &[] }, body.into())
}

/// Minimal HTML escaping: DICOM tags are untrusted text.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page; its first `eager` thumbnails load at once (they are being made), the rest lazily.
fn render_grid(
    grid: &StudyGrid,
    thumbnail: impl Fn(&SeriesCard) -> Option<String>,
    size: u32,
    eager: usize,
) -> String {
    let title = grid.description.as_deref().filter(|d| !d.trim().is_empty()).unwrap_or("Study");
    let mut cells = String::new();
    let mut thumbnails = 0;
    for card in &grid.series {
        let label = format!(
            "{} {} {}",
            card.number.map(|n| format!("#{n}")).unwrap_or_default(),
            card.modality.as_deref().unwrap_or(""),
            card.description.as_deref().unwrap_or("")
        );
        let label = label.trim();
        let alt = if label.is_empty() { "Series thumbnail".to_owned() } else { format!("Series {label}") };
        let img = match thumbnail(card) {
            Some(url) => {
                // The first `eager` thumbnails, in the order `prefetch` makes them.
                let loading = if thumbnails < eager { "eager" } else { "lazy" };
                thumbnails += 1;
                format!(
                    r#"<img src="{}" alt="{}" loading="{loading}" decoding="async" width="{size}" height="{size}">"#,
                    esc(&url),
                    esc(&alt)
                )
            }
            None => r#"<div class="empty">no images</div>"#.to_owned(),
        };
        cells.push_str(&format!(
            "<figure data-series=\"{}\">{img}<figcaption>{} <small>({} image{})</small></figcaption></figure>\n",
            esc(&card.id),
            esc(label),
            card.instances,
            if card.instances == 1 { "" } else { "s" }
        ));
    }
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:1rem;background:#111;color:#eee}}
main{{display:grid;grid-template-columns:repeat(auto-fill,minmax({size}px,1fr));gap:.75rem}}
figure{{margin:0;background:#000;padding:.25rem;border-radius:4px;text-align:center}}
img{{max-width:100%;height:auto;display:block;margin:auto}}
figcaption{{font-size:.8rem;margin-top:.25rem;overflow-wrap:anywhere}}
.empty{{height:{size}px;display:flex;align-items:center;justify-content:center;color:#888}}
</style></head>
<body><h1>{title}</h1><main>
{cells}</main></body></html>
"#,
        title = esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_page_escapes_dicom_text() {
        let grid = StudyGrid {
            study: "s".into(),
            description: Some("<script>alert(1)</script>".into()),
            date: None,
            series: vec![SeriesCard {
                id: "a".into(),
                modality: Some("CT".into()),
                description: Some("\"><img src=x onerror=alert(1)>".into()),
                number: Some(2),
                instances: 3,
                representative: Some("r".into()),
                placeholder: None,
            }],
        };
        let html = render_grid(&grid, |c| Some(format!("/series/{}/preview?preset=thumb", c.id)), 128, 0);
        assert!(!html.contains("<script>alert"));
        assert!(!html.contains("<img src=x"));
        assert!(html.contains(r#"src="/series/a/preview?preset=thumb""#));
        assert!(html.contains(r#"loading="lazy""#));
        assert!(html.contains("alt=\"Series #2 CT &quot;&gt;&lt;img"));
        let eager = render_grid(&grid, |c| Some(format!("/series/{}/preview?preset=thumb", c.id)), 128, 1);
        assert!(eager.contains(r#"loading="eager""#) && !eager.contains(r#"loading="lazy""#));
    }
}
