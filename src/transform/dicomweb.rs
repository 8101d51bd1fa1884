//! DICOMweb rendering parameters (PS3.18 8.3.5.1.3): `viewport` and `window`, read as Orthanc's
//! DICOMweb plugin 1.7 reads them (`RenderingParameters` in `WadoRsRetrieveRendered.cpp`), with
//! the bounds the edge adds so that every value has one cache key.

use super::spec::{canonical_window, param_err as err, ParamError};
use crate::model::{Region, VoiFunction, VoiWindow};

/// `viewport=vw,vh[,sx,sy,sw,sh]`: the box the image fits in (a side left empty is not bounded),
/// and the source region when the 6-argument form names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Viewport {
    pub w: Option<u32>,
    pub h: Option<u32>,
    pub region: Option<Region>,
}

/// Largest source coordinate or extent (pixels); the edge's images are far smaller.
const MAX_COORD: f64 = 1e9;

/// Parse `viewport`. `vw` and `vh` are integers from 1 to `max` (or empty); `sx`, `sy`, `sw`,
/// `sh` are numbers rounded to the nearest integer (halves away from zero, `boost::math::iround`)
/// and taken as absolute values, a negative `sw` or `sh` flipping that axis; an empty one is the
/// default (0 for the origin, to the image's edge for the extent). A region that is the whole
/// image unflipped is no region, so that it shares the 2-argument form's cache entries.
pub fn parse_viewport(v: &str, max: u32) -> Result<Viewport, ParamError> {
    let tokens: Vec<&str> = v.split(',').map(str::trim).collect();
    if tokens.len() != 2 && tokens.len() != 6 {
        return Err(err("viewport", "must be `vw,vh` or `vw,vh,sx,sy,sw,sh`"));
    }
    let side = |s: &str| -> Result<Option<u32>, ParamError> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<u32>()
            .ok()
            .filter(|d| (1..=max).contains(d))
            .map(Some)
            .ok_or_else(|| err("viewport", format!("`vw` and `vh` must be integers from 1 to {max}")))
    };
    // The rounded value, or `None` when empty.
    let coord = |s: &str| -> Result<Option<i64>, ParamError> {
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && x.abs() <= MAX_COORD)
            .map(|x| Some(x.round() as i64))
            .ok_or_else(|| {
                err("viewport", format!("`sx`, `sy`, `sw` and `sh` must be numbers within ±{MAX_COORD:e}"))
            })
    };
    let abs = |x: i64| u32::try_from(x.unsigned_abs()).unwrap_or(u32::MAX);
    let (w, h) = (side(tokens[0])?, side(tokens[1])?);
    if tokens.len() == 2 {
        return Ok(Viewport { w, h, region: None });
    }
    let (sx, sy, sw, sh) = (coord(tokens[2])?, coord(tokens[3])?, coord(tokens[4])?, coord(tokens[5])?);
    let region = Region {
        x: sx.map_or(0, abs),
        y: sy.map_or(0, abs),
        w: sw.map(abs),
        h: sh.map(abs),
        flip_x: sw.is_some_and(|x| x < 0),
        flip_y: sh.is_some_and(|y| y < 0),
    };
    Ok(Viewport { w, h, region: (region != Region::default()).then_some(region) })
}

/// Parse `window=center,width,function` (`linear`, `linear-exact`, `sigmoid`). The width must be
/// positive (the plugin divides by it); both are canonical as on `/rendered`
/// ([`canonical_window`]: the width to 4 significant digits), so near-identical windows share
/// an entry.
pub fn parse_window(v: &str) -> Result<VoiWindow, ParamError> {
    let tokens: Vec<&str> = v.split(',').map(str::trim).collect();
    let [center, width, function] = tokens[..] else {
        return Err(err("window", "must be `center,width,function`"));
    };
    let num = |s: &str| s.parse::<f64>().ok().filter(|x| x.is_finite() && x.abs() <= 1e7);
    let (Some(center), Some(width)) = (num(center), num(width)) else {
        return Err(err("window", "center and width must be numbers"));
    };
    if width <= 0.0 {
        return Err(err("window", "width must be greater than 0"));
    }
    let function = match function {
        "linear" => VoiFunction::Linear,
        "linear-exact" => VoiFunction::LinearExact,
        "sigmoid" => VoiFunction::Sigmoid,
        _ => return Err(err("window", "function must be linear, linear-exact or sigmoid")),
    };
    let w = canonical_window(center, width);
    Ok(VoiWindow { center: w.center as f32, width: w.width as f32, function })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewports_as_the_plugin_reads_them() {
        let vp = |s: &str| parse_viewport(s, 2048).unwrap();
        assert_eq!(vp("128,128"), Viewport { w: Some(128), h: Some(128), region: None });
        assert_eq!(vp(" 64 , 32 "), Viewport { w: Some(64), h: Some(32), region: None });
        assert_eq!(vp("128,"), Viewport { w: Some(128), h: None, region: None });
        assert_eq!(vp("128,128,,,,"), vp("128,128"), "an empty region is the whole image");
        assert_eq!(vp("128,128,0,0,,"), vp("128,128"));
        let r = vp(",,10.5,-20.4,-100,50").region.unwrap();
        assert_eq!(r, Region { x: 11, y: 20, w: Some(100), h: Some(50), flip_x: true, flip_y: false });
        let r = vp("64,64,,,,-0.6").region.unwrap();
        assert_eq!(r, Region { x: 0, y: 0, w: None, h: Some(1), flip_x: false, flip_y: true });
        assert_eq!(vp("64,64,0,0,0,0").region.unwrap().w, Some(0), "a zero extent is an empty region");
        for bad in [
            "",
            "128",
            "0,5",
            "5,0",
            "99999,5",
            "a,b",
            "1,2,3",
            "1,2,3,4,5",
            "1,2,x,0,1,1",
            "1,2,1e10,0,1,1",
            "1,2,NaN,0,1,1",
            "-5,5",
        ] {
            assert_eq!(parse_viewport(bad, 2048).unwrap_err().param, "viewport", "{bad}");
        }
    }

    #[test]
    fn windows() {
        let w = |s: &str| parse_window(s).unwrap();
        assert_eq!(
            w("40,400,linear"),
            VoiWindow { center: 40.0, width: 400.0, function: VoiFunction::Linear }
        );
        assert_eq!(w(" -600 , 1500 , sigmoid ").function, VoiFunction::Sigmoid);
        assert_eq!(w("40.00001,400,linear-exact"), w("40,400,linear-exact"), "canonical");
        for bad in [
            "",
            "40,400",
            "40,400,linear,1",
            "a,400,linear",
            "40,0,linear",
            "40,-1,linear",
            "40,400,LINEAR",
            "40,inf,linear",
            "40,1e9,linear",
        ] {
            assert_eq!(parse_window(bad).unwrap_err().param, "window", "{bad}");
        }
    }
}
