//! The query, update and index documents the MongoDB store sends, as pure functions so the unit
//! tests can check them without a server. Each mirrors the SQLite query of the same operation.

use apogee_types::{LoginToken, Millis, PageRequest};
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{Collation, CollationStrength, IndexOptions};

use super::docs::{UserDoc, date};
use crate::{HistoryQuery, MessageFilter, MessageSearch, RoomFilter, ThreadFilter, UserFilter};

pub(crate) const USERS: &str = "users";
pub(crate) const ROOMS: &str = "rocketchat_room";
pub(crate) const SUBSCRIPTIONS: &str = "rocketchat_subscription";
pub(crate) const MESSAGES: &str = "rocketchat_message";
pub(crate) const SETTINGS: &str = "rocketchat_settings";
pub(crate) const PERMISSIONS: &str = "rocketchat_permissions";
pub(crate) const ROLES: &str = "rocketchat_roles";
/// Reported messages (`chat.reportMessage`), as Rocket.Chat names the collection.
pub(crate) const REPORTS: &str = "rocketchat_reports";
/// Upload records (the bytes live in the blob store), as Rocket.Chat names the collection.
pub(crate) const UPLOADS: &str = "rocketchat_uploads";
/// Rocket.Chat's record of removed documents, `{…document, _deletedAt, __collection__}`.
pub(crate) const TRASH: &str = "rocketchat__trash";

/// `__collection__` values in the trash (Rocket.Chat's model names).
pub(crate) const TRASH_ROOM: &str = "room";
pub(crate) const TRASH_SUBSCRIPTION: &str = "subscription";
pub(crate) const TRASH_MESSAGE: &str = "message";

/// Case-insensitive comparison (usernames, e-mails, room names): the unique indexes use it too,
/// so `alice` and `ALICE` are the same key, as with SQLite's `COLLATE NOCASE`.
pub(crate) fn case_insensitive() -> Collation {
    Collation::builder().locale("en").strength(CollationStrength::Secondary).build()
}

/// A case-insensitive substring match of `text`, taken literally.
pub(crate) fn contains(text: &str) -> Document {
    doc! { "$regex": regex_escape(text), "$options": "i" }
}

fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}-/#".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `skip` and `limit` of a page; `None` when the page is empty by request (`count: 0`), since
/// MongoDB reads a limit of 0 as "no limit".
pub(crate) fn window(page: PageRequest) -> Option<(u64, Option<i64>)> {
    match page.count {
        Some(0) => None,
        count => Some((page.offset, count.map(|c| i64::try_from(c).unwrap_or(i64::MAX)))),
    }
}

