//! File and avatar bytes over plain HTTP: `/file-upload/:id/:name` (and the old
//! `/ufs/GridFS:Uploads/:id/:name`), `/avatar/<username>`, `/avatar/room/<rid>`.
//!
//! Clients authenticate these by headers (`X-User-Id`/`X-Auth-Token`), cookies or query
//! (`rc_uid`/`rc_token`): an `<img>` tag cannot send headers. The files service decides
//! access; this module speaks HTTP: ranges, validators, caching and disposition.

use apogee_api::{AvatarFormat, AvatarOf, RangeSpec, Served};
use apogee_types::{ErrorKind, Principal, ServiceError};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::GatewayState;
use crate::extract::{Query, parse_query};

fn plain(status: StatusCode, text: &'static str) -> Response {
    let mut r = (status, text).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn error_response(e: &ServiceError) -> Response {
    match e.kind {
        ErrorKind::PermissionDenied | ErrorKind::Unauthenticated => plain(StatusCode::FORBIDDEN, "Forbidden"),
        ErrorKind::NotFound | ErrorKind::InvalidArgument => plain(StatusCode::NOT_FOUND, "File not found"),
        ErrorKind::Unavailable => plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
        _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
    }
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The caller by headers, then cookies, then query; `None` when none of them logs in.
pub(crate) async fn optional_principal(
    state: &GatewayState,
    headers: &HeaderMap,
    query: &std::collections::HashMap<String, String>,
) -> Option<Principal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let candidates = [
        (header("x-user-id"), header("x-auth-token")),
        (cookie(headers, "rc_uid"), cookie(headers, "rc_token")),
        (query.get("rc_uid").map(String::as_str), query.get("rc_token").map(String::as_str)),
    ];
    for (uid, token) in candidates {
        if let (Some(uid), Some(token)) = (uid, token)
            && !uid.is_empty()
            && !token.is_empty()
            && let Ok(p) = state.authenticate(uid, token).await
        {
            return Some(p);
        }
    }
    None
}

/// `Range: bytes=a-b` (one range; several ranges are served whole, as many servers do).
fn parse_range(headers: &HeaderMap) -> Option<RangeSpec> {
    let value = headers.get(header::RANGE)?.to_str().ok()?.trim();
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        (true, false) => Some(RangeSpec::Suffix(b.parse().ok()?)),
        (false, true) => Some(RangeSpec::From(a.parse().ok()?)),
        (false, false) => Some(RangeSpec::Span(a.parse().ok()?, b.parse().ok()?)),
        (true, true) => None,
    }
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// Types a browser may render inline without running anything of the file's author.
fn safe_inline(content_type: &str) -> bool {
    (content_type.starts_with("image/") && content_type != "image/svg+xml")
        || content_type.starts_with("video/")
        || content_type.starts_with("audio/")
        || content_type == "application/pdf"
        || content_type == "text/plain"
}

fn disposition(name: &str, inline: bool) -> HeaderValue {
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    HeaderValue::from_str(&format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The policy of every served upload and uploaded avatar.
const FILE_CSP: &str = "default-src 'none'; sandbox";

/// `GET /file-upload/:id/:name`.
pub(crate) async fn file(
    State(state): State<GatewayState>,
    Path((id, _name)): Path<(String, String)>,
    Query(query): Query,
    headers: HeaderMap,
    body: Body,
) -> Response {
    drain(body, state.cfg.max_body_bytes).await;
    serve_file(state, id, query, headers).await
}

/// `GET /file-upload/:id` (names are optional for lookups).
pub(crate) async fn file_by_id(
    State(state): State<GatewayState>,
    Path(id): Path<String>,
    Query(query): Query,
    headers: HeaderMap,
    body: Body,
) -> Response {
    drain(body, state.cfg.max_body_bytes).await;
    serve_file(state, id, query, headers).await
}

/// Reads and drops a request body (some clients send one with GET), up to `limit` bytes: a
/// response sent before the body is read closes the connection under a client still writing.
async fn drain(body: Body, limit: usize) {
    let _ = axum::body::to_bytes(body, limit).await;
}

async fn serve_file(
    state: GatewayState,
    id: String,
    query: std::collections::HashMap<String, String>,
    headers: HeaderMap,
) -> Response {
    let Some(files) = state.files.clone() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    };
    let who = optional_principal(&state, &headers, &query).await;
    let range = parse_range(&headers);
    let download = match files.download(who.as_ref(), &id, range).await {
        Ok(d) => d,
        Err(e) => return error_response(&e),
    };
    let meta = &download.meta;
    let mut builder = Response::builder()
        .header(header::ETAG, &meta.etag)
        .header(header::LAST_MODIFIED, httpdate(meta.uploaded_at.0))
        .header(header::ACCEPT_RANGES, "bytes")
        // The bytes behind an id never change; protected files stay out of shared caches.
        .header(header::CACHE_CONTROL, "private, max-age=31536000")
        .header("x-content-type-options", "nosniff")
        // Whatever a user uploaded (SVG, HTML) and however a browser ends up rendering it, it
        // loads nothing and runs no script in this origin (Rocket.Chat: `default-src 'none'`;
        // `sandbox` also gives the document an opaque origin).
        .header(header::CONTENT_SECURITY_POLICY, FILE_CSP);
    if etag_matches(&headers, &meta.etag) {
        return builder.status(StatusCode::NOT_MODIFIED).body(Body::empty()).unwrap_or_default();
    }
    let forced = query.contains_key("download");
    builder = builder.header(header::CONTENT_TYPE, &meta.content_type).header(
        header::CONTENT_DISPOSITION,
        disposition(&meta.name, !forced && safe_inline(&meta.content_type)),
    );
    let response = match &download.served {
        Served::Whole => builder
            .status(StatusCode::OK)
            .header(header::CONTENT_LENGTH, meta.size)
            .body(Body::from_stream(download.body)),
        Served::Part(r) => builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_LENGTH, r.end - r.start)
            .header(header::CONTENT_RANGE, format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size))
            .body(Body::from_stream(download.body)),
        Served::Unsatisfiable => builder
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{}", meta.size))
            .body(Body::empty()),
    };
    response.unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal error"))
}

