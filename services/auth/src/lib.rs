//! The auth service: users, credentials, login and personal tokens, roles, permissions and
//! settings. It is the only service that sees passwords or token hashes; everyone else gets a
//! [`Principal`](apogee_types::Principal) from [`AuthService::authenticate`].
//!
//! Settings, permissions and roles are small and read on every request, so they are held in
//! memory and written through to the store.

mod admin;
mod bootstrap;
mod crypto;
mod defaults;
mod integrations;
mod login;
mod policy;
mod profile;
mod roles;
mod service;
mod settings;
mod tokens;
mod users;

pub use bootstrap::{Bootstrap, TEST_ADMIN};
pub use crypto::{hash_token, password_digest};
pub use service::{Auth, AuthConfig};
