//! The service seam. Each service is a trait; the gateway and the other services hold a cheap
//! client handle ([`AuthClient`], [`MessagingClient`], [`FilesClient`]) that is a local instance in `apogee serve`.
//! The gRPC adapters of distributed mode will implement the same traits (issue #4), so callers
//! never know which they have.
//!
//! Requests and responses are domain types from `apogee-types`; every method that acts for a
//! user takes the authenticated [`Principal`](apogee_types::Principal) explicitly.
//!
//! This crate depends on no service and no I/O library.

mod auth;
pub mod events;
mod files;
mod messaging;

pub use auth::*;
pub use files::*;
pub use messaging::*;
