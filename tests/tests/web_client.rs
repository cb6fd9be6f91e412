//! The web client served by the gateway (`web/`, embedded by `services/gateway/build.rs`):
//! `index.html` at `/` and at client routes with a strict CSP, content-hashed assets cached forever
//! with their content types, gzip when asked for, and the API's own answers untouched.
//!
//! `web_client_in_chromium` drives the client in Debian's `chromium` through `playwright-core`
//! (`tests/clients/web/web_client.js`, installed from the pinned `package-lock.json` into
//! `$CARGO_TARGET_DIR/client-node/web-playwright-*`): wrong password, registration and sign-out,
//! sign-in, a message with an HTML
//! payload that renders as text, a message from another user (posted here through REST) arriving
//! live, a reload that keeps the session, and screenshots (light and dark, desktop and 320 px) in
//! `$CARGO_TARGET_DIR/web-screenshots`. `two_people_chat_in_chromium` (`web_chat.js`) has two users in
//! two browser contexts: one creates a channel inviting the other, messages and typing cross live both
//! ways, a reaction, a thread reply and an edit reach the other side, a script payload stays inert, an
//! unread badge appears, and axe-core finds no serious or critical violation on the sign-in screen and
//! the room. `the_other_features_in_chromium` (`web_features.js`): sign-in by e-mail, a direct message
//! with @-autocomplete, the directory, #-autocomplete, star and the starred list, search in the room,
//! profile (status, status message, name) and deleting a message, each checked back through REST.
//! A missing `chromium`, `node` or `npm` fails them: they never skip.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apogee_tests::TestServer;
use apogee_tests::clients::{Script, blocking, ensure_npm};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::json;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

