//! Uploads and the file REST endpoints: `rooms.media/:rid` + `rooms.mediaConfirm/:rid/:fileId`
//! (8.x), `rooms.upload/:rid` (before 8.0), `*.files`, `users.setAvatar`, `users.resetAvatar`,
//! `users.getAvatar`. Multipart file parts are pumped chunk by chunk into the files service,
//! never collected in memory.

use apogee_api::{ByteStream, ConfirmUpload, FilesClient, NewUpload, UserSelector};
use apogee_types::{Principal, ServiceError, ServiceResult};
use axum::Extension;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, Query, body_str, page};
use crate::reply::ok;
use crate::v1::rooms::{Family, query_params, resolve};

fn files(state: &GatewayState) -> Result<&FilesClient, ApiError> {
    state.files.as_ref().ok_or_else(|| {
        // Distributed mode without APOGEE_FILES_ADDRS: the gateway said so at start.
        ApiError(ServiceError::new(
            apogee_types::ErrorKind::Unavailable,
            "error-service-unavailable",
            "The files service is not configured on this server",
        ))
    })
}

fn bad_multipart(e: axum::extract::multipart::MultipartError) -> ApiError {
    ApiError::typed("error-invalid-body", format!("Invalid multipart body: {}", e.body_text()))
}

/// Where the file part of a multipart upload goes.
enum Target<'a> {
    /// A room upload; answers `{_id, url}`.
    Room { files: &'a FilesClient, who: &'a Principal, rid: &'a str },
    /// The avatar of the caller or of the user named by the parts before the image.
    Avatar { files: &'a FilesClient, who: &'a Principal },
}

impl Target<'_> {
    async fn store(
        &self,
        file_name: Option<String>,
        content_type: Option<String>,
        fields: &Map<String, Value>,
        body: ByteStream,
    ) -> ServiceResult<Value> {
        match self {
            Target::Room { files, who, rid } => {
                let upload = NewUpload {
                    rid: (*rid).to_owned(),
                    name: file_name.unwrap_or_default(),
                    content_type,
                    body,
                };
                let meta = files.upload(who, upload).await?;
                Ok(json!({"_id": meta.id, "url": meta.url}))
            }
            Target::Avatar { files, who } => {
                files.set_avatar(who, user_selector(fields), content_type, body).await?;
                Ok(Value::Bool(true))
            }
        }
    }
}

/// Stores the field's chunks through `target` while reading them from the request: the part is
/// read only as fast as it is stored.
async fn pump(
    mut field: axum::extract::multipart::Field<'_>,
    target: &Target<'_>,
    fields: &Map<String, Value>,
) -> ServiceResult<Value> {
    let file_name = field.file_name().map(str::to_owned);
    let content_type = field.content_type().map(str::to_owned);
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let body: ByteStream =
        Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
        ));
    let feed = async move {
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    // The consumer stopped (it refused the file): stop reading.
                    if tx.send(Ok(chunk)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e.body_text()))).await;
                    break;
                }
            }
        }
    };
    let (result, ()) = tokio::join!(target.store(file_name, content_type, fields, body), feed);
    result
}

/// Largest text part of an upload form (captions, descriptions, ids): upload routes have no
/// body limit, so every part but the file is bounded here.
const MAX_TEXT_PART: usize = 64 * 1024;

async fn read_text(mut field: axum::extract::multipart::Field<'_>) -> Result<String, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
        if bytes.len() + chunk.len() > MAX_TEXT_PART {
            return Err(ApiError::typed("error-invalid-body", "A form field is too large"));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes).map_err(|_| ApiError::typed("error-invalid-body", "A form field is not UTF-8"))
}

/// Reads a multipart upload: the file part named `file_field` goes to `target`, every other
/// part is returned as a text field.
async fn read_upload(
    mut multipart: Multipart,
    file_field: &str,
    target: Target<'_>,
) -> Result<(Option<Value>, Map<String, Value>), ApiError> {
    let mut fields = Map::new();
    let mut stored = None;
    while let Some(field) = multipart.next_field().await.map_err(bad_multipart)? {
        let name = field.name().unwrap_or_default().to_owned();
        if field.file_name().is_some() && stored.is_some() {
            return Err(ApiError::failure("Just 1 file is allowed"));
        }
        if name == file_field && stored.is_none() {
            stored = Some(pump(field, &target, &fields).await?);
        } else {
            let text = read_text(field).await?;
            fields.insert(name, Value::String(text));
        }
    }
    Ok((stored, fields))
}

fn message_reply(state: &GatewayState, message: &apogee_types::Message) -> Response {
    let _ = state;
    ok!("message" => apogee_rc::message(message, apogee_rc::Dates::Iso))
}

/// `POST rooms.media/:rid`: stores a temporary upload, `{file: {_id, url}}`.
pub(crate) async fn media(
    State(state): State<GatewayState>,
    Path(rid): Path<String>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let files = files(&state)?;
    let multipart = multipart.map_err(bad_multipart_request)?;
    let who = &caller.principal;
    let (stored, _fields) = read_upload(multipart, "file", Target::Room { files, who, rid: &rid }).await?;
    let file = stored.ok_or_else(|| ApiError::typed("invalid-field", ""))?;
    Ok(ok!("file" => file))
}

