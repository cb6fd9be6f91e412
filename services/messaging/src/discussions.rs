//! Discussions: rooms under a parent room (`prid`), announced there by a `discussion-created`
//! message (`drid`) that carries the discussion's message count and last message time
//! (`dcount`, `dlm`).

use apogee_api::{CreateDiscussion, NewMessage, RoomSelector, UserSelector};
use apogee_store::{MessageFilter, RoomWrite};
use apogee_types::{
    Message, Millis, Page, PageRequest, Principal, Room, RoomType, ServiceError, ServiceResult, UserRef,
    random_id,
};
use serde_json::json;

use crate::rooms::{new_subscription, room_display, system_message, user_ref};
use crate::service::{Messaging, store_error};

fn not_allowed_to_create() -> ServiceError {
    ServiceError::invalid("error-action-not-allowed", "You are not allowed to create a discussion")
}

impl Messaging {
    pub(crate) async fn create_discussion_impl(
        &self,
        who: &Principal,
        req: CreateDiscussion,
    ) -> ServiceResult<Room> {
        if !self.auth.setting_bool("Discussion_enabled", true).await {
            return Err(not_allowed_to_create());
        }
        let sub = self.store.subscription(&req.prid, &who.user_id).await.map_err(store_error)?;
        if !self.has_in_room(who, sub.as_ref(), "start-discussion").await?
            && !self.has_in_room(who, sub.as_ref(), "start-discussion-other-user").await?
        {
            return Err(not_allowed_to_create());
        }
        let message = match &req.pmid {
            Some(pmid) => {
                let found = self.store.message_by_id(pmid).await.map_err(store_error)?;
                let found =
                    found.ok_or_else(|| ServiceError::invalid("error-invalid-message", "Invalid message"))?;
                if found.rid != req.prid {
                    return Err(ServiceError::invalid(
                        "error-invalid-arguments",
                        "Root message room ID does not match parent room ID ",
                    ));
                }
                Some(found)
            }
            None => None,
        };
        // Rocket.Chat's `canSendMessage` codes, without reasons.
        let parent = self
            .store
            .room_by_id(&req.prid)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::invalid("error-invalid-room", ""))?;
        if !self.can_read(who, &parent).await? {
            return Err(ServiceError::invalid("error-not-allowed", ""));
        }
        if parent.archived {
            return Err(ServiceError::invalid("error-room-archived", ""));
        }
        if parent.prid.is_some() {
            return Err(ServiceError::invalid("error-nested-discussion", "Cannot create nested discussions"));
        }
        let encrypted = req.encrypted.unwrap_or(parent.encrypted);
        if encrypted && req.reply.is_some() {
            return Err(ServiceError::invalid(
                "error-invalid-arguments",
                "Encrypted discussions must not receive an initial reply.",
            ));
        }

        let now = Millis::now();
        let creator = who.user_ref();
        // Public only under a public channel outside any private team.
        let in_private_team = match &parent.team_id {
            Some(team_id) => self
                .store
                .team_by_id(team_id)
                .await
                .map_err(store_error)?
                .is_some_and(|team| team.kind == apogee_types::TEAM_PRIVATE),
            None => false,
        };
        let t = if parent.t == RoomType::Channel && !in_private_team {
            RoomType::Channel
        } else {
            RoomType::Group
        };
        let mut room = Room::new(random_id(), t, Some(random_id()), Some(creator.clone()), now);
        room.fname = Some(req.name.clone());
        room.topic = req.topic.filter(|t| !t.is_empty()).or_else(|| parent.name.clone());
        room.description = message.as_ref().filter(|_| !parent.encrypted).map(|m| m.msg.clone());
        room.encrypted = encrypted;
        room.prid = Some(parent.id.clone());
        let announcement = random_id();
        room.dmid = Some(announcement.clone());

        // The author of the message the discussion is about is invited too.
        let mut invited: Vec<String> = message.iter().map(|m| m.u.username.clone()).collect();
        invited.extend(req.users);
        let mut members: Vec<UserRef> = Vec::new();
        for username in invited.iter().filter(|u| **u != who.username) {
            if let Some(user) = self.auth.find_user(UserSelector::Username(username.clone())).await?
                && !members.iter().any(|m| m.id == user.id)
            {
                members.push(user_ref(&user));
            }
        }
        let mut own = new_subscription(&room, &creator, room_display(&room), now);
        own.roles = vec!["owner".into()];
        let mut subs = vec![own];
        subs.extend(members.iter().map(|m| new_subscription(&room, m, room_display(&room), now)));
        let mut write = RoomWrite::new(room.id.clone());
        write.create = Some(room);
        write.add_subscriptions = subs;
        let created =
            self.commit(write).await?.room.ok_or_else(|| ServiceError::internal("created room vanished"))?;

        let mut created_msg = system_message(&parent.id, "discussion-created", &req.name, &creator, now);
        created_msg.id = announcement;
        created_msg.extra.insert("drid".into(), json!(created.id));
        created_msg.extra.insert("dcount".into(), json!(0));
        let mut write = RoomWrite::new(parent.id.clone());
        write.messages = vec![created_msg];
        self.commit(write).await?;

        if let Some(reply) = req.reply.filter(|r| !r.trim().is_empty()) {
            let first = NewMessage { rid: created.id.clone(), msg: reply, ..Default::default() };
            self.send_message_impl(who, first).await?;
        }
        Ok(created)
    }

    /// After a message in a discussion: the parent's `discussion-created` message follows the
    /// discussion's count and last message time (one write, whatever the room's size).
    pub(crate) async fn refresh_discussion(&self, room: &Room) {
        let (Some(dmid), Some(lm)) = (room.dmid.clone(), room.lm) else { return };
        let count = room.msgs;
        let updated = self
            .store
            .update_message(
                &dmid,
                Box::new(move |m: &mut Message| {
                    m.extra.insert("dcount".into(), json!(count));
                    m.extra.insert("dlm".into(), json!({ "$date": lm.0 }));
                    m.updated_at = Millis::now().max(m.updated_at);
                    Ok(())
                }),
            )
            .await;
        match updated {
            Ok(message) => {
                if let Err(e) = self.announce_change(&message).await {
                    tracing::warn!(error = %e.message, "discussion count not announced");
                }
            }
            // The parent's message may have been deleted; the discussion goes on.
            Err(e) => tracing::debug!(error = %e, "discussion message not updated"),
        }
    }

    pub(crate) async fn room_discussions_impl(
        &self,
        who: &Principal,
        selector: RoomSelector,
        page: PageRequest,
    ) -> ServiceResult<Page<Room>> {
        let not_allowed = || ServiceError::failure_typed("not-allowed", "Not Allowed");
        let room = self.find_room(who, &selector).await.map_err(|_| not_allowed())?;
        if !self.can_read(who, &room).await? {
            return Err(not_allowed());
        }
        self.store.discussions_of_room(&room.id, page).await.map_err(store_error)
    }

    pub(crate) async fn discussion_messages_impl(
        &self,
        who: &Principal,
        rid: &str,
        text: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        // Rocket.Chat throws a plain `Error` here: the code is the whole text.
        let not_allowed = || ServiceError::failure("error-not-allowed");
        let room = self.store.room_by_id(rid).await.map_err(store_error)?.ok_or_else(not_allowed)?;
        if !self.can_read(who, &room).await? {
            return Err(not_allowed());
        }
        let filter = MessageFilter::Discussions(text.to_owned());
        self.store.find_messages(rid, &filter, page).await.map_err(store_error)
    }
}
