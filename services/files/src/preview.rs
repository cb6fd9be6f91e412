//! URL previews (`chat.getURLPreview`): the server fetches the page (or, for the sites that
//! offer one, its oEmbed document) through the guarded fetch in `fetch.rs`, under Rocket.Chat's
//! embed settings (`API_EmbedIgnoredHosts`, `API_EmbedSafePorts`, `API_Embed_UserAgent`), and
//! reads the title and the `<meta name|property=… content=…>` tags out of the HTML as
//! Rocket.Chat's OEmbed module does. A page that cannot be fetched, or answers anything but
//! 200, previews as the bare URL with empty `meta`, as there.

use std::net::IpAddr;

use regex_lite::Regex;
use serde_json::{Map, Value, json};

use crate::fetch;

/// The embed settings a preview runs under.
pub(crate) struct Rules {
    /// `API_EmbedIgnoredHosts`: host names, addresses and CIDR ranges never fetched.
    pub ignored_hosts: String,
    /// `API_EmbedSafePorts`: the only ports fetched (a URL without a port counts as 80 or 443
    /// by its scheme, 8080 for none).
    pub safe_ports: String,
    pub user_agent: String,
    pub language: String,
    /// Loopback and private addresses allowed (only under `TEST_MODE`).
    pub allow_private: bool,
}

/// Sites whose previews come from their oEmbed endpoint, as Rocket.Chat registers them:
/// URL patterns and the endpoint the URL is passed to (`url=`).
const PROVIDERS: &[(&[&str], &str)] = &[
    (&[r"^https?://soundcloud\.com/\S+"], "https://soundcloud.com/oembed?format=json&maxheight=150"),
    (
        &[
            r"^https?://vimeo\.com/[^/]+",
            r"^https?://vimeo\.com/channels/[^/]+/[^/]+",
            r"^https://vimeo\.com/groups/[^/]+/videos/[^/]+",
        ],
        "https://vimeo.com/api/oembed.json?maxheight=200",
    ),
    (
        &[r"^https?://www\.youtube\.com/\S+", r"^https?://youtu\.be/\S+"],
        "https://www.youtube.com/oembed?maxheight=200",
    ),
    (
        &[r"^https?://www\.rdio\.com/\S+", r"^https?://rd\.io/\S+"],
        "https://www.rdio.com/api/oembed/?format=json&maxheight=150",
    ),
    (
        &[r"^https?://www\.slideshare\.net/[^/]+/[^/]+"],
        "https://www.slideshare.net/api/oembed/2?format=json&maxheight=200",
    ),
    (
        &[r"^https?://www\.dailymotion\.com/video/\S+"],
        "https://www.dailymotion.com/services/oembed?maxheight=200",
    ),
    (&[r"^https?://(twitter|x)\.com/[^/]+/status/\S+"], "https://publish.twitter.com/oembed"),
    (
        &[r"^https?://(play|open)\.spotify\.com/(track|album|playlist|show)/\S+"],
        "https://open.spotify.com/oembed",
    ),
    (&[r"^https?://www\.loom\.com/\S+"], "https://www.loom.com/v1/oembed?format=json"),
];

/// Rocket.Chat searches the whole text (`RegExp.test`), so the patterns are anchored only by
/// their `^`.
fn provider_for(url: &str) -> Option<&'static str> {
    PROVIDERS.iter().find_map(|(patterns, endpoint)| {
        patterns.iter().any(|p| Regex::new(p).is_ok_and(|re| re.is_match(url))).then_some(*endpoint)
    })
}

