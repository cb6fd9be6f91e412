//! The caller's subscriptions and rooms, read state, members and counters.

use apogee_api::{Changes, Counters, MemberFilter};
use apogee_store::RoomWrite;
use apogee_types::{
    Millis, Page, PageRequest, Principal, Room, ServiceError, ServiceResult, Subscription, User,
};

use crate::service::{Messaging, store_error};

impl Messaging {
    pub(crate) async fn subscriptions_impl(
        &self,
        who: &Principal,
        since: Option<Millis>,
    ) -> ServiceResult<Changes<Subscription>> {
        let update = self.store.subscriptions_of_user(&who.user_id, since).await.map_err(store_error)?;
        let remove = match since {
            Some(since) => self
                .store
                .removed_subscriptions_since(&who.user_id, since)
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|r| (r.id, r.deleted_at))
                .collect(),
            None => Vec::new(),
        };
        Ok(Changes { update, remove })
    }

    pub(crate) async fn rooms_impl(
        &self,
        who: &Principal,
        since: Option<Millis>,
    ) -> ServiceResult<Changes<Room>> {
        let update =
            self.store.rooms_of_user_updated_since(&who.user_id, since).await.map_err(store_error)?;
        let remove = match since {
            Some(since) => self
                .store
                .removed_rooms_since(since)
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|r| (r.id, r.deleted_at))
                .collect(),
            None => Vec::new(),
        };
        Ok(Changes { update, remove })
    }

    pub(crate) async fn mark_read_impl(&self, who: &Principal, rid: &str) -> ServiceResult<()> {
        if self.store.subscription(rid, &who.user_id).await.map_err(store_error)?.is_none() {
            // Rocket.Chat throws a plain `Error` here: the code is the whole text.
            return Err(ServiceError::failure("error-invalid-subscription"));
        }
        let now = Millis::now();
        let mut write = RoomWrite::new(rid);
        write.update_subscriptions = vec![(
            who.user_id.clone(),
            Box::new(move |s: &mut Subscription, room: &Room| {
                s.last_read_seq = room.msgs;
                s.ls = Some(now);
                s.lr = Some(now);
                s.alert = false;
                s.user_mentions = 0;
            }),
        )];
        self.commit(write).await?;
        Ok(())
    }

    pub(crate) async fn mark_unread_impl(
        &self,
        who: &Principal,
        rid: Option<String>,
        first_unread: Option<String>,
    ) -> ServiceResult<()> {
        let not_allowed = || ServiceError::invalid("error-action-not-allowed", "Not allowed");
        let from = match (rid, first_unread) {
            (Some(rid), _) => {
                let newest = PageRequest { offset: 0, count: Some(1) };
                let last = self.store.list_messages(&rid, newest, false).await.map_err(store_error)?;
                last.items.into_iter().next().ok_or_else(|| {
                    ServiceError::invalid(
                        "error-no-message-for-unread",
                        "There are no messages to mark unread",
                    )
                })?
            }
            (None, Some(mid)) => {
                let message =
                    self.store.message_by_id(&mid).await.map_err(store_error)?.ok_or_else(not_allowed)?;
                if message.u.id == who.user_id {
                    return Err(not_allowed());
                }
                message
            }
            (None, None) => return Err(not_allowed()),
        };
        if self.store.subscription(&from.rid, &who.user_id).await.map_err(store_error)?.is_none() {
            return Err(ServiceError::invalid("error-subscription-not-found", "Subscription not found"));
        }
        // Unread is derived from the last-read sequence: everything from this message on.
        let mut write = RoomWrite::new(from.rid.clone());
        write.update_subscriptions = vec![(
            who.user_id.clone(),
            Box::new(move |s: &mut Subscription, _: &Room| {
                s.last_read_seq = s.last_read_seq.min(from.seq.saturating_sub(1));
                s.ls = Some(from.ts);
                s.alert = true;
                s.open = true;
            }),
        )];
        self.commit(write).await?;
        Ok(())
    }

    pub(crate) async fn members_impl(
        &self,
        who: &Principal,
        rid: &str,
        filter: MemberFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<User>> {
        let room = self.room_by_id(rid).await?;
        self.ensure_can_read(who, &room).await?;
        let filtered = filter.text.is_some() || !filter.status.is_empty();
        // Filtering needs the users, which live with auth: filter the whole member list, then page.
        let fetch = if filtered { PageRequest { offset: 0, count: None } } else { page };
        let subs = self.store.subscriptions_of_room(rid, fetch).await.map_err(store_error)?;
        let ids: Vec<String> = subs.items.iter().map(|s| s.u.id.clone()).collect();
        let mut users = self.auth.users_by_ids(&ids).await?;
        // Keep the subscriptions' order (by username).
        users.sort_by_key(|u| ids.iter().position(|id| id == &u.id));
        if !filtered {
            return Ok(Page { items: users, offset: subs.offset, total: subs.total });
        }
        let text = filter.text.map(|t| t.to_lowercase());
        users.retain(|u| {
            let text_ok = text.as_deref().is_none_or(|t| {
                u.username.to_lowercase().contains(t)
                    || u.name.as_deref().is_some_and(|n| n.to_lowercase().contains(t))
            });
            text_ok && (filter.status.is_empty() || filter.status.contains(&u.status))
        });
        let total = users.len() as u64;
        let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
        let take = page.count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let items = users.into_iter().skip(skip).take(take).collect();
        Ok(Page { items, offset: page.offset, total })
    }

    pub(crate) async fn counters_impl(
        &self,
        who: &Principal,
        rid: &str,
        user_id: Option<String>,
    ) -> ServiceResult<Counters> {
        let room = self.room_by_id(rid).await?;
        let uid = match user_id.filter(|u| u != &who.user_id) {
            Some(other) => {
                if !self.has_global(who, "view-room-administration").await? {
                    return Err(ServiceError::unauthorized());
                }
                other
            }
            None => {
                self.ensure_can_read(who, &room).await?;
                who.user_id.clone()
            }
        };
        let sub = self.store.subscription(rid, &uid).await.map_err(store_error)?;
        Ok(match sub {
            Some(sub) => Counters {
                joined: true,
                members: room.users_count,
                unreads: Some(sub.unread),
                unreads_from: sub.ls.or(Some(sub.ts)),
                msgs: room.msgs,
                latest: room.lm.or(Some(room.ts)),
                user_mentions: sub.user_mentions,
            },
            None => Counters {
                joined: false,
                members: room.users_count,
                unreads: None,
                unreads_from: None,
                msgs: room.msgs,
                latest: None,
                user_mentions: 0,
            },
        })
    }
}
