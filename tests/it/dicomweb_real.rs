//! DICOMweb `/rendered` against the reference: Debian's Orthanc DICOMweb plugin (orthanc-dicomweb
//! 1.7, loaded by scripts/ci/it-orthanc.sh in the real Orthanc). For every instance and frame the
//! plugin renders, the edge's PNG has the plugin's pixels exactly, for request windows (LINEAR,
//! SIGMOID), crops and flips; where the edge knowingly differs (README "DICOMweb rendering"), the
//! test says how:
//! - no `window`: the edge applies the instance's own window (PS3.18); plugin 1.7 reads it but
//!   renders the whole range. The edge's image is the plugin's with that window given explicitly.
//! - LINEAR_EXACT: the plugin's formula drops the standard's `+ 0.5` (its `(x - c) / w`): the
//!   window's lower half is black and the rest 127.5 levels darker than the standard's, which the
//!   edge follows. The test checks exactly that relation.

#![allow(clippy::unwrap_used)]

use crate::support::*;
use serde_json::Value;

/// The pixels of a PNG: grey or RGB, with the size.
fn pixels(body: &[u8]) -> (u32, u32, u8, Vec<u8>) {
    let img = image::load_from_memory_with_format(body, image::ImageFormat::Png).unwrap();
    match img.color().channel_count() {
        1 => {
            let g = img.to_luma8();
            (g.width(), g.height(), 1, g.into_raw())
        }
        _ => {
            let c = img.to_rgb8();
            (c.width(), c.height(), 3, c.into_raw())
        }
    }
}

/// Number of differing samples and the largest difference.
fn diff(a: &[u8], b: &[u8]) -> (usize, u8) {
    a.iter().zip(b).fold((0, 0), |(n, m), (x, y)| {
        let d = x.abs_diff(*y);
        (n + usize::from(d > 0), m.max(d))
    })
}

async fn png(url: &str, auth: Option<(&str, &str)>) -> (u16, Vec<u8>) {
    let mut req = client().get(url).header("Accept", "image/png");
    req = match auth {
        Some((u, p)) => req.basic_auth(u, Some(p)),
        None => req.header("X-Api-Key", PREVIEW_KEY),
    };
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

/// What to compare a query's images by.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    Exact,
    /// LINEAR_EXACT: the plugin's `(x - c) / w * 255` against the standard's `+ 127.5`.
    HalfWindowLower,
}

