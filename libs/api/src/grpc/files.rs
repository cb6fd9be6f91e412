//! The gRPC adapters of [`FilesService`](crate::FilesService), one RPC per method of
//! `proto/apogee/files/v1/files.proto` (same order). A method added to the trait needs its RPC here
//! and there.
//!
//! Bodies stream both ways in frames of at most [`FRAME_BYTES`]: `Upload` and `SetAvatar` are
//! client streams (a JSON header frame, then the bytes), `Download` a server stream (a JSON
//! header frame with the meta and the part served, then the bytes). HTTP/2 flow control paces
//! the producer, so memory stays bounded by a few frames whatever the file's size.
//!
//! Deadlines: a stream must start within the call deadline and, once an upload's body has ended,
//! be answered within it; a download fails when the service sends nothing for
//! [`RpcOptions::stream_idle`](super::RpcOptions). A dead peer in the middle of a long upload is
//! found by HTTP/2 keep-alive. Only `Download`, `RoomFiles`, `RoomImages` and `Avatar` are retried (reads); an
//! upload's body cannot be replayed, so it is sent once.

use std::pin::Pin;
use std::sync::Arc;

use apogee_proto::common::v1::{JsonCall, JsonReply};
use apogee_proto::files::v1::file_frame::Frame;
use apogee_proto::files::v1::files_server::{Files, FilesServer};
use apogee_proto::files::v1::{AvatarImage, FileFrame};
use apogee_types::{Message, Page, PageRequest, Principal, ServiceError, ServiceResult};
use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Request, Response, Status, Streaming};

use super::{Failure, Retry, RpcClient, ServerOptions, decode_args, reply, serve_call, status_from_error};
use crate::{
    Avatar, AvatarFormat, AvatarOf, ByteStream, ConfirmUpload, Download, FileMeta, FilesService, NewUpload,
    RangeSpec, Served, UserSelector,
};

/// The largest data frame: big enough to keep per-frame overhead small, far below the gRPC
/// message limit.
pub const FRAME_BYTES: usize = 256 * 1024;

/// The header frame of `Upload`.
#[derive(Serialize, Deserialize)]
struct UploadHeader {
    rid: String,
    name: String,
    content_type: Option<String>,
}

/// The header frame of `SetAvatar`.
#[derive(Serialize, Deserialize)]
struct AvatarHeader {
    user: Option<UserSelector>,
    content_type: Option<String>,
}

/// The header frame of `Download`.
#[derive(Serialize, Deserialize)]
struct DownloadHeader {
    meta: FileMeta,
    served: Served,
}

/// Cuts a chunk into data frames of at most [`FRAME_BYTES`] (slices of one buffer, no copy).
fn data_frames(chunk: Bytes) -> impl Iterator<Item = FileFrame> + Send {
    let n = chunk.len().div_ceil(FRAME_BYTES);
    (0..n).map(move |i| FileFrame {
        frame: Some(Frame::Data(chunk.slice(i * FRAME_BYTES..((i + 1) * FRAME_BYTES).min(chunk.len())))),
    })
}

fn header_frame(header: &impl Serialize) -> ServiceResult<FileFrame> {
    let bytes =
        serde_json::to_vec(header).map_err(|e| ServiceError::internal(format!("encode header: {e}")))?;
    Ok(FileFrame { frame: Some(Frame::Header(bytes.into())) })
}

/// Calls the remote files service.
#[derive(Clone, Debug)]
pub struct GrpcFilesClient(pub RpcClient);

