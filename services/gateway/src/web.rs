//! The web client: files from `web/`, embedded at build time by `build.rs` with content-hashed
//! names and gzip and brotli copies (chosen per `Accept-Encoding`). `/` and any client-side route get `index.html` (never cached, so a new
//! build is picked up at once); hashed assets are cached forever. Every response carries a strict
//! Content-Security-Policy: scripts and styles only from this origin, none inline.

use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY,
    VARY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One embedded file.
pub(crate) struct Asset {
    /// Served at this path (with its hash, except `index.html`).
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// Present when gzip made the file smaller.
    pub gzip: Option<&'static [u8]>,
    /// Present when brotli made the file smaller.
    pub brotli: Option<&'static [u8]>,
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; \
     connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

/// Paths the client never routes to: the API surfaces keep their JSON 404 for unknown paths.
const NOT_CLIENT_ROUTES: [&str; 8] =
    ["/api", "/websocket", "/sockjs", "/avatar", "/file-upload", "/ufs", "/health", "/_"];

/// `GET /`.
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers, "no-cache")
}

/// The router's fallback: an embedded asset, `index.html` for a client route, else `not_found`.
pub(crate) async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if method == Method::GET || method == Method::HEAD {
        if let Some(asset) = ASSETS.iter().find(|a| a.path == path) {
            return serve(asset, &headers, "public, max-age=31536000, immutable");
        }
        if is_client_route(path) {
            return serve(&INDEX, &headers, "no-cache");
        }
    }
    crate::router::not_found().await
}

/// A client route is a page path: not an API surface and not a file name (a stale asset name must
/// be a 404, not HTML that a browser would refuse as a script).
fn is_client_route(path: &str) -> bool {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    let last = path.rsplit('/').next().unwrap_or_default();
    !NOT_CLIENT_ROUTES.iter().any(|p| under(p)) && !last.contains('.')
}

/// A content coding we hold precompressed copies in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    Brotli,
    Gzip,
}

/// The weight `Accept-Encoding` gives `coding` (`*` stands for any coding not named; absent is 0).
fn weight(headers: &HeaderMap, coding: Coding) -> f32 {
    let name = match coding {
        Coding::Brotli => "br",
        Coding::Gzip => "gzip",
    };
    let mut named = None;
    let mut any = None;
    for part in
        headers.get_all(ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','))
    {
        let mut pieces = part.split(';').map(str::trim);
        let token = pieces.next().unwrap_or_default();
        let q = pieces
            .find_map(|p| p.strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
            .unwrap_or(1.0);
        if token.eq_ignore_ascii_case(name) {
            named = Some(q);
        } else if token == "*" {
            any = Some(q);
        }
    }
    named.or(any).unwrap_or(0.0)
}

/// The coding to send: the client's preferred one among those the asset has, brotli on a tie
/// (it is the smaller).
fn choose(headers: &HeaderMap, asset: &Asset) -> Option<(Coding, &'static [u8])> {
    let offers = [(Coding::Brotli, asset.brotli), (Coding::Gzip, asset.gzip)];
    let mut best: Option<(f32, Coding, &'static [u8])> = None;
    for (coding, body) in offers {
        let (Some(body), w) = (body, weight(headers, coding)) else { continue };
        if w > 0.0 && best.is_none_or(|(bw, _, _)| w > bw) {
            best = Some((w, coding, body));
        }
    }
    best.map(|(_, coding, body)| (coding, body))
}

fn serve(asset: &Asset, headers: &HeaderMap, cache: &'static str) -> Response {
    let chosen = choose(headers, asset);
    let body = chosen.map_or(asset.body, |(_, body)| body);
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if asset.gzip.is_some() || asset.brotli.is_some() {
        h.insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    match chosen {
        Some((Coding::Brotli, _)) => {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
        }
        Some((Coding::Gzip, _)) => {
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        None => {}
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")));
        h
    }

    const BOTH: Asset = Asset {
        path: "/x",
        content_type: "text/plain",
        body: b"plain",
        gzip: Some(b"gz"),
        brotli: Some(b"br"),
    };
    const GZIP_ONLY: Asset = Asset { brotli: None, ..BOTH };

    fn coding(value: &str, asset: &Asset) -> Option<Coding> {
        choose(&with(value), asset).map(|(c, _)| c)
    }

    #[test]
    fn encoding_negotiation() {
        assert_eq!(coding("gzip, deflate, br", &BOTH), Some(Coding::Brotli));
        assert_eq!(coding("gzip, deflate, br, zstd", &GZIP_ONLY), Some(Coding::Gzip));
        assert_eq!(coding("br;q=0.5, GZIP;q=0.8", &BOTH), Some(Coding::Gzip));
        assert_eq!(coding("br;q=1.0, gzip;q=0.8", &BOTH), Some(Coding::Brotli));
        assert_eq!(coding("*", &BOTH), Some(Coding::Brotli));
        assert_eq!(coding("br;q=0, *", &BOTH), Some(Coding::Gzip));
        assert_eq!(coding("gzip;q=0", &GZIP_ONLY), None);
        assert_eq!(coding("gzip;q=0, br;q=0", &BOTH), None);
        assert_eq!(coding("br, identity", &GZIP_ONLY), None);
        assert_eq!(coding("deflate", &BOTH), None);
        assert_eq!(choose(&HeaderMap::new(), &BOTH), None);
        assert_eq!(choose(&with("br"), &BOTH).map(|(_, b)| b), Some(&b"br"[..]));
    }

    #[test]
    fn client_routes() {
        assert!(is_client_route("/"));
        assert!(is_client_route("/channel/general"));
        assert!(is_client_route("/direct/abc"));
        assert!(!is_client_route("/api/v1/nope"));
        assert!(!is_client_route("/api"));
        assert!(!is_client_route("/sockjs/info"));
        assert!(!is_client_route("/avatar/alice"));
        assert!(!is_client_route("/app/main.0123456789.js"));
        assert!(is_client_route("/apiary")); // only whole segments are API prefixes
    }

    #[test]
    fn assets_are_hashed_and_index_points_at_them() {
        let index = std::str::from_utf8(INDEX.body).unwrap_or_default();
        assert!(!ASSETS.is_empty());
        for asset in ASSETS {
            let name = asset.path.rsplit('/').next().unwrap_or_default();
            let hash = name.split('.').rev().nth(1).unwrap_or_default();
            assert_eq!(hash.len(), 10, "{}", asset.path);
            assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{}", asset.path);
        }
        assert!(ASSETS.iter().any(|a| index.contains(&format!("\"{}\"", a.path))));
        assert!(!index.contains("<script>"), "no inline scripts under the CSP");
    }
}
