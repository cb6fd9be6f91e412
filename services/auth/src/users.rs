//! Creating, finding and listing users.

use apogee_api::{NewUser, UserListQuery, UserSelector};
use apogee_store::UserFilter;
use apogee_types::{
    Email, ErrorKind, Millis, Page, PageRequest, Principal, ServiceError, ServiceResult, User, random_id,
};
use serde_json::{Map, Value};

use crate::crypto::hash_password;
use crate::service::{Auth, store_error};

/// Rocket.Chat's fallback when `UTF8_User_Names_Validation` is not a usable pattern.
const DEFAULT_NAME_PATTERN: &str = "[0-9a-zA-Z-_.]+";

/// Whether `name` matches `^<pattern>$`, the way Rocket.Chat validates user and room names.
pub(crate) fn name_is_valid(pattern: Option<&str>, name: &str) -> bool {
    let anchored = |p: &str| regex_lite::Regex::new(&format!("^(?:{p})$"));
    let regex = pattern.and_then(|p| anchored(p).ok()).or_else(|| anchored(DEFAULT_NAME_PATTERN).ok());
    match regex {
        Some(regex) => regex.is_match(name),
        None => {
            name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                && !name.is_empty()
        }
    }
}

/// Names may not contain `<`, `>`, `/` or `\`, also when URL-encoded.
pub(crate) fn name_chars_are_valid(name: &str) -> bool {
    let bad = |s: &str| s.contains(['<', '>', '/', '\\']);
    let decoded = name
        .replace("%3C", "<")
        .replace("%3c", "<")
        .replace("%3E", ">")
        .replace("%3e", ">")
        .replace("%2F", "/")
        .replace("%2f", "/")
        .replace("%5C", "\\")
        .replace("%5c", "\\");
    !bad(name) && !bad(&decoded)
}

pub(crate) fn email_is_valid(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
}

impl Auth {
    /// Rocket.Chat's `validateCustomFields`: the user's fields against `Accounts_CustomFields`
    /// (a JSON object of field name → `{type, required, minLength, maxLength, options}`); an
    /// empty setting accepts anything.
    pub(crate) fn validate_custom_fields(&self, fields: &Map<String, Value>) -> ServiceResult<()> {
        let setting = self.setting("Accounts_CustomFields");
        let text = setting.as_ref().and_then(Value::as_str).map(str::trim).unwrap_or_default();
        if text.is_empty() {
            return Ok(());
        }
        let Ok(Value::Object(meta)) = serde_json::from_str::<Value>(text) else {
            return Err(ServiceError::invalid(
                "error-invalid-customfield-json",
                "Invalid JSON for Custom Fields",
            ));
        };
        let refuse = |message: String| {
            ServiceError::invalid("error-user-registration-custom-field", message)
                .with_details(serde_json::json!({ "method": "registerUser" }))
        };
        for (name, field) in &meta {
            let given = fields.get(name);
            let value = given.and_then(Value::as_str).map(str::trim).unwrap_or_default();
            // JavaScript counts UTF-16 units.
            let length = value.encode_utf16().count() as u64;
            if field.get("required").and_then(Value::as_bool) == Some(true) && value.is_empty() {
                return Err(refuse(format!("Field {name} is required")));
            }
            if field.get("type").and_then(Value::as_str) == Some("select") {
                let options = field.get("options").and_then(Value::as_array);
                if !options.is_some_and(|o| given.is_some_and(|g| o.contains(g))) {
                    return Err(refuse(format!("Value for field {name} is invalid")));
                }
            }
            if let Some(max) = field.get("maxLength").and_then(Value::as_u64).filter(|m| *m > 0)
                && length > max
            {
                return Err(refuse(format!("Max length of field {name} {max}")));
            }
            if let Some(min) = field.get("minLength").and_then(Value::as_u64).filter(|m| *m > 0)
                && length > 0
                && length < min
            {
                return Err(refuse(format!("Min length of field {name} {min}")));
            }
        }
        Ok(())
    }

