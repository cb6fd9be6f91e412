//! Conversions between the stored shapes (`apogee-types`) and Rocket.Chat's MongoDB documents.
//!
//! The serde shape of each type is Rocket.Chat's already; what differs is fixed up here, in pure
//! functions the unit tests cover without a server:
//! - dates are BSON dates (`ts`, `_updatedAt`, …), not numbers;
//! - a message's `extra` fields (`pinned`, `starred`, `attachments`, …) and a subscription's
//!   `notifications` fields sit at the top level of the document, as Rocket.Chat keeps them;
//! - a user's password is `services.password.bcrypt`, preferences `settings.preferences`, and
//!   login tokens live in `services.resume.loginTokens` (never in the `User` value);
//! - a message's free-form dates (`tlm`, `dlm`, `pinnedAt`, …), EJSON `{"$date": ms}` in `extra`,
//!   are BSON dates as well, so they sort and compare as Rocket.Chat's do.

use apogee_types::{LoginToken, Message, Millis, Permission, Role, Room, Setting, Subscription, User};
use mongodb::bson::{self, Bson, DateTime, Document};

use crate::{MessageReport, StoreError, StoreResult};

/// Date fields of each document.
const USER_DATES: &[&str] = &["createdAt", "_updatedAt", "lastLogin"];
const ROOM_DATES: &[&str] = &["ts", "_updatedAt", "lm"];
const SUBSCRIPTION_DATES: &[&str] = &["ts", "_updatedAt", "ls", "lr"];
const MESSAGE_DATES: &[&str] = &["ts", "_updatedAt", "editedAt"];
const CONFIG_DATES: &[&str] = &["_updatedAt"];
const REPORT_DATES: &[&str] = &["ts"];
const UPLOAD_DATES: &[&str] = &["uploadedAt", "_updatedAt"];
/// The fields `Upload` names itself; its `extra` fields sit beside them, as Rocket.Chat stores them.
const UPLOAD_FIELDS: &[&str] =
    &["_id", "name", "size", "type", "rid", "userId", "complete", "uploadedAt", "_updatedAt", "message_id"];

/// The fields `Message` names itself; everything else on a message document is `extra`.
const MESSAGE_FIELDS: &[&str] = &[
    "_id",
    "rid",
    "msg",
    "ts",
    "u",
    "_updatedAt",
    "t",
    "mentions",
    "channels",
    "tmid",
    "tshow",
    "groupable",
    "seq",
    "editedAt",
    "editedBy",
    "reactions",
];
/// The fields `Subscription` names itself; everything else is a notification preference.
const SUBSCRIPTION_FIELDS: &[&str] = &[
    "_id",
    "rid",
    "u",
    "t",
    "name",
    "fname",
    "ts",
    "_updatedAt",
    "open",
    "alert",
    "userMentions",
    "groupMentions",
    "ls",
    "lr",
    "f",
    "roles",
    "archived",
    "last_read_seq",
    "tunread",
    "tunreadUser",
    "tunreadGroup",
    "ignored",
];

pub(crate) fn date(at: Millis) -> Bson {
    Bson::DateTime(DateTime::from_millis(at.0))
}

fn corrupt(entity: &'static str) -> impl Fn(bson::error::Error) -> StoreError {
    move |e| StoreError::Corrupt { entity, detail: e.to_string() }
}

fn to_doc<T: serde::Serialize>(entity: &'static str, value: &T) -> StoreResult<Document> {
    bson::serialize_to_document(value).map_err(corrupt(entity))
}

fn from_doc<T: serde::de::DeserializeOwned>(entity: &'static str, doc: Document) -> StoreResult<T> {
    bson::deserialize_from_document(doc).map_err(corrupt(entity))
}

/// Millisecond numbers at `fields` become BSON dates.
fn dates_to_bson(doc: &mut Document, fields: &[&str]) {
    for field in fields {
        if let Some(value) = doc.get_mut(field) {
            let millis = match value {
                Bson::Int64(n) => *n,
                Bson::Int32(n) => i64::from(*n),
                _ => continue,
            };
            *value = Bson::DateTime(DateTime::from_millis(millis));
        }
    }
}

