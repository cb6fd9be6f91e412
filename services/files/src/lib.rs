//! The files service: uploads into rooms, file messages, downloads with Rocket.Chat's access
//! rules, thumbnails, previews and avatars. Records live in the store (`uploads`), bytes in a
//! [`BlobStore`](apogee_blob::BlobStore): blob keys are random ids, never client names.
//!
//! Bodies stream from the gateway to the blob store; only the first [`sniff::SNIFF_LEN`] bytes
//! are held to decide the real content type before anything is stored. Images up to
//! [`images::MAX_DECODE_BYTES`] are read back once, on confirmation, to derive dimensions,
//! a thumbnail and the blurred preview on the blocking pool.

mod avatars;
mod fetch;
mod images;
mod initials;
mod preview;
mod sniff;

use std::sync::Arc;

use apogee_api::events::{BusEvent, FILES_PRUNED_SUBJECT, FilesPruned, RoomEvent};
use apogee_api::{
    AuthClient, Avatar, AvatarFormat, AvatarOf, ByteStream, ConfirmUpload, Download, FileMeta, FilesService,
    MessagingClient, NewMessage, NewUpload, RangeSpec, RoomSelector, Served, UserSelector,
};
use apogee_blob::{BlobError, BlobRef};
use apogee_bus::{Bus, SubjectPattern};
use apogee_store::{StoreError, StoreRef, Upload};
use apogee_types::{
    ErrorKind, Message, Millis, Page, PageRequest, Principal, RoomType, ServiceError, ServiceResult,
    random_id,
};
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};

/// Temporary uploads never confirmed are removed after this long (Rocket.Chat: 24 h).
const TEMPORARY_FOR: i64 = 24 * 60 * 60 * 1000;

/// The files service.
pub struct Files {
    store: StoreRef,
    blobs: BlobRef,
    auth: AuthClient,
    messaging: MessagingClient,
    /// `store` of the upload records: `FileSystem` or `AmazonS3`, as Rocket.Chat names them.
    store_name: String,
    /// Whether avatar URLs may point at loopback and private addresses (only under `TEST_MODE`,
    /// so tests can serve images from a local HTTP server).
    allow_private_urls: std::sync::atomic::AtomicBool,
}

fn store_error(e: StoreError) -> ServiceError {
    match e {
        StoreError::NotFound { .. } => ServiceError::not_found("invalid-file", "Invalid file"),
        StoreError::Rejected(m) => ServiceError::failure(m),
        other => ServiceError::new(ErrorKind::Unavailable, "error-store", other.to_string()),
    }
}

fn blob_error(e: BlobError) -> ServiceError {
    match e {
        BlobError::TooLarge { limit } => ServiceError::invalid(
            "error-file-too-large",
            format!("File exceeds allowed size of {limit} bytes"),
        ),
        BlobError::NotFound => ServiceError::not_found("invalid-file", "Invalid file"),
        BlobError::Body(m) => ServiceError::invalid("error-invalid-body", format!("The upload failed: {m}")),
        BlobError::InvalidKey => ServiceError::internal("invalid blob key"),
        BlobError::Backend(m) => ServiceError::new(ErrorKind::Unavailable, "error-blob-store", m),
    }
}

/// `/file-upload/<id>/<name>` with the name percent-encoded as `encodeURI` does.
fn file_url(id: &str, name: &str) -> String {
    format!("/file-upload/{id}/{}", encode_uri(name))
}

fn encode_uri(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'();/?:@&=+$,#".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn meta(upload: &Upload) -> FileMeta {
    FileMeta {
        id: upload.id.clone(),
        name: upload.name.clone(),
        content_type: upload.content_type.clone(),
        size: upload.size,
        uploaded_at: upload.uploaded_at,
        etag: format!("\"{}-{}\"", upload.id, upload.updated_at.0),
        url: file_url(&upload.id, &upload.name),
    }
}