/// An HTTP date (`Last-Modified`) from epoch milliseconds.
fn httpdate(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)],
        day,
        MONTHS[usize::try_from(month - 1).unwrap_or(0)],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `GET /avatar/<username>`, `/avatar/@<username>`, `/avatar/room/<rid>` with `?size=&format=`.
pub(crate) async fn avatar(
    State(state): State<GatewayState>,
    Path(path): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let query = parse_query(uri.query().unwrap_or_default());
    let Some(files) = state.files.clone() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
    };
    if state.auth.setting_bool("Accounts_AvatarBlockUnauthenticatedAccess", false).await
        && optional_principal(&state, &headers, &query).await.is_none()
    {
        return plain(StatusCode::FORBIDDEN, "Forbidden");
    }
    let of = match path.strip_prefix("room/") {
        Some(rid) => AvatarOf::Room(rid.to_owned()),
        // The files service resolves `alice.jpg` (an extension clients append) and `john.doe`.
        None => AvatarOf::User(path),
    };
    let size = query.get("size").and_then(|s| s.parse::<u32>().ok()).filter(|s| *s > 0);
    let format = match query.get("format").map(|f| f.to_ascii_lowercase()).as_deref() {
        Some("png") => AvatarFormat::Png,
        Some("jpeg" | "jpg") => AvatarFormat::Jpeg,
        _ => AvatarFormat::Original,
    };
    let avatar = match files.avatar(of, size, format).await {
        Ok(a) => a,
        Err(e) => return error_response(&e),
    };
    let builder = Response::builder()
        .header(header::ETAG, &avatar.etag)
        .header(header::CACHE_CONTROL, "public, max-age=0")
        .header("x-content-type-options", "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, FILE_CSP);
    let response = if etag_matches(&headers, &avatar.etag) {
        builder.status(StatusCode::NOT_MODIFIED).body(Body::empty())
    } else {
        builder
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, &avatar.content_type)
            .header(header::CONTENT_LENGTH, avatar.bytes.len())
            .body(Body::from(avatar.bytes))
    };
    response.unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "Internal error"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_static("bytes=2-5"));
        assert_eq!(parse_range(&h), Some(RangeSpec::Span(2, 5)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=-5"));
        assert_eq!(parse_range(&h), Some(RangeSpec::Suffix(5)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=7-"));
        assert_eq!(parse_range(&h), Some(RangeSpec::From(7)));
        h.insert(header::RANGE, HeaderValue::from_static("bytes=0-1,4-5"));
        assert_eq!(parse_range(&h), None);
        assert_eq!(httpdate(1_714_566_896_789), "Wed, 01 May 2024 12:34:56 GMT");
        assert_eq!(httpdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    #[test]
    fn dispositions_are_safe() {
        let d = disposition("a\"b\r\n日.txt", true);
        assert_eq!(
            d.to_str().unwrap(),
            "inline; filename=\"a_b___.txt\"; filename*=UTF-8''a%22b%0D%0A%E6%97%A5.txt"
        );
        assert!(!safe_inline("text/html") && !safe_inline("image/svg+xml") && safe_inline("image/png"));
    }
}