/// BSON dates at `fields` become millisecond numbers again.
fn dates_from_bson(doc: &mut Document, fields: &[&str]) {
    for field in fields {
        if let Some(value) = doc.get_mut(field)
            && let Bson::DateTime(at) = value
        {
            *value = Bson::Int64(at.timestamp_millis());
        }
    }
}

/// Moves the sub-document `nested` up to the top level. A key the type names itself stays in
/// `nested`, so nothing is overwritten or lost.
fn flatten(doc: &mut Document, nested: &str, known: &[&str]) {
    let Some(Bson::Document(inner)) = doc.remove(nested) else { return };
    let mut kept = Document::new();
    for (key, value) in inner {
        if known.contains(&key.as_str()) || key == nested {
            kept.insert(key, value);
        } else {
            doc.insert(key, value);
        }
    }
    if !kept.is_empty() {
        doc.insert(nested, kept);
    }
}

/// The inverse of [`flatten`]: every top-level key the type does not name goes into `nested`.
fn gather(doc: &mut Document, nested: &str, known: &[&str]) {
    let mut inner = match doc.remove(nested) {
        Some(Bson::Document(inner)) => inner,
        _ => Document::new(),
    };
    let unknown: Vec<String> = doc.keys().filter(|k| !known.contains(&k.as_str())).cloned().collect();
    for key in unknown {
        if let Some(value) = doc.remove(&key) {
            inner.insert(key, value);
        }
    }
    doc.insert(nested, inner);
}

pub(crate) fn message_to_doc(message: &Message) -> StoreResult<Document> {
    let mut doc = to_doc("message", message)?;
    message_doc_out(&mut doc);
    Ok(doc)
}

fn message_doc_out(doc: &mut Document) {
    dates_to_bson(doc, MESSAGE_DATES);
    if let Some(Bson::Document(extra)) = doc.get_mut("extra") {
        ejson_dates_to_bson(extra);
    }
    flatten(doc, "extra", MESSAGE_FIELDS);
}

/// `{"$date": ms}` values become BSON dates.
fn ejson_dates_to_bson(fields: &mut Document) {
    for (_, value) in fields.iter_mut() {
        if let Bson::Document(inner) = value
            && inner.len() == 1
            && let Some(millis) = inner.get("$date").and_then(|d| match d {
                Bson::Int64(n) => Some(*n),
                Bson::Int32(n) => Some(i64::from(*n)),
                _ => None,
            })
        {
            *value = Bson::DateTime(DateTime::from_millis(millis));
        }
    }
}

/// BSON dates become `{"$date": ms}` values again.
fn bson_dates_to_ejson(fields: &mut Document) {
    for (_, value) in fields.iter_mut() {
        if let Bson::DateTime(at) = value {
            *value = Bson::Document(bson::doc! { "$date": at.timestamp_millis() });
        }
    }
}

pub(crate) fn message_from_doc(mut doc: Document) -> StoreResult<Message> {
    message_doc_in(&mut doc);
    from_doc("message", doc)
}

fn message_doc_in(doc: &mut Document) {
    // Rocket.Chat's trash copy and other tools may add fields; they land in `extra` like any other.
    dates_from_bson(doc, MESSAGE_DATES);
    gather(doc, "extra", MESSAGE_FIELDS);
    if let Some(Bson::Document(extra)) = doc.get_mut("extra") {
        bson_dates_to_ejson(extra);
    }
}

pub(crate) fn room_to_doc(room: &Room) -> StoreResult<Document> {
    let mut doc = to_doc("room", room)?;
    dates_to_bson(&mut doc, ROOM_DATES);
    if let Some(Bson::Document(last)) = doc.get_mut("lastMessage") {
        message_doc_out(last);
    }
    Ok(doc)
}

pub(crate) fn room_from_doc(mut doc: Document) -> StoreResult<Room> {
    dates_from_bson(&mut doc, ROOM_DATES);
    if let Some(Bson::Document(last)) = doc.get_mut("lastMessage") {
        message_doc_in(last);
    }
    from_doc("room", doc)
}