impl GrpcFilesClient {
    /// A client stream: the header, then `body` in frames; one attempt (the body is consumed).
    async fn send_body<R: DeserializeOwned>(
        &self,
        rpc: &'static str,
        who: &Principal,
        header: &impl Serialize,
        body: ByteStream,
    ) -> ServiceResult<R> {
        let rpc_client = &self.0;
        let options = rpc_client.options();
        let call = rpc_client.start(rpc, Some(who))?;
        let first = header_frame(header)?;
        // Set when the body has stopped: the reply is then due within the call deadline.
        let ended = Arc::new(tokio::sync::Notify::new());
        let chunks = futures_util::stream::unfold((Some(body), ended.clone()), |(body, ended)| async move {
            let mut body = body?;
            match body.next().await {
                Some(Ok(chunk)) => Some((data_frames(chunk).collect::<Vec<_>>(), (Some(body), ended))),
                // The caller's body broke (its client went away): the stream ends without its
                // end frame, so the service sees a cut-off upload, not a complete short file.
                Some(Err(_)) => {
                    ended.notify_one();
                    None
                }
                None => {
                    ended.notify_one();
                    Some((vec![FileFrame { frame: Some(Frame::End(true)) }], (None, ended)))
                }
            }
        });
        let frames = futures_util::stream::once(async move { first })
            .chain(chunks.flat_map(futures_util::stream::iter));
        let target = rpc_client.pick();
        let mut request = Request::new(frames);
        call.decorate(request.metadata_mut(), options);
        let path = PathAndQuery::from_static(rpc);
        let mut grpc = target.grpc();
        let ready = tokio::time::timeout(options.timeout, grpc.ready()).await;
        let outcome = match ready {
            Err(_) => Err(Status::deadline_exceeded("deadline exceeded")),
            Ok(Err(e)) => Err(Status::unavailable(e.to_string())),
            Ok(Ok(())) => {
                let answer = grpc.client_streaming::<_, FileFrame, JsonReply, _>(
                    request,
                    path,
                    tonic_prost::ProstCodec::default(),
                );
                let late = async {
                    ended.notified().await;
                    tokio::time::sleep(options.timeout).await;
                };
                tokio::select! {
                    answer = answer => answer,
                    () = late => Err(Status::deadline_exceeded("deadline exceeded")),
                }
            }
        };
        match outcome {
            Ok(reply) => serde_json::from_slice(&reply.into_inner().result)
                .map_err(|e| ServiceError::internal(format!("decode {rpc} result: {e}"))),
            Err(status) => Err(rpc_client.failed(target, rpc, &status).into_error()),
        }
    }

    /// A server stream: the header frame within the call deadline (retried elsewhere while the
    /// service is unreachable), then the data frames as a body.
    async fn receive_body(
        &self,
        rpc: &'static str,
        who: Option<&Principal>,
        args: &impl Serialize,
    ) -> ServiceResult<(Bytes, ByteStream)> {
        let rpc_client = &self.0;
        let options = rpc_client.options();
        let args = serde_json::to_vec(args)
            .map_err(|e| ServiceError::internal(format!("encode {rpc} arguments: {e}")))?;
        let call = rpc_client.start(rpc, who)?;
        let mut last = None;
        for attempt in 0..=options.read_retries {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
            }
            let target = rpc_client.pick();
            let mut request = Request::new(JsonCall { args: args.clone() });
            call.decorate(request.metadata_mut(), options);
            let mut grpc = target.grpc();
            let started = tokio::time::timeout(options.timeout, async {
                grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
                let mut frames = grpc
                    .server_streaming::<JsonCall, FileFrame, _>(
                        request,
                        PathAndQuery::from_static(rpc),
                        tonic_prost::ProstCodec::default(),
                    )
                    .await?
                    .into_inner();
                match frames.message().await? {
                    Some(FileFrame { frame: Some(Frame::Header(header)) }) => Ok((header, frames)),
                    _ => Err(Status::internal("the stream did not start with its header")),
                }
            })
            .await
            .unwrap_or_else(|_| Err(Status::deadline_exceeded("deadline exceeded")));
            match started {
                Ok((header, frames)) => {
                    return Ok((header, body_from_client(frames, options.stream_idle, options.service)));
                }
                Err(status) => match rpc_client.failed(target, rpc, &status) {
                    Failure::Final(error) => return Err(error),
                    Failure::Retryable(error) => last = Some(error),
                },
            }
        }
        Err(last.unwrap_or_else(|| super::unavailable(options.service)))
    }
}

/// The data frames of a download as a body; a stall longer than `idle` or a broken stream is
/// an error of the body (the HTTP response is cut short, never silently truncated).
fn body_from_client(
    frames: Streaming<FileFrame>,
    idle: std::time::Duration,
    service: &'static str,
) -> ByteStream {
    Box::pin(futures_util::stream::unfold(Some(frames), move |frames| async move {
        let mut frames = frames?;
        let item = match tokio::time::timeout(idle, frames.message()).await {
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the {service} service stopped sending"),
            )),
            Ok(Err(status)) => Err(std::io::Error::other(super::error_from_status(&status, service).message)),
            Ok(Ok(None)) => return None,
            Ok(Ok(Some(FileFrame { frame: Some(Frame::Data(data)) }))) => Ok(data),
            Ok(Ok(Some(_))) => Err(std::io::Error::other("unexpected frame in a file body")),
        };
        let next = item.is_ok().then_some(frames);
        Some((item, next))
    }))
}

