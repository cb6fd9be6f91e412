//! The files adapters over a real gRPC connection on loopback: bodies stream both ways in
//! bounded frames, ranges and metadata cross intact, errors come back unchanged, and a broken
//! or unreachable peer is an error, never a silent short file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use apogee_api::grpc::files::FRAME_BYTES;
use apogee_api::grpc::{RpcClient, RpcOptions, ServerOptions, TraceContext};
use apogee_api::{
    Avatar, AvatarFormat, AvatarOf, ByteStream, ConfirmUpload, Download, FileMeta, FilesClient, FilesService,
    NewUpload, RangeSpec, Served, UserSelector,
};
use apogee_types::{ErrorKind, Message, Millis, Page, PageRequest, Principal, ServiceError, ServiceResult};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Value, json};

/// A files service keeping bodies in memory, recording what the adapter handed it.
#[derive(Default)]
struct Recorder {
    file: Mutex<Option<(FileMeta, Vec<u8>)>>,
    /// The largest chunk the service received.
    largest_chunk: Mutex<usize>,
    /// The principal and trace id of the last call.
    last_caller: Mutex<Option<(String, Option<String>)>>,
}

impl Recorder {
    fn saw(&self, who: Option<&Principal>) {
        *self.last_caller.lock().unwrap() = Some((
            who.map(|p| p.username.clone()).unwrap_or_default(),
            TraceContext::current().map(|t| t.trace_id),
        ));
    }

    async fn drain(&self, mut body: ByteStream) -> ServiceResult<Vec<u8>> {
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) => {
                    let mut largest = self.largest_chunk.lock().unwrap();
                    *largest = (*largest).max(chunk.len());
                    bytes.extend_from_slice(&chunk);
                }
                Err(e) => {
                    return Err(ServiceError::invalid(
                        "error-invalid-body",
                        format!("The upload failed: {e}"),
                    ));
                }
            }
        }
        Ok(bytes)
    }
}

#[async_trait::async_trait]
impl FilesService for Recorder {
    async fn upload(&self, who: &Principal, upload: NewUpload) -> ServiceResult<FileMeta> {
        self.saw(Some(who));
        if upload.rid == "private" {
            let mut e = ServiceError::permission_required();
            e.details = Some(json!({"rid": "private"}));
            return Err(e);
        }
        let bytes = self.drain(upload.body).await?;
        let meta = FileMeta {
            id: "f1".into(),
            name: upload.name.clone(),
            content_type: upload.content_type.unwrap_or_default(),
            size: bytes.len() as u64,
            uploaded_at: Millis(1_700_000_000_000),
            etag: "\"f1-1\"".into(),
            url: format!("/file-upload/f1/{}", upload.name),
        };
        *self.file.lock().unwrap() = Some((meta.clone(), bytes));
        Ok(meta)
    }

    async fn confirm(
        &self,
        who: &Principal,
        rid: &str,
        file_id: &str,
        confirm: ConfirmUpload,
    ) -> ServiceResult<Message> {
        self.saw(Some(who));
        Ok(serde_json::from_value(json!({
            "_id": "m1", "rid": rid, "msg": confirm.msg, "ts": 1, "_updatedAt": 1,
            "u": {"_id": who.user_id, "username": who.username},
            "tmid": confirm.tmid, "file": {"_id": file_id},
        }))
        .unwrap())
    }

    async fn download(
        &self,
        who: Option<&Principal>,
        file_id: &str,
        range: Option<RangeSpec>,
    ) -> ServiceResult<Download> {
        self.saw(who);
        let Some((meta, bytes)) = self.file.lock().unwrap().clone().filter(|(m, _)| m.id == file_id) else {
            return Err(ServiceError::not_found("invalid-file", "Invalid file"));
        };
        let (served, part) = match range.map(|r| r.resolve(meta.size)) {
            None => (Served::Whole, 0..bytes.len()),
            Some(None) => (Served::Unsatisfiable, 0..0),
            Some(Some(r)) => (Served::Part(r.clone()), r.start as usize..r.end as usize),
        };
        // One chunk far larger than a frame, then small ones, as a blob store might yield.
        let part = Bytes::from(bytes[part].to_vec());
        let cut = part.len().min(3 * FRAME_BYTES + 17);
        let mut chunks = vec![Ok(part.slice(..cut))];
        chunks.extend(part.slice(cut..).chunks(10_000).map(|c| Ok(Bytes::copy_from_slice(c))));
        Ok(Download { meta, served, body: Box::pin(futures_util::stream::iter(chunks)) })
    }

    async fn forget_message_files(&self, who: &Principal, message_id: &str) -> ServiceResult<()> {
        self.saw(Some(who));
        if message_id == "live" { Err(ServiceError::not_allowed("Not allowed")) } else { Ok(()) }
    }

