//! Marks on messages and finding them again: pins, stars, mentions and text search
//! (Rocket.Chat's `pinMessage`, `unpinMessage`, `starMessage`, `messageSearch` and the
//! `chat.get*Messages` lists).

use apogee_api::MarkedMessages;
use apogee_store::{MessageFilter, RoomWrite};
use apogee_types::{Message, Millis, Page, PageRequest, Principal, Room, ServiceError, ServiceResult};
use serde_json::{Map, Value, json};

use crate::rooms::system_message;
use crate::search::parse_search;
use crate::service::{Messaging, store_error};

fn message_not_found() -> ServiceError {
    ServiceError::invalid(
        "error-message-not-found",
        "The provided \"messageId\" does not match any existing message.",
    )
}

fn not_authorized() -> ServiceError {
    ServiceError::invalid("not-authorized", "Not Authorized")
}

fn pinning_not_allowed() -> ServiceError {
    ServiceError::invalid("error-action-not-allowed", "Message pinning not allowed")
}

/// An EJSON date, as dates inside free-form message fields are kept (rendered per protocol).
fn ejson_date(at: Millis) -> Value {
    json!({ "$date": at.0 })
}

fn is_quote(attachment: &Value) -> bool {
    attachment.get("message_link").is_some_and(|l| !l.is_null())
}

/// Rocket.Chat's `recursiveRemove`: quotes keep nested quotes up to `Message_QuoteChainLimit`
/// levels; anything that is not a quote becomes `null` (as Rocket.Chat stores `undefined`).
fn trim_quote(attachment: &Value, depth: i64, limit: i64) -> Value {
    if !is_quote(attachment) {
        return Value::Null;
    }
    let mut attachment = attachment.clone();
    if let Some(obj) = attachment.as_object_mut() {
        if depth > limit {
            obj.remove("attachments");
        } else if let Some(Value::Array(nested)) = obj.get("attachments") {
            let kept: Vec<Value> =
                nested.iter().map(|n| trim_quote(n, depth + 1, limit)).filter(|n| !n.is_null()).collect();
            obj.insert("attachments".into(), Value::Array(kept));
        } else {
            obj.remove("attachments");
        }
    }
    attachment
}

/// The attachment Rocket.Chat puts on a `message_pinned` system message: the pinned text, its
/// author, and its attachments (quotes deduplicated by link and trimmed).
fn pinned_attachment(original: &Message, quote_limit: i64) -> Value {
    let mut kept: Vec<&Value> = Vec::new();
    if let Some(Value::Array(attachments)) = original.extra.get("attachments") {
        for attachment in attachments {
            let duplicate = is_quote(attachment)
                && kept
                    .iter()
                    .any(|k| is_quote(k) && k.get("message_link") == attachment.get("message_link"));
            if !duplicate {
                kept.push(attachment);
            }
        }
    }
    json!({
        "text": original.msg,
        "author_name": original.u.username,
        "author_icon": format!("/avatar/{}", original.u.username),
        "ts": ejson_date(original.ts),
        "attachments": kept.into_iter().map(|a| trim_quote(a, 1, quote_limit)).collect::<Vec<_>>(),
    })
}

impl Messaging {
    async fn existing_message(&self, id: &str) -> ServiceResult<Message> {
        self.store.message_by_id(id).await.map_err(store_error)?.ok_or_else(message_not_found)
    }

    /// Keeps the room's `lastMessage` in step when `message` is it.
    pub(crate) async fn refresh_last_message(&self, room: &Room, message: &Message) -> ServiceResult<()> {
        if room.last_message.as_ref().is_none_or(|m| m.id != message.id) {
            return Ok(());
        }
        let updated = message.clone();
        let mut write = RoomWrite::new(&room.id);
        write.mutate = Some(Box::new(move |room| {
            if room.last_message.as_ref().is_some_and(|m| m.id == updated.id) {
                room.last_message = Some(Box::new(updated));
                room.updated_at = Millis::now().max(room.updated_at);
            }
            Ok(())
        }));
        self.commit(write).await?;
        Ok(())
    }

