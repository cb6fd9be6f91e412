use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use apogee_types::{Message, Millis, Page, PageRequest, Principal, ServiceResult};
use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::UserSelector;

/// A file body crossing the seam: chunks as they arrive, never the whole file at once.
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// An uploaded file body with what the client said about it.
pub struct NewUpload {
    pub rid: String,
    /// The client's file name (sanitised by the service).
    pub name: String,
    /// The client's claimed content type; the service sniffs the real one.
    pub content_type: Option<String>,
    pub body: ByteStream,
}

/// `rooms.mediaConfirm` / the fields of `rooms.upload`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfirmUpload {
    /// The caption.
    pub msg: String,
    pub description: Option<String>,
    pub tmid: Option<String>,
    /// A new name for the file.
    pub file_name: Option<String>,
    /// Other message fields the client sent (`tshow`, `customFields`, …).
    pub extra: Map<String, Value>,
}

/// What the service knows about a stored file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub uploaded_at: Millis,
    /// Stable for the content: clients revalidate with `If-None-Match`.
    pub etag: String,
    /// `/file-upload/<id>/<urlencoded name>`.
    pub url: String,
}

/// Which bytes of a file to serve (an HTTP `Range: bytes=` spec, not yet resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RangeSpec {
    /// `a-b`, inclusive.
    Span(u64, u64),
    /// `a-`.
    From(u64),
    /// `-n`: the last n bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// The bytes this spec names in a file of `size` bytes, `None` if unsatisfiable.
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        let range = match self {
            RangeSpec::Span(a, b) if a <= b => a..(b.saturating_add(1)).min(size),
            RangeSpec::Span(..) => return None,
            RangeSpec::From(a) => a..size,
            RangeSpec::Suffix(0) => return None,
            RangeSpec::Suffix(n) => size.saturating_sub(n)..size,
        };
        (range.start < size).then_some(range)
    }
}

/// How much of the file a download carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Served {
    Whole,
    Part(Range<u64>),
    /// The range asked for is outside the file (HTTP 416); the body is empty.
    Unsatisfiable,
}

pub struct Download {
    pub meta: FileMeta,
    pub served: Served,
    pub body: ByteStream,
}

/// An avatar image, small enough to hold in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Avatar {
    pub content_type: String,
    pub bytes: Bytes,
    pub etag: String,
}

/// Whose avatar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AvatarOf {
    User(String),
    Room(String),
}

/// The image format a client asks an avatar in (`?format=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AvatarFormat {
    /// As stored (or SVG for generated initials).
    Original,
    Png,
    Jpeg,
}

