//! Decode + resize + encode of one variant, single thread: the edge's path vs the `image` crate's own.
//!
//! Inputs are Orthanc PAM renderings in $TRANSFORM_BENCH_DIR ({ct512,cr2048}.pam, written by
//! scripts/bench/transform.sh from a real Orthanc), else synthetic images of the same sizes.
//! libvips on the same bytes is measured by benches/vips_thumbnail.py in the same script.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use image::ImageEncoder;
use orthanc_edge::model::ImageFormat;
use orthanc_edge::transform::encode::encode;
use orthanc_edge::transform::resize::{geometry, resize};
use orthanc_edge::transform::source::to_pam;
use orthanc_edge::transform::spec::{Fit, VariantSpec};
use orthanc_edge::transform::{render, Pixels};

fn input(name: &str, w: u32, h: u32) -> Vec<u8> {
    if let Some(dir) = std::env::var_os("TRANSFORM_BENCH_DIR") {
        let path = PathBuf::from(dir).join(format!("{name}.pam"));
        if let Ok(bytes) = std::fs::read(&path) {
            return bytes;
        }
        eprintln!("{} missing: using a synthetic image", path.display());
    }
    // A smooth, CT-like synthetic: disc on a gradient, mild texture.
    let (cx, cy, r2) = (w as i64 / 2, h as i64 / 2, (w.min(h) as i64 / 3).pow(2));
    let data = (0..h as i64)
        .flat_map(|y| {
            (0..w as i64).map(move |x| {
                let inside = (x - cx).pow(2) + (y - cy).pow(2) < r2;
                let base = (x * 200 / w as i64) as u8 / 2 + if inside { 100 } else { 0 };
                base.wrapping_add(((x * 31 + y * 17) % 7) as u8)
            })
        })
        .collect();
    to_pam(&Pixels { width: w, height: h, channels: 1, data })
}

fn spec(format: ImageFormat) -> VariantSpec {
    VariantSpec { w: Some(256), h: Some(256), fit: Fit::Contain, format, q: Some(80) }
}

/// The edge's path from Orthanc's bytes: parse PAM, Lanczos3 SIMD resize, encode.
fn edge_from_pam(pam: &[u8], format: ImageFormat) -> Vec<u8> {
    let pixels = Pixels::from_pam(pam, u64::MAX).expect("pam");
    let spec = spec(format);
    let g = geometry(pixels.width, pixels.height, &spec, false);
    encode(&resize(&pixels, &g).expect("resize"), format, spec.q).expect("encode")
}

/// The `image` crate alone: decode PAM, `imageops::resize` (Lanczos3), its JPEG encoder.
fn image_crate(pam: &[u8]) -> Vec<u8> {
    let img = image::load_from_memory_with_format(pam, image::ImageFormat::Pnm).expect("pnm").to_luma8();
    let (w, h) = img.dimensions();
    let scale = (256.0 / w as f64).min(256.0 / h as f64);
    let (ow, oh) = (((w as f64 * scale).round() as u32).max(1), ((h as f64 * scale).round() as u32).max(1));
    let small = image::imageops::resize(&img, ow, oh, image::imageops::FilterType::Lanczos3);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .write_image(small.as_raw(), ow, oh, image::ExtendedColorType::L8)
        .expect("jpeg");
    out
}

fn bench(c: &mut Criterion) {
    for (name, w, h) in [("ct512", 512, 512), ("cr2048", 2048, 2500)] {
        let pam = input(name, w, h);
        let cached = Pixels::from_pam(&pam, u64::MAX).expect("pam").compress();
        let mut group = c.benchmark_group(format!("transform/{name}"));
        group.sample_size(20).throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("edge", "jpeg"), |b| {
            b.iter(|| edge_from_pam(&pam, ImageFormat::Jpeg))
        });
        group.bench_function(BenchmarkId::new("edge", "webp"), |b| {
            b.iter(|| edge_from_pam(&pam, ImageFormat::Webp))
        });
        group.bench_function(BenchmarkId::new("edge-cached-source", "jpeg"), |b| {
            b.iter(|| render(&cached, &spec(ImageFormat::Jpeg), false).expect("render"))
        });
        group.bench_function(BenchmarkId::new("image-crate", "jpeg"), |b| b.iter(|| image_crate(&pam)));
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