/// Rocket.Chat's `IUpload` as `*.files` lists it.
fn render_upload(upload: &Upload) -> Value {
    let mut doc = upload.extra.clone();
    let url = file_url(&upload.id, &upload.name);
    doc.insert("_id".into(), json!(upload.id));
    doc.insert("name".into(), json!(upload.name));
    doc.insert("size".into(), json!(upload.size));
    doc.insert("type".into(), json!(upload.content_type));
    doc.insert("rid".into(), json!(upload.rid));
    doc.insert("userId".into(), json!(upload.user_id));
    doc.insert("complete".into(), json!(upload.complete));
    doc.insert("uploading".into(), json!(false));
    doc.insert("progress".into(), json!(1));
    doc.insert("path".into(), json!(url));
    doc.insert("url".into(), json!(url));
    doc.insert("uploadedAt".into(), json!(apogee_rc::iso(upload.uploaded_at)));
    doc.insert("_updatedAt".into(), json!(apogee_rc::iso(upload.updated_at)));
    Value::Object(doc)
}

/// Takes the first `n` bytes of a body (fewer if it ends) and gives back a body that still
/// yields everything.
async fn peek(mut body: ByteStream, n: usize) -> ServiceResult<(Bytes, ByteStream)> {
    let mut head = BytesMut::new();
    let mut ended = false;
    while head.len() < n {
        match body.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(blob_error(BlobError::Body(e.to_string()))),
            None => {
                ended = true;
                break;
            }
        }
    }
    let head = head.freeze();
    let first = futures_util::stream::iter([Ok(head.clone())]);
    // A finished stream must not be polled again.
    let replay: ByteStream = if ended { Box::pin(first) } else { Box::pin(first.chain(body)) };
    Ok((head, replay))
}

