//! Every room write goes through [`Messaging::commit`]: store it, then announce it on the bus.
//! Announcing is best effort (design.md: live events may be lost; clients catch up from the
//! store), so a bus failure is logged, never returned: the write is already durable.

use apogee_api::events::{Action, BusEvent, RoomEvent, UserEvent, room_subject, user_subject};
use apogee_bus::Subject;
use apogee_store::{RoomWrite, RoomWriteOutcome};
use apogee_types::{PageRequest, Room, ServiceResult, Subscription};

use crate::service::{Messaging, store_error};

impl Messaging {
    /// Stores `write` atomically and publishes what it changed.
    pub(crate) async fn commit(&self, write: RoomWrite) -> ServiceResult<RoomWriteOutcome> {
        let rid = write.rid.clone();
        let inserted: Vec<String> = write.add_subscriptions.iter().map(|s| s.u.id.clone()).collect();
        let changed = write.mutate.is_some();
        // Removed subscriptions are announced with their last state, so read them first.
        let (removed, room_before) = if write.delete {
            let all = PageRequest { offset: 0, count: None };
            let members = self.store.subscriptions_of_room(&rid, all).await.map_err(store_error)?;
            (members.items, self.store.room_by_id(&rid).await.map_err(store_error)?)
        } else {
            let mut removed = Vec::with_capacity(write.remove_subscriptions.len());
            for uid in &write.remove_subscriptions {
                if let Some(sub) = self.store.subscription(&rid, uid).await.map_err(store_error)? {
                    removed.push(sub);
                }
            }
            (removed, None)
        };
        let outcome = self.store.write_room(write).await.map_err(store_error)?;
        let Some(room) = outcome.room.as_ref().or(room_before.as_ref()) else { return Ok(outcome) };
        self.announce(room, &outcome, &inserted, &removed, changed).await;
        Ok(outcome)
    }

    async fn announce(
        &self,
        room: &Room,
        outcome: &RoomWriteOutcome,
        inserted: &[String],
        removed: &[Subscription],
        changed: bool,
    ) {
        let touched: Vec<String> = outcome.subscriptions.iter().map(|s| s.u.id.clone()).collect();
        let left: Vec<String> = removed.iter().map(|s| s.u.id.clone()).collect();
        for message in &outcome.messages {
            let event = RoomEvent::Message {
                message: Box::new(message.clone()),
                room: Box::new(room.clone()),
                touched: touched.clone(),
                left: left.clone(),
                inserted: true,
            };
            self.publish(&room_subject(&room.id, "message"), &event).await;
        }
        apogee_telemetry::metrics::metrics().messages_sent.add(outcome.messages.len() as u64);
        // Changed messages (a thread root after a reply or a follow) go out as edits do.
        for message in &outcome.updated_messages {
            let event = RoomEvent::Message {
                message: Box::new(message.clone()),
                room: Box::new(room.clone()),
                touched: vec![],
                left: vec![],
                inserted: false,
            };
            self.publish(&room_subject(&room.id, "message"), &event).await;
        }
        if outcome.messages.is_empty() && changed {
            self.publish(
                &room_subject(&room.id, "changed"),
                &RoomEvent::Changed { room: Box::new(room.clone()) },
            )
            .await;
        }
        for sub in &outcome.subscriptions {
            let action = if inserted.contains(&sub.u.id) { Action::Inserted } else { Action::Updated };
            self.announce_subscription(action, sub, room).await;
        }
        for sub in removed {
            self.announce_subscription(Action::Removed, sub, room).await;
        }
    }

    async fn announce_subscription(&self, action: Action, sub: &Subscription, room: &Room) {
        let event =
            UserEvent::Subscription { action, subscription: Box::new(sub.clone()), unread: sub.unread };
        self.publish(&user_subject(&sub.u.id, "subscription"), &event).await;
        if action != Action::Updated {
            let event = UserEvent::Room { action, room: Box::new(room.clone()) };
            self.publish(&user_subject(&sub.u.id, "room"), &event).await;
        }
    }

    pub(crate) async fn publish<E: BusEvent>(&self, subject: &str, event: &E) {
        let subject = match Subject::new(subject) {
            Ok(subject) => subject,
            Err(e) => {
                tracing::error!(%subject, error = %e, "cannot publish on an invalid subject");
                return;
            }
        };
        if let Err(e) = self.bus.publish(&subject, event.encode()).await {
            tracing::warn!(%subject, error = %e, "event not published; clients catch up from the store");
        }
    }
}
