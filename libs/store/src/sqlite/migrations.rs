//! Schema migrations, applied in order at start; `user_version` records how far a file got.
//! Documents are JSON in `doc`; the columns beside them are what queries filter and sort on.

use rusqlite::Connection;

use crate::StoreResult;
use crate::sqlite::unavailable;

const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE users (
        id TEXT PRIMARY KEY,
        username TEXT NOT NULL UNIQUE COLLATE NOCASE,
        email TEXT UNIQUE COLLATE NOCASE,
        name TEXT,
        active INTEGER NOT NULL,
        doc TEXT NOT NULL
     );
     CREATE TABLE login_tokens (
        hashed_token TEXT PRIMARY KEY,
        user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        name TEXT
     );
     CREATE INDEX login_tokens_user ON login_tokens(user_id, created_at);
     CREATE TABLE rooms (
        id TEXT PRIMARY KEY,
        t TEXT NOT NULL,
        name TEXT UNIQUE COLLATE NOCASE,
        is_default INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        doc TEXT NOT NULL
     );
     CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY,
        rid TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        uid TEXT NOT NULL,
        username TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        doc TEXT NOT NULL,
        UNIQUE (rid, uid)
     );
     CREATE INDEX subscriptions_user ON subscriptions(uid);
     CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        rid TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        ts INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        uid TEXT NOT NULL,
        counts_unread INTEGER NOT NULL,
        in_thread_only INTEGER NOT NULL,
        doc TEXT NOT NULL
     );
     CREATE INDEX messages_room_ts ON messages(rid, ts);
     CREATE INDEX messages_room_seq ON messages(rid, seq);
     CREATE INDEX messages_room_updated ON messages(rid, updated_at);
     CREATE TABLE trash (
        collection TEXT NOT NULL,
        id TEXT NOT NULL,
        uid TEXT,
        deleted_at INTEGER NOT NULL
     );
     CREATE INDEX trash_lookup ON trash(collection, deleted_at);
     CREATE TABLE settings (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE permissions (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
     CREATE TABLE roles (id TEXT PRIMARY KEY, doc TEXT NOT NULL);",
    // 2: full-text search over message text (trigram: substrings and CJK), kept in step with
    // `messages` by triggers; the FTS rowid is the message's rowid.
    "CREATE VIRTUAL TABLE messages_fts USING fts5(msg, tokenize = 'trigram');
     INSERT INTO messages_fts (rowid, msg) SELECT rowid, json_extract(doc, '$.msg') FROM messages;
     CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, msg) VALUES (new.rowid, json_extract(new.doc, '$.msg'));
     END;
     CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        DELETE FROM messages_fts WHERE rowid = old.rowid;
     END;
     CREATE TRIGGER messages_fts_update AFTER UPDATE OF doc ON messages BEGIN
        UPDATE messages_fts SET msg = json_extract(new.doc, '$.msg') WHERE rowid = old.rowid;
     END;",
    // 3: kept in its own file (see its header).
    include_str!("sql/003_threads_reports.sql"),
    // 4: uploads (the files service's records; the bytes are in the blob store).
    "CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        rid TEXT,
        user_id TEXT NOT NULL,
        complete INTEGER NOT NULL,
        uploaded_at INTEGER NOT NULL,
        lname TEXT NOT NULL,
        doc TEXT NOT NULL,
        message_id TEXT
     );
     CREATE INDEX uploads_message ON uploads(message_id) WHERE message_id IS NOT NULL;
     CREATE INDEX uploads_room ON uploads(rid, complete, uploaded_at);
     CREATE INDEX uploads_stale ON uploads(complete, uploaded_at);",
    // 5: personal access tokens: what their list shows, and one name per user.
    "ALTER TABLE login_tokens ADD COLUMN last_token_part TEXT;
     ALTER TABLE login_tokens ADD COLUMN bypass_two_factor INTEGER NOT NULL DEFAULT 0;
     CREATE UNIQUE INDEX login_tokens_user_name ON login_tokens(user_id, name) WHERE name IS NOT NULL;",
    // 6: teams (see its header).
    include_str!("sql/006_teams.sql"),
    // 7: hidden copies of messages (Message_KeepHistory), apart from `messages` so that no read
    // of a room can return them.
    "CREATE TABLE hidden_messages (
        id TEXT PRIMARY KEY,
        rid TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
        parent TEXT,
        edited_at INTEGER NOT NULL,
        doc TEXT NOT NULL
     );
     CREATE INDEX hidden_messages_parent ON hidden_messages(parent, edited_at);",
    // 8: integrations (incoming webhooks); targets stay in the document's `channel` array.
    "CREATE TABLE integrations (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        created_by TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        doc TEXT NOT NULL
     );
     CREATE INDEX integrations_created ON integrations(created_at);",
    // 9: `@all` / `@here` messages shown in the room, so a subscription's `groupMentions` is
    // derived on read like `unread` (`Message::is_group_mention`).
    "ALTER TABLE messages ADD COLUMN group_mention INTEGER NOT NULL DEFAULT 0;
     UPDATE messages SET group_mention = 1
      WHERE counts_unread = 1
        AND EXISTS (SELECT 1 FROM json_each(doc, '$.mentions')
                     WHERE json_extract(value, '$._id') IN ('all', 'here'));",
];

pub(super) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let current: usize = conn
        .query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
        .map_err(unavailable)?
        .try_into()
        .unwrap_or(0);
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction().map_err(unavailable)?;
        tx.execute_batch(sql).map_err(unavailable)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", index + 1)).map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        tracing::info!(version = index + 1, "applied sqlite migration");
    }
    Ok(())
}
