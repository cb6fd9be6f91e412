//! The route table and the one layer stack.

use apogee_telemetry::metrics;
use axum::Extension;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::GatewayState;
use crate::reply::json;
use crate::v1::rooms::{CHANNELS, Family, GROUPS, IMS};
use crate::v1::{
    auth, chat, commands, directory, files, integrations, marks, misc, presence, roles, room_reads,
    room_roles, room_settings, rooms, rooms_extra, subscriptions, tokens, users, users_admin,
};

/// Routes every family shares, under `/api/v1/<prefix>.*`.
fn family(prefix: &str, f: Family) -> Router<GatewayState> {
    let path = |name: &str| format!("/api/v1/{prefix}.{name}");
    let mut r = Router::new()
        .route(&path("history"), get(rooms::history))
        .route(&path("messages"), get(rooms::messages))
        .route(&path("members"), get(rooms::members))
        .route(&path("counters"), get(rooms::counters))
        .route(&path("setTopic"), post(rooms::set_topic))
        .route(&path("open"), post(rooms::open))
        .route(&path("close"), post(rooms::close))
        .route(&path("delete"), post(rooms::delete))
        .route(&path("files"), get(files::room_files));
    if f.t == apogee_types::RoomType::Direct {
        r = r
            .route(&path("create"), post(rooms::create_direct))
            .route(&path("list"), get(rooms::list_joined))
            .route(&path("list.everyone"), get(rooms::list_all))
            .route(&path("messages.others"), get(room_reads::messages_others));
    } else {
        r = r
            .route(&path("create"), post(rooms::create))
            .route(&path("info"), get(rooms::info))
            .route(&path("list.joined"), get(rooms::list_joined))
            .route(&path("leave"), post(rooms::leave))
            .route(&path("invite"), post(rooms::invite))
            .route(&path("addAll"), post(rooms::add_all))
            .route(&path("kick"), post(rooms::kick))
            .route(&path("setDescription"), post(rooms::set_description))
            .route(&path("setPurpose"), post(rooms::set_purpose))
            .route(&path("setAnnouncement"), post(rooms::set_announcement))
            .route(&path("rename"), post(rooms::rename))
            .route(&path("archive"), post(rooms::archive))
            .route(&path("unarchive"), post(rooms::unarchive))
            .route(&path("addOwner"), post(room_roles::add_owner))
            .route(&path("removeOwner"), post(room_roles::remove_owner))
            .route(&path("addModerator"), post(room_roles::add_moderator))
            .route(&path("removeModerator"), post(room_roles::remove_moderator))
            .route(&path("addLeader"), post(room_roles::add_leader))
            .route(&path("removeLeader"), post(room_roles::remove_leader))
            .route(&path("roles"), get(room_roles::roles))
            .route(&path("getIntegrations"), get(integrations::of_room))
            .route(&path("setReadOnly"), post(room_settings::set_read_only))
            .route(&path("setType"), post(room_settings::set_type))
            .route(&path("setCustomFields"), post(room_settings::set_custom_fields))
            .route(&path("moderators"), get(room_roles::moderators))
            .route(&path("online"), get(room_reads::online));
    }
    if f.t == apogee_types::RoomType::Channel {
        r = r
            .route(&path("list"), get(rooms::list_public))
            .route(&path("join"), post(rooms::join))
            .route(&path("setJoinCode"), post(room_settings::set_join_code))
            .route(&path("setDefault"), post(room_settings::set_default))
            .route(&path("anonymousread"), get(room_reads::anonymous_read))
            .route(&path("getAllUserMentionsByChannel"), get(room_reads::mentions_by_channel));
    }
    if f.t == apogee_types::RoomType::Group {
        r = r.route(&path("list"), get(rooms::list_joined)).route(&path("listAll"), get(rooms::list_all));
    }
    r.layer(Extension(f))
}