fn confirm_of(mut body: Map<String, Value>) -> ConfirmUpload {
    let take = |body: &mut Map<String, Value>, key: &str| match body.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    ConfirmUpload {
        msg: take(&mut body, "msg").unwrap_or_default(),
        description: take(&mut body, "description"),
        tmid: take(&mut body, "tmid"),
        file_name: take(&mut body, "fileName"),
        extra: body,
    }
}

/// `POST rooms.mediaConfirm/:rid/:fileId`: the file message.
pub(crate) async fn media_confirm(
    State(state): State<GatewayState>,
    Path((rid, file_id)): Path<(String, String)>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let files = files(&state)?;
    let message = files.confirm(&caller.principal, &rid, &file_id, confirm_of(body)).await?;
    Ok(message_reply(&state, &message))
}

/// `POST rooms.upload/:rid` (before 8.0): upload and message in one request.
pub(crate) async fn upload(
    State(state): State<GatewayState>,
    Path(rid): Path<String>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let files = files(&state)?;
    let multipart = multipart.map_err(bad_multipart_request)?;
    let who = &caller.principal;
    let (stored, fields) = read_upload(multipart, "file", Target::Room { files, who, rid: &rid }).await?;
    let file_id = stored.and_then(|v| v["_id"].as_str().map(str::to_owned));
    let file_id = file_id.ok_or_else(|| ApiError::typed("invalid-field", ""))?;
    let message = files.confirm(who, &rid, &file_id, confirm_of(fields)).await?;
    Ok(message_reply(&state, &message))
}

/// `GET channels.files` / `groups.files` / `im.files`.
pub(crate) async fn room_files(
    State(state): State<GatewayState>,
    Extension(f): Extension<Family>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let files = files(&state)?;
    let room = resolve(&state, f, &caller.principal, &query_params(&query)).await?;
    let page = page(&state, &query).await?;
    // `query={"name":{"$regex":"…"}}` as the web client sends it; a plain `name` too.
    let name = query
        .get("query")
        .and_then(|q| serde_json::from_str::<Value>(q).ok())
        .and_then(|q| match &q["name"] {
            Value::String(s) => Some(s.clone()),
            other => other["$regex"].as_str().map(str::to_owned),
        })
        .or_else(|| query.get("name").cloned())
        .filter(|n| !n.is_empty());
    let found = files.room_files(&caller.principal, &room.id, name, page).await?;
    let count = found.items.len();
    Ok(ok!("files" => found.items, "count" => count, "offset" => found.offset, "total" => found.total))
}

fn user_selector(body: &Map<String, Value>) -> Option<UserSelector> {
    body_str(body, "userId").filter(|s| !s.is_empty()).map(|s| UserSelector::Id(s.to_owned())).or_else(|| {
        body_str(body, "username").filter(|s| !s.is_empty()).map(|s| UserSelector::Username(s.to_owned()))
    })
}

/// `POST users.setAvatar`: multipart `image` (with optional `userId`/`username` parts before
/// it), or JSON `{avatarUrl}`, which this server refuses: it fetches no remote URLs.
pub(crate) async fn set_avatar(State(state): State<GatewayState>, caller: Caller, req: Request) -> Response {
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        return match Body::from_request(req, &state).await {
            Ok(Body(body)) if body.get("avatarUrl").is_some_and(|v| !v.is_null()) => ApiError::typed(
                "error-avatar-url-handling",
                "Setting an avatar from a URL is not supported by this server; upload the image instead",
            )
            .into_response(),
            Ok(_) => ApiError::invalid_params("must have required property 'avatarUrl'").into_response(),
            Err(rejection) => rejection,
        };
    }
    match Multipart::from_request(req, &state).await {
        Ok(multipart) => set_avatar_multipart(&state, &caller.principal, multipart).await.into_response(),
        Err(e) => bad_multipart_request(e).into_response(),
    }
}

fn bad_multipart_request(e: MultipartRejection) -> ApiError {
    ApiError::typed("error-invalid-body", format!("Invalid multipart body: {}", e.body_text()))
}

async fn set_avatar_multipart(state: &GatewayState, who: &Principal, multipart: Multipart) -> ApiResult {
    let files = files(state)?;
    let (stored, _) = read_upload(multipart, "image", Target::Avatar { files, who }).await?;
    stored.ok_or_else(|| ApiError::typed("error-invalid-field", "Invalid field: image"))?;
    Ok(ok!())
}

/// `POST users.resetAvatar`.
pub(crate) async fn reset_avatar(
    State(state): State<GatewayState>,
    caller: Caller,
    Body(body): Body,
) -> ApiResult {
    let files = files(&state)?;
    files.reset_avatar(&caller.principal, user_selector(&body)).await?;
    Ok(ok!())
}

/// `GET users.getAvatar?userId=|username=`: a redirect to `/avatar/<username>`.
pub(crate) async fn get_avatar(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    let _ = caller;
    let params = query_params(&query);
    let selector = user_selector(&params)
        .ok_or_else(|| ApiError::invalid_params("must have required property 'userId' or 'username'"))?;
    let user = state
        .auth
        .find_user(selector)
        .await?
        .ok_or_else(|| ApiError::typed("error-invalid-user", "Invalid user"))?;
    let location = format!("{}/avatar/{}", state.cfg.site_url.trim_end_matches('/'), user.username);
    let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    Ok(response)
}
