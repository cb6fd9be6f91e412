//! Posting, reading and paging messages.

use apogee_api::events::{UserEvent, user_subject};
use apogee_api::{History, HistoryRequest, NewMessage, UserSelector};
use apogee_store::{HistoryQuery, RoomWrite};
use apogee_types::{
    ChannelMention, Mention, Message, Millis, Principal, Room, RoomType, ServiceError, ServiceResult,
    Subscription, random_id,
};

use crate::service::{Messaging, store_error};

/// `@name` and `#name` tokens in a message, as Rocket.Chat's mention parser finds them.
pub(crate) fn mention_tokens(msg: &str, sigil: char) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    let mut chars = msg.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at_boundary =
            prev.is_none_or(|p| p.is_whitespace() || matches!(p, '(' | '[' | '{' | '"' | '\'' | ','));
        prev = Some(c);
        if c != sigil || !at_boundary {
            continue;
        }
        let rest = &msg[i + c.len_utf8()..];
        let token: String =
            rest.chars().take_while(|ch| ch.is_alphanumeric() || matches!(ch, '.' | '_' | '-')).collect();
        let token = token.trim_end_matches(['.', '-']).to_owned();
        if !token.is_empty() && !found.contains(&token) {
            found.push(token);
        }
        if let Some((_, next)) = chars.peek() {
            prev = Some(*next);
        }
    }
    found
}

impl Messaging {
    /// Rocket.Chat's `preventMention`: `@all` and `@here` each need their permission, globally
    /// or through a room role, on send and on edit alike.
    pub(crate) async fn check_group_mentions(
        &self,
        who: &Principal,
        sub: Option<&Subscription>,
        mentions: &[Mention],
    ) -> ServiceResult<()> {
        for (mention, permission) in [("all", "mention-all"), ("here", "mention-here")] {
            if mentions.iter().any(|m| m.id == mention) && !self.has_in_room(who, sub, permission).await? {
                return Err(ServiceError::invalid(
                    "error-action-not-allowed",
                    format!("Notify {mention} in this room not allowed"),
                )
                .with_details(serde_json::json!({ "action": "Notify all in this room" })));
            }
        }
        Ok(())
    }

