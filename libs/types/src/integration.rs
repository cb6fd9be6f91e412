//! Integrations (Rocket.Chat's `IIntegration`): incoming webhooks that post as a chosen user.

use serde::{Deserialize, Serialize};

use crate::{CreatedBy, Millis};

/// The only kind Apogee stores: outgoing webhooks are refused at creation (nothing would fire
/// them).
pub const WEBHOOK_INCOMING: &str = "webhook-incoming";
pub const WEBHOOK_OUTGOING: &str = "webhook-outgoing";

/// One integration, in Rocket.Chat's stored shape (`rocketchat_integrations`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integration {
    #[serde(rename = "_id")]
    pub id: String,
    /// `webhook-incoming`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub enabled: bool,
    /// The user the webhook posts as, and their id.
    pub username: String,
    #[serde(rename = "userId")]
    pub user_id: String,
    /// Targets, each `#room` (name or id) or `@user`.
    pub channel: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// Kept as the client set it; no script is ever stored or run.
    #[serde(rename = "scriptEnabled")]
    pub script_enabled: bool,
    #[serde(rename = "scriptEngine")]
    pub script_engine: String,
    /// Whether a webhook call may name its own target (`channel` / `roomId`).
    #[serde(rename = "overrideDestinationChannelEnabled")]
    pub override_destination_channel_enabled: bool,
    /// The secret in the webhook's URL.
    pub token: String,
    #[serde(rename = "_createdBy")]
    pub created_by: CreatedBy,
    #[serde(rename = "_createdAt")]
    pub created_at: Millis,
    #[serde(rename = "_updatedBy", default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<CreatedBy>,
    #[serde(rename = "_updatedAt")]
    pub updated_at: Millis,
}
