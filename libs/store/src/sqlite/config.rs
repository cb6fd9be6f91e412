use apogee_types::{Permission, Role, Setting};
use async_trait::async_trait;
use rusqlite::Connection;

use super::{SqliteStore, decode, encode, unavailable};
use crate::{ConfigStore, StoreResult};

fn all<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    table: &str,
    entity: &'static str,
) -> StoreResult<Vec<T>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT doc FROM {table} ORDER BY id")).map_err(unavailable)?;
    let docs = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    docs.iter().map(|d| decode(entity, d)).collect()
}

fn upsert(conn: &Connection, table: &str, id: &str, doc: &str) -> StoreResult<()> {
    conn.execute(
        &format!(
            "INSERT INTO {table} (id, doc) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc"
        ),
        [id, doc],
    )
    .map_err(unavailable)?;
    Ok(())
}

/// `(id, JSON)` of each item, encoded before the write so the writer thread only writes.
fn encoded<T: serde::Serialize>(
    entity: &'static str,
    items: &[T],
    id: impl Fn(&T) -> String,
) -> StoreResult<Vec<(String, String)>> {
    items.iter().map(|item| Ok((id(item), encode(entity, item)?))).collect()
}

#[async_trait]
impl ConfigStore for SqliteStore {
    async fn settings(&self) -> StoreResult<Vec<Setting>> {
        self.read(|conn| all(conn, "settings", "setting")).await
    }

    async fn upsert_settings(&self, settings: Vec<Setting>) -> StoreResult<()> {
        let docs = encoded("setting", &settings, |s| s.id.clone())?;
        self.write(move |conn| docs.iter().try_for_each(|(id, doc)| upsert(conn, "settings", id, doc))).await
    }

    async fn permissions(&self) -> StoreResult<Vec<Permission>> {
        self.read(|conn| all(conn, "permissions", "permission")).await
    }

    async fn upsert_permissions(&self, permissions: Vec<Permission>) -> StoreResult<()> {
        let docs = encoded("permission", &permissions, |p| p.id.clone())?;
        self.write(move |conn| docs.iter().try_for_each(|(id, doc)| upsert(conn, "permissions", id, doc)))
            .await
    }

    async fn roles(&self) -> StoreResult<Vec<Role>> {
        self.read(|conn| all(conn, "roles", "role")).await
    }

    async fn upsert_roles(&self, roles: Vec<Role>) -> StoreResult<()> {
        let docs = encoded("role", &roles, |r| r.id.clone())?;
        self.write(move |conn| docs.iter().try_for_each(|(id, doc)| upsert(conn, "roles", id, doc))).await
    }
}
