//! Encoders: JPEG (jpeg-encoder), PNG (image), lossy WebP (libwebp). Deterministic, no metadata written.

use image::ImageEncoder;

use super::source::Pixels;
use super::TransformError;
use crate::model::ImageFormat;

/// Encode `p`. The result has no spare capacity: it is cached as is, and the memory tier weighs
/// entries by their length.
pub fn encode(p: &Pixels, format: ImageFormat, quality: Option<u8>) -> Result<Vec<u8>, TransformError> {
    let mut out = encode_inner(p, format, quality)?;
    out.shrink_to_fit();
    Ok(out)
}

fn encode_inner(p: &Pixels, format: ImageFormat, quality: Option<u8>) -> Result<Vec<u8>, TransformError> {
    let err = |e: &dyn std::fmt::Display| TransformError::Encode(format!("{}: {e}", format.name()));
    let q = quality.unwrap_or(80).clamp(*crate::model::QUALITY.start(), *crate::model::QUALITY.end());
    match format {
        ImageFormat::Jpeg => {
            let (w, h) =
                (u16::try_from(p.width).map_err(|e| err(&e))?, u16::try_from(p.height).map_err(|e| err(&e))?);
            let color =
                if p.channels == 1 { jpeg_encoder::ColorType::Luma } else { jpeg_encoder::ColorType::Rgb };
            let mut out = Vec::with_capacity(p.data.len() / 8);
            jpeg_encoder::Encoder::new(&mut out, q).encode(&p.data, w, h, color).map_err(|e| err(&e))?;
            Ok(out)
        }
        ImageFormat::Png => {
            let color =
                if p.channels == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
            let mut out = Vec::with_capacity(p.data.len() / 2);
            image::codecs::png::PngEncoder::new(&mut out)
                .write_image(&p.data, p.width, p.height, color)
                .map_err(|e| err(&e))?;
            Ok(out)
        }
        ImageFormat::Webp => {
            // WebP has no grayscale mode: expand to RGB (the encoder keeps it neutral).
            let rgb;
            let data = if p.channels == 1 {
                rgb = p.data.iter().flat_map(|&v| [v, v, v]).collect::<Vec<u8>>();
                &rgb
            } else {
                &p.data
            };
            if p.width > 16383 || p.height > 16383 {
                return Err(err(&"larger than WebP's 16383 px limit"));
            }
            let mem = webp::Encoder::from_rgb(data, p.width, p.height).encode(f32::from(q));
            if mem.is_empty() {
                return Err(err(&"libwebp failed"));
            }
            Ok(mem.to_vec())
        }
        ImageFormat::Pam => Ok(super::source::to_pam(p)),
    }
}
