//! Teams, as Rocket.Chat's team service keeps them: a team is its main room (`teamMain`) plus
//! the rooms that carry its `teamId`, and a member list whose roles mirror the members' roles
//! in the main room. Team permissions are checked in the main room (the caller's user roles
//! plus their subscription roles there).
//!
//! Room changes go through `commit` like every other room write, so clients see
//! `rooms-changed` / `subscriptions-changed` for them; the team records are written beside.

use apogee_api::{
    CreateTeam, TeamDissolve, TeamListItem, TeamMemberFilter, TeamMemberInfo, TeamMemberParams,
    TeamRoomFilter, TeamSelector, UserSelector, UserTeam,
};
use apogee_store::RoomWrite;
use apogee_types::{
    CreatedBy, Millis, Page, PageRequest, Principal, Room, RoomType, ServiceError, ServiceResult,
    Subscription, TEAM_PRIVATE, TEAM_PUBLIC, Team, TeamMember, User, random_id,
};

use crate::rooms::{new_subscription, room_display, system_message};
use crate::service::{Messaging, store_error};

const EVERYTHING: PageRequest = PageRequest { offset: 0, count: None };

fn fail(text: &str) -> ServiceError {
    ServiceError::failure(text)
}

fn created_by(who: &Principal) -> CreatedBy {
    CreatedBy { id: who.user_id.clone(), username: who.username.clone() }
}

fn member(
    team_id: &str,
    user_id: &str,
    roles: Option<Vec<String>>,
    by: &CreatedBy,
    now: Millis,
) -> TeamMember {
    TeamMember {
        id: random_id(),
        team_id: team_id.to_owned(),
        user_id: user_id.to_owned(),
        roles,
        created_by: by.clone(),
        created_at: now,
        updated_at: now,
    }
}

fn contains_ci(haystack: Option<&str>, needle: &str) -> bool {
    haystack.is_some_and(|h| h.to_lowercase().contains(&needle.to_lowercase()))
}

impl Messaging {
    /// The team a selector names, or `None`.
    pub(crate) async fn find_team(&self, sel: &TeamSelector) -> ServiceResult<Option<Team>> {
        let found = match (&sel.id, &sel.name) {
            (Some(id), _) if !id.is_empty() => self.store.team_by_id(id).await,
            (_, Some(name)) if !name.is_empty() => self.store.team_by_name(name).await,
            _ => return Ok(None),
        };
        found.map_err(store_error)
    }

    async fn team_or(&self, sel: &TeamSelector, text: &str) -> ServiceResult<Team> {
        self.find_team(sel).await?.ok_or_else(|| fail(text))
    }

    /// Whether the caller holds `permission` in the team's main room.
    async fn team_permission(&self, who: &Principal, team: &Team, permission: &str) -> ServiceResult<bool> {
        let sub = self.store.subscription(&team.room_id, &who.user_id).await.map_err(store_error)?;
        self.has_in_room(who, sub.as_ref(), permission).await
    }

    async fn require_team_permission(
        &self,
        who: &Principal,
        team: &Team,
        permission: &str,
    ) -> ServiceResult<()> {
        if self.team_permission(who, team, permission).await? {
            Ok(())
        } else {
            Err(ServiceError::unauthorized())
        }
    }

    async fn user_by_id_or_name(&self, key: &str) -> ServiceResult<Option<User>> {
        if let Some(user) = self.auth.find_user(UserSelector::Id(key.to_owned())).await? {
            return Ok(Some(user));
        }
        self.auth.find_user(UserSelector::Username(key.to_owned())).await
    }

