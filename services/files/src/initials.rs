//! Generated avatars as PNG or JPEG, for clients that ask for `format=png|jpeg` (mobile apps do:
//! they cannot show SVG). The build carries no font files, so the initial is drawn from a small
//! pixel font of our own: A–Z, 0–9 and `?`; any other initial (Cyrillic, CJK, …) leaves the
//! coloured square without a letter.

use image::{ImageFormat, Rgb, RgbImage};

/// Seven rows of five pixels; bit 4 is the left column.
fn glyph(c: char) -> Option<[u8; 7]> {
    Some(match c {
        'A' => [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'B' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110],
        'C' => [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110],
        'D' => [0b11110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11110],
        'E' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111],
        'F' => [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000],
        'G' => [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111],
        'H' => [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001],
        'I' => [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        'J' => [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100],
        'K' => [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001],
        'L' => [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111],
        'M' => [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001],
        'N' => [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001],
        'O' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'P' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000],
        'Q' => [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101],
        'R' => [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001],
        'S' => [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110],
        'T' => [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100],
        'U' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110],
        'V' => [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100],
        'W' => [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010],
        'X' => [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001],
        'Y' => [0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100, 0b00100],
        'Z' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111],
        '0' => [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110],
        '1' => [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110],
        '2' => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111],
        '3' => [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110],
        '4' => [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010],
        '5' => [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110],
        '6' => [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110],
        '7' => [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000],
        '8' => [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110],
        '9' => [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100],
        '?' => [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b00000, 0b00100],
        _ => return None,
    })
}

fn rgb(hex: &str) -> Rgb<u8> {
    let channel = |i: usize| hex.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()).unwrap_or(0x80);
    Rgb([channel(1), channel(3), channel(5)])
}

/// A `size`-pixel square in `color` (`#rrggbb`) with `initial` in white, about as tall as the SVG
/// version's letter, encoded as PNG or JPEG.
pub(crate) fn raster(initial: char, color: &str, size: u32, format: ImageFormat) -> Result<Vec<u8>, String> {
    let size = size.max(1);
    let mut image = RgbImage::from_pixel(size, size, rgb(color));
    if let Some(rows) = glyph(initial) {
        // The letter's cap height is about 45% of the square, as with the SVG's font size.
        let cell = (size as f32 * 0.45 / 7.0).max(1.0);
        let (width, height) = (5.0 * cell, 7.0 * cell);
        let (left, top) = ((size as f32 - width) / 2.0, (size as f32 - height) / 2.0);
        let white = Rgb([255, 255, 255]);
        for (y, px) in (0..size).flat_map(|y| (0..size).map(move |x| (y, x))) {
            let (cx, cy) = ((px as f32 + 0.5 - left) / cell, (y as f32 + 0.5 - top) / cell);
            if cx < 0.0 || cy < 0.0 || cx >= 5.0 || cy >= 7.0 {
                continue;
            }
            if rows[cy as usize] & (0b10000 >> cx as u32) != 0 {
                image.put_pixel(px, y, white);
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, format).map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn letters_are_drawn_in_white_on_the_colour() {
        let png = raster('T', "#2196F3", 70, ImageFormat::Png).unwrap();
        let img = image::load_from_memory_with_format(&png, ImageFormat::Png).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (70, 70));
        assert_eq!(img.get_pixel(2, 2).0, [0x21, 0x96, 0xf3], "the background");
        // T: the bar across the top of the letter, and the stem down the middle.
        let top = (70.0 - 7.0 * (70.0 * 0.45 / 7.0)) / 2.0;
        assert_eq!(img.get_pixel(35, top as u32 + 1).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(35, 35).0, [255, 255, 255]);
        assert_eq!(img.get_pixel(25, 40).0, [0x21, 0x96, 0xf3], "beside the stem");
        // No glyph: just the square.
        let plain = raster('Ж', "#000000", 8, ImageFormat::Png).unwrap();
        let img = image::load_from_memory(&plain).unwrap().to_rgb8();
        assert!(img.pixels().all(|p| p.0 == [0, 0, 0]));
        // Every glyph exists and differs from the others.
        let all: Vec<[u8; 7]> =
            ('A'..='Z').chain('0'..='9').chain(['?']).map(|c| glyph(c).unwrap()).collect();
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| b != a), "glyph {i} is duplicated");
        }
        let jpeg = raster('A', "#F44336", 16, ImageFormat::Jpeg).unwrap();
        assert_eq!(image::guess_format(&jpeg).unwrap(), ImageFormat::Jpeg);
    }
}
