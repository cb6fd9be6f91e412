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

#[async_trait]
impl ConfigStore for SqliteStore {
    async fn settings(&self) -> StoreResult<Vec<Setting>> {
        self.read(|conn| all(conn, "settings", "setting")).await
    }

    async fn upsert_setting(&self, setting: Setting) -> StoreResult<()> {
        let doc = encode("setting", &setting)?;
        self.write(move |conn| upsert(conn, "settings", &setting.id, &doc)).await
    }

    async fn permissions(&self) -> StoreResult<Vec<Permission>> {
        self.read(|conn| all(conn, "permissions", "permission")).await
    }

    async fn upsert_permission(&self, permission: Permission) -> StoreResult<()> {
        let doc = encode("permission", &permission)?;
        self.write(move |conn| upsert(conn, "permissions", &permission.id, &doc)).await
    }

    async fn roles(&self) -> StoreResult<Vec<Role>> {
        self.read(|conn| all(conn, "roles", "role")).await
    }

    async fn upsert_role(&self, role: Role) -> StoreResult<()> {
        let doc = encode("role", &role)?;
        self.write(move |conn| upsert(conn, "roles", &role.id, &doc)).await
    }
}
