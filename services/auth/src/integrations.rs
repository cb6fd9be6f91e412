//! Incoming webhooks (`integrations.*`): Rocket.Chat's `addIncomingIntegration`,
//! `updateIncomingIntegration`, `deleteIncomingIntegration` and the permission-based queries.
//!
//! Scripts are never run: a non-blank `script` is refused as Rocket.Chat refuses it when
//! `FREEZE_INTEGRATION_SCRIPTS` is set (`integration-scripts-disabled`); `scriptEnabled` is kept
//! as sent, since the admin UI and Rocket.Chat's tests send `true` without a script.

use apogee_api::IntegrationInput;
use apogee_store::IntegrationFilter;
use apogee_types::{
    CreatedBy, Integration, Millis, Page, PageRequest, Principal, ServiceError, ServiceResult, User,
    WEBHOOK_INCOMING, WEBHOOK_OUTGOING, random_id, random_id_of,
};

use crate::service::{Auth, store_error};

const MANAGE_ALL: &str = "manage-incoming-integrations";
const MANAGE_OWN: &str = "manage-own-incoming-integrations";
const MANAGE_ALL_OUTGOING: &str = "manage-outgoing-integrations";
const MANAGE_OWN_OUTGOING: &str = "manage-own-outgoing-integrations";

fn not_authorized() -> ServiceError {
    ServiceError::invalid("not_authorized", "Unauthorized")
}

fn invalid_integration() -> ServiceError {
    ServiceError::invalid("error-invalid-integration", "Invalid integration")
}

/// `a, #b , @c` → `["a", "#b", "@c"]`, each target checked to start with `#` or `@`.
fn parse_channels(channel: &str) -> ServiceResult<Vec<String>> {
    if channel.trim().is_empty() {
        return Err(ServiceError::invalid("error-invalid-channel", "Invalid channel"));
    }
    let channels: Vec<String> = channel.split(',').map(|c| c.trim().to_owned()).collect();
    if channels.iter().any(|c| !c.starts_with('#') && !c.starts_with('@')) {
        return Err(ServiceError::invalid(
            "error-invalid-channel-start-with-chars",
            "Invalid channel. Start with @ or #",
        ));
    }
    Ok(channels)
}

/// Scripts are not run here; refusing one beats storing code that silently never executes.
fn refuse_script(input: &IntegrationInput) -> ServiceResult<()> {
    if input.script.as_deref().is_some_and(|s| !s.trim().is_empty()) {
        return Err(ServiceError::failure("integration-scripts-disabled"));
    }
    Ok(())
}

impl Auth {
    fn can(&self, who: &Principal, permission: &str) -> bool {
        self.has_permission(&who.roles, permission)
    }

    /// Each target must exist; a caller without both manage permissions must also be in it.
    async fn check_targets(&self, who: &Principal, channels: &[String]) -> ServiceResult<()> {
        let messaging = self.messaging.get().ok_or_else(|| ServiceError::internal("messaging not linked"))?;
        let trusted = self.can(who, MANAGE_ALL) && self.can(who, MANAGE_OWN);
        for channel in channels {
            let (kind, name) = channel.split_at(1);
            let id = if kind == "#" {
                match messaging.find_room(name).await? {
                    Some(room) => Some(room.id),
                    None => messaging.find_room_by_name(name).await?.map(|r| r.id),
                }
            } else {
                match self.store.user_by_id(name).await.map_err(store_error)? {
                    Some(user) => Some(user.id),
                    None => self.store.user_by_username(name).await.map_err(store_error)?.map(|u| u.id),
                }
            };
            let Some(id) = id else {
                return Err(ServiceError::invalid("error-invalid-room", "Invalid room"));
            };
            // As Rocket.Chat: the membership looked up is of the found id, so an `@user` target
            // needs both permissions.
            if !trusted && messaging.subscription(who, &id).await?.is_none() {
                return Err(ServiceError::invalid("error-invalid-channel", "Invalid Channel"));
            }
        }
        Ok(())
    }