    pub(crate) async fn create_team_impl(&self, who: &Principal, req: CreateTeam) -> ServiceResult<Team> {
        if !self.has_global(who, "create-team").await? {
            return Err(ServiceError::unauthorized());
        }
        let name = req.name.trim().to_owned();
        let user_taken = self.auth.find_user(UserSelector::Username(name.clone())).await?.is_some();
        if user_taken || self.store.team_by_name(&name).await.map_err(store_error)?.is_some() {
            return Err(fail("team-name-already-exists"));
        }
        if self.store.room_by_name(&name).await.map_err(store_error)?.is_some() {
            return Err(fail("room-name-already-exists"));
        }
        // Rocket.Chat reports every failure to make the room as this one.
        self.validate_room_name(&name).await.map_err(|_| fail("error-team-creation"))?;
        let owner = match &req.owner {
            Some(id) => self
                .auth
                .find_user(UserSelector::Id(id.clone()))
                .await?
                .ok_or_else(|| fail("error-team-creation"))?,
            None => self
                .auth
                .find_user(UserSelector::Id(who.user_id.clone()))
                .await?
                .ok_or_else(|| fail("invalid-user"))?,
        };
        let mut members: Vec<User> = Vec::new();
        for key in &req.members {
            if let Some(user) = self.user_by_id_or_name(key).await?
                && user.active
                && user.id != owner.id
                && !members.iter().any(|m| m.id == user.id)
            {
                members.push(user);
            }
        }
        let now = Millis::now();
        let team_id = random_id();
        let t = if req.private { RoomType::Group } else { RoomType::Channel };
        let mut room = Room::new(random_id(), t, Some(name.clone()), Some(owner.user_ref()), now);
        room.ro = req.read_only;
        room.team_main = true;
        room.team_id = Some(team_id.clone());
        let mut subs = Vec::with_capacity(members.len() + 1);
        let mut own = new_subscription(&room, &owner.user_ref(), room_display(&room), now);
        own.roles = vec!["owner".into()];
        subs.push(own);
        for m in &members {
            subs.push(new_subscription(&room, &m.user_ref(), room_display(&room), now));
        }
        let team = Team {
            id: team_id.clone(),
            name,
            kind: if req.private { TEAM_PRIVATE } else { TEAM_PUBLIC },
            room_id: room.id.clone(),
            created_by: created_by(who),
            created_at: now,
            updated_at: now,
        };
        let by = created_by(who);
        let mut team_members: Vec<TeamMember> =
            members.iter().map(|m| member(&team_id, &m.id, None, &by, now)).collect();
        team_members.push(member(&team_id, &owner.id, Some(vec!["owner".into()]), &by, now));
        let rid = room.id.clone();
        let mut write = RoomWrite::new(rid.clone());
        write.create = Some(room);
        write.add_subscriptions = subs;
        self.commit(write).await.map_err(|_| fail("error-team-creation"))?;
        if let Err(e) = self.store.insert_team(team.clone(), team_members).await {
            // The name was taken meanwhile: the room goes again.
            let mut undo = RoomWrite::new(rid);
            undo.delete = true;
            self.commit(undo).await?;
            tracing::info!(error = %e, "team creation lost a race");
            return Err(fail("error-team-creation"));
        }
        Ok(team)
    }

    pub(crate) async fn convert_room_to_team_impl(&self, who: &Principal, rid: &str) -> ServiceResult<Team> {
        let room = self.room_by_id(rid).await?;
        if room.t == RoomType::Direct {
            return Err(ServiceError::not_allowed("Not allowed"));
        }
        let sub = self.store.subscription(rid, &who.user_id).await.map_err(store_error)?;
        if !self.has_global(who, "create-team").await?
            || !self.has_in_room(who, sub.as_ref(), "edit-room").await?
        {
            return Err(ServiceError::unauthorized());
        }
        if room.team_main || room.team_id.is_some() {
            return Err(fail("The room is already a team"));
        }
        let name = room.name.clone().unwrap_or_default();
        if self.store.team_by_name(&name).await.map_err(store_error)?.is_some() {
            return Err(fail("team-name-already-exists"));
        }
        let members = self.store.subscriptions_of_room(rid, EVERYTHING).await.map_err(store_error)?.items;
        let now = Millis::now();
        let team = Team {
            id: random_id(),
            name: name.clone(),
            kind: if room.t == RoomType::Group { TEAM_PRIVATE } else { TEAM_PUBLIC },
            room_id: rid.to_owned(),
            created_by: created_by(who),
            created_at: now,
            updated_at: now,
        };
        let by = created_by(who);
        // The converting user owns the team; the room's other members join it without roles.
        let mut team_members: Vec<TeamMember> = members
            .iter()
            .filter(|s| s.u.id != who.user_id)
            .map(|s| member(&team.id, &s.u.id, None, &by, now))
            .collect();
        team_members.push(member(&team.id, &who.user_id, Some(vec!["owner".into()]), &by, now));
        self.store.insert_team(team.clone(), team_members).await.map_err(|_| fail("error-team-creation"))?;
        let team_id = team.id.clone();
        let mut write = RoomWrite::new(rid);
        write.mutate = Some(Box::new(move |r: &mut Room| {
            r.team_main = true;
            r.team_id = Some(team_id);
            Ok(())
        }));
        write.messages = vec![system_message(rid, "user-converted-to-team", &name, &who.user_ref(), now)];
        self.commit(write).await?;
        Ok(team)
    }

