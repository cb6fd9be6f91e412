//! `chat.getDeletedMessages`, `chat.ignoreUser` and `chat.reportMessage`.

use apogee_store::{MessageReport, RoomWrite};
use apogee_types::{
    Millis, Page, PageRequest, Principal, Room, ServiceError, ServiceResult, Subscription, random_id,
};

use crate::service::{Messaging, store_error};

impl Messaging {
    pub(crate) async fn deleted_messages_impl(
        &self,
        who: &Principal,
        rid: &str,
        since: Millis,
        page: PageRequest,
    ) -> ServiceResult<Page<(String, Millis)>> {
        let room = self.room_by_id(rid).await?;
        self.ensure_can_read(who, &room).await?;
        let found = self.store.removed_messages_page(rid, since, page).await.map_err(store_error)?;
        Ok(Page {
            items: found.items.into_iter().map(|r| (r.id, r.deleted_at)).collect(),
            offset: found.offset,
            total: found.total,
        })
    }

    pub(crate) async fn ignore_user_impl(
        &self,
        who: &Principal,
        rid: &str,
        user_id: &str,
        ignore: bool,
    ) -> ServiceResult<()> {
        let invalid = || ServiceError::invalid("error-invalid-subscription", "Invalid subscription");
        let own =
            self.store.subscription(rid, &who.user_id).await.map_err(store_error)?.ok_or_else(invalid)?;
        self.store.subscription(rid, user_id).await.map_err(store_error)?.ok_or_else(invalid)?;
        if own.ignored.iter().any(|id| id == user_id) == ignore {
            return Ok(());
        }
        let ignored = user_id.to_owned();
        let mut write = RoomWrite::new(rid);
        write.update_subscriptions.push((
            who.user_id.clone(),
            Box::new(move |s: &mut Subscription, _: &Room| {
                s.ignored.retain(|id| *id != ignored);
                if ignore {
                    s.ignored.push(ignored);
                }
            }),
        ));
        self.commit(write).await?;
        Ok(())
    }

    pub(crate) async fn report_message_impl(
        &self,
        who: &Principal,
        mid: &str,
        description: &str,
    ) -> ServiceResult<()> {
        // Rocket.Chat throws plain errors here: the code is the whole text.
        if description.trim().is_empty() {
            return Err(ServiceError::failure("error-invalid-description"));
        }
        let invalid = || ServiceError::failure("error-invalid-message_id");
        let message = self.store.message_by_id(mid).await.map_err(store_error)?.ok_or_else(invalid)?;
        // A message in a room the caller cannot read is reported as not existing.
        let room = self.store.room_by_id(&message.rid).await.map_err(store_error)?.ok_or_else(invalid)?;
        if !self.can_read(who, &room).await? {
            return Err(invalid());
        }
        let report = MessageReport {
            id: random_id(),
            message,
            description: description.to_owned(),
            reported_by: who.user_ref(),
            ts: Millis::now(),
        };
        self.store.insert_report(&report).await.map_err(store_error)
    }
}
