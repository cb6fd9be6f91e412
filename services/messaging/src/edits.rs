//! Changing messages after the fact: edits, deletions and reactions.

use apogee_api::events::{RoomEvent, room_subject};
use apogee_types::{Message, Millis, Principal, ServiceError, ServiceResult};
use serde_json::{Value, json};

use crate::service::{Messaging, store_error};

fn no_such_message(id: &str) -> ServiceError {
    ServiceError::failure(format!("No message found with the id of \"{id}\"."))
}

fn wrong_room() -> ServiceError {
    ServiceError::failure("The room id provided does not match where the message is from.")
}

/// `:thumbsup:` or `thumbsup` → `:thumbsup:`; `None` for anything that is not an emoji name.
pub(crate) fn emoji_key(emoji: &str) -> Option<String> {
    let name = emoji.trim().trim_matches(':');
    let valid = !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '+'));
    valid.then(|| format!(":{name}:"))
}

fn minutes_since(ts: Millis) -> i64 {
    (Millis::now().0 - ts.0) / 60_000
}

impl Messaging {
    async fn message_in(&self, rid: Option<&str>, id: &str) -> ServiceResult<Message> {
        let message =
            self.store.message_by_id(id).await.map_err(store_error)?.ok_or_else(|| no_such_message(id))?;
        if rid.is_some_and(|rid| rid != message.rid) {
            return Err(wrong_room());
        }
        Ok(message)
    }

    /// Publishes a changed (not new) message to the room's watchers.
    pub(crate) async fn announce_change(&self, message: &Message) -> ServiceResult<()> {
        let room = self.room_by_id(&message.rid).await?;
        let event = RoomEvent::Message {
            message: Box::new(message.clone()),
            room: Box::new(room),
            touched: vec![],
            left: vec![],
            inserted: false,
        };
        self.publish(&room_subject(&message.rid, "message"), &event).await;
        Ok(())
    }

