//! First start and every start: Rocket.Chat's default settings, permissions and roles, the
//! `rocket.cat` bot, the first admin, and under `TEST_MODE` the test-suite admin.

use std::collections::BTreeMap;

use apogee_types::{Email, Millis, ServiceError, ServiceResult, Setting, User, random_id};
use serde_json::{Map, Value};

use crate::crypto::hash_password;
use crate::defaults;
use crate::service::{Auth, store_error};

/// The test suite's admin: id, username and password are all this string.
pub const TEST_ADMIN: &str = "rocketchat.internal.admin.test";

/// What the operator asked for at start.
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    /// `ADMIN_USERNAME` / `ADMIN_PASS` / `ADMIN_EMAIL` / `ADMIN_NAME`: created when no admin exists.
    pub admin: Option<(String, String, Option<String>, Option<String>)>,
    /// `OVERWRITE_SETTING_<id>`.
    pub setting_overrides: BTreeMap<String, String>,
}

fn override_value(kind: &str, raw: &str) -> Value {
    match kind {
        "boolean" => Value::Bool(raw == "true"),
        "int" => raw.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(raw)),
        _ => Value::from(raw),
    }
}

impl Auth {
    /// Loads settings, permissions and roles into memory, adding Rocket.Chat's defaults that are
    /// missing, then seeds the users. Run once before serving; messaging must be linked first.
    pub async fn init(&self, boot: Bootstrap) -> ServiceResult<()> {
        let now = Millis::now();
        self.init_settings(&boot, now).await?;
        self.init_permissions(now).await?;
        self.init_roles(now).await?;
        self.seed_rocket_cat(now).await?;
        if self.cfg.test_mode {
            self.seed_test_admin(now).await?;
        }
        if let Some((username, password, email, name)) = boot.admin {
            self.seed_admin(username, password, email, name, now).await?;
        }
        Ok(())
    }

    async fn init_settings(&self, boot: &Bootstrap, now: Millis) -> ServiceResult<()> {
        let stored: BTreeMap<String, Setting> = self
            .store
            .settings()
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        let unique_id = stored
            .get("uniqueID")
            .and_then(|s| s.value.as_str().map(str::to_owned))
            .unwrap_or_else(random_id);
        let mut changed_settings = Vec::new();
        for default in defaults::settings(now, &self.cfg.site_url, &unique_id) {
            let setting = match stored.get(&default.id) {
                // Keep what an admin set; refresh what describes the setting.
                Some(existing) => {
                    Setting { value: existing.value.clone(), updated_at: existing.updated_at, ..default }
                }
                None => default,
            };
            let changed = stored.get(&setting.id) != Some(&setting);
            if changed {
                changed_settings.push(setting.clone());
            }
            self.settings
                .write()
                .map_err(|_| ServiceError::internal("lock poisoned"))?
                .insert(setting.id.clone(), setting);
        }
        // One write for the whole registry: a first start stores some 800 defaults.
        self.store.upsert_settings(changed_settings).await.map_err(store_error)?;
        // Site_Url follows ROOT_URL, as Rocket.Chat does on start.
        let mut forced = boot.setting_overrides.clone();
        forced.entry("Site_Url".into()).or_insert_with(|| self.cfg.site_url.clone());
        for (id, raw) in forced {
            let current =
                self.settings.read().map_err(|_| ServiceError::internal("lock poisoned"))?.get(&id).cloned();
            let Some(mut setting) = current else {
                tracing::warn!(setting = %id, "OVERWRITE_SETTING names an unknown setting; ignored");
                continue;
            };
            let value = override_value(&setting.kind, &raw);
            if setting.value != value {
                setting.value = value;
                setting.updated_at = now;
                self.write_setting(setting).await?;
            }
        }
        Ok(())
    }

    async fn init_permissions(&self, now: Millis) -> ServiceResult<()> {
        let mut cache: std::collections::HashMap<String, _> = self
            .store
            .permissions()
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        // Permissions an admin edited keep their roles; only missing ones get the defaults.
        let missing: Vec<_> =
            defaults::permissions(now).into_iter().filter(|p| !cache.contains_key(&p.id)).collect();
        self.store.upsert_permissions(missing.clone()).await.map_err(store_error)?;
        for permission in missing {
            cache.insert(permission.id.clone(), permission);
        }
        *self.permissions.write().map_err(|_| ServiceError::internal("lock poisoned"))? = cache;
        Ok(())
    }

