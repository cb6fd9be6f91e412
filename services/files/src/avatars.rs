//! Avatars: an uploaded image per user (blob `avatars/<hex user id>`, record
//! `avatar-<user id>`) and per room (blob `avatars/room/<etag>`, record `room-avatar-<rid>`,
//! the room's `avatarETag`), else a generated initials SVG. Only images we decode are stored:
//! they are re-encoded when served resized, and an SVG is never served as an avatar.

use apogee_api::{Avatar, AvatarFormat, AvatarOf, ByteStream, RoomChange, UserSelector};
use apogee_store::{StoreError, Upload};
use apogee_types::{ErrorKind, Millis, Principal, ServiceError, ServiceResult, random_id};
use base64::Engine;
use bytes::Bytes;
use image::ImageFormat;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{Files, blob_error, fetch, images, sniff, store_error};

/// Largest avatar side we render (clients ask for up to a few hundred pixels).
const MAX_SIZE: u32 = 1024;

fn record_id(user_id: &str) -> String {
    format!("avatar-{user_id}")
}

fn blob_key(user_id: &str) -> String {
    let hex: String = user_id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("avatars/{hex}")
}

fn room_record_id(rid: &str) -> String {
    format!("room-avatar-{rid}")
}

/// Each room upload has its own key (its ETag, a random id): a new avatar never overwrites the
/// bytes the room's current `avatarETag` names.
fn room_blob_key(etag: &str) -> String {
    format!("avatars/room/{etag}")
}

/// The user whose avatar changes. Another user's needs `edit-other-user-avatar`; without it
/// Rocket.Chat refuses differently per route, so the caller says how (`refusal`).
async fn target(
    files: &Files,
    who: &Principal,
    user: Option<UserSelector>,
    refusal: fn() -> ServiceError,
) -> ServiceResult<String> {
    let user_id = match user {
        None => who.user_id.clone(),
        Some(selector) => {
            files
                .auth
                .find_user(selector)
                .await?
                .ok_or_else(|| ServiceError::invalid("error-invalid-user", "Invalid user"))?
                .id
        }
    };
    if user_id == who.user_id {
        if !files.auth.setting_bool("Accounts_AllowUserAvatarChange", true).await {
            return Err(ServiceError::invalid("error-not-allowed", "Not allowed"));
        }
    } else if !files.auth.roles_have_permission(&who.roles, "edit-other-user-avatar").await? {
        return Err(refusal());
    }
    Ok(user_id)
}

pub(crate) async fn set(
    files: &Files,
    who: &Principal,
    user: Option<UserSelector>,
    content_type: Option<String>,
    body: ByteStream,
) -> ServiceResult<()> {
    let user_id =
        target(files, who, user, || ServiceError::invalid("error-not-allowed", "Not allowed")).await?;
    store_user(files, &user_id, content_type, body).await
}

/// `users.setAvatar {avatarUrl}`: the image is fetched by the server (see [`fetch`]).
pub(crate) async fn set_from_url(
    files: &Files,
    who: &Principal,
    user: Option<UserSelector>,
    url: &str,
) -> ServiceResult<()> {
    let user_id = target(files, who, user, ServiceError::unauthorized).await?;
    let username = match files.auth.find_user(UserSelector::Id(user_id.clone())).await? {
        Some(u) => u.username,
        None => user_id.clone(),
    };
    let limit = files.size_limit().await;
    let allow_private = files.allow_private_urls.load(std::sync::atomic::Ordering::Relaxed);
    let (content_type, body) = fetch::image(url, &username, allow_private, limit).await?;
    store_user(files, &user_id, Some(content_type), body).await
}

/// The first bytes decide the type; only images we decode are kept.
async fn image_body(content_type: Option<&str>, body: ByteStream) -> ServiceResult<(String, ByteStream)> {
    let (head, body) = crate::peek(body, sniff::SNIFF_LEN).await?;
    let sniffed = sniff::content_type(&head, content_type, "");
    if images::format_of(&sniffed).is_none() {
        return Err(ServiceError::invalid("error-invalid-file-type", "File type is not accepted."));
    }
    Ok((sniffed, body))
}

