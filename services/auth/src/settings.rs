//! Settings, permissions and roles: cached in memory, written through to the store.

use apogee_api::events::{AllEvent, BusEvent, SETTINGS_CHANGED_SUBJECT, SettingChanged, all_subject};
use apogee_bus::Subject;
use apogee_types::{Millis, Page, PageRequest, Permission, Principal, ServiceError, ServiceResult, Setting};
use serde_json::Value;

use crate::service::{Auth, store_error};

/// Coerces a written value to the setting's type, as the admin UI would send it.
fn coerce(kind: &str, value: Value) -> Option<Value> {
    match (kind, value) {
        ("boolean", Value::Bool(b)) => Some(Value::Bool(b)),
        ("boolean", Value::String(s)) if s == "true" || s == "false" => Some(Value::Bool(s == "true")),
        ("int", Value::Number(n)) => Some(Value::Number(n)),
        ("int", Value::String(s)) => s.trim().parse::<i64>().ok().map(Value::from),
        ("boolean" | "int", _) => None,
        (_, value) => Some(value),
    }
}

impl Auth {
    /// Best effort, after the write is durable: sockets that miss it read the new state on
    /// their next `public-settings/get` / `permissions/get`.
    /// `Users:NameChanged` for every logged-in client, when a durable update changed the user's
    /// name or username.
    pub(crate) async fn announce_name_change(
        &self,
        before: Option<&apogee_types::User>,
        after: &apogee_types::User,
    ) {
        if before.is_some_and(|b| b.name == after.name && b.username == after.username) {
            return;
        }
        let event = AllEvent::NameChanged {
            id: after.id.clone(),
            name: after.name.clone(),
            username: after.username.clone(),
        };
        self.announce("name-changed", &event).await;
    }

    /// After a durable change of a user's username or name: messaging rewrites the copies rooms,
    /// subscriptions and messages keep. The user is saved already, so a failure there is logged
    /// rather than returned.
    pub(crate) async fn rename_references(
        &self,
        before: Option<&apogee_types::User>,
        after: &apogee_types::User,
    ) {
        let Some(before) = before.filter(|b| b.name != after.name || b.username != after.username) else {
            return;
        };
        if let Some(messaging) = self.messaging.get()
            && let Err(e) = messaging.user_renamed(before, after).await
        {
            tracing::warn!(error = %e, user = %after.id, "username references not rewritten");
        }
    }

    pub(crate) async fn announce(&self, kind: &str, event: &AllEvent) {
        let Ok(subject) = Subject::new(&all_subject(kind)) else { return };
        if let Err(e) = self.bus.publish(&subject, event.encode()).await {
            tracing::warn!(error = %e, "change not announced");
        }
    }

    async fn announce_internal(&self, subject: &str, event: &impl BusEvent) {
        let Ok(subject) = Subject::new(subject) else { return };
        if let Err(e) = self.bus.publish(&subject, event.encode()).await {
            tracing::warn!(error = %e, "change not announced to the other roles");
        }
    }

    pub(crate) fn public_settings_impl(&self, ids: Option<Vec<String>>, page: PageRequest) -> Page<Setting> {
        let Ok(settings) = self.settings.read() else {
            return Page { items: vec![], offset: page.offset, total: 0 };
        };
        let mut matching: Vec<&Setting> = settings
            .values()
            .filter(|s| s.public && ids.as_ref().is_none_or(|ids| ids.contains(&s.id)))
            .collect();
        matching.sort_by(|a, b| a.id.cmp(&b.id));
        let total = matching.len() as u64;
        let skip = usize::try_from(page.offset).unwrap_or(usize::MAX);
        let take = page.count.map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let items = matching.into_iter().skip(skip).take(take).cloned().collect();
        Page { items, offset: page.offset, total }
    }

    pub(crate) fn get_setting_impl(&self, who: &Principal, id: &str) -> ServiceResult<Setting> {
        if !self.has_permission(&who.roles, "view-privileged-setting") {
            return Err(ServiceError::unauthorized());
        }
        let settings = self.settings.read().map_err(|_| ServiceError::internal("settings lock poisoned"))?;
        settings.get(id).cloned().ok_or_else(|| ServiceError::not_found("", "Resource not found"))
    }

