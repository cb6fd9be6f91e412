//! Files end to end: uploads (`rooms.media` + `rooms.mediaConfirm`, `rooms.upload`), the file
//! message, downloads with Rocket.Chat's access rules, ranges and validators, thumbnails,
//! refusals that store nothing, `*.files`, deletion with the message, avatars, and the S3 backend
//! against a real S3-compatible server.
#![allow(clippy::unwrap_used)]

use std::io::Cursor;
use std::path::Path;
use std::time::Duration;

use apogee_tests::moto::Moto;
use apogee_tests::{Client, TestServer, assert_error};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 99]));
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn file_form(field: &str, name: &str, content_type: &str, bytes: Vec<u8>) -> Form {
    Form::new()
        .part(field.to_owned(), Part::bytes(bytes).file_name(name.to_owned()).mime_str(content_type).unwrap())
}

async fn create_group(client: &Client, name: &str) -> String {
    let body = client.ok_post("groups.create", json!({"name": name})).await;
    body["group"]["_id"].as_str().unwrap().to_owned()
}

/// Uploads with `rooms.media` and returns the file id.
async fn media(client: &Client, rid: &str, form: Form) -> (StatusCode, Value) {
    client.post_multipart(&format!("rooms.media/{rid}"), form).await
}

/// Every stored blob under the data dir (the upload blobs and leftovers of failed writes), but
/// rocket.cat's avatar, stored at start.
fn blobs(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&dir.join("files"), &mut out);
    // `avatars/<hex of "rocket.cat">`.
    out.retain(|p| !p.ends_with("avatars/726f636b65742e636174"));
    out
}

async fn download(client: &Client, path: &str) -> reqwest::Response {
    client.request(Method::GET, path).send().await.unwrap()
}

