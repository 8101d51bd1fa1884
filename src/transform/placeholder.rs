//! Typed placeholder tiles for instances without pixel data: a dark tile, a border, a label.

use super::Pixels;

const BACKGROUND: u8 = 48;
const BORDER: u8 = 96;
const INK: u8 = 216;

/// The characters the built-in font draws; `FONT[i]` is the glyph of the `i`-th.
const CHARS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -/";
/// 5×7 glyphs, one byte per row from the top, bit 4 the leftmost column.
const FONT: [u64; 39] = [
    0x0E11111F111111, // A
    0x1E11111E11111E, // B
    0x0E11101010110E, // C
    0x1E11111111111E, // D
    0x1F10101E10101F, // E
    0x1F10101E101010, // F
    0x0E11101711110F, // G
    0x1111111F111111, // H
    0x0E04040404040E, // I
    0x0702020202120C, // J
    0x11121418141211, // K
    0x1010101010101F, // L
    0x111B1515111111, // M
    0x11111915131111, // N
    0x0E11111111110E, // O
    0x1E11111E101010, // P
    0x0E11111115120D, // Q
    0x1E11111E141211, // R
    0x0F10100E01011E, // S
    0x1F040404040404, // T
    0x1111111111110E, // U
    0x11111111110A04, // V
    0x1111111515150A, // W
    0x11110A040A1111, // X
    0x1111110A040404, // Y
    0x1F01020408101F, // Z
    0x0E11131519110E, // 0
    0x040C040404040E, // 1
    0x0E11010204081F, // 2
    0x1F02040201110E, // 3
    0x02060A121F0202, // 4
    0x1F101E0101110E, // 5
    0x0608101E11110E, // 6
    0x1F010204080808, // 7
    0x0E11110E11110E, // 8
    0x0E11110F01020C, // 9
    0x00000000000000, // space
    0x0000001F000000, // -
    0x01010204081010, // /
];

/// The label of a placeholder for an instance of `kind` ("sr", "pdf", "ecg", "rtplan", "rtstruct",
/// "ko", "pr", "video"; anything else is "other": its modality, or "DOC" without one).
pub fn label_for(kind: &str, modality: Option<&str>) -> String {
    match kind {
        "sr" | "pdf" | "ecg" | "rtplan" | "rtstruct" | "ko" | "pr" | "video" => kind.to_ascii_uppercase(),
        // `returnUnsupportedImage`: a frame nobody can decode.
        "unsupported" => "N/A".to_owned(),
        _ => modality
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map_or_else(|| "DOC".to_owned(), str::to_ascii_uppercase),
    }
}

/// A `width`×`height` 8-bit grayscale tile: dark grey, a thin lighter border, and `label` centred
/// in light letters scaled to about half the width (smaller for long labels, clipped when even the
/// smallest does not fit). Letters are case-insensitive; characters the font lacks are skipped.
pub fn placeholder(label: &str, width: u32, height: u32) -> Pixels {
    let (w, h) = (width as usize, height as usize);
    let mut data = vec![BACKGROUND; w * h];
    let border = (w.min(h) / 64).max(1);
    for (y, row) in data.chunks_exact_mut(w.max(1)).enumerate() {
        for (x, px) in row.iter_mut().enumerate() {
            if x < border || y < border || x + border >= w || y + border >= h {
                *px = BORDER;
            }
        }
    }
    let glyphs: Vec<u64> = label
        .chars()
        .filter_map(|c| CHARS.find(c.to_ascii_uppercase()).and_then(|i| FONT.get(i)).copied())
        .collect();
    if !glyphs.is_empty() {
        let cells = glyphs.len() * 6 - 1;
        let scale = (w / 2 / cells).min(h / 2 / 7).max(1);
        let left = (w as i64 - (cells * scale) as i64) / 2;
        let top = (h as i64 - (7 * scale) as i64) / 2;
        for (i, glyph) in glyphs.iter().enumerate() {
            for (row, col) in (0..7).flat_map(|r| (0..5).map(move |c| (r, c))) {
                if glyph >> ((6 - row) * 8 + (4 - col)) & 1 == 1 {
                    let x = left + ((i * 6 + col) * scale) as i64;
                    fill(&mut data, (w, h), (x, top + (row * scale) as i64), scale);
                }
            }
        }
    }
    Pixels { width, height, channels: 1, data }
}