    pub(crate) async fn update_message_impl(
        &self,
        who: &Principal,
        rid: &str,
        id: &str,
        text: String,
        custom_fields: Option<Value>,
    ) -> ServiceResult<Message> {
        let original = self.message_in(Some(rid), id).await?;
        // Rocket.Chat compares with the text a file message shows (its first attachment's
        // description) and does nothing when it and the custom fields are unchanged.
        let shown = original
            .extra
            .get("attachments")
            .and_then(|a| a.get(0))
            .and_then(|a| a.get("description"))
            .and_then(Value::as_str)
            .unwrap_or(&original.msg);
        let custom_fields = custom_fields.filter(|f| !f.is_null());
        if shown == text && custom_fields.is_none() {
            return Ok(original);
        }
        if original.t.is_some() {
            return Err(ServiceError::invalid("error-action-not-allowed", "Message editing not allowed"));
        }
        let sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        let may_edit_any = self.has_in_room(who, sub.as_ref(), "edit-message").await?;
        let own = original.u.id == who.user_id;
        let may_edit_own = own && self.auth.setting_bool("Message_AllowEditing", true).await;
        if !(may_edit_any || may_edit_own) {
            return Err(ServiceError::invalid("error-action-not-allowed", "Message editing not allowed"));
        }
        let block = self.auth.setting_i64("Message_AllowEditing_BlockEditInMinutes", 0).await;
        let bypass = self.has_in_room(who, sub.as_ref(), "bypass-time-limit-edit-and-delete").await?;
        if block > 0 && !bypass && minutes_since(original.ts) >= block {
            return Err(ServiceError::invalid("error-message-editing-blocked", "Message editing is blocked"));
        }
        let max = self.auth.setting_i64("Message_MaxAllowedSize", 5000).await;
        if i64::try_from(text.chars().count()).unwrap_or(i64::MAX) > max {
            return Err(ServiceError::invalid(
                "error-message-size-exceeded",
                "Message size exceeds Message_MaxAllowedSize",
            ));
        }
        let now = Millis::now();
        let text = self.filter_bad_words(text).await;
        self.validate_custom_fields(custom_fields.as_ref()).await?;
        let (mentions, _, _) = self.resolve_mentions(&text).await?;
        // An edit may not add the `@all`/`@here` its author could not have sent.
        self.check_group_mentions(who, sub.as_ref(), &mentions).await?;
        // Rocket.Chat saves the copy before validating; after it, a refused edit leaves nothing.
        if self.auth.setting_bool("Message_KeepHistory", false).await {
            self.keep_version(&original, who, now, true).await?;
        }
        let channels = self.resolve_channels(&text).await?;
        // The links and their quotes, worked out on the message as it was (the store's
        // mutation cannot wait on lookups); the edit then sets both.
        let mut content = original.extra.clone();
        crate::content::set_urls(&text, &mut content);
        self.quote_links(who, &mut content).await?;
        let editor = who.user_ref();
        let edited = self
            .store
            .update_message(
                id,
                Box::new(move |m| {
                    m.msg = text;
                    for key in ["urls", "attachments"] {
                        match content.get(key) {
                            Some(value) => m.extra.insert(key.into(), value.clone()),
                            None => m.extra.remove(key),
                        };
                    }
                    m.mentions = mentions;
                    m.channels = channels;
                    if let Some(fields) = custom_fields {
                        m.extra.insert("customFields".into(), fields);
                    }
                    m.edited_at = Some(now);
                    m.edited_by = Some(apogee_types::UserRef { name: None, ..editor });
                    m.updated_at = now;
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        self.announce_change(&edited).await?;
        Ok(edited)
    }

    /// Stores a hidden copy of `message` as Rocket.Chat's `cloneAndSaveAsHistoryById` does: a
    /// new id (with `parent`) when `as_version`, else the message itself, hidden; either way
    /// stamped with who made the change and when.
    async fn keep_version(
        &self,
        message: &Message,
        who: &Principal,
        now: Millis,
        as_version: bool,
    ) -> ServiceResult<()> {
        let mut copy = message.clone();
        if as_version {
            copy.id = apogee_types::random_id();
            copy.extra.insert("parent".into(), message.id.clone().into());
            copy.edited_at = Some(now);
            copy.edited_by = Some(apogee_types::UserRef { name: None, ..who.user_ref() });
        }
        copy.extra.insert("_hidden".into(), true.into());
        copy.updated_at = now;
        self.store.insert_hidden_message(&copy).await.map_err(store_error)
    }

    pub(crate) async fn delete_message_impl(
        &self,
        who: &Principal,
        rid: Option<&str>,
        id: &str,
    ) -> ServiceResult<Message> {
        let message = self.message_in(rid, id).await?;
        let room = self.room_by_id(&message.rid).await?;
        let sub = self.store.subscription(&room.id, &who.user_id).await.map_err(store_error)?;
        let allowed = if self.has_in_room(who, sub.as_ref(), "force-delete-message").await? {
            true
        } else {
            let any = self.has_in_room(who, sub.as_ref(), "delete-message").await?;
            let own = message.u.id == who.user_id
                && self.has_in_room(who, sub.as_ref(), "delete-own-message").await?;
            let enabled = self.auth.setting_bool("Message_AllowDeleting", true).await;
            let block = self.auth.setting_i64("Message_AllowDeleting_BlockDeleteInMinutes", 0).await;
            let bypass = self.has_in_room(who, sub.as_ref(), "bypass-time-limit-edit-and-delete").await?;
            let in_time = block <= 0 || bypass || minutes_since(message.ts) < block;
            let read_only_ok = !room.ro || self.has_in_room(who, sub.as_ref(), "post-readonly").await?;
            enabled && (any || own) && in_time && read_only_ok
        };
        if !allowed {
            return Err(ServiceError::invalid("error-action-not-allowed", "Not allowed"));
        }
        // A thread's root is always kept and shown as deleted, whatever the settings say.
        let is_thread = message.extra.get("tcount").and_then(Value::as_u64).is_some_and(|n| n > 0);
        let keep_history = is_thread || self.auth.setting_bool("Message_KeepHistory", false).await;
        let show_deleted = is_thread || self.auth.setting_bool("Message_ShowDeletedStatus", false).await;
        let now = Millis::now();
        if keep_history && !show_deleted {
            // Rocket.Chat hides the message where it is; ours leaves the room's messages (recorded
            // as removed, so syncing clients learn it is gone) and stays as a hidden copy.
            let deleted = self.store.delete_message(id).await.map_err(store_error)?;
            self.keep_version(&deleted, who, now, false).await?;
            self.publish(
                &room_subject(&room.id, "deleted"),
                &RoomEvent::MessageDeleted { message_id: deleted.id.clone() },
            )
            .await;
            return Ok(deleted);
        }
        if show_deleted {
            if keep_history {
                self.keep_version(&message, who, now, true).await?;
            }
            // Rocket.Chat keeps a `t: rm` placeholder that says the message was deleted.
            let editor = who.user_ref();
            let placeholder = self
                .store
                .update_message(
                    id,
                    Box::new(move |m| {
                        m.msg.clear();
                        m.t = Some("rm".into());
                        m.mentions.clear();
                        m.channels.clear();
                        m.reactions.clear();
                        for key in ["attachments", "urls", "file", "files", "blocks"] {
                            m.extra.remove(key);
                        }
                        m.edited_at = Some(now);
                        m.edited_by = Some(apogee_types::UserRef { name: None, ..editor });
                        m.updated_at = now;
                        Ok(())
                    }),
                )
                .await
                .map_err(store_error)?;
            self.announce_change(&placeholder).await?;
            return Ok(message);
        }
        let deleted = self.store.delete_message(id).await.map_err(store_error)?;
        self.publish(
            &room_subject(&room.id, "deleted"),
            &RoomEvent::MessageDeleted { message_id: deleted.id.clone() },
        )
        .await;
        Ok(deleted)
    }

    pub(crate) async fn react_impl(
        &self,
        who: &Principal,
        id: &str,
        emoji: &str,
        should_react: Option<bool>,
    ) -> ServiceResult<Message> {
        let key = emoji_key(emoji)
            .ok_or_else(|| ServiceError::invalid("error-not-allowed", "Invalid emoji provided."))?;
        let message = self.message_in(None, id).await?;
        let room = self.room_by_id(&message.rid).await?;
        if !self.can_read(who, &room).await? {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        if room.archived {
            return Err(ServiceError::invalid("error-room-archived", "Room is archived"));
        }
        let username = who.username.clone();
        let updated = self
            .store
            .update_message(
                id,
                Box::new(move |m| {
                    let mut names: Vec<String> = m
                        .reactions
                        .get(&key)
                        .and_then(|r| r.get("usernames"))
                        .and_then(Value::as_array)
                        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                        .unwrap_or_default();
                    let has = names.contains(&username);
                    match (should_react.unwrap_or(!has), has) {
                        (true, false) => names.push(username),
                        (false, true) => names.retain(|n| n != &username),
                        _ => return Ok(()),
                    }
                    if names.is_empty() {
                        m.reactions.remove(&key);
                    } else {
                        m.reactions.insert(key, json!({ "usernames": names }));
                    }
                    m.updated_at = Millis::now();
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        self.announce_change(&updated).await?;
        // `setReaction` copies the reactions into the room's last message when it is that one.
        self.refresh_last_message(&room, &updated).await?;
        Ok(updated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_names() {
        assert_eq!(emoji_key("thumbsup").as_deref(), Some(":thumbsup:"));
        assert_eq!(emoji_key(":+1:").as_deref(), Some(":+1:"));
        assert_eq!(emoji_key("::"), None);
        assert_eq!(emoji_key("not an emoji"), None);
    }
}