    /// Validates and stores a new user; `by_admin` allows roles and activation to be chosen.
    pub(crate) async fn insert_new_user(&self, new: NewUser, by_admin: bool) -> ServiceResult<User> {
        let username = new.username.trim().to_owned();
        let name = new.name.as_deref().map(str::trim).unwrap_or_default().to_owned();
        if !name_chars_are_valid(&name) {
            return Err(ServiceError::failure("Name contains invalid characters"));
        }
        // Given fields are checked before anything else about the user (Rocket.Chat's
        // `validateCustomFields` ahead of `saveUser`).
        if !new.custom_fields.is_empty() {
            self.validate_custom_fields(&new.custom_fields)?;
        }
        if self.setting_bool("Accounts_RequireNameForSignUp") && name.is_empty() {
            return Err(ServiceError::invalid("error-the-field-is-required", "The field Name is required"));
        }
        if username.is_empty() {
            return Err(ServiceError::invalid(
                "error-the-field-is-required",
                "The field Username is required",
            ));
        }
        let pattern = self.setting("UTF8_User_Names_Validation").and_then(|v| v.as_str().map(str::to_owned));
        if !name_is_valid(pattern.as_deref(), &username) {
            return Err(ServiceError::invalid(
                "error-input-is-not-a-valid-field",
                format!("{} is not a valid username", html_escape(&username)),
            ));
        }
        if self.username_is_blocked(&username) {
            return Err(ServiceError::invalid(
                "error-blocked-username",
                format!("{} is blocked and can't be used!", html_escape(&username)),
            ));
        }
        if new.password.is_empty() {
            return Err(ServiceError::invalid(
                "error-the-field-is-required",
                "The field Password is required",
            ));
        }
        let email = new.email.trim().to_owned();
        if !email_is_valid(&email) {
            return Err(ServiceError::invalid(
                "error-invalid-email",
                format!("Invalid email {}", html_escape(&email)),
            ));
        }
        let roles = match new.roles {
            Some(roles) if by_admin => roles,
            _ => self.default_roles(),
        };
        let known: Vec<String> = self
            .roles
            .read()
            .map_err(|_| ServiceError::internal("roles lock poisoned"))?
            .iter()
            .map(|r| r.id.clone())
            .collect();
        if roles.iter().any(|r| !known.contains(r)) {
            return Err(ServiceError::invalid(
                "error-action-not-allowed",
                "The field Roles consist invalid role id",
            ));
        }
        if self.store.user_by_username(&username).await.map_err(store_error)?.is_some() {
            return Err(ServiceError::invalid(
                "error-field-unavailable",
                format!("{} is already in use :(", html_escape(&username)),
            ));
        }
        if self.store.user_by_email(&email).await.map_err(store_error)?.is_some() {
            return Err(ServiceError::invalid(
                "error-field-unavailable",
                format!("{} is already in use :(", html_escape(&email)),
            ));
        }
        let now = Millis::now();
        let user = User {
            id: random_id(),
            username,
            name: Some(name).filter(|n| !n.is_empty()),
            emails: vec![Email { address: email, verified: new.verified }],
            roles,
            kind: new.kind.unwrap_or_else(|| "user".into()),
            active: if by_admin { new.active.unwrap_or(true) } else { true },
            status: "offline".into(),
            status_default: "online".into(),
            status_text: String::new(),
            utc_offset: 0.0,
            created_at: now,
            updated_at: now,
            last_login: None,
            password_bcrypt: Some(hash_password(&new.password, self.cfg.bcrypt_cost).await?),
            require_password_change: new.require_password_change,
            language: None,
            nickname: None,
            bio: None,
            custom_fields: new.custom_fields,
            preferences: Map::new(),
            avatar_etag: None,
        };
        self.store.insert_user(user.clone()).await.map_err(store_error)?;
        if new.join_default_channels
            && let Some(messaging) = self.messaging.get()
        {
            messaging.join_default_rooms(&user, false).await?;
        }
        Ok(user)
    }