pub(crate) fn subscription_to_doc(sub: &Subscription) -> StoreResult<Document> {
    let mut doc = to_doc("subscription", sub)?;
    // Derived on every read, so never stored (Rocket.Chat's own counts would be read as ours).
    doc.remove("unread");
    doc.remove("groupMentions");
    dates_to_bson(&mut doc, SUBSCRIPTION_DATES);
    flatten(&mut doc, "notifications", SUBSCRIPTION_FIELDS);
    Ok(doc)
}

pub(crate) fn subscription_from_doc(mut doc: Document) -> StoreResult<Subscription> {
    dates_from_bson(&mut doc, SUBSCRIPTION_DATES);
    // Rocket.Chat keeps stored `unread` and `groupMentions` counts; ours are derived on read.
    doc.remove("unread");
    doc.remove("groupMentions");
    gather(&mut doc, "notifications", SUBSCRIPTION_FIELDS);
    from_doc("subscription", doc)
}

/// A report keeps the message as it was, in the message document's shape.
pub(crate) fn report_to_doc(report: &MessageReport) -> StoreResult<Document> {
    let mut doc = to_doc("report", report)?;
    dates_to_bson(&mut doc, REPORT_DATES);
    if let Some(Bson::Document(message)) = doc.get_mut("message") {
        message_doc_out(message);
    }
    Ok(doc)
}

pub(crate) fn report_from_doc(mut doc: Document) -> StoreResult<MessageReport> {
    dates_from_bson(&mut doc, REPORT_DATES);
    if let Some(Bson::Document(message)) = doc.get_mut("message") {
        message_doc_in(message);
    }
    from_doc("report", doc)
}

/// The user's fields as stored, without `services` (tokens are never part of a `User`).
/// `password` is `services.password.bcrypt` when set.
pub(crate) struct UserDoc {
    pub fields: Document,
    pub password_bcrypt: Option<String>,
}

pub(crate) fn user_to_doc(user: &User) -> StoreResult<UserDoc> {
    let mut fields = to_doc("user", user)?;
    fields.remove("password_bcrypt");
    if let Some(preferences) = fields.remove("preferences") {
        fields.insert("settings", bson::doc! { "preferences": preferences });
    }
    dates_to_bson(&mut fields, USER_DATES);
    Ok(UserDoc { fields, password_bcrypt: user.password_bcrypt.clone() })
}

/// A whole new user document: fields, password and an empty token list.
pub(crate) fn new_user_doc(user: &User) -> StoreResult<Document> {
    let UserDoc { mut fields, password_bcrypt } = user_to_doc(user)?;
    let mut services = bson::doc! { "resume": { "loginTokens": [] } };
    if let Some(bcrypt) = password_bcrypt {
        services.insert("password", bson::doc! { "bcrypt": bcrypt });
    }
    fields.insert("services", services);
    Ok(fields)
}

pub(crate) fn user_from_doc(mut doc: Document) -> StoreResult<User> {
    let services = match doc.remove("services") {
        Some(Bson::Document(services)) => services,
        _ => Document::new(),
    };
    let bcrypt =
        services.get_document("password").ok().and_then(|p| p.get_str("bcrypt").ok()).map(str::to_owned);
    doc.insert("password_bcrypt", bcrypt.map_or(Bson::Null, Bson::String));
    let preferences = match doc.remove("settings") {
        Some(Bson::Document(mut settings)) => settings.remove("preferences"),
        _ => None,
    };
    doc.insert("preferences", preferences.unwrap_or_else(|| Bson::Document(Document::new())));
    dates_from_bson(&mut doc, USER_DATES);
    from_doc("user", doc)
}

