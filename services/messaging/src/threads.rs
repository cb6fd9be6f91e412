//! Threads: what a reply changes on its root and on the followers' subscriptions, the thread
//! listings and syncs, following, and marking threads read.
//!
//! A thread's followers are the root message's `replies` (user ids), as in Rocket.Chat. A reply
//! writes the root (`tcount`, `tlm`, `replies`) and one subscription per follower it notifies
//! (`tunread`), in the same transaction as the reply; no other member is touched.

use apogee_api::{Changes, ThreadListKind};
use apogee_store::{RoomWrite, ThreadFilter};
use apogee_types::{
    Message, Millis, Page, PageRequest, Principal, Room, RoomType, ServiceError, ServiceResult, Subscription,
};
use serde_json::{Value, json};

use crate::service::{Messaging, store_error};

/// The followers recorded on a thread root.
pub(crate) fn followers_of(root: &Message) -> Vec<String> {
    match root.extra.get("replies") {
        Some(Value::Array(ids)) => ids.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

fn has_replies(root: &Message) -> bool {
    root.extra.get("tcount").and_then(Value::as_u64).is_some_and(|n| n > 0)
}

fn add_once(list: &mut Vec<String>, id: &str) {
    if !list.iter().any(|x| x == id) {
        list.push(id.to_owned());
    }
}

fn disabled() -> ServiceError {
    ServiceError::invalid("error-not-allowed", "Threads Disabled")
}

fn not_allowed() -> ServiceError {
    ServiceError::invalid("error-not-allowed", "Not Allowed")
}

fn removed_pairs(removed: Vec<apogee_store::Removed>) -> Vec<(String, Millis)> {
    removed.into_iter().map(|r| (r.id, r.deleted_at)).collect()
}

/// Who a reply concerns, worked out before the write.
pub(crate) struct ReplyPlan {
    /// Followers to mark the thread unread for (not the sender, not mentioned users).
    pub followers: Vec<String>,
    /// Everyone to notify about the reply: the followers and the mentioned users.
    pub notify: Vec<String>,
}

impl Messaging {
    pub(crate) async fn ensure_threads_enabled(&self) -> ServiceResult<()> {
        if self.auth.setting_bool("Threads_enabled", true).await { Ok(()) } else { Err(disabled()) }
    }

    /// The root of the thread a reply goes to: replies to a reply join the root's thread.
    pub(crate) async fn thread_root(&self, room: &Room, tmid: &str) -> ServiceResult<Message> {
        if !self.auth.setting_bool("Threads_enabled", true).await {
            return Err(ServiceError::not_allowed("not-allowed"));
        }
        let parent = self.store.message_by_id(tmid).await.map_err(store_error)?;
        let invalid = || ServiceError::invalid("error-invalid-message", "Invalid thread message");
        let parent = parent.filter(|p| p.rid == room.id).ok_or_else(invalid)?;
        match &parent.tmid {
            Some(root) => self.store.message_by_id(root).await.map_err(store_error)?.ok_or_else(invalid),
            None => Ok(parent),
        }
    }

    /// Adds a reply's changes to `write`: the root's counters and followers, and `tunread` on
    /// the subscriptions of the followers it notifies. `mentioned` users get their own
    /// subscription change from the caller; `thread_mentioned` says to add the thread to their
    /// `tunread`/`tunreadUser` there.
    pub(crate) fn plan_reply(
        write: &mut RoomWrite,
        room: &Room,
        root: &Message,
        sender: &str,
        mentioned: &[String],
        group_mention: bool,
        now: Millis,
    ) -> ReplyPlan {
        // The first reply makes the root's author (and a DM's members) followers.
        let mut followers = if has_replies(root) {
            followers_of(root)
        } else {
            let mut first = vec![root.u.id.clone()];
            if room.t == RoomType::Direct {
                for uid in &room.uids {
                    add_once(&mut first, uid);
                }
            }
            first
        };
        let mut new_followers = followers.clone();
        for uid in mentioned {
            add_once(&mut new_followers, uid);
        }
        add_once(&mut new_followers, sender);
        followers.retain(|uid| uid != sender && !mentioned.contains(uid));

        write.update_messages.push((
            root.id.clone(),
            Box::new(move |m: &mut Message| {
                let count = m.extra.get("tcount").and_then(Value::as_u64).unwrap_or(0) + 1;
                let mut replies = followers_of(m);
                for uid in &new_followers {
                    add_once(&mut replies, uid);
                }
                m.extra.insert("tcount".into(), count.into());
                m.extra.insert("tlm".into(), json!({ "$date": now.0 }));
                m.extra.insert("replies".into(), json!(replies));
                m.updated_at = now.max(m.updated_at);
                Ok(())
            }),
        ));
        for uid in &followers {
            let tmid = root.id.clone();
            write.update_subscriptions.push((
                uid.clone(),
                Box::new(move |s: &mut Subscription, _: &Room| {
                    add_once(&mut s.tunread, &tmid);
                    if group_mention {
                        add_once(&mut s.tunread_group, &tmid);
                    }
                    s.alert = true;
                    s.open = true;
                }),
            ));
        }
        let mut notify = followers.clone();
        for uid in mentioned.iter().filter(|uid| *uid != sender) {
            add_once(&mut notify, uid);
        }
        ReplyPlan { followers, notify }
    }

    /// The room of a thread root the caller may read.
    async fn readable_room(&self, who: &Principal, rid: &str) -> ServiceResult<Room> {
        let room = self.store.room_by_id(rid).await.map_err(store_error)?.ok_or_else(not_allowed)?;
        if !self.can_read(who, &room).await? {
            return Err(not_allowed());
        }
        Ok(room)
    }

    /// A thread root the caller may read, for the thread-message endpoints.
    async fn readable_thread(&self, who: &Principal, tmid: &str) -> ServiceResult<Message> {
        let root = self
            .store
            .message_by_id(tmid)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::invalid("error-invalid-message", "Invalid Message"))?;
        self.readable_room(who, &root.rid).await?;
        Ok(root)
    }

    pub(crate) async fn threads_impl(
        &self,
        who: &Principal,
        rid: &str,
        kind: ThreadListKind,
        text: Option<String>,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        self.ensure_threads_enabled().await?;
        let room = self.readable_room(who, rid).await?;
        let mut filter = ThreadFilter { text, ..Default::default() };
        match kind {
            ThreadListKind::All => {}
            ThreadListKind::Following => filter.follower = Some(who.user_id.clone()),
            ThreadListKind::Unread => {
                let sub = self.store.subscription(&room.id, &who.user_id).await.map_err(store_error)?;
                filter.ids = Some(sub.map(|s| s.tunread).unwrap_or_default());
            }
        }
        self.store.threads(&room.id, &filter, page).await.map_err(store_error)
    }

    pub(crate) async fn thread_messages_impl(
        &self,
        who: &Principal,
        tmid: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        self.ensure_threads_enabled().await?;
        let root = self.readable_thread(who, tmid).await?;
        self.store.thread_messages(&root.id, page).await.map_err(store_error)
    }

    pub(crate) async fn sync_threads_impl(
        &self,
        who: &Principal,
        rid: &str,
        since: Millis,
    ) -> ServiceResult<Changes<Message>> {
        self.ensure_threads_enabled().await?;
        let room = self.readable_room(who, rid).await?;
        let (update, removed) = self.store.threads_changed(&room.id, since).await.map_err(store_error)?;
        Ok(Changes { update, remove: removed_pairs(removed) })
    }

    pub(crate) async fn sync_thread_messages_impl(
        &self,
        who: &Principal,
        tmid: &str,
        since: Millis,
    ) -> ServiceResult<Changes<Message>> {
        self.ensure_threads_enabled().await?;
        let root = self.readable_thread(who, tmid).await?;
        let (update, removed) =
            self.store.thread_messages_changed(&root.id, since).await.map_err(store_error)?;
        Ok(Changes { update, remove: removed_pairs(removed) })
    }

    pub(crate) async fn follow_message_impl(
        &self,
        who: &Principal,
        mid: &str,
        follow: bool,
    ) -> ServiceResult<()> {
        if !self.auth.setting_bool("Threads_enabled", true).await {
            return Err(ServiceError::invalid("error-not-allowed", "not-allowed"));
        }
        let message = self
            .store
            .message_by_id(mid)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::invalid("error-invalid-message", "Invalid message"))?;
        let room = self.room_by_id(&message.rid).await?;
        if !self.can_read(who, &room).await? {
            return Err(ServiceError::invalid("error-not-allowed", "not-allowed"));
        }
        let tmid = message.tmid.clone().unwrap_or_else(|| message.id.clone());
        let uid = who.user_id.clone();
        let now = Millis::now();
        let mut write = RoomWrite::new(room.id.clone());
        let follower = uid.clone();
        write.update_messages.push((
            tmid.clone(),
            Box::new(move |m: &mut Message| {
                let mut replies = followers_of(m);
                if follow {
                    add_once(&mut replies, &follower);
                } else {
                    replies.retain(|id| *id != follower);
                }
                m.extra.insert("replies".into(), json!(replies));
                m.updated_at = now.max(m.updated_at);
                Ok(())
            }),
        ));
        if !follow {
            let sub = self.store.subscription(&room.id, &uid).await.map_err(store_error)?;
            if sub.is_some_and(|s| s.tunread.contains(&tmid)) {
                write.update_subscriptions.push((uid, Self::clear_threads(Some(tmid))));
            }
        }
        self.commit(write).await?;
        Ok(())
    }

    fn clear_threads(tmid: Option<String>) -> apogee_store::SubscriptionMutation {
        Box::new(move |s: &mut Subscription, _: &Room| match &tmid {
            Some(tmid) => {
                for list in [&mut s.tunread, &mut s.tunread_user, &mut s.tunread_group] {
                    list.retain(|id| id != tmid);
                }
            }
            None => {
                s.tunread.clear();
                s.tunread_user.clear();
                s.tunread_group.clear();
            }
        })
    }

    pub(crate) async fn read_threads_impl(
        &self,
        who: &Principal,
        rid: &str,
        tmid: Option<String>,
    ) -> ServiceResult<()> {
        let Some(sub) = self.store.subscription(rid, &who.user_id).await.map_err(store_error)? else {
            return Ok(());
        };
        let unread = match &tmid {
            Some(tmid) => sub.tunread.contains(tmid),
            None => !sub.tunread.is_empty(),
        };
        // Nothing to clear writes nothing.
        if !unread && sub.tunread_user.is_empty() && sub.tunread_group.is_empty() {
            return Ok(());
        }
        let mut write = RoomWrite::new(rid);
        write.update_subscriptions.push((who.user_id.clone(), Self::clear_threads(tmid)));
        self.commit(write).await?;
        Ok(())
    }
}