impl Files {
    pub fn new(
        store: StoreRef,
        blobs: BlobRef,
        store_name: &str,
        auth: AuthClient,
        messaging: MessagingClient,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            blobs,
            auth,
            messaging,
            store_name: store_name.to_owned(),
            allow_private_urls: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Lets `users.setAvatar {avatarUrl}` fetch from loopback and private addresses. Only for
    /// `TEST_MODE`: otherwise a client could make the server read its own network.
    pub fn allow_private_urls(&self, allow: bool) {
        self.allow_private_urls.store(allow, std::sync::atomic::Ordering::Relaxed);
    }

    /// Follows message deletions on the bus (a deleted message takes its files along) and
    /// sweeps temporary uploads never confirmed. Best effort, as every bus consumer: a file
    /// whose deletion event is lost stays until removed by hand.
    pub async fn run(self: &Arc<Self>, bus: Bus) -> ServiceResult<()> {
        if let Err(e) = avatars::seed_bot_avatar(self).await {
            tracing::warn!(error = %e, "rocket.cat's avatar not stored");
        }
        let pattern = SubjectPattern::new("apogee.room.*.deleted")
            .map_err(|e| ServiceError::internal(e.to_string()))?;
        let mut sub = bus.subscribe(&pattern).await.map_err(|e| ServiceError::internal(e.to_string()))?;
        let files = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(event) = sub.next().await {
                let Some(files) = files.upgrade() else { break };
                if let Ok(RoomEvent::MessageDeleted { message_id }) = RoomEvent::decode(&event.payload)
                    && let Err(e) = files.remove_message_files(&message_id).await
                {
                    tracing::warn!(%message_id, error = %e, "could not remove the files of a deleted message");
                }
            }
        });
        let pruned =
            SubjectPattern::new(FILES_PRUNED_SUBJECT).map_err(|e| ServiceError::internal(e.to_string()))?;
        let mut pruned = bus.subscribe(&pruned).await.map_err(|e| ServiceError::internal(e.to_string()))?;
        let files = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(event) = pruned.next().await {
                let Some(files) = files.upgrade() else { break };
                if let Ok(FilesPruned { message_id }) = FilesPruned::decode(&event.payload)
                    && let Err(e) = files.remove_message_files(&message_id).await
                {
                    tracing::warn!(%message_id, error = %e, "could not remove the pruned files of a message");
                }
            }
        });
        let files = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
            loop {
                tick.tick().await;
                let Some(files) = files.upgrade() else { break };
                files.sweep_temporary().await;
            }
        });
        Ok(())
    }

    async fn remove_message_files(&self, message_id: &str) -> ServiceResult<()> {
        for upload in self.store.message_uploads(message_id).await.map_err(store_error)? {
            self.remove_upload(&upload).await?;
        }
        Ok(())
    }

    async fn remove_upload(&self, upload: &Upload) -> ServiceResult<()> {
        self.blobs.delete(&blob_key(&upload.id)).await.map_err(blob_error)?;
        match self.store.delete_upload(&upload.id).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn sweep_temporary(&self) {
        let before = Millis(Millis::now().0 - TEMPORARY_FOR);
        match self.store.stale_uploads(before, 500).await {
            Ok(stale) => {
                for upload in stale {
                    if let Err(e) = self.remove_upload(&upload).await {
                        tracing::warn!(id = %upload.id, error = %e, "could not remove a stale upload");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list stale uploads"),
        }
    }

    /// A room the caller may access, else Rocket.Chat's 403 `unauthorized`.
    async fn accessible_room(&self, who: &Principal, rid: &str) -> ServiceResult<apogee_types::Room> {
        match self.messaging.room_info(who, RoomSelector::id(rid)).await {
            Ok(room) => Ok(room),
            Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) => Err(e),
            Err(_) => Err(ServiceError::permission_required()),
        }
    }

    async fn size_limit(&self) -> u64 {
        let max = self.auth.setting_i64("FileUpload_MaxFileSize", 104_857_600).await;
        u64::try_from(max).unwrap_or(u64::MAX)
    }

    async fn check_type(&self, content_type: &str) -> ServiceResult<()> {
        let white = self.auth.setting_string("FileUpload_MediaTypeWhiteList").await.unwrap_or_default();
        let black = self.auth.setting_string("FileUpload_MediaTypeBlackList").await.unwrap_or_default();
        if sniff::allowed(content_type, &white, &black) {
            Ok(())
        } else {
            Err(ServiceError::invalid("error-invalid-file-type", "File type is not accepted."))
        }
    }

    /// Streams a body into a new blob, refusing it by content type before anything is stored.
    /// Returns the blob's id, the sniffed type and the size.
    async fn store_body(
        &self,
        body: ByteStream,
        claimed: Option<&str>,
        name: &str,
        check: impl AsyncFnOnce(&str) -> ServiceResult<()>,
    ) -> ServiceResult<(String, String, u64)> {
        let (head, body) = peek(body, sniff::SNIFF_LEN).await?;
        let content_type = sniff::content_type(&head, claimed, name);
        check(&content_type).await?;
        let id = random_id();
        let limit = self.size_limit().await;
        let size = self.blobs.put(&blob_key(&id), body, limit).await.map_err(blob_error)?;
        Ok((id, content_type, size))
    }

    /// Dimensions, preview and thumbnail of an image upload, if it is one we decode.
    async fn derive_image(&self, upload: &Upload) -> Option<images::Derived> {
        let source = images::Source::of(&upload.content_type)?;
        if upload.size > source.max_bytes() {
            return None;
        }
        let thumbs = if self.auth.setting_bool("Message_Attachments_Thumbnails_Enabled", true).await {
            let w = self.auth.setting_i64("Message_Attachments_Thumbnails_Width", 480).await;
            let h = self.auth.setting_i64("Message_Attachments_Thumbnails_Height", 360).await;
            Some((u32::try_from(w).unwrap_or(480).max(1), u32::try_from(h).unwrap_or(360).max(1)))
        } else {
            None
        };
        let blob = self.blobs.get(&blob_key(&upload.id), None).await.ok()?;
        let bytes = apogee_blob::collect(blob.body, source.max_bytes() as usize).await.ok()?;
        match tokio::task::spawn_blocking(move || images::derive_from(&bytes, source, thumbs)).await {
            Ok(Ok(derived)) => Some(derived),
            Ok(Err(e)) => {
                tracing::info!(id = %upload.id, error = %e, "image not decoded");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "image task failed");
                None
            }
        }
    }

    /// Stores a thumbnail as its own upload (`typeGroup: thumb`), as Rocket.Chat does.
    async fn store_thumbnail(
        &self,
        original: &Upload,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> ServiceResult<Upload> {
        let id = random_id();
        let size = bytes.len() as u64;
        self.blobs.put(&blob_key(&id), apogee_blob::once(bytes), u64::MAX).await.map_err(blob_error)?;
        let now = Millis::now();
        let mut extra = Map::new();
        extra.insert("store".into(), json!(format!("{}:Uploads", self.store_name)));
        extra.insert("typeGroup".into(), json!("thumb"));
        extra.insert("originalFileId".into(), json!(original.id));
        let thumb = Upload {
            id,
            name: format!("thumb-{}", original.name),
            size,
            content_type: content_type.to_owned(),
            // Reachable through the original's room; never listed among the room's files.
            rid: None,
            user_id: original.user_id.clone(),
            complete: true,
            uploaded_at: now,
            updated_at: now,
            message_id: None,
            extra,
        };
        self.store.insert_upload(thumb.clone()).await.map_err(store_error)?;
        Ok(thumb)
    }

    /// The room a file belongs to: its own, or its original's for a thumbnail.
    async fn room_of(&self, upload: &Upload) -> ServiceResult<Option<String>> {
        if upload.rid.is_some() {
            return Ok(upload.rid.clone());
        }
        match upload.extra.get("originalFileId").and_then(Value::as_str) {
            Some(original) => {
                Ok(self.store.upload_by_id(original).await.map_err(store_error)?.and_then(|o| o.rid))
            }
            None => Ok(None),
        }
    }
}

fn blob_key(id: &str) -> String {
    format!("uploads/{id}")
}

fn forbidden() -> ServiceError {
    ServiceError::new(ErrorKind::PermissionDenied, "error-forbidden", "Forbidden")
}

#[async_trait]
impl FilesService for Files {
    async fn upload(&self, who: &Principal, upload: NewUpload) -> ServiceResult<FileMeta> {
        let room = self.accessible_room(who, &upload.rid).await?;
        if !self.auth.setting_bool("FileUpload_Enabled", true).await {
            return Err(ServiceError::invalid("error-file-upload-disabled", "File upload is disabled"));
        }
        if room.t == RoomType::Direct && !self.auth.setting_bool("FileUpload_Enabled_Direct", true).await {
            return Err(ServiceError::invalid(
                "error-direct-message-file-upload-not-allowed",
                "File sharing not allowed in direct messages",
            ));
        }
        let name = sniff::sanitize_name(&upload.name);
        let claimed = upload.content_type.clone();
        let (id, content_type, size) = self
            .store_body(upload.body, claimed.as_deref(), &name, async |sniffed: &str| {
                self.check_type(sniffed).await?;
                // Rocket.Chat checks the claim; so do we, besides the bytes.
                match claimed.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
                    Some(c) => self.check_type(&c.to_ascii_lowercase()).await,
                    None => Ok(()),
                }
            })
            .await?;
        let now = Millis::now();
        let mut extra = Map::new();
        extra.insert("store".into(), json!(format!("{}:Uploads", self.store_name)));
        extra.insert("extension".into(), json!(sniff::extension(&name)));
        extra.insert("typeGroup".into(), json!(content_type.split('/').next().unwrap_or_default()));
        extra.insert("expiresAt".into(), json!(apogee_rc::iso(Millis(now.0 + TEMPORARY_FOR))));
        let record = Upload {
            id: id.clone(),
            name,
            size,
            content_type,
            rid: Some(room.id.clone()),
            user_id: who.user_id.clone(),
            complete: false,
            uploaded_at: now,
            updated_at: now,
            message_id: None,
            extra,
        };
        if let Err(e) = self.store.insert_upload(record.clone()).await {
            let _ = self.blobs.delete(&blob_key(&id)).await;
            return Err(store_error(e));
        }
        Ok(meta(&record))
    }

    async fn confirm(
        &self,
        who: &Principal,
        rid: &str,
        file_id: &str,
        confirm: ConfirmUpload,
    ) -> ServiceResult<Message> {
        self.accessible_room(who, rid).await?;
        let invalid = || ServiceError::invalid("invalid-file", "Invalid file");
        let mut upload = self.store.upload_by_id(file_id).await.map_err(store_error)?.ok_or_else(invalid)?;
        if upload.complete || upload.user_id != who.user_id || upload.rid.as_deref() != Some(rid) {
            return Err(invalid());
        }
        if let Some(name) = confirm.file_name.as_deref().filter(|n| !n.trim().is_empty()) {
            upload.name = sniff::sanitize_name(name);
            upload.extra.insert("extension".into(), json!(sniff::extension(&upload.name)));
        }
        let description = confirm.description.clone().filter(|d| !d.is_empty());
        let url = file_url(&upload.id, &upload.name);
        let mut files = vec![json!({
            "_id": upload.id, "name": upload.name, "type": upload.content_type, "size": upload.size,
            "format": "",
        })];
        let mut attachment = Map::new();
        attachment.insert("title".into(), json!(upload.name));
        attachment.insert("type".into(), json!("file"));
        if let Some(d) = &description {
            attachment.insert("description".into(), json!(d));
        }
        attachment.insert("title_link".into(), json!(url));
        attachment.insert("title_link_download".into(), json!(true));
        let mut thumb = None;
        let kind = upload.content_type.split('/').next().unwrap_or_default().to_owned();
        match kind.as_str() {
            "image" => {
                attachment.insert("image_url".into(), json!(url));
                attachment.insert("image_type".into(), json!(upload.content_type));
                attachment.insert("image_size".into(), json!(upload.size));
                if let Some(derived) = self.derive_image(&upload).await {
                    // As Rocket.Chat's image library names it (`svg`, not `svg+xml`).
                    let format =
                        upload.content_type.trim_start_matches("image/").trim_end_matches("+xml").to_owned();
                    upload.extra.insert(
                        "identify".into(),
                        json!({"format": format, "size": {"width": derived.width, "height": derived.height}}),
                    );
                    files[0]["format"] = json!(format);
                    attachment.insert(
                        "image_dimensions".into(),
                        json!({"width": derived.width, "height": derived.height}),
                    );
                    attachment.insert("image_preview".into(), json!(derived.preview));
                    if let Some((bytes, ty, w, h)) = derived.thumbnail {
                        let t = self.store_thumbnail(&upload, bytes, ty).await?;
                        attachment.insert("image_url".into(), json!(file_url(&t.id, &upload.name)));
                        attachment.insert("image_type".into(), json!(t.content_type));
                        attachment.insert("image_dimensions".into(), json!({"width": w, "height": h}));
                        files.push(json!({
                            "_id": t.id, "name": t.name, "type": t.content_type, "size": t.size,
                            "format": ty.trim_start_matches("image/"),
                        }));
                        thumb = Some(t);
                    }
                }
            }
            "audio" | "video" => {
                attachment.insert(format!("{kind}_url"), json!(url));
                attachment.insert(format!("{kind}_type"), json!(upload.content_type));
                attachment.insert(format!("{kind}_size"), json!(upload.size));
            }
            _ => {
                attachment.insert("format".into(), json!(sniff::extension(&upload.name).to_uppercase()));
                attachment.insert("size".into(), json!(upload.size));
            }
        }

        let mut extra = confirm.extra;
        for key in [
            "_id",
            "rid",
            "msg",
            "tmid",
            "ts",
            "u",
            "t",
            "file",
            "files",
            "attachments",
            "fileName",
            "fileContent",
            "description",
        ] {
            extra.remove(key);
        }
        let tshow = matches!(extra.remove("tshow"), Some(Value::Bool(true)));
        if let Some(Value::String(fields)) = extra.get("customFields")
            && let Ok(parsed) = serde_json::from_str::<Value>(fields)
        {
            extra.insert("customFields".into(), parsed);
        }
        let groupable = match extra.remove("groupable") {
            Some(Value::Bool(g)) => g,
            _ => false,
        };
        extra.insert("file".into(), files[0].clone());
        extra.insert("files".into(), Value::Array(files));
        extra.insert("attachments".into(), json!([Value::Object(attachment)]));
        let new = NewMessage {
            id: None,
            rid: rid.to_owned(),
            msg: confirm.msg,
            tmid: confirm.tmid.filter(|t| !t.is_empty()),
            tshow,
            groupable: Some(groupable),
            extra,
        };
        let message = match self.messaging.send_message(who, new).await {
            Ok(m) => m,
            Err(e) => {
                if let Some(t) = thumb {
                    let _ = self.remove_upload(&t).await;
                }
                return Err(e);
            }
        };
        let mid = message.id.clone();
        let identify = upload.extra.get("identify").cloned();
        let (name, extension) = (upload.name.clone(), upload.extra.get("extension").cloned());
        self.store
            .update_upload(
                &upload.id,
                Box::new(move |u| {
                    u.complete = true;
                    u.name = name;
                    u.updated_at = Millis::now();
                    u.message_id = Some(mid);
                    u.extra.remove("expiresAt");
                    if let Some(d) = description {
                        u.extra.insert("description".into(), json!(d));
                    }
                    if let Some(i) = identify {
                        u.extra.insert("identify".into(), i);
                    }
                    if let Some(e) = extension {
                        u.extra.insert("extension".into(), e);
                    }
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        if let Some(t) = thumb {
            let mid = message.id.clone();
            self.store
                .update_upload(
                    &t.id,
                    Box::new(move |u| {
                        u.message_id = Some(mid);
                        Ok(())
                    }),
                )
                .await
                .map_err(store_error)?;
        }
        Ok(message)
    }

    async fn download(
        &self,
        who: Option<&Principal>,
        file_id: &str,
        range: Option<RangeSpec>,
    ) -> ServiceResult<Download> {
        let not_found = || ServiceError::not_found("error-file-not-found", "File not found");
        let upload = self.store.upload_by_id(file_id).await.map_err(store_error)?.ok_or_else(not_found)?;
        let rid = self.room_of(&upload).await?.ok_or_else(not_found)?;
        if !upload.complete && who.is_none_or(|w| w.user_id != upload.user_id) {
            return Err(not_found());
        }
        if self.auth.setting_bool("FileUpload_ProtectFiles", true).await {
            let who = who.ok_or_else(forbidden)?;
            // Members only wins over "whoever may open the room" when both are on.
            if self.auth.setting_bool("FileUpload_Restrict_to_room_members", true).await {
                if self.messaging.subscription(who, &rid).await?.is_none() {
                    return Err(forbidden());
                }
            } else if self.auth.setting_bool("FileUpload_Restrict_to_users_who_can_access_room", false).await
            {
                self.accessible_room(who, &rid).await.map_err(|e| match e.kind {
                    ErrorKind::PermissionDenied => forbidden(),
                    _ => e,
                })?;
            }
        }
        let served = match range.map(|r| r.resolve(upload.size)) {
            None => Served::Whole,
            Some(Some(r)) => Served::Part(r),
            Some(None) => Served::Unsatisfiable,
        };
        let body = match &served {
            Served::Unsatisfiable => apogee_blob::once(Bytes::new()),
            Served::Whole => self.blobs.get(&blob_key(&upload.id), None).await.map_err(blob_error)?.body,
            Served::Part(r) => {
                self.blobs.get(&blob_key(&upload.id), Some(r.clone())).await.map_err(blob_error)?.body
            }
        };
        Ok(Download { meta: meta(&upload), served, body })
    }

    async fn forget_message_files(&self, who: &Principal, message_id: &str) -> ServiceResult<()> {
        // Only the files of a message that no longer exists: nobody may drop a live message's
        // files this way.
        match self.messaging.get_message(who, message_id).await {
            // `Message_ShowDeletedStatus` leaves a `t: rm` placeholder without the files.
            Ok(m) if m.t.as_deref() == Some("rm") => self.remove_message_files(message_id).await,
            Ok(_) => Err(ServiceError::not_allowed("Not allowed")),
            Err(e) if e.error_type == "error-invalid-message" => self.remove_message_files(message_id).await,
            Err(e) => Err(e),
        }
    }

    async fn room_files(
        &self,
        who: &Principal,
        rid: &str,
        name: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Value>> {
        self.accessible_room(who, rid).await?;
        let found = self.store.room_uploads(rid, name, page).await.map_err(store_error)?;
        let ids: Vec<String> = found.items.iter().map(|u| u.user_id.clone()).collect();
        let users = self.auth.users_by_ids(&ids).await?;
        let items = found
            .items
            .iter()
            .map(|u| {
                let mut doc = render_upload(u);
                if let Some(user) = users.iter().find(|x| x.id == u.user_id) {
                    doc["user"] = json!({"_id": user.id, "username": user.username, "name": user.name});
                }
                doc
            })
            .collect();
        Ok(Page { items, offset: found.offset, total: found.total })
    }

    async fn room_images(
        &self,
        who: &Principal,
        rid: &str,
        starting_from: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Value>> {
        self.accessible_room(who, rid).await?;
        // Only a file of this room anchors the list (another room's id must not reveal it).
        let first = match starting_from {
            Some(id) => self.store.upload_by_id(&id).await.map_err(store_error)?.filter(|u| {
                // Only a confirmed image of this room (not a thumbnail or a temporary upload)
                // anchors the list, and another room's id must not reveal its file.
                u.rid.as_deref() == Some(rid)
                    && u.complete
                    && u.extra.get("typeGroup") == Some(&json!("image"))
            }),
            None => None,
        };
        let mut found = self
            .store
            .room_images(rid, first.as_ref().map(|u| u.uploaded_at), page)
            .await
            .map_err(store_error)?;
        if let Some(first) = first
            && !found.items.iter().any(|u| u.id == first.id)
        {
            found.items.insert(0, first);
        }
        Ok(Page {
            items: found.items.iter().map(render_upload).collect(),
            offset: found.offset,
            total: found.total,
        })
    }

    async fn set_avatar(
        &self,
        who: &Principal,
        user: Option<UserSelector>,
        content_type: Option<String>,
        body: ByteStream,
    ) -> ServiceResult<()> {
        avatars::set(self, who, user, content_type, body).await
    }

    async fn set_avatar_from_url(
        &self,
        who: &Principal,
        user: Option<UserSelector>,
        url: String,
    ) -> ServiceResult<()> {
        avatars::set_from_url(self, who, user, &url).await
    }

    async fn url_preview(&self, who: &Principal, rid: &str, url: &str) -> ServiceResult<Value> {
        // Rocket.Chat's `canAccessRoomIdAsync`: an unknown room is refused the same way.
        match self.messaging.room_info(who, RoomSelector::id(rid)).await {
            Ok(_) => {}
            Err(e) if matches!(e.kind, ErrorKind::Unavailable | ErrorKind::Internal) => return Err(e),
            Err(_) => return Err(ServiceError::invalid("error-not-allowed", "Not allowed")),
        }
        let setting =
            |id: &'static str| async move { self.auth.setting_string(id).await.unwrap_or_default() };
        let language = setting("Language").await;
        let rules = preview::Rules {
            ignored_hosts: setting("API_EmbedIgnoredHosts").await,
            safe_ports: setting("API_EmbedSafePorts").await,
            user_agent: setting("API_Embed_UserAgent").await,
            language: if language.is_empty() { "en".into() } else { language },
            allow_private: self.allow_private_urls.load(std::sync::atomic::Ordering::Relaxed),
        };
        Ok(preview::preview(url, &rules).await)
    }

    async fn reset_avatar(&self, who: &Principal, user: Option<UserSelector>) -> ServiceResult<()> {
        avatars::reset(self, who, user).await
    }

    async fn set_room_avatar(
        &self,
        who: &Principal,
        rid: &str,
        data_url: Option<String>,
    ) -> ServiceResult<()> {
        avatars::set_room(self, who, rid, data_url).await
    }

    async fn avatar(&self, of: AvatarOf, size: Option<u32>, format: AvatarFormat) -> ServiceResult<Avatar> {
        avatars::get(self, of, size, format).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_like_encode_uri() {
        assert_eq!(file_url("abc", "my cat (1).png"), "/file-upload/abc/my%20cat%20(1).png");
        assert_eq!(file_url("abc", "日.txt"), "/file-upload/abc/%E6%97%A5.txt");
    }
}
