//! Password and token login, header authentication, logout, and the failed-login lockout.

use std::collections::HashMap;

use apogee_api::{Credentials, LoginRequest, LoginResponse, LoginUser};
use apogee_types::{
    ErrorKind, LoginToken, Millis, Principal, ServiceError, ServiceResult, User, random_secret,
};
use tokio::time::Instant;

use crate::crypto::{hash_token, prehash, verify_password};
use crate::service::{Auth, store_error};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// Resume tokens kept per user; older ones are pruned (Rocket.Chat keeps 50 as well).
const TOKENS_PER_USER: usize = 50;

/// Failed attempts per key (`user:<name>` or `ip:<addr>`).
#[derive(Default)]
pub(crate) struct Failures(HashMap<String, Failure>);

struct Failure {
    count: u32,
    blocked_until: Option<Instant>,
}

impl Failures {
    fn blocked(&mut self, key: &str, now: Instant) -> bool {
        match self.0.get(key) {
            Some(Failure { blocked_until: Some(until), .. }) if *until > now => true,
            Some(Failure { blocked_until: Some(_), .. }) => {
                // The block has run out: start counting afresh.
                self.0.remove(key);
                false
            }
            _ => false,
        }
    }

    fn record(&mut self, key: String, limit: u32, block: std::time::Duration, now: Instant) {
        let entry = self.0.entry(key).or_insert(Failure { count: 0, blocked_until: None });
        entry.count += 1;
        if entry.count >= limit {
            entry.blocked_until = Some(now + block);
        }
    }

    fn clear(&mut self, key: &str) {
        self.0.remove(key);
    }
}

fn unauthenticated(error: &str, message: &str) -> ServiceError {
    ServiceError::new(ErrorKind::Unauthenticated, error, message)
}

pub(crate) fn logged_out() -> ServiceError {
    unauthenticated("403", "You've been logged out by the server. Please log in again.")
}

impl Auth {
    fn token_lifetime_ms(&self) -> i64 {
        self.setting_i64("Accounts_LoginExpiration", 90).max(1) * DAY_MS
    }

    /// Every token of the caller but `token` goes, each deleted (and evicted from the gateways'
    /// cache) on its own: a failure part-way leaves fewer tokens, never a removed one working.
    pub(crate) async fn remove_other_tokens_impl(
        &self,
        who: &Principal,
        token: &str,
        keep_personal: bool,
    ) -> ServiceResult<Option<Millis>> {
        let current = hash_token(token);
        let tokens = self.store.login_tokens_of_user(&who.user_id).await.map_err(store_error)?;
        let Some(kept) = tokens.iter().find(|t| t.hashed_token == current) else {
            return Err(ServiceError::invalid("error-invalid-user-id", "Invalid user id"));
        };
        let expires = kept.name.is_none().then(|| Millis(kept.created_at.0 + self.token_lifetime_ms()));
        for other in
            tokens.iter().filter(|t| t.hashed_token != current && !(keep_personal && t.name.is_some()))
        {
            self.store.delete_login_token(&other.hashed_token).await.map_err(store_error)?;
            self.forget_hashed_token(&other.hashed_token).await;
        }
        Ok(expires)
    }

    fn expired(&self, token: &LoginToken) -> bool {
        token.name.is_none() && token.created_at.0 + self.token_lifetime_ms() < Millis::now().0
    }

    pub(crate) async fn login_impl(&self, req: LoginRequest) -> ServiceResult<LoginResponse> {
        match req.credentials {
            Credentials::Resume { token } => self.resume(&token).await,
            Credentials::Password { user, password } => {
                let user_key = match &user {
                    LoginUser::Username(s) | LoginUser::Email(s) | LoginUser::UsernameOrEmail(s) => {
                        format!("user:{}", s.to_lowercase())
                    }
                };
                let ip_key = req.client_ip.map(|ip| format!("ip:{ip}"));
                self.check_not_blocked(&user_key, ip_key.as_deref())?;
                let found = self.find_login_user(&user).await?;
                let Some(found) = found else {
                    self.record_failure(&user_key, ip_key);
                    return Err(unauthenticated("Unauthorized", "Unauthorized"));
                };
                let Some(stored) = found.password_bcrypt.clone() else {
                    return Err(unauthenticated("403", "User has no password set"));
                };
                if !verify_password(prehash(&password)?, &stored).await? {
                    self.record_failure(&user_key, ip_key);
                    return Err(unauthenticated("403", "Incorrect password"));
                }
                if let Ok(mut failures) = self.failures.lock() {
                    failures.clear(&user_key);
                }
                self.check_can_login(&found)?;
                self.issue_token(found).await
            }
        }
    }