fn seq(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn user_list_filter(filter: &UserFilter) -> Document {
    let mut q = Document::new();
    if let Some(text) = &filter.text {
        q.insert("$or", vec![doc! { "username": contains(text) }, doc! { "name": contains(text) }]);
    }
    if let Some(active) = filter.active {
        q.insert("active", active);
    }
    if let Some(since) = filter.updated_since {
        q.insert("_updatedAt", doc! { "$gte": mongodb::bson::DateTime::from_millis(since.0) });
    }
    if !filter.ids.is_empty() {
        q.insert("_id", doc! { "$in": &filter.ids });
    }
    if !filter.roles.is_empty() {
        q.insert("roles", doc! { "$in": &filter.roles });
    }
    q
}

/// Rewrites a user's own fields and password, leaving the rest of `services` (login tokens) alone.
pub(crate) fn user_update(user: &UserDoc) -> Document {
    let mut set = user.fields.clone();
    set.remove("_id");
    match &user.password_bcrypt {
        Some(bcrypt) => {
            set.insert("services.password.bcrypt", bcrypt);
            doc! { "$set": set }
        }
        None => doc! { "$set": set, "$unset": { "services.password": "" } },
    }
}

pub(crate) fn user_by_token_filter(hashed_token: &str) -> Document {
    doc! { "services.resume.loginTokens.hashedToken": hashed_token }
}

pub(crate) fn push_login_token(entry: Document) -> Document {
    doc! { "$push": { "services.resume.loginTokens": entry } }
}

pub(crate) fn pull_login_tokens(hashed_tokens: &[String]) -> Document {
    doc! { "$pull": { "services.resume.loginTokens": { "hashedToken": { "$in": hashed_tokens } } } }
}

/// The resume tokens (not personal access tokens) created before `before` beyond the newest `keep`.
pub(crate) fn tokens_to_prune(tokens: &[LoginToken], keep: usize, before: Millis) -> Vec<String> {
    let mut resume: Vec<&LoginToken> = tokens.iter().filter(|t| t.name.is_none()).collect();
    resume.sort_by_key(|t| std::cmp::Reverse(t.created_at));
    resume.into_iter().skip(keep).filter(|t| t.created_at < before).map(|t| t.hashed_token.clone()).collect()
}

pub(crate) fn room_list_filter(filter: &RoomFilter) -> Document {
    let mut q = Document::new();
    if !filter.types.is_empty() {
        let types: Vec<&str> = filter.types.iter().map(|t| t.as_str()).collect();
        q.insert("t", doc! { "$in": types });
    }
    if let Some(text) = &filter.text {
        q.insert("name", contains(text));
    }
    if filter.default_only {
        q.insert("default", true);
    }
    q
}

/// Rooms among `rids` of the given types (all when empty).
pub(crate) fn rooms_in(rids: &[String], types: &[apogee_types::RoomType]) -> Document {
    let mut q = doc! { "_id": { "$in": rids } };
    if !types.is_empty() {
        let types: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        q.insert("t", doc! { "$in": types });
    }
    q
}

/// The user's subscriptions changed after `since`, or whose room (one of `changed_rids`) changed.
pub(crate) fn subscriptions_since_filter(
    uid: &str,
    since: Option<Millis>,
    changed_rids: &[String],
) -> Document {
    match since {
        None => doc! { "u._id": uid },
        Some(since) => doc! {
            "u._id": uid,
            "$or": [{ "_updatedAt": { "$gt": date(since) } }, { "rid": { "$in": changed_rids } }],
        },
    }
}

/// Rocket.Chat's hidden history copies (`Message_KeepHistory`) stay out of every read of a room.
pub(crate) const NOT_HIDDEN: &str = "_hidden";

fn not_hidden() -> Bson {
    Bson::Document(doc! { "$ne": true })
}

/// A thread reply shown only in its thread has `tmid` and no `tshow`.
fn not_thread_only() -> Document {
    doc! { "$or": [{ "tmid": Bson::Null }, { "tshow": true }] }
}

/// Messages `count_unread` counts: after `after_seq`, by others, no system messages, no
/// thread-only replies (`Message::counts_as_unread`).
pub(crate) fn unread_filter(rid: &str, uid: &str, after_seq: u64) -> Document {
    let mut q = doc! {
        "rid": rid,
        "seq": { "$gt": seq(after_seq) },
        "u._id": { "$ne": uid },
        "t": Bson::Null,
        NOT_HIDDEN: not_hidden(),
    };
    q.extend(not_thread_only());
    q
}

/// The unread messages that add to `uid`'s `groupMentions` (`Message::group_mention_for`):
/// `@all` or `@here` among the mentions, `uid` not among them.
pub(crate) fn group_mention_filter(rid: &str, uid: &str, after_seq: u64) -> Document {
    let mut q = unread_filter(rid, uid, after_seq);
    q.insert("mentions._id", doc! { "$in": ["all", "here"], "$ne": uid });
    q
}

pub(crate) fn history_filter(rid: &str, query: &HistoryQuery) -> Document {
    let (lt, gt) = if query.inclusive { ("$lte", "$gte") } else { ("$lt", "$gt") };
    let mut ts = Document::new();
    if let Some(latest) = query.latest {
        ts.insert(lt, date(latest));
    }
    if let Some(oldest) = query.oldest {
        ts.insert(gt, date(oldest));
    }
    let mut q = doc! { "rid": rid, NOT_HIDDEN: not_hidden() };
    if !ts.is_empty() {
        q.insert("ts", ts);
    }
    if !query.show_thread_messages {
        q.extend(not_thread_only());
    }
    q
}

/// By `ts`, then `seq` (messages of the same millisecond keep their order).
pub(crate) fn by_ts(ascending: bool) -> Document {
    let dir = if ascending { 1 } else { -1 };
    doc! { "ts": dir, "seq": dir }
}

/// Messages of the room changed after (or before, when `before`) `since`, and their sort.
pub(crate) fn changed_filter(rid: &str, since: Millis, before: bool) -> (Document, Document) {
    let (cmp, dir) = if before { ("$lt", -1) } else { ("$gt", 1) };
    (
        doc! { "rid": rid, "_updatedAt": { cmp: date(since) }, NOT_HIDDEN: not_hidden() },
        doc! { "_updatedAt": dir, "seq": dir },
    )
}

/// Trash records of one collection with `key == value`, removed after (or before) `since`.
pub(crate) fn removed_filter(
    collection: &str,
    key: &str,
    value: &str,
    since: Millis,
    before: bool,
) -> (Document, Document) {
    let (cmp, dir) = if before { ("$lt", -1) } else { ("$gt", 1) };
    (
        doc! { "__collection__": collection, key: value, "_deletedAt": { cmp: date(since) } },
        doc! { "_deletedAt": dir },
    )
}

pub(crate) fn removed_rooms_filter(since: Millis) -> Document {
    doc! { "__collection__": TRASH_ROOM, "_deletedAt": { "$gt": date(since) } }
}

/// The trash record of a removed document (Rocket.Chat keeps the whole document).
pub(crate) fn trash_doc(collection: &str, mut removed: Document, at: Millis) -> Document {
    removed.insert("_deletedAt", date(at));
    removed.insert("__collection__", collection);
    removed
}

/// The condition of a [`MessageFilter`] on messages of `rid`, and its sort.
pub(crate) fn message_filter(rid: &str, filter: &MessageFilter) -> (Document, Document) {
    let mut q = doc! { "rid": rid, NOT_HIDDEN: not_hidden() };
    match filter {
        MessageFilter::Pinned => {
            q.insert("pinned", true);
            q.insert("t", doc! { "$ne": "rm" });
        }
        MessageFilter::StarredBy(uid) => {
            q.insert("starred._id", uid);
        }
        MessageFilter::Mentioning(username) => {
            q.insert("mentions.username", username);
        }
        MessageFilter::Text(text) => {
            q.insert("msg", contains(text));
            q.insert("t", doc! { "$ne": "rm" });
        }
        MessageFilter::Discussions(text) => {
            q.insert("drid", doc! { "$ne": Bson::Null });
            if !text.is_empty() {
                q.insert("msg", contains(text));
            }
        }
        MessageFilter::Search(search) => {
            q.extend(search_filter(search));
            return (q, by_ts(search.ascending));
        }
    }
    // Pinned messages are listed oldest first, as Rocket.Chat inserts them.
    (q, by_ts(*filter == MessageFilter::Pinned))
}

/// Any of several literal, case-insensitive substrings.
fn contains_any(texts: &[String]) -> Document {
    let alternatives: Vec<String> = texts.iter().map(|t| regex_escape(t)).collect();
    doc! { "$regex": alternatives.join("|"), "$options": "i" }
}

/// The conditions of a [`MessageSearch`] (what Rocket.Chat's query parser builds).
pub(crate) fn search_filter(search: &MessageSearch) -> Document {
    let mut q = doc! { "t": { "$ne": "rm" } };
    match (&search.text, &search.regex) {
        (Some(text), Some((pattern, flags))) => {
            q.insert(
                "$and",
                vec![
                    doc! { "msg": contains(text) },
                    doc! { "msg": { "$regex": pattern, "$options": flags } },
                ],
            );
        }
        (Some(text), None) => {
            q.insert("msg", contains(text));
        }
        (None, Some((pattern, flags))) => {
            q.insert("msg", doc! { "$regex": pattern, "$options": flags });
        }
        (None, None) => {}
    }
    if !search.from.is_empty() {
        q.insert("u.username", contains_any(&search.from));
    }
    if !search.mentions.is_empty() {
        q.insert("mentions.username", contains_any(&search.mentions));
    }
    if let Some(uid) = &search.starred_by {
        q.insert("starred._id", uid);
    }
    if search.pinned {
        q.insert("pinned", true);
    }
    if search.has_url {
        q.insert("urls.0", doc! { "$exists": true });
    }
    if search.has_location {
        q.insert("location", doc! { "$exists": true });
    }
    if let Some(label) = &search.label {
        q.insert("attachments.0.labels", contains(label));
    }
    if let Some(text) = &search.file_description {
        q.insert("attachments.description", contains(text));
    }
    if let Some(text) = &search.file_title {
        q.insert("attachments.title", contains(text));
    }
    let mut ts = Document::new();
    for (op, bound) in [("$gte", search.since), ("$lte", search.until), ("$lt", search.before)] {
        if let Some(bound) = bound {
            ts.insert(op, date(bound));
        }
    }
    if !ts.is_empty() {
        q.insert("ts", ts);
    }
    q
}

/// Thread roots (messages with a reply count) of `rid` matching `filter`, and their sort: most
/// recent reply (`tlm`) first.
pub(crate) fn threads_filter(rid: &str, filter: &ThreadFilter) -> (Document, Document) {
    let mut q =
        doc! { "rid": rid, "tcount": { "$ne": Bson::Null }, "t": { "$ne": "rm" }, NOT_HIDDEN: not_hidden() };
    if let Some(uid) = &filter.follower {
        q.insert("replies", uid);
    }
    if let Some(ids) = &filter.ids {
        q.insert("_id", doc! { "$in": ids });
    }
    if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
        q.insert("msg", contains(text));
    }
    (q, doc! { "tlm": -1, "ts": -1, "seq": -1 })
}

