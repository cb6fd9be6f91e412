//! Teams in `rocketchat_team` and members in `rocketchat_team_member`, in Rocket.Chat's shapes
//! (BSON dates). A member is added with an upsert on `{teamId, userId}` (unique index), so two
//! processes adding the same user add it once.

use apogee_types::{Page, PageRequest, Room, Team, TeamMember};
use async_trait::async_trait;
use mongodb::IndexModel;
use mongodb::bson::{self, Bson, DateTime, Document, doc};
use mongodb::options::IndexOptions;

use super::queries::{ROOMS, case_insensitive};
use super::{MongoStore, conflict_or, room_from_doc, unavailable};
use crate::{StoreError, StoreResult, TeamMutation, TeamStore};

pub(crate) const TEAMS: &str = "rocketchat_team";
pub(crate) const TEAM_MEMBERS: &str = "rocketchat_team_member";

const DATES: &[&str] = &["createdAt", "_updatedAt"];

fn corrupt(entity: &'static str) -> impl Fn(bson::error::Error) -> StoreError {
    move |e| StoreError::Corrupt { entity, detail: e.to_string() }
}

fn to_doc<T: serde::Serialize>(entity: &'static str, value: &T) -> StoreResult<Document> {
    let mut doc = bson::serialize_to_document(value).map_err(corrupt(entity))?;
    for field in DATES {
        if let Some(value) = doc.get_mut(field)
            && let Some(ms) = value.as_i64().or_else(|| value.as_i32().map(i64::from))
        {
            *value = Bson::DateTime(DateTime::from_millis(ms));
        }
    }
    Ok(doc)
}

fn from_doc<T: serde::de::DeserializeOwned>(entity: &'static str, mut doc: Document) -> StoreResult<T> {
    for field in DATES {
        if let Some(value) = doc.get_mut(field)
            && let Bson::DateTime(at) = value
        {
            *value = Bson::Int64(at.timestamp_millis());
        }
    }
    bson::deserialize_from_document(doc).map_err(corrupt(entity))
}

pub(crate) fn team_to_doc(team: &Team) -> StoreResult<Document> {
    to_doc("team", team)
}

pub(crate) fn team_from_doc(doc: Document) -> StoreResult<Team> {
    from_doc("team", doc)
}

pub(crate) fn member_to_doc(member: &TeamMember) -> StoreResult<Document> {
    to_doc("team member", member)
}

pub(crate) fn member_from_doc(doc: Document) -> StoreResult<TeamMember> {
    from_doc("team member", doc)
}

/// The upsert that adds `member` unless its user is in the team already.
pub(crate) fn add_member_update(member: &TeamMember) -> StoreResult<(Document, Document)> {
    Ok((
        doc! { "teamId": &member.team_id, "userId": &member.user_id },
        doc! { "$setOnInsert": member_to_doc(member)? },
    ))
}

/// The filter of `list_teams`.
pub(crate) fn teams_filter(ids: Option<&[String]>) -> Document {
    match ids {
        Some(ids) => doc! { "_id": { "$in": ids } },
        None => doc! {},
    }
}

pub(crate) fn team_indexes() -> Vec<(&'static str, IndexModel)> {
    let unique = |keys: Document, ci: bool| {
        let mut options = IndexOptions::builder().unique(true).build();
        if ci {
            options.collation = Some(case_insensitive());
        }
        IndexModel::builder().keys(keys).options(options).build()
    };
    let plain = |keys: Document| IndexModel::builder().keys(keys).build();
    vec![
        (TEAMS, unique(doc! { "name": 1 }, true)),
        (TEAM_MEMBERS, unique(doc! { "teamId": 1, "userId": 1 }, false)),
        (TEAM_MEMBERS, plain(doc! { "userId": 1 })),
        (TEAM_MEMBERS, plain(doc! { "teamId": 1, "createdAt": 1 })),
        (ROOMS, plain(doc! { "teamId": 1 })),
    ]
}

