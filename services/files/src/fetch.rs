//! Fetching what a client points the server at: an avatar image (`users.setAvatar
//! {avatarUrl}`) and the page behind a URL preview (`chat.getURLPreview`).
//!
//! The server makes the request, so the URL must not reach what only the server can reach:
//! unless private addresses are allowed (only under `TEST_MODE`), a literal address or any
//! address a name resolves to in Rocket.Chat's reserved ranges (loopback, private, link-local,
//! metadata, …) is refused, and the connection uses only the addresses that passed the check,
//! so a name cannot resolve to a public address for the check and a private one for the
//! connection. Avatars follow no redirect (Rocket.Chat: `redirect: 'error'`); a page follows at
//! most five, each hop checked again as if the client had given it. Proxies from the
//! environment are not used, and the whole request is bounded in time and size.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use apogee_api::ByteStream;
use apogee_types::{ServiceError, ServiceResult};
use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::encode_uri;

/// The whole fetch, headers and body.
const TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Rocket.Chat's reserved IPv4 ranges (`checkUrlForSsrf`).
const RESERVED_V4: [(Ipv4Addr, u8); 17] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),
    (Ipv4Addr::new(10, 0, 0, 0), 8),
    (Ipv4Addr::new(100, 64, 0, 0), 10),
    (Ipv4Addr::new(127, 0, 0, 0), 8),
    (Ipv4Addr::new(169, 254, 0, 0), 16),
    (Ipv4Addr::new(172, 16, 0, 0), 12),
    (Ipv4Addr::new(192, 0, 0, 0), 24),
    (Ipv4Addr::new(192, 0, 2, 0), 24),
    (Ipv4Addr::new(192, 88, 99, 0), 24),
    (Ipv4Addr::new(192, 168, 0, 0), 16),
    (Ipv4Addr::new(198, 18, 0, 0), 15),
    (Ipv4Addr::new(198, 51, 100, 0), 24),
    (Ipv4Addr::new(203, 0, 113, 0), 24),
    (Ipv4Addr::new(224, 0, 0, 0), 4),
    (Ipv4Addr::new(240, 0, 0, 0), 4),
    (Ipv4Addr::new(255, 255, 255, 255), 32),
    (Ipv4Addr::new(100, 100, 100, 200), 32),
];

fn v4_public(ip: Ipv4Addr) -> bool {
    let ip = u32::from(ip);
    !RESERVED_V4.iter().any(|(net, bits)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(*bits)).unwrap_or(0);
        ip & mask == u32::from(*net) & mask
    })
}

fn v6_public(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_public(v4);
    }
    let seg = ip.segments();
    let first = seg[0];
    // Forms that carry an IPv4 address: IPv4-compatible (`::a.b.c.d`), 6to4 (`2002:AABB:CCDD::`)
    // and Teredo (`2001:0::/32`, the client address inverted): judged by that address.
    if seg[..6] == [0; 6] {
        return v4_public(Ipv4Addr::new(
            (seg[6] >> 8) as u8,
            seg[6] as u8,
            (seg[7] >> 8) as u8,
            seg[7] as u8,
        ));
    }
    if first == 0x2002 {
        return v4_public(Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        ));
    }
    if first == 0x2001 && seg[1] == 0 {
        let (a, b) = (!seg[6], !seg[7]);
        return v4_public(Ipv4Addr::new((a >> 8) as u8, a as u8, (b >> 8) as u8, b as u8));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || first & 0xfe00 == 0xfc00 // unique local
        || first & 0xffc0 == 0xfe80 // link local
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || first == 0x0064 && ip.segments()[1] == 0xff9b) // NAT64 to any IPv4
}

/// Whether the server may connect to `ip` on a client's behalf.
pub(crate) fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_public(v4),
        IpAddr::V6(v6) => v6_public(v6),
    }
}

/// Resolves names as the system does, keeping only public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|a| public(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// A client without proxies or redirects whose connections reach public addresses only
/// (any address when `allow_private`).
fn client(allow_private: bool) -> ServiceResult<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT);
    if !allow_private {
        builder = builder.dns_resolver(PublicOnly);
    }
    builder.build().map_err(|e| ServiceError::internal(e.to_string()))
}