    /// Integrations post as bots: the posting user gets the `bot` role, as in Rocket.Chat.
    async fn make_bot(&self, user: &User) -> ServiceResult<()> {
        if user.roles.iter().any(|r| r == "bot") {
            return Ok(());
        }
        self.store
            .update_user(
                &user.id,
                Box::new(|u| {
                    if !u.roles.iter().any(|r| r == "bot") {
                        u.roles.push("bot".into());
                    }
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        self.forget_user_tokens(&user.id).await;
        Ok(())
    }

    pub(crate) async fn create_integration_impl(
        &self,
        who: &Principal,
        input: IntegrationInput,
    ) -> ServiceResult<Integration> {
        if !self.can(who, MANAGE_ALL) && !self.can(who, MANAGE_OWN) {
            return Err(not_authorized());
        }
        let channels = parse_channels(&input.channel)?;
        if input.username.trim().is_empty() {
            return Err(ServiceError::invalid("error-invalid-username", "Invalid username"));
        }
        refuse_script(&input)?;
        let user = self
            .store
            .user_by_username(&input.username)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::invalid("error-invalid-user", "Invalid user"))?;
        self.check_targets(who, &channels).await?;
        let now = Millis::now();
        let integration = Integration {
            id: random_id(),
            kind: WEBHOOK_INCOMING.into(),
            name: input.name,
            enabled: input.enabled,
            username: user.username.clone(),
            user_id: user.id.clone(),
            channel: channels,
            alias: input.alias,
            avatar: input.avatar,
            emoji: input.emoji,
            script_enabled: input.script_enabled,
            script_engine: input.script_engine.unwrap_or_else(|| "isolated-vm".into()),
            override_destination_channel_enabled: input.override_destination_channel_enabled.unwrap_or(false),
            token: random_id_of(48),
            created_by: CreatedBy { id: who.user_id.clone(), username: who.username.clone() },
            created_at: now,
            updated_by: None,
            updated_at: now,
        };
        self.store.insert_integration(integration.clone()).await.map_err(store_error)?;
        // The role only once the record is stored: a refused write leaves the user as it was.
        self.make_bot(&user).await?;
        Ok(integration)
    }

    /// The integration the caller may change: any with `manage-incoming-integrations`, their
    /// own with `manage-own-incoming-integrations`.
    async fn manageable(&self, who: &Principal, id: &str) -> ServiceResult<Integration> {
        let own_only = if self.can(who, MANAGE_ALL) {
            false
        } else if self.can(who, MANAGE_OWN) {
            true
        } else {
            return Err(not_authorized());
        };
        let found = self.store.integration_by_id(id).await.map_err(store_error)?;
        found
            .filter(|i| i.kind == WEBHOOK_INCOMING && (!own_only || i.created_by.id == who.user_id))
            .ok_or_else(invalid_integration)
    }

    pub(crate) async fn update_integration_impl(
        &self,
        who: &Principal,
        id: &str,
        input: IntegrationInput,
    ) -> ServiceResult<Integration> {
        // Rocket.Chat's order: the record, the targets' syntax, then the permission.
        if self.store.integration_by_id(id).await.map_err(store_error)?.is_none() {
            return Err(ServiceError::failure("No integration found."));
        }
        let channels = parse_channels(&input.channel)?;
        let current = self.manageable(who, id).await?;
        refuse_script(&input)?;
        self.check_targets(who, &channels).await?;
        let user = self
            .store
            .user_by_username(&current.username)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::invalid("error-invalid-post-as-user", "Invalid Post As User"))?;
        let editor = CreatedBy { id: who.user_id.clone(), username: who.username.clone() };
        let updated = self
            .store
            .update_integration(
                id,
                Box::new(move |i| {
                    i.enabled = input.enabled;
                    i.name = input.name;
                    i.avatar = input.avatar;
                    i.emoji = input.emoji;
                    i.alias = input.alias;
                    i.channel = channels;
                    i.script_enabled = input.script_enabled;
                    if let Some(engine) = input.script_engine {
                        i.script_engine = engine;
                    }
                    if let Some(enabled) = input.override_destination_channel_enabled {
                        i.override_destination_channel_enabled = enabled;
                    }
                    i.updated_at = Millis::now().max(i.updated_at);
                    i.updated_by = Some(editor);
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        self.make_bot(&user).await?;
        Ok(updated)
    }

    pub(crate) async fn remove_integration_impl(
        &self,
        who: &Principal,
        id: &str,
    ) -> ServiceResult<Integration> {
        let any = [MANAGE_ALL, MANAGE_OWN, MANAGE_ALL_OUTGOING, MANAGE_OWN_OUTGOING];
        if !any.iter().any(|p| self.can(who, p)) {
            return Err(ServiceError::unauthorized());
        }
        if self.store.integration_by_id(id).await.map_err(store_error)?.is_none() {
            return Err(ServiceError::failure("No integration found."));
        }
        let integration = self.manageable(who, id).await?;
        match self.store.delete_integration(id).await {
            Ok(()) => Ok(integration),
            // Removed meanwhile by someone else: the outcome the caller asked for, but not theirs.
            Err(apogee_store::StoreError::NotFound { .. }) => Err(invalid_integration()),
            Err(e) => Err(store_error(e)),
        }
    }

    pub(crate) async fn get_integration_impl(
        &self,
        who: &Principal,
        id: &str,
        created_by: Option<String>,
    ) -> ServiceResult<Integration> {
        let found = self.store.integration_by_id(id).await.map_err(store_error)?;
        let integration = found
            .filter(|i| created_by.as_ref().is_none_or(|c| *c == i.created_by.id))
            .ok_or_else(|| ServiceError::failure("The integration does not exists."))?;
        let (all, own) = if integration.kind == WEBHOOK_INCOMING {
            (MANAGE_ALL, MANAGE_OWN)
        } else {
            (MANAGE_ALL_OUTGOING, MANAGE_OWN_OUTGOING)
        };
        if self.can(who, all) || (integration.created_by.id == who.user_id && self.can(who, own)) {
            Ok(integration)
        } else {
            Err(ServiceError::failure("not-authorized"))
        }
    }

    pub(crate) async fn list_integrations_impl(
        &self,
        who: &Principal,
        channels: Option<Vec<String>>,
        page: PageRequest,
    ) -> ServiceResult<Page<Integration>> {
        let pairs = [
            (WEBHOOK_OUTGOING, MANAGE_ALL_OUTGOING, MANAGE_OWN_OUTGOING),
            (WEBHOOK_INCOMING, MANAGE_ALL, MANAGE_OWN),
        ];
        let mut filter = IntegrationFilter {
            own_user: who.user_id.clone(),
            newest_first: channels.is_none(),
            channels,
            ..Default::default()
        };
        for (kind, all, own) in pairs {
            if self.can(who, all) {
                filter.kinds.push(kind.into());
            } else if self.can(who, own) {
                filter.own_kinds.push(kind.into());
            }
        }
        if filter.kinds.is_empty() && filter.own_kinds.is_empty() {
            return Err(ServiceError::unauthorized());
        }
        self.store.list_integrations(&filter, page).await.map_err(store_error)
    }

    pub(crate) async fn webhook_impl(
        &self,
        id: &str,
        token: &str,
    ) -> ServiceResult<Option<(Integration, Option<Principal>)>> {
        let Some(integration) = self.store.integration_by_id(id).await.map_err(store_error)? else {
            return Ok(None);
        };
        if integration.kind != WEBHOOK_INCOMING || !crate::crypto::same_secret(&integration.token, token) {
            return Ok(None);
        }
        let user = self.store.user_by_id(&integration.user_id).await.map_err(store_error)?;
        let principal = user.filter(|u| u.active).map(|u| u.principal());
        Ok(Some((integration, principal)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn channels_are_split_trimmed_and_prefixed() {
        assert_eq!(parse_channels("#a, @b ,#c").ok(), Some(vec!["#a".into(), "@b".into(), "#c".into()]));
        assert_eq!(parse_channels("  ").unwrap_err().error_type, "error-invalid-channel");
        assert_eq!(parse_channels("#a,b").unwrap_err().error_type, "error-invalid-channel-start-with-chars");
        assert_eq!(parse_channels("#a,").unwrap_err().error_type, "error-invalid-channel-start-with-chars");
    }

    #[test]
    fn scripts_are_refused_blank_ones_are_not() {
        let mut input = IntegrationInput { script: Some("  ".into()), ..Default::default() };
        assert!(refuse_script(&input).is_ok());
        input.script = Some("class Script {}".into());
        assert_eq!(refuse_script(&input).unwrap_err().message, "integration-scripts-disabled");
    }
}
