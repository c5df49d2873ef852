//! Score histograms as PNG, drawn directly (no font or plotting stack, and byte-identical across runs).

use anyhow::Result;
use std::path::Path;

const WIDTH: usize = 640;
const HEIGHT: usize = 360;
const MARGIN: usize = 30;

/// Draws `counts` (equal-width score bins over [0, 1]) as bars on a log scale, with axis ticks at 0, 0.25, 0.5,
/// 0.75 and 1, and a red line at `cut` (the selection threshold) when given. Writes a PNG.
pub fn write_histogram_png(path: &Path, counts: &[u64], cut: Option<f64>) -> Result<()> {
    let mut pixels = vec![255u8; WIDTH * HEIGHT * 3];
    let mut put = |x: usize, y: usize, rgb: [u8; 3]| {
        if x < WIDTH && y < HEIGHT {
            let i = (y * WIDTH + x) * 3;
            pixels[i..i + 3].copy_from_slice(&rgb);
        }
    };
    let plot_w = WIDTH - 2 * MARGIN;
    let plot_h = HEIGHT - 2 * MARGIN;
    let max = counts
        .iter()
        .map(|&c| ((c + 1) as f64).ln())
        .fold(0.0, f64::max)
        .max(1e-9);
    let n = counts.len().max(1);
    for (b, &c) in counts.iter().enumerate() {
        let x0 = MARGIN + b * plot_w / n;
        let x1 = MARGIN + (b + 1) * plot_w / n;
        let h = (((c + 1) as f64).ln() / max * plot_h as f64).round() as usize;
        for x in x0..x1.saturating_sub(1).max(x0 + 1) {
            for y in (HEIGHT - MARGIN - h)..(HEIGHT - MARGIN) {
                put(x, y, [70, 110, 180]);
            }
        }
    }
    for x in MARGIN..WIDTH - MARGIN {
        put(x, HEIGHT - MARGIN, [0, 0, 0]);
    }
    for y in MARGIN..=HEIGHT - MARGIN {
        put(MARGIN - 1, y, [0, 0, 0]);
    }
    for t in 0..=4 {
        let x = MARGIN + t * plot_w / 4;
        for y in HEIGHT - MARGIN..HEIGHT - MARGIN + 6 {
            put(x.min(WIDTH - MARGIN - 1), y, [0, 0, 0]);
        }
    }
    if let Some(cut) = cut {
        let x = MARGIN + ((cut.clamp(0.0, 1.0) * plot_w as f64) as usize).min(plot_w - 1);
        for y in MARGIN..HEIGHT - MARGIN {
            put(x, y, [200, 30, 30]);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, WIDTH as u32, HEIGHT as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(&pixels)?;
    }
    super::shards::write_atomic(path, &out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_decodable_png_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
        let counts = [5, 0, 100, 3, 1000, 7, 2, 0, 0, 40];
        write_histogram_png(&a, &counts, Some(0.7)).unwrap();
        write_histogram_png(&b, &counts, Some(0.7)).unwrap();
        let bytes = std::fs::read(&a).unwrap();
        assert_eq!(bytes, std::fs::read(&b).unwrap());
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (640, 360));
    }
}