    /// The checks `pinMessage` and `unpinMessage` share, in Rocket.Chat's order.
    async fn check_pinning(
        &self,
        who: &Principal,
        message: &Message,
        not_found: &str,
    ) -> ServiceResult<Room> {
        if !self.auth.setting_bool("Message_AllowPinning", true).await {
            return Err(pinning_not_allowed());
        }
        let sub = self.store.subscription(&message.rid, &who.user_id).await.map_err(store_error)?;
        let Some(sub) = sub else {
            // A message in a room the caller is not in is reported as not found.
            return Err(ServiceError::invalid("error-invalid-message", not_found));
        };
        if !self.has_in_room(who, Some(&sub), "pin-message").await? {
            return Err(not_authorized());
        }
        let room =
            self.store.room_by_id(&message.rid).await.map_err(store_error)?.ok_or_else(not_authorized)?;
        if !self.can_read(who, &room).await? {
            return Err(not_authorized());
        }
        Ok(room)
    }

    async fn set_pinned(&self, who: &Principal, id: &str, pinned: bool) -> ServiceResult<Message> {
        let by = json!({ "_id": who.user_id, "username": who.username });
        self.store
            .update_message(
                id,
                Box::new(move |m| {
                    let now = Millis::now();
                    // Rocket.Chat stamps `pinnedAt` on unpinning too.
                    m.extra.insert("pinned".into(), pinned.into());
                    m.extra.insert("pinnedAt".into(), ejson_date(now));
                    m.extra.insert("pinnedBy".into(), by);
                    m.updated_at = now;
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)
    }

    pub(crate) async fn pin_message_impl(&self, who: &Principal, id: &str) -> ServiceResult<Message> {
        let original = self.existing_message(id).await?;
        let room = self.check_pinning(who, &original, "Message you are pinning was not found").await?;
        let pinned = self.set_pinned(who, id, true).await?;
        self.announce_change(&pinned).await?;
        self.refresh_last_message(&room, &pinned).await?;
        let limit = self.auth.setting_i64("Message_QuoteChainLimit", 2).await;
        let t = if pinned.t.as_deref() == Some("e2e") { "message_pinned_e2e" } else { "message_pinned" };
        let mut system = system_message(&room.id, t, "", &who.user_ref(), Millis::now());
        system.extra =
            Map::from_iter([("attachments".to_owned(), json!([pinned_attachment(&pinned, limit)]))]);
        let mut write = RoomWrite::new(&room.id);
        write.messages = vec![system];
        // Saved as `saveSystemMessage` saves it: the pinned message stays the room's last.
        write.keep_last_message = true;
        let outcome = self.commit(write).await?;
        outcome.messages.into_iter().next().ok_or_else(|| ServiceError::internal("pin message not written"))
    }

    pub(crate) async fn unpin_message_impl(&self, who: &Principal, id: &str) -> ServiceResult<()> {
        let original = self.existing_message(id).await?;
        let room = self.check_pinning(who, &original, "Message you are unpinning was not found").await?;
        let unpinned = self.set_pinned(who, id, false).await?;
        self.announce_change(&unpinned).await?;
        self.refresh_last_message(&room, &unpinned).await
    }

    pub(crate) async fn star_message_impl(
        &self,
        who: &Principal,
        id: &str,
        starred: bool,
    ) -> ServiceResult<()> {
        let original = self.existing_message(id).await?;
        if !self.auth.setting_bool("Message_AllowStarring", true).await {
            return Err(ServiceError::invalid("error-action-not-allowed", "Message starring not allowed"));
        }
        // Rocket.Chat quietly does nothing for rooms the caller is not in.
        if self.store.subscription(&original.rid, &who.user_id).await.map_err(store_error)?.is_none() {
            return Ok(());
        }
        let room = self
            .store
            .room_by_id(&original.rid)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::not_allowed("Not allowed"))?;
        if !self.can_read(who, &room).await? {
            return Err(not_authorized());
        }
        let uid = who.user_id.clone();
        let updated = self
            .store
            .update_message(
                id,
                Box::new(move |m| {
                    let mut stars: Vec<Value> = match m.extra.get("starred") {
                        Some(Value::Array(a)) => a.clone(),
                        _ => vec![],
                    };
                    let has =
                        stars.iter().any(|s| s.get("_id").and_then(Value::as_str) == Some(uid.as_str()));
                    match (starred, has) {
                        (true, false) => stars.push(json!({ "_id": uid })),
                        (false, true) => {
                            stars.retain(|s| s.get("_id").and_then(Value::as_str) != Some(uid.as_str()));
                        }
                        _ => {}
                    }
                    m.extra.insert("starred".into(), Value::Array(stars));
                    m.updated_at = Millis::now();
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        self.announce_change(&updated).await?;
        self.refresh_last_message(&room, &updated).await
    }

    pub(crate) async fn marked_messages_impl(
        &self,
        who: &Principal,
        rid: &str,
        which: MarkedMessages,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        let allowed = self.can_read_id(who, rid).await?;
        let filter = match which {
            MarkedMessages::Pinned if !allowed => return Err(ServiceError::not_allowed("Not allowed")),
            // `findStarredMessages` / `findMentionedMessages` throw a plain `Error`.
            _ if !allowed => return Err(ServiceError::failure("error-not-allowed")),
            MarkedMessages::Pinned => MessageFilter::Pinned,
            MarkedMessages::Starred => MessageFilter::StarredBy(who.user_id.clone()),
            MarkedMessages::Mentioned => MessageFilter::Mentioning(who.username.clone()),
        };
        self.store.find_messages(rid, &filter, page).await.map_err(store_error)
    }

    pub(crate) async fn search_messages_impl(
        &self,
        who: &Principal,
        rid: &str,
        text: &str,
        page: PageRequest,
    ) -> ServiceResult<Vec<Message>> {
        let allowed = self.can_read_id(who, rid).await?;
        if !allowed {
            // Rocket.Chat's method answers `false` here and the route then fails on a TypeError;
            // answer a clear refusal instead.
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        // Dates are shifted by the caller's `utcOffset`, as Rocket.Chat does.
        let utc_offset = if ["before:", "after:", "on:"].iter().any(|op| text.contains(op)) {
            let user = self.auth.find_user(apogee_api::UserSelector::Id(who.user_id.clone())).await?;
            user.map_or(0.0, |u| u.utc_offset)
        } else {
            0.0
        };
        let force_regex = self.auth.setting_bool("Message_AlwaysSearchRegExp", false).await;
        let Some(search) = parse_search(text, &who.user_id, &who.username, utc_offset, force_regex) else {
            return Ok(vec![]);
        };
        if let Some((pattern, _)) = &search.regex
            && let Err(e) = regex_lite::Regex::new(pattern)
        {
            return Err(ServiceError::failure(format!("Regular expression is invalid: {e}")));
        }
        let found = self
            .store
            .find_messages(rid, &MessageFilter::Search(Box::new(search)), page)
            .await
            .map_err(store_error)?;
        Ok(found.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_trimmed_to_the_chain_limit() {
        let deep = json!({
            "message_link": "a",
            "attachments": [{ "message_link": "b", "attachments": [{ "message_link": "c", "attachments": [] }] }]
        });
        let trimmed = trim_quote(&deep, 1, 1);
        assert_eq!(trimmed, json!({ "message_link": "a", "attachments": [{ "message_link": "b" }] }));
        assert_eq!(trim_quote(&json!({ "title": "file" }), 1, 2), Value::Null);
    }

    #[test]
    fn pinned_quotes_are_deduplicated_by_link() {
        let mut original = apogee_store::testsuite::message("m2", "r1", "u1", 10);
        let quote = json!({ "message_link": "l1", "text": "q", "attachments": [{ "message_link": "l0" }] });
        original.extra.insert("attachments".into(), json!([quote, quote]));
        let pinned = pinned_attachment(&original, 2);
        assert_eq!(
            pinned["attachments"],
            json!([{ "message_link": "l1", "text": "q", "attachments": [{ "message_link": "l0" }] }])
        );
    }
}
