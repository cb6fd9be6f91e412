//! The contract of [`TeamStore`](crate::TeamStore).

use apogee_types::{CreatedBy, Millis, PageRequest, Team, TeamMember};

use super::{ALL, room};
use crate::{RoomWrite, Store, StoreError};

pub fn team(id: &str, name: &str, room_id: &str) -> Team {
    Team {
        id: id.into(),
        name: name.into(),
        kind: 0,
        room_id: room_id.into(),
        created_by: CreatedBy { id: "u1".into(), username: "alice".into() },
        created_at: Millis(1),
        updated_at: Millis(1),
    }
}

pub fn team_member(team_id: &str, user_id: &str, at: i64, roles: Option<&[&str]>) -> TeamMember {
    TeamMember {
        id: format!("{team_id}-{user_id}"),
        team_id: team_id.into(),
        user_id: user_id.into(),
        roles: roles.map(|r| r.iter().map(|s| (*s).to_owned()).collect()),
        created_by: CreatedBy { id: "u1".into(), username: "alice".into() },
        created_at: Millis(at),
        updated_at: Millis(at),
    }
}

pub async fn teams_roundtrip_and_unique_names(store: &dyn Store) {
    let t1 = team("t1", "Alpha", "r1");
    store.insert_team(t1.clone(), vec![team_member("t1", "u1", 1, Some(&["owner"]))]).await.unwrap();
    assert_eq!(store.team_by_id("t1").await.unwrap(), Some(t1.clone()));
    assert_eq!(store.team_by_name("alpha").await.unwrap(), Some(t1.clone()));
    assert_eq!(store.team_by_id("nope").await.unwrap(), None);
    let dup = store.insert_team(team("t2", "ALPHA", "r2"), vec![team_member("t2", "u9", 1, None)]).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })));
    // A refused insert leaves nothing behind, not even its members.
    assert!(store.memberships_of_user("u9").await.unwrap().is_empty());
    store.insert_team(team("t2", "beta", "r2"), vec![]).await.unwrap();
    let renamed = store
        .update_team(
            "t2",
            Box::new(|t| {
                t.name = "gamma".into();
                t.kind = 1;
                t.id = "moved".into();
                Ok(())
            }),
        )
        .await
        .unwrap();
    assert_eq!((renamed.id.as_str(), renamed.name.as_str(), renamed.kind), ("t2", "gamma", 1));
    assert_eq!(store.team_by_name("GAMMA").await.unwrap().unwrap().id, "t2");
    assert!(store.team_by_name("beta").await.unwrap().is_none());
    let taken = store.update_team(
        "t2",
        Box::new(|t| {
            t.name = "alpha".into();
            Ok(())
        }),
    );
    assert!(matches!(taken.await, Err(StoreError::Conflict { .. })));
    let refused = store.update_team("t2", Box::new(|_| Err(StoreError::Rejected("no".into())))).await;
    assert!(matches!(refused, Err(StoreError::Rejected(_))));
    assert!(matches!(
        store.update_team("nope", Box::new(|_| Ok(()))).await,
        Err(StoreError::NotFound { .. })
    ));
    let all = store.list_teams(None, ALL).await.unwrap();
    assert_eq!(all.items.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["Alpha", "gamma"]);
    assert_eq!(all.total, 2);
    let some = store.list_teams(Some(&["t2".to_owned()]), ALL).await.unwrap();
    assert_eq!((some.total, some.items[0].id.as_str()), (1, "t2"));
    let paged = store.list_teams(None, PageRequest { offset: 1, count: Some(1) }).await.unwrap();
    assert_eq!((paged.total, paged.items.len(), paged.items[0].id.as_str()), (2, 1, "t2"));
    assert_eq!(store.list_teams(Some(&[]), ALL).await.unwrap().total, 0);
    store.delete_team("t1").await.unwrap();
    assert!(store.team_by_id("t1").await.unwrap().is_none());
    assert!(store.team_member("t1", "u1").await.unwrap().is_none());
    assert!(matches!(store.delete_team("t1").await, Err(StoreError::NotFound { .. })));
}