async fn fetch(url: &str, accept_encoding: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(enc) = accept_encoding {
        req = req.header("Accept-Encoding", enc);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map(|v| v.to_str().unwrap()).unwrap_or_default()
}

/// `"/..."` references in `index.html` (attribute values), and `'./x.js'` imports in a module.
fn references(text: &str, open: &str, close: char) -> Vec<String> {
    text.split(open).skip(1).filter_map(|rest| rest.split_once(close).map(|(r, _)| r.to_owned())).collect()
}

fn assert_index(headers: &HeaderMap, body: &[u8]) {
    assert_eq!(header(headers, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(headers, "cache-control"), "no-cache");
    assert_eq!(header(headers, "x-content-type-options"), "nosniff");
    let csp = header(headers, "content-security-policy");
    for directive in
        ["default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self' ws: wss:"]
    {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    let html = std::str::from_utf8(body).unwrap();
    assert!(html.starts_with("<!doctype html>"), "{html}");
    // Every script is an external file (the CSP would refuse an inline one).
    for script in html.split("<script").skip(1) {
        assert!(script.split('>').next().unwrap().contains(" src=\"/"), "inline script in {html}");
    }
}

#[tokio::test]
async fn index_is_served_at_root_and_client_routes_with_a_strict_csp() {
    let server = TestServer::start().await;
    for path in ["/", "/channel/general", "/direct/abc", "/group/secret"] {
        let (status, headers, body) = fetch(&format!("{}{path}", server.url), None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_index(&headers, &body);
    }
}

#[tokio::test]
async fn assets_are_content_hashed_immutable_and_typed() {
    let server = TestServer::start().await;
    let (_, _, index) = fetch(&server.url, None).await;
    let index = String::from_utf8(index).unwrap();
    let mut pending: Vec<String> =
        references(&index, "=\"/", '"').into_iter().map(|r| format!("/{r}")).collect();
    let mut seen = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    while let Some(path) = pending.pop() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let name = path.rsplit('/').next().unwrap();
        let hash = name.split('.').rev().nth(1).unwrap();
        assert!(hash.len() == 10 && hash.chars().all(|c| c.is_ascii_hexdigit()), "not hashed: {path}");
        let (status, headers, body) = fetch(&format!("{}{path}", server.url), None).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(header(&headers, "cache-control"), IMMUTABLE, "{path}");
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff", "{path}");
        let ext = name.rsplit('.').next().unwrap();
        let expected = match ext {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("unexpected asset type {other}: {path}"),
        };
        assert_eq!(header(&headers, "content-type"), expected, "{path}");
        kinds.insert(ext.to_owned());
        if ext == "js" {
            // Imports of sibling modules point at their hashed names too.
            let dir = path.rsplit_once('/').unwrap().0;
            let text = String::from_utf8(body).unwrap();
            for import in references(&text, "from './", '\'') {
                pending.push(format!("{dir}/{import}"));
            }
        }
    }
    assert_eq!(kinds, BTreeSet::from(["css".to_owned(), "js".to_owned(), "svg".to_owned()]));
    assert!(seen.len() >= 6, "the entry module should reach the other modules: {seen:?}");

    // A stale or made-up asset name is a 404, not index.html.
    let (status, headers, _) = fetch(&format!("{}/app/main.0123456789.js", server.url), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(header(&headers, "content-type"), "application/json");
}

#[tokio::test]
async fn gzip_and_brotli_are_negotiated() {
    let server = TestServer::start().await;
    let (_, index_headers, index) = fetch(&server.url, None).await;
    assert_eq!(header(&index_headers, "vary"), "Accept-Encoding");
    let index = String::from_utf8(index).unwrap();
    // The 174-byte icon is left out: it is stored plain when compression does not shrink it.
    let mut assets: Vec<String> = references(&index, "=\"/", '"')
        .into_iter()
        .filter(|r| !r.ends_with(".svg"))
        .map(|r| format!("/{r}"))
        .collect();
    assets.push("/".to_owned());
    let (mut plain_total, mut gzip_total, mut brotli_total) = (0, 0, 0);
    for asset in &assets {
        let url = format!("{}{asset}", server.url);
        let (_, plain_headers, plain) = fetch(&url, None).await;
        assert_eq!(header(&plain_headers, "content-encoding"), "", "{asset}");
        assert_eq!(header(&plain_headers, "vary"), "Accept-Encoding", "{asset}");

        let (status, headers, gz) = fetch(&url, Some("gzip;q=1.0, br;q=0.8")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, "content-encoding"), "gzip", "{asset}");
        assert!(gz.len() < plain.len(), "{asset}: gzip {} >= plain {}", gz.len(), plain.len());
        let mut unpacked = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut unpacked).unwrap();
        assert_eq!(unpacked, plain, "{asset}");

        // What browsers send: brotli, the smaller, wins.
        let (status, headers, br) = fetch(&url, Some("gzip, deflate, br, zstd")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, "content-encoding"), "br", "{asset}");
        assert_eq!(header(&headers, "vary"), "Accept-Encoding", "{asset}");
        assert!(br.len() < gz.len(), "{asset}: brotli {} >= gzip {}", br.len(), gz.len());
        let mut unpacked = Vec::new();
        brotli::Decompressor::new(br.as_slice(), 4096).read_to_end(&mut unpacked).unwrap();
        assert_eq!(unpacked, plain, "{asset}");
        if asset == "/" {
            assert_eq!(header(&headers, "cache-control"), "no-cache");
        } else {
            assert_eq!(header(&headers, "cache-control"), IMMUTABLE, "{asset}");
        }
        assert!(header(&headers, "content-security-policy").contains("script-src 'self'"), "{asset}");
        plain_total += plain.len();
        gzip_total += gz.len();
        brotli_total += br.len();
    }
    println!(
        "index, CSS and entry module: {plain_total} B plain, {gzip_total} B gzip, {brotli_total} B brotli"
    );

    // Refused with q=0, or not offered: the identity body.
    let script = references(&index, "src=\"/", '"').into_iter().find(|r| r.ends_with(".js")).unwrap();
    let url = format!("{}/{script}", server.url);
    let (_, _, plain) = fetch(&url, None).await;
    for refused in ["gzip;q=0, br;q=0", "identity", "deflate"] {
        let (_, headers, body) = fetch(&url, Some(refused)).await;
        assert_eq!(header(&headers, "content-encoding"), "", "{refused}");
        assert_eq!(body, plain, "{refused}");
    }
    let (_, headers, _) = fetch(&url, Some("br;q=0, gzip")).await;
    assert_eq!(header(&headers, "content-encoding"), "gzip");
}

#[tokio::test]
async fn api_routes_are_unaffected() {
    let server = TestServer::start().await;
    let anon = server.anon();
    let (status, body) = anon.get("/api/info").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["version"].is_string(), "{body}");
    let (status, body) = anon.get("/api/v1/no.such.endpoint").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["success"], false, "{body}");
    for path in ["/api/nope", "/api", "/sockjs/info", "/health/x"] {
        let (status, headers, _) = fetch(&format!("{}{path}", server.url), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(header(&headers, "content-type"), "application/json", "{path}");
    }
    // Avatars and files have their own routes: never the page.
    let (_, headers, _) = fetch(&format!("{}/avatar/alice", server.url), None).await;
    assert!(!header(&headers, "content-type").starts_with("text/html"), "{headers:?}");
    let (status, headers, _) = fetch(&format!("{}/file-upload/x/y", server.url), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!header(&headers, "content-type").starts_with("text/html"), "{headers:?}");
    let (status, body) = anon.get("/health").await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    // A POST to a client route is not a page.
    let (status, _) = anon.post("/channel/general", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let admin = server.admin().await;
    let info = admin.ok_get("channels.info?roomName=general").await;
    assert_eq!(info["channel"]["_id"], "GENERAL", "{info}");
}

const PACKAGE_DIR: &str = "clients/web";
const SCRIPT: &str = "clients/web/web_client.js";
const CHAT_SCRIPT: &str = "clients/web/web_chat.js";
const FEATURES_SCRIPT: &str = "clients/web/web_features.js";
const INSTALL_NAME: &str = "web-playwright-1.65.1-axe-4.14.1";
const INSTALL_CHECK: &str = "for (const [name, version] of [['playwright-core', '1.65.1'], ['axe-core', '4.14.1']]) { \
     const got = require(name + '/package.json').version; \
     if (got !== version) throw new Error(name + ' ' + got + ' installed, expected ' + version); } \
     require('playwright-core'); require.resolve('axe-core/axe.min.js');";
const CHROMIUM: &str = "/usr/bin/chromium";
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

fn screenshot_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "/var/tmp/apogee-target".to_owned());
    let dir = PathBuf::from(target).join("web-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_client_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
    );
    let playwright = blocking(|| ensure_npm(INSTALL_NAME, PACKAGE_DIR, INSTALL_CHECK)).await;

    let server = TestServer::start().await;
    let _carol = server.user("carol").await;
    let dave = server.user("dave").await;
    dave.ok_post("channels.join", json!({"roomId": "GENERAL"})).await;
    let suffix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 1_000_000;
    let incoming = format!("dave says hi over REST {suffix} <b>not bold</b>");

    let shots = screenshot_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPT);
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .args([server.url.as_str(), "carol", "pw", incoming.as_str()])
        .arg(&shots)
        .env("NODE_PATH", playwright.join("node_modules"));
    let mut client = Script::spawn(cmd);

    client.expect_line("WRONG_PASSWORD_SHOWN", LINE_TIMEOUT).await;
    let newbie = client.expect_line("REGISTERED", LINE_TIMEOUT).await;
    client.expect_line("SIGNED_IN", LINE_TIMEOUT).await;
    client.expect_line("SENT", LINE_TIMEOUT).await;
    client.expect_line("READY", LINE_TIMEOUT).await;
    dave.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": incoming})).await;
    client.expect_line("RECEIVED", LINE_TIMEOUT).await;
    client.expect_line("STILL_SIGNED_IN", LINE_TIMEOUT).await;
    client.expect_line("KEYBOARD", LINE_TIMEOUT).await;
    client.expect_line("OK", LINE_TIMEOUT).await;
    let finished = client.finish(LINE_TIMEOUT).await;
    assert!(finished.ok(), "{}", finished.describe("web_client.js"));

    // What the browser sent is what the server stored, HTML payload and all, as carol.
    let history = dave.ok_get("channels.history?roomId=GENERAL&count=20").await;
    let sent = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["msg"].as_str().is_some_and(|t| t.starts_with("hello from the browser")))
        .unwrap_or_else(|| panic!("the browser's message is not in the history: {history}"));
    assert_eq!(sent["u"]["username"], "carol", "{sent}");
    assert!(sent["msg"].as_str().unwrap().ends_with("<img src=x onerror=\"window.__xss=1\">"), "{sent}");
    // The account the registration form created.
    let admin = server.admin().await;
    let info = admin.ok_get(&format!("users.info?username={newbie}")).await;
    assert_eq!(info["user"]["name"], "New Person", "{info}");
    for name in ["room-desktop-light.png", "room-320-dark.png", "rooms-320-dark.png"] {
        let size = std::fs::metadata(shots.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "screenshot {name} missing or empty in {shots:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_people_chat_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
    );
    let playwright = blocking(|| ensure_npm(INSTALL_NAME, PACKAGE_DIR, INSTALL_CHECK)).await;

    let server = TestServer::start().await;
    let erin = server.user("erin").await;
    let frank = server.user("frank").await;
    frank.ok_post("channels.join", json!({"roomId": "GENERAL"})).await;

    let shots = screenshot_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(CHAT_SCRIPT);
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .args([server.url.as_str(), "erin", "frank", "pw"])
        .arg(&shots)
        .env("NODE_PATH", playwright.join("node_modules"));
    let mut client = Script::spawn(cmd);

    for line in ["SIGNED_IN", "CHANNEL_SHARED", "LIVE_A_TO_B", "LIVE_B_TO_A", "REACTED", "THREAD", "EDITED"] {
        if line == "SIGNED_IN" {
            let a11y = client.expect_line("A11Y", LINE_TIMEOUT).await;
            assert!(a11y.starts_with("login "), "{a11y}");
        }
        client.expect_line(line, LINE_TIMEOUT).await;
    }
    client.expect_line("WAITING_UNREAD", LINE_TIMEOUT).await;
    frank.ok_post("chat.postMessage", json!({"roomId": "GENERAL", "text": "for erin's unread badge"})).await;
    let a11y = client.expect_line("A11Y", LINE_TIMEOUT).await;
    assert!(a11y.starts_with("room "), "{a11y}");
    let channel = client.expect_line("OK", LINE_TIMEOUT).await;
    let finished = client.finish(LINE_TIMEOUT).await;
    assert!(finished.ok(), "{}", finished.describe("web_chat.js"));

    // What the two browsers did is what the server holds.
    let info = erin.ok_get(&format!("channels.info?roomName={channel}")).await;
    let rid = info["channel"]["_id"].as_str().unwrap().to_owned();
    let history =
        frank.ok_get(&format!("channels.history?roomId={rid}&count=50&showThreadMessages=true")).await;
    let messages = history["messages"].as_array().unwrap();
    let by = |prefix: &str| {
        messages
            .iter()
            .find(|m| m["msg"].as_str().is_some_and(|t| t.starts_with(prefix)))
            .unwrap_or_else(|| panic!("no message starting {prefix:?}: {history}"))
    };
    let edited = by("hi frank, edited");
    assert_eq!(edited["u"]["username"], "erin", "{edited}");
    assert!(edited["editedAt"].is_object() || edited["editedAt"].is_string(), "{edited}");
    let payload = by("<script>window.__xss=1</script>");
    assert_eq!(payload["u"]["username"], "frank", "{payload}");
    assert_eq!(payload["reactions"][":+1:"]["usernames"], json!(["erin"]), "{payload}");
    let reply = by("in the thread");
    assert_eq!(reply["tmid"], edited["_id"], "{reply}");
    assert_eq!(reply["u"]["username"], "frank", "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_other_features_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
    );
    let playwright = blocking(|| ensure_npm(INSTALL_NAME, PACKAGE_DIR, INSTALL_CHECK)).await;

    let server = TestServer::start().await;
    let gina = server.user("gina").await;
    let _hank = server.user("hank").await;

    let shots = screenshot_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(FEATURES_SCRIPT);
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .args([server.url.as_str(), "gina@example.com", "pw", "hank"])
        .arg(&shots)
        .env("NODE_PATH", playwright.join("node_modules"));
    let mut client = Script::spawn(cmd);
    for line in
        ["EMAIL_SIGN_IN", "DIRECT_MESSAGE", "DIRECTORY", "STARRED", "SEARCH", "PROFILE", "DELETED", "OK"]
    {
        client.expect_line(line, LINE_TIMEOUT).await;
    }
    let finished = client.finish(LINE_TIMEOUT).await;
    assert!(finished.ok(), "{}", finished.describe("web_features.js"));

    // The server holds what the browser did.
    let me = gina.ok_get("me").await;
    assert_eq!(me["name"], "Renamed Person", "{me}");
    assert_eq!(me["statusText"], "in a meeting", "{me}");
    // The browser has closed, so she is offline now; busy is what she comes back as.
    assert_eq!(me["statusDefault"], "busy", "{me}");
    let dms = gina.ok_get("im.list").await;
    let dm = dms["ims"].as_array().unwrap().iter().find(|r| r["usernames"] == json!(["gina", "hank"]));
    let dm = dm.unwrap_or_else(|| panic!("no gina-hank DM: {dms}"));
    let history = gina.ok_get(&format!("im.history?roomId={}", dm["_id"].as_str().unwrap())).await;
    assert_eq!(history["messages"][0]["msg"], "dm hello @hank", "{history}");
    let general = gina.ok_get("channels.history?roomId=GENERAL&count=50").await;
    let starred = general["messages"].as_array().unwrap().iter().any(|m| m["msg"] == "star me #general");
    assert!(!starred, "the deleted message is still in the history: {general}");
}