/// Uploads, downloads and avatars. Upload bodies are not held in memory, so they are limited by
/// `FileUpload_MaxFileSize` in the files service instead of the JSON body limit.
fn file_routes() -> Router<GatewayState> {
    let unlimited = || DefaultBodyLimit::disable();
    Router::new()
        .route("/api/v1/rooms.media/{rid}", post(files::media).layer(unlimited()))
        .route("/api/v1/rooms.images", get(files::room_images))
        .route("/api/v1/channels.images", get(files::room_images))
        .route("/api/v1/rooms.mediaConfirm/{rid}/{file_id}", post(files::media_confirm))
        .route("/api/v1/rooms.upload/{rid}", post(files::upload).layer(unlimited()))
        .route("/api/v1/users.setAvatar", post(files::set_avatar).layer(unlimited()))
        .route("/api/v1/users.resetAvatar", post(files::reset_avatar))
        .route("/api/v1/users.getAvatar", get(files::get_avatar))
        .route("/file-upload/{id}", get(crate::download::file_by_id))
        .route("/file-upload/{id}/{name}", get(crate::download::file))
        .route("/ufs/GridFS:Uploads/{id}/{name}", get(crate::download::file))
        .route("/ufs/FileSystem:Uploads/{id}/{name}", get(crate::download::file))
        .route("/ufs/AmazonS3:Uploads/{id}/{name}", get(crate::download::file))
        .route("/avatar/{*path}", get(crate::download::avatar))
}

