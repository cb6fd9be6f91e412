use apogee_types::{Millis, Page, PageRequest, Room, RoomType, Subscription};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::messages::{count_unread_and_group_in, insert_message, load_message, rewrite_message};
use super::{SqliteStore, conflict_or, decode, encode, like_pattern, limit, offset, unavailable};
use crate::{
    Removed, RenameOutcome, RoomFilter, RoomStore, RoomWrite, RoomWriteOutcome, StoreError, StoreResult,
    UserRename,
};

const ROOM: &str = "room";
const SUB: &str = "subscription";

pub(super) fn load_room(conn: &Connection, rid: &str) -> StoreResult<Option<Room>> {
    let doc: Option<String> = conn
        .query_row("SELECT doc FROM rooms WHERE id = ?1", [rid], |row| row.get(0))
        .optional()
        .map_err(unavailable)?;
    doc.map(|d| decode(ROOM, &d)).transpose()
}

pub(super) fn update_room_row(conn: &Connection, room: &Room) -> StoreResult<()> {
    save_room(conn, room, false)
}

fn save_room(conn: &Connection, room: &Room, insert: bool) -> StoreResult<()> {
    let doc = encode(ROOM, room)?;
    let sql = if insert {
        "INSERT INTO rooms (id, t, name, is_default, updated_at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    } else {
        "UPDATE rooms SET t = ?2, name = ?3, is_default = ?4, updated_at = ?5, doc = ?6 WHERE id = ?1"
    };
    let key = room.name.clone().unwrap_or_else(|| room.id.clone());
    conn.execute(sql, params![room.id, room.t.as_str(), room.name, room.default, room.updated_at.0, doc])
        .map_err(conflict_or(ROOM, &key))?;
    Ok(())
}

fn load_subscription(conn: &Connection, rid: &str, uid: &str) -> StoreResult<Option<Subscription>> {
    let doc: Option<String> = conn
        .query_row("SELECT doc FROM subscriptions WHERE rid = ?1 AND uid = ?2", [rid, uid], |row| row.get(0))
        .optional()
        .map_err(unavailable)?;
    doc.map(|d| with_unread(conn, decode(SUB, &d)?)).transpose()
}

fn save_subscription(conn: &Connection, sub: &Subscription, insert: bool) -> StoreResult<()> {
    let doc = encode(SUB, sub)?;
    let sql = if insert {
        "INSERT INTO subscriptions (id, rid, uid, username, updated_at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    } else {
        "UPDATE subscriptions SET rid = ?2, uid = ?3, username = ?4, updated_at = ?5, doc = ?6 WHERE id = ?1"
    };
    conn.execute(sql, params![sub.id, sub.rid, sub.u.id, sub.u.username, sub.updated_at.0, doc])
        .map_err(conflict_or(SUB, &format!("{}/{}", sub.rid, sub.u.id)))?;
    Ok(())
}

fn with_unread(conn: &Connection, mut sub: Subscription) -> StoreResult<Subscription> {
    (sub.unread, sub.group_mentions) =
        count_unread_and_group_in(conn, &sub.rid, &sub.u.id, sub.last_read_seq)?;
    Ok(sub)
}

fn docs(conn: &Connection, sql: &str, args: &[rusqlite::types::Value]) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    stmt.query_map(params_from_iter(args.iter()), |row| row.get::<_, String>(0))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)
}

fn count(conn: &Connection, sql: &str, args: &[rusqlite::types::Value]) -> StoreResult<u64> {
    let n: i64 = conn.query_row(sql, params_from_iter(args.iter()), |row| row.get(0)).map_err(unavailable)?;
    Ok(n.try_into().unwrap_or(0))
}

