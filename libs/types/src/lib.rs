//! Domain types shared by every Apogee crate: ids, the authenticated [`Principal`], the stored
//! shapes of users, rooms, subscriptions and messages, and [`ServiceError`], the one error type
//! that crosses service boundaries.
//!
//! This crate does no I/O and must never depend on tokio, a database driver or a wire format
//! beyond serde; Rocket.Chat's JSON shapes live in `apogee-rc`.

mod error;
mod ids;
mod integration;
mod model;
mod team;
mod time;

pub use error::{ErrorKind, ServiceError, ServiceResult};
pub use ids::{random_id, random_id_of, random_secret};
pub use integration::*;
pub use model::*;
pub use team::*;
pub use time::Millis;