#[async_trait::async_trait]
impl FilesService for GrpcFilesClient {
    async fn upload(&self, who: &Principal, upload: NewUpload) -> ServiceResult<FileMeta> {
        let header = UploadHeader { rid: upload.rid, name: upload.name, content_type: upload.content_type };
        self.send_body(concat!("/apogee.files.v1.Files/", "Upload"), who, &header, upload.body).await
    }

    async fn confirm(
        &self,
        who: &Principal,
        rid: &str,
        file_id: &str,
        confirm: ConfirmUpload,
    ) -> ServiceResult<Message> {
        self.0
            .call(
                concat!("/apogee.files.v1.Files/", "Confirm"),
                Retry::Write,
                Some(who),
                &(rid, file_id, confirm),
            )
            .await
    }

    async fn download(
        &self,
        who: Option<&Principal>,
        file_id: &str,
        range: Option<RangeSpec>,
    ) -> ServiceResult<Download> {
        let (header, body) =
            self.receive_body(concat!("/apogee.files.v1.Files/", "Download"), who, &(file_id, range)).await?;
        let header: DownloadHeader = serde_json::from_slice(&header)
            .map_err(|e| ServiceError::internal(format!("decode download header: {e}")))?;
        Ok(Download { meta: header.meta, served: header.served, body })
    }

    async fn forget_message_files(&self, who: &Principal, message_id: &str) -> ServiceResult<()> {
        self.0
            .call(
                concat!("/apogee.files.v1.Files/", "ForgetMessageFiles"),
                Retry::Write,
                Some(who),
                &(message_id,),
            )
            .await
    }