/// `change-case`'s `camelCase` (v4): words split at lower→upper and UPPER→Upper boundaries and
/// at every run of characters other than ASCII letters and digits; the first word lower-case,
/// the others capitalised (a later word starting with a digit gets a `_`).
pub(crate) fn camel_case(input: &str) -> String {
    let chars: Vec<char> = input.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if let Some(&prev) = i.checked_sub(1).and_then(|p| chars.get(p)) {
            let lower_upper = (prev.is_ascii_lowercase() || prev.is_ascii_digit()) && c.is_ascii_uppercase();
            let upper_upper = prev.is_ascii_uppercase()
                && c.is_ascii_uppercase()
                && chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if (lower_upper || upper_upper) && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        }
        word.push(c);
    }
    if !word.is_empty() {
        words.push(word);
    }
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i == 0 {
            out.push_str(&w.to_lowercase());
            continue;
        }
        let mut cs = w.chars();
        let Some(first) = cs.next() else { continue };
        if first.is_ascii_digit() {
            out.push('_');
            out.push(first);
        } else {
            out.push(first.to_ascii_uppercase());
        }
        out.push_str(&cs.as_str().to_lowercase());
    }
    out
}

/// Character references in attribute and title text: numeric ones, and the named ones pages
/// use in titles and descriptions (an unknown name stays as written).
pub(crate) fn unescape_html(text: &str) -> String {
    const NAMED: &[(&str, &str)] = &[
        ("amp", "&"),
        ("lt", "<"),
        ("gt", ">"),
        ("quot", "\""),
        ("apos", "'"),
        ("nbsp", "\u{a0}"),
        ("copy", "©"),
        ("reg", "®"),
        ("trade", "™"),
        ("hellip", "…"),
        ("mdash", "—"),
        ("ndash", "–"),
        ("lsquo", "‘"),
        ("rsquo", "’"),
        ("ldquo", "“"),
        ("rdquo", "”"),
        ("laquo", "«"),
        ("raquo", "»"),
        ("middot", "·"),
        ("bull", "•"),
        ("euro", "€"),
        ("pound", "£"),
        ("yen", "¥"),
        ("cent", "¢"),
        ("deg", "°"),
        ("times", "×"),
        ("divide", "÷"),
        ("eacute", "é"),
        ("egrave", "è"),
        ("agrave", "à"),
        ("aacute", "á"),
        ("uuml", "ü"),
        ("ouml", "ö"),
        ("auml", "ä"),
        ("szlig", "ß"),
        ("ccedil", "ç"),
        ("ntilde", "ñ"),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        // Entities are short: look for the `;` in the next 33 bytes only, so a page of bare
        // `&`s costs linear time.
        let end = tail.as_bytes().iter().take(33).position(|&b| b == b';');
        let decoded = end.filter(|end| *end > 0 && *end <= 32).and_then(|end| {
            let name = &tail[..end];
            let ch = if let Some(num) = name.strip_prefix('#') {
                let code = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => num.parse::<u32>().ok(),
                };
                code.and_then(char::from_u32).map(String::from)
            } else {
                NAMED.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned())
            };
            ch.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push_str(&c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = tail;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The page's title (`pageTitle`) and meta tags by camel-cased name, the first of each name
/// winning, in the order Rocket.Chat looks: the title, then `name|property` before `content`
/// (single quotes, then double), then `content` before the name.
pub(crate) fn page_metas(body: &str) -> Map<String, Value> {
    let mut metas = Map::new();
    let mut put = |name: String, value: &str| {
        if !metas.contains_key(&name) {
            metas.insert(name, Value::String(unescape_html(value)));
        }
    };
    let title = Regex::new(r"(?i)<title[^>]*>([^<]*)</title>").expect("valid pattern");
    for c in title.captures_iter(body) {
        put("pageTitle".into(), c.get(1).map_or("", |m| m.as_str()));
    }
    for (pattern, name_first) in [
        (r"(?i)<meta[^>]*(?:name|property)='([^']*)'[^>]*\scontent='([^']*)'[^>]*>", true),
        (r#"(?i)<meta[^>]*(?:name|property)="([^"]*)"[^>]*\scontent="([^"]*)"[^>]*>"#, true),
        (r"(?i)<meta[^>]*\scontent='([^']*)'[^>]*(?:name|property)='([^']*)'[^>]*>", false),
        (r#"(?i)<meta[^>]*\scontent="([^"]*)"[^>]*(?:name|property)="([^"]*)"[^>]*>"#, false),
    ] {
        let re = Regex::new(pattern).expect("valid pattern");
        for c in re.captures_iter(body) {
            let (a, b) = (c.get(1).map_or("", |m| m.as_str()), c.get(2).map_or("", |m| m.as_str()));
            let (name, value) = if name_first { (a, b) } else { (b, a) };
            put(camel_case(name), value);
        }
    }
    metas
}

/// The tags a preview keeps: Open Graph, Facebook, Twitter, oEmbed and msapplication ones,
/// and anything naming a description or a title; never an empty one.
fn relevant(metas: &Map<String, Value>) -> Map<String, Value> {
    let pattern = Regex::new(r"^(og|fb|twitter|oembed|msapplication).+|description|title|pageTitle$")
        .expect("valid pattern");
    metas
        .iter()
        .filter(|(k, v)| {
            pattern.is_match(&k.to_lowercase()) && v.as_str().is_some_and(|s| !s.trim().is_empty())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether `host` is listed in `API_EmbedIgnoredHosts`: by name, by address, or inside a
/// listed CIDR range.
fn ignored(host: &str, list: &[&str]) -> bool {
    if list.contains(&host) {
        return true;
    }
    let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else { return false };
    list.iter().any(|entry| match entry.split_once('/') {
        Some((net, bits)) => match (net.parse::<IpAddr>(), bits.parse::<u32>()) {
            (Ok(IpAddr::V4(net)), Ok(bits)) if bits <= 32 => match ip {
                IpAddr::V4(v4) => {
                    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                    u32::from(v4) & mask == u32::from(net) & mask
                }
                IpAddr::V6(_) => false,
            },
            (Ok(IpAddr::V6(net)), Ok(bits)) if bits <= 128 => match ip {
                IpAddr::V6(v6) => {
                    let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                    u128::from(v6) & mask == u128::from(net) & mask
                }
                IpAddr::V4(_) => false,
            },
            _ => false,
        },
        None => entry.parse::<IpAddr>().is_ok_and(|e| e == ip),
    })
}

/// Rocket.Chat's checks on the URL itself: ignored hosts, then safe ports.
fn check_url(url: &reqwest::Url, rules: &Rules) -> Result<(), String> {
    let strip = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    let hosts = strip(&rules.ignored_hosts);
    let hosts: Vec<&str> = hosts.split(',').collect();
    if let Some(host) = url.host_str()
        && ignored(host, &hosts)
    {
        return Err("invalid host".into());
    }
    let ports = strip(&rules.safe_ports);
    let ports: Vec<&str> = ports.split(',').collect();
    let safe = match url.port() {
        Some(port) => ports.contains(&port.to_string().as_str()),
        None => ports.iter().any(|p| match *p {
            "80" | "8080" => url.scheme() == "http",
            "443" => url.scheme() == "https",
            _ => false,
        }),
    };
    if safe { Ok(()) } else { Err("invalid/unsafe port".into()) }
}

/// The body as text, in the charset the response or the page declares (UTF-8 unless it says
/// Latin-1 or ASCII, which decode byte for byte).
fn decode(content_type: &str, body: &[u8]) -> String {
    let declared = |text: &str, pattern: &str| {
        Regex::new(pattern).ok()?.captures(text)?.get(1).map(|m| m.as_str().to_ascii_lowercase())
    };
    let head = String::from_utf8_lossy(&body[..body.len().min(4096)]).into_owned();
    let charset = declared(content_type, r"(?i)charset=([\w\-]+)")
        .or_else(|| declared(&head, r#"(?i)<meta\b[^>]*charset=["']?([\w\-]+)"#))
        .unwrap_or_else(|| "utf-8".into());
    match charset.as_str() {
        "iso-8859-1" | "latin1" | "windows-1252" | "us-ascii" | "ascii" => {
            body.iter().map(|b| char::from(*b)).collect()
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    }
}

/// Longest a whole URL preview may take, redirects and the `#!` refetch included.
const PREVIEW_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// What Rocket.Chat's `getUrlMeta` yields: the metas and camel-cased headers of a 200 answer.
async fn url_meta(
    url: &str,
    rules: &Rules,
    with_fragment: bool,
) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let mut target = reqwest::Url::parse(url).ok()?;
    if with_fragment {
        target.query_pairs_mut().append_pair("_escaped_fragment_", "");
    }
    // The checks are on the URL asked for; a provider's endpoint is fetched in its place.
    if let Err(why) = check_url(&target, rules) {
        tracing::info!(url, why, "URL preview not fetched");
        return None;
    }
    let provider = provider_for(url);
    let fetch_url = match provider {
        Some(endpoint) => {
            let mut consumer = reqwest::Url::parse(endpoint).ok()?;
            consumer.query_pairs_mut().append_pair("url", target.as_str());
            consumer
        }
        None => target.clone(),
    };
    let headers = [
        ("user-agent", format!("{} Apogee/{}", rules.user_agent, env!("CARGO_PKG_VERSION"))),
        ("accept-language", rules.language.clone()),
    ];
    let first = fetch_url.clone();
    let fetched = fetch::page(fetch_url, rules.allow_private, &headers, |u| {
        // The first URL passed already (a provider's endpoint is not the client's host);
        // every redirect is checked as if the client had given it.
        if *u == first { Ok(()) } else { check_url(u, rules) }
    })
    .await;
    let fetched = match fetched {
        Ok(f) => f,
        Err(why) => {
            tracing::info!(url, why, "URL preview not fetched");
            return None;
        }
    };
    let content_type =
        fetched.headers.iter().find(|(k, _)| k == "content-type").map_or("text/plain", |(_, v)| v.as_str());
    let body = decode(content_type, &fetched.body);
    let mut metas = page_metas(&body);
    if !with_fragment && metas.get("fragment").and_then(Value::as_str) == Some("!") {
        return Box::pin(url_meta(url, rules, true)).await;
    }
    metas.remove("oembedHtml");
    let mut headers = Map::new();
    for (name, value) in &fetched.headers {
        headers.insert(camel_case(name), Value::String(value.clone()));
    }
    if fetched.status != 200 {
        return None;
    }
    if provider.is_some() && !body.is_empty() {
        metas.insert("oembedUrl".into(), Value::String(url.to_owned()));
        if let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(&body) {
            for (key, value) in doc {
                if let Value::String(s) = value
                    && !s.is_empty()
                {
                    metas.insert(camel_case(&format!("oembed_{key}")), Value::String(s));
                }
            }
        }
    }
    Some((metas, headers))
}

/// `chat.getURLPreview`'s `urlPreview`: `{url, meta, headers?, ignoreParse: true}`.
pub(crate) async fn preview(url: &str, rules: &Rules) -> Value {
    let mut out = Map::new();
    out.insert("url".into(), Value::String(url.to_owned()));
    out.insert("meta".into(), json!({}));
    let absolute = url.starts_with("http://") || url.starts_with("https://") || url.starts_with("data:");
    // One bound for the whole preview (each hop has its own timeout, and a `#!` page is
    // fetched twice).
    let fetched = if absolute {
        tokio::time::timeout(PREVIEW_DEADLINE, url_meta(url, rules, false)).await.ok().flatten()
    } else {
        None
    };
    if let Some((metas, headers)) = fetched {
        let mut meta = relevant(&metas);
        if let Some(Value::String(html)) = meta.get_mut("oembedHtml") {
            *html = html.replacen("iframe", r#"iframe style="max-width: 100%;width:400px;height:225px""#, 1);
        }
        out.insert("meta".into(), Value::Object(meta));
        let mut kept = Map::new();
        for key in ["contentLength", "contentType"] {
            if let Some(v) = headers.get(key).filter(|v| v.as_str().is_some_and(|s| !s.is_empty())) {
                kept.insert(key.into(), v.clone());
            }
        }
        out.insert("headers".into(), Value::Object(kept));
    }
    out.insert("ignoreParse".into(), true.into());
    Value::Object(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_as_change_case() {
        for (from, to) in [
            ("og:title", "ogTitle"),
            ("twitter:image:src", "twitterImageSrc"),
            ("msapplication-TileColor", "msapplicationTileColor"),
            ("content-type", "contentType"),
            ("x-frame-options", "xFrameOptions"),
            ("fb:app_id", "fbAppId"),
            ("XMLHttpRequest", "xmlHttpRequest"),
            ("oembed_thumbnail_url", "oembedThumbnailUrl"),
            ("og:image:2x", "ogImage_2x"),
            ("description", "description"),
        ] {
            assert_eq!(camel_case(from), to, "{from}");
        }
    }

    #[test]
    fn metas_first_wins_in_rocket_chat_order() {
        let html = r#"<html><head><title>The &amp; Page</title>
            <meta property="og:title" content="OG &quot;one&quot;">
            <meta content='second' property='og:title'>
            <meta name='description' content='single &#233;t&#xE9;'>
            <meta content="later" name="twitter:card">
            <meta charset="utf-8"></head></html>"#;
        let metas = page_metas(html);
        assert_eq!(metas["pageTitle"], "The & Page");
        assert_eq!(metas["description"], "single été");
        // Single-quoted name-first tags are read before double-quoted ones.
        assert_eq!(metas["ogTitle"], "OG \"one\"");
        assert_eq!(metas["twitterCard"], "later");
        assert_eq!(unescape_html("a &unknown; b &"), "a &unknown; b &");
    }

    #[test]
    fn relevant_tags_only() {
        let mut m = Map::new();
        for (k, v) in [
            ("ogTitle", "x"),
            ("viewport", "w"),
            ("description", "d"),
            ("twitterCard", " "),
            ("fbAppId", "1"),
        ] {
            m.insert(k.into(), v.into());
        }
        let kept: Vec<String> = relevant(&m).keys().cloned().collect();
        assert_eq!(kept, ["description", "fbAppId", "ogTitle"]);
    }

    #[test]
    fn ignored_hosts_and_safe_ports() {
        let rules = |hosts: &str, ports: &str| Rules {
            ignored_hosts: hosts.into(),
            safe_ports: ports.into(),
            user_agent: String::new(),
            language: "en".into(),
            allow_private: true,
        };
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        let defaults = rules("localhost, 127.0.0.1, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16", "80, 443");
        assert!(check_url(&url("http://localhost/x"), &defaults).is_err());
        assert!(check_url(&url("http://10.2.3.4/x"), &defaults).is_err());
        assert!(check_url(&url("http://172.31.0.1/x"), &defaults).is_err());
        assert!(check_url(&url("https://example.com/x"), &defaults).is_ok());
        assert!(check_url(&url("https://example.com:8443/x"), &defaults).is_err());
        let open = rules("", "80, 443, 3000");
        assert!(check_url(&url("http://127.0.0.1:3000/x"), &open).is_ok());
        assert!(check_url(&url("http://127.0.0.1:3001/x"), &open).is_err());
        // An empty list of ports allows none, as in Rocket.Chat.
        assert!(check_url(&url("https://example.com/x"), &rules("", "")).is_err());
        assert!(provider_for("https://www.youtube.com/watch?v=1").is_some());
        assert!(provider_for("https://example.com/watch?v=1").is_none());
    }
}