#[tokio::test]
async fn image_upload_message_download_and_thumbnail() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = create_group(&alice, "secret-files").await;
    let image = png(800, 600);

    let (status, body) =
        media(&alice, &rid, file_form("file", "cat photo.png", "image/png", image.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let file_id = body["file"]["_id"].as_str().unwrap().to_owned();
    assert_eq!(body["file"]["url"], format!("/file-upload/{file_id}/cat%20photo.png"));

    let confirmed = alice
        .ok_post(
            &format!("rooms.mediaConfirm/{rid}/{file_id}"),
            json!({"msg": "look", "description": "a cat"}),
        )
        .await;
    let m = &confirmed["message"];
    assert_eq!(m["msg"], "look");
    assert_eq!(m["rid"], rid.as_str());
    assert_eq!(m["groupable"], false);
    assert_eq!(
        m["file"],
        json!({"_id": file_id, "name": "cat photo.png", "type": "image/png", "size": image.len(), "format": "png"})
    );
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "the original and its thumbnail: {m}");
    assert_eq!(files[0], m["file"]);
    let thumb_id = files[1]["_id"].as_str().unwrap();
    assert_eq!(files[1]["name"], "thumb-cat photo.png");
    let a = &m["attachments"][0];
    assert_eq!(a["title"], "cat photo.png");
    assert_eq!(a["type"], "file");
    assert_eq!(a["description"], "a cat");
    assert_eq!(a["title_link"], format!("/file-upload/{file_id}/cat%20photo.png"));
    assert_eq!(a["title_link_download"], true);
    assert_eq!(a["image_url"], format!("/file-upload/{thumb_id}/cat%20photo.png"));
    assert_eq!(a["image_type"], "image/png");
    assert_eq!(a["image_size"], image.len());
    assert_eq!(a["image_dimensions"], json!({"width": 480, "height": 360}));
    let preview = a["image_preview"].as_str().unwrap();
    assert!(preview.len() > 20 && !preview.contains(' '), "base64 JPEG: {preview}");

    // A member downloads it whole, with validators and caching headers.
    let url = a["title_link"].as_str().unwrap();
    let resp = download(&alice, url).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["content-length"], image.len().to_string().as_str());
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(h["content-disposition"].to_str().unwrap().starts_with("inline; filename=\"cat photo.png\""));
    assert!(h["cache-control"].to_str().unwrap().contains("private"));
    assert!(h.contains_key("last-modified"));
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), image.as_slice());

    // Revalidation.
    let resp = alice.request(Method::GET, url).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);

    // Ranges: a span, a suffix, and one outside the file.
    let resp = alice.request(Method::GET, url).header("Range", "bytes=10-19").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], format!("bytes 10-19/{}", image.len()).as_str());
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &image[10..20]);
    let resp = alice.request(Method::GET, url).header("Range", "bytes=-5").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &image[image.len() - 5..]);
    let resp = alice.request(Method::GET, url).header("Range", "bytes=99999999-").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(resp.headers()["content-range"], format!("bytes */{}", image.len()).as_str());

    // Cookies and query parameters authenticate too; the old GridFS path serves the same bytes.
    let anon = server.anon();
    let cookie = format!("rc_uid={}; rc_token={}", alice.user_id(), alice.token());
    let resp = anon.request(Method::GET, url).header("Cookie", cookie).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let q = format!("{url}?rc_uid={}&rc_token={}", alice.user_id(), alice.token());
    assert_eq!(download(&anon, &q).await.status(), StatusCode::OK);
    let old = format!("/ufs/GridFS:Uploads/{file_id}/cat.png");
    assert_eq!(download(&alice, &old).await.bytes().await.unwrap().len(), image.len());

    // No login, a bad token, or a non-member of the private room: refused.
    assert_eq!(download(&anon, url).await.status(), StatusCode::FORBIDDEN);
    let bad = format!("{url}?rc_uid={}&rc_token=nope", alice.user_id());
    assert_eq!(download(&anon, &bad).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(download(&bob, url).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        download(&bob, &format!("/file-upload/{thumb_id}/x.png")).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(download(&alice, "/file-upload/nope/x.png").await.status(), StatusCode::NOT_FOUND);

    // The thumbnail is a 480×360 PNG.
    let resp = download(&alice, a["image_url"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    let thumb = image::load_from_memory(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (480, 360));

    // `groups.files` lists the file (not its thumbnail) with the uploader.
    let listed = alice.ok_get(&format!("groups.files?roomId={rid}")).await;
    assert_eq!(listed["total"], 1, "{listed}");
    let f = &listed["files"][0];
    assert_eq!(f["_id"], file_id.as_str());
    assert_eq!(f["name"], "cat photo.png");
    assert_eq!(f["type"], "image/png");
    assert_eq!(f["complete"], true);
    assert_eq!(f["description"], "a cat");
    assert_eq!(f["identify"]["size"], json!({"width": 800, "height": 600}));
    assert_eq!(f["user"]["username"], "alice");
    assert_error(&bob.get(&format!("groups.files?roomId={rid}")).await, 400, Some("error-room-not-found"));

    // A temporary upload is confirmed once, only by its uploader, only in its room.
    assert_error(
        &alice.post(&format!("rooms.mediaConfirm/{rid}/{file_id}"), json!({})).await,
        400,
        Some("invalid-file"),
    );

    // Deleting the message deletes the file and its thumbnail.
    let before = blobs(server.data_dir()).len();
    alice.ok_post("chat.delete", json!({"roomId": rid, "msgId": m["_id"]})).await;
    // The files go after the deletion event reaches the files service: wait for both blobs.
    let mut gone = false;
    for _ in 0..100 {
        if blobs(server.data_dir()).len() == before - 2 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "blobs left after the message was deleted: {:?}", blobs(server.data_dir()));
    assert_eq!(download(&alice, url).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(download(&alice, a["image_url"].as_str().unwrap()).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(alice.ok_get(&format!("groups.files?roomId={rid}")).await["total"], 0);
}

#[tokio::test]
async fn legacy_upload_in_a_thread_and_plain_files() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let root = alice.ok_post("chat.postMessage", json!({"channel": "#general", "text": "thread root"})).await;
    let tmid = root["message"]["_id"].as_str().unwrap().to_owned();

    // `rooms.upload`: the caption and thread come as form fields, before or after the file.
    let form = Form::new()
        .text("msg", "notes attached")
        .part(
            "file",
            Part::bytes(b"hello, world\n".to_vec())
                .file_name("../../etc/notes.txt")
                .mime_str("text/plain")
                .unwrap(),
        )
        .text("tmid", tmid.clone())
        .text("description", "plain text");
    let (status, body) = alice.post_multipart("rooms.upload/GENERAL", form).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let m = &body["message"];
    assert_eq!(m["msg"], "notes attached");
    assert_eq!(m["tmid"], tmid.as_str());
    // The name lost its directories; the blob's path never used it.
    assert_eq!(m["file"]["name"], "notes.txt");
    assert_eq!(m["file"]["type"], "text/plain");
    let a = &m["attachments"][0];
    assert_eq!(a["format"], "TXT");
    assert_eq!(a["size"], 13);
    assert!(a.get("image_url").is_none());
    let id = m["file"]["_id"].as_str().unwrap();
    assert!(server.data_dir().join("files/uploads").join(id).is_file());
    let resp = download(&alice, a["title_link"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"hello, world\n");

    let reply = alice.ok_get(&format!("chat.getMessage?msgId={}", m["_id"].as_str().unwrap())).await;
    assert_eq!(reply["message"]["tmid"], tmid.as_str());

    // HTML is served as an attachment, never rendered inline.
    let (_, body) = media(
        &alice,
        "GENERAL",
        file_form("file", "page.html", "text/html", b"<html><script>x</script>".to_vec()),
    )
    .await;
    let url = body["file"]["url"].as_str().unwrap().to_owned();
    let resp = download(&alice, &url).await;
    assert_eq!(resp.headers()["content-type"], "text/html");
    assert!(resp.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));

    // `channels.files` of a public room, for any member.
    let listed = alice.ok_get("channels.files?roomName=general").await;
    assert_eq!(listed["total"], 1, "only the confirmed upload: {listed}");
    // Form fields are bounded even though the upload body is not.
    let form = Form::new()
        .text("msg", "x".repeat(100_000))
        .part("file", Part::bytes(b"x".to_vec()).file_name("a.txt"));
    let (status, body) = alice.post_multipart("rooms.upload/GENERAL", form).await;
    assert_error(&(status, body), 400, Some("error-invalid-body"));
    // A second file part.
    let form = Form::new()
        .part("file", Part::bytes(b"1".to_vec()).file_name("a.txt"))
        .part("file", Part::bytes(b"2".to_vec()).file_name("b.txt"));
    let (status, body) = alice.post_multipart("rooms.upload/GENERAL", form).await;
    assert_eq!((status.as_u16(), body["error"].as_str()), (400, Some("Just 1 file is allowed")));
    // Multipart without the file part, or the file under another part name.
    let (status, body) = alice.post_multipart("rooms.media/GENERAL", Form::new().text("msg", "x")).await;
    assert_error(&(status, body), 400, Some("invalid-field"));
    let (status, body) = alice
        .post_multipart("rooms.upload/GENERAL", file_form("test", "a.png", "image/png", png(400, 400)))
        .await;
    assert_eq!(body["error"], "[invalid-field]");
    assert_error(&(status, body), 400, Some("invalid-field"));
    // A large refused form is read to its end: a client that writes all of it before reading
    // (as Node's does) gets the answer, not a reset connection.
    for route in ["rooms.media/GENERAL", "rooms.upload/GENERAL"] {
        let answer = send_whole_form_then_read(&server, &alice, route, "test", 24 * 1024 * 1024).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("invalid-field"), "{answer}");
    }
}

/// Posts a multipart form with one file part of `size` bytes over a plain socket, writing every
/// byte before reading anything, and returns the raw answer.
async fn send_whole_form_then_read(
    server: &TestServer,
    who: &Client,
    route: &str,
    part: &str,
    size: usize,
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = server.url.trim_start_matches("http://").to_owned();
    let head = format!(
        "--b0undary\r\nContent-Disposition: form-data; name=\"{part}\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = "\r\n--b0undary--\r\n";
    let length = head.len() + size + tail.len();
    let request = format!(
        "POST /api/v1/{route} HTTP/1.1\r\nHost: {host}\r\nX-User-Id: {}\r\nX-Auth-Token: {}\r\n\
         Content-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {length}\r\n\r\n{head}",
        who.user_id(),
        who.token()
    );
    let mut socket = tokio::net::TcpStream::connect(&host).await.unwrap();
    socket.write_all(request.as_bytes()).await.unwrap();
    let chunk = vec![7u8; 64 * 1024];
    let mut sent = 0;
    while sent < size {
        let n = chunk.len().min(size - sent);
        socket.write_all(&chunk[..n]).await.expect("the server stopped reading the body");
        sent += n;
    }
    socket.write_all(tail.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = socket.read(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[tokio::test]
async fn refused_uploads_store_nothing() {
    let server = TestServer::start_with(&[
        ("TEST_MODE", "true"),
        ("OVERWRITE_SETTING_FileUpload_MaxFileSize", "2000"),
    ])
    .await;
    let alice = server.user("alice").await;
    let outsider = server.user("outsider").await;
    let rid = create_group(&alice, "private-room").await;

    // Too large: refused while streaming, no blob and no temporary file left.
    let (status, body) =
        media(&alice, &rid, file_form("file", "big.bin", "application/octet-stream", vec![7; 5000])).await;
    assert_error(&(status, body), 400, Some("error-file-too-large"));
    // SVG is blacklisted by default, whatever the client calls it.
    let svg =
        b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    let (status, body) = media(&alice, &rid, file_form("file", "cat.png", "image/png", svg.to_vec())).await;
    assert_error(&(status, body), 400, Some("error-invalid-file-type"));
    // Claimed blacklisted type.
    let (status, body) =
        media(&alice, &rid, file_form("file", "x.svg", "image/svg+xml", b"plain".to_vec())).await;
    assert_error(&(status, body), 400, Some("error-invalid-file-type"));
    // Not a member of the private room.
    let (status, body) =
        media(&outsider, &rid, file_form("file", "a.txt", "text/plain", b"hi".to_vec())).await;
    assert_error(&(status, body), 403, None);
    assert!(blobs(server.data_dir()).is_empty(), "{:?}", blobs(server.data_dir()));

    // Whitelist, checked on the sniffed type: text claiming to be an image is text.
    let admin = server.admin().await;
    admin.ok_post("settings/FileUpload_MediaTypeWhiteList", json!({"value": "image/*"})).await;
    let (status, body) =
        media(&alice, &rid, file_form("file", "a.png", "image/png", b"not an image".to_vec())).await;
    assert_error(&(status, body), 400, Some("error-invalid-file-type"));
    assert!(blobs(server.data_dir()).is_empty());
    let (status, body) = media(&alice, &rid, file_form("file", "ok.png", "image/png", png(10, 10))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(blobs(server.data_dir()).len(), 1);
}

#[tokio::test]
async fn avatars() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;

    // Generated initials before any upload.
    let resp = download(&alice, "/avatar/alice").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/svg+xml");
    assert!(resp.text().await.unwrap().contains(">A</text>"));
    // Clients that cannot show SVG (mobile apps) ask for PNG or JPEG: the same square, rasterised.
    for (format, content_type) in [("png", "image/png"), ("jpeg", "image/jpeg")] {
        let resp = download(&alice, &format!("/avatar/alice?format={format}&size=48")).await;
        assert_eq!(resp.headers()["content-type"], content_type);
        let img = image::load_from_memory(&resp.bytes().await.unwrap()).unwrap();
        assert_eq!((img.width(), img.height()), (48, 48));
    }
    let room = download(&alice, "/avatar/room/GENERAL").await.text().await.unwrap();
    assert!(room.contains(">G</text>"), "{room}");
    // Unauthenticated avatars are blocked by default (Accounts_AvatarBlockUnauthenticatedAccess).
    assert_eq!(download(&server.anon(), "/avatar/alice").await.status(), StatusCode::FORBIDDEN);
    let q = format!("/avatar/alice?rc_uid={}&rc_token={}", alice.user_id(), alice.token());
    assert_eq!(download(&server.anon(), &q).await.status(), StatusCode::OK);

    // Every logged-in client hears of avatar changes (`updateAvatar`).
    let mut ws = apogee_tests::ddp::Ddp::login(&server.url, bob.token()).await;
    assert_eq!(ws.sub("stream-notify-logged", json!(["updateAvatar", false])).await["msg"], "ready");
    let info = |who: &Client| {
        let path = format!("users.info?userId={}", alice.user_id());
        let who = who.clone();
        async move { who.ok_get(&path).await["user"].clone() }
    };
    assert!(info(&bob).await.get("avatarETag").is_none());

    // Upload, then served resized and converted.
    let (status, body) = alice
        .post_multipart("users.setAvatar", file_form("image", "me.png", "image/png", png(300, 200)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let event = ws.event("stream-notify-logged", "updateAvatar").await;
    let change = &event["fields"]["args"][0];
    assert_eq!(change["username"], "alice", "{event}");
    let etag = change["etag"].as_str().unwrap().to_owned();
    assert_eq!(info(&bob).await["avatarETag"], etag.as_str());
    assert_eq!(alice.ok_get("me").await["avatarETag"], etag.as_str());
    let resp = download(&alice, "/avatar/alice?size=64&format=jpeg").await;
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let img = image::load_from_memory(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (64, 64));
    // An extension clients append is dropped; `@name` is always the generated picture.
    let resp = download(&bob, "/avatar/alice.png").await;
    assert_eq!(resp.headers()["content-type"], "image/png");
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let resp =
        bob.request(Method::GET, "/avatar/alice.png").header("If-None-Match", etag).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(download(&bob, "/avatar/@alice").await.headers()["content-type"], "image/svg+xml");
    // A username with a dot is a username, not a name and an extension.
    let dotted = server.user("john.doe").await;
    let (status, body) = dotted
        .post_multipart("users.setAvatar", file_form("image", "me.png", "image/png", png(40, 40)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(download(&bob, "/avatar/john.doe").await.headers()["content-type"], "image/png");

    // Not an image, another user's avatar without permission, remote URLs: refused.
    let (status, body) = alice
        .post_multipart("users.setAvatar", file_form("image", "x.txt", "image/png", b"text".to_vec()))
        .await;
    assert_error(&(status, body), 400, Some("error-invalid-file-type"));
    let form = Form::new().text("username", "alice").part("image", Part::bytes(png(5, 5)).file_name("a.png"));
    let (status, body) = bob.post_multipart("users.setAvatar", form).await;
    assert_error(&(status, body), 400, Some("error-not-allowed"));
    assert_error(
        &bob.post("users.resetAvatar", json!({"username": "alice"})).await,
        400,
        Some("error-not-allowed"),
    );
    assert_error(
        &alice.post("users.setAvatar", json!({"avatarUrl": "http://169.254.169.254/x.png"})).await,
        400,
        Some("error-avatar-url-handling"),
    );

    // users.getAvatar redirects (followed here); resetAvatar returns to initials.
    let resp = alice
        .request(Method::GET, &format!("users.getAvatar?userId={}", alice.user_id()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.url().path(), "/avatar/alice");
    assert_eq!(resp.status(), StatusCode::OK);
    alice.ok_post("users.resetAvatar", json!({})).await;
    assert_eq!(download(&alice, "/avatar/alice").await.headers()["content-type"], "image/svg+xml");
    let reset = ws
        .recv_where(|f| {
            f["fields"]["eventName"] == "updateAvatar" && f["fields"]["args"][0]["username"] == "alice"
        })
        .await;
    assert!(reset["fields"]["args"][0].get("etag").is_none(), "{reset}");
    assert!(info(&bob).await.get("avatarETag").is_none());
}

#[tokio::test]
async fn s3_storage_end_to_end() {
    let moto = Moto::start().await;
    let server = TestServer::start_with(&[
        ("TEST_MODE", "true"),
        ("OVERWRITE_SETTING_FileUpload_Storage_Type", "AmazonS3"),
        ("OVERWRITE_SETTING_FileUpload_S3_BucketURL", moto.endpoint.as_str()),
        ("OVERWRITE_SETTING_FileUpload_S3_Bucket", "apogee-e2e"),
        ("OVERWRITE_SETTING_FileUpload_S3_Region", "us-east-1"),
        ("OVERWRITE_SETTING_FileUpload_S3_ForcePathStyle", "true"),
        ("OVERWRITE_SETTING_FileUpload_S3_AWSAccessKeyId", "testing"),
        ("OVERWRITE_SETTING_FileUpload_S3_AWSSecretAccessKey", "testing"),
    ])
    .await;
    let alice = server.user("alice").await;
    // Larger than one multipart part.
    let data: Vec<u8> = (0..9 * 1024 * 1024 + 17).map(|i: usize| (i % 253) as u8).collect();
    let (status, body) =
        media(&alice, "GENERAL", file_form("file", "data.bin", "application/octet-stream", data.clone()))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["file"]["_id"].as_str().unwrap().to_owned();
    let m = alice.ok_post(&format!("rooms.mediaConfirm/GENERAL/{id}"), json!({})).await;
    let url = m["message"]["attachments"][0]["title_link"].as_str().unwrap().to_owned();
    let resp = download(&alice, &url).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), data.as_slice());
    let resp =
        alice.request(Method::GET, &url).header("Range", "bytes=9437180-9437199").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[9_437_180..9_437_200]);
    // Nothing on local disk: the blobs are in the bucket.
    assert!(blobs(server.data_dir()).is_empty());
    let listed = alice.ok_get("channels.files?roomId=GENERAL").await;
    assert_eq!(listed["files"][0]["store"], "AmazonS3:Uploads");
}

/// A site of images for avatar URLs: `(path, status, content type, body)` routes; counts
/// the requests it answered.
async fn image_host(
    routes: Vec<(&'static str, u16, &'static str, Vec<u8>)>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let routes = routes
        .into_iter()
        .map(|(path, status, ty, body)| apogee_tests::http_site::Route {
            path,
            status,
            headers: format!("Content-Type: {ty}\r\nLocation: /a.png\r\n"),
            body,
        })
        .collect();
    apogee_tests::http_site::http_site(routes).await
}

#[tokio::test]
async fn avatar_from_a_url() {
    let server = TestServer::start_with(&[
        ("TEST_MODE", "true"),
        ("OVERWRITE_SETTING_FileUpload_MaxFileSize", "20000"),
    ])
    .await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let (base, hits) = image_host(vec![
        ("/a.png", 200, "image/png", png(40, 30)),
        ("/page", 200, "text/html", b"<html></html>".to_vec()),
        ("/fake.png", 200, "image/png", b"not an image at all".to_vec()),
        ("/broken", 500, "text/plain", b"oops".to_vec()),
        ("/moved", 302, "text/plain", Vec::new()),
        ("/big.png", 200, "image/png", vec![0; 30_000]),
    ])
    .await;

    // Fetched by the server (loopback is allowed only because this is TEST_MODE).
    alice.ok_post("users.setAvatar", json!({"avatarUrl": format!("{base}/a.png")})).await;
    let resp = download(&alice, "/avatar/alice").await;
    assert_eq!(resp.headers()["content-type"], "image/png");
    let img = image::load_from_memory(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (40, 30));

    // Not an image, not found, a failing host, a redirect (not followed), too large.
    for (path, error) in [
        ("/page", "error-avatar-invalid-url"),
        ("/nothing", "error-avatar-invalid-url"),
        ("/broken", "error-avatar-url-handling"),
        ("/moved", "error-avatar-invalid-url"),
        ("/big.png", "error-file-too-large"),
        ("/fake.png", "error-invalid-file-type"),
    ] {
        let resp = alice.post("users.setAvatar", json!({"avatarUrl": format!("{base}{path}")})).await;
        assert_error(&resp, 400, Some(error));
    }
    assert_error(
        &alice.post("users.setAvatar", json!({"avatarUrl": "ftp://x/a.png"})).await,
        400,
        Some("error-avatar-invalid-url"),
    );
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    // Another user's avatar needs `edit-other-user-avatar`; the URL is not even fetched.
    let resp =
        bob.post("users.setAvatar", json!({"avatarUrl": format!("{base}/a.png"), "username": "alice"})).await;
    assert_error(&resp, 403, None);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), before);
    // The admin may set anyone's, by id or username.
    let admin = server.admin().await;
    admin
        .ok_post("users.setAvatar", json!({"avatarUrl": format!("{base}/a.png"), "userId": bob.user_id()}))
        .await;
    assert_eq!(download(&bob, "/avatar/bob").await.headers()["content-type"], "image/png");
    // The blob store holds alice's and bob's avatars, nothing of the refused fetches.
    assert_eq!(blobs(server.data_dir()).len(), 2, "{:?}", blobs(server.data_dir()));
}

#[tokio::test]
async fn uploads_are_rate_limited_outside_test_mode() {
    let server = TestServer::start_with(&[
        ("ADMIN_USERNAME", "root"),
        ("ADMIN_PASS", "s3cret"),
        ("ADMIN_EMAIL", "root@example.com"),
        ("OVERWRITE_SETTING_API_Enable_Rate_Limiter_Limit_Calls_Default", "3"),
    ])
    .await;
    let root = server.anon().login("root", "s3cret").await;
    root.ok_post(
        "users.create",
        json!({"username": "alice", "email": "alice@example.com", "name": "Alice", "password": "pw", "verified": true}),
    )
    .await;
    let alice = server.anon().login("alice", "pw").await;
    let text = |n: u8| file_form("file", "n.txt", "text/plain", vec![b'a' + n; 10]);
    for n in 0..3u8 {
        let resp = alice
            .request(Method::POST, "/api/v1/rooms.media/GENERAL")
            .multipart(text(n))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["x-ratelimit-limit"], "3");
        assert_eq!(resp.headers()["x-ratelimit-remaining"], (2 - n).to_string().as_str());
        assert!(resp.headers().contains_key("x-ratelimit-reset"));
    }
    assert_eq!(blobs(server.data_dir()).len(), 3);
    // The fourth within the minute: Rocket.Chat's 429, and nothing stored.
    let resp =
        alice.request(Method::POST, "/api/v1/rooms.media/GENERAL").multipart(text(9)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["x-ratelimit-remaining"], "0");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert!(body.get("errorType").is_none(), "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with("Error, too many requests. Please slow down. You must wait ")
            && error.ends_with(" seconds before trying this endpoint again. [error-too-many-requests]"),
        "{error}"
    );
    assert_eq!(blobs(server.data_dir()).len(), 3);
    // Counted per route: the legacy route has its own budget.
    let (status, body) = alice.post_multipart("rooms.upload/GENERAL", text(1)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // `api-bypass-rate-limit` (admins) is never limited.
    for n in 0..5u8 {
        let (status, body) = root.post_multipart("rooms.media/GENERAL", text(n)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Switched off by the setting.
    root.ok_post("settings/API_Enable_Rate_Limiter", json!({"value": false})).await;
    let (status, body) = alice.post_multipart("rooms.media/GENERAL", text(2)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Outside TEST_MODE an avatar URL may not point at this machine (or any private address),
    // and the server never connects to it.
    let (base, hits) = image_host(vec![("/a.png", 200, "image/png", png(4, 4))]).await;
    for url in
        [format!("{base}/a.png"), "http://169.254.169.254/latest".to_owned(), "http://[::1]/x".to_owned()]
    {
        let resp = alice.post("users.setAvatar", json!({"avatarUrl": url})).await;
        assert_error(&resp, 400, Some("error-avatar-invalid-url"));
    }
    let port = base.rsplit(':').next().unwrap();
    let resp =
        alice.post("users.setAvatar", json!({"avatarUrl": format!("http://localhost:{port}/a.png")})).await;
    assert_error(&resp, 400, Some("error-avatar-invalid-url"));
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn svg_and_html_downloads_run_no_script() {
    let server = TestServer::start().await;
    let admin = server.admin().await;
    let alice = server.user("alice").await;
    // An admin allows SVG (blacklisted by default).
    admin.ok_post("settings/FileUpload_MediaTypeBlackList", json!({"value": ""})).await;
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><script>alert(document.cookie)</script></svg>";
    let (status, body) =
        media(&alice, "GENERAL", file_form("file", "evil.svg", "image/svg+xml", svg.to_vec())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["file"]["_id"].as_str().unwrap().to_owned();
    let m = alice.ok_post(&format!("rooms.mediaConfirm/GENERAL/{id}"), json!({})).await;
    let m = &m["message"];
    // The SVG is shown through a PNG rendering of it (its script never runs), as Rocket.Chat
    // shows SVGs: thumbnail `thumb-<name>`, preview and the thumbnail's dimensions.
    assert_eq!(m["file"]["type"], "image/svg+xml");
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{m}");
    assert_eq!(
        (files[1]["name"].as_str(), files[1]["type"].as_str()),
        (Some("thumb-evil.svg"), Some("image/png"))
    );
    let attachment = &m["attachments"][0];
    assert_eq!(attachment["image_type"], "image/png", "{m}");
    assert_eq!(attachment["image_dimensions"], json!({"width": 360, "height": 360}));
    assert!(attachment["image_preview"].as_str().is_some_and(|p| !p.is_empty()));
    let thumb = download(&alice, attachment["image_url"].as_str().unwrap()).await;
    assert_eq!(thumb.headers()["content-type"], "image/png");
    let img = image::load_from_memory(&thumb.bytes().await.unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (360, 360));
    assert_eq!(blobs(server.data_dir()).len(), 2);
    let (_, body) = media(
        &alice,
        "GENERAL",
        file_form("file", "page.html", "text/html", b"<script>alert(1)</script>".to_vec()),
    )
    .await;
    let html_url = body["file"]["url"].as_str().unwrap().to_owned();

    for url in [format!("/file-upload/{id}/evil.svg"), html_url] {
        for query in ["", "?download"] {
            let resp = download(&alice, &format!("{url}{query}")).await;
            assert_eq!(resp.status(), StatusCode::OK);
            let h = resp.headers();
            assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox", "{url}");
            assert_eq!(h["x-content-type-options"], "nosniff");
            assert!(h["content-disposition"].to_str().unwrap().starts_with("attachment;"), "{url}");
        }
    }
    // A plain image stays inline, under the same policy.
    let (_, body) = media(&alice, "GENERAL", file_form("file", "p.png", "image/png", png(4, 4))).await;
    let resp = download(&alice, body["file"]["url"].as_str().unwrap()).await;
    assert!(resp.headers()["content-disposition"].to_str().unwrap().starts_with("inline;"));
    assert_eq!(resp.headers()["content-security-policy"], "default-src 'none'; sandbox");
}

fn data_url(bytes: &[u8], content_type: &str) -> String {
    use base64::Engine;
    format!("data:{content_type};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

#[tokio::test]
async fn room_avatars() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = alice.ok_post("channels.create", json!({"name": "pics", "members": ["bob"]})).await["channel"]
        ["_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut ws = apogee_tests::ddp::Ddp::login(&server.url, bob.token()).await;
    let uid = bob.user_id().to_owned();
    ws.sub("stream-notify-user", json!([format!("{uid}/rooms-changed"), false])).await;
    ws.sub("stream-notify-logged", json!(["updateAvatar", false])).await;

    // Generated initials until one is set.
    let resp = download(&alice, &format!("/avatar/room/{rid}")).await;
    assert_eq!(resp.headers()["content-type"], "image/svg+xml");
    assert!(resp.text().await.unwrap().contains(">P</text>"));

    // A member without `edit-room` may not set it; nothing is stored.
    let image = png(120, 80);
    let resp = bob
        .post("rooms.saveRoomSettings", json!({"rid": rid, "roomAvatar": data_url(&image, "image/png")}))
        .await;
    assert_eq!(resp.0.as_u16(), 400, "{}", resp.1);
    assert_eq!(resp.1["errorType"], "error-action-not-allowed");
    assert!(blobs(server.data_dir()).is_empty(), "{:?}", blobs(server.data_dir()));
    // Not an image we decode (SVG included), or not a data URL: refused.
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
    let resp = alice
        .post("rooms.saveRoomSettings", json!({"rid": rid, "roomAvatar": data_url(svg, "image/svg+xml")}))
        .await;
    assert_error(&resp, 400, Some("error-invalid-file-type"));
    let resp =
        alice.post("rooms.saveRoomSettings", json!({"rid": rid, "roomAvatar": "http://x/a.png"})).await;
    assert_error(&resp, 400, Some("error-invalid-image"));
    assert!(blobs(server.data_dir()).is_empty());

    // The owner sets it: the room gets an `avatarETag`, members hear of it, and it is served.
    alice
        .ok_post(
            "rooms.saveRoomSettings",
            json!({"rid": rid, "roomAvatar": data_url(&image, "image/png"), "roomTopic": "cats"}),
        )
        .await;
    let room = alice.ok_get(&format!("rooms.info?roomId={rid}")).await["room"].clone();
    let etag = room["avatarETag"].as_str().unwrap().to_owned();
    assert_eq!(room["topic"], "cats");
    let changed = ws
        .recv_where(|f| {
            f["collection"] == "stream-notify-user" && f["fields"]["args"][1]["avatarETag"].as_str().is_some()
        })
        .await;
    assert_eq!(changed["fields"]["args"][1]["avatarETag"], etag.as_str());
    let announced = ws.event("stream-notify-logged", "updateAvatar").await;
    assert_eq!(announced["fields"]["args"][0], json!({"rid": rid, "etag": etag}));
    let resp = download(&bob, &format!("/avatar/room/{rid}")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "image/png");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), image.as_slice());
    let resp = download(&bob, &format!("/avatar/room/{rid}?size=32&format=jpeg")).await;
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    let img = image::load_from_memory(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!((img.width(), img.height()), (32, 32));
    let history = alice.ok_get(&format!("channels.history?roomId={rid}")).await;
    assert!(
        history["messages"].as_array().unwrap().iter().any(|m| m["t"] == "room_changed_avatar"),
        "{history}"
    );

    // A new one replaces it (new ETag, the old bytes gone).
    let second = png(50, 50);
    alice
        .ok_post("rooms.saveRoomSettings", json!({"rid": rid, "roomAvatar": data_url(&second, "image/png")}))
        .await;
    let etag2 = alice.ok_get(&format!("rooms.info?roomId={rid}")).await["room"]["avatarETag"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(etag, etag2);
    assert_eq!(blobs(server.data_dir()).len(), 1, "{:?}", blobs(server.data_dir()));
    let got = download(&bob, &format!("/avatar/room/{rid}")).await.bytes().await.unwrap();
    assert_eq!(got.as_ref(), second.as_slice());

    // `roomAvatar: null` resets it to the initials.
    alice.ok_post("rooms.saveRoomSettings", json!({"rid": rid, "roomAvatar": null})).await;
    let room = alice.ok_get(&format!("rooms.info?roomId={rid}")).await["room"].clone();
    assert!(room.get("avatarETag").is_none(), "{room}");
    assert_eq!(
        download(&bob, &format!("/avatar/room/{rid}")).await.headers()["content-type"],
        "image/svg+xml"
    );
    assert!(blobs(server.data_dir()).is_empty(), "{:?}", blobs(server.data_dir()));
}

#[tokio::test]
async fn room_images_list_a_rooms_pictures() {
    let server = TestServer::start().await;
    let alice = server.user("alice").await;
    let bob = server.user("bob").await;
    let rid = create_group(&alice, "album").await;
    let upload = |form: Form| {
        let alice = alice.clone();
        let path = format!("rooms.upload/{rid}");
        async move {
            let (status, body) = alice.post_multipart(&path, form).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["message"]["file"]["_id"].as_str().unwrap().to_owned()
        }
    };
    // A large image (which gets a thumbnail), a text file, a small image.
    let first = upload(file_form("file", "big.png", "image/png", png(900, 600))).await;
    upload(file_form("file", "notes.txt", "text/plain", b"words".to_vec())).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = upload(file_form("file", "small.png", "image/png", png(20, 20))).await;

    let listed = alice.ok_get(&format!("rooms.images?roomId={rid}")).await;
    let ids: Vec<&str> =
        listed["files"].as_array().unwrap().iter().map(|f| f["_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second.as_str(), first.as_str()], "images only, no thumbnail, newest first: {listed}");
    assert_eq!(listed["total"].as_u64(), Some(2));
    assert_eq!(listed["files"][0]["typeGroup"], "image");
    // From a given image back in time; the older name still answers.
    let from = alice.ok_get(&format!("rooms.images?roomId={rid}&startingFromId={first}")).await;
    assert_eq!(from["files"].as_array().unwrap().len(), 1);
    assert_eq!(from["files"][0]["_id"], first.as_str());
    let paged = alice.ok_get(&format!("channels.images?roomId={rid}&count=1&offset=1")).await;
    assert_eq!((paged["files"][0]["_id"].as_str(), paged["total"].as_u64()), (Some(first.as_str()), Some(2)));
    assert_eq!(paged["count"], 1, "the page size asked for, as Rocket.Chat answers");

    // Refusals: no login, no room id, an unknown room, a room one is not in.
    assert_eq!(server.anon().get(&format!("rooms.images?roomId={rid}")).await.0, StatusCode::UNAUTHORIZED);
    assert_error(&alice.get("rooms.images").await, 400, Some("invalid-params"));
    assert_error(&alice.get(&format!("rooms.images?roomId={rid}&foo=1")).await, 400, Some("invalid-params"));
    assert_eq!(alice.get("rooms.images?roomId=nope").await.0, StatusCode::FORBIDDEN);
    assert_eq!(bob.get(&format!("rooms.images?roomId={rid}")).await.0, StatusCode::FORBIDDEN);
}