    pub(crate) async fn set_setting_impl(
        &self,
        who: &Principal,
        id: &str,
        value: Value,
    ) -> ServiceResult<()> {
        if !self.has_permission(&who.roles, "edit-privileged-setting") {
            return Err(ServiceError::unauthorized());
        }
        let current = {
            let settings =
                self.settings.read().map_err(|_| ServiceError::internal("settings lock poisoned"))?;
            settings.get(id).cloned()
        };
        let Some(mut setting) = current else {
            return Err(ServiceError::failure_typed("error-setting-not-found", "Setting not found"));
        };
        setting.value = coerce(&setting.kind, value).ok_or_else(|| {
            ServiceError::failure_typed(
                "error-invalid-setting-value",
                format!("Invalid value for setting {id}"),
            )
        })?;
        setting.updated_at = Millis::now();
        self.write_setting(setting).await
    }

    /// Stores a setting, then makes it visible: nothing is acknowledged before it is durable.
    pub(crate) async fn write_setting(&self, setting: Setting) -> ServiceResult<()> {
        self.store.upsert_settings(vec![setting.clone()]).await.map_err(store_error)?;
        let id = setting.id.clone();
        let public =
            setting.public.then(|| AllEvent::PublicSetting { id: id.clone(), value: setting.value.clone() });
        // In memory before announcing: a role that refetches on the event must read the new value.
        self.settings
            .write()
            .map_err(|_| ServiceError::internal("settings lock poisoned"))?
            .insert(id.clone(), setting);
        if let Some(event) = public {
            self.announce("public-settings-changed", &event).await;
        }
        self.announce_internal(SETTINGS_CHANGED_SUBJECT, &SettingChanged { id }).await;
        Ok(())
    }

    pub(crate) async fn update_permissions_impl(
        &self,
        who: &Principal,
        changes: Vec<(String, Vec<String>)>,
    ) -> ServiceResult<Vec<Permission>> {
        if !self.has_permission(&who.roles, "access-permissions") {
            return Err(ServiceError::failure_typed(
                "error-edit-permissions-not-allowed",
                "Editing permissions is not allowed",
            ));
        }
        let mut updated = Vec::with_capacity(changes.len());
        {
            let permissions = self.permissions.read().map_err(|_| ServiceError::internal("lock poisoned"))?;
            let roles = self.roles.read().map_err(|_| ServiceError::internal("lock poisoned"))?;
            for (id, new_roles) in changes {
                let Some(existing) = permissions.get(&id) else {
                    return Err(ServiceError::failure_typed(
                        "error-invalid-permission",
                        "Invalid permission",
                    ));
                };
                if new_roles.iter().any(|r| !roles.iter().any(|known| &known.id == r)) {
                    return Err(ServiceError::failure_typed("error-invalid-role", "Invalid role"));
                }
                let mut deduped: Vec<String> = Vec::with_capacity(new_roles.len());
                for role in new_roles {
                    if !deduped.contains(&role) {
                        deduped.push(role);
                    }
                }
                updated.push(Permission {
                    id,
                    roles: deduped,
                    updated_at: Millis::now().max(existing.updated_at),
                });
            }
        }
        // One write for all the changes: either all of them stand or none does.
        self.store.upsert_permissions(updated.clone()).await.map_err(store_error)?;
        // In memory before announcing: a role that refetches on the event must read the new roles.
        let all = {
            let mut permissions =
                self.permissions.write().map_err(|_| ServiceError::internal("lock poisoned"))?;
            for permission in &updated {
                permissions.insert(permission.id.clone(), permission.clone());
            }
            let mut all: Vec<Permission> = permissions.values().cloned().collect();
            all.sort_by(|a, b| a.id.cmp(&b.id));
            all
        };
        for permission in updated {
            let event = AllEvent::Permission {
                id: permission.id,
                roles: permission.roles,
                updated_at: permission.updated_at,
            };
            self.announce("permissions-changed", &event).await;
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercion() {
        assert_eq!(coerce("boolean", Value::from("true")), Some(Value::Bool(true)));
        assert_eq!(coerce("boolean", Value::from(1)), None);
        assert_eq!(coerce("int", Value::from("42")), Some(Value::from(42)));
        assert_eq!(coerce("int", Value::from("x")), None);
        assert_eq!(coerce("string", Value::from(3)), Some(Value::from(3)));
    }
}