/// The whole HTTP surface.
pub fn router(state: GatewayState) -> Router {
    let max_body = state.cfg.max_body_bytes;
    Router::new()
        .route("/", get(crate::web::index))
        .route("/api/info", get(misc::info))
        .route("/health", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(ready))
        .route("/metrics", get(prometheus))
        .route("/websocket", get(crate::ddp::upgrade))
        .route("/api/v1/method.call/{method}", post(crate::ddp::method_call))
        .route("/api/v1/method.callAnon/{method}", post(crate::ddp::method_call_anon))
        .route("/api/v1/login", post(auth::login))
        .route("/api/v1/logout", post(auth::logout).get(auth::logout))
        .route("/api/v1/me", get(auth::me))
        .route("/api/v1/users.create", post(users::create))
        .route("/api/v1/users.register", post(users::register))
        .route("/api/v1/users.info", get(users::info))
        .route("/api/v1/users.list", get(users::list))
        .route("/api/v1/users.update", post(users_admin::update))
        .route("/api/v1/users.setActiveStatus", post(users_admin::set_active_status))
        .route("/api/v1/users.delete", post(users_admin::delete))
        .route("/api/v1/users.checkUsernameAvailability", get(users_admin::check_username_availability))
        .route("/api/v1/users.updateOwnBasicInfo", post(users_admin::update_own_basic_info))
        .route("/api/v1/users.deleteOwnAccount", post(users_admin::delete_own_account))
        .route("/api/v1/users.logout", post(users_admin::logout))
        .route("/api/v1/users.getPreferences", get(users_admin::get_preferences))
        .route("/api/v1/users.setPreferences", post(users_admin::set_preferences))
        .route("/api/v1/users.autocomplete", get(users_admin::autocomplete))
        .route("/api/v1/users.listByStatus", get(users_admin::list_by_status))
        .route("/api/v1/users.getUsernameSuggestion", get(users_admin::username_suggestion))
        .route("/api/v1/commands.get", get(commands::get))
        .route("/api/v1/commands.list", get(commands::list))
        .route("/api/v1/commands.run", post(commands::run))
        .route("/api/v1/users.generatePersonalAccessToken", post(tokens::generate))
        .route("/api/v1/users.regeneratePersonalAccessToken", post(tokens::regenerate))
        .route("/api/v1/users.removePersonalAccessToken", post(tokens::remove))
        .route("/api/v1/users.getPersonalAccessTokens", get(tokens::list))
        .route("/api/v1/users.deactivateIdle", post(tokens::deactivate_idle))
        .route("/api/v1/users.logoutOtherClients", post(tokens::logout_other_clients))
        .route("/api/v1/users.removeOtherTokens", post(tokens::remove_other_tokens))
        .route("/api/v1/users.setStatus", post(presence::set_status))
        .route("/api/v1/users.getStatus", get(presence::get_status))
        .route("/api/v1/users.getPresence", get(presence::get_presence))
        .route("/api/v1/users.presence", get(presence::presence))
        .route("/api/v1/directory", get(directory::directory))
        .route("/api/v1/spotlight", get(directory::spotlight))
        .route("/api/v1/shield.svg", get(directory::shield))
        .route("/api/v1/pw.getPolicy", get(directory::pw_get_policy))
        .route("/api/v1/pw.getPolicyReset", get(directory::pw_get_policy_reset))
        .route("/api/v1/chat.postMessage", post(chat::post_message))
        .route("/api/v1/chat.sendMessage", post(chat::send_message))
        .route("/api/v1/chat.getMessage", get(chat::get_message))
        .route("/api/v1/chat.getURLPreview", get(files::url_preview))
        .route("/api/v1/chat.update", post(chat::update))
        .route("/api/v1/chat.syncMessages", get(chat::sync_messages))
        .route("/api/v1/chat.delete", post(chat::delete))
        .route("/api/v1/chat.react", post(chat::react))
        .route("/api/v1/chat.pinMessage", post(marks::pin))
        .route("/api/v1/chat.unPinMessage", post(marks::unpin))
        .route("/api/v1/chat.starMessage", post(marks::star))
        .route("/api/v1/chat.unStarMessage", post(marks::unstar))
        .route("/api/v1/chat.getPinnedMessages", get(marks::pinned))
        .route("/api/v1/chat.getStarredMessages", get(marks::starred))
        .route("/api/v1/chat.getMentionedMessages", get(marks::mentioned))
        .route("/api/v1/chat.search", get(marks::search))
        .route("/api/v1/chat.getThreadsList", get(crate::v1::threads::threads_list))
        .route("/api/v1/chat.syncThreadsList", get(crate::v1::threads::sync_threads_list))
        .route("/api/v1/chat.getThreadMessages", get(crate::v1::threads::thread_messages))
        .route("/api/v1/chat.syncThreadMessages", get(crate::v1::threads::sync_thread_messages))
        .route("/api/v1/chat.followMessage", post(crate::v1::threads::follow_message))
        .route("/api/v1/chat.unfollowMessage", post(crate::v1::threads::unfollow_message))
        .route("/api/v1/chat.getDeletedMessages", get(crate::v1::threads::deleted_messages))
        .route("/api/v1/chat.ignoreUser", get(crate::v1::threads::ignore_user))
        .route("/api/v1/chat.reportMessage", post(crate::v1::threads::report_message))
        .route("/api/v1/chat.getDiscussions", get(crate::v1::discussions::messages))
        .route("/api/v1/rooms.createDiscussion", post(crate::v1::discussions::create))
        .route("/api/v1/rooms.getDiscussions", get(crate::v1::discussions::of_room))
        .route("/api/v1/subscriptions.unread", post(crate::v1::subscriptions::unread))
        .route("/api/v1/subscriptions.get", get(subscriptions::get))
        .route("/api/v1/subscriptions.getOne", get(subscriptions::get_one))
        .route("/api/v1/subscriptions.read", post(subscriptions::read))
        .route("/api/v1/rooms.get", get(rooms::rooms_get))
        .route("/api/v1/rooms.info", get(rooms::rooms_info))
        .route("/api/v1/rooms.favorite", post(rooms_extra::favorite))
        .route("/api/v1/rooms.saveNotification", post(rooms_extra::save_notification))
        .route("/api/v1/rooms.nameExists", get(rooms_extra::name_exists))
        .route("/api/v1/rooms.leave", post(rooms_extra::leave))
        .route("/api/v1/rooms.delete", post(rooms_extra::delete))
        .route("/api/v1/rooms.isMember", get(rooms_extra::is_member))
        .route("/api/v1/rooms.saveRoomSettings", post(rooms_extra::save_room_settings))
        .route("/api/v1/rooms.muteUser", post(rooms_extra::mute_user))
        .route("/api/v1/rooms.cleanHistory", post(rooms_extra::clean_history))
        .route("/api/v1/rooms.unmuteUser", post(rooms_extra::unmute_user))
        .route("/api/v1/rooms.adminRooms", get(rooms_extra::admin_rooms))
        .route("/api/v1/rooms.autocomplete.adminRooms", get(rooms_extra::autocomplete_admin_rooms))
        .route(
            "/api/v1/rooms.autocomplete.channelAndPrivate",
            get(rooms_extra::autocomplete_channel_and_private),
        )
        .route(
            "/api/v1/rooms.autocomplete.channelAndPrivate.withPagination",
            get(rooms_extra::autocomplete_channel_and_private_paged),
        )
        .route(
            "/api/v1/rooms.autocomplete.availableForTeams",
            get(rooms_extra::autocomplete_available_for_teams),
        )
        .route("/api/v1/settings.public", get(misc::settings_public))
        .route("/api/v1/settings.oauth", get(misc::settings_oauth))
        .route("/api/v1/settings/{id}", get(misc::get_setting).post(misc::set_setting))
        .route("/api/v1/permissions.listAll", get(misc::permissions_list_all))
        .route("/api/v1/permissions.update", post(misc::permissions_update))
        .route("/api/v1/roles.list", get(misc::roles_list))
        .route("/api/v1/roles.addUserToRole", post(roles::add_user_to_role))
        .route("/api/v1/roles.removeUserFromRole", post(roles::remove_user_from_role))
        .route("/api/v1/roles.getUsersInRole", get(roles::get_users_in_role))
        .route("/api/v1/integrations.create", post(integrations::create))
        .route("/api/v1/integrations.update", axum::routing::put(integrations::update))
        .route("/api/v1/integrations.remove", post(integrations::remove))
        .route("/api/v1/integrations.get", get(integrations::get))
        .route("/api/v1/integrations.list", get(integrations::list))
        .route("/api/v1/integrations.history", get(integrations::history))
        .route("/hooks/{integration_id}/{token}", post(integrations::hook).get(integrations::hook))
        .route(
            "/hooks/{integration_id}/{user_id}/{token}",
            post(integrations::hook_with_user).get(integrations::hook_with_user),
        )
        .merge(crate::v1::teams::routes())
        .merge(file_routes())
        .merge(family("channels", CHANNELS))
        .merge(family("groups", GROUPS))
        .merge(family("im", IMS))
        .merge(family("dm", IMS))
        // The web client's assets and routes; anything else is the JSON 404 below.
        .fallback(crate::web::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        // Inside routing, so the matched route template is known; unmatched requests share one label.
        .layer(axum::middleware::from_fn(http_metrics))
        // Enforced where bodies are read, so the refusal is a Rocket.Chat-style JSON 413.
        .layer(DefaultBodyLimit::max(max_body))
        .layer(CatchPanicLayer::custom(|_| {
            json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"success": false, "error": "Internal error occured"}),
            )
        }))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("access-control-allow-origin"),
            HeaderValue::from_static("*"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("access-control-allow-headers"),
            HeaderValue::from_static(
                "Origin, X-Requested-With, Content-Type, Accept, X-User-Id, X-Auth-Token",
            ),
        ))
        .with_state(state)
}

