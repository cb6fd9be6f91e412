//! Image work: dimensions, the thumbnail, the blurred preview and resized avatars. Decoding is
//! CPU-bound, so callers run these on the blocking pool; decoders are bounded so a small file
//! that claims huge dimensions (a decompression bomb) is refused, not decoded.

use std::io::Cursor;

use base64::Engine;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Images larger than this (bytes) are not decoded for thumbnails or previews.
pub(crate) const MAX_DECODE_BYTES: u64 = 32 * 1024 * 1024;

/// SVGs larger than this are not rasterised: parsing cost grows with the document, not the
/// thumbnail.
pub(crate) const MAX_SVG_BYTES: u64 = 4 * 1024 * 1024;

/// The thumbnail box when thumbnails are off: an SVG still needs a raster for its preview.
const DEFAULT_BOX: (u32, u32) = (480, 360);

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

/// What we can derive pictures from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Source {
    Raster(ImageFormat),
    Svg,
}

impl Source {
    pub(crate) fn of(content_type: &str) -> Option<Self> {
        match content_type {
            "image/svg+xml" => Some(Self::Svg),
            other => format_of(other).map(Self::Raster),
        }
    }

    pub(crate) fn max_bytes(self) -> u64 {
        match self {
            Self::Raster(_) => MAX_DECODE_BYTES,
            Self::Svg => MAX_SVG_BYTES,
        }
    }
}

/// Dimensions, preview and thumbnail for either kind of source.
pub(crate) fn derive_from(
    bytes: &[u8],
    source: Source,
    thumbs: Option<(u32, u32)>,
) -> Result<Derived, String> {
    match source {
        Source::Raster(format) => derive(bytes, format, thumbs),
        Source::Svg => derive_svg(bytes, thumbs),
    }
}

/// An SVG rendered to fit the thumbnail box (enlarged if smaller, as Rocket.Chat's sharp does),
/// returned with the document's own size. External references are never followed: an `<image>`
/// naming a path or URL renders as nothing, so an upload cannot make the server read its disk.
fn rasterize_svg(bytes: &[u8], (box_w, box_h): (u32, u32)) -> Result<(DynamicImage, u32, u32), String> {
    use resvg::{tiny_skia, usvg};
    let options = usvg::Options {
        image_href_resolver: usvg::ImageHrefResolver {
            resolve_data: Box::new(|_: &str, _: std::sync::Arc<Vec<u8>>, _: &usvg::Options| None),
            resolve_string: Box::new(|_: &str, _: &usvg::Options| None),
        },
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_data(bytes, &options).map_err(|e| e.to_string())?;
    let size = tree.size();
    let scale = (box_w as f32 / size.width()).min(box_h as f32 / size.height());
    if !scale.is_finite() || scale <= 0.0 {
        return Err("the SVG has no size".into());
    }
    let width = ((size.width() * scale).round() as u32).clamp(1, box_w);
    let height = ((size.height() * scale).round() as u32).clamp(1, box_h);
    let mut pixmap = tiny_skia::Pixmap::new(width, height).ok_or("empty raster")?;
    resvg::render(&tree, tiny_skia::Transform::from_scale(scale, scale), &mut pixmap.as_mut());
    // tiny-skia keeps premultiplied alpha; image wants it straight.
    let mut rgba = Vec::with_capacity(pixmap.data().len());
    for pixel in pixmap.pixels() {
        let c = pixel.demultiply();
        rgba.extend_from_slice(&[c.red(), c.green(), c.blue(), c.alpha()]);
    }
    let raster = image::RgbaImage::from_raw(width, height, rgba).ok_or("raster size mismatch")?;
    let intrinsic = (size.width().round() as u32, size.height().round() as u32);
    Ok((DynamicImage::ImageRgba8(raster), intrinsic.0.max(1), intrinsic.1.max(1)))
}

/// An SVG's preview and PNG thumbnail (always made when thumbnails are on: Rocket.Chat does not
/// show the SVG itself inline).
fn derive_svg(bytes: &[u8], thumbs: Option<(u32, u32)>) -> Result<Derived, String> {
    let (raster, width, height) = rasterize_svg(bytes, thumbs.unwrap_or(DEFAULT_BOX))?;
    let preview = preview_of(&raster)?;
    let thumbnail = match thumbs {
        Some(_) => Some((encode(&raster, ImageFormat::Png)?, "image/png", raster.width(), raster.height())),
        None => None,
    };
    Ok(Derived { width, height, preview, thumbnail })
}

fn preview_of(image: &DynamicImage) -> Result<String, String> {
    let small = image.resize(32, 32, FilterType::Triangle).blur(1.5);
    Ok(base64::engine::general_purpose::STANDARD.encode(encode(&small, ImageFormat::Jpeg)?))
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
    let preview = preview_of(&image)?;
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
    fn svgs_become_png_thumbnails_without_reading_the_disk() {
        let svg = br##"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="768" height="221"><rect width="768" height="221" fill="#f5455c"/><image href="/etc/passwd" width="10" height="10"/><image xlink:href="file:///etc/hostname" width="10" height="10"/></svg>"##;
        let d = derive_from(svg, Source::Svg, Some((480, 360))).unwrap();
        assert_eq!((d.width, d.height), (768, 221));
        let (thumb, ty, w, h) = d.thumbnail.unwrap();
        assert_eq!((ty, w, h), ("image/png", 480, 138));
        let img = image::load_from_memory_with_format(&thumb, ImageFormat::Png).unwrap().to_rgba8();
        assert_eq!(img.get_pixel(100, 100).0, [0xf5, 0x45, 0x5c, 0xff], "the shapes are drawn");
        // A small SVG is enlarged to the box, as sharp's `fit: inside` does.
        let small = br#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 20"><circle cx="5" cy="10" r="5"/></svg>"#;
        let (_, _, w, h) = derive_from(small, Source::Svg, Some((480, 360))).unwrap().thumbnail.unwrap();
        assert_eq!((w, h), (180, 360));
        assert!(derive_from(small, Source::Svg, None).unwrap().thumbnail.is_none());
        assert!(derive_from(b"<svg", Source::Svg, None).is_err());
        assert_eq!(Source::of("image/svg+xml"), Some(Source::Svg));
    }

    #[test]
    fn avatars_resize_and_convert() {
        let out = resize_avatar(&png(300, 200), ImageFormat::Png, Some(64), ImageFormat::Jpeg).unwrap();
        let img = image::load_from_memory_with_format(&out, ImageFormat::Jpeg).unwrap();
        assert_eq!((img.width(), img.height()), (64, 64));
    }
}