    async fn url_preview(&self, who: &Principal, rid: &str, url: &str) -> ServiceResult<Value> {
        self.saw(Some(who));
        Ok(json!({"url": url, "rid": rid}))
    }

    async fn room_files(
        &self,
        who: &Principal,
        rid: &str,
        name: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Value>> {
        self.saw(Some(who));
        Ok(Page { items: vec![json!({"rid": rid, "name": name})], offset: page.offset, total: 1 })
    }

    async fn room_images(
        &self,
        who: &Principal,
        rid: &str,
        starting_from: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Value>> {
        self.saw(Some(who));
        Ok(Page { items: vec![json!({"rid": rid, "from": starting_from})], offset: page.offset, total: 1 })
    }

    async fn set_avatar(
        &self,
        who: &Principal,
        user: Option<UserSelector>,
        content_type: Option<String>,
        body: ByteStream,
    ) -> ServiceResult<()> {
        self.saw(Some(who));
        let bytes = self.drain(body).await?;
        let name = match user {
            Some(UserSelector::Username(u)) => u,
            _ => who.username.clone(),
        };
        let meta = FileMeta {
            id: format!("avatar-{name}"),
            name,
            content_type: content_type.unwrap_or_default(),
            size: bytes.len() as u64,
            uploaded_at: Millis(0),
            etag: String::new(),
            url: String::new(),
        };
        *self.file.lock().unwrap() = Some((meta, bytes));
        Ok(())
    }

    async fn set_avatar_from_url(
        &self,
        who: &Principal,
        user: Option<UserSelector>,
        url: String,
    ) -> ServiceResult<()> {
        self.saw(Some(who));
        match (user, url.as_str()) {
            (Some(UserSelector::Username(name)), "http://images.example/a.png") if name == "bob" => Ok(()),
            _ => Err(ServiceError::invalid("error-avatar-invalid-url", format!("Invalid avatar URL: {url}"))),
        }
    }

    async fn set_room_avatar(
        &self,
        who: &Principal,
        rid: &str,
        data_url: Option<String>,
    ) -> ServiceResult<()> {
        self.saw(Some(who));
        match (rid, data_url) {
            ("GENERAL", None) => Ok(()),
            _ => Err(ServiceError::not_found("error-room-not-found", "no")),
        }
    }

    async fn reset_avatar(&self, who: &Principal, _user: Option<UserSelector>) -> ServiceResult<()> {
        self.saw(Some(who));
        Err(ServiceError::new(ErrorKind::PermissionDenied, "error-not-allowed", "Not allowed"))
    }

    async fn avatar(&self, of: AvatarOf, size: Option<u32>, format: AvatarFormat) -> ServiceResult<Avatar> {
        self.saw(None);
        let AvatarOf::User(name) = of else {
            return Err(ServiceError::not_found("error-room-not-found", "no"));
        };
        Ok(Avatar {
            content_type: if format == AvatarFormat::Png {
                "image/png".into()
            } else {
                "image/svg+xml".into()
            },
            bytes: Bytes::from(format!("<svg>{name}:{}</svg>", size.unwrap_or(0))),
            etag: "\"av\"".into(),
        })
    }
}

fn alice() -> Principal {
    Principal { user_id: "u1".into(), username: "alice".into(), name: None, roles: vec!["user".into()] }
}

/// Serves `service` on a loopback port with `token`; returns its address.
async fn serve(service: Arc<Recorder>, token: Option<&str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server =
        FilesClient::local(service).grpc_server(ServerOptions { cluster_token: token.map(Into::into) });
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap();
    });
    format!("http://{addr}")
}

fn client(addrs: &[String], token: Option<&str>) -> FilesClient {
    let mut options = RpcOptions::new("files");
    options.cluster_token = token.map(Into::into);
    options.timeout = Duration::from_secs(5);
    FilesClient::grpc(RpcClient::new(addrs, options).unwrap())
}

/// A deterministic body of `len` bytes in chunks of `chunk` bytes.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn body_of(bytes: &[u8], chunk: usize) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> =
        bytes.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Box::pin(futures_util::stream::iter(chunks))
}