/// Whether `url`'s host is a literal address the server must not reach.
fn literal_private(url: &reqwest::Url) -> bool {
    url.host_str()
        .and_then(|h| h.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok())
        .is_some_and(|ip| !public(ip))
}

/// What a page fetch returned: the last response's status, headers (lower-case names, in
/// order) and at most about `PAGE_LIMIT` bytes of body.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Rocket.Chat's bound on a preview's body: reading stops after the chunk that passes it.
pub(crate) const PAGE_LIMIT: usize = 250_000;
const MAX_REDIRECTS: usize = 5;

/// Fetches a page: `check` vets every URL on the way (the first and each redirect's) before
/// it is requested; `headers` go with each request. `Err` carries why, for the log.
pub(crate) async fn page(
    url: reqwest::Url,
    allow_private: bool,
    headers: &[(&'static str, String)],
    check: impl Fn(&reqwest::Url) -> Result<(), String>,
) -> Result<Fetched, String> {
    let client = client(allow_private).map_err(|e| e.message)?;
    let mut url = url;
    for _ in 0..=MAX_REDIRECTS {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("unsupported scheme {}", url.scheme()));
        }
        check(&url)?;
        if !allow_private && literal_private(&url) {
            return Err("a reserved address".into());
        }
        let mut request = client.get(url.clone());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let mut response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        if status.is_redirection()
            && let Some(next) = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok())
        {
            url = next;
            continue;
        }
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let mut body = Vec::new();
        while body.len() <= PAGE_LIMIT {
            match response.chunk().await.map_err(|e| e.to_string())? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        return Ok(Fetched { status: status.as_u16(), headers, body });
    }
    Err("too many redirects".into())
}

fn invalid_url(url: &str) -> ServiceError {
    ServiceError::invalid("error-avatar-invalid-url", format!("Invalid avatar URL: {}", encode_uri(url)))
}

/// An image fetched from `url`: its content type and a body no longer than `limit` (checked
/// again by the blob store as it streams).
pub(crate) async fn image(
    url: &str,
    username: &str,
    allow_private: bool,
    limit: u64,
) -> ServiceResult<(String, ByteStream)> {
    let parsed = reqwest::Url::parse(url).map_err(|_| invalid_url(url))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid_url(url));
    }
    // The parser has normalised every spelling of an address (`0x7f.1`, `[::1]`) already.
    parsed.host_str().ok_or_else(|| invalid_url(url))?;
    if !allow_private && literal_private(&parsed) {
        return Err(invalid_url(url));
    }
    let client = client(allow_private)?;
    let mut response = client.get(parsed).send().await.map_err(|e| {
        tracing::info!(url, error = %e, "avatar URL not fetched");
        invalid_url(url)
    })?;
    let status = response.status().as_u16();
    if status != 200 {
        // As Rocket.Chat: a missing image is an invalid URL, anything else a failed fetch.
        if status == 404 || (300..400).contains(&status) {
            return Err(invalid_url(url));
        }
        return Err(ServiceError::invalid(
            "error-avatar-url-handling",
            format!("Error while handling avatar setting from a URL ({}) for {username}", encode_uri(url)),
        ));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .unwrap_or_default();
    if content_type.strip_prefix("image/").is_none_or(str::is_empty) {
        return Err(invalid_url(url));
    }
    if response.content_length().is_some_and(|n| n > limit) {
        return Err(ServiceError::invalid(
            "error-file-too-large",
            format!("File exceeds allowed size of {limit} bytes"),
        ));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::spawn(async move {
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if tx.send(Ok(chunk)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    break;
                }
            }
        }
    });
    let body: ByteStream =
        Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        ));
    Ok((content_type, body))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reserved_addresses_are_not_public() {
        for private in ["127.0.0.1", "10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "0.0.0.0"] {
            assert!(!public(private.parse().unwrap()), "{private}");
        }
        for private in [
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "::7f00:1",
            "::a00:1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
        ] {
            assert!(!public(private.parse().unwrap()), "{private}");
        }
        assert!(!public("100.100.100.200".parse().unwrap()));
        for open in
            ["8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:1.1.1.1", "2002:808:808::1", "2001:db9::1"]
        {
            assert!(public(open.parse().unwrap()), "{open}");
        }
    }
}
