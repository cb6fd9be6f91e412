use apogee_types::{Millis, Page, PageRequest};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::StoreResult;

/// A file someone uploaded (Rocket.Chat's `IUpload`): the record of a blob of the files service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Upload {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    pub size: u64,
    /// The sniffed content type.
    #[serde(rename = "type")]
    pub content_type: String,
    /// The room; `None` for avatars.
    pub rid: Option<String>,
    #[serde(rename = "userId")]
    pub user_id: String,
    /// `false` until confirmed into a message (`rooms.media` uploads are temporary until then).
    pub complete: bool,
    #[serde(rename = "uploadedAt")]
    pub uploaded_at: Millis,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Millis,
    /// The message that carries the file, once confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Everything else Rocket.Chat keeps on an upload (store, extension, identify, description,
    /// typeGroup, the message id, the thumbnail id, …).
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// A change to one upload, applied inside the store's transaction.
pub type UploadMutation = Box<dyn FnOnce(&mut Upload) -> StoreResult<()> + Send>;

/// Upload records (the bytes live in the blob store).
#[async_trait]
pub trait UploadStore: Send + Sync + 'static {
    /// `Conflict` when the id is taken.
    async fn insert_upload(&self, upload: Upload) -> StoreResult<()>;
    async fn upload_by_id(&self, id: &str) -> StoreResult<Option<Upload>>;
    /// Applies `mutation` and returns the result; `NotFound` if absent.
    async fn update_upload(&self, id: &str, mutation: UploadMutation) -> StoreResult<Upload>;
    /// `NotFound` if absent.
    async fn delete_upload(&self, id: &str) -> StoreResult<()>;
    /// The room's complete uploads, newest first; `name` filters by a case-insensitive substring.
    async fn room_uploads(
        &self,
        rid: &str,
        name: Option<String>,
        page: PageRequest,
    ) -> StoreResult<Page<Upload>>;
    /// The room's complete images (`typeGroup` `image`: not thumbnails), newest first, uploaded at
    /// or before `up_to` when given (`rooms.images`).
    async fn room_images(
        &self,
        rid: &str,
        up_to: Option<Millis>,
        page: PageRequest,
    ) -> StoreResult<Page<Upload>>;
    /// Uploads carried by a message (the file and its thumbnail).
    async fn message_uploads(&self, message_id: &str) -> StoreResult<Vec<Upload>>;
    /// Incomplete uploads created before `before` (abandoned temporary uploads).
    async fn stale_uploads(&self, before: Millis, limit: u64) -> StoreResult<Vec<Upload>>;
}