    pub(crate) async fn team_info_impl(&self, who: &Principal, sel: TeamSelector) -> ServiceResult<Team> {
        let team = self.team_or(&sel, "Team not found").await?;
        let room = self
            .store
            .room_by_id(&team.room_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| fail("Room not found"))?;
        if !self.can_read(who, &room).await? && !self.has_global(who, "view-all-teams").await? {
            return Err(ServiceError::unauthorized());
        }
        Ok(team)
    }

    pub(crate) async fn list_teams_impl(
        &self,
        who: &Principal,
        all: bool,
        page: PageRequest,
    ) -> ServiceResult<Page<TeamListItem>> {
        let found = if all {
            if !self.has_global(who, "view-all-teams").await? {
                return Err(ServiceError::unauthorized());
            }
            self.store.list_teams(None, page).await
        } else {
            let ids: Vec<String> = self
                .store
                .memberships_of_user(&who.user_id)
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|m| m.team_id)
                .collect();
            self.store.list_teams(Some(&ids), page).await
        }
        .map_err(store_error)?;
        let mut items = Vec::with_capacity(found.items.len());
        for team in found.items {
            let rooms = self.store.rooms_of_team(&team.id).await.map_err(store_error)?.len() as u64;
            let users = self
                .store
                .team_members(&team.id, PageRequest { offset: 0, count: Some(0) })
                .await
                .map_err(store_error)?
                .total;
            items.push(TeamListItem { team, rooms, number_of_users: users });
        }
        Ok(Page { items, offset: found.offset, total: found.total })
    }

    /// Erases a room as Rocket.Chat's `eraseRoom` does for the caller (`delete-c` / `delete-p`).
    async fn erase_room(&self, who: &Principal, rid: &str) -> ServiceResult<()> {
        self.delete_room_impl(who, rid).await
    }

    /// Gives every room of the team but the main one back to the workspace.
    async fn release_team_rooms(&self, team: &Team, keep_main_team: bool) -> ServiceResult<()> {
        for room in self.store.rooms_of_team(&team.id).await.map_err(store_error)? {
            if room.id == team.room_id && keep_main_team {
                continue;
            }
            let mut write = RoomWrite::new(room.id.clone());
            write.mutate = Some(Box::new(|r: &mut Room| {
                r.team_id = None;
                r.team_main = false;
                r.team_default = false;
                Ok(())
            }));
            self.commit(write).await?;
        }
        Ok(())
    }

    pub(crate) async fn dissolve_team_impl(
        &self,
        who: &Principal,
        sel: TeamSelector,
        rooms_to_remove: Vec<String>,
        how: TeamDissolve,
    ) -> ServiceResult<()> {
        let team = self.team_or(&sel, "team-does-not-exist").await?;
        let permission = match how {
            TeamDissolve::Delete => "delete-team",
            TeamDissolve::ConvertToChannel => "convert-team",
        };
        self.require_team_permission(who, &team, permission).await?;
        let team_rooms = self.store.rooms_of_team(&team.id).await.map_err(store_error)?;
        for rid in &rooms_to_remove {
            if *rid != team.room_id && team_rooms.iter().any(|r| &r.id == rid) {
                self.erase_room(who, rid).await?;
            }
        }
        let now = Millis::now();
        if how == TeamDissolve::ConvertToChannel {
            let name = team_rooms
                .iter()
                .find(|r| r.id == team.room_id)
                .and_then(|r| r.name.clone())
                .unwrap_or_default();
            let mut write = RoomWrite::new(team.room_id.clone());
            write.messages =
                vec![system_message(&team.room_id, "user-converted-to-channel", &name, &who.user_ref(), now)];
            self.commit(write).await?;
        }
        self.release_team_rooms(&team, false).await?;
        if how == TeamDissolve::Delete {
            let mut write = RoomWrite::new(team.room_id.clone());
            write.delete = true;
            match self.commit(write).await {
                Err(e) if e.error_type == "error-room-not-found" => {}
                other => {
                    other?;
                }
            }
        }
        self.store.delete_team(&team.id).await.map_err(store_error)
    }

    pub(crate) async fn update_team_impl(
        &self,
        who: &Principal,
        sel: TeamSelector,
        name: Option<String>,
        private: Option<bool>,
    ) -> ServiceResult<()> {
        let team = self.team_or(&sel, "team-does-not-exist").await?;
        self.require_team_permission(who, &team, "edit-team").await?;
        if let Some(name) = &name {
            self.update_room_impl(who, &team.room_id, apogee_api::RoomChange::Name(name.clone())).await?;
        }
        if let Some(private) = private {
            let t = if private { RoomType::Group } else { RoomType::Channel };
            self.update_room_impl(who, &team.room_id, apogee_api::RoomChange::Type(t)).await?;
        }
        self.store
            .update_team(
                &team.id,
                Box::new(move |t: &mut Team| {
                    if let Some(name) = name {
                        t.name = name;
                    }
                    if let Some(private) = private {
                        t.kind = if private { TEAM_PRIVATE } else { TEAM_PUBLIC };
                    }
                    t.updated_at = Millis::now();
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        Ok(())
    }

    pub(crate) async fn team_members_impl(
        &self,
        who: &Principal,
        sel: TeamSelector,
        filter: TeamMemberFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<TeamMemberInfo>> {
        let team = self.team_or(&sel, "team-does-not-exist").await?;
        let can_see_all = self.team_permission(who, &team, "view-all-teams").await?;
        let is_member = self.store.team_member(&team.id, &who.user_id).await.map_err(store_error)?.is_some();
        if !is_member && !can_see_all {
            return Ok(Page { items: vec![], offset: page.offset, total: 0 });
        }
        let all = self.store.team_members(&team.id, EVERYTHING).await.map_err(store_error)?.items;
        let ids: Vec<String> = all.iter().map(|m| m.user_id.clone()).collect();
        let users = self.auth.users_by_ids(&ids).await?;
        let mut matching: Vec<TeamMemberInfo> = all
            .into_iter()
            .filter_map(|m| {
                let user = users.iter().find(|u| u.id == m.user_id && u.active)?.clone();
                let wanted = filter.username.as_deref().is_none_or(|f| contains_ci(Some(&user.username), f))
                    && filter.name.as_deref().is_none_or(|f| contains_ci(user.name.as_deref(), f))
                    && (filter.status.is_empty() || filter.status.contains(&user.status));
                wanted.then_some(TeamMemberInfo { member: m, user })
            })
            .collect();
        let total = matching.len() as u64;
        let start = usize::try_from(page.offset).unwrap_or(usize::MAX).min(matching.len());
        matching.drain(..start);
        if let Some(count) = page.count {
            matching.truncate(usize::try_from(count).unwrap_or(usize::MAX));
        }
        Ok(Page { items: matching, offset: page.offset, total })
    }

    /// Adds `user` to a room of the team (an `au` message by `by`), unless already there.
    async fn add_to_room(&self, room: &Room, user: &User, by: &Principal) -> ServiceResult<bool> {
        if self.store.subscription(&room.id, &user.id).await.map_err(store_error)?.is_some() {
            return Ok(false);
        }
        let now = Millis::now();
        let mut write = RoomWrite::new(room.id.clone());
        write.add_subscriptions = vec![new_subscription(room, &user.user_ref(), room_display(room), now)];
        write.messages = vec![system_message(&room.id, "au", &user.username, &by.user_ref(), now)];
        self.commit(write).await?;
        Ok(true)
    }

    /// After a user joined a team's main room: they become a team member and join the team's
    /// default rooms (Rocket.Chat's `Team.addMember` hook of `addUserToRoom`).
    pub(crate) async fn joined_team_room(
        &self,
        room: &Room,
        user: &User,
        by: &Principal,
    ) -> ServiceResult<()> {
        let (true, Some(team_id)) = (room.team_main, room.team_id.as_deref()) else { return Ok(()) };
        let now = Millis::now();
        let added = self
            .store
            .add_team_members(vec![member(team_id, &user.id, None, &created_by(by), now)])
            .await
            .map_err(store_error)?;
        if added > 0 {
            for default_room in self.store.rooms_of_team(team_id).await.map_err(store_error)? {
                if default_room.team_default && !default_room.team_main {
                    self.add_to_room(&default_room, user, by).await?;
                }
            }
        }
        Ok(())
    }

    /// After a user left a team's main room: they are no longer a team member.
    pub(crate) async fn left_team_room(&self, room: &Room, user_id: &str) -> ServiceResult<()> {
        if let (true, Some(team_id)) = (room.team_main, room.team_id.as_deref()) {
            self.store.remove_team_member(team_id, user_id).await.map_err(store_error)?;
        }
        Ok(())
    }

    pub(crate) async fn add_team_members_impl(
        &self,
        who: &Principal,
        sel: TeamSelector,
        members: Vec<TeamMemberParams>,
    ) -> ServiceResult<()> {
        let team = self.team_or(&sel, "team-does-not-exist").await?;
        if !self.team_permission(who, &team, "add-team-member").await?
            && !self.team_permission(who, &team, "edit-team-member").await?
        {
            return Err(ServiceError::unauthorized());
        }
        let main = self.room_by_id(&team.room_id).await?;
        for m in members {
            let Some(user) = self.auth.find_user(UserSelector::Id(m.user_id.clone())).await? else {
                return Err(fail("invalid-user"));
            };
            self.add_to_room(&main, &user, who).await?;
            self.joined_team_room(&main, &user, who).await?;
            if let Some(roles) = m.roles {
                self.store
                    .set_team_member_roles(&team.id, &user.id, Some(roles))
                    .await
                    .map_err(store_error)?;
            }
        }
        Ok(())
    }

    pub(crate) async fn update_team_member_impl(
        &self,
        who: &Principal,
        sel: TeamSelector,
        m: TeamMemberParams,
    ) -> ServiceResult<()> {
        let team = self.team_or(&sel, "team-does-not-exist").await?;
        self.require_team_permission(who, &team, "edit-team-member").await?;
        let roles = m.roles.unwrap_or_default();
        self.store
            .set_team_member_roles(&team.id, &m.user_id, Some(roles.clone()))
            .await
            .map_err(store_error)?;
        // The roles in the main room follow, as Rocket.Chat writes both.
        if self.store.subscription(&team.room_id, &m.user_id).await.map_err(store_error)?.is_some() {
            let mut write = RoomWrite::new(team.room_id.clone());
            write.update_subscriptions =
                vec![(m.user_id.clone(), Box::new(move |s: &mut Subscription, _: &Room| s.roles = roles))];
            self.commit(write).await?;
        }
        Ok(())
    }

    pub(crate) async fn remove_team_member_impl(
        &self,
        who: &Principal,
        sel: TeamSelector,
        user_id: &str,
        rooms: Vec<String>,
        leaving: bool,
    ) -> ServiceResult<()> {
        let team = self.team_or(&sel, "team-does-not-exist").await?;
        if !leaving {
            self.require_team_permission(who, &team, "edit-team-member").await?;
        }
        let user = match self.auth.find_user(UserSelector::Id(user_id.to_owned())).await? {
            Some(u) if u.active || leaving => u,
            _ => return Err(fail("invalid-user")),
        };
        let existing = self.store.team_member(&team.id, user_id).await.map_err(store_error)?;
        let sub = self.store.subscription(&team.room_id, user_id).await.map_err(store_error)?;
        if existing.is_none() && sub.is_none() {
            return Err(fail("member-does-not-exist"));
        }
        if let Some(existing) = &existing
            && existing.has_role("owner")
        {
            let owners = self
                .store
                .team_members(&team.id, EVERYTHING)
                .await
                .map_err(store_error)?
                .items
                .iter()
                .filter(|m| m.has_role("owner"))
                .count();
            if owners == 1 {
                return Err(fail("last-owner-can-not-be-removed"));
            }
        }
        self.store.remove_team_member(&team.id, user_id).await.map_err(store_error)?;
        let team_rooms = self.store.rooms_of_team(&team.id).await.map_err(store_error)?;
        let mut from: Vec<&str> = vec![team.room_id.as_str()];
        from.extend(rooms.iter().map(String::as_str).filter(|r| team_rooms.iter().any(|t| t.id == *r)));
        let now = Millis::now();
        for rid in from {
            if self.store.subscription(rid, user_id).await.map_err(store_error)?.is_none() {
                continue;
            }
            let mut write = RoomWrite::new(rid);
            write.remove_subscriptions = vec![user_id.to_owned()];
            write.messages = vec![if leaving || who.user_id == user_id {
                system_message(rid, "ul", &user.username, &user.user_ref(), now)
            } else {
                system_message(rid, "ru", &user.username, &who.user_ref(), now)
            }];
            self.commit(write).await?;
        }
        Ok(())
    }

    pub(crate) async fn add_team_rooms_impl(
        &self,
        who: &Principal,
        sel: TeamSelector,
        rids: Vec<String>,
    ) -> ServiceResult<Vec<Room>> {
        let team = self.team_or(&sel, "team-does-not-exist").await?;
        if !self.team_permission(who, &team, "add-team-channel").await? {
            return Err(ServiceError::new(
                apogee_types::ErrorKind::PermissionDenied,
                "",
                "error-no-permission-team-channel",
            ));
        }
        let mut rooms = Vec::with_capacity(rids.len());
        for rid in rids.iter().filter(|r| !r.is_empty()) {
            let room =
                self.store.room_by_id(rid).await.map_err(store_error)?.ok_or_else(|| fail("invalid-room"))?;
            if !self.can_read(who, &room).await? {
                return Err(fail("invalid-room"));
            }
            rooms.push(room);
        }
        for room in &rooms {
            if room.team_id.is_some() {
                return Err(fail("room-already-on-team"));
            }
            let sub = self.store.subscription(&room.id, &who.user_id).await.map_err(store_error)?;
            if !sub.is_some_and(|s| s.roles.iter().any(|r| r == "owner")) {
                return Err(fail("error-no-owner-channel"));
            }
        }
        let now = Millis::now();
        let mut moved = Vec::with_capacity(rooms.len());
        for room in rooms {
            if room.t == RoomType::Channel {
                let mut note = RoomWrite::new(team.room_id.clone());
                let name = room.name.clone().unwrap_or_default();
                note.messages = vec![system_message(
                    &team.room_id,
                    "user-added-room-to-team",
                    &name,
                    &who.user_ref(),
                    now,
                )];
                self.commit(note).await?;
            }
            let team_id = team.id.clone();
            let mut write = RoomWrite::new(room.id.clone());
            write.mutate = Some(Box::new(move |r: &mut Room| {
                r.team_id = Some(team_id);
                Ok(())
            }));
            let outcome = self.commit(write).await?;
            moved.extend(outcome.room);
        }
        Ok(moved)
    }

    pub(crate) async fn remove_team_room_impl(
        &self,
        who: &Principal,
        sel: TeamSelector,
        rid: &str,
    ) -> ServiceResult<Room> {
        let team = self.team_or(&sel, "team-does-not-exist").await?;
        self.require_team_permission(who, &team, "remove-team-channel").await?;
        let can_remove_any = self.team_permission(who, &team, "view-all-team-channels").await?;
        let room =
            self.store.room_by_id(rid).await.map_err(store_error)?.ok_or_else(|| fail("invalid-room"))?;
        if !can_remove_any && !self.can_read(who, &room).await? {
            return Err(fail("invalid-room"));
        }
        if room.team_id.as_deref() != Some(team.id.as_str()) || room.team_main {
            return Err(fail("room-not-on-that-team"));
        }
        let now = Millis::now();
        let mut write = RoomWrite::new(rid);
        write.mutate = Some(Box::new(|r: &mut Room| {
            r.team_id = None;
            r.team_default = false;
            Ok(())
        }));
        let outcome = self.commit(write).await?;
        if room.t == RoomType::Channel {
            let mut note = RoomWrite::new(team.room_id.clone());
            let name = room.name.clone().unwrap_or_default();
            note.messages = vec![system_message(
                &team.room_id,
                "user-removed-room-from-team",
                &name,
                &who.user_ref(),
                now,
            )];
            self.commit(note).await?;
        }
        outcome.room.ok_or_else(|| ServiceError::internal("room vanished during write"))
    }

    pub(crate) async fn update_team_room_impl(
        &self,
        who: &Principal,
        rid: &str,
        is_default: bool,
    ) -> ServiceResult<Room> {
        let room =
            self.store.room_by_id(rid).await.map_err(store_error)?.ok_or_else(|| fail("invalid-room"))?;
        let Some(team_id) = room.team_id.clone() else { return Err(fail("room-not-on-team")) };
        let team = self
            .store
            .team_by_id(&team_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| fail("team-does-not-exist"))?;
        self.require_team_permission(who, &team, "edit-team-channel").await?;
        let can_update_any = self.team_permission(who, &team, "view-all-team-channels").await?;
        if !can_update_any && !self.can_read(who, &room).await? {
            return Err(fail("invalid-room"));
        }
        let mut write = RoomWrite::new(rid);
        write.mutate = Some(Box::new(move |r: &mut Room| {
            r.team_default = is_default;
            Ok(())
        }));
        let mut room =
            self.commit(write).await?.room.ok_or_else(|| ServiceError::internal("room vanished"))?;
        if is_default {
            // Members join up to `API_User_Limit` of them, the room's creator excepted.
            let limit = usize::try_from(self.auth.setting_i64("API_User_Limit", 500).await).unwrap_or(0);
            let members = self.store.team_members(&team.id, EVERYTHING).await.map_err(store_error)?.items;
            let ids: Vec<String> = members.iter().map(|m| m.user_id.clone()).collect();
            let users = self.auth.users_by_ids(&ids).await?;
            let creator = room.u.as_ref().map(|u| u.id.clone());
            for m in members.iter().filter(|m| Some(&m.user_id) != creator.as_ref()).take(limit) {
                if let Some(user) = users.iter().find(|u| u.id == m.user_id && u.active) {
                    self.add_to_room(&room, user, who).await?;
                }
            }
            room = self.room_by_id(rid).await?;
        }
        Ok(room)
    }

    pub(crate) async fn team_rooms_impl(
        &self,
        who: &Principal,
        sel: TeamSelector,
        filter: TeamRoomFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<Room>> {
        let team = self.team_or(&sel, "team-does-not-exist").await?;
        let allow_private = self.team_permission(who, &team, "view-all-teams").await?;
        let get_all = self.team_permission(who, &team, "view-all-team-channels").await?;
        let is_member = self.store.team_member(&team.id, &who.user_id).await.map_err(store_error)?.is_some();
        if team.kind == TEAM_PRIVATE && !allow_private && !is_member {
            return Err(fail("user-not-on-private-team"));
        }
        let mut rooms = Vec::new();
        for room in self.store.rooms_of_team(&team.id).await.map_err(store_error)? {
            if room.team_main {
                continue;
            }
            if filter.name.as_deref().is_some_and(|n| !contains_ci(room.name.as_deref(), n)) {
                continue;
            }
            if filter.auto_join && !room.team_default {
                continue;
            }
            // Without `view-all-team-channels`: public rooms and the caller's own.
            if !get_all
                && room.t != RoomType::Channel
                && self.store.subscription(&room.id, &who.user_id).await.map_err(store_error)?.is_none()
            {
                continue;
            }
            rooms.push(room);
        }
        let total = rooms.len() as u64;
        let start = usize::try_from(page.offset).unwrap_or(usize::MAX).min(rooms.len());
        rooms.drain(..start);
        if let Some(count) = page.count {
            rooms.truncate(usize::try_from(count).unwrap_or(usize::MAX));
        }
        Ok(Page { items: rooms, offset: page.offset, total })
    }

    pub(crate) async fn user_teams_impl(
        &self,
        who: &Principal,
        user_id: &str,
    ) -> ServiceResult<Vec<UserTeam>> {
        let memberships = self.store.memberships_of_user(user_id).await.map_err(store_error)?;
        let see_all = self.has_global(who, "view-all-teams").await?;
        let mine: Vec<String> = if who.user_id == user_id {
            memberships.iter().map(|m| m.team_id.clone()).collect()
        } else {
            self.store
                .memberships_of_user(&who.user_id)
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|m| m.team_id)
                .collect()
        };
        let mut out = Vec::new();
        for m in memberships {
            let Some(team) = self.store.team_by_id(&m.team_id).await.map_err(store_error)? else { continue };
            // Private teams only when the caller is in them too.
            if !see_all && team.kind == TEAM_PRIVATE && !mine.contains(&team.id) {
                continue;
            }
            out.push(UserTeam { is_owner: m.has_role("owner"), team });
        }
        Ok(out)
    }
}