    fn default_roles(&self) -> Vec<String> {
        self.setting("Accounts_Registration_Users_Default_Roles")
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| "user".into())
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// `all`, `here`, `Accounts_BlockedUsernameList` and `Accounts_SystemBlockedUsernameList`,
    /// compared without case.
    pub(crate) fn username_is_blocked(&self, username: &str) -> bool {
        let lower = username.to_lowercase();
        let listed = |id: &str| {
            self.setting(id)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
                .split(',')
                .any(|blocked| blocked.trim().to_lowercase() == lower)
        };
        lower == "all"
            || lower == "here"
            || listed("Accounts_BlockedUsernameList")
            || listed("Accounts_SystemBlockedUsernameList")
    }

    pub(crate) async fn register_impl(&self, new: NewUser) -> ServiceResult<User> {
        let form = self.setting("Accounts_RegistrationForm").and_then(|v| v.as_str().map(str::to_owned));
        if form.as_deref() == Some("Disabled") {
            return Err(ServiceError::invalid(
                "error-user-registration-disabled",
                "User registration is disabled",
            ));
        }
        if form.as_deref() == Some("Secret URL") {
            return Err(ServiceError::invalid(
                "error-user-registration-secret",
                "User registration is only allowed via Secret URL",
            ));
        }
        // `users.register` words its refusals differently from `users.create`.
        if new.name.as_deref().is_some_and(|n| !name_chars_are_valid(n)) {
            return Err(ServiceError::failure("Name contains invalid characters"));
        }
        let pattern = self.setting("UTF8_User_Names_Validation").and_then(|v| v.as_str().map(str::to_owned));
        if !name_is_valid(pattern.as_deref(), new.username.trim()) {
            return Err(ServiceError::failure("The username provided is not valid"));
        }
        if self.store.user_by_username(new.username.trim()).await.map_err(store_error)?.is_some() {
            return Err(ServiceError::failure("Username is already in use"));
        }
        let new = NewUser { roles: None, active: None, join_default_channels: true, ..new };
        self.insert_new_user(new, false).await
    }

    pub(crate) async fn user_info_impl(
        &self,
        _who: &Principal,
        selector: UserSelector,
    ) -> ServiceResult<User> {
        let found = match &selector {
            UserSelector::Id(id) => self.store.user_by_id(id).await,
            UserSelector::Username(name) => self.store.user_by_username(name).await,
        }
        .map_err(store_error)?;
        found.ok_or_else(|| ServiceError::new(ErrorKind::NotFound, "error-invalid-user", "Invalid user"))
    }

    pub(crate) async fn list_users_impl(
        &self,
        who: &Principal,
        query: UserListQuery,
        page: PageRequest,
    ) -> ServiceResult<Page<User>> {
        if !self.has_permission(&who.roles, "view-d-room") {
            return Err(ServiceError::unauthorized());
        }
        let filter = UserFilter { text: query.text, ..Default::default() };
        self.store.list_users(&filter, page).await.map_err(store_error)
    }

    /// `Accounts_Default_User_Preferences_*` overlaid with the user's own preferences.
    pub(crate) fn preferences_of(&self, user: &User) -> Map<String, Value> {
        const PREFIX: &str = "Accounts_Default_User_Preferences_";
        let mut preferences = Map::new();
        if let Ok(settings) = self.settings.read() {
            for (id, setting) in settings.iter() {
                if let Some(key) = id.strip_prefix(PREFIX) {
                    preferences.insert(key.to_owned(), setting.value.clone());
                }
            }
        }
        for (k, v) in &user.preferences {
            preferences.insert(k.clone(), v.clone());
        }
        preferences
    }
}

/// Rocket.Chat escapes names it echoes in errors (`_.escape`).
pub(crate) fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_setting() {
        assert!(name_is_valid(None, "alice.b-c_1"));
        assert!(!name_is_valid(None, "al ice"));
        assert!(!name_is_valid(None, ""));
        assert!(name_is_valid(Some("[a-z]+"), "abc"));
        assert!(!name_is_valid(Some("[a-z]+"), "ABC"));
        assert!(name_is_valid(Some("(unclosed"), "fallback.ok"), "a broken pattern falls back");
    }

    #[test]
    fn emails() {
        assert!(email_is_valid("a@b.co"));
        assert!(!email_is_valid("a@b"));
        assert!(!email_is_valid("ab.co"));
        assert!(!email_is_valid("a b@c.de"));
    }
}
