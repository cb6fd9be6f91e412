//! `chat.getURLPreview`: the server fetches the page under the embed settings and reads its
//! title and meta tags; refusals for bad parameters, rooms one cannot read and hosts the
//! settings or the address guard rule out.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use apogee_tests::http_site::{Route, http_site};
use apogee_tests::{Client, TestServer, assert_error};
use serde_json::{Value, json};

const PAGE: &str = r#"<!doctype html><html><head>
<meta charset="utf-8"><title>Launch &amp; Notes</title>
<meta name="viewport" content="width=device-width">
<meta property="og:title" content="The Launch">
<meta property='og:image' content='https://img.example/x.png'>
<meta content="What happened at the launch" name="description">
<meta name="twitter:card" content="summary">
<meta property="og:empty" content="  ">
</head><body>hello</body></html>"#;

/// A site of HTML pages: `(path, status, extra header lines, body)`; counts requests.
async fn site(routes: Vec<(&'static str, u16, String, &'static str)>) -> (String, Arc<AtomicUsize>) {
    let routes = routes
        .into_iter()
        .map(|(path, status, extra, body)| Route {
            path,
            status,
            headers: format!("Content-Type: text/html; charset=utf-8\r\n{extra}"),
            body: body.as_bytes().to_vec(),
        })
        .collect();
    http_site(routes).await
}

async fn preview(client: &Client, rid: &str, url: &str) -> Value {
    let query = format!("chat.getURLPreview?roomId={rid}&url={}", urlencode(url));
    let body = client.ok_get(&query).await;
    body["urlPreview"].clone()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// What a page that was not (or could not be) fetched previews as.
fn bare(url: &str) -> Value {
    json!({"url": url, "meta": {}, "ignoreParse": true})
}

#[tokio::test]
async fn previews_read_the_page_under_the_embed_settings() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    let (other, _) = site(vec![("/page", 200, String::new(), PAGE)]).await;
    let other_port = other.rsplit(':').next().unwrap().to_owned();
    let (base, hits) = site(vec![
        ("/page", 200, String::new(), PAGE),
        ("/moved", 302, "Location: /page\r\n".into(), ""),
        ("/away", 302, format!("Location: {other}/page\r\n"), ""),
        ("/broken", 500, String::new(), PAGE),
    ])
    .await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    let url = format!("{base}/page");

    // The defaults ignore loopback: nothing is fetched.
    assert_eq!(preview(&alice, "GENERAL", &url).await, bare(&url));
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    admin.ok_post("settings/API_EmbedIgnoredHosts", json!({"value": ""})).await;
    // Still only ports 80 and 443.
    assert_eq!(preview(&alice, "GENERAL", &url).await, bare(&url));
    assert_eq!(hits.load(Ordering::SeqCst), 0);

    admin.ok_post("settings/API_EmbedSafePorts", json!({"value": format!("80, 443, {port}")})).await;
    let shown = preview(&alice, "GENERAL", &url).await;
    assert_eq!(
        shown,
        json!({
            "url": url,
            "meta": {
                "pageTitle": "Launch & Notes",
                "ogTitle": "The Launch",
                "ogImage": "https://img.example/x.png",
                "description": "What happened at the launch",
                "twitterCard": "summary",
            },
            "headers": {"contentType": "text/html; charset=utf-8", "contentLength": PAGE.len().to_string()},
            "ignoreParse": true,
        })
    );
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // A redirect is followed, and checked like the URL itself.
    let moved = preview(&alice, "GENERAL", &format!("{base}/moved")).await;
    assert_eq!(moved["meta"]["ogTitle"], "The Launch");
    let away = format!("{base}/away");
    assert_eq!(preview(&alice, "GENERAL", &away).await, bare(&away), "port {other_port} is not safe");
    // Anything but 200, and what is not an absolute URL, previews bare.
    let broken = format!("{base}/broken");
    assert_eq!(preview(&alice, "GENERAL", &broken).await, bare(&broken));
    assert_eq!(preview(&alice, "GENERAL", "example.com/page").await, bare("example.com/page"));
    let before = hits.load(Ordering::SeqCst);
    admin.ok_post("settings/API_EmbedIgnoredHosts", json!({"value": "localhost, 127.0.0.0/8"})).await;
    assert_eq!(preview(&alice, "GENERAL", &url).await, bare(&url));
    assert_eq!(hits.load(Ordering::SeqCst), before, "a listed range is never fetched");

    // Refusals.
    let bad = |q: &str| format!("chat.getURLPreview?{q}");
    assert_error(&alice.get(&bad(&format!("url={}", urlencode(&url)))).await, 400, Some("invalid-params"));
    assert_error(&alice.get(&bad("roomId=GENERAL")).await, 400, Some("invalid-params"));
    assert_error(&alice.get(&bad("roomId=GENERAL&url=x&extra=1")).await, 400, Some("invalid-params"));
    let refused = alice.get(&bad("roomId=undefined&url=x")).await;
    assert_error(&refused, 400, Some("error-not-allowed"));
    assert_eq!(refused.1["error"], "Not allowed [error-not-allowed]");
    let secret = admin.ok_post("groups.create", json!({"name": "secret"})).await["group"]["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_error(&alice.get(&bad(&format!("roomId={secret}&url=x"))).await, 400, Some("error-not-allowed"));
    assert_eq!(server.anon().get(&bad("roomId=GENERAL&url=x")).await.0.as_u16(), 401);
}

#[tokio::test]
async fn private_addresses_are_never_fetched_outside_test_mode() {
    let server = TestServer::start_with(&[
        ("ADMIN_USERNAME", "admin"),
        ("ADMIN_PASS", "admin-pass"),
        ("ADMIN_EMAIL", "admin@example.com"),
    ])
    .await;
    let (base, hits) = site(vec![("/page", 200, String::new(), PAGE)]).await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    let admin = server.anon().login("admin", "admin-pass").await;
    admin.ok_post("settings/API_EmbedIgnoredHosts", json!({"value": ""})).await;
    admin.ok_post("settings/API_EmbedSafePorts", json!({"value": format!("80, 443, {port}")})).await;
    for url in [format!("{base}/page"), format!("http://localhost:{port}/page")] {
        assert_eq!(preview(&admin, "GENERAL", &url).await, bare(&url));
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the address guard stops it before any connection");
}
