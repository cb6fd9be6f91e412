//! What happens to rooms when a user goes away.

use apogee_store::RoomWrite;
use apogee_types::{PageRequest, RoomType, ServiceError, ServiceResult};

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
}
