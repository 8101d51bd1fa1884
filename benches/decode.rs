//! Decode + window + resize + encode of one DICOM frame, single thread: the edge-side decoder.
//!
//! Inputs are the DICOM files scripts/bench/decode.sh generates in $DECODE_BENCH_DIR
//! ({ct512,cr2048}_{native,j2k}.dcm); the same files go through pydicom and Orthanc+GDCM in that
//! script, which reads the medians criterion writes under target/criterion/decode/edge/. Each
//! benchmarked image's output is also written once, before it is timed, to
//! $DECODE_BENCH_DIR/{name}.edge.jpg, so that the script can check the edge made the same picture
//! as its peers.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use orthanc_edge::dicom::{render_frame_at, Limits};
use orthanc_edge::model::{ImageFormat, Rendering};
use orthanc_edge::transform::render_all_at;
use orthanc_edge::transform::resize::max_reduction;
use orthanc_edge::transform::spec::{Fit, VariantSpec};

/// The edge's own allocator (jemalloc, `src/main.rs`): the frame buffers of one decode are
/// reused by the next, as in the server, not mapped and faulted in again each time.
#[global_allocator]
static ALLOC: orthanc_edge::alloc::Guarded = orthanc_edge::alloc::Guarded;

/// The peers' output: fit inside 256×256, JPEG quality 90 (Orthanc's `/rendered` default).
const SPEC: VariantSpec =
    VariantSpec { w: Some(256), h: Some(256), fit: Fit::Contain, format: ImageFormat::Jpeg, q: Some(90) };

fn dir() -> PathBuf {
    std::env::var_os("DECODE_BENCH_DIR").expect("DECODE_BENCH_DIR: run scripts/bench/decode.sh").into()
}

fn input(name: &str) -> Vec<u8> {
    let path = dir().join(format!("{name}.dcm"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The instance's own window, as Orthanc's `/rendered` and the pydicom pipeline apply it; a
/// JPEG 2000 frame decoded at the resolution level the output needs, as the edge does on a miss.
fn edge(file: &[u8], limits: &Limits) -> Vec<u8> {
    let rendering = Rendering::Rendered { window: None };
    let reduce = |w, h| max_reduction(w, h, &[SPEC], false);
    let r = render_frame_at(file, 0, &rendering, limits, reduce).expect("decode");
    render_all_at(&r.pixels, r.full, &[SPEC], false).pop().expect("one variant").expect("encode")
}

fn bench(c: &mut Criterion) {
    let limits = Limits { max_pixels: u64::MAX, max_decoded_bytes: u64::MAX };
    let mut group = c.benchmark_group("decode");
    group.sample_size(10).throughput(Throughput::Elements(1));
    for name in ["ct512_native", "ct512_j2k", "cr2048_native", "cr2048_j2k"] {
        let file = input(name);
        // Criterion calls this for warm-up and for each sample, and only if the filter keeps it.
        let mut written = false;
        group.bench_with_input(BenchmarkId::new("edge", name), &file, |b, file| {
            if !written {
                let out = dir().join(format!("{name}.edge.jpg"));
                std::fs::write(&out, edge(file, &limits))
                    .unwrap_or_else(|e| panic!("{}: {e}", out.display()));
                written = true;
            }
            b.iter(|| edge(file, &limits))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