/// Thread roots of `rid` changed after `since`, oldest change first.
pub(crate) fn threads_changed_filter(rid: &str, since: Millis) -> (Document, Document) {
    (
        doc! {
            "rid": rid,
            "tcount": { "$ne": Bson::Null },
            "_updatedAt": { "$gt": date(since) },
            NOT_HIDDEN: not_hidden(),
        },
        doc! { "_updatedAt": 1 },
    )
}

/// The replies of thread `tmid`, oldest first.
pub(crate) fn thread_messages_filter(tmid: &str) -> (Document, Document) {
    (doc! { "tmid": tmid, NOT_HIDDEN: not_hidden() }, by_ts(true))
}

/// Replies of thread `tmid` changed after `since`, oldest change first.
pub(crate) fn thread_messages_changed_filter(tmid: &str, since: Millis) -> (Document, Document) {
    (
        doc! { "tmid": tmid, "_updatedAt": { "$gt": date(since) }, NOT_HIDDEN: not_hidden() },
        doc! { "_updatedAt": 1 },
    )
}

/// Removed thread roots of `rid` (their trash copy still has its reply count).
pub(crate) fn removed_threads_filter(rid: &str, since: Millis) -> (Document, Document) {
    let (mut q, sort) = removed_filter(TRASH_MESSAGE, "rid", rid, since, false);
    q.insert("tcount", doc! { "$exists": true });
    (q, sort)
}

