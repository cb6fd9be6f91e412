//! Personal access tokens (`users.*PersonalAccessToken*`), the second-factor check that guards
//! them, and `users.deactivateIdle`.
//!
//! A personal token is a login token with a name: stored hashed beside the resume tokens, it
//! authenticates REST calls and DDP `resume` logins like them, never expires and is not pruned.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use apogee_api::{PersonalToken, TwoFactorProof};
use apogee_store::{StoreError, UserFilter};
use apogee_types::{
    LoginToken, Millis, PageRequest, Principal, ServiceError, ServiceResult, User, random_secret,
};
use serde_json::json;

use crate::crypto::hash_token;
use crate::service::{Auth, store_error};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// How many characters of a new token its list keeps (Rocket.Chat's `lastTokenPart`).
const LAST_PART: usize = 6;

fn not_authorized() -> ServiceError {
    ServiceError::invalid("not-authorized", "Not Authorized")
}

fn no_such_token() -> ServiceError {
    ServiceError::invalid("error-token-does-not-exists", "Token does not exist")
}

fn name_required() -> ServiceError {
    ServiceError::failure("The 'tokenName' param is required")
}

/// The second factor Rocket.Chat asks for: only the password fallback exists here (no TOTP or
/// e-mail codes are set up for anyone), so its details name `password` and no other method.
fn second_factor_error(error: &str, message: &str, method: &str) -> ServiceError {
    ServiceError::invalid(error, message).with_details(json!({
        "method": method,
        "codeGenerated": false,
        "availableMethods": [],
    }))
}

impl Auth {
    /// Rocket.Chat's `checkCodeForUser` for a user without TOTP or e-mail codes.
    pub(crate) async fn check_second_factor(&self, user: &User, proof: &TwoFactorProof) -> ServiceResult<()> {
        // Rocket.Chat's TEST_MODE waives the second factor of actions that merely ask for one.
        if self.cfg.test_mode || !self.setting_bool("Accounts_TwoFactorAuthentication_Enabled") {
            return Ok(());
        }
        if let Some(token) = proof.token.as_deref().filter(|t| !t.is_empty())
            && let Some((owner, stored)) =
                self.store.user_by_token(&hash_token(token)).await.map_err(store_error)?
            && owner.id == user.id
        {
            if stored.bypass_two_factor {
                return Ok(());
            }
            // A user who registered moments ago is not asked again.
            let remember_ms = self.setting_i64("Accounts_TwoFactorAuthentication_RememberFor", 1800) * 1000;
            if remember_ms > 0 && user.created_at.0 + remember_ms >= Millis::now().0 {
                return Ok(());
            }
        }
        // The password stands in as the second factor for users who have one, when enforced.
        if !self.setting_bool("Accounts_TwoFactorAuthentication_Enforce_Password_Fallback")
            || user.password_bcrypt.as_deref().is_none_or(|h| h.trim().is_empty())
        {
            return Ok(());
        }
        let method = proof.method.as_deref().unwrap_or_default();
        // Naming a method that exists but is not set up for the user selects it, and it fails.
        let method = if matches!(method, "totp" | "email") { method } else { "password" };
        let Some(code) = proof.code.as_deref().filter(|c| !c.is_empty()) else {
            return Err(second_factor_error("totp-required", "TOTP Required", method));
        };
        if method != "password" || !self.password_matches(user, code).await? {
            return Err(second_factor_error("totp-invalid", "TOTP Invalid", method));
        }
        Ok(())
    }

    async fn token_owner(&self, who: &Principal) -> ServiceResult<User> {
        self.store
            .user_by_id(&who.user_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ServiceError::invalid("error-invalid-user", "Invalid user"))
    }

    async fn named_token(&self, user_id: &str, name: &str) -> ServiceResult<Option<LoginToken>> {
        let tokens = self.store.login_tokens_of_user(user_id).await.map_err(store_error)?;
        Ok(tokens.into_iter().find(|t| t.name.as_deref() == Some(name)))
    }

    async fn insert_personal_token(&self, user_id: &str, name: &str, bypass: bool) -> ServiceResult<String> {
        let token = random_secret();
        let stored = LoginToken {
            name: Some(name.to_owned()),
            last_token_part: Some(token[token.len().saturating_sub(LAST_PART)..].to_owned()),
            bypass_two_factor: bypass,
            ..LoginToken::resume(hash_token(&token), user_id.to_owned(), Millis::now())
        };
        match self.store.insert_login_token(stored).await {
            Ok(()) => Ok(token),
            Err(StoreError::Conflict { .. }) => Err(ServiceError::invalid(
                "error-token-already-exists",
                "A token with this name already exists",
            )),
            Err(e) => Err(store_error(e)),
        }
    }

