//! Request and answer types of the team methods of [`MessagingService`](crate::MessagingService).

use apogee_types::{Team, TeamMember, User};
use serde::{Deserialize, Serialize};

/// `teamId` or `teamName`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TeamSelector {
    pub id: Option<String>,
    pub name: Option<String>,
}

/// `teams.create`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CreateTeam {
    pub name: String,
    pub private: bool,
    /// User ids or usernames to add besides the owner.
    pub members: Vec<String>,
    /// The owner's user id (the caller when `None`).
    pub owner: Option<String>,
    pub read_only: bool,
}

/// A team with its counts (`teams.list`, `teams.listAll`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamListItem {
    pub team: Team,
    pub rooms: u64,
    pub number_of_users: u64,
}

/// A team member with the user's profile (`teams.members`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMemberInfo {
    pub member: TeamMember,
    pub user: User,
}

/// Narrows `teams.members`: case-insensitive substrings and statuses.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TeamMemberFilter {
    pub username: Option<String>,
    pub name: Option<String>,
    pub status: Vec<String>,
}

/// A member to add (`teams.addMembers`) or update (`teams.updateMember`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMemberParams {
    pub user_id: String,
    pub roles: Option<Vec<String>>,
}

/// What removing a team does with its main room (`teams.delete` erases it,
/// `teams.convertToChannel` keeps it as a plain room).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TeamDissolve {
    Delete,
    ConvertToChannel,
}

/// `teams.listRooms` filters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TeamRoomFilter {
    /// Case-insensitive substring of the room name.
    pub name: Option<String>,
    /// Only the rooms new members join (`type=autoJoin`).
    pub auto_join: bool,
}

/// `users.listTeams`: a team and whether the user owns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserTeam {
    pub team: Team,
    pub is_owner: bool,
}