async fn store_user(
    files: &Files,
    user_id: &str,
    content_type: Option<String>,
    body: ByteStream,
) -> ServiceResult<()> {
    let user_id = user_id.to_owned();
    let (sniffed, body) = image_body(content_type.as_deref(), body).await?;
    let limit = files.size_limit().await;
    let size = files.blobs.put(&blob_key(&user_id), body, limit).await.map_err(blob_error)?;
    let now = Millis::now();
    let mut extra = Map::new();
    extra.insert("store".into(), json!(format!("{}:Avatars", files.store_name)));
    extra.insert("typeGroup".into(), json!("avatar"));
    let mut record = Upload {
        id: record_id(&user_id),
        name: user_id.clone(),
        size,
        content_type: sniffed,
        rid: None,
        user_id: user_id.clone(),
        complete: true,
        uploaded_at: now,
        updated_at: now,
        message_id: None,
        extra,
    };
    let etag = random_id();
    record.extra.insert("etag".into(), json!(etag));
    match files.store.delete_upload(&record.id).await {
        Ok(()) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(store_error(e)),
    }
    files.store.insert_upload(record).await.map_err(store_error)?;
    // The image is durable; now every client may learn that it changed.
    files.auth.set_avatar_etag(&user_id, Some(etag)).await
}

/// Rocket.Chat starts `rocket.cat` with a stored avatar (so it has an `avatarETag`); ours is its
/// generated picture, stored once as a PNG. Skipped when the bot is missing or has one.
pub(crate) async fn seed_bot_avatar(files: &Files) -> ServiceResult<()> {
    const BOT: &str = "rocket.cat";
    let Some(bot) = files.auth.find_user(UserSelector::Id(BOT.to_owned())).await? else { return Ok(()) };
    if bot.avatar_etag.is_some() {
        return Ok(());
    }
    let (initial, color) = initial_and_color(&bot.username);
    let letter = initial.chars().next().unwrap_or('?');
    let png =
        tokio::task::spawn_blocking(move || crate::initials::raster(letter, color, 200, ImageFormat::Png))
            .await
            .map_err(|e| ServiceError::internal(e.to_string()))?
            .map_err(ServiceError::internal)?;
    let body: ByteStream = Box::pin(futures_util::stream::iter([Ok(Bytes::from(png))]));
    store_user(files, BOT, Some("image/png".into()), body).await
}

/// `data:<type>;base64,<bytes>` as clients send a room avatar.
fn parse_data_url(data_url: &str) -> Option<(String, Vec<u8>)> {
    let rest = data_url.trim().strip_prefix("data:")?;
    let (head, data) = rest.split_once(',')?;
    let content_type = head.strip_suffix(";base64")?.split(';').next()?.trim().to_ascii_lowercase();
    let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).ok()?;
    Some((content_type, bytes))
}

/// `rooms.saveRoomSettings {roomAvatar}`: a data URL sets the room's avatar, `None` removes it.
/// The messaging service checks `edit-room`, stores the new `avatarETag` and announces the
/// change; the bytes are stored first under their own key, and removed if that is refused.
pub(crate) async fn set_room(
    files: &Files,
    who: &Principal,
    rid: &str,
    data_url: Option<String>,
) -> ServiceResult<()> {
    let Some(data_url) = data_url.filter(|d| !d.is_empty()) else {
        files.messaging.save_room_settings(who, rid, vec![RoomChange::Avatar(None)]).await?;
        return remove_room(files, rid).await;
    };
    let (claimed, bytes) = parse_data_url(&data_url).ok_or_else(|| {
        ServiceError::invalid("error-invalid-image", "Invalid image: a base64 data URL is expected")
    })?;
    let limit = files.size_limit().await;
    let size = bytes.len() as u64;
    if size > limit {
        return Err(blob_error(apogee_blob::BlobError::TooLarge { limit }));
    }
    let (content_type, body) = image_body(Some(&claimed), apogee_blob::once(bytes)).await?;
    let etag = random_id();
    files.blobs.put(&room_blob_key(&etag), body, limit).await.map_err(blob_error)?;
    let change = vec![RoomChange::Avatar(Some(etag.clone()))];
    if let Err(e) = files.messaging.save_room_settings(who, rid, change).await {
        let _ = files.blobs.delete(&room_blob_key(&etag)).await;
        return Err(e);
    }
    remove_room(files, rid).await?;
    let now = Millis::now();
    let mut extra = Map::new();
    extra.insert("store".into(), json!(format!("{}:Avatars", files.store_name)));
    extra.insert("typeGroup".into(), json!("avatar"));
    extra.insert("etag".into(), json!(etag));
    let record = Upload {
        id: room_record_id(rid),
        name: rid.to_owned(),
        size,
        content_type,
        rid: None,
        user_id: who.user_id.clone(),
        complete: true,
        uploaded_at: now,
        updated_at: now,
        message_id: None,
        extra,
    };
    files.store.insert_upload(record).await.map_err(store_error)
}