    fn check_not_blocked(&self, user_key: &str, ip_key: Option<&str>) -> ServiceResult<()> {
        if !self.setting_bool("Block_Multiple_Failed_Logins_Enabled") {
            return Ok(());
        }
        let now = Instant::now();
        let mut failures =
            self.failures.lock().map_err(|_| ServiceError::internal("failures lock poisoned"))?;
        if let Some(ip) = ip_key
            && failures.blocked(ip, now)
        {
            return Err(unauthenticated(
                "error-login-blocked-for-ip",
                "Login has been temporarily blocked For IP",
            ));
        }
        if failures.blocked(user_key, now) {
            return Err(unauthenticated(
                "error-login-blocked-for-user",
                "Login has been temporarily blocked For User",
            ));
        }
        Ok(())
    }

    fn record_failure(&self, user_key: &str, ip_key: Option<String>) {
        if !self.setting_bool("Block_Multiple_Failed_Logins_Enabled") {
            return;
        }
        let per_user = u32::try_from(self.setting_i64(
            "Block_Multiple_Failed_Logins_Attempts_Until_Block_by_User",
            i64::from(self.cfg.failed_logins_per_user),
        ))
        .unwrap_or(self.cfg.failed_logins_per_user);
        let per_ip =
            u32::try_from(self.setting_i64(
                "Block_Multiple_Failed_Logins_Attempts_Until_Block_By_Ip",
                i64::from(per_user) * 5,
            ))
            .unwrap_or(per_user * 5);
        let now = Instant::now();
        if let Ok(mut failures) = self.failures.lock() {
            if self.setting_bool("Block_Multiple_Failed_Logins_By_User") {
                failures.record(user_key.to_owned(), per_user, self.cfg.login_block, now);
            }
            if let Some(ip) = ip_key.filter(|_| self.setting_bool("Block_Multiple_Failed_Logins_By_Ip")) {
                failures.record(ip, per_ip, self.cfg.login_block, now);
            }
        }
    }

    async fn find_login_user(&self, user: &LoginUser) -> ServiceResult<Option<User>> {
        let found = match user {
            LoginUser::Username(name) => self.store.user_by_username(name).await,
            LoginUser::Email(email) => self.store.user_by_email(email).await,
            LoginUser::UsernameOrEmail(s) if s.contains('@') => self.store.user_by_email(s).await,
            LoginUser::UsernameOrEmail(s) => self.store.user_by_username(s).await,
        };
        found.map_err(store_error)
    }

    fn check_can_login(&self, user: &User) -> ServiceResult<()> {
        if user.kind == "app" {
            return Err(unauthenticated(
                "error-app-user-is-not-allowed-to-login",
                "App user is not allowed to login",
            ));
        }
        if !user.active {
            return Err(unauthenticated("error-user-is-not-activated", "User is not activated"));
        }
        Ok(())
    }

    async fn issue_token(&self, user: User) -> ServiceResult<LoginResponse> {
        let token = random_secret();
        let now = Millis::now();
        let login_token = LoginToken::resume(hash_token(&token), user.id.clone(), now);
        self.store.insert_login_token(login_token).await.map_err(store_error)?;
        self.store.prune_login_tokens(&user.id, TOKENS_PER_USER, now).await.map_err(store_error)?;
        let user = self
            .store
            .update_user(
                &user.id,
                Box::new(move |u| {
                    u.last_login = Some(now);
                    Ok(())
                }),
            )
            .await
            .map_err(store_error)?;
        Ok(LoginResponse { user, token, token_expires: Millis(now.0 + self.token_lifetime_ms()) })
    }

    async fn resume(&self, token: &str) -> ServiceResult<LoginResponse> {
        let found = self.store.user_by_token(&hash_token(token)).await.map_err(store_error)?;
        let Some((user, stored)) = found else {
            return Err(logged_out());
        };
        if self.expired(&stored) {
            return Err(unauthenticated("403", "Your session has expired. Please log in again."));
        }
        self.check_can_login(&user)?;
        let expires = Millis(stored.created_at.0 + self.token_lifetime_ms());
        Ok(LoginResponse { user, token: token.to_owned(), token_expires: expires })
    }

    pub(crate) async fn authenticate_impl(&self, user_id: &str, token: &str) -> ServiceResult<Principal> {
        let not_logged_in = || unauthenticated("", "You must be logged in to do this.");
        if user_id.is_empty() || token.is_empty() {
            return Err(not_logged_in());
        }
        let found = self.store.user_by_token(&hash_token(token)).await.map_err(store_error)?;
        match found {
            Some((user, stored)) if user.id == user_id && user.active && !self.expired(&stored) => {
                Ok(user.principal())
            }
            _ => Err(not_logged_in()),
        }
    }

    pub(crate) async fn logout_impl(&self, who: &Principal, token: &str) -> ServiceResult<()> {
        let hashed = hash_token(token);
        match self.store.user_by_token(&hashed).await.map_err(store_error)? {
            Some((user, _)) if user.id == who.user_id => {
                self.store.delete_login_token(&hashed).await.map_err(store_error)
            }
            _ => Err(unauthenticated("", "You must be logged in to do this.")),
        }
    }
}
