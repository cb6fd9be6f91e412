use apogee_types::{Millis, Page, PageRequest};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, conflict_or, decode, encode, like_pattern, limit, offset, unavailable};
use crate::{StoreError, StoreResult, Upload, UploadMutation, UploadStore};

const ENTITY: &str = "upload";

fn one(conn: &Connection, id: &str) -> StoreResult<Option<Upload>> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM uploads WHERE id = ?1")
        .map_err(unavailable)?
        .query_row([id], |row| row.get(0))
        .optional()
        .map_err(unavailable)?;
    doc.map(|d| decode(ENTITY, &d)).transpose()
}

fn write(conn: &Connection, upload: &Upload, insert: bool) -> StoreResult<()> {
    let doc = encode(ENTITY, upload)?;
    let args = params![
        upload.id,
        upload.rid,
        upload.user_id,
        upload.complete,
        upload.uploaded_at.0,
        upload.name.to_lowercase(),
        doc,
        upload.message_id
    ];
    if insert {
        conn.execute(
            "INSERT INTO uploads (id, rid, user_id, complete, uploaded_at, lname, doc, message_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            args,
        )
        .map_err(conflict_or(ENTITY, &upload.id))?;
    } else {
        conn.execute(
            "UPDATE uploads SET rid = ?2, user_id = ?3, complete = ?4, uploaded_at = ?5, lname = ?6, doc = ?7,
             message_id = ?8 WHERE id = ?1",
            args,
        )
        .map_err(unavailable)?;
    }
    Ok(())
}

fn docs(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<Vec<Upload>> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let rows = stmt
        .query_map(args, |row| row.get::<_, String>(0))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    rows.iter().map(|d| decode(ENTITY, d)).collect()
}

#[async_trait]
impl UploadStore for SqliteStore {
    async fn insert_upload(&self, upload: Upload) -> StoreResult<()> {
        self.write(move |conn| write(conn, &upload, true)).await
    }

    async fn upload_by_id(&self, id: &str) -> StoreResult<Option<Upload>> {
        let id = id.to_owned();
        self.read(move |conn| one(conn, &id)).await
    }

    async fn update_upload(&self, id: &str, mutation: UploadMutation) -> StoreResult<Upload> {
        let id = id.to_owned();
        self.write(move |conn| {
            let mut upload =
                one(conn, &id)?.ok_or_else(|| StoreError::NotFound { entity: ENTITY, id: id.clone() })?;
            mutation(&mut upload)?;
            upload.id = id;
            write(conn, &upload, false)?;
            Ok(upload)
        })
        .await
    }

    async fn delete_upload(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            match conn.execute("DELETE FROM uploads WHERE id = ?1", [&id]).map_err(unavailable)? {
                0 => Err(StoreError::NotFound { entity: ENTITY, id }),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn room_uploads(
        &self,
        rid: &str,
        name: Option<String>,
        page: PageRequest,
    ) -> StoreResult<Page<Upload>> {
        let rid = rid.to_owned();
        let pattern = like_pattern(&name.unwrap_or_default().to_lowercase());
        self.read(move |conn| {
            let total: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM uploads WHERE rid = ?1 AND complete = 1 AND lname LIKE ?2 ESCAPE '\\'",
                )
                .map_err(unavailable)?
                .query_row(params![rid, pattern], |row| row.get(0))
                .map_err(unavailable)?;
            let items = docs(
                conn,
                "SELECT doc FROM uploads WHERE rid = ?1 AND complete = 1 AND lname LIKE ?2 ESCAPE '\\'
                 ORDER BY uploaded_at DESC, id LIMIT ?3 OFFSET ?4",
                params![rid, pattern, limit(page.count), offset(page.offset)],
            )?;
            Ok(Page { items, offset: page.offset, total: total.try_into().unwrap_or(0) })
        })
        .await
    }

    async fn room_images(
        &self,
        rid: &str,
        up_to: Option<Millis>,
        page: PageRequest,
    ) -> StoreResult<Page<Upload>> {
        let rid = rid.to_owned();
        let up_to = up_to.map_or(i64::MAX, |m| m.0);
        // The index on (rid, complete, uploaded_at) narrows to the room; the type is in the doc.
        const WHERE: &str = "rid = ?1 AND complete = 1 AND uploaded_at <= ?2
             AND json_extract(doc, '$.extra.typeGroup') = 'image'";
        self.read(move |conn| {
            let total: i64 = conn
                .prepare_cached(&format!("SELECT COUNT(*) FROM uploads WHERE {WHERE}"))
                .map_err(unavailable)?
                .query_row(params![rid, up_to], |row| row.get(0))
                .map_err(unavailable)?;
            let items = docs(
                conn,
                &format!(
                    "SELECT doc FROM uploads WHERE {WHERE} ORDER BY uploaded_at DESC, id LIMIT ?3 OFFSET ?4"
                ),
                params![rid, up_to, limit(page.count), offset(page.offset)],
            )?;
            Ok(Page { items, offset: page.offset, total: total.try_into().unwrap_or(0) })
        })
        .await
    }

    async fn message_uploads(&self, message_id: &str) -> StoreResult<Vec<Upload>> {
        let mid = message_id.to_owned();
        self.read(move |conn| docs(conn, "SELECT doc FROM uploads WHERE message_id = ?1 ORDER BY id", [mid]))
            .await
    }

    async fn stale_uploads(&self, before: Millis, max: u64) -> StoreResult<Vec<Upload>> {
        self.read(move |conn| {
            docs(
                conn,
                "SELECT doc FROM uploads WHERE complete = 0 AND uploaded_at < ?1 ORDER BY uploaded_at LIMIT ?2",
                params![before.0, limit(Some(max))],
            )
        })
        .await
    }
}