#[actix_web::test]
async fn the_edge_renders_dicomweb_as_the_orthanc_plugin_does() {
    let Some(r) = RealOrthanc::from_env() else { return };
    if std::env::var("ORTHANC_EDGE_IT_DICOMWEB").as_deref() != Ok("1") {
        let required = std::env::var("ORTHANC_EDGE_IT_REQUIRED").as_deref() == Ok("1");
        assert!(
            !required,
            "the real Orthanc runs without its DICOMweb plugin (apt-get install orthanc-dicomweb)"
        );
        eprintln!("skipped: the real Orthanc has no DICOMweb plugin");
        return;
    }
    let edge = r.edge(&r.url).envs(&[("ORTHANC_EDGE__ORTHANC__MAX_BODY_BYTES", "67108864")]).start().await;
    let auth = Some((r.user.as_str(), r.password.as_str()));
    let (mut compared, mut deviations) = (0, 0);
    let instances: Vec<(String, Value)> =
        r.manifest["instances"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (name, inst) in instances {
        let id = inst["instance"].as_str().unwrap();
        let tags = r.json(&format!("/instances/{id}/tags?simplify")).await;
        let tag = |k: &str| tags[k].as_str().map(|v| v.split('\\').next().unwrap().trim().to_owned());
        let path = format!(
            "/dicom-web/studies/{}/series/{}/instances/{}",
            tag("StudyInstanceUID").unwrap(),
            tag("SeriesInstanceUID").unwrap(),
            tag("SOPInstanceUID").unwrap()
        );
        let frames = inst["frames"].as_u64().unwrap_or(1).min(3);
        let own_window = tag("WindowCenter").zip(tag("WindowWidth"));
        let grey = inst["samples_per_pixel"].as_u64() == Some(1);
        let mut queries: Vec<(String, Expect)> = [
            "window=40,400,linear",
            "window=40,400,sigmoid",
            "window=1000,600,linear",
            "viewport=64,48,10,20,64,48&window=500,1000,linear",
            "viewport=64,48,10,20,-64,-48&window=40,400,linear",
            "viewport=32,40,3,5,32,40&window=300,700,sigmoid",
        ]
        .iter()
        .map(|q| (q.to_string(), Expect::Exact))
        .collect();
        let exact = if grey { Expect::HalfWindowLower } else { Expect::Exact };
        for w in ["window=100,50,linear-exact", "window=1000,2000,linear-exact", "window=0,400,linear-exact"]
        {
            queries.push((w.into(), exact));
        }
        let mono1 = inst["photometric"].as_str() == Some("MONOCHROME1");
        if own_window.is_none() || !grey {
            // No window to differ on: the whole range (of the region) as the plugin's.
            for q in ["", "viewport=64,48,10,20,64,48", "viewport=64,48,10,20,-64,-48"] {
                queries.push((q.to_owned(), Expect::Exact));
            }
        }
        for n in 1..=frames {
            let frame = format!("{path}/frames/{n}/rendered");
            let (status, _) = png(&format!("{}{frame}", r.url), auth).await;
            if status != 200 {
                // The plugin cannot decode it (Orthanc's own decoder: JPEG 2000): the edge can.
                let (got, _) = png(&format!("{}{frame}", edge.url), None).await;
                assert_eq!(got, 200, "{name} frame {n}: the plugin answers {status}, the edge must render");
                continue;
            }
            for (q, expect) in &queries {
                let (s1, want) = png(&format!("{}{frame}?{q}", r.url), auth).await;
                let (s2, got) = png(&format!("{}{frame}?{q}", edge.url), None).await;
                assert_eq!((s1, s2), (200, 200), "{name} frame {n} ?{q}");
                let (want, got) = (pixels(&want), pixels(&got));
                assert_eq!((got.0, got.1, got.2), (want.0, want.1, want.2), "{name} frame {n} ?{q}: size");
                let (count, max) = diff(&got.3, &want.3);
                match expect {
                    Expect::Exact => assert_eq!(
                        (count, max),
                        (0, 0),
                        "{name} frame {n} ?{q}: {count} samples differ from the plugin's, by up to {max}"
                    ),
                    Expect::HalfWindowLower => {
                        let level = |v: u8| if mono1 { 255 - v } else { v };
                        for (e, p) in got.3.iter().zip(&want.3) {
                            let (e, p) = (level(*e), level(*p));
                            let ok = match p {
                                0 => e <= 128,
                                255 => e == 255,
                                p => matches!(i16::from(e) - i16::from(p), 127 | 128),
                            };
                            assert!(ok, "{name} frame {n} ?{q}: the edge's {e} for the plugin's {p}");
                        }
                    }
                }
                compared += 1;
            }
            // The instance's own window: the edge applies it where the plugin 1.7 does not.
            if let (Some((c, w)), true) = (&own_window, grey) {
                let function = match tag("VOILUTFunction").as_deref() {
                    Some("SIGMOID") => "sigmoid",
                    Some("LINEAR_EXACT") => "linear-exact",
                    _ => "linear",
                };
                let explicit = format!("window={c},{w},{function}");
                let (_, want) = png(&format!("{}{frame}?{explicit}", r.url), auth).await;
                let (_, got) = png(&format!("{}{frame}", edge.url), None).await;
                let (_, whole) = png(&format!("{}{frame}", r.url), auth).await;
                let (want, got, whole) = (pixels(&want), pixels(&got), pixels(&whole));
                assert_eq!(diff(&got.3, &want.3).1, 0, "{name} frame {n}: the edge's default is ?{explicit}");
                assert!(
                    diff(&whole.3, &got.3).0 > 0 || want.3 == whole.3,
                    "{name}: the plugin's whole range"
                );
                deviations += 1;
            }
        }
    }
    eprintln!("dicomweb_real: {compared} renderings compared with the plugin; {deviations} default windows");
    assert!(compared >= 40, "only {compared} comparisons");
    edge.stop().await;
}