/// One entry of `services.resume.loginTokens`: `{when, hashedToken}` for a resume token,
/// `{hashedToken, type: "personalAccessToken", createdAt, lastTokenPart, name, bypassTwoFactor}`
/// for a personal access token.
pub(crate) fn login_token_entry(token: &LoginToken) -> Document {
    match &token.name {
        None => bson::doc! { "when": date(token.created_at), "hashedToken": &token.hashed_token },
        Some(name) => bson::doc! {
            "hashedToken": &token.hashed_token,
            "type": "personalAccessToken",
            "createdAt": date(token.created_at),
            "lastTokenPart": token.last_token_part.clone().unwrap_or_default(),
            "name": name,
            "bypassTwoFactor": token.bypass_two_factor,
        },
    }
}

/// Reads an entry written by [`login_token_entry`] (or by Rocket.Chat); `None` if it has no hash.
pub(crate) fn login_token_from_entry(user_id: &str, entry: &Document) -> Option<LoginToken> {
    let hashed_token = entry.get_str("hashedToken").ok()?.to_owned();
    let personal = entry.get_str("type").ok() == Some("personalAccessToken");
    let at_field = if personal { "createdAt" } else { "when" };
    let created_at = match entry.get(at_field) {
        Some(Bson::DateTime(at)) => Millis(at.timestamp_millis()),
        _ => Millis(0),
    };
    // A personal access token always has a name; Rocket.Chat requires one.
    let name = personal.then(|| entry.get_str("name").unwrap_or_default().to_owned());
    let last_token_part = entry.get_str("lastTokenPart").ok().filter(|_| personal).map(str::to_owned);
    let bypass_two_factor = entry.get_bool("bypassTwoFactor").unwrap_or(false);
    Some(LoginToken {
        hashed_token,
        user_id: user_id.to_owned(),
        created_at,
        name,
        last_token_part,
        bypass_two_factor,
    })
}

/// Every login token stored on a user document.
pub(crate) fn login_tokens_of(user_doc: &Document) -> Vec<LoginToken> {
    let user_id = user_doc.get_str("_id").unwrap_or_default();
    let entries = user_doc
        .get_document("services")
        .and_then(|s| s.get_document("resume"))
        .and_then(|r| r.get_array("loginTokens"));
    entries
        .map(|list| {
            list.iter()
                .filter_map(|e| e.as_document())
                .filter_map(|e| login_token_from_entry(user_id, e))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn setting_to_doc(s: &Setting) -> StoreResult<Document> {
    config_to_doc("setting", s)
}

pub(crate) fn permission_to_doc(p: &Permission) -> StoreResult<Document> {
    config_to_doc("permission", p)
}

pub(crate) fn role_to_doc(r: &Role) -> StoreResult<Document> {
    config_to_doc("role", r)
}

fn config_to_doc<T: serde::Serialize>(entity: &'static str, value: &T) -> StoreResult<Document> {
    let mut doc = to_doc(entity, value)?;
    dates_to_bson(&mut doc, CONFIG_DATES);
    Ok(doc)
}

pub(crate) fn config_from_doc<T: serde::de::DeserializeOwned>(
    entity: &'static str,
    mut doc: Document,
) -> StoreResult<T> {
    dates_from_bson(&mut doc, CONFIG_DATES);
    from_doc(entity, doc)
}

pub(crate) fn upload_to_doc(upload: &crate::Upload) -> StoreResult<Document> {
    let mut doc = to_doc("upload", upload)?;
    dates_to_bson(&mut doc, UPLOAD_DATES);
    // Free-form dates (Rocket.Chat's `expiresAt`, …) are BSON dates, as on messages.
    if let Some(Bson::Document(extra)) = doc.get_mut("extra") {
        ejson_dates_to_bson(extra);
    }
    flatten(&mut doc, "extra", UPLOAD_FIELDS);
    Ok(doc)
}

pub(crate) fn upload_from_doc(mut doc: Document) -> StoreResult<crate::Upload> {
    dates_from_bson(&mut doc, UPLOAD_DATES);
    gather(&mut doc, "extra", UPLOAD_FIELDS);
    if let Some(Bson::Document(extra)) = doc.get_mut("extra") {
        bson_dates_to_ejson(extra);
    }
    from_doc("upload", doc)
}