const FILES_SCRIPT: &str = "clients/web/web_files.js";

/// `photo.png` (noise, so it stays large: about 1.9 MB, for the progress bar) and `avatar.png`.
fn image_fixtures(dir: &Path) {
    let mut seed = 0x2545_f491_u32;
    let photo = image::RgbImage::from_fn(900, 700, |_, _| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let [r, g, b, _] = seed.to_le_bytes();
        image::Rgb([r, g, b])
    });
    photo.save(dir.join("photo.png")).unwrap();
    let avatar = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * 4) as u8, (y * 4) as u8, 200]));
    avatar.save(dir.join("avatar.png")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_avatars_and_threads_in_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install -y chromium (.ci/run does)"
    );
    let playwright = blocking(|| ensure_npm(INSTALL_NAME, PACKAGE_DIR, INSTALL_CHECK)).await;

    let server = TestServer::start().await;
    let ivy = server.user("ivy").await;
    let jack = server.user("jack").await;
    let suffix = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() % 1_000_000;
    let channel = format!("files-{suffix}");
    let created = jack.ok_post("channels.create", json!({"name": channel, "members": ["ivy"]})).await;
    let rid = created["channel"]["_id"].as_str().unwrap().to_owned();

    // A thread longer than a history page and than one page of chat.getThreadMessages; its
    // replies are not in the room's main history, so the client can only count them by tcount.
    let parent = jack.ok_post("chat.postMessage", json!({"roomId": rid, "text": "thread parent"})).await;
    let tmid = parent["message"]["_id"].as_str().unwrap().to_owned();
    for i in 0..120 {
        let who = if i % 2 == 0 { &ivy } else { &jack };
        who.ok_post(
            "chat.sendMessage",
            json!({"message": {"rid": rid, "tmid": tmid, "msg": format!("reply {i}")}}),
        )
        .await;
    }
    // An attachment whose every field is a payload.
    jack.ok_post(
        "chat.postMessage",
        json!({"roomId": rid, "text": "crafted attachment", "attachments": [{
            "title": "<img src=x onerror=window.__xss=1>",
            "title_link": "javascript:window.__xss=1",
            "image_url": "javascript:window.__xss=1",
            "description": "<script>window.__xss=1</script>",
        }]}),
    )
    .await;

    let fixtures = tempfile::tempdir().unwrap();
    image_fixtures(fixtures.path());
    let shots = screenshot_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(FILES_SCRIPT);
    let mut cmd = Command::new("node");
    cmd.arg(&script)
        .args([server.url.as_str(), "ivy", "jack", "pw", channel.as_str()])
        .arg(fixtures.path())
        .arg(&shots)
        .env("NODE_PATH", playwright.join("node_modules"));
    let mut client = Script::spawn(cmd);
    for line in [
        "THREAD",
        "PROGRESS",
        "UPLOADED",
        "IMAGE_SEEN",
        "DROPPED",
        "XSS_INERT",
        "AVATAR_SET",
        "AVATAR_RESET",
        "A11Y",
        "OK",
    ] {
        client.expect_line(line, LINE_TIMEOUT).await;
    }
    let finished = client.finish(LINE_TIMEOUT).await;
    assert!(finished.ok(), "{}", finished.describe("web_files.js"));

    // The server holds what the browsers did: two file messages by ivy with their descriptions.
    let history = jack.ok_get(&format!("channels.history?roomId={rid}&count=20")).await;
    let files: Vec<&serde_json::Value> =
        history["messages"].as_array().unwrap().iter().filter(|m| m["file"].is_object()).collect();
    assert_eq!(files.len(), 2, "{history}");
    assert!(files.iter().all(|m| m["u"]["username"] == "ivy"), "{history}");
    let names: BTreeSet<&str> = files.iter().map(|m| m["file"]["name"].as_str().unwrap()).collect();
    assert!(names.contains("photo.png"), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("img src=x onerror")), "{names:?}");
    let photo = files.iter().find(|m| m["file"]["name"] == "photo.png").unwrap();
    assert_eq!(photo["attachments"][0]["description"], "a photo <b>not bold</b>", "{photo}");
    // Reset: the default avatar again (avatars need a session here; the browser used cookies).
    let resp = reqwest::Client::new()
        .get(format!("{}/avatar/ivy", server.url))
        .header("X-User-Id", jack.user_id())
        .header("X-Auth-Token", jack.token())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(resp.headers(), "content-type"), "image/svg+xml", "{:?}", resp.headers());
    for name in ["files-room.png", "files-upload-tray.png", "profile-avatar.png"] {
        let size = std::fs::metadata(shots.join(name)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "screenshot {name} missing or empty in {shots:?}");
    }
}
