use apogee_types::{Page, PageRequest, Room, Team, TeamMember};
use async_trait::async_trait;

use crate::StoreResult;

/// A change to a team, applied inside the store's write to the stored team.
pub type TeamMutation = Box<dyn FnOnce(&mut Team) -> StoreResult<()> + Send>;

/// Teams and their members (Rocket.Chat's `rocketchat_team`, `rocketchat_team_member`). Which
/// rooms belong to a team is the rooms' own `teamId`, written through [`RoomStore`](crate::RoomStore).
#[async_trait]
pub trait TeamStore: Send + Sync + 'static {
    /// Inserts a team with its first members, together; `Conflict` when the id or the name
    /// (case-insensitive) is taken.
    async fn insert_team(&self, team: Team, members: Vec<TeamMember>) -> StoreResult<()>;
    async fn team_by_id(&self, id: &str) -> StoreResult<Option<Team>>;
    /// Exact name, case-insensitive.
    async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>>;
    /// Applies `mutation` and returns the result; `NotFound` if absent, `Conflict` if the new
    /// name is taken. The id cannot change.
    async fn update_team(&self, id: &str, mutation: TeamMutation) -> StoreResult<Team>;
    /// Deletes the team and all its members; `NotFound` if absent.
    async fn delete_team(&self, id: &str) -> StoreResult<()>;
    /// Teams by name; only those with these ids when `ids` is given.
    async fn list_teams(&self, ids: Option<&[String]>, page: PageRequest) -> StoreResult<Page<Team>>;

    /// Adds the members not in their team yet; returns how many were added.
    async fn add_team_members(&self, members: Vec<TeamMember>) -> StoreResult<u64>;
    async fn team_member(&self, team_id: &str, user_id: &str) -> StoreResult<Option<TeamMember>>;
    /// A team's members, oldest first.
    async fn team_members(&self, team_id: &str, page: PageRequest) -> StoreResult<Page<TeamMember>>;
    /// Replaces a member's roles (`None`: no roles); `false` when not a member.
    async fn set_team_member_roles(
        &self,
        team_id: &str,
        user_id: &str,
        roles: Option<Vec<String>>,
    ) -> StoreResult<bool>;
    /// `false` when not a member.
    async fn remove_team_member(&self, team_id: &str, user_id: &str) -> StoreResult<bool>;
    /// Every team membership of a user.
    async fn memberships_of_user(&self, user_id: &str) -> StoreResult<Vec<TeamMember>>;
    /// Every room whose `teamId` is this team (the main room too), by name.
    async fn rooms_of_team(&self, team_id: &str) -> StoreResult<Vec<Room>>;
}
