//! Message reads outside the ordinary member path: `channels.anonymousread` (no user at all),
//! `im.messages.others` (an administrator reading someone else's direct messages) and
//! `channels.getAllUserMentionsByChannel` (the caller's mentions in one room).

use apogee_api::RoomSelector;
use apogee_store::MessageFilter;
use apogee_types::{Message, Page, PageRequest, Principal, RoomType, ServiceError, ServiceResult};

use crate::access::room_not_found;
use crate::service::{Messaging, store_error};

impl Messaging {
    /// A public channel's messages, newest first, for anyone when `Accounts_AllowAnonymousRead`
    /// is on. The room is looked up first, so an unknown room is reported as such either way.
    pub(crate) async fn anonymous_messages_impl(
        &self,
        selector: RoomSelector,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        let found = match (&selector.id, &selector.name) {
            (Some(id), _) => self.store.room_by_id(id).await,
            (None, Some(name)) => self.store.room_by_name(name).await,
            (None, None) => Ok(None),
        }
        .map_err(store_error)?;
        let room = found
            .filter(|r| r.t == RoomType::Channel)
            .ok_or_else(|| room_not_found(Some(RoomType::Channel)))?;
        if !self.auth.setting_bool("Accounts_AllowAnonymousRead", false).await {
            return Err(ServiceError::invalid("error-not-allowed", "Enable \"Allow Anonymous Read\""));
        }
        self.store.list_messages(&room.id, page, false).await.map_err(store_error)
    }

    /// A direct-message room's messages, newest first, for holders of `view-room-administration`
    /// whether or not they are in it; off unless `API_Enable_Direct_Message_History_EndPoint`.
    pub(crate) async fn others_messages_impl(
        &self,
        who: &Principal,
        rid: &str,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        if !self.auth.setting_bool("API_Enable_Direct_Message_History_EndPoint", false).await {
            return Err(ServiceError::invalid("error-endpoint-disabled", "This endpoint is disabled"));
        }
        if !self.has_global(who, "view-room-administration").await? {
            return Err(ServiceError::unauthorized());
        }
        if rid.is_empty() {
            return Err(ServiceError::invalid(
                "error-roomid-param-not-provided",
                "The parameter \"roomId\" is required",
            ));
        }
        let room = self.store.room_by_id(rid).await.map_err(store_error)?;
        if room.is_none_or(|r| r.t != RoomType::Direct) {
            return Err(ServiceError::invalid(
                "error-room-not-found",
                format!("No direct message room found by the id of: {rid}"),
            ));
        }
        self.store.list_messages(rid, page, false).await.map_err(store_error)
    }

    /// The messages of a room that mention the caller, oldest first unless told otherwise. The
    /// store pages newest first; an oldest-first page is the mirrored newest-first window.
    pub(crate) async fn mentions_in_room_impl(
        &self,
        who: &Principal,
        rid: &str,
        oldest_first: bool,
        page: PageRequest,
    ) -> ServiceResult<Page<Message>> {
        let allowed = self.can_read_id(who, rid).await?;
        if !allowed {
            return Err(ServiceError::invalid("error-invalid-room", "Invalid room"));
        }
        let filter = MessageFilter::Mentioning(who.username.clone());
        if !oldest_first {
            return self.store.find_messages(rid, &filter, page).await.map_err(store_error);
        }
        let count_only = PageRequest { offset: 0, count: Some(0) };
        let total = self.store.find_messages(rid, &filter, count_only).await.map_err(store_error)?.total;
        let end = total.saturating_sub(page.offset);
        let len = page.count.map_or(end, |c| c.min(end));
        let window = PageRequest { offset: end - len, count: Some(len) };
        let mut items = self.store.find_messages(rid, &filter, window).await.map_err(store_error)?.items;
        items.reverse();
        Ok(Page { items, offset: page.offset, total })
    }
}
