use apogee_types::{LoginToken, Millis, Page, PageRequest, User};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::{SqliteStore, conflict_or, decode, encode, like_pattern, limit, offset, unavailable};
use crate::{StoreError, StoreResult, UserFilter, UserMutation, UserStore};

const ENTITY: &str = "user";

fn first_email(user: &User) -> Option<String> {
    user.emails.first().map(|e| e.address.to_lowercase())
}

fn write_user(conn: &Connection, user: &User, insert: bool) -> StoreResult<()> {
    let doc = encode(ENTITY, user)?;
    let sql = if insert {
        "INSERT INTO users (id, username, email, name, active, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
    } else {
        "UPDATE users SET username = ?2, email = ?3, name = ?4, active = ?5, doc = ?6 WHERE id = ?1"
    };
    conn.execute(sql, params![user.id, user.username, first_email(user), user.name, user.active, doc])
        .map_err(conflict_or(ENTITY, &user.username))?;
    Ok(())
}

/// The columns [`token_from_row`] reads, in its order.
const TOKEN_COLUMNS: &str =
    "t.hashed_token, t.user_id, t.created_at, t.name, t.last_token_part, t.bypass_two_factor";

fn token_from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<LoginToken> {
    Ok(LoginToken {
        hashed_token: row.get(first)?,
        user_id: row.get(first + 1)?,
        created_at: Millis(row.get(first + 2)?),
        name: row.get(first + 3)?,
        last_token_part: row.get(first + 4)?,
        bypass_two_factor: row.get(first + 5)?,
    })
}

fn one_user(conn: &Connection, sql: &str, key: &str) -> StoreResult<Option<User>> {
    let doc: Option<String> = conn.query_row(sql, [key], |row| row.get(0)).optional().map_err(unavailable)?;
    doc.map(|d| decode(ENTITY, &d)).transpose()
}