/// Every visible message of `rid`.
pub(crate) fn room_messages_filter(rid: &str) -> Document {
    doc! { "rid": rid, NOT_HIDDEN: not_hidden() }
}

/// The hidden copies of message `id` (itself when hidden, its earlier versions), by `editedAt`.
pub(crate) fn hidden_messages_filter(id: &str) -> (Document, Document) {
    (doc! { NOT_HIDDEN: true, "$or": [{ "_id": id }, { "parent": id }] }, doc! { "editedAt": 1, "_id": 1 })
}

/// Discussions of room `prid` by `fname`.
pub(crate) fn discussions_filter(prid: &str) -> (Document, Document) {
    (doc! { "prid": prid }, doc! { "fname": 1, "_id": 1 })
}

/// Reports about message `mid`, oldest first.
pub(crate) fn reports_filter(mid: &str) -> (Document, Document) {
    (doc! { "message._id": mid }, doc! { "ts": 1 })
}

/// A message's reply count after one reply was removed (never below zero).
pub(crate) fn tcount_after_removal(root: &mut apogee_types::Message, now: Millis) {
    let count = root.extra.get("tcount").and_then(serde_json::Value::as_u64).unwrap_or(1);
    root.extra.insert("tcount".into(), count.saturating_sub(1).into());
    root.updated_at = now.max(root.updated_at);
}

