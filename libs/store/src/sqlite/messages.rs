use apogee_types::{Message, Millis, Page, PageRequest};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::rooms::{load_room, update_room_row as save_room};
use super::{SqliteStore, conflict_or, decode, encode, limit, offset, unavailable};
use crate::{
    HistoryQuery, MessageFilter, MessageMutation, MessageReport, MessageSearch, MessageStore, Removed,
    StoreError, StoreResult, ThreadFilter,
};

const ENTITY: &str = "message";

pub(super) fn insert_message(conn: &Connection, message: &Message) -> StoreResult<()> {
    let doc = encode(ENTITY, message)?;
    conn.execute(
        "INSERT INTO messages
            (id, rid, seq, ts, updated_at, uid, counts_unread, in_thread_only, doc, group_mention)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            message.id,
            message.rid,
            i64::try_from(message.seq).unwrap_or(i64::MAX),
            message.ts.0,
            message.updated_at.0,
            message.u.id,
            message.counts_as_unread(),
            message.tmid.is_some() && !message.tshow,
            doc,
            message.is_group_mention()
        ],
    )
    .map_err(conflict_or(ENTITY, &message.id))?;
    Ok(())
}

/// Stores a changed message over its row.
pub(super) fn rewrite_message(conn: &Connection, message: &Message) -> StoreResult<()> {
    let doc = encode(ENTITY, message)?;
    conn.execute(
        "UPDATE messages SET updated_at = ?2, counts_unread = ?3, in_thread_only = ?4, doc = ?5,
            group_mention = ?6 WHERE id = ?1",
        params![
            message.id,
            message.updated_at.0,
            message.counts_as_unread(),
            message.tmid.is_some() && !message.tshow,
            doc,
            message.is_group_mention()
        ],
    )
    .map_err(unavailable)?;
    Ok(())
}

pub(super) fn count_unread_in(conn: &Connection, rid: &str, uid: &str, after_seq: u64) -> StoreResult<u64> {
    let n: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM messages
             WHERE rid = ?1 AND seq > ?2 AND uid <> ?3 AND counts_unread = 1",
            params![rid, i64::try_from(after_seq).unwrap_or(i64::MAX), uid],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    Ok(n.try_into().unwrap_or(0))
}

/// `(unread, groupMentions)` of `uid` after `after_seq`, in one pass over the unread rows: a
/// group mention that names `uid` counts as a user mention instead (`Message::group_mention_for`).
pub(super) fn count_unread_and_group_in(
    conn: &Connection,
    rid: &str,
    uid: &str,
    after_seq: u64,
) -> StoreResult<(u64, u64)> {
    let (unread, group): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN group_mention = 1 THEN NOT EXISTS (
                    SELECT 1 FROM json_each(doc, '$.mentions') WHERE json_extract(value, '$._id') = ?3
                ) ELSE 0 END), 0)
             FROM messages WHERE rid = ?1 AND seq > ?2 AND uid <> ?3 AND counts_unread = 1",
            params![rid, i64::try_from(after_seq).unwrap_or(i64::MAX), uid],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(unavailable)?;
    Ok((unread.try_into().unwrap_or(0), group.try_into().unwrap_or(0)))
}

fn messages_from(conn: &Connection, sql: &str, args: &[rusqlite::types::Value]) -> StoreResult<Vec<Message>> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let docs = stmt
        .query_map(params_from_iter(args.iter()), |row| row.get::<_, String>(0))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    docs.iter().map(|d| decode(ENTITY, d)).collect()
}

pub(super) fn load_message(conn: &Connection, id: &str) -> StoreResult<Option<Message>> {
    let doc: Option<String> = conn
        .query_row("SELECT doc FROM messages WHERE id = ?1", [id], |row| row.get(0))
        .optional()
        .map_err(unavailable)?;
    doc.map(|d| decode(ENTITY, &d)).transpose()
}