async fn collect(mut body: ByteStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        assert!(chunk.len() <= FRAME_BYTES, "a frame of {} bytes", chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[tokio::test]
async fn a_multi_megabyte_upload_streams_through_and_ranges_download() {
    let service = Arc::new(Recorder::default());
    let files = client(&[serve(service.clone(), Some("t0k")).await], Some("t0k"));
    let data = pattern(12 * 1024 * 1024 + 3);
    // Chunks of 1 MiB: the adapter must cut them into frames on the way.
    let trace = TraceContext::new_root();
    let meta = trace
        .clone()
        .scope(files.upload(
            &alice(),
            NewUpload {
                rid: "GENERAL".into(),
                name: "big.bin".into(),
                content_type: Some("application/octet-stream".into()),
                body: body_of(&data, 1024 * 1024),
            },
        ))
        .await
        .unwrap();
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.name, "big.bin");
    assert_eq!(service.file.lock().unwrap().as_ref().unwrap().1, data);
    assert!(*service.largest_chunk.lock().unwrap() <= FRAME_BYTES);
    // The principal and the caller's trace crossed with the stream.
    assert_eq!(*service.last_caller.lock().unwrap(), Some(("alice".into(), Some(trace.trace_id))));

    let whole = files.download(Some(&alice()), "f1", None).await.unwrap();
    assert_eq!((whole.meta.clone(), whole.served.clone()), (meta.clone(), Served::Whole));
    assert_eq!(collect(whole.body).await.unwrap(), data);

    let part = files.download(None, "f1", Some(RangeSpec::Span(1_000_000, 4_999_999))).await.unwrap();
    assert_eq!(part.served, Served::Part(1_000_000..5_000_000));
    assert_eq!(collect(part.body).await.unwrap(), data[1_000_000..5_000_000]);
    assert_eq!(service.last_caller.lock().unwrap().as_ref().unwrap().0, "", "no principal was sent");

    let tail = files.download(None, "f1", Some(RangeSpec::Suffix(10))).await.unwrap();
    assert_eq!(collect(tail.body).await.unwrap(), data[data.len() - 10..]);
    let outside = files.download(None, "f1", Some(RangeSpec::From(data.len() as u64))).await.unwrap();
    assert_eq!(outside.served, Served::Unsatisfiable);
    assert!(collect(outside.body).await.unwrap().is_empty());
}

#[tokio::test]
async fn service_errors_come_back_unchanged() {
    let service = Arc::new(Recorder::default());
    let files = client(&[serve(service.clone(), None).await], None);
    let upload =
        NewUpload { rid: "private".into(), name: "a".into(), content_type: None, body: body_of(&[1; 10], 4) };
    let mut expected = ServiceError::permission_required();
    expected.details = Some(json!({"rid": "private"}));
    assert_eq!(files.upload(&alice(), upload).await.err(), Some(expected));
    let missing = files.download(Some(&alice()), "nope", None).await.err().unwrap();
    assert_eq!(missing, ServiceError::not_found("invalid-file", "Invalid file"));
    let refused = files.reset_avatar(&alice(), None).await.unwrap_err();
    assert_eq!(refused, ServiceError::new(ErrorKind::PermissionDenied, "error-not-allowed", "Not allowed"));
    let no_room = files.avatar(AvatarOf::Room("r".into()), None, AvatarFormat::Original).await.unwrap_err();
    assert_eq!(no_room, ServiceError::not_found("error-room-not-found", "no"));
}

#[tokio::test]
async fn the_small_calls_round_trip() {
    let service = Arc::new(Recorder::default());
    let files = client(&[serve(service.clone(), None).await], None);
    let confirm = ConfirmUpload { msg: "caption".into(), tmid: Some("t1".into()), ..Default::default() };
    let message = files.confirm(&alice(), "GENERAL", "f9", confirm).await.unwrap();
    assert_eq!(
        (message.rid.as_str(), message.msg.as_str(), message.tmid.as_deref()),
        ("GENERAL", "caption", Some("t1"))
    );
    let page = files
        .room_files(&alice(), "GENERAL", Some("x".into()), PageRequest { offset: 2, count: Some(5) })
        .await
        .unwrap();
    assert_eq!(page.items, vec![json!({"rid": "GENERAL", "name": "x"})]);
    assert_eq!(page.offset, 2);
    let images = files
        .room_images(&alice(), "GENERAL", Some("f1".into()), PageRequest { offset: 1, count: None })
        .await
        .unwrap();
    assert_eq!((images.items, images.offset), (vec![json!({"rid": "GENERAL", "from": "f1"})], 1));
    let preview = files.url_preview(&alice(), "GENERAL", "https://example.com/").await.unwrap();
    assert_eq!(preview, json!({"url": "https://example.com/", "rid": "GENERAL"}));
    files.forget_message_files(&alice(), "gone").await.unwrap();
    let refused = files.forget_message_files(&alice(), "live").await.unwrap_err();
    assert_eq!(refused.error_type, "error-not-allowed");
    let avatar = files.avatar(AvatarOf::User("bob".into()), Some(64), AvatarFormat::Png).await.unwrap();
    assert_eq!(avatar.content_type, "image/png");
    assert_eq!(avatar.bytes, Bytes::from_static(b"<svg>bob:64</svg>"));
    assert_eq!(avatar.etag, "\"av\"");
    let image = pattern(300_000);
    files
        .set_avatar(
            &alice(),
            Some(UserSelector::Username("bob".into())),
            Some("image/png".into()),
            body_of(&image, 100_000),
        )
        .await
        .unwrap();
    let stored = service.file.lock().unwrap().clone().unwrap();
    assert_eq!(
        (stored.0.name.as_str(), stored.0.content_type.as_str(), stored.1),
        ("bob", "image/png", image)
    );
    let bob = Some(UserSelector::Username("bob".into()));
    files.set_avatar_from_url(&alice(), bob.clone(), "http://images.example/a.png".into()).await.unwrap();
    let refused = files.set_avatar_from_url(&alice(), bob, "http://elsewhere/".into()).await.unwrap_err();
    assert_eq!(refused.error_type, "error-avatar-invalid-url");
    files.set_room_avatar(&alice(), "GENERAL", None).await.unwrap();
    let missing = files.set_room_avatar(&alice(), "nope", Some("data:x".into())).await.unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
}

#[tokio::test]
async fn a_broken_upload_body_reaches_the_service_as_an_error() {
    let service = Arc::new(Recorder::default());
    let files = client(&[serve(service.clone(), None).await], None);
    let chunks: Vec<std::io::Result<Bytes>> =
        vec![Ok(Bytes::from(pattern(600_000))), Err(std::io::Error::other("client went away"))];
    let upload = NewUpload {
        rid: "GENERAL".into(),
        name: "cut.bin".into(),
        content_type: None,
        body: Box::pin(futures_util::stream::iter(chunks)),
    };
    let e = files.upload(&alice(), upload).await.unwrap_err();
    // The service read a body that broke ("cut off"), not one that ended.
    assert_eq!(e.error_type, "error-invalid-body", "{e:?}");
    assert!(e.message.contains("cut off"), "{e:?}");
    // The stream was reset, not ended: the service either saw a broken body or was cancelled
    // (the server drops a call whose client reset it); it never got a complete short file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(service.file.lock().unwrap().is_none());
    assert!(*service.largest_chunk.lock().unwrap() <= FRAME_BYTES);
    // The connection is still good for the next upload.
    let upload = NewUpload {
        rid: "GENERAL".into(),
        name: "ok".into(),
        content_type: None,
        body: body_of(&[5; 99], 10),
    };
    assert_eq!(files.upload(&alice(), upload).await.unwrap().size, 99);
}

#[tokio::test]
async fn an_unreachable_service_is_unavailable_and_reads_go_to_a_live_replica() {
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let files = client(std::slice::from_ref(&dead), None);
    let upload =
        NewUpload { rid: "GENERAL".into(), name: "a".into(), content_type: None, body: body_of(&[1; 10], 4) };
    let e = files.upload(&alice(), upload).await.unwrap_err();
    assert_eq!((e.kind.http_status(), e.error_type.as_str()), (503, "error-service-unavailable"));
    let e = files.download(None, "f1", None).await.err().unwrap();
    assert_eq!((e.kind.http_status(), e.error_type.as_str()), (503, "error-service-unavailable"));

    // With a dead and a live replica, every read lands (retried on the live one).
    let service = Arc::new(Recorder::default());
    let live = serve(service.clone(), None).await;
    let files = client(&[dead, live], None);
    files
        .upload(
            &alice(),
            NewUpload {
                rid: "GENERAL".into(),
                name: "a".into(),
                content_type: None,
                body: body_of(&[7; 10], 4),
            },
        )
        .await
        .ok();
    *service.file.lock().unwrap() = Some((
        FileMeta {
            id: "f1".into(),
            name: "a".into(),
            content_type: String::new(),
            size: 3,
            uploaded_at: Millis(0),
            etag: String::new(),
            url: String::new(),
        },
        vec![1, 2, 3],
    ));
    for _ in 0..4 {
        let d = files.download(None, "f1", None).await.unwrap();
        assert_eq!(collect(d.body).await.unwrap(), vec![1, 2, 3]);
    }
}

#[tokio::test]
async fn a_wrong_cluster_token_is_refused() {
    let service = Arc::new(Recorder::default());
    let addr = serve(service.clone(), Some("right")).await;
    let e = client(&[addr], Some("wrong")).download(None, "f1", None).await.err().unwrap();
    assert_eq!(e.error_type, "error-cluster-auth");
    assert!(service.last_caller.lock().unwrap().is_none());
}