fn users_from(conn: &Connection, sql: &str, args: &[rusqlite::types::Value]) -> StoreResult<Vec<User>> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    let docs = stmt
        .query_map(params_from_iter(args.iter()), |row| row.get::<_, String>(0))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)?;
    docs.iter().map(|d| decode(ENTITY, d)).collect()
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: User) -> StoreResult<()> {
        self.write(move |conn| write_user(conn, &user, true)).await
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<User>> {
        let id = id.to_owned();
        self.read(move |conn| one_user(conn, "SELECT doc FROM users WHERE id = ?1", &id)).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let username = username.to_owned();
        self.read(move |conn| one_user(conn, "SELECT doc FROM users WHERE username = ?1", &username)).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let email = email.to_owned();
        self.read(move |conn| one_user(conn, "SELECT doc FROM users WHERE email = ?1", &email)).await
    }

    async fn users_by_ids(&self, ids: &[String]) -> StoreResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let args: Vec<rusqlite::types::Value> = ids.iter().map(|i| i.clone().into()).collect();
        let sql = format!(
            "SELECT doc FROM users WHERE id IN ({}) ORDER BY username",
            vec!["?"; ids.len()].join(",")
        );
        self.read(move |conn| users_from(conn, &sql, &args)).await
    }

    async fn list_users(&self, filter: &UserFilter, page: PageRequest) -> StoreResult<Page<User>> {
        let mut clauses = vec!["1 = 1".to_owned()];
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(text) = &filter.text {
            args.push(like_pattern(text).into());
            clauses.push(format!(
                "(username LIKE ?{n} ESCAPE '\\' OR name LIKE ?{n} ESCAPE '\\')",
                n = args.len()
            ));
        }
        if let Some(active) = filter.active {
            args.push(i64::from(active).into());
            clauses.push(format!("active = ?{}", args.len()));
        }
        if let Some(since) = filter.updated_since {
            args.push(since.0.into());
            clauses.push(format!("json_extract(doc, '$._updatedAt') >= ?{}", args.len()));
        }
        if !filter.ids.is_empty() {
            let marks: Vec<String> = filter
                .ids
                .iter()
                .map(|id| {
                    args.push(id.clone().into());
                    format!("?{}", args.len())
                })
                .collect();
            clauses.push(format!("id IN ({})", marks.join(",")));
        }
        if !filter.roles.is_empty() {
            let marks: Vec<String> = filter
                .roles
                .iter()
                .map(|r| {
                    args.push(r.clone().into());
                    format!("?{}", args.len())
                })
                .collect();
            clauses.push(format!(
                "EXISTS (SELECT 1 FROM json_each(users.doc, '$.roles') WHERE value IN ({}))",
                marks.join(",")
            ));
        }
        let where_sql = clauses.join(" AND ");
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let total: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM users WHERE {where_sql}"),
                    params_from_iter(args.iter()),
                    |row| row.get(0),
                )
                .map_err(unavailable)?;
            let mut page_args = args.clone();
            page_args.push(lim.into());
            page_args.push(off.into());
            let sql = format!(
                "SELECT doc FROM users WHERE {where_sql} ORDER BY username LIMIT ?{} OFFSET ?{}",
                args.len() + 1,
                args.len() + 2
            );
            let items = users_from(conn, &sql, &page_args)?;
            Ok(Page { items, offset: page.offset, total: total.try_into().unwrap_or(0) })
        })
        .await
    }

    async fn update_user(&self, id: &str, mutation: UserMutation) -> StoreResult<User> {
        let id = id.to_owned();
        self.write(move |conn| {
            let mut user = one_user(conn, "SELECT doc FROM users WHERE id = ?1", &id)?
                .ok_or_else(|| StoreError::NotFound { entity: ENTITY, id: id.clone() })?;
            mutation(&mut user)?;
            write_user(conn, &user, false)?;
            Ok(user)
        })
        .await
    }

    async fn delete_user(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            conn.execute("DELETE FROM login_tokens WHERE user_id = ?1", [&id]).map_err(unavailable)?;
            let n = conn.execute("DELETE FROM users WHERE id = ?1", [&id]).map_err(unavailable)?;
            if n == 0 {
                return Err(StoreError::NotFound { entity: ENTITY, id });
            }
            Ok(())
        })
        .await
    }

    async fn insert_login_token(&self, token: LoginToken) -> StoreResult<()> {
        // A clash on a personal token is its name (one per user); on a resume token, the hash.
        let key = if token.name.is_some() { "name" } else { "hashed token" };
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO login_tokens (hashed_token, user_id, created_at, name, last_token_part,
                     bypass_two_factor) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    token.hashed_token,
                    token.user_id,
                    token.created_at.0,
                    token.name,
                    token.last_token_part,
                    token.bypass_two_factor
                ],
            )
            .map_err(conflict_or("login token", key))?;
            Ok(())
        })
        .await
    }

    async fn user_by_token(&self, hashed_token: &str) -> StoreResult<Option<(User, LoginToken)>> {
        let hashed = hashed_token.to_owned();
        self.read(move |conn| {
            let row = conn
                .query_row(
                    &format!(
                        "SELECT u.doc, {TOKEN_COLUMNS} FROM login_tokens t
                     JOIN users u ON u.id = t.user_id WHERE t.hashed_token = ?1"
                    ),
                    [&hashed],
                    |row| Ok((row.get::<_, String>(0)?, token_from_row(row, 1)?)),
                )
                .optional()
                .map_err(unavailable)?;
            row.map(|(doc, token)| Ok((decode::<User>(ENTITY, &doc)?, token))).transpose()
        })
        .await
    }

    async fn login_tokens_of_user(&self, user_id: &str) -> StoreResult<Vec<LoginToken>> {
        let user_id = user_id.to_owned();
        self.read(move |conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {TOKEN_COLUMNS} FROM login_tokens t WHERE t.user_id = ?1 ORDER BY t.created_at, t.rowid"
                ))
                .map_err(unavailable)?;
            let rows = stmt.query_map([&user_id], |row| token_from_row(row, 0)).map_err(unavailable)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
        })
        .await
    }

    async fn delete_login_token(&self, hashed_token: &str) -> StoreResult<()> {
        let hashed = hashed_token.to_owned();
        self.write(move |conn| {
            conn.execute("DELETE FROM login_tokens WHERE hashed_token = ?1", [&hashed])
                .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn prune_login_tokens(&self, user_id: &str, keep: usize, before: Millis) -> StoreResult<()> {
        let user_id = user_id.to_owned();
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM login_tokens WHERE user_id = ?1 AND name IS NULL AND created_at < ?2
                 AND hashed_token NOT IN (SELECT hashed_token FROM login_tokens
                     WHERE user_id = ?1 AND name IS NULL ORDER BY created_at DESC LIMIT ?3)",
                params![user_id, before.0, keep],
            )
            .map_err(unavailable)?;
            Ok(())
        })
        .await
    }

    async fn delete_user_login_tokens(&self, user_id: &str) -> StoreResult<u64> {
        let user_id = user_id.to_owned();
        self.write(move |conn| {
            let n = conn
                .execute("DELETE FROM login_tokens WHERE user_id = ?1", [&user_id])
                .map_err(unavailable)?;
            Ok(n as u64)
        })
        .await
    }
}
