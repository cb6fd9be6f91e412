use apogee_types::{Page, PageRequest, Room, Team, TeamMember};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::{SqliteStore, conflict_or, decode, encode, limit, offset, unavailable};
use crate::{StoreError, StoreResult, TeamMutation, TeamStore};

const TEAM: &str = "team";
const MEMBER: &str = "team member";

fn strings(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql).map_err(unavailable)?;
    stmt.query_map(args, |row| row.get::<_, String>(0))
        .map_err(unavailable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unavailable)
}

fn one_team(conn: &Connection, sql: &str, key: &str) -> StoreResult<Option<Team>> {
    let doc: Option<String> = conn.query_row(sql, [key], |row| row.get(0)).optional().map_err(unavailable)?;
    doc.map(|d| decode(TEAM, &d)).transpose()
}

fn insert_member(conn: &Connection, m: &TeamMember) -> StoreResult<bool> {
    let n = conn
        .execute(
            "INSERT OR IGNORE INTO team_members (id, team_id, user_id, created_at, doc)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![m.id, m.team_id, m.user_id, m.created_at.0, encode(MEMBER, m)?],
        )
        .map_err(unavailable)?;
    Ok(n > 0)
}

fn load_member(conn: &Connection, team_id: &str, user_id: &str) -> StoreResult<Option<TeamMember>> {
    let doc: Option<String> = conn
        .query_row(
            "SELECT doc FROM team_members WHERE team_id = ?1 AND user_id = ?2",
            [team_id, user_id],
            |row| row.get(0),
        )
        .optional()
        .map_err(unavailable)?;
    doc.map(|d| decode(MEMBER, &d)).transpose()
}

