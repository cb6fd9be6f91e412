//! Teams (Rocket.Chat's `rocketchat_team` and `rocketchat_team_member`): a team is a room (its
//! main room, `teamMain`) plus the rooms attached to it (`teamId`), and a member list with
//! team roles of its own.

use serde::{Deserialize, Serialize};

use crate::Millis;

/// `type` of a team: 0 public, 1 private (Rocket.Chat's `TEAM_TYPE`).
pub const TEAM_PUBLIC: u8 = 0;
pub const TEAM_PRIVATE: u8 = 1;

/// `{_id, username}`: who created a team or added a member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedBy {
    #[serde(rename = "_id")]
    pub id: String,
    pub username: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    #[serde(rename = "_id")]
    pub id: String,
    pub name: String,
    /// [`TEAM_PUBLIC`] or [`TEAM_PRIVATE`].
    #[serde(rename = "type")]
    pub kind: u8,
    /// The main room.
    #[serde(rename = "roomId")]
    pub room_id: String,
    #[serde(rename = "createdBy")]
    pub created_by: CreatedBy,
    #[serde(rename = "createdAt")]
    pub created_at: Millis,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TeamMember {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(rename = "teamId")]
    pub team_id: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    /// Team roles (`owner`, `moderator`, …); Rocket.Chat leaves the field out when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(rename = "createdBy")]
    pub created_by: CreatedBy,
    #[serde(rename = "createdAt")]
    pub created_at: Millis,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Millis,
}

impl TeamMember {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.as_ref().is_some_and(|r| r.iter().any(|x| x == role))
    }
}
