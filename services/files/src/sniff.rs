//! What a file really is: content types from magic bytes, safe names, and the
//! `FileUpload_MediaTypeWhiteList` / `BlackList` rules.

/// Bytes read before deciding a file's type.
pub(crate) const SNIFF_LEN: usize = 512;

/// The content type the bytes prove, `None` when they prove nothing (text or unknown binary).
fn magic(head: &[u8]) -> Option<&'static str> {
    let starts = |sig: &[u8]| head.starts_with(sig);
    let at = |offset: usize, sig: &[u8]| head.get(offset..offset + sig.len()) == Some(sig);
    Some(if starts(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if starts(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        "image/gif"
    } else if starts(b"RIFF") && at(8, b"WEBP") {
        "image/webp"
    } else if starts(b"RIFF") && at(8, b"WAVE") {
        "audio/wav"
    } else if starts(b"BM") && head.len() > 14 {
        "image/bmp"
    } else if starts(b"%PDF-") {
        "application/pdf"
    } else if starts(b"\x1f\x8b") {
        "application/gzip"
    } else if starts(b"ID3") || starts(b"\xff\xfb") || starts(b"\xff\xf3") {
        "audio/mpeg"
    } else if starts(b"OggS") {
        "audio/ogg"
    } else if starts(b"\x1a\x45\xdf\xa3") {
        "video/webm"
    } else if at(4, b"ftyp") {
        if at(8, b"qt  ") { "video/quicktime" } else { "video/mp4" }
    } else if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        "application/zip"
    } else if starts(b"\x7fELF") || starts(b"MZ") {
        "application/x-executable"
    } else {
        return None;
    })
}

/// Text whose first 512 bytes open an `<svg` element. Binary data that merely contains the
/// four bytes (one random megabyte in five hundred does) is not SVG.
fn looks_like_svg(head: &[u8]) -> bool {
    looks_like_text(head) && String::from_utf8_lossy(head).to_ascii_lowercase().contains("<svg")
}

fn looks_like_text(head: &[u8]) -> bool {
    // A multi-byte character may be cut at the end of the sniffed bytes.
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    valid && !head.contains(&0)
}

/// The content type to store and serve: proven by magic bytes when they prove one; the client's
/// claim otherwise, unless the claim names a kind the bytes would have proven (an "image" that
/// is not one), or the bytes are SVG (never trusted under another name).
pub(crate) fn content_type(head: &[u8], claimed: Option<&str>, name: &str) -> String {
    // Callers may pass more than they read (a whole first chunk); only the start decides.
    let head = &head[..head.len().min(SNIFF_LEN)];
    let claimed = claimed.map(|c| c.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    if let Some(proven) = magic(head) {
        // A zip is also every office document: keep the more precise claim of a zip format.
        if proven == "application/zip"
            && let Some(c) = claimed.as_deref().filter(|c| c.starts_with("application/"))
        {
            return c.to_owned();
        }
        return proven.to_owned();
    }
    if looks_like_svg(head) {
        return "image/svg+xml".to_owned();
    }
    let provable = |c: &str| c.starts_with("image/") || c.starts_with("video/") || c.starts_with("audio/");
    if looks_like_text(head) {
        // Text may be any text format: a known text extension names it (as Rocket.Chat's
        // lookup by name does), else a claim the bytes cannot refute (drawings, XML formats…).
        if let Some(by_name) = text_type_by_extension(&extension(name)) {
            return by_name.to_owned();
        }
        return match claimed {
            Some(c) if !c.is_empty() && !provable(&c) && c.contains('/') => c,
            _ => "text/plain".to_owned(),
        };
    }
    match claimed {
        Some(c) if !c.is_empty() && !provable(&c) && c.contains('/') => c,
        _ => "application/octet-stream".to_owned(),
    }
}

fn text_type_by_extension(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "txt" | "text" | "lst" | "list" | "log" | "conf" | "ini" | "def" | "in" => "text/plain",
        "csv" => "text/csv",
        "md" | "markdown" => "text/markdown",
        "json" => "application/json",
        "xml" => "application/xml",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        _ => return None,
    })
}

fn list_matches(list: &str, content_type: &str) -> bool {
    list.split(',').map(str::trim).filter(|e| !e.is_empty()).any(|entry| {
        let entry = entry.to_ascii_lowercase();
        match entry.strip_suffix("/*") {
            Some(group) => content_type.split('/').next() == Some(group),
            None => entry == content_type,
        }
    })
}

