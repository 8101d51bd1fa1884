//! Making a miss (`Made`): Orthanc's own bytes, or one pool job rendering the main variant and its uncached siblings from a source.

use std::sync::Arc;
use std::time::Instant;

use super::source::{Source, SourcePixels};
use super::{PreviewError, Timings};
use crate::cache::{CacheKey, Entry};
use crate::ids::OrthancId;
use crate::model::ImageFormat;
use crate::transform::{self, Pixels, TransformError, TransformPool, VariantSpec};
use crate::upstream::OrthancClient;

/// What a miss made, not stored yet: the image asked for, siblings made in the same job, and the
/// time this request spent on Orthanc and on the CPU.
#[derive(Debug)]
pub struct Made {
    pub main: Entry,
    pub extra: Vec<(CacheKey, Entry)>,
    pub timings: Timings,
}

/// Orthanc's own `/preview` of one frame.
pub async fn from_orthanc(
    upstream: &OrthancClient,
    instance: &OrthancId,
    frame: u32,
    format: ImageFormat,
    quality: Option<u8>,
) -> Result<Made, PreviewError> {
    let img = upstream.preview(instance, frame, format, quality).await?;
    let timings = Timings { upstream: img.elapsed, ..Timings::default() };
    Ok(Made { main: Entry::new(img.format.mime(), img.body), extra: Vec::new(), timings })
}

/// `variant` and each of `siblings` (none of them cached) from `source`, in one pool job that
/// decompresses a cached source once and resizes once per distinct geometry.
pub async fn render(
    pool: &TransformPool,
    source: Source,
    variant: VariantSpec,
    siblings: Vec<(VariantSpec, CacheKey)>,
    allow_upscale: bool,
) -> Result<Made, PreviewError> {
    let Source { pixels, timings } = source;
    let main_mime = variant.format.mime();
    let started = Instant::now();
    let (main, extra) = pool
        .run(move || {
            let (pixels, full) = match pixels {
                SourcePixels::Made { pixels, full } => (pixels, full),
                SourcePixels::Cached(entry) => {
                    let pixels = Pixels::decompress(&entry.body)?;
                    let full = (pixels.width, pixels.height);
                    (Arc::new(pixels), full)
                }
            };
            let specs: Vec<VariantSpec> =
                std::iter::once(variant).chain(siblings.iter().map(|(v, _)| v.clone())).collect();
            let mut outs = transform::render_all_at(&pixels, full, &specs, allow_upscale).into_iter();
            let main = outs.next().unwrap_or_else(|| Err(TransformError::Encode("no output".into())))?;
            // A sibling that fails is simply not stored: its own request will report why.
            let extra: Vec<(CacheKey, Entry)> = siblings
                .into_iter()
                .zip(outs)
                .filter_map(|((v, k), r)| Some((k, Entry::new(v.format.mime(), r.ok()?.into()))))
                .collect();
            Ok((main, extra))
        })
        .await?;
    let timings = Timings { transform: timings.transform + started.elapsed(), ..timings };
    Ok(Made { main: Entry::new(main_mime, main.into()), extra, timings })
}
