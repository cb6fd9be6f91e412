//! What happens to rooms when a user goes away.

use std::collections::HashMap;

use apogee_api::events::{Action, RoomEvent, UserEvent, room_subject, user_subject};
use apogee_store::{RoomWrite, UserRename};
use apogee_types::{Millis, PageRequest, RoomType, ServiceError, ServiceResult, Subscription, User};

use crate::service::{Messaging, store_error};

impl Messaging {
    /// Removes the user's subscriptions, one room write per room, each announced as usual.
    pub(crate) async fn remove_user_from_all_rooms_impl(&self, user_id: &str) -> ServiceResult<()> {
        let subs = self.store.subscriptions_of_user(user_id, None).await.map_err(store_error)?;
        for sub in subs {
            let mut write = RoomWrite::new(sub.rid.clone());
            write.remove_subscriptions = vec![user_id.to_owned()];
            self.commit(write).await?;
        }
        Ok(())
    }

    /// Rocket.Chat's `relinquishRoomOwnerships`: the heir is the member who joined first.
    pub(crate) async fn relinquish_ownership_impl(&self, user_id: &str, confirm: bool) -> ServiceResult<()> {
        let subs = self.store.subscriptions_of_user(user_id, None).await.map_err(store_error)?;
        let mut heirs = Vec::new();
        for sub in subs.iter().filter(|s| s.t != RoomType::Direct && s.roles.iter().any(|r| r == "owner")) {
            let all = PageRequest { offset: 0, count: None };
            let members = self.store.subscriptions_of_room(&sub.rid, all).await.map_err(store_error)?;
            let owners = members.items.iter().filter(|s| s.roles.iter().any(|r| r == "owner")).count();
            let heir = members.items.iter().filter(|s| s.u.id != user_id).min_by_key(|s| s.ts);
            if owners == 1
                && let Some(heir) = heir
            {
                heirs.push((sub.rid.clone(), heir.u.id.clone()));
            }
        }
        if heirs.is_empty() {
            return Ok(());
        }
        if !confirm {
            return Err(ServiceError::invalid("user-last-owner", ""));
        }
        for (rid, heir) in heirs {
            let mut write = RoomWrite::new(rid);
            write.update_subscriptions.push((
                heir,
                Box::new(|s, _| {
                    if !s.roles.iter().any(|r| r == "owner") {
                        s.roles.push("owner".into());
                    }
                }),
            ));
            self.commit(write).await?;
        }
        Ok(())
    }

    /// Rocket.Chat's `updateUsernameReferences` after `saveUserIdentity`: the store rewrites the
    /// copies, then each changed subscription and room is announced; group DMs the user is in get
    /// their names composed again for every member.
    pub(crate) async fn user_renamed_impl(&self, before: &User, after: &User) -> ServiceResult<()> {
        let username_changed = before.username != after.username;
        if !username_changed && before.name == after.name {
            return Ok(());
        }
        let rename = UserRename {
            user_id: after.id.clone(),
            old_username: before.username.clone(),
            username: username_changed.then(|| after.username.clone()),
            // Rocket.Chat sets `fname` only from a name that is there.
            name: after.name.clone().filter(|n| !n.is_empty() && before.name.as_ref() != Some(n)),
            at: Millis::now(),
        };
        let outcome = self.store.rename_user(&rename).await.map_err(store_error)?;
        for sub in &outcome.subscriptions {
            let event = UserEvent::Subscription {
                action: Action::Updated,
                subscription: Box::new(sub.clone()),
                unread: sub.unread,
            };
            self.publish(&user_subject(&sub.u.id, "subscription"), &event).await;
        }
        for room in outcome.rooms {
            let rid = room.id.clone();
            self.publish(&room_subject(&rid, "changed"), &RoomEvent::Changed { room: Box::new(room) }).await;
        }
        self.rename_group_dms(after).await
    }

    /// Rocket.Chat's `updateGroupDMsName`: each member's view of a DM with more than two people is
    /// named after the others, sorted by display name.
    async fn rename_group_dms(&self, user: &User) -> ServiceResult<()> {
        let all = PageRequest { offset: 0, count: None };
        let rooms =
            self.store.rooms_of_user(&user.id, &[RoomType::Direct], all).await.map_err(store_error)?;
        let groups: Vec<_> = rooms.items.into_iter().filter(|r| r.uids.len() > 2).collect();
        if groups.is_empty() {
            return Ok(());
        }
        let mut others: Vec<String> = groups.iter().flat_map(|r| r.uids.iter().cloned()).collect();
        others.sort();
        others.dedup();
        others.retain(|id| *id != user.id);
        let mut people: HashMap<String, User> =
            self.auth.users_by_ids(&others).await?.into_iter().map(|u| (u.id.clone(), u)).collect();
        people.insert(user.id.clone(), user.clone());
        for room in groups {
            let mut sorted: Vec<&User> = room.uids.iter().filter_map(|id| people.get(id)).collect();
            sorted.sort_by_cached_key(|u| display_key(u));
            let members = self.store.subscriptions_of_room(&room.id, all).await.map_err(store_error)?;
            let mut write = RoomWrite::new(room.id.clone());
            for sub in members.items {
                let (name, fname) = group_dm_names(&sorted, &sub.u.id);
                if sub.name != name || sub.fname.as_deref() != Some(fname.as_str()) {
                    write.update_subscriptions.push((
                        sub.u.id.clone(),
                        Box::new(move |s: &mut Subscription, _| {
                            s.name = name;
                            s.fname = Some(fname);
                        }),
                    ));
                }
            }
            if !write.update_subscriptions.is_empty() {
                self.commit(write).await?;
            }
        }
        Ok(())
    }
}

/// How Rocket.Chat orders a group DM's members: by name, else username (`localeCompare`, here
/// case-insensitively).
pub(crate) fn display_key(user: &User) -> (String, String) {
    let shown = user.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| user.username.clone());
    (shown.to_lowercase(), shown)
}

/// A member's view of a group DM: the other members' usernames (`name`, comma-joined as
/// `updateGroupDMsName` writes it) and display names (`fname`).
pub(crate) fn group_dm_names(sorted: &[&User], me: &str) -> (String, String) {
    let others: Vec<&&User> = sorted.iter().filter(|u| u.id != me).collect();
    let name = others.iter().map(|u| u.username.as_str()).collect::<Vec<_>>().join(",");
    let fname = others
        .iter()
        .map(|u| u.name.as_deref().filter(|n| !n.is_empty()).unwrap_or(&u.username))
        .collect::<Vec<_>>()
        .join(", ");
    (name, fname)
}