fn trash(conn: &Connection, collection: &str, id: &str, uid: Option<&str>, at: Millis) -> StoreResult<()> {
    conn.execute(
        "INSERT INTO trash (collection, id, uid, deleted_at) VALUES (?1, ?2, ?3, ?4)",
        params![collection, id, uid, at.0],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// Candidates are found by the text of their documents (the quoted old username, the user's
/// id) and decided by [`UserRename`]; a rename is rare enough for a scan, and adds no index to
/// every message write.
/// Messages a rename reads at once.
const RENAME_BATCH: i64 = 500;

fn apply_rename(conn: &Connection, rename: &UserRename) -> StoreResult<RenameOutcome> {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let (old, uid) = (quoted(&rename.old_username), quoted(&rename.user_id));
    let mut outcome = RenameOutcome::default();
    if rename.renames_username() {
        // A prolific user's messages are read a batch at a time (by rowid, which a rewrite
        // keeps), so memory stays bounded whatever they wrote.
        let mut stmt = conn
            .prepare_cached(
                "SELECT rowid, doc FROM messages WHERE (uid = ?1 OR instr(doc, ?2) > 0) AND rowid > ?3
                 ORDER BY rowid LIMIT ?4",
            )
            .map_err(unavailable)?;
        let mut after = 0i64;
        loop {
            let batch = stmt
                .query_map(params![rename.user_id, old, after, RENAME_BATCH], |row| {
                    Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let Some((last, _)) = batch.last() else { break };
            after = *last;
            for (_, doc) in &batch {
                let mut message: apogee_types::Message = decode("message", doc)?;
                if rename.apply_to_message(&mut message) {
                    rewrite_message(conn, &message)?;
                }
            }
        }
        let sql = "SELECT doc FROM rooms WHERE instr(doc, ?1) > 0 OR instr(doc, ?2) > 0";
        for doc in docs(conn, sql, &[old.clone().into(), uid.into()])? {
            let mut room: Room = decode(ROOM, &doc)?;
            if rename.apply_to_room(&mut room) {
                update_room_row(conn, &room)?;
                outcome.rooms.push(room);
            }
        }
    }
    let sql = "SELECT doc FROM subscriptions WHERE uid = ?1 OR instr(doc, ?2) > 0";
    for doc in docs(conn, sql, &[rename.user_id.clone().into(), old.into()])? {
        let mut sub: Subscription = decode(SUB, &doc)?;
        if rename.apply_to_subscription(&mut sub) {
            save_subscription(conn, &sub, false)?;
            outcome.subscriptions.push(with_unread(conn, sub)?);
        }
    }
    Ok(outcome)
}

fn apply_room_write(conn: &Connection, write: RoomWrite) -> StoreResult<RoomWriteOutcome> {
    let now = Millis::now();
    let RoomWrite {
        rid,
        create,
        mutate,
        messages,
        update_messages,
        add_subscriptions,
        update_subscriptions,
        remove_subscriptions,
        delete,
        keep_last_message,
    } = write;
    let is_new = create.is_some();
    let mut room = match create {
        Some(room) => room,
        None => {
            load_room(conn, &rid)?.ok_or_else(|| StoreError::NotFound { entity: ROOM, id: rid.clone() })?
        }
    };
    if delete {
        let subs: Vec<(String, String)> = {
            let mut stmt = conn
                .prepare_cached("SELECT id, uid FROM subscriptions WHERE rid = ?1")
                .map_err(unavailable)?;
            stmt.query_map([&rid], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(unavailable)?
                .collect::<Result<_, _>>()
                .map_err(unavailable)?
        };
        for (id, uid) in &subs {
            trash(conn, "subscriptions", id, Some(uid), now)?;
        }
        trash(conn, "rooms", &rid, None, now)?;
        // Subscriptions and messages go with the room (ON DELETE CASCADE).
        conn.execute("DELETE FROM rooms WHERE id = ?1", [&rid]).map_err(unavailable)?;
        return Ok(RoomWriteOutcome::default());
    }
    // Only joins and leaves change the member count: recounting on every message would cost
    // one index walk over the room's members per message.
    let membership_changed = is_new || !add_subscriptions.is_empty() || !remove_subscriptions.is_empty();
    let touches_room = is_new
        || mutate.is_some()
        || !messages.is_empty()
        || !add_subscriptions.is_empty()
        || !remove_subscriptions.is_empty();
    if let Some(mutate) = mutate {
        mutate(&mut room)?;
    }
    let mut appended = Vec::with_capacity(messages.len());
    for mut message in messages {
        room.msgs += 1;
        message.seq = room.msgs;
        message.rid = rid.clone();
        if !keep_last_message {
            room.lm = Some(message.ts);
            room.last_message = Some(Box::new(message.clone()));
        }
        appended.push(message);
    }
    if touches_room {
        room.updated_at = room.updated_at.max(now);
        save_room(conn, &room, is_new)?;
    }
    for message in &appended {
        insert_message(conn, message)?;
    }
    let mut updated_messages = Vec::with_capacity(update_messages.len());
    for (id, mutate) in update_messages {
        let mut message = load_message(conn, &id)?
            .filter(|m| m.rid == rid)
            .ok_or_else(|| StoreError::NotFound { entity: "message", id: id.clone() })?;
        mutate(&mut message)?;
        rewrite_message(conn, &message)?;
        updated_messages.push(message);
    }
    let mut subscriptions = Vec::new();
    for mut sub in add_subscriptions {
        sub.rid = rid.clone();
        save_subscription(conn, &sub, true)?;
        subscriptions.push(sub);
    }
    for (uid, mutate) in update_subscriptions {
        let position = subscriptions.iter().position(|s| s.u.id == uid);
        let existing = match position {
            Some(i) => Some(subscriptions.remove(i)),
            None => load_subscription(conn, &rid, &uid)?,
        };
        let Some(mut sub) = existing else { continue };
        mutate(&mut sub, &room);
        sub.updated_at = sub.updated_at.max(now);
        save_subscription(conn, &sub, false)?;
        subscriptions.push(sub);
    }
    for uid in &remove_subscriptions {
        let id: Option<String> = conn
            .query_row("SELECT id FROM subscriptions WHERE rid = ?1 AND uid = ?2", [&rid, uid], |row| {
                row.get(0)
            })
            .optional()
            .map_err(unavailable)?;
        if let Some(id) = id {
            conn.execute("DELETE FROM subscriptions WHERE id = ?1", [&id]).map_err(unavailable)?;
            trash(conn, "subscriptions", &id, Some(uid), now)?;
        }
    }
    if membership_changed {
        let members =
            count(conn, "SELECT COUNT(*) FROM subscriptions WHERE rid = ?1", &[rid.clone().into()])?;
        if members != room.users_count {
            room.users_count = members;
            save_room(conn, &room, false)?;
        }
    }
    let subscriptions =
        subscriptions.into_iter().map(|s| with_unread(conn, s)).collect::<StoreResult<Vec<_>>>()?;
    Ok(RoomWriteOutcome { room: Some(room), messages: appended, updated_messages, subscriptions })
}

fn removed(conn: &Connection, sql: &str, args: &[rusqlite::types::Value]) -> StoreResult<Vec<Removed>> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    stmt.query_map(params_from_iter(args.iter()), |row| {
        Ok(Removed { id: row.get(0)?, deleted_at: Millis(row.get(1)?) })
    })
    .map_err(unavailable)?
    .collect::<Result<_, _>>()
    .map_err(unavailable)
}

#[async_trait]
impl RoomStore for SqliteStore {
    async fn write_room(&self, write: RoomWrite) -> StoreResult<RoomWriteOutcome> {
        self.write(move |conn| apply_room_write(conn, write)).await
    }

    async fn room_by_id(&self, id: &str) -> StoreResult<Option<Room>> {
        let id = id.to_owned();
        self.read(move |conn| load_room(conn, &id)).await
    }

    async fn room_by_name(&self, name: &str) -> StoreResult<Option<Room>> {
        let name = name.to_owned();
        self.read(move |conn| {
            let doc: Option<String> = conn
                .query_row("SELECT doc FROM rooms WHERE name = ?1", [&name], |row| row.get(0))
                .optional()
                .map_err(unavailable)?;
            doc.map(|d| decode(ROOM, &d)).transpose()
        })
        .await
    }

    async fn list_rooms(&self, filter: &RoomFilter, page: PageRequest) -> StoreResult<Page<Room>> {
        let mut clauses = vec!["1 = 1".to_owned()];
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if !filter.types.is_empty() {
            let marks: Vec<String> = filter
                .types
                .iter()
                .map(|t| {
                    args.push(t.as_str().to_owned().into());
                    format!("?{}", args.len())
                })
                .collect();
            clauses.push(format!("t IN ({})", marks.join(",")));
        }
        if let Some(text) = &filter.text {
            args.push(like_pattern(text).into());
            clauses.push(format!("name LIKE ?{} ESCAPE '\\'", args.len()));
        }
        if filter.default_only {
            clauses.push("is_default = 1".into());
        }
        let where_sql = clauses.join(" AND ");
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let total = count(conn, &format!("SELECT COUNT(*) FROM rooms WHERE {where_sql}"), &args)?;
            let n = args.len();
            let mut page_args = args;
            page_args.push(lim.into());
            page_args.push(off.into());
            let sql = format!(
                "SELECT doc FROM rooms WHERE {where_sql} ORDER BY name LIMIT ?{} OFFSET ?{}",
                n + 1,
                n + 2
            );
            let items = docs(conn, &sql, &page_args)?
                .iter()
                .map(|d| decode(ROOM, d))
                .collect::<StoreResult<Vec<Room>>>()?;
            Ok(Page { items, offset: page.offset, total })
        })
        .await
    }

    async fn rooms_of_user(
        &self,
        uid: &str,
        types: &[RoomType],
        page: PageRequest,
    ) -> StoreResult<Page<Room>> {
        let mut args: Vec<rusqlite::types::Value> = vec![uid.to_owned().into()];
        let type_clause = if types.is_empty() {
            String::new()
        } else {
            let marks: Vec<String> = types
                .iter()
                .map(|t| {
                    args.push(t.as_str().to_owned().into());
                    format!("?{}", args.len())
                })
                .collect();
            format!("AND r.t IN ({})", marks.join(","))
        };
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let from =
                format!("FROM rooms r JOIN subscriptions s ON s.rid = r.id WHERE s.uid = ?1 {type_clause}");
            let total = count(conn, &format!("SELECT COUNT(*) {from}"), &args)?;
            let n = args.len();
            let mut page_args = args;
            page_args.push(lim.into());
            page_args.push(off.into());
            let sql = format!("SELECT r.doc {from} ORDER BY r.name, r.id LIMIT ?{} OFFSET ?{}", n + 1, n + 2);
            let items = docs(conn, &sql, &page_args)?
                .iter()
                .map(|d| decode(ROOM, d))
                .collect::<StoreResult<Vec<Room>>>()?;
            Ok(Page { items, offset: page.offset, total })
        })
        .await
    }

    async fn rooms_of_user_updated_since(&self, uid: &str, since: Option<Millis>) -> StoreResult<Vec<Room>> {
        let args: Vec<rusqlite::types::Value> =
            vec![uid.to_owned().into(), since.map_or(i64::MIN, |s| s.0).into()];
        self.read(move |conn| {
            docs(
                conn,
                "SELECT r.doc FROM rooms r JOIN subscriptions s ON s.rid = r.id
                 WHERE s.uid = ?1 AND r.updated_at > ?2 ORDER BY r.updated_at",
                &args,
            )?
            .iter()
            .map(|d| decode(ROOM, d))
            .collect()
        })
        .await
    }

    async fn removed_rooms_since(&self, since: Millis) -> StoreResult<Vec<Removed>> {
        self.read(move |conn| {
            removed(
                conn,
                "SELECT id, deleted_at FROM trash WHERE collection = 'rooms' AND deleted_at > ?1",
                &[since.0.into()],
            )
        })
        .await
    }

    async fn subscription(&self, rid: &str, uid: &str) -> StoreResult<Option<Subscription>> {
        let (rid, uid) = (rid.to_owned(), uid.to_owned());
        self.read(move |conn| load_subscription(conn, &rid, &uid)).await
    }

    async fn subscriptions_of_user(
        &self,
        uid: &str,
        since: Option<Millis>,
    ) -> StoreResult<Vec<Subscription>> {
        let args: Vec<rusqlite::types::Value> =
            vec![uid.to_owned().into(), since.map_or(i64::MIN, |s| s.0).into()];
        self.read(move |conn| {
            // A new message changes a subscription's unread count without writing it: the room's
            // `updated_at` stands in for it.
            docs(
                conn,
                "SELECT s.doc FROM subscriptions s JOIN rooms r ON r.id = s.rid
                 WHERE s.uid = ?1 AND (s.updated_at > ?2 OR r.updated_at > ?2) ORDER BY s.updated_at",
                &args,
            )?
            .iter()
            .map(|d| with_unread(conn, decode(SUB, d)?))
            .collect()
        })
        .await
    }

    async fn removed_subscriptions_since(&self, uid: &str, since: Millis) -> StoreResult<Vec<Removed>> {
        let args: Vec<rusqlite::types::Value> = vec![uid.to_owned().into(), since.0.into()];
        self.read(move |conn| {
            removed(
                conn,
                "SELECT id, deleted_at FROM trash
                 WHERE collection = 'subscriptions' AND uid = ?1 AND deleted_at > ?2",
                &args,
            )
        })
        .await
    }

    async fn subscriptions_of_room(&self, rid: &str, page: PageRequest) -> StoreResult<Page<Subscription>> {
        let rid = rid.to_owned();
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let total =
                count(conn, "SELECT COUNT(*) FROM subscriptions WHERE rid = ?1", &[rid.clone().into()])?;
            let items = docs(
                conn,
                "SELECT doc FROM subscriptions WHERE rid = ?1 ORDER BY username LIMIT ?2 OFFSET ?3",
                &[rid.into(), lim.into(), off.into()],
            )?
            .iter()
            .map(|d| decode(SUB, d))
            .collect::<StoreResult<Vec<Subscription>>>()?;
            Ok(Page { items, offset: page.offset, total })
        })
        .await
    }

    async fn discussions_of_room(&self, prid: &str, page: PageRequest) -> StoreResult<Page<Room>> {
        let prid = prid.to_owned();
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let total = count(
                conn,
                "SELECT COUNT(*) FROM rooms WHERE json_extract(doc, '$.prid') = ?1",
                &[prid.clone().into()],
            )?;
            let items = docs(
                conn,
                "SELECT doc FROM rooms WHERE json_extract(doc, '$.prid') = ?1
                 ORDER BY json_extract(doc, '$.fname'), id LIMIT ?2 OFFSET ?3",
                &[prid.into(), lim.into(), off.into()],
            )?
            .iter()
            .map(|d| decode(ROOM, d))
            .collect::<StoreResult<Vec<Room>>>()?;
            Ok(Page { items, offset: page.offset, total })
        })
        .await
    }

    async fn rename_user(&self, rename: &UserRename) -> StoreResult<RenameOutcome> {
        let rename = rename.clone();
        self.write(move |conn| apply_rename(conn, &rename)).await
    }
}