/// Removes a room's stored avatar (record and bytes), if it has one.
async fn remove_room(files: &Files, rid: &str) -> ServiceResult<()> {
    let Some(old) = files.store.upload_by_id(&room_record_id(rid)).await.map_err(store_error)? else {
        return Ok(());
    };
    if let Some(etag) = old.extra.get("etag").and_then(Value::as_str) {
        files.blobs.delete(&room_blob_key(etag)).await.map_err(blob_error)?;
    }
    match files.store.delete_upload(&old.id).await {
        Ok(()) | Err(StoreError::NotFound { .. }) => Ok(()),
        Err(e) => Err(store_error(e)),
    }
}

pub(crate) async fn reset(files: &Files, who: &Principal, user: Option<UserSelector>) -> ServiceResult<()> {
    let user_id = target(files, who, user, || {
        ServiceError::invalid("error-not-allowed", "Reset avatar is not allowed")
    })
    .await?;
    files.blobs.delete(&blob_key(&user_id)).await.map_err(blob_error)?;
    match files.store.delete_upload(&record_id(&user_id)).await {
        Ok(()) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(store_error(e)),
    }
    files.auth.set_avatar_etag(&user_id, None).await
}

pub(crate) async fn get(
    files: &Files,
    of: AvatarOf,
    size: Option<u32>,
    format: AvatarFormat,
) -> ServiceResult<Avatar> {
    let size = size.map(|s| s.clamp(1, MAX_SIZE));
    let name = match of {
        // `/avatar/@name` is always the generated picture (as Rocket.Chat).
        AvatarOf::User(username) if username.starts_with('@') => username[1..].to_owned(),
        AvatarOf::User(username) => {
            let mut user = files.auth.find_user(UserSelector::Username(username.clone())).await?;
            // Clients may append an extension (`alice.jpg`); `john.doe` is still a username.
            if user.is_none()
                && let Some((stem, ext)) = username.rsplit_once('.')
                && ["jpg", "jpeg", "png", "gif", "webp", "svg"].contains(&ext.to_ascii_lowercase().as_str())
            {
                user = files.auth.find_user(UserSelector::Username(stem.to_owned())).await?;
            }
            if let Some(user) = &user
                && let Some(record) =
                    files.store.upload_by_id(&record_id(&user.id)).await.map_err(store_error)?
                && let Some(avatar) = uploaded(files, record, &blob_key(&user.id), size, format).await?
            {
                return Ok(avatar);
            }
            user.map_or(username, |u| u.username)
        }
        AvatarOf::Room(rid) => {
            // Rooms belong to messaging (the files role's store has none).
            let mut room = files.messaging.find_room(&rid).await?;
            // A discussion without its own avatar shows its parent's (as Rocket.Chat).
            for _ in 0..4 {
                let Some(r) = &room else { break };
                if r.avatar_etag.is_some()
                    && let Some(record) =
                        files.store.upload_by_id(&room_record_id(&r.id)).await.map_err(store_error)?
                    && let Some(etag) = record.extra.get("etag").and_then(Value::as_str).map(str::to_owned)
                    && let Some(avatar) = uploaded(files, record, &room_blob_key(&etag), size, format).await?
                {
                    return Ok(avatar);
                }
                match &r.prid {
                    Some(parent) if r.avatar_etag.is_none() => {
                        let parent = files.messaging.find_room(parent).await?;
                        if parent.is_none() {
                            break;
                        }
                        room = parent;
                    }
                    _ => break,
                }
            }
            room.and_then(|r| r.fname.or(r.name)).unwrap_or(rid)
        }
    };
    let size = size.unwrap_or(200);
    let (bytes, content_type) = match format {
        AvatarFormat::Original => (Bytes::from(initials_svg(&name, size)), "image/svg+xml"),
        AvatarFormat::Png | AvatarFormat::Jpeg => {
            let (initial, color) = initial_and_color(&name);
            let letter = initial.chars().next().unwrap_or('?');
            let (out, content_type) = if format == AvatarFormat::Png {
                (ImageFormat::Png, "image/png")
            } else {
                (ImageFormat::Jpeg, "image/jpeg")
            };
            let raster =
                tokio::task::spawn_blocking(move || crate::initials::raster(letter, color, size, out))
                    .await
                    .map_err(|e| ServiceError::new(ErrorKind::Internal, "", e.to_string()))?
                    .map_err(|e| ServiceError::new(ErrorKind::Internal, "", e))?;
            (Bytes::from(raster), content_type)
        }
    };
    let etag = format!("\"{}\"", &hex(&Sha256::digest(&bytes))[..16]);
    Ok(Avatar { content_type: content_type.into(), bytes, etag })
}