/// Removals recorded in a trash `collection` for `scope` (a room or thread id) after `since`.
fn removed_in(conn: &Connection, collection: &str, scope: &str, since: Millis) -> StoreResult<Vec<Removed>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT id, deleted_at FROM trash WHERE collection = ?1 AND uid = ?2 AND deleted_at > ?3
             ORDER BY deleted_at",
        )
        .map_err(unavailable)?;
    stmt.query_map(params![collection, scope, since.0], |row| {
        Ok(Removed { id: row.get(0)?, deleted_at: Millis(row.get(1)?) })
    })
    .map_err(unavailable)?
    .collect::<Result<_, _>>()
    .map_err(unavailable)
}

/// `LIKE` pattern matching `text` anywhere, with `\\` as the escape character.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The trigram index needs three characters; shorter texts scan the room.
fn text_condition(text: &str, arg: usize) -> (String, rusqlite::types::Value) {
    if text.chars().count() >= 3 {
        (
            format!("rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?{arg})"),
            format!("\"{}\"", text.replace('"', "\"\"")).into(),
        )
    } else {
        (format!("json_extract(doc, '$.msg') LIKE ?{arg} ESCAPE '\\'"), like_pattern(text).into())
    }
}

/// Trigram matches (in every room) up to which a text search starts from the index's matches;
/// above it, the room is read newest first and each message tested, which stops as soon as a
/// page is full. A word in most messages would otherwise have its whole match list read and
/// sorted (seconds on a million messages); a rare one would have the whole room read.
const INDEX_DRIVEN_MAX: i64 = 2_000;

/// How a search's text condition is evaluated (see [`INDEX_DRIVEN_MAX`]).
#[derive(Clone, Copy, PartialEq)]
enum TextPlan {
    /// The trigram index's matches, each looked up (the room's index is not used).
    IndexDriven,
    /// Every message of the room, in page order, tested with `contains_folded`.
    RoomScan,
}

/// Picks the plan for a search text of three characters or more: counts its trigram matches,
/// stopping past [`INDEX_DRIVEN_MAX`].
fn text_plan(conn: &Connection, text: &str) -> StoreResult<TextPlan> {
    let matches: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT 1 FROM messages_fts WHERE messages_fts MATCH ?1 LIMIT ?2)",
            params![format!("\"{}\"", text.replace('"', "\"\"")), INDEX_DRIVEN_MAX + 1],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    Ok(if matches > INDEX_DRIVEN_MAX { TextPlan::RoomScan } else { TextPlan::IndexDriven })
}

/// The SQL condition (on `messages`) and its arguments, numbered from `?2`, for a
/// [`MessageFilter`].
fn filter_sql(filter: &MessageFilter, plan: Option<TextPlan>) -> (String, Vec<rusqlite::types::Value>) {
    const NOT_REMOVED: &str = "json_extract(doc, '$.t') IS NOT 'rm'";
    match filter {
        MessageFilter::Pinned => {
            (format!("json_extract(doc, '$.extra.pinned') = ?2 AND {NOT_REMOVED}"), vec![1.into()])
        }
        MessageFilter::StarredBy(uid) => (
            "EXISTS (SELECT 1 FROM json_each(doc, '$.extra.starred') WHERE json_extract(value, '$._id') = ?2)"
                .into(),
            vec![uid.clone().into()],
        ),
        MessageFilter::Mentioning(username) => (
            "EXISTS (SELECT 1 FROM json_each(doc, '$.mentions') WHERE json_extract(value, '$.username') = ?2)"
                .into(),
            vec![username.clone().into()],
        ),
        MessageFilter::Text(text) => {
            let (condition, arg) = text_condition(text, 2);
            (format!("{condition} AND {NOT_REMOVED}"), vec![arg])
        }
        MessageFilter::Discussions(text) => (
            "json_extract(doc, '$.extra.drid') IS NOT NULL AND json_extract(doc, '$.msg') LIKE ?2 ESCAPE '\\'"
                .into(),
            vec![like_pattern(text).into()],
        ),
        MessageFilter::Search(search) => search_sql(search, plan),
    }
}