    async fn init_roles(&self, now: Millis) -> ServiceResult<()> {
        let mut roles = self.store.roles().await.map_err(store_error)?;
        let missing: Vec<_> =
            defaults::roles(now).into_iter().filter(|d| !roles.iter().any(|r| r.id == d.id)).collect();
        self.store.upsert_roles(missing.clone()).await.map_err(store_error)?;
        roles.extend(missing);
        *self.roles.write().map_err(|_| ServiceError::internal("lock poisoned"))? = roles;
        Ok(())
    }

    async fn seed_rocket_cat(&self, now: Millis) -> ServiceResult<()> {
        if self.store.user_by_id("rocket.cat").await.map_err(store_error)?.is_some() {
            return Ok(());
        }
        let mut bot = base_user("rocket.cat", "rocket.cat", "Rocket.Cat", now);
        bot.kind = "bot".into();
        bot.roles = vec!["bot".into()];
        bot.status = "online".into();
        self.store.insert_user(bot).await.map_err(store_error)
    }

    /// Rocket.Chat deletes and re-creates this user on every start under `TEST_MODE`.
    async fn seed_test_admin(&self, now: Millis) -> ServiceResult<()> {
        if self.store.user_by_id(TEST_ADMIN).await.map_err(store_error)?.is_some() {
            self.store.delete_user(TEST_ADMIN).await.map_err(store_error)?;
        }
        let mut admin = base_user(TEST_ADMIN, TEST_ADMIN, "RocketChat Internal Admin Test", now);
        admin.emails = vec![Email { address: format!("{TEST_ADMIN}@rocket.chat"), verified: false }];
        admin.roles = vec!["admin".into()];
        admin.password_bcrypt = Some(hash_password(TEST_ADMIN, self.cfg.bcrypt_cost).await?);
        self.store.insert_user(admin.clone()).await.map_err(store_error)?;
        if let Some(messaging) = self.messaging.get() {
            messaging.join_default_rooms(&admin, true).await?;
        }
        Ok(())
    }

    async fn seed_admin(
        &self,
        username: String,
        password: String,
        email: Option<String>,
        name: Option<String>,
        now: Millis,
    ) -> ServiceResult<()> {
        let admins = apogee_store::UserFilter { roles: vec!["admin".into()], ..Default::default() };
        let existing = self
            .store
            .list_users(&admins, apogee_types::PageRequest { offset: 0, count: Some(1) })
            .await
            .map_err(store_error)?;
        let only_test_admin = existing.items.iter().all(|u| u.id == TEST_ADMIN);
        if existing.total > 0 && !(existing.total == 1 && only_test_admin) {
            return Ok(());
        }
        if self.store.user_by_username(&username).await.map_err(store_error)?.is_some() {
            tracing::warn!(%username, "ADMIN_USERNAME is taken by a user who is not an admin; no admin created");
            return Ok(());
        }
        let mut admin = base_user(&random_id(), &username, name.as_deref().unwrap_or("Administrator"), now);
        admin.emails = email.map(|address| vec![Email { address, verified: true }]).unwrap_or_default();
        admin.roles = vec!["admin".into(), "user".into()];
        admin.password_bcrypt = Some(hash_password(&password, self.cfg.bcrypt_cost).await?);
        self.store.insert_user(admin.clone()).await.map_err(store_error)?;
        if let Some(messaging) = self.messaging.get() {
            messaging.join_default_rooms(&admin, true).await?;
        }
        tracing::info!(%username, "created the first admin");
        Ok(())
    }
}

fn base_user(id: &str, username: &str, name: &str, now: Millis) -> User {
    User {
        id: id.into(),
        username: username.into(),
        name: Some(name.into()),
        emails: vec![],
        roles: vec!["user".into()],
        kind: "user".into(),
        active: true,
        status: "offline".into(),
        status_default: "online".into(),
        status_text: String::new(),
        utc_offset: 0.0,
        created_at: now,
        updated_at: now,
        last_login: None,
        password_bcrypt: None,
        require_password_change: false,
        language: None,
        nickname: None,
        bio: None,
        custom_fields: Map::new(),
        preferences: Map::new(),
        avatar_etag: None,
    }
}