    pub(crate) async fn send_message_impl(&self, who: &Principal, new: NewMessage) -> ServiceResult<Message> {
        let room = self.room_by_id(&new.rid).await?;
        let sub = self.store.subscription(&room.id, &who.user_id).await.map_err(store_error)?;
        // Rocket.Chat checks access, not membership: anyone who may read a public channel may post.
        if sub.is_none() && !self.can_read(who, &room).await? {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        if room.archived {
            return Err(ServiceError::invalid("error-room-archived", "Room is archived"));
        }
        if room.ro
            && !room.unmuted.contains(&who.username)
            && !self.has_in_room(who, sub.as_ref(), "post-readonly").await?
        {
            return Err(ServiceError::not_allowed("You can't send messages because the room is readonly."));
        }
        if room.muted.contains(&who.username) {
            return Err(ServiceError::invalid(
                "error-user-muted",
                "You have been muted and cannot speak in this room",
            ));
        }
        let max = self.auth.setting_i64("Message_MaxAllowedSize", 5000).await;
        if i64::try_from(new.msg.chars().count()).unwrap_or(i64::MAX) > max {
            return Err(ServiceError::invalid(
                "error-message-size-exceeded",
                "Message size exceeds Message_MaxAllowedSize",
            ));
        }
        self.validate_custom_fields(new.extra.get("customFields")).await?;
        let impersonates =
            ["alias", "avatar"].iter().any(|k| new.extra.get(*k).is_some_and(|v| !v.is_null()));
        if impersonates && !self.has_in_room(who, sub.as_ref(), "message-impersonate").await? {
            return Err(ServiceError::failure_typed("error-action-not-allowed", "Not enough permission"));
        }
        let root = match &new.tmid {
            Some(tmid) => Some(self.thread_root(&room, tmid).await?),
            None => None,
        };
        let tmid = root.as_ref().map(|r| r.id.clone());
        if new.tshow && tmid.is_none() {
            return Err(ServiceError::invalid("invalid-params", "tshow provided but missing tmid"));
        }

        let now = Millis::now();
        let text = self.filter_bad_words(new.msg).await;
        let mut extra = new.extra;
        crate::content::set_urls(&text, &mut extra);
        self.quote_links(who, &mut extra).await?;
        let (mentions, mentioned_ids, group_mention) = self.resolve_mentions(&text).await?;
        self.check_group_mentions(who, sub.as_ref(), &mentions).await?;
        let channels = self.resolve_channels(&text).await?;
        let message = Message {
            id: new.id.filter(|id| !id.is_empty()).unwrap_or_else(random_id),
            rid: room.id.clone(),
            msg: text,
            ts: now,
            u: who.user_ref(),
            updated_at: now,
            t: None,
            mentions,
            channels,
            tmid: tmid.clone(),
            tshow: new.tshow,
            groupable: new.groupable,
            seq: 0,
            edited_at: None,
            edited_by: None,
            reactions: Default::default(),
            extra,
        };

        let mut write = RoomWrite::new(room.id.clone());
        write.messages = vec![message];
        let sender = who.user_id.clone();
        write.update_subscriptions.push((
            sender.clone(),
            Box::new(|s: &mut Subscription, r: &Room| {
                s.last_read_seq = r.msgs;
                s.ls = r.lm;
                s.open = true;
            }),
        ));
        let mut touched: Vec<String> = vec![sender.clone()];
        let thread = root.as_ref().map(|root| {
            Self::plan_reply(&mut write, &room, root, &sender, &mentioned_ids, group_mention, now)
        });
        if let Some(plan) = &thread {
            touched.extend(plan.followers.iter().cloned());
        }
        for uid in mentioned_ids.iter().filter(|id| **id != sender).cloned() {
            touched.push(uid.clone());
            let tmid = tmid.clone();
            write.update_subscriptions.push((
                uid,
                Box::new(move |s: &mut Subscription, _: &Room| {
                    match tmid {
                        // A mention in a thread is an unread thread mention, not a room one.
                        Some(tmid) => {
                            if !s.tunread.contains(&tmid) {
                                s.tunread.push(tmid.clone());
                            }
                            if !s.tunread_user.contains(&tmid) {
                                s.tunread_user.push(tmid);
                            }
                        }
                        None => s.user_mentions += 1,
                    }
                    s.alert = true;
                    s.open = true;
                }),
            ));
        }
        // `@all` / `@here` write no member's subscription: `groupMentions` (and the `alert`
        // that follows from unread) is derived on read from the room's messages. A DM reopens
        // for each of its members.
        if room.t == RoomType::Direct {
            let members = self
                .store
                .subscriptions_of_room(&room.id, apogee_types::PageRequest { offset: 0, count: None })
                .await
                .map_err(store_error)?;
            for member in members.items.into_iter().filter(|m| !touched.contains(&m.u.id)) {
                write.update_subscriptions.push((
                    member.u.id,
                    Box::new(move |s: &mut Subscription, _: &Room| {
                        s.alert = true;
                        s.open = true;
                    }),
                ));
            }
        }
        let mut outcome = self.commit(write).await?;
        if let Some(after) = outcome.room.as_ref().filter(|r| r.dmid.is_some()) {
            self.refresh_discussion(after).await;
        }
        let saved =
            outcome.messages.pop().ok_or_else(|| ServiceError::internal("posted message vanished"))?;
        let mut notify: Vec<String> = mentioned_ids;
        if let Some(plan) = thread {
            notify.extend(plan.notify);
        }
        if room.t == RoomType::Direct {
            notify.extend(room.uids.iter().cloned());
        }
        notify.sort();
        notify.dedup();
        notify.retain(|uid| *uid != who.user_id);
        self.notify(&room, &saved, &notify).await;
        Ok(saved)
    }

    /// Desktop and mobile notifications for mentioned users and DM partners
    /// (`<uid>/notification`, Rocket.Chat's `notifyDesktopUser` shape).
    async fn notify(&self, room: &Room, message: &Message, uids: &[String]) {
        if uids.is_empty() {
            return;
        }
        let sender = &message.u;
        let (title, text) = match room.t {
            RoomType::Direct => (sender.username.clone(), message.msg.clone()),
            _ => (
                format!("#{}", room.name.clone().unwrap_or_default()),
                format!("{}: {}", sender.username, message.msg),
            ),
        };
        let notification = serde_json::json!({
            "title": title,
            "text": text,
            "duration": 4000,
            "payload": {
                "_id": message.id,
                "rid": room.id,
                "tmid": message.tmid,
                "sender": { "_id": sender.id, "username": sender.username, "name": sender.name },
                "type": room.t.as_str(),
                "name": room.name,
                "message": { "msg": message.msg },
            },
        });
        for uid in uids {
            let event = UserEvent::Notification { notification: notification.clone() };
            self.publish(&user_subject(uid, "notification"), &event).await;
        }
    }

    /// Mentioned users that exist, their ids, and whether `@all`/`@here` was used.
    pub(crate) async fn resolve_mentions(
        &self,
        msg: &str,
    ) -> ServiceResult<(Vec<Mention>, Vec<String>, bool)> {
        let mut mentions = Vec::new();
        let mut ids = Vec::new();
        let mut group = false;
        for token in mention_tokens(msg, '@') {
            if token == "all" || token == "here" {
                group = true;
                mentions.push(Mention { id: token.clone(), username: token, name: None, kind: None });
                continue;
            }
            if let Some(user) = self.auth.find_user(UserSelector::Username(token)).await? {
                ids.push(user.id.clone());
                mentions.push(Mention {
                    id: user.id,
                    username: user.username,
                    name: user.name,
                    kind: Some("user".into()),
                });
            }
        }
        Ok((mentions, ids, group))
    }

    pub(crate) async fn resolve_channels(&self, msg: &str) -> ServiceResult<Vec<ChannelMention>> {
        let mut channels = Vec::new();
        for token in mention_tokens(msg, '#') {
            if let Some(room) = self.store.room_by_name(&token).await.map_err(store_error)?
                && room.t == RoomType::Channel
            {
                channels.push(ChannelMention { id: room.id, name: room.name.unwrap_or(token) });
            }
        }
        Ok(channels)
    }

    pub(crate) async fn get_message_impl(&self, who: &Principal, id: &str) -> ServiceResult<Message> {
        let not_found = || ServiceError::invalid("error-invalid-message", "Message not found");
        let message = self.store.message_by_id(id).await.map_err(store_error)?.ok_or_else(not_found)?;
        let room = self.room_by_id(&message.rid).await?;
        if !self.can_read(who, &room).await? {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        Ok(message)
    }

    pub(crate) async fn history_impl(
        &self,
        who: &Principal,
        rid: &str,
        req: HistoryRequest,
    ) -> ServiceResult<History> {
        let room = self.room_by_id(rid).await?;
        self.ensure_can_read(who, &room).await?;
        let query = HistoryQuery {
            latest: req.latest,
            oldest: req.oldest,
            inclusive: req.inclusive,
            offset: req.offset,
            count: req.count,
            show_thread_messages: req.show_thread_messages,
            oldest_first: req.oldest_first,
        };
        let messages = self.store.history(rid, &query).await.map_err(store_error)?;
        let mut history = History { messages, unread_not_loaded: None, first_unread: None };
        if req.unreads {
            let sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
            let after = sub.map_or(room.msgs, |s| s.last_read_seq);
            let oldest_loaded = history.messages.last().map(|m| m.seq);
            let total_unread =
                self.store.count_unread(rid, &who.user_id, after).await.map_err(store_error)?;
            let loaded_unread = history
                .messages
                .iter()
                .filter(|m| m.seq > after && m.u.id != who.user_id && m.counts_as_unread())
                .count() as u64;
            let not_loaded = total_unread.saturating_sub(loaded_unread);
            history.unread_not_loaded = Some(not_loaded);
            if not_loaded > 0 && req.oldest.is_some() && oldest_loaded.is_some() {
                history.first_unread =
                    self.store.first_unread(rid, &who.user_id, after).await.map_err(store_error)?;
            }
        }
        Ok(history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mentions_at_word_starts() {
        assert_eq!(mention_tokens("hi @bob and @alice.b, see #dev", '@'), ["bob", "alice.b"]);
        assert_eq!(mention_tokens("mail me at x@y.io", '@'), Vec::<String>::new());
        assert_eq!(mention_tokens("@all @all (@here)", '@'), ["all", "here"]);
        assert_eq!(mention_tokens("#dev-team. and #ops", '#'), ["dev-team", "ops"]);
        assert_eq!(mention_tokens("@ alone", '@'), Vec::<String>::new());
    }
}