/// Rocket.Chat's `fileUploadIsValidContentType`: the blacklist wins, an empty whitelist allows.
pub(crate) fn allowed(content_type: &str, whitelist: &str, blacklist: &str) -> bool {
    let t = content_type.to_ascii_lowercase();
    if list_matches(blacklist, &t) {
        return false;
    }
    whitelist.trim().is_empty() || list_matches(whitelist, &t)
}

/// A display name without directories, control characters or leading dots, at most 255 bytes.
/// Names never reach a file system path (blobs are keyed by id); this keeps them harmless in
/// headers and clients' "save as".
pub(crate) fn sanitize_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | '|' | '*' | '?' | ':'))
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > 255 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() { "file".to_owned() } else { out }
}

/// The extension of a name, lower-case, without the dot ("" when none).
pub(crate) fn extension(name: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() && ext.len() <= 10 => {
            ext.to_ascii_lowercase()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn binary_data_containing_svg_bytes_is_not_svg() {
        let mut noise: Vec<u8> =
            (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80).collect();
        noise[100..104].copy_from_slice(b"<sVg");
        assert_eq!(
            content_type(&noise, Some("application/octet-stream"), "x.bin"),
            "application/octet-stream"
        );
        // Only the first 512 bytes count, even when more are passed.
        let mut late = b"plain words ".repeat(60);
        late.extend_from_slice(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
        assert_eq!(content_type(&late, None, "notes"), "text/plain");
        let svg =
            b"<?xml version=\"1.0\"?>\n<!-- drawn by hand -->\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
        assert_eq!(content_type(svg, Some("text/plain"), "a.txt"), "image/svg+xml");
    }

    #[test]
    fn bytes_beat_claims() {
        assert_eq!(content_type(PNG, Some("text/plain"), "a.txt"), "image/png");
        assert_eq!(content_type(b"just text", Some("image/png"), "a.png"), "text/plain");
        assert_eq!(
            content_type(b"<?xml version='1.0'?><svg xmlns=", Some("image/png"), "a.png"),
            "image/svg+xml"
        );
        assert_eq!(content_type(b"a,b\n1,2", Some("text/csv"), "a"), "text/csv");
        assert_eq!(
            content_type(b"<mxfile/>", Some("application/octet-stream"), "x.drawio"),
            "application/octet-stream"
        );
        assert_eq!(content_type(b"plain", None, "x"), "text/plain");
        assert_eq!(content_type(b"a\nb", Some("application/octet-stream"), "x.lst"), "text/plain");
        // A text claiming to be HTML by name is HTML (served as an attachment, never inline).
        assert_eq!(content_type(b"<b>", Some("text/plain"), "x.html"), "text/html");
        assert_eq!(
            content_type(b"\0\x01\x02binary", Some("image/jpeg"), "a.jpg"),
            "application/octet-stream"
        );
        assert_eq!(
            content_type(b"\0\x01\x02binary", Some("application/x-thing"), "a"),
            "application/x-thing"
        );
        assert_eq!(
            content_type(b"PK\x03\x04....", Some("application/vnd.openxmlformats"), "a.docx"),
            "application/vnd.openxmlformats"
        );
        assert_eq!(content_type(b"%PDF-1.7", None, "a.pdf"), "application/pdf");
    }

    #[test]
    fn lists() {
        assert!(allowed("image/png", "", "image/svg+xml"));
        assert!(!allowed("image/svg+xml", "", "image/svg+xml"));
        assert!(allowed("image/png", "image/*, application/pdf", ""));
        assert!(allowed("application/pdf", "image/*,application/pdf", ""));
        assert!(!allowed("text/plain", "image/*,application/pdf", ""));
        assert!(!allowed("image/png", "image/*", "image/png"));
    }

    #[test]
    fn names() {
        assert_eq!(sanitize_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_name("..\\..\\win.ini"), "win.ini");
        assert_eq!(sanitize_name("..."), "file");
        assert_eq!(sanitize_name(".bashrc"), "bashrc");
        assert_eq!(sanitize_name("a\"b\r\n<c>.txt"), "abc.txt");
        assert_eq!(sanitize_name("日本語.png"), "日本語.png");
        assert_eq!(sanitize_name(&"é".repeat(300)).len(), 254);
        assert_eq!(extension("Cat.PNG"), "png");
        assert_eq!(extension("noext"), "");
    }
}
