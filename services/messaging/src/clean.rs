//! `rooms.cleanHistory`: pruning a window of a room's messages, as Rocket.Chat's
//! `cleanRoomHistory` does (its discussions and unread-thread marks go with them).

use std::collections::HashSet;

use apogee_api::CleanHistory;
use apogee_api::events::{FILES_PRUNED_SUBJECT, FilesPruned, RoomEvent, room_subject};
use apogee_store::{HistoryQuery, RoomWrite};
use apogee_types::{
    Message, Millis, PageRequest, Principal, Room, ServiceError, ServiceResult, Subscription,
};
use serde_json::{Value, json};

use crate::service::{Messaging, store_error};

/// How many messages one read of the window brings.
const BATCH: u64 = 500;

/// The text a message keeps when its file is pruned (`File_removed_by_prune`, in italics).
const FILE_REMOVED: &str = "_File removed by prune_";

fn has_file(m: &Message) -> bool {
    m.extra.get("file").and_then(|f| f.get("_id")).is_some()
}

fn is_thread(m: &Message) -> bool {
    m.tmid.is_some() || m.extra.contains_key("tcount")
}

fn drid(m: &Message) -> Option<&str> {
    m.extra.get("drid").and_then(Value::as_str)
}

/// A `t: rm` placeholder left by a deletion, which Rocket.Chat removes but does not count.
fn is_removed_placeholder(m: &Message) -> bool {
    m.t.as_deref() == Some("rm") && m.edited_at.is_some() && m.edited_by.is_some()
}

impl Messaging {
    pub(crate) async fn clean_history_impl(
        &self,
        who: &Principal,
        rid: &str,
        req: CleanHistory,
    ) -> ServiceResult<u64> {
        let room = self.room_by_id(rid).await?;
        if !self.can_read(who, &room).await? {
            return Err(ServiceError::failure_typed(
                "error-not-allowed",
                "User does not have access to the room [error-not-allowed]",
            ));
        }
        let sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        if !self.has_in_room(who, sub.as_ref(), "clean-channel-history").await? {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        let window = self.window(&room, &req).await?;
        if req.files_only {
            return self.strip_files(&window).await;
        }
        if !req.ignore_discussion {
            for drid in window.iter().filter_map(drid) {
                if self.store.room_by_id(drid).await.map_err(store_error)?.is_some() {
                    let mut write = RoomWrite::new(drid);
                    write.delete = true;
                    self.commit(write).await?;
                }
            }
        }
        if !req.ignore_threads {
            let roots: HashSet<String> =
                window.iter().filter(|m| m.extra.contains_key("tcount")).map(|m| m.id.clone()).collect();
            self.forget_unread_threads(rid, &roots).await?;
        }
        let mut count = 0;
        for message in &window {
            // Removed one by one: each removal is durable and announced (the files service drops
            // the message's uploads when it hears of it).
            let deleted = match self.store.delete_message(&message.id).await {
                Ok(m) => m,
                Err(apogee_store::StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(store_error(e)),
            };
            self.publish(
                &room_subject(rid, "deleted"),
                &RoomEvent::MessageDeleted { message_id: deleted.id },
            )
            .await;
            if !is_removed_placeholder(message) {
                count += 1;
            }
        }
        Ok(count)
    }

    /// The messages of the window that the request's filters keep, oldest first, at most `limit`.
    async fn window(&self, room: &Room, req: &CleanHistory) -> ServiceResult<Vec<Message>> {
        let users: HashSet<&str> = req.from_users.iter().map(String::as_str).collect();
        let keep = |m: &Message| {
            let pinned = m.extra.get("pinned").and_then(Value::as_bool) == Some(true);
            let skipped = (req.files_only && !has_file(m))
                || (req.exclude_pinned && pinned)
                || (req.ignore_discussion && drid(m).is_some())
                || (req.ignore_threads && is_thread(m))
                || (!users.is_empty() && !users.contains(m.u.username.as_str()));
            !skipped
        };
        let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
        let mut found = Vec::new();
        let mut offset = 0;
        loop {
            let query = HistoryQuery {
                latest: Some(req.latest),
                oldest: Some(req.oldest),
                inclusive: req.inclusive,
                offset,
                count: Some(BATCH),
                show_thread_messages: true,
                oldest_first: true,
            };
            let batch = self.store.history(&room.id, &query).await.map_err(store_error)?;
            let len = batch.len() as u64;
            for m in batch.into_iter().filter(|m| keep(m)) {
                found.push(m);
                if limit > 0 && found.len() >= limit {
                    return Ok(found);
                }
            }
            if len < BATCH {
                return Ok(found);
            }
            offset += len;
        }
    }

    /// `filesOnly`: the messages stay, their file replaced by a note that it was pruned.
    async fn strip_files(&self, window: &[Message]) -> ServiceResult<u64> {
        let mut count = 0;
        for message in window {
            let now = Millis::now();
            let updated = self
                .store
                .update_message(
                    &message.id,
                    Box::new(move |m| {
                        m.extra.remove("file");
                        m.extra.remove("files");
                        m.extra.insert(
                            "attachments".into(),
                            json!([{ "color": "#FD745E", "text": FILE_REMOVED }]),
                        );
                        m.updated_at = now.max(m.updated_at);
                        Ok(())
                    }),
                )
                .await
                .map_err(store_error)?;
            self.announce_change(&updated).await?;
            // The message no longer shows its file: the files service drops the bytes.
            let pruned = FilesPruned { message_id: updated.id.clone() };
            self.publish(FILES_PRUNED_SUBJECT, &pruned).await;
            count += 1;
        }
        Ok(count)
    }

    /// Removes pruned thread roots from the members' unread threads.
    async fn forget_unread_threads(&self, rid: &str, roots: &HashSet<String>) -> ServiceResult<()> {
        if roots.is_empty() {
            return Ok(());
        }
        let all = PageRequest { offset: 0, count: None };
        let members = self.store.subscriptions_of_room(rid, all).await.map_err(store_error)?;
        let mut write = RoomWrite::new(rid);
        for sub in members.items.iter().filter(|s| s.tunread.iter().any(|t| roots.contains(t))) {
            let roots = roots.clone();
            write.update_subscriptions.push((
                sub.u.id.clone(),
                Box::new(move |s: &mut Subscription, _: &Room| {
                    s.tunread.retain(|t| !roots.contains(t));
                    s.tunread_user.retain(|t| !roots.contains(t));
                    s.tunread_group.retain(|t| !roots.contains(t));
                }),
            ));
        }
        if !write.update_subscriptions.is_empty() {
            self.commit(write).await?;
        }
        Ok(())
    }
}