impl MongoStore {
    async fn add_members(&self, members: &[TeamMember]) -> StoreResult<u64> {
        let mut added = 0;
        for member in members {
            let (filter, update) = add_member_update(member)?;
            let result = self
                .coll(TEAM_MEMBERS)
                .update_one(filter, update)
                .upsert(true)
                .await
                .map_err(conflict_or("team member", &member.user_id))?;
            if result.upserted_id.is_some() {
                added += 1;
            }
        }
        Ok(added)
    }
}

#[async_trait]
impl TeamStore for MongoStore {
    async fn insert_team(&self, team: Team, members: Vec<TeamMember>) -> StoreResult<()> {
        self.coll(TEAMS).insert_one(team_to_doc(&team)?).await.map_err(conflict_or("team", &team.name))?;
        self.add_members(&members).await?;
        Ok(())
    }

    async fn team_by_id(&self, id: &str) -> StoreResult<Option<Team>> {
        self.one(TEAMS, doc! { "_id": id }, None).await?.map(team_from_doc).transpose()
    }

    async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>> {
        self.one(TEAMS, doc! { "name": name }, Some(case_insensitive())).await?.map(team_from_doc).transpose()
    }

    async fn update_team(&self, id: &str, mutation: TeamMutation) -> StoreResult<Team> {
        let _guard = self.lock(&format!("team:{id}")).lock().await;
        let Some(stored) = self.one(TEAMS, doc! { "_id": id }, None).await? else {
            return Err(StoreError::NotFound { entity: "team", id: id.to_owned() });
        };
        let mut team = team_from_doc(stored.clone())?;
        mutation(&mut team)?;
        id.clone_into(&mut team.id);
        // Replaced only if unchanged since read: a concurrent change elsewhere is never lost.
        let replaced = self
            .coll(TEAMS)
            .replace_one(stored, team_to_doc(&team)?)
            .await
            .map_err(conflict_or("team", &team.name))?;
        if replaced.matched_count == 0 {
            return Err(StoreError::Unavailable(format!("team {id} changed meanwhile; try again")));
        }
        Ok(team)
    }

    async fn delete_team(&self, id: &str) -> StoreResult<()> {
        let deleted = self.coll(TEAMS).delete_one(doc! { "_id": id }).await.map_err(unavailable)?;
        if deleted.deleted_count == 0 {
            return Err(StoreError::NotFound { entity: "team", id: id.to_owned() });
        }
        self.coll(TEAM_MEMBERS).delete_many(doc! { "teamId": id }).await.map_err(unavailable)?;
        Ok(())
    }

    async fn list_teams(&self, ids: Option<&[String]>, page: PageRequest) -> StoreResult<Page<Team>> {
        self.page(TEAMS, teams_filter(ids), doc! { "name": 1, "_id": 1 }, page, None, team_from_doc).await
    }

    async fn add_team_members(&self, members: Vec<TeamMember>) -> StoreResult<u64> {
        for team_id in members.iter().map(|m| m.team_id.as_str()) {
            if self.one(TEAMS, doc! { "_id": team_id }, None).await?.is_none() {
                return Err(StoreError::NotFound { entity: "team", id: team_id.to_owned() });
            }
        }
        self.add_members(&members).await
    }

    async fn team_member(&self, team_id: &str, user_id: &str) -> StoreResult<Option<TeamMember>> {
        self.one(TEAM_MEMBERS, doc! { "teamId": team_id, "userId": user_id }, None)
            .await?
            .map(member_from_doc)
            .transpose()
    }

    async fn team_members(&self, team_id: &str, page: PageRequest) -> StoreResult<Page<TeamMember>> {
        self.page(
            TEAM_MEMBERS,
            doc! { "teamId": team_id },
            doc! { "createdAt": 1, "_id": 1 },
            page,
            None,
            member_from_doc,
        )
        .await
    }