/// Every index the store's queries need, by collection; created at start.
pub(crate) fn indexes() -> Vec<(&'static str, IndexModel)> {
    let plain = |keys: Document| IndexModel::builder().keys(keys).build();
    let with =
        |keys: Document, options: IndexOptions| IndexModel::builder().keys(keys).options(options).build();
    let unique_ci = |partial: Document| {
        IndexOptions::builder()
            .unique(true)
            .collation(case_insensitive())
            .partial_filter_expression(partial)
            .build()
    };
    vec![
        (USERS, with(doc! { "username": 1 }, unique_ci(doc! { "username": { "$exists": true } }))),
        (
            USERS,
            with(doc! { "emails.address": 1 }, unique_ci(doc! { "emails.address": { "$exists": true } })),
        ),
        (USERS, plain(doc! { "services.resume.loginTokens.hashedToken": 1 })),
        (USERS, plain(doc! { "roles": 1 })),
        (ROOMS, with(doc! { "name": 1 }, unique_ci(doc! { "name": { "$type": "string" } }))),
        (ROOMS, plain(doc! { "t": 1, "name": 1 })),
        (ROOMS, plain(doc! { "_updatedAt": 1 })),
        (ROOMS, plain(doc! { "prid": 1, "fname": 1 })),
        (SUBSCRIPTIONS, with(doc! { "rid": 1, "u._id": 1 }, IndexOptions::builder().unique(true).build())),
        (SUBSCRIPTIONS, plain(doc! { "u._id": 1, "_updatedAt": 1 })),
        (SUBSCRIPTIONS, plain(doc! { "rid": 1, "u.username": 1 })),
        (MESSAGES, plain(doc! { "rid": 1, "ts": 1 })),
        (MESSAGES, plain(doc! { "rid": 1, "seq": 1 })),
        (MESSAGES, plain(doc! { "rid": 1, "_updatedAt": 1 })),
        (MESSAGES, plain(doc! { "tmid": 1, "ts": 1 })),
        (MESSAGES, plain(doc! { "rid": 1, "tlm": 1 })),
        (MESSAGES, plain(doc! { "tmid": 1, "_updatedAt": 1 })),
        (MESSAGES, with(doc! { "parent": 1 }, IndexOptions::builder().sparse(true).build())),
        (REPORTS, plain(doc! { "message._id": 1, "ts": 1 })),
        (UPLOADS, plain(doc! { "rid": 1, "complete": 1, "uploadedAt": -1 })),
        (UPLOADS, with(doc! { "message_id": 1 }, IndexOptions::builder().sparse(true).build())),
        (UPLOADS, plain(doc! { "complete": 1, "uploadedAt": 1 })),
        (TRASH, plain(doc! { "__collection__": 1, "_deletedAt": 1 })),
        (TRASH, plain(doc! { "rid": 1, "__collection__": 1, "_deletedAt": 1 })),
        (TRASH, plain(doc! { "u._id": 1, "__collection__": 1, "_deletedAt": 1 })),
        (TRASH, plain(doc! { "tmid": 1, "__collection__": 1, "_deletedAt": 1 })),
    ]
}

/// A room's complete uploads, newest first, optionally by a case-insensitive literal substring
/// of the name.
pub(crate) fn room_uploads_query(rid: &str, name: Option<&str>) -> (Document, Document) {
    let mut filter = doc! { "rid": rid, "complete": true };
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        filter.insert("name", contains(name));
    }
    (filter, doc! { "uploadedAt": -1, "_id": 1 })
}

/// A room's complete images (not thumbnails), newest first, uploaded at or before `up_to`.
pub(crate) fn room_images_query(rid: &str, up_to: Option<Millis>) -> (Document, Document) {
    let mut filter = doc! { "rid": rid, "complete": true, "typeGroup": "image" };
    if let Some(up_to) = up_to {
        filter.insert("uploadedAt", doc! { "$lte": date(up_to) });
    }
    (filter, doc! { "uploadedAt": -1, "_id": 1 })
}

/// The uploads a message carries.
pub(crate) fn message_uploads_query(message_id: &str) -> (Document, Document) {
    (doc! { "message_id": message_id }, doc! { "_id": 1 })
}

/// Incomplete uploads older than `before`, oldest first.
pub(crate) fn stale_uploads_query(before: Millis) -> (Document, Document) {
    (doc! { "complete": false, "uploadedAt": { "$lt": date(before) } }, doc! { "uploadedAt": 1 })
}