/// Paint the `size`×`size` square at (`x`, `y`) with ink, clipped to the image.
fn fill(data: &mut [u8], (w, h): (usize, usize), (x, y): (i64, i64), size: usize) {
    let clip = |v: i64, max: usize| v.clamp(0, max as i64) as usize;
    let (x0, x1) = (clip(x, w), clip(x + size as i64, w));
    for yy in clip(y, h)..clip(y + size as i64, h) {
        data[yy * w + x0..yy * w + x1].fill(INK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ImageFormat;

    /// (left, top, right, bottom) of the inked pixels, exclusive ends.
    fn ink_box(p: &Pixels) -> Option<(usize, usize, usize, usize)> {
        let w = p.width as usize;
        let inked: Vec<(usize, usize)> =
            p.data.iter().enumerate().filter(|(_, &v)| v == INK).map(|(i, _)| (i % w, i / w)).collect();
        let (xs, ys) = (inked.iter().map(|p| p.0), inked.iter().map(|p| p.1));
        Some((xs.clone().min()?, ys.clone().min()?, xs.max()? + 1, ys.max()? + 1))
    }

    #[test]
    fn any_size_gives_a_bordered_tile_of_that_size() {
        for (w, h) in [(1, 1), (64, 64), (256, 256), (2048, 16), (3, 1000), (0, 5)] {
            let p = placeholder("RTSTRUCT", w, h);
            assert_eq!((p.width, p.height, p.channels), (w, h, 1));
            assert_eq!(p.data.len(), (w * h) as usize);
            assert!(p.data.first().is_none_or(|&v| v == BORDER), "{w}x{h}");
        }
        assert_eq!(placeholder("PR", 1, 1).data, vec![BORDER]);
    }

    #[test]
    fn letters_are_centred_where_the_ink_is() {
        let blank = placeholder("", 256, 256);
        assert!(ink_box(&blank).is_none());
        let sr = placeholder("SR", 256, 256);
        // 11 cells of 11 px wide, 7 high: about half the width, centred.
        assert_eq!(ink_box(&sr), Some((67, 89, 188, 166)));
        assert_eq!(sr.data[128 * 256 + 128], BACKGROUND, "the gap between the letters");
        assert_ne!(sr.data, blank.data);
        assert_ne!(sr.data, placeholder("PDF", 256, 256).data);
        assert_eq!(sr, placeholder("s?r", 256, 256), "case-insensitive, unknown characters skipped");
        assert!(ink_box(&placeholder("ECG", 64, 64)).is_some());
        assert!(ink_box(&placeholder("VIDEO", 2048, 16)).is_some());
    }

    #[test]
    fn long_labels_shrink_to_fit_and_are_clipped_when_they_cannot() {
        let (l, t, r, b) = ink_box(&placeholder("RTSTRUCT", 256, 256)).unwrap();
        assert!(r - l < 128 && b - t == 14, "scale 2: {l} {t} {r} {b}");
        // 100 eights at the smallest scale overflow 64 px: clipped at both sides, not wrapped.
        let (l, t, r, b) = ink_box(&placeholder(&"8".repeat(100), 64, 64)).unwrap();
        assert_eq!((l, t, r, b), (0, 28, 64, 35));
    }

    #[test]
    fn labels_by_kind() {
        assert_eq!(label_for("sr", None), "SR");
        assert_eq!(label_for("rtstruct", Some("RTSTRUCT")), "RTSTRUCT");
        assert_eq!(label_for("other", Some("rtdose")), "RTDOSE");
        assert_eq!(label_for("other", Some(" ")), "DOC");
        assert_eq!(label_for("other", None), "DOC");
    }

    #[test]
    fn encodes_to_a_png_that_decodes_to_the_same_pixels() {
        let p = placeholder(&label_for("pdf", None), 96, 64);
        let png = crate::transform::encode::encode(&p, ImageFormat::Png, None).unwrap();
        let back = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!((back.width(), back.height()), (96, 64));
        assert_eq!(back.into_raw(), p.data);
    }
}
