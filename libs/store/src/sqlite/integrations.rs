use apogee_types::{Integration, Page, PageRequest};
use async_trait::async_trait;
use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::{SqliteStore, conflict_or, decode, encode, limit, offset, unavailable};
use crate::{IntegrationFilter, IntegrationMutation, IntegrationStore, StoreError, StoreResult};

const ENTITY: &str = "integration";

fn one(conn: &Connection, id: &str) -> StoreResult<Option<Integration>> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM integrations WHERE id = ?1")
        .map_err(unavailable)?
        .query_row([id], |row| row.get(0))
        .optional()
        .map_err(unavailable)?;
    doc.map(|d| decode(ENTITY, &d)).transpose()
}

/// The WHERE clause of `filter`, its arguments appended to `args`.
fn where_clause(filter: &IntegrationFilter, args: &mut Vec<Sql>) -> String {
    let mark = |v: &str, args: &mut Vec<Sql>| {
        args.push(Sql::Text(v.to_owned()));
        format!("?{}", args.len())
    };
    let mut any = Vec::new();
    if !filter.kinds.is_empty() {
        let marks: Vec<String> = filter.kinds.iter().map(|k| mark(k, args)).collect();
        any.push(format!("kind IN ({})", marks.join(",")));
    }
    if !filter.own_kinds.is_empty() {
        let marks: Vec<String> = filter.own_kinds.iter().map(|k| mark(k, args)).collect();
        let own = mark(&filter.own_user, args);
        any.push(format!("(kind IN ({}) AND created_by = {own})", marks.join(",")));
    }
    let mut clause = format!("({})", any.join(" OR "));
    if let Some(channels) = &filter.channels {
        let marks: Vec<String> = channels.iter().map(|c| mark(c, args)).collect();
        clause.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM json_each(doc, '$.channel') WHERE value IN ({}))",
            marks.join(",")
        ));
    }
    clause
}

#[async_trait]
impl IntegrationStore for SqliteStore {
    async fn insert_integration(&self, integration: Integration) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO integrations (id, kind, created_by, created_at, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    integration.id,
                    integration.kind,
                    integration.created_by.id,
                    integration.created_at.0,
                    encode(ENTITY, &integration)?
                ],
            )
            .map_err(conflict_or(ENTITY, &integration.id))?;
            Ok(())
        })
        .await
    }

    async fn integration_by_id(&self, id: &str) -> StoreResult<Option<Integration>> {
        let id = id.to_owned();
        self.read(move |conn| one(conn, &id)).await
    }

    async fn update_integration(&self, id: &str, mutation: IntegrationMutation) -> StoreResult<Integration> {
        let id = id.to_owned();
        self.write(move |conn| {
            let mut integration =
                one(conn, &id)?.ok_or_else(|| StoreError::NotFound { entity: ENTITY, id: id.clone() })?;
            mutation(&mut integration)?;
            integration.id = id;
            conn.execute(
                "UPDATE integrations SET kind = ?2, created_by = ?3, created_at = ?4, doc = ?5 WHERE id = ?1",
                params![
                    integration.id,
                    integration.kind,
                    integration.created_by.id,
                    integration.created_at.0,
                    encode(ENTITY, &integration)?
                ],
            )
            .map_err(unavailable)?;
            Ok(integration)
        })
        .await
    }

    async fn delete_integration(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            let n = conn.execute("DELETE FROM integrations WHERE id = ?1", [&id]).map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::NotFound { entity: ENTITY, id });
            }
            Ok(())
        })
        .await
    }

    async fn list_integrations(
        &self,
        filter: &IntegrationFilter,
        page: PageRequest,
    ) -> StoreResult<Page<Integration>> {
        if filter.matches_nothing() {
            return Ok(Page { items: Vec::new(), offset: page.offset, total: 0 });
        }
        let filter = filter.clone();
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let mut args = Vec::new();
            let clause = where_clause(&filter, &mut args);
            let total: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM integrations WHERE {clause}"),
                    params_from_iter(&args),
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            let order = if filter.newest_first { "DESC" } else { "ASC" };
            let n = args.len();
            args.push(Sql::Integer(lim));
            args.push(Sql::Integer(off));
            let sql = format!(
                "SELECT doc FROM integrations WHERE {clause} ORDER BY created_at {order}, id {order}
                 LIMIT ?{} OFFSET ?{}",
                n + 1,
                n + 2
            );
            let mut stmt = conn.prepare(&sql).map_err(unavailable)?;
            let docs = stmt
                .query_map(params_from_iter(&args), |row| row.get::<_, String>(0))
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let items = docs.iter().map(|d| decode(ENTITY, d)).collect::<StoreResult<Vec<_>>>()?;
            Ok(Page { items, offset: page.offset, total: u64::try_from(total).unwrap_or(0) })
        })
        .await
    }
}