/// Uploads, downloads and avatars.
#[async_trait]
pub trait FilesService: Send + Sync + 'static {
    /// Stores a file in a room the caller may post to, as a temporary upload (`rooms.media`).
    async fn upload(&self, who: &Principal, upload: NewUpload) -> ServiceResult<FileMeta>;
    /// Turns a temporary upload into a file message (`rooms.mediaConfirm`, `rooms.upload`).
    async fn confirm(
        &self,
        who: &Principal,
        rid: &str,
        file_id: &str,
        confirm: ConfirmUpload,
    ) -> ServiceResult<Message>;
    /// A file's bytes, for the caller (`None` when the request carried no valid login),
    /// under the `FileUpload_ProtectFiles` / `FileUpload_Restrict_to_room_members` rules.
    async fn download(
        &self,
        who: Option<&Principal>,
        file_id: &str,
        range: Option<RangeSpec>,
    ) -> ServiceResult<Download>;
    /// Removes the files of a message that is gone (`chat.delete`, `deleteMessage`) before the
    /// deletion is answered, as Rocket.Chat does; refused while the message still exists. The
    /// service's bus consumer does the same, later, for deletions made elsewhere.
    async fn forget_message_files(&self, who: &Principal, message_id: &str) -> ServiceResult<()>;
    /// A room's files, newest first, as Rocket.Chat's `IUpload` documents (`*.files`).
    async fn room_files(
        &self,
        who: &Principal,
        rid: &str,
        name: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Value>>;
    /// A room's images, newest first (`rooms.images`); with `starting_from`, those uploaded at or
    /// before that file, which leads the list even when the page would not hold it.
    async fn room_images(
        &self,
        who: &Principal,
        rid: &str,
        starting_from: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Value>>;

    /// A preview of `url` (`chat.getURLPreview`) for someone who may read room `rid`: the
    /// server fetches the page under the embed settings and returns Rocket.Chat's
    /// `{url, meta, headers?, ignoreParse}`; a page it cannot fetch previews with empty `meta`.
    async fn url_preview(&self, who: &Principal, rid: &str, url: &str) -> ServiceResult<Value>;

    /// Sets a user's avatar from an uploaded image (`users.setAvatar`): the caller's own, or
    /// another user's with `edit-other-user-avatar`.
    async fn set_avatar(
        &self,
        who: &Principal,
        user: Option<UserSelector>,
        content_type: Option<String>,
        body: ByteStream,
    ) -> ServiceResult<()>;
    /// Sets a user's avatar from an image the server fetches from `url` (`users.setAvatar
    /// {avatarUrl}`), under the same rights as [`FilesService::set_avatar`].
    async fn set_avatar_from_url(
        &self,
        who: &Principal,
        user: Option<UserSelector>,
        url: String,
    ) -> ServiceResult<()>;
    /// Sets a room's avatar from a `data:` URL, or removes it with `None`
    /// (`rooms.saveRoomSettings {roomAvatar}`); needs `edit-room`.
    async fn set_room_avatar(
        &self,
        who: &Principal,
        rid: &str,
        data_url: Option<String>,
    ) -> ServiceResult<()>;
    /// Back to the generated avatar (`users.resetAvatar`).
    async fn reset_avatar(&self, who: &Principal, user: Option<UserSelector>) -> ServiceResult<()>;
    /// The avatar image, at most `size` pixels square (`/avatar/...`).
    async fn avatar(&self, of: AvatarOf, size: Option<u32>, format: AvatarFormat) -> ServiceResult<Avatar>;
}

/// The handle to the files service.
#[derive(Clone)]
pub struct FilesClient(Arc<dyn FilesService>);

impl FilesClient {
    pub fn local(service: Arc<dyn FilesService>) -> Self {
        Self(service)
    }

    /// A handle calling a remote files service over gRPC, bodies streamed both ways.
    pub fn grpc(client: crate::grpc::RpcClient) -> Self {
        Self(Arc::new(crate::grpc::files::GrpcFilesClient(client)))
    }

    /// The gRPC service exposing the service behind this handle.
    pub fn grpc_server(
        &self,
        options: crate::grpc::ServerOptions,
    ) -> apogee_proto::files::v1::files_server::FilesServer<crate::grpc::files::GrpcFilesServer> {
        crate::grpc::files::server(self.0.clone(), options)
    }
}

impl std::ops::Deref for FilesClient {
    type Target = dyn FilesService;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

#[cfg(test)]
mod tests {
    use super::RangeSpec;

    #[test]
    fn ranges_resolve_as_http_says() {
        assert_eq!(RangeSpec::Span(0, 9).resolve(10), Some(0..10));
        assert_eq!(RangeSpec::Span(2, 100).resolve(10), Some(2..10));
        assert_eq!(RangeSpec::Span(10, 12).resolve(10), None);
        assert_eq!(RangeSpec::Span(5, 4).resolve(10), None);
        assert_eq!(RangeSpec::From(7).resolve(10), Some(7..10));
        assert_eq!(RangeSpec::Suffix(3).resolve(10), Some(7..10));
        assert_eq!(RangeSpec::Suffix(30).resolve(10), Some(0..10));
        assert_eq!(RangeSpec::Suffix(0).resolve(10), None);
        assert_eq!(RangeSpec::From(0).resolve(0), None);
    }
}