/// Adds an argument; its number in the statement (`?1` is the room).
fn next(args: &mut Vec<rusqlite::types::Value>, value: rusqlite::types::Value) -> usize {
    args.push(value);
    args.len() + 1
}

/// `expr` contains any of `texts` (case-insensitive for ASCII, as SQLite's `LIKE`).
fn any_like(args: &mut Vec<rusqlite::types::Value>, expr: &str, texts: &[String]) -> String {
    let alternatives: Vec<String> = texts
        .iter()
        .map(|t| format!("{expr} LIKE ?{} ESCAPE '\\'", next(args, like_pattern(t).into())))
        .collect();
    format!("({})", alternatives.join(" OR "))
}

/// The conditions of a [`MessageSearch`], joined with `AND`; `plan` for a text of three
/// characters or more.
fn search_sql(search: &MessageSearch, plan: Option<TextPlan>) -> (String, Vec<rusqlite::types::Value>) {
    let mut conditions = vec!["json_extract(doc, '$.t') IS NOT 'rm'".to_owned()];
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(text) = &search.text {
        let arg = args.len() + 2;
        let (condition, value) = match plan {
            Some(TextPlan::RoomScan) => {
                (format!("contains_folded(json_extract(doc, '$.msg'), ?{arg})"), text.clone().into())
            }
            _ => text_condition(text, arg),
        };
        args.push(value);
        conditions.push(condition);
    }
    if let Some((pattern, flags)) = &search.regex {
        let a = next(&mut args, pattern.clone().into());
        let b = next(&mut args, flags.clone().into());
        conditions.push(format!("regexp_flags(?{a}, ?{b}, json_extract(doc, '$.msg'))"));
    }
    if !search.from.is_empty() {
        conditions.push(any_like(&mut args, "json_extract(doc, '$.u.username')", &search.from));
    }
    if !search.mentions.is_empty() {
        let any = any_like(&mut args, "json_extract(value, '$.username')", &search.mentions);
        conditions.push(format!("EXISTS (SELECT 1 FROM json_each(doc, '$.mentions') WHERE {any})"));
    }
    if let Some(label) = &search.label {
        let any = any_like(&mut args, "value", std::slice::from_ref(label));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM json_each(doc, '$.extra.attachments[0].labels') WHERE {any})"
        ));
    }
    for (field, text) in [("description", &search.file_description), ("title", &search.file_title)] {
        if let Some(text) = text {
            let any =
                any_like(&mut args, &format!("json_extract(value, '$.{field}')"), std::slice::from_ref(text));
            conditions
                .push(format!("EXISTS (SELECT 1 FROM json_each(doc, '$.extra.attachments') WHERE {any})"));
        }
    }
    if let Some(uid) = &search.starred_by {
        let a = next(&mut args, uid.clone().into());
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM json_each(doc, '$.extra.starred') WHERE json_extract(value, '$._id') = ?{a})"
        ));
    }
    if search.pinned {
        conditions.push("json_extract(doc, '$.extra.pinned') = 1".into());
    }
    if search.has_url {
        conditions.push("json_type(doc, '$.extra.urls[0]') IS NOT NULL".into());
    }
    if search.has_location {
        conditions.push("json_type(doc, '$.extra.location') IS NOT NULL".into());
    }
    for (op, bound) in [(">=", search.since), ("<=", search.until), ("<", search.before)] {
        if let Some(bound) = bound {
            let a = next(&mut args, bound.0.into());
            conditions.push(format!("ts {op} ?{a}"));
        }
    }
    (conditions.join(" AND "), args)
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn message_by_id(&self, id: &str) -> StoreResult<Option<Message>> {
        let id = id.to_owned();
        self.read(move |conn| load_message(conn, &id)).await
    }

    async fn history(&self, rid: &str, query: &HistoryQuery) -> StoreResult<Vec<Message>> {
        let (lt, gt) = if query.inclusive { ("<=", ">=") } else { ("<", ">") };
        let mut sql = format!("SELECT doc FROM messages WHERE rid = ?1 AND ts {lt} ?2");
        let mut args: Vec<rusqlite::types::Value> =
            vec![rid.to_owned().into(), query.latest.unwrap_or(Millis(i64::MAX)).0.into()];
        if let Some(oldest) = query.oldest {
            args.push(oldest.0.into());
            sql.push_str(&format!(" AND ts {gt} ?{}", args.len()));
        }
        if !query.show_thread_messages {
            sql.push_str(" AND in_thread_only = 0");
        }
        args.push(limit(query.count).into());
        args.push(offset(query.offset).into());
        let order = if query.oldest_first { "ASC" } else { "DESC" };
        sql.push_str(&format!(
            " ORDER BY ts {order}, seq {order} LIMIT ?{} OFFSET ?{}",
            args.len() - 1,
            args.len()
        ));
        self.read(move |conn| messages_from(conn, &sql, &args)).await
    }

    async fn list_messages(
        &self,
        rid: &str,
        page: PageRequest,
        ascending: bool,
    ) -> StoreResult<Page<Message>> {
        let rid = rid.to_owned();
        let order = if ascending { "ASC" } else { "DESC" };
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let total: i64 = conn
                .query_row("SELECT COUNT(*) FROM messages WHERE rid = ?1", [&rid], |row| row.get(0))
                .map_err(unavailable)?;
            let items = messages_from(
                conn,
                &format!("SELECT doc FROM messages WHERE rid = ?1 ORDER BY ts {order}, seq {order} LIMIT ?2 OFFSET ?3"),
                &[rid.into(), lim.into(), off.into()],
            )?;
            Ok(Page { items, offset: page.offset, total: total.try_into().unwrap_or(0) })
        })
        .await
    }

    async fn count_unread(&self, rid: &str, uid: &str, after_seq: u64) -> StoreResult<u64> {
        let (rid, uid) = (rid.to_owned(), uid.to_owned());
        self.read(move |conn| count_unread_in(conn, &rid, &uid, after_seq)).await
    }

    async fn first_unread(&self, rid: &str, uid: &str, after_seq: u64) -> StoreResult<Option<Message>> {
        let args: Vec<rusqlite::types::Value> = vec![
            rid.to_owned().into(),
            i64::try_from(after_seq).unwrap_or(i64::MAX).into(),
            uid.to_owned().into(),
        ];
        self.read(move |conn| {
            Ok(messages_from(
                conn,
                "SELECT doc FROM messages WHERE rid = ?1 AND seq > ?2 AND uid <> ?3 AND counts_unread = 1
                 ORDER BY seq LIMIT 1",
                &args,
            )?
            .into_iter()
            .next())
        })
        .await
    }

    async fn update_message(&self, id: &str, mutation: MessageMutation) -> StoreResult<Message> {
        let id = id.to_owned();
        self.write(move |conn| {
            let mut message = load_message(conn, &id)?
                .ok_or_else(|| StoreError::NotFound { entity: ENTITY, id: id.clone() })?;
            mutation(&mut message)?;
            rewrite_message(conn, &message)?;
            Ok(message)
        })
        .await
    }

    async fn messages_changed(
        &self,
        rid: &str,
        since: Millis,
        before: bool,
        count: Option<u64>,
    ) -> StoreResult<Vec<Message>> {
        let (cmp, order) = if before { ("<", "DESC") } else { (">", "ASC") };
        let sql = format!(
            "SELECT doc FROM messages WHERE rid = ?1 AND updated_at {cmp} ?2 ORDER BY updated_at {order}, seq {order} LIMIT ?3"
        );
        let args: Vec<rusqlite::types::Value> =
            vec![rid.to_owned().into(), since.0.into(), limit(count).into()];
        self.read(move |conn| messages_from(conn, &sql, &args)).await
    }

    async fn messages_removed(
        &self,
        rid: &str,
        since: Millis,
        before: bool,
        count: Option<u64>,
    ) -> StoreResult<Vec<Removed>> {
        let (cmp, order) = if before { ("<", "DESC") } else { (">", "ASC") };
        let sql = format!(
            "SELECT id, deleted_at FROM trash WHERE collection = 'messages' AND uid = ?1 AND deleted_at {cmp} ?2
             ORDER BY deleted_at {order} LIMIT ?3"
        );
        let args: Vec<rusqlite::types::Value> =
            vec![rid.to_owned().into(), since.0.into(), limit(count).into()];
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(unavailable)?;
            stmt.query_map(rusqlite::params_from_iter(args.iter()), |row| {
                Ok(Removed { id: row.get(0)?, deleted_at: Millis(row.get(1)?) })
            })
            .map_err(unavailable)?
            .collect::<Result<_, _>>()
            .map_err(unavailable)
        })
        .await
    }

    async fn delete_message(&self, id: &str) -> StoreResult<Message> {
        let id = id.to_owned();
        self.write(move |conn| {
            let message = load_message(conn, &id)?
                .ok_or_else(|| StoreError::NotFound { entity: ENTITY, id: id.clone() })?;
            conn.execute("DELETE FROM messages WHERE id = ?1", [&id]).map_err(unavailable)?;
            let now = Millis::now();
            let trash = |collection: &str, scope: &str| {
                conn.execute(
                    "INSERT INTO trash (collection, id, uid, deleted_at) VALUES (?1, ?2, ?3, ?4)",
                    params![collection, id, scope, now.0],
                )
                .map_err(unavailable)
            };
            trash("messages", &message.rid)?;
            // Thread syncs report removals per room (roots) and per thread (replies).
            if message.extra.contains_key("tcount") {
                trash("threads", &message.rid)?;
            }
            if let Some(tmid) = &message.tmid {
                trash("thread_messages", tmid)?;
                if let Some(mut root) = load_message(conn, tmid)? {
                    let count = root.extra.get("tcount").and_then(serde_json::Value::as_u64).unwrap_or(1);
                    root.extra.insert("tcount".into(), count.saturating_sub(1).into());
                    root.updated_at = now.max(root.updated_at);
                    rewrite_message(conn, &root)?;
                }
            }
            if let Some(mut room) = load_room(conn, &message.rid)?
                && room.last_message.as_ref().is_some_and(|m| m.id == id)
            {
                let newest = messages_from(
                    conn,
                    "SELECT doc FROM messages WHERE rid = ?1 ORDER BY ts DESC, seq DESC LIMIT 1",
                    &[message.rid.clone().into()],
                )?
                .into_iter()
                .next();
                room.lm = newest.as_ref().map(|m| m.ts);
                room.last_message = newest.map(Box::new);
                room.updated_at = Millis::now().max(room.updated_at);
                save_room(conn, &room)?;
            }
            Ok(message)
        })
        .await
    }

    async fn insert_hidden_message(&self, message: &Message) -> StoreResult<()> {
        let message = message.clone();
        self.write(move |conn| {
            let doc = encode(ENTITY, &message)?;
            let parent = message.extra.get("parent").and_then(serde_json::Value::as_str);
            conn.execute(
                "INSERT INTO hidden_messages (id, rid, parent, edited_at, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![message.id, message.rid, parent, message.edited_at.unwrap_or(message.ts).0, doc],
            )
            .map_err(conflict_or(ENTITY, &message.id))?;
            Ok(())
        })
        .await
    }

    async fn hidden_messages(&self, id: &str) -> StoreResult<Vec<Message>> {
        let id = id.to_owned();
        self.read(move |conn| {
            messages_from(
                conn,
                "SELECT doc FROM hidden_messages WHERE id = ?1 OR parent = ?1 ORDER BY edited_at, id",
                &[id.into()],
            )
        })
        .await
    }

    async fn threads(
        &self,
        rid: &str,
        filter: &ThreadFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Message>> {
        let mut condition = String::from(
            "rid = ?1 AND json_extract(doc, '$.extra.tcount') IS NOT NULL AND json_extract(doc, '$.t') IS NOT 'rm'",
        );
        let mut args: Vec<rusqlite::types::Value> = vec![rid.to_owned().into()];
        if let Some(uid) = &filter.follower {
            args.push(uid.clone().into());
            condition.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM json_each(doc, '$.extra.replies') WHERE value = ?{})",
                args.len()
            ));
        }
        if let Some(ids) = &filter.ids {
            args.push(serde_json::Value::from(ids.clone()).to_string().into());
            condition.push_str(&format!(" AND id IN (SELECT value FROM json_each(?{}))", args.len()));
        }
        if let Some(text) = filter.text.as_deref().filter(|t| !t.is_empty()) {
            args.push(like_pattern(text).into());
            condition.push_str(&format!(" AND json_extract(doc, '$.msg') LIKE ?{} ESCAPE '\\'", args.len()));
        }
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let total: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM messages WHERE {condition}"),
                    params_from_iter(args.iter()),
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            let n = args.len();
            let mut all = args;
            all.push(lim.into());
            all.push(off.into());
            let items = messages_from(
                conn,
                &format!(
                    "SELECT doc FROM messages WHERE {condition}
                     ORDER BY json_extract(doc, '$.extra.tlm.\"$date\"') DESC, ts DESC LIMIT ?{} OFFSET ?{}",
                    n + 1,
                    n + 2
                ),
                &all,
            )?;
            Ok(Page { items, offset: page.offset, total: total.try_into().unwrap_or(0) })
        })
        .await
    }

    async fn thread_messages(&self, tmid: &str, page: PageRequest) -> StoreResult<Page<Message>> {
        let tmid = tmid.to_owned();
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let total: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM messages WHERE json_extract(doc, '$.tmid') = ?1",
                    [&tmid],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            let items = messages_from(
                conn,
                "SELECT doc FROM messages WHERE json_extract(doc, '$.tmid') = ?1 ORDER BY ts, seq LIMIT ?2 OFFSET ?3",
                &[tmid.into(), lim.into(), off.into()],
            )?;
            Ok(Page { items, offset: page.offset, total: total.try_into().unwrap_or(0) })
        })
        .await
    }

    async fn threads_changed(&self, rid: &str, since: Millis) -> StoreResult<(Vec<Message>, Vec<Removed>)> {
        let rid = rid.to_owned();
        self.read(move |conn| {
            let update = messages_from(
                conn,
                "SELECT doc FROM messages WHERE rid = ?1 AND json_extract(doc, '$.extra.tcount') IS NOT NULL
                 AND updated_at > ?2 ORDER BY updated_at",
                &[rid.clone().into(), since.0.into()],
            )?;
            Ok((update, removed_in(conn, "threads", &rid, since)?))
        })
        .await
    }

    async fn thread_messages_changed(
        &self,
        tmid: &str,
        since: Millis,
    ) -> StoreResult<(Vec<Message>, Vec<Removed>)> {
        let tmid = tmid.to_owned();
        self.read(move |conn| {
            let update = messages_from(
                conn,
                "SELECT doc FROM messages WHERE json_extract(doc, '$.tmid') = ?1 AND updated_at > ?2
                 ORDER BY updated_at",
                &[tmid.clone().into(), since.0.into()],
            )?;
            Ok((update, removed_in(conn, "thread_messages", &tmid, since)?))
        })
        .await
    }

    async fn insert_report(&self, report: &MessageReport) -> StoreResult<()> {
        let doc = encode("report", report)?;
        let report = report.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO reports (id, mid, rid, uid, ts, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    report.id,
                    report.message.id,
                    report.message.rid,
                    report.reported_by.id,
                    report.ts.0,
                    doc
                ],
            )
            .map_err(conflict_or("report", &report.id))?;
            Ok(())
        })
        .await
    }

    async fn reports_of_message(&self, mid: &str) -> StoreResult<Vec<MessageReport>> {
        let mid = mid.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT doc FROM reports WHERE mid = ?1 ORDER BY ts")
                .map_err(unavailable)?;
            let docs = stmt
                .query_map([&mid], |row| row.get::<_, String>(0))
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            docs.iter().map(|d| decode("report", d)).collect()
        })
        .await
    }

    async fn removed_messages_page(
        &self,
        rid: &str,
        since: Millis,
        page: PageRequest,
    ) -> StoreResult<Page<Removed>> {
        let rid = rid.to_owned();
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let total: i64 = conn
                .query_row(
                    "SELECT COUNT(*) FROM trash WHERE collection = 'messages' AND uid = ?1 AND deleted_at > ?2",
                    params![rid, since.0],
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, deleted_at FROM trash WHERE collection = 'messages' AND uid = ?1 AND deleted_at > ?2
                     ORDER BY deleted_at LIMIT ?3 OFFSET ?4",
                )
                .map_err(unavailable)?;
            let items = stmt
                .query_map(params![rid, since.0, lim, off], |row| {
                    Ok(Removed { id: row.get(0)?, deleted_at: Millis(row.get(1)?) })
                })
                .map_err(unavailable)?
                .collect::<Result<_, _>>()
                .map_err(unavailable)?;
            Ok(Page { items, offset: page.offset, total: total.try_into().unwrap_or(0) })
        })
        .await
    }

    async fn find_messages(
        &self,
        rid: &str,
        filter: &MessageFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Message>> {
        let ascending = match filter {
            MessageFilter::Pinned => true,
            MessageFilter::Search(search) => search.ascending,
            _ => false,
        };
        let order = if ascending { "ASC" } else { "DESC" };
        let (lim, off) = (limit(page.count), offset(page.offset));
        let filter = filter.clone();
        let rid = rid.to_owned();
        self.read(move |conn| {
            let search_text = match &filter {
                MessageFilter::Search(search) => search.text.as_deref().filter(|t| t.chars().count() >= 3),
                _ => None,
            };
            let plan = search_text.map(|text| text_plan(conn, text)).transpose()?;
            let (condition, args) = filter_sql(&filter, plan);
            let mut args: Vec<rusqlite::types::Value> = std::iter::once(rid.into()).chain(args).collect();
            // Searches are not counted (no caller shows a total, and counting every match of a
            // common word is the cost the plans above avoid): their `total` is what this page
            // reached.
            let search = matches!(filter, MessageFilter::Search(_));
            let total = if search {
                None
            } else {
                let n: i64 = conn
                    .query_row(
                        &format!("SELECT COUNT(*) FROM messages WHERE rid = ?1 AND {condition}"),
                        params_from_iter(args.iter()),
                        |row| row.get(0),
                    )
                    .map_err(unavailable)?;
                Some(n.try_into().unwrap_or(0))
            };
            // `+rid` keeps SQLite from walking the room's index when a search text's matches
            // are few: they drive the query instead.
            let room = if plan == Some(TextPlan::IndexDriven) { "+rid = ?1" } else { "rid = ?1" };
            let n = args.len();
            args.extend([lim.into(), off.into()]);
            let items = messages_from(
                conn,
                &format!(
                    "SELECT doc FROM messages WHERE {room} AND {condition}
                     ORDER BY ts {order}, seq {order} LIMIT ?{} OFFSET ?{}",
                    n + 1,
                    n + 2
                ),
                &args,
            )?;
            let total = total.unwrap_or(page.offset + items.len() as u64);
            Ok(Page { items, offset: page.offset, total })
        })
        .await
    }
}