async fn uploaded(
    files: &Files,
    record: Upload,
    key: &str,
    size: Option<u32>,
    format: AvatarFormat,
) -> ServiceResult<Option<Avatar>> {
    let blob = match files.blobs.get(key, None).await {
        Ok(blob) => blob,
        Err(apogee_blob::BlobError::NotFound) => return Ok(None),
        Err(e) => return Err(blob_error(e)),
    };
    let limit = usize::try_from(images::MAX_DECODE_BYTES).unwrap_or(usize::MAX);
    let bytes = apogee_blob::collect(blob.body, limit).await.map_err(blob_error)?;
    let etag = format!("\"{}-{}-{:?}-{:?}\"", record.id, record.updated_at.0, size, format);
    let source = images::format_of(&record.content_type);
    let out = match (format, source) {
        (AvatarFormat::Png, _) => Some((ImageFormat::Png, "image/png")),
        (AvatarFormat::Jpeg, _) => Some((ImageFormat::Jpeg, "image/jpeg")),
        (AvatarFormat::Original, Some(f)) if size.is_some() => {
            Some(if f == ImageFormat::Jpeg { (f, "image/jpeg") } else { (ImageFormat::Png, "image/png") })
        }
        _ => None,
    };
    let (Some((out, out_type)), Some(source)) = (out, source) else {
        return Ok(Some(Avatar { content_type: record.content_type, bytes: Bytes::from(bytes), etag }));
    };
    let resized = tokio::task::spawn_blocking(move || images::resize_avatar(&bytes, source, size, out))
        .await
        .map_err(|e| ServiceError::new(ErrorKind::Internal, "", e.to_string()))?
        .map_err(|e| ServiceError::invalid("error-invalid-image", e))?;
    Ok(Some(Avatar { content_type: out_type.into(), bytes: Bytes::from(resized), etag }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Rocket.Chat's colour palette for generated avatars.
const COLORS: [&str; 19] = [
    "#F44336", "#E91E63", "#9C27B0", "#673AB7", "#3F51B5", "#2196F3", "#03A9F4", "#00BCD4", "#009688",
    "#4CAF50", "#8BC34A", "#CDDC39", "#FFC107", "#FF9800", "#FF5722", "#795548", "#9E9E9E", "#607D8B",
    "#455A64",
];

fn escape_xml(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&apos;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The name's first letter or digit (upper case) and its colour, from the name.
fn initial_and_color(name: &str) -> (String, &'static str) {
    let initial: String = name
        .chars()
        .find(|c| c.is_alphanumeric())
        .map_or_else(|| "?".to_owned(), |c| c.to_uppercase().collect());
    let sum: usize = name.chars().map(|c| c as usize).sum();
    (initial, COLORS[sum % COLORS.len()])
}

/// A square with the name's first letter, coloured by the name.
pub(crate) fn initials_svg(name: &str, size: u32) -> String {
    let (initial, color) = initial_and_color(name);
    let font = size * 5 / 8;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" pointer-events=\"none\" width=\"{size}\" height=\"{size}\">\
<rect width=\"100%\" height=\"100%\" fill=\"{color}\"/>\
<text x=\"50%\" y=\"50%\" dy=\"0.36em\" text-anchor=\"middle\" fill=\"#ffffff\" \
font-family=\"Helvetica, Arial, sans-serif\" font-size=\"{font}\">{}</text></svg>",
        escape_xml(&initial)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initials() {
        let svg = initials_svg("alice", 64);
        assert!(svg.contains(">A</text>") && svg.contains("width=\"64\""), "{svg}");
        assert!(initials_svg("<script>", 10).contains(">S</text>"));
        assert!(initials_svg("", 10).contains(">?</text>"));
        assert_ne!(initials_svg("alice", 10), initials_svg("bob", 10));
        assert_eq!(blob_key("rocket.cat"), "avatars/726f636b65742e636174");
    }

    #[test]
    fn data_urls() {
        let (t, b) = parse_data_url("data:image/PNG;base64,aGk=").unwrap_or_default();
        assert_eq!((t.as_str(), b.as_slice()), ("image/png", b"hi".as_slice()));
        assert!(parse_data_url("data:image/png,hi").is_none(), "only base64");
        assert!(parse_data_url("http://x/a.png").is_none());
        assert!(parse_data_url("data:image/png;base64,***").is_none());
    }
}