    async fn set_team_member_roles(
        &self,
        team_id: &str,
        user_id: &str,
        roles: Option<Vec<String>>,
    ) -> StoreResult<bool> {
        let update = match roles {
            Some(roles) => doc! { "$set": { "roles": roles, "_updatedAt": DateTime::now() } },
            None => doc! { "$unset": { "roles": 1 }, "$set": { "_updatedAt": DateTime::now() } },
        };
        let result = self
            .coll(TEAM_MEMBERS)
            .update_one(doc! { "teamId": team_id, "userId": user_id }, update)
            .await
            .map_err(unavailable)?;
        Ok(result.matched_count > 0)
    }

    async fn remove_team_member(&self, team_id: &str, user_id: &str) -> StoreResult<bool> {
        let result = self
            .coll(TEAM_MEMBERS)
            .delete_one(doc! { "teamId": team_id, "userId": user_id })
            .await
            .map_err(unavailable)?;
        Ok(result.deleted_count > 0)
    }

    async fn memberships_of_user(&self, user_id: &str) -> StoreResult<Vec<TeamMember>> {
        let docs = self
            .find_docs(
                TEAM_MEMBERS,
                doc! { "userId": user_id },
                Some(doc! { "createdAt": 1, "_id": 1 }),
                (0, None),
                None,
            )
            .await?;
        docs.into_iter().map(member_from_doc).collect()
    }

    async fn rooms_of_team(&self, team_id: &str) -> StoreResult<Vec<Room>> {
        let docs = self
            .find_docs(
                ROOMS,
                doc! { "teamId": team_id },
                Some(doc! { "name": 1, "_id": 1 }),
                (0, None),
                Some(case_insensitive()),
            )
            .await?;
        docs.into_iter().map(room_from_doc).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use apogee_types::Millis;
    use mongodb::bson::{Bson, DateTime, doc};

    use super::*;
    use crate::testsuite::{team, team_member};

    #[test]
    fn teams_and_members_roundtrip_with_bson_dates() {
        let t = team("t1", "alpha", "r1");
        let d = team_to_doc(&t).unwrap();
        assert_eq!(d.get("createdAt"), Some(&Bson::DateTime(DateTime::from_millis(1))));
        assert_eq!(d.get_str("roomId").unwrap(), "r1");
        assert_eq!(d.get_i32("type").unwrap(), 0);
        assert_eq!(team_from_doc(d).unwrap(), t);
        let m = team_member("t1", "u1", 7, Some(&["owner"]));
        let d = member_to_doc(&m).unwrap();
        assert_eq!(d.get("_updatedAt"), Some(&Bson::DateTime(DateTime::from_millis(7))));
        assert_eq!(d.get_document("createdBy").unwrap().get_str("username").unwrap(), "alice");
        assert_eq!(member_from_doc(d).unwrap(), m);
        // No roles: the field is absent, as Rocket.Chat stores plain members.
        assert!(!member_to_doc(&team_member("t1", "u2", 1, None)).unwrap().contains_key("roles"));
        assert_eq!(Millis(7), m.updated_at);
    }

    #[test]
    fn member_upsert_and_team_filter() {
        let m = team_member("t1", "u1", 3, None);
        let (filter, update) = add_member_update(&m).unwrap();
        assert_eq!(filter, doc! { "teamId": "t1", "userId": "u1" });
        assert_eq!(update.get_document("$setOnInsert").unwrap().get_str("_id").unwrap(), "t1-u1");
        assert_eq!(teams_filter(None), doc! {});
        assert_eq!(teams_filter(Some(&["a".to_owned()])), doc! { "_id": { "$in": ["a"] } });
        let names: Vec<&str> = team_indexes().iter().map(|(c, _)| *c).collect();
        assert_eq!(names, [TEAMS, TEAM_MEMBERS, TEAM_MEMBERS, TEAM_MEMBERS, ROOMS]);
    }
}