    async fn room_files(
        &self,
        who: &Principal,
        rid: &str,
        name: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Value>> {
        self.0
            .call(concat!("/apogee.files.v1.Files/", "RoomFiles"), Retry::Read, Some(who), &(rid, name, page))
            .await
    }

    async fn room_images(
        &self,
        who: &Principal,
        rid: &str,
        starting_from: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Value>> {
        self.0
            .call(
                concat!("/apogee.files.v1.Files/", "RoomImages"),
                Retry::Read,
                Some(who),
                &(rid, starting_from, page),
            )
            .await
    }

    async fn url_preview(&self, who: &Principal, rid: &str, url: &str) -> ServiceResult<Value> {
        // A read: fetching the page again on a retry changes nothing.
        self.0
            .call(concat!("/apogee.files.v1.Files/", "UrlPreview"), Retry::Read, Some(who), &(rid, url))
            .await
    }

    async fn set_avatar(
        &self,
        who: &Principal,
        user: Option<UserSelector>,
        content_type: Option<String>,
        body: ByteStream,
    ) -> ServiceResult<()> {
        let header = AvatarHeader { user, content_type };
        self.send_body(concat!("/apogee.files.v1.Files/", "SetAvatar"), who, &header, body).await
    }

    async fn set_avatar_from_url(
        &self,
        who: &Principal,
        user: Option<UserSelector>,
        url: String,
    ) -> ServiceResult<()> {
        // A write: the fetch and the store happen once, never again on a retry.
        self.0
            .call(
                concat!("/apogee.files.v1.Files/", "SetAvatarFromUrl"),
                Retry::Write,
                Some(who),
                &(user, url),
            )
            .await
    }

    async fn set_room_avatar(
        &self,
        who: &Principal,
        rid: &str,
        data_url: Option<String>,
    ) -> ServiceResult<()> {
        self.0
            .call(
                concat!("/apogee.files.v1.Files/", "SetRoomAvatar"),
                Retry::Write,
                Some(who),
                &(rid, data_url),
            )
            .await
    }

    async fn reset_avatar(&self, who: &Principal, user: Option<UserSelector>) -> ServiceResult<()> {
        self.0
            .call(concat!("/apogee.files.v1.Files/", "ResetAvatar"), Retry::Write, Some(who), &(user,))
            .await
    }

    async fn avatar(&self, of: AvatarOf, size: Option<u32>, format: AvatarFormat) -> ServiceResult<Avatar> {
        let image: AvatarImage = self
            .0
            .unary(concat!("/apogee.files.v1.Files/", "Avatar"), Retry::Read, None, &(of, size, format))
            .await?;
        Ok(Avatar { content_type: image.content_type, bytes: image.image, etag: image.etag })
    }
}

/// Serves a local files service over gRPC.
pub struct GrpcFilesServer {
    service: Arc<dyn FilesService>,
    options: ServerOptions,
}

impl GrpcFilesServer {
    pub fn new(service: Arc<dyn FilesService>, options: ServerOptions) -> Self {
        Self { service, options }
    }
}

/// Reads the header frame of a client stream and turns the rest into a body that ends at the
/// end frame. A stream that breaks or ends without it (the caller went away) is a body error,
/// so the service stores nothing.
async fn split_upload<H: DeserializeOwned>(
    mut frames: Streaming<FileFrame>,
) -> Result<(H, ByteStream), Status> {
    let header = match frames.message().await? {
        Some(FileFrame { frame: Some(Frame::Header(header)) }) => header,
        _ => return Err(Status::invalid_argument("the stream must start with its header")),
    };
    let header =
        serde_json::from_slice(&header).map_err(|e| Status::invalid_argument(format!("bad header: {e}")))?;
    let cut_off = |why: String| {
        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("the upload was cut off{why}"))
    };
    let body = futures_util::stream::unfold(Some(frames), move |frames| async move {
        let mut frames = frames?;
        let item = match frames.message().await {
            Ok(Some(FileFrame { frame: Some(Frame::Data(data)) })) => Ok(data),
            Ok(Some(FileFrame { frame: Some(Frame::End(_)) })) => return None,
            Ok(None) => Err(cut_off(String::new())),
            Ok(Some(_)) => Err(std::io::Error::other("unexpected frame in a file body")),
            Err(status) => Err(cut_off(format!(": {}", status.message()))),
        };
        let next = item.is_ok().then_some(frames);
        Some((item, next))
    });
    Ok((header, Box::pin(body)))
}

fn principal(meta: &super::CallMeta) -> Result<Principal, Status> {
    meta.principal.clone().ok_or_else(|| Status::unauthenticated("no principal"))
}

type FrameStream = Pin<Box<dyn Stream<Item = Result<FileFrame, Status>> + Send>>;

#[tonic::async_trait]
impl Files for GrpcFilesServer {
    async fn upload(&self, request: Request<Streaming<FileFrame>>) -> Result<Response<JsonReply>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let who = principal(&meta)?;
        let (header, body): (UploadHeader, _) = split_upload(request.into_inner()).await?;
        let service = self.service.clone();
        let upload =
            NewUpload { rid: header.rid, name: header.name, content_type: header.content_type, body };
        reply(serve_call("files.upload", meta.trace, async move { service.upload(&who, upload).await }).await)
    }