#[async_trait]
impl TeamStore for SqliteStore {
    async fn insert_team(&self, team: Team, members: Vec<TeamMember>) -> StoreResult<()> {
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO teams (id, name, doc) VALUES (?1, ?2, ?3)",
                params![team.id, team.name, encode(TEAM, &team)?],
            )
            .map_err(conflict_or(TEAM, &team.name))?;
            for m in &members {
                insert_member(conn, m)?;
            }
            Ok(())
        })
        .await
    }

    async fn team_by_id(&self, id: &str) -> StoreResult<Option<Team>> {
        let id = id.to_owned();
        self.read(move |conn| one_team(conn, "SELECT doc FROM teams WHERE id = ?1", &id)).await
    }

    async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>> {
        let name = name.to_owned();
        self.read(move |conn| one_team(conn, "SELECT doc FROM teams WHERE name = ?1", &name)).await
    }

    async fn update_team(&self, id: &str, mutation: TeamMutation) -> StoreResult<Team> {
        let id = id.to_owned();
        self.write(move |conn| {
            let mut team = one_team(conn, "SELECT doc FROM teams WHERE id = ?1", &id)?
                .ok_or_else(|| StoreError::NotFound { entity: TEAM, id: id.clone() })?;
            mutation(&mut team)?;
            team.id = id;
            conn.execute(
                "UPDATE teams SET name = ?2, doc = ?3 WHERE id = ?1",
                params![team.id, team.name, encode(TEAM, &team)?],
            )
            .map_err(conflict_or(TEAM, &team.name))?;
            Ok(team)
        })
        .await
    }

    async fn delete_team(&self, id: &str) -> StoreResult<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            // Members go with the team (ON DELETE CASCADE).
            match conn.execute("DELETE FROM teams WHERE id = ?1", [&id]).map_err(unavailable)? {
                0 => Err(StoreError::NotFound { entity: TEAM, id }),
                _ => Ok(()),
            }
        })
        .await
    }

    async fn list_teams(&self, ids: Option<&[String]>, page: PageRequest) -> StoreResult<Page<Team>> {
        let ids: Option<Vec<String>> = ids.map(<[String]>::to_vec);
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let mut args: Vec<rusqlite::types::Value> = Vec::new();
            let filter = match &ids {
                None => "1 = 1".to_owned(),
                Some(ids) => {
                    let marks: Vec<String> = ids
                        .iter()
                        .map(|id| {
                            args.push(id.clone().into());
                            format!("?{}", args.len())
                        })
                        .collect();
                    format!("id IN ({})", marks.join(","))
                }
            };
            let total: i64 = conn
                .query_row(
                    &format!("SELECT COUNT(*) FROM teams WHERE {filter}"),
                    params_from_iter(&args),
                    |r| r.get(0),
                )
                .map_err(unavailable)?;
            let n = args.len();
            args.push(lim.into());
            args.push(off.into());
            let sql = format!(
                "SELECT doc FROM teams WHERE {filter} ORDER BY name, id LIMIT ?{} OFFSET ?{}",
                n + 1,
                n + 2
            );
            let items = strings(conn, &sql, params_from_iter(&args))?
                .iter()
                .map(|d| decode(TEAM, d))
                .collect::<StoreResult<Vec<Team>>>()?;
            Ok(Page { items, offset: page.offset, total: total.try_into().unwrap_or(0) })
        })
        .await
    }

    async fn add_team_members(&self, members: Vec<TeamMember>) -> StoreResult<u64> {
        self.write(move |conn| {
            let mut added = 0;
            for m in &members {
                let exists: bool = conn
                    .query_row("SELECT 1 FROM teams WHERE id = ?1", [&m.team_id], |_| Ok(true))
                    .optional()
                    .map_err(unavailable)?
                    .unwrap_or(false);
                if !exists {
                    return Err(StoreError::NotFound { entity: TEAM, id: m.team_id.clone() });
                }
                if insert_member(conn, m)? {
                    added += 1;
                }
            }
            Ok(added)
        })
        .await
    }

    async fn team_member(&self, team_id: &str, user_id: &str) -> StoreResult<Option<TeamMember>> {
        let (team_id, user_id) = (team_id.to_owned(), user_id.to_owned());
        self.read(move |conn| load_member(conn, &team_id, &user_id)).await
    }

    async fn team_members(&self, team_id: &str, page: PageRequest) -> StoreResult<Page<TeamMember>> {
        let team_id = team_id.to_owned();
        let (lim, off) = (limit(page.count), offset(page.offset));
        self.read(move |conn| {
            let total: i64 = conn
                .query_row("SELECT COUNT(*) FROM team_members WHERE team_id = ?1", [&team_id], |r| r.get(0))
                .map_err(unavailable)?;
            let items = strings(
                conn,
                "SELECT doc FROM team_members WHERE team_id = ?1 ORDER BY created_at, id LIMIT ?2 OFFSET ?3",
                params![team_id, lim, off],
            )?
            .iter()
            .map(|d| decode(MEMBER, d))
            .collect::<StoreResult<Vec<TeamMember>>>()?;
            Ok(Page { items, offset: page.offset, total: total.try_into().unwrap_or(0) })
        })
        .await
    }

    async fn set_team_member_roles(
        &self,
        team_id: &str,
        user_id: &str,
        roles: Option<Vec<String>>,
    ) -> StoreResult<bool> {
        let (team_id, user_id) = (team_id.to_owned(), user_id.to_owned());
        self.write(move |conn| {
            let Some(mut member) = load_member(conn, &team_id, &user_id)? else {
                return Ok(false);
            };
            member.roles = roles;
            member.updated_at = member.updated_at.max(apogee_types::Millis::now());
            conn.execute(
                "UPDATE team_members SET doc = ?2 WHERE id = ?1",
                params![member.id, encode(MEMBER, &member)?],
            )
            .map_err(unavailable)?;
            Ok(true)
        })
        .await
    }

    async fn remove_team_member(&self, team_id: &str, user_id: &str) -> StoreResult<bool> {
        let (team_id, user_id) = (team_id.to_owned(), user_id.to_owned());
        self.write(move |conn| {
            let n = conn
                .execute("DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2", [&team_id, &user_id])
                .map_err(unavailable)?;
            Ok(n > 0)
        })
        .await
    }

    async fn memberships_of_user(&self, user_id: &str) -> StoreResult<Vec<TeamMember>> {
        let user_id = user_id.to_owned();
        self.read(move |conn| {
            strings(
                conn,
                "SELECT doc FROM team_members WHERE user_id = ?1 ORDER BY created_at, id",
                [&user_id],
            )?
            .iter()
            .map(|d| decode(MEMBER, d))
            .collect()
        })
        .await
    }

    async fn rooms_of_team(&self, team_id: &str) -> StoreResult<Vec<Room>> {
        let team_id = team_id.to_owned();
        self.read(move |conn| {
            strings(
                conn,
                "SELECT doc FROM rooms WHERE json_extract(doc, '$.teamId') = ?1 ORDER BY name, id",
                [&team_id],
            )?
            .iter()
            .map(|d| decode("room", d))
            .collect()
        })
        .await
    }
}
