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

use crate::limiter::Count;

use crate::GatewayState;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Body, Caller, ClientIp, Query, body_str, page};
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

/// How much of a refused form is still read: a client that is still sending gets the answer,
/// not a connection reset (answering before the body is read makes the server close it).
const DRAIN_LIMIT: u64 = 128 * 1024 * 1024;

/// Reads and drops a part, up to `limit` bytes; returns how many were read.
async fn drain_field(mut field: axum::extract::multipart::Field<'_>, limit: u64) -> u64 {
    let mut read = 0;
    while read <= limit {
        match field.chunk().await {
            Ok(Some(chunk)) => read += chunk.len() as u64,
            _ => break,
        }
    }
    read
}

/// Reads and drops the parts left in a form, up to `limit` bytes in all.
async fn drain_rest(multipart: &mut Multipart, mut limit: u64) {
    while limit > 0 {
        match multipart.next_field().await {
            Ok(Some(field)) => limit = limit.saturating_sub(drain_field(field, limit).await),
            _ => break,
        }
    }
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
        // A second file, or a file under another part name (`invalid-field`): Rocket.Chat
        // refuses the form.
        let refusal = match (field.file_name().is_some(), stored.is_some()) {
            (true, true) => Some(ApiError::failure("Just 1 file is allowed")),
            (true, false) if name != file_field => Some(ApiError::typed("invalid-field", "")),
            _ => None,
        };
        if let Some(refusal) = refusal {
            let left = DRAIN_LIMIT.saturating_sub(drain_field(field, DRAIN_LIMIT).await);
            drain_rest(&mut multipart, left).await;
            return Err(refusal);
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

/// Rocket.Chat's REST rate limiter on one upload route: `API_Enable_Rate_Limiter_Limit_Calls_Default`
/// calls per `API_Enable_Rate_Limiter_Limit_Time_Default` ms per client address and route,
/// unless `API_Enable_Rate_Limiter` is off, the caller has `api-bypass-rate-limit`, or under
/// `TEST_MODE` (where Rocket.Chat adds no limits to its routes). Runs before the body is read,
/// so a refused upload stores nothing. `Some(count)` when the call was counted.
async fn rate_limit(
    state: &GatewayState,
    route: &str,
    ip: Option<&str>,
    who: &Principal,
) -> Result<Option<Count>, Response> {
    if state.cfg.test_mode || !state.auth.setting_bool("API_Enable_Rate_Limiter", true).await {
        return Ok(None);
    }
    let calls = state.auth.setting_i64("API_Enable_Rate_Limiter_Limit_Calls_Default", 10).await;
    let ms = state.auth.setting_i64("API_Enable_Rate_Limiter_Limit_Time_Default", 60_000).await;
    let (Ok(calls), Ok(ms)) = (u32::try_from(calls), u64::try_from(ms)) else {
        return Ok(None);
    };
    if calls == 0 || ms == 0 {
        return Ok(None);
    }
    if state.auth.roles_have_permission(&who.roles, "api-bypass-rate-limit").await.unwrap_or(false) {
        return Ok(None);
    }
    let key = format!("{route}post:{}", ip.unwrap_or("unknown"));
    match state.api_limiter.count(&key, calls, std::time::Duration::from_millis(ms)).await {
        Ok(count) => Ok(Some(count)),
        Err(over) => {
            let seconds = over.resets_in.as_millis().div_ceil(1000);
            let mut response = ApiError(ServiceError::new(
                apogee_types::ErrorKind::TooManyRequests,
                "error-too-many-requests",
                format!(
                    "Error, too many requests. Please slow down. You must wait {seconds} seconds before trying this endpoint again."
                ),
            ))
            .into_response();
            rate_headers(&mut response, over);
            Err(response)
        }
    }
}

/// `X-RateLimit-*` as Rocket.Chat sets them on every counted call (the reset is epoch ms).
fn rate_headers(response: &mut Response, count: Count) {
    let reset =
        apogee_types::Millis::now().0.saturating_add(i64::try_from(count.resets_in.as_millis()).unwrap_or(0));
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(count.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(count.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
}

/// Runs `handler` if the route's rate limit allows it, with the limit's headers on the answer.
pub(crate) async fn limited(
    state: &GatewayState,
    route: &str,
    ip: Option<&str>,
    who: &Principal,
    handler: impl Future<Output = Response>,
) -> Response {
    match rate_limit(state, route, ip, who).await {
        Err(refused) => refused,
        Ok(count) => {
            let mut response = handler.await;
            if let Some(count) = count {
                rate_headers(&mut response, count);
            }
            response
        }
    }
}

/// `POST rooms.media/:rid`: stores a temporary upload, `{file: {_id, url}}`.
pub(crate) async fn media(
    State(state): State<GatewayState>,
    Path(rid): Path<String>,
    ClientIp(ip): ClientIp,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let who = &caller.principal;
    limited(&state, "/api/v1/rooms.media/:rid", ip.as_deref(), who, async {
        media_inner(&state, &rid, &caller, multipart).await.into_response()
    })
    .await
}

async fn media_inner(
    state: &GatewayState,
    rid: &str,
    caller: &Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let files = files(state)?;
    let multipart = multipart.map_err(bad_multipart_request)?;
    let who = &caller.principal;
    let (stored, _fields) = read_upload(multipart, "file", Target::Room { files, who, rid }).await?;
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
    ClientIp(ip): ClientIp,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let who = &caller.principal;
    limited(&state, "/api/v1/rooms.upload/:rid", ip.as_deref(), who, async {
        upload_inner(&state, &rid, &caller, multipart).await.into_response()
    })
    .await
}

async fn upload_inner(
    state: &GatewayState,
    rid: &str,
    caller: &Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    let files = files(state)?;
    let multipart = multipart.map_err(bad_multipart_request)?;
    let who = &caller.principal;
    let (stored, fields) = read_upload(multipart, "file", Target::Room { files, who, rid }).await?;
    let file_id = stored.and_then(|v| v["_id"].as_str().map(str::to_owned));
    let file_id = file_id.ok_or_else(|| ApiError::typed("invalid-field", ""))?;
    let message = files.confirm(who, rid, &file_id, confirm_of(fields)).await?;
    Ok(message_reply(state, &message))
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

/// `GET rooms.images` (and the older `channels.images`): `roomId`, `startingFromId?`, paging.
pub(crate) async fn room_images(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    const ALLOWED: [&str; 4] = ["roomId", "startingFromId", "count", "offset"];
    if let Some(extra) = query.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        return Err(ApiError::invalid_params(format!("must NOT have additional properties '{extra}'")));
    }
    let rid = query
        .get("roomId")
        .ok_or_else(|| ApiError::invalid_params("must have required property 'roomId'"))?
        .clone();
    let files = files(&state)?;
    let page = page(&state, &query).await?;
    let starting_from = query.get("startingFromId").filter(|s| !s.is_empty()).cloned();
    let found = files.room_images(&caller.principal, &rid, starting_from, page).await?;
    // Rocket.Chat answers the page size asked for as `count`.
    let count = page.count.unwrap_or(found.items.len() as u64);
    Ok(ok!("files" => found.items, "count" => count, "offset" => found.offset, "total" => found.total))
}

fn user_selector(body: &Map<String, Value>) -> Option<UserSelector> {
    body_str(body, "userId").filter(|s| !s.is_empty()).map(|s| UserSelector::Id(s.to_owned())).or_else(|| {
        body_str(body, "username").filter(|s| !s.is_empty()).map(|s| UserSelector::Username(s.to_owned()))
    })
}

/// `POST users.setAvatar`: multipart `image` (with optional `userId`/`username` parts before
/// it), or JSON `{avatarUrl, userId?, username?}`: the files service fetches the image.
pub(crate) async fn set_avatar(
    State(state): State<GatewayState>,
    ClientIp(ip): ClientIp,
    caller: Caller,
    req: Request,
) -> Response {
    let who = &caller.principal;
    limited(&state, "/api/v1/users.setAvatar", ip.as_deref(), who, set_avatar_inner(&state, &caller, req))
        .await
}

async fn set_avatar_inner(state: &GatewayState, caller: &Caller, req: Request) -> Response {
    let state = state.clone();
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        // The route has no body limit (for the multipart image); a JSON body keeps the usual one.
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, state.cfg.max_body_bytes).await {
            Ok(b) => b,
            Err(_) => {
                let mut r = ApiError::failure("Invalid request body: length limit exceeded").into_response();
                *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
                return r;
            }
        };
        let req = Request::from_parts(parts, axum::body::Body::from(bytes));
        return match Body::from_request(req, &state).await {
            Ok(Body(body)) => match body.get("avatarUrl") {
                Some(Value::String(url)) if !url.is_empty() => {
                    let result = match files(&state) {
                        Ok(files) => files
                            .set_avatar_from_url(&caller.principal, user_selector(&body), url.clone())
                            .await
                            .map_err(ApiError),
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(()) => ok!(),
                        Err(e) => e.into_response(),
                    }
                }
                _ => ApiError::invalid_params("must have required property 'avatarUrl'").into_response(),
            },
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

/// Largest avatar image held in memory while the parts after it are read (see below).
const HELD_AVATAR_MAX: usize = 16 * 1024 * 1024;

/// The image streams to the files service when `userId`/`username` came before it. A form that
/// sends the image first may still name the user after it (Rocket.Chat reads the whole form
/// before acting), so such an image is held, up to [`HELD_AVATAR_MAX`], until the form ends.
async fn set_avatar_multipart(state: &GatewayState, who: &Principal, mut multipart: Multipart) -> ApiResult {
    let files = files(state)?;
    let mut fields = Map::new();
    let mut held: Option<(Option<String>, Vec<u8>)> = None;
    let mut stored = false;
    while let Some(mut field) = multipart.next_field().await.map_err(bad_multipart)? {
        let name = field.name().unwrap_or_default().to_owned();
        let got_image = stored || held.is_some();
        if field.file_name().is_some() && got_image {
            return Err(ApiError::failure("Just 1 file is allowed"));
        }
        if field.file_name().is_some() && name != "image" {
            return Err(ApiError::typed("invalid-field", ""));
        }
        if name != "image" || got_image {
            let text = read_text(field).await?;
            fields.insert(name, Value::String(text));
        } else if user_selector(&fields).is_some() {
            pump(field, &Target::Avatar { files, who }, &fields).await?;
            stored = true;
        } else {
            let content_type = field.content_type().map(str::to_owned);
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(bad_multipart)? {
                if bytes.len() + chunk.len() > HELD_AVATAR_MAX {
                    return Err(ApiError::typed(
                        "error-file-too-large",
                        format!("File exceeds allowed size of {HELD_AVATAR_MAX} bytes"),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            held = Some((content_type, bytes));
        }
    }
    if let Some((content_type, bytes)) = held {
        let body: ByteStream = Box::pin(futures_util::stream::iter([Ok(Bytes::from(bytes))]));
        files.set_avatar(who, user_selector(&fields), content_type, body).await?;
        stored = true;
    }
    if !stored {
        return Err(ApiError::typed("error-invalid-field", "Invalid field: image"));
    }
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

/// `GET chat.getURLPreview`: `roomId` and `url`, nothing else; the files service fetches.
pub(crate) async fn url_preview(
    State(state): State<GatewayState>,
    caller: Caller,
    Query(query): Query,
) -> ApiResult {
    const ALLOWED: [&str; 2] = ["roomId", "url"];
    if let Some(extra) = query.keys().find(|k| !ALLOWED.contains(&k.as_str())) {
        return Err(ApiError::invalid_params(format!("must NOT have additional properties '{extra}'")));
    }
    for key in ALLOWED {
        if !query.contains_key(key) {
            return Err(ApiError::invalid_params(format!("must have required property '{key}'")));
        }
    }
    let preview = files(&state)?.url_preview(&caller.principal, &query["roomId"], &query["url"]).await?;
    Ok(ok!("urlPreview" => preview))
}