    async fn confirm(&self, request: Request<JsonCall>) -> Result<Response<JsonReply>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let who = principal(&meta)?;
        let (rid, file_id, confirm): (String, String, ConfirmUpload) = decode_args(request.get_ref())?;
        let service = self.service.clone();
        reply(
            serve_call("files.confirm", meta.trace, async move {
                service.confirm(&who, &rid, &file_id, confirm).await
            })
            .await,
        )
    }

    type DownloadStream = FrameStream;

    async fn download(&self, request: Request<JsonCall>) -> Result<Response<FrameStream>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let (file_id, range): (String, Option<RangeSpec>) = decode_args(request.get_ref())?;
        let service = self.service.clone();
        let who = meta.principal;
        let download = serve_call("files.download", meta.trace, async move {
            service.download(who.as_ref(), &file_id, range).await
        })
        .await
        .map_err(|e| status_from_error(&e))?;
        let header = header_frame(&DownloadHeader { meta: download.meta, served: download.served })
            .map_err(|e| status_from_error(&e))?;
        // A read error ends the stream with an error status (tonic sends it as the trailers), so
        // the caller sees a broken body, never a short one.
        let data = download.body.flat_map(|chunk| {
            let frames: Box<dyn Iterator<Item = Result<FileFrame, Status>> + Send> = match chunk {
                Ok(chunk) => Box::new(data_frames(chunk).map(Ok)),
                Err(e) => {
                    Box::new(std::iter::once(Err(Status::unavailable(format!("reading the file: {e}")))))
                }
            };
            futures_util::stream::iter(frames)
        });
        Ok(Response::new(Box::pin(futures_util::stream::once(async move { Ok(header) }).chain(data))))
    }

    async fn forget_message_files(&self, request: Request<JsonCall>) -> Result<Response<JsonReply>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let who = principal(&meta)?;
        let (message_id,): (String,) = decode_args(request.get_ref())?;
        let service = self.service.clone();
        reply(
            serve_call("files.forget_message_files", meta.trace, async move {
                service.forget_message_files(&who, &message_id).await
            })
            .await,
        )
    }

    async fn room_files(&self, request: Request<JsonCall>) -> Result<Response<JsonReply>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let who = principal(&meta)?;
        let (rid, name, page): (String, Option<String>, PageRequest) = decode_args(request.get_ref())?;
        let service = self.service.clone();
        reply(
            serve_call("files.room_files", meta.trace, async move {
                service.room_files(&who, &rid, name, page).await
            })
            .await,
        )
    }

    async fn room_images(&self, request: Request<JsonCall>) -> Result<Response<JsonReply>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let who = principal(&meta)?;
        let (rid, starting_from, page): (String, Option<String>, PageRequest) =
            decode_args(request.get_ref())?;
        let service = self.service.clone();
        reply(
            serve_call("files.room_images", meta.trace, async move {
                service.room_images(&who, &rid, starting_from, page).await
            })
            .await,
        )
    }

    async fn url_preview(&self, request: Request<JsonCall>) -> Result<Response<JsonReply>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let who = principal(&meta)?;
        let (rid, url): (String, String) = decode_args(request.get_ref())?;
        let service = self.service.clone();
        reply(
            serve_call("files.url_preview", meta.trace, async move {
                service.url_preview(&who, &rid, &url).await
            })
            .await,
        )
    }

    async fn set_avatar(
        &self,
        request: Request<Streaming<FileFrame>>,
    ) -> Result<Response<JsonReply>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let who = principal(&meta)?;
        let (header, body): (AvatarHeader, _) = split_upload(request.into_inner()).await?;
        let service = self.service.clone();
        reply(
            serve_call("files.set_avatar", meta.trace, async move {
                service.set_avatar(&who, header.user, header.content_type, body).await
            })
            .await,
        )
    }

    async fn set_avatar_from_url(&self, request: Request<JsonCall>) -> Result<Response<JsonReply>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let who = principal(&meta)?;
        let (user, url): (Option<UserSelector>, String) = decode_args(request.get_ref())?;
        let service = self.service.clone();
        reply(
            serve_call("files.set_avatar_from_url", meta.trace, async move {
                service.set_avatar_from_url(&who, user, url).await
            })
            .await,
        )
    }

    async fn set_room_avatar(&self, request: Request<JsonCall>) -> Result<Response<JsonReply>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let who = principal(&meta)?;
        let (rid, data_url): (String, Option<String>) = decode_args(request.get_ref())?;
        let service = self.service.clone();
        reply(
            serve_call("files.set_room_avatar", meta.trace, async move {
                service.set_room_avatar(&who, &rid, data_url).await
            })
            .await,
        )
    }

    async fn reset_avatar(&self, request: Request<JsonCall>) -> Result<Response<JsonReply>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let who = principal(&meta)?;
        let (user,): (Option<UserSelector>,) = decode_args(request.get_ref())?;
        let service = self.service.clone();
        reply(
            serve_call(
                "files.reset_avatar",
                meta.trace,
                async move { service.reset_avatar(&who, user).await },
            )
            .await,
        )
    }

    async fn avatar(&self, request: Request<JsonCall>) -> Result<Response<AvatarImage>, Status> {
        let meta = self.options.accept(request.metadata())?;
        let (of, size, format): (AvatarOf, Option<u32>, AvatarFormat) = decode_args(request.get_ref())?;
        let service = self.service.clone();
        let avatar =
            serve_call("files.avatar", meta.trace, async move { service.avatar(of, size, format).await })
                .await
                .map_err(|e| status_from_error(&e))?;
        Ok(Response::new(AvatarImage {
            content_type: avatar.content_type,
            etag: avatar.etag,
            image: avatar.bytes,
        }))
    }
}

/// The tonic service serving `service`.
pub fn server(service: Arc<dyn FilesService>, options: ServerOptions) -> FilesServer<GrpcFilesServer> {
    FilesServer::new(GrpcFilesServer::new(service, options))
        .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
        .max_encoding_message_size(super::MAX_MESSAGE_BYTES)
}
