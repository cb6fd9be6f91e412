//! The service seam. Each service is a trait; the gateway and the other services hold a cheap
//! client handle ([`AuthClient`], [`MessagingClient`], [`FilesClient`]) that is a local instance in `apogee serve`.
//! In distributed mode the handle holds the gRPC client adapter of the same trait ([`grpc`]), so
//! callers never know which they have.
//!
//! Requests and responses are domain types from `apogee-types`; every method that acts for a
//! user takes the authenticated [`Principal`](apogee_types::Principal) explicitly.
//!
//! This crate depends on no service crate and no store.

mod auth;
pub mod events;
mod files;
pub mod grpc;
mod messaging;
mod teams;

pub use auth::*;
pub use files::*;
pub use messaging::*;
pub use teams::*;

/// How a login token is stored and cached: standard base64 (padded) of its SHA-256, as
/// Rocket.Chat stores `hashedToken`. Auth and the gateway's token cache must agree on it.
pub fn hash_token(token: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(token.as_bytes()))
}
