//! Image work: dimensions, the thumbnail, the blurred preview and resized avatars. Decoding is
//! CPU-bound, so callers run these on the blocking pool; decoders are bounded so a small file
//! that claims huge dimensions (a decompression bomb) is refused, not decoded.

use std::io::Cursor;

use base64::Engine;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Images larger than this (bytes) are not decoded for thumbnails or previews.
pub(crate) const MAX_DECODE_BYTES: u64 = 32 * 1024 * 1024;

/// The formats we decode, by content type.
pub(crate) fn format_of(content_type: &str) -> Option<ImageFormat> {
    match content_type {
        "image/png" => Some(ImageFormat::Png),
        "image/jpeg" => Some(ImageFormat::Jpeg),
        "image/gif" => Some(ImageFormat::Gif),
        "image/webp" => Some(ImageFormat::WebP),
        _ => None,
    }
}

fn decode(bytes: &[u8], format: ImageFormat) -> Result<DynamicImage, String> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    reader.decode().map_err(|e| e.to_string())
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Result<Vec<u8>, String> {
    let mut out = Cursor::new(Vec::new());
    match format {
        // JPEG has no alpha channel.
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(image.to_rgb8()).write_to(&mut out, format),
        _ => image.write_to(&mut out, format),
    }
    .map_err(|e| e.to_string())?;
    Ok(out.into_inner())
}

/// What confirming an image upload derives from it.
pub(crate) struct Derived {
    pub width: u32,
    pub height: u32,
    /// Base64 JPEG, at most 32×32, blurred (`image_preview`).
    pub preview: String,
    /// `(bytes, content type, width, height)` when the image is larger than the thumbnail box.
    pub thumbnail: Option<(Vec<u8>, &'static str, u32, u32)>,
}

/// Dimensions, preview and (for images larger than `box_w`×`box_h`) a thumbnail that fits the
/// box, kept in the original format (GIF thumbnails are PNG: one frame).
pub(crate) fn derive(
    bytes: &[u8],
    format: ImageFormat,
    thumbs: Option<(u32, u32)>,
) -> Result<Derived, String> {
    let image = decode(bytes, format)?;
    let (width, height) = (image.width(), image.height());
    let small = image.resize(32, 32, FilterType::Triangle).blur(1.5);
    let preview = base64::engine::general_purpose::STANDARD.encode(encode(&small, ImageFormat::Jpeg)?);
    let thumbnail = match thumbs {
        Some((bw, bh)) if width >= bw || height >= bh => {
            let t = image.resize(bw, bh, FilterType::Triangle);
            let (out_format, out_type) = match format {
                ImageFormat::Jpeg => (ImageFormat::Jpeg, "image/jpeg"),
                ImageFormat::WebP => (ImageFormat::WebP, "image/webp"),
                _ => (ImageFormat::Png, "image/png"),
            };
            Some((encode(&t, out_format)?, out_type, t.width(), t.height()))
        }
        _ => None,
    };
    Ok(Derived { width, height, preview, thumbnail })
}

/// An avatar image re-encoded at most `size` pixels square, as PNG or JPEG.
pub(crate) fn resize_avatar(
    bytes: &[u8],
    format: ImageFormat,
    size: Option<u32>,
    out: ImageFormat,
) -> Result<Vec<u8>, String> {
    let image = decode(bytes, format)?;
    let image = match size {
        Some(s) if s < image.width() || s < image.height() => {
            image.resize_to_fill(s, s, FilterType::Triangle)
        }
        _ => image,
    };
    encode(&image, out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7])));
        encode(&img, ImageFormat::Png).unwrap()
    }

    #[test]
    fn derives_dimensions_preview_and_thumbnail() {
        let d = derive(&png(1000, 500), ImageFormat::Png, Some((480, 360))).unwrap();
        assert_eq!((d.width, d.height), (1000, 500));
        let (thumb, ty, w, h) = d.thumbnail.unwrap();
        assert_eq!((ty, w, h), ("image/png", 480, 240));
        assert_eq!(image::load_from_memory(&thumb).unwrap().width(), 480);
        let preview = base64::engine::general_purpose::STANDARD.decode(&d.preview).unwrap();
        let p = image::load_from_memory_with_format(&preview, ImageFormat::Jpeg).unwrap();
        assert!(p.width() <= 32 && p.height() <= 32);
        // Smaller than the box: no thumbnail.
        assert!(derive(&png(100, 80), ImageFormat::Png, Some((480, 360))).unwrap().thumbnail.is_none());
        assert!(derive(b"not an image", ImageFormat::Png, None).is_err());
    }

    #[test]
    fn avatars_resize_and_convert() {
        let out = resize_avatar(&png(300, 200), ImageFormat::Png, Some(64), ImageFormat::Jpeg).unwrap();
        let img = image::load_from_memory_with_format(&out, ImageFormat::Jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (64, 64));
    }
}