pub async fn team_members_add_roles_remove(store: &dyn Store) {
    store
        .insert_team(team("t1", "alpha", "r1"), vec![team_member("t1", "u1", 1, Some(&["owner"]))])
        .await
        .unwrap();
    store.insert_team(team("t2", "beta", "r2"), vec![team_member("t2", "u1", 2, None)]).await.unwrap();
    let added = store
        .add_team_members(vec![
            team_member("t1", "u3", 3, None),
            team_member("t1", "u2", 4, None),
            // Already a member: skipped, roles untouched.
            team_member("t1", "u1", 5, None),
        ])
        .await
        .unwrap();
    assert_eq!(added, 2);
    let missing = store.add_team_members(vec![team_member("nope", "u1", 1, None)]).await;
    assert!(matches!(missing, Err(StoreError::NotFound { .. })));
    let members = store.team_members("t1", ALL).await.unwrap();
    assert_eq!(members.total, 3);
    assert_eq!(members.items.iter().map(|m| m.user_id.as_str()).collect::<Vec<_>>(), ["u1", "u3", "u2"]);
    assert!(members.items[0].has_role("owner"));
    let page = store.team_members("t1", PageRequest { offset: 1, count: Some(1) }).await.unwrap();
    assert_eq!((page.total, page.items[0].user_id.as_str()), (3, "u3"));
    assert!(store.set_team_member_roles("t1", "u2", Some(vec!["moderator".into()])).await.unwrap());
    assert!(store.team_member("t1", "u2").await.unwrap().unwrap().has_role("moderator"));
    assert!(store.set_team_member_roles("t1", "u2", None).await.unwrap());
    assert_eq!(store.team_member("t1", "u2").await.unwrap().unwrap().roles, None);
    assert!(!store.set_team_member_roles("t1", "u9", None).await.unwrap());
    let of_u1 = store.memberships_of_user("u1").await.unwrap();
    assert_eq!(of_u1.iter().map(|m| m.team_id.as_str()).collect::<Vec<_>>(), ["t1", "t2"]);
    assert!(store.remove_team_member("t1", "u3").await.unwrap());
    assert!(!store.remove_team_member("t1", "u3").await.unwrap());
    assert_eq!(store.team_members("t1", ALL).await.unwrap().total, 2);
    store.delete_team("t1").await.unwrap();
    assert_eq!(store.memberships_of_user("u1").await.unwrap().len(), 1);
}

pub async fn rooms_of_team_follow_team_id(store: &dyn Store) {
    for (rid, team_id, main) in [("r1", Some("t1"), true), ("r2", Some("t1"), false), ("r3", None, false)] {
        let mut r = room(rid, &format!("room-{rid}"));
        r.team_id = team_id.map(str::to_owned);
        r.team_main = main;
        let mut write = RoomWrite::new(rid);
        write.create = Some(r);
        store.write_room(write).await.unwrap();
    }
    let ids = |rooms: Vec<apogee_types::Room>| rooms.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.rooms_of_team("t1").await.unwrap()), ["r1", "r2"]);
    let main = store.room_by_id("r1").await.unwrap().unwrap();
    assert!(main.team_main && main.team_id.as_deref() == Some("t1") && !main.team_default);
    let mut write = RoomWrite::new("r2");
    write.mutate = Some(Box::new(|r| {
        r.team_id = None;
        Ok(())
    }));
    store.write_room(write).await.unwrap();
    let mut write = RoomWrite::new("r3");
    write.mutate = Some(Box::new(|r| {
        r.team_id = Some("t1".into());
        r.team_default = true;
        Ok(())
    }));
    store.write_room(write).await.unwrap();
    assert_eq!(ids(store.rooms_of_team("t1").await.unwrap()), ["r1", "r3"]);
    assert!(store.room_by_id("r3").await.unwrap().unwrap().team_default);
    assert!(store.rooms_of_team("t9").await.unwrap().is_empty());
}