    /// The checks every personal-token change makes, in Rocket.Chat's order.
    async fn personal_token_change(
        &self,
        who: &Principal,
        name: &str,
        proof: &TwoFactorProof,
    ) -> ServiceResult<User> {
        let user = self.token_owner(who).await?;
        self.check_second_factor(&user, proof).await?;
        if name.is_empty() {
            return Err(name_required());
        }
        if !self.has_permission(&who.roles, "create-personal-access-tokens") {
            return Err(not_authorized());
        }
        Ok(user)
    }

    pub(crate) async fn generate_personal_token_impl(
        &self,
        who: &Principal,
        name: &str,
        bypass_two_factor: bool,
        proof: TwoFactorProof,
    ) -> ServiceResult<String> {
        let user = self.personal_token_change(who, name, &proof).await?;
        // The store refuses a second token of the same name even when two requests race.
        self.insert_personal_token(&user.id, name, bypass_two_factor).await
    }

    pub(crate) async fn regenerate_personal_token_impl(
        &self,
        who: &Principal,
        name: &str,
        proof: TwoFactorProof,
    ) -> ServiceResult<String> {
        let user = self.personal_token_change(who, name, &proof).await?;
        let old = self.named_token(&user.id, name).await?.ok_or_else(no_such_token)?;
        self.store.delete_login_token(&old.hashed_token).await.map_err(store_error)?;
        self.forget_hashed_token(&old.hashed_token).await;
        // Rocket.Chat reads the flag from the user document instead of the token, so a
        // regenerated token never bypasses the second factor; the same here.
        self.insert_personal_token(&user.id, name, false).await
    }

    pub(crate) async fn remove_personal_token_impl(
        &self,
        who: &Principal,
        name: &str,
        proof: TwoFactorProof,
    ) -> ServiceResult<()> {
        let user = self.personal_token_change(who, name, &proof).await?;
        let old = self.named_token(&user.id, name).await?.ok_or_else(no_such_token)?;
        self.store.delete_login_token(&old.hashed_token).await.map_err(store_error)?;
        self.forget_hashed_token(&old.hashed_token).await;
        Ok(())
    }

    pub(crate) async fn personal_tokens_impl(&self, who: &Principal) -> ServiceResult<Vec<PersonalToken>> {
        if !self.has_permission(&who.roles, "create-personal-access-tokens") {
            return Err(not_authorized());
        }
        let tokens = self.store.login_tokens_of_user(&who.user_id).await.map_err(store_error)?;
        Ok(tokens
            .into_iter()
            .filter_map(|t| {
                Some(PersonalToken {
                    name: t.name?,
                    created_at: t.created_at,
                    last_token_part: t.last_token_part.unwrap_or_default(),
                    bypass_two_factor: t.bypass_two_factor,
                })
            })
            .collect())
    }

    pub(crate) async fn deactivate_idle_impl(
        &self,
        who: &Principal,
        days_idle: i64,
        role: &str,
    ) -> ServiceResult<u64> {
        if !self.has_permission(&who.roles, "edit-other-user-active-status") {
            return Err(ServiceError::unauthorized());
        }
        let cutoff = Millis::now().0.saturating_sub(days_idle.saturating_mul(DAY_MS));
        let idle = move |u: &User| u.active && u.last_login.unwrap_or(u.created_at).0 <= cutoff;
        let filter = UserFilter { roles: vec![role.to_owned()], active: Some(true), ..Default::default() };
        let candidates = self
            .store
            .list_users(&filter, PageRequest { offset: 0, count: None })
            .await
            .map_err(store_error)?;
        let mut count = 0;
        for user in candidates.items.iter().filter(|u| idle(u)) {
            // Checked again inside the write: a login or another deactivation may have come first.
            let changed = Arc::new(AtomicBool::new(false));
            let flag = changed.clone();
            let result = self
                .store
                .update_user(
                    &user.id,
                    Box::new(move |u| {
                        if idle(u) {
                            u.active = false;
                            u.updated_at = Millis::now();
                            flag.store(true, Ordering::SeqCst);
                        }
                        Ok(())
                    }),
                )
                .await;
            match result {
                Ok(_) if changed.load(Ordering::SeqCst) => {
                    self.forget_user_tokens(&user.id).await;
                    count += 1;
                }
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        // Like Rocket.Chat, nothing is announced: these users are not logged in.
        Ok(count)
    }
}