async fn health() -> Response {
    json(StatusCode::OK, &json!({ "status": "ok" }))
}

/// Prometheus scrape endpoint: the process's metrics in the text format.
async fn prometheus() -> Response {
    let mut resp = Response::new(axum::body::Body::from(metrics::render()));
    resp.headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE));
    resp
}

/// Records every request's latency under its route template (never the concrete path, which
/// may hold ids), method and status class; when traces are exported, runs the request in a
/// server span that continues the caller's `traceparent`, if it sent one.
async fn http_metrics(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let method = metrics::method_label(req.method().as_str());
    let started = std::time::Instant::now();
    let resp = if apogee_telemetry::trace::enabled() {
        use tracing::Instrument;
        let route = route.as_deref().unwrap_or("unmatched");
        let parent = req.headers().get("traceparent").and_then(|v| v.to_str().ok());
        let span = tracing::info_span!(
            "http",
            otel.name = format!("{method} {route}"),
            otel.kind = "server",
            otel.parent = parent,
            http.request.method = method,
            http.route = route,
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty
        );
        let resp = next.run(req).instrument(span.clone()).await;
        span.record("http.response.status_code", resp.status().as_u16());
        if resp.status().is_server_error() {
            span.record("otel.status_code", "error");
        }
        resp
    } else {
        next.run(req).await
    };
    let status = metrics::status_class(resp.status().as_u16());
    metrics::metrics()
        .http_request_seconds
        .with([method, route.as_deref().unwrap_or("unmatched"), status])
        .observe_duration(started.elapsed());
    resp
}

/// Ready when the services this gateway calls answer.
async fn ready(State(state): State<GatewayState>) -> Response {
    match (state.ready)().await {
        Ok(()) => json(StatusCode::OK, &json!({ "status": "ready" })),
        Err(reason) => {
            json(StatusCode::SERVICE_UNAVAILABLE, &json!({ "status": "not ready", "reason": reason }))
        }
    }
}

pub(crate) async fn not_found() -> Response {
    json(
        StatusCode::NOT_FOUND,
        &json!({ "success": false, "status": "error", "message": "API endpoint does not exist", "error": "Resource not found" }),
    )
}

async fn method_not_allowed() -> Response {
    json(
        StatusCode::METHOD_NOT_ALLOWED,
        &json!({ "success": false, "status": "error", "message": "API endpoint does not exist" }),
    )
}
