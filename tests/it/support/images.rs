//! Deterministic test images (PNG, JPEG, PAM) per instance and frame.

/// A deterministic image per (id, frame): different instances give different bytes.
pub fn fake_png(id: &str, frame: u32) -> Vec<u8> {
    let seed = blake3::hash(format!("{id}/{frame}").as_bytes());
    let s = seed.as_bytes();
    let img = image::GrayImage::from_fn(64, 48, |x, y| {
        image::Luma([(x as u8).wrapping_mul(s[0]) ^ (y as u8).wrapping_add(s[1])])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

/// A deterministic PAM (`P7`) rendering, as Orthanc answers `Accept: image/x-portable-arbitrarymap`.
pub fn fake_pam(id: &str, frame: u32, w: u32, h: u32, channels: u8) -> Vec<u8> {
    let s = *blake3::hash(format!("{id}/{frame}").as_bytes()).as_bytes();
    let tuple = if channels == 1 { "GRAYSCALE" } else { "RGB" };
    let mut out =
        format!("P7\nWIDTH {w}\nHEIGHT {h}\nDEPTH {channels}\nMAXVAL 255\nTUPLTYPE {tuple}\nENDHDR\n")
            .into_bytes();
    for y in 0..h {
        for x in 0..w {
            for c in 0..channels as u32 {
                out.push(((x * 255 / w.max(1)) as u8).wrapping_add((y * 3 + c * 60) as u8) ^ s[0]);
            }
        }
    }
    out
}

pub fn fake_jpeg(id: &str, frame: u32) -> Vec<u8> {
    let png = fake_png(id, frame);
    let img = image::load_from_memory(&png).unwrap();
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Jpeg).unwrap();
    out
}

/// A deterministic DICOM file per instance: `w`×`h` 8-bit MONOCHROME2 pixels, different per id.
pub fn fake_dicom(id: &str, w: u32, h: u32) -> Vec<u8> {
    use dicom_core::{PrimitiveValue, VR};
    use orthanc_edge::dicom::synthetic::{header, native};
    let s = *blake3::hash(id.as_bytes()).as_bytes();
    let px: Vec<u8> =
        (0..w * h).map(|i| ((i % w) * 255 / w.max(1)) as u8 ^ s[(i / w % 32) as usize]).collect();
    native(
        header(h as u16, w as u16, 1, (8, 8, 7), false, "MONOCHROME2"),
        VR::OB,
        PrimitiveValue::U8(px.into()),
    )
}
