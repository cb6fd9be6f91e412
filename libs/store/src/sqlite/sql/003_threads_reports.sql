-- 3: thread listings (replies by root id, roots of a room), discussions of a room and
-- reported messages; the search
-- index is rewritten only when a message's text changes, not on every reaction, pin or reply
-- count.
DROP TRIGGER messages_fts_update;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF doc ON messages
    WHEN json_extract(old.doc, '$.msg') IS NOT json_extract(new.doc, '$.msg') BEGIN
    UPDATE messages_fts SET msg = json_extract(new.doc, '$.msg') WHERE rowid = old.rowid;
END;
CREATE INDEX messages_tmid ON messages(json_extract(doc, '$.tmid'), ts);
CREATE INDEX messages_thread_roots ON messages(rid, updated_at)
    WHERE json_extract(doc, '$.extra.tcount') IS NOT NULL;
CREATE INDEX rooms_prid ON rooms(json_extract(doc, '$.prid'));
CREATE INDEX trash_scope ON trash(collection, uid, deleted_at);
CREATE TABLE reports (
    id TEXT PRIMARY KEY,
    mid TEXT NOT NULL,
    rid TEXT NOT NULL,
    uid TEXT NOT NULL,
    ts INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX reports_message ON reports(mid, ts);
